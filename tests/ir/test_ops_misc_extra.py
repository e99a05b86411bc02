"""Tests of compiler/ir/ops/misc_extra.py: type rules, and the references against PyTorch, NumPy
views and ONNX's reference implementations on fresh random inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops.op_deform_conv import _deform_conv_implementation

from compiler import ir
from compiler.ir import TypeInferenceError, get_op, tensor
from compiler.ir import dtypes as dt
from tests.ir.opcheck import BF16, check_samples, infer_one, run_op, seed_of, to_torch
from tests.ir.samples.misc_extra import SAMPLES

OPS_TESTED = {"cumprod", "bitcast", "deform_conv", "max_roi_pool", "tfidf_vectorizer"}

torch.set_num_threads(1)


def test_declared_ops_and_traits() -> None:
    for name in OPS_TESTED:
        op = get_op(name)
        assert op.doc and op.has("pure"), name
    assert get_op("bitcast").has("elementwise")
    assert get_op("deform_conv").has("contraction")
    assert not get_op("cumprod").has("elementwise")


# --- cumprod --------------------------------------------------------------------------------------


def test_cumprod_types() -> None:
    for t in (tensor(["b", 3], "f32"), tensor([4], "i32"), tensor([], "bf16")):
        assert infer_one("cumprod", t, axis=0) == t
    assert infer_one("cumprod", tensor([2, 3], "u8"), axis=-1) == tensor([2, 3], "u8")
    with pytest.raises(TypeInferenceError, match="cumprod operand x must be int/uint/float, got "
                                                 "bool"):
        infer_one("cumprod", tensor([2], "bool"), axis=0)
    with pytest.raises(TypeInferenceError, match="cumprod axis"):
        infer_one("cumprod", tensor([2, 3], "f32"), axis=2)
    with pytest.raises(TypeInferenceError, match="cumprod needs attribute 'axis'"):
        infer_one("cumprod", tensor([2], "f32"))


def _cumprod_torch(x: np.ndarray, axis: int, exclusive: bool, reverse: bool) -> np.ndarray:
    t = to_torch(x).double() if dt.dtype(x.dtype).is_float else torch.from_numpy(x.astype(np.int64))
    if reverse:
        t = t.flip(axis)
    if exclusive:
        first = torch.ones_like(t.narrow(axis, 0, 1))
        t = torch.cat([first, t.narrow(axis, 0, t.shape[axis] - 1)], axis)
    out = torch.cumprod(t, axis)
    return (out.flip(axis) if reverse else out).numpy()


@pytest.mark.parametrize("dtype", ["f32", "f64", "f16", "bf16", "i32", "i64", "u8"])
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumprod_against_torch(dtype: str, exclusive: bool, reverse: bool) -> None:
    rng = np.random.default_rng(seed_of("cumprod", dtype, str(exclusive), str(reverse)))
    d = dt.dtype(dtype)
    x = (rng.uniform(0.6, 1.4, size=(3, 5, 4)) * rng.choice([-1, 1], size=(3, 5, 4))
         if d.is_float else rng.integers(0 if d.kind == "uint" else -2, 3, size=(3, 5, 4)))
    x = np.asarray(x).astype(d.np_dtype)
    for axis in (0, 1, -1):
        (got,) = run_op("cumprod", x, axis=axis, exclusive=exclusive, reverse=reverse)
        want = _cumprod_torch(x, axis % 3, exclusive, reverse)
        assert got.dtype == x.dtype and got.shape == x.shape
        if d.is_float:
            tol = {"f32": 1e-6, "f64": 1e-14}.get(dtype, 1e-2)
            np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)
        else:
            np.testing.assert_array_equal(got, want.astype(d.np_dtype))


def test_cumprod_onnx_examples_and_wrapping() -> None:
    x = np.array([1, 2, 3], np.float32)
    for ex, rev, want in ((0, 0, [1, 2, 6]), (1, 0, [1, 1, 2]), (0, 1, [6, 6, 3]),
                          (1, 1, [6, 3, 1])):
        np.testing.assert_array_equal(
            run_op("cumprod", x, axis=0, exclusive=bool(ex), reverse=bool(rev))[0], want)
    big = np.array([100, 100, 100], np.int16)  # 10**6 wraps in i16, as C would
    np.testing.assert_array_equal(run_op("cumprod", big, axis=0)[0],
                                  np.array([100, 10000, 10 ** 6 % 65536], np.int16))
    (scalar,) = run_op("cumprod", np.array(2.5, np.float32), axis=-1, exclusive=True)
    assert scalar.shape == () and scalar == 1


def test_cumprod_in_f32_for_bf16() -> None:
    x = np.array([1.1, 1.3, 0.7, 1.9], BF16)
    (got,) = run_op("cumprod", x, axis=0)
    np.testing.assert_array_equal(got, np.cumprod(x.astype(np.float32)).astype(BF16))


# --- bitcast --------------------------------------------------------------------------------------


def test_bitcast_types() -> None:
    assert infer_one("bitcast", tensor(["n", 2], "f32"), to="i32") == tensor(["n", 2], "i32")
    assert infer_one("bitcast", tensor([3], "bool"), to="u8") == tensor([3], "u8")
    assert infer_one("bitcast", tensor([], "bf16"), to="f16") == tensor([], "f16")
    with pytest.raises(TypeInferenceError, match=r"bitcast needs dtypes of one bit width, got "
                                                 r"f32 \(32 bits\) to i64 \(64 bits\)"):
        infer_one("bitcast", tensor([2], "f32"), to="i64")


@pytest.mark.parametrize("src,to", [("f32", "i32"), ("i32", "f32"), ("f64", "i64"),
                                    ("i64", "f64"), ("f16", "i16"), ("bf16", "i16"),
                                    ("i16", "bf16"), ("f16", "bf16"), ("i8", "u8"), ("u8", "i8")])
def test_bitcast_against_torch_view(src: str, to: str) -> None:
    rng = np.random.default_rng(seed_of("bitcast", src, to))
    s = dt.dtype(src)
    x = rng.uniform(-50, 50, size=(4, 3)).astype(s.np_dtype) if s.is_float else \
        rng.integers(-100, 100, size=(4, 3)).astype(s.np_dtype)
    (got,) = run_op("bitcast", x, to=to)
    torch_of = {"f32": torch.float32, "i32": torch.int32, "f64": torch.float64,
                "i64": torch.int64, "f16": torch.float16, "bf16": torch.bfloat16,
                "i16": torch.int16, "i8": torch.int8, "u8": torch.uint8}
    src_t = torch.from_numpy(x.view(np.int16)).view(torch.bfloat16) if src == "bf16" else \
        torch.from_numpy(x)
    want = src_t.view(torch_of[to])
    want = want.view(torch.int16).numpy().view(BF16) if to == "bf16" else want.numpy()
    assert got.dtype == dt.dtype(to).np_dtype and got.shape == x.shape
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_bitcast_bools() -> None:
    b = np.array([True, False, True])
    np.testing.assert_array_equal(run_op("bitcast", b, to="u8")[0], [1, 0, 1])
    (got,) = run_op("bitcast", np.array([0, 1, 2, 255], np.uint8), to="bool")
    assert got.dtype == np.bool_ and got.tolist() == [False, True, True, True]
    (scalar,) = run_op("bitcast", np.array(1.0, np.float32), to="i32")
    assert scalar.shape == () and scalar == 0x3F800000


# --- deform_conv ----------------------------------------------------------------------------------


def test_deform_conv_types() -> None:
    x, w = tensor(["n", 4, 5, 6], "f32"), tensor([6, 2, 3, 3], "f32")
    off, mask = tensor(["n", 36, 3, 4], "f32"), tensor(["n", 18, 3, 4], "f32")
    got = infer_one("deform_conv", x, w, off, tensor([6], "f32"), mask, groups=2,
                    offset_groups=2)
    assert got == tensor(["n", 6, 3, 4], "f32")
    # symbolic spatial dims pass through where the window keeps the size
    got = infer_one("deform_conv", tensor([1, 2, "h", 7], "f64"), tensor([3, 2, 3, 1], "f64"),
                    tensor([1, 6, "h", 7], "f64"), pads=[1, 0, 1, 0])
    assert got == tensor([1, 3, "h", 7], "f64")
    with pytest.raises(TypeInferenceError, match=r"offset channels .* must be equal, got 18 and "
                                                 r"36"):
        infer_one("deform_conv", tensor([1, 2, 5, 5], "f32"), tensor([3, 2, 3, 3], "f32"),
                  tensor([1, 36, 3, 3], "f32"))
    with pytest.raises(TypeInferenceError, match=r"output dim 1 .* must be equal, got 3 and 4"):
        infer_one("deform_conv", tensor([1, 2, 5, 5], "f32"), tensor([3, 2, 3, 3], "f32"),
                  tensor([1, 18, 3, 4], "f32"))
    with pytest.raises(TypeInferenceError, match="offset_groups=3 must divide the input channels"):
        infer_one("deform_conv", tensor([1, 4, 5, 5], "f32"), tensor([3, 4, 1, 1], "f32"),
                  tensor([1, 6, 5, 5], "f32"), offset_groups=3)
    with pytest.raises(TypeInferenceError, match="deform_conv mask must be f32 like x"):
        infer_one("deform_conv", tensor([1, 2, 5, 5], "f32"), tensor([3, 2, 1, 1], "f32"),
                  tensor([1, 2, 5, 5], "f32"), tensor([3], "f32"), tensor([1, 1, 5, 5], "f16"))
    with pytest.raises(TypeInferenceError, match="deform_conv operands must share a dtype"):
        infer_one("deform_conv", tensor([1, 2, 5, 5], "f32"), tensor([3, 2, 1, 1], "f16"),
                  tensor([1, 2, 5, 5], "f32"))


def _deform_case(rng: np.random.Generator, c: int, m: int, size, ks, strides, pads, dilations,
                 groups: int, offset_groups: int, n: int = 2):
    d = len(size)
    out = [(i + pads[a] + pads[d + a] - (ks[a] - 1) * dilations[a] - 1) // strides[a] + 1
           for a, i in enumerate(size)]
    taps = offset_groups * int(np.prod(ks))
    x = rng.standard_normal((n, c, *size)).astype(np.float32)
    w = rng.standard_normal((m, c // groups, *ks)).astype(np.float32)
    offset = rng.uniform(-2.5, 2.5, size=(n, taps * d, *out)).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    mask = rng.uniform(0, 1, size=(n, taps, *out)).astype(np.float32)
    return x, w, offset, bias, mask


@pytest.mark.parametrize("case", [
    dict(c=1, m=1, size=(3, 3), ks=(2, 2), strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1),
         groups=1, offset_groups=1),
    dict(c=4, m=6, size=(6, 7), ks=(3, 2), strides=(2, 1), pads=(1, 0, 1, 1), dilations=(1, 2),
         groups=2, offset_groups=2),
    dict(c=6, m=2, size=(5, 5), ks=(3, 3), strides=(1, 2), pads=(1, 1, 1, 1), dilations=(1, 1),
         groups=1, offset_groups=3),
])
def test_deform_conv_against_onnx_reference(case: dict) -> None:
    rng = np.random.default_rng(seed_of("deform_conv", repr(case)))
    x, w, offset, bias, mask = _deform_case(rng, **case)
    attrs = dict(strides=case["strides"], pads=case["pads"], dilations=case["dilations"],
                 groups=case["groups"], offset_groups=case["offset_groups"])
    for operands in ((x, w, offset, bias, mask), (x, w, offset)):
        (got,) = run_op("deform_conv", *operands, **attrs)
        b, msk = (bias, mask) if len(operands) == 5 else (None, None)
        want = _deform_conv_implementation(
            x, w, offset, b, msk, list(case["dilations"]), case["groups"], list(case["ks"]),
            case["offset_groups"], list(case["pads"]), list(case["strides"]))
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_deform_conv_zero_offsets_is_conv_and_1d_matches_2d() -> None:
    rng = np.random.default_rng(7)
    x, w, offset, bias, _ = _deform_case(rng, 4, 3, (6, 5), (3, 3), (1, 2), (1, 0, 1, 1),
                                         (2, 1), 1, 1)
    attrs = dict(strides=[1, 2], pads=[1, 0, 1, 1], dilations=[2, 1])
    (got,) = run_op("deform_conv", x, w, np.zeros_like(offset), bias, **attrs)
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                      torch.from_numpy(bias), stride=(1, 2), dilation=(2, 1),
                                      padding=0)
    # torch pads symmetrically: compare against explicit padding
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (0, 1)])
    want = torch.nn.functional.conv2d(torch.from_numpy(xp), torch.from_numpy(w),
                                      torch.from_numpy(bias), stride=(1, 2), dilation=(2, 1))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)
    # 1-D: the 2-D op with a unit axis gives the same (offsets along that axis 0)
    x1, w1, off1, b1, m1 = _deform_case(rng, 2, 3, (7,), (3,), (2,), (1, 0), (1,), 1, 1)
    (got1,) = run_op("deform_conv", x1, w1, off1, b1, m1, strides=[2], pads=[1, 0])
    off2 = np.stack([np.zeros_like(off1), off1], 2).reshape(off1.shape[0], -1, 1,
                                                            off1.shape[2])
    (got2,) = run_op("deform_conv", x1[:, :, None], w1[:, :, None], off2, b1, m1[:, :, None],
                     strides=[1, 2], pads=[0, 1, 0, 0])
    np.testing.assert_allclose(got1, got2[:, :, 0], rtol=1e-6, atol=1e-6)


def test_deform_conv_symbolic_batch_roundtrip() -> None:
    m = ir.Module("m")
    f = ir.FunctionBuilder(m, "main")
    x = f.arg("x", tensor(["b", 2, 4, 4], "f32"))
    off = f.arg("off", tensor(["b", 8, 3, 3], "f32"))
    w = f.arg("w", tensor([3, 2, 2, 2], "f32"))
    f.ret(f.op("deform_conv", x, w, off))
    text = ir.print_module(m)
    assert "-> (f32[?b,3,3,3])" in text and ir.print_module(ir.parse(text)) == text
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)
    offs = rng.uniform(-1, 1, (3, 8, 3, 3)).astype(np.float32)
    ws = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    (got,) = ir.interpret(m, xs, offs, ws)
    want = _deform_conv_implementation(xs, ws, offs, None, None, [1, 1], 1, [2, 2], 1,
                                       [0, 0, 0, 0], [1, 1])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# --- max_roi_pool ---------------------------------------------------------------------------------


def test_max_roi_pool_types() -> None:
    got = infer_one("max_roi_pool", tensor(["n", 3, 8, 8], "f32"), tensor(["r", 5], "f32"),
                    pooled_shape=[2, 3])
    assert got == tensor(["r", 3, 2, 3], "f32")
    with pytest.raises(TypeInferenceError, match=r"max_roi_pool rois must be f32 \[R, 5\]"):
        infer_one("max_roi_pool", tensor([1, 3, 8, 8], "f32"), tensor([2, 5], "f16"),
                  pooled_shape=[2, 2])
    with pytest.raises(TypeInferenceError, match=r"rois f32\[2,4\] dim 1 .* got 4 and 5"):
        infer_one("max_roi_pool", tensor([1, 3, 8, 8], "f32"), tensor([2, 4], "f32"),
                  pooled_shape=[2, 2])
    with pytest.raises(TypeInferenceError, match="'pooled_shape' must be two sizes >= 1"):
        infer_one("max_roi_pool", tensor([1, 3, 8, 8], "f32"), tensor([2, 5], "f32"),
                  pooled_shape=[2])
    with pytest.raises(TypeInferenceError, match=r"input x must be \[N, C, H, W\]"):
        infer_one("max_roi_pool", tensor([3, 8, 8], "f32"), tensor([2, 5], "f32"),
                  pooled_shape=[2, 2])


def test_max_roi_pool_caffe_semantics() -> None:
    x = np.arange(32, dtype=np.float32).reshape(2, 1, 4, 4)
    x[1] *= -1
    rois = np.array([[0, 0, 0, 3, 3],        # the whole image in 2x2 bins: quadrant maxima
                     [0, 0.5, 0.5, 2.5, 2.5],  # rounds half away from zero: rows/cols 1..3
                     [0, 10, 10, 12, 12],    # outside x: every bin is empty, 0
                     [1, 0, 0, 6, 6],        # spatial_scale 0.5 makes this 0..3 (batch 1)
                     [0, 2, 3, 1, 1]], np.float32)  # malformed (x2 < x1): forced to 1x1
    (got,) = run_op("max_roi_pool", x, rois, pooled_shape=[2, 2], spatial_scale=1.0)
    np.testing.assert_array_equal(got[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(got[1, 0], [[10, 11], [14, 15]])  # 1.5-row bins overlap
    np.testing.assert_array_equal(got[2], np.zeros((1, 2, 2)))
    np.testing.assert_array_equal(got[4, 0], [[14, 14], [14, 14]])  # x[3, 2] in each bin
    (whole,) = run_op("max_roi_pool", x, rois[3:4], pooled_shape=[1, 1], spatial_scale=0.5)
    assert whole.reshape(()) == -16  # the max of batch 1, which holds -16 .. -31
    (mid,) = run_op("max_roi_pool", x, rois[1:2], pooled_shape=[1, 1])
    assert mid.reshape(()) == 15


def _roi_pool_loop(x: np.ndarray, rois: np.ndarray, ph: int, pw: int, scale: float) -> np.ndarray:
    """The roi pooling loop of Caffe / ONNX Runtime, one output element at a time."""
    out = np.zeros((len(rois), x.shape[1], ph, pw), np.float32)
    height, width = x.shape[2:]
    for r, roi in enumerate(rois):
        b = int(roi[0])
        x1, y1, x2, y2 = (int(np.sign(v) * np.floor(abs(v) + 0.5))
                          for v in roi[1:] * np.float32(scale))
        bh = np.float32(max(y2 - y1 + 1, 1)) / np.float32(ph)
        bw = np.float32(max(x2 - x1 + 1, 1)) / np.float32(pw)
        for c in range(x.shape[1]):
            for i in range(ph):
                for j in range(pw):
                    hs = min(max(int(np.floor(np.float32(i) * bh)) + y1, 0), height)
                    he = min(max(int(np.ceil(np.float32(i + 1) * bh)) + y1, 0), height)
                    ws = min(max(int(np.floor(np.float32(j) * bw)) + x1, 0), width)
                    we = min(max(int(np.ceil(np.float32(j + 1) * bw)) + x1, 0), width)
                    best = 0.0 if he <= hs or we <= ws else -np.inf
                    for hh in range(hs, he):
                        for ww in range(ws, we):
                            best = max(best, x[b, c, hh, ww])
                    out[r, c, i, j] = best
    return out


def test_max_roi_pool_against_loop() -> None:
    rng = np.random.default_rng(seed_of("max_roi_pool"))
    x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    corners = rng.uniform(-3, 12, size=(6, 2, 2)).astype(np.float32)
    rois = np.concatenate([rng.integers(0, 2, size=(6, 1)).astype(np.float32),
                           corners.min(1), corners.max(1)], 1)
    for pooled, scale in (([3, 2], 1.0), ([1, 4], 0.5), ([2, 2], 0.0625)):
        (got,) = run_op("max_roi_pool", x, rois, pooled_shape=pooled, spatial_scale=scale)
        np.testing.assert_array_equal(got, _roi_pool_loop(x, rois, *pooled, scale))


# --- tfidf_vectorizer -----------------------------------------------------------------------------

_TFIDF = dict(mode="TF", min_gram_length=2, max_gram_length=2, max_skip_count=0,
              pool=[2, 3, 5, 4, 5, 6, 7, 8, 6, 7], ngram_counts=[0, 4],
              ngram_indexes=[0, 1, 2, 3, 4, 5, 6])


def test_tfidf_types() -> None:
    assert infer_one("tfidf_vectorizer", tensor([6], "i32"), **_TFIDF) == tensor([7], "f32")
    assert infer_one("tfidf_vectorizer", tensor(["n", 6], "i64"), **_TFIDF) == \
        tensor(["n", 7], "f32")
    with pytest.raises(TypeInferenceError, match="tfidf_vectorizer operand x must be int/uint"):
        infer_one("tfidf_vectorizer", tensor([6], "f32"), **_TFIDF)
    with pytest.raises(TypeInferenceError, match=r"input must be \[C\] or \[N, C\]"):
        infer_one("tfidf_vectorizer", tensor([2, 2, 6], "i32"), **_TFIDF)
    with pytest.raises(TypeInferenceError, match="pool holds 7 n-grams but ngram_indexes maps "
                                                 "only 2"):
        infer_one("tfidf_vectorizer", tensor([6], "i32"), **{**_TFIDF, "ngram_indexes": [0, 1]})
    with pytest.raises(TypeInferenceError, match="weights must hold one value per output column"):
        infer_one("tfidf_vectorizer", tensor([6], "i32"), **{**_TFIDF, "weights": [1.0]})
    with pytest.raises(TypeInferenceError, match="1 <= min_gram_length"):
        infer_one("tfidf_vectorizer", tensor([6], "i32"), **{**_TFIDF, "min_gram_length": 3})
    with pytest.raises(TypeInferenceError, match="attribute 'mode' is 'BM25'"):
        infer_one("tfidf_vectorizer", tensor([6], "i32"), **{**_TFIDF, "mode": "BM25"})


def _tfidf_onnx(x: np.ndarray, attrs: dict) -> np.ndarray:
    kw = {("pool_int64s" if k == "pool" else k): v for k, v in attrs.items()
          if not (k == "weights" and not v)}
    if attrs["mode"] != "TF" and not attrs.get("weights"):  # ONNX's reference needs weights
        kw["weights"] = [1.0] * (max(attrs["ngram_indexes"]) + 1)
    node = helper.make_node("TfIdfVectorizer", ["x"], ["y"], **kw)
    (y,) = ReferenceEvaluator(node).run(None, {"x": x})
    return y


def test_tfidf_onnx_example() -> None:
    x = np.array([[1, 1, 3, 3, 3, 7], [8, 6, 7, 5, 6, 8]], np.int32)
    (got,) = run_op("tfidf_vectorizer", x, **_TFIDF)
    np.testing.assert_array_equal(got, [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0, 1]])
    np.testing.assert_array_equal(got, _tfidf_onnx(x, _TFIDF))


def test_tfidf_against_onnx_reference() -> None:
    for seed in range(60):
        rng = np.random.default_rng(seed_of("tfidf", str(seed)))
        (x,), attrs = SAMPLES["tfidf_vectorizer"](rng)
        (got,) = run_op("tfidf_vectorizer", x, **attrs)
        want = _tfidf_onnx(x, attrs)
        assert got.dtype == np.float32 and got.shape == want.shape, (seed, attrs)
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"{seed} {attrs} {x}")


# --- samples --------------------------------------------------------------------------------------


def test_samples_cover_every_op() -> None:
    assert set(SAMPLES) == OPS_TESTED


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_run_and_are_finite(name: str) -> None:
    check_samples(SAMPLES, name)
