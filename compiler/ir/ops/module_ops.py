"""Ops whose types come from the module rather than from operands alone.

- `constant` reads a module constant (a weight) by name.
- `fused` calls a function of the module that holds one fused group (made by the fuse-ops pass):
  its operands are the group's inputs, its results the group's outputs, and code generators lower
  the body as one kernel. `kind` says what the group is (e.g. "contraction", "reduction").

The builder, the verifier and the interpreter look these up with `module_op_types`.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .. import dtypes as dt
from ..registry import attr, def_op
from ..types import TensorType, TypeInferenceError

MODULE_OPS = frozenset({"constant", "fused"})


def constant_type(constants: "dict[str, np.ndarray]", name: str) -> TensorType:
    """The type of module constant `name`; TypeInferenceError when there is none."""
    if name not in constants:
        raise TypeInferenceError(f"constant refers to @{name}, which the module does not define")
    arr = constants[name]
    return TensorType(tuple(arr.shape), dt.dtype(arr.dtype))


def fused_types(module: Any, body: str, operand_types: Sequence[TensorType]) -> list[TensorType]:
    """Result types of a `fused` op: its body's outputs, after checking the operands against the
    body's arguments."""
    try:
        fn = module.function(body)
    except KeyError:
        raise TypeInferenceError(f"fused refers to @{body}, which the module does not define") from None
    if len(operand_types) != len(fn.args):
        raise TypeInferenceError(f"fused @{body} takes {len(fn.args)} operands, got "
                                 f"{len(operand_types)}")
    for i, (t, a) in enumerate(zip(operand_types, fn.args)):
        if t != a.type:
            raise TypeInferenceError(f"fused @{body} operand {i} is {t}, the body takes {a.type}")
    return list(fn.output_types)


def module_op_types(module: Any, name: str, operand_types: Sequence[TensorType],
                    attrs: Mapping[str, Any]) -> Optional[list[TensorType]]:
    """Result types of a module op (None for ordinary ops, whose type rule decides)."""
    if name == "constant":
        return [constant_type(module.constants, attrs["name"])]
    if name == "fused":
        return fused_types(module, attrs["body"], operand_types)
    return None


def _rule(*_: object, **__: object) -> TensorType:
    raise TypeInferenceError("this op's type comes from the module; use module_op_types()")


def _reference(*_: object, **__: object) -> np.ndarray:
    raise RuntimeError("the interpreter runs module ops itself")


def_op("constant", [], _rule, _reference, attrs={"name": attr("symbol")},
       traits=("pure",), doc="the module constant @name")
def_op("fused", ["inputs*"], _rule, _reference,
       attrs={"body": attr("symbol"), "kind": attr("str", "opaque")},
       traits=("pure",), doc="one fused group: calls the module function @body, lowered as one kernel")
