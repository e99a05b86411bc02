"""Elementwise ATen ops: arithmetic with torch's type promotion, math, activations,
comparisons, logic, where/masked_fill, clamp, and dtype conversions.

Python scalars (and zero-dim tensors) combine with tensors following torch's promotion rules
(`torch._prims_common.elementwise_dtypes` on stand-in tensors), so a float scalar with an int
tensor computes in float and an int scalar with an f16 tensor stays f16.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch._prims_common import ELEMENTWISE_TYPE_PROMOTION_KIND, elementwise_dtypes

from compiler.ir import Value
from compiler.ir import dtypes as dt

from .importer import NodeContext, Operand, Sym, converter, ir_dtype, torch_dtype


def promote(*xs: Operand) -> dt.DType:
    """The dtype torch computes `xs` (tensors and scalars) in for an ordinary elementwise op."""
    probes = []
    for x in xs:
        if isinstance(x, Value):
            probes.append(torch.empty((1,) if x.type.rank else (), dtype=torch_dtype(x.dtype)))
        elif isinstance(x, Sym):
            probes.append(1)
        else:
            probes.append(x)
    _, result = elementwise_dtypes(*probes,
                                   type_promotion_kind=ELEMENTWISE_TYPE_PROMOTION_KIND.DEFAULT)
    return ir_dtype(result, "type promotion")


def _float_dtype(ctx: NodeContext, d: dt.DType) -> dt.DType:
    """d when it is a float type, else the dtype torch produced (int -> float promotion)."""
    if d.is_float:
        return d
    out = ctx.out_dtype()
    return out if out is not None and out.is_float else dt.f32


def _pair(ctx: NodeContext, a_key: str = "self", b_key: str = "other"
          ) -> tuple[Value, Value, dt.DType]:
    a, b = ctx.operand(a_key), ctx.operand(b_key)
    d = promote(a, b)
    return ctx.as_value(a, d), ctx.as_value(b, d), d


def trunc(ctx: NodeContext, x: Value) -> Value:
    """Round toward zero (floats): ceil below 0, floor above."""
    neg = ctx.op("lt", x, ctx.scalar(0, x.dtype))
    return ctx.op("where", neg, ctx.op("ceil", x), ctx.op("floor", x))


# --- arithmetic -----------------------------------------------------------------------------------


def _scaled(ctx: NodeContext, v: Value, alpha) -> Value:
    return v if alpha in (None, 1) else ctx.op("mul", v, ctx.scalar(alpha, v.dtype))


@converter("aten.add.Tensor", "aten.add.Scalar")
def add(ctx: NodeContext) -> Value:
    a, b, d = _pair(ctx)
    if d.is_bool:  # torch adds bools as a logical or
        return ctx.op("or", a, b)
    return ctx.op("add", a, _scaled(ctx, b, ctx.arg("alpha", 1)))


@converter("aten.sub.Tensor", "aten.sub.Scalar")
def sub(ctx: NodeContext) -> Value:
    a, b, _ = _pair(ctx)
    return ctx.op("sub", a, _scaled(ctx, b, ctx.arg("alpha", 1)))


@converter("aten.rsub.Tensor", "aten.rsub.Scalar")
def rsub(ctx: NodeContext) -> Value:
    a, b, _ = _pair(ctx)  # other - alpha * self
    return ctx.op("sub", b, _scaled(ctx, a, ctx.arg("alpha", 1)))


@converter("aten.mul.Tensor", "aten.mul.Scalar")
def mul(ctx: NodeContext) -> Value:
    a, b, d = _pair(ctx)
    return ctx.op("and" if d.is_bool else "mul", a, b)


def divide(ctx: NodeContext, a: Value, b: Value, rounding_mode: Optional[str]) -> Value:
    """torch.div: true division (ints give floats), or rounded toward zero or down."""
    d = a.dtype
    if rounding_mode is None:
        f = _float_dtype(ctx, d)
        return ctx.op("div", ctx.cast(a, f), ctx.cast(b, f))
    if d.is_bool:
        a, b = ctx.cast(a, dt.i64), ctx.cast(b, dt.i64)
        d = dt.i64
    if rounding_mode == "trunc":
        return ctx.op("div", a, b) if d.is_int else trunc(ctx, ctx.op("div", a, b))
    if rounding_mode == "floor":
        if d.is_float:
            return ctx.op("floor", ctx.op("div", a, b))
        # a - (a mod b) is an exact multiple of b (mod takes the divisor's sign)
        return ctx.op("div", ctx.op("sub", a, ctx.op("mod", a, b)), b)
    raise ctx.error(f"unknown rounding_mode {rounding_mode!r}")


@converter("aten.div.Tensor", "aten.div.Scalar", "aten.div.Tensor_mode", "aten.div.Scalar_mode",
           "aten.true_divide", "aten.floor_divide")
def div(ctx: NodeContext) -> Value:
    a, b, _ = _pair(ctx)
    mode = "floor" if "floor_divide" in str(ctx.node.target) else ctx.arg("rounding_mode")
    return divide(ctx, a, b, mode)


@converter("aten.remainder.Tensor", "aten.remainder.Scalar", "aten.fmod.Tensor",
           "aten.fmod.Scalar")
def remainder(ctx: NodeContext) -> Value:
    a, b, _ = _pair(ctx)
    return ctx.op("mod", a, b, fmod="fmod" in str(ctx.node.target))


@converter("aten.pow.Tensor_Scalar", "aten.pow.Tensor_Tensor", "aten.pow.Scalar")
def pow_(ctx: NodeContext) -> Value:
    a, b = ctx.operand("self"), ctx.operand("exponent")
    d = promote(a, b)
    x = ctx.as_value(a, d)
    if not isinstance(b, (Value, Sym)) and isinstance(x, Value) and d.is_float:
        if b == 1:
            return x
        if b == 2:  # the common square: exact, and cheaper than pow
            return ctx.op("mul", x, x)
        if b == 0.5:
            return ctx.op("sqrt", x)
        if b == -1:
            return ctx.op("reciprocal", x)
        if b == -0.5:
            return ctx.op("rsqrt", x)
    return ctx.op("pow", x, ctx.as_value(b, d))


@converter("aten.minimum", "aten.maximum", "aten.fmin", "aten.fmax")
def min_max(ctx: NodeContext) -> Value:
    a, b, d = _pair(ctx)
    name = "min" if "min" in str(ctx.node.target) else "max"
    if d.is_bool:
        return ctx.op("and" if name == "min" else "or", a, b)
    return ctx.op(name, a, b)


@converter("aten.neg")
def neg(ctx: NodeContext) -> Value:
    return ctx.op("neg", ctx.tensor("self"))


@converter("aten.abs")
def abs_(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    return x if x.dtype.is_bool or x.dtype.kind == "uint" else ctx.op("abs", x)


@converter("aten.sign")
def sign(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    return x if x.dtype.is_bool else ctx.op("sign", x)


# --- float math and activations -------------------------------------------------------------------


def _float_unary(ir_op: str):
    def convert(ctx: NodeContext) -> Value:
        x = ctx.tensor("self")
        return ctx.op(ir_op, ctx.cast(x, _float_dtype(ctx, x.dtype)))
    convert.__name__ = ir_op
    return convert


for _aten, _ir in (("exp", "exp"), ("log", "log"), ("sqrt", "sqrt"), ("rsqrt", "rsqrt"),
                   ("reciprocal", "reciprocal"), ("tanh", "tanh"), ("sigmoid", "sigmoid"),
                   ("erf", "erf"), ("sin", "sin"), ("cos", "cos"), ("silu", "silu")):
    converter(f"aten.{_aten}")(_float_unary(_ir))


def _log_scaled(factor: float):
    def convert(ctx: NodeContext) -> Value:
        x = ctx.tensor("self")
        y = ctx.op("log", ctx.cast(x, _float_dtype(ctx, x.dtype)))
        return ctx.op("mul", y, ctx.scalar(factor, y.dtype))
    return convert


converter("aten.log2")(_log_scaled(1 / math.log(2)))
converter("aten.log10")(_log_scaled(1 / math.log(10)))


@converter("aten.log1p")
def log1p(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    x = ctx.cast(x, _float_dtype(ctx, x.dtype))
    return ctx.op("log", ctx.op("add", x, ctx.scalar(1, x.dtype)))


@converter("aten.expm1")
def expm1(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    x = ctx.cast(x, _float_dtype(ctx, x.dtype))
    return ctx.op("sub", ctx.op("exp", x), ctx.scalar(1, x.dtype))


@converter("aten.exp2")
def exp2(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    x = ctx.cast(x, _float_dtype(ctx, x.dtype))
    return ctx.op("pow", ctx.scalar(2, x.dtype), x)


@converter("aten.relu")
def relu(ctx: NodeContext) -> Value:
    return ctx.op("relu", ctx.tensor("self"))


@converter("aten.gelu")
def gelu(ctx: NodeContext) -> Value:
    return ctx.op("gelu", ctx.tensor("self"), approximate=ctx.arg("approximate", "none"))


@converter("aten.leaky_relu")
def leaky_relu(ctx: NodeContext) -> Value:
    return ctx.op("leaky_relu", ctx.tensor("self"), alpha=float(ctx.arg("negative_slope", 0.01)))


@converter("aten.elu")
def elu(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    alpha, scale = float(ctx.arg("alpha", 1.0)), float(ctx.arg("scale", 1.0))
    input_scale = float(ctx.arg("input_scale", 1.0))
    if scale == 1.0 and input_scale == 1.0:
        return ctx.op("elu", x, alpha=alpha)
    # torch: scale * x for x > 0, else scale * alpha * (exp(input_scale * x) - 1) (selu, celu)
    d = x.dtype
    em1 = ctx.op("sub", ctx.op("exp", ctx.op("mul", x, ctx.scalar(input_scale, d))),
                 ctx.scalar(1, d))
    negative = ctx.op("mul", em1, ctx.scalar(scale * alpha, d))
    positive = ctx.op("mul", x, ctx.scalar(scale, d))
    return ctx.op("where", ctx.op("gt", x, ctx.scalar(0, d)), positive, negative)


@converter("aten.softplus")
def softplus(ctx: NodeContext) -> Value:
    # torch returns x itself where beta*x > threshold (20): log1p(exp(-20)) < 3e-9, below f32
    x = ctx.tensor("self")
    beta = float(ctx.arg("beta", 1.0))
    if beta == 1.0:
        return ctx.op("softplus", x)
    y = ctx.op("softplus", ctx.op("mul", x, ctx.scalar(beta, x.dtype)))
    return ctx.op("div", y, ctx.scalar(beta, x.dtype))


@converter("aten.hardsigmoid")
def hardsigmoid(ctx: NodeContext) -> Value:
    return _hardsigmoid(ctx, ctx.tensor("self"))


def _hardsigmoid(ctx: NodeContext, x: Value) -> Value:
    y = ctx.op("add", ctx.op("div", x, ctx.scalar(6, x.dtype)), ctx.scalar(0.5, x.dtype))
    return ctx.op("clip", y, min=0.0, max=1.0)


@converter("aten.hardswish")
def hardswish(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    return ctx.op("mul", x, _hardsigmoid(ctx, x))


@converter("aten.hardtanh")
def hardtanh(ctx: NodeContext) -> Value:
    lo, hi = float(ctx.arg("min_val", -1.0)), float(ctx.arg("max_val", 1.0))
    return ctx.op("clip", ctx.tensor("self"), min=lo, max=hi)


def _clip_scalars(ctx: NodeContext, lo, hi) -> Value:
    x = ctx.tensor("self")
    x = ctx.cast(x, ctx.out_dtype() or x.dtype)  # a float bound makes an int tensor float
    if lo is not None and hi is not None and lo > hi:
        lo = hi  # torch: min(max(x, lo), hi) is hi everywhere
    return ctx.op("clip", x, min=None if lo is None else float(lo),
                  max=None if hi is None else float(hi))


def _clip_tensors(ctx: NodeContext, lo: Optional[Operand], hi: Optional[Operand]) -> Value:
    x = ctx.tensor("self")
    d = promote(*(v for v in (x, lo, hi) if v is not None))
    y = ctx.cast(x, d)
    if lo is not None:
        y = ctx.op("max", y, ctx.as_value(lo, d))
    if hi is not None:
        y = ctx.op("min", y, ctx.as_value(hi, d))
    return y


@converter("aten.clamp", "aten.clip")
def clamp(ctx: NodeContext) -> Value:
    lo, hi = ctx.arg("min"), ctx.arg("max")
    if isinstance(lo, Value) or isinstance(hi, Value):
        return _clip_tensors(ctx, lo, hi)
    return _clip_scalars(ctx, lo, hi)


@converter("aten.clamp_min")
def clamp_min(ctx: NodeContext) -> Value:
    lo = ctx.arg("min")
    return _clip_tensors(ctx, lo, None) if isinstance(lo, Value) else _clip_scalars(ctx, lo, None)


@converter("aten.clamp_max")
def clamp_max(ctx: NodeContext) -> Value:
    hi = ctx.arg("max")
    return _clip_tensors(ctx, None, hi) if isinstance(hi, Value) else _clip_scalars(ctx, None, hi)


@converter("aten.floor", "aten.ceil", "aten.round.default", "aten.trunc", "aten.fix")
def rounding(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    if not x.dtype.is_float:
        return x
    name = ctx.node.target.overloadpacket.__name__
    return trunc(ctx, x) if name in ("trunc", "fix") else ctx.op(name, x)


@converter("aten.round.decimals")
def round_decimals(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    n = int(ctx.arg("decimals", 0))
    if not x.dtype.is_float or n == 0:
        return x if not x.dtype.is_float else ctx.op("round", x)
    s = ctx.scalar(10.0 ** n, x.dtype)  # torch: round(x * 10**n) / 10**n
    return ctx.op("div", ctx.op("round", ctx.op("mul", x, s)), s)


# --- comparisons and logic ------------------------------------------------------------------------


def _compare(ir_op: str):
    def convert(ctx: NodeContext) -> Value:
        a, b, d = _pair(ctx)
        if d.is_bool and ir_op not in ("eq", "ne"):
            a, b = ctx.cast(a, dt.u8), ctx.cast(b, dt.u8)
        return ctx.op(ir_op, a, b)
    convert.__name__ = ir_op
    return convert


for _name in ("eq", "ne", "lt", "le", "gt", "ge"):
    converter(f"aten.{_name}.Tensor", f"aten.{_name}.Scalar")(_compare(_name))


def _logical(ir_op: str):
    def convert(ctx: NodeContext) -> Value:
        a = ctx.cast(ctx.tensor("self"), dt.bool_)
        b = ctx.as_value(ctx.operand("other"), dt.bool_)
        return ctx.op(ir_op, a, b)
    return convert


for _name, _ir in (("and", "and"), ("or", "or"), ("xor", "xor")):
    converter(f"aten.logical_{_name}")(_logical(_ir))


def _bool_only(node) -> Optional[str]:
    val = node.meta.get("val")
    if isinstance(val, torch.Tensor) and val.dtype != torch.bool:
        return f"bitwise op on {val.dtype} (the IR has bitwise ops on bool only)"
    return None


for _name, _ir in (("and", "and"), ("or", "or"), ("xor", "xor")):
    converter(f"aten.bitwise_{_name}", check=_bool_only)(_logical(_ir))


@converter("aten.logical_not")
def logical_not(ctx: NodeContext) -> Value:
    return ctx.op("not", ctx.cast(ctx.tensor("self"), dt.bool_))


@converter("aten.bitwise_not", check=_bool_only)
def bitwise_not(ctx: NodeContext) -> Value:
    return ctx.op("not", ctx.tensor("self"))


def _all_false(ctx: NodeContext, x: Value) -> Value:
    if x.type.is_static:
        return ctx.const(np.zeros(x.shape, np.bool_))
    return ctx.op("full", shape=list(x.shape), value=0.0, dtype=dt.bool_)


@converter("aten.isnan")
def isnan(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    return ctx.op("isnan", x) if x.dtype.is_float else _all_false(ctx, x)


@converter("aten.isinf", "aten.isposinf", "aten.isneginf")
def isinf(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    if not x.dtype.is_float:
        return _all_false(ctx, x)
    name = ctx.node.target.overloadpacket.__name__
    return ctx.op("isinf", x, detect_positive=name != "isneginf",
                  detect_negative=name != "isposinf")


@converter("aten.where.self", "aten.where.ScalarSelf", "aten.where.ScalarOther",
           "aten.where.Scalar")
def where(ctx: NodeContext) -> Value:
    cond = ctx.cast(ctx.tensor("condition"), dt.bool_)
    a, b, _ = _pair(ctx)
    return ctx.op("where", cond, a, b)


@converter("aten.masked_fill.Scalar", "aten.masked_fill.Tensor")
def masked_fill(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    mask = ctx.cast(ctx.tensor("mask"), dt.bool_)
    return ctx.op("where", mask, ctx.as_value(ctx.operand("value"), x.dtype), x)


# --- dtype conversions and copies -----------------------------------------------------------------


@converter("aten._to_copy", "aten.to", "aten.type_as", "aten.clone", "aten.alias",
           "aten.detach", "aten.lift_fresh_copy", "aten.lift_fresh", "aten.contiguous")
def identity(ctx: NodeContext) -> Value:
    """Copies and dtype conversions (device, layout and memory format do not matter here)."""
    x = ctx.tensor("self")
    return ctx.cast(x, ctx.out_dtype() or x.dtype)


@converter("aten.copy")
def copy(ctx: NodeContext) -> Value:
    x, src = ctx.tensor("self"), ctx.tensor("src")
    src = ctx.cast(src, x.dtype)
    if src.shape == x.shape:
        return src
    return ctx.op("broadcast_to", src, shape=list(x.shape))
