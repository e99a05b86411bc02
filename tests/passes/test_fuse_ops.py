"""fuse-ops: IR text in, IR text out for the TVM fusion patterns (contraction epilogues, reduction
prologues, no cycles, max-ops), random graphs unchanged bit for bit, idempotence, and GPT-2 /
BERT through both frontends."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import ir
from compiler.ir import Function, Module
from compiler.ir.registry import REGISTRY, def_op
from passes import parse_pipeline
from passes.fuse_ops import ANCHORS, FuseOps, group_kind, op_class, partition
from tests.ir.test_roundtrip_property import random_graphs
from tests.passes.util import identical


def random_inputs(fn: Function, seed: int = 0) -> list[np.ndarray]:
    """Fresh normal inputs for fn's arguments; every symbolic dim is 3."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal([3 if isinstance(d, str) else d for d in a.shape])
            .astype(a.dtype.np_dtype) for a in fn.args]


def check(before: str, after: str, max_ops: int = 16) -> Module:
    """Run fuse-ops on `before`; the text must be `after`, verify, compute the same outputs on
    fresh inputs, round-trip through the parser, and a second run must change nothing."""
    m = ir.parse(before)
    inputs = random_inputs(m.main)
    want = ir.interpret(m, *inputs)
    assert parse_pipeline(f"fuse-ops{{max-ops={max_ops}}}").passes[0].run(m)
    assert ir.print_module(m) == after
    ir.verify(m)
    for got, w in zip(ir.interpret(m, *inputs), want):
        np.testing.assert_array_equal(got, w)
    assert ir.print_module(ir.parse(after)) == after
    assert FuseOps(max_ops=max_ops).run(m) is False
    assert ir.print_module(m) == after
    return m


def test_linear_bias_gelu_residual_is_one_contraction_group():
    check("""\
module @m {
  const @w : f32[3,4] = dense<[0.5, -1.0, 2.0, 0.25, 1.5, -0.5, 1.0, 0.0, -2.0, 3.0, 0.75, -0.25]>
  const @b : f32[3] = dense<[0.5, -1.0, 2.0]>
  func @main(%x: f32[?n,4], %r: f32[?n,3]) -> (f32[?n,3]) {
    %w = constant() {name = @w} : f32[3,4]
    %b = constant() {name = @b} : f32[3]
    %0 = linear(%x, %w) : f32[?n,3]
    %1 = add(%0, %b) : f32[?n,3]
    %2 = gelu(%1) : f32[?n,3]
    %3 = add(%2, %r) : f32[?n,3]
    return %3
  }
}
""", """\
module @m {
  const @w : f32[3,4] = dense<[0.5, -1.0, 2.0, 0.25, 1.5, -0.5, 1.0, 0.0, -2.0, 3.0, 0.75, -0.25]>
  const @b : f32[3] = dense<[0.5, -1.0, 2.0]>
  func @main(%x: f32[?n,4], %r: f32[?n,3]) -> (f32[?n,3]) {
    %0 = fused(%x, %r) {body = @fused_0, kind = "contraction"} : f32[?n,3]
    return %0
  }
  func @fused_0(%x: f32[?n,4], %r: f32[?n,3]) -> (f32[?n,3]) {
    %w = constant() {name = @w} : f32[3,4]
    %b = constant() {name = @b} : f32[3]
    %0 = linear(%x, %w) : f32[?n,3]
    %1 = add(%0, %b) : f32[?n,3]
    %2 = gelu(%1) : f32[?n,3]
    %3 = add(%2, %r) : f32[?n,3]
    return %3
  }
}
""")


def test_softmax_takes_its_elementwise_prologue():
    check("""\
module @m {
  const @scale : f32[] = dense<[0.125]>
  func @main(%x: f32[?b,4,8], %mask: f32[?b,1,8]) -> (f32[?b,4,8]) {
    %scale = constant() {name = @scale} : f32[]
    %0 = mul(%x, %scale) : f32[?b,4,8]
    %1 = add(%0, %mask) : f32[?b,4,8]
    %2 = softmax(%1) : f32[?b,4,8]
    return %2
  }
}
""", """\
module @m {
  const @scale : f32[] = dense<[0.125]>
  func @main(%x: f32[?b,4,8], %mask: f32[?b,1,8]) -> (f32[?b,4,8]) {
    %0 = fused(%x, %mask) {body = @fused_0, kind = "softmax"} : f32[?b,4,8]
    return %0
  }
  func @fused_0(%x: f32[?b,4,8], %mask: f32[?b,1,8]) -> (f32[?b,4,8]) {
    %scale = constant() {name = @scale} : f32[]
    %0 = mul(%x, %scale) : f32[?b,4,8]
    %1 = add(%0, %mask) : f32[?b,4,8]
    %2 = softmax(%1) : f32[?b,4,8]
    return %2
  }
}
""")


def test_layer_norm_with_residual_prologue_used_outside_and_epilogue():
    # the residual sum is also returned: it becomes a second result, computed once
    check("""\
module @m {
  const @g : f32[4] = dense<[1.0, 0.5, 2.0, -1.0]>
  const @b : f32[4] = dense<[0.0, 0.25, -0.5, 1.0]>
  func @main(%x: f32[?n,4], %h: f32[?n,4]) -> (f32[?n,4], f32[?n,4]) {
    %g = constant() {name = @g} : f32[4]
    %b = constant() {name = @b} : f32[4]
    %0 = add(%x, %h) : f32[?n,4]
    %1 = layer_norm(%0, %g, %b) : f32[?n,4]
    %2 = mul(%1, %g) : f32[?n,4]
    return %0, %2
  }
}
""", """\
module @m {
  const @g : f32[4] = dense<[1.0, 0.5, 2.0, -1.0]>
  const @b : f32[4] = dense<[0.0, 0.25, -0.5, 1.0]>
  func @main(%x: f32[?n,4], %h: f32[?n,4]) -> (f32[?n,4], f32[?n,4]) {
    %0, %1 = fused(%x, %h) {body = @fused_0, kind = "layer_norm"} : f32[?n,4], f32[?n,4]
    return %0, %1
  }
  func @fused_0(%x: f32[?n,4], %h: f32[?n,4]) -> (f32[?n,4], f32[?n,4]) {
    %g = constant() {name = @g} : f32[4]
    %b = constant() {name = @b} : f32[4]
    %0 = add(%x, %h) : f32[?n,4]
    %1 = layer_norm(%0, %g, %b) : f32[?n,4]
    %2 = mul(%1, %g) : f32[?n,4]
    return %0, %2
  }
}
""")


def test_chained_matmuls_make_two_groups_and_a_shared_weight_stays_an_operand():
    check("""\
module @m {
  const @w : f32[2,2] = dense<[0.5, -1.0, 2.0, 0.25]>
  func @main(%x: f32[?n,2]) -> (f32[?n,2]) {
    %w = constant() {name = @w} : f32[2,2]
    %0 = matmul(%x, %w) : f32[?n,2]
    %1 = relu(%0) : f32[?n,2]
    %2 = matmul(%1, %w) : f32[?n,2]
    %3 = add(%2, %x) : f32[?n,2]
    return %3
  }
}
""", """\
module @m {
  const @w : f32[2,2] = dense<[0.5, -1.0, 2.0, 0.25]>
  func @main(%x: f32[?n,2]) -> (f32[?n,2]) {
    %w = constant() {name = @w} : f32[2,2]
    %0 = fused(%x, %w) {body = @fused_0, kind = "contraction"} : f32[?n,2]
    %1 = fused(%0, %w, %x) {body = @fused_1, kind = "contraction"} : f32[?n,2]
    return %1
  }
  func @fused_0(%x: f32[?n,2], %w: f32[2,2]) -> (f32[?n,2]) {
    %0 = matmul(%x, %w) : f32[?n,2]
    %1 = relu(%0) : f32[?n,2]
    return %1
  }
  func @fused_1(%0: f32[?n,2], %w: f32[2,2], %x: f32[?n,2]) -> (f32[?n,2]) {
    %1 = matmul(%0, %w) : f32[?n,2]
    %2 = add(%1, %x) : f32[?n,2]
    return %2
  }
}
""")


def test_diamond_through_an_opaque_op_is_not_fused_into_a_cycle():
    # exp feeds cumsum (opaque) and the add that reads cumsum: {exp, neg, add, relu} as one group
    # would both feed and read cumsum
    check("""\
module @m {
  func @main(%x: f32[8]) -> (f32[8]) {
    %0 = exp(%x) : f32[8]
    %1 = neg(%0) : f32[8]
    %2 = cumsum(%1) {axis = 0} : f32[8]
    %3 = add(%0, %2) : f32[8]
    %4 = relu(%3) : f32[8]
    return %4
  }
}
""", """\
module @m {
  func @main(%x: f32[8]) -> (f32[8]) {
    %0, %1 = fused(%x) {body = @fused_0, kind = "elementwise"} : f32[8], f32[8]
    %2 = cumsum(%1) {axis = 0} : f32[8]
    %3 = fused(%0, %2) {body = @fused_1, kind = "elementwise"} : f32[8]
    return %3
  }
  func @fused_0(%x: f32[8]) -> (f32[8], f32[8]) {
    %0 = exp(%x) : f32[8]
    %1 = neg(%0) : f32[8]
    return %0, %1
  }
  func @fused_1(%0: f32[8], %1: f32[8]) -> (f32[8]) {
    %2 = add(%0, %1) : f32[8]
    %3 = relu(%2) : f32[8]
    return %3
  }
}
""")


def test_two_groups_that_would_feed_each_other_are_not_both_made():
    # with max-ops=2, {exp, mul} forms first; {neg, add} would be convex on its own but
    # exp -> add and neg -> mul would make the two fused ops read each other
    check("""\
module @m {
  func @main(%x: f32[8], %y: f32[8]) -> (f32[8], f32[8]) {
    %0 = exp(%x) : f32[8]
    %1 = neg(%y) : f32[8]
    %2 = mul(%0, %1) : f32[8]
    %3 = add(%0, %1) : f32[8]
    return %2, %3
  }
}
""", """\
module @m {
  func @main(%x: f32[8], %y: f32[8]) -> (f32[8], f32[8]) {
    %0 = neg(%y) : f32[8]
    %1, %2 = fused(%x, %0) {body = @fused_0, kind = "elementwise"} : f32[8], f32[8]
    %3 = add(%1, %0) : f32[8]
    return %2, %3
  }
  func @fused_0(%x: f32[8], %0: f32[8]) -> (f32[8], f32[8]) {
    %1 = exp(%x) : f32[8]
    %2 = mul(%1, %0) : f32[8]
    return %1, %2
  }
}
""", max_ops=2)


def test_max_ops_splits_a_chain():
    check("""\
module @m {
  func @main(%x: f32[?n]) -> (f32[?n]) {
    %0 = exp(%x) : f32[?n]
    %1 = neg(%0) : f32[?n]
    %2 = tanh(%1) : f32[?n]
    %3 = sigmoid(%2) : f32[?n]
    %4 = abs(%3) : f32[?n]
    return %4
  }
}
""", """\
module @m {
  func @main(%x: f32[?n]) -> (f32[?n]) {
    %0 = fused(%x) {body = @fused_0, kind = "elementwise"} : f32[?n]
    %1 = fused(%0) {body = @fused_1, kind = "elementwise"} : f32[?n]
    %2 = abs(%1) : f32[?n]
    return %2
  }
  func @fused_0(%x: f32[?n]) -> (f32[?n]) {
    %0 = exp(%x) : f32[?n]
    %1 = neg(%0) : f32[?n]
    return %1
  }
  func @fused_1(%0: f32[?n]) -> (f32[?n]) {
    %1 = tanh(%0) : f32[?n]
    %2 = sigmoid(%1) : f32[?n]
    return %2
  }
}
""", max_ops=2)


def test_existing_fused_ops_and_bodies_are_left_alone():
    # a second pass over an already fused module only groups the new ops, under a fresh name
    check("""\
module @m {
  func @main(%x: f32[?n,4]) -> (f32[?n,4]) {
    %0 = fused(%x) {body = @fused_0, kind = "elementwise"} : f32[?n,4]
    %1 = exp(%0) : f32[?n,4]
    %2 = neg(%1) : f32[?n,4]
    return %2
  }
  func @fused_0(%a: f32[?n,4]) -> (f32[?n,4]) {
    %0 = exp(%a) : f32[?n,4]
    %1 = neg(%0) : f32[?n,4]
    %2 = sqrt(%1) : f32[?n,4]
    return %2
  }
}
""", """\
module @m {
  func @main(%x: f32[?n,4]) -> (f32[?n,4]) {
    %0 = fused(%x) {body = @fused_0, kind = "elementwise"} : f32[?n,4]
    %1 = fused(%0) {body = @fused_1, kind = "elementwise"} : f32[?n,4]
    return %1
  }
  func @fused_0(%a: f32[?n,4]) -> (f32[?n,4]) {
    %0 = exp(%a) : f32[?n,4]
    %1 = neg(%0) : f32[?n,4]
    %2 = sqrt(%1) : f32[?n,4]
    return %2
  }
  func @fused_1(%0: f32[?n,4]) -> (f32[?n,4]) {
    %1 = exp(%0) : f32[?n,4]
    %2 = neg(%1) : f32[?n,4]
    return %2
  }
}
""")


def _groups(text: str, max_ops: int = 16) -> list[tuple[list[str], str]]:
    return [([o.name for o in g.ops], g.kind) for g in partition(ir.parse(text).main, max_ops)]


RULES = """\
module @m {
  func @main(%x: f32[4,4], %w: f32[4,4]) -> (f32[4], f32[4,4], f32[4,4], i64[4]) {
    %0 = exp(%x) : f32[4,4]
    %1 = matmul(%0, %w) : f32[4,4]
    %2 = reduce_sum(%1) {axes = [1]} : f32[4]
    %3 = sqrt(%2) : f32[4]
    %4 = neg(%x) : f32[4,4]
    %5 = transpose(%4) : f32[4,4]
    %6 = reduce_max(%5) {axes = [0], keepdims = true} : f32[1,4]
    %7 = transpose(%6) : f32[4,1]
    %8 = sub(%x, %7) : f32[4,4]
    %9 = tanh(%x) : f32[4,4]
    %10 = argmax(%9) {axis = 1} : i64[4]
    return %3, %1, %8, %10
  }
}
"""


def test_rules_prologues_epilogues_and_lone_ops():
    assert _groups(RULES) == [
        (["matmul"], "contraction"),          # exp is not a matmul prologue: it stays alone
        (["reduce_sum", "sqrt"], "reduction"),  # a reduction never joins a contraction
        (["neg", "transpose"], "injective"),  # an injective op is not a reduction prologue,
        (["reduce_max"], "reduction"),        # nor its epilogue
        (["transpose", "sub"], "injective"),
        (["tanh", "argmax"], "reduction"),
    ]
    # lone elementwise ops are not wrapped; with max-ops=1 only the anchors are
    assert _groups(RULES, max_ops=1) == [(["matmul"], "contraction"), (["reduce_sum"], "reduction"),
                                         (["reduce_max"], "reduction"), (["argmax"], "reduction")]


def test_kinds_and_classes():
    m = ir.parse("""\
module @m {
  func @main(%x: f32[2,4]) -> (f32[2,4], f32[2,4], f32[2,4], f32[8]) {
    %0 = log_softmax(%x) : f32[2,4]
    %1 = rms_norm(%x) : f32[2,4]
    %2 = batch_norm(%x, %x, %x, %x, %x) : f32[2,4]
    %3 = reshape(%x) {shape = [8]} : f32[8]
    return %0, %1, %2, %3
  }
}
""")
    assert [op_class(o) for o in m.main.ops] == ["reduction", "reduction", "opaque", "injective"]
    assert [group_kind([o]) for o in m.main.ops[:2]] == ["softmax", "layer_norm"]
    assert [g.kind for g in partition(m.main)] == ["softmax", "layer_norm"]


def test_impure_ops_are_never_fused():
    def_op("test_impure_neg", ["x"], lambda x: x, lambda x: -x, traits=("elementwise",))
    try:
        m = ir.parse("""\
module @m {
  func @main(%x: f32[4]) -> (f32[4]) {
    %0 = exp(%x) : f32[4]
    %1 = test_impure_neg(%0) : f32[4]
    %2 = neg(%1) : f32[4]
    return %2
  }
}
""")
        assert op_class(m.main.ops[1]) == "opaque"
        assert partition(m.main) == []
        assert FuseOps().run(m) is False
    finally:
        REGISTRY.pop("test_impure_neg")


@st.composite
def graphs_and_limits(draw):
    graph, _ = draw(random_graphs())
    return graph, draw(st.sampled_from([1, 2, 3, 16]))




@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(graphs_and_limits())
def test_random_graphs_fuse_without_changing_outputs(case):
    g, max_ops = case
    m = g.module
    before = ir.interpret(m, *g.inputs)
    FuseOps(max_ops=max_ops).run(m)
    ir.verify(m)
    after = ir.interpret(m, *g.inputs)
    assert len(before) == len(after)
    assert all(identical(a, b) for a, b in zip(before, after))
    for op in m.main.ops:
        if op.name == "fused":
            body = [o for o in m.function(op.attrs["body"]).ops if o.name != "constant"]
            assert 1 <= len(body) <= max_ops
            assert sum(op_class(o) in ANCHORS for o in body) <= 1
            assert op.attrs["kind"] == group_kind(body)
    text = ir.print_module(m, inline_limit=None)
    assert ir.print_module(ir.parse(text), inline_limit=None) == text
    assert FuseOps(max_ops=max_ops).run(m) is False
    assert ir.print_module(m, inline_limit=None) == text


# Dense DAGs: every operand is any earlier value, so diamonds and side paths through opaque ops
# and anchors are common (the graphs above are mostly chains), which is what the cycle check is for.
DAG_OPS = {
    "tanh": lambda f, a, b: f.tanh(a), "neg": lambda f, a, b: f.neg(a),
    "add": lambda f, a, b: f.add(a, b), "mul": lambda f, a, b: f.mul(a, b),
    "transpose": lambda f, a, b: f.transpose(a),
    "matmul": lambda f, a, b: f.matmul(a, b), "softmax": lambda f, a, b: f.softmax(a),
    "reduce": lambda f, a, b: f.sub(a, f.reduce_max(b, axes=[1], keepdims=True)),
    "cumsum": lambda f, a, b: f.cumsum(a, axis=0),  # opaque
}


@st.composite
def dense_dags(draw):
    from compiler.ir import FunctionBuilder, tensor
    m = Module("dag")
    f = FunctionBuilder(m, "main")
    pool = [f.arg(f"x{i}", tensor(["n", "n"], "f32")) for i in range(2)]
    for _ in range(draw(st.integers(2, 14))):
        name = draw(st.sampled_from(sorted(DAG_OPS)))
        a, b = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
        pool.append(DAG_OPS[name](f, a, b))
    f.ret(*draw(st.lists(st.sampled_from(pool[2:]), min_size=1, max_size=3)))
    return m, draw(st.integers(1, 6))


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(dense_dags())
def test_dense_dags_fuse_without_cycles_or_changes(case):
    m, max_ops = case
    x = random_inputs(m.main, seed=1)
    before = ir.interpret(m, *x)
    FuseOps(max_ops=max_ops).run(m)
    ir.verify(m)  # a cyclic grouping could not be ordered: values would be used before defined
    assert all(identical(a, b) for a, b in zip(before, ir.interpret(m, *x)))
    text = ir.print_module(m)
    assert FuseOps(max_ops=max_ops).run(m) is False
    assert ir.print_module(m) == text


# --- real models: the figures for the issue ------------------------------------------------------

MODEL_CASES = [("gpt2", "torch"), ("gpt2", "onnx"), ("bert", "torch"), ("bert", "onnx")]


@pytest.fixture(scope="module", params=MODEL_CASES, ids=lambda c: "-".join(c))
def imported(request, tmp_path_factory):
    import frontends
    from compiler.bench import models
    name, path = request.param
    model, inputs = models.build(name)
    if path == "torch":
        m = frontends.from_torch(model, example_inputs=inputs)
    else:
        file = str(tmp_path_factory.mktemp("onnx") / f"{name}.onnx")
        models.to_onnx(model, inputs, file)
        m = frontends.from_onnx(file)
    return name, path, m, [x.numpy() for x in inputs]


def test_models_fuse_into_contraction_softmax_and_layer_norm_groups(imported):
    name, path, m, inputs = imported
    want = ir.interpret(m, *inputs)
    before = Counter(op.name for op in m.main.ops)
    anchors = Counter(op_class(op) for op in m.main.ops)
    assert FuseOps().run(m)
    ir.verify(m)
    got = ir.interpret(m, *inputs)
    for g, w in zip(got, want):
        err = np.linalg.norm(g.astype(np.float64) - w) / np.linalg.norm(w)
        assert err < 1e-5 and identical(g, w)  # fusion moves ops, it never changes one
    kinds = Counter(op.attrs["kind"] for op in m.main.ops if op.name == "fused")
    left = Counter(op.name for op in m.main.ops if op.name != "fused")
    print(f"\n{name} via {path}: {sum(before.values())} ops -> {len(m.main.ops)} in @main "
          f"({sum(kinds.values())} fused groups: {dict(sorted(kinds.items()))}; "
          f"left unfused: {dict(sorted(left.items()))})")
    # every contraction and every softmax / layer_norm is the anchor of its own group
    assert kinds["contraction"] == anchors["contraction"]
    assert kinds["layer_norm"] == before["layer_norm"] == 2 * 2 + 1
    assert kinds["softmax"] == before["softmax"] == 2
    assert not any(op_class(op) in ANCHORS for op in m.main.ops if op.name != "fused")
    assert len(m.main.ops) < sum(before.values()) / 2
    assert FuseOps().run(m) is False
