"""Quantization ops: quantize / dequantize, dynamic quantization, integer matmul and conv, the
QLinear fused forms, and requantize. ONNX semantics unless stated.

Conventions shared by the family:
- A scale or zero point is per-tensor (shape [] or [1]) or per-axis: 1-D of size x.shape[axis]
  (quantize, dequantize, requantize; negative axis allowed). The integer contractions take
  per-row parameters for `a` ([M], or a's rank with a 1 at the K axis), per-column parameters for
  `b` ([N], or b's rank with a 1 at the K axis), and per-output-channel ones for conv weights ([M]).
- Rounding is half to even; results saturate to the integer dtype's range. A nan rounds to 0, so
  it quantizes to the zero point (ONNX leaves this undefined; the reference must be deterministic).
- Integer contractions are exact: zero points are subtracted and products accumulated in int64,
  then the sum is wrapped to i32 (ONNX allows overflow in 32-bit accumulation only).
- The QLinear ops and requantize rescale an i32 accumulator by a multiplier: an f32 value (for
  the QLinear ops, (in_scale * w_scale) / y_scale computed in f32, as ONNX Runtime does), then
  acc * multiplier is computed in f64 and rounded. f64 makes the reference exact for every i32
  accumulator; code generators that use f32 or fixed-point math must match to within one
  quantization step. qlinear_* == requantize(*_integer(...) [+ bias], multiplier, y_zero_point)
  exactly whenever the multiplier is per-tensor or along one axis (what rewrite-qdq produces).
- quantize divides x / scale in f32 (f16/bf16 inputs are widened first; f64 stays f64) and
  dequantize computes (x - zero_point) exactly in integers, converts once to f32 and multiplies
  by the scale, rounding once to the scale's dtype.
- quantize and dequantize also take the narrow types (ONNX QuantizeLinear/DequantizeLinear):
  i4/u4/i2/u2 round and saturate like the 8-bit ints; the f8 types and f4e2m1 convert
  x / scale + zero_point as `cast` does (round half to even; f8 saturates to the largest finite
  value unless `saturate` is false, f4e2m1 always does; nan stays nan in f8). A zero point of
  these floats is normally 0 and then adds nothing (-0 stays -0, as in hardware and onnx's
  reference); dequantize converts x to f32 exactly and subtracts the zero point there.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

import ml_dtypes

from .. import dtypes as dt
from ..reference import nn as nn_ref
from ..registry import attr, def_op
from ..types import (Dim, TensorType, TypeInferenceError, broadcast_shapes, format_dim,
                     normalize_axis)
from ._common import require_dtype
from .elementwise import _cast

# quantize results, dequantize inputs (ONNX QuantizeLinear T3 / DequantizeLinear T1, and i32)
QUANT_DTYPES = (dt.i8, dt.u8, dt.i16, dt.i32, dt.u16, dt.i4, dt.u4, dt.i2, dt.u2, dt.f8e4m3fn,
                dt.f8e4m3fnuz, dt.f8e5m2, dt.f8e5m2fnuz, dt.f4e2m1)
Q8_DTYPES = (dt.i8, dt.u8)                       # integer contraction inputs, requantize results
TRAITS = ("pure", "quantized")
CONTRACTION_TRAITS = ("pure", "quantized", "contraction")

_LOW_PRECISION = (np.dtype(np.float16), dt.bf16.np_dtype)


# --- type-rule helpers --------------------------------------------------------------------------


def _shape_str(shape: Sequence[Dim]) -> str:
    return "[" + ",".join(format_dim(d) for d in shape) + "]"


def _require_in(op: str, what: str, t: TensorType, allowed: Sequence[dt.DType]) -> None:
    if t.dtype not in allowed:
        # the core dtypes first; u16 and the narrow types after them
        names = "/".join(d.name for d in allowed if d in dt.ALL_DTYPES)
        extra = ", ".join(d.name for d in allowed if d not in dt.ALL_DTYPES)
        raise TypeInferenceError(f"{op} {what} must be {names}, got {t.dtype}"
                                 + (f" (also allowed: {extra})" if extra else ""))


def _same_dtype_as(op: str, what: str, t: TensorType, other: str, ref: TensorType) -> None:
    if t.dtype != ref.dtype:
        raise TypeInferenceError(f"{op} {what} must have {other}'s dtype {ref.dtype}, "
                                 f"got {t.dtype}")


def _same_dim(a: Dim, b: Dim) -> bool:
    """Dims that may be equal: the same int or symbol, or a symbol against an int (the symbol
    must equal it at run time, which the runtime checks; as in broadcast_shapes)."""
    return a == b or isinstance(a, int) != isinstance(b, int)


def _is_per_tensor(t: TensorType) -> bool:
    return t.rank == 0 or (t.rank == 1 and t.shape[0] == 1)


def _require_per_tensor(op: str, what: str, t: TensorType) -> None:
    if not _is_per_tensor(t):
        raise TypeInferenceError(f"{op} {what} must be a scalar (shape [] or [1]), "
                                 f"got shape {_shape_str(t.shape)}")


def _per_axis_param(op: str, what: str, p: TensorType, x: TensorType, axis: int) -> None:
    """Check a scale/zero point that is per-tensor or per-axis (1-D of size x.shape[axis])."""
    if _is_per_tensor(p):
        return
    if p.rank != 1:
        raise TypeInferenceError(f"{op} {what} must be a scalar or 1-D (per-axis), got shape "
                                 f"{_shape_str(p.shape)}")
    if x.rank == 0:
        raise TypeInferenceError(f"{op} {what} of shape {_shape_str(p.shape)} is per-axis, but "
                                 "x is a scalar; use a scalar")
    ax = normalize_axis(axis, x.rank, f"{op} axis")
    if not _same_dim(p.shape[0], x.shape[ax]):
        raise TypeInferenceError(
            f"{op} {what} has {format_dim(p.shape[0])} elements but x{_shape_str(x.shape)} has "
            f"{format_dim(x.shape[ax])} along axis {axis}; a per-axis {what} needs one per slice")


def _same_layout(op: str, what: str, zp: TensorType, scale: TensorType) -> None:
    """A zero point must have its scale's shape ([] and [1] both mean per-tensor)."""
    if not (_is_per_tensor(zp) and _is_per_tensor(scale)) and zp.shape != scale.shape:
        raise TypeInferenceError(f"{op} {what} shape {_shape_str(zp.shape)} differs from the "
                                 f"scale's shape {_shape_str(scale.shape)}")


def _matmul_shape(op: str, a: TensorType, b: TensorType) -> tuple[Dim, ...]:
    """NumPy matmul's result shape (1-D operands promoted, batch dims broadcast)."""
    if a.rank == 0 or b.rank == 0:
        raise TypeInferenceError(f"{op} operands must have rank >= 1, got a{_shape_str(a.shape)} "
                                 f"and b{_shape_str(b.shape)}")
    ash = a.shape if a.rank >= 2 else (1,) + a.shape
    bsh = b.shape if b.rank >= 2 else b.shape + (1,)
    if not _same_dim(ash[-1], bsh[-2]):
        raise TypeInferenceError(
            f"{op} contraction dims differ: a{_shape_str(a.shape)} has K = {format_dim(ash[-1])}, "
            f"b{_shape_str(b.shape)} has K = {format_dim(bsh[-2])}")
    try:
        batch = broadcast_shapes(ash[:-2], bsh[:-2])
    except TypeInferenceError as e:
        raise TypeInferenceError(f"{op} batch dims: {e}") from None
    return (batch + ((ash[-2],) if a.rank >= 2 else ()) + ((bsh[-1],) if b.rank >= 2 else ()))


def _matmul_param(op: str, what: str, p: TensorType, x: TensorType, side: str) -> None:
    """Per-tensor, per-row of a (side 'a': [M] or x's rank with 1 at -1) or per-column of b
    (side 'b': [N] or x's rank with 1 at -2); ONNX MatMulInteger / QLinearMatMul layouts."""
    if _is_per_tensor(p):
        return
    kind, k_axis, keep = ("row", -1, -2) if side == "a" else ("column", -2, -1)
    ok = False
    if x.rank >= 2 and p.rank == 1:
        ok = _same_dim(p.shape[0], x.shape[keep])
    elif x.rank >= 2 and p.rank == x.rank:
        others = [i for i in range(x.rank) if i != x.rank + k_axis]
        ok = p.shape[k_axis] == 1 and all(p.shape[i] == 1 or _same_dim(p.shape[i], x.shape[i])
                                          for i in others)
    if not ok:
        nd = list(x.shape)
        if x.rank >= 2:
            nd[k_axis] = 1
        want = (f", [{format_dim(x.shape[keep])}] or {_shape_str(nd)}" if x.rank >= 2 else
                f" (per-{kind} needs {side} of rank >= 2)")
        raise TypeInferenceError(f"{op} {what} of shape {_shape_str(p.shape)} is neither "
                                 f"per-tensor nor per-{kind} for {side}{_shape_str(x.shape)}; "
                                 f"expected [] or [1]{want}")


def _conv_attrs(op: str, d: int, strides: tuple[int, ...], pads: tuple[int, ...],
                dilations: tuple[int, ...], groups: int
                ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Validate conv attributes for d spatial dims; empty lists become their defaults."""
    strides = strides or (1,) * d
    pads = pads or (0,) * (2 * d)
    dilations = dilations or (1,) * d
    for name, vals, n, lo in (("strides", strides, d, 1), ("pads", pads, 2 * d, 0),
                              ("dilations", dilations, d, 1)):
        if len(vals) != n or any(v < lo for v in vals):
            raise TypeInferenceError(f"{op} attribute '{name}' must be {n} ints >= {lo} "
                                     f"(or empty), got {list(vals)}")
    if groups < 1:
        raise TypeInferenceError(f"{op} attribute 'groups' must be >= 1, got {groups}")
    return strides, pads, dilations


def _conv_shape(op: str, x: TensorType, w: TensorType, strides: tuple[int, ...],
                pads: tuple[int, ...], dilations: tuple[int, ...], groups: int) -> tuple[Dim, ...]:
    """ONNX Conv result shape [N, M, *out] for x [N, C, *in] and w [M, C/groups, *kernel]."""
    if x.rank < 3:
        raise TypeInferenceError(f"{op} x must be [N, C, *spatial] (rank >= 3), got "
                                 f"{_shape_str(x.shape)}")
    if w.rank != x.rank:
        raise TypeInferenceError(f"{op} w must have x's rank {x.rank} ([M, C/groups, *kernel]), "
                                 f"got {_shape_str(w.shape)}")
    d = x.rank - 2
    strides, pads, dilations = _conv_attrs(op, d, strides, pads, dilations, groups)
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    if isinstance(c, int) and isinstance(cg, int):
        if cg * groups != c:
            raise TypeInferenceError(f"{op} x has {c} channels but w{_shape_str(w.shape)} with "
                                     f"groups={groups} takes {cg} * {groups} = {cg * groups}")
    elif groups == 1 and not _same_dim(c, cg):
        raise TypeInferenceError(f"{op} x has {format_dim(c)} channels but w{_shape_str(w.shape)} "
                                 f"takes {format_dim(cg)}")
    elif groups > 1 and not isinstance(cg, int):
        raise TypeInferenceError(f"{op} with groups={groups} needs a static w dim 1 (channels per "
                                 f"group), got w{_shape_str(w.shape)}")
    if groups > 1 and (not isinstance(m, int) or m % groups):
        raise TypeInferenceError(f"{op} groups={groups} must divide the output channels "
                                 f"{format_dim(m)} (w's dim 0)")
    out: list[Dim] = [n, m]
    for i in range(d):
        size, k = x.shape[2 + i], w.shape[2 + i]
        s, pb, pe, dl = strides[i], pads[i], pads[d + i], dilations[i]
        if not isinstance(k, int):
            raise TypeInferenceError(f"{op} needs static kernel dims, got w{_shape_str(w.shape)}")
        if isinstance(size, str):
            # stride 1 with pads that cancel the window's reach ("same") keeps the size as it is
            if s == 1 and pb + pe == dl * (k - 1):
                out.append(size)
                continue
            raise TypeInferenceError(f"{op} needs a static spatial dim {i} (x is "
                                     f"{_shape_str(x.shape)}): the output size would be a "
                                     f"formula of ?{size} (kernel {k}, stride {s}, pads {pb},{pe}, "
                                     f"dilation {dl}); only stride 1 with 'same' pads keeps it")
        try:
            out.append(nn_ref.conv_output_shape([size], [k], [s], [pb, pe], [dl])[0])
        except ValueError as e:
            raise TypeInferenceError(f"{op} spatial dim {i}: {e}") from None
    return tuple(out)


def _conv_param(op: str, what: str, p: TensorType, w: TensorType) -> None:
    """Per-tensor or per-output-channel ([M]) weight parameter."""
    if _is_per_tensor(p) or (p.rank == 1 and _same_dim(p.shape[0], w.shape[0])):
        return
    raise TypeInferenceError(f"{op} {what} must be a scalar or [{format_dim(w.shape[0])}] (one per "
                             f"output channel), got shape {_shape_str(p.shape)}")


# --- reference helpers -------------------------------------------------------------------------


def _along(p: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A per-tensor or per-axis parameter shaped to broadcast against a rank-ndim tensor."""
    p = np.asarray(p)
    if p.ndim == 0 or p.size == 1:
        return p.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = p.size
    return p.reshape(shape)


def _float_compute(d: np.dtype) -> np.dtype:
    """f16/bf16 compute in f32; f32 and f64 (the interpreter's widened mode) in themselves."""
    return np.dtype(np.float32) if d in _LOW_PRECISION else np.dtype(d)


def _round_saturate(v: np.ndarray, zero_point: "np.ndarray | int", dtype: np.dtype) -> np.ndarray:
    """saturate(round_half_to_even(v) + zero_point) in `dtype`; nan rounds to 0."""
    r = np.rint(np.asarray(v, dtype=np.float64))
    r = np.where(np.isnan(r), 0.0, r) + np.asarray(zero_point, dtype=np.int64)
    info = ml_dtypes.iinfo(dtype)  # NumPy's iinfo does not know int4/int2
    return np.clip(r, int(info.min), int(info.max)).astype(dtype)


def _int64(x: np.ndarray, zero_point: Optional[np.ndarray]) -> np.ndarray:
    """x - zero_point, exact in int64 (zero_point already shaped to broadcast)."""
    x = np.asarray(x).astype(np.int64)
    return x if zero_point is None else x - np.asarray(zero_point).astype(np.int64)


def _wrap_i32(acc: np.ndarray) -> np.ndarray:
    """An int64 accumulator wrapped to i32, as a 32-bit accumulator would."""
    return np.asarray(acc, dtype=np.int64).astype(np.int32)


def _multiplier(in_scale: np.ndarray, w_scale: np.ndarray, y_scale: np.ndarray) -> np.ndarray:
    """(in_scale * w_scale) / y_scale in f32, each step rounded to f32 (f64 in widened runs)."""
    cd = np.result_type(_float_compute(in_scale.dtype), _float_compute(w_scale.dtype),
                        _float_compute(y_scale.dtype))
    return (in_scale.astype(cd) * w_scale.astype(cd)) / y_scale.astype(cd)


def _requantize(acc_i32: np.ndarray, multiplier: np.ndarray, zero_point: np.ndarray,
                dtype: np.dtype) -> np.ndarray:
    """saturate(round(acc * multiplier) + zero_point), the product in f64."""
    v = acc_i32.astype(np.float64) * np.asarray(multiplier).astype(np.float64)
    return _round_saturate(v, zero_point, dtype)


# --- quantize / dequantize ---------------------------------------------------------------------


def _quantize_rule(x: TensorType, scale: TensorType, zero_point: Optional[TensorType] = None, *,
                   axis: int, dtype: Optional[dt.DType], saturate: bool) -> TensorType:
    op = "quantize"
    require_dtype(op, x, ("float",), "x")
    _same_dtype_as(op, "scale", scale, "x", x)
    _per_axis_param(op, "scale", scale, x, axis)
    if dtype is not None:
        _require_in(op, "attribute 'dtype'", TensorType((), dtype), QUANT_DTYPES)
    if zero_point is None:
        return x.with_dtype(dtype or dt.u8)
    _require_in(op, "zero_point", zero_point, QUANT_DTYPES)
    _same_layout(op, "zero_point", zero_point, scale)
    if dtype is not None and dtype != zero_point.dtype:
        raise TypeInferenceError(f"{op} attribute 'dtype' is {dtype} but zero_point is "
                                 f"{zero_point.dtype}; they must agree (or leave 'dtype' out)")
    return x.with_dtype(zero_point.dtype)


def _quantize(x: np.ndarray, scale: np.ndarray, zero_point: Optional[np.ndarray] = None, *,
              axis: int, dtype: Optional[dt.DType], saturate: bool) -> np.ndarray:
    out = zero_point.dtype if zero_point is not None else (dtype or dt.u8).np_dtype
    cd = _float_compute(x.dtype)
    q = x.astype(cd) / _along(scale, x.ndim, axis).astype(cd)
    if dt.dtype(out).is_narrow_float:
        if zero_point is not None:
            zp = _along(zero_point, x.ndim, axis).astype(cd)
            q = np.where(zp == 0, q, q + zp)  # a zero zero point keeps -0
        return _cast(q, dt.dtype(out), saturate=saturate)
    zp = 0 if zero_point is None else _along(zero_point, x.ndim, axis)
    return _round_saturate(q, zp, out)


def_op("quantize", ["x", "scale", "zero_point?"], _quantize_rule, _quantize,
       attrs={"axis": attr("int", 1), "dtype": attr("dtype", None),
              "saturate": attr("bool", True)}, traits=TRAITS,
       doc="saturate(round_half_to_even(x / scale) + zero_point) (ONNX QuantizeLinear); the "
           "result dtype is zero_point's, else `dtype`, else u8; per-tensor or per-axis scale; "
           "f8 results clamp to the largest finite value unless `saturate` is false")


def _dequantize_rule(x: TensorType, scale: TensorType, zero_point: Optional[TensorType] = None, *,
                     axis: int) -> TensorType:
    op = "dequantize"
    _require_in(op, "x", x, QUANT_DTYPES)
    require_dtype(op, scale, ("float",), "scale")
    _per_axis_param(op, "scale", scale, x, axis)
    if zero_point is not None:
        _same_dtype_as(op, "zero_point", zero_point, "x", x)
        _same_layout(op, "zero_point", zero_point, scale)
    return x.with_dtype(scale.dtype)


def _dequantize(x: np.ndarray, scale: np.ndarray, zero_point: Optional[np.ndarray] = None, *,
                axis: int) -> np.ndarray:
    zp = None if zero_point is None else _along(zero_point, x.ndim, axis)
    cd = _float_compute(scale.dtype)
    if dt.dtype(x.dtype).is_narrow_float:  # exact in f32; x - 0 is x, -0 included
        dx = x.astype(cd) if zp is None else x.astype(cd) - zp.astype(cd)
    else:
        dx = _int64(x, zp).astype(cd)
    y = dx * _along(scale, x.ndim, axis).astype(cd)
    return y.astype(scale.dtype)


def_op("dequantize", ["x", "scale", "zero_point?"], _dequantize_rule, _dequantize,
       attrs={"axis": attr("int", 1)}, traits=TRAITS,
       doc="(x - zero_point) * scale in scale's dtype (ONNX DequantizeLinear); per-tensor or "
           "per-axis scale")


# --- dynamic quantization ----------------------------------------------------------------------


def _dynamic_quantize_rule(x: TensorType) -> list[TensorType]:
    _require_in("dynamic_quantize", "x", x, (dt.f32,))
    return [x.with_dtype(dt.u8), TensorType((), dt.f32), TensorType((), dt.u8)]


def _dynamic_quantize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX DynamicQuantizeLinear, step for step as its reference implementation."""
    cd = _float_compute(x.dtype)
    x = x.astype(cd)
    zero = cd.type(0)
    hi = max(zero, x.max()) if x.size else zero  # the range always includes 0
    lo = min(zero, x.min()) if x.size else zero
    scale = cd.type(1.0 if hi == lo else hi - lo) / cd.type(255)
    zp = np.rint(np.clip(cd.type(0) - lo / scale, 0, 255))
    y = _round_saturate(x / scale, zp.astype(np.int64), np.dtype(np.uint8))
    return y, np.asarray(scale, dtype=cd), np.asarray(zp, dtype=np.uint8)


def_op("dynamic_quantize", ["x"], _dynamic_quantize_rule, _dynamic_quantize, traits=TRAITS,
       doc="u8 quantization with scale and zero point from x's range including 0 (ONNX "
           "DynamicQuantizeLinear); results y, scale (f32 scalar), zero_point (u8 scalar)")


# --- integer contractions ----------------------------------------------------------------------


def _matmul_integer_rule(a: TensorType, b: TensorType, a_zero_point: Optional[TensorType] = None,
                         b_zero_point: Optional[TensorType] = None) -> TensorType:
    op = "matmul_integer"
    _require_in(op, "a", a, Q8_DTYPES)
    _require_in(op, "b", b, Q8_DTYPES)
    shape = _matmul_shape(op, a, b)
    if a_zero_point is not None:
        _same_dtype_as(op, "a_zero_point", a_zero_point, "a", a)
        _matmul_param(op, "a_zero_point", a_zero_point, a, "a")
    if b_zero_point is not None:
        _same_dtype_as(op, "b_zero_point", b_zero_point, "b", b)
        _matmul_param(op, "b_zero_point", b_zero_point, b, "b")
    return TensorType(shape, dt.i32)


def _row(p: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """A per-tensor / per-row parameter of a, shaped to broadcast against [..., M, K]."""
    if p is None or p.size == 1:
        return None if p is None else p.reshape(())
    return p.reshape(-1, 1) if p.ndim == 1 else p


def _col(p: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """A per-tensor / per-column parameter of b; [N] and [..., 1, N] broadcast as they are."""
    return p.reshape(()) if p is not None and p.size == 1 else p


def _int_matmul(a: np.ndarray, b: np.ndarray, a_zp: Optional[np.ndarray],
                b_zp: Optional[np.ndarray]) -> np.ndarray:
    """(a - a_zp) @ (b - b_zp) exactly, 1-D operands promoted to 2-D (not squeezed back)."""
    a2 = a if a.ndim >= 2 else a[None, :]
    b2 = b if b.ndim >= 2 else b[:, None]
    return _wrap_i32(np.matmul(_int64(a2, _row(a_zp)), _int64(b2, _col(b_zp))))


def _squeeze_promoted(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Drop the dims that 1-D matmul operands were promoted with."""
    if b.ndim == 1:
        y = y[..., 0]
    if a.ndim == 1:
        y = y[..., 0, :] if b.ndim >= 2 else y[..., 0]
    return y


def _matmul_integer(a: np.ndarray, b: np.ndarray, a_zero_point: Optional[np.ndarray] = None,
                    b_zero_point: Optional[np.ndarray] = None) -> np.ndarray:
    return _squeeze_promoted(_int_matmul(a, b, a_zero_point, b_zero_point), a, b)


def_op("matmul_integer", ["a", "b", "a_zero_point?", "b_zero_point?"], _matmul_integer_rule,
       _matmul_integer, traits=CONTRACTION_TRAITS,
       doc="(a - a_zero_point) @ (b - b_zero_point) exactly, i32 result (ONNX MatMulInteger); "
           "zero points per-tensor, per-row of a, per-column of b")

_CONV_ATTRS = {"strides": attr("ints", ()), "pads": attr("ints", ()),
               "dilations": attr("ints", ()), "groups": attr("int", 1)}
_CONV_ATTR_DOC = ("; strides/dilations empty mean all 1, pads (begin..., end...) empty means 0")


def _conv_integer_rule(x: TensorType, w: TensorType, x_zero_point: Optional[TensorType] = None,
                       w_zero_point: Optional[TensorType] = None, *, strides: tuple[int, ...],
                       pads: tuple[int, ...], dilations: tuple[int, ...],
                       groups: int) -> TensorType:
    op = "conv_integer"
    _require_in(op, "x", x, Q8_DTYPES)
    _require_in(op, "w", w, Q8_DTYPES)
    shape = _conv_shape(op, x, w, strides, pads, dilations, groups)
    if x_zero_point is not None:
        _same_dtype_as(op, "x_zero_point", x_zero_point, "x", x)
        _require_per_tensor(op, "x_zero_point", x_zero_point)
    if w_zero_point is not None:
        _same_dtype_as(op, "w_zero_point", w_zero_point, "w", w)
        _conv_param(op, "w_zero_point", w_zero_point, w)
    return TensorType(shape, dt.i32)


def _int_conv(x: np.ndarray, w: np.ndarray, x_zp: Optional[np.ndarray],
              w_zp: Optional[np.ndarray], bias: Optional[np.ndarray], strides: tuple[int, ...],
              pads: tuple[int, ...], dilations: tuple[int, ...], groups: int) -> np.ndarray:
    """Exact integer conv of the zero-point-shifted operands (+ bias), wrapped to i32.

    Padding is zero after the shift, i.e. the zero point before it (ONNX, ONNX Runtime). The
    reference conv runs on f64 copies of the int64 values: every partial sum is an integer far
    below 2**53, so the result is exact.
    """
    d = x.ndim - 2
    strides, pads, dilations = _conv_attrs("conv", d, strides, pads, dilations, groups)
    xs = _int64(x, None if x_zp is None else x_zp.reshape(()))
    ws = _int64(w, None if w_zp is None else _along(w_zp, w.ndim, 0))
    acc = nn_ref.conv(xs.astype(np.float64), ws.astype(np.float64),
                      None if bias is None else bias.astype(np.float64),
                      strides=strides, pads=pads, dilations=dilations, groups=groups)
    return _wrap_i32(np.rint(acc).astype(np.int64))


def _conv_integer(x: np.ndarray, w: np.ndarray, x_zero_point: Optional[np.ndarray] = None,
                  w_zero_point: Optional[np.ndarray] = None, *, strides: tuple[int, ...],
                  pads: tuple[int, ...], dilations: tuple[int, ...], groups: int) -> np.ndarray:
    return _int_conv(x, w, x_zero_point, w_zero_point, None, strides, pads, dilations, groups)


def_op("conv_integer", ["x", "w", "x_zero_point?", "w_zero_point?"], _conv_integer_rule,
       _conv_integer, attrs=_CONV_ATTRS, traits=CONTRACTION_TRAITS,
       doc="conv(x - x_zero_point, w - w_zero_point) exactly, i32 result (ONNX ConvInteger); "
           "w_zero_point per-tensor or per output channel" + _CONV_ATTR_DOC)


# --- QLinear ops and requantize ----------------------------------------------------------------


def _scales(op: str, *named: tuple[str, TensorType]) -> None:
    """All scales are floats of one dtype."""
    first_name, first = named[0]
    require_dtype(op, first, ("float",), first_name)
    for name, t in named[1:]:
        _same_dtype_as(op, name, t, first_name, first)


def _qlinear_matmul_rule(a: TensorType, a_scale: TensorType, a_zero_point: TensorType,
                         b: TensorType, b_scale: TensorType, b_zero_point: TensorType,
                         y_scale: TensorType, y_zero_point: TensorType) -> TensorType:
    op = "qlinear_matmul"
    _require_in(op, "a", a, Q8_DTYPES)
    _require_in(op, "b", b, Q8_DTYPES)
    shape = _matmul_shape(op, a, b)
    _scales(op, ("a_scale", a_scale), ("b_scale", b_scale), ("y_scale", y_scale))
    _same_dtype_as(op, "a_zero_point", a_zero_point, "a", a)
    _same_dtype_as(op, "b_zero_point", b_zero_point, "b", b)
    _require_in(op, "y_zero_point", y_zero_point, Q8_DTYPES)
    for what, p, x, side in (("a_scale", a_scale, a, "a"), ("a_zero_point", a_zero_point, a, "a"),
                             ("b_scale", b_scale, b, "b"), ("b_zero_point", b_zero_point, b, "b")):
        _matmul_param(op, what, p, x, side)
    _same_layout(op, "a_zero_point", a_zero_point, a_scale)
    _same_layout(op, "b_zero_point", b_zero_point, b_scale)
    _require_per_tensor(op, "y_scale", y_scale)
    _require_per_tensor(op, "y_zero_point", y_zero_point)
    return TensorType(shape, y_zero_point.dtype)


def _qlinear_matmul(a: np.ndarray, a_scale: np.ndarray, a_zero_point: np.ndarray, b: np.ndarray,
                    b_scale: np.ndarray, b_zero_point: np.ndarray, y_scale: np.ndarray,
                    y_zero_point: np.ndarray) -> np.ndarray:
    acc = _int_matmul(a, b, a_zero_point, b_zero_point)
    mult = _multiplier(_row(a_scale), _col(b_scale), y_scale.reshape(()))
    y = _requantize(acc, mult, y_zero_point.reshape(()), y_zero_point.dtype)
    return _squeeze_promoted(y, a, b)


def_op("qlinear_matmul", ["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point",
                          "y_scale", "y_zero_point"],
       _qlinear_matmul_rule, _qlinear_matmul, traits=CONTRACTION_TRAITS,
       doc="quantized matmul (ONNX QLinearMatMul): the exact i32 product requantized by "
           "(a_scale * b_scale) / y_scale; per-row a / per-column b scales, result y_zero_point's "
           "dtype")


def _qlinear_conv_rule(x: TensorType, x_scale: TensorType, x_zero_point: TensorType,
                       w: TensorType, w_scale: TensorType, w_zero_point: TensorType,
                       y_scale: TensorType, y_zero_point: TensorType,
                       bias: Optional[TensorType] = None, *, strides: tuple[int, ...],
                       pads: tuple[int, ...], dilations: tuple[int, ...],
                       groups: int) -> TensorType:
    op = "qlinear_conv"
    _require_in(op, "x", x, Q8_DTYPES)
    _require_in(op, "w", w, Q8_DTYPES)
    shape = _conv_shape(op, x, w, strides, pads, dilations, groups)
    _scales(op, ("x_scale", x_scale), ("w_scale", w_scale), ("y_scale", y_scale))
    _same_dtype_as(op, "x_zero_point", x_zero_point, "x", x)
    _same_dtype_as(op, "w_zero_point", w_zero_point, "w", w)
    _require_in(op, "y_zero_point", y_zero_point, Q8_DTYPES)
    for what, p in (("x_scale", x_scale), ("x_zero_point", x_zero_point), ("y_scale", y_scale),
                    ("y_zero_point", y_zero_point)):
        _require_per_tensor(op, what, p)
    _conv_param(op, "w_scale", w_scale, w)
    _conv_param(op, "w_zero_point", w_zero_point, w)
    _same_layout(op, "w_zero_point", w_zero_point, w_scale)
    if bias is not None:
        _require_in(op, "bias", bias, (dt.i32,))
        if bias.rank != 1 or not _same_dim(bias.shape[0], w.shape[0]):
            raise TypeInferenceError(f"{op} bias must be [{format_dim(w.shape[0])}] (one per "
                                     f"output channel), got {_shape_str(bias.shape)}")
    return TensorType(shape, y_zero_point.dtype)


def _qlinear_conv(x: np.ndarray, x_scale: np.ndarray, x_zero_point: np.ndarray, w: np.ndarray,
                  w_scale: np.ndarray, w_zero_point: np.ndarray, y_scale: np.ndarray,
                  y_zero_point: np.ndarray, bias: Optional[np.ndarray] = None, *,
                  strides: tuple[int, ...], pads: tuple[int, ...], dilations: tuple[int, ...],
                  groups: int) -> np.ndarray:
    acc = _int_conv(x, w, x_zero_point, w_zero_point, bias, strides, pads, dilations, groups)
    mult = _multiplier(x_scale.reshape(()), _along(w_scale, x.ndim, 1), y_scale.reshape(()))
    return _requantize(acc, mult, y_zero_point.reshape(()), y_zero_point.dtype)


def_op("qlinear_conv", ["x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point",
                        "y_scale", "y_zero_point", "bias?"],
       _qlinear_conv_rule, _qlinear_conv, attrs=_CONV_ATTRS, traits=CONTRACTION_TRAITS,
       doc="quantized conv (ONNX QLinearConv): exact i32 conv + i32 bias requantized by "
           "(x_scale * w_scale) / y_scale; per-channel w_scale/w_zero_point" + _CONV_ATTR_DOC)


def _requantize_rule(x: TensorType, multiplier: TensorType, zero_point: TensorType, *,
                     axis: int) -> TensorType:
    op = "requantize"
    _require_in(op, "x", x, (dt.i32,))
    _require_in(op, "multiplier", multiplier, (dt.f32,))
    _per_axis_param(op, "multiplier", multiplier, x, axis)
    _require_in(op, "zero_point", zero_point, Q8_DTYPES)
    _require_per_tensor(op, "zero_point", zero_point)
    return x.with_dtype(zero_point.dtype)


def _requantize_ref(x: np.ndarray, multiplier: np.ndarray, zero_point: np.ndarray, *,
                    axis: int) -> np.ndarray:
    return _requantize(x, _along(multiplier, x.ndim, axis), zero_point.reshape(()),
                       zero_point.dtype)


def_op("requantize", ["x", "multiplier", "zero_point"], _requantize_rule, _requantize_ref,
       attrs={"axis": attr("int", 1)}, traits=TRAITS,
       doc="saturate(round_half_to_even(x * multiplier) + zero_point) for an i32 accumulator, the "
           "product in f64 (code generators match within one step); result zero_point's dtype")
