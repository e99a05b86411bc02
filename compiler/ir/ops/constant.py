"""The `constant` op: reads a module constant (weight) by name.

It is the one op whose type comes from the module rather than from operands: the verifier, the
builder and the interpreter look the array up in `Module.constants`.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..registry import attr, def_op
from ..types import TensorType, TypeInferenceError


def constant_type(constants: "dict[str, np.ndarray]", name: str) -> TensorType:
    """The type of module constant `name`; TypeInferenceError when there is none."""
    if name not in constants:
        raise TypeInferenceError(f"constant refers to @{name}, which the module does not define")
    arr = constants[name]
    return TensorType(tuple(arr.shape), dt.dtype(arr.dtype))


def _rule(**_: object) -> TensorType:
    raise TypeInferenceError("constant's type comes from the module; use constant_type()")


def _reference(**_: object) -> np.ndarray:
    raise RuntimeError("the interpreter reads constants from the module")


def_op("constant", [], _rule, _reference, attrs={"name": attr("symbol")},
       traits=("pure",), doc="the module constant @name")
