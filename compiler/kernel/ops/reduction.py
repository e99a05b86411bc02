"""Reductions, softmax and the normalizations: reduction stages plus elementwise views."""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

from compiler.ir import dtypes as dt
from compiler.ir.core import Op
from compiler.ir.types import normalize_axis

from ..ir import (F32, I64, Alloc, Buffer, Const, Expr, For, If, Load, Store, Var, binop, call,
                  cast, const, seq, select)
from ..lower import Ctx, LoweringError, View, attrs_of, bview, lowering, out_dtype, view_of
from .. import te


def _low(d: dt.DType) -> bool:
    return d.name in ("f16", "bf16")


def _lowest(d: dt.DType) -> Any:
    if d.is_float:
        return -math.inf
    return int(np.iinfo(d.np_dtype).min)


def _highest(d: dt.DType) -> Any:
    if d.is_float:
        return math.inf
    return int(np.iinfo(d.np_dtype).max)


def reduce_view(ctx: Ctx, x: View, axes: Sequence[int], keepdims: bool, combiner: str,
                init: Any, body: Callable[[Expr], Expr], base: str) -> tuple[View, int]:
    """Reduce `body(x)` over `axes`; returns the view (keepdims applied) and the count."""
    axes = sorted(set(axes))
    keep = [d for d in range(x.ndim) if d not in axes]
    shape = [x.shape[d] for d in keep]
    rshape = [x.shape[d] for d in axes]

    def fn(*vs: Expr) -> Expr:
        sp, rd = vs[:len(keep)], vs[len(keep):]
        idx: list[Any] = [None] * x.ndim
        for d, v in zip(keep, sp):
            idx[d] = v
        for d, v in zip(axes, rd):
            idx[d] = v
        return body(x.at(*idx))
    probe = body(x.at(*[Const(0)] * x.ndim))
    t = te.reduce(ctx.name(base), shape, rshape, fn, combiner, const(init, probe.dtype)
                  if not probe.dtype.is_bool else Const(bool(init), probe.dtype))
    v = view_of(t)
    count: Any = 1
    for d in rshape:
        count = count * d if isinstance(d, int) and isinstance(count, int) else None
    if keepdims:
        full = [1 if d in axes else x.shape[d] for d in range(x.ndim)]

        def f(*i: Expr) -> Expr:
            return v.at(*[i[d] for d in keep])
        return View(tuple(full), v.dtype, f), count
    return v, count


def _axes(op: Op, ndim: int) -> list[int]:
    axes = attrs_of(op)["axes"]
    if not axes:
        return list(range(ndim))
    return [normalize_axis(a, ndim) for a in axes]


def _count(x: View, axes: Sequence[int]) -> Expr:
    n: Expr = Const(1)
    for a in axes:
        n = n * x.shape[a]
    return n


@lowering("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "reduce_l1",
          "reduce_l2", "reduce_sum_square", "reduce_logsumexp")
def _reduce(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    d = x.dtype
    keepdims = attrs_of(op)["keepdims"]
    axes = _axes(op, x.ndim)
    w = F32 if _low(d) else d
    up = (lambda e: cast(F32, e)) if _low(d) else (lambda e: e)
    name = op.name
    if any(isinstance(s, int) and s == 0 for s in (x.shape[a] for a in axes)) and \
            name in ("reduce_max", "reduce_min") and not d.is_float:
        pass
    if name == "reduce_logsumexp":
        m, _ = reduce_view(ctx, x, axes, True, "max", _lowest(w), up, "max")
        mx = View(m.shape, m.dtype, lambda *i: select(call("isinf", dt.dtype("bool"), m.at(*i)),
                                                     const(0, w), m.at(*i)))
        xe = View(x.shape, w, lambda *i: call("exp", w, binop(
            "-", up(x.at(*i)), mx.at(*[Const(0) if a in axes else v for a, v in enumerate(i)]))))
        s, _ = reduce_view(ctx, xe, axes, keepdims, "+", 0, lambda e: e, "sum")
        if keepdims:
            g = lambda *i: binop("+", call("log", w, s.at(*i)), mx.at(*i))
        else:
            keep = [a for a in range(x.ndim) if a not in axes]

            def g(*i: Expr) -> Expr:
                full = [Const(0)] * x.ndim
                for a, v in zip(keep, i):
                    full[a] = v
                return binop("+", call("log", w, s.at(*i)), mx.at(*full))
        return _down(View(s.shape, w, g), d)
    spec = {
        "reduce_sum": ("+", 0, up),
        "reduce_mean": ("+", 0, up),
        "reduce_max": ("max", _lowest(w), up),
        "reduce_min": ("min", _highest(w), up),
        "reduce_prod": ("*", 1, up),
        "reduce_l1": ("+", 0, lambda e: _abs(up(e))),
        "reduce_l2": ("+", 0, lambda e: binop("*", up(e), up(e))),
        "reduce_sum_square": ("+", 0, lambda e: binop("*", up(e), up(e))),
    }[name]
    v, _ = reduce_view(ctx, x, axes, keepdims, spec[0], spec[1], spec[2], name[7:])
    if name == "reduce_mean":
        n = _count(x, axes)
        v = View(v.shape, w, lambda *i, v=v: binop("/", v.at(*i), cast(w, n)))
    elif name == "reduce_l2":
        v = View(v.shape, w, lambda *i, v=v: call("sqrt", w, v.at(*i)) if w.is_float
                 else cast(w, call("sqrt", dt.dtype("f64"), cast(dt.dtype("f64"), v.at(*i)))))
    return _down(v, d)


def _abs(e: Expr) -> Expr:
    if e.dtype.is_float:
        return call("fabs", e.dtype, e)
    if e.dtype.kind == "uint":
        return e
    return select(binop("<", e, const(0, e.dtype)), binop("-", const(0, e.dtype), e), e)


def _down(v: View, d: dt.DType) -> View:
    if v.dtype == d:
        return v
    return View(v.shape, d, lambda *i: cast(d, v.at(*i)))


def _drop(i: Sequence[Expr], axes: Sequence[int]) -> list[Expr]:
    return [v for a, v in enumerate(i) if a not in axes]


@lowering("softmax", "log_softmax")
def _softmax(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    d = x.dtype
    w = F32 if _low(d) else d
    up = (lambda e: cast(F32, e)) if _low(d) else (lambda e: e)
    axis = normalize_axis(attrs_of(op)["axis"], x.ndim)
    m, _ = reduce_view(ctx, x, [axis], False, "max", -math.inf, up, "max")

    def shifted(*i: Expr) -> Expr:
        return binop("-", up(x.at(*i)), m.at(*_drop(i, [axis])))
    e = View(x.shape, w, lambda *i: call("exp", w, shifted(*i)))
    s, _ = reduce_view(ctx, e, [axis], False, "+", 0, lambda v: v, "sum")
    if op.name == "softmax":
        out = View(x.shape, w, lambda *i: binop("/", e.at(*i), s.at(*_drop(i, [axis]))))
    else:
        out = View(x.shape, w, lambda *i: binop("-", shifted(*i),
                                                call("log", w, s.at(*_drop(i, [axis])))))
    return _down(out, d)


@lowering("layer_norm", "rms_norm")
def _layer_norm(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    scale = xs[1] if len(xs) > 1 else None
    bias = xs[2] if len(xs) > 2 else None
    a = attrs_of(op)
    d = x.dtype
    w = F32 if _low(d) else d
    up = (lambda e: cast(F32, e)) if _low(d) else (lambda e: e)
    axis = normalize_axis(a["axis"], x.ndim)
    axes = list(range(axis, x.ndim))
    n = cast(w, _count(x, axes))
    eps = const(a["epsilon"], w)
    if op.name == "layer_norm":
        s, _ = reduce_view(ctx, x, axes, False, "+", 0, up, "mean")
        mean = lambda *i: binop("/", s.at(*i[:axis]), n)
        cen = View(x.shape, w, lambda *i: binop("-", up(x.at(*i)), mean(*i)))
        v, _ = reduce_view(ctx, cen, axes, False, "+", 0, lambda e: binop("*", e, e), "var")
        inv = lambda *i: binop("/", const(1, w), call("sqrt", w, binop(
            "+", binop("/", v.at(*i[:axis]), n), eps)))
        core = lambda *i: binop("*", cen.at(*i), inv(*i))
    else:
        ss, _ = reduce_view(ctx, x, axes, False, "+", 0, lambda e: binop("*", up(e), up(e)), "ms")
        inv = lambda *i: binop("/", const(1, w), call("sqrt", w, binop(
            "+", binop("/", ss.at(*i[:axis]), n), eps)))
        core = lambda *i: binop("*", up(x.at(*i)), inv(*i))
    fs = bview(scale, x.shape) if scale is not None else None
    fb = bview(bias, x.shape) if bias is not None else None

    def f(*i: Expr) -> Expr:
        y = core(*i)
        if fs is not None:
            y = binop("*", y, up(fs(*i)))
        if fb is not None:
            y = binop("+", y, up(fb(*i)))
        return y
    return _down(View(x.shape, w, f), d)


@lowering("argmax", "argmin")
def _argmax(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """A hand-written loop nest: the first (or last) index of the max (min); NaN wins."""
    x = xs[0]
    a = attrs_of(op)
    axis = normalize_axis(a["axis"], x.ndim)
    last = a["select_last_index"]
    src = ctx.tensor(x, "argsrc")
    keep = [d for d in range(x.ndim) if d != axis]
    shape = [x.shape[d] for d in keep]
    better = ">" if op.name == "argmax" else "<"
    name = ctx.name(op.name)

    def build(outs: list[Buffer], ins: list[Any]) -> Any:
        out, xb = outs[0], ins[0].buffer
        vs = [Var(f"{name}.i{k}") for k in range(len(keep))]
        r = Var(f"{name}.r")
        best = Buffer(f"{name}.best", xb.dtype, (1,), "local")
        bidx = Buffer(f"{name}.idx", I64, (1,), "local")

        def at(rv: Any) -> Any:
            idx: list[Any] = [None] * x.ndim
            for d, v in zip(keep, vs):
                idx[d] = v
            idx[axis] = rv
            return xb[tuple(idx)]
        cur = at(r)
        bv = Load(best, Const(0), xb.dtype)
        cond = binop(better, cur, bv)
        if last:
            cond = binop("or", cond, binop("==", cur, bv))
        if xb.dtype.is_float:  # the first NaN is the answer (NumPy)
            b1 = dt.dtype("bool")
            cond = binop("and", binop("or", cond, call("isnan", b1, cur)),
                         binop("==", call("isnan", b1, bv), Const(False, b1)))
        upd = If(cond, seq(Store(best, Const(0), cur), Store(bidx, Const(0), r)))
        body = seq(Store(best, Const(0), at(Const(0))), Store(bidx, Const(0), Const(0)),
                   For(r, x.shape[axis], "serial", upd),
                   Store(out, out.offset(vs), Load(bidx, Const(0), I64)))
        body = Alloc(best, Alloc(bidx, body))
        for v, ext in reversed(list(zip(vs, shape))):
            body = For(v, ext, "serial", body)
        return body
    t = te.extern(name, [(shape, I64)], [src], build)[0]
    v = view_of(t)
    if a["keepdims"]:
        return View(tuple(1 if d == axis else x.shape[d] for d in range(x.ndim)), I64,
                    lambda *i: v.at(*_drop(i, [axis])))
    return v
