"""Quantization: QuantizeLinear / DequantizeLinear (per-tensor, per-axis and blocked),
DynamicQuantizeLinear, MatMulInteger, ConvInteger, QLinearMatMul and QLinearConv.

Each maps onto the IR op of the same meaning (quantize, dequantize, dynamic_quantize,
matmul_integer, conv_integer, qlinear_matmul, qlinear_conv). What the IR ops do not take is
handled here: mixed x/scale dtypes (cast to one compute dtype, as ONNX's reference divides in
NumPy's promoted type), `output_dtype`, blocked scales (reshaped so that every block becomes a
row of a per-axis op), missing zero points of the QLinear ops (zeros) and `auto_pad`.
QuantizeLinear/DequantizeLinear also take u16, i4/u4/i2/u2, the f8 types and f4e2m1 (with
`saturate` for f8 results) and f8e8m0 scales (MX), which compute in f32.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from compiler.ir import Value
from compiler.ir import dtypes as dt

from ..importer import NodeContext, converter, ir_dtype

_FLOATS = (dt.f16, dt.bf16, dt.f32, dt.f64)


def _is_scale(d: dt.DType) -> bool:
    """A float scale dtype: an arithmetic float or f8e8m0 (a power of two, ONNX opset 25)."""
    return d.is_float or d is dt.f8e8m0


# --- QuantizeLinear / DequantizeLinear ---------------------------------------------------------


@converter("QuantizeLinear", since=10)
def quantize_linear(ctx: NodeContext) -> Value:
    x, scale = ctx.input(0), ctx.input(1)
    zp = ctx.input(2) if ctx.has_input(2) else None
    axis, block = _axis_and_block(ctx)
    out_dtype = _attr_dtype(ctx, "output_dtype")
    if zp is not None and out_dtype is not None and out_dtype is not zp.dtype:
        raise ctx.error(f"attribute output_dtype={out_dtype} differs from y_zero_point's dtype "
                        f"{zp.dtype}; they must agree")
    precision = _attr_dtype(ctx, "precision")
    if precision is not None and precision not in _FLOATS:
        raise ctx.error(f"attribute precision={precision} must be a float type")
    if not _is_scale(scale.dtype):
        raise ctx.error(f"y_scale must be a float tensor, got {scale.dtype}")
    # the division runs in `precision` if given, else in NumPy's promotion of x and y_scale
    cd = precision or _promote(x.dtype, scale.dtype)
    x, scale = _cast(ctx, x, cd), _cast(ctx, scale, cd)
    attrs = {} if zp is not None or out_dtype is None else {"dtype": out_dtype}
    if not ctx.attr("saturate", 1):
        attrs["saturate"] = False

    def quantize(x: Value, s: Value, z: Optional[Value], ax: int) -> Value:
        return ctx.op("quantize", x, s, *([z] if z is not None else []), axis=ax, **attrs)
    if block:
        return _blocked(ctx, x, scale, zp, axis, block, quantize)
    _check_granularity(ctx, x, scale, "y_scale")
    return quantize(x, scale, zp, axis)


@converter("DequantizeLinear", since=10)
def dequantize_linear(ctx: NodeContext) -> Value:
    x, scale = ctx.input(0), ctx.input(1)
    zp = ctx.input(2) if ctx.has_input(2) else None
    axis, block = _axis_and_block(ctx)
    out_dtype = _attr_dtype(ctx, "output_dtype") or scale.dtype
    if not _is_scale(scale.dtype) or not out_dtype.is_float:
        raise ctx.error(f"x_scale and the output must be float, got {scale.dtype} -> {out_dtype}")
    if zp is not None and x.dtype is dt.i32:
        known = ctx.known(2)
        if known is None or np.any(known != 0):
            raise ctx.error("an int32 x takes no x_zero_point (or a zero one)")
        zp = None
    # multiply in a float type holding both the scale and the output exactly, round once
    cd = scale.dtype if out_dtype is scale.dtype else \
        dt.f64 if dt.f64 in (scale.dtype, out_dtype) else dt.f32
    scale = _cast(ctx, scale, cd)

    def dequantize(x: Value, s: Value, z: Optional[Value], ax: int) -> Value:
        return ctx.op("dequantize", x, s, *([z] if z is not None else []), axis=ax)
    if block:
        y = _blocked(ctx, x, scale, zp, axis, block, dequantize)
    else:
        _check_granularity(ctx, x, scale, "x_scale")
        y = dequantize(x, scale, zp, axis)
    return _cast(ctx, y, out_dtype)


def _axis_and_block(ctx: NodeContext) -> tuple[int, int]:
    axis = ctx.attr("axis", 1)
    block = ctx.attr("block_size", 0)
    if block < 0:
        raise ctx.error(f"attribute block_size={block} must be >= 0")
    return axis, block


def _attr_dtype(ctx: NodeContext, name: str) -> Optional[dt.DType]:
    code = ctx.attr(name, 0)
    if not code:
        return None
    return ir_dtype(code, f"{ctx.op_type} node '{ctx.node.name}' attribute {name}")


def _promote(*dtypes: dt.DType) -> dt.DType:
    """NumPy's promotion of the dtypes; f32 for bf16 with f16, which NumPy cannot promote."""
    try:
        return dt.dtype(np.result_type(*(d.np_dtype for d in dtypes)))
    except TypeError:  # numpy's DTypePromotionError
        return dt.f32


def _cast(ctx: NodeContext, v: Value, to: dt.DType) -> Value:
    return v if v.dtype is to else ctx.op("cast", v, to=to)


def _check_granularity(ctx: NodeContext, x: Value, scale: Value, what: str) -> None:
    if scale.type.rank > 1:
        raise ctx.error(f"{what} of shape {list(scale.shape)} is neither a scalar nor 1-D "
                        "(per-axis); blocked quantization needs the block_size attribute")


QuantFn = Callable[[Value, Value, Optional[Value], int], Value]


def _blocked(ctx: NodeContext, x: Value, scale: Value, zp: Optional[Value], axis: int,
             block: int, fn: QuantFn) -> Value:
    """Blocked (de)quantization as a per-axis one: x is padded along `axis` to whole blocks and
    laid out as rows of one block each ([P, C, B, Q] -> [P*C*Q, B]), so the scale [P, C, Q]
    flattens to one scale per row; the result is laid back out and cropped."""
    shape = x.shape
    if not x.type.is_static:
        raise ctx.error(f"blocked quantization (block_size={block}) needs a static input shape, "
                        f"got {list(shape)}")
    rank = len(shape)
    if not -rank <= axis < rank:
        raise ctx.error(f"attribute axis={axis} is out of range for an input of rank {rank}")
    axis %= rank
    d = int(shape[axis])
    c = -(-d // block)
    want = list(shape[:axis]) + [c] + list(shape[axis + 1:])
    for what, p in (("scale", scale), ("zero point", zp)):
        if p is not None and list(p.shape) != want:
            raise ctx.error(f"blocked {what} must have shape {want} (x{list(shape)} with "
                            f"ceil({d}/{block}) = {c} blocks along axis {axis}), got "
                            f"{list(p.shape)}")
    p_, q_ = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    padded = c * block
    if padded != d:
        pads = [0] * (2 * rank)
        pads[rank + axis] = padded - d
        x = ctx.op("pad", x, pads=pads)
    rows = ctx.op("reshape", x, shape=[p_, c, block, q_])
    if q_ != 1:
        rows = ctx.op("transpose", rows, perm=[0, 1, 3, 2])
    rows = ctx.op("reshape", rows, shape=[p_ * c * q_, block])
    flat = [None if p is None else ctx.op("reshape", p, shape=[p_ * c * q_]) for p in (scale, zp)]
    y = fn(rows, flat[0], flat[1], 0)  # type: ignore[arg-type]
    if q_ != 1:
        y = ctx.op("transpose", ctx.op("reshape", y, shape=[p_, c, q_, block]), perm=[0, 1, 3, 2])
    y = ctx.op("reshape", y, shape=list(shape[:axis]) + [padded] + list(shape[axis + 1:]))
    if padded != d:
        y = ctx.op("slice", y, starts=[0], ends=[d], axes=[axis])
    return y


# --- dynamic quantization ---------------------------------------------------------------------


@converter("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(ctx: NodeContext) -> list[Value]:
    x = ctx.input(0)
    if x.dtype is not dt.f32:
        raise ctx.error(f"x must be float32, got {x.dtype}")
    return ctx.op("dynamic_quantize", x)  # type: ignore[return-value]


# --- integer contractions ---------------------------------------------------------------------


@converter("MatMulInteger", since=10)
def matmul_integer(ctx: NodeContext) -> Value:
    zps = [ctx.input(i) for i in (2, 3) if ctx.has_input(i)]
    if ctx.has_input(3) and not ctx.has_input(2):  # b's zero point without a's: a's is 0
        zps = [_zero(ctx, ctx.input(0).dtype), ctx.input(3)]
    return ctx.op("matmul_integer", ctx.input(0), ctx.input(1), *zps)


@converter("ConvInteger", since=10)
def conv_integer(ctx: NodeContext) -> Value:
    x, w = ctx.input(0), ctx.input(1)
    zps = [ctx.input(i) for i in (2, 3) if ctx.has_input(i)]
    if ctx.has_input(3) and not ctx.has_input(2):
        zps = [_zero(ctx, x.dtype), ctx.input(3)]
    return ctx.op("conv_integer", x, w, *zps, **conv_attrs(ctx, x, w))


@converter("QLinearMatMul", since=10)
def qlinear_matmul(ctx: NodeContext) -> Value:
    a, a_scale, b, b_scale, y_scale = (ctx.input(i) for i in (0, 1, 3, 4, 6))
    a_zp = ctx.input(2) if ctx.has_input(2) else _zero(ctx, a.dtype)
    b_zp = ctx.input(5) if ctx.has_input(5) else _zero(ctx, b.dtype)
    y_zp = ctx.input(7) if ctx.has_input(7) else _zero(ctx, a.dtype)
    a_scale, b_scale, y_scale = _common_float(ctx, a_scale, b_scale, y_scale)
    return ctx.op("qlinear_matmul", a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)


@converter("QLinearConv", since=10)
def qlinear_conv(ctx: NodeContext) -> Value:
    x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp = (ctx.input(i) for i in range(8))
    x_scale, w_scale, y_scale = _common_float(ctx, x_scale, w_scale, y_scale)
    bias = [ctx.input(8)] if ctx.has_input(8) else []
    return ctx.op("qlinear_conv", x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, *bias,
                  **conv_attrs(ctx, x, w))


def _zero(ctx: NodeContext, dtype: dt.DType) -> Value:
    return ctx.const(np.zeros((), dtype=dtype.np_dtype))


def _common_float(ctx: NodeContext, *scales: Value) -> list[Value]:
    """Scales of one float dtype (the IR ops take one); mixed ones widen to the widest."""
    for s in scales:
        if not s.dtype.is_float:
            raise ctx.error(f"scales must be float tensors, got {s.dtype}")
    to = _promote(*(s.dtype for s in scales))
    return [_cast(ctx, s, to) for s in scales]


def conv_attrs(ctx: NodeContext, x: Value, w: Value) -> dict:
    """ONNX Conv attributes (kernel_shape, strides, dilations, pads, auto_pad, group) as the IR
    conv family's strides/pads/dilations/groups, with auto_pad turned into explicit pads."""
    if x.type.rank < 3 or w.type.rank != x.type.rank:
        raise ctx.error(f"x must be [N, C, *spatial] and w of the same rank, got x{list(x.shape)} "
                        f"and w{list(w.shape)}")
    d = x.type.rank - 2
    kernel = list(w.shape[2:])
    given = ctx.attr("kernel_shape")
    if given is not None and list(given) != kernel:
        raise ctx.error(f"attribute kernel_shape={list(given)} differs from w's spatial dims "
                        f"{kernel}")
    strides = list(ctx.attr("strides", [1] * d))
    dilations = list(ctx.attr("dilations", [1] * d))
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad == "NOTSET":
        pads = list(ctx.attr("pads", [0] * (2 * d)))
    elif auto_pad == "VALID":
        pads = [0] * (2 * d)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = _same_pads(ctx, list(x.shape[2:]), kernel, strides, dilations,
                          upper=auto_pad == "SAME_UPPER")
    else:
        raise ctx.error(f"attribute auto_pad={auto_pad!r} is not one of NOTSET, VALID, "
                        "SAME_UPPER, SAME_LOWER")
    return {"strides": strides, "pads": pads, "dilations": dilations,
            "groups": ctx.attr("group", 1)}


def _same_pads(ctx: NodeContext, sizes: list, kernel: list, strides: list[int],
               dilations: list[int], upper: bool) -> list[int]:
    """Explicit pads for auto_pad SAME_*: output size ceil(in / stride), the odd pad at the end
    (SAME_UPPER) or the beginning (SAME_LOWER)."""
    begin, end = [], []
    for size, k, s, dl in zip(sizes, kernel, strides, dilations):
        if not isinstance(k, int):
            raise ctx.error(f"auto_pad needs static kernel dims, got {kernel}")
        reach = (k - 1) * dl + 1
        if isinstance(size, int):
            total = max(0, (-(-size // s) - 1) * s + reach - size)
        elif s == 1:
            total = reach - 1  # independent of the size
        else:
            raise ctx.error(f"auto_pad with stride {s} needs static spatial dims, got {sizes}")
        small, big = total // 2, total - total // 2
        begin.append(small if upper else big)
        end.append(big if upper else small)
    return begin + end
