"""Figures of the default pipeline on real models: op counts before/after, fused groups by kind,
and the relative error of the optimized module against the unoptimized one.

    python -m compiler bench passes [--model gpt2] [-O 2]
"""
from __future__ import annotations

import collections
import os
import tempfile
from typing import Any

import numpy as np

from compiler import ir


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    want = want.astype(np.float64)
    return float(np.linalg.norm(got.astype(np.float64) - want) / max(np.linalg.norm(want), 1e-300))


def measure(module: ir.Module, inputs: list[np.ndarray], opt_level: int = 2) -> dict[str, Any]:
    """Optimize a copy of `module` with the default pipeline and compare."""
    import compiler
    before = len(module.main.ops)
    (want,) = ir.interpret(module, *inputs)
    opt = compiler.optimize(module, opt_level=opt_level)
    (got,) = ir.interpret(opt, *inputs)
    kinds = collections.Counter(op.attrs["kind"] for op in opt.main.ops if op.name == "fused")
    return {"ops_before": before, "ops_after": len(opt.main.ops),
            "groups": sum(kinds.values()), "kinds": dict(kinds), "rel_err": rel_err(got, want)}


def imported(name: str) -> dict[str, tuple[ir.Module, list[np.ndarray]]]:
    """The model through both frontends: {"torch": (module, inputs), "onnx": (...)}."""
    from compiler.bench import models
    from frontends import from_onnx, from_torch
    model, inputs = models.build(name)
    arrays = [x.numpy() for x in inputs]
    out = {"torch": (from_torch(model, example_inputs=inputs), arrays)}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.onnx")
        models.to_onnx(model, inputs, path)
        out["onnx"] = (from_onnx(path), arrays)
    return out


def run(model: str = "gpt2", opt_level: int = 2) -> dict[str, dict[str, Any]]:
    from compiler.pipeline import default_pipeline
    print(f"default pipeline -O{opt_level}: {default_pipeline(opt_level)}")
    res = {}
    for frontend, (module, inputs) in imported(model).items():
        r = measure(module, inputs, opt_level)
        res[frontend] = r
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["kinds"].items()))
        print(f"{model:8s} {frontend:5s} ops {r['ops_before']:4d} -> {r['ops_after']:4d}   "
              f"fused groups {r['groups']:3d} ({kinds})   rel. error {r['rel_err']:.2e}")
    return res
