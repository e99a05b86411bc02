"""StableHLO rules for the elementwise ops: unary math, activations, binary arithmetic, logic,
comparisons, where, clip, cast, bitcast, bitwise ops and shifts.

f16/bf16 math runs in f32 and rounds once (`widen`), as the references do. Integer division and
remainder by zero give 0, integer powers with negative exponents truncate toward zero, shifts by
negative or too-large amounts give the sign fill: the references' choices where C (and XLA) leave
the result undefined.
"""
from __future__ import annotations

import math
from typing import Callable

from compiler.ir import Op
from compiler.ir import dtypes as dt
from compiler.ir.dtypes import DType

from .emitter import Emitter, Val
from .lowering import Context, lowering, result_type, widen

# --- float unary math ---------------------------------------------------------------------------


def _float_unary(fn: Callable[[Emitter, Val, Op], Val]):
    """A rule that computes fn on x widened to f32 (f16/bf16) and rounds to the result dtype."""
    def rule(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
        (x,) = widen(e, args[0])
        return [e.convert(fn(e, x, op), result_type(op)[1])]
    return rule


_SIMPLE = {"exp": "exponential", "log": "log", "sqrt": "sqrt", "tanh": "tanh", "sin": "sine",
           "cos": "cosine", "floor": "floor", "ceil": "ceil", "round": "round_nearest_even",
           "tan": "tan", "erf": "chlo.erf", "asin": "chlo.asin", "acos": "chlo.acos",
           "sinh": "chlo.sinh", "cosh": "chlo.cosh", "asinh": "chlo.asinh",
           "acosh": "chlo.acosh", "atanh": "chlo.atanh"}

for _name, _hlo in _SIMPLE.items():
    lowering(_name)(_float_unary(lambda e, x, op, _h=_hlo: e.unary(_h, x)))


@lowering("atan")
@_float_unary
def _atan(e: Emitter, x: Val, op: Op) -> Val:
    return e.binary("atan2", x, 1.0)


@lowering("rsqrt")
@_float_unary
def _rsqrt(e: Emitter, x: Val, op: Op) -> Val:
    return e.div(e.const(1.0, x.dtype), e.sqrt(x))


@lowering("reciprocal")
@_float_unary
def _reciprocal(e: Emitter, x: Val, op: Op) -> Val:
    return e.div(e.const(1.0, x.dtype), x)


def _sigmoid_of(e: Emitter, x: Val) -> Val:
    one = e.const(1.0, x.dtype)
    return e.div(one, e.add(one, e.exp(e.neg(x))))


@lowering("sigmoid")
@_float_unary
def _sigmoid(e: Emitter, x: Val, op: Op) -> Val:
    return _sigmoid_of(e, x)


@lowering("silu")
@_float_unary
def _silu(e: Emitter, x: Val, op: Op) -> Val:
    return e.div(x, e.add(e.const(1.0, x.dtype), e.exp(e.neg(x))))


@lowering("softplus")
@_float_unary
def _softplus(e: Emitter, x: Val, op: Op) -> Val:
    # logaddexp(0, x) = max(0, x) + log1p(exp(-|x|))
    return e.add(e.max(x, 0.0), e.unary("log_plus_one", e.exp(e.neg(e.abs(x)))))


@lowering("leaky_relu")
@_float_unary
def _leaky_relu(e: Emitter, x: Val, op: Op) -> Val:
    return e.select(e.compare("GE", x, 0.0), x, e.mul(x, op.attrs["alpha"]))


@lowering("elu")
@_float_unary
def _elu(e: Emitter, x: Val, op: Op) -> Val:
    neg = e.mul(e.const(op.attrs["alpha"], x.dtype),
                e.unary("exponential_minus_one", e.min(x, 0.0)))
    return e.select(e.compare("GT", x, 0.0), x, neg)


@lowering("gelu")
@_float_unary
def _gelu(e: Emitter, x: Val, op: Op) -> Val:
    half = e.mul(e.const(0.5, x.dtype), x)
    if op.attrs["approximate"] == "tanh":
        cube = e.mul(e.mul(e.mul(e.const(0.044715, x.dtype), x), x), x)
        inner = e.mul(e.const(math.sqrt(2.0 / math.pi), x.dtype), e.add(x, cube))
        return e.mul(half, e.add(e.const(1.0, x.dtype), e.unary("tanh", inner)))
    erf = e.unary("chlo.erf", e.div(x, e.const(math.sqrt(2.0), x.dtype)))
    return e.mul(half, e.add(e.const(1.0, x.dtype), erf))


# --- numeric unary ------------------------------------------------------------------------------


@lowering("neg")
def _neg(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    (x,) = widen(e, args[0])
    return [e.convert(e.neg(x), args[0].dtype)]


@lowering("abs")
def _abs(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    if x.dtype.kind == "uint":
        return [x]
    return [e.abs(x)]


@lowering("sign")
def _sign(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    if x.dtype.kind == "uint":
        return [e.convert(e.compare("GT", x, 0), x.dtype)]
    (w,) = widen(e, x)
    return [e.convert(e.unary("sign", w), x.dtype)]


@lowering("relu")
def _relu(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    return [e.max(args[0], 0)]


@lowering("not")
def _not(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    return [e.not_(args[0])]


@lowering("bitwise_not")
def _bitwise_not(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    return [e.not_(args[0])]


@lowering("isnan")
def _isnan(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    return [e.isnan(args[0])]


@lowering("isinf")
def _isinf(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    pos, neg = op.attrs["detect_positive"], op.attrs["detect_negative"]
    if not pos and not neg:
        return [e.const(False, dt.bool_, x.shape)]
    inf = e.compare("EQ", e.abs(x), float("inf"))
    if pos and neg:
        return [inf]
    return [e.and_(inf, e.compare("GT" if pos else "LT", x, 0.0))]


# --- binary arithmetic --------------------------------------------------------------------------


def _binary_rule(hlo: str):
    def rule(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
        a, b = widen(e, *args)
        return [e.convert(e.binary(hlo, a, b), result_type(op)[1])]
    return rule


for _name, _hlo in {"add": "add", "sub": "subtract", "mul": "multiply", "max": "maximum",
                    "min": "minimum", "and": "and", "or": "or", "xor": "xor",
                    "bitwise_and": "and", "bitwise_or": "or", "bitwise_xor": "xor"}.items():
    lowering(_name)(_binary_rule(_hlo))


def _safe_divisor(e: Emitter, b: Val) -> tuple[Val, Val]:
    """(b == 0, b with zeros replaced by 1)."""
    zero = e.compare("EQ", b, 0)
    return zero, e.select(zero, e.const(1, b.dtype), b)


@lowering("div")
def _div(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    a, b = e._operands(*args)
    if a.dtype.is_float:
        a, b = widen(e, a, b)
        return [e.convert(e.div(a, b), args[0].dtype)]
    zero, safe = _safe_divisor(e, b)  # C truncation; x / 0 gives 0
    return [e.select(zero, e.const(0, a.dtype), e.div(a, safe))]


@lowering("mod")
def _mod(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    a, b = e._operands(*args)
    fmod = op.attrs["fmod"]
    if a.dtype.is_float:
        a, b = widen(e, a, b)
        r = e.binary("remainder", a, b)
        if not fmod:  # NumPy's float mod: the divisor's sign; a zero takes b's sign too
            adjust = e.and_(e.compare("NE", r, 0.0),
                            e.compare("NE", e.compare("LT", r, 0.0), e.compare("LT", b, 0.0)))
            r = e.select(adjust, e.add(r, b), r)
            signed_zero = e.select(e.compare("LT", b, 0.0), e.const(-0.0, r.dtype),
                                   e.const(0.0, r.dtype))
            r = e.select(e.compare("EQ", r, 0.0), signed_zero, r)
        return [e.convert(r, args[0].dtype)]
    zero, safe = _safe_divisor(e, b)
    r = e.binary("remainder", a, safe)
    if not fmod and a.dtype.kind == "int":
        adjust = e.and_(e.compare("NE", r, 0),
                        e.compare("NE", e.compare("LT", r, 0), e.compare("LT", safe, 0)))
        r = e.select(adjust, e.add(r, safe), r)
    return [e.select(zero, e.const(0, a.dtype), r)]


@lowering("pow")
def _pow(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    a, b = e._operands(*args)
    if a.dtype.is_float:
        wa, wb = widen(e, a, b)
        return [e.convert(e.binary("power", wa, wb), a.dtype)]
    if a.dtype.kind == "uint":
        return [e.binary("power", a, b)]
    # a ** (negative b) truncates toward zero: 1 for a == 1, +-1 for a == -1, else 0
    neg = e.compare("LT", b, 0)
    pos = e.binary("power", a, e.select(neg, e.const(0, b.dtype), b))
    odd = e.compare("NE", e.binary("remainder", b, e.const(2, b.dtype)), 0)
    minus_one = e.select(odd, e.const(-1, a.dtype), e.const(1, a.dtype))
    inv = e.select(e.compare("EQ", a, 1), e.const(1, a.dtype),
                   e.select(e.compare("EQ", a, -1), minus_one, e.const(0, a.dtype)))
    return [e.select(neg, inv, pos)]


def _compare_rule(direction: str):
    def rule(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
        return [e.compare(direction, args[0], args[1])]
    return rule


for _name, _dir in {"eq": "EQ", "ne": "NE", "lt": "LT", "le": "LE", "gt": "GT",
                    "ge": "GE"}.items():
    lowering(_name)(_compare_rule(_dir))


@lowering("shift_left", "shift_right")
def _shift(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    a, b = e._operands(*args)
    bits = a.dtype.bits
    ok = e.and_(e.compare("GE", b, 0), e.compare("LT", b, bits))
    amount = e.select(ok, b, e.const(0, b.dtype))
    if op.name == "shift_left":
        out = e.binary("shift_left", a, amount)
        fill = e.const(0, a.dtype, a.shape)
    elif a.dtype.kind == "int":
        out = e.binary("shift_right_arithmetic", a, amount)
        fill = e.select(e.compare("LT", a, 0), e.const(-1, a.dtype), e.const(0, a.dtype))
    else:
        out = e.binary("shift_right_logical", a, amount)
        fill = e.const(0, a.dtype, a.shape)
    return [e.select(ok, out, fill)]


# --- where, clip --------------------------------------------------------------------------------


@lowering("where")
def _where(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    return [e.select(*args)]


@lowering("clip")
def _clip(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    lo, hi = op.attrs["min"], op.attrs["max"]
    if x.dtype.is_int:
        info_lo, info_hi = x.dtype.int_range()

        def sat(v: float, rnd: Callable[[float], int]) -> int:
            if not math.isfinite(v):
                return info_lo if v < 0 else info_hi
            return int(min(max(rnd(v), info_lo), info_hi))
        lo = None if lo is None else sat(lo, math.ceil)
        hi = None if hi is None else sat(hi, math.floor)
    if lo is not None:
        x = e.max(x, e.const(lo, x.dtype))
    if hi is not None:
        x = e.min(x, e.const(hi, x.dtype))
    return [x]


# --- cast ---------------------------------------------------------------------------------------
# The rules of compiler/ir/ops/elementwise.py `_cast`, step by step.

_F8_SATURATING = ("f8e4m3fn", "f8e5m2", "f8e4m3fnuz", "f8e5m2fnuz")


@lowering("cast")
def _cast_rule(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    to = op.attrs["to"]
    return [cast(e, ctx, args[0], to, op.attrs["saturate"], op.attrs["round_mode"])]


def cast(e: Emitter, ctx: Context, x: Val, to: DType, saturate: bool = True,
         round_mode: str = "up") -> Val:
    """ONNX Cast as the reference defines it (see compiler/ir/ops/elementwise.py)."""
    if x.dtype == to and not (saturate and to == dt.f8e5m2):
        return x
    if x.dtype.is_narrow_float and to.is_integral:
        return _narrow_float_to_int(e, x, to)
    if x.dtype.is_narrow_float:
        x = e.convert(x, dt.f32)  # exact
    elif x.dtype.is_narrow_int:
        x = e.convert(x, dt.i64)
    if to.is_bool:
        return x if x.dtype.is_bool else e.compare("NE", x, 0)
    if to.is_narrow_int:
        return _to_narrow_int(e, x, to)
    if to.is_narrow_float:
        return _to_narrow_float(e, ctx, x, to, saturate, round_mode)
    if x.dtype == dt.bf16 and not to.is_float:
        x = e.convert(x, dt.f32)
    if x.dtype.is_float and to.is_int and to.bits < 32:
        # NumPy converts through a 32-bit int and keeps the low bits (XLA would saturate)
        x = e.convert(x, dt.i32)
    if to == dt.bf16 and (x.dtype.is_int or x.dtype.is_bool):
        x = e.convert(x, ctx.options.wide_float)
    if x.dtype.is_bool and to.is_float:
        x = e.convert(x, dt.f32)
    return e.convert(x, to)


def _narrow_float_to_int(e: Emitter, x: Val, to: DType) -> Val:
    """nan -> 0, +-inf -> the extremes (i32's for narrow targets), finite values truncate."""
    f = e.convert(x, dt.f32)
    nan = e.isnan(f)
    pos = e.compare("EQ", f, float("inf"))
    neg = e.compare("EQ", f, float("-inf"))
    if to.is_narrow_int:
        i = e.convert(e.select(e.or_(nan, e.or_(pos, neg)), e.const(0.0, dt.f32), f), dt.i64)
        i = e.select(pos, e.const(2**31 - 1, dt.i64), e.select(neg, e.const(-2**31, dt.i64), i))
        return _low_bits(e, i, to)
    lo, hi = to.int_range()
    y = e.select(e.or_(nan, e.or_(pos, neg)), e.const(0.0, dt.f32), f)
    y = e.convert(e.convert(y, dt.i32) if to.bits < 32 else y, to)
    return e.select(pos, e.const(hi, to), e.select(neg, e.const(lo, to), y))


def _to_narrow_int(e: Emitter, x: Val, to: DType) -> Val:
    """Truncate toward zero (floats; nan, inf and values outside i32 give 0) and keep the low
    `to.bits` bits."""
    if x.dtype.is_float:
        w = e.convert(x, dt.f64 if x.dtype == dt.f64 else dt.f32)
        t = _trunc(e, w)
        ok = e.and_(e.unary("is_finite", t, dt.bool_),
                    e.and_(e.compare("GE", t, -2.0 ** 31), e.compare("LT", t, 2.0 ** 31)))
        v = e.convert(e.select(ok, t, e.const(0.0, t.dtype)), dt.i64)
    else:
        v = e.convert(x, dt.i64)
    return _low_bits(e, v, to)


def _trunc(e: Emitter, x: Val) -> Val:
    return e.select(e.compare("LT", x, 0.0), e.ceil(x), e.floor(x))


def _low_bits(e: Emitter, v: Val, to: DType) -> Val:
    """The low to.bits bits of an i64, read as the narrow integer type."""
    mask = (1 << to.bits) - 1
    low = e.binary("and", v, e.const(mask, dt.i64))
    if to.kind == "narrow_int":  # two's complement: flip the sign bit and subtract it
        half = 1 << (to.bits - 1)
        low = e.sub(e.binary("xor", low, e.const(half, dt.i64)), e.const(half, dt.i64))
    return e.convert(low, to)


def _to_narrow_float(e: Emitter, ctx: Context, x: Val, to: DType, saturate: bool,
                     round_mode: str) -> Val:
    if to == dt.f8e8m0:
        return _to_f8e8m0(e, x, saturate, round_mode)
    if x.dtype.is_bool:
        x = e.convert(x, dt.f32)
    if to.name in _F8_SATURATING and saturate:
        wide = (ctx.options.wide_float if x.dtype in (dt.f64, dt.i32, dt.i64, dt.u32, dt.u64)
                else dt.f32)
        hi = to.float_max()
        w = e.convert(x, wide)
        x = e.op1("stablehlo.clamp", [e.const(-hi, wide), w, e.const(hi, wide)], w.shape, wide)
    elif to == dt.f4e2m1:  # always saturates; nan gives 0 (as ml_dtypes)
        w = e.convert(x, dt.f32 if x.dtype != dt.f64 else dt.f64)
        w = e.select(e.isnan(w), e.const(0.0, w.dtype), w)
        x = e.op1("stablehlo.clamp", [e.const(-6.0, w.dtype), w, e.const(6.0, w.dtype)],
                  w.shape, w.dtype)
    elif not x.dtype.is_float:
        x = e.convert(x, dt.f32)
    return e.convert(x, to)


def _to_f8e8m0(e: Emitter, x: Val, saturate: bool, round_mode: str) -> Val:
    """The f32 value's exponent, its fraction rounded by round_mode (onnx's to_float8e8m0)."""
    bits = e.bitcast_convert(e.convert(x, dt.f32), dt.u32)
    exp = e.binary("and", e.binary("shift_right_logical", bits, e.const(23, dt.u32)),
                   e.const(0xFF, dt.u32))
    special = e.compare("EQ", exp, 0xFF)
    if round_mode == "up":
        up = e.compare("GT", e.binary("and", bits, e.const(0x7FFFFF, dt.u32)), 0)
    elif round_mode == "nearest":
        guard = e.compare("GT", e.binary("and", bits, e.const(0x400000, dt.u32)), 0)
        rest = e.compare("GT", e.binary("and", bits, e.const(0x3FFFFF, dt.u32)), 0)
        up = e.and_(guard, e.or_(rest, e.compare("GT", exp, 0)))
    else:
        up = e.const(False, dt.bool_, x.shape)
    up = e.and_(up, e.not_(special))
    if saturate:
        up = e.and_(up, e.compare("NE", exp, 0xFE))
    out = e.select(special, e.const(0xFF, dt.u32), e.add(exp, e.convert(up, dt.u32)))
    return e.bitcast_convert(e.convert(out, dt.u8), dt.f8e8m0)


# --- bitcast ------------------------------------------------------------------------------------


@lowering("bitcast")
def _bitcast(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, to = args[0], op.attrs["to"]
    if x.dtype == to:
        return [x]
    if to.is_bool:  # any set bit reads as true
        return [e.compare("NE", e.bitcast_convert(x, dt.u8) if x.dtype != dt.u8 else x, 0)]
    if x.dtype.is_bool:
        x = e.convert(x, dt.u8)
        if to == dt.u8:
            return [x]
    return [e.bitcast_convert(x, to)]

