"""Data-movement ops: index remappings, inlined into whoever reads them."""
from __future__ import annotations

from typing import Any, Sequence

from compiler.ir.core import Op
from compiler.ir.types import normalize_axis

from ..ir import BOOL, Const, Expr, as_expr, binop, cast, const, select
from ..lower import (Ctx, LoweringError, View, attrs_of, bview, lowering, out_dtype,
                     out_shape, scalar_const)


def _strides(shape: Sequence[Any]) -> list[Expr]:
    out: list[Expr] = []
    acc: Expr = Const(1)
    for d in reversed(shape):
        out.append(acc)
        acc = acc * d
    return out[::-1]


def reshaped(x: View, shape: Sequence[Any]) -> View:
    """x with a new shape, same row-major order."""
    if list(map(str, x.shape)) == list(map(str, shape)):
        return x
    # only unit dims added or removed: map the other indices straight through
    keep_in = [k for k, d in enumerate(x.shape) if not (isinstance(d, int) and d == 1)]
    keep_out = [k for k, d in enumerate(shape) if not (isinstance(d, int) and d == 1)]
    if [str(x.shape[k]) for k in keep_in] == [str(shape[k]) for k in keep_out]:
        def g(*i: Expr) -> Expr:
            idx: list[Expr] = [Const(0)] * x.ndim
            for a, b in zip(keep_in, keep_out):
                idx[a] = i[b]
            return x.at(*idx)
        return View(tuple(shape), x.dtype, g)
    ostr, istr = _strides(shape), _strides(x.shape)

    def f(*i: Expr) -> Expr:
        flat: Expr = Const(0)
        for a, s in zip(i, ostr):
            flat = flat + a * s
        idx = []
        for k, (s, d) in enumerate(zip(istr, x.shape)):
            q = flat // s if not (isinstance(s, Const) and s.value == 1) else flat
            idx.append(q % d if k > 0 else q)
        return x.at(*idx)
    return View(tuple(shape), x.dtype, f)


@lowering("reshape", "flatten", "squeeze", "unsqueeze")
def _reshape(ctx: Ctx, op: Op, xs: list[View]) -> View:
    return reshaped(xs[0], out_shape(ctx, op))


@lowering("transpose")
def _transpose(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    perm = list(attrs_of(op)["perm"]) or list(range(x.ndim))[::-1]
    shape = out_shape(ctx, op)

    def f(*i: Expr) -> Expr:
        idx: list[Any] = [None] * x.ndim
        for k, p in enumerate(perm):
            idx[p] = i[k]
        return x.at(*idx)
    return View(shape, x.dtype, f)


@lowering("broadcast_to")
def _broadcast_to(ctx: Ctx, op: Op, xs: list[View]) -> View:
    shape = out_shape(ctx, op)
    return View(shape, xs[0].dtype, bview(xs[0], shape))


@lowering("concat")
def _concat(ctx: Ctx, op: Op, xs: list[View]) -> View:
    shape = out_shape(ctx, op)
    axis = normalize_axis(attrs_of(op)["axis"], len(shape))
    offsets: list[Expr] = []
    acc: Expr = Const(0)
    for x in xs:
        offsets.append(acc)
        acc = acc + as_expr(x.shape[axis])

    def f(*i: Expr) -> Expr:
        k = len(xs) - 1
        e = xs[k].at(*[a if d != axis else a - offsets[k] for d, a in enumerate(i)])
        for k in range(len(xs) - 2, -1, -1):
            ik = [a if d != axis else a - offsets[k] for d, a in enumerate(i)]
            e = select(binop("<", i[axis], offsets[k + 1]), xs[k].at(*ik), e)
        return e
    return View(shape, xs[0].dtype, f)


@lowering("split")
def _split(ctx: Ctx, op: Op, xs: list[View]) -> list[View]:
    x = xs[0]
    axis = normalize_axis(attrs_of(op)["axis"], x.ndim)
    outs = []
    off: Expr = Const(0)
    for k, r in enumerate(op.results):
        shape = ctx.shape(r)

        def f(*i: Expr, off: Expr = off) -> Expr:
            return x.at(*[a if d != axis else a + off for d, a in enumerate(i)])
        outs.append(View(shape, x.dtype, f))
        off = off + as_expr(shape[axis])
    return outs


@lowering("slice")
def _slice(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    a = attrs_of(op)
    axes = [normalize_axis(ax, x.ndim) for ax in (a["axes"] or range(len(a["starts"])))]
    steps = list(a["steps"]) or [1] * len(axes)
    starts: dict[int, Expr] = {}
    step_of: dict[int, int] = {}
    for ax, st, en, sp in zip(axes, a["starts"], a["ends"], steps):
        d = x.shape[ax]
        if not isinstance(d, int):
            if st < 0 or sp < 0:
                raise LoweringError("slice with negative start/step on a symbolic dim")
            starts[ax] = Const(st)
        else:
            # clamp like NumPy/ONNX
            if sp > 0:
                s0 = st + d if st < 0 else st
                starts[ax] = Const(min(max(s0, 0), d))
            else:
                s0 = st + d if st < 0 else st
                starts[ax] = Const(min(max(s0, -1), d - 1))
        step_of[ax] = sp
    shape = out_shape(ctx, op)

    def f(*i: Expr) -> Expr:
        return x.at(*[starts[d] + a_ * step_of[d] if d in starts else a_
                      for d, a_ in enumerate(i)])
    return View(shape, x.dtype, f)


@lowering("pad")
def _pad(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    a = attrs_of(op)
    pads = list(a["pads"])
    n = x.ndim
    before, mode = pads[:n], a["mode"]
    shape = out_shape(ctx, op)
    if mode not in ("constant", "edge", "reflect", "wrap"):
        raise LoweringError(f"pad mode {mode!r} has no kernel lowering")
    val = scalar_const(a["value"], x.dtype) if not x.dtype.is_bool else Const(bool(a["value"]), BOOL)

    def f(*i: Expr) -> Expr:
        src = [ii - b for ii, b in zip(i, before)]
        if mode == "constant":
            inside = None
            for s, d in zip(src, x.shape):
                c = binop("and", binop(">=", s, 0), binop("<", s, d))
                inside = c if inside is None else binop("and", inside, c)
            clamped = [select(binop("<", s, 0), 0, select(binop(">=", s, d), as_expr(d) - 1, s))
                       for s, d in zip(src, x.shape)]
            v = x.at(*clamped)
            return v if inside is None else select(inside, v, val)
        idx = []
        for s, d in zip(src, x.shape):
            d = as_expr(d)
            if mode == "edge":
                idx.append(select(binop("<", s, 0), 0, select(binop(">=", s, d), d - 1, s)))
            elif mode == "wrap":
                idx.append(binop("%", s, d))
            else:  # reflect (no edge repeat)
                period = binop("max", (d - 1) * 2, 1)
                m = binop("%", s, period)
                idx.append(select(binop(">=", m, d), period - m, m))
        return x.at(*idx)
    return View(shape, x.dtype, f)


@lowering("gather")
def _gather(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x, ind = xs
    axis = normalize_axis(attrs_of(op)["axis"], x.ndim)
    shape = out_shape(ctx, op)
    q = ind.ndim

    def f(*i: Expr) -> Expr:
        k = cast(ind.dtype, ind.at(*i[axis:axis + q])) if False else ind.at(*i[axis:axis + q])
        k = cast(as_expr(0).dtype, k)
        d = as_expr(x.shape[axis])
        k = select(binop("<", k, 0), k + d, k)
        # out-of-range indices are an error in ONNX; clamp so memory stays safe
        k = binop("max", binop("min", k, d - 1), 0)
        return x.at(*i[:axis], k, *i[axis + q:])
    return View(shape, x.dtype, f)


@lowering("tile")
def _tile(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    shape = out_shape(ctx, op)
    return View(shape, x.dtype, lambda *i: x.at(*[a % d for a, d in zip(i, x.shape)]))


@lowering("reverse")
def _reverse(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    axes = {normalize_axis(a, x.ndim) for a in attrs_of(op)["axes"]}
    return View(x.shape, x.dtype, lambda *i: x.at(*[
        (as_expr(d) - 1 - a) if k in axes else a for k, (a, d) in enumerate(zip(i, x.shape))]))


@lowering("trilu")
def _trilu(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    a = attrs_of(op)
    k, upper = a["k"], a["upper"]
    zero = scalar_const(0, x.dtype) if not x.dtype.is_bool else Const(False, BOOL)

    def f(*i: Expr) -> Expr:
        r, c = i[-2], i[-1]
        keep = binop(">=", c - r, k) if upper else binop("<=", c - r, k)
        return select(keep, x.at(*i), zero)
    return View(x.shape, x.dtype, f)


@lowering("full")
def _full(ctx: Ctx, op: Op, xs: list[View]) -> View:
    a = attrs_of(op)
    d = out_dtype(op)
    v = scalar_const(a["value"], d) if not d.is_bool else Const(bool(a["value"]), BOOL)
    return View(out_shape(ctx, op), d, lambda *i: v)


@lowering("range")
def _range(ctx: Ctx, op: Op, xs: list[View]) -> View:
    a = attrs_of(op)
    d = out_dtype(op)
    start, delta = a["start"], a["delta"]
    if d.is_float:
        return View(out_shape(ctx, op), d, lambda i: binop(
            "+", const(start, d), binop("*", cast(d, i), const(delta, d))))
    return View(out_shape(ctx, op), d, lambda i: cast(d, i * int(delta) + int(start)))


@lowering("one_hot")
def _one_hot(ctx: Ctx, op: Op, xs: list[View]) -> View:
    ind = xs[0]
    a = attrs_of(op)
    shape = out_shape(ctx, op)
    axis = normalize_axis(a["axis"], len(shape))
    d = out_dtype(op)
    on, off = scalar_const(a["on_value"], d), scalar_const(a["off_value"], d)
    depth = a["depth"]

    def f(*i: Expr) -> Expr:
        k = cast(as_expr(0).dtype, ind.at(*(i[:axis] + i[axis + 1:])))
        k = select(binop("<", k, 0), k + depth, k)
        return select(binop("==", k, i[axis]), on, off)
    return View(shape, d, f)
