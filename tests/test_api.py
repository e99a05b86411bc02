"""compiler.compile on each accepted input form."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import compiler
from compiler import ir

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_compile_ir_file_text_and_module():
    path = ROOT / "examples" / "mlp.ir"
    x = np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32)
    want = ir.interpret(ir.load(str(path)), x)[0]
    for graph in (str(path), path, ir.load(str(path))):
        mod = compiler.compile(graph)
        assert mod.target == "llvm"  # the default: native code for this CPU
        np.testing.assert_allclose(mod(x)[0], want, rtol=1e-5, atol=1e-6)
    mod = compiler.compile(str(path), target="interpreter")
    assert mod.target == "interpreter"
    np.testing.assert_array_equal(mod(x)[0], want)
    text = ir.print_module(ir.parse("module @m {\n  func @main(%x: f32[2]) -> (f32[2]) {\n"
                                    "    %0 = exp(%x) : f32[2]\n    return %0\n  }\n}\n"))
    np.testing.assert_allclose(compiler.compile(text)(np.zeros(2, np.float32))[0], [1, 1])


def test_compile_onnx_model_and_torch_module():
    import torch
    from onnx import TensorProto as T
    from onnx import helper

    model = helper.make_model(helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0])], "g",
        [helper.make_tensor_value_info("x", T.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", T.FLOAT, [3, 2])]),
        opset_imports=[helper.make_opsetid("", 17)])
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(compiler.compile(model)(x)[0], x.T)

    lin = torch.nn.Linear(3, 4).eval()
    mod = compiler.compile(lin, example_inputs=(torch.from_numpy(x),))
    with torch.no_grad():
        want = lin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(mod(torch.from_numpy(x))[0], want, rtol=1e-5, atol=1e-6)
    ep = torch.export.export(lin, (torch.from_numpy(x),))
    np.testing.assert_allclose(compiler.compile(ep)(x)[0], want, rtol=1e-5, atol=1e-6)


def test_compile_errors():
    with pytest.raises(compiler.CompileError, match="target 'cuda' has no code generator yet"):
        compiler.compile(str(ROOT / "examples" / "mlp.ir"), target="cuda")
    with pytest.raises(compiler.CompileError, match="unknown target 'gpu'"):
        compiler.compile(str(ROOT / "examples" / "mlp.ir"), target="gpu")
    with pytest.raises(compiler.CompileError, match="cannot compile a dict"):
        compiler.compile({"not": "a model"})
    with pytest.raises(compiler.CompileError, match="no such file"):
        compiler.compile("missing.onnx.txt")
    with pytest.raises(compiler.CompileError, match="opt_level must be 0..3"):
        compiler.compile(str(ROOT / "examples" / "mlp.ir"), opt_level=7)
    mod = compiler.compile(str(ROOT / "examples" / "mlp.ir"))
    with pytest.raises(ValueError, match=r"input 0 \(%x\): expected shape \[\?batch, 64\], got \[1, 65\]"):
        mod(np.zeros((1, 65), np.float32))


def test_compile_runs_the_default_pipeline_with_instruments(tmp_path):
    import io
    import contextlib
    path = ROOT / "examples" / "mlp.ir"
    x = np.random.default_rng(2).standard_normal((2, 64)).astype(np.float32)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        mod = compiler.compile(str(path), example_inputs=[x], check_numerics=True,
                               dump_dir=str(tmp_path), print_ir_after=["fuse-ops"])
    assert "// ----- IR after fuse-ops (changed)" in stderr.getvalue()
    assert any(op.name == "fused" for op in mod.module.main.ops)
    assert (tmp_path / "summary.txt").read_text().count("\n") >= 2
    want = ir.interpret(ir.load(str(path)), x)[0]
    np.testing.assert_allclose(mod(x)[0], want, rtol=1e-6)
    mod0 = compiler.compile(str(path), opt_level=0)
    assert not any(op.name == "fused" for op in mod0.module.main.ops)
