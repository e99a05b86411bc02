"""StableHLO rules for the quantization ops as integer arithmetic.

Integer contractions subtract the zero points and multiply-accumulate in i32 (wrapping, which
equals the reference's exact int64 sum wrapped to i32). Requantization multiplies the i32
accumulator by the multiplier in the wide float (f64 on "xla": exact like the reference; f32 on
"tpu": within one quantization step), rounds half to even (nan -> 0), adds the zero point and
saturates.
"""
from __future__ import annotations

from typing import Optional

from compiler.ir import Op
from compiler.ir import dtypes as dt
from compiler.ir.dtypes import DType

from .emitter import Emitter, Val
from .lower_contraction import matmul_values
from .lower_elementwise import cast
from .lowering import Context, compute_dtype, lowering, optional, result_type


def along(e: Emitter, p: Val, ndim: int, axis: int) -> Val:
    """A per-tensor ([] or [1]) or per-axis (1-D) parameter shaped to broadcast against a
    rank-ndim tensor (the reference's _along)."""
    if p.size == 1:
        return e.reshape(p, ())
    shape = [1] * ndim
    shape[axis % ndim] = p.size
    return e.reshape(p, shape)


def round_saturate(e: Emitter, v: Val, zero_point: Optional[Val], out: DType) -> Val:
    """saturate(round_half_to_even(v) + zero_point) in `out`; nan rounds to 0."""
    r = e.unary("round_nearest_even", v)
    r = e.select(e.isnan(r), e.const(0.0, r.dtype), r)
    if zero_point is not None:
        r = e.add(r, e.convert(zero_point, r.dtype))
    lo, hi = out.int_range()
    r = e.op1("stablehlo.clamp", [e.const(float(lo), r.dtype), r, e.const(float(hi), r.dtype)],
              r.shape, r.dtype)
    return e.convert(r, out)


def _shifted(e: Emitter, x: Val, zero_point: Optional[Val]) -> Val:
    """x - zero_point exactly, in i32 (i64 for 32-bit x, whose difference may not fit)."""
    wide = dt.i64 if x.dtype.bits >= 32 else dt.i32
    xi = e.convert(x, wide)
    return xi if zero_point is None else e.sub(xi, e.convert(zero_point, wide))


@lowering("quantize")
def _quantize(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, scale, zp = optional(args, 3)
    shape, out = result_type(op)
    axis = op.attrs["axis"]
    cd = compute_dtype(x.dtype)
    q = e.div(e.convert(x, cd), e.convert(along(e, scale, x.rank, axis), cd))
    zpa = along(e, zp, x.rank, axis) if zp is not None else None
    if out.is_narrow_float:
        if zpa is not None:
            z = e.convert(zpa, cd)
            q = e.select(e.compare("EQ", e.broadcast_to(z, q.shape), 0.0), q, e.add(q, z))
        return [cast(e, ctx, q, out, saturate=op.attrs["saturate"])]
    wide = ctx.options.wide_float if cd != dt.f64 else dt.f64
    return [round_saturate(e, e.convert(q, wide), zpa, out)]


@lowering("dequantize")
def _dequantize(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, scale, zp = optional(args, 3)
    shape, out = result_type(op)
    axis = op.attrs["axis"]
    cd = compute_dtype(scale.dtype)
    zpa = along(e, zp, x.rank, axis) if zp is not None else None
    if x.dtype.is_narrow_float:  # exact in f32; x - 0 keeps -0
        dx = e.convert(x, cd)
        if zpa is not None:
            dx = e.sub(dx, e.convert(zpa, cd))
    else:
        dx = e.convert(_shifted(e, x, zpa), cd)
    y = e.mul(dx, e.convert(along(e, scale, x.rank, axis), cd))
    return [e.convert(y, out)]


@lowering("dynamic_quantize")
def _dynamic_quantize(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    """ONNX DynamicQuantizeLinear: the range always includes 0."""
    x = args[0]
    axes = list(range(x.rank))
    hi = e.reduce_simple(x, 0.0, axes, "maximum") if axes else e.max(x, 0.0)
    lo = e.reduce_simple(x, 0.0, axes, "minimum") if axes else e.min(x, 0.0)
    span = e.select(e.compare("EQ", hi, lo), e.const(1.0, dt.f32), e.sub(hi, lo))
    scale = e.div(span, 255.0)
    shifted = e.sub(e.const(0.0, dt.f32), e.div(lo, scale))
    clamped = e.op1("stablehlo.clamp", [e.const(0.0, dt.f32), shifted, e.const(255.0, dt.f32)],
                    (), dt.f32)
    zp_f = e.unary("round_nearest_even", clamped)
    zp = e.convert(zp_f, dt.u8)
    y = round_saturate(e, e.convert(e.div(x, scale), ctx.options.wide_float), zp, dt.u8)
    return [y, scale, zp]


# --- integer contractions -----------------------------------------------------------------------


def _row(e: Emitter, p: Optional[Val], a: Val) -> Optional[Val]:
    """A per-tensor / per-row parameter of a ([M] -> [M, 1]; a's rank with 1 at K stays)."""
    if p is None:
        return None
    if p.size == 1:
        return e.reshape(p, ())
    return e.reshape(p, (p.shape[0], 1)) if p.rank == 1 else p


def _col(e: Emitter, p: Optional[Val]) -> Optional[Val]:
    if p is None:
        return None
    return e.reshape(p, ()) if p.size == 1 else p


def _int_matmul(e: Emitter, ctx: Context, a: Val, b: Val, a_zp: Optional[Val],
                b_zp: Optional[Val]) -> Val:
    """(a - a_zp) @ (b - b_zp) in i32 with NumPy matmul shapes; 1-D operands promoted (not
    squeezed back)."""
    a2 = a if a.rank >= 2 else e.reshape(a, (1,) + a.shape)
    b2 = b if b.rank >= 2 else e.reshape(b, b.shape + (1,))
    az, bz = _row(e, a_zp, a2), _col(e, b_zp)
    ai = e.convert(_shifted(e, a2, az), dt.i32)
    bi = e.convert(_shifted(e, b2, bz), dt.i32)
    return matmul_values(e, ctx, ai, bi)


@lowering("matmul_integer")
def _matmul_integer(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    a, b, a_zp, b_zp = optional(args, 4)
    shape, _ = result_type(op)
    return [e.reshape(_int_matmul(e, ctx, a, b, a_zp, b_zp), shape)]


def _int_conv(e: Emitter, op: Op, x: Val, w: Val, x_zp: Optional[Val], w_zp: Optional[Val],
              bias: Optional[Val], shape: tuple) -> Val:
    d = x.rank - 2
    strides = list(op.attrs["strides"] or [1] * d)
    pads = list(op.attrs["pads"] or [0] * (2 * d))
    dil = list(op.attrs["dilations"] or [1] * d)
    xs = e.convert(_shifted(e, x, None if x_zp is None else e.reshape(x_zp, ())), dt.i32)
    ws = e.convert(_shifted(e, w, None if w_zp is None else along(e, w_zp, w.rank, 0)), dt.i32)
    # padding is zero after the shift (the zero point before it), as ONNX says
    y = e.convolution(xs, ws, shape, strides=strides, padding=list(zip(pads[:d], pads[d:])),
                      lhs_dilation=[1] * d, rhs_dilation=dil, groups=op.attrs["groups"],
                      out_dtype=dt.i32)
    if bias is not None:
        y = e.add(y, e.reshape(e.convert(bias, dt.i32), (bias.shape[0],) + (1,) * d))
    return y


@lowering("conv_integer")
def _conv_integer(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, w, x_zp, w_zp = optional(args, 4)
    shape, _ = result_type(op)
    return [_int_conv(e, op, x, w, x_zp, w_zp, None, shape)]


def _multiplier(e: Emitter, in_scale: Val, w_scale: Val, y_scale: Val) -> Val:
    """(in_scale * w_scale) / y_scale, each step rounded to the scales' compute dtype."""
    cd = dt.f64 if dt.f64 in (in_scale.dtype, w_scale.dtype, y_scale.dtype) else dt.f32
    return e.div(e.mul(e.convert(in_scale, cd), e.convert(w_scale, cd)),
                 e.convert(y_scale, cd))


def _requantize(e: Emitter, ctx: Context, acc: Val, mult: Val, zp: Val, out: DType) -> Val:
    wide = ctx.options.wide_float
    v = e.mul(e.convert(acc, wide), e.convert(mult, wide))
    return round_saturate(e, v, zp, out)


@lowering("qlinear_matmul")
def _qlinear_matmul(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp = args
    shape, out = result_type(op)
    acc = _int_matmul(e, ctx, a, b, a_zp, b_zp)
    a2 = a if a.rank >= 2 else e.reshape(a, (1,) + a.shape)
    mult = _multiplier(e, _row(e, a_scale, a2), _col(e, b_scale), e.reshape(y_scale, ()))
    y = _requantize(e, ctx, acc, mult, e.reshape(y_zp, ()), out)
    return [e.reshape(y, shape)]


@lowering("qlinear_conv")
def _qlinear_conv(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias = optional(args, 9)
    shape, out = result_type(op)
    acc = _int_conv(e, op, x, w, x_zp, w_zp, bias, shape)
    mult = _multiplier(e, e.reshape(x_scale, ()), along(e, w_scale, x.rank, 1),
                       e.reshape(y_scale, ()))
    return [_requantize(e, ctx, acc, mult, e.reshape(y_zp, ()), out)]


@lowering("requantize")
def _requantize_rule(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, mult, zp = args
    shape, out = result_type(op)
    return [_requantize(e, ctx, x, along(e, mult, x.rank, op.attrs["axis"]),
                        e.reshape(zp, ()), out)]
