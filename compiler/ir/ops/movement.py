"""Data-movement ops: reshape, transpose, broadcast, concat/split, slice, gathers and scatters, pad,
tile, squeeze/unsqueeze/flatten, depth/space rearrangements, reverse, full, range, shape_of,
one_hot, topk and trilu. ONNX semantics unless a doc string says otherwise.

Type rules keep a symbolic dim where the result dim is that same symbol and raise a
TypeInferenceError where a result dim would have to be an expression of symbols.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from .. import dtypes as dt
from ..registry import attr, def_op
from ..types import (Dim, SymProduct, TensorType, TypeInferenceError, broadcast_shapes,
                     format_dim, normalize_axes, normalize_axis)
from ._common import require_dtype, same_dtype

MOVE = ("pure", "injective")
NUMERIC = ("int", "uint", "float")
INDEX_DTYPES = (dt.i32, dt.i64)
REDUCTIONS = ("none", "add", "mul", "max", "min")
# A slice end at least this large means "to the end": exporters write INT64_MAX (or INT32_MAX).
HUGE = 2**31 - 1
_LOW_PRECISION = (np.dtype(np.float16), dt.bf16.np_dtype)


def _fmt(shape: Sequence[Dim]) -> str:
    return "[" + ",".join(format_dim(d) for d in shape) + "]"


def _static(op: str, what: str, d: Dim) -> int:
    """d when it is static; otherwise say the op needs a static dim there."""
    if isinstance(d, str):
        raise TypeInferenceError(f"{op} needs a static {what}, got ?{d}")
    return d


def _scale(op: str, what: str, d: Dim, k: int) -> Dim:
    """d * k as a dim: a symbol survives only k == 1 (and k == 0 gives 0)."""
    if k == 1 or isinstance(d, int):
        return d * k if isinstance(d, int) else d
    if k == 0:
        return 0
    raise TypeInferenceError(f"{op} needs a static {what}: ?{d}*{k} is not a single dim")


def _same_dim(op: str, what: str, a: Dim, b: Dim) -> Dim:
    if a != b:
        raise TypeInferenceError(f"{op} {what} must match: {format_dim(a)} vs {format_dim(b)}")
    return a


def _index_operand(op: str, t: TensorType, what: str = "indices") -> None:
    if t.dtype not in INDEX_DTYPES:
        raise TypeInferenceError(f"{op} {what} must be i32 or i64, got {t.dtype}")


def _check_value(op: str, key: str, value: float, dtype: dt.DType) -> None:
    """A float attribute used as a fill value must be exact in an integer or bool dtype."""
    if dtype.is_float or dtype.is_narrow_float:
        return
    if dtype.is_bool:
        if value not in (0.0, 1.0):
            raise TypeInferenceError(f"{op} attribute '{key}' = {value} is not 0 or 1 for bool")
        return
    lo, hi = dtype.int_range()
    if not math.isfinite(value) or value != int(value) or not lo <= value <= hi:
        raise TypeInferenceError(f"{op} attribute '{key}' = {value} is not a {dtype} integer")


def _wrap(indices: np.ndarray, size: "int | np.ndarray", check: bool = True) -> np.ndarray:
    """Negative indices count from the end (ONNX). Out-of-range indices are an error (NumPy
    would wrap a second time or read past the end)."""
    idx = indices.astype(np.int64)
    idx = np.where(idx < 0, idx + size, idx)
    bad = (idx < 0) | (idx >= size)
    if check and bad.any():
        pos = tuple(np.argwhere(bad)[0])
        raise IndexError(f"index {indices[pos]} is out of range for a dim of size "
                         f"{np.broadcast_to(size, idx.shape)[pos]}")
    return idx


def _widen(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) if x.dtype in _LOW_PRECISION else x


# --- reshape, transpose, broadcast_to ------------------------------------------------------------


def _surely_differ(a: SymProduct, b: SymProduct) -> bool:
    """Whether two element counts differ for every value of their symbols (as far as we can
    tell: same symbols with different coefficients, or zero against a non-zero static count)."""
    if a.coef == 0 and b.coef == 0:
        return False
    if +a.syms == +b.syms:
        return a.coef != b.coef
    return (a.coef == 0 and not b.syms) or (b.coef == 0 and not a.syms)


def _reshape_rule(x: TensorType, shape: tuple[Dim, ...], allowzero: bool) -> TensorType:
    out: list[Optional[Dim]] = []
    for i, d in enumerate(shape):
        if isinstance(d, str):
            out.append(d)
        elif d == -1:
            if None in out:
                raise TypeInferenceError(f"reshape attribute 'shape' {_fmt(shape)} has two -1s")
            out.append(None)
        elif d < -1:
            raise TypeInferenceError(f"reshape attribute 'shape' has negative dim {d}")
        elif d == 0 and not allowzero:
            if i >= x.rank:
                raise TypeInferenceError(f"reshape shape {_fmt(shape)} copies dim {i} (0) of "
                                         f"rank-{x.rank} input {_fmt(x.shape)}")
            out.append(x.shape[i])
        else:
            out.append(d)
    if allowzero and 0 in shape and -1 in shape:
        raise TypeInferenceError(f"reshape shape {_fmt(shape)}: allowzero forbids 0 with -1")
    total = SymProduct(x.shape)
    known = SymProduct([d for d in out if d is not None])
    if None in out:
        q = total.divide(known) if known.coef else None
        dim = 0 if total.coef == 0 and known.coef else q.as_dim() if q is not None else None
        if dim is None:
            raise TypeInferenceError(f"reshape cannot infer the -1 in {_fmt(shape)} from input "
                                     f"shape {_fmt(x.shape)}: {total} / {known} is not one dim")
        out[out.index(None)] = dim
    elif _surely_differ(total, known):
        raise TypeInferenceError(f"reshape of {_fmt(x.shape)} ({total} elements) to "
                                 f"{_fmt(shape)} ({known} elements) changes the element count")
    return x.with_shape(out)  # type: ignore[arg-type]


def_op("reshape", ["x"], _reshape_rule,
       lambda x, shape, allowzero, out_shapes: np.reshape(x, out_shapes[0]),
       attrs={"shape": attr("dims"), "allowzero": attr("bool", False)}, traits=MOVE,
       needs_out_shapes=True,
       doc="same elements in a new shape; 0 copies an input dim (unless allowzero), -1 is inferred")


def _perm(x: TensorType, perm: tuple[int, ...]) -> list[int]:
    p = list(perm) if perm else list(range(x.rank))[::-1]
    if sorted(p) != list(range(x.rank)):
        raise TypeInferenceError(f"transpose attribute 'perm' {list(perm)} is not a permutation "
                                 f"of the {x.rank} axes of {x}")
    return p


def_op("transpose", ["x"], lambda x, perm: x.with_shape(x.shape[i] for i in _perm(x, perm)),
       lambda x, perm: np.transpose(x, perm or None), attrs={"perm": attr("ints", ())},
       traits=MOVE, doc="permute axes: result axis i is input axis perm[i]; empty perm reverses")


def _broadcast_to_rule(x: TensorType, shape: tuple[Dim, ...]) -> TensorType:
    if any(isinstance(d, int) and d < 0 for d in shape):
        raise TypeInferenceError(f"broadcast_to attribute 'shape' {_fmt(shape)} has a negative dim")
    try:
        return x.with_shape(broadcast_shapes(x.shape, shape))
    except TypeInferenceError as e:
        raise TypeInferenceError(f"broadcast_to: {e}") from None


def_op("broadcast_to", ["x"], _broadcast_to_rule,
       lambda x, shape, out_shapes: np.array(np.broadcast_to(x, out_shapes[0])),
       attrs={"shape": attr("dims")}, traits=MOVE, needs_out_shapes=True,
       doc="ONNX Expand: x broadcast against shape (shape may hold 1s where x is larger)")

# --- concat, split -------------------------------------------------------------------------------


def _concat_rule(*xs: TensorType, axis: int) -> TensorType:
    if not xs:
        raise TypeInferenceError("concat needs at least one input")
    d = same_dtype("concat", *xs)
    r = xs[0].rank
    if any(t.rank != r for t in xs) or r == 0:
        raise TypeInferenceError(f"concat inputs must share a rank >= 1, got "
                                 f"{', '.join(str(t) for t in xs)}")
    ax = normalize_axis(axis, r, "concat axis")
    out = list(xs[0].shape)
    for t in xs[1:]:
        for i in range(r):
            if i != ax:
                _same_dim("concat", f"inputs' dim {i} ({xs[0]} and {t})", out[i], t.shape[i])
    parts = [t.shape[ax] for t in xs]
    static = sum(p for p in parts if isinstance(p, int))
    syms = [p for p in parts if isinstance(p, str)]
    if syms and (len(syms) > 1 or static):
        raise TypeInferenceError(f"concat needs static sizes along axis {axis} to add them, got "
                                 + " + ".join(format_dim(p) for p in parts))
    out[ax] = syms[0] if syms else static
    return TensorType(tuple(out), d)


def_op("concat", ["inputs*"], _concat_rule,
       lambda *xs, axis: np.concatenate(xs, axis=axis), attrs={"axis": attr("int")},
       traits=MOVE, doc="join the inputs along axis")


def _split_rule(x: TensorType, axis: int, sizes: tuple[int, ...]) -> list[TensorType]:
    if x.rank == 0:
        raise TypeInferenceError(f"split needs rank >= 1, got {x}")
    ax = normalize_axis(axis, x.rank, "split axis")
    d = _static("split", f"dim along axis {axis}", x.shape[ax])
    if not sizes or min(sizes) < 0 or sum(sizes) != d:
        raise TypeInferenceError(f"split attribute 'sizes' {list(sizes)} must be non-negative and "
                                 f"add up to {d} (axis {axis} of {x})")
    return [x.with_shape(x.shape[:ax] + (s,) + x.shape[ax + 1:]) for s in sizes]


def_op("split", ["x"], _split_rule,
       lambda x, axis, sizes: tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis)),
       attrs={"axis": attr("int", 0), "sizes": attr("ints")}, traits=MOVE,
       doc="cut x along axis into pieces of the given sizes (one result each)")

# --- slice ---------------------------------------------------------------------------------------


def _slice_range(d: int, start: int, end: int, step: int) -> tuple[int, int, int]:
    """ONNX Slice on one axis of size d: clamped (start, end) and the result length."""
    start, end = start + d if start < 0 else start, end + d if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), d), min(max(end, 0), d)
    else:
        start, end = min(max(start, 0), d - 1), min(max(end, -1), d - 1)
    return start, end, max(0, -((start - end) // step))


def _slice_args(rank: int, starts, ends, axes, steps) -> list[tuple[int, int, int, int]]:
    """(axis, start, end, step) per sliced axis, validated."""
    n = len(starts)
    axes = axes or tuple(range(n))
    steps = steps or (1,) * n
    if not len(ends) == len(axes) == len(steps) == n:
        raise TypeInferenceError(f"slice attributes starts {list(starts)}, ends {list(ends)}, "
                                 f"axes {list(axes)} and steps {list(steps)} differ in length")
    if 0 in steps:
        raise TypeInferenceError(f"slice attribute 'steps' {list(steps)} has a 0 step")
    ax = normalize_axes(axes, rank, "slice axes")
    return list(zip(ax, starts, ends, steps))


def _slice_rule(x: TensorType, starts, ends, axes, steps) -> TensorType:
    if x.rank == 0:
        raise TypeInferenceError(f"slice needs an operand of rank >= 1, got {x}")
    out = list(x.shape)
    for a, s, e, st in _slice_args(x.rank, starts, ends, axes, steps):
        d = x.shape[a]
        if isinstance(d, str):
            full = st == 1 and (s == 0 or s <= -HUGE) and e >= HUGE
            reverse = st == -1 and (s == -1 or s >= HUGE) and e <= -HUGE
            if not (full or reverse):
                raise TypeInferenceError(f"slice needs a static dim on axis {a} of {x} (only a "
                                         f"full slice keeps ?{d}); got {s}:{e}:{st}")
            continue
        out[a] = _slice_range(d, s, e, st)[2]
    return x.with_shape(out)


def _slice(x: np.ndarray, starts, ends, axes, steps) -> np.ndarray:
    index = [slice(None)] * x.ndim
    for a, s, e, st in _slice_args(x.ndim, starts, ends, axes, steps):
        s, e, _ = _slice_range(x.shape[a], s, e, st)
        index[a] = slice(s, None if e < 0 else e, st)
    return x[tuple(index)]


def_op("slice", ["x"], _slice_rule, _slice,
       attrs={"starts": attr("ints"), "ends": attr("ints"), "axes": attr("ints", ()),
              "steps": attr("ints", ())}, traits=MOVE,
       doc="ONNX Slice; empty axes means 0..len(starts)-1, empty steps means all 1")

# --- gathers and scatters ------------------------------------------------------------------------


def _gather_rule(x: TensorType, indices: TensorType, axis: int) -> TensorType:
    _index_operand("gather", indices)
    if x.rank == 0:
        raise TypeInferenceError(f"gather needs rank >= 1 data, got {x}")
    ax = normalize_axis(axis, x.rank, "gather axis")
    return x.with_shape(x.shape[:ax] + indices.shape + x.shape[ax + 1:])


def_op("gather", ["x", "indices"], _gather_rule,
       lambda x, indices, axis: np.take(x, _wrap(indices, x.shape[axis]), axis=axis),
       attrs={"axis": attr("int", 0)}, traits=MOVE,
       doc="ONNX Gather: pick slices of x along axis; negative indices wrap")


def _elements_axis(op: str, x: TensorType, indices: TensorType, axis: int) -> int:
    """Checks shared by gather_elements and scatter_elements; returns the normalized axis."""
    _index_operand(op, indices)
    if x.rank == 0 or indices.rank != x.rank:
        raise TypeInferenceError(f"{op} indices {indices} must have the rank (>= 1) of data {x}")
    ax = normalize_axis(axis, x.rank, f"{op} axis")
    for i, (a, b) in enumerate(zip(indices.shape, x.shape)):
        if i != ax and isinstance(a, int) and isinstance(b, int) and a > b:
            raise TypeInferenceError(f"{op} indices {indices} are larger than data {x} on dim {i}")
    return ax


def _elements_index(indices: np.ndarray, size: int, axis: int) -> tuple[np.ndarray, ...]:
    """Full index arrays for x: the position itself on every axis but `axis`."""
    grid = list(np.indices(indices.shape, sparse=True))
    grid[axis] = _wrap(indices, size)
    return tuple(grid)


def _gather_elements_rule(x: TensorType, indices: TensorType, axis: int) -> TensorType:
    _elements_axis("gather_elements", x, indices, axis)
    return x.with_shape(indices.shape)


def_op("gather_elements", ["x", "indices"], _gather_elements_rule,
       lambda x, indices, axis: x[_elements_index(indices, x.shape[axis], axis)],
       attrs={"axis": attr("int", 0)}, traits=MOVE,
       doc="ONNX GatherElements: out[i..] = x[i.. with indices[i..] on axis]")


def _gather_nd_rule(x: TensorType, indices: TensorType, batch_dims: int) -> TensorType:
    _index_operand("gather_nd", indices)
    b = batch_dims
    if not 0 <= b < min(x.rank, indices.rank):
        raise TypeInferenceError(f"gather_nd attribute 'batch_dims' {b} must be in [0, "
                                 f"min(rank) = {min(x.rank, indices.rank)}) for {x} and {indices}")
    m = _static("gather_nd", "last indices dim", indices.shape[-1])
    if not 1 <= m <= x.rank - b:
        raise TypeInferenceError(f"gather_nd index depth {m} (last dim of {indices}) must be in "
                                 f"[1, {x.rank - b}] for data {x} with batch_dims {b}")
    for i in range(b):
        _same_dim("gather_nd", f"batch dim {i}", x.shape[i], indices.shape[i])
    return x.with_shape(indices.shape[:-1] + x.shape[b + m:])


def _gather_nd(x: np.ndarray, indices: np.ndarray, batch_dims: int) -> np.ndarray:
    b, m = batch_dims, indices.shape[-1]
    nb, n = math.prod(x.shape[:b]), math.prod(indices.shape[b:-1])
    xr = x.reshape((nb,) + x.shape[b:])
    idx = _wrap(indices.reshape(nb, n, m), np.array(x.shape[b:b + m], np.int64))
    g = xr[(np.arange(nb)[:, None],) + tuple(idx[..., j] for j in range(m))]
    return g.reshape(indices.shape[:-1] + x.shape[b + m:])


def_op("gather_nd", ["x", "indices"], _gather_nd_rule, _gather_nd,
       attrs={"batch_dims": attr("int", 0)}, traits=MOVE,
       doc="ONNX GatherND: the last indices dim indexes the leading (non-batch) dims of x")


def _scatter_into(x: np.ndarray, index: tuple[np.ndarray, ...], updates: np.ndarray,
                  reduction: str) -> np.ndarray:
    """x with updates written at index; duplicates combine by reduction ("none": last wins).

    f16/bf16 reductions run in f32 and round once."""
    if reduction == "none":
        out = x.copy()
        out[index] = updates
        return out
    out = _widen(x).copy()
    ufunc = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}[reduction]
    ufunc.at(out, index, _widen(updates))
    return out.astype(x.dtype)


def _scatter_elements_rule(x: TensorType, indices: TensorType, updates: TensorType, axis: int,
                           reduction: str) -> TensorType:
    _elements_axis("scatter_elements", x, indices, axis)
    same_dtype("scatter_elements", x, updates)
    if updates.shape != indices.shape:
        raise TypeInferenceError(f"scatter_elements updates {updates} must have the shape of "
                                 f"indices {indices}")
    return x


def_op("scatter_elements", ["x", "indices", "updates"], _scatter_elements_rule,
       lambda x, indices, updates, axis, reduction: _scatter_into(
           x, _elements_index(indices, x.shape[axis], axis), updates, reduction),
       attrs={"axis": attr("int", 0), "reduction": attr("str", "none", choices=REDUCTIONS)},
       traits=MOVE, doc="ONNX ScatterElements: x with updates written where gather_elements reads")


def _scatter_nd_rule(x: TensorType, indices: TensorType, updates: TensorType,
                     reduction: str) -> TensorType:
    _index_operand("scatter_nd", indices)
    same_dtype("scatter_nd", x, updates)
    if indices.rank == 0:
        raise TypeInferenceError(f"scatter_nd indices must have rank >= 1, got {indices}")
    k = _static("scatter_nd", "last indices dim", indices.shape[-1])
    if not 1 <= k <= x.rank:
        raise TypeInferenceError(f"scatter_nd index depth {k} (last dim of {indices}) must be in "
                                 f"[1, {x.rank}] for data {x}")
    want = indices.shape[:-1] + x.shape[k:]
    if updates.shape != want:
        raise TypeInferenceError(f"scatter_nd updates {updates} must have shape {_fmt(want)}")
    return x


def _scatter_nd(x: np.ndarray, indices: np.ndarray, updates: np.ndarray,
                reduction: str) -> np.ndarray:
    k = indices.shape[-1]
    n = math.prod(indices.shape[:-1])
    idx = _wrap(indices.reshape(n, k), np.array(x.shape[:k], np.int64))
    upd = updates.reshape((n,) + x.shape[k:])
    return _scatter_into(x, tuple(idx[:, j] for j in range(k)), upd, reduction)


def_op("scatter_nd", ["x", "indices", "updates"], _scatter_nd_rule, _scatter_nd,
       attrs={"reduction": attr("str", "none", choices=REDUCTIONS)}, traits=MOVE,
       doc="ONNX ScatterND: x with update slices written at the index tuples in indices")

# --- pad, tile -----------------------------------------------------------------------------------


def _pad_rule(x: TensorType, pads: tuple[int, ...], mode: str, value: float) -> TensorType:
    r = x.rank
    if len(pads) != 2 * r:
        raise TypeInferenceError(f"pad attribute 'pads' {list(pads)} must have 2*rank = {2 * r} "
                                 f"entries for {x}")
    if mode == "constant":
        _check_value("pad", "value", value, x.dtype)
    out = list(x.shape)
    for i, d in enumerate(x.shape):
        b, e = pads[i], pads[i + r]
        if b == e == 0:
            continue
        d = _static("pad", f"dim {i} to pad it by {b}, {e}", d)
        kept = d + min(b, 0) + min(e, 0)  # negative pads crop first
        most = max(b, e, 0)
        if kept < 0:
            raise TypeInferenceError(f"pad crops {-min(b, 0) - min(e, 0)} from dim {i} of size {d}")
        if (mode == "reflect" and most > kept - 1 and most) or (mode == "wrap" and most > kept) \
                or (mode == "edge" and most and kept == 0):
            raise TypeInferenceError(f"pad mode {mode!r} cannot pad dim {i} of size {kept} by "
                                     f"{b}, {e}")
        out[i] = kept + max(b, 0) + max(e, 0)
    return x.with_shape(out)


def _pad(x: np.ndarray, pads: tuple[int, ...], mode: str, value: float) -> np.ndarray:
    r = x.ndim
    crop = tuple(slice(-min(pads[i], 0), x.shape[i] + min(pads[i + r], 0)) for i in range(r))
    width = [(max(pads[i], 0), max(pads[i + r], 0)) for i in range(r)]
    if r == 0:  # np.pad cannot take a scalar
        return x.copy()
    if mode == "constant":
        return np.pad(x[crop], width, constant_values=np.asarray(value).astype(x.dtype))
    return np.pad(x[crop], width, mode=mode)


def_op("pad", ["x"], _pad_rule, _pad,
       attrs={"pads": attr("ints"),
              "mode": attr("str", "constant", choices=("constant", "reflect", "edge", "wrap")),
              "value": attr("float", 0.0)}, traits=MOVE,
       doc="pad (negative: crop, applied first) each axis by pads [begin_0.., end_0..]")


def _tile_rule(x: TensorType, repeats: tuple[int, ...]) -> TensorType:
    if len(repeats) != x.rank or any(r < 0 for r in repeats):
        raise TypeInferenceError(f"tile attribute 'repeats' {list(repeats)} must hold one "
                                 f"non-negative count per axis of {x}")
    return x.with_shape(_scale("tile", f"dim {i}", d, k)
                        for i, (d, k) in enumerate(zip(x.shape, repeats)))


def_op("tile", ["x"], _tile_rule, lambda x, repeats: np.tile(x, repeats),
       attrs={"repeats": attr("ints")}, traits=MOVE, doc="repeat x repeats[i] times along axis i")

# --- squeeze, unsqueeze, flatten, identity -------------------------------------------------------


def _squeeze_rule(x: TensorType, axes: tuple[int, ...]) -> TensorType:
    if not axes:
        return x.with_shape(d for d in x.shape if d != 1)
    ax = normalize_axes(axes, x.rank, "squeeze axes")
    for a in ax:
        if x.shape[a] != 1:
            raise TypeInferenceError(f"squeeze axis {a} of {x} has size "
                                     f"{format_dim(x.shape[a])}, not 1")
    return x.with_shape(d for i, d in enumerate(x.shape) if i not in ax)


def_op("squeeze", ["x"], _squeeze_rule,
       lambda x, axes, out_shapes: x.reshape(out_shapes[0]), attrs={"axes": attr("ints", ())},
       traits=MOVE, needs_out_shapes=True,
       doc="drop size-1 axes; empty axes drops every static size-1 dim")


def _unsqueeze_shape(shape: Sequence[Dim], axes: Sequence[int]) -> tuple[Dim, ...]:
    r = len(shape) + len(axes)
    ax = set(normalize_axes(axes, r, "unsqueeze axes"))
    rest = iter(shape)
    return tuple(1 if i in ax else next(rest) for i in range(r))


def_op("unsqueeze", ["x"], lambda x, axes: x.with_shape(_unsqueeze_shape(x.shape, axes)),
       lambda x, axes: x.reshape(_unsqueeze_shape(x.shape, axes)), attrs={"axes": attr("ints")},
       traits=MOVE, doc="insert size-1 axes at the given positions of the result")


def _flatten_split(rank: int, axis: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a <= rank:
        raise TypeInferenceError(f"flatten axis {axis} is out of range [-{rank}, {rank}]")
    return a


def _flatten_rule(x: TensorType, axis: int) -> TensorType:
    a = _flatten_split(x.rank, axis)
    out = []
    for part in (x.shape[:a], x.shape[a:]):
        d = SymProduct(part).as_dim()
        if d is None:
            raise TypeInferenceError(f"flatten of {x} at axis {axis} needs static dims: "
                                     f"{SymProduct(part)} is not one dim")
        out.append(d)
    return x.with_shape(out)


def _flatten(x: np.ndarray, axis: int) -> np.ndarray:
    a = _flatten_split(x.ndim, axis)
    return x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))


def_op("flatten", ["x"], _flatten_rule, _flatten, attrs={"axis": attr("int", 1)}, traits=MOVE,
       doc="ONNX Flatten: 2-D [prod(dims before axis), prod(dims from axis)]")

def_op("identity", ["x"], lambda x: x, lambda x: x, traits=MOVE, doc="x itself")

# --- depth_to_space, space_to_depth, reverse -----------------------------------------------------


def _check_blocks(op: str, x: TensorType, blocksize: int) -> None:
    if x.rank != 4:
        raise TypeInferenceError(f"{op} needs a 4-D [N,C,H,W] input, got {x}")
    if blocksize < 1:
        raise TypeInferenceError(f"{op} attribute 'blocksize' must be >= 1, got {blocksize}")


def _depth_to_space_rule(x: TensorType, blocksize: int, mode: str) -> TensorType:
    _check_blocks("depth_to_space", x, blocksize)
    n, c, h, w = x.shape
    b2 = blocksize * blocksize
    if b2 != 1:
        c = _static("depth_to_space", "channel dim", c)
        if c % b2:
            raise TypeInferenceError(f"depth_to_space channels {c} of {x} are not divisible by "
                                     f"blocksize**2 = {b2}")
        c //= b2
    return x.with_shape((n, c, _scale("depth_to_space", "height", h, blocksize),
                         _scale("depth_to_space", "width", w, blocksize)))


def _depth_to_space(x: np.ndarray, blocksize: int, mode: str) -> np.ndarray:
    n, c, h, w = x.shape
    b = blocksize
    if mode == "DCR":  # channel = (bi*b + bj)*C' + c'
        y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:  # CRD: channel = c'*b*b + bi*b + bj
        y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


def_op("depth_to_space", ["x"], _depth_to_space_rule, _depth_to_space,
       attrs={"blocksize": attr("int"), "mode": attr("str", "DCR", choices=("DCR", "CRD"))},
       traits=MOVE, doc="move channel blocks into b x b spatial blocks (NCHW; mode DCR or CRD)")


def _space_to_depth_rule(x: TensorType, blocksize: int) -> TensorType:
    _check_blocks("space_to_depth", x, blocksize)
    n, c, h, w = x.shape
    b = blocksize
    sp = []
    for what, d in (("height", h), ("width", w)):
        if b != 1:
            d = _static("space_to_depth", what, d)
            if d % b:
                raise TypeInferenceError(f"space_to_depth {what} {d} of {x} is not divisible by "
                                         f"blocksize {b}")
            d //= b
        sp.append(d)
    return x.with_shape((n, _scale("space_to_depth", "channel dim", c, b * b), *sp))


def _space_to_depth(x: np.ndarray, blocksize: int) -> np.ndarray:
    n, c, h, w = x.shape
    b = blocksize  # output channel = (bi*b + bj)*C + c (the DCR order)
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


def_op("space_to_depth", ["x"], _space_to_depth_rule, _space_to_depth,
       attrs={"blocksize": attr("int")}, traits=MOVE,
       doc="move b x b spatial blocks into channels (NCHW; inverse of depth_to_space DCR)")


def _reverse_rule(x: TensorType, axes: tuple[int, ...]) -> TensorType:
    normalize_axes(axes, x.rank, "reverse axes")
    return x


def_op("reverse", ["x"], _reverse_rule, lambda x, axes: np.flip(x, axis=tuple(axes)),
       attrs={"axes": attr("ints")}, traits=MOVE, doc="flip x along the given axes")

# --- full, range, shape_of, one_hot --------------------------------------------------------------


def _full_rule(shape: tuple[Dim, ...], value: float, dtype: dt.DType) -> TensorType:
    if any(isinstance(d, int) and d < 0 for d in shape):
        raise TypeInferenceError(f"full attribute 'shape' {_fmt(shape)} has a negative dim")
    _check_value("full", "value", value, dtype)
    return TensorType(shape, dtype)


def_op("full", [], _full_rule,
       lambda value, dtype, shape, out_shapes: np.full(out_shapes[0], value, dtype.np_dtype),
       attrs={"shape": attr("dims"), "value": attr("float"), "dtype": attr("dtype", dt.f32)},
       needs_out_shapes=True, doc="a tensor of the given shape filled with value")


def _range_length(start: float, limit: float, delta: float, dtype: dt.DType) -> int:
    """ONNX Range: max(ceil((limit - start) / delta), 0); exact for integer dtypes."""
    if dtype.is_bool:
        raise TypeInferenceError("range dtype must be numeric, got bool")
    if delta == 0 or not all(math.isfinite(v) for v in (start, limit, delta)):
        raise TypeInferenceError(f"range needs finite start/limit and a non-zero delta, got "
                                 f"start={start}, limit={limit}, delta={delta}")
    if dtype.is_float:
        return max(math.ceil((limit - start) / delta), 0)
    for key, v in (("start", start), ("limit", limit), ("delta", delta)):
        _check_value("range", key, v, dtype)  # values lie in [start, limit): no overflow then
    return max(-((int(start) - int(limit)) // int(delta)), 0)


def _range(start: float, limit: float, delta: float, dtype: dt.DType) -> np.ndarray:
    n = _range_length(start, limit, delta, dtype)
    if dtype.is_float:  # computed in f64, rounded once
        return (start + np.arange(n, dtype=np.float64) * delta).astype(dtype.np_dtype)
    return (int(start) + np.arange(n, dtype=np.int64) * int(delta)).astype(dtype.np_dtype)


def_op("range", [], lambda start, limit, delta, dtype: TensorType(
           (_range_length(start, limit, delta, dtype),), dtype), _range,
       attrs={"start": attr("float"), "limit": attr("float"), "delta": attr("float"),
              "dtype": attr("dtype", dt.i64)},
       doc="start, start+delta, ... up to (not including) limit")


def _shape_of_rule(x: TensorType, start: int, end: Optional[int]) -> TensorType:
    return TensorType((len(range(x.rank)[start:end]),), dt.i64)  # ONNX Shape clamps like Python


def_op("shape_of", ["x"], _shape_of_rule,
       lambda x, start, end: np.asarray(x.shape, dtype=np.int64)[start:end],
       attrs={"start": attr("int", 0), "end": attr("int", None)},
       doc="x's dims start..end as i64 (ONNX Shape; negative and out-of-range bounds clamp)")


def _one_hot_axis(rank: int, axis: int) -> int:
    a = axis + rank + 1 if axis < 0 else axis
    if not 0 <= a <= rank:
        raise TypeInferenceError(f"one_hot axis {axis} is out of range [-{rank + 1}, {rank}]")
    return a


def _one_hot_rule(indices: TensorType, depth: int, axis: int, on_value: float,
                  off_value: float, dtype: dt.DType) -> TensorType:
    require_dtype("one_hot", indices, ("int", "uint"), "indices")
    if depth < 1:
        raise TypeInferenceError(f"one_hot attribute 'depth' must be >= 1, got {depth}")
    _check_value("one_hot", "on_value", on_value, dtype)
    _check_value("one_hot", "off_value", off_value, dtype)
    a = _one_hot_axis(indices.rank, axis)
    return TensorType(indices.shape[:a] + (depth,) + indices.shape[a:], dtype)


def _one_hot(indices: np.ndarray, depth: int, axis: int, on_value: float, off_value: float,
             dtype: dt.DType) -> np.ndarray:
    a = _one_hot_axis(indices.ndim, axis)
    classes = np.arange(depth).reshape([depth if i == a else 1 for i in range(indices.ndim + 1)])
    hot = np.expand_dims(_wrap(indices, depth, check=False), a) == classes  # out of range: all off
    return np.where(hot, np.asarray(on_value).astype(dtype.np_dtype),
                    np.asarray(off_value).astype(dtype.np_dtype))


def_op("one_hot", ["indices"], _one_hot_rule, _one_hot,
       attrs={"depth": attr("int"), "axis": attr("int", -1), "on_value": attr("float", 1.0),
              "off_value": attr("float", 0.0), "dtype": attr("dtype", dt.f32)}, traits=MOVE,
       doc="on_value where the new axis equals the index (negatives wrap), else off_value")

# --- topk, trilu ---------------------------------------------------------------------------------


def _topk_rule(x: TensorType, k: int, axis: int, largest: bool,
               sorted: bool) -> list[TensorType]:
    require_dtype("topk", x, NUMERIC)
    if x.rank == 0:
        raise TypeInferenceError(f"topk needs rank >= 1, got {x}")
    ax = normalize_axis(axis, x.rank, "topk axis")
    d = x.shape[ax]
    if k < 0 or (isinstance(d, int) and k > d):
        raise TypeInferenceError(f"topk attribute 'k' = {k} must be in [0, {format_dim(d)}] "
                                 f"(axis {axis} of {x})")
    shape = x.shape[:ax] + (k,) + x.shape[ax + 1:]
    return [x.with_shape(shape), TensorType(shape, dt.i64)]


def _topk(x: np.ndarray, k: int, axis: int, largest: bool,
          sorted: bool) -> tuple[np.ndarray, np.ndarray]:
    xs = _widen(x)
    if largest:  # descending with ties by lower index: stable sort of the flipped axis, reversed
        flipped = np.argsort(np.flip(xs, axis), axis=axis, kind="stable")
        order = x.shape[axis] - 1 - np.flip(flipped, axis)
    else:
        order = np.argsort(xs, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)


def_op("topk", ["x"], _topk_rule, _topk,
       attrs={"k": attr("int"), "axis": attr("int", -1), "largest": attr("bool", True),
              "sorted": attr("bool", True)},
       doc="k largest (or smallest) along axis and their i64 indices; ties: lower index first "
           "(unsorted results come sorted too)")


def _trilu_rule(x: TensorType, upper: bool, k: int) -> TensorType:
    if x.rank < 2:
        raise TypeInferenceError(f"trilu needs rank >= 2, got {x}")
    return x


def_op("trilu", ["x"], _trilu_rule,
       lambda x, upper, k: np.triu(x, k) if upper else np.tril(x, k),
       attrs={"upper": attr("bool", True), "k": attr("int", 0)}, traits=MOVE,
       doc="keep the upper (or lower) triangle of the last two axes from diagonal k; zero the rest")
