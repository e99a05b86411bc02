"""Lowerings of the ops that fit no other family: scans (cumsum, cumprod), topk, the scatters and
element gathers, einsum, det, shape_of, tfidf_vectorizer, bitcast, and casts to and from the
narrow types (the 8- and 4-bit floats, the 4- and 2-bit integers).

Gathers, einsum and shape_of are index functions or reduction stages; scans, topk, scatters, det
and tfidf_vectorizer are hand-written loop nests (`te.extern`) whose outermost loop runs in
parallel over independent rows. Narrow values are one byte each in the low bits (see
compiler/ir/dtypes.py); casts decode and encode them with integer bit manipulation, rounding and
saturating exactly as the interpreter (ml_dtypes) does.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

from compiler.ir import dtypes as dt
from compiler.ir.core import Op
from compiler.ir.ops.linalg import parse_einsum
from compiler.ir.types import normalize_axis

from .. import te
from ..ir import (BOOL, F32, I64, Alloc, Buffer, Const, Expr, For, If, Let, Stmt, Store,
                  TensorLoad, Un, Var, as_expr, binop, call, cast, const, load, seq, select)
from ..lower import (Ctx, LoweringError, View, attrs_of, lowering, out_dtype, out_shape,
                     view_of)
from .linalg import contraction

F64 = dt.f64
U8, U16, U32, U64 = dt.u8, dt.u16, dt.u32, dt.u64
LOCAL_LIMIT = 4096  # elements: scratch buffers up to this size live on the (thread's) stack


# ------------------------------------------------------------------------------ helpers

def _low(d: dt.DType) -> bool:
    return d.name in ("f16", "bf16")


def _prod(dims: Sequence[Any]) -> Expr:
    n: Expr = Const(1)
    for d in dims:
        n = n * as_expr(d)
    return n


def _static(e: Any) -> Optional[int]:
    if isinstance(e, int):
        return e
    return e.value if isinstance(e, Const) and isinstance(e.value, int) else None


def _input(ctx: Ctx, v: View, base: str) -> te.Tensor:
    """The tensor an extern stage reads for `v`: the tensor itself when `v` reads one as it is
    (a kernel input or another stage), else `v` materialized into a new stage."""
    probe = [Var(f"{base}.probe{k}") for k in range(v.ndim)]
    e = v.at(*probe)
    if isinstance(e, TensorLoad) and list(e.indices) == probe and e.tensor.dtype == v.dtype \
            and [str(as_expr(a)) for a in e.tensor.shape] == [str(as_expr(b)) for b in v.shape] \
            and e.tensor.name not in ctx.constant_inputs:  # a weight may be stored packed
        return e.tensor
    return ctx.tensor(v, base)


def _scratch(name: str, dtype: dt.DType, numel: Any) -> Buffer:
    """A buffer for one row's working data: on the stack when small and static, else malloc'd."""
    n = _static(numel)
    if n is not None and n <= LOCAL_LIMIT:
        return Buffer(name, dtype, (max(n, 1),), "local")
    return Buffer(name, dtype, (as_expr(numel),), "heap")


def _cell(name: str, dtype: dt.DType) -> Buffer:
    """A mutable scalar of a loop nest."""
    return Buffer(name, dtype, (1,), "local")


def _get(b: Buffer) -> Expr:
    return load(b, Const(0))


def _set(b: Buffer, v: Expr) -> Stmt:
    return Store(b, Const(0), v)


def _loop(var: Var, extent: Any, body: Any, kind: str = "serial") -> For:
    return For(var, as_expr(extent), kind, body)


def _wrap_index(k: Expr, size: Any) -> Expr:
    """An index as i64 with negative values counted from the end (ONNX)."""
    k = cast(I64, k)
    return select(binop("<", k, 0), k + as_expr(size), k)


def _clamp_index(k: Expr, size: Any) -> Expr:
    """Wrapped and clamped into [0, size): out-of-range indices (an error in ONNX) read the
    nearest element instead of memory outside the tensor, as the gather lowering does."""
    d = as_expr(size)
    return binop("max", binop("min", _wrap_index(k, size), d - 1), 0)


def _in_range(k: Expr, size: Any) -> Expr:
    return binop("and", binop(">=", k, 0), binop("<", k, as_expr(size)))


def _rank1(x: View) -> View:
    """A rank-0 view as a 1-element vector (the ops along an axis treat a scalar so)."""
    if x.ndim:
        return x
    return View((1,), x.dtype, lambda i, x=x: x.at())


def _split_axis(shape: Sequence[Any], axis: int) -> tuple[Expr, Expr, Expr]:
    """(outer, n, inner): the element counts before, along and after `axis`."""
    return _prod(shape[:axis]), as_expr(shape[axis]), _prod(shape[axis + 1:])


def _reduce_op(op: str, acc: Expr, v: Expr) -> Expr:
    if op in ("max", "min") and acc.dtype.is_float:  # NaN propagates (np.maximum)
        return call("fmax_nan" if op == "max" else "fmin_nan", acc.dtype, acc, v)
    return binop({"add": "+", "mul": "*"}.get(op, op), acc, v)


# ------------------------------------------------------------------------------ scans

@lowering("cumsum", "cumprod")
def _scan(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """Running sum/product along an axis: one accumulator row per outer index, swept along the
    axis; f16/bf16 accumulate in f32 and round each output once (the interpreter's rule)."""
    x0 = xs[0]
    x = _rank1(x0)
    a = attrs_of(op)
    axis = normalize_axis(a["axis"], x.ndim)
    exclusive, reverse = a["exclusive"], a["reverse"]
    d = x.dtype
    w = F32 if _low(d) else d
    comb = "+" if op.name == "cumsum" else "*"
    ident = const(0 if comb == "+" else 1, w)
    src = _input(ctx, x, "scan_in")
    outer, n, inner = _split_axis(x.shape, axis)
    name = ctx.name(op.name)

    def build(outs: list[Buffer], ins: list[Any]) -> Stmt:
        out, xb = outs[0], ins[0].buffer
        p, k, j = Var(f"{name}.p"), Var(f"{name}.k"), Var(f"{name}.j")
        acc = _scratch(f"{name}.acc", w, inner)
        kk = (n - 1 - k) if reverse else k
        off = (p * n + kk) * inner + j
        v = cast(w, load(xb, off))
        cur = load(acc, j)
        t = Var(f"{name}.t", w)
        if exclusive:
            step = seq(Store(out, off, cast(d, cur)), Store(acc, j, binop(comb, cur, v)))
        else:
            step = Let(t, binop(comb, cur, v), seq(Store(acc, j, t), Store(out, off, cast(d, t))))
        j0 = Var(f"{name}.j0")
        row = Alloc(acc, seq(_loop(j0, inner, Store(acc, j0, ident)),
                             _loop(k, n, _loop(j, inner, step))))
        return _loop(p, outer, row, "parallel")
    t = te.extern(name, [(x.shape, d)], [src], build)[0]
    v = view_of(t)
    if x0.ndim == 0:
        return View((), d, lambda v=v: v.at(Const(0)))
    return v


# ------------------------------------------------------------------------------ topk

def _better(largest: bool, a: Expr, b: Expr) -> Expr:
    """Whether a ranks strictly before b: larger (smaller) first, NaN above every number."""
    c = binop(">" if largest else "<", a, b)
    if not a.dtype.is_float:
        return c
    an, bn = call("isnan", BOOL, a), call("isnan", BOOL, b)
    if largest:
        return binop("or", c, binop("and", an, Un("not", bn, BOOL, 1)))
    return binop("or", c, binop("and", bn, Un("not", an, BOOL, 1)))


INSERTION_MAX_K = 32  # above this, topk sorts each row (insertion costs up to n*k)


@lowering("topk")
def _topk(ctx: Ctx, op: Op, xs: list[View]) -> list[View]:
    """The k best of each row, in order; ties keep the lower index first and NaN ranks above
    every number (the reference). Small k: insertion into the sorted output; large k: a
    stable merge sort of the row."""
    x = xs[0]
    a = attrs_of(op)
    axis = normalize_axis(a["axis"], x.ndim)
    k, largest = int(a["k"]), bool(a["largest"])
    d = x.dtype
    shape = out_shape(ctx, op)
    src = _input(ctx, x, "topk_in")
    outer, n, inner = _split_axis(x.shape, axis)
    name = ctx.name("topk")

    def build(outs: list[Buffer], ins: list[Any]) -> Stmt:
        vo, io = outs
        xb = ins[0].buffer
        r = Var(f"{name}.r")
        if k == 0:
            return seq()
        p, j = r // inner, r % inner
        xat = lambda q: p * n * inner + j + q * inner  # noqa: E731
        oat = lambda q: p * k * inner + j + q * inner  # noqa: E731
        make = _insertion_row if k <= INSERTION_MAX_K else _merge_sort_row
        row = make(name, k, n, largest, d, xb, vo, io, xat, oat)
        return _loop(r, outer * inner, row, "parallel")
    vt, it = te.extern(name, [(shape, d), (shape, I64)], [src], build)
    return [view_of(vt), view_of(it)]


def _insertion_row(name: str, k: int, n: Expr, largest: bool, d: dt.DType, xb: Buffer,
                   vo: Buffer, io: Buffer, xat: Callable, oat: Callable) -> Stmt:
    """Elements arrive in index order and go after their equals (a strict comparison)."""
    i, s = Var(f"{name}.i"), Var(f"{name}.s")
    cnt, pos = _cell(f"{name}.cnt", I64), _cell(f"{name}.pos", I64)
    v = load(xb, xat(i))
    q = _get(pos)
    shift = If(binop("and", binop(">", q, 0), _better(largest, v, load(vo, oat(q - 1)))),
               seq(Store(vo, oat(q), load(vo, oat(q - 1))),
                   Store(io, oat(q), load(io, oat(q - 1))),
                   _set(pos, q - 1)))
    c = _get(cnt)
    admit = binop("or", binop("<", c, k), _better(largest, v, load(vo, oat(Const(k - 1)))))
    insert = If(admit, seq(_set(pos, binop("min", c, k - 1)),
                           _loop(s, k - 1, shift) if k > 1 else None,
                           Store(vo, oat(_get(pos)), v),
                           Store(io, oat(_get(pos)), i),
                           _set(cnt, binop("min", c + 1, k))))
    return Alloc(cnt, Alloc(pos, seq(_set(cnt, Const(0)), _loop(i, n, insert))))


def _merge_sort_row(name: str, k: int, n: Expr, largest: bool, d: dt.DType, xb: Buffer,
                    vo: Buffer, io: Buffer, xat: Callable, oat: Callable) -> Stmt:
    """Bottom-up merge sort of (value, index) pairs between two scratch buffers; the left run
    wins ties (its indices are lower), so the order is stable. Then the first k are copied."""
    va, vb = _scratch(f"{name}.va", d, n), _scratch(f"{name}.vb", d, n)
    ia, ib = _scratch(f"{name}.ia", I64, n), _scratch(f"{name}.ib", I64, n)
    width, cur = _cell(f"{name}.w", I64), _cell(f"{name}.cur", I64)
    li, ri = _cell(f"{name}.li", I64), _cell(f"{name}.ri", I64)
    e, ps, blk, t = (Var(f"{name}.{v}") for v in ("e", "pass", "blk", "t"))
    w = _get(width)
    lo = blk * (w * 2)
    mid = binop("min", lo + w, n)
    hi = binop("min", lo + w * 2, n)

    def merge(sv: Buffer, si: Buffer, dv: Buffer, di: Buffer) -> Stmt:
        il, ir_ = _get(li), _get(ri)
        last = n - 1
        lv = load(sv, binop("min", il, last))
        rv = load(sv, binop("min", ir_, last))
        take_left = binop("and", binop("<", il, mid), binop(
            "or", binop(">=", ir_, hi), Un("not", _better(largest, rv, lv), BOOL, 1)))
        step = If(take_left,
                  seq(Store(dv, lo + t, lv), Store(di, lo + t, load(si, il)), _set(li, il + 1)),
                  seq(Store(dv, lo + t, rv), Store(di, lo + t, load(si, ir_)),
                      _set(ri, ir_ + 1)))
        return _loop(blk, (n + w * 2 - 1) // (w * 2), seq(
            _set(li, lo), _set(ri, mid), _loop(t, hi - lo, step)))
    static_n = _static(n)
    passes = max(1, math.ceil(math.log2(static_n))) if static_n and static_n > 1 else 63
    one_pass = If(binop("<", w, n), seq(
        If(binop("==", _get(cur), 0), merge(va, ia, vb, ib), merge(vb, ib, va, ia)),
        _set(cur, Const(1) - _get(cur)), _set(width, w * 2)))
    q = Var(f"{name}.q")
    out = If(binop("==", _get(cur), 0),
             _loop(q, k, seq(Store(vo, oat(q), load(va, q)), Store(io, oat(q), load(ia, q)))),
             _loop(q, k, seq(Store(vo, oat(q), load(vb, q)), Store(io, oat(q), load(ib, q)))))
    body = seq(_loop(e, n, seq(Store(va, e, load(xb, xat(e))), Store(ia, e, e))),
               _set(width, Const(1)), _set(cur, Const(0)),
               _loop(ps, passes, one_pass), out)
    for b in (va, vb, ia, ib, width, cur, li, ri):
        body = Alloc(b, body)
    return body


# ------------------------------------------------------------------------------ gathers

@lowering("gather_elements")
def _gather_elements(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x, ind = xs
    axis = normalize_axis(attrs_of(op)["axis"], x.ndim)

    def f(*i: Expr) -> Expr:
        k = _clamp_index(ind.at(*i), x.shape[axis])
        return x.at(*i[:axis], k, *i[axis + 1:])
    return View(ind.shape, x.dtype, f)


@lowering("gather_nd")
def _gather_nd(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x, ind = xs
    b = attrs_of(op)["batch_dims"]
    m = _static(ind.shape[-1])
    q = ind.ndim
    if m is None:
        raise LoweringError("gather_nd needs a static index depth")

    def f(*i: Expr) -> Expr:
        lead = i[:q - 1]
        coords = [_clamp_index(ind.at(*lead, Const(c)), x.shape[b + c]) for c in range(m)]
        return x.at(*i[:b], *coords, *i[q - 1:])
    return View(out_shape(ctx, op), x.dtype, f)


# ------------------------------------------------------------------------------ scatters

def _scatter(ctx: Ctx, op: Op, xs: list[View], targets: Callable[..., Any]) -> View:
    """x copied to the output, then every update combined into its target in order (so the last
    of duplicate targets wins for "none"); out-of-range targets are skipped. f16/bf16
    reductions accumulate in an f32 copy and round once, as the interpreter does.

    targets(name, index buffer) -> (loops over the updates as (var, extent) pairs, flat target
    offset, in-range condition, flat update offset, length of a contiguous run of updates)."""
    x, ind, upd = xs
    red = attrs_of(op)["reduction"]
    d = x.dtype
    if red != "none" and (d.is_narrow or d.is_bool):
        raise LoweringError(f"{op.name} reduction '{red}' on {d.name} has no kernel lowering "
                            "(cast to a standard type first)")
    w = F32 if (_low(d) and red != "none") else d
    srcs = [_input(ctx, x, "scatter_x"), _input(ctx, ind, "scatter_ind"),
            _input(ctx, upd, "scatter_upd")]
    name = ctx.name(op.name)
    numel = _prod(x.shape)

    def build(outs: list[Buffer], ins: list[Any]) -> Stmt:
        out = outs[0]
        xb, ib, ub = (h.buffer for h in ins)
        acc = out if w == d else Buffer(f"{name}.acc", w, (numel,), "heap")
        e = Var(f"{name}.e")
        copy = _loop(e, numel, Store(acc, e, cast(w, load(xb, e))), "parallel")
        loops, target, ok, uoff, run = targets(name, ib)
        t = Var(f"{name}.t")
        u = cast(w, load(ub, uoff + t))
        dst = target + t
        val = u if red == "none" else _reduce_op(red, load(acc, dst), u)
        body: Stmt = If(ok, _loop(t, run, Store(acc, dst, val)))
        for v, ext in reversed(loops):
            body = _loop(v, ext, body)
        if acc is out:
            return seq(copy, body)
        back = _loop(e, numel, Store(out, e, cast(d, load(acc, e))), "parallel")
        return Alloc(acc, seq(copy, body, back))
    t = te.extern(name, [(x.shape, d)], srcs, build)[0]
    return view_of(t)


def _strides(shape: Sequence[Any]) -> list[Expr]:
    out: list[Expr] = []
    acc: Expr = Const(1)
    for s in reversed(shape):
        out.append(acc)
        acc = acc * as_expr(s)
    return out[::-1]


@lowering("scatter_elements")
def _scatter_elements(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x, ind = xs[0], xs[1]
    axis = normalize_axis(attrs_of(op)["axis"], x.ndim)
    xstr, istr = _strides(x.shape), _strides(ind.shape)

    def targets(name: str, ib: Buffer) -> tuple:
        vs = [Var(f"{name}.i{k}") for k in range(ind.ndim)]
        ioff = sum((v * s for v, s in zip(vs, istr)), Const(0))
        k = _wrap_index(load(ib, ioff), x.shape[axis])
        tgt = sum(((k if a == axis else v) * s for a, (v, s) in enumerate(zip(vs, xstr))),
                  Const(0))
        return list(zip(vs, ind.shape)), tgt, _in_range(k, x.shape[axis]), ioff, Const(1)
    return _scatter(ctx, op, xs, targets)


@lowering("scatter_nd")
def _scatter_nd(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x, ind = xs[0], xs[1]
    kd = _static(ind.shape[-1])
    if kd is None:
        raise LoweringError("scatter_nd needs a static index depth")
    xstr = _strides(x.shape)
    count = _prod(ind.shape[:-1])
    run = _prod(x.shape[kd:])

    def targets(name: str, ib: Buffer) -> tuple:
        nv = Var(f"{name}.n")
        tgt: Expr = Const(0)
        ok: Optional[Expr] = None
        for c in range(kd):
            k = _wrap_index(load(ib, nv * kd + c), x.shape[c])
            tgt = tgt + k * xstr[c]
            inr = _in_range(k, x.shape[c])
            ok = inr if ok is None else binop("and", ok, inr)
        return [(nv, count)], tgt, ok, nv * run, run
    return _scatter(ctx, op, xs, targets)


# ------------------------------------------------------------------------------ einsum

def _einsum_labels(equation: str, views: Sequence[View]) -> tuple[list[list[str]], list[str]]:
    """Per-operand and output label lists with '...' expanded into labels '.0', '.1', ...,
    right-aligned across operands as NumPy broadcasts them."""
    ins, out = parse_einsum(equation, [v.ndim for v in views])
    n_ell = 0
    for lab, v in zip(ins, views):
        if "..." in lab:
            n_ell = max(n_ell, v.ndim - (len(lab) - 1))
    ell = [f".{k}" for k in range(n_ell)]

    def expand(lab: list[str], rank: int) -> list[str]:
        if "..." not in lab:
            return list(lab)
        k = lab.index("...")
        m = rank - (len(lab) - 1)
        return lab[:k] + ell[n_ell - m:] + lab[k + 1:]
    ins2 = [expand(lab, v.ndim) for lab, v in zip(ins, views)]
    out2 = expand(out, len(out) - 1 + n_ell) if "..." in out else list(out)
    return ins2, out2


def _label_view(v: View, lab: list[str], order: list[str], sizes: dict[str, Any]) -> View:
    """Operand `v` (labels `lab`, repeats read the diagonal) as a view over labels `order`;
    a label it lacks, or has with size 1 where the einsum's is larger, is a size-1 dim."""
    def keep(x: str) -> bool:
        if x not in lab:
            return False
        d = v.shape[lab.index(x)]
        return not (isinstance(d, int) and d == 1 and _static(sizes[x]) != 1)
    shape = tuple(v.shape[lab.index(x)] if keep(x) else 1 for x in order)

    def f(*i: Expr) -> Expr:
        env = dict(zip(order, i))
        return v.at(*[env[x] if keep(x) else Const(0) for x in lab])
    return View(shape, v.dtype, f)


@lowering("einsum")
def _einsum(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """A reduction over the contracted labels of the product of the operands; a two-operand
    equation of the batched-matmul form becomes a contraction (the matmul schedule)."""
    d = out_dtype(op)
    w = F32 if _low(d) else d
    ins, out = _einsum_labels(attrs_of(op)["equation"], xs)
    shape = out_shape(ctx, op)
    sizes: dict[str, Any] = dict(zip(out, shape))
    for lab, v in zip(ins, xs):
        for x, s in zip(lab, v.shape):
            if x not in sizes or _static(sizes[x]) == 1:
                sizes[x] = s
    red = []
    for lab in ins:
        for x in lab:
            if x not in out and x not in red:
                red.append(x)
    res = _einsum_as_matmul(ctx, ins, out, red, xs, sizes, shape, w)
    if res is None:
        order = out + red
        views = [_label_view(v, lab, order, sizes) for lab, v in zip(ins, xs)]

        def body(*vs: Expr) -> Expr:
            e: Optional[Expr] = None
            for v in views:
                t = cast(w, v.at(*vs))
                e = t if e is None else binop("*", e, t)
            return e
        if red:
            res = ctx.reduce("einsum", shape, [sizes[x] for x in red], body, "+", const(0, w))
        else:
            res = View(shape, w, body)
    if w == d:
        return res
    return View(res.shape, d, lambda *i, res=res: cast(d, res.at(*i)))


def _einsum_as_matmul(ctx: Ctx, ins: list[list[str]], out: list[str], red: list[str],
                      xs: list[View], sizes: dict[str, Any], shape: tuple,
                      w: dt.DType) -> Optional[View]:
    """out = batch + [i, j] with one contracted label k: a batched matmul."""
    if len(xs) != 2 or len(red) != 1 or len(out) < 2:
        return None
    (la, lb), k = ins, red[0]
    if any(len(set(lab)) != len(lab) for lab in ins) or k not in la or k not in lb:
        return None
    i, j, batch = out[-2], out[-1], out[:-2]
    if i not in la or i in lb or j not in lb or j in la:
        return None
    if any(x not in batch + [i, j, k] for x in la + lb):
        return None
    a = _label_view(xs[0], la, batch + [i, k], sizes)
    b = _label_view(xs[1], lb, batch + [k, j], sizes)
    return contraction(ctx, a, b, tuple(shape), "einsum", acc=w if w != a.dtype else None)


# ------------------------------------------------------------------------------ det

@lowering("det")
def _det(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """LU with partial pivoting in f64, the determinant as sign * exp(sum log|pivot|) (as NumPy
    computes it from LAPACK's getrf); rounded once (through f32 for f16/bf16, as the
    interpreter rounds). A zero pivot column gives 0."""
    x = xs[0]
    d = x.dtype
    m = as_expr(x.shape[-1])
    batch = x.shape[:-2]
    src = _input(ctx, x, "det_in")
    name = ctx.name("det")
    mm = m * m

    def build(outs: list[Buffer], ins: list[Any]) -> Stmt:
        out, xb = outs[0], ins[0].buffer
        r, e, c, i, j = (Var(f"{name}.{s}") for s in ("r", "e", "c", "i", "j"))
        A = _scratch(f"{name}.a", F64, mm)
        sign, logdet, best = (_cell(f"{name}.{s}", F64) for s in ("sign", "logdet", "best"))
        piv = _cell(f"{name}.piv", I64)
        at = lambda row, col: row * m + col  # noqa: E731
        absf = lambda v: call("fabs", F64, v)  # noqa: E731
        one, zero = const(1.0, F64), const(0.0, F64)
        ci, cj = c + 1 + i, c + 1 + j
        find = seq(_set(piv, c), _set(best, absf(load(A, at(c, c)))),
                   _loop(i, m - c - 1, If(
                       binop(">", absf(load(A, at(ci, c))), _get(best)),
                       seq(_set(piv, ci), _set(best, absf(load(A, at(ci, c))))))))
        p = _get(piv)
        tv, f = Var(f"{name}.tv", F64), Var(f"{name}.f", F64)
        swap = If(binop("!=", p, c), seq(
            _loop(j, m, Let(tv, load(A, at(c, j)), seq(
                Store(A, at(c, j), load(A, at(p, j))), Store(A, at(p, j), tv)))),
            _set(sign, Un("neg", _get(sign), F64, 1))))
        elim = _loop(i, m - c - 1, Let(
            f, binop("/", load(A, at(ci, c)), load(A, at(c, c))),
            _loop(j, m - c - 1, Store(A, at(ci, cj), binop(
                "-", load(A, at(ci, cj)), binop("*", f, load(A, at(c, cj))))))))
        pv = load(A, at(c, c))
        acc = seq(_set(sign, select(binop("<", pv, zero), Un("neg", _get(sign), F64, 1),
                                    _get(sign))),
                  _set(logdet, binop("+", _get(logdet), call("log", F64, absf(pv)))))
        col = seq(find, If(binop("!=", _get(best), zero), seq(swap, elim, acc),
                           _set(sign, zero)))
        res = binop("*", _get(sign), call("exp", F64, _get(logdet)))
        if _low(d):
            res = cast(F32, res)
        row = Alloc(A, Alloc(sign, Alloc(logdet, Alloc(piv, Alloc(best, seq(
            _loop(e, mm, Store(A, e, cast(F64, load(xb, r * mm + e)))),
            _set(sign, one), _set(logdet, zero),
            _loop(c, m, col),
            Store(out, r, cast(d, res))))))))
        return _loop(r, _prod(batch), row, "parallel")
    t = te.extern(name, [(batch, d)], [src], build)[0]
    return view_of(t)


# ------------------------------------------------------------------------------ shape_of

@lowering("shape_of")
def _shape_of(ctx: Ctx, op: Op, xs: list[View]) -> View:
    a = attrs_of(op)
    dims = [cast(I64, as_expr(s)) for s in xs[0].shape][a["start"]:a["end"]]

    def f(i: Expr) -> Expr:
        if isinstance(i, Const):
            return dims[i.value]
        e = dims[-1]
        for k in range(len(dims) - 2, -1, -1):
            e = select(binop("==", i, k), dims[k], e)
        return e
    return View((len(dims),), I64, f)


# ------------------------------------------------------------------------------ tfidf

@lowering("tfidf_vectorizer")
def _tfidf(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """Counts of the pool's n-grams in each row: one loop over window starts per n-gram and
    skip (the pool is an attribute, so the n-grams are unrolled), then the weights."""
    from compiler.ir.ops.misc_extra import _pool_ngrams
    x = xs[0]
    a = attrs_of(op)
    size = max(a["ngram_indexes"]) + 1
    shape = out_shape(ctx, op)
    c = x.shape[-1]
    rows = _prod(x.shape[:-1])
    grams = _pool_ngrams(a["pool"], a["ngram_counts"], a["min_gram_length"],
                         a["max_gram_length"])
    src = _input(ctx, x, "tfidf_in")
    name = ctx.name("tfidf")
    mode, weights = a["mode"], list(a["weights"])

    def build(outs: list[Buffer], ins: list[Any]) -> Stmt:
        out, xb = outs[0], ins[0].buffer
        r, s = Var(f"{name}.r"), Var(f"{name}.s")
        cnt = Buffer(f"{name}.cnt", I64, (size,), "local")
        body: list[Any] = [Store(cnt, Const(k), Const(0)) for k in range(size)]
        for n, entries in sorted(grams.items()):
            table = {g: a["ngram_indexes"][k] for g, k in entries}  # a repeat: the last wins
            for skip in range(1 if n == 1 else a["max_skip_count"] + 1):
                step = skip + 1
                starts = binop("max", as_expr(c) - step * (n - 1), 0)
                hits = []
                for g, col in table.items():
                    match: Optional[Expr] = None
                    for q, tok in enumerate(g):
                        e = binop("==", cast(I64, load(xb, r * c + s + q * step)), tok)
                        match = e if match is None else binop("and", match, e)
                    hits.append(If(match, Store(cnt, Const(col), load(cnt, Const(col)) + 1)))
                if hits:
                    body.append(_loop(s, starts, seq(*hits)))
        for col in range(size):
            v = load(cnt, Const(col))
            f = cast(F32, v)
            wv = const(weights[col] if weights else 1.0, F32)
            if mode == "IDF":
                f = select(binop(">", v, 0), wv, const(0.0, F32))
            elif mode == "TFIDF":
                f = binop("*", wv, f)
            body.append(Store(out, r * size + col, f))
        return _loop(r, rows, Alloc(cnt, seq(*body)), "parallel")
    t = te.extern(name, [(shape, F32)], [src], build)[0]
    return view_of(t)


# ------------------------------------------------------------------------------ bitcast

def _raw_bits(e: Expr) -> Expr:
    """The bits of a value as an unsigned integer of its width."""
    d = e.dtype
    if d.is_bool:
        return cast(U8, e)
    if d.name == "bf16":  # registers hold the value as f32; its top half is the bf16
        return cast(U16, binop(">>", call("bitcast", U32, cast(F32, e)), const(16, U32)))
    if d.is_narrow:
        return call("bitcast", U8, e)
    u = {8: U8, 16: U16, 32: U32, 64: U64}[d.bits]
    if d.is_float:
        return call("bitcast", u, e)
    return cast(u, e)


def _from_bits(r: Expr, to: dt.DType) -> Expr:
    if to.is_bool:  # a byte other than 0 or 1 reads as true (the interpreter's rule)
        return binop("!=", r, const(0, r.dtype))
    if to.name == "bf16":
        return cast(to, call("bitcast", F32, binop("<<", cast(U32, r), const(16, U32))))
    if to.is_narrow:
        if to.bits < 8:
            r = binop("&", cast(U8, r), const((1 << to.bits) - 1, U8))
        return call("bitcast", to, r)
    if to.is_float:
        return call("bitcast", to, r)
    return cast(to, r)


def bitcast_value(e: Expr, to: dt.DType) -> Expr:
    """The same bits read as `to` (of equal width), as the bitcast op defines it."""
    if e.dtype == to:
        return e
    return _from_bits(_raw_bits(e), to)


@lowering("bitcast")
def _bitcast(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    to = out_dtype(op)
    return View(x.shape, to, lambda *i: bitcast_value(x.at(*i), to))


# ------------------------------------------------------------------------------ narrow casts
# name: (exponent bits, mantissa bits, exponent bias, special values)
#   ieee: inf and nans at the top exponent; fn: the all-ones pattern is nan (no inf);
#   fnuz: 0x80 is the one nan (no inf, no -0); none: neither (f4e2m1).
NARROW_FLOATS = {
    "f8e4m3fn": (4, 3, 7, "fn"),
    "f8e5m2": (5, 2, 15, "ieee"),
    "f8e4m3fnuz": (4, 3, 8, "fnuz"),
    "f8e5m2fnuz": (5, 2, 16, "fnuz"),
    "f4e2m1": (2, 1, 1, "none"),
}
_F8_SATURATING = ("f8e4m3fn", "f8e5m2", "f8e4m3fnuz", "f8e5m2fnuz")


def _u(v: int, d: dt.DType = U32) -> Expr:
    return const(v, d)


def _f32_bits(bits: Expr) -> Expr:
    return call("bitcast", F32, bits)


def decode_narrow_float(e: Expr) -> Expr:
    """A narrow float as the f32 of the same value (exact)."""
    d = e.dtype
    u = cast(U32, call("bitcast", U8, e))
    if d.name == "f8e8m0":  # 2**(u - 127); u = 0 is the f32 subnormal 2**-127; 255 is nan
        v = _f32_bits(select(binop("==", u, _u(0)), _u(0x00400000), binop("<<", u, _u(23))))
        return select(binop("==", u, _u(0xFF)), const(math.nan, F32), v)
    E, M, B, kind = NARROW_FLOATS[d.name]
    sign = binop("&", binop(">>", u, _u(E + M)), _u(1))
    ex = binop("&", binop(">>", u, _u(M)), _u((1 << E) - 1))
    man = binop("&", u, _u((1 << M) - 1))
    sbit = binop("<<", sign, _u(31))
    normal = _f32_bits(binop("|", binop("|", sbit, binop("<<", ex + _u(127 - B), _u(23))),
                             binop("<<", man, _u(23 - M))))
    sub = binop("*", cast(F32, man), const(2.0 ** (1 - B - M), F32))
    sub = select(binop("!=", sign, _u(0)), Un("neg", sub, F32, 1), sub)
    v = select(binop("==", ex, _u(0)), sub, normal)
    nan = _f32_bits(binop("|", sbit, _u(0x7FC00000)))
    if kind == "ieee":
        top = binop("==", ex, _u((1 << E) - 1))
        inf = _f32_bits(binop("|", sbit, _u(0x7F800000)))
        v = select(top, select(binop("==", man, _u(0)), inf, nan), v)
    elif kind == "fn":
        v = select(binop("==", binop("&", u, _u(0x7F)), _u(0x7F)), nan, v)
    elif kind == "fnuz":
        v = select(binop("==", u, _u(0x80)), nan, v)
    return v


def decode_narrow_int(e: Expr) -> Expr:
    """A 4- or 2-bit integer as i64 (sign-extended for the signed ones)."""
    d = e.dtype
    b = cast(I64, binop("&", call("bitcast", U8, e), _u((1 << d.bits) - 1, U8)))
    if d.kind == "narrow_int":
        s = 1 << (d.bits - 1)
        b = binop("-", binop("^", b, s), s)
    return b


def _encode_float(y: Expr, to: dt.DType) -> Expr:
    """Round f32 `y` to the narrow float `to`, half to even (ml_dtypes): the bit pattern as a
    u8. Out-of-range values overflow to inf (ieee), nan (fn, fnuz) or the largest value
    (f4e2m1, which always saturates); nan becomes the type's nan (f4e2m1: a zero of the
    opposite sign, as ml_dtypes gives)."""
    E, M, B, kind = NARROW_FLOATS[to.name]
    U = U32
    u = call("bitcast", U, y)
    sign = binop(">>", u, _u(31))
    a = binop("&", u, _u(0x7FFFFFFF))
    isnan = binop(">", a, _u(0x7F800000))
    sh = 23 - M
    rounded = binop(">>", a + _u((1 << (sh - 1)) - 1) + binop("&", binop(">>", a, _u(sh)),
                                                              _u(1)), _u(sh))
    r_norm = binop("-", rounded, _u((127 - B) << M))
    # below the smallest normal: scale so that one subnormal step is 1 and round (exact)
    scaled = binop("*", call("bitcast", F32, a), const(2.0 ** (B - 1 + M), F32))
    r_sub = cast(U, call("round", F32, scaled))
    mag = select(binop("<", a, _u((127 - B + 1) << 23)), r_sub, r_norm)
    top = (1 << (E + M)) - 1
    maxcode = {"ieee": (((1 << E) - 1) << M) - 1, "fn": top - 1, "fnuz": top, "none": top}[kind]
    over = binop(">", mag, _u(maxcode, U))
    sgn = binop("<<", sign, _u(E + M, U))
    if kind == "fnuz":  # overflow and nan give the one nan, 0x80; zero has no sign
        code = select(binop("==", mag, _u(0, U)), _u(0, U), binop("|", sgn, mag))
        code = select(binop("or", over, isnan), _u(0x80, U), code)
        return cast(U8, code)
    over_to = {"ieee": ((1 << E) - 1) << M, "fn": top, "none": top}[kind]
    code = binop("|", sgn, select(over, _u(over_to, U), mag))
    if kind == "ieee":  # the quiet nan: top exponent, high mantissa bit
        nan = binop("|", sgn, _u(over_to | (1 << (M - 1)), U))
    elif kind == "fn":
        nan = binop("|", sgn, _u(top, U))
    else:
        nan = binop("<<", binop("^", sign, _u(1, U)), _u(E + M, U))
    return cast(U8, select(isnan, nan, code))


def _encode_e8m0(y: Expr, saturate: bool, round_mode: str) -> Expr:
    """f32 -> f8e8m0 (onnx.numpy_helper.to_float8e8m0): the exponent, rounded by round_mode."""
    bits = call("bitcast", U32, y)
    ex = binop("&", binop(">>", bits, _u(23)), _u(0xFF))
    special = binop("==", ex, _u(0xFF))
    if round_mode == "up":
        up = binop(">", binop("&", bits, _u(0x7FFFFF)), _u(0))
    elif round_mode == "nearest":
        guard = binop(">", binop("&", bits, _u(0x400000)), _u(0))
        rest = binop(">", binop("&", bits, _u(0x3FFFFF)), _u(0))
        up = binop("and", guard, binop("or", rest, binop(">", ex, _u(0))))
    else:
        up = Const(False, BOOL)
    if saturate:
        up = binop("and", up, binop("!=", ex, _u(0xFE)))
    out = select(special, _u(0xFF), ex + select(up, _u(1), _u(0)))
    return cast(U8, out)


_WIDE_SOURCES = ("f64", "i32", "i64", "u32", "u64")


def _to_narrow_float(v: Expr, to: dt.DType, saturate: bool, round_mode: str) -> Expr:
    """A standard value (float, int or bool) to the narrow float `to`."""
    if v.dtype.is_bool:
        v = cast(F32, v)
    if to.name == "f8e8m0":
        return call("bitcast", to, _encode_e8m0(cast(F32, v), saturate, round_mode))
    # NumPy clamps in f64 for f64 and the 32/64-bit ints, else in f32; ml_dtypes then rounds
    # through f32 (so an f64 is rounded twice)
    y = cast(F64 if v.dtype.name in _WIDE_SOURCES else F32, v)
    if saturate and to.name in _F8_SATURATING:
        hi = const(to.float_max(), y.dtype)
        lo = const(-to.float_max(), y.dtype)
        y = select(binop(">", y, hi), hi, select(binop("<", y, lo), lo, y))
    return call("bitcast", to, _encode_float(cast(F32, y), to))


def _to_narrow_int(v: Expr, to: dt.DType) -> Expr:
    """Truncate toward zero and keep the low bits (floats outside the i32 range, nan and inf
    give 0, as ml_dtypes converts through a C int)."""
    if v.dtype.is_float:
        w = F64 if v.dtype == F64 else F32
        t = call("trunc", w, cast(w, v))
        ok = binop("and", binop(">=", t, const(-2.0 ** 31, w)), binop("<", t, const(2.0 ** 31, w)))
        v = select(ok, cast(I64, t), Const(0))
    bits = binop("&", cast(U8, v), _u((1 << to.bits) - 1, U8))
    return call("bitcast", to, bits)


def narrow_cast(x: Expr, to: dt.DType, saturate: bool = True, round_mode: str = "up") -> Expr:
    """Cast `x` where the source or the target is a narrow type, bit for bit as the cast op's
    reference: narrow values go through f32 (floats) or i64 (ints). Narrow float -> standard
    int gives 0 for nan and the extremes for +-inf; finite values out of the target's range
    saturate, as the other float -> int casts of the kernel lowering do (the reference leaves
    them to NumPy's platform-dependent conversion)."""
    src = x.dtype
    if src == to and not (saturate and to.name == "f8e5m2"):
        return x
    if src.is_narrow_float and to.is_integral:
        f = decode_narrow_float(x)
        if not to.is_narrow_int:
            return cast(to, f)  # saturating, nan -> 0
        bits = _to_narrow_int(f, to)
        mask = _u((1 << to.bits) - 1, U8)
        posinf = binop("==", f, const(math.inf, F32))
        return select(posinf, call("bitcast", to, mask), bits)  # +inf is INT32_MAX's low bits
    if src.is_narrow_float:
        v = decode_narrow_float(x)
    elif src.is_narrow_int:
        v = decode_narrow_int(x)
    else:
        v = x
    if to.is_bool:
        return binop("!=", v, const(0, v.dtype))
    if to.is_narrow_int:
        return _to_narrow_int(v, to)
    if to.is_narrow_float:
        return _to_narrow_float(v, to, saturate, round_mode)
    if to.name == "bf16" and not v.dtype.is_float:
        v = cast(F64, v)
    return cast(to, v)
