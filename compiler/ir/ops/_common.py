"""Type-rule building blocks shared by the op declaration modules."""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .. import dtypes as dt
from ..types import Dim, TensorType, TypeInferenceError, broadcast_shapes, normalize_axes

FLOAT_KINDS = ("float",)
INT_KINDS = ("int", "uint")


def require_dtype(op: str, t: TensorType, kinds: Iterable[str], what: str = "operand") -> None:
    """TypeInferenceError unless t's dtype kind is one of kinds ("float", "int", "uint", "bool")."""
    kinds = tuple(kinds)
    if t.dtype.kind not in kinds:
        raise TypeInferenceError(f"{op} {what} must be {'/'.join(kinds)}, got {t.dtype}")


def same_dtype(op: str, *types: TensorType) -> dt.DType:
    """The operands' common dtype; TypeInferenceError naming both when they differ."""
    first = types[0].dtype
    for t in types[1:]:
        if t.dtype != first:
            raise TypeInferenceError(f"{op} operands must share a dtype, got {first} and {t.dtype}")
    return first


def unary_rule(op: str, kinds: Sequence[str] = ("float",)):
    """Type rule of an elementwise unary op whose result has the operand's type."""
    def rule(x: TensorType, **_: object) -> TensorType:
        require_dtype(op, x, kinds)
        return x
    return rule


def binary_rule(op: str, kinds: Sequence[str], result_dtype: "dt.DType | None" = None):
    """Type rule of a broadcasting binary op: same dtypes, broadcast shapes."""
    def rule(a: TensorType, b: TensorType, **_: object) -> TensorType:
        d = same_dtype(op, a, b)
        require_dtype(op, a, kinds)
        return TensorType(broadcast_shapes(a.shape, b.shape), result_dtype or d)
    return rule


def reduce_shape(shape: Sequence[Dim], axes: "Sequence[int] | None", keepdims: bool,
                 op: str = "reduce") -> tuple[Dim, ...]:
    """Shape after reducing `axes` (None or empty: all axes)."""
    rank = len(shape)
    ax = set(range(rank)) if not axes else set(normalize_axes(axes, rank, f"{op} axes"))
    if keepdims:
        return tuple(1 if i in ax else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in ax)


def np_axes(axes: "Sequence[int] | None") -> "tuple[int, ...] | None":
    """NumPy's axis argument for a reduction over `axes` (None or empty: all)."""
    return tuple(axes) if axes else None


def as_dtype(x: np.ndarray, like: "np.dtype | dt.DType") -> np.ndarray:
    """Cast x to a dtype without copying when it already has it."""
    npd = like.np_dtype if isinstance(like, dt.DType) else np.dtype(like)
    return x if x.dtype == npd else x.astype(npd)
