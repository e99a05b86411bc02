"""Specialize a module with symbolic dims to one binding of its symbols (static shapes).

StableHLO's bounded dynamism covers few ops on XLA's CPU backend, so a module with symbolic dims
is compiled once per distinct input shape, as `jax.jit` retraces: every symbol is replaced by its
value (in types and in `dims` attributes) and every result type is inferred again through the
registry's type rules.
"""
from __future__ import annotations

from typing import Mapping

from compiler.ir import Module, TensorType, clone_module
from compiler.ir.ops.module_ops import module_op_types


def _static(t: TensorType, env: Mapping[str, int]) -> TensorType:
    return t.with_shape(env[d] if isinstance(d, str) else d for d in t.shape)


def specialize(module: Module, env: Mapping[str, int]) -> Module:
    """A copy of `module` with every symbolic dim replaced by env[symbol]."""
    out = clone_module(module)
    out.dim_bounds = {}
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        done.add(name)
        fn = out.function(name)
        for a in fn.args:
            a.type = _static(a.type, env)
        for op in fn.ops:
            for key, spec in op.opdef.attrs.items():
                if spec.kind == "dims" and op.attrs.get(key) is not None:
                    op.attrs[key] = tuple(env[d] if isinstance(d, str) else d
                                          for d in op.attrs[key])
            if op.name == "fused":
                visit(op.attrs["body"])
            types = module_op_types(out, op.name, [v.type for v in op.operands], op.attrs)
            if types is None:
                types = op.opdef.infer([v.type for v in op.operands], op.attrs)
            for v, t in zip(op.results, types):
                v.type = t
    visit(out.main.name)
    return out
