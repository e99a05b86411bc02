"""ONNX's backend test suite (onnx.backend.test.BackendTest) run against compiler.onnx_backend.

onnx wheels ship the node-test case definitions but not their data; `ensure_node_data` writes the
data into the installed onnx package (where BackendTest looks) once per environment.

    python -m tests.onnx.backend_suite [REGEX]     # run, print pass rate and failures by cause
"""
from __future__ import annotations

import collections
import os
import re
import sys
import time
import unittest
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

EXCLUDE = re.compile(r"(training|gradient)")  # training/gradient tests are not inference


def node_data_dir() -> str:
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")


def ensure_node_data() -> int:
    """Write model.onnx and test_data_set_N/{input,output}_K.pb for every node test case that is
    missing them; returns how many cases were written."""
    import onnx.backend.test.case.node as node_cases

    out = node_data_dir()
    stamp = os.path.join(out, ".written-by-dlcompiler-" + onnx.__version__)
    if os.path.exists(stamp):
        return 0
    count = 0
    with np.errstate(all="ignore"):
        cases = node_cases.collect_testcases(None)
    for case in cases:
        folder = os.path.join(out, case.name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "model.onnx"), "wb") as fh:
            fh.write(case.model.SerializeToString())
        for i, (inputs, outputs) in enumerate(case.data_sets):
            data = os.path.join(folder, f"test_data_set_{i}")
            os.makedirs(data, exist_ok=True)
            for kind, values, decls in (("input", inputs, case.model.graph.input),
                                        ("output", outputs, case.model.graph.output)):
                for j, value in enumerate(values):
                    blob = _serialize(value, decls[j].name if j < len(decls) else f"{kind}_{j}")
                    if blob is not None:
                        with open(os.path.join(data, f"{kind}_{j}.pb"), "wb") as fh:
                            fh.write(blob)
        count += 1
    with open(stamp, "w") as fh:
        fh.write(f"{count}\n")
    return count


def _serialize(value, name: str):
    """A tensor's protobuf bytes; None for sequences, maps and optionals (those cases stay
    incomplete and fail to load, as they would for any tensor-only backend)."""
    if isinstance(value, onnx.TensorProto):
        return value.SerializeToString()
    try:
        return numpy_helper.from_array(np.asarray(value), name).SerializeToString()
    except Exception:
        return None


@dataclass
class SuiteResult:
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # test name -> cause line
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return len(self.passed) + len(self.failed)

    @property
    def rate(self) -> float:
        return len(self.passed) / max(self.total, 1)

    def causes(self) -> list[tuple[str, int, list[str]]]:
        """Failures grouped by cause, most common first: (cause, count, example tests)."""
        groups: dict[str, list[str]] = collections.defaultdict(list)
        for name, cause in self.failed.items():
            groups[cause].append(name)
        return sorted(((c, len(ns), sorted(ns)[:4]) for c, ns in groups.items()),
                      key=lambda g: -g[1])


def _cause(err: str) -> str:
    """A short, groupable cause from a failure's traceback text."""
    last = [ln for ln in err.strip().splitlines() if ln.strip()]
    text = last[-1] if last else "unknown"
    m = re.search(r"unsupported op type\(s\) \(([^)]*)\)", err)
    if m:
        return f"unsupported op: {m.group(1)}"
    m = re.search(r"element type (\w+) has no IR dtype", err)
    if m:
        return f"unsupported dtype: {m.group(1)}"
    if "AssertionError" in text or "Mismatch" in err:
        return "wrong numbers (outputs differ)"
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"\d+", "N", text)
    return text[:160]


def run_suite(pattern: str | None = None) -> SuiteResult:
    """Run the CPU backend tests (training/gradient excluded; `pattern` narrows by name)."""
    import onnx.backend.test

    import compiler.onnx_backend as backend

    ensure_node_data()
    bt = onnx.backend.test.BackendTest(backend, __name__)
    suite = unittest.TestSuite()
    for case in bt.test_cases.values():
        for name in sorted(dir(case)):
            if not name.startswith("test_") or not name.endswith("_cpu") or EXCLUDE.search(name):
                continue
            if pattern and not re.search(pattern, name):
                continue
            suite.addTest(case(name))
    result = SuiteResult()
    names = [t.id().rsplit(".", 1)[-1] for t in suite]  # the suite drops its tests as it runs
    collector = unittest.TestResult()
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        suite.run(collector)
    result.seconds = time.perf_counter() - t0
    bad = {t.id().rsplit(".", 1)[-1]: _cause(err) for t, err in collector.failures + collector.errors}
    result.skipped = [t.id().rsplit(".", 1)[-1] for t, _ in collector.skipped]
    result.failed = bad
    result.passed = [n for n in names if n not in bad and n not in result.skipped]
    return result


def report(result: SuiteResult, top: int = 60) -> str:
    lines = [f"ONNX backend suite: {len(result.passed)} of {result.total} passed "
             f"({100 * result.rate:.1f}%), {len(result.skipped)} skipped, {result.seconds:.0f} s",
             "", "| failures | cause | examples |", "|---:|---|---|"]
    for cause, n, examples in result.causes()[:top]:
        lines.append(f"| {n} | {cause} | {', '.join(e.removeprefix('test_') for e in examples)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    res = run_suite(sys.argv[1] if len(sys.argv) > 1 else None)
    print(report(res))
