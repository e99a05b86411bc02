"""Random valid operands and attributes for the extra neural-network ops (max_pool_with_indices,
resize_general, grid_sample, roi_align). Shapes stay small; every result is finite."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import Sample
from .nn import FLOATS, INTS, _pick, array
from .nn import max_pool as _max_pool_sample

_COORDS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
           "asymmetric", "tf_crop_and_resize", "tf_half_pixel_for_nn")
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def max_pool_with_indices(rng: np.random.Generator) -> Sample:
    inputs, attrs = _max_pool_sample(rng)
    if rng.random() < 0.5:
        attrs["storage_order"] = int(rng.integers(0, 2))
    return inputs, attrs


def resize_general(rng: np.random.Generator) -> Sample:
    rank = int(rng.integers(1, 5))
    shape = tuple(int(rng.integers(1, 6)) for _ in range(rank))
    mode = str(_pick(rng, ("nearest", "linear", "cubic")))
    dtype = _pick(rng, FLOATS + INTS) if mode == "nearest" else _pick(rng, FLOATS)
    scales, sizes = [], []
    for n in shape:
        s = 1.0 if rng.random() < 0.3 else float(np.round(rng.uniform(0.4, 2.6), 2))
        out = int(np.floor(n * s))
        if out < 1:
            s, out = 1.0, n
        scales.append(s)
        sizes.append(out)
    coord = str(_pick(rng, _COORDS))
    attrs: dict[str, Any] = {"sizes": sizes, "scales": scales, "mode": mode,
                             "coordinate_transformation_mode": coord}
    if coord == "tf_crop_and_resize":
        lo = rng.uniform(-0.2, 0.5, rank)
        attrs["roi"] = [float(v) for v in np.round(np.concatenate([lo, lo + rng.uniform(
            0.3, 0.9, rank)]), 3)]
        attrs["extrapolation_value"] = float(np.round(rng.uniform(-2, 2), 2))
    if mode == "nearest" and rng.random() < 0.7:
        attrs["nearest_mode"] = str(_pick(rng, _NEAREST))
    if mode != "nearest":
        if rng.random() < 0.4:
            attrs["antialias"] = True
        if rng.random() < 0.3:
            attrs["exclude_outside"] = True
        if mode == "cubic" and rng.random() < 0.5:
            attrs["cubic_coeff_a"] = -0.5
    return [array(rng, shape, dtype)], attrs


def grid_sample(rng: np.random.Generator) -> Sample:
    d = int(rng.integers(1, 4))
    dtype = _pick(rng, FLOATS)
    n = int(rng.integers(1, 3))
    ins = [int(rng.integers(1, 5)) for _ in range(d)]
    outs = [int(rng.integers(1, 4)) for _ in range(d)]
    x = array(rng, (n, int(rng.integers(1, 3)), *ins), dtype)
    grid = rng.uniform(-1.3, 1.3, (n, *outs, d)).astype(dtype)
    attrs: dict[str, Any] = {"mode": str(_pick(rng, ("linear", "nearest", "cubic"))),
                             "padding_mode": str(_pick(rng, ("zeros", "border", "reflection")))}
    if rng.random() < 0.5:
        attrs["align_corners"] = bool(rng.random() < 0.5)
    return [x, grid], attrs


def roi_align(rng: np.random.Generator) -> Sample:
    dtype = _pick(rng, FLOATS)
    n, c, h, w = (int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(2, 7)),
                  int(rng.integers(2, 7)))
    r = int(rng.integers(1, 4))
    x1, y1 = rng.uniform(0, w - 1, r), rng.uniform(0, h - 1, r)
    rois = np.stack([x1, y1, x1 + rng.uniform(0.2, 3, r), y1 + rng.uniform(0.2, 3, r)], axis=1)
    attrs: dict[str, Any] = {"output_height": int(rng.integers(1, 4)),
                             "output_width": int(rng.integers(1, 4))}
    if rng.random() < 0.5:
        attrs["mode"] = str(_pick(rng, ("avg", "max")))
    if rng.random() < 0.5:
        attrs["sampling_ratio"] = int(rng.integers(0, 3))
    if rng.random() < 0.5:
        attrs["spatial_scale"] = float(_pick(rng, (0.5, 1.0, 2.0)))
    if rng.random() < 0.5:
        attrs["coordinate_transformation_mode"] = str(_pick(rng, ("half_pixel",
                                                                  "output_half_pixel")))
    return [array(rng, (n, c, h, w), dtype), rois.astype(dtype),
            rng.integers(0, n, r).astype(np.int64)], attrs


SAMPLES = {
    "max_pool_with_indices": max_pool_with_indices, "resize_general": resize_general,
    "grid_sample": grid_sample, "roi_align": roi_align,
}
