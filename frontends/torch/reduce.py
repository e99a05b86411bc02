"""Reductions and ops along one axis: sum/mean/amax/amin/prod/any/all, max/min with indices,
argmax/argmin, var/std (with correction), vector norms, softmax/log_softmax, logsumexp,
cumsum, topk and sort."""
from __future__ import annotations

import math
from typing import Optional

from compiler.ir import Value
from compiler.ir import dtypes as dt

from .importer import NodeContext, converter
from .shape import axis_of


def _axes(ctx: NodeContext, x: Value, key: str = "dim") -> list[int]:
    """The reduced axes: None or [] means every axis (torch's convention)."""
    v = ctx.arg(key)
    if v is None:
        return list(range(x.type.rank))
    v = [v] if isinstance(v, int) else list(v)
    if not v:
        return list(range(x.type.rank))
    return sorted({axis_of(ctx, int(a), x.type.rank) for a in v})


def _reduce(ctx: NodeContext, name: str, x: Value, axes: list[int], keepdim: bool) -> Value:
    if x.type.rank == 0:
        return x
    return ctx.op(name, x, axes=axes, keepdims=keepdim)


def _numeric(ctx: NodeContext, x: Value) -> Value:
    """x in the dtype torch reduces in (its result dtype: ints and bools sum in i64)."""
    return ctx.cast(x, ctx.out_dtype() or x.dtype)


@converter("aten.sum.dim_IntList", "aten.sum.default")
def sum_(ctx: NodeContext) -> Value:
    x = _numeric(ctx, ctx.tensor("self"))
    return _reduce(ctx, "reduce_sum", x, _axes(ctx, x), bool(ctx.arg("keepdim", False)))


@converter("aten.mean.dim", "aten.mean.default")
def mean(ctx: NodeContext) -> Value:
    x = _numeric(ctx, ctx.tensor("self"))
    return _reduce(ctx, "reduce_mean", x, _axes(ctx, x), bool(ctx.arg("keepdim", False)))


@converter("aten.prod.dim_int", "aten.prod.default")
def prod(ctx: NodeContext) -> Value:
    x = _numeric(ctx, ctx.tensor("self"))
    return _reduce(ctx, "reduce_prod", x, _axes(ctx, x), bool(ctx.arg("keepdim", False)))


def _extreme(ctx: NodeContext, name: str, x: Value, axes: list[int], keepdim: bool) -> Value:
    if x.dtype.is_bool:  # max of bools is any, min is all
        y = _reduce(ctx, name, ctx.cast(x, dt.u8), axes, keepdim)
        return ctx.cast(y, dt.bool_)
    return _reduce(ctx, name, x, axes, keepdim)


@converter("aten.amax", "aten.amin", "aten.max.default", "aten.min.default")
def amax(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    name = "reduce_max" if "max" in ctx.node.target.overloadpacket.__name__ else "reduce_min"
    return _extreme(ctx, name, x, _axes(ctx, x), bool(ctx.arg("keepdim", False)))


@converter("aten.any", "aten.all")
def any_all(ctx: NodeContext) -> Value:
    x = ctx.cast(ctx.tensor("self"), dt.bool_)
    name = "reduce_max" if ctx.node.target.overloadpacket.__name__ == "any" else "reduce_min"
    return _extreme(ctx, name, x, _axes(ctx, x), bool(ctx.arg("keepdim", False)))


@converter("aten.max.dim", "aten.min.dim")
def max_dim(ctx: NodeContext) -> list[Optional[Value]]:
    x = ctx.tensor("self")
    is_max = ctx.node.target.overloadpacket.__name__ == "max"
    axis = axis_of(ctx, ctx.arg("dim"), x.type.rank)
    keepdim = bool(ctx.arg("keepdim", False))
    used = ctx.used_outputs()
    values = indices = None
    if 0 in used:
        values = _extreme(ctx, "reduce_max" if is_max else "reduce_min", x, [axis], keepdim)
    if 1 in used:
        xs = ctx.cast(x, dt.u8) if x.dtype.is_bool else x
        indices = ctx.op("argmax" if is_max else "argmin", xs, axis=axis, keepdims=keepdim)
    return [values, indices]


@converter("aten.argmax", "aten.argmin")
def argmax(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    name = ctx.node.target.overloadpacket.__name__
    if x.dtype.is_bool:
        x = ctx.cast(x, dt.u8)
    keepdim = bool(ctx.arg("keepdim", False))
    dim = ctx.arg("dim")
    if dim is None:  # over the flattened tensor
        flat = ctx.op("reshape", x, shape=[-1]) if x.type.rank != 1 else x
        idx = ctx.op(name, flat, axis=0, keepdims=False)
        return ctx.op("reshape", idx, shape=[1] * x.type.rank) if keepdim else idx
    return ctx.op(name, x, axis=axis_of(ctx, dim, x.type.rank), keepdims=keepdim)


def _count(ctx: NodeContext, x: Value, axes: list[int]) -> int:
    dims = [x.shape[a] for a in axes]
    if not all(isinstance(d, int) for d in dims):
        raise ctx.error(f"variance over symbolic dims of {x.type} is not supported")
    return math.prod(dims)  # type: ignore[arg-type]


def _variance(ctx: NodeContext, x: Value, axes: list[int], correction: float,
              keepdim: bool) -> tuple[Value, Value]:
    """(var, mean) over axes with torch's correction (Bessel's for 1); the mean keeps dims."""
    mean = ctx.op("reduce_mean", x, axes=axes, keepdims=True)
    d = ctx.op("sub", x, mean)
    ss = ctx.op("reduce_sum", ctx.op("mul", d, d), axes=axes, keepdims=keepdim)
    n = _count(ctx, x, axes)
    var = ctx.op("div", ss, ctx.scalar(max(n - correction, 0), x.dtype))
    return var, mean


def _correction(ctx: NodeContext) -> float:
    if ctx.has("correction"):
        return float(ctx.arg("correction"))
    if ctx.has("unbiased"):
        return 1.0 if ctx.arg("unbiased") else 0.0
    return 1.0


@converter("aten.var.correction", "aten.var.dim", "aten.var.default", "aten.std.correction",
           "aten.std.dim", "aten.std.default")
def var(ctx: NodeContext) -> Value:
    x = _numeric(ctx, ctx.tensor("self"))
    keepdim = bool(ctx.arg("keepdim", False))
    v, _ = _variance(ctx, x, _axes(ctx, x), _correction(ctx), keepdim)
    return ctx.op("sqrt", v) if ctx.node.target.overloadpacket.__name__ == "std" else v


@converter("aten.var_mean.correction", "aten.var_mean.dim", "aten.std_mean.correction",
           "aten.std_mean.dim")
def var_mean(ctx: NodeContext) -> list[Value]:
    x = _numeric(ctx, ctx.tensor("self"))
    axes = _axes(ctx, x)
    keepdim = bool(ctx.arg("keepdim", False))
    v, m = _variance(ctx, x, axes, _correction(ctx), keepdim)
    if not keepdim:
        m = ctx.op("squeeze", m, axes=axes)
    if ctx.node.target.overloadpacket.__name__ == "std_mean":
        v = ctx.op("sqrt", v)
    return [v, m]


@converter("aten.linalg_vector_norm")
def vector_norm(ctx: NodeContext) -> Value:
    x = _numeric(ctx, ctx.tensor("self"))
    order = float(ctx.arg("ord", 2))
    axes, keepdim = _axes(ctx, x), bool(ctx.arg("keepdim", False))
    if order == 2:
        return _reduce(ctx, "reduce_l2", x, axes, keepdim)
    if order == 1:
        return _reduce(ctx, "reduce_l1", x, axes, keepdim)
    if order == math.inf:
        return _reduce(ctx, "reduce_max", ctx.op("abs", x), axes, keepdim)
    raise ctx.error(f"vector norm of order {order} (supported: 1, 2, inf)")


@converter("aten._softmax", "aten.softmax.int", "aten._log_softmax", "aten.log_softmax.int")
def softmax(ctx: NodeContext) -> Value:
    x = _numeric(ctx, ctx.tensor("self"))
    name = "log_softmax" if "log_softmax" in str(ctx.node.target) else "softmax"
    return ctx.op(name, x, axis=axis_of(ctx, ctx.arg("dim"), x.type.rank))


@converter("aten.logsumexp")
def logsumexp(ctx: NodeContext) -> Value:
    x = _numeric(ctx, ctx.tensor("self"))
    return _reduce(ctx, "reduce_logsumexp", x, _axes(ctx, x), bool(ctx.arg("keepdim", False)))


@converter("aten.cumsum")
def cumsum(ctx: NodeContext) -> Value:
    x = _numeric(ctx, ctx.tensor("self"))
    return ctx.op("cumsum", x, axis=axis_of(ctx, ctx.arg("dim"), x.type.rank))


@converter("aten.topk")
def topk(ctx: NodeContext) -> list[Value]:
    x = ctx.tensor("self")
    axis = axis_of(ctx, ctx.arg("dim", -1), x.type.rank)
    out = ctx.op("topk", x, k=int(ctx.arg("k")), axis=axis, largest=bool(ctx.arg("largest", True)),
                 sorted=bool(ctx.arg("sorted", True)))
    return list(out)  # type: ignore[arg-type]


def _sort(ctx: NodeContext) -> list[Value]:
    x = ctx.tensor("self")
    axis = axis_of(ctx, ctx.arg("dim", -1), x.type.rank)
    n = x.shape[axis] if x.type.rank else 1
    if not isinstance(n, int):
        raise ctx.error(f"sort along symbolic dim ?{n} of {x.type} is not supported")
    if x.type.rank == 0:
        return [x, ctx.scalar(0, dt.i64)]
    # topk orders ties by index, which is what a stable sort does in either direction
    out = ctx.op("topk", x, k=n, axis=axis, largest=bool(ctx.arg("descending", False)))
    return list(out)  # type: ignore[arg-type]


@converter("aten.sort")
def sort(ctx: NodeContext) -> list[Value]:
    return _sort(ctx)


@converter("aten.argsort")
def argsort(ctx: NodeContext) -> Value:
    return _sort(ctx)[1]
