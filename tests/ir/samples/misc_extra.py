"""Sample operands and attributes for compiler/ir/ops/misc_extra.py: cumprod (factors near 1, so
products stay finite), bitcast (bit patterns of finite floats where the target is a float),
deform_conv (small 1-D to 3-D windows with random offsets and masks), max_roi_pool (rois partly
outside x) and tfidf_vectorizer (small token alphabets, so the pool's n-grams occur)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from compiler.ir import dtypes as dt

from . import Sample

FLOATS = ("f32", "f16", "bf16", "f64")
INTS = ("i8", "u8", "i16", "i32", "i64")


def _pick(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    return options[int(rng.integers(0, len(options)))]


def _shape(rng: np.random.Generator, max_rank: int = 4) -> tuple[int, ...]:
    return tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(0, max_rank + 1))))


def cumprod(rng: np.random.Generator) -> Sample:
    d = dt.dtype(_pick(rng, FLOATS + INTS))
    shape = _shape(rng)
    if d.is_float:
        x = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1, 1], size=shape)
    else:
        x = rng.integers(-3 if d.kind == "int" else 0, 4, size=shape)
    rank = len(shape)
    axis = int(rng.integers(-rank, rank)) if rank else int(_pick(rng, (0, -1)))
    return [np.asarray(x).astype(d.np_dtype)], {"axis": axis, "exclusive": bool(rng.random() < 0.5),
                                                "reverse": bool(rng.random() < 0.5)}


_SAME_WIDTH = {8: ("bool", "i8", "u8"), 16: ("i16", "f16", "bf16"), 32: ("i32", "f32"),
               64: ("i64", "f64")}


def bitcast(rng: np.random.Generator) -> Sample:
    bits = int(_pick(rng, tuple(_SAME_WIDTH)))
    src, to = (dt.dtype(n) for n in rng.choice(_SAME_WIDTH[bits], size=2, replace=False))
    shape = _shape(rng)
    if src.is_bool:
        x = rng.random(shape) < 0.5
    elif src.is_float or to.is_float:  # float bit patterns, so a float target stays finite
        f = dt.dtype({16: "f16", 32: "f32", 64: "f64"}.get(bits, "f32")) if not src.is_float \
            else src
        x = rng.uniform(-1e3, 1e3, size=shape).astype(f.np_dtype).view(src.np_dtype)
    else:
        info = np.iinfo(src.np_dtype)
        x = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=src.np_dtype)
    return [np.asarray(x)], {"to": to.name}


def deform_conv(rng: np.random.Generator) -> Sample:
    d = int(rng.integers(1, 4))
    dtype = dt.dtype(_pick(rng, FLOATS)).np_dtype
    groups, offset_groups = int(_pick(rng, (1, 1, 2))), int(_pick(rng, (1, 1, 2)))
    c = groups * offset_groups * int(rng.integers(1, 3))
    m = groups * int(rng.integers(1, 3))
    n = int(rng.integers(1, 3))
    ks = [int(rng.integers(1, 4 if d < 3 else 3)) for _ in range(d)]
    strides = [int(rng.integers(1, 3)) for _ in range(d)]
    dilations = [int(rng.integers(1, 3)) for _ in range(d)]
    pads = [int(rng.integers(0, 2)) for _ in range(2 * d)]
    # input sizes for 1 to 3 outputs per axis (at least 1)
    size = [max(1, (int(rng.integers(1, 4)) - 1) * strides[a] + (ks[a] - 1) * dilations[a] + 1
                - pads[a] - pads[d + a]) for a in range(d)]
    out = [(i + pads[a] + pads[d + a] - (ks[a] - 1) * dilations[a] - 1) // strides[a] + 1
           for a, i in enumerate(size)]
    taps = offset_groups * math.prod(ks)
    x = rng.standard_normal((n, c, *size)).astype(dtype)
    w = rng.standard_normal((m, c // groups, *ks)).astype(dtype)
    offset = rng.uniform(-1.5, 1.5, size=(n, taps * d, *out)).astype(dtype)
    inputs = [x, w, offset]
    if rng.random() < 0.6:
        inputs.append(rng.standard_normal(m).astype(dtype))
        if rng.random() < 0.6:
            inputs.append(rng.uniform(0, 1, size=(n, taps, *out)).astype(dtype))
    attrs = {"strides": strides, "pads": pads, "dilations": dilations, "groups": groups,
             "offset_groups": offset_groups}
    return inputs, attrs


def tfidf_vectorizer(rng: np.random.Generator) -> Sample:
    max_len = int(rng.integers(1, 4))
    min_len = int(rng.integers(1, max_len + 1))
    pool: list[int] = []
    counts: list[int] = []
    total = 0
    for n in range(1, max_len + 1):
        counts.append(len(pool))
        grams = int(rng.integers(0, 4))
        pool += [int(v) for v in rng.integers(0, 4, size=grams * n)]
        total += grams
    if total == 0:
        counts, pool, total = [0], [int(rng.integers(0, 4))], 1
    indexes = [int(v) for v in rng.permutation(total)]
    mode = str(_pick(rng, ("TF", "IDF", "TFIDF")))
    weights = [] if rng.random() < 0.4 else \
        [float(v) for v in np.round(rng.uniform(0.1, 2, size=total), 2)]
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 9))) if rng.random() < 0.6 else \
        (int(rng.integers(1, 9)),)
    x = rng.integers(0, 4, size=shape).astype(_pick(rng, (np.int32, np.int64)))
    return [x], {"mode": mode, "min_gram_length": min_len, "max_gram_length": max_len,
                 "max_skip_count": int(rng.integers(0, 3)), "pool": pool, "ngram_counts": counts,
                 "ngram_indexes": indexes, "weights": weights}


def max_roi_pool(rng: np.random.Generator) -> Sample:
    dtype = dt.dtype(_pick(rng, FLOATS)).np_dtype
    n, c = (int(v) for v in rng.integers(1, 4, size=2))
    h, w = (int(v) for v in rng.integers(1, 9, size=2))
    r = int(rng.integers(1, 4))
    corners = rng.uniform(-2, 10, size=(r, 2, 2))
    rois = np.concatenate([rng.integers(0, n, size=(r, 1)), corners.min(1), corners.max(1)], 1)
    attrs = {"pooled_shape": [int(v) for v in rng.integers(1, 4, size=2)],
             "spatial_scale": float(_pick(rng, (1.0, 0.5, 0.625)))}
    return [rng.standard_normal((n, c, h, w)).astype(dtype), rois.astype(dtype)], attrs


SAMPLES = {"cumprod": cumprod, "bitcast": bitcast, "deform_conv": deform_conv,
           "tfidf_vectorizer": tfidf_vectorizer, "max_roi_pool": max_roi_pool}
