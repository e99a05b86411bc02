"""Sample operands for the quantization ops (see tests/ir/samples/__init__.py for the contract).

Scales are positive and moderate and integer ranges are chosen so that dequantized values stay
finite even in f16.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from compiler.ir import dtypes as dt

from . import Sample

FLOATS = (np.dtype(np.float32), np.dtype(np.float16), dt.bf16.np_dtype)
Q8 = (np.dtype(np.int8), np.dtype(np.uint8))
QUANT = Q8 + (np.dtype(np.int16), np.dtype(np.int32))


def _shape(rng: np.random.Generator, lo: int = 0, hi: int = 4) -> tuple[int, ...]:
    return tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(lo, hi + 1))))


def _ints(rng: np.random.Generator, dtype: np.dtype, shape: tuple[int, ...],
          limit: Optional[int] = None) -> np.ndarray:
    """Random integers over dtype's range (or +-limit, clipped to it)."""
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)
    if limit is not None:
        lo, hi = max(lo, -limit), min(hi, limit)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


def _scale(rng: np.random.Generator, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(0.01, 0.5, size=shape).astype(dtype)


def _pick(rng: np.random.Generator, options: tuple) -> Any:
    return options[int(rng.integers(len(options)))]


def _param_shape(rng: np.random.Generator, x_shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """A per-tensor or per-axis parameter shape for x, and the axis (negative half the time)."""
    rank = len(x_shape)
    if rank == 0 or rng.random() < 0.3:  # per-tensor: the axis is not used
        return _pick(rng, ((), (1,))), int(rng.integers(-rank, rank)) if rank else 1
    axis = int(rng.integers(-rank, rank))
    return (x_shape[axis],), axis


def quantize(rng: np.random.Generator) -> Sample:
    x_shape = _shape(rng)
    fdt = _pick(rng, FLOATS)
    p_shape, axis = _param_shape(rng, x_shape)
    x = (rng.standard_normal(x_shape) * 8).astype(fdt)
    inputs = [x, _scale(rng, fdt, p_shape)]
    attrs: dict[str, Any] = {"axis": axis}
    qdt = _pick(rng, QUANT)
    if rng.random() < 0.6:
        inputs.append(_ints(rng, qdt, p_shape, 100))
    elif rng.random() < 0.5:
        attrs["dtype"] = dt.dtype(qdt).name
    return inputs, attrs


def dequantize(rng: np.random.Generator) -> Sample:
    x_shape = _shape(rng)
    qdt = _pick(rng, QUANT)
    p_shape, axis = _param_shape(rng, x_shape)
    limit = 50_000  # |x - zero_point| * 0.5 stays below f16's max
    inputs = [_ints(rng, qdt, x_shape, limit), _scale(rng, _pick(rng, FLOATS), p_shape)]
    if rng.random() < 0.6:
        inputs.append(_ints(rng, qdt, p_shape, limit))
    return inputs, {"axis": axis}


def dynamic_quantize(rng: np.random.Generator) -> Sample:
    x = rng.standard_normal(_shape(rng)) * rng.uniform(0.1, 10) + rng.uniform(-2, 2)
    return [x.astype(np.float32)], {}


def _matmul_shapes(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    m, k, n = (int(v) for v in rng.integers(1, 6, size=3))
    batch = _shape(rng, 0, 2)

    def part() -> tuple[int, ...]:  # a suffix of batch, some dims 1: they broadcast
        return tuple(_pick(rng, (d, 1)) for d in batch[int(rng.integers(0, len(batch) + 1)):])

    a_batch, b_batch = part(), part()
    a = (k,) if rng.random() < 0.15 else a_batch + (m, k)
    b = (k,) if rng.random() < 0.15 else b_batch + (k, n)
    return a, b


def _row_param_shape(rng: np.random.Generator, a_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-tensor, per-row [M] or N-D [..., M, 1] parameter for a (ONNX layouts)."""
    if len(a_shape) < 2 or rng.random() < 0.4:
        return _pick(rng, ((), (1,)))
    if rng.random() < 0.6:
        return (a_shape[-2],)
    return a_shape[:-1] + (1,)


def _col_param_shape(rng: np.random.Generator, b_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-tensor, per-column [N] or N-D [..., 1, N] parameter for b."""
    if len(b_shape) < 2 or rng.random() < 0.4:
        return _pick(rng, ((), (1,)))
    if rng.random() < 0.6:
        return (b_shape[-1],)
    return b_shape[:-2] + (1, b_shape[-1])


def matmul_integer(rng: np.random.Generator) -> Sample:
    a_shape, b_shape = _matmul_shapes(rng)
    adt, bdt = _pick(rng, Q8), _pick(rng, Q8)
    inputs = [_ints(rng, adt, a_shape), _ints(rng, bdt, b_shape)]
    n_zp = int(rng.integers(0, 3))
    if n_zp >= 1:
        inputs.append(_ints(rng, adt, _row_param_shape(rng, a_shape)))
    if n_zp == 2:
        inputs.append(_ints(rng, bdt, _col_param_shape(rng, b_shape)))
    return inputs, {}


ConvSetup = tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]


def _conv_setup(rng: np.random.Generator) -> ConvSetup:
    """x and w shapes and conv attrs for a random 1-D or 2-D conv with a non-empty output."""
    d = int(rng.integers(1, 3))
    groups = int(rng.integers(1, 3))
    n = int(rng.integers(1, 3))
    c = groups * int(rng.integers(1, 3))
    m = groups * int(rng.integers(1, 3))
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=d))
    attrs: dict[str, Any] = {"groups": groups}
    strides = tuple(int(s) for s in rng.integers(1, 3, size=d))
    dilations = tuple(int(v) for v in rng.integers(1, 3, size=d))
    pads = tuple(int(p) for p in rng.integers(0, 2, size=2 * d))
    if rng.random() < 0.7:
        attrs.update(strides=strides, dilations=dilations, pads=pads)
    else:  # the empty defaults
        strides, dilations, pads = (1,) * d, (1,) * d, (0,) * (2 * d)
    # smallest input with a full window, plus a little
    spatial = tuple(dl * (k - 1) + 1 - pb - pe + int(rng.integers(0, 4))
                    for k, dl, pb, pe in zip(kernel, dilations, pads[:d], pads[d:]))
    spatial = tuple(max(s, 1) for s in spatial)
    return (n, c) + spatial, (m, c // groups) + kernel, attrs


def conv_integer(rng: np.random.Generator) -> Sample:
    x_shape, w_shape, attrs = _conv_setup(rng)
    xdt, wdt = _pick(rng, Q8), _pick(rng, Q8)
    inputs = [_ints(rng, xdt, x_shape), _ints(rng, wdt, w_shape)]
    n_zp = int(rng.integers(0, 3))
    if n_zp >= 1:
        inputs.append(_ints(rng, xdt, _pick(rng, ((), (1,)))))
    if n_zp == 2:
        inputs.append(_ints(rng, wdt, _pick(rng, ((), (1,), (w_shape[0],)))))
    return inputs, attrs


def qlinear_matmul(rng: np.random.Generator) -> Sample:
    a_shape, b_shape = _matmul_shapes(rng)
    adt, bdt, ydt = _pick(rng, Q8), _pick(rng, Q8), _pick(rng, Q8)
    sdt = _pick(rng, FLOATS)
    a_p, b_p = _row_param_shape(rng, a_shape), _col_param_shape(rng, b_shape)
    y_p = _pick(rng, ((), (1,)))
    k = a_shape[-1]
    return [_ints(rng, adt, a_shape), _scale(rng, sdt, a_p), _ints(rng, adt, a_p),
            _ints(rng, bdt, b_shape), _scale(rng, sdt, b_p), _ints(rng, bdt, b_p),
            (_scale(rng, sdt, y_p) * k * 20).astype(sdt), _ints(rng, ydt, y_p)], {}


def qlinear_conv(rng: np.random.Generator) -> Sample:
    x_shape, w_shape, attrs = _conv_setup(rng)
    xdt, wdt, ydt = _pick(rng, Q8), _pick(rng, Q8), _pick(rng, Q8)
    sdt = _pick(rng, FLOATS)
    w_p = _pick(rng, ((), (1,), (w_shape[0],)))
    one = _pick(rng, ((), (1,)))
    taps = int(np.prod(w_shape[1:]))
    inputs = [_ints(rng, xdt, x_shape), _scale(rng, sdt, one), _ints(rng, xdt, one),
              _ints(rng, wdt, w_shape), _scale(rng, sdt, w_p), _ints(rng, wdt, w_p),
              (_scale(rng, sdt, one) * taps * 20).astype(sdt), _ints(rng, ydt, one)]
    if rng.random() < 0.5:
        inputs.append(_ints(rng, np.dtype(np.int32), (w_shape[0],), 20_000))
    return inputs, attrs


def requantize(rng: np.random.Generator) -> Sample:
    x_shape = _shape(rng)
    p_shape, axis = _param_shape(rng, x_shape)
    x = _ints(rng, np.dtype(np.int32), x_shape, 100_000)
    mult = rng.uniform(1e-4, 1.5e-3, size=p_shape).astype(np.float32)
    zp = _ints(rng, _pick(rng, Q8), _pick(rng, ((), (1,))))
    return [x, mult, zp], {"axis": axis}


SAMPLES = {
    "quantize": quantize,
    "dequantize": dequantize,
    "dynamic_quantize": dynamic_quantize,
    "matmul_integer": matmul_integer,
    "conv_integer": conv_integer,
    "qlinear_matmul": qlinear_matmul,
    "qlinear_conv": qlinear_conv,
    "requantize": requantize,
}
