"""Sample operands and attributes for the elementwise ops (compiler/ir/ops/elementwise.py).

Every generator keeps its inputs where the op is finite and well defined in every dtype it picks:
log/sqrt/rsqrt on positive values, divisors away from zero, integer values small enough that
add/mul/pow do not overflow (and u8 subtraction does not wrap), cast sources inside the target's
range. `constant` takes no operand arrays and so has no entry here.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from compiler.ir import dtypes as dt

from . import Sample, SampleFn

FLOATS = ("f32", "f16", "bf16", "f64")
INTS = ("i32", "i64", "i8", "u8", "i16")
SIGNED_INTS = ("i32", "i64", "i8", "i16")
NUMERIC = FLOATS + INTS
SIGNED = FLOATS + SIGNED_INTS
ANY = NUMERIC + ("bool",)


def _shape(rng: np.random.Generator, max_rank: int = 4) -> tuple[int, ...]:
    """A random shape: rank 0 to max_rank, dims 1 to 5."""
    return tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(0, max_rank + 1))))


def _broadcast_shapes(rng: np.random.Generator, n: int) -> list[tuple[int, ...]]:
    """n shapes that broadcast together: each drops some leading dims of a common shape and sets
    some of the rest to 1, so rank-0, lower-rank and size-1 operands all occur."""
    full = _shape(rng)
    out = []
    for _ in range(n):
        s = list(full[int(rng.integers(0, len(full) + 1)):] if rng.random() < 0.4 else full)
        for i in range(len(s)):
            if rng.random() < 0.25:
                s[i] = 1
        out.append(tuple(s))
    return out


def _values(rng: np.random.Generator, shape: Sequence[int], dtype: str, lo: float,
            hi: float) -> np.ndarray:
    """Uniform values in [lo, hi) (integers in [lo, hi], unsigned ones from max(lo, 0)) as an
    array of IR dtype `dtype`."""
    d = dt.dtype(dtype)
    if d.is_bool:
        return rng.random(shape) < 0.5
    if d.is_int:
        lo = max(lo, 0) if d.kind == "uint" else lo
        return rng.integers(int(lo), int(hi) + 1, size=shape).astype(d.np_dtype)
    return rng.uniform(lo, hi, size=shape).astype(d.np_dtype)


def _away_from_zero(rng: np.random.Generator, shape: Sequence[int], dtype: str, lo: float,
                    hi: float) -> np.ndarray:
    """Magnitudes in [lo, hi] with random signs (positive only for unsigned dtypes)."""
    mag = _values(rng, shape, dtype, lo, hi)
    if dt.dtype(dtype).kind == "uint":
        return mag
    sign = np.where(rng.random(shape) < 0.5, -1, 1).astype(mag.dtype)
    return (mag * sign).astype(mag.dtype)


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(0, len(options)))]


def _unary(dtypes: Sequence[str], lo: float, hi: float,
           attrs: Callable[[np.random.Generator], dict[str, Any]] = lambda rng: {}) -> SampleFn:
    """A unary op's sample: one array of a random dtype from dtypes with values in [lo, hi)."""
    def sample(rng: np.random.Generator) -> Sample:
        x = _values(rng, _shape(rng), _pick(rng, dtypes), lo, hi)
        return [x], attrs(rng)
    return sample


def _binary(dtypes: Sequence[str], lo: float, hi: float,
            b_range: "tuple[float, float] | None" = None, nonzero_b: bool = False,
            attrs: Callable[[np.random.Generator], dict[str, Any]] = lambda rng: {}) -> SampleFn:
    """A binary op's sample: two broadcast-compatible arrays of one random dtype."""
    def sample(rng: np.random.Generator) -> Sample:
        d = _pick(rng, dtypes)
        sa, sb = _broadcast_shapes(rng, 2)
        blo, bhi = b_range or (lo, hi)
        a = _values(rng, sa, d, lo, hi)
        b = _away_from_zero(rng, sb, d, blo, bhi) if nonzero_b else _values(rng, sb, d, blo, bhi)
        return [a, b], attrs(rng)
    return sample


def _ties(dtypes: Sequence[str]) -> SampleFn:
    """Comparison samples drawn from a few small values, so that equal elements occur."""
    def sample(rng: np.random.Generator) -> Sample:
        d = _pick(rng, dtypes)
        sa, sb = _broadcast_shapes(rng, 2)
        return [_values(rng, sa, d, 0, 3), _values(rng, sb, d, 0, 3)], {}
    return sample


def _small_int_arith(dtypes: Sequence[str]) -> SampleFn:
    """add/mul: floats anywhere in [-4, 4); integers small enough that products fit in i8."""
    def sample(rng: np.random.Generator) -> Sample:
        d = _pick(rng, dtypes)
        lo, hi = (0, 11) if d == "u8" else (-10, 10) if dt.dtype(d).is_int else (-4, 4)
        sa, sb = _broadcast_shapes(rng, 2)
        return [_values(rng, sa, d, lo, hi), _values(rng, sb, d, lo, hi)], {}
    return sample


def _sub(rng: np.random.Generator) -> Sample:
    d = _pick(rng, NUMERIC)
    sa, sb = _broadcast_shapes(rng, 2)
    if d == "u8":  # a >= b, so that the difference does not wrap
        return [_values(rng, sa, d, 50, 100), _values(rng, sb, d, 0, 40)], {}
    lo, hi = (-50, 50) if dt.dtype(d).is_int else (-4, 4)
    return [_values(rng, sa, d, lo, hi), _values(rng, sb, d, lo, hi)], {}


def _pow(rng: np.random.Generator) -> Sample:
    d = _pick(rng, ("f32", "f16", "bf16", "f64", "i32", "i64", "u8", "i8"))
    sa, sb = _broadcast_shapes(rng, 2)
    if dt.dtype(d).is_float:  # positive base: no nan from fractional exponents
        return [_values(rng, sa, d, 0.5, 2.0), _values(rng, sb, d, -2.0, 2.0)], {}
    if d in ("u8", "i8"):  # |a|**b <= 3**4 = 81 fits both
        lo = 0 if d == "u8" else -3
        return [_values(rng, sa, d, lo, 3), _values(rng, sb, d, 0, 4)], {}
    # negative integer exponents are defined (truncated toward zero)
    return [_values(rng, sa, d, -4, 4), _values(rng, sb, d, -2, 5)], {}


def _where(rng: np.random.Generator) -> Sample:
    d = _pick(rng, ANY)
    sc, sa, sb = _broadcast_shapes(rng, 3)
    lo, hi = (0, 100) if d == "u8" else (-50, 50)
    return [rng.random(sc) < 0.5, _values(rng, sa, d, lo, hi), _values(rng, sb, d, lo, hi)], {}


def _clip(rng: np.random.Generator) -> Sample:
    d = _pick(rng, NUMERIC)
    lo, hi = (0, 100) if d == "u8" else (-20, 20)
    x = _values(rng, _shape(rng), d, lo, hi)
    attrs: dict[str, Any] = {}
    bounds = sorted(float(v) for v in rng.uniform(lo, hi, size=2))
    if rng.random() < 0.8:
        attrs["min"] = bounds[0]
    if rng.random() < 0.8:
        attrs["max"] = bounds[1]
    return [x], attrs


# value ranges every cast between these dtypes keeps finite and exact enough: the narrow ints'
# ranges, f4e2m1's largest value, powers of two for f8e8m0 (which has no zero or negatives)
NEW_DTYPES = ("u16", "u32", "u64", "i4", "u4", "i2", "u2", "f8e4m3fn", "f8e5m2", "f8e4m3fnuz",
              "f8e5m2fnuz", "f8e8m0", "f4e2m1")
_CAST_RANGES = {"bool": (0, 1), "i2": (-2, 1), "u2": (0, 3), "i4": (-8, 7), "u4": (0, 15),
                "f4e2m1": (-6, 6), "f8e8m0": (0.25, 64)}


def _cast_new_dtypes(rng: np.random.Generator) -> Sample:
    """A cast from or to u16/u32/u64 or a narrow type, with saturate/round_mode at random."""
    src, to = _pick(rng, ANY + NEW_DTYPES), _pick(rng, NEW_DTYPES)
    if rng.random() < 0.5:
        src, to = to, src
    lo, hi = -100.0, 100.0
    for d in (src, to):
        dlo, dhi = _CAST_RANGES.get(d, (0, 100) if dt.dtype(d).kind == "uint" else (-100, 100))
        lo, hi = max(lo, dlo), min(hi, dhi)
    shape = _shape(rng)
    d = dt.dtype(src)
    if src == "f8e8m0":
        x = np.exp2(rng.integers(int(np.log2(lo)), int(np.log2(hi)) + 1, size=shape))
    elif d.is_integral or d.is_bool:
        x = rng.integers(int(np.ceil(lo)), int(hi) + 1, size=shape)
    else:
        x = rng.uniform(lo, hi, size=shape)
    x = np.asarray(x).astype(np.float64 if not (d.is_integral or d.is_bool) else np.int64)
    attrs: dict[str, Any] = {"to": to}
    if dt.dtype(to).is_narrow_float:
        attrs.update(_optional(rng, "saturate", bool(rng.random() < 0.5)))
        if to == "f8e8m0":
            attrs.update(_optional(rng, "round_mode", _pick(rng, ("up", "down", "nearest"))))
    return [x.astype(d.np_dtype)], attrs


def _cast(rng: np.random.Generator) -> Sample:
    if rng.random() < 0.3:
        return _cast_new_dtypes(rng)
    src, to = _pick(rng, ANY), _pick(rng, ANY)
    # stay inside every target's range: u8 takes [0, 255], i8 [-128, 127]
    unsigned = dt.dtype(to).kind == "uint" or dt.dtype(src).kind == "uint"
    lo, hi = (0, 100) if unsigned else (-100, 100)
    return [_values(rng, _shape(rng), src, lo, hi)], {"to": to}


def _optional(rng: np.random.Generator, key: str, value: Any) -> dict[str, Any]:
    """{key: value} or {} (the op's default), at random."""
    return {key: value} if rng.random() < 0.7 else {}


SAMPLES: dict[str, SampleFn] = {
    # unary math
    "neg": _unary(SIGNED, -50, 50),
    "abs": _unary(NUMERIC, -50, 50),
    "exp": _unary(FLOATS, -3, 3),
    "log": _unary(FLOATS, 0.1, 4),
    "sqrt": _unary(FLOATS, 0.1, 4),
    "rsqrt": _unary(FLOATS, 0.1, 4),
    "reciprocal": lambda rng: ([_away_from_zero(rng, _shape(rng), _pick(rng, FLOATS), 0.2, 3)],
                               {}),
    "tanh": _unary(FLOATS, -4, 4),
    "sigmoid": _unary(FLOATS, -6, 6),
    "erf": _unary(FLOATS, -3, 3),
    "sin": _unary(FLOATS, -4, 4),
    "cos": _unary(FLOATS, -4, 4),
    "floor": _unary(FLOATS, -10, 10),
    "ceil": _unary(FLOATS, -10, 10),
    "round": _unary(FLOATS, -10, 10),
    "sign": _unary(NUMERIC, -5, 5),
    "relu": _unary(NUMERIC, -5, 5),
    "silu": _unary(FLOATS, -5, 5),
    "softplus": _unary(FLOATS, -5, 5),
    "leaky_relu": _unary(FLOATS, -5, 5,
                         lambda rng: _optional(rng, "alpha", float(rng.uniform(0.01, 0.3)))),
    "elu": _unary(FLOATS, -5, 5, lambda rng: _optional(rng, "alpha", float(rng.uniform(0.5, 2)))),
    "gelu": _unary(FLOATS, -4, 4,
                   lambda rng: _optional(rng, "approximate", _pick(rng, ("none", "tanh")))),
    # predicates (finite inputs: samples feed random graphs; nan/inf cases are in the tests)
    "not": _unary(("bool",), 0, 1),
    "isnan": _unary(FLOATS, -5, 5),
    "isinf": _unary(FLOATS, -5, 5, lambda rng: {"detect_positive": bool(rng.random() < 0.5),
                                                 "detect_negative": bool(rng.random() < 0.5)}),
    # binary arithmetic
    "add": _small_int_arith(NUMERIC),
    "sub": _sub,
    "mul": _small_int_arith(NUMERIC),
    "div": _binary(NUMERIC, -9, 9, b_range=(1, 9), nonzero_b=True),
    "pow": _pow,
    "mod": _binary(NUMERIC, -9, 9, b_range=(1, 5), nonzero_b=True,
                   attrs=lambda rng: _optional(rng, "fmod", bool(rng.random() < 0.5))),
    "max": _binary(NUMERIC, -9, 9),
    "min": _binary(NUMERIC, -9, 9),
    # logic and comparisons
    "and": _binary(("bool",), 0, 1),
    "or": _binary(("bool",), 0, 1),
    "xor": _binary(("bool",), 0, 1),
    "eq": _ties(ANY),
    "ne": _ties(ANY),
    "lt": _ties(NUMERIC),
    "le": _ties(NUMERIC),
    "gt": _ties(NUMERIC),
    "ge": _ties(NUMERIC),
    # where, clip, cast
    "where": _where,
    "clip": _clip,
    "cast": _cast,
}
