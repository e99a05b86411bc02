"""Helpers for op tests: build a one-op module from arrays and run it through the interpreter."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from compiler.ir import FunctionBuilder, Module, interpret, tensor
from compiler.ir import dtypes as dt


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
