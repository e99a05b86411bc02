"""StableHLO rules for the data-movement ops: reshapes, transposes, broadcasts, concat/split,
slices, gathers and scatters, pad, tile, depth/space rearrangements, reverse, full, range,
shape_of, one_hot, topk and trilu.

Gather indices wrap once (negative counts from the end); an index still out of range is a
run-time error, as in the reference (the compiled function returns a flag the runtime checks).
"""
from __future__ import annotations

import math

import numpy as np

from compiler.ir import Op
from compiler.ir import dtypes as dt

from .emitter import Emitter, Val
from .lowering import Context, lowering, norm_axis, result_type, widen, wrap_indices


@lowering("reshape", "squeeze", "unsqueeze", "flatten")
def _reshape(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    return [e.reshape(args[0], result_type(op)[0])]


@lowering("identity")
def _identity(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    return [args[0]]


@lowering("transpose")
def _transpose(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    perm = op.attrs["perm"] or tuple(range(x.rank))[::-1]
    return [e.transpose(x, perm)]


@lowering("broadcast_to")
def _broadcast_to(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    return [e.broadcast_to(args[0], result_type(op)[0])]


@lowering("concat")
def _concat(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    axis = norm_axis(op.attrs["axis"], args[0].rank)
    return [e.concat([a for a in args], axis)]


@lowering("split")
def _split(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    axis = norm_axis(op.attrs["axis"], x.rank)
    out, start = [], 0
    for s in op.attrs["sizes"]:
        out.append(e.slice_axis(x, axis, start, start + s))
        start += s
    return out


def _slice_range(d: int, start: int, end: int, step: int) -> tuple[int, int, int]:
    """ONNX Slice on one axis of size d (compiler.ir.ops.movement._slice_range)."""
    start, end = start + d if start < 0 else start, end + d if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), d), min(max(end, 0), d)
    else:
        start, end = min(max(start, 0), d - 1), min(max(end, -1), d - 1)
    return start, end, max(0, -((start - end) // step))


@lowering("slice")
def _slice(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    starts, ends = op.attrs["starts"], op.attrs["ends"]
    n = len(starts)
    axes = [a % x.rank for a in (op.attrs["axes"] or range(n))]
    steps = op.attrs["steps"] or (1,) * n
    for a, s, en, st in zip(axes, starts, ends, steps):
        d = x.shape[a]
        s, en, length = _slice_range(d, s, en, st)
        if length == 0:
            x = e.slice_axis(x, a, 0, 0)
        elif st > 0:
            x = e.slice_axis(x, a, s, s + (length - 1) * st + 1, st)
        else:  # reverse the axis: index i becomes d - 1 - i
            x = e.reverse(x, [a])
            r = d - 1 - s
            x = e.slice_axis(x, a, r, r + (length - 1) * (-st) + 1, -st)
    return [x]


# --- gathers ------------------------------------------------------------------------------------


@lowering("gather")
def _gather(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, idx = args
    axis = norm_axis(op.attrs["axis"], x.rank)
    i = wrap_indices(e, ctx, op, idx, x.shape[axis])
    g = e.gather_points(x, [axis], [i])  # [*idx, x dims except axis]
    k = idx.rank
    # move the index dims to where the axis was
    perm = list(range(k, k + axis)) + list(range(k)) + list(range(k + axis, g.rank))
    return [e.transpose(g, perm)]


def _elements_indices(e: Emitter, ctx: Context, op: Op, x: Val, idx: Val,
                      axis: int) -> list[Val]:
    """Full index arrays for x: the position itself on every axis but `axis`."""
    out = []
    for d in range(x.rank):
        if d == axis:
            out.append(wrap_indices(e, ctx, op, idx, x.shape[axis]))
        else:
            out.append(e.iota(idx.shape, d))
    return out


@lowering("gather_elements")
def _gather_elements(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, idx = args
    axis = norm_axis(op.attrs["axis"], x.rank)
    return [e.gather_points(x, list(range(x.rank)), _elements_indices(e, ctx, op, x, idx, axis))]


def _nd_indices(e: Emitter, ctx: Context, op: Op, idx: Val, sizes: list[int]) -> list[Val]:
    """The columns of an [..., m] index tensor, each wrapped against its dim size."""
    cols = []
    for j, n in enumerate(sizes):
        c = e.reshape(e.slice_axis(idx, idx.rank - 1, j, j + 1), idx.shape[:-1])
        cols.append(wrap_indices(e, ctx, op, c, n))
    return cols


@lowering("gather_nd")
def _gather_nd(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, idx = args
    b = op.attrs["batch_dims"]
    m = idx.shape[-1]
    nb = math.prod(x.shape[:b])
    n = math.prod(idx.shape[b:-1])
    xr = e.reshape(x, (nb,) + x.shape[b:])
    ir_ = e.reshape(idx, (nb, n, m))
    cols = _nd_indices(e, ctx, op, ir_, list(x.shape[b:b + m]))
    batch = e.iota((nb, n), 0)
    g = e.gather_points(xr, list(range(m + 1)), [batch] + cols)  # [nb, n, rest]
    return [e.reshape(g, result_type(op)[0])]


# --- scatters -----------------------------------------------------------------------------------

_COMBINE = {"none": None, "add": "add", "mul": "multiply", "max": "maximum", "min": "minimum"}


def _scatter(e: Emitter, x: Val, axes: list[int], indices: list[Val], updates: Val,
             reduction: str) -> Val:
    """Scatter with f16/bf16 reductions run in f32 and rounded once (as the reference)."""
    if reduction == "none":
        return e.scatter_points(x, axes, indices, updates, None)
    wx, wu = widen(e, x, updates)
    out = e.scatter_points(wx, axes, indices, wu, _COMBINE[reduction])
    return e.convert(out, x.dtype)


@lowering("scatter_elements")
def _scatter_elements(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, idx, upd = args
    axis = norm_axis(op.attrs["axis"], x.rank)
    return [_scatter(e, x, list(range(x.rank)), _elements_indices(e, ctx, op, x, idx, axis), upd,
                     op.attrs["reduction"])]


@lowering("scatter_nd")
def _scatter_nd(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, idx, upd = args
    k = idx.shape[-1]
    n = math.prod(idx.shape[:-1])
    ir_ = e.reshape(idx, (n, k))
    cols = _nd_indices(e, ctx, op, ir_, list(x.shape[:k]))
    u = e.reshape(upd, (n,) + x.shape[k:])
    return [_scatter(e, x, list(range(k)), cols, u, op.attrs["reduction"])]


# --- pad, tile ----------------------------------------------------------------------------------


@lowering("pad")
def _pad(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    r = x.rank
    pads, mode = op.attrs["pads"], op.attrs["mode"]
    if r == 0:
        return [x]
    begin, end = list(pads[:r]), list(pads[r:])
    if mode == "constant":
        value = op.attrs["value"]
        v = e.const(value if not x.dtype.is_bool else bool(value), x.dtype)
        return [e.pad(x, v, begin, end)]
    # crop first (negative pads), then extend each axis from its own elements
    crop_lo = [-min(b, 0) for b in begin]
    crop_hi = [x.shape[i] + min(end[i], 0) for i in range(r)]
    x = e.slice(x, crop_lo, crop_hi)
    for a in range(r):
        b, en = max(begin[a], 0), max(end[a], 0)
        if not b and not en:
            continue
        n = x.shape[a]
        parts = []
        if mode == "reflect":
            if b:
                parts.append(e.reverse(e.slice_axis(x, a, 1, b + 1), [a]))
            parts.append(x)
            if en:
                parts.append(e.reverse(e.slice_axis(x, a, n - 1 - en, n - 1), [a]))
        elif mode == "edge":
            if b:
                first = e.slice_axis(x, a, 0, 1)
                parts.append(e.broadcast_to(first, x.shape[:a] + (b,) + x.shape[a + 1:]))
            parts.append(x)
            if en:
                last = e.slice_axis(x, a, n - 1, n)
                parts.append(e.broadcast_to(last, x.shape[:a] + (en,) + x.shape[a + 1:]))
        else:  # wrap
            if b:
                parts.append(e.slice_axis(x, a, n - b, n))
            parts.append(x)
            if en:
                parts.append(e.slice_axis(x, a, 0, en))
        x = e.concat(parts, a)
    return [x]


@lowering("tile")
def _tile(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    reps = op.attrs["repeats"]
    if x.rank == 0:
        return [x]
    big = []
    dims = []
    for i, (d, k) in enumerate(zip(x.shape, reps)):
        big += [k, d]
        dims.append(2 * i + 1)
    b = e.broadcast_in_dim(x, big, dims)
    return [e.reshape(b, result_type(op)[0])]


# --- depth_to_space, space_to_depth, reverse ---------------------------------------------------


@lowering("depth_to_space")
def _depth_to_space(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    n, c, h, w = x.shape
    b = op.attrs["blocksize"]
    if op.attrs["mode"] == "DCR":
        y = e.transpose(e.reshape(x, (n, b, b, c // (b * b), h, w)), (0, 3, 4, 1, 5, 2))
    else:
        y = e.transpose(e.reshape(x, (n, c // (b * b), b, b, h, w)), (0, 1, 4, 2, 5, 3))
    return [e.reshape(y, (n, c // (b * b), h * b, w * b))]


@lowering("space_to_depth")
def _space_to_depth(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    n, c, h, w = x.shape
    b = op.attrs["blocksize"]
    y = e.transpose(e.reshape(x, (n, c, h // b, b, w // b, b)), (0, 3, 5, 1, 2, 4))
    return [e.reshape(y, (n, c * b * b, h // b, w // b))]


@lowering("reverse")
def _reverse(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    return [e.reverse(x, [a % x.rank for a in op.attrs["axes"]])]


# --- full, range, shape_of, one_hot --------------------------------------------------------------


@lowering("full")
def _full(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    shape, dtype = result_type(op)
    value = np.asarray(op.attrs["value"]).astype(dtype.np_dtype) if not dtype.is_bool \
        else np.asarray(bool(op.attrs["value"]))
    return [e.const(value, dtype, shape)]


@lowering("range")
def _range(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    (n,), dtype = result_type(op)
    start, delta = op.attrs["start"], op.attrs["delta"]
    if dtype.is_float:  # start + i * delta in f64 (the wide float), rounded once
        wide = ctx.options.wide_float
        v = e.add(e.mul(e.iota((n,), 0, wide), e.const(delta, wide)), e.const(start, wide))
        return [e.convert(v, dtype)]
    v = e.add(e.mul(e.iota((n,), 0, dt.i64), int(delta)), int(start))
    return [e.convert(v, dtype)]


@lowering("shape_of")
def _shape_of(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    dims = np.asarray(args[0].shape, dtype=np.int64)[op.attrs["start"]:op.attrs["end"]]
    return [e.const(dims, dt.i64) if dims.size else e.const(0, dt.i64, (0,))]


@lowering("one_hot")
def _one_hot(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    idx = args[0]
    shape, dtype = result_type(op)
    depth, axis = op.attrs["depth"], op.attrs["axis"]
    a = axis + idx.rank + 1 if axis < 0 else axis
    i = e.convert(idx, dt.i64)
    i = e.select(e.compare("LT", i, 0), e.add(i, depth), i)  # out of range: all off
    wide = e.broadcast_in_dim(i, shape, [d for d in range(len(shape)) if d != a])
    hot = e.compare("EQ", wide, e.iota(shape, a))
    on = np.asarray(op.attrs["on_value"]).astype(dtype.np_dtype)
    off = np.asarray(op.attrs["off_value"]).astype(dtype.np_dtype)
    return [e.select(hot, e.const(on, dtype), e.const(off, dtype))]


# --- topk, trilu ---------------------------------------------------------------------------------


def nan_last_less(e: Emitter, a: Val, b: Val) -> Val:
    """a < b in a total order where nan comes after every number (NumPy's sort order)."""
    if not a.dtype.is_float:
        return e.compare("LT", a, b)
    return e.or_(e.compare("LT", a, b), e.and_(e.not_(e.isnan(a)), e.isnan(b)))


@lowering("topk")
def _topk(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    axis = norm_axis(op.attrs["axis"], x.rank)
    k, largest = op.attrs["k"], op.attrs["largest"]
    idx = e.iota(x.shape, axis, dt.i64)

    def less(s: Emitter, a: Val, b: Val, ia: Val, ib: Val) -> list[Val]:
        # descending (nan first) for largest, ascending (nan last) otherwise; the stable sort
        # keeps equal values in index order
        return [nan_last_less(s, b, a) if largest else nan_last_less(s, a, b)]
    vals, inds = e.sort([x, idx], axis, less)
    return [e.slice_axis(vals, axis, 0, k), e.slice_axis(inds, axis, 0, k)]


@lowering("trilu")
def _trilu(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    r = x.rank
    row = e.iota(x.shape, r - 2)
    col = e.iota(x.shape, r - 1)
    diff = e.sub(col, row)  # keep col - row >= k (upper) or <= k (lower)
    keep = e.compare("GE" if op.attrs["upper"] else "LE", diff, op.attrs["k"])
    zero = e.const(False if x.dtype.is_bool else 0, x.dtype)
    return [e.select(keep, x, zero)]
