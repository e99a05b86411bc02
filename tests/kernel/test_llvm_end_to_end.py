"""The LLVM CPU target end to end: kernel IR, schedules and traces, codegen, runtime."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import compiler
from compiler import ir
from compiler.ir import dtypes as dt
from compiler.kernel import te
from compiler.kernel.schedule import Schedule, ScheduleError
from compiler.kernel.transform import lower_kernel

ROOT = pathlib.Path(__file__).resolve().parents[2]
F32 = dt.dtype("f32")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLC_CACHE_DIR", str(tmp_path / "cache"))


def _mm_stages(M=37, N=45, K=29):
    A = te.placeholder("A", (M, K), F32)
    B = te.placeholder("B", (K, N), F32)
    C = te.reduce("C", (M, N), (K,), lambda i, j, k: A[i, k] * B[k, j], "+", 0.0)
    D = te.compute("D", (M, N), lambda i, j: C[i, j] + 1.0)
    return A, B, C, D


def _tiled(s):
    io, ii = s.split("D", "D.i0", 4)
    jo, ji = s.split("D", "D.i1", 16)
    s.reorder("D", io, jo, ii, ji)
    s.set_scope("C", "local")
    s.compute_at("C", "D", jo)
    ci, cj, ck = [lp.name for lp in s["C"].leaves]
    cjo, cji = s.split("C", cj, 8)
    s.reorder("C", ck, ci, cjo, cji)
    s.unroll("C", ci)
    s.vectorize("C", cji)
    s.parallel("D", io)


def _run_kernel(kernel, *arrays):
    import ctypes
    from codegen.llvm import jit
    from codegen.llvm.codegen import ModuleCodegen
    mc = ModuleCodegen()
    mc.add_kernel(lower_kernel(kernel))
    lo = jit.LoadedObject(jit.compile_object(str(mc.module)))
    fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * len(arrays))(lo.address(kernel.name))
    fn(*[a.ctypes.data for a in arrays])


def test_tiled_matmul_with_ragged_tiles_matches_numpy_and_trace_replays():
    A, B, C, D = _mm_stages()
    s = Schedule([D], [A, B])
    _tiled(s)
    k1 = s.build("mm")
    A2, B2, C2, D2 = _mm_stages()
    s2 = Schedule([D2], [A2, B2])
    s2.apply_trace(s.trace_json())
    assert str(s2.build("mm")) == str(k1)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((37, 29)).astype(np.float32)
    b = rng.standard_normal((29, 45)).astype(np.float32)
    d = np.zeros((37, 45), np.float32)
    _run_kernel(k1, a, b, d)
    np.testing.assert_allclose(d, a @ b + 1, rtol=1e-5, atol=1e-5)


def test_illegal_schedule_steps_raise_typed_errors():
    A, B, C, D = _mm_stages()
    s = Schedule([D], [A, B])
    with pytest.raises(ScheduleError, match="reduce loop"):
        s.parallel("C", "C.r0")
    with pytest.raises(ScheduleError, match="no loop"):
        s.split("D", "D.i9", 4)
    with pytest.raises(ScheduleError, match="not the innermost"):
        s.vectorize("D", "D.i0")
    with pytest.raises(ScheduleError, match="kernel output"):
        s.compute_at("D", "C", "C.i0")
    with pytest.raises(ScheduleError, match="unknown primitive"):
        s.apply_trace('[["tile", []]]')


def test_compile_llvm_matches_interpreter_and_checks_inputs(tmp_path):
    path = str(ROOT / "examples" / "mlp.ir")
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    want = ir.interpret(ir.load(path), x)[0]
    mod = compiler.compile(path, target="llvm", dump_dir=str(tmp_path / "dump"))
    np.testing.assert_allclose(mod(x)[0], want, rtol=1e-5, atol=1e-6)
    x5 = np.random.default_rng(2).standard_normal((5, 64)).astype(np.float32)
    np.testing.assert_allclose(mod(x5)[0], ir.interpret(ir.load(path), x5)[0],
                               rtol=1e-5, atol=1e-6)
    assert (tmp_path / "dump" / "module.ll").exists()
    assert "\nkernel @k0_contraction(" in (tmp_path / "dump" / "kernels.kir").read_text()
    with pytest.raises(compiler.InputError, match=r"input 0 .*expected dtype f32, got float64"):
        mod(x.astype(np.float64))
    with pytest.raises(compiler.InputError, match=r"input 0 .*expected shape \[\?batch, 64\]"):
        mod(np.zeros((3, 65), np.float32))
    with pytest.raises(compiler.InputError, match="expected 1 inputs, got 2"):
        mod(x, x)
    stats = mod.memory_stats
    assert stats["arena_bytes"] <= stats["intermediate_bytes_sum"]
    # the second compile of the same module comes from the on-disk cache
    assert compiler.compile(path, target="llvm").cache_hit
    mod.save(str(tmp_path / "saved"))
    again = compiler.load(str(tmp_path / "saved"))
    np.testing.assert_array_equal(again(x)[0], mod(x)[0])


def test_torch_tensors_are_accepted():
    import torch
    path = str(ROOT / "examples" / "mlp.ir")
    mod = compiler.compile(path, target="llvm")
    x = torch.randn(4, 64)
    want = ir.interpret(ir.load(path), x.numpy())[0]
    np.testing.assert_allclose(mod(x)[0], want, rtol=1e-5, atol=1e-6)


OPS_IR = """module @m {
  func @main(%x: f32[4, 40], %y: f32[40]) -> (f32[4, 40], f32[4, 40], f32[4], i64[4], f32[4, 40]) {
    %0 = softmax(%x) {axis = -1} : f32[4, 40]
    %1 = layer_norm(%x, %y, %y) {axis = -1, epsilon = 1e-5} : f32[4, 40]
    %2 = reduce_mean(%x) {axes = [1]} : f32[4]
    %3 = argmax(%x) {axis = 1} : i64[4]
    %4 = gelu(%x) : f32[4, 40]
    return %0, %1, %2, %3, %4
  }
}
"""


def test_row_ops_match_the_interpreter():
    m = ir.parse(OPS_IR)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 40)) * 3).astype(np.float32)
    y = rng.standard_normal(40).astype(np.float32)
    want = ir.interpret(m, x, y)
    got = compiler.compile(OPS_IR, target="llvm")(x, y)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)
