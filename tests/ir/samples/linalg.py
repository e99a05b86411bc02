"""Random valid operands and attributes for the linear-algebra ops (matmul, gemm, linear,
einsum)."""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import dtypes as dt

from . import Sample

# Floats plus the integer widths the contraction ops accept.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), dt.bf16.np_dtype,
          np.dtype(np.int32), np.dtype(np.int64))


def array(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Non-trivial values: normal floats, small signed integers (so int sums cannot overflow)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return rng.integers(-4, 5, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _dtype(rng: np.random.Generator) -> np.dtype:
    return DTYPES[rng.integers(len(DTYPES))]


def _dim(rng: np.random.Generator) -> int:
    return int(rng.integers(1, 6))


def matmul(rng: np.random.Generator) -> Sample:
    d = _dtype(rng)
    m, k, n = _dim(rng), _dim(rng), _dim(rng)
    # batch dims, each side keeping a suffix of them with some dims set to 1 (broadcasting)
    batch = [_dim(rng) for _ in range(rng.integers(0, 3))]

    def side() -> list[int]:
        b = batch[rng.integers(0, len(batch) + 1):]
        return [1 if rng.random() < 0.3 else x for x in b]

    a_shape = [k] if rng.random() < 0.2 else side() + [m, k]
    b_shape = [k] if rng.random() < 0.2 else side() + [k, n]
    return [array(rng, tuple(a_shape), d), array(rng, tuple(b_shape), d)], {}


def gemm(rng: np.random.Generator) -> Sample:
    d = _dtype(rng)
    m, k, n = _dim(rng), _dim(rng), _dim(rng)
    ta, tb = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
    a = array(rng, (k, m) if ta else (m, k), d)
    b = array(rng, (n, k) if tb else (k, n), d)
    ints = d.kind in "iu"
    attrs: dict[str, Any] = {"trans_a": ta, "trans_b": tb}
    if rng.random() < 0.7:
        attrs["alpha"] = float(rng.integers(-2, 3)) if ints else float(rng.uniform(-2, 2))
        attrs["beta"] = float(rng.integers(-2, 3)) if ints else float(rng.uniform(-2, 2))
    inputs = [a, b]
    if rng.random() < 0.7:
        c_shapes = [(), (n,), (1, n), (m, 1), (m, n), (1, 1)]
        inputs.append(array(rng, c_shapes[rng.integers(len(c_shapes))], d))
    return inputs, attrs


def linear(rng: np.random.Generator) -> Sample:
    d = _dtype(rng)
    k, n = _dim(rng), _dim(rng)
    lead = tuple(_dim(rng) for _ in range(rng.integers(0, 4)))
    inputs = [array(rng, lead + (k,), d), array(rng, (n, k), d)]
    if rng.random() < 0.6:
        inputs.append(array(rng, (n,), d))
    return inputs, {}


# Equations over labels; each label gets a random size (ellipsis dims too).
_EQUATIONS = (
    "ij,jk->ik", "bij,bjk->bik", "ii->i", "ij->ji", "i,i", "i,j->ij", "ij", "iij->j",
    "bhqd,bhkd->bhqk", "ij,jk,kl->il", "...ij,...jk->...ik", "...i->...", "...ij", "ijk->",
    "Ab,bA->A", " ij , jk -> ki ",
)


def einsum(rng: np.random.Generator) -> Sample:
    d = _dtype(rng)
    eq = _EQUATIONS[rng.integers(len(_EQUATIONS))]
    lhs = eq.replace(" ", "").split("->")[0]
    size = {ch: _dim(rng) for ch in set(lhs) if ch.isalpha()}
    ell = [_dim(rng) for _ in range(rng.integers(0, 3))]
    inputs = []
    for term in lhs.split(","):
        shape: list[int] = []
        for part_i, part in enumerate(term.split("...")):
            if part_i:
                # a suffix of the ellipsis dims, some broadcast as 1
                e = ell[rng.integers(0, len(ell) + 1):]
                shape += [1 if rng.random() < 0.3 else x for x in e]
            shape += [size[ch] for ch in part]
        inputs.append(array(rng, tuple(shape), d))
    return inputs, {"equation": eq}


SAMPLES = {"matmul": matmul, "gemm": gemm, "linear": linear, "einsum": einsum}
