"""The default pipeline on GPT-2 and BERT (small configs) through both frontends: fewer ops,
fused groups for every matmul, outputs unchanged (relative error < 1e-5)."""
from __future__ import annotations

import pytest

from compiler.bench import pipeline_stats


@pytest.mark.parametrize("name", ["gpt2", "bert"])
def test_default_pipeline_on_transformers(name):
    for frontend, (module, inputs) in pipeline_stats.imported(name).items():
        matmuls = sum(op.name in ("matmul", "gemm", "linear") for op in module.main.ops)
        r = pipeline_stats.measure(module, inputs, opt_level=2)
        assert r["rel_err"] < 1e-5, (name, frontend, r)
        assert r["ops_after"] < r["ops_before"] / 2, (name, frontend, r)
        assert r["kinds"]["contraction"] == matmuls, (name, frontend, r)
        assert r["kinds"]["layer_norm"] == 5 and r["kinds"]["softmax"] == 2, (name, frontend, r)
