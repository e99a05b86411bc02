"""Reduction ops (reduce_*, argmax/argmin) and the axis-wise ops built on reductions (softmax,
log_softmax, cumsum). ONNX semantics; reducing an empty set gives the reduction's identity.

f16 and bf16 inputs are accumulated in f32 and rounded once, as the code generators do. Integer
sums and products wrap in the input dtype (ONNX keeps the input type).
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import numpy as np

from .. import dtypes as dt
from ..registry import attr, def_op
from ..types import Dim, TensorType, TypeInferenceError, normalize_axis
from ._common import reduce_shape, require_dtype
from .elementwise import _in_f32

NUMERIC = ("int", "uint", "float")
FLOAT = ("float",)

_REDUCE_ATTRS = {"axes": attr("ints", ()), "keepdims": attr("bool", False)}
_ARG_ATTRS = {"axis": attr("int", 0), "keepdims": attr("bool", False),
              "select_last_index": attr("bool", False)}


# --- axis checks --------------------------------------------------------------------------------


def check_axis(axis: int, rank: int, what: str) -> int:
    """normalize_axis, except that a scalar accepts axis -1 as well as 0 (as torch does), so the
    default axis=-1 works on rank 0."""
    return 0 if rank == 0 and axis == -1 else normalize_axis(axis, rank, what)


def _reduced_shape(op: str, shape: Sequence[Dim], axes: Sequence[int],
                   keepdims: bool) -> tuple[Dim, ...]:
    if not shape:  # a scalar reduces to itself; its one valid axis is 0 (or -1)
        for a in axes:
            check_axis(a, 0, f"{op} axes")
        if len(axes) > 1:
            raise TypeInferenceError(f"{op} axes {list(axes)} repeat an axis")
        return ()
    return reduce_shape(shape, axes, keepdims, op)


# --- helpers shared by the references ----------------------------------------------------------


def _axes_of(x: np.ndarray, axes: Sequence[int]) -> Optional[tuple[int, ...]]:
    """NumPy's axis argument: None (all) for empty axes or a rank-0 input, else the axes >= 0."""
    if not axes or x.ndim == 0:
        return None
    return tuple(a % x.ndim for a in axes)


def _count(x: np.ndarray, ax: Optional[tuple[int, ...]]) -> int:
    """How many elements each output element reduces over."""
    return x.size if ax is None else math.prod(x.shape[a] for a in ax)


def _lowest(dtype: np.dtype) -> object:
    """The identity of max: -inf for floats, the smallest value for integers."""
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _highest(dtype: np.dtype) -> object:
    """The identity of min: +inf for floats, the largest value for integers."""
    return np.inf if dtype.kind == "f" else np.iinfo(dtype).max


def _stable_max(x: np.ndarray, axis: "int | tuple[int, ...] | None") -> np.ndarray:
    """max over axis (keepdims) with non-finite maxima replaced by 0, to shift exp arguments:
    all -inf rows stay -inf after the shift instead of becoming nan."""
    m = np.maximum.reduce(x, axis=axis, keepdims=True, initial=-np.inf)
    return np.where(np.isfinite(m), m, 0).astype(x.dtype)


# --- reduce_* -----------------------------------------------------------------------------------


def _reduce_rule(name: str, kinds: Sequence[str]) -> Callable[..., TensorType]:
    def rule(x: TensorType, axes: Sequence[int], keepdims: bool) -> TensorType:
        require_dtype(name, x, kinds, "operand x")
        return x.with_shape(_reduced_shape(name, x.shape, axes, keepdims))
    return rule


def _reduce_sum(x: np.ndarray, ax, keepdims: bool) -> np.ndarray:
    return np.sum(x, axis=ax, keepdims=keepdims, dtype=x.dtype)


def _reduce_mean(x: np.ndarray, ax, keepdims: bool) -> np.ndarray:
    # sum/count rather than np.mean: an empty reduction gives nan without a Python warning
    return np.sum(x, axis=ax, keepdims=keepdims) / x.dtype.type(_count(x, ax))


def _reduce_max(x: np.ndarray, ax, keepdims: bool) -> np.ndarray:
    return np.maximum.reduce(x, axis=ax, keepdims=keepdims, initial=_lowest(x.dtype))


def _reduce_min(x: np.ndarray, ax, keepdims: bool) -> np.ndarray:
    return np.minimum.reduce(x, axis=ax, keepdims=keepdims, initial=_highest(x.dtype))


def _reduce_prod(x: np.ndarray, ax, keepdims: bool) -> np.ndarray:
    return np.prod(x, axis=ax, keepdims=keepdims, dtype=x.dtype)


def _reduce_l1(x: np.ndarray, ax, keepdims: bool) -> np.ndarray:
    return np.sum(np.abs(x), axis=ax, keepdims=keepdims, dtype=x.dtype)


def _reduce_sum_square(x: np.ndarray, ax, keepdims: bool) -> np.ndarray:
    return np.sum(x * x, axis=ax, keepdims=keepdims, dtype=x.dtype)


def _reduce_l2(x: np.ndarray, ax, keepdims: bool) -> np.ndarray:
    return np.sqrt(_reduce_sum_square(x, ax, keepdims))


def _reduce_logsumexp(x: np.ndarray, ax, keepdims: bool) -> np.ndarray:
    m = _stable_max(x, ax)
    out = np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=ax)


def _reduce(name: str, fn: Callable[..., np.ndarray], kinds: Sequence[str], doc: str) -> None:
    def reference(x: np.ndarray, axes: Sequence[int], keepdims: bool) -> np.ndarray:
        return np.asarray(fn(x, _axes_of(x, axes), keepdims), dtype=x.dtype)
    reference.__name__ = name
    def_op(name, ["x"], _reduce_rule(name, kinds), _in_f32(reference), attrs=_REDUCE_ATTRS,
           traits=("pure", "reduction"), doc=doc + " over axes (axes=() reduces all axes)")


_reduce("reduce_sum", _reduce_sum, NUMERIC, "sum (0 for an empty set)")
_reduce("reduce_mean", _reduce_mean, FLOAT, "arithmetic mean (nan for an empty set)")
_reduce("reduce_max", _reduce_max, NUMERIC, "max (-inf or the dtype's min for an empty set)")
_reduce("reduce_min", _reduce_min, NUMERIC, "min (+inf or the dtype's max for an empty set)")
_reduce("reduce_prod", _reduce_prod, NUMERIC, "product (1 for an empty set)")
_reduce("reduce_l1", _reduce_l1, NUMERIC, "sum of |x|")
_reduce("reduce_l2", _reduce_l2, FLOAT, "sqrt of the sum of x**2")
_reduce("reduce_sum_square", _reduce_sum_square, NUMERIC, "sum of x**2")
_reduce("reduce_logsumexp", _reduce_logsumexp, FLOAT,
        "log(sum(exp(x))), shifted by the max (-inf for an empty set)")

# --- argmax / argmin ------------------------------------------------------------------------------


def _arg_rule(name: str) -> Callable[..., TensorType]:
    def rule(x: TensorType, axis: int, keepdims: bool, select_last_index: bool) -> TensorType:
        require_dtype(name, x, NUMERIC, "operand x")
        a = check_axis(axis, x.rank, f"{name} axis")
        if x.rank and x.shape[a] == 0:
            raise TypeInferenceError(f"{name} axis {axis} has size 0 in x {x}: an empty axis "
                                     "has no index to return")
        return TensorType(_reduced_shape(name, x.shape, (axis,), keepdims), dt.i64)
    return rule


def _arg_reference(pick: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def reference(x: np.ndarray, axis: int, keepdims: bool, select_last_index: bool) -> np.ndarray:
        if x.ndim == 0:  # a scalar is its own extremum, at index 0
            return np.zeros((), np.int64)
        axis %= x.ndim
        if select_last_index:  # ties go to the last index: search the reversed axis
            idx = x.shape[axis] - 1 - pick(np.flip(x, axis), axis=axis)
        else:
            idx = pick(x, axis=axis)
        idx = idx.astype(np.int64)
        return np.expand_dims(idx, axis) if keepdims else idx
    return reference


for _name, _pick, _what in (("argmax", np.argmax, "max"), ("argmin", np.argmin, "min")):
    def_op(_name, ["x"], _arg_rule(_name), _in_f32(_arg_reference(_pick)), attrs=_ARG_ATTRS,
           traits=("pure", "reduction"),
           doc=f"i64 index of the {_what} along axis (first on ties unless select_last_index)")

# --- softmax / log_softmax -----------------------------------------------------------------------


def _axis_rule(name: str, kinds: Sequence[str]) -> Callable[..., TensorType]:
    """Type rule of an op that works along one axis and keeps x's type."""
    def rule(x: TensorType, axis: int, **_: object) -> TensorType:
        require_dtype(name, x, kinds, "operand x")
        check_axis(axis, x.rank, f"{name} axis")
        return x
    return rule


def _along_axis(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Run fn(x, axis, ...) with axis >= 0; a rank-0 x is treated as a 1-element vector."""
    def wrapped(x: np.ndarray, axis: int, **kw: object) -> np.ndarray:
        if x.ndim == 0:
            return fn(x.reshape(1), 0, **kw).reshape(())
        return fn(x, axis % x.ndim, **kw)
    wrapped.__name__ = getattr(fn, "__name__", "ref")
    return wrapped


def _softmax(x: np.ndarray, axis: int, log: bool = False) -> np.ndarray:
    shifted = x - _stable_max(x, axis)  # exp cannot overflow after subtracting the max
    e = np.exp(shifted)
    s = np.sum(e, axis=axis, keepdims=True)
    return shifted - np.log(s) if log else e / s


def_op("softmax", ["x"], _axis_rule("softmax", FLOAT), _in_f32(_along_axis(_softmax)),
       attrs={"axis": attr("int", -1)}, traits=("pure",),
       doc="exp(x) / sum(exp(x)) along axis, computed with the max subtracted")
def_op("log_softmax", ["x"], _axis_rule("log_softmax", FLOAT),
       _in_f32(_along_axis(lambda x, axis: _softmax(x, axis, log=True))),
       attrs={"axis": attr("int", -1)}, traits=("pure",),
       doc="x - logsumexp(x) along axis, computed with the max subtracted")

# --- cumsum --------------------------------------------------------------------------------------


def _cumsum(x: np.ndarray, axis: int, exclusive: bool, reverse: bool) -> np.ndarray:
    if reverse:
        x = np.flip(x, axis)
    out = np.cumsum(x, axis=axis, dtype=x.dtype)
    if exclusive:  # shift by one along axis, 0 first (a shift, not out - x: exact for floats)
        shifted = np.zeros_like(out)
        dst = [slice(None)] * x.ndim
        src = [slice(None)] * x.ndim
        dst[axis], src[axis] = slice(1, None), slice(None, -1)
        shifted[tuple(dst)] = out[tuple(src)]
        out = shifted
    return np.flip(out, axis) if reverse else out


def_op("cumsum", ["x"], _axis_rule("cumsum", NUMERIC), _in_f32(_along_axis(_cumsum)),
       attrs={"axis": attr("int"), "exclusive": attr("bool", False),
              "reverse": attr("bool", False)},
       traits=("pure",),
       doc="running sum along axis (ONNX CumSum); exclusive omits x itself, reverse runs backward")
