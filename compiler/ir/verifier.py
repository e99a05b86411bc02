"""The verifier: SSA order, known ops, operand counts, attributes against the schema, and result
types against each op's type rule.

Errors name the op and its line, and show the lines around it: from the text the module was
parsed from, or else from the module's printed form.
"""
from __future__ import annotations

from typing import Any, Optional

from .core import Function, Module, Op, Value
from .ops.module_ops import module_op_types
from .registry import find_op
from .types import TypeInferenceError

CONTEXT_LINES = 2


class VerificationError(ValueError):
    """The module is not well formed; `.line` is the offending line (1-based) or None."""

    def __init__(self, message: str, line: Optional[int] = None, filename: Optional[str] = None,
                 snippet: str = "") -> None:
        self.message = message
        self.line = line
        self.filename = filename
        where = f"{filename or '<module>'}:{line}: " if line is not None else ""
        super().__init__(f"{where}error: {message}" + (f"\n{snippet}" if snippet else ""))


def verify(module: Module) -> None:
    """Check the whole module; raises VerificationError for the first problem found."""
    _Verifier(module).run()


class _Verifier:
    def __init__(self, module: Module) -> None:
        self.module = module
        self._printed: Optional[tuple[list[str], dict[Any, int]]] = None

    def run(self) -> None:
        m = self.module
        seen: set[str] = set()
        for fn in m.functions:
            if fn.name in seen:
                self.fail(f"function @{fn.name} is defined twice", fn)
            seen.add(fn.name)
            self.function(fn)
        for sym, (lo, hi) in m.dim_bounds.items():
            if lo < 0 or (hi is not None and hi < lo):
                self.fail(f"dim ?{sym} has empty or negative bounds [{lo}, {hi}]", None)

    def function(self, fn: Function) -> None:
        defined: set[Value] = set()
        for a in fn.args:
            if a in defined:
                self.fail(f"argument %{a.name} of @{fn.name} appears twice", fn)
            defined.add(a)
        for op in fn.ops:
            for i, v in enumerate(op.operands):
                if v not in defined:
                    later = any(v in o.results for o in fn.ops)
                    why = "is used before it is defined" if later else "is not defined in this function"
                    self.fail(f"operand {i} (%{v.name or '?'}) of '{op.name}' {why}", op)
            self.op(op)
            for v in op.results:
                if v in defined:
                    self.fail(f"'{op.name}' redefines %{v.name}", op)
                if v.owner is not op:
                    self.fail(f"result %{v.name} of '{op.name}' does not point back to its op", op)
                defined.add(v)
        for i, v in enumerate(fn.outputs):
            if v not in defined:
                self.fail(f"@{fn.name} returns %{v.name or '?'} (result {i}), which is not defined "
                          "in the function", fn)

    def op(self, op: Op) -> None:
        opdef = find_op(op.name)
        if opdef is None:
            self.fail(f"unknown op '{op.name}'", op)
        try:
            opdef.check_operand_count(len(op.operands))
            attrs = opdef.normalize_attrs(op.attrs)
            types = [v.type for v in op.operands]
            want = module_op_types(self.module, op.name, types, attrs)
            if want is None:
                want = opdef.infer(types, attrs)
        except TypeInferenceError as e:
            self.fail(str(e), op)
        got = [v.type for v in op.results]
        if len(want) != len(got):
            self.fail(f"'{op.name}' has {len(got)} results, its type rule gives {len(want)}", op)
        for i, (w, g) in enumerate(zip(want, got)):
            if w != g:
                operands = ", ".join(str(v.type) for v in op.operands)
                self.fail(f"'{op.name}' result {i} is declared {g}, but the op gives {w} for "
                          f"operands ({operands})", op)

    def fail(self, message: str, where: "Op | Function | None") -> None:
        line, lines, filename = self.locate(where)
        snippet = ""
        if line is not None and lines:
            lo, hi = max(1, line - CONTEXT_LINES), min(len(lines), line + CONTEXT_LINES)
            width = len(str(hi))
            snippet = "\n".join(f"{'>' if n == line else ' '} {n:>{width}} | {lines[n - 1]}"
                                for n in range(lo, hi + 1))
        if isinstance(where, Op) and where.loc is not None:
            message += f" [from {where.loc}]"
        raise VerificationError(message, line, filename, snippet)

    def locate(self, where: "Op | Function | None") -> tuple[Optional[int], list[str], Optional[str]]:
        m = self.module
        src_line = getattr(where, "src_line", None)
        if src_line is not None and m.source is not None:
            return src_line, m.source.splitlines(), m.source_file
        if where is None:
            return None, [], None
        if self._printed is None:
            from .printer import print_module
            line_map: dict[Any, int] = {}
            try:
                text = print_module(m, line_map=line_map)
            except Exception:  # a module too broken to print: report without context
                return None, [], None
            self._printed = (text.splitlines(), line_map)
        lines, line_map = self._printed
        return line_map.get(where), lines, "<printed module>"
