"""The graph IR's objects: SSA values, ops, functions and modules.

A `Module` holds functions and named constants (weights, as NumPy arrays). A `Function` has
arguments, ops in order, and returned values. Every value is defined once: by an argument or by
one result of one op. Constants enter a function through a `constant` op naming the module entry.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Optional

import numpy as np

from . import dtypes as dt
from .types import Dim, TensorType

if TYPE_CHECKING:
    from .registry import OpDef

NAME_RE = re.compile(r"[A-Za-z0-9_.]+\Z")


def clean_name(name: Optional[str]) -> Optional[str]:
    """Make an outside name (an ONNX tensor name, say) usable as an IR name: keep it readable."""
    if name is None or name == "":
        return None
    if NAME_RE.match(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_.]+", "_", name).strip("_")
    return cleaned or None


@dataclass(frozen=True)
class Location:
    """Where an op came from: a name (an ONNX node, a torch node) and/or file:line:col."""

    name: Optional[str] = None
    file: Optional[str] = None
    line: Optional[int] = None
    col: Optional[int] = None

    def __str__(self) -> str:
        parts = []
        if self.name is not None:
            parts.append(self.name)
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}" + (f":{self.col}" if self.col is not None else "")
            parts.append(where)
        return " at ".join(parts) if parts else "<unknown>"


class Value:
    """An SSA value: a function argument or one result of an op."""

    __slots__ = ("type", "name", "owner", "index")

    def __init__(self, type: TensorType, name: Optional[str] = None,
                 owner: "Optional[Op]" = None, index: int = 0) -> None:
        self.type = type
        self.name = clean_name(name)
        self.owner = owner
        self.index = index

    @property
    def shape(self) -> tuple[Dim, ...]:
        return self.type.shape

    @property
    def dtype(self) -> dt.DType:
        return self.type.dtype

    def __repr__(self) -> str:
        return f"Value(%{self.name or '?'}: {self.type})"


class Op:
    """One operation: registry name, operand values, result values, attributes, location."""

    __slots__ = ("name", "operands", "results", "attrs", "loc", "src_line")

    def __init__(self, name: str, operands: list[Value], result_types: list[TensorType],
                 attrs: Optional[dict[str, Any]] = None, loc: Optional[Location] = None,
                 result_names: Optional[list[Optional[str]]] = None) -> None:
        self.name = name
        self.operands = list(operands)
        self.attrs: dict[str, Any] = dict(attrs or {})
        self.loc = loc
        self.src_line: Optional[int] = None  # line in the text it was parsed from
        names = result_names or [None] * len(result_types)
        self.results = [Value(t, n, self, i) for i, (t, n) in enumerate(zip(result_types, names))]

    @property
    def result(self) -> Value:
        """The single result; ValueError for ops with several."""
        if len(self.results) != 1:
            raise ValueError(f"op {self.name} has {len(self.results)} results, not one")
        return self.results[0]

    @property
    def opdef(self) -> "OpDef":
        from .registry import get_op
        return get_op(self.name)

    def __repr__(self) -> str:
        return f"Op({self.name}, {len(self.operands)} operands, {len(self.results)} results)"


class Function:
    """A graph: arguments, ops in order (each operand defined before use), and returned values."""

    def __init__(self, name: str, args: Optional[list[Value]] = None,
                 ops: Optional[list[Op]] = None, outputs: Optional[list[Value]] = None) -> None:
        self.name = name
        self.args: list[Value] = list(args or [])
        self.ops: list[Op] = list(ops or [])
        self.outputs: list[Value] = list(outputs or [])
        self.src_line: Optional[int] = None

    @property
    def arg_types(self) -> list[TensorType]:
        return [a.type for a in self.args]

    @property
    def output_types(self) -> list[TensorType]:
        return [v.type for v in self.outputs]

    def uses(self) -> dict[Value, list[Op]]:
        """Map each value to the ops that read it, in program order (unused values are absent)."""
        users: dict[Value, list[Op]] = {}
        for op in self.ops:
            for v in op.operands:
                users.setdefault(v, []).append(op)
        return users

    def __repr__(self) -> str:
        return f"Function(@{self.name}, {len(self.args)} args, {len(self.ops)} ops)"


class Module:
    """Functions plus named constants (NumPy arrays) and bounds of symbolic dims."""

    def __init__(self, name: str = "module") -> None:
        self.name = name
        self.functions: list[Function] = []
        self.constants: dict[str, np.ndarray] = {}
        self.dim_bounds: dict[str, tuple[int, Optional[int]]] = {}
        self.source: Optional[str] = None  # text this module was parsed from, for diagnostics
        self.source_file: Optional[str] = None

    def function(self, name: str) -> Function:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(f"module @{self.name} has no function @{name}; it has "
                       + ", ".join("@" + f.name for f in self.functions))

    @property
    def main(self) -> Function:
        """The entry function: `@main` when present, else the first one."""
        for f in self.functions:
            if f.name == "main":
                return f
        if not self.functions:
            raise ValueError(f"module @{self.name} has no functions")
        return self.functions[0]

    def add_constant(self, array: np.ndarray, name: Optional[str] = None) -> str:
        """Store a weight under a fresh name (based on `name`) and return that name."""
        base = clean_name(name) or "cst"
        key, n = base, 0
        while key in self.constants:
            n += 1
            key = f"{base}_{n}"
        arr = np.asarray(array)
        dt.dtype(arr.dtype)  # refuse dtypes the IR does not have
        self.constants[key] = arr
        return key

    def ops(self) -> Iterator[Op]:
        for f in self.functions:
            yield from f.ops

    def __str__(self) -> str:
        from .printer import print_module
        return print_module(self)

    def __repr__(self) -> str:
        return (f"Module(@{self.name}, {len(self.functions)} functions, "
                f"{len(self.constants)} constants)")


def clone_module(module: Module) -> Module:
    """A copy of the module that passes may change freely: new functions, ops and values; the
    constants dict is new, its arrays are shared (the IR never writes into them)."""
    out = Module(module.name)
    out.constants = dict(module.constants)
    out.dim_bounds = dict(module.dim_bounds)
    out.source, out.source_file = module.source, module.source_file
    for fn in module.functions:
        mapping: dict[Value, Value] = {}
        args = []
        for a in fn.args:
            mapping[a] = Value(a.type, a.name)
            args.append(mapping[a])
        ops = []
        for op in fn.ops:
            new = Op(op.name, [mapping.get(v, v) for v in op.operands], [r.type for r in op.results],
                     dict(op.attrs), op.loc, [r.name for r in op.results])
            new.src_line = op.src_line
            mapping.update(zip(op.results, new.results))
            ops.append(new)
        copy = Function(fn.name, args, ops, [mapping.get(v, v) for v in fn.outputs])
        copy.src_line = fn.src_line
        out.functions.append(copy)
    return out
