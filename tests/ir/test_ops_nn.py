"""Tests of the neural-network op declarations: type rules (static and symbolic shapes, attribute
and operand errors), end-to-end numerics against PyTorch through the builder and interpreter, and
the SAMPLES contract. The NumPy references themselves are tested in depth by their own module's
tests; here a few cases per op check that the declarations call them correctly."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compiler.ir import BuildError, FunctionBuilder, Module, TypeInferenceError, interpret, tensor
from tests.ir.opcheck import BF16, check_samples, run_op, to_torch
from tests.ir.opcheck import infer_one as infer
from tests.ir.samples.nn import SAMPLES, array

OPS_TESTED = {"conv", "conv_transpose", "max_pool", "avg_pool", "global_avg_pool",
              "global_max_pool", "resize"}

FLOATS = [np.float32, np.float64, np.float16, BF16]


def t(shape, dtype: str = "f32"):
    return tensor(shape, dtype)


def assert_matches(got: np.ndarray, want: torch.Tensor, dtype: Any) -> None:
    """Compare with a tolerance fitting the dtype; the expected value is rounded to it first."""
    dtype = np.dtype(dtype)
    assert got.dtype == dtype
    w = want.numpy()
    if dtype.kind in "iu":
        np.testing.assert_array_equal(got, w.astype(dtype))
        return
    tol = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5,
           np.dtype(np.float16): 2e-3}.get(dtype, 1.6e-2)
    np.testing.assert_allclose(got.astype(np.float64), w.astype(dtype).astype(np.float64),
                               rtol=tol, atol=tol * 4)


def torch_pad(pads: Sequence[int], d: int) -> list[int]:
    """ONNX pads [begins..., ends...] in F.pad's order (last axis first, begin then end)."""
    out: list[int] = []
    for ax in reversed(range(d)):
        out += [pads[ax], pads[d + ax]]
    return out


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


# --- conv shape rules -----------------------------------------------------------------------------


@pytest.mark.parametrize("x, w, bias, attrs, want", [
    ([1, 3, 8], [4, 3, 3], None, {}, [1, 4, 6]),
    ([2, 3, 8, 8], [4, 3, 3, 3], [4], {"pads": [1, 1, 1, 1]}, [2, 4, 8, 8]),
    ([2, 3, 8, 9], [4, 3, 3, 2], None, {"strides": [2, 3]}, [2, 4, 3, 3]),
    ([2, 3, 8, 9], [4, 3, 3, 2], None, {"pads": [0, 1, 2, 0], "dilations": [2, 1]},
     [2, 4, 6, 9]),
    ([1, 4, 5, 6, 7], [6, 2, 1, 2, 3], None, {"groups": 2}, [1, 6, 5, 5, 5]),
    ([1, 6, 7], [6, 1, 3], [6], {"groups": 6, "strides": [2]}, [1, 6, 3]),   # depthwise
    (["n", 3, 8, 8], [4, 3, 3, 3], None, {"strides": [2, 2]}, ["n", 4, 3, 3]),
    (["n", 3, "h", "w"], [4, 3, 1, 1], None, {}, ["n", 4, "h", "w"]),          # 1x1 kernel
    ([1, 3, "h", "w"], [4, 3, 3, 3], None, {"pads": [1, 1, 1, 1]}, [1, 4, "h", "w"]),  # same
    ([1, 3, "h", 8], [4, 3, 2, 2], None, {"pads": [0, 0, 1, 0], "strides": [1, 2]},
     [1, 4, "h", 4]),                                                          # same_upper on h
    ([1, 3, "h"], [4, 3, 3], None, {"pads": [2, 0], "dilations": [1]}, [1, 4, "h"]),  # causal
    ([1, 3, "l"], [4, 3, 3], None, {"pads": [2, 2], "dilations": [2]}, [1, 4, "l"]),
    ([1, "c", 8], [4, "c", 3], None, {}, [1, 4, 6]),                           # symbolic C
    ([1, 3, 8], ["m", 3, 3], ["m"], {}, [1, "m", 6]),
    ([1, 3, 8], ["m", 3, 3], [4], {}, [1, 4, 6]),
])
def test_conv_shapes(x, w, bias, attrs, want):
    ops = [t(x), t(w)] + ([t(bias)] if bias is not None else [])
    assert infer("conv", *ops, **attrs) == t(want)


@pytest.mark.parametrize("dtype", ["f16", "bf16", "f32", "f64"])
def test_conv_dtypes(dtype):
    assert infer("conv", t([1, 2, 5], dtype), t([3, 2, 2], dtype)) == t([1, 3, 4], dtype)


@pytest.mark.parametrize("ops, attrs, match", [
    ([t([1, 3, 8]), t([4, 2, 3])], {}, r"input channels .*got 3 and 2"),
    ([t([1, 6, 8]), t([4, 3, 3])], {"groups": 4}, r"groups=4 must divide .*\(6\).*\(4\)"),
    ([t([1, 6, 8]), t([3, 3, 3])], {"groups": 2}, r"groups=2 must divide"),
    ([t([1, 6, 8]), t([4, 2, 3])], {"groups": 2}, r"weight dim 1 must be C/groups = 6/2 = 3"),
    ([t([1, 6, 8]), t([4, 3, 3])], {"groups": 0}, r"'groups' must be >= 1, got 0"),
    ([t([1, 3, 8, 8]), t([4, 3, 3, 3])], {"pads": [1, 1]}, r"'pads' must have 4 values"),
    ([t([1, 3, 8, 8]), t([4, 3, 3, 3])], {"strides": [1, 1, 1]}, r"'strides' must have 2"),
    ([t([1, 3, 8]), t([4, 3, 3])], {"strides": [0]}, r"'strides' values must be >= 1"),
    ([t([1, 3, 8]), t([4, 3, 3])], {"dilations": [0]}, r"'dilations' values must be >= 1"),
    ([t([1, 3, 8]), t([4, 3, 3])], {"pads": [-1, 0]}, r"'pads' values must be >= 0"),
    ([t([1, 3, 2]), t([4, 3, 3])], {}, r"spatial dim 0 of size 2 gives an empty output"),
    ([t([1, 3, 5]), t([4, 3, 3])], {"dilations": [3]}, r"gives an empty output"),
    ([t([1, 3, "h"]), t([4, 3, 3])], {}, r"spatial dim 0 is symbolic \(\?h\).*static spatial"),
    ([t([1, 3, "h"]), t([4, 3, 3])], {"pads": [1, 1], "strides": [2]}, r"static spatial"),
    ([t([3, 8]), t([4, 3])], {}, r"\[N, C, \*spatial\] with 1 to 3 spatial dims"),
    ([t([1, 1, 2, 2, 2, 2]), t([1, 1, 1, 1, 1, 1])], {}, r"1 to 3 spatial dims"),
    ([t([1, 3, 8]), t([4, 3, 3, 3])], {}, r"weight must be .* with rank 3"),
    ([t([1, 3, 8]), t([4, 3, "k"])], {}, r"needs a static kernel size"),
    ([t([1, 3, 8]), t([4, 3, 0])], {}, r"kernel dims must be >= 1"),
    ([t([1, 3, 8]), t([4, 3, 3]), t([5])], {}, r"output channels .*got 4 and 5"),
    ([t([1, 3, 8]), t([4, 3, 3]), t([1, 4])], {}, r"bias must have rank 1"),
    ([t([1, 3, 8], "i32"), t([4, 3, 3], "i32")], {}, r"conv operand must be float, got i32"),
    ([t([1, 3, 8]), t([4, 3, 3], "f16")], {}, r"share a dtype"),
    ([t([1, "c", 8]), t([4, 2, 3])], {"groups": 2}, r"groups=2 needs a static input channel"),
])
def test_conv_errors(ops, attrs, match):
    with pytest.raises(TypeInferenceError, match=match):
        infer("conv", *ops, **attrs)


def test_conv_error_through_builder():
    f = FunctionBuilder(Module("m"), "main")
    x, w = f.arg("x", t([1, 3, 8, 8])), f.arg("w", t([4, 5, 3, 3]))
    with pytest.raises(BuildError, match=r"conv\(f32\[1,3,8,8\], f32\[4,5,3,3\]\).*3 and 5"):
        f.conv(x, w)


# --- conv numerics --------------------------------------------------------------------------------


@pytest.mark.parametrize("d, groups, strides, pads, dilations, with_bias", [
    (1, 1, [1], [0, 0], [1], False),
    (1, 2, [2], [1, 1], [2], True),
    (2, 1, [1, 2], [1, 1, 1, 1], [1, 1], True),
    (2, 3, [2, 1], [0, 2, 0, 2], [2, 1], False),
    (2, 1, [1, 1], [0, 1, 2, 0], [1, 2], True),   # asymmetric pads
    (3, 1, [1, 2, 1], [1, 0, 1, 1, 0, 1], [1, 1, 2], True),
    (3, 2, [1, 1, 1], [], [], False),
])
@pytest.mark.parametrize("dtype", FLOATS)
def test_conv_vs_torch(d, groups, strides, pads, dilations, with_bias, dtype):
    rng = np.random.default_rng(d * 100 + groups)
    c, m = 2 * groups, 3 * groups
    x = array(rng, (2, c) + (6, 7, 5)[:d], dtype)
    w = array(rng, (m, c // groups) + (3, 2, 2)[:d], dtype)
    b = array(rng, (m,), dtype) if with_bias else None
    attrs: dict[str, Any] = {"groups": groups}
    for key, v in (("strides", strides), ("pads", pads), ("dilations", dilations)):
        if v:
            attrs[key] = v
    (got,) = run_op("conv", x, w, *([b] if with_bias else []), **attrs)
    xt = F.pad(to_torch(x), torch_pad(pads, d)) if pads else to_torch(x)
    want = CONV[d](xt, to_torch(w), to_torch(b), stride=strides or 1, dilation=dilations or 1,
                   groups=groups)
    assert_matches(got, want, dtype)


# --- conv_transpose -------------------------------------------------------------------------------


@pytest.mark.parametrize("x, w, bias, attrs, want", [
    ([1, 3, 4], [3, 5, 3], None, {}, [1, 5, 6]),
    ([1, 3, 4], [3, 5, 3], [5], {"strides": [2]}, [1, 5, 9]),
    ([1, 3, 4], [3, 5, 3], None, {"strides": [2], "output_padding": [1]}, [1, 5, 10]),
    ([1, 3, 4], [3, 5, 3], None, {"strides": [2], "pads": [1, 1], "output_padding": [1]},
     [1, 5, 8]),
    ([2, 4, 3, 5], [4, 2, 2, 3], None, {"groups": 2, "dilations": [2, 1]}, [2, 4, 5, 7]),
    ([1, 2, 3, 3, 3], [2, 1, 2, 2, 2], None, {"strides": [2, 1, 1]}, [1, 1, 6, 4, 4]),
    (["n", 3, 4], [3, 5, 3], None, {}, ["n", 5, 6]),
    (["n", 3, "l"], [3, 5, 3], None, {"pads": [1, 1]}, ["n", 5, "l"]),
    ([1, 3, "h", "w"], [3, 5, 1, 2], None, {"pads": [0, 0, 0, 1]}, [1, 5, "h", "w"]),
    ([1, 3, "l"], [3, 5, 2], None, {"pads": [1, 2], "dilations": [2], "output_padding": [1]},
     [1, 5, "l"]),
    ([1, "c", 4], ["c", "m", 3], ["m"], {}, [1, "m", 6]),
])
def test_conv_transpose_shapes(x, w, bias, attrs, want):
    ops = [t(x), t(w)] + ([t(bias)] if bias is not None else [])
    assert infer("conv_transpose", *ops, **attrs) == t(want)


@pytest.mark.parametrize("ops, attrs, match", [
    ([t([1, 3, 4]), t([2, 5, 3])], {}, r"input channels .*got 3 and 2"),
    ([t([1, 3, 4]), t([3, 5, 3])], {"groups": 2}, r"groups=2 must divide the input channels"),
    ([t([1, 3, 4]), t([3, 5, 3])], {"output_padding": [1]},
     r"output_padding must be smaller than the stride or the dilation"),
    ([t([1, 3, 4]), t([3, 5, 3])], {"output_padding": [0, 0]}, r"'output_padding' must have 1"),
    ([t([1, 3, 4]), t([3, 5, 3])], {"pads": [0, 0, 0]}, r"'pads' must have 2 values"),
    ([t([1, 3, 2]), t([3, 5, 2])], {"pads": [2, 1]}, r"size 2 gives an empty output"),
    ([t([1, 3, "l"]), t([3, 5, 3])], {}, r"symbolic \(\?l\).*needs a static spatial size"),
    ([t([1, 3, "l"]), t([3, 5, 3])], {"strides": [2], "pads": [1, 1]}, r"static spatial"),
    ([t([1, 3, 4]), t([3, 5, 3]), t([4])], {}, r"output channels .*got 5 and 4"),
    ([t([1, 4, 4]), t([4, "m", 3])], {"groups": 2}, r"needs a static weight dim 1"),
    ([t([1, 3, 4], "i64"), t([3, 5, 3], "i64")], {}, r"must be float, got i64"),
    ([t([1, 3]), t([3, 5])], {}, r"1 to 3 spatial dims"),
])
def test_conv_transpose_errors(ops, attrs, match):
    with pytest.raises(TypeInferenceError, match=match):
        infer("conv_transpose", *ops, **attrs)


@pytest.mark.parametrize("d, groups, strides, pads, dilations, output_padding, with_bias", [
    (1, 1, [1], [], [], [], False),
    (1, 2, [2], [1, 1], [1], [1], True),
    (2, 1, [2, 3], [1, 0, 1, 0], [1, 2], [1, 0], True),
    (2, 2, [1, 1], [0, 1, 2, 0], [2, 1], [1, 0], False),      # asymmetric pads
    (3, 1, [2, 1, 2], [0, 1, 0, 0, 1, 0], [1, 1, 1], [1, 0, 0], True),
])
@pytest.mark.parametrize("dtype", FLOATS)
def test_conv_transpose_vs_torch(d, groups, strides, pads, dilations, output_padding, with_bias,
                                 dtype):
    rng = np.random.default_rng(d * 10 + groups)
    c, mg = 2 * groups, 3
    x = array(rng, (2, c) + (4, 3, 3)[:d], dtype)
    w = array(rng, (c, mg) + (3, 2, 2)[:d], dtype)
    b = array(rng, (mg * groups,), dtype) if with_bias else None
    attrs: dict[str, Any] = {"groups": groups}
    for key, v in (("strides", strides), ("pads", pads), ("dilations", dilations),
                   ("output_padding", output_padding)):
        if v:
            attrs[key] = v
    (got,) = run_op("conv_transpose", x, w, *([b] if with_bias else []), **attrs)
    # torch pads symmetrically only: compute the uncropped output, then crop the ONNX pads
    full = CONV_T[d](to_torch(x), to_torch(w), to_torch(b), stride=strides or 1,
                     output_padding=output_padding or 0, groups=groups,
                     dilation=dilations or 1)
    if pads:
        crop = tuple(slice(pads[ax], full.shape[2 + ax] - pads[d + ax]) for ax in range(d))
        full = full[(slice(None), slice(None)) + crop]
    assert_matches(got, full, dtype)


# --- max_pool, avg_pool ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["max_pool", "avg_pool"])
@pytest.mark.parametrize("x, attrs, want", [
    ([1, 3, 8], {"kernel": [2]}, [1, 3, 7]),
    ([1, 3, 8, 8], {"kernel": [2, 2], "strides": [2, 2]}, [1, 3, 4, 4]),
    ([1, 3, 7, 7], {"kernel": [2, 2], "strides": [2, 2]}, [1, 3, 3, 3]),
    ([1, 3, 7, 7], {"kernel": [2, 2], "strides": [2, 2], "ceil_mode": True}, [1, 3, 4, 4]),
    # ceil_mode: a last window that would start in the right padding is dropped
    ([1, 1, 4], {"kernel": [2], "strides": [2], "pads": [1, 1], "ceil_mode": True},
     [1, 1, 3]),
    ([2, 3, 5, 6, 7], {"kernel": [3, 1, 2], "pads": [1, 0, 1, 1, 0, 0]}, [2, 3, 5, 6, 7]),
    (["n", "c", 8, 8], {"kernel": [3, 3], "strides": [2, 2]}, ["n", "c", 3, 3]),
    ([1, 3, "h", "w"], {"kernel": [3, 3], "pads": [1, 1, 1, 1]}, [1, 3, "h", "w"]),
    ([1, 3, "h", "w"], {"kernel": [1, 2], "pads": [0, 0, 0, 1], "ceil_mode": True},
     [1, 3, "h", "w"]),
])
def test_pool_shapes(name, x, attrs, want):
    assert infer(name, t(x), **attrs) == t(want)


def test_max_pool_dilation_and_dtypes():
    assert infer("max_pool", t([1, 2, 9]), kernel=[3], dilations=[3]) == t([1, 2, 3])
    assert infer("max_pool", t(["n", 2, "l"]), kernel=[3], dilations=[2], pads=[2, 2]) == \
        t(["n", 2, "l"])
    for d in ("i8", "u8", "i32", "i64", "f16", "bf16", "f64"):
        assert infer("max_pool", t([1, 2, 4], d), kernel=[2]) == t([1, 2, 3], d)


@pytest.mark.parametrize("name", ["max_pool", "avg_pool"])
@pytest.mark.parametrize("x, attrs, match", [
    ([1, 3, 8], {}, r"needs attribute 'kernel'"),
    ([1, 3, 8], {"kernel": []}, r"'kernel' must have 1 values, got \[\]"),
    ([1, 3, 8, 8], {"kernel": [2]}, r"'kernel' must have 2 values"),
    ([1, 3, 8], {"kernel": [0]}, r"'kernel' values must be >= 1"),
    ([1, 3, 8, 8], {"kernel": [2, 2], "pads": [1, 1]}, r"'pads' must have 4 values"),
    ([1, 3, 8], {"kernel": [2], "strides": [0]}, r"'strides' values must be >= 1"),
    ([1, 3, 8], {"kernel": [2], "pads": [2, 0]}, r"smaller than the window \(2\)"),
    ([1, 3, 2], {"kernel": [4], "pads": [1, 0]}, r"size 2 gives an empty output"),
    ([1, 3, "h"], {"kernel": [2], "strides": [2]}, r"symbolic \(\?h\).*static spatial size"),
    ([3, 8], {"kernel": [2]}, r"\[N, C, \*spatial\]"),
])
def test_pool_errors(name, x, attrs, match):
    with pytest.raises(TypeInferenceError, match=match):
        infer(name, t(x), **attrs)


def test_pool_dtype_errors():
    with pytest.raises(TypeInferenceError, match=r"avg_pool operand must be float, got i32"):
        infer("avg_pool", t([1, 2, 4], "i32"), kernel=[2])
    with pytest.raises(TypeInferenceError, match=r"max_pool operand must be .*got bool"):
        infer("max_pool", t([1, 2, 4], "bool"), kernel=[2])
    with pytest.raises(TypeInferenceError, match=r"avg_pool has no attribute dilations"):
        infer("avg_pool", t([1, 2, 4]), kernel=[2], dilations=[1])


@pytest.mark.parametrize("d, kernel, strides, pads, dilations, ceil_mode", [
    (1, [3], [1], [1, 1], [1], False),
    (1, [2], [2], [1, 1], [2], True),
    (2, [3, 2], [2, 1], [1, 0, 1, 0], [1, 1], True),
    (2, [2, 2], [], [], [2, 1], False),
    (3, [2, 3, 2], [2, 1, 2], [0, 1, 1, 0, 1, 1], [1, 1, 1], True),
])
@pytest.mark.parametrize("dtype", FLOATS + [np.int8, np.int64])
def test_max_pool_vs_torch(d, kernel, strides, pads, dilations, ceil_mode, dtype):
    rng = np.random.default_rng(d * 7 + ceil_mode)
    x = array(rng, (2, 3) + (7, 6, 5)[:d], dtype)
    attrs: dict[str, Any] = {"kernel": kernel, "ceil_mode": ceil_mode}
    for key, v in (("strides", strides), ("pads", pads), ("dilations", dilations)):
        if v:
            attrs[key] = v
    (got,) = run_op("max_pool", x, **attrs)
    # torch's default stride is the kernel, the op's is 1; torch has no integer max_pool on CPU
    xt = to_torch(x.astype(np.float64) if x.dtype.kind in "iu" else x)
    want = MAX_POOL[d](xt, kernel, stride=strides or 1, padding=pads[:d] or 0,
                       dilation=dilations or 1, ceil_mode=ceil_mode)
    assert_matches(got, want, dtype)


def test_max_pool_asymmetric_pads():
    rng = np.random.default_rng(11)
    x = array(rng, (1, 2, 6, 5), np.float32)
    (got,) = run_op("max_pool", x, kernel=[3, 2], strides=[2, 1], pads=[0, 1, 2, 0])
    xt = F.pad(to_torch(x), torch_pad([0, 1, 2, 0], 2), value=float("-inf"))
    assert_matches(got, F.max_pool2d(xt, [3, 2], stride=[2, 1]), np.float32)


@pytest.mark.parametrize("d, kernel, strides, pads, ceil_mode, count_include_pad", [
    (1, [3], [1], [1, 1], False, False),
    (1, [3], [2], [1, 1], True, True),
    (2, [3, 2], [2, 1], [1, 1, 1, 1], True, False),
    (2, [2, 2], [1, 1], [], False, True),
    (3, [2, 3, 2], [2, 1, 2], [1, 1, 0, 1, 1, 0], True, True),
])
@pytest.mark.parametrize("dtype", FLOATS)
def test_avg_pool_vs_torch(d, kernel, strides, pads, ceil_mode, count_include_pad, dtype):
    rng = np.random.default_rng(d * 3 + ceil_mode)
    x = array(rng, (2, 3) + (7, 6, 5)[:d], dtype)
    attrs: dict[str, Any] = {"kernel": kernel, "strides": strides, "ceil_mode": ceil_mode,
                             "count_include_pad": count_include_pad}
    if pads:
        attrs["pads"] = pads
    (got,) = run_op("avg_pool", x, **attrs)
    want = AVG_POOL[d](to_torch(x), kernel, stride=strides, padding=pads[:d] or 0,
                       ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    assert_matches(got, want, dtype)


# --- global pools ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["global_avg_pool", "global_max_pool"])
@pytest.mark.parametrize("x, want", [
    ([2, 3, 5], [2, 3, 1]),
    ([2, 3, 5, 6], [2, 3, 1, 1]),
    (["n", 3, "h", "w", 4], ["n", 3, 1, 1, 1]),
    ([1, 1, 2, 2, 2, 2], [1, 1, 1, 1, 1, 1]),     # any number of spatial dims
])
def test_global_pool_shapes(name, x, want):
    assert infer(name, t(x)) == t(want)


def test_global_pool_errors():
    with pytest.raises(TypeInferenceError, match=r"global_avg_pool input x must be"):
        infer("global_avg_pool", t([2, 3]))
    with pytest.raises(TypeInferenceError, match=r"global_avg_pool operand must be float"):
        infer("global_avg_pool", t([2, 3, 4], "i32"))
    with pytest.raises(TypeInferenceError, match=r"global_max_pool operand must be .*got bool"):
        infer("global_max_pool", t([2, 3, 4], "bool"))
    assert infer("global_max_pool", t([2, 3, 4], "u8")) == t([2, 3, 1], "u8")


@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 3, 4, 5), (1, 2, 3, 4, 5)])
@pytest.mark.parametrize("dtype", FLOATS)
def test_global_pools_vs_torch(shape, dtype):
    rng = np.random.default_rng(len(shape))
    x = array(rng, shape, dtype)
    d = len(shape) - 2
    avg = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[d]
    mx = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}[d]
    assert_matches(run_op("global_avg_pool", x)[0], avg(to_torch(x), 1), dtype)
    assert_matches(run_op("global_max_pool", x)[0], mx(to_torch(x), 1), dtype)


def test_global_max_pool_int():
    x = array(np.random.default_rng(5), (2, 3, 4, 5), np.int16)
    (got,) = run_op("global_max_pool", x)
    np.testing.assert_array_equal(got, x.max(axis=(2, 3), keepdims=True))


# --- resize ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("x, attrs, want", [
    ([1, 3, 4, 4], {"sizes": [1, 3, 8, 8]}, [1, 3, 8, 8]),
    ([5], {"sizes": [2], "mode": "linear"}, [2]),
    ([2, 3, 4], {"sizes": [4, 3, 1], "mode": "cubic"}, [4, 3, 1]),
    (["n", 3, 4, 4], {"sizes": ["n", 3, 7, 9]}, ["n", 3, 7, 9]),
    (["n", 3, "h", 4], {"sizes": [2, 3, 6, 6]}, [2, 3, 6, 6]),
])
def test_resize_shapes(x, attrs, want):
    assert infer("resize", t(x), **attrs) == t(want)


def test_resize_dtypes():
    assert infer("resize", t([1, 4], "u8"), sizes=[1, 8]) == t([1, 8], "u8")
    assert infer("resize", t([1, 4], "bf16"), sizes=[1, 8], mode="cubic") == t([1, 8], "bf16")


@pytest.mark.parametrize("x, attrs, match", [
    (t([1, 3, 4, 4]), {}, r"needs attribute 'sizes'"),
    (t([1, 3, 4, 4]), {"sizes": [8, 8]}, r"full output shape \(4 dims"),
    (t([1, 3, 4, 4]), {"sizes": [1, 3, 0, 8]}, r"sizes must be >= 1, got 0 for dim 2"),
    (t([1, 3, 4, 4]), {"sizes": [1, 3, -1, 8]}, r"sizes must be >= 1"),
    (t(["n", 3, 4]), {"sizes": ["m", 3, 8]}, r"sizes\[0\] is \?m but the input dim is \?n"),
    (t([2, 3, 4]), {"sizes": ["m", 3, 8]}, r"input dim is 2"),
    (t([1, 4], "i32"), {"sizes": [1, 8], "mode": "linear"}, r"resize operand must be float"),
    (t([1, 4], "bool"), {"sizes": [1, 8]}, r"resize operand must be .*got bool"),
    (t([]), {"sizes": []}, r"rank >= 1"),
    (t([1, 4]), {"sizes": [1, 8], "mode": "area"}, r"'mode' is 'area'; expected one of"),
    (t([1, 4]), {"sizes": [1, 8], "coordinate_transformation_mode": "tf_crop_and_resize"},
     r"coordinate_transformation_mode"),
    (t([1, 4]), {"sizes": [1, 8], "nearest_mode": "round"}, r"nearest_mode"),
])
def test_resize_errors(x, attrs, match):
    with pytest.raises(TypeInferenceError, match=match):
        infer("resize", x, **attrs)


@pytest.mark.parametrize("shape, out, torch_mode, attrs", [
    ((1, 2, 5), (7,), "nearest",
     {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}),
    ((1, 2, 5, 4), (3, 9), "nearest",
     {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}),
    ((1, 2, 5, 4), (8, 3), "nearest-exact", {"nearest_mode": "round_prefer_ceil"}),
    ((2, 2, 5), (9,), "linear", {"mode": "linear"}),
    ((1, 2, 5, 4), (3, 7), "bilinear", {"mode": "linear"}),
    ((1, 2, 3, 4, 2), (5, 2, 3), "trilinear", {"mode": "linear"}),
    ((1, 2, 5, 4), (8, 6), "bilinear",
     {"mode": "linear", "coordinate_transformation_mode": "align_corners"}),
    ((1, 2, 5, 4), (9, 3), "bicubic", {"mode": "cubic"}),
    ((1, 2, 5, 4), (9, 3), "bicubic",
     {"mode": "cubic", "coordinate_transformation_mode": "align_corners"}),
])
@pytest.mark.parametrize("dtype", FLOATS)
def test_resize_vs_torch(shape, out, torch_mode, attrs, dtype):
    rng = np.random.default_rng(len(shape) + sum(out))
    x = array(rng, shape, dtype)
    (got,) = run_op("resize", x, sizes=list(shape[:2] + out), **attrs)
    kw = {}
    if attrs.get("mode", "nearest") != "nearest":
        kw["align_corners"] = attrs.get("coordinate_transformation_mode") == "align_corners"
    want = F.interpolate(to_torch(x), size=out, mode=torch_mode, **kw)
    assert_matches(got, want, dtype)


def test_resize_nearest_int_and_identity_axes():
    x = array(np.random.default_rng(2), (2, 3, 4), np.int32)
    (got,) = run_op("resize", x, sizes=[2, 3, 8])
    np.testing.assert_array_equal(got, np.repeat(x, 2, axis=2))


# --- symbolic dims end to end ---------------------------------------------------------------------


def test_symbolic_network_runs():
    """conv -> max_pool -> resize -> global_avg_pool with symbolic N and H, W kept symbolic where
    the ops preserve them; the interpreter binds the symbols from the input."""
    rng = np.random.default_rng(0)
    m = Module("net")
    f = FunctionBuilder(m, "main")
    x = f.arg("x", t(["n", 3, "h", "w"]))
    w = f.constant(array(rng, (4, 3, 3, 3), np.float32), name="w")
    b = f.constant(array(rng, (4,), np.float32), name="b")
    y = f.conv(x, w, b, pads=[1, 1, 1, 1])
    assert y.type == t(["n", 4, "h", "w"])
    y = f.max_pool(y, kernel=[3, 3], pads=[1, 1, 1, 1])
    y = f.resize(y, sizes=["n", 4, "h", 10], mode="linear")
    assert y.type == t(["n", 4, "h", 10])
    f.ret(f.global_avg_pool(y))
    xs = array(rng, (2, 3, 5, 6), np.float32)
    (got,) = interpret(m, xs)
    ref = F.conv2d(to_torch(xs), to_torch(m.constants["w"]), to_torch(m.constants["b"]),
                   padding=1)
    ref = F.max_pool2d(ref, 3, stride=1, padding=1)
    ref = F.interpolate(ref, size=(5, 10), mode="bilinear", align_corners=False)
    assert got.shape == (2, 4, 1, 1)
    np.testing.assert_allclose(got, ref.mean(dim=(2, 3), keepdim=True).numpy(), rtol=1e-5,
                               atol=1e-6)


# --- samples --------------------------------------------------------------------------------------


def test_samples_cover_the_ops():
    assert set(SAMPLES) == OPS_TESTED


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_run(name):
    check_samples(SAMPLES, name)
