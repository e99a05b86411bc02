"""Tests of compiler/ir/ops/math_extra.py: type rules, and the references against PyTorch (or
exact Python integer arithmetic for the shifts) on fresh random inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from compiler import ir
from compiler.ir import TypeInferenceError, get_op, tensor
from compiler.ir import dtypes as dt
from tests.ir.opcheck import BF16, check_samples, infer_one, run_op, seed_of, to_torch
from tests.ir.samples.math_extra import SAMPLES

TRIG = ["tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh"]
BITWISE = ["bitwise_and", "bitwise_or", "bitwise_xor"]
SHIFTS = ["shift_left", "shift_right"]
OPS_TESTED = {*TRIG, "bitwise_not", *BITWISE, *SHIFTS, "det"}
INTS = ["i8", "u8", "i16", "i32", "i64"]

torch.set_num_threads(1)


def test_declared_ops_and_traits() -> None:
    for name in OPS_TESTED:
        op = get_op(name)
        assert op.doc and op.has("pure"), name
    for name in TRIG + ["bitwise_not"] + BITWISE + SHIFTS:
        assert get_op(name).has("elementwise"), name
    for name in BITWISE:
        assert get_op(name).has("commutative") and get_op(name).has("broadcasting")
    for name in SHIFTS:
        assert get_op(name).has("broadcasting") and not get_op(name).has("commutative")
    assert not get_op("det").has("elementwise")


# --- type rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRIG)
def test_trig_types(name: str) -> None:
    for t in (tensor([], "f32"), tensor(["b", 3], "f16"), tensor([2, "s"], "bf16")):
        assert infer_one(name, t) == t
    with pytest.raises(TypeInferenceError, match=f"{name} operand must be float, got i32"):
        infer_one(name, tensor([2], "i32"))


@pytest.mark.parametrize("name", BITWISE + SHIFTS)
def test_integer_binary_types(name: str) -> None:
    for d in INTS:
        assert infer_one(name, tensor(["b", 1, 4], d), tensor([3, 1], d)) == tensor(["b", 3, 4], d)
    for d in ("f32", "bool"):
        with pytest.raises(TypeInferenceError, match=f"{name} operand must be int/uint, got {d}"):
            infer_one(name, tensor([2], d), tensor([2], d))
    with pytest.raises(TypeInferenceError, match="must share a dtype, got i32 and i64"):
        infer_one(name, tensor([2], "i32"), tensor([2], "i64"))
    with pytest.raises(TypeInferenceError, match="do not broadcast"):
        infer_one(name, tensor([2], "i32"), tensor([3], "i32"))


def test_bitwise_not_types() -> None:
    assert infer_one("bitwise_not", tensor(["n", 2], "u8")) == tensor(["n", 2], "u8")
    with pytest.raises(TypeInferenceError, match="bitwise_not operand must be int/uint, got bool"):
        infer_one("bitwise_not", tensor([2], "bool"))


def test_det_types() -> None:
    assert infer_one("det", tensor([3, 3], "f32")) == tensor([], "f32")
    assert infer_one("det", tensor(["b", 2, 4, 4], "f64")) == tensor(["b", 2], "f64")
    assert infer_one("det", tensor([5, "n", "n"], "f16")) == tensor([5], "f16")
    assert infer_one("det", tensor(["n", 3], "f32")) == tensor([], "f32")  # checked at run time
    with pytest.raises(TypeInferenceError, match="det needs rank >= 2"):
        infer_one("det", tensor([3], "f32"))
    with pytest.raises(TypeInferenceError, match="det: the two last dims .* got 2 and 3"):
        infer_one("det", tensor([2, 3], "f32"))
    with pytest.raises(TypeInferenceError, match="det operand x must be float, got i32"):
        infer_one("det", tensor([2, 2], "i32"))


# --- references ---------------------------------------------------------------------------------

DOMAINS = {"tan": (-1.4, 1.4), "asin": (-1, 1), "acos": (-1, 1), "atan": (-10, 10),
           "sinh": (-5, 5), "cosh": (-5, 5), "asinh": (-10, 10), "acosh": (1, 10),
           "atanh": (-0.99, 0.99)}


@pytest.mark.parametrize("name", TRIG)
@pytest.mark.parametrize("dtype", ["f32", "f64", "f16", "bf16"])
def test_trig_against_torch(name: str, dtype: str) -> None:
    rng = np.random.default_rng(seed_of(name, dtype))
    lo, hi = DOMAINS[name]
    x = rng.uniform(lo, hi, size=(3, 17)).astype(dt.dtype(dtype).np_dtype)
    (got,) = run_op(name, x)
    want = getattr(torch, name)(to_torch(x).double()).numpy()  # exact, then one rounding
    assert got.dtype == x.dtype and got.shape == x.shape
    tol = {"f32": 2e-6, "f64": 1e-14}.get(dtype, 1e-2)
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)


def test_trig_outside_the_domain_is_nan() -> None:
    x = np.array([-2.0, 2.0], np.float32)
    for name in ("asin", "acos", "atanh"):
        assert np.isnan(run_op(name, x)[0]).all(), name
    assert np.isnan(run_op("acosh", np.array([0.5], np.float32))[0]).all()
    np.testing.assert_array_equal(run_op("atanh", np.array([-1.0, 1.0], np.float32))[0],
                                  [-np.inf, np.inf])


@pytest.mark.parametrize("dtype", INTS)
def test_bitwise_against_torch(dtype: str) -> None:
    d = dt.dtype(dtype).np_dtype
    info = np.iinfo(d)
    rng = np.random.default_rng(seed_of("bitwise", dtype))
    a = rng.integers(info.min, info.max, size=(3, 1, 5), endpoint=True, dtype=d)
    b = rng.integers(info.min, info.max, size=(4, 5), endpoint=True, dtype=d)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    for name in BITWISE:
        (got,) = run_op(name, a, b)
        want = getattr(torch, name)(ta, tb).numpy()
        assert got.dtype == d and got.shape == (3, 4, 5)
        np.testing.assert_array_equal(got, want)
    (got,) = run_op("bitwise_not", a)
    np.testing.assert_array_equal(got, torch.bitwise_not(ta).numpy())


def _python_shift(a: int, b: int, bits: int, signed: bool, left: bool) -> int:
    """ONNX BitShift on one element, with Python's unbounded integers."""
    if b < 0 or b >= bits:
        return -1 if (not left and a < 0) else 0
    if not left:
        return a >> b  # Python's >> is arithmetic
    r = (a << b) & ((1 << bits) - 1)
    return r - (1 << bits) if signed and r >= 1 << (bits - 1) else r


@pytest.mark.parametrize("name", SHIFTS)
@pytest.mark.parametrize("dtype", INTS)
def test_shifts_follow_onnx(name: str, dtype: str) -> None:
    d = dt.dtype(dtype)
    info = np.iinfo(d.np_dtype)
    rng = np.random.default_rng(seed_of(name, dtype))
    a = rng.integers(info.min, info.max, size=(4, 40), endpoint=True, dtype=d.np_dtype)
    lo = 0 if d.kind == "uint" else -3
    b = rng.integers(lo, d.bits + 3, size=(1, 40)).astype(d.np_dtype)
    (got,) = run_op(name, a, b)
    want = np.array([[_python_shift(int(x), int(y), d.bits, d.kind == "int", name == "shift_left")
                      for x, y in zip(row, b[0])] for row in a]).astype(d.np_dtype)
    assert got.dtype == d.np_dtype
    np.testing.assert_array_equal(got, want)


def test_shifts_onnx_examples() -> None:
    x = np.array([16, 4, 1], np.uint8)
    np.testing.assert_array_equal(run_op("shift_right", x, np.array([1, 2, 3], np.uint8))[0],
                                  [8, 1, 0])
    np.testing.assert_array_equal(run_op("shift_left", x, np.array([1, 2, 3], np.uint8))[0],
                                  [32, 16, 8])
    neg = np.array([-8, -1, 5], np.int32)
    np.testing.assert_array_equal(run_op("shift_right", neg, np.array([1, 40, -1], np.int32))[0],
                                  [-4, -1, 0])
    np.testing.assert_array_equal(
        run_op("shift_left", np.array([64, 1], np.int8), np.array([1, 8], np.int8))[0], [-128, 0])


@pytest.mark.parametrize("dtype", ["f32", "f64", "f16", "bf16"])
def test_det_against_torch(dtype: str) -> None:
    rng = np.random.default_rng(seed_of("det", dtype))
    for shape in [(3, 3), (2, 4, 4), (2, 1, 1, 1), (5, 2, 2)]:
        x = rng.uniform(-1, 1, size=shape).astype(dt.dtype(dtype).np_dtype)
        (got,) = run_op("det", x)
        want = torch.linalg.det(to_torch(x).double()).numpy()
        assert got.dtype == x.dtype and got.shape == shape[:-2]
        tol = {"f32": 1e-5, "f64": 1e-12}.get(dtype, 2e-2)
        np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol)


def test_det_symbolic_batch_and_text_roundtrip() -> None:
    m = ir.Module("m")
    f = ir.FunctionBuilder(m, "main")
    x = f.arg("x", tensor(["b", 3, 3], "f32"))
    s = f.arg("s", tensor(["b"], "i16"))
    y = f.op("det", f.op("atan", x))
    z = f.op("shift_left", f.op("bitwise_not", s), s)
    f.ret(y, z)
    text = ir.print_module(m)
    assert "det(" in text and "-> (f32[?b], i16[?b])" in text
    assert ir.print_module(ir.parse(text)) == text
    xs = np.random.default_rng(0).standard_normal((2, 3, 3)).astype(np.float32)
    ss = np.array([1, 3], np.int16)
    got_y, got_z = ir.interpret(m, xs, ss)
    np.testing.assert_allclose(got_y, np.linalg.det(np.arctan(xs)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got_z, np.left_shift(np.invert(ss), ss))


def test_low_precision_is_computed_in_f32() -> None:
    x = np.array([0.3, 0.7, 1.1], BF16)
    (got,) = run_op("tan", x)
    np.testing.assert_array_equal(got, np.tan(x.astype(np.float32)).astype(BF16))


# --- samples ------------------------------------------------------------------------------------


def test_samples_cover_every_op() -> None:
    assert set(SAMPLES) == OPS_TESTED


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_run_and_are_finite(name: str) -> None:
    check_samples(SAMPLES, name)
