"""The pass registry, pipeline strings, and prune-dead (IR text in, IR text out)."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import ir
from passes import PassError, available_passes, parse_pipeline, register
from passes.registry import _PASSES, pass_options


def test_pipeline_parsing_and_options():
    @register("test-options")
    class WithOptions:
        max_ops: int = 16
        ratio: float = 0.5
        enabled: bool = True
        mode: str = "fast"

        def run(self, module):
            return False

    try:
        p = parse_pipeline("prune-dead, test-options{max-ops=4,ratio=0.25,enabled=false,mode=slow}")
        assert [type(x).__name__ for x in p.passes] == ["PruneDead", "WithOptions"]
        opts = p.passes[1]
        assert (opts.max_ops, opts.ratio, opts.enabled, opts.mode) == (4, 0.25, False, "slow")
        assert str(p) == "prune-dead,test-options"
        assert pass_options(WithOptions)[0] == ("max-ops", "int", 16)
        with pytest.raises(PassError, match="option max-ops='x' is not a int"):
            parse_pipeline("test-options{max-ops=x}")
        with pytest.raises(PassError, match="bad option 'speed=1'; options are max-ops, ratio, enabled, mode"):
            parse_pipeline("test-options{speed=1}")
        with pytest.raises(PassError, match="already registered"):
            register("test-options")(WithOptions)
    finally:
        _PASSES.pop("test-options", None)


def test_pipeline_errors():
    with pytest.raises(PassError, match="unknown pass 'nope'; available: .*prune-dead"):
        parse_pipeline("nope")
    with pytest.raises(PassError, match="bad pipeline"):
        parse_pipeline("prune-dead{")
    with pytest.raises(PassError, match="must be lower-case"):
        register("Bad_Name")
    with pytest.raises(PassError, match="has no run"):
        register("no-run")(type("NoRun", (), {}))
    assert "no-run" not in available_passes()


BEFORE = """\
module @m {
  const @unused : f32[2] = dense<[1.0, 2.0]>
  const @w : f32[2] = dense<[3.0, 4.0]>
  func @main(%x: f32[2]) -> (f32[2]) {
    %u = constant() {name = @unused} : f32[2]
    %w = constant() {name = @w} : f32[2]
    %0 = add(%x, %u) : f32[2]
    %1 = exp(%0) : f32[2]
    %2 = mul(%x, %w) : f32[2]
    return %2
  }
}
"""

AFTER = """\
module @m {
  const @w : f32[2] = dense<[3.0, 4.0]>
  func @main(%x: f32[2]) -> (f32[2]) {
    %w = constant() {name = @w} : f32[2]
    %0 = mul(%x, %w) : f32[2]
    return %0
  }
}
"""


def test_prune_dead_text_in_text_out():
    m = ir.parse(BEFORE)
    x = np.random.default_rng(0).standard_normal(2).astype(np.float32)
    (want,) = ir.interpret(m, x)
    parse_pipeline("prune-dead").run(m)
    assert ir.print_module(m) == AFTER
    (got,) = ir.interpret(m, x)
    np.testing.assert_array_equal(got, want)
    assert available_passes()["prune-dead"]().run(m) is False  # nothing left to do


from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.ir.test_roundtrip_property import random_graphs  # noqa: E402


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(random_graphs())
def test_prune_dead_preserves_results_on_random_graphs(case):
    g, _ = case
    m = g.module
    before = ir.interpret(m, *g.inputs)
    n_ops = len(m.main.ops)
    available_passes()["prune-dead"]().run(m)
    ir.verify(m)
    assert len(m.main.ops) <= n_ops
    used = {v for op in m.main.ops for v in op.operands} | set(m.main.outputs)
    assert all(any(r in used for r in op.results) for op in m.main.ops)  # nothing dead is left
    for a, b in zip(ir.interpret(m, *g.inputs), before):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
