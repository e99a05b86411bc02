"""Sample inputs for the normalization family: layer_norm, rms_norm, batch_norm, instance_norm,
group_norm."""
from __future__ import annotations

import numpy as np

from compiler.ir import dtypes as dt

from . import Sample, SampleFn

FLOATS = ("f32", "f64", "f16", "bf16")


def _shape(rng: np.random.Generator, min_rank: int, max_rank: int = 4) -> list[int]:
    rank = int(rng.integers(min_rank, max_rank + 1))
    return [int(d) for d in rng.integers(1, 6, rank)]


def _normal(rng: np.random.Generator, shape: "list[int] | tuple[int, ...]", dtype: str,
            loc: float = 0.0) -> np.ndarray:
    return (loc + rng.standard_normal(tuple(shape))).astype(dt.dtype(dtype).np_dtype)


def _param_shape(rng: np.random.Generator, target: list[int]) -> list[int]:
    """A shape that broadcasts to target: a suffix of it, some dims replaced by 1."""
    suffix = target[int(rng.integers(0, len(target) + 1)):]
    return [1 if rng.random() < 0.25 else d for d in suffix]


def _trailing_norm_sample(with_bias: bool):
    """layer_norm (x, scale?, bias?) or rms_norm (x, scale?) over [axis, rank)."""
    def sample(rng: np.random.Generator) -> Sample:
        dtype = str(rng.choice(FLOATS))
        shape = _shape(rng, 1)
        explicit_axis = rng.random() < 0.8  # else the default, -1
        axis = int(rng.integers(-len(shape), len(shape))) if explicit_axis else -1
        inputs = [_normal(rng, shape, dtype, loc=float(rng.uniform(-2, 2)))]
        n_params = int(rng.integers(0, 3 if with_bias else 2))
        for _ in range(n_params):
            inputs.append(_normal(rng, _param_shape(rng, shape[axis:]), dtype))
        attrs = {"axis": axis} if explicit_axis else {}
        if rng.random() < 0.5:
            attrs["epsilon"] = float(rng.choice([1e-5, 1e-3, 0.1]))
        return inputs, attrs
    return sample


def _batch_norm_sample(rng: np.random.Generator) -> Sample:
    dtype = str(rng.choice(FLOATS))
    shape = _shape(rng, 2)
    c = shape[1]
    var = rng.uniform(0.2, 2.0, c).astype(dt.dtype(dtype).np_dtype)
    params = [_normal(rng, [c], dtype) for _ in range(3)]
    return [_normal(rng, shape, dtype), params[0], params[1], params[2], var], \
        {"epsilon": float(rng.choice([1e-5, 1e-3]))}


def _instance_norm_sample(rng: np.random.Generator) -> Sample:
    dtype = str(rng.choice(FLOATS))
    shape = _shape(rng, 3)
    c = shape[1]
    return [_normal(rng, shape, dtype, 1.0), _normal(rng, [c], dtype), _normal(rng, [c], dtype)], {}


def _group_norm_sample(rng: np.random.Generator) -> Sample:
    dtype = str(rng.choice(FLOATS))
    shape = _shape(rng, 2)
    c = shape[1]
    groups = int(rng.choice([g for g in range(1, c + 1) if c % g == 0]))
    return [_normal(rng, shape, dtype, -1.0), _normal(rng, [c], dtype), _normal(rng, [c], dtype)], \
        {"num_groups": groups, "epsilon": float(rng.choice([1e-5, 1e-2]))}


SAMPLES: dict[str, SampleFn] = {
    "layer_norm": _trailing_norm_sample(with_bias=True),
    "rms_norm": _trailing_norm_sample(with_bias=False),
    "batch_norm": _batch_norm_sample,
    "instance_norm": _instance_norm_sample,
    "group_norm": _group_norm_sample,
}
