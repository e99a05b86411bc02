"""The IR's semantics at the edges, where XLA's own choices differ from the reference's: integer
division and remainder by zero, negative integer powers, out-of-range shifts, nan in max/argmax/
topk/sort, rounding halves, saturating and wrapping casts (f8, i4, e8m0), empty reductions,
softmax of infinite rows, negative slice steps, pad modes, quantization rounding. Each case is
compared with the interpreter; integers, bools and non-finite values exactly."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import ir
from compiler.ir import dtypes as dt
from tests.codegen.xla.util import build, check_op
from tests.ir.opcheck import one_op_module

F = np.float32
nan, inf = np.nan, np.inf
I4, F8 = dt.i4.np_dtype, dt.f8e4m3fn.np_dtype

CASES = [
    ("div", [np.array([7, -7, 7, -7, 5, -2**31], np.int32),
             np.array([2, 2, -2, 0, 0, -1], np.int32)], {}),
    ("div", [np.array([7, 0, 255], np.uint8), np.array([2, 0, 0], np.uint8)], {}),
    ("div", [np.array([1, -1, 0, nan], F), np.array([0, 0, 0, 1], F)], {}),
    ("mod", [np.array([7, -7, 7, -7, 5, 0], np.int64), np.array([3, 3, -3, -3, 0, -3], np.int64)],
     {"fmod": False}),
    ("mod", [np.array([7, -7, 7, -7, 5], np.int64), np.array([3, 3, -3, -3, 0], np.int64)],
     {"fmod": True}),
    ("mod", [np.array([7.5, -7.5, 7.5, -7.5, 0, -0.0, 1, -1, inf], F),
             np.array([2, 2, -2, -2, 3, 3, inf, inf, 2], F)], {"fmod": False}),
    ("mod", [np.array([7.5, -7.5, 7.5, -7.5, 0, 5], F), np.array([2, 2, -2, -2, 3, 0], F)],
     {"fmod": True}),
    ("pow", [np.array([2, -2, 1, -1, -1, 0, 3, 2], np.int32),
             np.array([3, 3, -5, -5, -4, -1, 0, 31], np.int32)], {}),
    ("pow", [np.array([2, -2, 0, 0, nan, 1, -8], F), np.array([0.5, 0.5, -1, 0, 0, nan, 3], F)],
     {}),
    ("shift_left", [np.array([1, 1, 1, -1, 5], np.int32), np.array([0, 31, 32, 3, -1], np.int32)],
     {}),
    ("shift_right", [np.array([-8, -8, 8, -8, 8], np.int32),
                     np.array([1, 40, 40, -2, 3], np.int32)], {}),
    ("shift_right", [np.array([255, 255, 128], np.uint8), np.array([1, 9, 7], np.uint8)], {}),
    ("max", [np.array([nan, 1, -0.0], F), np.array([1, nan, 0.0], F)], {}),
    ("min", [np.array([nan, 1], F), np.array([1, nan], F)], {}),
    ("round", [np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999, nan, inf], F)], {}),
    ("sign", [np.array([-2, 0, 3, nan, -inf], F)], {}),
    ("sign", [np.array([0, 3, 255], np.uint8)], {}),
    ("relu", [np.array([-1, nan, 2], F)], {}),
    ("clip", [np.array([0, 100, 200, 255], np.uint8)], {"min": -1.5, "max": 300.7}),
    ("clip", [np.array([-100, 0, 100], np.int8)], {"min": -2.5, "max": 2.5}),
    ("clip", [np.array([nan, -5, 5], F)], {"min": -1.0, "max": 1.0}),
    ("isinf", [np.array([inf, -inf, nan, 1], F)], {"detect_negative": False}),
    ("cast", [np.array([1.9, -1.9, 0, 100.5, -100.5], F)], {"to": "i32"}),
    ("cast", [np.array([300.0, -200.0, 1.5], F)], {"to": "i8"}),  # NumPy wraps through i32
    ("cast", [np.array([nan, 0, -0.0, 0.1], F)], {"to": "bool"}),
    ("cast", [np.array([1e6, -1e6, nan, inf, -inf, 0.3], F)], {"to": "f8e4m3fn"}),
    ("cast", [np.array([1e6, -1e6, nan, inf, -inf, 0.3], F)],
     {"to": "f8e4m3fn", "saturate": False}),
    ("cast", [np.array([1e6, -1e6, nan, inf, -inf, 0.3], F)], {"to": "f8e5m2", "saturate": False}),
    ("cast", [np.array([1e6, -1e6, nan, inf, -inf, 0.3], F)], {"to": "f8e5m2fnuz"}),
    ("cast", [np.array([1e6, -1e6, nan, inf, -inf, 0.3, 2.5, 5.5], F)], {"to": "f4e2m1"}),
    ("cast", [np.array([-9, 7, 8, 15.9, -8.5, 1e10, nan], F)], {"to": "i4"}),
    ("cast", [np.array([-9, 7, 8, 300, -1], np.int32)], {"to": "u4"}),
    ("cast", [np.array([3.0, 0.75, 1e-40, 0, nan, inf, 1.5, 2**127 * 1.9], F)], {"to": "f8e8m0"}),
    ("cast", [np.array([3.0, 0.75, 1e-40, 0, nan, inf, 1.5], F)],
     {"to": "f8e8m0", "round_mode": "nearest"}),
    ("cast", [np.array([3.0, 0.75, 0, nan, inf, 1.5], F)], {"to": "f8e8m0", "round_mode": "down"}),
    ("cast", [np.array([16777217, 2**31 - 1, -5], np.int32)], {"to": "bf16"}),
    ("cast", [np.array([1.5, -2.5, 3], F).astype(F8)], {"to": "i8"}),
    ("cast", [np.array([nan, inf, -inf, 1.5], F).astype(dt.f8e5m2.np_dtype)], {"to": "i32"}),
    ("cast", [np.array([nan, inf, -inf, 1.5], F).astype(dt.f8e5m2.np_dtype)], {"to": "i4"}),
    ("cast", [np.array([nan, inf, -inf, 1.5], F).astype(dt.f8e5m2.np_dtype)], {"to": "f8e5m2"}),
    ("cast", [np.array([3, -2, 7], np.int8).astype(I4)], {"to": "f32"}),
    ("bitcast", [np.array([1.0, -2.0], F)], {"to": "i32"}),
    ("bitcast", [np.array([0, 1, 2, 255], np.uint8)], {"to": "bool"}),
    ("bitcast", [np.array([True, False])], {"to": "i8"}),
    ("argmax", [np.array([[1, 3, 3, nan, nan], [2, 2, 1, 0, 2]], F)], {"axis": 1}),
    ("argmax", [np.array([[1, 3, 3, nan, nan], [2, 2, 1, 0, 2]], F)],
     {"axis": 1, "select_last_index": True}),
    ("argmin", [np.array([[1, 3, 0, nan, 0], [2, 2, 1, 0, 0]], F)], {"axis": 1, "keepdims": True}),
    ("argmin", [np.array([[-inf, -inf], [inf, inf]], F)], {"axis": 1, "select_last_index": True}),
    ("topk", [np.array([[1, 3, 3, nan, 2, 3]], F)], {"k": 4}),
    ("topk", [np.array([[1, 3, 3, nan, 2, 3]], F)], {"k": 4, "largest": False}),
    ("topk", [np.array([[5, 3, 3, 7, 3]], np.int64)], {"k": 3, "largest": False}),
    ("softmax", [np.array([[-inf, -inf], [1, inf], [nan, 1], [1, 2], [1e10, 1e10]], F)], {}),
    ("log_softmax", [np.array([[-inf, -inf], [1, inf], [1, 2]], F)], {}),
    ("reduce_logsumexp", [np.array([[-inf, -inf], [1, inf], [1, 2]], F)], {"axes": [1]}),
    ("reduce_max", [np.zeros((2, 0), F)], {"axes": [1]}),
    ("reduce_min", [np.zeros((2, 0), np.int32)], {"axes": [1]}),
    ("reduce_mean", [np.zeros((2, 0), F)], {"axes": [1]}),
    ("reduce_prod", [np.zeros((0, 3), F)], {"axes": [0], "keepdims": True}),
    ("reduce_max", [np.array([[1, nan], [2, 3]], F)], {"axes": [1]}),
    ("reduce_sum", [np.array([[100, 100], [120, 20]], np.int8)], {"axes": [1]}),  # wraps
    ("cumsum", [np.array([[1, 2, 3, 4]], np.int32)], {"axis": 1, "exclusive": True,
                                                       "reverse": True}),
    ("cumprod", [np.array([[1, 2, 3, 4]], F)], {"axis": 1, "exclusive": True}),
    ("one_hot", [np.array([0, -1, 3, -4, 5], np.int64)], {"depth": 4}),
    ("gather", [np.arange(12, dtype=F).reshape(3, 4), np.array([[0, -1], [2, -3]], np.int64)],
     {"axis": 0}),
    ("slice", [np.arange(10, dtype=F)], {"starts": [-1], "ends": [-2**63], "steps": [-3]}),
    ("slice", [np.arange(10, dtype=F)], {"starts": [8], "ends": [1], "steps": [-2]}),
    ("slice", [np.arange(10, dtype=F)], {"starts": [20], "ends": [30]}),
    ("pad", [np.arange(12, dtype=F).reshape(3, 4)], {"pads": [2, 1, 1, 3], "mode": "reflect"}),
    ("pad", [np.arange(12, dtype=F).reshape(3, 4)], {"pads": [2, 1, 1, 3], "mode": "edge"}),
    ("pad", [np.arange(12, dtype=F).reshape(3, 4)], {"pads": [3, 4, 1, 2], "mode": "wrap"}),
    ("pad", [np.arange(12, dtype=F).reshape(3, 4)], {"pads": [-1, 2, 1, -2], "value": 7.5}),
    ("scatter_elements", [np.zeros((3, 3), F), np.array([[1, 0, 2], [0, 2, 1]], np.int64),
                          np.ones((2, 3), F)], {"axis": 0, "reduction": "add"}),
    ("range", [], {"start": 0.1, "limit": 1.0, "delta": 0.3, "dtype": "f32"}),
    ("range", [], {"start": 10, "limit": -3, "delta": -4, "dtype": "i32"}),
    ("det", [np.array([[[1, 2], [2, 4]], [[0, 1], [1, 0]], [[2, 0], [0, 3]]], F)], {}),
    ("det", [np.zeros((3, 3), np.float64)], {}),
    ("max_pool", [np.array([[[[nan, 1, 2], [3, 4, -inf]]]], F)],
     {"kernel": [2, 2], "ceil_mode": True, "strides": [2, 2]}),
    ("avg_pool", [np.arange(25, dtype=F).reshape(1, 1, 5, 5)],
     {"kernel": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": True}),
    ("avg_pool", [np.arange(25, dtype=F).reshape(1, 1, 5, 5)],
     {"kernel": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": True,
      "count_include_pad": True}),
    ("max_pool_with_indices", [np.array([[[[1, 4, 4], [4, 2, 4]]]], F)],
     {"kernel": [2, 2], "pads": [1, 1, 1, 1], "storage_order": 1}),
    ("quantize", [np.array([0.5, 1.5, 2.5, -0.5, 1e9, -1e9, nan], F), np.array(1.0, F),
                  np.array(3, np.uint8)], {}),
    ("quantize", [np.array([0.5, 1.5, 2.5, -0.5, 1e9, -1e9, nan], F), np.array(0.5, F)],
     {"dtype": "i4"}),
    ("quantize", [np.array([0.5, 300, -300, nan, -0.0], F), np.array(1.0, F),
                  np.array(0, F).astype(F8)], {}),
    ("dequantize", [np.array([-2**31, 2**31 - 1, 0], np.int32), np.array(1.0, F),
                    np.array(-5, np.int32)], {}),
    ("dynamic_quantize", [np.array([[0.0, 1.0], [2.5, 0.3]], F)], {}),
    ("requantize", [np.array([1000, -1000, 2**31 - 1, 5, 15], np.int32), np.array(0.1, F),
                    np.array(2, np.int8)], {}),
]


@pytest.mark.parametrize("case", range(len(CASES)),
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_edge_semantics(case):
    name, inputs, attrs = CASES[case]
    check_op(name, inputs, attrs, rtol=1e-6)


def test_gather_index_out_of_range_raises():
    import codegen.xla as X
    x = np.arange(12, dtype=F).reshape(3, 4)
    idx = np.array([0, 2], np.int64)
    mod = build(one_op_module("gather", [x, idx], {"axis": 0}))
    np.testing.assert_array_equal(mod(x, idx)[0], x[[0, 2]])
    with pytest.raises(X.RuntimeCheckError, match="gather.*out of range"):
        mod(x, np.array([0, 3], np.int64))
    with pytest.raises(ir.InterpreterError, match="out of range"):  # as the reference says
        ir.interpret(one_op_module("gather", [x, idx], {"axis": 0}), x, np.array([0, -4]))


def test_data_dependent_sample_count_is_refused():
    import codegen.xla as X
    x = np.ones((1, 1, 4, 4), F)
    rois = np.array([[0, 0, 3, 3]], F)
    m = one_op_module("roi_align", [x, rois, np.array([0], np.int64)], {"sampling_ratio": 0})
    with pytest.raises(X.LoweringError, match=r"roi_align.*sampling_ratio > 0"):
        build(m)
