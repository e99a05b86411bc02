"""Sample inputs for the reduction family: reduce_*, argmax/argmin, softmax/log_softmax, cumsum."""
from __future__ import annotations

import numpy as np

from compiler.ir import dtypes as dt

from . import Sample, SampleFn

FLOATS = ("f32", "f64", "f16", "bf16")
INTS = ("i8", "u8", "i16", "i32", "i64")


def _shape(rng: np.random.Generator, min_rank: int = 0, max_rank: int = 4,
           max_dim: int = 5) -> tuple[int, ...]:
    rank = int(rng.integers(min_rank, max_rank + 1))
    return tuple(int(d) for d in rng.integers(1, max_dim + 1, rank))


def _array(rng: np.random.Generator, shape: tuple[int, ...], dtype: str, lo: float = -2.0,
           hi: float = 2.0) -> np.ndarray:
    d = dt.dtype(dtype)
    if d.is_float:
        return rng.uniform(lo, hi, shape).astype(d.np_dtype)
    lo = max(lo, 0) if d.kind == "uint" else lo
    return rng.integers(int(lo), int(hi) + 1, shape).astype(d.np_dtype)


def _axis(rng: np.random.Generator, rank: int) -> int:
    """An axis valid for rank (0 or -1 for rank 0), negative half the time."""
    a = int(rng.integers(0, max(rank, 1)))
    return a - max(rank, 1) if rng.random() < 0.5 else a


def _axes(rng: np.random.Generator, rank: int) -> list[int]:
    """A random (possibly empty = all) subset of the axes, some given negative."""
    if rank == 0:  # a scalar's one axis may be named 0 or -1
        return [[], [0], [-1]][int(rng.integers(0, 3))]
    chosen = [a for a in range(rank) if rng.random() < 0.5]
    return [a - rank if rng.random() < 0.5 else a for a in rng.permutation(chosen).tolist()]


def _reduce_sample(kinds: tuple[str, ...], lo: float = -2.0, hi: float = 2.0,
                   max_dim: int = 5) -> SampleFn:
    def sample(rng: np.random.Generator) -> Sample:
        shape = _shape(rng, max_dim=max_dim)
        x = _array(rng, shape, str(rng.choice(kinds)), lo, hi)
        return [x], {"axes": _axes(rng, len(shape)), "keepdims": bool(rng.random() < 0.5)}
    return sample


def _prod_sample(rng: np.random.Generator) -> Sample:
    # at most 81 factors near +-1, so an f16 product stays finite
    shape = _shape(rng, max_dim=3)
    dtype = str(rng.choice(FLOATS + INTS))
    if dt.dtype(dtype).is_float:
        x = (rng.uniform(0.9, 1.1, shape) * rng.choice([-1.0, 1.0], shape)).astype(
            dt.dtype(dtype).np_dtype)
    else:
        x = _array(rng, shape, dtype, -2, 2)
    return [x], {"axes": _axes(rng, len(shape)), "keepdims": bool(rng.random() < 0.5)}


def _arg_sample(rng: np.random.Generator) -> Sample:
    shape = _shape(rng)
    x = _array(rng, shape, str(rng.choice(FLOATS + INTS)))
    return [x], {"axis": _axis(rng, len(shape)), "keepdims": bool(rng.random() < 0.5),
                 "select_last_index": bool(rng.random() < 0.5)}


def _softmax_sample(rng: np.random.Generator) -> Sample:
    shape = _shape(rng)
    x = _array(rng, shape, str(rng.choice(FLOATS)), -4, 4)
    return [x], {"axis": _axis(rng, len(shape))}


def _cumsum_sample(rng: np.random.Generator) -> Sample:
    shape = _shape(rng)
    x = _array(rng, shape, str(rng.choice(FLOATS + INTS)))
    return [x], {"axis": _axis(rng, len(shape)), "exclusive": bool(rng.random() < 0.5),
                 "reverse": bool(rng.random() < 0.5)}


NUMERIC = FLOATS + INTS
SAMPLES: dict[str, SampleFn] = {
    "reduce_sum": _reduce_sample(NUMERIC),
    "reduce_mean": _reduce_sample(FLOATS),
    "reduce_max": _reduce_sample(NUMERIC),
    "reduce_min": _reduce_sample(NUMERIC),
    "reduce_prod": _prod_sample,
    "reduce_l1": _reduce_sample(NUMERIC),
    "reduce_l2": _reduce_sample(FLOATS),
    "reduce_sum_square": _reduce_sample(NUMERIC),
    "reduce_logsumexp": _reduce_sample(FLOATS, -4, 4),
    "argmax": _arg_sample,
    "argmin": _arg_sample,
    "softmax": _softmax_sample,
    "log_softmax": _softmax_sample,
    "cumsum": _cumsum_sample,
}
