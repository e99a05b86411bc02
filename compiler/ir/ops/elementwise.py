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
        if a.dtype.kind == "u":  # no signs; u64 does not fit int64
            safe = np.where(b == 0, 1, b).astype(a.dtype)
            return np.where(b == 0, 0, a // safe).astype(a.dtype)
        if a.dtype.kind == "i":
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


# --- cast ----------------------------------------------------------------------------------------
# ONNX Cast, bit for bit as onnx.reference (which converts with NumPy and ml_dtypes):
# - float -> int truncates toward zero (NumPy's astype; out of range is undefined in ONNX).
# - float -> i4/u4/i2/u2 truncates toward zero and keeps the low bits (two's complement wrap,
#   -9.0 -> i4 7); nan, inf and values outside the i32 range give 0 (ml_dtypes converts through
#   a C int). int -> narrow int keeps the low bits as well.
# - -> f8e4m3fn/f8e5m2/f8e4m3fnuz/f8e5m2fnuz rounds half to even. saturate (the default) clamps
#   out-of-range values, infinities included, to the largest finite value; without it they
#   become inf (f8e5m2) or nan (the types without inf). nan stays nan.
# - -> f4e2m1 rounds half to even and always saturates (no inf or nan in the type; nan gives a
#   zero, as ml_dtypes does).
# - -> f8e8m0 (a power of two 2**(e-127), e in 0..254, 255 = nan) takes the f32 value's exponent
#   (the sign is ignored; 0 gives 2**-127) and rounds the fraction by round_mode: "up" (any
#   fraction rounds up; the default), "down" (truncates) or "nearest" (a fraction >= 0.5 rounds
#   up, except that exactly 0.5 of the smallest exponent rounds down). saturate keeps the
#   largest exponent from rounding up to nan. nan and inf give nan.
# - narrow -> anything goes through f32 (narrow floats, exact) or i64 (narrow ints), except
#   narrow float -> int, which gives 0 for nan and the extremes for +-inf (as ml_dtypes).
# - a cast to x's own dtype is x (also for f8e8m0, where onnx.reference re-rounds 2**-127), but
#   a saturating one to f8e5m2 clamps its infinities.

_F8_SATURATING = ("f8e4m3fn", "f8e5m2", "f8e4m3fnuz", "f8e5m2fnuz")


def _to_standard(x: np.ndarray) -> np.ndarray:
    """A narrow-dtype array as f32 (narrow floats) or i64 (narrow ints), exactly."""
    d = dt.dtype(x.dtype)
    if d.is_narrow_float:
        return x.astype(np.float32)
    if d.is_narrow_int:
        return x.astype(np.int64)
    return x


def _narrow_float_to_int(x: np.ndarray, to: dt.DType) -> np.ndarray:
    """ml_dtypes' narrow float -> integer: nan gives 0 and +-inf the i32 (narrow targets) or the
    target's (others) extreme; finite values truncate as from f32."""
    f = x.astype(np.float64)
    nan, pos, neg = np.isnan(f), f == np.inf, f == -np.inf
    if to.is_narrow_int:
        f = np.where(nan, 0.0, np.where(pos, 2.0 ** 31 - 1, np.where(neg, -2.0 ** 31, f)))
        return _to_narrow_int(f, to)
    lo, hi = to.int_range()
    y = np.where(nan | pos | neg, np.float32(0), x.astype(np.float32)).astype(to.np_dtype)
    return np.where(pos, hi, np.where(neg, lo, y)).astype(to.np_dtype)


def _to_narrow_int(x: np.ndarray, to: dt.DType) -> np.ndarray:
    """Truncate toward zero (floats) and keep the low `to.bits` bits: ml_dtypes' conversion."""
    if x.dtype.kind == "f" or x.dtype == dt.bf16.np_dtype:
        t = np.trunc(x.astype(np.float64))
        ok = np.isfinite(t) & (t >= -2.0 ** 31) & (t < 2.0 ** 31)
        v = np.where(ok, t, 0.0).astype(np.int64)
    else:
        v = x.astype(np.int64)  # u64 wraps into i64 keeping its low bits
    return (v & ((1 << to.bits) - 1)).astype(np.uint8).view(to.np_dtype)


def _to_f8e8m0(x: np.ndarray, saturate: bool, round_mode: str) -> np.ndarray:
    """onnx.numpy_helper.to_float8e8m0: the f32 exponent, rounded by round_mode."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    exp = ((bits >> 23) & 0xFF).astype(np.uint16)
    special = exp == 0xFF
    if round_mode == "up":
        up = ((bits & 0x7FFFFF) > 0) & ~special
    elif round_mode == "nearest":
        guard = (bits & 0x400000) > 0
        rest = (bits & 0x3FFFFF) > 0
        up = guard & (rest | (exp > 0)) & ~special
    else:
        up = np.zeros(bits.shape, dtype=bool)
    if saturate:
        up &= exp != 0xFE
    out = np.where(special, 0xFF, exp + up).astype(np.uint8)
    return out.view(dt.f8e8m0.np_dtype)


def _to_narrow_float(x: np.ndarray, to: dt.DType, saturate: bool,
                     round_mode: str) -> np.ndarray:
    if to == dt.f8e8m0:
        return _to_f8e8m0(x, saturate, round_mode)
    if x.dtype == np.bool_:
        x = x.astype(np.float32)
    if to.name in _F8_SATURATING and saturate:
        # clamp in f32 (f64 for f64 and the 32/64-bit ints, as NumPy promotes), then round
        wide = np.float64 if x.dtype in (np.float64, np.int32, np.int64, np.uint32,
                                         np.uint64) else np.float32
        hi = to.float_max()
        x = np.clip(x.astype(wide), -hi, hi)
    return x.astype(to.np_dtype)


def _cast(x: np.ndarray, to: dt.DType, saturate: bool = True,
          round_mode: str = "up") -> np.ndarray:
    """ONNX Cast (see the rules above): floats to ints truncate toward zero; to bool is x != 0."""
    with np.errstate(all="ignore"):
        if x.dtype == to.np_dtype and not (saturate and to == dt.f8e5m2):
            return x.copy()  # only f8e5m2's saturation changes values (inf -> max)
        if dt.dtype(x.dtype).is_narrow_float and to.is_integral:
            return _narrow_float_to_int(x, to)
        x = _to_standard(x)
        if to.is_bool:
            return np.asarray(x != 0)
        if to.is_narrow_int:
            return _to_narrow_int(x, to)
        if to.is_narrow_float:
            return _to_narrow_float(x, to, saturate, round_mode)
        if x.dtype == dt.bf16.np_dtype and not to.is_float:
            x = x.astype(np.float32)
        if to == dt.bf16 and x.dtype.kind in "iub":
            x = x.astype(np.float64)
        return x.astype(to.np_dtype)


def_op("cast", ["x"], lambda x, to, **_: x.with_dtype(to), _cast,
       attrs={"to": attr("dtype"), "saturate": attr("bool", True),
              "round_mode": attr("str", "up", choices=("up", "down", "nearest"))},
       traits=("pure", "elementwise"),
       doc="convert to dtype `to` (ONNX Cast); `saturate` clamps out-of-range values for the "
           "f8 targets, `round_mode` rounds to f8e8m0 (up, down, nearest)")
