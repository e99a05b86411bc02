"""StableHLO rules for the ops ONNX models need beyond plain conv/pool/resize: max pooling with
indices, general resize, grid_sample, roi_align, deform_conv, max_roi_pool and tfidf_vectorizer.

Coordinates are computed in the wide float (f64 like the references on "xla"; f32 on "tpu") and
sampled with gathers. roi_align with sampling_ratio=0 takes a number of samples per bin that
depends on the roi values, which a static-shaped program cannot express: it is refused.
"""
from __future__ import annotations

import itertools
import math
from typing import Optional

import numpy as np

from compiler.ir import Op
from compiler.ir import dtypes as dt
from compiler.ir.ops.misc_extra import _pool_ngrams

from .emitter import Emitter, Val
from .lower_contraction import dot
from .lower_nn import _crop, _pool_geometry, _window_attrs, axis_map, resize_axis
from .lowering import (Context, compute_dtype, lowering, lowest, optional, result_type,
                       unsupported, wrap_indices)


# --- max_pool_with_indices ------------------------------------------------------------------------


@lowering("max_pool_with_indices")
def _max_pool_with_indices(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    """A reduce_window over (value, row-major position): the largest value wins, ties go to the
    first tap (the lowest position), padding never wins."""
    x = args[0]
    shape, dtype = result_type(op)
    d = x.rank - 2
    kernel = list(op.attrs["kernel"])
    strides, pads, dil = _window_attrs(op, d)
    ins = list(x.shape[2:])
    length, high = _pool_geometry(x, shape[2:], kernel, strides, pads, dil)
    xs = _crop(e, x, length)
    # row-major flat position of each spatial element
    pos = e.const(0, dt.i64, xs.shape)
    step = 1
    for ax in reversed(range(d)):
        pos = e.add(pos, e.mul(e.iota(xs.shape, 2 + ax), step))
        step *= ins[ax]

    def body(s: Emitter, va: Val, pa: Val, vb: Val, pb: Val) -> list[Val]:
        if x.dtype.is_float:
            na, nb = s.isnan(va), s.isnan(vb)
            tie = s.or_(s.compare("EQ", va, vb), s.and_(na, nb))
            wins = s.or_(s.compare("GT", va, vb), s.and_(na, s.not_(nb)))
        else:
            tie, wins = s.compare("EQ", va, vb), s.compare("GT", va, vb)
        pick_a = s.or_(wins, s.and_(tie, s.compare("LT", pa, pb)))
        return [s.select(pick_a, va, vb), s.select(pick_a, pa, pb)]
    vals, best = e.reduce_window(
        [xs, pos], [e.const(lowest(x.dtype), x.dtype), e.const(2**63 - 1, dt.i64)],
        [1, 1] + kernel, [1, 1] + strides, [(0, 0), (0, 0)] + list(zip(pads[:d], high)), body,
        [1, 1] + dil)
    if op.attrs["storage_order"]:  # column-major over the spatial dims
        coords, rest = [], best
        for ax in reversed(range(d)):
            coords.append(e.binary("remainder", rest, e.const(ins[ax], dt.i64)))
            rest = e.div(rest, e.const(ins[ax], dt.i64))
        coords.reverse()
        best, step = e.const(0, dt.i64, best.shape), 1
        for ax in range(d):
            best = e.add(best, e.mul(coords[ax], step))
            step *= ins[ax]
    n, c = x.shape[:2]
    base = e.mul(e.add(e.mul(e.iota(shape, 0), c), e.iota(shape, 1)), math.prod(ins))
    return [vals, e.add(best, base)]


# --- resize_general -------------------------------------------------------------------------------


@lowering("resize_general")
def _resize_general(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0 = args[0]
    shape, dtype = result_type(op)
    a = op.attrs
    nearest = a["mode"] == "nearest"
    crop = a["coordinate_transformation_mode"] == "tf_crop_and_resize"
    attrs = {k: v for k, v in a.items()
             if k not in ("sizes", "scales", "roi", "extrapolation_value")}
    y = x0 if nearest else e.convert(x0, compute_dtype(x0.dtype))
    r = x0.rank
    for ax in range(r):
        n_in, n_out, scale = x0.shape[ax], shape[ax], a["scales"][ax]
        roi = (float(a["roi"][ax]), float(a["roi"][r + ax])) if a["roi"] else None
        if n_out == n_in and scale == 1.0 and roi in (None, (0.0, 1.0)):
            continue
        w0 = axis_map("resize_general", attrs, n_in, n_out, scale, roi, 0.0)
        outside = None
        if crop:
            w1 = axis_map("resize_general", attrs, n_in, n_out, scale, roi, 1.0)
            outside = (w1 != w0).any(axis=1)
            w0 = np.where(outside[:, None], 0.0, w0)
        y = resize_axis(e, ctx, y, ax, w0, outside, nearest, a["extrapolation_value"])
    return [e.convert(y, dtype)]


# --- grid_sample ----------------------------------------------------------------------------------


def _reflect(e: Emitter, v: Val, lo: float, hi: float) -> Val:
    """Reflect coordinates at lo and hi until they fall inside (the reference's _reflect)."""
    span = hi - lo
    if span <= 0:
        return e.const(lo, v.dtype, v.shape)
    below, above = e.sub(e.const(lo, v.dtype), v), e.sub(v, hi)
    is_lo, is_hi = e.compare("LT", v, lo), e.compare("GT", v, hi)
    dist = e.select(is_lo, below, e.select(is_hi, above, e.const(0.0, v.dtype)))
    flips = e.floor(e.div(dist, span))
    rest = e.sub(dist, e.mul(flips, span))
    even = e.compare("EQ", e.binary("remainder", flips, 2.0), 0.0)
    lo_v, hi_v = e.const(lo, v.dtype), e.const(hi, v.dtype)
    from_low = e.select(even, e.add(lo_v, rest), e.sub(hi_v, rest))
    from_high = e.select(even, e.sub(hi_v, rest), e.add(lo_v, rest))
    return e.select(is_lo, from_low, e.select(is_hi, from_high, v))


def _cubic(e: Emitter, t: Val, a: float) -> Val:
    """Keys cubic kernel at distance t >= 0."""
    near = e.add(e.mul(e.mul(e.sub(e.mul(t, a + 2), a + 3), t), t), 1.0)
    far = e.sub(e.mul(e.add(e.mul(e.sub(e.mul(t, a), 5 * a), t), 8 * a), t), 4 * a)
    zero = e.const(0.0, t.dtype)
    return e.select(e.compare("LE", t, 1.0), near, e.select(e.compare("LT", t, 2.0), far, zero))


def _trunc_i64(e: Emitter, v: Val) -> Val:
    return e.convert(v, dt.i64)  # float -> int converts toward zero, as NumPy's astype


@lowering("grid_sample")
def _grid_sample(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0, g0 = args
    shape, dtype = result_type(op)
    mode, padding, align = op.attrs["mode"], op.attrs["padding_mode"], op.attrs["align_corners"]
    wide = ctx.options.wide_float
    x, g = e.convert(x0, wide), e.convert(g0, wide)
    d = x.rank - 2
    ins = list(x.shape[2:])
    nb = x.shape[0]
    lo = [0.0 if align else -0.5 for _ in ins]
    hi = [n - 1.0 if align else n - 0.5 for n in ins]
    coords = []
    for ax, n in enumerate(ins):
        u = e.reshape(e.slice_axis(g, g.rank - 1, d - 1 - ax, d - ax), g.shape[:-1])
        if align:
            c = e.mul(e.div(e.add(u, 1.0), 2.0), float(n - 1))
        else:
            c = e.div(e.sub(e.mul(e.add(u, 1.0), float(n)), 1.0), 2.0)
        if mode == "nearest":
            c = e.unary("round_nearest_even", c)
        if padding == "border":
            clipped = e.op1("stablehlo.clamp", [e.const(0.0, wide), c, e.const(n - 1.0, wide)],
                            c.shape, wide)
            c = e.select(e.or_(e.compare("LT", c, lo[ax]), e.compare("GT", c, hi[ax])), clipped, c)
        elif padding == "reflection":
            c = _reflect(e, c, lo[ax], hi[ax])
        coords.append(c)

    def taps(ax: int) -> list[tuple[Val, Val]]:
        c = coords[ax]
        if mode == "nearest":
            return [(_trunc_i64(e, c), e.const(1.0, wide, c.shape))]
        f = e.floor(c)
        t = e.sub(c, f)
        fi = _trunc_i64(e, f)
        if mode == "linear":
            return [(fi, e.sub(e.const(1.0, wide), t)), (e.add(fi, 1), t)]
        return [(e.add(fi, o), _cubic(e, e.abs(e.sub(e.const(float(o), wide), t)), -0.75))
                for o in (-1, 0, 1, 2)]

    def fix(i: Val, ax: int) -> tuple[Val, Optional[Val]]:
        n = ins[ax]
        clip = lambda v: e.max(e.min(v, n - 1), 0)  # noqa: E731
        if padding == "zeros":
            return clip(i), e.and_(e.compare("GE", i, 0), e.compare("LT", i, n))
        if padding == "border":
            return clip(i), None
        r = _trunc_i64(e, _reflect(e, e.convert(i, wide), lo[ax], hi[ax]))
        return clip(r), None

    batch = e.broadcast_in_dim(e.iota((nb,), 0), g.shape[:-1], [0])
    out: Optional[Val] = None
    for combo in itertools.product(*(taps(ax) for ax in range(d))):
        weight = e.const(1.0, wide, g.shape[:-1])
        index = []
        for ax, (i, w) in enumerate(combo):
            i, ok = fix(i, ax)
            weight = e.mul(weight, w)
            if ok is not None:
                weight = e.mul(weight, e.convert(ok, wide))
            index.append(i)
        vals = e.gather_points(x, [0] + list(range(2, 2 + d)), [batch] + index)  # [N,*out,C]
        term = e.mul(vals, e.reshape(weight, weight.shape + (1,)))
        out = term if out is None else e.add(out, term)
    y = e.transpose(out, [0, d + 1] + list(range(1, d + 1)))
    return [e.convert(e.convert(y, compute_dtype(dtype)), dtype)]


# --- roi_align ------------------------------------------------------------------------------------


def _bilinear_axis(e: Emitter, pos: Val, n: int) -> tuple[Val, Val, Val, Val, Val]:
    """Low/high index, their weights and the in-map flag per sample (ONNX Runtime's rule)."""
    ok = e.and_(e.compare("GE", pos, -1.0), e.compare("LE", pos, float(n)))
    p = e.max(pos, 0.0)
    low = _trunc_i64(e, p)
    edge = e.compare("GE", low, n - 1)
    low = e.select(edge, e.const(n - 1, dt.i64), low)
    high = e.select(edge, e.const(n - 1, dt.i64), e.add(low, 1))
    p = e.select(edge, e.convert(low, pos.dtype), p)
    lw = e.sub(p, e.convert(low, pos.dtype))
    return low, high, e.sub(e.const(1.0, pos.dtype), lw), lw, ok


@lowering("roi_align")
def _roi_align(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0, rois0, bidx = args
    shape, dtype = result_type(op)
    a = op.attrs
    ratio = a["sampling_ratio"]
    if ratio == 0:
        raise unsupported(op, "sampling_ratio=0 samples each bin ceil(roi size / bins) times, a "
                              "count that depends on the roi values; StableHLO needs static "
                              "shapes: give sampling_ratio > 0")
    wide = ctx.options.wide_float
    x, rois = e.convert(x0, wide), e.convert(rois0, wide)
    nr = rois.shape[0]
    c, h, w = x.shape[1:]
    oh, ow = a["output_height"], a["output_width"]
    gh = gw = ratio
    offset = 0.5 if a["coordinate_transformation_mode"] == "half_pixel" else 0.0
    box = e.sub(e.mul(rois, a["spatial_scale"]), offset)
    col = lambda j: e.reshape(e.slice_axis(box, 1, j, j + 1), (nr, 1))  # noqa: E731
    x_0, y_0, x_1, y_1 = col(0), col(1), col(2), col(3)
    rh, rw = e.sub(y_1, y_0), e.sub(x_1, x_0)
    if not offset:  # output_half_pixel: malformed rois are forced to 1x1
        rh, rw = e.max(rh, 1.0), e.max(rw, 1.0)
    bh, bw = e.div(rh, float(oh)), e.div(rw, float(ow))

    def samples(start: Val, bin_size: Val, bins: int, grid: int) -> Val:
        i = e.convert(e.iota((nr, bins, grid), 1), wide)
        k = e.convert(e.iota((nr, bins, grid), 2), wide)
        b3 = e.reshape(bin_size, (nr, 1, 1))
        v = e.add(e.add(e.reshape(start, (nr, 1, 1)), e.mul(i, b3)),
                  e.div(e.mul(e.add(k, 0.5), b3), float(grid)))
        return e.reshape(v, (nr, bins * grid))
    ys, xs = samples(y_0, bh, oh, gh), samples(x_0, bw, ow, gw)
    yl, yh, wyl, wyh, oky = _bilinear_axis(e, ys, h)
    xl, xh, wxl, wxh, okx = _bilinear_axis(e, xs, w)
    sy, sx = ys.shape[1], xs.shape[1]
    ok = e.convert(e.and_(e.reshape(oky, (nr, sy, 1)), e.reshape(okx, (nr, 1, sx))), wide)
    b = wrap_indices(e, ctx, op, bidx, x.shape[0], "batch index")
    b3 = e.reshape(b, (nr, 1, 1))
    corners = []
    for yi, wy in ((yl, wyl), (yh, wyh)):
        for xi, wx in ((xl, wxl), (xh, wxh)):
            v = e.gather_points(x, [0, 2, 3], [b3, e.reshape(yi, (nr, sy, 1)),
                                               e.reshape(xi, (nr, 1, sx))])  # [R, sy, sx, C]
            wt = e.mul(e.mul(e.reshape(wy, (nr, sy, 1)), e.reshape(wx, (nr, 1, sx))), ok)
            corners.append(e.mul(v, e.reshape(wt, (nr, sy, sx, 1))))
    if a["mode"] == "avg":
        val = corners[0]
        for t in corners[1:]:
            val = e.add(val, t)
        val = e.reshape(val, (nr, oh, gh, ow, gw, c))
        val = e.div(e.reduce_simple(val, 0.0, [2, 4], "add"), float(gh * gw))
    else:
        val = corners[0]
        for t in corners[1:]:
            val = e.max(val, t)
        val = e.reduce_simple(e.reshape(val, (nr, oh, gh, ow, gw, c)), float("-inf"), [2, 4],
                              "maximum")
    y = e.transpose(val, [0, 3, 1, 2])
    return [e.convert(e.convert(y, compute_dtype(dtype)), dtype)]


# --- deform_conv ----------------------------------------------------------------------------------


@lowering("deform_conv")
def _deform_conv(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0, w0, off0, bias, mask = optional(args, 5)
    shape, dtype = result_type(op)
    wide = ctx.options.wide_float
    x, w, off = (e.convert(v, wide) for v in (x0, w0, off0))
    n, c, *size = x.shape
    m, ks, out = w.shape[0], list(w.shape[2:]), list(off.shape[2:])
    d, taps = len(ks), math.prod(ks)
    groups, og = op.attrs["groups"], op.attrs["offset_groups"]
    cpg = c // og
    ss, ps, ds = _window_attrs(op, d)
    offs = e.reshape(off, (n, og, taps, d, *out))
    tap_pos = np.stack(np.meshgrid(*[np.arange(k) for k in ks], indexing="ij"), -1).reshape(taps, d)
    full = (n, og, taps, *out)
    pos = []
    for ax in range(d):
        o = e.reshape(e.slice_axis(offs, 3, ax, ax + 1), full)
        grid = e.sub(e.mul(e.convert(e.iota(full, 3 + ax), wide), float(ss[ax])), float(ps[ax]))
        tap = e.broadcast_in_dim(e.const((tap_pos[:, ax] * ds[ax]).astype(np.float64), wide),
                                 full, [2])
        pos.append(e.add(e.add(o, grid), tap))
    xg = e.reshape(x, (n, og, cpg, *size))
    bi, gi = e.iota(full, 0), e.iota(full, 1)
    sampled: Optional[Val] = None
    for corner in np.ndindex(*([2] * d)):
        weight: Optional[Val] = None
        inside: Optional[Val] = None
        index = []
        for ax, hi in enumerate(corner):
            lo = e.floor(pos[ax])
            frac = e.sub(pos[ax], lo)
            i = e.add(_trunc_i64(e, lo), hi)
            wt = frac if hi else e.sub(e.const(1.0, wide), frac)
            weight = wt if weight is None else e.mul(weight, wt)
            ok = e.and_(e.compare("GE", i, 0), e.compare("LT", i, size[ax]))
            inside = ok if inside is None else e.and_(inside, ok)
            index.append(e.max(e.min(i, size[ax] - 1), 0))
        wt = e.select(inside, weight, e.const(0.0, wide))
        v = e.gather_points(xg, [0, 1] + list(range(3, 3 + d)), [bi, gi] + index)  # [*full, cpg]
        term = e.mul(v, e.reshape(wt, full + (1,)))
        sampled = term if sampled is None else e.add(sampled, term)
    if mask is not None:
        mk = e.reshape(e.convert(mask, wide), full + (1,))
        sampled = e.mul(sampled, mk)
    # [n, og, taps, *out, cpg] -> [n, og, cpg, taps, P] -> [n, groups, C/groups, taps, P]
    cols = e.transpose(sampled, [0, 1, 3 + d, 2] + list(range(3, 3 + d)))
    p = math.prod(out)
    cols = e.reshape(cols, (n, groups, c // groups, taps, p))
    wg = e.reshape(w, (groups, m // groups, c // groups, taps))
    y = dot(e, ctx, cols, wg, ([1], [0]), ([2, 3], [2, 3]), out_dtype=wide)  # [g, n, P, m/g]
    y = e.reshape(e.transpose(y, [1, 0, 3, 2]), (n, m, *out))
    if bias is not None:
        y = e.add(y, e.reshape(e.convert(bias, wide), (m,) + (1,) * d))
    return [e.convert(e.convert(y, compute_dtype(dtype)), dtype)]


# --- max_roi_pool ---------------------------------------------------------------------------------


@lowering("max_roi_pool")
def _max_roi_pool(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    """Per roi and bin, the max over a masked window of its feature map (0 for an empty bin);
    bin edges in f32 arithmetic (f64 for f64 inputs), as the reference."""
    x, rois = args
    shape, dtype = result_type(op)
    ph, pw = op.attrs["pooled_shape"]
    nr = rois.shape[0]
    c, height, width = x.shape[1:]
    f = dt.f64 if x.dtype == dt.f64 else dt.f32
    r = e.convert(rois, f)
    corners = e.convert(e.unary("round_nearest_afz",
                                e.mul(e.slice_axis(r, 1, 1, 5), e.const(op.attrs["spatial_scale"],
                                                                        f))), dt.i64)
    col = lambda j: e.reshape(e.slice_axis(corners, 1, j, j + 1), (nr, 1))  # noqa: E731
    x1, y1, x2, y2 = col(0), col(1), col(2), col(3)
    b = e.reshape(e.convert(e.slice_axis(r, 1, 0, 1), dt.i64), (nr,))
    b = wrap_indices(e, ctx, op, b, x.shape[0], "roi batch index")

    def edges(start: Val, stop: Val, bins: int, limit: int) -> tuple[Val, Val]:
        ext = e.convert(e.max(e.add(e.sub(stop, start), 1), 1), dt.f32)
        size = e.div(ext, float(bins))  # f32, as the reference
        i = e.convert(e.iota((nr, bins), 1), dt.f32)
        lo = e.add(e.convert(e.floor(e.mul(i, size)), dt.i64), start)
        hi = e.add(e.convert(e.ceil(e.mul(e.add(i, 1.0), size)), dt.i64), start)
        clamp = lambda v: e.max(e.min(v, limit), 0)  # noqa: E731
        return clamp(lo), clamp(hi)
    h0, h1 = edges(y1, y2, ph, height)
    w0, w1 = edges(x1, x2, pw, width)
    xb = e.gather_points(x, [0], [b])  # [R, C, H, W]
    neg = e.const(float("-inf"), x.dtype)
    # max over W within each column bin: [R, C, H, pw]
    wpos = e.iota((nr, pw, width), 2)
    in_w = e.and_(e.compare("GE", wpos, e.reshape(w0, (nr, pw, 1))),
                  e.compare("LT", wpos, e.reshape(w1, (nr, pw, 1))))
    xw = e.broadcast_in_dim(xb, (nr, c, height, pw, width), [0, 1, 2, 4])
    mw = e.broadcast_in_dim(in_w, (nr, c, height, pw, width), [0, 3, 4])
    t = e.reduce_simple(e.select(mw, xw, neg), float("-inf"), [4], "maximum")
    hpos = e.iota((nr, ph, height), 2)
    in_h = e.and_(e.compare("GE", hpos, e.reshape(h0, (nr, ph, 1))),
                  e.compare("LT", hpos, e.reshape(h1, (nr, ph, 1))))
    th = e.broadcast_in_dim(t, (nr, c, ph, height, pw), [0, 1, 3, 4])
    mh = e.broadcast_in_dim(in_h, (nr, c, ph, height, pw), [0, 2, 3])
    v = e.reduce_simple(e.select(mh, th, neg), float("-inf"), [3], "maximum")  # [R, C, ph, pw]
    nonempty = e.and_(e.broadcast_in_dim(e.compare("GT", h1, h0), (nr, c, ph, pw), [0, 2]),
                      e.broadcast_in_dim(e.compare("GT", w1, w0), (nr, c, ph, pw), [0, 3]))
    return [e.select(nonempty, v, e.const(0.0, x.dtype))]


# --- tfidf_vectorizer -----------------------------------------------------------------------------


@lowering("tfidf_vectorizer")
def _tfidf(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0 = args[0]
    shape, dtype = result_type(op)
    a = op.attrs
    rows = e.convert(e.reshape(x0, (math.prod(x0.shape[:-1]), x0.shape[-1])), dt.i64)
    nrow, c = rows.shape
    size = max(a["ngram_indexes"]) + 1
    counts = e.const(0, dt.i32, (nrow, size))
    grams_by_n = _pool_ngrams(a["pool"], a["ngram_counts"], a["min_gram_length"],
                              a["max_gram_length"])
    for n, grams in grams_by_n.items():
        if not grams:
            continue
        table = {g: a["ngram_indexes"][k] for g, k in grams}  # a repeated n-gram: the last wins
        keys = np.array(list(table), np.int64).reshape(len(table), n)
        onehot = np.zeros((len(table), size), np.int32)
        onehot[np.arange(len(table)), list(table.values())] = 1
        for skip in range(1 if n == 1 else a["max_skip_count"] + 1):
            step = skip + 1
            starts = c - step * (n - 1)
            if starts <= 0:
                break
            match: Optional[Val] = None
            for k in range(n):
                win = e.slice_axis(rows, 1, k * step, k * step + starts)  # [rows, starts]
                key = e.const(keys[:, k], dt.i64)
                eq = e.compare("EQ", e.broadcast_in_dim(win, (nrow, starts, len(table)), [0, 1]),
                               e.broadcast_in_dim(key, (nrow, starts, len(table)), [2]))
                match = eq if match is None else e.and_(match, eq)
            hits = e.reduce_simple(e.convert(match, dt.i32), 0, [1], "add")  # [rows, G]
            counts = e.add(counts, e.dot_general(hits, e.const(onehot, dt.i32), ([], []),
                                                 ([1], [0])))
    y = e.convert(counts, dt.f32)
    if a["mode"] != "TF":
        wts = np.asarray(a["weights"][:size], np.float32) if a["weights"] else \
            np.ones(size, np.float32)
        wv = e.const(wts, dt.f32)
        y = e.mul(wv, e.convert(e.compare("GT", counts, 0), dt.f32)) if a["mode"] == "IDF" \
            else e.mul(wv, y)
    return [e.reshape(y, shape)]
