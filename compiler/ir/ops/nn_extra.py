"""Neural-network ops beyond nn.py that ONNX models need and no composition of IR ops expresses
exactly: max pooling with argmax indices, Resize in full generality, GridSample and RoiAlign.

Layout is channels-first like nn.py: x is [N, C, *spatial]; `pads` lists begins then ends.

- max_pool_with_indices: ONNX MaxPool with its Indices output (flat indices into x, row-major,
  or column-major over the spatial dims with storage_order=1; the first maximum wins).
- resize_general: ONNX Resize (opsets 11-19) with the float `scales` used in the coordinate
  transform (they differ from sizes/input when the output length was rounded), a
  tf_crop_and_resize `roi` with `extrapolation_value`, and `antialias` (a widened, renormalized
  kernel when downsampling). `resize` in nn.py is the exact-ratio subset that code generators
  implement first.
- grid_sample: ONNX GridSample (opset 20 names: linear/nearest/cubic) on 1 to 3 spatial dims.
- roi_align: ONNX RoiAlign on [N, C, H, W] (avg or max of bilinear samples per bin).

Floats are computed in f64 in the references and rounded once to the input dtype.
"""
from __future__ import annotations

import itertools
from typing import Optional, Sequence

import numpy as np

from .. import dtypes as dt
from ..reference import nn as ref
from ..registry import attr, def_op
from ..types import Dim, TensorType, TypeInferenceError, format_dim
from ._common import require_dtype, same_dtype
from .linalg import merge_dim
from .nn import _defaults, _pool_shape

FLOAT = ("float",)
NUMERIC = ("float", "int", "uint")


def _wide(x: np.ndarray) -> np.ndarray:
    """x as f64 (bf16's NumPy type is not a float kind, so convert through f32)."""
    if x.dtype == dt.bf16.np_dtype:
        x = x.astype(np.float32)
    return x.astype(np.float64)


def _narrow(y: np.ndarray, like: np.dtype) -> np.ndarray:
    """Round an f64 result once to the input dtype."""
    if like == dt.bf16.np_dtype:
        return y.astype(np.float32).astype(like)
    return y.astype(like)


# --- max_pool_with_indices ------------------------------------------------------------------------


def _max_pool_with_indices_rule(x: TensorType, *, kernel: Sequence[int], strides: Sequence[int],
                                pads: Sequence[int], dilations: Sequence[int], ceil_mode: bool,
                                storage_order: int) -> list[TensorType]:
    op = "max_pool_with_indices"
    require_dtype(op, x, NUMERIC)
    if storage_order not in (0, 1):
        raise TypeInferenceError(f"{op} attribute 'storage_order' must be 0 (row-major) or 1 "
                                 f"(column-major), got {storage_order}")
    y = _pool_shape(op, x, kernel, strides, pads, dilations, ceil_mode)
    return [y, y.with_dtype(dt.i64)]


def _max_pool_with_indices(x: np.ndarray, *, kernel: Sequence[int], strides: Sequence[int],
                           pads: Sequence[int], dilations: Sequence[int], ceil_mode: bool,
                           storage_order: int) -> tuple[np.ndarray, np.ndarray]:
    d = x.ndim - 2
    ss, ps, ds = _defaults(d, strides, pads, dilations)
    ins = list(x.shape[2:])
    out = ref.pool_output_shape(ins, kernel, ss, ps, ds, ceil_mode)
    # flat offset of each spatial position: row-major, or column-major with storage_order=1
    order = range(d) if storage_order else reversed(range(d))
    step, steps = 1, [0] * d
    for ax in order:
        steps[ax] = step
        step *= ins[ax]
    n, c = x.shape[:2]
    best = np.zeros((n, c, *out), dtype=x.dtype)
    index = np.full((n, c, *out), -1, dtype=np.int64)
    for taps in itertools.product(*(range(k) for k in kernel)):
        pos = [np.arange(o) * s + t * dl - p for o, s, t, dl, p in zip(out, ss, taps, ds, ps)]
        valid = np.ones(out, dtype=bool)
        flat = np.zeros(out, dtype=np.int64)
        grids = np.meshgrid(*pos, indexing="ij")
        for ax, g in enumerate(grids):
            valid &= (g >= 0) & (g < ins[ax])
            flat += np.clip(g, 0, ins[ax] - 1) * steps[ax]
        v = x[(slice(None), slice(None)) + tuple(np.clip(g, 0, i - 1) for g, i in zip(grids, ins))]
        take = valid & ((index < 0) | (v > best))  # strict: the first maximum wins
        best = np.where(take, v, best)
        index = np.where(take, flat, index)
    base = (np.arange(n * c, dtype=np.int64) * step).reshape(n, c, *([1] * d))
    return best, index + base


def_op("max_pool_with_indices", ["x"], _max_pool_with_indices_rule, _max_pool_with_indices,
       attrs={"kernel": attr("ints"), "strides": attr("ints", ()), "pads": attr("ints", ()),
              "dilations": attr("ints", ()), "ceil_mode": attr("bool", False),
              "storage_order": attr("int", 0)},
       traits=("pure",),
       doc="ONNX MaxPool with Indices: max values and i64 flat indices into x (first maximum; "
           "storage_order 1 flattens the spatial dims column-major); empty strides/pads/"
           "dilations mean 1/0/1")


# --- resize_general -------------------------------------------------------------------------------

_RESIZE_MODES = ("nearest", "linear", "cubic")
_COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _resize_general_rule(x: TensorType, *, sizes: Sequence[Dim], scales: Sequence[float],
                         mode: str, coordinate_transformation_mode: str, nearest_mode: str,
                         cubic_coeff_a: float, exclude_outside: bool, antialias: bool,
                         roi: Sequence[float], extrapolation_value: float) -> TensorType:
    op = "resize_general"
    require_dtype(op, x, NUMERIC if mode == "nearest" else FLOAT)
    r = x.rank
    if r < 1:
        raise TypeInferenceError(f"{op} input must have rank >= 1, got {x}")
    if len(sizes) != r or len(scales) != r:
        raise TypeInferenceError(f"{op} attributes 'sizes' and 'scales' need {r} values (one per "
                                 f"dim of {x}), got sizes={list(sizes)}, scales={list(scales)}")
    if any(not s > 0 for s in scales):
        raise TypeInferenceError(f"{op} scales must be > 0, got {list(scales)}")
    if roi and len(roi) != 2 * r:
        raise TypeInferenceError(f"{op} attribute 'roi' must be empty or hold {2 * r} values "
                                 f"(starts, then ends), got {list(roi)}")
    if coordinate_transformation_mode == "tf_crop_and_resize" and not roi:
        raise TypeInferenceError(f"{op} with tf_crop_and_resize needs 'roi'")
    if antialias and mode == "nearest":
        raise TypeInferenceError(f"{op}: antialias applies to linear and cubic modes only")
    for ax, (n, i, s) in enumerate(zip(sizes, x.shape, scales)):
        if isinstance(n, int) and n < 1:
            raise TypeInferenceError(f"{op} sizes must be >= 1, got {list(sizes)}")
        if isinstance(n, str) and (n != i or s != 1.0):
            raise TypeInferenceError(f"{op} sizes[{ax}] is ?{n}: a symbolic size must equal the "
                                     f"input's ({format_dim(i)}) with scale 1")
        if isinstance(i, str) and i != n:
            raise TypeInferenceError(f"{op} resizes dim {ax} of {x}, which is symbolic; resizing "
                                     "needs a static input size")
    return x.with_shape(tuple(sizes))


def _source_coords(n_in: int, n_out: int, scale: float, mode: str,
                   roi: Optional[tuple[float, float]]) -> np.ndarray:
    """Input coordinate of each output index along one axis (ONNX's coordinate transforms)."""
    y = np.arange(n_out, dtype=np.float64)
    width = scale * n_in
    if mode == "align_corners":
        return np.zeros(n_out) if width == 1 else y * (n_in - 1) / (width - 1)
    if mode == "asymmetric":
        return y / scale
    if mode == "tf_half_pixel_for_nn":  # ONNX opsets 11-12
        return (y + 0.5) / scale
    if mode == "tf_crop_and_resize":
        lo, hi = roi  # type: ignore[misc]
        span = (hi - lo) * (n_in - 1)
        x = np.full(n_out, span / 2) if width == 1 else y * span / (width - 1)
        return x + lo * (n_in - 1)
    if mode == "pytorch_half_pixel" and width == 1:
        return np.full(n_out, -0.5)
    x = (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        x = x + (n_in / 2) * (1 - n_out / width)
    return x


def _kernel(mode: str, t: np.ndarray, a: float) -> np.ndarray:
    """Interpolation kernel at distance t >= 0 (linear hat or Keys cubic with coefficient a)."""
    if mode == "linear":
        return np.clip(1 - t, 0, 1)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _resize_axis(y: np.ndarray, axis: int, n_out: int, scale: float, mode: str, coord: str,
                 nearest_mode: str, a: float, exclude_outside: bool, antialias: bool,
                 roi: Optional[tuple[float, float]], extrapolation_value: float) -> np.ndarray:
    n_in = y.shape[axis]
    xs = _source_coords(n_in, n_out, scale, coord, roi)
    bshape = [1] * y.ndim
    bshape[axis] = n_out
    if mode == "nearest":
        idx = {"round_prefer_floor": np.ceil(xs - 0.5), "round_prefer_ceil": np.floor(xs + 0.5),
               "floor": np.floor(xs), "ceil": np.ceil(xs)}[nearest_mode]
        res = np.take(y, np.clip(idx.astype(np.int64), 0, n_in - 1), axis=axis)
    else:
        # ONNX picks taps left-biased: base = ceil(x) - 1, ratio in (0, 1]; antialias widens the
        # kernel by 1/scale when downsampling and renormalizes it
        base = np.ceil(xs).astype(np.int64) - 1
        ratio = xs - base
        reach = 1 if mode == "linear" else 2
        s = min(scale, 1.0) if antialias else 1.0
        first = int(np.floor(-reach / s)) + 1
        offsets = range(first, 2 - first) if antialias else range(1 - reach, reach + 1)
        idxs = [base + o for o in offsets]
        ws = [_kernel(mode, np.abs((o - ratio) * s), a) for o in offsets]
        if antialias:
            total = sum(ws)
            ws = [w / total for w in ws]
        if exclude_outside:
            ws = [np.where((i >= 0) & (i < n_in), w, 0.0) for i, w in zip(idxs, ws)]
            total = sum(ws)
            ws = [w / np.where(total == 0, 1.0, total) for w in ws]
        res = sum(np.take(y, np.clip(i, 0, n_in - 1), axis=axis) * w.reshape(bshape)
                  for i, w in zip(idxs, ws))
    if coord == "tf_crop_and_resize":
        outside = ((xs < 0) | (xs > n_in - 1)).reshape(bshape)
        res = np.where(outside, np.asarray(extrapolation_value, dtype=res.dtype), res)
    return res


def _resize_general(x: np.ndarray, *, sizes: Sequence[Dim], scales: Sequence[float], mode: str,
                    coordinate_transformation_mode: str, nearest_mode: str,
                    cubic_coeff_a: float, exclude_outside: bool, antialias: bool,
                    roi: Sequence[float], extrapolation_value: float) -> np.ndarray:
    r = x.ndim
    y = x if mode == "nearest" else _wide(x)
    for ax in range(r):
        n_out = sizes[ax] if isinstance(sizes[ax], int) else x.shape[ax]
        lo_hi = (float(roi[ax]), float(roi[r + ax])) if roi else None
        if n_out == x.shape[ax] and scales[ax] == 1.0 and lo_hi in (None, (0.0, 1.0)):
            continue
        if x.shape[ax] == 0:
            raise ValueError(f"resize_general: cannot resize empty dim {ax} of {x.shape}")
        y = _resize_axis(y, ax, int(n_out), float(scales[ax]), mode,
                         coordinate_transformation_mode, nearest_mode, float(cubic_coeff_a),
                         bool(exclude_outside), bool(antialias), lo_hi,
                         float(extrapolation_value))
    if mode == "nearest" and y.dtype == x.dtype:
        return np.ascontiguousarray(y)
    return np.ascontiguousarray(_narrow(np.asarray(y), x.dtype))


def_op("resize_general", ["x"], _resize_general_rule, _resize_general,
       attrs={"sizes": attr("dims"), "scales": attr("floats"),
              "mode": attr("str", "nearest", choices=_RESIZE_MODES),
              "coordinate_transformation_mode": attr("str", "half_pixel", choices=_COORD_MODES),
              "nearest_mode": attr("str", "round_prefer_floor", choices=_NEAREST_MODES),
              "cubic_coeff_a": attr("float", -0.75), "exclude_outside": attr("bool", False),
              "antialias": attr("bool", False), "roi": attr("floats", ()),
              "extrapolation_value": attr("float", 0.0)},
       traits=("pure",),
       doc="ONNX Resize to shape `sizes` with per-dim float `scales` in the coordinate "
           "transform, optional tf_crop_and_resize `roi` (empty: none) and antialias")


# --- grid_sample ----------------------------------------------------------------------------------

_GRID_MODES = ("linear", "nearest", "cubic")
_GRID_PADDING = ("zeros", "border", "reflection")


def _grid_sample_rule(x: TensorType, grid: TensorType, *, mode: str, padding_mode: str,
                      align_corners: bool) -> TensorType:
    op = "grid_sample"
    same_dtype(op, x, grid)
    require_dtype(op, x, FLOAT)
    d = x.rank - 2
    if not 1 <= d <= 3:
        raise TypeInferenceError(f"{op} input x must be [N, C, *spatial] with 1 to 3 spatial "
                                 f"dims, got {x}")
    if grid.rank != x.rank or grid.shape[-1] != d:
        raise TypeInferenceError(f"{op} grid must be [N, *out, {d}] (rank {x.rank}, last dim "
                                 f"the {d} spatial coordinates of x {x}), got {grid}")
    n = merge_dim(op, f"batch (x {x} dim 0, grid {grid} dim 0)", x.shape[0], grid.shape[0])
    for ax, i in enumerate(x.shape[2:]):
        if isinstance(i, str):
            raise TypeInferenceError(f"{op} needs static spatial dims of x, got {x}")
    return x.with_shape((n, x.shape[1], *grid.shape[1:-1]))


def _reflect(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect coordinates at the borders lo and hi until they fall inside (PyTorch's rule)."""
    span = hi - lo
    if span <= 0:
        return np.full_like(v, lo)
    below, above = lo - v, v - hi
    dist = np.where(v < lo, below, np.where(v > hi, above, 0.0))
    flips = np.floor(dist / span)
    rest = dist - flips * span
    even = flips % 2 == 0
    from_low = np.where(even, lo + rest, hi - rest)
    from_high = np.where(even, hi - rest, lo + rest)
    return np.where(v < lo, from_low, np.where(v > hi, from_high, v))


def _grid_sample(x: np.ndarray, grid: np.ndarray, *, mode: str, padding_mode: str,
                 align_corners: bool) -> np.ndarray:
    d = x.ndim - 2
    ins = x.shape[2:]
    xw, g = _wide(x), _wide(grid)
    lo = [0.0 if align_corners else -0.5 for _ in ins]
    hi = [n - 1.0 if align_corners else n - 0.5 for n in ins]
    # grid's last dim lists coordinates innermost-first (x = last spatial axis)
    coords = []
    for ax, n in enumerate(ins):
        u = g[..., d - 1 - ax]
        c = (u + 1) / 2 * (n - 1) if align_corners else ((u + 1) * n - 1) / 2
        if mode == "nearest":
            c = np.rint(c)  # half to even, like PyTorch
        if padding_mode == "border":
            c = np.where((c < lo[ax]) | (c > hi[ax]), np.clip(c, 0, n - 1), c)
        elif padding_mode == "reflection":
            c = _reflect(c, lo[ax], hi[ax])
        coords.append(c)

    def taps(ax: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(index, weight) pairs for one axis."""
        c = coords[ax]
        if mode == "nearest":
            return [(c.astype(np.int64), np.ones_like(c))]
        f = np.floor(c)
        t = c - f
        if mode == "linear":
            return [(f.astype(np.int64), 1 - t), (f.astype(np.int64) + 1, t)]
        return [(f.astype(np.int64) + o, _kernel("cubic", np.abs(o - t), -0.75))
                for o in (-1, 0, 1, 2)]

    def fix(i: np.ndarray, ax: int) -> tuple[np.ndarray, np.ndarray]:
        """In-range index and whether the tap reads the input (zeros padding reads 0 outside)."""
        n = ins[ax]
        if padding_mode == "zeros":
            return np.clip(i, 0, n - 1), (i >= 0) & (i < n)
        if padding_mode == "border":
            return np.clip(i, 0, n - 1), np.ones(i.shape, bool)
        r = _reflect(i.astype(np.float64), lo[ax], hi[ax]).astype(np.int64)
        return np.clip(r, 0, n - 1), np.ones(i.shape, bool)

    nb = x.shape[0]
    batch = np.arange(nb).reshape((nb,) + (1,) * (g.ndim - 2))
    out = np.zeros((nb,) + g.shape[1:-1] + (x.shape[1],))
    for combo in itertools.product(*(taps(ax) for ax in range(d))):
        weight = np.ones(g.shape[:-1])
        index = []
        for ax, (i, w) in enumerate(combo):
            i, ok = fix(i, ax)
            weight = weight * w * ok
            index.append(i)
        vals = xw[(batch, slice(None)) + tuple(index)]  # [N, *out, C]
        out += vals * weight[..., None]
    return _narrow(np.moveaxis(out, -1, 1), x.dtype)


def_op("grid_sample", ["x", "grid"], _grid_sample_rule, _grid_sample,
       attrs={"mode": attr("str", "linear", choices=_GRID_MODES),
              "padding_mode": attr("str", "zeros", choices=_GRID_PADDING),
              "align_corners": attr("bool", False)},
       traits=("pure",),
       doc="ONNX GridSample: sample x [N,C,*in] at grid [N,*out,d] normalized coordinates "
           "(last axis first) -> [N,C,*out]")


# --- roi_align ------------------------------------------------------------------------------------


def _roi_align_rule(x: TensorType, rois: TensorType, batch_indices: TensorType, *, mode: str,
                    output_height: int, output_width: int, sampling_ratio: int,
                    spatial_scale: float, coordinate_transformation_mode: str) -> TensorType:
    op = "roi_align"
    same_dtype(op, x, rois)
    require_dtype(op, x, FLOAT)
    require_dtype(op, batch_indices, ("int",), "operand batch_indices")
    if x.rank != 4:
        raise TypeInferenceError(f"{op} input x must be [N, C, H, W], got {x}")
    if rois.rank != 2 or rois.shape[1] not in (4, *rois.symbols):
        raise TypeInferenceError(f"{op} rois must be [num_rois, 4], got {rois}")
    if batch_indices.rank != 1:
        raise TypeInferenceError(f"{op} batch_indices must be [num_rois], got {batch_indices}")
    r = merge_dim(op, f"num_rois (rois {rois}, batch_indices {batch_indices})", rois.shape[0],
                  batch_indices.shape[0])
    if output_height < 1 or output_width < 1 or sampling_ratio < 0:
        raise TypeInferenceError(f"{op} needs output_height, output_width >= 1 and "
                                 f"sampling_ratio >= 0, got {output_height}, {output_width}, "
                                 f"{sampling_ratio}")
    return x.with_shape((r, x.shape[1], output_height, output_width))


def _bilinear_axis(pos: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                      np.ndarray, np.ndarray]:
    """Per sample position on one axis: low/high index, their weights, and whether the sample
    lies near enough to the map (RoiAlign's boundary rule, as in ONNX Runtime)."""
    ok = (pos >= -1.0) & (pos <= n)
    p = np.maximum(pos, 0.0)
    low = p.astype(np.int64)
    edge = low >= n - 1
    low = np.where(edge, n - 1, low)
    high = np.where(edge, n - 1, low + 1)
    p = np.where(edge, low.astype(np.float64), p)
    lw = p - low
    return low, high, 1.0 - lw, lw, ok


def _roi_align(x: np.ndarray, rois: np.ndarray, batch_indices: np.ndarray, *, mode: str,
               output_height: int, output_width: int, sampling_ratio: int, spatial_scale: float,
               coordinate_transformation_mode: str) -> np.ndarray:
    xw, rw = _wide(x), _wide(rois)
    c, h, w = x.shape[1:]
    oh, ow = output_height, output_width
    out = np.zeros((rois.shape[0], c, oh, ow))
    offset = 0.5 if coordinate_transformation_mode == "half_pixel" else 0.0
    for r in range(rois.shape[0]):
        x0, y0, x1, y1 = rw[r] * spatial_scale - offset
        rh, rwd = y1 - y0, x1 - x0
        if not offset:  # output_half_pixel: malformed rois are forced to 1x1
            rh, rwd = max(rh, 1.0), max(rwd, 1.0)
        bh, bw = rh / oh, rwd / ow
        gh = sampling_ratio or int(np.ceil(rh / oh))
        gw = sampling_ratio or int(np.ceil(rwd / ow))
        if gh <= 0 or gw <= 0:
            continue
        ys = (y0 + np.arange(oh)[:, None] * bh + (np.arange(gh)[None, :] + 0.5) * bh / gh).ravel()
        xs = (x0 + np.arange(ow)[:, None] * bw + (np.arange(gw)[None, :] + 0.5) * bw / gw).ravel()
        yl, yh, wyl, wyh, oky = _bilinear_axis(ys, h)
        xl, xh, wxl, wxh, okx = _bilinear_axis(xs, w)
        ok = (oky[:, None] & okx[None, :]).astype(np.float64)
        fmap = xw[int(batch_indices[r])]
        corners = [(fmap[:, yi][:, :, xi], wy[:, None] * wx[None, :] * ok)
                   for yi, wy in ((yl, wyl), (yh, wyh)) for xi, wx in ((xl, wxl), (xh, wxh))]
        if mode == "avg":
            val = sum(v * wt for v, wt in corners)
            val = val.reshape(c, oh, gh, ow, gw).mean(axis=(2, 4))
        else:  # ONNX Runtime's max mode: the largest weighted corner of each sample
            val = np.max(np.stack([v * wt for v, wt in corners]), axis=0)
            val = val.reshape(c, oh, gh, ow, gw).max(axis=(2, 4))
        out[r] = val
    return _narrow(out, x.dtype)


def_op("roi_align", ["x", "rois", "batch_indices"], _roi_align_rule, _roi_align,
       attrs={"mode": attr("str", "avg", choices=("avg", "max")),
              "output_height": attr("int", 1), "output_width": attr("int", 1),
              "sampling_ratio": attr("int", 0), "spatial_scale": attr("float", 1.0),
              "coordinate_transformation_mode": attr(
                  "str", "half_pixel", choices=("half_pixel", "output_half_pixel"))},
       traits=("pure",),
       doc="ONNX RoiAlign: x [N,C,H,W], rois [R,4] (x1,y1,x2,y2), batch_indices [R] -> "
           "[R,C,output_height,output_width] bilinear samples averaged (or maxed) per bin")
