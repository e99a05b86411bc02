"""Tests for the data-movement ops: shape rules (static, symbolic, invalid) and references against
PyTorch (or NumPy / a direct transcription of the ONNX spec where torch differs from ONNX)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compiler.ir import (FunctionBuilder, InterpreterError, Module, TypeInferenceError, get_op,
                         interpret, tensor)
from compiler.ir import dtypes as dt
from compiler.ir.ops import movement
from compiler.ir.registry import all_ops
from tests.ir.opcheck import BF16, check_samples, infer, run_op
from tests.ir.samples.movement import SAMPLES

OPS_TESTED = {
    "reshape", "transpose", "broadcast_to", "concat", "split", "slice", "gather",
    "gather_elements", "gather_nd", "scatter_elements", "scatter_nd", "pad", "tile", "squeeze",
    "unsqueeze", "flatten", "identity", "depth_to_space", "space_to_depth", "reverse", "full",
    "range", "shape_of", "one_hot", "topk", "trilu",
}
INT64_MAX, INT64_MIN = 2**63 - 1, -2**63


def shapes(name: str, *types, **attrs) -> list[tuple]:
    return [t.shape for t in infer(name, *types, **attrs)]


def T(shape, dtype: str = "f32"):
    return tensor(shape, dtype)


def rand(rng: np.random.Generator, shape, dtype="f32") -> np.ndarray:
    """Random non-zero values (integers in [-50, 50) for int dtypes)."""
    d = dt.dtype(dtype)
    if d.is_bool:
        return rng.random(shape) < 0.5
    if d.is_int:
        return rng.integers(0 if d.kind == "uint" else -50, 50, size=shape).astype(d.np_dtype)
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 1e-2, 0.5, x).astype(d.np_dtype)


def tt(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def same(actual: np.ndarray, expected) -> None:
    """Exact equality with matching dtype and shape (data movement does not round)."""
    if isinstance(expected, torch.Tensor):
        expected = expected.numpy()
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    np.testing.assert_array_equal(actual, expected)


def run_sym(name: str, arrays, types, bind_only: int = 0, **attrs) -> list[np.ndarray]:
    """Run one op whose arguments have the given (possibly symbolic) types; the last `bind_only`
    arguments are not operands, they only bind symbols."""
    m = Module("sym")
    f = FunctionBuilder(m)
    args = [f.arg(f"x{i}", t) for i, t in enumerate(types)]
    res = f.op(name, *args[:len(args) - bind_only], **attrs)
    f.ret(*(res if isinstance(res, list) else [res]))
    return interpret(m, *arrays)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# --- registry contract ---------------------------------------------------------------------------


def test_declared_ops_traits_and_samples():
    ours = {n for n, o in all_ops().items() if o.type_rule.__module__ == movement.__name__}
    assert ours == OPS_TESTED == set(SAMPLES)
    for name in ours:
        op = get_op(name)
        want = {"pure"} if name in ("full", "range", "shape_of", "topk") else {"pure", "injective"}
        assert op.traits == want, name
        assert op.doc, name
    assert get_op("reshape").needs_out_shapes and get_op("full").needs_out_shapes


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_run_and_are_finite(name):
    check_samples(SAMPLES, name)


# --- reshape -------------------------------------------------------------------------------------


def test_reshape_shapes():
    assert shapes("reshape", T([2, 3, 4]), shape=[6, -1]) == [(6, 4)]
    assert shapes("reshape", T([2, 3, 4]), shape=[0, -1]) == [(2, 12)]
    assert shapes("reshape", T([2, 3, 4]), shape=[-1]) == [(24,)]
    assert shapes("reshape", T([0, 3]), shape=[0, 5], allowzero=True) == [(0, 5)]
    assert shapes("reshape", T([]), shape=[1, 1]) == [(1, 1)]
    assert shapes("reshape", T(["b", 12, 64]), shape=["b", -1]) == [("b", 768)]
    assert shapes("reshape", T(["b", 768]), shape=["b", 12, -1]) == [("b", 12, 64)]
    assert shapes("reshape", T(["b", 768]), shape=[0, 12, 64]) == [("b", 12, 64)]
    assert shapes("reshape", T([2, "s", 8]), shape=[2, "s", -1, 4]) == [(2, "s", 2, 4)]
    assert shapes("reshape", T(["s", 8]), shape=[-1, 2, 4]) == [("s", 2, 4)]
    assert shapes("reshape", T(["b", 4]), shape=["n", 4]) == [("n", 4)]  # checked at run time


@pytest.mark.parametrize("src, target, match", [
    ([2, 3], [7], r"changes the element count"),
    (["b", 4], ["b", 5], r"changes the element count"),
    (["b", 768], [-1, 7], r"\[\?b,768\].*|\[-1,7\]"),
    (["b", "s", 8], [-1, 8], r"cannot infer the -1 in \[-1,8\] from input shape \[\?b,\?s,8\]"),
    ([2, 3], [-1, -1], r"two -1s"),
    ([2, 3], [-2, 3], r"negative dim -2"),
    ([2, 3], [6, 1, 0], r"copies dim 2"),
])
def test_reshape_invalid(src, target, match):
    with pytest.raises(TypeInferenceError, match=match):
        infer("reshape", T(src), shape=target)


def test_reshape_unresolvable_names_both_shapes():
    with pytest.raises(TypeInferenceError) as e:
        infer("reshape", T(["b", 768]), shape=[-1, 7])
    assert "[-1,7]" in str(e.value) and "[?b,768]" in str(e.value)
    with pytest.raises(TypeInferenceError, match="allowzero"):
        infer("reshape", T([0, 3]), shape=[0, -1], allowzero=True)


def test_reshape_reference(rng):
    x = rand(rng, (2, 3, 4), "i64")
    for target in ([6, -1], [0, 4, 3], [-1], [4, 0, 2]):
        want = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
        same(run_op("reshape", x, shape=target)[0], tt(x).reshape(want))
    xb = rand(rng, (3, 12, 64)).astype(BF16)
    out = run_sym("reshape", [xb], [T(["b", 12, 64], "bf16")], shape=["b", -1])[0]
    same(out, xb.reshape(3, 768))
    z = np.zeros((0, 3), np.float32)
    same(run_op("reshape", z, shape=[3, 0], allowzero=True)[0], z.reshape(3, 0))


# --- transpose -----------------------------------------------------------------------------------


def test_transpose_shapes_and_errors():
    assert shapes("transpose", T([2, 3, 4])) == [(4, 3, 2)]
    assert shapes("transpose", T(["b", 3, 4]), perm=[1, 0, 2]) == [(3, "b", 4)]
    assert shapes("transpose", T([])) == [()]
    for perm in ([0, 0, 1], [0, 1], [0, 1, 3]):
        with pytest.raises(TypeInferenceError, match=r"transpose attribute 'perm'.*permutation"):
            infer("transpose", T([2, 3, 4]), perm=perm)


@pytest.mark.parametrize("dtype", ["f32", "i32", "bool", "bf16"])
def test_transpose_reference(rng, dtype):
    x = rand(rng, (2, 3, 4, 5), "f32" if dtype == "bf16" else dtype)
    for perm in ([3, 1, 0, 2], [0, 1, 2, 3], []):
        want = tt(x).permute(perm or [3, 2, 1, 0]).numpy()
        xin = x.astype(BF16) if dtype == "bf16" else x
        same(run_op("transpose", xin, perm=perm)[0], want.astype(xin.dtype))


# --- broadcast_to --------------------------------------------------------------------------------


def test_broadcast_to_shapes_and_errors():
    assert shapes("broadcast_to", T([3, 1]), shape=[2, 1, 4]) == [(2, 3, 4)]
    assert shapes("broadcast_to", T([3, 4]), shape=[1, 1]) == [(3, 4)]  # Expand: 1s allowed
    assert shapes("broadcast_to", T(["b", 1]), shape=["b", 5]) == [("b", 5)]
    assert shapes("broadcast_to", T([]), shape=["n", 2]) == [("n", 2)]
    with pytest.raises(TypeInferenceError, match=r"broadcast_to.*do not broadcast"):
        infer("broadcast_to", T([3]), shape=[4])
    with pytest.raises(TypeInferenceError, match=r"broadcast_to attribute 'shape'.*negative"):
        infer("broadcast_to", T([3]), shape=[-1, 3])


def test_broadcast_to_reference(rng):
    # torch.expand rejects a 1 where x is larger (ONNX Expand allows it): use broadcast_to on the
    # broadcast shape, which is what Expand means.
    for xs, target, dtype in [((3, 1), (2, 1, 4), "f32"), ((3, 4), (1, 1), "i8"),
                              ((), (2, 3), "bool"), ((1, 5), (4, 5), "f16")]:
        x = rand(rng, xs, dtype)
        want = torch.broadcast_to(tt(x), torch.broadcast_shapes(tuple(xs), target))
        same(run_op("broadcast_to", x, shape=list(target))[0], want)
    x = rand(rng, (1, 3))
    out = run_sym("broadcast_to", [x, np.zeros(4, np.float32)], [T([1, 3]), T(["n"])],
                  bind_only=1, shape=["n", 3])[0]
    same(out, np.broadcast_to(x, (4, 3)))


# --- concat, split -------------------------------------------------------------------------------


def test_concat_shapes_and_errors():
    assert shapes("concat", T([2, 3]), T([2, 5]), axis=-1) == [(2, 8)]
    assert shapes("concat", T(["b", 3]), T(["b", 1]), T(["b", 2]), axis=1) == [("b", 6)]
    assert shapes("concat", T(["s", 4]), axis=0) == [("s", 4)]
    assert shapes("concat", T([0, 4]), T(["s", 4]), axis=0) == [("s", 4)]
    bad = [((T([2, 3]), T([2, 3], "f16")), 0, r"share a dtype"),
           ((T([2, 3]), T([2, 3, 1])), 0, r"share a rank"),
           ((T([2, 3]), T([4, 3])), 1, r"dim 0 .* must match: 2 vs 4"),
           ((T(["b", 3]), T(["c", 3])), 1, r"must match: \?b vs \?c"),
           ((T(["s", 3]), T([2, 3])), 0, r"needs static sizes along axis 0"),
           ((T([2, 3]), T([2, 3])), 2, r"concat axis 2 is out of range"),
           ((T([]), T([])), 0, r"rank >= 1"),
           ((), 0, r"at least one input")]
    for types, axis, match in bad:
        with pytest.raises(TypeInferenceError, match=match):
            infer("concat", *types, axis=axis)


@pytest.mark.parametrize("dtype", ["f32", "bf16", "i64", "bool"])
def test_concat_reference(rng, dtype):
    base = "f32" if dtype == "bf16" else dtype
    xs = [rand(rng, (2, n, 3), base) for n in (1, 4, 2)]
    want = torch.cat([tt(x) for x in xs], dim=1).numpy()
    xs_in = [x.astype(BF16) for x in xs] if dtype == "bf16" else xs
    same(run_op("concat", *xs_in, axis=-2)[0], want.astype(xs_in[0].dtype))


def test_split_shapes_and_errors():
    assert shapes("split", T(["b", 10]), axis=-1, sizes=[3, 7]) == [("b", 3), ("b", 7)]
    assert shapes("split", T([4, 2]), sizes=[4]) == [(4, 2)]
    assert shapes("split", T([4, 2]), sizes=[0, 4]) == [(0, 2), (4, 2)]
    with pytest.raises(TypeInferenceError, match=r"split attribute 'sizes' \[3, 3\].*add up to 10"):
        infer("split", T([2, 10]), axis=1, sizes=[3, 3])
    with pytest.raises(TypeInferenceError, match=r"split needs a static dim .* \?s"):
        infer("split", T(["s", 10]), sizes=[1, 1])
    with pytest.raises(TypeInferenceError, match=r"split axis -3 is out of range"):
        infer("split", T([2, 10]), axis=-3, sizes=[2])


def test_split_reference(rng):
    x = rand(rng, (3, 10, 2), "i32")
    outs = run_op("split", x, axis=1, sizes=[3, 0, 5, 2])
    for got, want in zip(outs, torch.split(tt(x), [3, 0, 5, 2], dim=1)):
        same(got, want)
    xh = rand(rng, (6, 3), "f16")
    outs = run_op("split", xh, axis=-2, sizes=[1, 5])
    for got, want in zip(outs, torch.split(tt(xh), [1, 5], dim=0)):
        same(got, want)


# --- slice ---------------------------------------------------------------------------------------


def onnx_slice_indices(d: int, start: int, end: int, step: int) -> list[int]:
    """Indices taken on one axis, transcribed from the ONNX Slice spec text."""
    start, end = start + d if start < 0 else start, end + d if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), d), min(max(end, 0), d)
    else:
        start, end = min(max(start, 0), d - 1), min(max(end, -1), d - 1)
    return list(range(start, end, step))


def test_slice_shapes_and_errors():
    assert shapes("slice", T([10, 4]), starts=[2], ends=[-1]) == [(7, 4)]
    assert shapes("slice", T([10, 4]), starts=[1, 0], ends=[INT64_MAX, 3], steps=[3, 1]) == \
        [(3, 3)]
    assert shapes("slice", T([10, 4]), starts=[-1], ends=[INT64_MIN], axes=[0], steps=[-1]) == \
        [(10, 4)]
    assert shapes("slice", T([10, 4]), starts=[100], ends=[200], axes=[-1]) == [(10, 0)]
    # a negative step clamps start to 0 (not -1 as Python does): one element
    assert shapes("slice", T([10, 4]), starts=[-100], ends=[-200], axes=[-1], steps=[-1]) == \
        [(10, 1)]
    # a full slice of a symbolic axis keeps the symbol (also the full reverse)
    assert shapes("slice", T(["b", 8]), starts=[0, 2], ends=[INT64_MAX, 6]) == [("b", 4)]
    assert shapes("slice", T(["b", 8]), starts=[-1], ends=[INT64_MIN], steps=[-1]) == [("b", 8)]
    bad = [(T(["b", 8]), dict(starts=[1], ends=[INT64_MAX]), r"static dim on axis 0"),
           (T(["b", 8]), dict(starts=[0], ends=[4]), r"static dim on axis 0"),
           (T([4, 8]), dict(starts=[0], ends=[4], steps=[0]), r"'steps' \[0\] has a 0 step"),
           (T([4, 8]), dict(starts=[0, 1], ends=[4]), r"differ in length"),
           (T([4, 8]), dict(starts=[0, 0], ends=[1, 1], axes=[1, -1]), r"repeat an axis"),
           (T([4, 8]), dict(starts=[0], ends=[1], axes=[2]), r"slice axes 2 is out of range")]
    for t, attrs, match in bad:
        with pytest.raises(TypeInferenceError, match=match):
            infer("slice", t, **attrs)


def test_slice_reference_vs_torch(rng):
    # positive steps: torch basic slicing clamps like ONNX
    x = rand(rng, (6, 7, 5), "f32")
    for starts, ends, axes, steps in [([1, -3], [5, INT64_MAX], [0, 2], [2, 1]),
                                      ([-100], [100], [1], [3]),
                                      ([4, 0], [2, 3], [], [])]:
        idx = [slice(None)] * 3
        for a, s, e, st in zip(axes or range(len(starts)), starts, ends, steps or [1] * 3):
            idx[a] = slice(s, min(e, 2**62), st)
        same(run_op("slice", x, starts=starts, ends=ends, axes=axes, steps=steps)[0],
             tt(x)[tuple(idx)])


def test_slice_reference_negative_steps(rng):
    # torch has no negative-step slicing: compare with the ONNX spec's index lists
    x = rand(rng, (6, 7, 5), "bf16")
    cases = [([5], [0], [0], [-1]), ([-1, 6], [INT64_MIN, -100], [1, 2], [-2, -3]),
             ([-100], [INT64_MIN], [0], [-1]), ([100], [-8], [1], [-1])]
    for starts, ends, axes, steps in cases:
        want = x
        for a, s, e, st in zip(axes, starts, ends, steps):
            want = np.take(want, onnx_slice_indices(x.shape[a], s, e, st), axis=a)
        same(run_op("slice", x, starts=starts, ends=ends, axes=axes, steps=steps)[0], want)
    # start below -d clamps to 0 for a negative step (Python slicing would give an empty range)
    same(run_op("slice", np.arange(5), starts=[-7], ends=[INT64_MIN], steps=[-1])[0], [0])
    xs = rand(rng, (3, 4))
    out = run_sym("slice", [xs], [T(["b", 4])], starts=[-1, 1], ends=[INT64_MIN, 3], steps=[-1, 1])
    same(out[0], xs[::-1, 1:3])


# --- gathers -------------------------------------------------------------------------------------


def test_gather_shapes_and_errors():
    assert shapes("gather", T([5, 4, 3]), T([2, 6], "i64"), axis=1) == [(5, 2, 6, 3)]
    assert shapes("gather", T([5, 4]), T([], "i32"), axis=-2) == [(4,)]
    assert shapes("gather", T(["b", 4]), T(["n"], "i64"), axis=1) == [("b", "n")]
    with pytest.raises(TypeInferenceError, match=r"gather indices must be i32 or i64, got f32"):
        infer("gather", T([5]), T([2]))
    with pytest.raises(TypeInferenceError, match=r"gather axis 2 is out of range"):
        infer("gather", T([5, 4]), T([2], "i64"), axis=2)
    with pytest.raises(TypeInferenceError, match=r"rank >= 1"):
        infer("gather", T([]), T([2], "i64"))


@pytest.mark.parametrize("idx_dtype", [np.int32, np.int64])
def test_gather_reference(rng, idx_dtype):
    x = rand(rng, (5, 6, 3), "f16")
    for axis in (0, 1, -1):
        d = x.shape[axis]
        idx = rng.integers(-d, d, size=(2, 4)).astype(idx_dtype)
        a = axis % 3
        want = torch.index_select(tt(x), a, tt(idx.reshape(-1).astype(np.int64) % d))
        want = want.reshape(x.shape[:a] + idx.shape + x.shape[a + 1:])
        same(run_op("gather", x, idx, axis=axis)[0], want)


def test_gather_elements_shapes_and_errors():
    assert shapes("gather_elements", T([5, 4]), T([7, 2], "i64"), axis=0) == [(7, 2)]
    assert shapes("gather_elements", T(["b", 4]), T(["b", 9], "i32"), axis=-1) == [("b", 9)]
    with pytest.raises(TypeInferenceError, match=r"must have the rank"):
        infer("gather_elements", T([5, 4]), T([4], "i64"))
    with pytest.raises(TypeInferenceError, match=r"larger than data .* on dim 1"):
        infer("gather_elements", T([5, 4]), T([2, 5], "i64"), axis=0)


def test_gather_elements_reference(rng):
    x = rand(rng, (4, 5, 6), "i64")
    for axis in (0, 1, -1):
        ishape = [3, 4, 5]
        ishape[axis] = 7
        d = x.shape[axis]
        idx = rng.integers(-d, d, size=ishape)
        want = torch.gather(tt(x), axis % 3, tt(idx % d))  # torch does not wrap negatives
        same(run_op("gather_elements", x, idx.astype(np.int32), axis=axis)[0], want)


def test_gather_nd_shapes_and_errors():
    assert shapes("gather_nd", T([5, 4, 3]), T([7, 2], "i64")) == [(7, 3)]
    assert shapes("gather_nd", T([5, 4, 3]), T([7, 3], "i64")) == [(7,)]
    assert shapes("gather_nd", T(["b", 4, 3]), T(["b", 6, 1], "i64"), batch_dims=1) == \
        [("b", 6, 3)]
    bad = [(T([5, 4]), T([7, 3], "i64"), 0, r"index depth 3 .* must be in \[1, 2\]"),
           (T([5, 4]), T([7, "k"], "i64"), 0, r"static last indices dim"),
           (T([5, 4]), T([6, 1], "i64"), 1, r"batch dim 0 must match: 5 vs 6"),
           (T([5, 4]), T([5], "i64"), 1, r"'batch_dims' 1 must be in"),
           (T([5, 4]), T([5, 1], "f32"), 0, r"i32 or i64")]
    for x, idx, b, match in bad:
        with pytest.raises(TypeInferenceError, match=match):
            infer("gather_nd", x, idx, batch_dims=b)


def test_gather_nd_reference(rng):
    x = rand(rng, (4, 5, 3), "f32")
    for m in (1, 2, 3):
        bound = np.array(x.shape[:m])
        idx = rng.integers(0, 1000, size=(2, 3, m)) % (2 * bound) - bound
        want = tt(x)[tuple(tt(idx % bound).unbind(-1))]  # torch indexing; wrap negatives first
        same(run_op("gather_nd", x, idx, batch_dims=0)[0], want)
    # batch_dims=1: one torch gather per batch entry
    idx = rng.integers(-5, 5, size=(4, 6, 1)).astype(np.int32)
    want = torch.stack([tt(x[i])[tt(idx[i, :, 0].astype(np.int64) % 5)] for i in range(4)])
    same(run_op("gather_nd", x, idx, batch_dims=1)[0], want)


# --- scatters ------------------------------------------------------------------------------------


def test_scatter_elements_shapes_and_errors():
    x, i, u = T(["b", 5]), T(["b", 2], "i64"), T(["b", 2])
    assert shapes("scatter_elements", x, i, u, axis=-1, reduction="add") == [("b", 5)]
    with pytest.raises(TypeInferenceError, match=r"updates .* must have the shape of indices"):
        infer("scatter_elements", T([4, 5]), T([4, 2], "i64"), T([4, 3]), axis=1)
    with pytest.raises(TypeInferenceError, match=r"share a dtype"):
        infer("scatter_elements", T([4, 5]), T([4, 2], "i64"), T([4, 2], "f16"), axis=1)
    with pytest.raises(TypeInferenceError, match=r"'reduction' is 'sum'"):
        infer("scatter_elements", T([4, 5]), T([4, 2], "i64"), T([4, 2]), reduction="sum")


@pytest.mark.parametrize("reduction, torch_reduce", [
    ("add", "sum"), ("mul", "prod"), ("max", "amax"), ("min", "amin")])
@pytest.mark.parametrize("dtype", ["f32", "i64"])
def test_scatter_elements_reduce_reference(rng, reduction, torch_reduce, dtype):
    x = rand(rng, (4, 5, 3), dtype)
    idx = rng.integers(-5, 5, size=(4, 8, 3))  # duplicates on purpose
    upd = rand(rng, idx.shape, dtype)
    if reduction == "mul" and dtype == "f32":
        upd = np.abs(upd) % 2 + np.float32(0.5)
    want = tt(x).scatter_reduce(1, tt(idx % 5), tt(upd), torch_reduce, include_self=True)
    got = run_op("scatter_elements", x, idx, upd, axis=-2, reduction=reduction)[0]
    if dtype == "f32":  # accumulation order differs
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)
        assert got.dtype == np.float32
    else:
        same(got, want)


def test_scatter_elements_none_and_bf16(rng):
    x = rand(rng, (4, 6), "i32")
    idx = np.stack([rng.permutation(6)[:4] for _ in range(4)]) - 6  # unique per row, negative
    upd = rand(rng, idx.shape, "i32")
    same(run_op("scatter_elements", x, idx, upd, axis=1)[0],
         tt(x).scatter(1, tt(idx + 6), tt(upd)))
    # bf16 add accumulates in f32 and rounds once
    xb, ub = rand(rng, (3, 4), "bf16"), rand(rng, (5, 4), "bf16")
    ib = rng.integers(0, 3, size=(5, 4))
    want = tt(xb.astype(np.float32)).scatter_add(0, tt(ib), tt(ub.astype(np.float32)))
    same(run_op("scatter_elements", xb, ib, ub, reduction="add")[0], want.numpy().astype(BF16))


def test_scatter_nd_shapes_and_errors():
    assert shapes("scatter_nd", T([5, 4, 3]), T([7, 2], "i64"), T([7, 3])) == [(5, 4, 3)]
    assert shapes("scatter_nd", T([5, "b"]), T([2, 1], "i32"), T([2, "b"])) == [(5, "b")]
    with pytest.raises(TypeInferenceError, match=r"updates f32\[7,4\] must have shape \[7,3\]"):
        infer("scatter_nd", T([5, 4, 3]), T([7, 2], "i64"), T([7, 4]))
    with pytest.raises(TypeInferenceError, match=r"index depth 3 .* \[1, 2\]"):
        infer("scatter_nd", T([5, 4]), T([7, 3], "i64"), T([7]))
    with pytest.raises(TypeInferenceError, match=r"static last indices dim"):
        infer("scatter_nd", T([5, 4]), T([7, "k"], "i64"), T([7]))


def naive_scatter_nd(x, idx, upd, fn):
    """Loop over index tuples (ONNX ScatterND pseudo-code) combining with fn."""
    out = x.copy()
    k = idx.shape[-1]
    for pos in np.ndindex(idx.shape[:-1]):
        key = tuple(int(i) % d for i, d in zip(idx[pos], x.shape[:k]))
        out[key] = fn(out[key], upd[pos])
    return out


def test_scatter_nd_reference(rng):
    x = rand(rng, (4, 5, 3), "f64")
    idx = np.stack([rng.integers(-4, 4, size=6), rng.integers(-5, 5, size=6)], -1)
    upd = rand(rng, (6, 3), "f64")
    acc = tt(x).index_put(tuple(tt(idx % [4, 5]).unbind(-1)), tt(upd), accumulate=True)
    np.testing.assert_allclose(run_op("scatter_nd", x, idx, upd, reduction="add")[0], acc.numpy(),
                               rtol=1e-12)
    for red, fn in [("mul", np.multiply), ("max", np.maximum), ("min", np.minimum)]:
        got = run_op("scatter_nd", x, idx.astype(np.int32), upd, reduction=red)[0]
        np.testing.assert_allclose(got, naive_scatter_nd(x, idx, upd, fn), rtol=1e-12)
    # reduction none with unique index tuples
    flat = rng.permutation(20)[:6]
    uidx = np.stack([flat // 5, flat % 5], -1)
    want = tt(x).index_put(tuple(tt(uidx).unbind(-1)), tt(upd))
    same(run_op("scatter_nd", x, uidx, upd)[0], want)


# --- pad, tile -----------------------------------------------------------------------------------


def test_pad_shapes_and_errors():
    assert shapes("pad", T([2, 3]), pads=[1, 0, 2, 4]) == [(5, 7)]
    assert shapes("pad", T([2, 3]), pads=[-1, 0, 0, -2]) == [(1, 1)]
    assert shapes("pad", T(["b", 3]), pads=[0, 1, 0, 1], mode="reflect") == [("b", 5)]
    bad = [(T([2, 3]), dict(pads=[1, 1]), r"'pads' \[1, 1\] must have 2\*rank = 4"),
           (T([2, 3]), dict(pads=[0, 3, 0, 0], mode="reflect"), r"mode 'reflect' cannot pad dim 1"),
           (T([2, 3]), dict(pads=[0, 4, 0, 0], mode="wrap"), r"mode 'wrap' cannot pad dim 1"),
           (T([0, 3]), dict(pads=[1, 0, 0, 0], mode="edge"), r"mode 'edge' cannot pad dim 0"),
           (T(["b", 3]), dict(pads=[1, 0, 0, 0]), r"pad needs a static dim 0 .* \?b"),
           (T([2, 3]), dict(pads=[-2, 0, -1, 0]), r"crops 3 from dim 0 of size 2"),
           (T([2, 3], "i32"), dict(pads=[1, 0, 0, 0], value=0.5), r"'value' = 0.5 is not a i32"),
           (T([2, 3]), dict(pads=[1, 0, 0, 0], mode="symmetric"), r"'mode' is 'symmetric'")]
    for t, attrs, match in bad:
        with pytest.raises(TypeInferenceError, match=match):
            infer("pad", t, **attrs)


def _torch_pads(pads, rank):
    """ONNX [b0.., e0..] -> torch's (b_last, e_last, b_last-1, ...)."""
    out = []
    for i in reversed(range(rank)):
        out += [pads[i], pads[i + rank]]
    return out


@pytest.mark.parametrize("mode, torch_mode", [
    ("reflect", "reflect"), ("edge", "replicate"), ("wrap", "circular")])
def test_pad_modes_reference(rng, mode, torch_mode):
    # torch's non-constant modes pad only the trailing spatial dims of a batched input
    x = rand(rng, (2, 3, 5, 6), "f32")
    for pads in ([0, 0, 2, 1, 0, 0, 3, 4], [0, 0, 4, 0, 0, 0, 0, 5], [0, 0, 1, 2, 0, 0, 2, 1]):
        want = F.pad(tt(x), _torch_pads(pads, 4)[:4], mode=torch_mode)
        same(run_op("pad", x, pads=pads, mode=mode)[0], want)


def test_pad_constant_reference(rng):
    x = rand(rng, (3, 4, 5), "i64")
    for pads in ([1, 0, 2, 0, 3, 1], [-1, 2, 0, 1, 0, -3]):
        want = F.pad(tt(x), _torch_pads(pads, 3), value=-7)
        same(run_op("pad", x, pads=pads, value=-7.0)[0], want)
    xb = rand(rng, (3, 4), "bf16")
    want = F.pad(tt(xb.astype(np.float32)), [0, 2, 1, 0], value=1.5).numpy().astype(BF16)
    same(run_op("pad", xb, pads=[1, 0, 0, 2], value=1.5)[0], want)
    xf = rand(rng, (2, 2))
    got = run_op("pad", xf, pads=[0, 1, 0, 0], value=-math.inf)[0]  # -inf pad (max-pool use)
    assert got.shape == (2, 3) and np.isneginf(got[:, 0]).all()


def test_tile_shapes_and_reference(rng):
    assert shapes("tile", T([2, 3]), repeats=[2, 1]) == [(4, 3)]
    assert shapes("tile", T(["b", 3]), repeats=[1, 4]) == [("b", 12)]
    assert shapes("tile", T(["b", 3]), repeats=[0, 1]) == [(0, 3)]
    with pytest.raises(TypeInferenceError, match=r"tile needs a static dim 0: \?b\*2"):
        infer("tile", T(["b", 3]), repeats=[2, 1])
    with pytest.raises(TypeInferenceError, match=r"tile attribute 'repeats' \[2\]"):
        infer("tile", T([2, 3]), repeats=[2])
    for dtype in ("f32", "u8", "bool"):
        x = rand(rng, (2, 3, 1), dtype)
        same(run_op("tile", x, repeats=[2, 1, 3])[0], torch.tile(tt(x), (2, 1, 3)))
    same(run_op("tile", np.float32(2.5), repeats=[])[0], np.float32(2.5))


# --- squeeze, unsqueeze, flatten, identity -------------------------------------------------------


def test_squeeze_shapes_and_errors():
    assert shapes("squeeze", T([1, 3, 1, "b"])) == [(3, "b")]
    assert shapes("squeeze", T([1, 3, 1]), axes=[-1]) == [(1, 3)]
    assert shapes("squeeze", T(["b", 1]), axes=[1]) == [("b",)]
    with pytest.raises(TypeInferenceError, match=r"squeeze axis 1 of f32\[1,3\] has size 3"):
        infer("squeeze", T([1, 3]), axes=[1])
    with pytest.raises(TypeInferenceError, match=r"has size \?b, not 1"):
        infer("squeeze", T(["b", 3]), axes=[0])


def test_squeeze_unsqueeze_reference(rng):
    x = rand(rng, (1, 3, 1, 4), "i8")
    same(run_op("squeeze", x)[0], tt(x).squeeze())
    same(run_op("squeeze", x, axes=[-2])[0], tt(x).squeeze(2))
    # a symbolic dim that is 1 at run time stays: the type decides
    xs = rand(rng, (1, 1, 3))
    same(run_sym("squeeze", [xs], [T(["b", 1, 3])])[0], xs.reshape(1, 3))
    y = rand(rng, (3, 4), "bf16")
    for axes in ([0], [-1], [1, -1], [3, 0]):
        r = y.ndim + len(axes)
        want = tt(y.astype(np.float32))
        for a in sorted(a % r for a in axes):
            want = want.unsqueeze(a)
        same(run_op("unsqueeze", y, axes=axes)[0], want.numpy().astype(BF16))


def test_unsqueeze_shapes_and_errors():
    assert shapes("unsqueeze", T(["b", 4]), axes=[0, -1]) == [(1, "b", 4, 1)]
    assert shapes("unsqueeze", T([]), axes=[0]) == [(1,)]
    with pytest.raises(TypeInferenceError, match=r"unsqueeze axes \[1, -2\] repeat an axis"):
        infer("unsqueeze", T([4]), axes=[1, -2])
    with pytest.raises(TypeInferenceError, match=r"unsqueeze axes 3 is out of range for rank 3"):
        infer("unsqueeze", T([4, 5]), axes=[3])


def test_flatten_shapes_and_reference(rng):
    assert shapes("flatten", T([2, 3, 4])) == [(2, 12)]
    assert shapes("flatten", T([2, 3, 4]), axis=0) == [(1, 24)]
    assert shapes("flatten", T([2, 3, 4]), axis=3) == [(24, 1)]
    assert shapes("flatten", T([2, 3, 4]), axis=-1) == [(6, 4)]
    assert shapes("flatten", T(["b", 4, 5])) == [("b", 20)]
    assert shapes("flatten", T([]), axis=0) == [(1, 1)]
    with pytest.raises(TypeInferenceError, match=r"flatten of f32\[\?b,\?s\] .* \?b\*\?s"):
        infer("flatten", T(["b", "s"]), axis=2)
    with pytest.raises(TypeInferenceError, match=r"flatten axis 4 is out of range \[-3, 3\]"):
        infer("flatten", T([2, 3, 4]), axis=4)
    x = rand(rng, (2, 3, 4, 5), "f16")
    for axis in range(-4, 5):
        a = axis + 4 if axis < 0 else axis
        want = tt(x).reshape(math.prod(x.shape[:a]), -1)
        same(run_op("flatten", x, axis=axis)[0], want)


def test_identity(rng):
    assert shapes("identity", T(["b", 2], "i8")) == [("b", 2)]
    x = rand(rng, (3, 2), "bf16")
    same(run_op("identity", x)[0], x)
    with pytest.raises(TypeInferenceError, match=r"identity takes 1 operands"):
        infer("identity", T([2]), T([2]))


# --- depth_to_space, space_to_depth, reverse -----------------------------------------------------


def test_depth_space_shapes_and_errors():
    assert shapes("depth_to_space", T(["n", 12, 2, 3]), blocksize=2) == [("n", 3, 4, 6)]
    assert shapes("space_to_depth", T(["n", 3, 4, 6]), blocksize=2) == [("n", 12, 2, 3)]
    assert shapes("depth_to_space", T([1, "c", "h", 3]), blocksize=1) == [(1, "c", "h", 3)]
    bad = [("depth_to_space", T([1, 10, 2, 2]), r"channels 10 .* blocksize\*\*2 = 4"),
           ("depth_to_space", T([1, 4, "h", 2]), r"static height: \?h\*2"),
           ("depth_to_space", T([1, "c", 2, 2]), r"static channel dim, got \?c"),
           ("space_to_depth", T([1, 3, 5, 4]), r"height 5 .* not divisible by blocksize 2"),
           ("space_to_depth", T([1, 3, 4]), r"4-D"),
           ("depth_to_space", T([2, 4, 3]), r"4-D")]
    for name, t, match in bad:
        with pytest.raises(TypeInferenceError, match=match):
            infer(name, t, blocksize=2)
    with pytest.raises(TypeInferenceError, match=r"'blocksize' must be >= 1, got 0"):
        infer("space_to_depth", T([1, 3, 4, 4]), blocksize=0)


def test_depth_to_space_reference(rng):
    b, c = 3, 2
    x = rand(rng, (2, c * b * b, 4, 5), "f32")
    # CRD is torch's pixel_shuffle
    same(run_op("depth_to_space", x, blocksize=b, mode="CRD")[0], F.pixel_shuffle(tt(x), b))
    # DCR reads channel (i*b + j)*c + k where CRD reads k*b*b + i*b + j: reorder, then shuffle
    perm = [(i * b + j) * c + k for k in range(c) for i in range(b) for j in range(b)]
    same(run_op("depth_to_space", x, blocksize=b)[0], F.pixel_shuffle(tt(x[:, perm]), b))


def test_space_to_depth_reference(rng):
    b, c = 2, 3
    x = rand(rng, (2, c, 6, 4), "i32")
    # torch's pixel_unshuffle writes channel k*b*b + i*b + j; ONNX SpaceToDepth (i*b + j)*c + k
    unshuffled = F.pixel_unshuffle(tt(x), b)
    perm = [k * b * b + i * b + j for i in range(b) for j in range(b) for k in range(c)]
    got = run_op("space_to_depth", x, blocksize=b)[0]
    same(got, unshuffled[:, perm])
    same(run_op("depth_to_space", got, blocksize=b, mode="DCR")[0], x)  # inverse


def test_reverse(rng):
    assert shapes("reverse", T(["b", 3]), axes=[0, -1]) == [("b", 3)]
    with pytest.raises(TypeInferenceError, match=r"reverse axes \[1, -1\] repeat an axis"):
        infer("reverse", T([2, 3]), axes=[1, -1])
    x = rand(rng, (3, 4, 5), "u8")
    for axes in ([0], [-1, 1], [], [0, 1, 2]):
        same(run_op("reverse", x, axes=axes)[0], torch.flip(tt(x), [a % 3 for a in axes]))


# --- full, range, shape_of, one_hot --------------------------------------------------------------


def test_full_shapes_and_errors():
    assert infer("full", shape=["b", 3], value=2.0) == [T(["b", 3], "f32")]
    assert infer("full", shape=[], value=-3.0, dtype="i8") == [T([], "i8")]
    bad = [(dict(shape=[-1, 3], value=1.0), r"full attribute 'shape' \[-1,3\] has a negative"),
           (dict(shape=[2], value=1.5, dtype="i32"), r"'value' = 1.5 is not a i32 integer"),
           (dict(shape=[2], value=300.0, dtype="u8"), r"'value' = 300.0 is not a u8"),
           (dict(shape=[2], value=2.0, dtype="bool"), r"not 0 or 1 for bool"),
           (dict(shape=[2]), r"full needs attribute 'value'")]
    for attrs, match in bad:
        with pytest.raises(TypeInferenceError, match=match):
            infer("full", **attrs)


def test_full_reference():
    for shape, value, dtype, tdtype in [((2, 3), 1.25, "f32", torch.float32),
                                        ((4,), -7.0, "i64", torch.int64),
                                        ((), 1.0, "bool", torch.bool),
                                        ((1, 2, 0), 3.5, "f16", torch.float16)]:
        same(run_op("full", shape=list(shape), value=value, dtype=dtype)[0],
             torch.full(shape, value, dtype=tdtype))
    same(run_op("full", shape=[2], value=0.1, dtype="bf16")[0], np.full(2, 0.1).astype(BF16))
    out = run_sym("full", [np.zeros(4, np.int8)], [T(["b"], "i8")], bind_only=1,
                  shape=["b", 2], value=3.0)
    same(out[0], np.full((4, 2), 3.0, np.float32))


def test_range_shapes_and_errors():
    assert shapes("range", start=0, limit=10, delta=3) == [(4,)]
    assert shapes("range", start=10, limit=0, delta=-3) == [(4,)]
    assert shapes("range", start=10, limit=0, delta=3) == [(0,)]
    assert shapes("range", start=0.5, limit=2.0, delta=0.25, dtype="f32") == [(6,)]
    assert infer("range", start=0, limit=3, delta=1, dtype="i32")[0].dtype == dt.i32
    bad = [(dict(start=0, limit=3, delta=0), r"non-zero delta"),
           (dict(start=0.5, limit=3, delta=1), r"range attribute 'start' = 0.5 is not a i64"),
           (dict(start=0, limit=3, delta=1, dtype="bool"), r"range dtype must be numeric"),
           (dict(start=0, limit=200, delta=1, dtype="i8"), r"'limit' = 200.0 is not a i8"),
           (dict(start=0, limit=math.inf, delta=1.0, dtype="f32"), r"finite")]
    for attrs, match in bad:
        with pytest.raises(TypeInferenceError, match=match):
            infer("range", **attrs)


def test_range_reference():
    for start, limit, delta, dtype, tdtype in [(0, 10, 3, "i64", torch.int64),
                                               (10, -5, -4, "i32", torch.int32),
                                               (-3, 3, 1, "i8", torch.int8),
                                               (3, 3, 1, "i64", torch.int64)]:
        same(run_op("range", start=start, limit=limit, delta=delta, dtype=dtype)[0],
             torch.arange(start, limit, delta, dtype=tdtype))
    # large integers are exact (a float computation would round them)
    got = run_op("range", start=2.0**53, limit=2.0**53 + 8, delta=3)[0]
    same(got, np.array([2**53, 2**53 + 3, 2**53 + 6]))
    for start, limit, delta, dtype in [(0.5, 2.0, 0.1, torch.float32), (1.0, -2.0, -0.3,
                                                                       torch.float64)]:
        want = torch.arange(start, limit, delta, dtype=dtype).numpy()
        got = run_op("range", start=start, limit=limit, delta=delta,
                     dtype="f32" if dtype == torch.float32 else "f64")[0]
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-6)
    got = run_op("range", start=0.0, limit=1.0, delta=0.125, dtype="f16")[0]
    same(got, (np.arange(8) * 0.125).astype(np.float16))


def test_shape_of(rng):
    x = rand(rng, (2, 3, 4))
    for start, end in itertools.product([0, 1, -1, -5, 7], [None, 2, -1, -7, 9]):
        want = np.array(x.shape[start:end], np.int64)  # ONNX Shape clamps like Python slicing
        assert shapes("shape_of", T(["b", 3, 4]), start=start, end=end) == [want.shape]
        same(run_op("shape_of", x, start=start, end=end)[0], want)
    assert infer("shape_of", T([]))[0] == T([0], "i64")
    same(run_sym("shape_of", [x], [T(["b", "s", 4])])[0], np.array([2, 3, 4]))
    with pytest.raises(TypeInferenceError, match=r"shape_of attribute 'start' must be int"):
        infer("shape_of", T([2]), start=0.5)


def test_one_hot_shapes_and_errors():
    assert infer("one_hot", T(["b", 3], "i64"), depth=5) == [T(["b", 3, 5], "f32")]
    assert shapes("one_hot", T([2, 3], "i32"), depth=5, axis=0) == [(5, 2, 3)]
    assert shapes("one_hot", T([2, 3], "i32"), depth=5, axis=-2) == [(2, 5, 3)]
    assert infer("one_hot", T([], "u8"), depth=4, dtype="i32") == [T([4], "i32")]
    bad = [(T([2], "f32"), dict(depth=3), r"one_hot indices must be int/uint, got f32"),
           (T([2], "i64"), dict(depth=0), r"'depth' must be >= 1, got 0"),
           (T([2], "i64"), dict(depth=3, axis=2), r"one_hot axis 2 is out of range \[-2, 1\]"),
           (T([2], "i64"), dict(depth=3, dtype="i8", on_value=0.5), r"'on_value' = 0.5")]
    for t, attrs, match in bad:
        with pytest.raises(TypeInferenceError, match=match):
            infer("one_hot", t, **attrs)


def test_one_hot_reference(rng):
    idx = rng.integers(0, 6, size=(3, 4))
    for axis in (-1, 0, 1, -3):
        want = F.one_hot(tt(idx), 6).float() * 2.5 - 0.5  # on 2.0, off -0.5
        want = torch.movedim(want, -1, axis % 3)
        got = run_op("one_hot", idx.astype(np.int32), depth=6, axis=axis, on_value=2.0,
                     off_value=-0.5)[0]
        same(got, want)
    # torch rejects negative and out-of-range indices; ONNX wraps [-depth, 0) and gives all-off
    # rows otherwise
    idx = np.array([-1, -3, 3, -4, 0], np.int64)
    want = np.array([[0, 0, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]], np.int8)
    same(run_op("one_hot", idx, depth=3, dtype="i8")[0], want)


# --- topk, trilu ---------------------------------------------------------------------------------


def test_topk_shapes_and_errors():
    assert infer("topk", T([3, 7]), k=2) == [T([3, 2]), T([3, 2], "i64")]
    assert shapes("topk", T(["b", 7, 2], "i32"), k=3, axis=-2) == [("b", 3, 2)] * 2
    assert shapes("topk", T([4, "s"]), k=3) == [(4, 3)] * 2  # checked against ?s at run time
    bad = [(T([3, 7]), dict(k=8), r"topk attribute 'k' = 8 must be in \[0, 7\]"),
           (T([3, 7], "bool"), dict(k=1), r"topk operand must be int/uint/float, got bool"),
           (T([]), dict(k=1), r"rank >= 1"),
           (T([3, 7]), dict(k=1, axis=2), r"topk axis 2 is out of range")]
    for t, attrs, match in bad:
        with pytest.raises(TypeInferenceError, match=match):
            infer("topk", t, **attrs)


@pytest.mark.parametrize("dtype", ["f32", "i32", "f16"])
def test_topk_reference(rng, dtype):
    n = 9
    # distinct values so torch's unspecified tie order does not matter
    x = np.stack([rng.permutation(n) for _ in range(12)]).reshape(3, 4, n)
    x = (x * 3 - 10).astype(dt.dtype(dtype).np_dtype)
    for axis, k, largest in [(-1, 4, True), (2, 9, False), (-1, 0, True)]:
        vals, idx = run_op("topk", x, k=k, axis=axis, largest=largest)
        wv, wi = torch.topk(tt(x), k, dim=axis, largest=largest, sorted=True)
        same(vals, wv)
        same(idx, wi)
    xt = np.ascontiguousarray(np.swapaxes(x, 0, 2))
    vals, idx = run_op("topk", xt, k=3, axis=0)
    wv, wi = torch.topk(tt(xt), 3, dim=0)
    same(vals, wv)
    same(idx, wi)


def test_topk_ties_take_lower_index_first():
    x = np.array([[1, 3, 3, 2, 3, 1]], np.float32).astype(BF16)
    vals, idx = run_op("topk", x, k=4)
    same(idx, np.array([[1, 2, 4, 3]]))
    same(vals, np.array([[3, 3, 3, 2]], BF16))
    vals, idx = run_op("topk", x, k=3, largest=False)
    same(idx, np.array([[0, 5, 3]]))
    _, idx = run_op("topk", np.array([2, 5, 5, 0], np.uint8), k=2, sorted=False)
    same(idx, np.array([1, 2]))


def test_trilu(rng):
    assert shapes("trilu", T(["b", 3, 4]), upper=False, k=-1) == [("b", 3, 4)]
    with pytest.raises(TypeInferenceError, match=r"trilu needs rank >= 2, got f32\[4\]"):
        infer("trilu", T([4]))
    for dtype in ("f32", "i64", "bool"):
        x = rand(rng, (2, 4, 5), dtype)
        for k in (-5, -1, 0, 2, 6):
            same(run_op("trilu", x, k=k)[0], torch.triu(tt(x), k))
            same(run_op("trilu", x, upper=False, k=k)[0], torch.tril(tt(x), k))
    xb = rand(rng, (3, 3), "bf16")
    same(run_op("trilu", xb, k=1)[0], np.triu(xb.astype(np.float32), 1).astype(BF16))


@pytest.mark.parametrize("name, inputs, attrs", [
    ("gather", [np.arange(4.0), np.array([-5])], {}),
    ("gather", [np.arange(4.0), np.array([4], np.int32)], {}),
    ("gather_elements", [np.arange(4.0), np.array([-5])], {}),
    ("gather_nd", [np.ones((2, 3)), np.array([[1, 3]])], {}),
    ("scatter_elements", [np.arange(4.0), np.array([-5]), np.array([1.0])], {}),
    ("scatter_nd", [np.ones((2, 3)), np.array([[-3, 0]]), np.array([1.0])], {}),
])
def test_out_of_range_indices_fail(name, inputs, attrs):
    with pytest.raises(InterpreterError, match=rf"op '{name}'.*out of range"):
        run_op(name, *inputs, **attrs)
