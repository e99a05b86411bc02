"""What the XLA tests share: building one-op modules, comparing with the reference interpreter."""
from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence

import numpy as np

from compiler import ir
from compiler.ir import dtypes as dt
from tests.ir.opcheck import one_op_module

# per-dtype relative tolerance against the interpreter (XLA's transcendental functions and
# summation orders differ from NumPy's by a few ulps; f16/bf16 results may round either way)
RTOL = {"f16": 2e-3, "bf16": 1.6e-2, "f32": 2e-5, "f64": 1e-9}


def mismatch(got: np.ndarray, want: np.ndarray, rtol: Optional[float] = None) -> Optional[str]:
    """None when got matches want (same dtype and shape; floats within tolerance with nan where
    nan, integers and bools exact), else what differs."""
    if got.dtype != want.dtype or got.shape != want.shape:
        return f"type {got.dtype}{got.shape}, expected {want.dtype}{want.shape}"
    d = dt.dtype(want.dtype)
    if d.is_float or d.is_narrow_float:
        g, w = got.astype(np.float64), want.astype(np.float64)
        tol = rtol if rtol is not None else RTOL.get(d.name, 0.13)
        scale = np.abs(w[np.isfinite(w)]).max(initial=0.0)
        ok = np.isclose(g, w, rtol=tol, atol=tol * (1 + 0.01 * scale), equal_nan=True)
        if not ok.all():
            i = tuple(np.argwhere(~ok)[0])
            return f"{(~ok).sum()} of {ok.size} differ, e.g. at {i}: {g[i]} vs {w[i]}"
        return None
    if not np.array_equal(got, want):
        bad = got != want
        i = tuple(np.argwhere(bad)[0]) if got.ndim else ()
        return f"{bad.sum()} of {bad.size} differ, e.g. at {i}: {got[i]} vs {want[i]}"
    return None


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    want = np.asarray(want, dtype=np.float64)
    return float(np.linalg.norm(got.astype(np.float64) - want) / max(np.linalg.norm(want), 1e-30))


def build(module: ir.Module, target: str = "xla", **kw: Any):
    import codegen.xla
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "tpu" on a machine without one warns
        return codegen.xla.build(module, target, **kw)


def check_op(name: str, inputs: Sequence[np.ndarray], attrs: dict, target: str = "xla",
             rtol: Optional[float] = None) -> None:
    """One op compiled by XLA agrees with the interpreter on these inputs."""
    m = one_op_module(name, inputs, attrs)
    want = ir.interpret(m, *inputs)
    got = build(m, target)(*inputs)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        why = mismatch(g, w, rtol)
        assert why is None, f"{name} {attrs} result {i}: {why}"
