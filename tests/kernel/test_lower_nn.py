"""Kernel lowerings of the NN ops (compiler/kernel/ops/nn.py) on the LLVM target, checked
against the reference interpreter on fresh random inputs: convolutions, pools, resize,
grid_sample, ROI ops, depth/space movement and the normalizations."""
from __future__ import annotations

import numpy as np
import pytest

import compiler
from compiler import ir
from compiler.ir import Module
from compiler.ir.builder import FunctionBuilder
from compiler.ir.types import TensorType

RNG = np.random.default_rng(20240605)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLC_CACHE_DIR", str(tmp_path / "cache"))


def _rand(shape, dtype, lo=-2.0, hi=2.0):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return RNG.integers(max(lo, np.iinfo(dtype).min) if dtype.kind == "i" else 0,
                            hi if dtype.kind == "i" else 200, size=shape).astype(dtype)
    return RNG.uniform(lo, hi, size=shape).astype(dtype)


def _np_dtype(name):
    from compiler.ir import dtypes as dt
    return dt.dtype(name).np_dtype


def check(op, args, attrs=None, rtol=1e-5, atol=1e-5, dims=None, dump=None):
    """Compile one `op` over arguments `args` ([(array, dtype name)]) for the LLVM target and
    compare every result with the interpreter. `dims` makes arg dims symbolic:
    {arg index: {axis: symbol}}."""
    return check_many([(op, args, attrs or {})], rtol, atol, dims, dump)


def check_many(cases, rtol=1e-5, atol=1e-5, dims=None, dump=None):
    """Like `check` for several (op, args, attrs) in one module (one compile)."""
    m = Module("t")
    f = FunctionBuilder(m, "main")
    arrays, outs = [], []
    for op, args, attrs in cases:
        vals = []
        for arr, dname in args:
            shape = list(arr.shape)
            for ax, sym in (dims or {}).get(len(arrays), {}).items():
                shape[ax] = sym
            vals.append(f.arg(f"a{len(arrays)}", TensorType(tuple(shape), dname)))
            arrays.append(arr)
        res = f.op(op, *vals, **attrs)
        outs += res if isinstance(res, list) else [res]
    f.ret(*outs)
    want = ir.interpret(m, *arrays)
    mod = compiler.compile(m, target="llvm", dump_dir=dump)
    got = mod(*arrays)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        if g.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol,
                                       atol=atol, equal_nan=True)
    return got


def T(shape, dtype="f32", **kw):
    return (_rand(shape, _np_dtype(dtype) if dtype != "bf16" else np.float32, **kw)
            .astype(_np_dtype(dtype)), dtype)


# ------------------------------------------------------------------------------ conv

CONV_CASES = [
    # x, w, bias, attrs
    ((2, 3, 9, 11), (4, 3, 3, 3), True, dict(pads=[1, 1, 1, 1])),
    ((1, 4, 10, 9), (6, 2, 3, 2), True, dict(strides=[2, 1], dilations=[2, 1], groups=2,
                                             pads=[1, 0, 2, 1])),
    ((2, 3, 17), (5, 3, 4), False, dict(dilations=[2], pads=[3, 1])),
    ((1, 2, 5, 6, 7), (3, 2, 2, 3, 2), True, dict(strides=[1, 2, 1], pads=[0, 1, 1, 1, 0, 1])),
    ((1, 4, 7, 7), (4, 1, 3, 3), True, dict(groups=4, strides=[2, 2], pads=[1, 1, 1, 1])),
    ((1, 24, 5, 40), (8, 24, 1, 1), False, dict()),
    ((2, 3, 8, 23), (13, 3, 2, 3), True, dict(strides=[1, 3], dilations=[1, 2], pads=[0, 2, 1, 0])),
    ((1, 5, 5, 6), (20, 5, 3, 3), False, dict(pads=[0, 1, 0, 1])),
    # rows of >= 16 outputs: the direct (no im2col) path, stride phases, ragged row tiles
    ((1, 3, 6, 37), (5, 3, 3, 3), True, dict(pads=[1, 1, 1, 1])),
    ((2, 4, 5, 45), (6, 2, 2, 3), True, dict(strides=[1, 2], pads=[0, 1, 1, 1], groups=2)),
    ((1, 2, 3, 3, 40), (3, 2, 2, 2, 5), False, dict(dilations=[1, 1, 3], pads=[0, 0, 0, 1, 1, 2])),
]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv_f32(case):
    xs, ws, b, attrs = CONV_CASES[case]
    args = [T(xs), T(ws)] + ([T((ws[0],))] if b else [])
    check("conv", args, attrs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["f64", "f16", "bf16"])
def test_conv_other_floats(dtype):
    tol = {"f64": 1e-10, "f16": 2e-3, "bf16": 2e-2}[dtype]
    check_many([("conv", [T((1, 3, 6, w), dtype), T((2, 3, 3, 2), dtype), T((2,), dtype)],
                 dict(pads=[1, 0, 1, 1], strides=[1, s])) for w, s in ((7, 2), (40, 1))],
               rtol=tol, atol=tol)


def test_conv_symbolic_dims():
    """Same-size convs over symbolic H, W (the last tile of positions guarded), and a symbolic
    channel count (the reduction-stage path)."""
    check_many([("conv", [T((2, 3, 7, 9)), T((4, 3, 3, 3)), T((4,))], dict(pads=[1, 1, 1, 1])),
                ("conv", [T((1, 4, 5, 6)), T((4, 2, 1, 3))],
                 dict(pads=[0, 3, 0, 1], groups=2, dilations=[1, 2]))],
               rtol=1e-4, atol=1e-4, dims={0: {0: "n", 2: "h", 3: "w"}, 3: {2: "h2", 3: "w2"}})
    check("conv", [T((1, 5, 6, 7)), T((3, 5, 2, 3))], dict(strides=[2, 1]), rtol=1e-4,
          atol=1e-4, dims={0: {1: "c"}, 1: {1: "c"}})


def test_conv_symbolic_batch_and_epilogue_fuse():
    m = Module("t")
    f = FunctionBuilder(m, "main")
    x = f.arg("x", TensorType(("n", 3, 8, 8), "f32"))
    w = f.constant(_rand((5, 3, 3, 3), np.float32), name="w")
    b = f.constant(_rand((5,), np.float32), name="b")
    w2 = f.constant(_rand((5, 3, 1, 1), np.float32), name="w2")
    y = f.relu(f.add(f.conv(x, w, b, pads=[1, 1, 1, 1]), f.conv(x, w2)))
    f.ret(y)
    mod = compiler.compile(m, target="llvm")
    for n in (1, 3):
        a = _rand((n, 3, 8, 8), np.float32)
        np.testing.assert_allclose(mod(a)[0], ir.interpret(m, a)[0], rtol=1e-4, atol=1e-4)


CONVT_CASES = [
    ((1, 2, 4, 5), (2, 3, 3, 3), True, dict(strides=[2, 2], pads=[1, 0, 1, 1],
                                            output_padding=[1, 0])),
    ((2, 4, 5), (4, 2, 3), False, dict(groups=2, dilations=[2], strides=[3])),
    ((1, 2, 3, 3, 2), (2, 1, 2, 2, 2), True, dict()),
]


@pytest.mark.parametrize("case", range(len(CONVT_CASES)))
def test_conv_transpose(case):
    xs, ws, b, attrs = CONVT_CASES[case]
    groups = attrs.get("groups", 1)
    args = [T(xs), T(ws)] + ([T((ws[1] * groups,))] if b else [])
    check("conv_transpose", args, attrs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("with_mask", [False, True])
def test_deform_conv(with_mask):
    x, w = T((1, 4, 6, 5)), T((4, 2, 2, 2))
    og, taps, out = 2, 4, (5, 5)
    offset = T((1, og * taps * 2, *out), lo=-1.5, hi=1.5)
    args = [x, w, offset, T((4,))] + ([T((1, og * taps, *out), lo=0, hi=1)] if with_mask else [])
    check("deform_conv", args, dict(groups=2, offset_groups=og, pads=[0, 1, 0, 0]),
          rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------------ pooling

@pytest.mark.parametrize("dtype,shape,attrs", [
    ("f32", (2, 3, 9, 10), dict(kernel=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                                ceil_mode=True)),
    ("f32", (1, 2, 11, 7), dict(kernel=[2, 3], dilations=[2, 1], pads=[1, 0, 0, 1])),
    ("i32", (2, 3, 13), dict(kernel=[4], strides=[3], pads=[2, 1], ceil_mode=True)),
    ("f16", (1, 2, 5, 6, 4), dict(kernel=[2, 2, 2], strides=[2, 1, 2])),
    ("u8", (1, 2, 6, 6), dict(kernel=[2, 2], pads=[1, 1, 0, 0])),
])
def test_max_pool(dtype, shape, attrs):
    check("max_pool", [T(shape, dtype)], attrs)


def test_max_pool_propagates_nan():
    x = _rand((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 2] = np.nan
    got = check("max_pool", [(x, "f32")], dict(kernel=[2, 2]))[0]
    assert np.isnan(got[0, 0, 0, 1]) and np.isnan(got[0, 0, 1, 2]) and not np.isnan(got[0, 0, 2, 0])


@pytest.mark.parametrize("shape,attrs", [
    ((2, 3, 9, 10), dict(kernel=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=True)),
    ((2, 3, 9, 10), dict(kernel=[3, 2], strides=[2, 2], pads=[1, 1, 2, 1], ceil_mode=True,
                         count_include_pad=True)),
    ((1, 2, 12), dict(kernel=[5], strides=[2], pads=[2, 2], count_include_pad=True)),
    ((1, 2, 4, 5, 6), dict(kernel=[2, 3, 2], pads=[1, 1, 0, 0, 1, 1])),
])
def test_avg_pool(shape, attrs):
    check("avg_pool", [T(shape)], attrs)


def test_avg_pool_f16():
    check("avg_pool", [T((1, 3, 8, 9), "f16")], dict(kernel=[3, 3], pads=[1, 1, 1, 1]),
          rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("op,dtype", [("global_avg_pool", "f32"), ("global_max_pool", "f32"),
                                      ("global_max_pool", "i16"), ("global_avg_pool", "f64")])
def test_global_pools(op, dtype):
    check(op, [T((2, 5, 7, 9), dtype)])
    check(op, [T((3, 4, 19), dtype)])


@pytest.mark.parametrize("attrs", [
    dict(kernel=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=True),
    dict(kernel=[2, 3], storage_order=1, pads=[0, 1, 1, 0], dilations=[2, 1]),
])
def test_max_pool_with_indices(attrs):
    x = _rand((2, 3, 7, 8), np.float32)
    x[0, 0, :2, :2] = 1.0  # ties: the first maximum wins
    check("max_pool_with_indices", [(x, "f32")], attrs)
    check("max_pool_with_indices", [T((1, 2, 3, 11, 4), "i32")],
          dict(kernel=[2, 2, 2], strides=[1, 3, 2]))


# ------------------------------------------------------------------------------ resize

@pytest.mark.parametrize("dtype,shape,sizes,attrs", [
    ("f32", (1, 2, 5, 7), [1, 2, 9, 4], dict(mode="nearest")),
    ("u8", (1, 2, 6, 4), [1, 2, 3, 11], dict(mode="nearest", nearest_mode="round_prefer_ceil",
                                             coordinate_transformation_mode="asymmetric")),
    ("f32", (2, 3, 5, 7), [2, 3, 8, 5], dict(mode="linear")),
    ("f32", (1, 2, 5, 7), [1, 2, 9, 3], dict(mode="linear",
                                             coordinate_transformation_mode="align_corners")),
    ("f32", (1, 1, 6, 5), [1, 1, 10, 3], dict(mode="cubic", exclude_outside=True,
                                              cubic_coeff_a=-0.5)),
    ("f64", (1, 2, 4, 4), [1, 2, 1, 7], dict(mode="cubic",
                                             coordinate_transformation_mode="pytorch_half_pixel")),
    ("f32", (3, 9), [5, 9], dict(mode="nearest", nearest_mode="floor",
                                 coordinate_transformation_mode="half_pixel_symmetric")),
])
def test_resize(dtype, shape, sizes, attrs):
    check("resize", [T(shape, dtype)], dict(sizes=sizes, **attrs))


@pytest.mark.parametrize("shape,sizes,scales,attrs", [
    ((1, 1, 4, 4), [1, 1, 3, 3], [1, 1, 0.8, 0.8], dict(mode="linear", antialias=True)),
    ((1, 1, 5, 6), [1, 1, 3, 2], [1, 1, 0.6, 0.4], dict(mode="cubic", antialias=True)),
    ((1, 2, 4, 5), [1, 2, 3, 7], [1, 1, 0.8, 1.5],
     dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize",
          roi=[0, 0, 0.2, 0.1, 1, 1, 0.9, 1.2], extrapolation_value=7.0)),
    ((1, 2, 4, 5), [1, 2, 7, 8], [1, 1, 1.75, 1.6],
     dict(mode="nearest", coordinate_transformation_mode="tf_half_pixel_for_nn")),
    ((1, 1, 3, 4), [1, 1, 1, 9], [1, 1, 1 / 3, 2.25],
     dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel")),
    ((2, 3, 4), [2, 5, 4], [1, 1.7, 1], dict(mode="cubic", exclude_outside=True)),
])
def test_resize_general(shape, sizes, scales, attrs):
    check("resize_general", [T(shape)], dict(sizes=sizes, scales=scales, **attrs))


# ------------------------------------------------------------------------------ grid_sample

@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
def test_grid_sample_2d(mode):
    x, grid = T((2, 3, 5, 6)), T((2, 4, 7, 2), lo=-1.4, hi=1.4)
    check_many([("grid_sample", [x, grid], dict(mode=mode, padding_mode=padding,
                                                align_corners=align))
                for padding in ("zeros", "border", "reflection") for align in (False, True)])


@pytest.mark.parametrize("shape,grid", [((1, 2, 4, 3, 5), (1, 2, 3, 4, 3)),
                                        ((2, 3, 7), (2, 5, 1))])
def test_grid_sample_1d_3d(shape, grid):
    check("grid_sample", [T(shape), T(grid, lo=-1.2, hi=1.2)],
          dict(mode="linear", padding_mode="reflection"))


# ------------------------------------------------------------------------------ ROI ops

def _rois(n, h, w, count):
    x1 = RNG.uniform(-1, w - 1, count)
    y1 = RNG.uniform(-1, h - 1, count)
    return np.stack([x1, y1, x1 + RNG.uniform(0.2, w, count),
                     y1 + RNG.uniform(0.2, h, count)], 1)


@pytest.mark.parametrize("attrs", [
    dict(mode="avg", output_height=3, output_width=2, spatial_scale=0.5),
    dict(mode="max", output_height=2, output_width=3, sampling_ratio=2),
    dict(mode="avg", output_height=2, output_width=2, sampling_ratio=0,
         coordinate_transformation_mode="output_half_pixel", spatial_scale=0.25),
])
def test_roi_align(attrs):
    rois = (_rois(2, 8, 10, 5) / attrs.get("spatial_scale", 1.0)).astype(np.float32)
    check("roi_align", [T((2, 3, 8, 10)), (rois, "f32"),
                        (np.array([0, 1, 1, 0, 1], np.int64), "i64")], attrs,
          rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_max_roi_pool(dtype):
    boxes = _rois(2, 9, 11, 6) / 0.5
    boxes[0] = [-3, -2, 30, 1]  # mostly outside: empty bins give 0
    rois = np.concatenate([RNG.integers(0, 2, (6, 1)), boxes], 1).astype(_np_dtype(dtype))
    check("max_roi_pool", [T((2, 3, 9, 11), dtype), (rois, dtype)],
          dict(pooled_shape=[3, 2], spatial_scale=0.5))


# ------------------------------------------------------------------------------ movement

@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space(mode):
    check("depth_to_space", [T((2, 12, 3, 5))], dict(blocksize=2, mode=mode))


def test_space_to_depth():
    check("space_to_depth", [T((2, 3, 6, 9), "i64")], dict(blocksize=3))


# ------------------------------------------------------------------------------ normalization

@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_batch_norm(dtype):
    c = 5
    var = (T((c,), dtype, lo=0.1, hi=2.0))
    tol = 1e-5 if dtype == "f32" else 2e-3
    check("batch_norm", [T((2, c, 4, 7), dtype), T((c,), dtype), T((c,), dtype),
                         T((c,), dtype), var], dict(epsilon=1e-3), rtol=tol, atol=tol)


@pytest.mark.parametrize("shape,dims", [((2, 3, 5, 17), None), ((3, 4, 33), {0: {0: "n"}})])
def test_instance_norm(shape, dims):
    c = shape[1]
    check("instance_norm", [T(shape), T((c,)), T((c,))], dict(epsilon=1e-4),
          rtol=1e-4, atol=1e-4, dims=dims)


@pytest.mark.parametrize("shape,groups,dtype", [((2, 6, 5, 7), 3, "f32"), ((1, 8, 20), 8, "f32"),
                                               ((2, 4, 3, 3), 1, "f64"), ((1, 6, 9, 4), 2, "f16")])
def test_group_norm(shape, groups, dtype):
    c = shape[1]
    tol = 3e-3 if dtype == "f16" else 1e-4
    check("group_norm", [T(shape, dtype), T((c,), dtype), T((c,), dtype)],
          dict(num_groups=groups), rtol=tol, atol=tol)

