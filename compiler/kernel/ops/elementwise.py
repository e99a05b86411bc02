"""Elementwise ops: each becomes an index function over its (broadcast) operands."""
from __future__ import annotations

import math
from typing import Any, Callable

from compiler.ir import dtypes as dt
from compiler.ir.core import Op

from ..ir import (BOOL, F32, Const, Expr, Un, binop, call, cast, const, maximum, minimum,
                  select)
from ..lower import Ctx, LoweringError, View, attrs_of, bview, lowering, out_dtype, out_shape

F16 = dt.dtype("f16")


def c(v: Any, like: Expr) -> Expr:
    return const(v, like.dtype)


def in_f32(fn: Callable[[Expr], Expr]) -> Callable[[Expr], Expr]:
    """Compute f16 math in f32 and round once (the interpreter's rule); bf16 registers are
    already f32 in codegen, but casting keeps the rounding in one place."""
    def g(x: Expr) -> Expr:
        if x.dtype.name in ("f16", "bf16"):
            return cast(x.dtype, fn(cast(F32, x)))
        return fn(x)
    return g


def _sigmoid(x: Expr) -> Expr:
    return call("sigmoid", x.dtype, x)


def _softplus(x: Expr) -> Expr:
    # log(1 + e^x) = max(x, 0) + log(1 + e^-|x|)
    ax = call("fabs", x.dtype, x)
    return binop("+", maximum(x, c(0, x)),
                 call("log", x.dtype, binop("+", c(1, x), call("exp", x.dtype, -ax))))


def _gelu(x: Expr, approximate: str) -> Expr:
    half = c(0.5, x)
    one = c(1, x)
    if approximate == "tanh":
        inner = binop("*", c(math.sqrt(2 / math.pi), x),
                      binop("+", x, binop("*", c(0.044715, x), binop("*", x, binop("*", x, x)))))
        return binop("*", binop("*", half, x), binop("+", one, call("tanh", x.dtype, inner)))
    return binop("*", binop("*", half, x),
                 binop("+", one, call("erf", x.dtype, binop("*", x, c(1 / math.sqrt(2), x)))))


def _abs(x: Expr) -> Expr:
    if x.dtype.is_float:
        return call("fabs", x.dtype, x)
    if x.dtype.kind == "uint":
        return x
    return select(binop("<", x, c(0, x)), binop("-", c(0, x), x), x)


def _sign(x: Expr) -> Expr:
    one, zero = c(1, x), c(0, x)
    if x.dtype.kind == "uint":
        return select(binop(">", x, zero), one, zero)
    s = select(binop(">", x, zero), one, select(binop("<", x, zero), c(-1, x), zero))
    if x.dtype.is_float:
        return select(call("isnan", BOOL, x), x, s)
    return s


UNARY: dict[str, Callable[..., Expr]] = {
    "neg": lambda x: binop("-", c(0, x), x) if not x.dtype.is_float else Un("neg", x, x.dtype,
                                                                              x.lanes),
    "abs": _abs,
    "exp": lambda x: call("exp", x.dtype, x),
    "log": lambda x: call("log", x.dtype, x),
    "sqrt": lambda x: call("sqrt", x.dtype, x),
    "rsqrt": lambda x: binop("/", c(1, x), call("sqrt", x.dtype, x)),
    "reciprocal": lambda x: binop("/", c(1, x), x),
    "tanh": lambda x: call("tanh", x.dtype, x),
    "sigmoid": _sigmoid,
    "erf": lambda x: call("erf", x.dtype, x),
    "floor": lambda x: call("floor", x.dtype, x),
    "ceil": lambda x: call("ceil", x.dtype, x),
    "round": lambda x: call("round", x.dtype, x),
    "sign": _sign,
    "relu": lambda x: select(binop(">", x, c(0, x)), x, c(0, x)) if not x.dtype.is_float
    else select(binop("<", x, c(0, x)), c(0, x), x),
    "silu": lambda x: binop("*", x, _sigmoid(x)),
    "softplus": _softplus,
}
for _n in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
           "atanh"):
    UNARY[_n] = (lambda n: lambda x: call(n, x.dtype, x))(_n)


def _unary_lowering(name: str) -> None:
    fn = UNARY[name]

    @lowering(name)
    def low(ctx: Ctx, op: Op, xs: list[View]) -> View:
        x = xs[0]
        f = in_f32(fn) if x.dtype.is_float else fn
        return View(x.shape, x.dtype, lambda *i: f(x.at(*i)))


for _n in UNARY:
    _unary_lowering(_n)


@lowering("leaky_relu", "elu", "gelu")
def _param_unary(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    a = attrs_of(op)
    if op.name == "leaky_relu":
        f = lambda v: select(binop(">=", v, c(0, v)), v, binop("*", v, c(a["alpha"], v)))
    elif op.name == "elu":
        f = lambda v: select(binop(">", v, c(0, v)), v, binop(
            "*", c(a["alpha"], v), binop("-", call("exp", v.dtype, minimum(v, c(0, v))), c(1, v))))
    else:
        f = lambda v: _gelu(v, a["approximate"])
    g = in_f32(f)
    return View(x.shape, x.dtype, lambda *i: g(x.at(*i)))


@lowering("isnan", "isinf")
def _pred(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    a = attrs_of(op)
    if op.name == "isnan":
        return View(x.shape, BOOL, lambda *i: call("isnan", BOOL, x.at(*i)))
    pos, neg = a.get("detect_positive", True), a.get("detect_negative", True)

    def f(*i: Expr) -> Expr:
        v = x.at(*i)
        inf = c(math.inf, v)
        if pos and neg:
            return call("isinf", BOOL, v)
        if pos:
            return binop("==", v, inf)
        if neg:
            return binop("==", v, binop("-", c(0, v), inf))
        return Const(False, BOOL)
    return View(x.shape, BOOL, f)


@lowering("not")
def _not(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    return View(x.shape, BOOL, lambda *i: Un("not", x.at(*i), BOOL, 1))


@lowering("bitwise_not")
def _bnot(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    return View(x.shape, x.dtype, lambda *i: Un("bnot", x.at(*i), x.dtype, 1))


def _pow(a: Expr, b: Expr) -> Expr:
    if a.dtype.is_float and isinstance(b, Const) and b.value in (1.0, 2.0, 3.0, 4.0, 0.5):
        v = b.value
        if v == 0.5:
            return call("sqrt", a.dtype, a)
        out = a
        for _ in range(int(v) - 1):
            out = binop("*", out, a)
        return out
    if a.dtype.is_float:
        return call("pow", a.dtype, a, b if b.dtype == a.dtype else cast(a.dtype, b))
    raise LoweringError("integer pow has no kernel lowering")


def _mod(a: Expr, b: Expr, fmod: bool) -> Expr:
    if a.dtype.is_float:
        if fmod:
            return call("fmod", a.dtype, a, b)
        return binop("%", a, b)
    if fmod:  # C remainder: the dividend's sign
        q = binop("/", a, b)
        return select(binop("==", b, c(0, b)), c(0, a), binop("-", a, binop("*", q, b)))
    return binop("%", a, b)


BINARY: dict[str, Callable[..., Expr]] = {
    "add": lambda a, b: binop("+", a, b),
    "sub": lambda a, b: binop("-", a, b),
    "mul": lambda a, b: binop("*", a, b),
    "div": lambda a, b: binop("/", a, b),
    "max": lambda a, b: binop("max", a, b),
    "min": lambda a, b: binop("min", a, b),
    "and": lambda a, b: binop("and", a, b),
    "or": lambda a, b: binop("or", a, b),
    "xor": lambda a, b: binop("!=", a, b),
    "eq": lambda a, b: binop("==", a, b),
    "ne": lambda a, b: binop("!=", a, b),
    "lt": lambda a, b: binop("<", a, b),
    "le": lambda a, b: binop("<=", a, b),
    "gt": lambda a, b: binop(">", a, b),
    "ge": lambda a, b: binop(">=", a, b),
    "bitwise_and": lambda a, b: binop("&", a, b),
    "bitwise_or": lambda a, b: binop("|", a, b),
    "bitwise_xor": lambda a, b: binop("^", a, b),
    "pow": _pow,
}


@lowering(*BINARY, "mod", "shift_left", "shift_right")
def _binary(ctx: Ctx, op: Op, xs: list[View]) -> View:
    a, b = xs
    shape = out_shape(ctx, op)
    fa, fb = bview(a, shape), bview(b, shape)
    if op.name == "mod":
        fmod = bool(attrs_of(op).get("fmod", False))
        f = lambda x, y: _mod(x, y, fmod)
    elif op.name in ("shift_left", "shift_right"):
        bits = a.dtype.bits
        left = op.name == "shift_left"

        def f(x: Expr, y: Expr) -> Expr:
            ok = binop("and", binop(">=", y, c(0, y)), binop("<", y, c(bits, y)))
            amount = select(ok, y, c(0, y))
            if left:
                fill = c(0, x)
            elif x.dtype.kind == "int":
                fill = select(binop("<", x, c(0, x)), c(-1, x), c(0, x))
            else:
                fill = c(0, x)
            return select(ok, binop("<<" if left else ">>", x, amount), fill)
    else:
        f = BINARY[op.name]
    if a.dtype.is_float and a.dtype.name in ("f16", "bf16") and op.name in ("pow", "mod"):
        g = lambda x, y: cast(a.dtype, f(cast(F32, x), cast(F32, y)))
    else:
        g = f
    dtype = out_dtype(op)
    return View(shape, dtype, lambda *i: g(fa(*i), fb(*i)))


@lowering("where")
def _where(ctx: Ctx, op: Op, xs: list[View]) -> View:
    cnd, a, b = xs
    shape = out_shape(ctx, op)
    fc, fa, fb = bview(cnd, shape), bview(a, shape), bview(b, shape)
    return View(shape, a.dtype, lambda *i: select(fc(*i), fa(*i), fb(*i)))


@lowering("clip")
def _clip(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    a = attrs_of(op)
    lo, hi = a.get("min"), a.get("max")

    if x.dtype.is_int:
        lo = math.ceil(lo) if lo is not None else None
        hi = math.floor(hi) if hi is not None else None
        info = __import__("numpy").iinfo(x.dtype.np_dtype)
        lo = None if lo is not None and lo <= info.min else lo
        hi = None if hi is not None and hi >= info.max else hi

    def f(*i: Expr) -> Expr:
        v = x.at(*i)
        if lo is not None:
            v = select(binop("<", v, c(lo, v)), c(lo, v), v)
        if hi is not None:
            v = select(binop(">", v, c(hi, v)), c(hi, v), v)
        return v
    return View(x.shape, x.dtype, f)


@lowering("cast")
def _cast(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    to = out_dtype(op)
    if to.is_narrow or x.dtype.is_narrow:  # bit manipulation, in ops/misc.py
        from .misc import narrow_cast
        a = attrs_of(op)
        sat, mode = bool(a.get("saturate", True)), a.get("round_mode", "up")
        return View(x.shape, to, lambda *i: narrow_cast(x.at(*i), to, sat, mode))
    return View(x.shape, to, lambda *i: cast(to, x.at(*i)))


@lowering("identity")
def _identity(ctx: Ctx, op: Op, xs: list[View]) -> View:
    return xs[0]
