"""The ONNX importer's own behaviour: loading, errors, symbolic dims, folding, function expansion,
external data, and the onnx_backend interface."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

import compiler.onnx_backend as backend
from compiler import ir
from frontends import OnnxImportError, UnsupportedOpsError, from_onnx


def make_model(nodes, inputs, outputs, initializers=(), opset=17, **kw):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], **kw)


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def shape_chain_model():
    """Shape -> Gather -> Concat -> Reshape, as exporters write a flatten with a dynamic batch."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["b"], axis=0),
             helper.make_node("Concat", ["b", "minus1"], ["shp"], axis=0),
             helper.make_node("Reshape", ["x", "shp"], ["y"])]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "i0"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    return make_model(nodes, [vi("x", T.FLOAT, ["batch", 4, 6])], [vi("y", T.FLOAT, ["batch", 24])],
                      inits)


def test_shape_arithmetic_keeps_symbolic_dims():
    m = from_onnx(shape_chain_model())
    text = ir.print_module(m)
    assert "func @main(%x: f32[?batch,4,6]) -> (f32[?batch,24])" in text
    assert "reshape(%x) {shape = [?batch, -1]}" in text
    assert "shape_of" not in text and "gather" not in text  # folded away, then pruned
    for n in (1, 3):
        x = np.random.default_rng(n).standard_normal((n, 4, 6)).astype(np.float32)
        (y,) = ir.interpret(m, x)
        np.testing.assert_array_equal(y, x.reshape(n, 24))


def test_unsupported_ops_are_listed_at_once():
    nodes = [helper.make_node("StringNormalizer", ["x"], ["a"], name="norm1"),
             helper.make_node("Reshape", ["a", "s"], ["b"], name="r"),
             helper.make_node("RandomUniformLike", ["b"], ["c"], name="rand", dtype=T.FLOAT),
             helper.make_node("StringNormalizer", ["x"], ["d"], name="norm2")]
    model = make_model(nodes, [vi("x", T.STRING, [2])], [vi("c", T.FLOAT, [1]), vi("d", T.STRING, [2])],
                       [numpy_helper.from_array(np.array([2], np.int64), "s")])
    with pytest.raises(UnsupportedOpsError) as info:
        from_onnx(model)
    msg = str(info.value)
    assert "3 node(s) of 2 unsupported op type(s) (RandomUniformLike, StringNormalizer)" in msg
    for name in ("norm1", "norm2", "rand"):
        assert f"node '{name}', opset 17" in msg


def test_malformed_and_truncated_files(tmp_path):
    good = shape_chain_model().SerializeToString()
    (tmp_path / "trunc.onnx").write_bytes(good[: len(good) // 2])
    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01not a model at all\xff" * 10)
    for name in ("trunc.onnx", "junk.onnx"):
        with pytest.raises(OnnxImportError, match=name):
            from_onnx(str(tmp_path / name))
    with pytest.raises(OnnxImportError, match="No such file"):
        from_onnx(str(tmp_path / "missing.onnx"))


def test_invalid_graph_is_reported_by_the_checker():
    model = make_model([helper.make_node("Reshape", ["x"], ["y"])],  # one input too few
                       [vi("x", T.FLOAT, [2])], [vi("y", T.FLOAT, [2])])
    with pytest.raises(OnnxImportError, match="not valid ONNX"):
        from_onnx(model)


def test_unsupported_dtype_names_the_input():
    model = make_model([helper.make_node("Identity", ["x"], ["y"])],
                       [vi("x", T.COMPLEX64, [2])], [vi("y", T.COMPLEX64, [2])])
    with pytest.raises(OnnxImportError, match="graph input 'x': element type COMPLEX64 has no IR dtype"):
        from_onnx(model)


def test_reshape_with_runtime_target_is_a_clear_error():
    model = make_model([helper.make_node("Reshape", ["x", "s"], ["y"], name="dyn")],
                       [vi("x", T.FLOAT, [2, 3]), vi("s", T.INT64, [2])], [vi("y", T.FLOAT, [3, 2])])
    with pytest.raises(OnnxImportError, match="Reshape node 'dyn' \\(opset 17\\): the target shape depends"):
        from_onnx(model)


def test_external_data_weights(tmp_path):
    w = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    init = numpy_helper.from_array(w, "w")
    model = make_model([helper.make_node("Reshape", ["w", "s"], ["y"])], [],
                       [vi("y", T.FLOAT, [32, 64])],
                       [init, numpy_helper.from_array(np.array([32, 64], np.int64), "s")])
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.data", size_threshold=16)
    assert (tmp_path / "ext.data").exists()
    m = from_onnx(str(path))
    (y,) = ir.interpret(m)
    np.testing.assert_array_equal(y, w.reshape(32, 64))


def test_function_ops_are_expanded_from_their_onnx_definition():
    # MeanVarianceNormalization is defined in ONNX as a function of ReduceMean, Sub, Pow, Sqrt, Div
    model = make_model([helper.make_node("MeanVarianceNormalization", ["x"], ["y"], axes=[0, 2, 3])],
                       [vi("x", T.FLOAT, [2, 3, 4, 5])], [vi("y", T.FLOAT, [2, 3, 4, 5])], opset=13)
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5)).astype(np.float32)
    from onnx.reference import ReferenceEvaluator
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    (got,) = ir.interpret(from_onnx(model), x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_backend_interface():
    model = shape_chain_model()
    assert backend.supports_device("CPU") and not backend.supports_device("CUDA")
    x = np.random.default_rng(2).standard_normal((2, 4, 6)).astype(np.float32)
    rep = backend.prepare(model)
    (y,) = rep.run([x])
    np.testing.assert_array_equal(y, x.reshape(2, 24))
    (y2,) = rep.run({"x": x})
    np.testing.assert_array_equal(y2, y)
    (y3,) = backend.run_model(model, [x])
    np.testing.assert_array_equal(y3, y)
    node = helper.make_node("Transpose", ["a"], ["b"], perm=[1, 0])
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    (b,) = backend.run_node(node, [a])
    np.testing.assert_array_equal(b, a.T)
    with pytest.raises(ValueError, match="input 0 \\(%x\\): expected dtype f32"):
        rep.run([x.astype(np.float64)])


def pads_input_model():
    return make_model([helper.make_node("Pad", ["x", "pads"], ["y"], name="pad")],
                      [vi("x", T.FLOAT, [2, 3]), vi("pads", T.INT64, [4])],
                      [vi("y", T.FLOAT, [None, None])])


def test_shape_deciding_inputs_can_be_bound():
    from frontends import NeedsConstantError
    model = pads_input_model()
    with pytest.raises(NeedsConstantError, match="Pad node 'pad' \\(opset 17\\): input 1 \\(pads\\)"):
        from_onnx(model)
    m = from_onnx(model, bind={"pads": np.array([1, 0, 0, 2], np.int64)})
    assert [a.name for a in m.main.args] == ["x"]
    x = np.random.default_rng(3).standard_normal((2, 3)).astype(np.float32)
    (y,) = ir.interpret(m, x)
    np.testing.assert_array_equal(y, np.pad(x, ((1, 0), (0, 2))))
    with pytest.raises(OnnxImportError, match="bind names no graph input: nope"):
        from_onnx(model, bind={"nope": np.zeros(1)})


def test_backend_specializes_on_shape_inputs_per_value():
    rep = backend.prepare(pads_input_model())
    x = np.random.default_rng(4).standard_normal((2, 3)).astype(np.float32)
    for pads in ([1, 0, 0, 2], [0, 1, 1, 0], [1, 0, 0, 2]):
        (y,) = rep.run([x, np.array(pads, np.int64)])
        want = np.pad(x, ((pads[0], pads[2]), (pads[1], pads[3])))
        np.testing.assert_array_equal(y, want)
    assert len(rep.cache) == 2  # one import per distinct value
    assert rep.specialized == ["pads"]  # exactly the input the shape depends on


def test_function_expansion_with_an_unused_optional_output():
    # SoftmaxCrossEntropyLoss's body declares log_prob, which a one-output node does not use
    nodes = [helper.make_node("SoftmaxCrossEntropyLoss", ["x", "y"], ["z"], reduction="mean")]
    model = make_model(nodes, [vi("x", T.FLOAT, [3, 5]), vi("y", T.INT64, [3])], [vi("z", T.FLOAT, [])],
                       opset=13)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    y = rng.integers(0, 5, 3).astype(np.int64)
    from onnx.reference import ReferenceEvaluator
    (want,) = ReferenceEvaluator(model).run(None, {"x": x, "y": y})
    (got,) = ir.interpret(from_onnx(model), x, y)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def _external_model(tmp_path):
    w = np.random.default_rng(6).standard_normal((64, 32)).astype(np.float32)
    model = make_model([helper.make_node("Reshape", ["w", "s"], ["y"])], [],
                       [vi("y", T.FLOAT, [32, 64])],
                       [numpy_helper.from_array(w, "w"),
                        numpy_helper.from_array(np.array([32, 64], np.int64), "s")])
    onnx.save_model(model, str(tmp_path / "m.onnx"), save_as_external_data=True,
                    location="m.data", size_threshold=16)
    return w


def test_external_data_that_is_truncated_or_outside_the_folder(tmp_path):
    _external_model(tmp_path)
    data = (tmp_path / "m.data").read_bytes()
    (tmp_path / "m.data").write_bytes(data[:100])
    with pytest.raises(OnnxImportError, match="tensor 'w': external data .* is truncated"):
        from_onnx(str(tmp_path / "m.onnx"))
    proto = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    for t in proto.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../outside.data"
    (tmp_path / "evil.onnx").write_bytes(proto.SerializeToString())
    with pytest.raises(OnnxImportError, match="must be a relative path inside the model's folder|not valid ONNX"):
        from_onnx(str(tmp_path / "evil.onnx"))
    with pytest.raises(OnnxImportError, match="keeps weights in external files; import it from its path"):
        from_onnx(onnx.load(str(tmp_path / "m.onnx"), load_external_data=False))


def test_external_data_loaded_by_onnx_is_accepted(tmp_path):
    w = _external_model(tmp_path)
    (y,) = ir.interpret(from_onnx(onnx.load(str(tmp_path / "m.onnx"))))
    np.testing.assert_array_equal(y, w.reshape(32, 64))
