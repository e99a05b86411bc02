"""Contractions: matmul, linear, gemm as reduction stages; the schedule makes them micro-kernels."""
from __future__ import annotations

from typing import Any

from compiler.ir.core import Op

from ..ir import F32, Const, Expr, binop, cast, const
from ..lower import Ctx, LoweringError, View, attrs_of, bview, lowering, out_dtype, out_shape, view_of
from .. import te


def contraction(ctx: Ctx, a: View, b: View, shape: tuple, base: str,
                b_kn: bool = True, acc=None) -> View:
    """out[..., i, j] = sum_k a[..., i, k] * b[..., k, j] (b[..., j, k] when b_kn is False),
    batch dims broadcast. Records the stage for the matmul schedule."""
    if a.ndim < 2 or b.ndim < 2:
        raise LoweringError("contraction operands must be at least 2-D here")
    K = a.shape[-1]
    batch = shape[:-2]
    w = acc or a.dtype
    up = (lambda e: e) if w == a.dtype else (lambda e: cast(w, e))

    def bidx(v: View, i: tuple) -> list:
        r = len(batch) - (v.ndim - 2)
        out = []
        for k, d in enumerate(v.shape[:-2]):
            out.append(Const(0) if isinstance(d, int) and d == 1 else i[r + k])
        return out

    def fn(*vs: Expr) -> Expr:
        bt, i, j, k = vs[:len(batch)], vs[len(batch)], vs[len(batch) + 1], vs[-1]
        av = a.at(*bidx(a, bt), i, k)
        bv = b.at(*bidx(b, bt), k, j) if b_kn else b.at(*bidx(b, bt), j, k)
        return binop("*", up(av), up(bv))
    t = te.reduce(ctx.name(base), shape, [K], fn, "+", const(0, w))
    ctx.contractions.append({"stage": t.stage.name, "a": a, "b": b, "b_kn": b_kn,
                             "batch": len(batch)})
    return view_of(t)


@lowering("matmul")
def _matmul(ctx: Ctx, op: Op, xs: list[View]) -> View:
    a, b = xs
    shape = out_shape(ctx, op)
    d = out_dtype(op)
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = View((1,) + a.shape, a.dtype, lambda i, k, a=a: a.at(k))
    if squeeze_b:
        b = View(b.shape + (1,), b.dtype, lambda k, j, b=b: b.at(k))
    full = tuple(shape)
    if squeeze_a:
        full = full[:-1] + (1,) + full[-1:] if not squeeze_b else (1,)
    if squeeze_b:
        full = full + (1,)
    if squeeze_a and squeeze_b:
        full = (1, 1)
    lowp = d.name in ("f16", "bf16")
    v = contraction(ctx, a, b, full, "matmul", acc=F32 if lowp else None)
    if lowp:
        v = View(v.shape, d, lambda *i, v=v: cast(d, v.at(*i)))
    if squeeze_a or squeeze_b:
        def f(*i: Expr) -> Expr:
            idx = list(i)
            if squeeze_a and squeeze_b:
                return v.at(Const(0), Const(0))
            if squeeze_a:
                idx = idx[:-1] + [Const(0)] + idx[-1:]
            if squeeze_b:
                idx = idx + [Const(0)]
            return v.at(*idx)
        return View(shape, d, f)
    return v


@lowering("linear")
def _linear(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """x @ w.T + bias, w: [N, K]."""
    x, w = xs[0], xs[1]
    bias = xs[2] if len(xs) > 2 else None
    shape = out_shape(ctx, op)
    d = out_dtype(op)
    lowp = d.name in ("f16", "bf16")
    v = contraction(ctx, x, w, shape, "linear", b_kn=False, acc=F32 if lowp else None)
    if bias is None and not lowp:
        return v
    fb = bview(bias, shape) if bias is not None else None

    def f(*i: Expr) -> Expr:
        y = v.at(*i)
        if fb is not None:
            bb = fb(*i)
            y = binop("+", y, cast(y.dtype, bb))
        return cast(d, y)
    return View(shape, d, f)


@lowering("gemm")
def _gemm(ctx: Ctx, op: Op, xs: list[View]) -> View:
    a, b = xs[0], xs[1]
    c = xs[2] if len(xs) > 2 else None
    at = attrs_of(op)
    shape = out_shape(ctx, op)
    d = out_dtype(op)
    if at["trans_a"]:
        a0 = a
        a = View((a0.shape[1], a0.shape[0]), a0.dtype, lambda i, k: a0.at(k, i))
    v = contraction(ctx, a, b, shape, "gemm", b_kn=not at["trans_b"])
    alpha, beta = at["alpha"], at["beta"]
    fc = bview(c, shape) if c is not None else None

    def f(*i: Expr) -> Expr:
        y = v.at(*i)
        if alpha != 1.0:
            y = binop("*", y, const(alpha, d))
        if fc is not None:
            cc = fc(*i)
            y = binop("+", y, cc if beta == 1.0 else binop("*", cc, const(beta, d)))
        return y
    return View(shape, d, f)
