"""Neural-network ops: convolutions, pooling, resize, sampling, ROI ops and normalizations.

Layout is channels-first ([N, C, *spatial]); `pads` lists the begins of every spatial axis, then
the ends (ONNX order). Each op's meaning is its NumPy reference (compiler/ir/ops/nn.py,
nn_extra.py, misc_extra.py, normalization.py); lowerings follow the reference's arithmetic
(accumulation dtype, f64 coordinate math, operation order) so results agree to rounding.

- conv: a register-blocked matrix product over (output channels x output positions) in a
  hand-written loop nest, reading the input in place or through im2col (see _conv_gemm);
  with a symbolic channel count, one reduction stage per output element (the default schedule
  vectorizes it along the output row). conv_transpose, deform_conv: reduction stages over
  (input channel, kernel taps); padding is a select on the read with the index clamped, so
  loads stay in bounds.
- max_pool, avg_pool, global pools: reduction stages over the window taps.
- resize, resize_general, grid_sample: gathers with interpolation weights, inlined into their
  consumer; the per-output tap indices and weights are small tables computed once.
- depth_to_space, space_to_depth, batch_norm: index functions.
- instance_norm, group_norm: per-group mean and variance in a hand-written loop nest, then an
  elementwise view.
- max_pool_with_indices, roi_align, max_roi_pool: hand-written loop nests: the first-maximum
  scan order, windows with data-dependent extents.
f16 and bf16 accumulate in f32, as the references do. The registry has no lp_pool op (the ONNX
frontend writes LpPool as a conv), so there is no lowering for one here.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Optional, Sequence

from compiler.ir import dtypes as dt
from compiler.ir.core import Op

from .. import te
from ..ir import (BOOL, F32, I64, Alloc, Buffer, Const, Expr, For, If, Let, Load, Stmt, Store,
                  TensorLoad, Var, as_expr, binop, call, cast, const, maximum, minimum, select,
                  seq)
from ..lower import (Ctx, LoweringError, View, attrs_of, lowering, out_dtype, out_shape,
                     view_of)
from .reduction import _lowest, reduce_view

F64 = dt.dtype("f64")
# roi_align's adaptive sampling count per axis (ceil(roi size / bins)) is capped here: an roi
# over 4096 bins tall would take hours (the reference runs out of memory long before)
MAX_SAMPLES = 4096


# ------------------------------------------------------------------------------ helpers

def _acc(d: dt.DType) -> dt.DType:
    """Accumulation dtype: f16/bf16 accumulate in f32; other types in themselves."""
    return F32 if d.name in ("f16", "bf16") else d


def _to(d: dt.DType, e: Expr) -> Expr:
    return cast(d, e)


def _all(conds: Sequence[Optional[Expr]]) -> Optional[Expr]:
    out: Optional[Expr] = None
    for c in conds:
        if c is not None:
            out = c if out is None else binop("and", out, c)
    return out


def _clamp(i: Expr, n: Any) -> Expr:
    """i clamped to [0, n - 1] (an index that stays in bounds whatever i is)."""
    return maximum(minimum(i, as_expr(n) - 1), 0)


def _safe_int(f: Expr, lo: int = -(2 ** 40), hi: int = 2 ** 40) -> Expr:
    """A float from data (a coordinate, an roi corner) as i64 clamped to [lo, hi], so that the
    integer arithmetic after it cannot overflow (the cast saturates and sends NaN to 0)."""
    return maximum(minimum(cast(I64, f), hi), lo)


def _window(a: dict, d: int) -> tuple[list[int], list[int], list[int]]:
    """strides, pads (begins then ends) and dilations with the empty-list defaults filled."""
    ss = list(a.get("strides") or ()) or [1] * d
    ps = list(a.get("pads") or ()) or [0] * (2 * d)
    ds = list(a.get("dilations") or ()) or [1] * d
    return ss, ps, ds


def _reach_checks(ins: Sequence[Any], outs: Sequence[Any], ks: Sequence[int], ss: Sequence[int],
                  ps: Sequence[int], ds: Sequence[int]) -> list[tuple[bool, bool]]:
    """Per spatial axis: whether a window read `o*s - pb + k*d` may fall below 0 and whether it
    may reach past the input's end (only those sides get a bounds check)."""
    d = len(ks)
    out = []
    for ax in range(d):
        i, o = ins[ax], outs[ax]
        low = ps[ax] > 0
        if isinstance(i, int) and isinstance(o, int):
            high = (o - 1) * ss[ax] - ps[ax] + (ks[ax] - 1) * ds[ax] > i - 1
        else:
            high = True
        out.append((low, high))
    return out


def _read_window(x: View, lead: Sequence[Expr], pos: Sequence[Expr],
                 checks: Sequence[tuple[bool, bool]]) -> tuple[Expr, Optional[Expr]]:
    """x[*lead, *pos] with each position clamped into the input where it may leave it, and the
    condition that every position is inside (None: always inside)."""
    conds: list[Optional[Expr]] = []
    idx = []
    for p, (low, high), n in zip(pos, checks, x.shape[len(lead):]):
        q = p
        if low:
            conds.append(binop(">=", p, 0))
            q = maximum(q, 0)
        if high:
            conds.append(binop("<", p, n))
            q = minimum(q, as_expr(n) - 1)
        idx.append(q)
    return x.at(*lead, *idx), _all(conds)


def _bias_epilogue(v: View, bias: Optional[View], d: dt.DType) -> View:
    """v (accumulated) + bias[channel], rounded once to d."""
    acc = v.dtype

    def f(*i: Expr) -> Expr:
        y = v.at(*i)
        if bias is not None:
            y = binop("+", y, _to(acc, bias.at(i[1])))
        return _to(d, y)
    return View(v.shape, d, f)


def _tensor_of(ctx: Ctx, v: View, base: str) -> te.Tensor:
    """The tensor behind a view: the placeholder or stage itself when the view reads one at its
    own indices (no copy), else a new compute stage."""
    probe = [Var(f"{base}.probe{k}") for k in range(v.ndim)]
    e = v.at(*probe)
    if isinstance(e, TensorLoad) and list(e.indices) == probe and e.tensor.dtype == v.dtype \
            and [str(s) for s in e.tensor.shape] == [str(s) for s in v.shape]:
        return e.tensor
    return ctx.tensor(v, base)


def _nest(vars_: Sequence[Var], extents: Sequence[Any], body: Stmt,
          parallel: bool = False) -> Stmt:
    """Serial loops over vars_ (outermost first); the outermost one parallel when asked."""
    for k in range(len(vars_) - 1, -1, -1):
        kind = "parallel" if parallel and k == 0 else "serial"
        body = For(vars_[k], as_expr(extents[k]), kind, body)
    return body


class _Lets:
    """Names intermediate values of a hand-written loop body (`let(e)` returns a Var bound to
    e), so an expression that uses a value many times refers to it instead of copying it."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.binds: list[tuple[Var, Expr]] = []

    def __call__(self, e: Expr) -> Expr:
        if isinstance(e, (Var, Const)):
            return e
        v = Var(f"{self.prefix}.v{len(self.binds)}", e.dtype)
        self.binds.append((v, e))
        return v

    def wrap(self, body: Stmt) -> Stmt:
        for v, e in reversed(self.binds):
            body = Let(v, e, body)
        return body


def _no_let(e: Expr) -> Expr:
    return e


def _table(ctx: Ctx, base: str, shape: Sequence[Any], dtype: dt.DType,
           fn: Callable[..., Expr]) -> View:
    """A tensor of fn(let, *index) computed once per kernel call, in a plain loop nest (an
    extern, so the default schedule does not recompute it inside each output row), the
    outermost loop parallel unless the table is small. For per-output tables of interpolation
    indices and weights."""
    name = ctx.name(base)
    lets = _Lets(f"{name}.probe")
    probe = fn(lets, *[Var(f"{name}.probe{k}") for k in range(len(shape))])
    reads = _tensors_read([probe] + [v for _, v in lets.binds])

    def build(outs: list[Buffer], ins: list[Any]) -> Stmt:
        out = outs[0]
        vs = [Var(f"{name}.i{k}") for k in range(len(shape))]
        lets = _Lets(name)
        value = fn(lets, *vs)
        small = all(isinstance(e, int) for e in shape) and math.prod(shape) < 4096
        return _nest(vs, shape, lets.wrap(Store(out, out.offset(vs), value)),
                     parallel=not small)
    return view_of(te.extern(name, [(tuple(shape), dtype)], reads, build)[0])


def _numel(shape: Sequence[Any]) -> Expr:
    n: Expr = Const(1)
    for s in shape:
        n = n * as_expr(s)
    return n


# ------------------------------------------------------------------------------ convolutions

@lowering("conv")
def _conv(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """out[n, m, o...] = sum_{ic, k...} x[n, g*Cg + ic, o*s - p + k*d ...] * w[m, ic, k...]."""
    x, w = xs[0], xs[1]
    bias = xs[2] if len(xs) > 2 else None
    a = attrs_of(op)
    d = x.ndim - 2
    ss, ps, ds = _window(a, d)
    shape = out_shape(ctx, op)
    dtype = out_dtype(op)
    acc = _acc(dtype)
    groups = a["groups"]
    m_all, cg, ks = w.shape[0], w.shape[1], [int(k) for k in w.shape[2:]]
    mg = m_all // groups if groups > 1 else m_all
    gemm = _conv_gemm(ctx, x, w, shape, ss, ps, ds, groups, acc)
    if gemm is not None:
        return _bias_epilogue(gemm, bias, dtype)
    # symbolic channel counts: one reduction stage, vectorized along the output row
    checks = _reach_checks(x.shape[2:], shape[2:], ks, ss, ps, ds)
    zero = const(0, acc)

    def body(n: Expr, m: Expr, *rest: Expr) -> Expr:
        o, ic, k = rest[:d], rest[d], rest[d + 1:]
        c = ic if groups == 1 else (m // mg) * cg + ic
        pos = [o[ax] * ss[ax] - ps[ax] + k[ax] * ds[ax] for ax in range(d)]
        xv, inside = _read_window(x, (n, c), pos, checks)
        xv = _to(acc, xv)
        if inside is not None:
            xv = select(inside, xv, zero)
        return binop("*", xv, _to(acc, w.at(m, ic, *k)))
    v = ctx.reduce("conv", shape, [cg, *ks], body, "+", zero)
    return _bias_epilogue(v, bias, dtype)


def _conv_source(ctx: Ctx, x: View, outs: Sequence[int], ks: Sequence[int], ss: Sequence[int],
                 ps: Sequence[int], ds: Sequence[int], acc: dt.DType) -> Callable[..., Expr]:
    """read(n, c, o, k): x at window position o*s - p + k*d per spatial axis (0 in the padding).
    With padding, or a stride on the last axis that the window taps overlap, x is first copied
    into a zero-padded stage whose last axis is split into `s` phases (w = w' * s + phase), so
    a row of outputs reads contiguous elements: phase (k*d) % s, w' = o + (k*d) // s. The copy
    is in the accumulation dtype `acc`."""
    d = len(ks)
    ins = list(x.shape[2:])
    s_last = ss[-1]
    phased = s_last > 1 and ks[-1] > 1
    if not any(ps) and not phased:
        return lambda n, c, o, k: x.at(n, c, *[o[ax] * ss[ax] + k[ax] * ds[ax]
                                              for ax in range(d)])
    need = [(o - 1) * s + (k - 1) * dl + 1 for o, s, k, dl in zip(outs, ss, ks, ds)]
    wlen = -(-need[-1] // s_last) if phased else need[-1]
    reach = need[:-1] + [wlen * s_last if phased else need[-1]]
    checks = [(ps[ax] > 0, not isinstance(reach[ax], int) or not isinstance(ins[ax], int)
               or reach[ax] - ps[ax] > ins[ax]) for ax in range(d)]

    def padded(n: Expr, c: Expr, *q: Expr) -> Expr:
        pos = [q[ax] - ps[ax] for ax in range(d - 1)]
        pos.append((q[-1] * s_last + q[-2] if phased else q[-1]) - ps[d - 1])
        v, inside = _read_window(x, (n, c), pos, checks)
        v = _to(acc, v)
        return v if inside is None else select(inside, v, const(0, acc))
    shape = (x.shape[0], x.shape[1], *need[:-1], *([s_last, wlen] if phased else [need[-1]]))
    src = ctx.materialize(View(shape, acc, padded), "conv_pad")

    def read(n: Expr, c: Expr, o: Sequence[Expr], k: Sequence[Expr]) -> Expr:
        pos = [o[ax] * ss[ax] + k[ax] * ds[ax] for ax in range(d - 1)]
        if phased:
            tap = k[-1] * ds[-1]
            return src.at(n, c, *pos, tap % s_last, o[-1] + tap // s_last)
        return src.at(n, c, *pos, o[-1] * ss[-1] + k[-1] * ds[-1])
    return read


def _conv_gemm(ctx: Ctx, x: View, w: View, shape: Sequence[Any], ss: list[int], ps: list[int],
               ds: list[int], groups: int, acc: dt.DType) -> Optional[View]:
    """A convolution as a register-blocked matrix product per image and group,
    out[m, col] = sum_k w[m, k] * B[k, col] with k = (ic, taps): tiles of MR output channels
    x NR output positions, all in one parallel loop, the MR x NR accumulator unrolled and
    vectorized along the positions so it stays in registers while k runs (a hand-written loop
    nest, te.extern). None when a channel count is symbolic.

    - Rows of at least one vector of outputs: B is read straight from the input (or from
      `conv_pad`, x zero-padded once and split into stride phases; see _conv_source), NR
      consecutive outputs of one row at a time: contiguous loads, no copy.
    - Shorter rows (late layers of a CNN), 1x1 windows with a stride, symbolic sizes: im2col
      first, `conv_cols` = [N, G, K, P] in the accumulation dtype, and the tiles run along
      the flattened positions P, so small feature maps still fill the vectors. A 1x1
      stride-1 conv reads x itself, which is already [N, G, K, P].
    The last tile along an axis is moved back to end at the edge (it recomputes a few
    outputs), so no tile needs a guard; with a symbolic P the last tile is guarded."""
    d = x.ndim - 2
    ins, outs = list(x.shape[2:]), list(shape[2:])
    m_all, cg, c_all = w.shape[0], w.shape[1], x.shape[1]
    if not all(isinstance(v, int) for v in (m_all, cg, c_all)):
        return None
    static = all(isinstance(v, int) for v in (*ins, *outs))
    ks = [int(k) for k in w.shape[2:]]
    mg = m_all // groups
    kk = cg * math.prod(ks)
    n_all = shape[0]
    from ..schedules.default import vector_lanes
    from ..schedules.matmul import choose_tile
    lanes = vector_lanes(acc.np_dtype.itemsize)
    bits = vector_lanes(1) * 8
    name = ctx.name("conv_gemm")
    out_shape_ = (n_all, m_all, *outs)
    wt = _tensor_of(ctx, w, "conv_w")

    pointwise = all(k == 1 for k in ks) and all(s == 1 for s in ss) and not any(ps) \
        and x.dtype == acc and outs == ins  # x itself is [N, G, K, P]
    if static and outs[-1] >= lanes and not pointwise and (ss[-1] == 1 or ks[-1] > 1):
        # tiles along output rows, B read in place (contiguously: stride 1 or phases)
        read = _conv_source(ctx, x, outs, ks, ss, ps, ds, acc)
        ow, rows = outs[-1], math.prod(outs[:-1])
        tile = choose_tile(mg, ow, bits, acc.np_dtype.itemsize)
        mr, vl = tile.MR, tile.VL
        nr = max(1, min(tile.NR // vl, ow // vl)) * vl
        mt, wt_n = -(-mg // mr), -(-ow // nr)
        probe = read(Const(0), Const(0), [Const(0)] * d, [Const(0)] * d)
        srcs = _tensors_read([probe])

        def build(outs_b: list[Buffer], ins_h: list[Any]) -> Stmt:
            out = outs_b[0]
            t = Var(f"{name}.tile")
            # m tiles innermost: consecutive tiles reuse the same input rows from cache, and
            # all of w's rows (M x K) stay cached too
            mi, wi = t % mt, (t // mt) % wt_n
            r, g, n = (t // (mt * wt_n)) % rows, (t // (mt * wt_n * rows)) % groups, \
                t // (mt * wt_n * rows * groups)
            lead, rest = [], r
            for ax in range(d - 2, -1, -1):
                lead.insert(0, rest % outs[ax])
                rest = rest // outs[ax]
            m0, ow0 = minimum(mi * mr, mg - mr), minimum(wi * nr, ow - nr)
            kvars = [Var(f"{name}.ic")] + [Var(f"{name}.k{ax}") for ax in range(d)]

            def a_at(i: Expr) -> Expr:
                return _to(acc, wt[(g * mg + m0 + i, *kvars)])

            def b_at(j: Expr) -> Expr:
                c = kvars[0] if groups == 1 else g * cg + kvars[0]
                return _to(acc, read(n, c, [*lead, ow0 + j], kvars[1:]))

            def put(i: Expr, j: Expr, v: Expr) -> Stmt:
                return Store(out, out.offset([n, g * mg + m0 + i, *lead, ow0 + j]), v)
            body = _register_tile(name, acc, mr, vl, nr // vl, list(zip(kvars, [cg, *ks])),
                                  a_at, b_at, put)
            return For(t, as_expr(n_all) * (groups * rows * wt_n * mt), "parallel", body)
        return view_of(te.extern(name, [(out_shape_, acc)], [*srcs, wt], build)[0])

    # im2col, tiles along the flattened positions
    npix: Any = math.prod(outs) if static else _numel(outs)
    if pointwise:
        cols = _tensor_of(ctx, x, "conv_cols")
    else:
        read = _conv_source(ctx, x, outs, ks, ss, ps, ds, acc)

        def col(n: Expr, g: Expr, ic: Expr, *rest: Expr) -> Expr:
            k, o = rest[:d], rest[d:]
            return _to(acc, read(n, ic if groups == 1 else g * cg + ic, o, k))
        cols = te.compute(ctx.name("conv_cols"), [n_all, groups, cg, *ks, *outs], col, acc)
    tile = choose_tile(mg, npix if static else None, bits, acc.np_dtype.itemsize)
    mr, vl = tile.MR, tile.VL
    nvec = max(1, min(tile.NR // vl, npix // vl)) if static else tile.NR // vl
    nr = nvec * vl
    mt = -(-mg // mr)
    pt = -(-npix // nr) if static else (npix + (nr - 1)) // nr

    def build_cols(outs_b: list[Buffer], ins_h: list[Any]) -> Stmt:
        out, cb, wb = outs_b[0], ins_h[0].buffer, ins_h[1].buffer
        t, kv = Var(f"{name}.tile"), Var(f"{name}.k")
        mi, pi = t % mt, (t // mt) % pt
        g, n = (t // (pt * mt)) % groups, t // (pt * mt * groups)
        m0 = minimum(mi * mr, mg - mr)
        p0 = minimum(pi * nr, npix - nr) if static else pi * nr

        def tile_code(edge: bool) -> Stmt:
            """One tile; `edge`: the last, partial tile of a symbolic row of positions (its
            loads clamped into the row, its stores guarded)."""
            col = (lambda j: minimum(p0 + j, npix - 1)) if edge else (lambda j: p0 + j)

            def put(i: Expr, j: Expr, v: Expr) -> Stmt:
                st = Store(out, (n * m_all + g * mg + m0 + i) * npix + p0 + j, v)
                return If(binop("<", p0 + j, npix), st) if edge else st
            return _register_tile(
                name + (".edge" if edge else ""), acc, mr, vl, nvec, [(kv, kk)],
                lambda i: _to(acc, Load(wb, (g * mg + m0 + i) * kk + kv, wb.dtype)),
                lambda j: Load(cb, ((n * groups + g) * kk + kv) * npix + col(j), acc), put)
        body = tile_code(False) if static else If(
            binop("<=", p0 + nr, npix), tile_code(False), tile_code(True))
        return For(t, as_expr(n_all) * (groups * mt) * pt, "parallel", body)
    return view_of(te.extern(name, [(out_shape_, acc)], [cols, wt], build_cols)[0])


def _register_tile(name: str, acc: dt.DType, mr: int, vl: int, nvec: int,
                   kloops: Sequence[tuple[Var, Any]], a_at: Callable[[Expr], Expr],
                   b_at: Callable[[Expr], Expr],
                   put: Callable[[Expr, Expr, Expr], Stmt]) -> Stmt:
    """The micro-kernel: acc[i, j] = sum over the k loops of a_at(i) * b_at(j) for an MR x
    (nvec * VL) tile, rows and vectors unrolled and lanes vectorized (LLVM keeps the local
    accumulator in registers), then put(i, j, acc[i, j])."""
    nr = nvec * vl
    accb = Buffer(f"{name}.acc", acc, (mr * nr,), "local")

    def tile_loop(tag: str, body: Callable[[Expr, Expr, Expr], Stmt]) -> Stmt:
        i, v, lane = (Var(f"{name}.{tag}{x_}") for x_ in ("i", "v", "l"))
        inner = For(lane, Const(vl), "vectorized", body(i, v * vl + lane, i * nr + v * vl + lane))
        return For(i, Const(mr), "unrolled", For(v, Const(nvec), "unrolled", inner))
    zero = tile_loop("z", lambda i, j, a: Store(accb, a, const(0, acc)))
    fma = tile_loop("f", lambda i, j, a: Store(accb, a, binop(
        "+", Load(accb, a, acc), binop("*", a_at(i), b_at(j)))))
    store = tile_loop("s", lambda i, j, a: put(i, j, Load(accb, a, acc)))
    return Alloc(accb, seq(zero, _nest([v for v, _ in kloops], [e for _, e in kloops], fma),
                           store))


def _tensors_read(exprs: Sequence[Expr]) -> list[te.Tensor]:
    """The tensors that `exprs` read (an extern stage's inputs, in first-read order)."""
    from ..ir import walk_expr
    found: dict[int, te.Tensor] = {}
    for e in exprs:
        for x in walk_expr(e):
            if isinstance(x, TensorLoad):
                found.setdefault(id(x.tensor), x.tensor)
    return list(found.values())


@lowering("conv_transpose")
def _conv_transpose(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """out[n, m, o...] = sum over ic and taps k with o + p - k*d = i*s for an input position i
    of x[n, g*Cg + ic, i...] * w[g*Cg + ic, m % Mg, k...]."""
    x, w = xs[0], xs[1]
    bias = xs[2] if len(xs) > 2 else None
    a = attrs_of(op)
    d = x.ndim - 2
    ss, ps, ds = _window(a, d)
    shape = out_shape(ctx, op)
    dtype = out_dtype(op)
    acc = _acc(dtype)
    groups = a["groups"]
    c_all, mg, ks = x.shape[1], w.shape[1], [int(k) for k in w.shape[2:]]
    cg = c_all // groups if groups > 1 else c_all
    ins = x.shape[2:]
    zero = const(0, acc)

    def body(n: Expr, m: Expr, *rest: Expr) -> Expr:
        o, ic, k = rest[:d], rest[d], rest[d + 1:]
        if groups == 1:
            c, mm = ic, m
        else:
            c, mm = (m // mg) * cg + ic, m % mg
        conds: list[Optional[Expr]] = []
        idx = []
        for ax in range(d):
            t = o[ax] + ps[ax] - k[ax] * ds[ax]
            s = ss[ax]
            i = t if s == 1 else t // s
            conds.append(binop(">=", t, 0))
            if s != 1:
                conds.append(binop("==", t % s, 0))
            conds.append(binop("<", i, ins[ax]))
            idx.append(_clamp(i, ins[ax]))
        prod = binop("*", _to(acc, x.at(n, c, *idx)), _to(acc, w.at(c, mm, *k)))
        return select(_all(conds), prod, zero)
    v = ctx.reduce("conv_transpose", shape, [cg, *ks], body, "+", zero)
    return _bias_epilogue(v, bias, dtype)


@lowering("deform_conv")
def _deform_conv(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """Each kernel tap reads x bilinearly (in f64, corners outside x read 0) at its regular
    position plus its offset, times the mask; the taps are summed against w like a conv."""
    x, w, off = xs[0], xs[1], xs[2]
    bias = xs[3] if len(xs) > 3 else None
    mask = xs[4] if len(xs) > 4 else None
    a = attrs_of(op)
    d = x.ndim - 2
    ss, ps, ds = _window(a, d)
    shape = out_shape(ctx, op)
    dtype = out_dtype(op)
    groups, ogroups = a["groups"], a["offset_groups"]
    c_all = x.shape[1]
    m_all, cg, ks = w.shape[0], w.shape[1], [int(k) for k in w.shape[2:]]
    mg = m_all // groups if groups > 1 else m_all
    taps = math.prod(ks)
    cpg = c_all // ogroups if ogroups > 1 else c_all
    ins = x.shape[2:]
    f64 = lambda e: _to(F64, e)  # noqa: E731

    def body(n: Expr, m: Expr, *rest: Expr) -> Expr:
        o, ic, k = rest[:d], rest[d], rest[d + 1:]
        c = ic if groups == 1 else (m // mg) * cg + ic
        og = Const(0) if ogroups == 1 else c // cpg
        tap: Expr = Const(0)
        for ax in range(d):
            tap = tap * ks[ax] + k[ax]
        pos = []
        for ax in range(d):
            ch = (og * taps + tap) * d + ax
            grid = f64(o[ax] * ss[ax] - ps[ax])
            pos.append(binop("+", binop("+", f64(off.at(n, ch, *o)), grid),
                             f64(k[ax] * ds[ax])))
        lows = [call("floor", F64, p) for p in pos]
        fracs = [binop("-", p, lo) for p, lo in zip(pos, lows)]
        base = [_safe_int(lo) for lo in lows]
        sample: Optional[Expr] = None
        for corner in range(2 ** d):
            bits = [(corner >> (d - 1 - ax)) & 1 for ax in range(d)]
            weight: Expr = const(1.0, F64)
            conds: list[Optional[Expr]] = []
            idx = []
            for ax, hi in enumerate(bits):
                i = base[ax] + hi
                weight = binop("*", weight, fracs[ax] if hi else
                               binop("-", const(1.0, F64), fracs[ax]))
                conds.append(binop("and", binop(">=", i, 0), binop("<", i, ins[ax])))
                idx.append(_clamp(i, ins[ax]))
            term = binop("*", f64(x.at(n, c, *idx)),
                         select(_all(conds), weight, const(0.0, F64)))
            sample = term if sample is None else binop("+", sample, term)
        assert sample is not None
        if mask is not None:
            sample = binop("*", sample, f64(mask.at(n, og * taps + tap, *o)))
        return binop("*", sample, f64(w.at(m, ic, *k)))
    v = ctx.reduce("deform_conv", shape, [cg, *ks], body, "+", const(0.0, F64))
    return _bias_epilogue(v, bias, dtype)


# ------------------------------------------------------------------------------ pooling

def _pool_attrs(ctx: Ctx, op: Op, x: View) -> tuple[int, list[int], list[int], list[int],
                                                     list[int], tuple[Any, ...]]:
    a = attrs_of(op)
    d = x.ndim - 2
    ks = list(a["kernel"])
    ss, ps, ds = _window(a, d)
    return d, ks, ss, ps, ds, out_shape(ctx, op)


@lowering("max_pool")
def _max_pool(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """The max over each window's taps inside the input (padding never wins; NaN wins)."""
    x = xs[0]
    d, ks, ss, ps, ds, shape = _pool_attrs(ctx, op, x)
    dtype = x.dtype
    acc = _acc(dtype)
    checks = _reach_checks(x.shape[2:], shape[2:], ks, ss, ps, ds)
    low = const(_lowest(acc), acc)

    def body(n: Expr, c: Expr, *rest: Expr) -> Expr:
        o, k = rest[:d], rest[d:]
        pos = [o[ax] * ss[ax] - ps[ax] + k[ax] * ds[ax] for ax in range(d)]
        xv, inside = _read_window(x, (n, c), pos, checks)
        xv = _to(acc, xv)
        return xv if inside is None else select(inside, xv, low)
    v = ctx.reduce("max_pool", shape, ks, body, "max", low)
    return View(v.shape, dtype, lambda *i: _to(dtype, v.at(*i)))


@lowering("avg_pool")
def _avg_pool(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """The window sum over the count of taps inside the input (and inside the explicit padding
    with count_include_pad); taps past the padded input (ceil_mode) never count."""
    x = xs[0]
    d, ks, ss, ps, ds, shape = _pool_attrs(ctx, op, x)
    include_pad = attrs_of(op)["count_include_pad"]
    dtype = x.dtype
    acc = _acc(dtype)
    ins = x.shape[2:]
    checks = _reach_checks(ins, shape[2:], ks, ss, ps, ds)
    zero = const(0, acc)

    def body(n: Expr, c: Expr, *rest: Expr) -> Expr:
        o, k = rest[:d], rest[d:]
        pos = [o[ax] * ss[ax] - ps[ax] + k[ax] for ax in range(d)]
        xv, inside = _read_window(x, (n, c), pos, checks)
        xv = _to(acc, xv)
        return xv if inside is None else select(inside, xv, zero)
    total = ctx.reduce("avg_pool", shape, ks, body, "+", zero)

    def f(n: Expr, c: Expr, *o: Expr) -> Expr:
        count: Expr = Const(1)
        for ax in range(d):
            start = o[ax] * ss[ax] - ps[ax]
            lo = -ps[ax] if include_pad else 0
            hi = as_expr(ins[ax]) + ps[d + ax] if include_pad else as_expr(ins[ax])
            cnt = minimum(start + ks[ax], hi) - maximum(start, lo)
            count = count * maximum(cnt, 0)
        return _to(dtype, binop("/", total.at(n, c, *o), _to(acc, count)))
    return View(shape, dtype, f)


@lowering("global_avg_pool", "global_max_pool")
def _global_pool(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    dtype = x.dtype
    acc = _acc(dtype)
    axes = list(range(2, x.ndim))
    up = lambda e: _to(acc, e)  # noqa: E731
    if op.name == "global_max_pool":
        v, _ = reduce_view(ctx, x, axes, True, "max", _lowest(acc), up, "global_max")
        return View(v.shape, dtype, lambda *i: _to(dtype, v.at(*i)))
    v, _ = reduce_view(ctx, x, axes, True, "+", 0, up, "global_avg")
    n = _to(acc, _numel([x.shape[a] for a in axes]))
    return View(v.shape, dtype, lambda *i: _to(dtype, binop("/", v.at(*i), n)))


@lowering("max_pool_with_indices")
def _max_pool_with_indices(ctx: Ctx, op: Op, xs: list[View]) -> list[View]:
    """A scan over each window's taps in order: the first valid tap, then any strictly greater
    one, wins (as the reference); its flat index into x (row- or column-major spatial dims)."""
    x = xs[0]
    d, ks, ss, ps, ds, shape = _pool_attrs(ctx, op, x)
    storage_order = attrs_of(op)["storage_order"]
    src = _tensor_of(ctx, x, "pool_src")
    name = ctx.name("max_pool_idx")
    ins = list(x.shape[2:])
    steps: list[Expr] = [Const(0)] * d
    step: Expr = Const(1)
    for ax in (range(d) if storage_order else reversed(range(d))):
        steps[ax] = step
        step = step * as_expr(ins[ax])
    dtype = x.dtype

    def build(outs: list[Buffer], ins_h: list[Any]) -> Stmt:
        vals, inds = outs
        xb = ins_h[0].buffer
        ov = [Var(f"{name}.o{k}") for k in range(len(shape))]
        kv = [Var(f"{name}.k{k}") for k in range(d)]
        best = Buffer(f"{name}.best", dtype, (1,), "local")
        bidx = Buffer(f"{name}.idx", I64, (1,), "local")
        n, c, o = ov[0], ov[1], ov[2:]
        pos = [o[ax] * ss[ax] - ps[ax] + kv[ax] * ds[ax] for ax in range(d)]
        inside = _all([binop("and", binop(">=", p, 0), binop("<", p, ins[ax]))
                       for ax, p in enumerate(pos)])
        cur = xb[(n, c, *[_clamp(p, ins[ax]) for ax, p in enumerate(pos)])]
        flat: Expr = Const(0)
        for ax in range(d):
            flat = flat + _clamp(pos[ax], ins[ax]) * steps[ax]
        cur_best = Load(best, Const(0), dtype)
        cur_idx = Load(bidx, Const(0), I64)
        take = binop("and", inside, binop("or", binop("<", cur_idx, 0),
                                          binop(">", cur, cur_best)))
        upd = If(take, seq(Store(best, Const(0), cur), Store(bidx, Const(0), flat)))
        scan = _nest(kv, ks, upd)
        base = (n * as_expr(x.shape[1]) + c) * step
        body = seq(Store(best, Const(0), const(0, dtype)), Store(bidx, Const(0), Const(-1)),
                   scan,
                   Store(vals, vals.offset(ov), Load(best, Const(0), dtype)),
                   Store(inds, inds.offset(ov), binop("+", Load(bidx, Const(0), I64), base)))
        body = Alloc(best, Alloc(bidx, body))
        return _nest(ov, shape, body, parallel=True)
    tv, ti = te.extern(name, [(shape, dtype), (shape, I64)], [src], build)
    return [view_of(tv), view_of(ti)]


# ------------------------------------------------------------------------------ resize

def _interp_weight(mode: str, t: Expr, a: float) -> Expr:
    """Interpolation kernel at distance t >= 0 (f64): linear hat or Keys cubic."""
    one = const(1.0, F64)
    if mode == "linear":
        return minimum(maximum(binop("-", one, t), const(0.0, F64)), one)
    return select(binop("<=", t, one), _cubic_near(t, a),
                  select(binop("<", t, const(2.0, F64)), _cubic_far(t, a), const(0.0, F64)))


def _cubic_near(t: Expr, a: float) -> Expr:
    # ((a + 2) * t - (a + 3)) * t * t + 1
    c = lambda v: const(v, F64)  # noqa: E731
    return binop("+", binop("*", binop("*", binop("-", binop("*", c(a + 2), t), c(a + 3)), t),
                            t), c(1.0))


def _cubic_far(t: Expr, a: float) -> Expr:
    # ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    c = lambda v: const(v, F64)  # noqa: E731
    inner = binop("+", binop("*", binop("-", binop("*", c(a), t), c(5 * a)), t), c(8 * a))
    return binop("-", binop("*", inner, t), c(4 * a))


class _AxisTaps:
    """How one resized axis reads its input: taps (index, f64 weight or None) of an output
    index, and the output indices whose coordinate falls outside the input (or None)."""

    def __init__(self, taps: Callable[[Expr], list[tuple[Expr, Optional[Expr]]]],
                 outside: Optional[Callable[[Expr], Expr]] = None) -> None:
        self.taps = taps
        self.outside = outside


def _nearest_index(xs: Expr, nearest_mode: str, n_in: int) -> Expr:
    half = const(0.5, F64)
    if nearest_mode == "round_prefer_floor":
        r = call("ceil", F64, binop("-", xs, half))
    elif nearest_mode == "round_prefer_ceil":
        r = call("floor", F64, binop("+", xs, half))
    elif nearest_mode == "floor":
        r = call("floor", F64, xs)
    else:
        r = call("ceil", F64, xs)
    return _clamp(_safe_int(r), n_in)


def _nearest_axis(ctx: Ctx, coord_of: Callable[[Expr], Expr], n_in: int, n_out: int,
                  nearest_mode: str) -> Callable[[Expr], list]:
    """The one tap of nearest resizing along an axis, from a table of source indices."""
    idx = _table(ctx, "resize_index", (n_out,), I64,
                 lambda let, o: _nearest_index(coord_of(o), nearest_mode, n_in))
    return lambda o: [(idx.at(o), None)]


def _resize_exact_coord(o: Expr, n_in: int, n_out: int, mode: str) -> Expr:
    """`resize`'s input coordinate of output index o (f64), the exact-ratio formulas of
    compiler.ir.reference.nn._source_coords with scale None."""
    xo = _to(F64, o)
    c = lambda v: const(float(v), F64)  # noqa: E731
    if mode == "align_corners":
        if n_out == 1:
            return c(0)
        return binop("/", binop("*", xo, c(n_in - 1)), c(n_out - 1))
    if mode == "pytorch_half_pixel" and n_out == 1:
        return c(0)
    if mode == "asymmetric":
        return binop("/", binop("*", xo, c(n_in)), c(n_out))
    num = binop("-", binop("*", binop("+", binop("*", c(2), xo), c(1)), c(n_in)), c(n_out))
    return binop("/", num, c(2 * n_out))


def _resize_general_coord(o: Expr, n_in: int, n_out: int, scale: float, mode: str,
                          roi: Optional[tuple[float, float]]) -> Expr:
    """`resize_general`'s coordinate (nn_extra._source_coords), in the same f64 operations."""
    y = _to(F64, o)
    c = lambda v: const(float(v), F64)  # noqa: E731
    width = scale * n_in
    if mode == "align_corners":
        if width == 1:
            return c(0)
        return binop("/", binop("*", y, c(n_in - 1)), c(width - 1))
    if mode == "asymmetric":
        return binop("/", y, c(scale))
    if mode == "tf_half_pixel_for_nn":
        return binop("/", binop("+", y, c(0.5)), c(scale))
    if mode == "tf_crop_and_resize":
        lo, hi = roi  # type: ignore[misc]
        span = (hi - lo) * (n_in - 1)
        x = c(span / 2) if width == 1 else binop("/", binop("*", y, c(span)), c(width - 1))
        return binop("+", x, c(lo * (n_in - 1)))
    if mode == "pytorch_half_pixel" and width == 1:
        return c(-0.5)
    x = binop("-", binop("/", binop("+", y, c(0.5)), c(scale)), c(0.5))
    if mode == "half_pixel_symmetric":
        x = binop("+", x, c((n_in / 2) * (1 - n_out / width)))
    return x


def _interp_axis(ctx: Ctx, coord_of: Callable[[Expr], Expr], n_in: int, n_out: int,
                 mode: str, a: float, exclude_outside: bool,
                 antialias_scale: Optional[float]) -> Callable[[Expr], list]:
    """Taps of linear/cubic interpolation along one axis: base = ceil(x) - 1 (ONNX's
    left-biased choice) plus each offset, weights from the kernel (widened by 1/scale with
    antialias and renormalized; out-of-range taps dropped and renormalized with
    exclude_outside). The index and weight of every (tap, output index) are computed once,
    into two small tables that the resample reads."""
    reach = 1 if mode == "linear" else 2
    s = None
    if antialias_scale is not None:
        s = min(antialias_scale, 1.0)
        first = int(math.floor(-reach / s)) + 1
        offsets = list(range(first, 2 - first))
    else:
        offsets = list(range(1 - reach, reach + 1))

    def base_ratio(o: Expr) -> tuple[Expr, Expr]:
        xs = coord_of(o)
        base_f = binop("-", call("ceil", F64, xs), const(1.0, F64))
        return base_f, binop("-", xs, base_f)

    def kernel(off: Expr, ratio: Expr) -> Expr:
        t = binop("-", off, ratio)
        if s is not None:
            t = binop("*", t, const(s, F64))
        return _interp_weight(mode, call("fabs", F64, t), a)

    def weight(let: Callable[[Expr], Expr], t: Expr, o: Expr) -> Expr:
        base_f, ratio = base_ratio(o)
        base_f, ratio = let(base_f), let(ratio)
        w = kernel(binop("+", const(float(offsets[0]), F64), _to(F64, t)), ratio)
        if exclude_outside:
            base = _safe_int(base_f)
            inside = lambda i: binop("and", binop(">=", i, 0), binop("<", i, n_in))  # noqa
            w = select(inside(base + offsets[0] + t), w, const(0.0, F64))
            total = _sum([select(inside(base + k), kernel(const(float(k), F64), ratio),
                                 const(0.0, F64)) for k in offsets])
            total = select(binop("==", total, const(0.0, F64)), const(1.0, F64), total)
            return binop("/", w, total)
        if s is not None:
            return binop("/", w, _sum([kernel(const(float(k), F64), ratio) for k in offsets]))
        return w
    def index(let: Callable[[Expr], Expr], t: Expr, o: Expr) -> Expr:
        return _clamp(_safe_int(base_ratio(o)[0]) + offsets[0] + t, n_in)
    # tap-major, so a row of outputs reads the tables contiguously
    wts = _table(ctx, "resize_weights", (len(offsets), n_out), F64, weight)
    idx = _table(ctx, "resize_index", (len(offsets), n_out), I64, index)

    def taps(o: Expr) -> list[tuple[Expr, Expr]]:
        return [(idx.at(Const(t), o), wts.at(Const(t), o)) for t in range(len(offsets))]
    return taps


def _sum(es: Sequence[Expr]) -> Expr:
    out = es[0]
    for e in es[1:]:
        out = binop("+", out, e)
    return out


def _resample(x: View, shape: Sequence[Any], axes: dict[int, _AxisTaps], acc: dt.DType,
              dtype: dt.DType, extrapolation: Optional[Expr] = None) -> View:
    """Resize axis by axis in increasing order, as the references do: the result along the
    k-th resized axis is the weighted sum of taps of the result along the previous ones."""
    order = sorted(axes)

    def value(k: int, idx: list[Expr], out: Sequence[Expr]) -> Expr:
        if k < 0:
            v = x.at(*idx)
            return v if acc == x.dtype else _to(acc, v)
        ax = order[k]
        spec = axes[ax]
        terms = []
        for i, wt in spec.taps(out[ax]):
            sub = list(idx)
            sub[ax] = i
            v = value(k - 1, sub, out)
            terms.append(v if wt is None else binop("*", v, wt if acc == F64 else
                                                     _to(acc, wt)))
        r = _sum(terms)
        if spec.outside is not None and extrapolation is not None:
            r = select(spec.outside(out[ax]), _to(r.dtype, extrapolation), r)
        return r

    def f(*i: Expr) -> Expr:
        return _to(dtype, value(len(order) - 1, list(i), i))
    return View(tuple(shape), dtype, f)


@lowering("resize")
def _resize(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    a = attrs_of(op)
    shape = out_shape(ctx, op)
    mode, coord = a["mode"], a["coordinate_transformation_mode"]
    dtype = x.dtype
    axes: dict[int, _AxisTaps] = {}
    for ax, (n_in, n_out) in enumerate(zip(x.shape, shape)):
        if not isinstance(n_in, int) or not isinstance(n_out, int) or n_in == n_out:
            continue

        def coord_of(o: Expr, n_in: int = n_in, n_out: int = n_out) -> Expr:
            return _resize_exact_coord(o, n_in, n_out, coord)
        if mode == "nearest":
            axes[ax] = _AxisTaps(_nearest_axis(ctx, coord_of, n_in, n_out, a["nearest_mode"]))
        else:
            axes[ax] = _AxisTaps(_interp_axis(ctx, coord_of, n_in, n_out, mode,
                                              a["cubic_coeff_a"], a["exclude_outside"], None))
    acc = dtype if mode == "nearest" else (F64 if dtype == F64 else F32)
    return _resample(x, shape, axes, acc, dtype)


@lowering("resize_general")
def _resize_general(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    a = attrs_of(op)
    shape = out_shape(ctx, op)
    mode, coord = a["mode"], a["coordinate_transformation_mode"]
    scales, roi = list(a["scales"]), list(a["roi"] or ())
    r = x.ndim
    dtype = x.dtype
    axes: dict[int, _AxisTaps] = {}
    for ax in range(r):
        n_in, n_out = x.shape[ax], shape[ax]
        lo_hi = (float(roi[ax]), float(roi[r + ax])) if roi else None
        if not isinstance(n_in, int) or not isinstance(n_out, int):
            continue  # a symbolic dim is never resized (the type rule checks it)
        if n_out == n_in and scales[ax] == 1.0 and lo_hi in (None, (0.0, 1.0)):
            continue
        if n_in == 0:
            raise LoweringError(f"resize_general: cannot resize empty dim {ax} of {x.shape}")
        scale = float(scales[ax])

        def coord_of(o: Expr, n_in: int = n_in, n_out: int = n_out, scale: float = scale,
                     lo_hi: Any = lo_hi) -> Expr:
            return _resize_general_coord(o, n_in, n_out, scale, coord, lo_hi)
        outside = None
        if coord == "tf_crop_and_resize":  # coordinates outside the input extrapolate
            outside = _table(ctx, "resize_outside", (n_out,), BOOL, lambda let, o, n_in=n_in,
                             c=coord_of: binop("or", binop("<", c(o), const(0.0, F64)), binop(
                                 ">", c(o), const(float(n_in - 1), F64)))).at
        if mode == "nearest":
            taps = _nearest_axis(ctx, coord_of, n_in, n_out, a["nearest_mode"])
        else:
            taps = _interp_axis(ctx, coord_of, n_in, n_out, mode, a["cubic_coeff_a"],
                                a["exclude_outside"], scale if a["antialias"] else None)
        axes[ax] = _AxisTaps(taps, outside)
    acc = dtype if mode == "nearest" else F64
    ext = None
    if coord == "tf_crop_and_resize":
        ext = const(a["extrapolation_value"], acc) if not acc.is_bool else \
            Const(bool(a["extrapolation_value"]), BOOL)
    return _resample(x, shape, axes, acc, dtype, ext)


# ------------------------------------------------------------------------------ grid_sample

def _reflect(v: Expr, lo: float, hi: float, let: Callable[[Expr], Expr] = _no_let) -> Expr:
    """Reflect coordinates at the borders lo and hi until they fall inside (PyTorch's rule)."""
    c = lambda x: const(float(x), F64)  # noqa: E731
    span = hi - lo
    if span <= 0:
        return c(lo)
    v = let(v)
    below = let(binop("<", v, c(lo)))
    above = let(binop(">", v, c(hi)))
    dist = let(select(below, binop("-", c(lo), v), select(above, binop("-", v, c(hi)), c(0))))
    flips = let(call("floor", F64, binop("/", dist, c(span))))
    rest = let(binop("-", dist, binop("*", flips, c(span))))
    even = let(binop("==", call("fmod", F64, flips, c(2)), c(0)))
    from_low = select(even, binop("+", c(lo), rest), binop("-", c(hi), rest))
    from_high = select(even, binop("-", c(hi), rest), binop("+", c(lo), rest))
    return select(below, from_low, select(above, from_high, v))


@lowering("grid_sample")
def _grid_sample(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """out[n, c, o...] = sum over taps of x[n, c, taps] * weights at the grid's coordinates
    (f64 like the reference; zeros padding reads 0 outside, border clamps, reflection
    mirrors)."""
    x, grid = xs
    a = attrs_of(op)
    mode, padding, align = a["mode"], a["padding_mode"], a["align_corners"]
    shape = out_shape(ctx, op)
    dtype = x.dtype
    d = x.ndim - 2
    ins = [int(n) for n in x.shape[2:]]
    lo = [0.0 if align else -0.5 for _ in ins]
    hi = [n - 1.0 if align else n - 0.5 for n in ins]
    c = lambda v: const(float(v), F64)  # noqa: E731

    def coord_fn(ax: int, let: Callable[[Expr], Expr]) -> Callable[..., Expr]:
        def coord(n_: Expr, *o: Expr) -> Expr:
            u = let(_to(F64, grid.at(n_, *o, Const(d - 1 - ax))))
            size = ins[ax]
            if align:
                v = binop("*", binop("/", binop("+", u, c(1)), c(2)), c(size - 1))
            else:
                v = binop("/", binop("-", binop("*", binop("+", u, c(1)), c(size)), c(1)),
                          c(2))
            v = let(v)
            if mode == "nearest":
                v = let(call("round", F64, v))
            if padding == "border":
                out = binop("or", binop("<", v, c(lo[ax])), binop(">", v, c(hi[ax])))
                v = select(out, minimum(maximum(v, c(0)), c(size - 1)), v)
            elif padding == "reflection":
                v = _reflect(v, lo[ax], hi[ax], let)
            return v
        return coord
    # per axis, tables of each tap's index and weight (zeros padding folded into the weight)
    # at every output position, computed once (not per channel); the sum below reads them
    lead = (shape[0], *shape[2:])
    first, ntaps = {"nearest": (0, 1), "linear": (0, 2), "cubic": (-1, 4)}[mode]
    tables = []
    for ax in range(d):
        def tap(let: Callable[[Expr], Expr], t: Expr, n_: Expr, *o: Expr,
                ax: int = ax) -> tuple[Expr, Expr]:
            v = let(coord_fn(ax, let)(n_, *o))
            if mode == "nearest":
                i, wt = let(_safe_int(v)), c(1)
            else:
                f = let(call("floor", F64, v))
                frac = let(binop("-", v, f))
                off = t + first
                i = let(_safe_int(f) + off)
                if mode == "linear":
                    wt = select(binop("==", t, 0), binop("-", c(1), frac), frac)
                else:
                    wt = _interp_weight("cubic", call("fabs", F64, binop(
                        "-", _to(F64, off), frac)), -0.75)
            n = ins[ax]
            if padding == "zeros":
                wt = select(binop("and", binop(">=", i, 0), binop("<", i, n)), wt, c(0))
            elif padding == "reflection":
                i = _safe_int(_reflect(_to(F64, i), lo[ax], hi[ax], let))
            return _clamp(i, n), wt
        # tap-major, so a row of outputs reads each table contiguously
        idx = _table(ctx, "grid_index", (ntaps, *lead), I64, lambda *a_, tap=tap: tap(*a_)[0])
        wts = _table(ctx, "grid_weight", (ntaps, *lead), F64, lambda *a_, tap=tap: tap(*a_)[1])
        tables.append((idx, wts))

    def f(n_: Expr, ch: Expr, *o: Expr) -> Expr:
        total: Optional[Expr] = None
        for combo in itertools.product(range(ntaps), repeat=d):
            weight: Optional[Expr] = None
            idx = []
            for ax, t in enumerate(combo):
                i_tab, w_tab = tables[ax]
                idx.append(i_tab.at(Const(t), n_, *o))
                wt = w_tab.at(Const(t), n_, *o)
                weight = wt if weight is None else binop("*", weight, wt)
            term = binop("*", _to(F64, x.at(n_, ch, *idx)), weight)
            total = term if total is None else binop("+", total, term)
        assert total is not None
        return _to(dtype, total)
    return View(shape, dtype, f)


# ------------------------------------------------------------------------------ ROI ops

@lowering("roi_align")
def _roi_align(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """Per roi and channel: each output bin averages (or maxes) sampling_ratio (or adaptive,
    ceil(roi size / bins)) bilinear samples per axis, in f64 like the reference."""
    x, rois, bidx = xs
    a = attrs_of(op)
    shape = out_shape(ctx, op)
    dtype = x.dtype
    oh, ow = a["output_height"], a["output_width"]
    ratio, scale = a["sampling_ratio"], float(a["spatial_scale"])
    avg = a["mode"] == "avg"
    offset = 0.5 if a["coordinate_transformation_mode"] == "half_pixel" else 0.0
    n_all, c_all, h, w = x.shape
    srcs = [_tensor_of(ctx, v, b) for v, b in ((x, "roi_x"), (rois, "rois"), (bidx, "roi_b"))]
    name = ctx.name("roi_align")
    c = lambda v: const(float(v), F64)  # noqa: E731

    def build(outs: list[Buffer], ins: list[Any]) -> Stmt:
        out = outs[0]
        xb, rb, bb = (t.buffer for t in ins)
        V = lambda s, d=I64: Var(f"{name}.{s}", d)  # noqa: E731
        rc, ph, pw, iy, ix = V("rc"), V("ph"), V("pw"), V("iy"), V("ix")
        r, ch = rc // as_expr(c_all), rc % as_expr(c_all)
        x0, y0, x1, y1 = (V(s, F64) for s in ("x0", "y0", "x1", "y1"))
        rh_, rw_, bh, bw = (V(s, F64) for s in ("rh", "rw", "bh", "bw"))
        gh, gw, b = V("gh"), V("gw"), V("b")
        accb = Buffer(f"{name}.acc", F64, (1,), "local")
        acc = Load(accb, Const(0), F64)

        def axis(pos: Expr, n: Any) -> tuple[Expr, Expr, Expr, Expr, Expr]:
            # ONNX Runtime's boundary rule (nn_extra._bilinear_axis)
            ok = binop("and", binop(">=", pos, c(-1)), binop("<=", pos, _to(F64, as_expr(n))))
            p = maximum(pos, c(0))
            low = _safe_int(p)
            edge = binop(">=", low, as_expr(n) - 1)
            low = select(edge, as_expr(n) - 1, low)
            high = select(edge, as_expr(n) - 1, low + 1)
            p = select(edge, _to(F64, low), p)
            lw = binop("-", p, _to(F64, low))
            return _clamp(low, n), _clamp(high, n), binop("-", c(1), lw), lw, ok

        ys = binop("+", binop("+", y0, binop("*", _to(F64, ph), bh)),
                   binop("/", binop("*", binop("+", _to(F64, iy), c(0.5)), bh), _to(F64, gh)))
        xs_ = binop("+", binop("+", x0, binop("*", _to(F64, pw), bw)),
                    binop("/", binop("*", binop("+", _to(F64, ix), c(0.5)), bw), _to(F64, gw)))
        yl, yh, wyl, wyh, oky = axis(ys, h)
        xl, xh, wxl, wxh, okx = axis(xs_, w)
        ok = select(binop("and", oky, okx), c(1), c(0))
        corners = [(xb[(b, ch, yi, xi)], binop("*", binop("*", wy, wx), ok))
                   for yi, wy in ((yl, wyl), (yh, wyh)) for xi, wx in ((xl, wxl), (xh, wxh))]
        terms = [binop("*", _to(F64, v), wt) for v, wt in corners]
        if avg:
            upd = binop("+", acc, _sum(terms))
        else:
            m = terms[0]
            for t in terms[1:]:
                m = call("fmax_nan", F64, m, t)
            upd = call("fmax_nan", F64, acc, m)
        samples = _nest([iy, ix], [gh, gw], Store(accb, Const(0), upd))
        count = gh * gw
        if avg:
            res = binop("/", acc, _to(F64, count))
        else:
            res = acc
        res = select(binop(">", count, 0), res, c(0))
        init = Store(accb, Const(0), c(0) if avg else c(-math.inf))
        bins = _nest([ph, pw], [oh, ow], Alloc(accb, seq(
            init, samples, Store(out, out.offset([r, ch, ph, pw]), _to(dtype, res)))))

        def roi(k: int) -> Expr:
            return binop("-", binop("*", _to(F64, rb[(r, Const(k))]), c(scale)), c(offset))
        rh_v = binop("-", y1, y0)
        rw_v = binop("-", x1, x0)
        if not offset:  # output_half_pixel: malformed rois are forced to 1x1
            rh_v, rw_v = maximum(rh_v, c(1)), maximum(rw_v, c(1))

        def grid_count(size: Expr, bins_: int) -> Expr:
            if ratio:
                return Const(ratio)
            g = _safe_int(call("ceil", F64, binop("/", size, c(bins_))), -1, MAX_SAMPLES)
            return maximum(g, 0)
        body: Stmt = bins
        for var, val in reversed([
                (b, _clamp(cast(I64, bb[(r,)]), n_all)),
                (x0, roi(0)), (y0, roi(1)), (x1, roi(2)), (y1, roi(3)),
                (rh_, rh_v), (rw_, rw_v),
                (bh, binop("/", rh_, c(oh))), (bw, binop("/", rw_, c(ow))),
                (gh, grid_count(rh_, oh)), (gw, grid_count(rw_, ow))]):
            body = Let(var, val, body)
        return For(rc, as_expr(shape[0]) * as_expr(c_all), "parallel", body)
    t = te.extern(name, [(shape, dtype)], srcs, build)[0]
    return view_of(t)


@lowering("max_roi_pool")
def _max_roi_pool(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """Caffe ROI pooling as ONNX Runtime computes it: roi corners scaled and rounded half away
    from zero, bins of floor..ceil extent (in f32) clipped to x, each bin's max (0 if empty)."""
    x, rois = xs
    a = attrs_of(op)
    shape = out_shape(ctx, op)
    dtype = x.dtype
    acc = _acc(dtype)
    ph_n, pw_n = a["pooled_shape"]
    n_all, c_all, height, width = x.shape
    fc = F64 if dtype == F64 else F32
    scale = float(a["spatial_scale"])
    srcs = [_tensor_of(ctx, x, "roi_x"), _tensor_of(ctx, rois, "rois")]
    name = ctx.name("max_roi_pool")

    def build(outs: list[Buffer], ins: list[Any]) -> Stmt:
        out = outs[0]
        xb, rb = (t.buffer for t in ins)
        V = lambda s, d=I64: Var(f"{name}.{s}", d)  # noqa: E731
        r, i, j, ch, hh, ww = V("r"), V("i"), V("j"), V("c"), V("h"), V("w")
        x1, y1, x2, y2, b = V("x1"), V("y1"), V("x2"), V("y2"), V("b")
        h0, h1, w0, w1 = V("h0"), V("h1"), V("w0"), V("w1")
        bin_h, bin_w = V("bin_h", F32), V("bin_w", F32)
        accb = Buffer(f"{name}.acc", acc, (1,), "local")
        cur = Load(accb, Const(0), acc)
        f32 = lambda e: _to(F32, e)  # noqa: E731

        def corner(k: int) -> Expr:
            v = binop("*", _to(fc, rb[(r, Const(k))]), const(scale, fc))
            rounded = call("copysign", fc, call("floor", fc, binop(
                "+", call("fabs", fc, v), const(0.5, fc))), v)
            return _safe_int(rounded)

        def edge(fn: str, k: Expr, size: Expr, start: Expr, limit: Any) -> Expr:
            e = _safe_int(call(fn, F32, binop("*", f32(k), size))) + start
            return minimum(maximum(e, 0), as_expr(limit))
        scan = _nest([hh, ww], [maximum(h1 - h0, 0), maximum(w1 - w0, 0)], Store(
            accb, Const(0), call("fmax_nan", acc, cur, _to(acc, xb[(b, ch, h0 + hh, w0 + ww)]))))
        nonempty = binop("and", binop(">", h1, h0), binop(">", w1, w0))
        per_c = For(ch, as_expr(c_all), "serial", Alloc(accb, seq(
            Store(accb, Const(0), const(-math.inf, acc)), scan,
            Store(out, out.offset([r, ch, i, j]),
                  _to(dtype, select(nonempty, cur, const(0, acc)))))))
        body: Stmt = Let(w0, edge("floor", j, bin_w, x1, width),
                         Let(w1, edge("ceil", j + 1, bin_w, x1, width), per_c))
        body = For(j, Const(pw_n), "serial", body)
        body = Let(h0, edge("floor", i, bin_h, y1, height),
                   Let(h1, edge("ceil", i + 1, bin_h, y1, height), body))
        body = For(i, Const(ph_n), "serial", body)
        size = lambda lo_, hi_, n_: binop("/", f32(maximum(hi_ - lo_ + 1, 1)),  # noqa: E731
                                          const(float(n_), F32))
        body = Let(bin_h, size(y1, y2, ph_n), Let(bin_w, size(x1, x2, pw_n), body))
        for var, k in reversed([(x1, 1), (y1, 2), (x2, 3), (y2, 4)]):
            body = Let(var, corner(k), body)
        body = Let(b, _clamp(cast(I64, rb[(r, Const(0))]), n_all), body)
        return For(r, as_expr(shape[0]), "parallel", body)
    t = te.extern(name, [(shape, dtype)], srcs, build)[0]
    return view_of(t)


# ------------------------------------------------------------------------------ movement

@lowering("depth_to_space")
def _depth_to_space(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    a = attrs_of(op)
    b, crd = a["blocksize"], a["mode"] == "CRD"
    shape = out_shape(ctx, op)
    c_out = as_expr(shape[1])

    def f(n: Expr, c: Expr, h: Expr, w: Expr) -> Expr:
        bi, bj = h % b, w % b
        ch = c * (b * b) + bi * b + bj if crd else (bi * b + bj) * c_out + c
        return x.at(n, ch, h // b, w // b)
    return View(shape, x.dtype, f)


@lowering("space_to_depth")
def _space_to_depth(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x = xs[0]
    b = attrs_of(op)["blocksize"]
    shape = out_shape(ctx, op)
    c_in = as_expr(x.shape[1])

    def f(n: Expr, ch: Expr, h: Expr, w: Expr) -> Expr:
        q = ch // c_in  # output channel = (bi*b + bj)*C + c
        return x.at(n, ch % c_in, h * b + q // b, w * b + q % b)
    return View(shape, x.dtype, f)


# ------------------------------------------------------------------------------ normalization

@lowering("batch_norm")
def _batch_norm(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """(x - mean) * (scale / sqrt(var + eps)) + bias per channel (inference)."""
    x, scale, bias, mean, var = xs
    dtype = x.dtype
    w = _acc(dtype)
    eps = const(attrs_of(op)["epsilon"], w)

    def f(*i: Expr) -> Expr:
        ch = i[1]
        inv = binop("/", _to(w, scale.at(ch)),
                    call("sqrt", w, binop("+", _to(w, var.at(ch)), eps)))
        y = binop("+", binop("*", binop("-", _to(w, x.at(*i)), _to(w, mean.at(ch))), inv),
                  _to(w, bias.at(ch)))
        return _to(dtype, y)
    return View(x.shape, dtype, f)


def _sq(e: Expr) -> Expr:
    return binop("*", e, e)


@lowering("instance_norm", "group_norm")
def _group_norm(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """(x - mean) / sqrt(var + eps) * scale[c] + bias[c], with statistics per (n, group) of
    channels (per (n, c) for instance_norm)."""
    x, scale, bias = xs
    a = attrs_of(op)
    dtype = x.dtype
    w = _acc(dtype)
    c_all = as_expr(x.shape[1])
    spatial = _numel(x.shape[2:])
    if op.name == "instance_norm":
        stats = _group_stats(ctx, x, c_all, spatial)
        group_of: Callable[[Expr], Expr] = lambda c: c  # noqa: E731
    else:
        cg = c_all // a["num_groups"]
        stats = _group_stats(ctx, x, a["num_groups"], cg * spatial)
        group_of = lambda c: c // cg  # noqa: E731
    eps = const(a["epsilon"], w)

    def f(*i: Expr) -> Expr:
        g = group_of(i[1])
        centered = binop("-", _to(w, x.at(*i)), stats.at(i[0], g, Const(0)))
        y = binop("/", centered, call("sqrt", w, binop("+", stats.at(i[0], g, Const(1)), eps)))
        y = binop("+", binop("*", y, _to(w, scale.at(i[1]))), _to(w, bias.at(i[1])))
        return _to(dtype, y)
    return View(x.shape, dtype, f)


def _group_stats(ctx: Ctx, x: View, groups: Any, length: Expr) -> View:
    """[N, groups, 2]: the mean and the biased variance of each group's `length` elements (a
    contiguous run of x), two passes in the accumulation dtype. A hand-written loop nest,
    parallel over (n, group): as stages read by the elementwise output, the statistics would
    be recomputed for every output row (every channel of a group)."""
    src = _tensor_of(ctx, x, "norm_src")
    acc = _acc(x.dtype)
    from ..schedules.default import vector_lanes
    vl = vector_lanes(acc.np_dtype.itemsize)
    name = ctx.name("norm_stats")

    def build(outs: list[Buffer], ins: list[Any]) -> Stmt:
        out, xb = outs[0], ins[0].buffer
        ng, j, lane, r, k = (Var(f"{name}.{v}") for v in ("ng", "j", "l", "r", "k"))
        vacc = Buffer(f"{name}.vacc", acc, (vl,), "local")
        tot = Buffer(f"{name}.tot", acc, (1,), "local")
        base = ng * length
        chunks = length // vl
        cur = Load(tot, Const(0), acc)

        def total(term: Callable[[Expr], Expr], slot: int) -> Stmt:
            """out[ng, slot] = sum of term(i) over the group / length: vector partial sums,
            then the lanes, then the remainder."""
            return seq(
                For(lane, Const(vl), "vectorized", Store(vacc, lane, const(0, acc))),
                For(j, chunks, "serial", For(lane, Const(vl), "vectorized", Store(
                    vacc, lane, binop("+", Load(vacc, lane, acc), term(base + j * vl + lane))))),
                Store(tot, Const(0), const(0, acc)),
                For(k, Const(vl), "serial", Store(tot, Const(0), binop(
                    "+", cur, Load(vacc, k, acc)))),
                For(r, length - chunks * vl, "serial", Store(tot, Const(0), binop(
                    "+", cur, term(base + chunks * vl + r)))),
                Store(out, ng * 2 + slot, binop("/", cur, _to(acc, length))))
        mean = Load(out, ng * 2, acc)
        body = seq(total(lambda i: _to(acc, Load(xb, i, xb.dtype)), 0),
                   total(lambda i: _sq(binop("-", _to(acc, Load(xb, i, xb.dtype)), mean)), 1))
        return For(ng, as_expr(x.shape[0]) * as_expr(groups), "parallel",
                   Alloc(vacc, Alloc(tot, body)))
    t = te.extern(name, [((x.shape[0], groups, 2), acc)], [src], build)[0]
    return view_of(t)
