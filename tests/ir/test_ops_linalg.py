"""Tests of the linear-algebra ops: type rules (static and symbolic shapes, errors) and numerics
against PyTorch (matmul, linear, einsum) and NumPy (gemm) through the builder and interpreter."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compiler.ir import BuildError, FunctionBuilder, Module, TypeInferenceError, tensor
from tests.ir.opcheck import BF16, check_samples, run_op, to_torch
from tests.ir.opcheck import infer_one as infer
from tests.ir.samples.linalg import SAMPLES, array

OPS_TESTED = {"matmul", "gemm", "linear", "einsum"}


def t(shape, dtype: str = "f32"):
    return tensor(shape, dtype)


def assert_matches(got: np.ndarray, want: torch.Tensor | np.ndarray, dtype: np.dtype) -> None:
    """Compare with a tolerance fitting the dtype; the expected value is rounded to it first."""
    want = want.numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.dtype == dtype
    if dtype.kind in "iu":
        np.testing.assert_array_equal(got, want.astype(dtype))
        return
    tol = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5, np.dtype(np.float16): 2e-3}
    rtol = tol.get(np.dtype(dtype), 1e-2)  # bf16
    np.testing.assert_allclose(got.astype(np.float64), want.astype(dtype).astype(np.float64),
                               rtol=rtol, atol=rtol * 4)


# --- matmul shape rules ---------------------------------------------------------------------------


@pytest.mark.parametrize("a, b, want", [
    ([3, 4], [4, 5], [3, 5]),
    ([4], [4, 5], [5]),
    ([3, 4], [4], [3]),
    ([4], [4], []),
    ([2, 3, 4], [4, 5], [2, 3, 5]),
    ([4], [2, 4, 5], [2, 5]),
    ([2, 1, 3, 4], [6, 4, 5], [2, 6, 3, 5]),
    (["b", 3, 4], [4, 5], ["b", 3, 5]),
    (["b", "m", "k"], ["b", "k", "n"], ["b", "m", "n"]),
    ([3, "k"], [4, 5], [3, 5]),                 # symbol against int: checked at run time
    (["b", 3, 4], [1, 4, 5], ["b", 3, 5]),
    (["b", 3, 4], [7, 4, 5], [7, 3, 5]),
])
def test_matmul_shapes(a, b, want):
    assert infer("matmul", t(a), t(b)) == t(want)


@pytest.mark.parametrize("dtype", ["f16", "bf16", "f32", "f64", "i32", "i64"])
def test_matmul_dtypes(dtype):
    assert infer("matmul", t([2, 3], dtype), t([3, 2], dtype)) == t([2, 2], dtype)


@pytest.mark.parametrize("a, b, match", [
    (t([3, 4]), t([5, 6]), r"contraction dims .* must be equal, got 4 and 5"),
    (t([4]), t([5]), r"got 4 and 5"),
    (t([3, "k"]), t(["j", 5]), r"\?k and \?j; use one symbol"),
    (t([2, 3, 4]), t([3, 4, 5]), r"matmul batch dims"),
    (t([]), t([3]), r"rank >= 1"),
    (t([2, 3]), t([3, 2], "f64"), r"share a dtype, got f32 and f64"),
    (t([2, 3], "i8"), t([3, 2], "i8"), r"matmul needs .*got i8"),
    (t([2, 3], "bool"), t([3, 2], "bool"), r"got bool"),
])
def test_matmul_errors(a, b, match):
    with pytest.raises(TypeInferenceError, match=match):
        infer("matmul", a, b)


def test_matmul_error_through_builder():
    f = FunctionBuilder(Module("m"), "main")
    x, w = f.arg("x", t(["b", 8])), f.arg("w", t([7, 4]))
    with pytest.raises(BuildError, match=r"matmul\(f32\[\?b,8\], f32\[7,4\]\).*8 and 7"):
        f.matmul(x, w)


# --- matmul numerics ------------------------------------------------------------------------------


@pytest.mark.parametrize("a_shape, b_shape", [
    ((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
    ((2, 1, 3, 4), (5, 4, 2)), ((5,), (2, 3, 5, 4)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, BF16, np.int32, np.int64])
def test_matmul_vs_torch(a_shape, b_shape, dtype):
    rng = np.random.default_rng(hash((a_shape, b_shape)) % 2**32)
    a, b = array(rng, a_shape, dtype), array(rng, b_shape, dtype)
    (got,) = run_op("matmul", a, b)
    assert_matches(got, torch.matmul(to_torch(a), to_torch(b)), np.dtype(dtype))


def test_matmul_f16_accumulates_in_f32():
    # 4096 ones: an f16 accumulator stalls at 2048 (2048 + 1 rounds back to 2048 in f16),
    # the f32 sum rounded once gives 4096.
    a = np.full((1, 4096), 1.0, np.float16)
    b = np.full((4096, 1), 1.0, np.float16)
    (got,) = run_op("matmul", a, b)
    assert got.dtype == np.float16 and got[0, 0] == np.float16(4096)


def test_matmul_int_wraps_in_width():
    a = np.full((1, 2), 2**30, np.int32)
    b = np.full((2, 1), 2, np.int32)
    (got,) = run_op("matmul", a, b)
    assert got.dtype == np.int32 and got[0, 0] == np.int32(0)  # 2**32 wraps to 0


# --- gemm -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("a, b, c, attrs, want", [
    ([3, 4], [4, 5], None, {}, [3, 5]),
    ([4, 3], [4, 5], None, {"trans_a": True}, [3, 5]),
    ([3, 4], [5, 4], [5], {"trans_b": True}, [3, 5]),
    ([4, 3], [5, 4], [3, 1], {"trans_a": True, "trans_b": True}, [3, 5]),
    ([3, 4], [4, 5], [], {}, [3, 5]),
    ([3, 4], [4, 5], [1, 5], {"alpha": 0.5, "beta": 2.0}, [3, 5]),
    (["m", 4], [4, "n"], ["m", "n"], {}, ["m", "n"]),
    (["m", 4], [4, 5], [1], {}, ["m", 5]),
])
def test_gemm_shapes(a, b, c, attrs, want):
    ops = [t(a), t(b)] + ([t(c)] if c is not None else [])
    assert infer("gemm", *ops, **attrs) == t(want)


@pytest.mark.parametrize("ops, attrs, match", [
    ([t([3, 4]), t([5, 4])], {}, r"gemm: contraction dims .*got 4 and 5"),
    ([t([2, 3, 4]), t([4, 5])], {}, r"operand a must have rank 2"),
    ([t([3, 4]), t([4])], {}, r"operand b must have rank 2"),
    ([t([3, 4]), t([4, 5]), t([3])], {}, r"operand c f32\[3\] does not broadcast to .*\[3,5\]"),
    ([t([3, 4]), t([4, 5]), t([2, 3, 5])], {}, r"c must have rank <= 2"),
    ([t([3, 4], "i32"), t([4, 5], "i32")], {"alpha": 0.5}, r"integral alpha and beta"),
    ([t([3, 4]), t([4, 5]), t([5], "f16")], {}, r"share a dtype"),
    ([t([3, 4], "u8"), t([4, 5], "u8")], {}, r"gemm needs .*got u8"),
    ([t(["m", 4]), t([4, 5]), t(["q", 5])], {}, r"c f32\[\?q,5\] does not broadcast"),
])
def test_gemm_errors(ops, attrs, match):
    with pytest.raises(TypeInferenceError, match=match):
        infer("gemm", *ops, **attrs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, BF16, np.int32, np.int64])
@pytest.mark.parametrize("trans_a, trans_b, c_shape", [
    (False, False, None), (True, False, (5,)), (False, True, (3, 1)), (True, True, (3, 5)),
    (False, False, ()),
])
def test_gemm_vs_numpy(dtype, trans_a, trans_b, c_shape):
    rng = np.random.default_rng(7)
    ints = np.dtype(dtype).kind in "iu"
    alpha, beta = (2.0, -3.0) if ints else (0.75, -1.5)
    a = array(rng, (4, 3) if trans_a else (3, 4), dtype)
    b = array(rng, (5, 4) if trans_b else (4, 5), dtype)
    inputs = [a, b] + ([array(rng, c_shape, dtype)] if c_shape is not None else [])
    (got,) = run_op("gemm", *inputs, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b)
    wide = [x.astype(np.int64 if ints else np.float64) for x in inputs]
    want = alpha * ((wide[0].T if trans_a else wide[0]) @ (wide[1].T if trans_b else wide[1]))
    if c_shape is not None:
        want = want + beta * wide[2]
    assert got.shape == (3, 5)
    assert_matches(got, want, np.dtype(dtype))


def test_gemm_beta_zero_ignores_c():
    rng = np.random.default_rng(3)
    a, b = array(rng, (2, 3), np.float32), array(rng, (3, 2), np.float32)
    c = np.full((2, 2), np.inf, np.float32)
    (got,) = run_op("gemm", a, b, c, beta=0.0)
    np.testing.assert_allclose(got, a @ b, rtol=1e-6)


# --- linear ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("x, w, bias, want", [
    ([4], [5, 4], None, [5]),
    ([3, 4], [5, 4], [5], [3, 5]),
    ([2, 3, 4], [5, 4], None, [2, 3, 5]),
    (["b", "s", 4], [5, 4], [5], ["b", "s", 5]),
    (["b", "k"], ["n", "k"], ["n"], ["b", "n"]),
    (["b", 4], ["n", 4], [5], ["b", 5]),
])
def test_linear_shapes(x, w, bias, want):
    ops = [t(x), t(w)] + ([t(bias)] if bias is not None else [])
    assert infer("linear", *ops) == t(want)


@pytest.mark.parametrize("ops, match", [
    ([t([3, 4]), t([4, 5])], r"in-features .*got 4 and 5"),
    ([t([3, 4]), t([4])], r"weight w must have rank 2"),
    ([t([]), t([5, 4])], r"x must have rank >= 1"),
    ([t([3, 4]), t([5, 4]), t([6])], r"out-features .*got 5 and 6"),
    ([t([3, 4]), t([5, 4]), t([1, 5])], r"bias must have rank 1"),
    ([t([3, 4], "i16"), t([5, 4], "i16")], r"linear needs .*got i16"),
])
def test_linear_errors(ops, match):
    with pytest.raises(TypeInferenceError, match=match):
        infer("linear", *ops)


@pytest.mark.parametrize("x_shape, with_bias", [((4,), True), ((3, 4), False), ((2, 3, 4), True),
                                                ((2, 1, 3, 4), False)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, BF16, np.int64])
def test_linear_vs_torch(x_shape, with_bias, dtype):
    rng = np.random.default_rng(len(x_shape) * 10 + with_bias)
    x, w = array(rng, x_shape, dtype), array(rng, (6, 4), dtype)
    b = array(rng, (6,), dtype) if with_bias else None
    (got,) = run_op("linear", x, w, *([b] if with_bias else []))
    if np.dtype(dtype).kind in "iu":  # torch's F.linear has no integer kernel on CPU
        want = torch.matmul(to_torch(x), to_torch(w).T) + (to_torch(b) if with_bias else 0)
    else:
        want = F.linear(to_torch(x), to_torch(w), to_torch(b) if with_bias else None)
    assert_matches(got, want, np.dtype(dtype))


# --- einsum ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("eq, shapes, want", [
    ("ij,jk->ik", [[2, 3], [3, 4]], [2, 4]),
    ("ij,jk", [[2, 3], [3, 4]], [2, 4]),
    ("ij->ji", [[2, 3]], [3, 2]),
    ("ji", [[2, 3]], [3, 2]),                       # implicit output is alphabetical: "ij"
    ("bA", [[2, 3]], [3, 2]),                       # ... in ASCII order, uppercase first
    ("ii->i", [[3, 3]], [3]),
    ("ii", [[3, 3]], []),
    ("i,i", [[4], [4]], []),
    ("i,j->ij", [[2], [3]], [2, 3]),
    ("ijk->", [[2, 3, 4]], []),
    ("...ij,...jk->...ik", [[5, 2, 3], [3, 4]], [5, 2, 4]),
    ("...ij,...jk", [[1, 2, 3], [6, 3, 4]], [6, 2, 4]),
    ("...i->...", [[2, 3, 4]], [2, 3]),
    ("i...->i", [[4]], [4]),                        # '...' may cover no dims
    ("b...d,b...d->b...", [["b", 3, 4, 8], ["b", 1, 4, 8]], ["b", 3, 4]),
    ("bhqd,bhkd->bhqk", [["b", 4, "s", 8], ["b", 4, "t", 8]], ["b", 4, "s", "t"]),
    ("ij,jk->ik", [["m", "k"], [3, 4]], ["m", 4]),
    ("ij,ij->ij", [["m", 4], [5, 4]], [5, 4]),      # the static size wins
    (" ij , jk -> ik ", [[2, 3], [3, 4]], [2, 4]),
    ("ij,jk,kl->il", [[2, 3], [3, 4], [4, 5]], [2, 5]),
])
def test_einsum_shapes(eq, shapes, want):
    assert infer("einsum", *[t(s) for s in shapes], equation=eq) == t(want)


@pytest.mark.parametrize("eq, shapes, match", [
    ("ij,jk->ik", [[2, 3]], r"2 operand terms, but 1 operands"),
    ("ij->ji", [[2, 3, 4]], r"operand 0 has rank 3 but term 'ij' names 2 dims"),
    ("ijk...->i", [[2, 3]], r"operand 0 has rank 2 but term 'ijk...' names 3 dims"),
    ("ij,jk->ik", [[2, 3], [4, 5]], r"dims labelled 'j' .*got 3 and 4"),
    ("ii->i", [[2, 3]], r"dims labelled 'i' .*got 2 and 3"),
    ("ij,jk->iz", [[2, 3], [3, 4]], r"output label 'z' appears in no operand"),
    ("ij->ii", [[2, 3]], r"repeats a label"),
    ("i1->i", [[2, 3]], r"labels are letters"),
    ("i->i->i", [[2]], r"more than one '->'"),
    ("...i...->i", [[2, 3]], r"more than one '...'"),
    ("...ij->ij", [[5, 2, 3]], r"'...' covers dims \[5\] but the output has no '...'"),
    ("...i,...i->...", [[2, 3], [4, 3]], r"'...' dims"),
    ("ij,jk->ik", [[2, "a"], ["b", 4]], r"\?a and \?b"),
])
def test_einsum_errors(eq, shapes, match):
    with pytest.raises(TypeInferenceError, match=match):
        infer("einsum", *[t(s) for s in shapes], equation=eq)


def test_einsum_operand_errors():
    with pytest.raises(TypeInferenceError, match=r"at least one operand"):
        infer("einsum", equation="->")
    with pytest.raises(TypeInferenceError, match=r"share a dtype"):
        infer("einsum", t([2]), t([2], "f64"), equation="i,i")
    with pytest.raises(TypeInferenceError, match=r"needs attribute 'equation'"):
        infer("einsum", t([2]))


@pytest.mark.parametrize("eq, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->ji", [(2, 3)]),
    ("ba", [(2, 3)]),
    ("i,j->ij", [(3,), (4,)]),
    ("...ij,...jk->...ik", [(5, 1, 2, 3), (4, 3, 2)]),
    ("b...d,b...d->b...", [(2, 3, 4), (2, 1, 4)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ijk->", [(2, 3, 4)]),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, BF16, np.int32])
def test_einsum_vs_torch(eq, shapes, dtype):
    rng = np.random.default_rng(len(eq))
    xs = [array(rng, s, dtype) for s in shapes]
    (got,) = run_op("einsum", *xs, equation=eq)
    if np.dtype(dtype).kind in "iu":  # torch.einsum on CPU lacks some integer kernels
        want = np.einsum(eq, *[x.astype(np.int64) for x in xs])
    else:
        want = torch.einsum(eq, *[to_torch(x) for x in xs])
    assert_matches(got, want, np.dtype(dtype))


# --- samples --------------------------------------------------------------------------------------


def test_samples_cover_the_ops():
    assert set(SAMPLES) == OPS_TESTED


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_run(name):
    check_samples(SAMPLES, name)
