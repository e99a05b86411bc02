"""The rewrite driver: rules to a fixpoint, new ops inserted, uses rerouted, dead ops erased."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import ir
from passes.rewrite import apply_rules

BEFORE = """\
module @m {
  const @one : f32[] = dense<[1.0]>
  func @main(%x: f32[4]) -> (f32[4]) {
    %one = constant() {name = @one} : f32[]
    %0 = mul(%x, %one) : f32[4]
    %1 = neg(%0) : f32[4]
    %2 = neg(%1) : f32[4]
    %3 = mul(%2, %one) : f32[4]
    %4 = exp(%3) : f32[4]
    return %4
  }
}
"""

AFTER = """\
module @m {
  const @one : f32[] = dense<[1.0]>
  func @main(%x: f32[4]) -> (f32[4]) {
    %0 = exp(%x) : f32[4]
    return %0
  }
}
"""


def mul_one(op, rw):  # x*1 -> x
    if op.name == "mul" and rw.is_splat(op.operands[1], 1.0) and op.result.type == op.operands[0].type:
        return op.operands[0]
    return None


def double_neg(op, rw):  # -(-x) -> x
    if op.name == "neg" and op.operands[0].owner is not None and op.operands[0].owner.name == "neg":
        return op.operands[0].owner.operands[0]
    return None


def test_rules_run_to_a_fixpoint_and_dead_ops_go():
    m = ir.parse(BEFORE)
    x = np.random.default_rng(0).standard_normal(4).astype(np.float32)
    (want,) = ir.interpret(m, x)
    assert apply_rules(m, [mul_one, double_neg])
    assert ir.print_module(m) == AFTER
    ir.verify(m)
    np.testing.assert_array_equal(ir.interpret(m, x)[0], want)
    assert not apply_rules(m, [mul_one, double_neg])


def test_rules_can_build_new_ops():
    def exp_to_exp2(op, rw):  # exp(x) -> pow(e, x), built from new ops
        if op.name == "exp":
            e = rw.constant(np.asarray(np.e, np.float32), "e")
            return rw.op("pow", rw.op("broadcast_to", e, shape=list(op.result.shape)), op.operands[0])
        return None
    m = ir.parse(AFTER)
    x = np.random.default_rng(1).standard_normal(4).astype(np.float32)
    apply_rules(m, [exp_to_exp2])
    ir.verify(m)
    assert [o.name for o in m.main.ops] == ["constant", "broadcast_to", "pow"]
    np.testing.assert_allclose(ir.interpret(m, x)[0], np.exp(x), rtol=1e-6)


def test_a_rule_with_the_wrong_type_is_refused():
    def bad(op, rw):
        if op.name == "exp":
            return rw.op("cast", op.operands[0], to="f16")
        return None
    with pytest.raises(ValueError, match=r"rule bad replaced 'exp' result f32\[4\] by a value of type f16\[4\]"):
        apply_rules(ir.parse(AFTER), [bad])
