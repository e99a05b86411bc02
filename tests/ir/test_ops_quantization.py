"""Tests of the quantization ops (compiler/ir/ops/quantization.py): type rules (per-tensor and
per-axis parameters, negative axes, symbolic dims, dtype rules) and numerics against PyTorch's
quantized tensors, exact NumPy int64 arithmetic and torch float64 convolutions, run through the
builder and the reference interpreter. (ONNX's own reference implementation is used when the
`onnx` package is installed.)"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import compiler.ir.ops.quantization as quantization_ops
from compiler.ir import BuildError, FunctionBuilder, Module, TypeInferenceError, get_op, interpret
from compiler.ir.types import TensorType, tensor
from tests.ir.opcheck import BF16, check_samples, run_op
from tests.ir.opcheck import infer as infer_all
from tests.ir.samples.quantization import SAMPLES

import onnx.reference  # noqa: F401  (onnx is a dependency: its reference is the oracle)

torch.set_num_threads(1)
# torch's quantized tensor constructors are deprecated but remain the best independent oracle
pytestmark = pytest.mark.filterwarnings("ignore:.*quantized tensor creation functions:UserWarning")

I8, U8, I16, I32 = np.int8, np.uint8, np.int16, np.int32
TORCH_QDTYPE = {np.dtype(U8): torch.quint8, np.dtype(I8): torch.qint8, np.dtype(I32): torch.qint32}
CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}

OPS_TESTED = {"quantize", "dequantize", "dynamic_quantize", "matmul_integer", "conv_integer",
              "qlinear_matmul", "qlinear_conv", "requantize"}


def infer(op: str, /, *types: TensorType, **attrs: Any) -> "TensorType | list[TensorType]":
    """The result type (or list of types) of `op` for these operand types and attributes."""
    res = infer_all(op, *types, **attrs)
    return res[0] if len(res) == 1 else res


def t(shape: list, dtype: str) -> TensorType:
    return tensor(shape, dtype)


def ints(rng: np.random.Generator, dtype: Any, shape: tuple[int, ...],
         lo: Optional[int] = None, hi: Optional[int] = None) -> np.ndarray:
    info = np.iinfo(dtype)
    lo = info.min if lo is None else lo
    hi = info.max if hi is None else hi
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


def saturate(v: np.ndarray, dtype: Any) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(v, info.min, info.max).astype(dtype)


def shaped(p: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A per-axis parameter reshaped to broadcast along `axis` of a rank-ndim array."""
    shape = [1] * ndim
    shape[axis] = p.size
    return p.reshape(shape)


# ---------------------------------------------------------------------------------------------
# coverage and traits


def test_every_declared_op_is_tested_and_sampled() -> None:
    src = Path(quantization_ops.__file__).read_text()
    declared = set(re.findall(r'^def_op\("(\w+)"', src, re.M))
    assert declared == OPS_TESTED
    assert set(SAMPLES) == declared
    for name in declared:
        assert get_op(name).doc


def test_traits() -> None:
    contractions = {"matmul_integer", "conv_integer", "qlinear_matmul", "qlinear_conv"}
    for name in OPS_TESTED:
        op = get_op(name)
        assert op.has("pure") and op.has("quantized"), name
        assert op.has("contraction") == (name in contractions), name
        assert not op.has("elementwise"), name


# ---------------------------------------------------------------------------------------------
# type rules


@pytest.mark.parametrize("operands, attrs, expected", [
    ([t([2, 3, 4], "f32"), t([], "f32")], {}, t([2, 3, 4], "u8")),
    ([t([], "f32"), t([1], "f32")], {}, t([], "u8")),
    ([t([2, 3], "f32"), t([1], "f32"), t([1], "i8")], {}, t([2, 3], "i8")),
    ([t([2, 3], "f32"), t([], "f32"), t([], "i16")], {"dtype": "i16"}, t([2, 3], "i16")),
    ([t([2, 3], "f32"), t([], "f32")], {"dtype": "i32"}, t([2, 3], "i32")),
    ([t([2, 3, 4], "f16"), t([3], "f16"), t([3], "u8")], {}, t([2, 3, 4], "u8")),
    ([t([2, 3, 4], "bf16"), t([4], "bf16"), t([4], "i8")], {"axis": -1}, t([2, 3, 4], "i8")),
    ([t([2, 3, 4], "f32"), t([2], "f32")], {"axis": -3}, t([2, 3, 4], "u8")),
    ([t(["b", 3], "f32"), t([3], "f32"), t([3], "i8")], {"axis": -1}, t(["b", 3], "i8")),
    ([t(["b", "c", 5], "f32"), t(["c"], "f32")], {}, t(["b", "c", 5], "u8")),
    # a symbol against a static size: equal at run time (as in broadcasting)
    ([t(["b", 3], "f32"), t([7], "f32")], {"axis": 0}, t(["b", 3], "u8")),
    # per-tensor ignores the axis
    ([t([4], "f32"), t([], "f32")], {"axis": 5}, t([4], "u8")),
], ids=str)
def test_quantize_types(operands: list, attrs: dict, expected: TensorType) -> None:
    assert infer("quantize", *operands, **attrs) == expected


@pytest.mark.parametrize("operands, attrs, match", [
    ([t([2, 3], "i32"), t([], "f32")], {}, r"quantize x must be float, got i32"),
    ([t([2, 3], "f32"), t([], "f16")], {}, r"quantize scale must have x's dtype f32, got f16"),
    ([t([2, 3], "f32"), t([2], "f32")], {},
     r"scale has 2 elements but x\[2,3\] has 3 along axis 1"),
    ([t([2, 3], "f32"), t([3], "f32")], {"axis": -2}, r"has 2 along axis -2"),
    ([t([2, 3], "f32"), t([3], "f32")], {"axis": 2}, r"quantize axis 2 is out of range"),
    ([t([2, 3], "f32"), t([2, 3], "f32")], {}, r"scale must be a scalar or 1-D"),
    ([t([], "f32"), t([3], "f32")], {}, r"per-axis, but x is a scalar"),
    ([t(["b", "c"], "f32"), t(["d"], "f32")], {}, r"scale has \?d elements .* \?c along axis 1"),
    ([t([2, 3], "f32"), t([], "f32"), t([], "i64")], {}, r"zero_point must be i8/u8/i16/i32"),
    ([t([2, 3], "f32"), t([], "f32"), t([], "f32")], {}, r"zero_point must be i8/u8/i16/i32"),
    ([t([2, 3], "f32"), t([3], "f32"), t([], "i8")], {}, r"zero_point shape \[\] differs"),
    ([t([2, 3], "f32"), t([], "f32"), t([], "i8")], {"dtype": "u8"},
     r"attribute 'dtype' is u8 but zero_point is i8"),
    ([t([2, 3], "f32"), t([], "f32")], {"dtype": "f16"}, r"attribute 'dtype' must be .*got f16"),
], ids=str)
def test_quantize_type_errors(operands: list, attrs: dict, match: str) -> None:
    with pytest.raises(TypeInferenceError, match=match):
        infer("quantize", *operands, **attrs)


@pytest.mark.parametrize("operands, attrs, expected", [
    ([t([2, 3], "i8"), t([], "f32")], {}, t([2, 3], "f32")),
    ([t([2, 3], "u8"), t([1], "f16"), t([1], "u8")], {}, t([2, 3], "f16")),
    ([t([2, 3, 4], "i16"), t([3], "bf16"), t([3], "i16")], {"axis": -2}, t([2, 3, 4], "bf16")),
    ([t([7], "i32"), t([], "f32")], {}, t([7], "f32")),
    ([t(["n", 8], "i8"), t([8], "f32"), t([8], "i8")], {"axis": -1}, t(["n", 8], "f32")),
    ([t([], "u8"), t([], "f32"), t([], "u8")], {}, t([], "f32")),
], ids=str)
def test_dequantize_types(operands: list, attrs: dict, expected: TensorType) -> None:
    assert infer("dequantize", *operands, **attrs) == expected


@pytest.mark.parametrize("operands, attrs, match", [
    ([t([2, 3], "f32"), t([], "f32")], {}, r"dequantize x must be i8/u8/i16/i32, got f32"),
    ([t([2, 3], "i64"), t([], "f32")], {}, r"dequantize x must be i8/u8/i16/i32, got i64"),
    ([t([2, 3], "i8"), t([], "i32")], {}, r"dequantize scale must be float, got i32"),
    ([t([2, 3], "i8"), t([], "f32"), t([], "u8")], {}, r"zero_point must have x's dtype i8"),
    ([t([2, 3], "i8"), t([2], "f32")], {}, r"scale has 2 elements .* 3 along axis 1"),
    ([t([2, 3], "i8"), t([3], "f32"), t([2], "i8")], {}, r"zero_point shape \[2\] differs"),
], ids=str)
def test_dequantize_type_errors(operands: list, attrs: dict, match: str) -> None:
    with pytest.raises(TypeInferenceError, match=match):
        infer("dequantize", *operands, **attrs)


def test_dynamic_quantize_types() -> None:
    assert infer("dynamic_quantize", t(["b", 3, 4], "f32")) == [
        t(["b", 3, 4], "u8"), t([], "f32"), t([], "u8")]
    assert infer("dynamic_quantize", t([], "f32")) == [t([], "u8"), t([], "f32"), t([], "u8")]
    for bad in ("f16", "i8"):
        with pytest.raises(TypeInferenceError, match=rf"dynamic_quantize x must be f32, got {bad}"):
            infer("dynamic_quantize", t([2], bad))


@pytest.mark.parametrize("operands, expected", [
    ([t([3, 4], "i8"), t([4, 5], "u8")], [3, 5]),
    ([t([2, 1, 3, 4], "u8"), t([5, 4, 6], "u8")], [2, 5, 3, 6]),
    ([t([4], "i8"), t([4, 5], "i8")], [5]),
    ([t([2, 3, 4], "i8"), t([4], "i8")], [2, 3]),
    ([t([4], "u8"), t([4], "i8")], []),
    ([t(["b", "s", 4], "u8"), t([4, 8], "i8")], ["b", "s", 8]),
    ([t(["b", 3, "k"], "u8"), t(["b", "k", 2], "i8")], ["b", 3, 2]),
    ([t([3, 4], "u8"), t([4, 5], "i8"), t([3], "u8"), t([5], "i8")], [3, 5]),
    ([t([2, 3, 4], "u8"), t([4, 5], "i8"), t([2, 3, 1], "u8"), t([1, 5], "i8")], [2, 3, 5]),
    ([t([2, 3, 4], "u8"), t([2, 4, 5], "i8"), t([1], "u8"), t([2, 1, 5], "i8")], [2, 3, 5]),
    ([t(["m", 4], "u8"), t([4, 5], "i8"), t(["m"], "u8")], ["m", 5]),
], ids=str)
def test_matmul_integer_types(operands: list, expected: list) -> None:
    assert infer("matmul_integer", *operands) == t(expected, "i32")


@pytest.mark.parametrize("operands, match", [
    ([t([3, 4], "f32"), t([4, 5], "u8")], r"matmul_integer a must be i8/u8, got f32"),
    ([t([3, 4], "u8"), t([4, 5], "i16")], r"matmul_integer b must be i8/u8, got i16"),
    ([t([3, 4], "u8"), t([5, 5], "u8")], r"contraction dims differ: a\[3,4\] has K = 4, b\[5,5\]"),
    ([t([3, "k"], "u8"), t(["j", 5], "u8")], r"K = \?k, b\[\?j,5\] has K = \?j"),
    ([t([2, 3, 4], "u8"), t([3, 4, 5], "u8")], r"matmul_integer batch dims: shapes"),
    ([t([], "u8"), t([4, 5], "u8")], r"operands must have rank >= 1"),
    ([t([3, 4], "u8"), t([4, 5], "u8"), t([], "i8")], r"a_zero_point must have a's dtype u8"),
    ([t([3, 4], "u8"), t([4, 5], "i8"), t([4], "u8")],
     r"a_zero_point of shape \[4\] is neither per-tensor nor per-row for a\[3,4\]; "
     r"expected \[\] or \[1\], \[3\] or \[3,1\]"),
    ([t([3, 4], "u8"), t([4, 5], "i8"), t([], "u8"), t([4], "i8")],
     r"b_zero_point of shape \[4\] is neither per-tensor nor per-column .* \[5\] or \[1,5\]"),
    ([t([4], "u8"), t([4, 5], "i8"), t([3], "u8")], r"per-row needs a of rank >= 2"),
    ([t([2, 3, 4], "u8"), t([4, 5], "i8"), t([2, 3, 4], "u8")], r"neither per-tensor nor per-row"),
], ids=str)
def test_matmul_integer_type_errors(operands: list, match: str) -> None:
    with pytest.raises(TypeInferenceError, match=match):
        infer("matmul_integer", *operands)


@pytest.mark.parametrize("operands, attrs, expected", [
    ([t([1, 4, 8, 8], "u8"), t([6, 2, 3, 3], "i8")],
     {"groups": 2, "pads": [1, 1, 1, 1], "strides": [2, 2]}, [1, 6, 4, 4]),
    ([t([2, 3, 10], "i8"), t([5, 3, 3], "i8"), t([], "i8"), t([5], "i8")],
     {"dilations": [2]}, [2, 5, 6]),
    ([t([2, 3, 7, 6], "u8"), t([4, 3, 2, 3], "u8")],
     {"strides": [2, 1], "pads": [0, 1, 1, 0]}, [2, 4, 4, 5]),
    ([t([1, 2, 3, 4, 5], "u8"), t([2, 2, 1, 2, 3], "i8")], {}, [1, 2, 3, 3, 3]),
    ([t(["n", 4, 8, 8], "u8"), t([6, 4, 3, 3], "i8")], {"pads": [1, 1, 1, 1]}, ["n", 6, 8, 8]),
    ([t(["n", "c", "h", "w"], "u8"), t([6, "c", 1, 1], "i8")], {}, ["n", 6, "h", "w"]),
    ([t([1, 2, "h", "w"], "u8"), t([3, 2, 3, 3], "i8")],
     {"pads": [1, 2, 1, 2], "dilations": [1, 2]}, [1, 3, "h", "w"]),
    ([t([1, "c", 5], "u8"), t(["m", 3, 1], "i8"), t([1], "u8"), t(["m"], "i8")], {}, [1, "m", 5]),
], ids=str)
def test_conv_integer_types(operands: list, attrs: dict, expected: list) -> None:
    assert infer("conv_integer", *operands, **attrs) == t(expected, "i32")


@pytest.mark.parametrize("operands, attrs, match", [
    ([t([1, 4, 8], "f32"), t([2, 4, 3], "i8")], {}, r"conv_integer x must be i8/u8, got f32"),
    ([t([4, 8], "u8"), t([2, 4], "i8")], {}, r"x must be \[N, C, \*spatial\] \(rank >= 3\)"),
    ([t([1, 4, 8], "u8"), t([2, 4, 3, 3], "i8")], {}, r"w must have x's rank 3"),
    ([t([1, 4, 8], "u8"), t([2, 3, 3], "i8")], {}, r"x has 4 channels but w\[2,3,3\]"),
    ([t([1, 4, 8], "u8"), t([3, 2, 3], "i8")], {"groups": 2}, r"groups=2 must divide the output"),
    ([t([1, 4, 8], "u8"), t([2, 4, 3], "i8")], {"pads": [1]}, r"'pads' must be 2 ints >= 0"),
    ([t([1, 4, 8], "u8"), t([2, 4, 3], "i8")], {"strides": [0]}, r"'strides' must be 1 ints >= 1"),
    ([t([1, 4, 8], "u8"), t([2, 4, 3], "i8")], {"dilations": [1, 1]}, r"'dilations' must be 1"),
    ([t([1, 4, 8], "u8"), t([2, 4, 3], "i8")], {"groups": 0}, r"'groups' must be >= 1, got 0"),
    ([t([1, 4, 2], "u8"), t([2, 4, 3], "i8")], {}, r"spatial dim 0: .*empty"),
    ([t([1, 4, "w"], "u8"), t([2, 4, 3], "i8")], {}, r"needs a static spatial dim 0"),
    ([t([1, 4, "w"], "u8"), t([2, 4, 1], "i8")], {"strides": [2]}, r"needs a static spatial"),
    ([t([1, 4, "w"], "u8"), t([2, 4, 3], "i8")], {"pads": [1, 0]}, r"formula of \?w \(kernel 3"),
    ([t([1, 4, 8], "u8"), t([2, 4, "k"], "i8")], {}, r"needs static kernel dims"),
    ([t([1, "c", 8], "u8"), t([2, "d", 3], "i8")], {}, r"x has \?c channels but w"),
    ([t([1, 4, 8], "u8"), t([2, "d", 3], "i8")], {"groups": 2}, r"needs a static w dim 1"),
    ([t([1, 4, 8], "u8"), t([2, 4, 3], "i8"), t([4], "u8")], {},
     r"x_zero_point must be a scalar \(shape \[\] or \[1\]\), got shape \[4\]"),
    ([t([1, 4, 8], "u8"), t([2, 4, 3], "i8"), t([], "u8"), t([3], "i8")], {},
     r"w_zero_point must be a scalar or \[2\] \(one per output channel\), got shape \[3\]"),
    ([t([1, 4, 8], "u8"), t([2, 4, 3], "i8"), t([], "i8")], {}, r"x_zero_point must have x's"),
], ids=str)
def test_conv_integer_type_errors(operands: list, attrs: dict, match: str) -> None:
    with pytest.raises(TypeInferenceError, match=match):
        infer("conv_integer", *operands, **attrs)


def _qmm(a: list, b: list, a_p: list = [], b_p: list = [], y_p: list = [], sdt: str = "f32",
         adt: str = "u8", bdt: str = "i8", ydt: str = "u8") -> list[TensorType]:
    return [t(a, adt), t(a_p, sdt), t(a_p, adt), t(b, bdt), t(b_p, sdt), t(b_p, bdt),
            t(y_p, sdt), t(y_p, ydt)]


def test_qlinear_matmul_types() -> None:
    assert infer("qlinear_matmul", *_qmm([3, 4], [4, 5])) == t([3, 5], "u8")
    assert infer("qlinear_matmul", *_qmm([2, 3, 4], [4, 5], [3], [5], [1], ydt="i8",
                                         sdt="f16")) == t([2, 3, 5], "i8")
    assert infer("qlinear_matmul", *_qmm(["b", 3, 4], [4], [1], [], [])) == t(["b", 3], "u8")
    assert infer("qlinear_matmul", *_qmm([2, 3, 4], [2, 4, 5], [2, 3, 1], [2, 1, 5])) == \
        t([2, 3, 5], "u8")


@pytest.mark.parametrize("operands, match", [
    (_qmm([3, 4], [4, 5], ydt="i32"), r"qlinear_matmul y_zero_point must be i8/u8, got i32"),
    (_qmm([3, 4], [4, 5], y_p=[5]), r"y_scale must be a scalar"),
    (_qmm([3, 4], [4, 5], a_p=[4]), r"a_scale of shape \[4\] is neither per-tensor nor per-row"),
    (_qmm([3, 4], [4, 5], b_p=[3]), r"b_scale of shape \[3\] is neither per-tensor nor per-col"),
    (_qmm([3, 4], [5, 6]), r"contraction dims differ"),
    (_qmm([3, 4], [4, 5], adt="i16"), r"qlinear_matmul a must be i8/u8, got i16"),
    (_qmm([3, 4], [4, 5], sdt="i32"), r"qlinear_matmul a_scale must be float, got i32"),
    (_qmm([3, 4], [4, 5])[:4] + [t([], "f16")] + _qmm([3, 4], [4, 5])[5:],
     r"b_scale must have a_scale's dtype f32, got f16"),
    (_qmm([3, 4], [4, 5])[:2] + [t([], "i8")] + _qmm([3, 4], [4, 5])[3:],
     r"a_zero_point must have a's dtype u8, got i8"),
    (_qmm([3, 4], [4, 5])[:2] + [t([3], "u8")] + _qmm([3, 4], [4, 5])[3:],
     r"a_zero_point shape \[3\] differs from the scale's shape \[\]"),
], ids=str)
def test_qlinear_matmul_type_errors(operands: list, match: str) -> None:
    with pytest.raises(TypeInferenceError, match=match):
        infer("qlinear_matmul", *operands)


def _qconv(x: list, w: list, w_p: list = [], bias: Optional[list] = None, bias_dt: str = "i32",
           sdt: str = "f32", xp: list = [], yp: list = []) -> list[TensorType]:
    ops = [t(x, "u8"), t(xp, sdt), t(xp, "u8"), t(w, "i8"), t(w_p, sdt), t(w_p, "i8"),
           t(yp, sdt), t(yp, "i8")]
    return ops + ([t(bias, bias_dt)] if bias is not None else [])


def test_qlinear_conv_types() -> None:
    assert infer("qlinear_conv", *_qconv([1, 4, 8, 8], [6, 4, 3, 3])) == t([1, 6, 6, 6], "i8")
    assert infer("qlinear_conv", *_qconv(["n", 4, 8, 8], [6, 2, 3, 3], [6], [6], sdt="bf16"),
                 groups=2, pads=[1, 1, 1, 1]) == t(["n", 6, 8, 8], "i8")
    assert infer("qlinear_conv", *_qconv([1, 4, 5], [3, 4, 1], [1], [3], xp=[1], yp=[1])) == \
        t([1, 3, 5], "i8")


@pytest.mark.parametrize("operands, attrs, match", [
    (_qconv([1, 4, 8], [6, 4, 3], bias=[6], bias_dt="i64"), {}, r"bias must be i32, got i64"),
    (_qconv([1, 4, 8], [6, 4, 3], bias=[4]), {}, r"bias must be \[6\] .* got \[4\]"),
    (_qconv([1, 4, 8], [6, 4, 3], w_p=[4]), {}, r"w_scale must be a scalar or \[6\]"),
    (_qconv([1, 4, 8], [6, 4, 3], xp=[4]), {}, r"x_scale must be a scalar"),
    (_qconv([1, 4, 8], [6, 4, 3], yp=[6]), {}, r"y_scale must be a scalar"),
    (_qconv([1, 4, 8], [6, 4, 3]), {"strides": [1, 1]}, r"'strides' must be 1 ints"),
    (_qconv([1, 4, 8], [6, 4, 3])[:6] + [t([], "f16"), t([], "i8")], {},
     r"y_scale must have x_scale's dtype f32, got f16"),
], ids=str)
def test_qlinear_conv_type_errors(operands: list, attrs: dict, match: str) -> None:
    with pytest.raises(TypeInferenceError, match=match):
        infer("qlinear_conv", *operands, **attrs)


@pytest.mark.parametrize("operands, attrs, expected", [
    ([t([2, 3, 4], "i32"), t([], "f32"), t([], "i8")], {}, t([2, 3, 4], "i8")),
    ([t([2, 3, 4], "i32"), t([4], "f32"), t([1], "u8")], {"axis": -1}, t([2, 3, 4], "u8")),
    ([t(["b", 6], "i32"), t([6], "f32"), t([], "u8")], {}, t(["b", 6], "u8")),
    ([t([], "i32"), t([1], "f32"), t([], "i8")], {}, t([], "i8")),
], ids=str)
def test_requantize_types(operands: list, attrs: dict, expected: TensorType) -> None:
    assert infer("requantize", *operands, **attrs) == expected


@pytest.mark.parametrize("operands, attrs, match", [
    ([t([2, 3], "i8"), t([], "f32"), t([], "i8")], {}, r"requantize x must be i32, got i8"),
    ([t([2, 3], "i32"), t([], "f16"), t([], "i8")], {}, r"multiplier must be f32, got f16"),
    ([t([2, 3], "i32"), t([], "f32"), t([], "i32")], {}, r"zero_point must be i8/u8, got i32"),
    ([t([2, 3], "i32"), t([3], "f32"), t([3], "i8")], {}, r"zero_point must be a scalar"),
    ([t([2, 3], "i32"), t([3], "f32"), t([], "i8")], {"axis": 0}, r"multiplier has 3 elements"),
    ([t([2, 3], "i32"), t([3], "f32"), t([], "i8")], {"axis": -3}, r"axis -3 is out of range"),
], ids=str)
def test_requantize_type_errors(operands: list, attrs: dict, match: str) -> None:
    with pytest.raises(TypeInferenceError, match=match):
        infer("requantize", *operands, **attrs)


def test_builder_reports_bad_operands() -> None:
    m = Module("bad")
    f = FunctionBuilder(m, "main")
    x = f.arg("x", t([2, 3], "f32"))
    s = f.arg("s", t([2], "f32"))
    with pytest.raises(BuildError, match=r"quantize\(f32\[2,3\], f32\[2\]\): .*scale has 2"):
        f.quantize(x, s)
    with pytest.raises(BuildError, match=r"quantize has no attribute group"):
        f.quantize(x, s, group=1)
    with pytest.raises(BuildError, match=r"conv_integer takes 2 to 4 operands"):
        f.conv_integer(x)


# ---------------------------------------------------------------------------------------------
# quantize


def test_quantize_rounds_half_to_even() -> None:
    x = np.array([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5, 2.4999, 2.5001], np.float32)
    (y,) = run_op("quantize", x, np.float32(1.0), np.int8(0))
    np.testing.assert_array_equal(y, [0, 2, 2, 4, 0, -2, -2, -4, 2, 3])
    # x / scale = 2.5 and 3.5 exactly (scale a power of two), then the zero point is added
    (y,) = run_op("quantize", np.array([1.25, 1.75], np.float32), np.float32(0.5), np.uint8(10))
    np.testing.assert_array_equal(y, [12, 14])
    q = torch.quantize_per_tensor(torch.from_numpy(x), 1.0, 0, torch.qint8).int_repr().numpy()
    np.testing.assert_array_equal(run_op("quantize", x, np.float32(1.0), np.int8(0))[0], q)


@pytest.mark.parametrize("qdt, zp", [(U8, 7), (I8, -3), (I16, 100), (I32, -5)])
def test_quantize_saturates(qdt: Any, zp: int) -> None:
    info = np.iinfo(qdt)
    x = np.array([-np.inf, -1e30, -3e9, -70000.0, -300.0, 0.0, 300.0, 70000.0, 3e9, 1e30, np.inf],
                 np.float32)
    (y,) = run_op("quantize", x, np.float32(1.0), np.array(zp, qdt))
    expected = np.clip(np.array([-np.inf, -1e30, -3e9, -7e4, -300, 0, 300, 7e4, 3e9, 1e30,
                                 np.inf]) + zp, info.min, info.max)
    assert y.dtype == qdt
    np.testing.assert_array_equal(y, expected.astype(qdt))


def test_quantize_nan_gives_zero_point() -> None:
    (y,) = run_op("quantize", np.array([np.nan, 1.0], np.float32), np.float32(1.0), np.int8(-4))
    np.testing.assert_array_equal(y, [-4, -3])


@pytest.mark.parametrize("qdt", [U8, I8, I32])
@pytest.mark.parametrize("exact", [True, False], ids=["pow2_scale", "random_scale"])
def test_quantize_per_tensor_vs_torch(qdt: Any, exact: bool) -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, 5, 6)) * 40).astype(np.float32)
    scale = np.float32(0.25 if exact else rng.uniform(0.05, 0.6))
    zp = {U8: 128, I8: -7, I32: 1000}[qdt]
    (y,) = run_op("quantize", x, scale, np.array(zp, qdt))
    q = torch.quantize_per_tensor(torch.from_numpy(x), float(scale), zp,
                                  TORCH_QDTYPE[np.dtype(qdt)])
    expected = q.int_repr().numpy()
    assert y.dtype == expected.dtype and y.shape == x.shape
    # the IR divides by the scale (ONNX); torch multiplies by its f32 reciprocal, which can land
    # on the other side of a rounding tie: equal for power-of-two scales, else within one step
    diff = np.abs(y.astype(np.int64) - expected.astype(np.int64))
    assert diff.max() <= (0 if exact else 1)
    assert (diff != 0).mean() < 0.01
    formula = saturate(np.rint(x / scale).astype(np.int64) + zp, qdt)
    np.testing.assert_array_equal(y, formula)


@pytest.mark.parametrize("axis", [0, 1, -1, -3])
def test_quantize_per_axis_vs_torch(axis: int) -> None:
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((3, 4, 5)) * 20).astype(np.float32)
    n = x.shape[axis]
    scale = (2.0 ** rng.integers(-3, 2, size=n)).astype(np.float32)  # exact reciprocals
    zp = rng.integers(-20, 20, size=n).astype(I8)
    (y,) = run_op("quantize", x, scale, zp, axis=axis)
    q = torch.quantize_per_channel(torch.from_numpy(x), torch.from_numpy(scale.astype(np.float64)),
                                   torch.from_numpy(zp.astype(np.int64)), axis % x.ndim,
                                   torch.qint8)
    np.testing.assert_array_equal(y, q.int_repr().numpy())


def test_quantize_without_zero_point() -> None:
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2, 6)) * 50).astype(np.float32)
    scale = np.array([0.5], np.float32)
    (y,) = run_op("quantize", x, scale)
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y, saturate(np.rint(x / 0.5), U8))
    (y,) = run_op("quantize", x, scale, dtype="i16")
    assert y.dtype == np.int16
    np.testing.assert_array_equal(y, np.rint(x / 0.5).astype(I16))


@pytest.mark.parametrize("fdt", [np.float16, BF16])
def test_quantize_low_precision(fdt: Any) -> None:
    """f16/bf16 values and scales are widened exactly to f32 and divided there."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((4, 6)) * 10).astype(fdt)
    scale = rng.uniform(0.05, 0.3, size=6).astype(fdt)
    zp = rng.integers(0, 30, size=6).astype(U8)
    (y,) = run_op("quantize", x, scale, zp, axis=-1)
    expected = np.rint(x.astype(np.float32) / scale.astype(np.float32)) + zp
    np.testing.assert_array_equal(y, saturate(expected, U8))
    q = torch.quantize_per_channel(torch.from_numpy(x.astype(np.float32)),
                                   torch.from_numpy(scale.astype(np.float64)),
                                   torch.from_numpy(zp.astype(np.int64)), 1, torch.quint8)
    assert np.abs(y.astype(int) - q.int_repr().numpy().astype(int)).max() <= 1


# ---------------------------------------------------------------------------------------------
# dequantize


@pytest.mark.parametrize("qdt", [U8, I8, I32])
def test_dequantize_per_tensor_vs_torch(qdt: Any) -> None:
    rng = np.random.default_rng(5)
    x = ints(rng, qdt, (3, 4, 5), -100_000 if qdt == I32 else None, 100_000 if qdt == I32 else None)
    scale, zp = np.float32(rng.uniform(0.01, 0.2)), {U8: 100, I8: -5, I32: 0}[qdt]
    (y,) = run_op("dequantize", x, scale, np.array(zp, qdt))
    q = torch._make_per_tensor_quantized_tensor(torch.from_numpy(x), float(scale), zp)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, q.dequantize().numpy(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("axis", [0, -1, -2])
def test_dequantize_per_axis_vs_torch(axis: int) -> None:
    rng = np.random.default_rng(6)
    x = ints(rng, U8, (4, 3, 5))
    n = x.shape[axis]
    scale = rng.uniform(0.01, 0.2, size=n).astype(np.float32)
    zp = rng.integers(0, 255, size=n).astype(U8)
    (y,) = run_op("dequantize", x, scale, zp, axis=axis)
    q = torch._make_per_channel_quantized_tensor(
        torch.from_numpy(x), torch.from_numpy(scale.astype(np.float64)),
        torch.from_numpy(zp.astype(np.int64)), axis % x.ndim)
    np.testing.assert_allclose(y, q.dequantize().numpy(), rtol=1e-6, atol=0)


def test_dequantize_i32_bias_and_i16() -> None:
    """i32 values beyond f32's 2**24: (x - zero_point) is exact, then rounded once to f32."""
    x = np.array([2**30 + 1, -(2**31), 2**31 - 1, 3], I32)
    zp = np.array(2**30, I32)
    (y,) = run_op("dequantize", x, np.float32(0.5), zp)
    expected = ((x.astype(np.int64) - 2**30).astype(np.float32) * np.float32(0.5))
    np.testing.assert_array_equal(y, expected)
    assert y[0] == 0.5
    x16 = np.array([-32768, 0, 32767], I16)
    (y,) = run_op("dequantize", x16, np.float32(0.25))
    np.testing.assert_array_equal(y, [-8192.0, 0.0, 8191.75])


@pytest.mark.parametrize("fdt", [np.float16, BF16])
def test_dequantize_low_precision(fdt: Any) -> None:
    rng = np.random.default_rng(7)
    x = ints(rng, I8, (5, 4))
    scale = rng.uniform(0.01, 0.2, size=5).astype(fdt)
    zp = rng.integers(-10, 10, size=5).astype(I8)
    (y,) = run_op("dequantize", x, scale, zp, axis=0)
    assert y.dtype == np.dtype(fdt)
    diff = torch.from_numpy(x.astype(np.float32)) - torch.from_numpy(zp.astype(np.float32))[:, None]
    exp = diff * torch.from_numpy(scale.astype(np.float32))[:, None]
    np.testing.assert_array_equal(y, exp.numpy().astype(fdt))


def test_dequantize_widened_interpreter() -> None:
    """interpret(dtype=f64) computes in the widened scale, exactly."""
    from tests.ir.opcheck import one_op_module
    x = np.array([-128, 5, 127], I8)
    scale = np.float32(0.1)
    m = one_op_module("dequantize", [x, scale, np.int8(3)], {})
    (y,) = interpret(m, x, scale, np.int8(3), dtype="f64")
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, (x.astype(np.float64) - 3) * np.float64(scale))


def test_quantize_dequantize_roundtrip_error() -> None:
    rng = np.random.default_rng(8)
    x = rng.uniform(-5, 5, size=(6, 7)).astype(np.float32)
    scale = rng.uniform(0.045, 0.06, size=7).astype(np.float32)  # |x / scale| < 112: no clipping
    zp = rng.integers(-5, 5, size=7).astype(I8)
    (q,) = run_op("quantize", x, scale, zp, axis=-1)
    (back,) = run_op("dequantize", q, scale, zp, axis=-1)
    assert np.all(np.abs(back - x) <= scale / 2 * (1 + 1e-5))


# ---------------------------------------------------------------------------------------------
# dynamic_quantize


def onnx_dynamic_quantize(x: np.ndarray) -> tuple[np.ndarray, np.float32, np.uint8]:
    """The ONNX DynamicQuantizeLinear spec formulas, in f32."""
    hi = np.float32(max(0.0, float(x.max())))
    lo = np.float32(min(0.0, float(x.min())))
    scale = np.float32((hi - lo) if hi != lo else 1.0) / np.float32(255)
    zp = np.rint(np.clip(np.float32(0) - lo / scale, 0, 255))
    y = np.clip(np.rint(x / scale) + zp, 0, 255)
    return y.astype(U8), scale, np.uint8(zp)


@pytest.mark.parametrize("shift", [0.0, 3.0, -3.0])
def test_dynamic_quantize_matches_onnx_formula(shift: float) -> None:
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((4, 9)) + shift).astype(np.float32)
    y, scale, zp = run_op("dynamic_quantize", x)
    ey, escale, ezp = onnx_dynamic_quantize(x)
    assert (y.dtype, scale.dtype, zp.dtype) == (np.uint8, np.float32, np.uint8)
    assert scale.shape == () and zp.shape == ()
    assert scale == escale and zp == ezp
    np.testing.assert_array_equal(y, ey)
    # the range always includes 0, so 0 is exactly representable
    assert zp == (255 if shift < 0 else 0 if shift > 0 else zp)
    back = (y.astype(np.float32) - np.float32(zp)) * scale
    assert np.abs(back - x).max() <= scale * 0.5 + 1e-6
    # agrees with quantize given the same scale and zero point
    (yq,) = run_op("quantize", x, scale, zp)
    np.testing.assert_array_equal(y, yq)


def test_dynamic_quantize_edge_cases() -> None:
    y, scale, zp = run_op("dynamic_quantize", np.zeros((3,), np.float32))
    assert scale == np.float32(1.0) / np.float32(255) and zp == 0
    np.testing.assert_array_equal(y, [0, 0, 0])
    y, scale, zp = run_op("dynamic_quantize", np.float32(-2.0))
    assert y.shape == () and y == 0 and zp == 255
    assert scale == np.float32(2.0) / np.float32(255)
    y, scale, zp = run_op("dynamic_quantize", np.array([0.0, 1.0, 255.0], np.float32))
    np.testing.assert_array_equal(y, [0, 1, 255])
    assert scale == 1.0 and zp == 0


# ---------------------------------------------------------------------------------------------
# matmul_integer


def np_matmul_integer(a: np.ndarray, b: np.ndarray, azp: Any = 0, bzp: Any = 0) -> np.ndarray:
    """Exact int64 reference; azp/bzp already shaped to broadcast against a/b."""
    return np.matmul(a.astype(np.int64) - np.asarray(azp, np.int64),
                     b.astype(np.int64) - np.asarray(bzp, np.int64)).astype(np.int32)


@pytest.mark.parametrize("a_shape, b_shape", [
    ((3, 4), (4, 5)), ((2, 1, 3, 7), (5, 7, 2)), ((6,), (6, 3)), ((2, 3, 6), (6,)), ((5,), (5,)),
    ((1, 4), (3, 4, 2)),
])
@pytest.mark.parametrize("adt, bdt", [(U8, I8), (I8, I8), (U8, U8), (I8, U8)])
def test_matmul_integer_vs_numpy_and_torch(a_shape: tuple, b_shape: tuple, adt: Any,
                                           bdt: Any) -> None:
    rng = np.random.default_rng(10)
    a, b = ints(rng, adt, a_shape), ints(rng, bdt, b_shape)
    azp, bzp = ints(rng, adt, ()), ints(rng, bdt, (1,))
    (y,) = run_op("matmul_integer", a, b, azp, bzp)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, np_matmul_integer(a, b, azp, bzp[0]))
    at = torch.from_numpy(a.astype(np.float64) - float(azp))
    bt = torch.from_numpy(b.astype(np.float64) - float(bzp[0]))
    np.testing.assert_array_equal(y, torch.matmul(at, bt).numpy().astype(np.int32))
    (y0,) = run_op("matmul_integer", a, b)
    np.testing.assert_array_equal(y0, np_matmul_integer(a, b))


def test_matmul_integer_per_row_and_column_zero_points() -> None:
    rng = np.random.default_rng(11)
    a, b = ints(rng, U8, (2, 3, 4)), ints(rng, I8, (4, 5))
    azp_row, bzp_col = ints(rng, U8, (3,)), ints(rng, I8, (5,))
    (y,) = run_op("matmul_integer", a, b, azp_row, bzp_col)
    np.testing.assert_array_equal(y, np_matmul_integer(a, b, azp_row[:, None], bzp_col))
    azp_nd, bzp_nd = ints(rng, U8, (2, 3, 1)), ints(rng, I8, (1, 5))
    (y,) = run_op("matmul_integer", a, b, azp_nd, bzp_nd)
    np.testing.assert_array_equal(y, np_matmul_integer(a, b, azp_nd, bzp_nd))


def test_matmul_integer_accumulator_wraps_in_32_bits() -> None:
    k = 40_000  # 255 * 255 * k > 2**31
    a, b = np.full((1, k), 255, U8), np.full((k, 1), 255, U8)
    (y,) = run_op("matmul_integer", a, b)
    assert y[0, 0] == np.int64(255 * 255 * k).astype(np.int32)


# ---------------------------------------------------------------------------------------------
# conv_integer


def torch_conv_int(x: np.ndarray, w: np.ndarray, xzp: int, wzp: np.ndarray, strides: tuple,
                   pads: tuple, dilations: tuple, groups: int) -> np.ndarray:
    """Exact integer conv via torch on float64 of the shifted values (padding = zero point)."""
    d = x.ndim - 2
    xs = torch.from_numpy(x.astype(np.float64) - xzp)
    ws = torch.from_numpy(w.astype(np.float64) - wzp.reshape((-1,) + (1,) * (w.ndim - 1)))
    torch_pads = [p for i in reversed(range(d)) for p in (pads[i], pads[d + i])]
    y = CONV_FN[d](F.pad(xs, torch_pads), ws, stride=strides, dilation=dilations, groups=groups)
    return y.numpy().astype(np.int64).astype(np.int32)


@pytest.mark.parametrize("x_shape, w_shape, attrs", [
    ((2, 4, 9, 8), (6, 2, 3, 3), {"groups": 2, "strides": [2, 1], "pads": [1, 0, 1, 2]}),
    ((1, 3, 11), (4, 3, 3), {"dilations": [2], "pads": [2, 1]}),
    ((1, 2, 5, 4, 6), (2, 2, 2, 1, 3), {"strides": [1, 2, 2]}),
    ((2, 3, 6, 6), (3, 1, 3, 3), {"groups": 3, "pads": [1, 1, 1, 1], "dilations": [1, 2]}),
    ((1, 2, 4, 4), (5, 2, 1, 1), {}),
], ids=str)
@pytest.mark.parametrize("xdt, wdt", [(U8, I8), (I8, I8), (U8, U8)])
def test_conv_integer_vs_torch(x_shape: tuple, w_shape: tuple, attrs: dict, xdt: Any,
                               wdt: Any) -> None:
    rng = np.random.default_rng(12)
    x, w = ints(rng, xdt, x_shape), ints(rng, wdt, w_shape)
    xzp = ints(rng, xdt, ())
    wzp = ints(rng, wdt, (w_shape[0],))
    d = len(x_shape) - 2
    full = {"strides": tuple(attrs.get("strides", (1,) * d)),
            "pads": tuple(attrs.get("pads", (0,) * 2 * d)),
            "dilations": tuple(attrs.get("dilations", (1,) * d)), "groups": attrs.get("groups", 1)}
    (y,) = run_op("conv_integer", x, w, xzp, wzp, **attrs)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, torch_conv_int(x, w, int(xzp), wzp, **full))
    # per-tensor w zero point, and no zero points at all
    (y,) = run_op("conv_integer", x, w, xzp, wzp[:1], **attrs)
    np.testing.assert_array_equal(y, torch_conv_int(x, w, int(xzp), np.repeat(wzp[:1], w_shape[0]),
                                                    **full))
    (y,) = run_op("conv_integer", x, w, **attrs)
    np.testing.assert_array_equal(y, torch_conv_int(x, w, 0, np.zeros(w_shape[0]), **full))


# ---------------------------------------------------------------------------------------------
# requantize


def torch_requantize(x: np.ndarray, mult: np.ndarray, zp: int, qdt: Any) -> np.ndarray:
    info = np.iinfo(qdt)
    v = torch.round(torch.from_numpy(x.astype(np.float64)) * torch.from_numpy(
        np.asarray(mult, np.float64))) + zp
    return v.clamp(int(info.min), int(info.max)).numpy().astype(qdt)


def test_requantize_rounds_half_to_even_and_saturates() -> None:
    x = np.array([5, 7, -5, -7, 1, 3, 1000, -1000, 2**31 - 1, -(2**31)], I32)
    (y,) = run_op("requantize", x, np.float32(0.5), np.int8(1))
    np.testing.assert_array_equal(y, [3, 5, -1, -3, 1, 3, 127, -128, 127, -128])
    np.testing.assert_array_equal(y, torch_requantize(x, np.float32(0.5), 1, I8))
    (y,) = run_op("requantize", x, np.array([0.5], np.float32), np.array([10], U8))
    np.testing.assert_array_equal(y, torch_requantize(x, np.float32(0.5), 10, U8))


@pytest.mark.parametrize("axis", [1, -1, -3])
def test_requantize_vs_torch(axis: int) -> None:
    rng = np.random.default_rng(13)
    x = ints(rng, I32, (3, 4, 5), -200_000, 200_000)
    n = x.shape[axis]
    mult = rng.uniform(1e-4, 2e-3, size=n).astype(np.float32)
    (y,) = run_op("requantize", x, mult, np.uint8(128), axis=axis)
    expected = torch_requantize(x, shaped(mult, x.ndim, axis % x.ndim), 128, U8)
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y, expected)


def test_requantize_product_is_f64() -> None:
    """x * multiplier is rounded from the exact f64 product, not from an f32 one."""
    x = np.array([16777217, 33554435], I32)  # not representable in f32
    (y,) = run_op("requantize", x, np.float32(2.0 ** -20), np.int8(0))
    np.testing.assert_array_equal(y, [16, 32])
    mult = np.float32(1 / 3)
    x = np.array([3 * 40 + 1, 381], I32)
    (y,) = run_op("requantize", x, mult, np.int8(0))
    np.testing.assert_array_equal(y, np.rint(x.astype(np.float64) * np.float64(mult)))


# ---------------------------------------------------------------------------------------------
# qlinear_matmul and qlinear_conv


def _module(build) -> Module:
    m = Module("q")
    f = FunctionBuilder(m, "main")
    f.ret(*build(f))
    return m


def _float_path(acc_float: np.ndarray, y_scale: float, y_zp: int, qdt: Any) -> np.ndarray:
    return saturate(np.rint(acc_float / y_scale) + y_zp, qdt)


@pytest.mark.parametrize("layout", ["per_tensor", "per_row_col", "nd", "vector_b"])
@pytest.mark.parametrize("sdt", [np.float32, np.float16])
def test_qlinear_matmul(layout: str, sdt: Any) -> None:
    rng = np.random.default_rng(14)
    a_shape, b_shape = (2, 3, 16), ((16,) if layout == "vector_b" else (16, 5))
    a, b = ints(rng, U8, a_shape), ints(rng, I8, b_shape)
    a_p, b_p = {"per_tensor": ((), (1,)), "per_row_col": ((3,), (5,)), "nd": ((2, 3, 1), (1, 5)),
                "vector_b": ((3,), ())}[layout]
    a_s, b_s = rng.uniform(0.01, 0.05, a_p).astype(sdt), rng.uniform(0.01, 0.05, b_p).astype(sdt)
    a_zp, b_zp = ints(rng, U8, a_p, 100, 150), ints(rng, I8, b_p, -10, 10)
    y_s, y_zp = np.asarray(0.08, sdt), np.int8(-3)
    args = [a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp]
    (y,) = run_op("qlinear_matmul", *args)
    assert y.dtype == np.int8 and y.shape == np.matmul(a, b).shape

    # ONNX formula: exact integer product times (a_scale * b_scale) / y_scale in f32
    a_row = a_zp[:, None] if a_zp.ndim == 1 else a_zp
    a_srow = a_s[:, None] if a_s.ndim == 1 else a_s
    acc = np_matmul_integer(a, b, a_row, b_zp)
    if layout == "vector_b":
        mult = (a_s.astype(np.float32) * b_s.astype(np.float32)) / y_s.astype(np.float32)
    else:
        mult = (a_srow.astype(np.float32) * b_s.astype(np.float32)) / y_s.astype(np.float32)
    np.testing.assert_array_equal(y, saturate(np.rint(acc * mult.astype(np.float64)) - 3, I8))

    # dequantize -> float64 matmul -> quantize lands within one step
    af = (a.astype(np.float64) - a_row) * a_srow.astype(np.float64)
    bf = (b.astype(np.float64) - b_zp) * b_s.astype(np.float64)
    ref = _float_path(np.matmul(af, bf), float(y_s), -3, I8)
    assert np.abs(y.astype(int) - ref.astype(int)).max() <= 1

    if layout == "per_tensor":  # one multiplier: the same as requantize(matmul_integer(...))
        (acc_ir,) = run_op("matmul_integer", a, b, a_zp, b_zp)
        (y2,) = run_op("requantize", acc_ir, mult.astype(np.float32).reshape(()), y_zp)
        np.testing.assert_array_equal(y2, y)


def test_qlinear_matmul_equals_requantize_of_matmul_integer() -> None:
    rng = np.random.default_rng(15)
    a, b = ints(rng, I8, (4, 8)), ints(rng, U8, (8, 6))
    a_s, b_s, y_s = np.float32(0.02), rng.uniform(0.01, 0.05, 6).astype(np.float32), np.float32(0.1)
    a_zp, b_zp, y_zp = np.int8(2), ints(rng, U8, (6,)), np.uint8(120)
    (y,) = run_op("qlinear_matmul", a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp)
    mult = (a_s * b_s) / y_s  # f32, as the rewrite-qdq pass folds it

    def build(f):
        acc = f.matmul_integer(f.arg("a", t([4, 8], "i8")), f.arg("b", t([8, 6], "u8")),
                               f.constant(a_zp), f.constant(b_zp))
        return [f.requantize(acc, f.constant(mult), f.constant(y_zp), axis=-1)]
    np.testing.assert_array_equal(interpret(_module(build), a, b)[0], y)


@pytest.mark.parametrize("per_channel, with_bias", [(False, False), (True, True), (True, False)])
def test_qlinear_conv(per_channel: bool, with_bias: bool) -> None:
    rng = np.random.default_rng(16)
    x, w = ints(rng, U8, (2, 4, 7, 6)), ints(rng, I8, (6, 2, 3, 3))
    attrs = {"groups": 2, "strides": [2, 1], "pads": [1, 1, 0, 1]}
    full = {"strides": (2, 1), "pads": (1, 1, 0, 1), "dilations": (1, 1), "groups": 2}
    m = w.shape[0]
    w_p = (m,) if per_channel else ()
    x_s, y_s = np.float32(0.02), np.float32(0.3)
    w_s = rng.uniform(0.005, 0.02, w_p).astype(np.float32)
    x_zp, w_zp, y_zp = np.uint8(128), ints(rng, I8, w_p, -5, 5), np.uint8(100)
    bias = ints(rng, I32, (m,), -5000, 5000)
    args = [x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp] + ([bias] if with_bias else [])
    (y,) = run_op("qlinear_conv", *args, **attrs)
    assert y.dtype == np.uint8

    acc = torch_conv_int(x, w, 128, np.broadcast_to(w_zp, (m,)), **full).astype(np.int64)
    if with_bias:
        acc = acc + bias[:, None, None]
    mult = np.broadcast_to((x_s * w_s) / y_s, (m,)).astype(np.float64)[:, None, None]
    np.testing.assert_array_equal(y, saturate(np.rint(acc * mult) + 100, U8))

    # requantize of conv_integer (+ bias) with the per-channel multiplier on axis 1
    (acc_ir,) = run_op("conv_integer", x, w, x_zp, w_zp, **attrs)
    if with_bias:
        acc_ir = (acc_ir + bias[:, None, None]).astype(I32)
    mult32 = np.broadcast_to((x_s * w_s) / y_s, (m,)).astype(np.float32)
    np.testing.assert_array_equal(run_op("requantize", acc_ir, mult32, y_zp, axis=1)[0], y)

    # float path: dequantize, conv in float64, quantize
    xf = (x.astype(np.float64) - 128) * x_s
    wf = (w.astype(np.float64) - np.broadcast_to(w_zp, (m,))[:, None, None, None]) * \
        np.broadcast_to(w_s, (m,)).astype(np.float64)[:, None, None, None]
    yf = F.conv2d(F.pad(torch.from_numpy(xf), [1, 1, 1, 0]), torch.from_numpy(wf), stride=(2, 1),
                  groups=2).numpy()
    if with_bias:
        yf = yf + (bias * (x_s * np.broadcast_to(w_s, (m,)).astype(np.float64)))[:, None, None]
    assert np.abs(y.astype(int) - _float_path(yf, float(y_s), 100, U8).astype(int)).max() <= 1


def test_symbolic_dims_run_through_the_interpreter() -> None:
    """Symbolic batch and spatial dims are bound at run time; the result types stay symbolic."""
    rng = np.random.default_rng(18)

    def build(f):
        x = f.arg("x", t(["b", 3, "h"], "f32"))
        q = f.quantize(x, f.constant(np.array([0.1, 0.2, 0.3], np.float32)),
                       f.constant(np.array([1, 2, 3], U8)), axis=-2)
        acc = f.conv_integer(q, f.constant(ints(rng, I8, (4, 3, 3))), pads=[1, 1])
        y = f.requantize(acc, f.constant(np.float32(0.01)), f.constant(np.int8(0)))
        assert y.type == t(["b", 4, "h"], "i8")
        return [y]
    m = _module(build)
    x = rng.standard_normal((2, 3, 7)).astype(np.float32)
    (y,) = interpret(m, x)
    assert y.shape == (2, 4, 7) and y.dtype == np.int8


# ---------------------------------------------------------------------------------------------
# ONNX's reference implementation, when installed


def test_against_onnx_reference() -> None:
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(17)

    def run_onnx(op_type: str, inputs: list[np.ndarray], n_out: int = 1, **attrs: Any):
        names = [f"i{k}" for k in range(len(inputs))]
        outs = [f"o{k}" for k in range(n_out)]
        node = helper.make_node(op_type, names, outs, **attrs)
        return ReferenceEvaluator(node).run(None, dict(zip(names, inputs)))

    x = (rng.standard_normal((3, 4)) * 10).astype(np.float32)
    s, zp = rng.uniform(0.05, 0.2, 4).astype(np.float32), ints(rng, I8, (4,))
    np.testing.assert_array_equal(run_op("quantize", x, s, zp)[0],
                                  run_onnx("QuantizeLinear", [x, s, zp], axis=1)[0])
    q = ints(rng, U8, (3, 4))
    zq = ints(rng, U8, (4,))
    np.testing.assert_allclose(run_op("dequantize", q, s, zq)[0],
                               run_onnx("DequantizeLinear", [q, s, zq], axis=1)[0], rtol=1e-6)
    for ours, theirs in zip(run_op("dynamic_quantize", x),
                            run_onnx("DynamicQuantizeLinear", [x], 3)):
        np.testing.assert_array_equal(ours, theirs)
    a, b = ints(rng, U8, (3, 5)), ints(rng, I8, (5, 2))
    np.testing.assert_array_equal(run_op("matmul_integer", a, b, np.uint8(3), np.int8(-2))[0],
                                  run_onnx("MatMulInteger", [a, b, np.uint8(3), np.int8(-2)])[0])
    xc, wc = ints(rng, U8, (1, 2, 5, 5)), ints(rng, U8, (3, 2, 3, 3))
    np.testing.assert_array_equal(
        run_op("conv_integer", xc, wc, np.uint8(7), np.uint8(1), pads=[1, 1, 1, 1])[0],
        run_onnx("ConvInteger", [xc, wc, np.uint8(7), np.uint8(1)], pads=[1, 1, 1, 1])[0])
    # QLinearMatMul's reference rescales in its own float order: within one step
    qargs = [a, np.float32(0.02), np.uint8(3), b, np.float32(0.03), np.int8(-2), np.float32(0.05),
             np.uint8(128)]
    ours, theirs = run_op("qlinear_matmul", *qargs)[0], run_onnx("QLinearMatMul", qargs)[0]
    assert ours.dtype == theirs.dtype
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1


# ---------------------------------------------------------------------------------------------
# samples


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_type_check_and_run(name: str) -> None:
    check_samples(SAMPLES, name, require_outputs=True)
