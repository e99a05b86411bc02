"""rewrite-qdq: QDQ-format quantized models (ONNX Runtime's `quantize_static(QuantFormat.QDQ)`)
to integer ops: int8/uint8 operands, int32 accumulation, fused requantization.

A QDQ model computes in float between `dequantize` and `quantize` ops. The rules, run by the
rewrite driver (passes/rewrite.py):

Exact (the interpreter's results are bit for bit the same):
- `quantize(dequantize(q, s, z), s, z) -> q` when the pair is an identity on every value of q's
  integer type (checked by running both references on all of them; different scales, zero points
  or axes are kept).
- `T(dequantize(q, s, z)) -> dequantize(T(q), s, z)` for data movement T (reshape, transpose,
  slice, gather, split, concat, ...), max_pool and relu (as `max(q, z)`), with per-tensor s and z
  (max_pool and relu need a constant s > 0), when the dequantize has no other user or T's results
  all feed `quantize` ops: the dequantize moves next to the quantize and the pair above folds.
- `quantize(T(c), s, z) -> T(quantize(c, s, z))` for a constant c (an embedding table) and data
  movement T, with per-tensor s and z.

Within float rounding (the float contraction is reassociated into an exact integer sum that is
scaled once):
- `matmul / gemm / linear / conv(dequantize(a), dequantize(b) [, bias])` ->
  `dequantize(matmul_integer / conv_integer(a, b, a_zp, b_zp) [+ bias_i32], s_a * s_b)`, with
  activations per tensor and weights per tensor or per output channel, u8/i8 operands, constant
  f32 scales, and a static bound showing that the i32 accumulator cannot overflow.
  A weight may also be a float constant that is exactly dequantize(w_q, s, z) for some int8 w_q
  (found by search, checked element by element): the ONNX importer folds `DequantizeLinear` of
  int8 weights into float constants (option `recover-weights`).
  A constant bias that is an int32 multiple of s_a * s_b to within float rounding (ONNX Runtime's
  int32 biases, dequantized with that scale) joins the accumulator; other biases are added in
  float after the dequantize.
- `quantize(dequantize(acc_i32, s_acc), s_y, z_y) -> requantize(acc, s_acc / s_y, z_y)` (the
  multiplier rounded to f32 as the qlinear_* ops do). With the rule above this is
  qlinear_matmul / qlinear_conv exactly; against the float QDQ graph an output may differ by one
  quantization step where the float value lies within rounding of a half-step boundary.

Everything else stays float: other ops between dequantize and the contraction, scales that are
not constants, f16/bf16 scales, per-axis parameters on axes the integer ops do not take,
i16/i4 operands, gemm with alpha or beta other than 1. Option `exact-only` keeps only the exact
rules.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from compiler import ir
from compiler.ir import Module, Op, TensorType, TypeInferenceError, Value
from compiler.ir import dtypes as dt

from .registry import register
from .rewrite import Rewriter, Rule, RuleResult, apply_rules

I32_MAX = 2**31 - 1
ENUM_LIMIT = 1 << 22  # elements: larger (16-bit, per-axis) Q/DQ identity checks are skipped
Q8 = (dt.i8, dt.u8)

# ops whose float result on dequantized values is the dequantized result on the integers
DATA_MOVEMENT = frozenset({
    "reshape", "transpose", "squeeze", "unsqueeze", "flatten", "slice", "identity",
    "broadcast_to", "tile", "reverse", "depth_to_space", "space_to_depth", "split", "gather",
    "gather_elements", "gather_nd", "concat"})
MONOTONE = frozenset({"max_pool"})  # commute with x -> (x - z) * s for s > 0
CONTRACTIONS = frozenset({"matmul", "gemm", "linear", "conv"})

Array = np.ndarray
Operand = Union[Value, Array]  # an integer operand: a value, or a constant not yet emitted


# --- small queries -----------------------------------------------------------------------------


def _producer(v: Value, name: str) -> Optional[Op]:
    return v.owner if v.owner is not None and v.owner.name == name else None


def _per_tensor(a: Array) -> bool:
    return a.ndim == 0 or (a.ndim == 1 and a.size == 1)


def _scalar_type(t: TensorType) -> bool:
    return t.rank == 0 or (t.rank == 1 and t.shape[0] == 1)


def _same_param(rw: Rewriter, a: Optional[Value], b: Optional[Value], dtype: dt.DType) -> bool:
    """Two optional scale/zero-point operands hold the same numbers (None: zeros of dtype)."""
    if a is b:
        return True
    va = np.zeros((), dtype.np_dtype) if a is None else rw.constant_value(a)
    vb = np.zeros((), dtype.np_dtype) if b is None else rw.constant_value(b)
    if va is None or vb is None or va.dtype != vb.dtype:
        return False
    if _per_tensor(va) and _per_tensor(vb):
        return bool(va.reshape(()) == vb.reshape(()))
    return va.shape == vb.shape and bool(np.array_equal(va, vb))


def _base(v: Value, default: str) -> str:
    return v.name or default


# --- quantize(dequantize(q)) -> q ----------------------------------------------------------------


def _roundtrip_is_identity(qdtype: dt.DType, dq: Op, q: Op, scale: Array,
                           zp: Optional[Array]) -> bool:
    """dequantize then quantize (with these ops' attributes) returns every value of qdtype."""
    if not qdtype.is_integral or qdtype.bits > 16:
        return False
    lo, hi = qdtype.int_range()
    channels = 1 if _per_tensor(scale) else scale.size
    if channels * (hi - lo + 1) > ENUM_LIMIT:
        return False
    x = np.broadcast_to(np.arange(lo, hi + 1), (channels, hi - lo + 1)).astype(qdtype.np_dtype)
    s = scale.reshape(()) if channels == 1 else scale.reshape(-1)
    z = None if zp is None else (zp.reshape(()) if channels == 1 else zp.reshape(-1))
    extra = [] if z is None else [z]
    with np.errstate(all="ignore"):
        f = ir.get_op("dequantize").reference(x, s, *extra, axis=0)
        back = ir.get_op("quantize").reference(f, s, *extra, **{**q.attrs, "axis": 0})
    return back.dtype == x.dtype and bool(np.array_equal(back, x))


def fold_quantize_dequantize(op: Op, rw: Rewriter) -> RuleResult:
    # quantize(dequantize(q, s, z), s, z) -> q, when that round trip is exact for every q
    if op.name != "quantize":
        return None
    dq = _producer(op.operands[0], "dequantize")
    if dq is None or dq.operands[0].type != op.result.type:
        return None
    qv = dq.operands[0]
    s1, s2 = dq.operands[1], op.operands[1]
    z1 = dq.operands[2] if len(dq.operands) > 2 else None
    z2 = op.operands[2] if len(op.operands) > 2 else None
    scale = rw.constant_value(s1)
    if scale is None or not _same_param(rw, s1, s2, s1.dtype) or \
            not _same_param(rw, z1, z2, qv.dtype):
        return None
    rank = qv.type.rank
    axes = [o.attrs["axis"] % max(rank, 1) for o in (dq, op)]
    if not _per_tensor(scale) and axes[0] != axes[1]:
        return None
    zp = None if z1 is None else rw.constant_value(z1)
    if z1 is not None and zp is None:
        return None
    if not _roundtrip_is_identity(qv.dtype, dq, op, scale, zp):
        return None
    return qv


# --- T(dequantize(q)) -> dequantize(T(q)) --------------------------------------------------------


def _dequantize_params(dq: Op) -> tuple[Value, Optional[Value]]:
    return dq.operands[1], dq.operands[2] if len(dq.operands) > 2 else None


def sink_dequantize(op: Op, rw: Rewriter) -> RuleResult:
    # T(dequantize(q, s, z)) -> dequantize(T(q), s, z) for data movement, max_pool and relu
    if op.name not in DATA_MOVEMENT and op.name not in MONOTONE and op.name != "relu":
        return None
    data = list(op.operands) if op.name == "concat" else op.operands[:1]
    dqs = [_producer(v, "dequantize") for v in data]
    if not dqs or any(d is None for d in dqs):
        return None
    first = dqs[0]
    scale, zp = _dequantize_params(first)
    if not _scalar_type(scale.type) or (zp is not None and not _scalar_type(zp.type)):
        return None
    for d in dqs[1:]:
        s2, z2 = _dequantize_params(d)
        if d.operands[0].dtype != first.operands[0].dtype or s2.type != scale.type or \
                not _same_param(rw, scale, s2, scale.dtype) or \
                not _same_param(rw, zp, z2, first.operands[0].dtype):
            return None
    if op.name in MONOTONE or op.name == "relu":
        s = rw.constant_value(scale)
        if s is None or not np.all(np.isfinite(s) & (s > 0)):
            return None
    # sink when nothing is duplicated, or when every result goes on to a quantize (QDQ chains)
    single = all(rw.num_users(d.result) == 1 for d in dqs) and len(set(map(id, dqs))) == len(dqs)
    feeds_quantize = all(rw.num_users(r) > 0 and r not in rw.fn.outputs and
                         all(u.name == "quantize" for u in rw.users.get(r, ()))
                         for r in op.results)
    if not (single or feeds_quantize):
        return None
    ints = [d.operands[0] for d in dqs]
    try:
        if op.name == "relu":
            z = zp if zp is not None else rw.constant(np.zeros((), ints[0].dtype.np_dtype), "zero")
            moved: Union[Value, list[Value]] = rw.op("max", ints[0], z)
        elif op.name == "concat":
            moved = rw.op("concat", *ints, **op.attrs)
        else:
            moved = rw.op(op.name, ints[0], *op.operands[1:], **op.attrs)
        results = moved if isinstance(moved, list) else [moved]
        _at(results[0], op)
        extra = [zp] if zp is not None else []
        out = [rw.op("dequantize", r, scale, *extra, axis=first.attrs["axis"]) for r in results]
    except TypeInferenceError:
        return None
    if [v.type for v in out] != [r.type for r in op.results]:  # type: ignore[union-attr]
        return None
    return out  # type: ignore[return-value]


def quantize_constant_data(op: Op, rw: Rewriter) -> RuleResult:
    # quantize(T(c), s, z) -> T(quantize(c, s, z)) for a constant c (an embedding table) and
    # data movement T, with per-tensor s and z
    if op.name != "quantize":
        return None
    t = op.operands[0].owner
    if t is None or t.name not in DATA_MOVEMENT or t.name == "concat":
        return None
    c = rw.constant_value(t.operands[0])
    params = [rw.constant_value(v) for v in op.operands[1:]]
    if c is None or any(p is None or not _per_tensor(p) for p in params):
        return None
    with np.errstate(all="ignore"):
        qc = ir.get_op("quantize").reference(c, *[p.reshape(()) for p in params], **op.attrs)
    name = t.operands[0].owner.attrs["name"]  # type: ignore[union-attr]
    try:
        moved = rw.op(t.name, rw.constant(qc, f"{name}_q"), *t.operands[1:], **t.attrs)
    except TypeInferenceError:
        return None
    out = moved[op.operands[0].index] if isinstance(moved, list) else moved
    return _at(out, t) if out.type == op.result.type else None


def _at(v: Value, op: Op) -> Value:
    """v, its op given op's location (a replacement keeps pointing at the model's node)."""
    if v.owner is not None and v.owner.loc is None:
        v.owner.loc = op.loc
    return v


# --- recovering integer weights from float constants ---------------------------------------------


@dataclass
class Quantized:
    """An integer operand q with scale s and zero point z (None: 0): the value (q - z) * s.
    s and z are per tensor (shape []) or 1-D along `axis` of q."""

    q: Operand
    scale: Array
    zp: Optional[Array]
    axis: Optional[int]  # None: per tensor
    zp_value: Optional[Value] = None  # the IR value holding zp, when there is one
    q_value: Optional[Value] = None  # the IR value holding q as it is, when there is one

    @property
    def dtype(self) -> dt.DType:
        return self.q.dtype if isinstance(self.q, Value) else dt.dtype(self.q.dtype)

    def centered_max(self) -> int:
        """max |q - z| over all q (the constant's elements, else the dtype's range)."""
        z = np.zeros(()) if self.zp is None else self.zp.astype(np.int64)
        if isinstance(self.q, np.ndarray):
            zb = z if self.axis is None else _along(z, self.q.ndim, self.axis)
            return int(np.abs(self.q.astype(np.int64) - zb).max(initial=0))
        lo, hi = self.dtype.int_range()
        return int(max(np.abs(lo - z).max(), np.abs(hi - z).max()))


def _along(p: Array, ndim: int, axis: int) -> Array:
    shape = [1] * ndim
    shape[axis] = p.size
    return p.reshape(shape)


def _exact_dequantize(n: Array, s: Array, w: Array) -> Array:
    """Rows where f32(n) * s (the dequantize reference's arithmetic) is w bit for bit."""
    with np.errstate(all="ignore"):
        back = n.astype(np.float32) * s[:, None]
    return np.all(back.view(np.uint32) == w.view(np.uint32), axis=1)


def recover_quantized(w: Array, axis: Optional[int]) -> Optional[tuple[Array, Array, Array]]:
    """(q int8, scale f32, zero point int8) with dequantize(q, scale, zp) == w bit for bit, per
    tensor (axis None) or per slice along axis; None when no such representation is found.

    A slice's largest magnitude is m * s for an integer m <= 255. m = 127 (symmetric int8, ONNX
    Runtime's weights) is tried first, then every m that makes all values near-integer multiples
    of a / m; the scale is a / m rounded to f32, +-2 ulps, and is taken only when the
    dequantize reference's arithmetic reproduces every element.
    """
    if w.dtype != np.float32 or w.size == 0 or not np.all(np.isfinite(w)):
        return None
    rows = w.reshape(1, -1) if axis is None else np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    amax = np.abs(rows).max(axis=1).astype(np.float64)
    found = amax == 0  # an all-zero slice is q = 0 at any scale
    best_s = np.where(found, 1.0, 0.0).astype(np.float32)
    best_n = np.zeros(rows.shape, np.int64)
    ratios = rows / np.where(found, 1.0, amax)[:, None]
    for m in [127] + [m for m in range(255, 0, -1) if m != 127]:  # the finest scale first
        todo = np.flatnonzero(~found)
        if not todo.size:
            break
        for cols in (slice(0, 16), slice(None)):  # a cheap look at a few values first
            r = ratios[todo, cols] * m
            todo = todo[np.all(np.abs(r - np.rint(r)) <= 1e-4, axis=1)]
        if todo.size:
            _exact_scales(rows, todo, (amax[todo] / m).astype(np.float32), found, best_s, best_n)
    if not found.all():
        return None
    lo, hi = best_n.min(axis=1), best_n.max(axis=1)
    zp = np.clip(0, -128 - lo, 127 - hi)  # the zero point nearest 0 that keeps q in int8
    q = (best_n + zp[:, None]).astype(np.int8)
    q = q.reshape(w.shape if axis is None else (w.shape[axis],) + tuple(np.delete(w.shape, axis)))
    if axis is None:
        return q, best_s.reshape(()), zp.astype(np.int8).reshape(())
    return np.moveaxis(q, 0, axis), best_s, zp.astype(np.int8)


def _exact_scales(rows: Array, todo: Array, base: Array, found: Array, best_s: Array,
                  best_n: Array) -> None:
    """For rows `todo`, try scales base +-2 ulps; record those that dequantize exactly with a
    range of at most 256 integers."""
    for ulps in (0, -1, 1, -2, 2):
        s = base
        for _ in range(abs(ulps)):
            s = np.nextafter(s, np.float32(np.inf if ulps > 0 else 0))
        keep = ~found[todo] & (s >= np.finfo(np.float32).tiny) & np.isfinite(s)
        idx, s = todo[keep], s[keep]
        if not idx.size:
            continue
        with np.errstate(all="ignore"):
            n = np.rint(rows[idx].astype(np.float64) / s[:, None])
        ok = np.all(np.abs(n) <= 255, axis=1)
        n = np.where(ok[:, None], n, 0).astype(np.int64)
        ok &= (n.max(axis=1) - n.min(axis=1)) <= 255
        ok &= _exact_dequantize(n, s, rows[idx])
        best_s[idx[ok]], best_n[idx[ok]] = s[ok], n[ok]
        found[idx[ok]] = True


# --- contractions ------------------------------------------------------------------------------


RecoverCache = Optional[dict]  # (constant name, axis) -> Quantized or None; None: do not recover


def _quantized_operand(v: Value, rw: Rewriter, axis: Optional[int],
                       recover: RecoverCache) -> Optional[Quantized]:
    """v as (q - z) * s with constant f32 s and z, per tensor or per `axis` of v (if given);
    a float constant is recovered as such when `recover` (a cache) is given."""
    dq = _producer(v, "dequantize")
    if dq is not None:
        q = dq.operands[0]
        scale = rw.constant_value(dq.operands[1])
        zv = dq.operands[2] if len(dq.operands) > 2 else None
        zp = None if zv is None else rw.constant_value(zv)
        if q.dtype not in Q8 or scale is None or scale.dtype != np.float32 or \
                (zv is not None and zp is None):
            return None
        q_arr = rw.constant_value(q)
        if _per_tensor(scale):
            return Quantized(q if q_arr is None else q_arr, scale.reshape(()),
                             None if zp is None else zp.reshape(()), None, zv, q)
        rank = q.type.rank
        if axis is None or scale.ndim != 1 or dq.attrs["axis"] % max(rank, 1) != axis:
            return None
        return Quantized(q if q_arr is None else q_arr, scale, zp, axis, zv, q)
    w = rw.constant_value(v)
    if recover is None or w is None or w.dtype != np.float32 or w.ndim == 0:
        return None
    key = (v.owner.attrs["name"], axis)  # type: ignore[union-attr]
    if key not in recover:
        recover[key] = None
        for ax in (None, axis) if axis is not None else (None,):
            got = recover_quantized(w, ax)
            if got is not None:
                q, s, z = got
                recover[key] = Quantized(q, s, None if not np.any(z) else z, ax)
                break
    found = recover[key]
    return None if found is None else dataclasses.replace(found)


def _emit(rw: Rewriter, x: Quantized, name: str) -> Value:
    if x.q_value is not None:
        return x.q_value
    return x.q if isinstance(x.q, Value) else rw.constant(x.q, name)


def _transposed(rw: Rewriter, x: Operand, perm: list[int]) -> Operand:
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(np.transpose(x, perm))
    return rw.op("transpose", x, perm=perm)  # type: ignore[return-value]


def _zero_point(rw: Rewriter, qa: Quantized, name: str, needed: bool) -> Optional[Value]:
    """qa's zero point as an IR value (a zero constant when `needed` and it has none)."""
    if qa.zp is None or not np.any(qa.zp):
        if not needed:
            return None
        return rw.constant(np.zeros((), qa.dtype.np_dtype), name)
    return qa.zp_value if qa.zp_value is not None else rw.constant(qa.zp, name)


@dataclass
class _Form:
    """A float contraction seen as integer operands a, b (b already laid out for the integer op),
    the output-channel axis of the result and an optional bias operand."""

    a: Quantized
    b: Quantized
    out_axis: int
    k_sum_axes: tuple[int, ...]  # axes of b summed per output channel (for the overflow bound)
    bias: Optional[Value]


def _matmul_form(op: Op, rw: Rewriter, recover: RecoverCache) -> Optional[_Form]:
    a_v, b_v = op.operands[0], op.operands[1]
    bias = None
    if op.name == "gemm":
        if op.attrs["alpha"] != 1.0 or (len(op.operands) > 2 and op.attrs["beta"] != 1.0):
            return None
        bias = op.operands[2] if len(op.operands) > 2 else None
        trans_a, trans_b = op.attrs["trans_a"], op.attrs["trans_b"]
        b_axis = 0 if trans_b else 1
    elif op.name == "linear":
        bias = op.operands[2] if len(op.operands) > 2 else None
        trans_a, trans_b, b_axis = False, True, 0
    else:
        trans_a = trans_b = False
        b_axis = b_v.type.rank - 1 if b_v.type.rank >= 2 else None
    a = _quantized_operand(a_v, rw, None, recover)
    b = _quantized_operand(b_v, rw, b_axis, recover) if a is not None else None
    if a is None or b is None:
        return None
    if trans_a:
        a.q, a.q_value = _transposed(rw, a.q, [1, 0]), None
    if trans_b:
        b.q, b.q_value = _transposed(rw, b.q, [1, 0]), None
        b.axis = None if b.axis is None else 1
    rank = op.result.type.rank
    k_axes = (b.q.ndim - 2,) if isinstance(b.q, np.ndarray) and b.q.ndim >= 2 else (0,)
    return _Form(a, b, max(rank - 1, 0), k_axes, bias)


def _conv_form(op: Op, rw: Rewriter, recover: RecoverCache) -> Optional[_Form]:
    a = _quantized_operand(op.operands[0], rw, None, recover)
    b = _quantized_operand(op.operands[1], rw, 0, recover) if a is not None else None
    if a is None or b is None:
        return None
    bias = op.operands[2] if len(op.operands) > 2 else None
    return _Form(a, b, 1, tuple(range(1, op.operands[1].type.rank)), bias)


def _accumulator_bound(form: _Form, k: Optional[int]) -> Optional[int]:
    """An upper bound of |acc| before the bias, or None when K is not static."""
    a_max = form.a.centered_max()
    b = form.b
    if isinstance(b.q, np.ndarray):
        z = np.zeros(()) if b.zp is None else b.zp.astype(np.int64)
        if b.axis is not None:
            z = _along(z, b.q.ndim, b.axis)
        per_channel = np.abs(b.q.astype(np.int64) - z).sum(axis=form.k_sum_axes)
        return int(per_channel.max(initial=0)) * a_max
    return None if k is None else k * b.centered_max() * a_max


def _contraction_depth(op: Op) -> Optional[int]:
    """K: the number of products per output element, when static."""
    w = op.operands[1].type
    if op.name == "conv":
        dims = w.shape[1:]
    elif op.name == "linear" or (op.name == "gemm" and op.attrs["trans_b"]):
        dims = w.shape[-1:]
    else:
        dims = w.shape[-2:-1] if w.rank >= 2 else w.shape
    return int(np.prod(dims)) if all(isinstance(d, int) for d in dims) else None


def _constant_float(rw: Rewriter, v: Value) -> Optional[Array]:
    """v's value when it is a constant or the dequantize of constants (an int32 bias)."""
    c = rw.constant_value(v)
    dq = _producer(v, "dequantize")
    if c is not None or dq is None:
        return c
    args = [rw.constant_value(x) for x in dq.operands]
    if any(a is None for a in args):
        return None
    with np.errstate(all="ignore"):
        return ir.get_op("dequantize").reference(*args, **dq.attrs)


def _bias_to_accumulator(rw: Rewriter, form: _Form, op: Op, acc_scale: Array,
                         acc_type: TensorType) -> Optional[Array]:
    """The constant bias as int32 multiples of the accumulator's scale, shaped to add to it;
    None when it is not such a multiple (to within float rounding)."""
    c = None if form.bias is None else _constant_float(rw, form.bias)
    if c is None or c.dtype != np.float32 or not np.all(np.isfinite(c)):
        return None
    if op.name == "conv":
        if c.ndim != 1:
            return None
        c = c.reshape((-1,) + (1,) * (acc_type.rank - 2))
        s = acc_scale if acc_scale.ndim == 0 else acc_scale.reshape(c.shape)
    else:
        s = acc_scale  # [N] or [] broadcasts against c's trailing dim, as c against the result
    with np.errstate(all="ignore"):
        q = np.rint(c.astype(np.float64) / s.astype(np.float64))
        # an int32 multiple of the accumulator's scale, to within float rounding
        exact = np.abs(q * s.astype(np.float64) - c) <= np.abs(c.astype(np.float64)) * 2.0**-20
    if not np.all(np.abs(q) < 2**30) or not np.all(exact):
        return None
    shape = tuple(d if isinstance(d, int) else 1 for d in acc_type.shape)
    try:
        if np.broadcast_shapes(q.shape, shape) != shape:
            return None
    except ValueError:
        return None
    return q.astype(np.int32)


def contraction_to_integer(op: Op, rw: Rewriter, recover: RecoverCache = None) -> RuleResult:
    # matmul/gemm/linear/conv(dequantize(a), dequantize(b) [, bias])
    #   -> dequantize(matmul_integer/conv_integer(a, b, za, zb) [+ bias_i32], sa * sb)
    if op.name not in CONTRACTIONS or op.result.dtype != dt.f32:
        return None
    if not any(_producer(v, "dequantize") for v in op.operands[:2]):
        return None  # a QDQ pattern has a dequantize; two float constants are not one
    form = _conv_form(op, rw, recover) if op.name == "conv" else _matmul_form(op, rw, recover)
    if form is None or form.a.axis is not None:
        return None
    a, b = form.a, form.b
    bound = _accumulator_bound(form, _contraction_depth(op))
    if bound is None or bound > I32_MAX:
        return None
    acc_scale = (a.scale.astype(np.float32) * b.scale.astype(np.float32)).astype(np.float32)
    if not np.all(np.isfinite(acc_scale) & (acc_scale > 0)):
        return None
    base = _base(op.result, op.name)
    zb = _zero_point(rw, b, f"{base}_w_zero_point", False)
    za = _zero_point(rw, a, f"{base}_x_zero_point", zb is not None)
    zps = [za] if zb is None and za is not None else ([za, zb] if zb is not None else [])
    try:
        out = _integer_contraction(op, rw, form, zps, acc_scale, bound)
    except TypeInferenceError:
        return None
    return out if out is not None and out.type == op.result.type else None


def _integer_contraction(op: Op, rw: Rewriter, form: _Form, zps: list[Value], acc_scale: Array,
                         bound: int) -> Optional[Value]:
    """Build the integer op, the bias added to its accumulator and the dequantize."""
    base = _base(op.result, op.name)
    qa, qb = _emit(rw, form.a, f"{base}_x_q"), _emit(rw, form.b, f"{base}_w_q")
    if op.name == "conv":
        acc = rw.op("conv_integer", qa, qb, *zps, **op.attrs)
    else:
        acc = rw.op("matmul_integer", qa, qb, *zps)
    assert isinstance(acc, Value)
    _at(acc, op)
    bias_q = _bias_to_accumulator(rw, form, op, acc_scale, acc.type)
    if bias_q is not None:
        if bound + int(np.abs(bias_q.astype(np.int64)).max(initial=0)) > I32_MAX:
            return None
        acc = rw.op("add", acc, rw.constant(bias_q, f"{base}_bias_i32"))  # type: ignore[assignment]
    axis = {} if acc_scale.ndim == 0 else {"axis": form.out_axis}
    out = rw.op("dequantize", acc, rw.constant(acc_scale, f"{base}_acc_scale"), **axis)
    if form.bias is not None and bias_q is None:
        c = form.bias
        if op.name == "conv":
            c = rw.op("reshape", c, shape=[c.shape[0]] + [1] * (acc.type.rank - 2))  # type: ignore
        out = rw.op("add", out, c)  # type: ignore[arg-type]
    return out  # type: ignore[return-value]


# --- quantize(dequantize(acc_i32)) -> requantize -------------------------------------------------


def dequantize_quantize_to_requantize(op: Op, rw: Rewriter) -> RuleResult:
    # quantize(dequantize(acc_i32, s_acc), s_y, z_y) -> requantize(acc, s_acc / s_y, z_y)
    if op.name != "quantize" or op.result.dtype not in Q8:
        return None
    dq = _producer(op.operands[0], "dequantize")
    if dq is None or dq.operands[0].dtype != dt.i32 or len(dq.operands) > 2:
        return None
    s_acc = rw.constant_value(dq.operands[1])
    s_y = rw.constant_value(op.operands[1])
    zv = op.operands[2] if len(op.operands) > 2 else None
    z_y = np.zeros((), op.result.dtype.np_dtype) if zv is None else rw.constant_value(zv)
    if s_acc is None or s_y is None or z_y is None or s_acc.dtype != np.float32 or \
            s_y.dtype != np.float32:
        return None
    if not _per_tensor(z_y):
        if not np.all(z_y == z_y.reshape(-1)[0]):
            return None
        z_y = z_y.reshape(-1)[:1].reshape(())
    rank = op.result.type.rank
    axes = {dq.attrs["axis"] % max(rank, 1) if not _per_tensor(s_acc) else None,
            op.attrs["axis"] % max(rank, 1) if not _per_tensor(s_y) else None} - {None}
    if len(axes) > 1:
        return None
    flat = [p.reshape(()) if _per_tensor(p) else p.reshape(-1) for p in (s_acc, s_y)]
    with np.errstate(all="ignore"):
        mult = (flat[0] / flat[1]).astype(np.float32)
    if not np.all(np.isfinite(mult)):
        return None
    base = _base(op.result, "requantize")
    zero = (zv if zv is not None and _scalar_type(zv.type)
            else rw.constant(z_y, f"{base}_zero_point"))
    attrs = {"axis": axes.pop()} if axes else {}
    out = rw.op("requantize", dq.operands[0], rw.constant(mult, f"{base}_multiplier"), zero,
                **attrs)
    return _at(out, op)  # type: ignore[arg-type]


# --- the pass ----------------------------------------------------------------------------------


@register("rewrite-qdq")
class RewriteQdq:
    """QDQ patterns to integer ops (see the module docstring). Options: `recover-weights` (take
    float constants that are exactly dequantized int8 weights as such), `exact-only` (only the
    bit-exact rules: Q/DQ pair folding and moving dequantize past data movement)."""

    recover_weights: bool = True
    exact_only: bool = False

    def run(self, module: Module) -> bool:
        recover: RecoverCache = {} if self.recover_weights else None

        def contraction(op: Op, rw: Rewriter) -> RuleResult:
            return contraction_to_integer(op, rw, recover)
        contraction.__name__ = "contraction_to_integer"
        rules = [fold_quantize_dequantize, sink_dequantize, quantize_constant_data]
        if not self.exact_only:
            rules += [contraction, dequantize_quantize_to_requantize]
        unused = set(module.constants) - _referenced_constants(module)
        changed = apply_rules(module, [_discarding_constants(r) for r in rules])
        # drop the constants this pass left unreferenced: replaced weights, scales of folded ops
        for name in set(module.constants) - _referenced_constants(module) - unused:
            del module.constants[name]
        return changed


def _referenced_constants(module: Module) -> set[str]:
    return {op.attrs["name"] for op in module.ops() if op.name == "constant"}


def _discarding_constants(rule: Rule) -> Rule:
    """The rule, with the module constants it added dropped again when it does not match."""
    def wrapped(op: Op, rw: Rewriter) -> RuleResult:
        before = len(rw.module.constants)
        res = rule(op, rw)
        if res is None and len(rw.module.constants) != before:
            for name in list(rw.module.constants)[before:]:
                del rw.module.constants[name]
        return res
    wrapped.__name__ = rule.__name__
    return wrapped
