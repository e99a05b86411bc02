"""The rewrite driver: small rules, each a function that looks at one op and returns None for
"no match" or the values that replace the op's results, run over a worklist to a fixpoint.

    def mul_by_one(op: Op, rw: Rewriter):      # x*1 -> x
        if op.name == "mul" and rw.is_splat(op.operands[1], 1) and op.result.type == op.operands[0].type:
            return op.operands[0]
        return None

    changed = apply_rules(module, [mul_by_one])

Rules build new ops with `rw.op(name, *operands, **attrs)`: they are inserted before the op being
rewritten and visited in turn. All mutation goes through the driver, which keeps the use lists
and removes ops that a rewrite left without users (when pure).
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from compiler import ir
from compiler.ir import Function, Module, Op, Value
from compiler.ir.ops.module_ops import module_op_types

RuleResult = Union[None, Value, Sequence[Value]]
Rule = Callable[[Op, "Rewriter"], RuleResult]


class Rewriter:
    """What a rule sees besides the op: constant values, and a way to build replacement ops."""

    def __init__(self, module: Module, fn: Function) -> None:
        self.module = module
        self.fn = fn
        self._pending: list[Op] = []
        self.users: dict[Value, list[Op]] = {}
        for op in fn.ops:
            self._add_uses(op)

    # --- queries ------------------------------------------------------------------------------
    def constant_value(self, v: Value) -> Optional[np.ndarray]:
        """The array of v when a `constant` op defines it, else None."""
        if v.owner is not None and v.owner.name == "constant":
            return self.module.constants[v.owner.attrs["name"]]
        return None

    def is_splat(self, v: Value, value: float) -> bool:
        """v is a constant whose every element equals `value`."""
        arr = self.constant_value(v)
        return arr is not None and arr.size > 0 and bool(np.all(arr == value))

    def num_users(self, v: Value) -> int:
        return len(self.users.get(v, ())) + sum(1 for o in self.fn.outputs if o is v)

    # --- building -----------------------------------------------------------------------------
    def op(self, name: str, /, *operands: Value, **attrs: Any) -> "Value | list[Value]":
        """A new op (type-inferred) to be inserted before the op being rewritten."""
        opdef = ir.get_op(name)
        attrs = opdef.normalize_attrs(attrs)
        types = [v.type for v in operands]
        results = module_op_types(self.module, name, types, attrs)
        if results is None:
            results = opdef.infer(types, attrs)
        new = Op(name, list(operands), results, attrs)
        self._pending.append(new)
        return new.results[0] if len(new.results) == 1 else list(new.results)

    def constant(self, array: np.ndarray, name: str = "cst") -> Value:
        key = self.module.add_constant(np.asarray(array), name)
        return self.op("constant", name=key)  # type: ignore[return-value]

    # --- bookkeeping --------------------------------------------------------------------------
    def _add_uses(self, op: Op) -> None:
        for v in op.operands:
            self.users.setdefault(v, []).append(op)

    def _drop_uses(self, op: Op) -> None:
        for v in op.operands:
            lst = self.users.get(v)
            if lst is not None and op in lst:
                lst.remove(op)

    def replace_uses(self, old: Value, new: Value) -> None:
        """Every reader of `old` reads `new` instead (also the function's outputs)."""
        for user in self.users.pop(old, []):
            user.operands = [new if v is old else v for v in user.operands]
            self.users.setdefault(new, []).append(user)
        self.fn.outputs = [new if v is old else v for v in self.fn.outputs]


def apply_rules(module: Module, rules: Sequence[Rule], max_rewrites: int = 100_000) -> bool:
    """Apply rules to every op of every function until none matches; returns whether anything
    changed. A rule's replacement must have the replaced results' types."""
    changed = False
    for fn in module.functions:
        changed |= _run_function(module, fn, rules, max_rewrites)
    return changed


def _run_function(module: Module, fn: Function, rules: Sequence[Rule], budget: int) -> bool:
    rw = Rewriter(module, fn)
    work = deque(fn.ops)
    alive = set(fn.ops)
    changed = False
    while work:
        op = work.popleft()
        if op not in alive:
            continue
        for rule in rules:
            res = rule(op, rw)
            if res is None:
                rw._pending.clear()
                continue
            new_values = [res] if isinstance(res, Value) else list(res)
            if len(new_values) != len(op.results):
                raise ValueError(f"rule {rule.__name__} replaced {len(op.results)} results of "
                                 f"'{op.name}' with {len(new_values)} values")
            for old, new in zip(op.results, new_values):
                if old.type != new.type:
                    raise ValueError(f"rule {rule.__name__} replaced '{op.name}' result {old.type} "
                                     f"by a value of type {new.type}")
            # insert the rule's new ops before op, then reroute op's users
            at = fn.ops.index(op)
            fn.ops[at:at] = rw._pending
            for new_op in rw._pending:
                rw._add_uses(new_op)
                alive.add(new_op)
                work.append(new_op)
            rw._pending = []
            for old, new in zip(op.results, new_values):
                if old is not new:
                    for user in rw.users.get(old, []):
                        work.append(user)
                    rw.replace_uses(old, new)
            _erase_if_dead(fn, rw, op, alive, work)
            changed = True
            budget -= 1
            if budget <= 0:
                raise RuntimeError("rewrite rules did not reach a fixpoint (a rule undoes another?)")
            break
    return changed


def _erase_if_dead(fn: Function, rw: Rewriter, op: Op, alive: set, work: deque) -> None:
    """Remove op, and then its operands' producers, while they are pure and unused."""
    stack = [op]
    while stack:
        o = stack.pop()
        if o not in alive or not o.opdef.has("pure") or any(rw.num_users(r) for r in o.results):
            continue
        fn.ops.remove(o)
        alive.discard(o)
        rw._drop_uses(o)
        stack.extend(v.owner for v in o.operands if v.owner is not None)
