"""Elementwise math, activations, reductions and the matmul family.

Most ONNX ops here map to one IR op. Activations without an IR op of their own (Selu, HardSigmoid,
Mish, ...) are composed from exact elementwise ops rather than expanded from their ONNX function
bodies, which also covers the opsets where ONNX does not define them as functions. Versions that
changed semantics get their own converters: Softmax/LogSoftmax/Hardmax before opset 13 normalize
over the whole block of trailing dims from `axis`; Clip takes bounds as attributes before opset 11.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from compiler.ir import Value
from compiler.ir import dtypes as dt
from compiler.ir.types import normalize_axis

from ..importer import NodeContext, converter
from .core import propagate_binary_dims

# ---------------------------------------------------------------------------------------------
# helpers


def _scalar(ctx: NodeContext, like: Value, value: Any) -> Value:
    """A rank-0 constant holding value in like's dtype (as ONNX's CastLike would convert it)."""
    with np.errstate(all="ignore"):
        return ctx.const(np.asarray(value).astype(like.dtype.np_dtype))


def _binary_operands(ctx: NodeContext) -> tuple[Value, Value]:
    """Inputs 0 and 1, with the pre-opset-7 `broadcast`/`axis` form turned into NumPy
    broadcasting: B's dims line up with A's from `axis`, so B gets trailing size-1 dims."""
    a, b = ctx.input(0), ctx.input(1)
    if ctx.attr("broadcast", 0) and ctx.attr("axis") is not None and 0 < b.type.rank < a.type.rank:
        axis = normalize_axis(ctx.attr("axis"), a.type.rank, "axis")
        trailing = a.type.rank - axis - b.type.rank
        if trailing < 0:
            raise ctx.error(f"attribute axis = {ctx.attr('axis')} puts B {b.type} past the end "
                            f"of A {a.type}")
        if trailing:
            b = ctx.op("unsqueeze", b, axes=list(range(b.type.rank, b.type.rank + trailing)))
    return a, b


def _variadic(ctx: NodeContext) -> list[Value]:
    xs = [v for v in ctx.inputs if v is not None]
    if not xs:
        raise ctx.error("needs at least one input")
    return xs


def _in_float(ctx: NodeContext, x: Value, fn: Callable[[Value], Value]) -> Value:
    """fn(x) for an op the IR defines on floats only: integer x goes through f64 and back
    (the result converted toward zero, as ONNX's integer kernels do)."""
    if x.dtype.is_float:
        return fn(x)
    return ctx.op("cast", fn(ctx.op("cast", x, to=dt.f64)), to=x.dtype)


# ---------------------------------------------------------------------------------------------
# unary math

_UNARY = {
    "Neg": "neg", "Abs": "abs", "Exp": "exp", "Log": "log", "Sqrt": "sqrt",
    "Reciprocal": "reciprocal", "Tanh": "tanh", "Sigmoid": "sigmoid", "Erf": "erf",
    "Sin": "sin", "Cos": "cos", "Tan": "tan", "Asin": "asin", "Acos": "acos", "Atan": "atan",
    "Sinh": "sinh", "Cosh": "cosh", "Asinh": "asinh", "Acosh": "acosh", "Atanh": "atanh",
    "Floor": "floor", "Ceil": "ceil", "Round": "round", "Sign": "sign", "IsNaN": "isnan",
    "Not": "not", "BitwiseNot": "bitwise_not", "Relu": "relu", "Softplus": "softplus",
}


@converter(*_UNARY)
def unary(ctx: NodeContext) -> Value:
    return ctx.op(_UNARY[ctx.op_type], ctx.input(0))


@converter("IsInf", since=10)
def isinf(ctx: NodeContext) -> Value:
    return ctx.op("isinf", ctx.input(0), detect_positive=bool(ctx.attr("detect_positive", 1)),
                  detect_negative=bool(ctx.attr("detect_negative", 1)))


# ---------------------------------------------------------------------------------------------
# binary arithmetic, logic and comparisons

_ARITH = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


@converter(*_ARITH)
def arith(ctx: NodeContext) -> Value:
    op = _ARITH[ctx.op_type]
    out = ctx.op(op, *_binary_operands(ctx))
    propagate_binary_dims(ctx, out, op)  # shape arithmetic keeps its symbolic dims
    return out


_BINARY = {
    "And": "and", "Or": "or", "Xor": "xor", "BitwiseAnd": "bitwise_and",
    "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor", "Equal": "eq", "Greater": "gt",
    "GreaterOrEqual": "ge", "Less": "lt", "LessOrEqual": "le",
}


@converter(*_BINARY)
def binary(ctx: NodeContext) -> Value:
    return ctx.op(_BINARY[ctx.op_type], *_binary_operands(ctx))


@converter("Mod", since=10)
def mod(ctx: NodeContext) -> Value:
    fmod = ctx.attr("fmod", 0)
    if fmod not in (0, 1):
        raise ctx.error(f"attribute fmod = {fmod} is not 0 or 1")
    return ctx.op("mod", ctx.input(0), ctx.input(1), fmod=bool(fmod))


@converter("Pow")
def pow_(ctx: NodeContext) -> Value:
    base, exponent = _binary_operands(ctx)
    if exponent.dtype is base.dtype:
        return ctx.op("pow", base, exponent)
    wider = exponent.dtype.is_float and (not base.dtype.is_float
                                         or exponent.dtype.bits > base.dtype.bits)
    if wider:
        # an integer base with a fractional exponent (or a wider float exponent): compute in the
        # exponent's type and convert the result back, as ONNX's reference does
        out = ctx.op("pow", ctx.op("cast", base, to=exponent.dtype), exponent)
        return ctx.op("cast", out, to=base.dtype)
    return ctx.op("pow", base, ctx.op("cast", exponent, to=base.dtype))


@converter("BitShift", since=11)
def bit_shift(ctx: NodeContext) -> Value:
    direction = ctx.attr("direction")
    ops = {"LEFT": "shift_left", "RIGHT": "shift_right"}
    if direction not in ops:
        raise ctx.error(f"attribute direction = {direction!r} is not 'LEFT' or 'RIGHT'")
    return ctx.op(ops[direction], ctx.input(0), ctx.input(1))


@converter("Where", since=9)
def where(ctx: NodeContext) -> Value:
    return ctx.op("where", ctx.input(0), ctx.input(1), ctx.input(2))


@converter("Max", "Min", "Sum")
def variadic(ctx: NodeContext) -> Value:
    op = {"Max": "max", "Min": "min", "Sum": "add"}[ctx.op_type]
    xs = _variadic(ctx)
    out = xs[0]
    for x in xs[1:]:
        out = ctx.op(op, out, x)
    return out


@converter("Mean")
def mean(ctx: NodeContext) -> Value:
    xs = _variadic(ctx)
    out = xs[0]
    for x in xs[1:]:
        out = ctx.op("add", out, x)
    return out if len(xs) == 1 else ctx.op("div", out, _scalar(ctx, out, len(xs)))


# ---------------------------------------------------------------------------------------------
# clip


@converter("Clip")
def clip_attrs(ctx: NodeContext) -> Value:
    """Opsets 1-10: bounds are float attributes."""
    x = ctx.input(0)
    lo, hi = ctx.attr("min"), ctx.attr("max")
    return _clip(ctx, x, None if lo is None else np.asarray(lo),
                 None if hi is None else np.asarray(hi))


@converter("Clip", since=11)
def clip_inputs(ctx: NodeContext) -> Value:
    """Opset 11 on: bounds are optional scalar inputs, which may be run-time values."""
    x = ctx.input(0)
    bounds: list[Any] = []
    for i in (1, 2):
        if not ctx.has_input(i):
            bounds.append(None)
        elif ctx.known(i) is not None:
            bounds.append(ctx.known(i))
        else:
            bounds.append(ctx.input(i))
    return _clip(ctx, x, *bounds)


def _clip(ctx: NodeContext, x: Value, lo: Any, hi: Any) -> Value:
    """clip with attribute bounds when both are constants the attribute holds exactly;
    otherwise max then min (which also gives ONNX's all-`max` result when min > max)."""
    def exact(b: Any) -> Optional[float]:
        if b is None or isinstance(b, Value) or np.asarray(b).size != 1:
            return None
        v = np.asarray(b).reshape(()).item()
        return float(v) if float(v) == v or v != v else None

    consts = [b is None or exact(b) is not None for b in (lo, hi)]
    flo = None if lo is None else exact(lo)
    fhi = None if hi is None else exact(hi)
    if all(consts) and (flo is None or fhi is None or flo <= fhi):
        if flo is None and fhi is None:
            return x
        return ctx.op("clip", x, min=flo, max=fhi)
    out = x
    for bound, op in ((lo, "max"), (hi, "min")):
        if bound is None:
            continue
        v = bound if isinstance(bound, Value) else _scalar(ctx, x, np.asarray(bound).reshape(()))
        if v.type.rank:
            v = ctx.op("reshape", v, shape=[])
        out = ctx.op(op, out, v)
    return out


# ---------------------------------------------------------------------------------------------
# activations


@converter("LeakyRelu")
def leaky_relu(ctx: NodeContext) -> Value:
    return ctx.op("leaky_relu", ctx.input(0), alpha=ctx.attr("alpha", 0.01))


@converter("Elu")
def elu(ctx: NodeContext) -> Value:
    return ctx.op("elu", ctx.input(0), alpha=ctx.attr("alpha", 1.0))


@converter("Selu")
def selu(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    alpha = ctx.attr("alpha", 1.67326319217681884765625)
    gamma = ctx.attr("gamma", 1.05070102214813232421875)
    return ctx.op("mul", ctx.op("elu", x, alpha=alpha), _scalar(ctx, x, gamma))


@converter("Celu", since=12)
def celu(ctx: NodeContext) -> Value:
    # max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) == alpha * elu(x / alpha)
    x = ctx.input(0)
    alpha = float(ctx.attr("alpha", 1.0))
    if alpha == 1.0:
        return ctx.op("elu", x)
    a = _scalar(ctx, x, alpha)
    return ctx.op("mul", ctx.op("elu", ctx.op("div", x, a)), a)


@converter("PRelu")
def prelu(ctx: NodeContext) -> Value:
    x, slope = ctx.input(0), ctx.input(1)
    if ctx.opset < 7 and slope.type.rank == 1 and x.type.rank >= 2 and slope.shape[0] != 1:
        # before opset 7 a 1-D slope is per channel (axis 1), not NumPy-broadcast
        slope = ctx.op("reshape", slope, shape=[slope.shape[0]] + [1] * (x.type.rank - 2))
    negative = ctx.op("lt", x, _scalar(ctx, x, 0))
    return ctx.op("where", negative, ctx.op("mul", x, slope), x)


def _hard_sigmoid(ctx: NodeContext, x: Value, alpha: float, beta: float) -> Value:
    y = ctx.op("add", ctx.op("mul", x, _scalar(ctx, x, alpha)), _scalar(ctx, x, beta))
    return ctx.op("clip", y, min=0.0, max=1.0)


@converter("HardSigmoid")
def hard_sigmoid(ctx: NodeContext) -> Value:
    return _hard_sigmoid(ctx, ctx.input(0), ctx.attr("alpha", 0.2), ctx.attr("beta", 0.5))


@converter("HardSwish", since=14)
def hard_swish(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    return ctx.op("mul", x, _hard_sigmoid(ctx, x, 1.0 / 6.0, 0.5))


@converter("Softsign")
def softsign(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    return ctx.op("div", x, ctx.op("add", ctx.op("abs", x), _scalar(ctx, x, 1)))


@converter("ThresholdedRelu", since=10)
def thresholded_relu(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    above = ctx.op("gt", x, _scalar(ctx, x, ctx.attr("alpha", 1.0)))
    return ctx.op("where", above, x, _scalar(ctx, x, 0))


@converter("Shrink", since=9)
def shrink(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    lambd, bias = ctx.attr("lambd", 0.5), ctx.attr("bias", 0.0)
    below = ctx.op("lt", x, _scalar(ctx, x, -lambd))
    above = ctx.op("gt", x, _scalar(ctx, x, lambd))
    b = _scalar(ctx, x, bias)
    inner = ctx.op("where", above, ctx.op("sub", x, b), _scalar(ctx, x, 0))
    return ctx.op("where", below, ctx.op("add", x, b), inner)


@converter("Mish", since=18)
def mish(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    return ctx.op("mul", x, ctx.op("tanh", ctx.op("softplus", x)))


@converter("Gelu", since=20)
def gelu(ctx: NodeContext) -> Value:
    approximate = ctx.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise ctx.error(f"attribute approximate = {approximate!r} is not 'none' or 'tanh'")
    return ctx.op("gelu", ctx.input(0), approximate=approximate)


# ---------------------------------------------------------------------------------------------
# softmax family

_AXISWISE = {"Softmax": "softmax", "LogSoftmax": "log_softmax", "Hardmax": "hardmax"}


def _hardmax(ctx: NodeContext, x: Value, axis: int) -> Value:
    """1 at the first maximum along axis, 0 elsewhere: argmax, then one_hot of it."""
    if x.type.rank == 0:
        raise ctx.error(f"input {x.type} must have rank >= 1")
    a = normalize_axis(axis, x.type.rank, "axis")
    depth = x.shape[a]
    if not isinstance(depth, int):
        raise ctx.error(f"axis {axis} of input {x.type} must be static (one_hot needs its size)")
    if depth == 0:
        return x
    idx = ctx.op("argmax", x, axis=a)
    return ctx.op("one_hot", idx, depth=depth, axis=a, dtype=x.dtype)


def _axiswise(ctx: NodeContext, x: Value, axis: int) -> Value:
    op = _AXISWISE[ctx.op_type]
    if op == "hardmax":
        return _hardmax(ctx, x, axis)
    return ctx.op(op, x, axis=axis)


@converter(*_AXISWISE)
def softmax_2d(ctx: NodeContext) -> Value:
    """Opsets 1-12: x is coerced to 2-D [prod(dims before axis), prod(dims from axis)] and each
    row is normalized over the whole trailing block."""
    x = ctx.input(0)
    rank = x.type.rank
    axis = ctx.attr("axis", 1)
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis <= rank:
        raise ctx.error(f"attribute axis = {ctx.attr('axis', 1)} is out of range for rank {rank}")
    if axis == rank - 1:  # the block is the last axis: the one-axis op as it is
        return _axiswise(ctx, x, -1)
    flat = ctx.op("flatten", x, axis=axis)
    return ctx.op("reshape", _axiswise(ctx, flat, 1), shape=list(x.shape))


@converter(*_AXISWISE, since=13)
def softmax(ctx: NodeContext) -> Value:
    return _axiswise(ctx, ctx.input(0), ctx.attr("axis", -1))


# ---------------------------------------------------------------------------------------------
# reductions

_REDUCE = {
    "ReduceSum": "reduce_sum", "ReduceMean": "reduce_mean", "ReduceMax": "reduce_max",
    "ReduceMin": "reduce_min", "ReduceProd": "reduce_prod", "ReduceL1": "reduce_l1",
    "ReduceL2": "reduce_l2", "ReduceSumSquare": "reduce_sum_square",
    "ReduceLogSumExp": "reduce_logsumexp", "ReduceLogSum": "reduce_sum",
}
_FLOAT_ONLY = {"reduce_mean", "reduce_l2", "reduce_logsumexp"}


def _reduce_axes(ctx: NodeContext) -> Optional[list[int]]:
    """The axes to reduce ([] means all), or None when the node is a no-op (empty axes with
    noop_with_empty_axes). Axes are an attribute before opset 13 (ReduceSum) / 18 (the others),
    an optional constant input after."""
    if ctx.attr("axes") is not None:
        axes = [int(a) for a in ctx.attr("axes")]
    elif ctx.has_input(1):
        axes = [int(a) for a in ctx.require_known(1, "axes").reshape(-1)]
    else:
        axes = []
    if not axes and ctx.attr("noop_with_empty_axes", 0):
        return None
    return axes


@converter(*_REDUCE)
def reduce(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    axes = _reduce_axes(ctx)
    if axes is None:
        return _reduce_nothing(ctx, x)
    op = _REDUCE[ctx.op_type]
    keepdims = bool(ctx.attr("keepdims", 1))

    def run(v: Value) -> Value:
        return ctx.op(op, v, axes=axes, keepdims=keepdims)

    if x.dtype.is_bool and op in ("reduce_max", "reduce_min"):  # False < True, as u8 0 < 1
        return ctx.op("cast", run(ctx.op("cast", x, to=dt.u8)), to=dt.bool_)
    if ctx.op_type == "ReduceLogSum":
        return _in_float(ctx, x, lambda v: ctx.op("log", run(v)))
    return _in_float(ctx, x, run) if op in _FLOAT_ONLY else run(x)


def _reduce_nothing(ctx: NodeContext, x: Value) -> Value:
    """A reduction over no axes (noop_with_empty_axes): what is left of the op is its elementwise
    part, as in ONNX's function definitions (ReduceSumSquare gives x*x, ReduceLogSum log(x))."""
    if ctx.op_type in ("ReduceL1", "ReduceL2"):
        return ctx.op("abs", x)
    if ctx.op_type == "ReduceSumSquare":
        return ctx.op("mul", x, x)
    if ctx.op_type == "ReduceLogSum":
        return _in_float(ctx, x, lambda v: ctx.op("log", v))
    return x


@converter("ArgMax", "ArgMin")
def arg_reduce(ctx: NodeContext) -> Value:
    op = "argmax" if ctx.op_type == "ArgMax" else "argmin"
    return ctx.op(op, ctx.input(0), axis=ctx.attr("axis", 0),
                  keepdims=bool(ctx.attr("keepdims", 1)),
                  select_last_index=bool(ctx.attr("select_last_index", 0)))


@converter("CumSum", since=11)
def cumsum(ctx: NodeContext) -> Value:
    axis = ctx.require_known(1, "axis")
    if axis.size != 1:
        raise ctx.error(f"input 1 (axis) must hold one value, got shape {list(axis.shape)}")
    return ctx.op("cumsum", ctx.input(0), axis=int(axis.reshape(-1)[0]),
                  exclusive=bool(ctx.attr("exclusive", 0)), reverse=bool(ctx.attr("reverse", 0)))


# ---------------------------------------------------------------------------------------------
# matmul family and normalizations


@converter("MatMul")
def matmul(ctx: NodeContext) -> Value:
    return ctx.op("matmul", ctx.input(0), ctx.input(1))


@converter("Gemm")
def gemm(ctx: NodeContext) -> Value:
    # before opset 7 `broadcast` chose whether C broadcasts; a C that needs no broadcasting
    # gives the same result either way, so the attribute is not consulted
    operands = [ctx.input(0), ctx.input(1)] + ([ctx.input(2)] if ctx.has_input(2) else [])
    return ctx.op("gemm", *operands, alpha=ctx.attr("alpha", 1.0), beta=ctx.attr("beta", 1.0),
                  trans_a=bool(ctx.attr("transA", 0)), trans_b=bool(ctx.attr("transB", 0)))


@converter("Einsum", since=12)
def einsum(ctx: NodeContext) -> Value:
    return ctx.op("einsum", *_variadic(ctx), equation=ctx.attr("equation"))


@converter("Det", since=11)
def det(ctx: NodeContext) -> Value:
    return ctx.op("det", ctx.input(0))


@converter("LpNormalization")
def lp_normalization(ctx: NodeContext) -> Value:
    """x / ||x||_p along axis, 0 where the norm is 0."""
    x = ctx.input(0)
    p = ctx.attr("p", 2)
    if p not in (1, 2):
        raise ctx.error(f"attribute p = {p} is not supported (ONNX defines p = 1 or 2)")
    axis = ctx.attr("axis", -1)
    norm = ctx.op("reduce_l2" if p == 2 else "reduce_l1", x, axes=[axis], keepdims=True)
    zero = _scalar(ctx, x, 0)
    return ctx.op("where", ctx.op("eq", norm, zero), zero, ctx.op("div", x, norm))

