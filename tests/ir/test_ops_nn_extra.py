"""Tests of the extra neural-network ops: type rules (static and symbolic shapes, attribute and
operand errors) and numerics through the builder and interpreter against PyTorch
(max_pool_with_indices, grid_sample) or ONNX's NumPy reference evaluator (resize_general,
roi_align, which PyTorch does not implement with ONNX's options), plus the SAMPLES contract."""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from compiler.ir import TypeInferenceError, tensor
from compiler.ir import dtypes as dt
from tests.ir.opcheck import BF16, check_samples, run_op, to_torch
from tests.ir.opcheck import infer
from tests.ir.opcheck import infer_one
from tests.ir.samples.nn_extra import SAMPLES

OPS_TESTED = {"max_pool_with_indices", "resize_general", "grid_sample", "roi_align"}


def t(shape, dtype: str = "f32"):
    return tensor(shape, dtype)


def onnx_ref(op: str, inputs: dict[str, np.ndarray], opset: int, **attrs: Any) -> np.ndarray:
    """The first output of one ONNX node run by onnx's NumPy reference evaluator."""
    node = helper.make_node(op, list(inputs), ["y"], **attrs)
    vis = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in inputs.items()]
    graph = helper.make_graph([node], "g", vis,
                              [helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model).run(None, inputs)[0]


# --- max_pool_with_indices ------------------------------------------------------------------------


def test_max_pool_with_indices_types():
    y, i = infer("max_pool_with_indices", t(["n", 3, 8, 8]), kernel=[2, 2], strides=[2, 2])
    assert y == t(["n", 3, 4, 4]) and i == t(["n", 3, 4, 4], "i64")
    y, i = infer("max_pool_with_indices", t([1, 2, 5], "u8"), kernel=[3], pads=[1, 1],
                 ceil_mode=True, storage_order=1)
    assert y == t([1, 2, 5], "u8") and i.dtype is dt.i64
    with pytest.raises(TypeInferenceError, match="storage_order"):
        infer("max_pool_with_indices", t([1, 2, 5, 5]), kernel=[2, 2], storage_order=2)
    with pytest.raises(TypeInferenceError, match="max_pool_with_indices"):
        infer("max_pool_with_indices", t([1, 2, 5, 5], "bool"), kernel=[2, 2])
    with pytest.raises(TypeInferenceError, match="kernel"):
        infer("max_pool_with_indices", t([1, 2, 5, 5]), kernel=[2])


@pytest.mark.parametrize("d, kernel, strides, pads, dilations, ceil", [
    (1, [3], [2], [1, 1], [1], False),
    (2, [2, 3], [2, 1], [1, 0, 1, 0], [1, 2], True),
    (2, [3, 3], [2, 2], [0, 0, 0, 0], [1, 1], False),
    (3, [2, 2, 2], [1, 2, 1], [0, 1, 1, 0, 1, 1], [2, 1, 1], False),
])
def test_max_pool_with_indices_matches_torch(d, kernel, strides, pads, dilations, ceil):
    rng = np.random.default_rng(d * 7 + len(pads))
    shape = (2, 3, *[7 - d + i for i in range(d)])
    x = rng.standard_normal(shape).astype(np.float32)
    y, idx = run_op("max_pool_with_indices", x, kernel=kernel, strides=strides, pads=pads,
                    dilations=dilations, ceil_mode=ceil)
    pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[d]
    want, want_idx = pool(torch.from_numpy(x), kernel, strides, pads[:d], dilations,
                          ceil_mode=ceil, return_indices=True)
    np.testing.assert_array_equal(y, want.numpy())
    plane = int(np.prod(shape[2:]))
    offset = (np.arange(shape[0] * shape[1]) * plane).reshape(shape[0], shape[1], *[1] * d)
    np.testing.assert_array_equal(idx, want_idx.numpy() + offset)
    # the values are exactly max_pool's
    (plain,) = run_op("max_pool", x, kernel=kernel, strides=strides, pads=pads,
                      dilations=dilations, ceil_mode=ceil)
    np.testing.assert_array_equal(y, plain)


def test_max_pool_with_indices_column_major_and_ints():
    rng = np.random.default_rng(3)
    x = rng.permutation(2 * 2 * 5 * 4).reshape(2, 2, 5, 4).astype(np.int32)
    y, row = run_op("max_pool_with_indices", x, kernel=[2, 2], strides=[2, 1])
    _, col = run_op("max_pool_with_indices", x, kernel=[2, 2], strides=[2, 1], storage_order=1)
    plane = row // 20, row % 20
    h, w = plane[1] // 4, plane[1] % 4
    np.testing.assert_array_equal(col, plane[0] * 20 + h + w * 5)
    np.testing.assert_array_equal(y, np.take(x.reshape(-1), row))


def test_max_pool_with_indices_first_maximum_wins():
    x = np.array([[[1, 3, 3, 2, 3]]], dtype=np.float32)
    y, idx = run_op("max_pool_with_indices", x, kernel=[3])
    np.testing.assert_array_equal(y, [[[3, 3, 3]]])
    np.testing.assert_array_equal(idx, [[[1, 1, 2]]])


# --- resize_general -------------------------------------------------------------------------------


def test_resize_general_types():
    got = infer_one("resize_general", t(["b", 3, 4, 6]), sizes=["b", 3, 2, 9],
                    scales=[1, 1, 0.6, 1.5])
    assert got == t(["b", 3, 2, 9])
    got = infer_one("resize_general", t([2, 5], "i8"), sizes=[2, 7], scales=[1, 1.4])
    assert got == t([2, 7], "i8")
    with pytest.raises(TypeInferenceError, match="symbolic"):
        infer_one("resize_general", t(["b", 4]), sizes=[4, 4], scales=[2, 1])
    with pytest.raises(TypeInferenceError, match="roi"):
        infer_one("resize_general", t([2, 4]), sizes=[2, 8], scales=[1, 2], roi=[0, 1])
    with pytest.raises(TypeInferenceError, match="roi"):
        infer_one("resize_general", t([2, 4]), sizes=[2, 8], scales=[1, 2],
                  coordinate_transformation_mode="tf_crop_and_resize")
    with pytest.raises(TypeInferenceError, match="antialias"):
        infer_one("resize_general", t([2, 4]), sizes=[2, 2], scales=[1, 0.5], antialias=True)
    with pytest.raises(TypeInferenceError, match="float"):
        infer_one("resize_general", t([2, 4], "i32"), sizes=[2, 2], scales=[1, 0.5],
                  mode="linear")
    with pytest.raises(TypeInferenceError, match="scales"):
        infer_one("resize_general", t([2, 4]), sizes=[2, 2], scales=[0.5])


RESIZE_CASES = [
    dict(scales=[1, 1, 0.6, 0.6], mode="linear"),
    dict(scales=[1, 1, 0.6, 1.7], mode="cubic", coordinate_transformation_mode="asymmetric"),
    dict(scales=[1, 1, 0.6, 0.8], mode="cubic", antialias=1),
    dict(scales=[1, 1, 0.45, 0.7], mode="linear", antialias=1,
         coordinate_transformation_mode="pytorch_half_pixel"),
    dict(scales=[1, 1, 0.8, 1.3], mode="cubic", exclude_outside=1, cubic_coeff_a=-0.5),
    dict(scales=[1, 1, 1.3, 0.7], mode="linear",
         coordinate_transformation_mode="half_pixel_symmetric"),
    dict(scales=[1, 1, 2.5, 1.5], mode="nearest", nearest_mode="round_prefer_ceil",
         coordinate_transformation_mode="align_corners"),
    dict(scales=[1, 1, 0.7, 2.2], mode="nearest", nearest_mode="floor"),
    dict(scales=[1, 1, 0.8, 1.2], mode="linear",
         coordinate_transformation_mode="tf_crop_and_resize",
         roi=[0, 0, 0.2, -0.1, 1, 1, 0.9, 1.3], extrapolation_value=7.5),
    dict(scales=[1, 1, 1.5, 0.8], mode="nearest",
         coordinate_transformation_mode="tf_crop_and_resize",
         roi=[0, 0, 0.1, 0.3, 1, 1, 0.8, 0.6]),
]


@pytest.mark.parametrize("case", RESIZE_CASES, ids=lambda c: f"{c['mode']}-"
                         f"{c.get('coordinate_transformation_mode', 'half_pixel')}")
def test_resize_general_matches_onnx_reference(case):
    rng = np.random.default_rng(len(str(case)))
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    case = dict(case)
    scales = case.pop("scales")
    roi = case.pop("roi", None)
    sizes = [int(np.floor(n * s)) for n, s in zip(x.shape, scales)]
    feeds = {"x": x, "roi": np.asarray(roi if roi else [], np.float32),
             "scales": np.asarray(scales, np.float32)}
    want = onnx_ref("Resize", feeds, 19, **case)
    attrs = {k: bool(v) if k in ("antialias", "exclude_outside") else v for k, v in case.items()}
    (got,) = run_op("resize_general", x, sizes=sizes,
                    scales=[float(np.float32(s)) for s in scales], roi=roi or [], **attrs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, BF16, np.float64])
def test_resize_general_low_and_high_precision(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 4, 5)).astype(dtype)
    (got,) = run_op("resize_general", x, sizes=[1, 2, 2, 8], scales=[1, 1, 0.6, 1.7],
                    mode="linear")
    (wide,) = run_op("resize_general", x.astype(np.float64), sizes=[1, 2, 2, 8],
                     scales=[1, 1, 0.6, 1.7], mode="linear")
    assert got.dtype == np.dtype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-2
    np.testing.assert_allclose(got.astype(np.float64), wide, rtol=tol, atol=tol)


def test_resize_general_nearest_ints_and_exact_scales_match_resize():
    x = np.arange(2 * 12, dtype=np.int64).reshape(2, 3, 4) * 1_000_000_007
    (got,) = run_op("resize_general", x, sizes=[2, 6, 2], scales=[1, 2, 0.5])
    (same,) = run_op("resize", x, sizes=[2, 6, 2])
    np.testing.assert_array_equal(got, same)
    y = np.random.default_rng(0).standard_normal((1, 2, 3, 4)).astype(np.float32)
    for mode in ("linear", "cubic"):
        (a,) = run_op("resize_general", y, sizes=[1, 2, 6, 8], scales=[1, 1, 2, 2], mode=mode)
        (b,) = run_op("resize", y, sizes=[1, 2, 6, 8], mode=mode)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


# --- grid_sample ----------------------------------------------------------------------------------


def test_grid_sample_types():
    assert infer_one("grid_sample", t(["n", 3, 5, 6]), t(["n", 2, 7, 2])) == t(["n", 3, 2, 7])
    assert infer_one("grid_sample", t([1, 2, 4, 4, 4], "f64"), t([1, 3, 3, 3, 3], "f64"),
                     mode="nearest") == t([1, 2, 3, 3, 3], "f64")
    with pytest.raises(TypeInferenceError, match="grid"):
        infer_one("grid_sample", t([1, 3, 5, 6]), t([1, 2, 7, 3]))
    with pytest.raises(TypeInferenceError, match="share a dtype"):
        infer_one("grid_sample", t([1, 3, 5, 6]), t([1, 2, 7, 2], "f64"))
    with pytest.raises(TypeInferenceError, match="batch"):
        infer_one("grid_sample", t([2, 3, 5, 6]), t([3, 2, 7, 2]))
    with pytest.raises(TypeInferenceError, match="static"):
        infer_one("grid_sample", t([2, 3, "h", 6]), t([2, 2, 7, 2]))


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [False, True])
def test_grid_sample_2d_matches_torch(mode, padding, align):
    rng = np.random.default_rng(hash((mode, padding, align)) % 1000)
    x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    grid = rng.uniform(-1.4, 1.4, (2, 6, 3, 2)).astype(np.float32)
    (got,) = run_op("grid_sample", x, grid, mode=mode, padding_mode=padding, align_corners=align)
    if mode == "cubic" and padding == "border":
        # ONNX clamps the coordinate before taking the 4x4 taps; PyTorch clamps each tap only
        want = onnx_ref("GridSample", {"x": x, "grid": grid}, 20, mode=mode,
                        padding_mode=padding, align_corners=int(align))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        return
    tmode = {"linear": "bilinear", "cubic": "bicubic"}.get(mode, mode)
    want = F.grid_sample(to_torch(x), to_torch(grid), mode=tmode, padding_mode=padding,
                         align_corners=align)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_grid_sample_3d_matches_torch(mode):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 2, 3, 4, 5)).astype(np.float64)
    grid = rng.uniform(-1.2, 1.2, (1, 2, 3, 2, 3))
    (got,) = run_op("grid_sample", x, grid, mode=mode, padding_mode="border")
    want = F.grid_sample(torch.from_numpy(x), torch.from_numpy(grid),
                         mode="bilinear" if mode == "linear" else mode, padding_mode="border",
                         align_corners=False)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-10)


def test_grid_sample_1d_and_f16_match_onnx_reference():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6)).astype(np.float32)
    grid = rng.uniform(-1.2, 1.2, (2, 4, 1)).astype(np.float32)
    (got,) = run_op("grid_sample", x, grid, mode="cubic", padding_mode="reflection")
    want = onnx_ref("GridSample", {"x": x, "grid": grid}, 20, mode="cubic",
                    padding_mode="reflection")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    (half,) = run_op("grid_sample", x.astype(np.float16), grid.astype(np.float16))
    assert half.dtype == np.float16
    want = F.grid_sample(torch.from_numpy(x[:, :, None, :]),
                         torch.from_numpy(np.concatenate(
                             [grid.astype(np.float16).astype(np.float32),
                              np.zeros_like(grid)], -1)[:, None]), align_corners=False)
    np.testing.assert_allclose(half.astype(np.float32), want.numpy()[:, :, 0], rtol=1e-2,
                               atol=1e-2)


# --- roi_align ------------------------------------------------------------------------------------


def test_roi_align_types():
    got = infer_one("roi_align", t(["n", 3, 8, 8]), t(["r", 4]), t(["r"], "i64"),
                    output_height=2, output_width=3)
    assert got == t(["r", 3, 2, 3])
    with pytest.raises(TypeInferenceError, match="rois"):
        infer_one("roi_align", t([1, 3, 8, 8]), t([2, 5]), t([2], "i64"))
    with pytest.raises(TypeInferenceError, match="num_rois"):
        infer_one("roi_align", t([1, 3, 8, 8]), t([2, 4]), t([3], "i64"))
    with pytest.raises(TypeInferenceError, match="batch_indices"):
        infer_one("roi_align", t([1, 3, 8, 8]), t([2, 4]), t([2]))
    with pytest.raises(TypeInferenceError, match="x must be"):
        infer_one("roi_align", t([1, 3, 8]), t([2, 4]), t([2], "i64"))
    with pytest.raises(TypeInferenceError, match="output_height"):
        infer_one("roi_align", t([1, 3, 8, 8]), t([2, 4]), t([2], "i64"), output_height=0)


@pytest.mark.parametrize("attrs", [
    dict(),
    dict(mode="max", output_height=3, output_width=2, sampling_ratio=2),
    dict(coordinate_transformation_mode="output_half_pixel", spatial_scale=0.5,
         output_height=2, output_width=2),
    dict(mode="max", coordinate_transformation_mode="output_half_pixel", output_height=4,
         output_width=3),
])
def test_roi_align_matches_onnx_reference(attrs):
    rng = np.random.default_rng(len(attrs))
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    rois = np.array([[0.5, 1.0, 6.2, 7.9], [2.0, 0.0, 3.0, 2.5], [-1.0, 3.0, 9.5, 9.5],
                     [4.0, 4.0, 4.5, 4.2]], dtype=np.float32)
    bi = np.array([0, 1, 1, 0], dtype=np.int64)
    (got,) = run_op("roi_align", x, rois, bi, **attrs)
    want = onnx_ref("RoiAlign", {"x": x, "rois": rois, "bi": bi}, 22, **attrs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# --- samples --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_are_valid(name):
    check_samples(SAMPLES, name, require_outputs=True)
    assert onnx  # the module is used for its reference evaluator
