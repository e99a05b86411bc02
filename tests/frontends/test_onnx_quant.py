"""ONNX quantization converters (frontends/onnx/ops/quant.py): each model is imported, run on the
reference interpreter and compared with onnx.reference.ReferenceEvaluator on fresh random data."""
from __future__ import annotations

from typing import Optional

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler import ir
from frontends import OnnxImportError, from_onnx

RNG = np.random.default_rng(20240611)
NP_TO_ONNX = {np.dtype(k): v for k, v in ((np.float32, T.FLOAT), (np.float16, T.FLOAT16),
                                          (np.uint8, T.UINT8), (np.int8, T.INT8),
                                          (np.int16, T.INT16), (np.int32, T.INT32),
                                          (np.int64, T.INT64))}


def model(node: onnx.NodeProto, inputs: dict[str, np.ndarray], out_types: dict[str, int],
          opset: int, inits: Optional[dict[str, np.ndarray]] = None,
          shapes: Optional[dict[str, list]] = None) -> onnx.ModelProto:
    """A one-node model; `inputs` are graph inputs (shapes overridable), `inits` initializers;
    output shapes are given in `shapes` or taken from a reference run on `inputs`."""
    shapes = shapes or {}
    ins = [helper.make_tensor_value_info(n, NP_TO_ONNX[a.dtype], shapes.get(n, list(a.shape)))
           for n, a in inputs.items()]
    weights = [numpy_helper.from_array(a, n) for n, a in (inits or {}).items()]

    def build(outs: list) -> onnx.ModelProto:
        g = helper.make_graph([node], "g", ins, outs, weights)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    if all(n in shapes for n in out_types):
        out_shapes = [shapes[n] for n in out_types]
    else:
        untyped = build([helper.make_empty_tensor_value_info(n) for n in out_types])
        try:
            out_shapes = [list(r.shape) for r in ReferenceEvaluator(untyped).run(None, inputs)]
        except Exception:  # models made to fail: any shape of the right kind will do
            out_shapes = [[] for _ in out_types]
    return build([helper.make_tensor_value_info(n, t, shp)
                  for (n, t), shp in zip(out_types.items(), out_shapes)])


def check(m: onnx.ModelProto, feeds: dict[str, np.ndarray], atol: float = 0.0,
          ref_opset: Optional[int] = None) -> ir.Module:
    """Import m, run it on feeds and compare every output with ONNX's reference (run at
    `ref_opset` where the reference lacks the op's older versions)."""
    module = from_onnx(m)
    got = ir.interpret(module, *feeds.values())
    ref = m
    if ref_opset is not None:
        ref = onnx.ModelProto()
        ref.CopyFrom(m)
        ref.opset_import[0].version = max(ref_opset, m.opset_import[0].version)
    want = ReferenceEvaluator(ref).run(None, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), atol=atol, rtol=0)
    return module


def floats(*shape: int, scale: float = 4.0, dtype=np.float32) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(dtype)


def ints(dtype, *shape: int, lo: Optional[int] = None, hi: Optional[int] = None) -> np.ndarray:
    info = np.iinfo(dtype)
    return RNG.integers(info.min if lo is None else lo, info.max if hi is None else hi,
                        size=shape, endpoint=True).astype(dtype)


def scales(*shape: int, dtype=np.float32) -> np.ndarray:
    return RNG.uniform(0.01, 0.1, size=shape).astype(dtype)


# --- QuantizeLinear / DequantizeLinear ---------------------------------------------------------


@pytest.mark.parametrize("opset", [10, 13, 19, 21, 25])
def test_quantize_per_tensor(opset):
    x, s, z = floats(3, 5), scales(), ints(np.int8, lo=-20, hi=20)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q")
    check(model(node, {"x": x, "s": s, "z": z}, {"y": T.INT8}, opset), {"x": x, "s": s, "z": z})


def test_quantize_per_axis_and_symbolic_batch():
    """Per-channel scales along axis 1 with a symbolic batch dim; no zero point means u8."""
    s = scales(4)
    node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], name="q", axis=1)
    m = model(node, {"x": floats(2, 4, 3)}, {"y": T.UINT8}, 13, inits={"s": s},
              shapes={"x": ["n", 4, 3], "y": ["n", 4, 3]})
    module = from_onnx(m)
    assert "func @main(%x: f32[?n,4,3]) -> (u8[?n,4,3])" in ir.print_module(module)
    for n in (1, 3):
        x = floats(n, 4, 3, scale=0.2)
        (got,) = ir.interpret(module, x)
        np.testing.assert_array_equal(got, ReferenceEvaluator(m).run(None, {"x": x})[0])


@pytest.mark.parametrize("shape,axis,block,out", [
    ((3, 8), 1, 4, T.UINT8),      # last axis: rows of one block, no transpose
    ((2, 6, 5), 1, 4, T.INT8),    # a middle axis, 6 not a multiple of 4: padded, cropped
    ((5, 3), 0, 2, T.INT16),      # first axis, symmetric (no zero point, output_dtype)
])
def test_quantize_blocked(shape, axis, block, out):
    sshape = list(shape)
    sshape[axis] = -(-shape[axis] // block)
    x, s = floats(*shape), scales(*sshape)
    feeds = {"x": x, "s": s}
    if out == T.INT16:
        node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], axis=axis, block_size=block,
                                output_dtype=out)
    else:
        feeds["z"] = ints(helper.tensor_dtype_to_np_dtype(out), *sshape, lo=0, hi=30)
        node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=axis,
                                block_size=block)
    module = check(model(node, feeds, {"y": out}, 21), feeds)
    assert "quantize(" in ir.print_module(module)


def test_quantize_mixed_dtypes_divide_in_the_wider_type():
    """x f16 with an f32 scale: ONNX divides in f32; the IR op gets both cast to f32."""
    x, s, z = floats(4, 6, dtype=np.float16), scales(6), ints(np.uint8, 6)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1)
    check(model(node, {"x": x, "s": s, "z": z}, {"y": T.UINT8}, 21), {"x": x, "s": s, "z": z})


@pytest.mark.parametrize("opset", [10, 13, 21])
def test_dequantize_per_tensor_and_per_axis(opset):
    x = ints(np.uint8, 2, 3, 4)
    per_axis = opset >= 13
    s, z = (scales(3), ints(np.uint8, 3)) if per_axis else (scales(), ints(np.uint8))
    node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])
    check(model(node, {"x": x, "s": s, "z": z}, {"y": T.FLOAT}, opset), {"x": x, "s": s, "z": z},
          atol=1e-6, ref_opset=19)


def test_dequantize_blocked_middle_axis_and_output_dtype():
    x, s, z = ints(np.int8, 2, 6, 3), scales(2, 2, 3), ints(np.int8, 2, 2, 3, lo=-5, hi=5)
    node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=1, block_size=3,
                            output_dtype=T.FLOAT16)
    check(model(node, {"x": x, "s": s, "z": z}, {"y": T.FLOAT16}, 23), {"x": x, "s": s, "z": z})


def test_dequantize_int32_without_zero_point():
    x, s = ints(np.int32, 5, lo=-10**6, hi=10**6), scales()
    node = helper.make_node("DequantizeLinear", ["x", "s"], ["y"])
    check(model(node, {"x": x, "s": s}, {"y": T.FLOAT}, 13), {"x": x, "s": s}, atol=1e-3,
          ref_opset=19)


def test_dynamic_quantize_linear_uses_the_ir_op():
    x = floats(3, 7)
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "ys", "yz"])
    m = model(node, {"x": x}, {"y": T.UINT8, "ys": T.FLOAT, "yz": T.UINT8}, 11)
    module = check(m, {"x": x})
    text = ir.print_module(module)
    assert "dynamic_quantize(%x)" in text and "reduce_min" not in text


# --- integer contractions ----------------------------------------------------------------------


def test_matmul_integer_per_row_zero_point_symbolic_batch():
    b, az, bz = ints(np.int8, 5, 3), ints(np.uint8, 1, 4, 1), ints(np.int8, 3)
    node = helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])
    m = model(node, {"a": ints(np.uint8, 2, 4, 5)}, {"y": T.INT32}, 10,
              inits={"b": b, "az": az, "bz": bz},
              shapes={"a": ["batch", 4, 5], "y": ["batch", 4, 3]})
    module = from_onnx(m)
    for n in (1, 3):
        a = ints(np.uint8, n, 4, 5)
        (got,) = ir.interpret(module, a)
        np.testing.assert_array_equal(got, ReferenceEvaluator(m).run(None, {"a": a})[0])


def test_matmul_integer_only_b_zero_point():
    a, b, bz = ints(np.uint8, 3, 4), ints(np.uint8, 4, 2), ints(np.uint8)
    node = helper.make_node("MatMulInteger", ["a", "b", "", "bz"], ["y"])
    check(model(node, {"a": a, "b": b, "bz": bz}, {"y": T.INT32}, 10), {"a": a, "b": b, "bz": bz})


@pytest.mark.parametrize("attrs", [
    {"pads": [1, 0, 2, 1], "strides": [2, 1]},
    {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"auto_pad": "SAME_LOWER", "dilations": [2, 1]},
    {"auto_pad": "VALID", "group": 2},
])
def test_conv_integer(attrs):
    x, w = ints(np.uint8, 1, 4, 7, 6), ints(np.uint8, 6, 4 // attrs.get("group", 1), 3, 2)
    xz, wz = ints(np.uint8), ints(np.uint8, 6)
    feeds = {"x": x, "w": w, "xz": xz, "wz": wz}
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], **attrs)
    check(model(node, feeds, {"y": T.INT32}, 10), feeds)


def test_conv_integer_without_x_zero_point():
    x, w, wz = ints(np.int8, 2, 3, 5, 5), ints(np.int8, 4, 3, 3, 3), ints(np.int8)
    node = helper.make_node("ConvInteger", ["x", "w", "", "wz"], ["y"], kernel_shape=[3, 3])
    check(model(node, {"x": x, "w": w, "wz": wz}, {"y": T.INT32}, 10), {"x": x, "w": w, "wz": wz})


@pytest.mark.parametrize("dtype,sdtype", [(np.uint8, np.float32), (np.int8, np.float32)])
def test_qlinear_matmul(dtype, sdtype):
    zlo, zhi = (100, 150) if dtype == np.uint8 else (-20, 20)
    feeds = {"a": ints(dtype, 2, 3, 8), "as": scales(dtype=sdtype),
             "az": ints(dtype, lo=zlo, hi=zhi), "b": ints(dtype, 2, 8, 4),
             "bs": scales(dtype=sdtype), "bz": ints(dtype, lo=zlo, hi=zhi),
             "ys": np.asarray(2.0, sdtype), "yz": ints(dtype, lo=zlo, hi=zhi)}
    node = helper.make_node("QLinearMatMul", list(feeds), ["y"])
    check(model(node, feeds, {"y": NP_TO_ONNX[np.dtype(dtype)]}, 21), feeds)


def test_qlinear_conv_per_channel_with_bias_and_auto_pad():
    feeds = {"x": ints(np.uint8, 1, 2, 6, 6), "xs": np.asarray(0.05, np.float32),
             "xz": np.asarray(128, np.uint8), "w": ints(np.int8, 3, 2, 3, 3),
             "ws": scales(3), "wz": np.zeros(3, np.int8), "ys": np.asarray(0.5, np.float32),
             "yz": np.asarray(10, np.uint8), "bias": ints(np.int32, 3, lo=-500, hi=500)}
    node = helper.make_node("QLinearConv", list(feeds), ["y"], auto_pad="SAME_UPPER",
                            strides=[2, 2])
    check(model(node, feeds, {"y": T.UINT8}, 10), feeds)


# --- errors ------------------------------------------------------------------------------------


def test_bad_auto_pad_names_the_node():
    node = helper.make_node("ConvInteger", ["x", "w"], ["y"], name="convint7", auto_pad="SAME")
    m = model(node, {"x": ints(np.uint8, 1, 1, 4, 4), "w": ints(np.uint8, 1, 1, 2, 2)},
              {"y": T.INT32}, 10)
    with pytest.raises(OnnxImportError, match=r"ConvInteger node 'convint7'.*auto_pad='SAME'"):
        from_onnx(m)


def test_blocked_quantization_needs_static_shapes():
    node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], name="qblock", axis=1,
                            block_size=2)
    m = model(node, {"x": floats(2, 4)}, {"y": T.UINT8}, 21, inits={"s": scales(2, 2)},
              shapes={"x": ["n", 4], "y": ["n", 4]})
    with pytest.raises(OnnxImportError, match=r"QuantizeLinear node 'qblock'.*static input shape"):
        from_onnx(m)


def test_wrong_blocked_scale_shape():
    node = helper.make_node("DequantizeLinear", ["x", "s"], ["y"], name="dq", axis=1,
                            block_size=2)
    m = model(node, {"x": ints(np.int8, 2, 4)}, {"y": T.FLOAT}, 21, inits={"s": scales(2, 3)})
    with pytest.raises(OnnxImportError, match=r"node 'dq'.*must have shape \[2, 2\]"):
        from_onnx(m)


def test_output_dtype_without_ir_dtype_is_rejected():
    node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], name="q8",
                            output_dtype=T.COMPLEX64)
    m = model(node, {"x": floats(4)}, {"y": T.COMPLEX64}, 21, inits={"s": scales()})
    with pytest.raises(OnnxImportError, match=r"COMPLEX64 has no IR dtype"):
        from_onnx(m)
