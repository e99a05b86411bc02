"""ONNX converters of frontends/onnx/ops/math.py: each model is imported, run on the reference
interpreter and compared with onnx.reference.ReferenceEvaluator on fresh random inputs, across the
opsets whose semantics differ (attribute vs input forms, pre-13 softmax coercion to 2-D)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import onnx
import onnx.shape_inference
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler import ir
from frontends import OnnxImportError, from_onnx
from frontends.onnx.importer import onnx_dtype

RNG_SEED = 20240611


def _elem(arr: np.ndarray) -> int:
    return onnx_dtype(ir.dtypes.dtype(arr.dtype))


def make_model(op: str, inputs: dict[str, Optional[np.ndarray]], opset: int,
               const: Sequence[str] = (), **attrs: Any):
    """A one-node model whose node reads `inputs` in order: graph inputs, except the names in
    `const`, which become initializers, and None values, which are omitted optional inputs."""
    names = [n if a is not None else "" for n, a in inputs.items()]
    node = helper.make_node(op, names, ["out"], name="node0", **attrs)
    vis = [helper.make_tensor_value_info(n, _elem(a), a.shape)
           for n, a in inputs.items() if a is not None and n not in const]
    inits = [numpy_helper.from_array(inputs[n], n) for n in const]
    return _with_inferred_outputs(helper.make_graph([node], "g", vis, [], inits), opset)


def _with_inferred_outputs(graph, opset: int, outputs: Sequence[str] = ("out",)):
    """The model of graph with typed outputs, their types taken from ONNX shape inference."""
    graph.output.extend(helper.make_empty_tensor_value_info(n) for n in outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    for out, typed in zip(model.graph.output, inferred.output):
        out.type.CopyFrom(typed.type)
    return model


def check(op: str, inputs: dict[str, Optional[np.ndarray]], opset: int,
          const: Sequence[str] = (), rtol: float = 1e-5, atol: float = 1e-6,
          want: Optional[np.ndarray] = None, **attrs: Any) -> np.ndarray:
    """Import, interpret, and compare the output with `want`, by default the result of ONNX's
    reference evaluator."""
    model = make_model(op, inputs, opset, const, **attrs)
    feeds = {n: a for n, a in inputs.items() if a is not None and n not in const}
    if want is None:
        (want,) = ReferenceEvaluator(model).run(None, feeds)
    (got,) = ir.interpret(from_onnx(model), *feeds.values())
    want = np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, \
        (op, got.dtype, want.dtype, got.shape, want.shape)
    if got.dtype.kind in "iub":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    return got


def rand(shape: Sequence[int], lo: float = -3.0, hi: float = 3.0, dtype=np.float32,
         seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(RNG_SEED + seed)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return rng.random(shape) < 0.5
    return rng.uniform(lo, hi, size=shape).astype(dtype)


# ---------------------------------------------------------------------------------------------
# elementwise

UNARY = {  # op: (lo, hi) of the inputs
    "Neg": (-3, 3), "Abs": (-3, 3), "Exp": (-3, 3), "Log": (0.1, 5), "Sqrt": (0.1, 5),
    "Reciprocal": (0.5, 3), "Tanh": (-3, 3), "Sigmoid": (-5, 5), "Erf": (-2, 2),
    "Sin": (-3, 3), "Cos": (-3, 3), "Tan": (-1.2, 1.2), "Asin": (-0.9, 0.9),
    "Acos": (-0.9, 0.9), "Atan": (-4, 4), "Sinh": (-3, 3), "Cosh": (-3, 3), "Asinh": (-3, 3),
    "Acosh": (1.1, 4), "Atanh": (-0.9, 0.9), "Floor": (-5, 5), "Ceil": (-5, 5),
    "Round": (-5, 5), "Sign": (-3, 3), "IsNaN": (-3, 3), "IsInf": (-3, 3), "Relu": (-3, 3),
    "Softplus": (-4, 4), "Softsign": (-4, 4), "Mish": (-4, 4), "HardSwish": (-5, 5),
    "Elu": (-3, 3), "Selu": (-3, 3), "Celu": (-3, 3), "LeakyRelu": (-3, 3),
    "HardSigmoid": (-5, 5), "ThresholdedRelu": (-3, 3), "Shrink": (-3, 3), "Gelu": (-3, 3),
}


@pytest.mark.parametrize("op", sorted(UNARY))
def test_unary_and_activations(op: str) -> None:
    lo, hi = UNARY[op]
    check(op, {"x": rand((2, 3, 4), lo, hi)}, opset=22 if op != "Gelu" else 20)


@pytest.mark.parametrize("op, attrs", [
    ("LeakyRelu", {"alpha": 0.3}), ("Elu", {"alpha": 0.5}), ("Selu", {"alpha": 1.5, "gamma": 2.0}),
    ("Celu", {"alpha": 2.0}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
    ("ThresholdedRelu", {"alpha": 0.5}), ("Shrink", {"lambd": 1.0, "bias": 0.25}),
    ("Gelu", {"approximate": "tanh"}), ("IsInf", {"detect_negative": 0}),
])
def test_activation_attributes(op: str, attrs: dict) -> None:
    x = rand((3, 5), seed=1)
    x[0, :2] = [np.inf, -np.inf] if op == "IsInf" else x[0, :2]
    check(op, {"x": x}, opset=20 if op == "Gelu" else 13 if op == "Celu" else 18, **attrs)


def test_old_opset_activations_and_integer_unary() -> None:
    x = rand((2, 6), seed=2)
    for op in ("Relu", "Elu", "Selu", "LeakyRelu", "HardSigmoid", "Softsign", "Softplus"):
        check(op, {"x": x}, opset=6)
    for op in ("Abs", "Neg", "Sign", "Relu"):
        check(op, {"x": rand((3, 4), -9, 9, np.int32, seed=3)}, opset=14)
    check("Shrink", {"x": rand((3, 4), -9, 9, np.int32, seed=3)}, opset=9, lambd=2.0, bias=1.0)


def test_prelu_broadcasts_the_slope() -> None:
    check("PRelu", {"x": rand((2, 3, 4, 5), seed=4), "slope": rand((3, 1, 1), 0, 1, seed=5)},
          opset=16)
    check("PRelu", {"x": rand((2, 3), seed=4), "slope": rand((3,), 0, 1, seed=5)}, opset=7)


ARITH_DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.int8, np.uint8]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Mod", "Pow"])
@pytest.mark.parametrize("dtype", ARITH_DTYPES, ids=lambda d: np.dtype(d).name)
def test_binary_arithmetic(op: str, dtype) -> None:
    a = rand((2, 3, 4), 1 if op == "Pow" else -20, 3 if op == "Pow" else 20, dtype, seed=6)
    b = rand((3, 1), 1, 3 if op == "Pow" else 7, dtype, seed=7)
    if np.dtype(dtype).kind == "u" and op == "Sub":
        a = a + np.uint8(10)
    attrs = {"fmod": 1} if op == "Mod" and np.dtype(dtype).kind == "f" else {}
    check(op, {"a": a, "b": b}, opset=13, rtol=2e-3 if dtype == np.float16 else 1e-5, **attrs)


def test_mod_python_sign_convention() -> None:
    a = np.array([-7, -3, 3, 7], np.int32)
    b = np.array([3, -2, -2, 3], np.int32)
    y = check("Mod", {"a": a, "b": b}, opset=13)
    np.testing.assert_array_equal(y, [2, -1, -1, 1])
    check("Mod", {"a": a, "b": b}, opset=13, fmod=1)


@pytest.mark.parametrize("base, exponent", [(np.float32, np.int64), (np.int32, np.float32),
                                            (np.int64, np.int64), (np.float16, np.float32),
                                            (np.float32, np.float64)])
def test_pow_with_exponent_of_another_type(base, exponent) -> None:
    a = rand((3, 4), 1, 4, base, seed=8)
    b = rand((4,), 0, 3, exponent, seed=9)
    check("Pow", {"a": a, "b": b}, opset=15, rtol=2e-3 if base == np.float16 else 1e-5)


def test_legacy_broadcast_attribute() -> None:
    """Before opset 7, B's dims line up with A's from `axis` (ONNX's reference evaluator does not
    implement that form: NumPy gives the expected values)."""
    a, b, c = rand((2, 3, 4, 5), seed=10), rand((3, 4), seed=11), rand((4, 5), seed=12)
    for op, fn in (("Add", np.add), ("Sub", np.subtract), ("Mul", np.multiply),
                   ("Div", np.divide)):
        check(op, {"a": a, "b": b}, opset=6, want=fn(a, b[:, :, None]), broadcast=1, axis=1)
        check(op, {"a": a, "b": c}, opset=6, want=fn(a, c), broadcast=1)
    base, e = np.abs(a) + 1, rand((2,), 0, 2, seed=13)
    check("Pow", {"a": base, "b": e}, opset=1, want=base ** e[:, None, None, None], broadcast=1,
          axis=0)


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logic(op: str) -> None:
    check(op, {"a": rand((2, 3, 4), dtype=bool, seed=14), "b": rand((3, 4), dtype=bool, seed=15)},
          opset=7)
    check("Not", {"x": rand((3, 4), dtype=bool, seed=16)}, opset=1)


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
def test_bitwise(op: str, dtype) -> None:
    info = np.iinfo(dtype)
    a = rand((3, 4), info.min, info.max, dtype, seed=17)
    check(op, {"a": a, "b": rand((4,), info.min, info.max, dtype, seed=18)}, opset=18)
    check("BitwiseNot", {"x": a}, opset=18)


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.int64])
def test_bit_shift(direction: str, dtype) -> None:
    info = np.iinfo(dtype)
    x = rand((4, 6), info.min, info.max, dtype, seed=19)
    signed = info.min < 0
    y = rand((6,), -2 if signed else 0, info.bits + 2, dtype, seed=20)
    check("BitShift", {"x": x, "y": y}, opset=28 if signed else 11, direction=direction)


@pytest.mark.parametrize("op", ["Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual"])
def test_comparisons(op: str) -> None:
    a, b = rand((2, 3, 4), 0, 3, np.int32, seed=21), rand((4,), 0, 3, np.int32, seed=22)
    check(op, {"a": a, "b": b}, opset=16)
    check(op, {"a": a.astype(np.float32), "b": b.astype(np.float32)}, opset=13)
    if op == "Equal":
        check(op, {"a": a > 1, "b": b > 1}, opset=19)


def test_where_and_variadic_ops() -> None:
    c = rand((2, 3, 4), dtype=bool, seed=23)
    check("Where", {"c": c, "a": rand((3, 4), seed=24), "b": rand((4,), seed=25)}, opset=16)
    xs = {"a": rand((2, 3, 4), seed=26), "b": rand((3, 1), seed=27), "c": rand((4,), seed=28)}
    for op in ("Max", "Min", "Sum", "Mean"):
        check(op, xs, opset=13)
        check(op, {"a": xs["a"]}, opset=8)
    check("Max", {"a": rand((3,), 0, 9, np.int32), "b": rand((3,), 0, 9, np.int32, seed=1)},
          opset=12)


def test_clip_every_form() -> None:
    x = rand((3, 4), -5, 5, seed=29)
    check("Clip", {"x": x}, opset=6, min=-1.0, max=2.0)
    check("Clip", {"x": x}, opset=6, max=0.5)
    check("Clip", {"x": x}, opset=6)
    lo, hi = np.array(-1.5, np.float32), np.array(1.0, np.float32)
    check("Clip", {"x": x, "lo": lo, "hi": hi}, opset=13, const=("lo", "hi"))
    check("Clip", {"x": x, "lo": lo, "hi": hi}, opset=13)  # run-time bounds
    check("Clip", {"x": x, "lo": None, "hi": hi}, opset=13)  # min omitted
    check("Clip", {"x": x, "lo": hi, "hi": lo}, opset=13, const=("lo", "hi"))  # min > max
    xi = rand((3, 4), -100, 100, np.int8, seed=30)
    check("Clip", {"x": xi, "lo": np.array(-3, np.int8), "hi": np.array(50, np.int8)}, opset=13,
          const=("lo", "hi"))
    xl = np.array([-2**62, 0, 2**62 + 1], np.int64)  # bounds a float attribute cannot hold
    check("Clip", {"x": xl, "lo": np.array(-2**61 - 1, np.int64)}, opset=13, const=("lo",))


# ---------------------------------------------------------------------------------------------
# softmax family


def _softmax_2d(op: str, x: np.ndarray, axis: int) -> np.ndarray:
    """Opsets 1-12: the op over the trailing block from axis of x seen as a 2-D matrix (ONNX's
    reference evaluator applies the opset-13 one-axis form to every opset)."""
    rows = x.reshape(int(np.prod(x.shape[:axis])), -1).astype(np.float64)
    if op == "Hardmax":
        y = np.zeros_like(rows)
        y[np.arange(len(rows)), rows.argmax(axis=1)] = 1
    else:
        shifted = rows - rows.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        y = shifted - log_sum if op == "LogSoftmax" else np.exp(shifted - log_sum)
    return y.reshape(x.shape).astype(x.dtype)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("opset, axis", [(11, 1), (11, 0), (11, -1), (11, None), (1, 2),
                                         (13, 1), (13, -3), (13, None)])
def test_softmax_family(op: str, opset: int, axis: Optional[int]) -> None:
    x = rand((2, 3, 4), seed=31)
    x[0, 0, :2] = 7.0  # a tie for Hardmax: the first one wins
    attrs = {} if axis is None else {"axis": axis}
    want = None
    if opset < 13:
        want = _softmax_2d(op, x, (1 if axis is None else axis) % x.ndim)
    check(op, {"x": x}, opset=opset, want=want, **attrs)


# ---------------------------------------------------------------------------------------------
# reductions

REDUCE = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
          "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]


@pytest.mark.parametrize("op", REDUCE)
def test_reductions_attribute_and_input_forms(op: str) -> None:
    x = rand((2, 3, 4), 0.5, 1.5, seed=32)
    for keepdims in (0, 1):
        check(op, {"x": x}, opset=11, axes=[0, -1], keepdims=keepdims)
        check(op, {"x": x, "axes": np.array([1], np.int64)}, opset=18, const=("axes",),
              keepdims=keepdims)
    check(op, {"x": x}, opset=11)  # all axes, keepdims=1
    check(op, {"x": x}, opset=18)  # no axes input: all axes
    check(op, {"x": x}, opset=18, noop_with_empty_axes=1)
    check(op, {"x": x, "axes": np.zeros(0, np.int64)}, opset=18, const=("axes",), keepdims=0)


def test_reductions_on_other_dtypes() -> None:
    b = rand((3, 4), dtype=bool, seed=33)
    for op in ("ReduceMax", "ReduceMin"):
        check(op, {"x": b, "axes": np.array([1], np.int64)}, opset=20, const=("axes",))
        check(op, {"x": np.zeros((0, 2), bool), "axes": np.array([0], np.int64)}, opset=20,
              const=("axes",))
    xi = rand((3, 4), -20, 20, np.int32, seed=34)
    for op in ("ReduceMean", "ReduceSum", "ReduceProd", "ReduceL1"):
        check(op, {"x": xi}, opset=11, axes=[1])
    # the reference evaluator's ReduceSumSquare-1 widens int32 to int64; ONNX keeps the type
    check("ReduceSumSquare", {"x": xi}, opset=11, axes=[1],
          want=(xi * xi).sum(1, keepdims=True, dtype=np.int32))


def test_empty_reductions() -> None:
    x = np.zeros((2, 0, 4), np.float32)
    for op in ("ReduceSum", "ReduceProd", "ReduceMax", "ReduceMin", "ReduceL2",
               "ReduceLogSumExp", "ReduceLogSum"):
        check(op, {"x": x, "axes": np.array([1], np.int64)}, opset=18, const=("axes",))


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reductions(op: str) -> None:
    x = rand((3, 4, 5), 0, 3, np.int32, seed=35).astype(np.float32)  # many ties
    check(op, {"x": x}, opset=11)
    for select_last_index in (0, 1):
        check(op, {"x": x}, opset=13, axis=-1, keepdims=0, select_last_index=select_last_index)


def test_cumsum() -> None:
    x = rand((3, 4), seed=36)
    for exclusive in (0, 1):
        for reverse in (0, 1):
            check("CumSum", {"x": x, "axis": np.array(-1, np.int64)}, opset=14,
                  const=("axis",), exclusive=exclusive, reverse=reverse)
    check("CumSum", {"x": rand((5,), -9, 9, np.int32), "axis": np.array(0, np.int32)}, opset=11,
          const=("axis",))


# ---------------------------------------------------------------------------------------------
# matmul family and normalizations


def test_matmul_gemm_einsum_det() -> None:
    check("MatMul", {"a": rand((2, 1, 3, 4), seed=37), "b": rand((5, 4, 2), seed=38)}, opset=13)
    check("MatMul", {"a": rand((4,), seed=37), "b": rand((2, 4, 3), seed=38)}, opset=13)
    a, b, c = rand((4, 3), seed=39), rand((5, 4), seed=40), rand((5,), seed=41)
    check("Gemm", {"a": a, "b": b, "c": c}, opset=13, transA=1, transB=1, alpha=0.5, beta=2.0)
    check("Gemm", {"a": a.T.copy(), "b": b.T.copy()}, opset=13)
    check("Gemm", {"a": a.T.copy(), "b": b.T.copy(), "c": rand((3, 5), seed=42)}, opset=6,
          broadcast=0)
    check("Einsum", {"a": rand((2, 3, 4), seed=43), "b": rand((2, 4, 5), seed=44)}, opset=12,
          equation="bij, bjk -> bik")
    check("Einsum", {"a": rand((3, 3), seed=45)}, opset=12, equation="ii")
    check("Det", {"x": rand((2, 3, 3), seed=46)}, opset=22, rtol=1e-4)


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide")  # the reference's 0/0
def test_lp_normalization() -> None:
    x = rand((3, 4), seed=47)
    x[1] = 0.0  # a zero norm gives 0, not nan
    y = check("LpNormalization", {"x": x}, opset=22)
    assert (y[1] == 0).all()
    check("LpNormalization", {"x": x[:, :3] + 4}, opset=1, p=1, axis=0)


# ---------------------------------------------------------------------------------------------
# symbolic dims and errors


def test_symbolic_batch_dims() -> None:
    """Softmax (pre-13, flattened at axis 1), a reduction and a shape computation on [?n, 3, 4]:
    the batch stays symbolic, and Shape * 1 -> Reshape keeps the dims the importer tracks."""
    nodes = [helper.make_node("Softmax", ["x"], ["s"], axis=1),
             helper.make_node("ReduceSum", ["s"], ["r"], axes=[2], keepdims=1),
             helper.make_node("Shape", ["x"], ["shp"]),
             helper.make_node("Mul", ["shp", "one"], ["shp1"]),
             helper.make_node("Add", ["shp1", "zero"], ["shp2"]),
             helper.make_node("Reshape", ["r", "shp2"], ["y"])]
    inits = [numpy_helper.from_array(np.array([1, 1, 1], np.int64), "one"),
             numpy_helper.from_array(np.array([0, 0, -3], np.int64), "zero")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    m = from_onnx(model)
    text = ir.print_module(m)
    assert "-> (f32[?n,3,1])" in text, text
    for n in (1, 4):
        x = rand((n, 3, 4), seed=n)
        want = _softmax_2d("Softmax", x, 1).sum(axis=2, keepdims=True)
        (got,) = ir.interpret(m, x)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op, opset, attrs, message", [
    ("Gelu", 20, {"approximate": "exact"}, "attribute approximate = 'exact'"),
    ("LpNormalization", 22, {"p": 3}, "attribute p = 3"),
    ("Mod", 13, {"fmod": 2}, "attribute fmod = 2"),
])
def test_unsupported_attribute_values_name_the_node(op: str, opset: int, attrs: dict,
                                                    message: str) -> None:
    model = make_model(op, {"x": rand((2, 3)), **({"b": rand((2, 3))} if op == "Mod" else {})},
                       opset, **attrs)
    with pytest.raises(OnnxImportError, match=rf"{op} node 'node0' \(opset {opset}\): {message}"):
        from_onnx(model)


def test_runtime_axes_are_a_clear_error() -> None:
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="node0")
    graph = helper.make_graph([node], "g", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
        helper.make_tensor_value_info("axes", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(OnnxImportError, match=r"ReduceSum node 'node0' \(opset 13\): input 1 "
                                              r"\(axes\) must be a constant"):
        from_onnx(model)


def test_prelu_before_opset_7_has_per_channel_slope():
    from onnx import TensorProto, helper

    from compiler import ir
    from frontends import from_onnx
    g = helper.make_graph([helper.make_node("PRelu", ["x", "s"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4]),
                           helper.make_tensor_value_info("s", TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])])
    m = from_onnx(helper.make_model(g, opset_imports=[helper.make_opsetid("", 6)]))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    s = rng.standard_normal(3).astype(np.float32)
    (y,) = ir.interpret(m, x, s)
    np.testing.assert_array_equal(y, np.where(x < 0, x * s[None, :, None], x))
