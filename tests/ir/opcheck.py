"""Helpers for op tests: build a one-op module from arrays and run it through the interpreter,
plus what the test_ops_*.py files share: result types of one op, stable seeds, random inputs,
NumPy -> torch conversion and the check run over each family's SAMPLES."""
from __future__ import annotations

import zlib
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch

from compiler.ir import FunctionBuilder, Module, get_op, interpret, tensor
from compiler.ir import dtypes as dt
from compiler.ir.types import TensorType

BF16 = dt.bf16.np_dtype


def one_op_module(name: str, inputs: Sequence[np.ndarray], attrs: dict[str, Any],
                  as_constants: Sequence[int] = ()) -> Module:
    """A module whose @main takes `inputs` as arguments (those listed in as_constants become
    module constants) and returns the results of one `name` op."""
    m = Module("test")
    f = FunctionBuilder(m, "main")
    vals = []
    for i, x in enumerate(inputs):
        x = np.asarray(x)
        if i in as_constants:
            vals.append(f.constant(x, name=f"c{i}"))
        else:
            vals.append(f.arg(f"x{i}", tensor(x.shape, dt.dtype(x.dtype))))
    res = f.op(name, *vals, **attrs)
    f.ret(*(res if isinstance(res, list) else [res]))
    return m


def run_op(name: str, *inputs: np.ndarray, **attrs: Any) -> list[np.ndarray]:
    """Run one op through builder (type inference) and interpreter (result types checked)."""
    m = one_op_module(name, inputs, attrs)
    return interpret(m, *inputs)


def infer(name: str, /, *types: TensorType, **attrs: Any) -> list[TensorType]:
    """Result types of op `name` for operand types and (raw) attributes (shape rule only)."""
    opdef = get_op(name)
    return opdef.infer(list(types), opdef.normalize_attrs(attrs))


def infer_one(name: str, /, *types: TensorType, **attrs: Any) -> TensorType:
    """The single result type of op `name` (an op with another number of results is an error)."""
    (res,) = infer(name, *types, **attrs)
    return res


def seed_of(*key: str) -> int:
    """A stable per-case seed (str hashes change between runs)."""
    return zlib.crc32(repr(key).encode())


def randn(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any, loc: float = 0.0,
          scale: float = 1.0) -> np.ndarray:
    """Normal values loc + scale * N(0, 1), rounded to `dtype` (a float dtype)."""
    return (loc + scale * rng.standard_normal(shape)).astype(dt.dtype(dtype).np_dtype)


def to_torch(x: Optional[np.ndarray]) -> Optional[torch.Tensor]:
    """A torch tensor of x (None stays None); f16/bf16 become f32, as the references compute
    those in f32."""
    if x is None:
        return None
    if x.dtype in (np.float16, BF16):
        x = x.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(x))


def check_samples(samples: Mapping[str, Callable[[np.random.Generator], tuple]], name: str, *,
                  require_outputs: bool = False) -> None:
    """Run samples[name] with seeds 0..49 through run_op and require every output to be finite
    (integer and bool outputs always are); with require_outputs, at least one output too."""
    for seed in range(50):
        inputs, attrs = samples[name](np.random.default_rng(seed))
        outs = run_op(name, *inputs, **attrs)
        if require_outputs:
            assert outs, (name, seed)
        for out in outs:
            assert np.isfinite(out.astype(np.float64)).all(), (name, seed, inputs, attrs)
