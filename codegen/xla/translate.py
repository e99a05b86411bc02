"""Graph IR module (static shapes) -> one StableHLO module as text.

@main's arguments are the graph inputs followed by the large constants (weights), which the
runtime uploads once and passes on every call instead of writing them into the text as dense<>
literals: the text stays small and XLA compiles in seconds even for GPT-2 base. Constants of at
most INLINE_BYTES bytes are written inline. `fused` ops are inlined, their body between comments
that name the group, so XLA sees one function and fuses across group boundaries as it likes.
Run-time checks (out-of-range gather indices) become extra bool results after the graph's
outputs; the runtime raises when one is true.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from compiler.ir import Function, Module, Op, TensorType
from compiler.ir import dtypes as dt

from .emitter import Emitter, LoweringError, Val, tensor_type
from .lowering import LOWERINGS, Context, Options

INLINE_BYTES = 4096


@dataclass
class Program:
    """A translated module: the StableHLO text and what the runtime needs to call it."""

    text: str
    input_types: list[TensorType]
    output_types: list[TensorType]
    weights: list[np.ndarray] = field(default_factory=list)  # extra arguments after the inputs
    weight_names: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # messages of the extra bool results


def _load_rules() -> None:
    from . import lower_contraction, lower_elementwise, lower_movement  # noqa: F401
    from . import lower_nn, lower_nn_extra, lower_quant, lower_reduction  # noqa: F401


def supported_ops() -> set[str]:
    _load_rules()
    return set(LOWERINGS) | {"constant", "fused"}


def _describe(op: Op) -> str:
    s = f"op '{op.name}'"
    if op.results and op.results[0].name:
        s += f" (%{op.results[0].name})"
    if op.src_line is not None:
        s += f" at line {op.src_line}"
    if op.loc is not None:
        s += f" [{op.loc}]"
    return s


class _Translator:
    def __init__(self, module: Module, options: Options) -> None:
        self.module = module
        self.e = Emitter()
        self.ctx = Context(options, constant=self.array)
        self.constants: dict[str, Val] = {}
        self.weights: list[tuple[str, np.ndarray, Val]] = []

    def constant(self, name: str) -> Val:
        if name not in self.constants:
            arr = self.module.constants[name]
            self.constants[name] = self.array(arr, dt.dtype(arr.dtype), name)
        return self.constants[name]

    def array(self, arr: np.ndarray, dtype: dt.DType, name: str = "") -> Val:
        """A constant: inline when small, else one more weight argument of @main."""
        arr = np.asarray(arr)
        if arr.dtype != dtype.np_dtype:
            arr = arr.astype(dtype.np_dtype)
        if arr.nbytes > INLINE_BYTES:
            v = Val(f"%w{len(self.weights)}", tuple(arr.shape), dtype)
            self.weights.append((name or f"(made by {self.e.loc})", arr, v))
            return v
        return self.e.const(arr, dtype)

    def function(self, fn: Function, args: list[Val], path: str = "") -> list[Val]:
        values: dict[object, Val] = dict(zip(fn.args, args))
        for op in fn.ops:
            operands = [values[v] for v in op.operands]
            if op.name == "constant":
                self.e.loc = f"@{op.attrs['name']}"
                results = [self.constant(op.attrs["name"])]
            elif op.name == "fused":
                body = self.module.function(op.attrs["body"])
                self.e.loc = None
                self.e.comment(f"fused @{body.name} ({op.attrs['kind']})")
                results = self.function(body, operands, f"{body.name}/")
                self.e.comment(f"end @{body.name}")
            else:
                results = self.lower(op, operands, path)
            for v, r in zip(op.results, results):
                values[v] = r
        return [values[v] for v in fn.outputs]

    def lower(self, op: Op, operands: list[Val], path: str) -> list[Val]:
        where = _describe(op) + (f" in @{path[:-1]}" if path else "")
        rule = LOWERINGS.get(op.name)
        if rule is None:
            raise LoweringError(f"{where}: no StableHLO lowering for this op")
        name = op.results[0].name if op.results and op.results[0].name else ""
        self.e.loc = f"{path}{op.name}" + (f" %{name}" if name else "")
        try:
            results = rule(self.e, op, operands, self.ctx)
        except LoweringError as err:
            raise LoweringError(f"{where}: {err}") from None
        except Exception as err:  # a rule bug: still say which op it was
            raise LoweringError(f"{where}: the StableHLO lowering failed: "
                                f"{type(err).__name__}: {err}") from err
        for i, (v, r) in enumerate(zip(op.results, results)):
            want = (tuple(v.type.shape), v.type.dtype)
            if (r.shape, r.dtype) != want:  # a rule bug: say which op, never run wrong code
                raise LoweringError(f"{where}: the StableHLO lowering gave result {i} type "
                                    f"{r.type}, the op declares {v.type}")
        return results


def translate(module: Module, options: Optional[Options] = None) -> Program:
    """The StableHLO module for `module`'s entry function; LoweringError names the op that has
    no lowering (or whose attributes StableHLO cannot express)."""
    _load_rules()
    options = options or Options()
    fn = module.main
    for t in fn.arg_types + fn.output_types:
        if not t.is_static:
            raise LoweringError(f"@{fn.name} has symbolic dims ({t}); StableHLO needs static "
                                "shapes here (codegen.xla specializes per input shape)")
    tr = _Translator(module, options)
    args = [Val(f"%arg{i}", tuple(t.shape), t.dtype) for i, t in enumerate(fn.arg_types)]
    outs = tr.function(fn, args)
    checks = tr.ctx.checks
    results = outs + [flag for flag, _ in checks]
    tr.e.loc = None
    tr.e.op("func.return", results, [])
    params = [f"{a.name}: {a.type}" for a in args]
    params += [f"{v.name}: {v.type}" for _, _, v in tr.weights]
    header = ["// inputs: " + ", ".join(f"%arg{i} = %{a.name or i}"
                                         for i, a in enumerate(fn.args))]
    if tr.weights:
        header.append(f"// weights: {len(tr.weights)} arguments after the inputs (%w0 = @"
                      f"{tr.weights[0][0]}, ...)")
    if checks:
        header.append(f"// the last {len(checks)} results are run-time checks (true: error)")
    res_types = ", ".join(v.type for v in results)
    lines = [f"module @{_symbol(module.name)} attributes {{mhlo.num_partitions = 1 : i32, "
             "mhlo.num_replicas = 1 : i32} {"]
    lines += ["  " + h for h in header]
    lines.append(f"  func.func public @main({', '.join(params)}) -> ({res_types}) {{")
    lines += tr.e.lines
    lines += ["  }", "}", ""]
    return Program(text="\n".join(lines), input_types=list(fn.arg_types),
                   output_types=list(fn.output_types),
                   weights=[a for _, a, _ in tr.weights],
                   weight_names=[n for n, _, _ in tr.weights],
                   checks=[m for _, m in checks])


def _symbol(name: str) -> str:
    import re
    cleaned = re.sub(r"[^A-Za-z0-9_.$]", "_", name) or "module"
    return cleaned if not cleaned[0].isdigit() else "m" + cleaned


__all__ = ["Program", "translate", "supported_ops", "tensor_type"]
