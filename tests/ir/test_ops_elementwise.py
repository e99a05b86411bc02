"""Tests of the elementwise ops (compiler/ir/ops/elementwise.py) and `constant`: type rules
(broadcasting over static and symbolic dims, dtype restrictions, attributes) and numerics against
PyTorch on random inputs, run through the builder and the reference interpreter."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import compiler.ir.ops.elementwise as elementwise_ops
from compiler.ir import BuildError, FunctionBuilder, Module, TypeInferenceError, get_op, interpret
from compiler.ir import dtypes as dt
from compiler.ir.types import TensorType, tensor
from tests.ir.opcheck import BF16, check_samples, run_op
from tests.ir.opcheck import infer_one as infer
from tests.ir.samples.elementwise import SAMPLES

torch.set_num_threads(1)

UNARY_FLOAT = ["exp", "log", "sqrt", "rsqrt", "reciprocal", "tanh", "sigmoid", "erf", "sin", "cos",
               "floor", "ceil", "round", "silu", "softplus", "leaky_relu", "elu", "gelu"]
UNARY_NUMERIC = ["abs", "sign", "relu"]
ARITH = ["add", "sub", "mul", "div", "pow", "mod", "max", "min"]
LOGIC = ["and", "or", "xor"]
COMPARE = ["eq", "ne", "lt", "le", "gt", "ge"]

OPS_TESTED = {
    *UNARY_FLOAT, *UNARY_NUMERIC, "neg", "not", "isnan", "isinf", *ARITH, *LOGIC, *COMPARE,
    "where", "clip", "cast", "constant",
}


def to_torch(x: np.ndarray) -> torch.Tensor:
    """A torch tensor with x's values and dtype (bf16 goes through f32, which holds it exactly)."""
    if x.dtype == BF16:
        return torch.from_numpy(np.ascontiguousarray(x.astype(np.float32))).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(x))


def from_torch(t: torch.Tensor) -> np.ndarray:
    if t.dtype == torch.bfloat16:
        return t.float().numpy().astype(BF16)
    return t.numpy()


def check(actual: np.ndarray, expected: "torch.Tensor | np.ndarray", rtol: float = 1e-5,
          atol: float = 1e-6) -> None:
    """Same dtype and shape, values close (nan where expected is nan)."""
    exp = from_torch(expected) if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert actual.dtype == exp.dtype, (actual.dtype, exp.dtype)
    assert actual.shape == exp.shape, (actual.shape, exp.shape)
    if actual.dtype.kind in "iub":
        np.testing.assert_array_equal(actual, exp)
    else:
        np.testing.assert_allclose(actual.astype(np.float64), exp.astype(np.float64), rtol=rtol,
                                   atol=atol, equal_nan=True)


def rand(rng: np.random.Generator, shape: tuple[int, ...], lo: float = -3.0, hi: float = 3.0,
         dtype: Any = np.float32) -> np.ndarray:
    return rng.uniform(lo, hi, size=shape).astype(dtype)


def rand_nonzero(rng: np.random.Generator, shape: tuple[int, ...], lo: float = 0.3,
                 hi: float = 3.0, dtype: Any = np.float32) -> np.ndarray:
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return (rng.uniform(lo, hi, size=shape) * sign).astype(dtype)


# ---------------------------------------------------------------------------------------------
# coverage


def test_every_declared_op_is_tested_and_sampled() -> None:
    """The op names declared in elementwise.py (read from its source) are exactly those this file
    covers, and each has a sample generator."""
    src = Path(elementwise_ops.__file__).read_text()
    declared = set(re.findall(r'^(?:_unary|_binary|def_op)\("(\w+)"', src, re.M))
    assert declared == OPS_TESTED - {"constant"}
    assert set(SAMPLES) == declared
    for name in OPS_TESTED:
        assert get_op(name).doc


def test_traits() -> None:
    for name in ("add", "mul", "max", "min", "and", "or", "xor", "eq", "ne"):
        assert get_op(name).has("commutative"), name
    for name in ("sub", "div", "pow", "mod", "lt", "le", "gt", "ge"):
        assert not get_op(name).has("commutative"), name
    for name in OPS_TESTED - {"constant"}:
        assert get_op(name).has("pure") and get_op(name).has("elementwise"), name
    for name in ARITH + LOGIC + COMPARE + ["where"]:
        assert get_op(name).has("broadcasting"), name
    assert get_op("constant").has("pure")


# ---------------------------------------------------------------------------------------------
# type rules: unary ops


@pytest.mark.parametrize("name", UNARY_FLOAT + UNARY_NUMERIC + ["neg"])
@pytest.mark.parametrize("t", [tensor([], "f32"), tensor(["b", 4], "f16"),
                               tensor([2, 1, "s", 3], "bf16"), tensor([5], "f64")],
                         ids=str)
def test_unary_result_is_operand_type(name: str, t: TensorType) -> None:
    assert infer(name, t) == t


@pytest.mark.parametrize("name", UNARY_FLOAT)
@pytest.mark.parametrize("dtype", ["i32", "u8", "bool"])
def test_float_unary_rejects_non_float(name: str, dtype: str) -> None:
    with pytest.raises(TypeInferenceError, match=rf"{name} operand must be float, got {dtype}"):
        infer(name, tensor([2, 3], dtype))


def test_numeric_unary_dtypes() -> None:
    for name in UNARY_NUMERIC:
        for d in ("i8", "u8", "i16", "i32", "i64"):
            assert infer(name, tensor(["n", 2], d)) == tensor(["n", 2], d)
        with pytest.raises(TypeInferenceError, match=f"{name} operand must be int/uint/float"):
            infer(name, tensor([2], "bool"))
    assert infer("neg", tensor([3], "i8")).dtype == dt.i8
    with pytest.raises(TypeInferenceError, match="neg operand must be int/float, got u8"):
        infer("neg", tensor([3], "u8"))
    with pytest.raises(TypeInferenceError, match="neg operand must be int/float, got bool"):
        infer("neg", tensor([3], "bool"))


def test_predicate_types() -> None:
    assert infer("not", tensor(["b", 3], "bool")) == tensor(["b", 3], "bool")
    for name in ("isnan", "isinf"):
        for d in ("f32", "f16", "bf16", "f64"):
            assert infer(name, tensor([2, "b"], d)) == tensor([2, "b"], "bool")
        with pytest.raises(TypeInferenceError, match=f"{name} operand must be float, got i32"):
            infer(name, tensor([2], "i32"))
    with pytest.raises(TypeInferenceError, match="not operand must be bool, got f32"):
        infer("not", tensor([2], "f32"))
    with pytest.raises(TypeInferenceError, match="not operand must be bool, got i8"):
        infer("not", tensor([2], "i8"))


def test_unary_attributes() -> None:
    assert get_op("leaky_relu").normalize_attrs({})["alpha"] == 0.01
    assert get_op("elu").normalize_attrs({})["alpha"] == 1.0
    assert get_op("gelu").normalize_attrs({})["approximate"] == "none"
    assert get_op("isinf").normalize_attrs({}) == {"detect_positive": True,
                                                   "detect_negative": True}
    assert get_op("mod").normalize_attrs({})["fmod"] is False
    assert infer("gelu", tensor([4], "f32"), approximate="tanh") == tensor([4], "f32")
    with pytest.raises(TypeInferenceError, match=r"gelu attribute 'approximate' is 'erf'"):
        infer("gelu", tensor([4], "f32"), approximate="erf")
    with pytest.raises(TypeInferenceError, match=r"leaky_relu attribute 'alpha' must be float"):
        infer("leaky_relu", tensor([4], "f32"), alpha="big")
    with pytest.raises(TypeInferenceError, match="relu has no attribute alpha"):
        infer("relu", tensor([4], "f32"), alpha=0.1)
    with pytest.raises(TypeInferenceError, match="exp takes 1 operands"):
        infer("exp", tensor([4], "f32"), tensor([4], "f32"))


# ---------------------------------------------------------------------------------------------
# type rules: binary ops, broadcasting


@pytest.mark.parametrize("a, b, out", [
    ([2, 3], [2, 3], [2, 3]),
    ([2, 1, 4], [3, 1], [2, 3, 4]),
    ([], [2, 3], [2, 3]),                          # rank 0 broadcasts against anything
    ([4, 1], [], [4, 1]),
    ([], [], []),
    ([1], [5, 1, 1], [5, 1, 1]),
    (["b", 1], [1, 4], ["b", 4]),                  # a symbol against 1 keeps the symbol
    ([1, "s"], ["b", 1], ["b", "s"]),
    (["b", 4], ["b", 1], ["b", 4]),                # a symbol against itself
    (["b", "s", 8], ["s", 1], ["b", "s", 8]),
    (["b", 3], [4, 1], [4, 3]),                     # a symbol against n > 1 gives n
], ids=str)
def test_binary_broadcasting(a: list, b: list, out: list) -> None:
    for name in ARITH:
        assert infer(name, tensor(a, "f32"), tensor(b, "f32")) == tensor(out, "f32")
    assert infer("and", tensor(a, "bool"), tensor(b, "bool")) == tensor(out, "bool")
    assert infer("lt", tensor(b, "i32"), tensor(a, "i32")) == tensor(out, "bool")


@pytest.mark.parametrize("a, b", [([2, 3], [3, 2]), ([4], [5]), (["b"], ["c"]),
                                  ([2, "b", 3], ["c", 3]), ([2, 3], [2, 3, 3])], ids=str)
def test_binary_broadcasting_rejected(a: list, b: list) -> None:
    for name in ("add", "mul", "eq", "max"):
        with pytest.raises(TypeInferenceError, match=r"do not broadcast \(axis \d\)"):
            infer(name, tensor(a, "f32"), tensor(b, "f32"))


def test_binary_dtypes() -> None:
    for name in ARITH:
        for d in ("f32", "f16", "bf16", "f64", "i8", "u8", "i16", "i32", "i64"):
            assert infer(name, tensor([2], d), tensor([2], d)).dtype == dt.dtype(d)
        with pytest.raises(TypeInferenceError, match=f"{name} operands must share a dtype, "
                                                     "got f32 and f16"):
            infer(name, tensor([2], "f32"), tensor([2], "f16"))
        with pytest.raises(TypeInferenceError, match=f"{name} operand must be int/uint/float, "
                                                     "got bool"):
            infer(name, tensor([2], "bool"), tensor([2], "bool"))
    with pytest.raises(TypeInferenceError, match="add operands must share a dtype, got i32 and "
                                                 "i64"):
        infer("add", tensor([2], "i32"), tensor([2], "i64"))
    with pytest.raises(TypeInferenceError, match="add takes 2 operands"):
        infer("add", tensor([2], "f32"))


def test_logic_and_comparison_dtypes() -> None:
    for name in LOGIC:
        assert infer(name, tensor(["n"], "bool"), tensor([], "bool")) == tensor(["n"], "bool")
        for d in ("f32", "i32", "u8"):
            with pytest.raises(TypeInferenceError, match=f"{name} operand must be bool, got {d}"):
                infer(name, tensor([2], d), tensor([2], d))
    for name in COMPARE:
        for d in ("f32", "f16", "bf16", "f64", "i8", "u8", "i32", "i64"):
            assert infer(name, tensor([2, 1], d), tensor([3], d)) == tensor([2, 3], "bool")
        with pytest.raises(TypeInferenceError, match=f"{name} operands must share a dtype"):
            infer(name, tensor([2], "f32"), tensor([2], "i32"))
    for name in ("eq", "ne"):
        assert infer(name, tensor([2], "bool"), tensor([2], "bool")) == tensor([2], "bool")
    for name in ("lt", "le", "gt", "ge"):
        with pytest.raises(TypeInferenceError, match=f"{name} operand must be int/uint/float"):
            infer(name, tensor([2], "bool"), tensor([2], "bool"))


def test_builder_reports_bad_operands() -> None:
    f = FunctionBuilder(Module("m"), "main")
    x = f.arg("x", tensor(["b", 4], "f32"))
    y = f.arg("y", tensor([4], "f16"))
    n = f.arg("n", tensor([3], "i32"))
    with pytest.raises(BuildError, match=r"add\(f32\[\?b,4\], f16\[4\]\): add operands must share"):
        f.add(x, y)
    with pytest.raises(BuildError, match=r"exp\(i32\[3\]\): exp operand must be float, got i32"):
        f.exp(n)
    with pytest.raises(BuildError, match="do not broadcast"):
        f.mul(x, f.arg("z", tensor(["c", 4], "f32")))
    with pytest.raises(BuildError, match="not an IR Value"):
        f.add(x, np.ones(4, np.float32))
    assert f.add(x, f.arg("w", tensor([1], "f32"))).type == tensor(["b", 4], "f32")


# ---------------------------------------------------------------------------------------------
# type rules: where, clip, cast


def test_where_types() -> None:
    assert infer("where", tensor([2, 1, 1], "bool"), tensor([3, 1], "f16"),
                 tensor([4], "f16")) == tensor([2, 3, 4], "f16")
    assert infer("where", tensor(["b", 1], "bool"), tensor([], "i64"),
                 tensor(["b", "s"], "i64")) == tensor(["b", "s"], "i64")
    assert infer("where", tensor([], "bool"), tensor([3], "bool"),
                 tensor([3], "bool")) == tensor([3], "bool")
    with pytest.raises(TypeInferenceError, match="where condition must be bool, got f32"):
        infer("where", tensor([3], "f32"), tensor([3], "f32"), tensor([3], "f32"))
    with pytest.raises(TypeInferenceError, match="where operands must share a dtype, got f32 "
                                                 "and i32"):
        infer("where", tensor([3], "bool"), tensor([3], "f32"), tensor([3], "i32"))
    with pytest.raises(TypeInferenceError, match="do not broadcast"):
        infer("where", tensor([2], "bool"), tensor([3], "f32"), tensor([3], "f32"))
    with pytest.raises(TypeInferenceError, match="do not broadcast"):
        infer("where", tensor(["a"], "bool"), tensor(["b"], "f32"), tensor([1], "f32"))


def test_clip_types() -> None:
    t = tensor(["b", 3], "f32")
    assert infer("clip", t) == t
    assert infer("clip", t, min=-1.0) == t
    assert infer("clip", t, max=2) == t
    assert infer("clip", tensor([2], "u8"), min=1.0, max=1.0) == tensor([2], "u8")
    assert get_op("clip").normalize_attrs({"min": 1}) == {"min": 1.0, "max": None}
    with pytest.raises(TypeInferenceError, match="clip min 2.0 is greater than max 1.0"):
        infer("clip", t, min=2.0, max=1.0)
    with pytest.raises(TypeInferenceError, match="clip operand must be int/uint/float, got bool"):
        infer("clip", tensor([2], "bool"), min=0.0)
    with pytest.raises(TypeInferenceError, match="clip attribute 'min' must be float"):
        infer("clip", t, min="low")


@pytest.mark.parametrize("to", [d.name for d in dt.ALL_DTYPES])
def test_cast_types(to: str) -> None:
    for src in ("f32", "bf16", "i64", "u8", "bool"):
        res = infer("cast", tensor(["b", 2, "s"], src), to=to)
        assert res == tensor(["b", 2, "s"], to)
        assert isinstance(res.dtype, dt.DType)
    assert infer("cast", tensor([], "f32"), to=dt.dtype(to)) == tensor([], to)


@pytest.mark.parametrize("to", [d.name for d in dt.DTYPES if d not in dt.ALL_DTYPES])
def test_cast_types_new_dtypes(to: str) -> None:
    """u16/u32/u64 and the narrow types: cast takes them as source and target."""
    for src in ("f32", "bf16", "i64", "u8", "bool", "u64", "f8e4m3fn", "f8e8m0", "f4e2m1", "i4",
                "u2"):
        assert infer("cast", tensor(["b", 2], src), to=to) == tensor(["b", 2], to)
        assert infer("cast", tensor([3], to), to=src) == tensor([3], src)
    assert infer("cast", tensor([2], "f32"), to=to, saturate=False, round_mode="down") == \
        tensor([2], to)


def test_cast_attributes() -> None:
    op = get_op("cast")
    assert op.normalize_attrs({"to": "f8e5m2"}) == {"to": dt.f8e5m2, "saturate": True,
                                                      "round_mode": "up"}
    with pytest.raises(TypeInferenceError, match="round_mode"):
        op.normalize_attrs({"to": "f8e8m0", "round_mode": "even"})
    m = Module("c")
    f = FunctionBuilder(m)
    x = f.arg("x", tensor([2], "f32"))
    f.ret(f.cast(x, to="f8e4m3fn", saturate=False), f.cast(x, to="f8e8m0", round_mode="nearest"),
          f.cast(x, to="f8e5m2"))
    from compiler import ir
    text = ir.print_module(m)
    assert "cast(%x) {to = f8e4m3fn, saturate = false} : f8e4m3fn[2]" in text
    assert "cast(%x) {to = f8e8m0, round_mode = \"nearest\"} : f8e8m0[2]" in text
    assert "cast(%x) {to = f8e5m2} : f8e5m2[2]" in text  # defaults are not printed
    assert ir.print_module(ir.parse(text)) == text


def test_cast_needs_a_known_dtype() -> None:
    with pytest.raises(TypeInferenceError, match=r"cast needs attribute 'to' \(dtype\)"):
        infer("cast", tensor([2], "f32"))
    with pytest.raises(TypeInferenceError, match="cast attribute 'to' must be dtype.*f128"):
        infer("cast", tensor([2], "f32"), to="f128")
    assert infer("cast", tensor([2], "f32"), to=np.float16) == tensor([2], "f16")


# ---------------------------------------------------------------------------------------------
# constant


def test_constant_op() -> None:
    rng = np.random.default_rng(0)
    m = Module("m")
    f = FunctionBuilder(m, "main")
    w_arr = rand(rng, (2, 3))
    w = f.constant(w_arr, name="w")
    b = f.constant(np.int64(7), name="b")
    h = f.constant(rand(rng, (3,), dtype=BF16), name="h")
    assert w.type == tensor([2, 3], "f32")
    assert b.type == tensor([], "i64")
    assert h.type == tensor([3], "bf16")
    op = f.function.ops[0]
    assert op.name == "constant" and op.operands == [] and op.attrs == {"name": "w"}
    x = f.arg("x", tensor(["n", 3], "f32"))
    f.ret(w, b, f.add(x, f.constant(1.5, dtype=np.float32)), h)
    x_arr = rand(rng, (4, 3))
    out_w, out_b, out_sum, out_h = interpret(m, x_arr)
    check(out_w, w_arr, rtol=0, atol=0)
    check(out_b, np.asarray(7, np.int64))
    check(out_sum, x_arr + np.float32(1.5), rtol=0, atol=0)
    assert out_h.dtype == BF16
    # widened runs read f32 constants as f64
    assert interpret(m, x_arr, dtype="f64")[0].dtype == np.float64


def test_constant_errors() -> None:
    m = Module("m")
    f = FunctionBuilder(m, "main")
    f.constant(np.zeros(2, np.float32), name="w")
    with pytest.raises(BuildError, match="constant refers to @nope, which the module does not"):
        f.op("constant", name="nope")
    with pytest.raises(BuildError, match=r"constant needs attribute 'name'"):
        f.op("constant")
    with pytest.raises(TypeInferenceError, match="type comes from the module"):
        infer("constant", name="w")
    with pytest.raises(ValueError, match="unknown dtype"):
        f.constant(np.zeros(2, np.complex64))
    # a second constant under a taken name gets a fresh one
    f.constant(np.ones(1, np.float32), name="w")
    assert f.function.ops[-1].attrs == {"name": "w_1"}
    assert sorted(m.constants) == ["w", "w_1"]


# ---------------------------------------------------------------------------------------------
# numerics: unary float ops against torch

UNARY_TORCH: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], float, float]] = {
    # name: (torch fn, input low, input high)
    "exp": (torch.exp, -4, 4),
    "log": (torch.log, 0.05, 5),
    "sqrt": (torch.sqrt, 0.05, 5),
    "rsqrt": (torch.rsqrt, 0.05, 5),
    "tanh": (torch.tanh, -4, 4),
    "sigmoid": (torch.sigmoid, -8, 8),
    "erf": (torch.erf, -3, 3),
    "sin": (torch.sin, -6, 6),
    "cos": (torch.cos, -6, 6),
    "floor": (torch.floor, -10, 10),
    "ceil": (torch.ceil, -10, 10),
    "round": (torch.round, -10, 10),
    "silu": (F.silu, -8, 8),
    "softplus": (F.softplus, -8, 8),
    "gelu": (F.gelu, -5, 5),
    "leaky_relu": (F.leaky_relu, -5, 5),
    "elu": (F.elu, -5, 5),
    "neg": (torch.neg, -5, 5),
    "abs": (torch.abs, -5, 5),
    "sign": (torch.sign, -5, 5),
    "relu": (torch.relu, -5, 5),
}


@pytest.mark.parametrize("name", sorted(UNARY_TORCH) + ["reciprocal"])
def test_unary_f32_vs_torch(name: str) -> None:
    rng = np.random.default_rng(sum(map(ord, name)))
    if name == "reciprocal":
        fn, x = torch.reciprocal, rand_nonzero(rng, (3, 17), 0.1, 5)
    else:
        fn, lo, hi = UNARY_TORCH[name]
        x = rand(rng, (3, 17), lo, hi)
    (y,) = run_op(name, x)
    check(y, fn(to_torch(x)), rtol=2e-6, atol=1e-6)


def test_round_half_to_even() -> None:
    x = np.array([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 2.4999, 2.5001, -7.0], np.float32)
    (y,) = run_op("round", x)
    check(y, np.array([0, 2, 2, 4, -0.0, -2, -2, 2, 3, -7], np.float32), rtol=0, atol=0)
    check(y, torch.round(to_torch(x)), rtol=0, atol=0)
    (y16,) = run_op("round", x.astype(np.float16))
    check(y16, torch.round(to_torch(x.astype(np.float16))), rtol=0, atol=0)


@pytest.mark.parametrize("alpha", [0.2, 1.7])
def test_activation_attrs_vs_torch(alpha: float) -> None:
    rng = np.random.default_rng(1)
    x = rand(rng, (4, 9), -5, 5)
    t = to_torch(x)
    check(run_op("leaky_relu", x, alpha=alpha)[0], F.leaky_relu(t, alpha), rtol=2e-6)
    check(run_op("elu", x, alpha=alpha)[0], F.elu(t, alpha), rtol=2e-6)
    check(run_op("gelu", x, approximate="tanh")[0], F.gelu(t, approximate="tanh"), rtol=2e-6)
    check(run_op("gelu", x, approximate="none")[0], F.gelu(t, approximate="none"), rtol=2e-6)
    # the two gelu forms differ, but only slightly
    diff = run_op("gelu", x, approximate="tanh")[0] - run_op("gelu", x)[0]
    assert 0 < np.abs(diff).max() < 1e-2


def test_unary_extremes_stay_finite() -> None:
    x = np.array([-100.0, -30.0, 0.0, 30.0, 100.0], np.float32)
    t = to_torch(x)
    check(run_op("sigmoid", x)[0], torch.sigmoid(t))
    check(run_op("silu", x)[0], F.silu(t))
    check(run_op("softplus", x)[0], F.softplus(t))
    check(run_op("tanh", x)[0], torch.tanh(t))
    check(run_op("exp", x)[0], torch.exp(t))          # overflows to inf like torch
    check(run_op("log", np.array([0.0, -1.0], np.float32))[0],
          np.array([-np.inf, np.nan], np.float32))


# ---------------------------------------------------------------------------------------------
# numerics: binary float ops against torch

BINARY_TORCH: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow,
    "max": torch.maximum, "min": torch.minimum,
    "mod": torch.remainder,
}


@pytest.mark.parametrize("name", sorted(BINARY_TORCH))
@pytest.mark.parametrize("shapes", [((3, 5), (3, 5)), ((2, 1, 5), (4, 1)), ((), (3, 2))], ids=str)
def test_binary_f32_vs_torch(name: str, shapes: tuple) -> None:
    rng = np.random.default_rng(len(name) * 7 + len(shapes[1]))
    if name == "pow":
        a, b = rand(rng, shapes[0], 0.2, 3), rand(rng, shapes[1], -2.5, 2.5)
    else:
        a, b = rand(rng, shapes[0], -5, 5), rand_nonzero(rng, shapes[1], 0.5, 4)
    (y,) = run_op(name, a, b)
    check(y, BINARY_TORCH[name](to_torch(a), to_torch(b)), rtol=2e-6, atol=2e-6)


def test_mod_float_both_conventions() -> None:
    rng = np.random.default_rng(3)
    a, b = rand(rng, (6, 7), -10, 10), rand_nonzero(rng, (7,), 0.5, 3)
    check(run_op("mod", a, b)[0], torch.remainder(to_torch(a), to_torch(b)), atol=1e-5)
    check(run_op("mod", a, b, fmod=True)[0], torch.fmod(to_torch(a), to_torch(b)), atol=1e-5)
    # remainder takes the divisor's sign, fmod the dividend's
    r = run_op("mod", a, b)[0]
    assert np.all((r == 0) | (np.sign(r) == np.sign(b)))
    r = run_op("mod", a, b, fmod=True)[0]
    assert np.all((r == 0) | (np.sign(r) == np.sign(a)))


@pytest.mark.parametrize("name, fn", [("eq", torch.eq), ("ne", torch.ne), ("lt", torch.lt),
                                      ("le", torch.le), ("gt", torch.gt), ("ge", torch.ge)])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint8, BF16])
def test_comparisons_vs_torch(name: str, fn: Callable, dtype: Any) -> None:
    rng = np.random.default_rng(5)
    # few distinct values so that ties occur
    a = rng.integers(0, 4, size=(4, 1, 6)).astype(dtype)
    b = rng.integers(0, 4, size=(3, 6)).astype(dtype)
    (y,) = run_op(name, a, b)
    check(y, fn(to_torch(a), to_torch(b)))
    assert y.any() and not y.all()


def test_bool_equality_and_logic_vs_torch() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.random((3, 1, 5)) < 0.5, rng.random((4, 5)) < 0.5
    ta, tb = to_torch(a), to_torch(b)
    check(run_op("and", a, b)[0], torch.logical_and(ta, tb))
    check(run_op("or", a, b)[0], torch.logical_or(ta, tb))
    check(run_op("xor", a, b)[0], torch.logical_xor(ta, tb))
    check(run_op("not", a)[0], torch.logical_not(ta))
    check(run_op("eq", a, b)[0], torch.eq(ta, tb))
    check(run_op("ne", a, b)[0], torch.ne(ta, tb))
    check(run_op("not", np.array(True))[0], np.array(False))


def test_where_vs_torch() -> None:
    rng = np.random.default_rng(7)
    c = rng.random((2, 1, 5)) < 0.5
    for dtype in (np.float32, np.int64, np.float16, BF16):
        a, b = rand(rng, (3, 1), dtype=dtype), rand(rng, (5,), dtype=dtype)
        (y,) = run_op("where", c, a, b)
        check(y, torch.where(to_torch(c), to_torch(a), to_torch(b)), rtol=0, atol=0)
    (y,) = run_op("where", np.array(False), np.array([1, 2], np.int8), np.array(9, np.int8))
    check(y, np.array([9, 9], np.int8))


def test_clip_vs_torch() -> None:
    rng = np.random.default_rng(8)
    x = rand(rng, (4, 6), -5, 5)
    t = to_torch(x)
    check(run_op("clip", x, min=-1.0, max=2.5)[0], torch.clamp(t, -1.0, 2.5), rtol=0, atol=0)
    check(run_op("clip", x, min=0.5)[0], torch.clamp(t, min=0.5), rtol=0, atol=0)
    check(run_op("clip", x, max=-0.5)[0], torch.clamp(t, max=-0.5), rtol=0, atol=0)
    check(run_op("clip", x)[0], x, rtol=0, atol=0)
    xi = rng.integers(-100, 100, size=(5, 5)).astype(np.int32)
    check(run_op("clip", xi, min=-7.0, max=9.0)[0], torch.clamp(to_torch(xi), -7, 9))
    xh = x.astype(BF16)
    check(run_op("clip", xh, min=-1.0, max=2.0)[0], torch.clamp(to_torch(xh), -1.0, 2.0),
          rtol=0, atol=0)


def test_clip_integer_bounds_saturate() -> None:
    """Float bounds on integers keep results inside [min, max] and never wrap."""
    x8 = np.array([-128, -3, 0, 1, 2, 5, 127], np.int8)
    check(run_op("clip", x8, min=-1.5, max=300.0)[0], np.array([-1, -1, 0, 1, 2, 5, 127], np.int8))
    check(run_op("clip", x8, min=1.5, max=4.5)[0], np.array([2, 2, 2, 2, 2, 4, 4], np.int8))
    check(run_op("clip", x8, min=-1e9)[0], x8)
    xu = np.array([0, 3, 200, 255], np.uint8)
    check(run_op("clip", xu, min=-1.0, max=100.0)[0], np.array([0, 3, 100, 100], np.uint8))
    check(run_op("clip", xu, max=-5.0)[0], np.zeros(4, np.uint8))
    check(run_op("clip", xu, min=float("-inf"), max=float("inf"))[0], xu)


# ---------------------------------------------------------------------------------------------
# numerics: integers


INT_CASES = [np.int32, np.int64, np.int8, np.int16]


@pytest.mark.parametrize("dtype", INT_CASES, ids=lambda d: np.dtype(d).name)
def test_integer_arith_vs_torch(dtype: Any) -> None:
    rng = np.random.default_rng(9)
    a = rng.integers(-11, 12, size=(3, 1, 6)).astype(dtype)
    b = rng.integers(1, 6, size=(4, 6)).astype(dtype) * np.where(rng.random((4, 6)) < 0.5, -1, 1
                                                                 ).astype(dtype)
    ta, tb = to_torch(a), to_torch(b)
    check(run_op("add", a, b)[0], ta + tb)
    check(run_op("sub", a, b)[0], ta - tb)
    check(run_op("mul", a, b)[0], ta * tb)
    # C division truncates toward zero, unlike floor division
    check(run_op("div", a, b)[0], torch.div(ta, tb, rounding_mode="trunc"))
    check(run_op("mod", a, b)[0], torch.remainder(ta, tb))
    check(run_op("mod", a, b, fmod=True)[0], torch.fmod(ta, tb))
    check(run_op("max", a, b)[0], torch.maximum(ta, tb))
    check(run_op("min", a, b)[0], torch.minimum(ta, tb))
    check(run_op("abs", a)[0], torch.abs(ta))
    check(run_op("neg", a)[0], torch.neg(ta))
    check(run_op("sign", a)[0], torch.sign(ta))
    check(run_op("relu", a)[0], torch.relu(ta))
    check(run_op("pow", a, np.abs(b))[0], torch.pow(ta, tb.abs()))


def test_unsigned_arith_vs_torch() -> None:
    rng = np.random.default_rng(10)
    a = rng.integers(40, 200, size=(2, 5)).astype(np.uint8)
    b = rng.integers(1, 30, size=(5,)).astype(np.uint8)
    ta, tb = to_torch(a), to_torch(b)
    check(run_op("add", a, b)[0], ta + tb)
    check(run_op("sub", a, b)[0], ta - tb)
    check(run_op("mul", a, b)[0], ta * tb)  # wraps modulo 256 like torch
    check(run_op("div", a, b)[0], torch.div(ta, tb, rounding_mode="trunc"))
    check(run_op("mod", a, b)[0], torch.remainder(ta, tb))
    check(run_op("max", a, b)[0], torch.maximum(ta, tb))
    check(run_op("abs", a)[0], a)
    check(run_op("sign", a)[0], torch.sign(ta))
    check(run_op("relu", a)[0], a)


def test_integer_division_by_zero_is_zero() -> None:
    a = np.array([7, -7, 0, 5], np.int32)
    b = np.array([0, 0, 0, 2], np.int32)
    check(run_op("div", a, b)[0], np.array([0, 0, 0, 2], np.int32))
    check(run_op("mod", a, b)[0], np.array([0, 0, 0, 1], np.int32))
    check(run_op("mod", a, b, fmod=True)[0], np.array([0, 0, 0, 1], np.int32))


def test_integer_pow_negative_exponent() -> None:
    a = np.array([2, 3, 1, 1, -1, -1, 0, -2, 5, 0], np.int32)
    b = np.array([-1, -2, -5, 0, -3, -2, -1, 3, 0, 0], np.int32)
    check(run_op("pow", a, b)[0], np.array([0, 0, 1, 1, -1, 1, 0, -8, 1, 1], np.int32))
    # broadcasting a rank-0 base against exponents of both signs
    (y,) = run_op("pow", np.array(-1, np.int64), np.array([[-1], [2], [3]], np.int64))
    check(y, np.array([[-1], [1], [-1]], np.int64))


def test_integer_overflow_wraps() -> None:
    a = np.array([127, -128, 100], np.int8)
    b = np.array([1, -1, 2], np.int8)
    check(run_op("add", a, b)[0], to_torch(a) + to_torch(b))
    check(run_op("mul", a, b)[0], to_torch(a) * to_torch(b))


# ---------------------------------------------------------------------------------------------
# numerics: nan and inf


def test_nan_handling() -> None:
    nan, inf = np.nan, np.inf
    a = np.array([nan, 1.0, nan, -inf, 2.0, 0.0], np.float32)
    b = np.array([1.0, nan, nan, 3.0, inf, -0.0], np.float32)
    ta, tb = to_torch(a), to_torch(b)
    for dtype in (np.float32, np.float16, BF16):
        x, y = a.astype(dtype), b.astype(dtype)
        tx, ty = to_torch(x), to_torch(y)
        check(run_op("max", x, y)[0], torch.maximum(tx, ty), rtol=0, atol=0)
        check(run_op("min", x, y)[0], torch.minimum(tx, ty), rtol=0, atol=0)
        check(run_op("isnan", x)[0], torch.isnan(tx))
        check(run_op("isinf", x)[0], torch.isinf(tx))
    assert np.isnan(run_op("max", a, b)[0][:3]).all()
    # sign keeps nan (NumPy; torch.sign gives 0 there), relu propagates it like torch
    check(run_op("sign", a)[0], np.array([nan, 1, nan, -1, 1, 0], np.float32), rtol=0, atol=0)
    check(run_op("relu", a)[0], torch.relu(ta))
    check(run_op("eq", a, a)[0], torch.eq(ta, ta))
    check(run_op("ne", a, b)[0], torch.ne(ta, tb))
    check(run_op("lt", a, b)[0], torch.lt(ta, tb))


@pytest.mark.parametrize("pos, neg", [(True, True), (True, False), (False, True), (False, False)])
def test_isinf_detect_flags(pos: bool, neg: bool) -> None:
    x = np.array([[np.inf, -np.inf, np.nan], [0.0, 6e4, -3.0]], np.float32)
    want = np.array([[pos, neg, False], [False, False, False]])
    for dtype in (np.float32, np.float16, BF16, np.float64):
        (y,) = run_op("isinf", x.astype(dtype), detect_positive=pos, detect_negative=neg)
        check(y, want)
    t = to_torch(x)
    expected = (torch.isposinf(t) & pos) | (torch.isneginf(t) & neg)
    check(run_op("isinf", x, detect_positive=pos, detect_negative=neg)[0], expected)


# ---------------------------------------------------------------------------------------------
# numerics: f16 and bf16 against torch in the same dtype

LOW_UNARY = {"exp": (torch.exp, -3, 3), "tanh": (torch.tanh, -3, 3),
             "sigmoid": (torch.sigmoid, -5, 5), "sqrt": (torch.sqrt, 0.1, 4),
             "log": (torch.log, 0.1, 4), "rsqrt": (torch.rsqrt, 0.1, 4),
             "erf": (torch.erf, -2, 2), "sin": (torch.sin, -3, 3),
             "gelu": (F.gelu, -4, 4), "silu": (F.silu, -4, 4), "softplus": (F.softplus, -4, 4),
             "elu": (F.elu, -4, 4), "relu": (torch.relu, -4, 4), "floor": (torch.floor, -9, 9),
             "round": (torch.round, -9, 9), "neg": (torch.neg, -4, 4), "abs": (torch.abs, -4, 4)}
LOW_TOL = {np.dtype(np.float16): (2e-3, 2e-3), BF16: (1.6e-2, 1.6e-2)}


@pytest.mark.parametrize("dtype", [np.float16, BF16], ids=["f16", "bf16"])
@pytest.mark.parametrize("name", sorted(LOW_UNARY))
def test_unary_low_precision_vs_torch(name: str, dtype: Any) -> None:
    rng = np.random.default_rng(11)
    fn, lo, hi = LOW_UNARY[name]
    x = rand(rng, (4, 8), lo, hi, dtype)
    (y,) = run_op(name, x)
    rtol, atol = LOW_TOL[np.dtype(dtype)]
    check(y, fn(to_torch(x)), rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.float16, BF16], ids=["f16", "bf16"])
@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "max", "min", "pow"])
def test_binary_low_precision_vs_torch(name: str, dtype: Any) -> None:
    rng = np.random.default_rng(12)
    if name == "pow":
        a, b = rand(rng, (3, 4), 0.5, 2, dtype), rand(rng, (4,), -2, 2, dtype)
    else:
        a, b = rand(rng, (3, 4), -4, 4, dtype), rand_nonzero(rng, (4,), 0.5, 3, dtype)
    (y,) = run_op(name, a, b)
    rtol, atol = LOW_TOL[np.dtype(dtype)]
    check(y, BINARY_TORCH[name](to_torch(a), to_torch(b)), rtol=rtol, atol=atol)


def test_low_precision_rounds_once_from_f32() -> None:
    """f16/bf16 results are the f32 result rounded once to the input dtype."""
    rng = np.random.default_rng(13)
    for dtype in (np.float16, BF16):
        x = rand(rng, (50,), -3, 3, dtype)
        f32 = x.astype(np.float32)
        check(run_op("exp", x)[0], np.exp(f32).astype(dtype), rtol=0, atol=0)
        check(run_op("mul", x, x)[0], (f32 * f32).astype(dtype), rtol=0, atol=0)
        check(run_op("gelu", x, approximate="tanh")[0],
              run_op("gelu", f32, approximate="tanh")[0].astype(dtype), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# numerics: cast


def test_cast_float_to_int_truncates() -> None:
    x = np.array([2.7, -2.7, 0.5, -0.5, 99.9, -99.9, 0.0, 3.0], np.float32)
    t = to_torch(x)
    for to, tdt in (("i32", torch.int32), ("i64", torch.int64), ("i8", torch.int8),
                    ("i16", torch.int16)):
        (y,) = run_op("cast", x, to=to)
        check(y, t.to(tdt))
    check(run_op("cast", x, to="i32")[0], np.array([2, -2, 0, 0, 99, -99, 0, 3], np.int32))
    xp = np.abs(x)
    check(run_op("cast", xp, to="u8")[0], to_torch(xp).to(torch.uint8))
    xb = x.astype(BF16)
    check(run_op("cast", xb, to="i32")[0], to_torch(xb).to(torch.int32))
    check(run_op("cast", x.astype(np.float16), to="i64")[0],
          to_torch(x.astype(np.float16)).to(torch.int64))


def test_cast_to_bool() -> None:
    x = np.array([0.0, -0.0, 0.1, -3.0, np.nan, np.inf], np.float32)
    for dtype in (np.float32, np.float16, BF16, np.float64):
        (y,) = run_op("cast", x.astype(dtype), to="bool")
        check(y, np.array([False, False, True, True, True, True]))
    xi = np.array([0, 1, -5, 0, 100], np.int32)
    check(run_op("cast", xi, to="bool")[0], to_torch(xi).to(torch.bool))
    check(run_op("cast", np.array([0, 7], np.uint8), to="bool")[0], np.array([False, True]))


def test_cast_to_bf16_vs_torch() -> None:
    rng = np.random.default_rng(14)
    x = (rng.standard_normal(200) * 100).astype(np.float32)
    check(run_op("cast", x, to="bf16")[0], to_torch(x).to(torch.bfloat16), rtol=0, atol=0)
    x16 = x.astype(np.float16)
    check(run_op("cast", x16, to="bf16")[0], to_torch(x16).to(torch.bfloat16), rtol=0, atol=0)
    xi = rng.integers(-100000, 100000, size=50).astype(np.int32)
    check(run_op("cast", xi, to="bf16")[0], to_torch(xi).to(torch.bfloat16), rtol=0, atol=0)
    xb = rng.random(10) < 0.5
    check(run_op("cast", xb, to="bf16")[0], to_torch(xb).to(torch.bfloat16), rtol=0, atol=0)
    # and back: bf16 -> f32 is exact
    xh = x.astype(BF16)
    check(run_op("cast", xh, to="f32")[0], to_torch(xh).float(), rtol=0, atol=0)


@pytest.mark.parametrize("src", ["f32", "f16", "bf16", "f64", "i8", "u8", "i16", "i32", "i64",
                                 "bool"])
def test_cast_every_pair(src: str) -> None:
    """Small integral values convert exactly between every pair of dtypes."""
    vals = np.array([0, 1, 3, 0, 7, 100], np.int64) if src != "bool" else np.array([0, 1, 1, 0])
    x = vals.astype(dt.dtype(src).np_dtype)
    for to in dt.ALL_DTYPES:
        (y,) = run_op("cast", x, to=to.name)
        assert y.dtype == to.np_dtype
        want = (vals != 0) if to.is_bool else vals.astype(to.np_dtype)
        np.testing.assert_array_equal(y.astype(np.float64), want.astype(np.float64))


@pytest.mark.parametrize("src", [d.name for d in dt.DTYPES])
def test_cast_every_pair_of_all_dtypes(src: str) -> None:
    """0 and 1 convert exactly between every pair of dtypes, the narrow ones included (f8e8m0
    has no 0: it holds only 1 here)."""
    vals = np.array([0, 1, 1, 0, 1]) if src != "f8e8m0" else np.ones(5, np.int64)
    x = vals.astype(np.float32).astype(dt.dtype(src).np_dtype)
    for to in dt.DTYPES:
        (y,) = run_op("cast", x, to=to.name)
        assert y.dtype == to.np_dtype
        keep = vals != 0 if to is dt.f8e8m0 else np.ones(vals.shape, bool)
        np.testing.assert_array_equal(y.astype(np.float64)[keep], vals.astype(np.float64)[keep],
                                      err_msg=f"{src} -> {to}")


def test_cast_to_float8_vs_torch() -> None:
    """torch's f32 -> f8 conversions (its own code, not ml_dtypes): f8e4m3fn saturates like
    saturate=true, the others keep inf/nan like saturate=false; f8e8m0 rounds to nearest."""
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal(2000) * 100, rng.standard_normal(500) * 1e-3,
                        [0.0, -0.0, np.inf, -np.inf, 448, 464, 465, 57344, 61440, 1e6]])
    x = x.astype(np.float32)
    for to, tdt, attrs in [("f8e4m3fn", torch.float8_e4m3fn, {}),
                           ("f8e5m2", torch.float8_e5m2, {"saturate": False}),
                           ("f8e4m3fnuz", torch.float8_e4m3fnuz, {"saturate": False}),
                           ("f8e5m2fnuz", torch.float8_e5m2fnuz, {"saturate": False}),
                           ("f8e8m0", torch.float8_e8m0fnu,
                            {"saturate": False, "round_mode": "nearest"})]:
        xs = np.abs(x) if to == "f8e8m0" else x
        want = torch.from_numpy(xs).to(tdt).view(torch.uint8).numpy()
        (got,) = run_op("cast", xs, to=to, **attrs)
        np.testing.assert_array_equal(got.view(np.uint8), want, err_msg=to)
        back = torch.from_numpy(got.view(np.uint8).copy()).view(tdt).float().numpy()
        np.testing.assert_array_equal(run_op("cast", got, to="f32")[0], back, err_msg=to)


def test_cast_to_wide_uints_vs_torch() -> None:
    x = np.array([0, 1, 255, 65535, 70000, 2**31], np.int64)
    for to, tdt in (("u16", torch.uint16), ("u32", torch.uint32), ("u64", torch.uint64)):
        (y,) = run_op("cast", x, to=to)
        np.testing.assert_array_equal(y, to_torch(x).to(tdt).numpy())


# ---------------------------------------------------------------------------------------------
# the interpreter in float64


def _chain_module() -> Module:
    m = Module("chain")
    f = FunctionBuilder(m, "main")
    x = f.arg("x", tensor(["b", 5], "f32"))
    y = f.arg("y", tensor([5], "f32"))
    one = f.constant(np.float32(1.0), name="one")
    z = f.tanh(f.mul(f.exp(x), y))
    w = f.add(f.sigmoid(z), f.gelu(x, approximate="tanh"))
    q = f.div(w, f.add(f.abs(y), one))
    r = f.where(f.gt(q, f.constant(np.float32(0.2))), f.sqrt(f.add(f.abs(q), one)), f.softplus(q))
    f.ret(r, f.cast(r, to="i32"), f.lt(q, one))
    return m


def test_interpreter_f64_chain() -> None:
    rng = np.random.default_rng(15)
    m = _chain_module()
    x, y = rand(rng, (3, 5), -2, 2), rand(rng, (5,), -2, 2)
    r32, i32, b32 = interpret(m, x, y)
    r64, i64, b64 = interpret(m, x, y, dtype="f64")
    assert r32.dtype == np.float32 and r64.dtype == np.float64
    assert i64.dtype == np.int32 and b64.dtype == np.bool_
    np.testing.assert_allclose(r64, r32, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(r64, r32.astype(np.float64))  # really computed in f64
    # the f64 run matches the same chain in torch float64
    tx, ty = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    w = torch.sigmoid(torch.tanh(torch.exp(tx) * ty)) + F.gelu(tx, approximate="tanh")
    q = w / (ty.abs() + 1)
    ref = torch.where(q > 0.2, torch.sqrt(q.abs() + 1), F.softplus(q))
    np.testing.assert_allclose(r64, ref.numpy(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="must be a float type"):
        interpret(m, x, y, dtype="i32")


def test_interpreter_f64_widens_low_precision() -> None:
    rng = np.random.default_rng(16)
    x = rand(rng, (7,), -3, 3, BF16)
    (lo,) = run_op("exp", x)
    m = Module("m")
    f = FunctionBuilder(m, "main")
    f.ret(f.exp(f.arg("x", tensor([7], "bf16"))))
    (hi,) = interpret(m, x, dtype="f64")
    assert lo.dtype == BF16 and hi.dtype == np.float64
    np.testing.assert_allclose(hi, np.exp(x.astype(np.float64)), rtol=1e-12)
    np.testing.assert_allclose(lo.astype(np.float64), hi, rtol=1e-2)


# ---------------------------------------------------------------------------------------------
# samples


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_run_and_are_finite(name: str) -> None:
    check_samples(SAMPLES, name)
