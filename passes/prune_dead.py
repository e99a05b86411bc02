"""prune-dead: remove pure ops whose results nobody uses, and constants no op reads."""
from __future__ import annotations

from compiler.ir import Module

from .registry import register


@register("prune-dead")
class PruneDead:
    """Drop unused pure ops (walking backwards, so chains go at once) and unreferenced constants."""

    def run(self, module: Module) -> bool:
        changed = False
        for fn in module.functions:
            live = set(fn.outputs)
            kept = []
            for op in reversed(fn.ops):
                if any(r in live for r in op.results) or not op.opdef.has("pure"):
                    kept.append(op)
                    live.update(op.operands)
            if len(kept) != len(fn.ops):
                fn.ops = kept[::-1]
                changed = True
        used = {op.attrs["name"] for op in module.ops() if op.name == "constant"}
        for name in [k for k in module.constants if k not in used]:
            del module.constants[name]
            changed = True
        return changed
