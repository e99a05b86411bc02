"""Ops ONNX has that fit no other family: cumulative product, bit reinterpretation, deformable
convolution, ROI max pooling and n-gram counting (TfIdfVectorizer). ONNX semantics.

f16 and bf16 cumulative products are computed in f32 and rounded once, as the code generators do;
deform_conv computes in f64 and rounds once.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from .. import dtypes as dt
from ..registry import attr, def_op
from ..types import TensorType, TypeInferenceError, format_dim
from ._common import require_dtype
from .elementwise import _in_f32
from .linalg import merge_dim
from .nn import _check_bias, _conv_operands, _spatial_out, _static_channels, _static_kernel, \
    _window
from .reduction import _along_axis, _axis_rule

NUMERIC = ("int", "uint", "float")
INT = ("int", "uint")

# --- cumprod --------------------------------------------------------------------------------------


def _cumprod(x: np.ndarray, axis: int, exclusive: bool, reverse: bool) -> np.ndarray:
    if reverse:
        x = np.flip(x, axis)
    if exclusive:  # the product of the elements before: 1 first, then x shifted by one
        ones = np.ones_like(np.take(x, [0], axis=axis))
        x = np.concatenate([ones, np.take(x, np.arange(x.shape[axis] - 1), axis=axis)], axis)
    with np.errstate(all="ignore"):
        out = np.cumprod(x, axis=axis, dtype=x.dtype)
    return np.flip(out, axis) if reverse else out


def_op("cumprod", ["x"], _axis_rule("cumprod", NUMERIC), _in_f32(_along_axis(_cumprod)),
       attrs={"axis": attr("int"), "exclusive": attr("bool", False),
              "reverse": attr("bool", False)},
       traits=("pure",),
       doc="running product along axis (ONNX CumProd); exclusive omits x itself (1 first), "
           "reverse runs backward; integers wrap")

# --- bitcast --------------------------------------------------------------------------------------


def _bitcast_rule(x: TensorType, to: dt.DType) -> TensorType:
    if x.dtype.bits != to.bits:
        raise TypeInferenceError(f"bitcast needs dtypes of one bit width, got {x.dtype} "
                                 f"({x.dtype.bits} bits) to {to} ({to.bits} bits)")
    return x.with_dtype(to)


def _bitcast(x: np.ndarray, to: dt.DType) -> np.ndarray:
    x = np.asarray(x)  # a view of equal itemsize works for any strides
    if to.is_bool:  # a byte other than 0 or 1 is no valid bool: any set bit reads as true
        return x.view(np.uint8) != 0
    out = x.view(to.np_dtype)
    if to.bits < 8:  # 4- and 2-bit elements take a byte each: keep only their low bits
        out = (out.view(np.uint8) & np.uint8((1 << to.bits) - 1)).view(to.np_dtype)
    return out


def_op("bitcast", ["x"], _bitcast_rule, _bitcast, attrs={"to": attr("dtype")},
       traits=("pure", "elementwise"),
       doc="the same bits read as dtype `to` of equal width (ONNX BitCast, little endian); "
           "a byte read as bool is true when nonzero")

# --- deform_conv ----------------------------------------------------------------------------------


def _deform_conv_rule(x: TensorType, w: TensorType, offset: TensorType,
                      bias: Optional[TensorType] = None, mask: Optional[TensorType] = None, *,
                      strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
                      groups: int, offset_groups: int) -> TensorType:
    op = "deform_conv"
    dtype, d = _conv_operands(op, x, w, bias, groups, "[M, C/groups, *kernel]")
    ss, ps, ds = _window(op, d, strides, pads, dilations)
    ks = _static_kernel(op, w)
    c, m, cg = x.shape[1], w.shape[0], w.shape[1]
    if offset_groups < 1:
        raise TypeInferenceError(f"{op} attribute 'offset_groups' must be >= 1, got "
                                 f"{offset_groups}")
    if groups == 1 and offset_groups == 1:
        merge_dim(op, f"input channels (x {x} dim 1, weight {w} dim 1)", c, cg)
    else:
        _static_channels(op, max(groups, offset_groups), **{
            "input channel count": c, "output channel count": m, "weight dim 1": cg})
        if c % groups or m % groups or cg * groups != c:  # type: ignore[operator]
            raise TypeInferenceError(f"{op} groups={groups} must divide the input channels ({c}) "
                                     f"and the output channels ({m}), and weight dim 1 must be "
                                     f"C/groups, got weight {w}")
        if c % offset_groups:  # type: ignore[operator]
            raise TypeInferenceError(f"{op} offset_groups={offset_groups} must divide the input "
                                     f"channels ({c})")
    m = _check_bias(op, bias, m)

    def static(ax: int, i: int) -> int:
        reach = ds[ax] * (ks[ax] - 1) + 1
        out = (i + ps[ax] + ps[d + ax] - reach) // ss[ax] + 1
        if out < 1:
            raise ValueError(out)
        return out

    def same(ax: int) -> bool:
        return ss[ax] == 1 and ps[ax] + ps[d + ax] == ds[ax] * (ks[ax] - 1)

    def detail(ax: int) -> str:
        return f"kernel {ks[ax]}, stride {ss[ax]}, pads {ps[ax]},{ps[d + ax]}, dilation {ds[ax]}"

    out = _spatial_out(op, x, d, static, same, detail)
    taps = offset_groups * math.prod(ks)
    for name, t, channels in (("offset", offset, taps * d), ("mask", mask, taps)):
        if t is None:
            continue
        if t.dtype != dtype:
            raise TypeInferenceError(f"{op} {name} must be {dtype} like x, got {t}")
        if t.rank != x.rank:
            raise TypeInferenceError(f"{op} {name} must be [N, {channels}, *out] with rank "
                                     f"{x.rank}, got {t}")
        merge_dim(op, f"batch (x {x}, {name} {t})", x.shape[0], t.shape[0])
        merge_dim(op, f"{name} channels (offset_groups * kernel taps"
                      f"{' * spatial dims' if name == 'offset' else ''} = {channels}, {name} {t})",
                  channels, t.shape[1])
        out = [merge_dim(op, f"output dim {ax} ({format_dim(o)} from the window, {name} {t})",
                         o, t.shape[2 + ax]) for ax, o in enumerate(out)]
    return TensorType((x.shape[0], m, *out), dtype)


def _deform_conv(x: np.ndarray, w: np.ndarray, offset: np.ndarray,
                 bias: Optional[np.ndarray] = None, mask: Optional[np.ndarray] = None, *,
                 strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
                 groups: int, offset_groups: int) -> np.ndarray:
    """Each kernel tap reads x bilinearly at its regular position plus its offset (0 outside x),
    scaled by the mask, then a grouped convolution sums the taps."""
    dtype = x.dtype
    x, w, offset = (a.astype(np.float64) for a in (x, w, offset))
    n, c, *size = x.shape
    m, ks, out = w.shape[0], w.shape[2:], offset.shape[2:]
    d, taps, cpg = len(ks), math.prod(w.shape[2:]), c // offset_groups
    ss, ps, ds = (list(strides) or [1] * d, list(pads) or [0] * (2 * d),
                  list(dilations) or [1] * d)
    off = offset.reshape(n, offset_groups, taps, d, *out)
    # where each tap samples, per axis: output position * stride - pad + tap * dilation + offset
    tap_pos = np.stack(np.meshgrid(*[np.arange(k) for k in ks], indexing="ij"), -1).reshape(taps, d)
    pos = []
    for ax in range(d):
        grid = np.arange(out[ax]) * ss[ax] - ps[ax]
        grid = grid.reshape([1, 1, 1] + [-1 if a == ax else 1 for a in range(d)])
        tap = (tap_pos[:, ax] * ds[ax]).reshape([1, 1, taps] + [1] * d)
        pos.append(off[:, :, :, ax] + grid + tap)  # [n, offset_groups, taps, *out]
    # bilinear (N-linear) interpolation over the 2**d corners; corners outside x read 0
    xg = np.moveaxis(x.reshape(n, offset_groups, cpg, *size), 2, 0)  # [cpg, n, og, *size]
    bi = np.arange(n).reshape([n, 1, 1] + [1] * d)
    gi = np.arange(offset_groups).reshape([1, offset_groups, 1] + [1] * d)
    sampled = np.zeros((cpg,) + pos[0].shape)
    for corner in np.ndindex(*([2] * d)):
        weight, index, inside = 1.0, [], True
        for ax, hi in enumerate(corner):
            lo = np.floor(pos[ax])
            frac = pos[ax] - lo
            i = lo.astype(np.int64) + hi
            weight = weight * (frac if hi else 1.0 - frac)
            inside = inside & (i >= 0) & (i < size[ax])
            index.append(np.clip(i, 0, size[ax] - 1))
        sampled += xg[(slice(None), bi, gi, *index)] * np.where(inside, weight, 0.0)
    if mask is not None:
        sampled *= mask.astype(np.float64).reshape(n, offset_groups, taps, *out)
    # [cpg, n, og, taps, *out] -> columns [n, groups, C/groups, taps, P], then a grouped matmul
    cols = np.moveaxis(sampled, 0, 2).reshape(n, groups, c // groups, taps, -1)
    wg = w.reshape(groups, m // groups, c // groups, taps)
    y = np.einsum("ngckp,gmck->ngmp", cols, wg).reshape(n, m, *out)
    if bias is not None:
        y += bias.astype(np.float64).reshape([1, m] + [1] * d)
    return y.astype(dtype)


def_op("deform_conv", ["x", "w", "offset", "bias?", "mask?"], _deform_conv_rule, _deform_conv,
       attrs={"strides": attr("ints", ()), "pads": attr("ints", ()),
              "dilations": attr("ints", ()), "groups": attr("int", 1),
              "offset_groups": attr("int", 1)},
       traits=("pure", "contraction"),
       doc="ONNX DeformConv: x [N,C,*in], w [M,C/groups,*k], offset [N,offset_groups*K*d,*out] "
           "(K = prod(k) taps, per tap the d axis offsets), bias [M], mask "
           "[N,offset_groups*K,*out] -> [N,M,*out]; taps sample x bilinearly, 0 outside")

# --- max_roi_pool ---------------------------------------------------------------------------------


def _max_roi_pool_rule(x: TensorType, rois: TensorType, *, pooled_shape: Sequence[int],
                       spatial_scale: float) -> TensorType:
    op = "max_roi_pool"
    require_dtype(op, x, ("float",), "operand x")
    if x.rank != 4:
        raise TypeInferenceError(f"{op} input x must be [N, C, H, W], got {x}")
    if rois.dtype != x.dtype or rois.rank != 2:
        raise TypeInferenceError(f"{op} rois must be {x.dtype} [R, 5] (batch index, x1, y1, x2, "
                                 f"y2), got {rois}")
    merge_dim(op, f"rois {rois} dim 1 (batch index, x1, y1, x2, y2)", rois.shape[1], 5)
    if len(pooled_shape) != 2 or min(pooled_shape) < 1:
        raise TypeInferenceError(f"{op} attribute 'pooled_shape' must be two sizes >= 1, got "
                                 f"{list(pooled_shape)}")
    return TensorType((rois.shape[0], x.shape[1], *pooled_shape), x.dtype)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def _max_roi_pool(x: np.ndarray, rois: np.ndarray, *, pooled_shape: Sequence[int],
                  spatial_scale: float) -> np.ndarray:
    """Caffe's ROI pooling, as ONNX Runtime implements MaxRoiPool: roi corners scaled and rounded
    (half away from zero), the roi (at least 1x1, corners inclusive) cut into pooled_shape bins
    of floor..ceil extent clipped to x; each bin's max, 0 for a bin outside x."""
    n_rois, (ph, pw) = rois.shape[0], pooled_shape
    height, width = x.shape[2:]
    out = np.zeros((n_rois, x.shape[1], ph, pw), x.dtype)
    # bin edges in f32 arithmetic, as ONNX Runtime computes them: floor/ceil of an edge that is
    # an integer up to rounding must round the same way
    f = np.float64 if x.dtype == np.float64 else np.float32
    corners = _round_half_away(rois[:, 1:].astype(f) * f(spatial_scale)).astype(np.int64)
    for r in range(n_rois):
        b = int(rois[r, 0])
        x1, y1, x2, y2 = (int(v) for v in corners[r])
        bin_h = np.float32(max(y2 - y1 + 1, 1)) / np.float32(ph)
        bin_w = np.float32(max(x2 - x1 + 1, 1)) / np.float32(pw)
        for i in range(ph):
            h0 = min(max(int(np.floor(np.float32(i) * bin_h)) + y1, 0), height)
            h1 = min(max(int(np.ceil(np.float32(i + 1) * bin_h)) + y1, 0), height)
            for j in range(pw):
                w0 = min(max(int(np.floor(np.float32(j) * bin_w)) + x1, 0), width)
                w1 = min(max(int(np.ceil(np.float32(j + 1) * bin_w)) + x1, 0), width)
                if h1 > h0 and w1 > w0:
                    out[r, :, i, j] = x[b, :, h0:h1, w0:w1].max(axis=(1, 2))
    return out


def_op("max_roi_pool", ["x", "rois"], _max_roi_pool_rule, _max_roi_pool,
       attrs={"pooled_shape": attr("ints"), "spatial_scale": attr("float", 1.0)},
       traits=("pure",),
       doc="ONNX MaxRoiPool (Caffe ROI pooling): x [N,C,H,W], rois [R,5] (batch index, x1, y1, "
           "x2, y2) -> [R,C,*pooled_shape], the max of each bin of each scaled, rounded roi; 0 for "
           "a bin outside x")

# --- tfidf_vectorizer -----------------------------------------------------------------------------


def _pool_ngrams(pool: Sequence[int], ngram_counts: Sequence[int], min_gram_length: int,
                 max_gram_length: int) -> dict[int, list[tuple[tuple[int, ...], int]]]:
    """The pool's n-grams by length (only lengths in [min, max]), each with its position in the
    pool's n-gram order (which ngram_indexes maps to an output column)."""
    out: dict[int, list[tuple[tuple[int, ...], int]]] = {}
    ordinal = 0
    for i, start in enumerate(ngram_counts):
        n = i + 1
        end = ngram_counts[i + 1] if i + 1 < len(ngram_counts) else len(pool)
        count = max(end - start, 0) // n
        if min_gram_length <= n <= max_gram_length:
            out[n] = [(tuple(pool[start + j * n: start + (j + 1) * n]), ordinal + j)
                      for j in range(count)]
        ordinal += count
    return out


def _tfidf_rule(x: TensorType, *, mode: str, min_gram_length: int, max_gram_length: int,
                max_skip_count: int, pool: Sequence[int], ngram_counts: Sequence[int],
                ngram_indexes: Sequence[int], weights: Sequence[float]) -> TensorType:
    op = "tfidf_vectorizer"
    require_dtype(op, x, INT, "operand x")
    if x.rank not in (1, 2):
        raise TypeInferenceError(f"{op} input must be [C] or [N, C], got {x}")
    if not 1 <= min_gram_length <= max_gram_length or max_skip_count < 0:
        raise TypeInferenceError(f"{op} needs 1 <= min_gram_length ({min_gram_length}) <= "
                                 f"max_gram_length ({max_gram_length}) and max_skip_count >= 0 "
                                 f"({max_skip_count})")
    if not ngram_indexes or min(ngram_indexes) < 0:
        raise TypeInferenceError(f"{op} ngram_indexes must be non-empty and >= 0, got "
                                 f"{list(ngram_indexes)}")
    if list(ngram_counts) != sorted(ngram_counts) or any(
            not 0 <= s <= len(pool) for s in ngram_counts):
        raise TypeInferenceError(f"{op} ngram_counts must be non-decreasing start positions in "
                                 f"the pool (of {len(pool)}), got {list(ngram_counts)}")
    total = sum(len(v) for v in _pool_ngrams(pool, ngram_counts, 1, len(ngram_counts)).values())
    if total > len(ngram_indexes):
        raise TypeInferenceError(f"{op} pool holds {total} n-grams but ngram_indexes maps only "
                                 f"{len(ngram_indexes)}")
    size = max(ngram_indexes) + 1
    if weights and len(weights) < size:
        raise TypeInferenceError(f"{op} weights must hold one value per output column ({size}), "
                                 f"got {len(weights)}")
    return TensorType((*x.shape[:-1], size), dt.f32)


def _tfidf_vectorizer(x: np.ndarray, *, mode: str, min_gram_length: int, max_gram_length: int,
                      max_skip_count: int, pool: Sequence[int], ngram_counts: Sequence[int],
                      ngram_indexes: Sequence[int], weights: Sequence[float]) -> np.ndarray:
    rows = x.reshape(math.prod(x.shape[:-1]), x.shape[-1])
    c, size = rows.shape[1], max(ngram_indexes) + 1
    counts = np.zeros((rows.shape[0], size), np.int64)
    for n, grams in _pool_ngrams(pool, ngram_counts, min_gram_length, max_gram_length).items():
        if not grams:
            continue
        table = {g: ngram_indexes[k] for g, k in grams}  # a repeated n-gram: the last one wins
        keys = np.array(list(table), np.int64)  # [G, n]
        cols = np.array(list(table.values()), np.int64)
        # unigrams do not depend on the skip, so they are counted once
        for skip in range(1 if n == 1 else max_skip_count + 1):
            step = skip + 1
            starts = c - step * (n - 1)
            if starts <= 0:
                break
            windows = np.stack([rows[:, k * step: k * step + starts] for k in range(n)], -1)
            hits = (windows[:, :, None, :] == keys[None, None]).all(-1).sum(1)  # [rows, G]
            np.add.at(counts, (slice(None), cols), hits)
    if mode == "TF":
        y = counts.astype(np.float32)
    else:
        w = np.asarray(weights[:size], np.float32) if weights else np.ones(size, np.float32)
        y = w * (counts > 0) if mode == "IDF" else w * counts.astype(np.float32)
    return y.astype(np.float32).reshape(*x.shape[:-1], size)


def_op("tfidf_vectorizer", ["x"], _tfidf_rule, _tfidf_vectorizer,
       attrs={"mode": attr("str", "TF", choices=("TF", "IDF", "TFIDF")),
              "min_gram_length": attr("int", 1), "max_gram_length": attr("int", 1),
              "max_skip_count": attr("int", 0), "pool": attr("ints"),
              "ngram_counts": attr("ints"), "ngram_indexes": attr("ints"),
              "weights": attr("floats", ())},
       traits=("pure",),
       doc="ONNX TfIdfVectorizer on integers: counts of the pool's n-grams (lengths min..max, "
           "items up to max_skip_count apart) in each row of x [C] or [N, C] -> f32 [..., "
           "max(ngram_indexes)+1]; n-grams start at ngram_counts[n-1] in the pool, the i-th maps "
           "to column ngram_indexes[i]; IDF gives weights[col] where the count > 0, TFIDF "
           "weights[col] * count (empty weights: 1)")
