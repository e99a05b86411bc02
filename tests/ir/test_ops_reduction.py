"""Reduction family: type rules (shapes, keepdims, negative and symbolic axes, errors) and the
NumPy references checked against PyTorch on fresh random inputs."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from compiler.ir import BuildError, FunctionBuilder, Module, TypeInferenceError, get_op, tensor
from compiler.ir import dtypes as dt
from compiler.ir import interpret
from tests.ir.opcheck import BF16, check_samples, infer, randn, run_op, seed_of, to_torch
from tests.ir.samples.reduction import SAMPLES

REDUCE_OPS = ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod", "reduce_l1",
              "reduce_l2", "reduce_sum_square", "reduce_logsumexp")
FLOAT_ONLY = {"reduce_mean", "reduce_l2", "reduce_logsumexp"}
OPS_TESTED = set(REDUCE_OPS) | {"argmax", "argmin", "softmax", "log_softmax", "cumsum"}


def rand(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Random values in a dtype: normal floats, small integers (non-negative for unsigned)."""
    d = dt.dtype(dtype)
    if d.is_float:
        return randn(rng, shape, dtype)
    lo = 0 if d.kind == "uint" else -5
    return rng.integers(lo, 6, shape).astype(d.np_dtype)


def assert_close(got: np.ndarray, want: Any, dtype: Any) -> None:
    """Compare with a tolerance of a few roundings in `dtype`."""
    want = want.numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    d = np.dtype(dtype)
    tol = {np.dtype(np.float16): 2e-3, BF16: 1.6e-2, np.dtype(np.float32): 2e-5,
           np.dtype(np.float64): 1e-10}.get(d)
    assert got.shape == want.shape
    if tol is None:
        np.testing.assert_array_equal(got, want.astype(d))
    else:
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=tol, atol=tol)


def all_dims(x: np.ndarray, axes: tuple[int, ...]) -> tuple[int, ...]:
    return axes if axes else tuple(range(x.ndim))


# --- type rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REDUCE_OPS)
def test_reduce_shapes(name: str) -> None:
    t = tensor([2, 3, 4], "f32")
    assert infer(name, t, axes=[1]) == [tensor([2, 4], "f32")]
    assert infer(name, t, axes=[1], keepdims=True) == [tensor([2, 1, 4], "f32")]
    assert infer(name, t, axes=[-1, 0]) == [tensor([3], "f32")]
    assert infer(name, t) == [tensor([], "f32")]  # axes=() reduces everything
    assert infer(name, t, keepdims=True) == [tensor([1, 1, 1], "f32")]
    assert infer(name, tensor([], "f64")) == [tensor([], "f64")]
    assert infer(name, tensor([], "f64"), axes=[-1], keepdims=True) == [tensor([], "f64")]
    s = tensor(["b", 4, "seq"], "f16")
    assert infer(name, s, axes=[-1]) == [tensor(["b", 4], "f16")]
    assert infer(name, s, axes=[1], keepdims=True) == [tensor(["b", 1, "seq"], "f16")]
    assert infer(name, s, axes=[0, 2]) == [tensor([4], "f16")]
    if name not in FLOAT_ONLY:
        assert infer(name, tensor([5, 6], "i8"), axes=[0]) == [tensor([6], "i8")]
    assert get_op(name).has("reduction")


@pytest.mark.parametrize("name", REDUCE_OPS)
def test_reduce_rule_errors(name: str) -> None:
    t = tensor([2, 3], "f32")
    with pytest.raises(TypeInferenceError, match=f"{name} axes 2 is out of range for rank 2"):
        infer(name, t, axes=[2])
    with pytest.raises(TypeInferenceError, match=f"{name} axes -3 is out of range"):
        infer(name, t, axes=[-3])
    with pytest.raises(TypeInferenceError, match=r"repeat an axis"):
        infer(name, t, axes=[1, -1])
    with pytest.raises(TypeInferenceError, match=f"{name} axes 1 is out of range for rank 0"):
        infer(name, tensor([], "f32"), axes=[1])
    with pytest.raises(TypeInferenceError, match=f"{name} operand x must be .*got bool"):
        infer(name, tensor([2], "bool"))
    if name in FLOAT_ONLY:
        with pytest.raises(TypeInferenceError, match=f"{name} operand x must be float, got i32"):
            infer(name, tensor([2], "i32"))
    with pytest.raises(TypeInferenceError, match=f"{name} attribute 'axes' must be int: got 0.5"):
        infer(name, t, axes=[0.5])


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_arg_shapes_and_errors(name: str) -> None:
    t = tensor([2, 3, 4], "f16")
    assert infer(name, t) == [tensor([3, 4], "i64")]
    assert infer(name, t, axis=-1, keepdims=True) == [tensor([2, 3, 1], "i64")]
    assert infer(name, tensor(["b", "n"], "i32"), axis=1) == [tensor(["b"], "i64")]
    assert infer(name, tensor(["b", "n"], "u8"), axis=0, keepdims=True) == [tensor([1, "n"], "i64")]
    assert infer(name, tensor([], "f32")) == [tensor([], "i64")]
    with pytest.raises(TypeInferenceError, match=f"{name} axis 3 is out of range for rank 3"):
        infer(name, t, axis=3)
    with pytest.raises(TypeInferenceError, match=f"{name} axis 1 has size 0"):
        infer(name, tensor([2, 0], "f32"), axis=1)
    with pytest.raises(TypeInferenceError, match=f"{name} operand x must be"):
        infer(name, tensor([2], "bool"))
    assert get_op(name).has("reduction")


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "cumsum"])
def test_axis_op_shapes_and_errors(name: str) -> None:
    extra = {"axis": 0} if name == "cumsum" else {}
    for t in (tensor([2, 3, 4], "f32"), tensor(["b", 7], "bf16"), tensor([], "f64")):
        assert infer(name, t, **extra) == [t]
        assert infer(name, t, axis=-1) == [t]
    with pytest.raises(TypeInferenceError, match=f"{name} axis -4 is out of range for rank 3"):
        infer(name, tensor([2, 3, 4], "f32"), axis=-4)
    if name == "cumsum":
        assert infer(name, tensor([3, "n"], "i16"), axis=1) == [tensor([3, "n"], "i16")]
        with pytest.raises(TypeInferenceError, match="cumsum operand x must be"):
            infer(name, tensor([2], "bool"), axis=0)
        m = Module("m")
        f = FunctionBuilder(m)
        with pytest.raises(BuildError, match="cumsum needs attribute 'axis'"):
            f.cumsum(f.arg("x", tensor([3], "f32")))
    else:
        with pytest.raises(TypeInferenceError, match=f"{name} operand x must be float, got i64"):
            infer(name, tensor([2], "i64"))
    assert not get_op(name).has("reduction")


def test_build_error_names_op() -> None:
    m = Module("m")
    f = FunctionBuilder(m)
    x = f.arg("x", tensor(["b", 4], "f32"))
    with pytest.raises(BuildError, match=r"reduce_max\(f32\[\?b,4\]\): reduce_max axes 2"):
        f.reduce_max(x, axes=[2])


# --- references against torch ------------------------------------------------------------------


def _torch_reduce(name: str, t: torch.Tensor, axes: tuple[int, ...], keepdims: bool):
    dims = tuple(range(t.ndim)) if not axes else axes
    if name == "reduce_sum":
        return torch.sum(t, dim=dims, keepdim=keepdims)
    if name == "reduce_mean":
        return torch.mean(t, dim=dims, keepdim=keepdims)
    if name == "reduce_max":
        return torch.amax(t, dim=dims, keepdim=keepdims)
    if name == "reduce_min":
        return torch.amin(t, dim=dims, keepdim=keepdims)
    if name == "reduce_prod":  # torch.prod takes one dim: reduce the largest first
        for d in sorted((d % t.ndim for d in dims), reverse=True):
            t = torch.prod(t, dim=d, keepdim=keepdims) if keepdims else torch.prod(t, dim=d)
        return t
    if name == "reduce_l1":
        return torch.norm(t.double() if not t.is_floating_point() else t, p=1, dim=dims,
                          keepdim=keepdims)
    if name == "reduce_l2":
        return torch.norm(t, p=2, dim=dims, keepdim=keepdims)
    if name == "reduce_sum_square":
        return torch.sum(t * t, dim=dims, keepdim=keepdims)
    if name == "reduce_logsumexp":
        return torch.logsumexp(t, dim=dims, keepdim=keepdims)
    raise AssertionError(name)


CASES = [((3, 4, 5), (1,), False), ((3, 4, 5), (-1, 0), True), ((2, 3, 4, 5), (), False),
         ((6, 7), (-2,), False), ((2, 3, 2, 3), (0, 2, 3), True)]


@pytest.mark.parametrize("name,dtype", [
    (n, d) for n in REDUCE_OPS for d in ("f32", "f64", "f16", "bf16", "i32", "i8", "u8")
    if n not in FLOAT_ONLY or d[0] in "fb"])
def test_reduce_against_torch(name: str, dtype: str) -> None:
    rng = np.random.default_rng(seed_of(name, dtype))
    for shape, axes, keepdims in CASES:
        x = rand(rng, shape, dtype)
        if name == "reduce_prod" and dt.dtype(dtype).is_float:
            x = (x.astype(np.float32) * 0.2 + 1.0).astype(x.dtype)  # keep products in range
        if name == "reduce_prod" and not dt.dtype(dtype).is_float:
            x = np.clip(x, -2, 2) if dt.dtype(dtype).kind == "int" else np.clip(x, 0, 2)
        (got,) = run_op(name, x, axes=list(axes), keepdims=keepdims)
        want = _torch_reduce(name, to_torch(x), axes, keepdims)
        # integer results wrap in the input dtype: cast torch's wider result the same way
        assert_close(got, want.numpy().astype(got.dtype) if x.dtype.kind in "iu" else want,
                     got.dtype)


def test_integer_sum_wraps_in_input_dtype() -> None:
    x = np.full((3, 50), 100, np.int8)
    (got,) = run_op("reduce_sum", x, axes=[1])
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, torch.sum(torch.from_numpy(x), 1).to(torch.int8).numpy())


def test_low_precision_accumulates_in_f32() -> None:
    # 4096 * 1.0 + many small terms: an f16 running sum would stall at 2048
    x = np.ones(4096, np.float16)
    (got,) = run_op("reduce_sum", x)
    assert got.dtype == np.float16 and float(got) == 4096.0
    (got,) = run_op("reduce_mean", np.full(3000, 0.1, BF16))
    assert got.dtype == BF16 and abs(float(got) - 0.1) < 1e-3


@pytest.mark.parametrize("dtype", ["f32", "f16", "i32", "u8"])
def test_empty_reductions_follow_onnx(dtype: str) -> None:
    d = dt.dtype(dtype)
    x = np.zeros((2, 0, 3), d.np_dtype)
    expected = {"reduce_sum": 0, "reduce_prod": 1, "reduce_l1": 0, "reduce_sum_square": 0}
    if d.is_float:
        expected.update({"reduce_max": -np.inf, "reduce_min": np.inf, "reduce_l2": 0,
                         "reduce_logsumexp": -np.inf})
    else:
        info = np.iinfo(d.np_dtype)
        expected.update({"reduce_max": info.min, "reduce_min": info.max})
    for name, value in expected.items():
        (got,) = run_op(name, x, axes=[1])
        assert got.dtype == d.np_dtype and got.shape == (2, 3)
        np.testing.assert_array_equal(got, np.full((2, 3), value, d.np_dtype), err_msg=name)
    if d.is_float:
        (got,) = run_op("reduce_mean", x, axes=[1], keepdims=True)
        assert got.shape == (2, 1, 3) and np.isnan(got).all()


def test_logsumexp_is_stable() -> None:
    x = np.array([[1000.0, 1000.0], [-1000.0, -np.inf], [-np.inf, -np.inf]], np.float32)
    (got,) = run_op("reduce_logsumexp", x, axes=[1])
    np.testing.assert_allclose(got, torch.logsumexp(torch.from_numpy(x), 1).numpy(), rtol=1e-6)
    assert np.isneginf(got[2])


def test_reduce_on_symbolic_input() -> None:
    m = Module("m")
    f = FunctionBuilder(m)
    x = f.arg("x", tensor(["b", 5, "s"], "f32"))
    y = f.reduce_mean(x, axes=[-1, 0], keepdims=True)
    assert y.type == tensor([1, 5, 1], "f32")
    f.ret(y, f.softmax(x, axis=-1), f.argmax(x, axis=2))
    rng = np.random.default_rng(1)
    arr = rng.standard_normal((3, 5, 7)).astype(np.float32)
    mean, sm, am = interpret(m, arr)
    t = torch.from_numpy(arr)
    assert_close(mean, torch.mean(t, dim=(0, 2), keepdim=True), np.float32)
    assert_close(sm, torch.softmax(t, -1), np.float32)
    np.testing.assert_array_equal(am, torch.argmax(t, 2).numpy())


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16", "i32", "u8"])
def test_arg_against_torch(name: str, dtype: str) -> None:
    rng = np.random.default_rng(seed_of(name, dtype))
    fn = torch.argmax if name == "argmax" else torch.argmin
    cases = (((4, 5), 1, False), ((3, 4, 5), -3, True), ((2, 3, 4, 2), 2, False))
    for shape, axis, keepdims in cases:
        x = rand(rng, shape, dtype)
        (got,) = run_op(name, x, axis=axis, keepdims=keepdims)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, fn(to_torch(x), dim=axis, keepdim=keepdims).numpy())


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_arg_select_last_index_on_ties(name: str) -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, (6, 8)).astype(np.int32)  # many ties
    for axis in (0, 1, -1):
        (first,) = run_op(name, x, axis=axis)
        (last,) = run_op(name, x, axis=axis, select_last_index=True, keepdims=True)
        ext = x.max(axis, keepdims=True) if name == "argmax" else x.min(axis, keepdims=True)
        idx = np.arange(x.shape[axis]).reshape([-1 if a == axis % 2 else 1 for a in range(2)])
        hits = np.where(x == ext, idx, -1)
        np.testing.assert_array_equal(last, hits.max(axis, keepdims=True))
        np.testing.assert_array_equal(first, np.where(hits < 0, 99, hits).min(axis))
        fn = torch.argmax if name == "argmax" else torch.argmin
        np.testing.assert_array_equal(first, fn(torch.from_numpy(x), dim=axis).numpy())


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["f32", "f64", "f16", "bf16"])
def test_softmax_against_torch(name: str, dtype: str) -> None:
    rng = np.random.default_rng(seed_of(name, dtype))
    fn = torch.softmax if name == "softmax" else torch.log_softmax
    for shape, axis in (((4, 7), -1), ((3, 4, 5), 0), ((2, 3, 4, 5), -2), ((6,), 0)):
        x = (rand(rng, shape, "f32") * 3).astype(dt.dtype(dtype).np_dtype)
        (got,) = run_op(name, x, axis=axis)
        assert_close(got, fn(to_torch(x), dim=axis), got.dtype)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_is_stable(name: str) -> None:
    x = np.array([[1000.0, 999.0, -1000.0], [-5e4, -5e4 + 1, -5e4 + 2]], np.float32)
    (got,) = run_op(name, x)
    fn = torch.softmax if name == "softmax" else torch.log_softmax
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, fn(torch.from_numpy(x), -1).numpy(), rtol=1e-5, atol=1e-6)
    (scalar,) = run_op(name, np.array(3.0, np.float32), axis=0)
    assert scalar.shape == () and float(scalar) == (1.0 if name == "softmax" else 0.0)


@pytest.mark.parametrize("dtype", ["f32", "f64", "f16", "bf16", "i64", "i8", "u8"])
def test_cumsum_against_torch(dtype: str) -> None:
    rng = np.random.default_rng(seed_of("cumsum", dtype))
    for shape, axis in (((7,), 0), ((3, 4, 5), 1), ((2, 3, 4), -1), ((4, 2, 3, 2), -4)):
        x = rand(rng, shape, dtype)
        t = to_torch(x)
        for exclusive in (False, True):
            for reverse in (False, True):
                (got,) = run_op("cumsum", x, axis=axis, exclusive=exclusive, reverse=reverse)
                src = torch.flip(t, [axis]) if reverse else t
                want = torch.cumsum(src, dim=axis)
                if exclusive:
                    want = want - src  # exact enough: compared with a tolerance for floats
                if reverse:
                    want = torch.flip(want, [axis])
                want = want.numpy()
                assert_close(got, want.astype(got.dtype) if x.dtype.kind in "iu" else want,
                             got.dtype)


def test_cumsum_onnx_example() -> None:
    x = np.array([1.0, 2.0, 3.0], np.float32)
    expect = {(False, False): [1, 3, 6], (True, False): [0, 1, 3], (False, True): [6, 5, 3],
              (True, True): [5, 3, 0]}
    for (exclusive, reverse), want in expect.items():
        (got,) = run_op("cumsum", x, axis=0, exclusive=exclusive, reverse=reverse)
        np.testing.assert_array_equal(got, np.array(want, np.float32))


# --- samples ------------------------------------------------------------------------------------


def test_samples_cover_every_op() -> None:
    assert set(SAMPLES) == OPS_TESTED


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_run_and_are_finite(name: str) -> None:
    check_samples(SAMPLES, name)
