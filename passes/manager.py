"""The pass manager: runs a pipeline with instruments.

Instruments (all optional, all available from compiler.optimize, compiler.compile and
`python -m compiler opt`):
- print IR after every pass ("all"), after passes that changed it ("change"), or after named ones
- dump_dir: numbered IR files (`000-input.ir`, `003-fuse-ops.ir`, ...) and `summary.txt` /
  `summary.json` with each pass's time, whether it changed the IR, and op counts by kind
- verify after each pass
- check_numerics: after each pass, run the reference interpreter on sample inputs and compare
  with the unoptimized module; the first pass that changes the outputs beyond tolerance stops the
  pipeline with a NumericsError naming the pass, the output that diverged, the error, and the
  last op (by value name) whose value still matched along with the first one that did not.
"""
from __future__ import annotations

import collections
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, TextIO, Union

import numpy as np

from compiler import ir
from compiler.ir import Module
from compiler.ir.interpreter import run_function

from .registry import Pipeline, parse_pipeline


class NumericsError(RuntimeError):
    """A pass changed the module's outputs beyond tolerance (see the message for where)."""

    def __init__(self, message: str, pass_name: str, output: int, error: float,
                 last_matching: Optional[str], first_diverging: Optional[str]) -> None:
        super().__init__(message)
        self.pass_name = pass_name
        self.output = output
        self.error = error
        self.last_matching = last_matching
        self.first_diverging = first_diverging


@dataclass
class NumericsCheck:
    """Sample inputs (None: random within the input types) and tolerances. Float outputs
    compare by relative error ||a - b|| / ||b|| <= rtol (or max |a - b| <= atol); integer
    outputs may move by int_atol (a requantization may round one step differently)."""

    inputs: Optional[Sequence[np.ndarray]] = None
    rtol: float = 1e-4
    atol: float = 1e-6
    int_atol: int = 1
    seed: int = 0
    dims: dict[str, int] = field(default_factory=dict)


@dataclass
class PassRecord:
    index: int
    name: str
    seconds: float
    changed: bool
    ops_before: dict[str, int]
    ops_after: dict[str, int]


def op_counts(module: Module) -> dict[str, int]:
    """Ops by name over every function (fused bodies included)."""
    return dict(collections.Counter(op.name for op in module.ops()))


@dataclass
class PassManager:
    pipeline: Pipeline
    verify_each: bool = True
    print_ir_after: Union[None, str, Sequence[str]] = None
    print_stream: Optional[TextIO] = None
    dump_dir: Optional[str] = None
    check_numerics: Union[bool, NumericsCheck] = False
    records: list[PassRecord] = field(default_factory=list)

    @classmethod
    def from_string(cls, pipeline: str, **kwargs: Any) -> "PassManager":
        return cls(parse_pipeline(pipeline), **kwargs)

    def run(self, module: Module) -> Module:
        """Run every pass on `module` (changed in place) and return it."""
        self.records = []
        check = self._numerics_setup(module)
        if self.dump_dir:
            os.makedirs(self.dump_dir, exist_ok=True)
            self._dump(0, "input", module)
        for i, p in enumerate(self.pipeline.passes, start=1):
            before = op_counts(module)
            t0 = time.perf_counter()
            changed = bool(p.run(module))
            seconds = time.perf_counter() - t0
            if self.verify_each:
                try:
                    ir.verify(module)
                except ir.VerificationError as e:
                    raise ir.VerificationError(f"after pass '{p.name}': {e.message}", e.line,
                                               e.filename) from None
            record = PassRecord(i, p.name, seconds, changed, before, op_counts(module))
            self.records.append(record)
            if self.dump_dir:
                self._dump(i, p.name, module)
            if self._wants_print(p.name, changed):
                stream = self.print_stream or sys.stderr
                stream.write(f"// ----- IR after {p.name} ({'changed' if changed else 'unchanged'})"
                             f" -----\n{ir.print_module(module)}")
            if check is not None and changed:
                self._compare(check, module, p.name)
        if self.dump_dir:
            self._write_summary()
        return module

    # --- printing and dumps ---------------------------------------------------------------------
    def _wants_print(self, name: str, changed: bool) -> bool:
        what = self.print_ir_after
        if what is None:
            return False
        if what == "all":
            return True
        if what == "change":
            return changed
        return name in (what if not isinstance(what, str) else [what])

    def _dump(self, index: int, name: str, module: Module) -> None:
        path = os.path.join(self.dump_dir, f"{index:03d}-{name}.ir")  # type: ignore[arg-type]
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(ir.print_module(module))

    def summary(self) -> str:
        """A table: pass, time, changed, ops before -> after, and what changed by kind."""
        lines = [f"{'#':>3}  {'pass':<20} {'time ms':>9}  {'changed':<7} {'ops':>13}  delta by op"]
        for r in self.records:
            n0, n1 = sum(r.ops_before.values()), sum(r.ops_after.values())
            delta = {k: r.ops_after.get(k, 0) - r.ops_before.get(k, 0)
                     for k in set(r.ops_before) | set(r.ops_after)}
            shown = ", ".join(f"{k} {v:+d}" for k, v in sorted(delta.items()) if v)
            lines.append(f"{r.index:>3}  {r.name:<20} {r.seconds * 1e3:9.2f}  "
                         f"{'yes' if r.changed else 'no':<7} {n0:>5} -> {n1:<5}  {shown}")
        return "\n".join(lines) + "\n"

    def _write_summary(self) -> None:
        with open(os.path.join(self.dump_dir, "summary.txt"), "w") as fh:  # type: ignore[arg-type]
            fh.write(self.summary())
        with open(os.path.join(self.dump_dir, "summary.json"), "w") as fh:  # type: ignore[arg-type]
            json.dump([r.__dict__ for r in self.records], fh, indent=1)

    # --- numerics -------------------------------------------------------------------------------
    def _numerics_setup(self, module: Module) -> Optional["_Reference"]:
        if not self.check_numerics:
            return None
        check = self.check_numerics if isinstance(self.check_numerics, NumericsCheck) \
            else NumericsCheck()
        inputs = list(check.inputs) if check.inputs is not None else \
            sample_inputs(module, check.seed, check.dims)
        ref = ir.clone_module(module)
        outputs, values = _run_recording(ref, inputs)
        return _Reference(check, inputs, ref, outputs, values)

    def _compare(self, ref: "_Reference", module: Module, pass_name: str) -> None:
        outs, values = _run_recording(module, ref.inputs)
        for i, (got, want) in enumerate(zip(outs, ref.outputs)):
            err = _error(got, want, ref.check)
            if err is None:
                continue
            what, size = err
            last, first = _localize(module, values, ref.values, ref.check)
            where = (f"; the last value that still matched is %{last}" if last else "") + \
                (f", the first that differs is %{first}" if first else "")
            raise NumericsError(
                f"check_numerics: pass '{pass_name}' changed output {i} "
                f"({module.main.outputs[i].type}): {what}{where}", pass_name, i, size, last, first)


@dataclass
class _Reference:
    check: NumericsCheck
    inputs: list[np.ndarray]
    module: Module
    outputs: list[np.ndarray]
    values: dict[str, np.ndarray]


def sample_inputs(module: Module, seed: int = 0, dims: Optional[dict[str, int]] = None) -> list[np.ndarray]:
    """Random inputs for @main: normal floats, small ints, random bools; symbolic dims from
    `dims`, else their lower bound (at least 2, so broadcasting mistakes show)."""
    rng = np.random.default_rng(seed)
    out = []
    for a in module.main.args:
        shape = [d if isinstance(d, int) else (dims or {}).get(
            d, max(module.dim_bounds.get(d, (2, None))[0], 2)) for d in a.shape]
        t = a.dtype
        if t.is_bool:
            out.append(rng.random(shape) < 0.5)
        elif t.is_float or t.is_narrow_float:
            out.append(rng.standard_normal(shape).astype(t.np_dtype))
        else:
            lo, hi = t.int_range()
            out.append(rng.integers(max(lo, -8), min(hi, 8) + 1, size=shape).astype(t.np_dtype))
    return out


def _run_recording(module: Module, inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Outputs, and every named value of @main in op order (names are how values before and
    after a pass correspond)."""
    values: dict[str, np.ndarray] = {}

    def observe(op: ir.Op, results: list[np.ndarray]) -> None:
        for v, r in zip(op.results, results):
            if v.name is not None:
                values[v.name] = r
    outs = run_function(module, module.main, inputs, observer=observe)
    return outs, values


def _error(got: np.ndarray, want: np.ndarray, check: NumericsCheck) -> Optional[tuple[str, float]]:
    """None when got matches want within tolerance, else (description, size of the error)."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return (f"shape/dtype {got.dtype}{list(got.shape)} instead of "
                f"{want.dtype}{list(want.shape)}", float("inf"))
    if got.dtype.kind in "iub":
        diff = int(np.max(np.abs(got.astype(np.int64) - want.astype(np.int64)))) if got.size else 0
        return None if diff <= check.int_atol else (f"max |difference| = {diff}", float(diff))
    a, b = got.astype(np.float64), want.astype(np.float64)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return "NaNs appear or vanish", float("nan")
    a, b = np.nan_to_num(a, nan=0.0, posinf=np.inf), np.nan_to_num(b, nan=0.0, posinf=np.inf)
    inf_a, inf_b = np.isinf(a), np.isinf(b)
    if not np.array_equal(inf_a, inf_b) or not np.array_equal(a[inf_a], b[inf_b]):
        return "infinities differ", float("inf")
    diff = np.abs(a[~inf_b] - b[~inf_b])
    if diff.size == 0 or diff.max() <= check.atol:
        return None
    rel = float(np.linalg.norm(diff) / max(np.linalg.norm(b[~inf_b]), 1e-300))
    return None if rel <= check.rtol else (f"relative error = {rel:.3g}", rel)


def _localize(module: Module, got: dict[str, np.ndarray], want: dict[str, np.ndarray],
              check: NumericsCheck) -> tuple[Optional[str], Optional[str]]:
    """Walking the new module's ops in order: the last named value equal to the reference's
    value of the same name, and the first that is not."""
    last = first = None
    for op in module.main.ops:
        for v in op.results:
            if v.name is None or v.name not in want or v.name not in got:
                continue
            if _error(got[v.name], want[v.name], check) is None:
                if first is None:
                    last = v.name
            elif first is None:
                first = v.name
    return last, first
