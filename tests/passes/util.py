"""Helpers shared by the pass tests."""
from __future__ import annotations

import numpy as np

from compiler.ir import Function


def random_inputs(fn: Function, rng: np.random.Generator) -> list[np.ndarray]:
    """Fresh non-trivial arrays for fn's arguments (each symbolic dim gets one random size)."""
    sizes: dict[str, int] = {}
    out = []
    for a in fn.args:
        shape = [d if isinstance(d, int) else sizes.setdefault(d, int(rng.integers(1, 5)))
                 for d in a.type.shape]
        if a.dtype.is_float:
            out.append(rng.standard_normal(shape).astype(a.dtype.np_dtype))
        elif a.dtype.is_bool:
            out.append(rng.random(shape) < 0.5)
        else:
            out.append(rng.integers(-9, 10, shape).astype(a.dtype.np_dtype))
    return out


def identical(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, shape and bits (nan payloads and -0.0 included)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
