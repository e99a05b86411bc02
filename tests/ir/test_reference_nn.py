"""Tests for compiler.ir.reference.nn against torch.nn.functional and small naive oracles."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compiler.ir.reference import nn

RTOL = 1e-5
ATOL = 1e-5

torch.set_num_threads(1)


def _rand(rng: np.random.Generator, shape, positive: bool = False) -> np.ndarray:
    """Non-zero float32 data."""
    a = rng.standard_normal(shape)
    a = np.where(np.abs(a) < 1e-3, 0.5, a)
    if positive:
        a = np.abs(a) + 0.1
    return a.astype(np.float32)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _split(pads):
    d = len(pads) // 2
    return list(pads[:d]), list(pads[d:])


def _np_pad(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    b, e = _split(pads)
    return np.pad(x, [(0, 0), (0, 0)] + list(zip(b, e)), constant_values=value)


def _close(actual: np.ndarray, expected, rtol: float = RTOL, atol: float = ATOL) -> None:
    expected = expected.numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONVT_FN = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MAXPOOL_FN = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVGPOOL_FN = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
LPPOOL_FN = {1: F.lp_pool1d, 2: F.lp_pool2d, 3: F.lp_pool3d}


# --------------------------------------------------------------------------------------------
# conv
# --------------------------------------------------------------------------------------------

# (N, C, M, in_spatial, kernel, strides, pads, dilations, groups)
CONV_CASES = [
    (2, 4, 6, (11,), (3,), (1,), (1, 1), (1,), 1),
    (1, 4, 4, (13,), (5,), (2,), (0, 3), (2,), 4),  # depthwise, asymmetric
    (2, 6, 4, (10,), (2,), (3,), (2, 0), (1,), 2),
    (2, 3, 8, (9, 10), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 6, 4, (12, 11), (3, 2), (2, 3), (0, 1, 2, 0), (1, 2), 2),
    (2, 8, 8, (10, 10), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 8),  # depthwise
    (1, 4, 8, (7, 9), (3, 3), (1, 1), (2, 1, 0, 1), (2, 1), 4),  # depthwise, multiplier 2
    (2, 16, 8, (8, 8), (1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),  # 1x1, stride 2
    (1, 3, 8, (20, 20), (7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1),  # ResNet stem
    (1, 4, 6, (5, 6, 7), (3, 3, 3), (1, 1, 1), (1, 1, 1, 1, 1, 1), (1, 1, 1), 1),
    (2, 4, 4, (6, 7, 5), (2, 3, 2), (2, 1, 2), (0, 1, 1, 1, 0, 1), (1, 1, 2), 2),
    (1, 3, 3, (4, 5, 6), (1, 2, 3), (1, 2, 1), (0, 0, 0, 0, 0, 0), (1, 1, 1), 3),
]


def _torch_conv(x, w, b, strides, pads, dilations, groups):
    d = x.ndim - 2
    pb, pe = _split(pads)
    if pb == pe:
        padding, xin = pb, x
    else:
        padding, xin = [0] * d, _np_pad(x, pads)
    bt = None if b is None else _t(b)
    return CONV_FN[d](_t(xin), _t(w), bt, list(strides), padding, list(dilations), groups)


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{len(c[3])}d-{c}")
def test_conv_matches_torch(case, with_bias):
    n, c, m, sp, k, s, p, dl, g = case
    rng = np.random.default_rng(1)
    x = _rand(rng, (n, c, *sp))
    w = _rand(rng, (m, c // g, *k))
    b = _rand(rng, (m,)) if with_bias else None
    y = nn.conv(x, w, b, strides=s, pads=p, dilations=dl, groups=g)
    ref = _torch_conv(x, w, b, s, p, dl, g)
    _close(y, ref)
    assert nn.conv_output_shape(sp, k, s, p, dl) == list(ref.shape[2:])


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_conv_keeps_dtype(dtype):
    rng = np.random.default_rng(2)
    x = _rand(rng, (1, 4, 6, 7))
    w = _rand(rng, (6, 2, 3, 3))
    b = _rand(rng, (6,))
    kw = dict(strides=(1, 2), pads=(1, 0, 1, 2), dilations=(1, 1), groups=2)
    ref = nn.conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **kw)
    y = nn.conv(x.astype(dtype), w.astype(dtype), b.astype(dtype), **kw)
    assert y.dtype == dtype
    tol = 2e-2 if dtype == np.float16 else 1e-12
    np.testing.assert_allclose(y.astype(np.float64), ref, rtol=tol, atol=tol * 10)
    assert nn.conv(x, w, b, **kw).dtype == np.float32


# --------------------------------------------------------------------------------------------
# conv_transpose
# --------------------------------------------------------------------------------------------

# (N, C, M, in_spatial, kernel, strides, pads, dilations, groups, output_padding)
CONVT_CASES = [
    (2, 4, 6, (7,), (3,), (2,), (1, 1), (1,), 1, (1,)),
    (1, 4, 4, (6,), (4,), (3,), (0, 2), (2,), 4, (2,)),  # depthwise, asymmetric
    (2, 3, 2, (5,), (1,), (1,), (0, 0), (1,), 1, (0,)),
    (2, 4, 6, (5, 6), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, (1, 1)),
    (1, 6, 4, (4, 5), (3, 2), (2, 3), (1, 0, 0, 2), (1, 2), 2, (0, 2)),
    (2, 4, 4, (5, 5), (4, 4), (2, 2), (1, 1, 1, 1), (1, 1), 4, (0, 0)),  # depthwise
    (1, 3, 5, (4, 4), (2, 2), (1, 1), (0, 0, 0, 0), (3, 2), 1, (2, 1)),  # op < dilation
    (1, 4, 6, (3, 4, 5), (3, 3, 3), (2, 2, 2), (1, 1, 1, 1, 1, 1), (1, 1, 1), 2, (1, 0, 1)),
    (1, 2, 3, (3, 3, 4), (2, 3, 2), (1, 2, 2), (0, 1, 1, 1, 0, 1), (2, 1, 1), 1, (1, 1, 0)),
]


def _torch_conv_transpose(x, w, b, strides, pads, dilations, groups, output_padding):
    d = x.ndim - 2
    pb, pe = _split(pads)
    bt = None if b is None else _t(b)
    fn = CONVT_FN[d]
    if pb == pe:
        return fn(_t(x), _t(w), bt, list(strides), pb, list(output_padding), groups,
                  list(dilations))
    full = fn(_t(x), _t(w), bt, list(strides), 0, list(output_padding), groups, list(dilations))
    crop = tuple(slice(b_, full.shape[2 + i] - e_) for i, (b_, e_) in enumerate(zip(pb, pe)))
    return full[(slice(None), slice(None)) + crop].contiguous()


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("case", CONVT_CASES, ids=lambda c: f"{len(c[3])}d-{c}")
def test_conv_transpose_matches_torch(case, with_bias):
    n, c, m, sp, k, s, p, dl, g, op = case
    rng = np.random.default_rng(3)
    x = _rand(rng, (n, c, *sp))
    w = _rand(rng, (c, m // g, *k))
    b = _rand(rng, (m,)) if with_bias else None
    y = nn.conv_transpose(x, w, b, strides=s, pads=p, dilations=dl, groups=g, output_padding=op)
    ref = _torch_conv_transpose(x, w, b, s, p, dl, g, op)
    _close(y, ref)
    assert nn.conv_transpose_output_shape(sp, k, s, p, dl, op) == list(ref.shape[2:])


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{len(c[3])}d-{c}")
def test_conv_transpose_is_adjoint_of_conv(case):
    """<conv(x), y> == <x, conv_transpose(y)> with the same weights, incl. asymmetric pads."""
    n, c, m, sp, k, s, p, dl, g = case
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, c, *sp))
    w = rng.standard_normal((m, c // g, *k))
    cx = nn.conv(x, w, strides=s, pads=p, dilations=dl, groups=g)
    y = rng.standard_normal(cx.shape)
    base = nn.conv_transpose_output_shape(cx.shape[2:], k, s, p, dl, [0] * len(sp))
    op = [i - b for i, b in zip(sp, base)]
    ty = nn.conv_transpose(y, w, strides=s, pads=p, dilations=dl, groups=g, output_padding=op)
    assert ty.shape == x.shape and ty.dtype == np.float64
    np.testing.assert_allclose(np.vdot(cx, y), np.vdot(x, ty), rtol=1e-10)


def test_conv_transpose_float16():
    rng = np.random.default_rng(5)
    x = _rand(rng, (1, 4, 5, 5))
    w = _rand(rng, (4, 3, 3, 3))
    kw = dict(strides=(2, 2), pads=(1, 1, 0, 0), dilations=(1, 1), groups=1,
              output_padding=(1, 0))
    y = nn.conv_transpose(x.astype(np.float16), w.astype(np.float16), **kw)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y, nn.conv_transpose(x, w, **kw), rtol=2e-2, atol=5e-2)


# --------------------------------------------------------------------------------------------
# Pooling: naive oracle (loops over output positions, small inputs only)
# --------------------------------------------------------------------------------------------


def _naive_out_len(i, k, s, b, e, dl, ceil_mode):
    span = (i + b + e - dl * (k - 1) - 1) / s
    o = (math.ceil(span) if ceil_mode else math.floor(span)) + 1
    if ceil_mode and (o - 1) * s >= i + b:
        o -= 1
    return o


def _naive_pool(x, kind, kernel, strides, pads, dilations, ceil_mode, cip=False, p=2):
    d = x.ndim - 2
    pb, pe = _split(pads)
    sp = x.shape[2:]
    outs = [_naive_out_len(sp[a], kernel[a], strides[a], pb[a], pe[a], dilations[a], ceil_mode)
            for a in range(d)]
    y = np.zeros(x.shape[:2] + tuple(outs), dtype=np.float64)
    for o in itertools.product(*(range(v) for v in outs)):
        vals, n_pad = [], 0
        for t in itertools.product(*(range(v) for v in kernel)):
            pos = [o[a] * strides[a] + t[a] * dilations[a] - pb[a] for a in range(d)]
            if all(0 <= pos[a] < sp[a] for a in range(d)):
                vals.append(x[(slice(None), slice(None)) + tuple(pos)].astype(np.float64))
            elif all(-pb[a] <= pos[a] < sp[a] + pe[a] for a in range(d)):
                n_pad += 1
        idx = (slice(None), slice(None)) + o
        if kind == "max":
            y[idx] = np.max(vals, axis=0) if vals else -np.inf
        elif kind == "avg":
            y[idx] = np.sum(vals, axis=0) / (len(vals) + (n_pad if cip else 0))
        else:
            y[idx] = np.sum(np.abs(vals) ** p, axis=0) ** (1.0 / p)
    return y.astype(x.dtype)


# (N, C, in_spatial, kernel, strides, pads, dilations)
POOL_CASES = [
    (2, 3, (9,), (3,), (2,), (1, 1), (1,)),
    (1, 2, (10,), (2,), (3,), (0, 1), (2,)),
    (2, 2, (6, 7), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    (1, 3, (5, 8), (2, 3), (2, 2), (1, 0, 0, 1), (1, 1)),
    (1, 2, (9, 8), (3, 2), (2, 3), (1, 1, 1, 1), (2, 1)),
    (2, 2, (7, 7), (3, 3), (3, 3), (1, 0, 1, 0), (1, 1)),
    (1, 2, (5, 6, 7), (2, 3, 2), (2, 2, 2), (1, 1, 0, 1, 1, 1), (1, 1, 1)),
    (1, 2, (6, 5, 4), (3, 3, 3), (2, 1, 2), (1, 1, 1, 1, 1, 1), (1, 1, 1)),
]


def _torch_ok(kernel, pads, dilations) -> bool:
    """Can torch express these pads directly (symmetric and <= half the kernel)?"""
    pb, pe = _split(pads)
    return pb == pe and all(b <= k // 2 for b, k in zip(pb, kernel))


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{len(c[2])}d-{c}")
def test_max_pool(case, ceil_mode):
    n, c, sp, k, s, p, dl = case
    rng = np.random.default_rng(6)
    x = _rand(rng, (n, c, *sp))
    y = nn.max_pool(x, kernel=k, strides=s, pads=p, dilations=dl, ceil_mode=ceil_mode)
    _close(y, _naive_pool(x, "max", k, s, p, dl, ceil_mode), rtol=0, atol=0)
    assert list(y.shape[2:]) == nn.pool_output_shape(sp, k, s, p, dl, ceil_mode)
    d = len(sp)
    if _torch_ok(k, p, dl):
        ref = MAXPOOL_FN[d](_t(x), list(k), list(s), list(p[:d]), list(dl), ceil_mode)
    elif not ceil_mode:  # asymmetric pads: pre-pad with -inf
        ref = MAXPOOL_FN[d](_t(_np_pad(x, p, -np.inf)), list(k), list(s), 0, list(dl))
    else:
        return
    _close(y, ref, rtol=0, atol=0)


@pytest.mark.parametrize("cip", [False, True])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("case", [c for c in POOL_CASES if set(c[6]) == {1}],
                         ids=lambda c: f"{len(c[2])}d-{c}")
def test_avg_pool(case, ceil_mode, cip):
    n, c, sp, k, s, p, _ = case
    rng = np.random.default_rng(7)
    x = _rand(rng, (n, c, *sp))
    y = nn.avg_pool(x, kernel=k, strides=s, pads=p, ceil_mode=ceil_mode, count_include_pad=cip)
    d = len(sp)
    _close(y, _naive_pool(x, "avg", k, s, p, [1] * d, ceil_mode, cip))
    assert list(y.shape[2:]) == nn.pool_output_shape(sp, k, s, p, [1] * d, ceil_mode)
    if _torch_ok(k, p, [1] * d):
        ref = AVGPOOL_FN[d](_t(x), list(k), list(s), list(p[:d]), ceil_mode, cip)
    elif cip and not ceil_mode:  # asymmetric pads: zero padding, all of it counted
        ref = AVGPOOL_FN[d](_t(_np_pad(x, p)), list(k), list(s), 0)
    else:
        return
    _close(y, ref)


@pytest.mark.parametrize("cip", [False, True])
def test_avg_pool_ceil_mode_edge_windows(cip):
    """Windows reaching past the padded input: only positions inside it are counted."""
    rng = np.random.default_rng(8)
    for length, k, s, pad in [(6, 3, 2, 1), (5, 2, 2, 1), (8, 3, 3, 1), (7, 4, 3, 2)]:
        x = _rand(rng, (2, 3, length, length + 1))
        y = nn.avg_pool(x, kernel=(k, k), strides=(s, s), pads=(pad,) * 4, ceil_mode=True,
                        count_include_pad=cip)
        ref = F.avg_pool2d(_t(x), k, s, pad, ceil_mode=True, count_include_pad=cip)
        _close(y, ref)
        assert nn.pool_output_shape(x.shape[2:], (k, k), (s, s), (pad,) * 4, (1, 1), True) == \
            list(ref.shape[2:])


def test_avg_pool_dilated_matches_naive():
    rng = np.random.default_rng(9)
    x = _rand(rng, (1, 2, 9, 8))
    for cip, ceil_mode in itertools.product([False, True], [False, True]):
        kw = dict(kernel=(3, 2), strides=(2, 2), pads=(1, 0, 2, 1), dilations=(2, 3))
        y = nn.avg_pool(x, ceil_mode=ceil_mode, count_include_pad=cip, **kw)
        ref = _naive_pool(x, "avg", kw["kernel"], kw["strides"], kw["pads"], kw["dilations"],
                          ceil_mode, cip)
        _close(y, ref)


@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("case", [
    (2, 3, (9,), (3,), (2,), (0, 0)),
    (1, 2, (7, 8), (2, 3), (2, 1), (0, 0, 0, 0)),
    (1, 2, (7, 8), (3, 3), (2, 2), (1, 0, 2, 1)),
    (1, 2, (4, 5, 6), (2, 2, 3), (1, 2, 2), (0, 0, 0, 1, 1, 1)),
], ids=lambda c: f"{len(c[2])}d-{c}")
def test_lp_pool(case, p):
    n, c, sp, k, s, pads = case
    rng = np.random.default_rng(10)
    x = _rand(rng, (n, c, *sp), positive=True)  # torch sums x**p, ONNX sums |x|**p
    y = nn.lp_pool(x, kernel=k, strides=s, pads=pads, p=p)
    kt, st = (k[0], s[0]) if len(sp) == 1 else (list(k), list(s))  # lp_pool1d wants ints
    ref = LPPOOL_FN[len(sp)](_t(_np_pad(x, pads)), float(p), kt, st)
    _close(y, ref, rtol=2e-5)
    neg = -x
    _close(nn.lp_pool(neg, kernel=k, strides=s, pads=pads, p=p), y, rtol=0, atol=0)


def test_lp_pool_dilated_ceil_matches_naive():
    rng = np.random.default_rng(11)
    x = _rand(rng, (1, 2, 8, 9))
    kw = dict(kernel=(2, 3), strides=(3, 2), pads=(1, 0, 1, 1), dilations=(2, 1))
    y = nn.lp_pool(x, p=3, ceil_mode=True, **kw)
    ref = _naive_pool(x, "lp", kw["kernel"], kw["strides"], kw["pads"], kw["dilations"], True,
                      p=3)
    _close(y, ref)


@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 3, 5, 6), (1, 4, 3, 4, 5)])
def test_global_pools(shape):
    rng = np.random.default_rng(12)
    x = _rand(rng, shape)
    dims = tuple(range(2, len(shape)))
    xt = _t(x)
    _close(nn.global_avg_pool(x), xt.mean(dim=dims, keepdim=True))
    _close(nn.global_max_pool(x), xt.amax(dim=dims, keepdim=True), rtol=0, atol=0)
    _close(nn.global_lp_pool(x, 2), xt.square().sum(dim=dims, keepdim=True).sqrt())
    assert nn.global_avg_pool(x).shape == shape[:2] + (1,) * (len(shape) - 2)
    x16 = x.astype(np.float16)
    assert nn.global_avg_pool(x16).dtype == np.float16
    np.testing.assert_allclose(nn.global_avg_pool(x16), nn.global_avg_pool(x), atol=2e-3)


def test_max_pool_integer_and_float16():
    rng = np.random.default_rng(13)
    x = rng.integers(-100, 100, size=(1, 2, 6, 7)).astype(np.int8)
    kw = dict(kernel=(3, 3), strides=(2, 2), pads=(1, 1, 1, 1), dilations=(1, 1), ceil_mode=True)
    y = nn.max_pool(x, **kw)
    assert y.dtype == np.int8
    np.testing.assert_array_equal(y, nn.max_pool(x.astype(np.float32), **kw).astype(np.int8))
    y16 = nn.max_pool(x.astype(np.float16), **kw)
    assert y16.dtype == np.float16
    np.testing.assert_array_equal(y16, y.astype(np.float16))


# --------------------------------------------------------------------------------------------
# Shape functions
# --------------------------------------------------------------------------------------------


def test_shape_functions_examples():
    assert nn.conv_output_shape([224, 224], [7, 7], [2, 2], [3, 3, 3, 3], [1, 1]) == [112, 112]
    assert nn.conv_output_shape([10], [3], [1], [0, 0], [2]) == [6]
    assert nn.conv_transpose_output_shape([7], [4], [2], [1, 1], [1], [0]) == [14]
    assert nn.conv_transpose_output_shape([7], [3], [2], [1, 1], [1], [1]) == [14]
    assert nn.pool_output_shape([112, 112], [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], False) == [56, 56]
    # ceil rounds up, but a window starting in the right padding is dropped
    assert nn.pool_output_shape([6], [3], [2], [1, 1], [1], True) == [4]
    assert nn.pool_output_shape([5], [2], [2], [1, 1], [1], True) == [3]
    assert nn.pool_output_shape([5], [2], [2], [1, 1], [1], False) == [3]
    assert nn.pool_output_shape([6], [2], [2], [0, 0], [1], True) == [3]


@pytest.mark.parametrize("length", range(4, 12))
@pytest.mark.parametrize("k,s,pad,dl", [(2, 2, 0, 1), (3, 2, 1, 1), (3, 3, 1, 1), (2, 3, 1, 2),
                                         (4, 3, 2, 1), (1, 2, 0, 1), (3, 4, 1, 1)])
def test_pool_output_shape_matches_torch(length, k, s, pad, dl):
    t = torch.zeros(1, 1, length)
    for ceil_mode in (False, True):
        ref = F.max_pool1d(t, k, s, pad, dl, ceil_mode).shape[2]
        assert nn.pool_output_shape([length], [k], [s], [pad, pad], [dl], ceil_mode) == [ref]


# --------------------------------------------------------------------------------------------
# Resize
# --------------------------------------------------------------------------------------------

RESIZE_SHAPES = [
    ((1, 2, 7), (12,)),
    ((2, 1, 9), (4,)),
    ((2, 3, 5, 7), (9, 4)),
    ((1, 2, 6, 4), (3, 10)),
    ((1, 2, 3, 4, 5), (6, 3, 7)),
]
LINEAR_MODE = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _resize_case(shape, out_sp, seed):
    x = _rand(np.random.default_rng(seed), shape)
    sizes = list(shape[:2]) + list(out_sp)
    return x, sizes


@pytest.mark.parametrize("shape,out_sp", RESIZE_SHAPES)
def test_resize_nearest(shape, out_sp):
    x, sizes = _resize_case(shape, out_sp, 14)
    y = nn.resize(x, sizes=sizes, mode="nearest", coordinate_transformation_mode="asymmetric",
                  nearest_mode="floor")
    _close(y, F.interpolate(_t(x), size=list(out_sp), mode="nearest"), rtol=0, atol=0)
    y = nn.resize(x, sizes=sizes, mode="nearest", coordinate_transformation_mode="half_pixel",
                  nearest_mode="round_prefer_ceil")
    _close(y, F.interpolate(_t(x), size=list(out_sp), mode="nearest-exact"), rtol=0, atol=0)


@pytest.mark.parametrize("coord", ["half_pixel", "pytorch_half_pixel", "half_pixel_symmetric",
                                   "align_corners"])
@pytest.mark.parametrize("shape,out_sp", RESIZE_SHAPES)
def test_resize_linear(shape, out_sp, coord):
    x, sizes = _resize_case(shape, out_sp, 15)
    y = nn.resize(x, sizes=sizes, mode="linear", coordinate_transformation_mode=coord)
    ref = F.interpolate(_t(x), size=list(out_sp), mode=LINEAR_MODE[len(out_sp)],
                        align_corners=coord == "align_corners")
    _close(y, ref)


@pytest.mark.parametrize("coord", ["half_pixel", "align_corners"])
@pytest.mark.parametrize("shape,out_sp", [s for s in RESIZE_SHAPES if len(s[1]) == 2])
def test_resize_cubic(shape, out_sp, coord):
    x, sizes = _resize_case(shape, out_sp, 16)
    y = nn.resize(x, sizes=sizes, mode="cubic", coordinate_transformation_mode=coord,
                  cubic_coeff_a=-0.75)
    ref = F.interpolate(_t(x), size=list(out_sp), mode="bicubic",
                        align_corners=coord == "align_corners")
    _close(y, ref)


def test_resize_scales_match_torch_scale_factor():
    x = _rand(np.random.default_rng(17), (1, 2, 7, 9))
    y = nn.resize(x, scales=[1, 1, 1.7, 0.6], mode="linear")
    ref = F.interpolate(_t(x), scale_factor=(1.7, 0.6), mode="bilinear", align_corners=False,
                        recompute_scale_factor=False)
    _close(y, ref)
    y = nn.resize(x, scales=[1, 1, 2.5, 0.5], mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    ref = F.interpolate(_t(x), scale_factor=(2.5, 0.5), mode="nearest",
                        recompute_scale_factor=False)
    _close(y, ref, rtol=0, atol=0)


def test_resize_non_spatial_axis():
    x = _rand(np.random.default_rng(18), (2, 3, 5))
    y = nn.resize(x, sizes=[2, 7, 5], mode="linear")
    ref = F.interpolate(_t(x.transpose(0, 2, 1)), size=7, mode="linear").numpy()
    _close(y, np.ascontiguousarray(ref.transpose(0, 2, 1)))
    y = nn.resize(x, sizes=[4, 3, 5], mode="nearest", coordinate_transformation_mode="asymmetric",
                  nearest_mode="floor")
    np.testing.assert_array_equal(y, x[[0, 0, 1, 1]])


@pytest.mark.parametrize("nearest_mode,expected", [
    ("round_prefer_floor", [[0, 0, 1, 1, 2, 2], [0, 1, 3, 4], [0, 2, 5]]),
    ("round_prefer_ceil", [[0, 1, 1, 2, 2, 2], [0, 2, 3, 5], [0, 2, 5]]),
    ("floor", [[0, 0, 1, 1, 2, 2], [0, 1, 3, 4], [0, 2, 4]]),
    ("ceil", [[0, 1, 1, 2, 2, 2], [0, 2, 3, 5], [0, 3, 5]]),
])
def test_resize_nearest_modes(nearest_mode, expected):
    """Asymmetric sources: 3->6 gives x/2, 6->4 gives 1.5x, 7->3 gives 7x/3."""
    for (n_in, n_out), idx in zip([(3, 6), (6, 4), (7, 3)], expected):
        x = (np.arange(n_in, dtype=np.float32) + 1.0) * 10
        y = nn.resize(x, sizes=[n_out], mode="nearest",
                      coordinate_transformation_mode="asymmetric", nearest_mode=nearest_mode)
        np.testing.assert_array_equal(y, x[idx])


def test_resize_half_pixel_symmetric_onnx_example():
    # ONNX test resize_downsample_scales_linear_half_pixel_symmetric
    x = np.array([[[[1, 2, 3, 4]]]], dtype=np.float32)
    y = nn.resize(x, scales=[1, 1, 1, 0.6], mode="linear",
                  coordinate_transformation_mode="half_pixel_symmetric")
    np.testing.assert_allclose(y, [[[[1.6666666, 3.3333333]]]], rtol=1e-6)


def _onnx_resize_1d(data, n_out, mode, coord, nearest_mode, a, exclude_outside):
    """Scalar port of the ONNX reference algorithm (sizes given, spec's pytorch_half_pixel).

    Coordinates are exact fractions: the float version in onnx.reference can land on the
    wrong side of an integer (e.g. 7 -> 17, x=8 gives 3.0000000000000004 instead of 3).
    """
    n_in = len(data)
    scale = Fraction(n_out, n_in)
    out = []
    for xr in range(n_out):
        if coord == "align_corners":
            xo = Fraction(0) if n_out == 1 else Fraction(xr * (n_in - 1), n_out - 1)
        elif coord == "asymmetric":
            xo = xr / scale
        elif coord == "pytorch_half_pixel":
            xo = Fraction(0) if n_out == 1 else (xr + Fraction(1, 2)) / scale - Fraction(1, 2)
        else:
            xo = (xr + Fraction(1, 2)) / scale - Fraction(1, 2)
        ratio = 1.0 if xo.denominator == 1 else float(xo - math.floor(xo))
        if mode == "nearest":
            if ratio == 1.0:
                coeffs = [0, 1]
            else:
                coeffs = {"round_prefer_floor": [ratio <= 0.5, ratio > 0.5],
                          "round_prefer_ceil": [ratio < 0.5, ratio >= 0.5],
                          "floor": [1, 0], "ceil": [0, 1]}[nearest_mode]
        elif mode == "linear":
            coeffs = [1 - ratio, ratio]
        else:
            r = ratio
            coeffs = [((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
                      ((a + 2) * r - (a + 3)) * r * r + 1,
                      ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1,
                      ((a * (2 - r) - 5 * a) * (2 - r) + 8 * a) * (2 - r) - 4 * a]
        coeffs = np.array(coeffs, dtype=np.float64)
        n = len(coeffs)
        pw = math.ceil(n / 2)
        padded = np.pad(data.astype(np.float64), pw, mode="edge")
        idx = sorted(sorted(range(len(padded)), key=lambda i: (abs(xo + pw - i), i))[:n])
        if exclude_outside:
            coeffs = np.array([cf if 0 <= i - pw < n_in else 0.0 for cf, i in zip(coeffs, idx)])
            coeffs /= coeffs.sum()
        out.append(float(np.dot(coeffs, padded[idx])))
    return np.array(out)


@pytest.mark.parametrize("coord", ["half_pixel", "pytorch_half_pixel", "align_corners",
                                   "asymmetric"])
@pytest.mark.parametrize("mode,nearest_mode,a,excl", [
    ("nearest", "round_prefer_floor", -0.75, False),
    ("nearest", "round_prefer_ceil", -0.75, False),
    ("nearest", "floor", -0.75, False),
    ("nearest", "ceil", -0.75, False),
    ("linear", "round_prefer_floor", -0.75, False),
    ("cubic", "round_prefer_floor", -0.75, False),
    ("cubic", "round_prefer_floor", -0.5, True),
])
def test_resize_matches_onnx_reference_algorithm(coord, mode, nearest_mode, a, excl):
    rng = np.random.default_rng(19)
    data = rng.standard_normal(7)
    for n_out in [1, 3, 4, 7, 10, 14, 17]:
        y = nn.resize(data, sizes=[n_out], mode=mode, coordinate_transformation_mode=coord,
                      nearest_mode=nearest_mode, cubic_coeff_a=a, exclude_outside=excl)
        ref = _onnx_resize_1d(data, n_out, mode, coord, nearest_mode, a, excl)
        np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12, err_msg=f"n_out={n_out}")


def test_resize_dtypes():
    x = _rand(np.random.default_rng(20), (1, 1, 4, 5))
    y16 = nn.resize(x.astype(np.float16), sizes=[1, 1, 7, 3], mode="linear")
    assert y16.dtype == np.float16
    np.testing.assert_allclose(y16, nn.resize(x, sizes=[1, 1, 7, 3], mode="linear"), atol=5e-3)
    xi = np.arange(6, dtype=np.int32).reshape(1, 1, 2, 3)
    yi = nn.resize(xi, sizes=[1, 1, 4, 6], mode="nearest")
    assert yi.dtype == np.int32 and yi.shape == (1, 1, 4, 6)
    assert nn.resize(x, sizes=list(x.shape), mode="cubic").tolist() == x.tolist()


# --------------------------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------------------------

_X = np.ones((1, 4, 6, 6), np.float32)
_W = np.ones((6, 2, 3, 3), np.float32)
_CONV = dict(strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], groups=2)
_POOL = dict(kernel=[2, 2], strides=[1, 1], pads=[0, 0, 0, 0])


@pytest.mark.parametrize("call,match", [
    (lambda: nn.conv_output_shape([5, 5], [3], [1, 1], [0] * 4, [1, 1]), "kernel"),
    (lambda: nn.conv_output_shape([5], [3], [0], [0, 0], [1]), "strides"),
    (lambda: nn.conv_output_shape([5], [3], [1], [0], [1]), "pads"),
    (lambda: nn.conv_output_shape([5], [3], [1], [-1, 0], [1]), "pads"),
    (lambda: nn.conv_output_shape([5], [3], [1], [0, 0], [0]), "dilations"),
    (lambda: nn.conv_output_shape([2], [3], [1], [0, 0], [1]), "empty"),
    (lambda: nn.conv_output_shape([5], [2.5], [1], [0, 0], [1]), "kernel"),
    (lambda: nn.conv_transpose_output_shape([5], [3], [2], [0, 0], [1], [2]), "output_padding"),
    (lambda: nn.conv_transpose_output_shape([5], [3], [2], [0, 0], [1], [0, 0]),
     "output_padding"),
    (lambda: nn.pool_output_shape([5], [3], [1], [0, 0], [1, 1], False), "dilations"),
    (lambda: nn.pool_output_shape([1], [3], [1], [0, 0], [1], True), "empty"),
    (lambda: nn.conv(_X, _W, strides=[1], pads=[0] * 4, dilations=[1, 1], groups=2), "strides"),
    (lambda: nn.conv(_X, _W, **{**_CONV, "groups": 3}), "groups"),
    (lambda: nn.conv(_X, _W, **{**_CONV, "groups": 4}), "groups"),
    (lambda: nn.conv(_X, _W, **{**_CONV, "groups": 1}), r"w\.shape\[1\]"),
    (lambda: nn.conv(_X, _W.astype(np.float64), **_CONV), "dtype"),
    (lambda: nn.conv(_X, _W, np.ones(5, np.float32), **_CONV), "bias"),
    (lambda: nn.conv(_X, _W[0], **_CONV), "ndim"),
    (lambda: nn.conv(_X.astype(np.int32), _W.astype(np.int32), **_CONV), "floating"),
    (lambda: nn.conv(_X[0, 0], _W, **_CONV), "ndim"),
    (lambda: nn.conv_transpose(_X, _W, **_CONV, output_padding=[0, 0]), r"w\.shape\[0\]"),
    (lambda: nn.conv_transpose(_X, np.ones((4, 2, 3, 3), np.float32), **{**_CONV, "groups": 3},
                               output_padding=[0, 0]), "groups"),
    (lambda: nn.conv_transpose(_X, np.ones((4, 2, 3, 3), np.float32), **_CONV,
                               output_padding=[1, 0]), "output_padding"),
    (lambda: nn.max_pool(_X, kernel=[2], strides=[1], pads=[0, 0], dilations=[1],
                         ceil_mode=False), "kernel"),
    (lambda: nn.max_pool(_X, **{**_POOL, "strides": [1, 0]}, dilations=[1, 1], ceil_mode=False),
     "strides"),
    (lambda: nn.avg_pool(_X, **{**_POOL, "pads": [0, 0]}, ceil_mode=False,
                         count_include_pad=False), "pads"),
    (lambda: nn.lp_pool(_X, **_POOL, p=0), "p"),
    (lambda: nn.global_avg_pool(np.ones((2, 3), np.float32)), "ndim"),
    (lambda: nn.resize(_X, sizes=[1, 4, 3], mode="linear"), "sizes"),
    (lambda: nn.resize(_X, sizes=[1, 4, 3, 0], mode="linear"), "sizes"),
    (lambda: nn.resize(_X, sizes=[1, 4, 3, 3], mode="area"), "mode"),
    (lambda: nn.resize(_X, sizes=[1, 4, 3, 3], coordinate_transformation_mode="tf_crop_and_resize"),
     "tf_crop_and_resize"),
    (lambda: nn.resize(_X, sizes=[1, 4, 3, 3], nearest_mode="round"), "nearest_mode"),
    (lambda: nn.resize(_X, mode="linear"), "sizes and scales"),
    (lambda: nn.resize(_X, sizes=[1, 4, 3, 3], scales=[1, 1, 0.5, 0.5]), "sizes and scales"),
    (lambda: nn.resize(_X, scales=[1, 1, -0.5, 0.5]), "scales"),
    (lambda: nn.resize(_X.astype(np.int32), sizes=[1, 4, 3, 3], mode="linear"), "floating"),
])
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
