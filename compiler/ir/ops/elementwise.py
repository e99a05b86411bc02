"""Elementwise ops: unary math, activations, binary arithmetic and logic, comparisons, where,
clip and cast. ONNX/NumPy semantics; binary ops broadcast.

f16 and bf16 math is computed in f32 and rounded once, as the code generators do.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import scipy.special

from .. import dtypes as dt
from ..registry import attr, def_op
from ..types import TensorType, TypeInferenceError, broadcast_shapes
from ._common import binary_rule, require_dtype, same_dtype, unary_rule

NUMERIC = ("int", "uint", "float")
SIGNED = ("int", "float")
FLOAT = ("float",)
BOOL = ("bool",)
ANY = ("bool", "int", "uint", "float")

_LOW_PRECISION = (np.dtype(np.float16), dt.bf16.np_dtype)


def _in_f32(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Run fn in f32 when the inputs are f16/bf16, then round to the input dtype."""
    def wrapped(*xs: np.ndarray, **kw: object) -> np.ndarray:
        xs = tuple(np.asarray(x) for x in xs)
        low = xs[0].dtype if xs and xs[0].dtype in _LOW_PRECISION else None
        with np.errstate(all="ignore"):
            if low is None:
                return np.asarray(fn(*xs, **kw))
            out = np.asarray(fn(*(x.astype(np.float32) for x in xs), **kw))
        return out.astype(low) if out.dtype.kind == "f" else out
    wrapped.__name__ = getattr(fn, "__name__", "ref")
    wrapped.__doc__ = fn.__doc__
    return wrapped


def _unary(name: str, fn: Callable[..., np.ndarray], kinds=FLOAT, doc: str = "", attrs=None,
           traits=("pure", "elementwise")) -> None:
    def_op(name, ["x"], unary_rule(name, kinds), _in_f32(fn), attrs=attrs, traits=traits, doc=doc)


def _f(x: np.ndarray, value: float) -> np.ndarray:
    """A scalar in x's dtype, so NumPy does not promote."""
    return np.asarray(value, dtype=x.dtype)


# --- unary math ---------------------------------------------------------------------------------
_unary("neg", np.negative, SIGNED, "-x")
_unary("abs", np.abs, NUMERIC, "|x|")
_unary("exp", np.exp, doc="e**x")
_unary("log", np.log, doc="natural log; log(0) = -inf, log(<0) = nan")
_unary("sqrt", np.sqrt, doc="square root")
_unary("rsqrt", lambda x: _f(x, 1) / np.sqrt(x), doc="1/sqrt(x)")
_unary("reciprocal", lambda x: _f(x, 1) / x, doc="1/x")
_unary("tanh", np.tanh, doc="hyperbolic tangent")
_unary("sigmoid", lambda x: _f(x, 1) / (_f(x, 1) + np.exp(-x)), doc="1/(1+e**-x)")
_unary("erf", lambda x: scipy.special.erf(x).astype(x.dtype), doc="Gauss error function")
_unary("sin", np.sin, doc="sine (radians)")
_unary("cos", np.cos, doc="cosine (radians)")
_unary("floor", np.floor, doc="largest integer <= x")
_unary("ceil", np.ceil, doc="smallest integer >= x")
_unary("round", np.round, doc="round half to even (ONNX Round)")
_unary("sign", np.sign, NUMERIC, "-1, 0 or 1 (0 for 0, nan for nan)")
_unary("relu", lambda x: np.maximum(x, _f(x, 0)), NUMERIC, "max(x, 0)")
_unary("silu", lambda x: x / (_f(x, 1) + np.exp(-x)), doc="x*sigmoid(x)")
_unary("softplus", lambda x: np.logaddexp(_f(x, 0), x), doc="log(1+e**x), overflow-safe")
_unary("leaky_relu", lambda x, alpha: np.where(x >= 0, x, x * _f(x, alpha)),
       doc="x if x >= 0 else alpha*x", attrs={"alpha": attr("float", 0.01)})
_unary("elu", lambda x, alpha: np.where(x > 0, x, _f(x, alpha) * np.expm1(np.minimum(x, 0))),
       doc="x if x > 0 else alpha*(e**x-1)", attrs={"alpha": attr("float", 1.0)})


def _gelu(x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        c = _f(x, math.sqrt(2.0 / math.pi))
        return _f(x, 0.5) * x * (_f(x, 1) + np.tanh(c * (x + _f(x, 0.044715) * x * x * x)))
    return _f(x, 0.5) * x * (_f(x, 1) + scipy.special.erf(x / _f(x, math.sqrt(2.0))).astype(x.dtype))


_unary("gelu", _gelu, doc="x*Phi(x); approximate='tanh' uses the tanh form",
       attrs={"approximate": attr("str", "none", choices=("none", "tanh"))})

# --- predicates -----------------------------------------------------------------------------------


def _predicate_rule(name: str, kinds):
    def rule(x: TensorType, **_: object) -> TensorType:
        require_dtype(name, x, kinds)
        return x.with_dtype(dt.bool_)
    return rule


def_op("not", ["x"], _predicate_rule("not", BOOL), np.logical_not,
       traits=("pure", "elementwise"), doc="logical not")
def_op("isnan", ["x"], _predicate_rule("isnan", FLOAT), _in_f32(np.isnan),
       traits=("pure", "elementwise"), doc="x is nan")


def _isinf(x: np.ndarray, detect_positive: bool, detect_negative: bool) -> np.ndarray:
    return np.isinf(x) & (((x > 0) & detect_positive) | ((x < 0) & detect_negative))


def_op("isinf", ["x"], _predicate_rule("isinf", FLOAT), _in_f32(_isinf),
       attrs={"detect_positive": attr("bool", True), "detect_negative": attr("bool", True)},
       traits=("pure", "elementwise"), doc="x is +inf (detect_positive) or -inf (detect_negative)")

# --- binary arithmetic ------------------------------------------------------------------------------


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero (C, ONNX); x/0 gives 0 instead of a trap."""
    with np.errstate(all="ignore"):
        if a.dtype.kind in "iu":
            safe = np.where(b == 0, 1, b).astype(a.dtype)
            q = np.abs(a.astype(np.int64)) // np.abs(safe.astype(np.int64))
            q = np.where((a < 0) != (safe < 0), -q, q)
            return np.where(b == 0, 0, q).astype(a.dtype)
        return np.divide(a, b)


def _mod(a: np.ndarray, b: np.ndarray, fmod: bool) -> np.ndarray:
    """fmod=False: result has the divisor's sign (Python %); True: the dividend's (C fmod)."""
    with np.errstate(all="ignore"):
        if a.dtype.kind in "iu":
            safe = np.where(b == 0, 1, b).astype(a.dtype)
            r = np.fmod(a, safe) if fmod else np.mod(a, safe)
            return np.where(b == 0, 0, r).astype(a.dtype)
        return np.fmod(a, b) if fmod else np.mod(a, b)


def _pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a ** b. Integer powers wrap on overflow like C; a negative integer exponent gives 1/a**-b
    truncated toward zero (1 for a == 1, +-1 for a == -1, else 0; 0 ** -n gives 0 as x/0 does),
    where NumPy would raise."""
    if a.dtype.kind != "i":
        return np.power(a, b)
    neg = b < 0
    pos = np.power(a, np.where(neg, 0, b).astype(b.dtype))
    odd = (b % 2) != 0
    inv = np.where(a == 1, 1, np.where(a == -1, np.where(odd, -1, 1), 0))
    return np.where(neg, inv, pos).astype(a.dtype)


def _binary(name: str, fn, kinds=NUMERIC, doc: str = "", commutative: bool = False,
            result: Optional[dt.DType] = None, attrs=None) -> None:
    traits = ["pure", "elementwise", "broadcasting"] + (["commutative"] if commutative else [])
    def_op(name, ["a", "b"], binary_rule(name, kinds, result), _in_f32(fn), attrs=attrs,
           traits=traits, doc=doc)


_binary("add", np.add, doc="a + b", commutative=True)
_binary("sub", np.subtract, doc="a - b")
_binary("mul", np.multiply, doc="a * b", commutative=True)
_binary("div", _int_div, doc="a / b; integers truncate toward zero")
_binary("pow", _pow, doc="a ** b; integer a ** (negative b) truncates toward zero")
_binary("mod", _mod, doc="remainder; fmod=false takes the divisor's sign (ints only in ONNX)",
        attrs={"fmod": attr("bool", False)})
_binary("max", np.maximum, doc="elementwise max; nan propagates", commutative=True)
_binary("min", np.minimum, doc="elementwise min; nan propagates", commutative=True)
_binary("and", np.logical_and, BOOL, "logical and", commutative=True)
_binary("or", np.logical_or, BOOL, "logical or", commutative=True)
_binary("xor", np.logical_xor, BOOL, "logical xor", commutative=True)
_binary("eq", np.equal, ANY, "a == b", commutative=True, result=dt.bool_)
_binary("ne", np.not_equal, ANY, "a != b", commutative=True, result=dt.bool_)
_binary("lt", np.less, NUMERIC, "a < b", result=dt.bool_)
_binary("le", np.less_equal, NUMERIC, "a <= b", result=dt.bool_)
_binary("gt", np.greater, NUMERIC, "a > b", result=dt.bool_)
_binary("ge", np.greater_equal, NUMERIC, "a >= b", result=dt.bool_)

# --- where, clip, cast ------------------------------------------------------------------------------


def _where_rule(cond: TensorType, a: TensorType, b: TensorType) -> TensorType:
    require_dtype("where", cond, BOOL, "condition")
    d = same_dtype("where", a, b)
    return TensorType(broadcast_shapes(cond.shape, a.shape, b.shape), d)


def_op("where", ["cond", "a", "b"], _where_rule, lambda c, a, b: np.where(c, a, b),
       traits=("pure", "elementwise", "broadcasting"), doc="a where cond else b")


def _clip_rule(x: TensorType, min: Optional[float], max: Optional[float]) -> TensorType:
    require_dtype("clip", x, NUMERIC)
    if min is not None and max is not None and min > max:
        raise TypeInferenceError(f"clip min {min} is greater than max {max}")
    return x


def _clip(x: np.ndarray, min: Optional[float], max: Optional[float]) -> np.ndarray:
    lo, hi = min, max
    if x.dtype.kind in "iu":
        # the nearest integers inside [min, max], saturated to the dtype's range, so that a bound
        # such as -1.0 on u8 or 300.0 on i8 does not wrap when converted to x's dtype
        info = np.iinfo(x.dtype)
        sat = lambda v, rnd: int(np.clip(rnd(v), info.min, info.max)) if math.isfinite(v) else (
            info.min if v < 0 else info.max)
        lo = None if lo is None else sat(lo, math.ceil)
        hi = None if hi is None else sat(hi, math.floor)
    if lo is not None:
        x = np.maximum(x, _f(x, lo))
    if hi is not None:
        x = np.minimum(x, _f(x, hi))
    return x


def_op("clip", ["x"], _clip_rule, _clip, traits=("pure", "elementwise"),
       attrs={"min": attr("float", None), "max": attr("float", None)},
       doc="min(max(x, min), max); a missing bound does not clip; ints use ceil(min), floor(max)")


def _cast(x: np.ndarray, to: dt.DType) -> np.ndarray:
    """ONNX Cast: floats to ints truncate toward zero; to bool is x != 0."""
    with np.errstate(all="ignore"):
        if to.is_bool:
            return np.asarray(x != 0)
        if x.dtype == dt.bf16.np_dtype and not to.is_float:
            x = x.astype(np.float32)
        if to == dt.bf16 and x.dtype.kind in "iub":
            x = x.astype(np.float64)
        return x.astype(to.np_dtype)


def_op("cast", ["x"], lambda x, to: x.with_dtype(to), _cast, attrs={"to": attr("dtype")},
       traits=("pure", "elementwise"), doc="convert to dtype `to`")
