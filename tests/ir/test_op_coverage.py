"""Every registered op is covered by an op test file (its OPS_TESTED set) and by a sample generator."""
from __future__ import annotations

import importlib
import pathlib

from compiler import ir


def test_every_op_has_shape_and_reference_tests():
    covered: dict[str, str] = {}
    for path in sorted(pathlib.Path(__file__).parent.glob("test_ops_*.py")):
        mod = importlib.import_module(f"tests.ir.{path.stem}")
        for name in mod.OPS_TESTED:
            covered.setdefault(name, path.name)
    registered = set(ir.all_ops())
    assert registered - covered.keys() == set(), "ops without tests"
    assert covered.keys() - registered == set(), "OPS_TESTED names ops that do not exist"
