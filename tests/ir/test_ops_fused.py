"""The `fused` op: a call of a module function that holds one fused group."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import ir
from compiler.ir import FunctionBuilder, Module, tensor

OPS_TESTED = {"fused"}

TEXT = """\
module @m {
  const @w : f32[4,3] = dense<[0.5, -1.0, 2.0, 0.25, 1.5, -0.5, 1.0, 0.0, -2.0, 3.0, 0.75, -0.25]>
  func @main(%x: f32[?n,4]) -> (f32[?n,3]) {
    %w = constant() {name = @w} : f32[4,3]
    %0 = fused(%x, %w) {body = @fused_0, kind = "contraction"} : f32[?n,3]
    return %0
  }
  func @fused_0(%a: f32[?n,4], %b: f32[4,3]) -> (f32[?n,3]) {
    %0 = matmul(%a, %b) : f32[?n,3]
    %1 = relu(%0) : f32[?n,3]
    return %1
  }
}
"""


def test_fused_roundtrips_verifies_and_runs_its_body():
    m = ir.parse(TEXT)
    ir.verify(m)
    assert ir.print_module(m) == TEXT
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    (y,) = ir.interpret(m, x)
    np.testing.assert_array_equal(y, np.maximum(x @ m.constants["w"], 0))
    (y64,) = ir.interpret(m, x, dtype="f64")
    assert y64.dtype == np.float64
    np.testing.assert_allclose(y64, y, rtol=1e-6)


def test_fused_type_errors():
    m = Module("f")
    body = FunctionBuilder(m, "body")
    a = body.arg("a", tensor([2], "f32"))
    body.ret(body.exp(a))
    f = FunctionBuilder(m, "main")
    x = f.arg("x", tensor([2], "f32"))
    y = f.fused(x, body="body", kind="elementwise")
    assert y.type == tensor([2], "f32")
    with pytest.raises(ir.BuildError, match="fused refers to @nope, which the module does not define"):
        f.fused(x, body="nope")
    with pytest.raises(ir.BuildError, match=r"fused @body operand 0 is f32\[3\], the body takes f32\[2\]"):
        f.fused(f.arg("z", tensor([3], "f32")), body="body")
    with pytest.raises(ir.BuildError, match="fused @body takes 1 operands, got 2"):
        f.fused(x, x, body="body")
    bad = ir.parse(TEXT.replace("f32[?n,3]\n    return %0\n  }\n  func", "f32[?n,2]\n    return %0\n  }\n  func")
                   .replace("-> (f32[?n,3]) {\n    %w", "-> (f32[?n,2]) {\n    %w"))
    with pytest.raises(ir.VerificationError, match=r"'fused' result 0 is declared f32\[\?n,2\]"):
        ir.verify(bad)
