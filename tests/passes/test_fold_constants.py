"""fold-constants: IR text in, IR text out, and bit-identical interpreter results on random
graphs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from compiler import ir
from compiler.ir import Op
from passes import parse_pipeline
from passes.fold_constants import FoldConstants
from tests.ir.test_roundtrip_property import random_graphs
from tests.passes.util import identical, random_inputs






def check_rewrite(before: str, after: str, pipeline: str = "fold-constants") -> ir.Module:
    """Run `pipeline` on `before`: the printed result is `after`, it verifies, and it computes
    bit for bit what `before` computes on fresh random inputs."""
    m = ir.parse(before)
    inputs = [random_inputs(m.main, np.random.default_rng(seed)) for seed in range(3)]
    want = [ir.interpret(m, *xs) for xs in inputs]
    for p in parse_pipeline(pipeline).passes:
        assert p.run(m)
    assert ir.print_module(m) == after
    ir.verify(m)
    for xs, w in zip(inputs, want):
        got = ir.interpret(m, *xs)
        assert all(identical(g, e) for g, e in zip(got, w))
    return m


def test_chains_fold_and_ops_on_arguments_stay():
    m = check_rewrite("""\
module @m {
  const @w : f32[2] = dense<[1.0, 2.0]>
  const @b : f32[2] = dense<[3.0, -4.0]>
  func @main(%x: f32[?n,2]) -> (f32[?n,2], f32[2]) {
    %w = constant() {name = @w} : f32[2]
    %b = constant() {name = @b} : f32[2]
    %h = add(%w, %b) : f32[2]
    %e = relu(%h) : f32[2]
    %0 = mul(%x, %e) : f32[?n,2]
    %1 = neg(%h) : f32[2]
    return %0, %1
  }
}
""", """\
module @m {
  const @w : f32[2] = dense<[1.0, 2.0]>
  const @b : f32[2] = dense<[3.0, -4.0]>
  const @h : f32[2] = dense<[4.0, -2.0]>
  const @e : f32[2] = dense<[4.0, 0.0]>
  const @folded : f32[2] = dense<[-4.0, 2.0]>
  func @main(%x: f32[?n,2]) -> (f32[?n,2], f32[2]) {
    %e = constant() {name = @e} : f32[2]
    %0 = mul(%x, %e) : f32[?n,2]
    %folded = constant() {name = @folded} : f32[2]
    return %0, %folded
  }
}
""")
    assert not FoldConstants().run(m)  # a fixpoint in one run
    # the constants folding left unread go with prune-dead
    parse_pipeline("prune-dead").run(m)
    assert list(m.constants) == ["e", "folded"]


def test_shape_of_folds_when_the_dims_it_reads_are_static():
    check_rewrite("""\
module @m {
  func @main(%x: f32[?n,3,4]) -> (i64[2], i64[3], i64[1]) {
    %0 = shape_of(%x) {start = 1} : i64[2]
    %1 = shape_of(%x) : i64[3]
    %2 = shape_of(%x) {start = -1, end = 9} : i64[1]
    return %0, %1, %2
  }
}
""", """\
module @m {
  const @folded : i64[2] = dense<[3, 4]>
  const @folded_1 : i64[1] = dense<[4]>
  func @main(%x: f32[?n,3,4]) -> (i64[2], i64[3], i64[1]) {
    %folded = constant() {name = @folded} : i64[2]
    %0 = shape_of(%x) : i64[3]
    %folded_1 = constant() {name = @folded_1} : i64[1]
    return %folded, %0, %folded_1
  }
}
""")


def test_size_cap_and_ops_without_operands():
    # broadcast_to to 8 elements is over the cap of 4 and stays; full and range fold
    check_rewrite("""\
module @m {
  const @two : f32[] = dense<[2.0]>
  func @main(%x: f32[8]) -> (f32[8], f32[3], i32[3]) {
    %two = constant() {name = @two} : f32[]
    %0 = broadcast_to(%two) {shape = [8]} : f32[8]
    %1 = add(%x, %0) : f32[8]
    %2 = full() {shape = [3], value = 0.5} : f32[3]
    %3 = mul(%2, %two) : f32[3]
    %4 = range() {start = 1.0, limit = 7.0, delta = 2.0, dtype = i32} : i32[3]
    return %1, %3, %4
  }
}
""", """\
module @m {
  const @two : f32[] = dense<[2.0]>
  const @folded : f32[3] = dense<[0.5, 0.5, 0.5]>
  const @folded_1 : f32[3] = dense<[1.0, 1.0, 1.0]>
  const @folded_2 : i32[3] = dense<[1, 3, 5]>
  func @main(%x: f32[8]) -> (f32[8], f32[3], i32[3]) {
    %two = constant() {name = @two} : f32[]
    %0 = broadcast_to(%two) {shape = [8]} : f32[8]
    %1 = add(%x, %0) : f32[8]
    %folded_1 = constant() {name = @folded_1} : f32[3]
    %folded_2 = constant() {name = @folded_2} : i32[3]
    return %1, %folded_1, %folded_2
  }
}
""", "fold-constants{max-elements=4}")


def test_an_op_that_fails_on_its_constants_is_left_to_fail_at_run_time():
    text = """\
module @m {
  const @v : f32[3] = dense<[1.0, 2.0, 3.0]>
  const @bad : i64[1] = dense<[7]>
  func @main() -> (f32[1]) {
    %v = constant() {name = @v} : f32[3]
    %bad = constant() {name = @bad} : i64[1]
    %0 = gather(%v, %bad) : f32[1]
    return %0
  }
}
"""
    m = ir.parse(text)
    assert not FoldConstants().run(m)
    assert ir.print_module(m) == text
    with pytest.raises(ir.InterpreterError, match="index 7 is out of range for a dim of size 3"):
        ir.interpret(m)


def test_symbolic_results_are_not_folded_and_fused_calls_are():
    check_rewrite("""\
module @m {
  const @w : f32[2] = dense<[-1.5, 2.0]>
  func @main(%x: f32[?n,2]) -> (f32[?n,2], f32[2]) {
    %w = constant() {name = @w} : f32[2]
    %0 = full() {shape = [?n, 2], value = 1.0} : f32[?n,2]
    %1 = add(%0, %x) : f32[?n,2]
    %2 = fused(%w) {body = @fused_0, kind = "elementwise"} : f32[2]
    return %1, %2
  }
  func @fused_0(%a: f32[2]) -> (f32[2]) {
    %0 = neg(%a) : f32[2]
    %1 = relu(%0) : f32[2]
    return %1
  }
}
""", """\
module @m {
  const @w : f32[2] = dense<[-1.5, 2.0]>
  const @folded : f32[2] = dense<[1.5, 0.0]>
  func @main(%x: f32[?n,2]) -> (f32[?n,2], f32[2]) {
    %0 = full() {shape = [?n, 2], value = 1.0} : f32[?n,2]
    %1 = add(%0, %x) : f32[?n,2]
    %folded = constant() {name = @folded} : f32[2]
    return %1, %folded
  }
  func @fused_0(%a: f32[2]) -> (f32[2]) {
    %0 = neg(%a) : f32[2]
    %1 = relu(%0) : f32[2]
    return %1
  }
}
""")


def test_folded_values_are_the_interpreters_bit_for_bit():
    """f16/bf16 math rounds as the interpreter does, and nan/-0.0 results keep their bits."""
    m = ir.parse("""\
module @m {
  const @a : f16[3] = dense<[0.1, 0.0, 3.0]>
  const @b : bf16[3] = dense<[0.3, -2.0, 1.0]>
  func @main() -> (f16[3], bf16[3], f16[3]) {
    %a = constant() {name = @a} : f16[3]
    %b = constant() {name = @b} : bf16[3]
    %0 = exp(%a) : f16[3]
    %1 = sqrt(%b) : bf16[3]
    %2 = neg(%a) : f16[3]
    return %0, %1, %2
  }
}
""")
    want = ir.interpret(m)
    assert FoldConstants().run(m)
    assert [op.name for op in m.main.ops] == ["constant"] * 3
    assert all(identical(g, w) for g, w in zip(ir.interpret(m), want))
    assert np.isnan(want[1][1]) and np.signbit(want[2][1].astype(np.float32))


def args_to_constants(m: ir.Module, inputs: list[np.ndarray]) -> bool:
    """Make @main's (static) arguments module constants holding `inputs`; False when an
    argument has symbolic dims."""
    fn = m.main
    if not all(a.type.is_static for a in fn.args):
        return False
    consts = [Op("constant", [], [a.type], {"name": m.add_constant(x, "input")})
              for a, x in zip(fn.args, inputs)]
    to = {a: c.result for a, c in zip(fn.args, consts)}
    for op in fn.ops:
        op.operands = [to.get(v, v) for v in op.operands]
    fn.outputs = [to.get(v, v) for v in fn.outputs]
    fn.ops = consts + fn.ops
    fn.args = []
    return True


PROPERTY = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@PROPERTY
@given(random_graphs())
def test_random_graphs_fold_to_identical_values(case):
    """Folding changes no output bit; a second run finds nothing. With every argument made a
    constant, everything folds: only constants are left."""
    g, _ = case
    m = g.module
    want = ir.interpret(m, *g.inputs)
    FoldConstants().run(m)
    ir.verify(m)
    assert all(identical(a, b) for a, b in zip(ir.interpret(m, *g.inputs), want))
    assert not FoldConstants().run(m)
    if args_to_constants(m, g.inputs):
        ir.verify(m)
        FoldConstants(max_elements=1 << 30).run(m)
        ir.verify(m)
        assert {op.name for op in m.main.ops} <= {"constant"}
        assert all(identical(a, b) for a, b in zip(ir.interpret(m), want))
