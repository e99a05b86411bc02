"""ONNX converters of frontends/onnx/ops/misc.py: the training optimizers, CumProd, BitCast,
TensorScatter, DeformConv, MaxRoiPool, TfIdfVectorizer and NonMaxSuppression. Each model is
imported, run on the reference interpreter and compared with onnx.reference.ReferenceEvaluator
on fresh random inputs (MaxRoiPool, which ONNX has no reference for, with exact bins)."""
from __future__ import annotations

import zlib
from typing import Any, Optional, Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import compiler.onnx_backend as backend
from compiler import ir
from frontends import NeedsConstantError, OnnxImportError, from_onnx
from frontends.onnx.importer import onnx_dtype

TRAINING = "ai.onnx.preview.training"
RNG_SEED = 20240612


def _elem(arr: np.ndarray) -> int:
    return onnx_dtype(ir.dtypes.dtype(arr.dtype))


def _vi(name: str, arr_or_type: Any, shape: Optional[Sequence[Any]] = None):
    if isinstance(arr_or_type, np.ndarray):
        return helper.make_tensor_value_info(name, _elem(arr_or_type),
                                             arr_or_type.shape if shape is None else shape)
    return helper.make_tensor_value_info(name, arr_or_type, shape)


def make_model(op: str, inputs: dict[str, Optional[np.ndarray]], outputs: Sequence[Any],
               opsets: dict[str, int], const: Sequence[str] = (), domain: str = "",
               shapes: Optional[dict[str, Sequence[Any]]] = None, **attrs: Any) -> onnx.ModelProto:
    """A one-node model reading `inputs` in order (None: an omitted optional input; names in
    `const` become initializers); outputs are value infos; shapes overrides input shapes (for
    symbolic dims)."""
    shapes = shapes or {}
    names = [n if a is not None else "" for n, a in inputs.items()]
    node = helper.make_node(op, names, [o.name for o in outputs], name="node0", domain=domain,
                            **attrs)
    vis = [_vi(n, a, shapes.get(n)) for n, a in inputs.items()
           if a is not None and n not in const]
    inits = [numpy_helper.from_array(inputs[n], n) for n in const]
    graph = helper.make_graph([node], "g", vis, list(outputs), inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                   for d, v in opsets.items()])


def run_both(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> tuple[list, list]:
    got = ir.interpret(from_onnx(model), *feeds.values())
    want = ReferenceEvaluator(model).run(None, feeds)
    return list(got), list(want)


def compare(got: Sequence[np.ndarray], want: Sequence[np.ndarray], rtol: float = 1e-5,
            atol: float = 1e-6) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape, (g.shape, w.shape)
        if g.dtype.kind in "iub":
            assert g.dtype == w.dtype
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w.astype(g.dtype), rtol=rtol, atol=atol)


def rng_of(*key: Any) -> np.random.Generator:
    """A generator seeded per case (stable across runs, unlike str hashes)."""
    return np.random.default_rng([RNG_SEED, zlib.crc32(repr(key).encode())])


# ---------------------------------------------------------------------------------------------
# training optimizers


def _optimizer_model(op: str, n: int, kinds: Sequence[str], shapes: Sequence[Sequence[Any]],
                     opsets: dict[str, int], **attrs: Any) -> onnx.ModelProto:
    inputs: dict[str, Optional[np.ndarray]] = {"R": np.zeros((), np.float32),
                                               "T": np.zeros((), np.int64)}
    outs = []
    for kind in kinds:
        for i in range(n):
            inputs[f"{kind}{i}"] = np.zeros([1] * len(shapes[i]), np.float32)
    for kind in [k for k in kinds if k != "G"]:
        outs += [_vi(f"{kind}{i}_new", TensorProto.FLOAT, shapes[i]) for i in range(n)]
    shape_of = {f"{k}{i}": shapes[i] for k in kinds for i in range(n)}
    return make_model(op, inputs, outs, opsets, domain=TRAINING, shapes=shape_of, **attrs)


def _optimizer_feeds(rng, kinds: Sequence[str], concrete: Sequence[Sequence[int]],
                     t: int) -> dict[str, np.ndarray]:
    feeds = {"R": np.asarray(rng.uniform(0.05, 0.5), np.float32), "T": np.asarray(t, np.int64)}
    for kind in kinds:
        for i, s in enumerate(concrete):
            lo = 0.0 if kind in ("H",) else -1.0
            feeds[f"{kind}{i}"] = rng.uniform(lo, 1.0, size=s).astype(np.float32)
    return feeds


OPTIMIZERS = [
    ("Adagrad", ("X", "G", "H"), dict(decay_factor=0.1, epsilon=1e-5, norm_coefficient=0.01)),
    ("Adam", ("X", "G", "V", "H"), dict(alpha=0.9, beta=0.8, epsilon=1e-3, norm_coefficient=0.01,
                                        norm_coefficient_post=0.05)),
    ("Adam", ("X", "G", "V", "H"), {}),
    ("Momentum", ("X", "G", "V"), dict(alpha=0.9, beta=0.5, norm_coefficient=0.01,
                                       mode="standard")),
    ("Momentum", ("X", "G", "V"), dict(alpha=0.95, beta=0.7, norm_coefficient=0.02,
                                       mode="nesterov")),
]


@pytest.mark.parametrize("op,kinds,attrs", OPTIMIZERS)
@pytest.mark.parametrize("n", [1, 2])
def test_optimizers_against_reference(op: str, kinds, attrs: dict, n: int) -> None:
    shapes = [[3, 4], [5]][:n]
    model = _optimizer_model(op, n, kinds, shapes, {TRAINING: 1}, **attrs)
    for t in (0, 3):
        feeds = _optimizer_feeds(rng_of(op, n, t), kinds, shapes, t)
        got, want = run_both(model, feeds)
        compare(got, want, rtol=1e-4, atol=1e-5)


def test_optimizer_with_symbolic_dims_and_default_domain() -> None:
    kinds = ("X", "G", "V")
    model = _optimizer_model("Momentum", 1, kinds, [["rows", 4]], {"": 17, TRAINING: 1},
                             alpha=0.9, beta=0.5, norm_coefficient=0.0, mode="nesterov")
    m = from_onnx(model)
    assert "f32[?rows,4]" in ir.print_module(m)
    for rows in (1, 6):
        feeds = _optimizer_feeds(rng_of("sym", rows), kinds, [[rows, 4]], 2)
        got = ir.interpret(m, *feeds.values())
        compare(got, ReferenceEvaluator(model).run(None, feeds), rtol=1e-5)


def test_optimizer_errors_name_the_node() -> None:
    model = _optimizer_model("Momentum", 1, ("X", "G", "V"), [[2]], {TRAINING: 1}, alpha=0.9,
                             beta=0.5, norm_coefficient=0.0, mode="heavy_ball")
    with pytest.raises(OnnxImportError, match=r"Momentum node 'node0' \(opset 1\): attribute "
                                              r"mode = 'heavy_ball' is not supported"):
        from_onnx(model)


def test_default_domain_opset_is_still_checked() -> None:
    model = _optimizer_model("Adagrad", 1, ("X", "G", "H"), [[2]], {TRAINING: 1})
    from frontends.onnx.importer import Importer
    bad = onnx.ModelProto()
    bad.CopyFrom(model)
    bad.opset_import.append(helper.make_opsetid("", 999))
    with pytest.raises(OnnxImportError, match="opset 999 of the default domain"):
        Importer(bad).run()  # past the checker, which would reject opset 999 too


# ---------------------------------------------------------------------------------------------
# CumProd, BitCast


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_cumprod_against_reference(dtype) -> None:
    rng = rng_of("cumprod", dtype)
    x = (rng.uniform(0.5, 1.5, size=(3, 4, 5)) * rng.choice([-1, 1], size=(3, 4, 5))
         if np.dtype(dtype).kind == "f" else rng.integers(-3, 4, size=(3, 4, 5))).astype(dtype)
    for axis in (0, -1, 1):
        for exclusive in (0, 1):
            for reverse in (0, 1):
                model = make_model("CumProd", {"x": x, "axis": np.asarray(axis, np.int64)},
                                   [_vi("y", _elem(x), x.shape)], {"": 26}, const=["axis"],
                                   exclusive=exclusive, reverse=reverse)
                got, want = run_both(model, {"x": x})
                compare(got, want)


def test_cumprod_symbolic_and_axis_from_input() -> None:
    x = np.zeros((1, 4), np.float32)
    model = make_model("CumProd", {"x": x, "axis": np.asarray(1, np.int32)},
                       [_vi("y", TensorProto.FLOAT, ["n", 4])], {"": 26}, const=["axis"],
                       shapes={"x": ["n", 4]}, reverse=1)
    m = from_onnx(model)
    xs = rng_of("cp").uniform(0.5, 2, (3, 4)).astype(np.float32)
    np.testing.assert_allclose(ir.interpret(m, xs)[0],
                               np.flip(np.cumprod(np.flip(xs, 1), 1), 1), rtol=1e-6)
    dynamic = make_model("CumProd", {"x": x, "axis": np.asarray(1, np.int64)},
                         [_vi("y", TensorProto.FLOAT, [1, 4])], {"": 26})
    with pytest.raises(NeedsConstantError, match="axis") as info:
        from_onnx(dynamic)
    assert info.value.inputs == ["axis"]


@pytest.mark.parametrize("src,to", [(np.float32, TensorProto.INT32), (np.int64, TensorProto.DOUBLE),
                                    (np.float16, TensorProto.INT16), (np.bool_, TensorProto.UINT8),
                                    (np.uint8, TensorProto.INT8), (np.int32, TensorProto.FLOAT)])
def test_bitcast_against_reference(src, to) -> None:
    rng = rng_of("bitcast", src, to)
    x = rng.uniform(-100, 100, size=(3, 4)).astype(src) if np.dtype(src).kind == "f" else \
        (rng.random((3, 4)) < 0.5 if src is np.bool_ else
         rng.integers(0, 100, size=(3, 4)).astype(src))
    model = make_model("BitCast", {"x": x}, [_vi("y", to, ["n", 4])], {"": 26},
                       shapes={"x": ["n", 4]}, to=to)
    got, want = run_both(model, {"x": x})
    compare(got, want)


def test_bitcast_errors() -> None:
    x = np.zeros(3, np.float32)
    for to, pattern in ((TensorProto.STRING, "element type STRING has no IR dtype"),
                        (TensorProto.INT64, "to = i64 has 64 bits, the input f32 32")):
        # a model the checker accepts, imported past ONNX's own type inference
        model = make_model("BitCast", {"x": x}, [_vi("y", to, [3])], {"": 26}, to=to)
        with pytest.raises(OnnxImportError, match=pattern):
            from_onnx(model)


# ---------------------------------------------------------------------------------------------
# TensorScatter


@pytest.mark.parametrize("mode", ["linear", "circular"])
@pytest.mark.parametrize("axis", [-2, 1, 2])
@pytest.mark.parametrize("with_indices", [True, False])
def test_tensor_scatter_against_reference(mode: str, axis: int, with_indices: bool) -> None:
    rng = rng_of("ts", mode, axis, with_indices)
    cache = rng.standard_normal((2, 3, 6, 4)).astype(np.float32)
    ushape = list(cache.shape)
    ushape[axis] = 2 if axis != 1 else 2
    update = rng.standard_normal(ushape).astype(np.float32)
    length = cache.shape[axis]
    hi = length - 1 if mode == "circular" else length - ushape[axis]
    idx = rng.integers(0, hi + 1, size=2).astype(np.int64)
    inputs = {"past": cache, "update": update, "write_indices": idx if with_indices else None}
    model = make_model("TensorScatter", inputs, [_vi("present", TensorProto.FLOAT, cache.shape)],
                       {"": 24}, mode=mode, axis=axis)
    feeds = {k: v for k, v in inputs.items() if v is not None}
    got, want = run_both(model, feeds)
    compare(got, want)


def test_tensor_scatter_symbolic_batch_and_sequence() -> None:
    cache = np.zeros((1, 2, 8, 3), np.float32)
    update = np.zeros((1, 2, 1, 3), np.float32)
    model = make_model("TensorScatter", {"past": cache, "update": update,
                                         "write_indices": np.zeros(1, np.int64)},
                       [_vi("present", TensorProto.FLOAT, ["b", 2, 8, 3])], {"": 24},
                       shapes={"past": ["b", 2, 8, 3], "update": ["b", 2, "s", 3],
                               "write_indices": ["b"]}, mode="circular")
    m = from_onnx(model)
    assert "f32[?b,2,8,3]" in ir.print_module(m)
    ref = ReferenceEvaluator(model)
    rng = rng_of("ts-sym")
    for b, s in ((1, 1), (3, 5)):
        feeds = {"past": rng.standard_normal((b, 2, 8, 3)).astype(np.float32),
                 "update": rng.standard_normal((b, 2, s, 3)).astype(np.float32),
                 "write_indices": rng.integers(0, 8, size=b).astype(np.int64)}
        compare(ir.interpret(m, *feeds.values()), ref.run(None, feeds))


def test_tensor_scatter_errors() -> None:
    cache, update = np.zeros((2, 4, 3), np.float32), np.zeros((2, 1, 3), np.float32)
    for attrs, pattern in ((dict(mode="ring"), "attribute mode = 'ring' is not supported"),
                           (dict(axis=0), "attribute axis = 0 is the batch axis")):
        model = make_model("TensorScatter", {"past": cache, "update": update},
                           [_vi("present", TensorProto.FLOAT, [2, 4, 3])], {"": 24}, **attrs)
        with pytest.raises(OnnxImportError, match=r"TensorScatter node 'node0' \(opset 24\): "
                                                  + pattern):
            from_onnx(model)


# ---------------------------------------------------------------------------------------------
# DeformConv, TfIdfVectorizer


@pytest.mark.parametrize("bias,mask", [(True, True), (False, True), (True, False),
                                       (False, False)])
def test_deform_conv_against_reference(bias: bool, mask: bool) -> None:
    rng = rng_of("deform", bias, mask)
    x = rng.standard_normal((2, 4, 6, 5)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    offset = rng.uniform(-2, 2, size=(2, 2 * 6 * 2, 3, 4)).astype(np.float32)
    inputs = {"X": x, "W": w, "offset": offset,
              "B": rng.standard_normal(6).astype(np.float32) if bias else None,
              "mask": rng.uniform(0, 1, (2, 12, 3, 4)).astype(np.float32) if mask else None}
    model = make_model("DeformConv", inputs, [_vi("Y", TensorProto.FLOAT, [2, 6, 3, 4])],
                       {"": 22}, const=["W"], kernel_shape=[3, 2], strides=[2, 1],
                       pads=[1, 1, 1, 0], dilations=[1, 2], group=2, offset_group=2)
    feeds = {k: v for k, v in inputs.items() if v is not None and k != "W"}
    got, want = run_both(model, feeds)
    compare(got, want, rtol=1e-4, atol=1e-5)


def test_deform_conv_kernel_shape_mismatch() -> None:
    x, w = np.zeros((1, 1, 3, 3), np.float32), np.zeros((1, 1, 2, 2), np.float32)
    model = make_model("DeformConv", {"X": x, "W": w, "offset": np.zeros((1, 8, 2, 2), np.float32)},
                       [_vi("Y", TensorProto.FLOAT, [1, 1, 2, 2])], {"": 19}, kernel_shape=[3, 3])
    with pytest.raises(OnnxImportError, match=r"DeformConv node 'node0' \(opset 19\): attribute "
                                              r"kernel_shape = \[3, 3\] differs"):
        from_onnx(model)


def test_max_roi_pool() -> None:
    """ONNX has no reference for MaxRoiPool: compare with max pooling over the rois' bins,
    chosen so that every bin is exact (integer corners, sizes divisible by pooled_shape)."""
    rng = rng_of("roipool")
    x = rng.standard_normal((2, 3, 8, 10)).astype(np.float32)
    rois = np.array([[0, 0, 0, 9, 7], [1, 2, 2, 5, 5], [1, 4, 0, 7, 3]], np.float32)
    model = make_model("MaxRoiPool", {"X": x, "rois": rois},
                       [_vi("Y", TensorProto.FLOAT, ["r", 3, 2, 2])], {"": 22},
                       shapes={"rois": ["r", 5]}, pooled_shape=[2, 2])
    (got,) = ir.interpret(from_onnx(model), x, rois)
    for r, (b, x1, y1, x2, y2) in enumerate(rois.astype(int)):
        crop = x[b, :, y1:y2 + 1, x1:x2 + 1]
        h, w = crop.shape[1] // 2, crop.shape[2] // 2
        want = crop.reshape(3, 2, h, 2, w).max(axis=(2, 4))
        np.testing.assert_array_equal(got[r], want)
    bad = make_model("MaxRoiPool", {"X": x, "rois": rois},
                     [_vi("Y", TensorProto.FLOAT, [3, 3, 2, 2])], {"": 22}, pooled_shape=[2])
    with pytest.raises(OnnxImportError, match=r"MaxRoiPool node 'node0' \(opset 22\): attribute "
                                              r"pooled_shape must hold 2 sizes"):
        from_onnx(bad)


TFIDF = dict(min_gram_length=1, max_gram_length=3, max_skip_count=2,
             ngram_counts=[0, 3, 7], ngram_indexes=[4, 0, 2, 1, 5, 3, 6, 7],
             pool_int64s=[2, 3, 5, 2, 3, 5, 1, 3, 1, 5, 3])


@pytest.mark.parametrize("mode,weights", [("TF", None), ("IDF", [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]),
                                          ("TFIDF", [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4])])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_tfidf_against_reference(mode: str, weights, dtype) -> None:
    rng = rng_of("tfidf", mode, dtype)
    x = rng.integers(1, 6, size=(3, 9)).astype(dtype)
    attrs = dict(TFIDF, mode=mode, **({"weights": weights} if weights else {}))
    model = make_model("TfIdfVectorizer", {"X": x}, [_vi("Y", TensorProto.FLOAT, ["n", 8])],
                       {"": 9}, shapes={"X": ["n", 9]}, **attrs)
    got, want = run_both(model, {"X": x})
    compare(got, want)
    one = make_model("TfIdfVectorizer", {"X": x[0]}, [_vi("Y", TensorProto.FLOAT, [8])], {"": 9},
                     **attrs)
    got, want = run_both(one, {"X": x[0]})
    compare(got, want)


def test_tfidf_strings_are_refused() -> None:
    model = make_model("TfIdfVectorizer", {"X": np.zeros(3, np.int64)},
                       [_vi("Y", TensorProto.FLOAT, [1])], {"": 9}, min_gram_length=1,
                       max_gram_length=1, max_skip_count=0, ngram_counts=[0], ngram_indexes=[0],
                       pool_strings=["a"], mode="TF")
    with pytest.raises(OnnxImportError, match=r"TfIdfVectorizer node 'node0' \(opset 9\): "
                                              r"attribute pool_strings"):
        from_onnx(model)


# ---------------------------------------------------------------------------------------------
# NonMaxSuppression


def _nms_inputs(rng, batches: int, classes: int, boxes: int, center: bool):
    if center:
        xy = rng.uniform(0, 10, size=(batches, boxes, 2))
        wh = rng.uniform(0.5, 4, size=(batches, boxes, 2))
        b = np.concatenate([xy, wh], -1)
    else:
        p1 = rng.uniform(0, 10, size=(batches, boxes, 2))
        p2 = p1 + rng.uniform(-4, 4, size=(batches, boxes, 2))  # flipped corners too
        b = np.concatenate([p1, p2], -1)
    scores = rng.uniform(0, 1, size=(batches, classes, boxes))
    scores[..., :2] = scores[..., 2:4]  # ties
    return b.astype(np.float32), scores.astype(np.float32)


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("optional", ["all", "no_score_threshold", "only_max", "none"])
def test_nms_against_reference(center: int, optional: str) -> None:
    rng = rng_of("nms", center, optional)
    boxes, scores = _nms_inputs(rng, 2, 3, 12, bool(center))
    extra = {"max_output_boxes_per_class": np.array([4], np.int64),
             "iou_threshold": np.array([0.3], np.float32),
             "score_threshold": np.array([0.2], np.float32)}
    keep = {"all": 3, "no_score_threshold": 2, "only_max": 1, "none": 0}[optional]
    inputs = {"boxes": boxes, "scores": scores, **dict(list(extra.items())[:keep])}
    model = make_model("NonMaxSuppression", inputs, [_vi("sel", TensorProto.INT64, ["k", 3])],
                       {"": 11}, const=list(inputs), center_point_box=center)
    (got,) = ir.interpret(from_onnx(model))
    # ONNX's reference evaluator fails on an omitted max_output_boxes_per_class or
    # iou_threshold: give it their defaults (0 and 0) instead
    defaults = {"max_output_boxes_per_class": np.array([0], np.int64),
                "iou_threshold": np.array([0.0], np.float32)}
    explicit = dict(inputs)  # in input order: boxes, scores, max, iou[, score_threshold]
    for name, value in defaults.items():
        explicit.setdefault(name, value)
    reference = make_model("NonMaxSuppression", explicit,
                           [_vi("sel", TensorProto.INT64, ["k", 3])], {"": 11},
                           const=list(explicit), center_point_box=center)
    (want,) = ReferenceEvaluator(reference).run(None, {})
    compare([got], [want])
    if optional == "all":
        assert 0 < len(got) <= 2 * 3 * 4


def test_nms_needs_known_inputs_and_backend_specializes() -> None:
    rng = rng_of("nms-dyn")
    boxes, scores = _nms_inputs(rng, 1, 2, 8, False)
    inputs = {"boxes": boxes, "scores": scores, "max": np.array([3], np.int64),
              "iou": np.array([0.4], np.float32)}
    model = make_model("NonMaxSuppression", inputs, [_vi("sel", TensorProto.INT64, ["k", 3])],
                       {"": 10}, const=["max", "iou"])
    with pytest.raises(NeedsConstantError, match="boxes, scores: the number of selected boxes "
                                                 "depends on their values") as info:
        from_onnx(model)
    assert info.value.inputs == ["boxes", "scores"]
    rep = backend.prepare(model)
    for seed in range(2):
        b, s = _nms_inputs(rng_of("nms-run", seed), 1, 2, 8, False)
        (got,) = rep.run({"boxes": b, "scores": s})
        (want,) = ReferenceEvaluator(model).run(None, {"boxes": b, "scores": s})
        compare([got], [want])


def test_nms_bad_center_point_box() -> None:
    boxes, scores = _nms_inputs(rng_of("x"), 1, 1, 4, False)
    model = make_model("NonMaxSuppression", {"boxes": boxes, "scores": scores},
                       [_vi("sel", TensorProto.INT64, ["k", 3])], {"": 11},
                       const=["boxes", "scores"], center_point_box=2)
    with pytest.raises(OnnxImportError, match=r"NonMaxSuppression node 'node0' \(opset 11\): "
                                              r"attribute center_point_box = 2"):
        from_onnx(model)


def test_binarizer_and_array_feature_extractor_match_onnx_reference():
    from onnx import TensorProto as TP
    from onnx import helper as oh
    from onnx.reference import ReferenceEvaluator

    from compiler import ir as cir
    from frontends import from_onnx as import_onnx
    rng = np.random.default_rng(11)
    for node, inputs, outs in (
        (oh.make_node("Binarizer", ["x"], ["y"], domain="ai.onnx.ml", threshold=0.25),
         {"x": rng.standard_normal((3, 4)).astype(np.float32)}, [("y", TP.FLOAT, [3, 4])]),
        (oh.make_node("ArrayFeatureExtractor", ["x", "i"], ["y"], domain="ai.onnx.ml"),
         {"x": rng.standard_normal((2, 5)).astype(np.float32),
          "i": np.array([[4, 0, 2]], np.int64)}, [("y", TP.FLOAT, [2, 3])]),
        (oh.make_node("ArrayFeatureExtractor", ["x", "i"], ["y"], domain="ai.onnx.ml"),
         {"x": rng.standard_normal(6).astype(np.float32), "i": np.array([5, 1], np.int64)},
         [("y", TP.FLOAT, [1, 2])]),
    ):
        ins = [oh.make_tensor_value_info(k, TP.INT64 if v.dtype == np.int64 else TP.FLOAT, v.shape)
               for k, v in inputs.items()]
        graph = oh.make_graph([node], "g", ins, [oh.make_tensor_value_info(*o) for o in outs])
        model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17),
                                                    oh.make_opsetid("ai.onnx.ml", 3)])
        (want,) = ReferenceEvaluator(model).run(None, inputs)
        (got,) = cir.interpret(import_onnx(model), *inputs.values())
        np.testing.assert_array_equal(got, want)
