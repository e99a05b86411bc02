"""ONNX converters of frontends/onnx/ops/nn.py: small models are imported, run on the reference
interpreter and compared with onnx.reference.ReferenceEvaluator (or a NumPy identity) on fresh
random inputs, across the attribute forms and opsets whose semantics differ; plus symbolic dims
and the errors a user sees."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler import ir
from frontends import OnnxImportError, from_onnx
from frontends.onnx.importer import Importer, onnx_dtype

Inputs = dict[str, Optional[np.ndarray]]


def rand(*shape: int, seed: int = 0, dtype: Any = np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def make_model(op: str, inputs: Inputs, opset: int, const: Sequence[str] = (),
               outputs: Sequence[str] = ("y",), shapes: Optional[dict] = None,
               **attrs: Any) -> onnx.ModelProto:
    """A one-node model: graph inputs (initializers for names in `const`, omitted optional
    inputs for None), outputs typed by ONNX shape inference; `shapes` overrides an input's
    declared shape (symbolic dims as strings)."""
    names = [n if a is not None else "" for n, a in inputs.items()]
    node = helper.make_node(op, names, list(outputs), name="node0", **attrs)
    shapes = shapes or {}
    vis = [helper.make_tensor_value_info(n, onnx_dtype(ir.dtypes.dtype(a.dtype)),
                                         shapes.get(n, a.shape))
           for n, a in inputs.items() if a is not None and n not in const]
    inits = [numpy_helper.from_array(inputs[n], n) for n in const]  # type: ignore[arg-type]
    graph = helper.make_graph([node], "g", vis, [], inits)
    graph.output.extend(helper.make_empty_tensor_value_info(n) for n in outputs if n)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    inferred = onnx.shape_inference.infer_shapes(model).graph
    first = next(vi for vi in list(vis) + list(graph.input) if vi.type.HasField("tensor_type"))
    for out, typed in zip(model.graph.output, inferred.output):
        # ops whose old schemas have no type inference get the first input's type
        out.type.CopyFrom(typed.type if typed.type.HasField("tensor_type") else first.type)
    return model


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ir.interpret(from_onnx(model), *feeds.values())


def check(op: str, inputs: Inputs, opset: int, const: Sequence[str] = (),
          outputs: Sequence[str] = ("y",), rtol: float = 1e-5, atol: float = 1e-5,
          **attrs: Any) -> list[np.ndarray]:
    """Import and interpret; compare every output with ONNX's reference evaluator."""
    model = make_model(op, inputs, opset, const, outputs, **attrs)
    feeds = {n: a for n, a in inputs.items() if a is not None and n not in const}
    want = ReferenceEvaluator(model).run(None, feeds)
    got = run(model, feeds)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape, (op, g.shape, w.shape)
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol,
                                   atol=atol)
    return got


def ops_of(model: onnx.ModelProto) -> list[str]:
    return [op.name for op in from_onnx(model).main.ops]


# --- convolutions and pools -----------------------------------------------------------------------


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"])
def test_conv_auto_pad(auto_pad):
    attrs = dict(strides=[2, 1], dilations=[1, 2], group=2, auto_pad=auto_pad)
    if auto_pad == "NOTSET":
        attrs["pads"] = [1, 0, 2, 1]
    check("Conv", {"x": rand(2, 4, 7, 9), "w": rand(6, 2, 3, 2, seed=1), "b": rand(6, seed=2)},
          22, const=("w", "b"), **attrs)


def test_conv_symbolic_dims_with_same_padding():
    x = rand(2, 3, 5, 6)
    model = make_model("Conv", {"x": x, "w": rand(4, 3, 3, 3, seed=1)}, 11, const=("w",),
                       shapes={"x": ["batch", 3, "h", "w"]}, auto_pad="SAME_LOWER",
                       kernel_shape=[3, 3])
    module = from_onnx(model)
    assert module.main.ops[-1].results[0].type.shape == ("batch", 4, "h", "w")
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    (got,) = ir.interpret(module, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_auto_pad_with_stride_needs_static_size():
    model = make_model("Conv", {"x": rand(1, 3, 5, 6), "w": rand(4, 3, 3, 3)}, 11,
                       const=("w",), shapes={"x": [1, 3, "h", 6]}, auto_pad="SAME_UPPER",
                       strides=[2, 2])
    with pytest.raises(OnnxImportError, match=r"Conv node 'node0'.*static size"):
        from_onnx(model)


@pytest.mark.parametrize("attrs", [
    dict(strides=[3, 2], output_shape=[10, 8]),
    dict(strides=[2, 2], auto_pad="SAME_UPPER"),
    dict(strides=[2, 2], auto_pad="SAME_LOWER", dilations=[2, 1]),
    dict(strides=[3, 2], output_padding=[1, 1], pads=[1, 0, 0, 1], group=1),
])
def test_conv_transpose(attrs):
    check("ConvTranspose", {"x": rand(1, 2, 3, 3), "w": rand(2, 3, 3, 3, seed=1)}, 22,
          const=("w",), **attrs)


def test_conv_transpose_output_shape_beyond_output_padding():
    """A larger output_shape than output_padding can reach: zeros at the end of each axis."""
    x, w = rand(1, 2, 3, 3), rand(2, 3, 3, 3, seed=1)

    def out(shape):
        model = make_model("ConvTranspose", {"x": x, "w": w}, 22, const=("w",), strides=[3, 2],
                           output_shape=shape)
        return run(model, {"x": x})[0]

    big, small = out([13, 10]), out([11, 8])
    np.testing.assert_allclose(big[:, :, :11, :8], small, rtol=1e-6)
    assert not big[:, :, 11:].any() and not big[:, :, :, 8:].any()


def test_max_pool_indices_and_avg_pool_dilations():
    x = rand(2, 3, 7, 8)
    check("MaxPool", {"x": x}, 12, outputs=("y", "i"), kernel_shape=[3, 2], strides=[2, 2],
          pads=[1, 0, 1, 1])
    check("MaxPool", {"x": x}, 12, outputs=("y", "i"), kernel_shape=[2, 2], strides=[1, 2],
          storage_order=1)
    for include in (0, 1):
        for ceil in (0, 1):
            check("AveragePool", {"x": x}, 19, kernel_shape=[3, 2], strides=[2, 3],
                  dilations=[2, 2], pads=[1, 1, 1, 0], count_include_pad=include,
                  ceil_mode=ceil)
    check("AveragePool", {"x": x}, 11, kernel_shape=[3, 3], auto_pad="SAME_UPPER",
          strides=[2, 2])


@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pools(p):
    x = rand(1, 2, 6, 5)
    check("LpPool", {"x": x}, 18, kernel_shape=[2, 3], strides=[2, 1], pads=[1, 0, 0, 1], p=p,
          rtol=1e-4)
    (got,) = run(make_model("GlobalLpPool", {"x": x}, 2, p=p), {"x": x})
    want = (np.abs(x.astype(np.float64)) ** p).sum(axis=(2, 3), keepdims=True) ** (1 / p)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    check("GlobalAveragePool", {"x": x}, 1)
    check("GlobalMaxPool", {"x": x}, 22)


def test_max_unpool():
    pool = make_model("MaxPool", {"x": rand(1, 2, 4, 4)}, 12, outputs=("y", "i"),
                      kernel_shape=[2, 2], strides=[2, 2])
    x, idx = ReferenceEvaluator(pool).run(None, {"x": rand(1, 2, 4, 4)})
    check("MaxUnpool", {"x": x, "i": idx}, 11, kernel_shape=[2, 2], strides=[2, 2])
    feeds = {"x": x, "i": idx, "shape": np.array([1, 2, 5, 4], np.int64)}
    model = make_model("MaxUnpool", feeds, 11, const=("shape",), kernel_shape=[2, 2],
                       strides=[2, 2])
    model.graph.output[0].type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT,
                                                                      [1, 2, 5, 4]))
    (want,) = ReferenceEvaluator(model).run(None, {"x": x, "i": idx})
    np.testing.assert_array_equal(run(model, {"x": x, "i": idx})[0], want)


# --- normalizations -------------------------------------------------------------------------------


def test_batch_norm_opsets_and_training_error():
    x = rand(2, 3, 4, 5)
    c = [np.abs(rand(3, seed=i)) + 0.5 for i in range(4)]
    feeds = {"x": x, "s": c[0], "b": c[1], "m": c[2], "v": c[3]}
    for opset in (14, 15):
        check("BatchNormalization", feeds, opset, const=("s", "b", "m", "v"), epsilon=1e-3)
    per_c = [a.reshape(3, 1, 1) for a in c]
    want = (x - per_c[2]) / np.sqrt(per_c[3] + 1e-3) * per_c[0] + per_c[1]
    for opset in (7, 9):  # (the reference evaluator's older versions disagree with the spec)
        (got,) = run(make_model("BatchNormalization", feeds, opset, const=("s", "b", "m", "v"),
                                epsilon=1e-3), {"x": x})
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # opset 15 lets the running statistics have another float type
    mixed = dict(feeds, m=c[2].astype(np.float64), v=c[3].astype(np.float64))
    check("BatchNormalization", mixed, 15, const=("s", "b", "m", "v"))
    model = make_model("BatchNormalization", feeds, 15, const=("s", "b", "m", "v"),
                       training_mode=1)
    with pytest.raises(OnnxImportError, match="BatchNormalization node 'node0'.*training_mode"):
        from_onnx(model)


def test_layer_group_rms_instance_norm_and_lrn():
    x = rand(2, 6, 3, 4)
    check("LayerNormalization", {"x": x, "s": rand(3, 4, seed=1), "b": rand(3, 4, seed=2)}, 17,
          outputs=("y", "mean", "inv"), axis=-2, epsilon=1e-3)
    check("LayerNormalization", {"x": x, "s": rand(4, seed=1)}, 17)
    # opset 18's per-group scale (the checker rejects that deprecated schema: bypass it)
    scale, bias = rand(3, seed=1), rand(3, seed=2)
    model = make_model("GroupNormalization", {"x": x, "s": scale, "b": bias}, 18,
                       const=("s", "b"), num_groups=3)
    (got,) = ir.interpret(Importer(model).run(), x)
    g = x.reshape(2, 3, -1).astype(np.float64)
    norm = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5))
    want = norm.reshape(2, 3, 2, 3, 4) * scale.reshape(3, 1, 1, 1) + bias.reshape(3, 1, 1, 1)
    np.testing.assert_allclose(got, want.reshape(x.shape), rtol=1e-4, atol=1e-5)
    check("GroupNormalization", {"x": x, "s": rand(6, seed=1), "b": rand(6, seed=2)}, 21,
          num_groups=2, epsilon=1e-2)
    check("RMSNormalization", {"x": x, "s": rand(4, seed=1)}, 23)
    check("InstanceNormalization", {"x": x, "s": rand(6, seed=1), "b": rand(6, seed=2)}, 6)
    for size, opset, kw in ((3, 13, dict(alpha=0.2, beta=0.6, bias=1.5)), (4, 1, {})):
        (got,) = run(make_model("LRN", {"x": x}, opset, size=size, **kw), {"x": x})
        sq = np.pad(x.astype(np.float64) ** 2, [(0, 0), ((size - 1) // 2, size // 2), (0, 0),
                                                 (0, 0)])
        window = sum(sq[:, i:i + 6] for i in range(size))
        want = x / (kw.get("bias", 1.0) + kw.get("alpha", 1e-4) / size * window) ** \
            kw.get("beta", 0.75)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_dropout_is_identity_with_all_true_mask():
    x = rand(3, 4)
    y, mask = run(make_model("Dropout", {"x": x, "r": np.asarray(0.3, np.float32),
                                         "t": np.asarray(False)}, 13, const=("r", "t"),
                             outputs=("y", "mask")), {"x": x})
    np.testing.assert_array_equal(y, x)
    assert mask.dtype == np.bool_ and mask.all()
    y, mask = run(make_model("Dropout", {"x": x}, 7, outputs=("y", "mask")), {"x": x})
    assert mask.dtype == np.float32 and (mask == 1).all()
    model = make_model("Dropout", {"x": x, "r": np.asarray(0.3, np.float32),
                                   "t": np.asarray(True)}, 13, const=("r", "t"))
    with pytest.raises(OnnxImportError, match="Dropout node 'node0'.*training_mode"):
        from_onnx(model)


# --- resize and rearranging -----------------------------------------------------------------------


def test_resize_scales_sizes_roi_and_axes():
    x = rand(1, 2, 5, 6)
    empty = np.zeros(0, np.float32)
    # 0.6 is not out/in: the coordinate transform needs the float scale (resize_general)
    model = make_model("Resize", {"x": x, "roi": empty, "s": np.array([1, 1, 0.6, 0.6],
                                                                      np.float32)}, 13,
                       const=("roi", "s"), mode="linear")
    assert "resize_general" in ops_of(model)
    check("Resize", {"x": x, "roi": empty, "s": np.array([1, 1, 0.6, 0.6], np.float32)}, 13,
          const=("roi", "s"), mode="linear")
    # exact scales and sizes map to the IR's resize
    model = make_model("Resize", {"x": x, "roi": None, "s": np.array([1, 1, 2, 0.5],
                                                                     np.float32)}, 13,
                       const=("s",), mode="nearest")
    assert "resize" in ops_of(model)
    check("Resize", {"x": x, "roi": None, "s": None, "sz": np.array([7, 4], np.int64)}, 18,
          const=("sz",), axes=[2, 3], mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1)
    check("Resize", {"x": x, "roi": None, "s": np.array([0.5, 0.7], np.float32)}, 18,
          const=("s",), axes=[3, 2], mode="linear", antialias=1)
    check("Resize", {"x": x, "roi": None, "s": None, "sz": np.array([3, 3], np.int64)}, 18,
          const=("sz",), axes=[2, 3], keep_aspect_ratio_policy="not_larger")
    check("Resize", {"x": x, "roi": np.array([0.1, 0.2, 0.9, 1.1], np.float32), "s": None,
                     "sz": np.array([4, 4], np.int64)}, 18, const=("roi", "sz"), axes=[2, 3],
          mode="linear", coordinate_transformation_mode="tf_crop_and_resize",
          extrapolation_value=-3.0)
    model = make_model("Resize", {"x": x, "roi": empty, "s": np.array([1, 1, 1.5, 2.5],
                                                                      np.float32)}, 11,
                       const=("roi", "s"), coordinate_transformation_mode="tf_half_pixel_for_nn")
    (got,) = run(model, {"x": x})
    rows = np.clip(np.ceil((np.arange(7) + 0.5) / 1.5 - 0.5), 0, 4).astype(int)
    cols = np.clip(np.ceil((np.arange(15) + 0.5) / 2.5 - 0.5), 0, 5).astype(int)
    np.testing.assert_array_equal(got, x[:, :, rows][:, :, :, cols])


def test_resize_symbolic_batch_and_upsample():
    x = rand(3, 2, 4, 3)
    model = make_model("Resize", {"x": x, "roi": None, "s": np.array([1, 1, 2, 2], np.float32)},
                       19, const=("s",), shapes={"x": ["n", 2, 4, 3]}, mode="linear")
    (got,) = run(model, {"x": x})
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert from_onnx(model).main.output_types[0].shape == ("n", 2, 8, 6)
    up = run(make_model("Upsample", {"x": x, "s": np.array([1, 1, 2, 3], np.float32)}, 9,
                        const=("s",)), {"x": x})[0]
    np.testing.assert_array_equal(up, x.repeat(2, axis=2).repeat(3, axis=3))
    up = run(make_model("Resize", {"x": x, "s": np.array([1, 1, 2, 1], np.float32)}, 10,
                        const=("s",)), {"x": x})[0]
    np.testing.assert_array_equal(up, x.repeat(2, axis=2))


def test_depth_to_space_space_to_depth():
    x = rand(2, 8, 3, 2)
    for mode in ("DCR", "CRD"):
        check("DepthToSpace", {"x": x}, 13, blocksize=2, mode=mode)
    y = rand(2, 2, 4, 6)
    check("SpaceToDepth", {"x": y}, 13, blocksize=2)
    want = y.reshape(2, 2, 2, 2, 3, 2).transpose(0, 1, 3, 5, 2, 4).reshape(2, 8, 2, 3)
    (got,) = run(make_model("SpaceToDepth", {"x": y}, 28, blocksize=2, mode="CRD"), {"x": y})
    np.testing.assert_array_equal(got, want)
    # CRD space_to_depth inverts CRD depth_to_space
    (back,) = run(make_model("DepthToSpace", {"x": got}, 13, blocksize=2, mode="CRD"),
                  {"x": got})
    np.testing.assert_array_equal(back, y)


# --- recurrent nets -------------------------------------------------------------------------------


def _rnn_inputs(kind: str, dirs: int, seq: int = 4, batch: int = 3, inp: int = 5,
                hidden: int = 4) -> Inputs:
    g = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
    return {"x": rand(seq, batch, inp), "w": rand(dirs, g * hidden, inp, seed=1) * 0.5,
            "r": rand(dirs, g * hidden, hidden, seed=2) * 0.5,
            "b": rand(dirs, 2 * g * hidden, seed=3) * 0.5}


@pytest.mark.parametrize("kind, attrs", [
    ("RNN", dict(direction="bidirectional")),
    ("GRU", dict(direction="reverse")),
    ("GRU", dict(linear_before_reset=1, direction="bidirectional")),
    ("LSTM", dict(direction="bidirectional")),
])
def test_recurrent_matches_reference(kind, attrs):
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    inputs = _rnn_inputs(kind, dirs)
    outputs = ("y", "y_h", "y_c") if kind == "LSTM" else ("y", "y_h")
    check(kind, inputs, 14, const=("w", "r", "b"), outputs=outputs, hidden_size=4, **attrs)


def test_activations_clip_and_input_forget_match_numpy():
    """ONNX's reference evaluator ignores activations/clip/input_forget: compare with NumPy."""
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    inputs = _rnn_inputs("RNN", 1)
    x, w, r, b = (inputs[k].astype(np.float64) for k in ("x", "w", "r", "b"))
    (y,) = run(make_model("RNN", inputs, 14, const=("w", "r", "b"), hidden_size=4,
                          activations=["Relu"], clip=0.7), {"x": inputs["x"]})
    h = np.zeros((3, 4))
    for t in range(4):
        h = np.maximum(np.clip(x[t] @ w[0].T + h @ r[0].T + b[0, :4] + b[0, 4:], -0.7, 0.7), 0)
        np.testing.assert_allclose(y[t, 0], h, rtol=1e-5, atol=1e-6)
    inputs = _rnn_inputs("LSTM", 1)
    x, w, r, b = (inputs[k].astype(np.float64) for k in ("x", "w", "r", "b"))
    y, = run(make_model("LSTM", inputs, 14, const=("w", "r", "b"), hidden_size=4,
                        input_forget=1, activations=["HardSigmoid", "Elu", "Tanh"],
                        activation_alpha=[0.3, 0.5], activation_beta=[0.4]), {"x": inputs["x"]})
    h, c = np.zeros((3, 4)), np.zeros((3, 4))
    for t in range(4):
        g = x[t] @ w[0].T + h @ r[0].T + b[0, :16] + b[0, 16:]
        i, o, _, cc = np.split(g, 4, axis=1)
        i, o = np.clip(0.3 * i + 0.4, 0, 1), np.clip(0.3 * o + 0.4, 0, 1)
        c = (1 - i) * c + i * np.where(cc > 0, cc, 0.5 * np.expm1(cc))
        h = o * np.tanh(c)
        np.testing.assert_allclose(y[t, 0], h, rtol=1e-5, atol=1e-6)
    assert sigmoid(0.0) == 0.5


def test_lstm_peepholes_initial_state_and_layout():
    inputs = _rnn_inputs("LSTM", 1)
    inputs.update(lens=None, h0=rand(1, 3, 4, seed=5), c0=rand(1, 3, 4, seed=6),
                  p=rand(1, 12, seed=7))
    check("LSTM", inputs, 14, const=("w", "r", "b", "p"), outputs=("y", "y_h", "y_c"),
          hidden_size=4)
    # layout=1 is layout=0 with batch and sequence (and direction) axes swapped
    plain = _rnn_inputs("GRU", 2)
    y0, h0 = run(make_model("GRU", plain, 14, const=("w", "r", "b"), outputs=("y", "y_h"),
                            hidden_size=4, direction="bidirectional"), {"x": plain["x"]})
    xb = plain["x"].transpose(1, 0, 2)
    y1, h1 = run(make_model("GRU", dict(plain, x=xb), 14, const=("w", "r", "b"),
                            outputs=("y", "y_h"), hidden_size=4, direction="bidirectional",
                            layout=1), {"x": xb})
    np.testing.assert_allclose(y1, y0.transpose(2, 0, 1, 3), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h1, h0.transpose(1, 0, 2), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_sequence_lens_match_truncated_sequences(direction):
    """With sequence_lens, each batch entry behaves as if its sequence ended there: zero
    outputs past the end, and the state of its last valid step."""
    inputs = _rnn_inputs("LSTM", 1)
    lens = np.array([4, 2, 3], np.int32)
    model = make_model("LSTM", dict(inputs, lens=lens), 14, const=("w", "r", "b"),
                       outputs=("y", "y_h", "y_c"), hidden_size=4, direction=direction)
    y, h, c = run(model, {"x": inputs["x"], "lens": lens})
    for bi, n in enumerate(lens):
        part = dict(inputs, x=inputs["x"][:n, bi:bi + 1])
        yp, hp, cp = run(make_model("LSTM", part, 14, const=("w", "r", "b"),
                                    outputs=("y", "y_h", "y_c"), hidden_size=4,
                                    direction=direction), {"x": part["x"]})
        np.testing.assert_allclose(y[:n, :, bi:bi + 1], yp, rtol=1e-5, atol=1e-6)
        assert not y[n:, :, bi].any()
        np.testing.assert_allclose(h[:, bi:bi + 1], hp, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c[:, bi:bi + 1], cp, rtol=1e-5, atol=1e-6)


def test_unsupported_activation_is_an_error():
    model = make_model("RNN", _rnn_inputs("RNN", 1), 14, const=("w", "r", "b"),
                       hidden_size=4, activations=["Swish"])
    with pytest.raises(OnnxImportError, match=r"RNN node 'node0'.*activation 'Swish'"):
        from_onnx(model)


# --- sampling ops ---------------------------------------------------------------------------------


def test_grid_sample_affine_grid_roi_align():
    x = rand(2, 3, 5, 6)
    grid = np.random.default_rng(3).uniform(-1.2, 1.2, (2, 4, 3, 2)).astype(np.float32)
    (old,) = run(make_model("GridSample", {"x": x, "g": grid}, 16, mode="bicubic",
                            padding_mode="border"), {"x": x, "g": grid})
    (new,) = check("GridSample", {"x": x, "g": grid}, 20, mode="cubic", padding_mode="border",
                   rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(old, new)
    check("GridSample", {"x": x, "g": grid}, 22, mode="nearest", align_corners=1)
    theta = rand(2, 2, 3, seed=4)
    for align in (0, 1):
        check("AffineGrid", {"t": theta, "size": np.array([2, 3, 4, 5], np.int64)}, 20,
              const=("size",), align_corners=align)
    check("AffineGrid", {"t": rand(1, 3, 4), "size": np.array([1, 1, 2, 3, 4], np.int64)}, 20,
          const=("size",))
    rois = np.array([[0.5, 1.0, 4.2, 3.9], [1.0, 0.0, 5.0, 4.5]], np.float32)
    bi = np.array([1, 0], np.int64)
    check("RoiAlign", {"x": x, "rois": rois, "bi": bi}, 22, output_height=2, output_width=3)
    # opset 10 has no coordinate_transformation_mode: it behaves as output_half_pixel
    (old,) = run(make_model("RoiAlign", {"x": x, "rois": rois, "bi": bi}, 10, mode="max",
                            sampling_ratio=2), {"x": x, "rois": rois, "bi": bi})
    (new,) = check("RoiAlign", {"x": x, "rois": rois, "bi": bi}, 22, mode="max",
                   sampling_ratio=2, coordinate_transformation_mode="output_half_pixel")
    np.testing.assert_array_equal(old, new)


def test_col2im_and_center_crop_pad():
    cols = rand(2, 3 * 2 * 3, 9)
    check("Col2Im", {"c": cols, "img": np.array([5, 6], np.int64),
                     "blk": np.array([2, 3], np.int64)}, 18, const=("img", "blk"),
          strides=[2, 1], pads=[1, 0, 0, 1], dilations=[1, 2])
    x = rand(5, 6, 3)
    check("CenterCropPad", {"x": x, "s": np.array([3, 9], np.int64)}, 18, const=("s",),
          axes=[0, -2])
    check("CenterCropPad", {"x": x, "s": np.array([4, 4, 3], np.int64)}, 18, const=("s",))


# --- transformer ops ------------------------------------------------------------------------------


def test_attention_3d_gqa_causal_mask_and_past():
    q, k, v = rand(2, 3, 4 * 8), rand(2, 3, 2 * 8, seed=1), rand(2, 3, 2 * 6, seed=2)
    mask = np.random.default_rng(0).random((3, 5)) < 0.8
    mask[:, 0] = True
    pk, pv = rand(2, 2, 2, 8, seed=3), rand(2, 2, 2, 6, seed=4)
    check("Attention", {"q": q, "k": k, "v": v, "m": mask, "pk": pk, "pv": pv}, 23,
          outputs=("y", "present_k", "present_v", "qk"), q_num_heads=4, kv_num_heads=2,
          is_causal=1, qk_matmul_output_mode=2)


def test_attention_4d_softcap_float_mask_and_padding():
    q, k, v = rand(2, 2, 3, 4), rand(2, 2, 5, 4, seed=1), rand(2, 2, 5, 4, seed=2)
    check("Attention", {"q": q, "k": k, "v": v, "m": rand(3, 4, seed=3)}, 23,
          outputs=("y", "", "", "qk"), softcap=2.0, scale=0.3, qk_matmul_output_mode=3)
    check("Attention", {"q": q, "k": k, "v": v, "m": None, "pk": None, "pv": None,
                        "n": np.array([4, 2], np.int64)}, 24, is_causal=1)
    check("Attention", {"q": q, "k": k, "v": v}, 25, left_window_size=1, right_window_size=1,
          outputs=("y", "", "", "qk"), qk_matmul_output_mode=3)


def test_attention_symbolic_sequence_length():
    q, k, v = rand(1, 2, 5, 4), rand(1, 2, 5, 4, seed=1), rand(1, 2, 5, 4, seed=2)
    seq = {"q": [1, 2, "s", 4], "k": [1, 2, "s", 4], "v": [1, 2, "s", 4]}
    model = make_model("Attention", {"q": q, "k": k, "v": v}, 23, shapes=seq, is_causal=1)
    (got,) = run(model, {"q": q, "k": k, "v": v})
    (want,) = ReferenceEvaluator(model).run(None, {"q": q, "k": k, "v": v})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("interleaved", [0, 1])
def test_rotary_embedding(interleaved):
    x = rand(2, 5, 3 * 8)
    cos, sin = rand(10, 3, seed=1), rand(10, 3, seed=2)
    pos = np.random.default_rng(1).integers(0, 10, (2, 5)).astype(np.int64)
    check("RotaryEmbedding", {"x": x, "cos": cos, "sin": sin, "pos": pos}, 23,
          const=("cos", "sin"), num_heads=3, rotary_embedding_dim=6, interleaved=interleaved)
    x4 = rand(2, 3, 5, 6)
    check("RotaryEmbedding", {"x": x4, "cos": rand(2, 5, 3, seed=1),
                              "sin": rand(2, 5, 3, seed=2)}, 23, interleaved=interleaved)


def test_unsupported_attribute_value_names_the_node():
    model = make_model("GridSample", {"x": rand(1, 1, 3, 3), "g": rand(1, 2, 2, 2)}, 22,
                       padding_mode="wrap")
    with pytest.raises(OnnxImportError, match="GridSample node 'node0'.*padding_mode='wrap'"):
        from_onnx(model)


def test_symbolic_batch_and_spatial_dims():
    """LRN over symbolic spatial dims, an LSTM over a symbolic batch, RoPE over a symbolic
    sequence: the dims stay symbols and the numbers match the reference."""
    x = rand(2, 6, 3, 4)
    model = make_model("LRN", {"x": x}, 13, size=3, shapes={"x": ["n", 6, "h", "w"]})
    assert from_onnx(model).main.output_types[0].shape == ("n", 6, "h", "w")
    np.testing.assert_allclose(run(model, {"x": x})[0],
                               run(make_model("LRN", {"x": x}, 13, size=3), {"x": x})[0])
    inputs = _rnn_inputs("LSTM", 1)
    model = make_model("LSTM", inputs, 14, const=("w", "r", "b"), outputs=("y", "y_h", "y_c"),
                       hidden_size=4, shapes={"x": [4, "batch", 5]})
    assert [t.shape for t in from_onnx(model).main.output_types] == \
        [(4, 1, "batch", 4), (1, "batch", 4), (1, "batch", 4)]
    want = ReferenceEvaluator(model).run(None, {"x": inputs["x"]})
    for got, w in zip(run(model, {"x": inputs["x"]}), want):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    x4, cos, sin = rand(1, 2, 5, 4), rand(1, 5, 2, seed=1), rand(1, 5, 2, seed=2)
    model = make_model("RotaryEmbedding", {"x": x4, "cos": cos, "sin": sin}, 23,
                       shapes={"x": [1, 2, "s", 4], "cos": [1, "s", 2], "sin": [1, "s", 2]})
    feeds = {"x": x4, "cos": cos, "sin": sin}
    np.testing.assert_allclose(run(model, feeds)[0],
                               ReferenceEvaluator(model).run(None, feeds)[0], rtol=1e-6)
