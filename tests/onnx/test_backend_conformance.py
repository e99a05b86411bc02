"""ONNX's own backend test suite through compiler.onnx_backend, which compiles every model for the
default target (llvm: native code for this CPU): the pass rate must stay at or above the floor.
`python -m tests.onnx.backend_suite` prints the failures grouped by cause."""
from __future__ import annotations

import pytest

from tests.onnx.backend_suite import report, run_suite

PASS_RATE_FLOOR = 0.90  # of the CPU inference tests (training/gradient excluded)


@pytest.fixture(autouse=True)
def _llvm(tmp_path, monkeypatch):
    monkeypatch.delenv("COMPILER_ONNX_TARGET", raising=False)  # the default target: llvm
    monkeypatch.setenv("DLC_CACHE_DIR", str(tmp_path / "cache"))


def test_backend_suite_pass_rate():
    from compiler.api import DEFAULT_TARGET
    assert DEFAULT_TARGET == "llvm"
    result = run_suite()
    print(report(result))
    assert result.total >= 2000, "the suite lost tests: is the node-test data complete?"
    assert result.rate >= PASS_RATE_FLOOR, report(result, top=15)
