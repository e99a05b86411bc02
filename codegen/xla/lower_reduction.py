"""StableHLO rules for reductions (reduce_*, argmax/argmin), the axis-wise ops built on them
(softmax, log_softmax, cumsum, cumprod) and the normalizations.

f16/bf16 inputs accumulate in f32 and round once; integer sums and products wrap. Empty
reductions give the identity (XLA's reduce over a zero-size dim returns the init value).
"""
from __future__ import annotations

import math
from typing import Sequence

from compiler.ir import Op
from compiler.ir import dtypes as dt

from .emitter import Emitter, Val
from .lowering import (Context, highest, lowering, lowest, norm_axis, optional, result_type,
                       widen)


def _axes(x: Val, axes: Sequence[int]) -> list[int]:
    """The reference's axes: all of them for () or a rank-0 x."""
    if not axes or x.rank == 0:
        return list(range(x.rank))
    return sorted({a % x.rank for a in axes})


def _keep(e: Emitter, y: Val, x: Val, axes: Sequence[int]) -> Val:
    """y (x reduced over axes) with the reduced dims kept as size 1."""
    return e.reshape(y, tuple(1 if i in axes else d for i, d in enumerate(x.shape)))


def sum_(e: Emitter, x: Val, axes: Sequence[int], keepdims: bool = False) -> Val:
    y = e.reduce_simple(x, 0, axes, "add")
    return _keep(e, y, x, axes) if keepdims else y


def max_(e: Emitter, x: Val, axes: Sequence[int], keepdims: bool = False) -> Val:
    y = e.reduce_simple(x, lowest(x.dtype), axes, "maximum")
    return _keep(e, y, x, axes) if keepdims else y


def stable_max(e: Emitter, x: Val, axes: Sequence[int]) -> Val:
    """max over axes (kept), non-finite maxima replaced by 0: the shift of exp arguments."""
    m = max_(e, x, axes, keepdims=True)
    return e.select(e.unary("is_finite", m, dt.bool_), m, e.const(0.0, m.dtype))


def shift_by_max(e: Emitter, x: Val, axes: Sequence[int]) -> tuple[Val, Val]:
    """x - stable_max(x), shifted once more by the max of that difference (0 in exact
    arithmetic). XLA's CPU backend contracts a multiply that produces x into an FMA with the
    subtraction (x / n becomes x * (1 / n) first), so the subtraction sees x unrounded while
    the max saw it rounded; for logits around 1e10 the mismatch underflows every exp() to 0 and
    softmax becomes 0/0. The second max is taken over the difference as the exp() argument
    computes it, so the largest argument is 0 again. Returns (difference, total shift)."""
    m = stable_max(e, x, axes)
    d = e.sub(x, m)
    m2 = stable_max(e, d, axes)
    return e.sub(d, m2), e.add(m, m2)


@lowering("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "reduce_l1",
          "reduce_l2", "reduce_sum_square", "reduce_logsumexp")
def _reduce(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0 = args[0]
    (x,) = widen(e, x0)
    axes = _axes(x, op.attrs["axes"])
    name = op.name
    if name == "reduce_sum":
        y = sum_(e, x, axes)
    elif name == "reduce_mean":
        y = e.div(sum_(e, x, axes), float(math.prod(x.shape[a] for a in axes)))
    elif name == "reduce_max":
        y = max_(e, x, axes)
    elif name == "reduce_min":
        y = e.reduce_simple(x, highest(x.dtype), axes, "minimum")
    elif name == "reduce_prod":
        y = e.reduce_simple(x, 1, axes, "multiply")
    elif name == "reduce_l1":
        y = sum_(e, x if x.dtype.kind == "uint" else e.abs(x), axes)
    elif name in ("reduce_l2", "reduce_sum_square"):
        y = sum_(e, e.mul(x, x), axes)
        if name == "reduce_l2":
            y = e.sqrt(y)
    else:  # logsumexp, shifted by the max
        d, m = shift_by_max(e, x, axes)
        s = sum_(e, e.exp(d), axes, keepdims=True)
        y = e.reshape(e.add(e.log(s), m), [d for i, d in enumerate(x.shape) if i not in axes])
    if op.attrs["keepdims"]:
        y = _keep(e, y, x, axes)
    return [e.convert(e.reshape(y, result_type(op)[0]), x0.dtype)]


@lowering("argmax", "argmin")
def _arg(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    (x,) = widen(e, args[0])
    shape, _ = result_type(op)
    if x.rank == 0:
        return [e.const(0, dt.i64, shape)]
    axis = norm_axis(op.attrs["axis"], x.rank)
    last = op.attrs["select_last_index"]
    better = "GT" if op.name == "argmax" else "LT"
    idx = e.iota(x.shape, axis, dt.i64)

    def body(s: Emitter, va: Val, ia: Val, vb: Val, ib: Val) -> list[Val]:
        # a beats b: strictly better, or nan against a number (NumPy picks the first nan), or
        # a tie (nan ties nan) won by the lower index (the higher with select_last_index)
        if x.dtype.is_float:
            na, nb = s.isnan(va), s.isnan(vb)
            tie = s.or_(s.compare("EQ", va, vb), s.and_(na, nb))
            wins = s.or_(s.compare(better, va, vb), s.and_(na, s.not_(nb)))
        else:
            tie = s.compare("EQ", va, vb)
            wins = s.compare(better, va, vb)
        first = s.compare("GT" if last else "LT", ia, ib)
        pick_a = s.or_(wins, s.and_(tie, first))
        return [s.select(pick_a, va, vb), s.select(pick_a, ia, ib)]
    init_v = e.const(lowest(x.dtype) if op.name == "argmax" else highest(x.dtype), x.dtype)
    init_i = e.const(-1 if last else 2**63 - 1, dt.i64)
    _, i = e.reduce([x, idx], [init_v, init_i], [axis], body)
    return [e.reshape(i, shape)]


# --- softmax, cumulative ops ----------------------------------------------------------------------


@lowering("softmax", "log_softmax")
def _softmax(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0 = args[0]
    (x,) = widen(e, x0)
    scalar = x.rank == 0
    if scalar:  # a scalar is a one-element vector
        x = e.reshape(x, (1,))
    axis = norm_axis(op.attrs["axis"], x.rank)
    shifted, _ = shift_by_max(e, x, [axis])
    ex = e.exp(shifted)
    s = sum_(e, ex, [axis], keepdims=True)
    y = e.sub(shifted, e.log(s)) if op.name == "log_softmax" else e.div(ex, s)
    return [e.convert(e.reshape(y, x0.shape), x0.dtype)]


@lowering("cumsum", "cumprod")
def _cumulative(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0 = args[0]
    (x,) = widen(e, x0)
    scalar = x.rank == 0
    if scalar:
        x = e.reshape(x, (1,))
    axis = norm_axis(op.attrs["axis"], x.rank)
    combine, identity = ("add", 0) if op.name == "cumsum" else ("multiply", 1)
    if op.attrs["reverse"]:
        x = e.reverse(x, [axis])
    n = x.shape[axis]
    y = x
    if n > 1:
        window = [n if i == axis else 1 for i in range(x.rank)]
        pads = [(n - 1, 0) if i == axis else (0, 0) for i in range(x.rank)]
        (y,) = e.reduce_window(
            [x], [e.const(identity, x.dtype)], window, [1] * x.rank, pads,
            lambda s, a, b: [s.op1(f"stablehlo.{combine}", [a, b], (), x.dtype)])
    if op.attrs["exclusive"] and n:
        low = [1 if i == axis else 0 for i in range(x.rank)]
        high = [-1 if i == axis else 0 for i in range(x.rank)]
        y = e.pad(y, e.const(identity, x.dtype), low, high)
    if op.attrs["reverse"]:
        y = e.reverse(y, [axis])
    if scalar:
        y = e.reshape(y, ())
    return [e.convert(y, x0.dtype)]


# --- normalizations -------------------------------------------------------------------------------


def standardize(e: Emitter, x: Val, axes: Sequence[int], epsilon: float) -> Val:
    """(x - mean) / sqrt(var + epsilon) over axes, var biased (the reference's _standardize)."""
    n = float(max(math.prod(x.shape[a] for a in axes), 1))
    mean = e.div(sum_(e, x, axes, keepdims=True), n)
    d = e.sub(x, mean)
    var = e.div(sum_(e, e.mul(d, d), axes, keepdims=True), n)
    return e.div(d, e.sqrt(e.add(var, epsilon)))


def _per_channel(e: Emitter, p: Val, rank: int) -> Val:
    return e.reshape(p, (p.shape[0],) + (1,) * (rank - 2))


@lowering("layer_norm", "rms_norm")
def _layer_norm(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0 = args[0]
    x, *params = widen(e, *args)
    scale, bias = optional(params, 2)
    axes = list(range(op.attrs["axis"] % x.rank, x.rank))
    eps = op.attrs["epsilon"]
    if op.name == "layer_norm":
        y = standardize(e, x, axes, eps)
    else:
        n = float(max(math.prod(x.shape[a] for a in axes), 1))
        ms = e.div(sum_(e, e.mul(x, x), axes, keepdims=True), n)
        y = e.div(x, e.sqrt(e.add(ms, eps)))
    if scale is not None:
        y = e.mul(y, scale)
    if bias is not None:
        y = e.add(y, bias)
    return [e.convert(y, x0.dtype)]


@lowering("batch_norm")
def _batch_norm(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0 = args[0]
    x, scale, bias, mean, var = widen(e, *args)
    r = x.rank
    inv = e.div(_per_channel(e, scale, r),
                e.sqrt(e.add(_per_channel(e, var, r), op.attrs["epsilon"])))
    y = e.add(e.mul(e.sub(x, _per_channel(e, mean, r)), inv), _per_channel(e, bias, r))
    return [e.convert(y, x0.dtype)]


@lowering("instance_norm")
def _instance_norm(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0 = args[0]
    x, scale, bias = widen(e, *args)
    y = standardize(e, x, list(range(2, x.rank)), op.attrs["epsilon"])
    y = e.add(e.mul(y, _per_channel(e, scale, x.rank)), _per_channel(e, bias, x.rank))
    return [e.convert(y, x0.dtype)]


@lowering("group_norm")
def _group_norm(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0 = args[0]
    x, scale, bias = widen(e, *args)
    n, g = x.shape[0], op.attrs["num_groups"]
    grouped = e.reshape(x, (n, g, x.size // max(n * g, 1)))
    y = e.reshape(standardize(e, grouped, [2], op.attrs["epsilon"]), x.shape)
    y = e.add(e.mul(y, _per_channel(e, scale, x.rank)), _per_channel(e, bias, x.rank))
    return [e.convert(y, x0.dtype)]

