"""Build graphs from Python: type inference runs as each op is added.

    m = Module("mlp")
    f = FunctionBuilder(m, "main")
    x = f.arg("x", tensor(["batch", 64], "f32"))
    w = f.constant(np.random.rand(64, 32).astype(np.float32), name="w")
    y = f.relu(f.matmul(x, w))
    f.ret(y)                      # the function is now in m.functions

Any registered op is a method: `f.add(a, b)`, `f.softmax(x, axis=-1)`; `f.op(name, ...)` is the
same with the name as a string. Ops with several results return a list of values.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from . import dtypes as dt
from .ops.module_ops import module_op_types
from .core import Function, Location, Module, Op, Value
from .registry import find_op, get_op
from .types import TensorType, TypeInferenceError


class BuildError(TypeInferenceError):
    """An op could not be added: its name, operands and the reason."""


class FunctionBuilder:
    """Appends ops to one function of a module."""

    def __init__(self, module: Module, name: str = "main") -> None:
        self.module = module
        self.function = Function(name)
        self._finished = False

    def arg(self, name: Optional[str], type: TensorType) -> Value:
        """Add a function argument of the given type."""
        v = Value(type, name)
        self.function.args.append(v)
        return v

    def constant(self, array: "np.ndarray | float | int", name: Optional[str] = None,
                 dtype: Any = None) -> Value:
        """Store `array` as a module constant and return the value that reads it."""
        arr = np.asarray(array, dtype=None if dtype is None else dt.dtype(dtype).np_dtype)
        key = self.module.add_constant(arr, name)
        return self.op("constant", name=key, result_names=[key])  # type: ignore[return-value]

    def op(self, name: str, /, *operands: Value, loc: Optional[Location] = None,
           result_names: Optional[Sequence[Optional[str]]] = None,
           **attrs: Any) -> "Value | list[Value]":
        """Add op `name`; returns its result (or the list of results when it has several)."""
        opdef = get_op(name)
        for i, v in enumerate(operands):
            if not isinstance(v, Value):
                raise BuildError(f"{name} operand {i} is {type(v).__name__}, not an IR Value "
                                 "(use f.constant(...) for arrays)")
        try:
            attrs = opdef.normalize_attrs(attrs)
            in_types = [v.type for v in operands]
            types = module_op_types(self.module, name, in_types, attrs)
            if types is None:
                types = opdef.infer(in_types, attrs)
        except TypeInferenceError as e:
            shown = ", ".join(str(v.type) for v in operands)
            raise BuildError(f"{name}({shown}): {e}") from None
        op = Op(name, list(operands), types, attrs, loc,
                list(result_names) if result_names is not None else None)
        self.function.ops.append(op)
        return op.results[0] if len(op.results) == 1 else list(op.results)

    def ret(self, *values: Value) -> Function:
        """Set the returned values and add the function to the module."""
        if self._finished:
            raise BuildError(f"function @{self.function.name} already returned")
        self.function.outputs = list(values)
        self.module.functions.append(self.function)
        self._finished = True
        return self.function

    def __getattr__(self, name: str):
        if name.startswith("_") or find_op(name) is None:
            raise AttributeError(f"{type(self).__name__} has no attribute or op '{name}'")
        return lambda *operands, **attrs: self.op(name, *operands, **attrs)

