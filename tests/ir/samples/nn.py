"""Random valid operands and attributes for the neural-network ops (conv, conv_transpose, pools,
resize). Shapes stay small so the reference runs fast; every window overlaps the input, so
results are finite."""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import dtypes as dt

from . import Sample

FLOATS = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16), dt.bf16.np_dtype)
INTS = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16), np.dtype(np.int32),
        np.dtype(np.int64))


def array(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        lo = 0 if dtype.kind == "u" else -50
        return rng.integers(lo, 50, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _pick(rng: np.random.Generator, options: tuple) -> Any:
    return options[rng.integers(len(options))]


def _maybe(rng: np.random.Generator, attrs: dict[str, Any], key: str, values: list[int],
           default: int) -> None:
    """Set attrs[key] = values, or leave it out (empty default) when all equal the default."""
    if any(v != default for v in values) or rng.random() < 0.3:
        attrs[key] = values


def _spatial_rank(rng: np.random.Generator) -> int:
    return int(_pick(rng, (1, 1, 2, 2, 3)))


def conv(rng: np.random.Generator) -> Sample:
    dtype = _pick(rng, FLOATS)
    d = _spatial_rank(rng)
    g = int(_pick(rng, (1, 1, 2, 3)))
    c, m = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
    ks = [int(rng.integers(1, 4)) for _ in range(d)]
    ss = [int(rng.integers(1, 3)) for _ in range(d)]
    ds = [int(rng.integers(1, 3)) for _ in range(d)]
    ps = [int(rng.integers(0, k)) for k in ks] + [int(rng.integers(0, k)) for k in ks]
    # input large enough that the (dilated) kernel fits the padded input at least once
    need = [dl * (k - 1) + 1 - ps[i] - ps[d + i] for i, (k, dl) in enumerate(zip(ks, ds))]
    ins = [max(1, n) + int(rng.integers(0, 3 if d < 3 else 2)) for n in need]
    n = int(rng.integers(1, 3))
    inputs = [array(rng, (n, c, *ins), dtype), array(rng, (m, c // g, *ks), dtype)]
    if rng.random() < 0.5:
        inputs.append(array(rng, (m,), dtype))
    attrs: dict[str, Any] = {}
    _maybe(rng, attrs, "strides", ss, 1)
    _maybe(rng, attrs, "pads", ps, 0)
    _maybe(rng, attrs, "dilations", ds, 1)
    if g != 1 or rng.random() < 0.3:
        attrs["groups"] = g
    return inputs, attrs


def conv_transpose(rng: np.random.Generator) -> Sample:
    dtype = _pick(rng, FLOATS)
    d = _spatial_rank(rng)
    g = int(_pick(rng, (1, 1, 2)))
    c, mg = g * int(rng.integers(1, 3)), int(rng.integers(1, 3))
    ks = [int(rng.integers(1, 4)) for _ in range(d)]
    ss = [int(rng.integers(1, 3)) for _ in range(d)]
    ds = [int(rng.integers(1, 3)) for _ in range(d)]
    ops = [int(rng.integers(0, max(s, dl))) for s, dl in zip(ss, ds)]
    ins = [int(rng.integers(1, 4 if d < 3 else 3)) for _ in range(d)]
    # pads may crop at most the full output minus one element per axis
    ps = [0] * (2 * d)
    for i in range(d):
        full = ss[i] * (ins[i] - 1) + ops[i] + ds[i] * (ks[i] - 1) + 1
        crop = int(rng.integers(0, min(full - 1, 2 * (ks[i] - 1)) + 1))
        ps[i] = int(rng.integers(0, crop + 1))
        ps[d + i] = crop - ps[i]
    n = int(rng.integers(1, 3))
    inputs = [array(rng, (n, c, *ins), dtype), array(rng, (c, mg, *ks), dtype)]
    if rng.random() < 0.5:
        inputs.append(array(rng, (mg * g,), dtype))
    attrs: dict[str, Any] = {}
    _maybe(rng, attrs, "strides", ss, 1)
    _maybe(rng, attrs, "pads", ps, 0)
    _maybe(rng, attrs, "dilations", ds, 1)
    _maybe(rng, attrs, "output_padding", ops, 0)
    if g != 1 or rng.random() < 0.3:
        attrs["groups"] = g
    return inputs, attrs


def _pool_window(rng: np.random.Generator, d: int,
                 dilated: bool) -> tuple[dict[str, Any], list[int]]:
    """kernel/strides/pads(/dilations) with pads at most half the window (as PyTorch requires)
    and input sizes at least the window, so every window reads some input."""
    ks = [int(rng.integers(1, 4)) for _ in range(d)]
    ss = [int(rng.integers(1, 3)) for _ in range(d)]
    ds = [int(rng.integers(1, 3)) if dilated else 1 for _ in range(d)]
    reach = [dl * (k - 1) + 1 for k, dl in zip(ks, ds)]
    ps = [int(rng.integers(0, r // 2 + 1)) for r in reach] * 2
    ps = [p if rng.random() < 0.7 else 0 for p in ps]
    ins = [r + int(rng.integers(0, 3 if d < 3 else 2)) for r in reach]
    attrs: dict[str, Any] = {"kernel": ks}
    _maybe(rng, attrs, "strides", ss, 1)
    _maybe(rng, attrs, "pads", ps, 0)
    if dilated:
        _maybe(rng, attrs, "dilations", ds, 1)
    if rng.random() < 0.5:
        attrs["ceil_mode"] = bool(rng.random() < 0.5)
    return attrs, ins


def max_pool(rng: np.random.Generator) -> Sample:
    d = _spatial_rank(rng)
    attrs, ins = _pool_window(rng, d, dilated=True)
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), *ins)
    return [array(rng, shape, _pick(rng, FLOATS + INTS))], attrs


def avg_pool(rng: np.random.Generator) -> Sample:
    d = _spatial_rank(rng)
    attrs, ins = _pool_window(rng, d, dilated=False)
    if rng.random() < 0.5:
        attrs["count_include_pad"] = bool(rng.random() < 0.5)
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), *ins)
    return [array(rng, shape, _pick(rng, FLOATS))], attrs


def _global(dtypes: tuple) -> Any:
    def sample(rng: np.random.Generator) -> Sample:
        shape = tuple(int(rng.integers(1, 6)) for _ in range(int(rng.integers(3, 6))))
        return [array(rng, shape, _pick(rng, dtypes))], {}
    return sample


_COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                "asymmetric")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def resize(rng: np.random.Generator) -> Sample:
    mode = _pick(rng, ("nearest", "linear", "cubic"))
    dtype = _pick(rng, FLOATS + (INTS if mode == "nearest" else ()))
    rank = int(rng.integers(1, 5))
    shape = tuple(int(rng.integers(1, 6)) for _ in range(rank))
    sizes = [n if rng.random() < 0.3 else int(rng.integers(1, 7)) for n in shape]
    attrs: dict[str, Any] = {"sizes": sizes}
    if mode != "nearest" or rng.random() < 0.5:
        attrs["mode"] = mode
    if rng.random() < 0.7:
        attrs["coordinate_transformation_mode"] = _pick(rng, _COORD_MODES)
    if mode == "nearest" and rng.random() < 0.7:
        attrs["nearest_mode"] = _pick(rng, _NEAREST_MODES)
    if mode == "cubic" and rng.random() < 0.5:
        attrs["cubic_coeff_a"] = float(rng.uniform(-0.9, -0.4))
    if mode != "nearest" and rng.random() < 0.3:
        attrs["exclude_outside"] = True
    return [array(rng, shape, dtype)], attrs


SAMPLES = {
    "conv": conv, "conv_transpose": conv_transpose, "max_pool": max_pool, "avg_pool": avg_pool,
    "global_avg_pool": _global(FLOATS), "global_max_pool": _global(FLOATS + INTS),
    "resize": resize,
}
