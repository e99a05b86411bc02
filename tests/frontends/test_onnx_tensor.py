"""ONNX data-movement and tensor-creation converters (frontends/onnx/ops/tensor.py): each model is
imported, run on the reference interpreter with fresh random inputs, and compared with
onnx.reference.ReferenceEvaluator; plus symbolic dims, run-time value inputs, and errors."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler import ir
from frontends import OnnxImportError, from_onnx

RNG = np.random.default_rng(20240611)


def node_model(op: str, inputs: dict[str, Any], n_out: int = 1, opset: int = 21,
               shapes: Optional[dict[str, list]] = None, **attrs: Any) -> onnx.ModelProto:
    """One `op` node. `inputs` maps name -> array (a graph input), ("const", array) (an
    initializer) or None (an omitted optional input); `shapes` overrides graph-input shapes
    (symbolic dims as strings)."""
    names, graph_in, inits = [], [], []
    for name, v in inputs.items():
        names.append("" if v is None else name)
        if v is None:
            continue
        if isinstance(v, tuple):
            inits.append(numpy_helper.from_array(np.asarray(v[1]), name))
        else:
            shape = (shapes or {}).get(name, list(np.shape(v)))
            elem = helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype)
            graph_in.append(helper.make_tensor_value_info(name, elem, shape))
    while names and not names[-1]:
        names.pop()
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, names, outs, name=f"{op.lower()}_node", **attrs)
    opsets = [helper.make_opsetid("", opset)]
    # output types: the checker wants them, so take dtype and rank from the reference's result
    untyped = helper.make_model(helper.make_graph(
        [node], "g", graph_in, [helper.make_empty_tensor_value_info(o) for o in outs], inits),
        opset_imports=opsets)
    try:
        results = ReferenceEvaluator(untyped).run(None, feeds_of(inputs))
        types = [(helper.np_dtype_to_tensor_dtype(np.asarray(r).dtype), np.ndim(r))
                 for r in results]
    except Exception:  # the reference rejects it too (error tests): any output type will do
        types = [(onnx.TensorProto.FLOAT, 1)] * n_out
    graph = helper.make_graph([node], "g", graph_in,
                              [helper.make_tensor_value_info(o, t, [None] * r)
                               for o, (t, r) in zip(outs, types)], inits)
    return helper.make_model(graph, opset_imports=opsets)


def feeds_of(inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in inputs.items()
            if v is not None and not isinstance(v, tuple)}


def check(model: onnx.ModelProto, feeds: dict[str, np.ndarray], rtol: float = 1e-5,
          atol: float = 1e-6) -> list[np.ndarray]:
    """Import and interpret `model`; compare every output with ReferenceEvaluator."""
    module = from_onnx(model)
    got = ir.interpret(module, *feeds.values())
    want = ReferenceEvaluator(model).run(None, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
        if w.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol, atol)
    return got


def rand(*shape: int, dtype: Any = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def run(op: str, inputs: dict[str, Any], n_out: int = 1, opset: int = 21, rtol: float = 1e-5,
        atol: float = 1e-6, **attrs: Any) -> list[np.ndarray]:
    return check(node_model(op, inputs, n_out, opset, **attrs), feeds_of(inputs), rtol, atol)


def i64(*values: int) -> tuple[str, np.ndarray]:
    return ("const", np.asarray(values, np.int64))


def scalar(value: Any, dtype: Any = np.int64) -> tuple[str, np.ndarray]:
    return ("const", np.asarray(value, dtype))


# --- numerics against the ONNX reference -------------------------------------------------------


@pytest.mark.parametrize("perm", [None, [0, 2, 1], [2, 0, 1]])
def test_transpose(perm):
    run("Transpose", {"x": rand(2, 3, 4)}, **({} if perm is None else {"perm": perm}))


@pytest.mark.parametrize("axis,opset", [(0, 9), (1, 13), (3, 21), (-1, 21), (-3, 11)])
def test_flatten(axis, opset):
    run("Flatten", {"x": rand(2, 3, 4, 5)}, axis=axis, opset=opset)


@pytest.mark.parametrize("opset,inputs,n,attrs", [
    (11, {}, 3, {"axis": 1}),                                  # equal parts
    (11, {}, 2, {"axis": -1, "split": [1, 6]}),                # attribute sizes
    (13, {"split": i64(2, 0, 4)}, 3, {"axis": 1}),             # input sizes, an empty part
    (18, {}, 4, {"axis": 1, "num_outputs": 4}),                # uneven: 2, 2, 2, 0
    (18, {}, 3, {"axis": 2, "num_outputs": 3}),                # uneven: 3, 3, 1
])
def test_split(opset, inputs, n, attrs):
    run("Split", {"x": rand(2, 6, 7), **inputs}, n_out=n, opset=opset, **attrs)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_modes(mode):
    pads = i64(1, 0, 2, 0, 2, 1)
    run("Pad", {"x": rand(3, 4, 5), "pads": pads}, opset=19, mode=mode)


def test_pad_attribute_form_negative_pads_and_axes():
    run("Pad", {"x": rand(3, 4)}, opset=2, pads=[1, 0, 0, 2], value=1.5)
    run("Pad", {"x": rand(3, 4, 5), "pads": i64(2, 2, 1, 0), "constant_value": None,
                "axes": i64(-1, 0)}, opset=18)
    x = rand(3, 4)  # opset 1 names the attribute "paddings"
    (y,) = ir.interpret(from_onnx(node_model("Pad", {"x": x}, opset=1, paddings=[0, 1, 2, 0],
                                             mode="edge")), x)
    np.testing.assert_array_equal(y, np.pad(x, [(0, 2), (1, 0)], mode="edge"))
    x = rand(3, 4, 5)  # negative pads crop (the ONNX reference rejects them)
    model = node_model("Pad", {"x": x, "pads": i64(-1, 2, 1, 0), "constant_value": None,
                               "axes": i64(-1, 0)}, opset=18)
    (y,) = ir.interpret(from_onnx(model), x)
    np.testing.assert_array_equal(y, np.pad(x[:, :, 1:], [(2, 0), (0, 0), (0, 1)]))
    run("Pad", {"x": RNG.integers(-9, 9, (3, 4)).astype(np.int32), "pads": i64(1, 1, 1, 1),
                "constant_value": ("const", np.asarray(7, np.int32))}, opset=13)


def test_pad_run_time_constant_value_selects_with_a_mask():
    inputs = {"x": rand(3, 4), "pads": i64(0, 2, 1, 0), "value": np.asarray(-2.5, np.float32)}
    module = from_onnx(node_model("Pad", inputs, opset=13))
    assert "where" in ir.print_module(module)
    check(node_model("Pad", inputs, opset=13), feeds_of(inputs))
    big = {"x": RNG.integers(0, 9, (2, 3)), "pads": i64(1, 0, 0, 1),
           "value": ("const", np.asarray(2**60 + 1, np.int64))}  # not exact as a float
    run("Pad", big, opset=13)


def test_tile():
    run("Tile", {"x": rand(2, 3), "repeats": i64(2, 3)}, opset=13)
    x = rand(2, 3)  # opset 1: a count and an axis (the ONNX reference has only the new form)
    model = node_model("Tile", {"x": x, "tiles": scalar(3), "axis": scalar(1)}, opset=1)
    np.testing.assert_array_equal(ir.interpret(from_onnx(model), x)[0], np.tile(x, (1, 3)))


def test_gathers():
    x = rand(3, 4, 5)
    idx = RNG.integers(-4, 4, (3, 2, 5)).astype(np.int64)
    run("GatherElements", {"x": x, "i": idx}, axis=1)
    nd = np.stack([RNG.integers(0, 3, (2, 6)), RNG.integers(-4, 4, (2, 6))], -1).astype(np.int32)
    run("GatherND", {"x": x, "i": nd})
    batch = RNG.integers(0, 4, (3, 2, 1)).astype(np.int64)
    run("GatherND", {"x": x, "i": batch}, batch_dims=1)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatters(reduction):
    x = rand(4, 5)
    idx = RNG.integers(-4, 4, (2, 5)).astype(np.int64)
    run("ScatterElements", {"x": x, "i": idx, "u": rand(2, 5)}, opset=18, reduction=reduction)
    nd = RNG.integers(0, 4, (3, 1)).astype(np.int64)
    if reduction == "none":
        nd = np.array([[2], [0], [3]], np.int64)  # distinct: "none" with duplicates is undefined
    run("ScatterND", {"x": x, "i": nd, "u": rand(3, 5)}, opset=18, reduction=reduction)


def test_scatter_deprecated_alias():
    x, u, idx = rand(3, 3), rand(2, 3), np.array([[1, 0, 2], [0, 2, 1]], np.int64)
    model = node_model("Scatter", {"x": x, "i": idx, "u": u}, opset=9, axis=0)
    want = x.copy()
    np.put_along_axis(want, idx, u, axis=0)
    np.testing.assert_array_equal(ir.interpret(from_onnx(model), x, idx, u)[0], want)


@pytest.mark.parametrize("opset,largest,axis", [(1, 1, -1), (10, 1, 0), (11, 0, 1), (11, 1, -2)])
def test_topk(opset, largest, axis):
    x = RNG.integers(0, 6, (4, 5)).astype(np.float32)  # ties: lower index first
    inputs = {"x": x} if opset < 10 else {"x": x, "k": i64(3)}
    attrs = {"k": 3} if opset < 10 else {}
    if opset >= 11:
        attrs["largest"] = largest
    run("TopK", inputs, n_out=2, opset=opset, axis=axis, **attrs)


def test_one_hot():
    indices = RNG.integers(-5, 7, (3, 4)).astype(np.int64)  # some out of range: all off
    for axis in (-1, 0, 1):
        run("OneHot", {"i": indices, "d": scalar(5.0, np.float32),
                       "v": ("const", np.asarray([-1.0, 3.0], np.float32))}, axis=axis)
    run("OneHot", {"i": indices.astype(np.float32), "d": scalar(5),
                   "v": ("const", np.asarray([2**62 + 1, 7], np.int64))})


def test_one_hot_run_time_values():
    run("OneHot", {"i": RNG.integers(0, 4, (5,)).astype(np.int32), "d": scalar(4),
                   "v": np.asarray([0.5, -2.0], np.float32)}, opset=11)


@pytest.mark.parametrize("upper", [0, 1])
def test_trilu(upper):
    x = rand(2, 4, 5)
    for k in (None, -1, 0, 2):
        inputs = {"x": x} if k is None else {"x": x, "k": i64(k)}
        run("Trilu", inputs, opset=14, upper=upper)
    run("Trilu", {"x": x, "k": np.asarray(1, np.int64)}, opset=14, upper=upper)  # run time


def test_eye_like():
    run("EyeLike", {"x": rand(3, 5)}, k=1)
    run("EyeLike", {"x": rand(4, 3)}, k=-2, dtype=onnx.TensorProto.INT32)


def test_range_constant_inputs_fold():
    for dtype, (s, l, d) in ((np.int64, (10, 1, -3)), (np.float32, (0.5, 3.2, 0.3)),
                             (np.int32, (2, 2, 1))):
        inputs = {n: ("const", np.asarray(v, dtype)) for n, v in zip("sld", (s, l, d))}
        model = node_model("Range", inputs)
        assert {op.name for op in from_onnx(model).functions[0].ops} <= {"constant"}
        check(model, {})


@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
@pytest.mark.parametrize("periodic", [0, 1])
def test_windows(op, periodic):
    run(op, {"n": scalar(10)}, opset=17, periodic=periodic)
    run(op, {"n": scalar(7, np.int32)}, opset=17, periodic=periodic,
        output_datatype=onnx.TensorProto.DOUBLE)


def test_mel_weight_matrix():
    inputs = {"bins": scalar(8), "len": scalar(64), "rate": scalar(16000),
              "lo": scalar(20.0, np.float32), "hi": scalar(7000.0, np.float32)}
    run("MelWeightMatrix", inputs, opset=17)


@pytest.mark.parametrize("c", [1, 2])
@pytest.mark.parametrize("inverse,onesided", [(0, 0), (0, 1), (1, 0)])
def test_dft(c, inverse, onesided):
    x = rand(2, 8, 3, c)
    run("DFT", {"x": x}, opset=17, axis=1, inverse=inverse, onesided=onesided, rtol=1e-4,
        atol=1e-5)
    for length in (5, 11):  # truncated, zero-padded
        run("DFT", {"x": x, "n": scalar(length), "axis": scalar(-2)}, opset=20, inverse=inverse,
            onesided=onesided, rtol=1e-4, atol=1e-5)


def test_irfft():
    x = rand(3, 5, 2)
    run("DFT", {"x": x, "n": None, "axis": scalar(1)}, opset=20, inverse=1, onesided=1,
        rtol=1e-4, atol=1e-5)
    run("DFT", {"x": x, "n": scalar(9), "axis": scalar(1)}, opset=20, inverse=1, onesided=1,
        rtol=1e-4, atol=1e-5)


def test_stft():
    x = rand(2, 32, 1)
    run("STFT", {"x": x, "step": scalar(6), "w": None, "n": scalar(8)}, opset=17, rtol=1e-4,
        atol=1e-5)
    run("STFT", {"x": rand(1, 20, 2), "step": scalar(4), "w": rand(6)}, opset=17, onesided=0,
        rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("time_axis", [0, 1])
def test_reverse_sequence_run_time_lengths(time_axis):
    x = rand(4, 5, 3) if time_axis == 0 else rand(5, 4, 3)
    lens = RNG.integers(0, 5, (5,)).astype(np.int64)
    run("ReverseSequence", {"x": x, "lens": lens}, time_axis=time_axis, batch_axis=1 - time_axis)


def test_data_dependent_ops_fold_known_inputs():
    x = RNG.integers(-2, 3, (3, 4)).astype(np.float32)
    run("NonZero", {"x": ("const", x)})
    for attrs in ({}, {"axis": 1}, {"axis": -2, "sorted": 0}):
        run("Unique", {"x": ("const", x)}, n_out=4, **attrs)
    run("Unique", {"x": ("const", x.reshape(-1))}, n_out=3, sorted=0)
    # unsorted along axis 1 (the ONNX reference takes the rows along axis 0 there)
    x = np.array([[3, 1, 3, 2], [0, 5, 0, 2]], np.int32)
    model = node_model("Unique", {"x": ("const", x)}, n_out=4, axis=1, sorted=0)
    y, first, inverse, counts = ir.interpret(from_onnx(model))
    np.testing.assert_array_equal(y, [[3, 1, 2], [0, 5, 2]])
    np.testing.assert_array_equal(first, [0, 1, 3])
    np.testing.assert_array_equal(inverse, [0, 1, 0, 2])
    np.testing.assert_array_equal(counts, [2, 1, 1])
    cond = np.array([True, False, True])
    run("Compress", {"x": rand(3, 4), "c": ("const", cond)}, axis=0)  # data at run time
    run("Compress", {"x": rand(3, 4), "c": ("const", cond)})           # flattened
    run("Compress", {"x": rand(3, 4), "c": ("const", np.array([0, 1, 1, 0], bool))}, axis=-1)


# --- symbolic dims ------------------------------------------------------------------------------


def test_symbolic_batch_dims_survive():
    x = rand(2, 6, 4)
    model = node_model("Split", {"x": x}, n_out=2, opset=18, shapes={"x": ["batch", 6, 4]},
                       axis=1, num_outputs=2)
    text = ir.print_module(from_onnx(model))
    assert "f32[?batch,3,4]" in text
    for n in (1, 3):
        check(model, {"x": rand(n, 6, 4)})
    model = node_model("Pad", {"x": x, "pads": i64(0, 1, 0, 0, 2, 0)}, opset=13,
                       shapes={"x": ["batch", 6, 4]}, mode="edge")
    assert "f32[?batch,9,4]" in ir.print_module(from_onnx(model))
    check(model, {"x": rand(5, 6, 4)})
    model = node_model("ReverseSequence", {"x": x, "lens": np.array([1, 6], np.int64)},
                       shapes={"x": ["batch", 6, 4], "lens": ["batch"]}, time_axis=1, batch_axis=0)
    check(model, {"x": rand(3, 6, 4), "lens": np.array([0, 6, 3], np.int64)})


def test_split_of_a_shape_vector_keeps_its_dims():
    """Shape -> Split -> Concat -> Reshape: the parts of a symbolic shape stay dims."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Split", ["s", "sizes"], ["head", "tail"], axis=0),
             helper.make_node("Concat", ["head", "minus1"], ["shp"], axis=0),
             helper.make_node("Reshape", ["x", "shp"], ["y"])]
    inits = [numpy_helper.from_array(np.array([2, 2], np.int64), "sizes"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", onnx.TensorProto.FLOAT, ["b", "s", 3, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["b", "s", 12])], inits)
    module = from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    assert "reshape(%x) {shape = [?b, ?s, -1]}" in ir.print_module(module)
    x = rand(2, 5, 3, 4)
    np.testing.assert_array_equal(ir.interpret(module, x)[0], x.reshape(2, 5, 12))


def test_eye_like_of_symbolic_shape():
    model = node_model("EyeLike", {"x": rand(3, 4)}, shapes={"x": ["n", "m"]}, k=1)
    assert "f32[?n,?m]" in ir.print_module(from_onnx(model))
    check(model, {"x": rand(4, 6)})


def test_range_over_a_symbolic_dim_is_cumsum():
    """Range(0, Shape(x)[1], 1): position ids of a dynamic sequence length."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["n"], axis=0),
             helper.make_node("Range", ["zero", "n", "one"], ["y"])]
    inits = [numpy_helper.from_array(np.asarray(v, np.int64), k) for k, v in (("zero", 0),
                                                                              ("one", 1))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", onnx.TensorProto.FLOAT, [2, "seq"])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.INT64, ["seq"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    module = from_onnx(model)
    assert "i64[?seq]" in ir.print_module(module)
    for n in (1, 7):
        (y,) = ir.interpret(module, rand(2, n))
        np.testing.assert_array_equal(y, np.arange(n))


# --- errors -------------------------------------------------------------------------------------


def test_errors_name_the_node():
    bad_mode = node_model("Pad", {"x": rand(2, 3), "pads": i64(1, 1, 1, 1)}, opset=19,
                          mode="mirror")
    with pytest.raises(OnnxImportError, match=r"Pad node 'pad_node'.*mode 'mirror'"):
        from_onnx(bad_mode)
    with pytest.raises(OnnxImportError, match=r"NonZero node 'nonzero_node'.*depends on the"):
        from_onnx(node_model("NonZero", {"x": rand(3)}))
    with pytest.raises(OnnxImportError, match=r"TopK node 'topk_node'.*\(K\) must be a constant"):
        from_onnx(node_model("TopK", {"x": rand(3), "k": np.asarray([2], np.int64)}, n_out=2))
    with pytest.raises(OnnxImportError, match=r"Range node 'range_node'"):
        from_onnx(node_model("Range", {"s": np.asarray(0, np.int64), "l": np.asarray(5, np.int64),
                                       "d": np.asarray(1, np.int64)}))
    with pytest.raises(OnnxImportError, match=r"ScatterElements node .*reduction 'max'"):
        from_onnx(node_model("ScatterElements", {"x": rand(3), "i": np.zeros(1, np.int64),
                                                 "u": rand(1)}, opset=16, reduction="max"))
