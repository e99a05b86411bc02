"""Normalization family: type rules (parameter shapes and dtypes, axes, symbolic dims, errors) and
the NumPy references checked against torch.nn.functional on fresh random inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compiler.ir import BuildError, FunctionBuilder, Module, TypeInferenceError, get_op, tensor
from compiler.ir import InterpreterError, interpret
from compiler.ir.types import TensorType
from tests.ir.opcheck import BF16, check_samples, infer, randn, run_op, seed_of, to_torch
from tests.ir.samples.normalization import SAMPLES

OPS_TESTED = {"layer_norm", "rms_norm", "batch_norm", "instance_norm", "group_norm"}
FLOATS = ("f32", "f64", "f16", "bf16")


def assert_close(got: np.ndarray, want: torch.Tensor, dtype: np.dtype) -> None:
    tol = {np.dtype(np.float16): 4e-3, BF16: 3e-2, np.dtype(np.float32): 1e-5,
           np.dtype(np.float64): 1e-10}[np.dtype(dtype)]
    assert got.dtype == dtype and got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.astype(np.float64), want.numpy().astype(np.float64),
                               rtol=tol, atol=tol)


def t(shape: list, dtype: str = "f32") -> TensorType:
    return tensor(shape, dtype)


# --- type rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm"])
def test_trailing_norm_shapes(name: str) -> None:
    x = t([2, 3, 4])
    assert infer(name, x) == [x]
    assert infer(name, x, t([4])) == [x]
    assert infer(name, x, t([3, 4]), axis=1) == [x]
    assert infer(name, x, t([1, 4]), axis=-2) == [x]
    assert infer(name, x, t([2, 3, 4]), axis=0) == [x]
    assert infer(name, x, t([3, 1]), axis=-3) == [x]
    s = t(["b", "seq", 8], "bf16")
    assert infer(name, s, t([8], "bf16")) == [s]
    assert infer(name, s, t(["seq", 8], "bf16"), axis=1) == [s]
    # a static parameter against a symbolic dim is checked when the graph runs
    assert infer(name, t(["b", "h"]), t([16])) == [t(["b", "h"])]
    assert infer(name, t([5], "f16"), axis=0) == [t([5], "f16")]
    if name == "layer_norm":
        assert infer(name, x, t([4]), t([1])) == [x]
        assert infer(name, x, t([3, 4]), t([4]), axis=-2) == [x]


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm"])
def test_trailing_norm_errors(name: str) -> None:
    x = t([2, 3, 4])
    with pytest.raises(TypeInferenceError,
                       match=rf"{name} operand scale of shape \[3\] does not broadcast to the "
                             r"normalized shape x.shape\[2:\] = \[4\]"):
        infer(name, x, t([3]))
    with pytest.raises(TypeInferenceError, match=rf"{name} operand scale of shape \[3,4\]"):
        infer(name, x, t([3, 4]))  # axis=-1 normalizes over [4] only
    with pytest.raises(TypeInferenceError, match=rf"{name} operand scale of shape \[\?k\]"):
        infer(name, t(["b", "h"]), t(["k"]))
    with pytest.raises(TypeInferenceError, match=rf"{name} operand scale has dtype f16; it must "
                                                 "match x's dtype f32"):
        infer(name, x, t([4], "f16"))
    with pytest.raises(TypeInferenceError, match=f"{name} axis 3 is out of range for rank 3"):
        infer(name, x, axis=3)
    with pytest.raises(TypeInferenceError, match=f"{name} axis -4 is out of range"):
        infer(name, x, axis=-4)
    with pytest.raises(TypeInferenceError, match=f"{name} operand x must be float, got i32"):
        infer(name, t([2, 3], "i32"))
    with pytest.raises(TypeInferenceError, match=f"{name} operand x must have rank >= 1"):
        infer(name, t([]))
    with pytest.raises(TypeInferenceError, match=f"{name} takes"):
        infer(name, x, t([4]), t([4]), t([4]))
    if name == "layer_norm":
        with pytest.raises(TypeInferenceError, match=r"layer_norm operand bias of shape \[5\]"):
            infer(name, x, t([4]), t([5]))


def test_channel_norm_shapes() -> None:
    c = t([3])
    for x in (t([2, 3]), t([2, 3, 5]), t(["n", 3, "h", "w"], "f32")):
        assert infer("batch_norm", x, c, c, c, c, epsilon=1e-3) == [x]
        assert infer("group_norm", x, c, c, num_groups=3) == [x]
        assert infer("group_norm", x, c, c, num_groups=1) == [x]
        if x.rank >= 3:
            assert infer("instance_norm", x, c, c) == [x]
    # symbolic channels: divisibility and parameter sizes are checked at run time
    xs = t(["n", "c", 7], "f16")
    p = t(["c"], "f16")
    assert infer("batch_norm", xs, p, p, p, p) == [xs]
    assert infer("instance_norm", xs, t([4], "f16"), p) == [xs]
    assert infer("group_norm", xs, p, p, num_groups=4) == [xs]


def test_channel_norm_errors() -> None:
    c = t([3])
    x = t([2, 3, 4])
    with pytest.raises(TypeInferenceError, match=r"batch_norm operand x must have rank >= 2 "
                                                 r"\(\[N, C, \.\.\.\]\), got f32\[3\]"):
        infer("batch_norm", t([3]), c, c, c, c)
    with pytest.raises(TypeInferenceError, match=r"batch_norm operand var must have shape \[C\] "
                                                 r"= \[3\] \(x's channel dim\), got \[4\]"):
        infer("batch_norm", x, c, c, c, t([4]))
    with pytest.raises(TypeInferenceError, match=r"batch_norm operand mean must have shape"):
        infer("batch_norm", x, c, c, t([1, 3]), c)
    with pytest.raises(TypeInferenceError, match=r"batch_norm operand bias has dtype f64"):
        infer("batch_norm", x, c, t([3], "f64"), c, c)
    with pytest.raises(TypeInferenceError, match=r"batch_norm operand x must be float, got i8"):
        infer("batch_norm", t([2, 3], "i8"), c, c, c, c)
    with pytest.raises(TypeInferenceError, match=r"instance_norm operand x must have rank >= 3"):
        infer("instance_norm", t([2, 3]), c, c)
    with pytest.raises(TypeInferenceError, match=r"instance_norm operand scale must have shape "
                                                 r"\[C\] = \[\?c\]"):
        infer("instance_norm", t([2, "c", 5]), t(["d"]), t(["c"]))
    with pytest.raises(TypeInferenceError, match=r"group_norm channel count C = 6 .* not "
                                                 r"divisible by num_groups = 4"):
        infer("group_norm", t([2, 6, 5]), t([6]), t([6]), num_groups=4)
    with pytest.raises(TypeInferenceError, match=r"group_norm attribute 'num_groups' must be >= 1"):
        infer("group_norm", x, c, c, num_groups=0)
    with pytest.raises(TypeInferenceError, match=r"group_norm operand bias must have shape \[C\]"):
        infer("group_norm", x, c, t([1]), num_groups=3)
    with pytest.raises(TypeInferenceError, match=r"group_norm operand x must have rank >= 2"):
        infer("group_norm", t([6]), t([6]), t([6]), num_groups=2)
    f = FunctionBuilder(Module("m"))
    xv, cv = f.arg("x", x), f.arg("c", c)
    with pytest.raises(BuildError, match="group_norm needs attribute 'num_groups'"):
        f.group_norm(xv, cv, cv)
    with pytest.raises(BuildError, match="batch_norm takes 5 operands"):
        f.batch_norm(xv, cv, cv)


def test_traits() -> None:
    for name in OPS_TESTED:
        assert get_op(name).traits == frozenset({"pure"}), name


# --- references against torch ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOATS)
def test_layer_norm_against_torch(dtype: str) -> None:
    rng = np.random.default_rng(seed_of("layer_norm", dtype))
    for shape, axis, params in (((4, 16), -1, "sb"), ((2, 3, 8), 1, "s"), ((2, 3, 4, 5), -2, ""),
                                ((3, 5), 0, "sb"), ((2, 6, 7), 2, "s")):
        x = randn(rng, shape, dtype, loc=rng.uniform(-3, 3), scale=2.0)
        norm = shape[axis % len(shape):]
        scale = randn(rng, norm, dtype) if "s" in params else None
        bias = randn(rng, norm, dtype) if "b" in params else None
        eps = 1e-5 if dtype != "f16" else 1e-3
        (got,) = run_op("layer_norm", *[a for a in (x, scale, bias) if a is not None],
                        axis=axis, epsilon=eps)
        want = F.layer_norm(to_torch(x), norm, to_torch(scale), to_torch(bias), eps=eps)
        assert_close(got, want, x.dtype)


def test_layer_norm_broadcast_scale() -> None:
    rng = np.random.default_rng(3)
    x = randn(rng, (2, 3, 4), "f32")
    scale, bias = randn(rng, (1, 4), "f32"), randn(rng, (3, 1), "f32")
    (got,) = run_op("layer_norm", x, scale, bias, axis=1)
    want = F.layer_norm(to_torch(x), (3, 4)) * to_torch(scale) + to_torch(bias)
    assert_close(got, want, x.dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_rms_norm_against_torch(dtype: str) -> None:
    rng = np.random.default_rng(seed_of("rms_norm", dtype))
    for shape, axis, with_scale in (((4, 16), -1, True), ((2, 3, 8), 1, False),
                                    ((2, 3, 4, 5), -3, True), ((6,), 0, True)):
        x = randn(rng, shape, dtype, loc=0.5)
        norm = shape[axis % len(shape):]
        scale = randn(rng, norm, dtype) if with_scale else None
        args = [x] + ([scale] if with_scale else [])
        (got,) = run_op("rms_norm", *args, axis=axis, epsilon=1e-4)
        want = F.rms_norm(to_torch(x), norm, to_torch(scale), eps=1e-4)
        assert_close(got, want, x.dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_batch_norm_against_torch(dtype: str) -> None:
    rng = np.random.default_rng(seed_of("batch_norm", dtype))
    for shape in ((5, 3), (2, 4, 7), (2, 3, 4, 5)):
        c = shape[1]
        x = randn(rng, shape, dtype, loc=1.0, scale=2.0)
        scale, bias, mean = (randn(rng, (c,), dtype) for _ in range(3))
        var = rng.uniform(0.5, 2.0, c).astype(x.dtype)
        (got,) = run_op("batch_norm", x, scale, bias, mean, var, epsilon=1e-3)
        want = F.batch_norm(to_torch(x), to_torch(mean), to_torch(var), to_torch(scale),
                            to_torch(bias), training=False, eps=1e-3)
        assert_close(got, want, x.dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_instance_norm_against_torch(dtype: str) -> None:
    rng = np.random.default_rng(seed_of("instance_norm", dtype))
    for shape in ((2, 3, 9), (2, 4, 5, 6), (1, 2, 3, 2, 4)):
        c = shape[1]
        x = randn(rng, shape, dtype, loc=-1.0, scale=3.0)
        scale, bias = randn(rng, (c,), dtype), randn(rng, (c,), dtype)
        (got,) = run_op("instance_norm", x, scale, bias)
        want = F.instance_norm(to_torch(x), weight=to_torch(scale), bias=to_torch(bias))
        assert_close(got, want, x.dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_group_norm_against_torch(dtype: str) -> None:
    rng = np.random.default_rng(seed_of("group_norm", dtype))
    for shape, groups in (((2, 6, 5), 3), ((2, 6, 5), 1), ((3, 4), 2), ((2, 8, 3, 4), 8),
                          ((1, 6, 2, 2, 3), 2)):
        c = shape[1]
        x = randn(rng, shape, dtype, loc=2.0)
        scale, bias = randn(rng, (c,), dtype), randn(rng, (c,), dtype)
        (got,) = run_op("group_norm", x, scale, bias, num_groups=groups, epsilon=1e-4)
        want = F.group_norm(to_torch(x), groups, to_torch(scale), to_torch(bias), eps=1e-4)
        assert_close(got, want, x.dtype)


def test_norms_on_symbolic_input() -> None:
    m = Module("m")
    f = FunctionBuilder(m)
    x = f.arg("x", t(["n", 6, "s"]))
    p = f.arg("p", t([6]))
    w = f.arg("w", t(["s"]))
    f.ret(f.group_norm(x, p, p, num_groups=2), f.layer_norm(x, w, axis=-1),
          f.batch_norm(x, p, p, p, f.exp(p)))
    rng = np.random.default_rng(5)
    xa, pa, wa = randn(rng, (3, 6, 7), "f32"), randn(rng, (6,), "f32"), randn(rng, (7,), "f32")
    gn, ln, bn = interpret(m, xa, pa, wa)
    tx, tp = to_torch(xa), to_torch(pa)
    assert_close(gn, F.group_norm(tx, 2, tp, tp), np.dtype(np.float32))
    assert_close(ln, F.layer_norm(tx, (7,), to_torch(wa)), np.dtype(np.float32))
    assert_close(bn, F.batch_norm(tx, tp, torch.exp(tp), tp, tp, training=False),
                 np.dtype(np.float32))


def test_group_norm_symbolic_channels_checked_at_run_time() -> None:
    m = Module("m")
    f = FunctionBuilder(m)
    x, p = f.arg("x", t([2, "c", 3])), f.arg("p", t(["c"]))
    f.ret(f.group_norm(x, p, p, num_groups=4))
    with pytest.raises(InterpreterError, match="C = 6 is not divisible by num_groups = 4"):
        interpret(m, np.ones((2, 6, 3), np.float32), np.ones(6, np.float32))


def test_low_precision_statistics_in_f32() -> None:
    # a large common offset: f16 statistics would lose the small deviations entirely
    rng = np.random.default_rng(11)
    x = (1000.0 + rng.standard_normal((4, 64))).astype(np.float16)
    (got,) = run_op("layer_norm", x)
    want = F.layer_norm(to_torch(x), (64,))
    assert_close(got, want, np.dtype(np.float16))


# --- samples ------------------------------------------------------------------------------------


def test_samples_cover_every_op() -> None:
    assert set(SAMPLES) == OPS_TESTED


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_run_and_are_finite(name: str) -> None:
    check_samples(SAMPLES, name)
