"""cse: IR text in, IR text out, and bit-identical interpreter results on random graphs."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings

from compiler import ir
from compiler.ir import Op
from passes.cse import CSE, attr_key
from tests.ir.test_roundtrip_property import random_graphs
from tests.passes.util import identical, random_inputs






def check_cse(before: str, after: str) -> ir.Module:
    """CSE turns `before` into `after` (printed), which verifies and computes the same bits."""
    m = ir.parse(before)
    inputs = [random_inputs(m.main, np.random.default_rng(seed)) for seed in range(3)]
    want = [ir.interpret(m, *xs) for xs in inputs]
    assert CSE().run(m)
    assert ir.print_module(m) == after
    ir.verify(m)
    for xs, w in zip(inputs, want):
        assert all(identical(g, e) for g, e in zip(ir.interpret(m, *xs), w))
    assert not CSE().run(m)
    return m


def test_chains_of_duplicates_collapse_in_one_run():
    check_cse("""\
module @m {
  func @main(%x: f32[?n,4], %y: f32[?n,4]) -> (f32[?n,4], f32[?n,4], f32[?n,4]) {
    %0 = add(%x, %y) : f32[?n,4]
    %1 = exp(%0) : f32[?n,4]
    %2 = add(%x, %y) : f32[?n,4]
    %3 = exp(%2) : f32[?n,4]
    %4 = mul(%1, %3) : f32[?n,4]
    %5 = mul(%1, %1) : f32[?n,4]
    %6 = add(%y, %x) : f32[?n,4]
    return %4, %5, %6
  }
}
""", """\
module @m {
  func @main(%x: f32[?n,4], %y: f32[?n,4]) -> (f32[?n,4], f32[?n,4], f32[?n,4]) {
    %0 = add(%x, %y) : f32[?n,4]
    %1 = exp(%0) : f32[?n,4]
    %2 = mul(%1, %1) : f32[?n,4]
    %3 = add(%y, %x) : f32[?n,4]
    return %2, %2, %3
  }
}
""")


def test_attributes_compare_by_value_and_kind():
    # defaults written or not are equal; nan equals nan; -0.0 is not 0.0; perms are compared
    # element by element; different axes stay apart
    check_cse("""\
module @m {
  func @main(%x: f32[3,2]) -> (f32[3,2], f32[3,2], f32[5,2], f32[5,2], f32[3,2], f32[3,2], f32[2,3], f32[2,3], f32[3,2]) {
    %0 = softmax(%x) : f32[3,2]
    %1 = softmax(%x) {axis = -1} : f32[3,2]
    %2 = pad(%x) {pads = [1, 0, 1, 0], value = nan} : f32[5,2]
    %3 = pad(%x) {pads = [1, 0, 1, 0], value = nan} : f32[5,2]
    %4 = clip(%x) {min = -0.0} : f32[3,2]
    %5 = clip(%x) {min = 0.0} : f32[3,2]
    %6 = transpose(%x) {perm = [1, 0]} : f32[2,3]
    %7 = transpose(%x) : f32[2,3]
    %8 = softmax(%x) {axis = 0} : f32[3,2]
    return %0, %1, %2, %3, %4, %5, %6, %7, %8
  }
}
""", """\
module @m {
  func @main(%x: f32[3,2]) -> (f32[3,2], f32[3,2], f32[5,2], f32[5,2], f32[3,2], f32[3,2], f32[2,3], f32[2,3], f32[3,2]) {
    %0 = softmax(%x) : f32[3,2]
    %1 = pad(%x) {pads = [1, 0, 1, 0], value = nan} : f32[5,2]
    %2 = clip(%x) {min = -0.0} : f32[3,2]
    %3 = clip(%x) {min = 0.0} : f32[3,2]
    %4 = transpose(%x) {perm = [1, 0]} : f32[2,3]
    %5 = transpose(%x) : f32[2,3]
    %6 = softmax(%x) {axis = 0} : f32[3,2]
    return %0, %0, %1, %1, %2, %3, %4, %5, %6
  }
}
""")


def test_attr_keys():
    assert attr_key(float("nan")) == attr_key(float("nan"))
    assert attr_key(-0.0) != attr_key(0.0)
    assert attr_key(1) != attr_key(1.0) != attr_key(True)
    assert attr_key((1, 2)) == attr_key([1, 2]) != attr_key((2, 1))
    assert attr_key((1.0, float("nan"))) == attr_key((1.0, float("nan")))


def test_constants_with_identical_arrays_merge_keeping_the_first_name():
    # @b repeats @a (merged into @a's op, @b is left for prune-dead); @neg (-0.0), @int (i32) and
    # @row (another shape, same bytes) differ
    check_cse("""\
module @m {
  const @a : f32[2] = dense<[0.0, 1.5]>
  const @b : f32[2] = dense<[0.0, 1.5]>
  const @neg : f32[2] = dense<[-0.0, 1.5]>
  const @row : f32[1,2] = dense<[0.0, 1.5]>
  const @int : i32[2] = dense<[0, 1069547520]>
  func @main(%x: f32[2]) -> (f32[2], f32[2], f32[1,2], i32[2]) {
    %a = constant() {name = @a} : f32[2]
    %b = constant() {name = @b} : f32[2]
    %neg = constant() {name = @neg} : f32[2]
    %row = constant() {name = @row} : f32[1,2]
    %int = constant() {name = @int} : i32[2]
    %0 = mul(%x, %a) : f32[2]
    %1 = mul(%x, %b) : f32[2]
    %2 = mul(%x, %neg) : f32[2]
    %3 = add(%0, %1) : f32[2]
    %4 = add(%2, %0) : f32[2]
    return %3, %4, %row, %int
  }
}
""", """\
module @m {
  const @a : f32[2] = dense<[0.0, 1.5]>
  const @b : f32[2] = dense<[0.0, 1.5]>
  const @neg : f32[2] = dense<[-0.0, 1.5]>
  const @row : f32[1,2] = dense<[0.0, 1.5]>
  const @int : i32[2] = dense<[0, 1069547520]>
  func @main(%x: f32[2]) -> (f32[2], f32[2], f32[1,2], i32[2]) {
    %a = constant() {name = @a} : f32[2]
    %neg = constant() {name = @neg} : f32[2]
    %row = constant() {name = @row} : f32[1,2]
    %int = constant() {name = @int} : i32[2]
    %0 = mul(%x, %a) : f32[2]
    %1 = mul(%x, %neg) : f32[2]
    %2 = add(%0, %0) : f32[2]
    %3 = add(%1, %0) : f32[2]
    return %2, %3, %row, %int
  }
}
""")


def test_functions_are_separate():
    # the same op in two functions is two ops (a value of one function is not visible in the
    # other); duplicates inside the body function do merge
    check_cse("""\
module @m {
  func @main(%x: f32[4]) -> (f32[4], f32[4]) {
    %0 = exp(%x) : f32[4]
    %1 = fused(%x) {body = @body} : f32[4]
    return %0, %1
  }
  func @body(%a: f32[4]) -> (f32[4]) {
    %0 = exp(%a) : f32[4]
    %1 = exp(%a) : f32[4]
    %2 = add(%0, %1) : f32[4]
    return %2
  }
}
""", """\
module @m {
  func @main(%x: f32[4]) -> (f32[4], f32[4]) {
    %0 = exp(%x) : f32[4]
    %1 = fused(%x) {body = @body} : f32[4]
    return %0, %1
  }
  func @body(%a: f32[4]) -> (f32[4]) {
    %0 = exp(%a) : f32[4]
    %1 = add(%0, %0) : f32[4]
    return %1
  }
}
""")


def doubled(m: ir.Module) -> None:
    """Append a copy of every op of @main (its constants copied under new names) and return
    both copies' outputs."""
    fn = m.main
    to: dict = {}
    for op in list(fn.ops):
        attrs = dict(op.attrs)
        if op.name == "constant":
            attrs["name"] = m.add_constant(m.constants[op.attrs["name"]].copy(), attrs["name"])
        clone = Op(op.name, [to.get(v, v) for v in op.operands], [r.type for r in op.results],
                   attrs)
        to.update(zip(op.results, clone.results))
        fn.ops.append(clone)
    fn.outputs = fn.outputs + [to.get(v, v) for v in fn.outputs]


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(random_graphs())
def test_random_graphs_keep_their_bits_and_a_copy_merges_away(case):
    """CSE changes no output bit and reaches its fixpoint in one run; a graph with a copy of all
    its ops appended collapses to the same op count as the graph alone."""
    g, _ = case
    m = g.module
    twice = ir.parse(ir.print_module(m, inline_limit=None))
    doubled(twice)
    ir.verify(twice)
    want = ir.interpret(m, *g.inputs)
    CSE().run(m)
    ir.verify(m)
    assert all(identical(a, b) for a, b in zip(ir.interpret(m, *g.inputs), want))
    assert not CSE().run(m)
    assert CSE().run(twice)
    ir.verify(twice)
    assert len(twice.main.ops) == len(m.main.ops)
    assert all(identical(a, b) for a, b in zip(ir.interpret(twice, *g.inputs), want + want))
