"""ONNX's own backend test suite through compiler.onnx_backend: the pass rate must stay at or
above the floor. `python -m tests.onnx.backend_suite` prints the failures grouped by cause."""
from __future__ import annotations

from tests.onnx.backend_suite import report, run_suite

PASS_RATE_FLOOR = 0.90  # of the CPU inference tests (training/gradient excluded)


def test_backend_suite_pass_rate():
    result = run_suite()
    print(report(result))
    assert result.total >= 2000, "the suite lost tests: is the node-test data complete?"
    assert result.rate >= PASS_RATE_FLOOR, report(result, top=15)
