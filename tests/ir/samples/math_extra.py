"""Sample operands and attributes for compiler/ir/ops/math_extra.py: trigonometric and hyperbolic
functions (inputs inside each function's domain), bitwise logic and shifts (shift amounts mostly in
range, some negative or past the bit width), and det (small well-scaled matrices)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from compiler.ir import dtypes as dt

from . import Sample, SampleFn

FLOATS = ("f32", "f16", "bf16", "f64")
INTS = ("i8", "u8", "i16", "i32", "i64")


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(0, len(options)))]


def _shape(rng: np.random.Generator, max_rank: int = 4) -> tuple[int, ...]:
    return tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(0, max_rank + 1))))


def _broadcast_pair(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast: a common shape with leading dims dropped or dims set to 1."""
    full = _shape(rng)
    out = []
    for _ in range(2):
        s = list(full[int(rng.integers(0, len(full) + 1)):] if rng.random() < 0.4 else full)
        out.append(tuple(1 if rng.random() < 0.25 else d for d in s))
    return out[0], out[1]


def _ints(rng: np.random.Generator, shape: Sequence[int], dtype: str) -> np.ndarray:
    """Integers spread over the dtype's whole range, so every bit pattern occurs."""
    info = np.iinfo(dt.dtype(dtype).np_dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True,
                        dtype=dt.dtype(dtype).np_dtype)


def _float_unary(lo: float, hi: float) -> SampleFn:
    def sample(rng: np.random.Generator) -> Sample:
        d = dt.dtype(_pick(rng, FLOATS))
        return [rng.uniform(lo, hi, size=_shape(rng)).astype(d.np_dtype)], {}
    return sample


def _bitwise_not(rng: np.random.Generator) -> Sample:
    return [_ints(rng, _shape(rng), _pick(rng, INTS))], {}


def _bitwise(rng: np.random.Generator) -> Sample:
    d = _pick(rng, INTS)
    sa, sb = _broadcast_pair(rng)
    return [_ints(rng, sa, d), _ints(rng, sb, d)], {}


def _shift(rng: np.random.Generator) -> Sample:
    d = _pick(rng, INTS)
    bits = dt.dtype(d).bits
    sa, sb = _broadcast_pair(rng)
    lo = 0 if dt.dtype(d).kind == "uint" else -2
    amount = rng.integers(lo, bits + 3, size=sb).astype(dt.dtype(d).np_dtype)
    return [_ints(rng, sa, d), amount], {}


def _det(rng: np.random.Generator) -> Sample:
    d = dt.dtype(_pick(rng, FLOATS))
    m = int(rng.integers(1, 5))
    batch = _shape(rng, 2)
    return [rng.uniform(-1, 1, size=batch + (m, m)).astype(d.np_dtype)], {}


SAMPLES: dict[str, SampleFn] = {
    "tan": _float_unary(-1.2, 1.2),
    "asin": _float_unary(-0.95, 0.95),
    "acos": _float_unary(-0.95, 0.95),
    "atan": _float_unary(-4, 4),
    "sinh": _float_unary(-3, 3),
    "cosh": _float_unary(-3, 3),
    "asinh": _float_unary(-4, 4),
    "acosh": _float_unary(1.05, 4),
    "atanh": _float_unary(-0.95, 0.95),
    "bitwise_not": _bitwise_not,
    "bitwise_and": _bitwise,
    "bitwise_or": _bitwise,
    "bitwise_xor": _bitwise,
    "shift_left": _shift,
    "shift_right": _shift,
    "det": _det,
}
