"""The runnable module of target "xla"/"tpu": input checks before anything runs, torch tensors
in, the dumped text being the compiled text, weights passed as arguments, symbolic dims
specialized per input shape, the TPU fallback warning, errors that name the op."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

import codegen.xla as X
import compiler
from compiler import ir
from tests.codegen.xla.util import build, rel_err

TEXT = """module @m {
  dim ?n in [1, 8]
  func @main(%x: f32[?n,4], %w: f32[4,3]) -> (f32[?n,3], f32[3,?n]) {
    %0 = matmul(%x, %w) : f32[?n,3]
    %1 = softmax(%0) : f32[?n,3]
    %2 = transpose(%1) {perm = [1, 0]} : f32[3,?n]
    return %1, %2
  }
}
"""
STATIC = TEXT.replace("?n", "2").replace("  dim 2 in [1, 8]\n", "")


def _static_module() -> ir.Module:
    m = ir.Module("static")
    f = ir.FunctionBuilder(m, "main")
    x = f.arg("x", ir.tensor([2, 4], "f32"))
    i = f.arg("i", ir.tensor([3], "i64"))
    w = f.constant(np.random.default_rng(0).standard_normal((4, 300)).astype(np.float32), "w")
    y = f.op("matmul", x, w)
    f.ret(f.op("gather", y, i, axis=1))
    return m


def test_inputs_are_checked_before_running():
    mod = build(_static_module())
    x, i = np.ones((2, 4), np.float32), np.array([0, 1, 2])
    assert mod(x, i)[0].shape == (2, 3)
    with pytest.raises(X.InputError, match=r"input 0 \(%x\): expected dtype f32.*float64"):
        mod(x.astype(np.float64), i)
    with pytest.raises(X.InputError, match=r"input 0 \(%x\): dim 1 is 5, expected 4"):
        mod(np.ones((2, 5), np.float32), i)
    with pytest.raises(X.InputError, match=r"input 1 \(%i\): expected rank 1"):
        mod(x, i.reshape(3, 1))
    with pytest.raises(X.InputError, match="takes 2 inputs"):
        mod(x)
    assert issubclass(X.InputError, ValueError)


def test_symbolic_dims_bind_consistently_and_specialize():
    m = ir.parse(TEXT)
    mod = build(m, dump_dir=None)
    w = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    for n in (3, 5, 3):
        x = np.random.default_rng(n).standard_normal((n, 4)).astype(np.float32)
        got, want = mod(x, w), ir.interpret(m, x, w)
        for g, r in zip(got, want):
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
    assert sorted(mod.specializations) == [(("n", 3),), (("n", 5),)]
    with pytest.raises(X.InputError, match=r"\?n = 9 is outside its bounds \[1, 8\]"):
        mod(np.ones((9, 4), np.float32), w)


def test_torch_tensors_in():
    mod = build(_static_module())
    x = torch.randn(2, 4)
    got = mod(x, torch.tensor([2, 0, 1]))[0]
    want = mod(x.numpy(), np.array([2, 0, 1]))[0]
    np.testing.assert_array_equal(got, want)
    m = ir.Module("bf")
    f = ir.FunctionBuilder(m, "main")
    f.ret(f.op("mul", f.arg("a", ir.tensor([3], "bf16")), f.arg("b", ir.tensor([3], "bf16"))))
    t = torch.tensor([1.5, 2.0, -3.0], dtype=torch.bfloat16)
    np.testing.assert_array_equal(build(m)(t, t)[0].astype(np.float32), [2.25, 4.0, 9.0])


def test_dump_dir_holds_the_compiled_text(tmp_path):
    dump = str(tmp_path / "dump")
    mod = build(_static_module(), dump_dir=dump)
    with open(os.path.join(dump, "stablehlo.mlir")) as fh:
        assert fh.read() == mod.stablehlo
    text = mod.stablehlo
    # the 4x300 weight is an argument, not a literal; the run-time check is one more result
    assert "%w0: tensor<4x300xf32>" in text and "dense<\"0x" not in text
    assert "-> (tensor<2x3xf32>, tensor<i1>)" in text
    dialects = {line.split('"')[1].split(".")[0] for line in text.splitlines()
                if line.strip().startswith("%") and '= "' in line}
    assert dialects <= {"stablehlo", "chlo"}
    sym = build(ir.parse(TEXT), dump_dir=dump)
    sym(np.ones((2, 4), np.float32), np.ones((4, 3), np.float32))
    assert os.path.exists(os.path.join(dump, "stablehlo.n=2.mlir"))


def test_compile_writes_stablehlo_next_to_pass_dumps(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))
    x = torch.randn(3, 8)
    dump = str(tmp_path)
    mod = compiler.compile(model, target="xla", example_inputs=(x,), dump_dir=dump)
    files = os.listdir(dump)
    assert "stablehlo.mlir" in files and any(f.endswith("fuse-ops.ir") for f in files)
    with torch.no_grad():
        want = model(x).numpy()
    assert rel_err(mod(x)[0], want) < 1e-5
    assert "// fused @fused_" in mod.stablehlo  # fused groups are inlined, marked by comments


def test_tpu_without_a_tpu_warns_and_runs_on_cpu():
    m = ir.parse(STATIC)
    with pytest.warns(UserWarning, match="no TPU"):
        mod = X.build(m, "tpu")
    assert mod.platform == "cpu" and mod.target == "tpu"
    x, w = np.ones((2, 4), np.float32), np.ones((4, 3), np.float32)
    np.testing.assert_allclose(mod(x, w)[0], ir.interpret(m, x, w)[0], rtol=1e-2)


def test_missing_lowering_names_the_op(monkeypatch):
    from codegen.xla.lowering import LOWERINGS
    from codegen.xla.translate import supported_ops
    supported_ops()  # the rule modules are loaded
    monkeypatch.delitem(LOWERINGS, "softmax")
    with pytest.raises(X.LoweringError, match=r"op 'softmax' \(%1\) at line 4: no StableHLO"):
        build(ir.parse(STATIC))


def test_build_through_compiler_targets():
    m = ir.parse(STATIC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for target in ("xla", "tpu"):
            mod = compiler.compile(m, target=target)
            assert mod.target == target and [str(t) for t in mod.input_types] == \
                ["f32[2,4]", "f32[4,3]"] and [str(t) for t in mod.output_types] == \
                ["f32[2,3]", "f32[3,2]"]
