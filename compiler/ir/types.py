"""Tensor types: a shape of static or named symbolic dims, and an element dtype.

A dim is an `int` (static) or a `str` (the name of a symbolic dim, printed `?name`). Symbolic dims
with the same name are equal; their bounds live on the module (`Module.dim_bounds`).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence, Union

from . import dtypes as dt

Dim = Union[int, str]
SYMBOL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class TypeInferenceError(ValueError):
    """An op's operands or attributes do not fit its type rule; the verifier adds the location."""


@dataclass(frozen=True)
class TensorType:
    """The type of an SSA value: shape (ints and symbol names) and element dtype."""

    shape: tuple[Dim, ...]
    dtype: dt.DType

    def __post_init__(self) -> None:
        shape = tuple(self.shape)
        for d in shape:
            if isinstance(d, bool) or not isinstance(d, (int, str)):
                raise TypeError(f"dim {d!r} must be an int or a symbol name")
            if isinstance(d, int) and d < 0:
                raise ValueError(f"negative dim {d} in shape {list(shape)}")
            if isinstance(d, str) and not SYMBOL_RE.match(d):
                raise ValueError(f"bad symbolic dim name {d!r}")
        object.__setattr__(self, "shape", tuple(int(d) if isinstance(d, int) else d for d in shape))
        object.__setattr__(self, "dtype", dt.dtype(self.dtype))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    @property
    def symbols(self) -> set[str]:
        return {d for d in self.shape if isinstance(d, str)}

    def num_elements(self) -> int:
        """Element count; only for static shapes."""
        if not self.is_static:
            raise ValueError(f"{self} has symbolic dims")
        return math.prod(self.shape)  # type: ignore[arg-type]

    def with_shape(self, shape: Iterable[Dim]) -> "TensorType":
        return TensorType(tuple(shape), self.dtype)

    def with_dtype(self, dtype: "dt.DType | str") -> "TensorType":
        return TensorType(self.shape, dt.dtype(dtype))

    def __str__(self) -> str:
        return f"{self.dtype.name}[{','.join(format_dim(d) for d in self.shape)}]"

    __repr__ = __str__


def format_dim(d: Dim) -> str:
    return f"?{d}" if isinstance(d, str) else str(d)


def tensor(shape: Sequence[Dim], dtype: "dt.DType | str" = "f32") -> TensorType:
    """Shorthand constructor: `tensor([2, "seq"], "f32")`."""
    return TensorType(tuple(shape), dt.dtype(dtype))


# ---------------------------------------------------------------------------------------------
# Shape arithmetic shared by the type rules


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    """Map a possibly negative axis into [0, rank); TypeInferenceError when out of range."""
    if rank == 0 and axis in (0, -1):
        return 0  # a scalar has one "axis" for ops that take one (softmax of a scalar is 1)
    if not -rank <= axis < rank:
        raise TypeInferenceError(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank


def normalize_axes(axes: Sequence[int], rank: int, what: str = "axes") -> list[int]:
    out = [normalize_axis(a, rank, what) for a in axes]
    if len(set(out)) != len(out):
        raise TypeInferenceError(f"{what} {list(axes)} repeat an axis")
    return out


def broadcast_shapes(*shapes: Sequence[Dim]) -> tuple[Dim, ...]:
    """NumPy broadcasting over static and symbolic dims.

    A symbol broadcasts against 1 and against itself; a symbol against a static n > 1 gives n (the
    symbol must equal n at run time, which the runtime checks); two different symbols do not
    broadcast, since the result would depend on values the compiler cannot see.
    """
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        res: Dim = 1
        for d in dims:
            if d == 1 or d == res:
                continue
            if res == 1:
                res = d
            elif isinstance(res, str) and isinstance(d, int):
                res = d
            elif isinstance(res, int) and isinstance(d, str):
                continue
            else:
                pretty = " and ".join("[" + ",".join(format_dim(x) for x in s) + "]" for s in shapes)
                raise TypeInferenceError(f"shapes {pretty} do not broadcast (axis {i})")
        out.append(res)
    return tuple(out)


class SymProduct:
    """A product of dims: an integer coefficient times a multiset of symbols."""

    def __init__(self, dims: Iterable[Dim] = ()) -> None:
        self.coef = 1
        self.syms: Counter[str] = Counter()
        for d in dims:
            if isinstance(d, str):
                self.syms[d] += 1
            else:
                self.coef *= d

    def divide(self, other: "SymProduct") -> "SymProduct | None":
        """self / other when exact (other's symbols all in self, coefficient divides), else None."""
        if other.coef == 0 or self.coef % other.coef or any(self.syms[s] < n for s, n in other.syms.items()):
            return None
        q = SymProduct()
        q.coef = self.coef // other.coef
        q.syms = self.syms - other.syms
        return q

    def as_dim(self) -> "Dim | None":
        """The product as one dim, when it is a plain int or a single symbol."""
        if not self.syms:
            return self.coef
        if self.coef == 1 and sum(self.syms.values()) == 1:
            return next(iter(self.syms))
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SymProduct) and self.coef == other.coef and +self.syms == +other.syms

    def __str__(self) -> str:
        parts = [str(self.coef)] if self.coef != 1 or not self.syms else []
        parts += [f"?{s}" for s in sorted(self.syms.elements())]
        return "*".join(parts)
