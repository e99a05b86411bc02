"""Sizes and data movement: SymInt arithmetic, view/permute/expand/squeeze, cat/split,
slice/select/index/gather/scatter, tensor creation (full, arange, ...), pad, repeat, flip.

SymInts convert to dims: an int, a `Sym` naming a symbolic dim, or a `Sym(None)` for an
expression the IR cannot name (such as 2*batch); a view target may hold one of those (-1).
Slicing a static axis up to a symbolic length (`table[:seq]`, `arange(seq)`) becomes a gather
with the indices 0..seq-1, built as an exclusive cumsum of ones of shape [?seq].
"""
from __future__ import annotations

import math
import operator
from typing import Any, Optional, Sequence

import numpy as np
import torch

from compiler.ir import Value
from compiler.ir import dtypes as dt
from compiler.ir.types import Dim, broadcast_shapes

from .elementwise import promote
from .importer import INT64_MAX, NodeContext, Sym, converter, target_name

HUGE = 2**31 - 1  # a slice end at least this large means "to the end"
# Fills up to this many elements become constants (known, so masks built from them fold);
# larger ones stay `full` ops rather than megabytes of zeros in the weights.
FILL_CONST_LIMIT = 1 << 16


def axis_of(ctx: NodeContext, dim: int, rank: int) -> int:
    if not -max(rank, 1) <= dim < max(rank, 1):
        raise ctx.error(f"dim {dim} is out of range for rank {rank}")
    return dim % max(rank, 1)


def arange_sym(ctx: NodeContext, sym: str) -> Value:
    """0, 1, ..., ?sym - 1 as i64[?sym]."""
    ones = ctx.op("full", shape=[sym], value=1.0, dtype=dt.i64)
    return ctx.op("cumsum", ones, axis=0, exclusive=True)


def fill(ctx: NodeContext, dims: Sequence[Optional[Dim]], value: Any, dtype: dt.DType) -> Value:
    """A tensor of shape dims filled with value: a constant when static and small."""
    if any(d is None for d in dims):
        raise ctx.error(f"the shape {['?' if d is None else d for d in dims]} depends on a size "
                        "expression the IR cannot name")
    static = all(isinstance(d, int) for d in dims)
    if static and math.prod(dims) <= FILL_CONST_LIMIT:  # type: ignore[arg-type]
        with np.errstate(all="ignore"):
            return ctx.const(np.full(dims, value).astype(dtype.np_dtype))  # type: ignore
    return ctx.op("full", shape=list(dims), value=float(value), dtype=dtype)


# --- SymInt arithmetic ----------------------------------------------------------------------------

_SYM_FNS = {
    "operator.add": operator.add, "operator.sub": operator.sub, "operator.mul": operator.mul,
    "operator.floordiv": operator.floordiv, "operator.truediv": operator.truediv,
    "operator.mod": operator.mod, "operator.pow": operator.pow, "operator.neg": operator.neg,
    "operator.eq": operator.eq, "operator.ne": operator.ne, "operator.lt": operator.lt,
    "operator.le": operator.le, "operator.gt": operator.gt, "operator.ge": operator.ge,
    "operator.and_": operator.and_, "operator.or_": operator.or_, "operator.not_": operator.not_,
    "torch.sym_max": max, "torch.sym_min": min, "torch.sym_float": float, "torch.sym_int": int,
    "torch.sym_not": operator.not_, "torch.sym_sqrt": math.sqrt, "math.ceil": math.ceil,
    "math.floor": math.floor, "math.trunc": math.trunc, "builtins.round": round,
    "torch.sym_ite": lambda c, a, b: a if c else b,
}


@converter(*_SYM_FNS)
def sym_arith(ctx: NodeContext) -> Any:
    """Arithmetic on sizes: computed when every operand is known, kept when it is the identity
    on a symbol (s*1, s+0, s//1), else the symbol torch's own expression simplifies to."""
    name = target_name(ctx.node.target)
    args = [ctx.arg(i) for i in range(len(ctx.node.args))]
    if all(isinstance(a, (int, float, bool)) for a in args):
        return _SYM_FNS[name](*args)
    if len(args) == 2:
        a, b = args
        ident = {"operator.mul": 1, "operator.add": 0, "operator.sub": 0,
                 "operator.floordiv": 1}.get(name)
        if ident is not None and isinstance(a, Sym) and b == ident:
            return a
        if name in ("operator.mul", "operator.add") and isinstance(b, Sym) and a == ident:
            return b
    val = ctx.node.meta.get("val")
    if isinstance(val, (int, float, bool)):
        return val
    if isinstance(val, torch.SymInt):
        d = ctx.importer.dim_of(val)
        return d if isinstance(d, int) else Sym(d)
    return Sym(None)


@converter("aten.sym_size.int")
def sym_size(ctx: NodeContext) -> Any:
    x = ctx.tensor("self")
    d = x.shape[axis_of(ctx, ctx.arg("dim"), x.type.rank)]
    return d if isinstance(d, int) else Sym(d)


@converter("aten.sym_numel")
def sym_numel(ctx: NodeContext) -> Any:
    x = ctx.tensor("self")
    return x.type.num_elements() if x.type.is_static else Sym(None)


@converter("aten._assert_scalar", "aten._assert_tensor_metadata", "aten.sym_constrain_range",
           "aten.sym_constrain_range_for_size", "aten._assert_async")
def runtime_assert(ctx: NodeContext) -> None:
    """Checks torch.export inserts (the compiled module validates its inputs itself)."""
    return None


@converter("operator.getitem")
def getitem(ctx: NodeContext) -> Any:
    seq, i = ctx.arg(0), ctx.arg(1)
    if not isinstance(seq, list) or not isinstance(i, int):
        raise ctx.error(f"getitem of {type(seq).__name__} is not supported")
    if seq[i] is None:
        raise ctx.error(f"result {i} of '{ctx.node.args[0]}' is not produced by this importer")
    return seq[i]


# --- views ----------------------------------------------------------------------------------------


@converter("aten.view.default", "aten._unsafe_view", "aten.reshape", "aten.view_copy.default")
def view(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    dims = ctx.dims("size")
    meta = ctx.out_shape() or [None] * len(dims)
    dims = [m if (d is None or d == -1) and m is not None else d for d, m in zip(dims, meta)]
    if tuple(dims) == x.shape:
        return x
    unknown = [i for i, d in enumerate(dims) if d is None or d == -1]
    if len(unknown) > 1:
        raise ctx.error(f"the view target {['?' if d is None else d for d in dims]} has "
                        f"{len(unknown)} entries that are size expressions the IR cannot name "
                        f"(input {x.type}); at most one can be inferred")
    return ctx.op("reshape", x, shape=[-1 if d is None else d for d in dims])


@converter("aten.permute")
def permute(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    perm = [axis_of(ctx, d, x.type.rank) for d in ctx.ints("dims")]
    if perm == list(range(x.type.rank)):
        return x
    return ctx.op("transpose", x, perm=perm)


@converter("aten.transpose.int")
def transpose(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    r = x.type.rank
    if r < 2:
        return x
    a, b = axis_of(ctx, ctx.arg("dim0"), r), axis_of(ctx, ctx.arg("dim1"), r)
    if a == b:
        return x
    perm = list(range(r))
    perm[a], perm[b] = perm[b], perm[a]
    return ctx.op("transpose", x, perm=perm)


@converter("aten.t", "aten.numpy_T")
def t(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    if x.type.rank < 2:
        return x
    return ctx.op("transpose", x, perm=list(range(x.type.rank))[::-1])


@converter("aten.expand", "aten.expand_copy", "aten.broadcast_to")
def expand(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    dims = ctx.dims("size")
    lead = len(dims) - x.type.rank
    out: list[Dim] = []
    for i, d in enumerate(dims):
        j = i - lead
        if d == -1 or d is None:
            if j < 0:
                raise ctx.error(f"expand size {dims}: entry {i} is unknown for a new leading dim")
            d = x.shape[j]
        out.append(d)  # type: ignore[arg-type]
    if tuple(out) == x.shape:
        return x
    return ctx.op("broadcast_to", x, shape=out)


@converter("aten.expand_as")
def expand_as(ctx: NodeContext) -> Value:
    x, other = ctx.tensor("self"), ctx.tensor("other")
    return x if x.shape == other.shape else ctx.op("broadcast_to", x, shape=list(other.shape))


@converter("aten.unsqueeze")
def unsqueeze(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    r = x.type.rank + 1
    return ctx.op("unsqueeze", x, axes=[axis_of(ctx, ctx.arg("dim"), r)])


@converter("aten.squeeze")
def squeeze(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    r = x.type.rank
    if ctx.has("dim"):  # squeeze.dim takes an int, squeeze.dims a list (also named dim)
        axes = [axis_of(ctx, d, r) for d in ctx.ints("dim")]
    else:
        axes = list(range(r))
    axes = [a for a in axes if r and x.shape[a] == 1]  # torch leaves other dims alone
    return ctx.op("squeeze", x, axes=axes) if axes else x


@converter("aten.flatten.using_ints")
def flatten(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    shape = ctx.out_shape() or []
    if any(d is None for d in shape):
        raise ctx.error(f"flattening {x.type} gives a dim the IR cannot name")
    return ctx.op("reshape", x, shape=shape)


# --- joining and splitting ------------------------------------------------------------------------


@converter("aten.cat", "aten.concat", "aten.concatenate")
def cat(ctx: NodeContext) -> Value:
    xs = [v for v in ctx.arg("tensors") if not (v.type.rank == 1 and v.shape[0] == 0)]
    if not xs:
        return ctx.arg("tensors")[0]
    d = promote(*xs)
    xs = [ctx.cast(v, d) for v in xs]
    if len(xs) == 1:
        return xs[0]
    return ctx.op("concat", *xs, axis=axis_of(ctx, ctx.arg("dim", 0), xs[0].type.rank))


@converter("aten.stack")
def stack(ctx: NodeContext) -> Value:
    xs = list(ctx.arg("tensors"))
    d = promote(*xs)
    axis = axis_of(ctx, ctx.arg("dim", 0), xs[0].type.rank + 1)
    parts = [ctx.op("unsqueeze", ctx.cast(v, d), axes=[axis]) for v in xs]
    return parts[0] if len(parts) == 1 else ctx.op("concat", *parts, axis=axis)


def _split(ctx: NodeContext, x: Value, axis: int, sizes: list[int]) -> list[Value]:
    if len(sizes) == 1:
        return [x]
    out = ctx.op("split", x, axis=axis, sizes=sizes)
    return out if isinstance(out, list) else [out]


def _static_dim(ctx: NodeContext, x: Value, axis: int, what: str) -> int:
    d = x.shape[axis]
    if not isinstance(d, int):
        raise ctx.error(f"{what} needs a static dim {axis}, got {x.type}")
    return d


@converter("aten.split_with_sizes", "aten.split_with_sizes_copy")
def split_with_sizes(ctx: NodeContext) -> list[Value]:
    x = ctx.tensor("self")
    axis = axis_of(ctx, ctx.arg("dim", 0), x.type.rank)
    return _split(ctx, x, axis, ctx.ints("split_sizes"))


@converter("aten.split.Tensor", "aten.split_copy.Tensor")
def split(ctx: NodeContext) -> list[Value]:
    x = ctx.tensor("self")
    axis = axis_of(ctx, ctx.arg("dim", 0), x.type.rank)
    n = _static_dim(ctx, x, axis, "split")
    size = int(ctx.arg("split_size"))
    sizes = [size] * (n // size) + ([n % size] if n % size else [])
    return _split(ctx, x, axis, sizes or [0])


@converter("aten.unbind.int", "aten.unbind_copy.int")
def unbind(ctx: NodeContext) -> list[Value]:
    x = ctx.tensor("self")
    axis = axis_of(ctx, ctx.arg("dim", 0), x.type.rank)
    n = _static_dim(ctx, x, axis, "unbind")
    parts = _split(ctx, x, axis, [1] * n)
    return [ctx.op("squeeze", p, axes=[axis]) for p in parts]


# --- slicing and indexing -------------------------------------------------------------------------


@converter("aten.slice.Tensor", "aten.slice_copy.Tensor")
def slice_(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    axis = axis_of(ctx, ctx.arg("dim", 0), x.type.rank)
    start, end, step = ctx.arg("start", 0), ctx.arg("end", INT64_MAX), ctx.arg("step", 1)
    if not isinstance(step, int) or step < 1:
        raise ctx.error(f"slice step {step} must be a known positive int")
    d = x.shape[axis]
    if isinstance(start, int) and isinstance(end, int):
        if isinstance(d, int):
            s, e, st = slice(start, end, step).indices(d)
            if (s, e, st) == (0, d, 1):
                return x
            e = max(e, s)
            return ctx.op("slice", x, starts=[s], ends=[e], axes=[axis], steps=[st])
        return _slice_symbolic(ctx, x, axis, start, end, step)
    if isinstance(end, Sym) and end.name is not None and start == 0 and step == 1:
        if end.name == d:
            return x
        idx = arange_sym(ctx, end.name)  # table[:seq] on a static table
        return ctx.op("gather", x, idx, axis=axis)
    raise ctx.error(f"slice {start}:{end}:{step} of dim {axis} of {x.type}: bounds that are size "
                    "expressions are not supported")


def _slice_symbolic(ctx: NodeContext, x: Value, axis: int, start: int, end: int,
                    step: int) -> Value:
    """Slices of a symbolic dim: the full range, or a static count of indices counted from
    one end (x[:, -4:], x[:, 1:3]), gathered with wrapping negative indices."""
    if start == 0 and end >= HUGE and step == 1:
        return x
    if start < 0 and (end >= HUGE or start < end <= 0):
        idx = list(range(start, 0 if end >= HUGE else end, step))
    elif 0 <= start and 0 <= end < HUGE:
        idx = list(range(start, end, step))
    else:
        raise ctx.error(f"slice {start}:{end}:{step} of symbolic dim ?{x.shape[axis]} of {x.type} "
                        "has a size that depends on it")
    return ctx.op("gather", x, ctx.const(np.asarray(idx, np.int64)), axis=axis)


@converter("aten.select.int", "aten.select_copy.int")
def select(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    axis = axis_of(ctx, ctx.arg("dim"), x.type.rank)
    index = ctx.arg("index")
    if not isinstance(index, int):
        raise ctx.error("select with a size-expression index is not supported")
    d = x.shape[axis]
    if isinstance(d, int) and not -d <= index < d:
        raise ctx.error(f"index {index} is out of range for dim {axis} of {x.type}")
    return ctx.op("gather", x, ctx.scalar(index, dt.i64), axis=axis)


def _index_tensor(ctx: NodeContext, v: Value) -> Value:
    return v if v.dtype in (dt.i32, dt.i64) else ctx.cast(v, dt.i64)


def _check_index(node: torch.fx.Node) -> Optional[str]:
    indices = node.args[1] if len(node.args) > 1 else node.kwargs.get("indices", [])
    for i in indices:
        val = i.meta.get("val") if isinstance(i, torch.fx.Node) else None
        if isinstance(val, torch.Tensor) and val.dtype in (torch.bool, torch.uint8):
            return "boolean-mask indexing (its result shape depends on the data)"
    return None


def _indexed(ctx: NodeContext, x: Value, indices: list) -> tuple[Value, Value, list[int],
                                                               Optional[list[int]]]:
    """Advanced indexing by several index tensors, as gather_nd/scatter_nd see it: x with the
    indexed axes moved to the front, the broadcast indices stacked on a last axis, and the
    permutation that takes [*index dims, *other dims] to torch's result order (None when that
    is the order already: torch moves the index dims to the front unless the indexed axes are
    adjacent, and then puts them where those axes were)."""
    axes = [k for k, v in enumerate(indices) if v is not None]
    idx = [ctx.cast(indices[k], dt.i64) for k in axes]
    shape = list(broadcast_shapes(*(v.shape for v in idx)))
    idx = [v if list(v.shape) == shape else ctx.op("broadcast_to", v, shape=shape) for v in idx]
    stacked = ctx.op("concat", *[ctx.op("unsqueeze", v, axes=[len(shape)]) for v in idx],
                     axis=len(shape))
    rest = [a for a in range(x.type.rank) if a not in axes]
    front = x if axes == list(range(len(axes))) else ctx.op("transpose", x, perm=axes + rest)
    first, n = axes[0], len(shape)
    if axes != list(range(first, first + len(axes))) or first == 0:
        return front, stacked, axes, None
    perm = [n + i for i in range(first)] + list(range(n)) + [n + i for i in range(first, len(rest))]
    return front, stacked, axes, perm


@converter("aten.index.Tensor", "aten._unsafe_index.Tensor", check=_check_index)
def index(ctx: NodeContext) -> Value:
    """x[..., i, j, ...]: one index tensor is a gather, several one gather_nd."""
    x = ctx.tensor("self")
    indices = list(ctx.arg("indices"))
    axes = [k for k, v in enumerate(indices) if v is not None]
    if len(axes) == 1:
        return ctx.op("gather", x, _index_tensor(ctx, indices[axes[0]]), axis=axes[0])
    front, stacked, _, perm = _indexed(ctx, x, indices)
    out = ctx.op("gather_nd", front, stacked)  # [*index dims, *other dims]
    return out if perm is None else ctx.op("transpose", out, perm=perm)


def _check_index_put(node: torch.fx.Node) -> Optional[str]:
    indices = node.args[1] if len(node.args) > 1 else node.kwargs.get("indices", [])
    masks = [i for i in indices if isinstance(i, torch.fx.Node) and isinstance(
        i.meta.get("val"), torch.Tensor) and i.meta["val"].dtype in (torch.bool, torch.uint8)]
    if masks and (len(indices) != 1 or _accumulate(node)):
        return "a boolean mask index together with other indices or accumulate=True"
    return None


def _accumulate(node: torch.fx.Node) -> bool:
    return bool(node.args[3] if len(node.args) > 3 else node.kwargs.get("accumulate", False))


@converter("aten.index_put", "aten._unsafe_index_put", check=_check_index_put)
def index_put(ctx: NodeContext) -> Value:
    """x[indices] = values (out of place): a where for a boolean mask over leading dims, else a
    scatter_nd of the values (broadcast to x[indices]'s shape) at the stacked indices."""
    x = ctx.tensor("self")
    indices = list(ctx.arg("indices"))
    values = ctx.cast(ctx.tensor("values"), x.dtype)
    if len(indices) == 1 and isinstance(indices[0], Value) and \
            indices[0].dtype in (dt.bool_, dt.u8):
        mask = ctx.cast(indices[0], dt.bool_)
        extra = x.type.rank - mask.type.rank
        if extra:
            mask = ctx.op("unsqueeze", mask, axes=list(range(mask.type.rank, x.type.rank)))
        if values.type.rank and any(d != 1 for d in values.shape):
            raise ctx.error("assigning a tensor of values through a boolean mask depends on "
                            "how many entries the mask selects; only one value can be")
        return ctx.op("where", mask, values, x)
    front, stacked, axes, perm = _indexed(ctx, x, indices)
    n = stacked.type.rank - 1
    rest = [d for a, d in enumerate(x.shape) if a not in axes]
    upd_shape = list(stacked.shape[:n]) + rest  # [*index dims, *other dims]
    if perm is not None:  # values broadcast against torch's order of x[indices]
        torch_shape = [upd_shape[p] for p in perm]
        values = ctx.op("broadcast_to", values, shape=torch_shape)
        inverse = [perm.index(i) for i in range(len(perm))]
        values = ctx.op("transpose", values, perm=inverse)
    elif list(values.shape) != upd_shape:
        values = ctx.op("broadcast_to", values, shape=upd_shape)
    reduction = "add" if ctx.arg("accumulate", False) else "none"
    out = ctx.op("scatter_nd", front, stacked, values, reduction=reduction)
    if front is x:
        return out
    order = axes + [a for a in range(x.type.rank) if a not in axes]
    return ctx.op("transpose", out, perm=[order.index(i) for i in range(len(order))])


@converter("aten.slice_scatter")
def slice_scatter(ctx: NodeContext) -> Value:
    """x with x[start:end:step] along dim replaced by src: a concat of the untouched parts
    around src (step 1), else a scatter at the sliced positions."""
    x, src = ctx.tensor("self"), ctx.tensor("src")
    axis = axis_of(ctx, ctx.arg("dim", 0), x.type.rank)
    n = _static_dim(ctx, x, axis, "slice_scatter")
    start, end, step = ctx.arg("start", 0), ctx.arg("end", INT64_MAX), ctx.arg("step", 1)
    if not all(isinstance(v, int) for v in (start, end, step)):
        raise ctx.error("slice_scatter bounds must be known ints")
    s, e, st = slice(start, end, step).indices(n)
    src = ctx.cast(src, x.dtype)
    if st == 1:
        parts = []
        if s > 0:
            parts.append(ctx.op("slice", x, starts=[0], ends=[s], axes=[axis]))
        parts.append(src)
        if e < n:
            parts.append(ctx.op("slice", x, starts=[e], ends=[n], axes=[axis]))
        return parts[0] if len(parts) == 1 else ctx.op("concat", *parts, axis=axis)
    pos = np.asarray(range(s, e, st), np.int64)
    shape = [1] * x.type.rank
    shape[axis] = len(pos)
    idx = ctx.op("broadcast_to", ctx.const(pos.reshape(shape)), shape=list(src.shape))
    return ctx.op("scatter_elements", x, idx, src, axis=axis)


@converter("aten.select_scatter")
def select_scatter(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    axis = axis_of(ctx, ctx.arg("dim"), x.type.rank)
    n = _static_dim(ctx, x, axis, "select_scatter")
    i = int(ctx.arg("index")) % n
    src = ctx.op("unsqueeze", ctx.cast(ctx.tensor("src"), x.dtype), axes=[axis])
    parts = ([ctx.op("slice", x, starts=[0], ends=[i], axes=[axis])] if i else []) + [src] + \
        ([ctx.op("slice", x, starts=[i + 1], ends=[n], axes=[axis])] if i + 1 < n else [])
    return parts[0] if len(parts) == 1 else ctx.op("concat", *parts, axis=axis)


@converter("aten.index_select")
def index_select(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    axis = axis_of(ctx, ctx.arg("dim"), x.type.rank)
    return ctx.op("gather", x, _index_tensor(ctx, ctx.tensor("index")), axis=axis)


@converter("aten.gather")
def gather(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    axis = axis_of(ctx, ctx.arg("dim"), x.type.rank)
    return ctx.op("gather_elements", x, _index_tensor(ctx, ctx.tensor("index")), axis=axis)


@converter("aten.embedding")
def embedding(ctx: NodeContext) -> Value:
    return ctx.op("gather", ctx.tensor("weight"), _index_tensor(ctx, ctx.tensor("indices")), axis=0)


_SCATTER_REDUCE = {"sum": "add", "add": "add", "prod": "mul", "multiply": "mul", "amax": "max",
                   "amin": "min"}


def _check_scatter(node: torch.fx.Node) -> Optional[str]:
    reduce = node.kwargs.get("reduce", node.args[4] if len(node.args) > 4 else None)
    if reduce is not None and reduce not in _SCATTER_REDUCE:
        return f"scatter reduction {reduce!r}"
    if "scatter_reduce" in str(node.target):
        include_self = node.kwargs.get("include_self", node.args[5] if len(node.args) > 5 else True)
        if not include_self:
            return "scatter_reduce with include_self=False"
    return None


@converter("aten.scatter", "aten.scatter_add", "aten.scatter_reduce.two", check=_check_scatter)
def scatter(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    axis = axis_of(ctx, ctx.arg("dim"), x.type.rank)
    idx = _index_tensor(ctx, ctx.tensor("index"))
    if ctx.has("src"):
        src = ctx.cast(ctx.tensor("src"), x.dtype)
        if src.shape != idx.shape:  # torch reads only the index-shaped corner of src
            if not (src.type.is_static and idx.type.is_static):
                raise ctx.error(f"scatter src {src.type} larger than index {idx.type} needs "
                                "static shapes")
            src = ctx.op("slice", src, starts=[0] * idx.type.rank, ends=list(idx.shape))
    else:
        src = fill(ctx, list(idx.shape), ctx.arg("value"), x.dtype)
    reduce = ctx.arg("reduce")
    if "scatter_add" in str(ctx.node.target):
        reduce = "sum"
    return ctx.op("scatter_elements", x, idx, src, axis=axis,
                  reduction="none" if reduce is None else _SCATTER_REDUCE[reduce])


# --- creation -------------------------------------------------------------------------------------


def _fill_value(ctx: NodeContext, key: str) -> Any:
    v = ctx.arg(key)
    if isinstance(v, Value):
        known = ctx.known(v)
        if known is None or known.size != 1:
            raise ctx.error("the fill value must be known at import time")
        return known.reshape(()).item()
    if isinstance(v, Sym):
        raise ctx.error("a size expression as a fill value is not supported")
    return v


@converter("aten.full.default", "aten.zeros.default", "aten.ones.default",
           "aten.empty.memory_format", "aten.empty_strided.default", "aten.new_full",
           "aten.new_zeros", "aten.new_ones", "aten.new_empty", "aten.new_empty_strided")
def full(ctx: NodeContext) -> Value:
    name = ctx.node.target.overloadpacket.__name__
    value = {"zeros": 0, "ones": 1, "new_zeros": 0, "new_ones": 1}.get(name, 0)
    if name in ("full", "new_full"):
        value = _fill_value(ctx, "fill_value")
    return fill(ctx, ctx.dims("size"), value, ctx.out_dtype() or dt.f32)


@converter("aten.full_like", "aten.zeros_like", "aten.ones_like", "aten.empty_like",
           "aten.fill.Scalar", "aten.fill.Tensor", "aten.zero")
def full_like(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    name = ctx.node.target.overloadpacket.__name__
    value = {"ones_like": 1}.get(name, 0)
    if name == "full_like":
        value = _fill_value(ctx, "fill_value")
    elif name == "fill":
        value = _fill_value(ctx, "value")
    return fill(ctx, list(x.shape), value, ctx.out_dtype() or x.dtype)


@converter("aten.scalar_tensor")
def scalar_tensor(ctx: NodeContext) -> Value:
    return ctx.const(np.asarray(_fill_value(ctx, "s")), ctx.out_dtype() or dt.f32)


@converter("aten.arange")
def arange(ctx: NodeContext) -> Value:
    d = ctx.out_dtype() or dt.i64
    start, end, step = ctx.arg("start", 0), ctx.arg("end"), ctx.arg("step", 1)
    if all(isinstance(v, (int, float)) for v in (start, end, step)):
        n = max(math.ceil((end - start) / step), 0)
        vals = start + np.arange(n, dtype=np.float64 if d.is_float else np.int64) * step
        return ctx.const(np.asarray(vals).astype(d.np_dtype))
    if isinstance(end, Sym) and end.name is not None and start == 0 and step == 1:
        return ctx.cast(arange_sym(ctx, end.name), d)
    raise ctx.error(f"arange({start}, {end}, {step}): the length must be known or a symbolic "
                    "dim (arange(seq))")


# --- pad, repeat, flip, triangles, pixel shuffle --------------------------------------------------


@converter("aten.constant_pad_nd")
def constant_pad_nd(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    pad = ctx.ints("pad")
    r = x.type.rank
    if len(pad) % 2 or len(pad) // 2 > r:
        raise ctx.error(f"pad {pad} must hold (begin, end) pairs for at most {r} dims")
    begins, ends = [0] * r, [0] * r
    for i in range(len(pad) // 2):  # torch lists the last dim first
        begins[r - 1 - i], ends[r - 1 - i] = pad[2 * i], pad[2 * i + 1]
    if not any(begins) and not any(ends):
        return x
    return ctx.op("pad", x, pads=begins + ends, value=float(ctx.arg("value", 0)))


@converter("aten.repeat")
def repeat(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    reps = ctx.ints("repeats")
    extra = len(reps) - x.type.rank
    if extra < 0:
        raise ctx.error(f"repeat {reps} has fewer entries than the rank of {x.type}")
    if extra:
        x = ctx.op("unsqueeze", x, axes=list(range(extra)))
    return x if all(r == 1 for r in reps) else ctx.op("tile", x, repeats=reps)


@converter("aten.flip")
def flip(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    axes = [axis_of(ctx, d, x.type.rank) for d in ctx.ints("dims")]
    return ctx.op("reverse", x, axes=axes) if axes else x


@converter("aten.tril", "aten.triu")
def trilu(ctx: NodeContext) -> Value:
    upper = ctx.node.target.overloadpacket.__name__ == "triu"
    return ctx.op("trilu", ctx.tensor("self"), upper=upper, k=int(ctx.arg("diagonal", 0)))


@converter("aten.pixel_shuffle")
def pixel_shuffle(ctx: NodeContext) -> Value:
    return ctx.op("depth_to_space", ctx.tensor("self"), blocksize=int(ctx.arg("upscale_factor")),
                  mode="CRD")


@converter("aten.pixel_unshuffle")
def pixel_unshuffle(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    b = int(ctx.arg("downscale_factor"))
    if x.type.rank != 4 or not all(isinstance(d, int) for d in x.shape[1:]):
        raise ctx.error(f"pixel_unshuffle needs a 4-D input with static C, H, W, got {x.type}")
    n, c, h, w = x.shape
    y = ctx.op("reshape", x, shape=[n, c, h // b, b, w // b, b])
    y = ctx.op("transpose", y, perm=[0, 1, 3, 5, 2, 4])
    return ctx.op("reshape", y, shape=[n, c * b * b, h // b, w // b])
