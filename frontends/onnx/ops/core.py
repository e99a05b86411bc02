"""Constants, casts, and the shape ops whose values the importer tracks as dims.

Shape -> Gather/Slice -> Concat -> Reshape/Expand/ConstantOfShape chains are how exporters write
reshapes; here a shape vector with symbolic entries is tracked as a list of dims, so the final
reshape gets a static (or symbolic) target instead of a run-time tensor.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from compiler.ir import Value
from compiler.ir import dtypes as dt
from compiler.ir.types import Dim

from ..importer import NodeContext, converter, ir_dtype

INT64 = np.int64


@converter("Constant")
def constant(ctx: NodeContext) -> Value:
    a = ctx.attrs
    if "value" in a:
        return ctx.const(a["value"])
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
        if key in a:
            return ctx.const(np.asarray(a[key], dtype=dtype))
    for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in a:
            return ctx.const(np.asarray(a[key], dtype=dtype).reshape(-1))
    raise ctx.error(f"unsupported Constant form (attributes {sorted(a)}); strings and sparse "
                    "tensors have no IR type")


@converter("Identity")
def identity(ctx: NodeContext) -> Value:
    return ctx.input(0)


@converter("Shape")
def shape(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    rank = x.type.rank
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    sl = slice(_clamp(start, rank), rank if end is None else _clamp(end, rank))
    dims = list(x.shape[sl])
    if all(isinstance(d, int) for d in dims):
        return ctx.const(np.asarray(dims, dtype=INT64))
    out = ctx.op("shape_of", x, start=sl.start, end=sl.stop)
    return ctx.set_dims(out, dims)


def _clamp(i: int, rank: int) -> int:
    return max(0, min(rank, i + rank if i < 0 else i))


@converter("Size")
def size(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    if x.type.is_static:
        return ctx.const(np.asarray(x.type.num_elements(), dtype=INT64))
    return ctx.op("reduce_prod", ctx.op("shape_of", x))


@converter("Cast")
def cast(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    to = ir_dtype(ctx.attr("to"), f"Cast node '{ctx.node.name}' attribute to")
    out = _cast(ctx, x, to)
    dims = ctx.dims(0)
    if dims is not None and to.is_int and x.dtype.is_int and out is not x:
        ctx.set_dims(out, dims)
    return out


@converter("CastLike")
def cast_like(ctx: NodeContext) -> Value:
    return _cast(ctx, ctx.input(0), ctx.input(1).dtype)


def _cast(ctx: NodeContext, x: Value, to: dt.DType) -> Value:
    """Cast/CastLike with `saturate` (opset 19+, the f8 targets) and `round_mode` (opset 24+,
    f8e8m0); a cast to x's own dtype is x, except that saturating f8e5m2 clamps its infinities."""
    saturate = bool(ctx.attr("saturate", 1))
    if x.dtype is to and not (to is dt.f8e5m2 and saturate):
        return x
    extra = {"saturate": saturate, "round_mode": ctx.attr("round_mode", "up")} \
        if to.is_narrow_float else {}
    return ctx.op("cast", x, to=to, **extra)


@converter("Reshape")
def reshape(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    dims = ctx.dims(1)
    if dims is None:
        raise ctx.needs_constant("the target shape depends on run-time values the importer "
                                 "cannot track; export with static shapes or symbolic dims",
                                 ctx.inputs[1])
    allowzero = bool(ctx.attr("allowzero", 0))
    return ctx.op("reshape", x, shape=_fill_unknown(ctx, dims), allowzero=allowzero)


def _fill_unknown(ctx: NodeContext, dims: Sequence[Optional[Dim]]) -> list[Dim]:
    """Shape entries with at most one unknown, which becomes -1 (inferred)."""
    unknown = [i for i, d in enumerate(dims) if d is None]
    if not unknown:
        return list(dims)  # type: ignore[arg-type]
    if len(unknown) > 1 or -1 in dims:
        raise ctx.needs_constant(f"target shape {['?' if d is None else d for d in dims]} has more "
                                 "than one entry that depends on run-time values", ctx.inputs[1])
    return [-1 if d is None else d for d in dims]  # type: ignore[misc]


@converter("Expand")
def expand(ctx: NodeContext) -> Value:
    dims = ctx.dims(1)
    if dims is None or any(d is None for d in dims):
        raise ctx.needs_constant("the target shape depends on run-time values", ctx.inputs[1])
    return ctx.op("broadcast_to", ctx.input(0), shape=list(dims))


@converter("ConstantOfShape")
def constant_of_shape(ctx: NodeContext) -> Value:
    value = ctx.attr("value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    dims = ctx.dims(0)
    if dims is None or any(d is None for d in dims):
        raise ctx.needs_constant("the shape depends on run-time values", ctx.inputs[0])
    if all(isinstance(d, int) for d in dims):
        return ctx.const(np.full(dims, fill[0], dtype=fill.dtype))
    return ctx.op("full", shape=list(dims), value=float(fill[0]), dtype=dt.dtype(fill.dtype))


@converter("Concat")
def concat(ctx: NodeContext) -> Value:
    xs = [v for v in ctx.inputs if v is not None]
    axis = ctx.attr("axis")
    out = xs[0] if len(xs) == 1 else ctx.op("concat", *xs, axis=axis)
    dims = [ctx.importer.dims_of(v) for v in xs]
    if all(d is not None for d in dims) and xs[0].type.rank == 1:
        ctx.set_dims(out, [e for d in dims for e in d])  # type: ignore[union-attr]
    return out


@converter("Gather")
def gather(ctx: NodeContext) -> Value:
    x, idx = ctx.input(0), ctx.input(1)
    axis = ctx.attr("axis", 0)
    out = ctx.op("gather", x, idx, axis=axis)
    dims, known_idx = ctx.dims(0), ctx.known(1)
    if dims is not None and known_idx is not None and x.type.rank == 1:
        n = len(dims)
        picked = [dims[int(i) + n if i < 0 else int(i)] for i in known_idx.reshape(-1)]
        ctx.set_dims(out, picked)
    return out


@converter("Unsqueeze")
def unsqueeze(ctx: NodeContext) -> Value:
    axes = ctx.attr("axes") if ctx.opset < 13 else \
        [int(a) for a in ctx.require_known(1, "axes").reshape(-1)]
    out = ctx.op("unsqueeze", ctx.input(0), axes=list(axes))
    _keep_dims(ctx, out)
    return out


@converter("Squeeze")
def squeeze(ctx: NodeContext) -> Value:
    if ctx.opset < 13:
        axes = ctx.attr("axes", [])
    else:
        axes = [] if not ctx.has_input(1) else \
            [int(a) for a in ctx.require_known(1, "axes").reshape(-1)]
    out = ctx.op("squeeze", ctx.input(0), axes=list(axes))
    _keep_dims(ctx, out)
    return out


def _keep_dims(ctx: NodeContext, out: Value) -> None:
    """A 0-d/1-d reshaping of a dims vector keeps its entries."""
    dims = ctx.dims(0)
    if dims is not None and out.type.rank <= 1:
        ctx.set_dims(out, dims)


@converter("Slice")
def slice_(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    if ctx.opset < 10:
        starts, ends = ctx.attr("starts"), ctx.attr("ends")
        axes, steps = ctx.attr("axes", []), []
    else:
        starts = _ints(ctx.require_known(1, "starts"))
        ends = _ints(ctx.require_known(2, "ends"))
        axes = _ints(ctx.known(3)) if ctx.has_input(3) else []
        if ctx.has_input(3) and ctx.known(3) is None:
            raise ctx.needs_constant("input 3 (axes) must be a constant", ctx.inputs[3])
        steps = _ints(ctx.require_known(4, "steps")) if ctx.has_input(4) else []
    out = ctx.op("slice", x, starts=starts, ends=ends, axes=axes, steps=steps)
    dims = ctx.dims(0)
    if dims is not None and x.type.rank == 1:
        step = steps[0] if steps else 1
        big = np.iinfo(np.int64).max
        start, end = starts[0], ends[0]
        # Python slicing clamps like ONNX; huge ends stand for "to the end"
        sel = list(range(len(dims)))[slice(start, None if abs(end) >= big // 2 and end > 0 else
                                            (None if end <= -big // 2 else end), step)]
        ctx.set_dims(out, [dims[i] for i in sel])
    return out


def _ints(arr: Optional[np.ndarray]) -> list[int]:
    return [] if arr is None else [int(v) for v in np.asarray(arr).reshape(-1)]


def propagate_binary_dims(ctx: NodeContext, out: Value, op: str) -> None:
    """Track dims through arithmetic on shape vectors (Mul of a dim by 1, Add of 0, and integer
    arithmetic on static entries); entries that would need an expression become unknown."""
    a, b = ctx.dims(0), ctx.dims(1)
    if a is None or b is None or out.type.rank > 1:
        return
    n = max(len(a), len(b))
    if len(a) not in (1, n) or len(b) not in (1, n):
        return
    a, b = a * n if len(a) == 1 else a, b * n if len(b) == 1 else b
    res: list[Optional[Dim]] = []
    for x, y in zip(a, b):
        if isinstance(x, int) and isinstance(y, int):
            res.append({"add": x + y, "sub": x - y, "mul": x * y,
                        "div": int(x / y) if y else None}.get(op))
        elif op in ("mul", "div") and y == 1 and x is not None:
            res.append(x)
        elif op == "mul" and x == 1 and y is not None:
            res.append(y)
        elif op in ("add", "sub") and y == 0 and x is not None:
            res.append(x)
        elif op == "add" and x == 0 and y is not None:
            res.append(y)
        else:
            res.append(None)
    ctx.set_dims(out, res)

