"""cse: common subexpression elimination, merging pure ops that compute the same thing.

Two pure ops are the same when they have the same name, the same operand values, equal attributes
and the same result types; the later one's results are replaced by the earlier one's. Two
`constant` ops are the same when the arrays they name are identical (same dtype, shape and
bytes), whatever the names: the first name is kept (the other module constant is left for
prune-dead).

Attributes compare by value and kind: floats by their bits, so a nan attribute equals itself and
-0.0 differs from 0.0 (a pad value or clip bound of -0.0 is not one of 0.0); ints, bools and
floats never equal each other; lists compare element by element. Operands are not reordered for
commutative ops (a + b and b + a can differ in which nan payload they return).

This is value numbering in one walk over each function in order, not a rewrite rule: an op's
operands are renamed to the merged values before it is looked up, so chains of duplicates
collapse in one run. Merging never changes a computed value: the pass is exact.
"""
from __future__ import annotations

import hashlib
import struct
from typing import Any, Hashable

import numpy as np

from compiler.ir import DType, Function, Module, Op, Value

from .registry import register


def attr_key(value: Any) -> Hashable:
    """A hashable form of an attribute value that is equal exactly when the values are."""
    if isinstance(value, (bool, np.bool_)):
        return ("bool", bool(value))
    if isinstance(value, (int, np.integer)):
        return ("int", int(value))
    if isinstance(value, (float, np.floating)):
        return ("float", struct.pack("<d", float(value)))  # nan == nan, -0.0 != 0.0
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, DType):
        return ("dtype", value.name)
    if value is None:
        return ("none",)
    if isinstance(value, (tuple, list)):
        return ("list", tuple(attr_key(v) for v in value))
    return ("other", type(value).__name__, repr(value))


class _ConstantKeys:
    """Content keys of module constants (dtype, shape, digest), computed once per name."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.keys: dict[str, Hashable] = {}

    def key(self, name: str) -> Hashable:
        if name not in self.keys:
            arr = np.asarray(self.module.constants[name])
            digest = hashlib.sha256(arr.tobytes()).digest()
            self.keys[name] = (str(arr.dtype), arr.shape, digest)
        return self.keys[name]

    def identical(self, a: str, b: str) -> bool:
        """Byte equality, so that a digest collision can never merge different weights."""
        x, y = self.module.constants[a], self.module.constants[b]
        return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def op_key(op: Op, constants: _ConstantKeys) -> Hashable:
    """What identifies the value an op computes (its operands already renamed)."""
    types = tuple(r.type for r in op.results)
    if op.name == "constant":
        return ("constant", constants.key(op.attrs["name"]), types)
    attrs = tuple(sorted((k, attr_key(v)) for k, v in _with_defaults(op).items()))
    return (op.name, tuple(op.operands), attrs, types)  # values hash by identity


def _with_defaults(op: Op) -> dict[str, Any]:
    """op's attributes with defaults filled in, so a left-out default equals a written one."""
    out = {k: spec.default for k, spec in op.opdef.attrs.items() if not spec.required}
    out.update(op.attrs)
    return out


def cse_function(fn: Function, constants: _ConstantKeys) -> bool:
    """Merge the duplicate pure ops of one function; returns whether any were merged."""
    renamed: dict[Value, Value] = {}
    seen: dict[Hashable, Op] = {}
    kept: list[Op] = []
    for op in fn.ops:
        if any(v in renamed for v in op.operands):
            op.operands = [renamed.get(v, v) for v in op.operands]
        if not op.opdef.has("pure"):
            kept.append(op)
            continue
        key = op_key(op, constants)
        first = seen.get(key)
        if first is None or (op.name == "constant" and
                             not constants.identical(first.attrs["name"], op.attrs["name"])):
            seen.setdefault(key, op)
            kept.append(op)
            continue
        for mine, theirs in zip(op.results, first.results):  # same op, same result types
            renamed[mine] = theirs
    if not renamed:
        return False
    fn.ops = kept
    fn.outputs = [renamed.get(v, v) for v in fn.outputs]
    return True


@register("cse")
class CSE:
    """Merge identical pure ops and `constant` ops naming identical arrays (exact)."""

    def run(self, module: Module) -> bool:
        constants = _ConstantKeys(module)
        changed = False
        for fn in module.functions:
            changed |= cse_function(fn, constants)
        return changed
