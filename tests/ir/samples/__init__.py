"""Per-op sample generators shared by the op tests and the round-trip property test.

Each family module exports SAMPLES: {op name: fn(rng) -> (inputs, attrs)} where inputs is the
list of NumPy operand arrays (fresh random, non-trivial values) and attrs the op's attributes, so
that `FunctionBuilder.op(name, *args, **attrs)` type-checks and the reference runs without error
or nan for those inputs.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

Sample = tuple[list[np.ndarray], dict[str, Any]]
SampleFn = Callable[[np.random.Generator], Sample]


def all_samples() -> dict[str, SampleFn]:
    """SAMPLES of every family module, merged."""
    import importlib
    import pkgutil
    out: dict[str, SampleFn] = {}
    for info in pkgutil.iter_modules(__path__):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        for name, fn in getattr(mod, "SAMPLES", {}).items():
            if name in out:
                raise ValueError(f"two sample generators for op {name}")
            out[name] = fn
    return out
