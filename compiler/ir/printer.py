"""The text form of the graph IR (MLIR-like). `parser.py` reads back exactly what this writes:
`print_module(parse(text)) == text` for every printed module.

    module @mlp {
      dim ?batch in [1, 64]
      const @b : f32[2] = dense<[0.5, -1.0]>
      const @w : f32[64,2] = external
      func @main(%x: f32[?batch,64]) -> (f32[?batch,2]) {
        %w = constant() {name = @w} : f32[64,2]
        %b = constant() {name = @b} : f32[2]
        %0 = matmul(%x, %w) : f32[?batch,2] loc("MatMul_0")
        %1 = add(%0, %b) : f32[?batch,2]
        return %1
      }
    }

Attributes equal to their default are left out. Constants with more than `inline_limit` elements
print as `external`: their values travel in a safetensors file (see serialize.py).
"""
from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np

from . import dtypes as dt
from .core import NAME_RE, Function, Location, Module, Op, Value
from .registry import find_op
from .types import format_dim

DEFAULT_INLINE_LIMIT = 16


def print_module(module: Module, inline_limit: Optional[int] = DEFAULT_INLINE_LIMIT,
                 line_map: Optional[dict[Any, int]] = None) -> str:
    """The module as text. inline_limit=None prints every constant inline.

    line_map, when given, is filled with {op or function: 1-based line number} for diagnostics.
    """
    lines = [f"module @{module.name} {{"]
    for sym, (lo, hi) in module.dim_bounds.items():
        lines.append(f"  dim ?{sym} in [{lo}, {'inf' if hi is None else hi}]")
    for name, arr in module.constants.items():
        arr = np.asarray(arr)
        t = f"{dt.dtype(arr.dtype).name}[{','.join(str(d) for d in arr.shape)}]"
        inline = inline_limit is None or arr.size <= inline_limit
        body = f"dense<[{', '.join(format_scalars(arr))}]>" if inline else "external"
        lines.append(f"  const @{name} : {t} = {body}")
    for fn in module.functions:
        _print_function(fn, lines, line_map)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _print_function(fn: Function, lines: list[str], line_map: Optional[dict[Any, int]]) -> None:
    names = _Namer()
    args = ", ".join(f"%{names.name(a)}: {a.type}" for a in fn.args)
    outs = ", ".join(str(v.type) for v in fn.outputs)
    if line_map is not None:
        line_map[fn] = len(lines) + 1
    lines.append(f"  func @{fn.name}({args}) -> ({outs}) {{")
    for op in fn.ops:
        if line_map is not None:
            line_map[op] = len(lines) + 1
        lines.append("    " + print_op(op, names))
    lines.append("    return" + ("" if not fn.outputs else " " + ", ".join(
        "%" + names.name(v) for v in fn.outputs)))
    lines.append("  }")


class _Namer:
    """Unique printed names in one function: a value's own name when it is free, else a number."""

    def __init__(self) -> None:
        self.names: dict[Value, str] = {}
        self.used: set[str] = set()
        self.next = 0

    def name(self, v: Value) -> str:
        got = self.names.get(v)
        if got is not None:
            return got
        n = v.name
        if n is None or n in self.used or not NAME_RE.match(n) or n.isdigit():
            while str(self.next) in self.used:
                self.next += 1
            n = str(self.next)
            self.next += 1
        self.used.add(n)
        self.names[v] = n
        return n


def print_op(op: Op, names: Optional[_Namer] = None) -> str:
    """One op as a line of text (without indentation)."""
    names = names or _Namer()
    operands = ", ".join("%" + names.name(v) for v in op.operands)
    results = ", ".join("%" + names.name(v) for v in op.results)
    text = f"{results} = {op.name}({operands})"
    attrs = format_attrs(op)
    if attrs:
        text += " {" + attrs + "}"
    text += " : " + ", ".join(str(v.type) for v in op.results)
    if op.loc is not None:
        text += " " + format_loc(op.loc)
    return text


def format_attrs(op: Op) -> str:
    opdef = find_op(op.name)
    parts = []
    for key, value in op.attrs.items():
        spec = opdef.attrs.get(key) if opdef is not None else None
        if spec is not None and _same(value, spec.default, spec.kind):
            continue
        if value is None:
            continue
        kind = spec.kind if spec is not None else None
        parts.append(f"{key} = {format_attr_value(value, kind)}")
    return ", ".join(parts)


def _same(a: Any, b: Any, kind: Optional[str]) -> bool:
    """a prints exactly like b (so -0.0 is not the default 0.0, and nan is nan)."""
    if a is None or b is None or type(a) is not type(b):
        return a is b
    return format_attr_value(a, kind) == format_attr_value(b, kind)


def format_attr_value(value: Any, kind: Optional[str]) -> str:
    """An attribute value's text; `kind` (from the schema) disambiguates strings."""
    if kind == "symbol":
        return "@" + value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.DType):
        return value.name
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # 'inf', 'nan', '1e-05', '2.5': all parse back
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (tuple, list)):
        elem_kind = {"ints": "int", "floats": "float", "strs": "str"}.get(kind or "")
        if kind == "dims":
            return "[" + ", ".join(format_dim(d) for d in value) + "]"
        return "[" + ", ".join(format_attr_value(v, elem_kind) for v in value) + "]"
    raise TypeError(f"cannot print attribute value {value!r}")


def format_scalars(arr: np.ndarray) -> list[str]:
    """Element texts that parse back to the identical values (shortest round-trip form)."""
    flat = arr.reshape(-1)
    if arr.dtype == np.bool_:
        return ["true" if v else "false" for v in flat]
    d = dt.dtype(arr.dtype)
    if d.is_integral:  # narrow ints included (NumPy kind 'V')
        return [str(int(v)) for v in flat.astype(np.int64 if d.is_narrow else flat.dtype)]
    if arr.dtype == np.float32:
        return [str(v) for v in flat]  # NumPy's f32 str is the shortest round trip
    if d.is_narrow_float:
        return _narrow_float_texts(flat, d)
    # f16 and bf16 values are exact in f64, whose repr is the shortest round trip
    return [repr(float(v)) for v in flat]


def _narrow_float_texts(flat: np.ndarray, d: dt.DType) -> list[str]:
    """Narrow floats are exact in f64; a nan prints as `nan` or `-nan` when it is the one the
    parser makes of those words, else by its bits (`nan:0x7d`), so every pattern round-trips."""
    bits = flat.view(np.uint8)
    nan_bits = {int(np.array(v).astype(d.np_dtype).view(np.uint8)): w
                for v, w in ((-np.nan, "-nan"), (np.nan, "nan"))}  # one nan pattern: "nan"
    out = []
    for v, b in zip(flat.astype(np.float64), bits):
        if not np.isnan(v):
            out.append(repr(float(v)))
        else:
            out.append(nan_bits.get(int(b), f"nan:0x{int(b):02x}"))
    return out


def format_loc(loc: Location) -> str:
    parts = []
    if loc.name is not None:
        parts.append(json.dumps(loc.name))
    if loc.file is not None:
        where = json.dumps(loc.file)
        if loc.line is not None:
            where += f":{loc.line}" + (f":{loc.col}" if loc.col is not None else "")
        parts.append("at " + where)
    return f"loc({' '.join(parts)})"
