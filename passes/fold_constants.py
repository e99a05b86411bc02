"""fold-constants: run pure ops whose operands are all constants, and keep their results as new
module constants.

Folding runs each op through the reference interpreter (`compiler.ir.interpreter.run_op`), so a
folded value is bit for bit what the interpreter computes at run time: there is one semantics.
Two rules, run by the rewrite driver (chains fold in one run):

- an op whose operands are all `constant`s (ops without operands, such as `full` and `range`,
  included) becomes one `constant` per result, unless a result has symbolic dims or more than
  `max_elements` elements (huge broadcasts and tiles stay ops, so they are not materialized);
- `shape_of(x)` becomes a constant when the dims it reads are static in x's type, whatever x is.

An op whose reference fails on its constant operands (an out-of-range gather index, say) is left
alone: it fails at run time as it would have without the pass. The module constants that folding
leaves unread are not deleted here: prune-dead does that.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from compiler.ir import Module, Op, Value
from compiler.ir.interpreter import fold, run_op

from .registry import register
from .rewrite import Rewriter, Rule, apply_rules


def constant_for(rw: Rewriter, array: np.ndarray, like: Value) -> Value:
    """A new module constant holding `array`, named after the value it replaces (unless that
    name is a number, which says nothing)."""
    named = like.name is not None and not like.name.isdigit()
    v = rw.constant(np.array(array, copy=True, order="C"), like.name if named else "folded")
    v.name = v.owner.attrs["name"]  # type: ignore[union-attr]  # print it as %key, as builders do
    return v


def fold_pure_op(max_elements: int) -> Rule:
    """The rule folding ops with constant operands whose results have at most max_elements."""

    def fold_pure_op(op: Op, rw: Rewriter) -> Optional[list[Value]]:  # op(constants) -> constant
        results = fold(rw.module, op, [rw.constant_value(v) for v in op.operands], max_elements)
        if results is None:
            return None
        return [constant_for(rw, arr, r) for arr, r in zip(results, op.results)]

    return fold_pure_op


def fold_static_shape_of(op: Op, rw: Rewriter) -> Optional[Value]:  # shape_of(x: static) -> cst
    if op.name != "shape_of":
        return None
    t = op.operands[0].type
    picked = range(t.rank)[op.attrs.get("start", 0):op.attrs.get("end")]
    if any(isinstance(t.shape[i], str) for i in picked):
        return None
    # the reference reads only the shape: a zero-stride stand-in of that shape (the dims it does
    # not read set to 1) gives the value through the interpreter without allocating x
    stand_in = np.broadcast_to(np.zeros((), t.dtype.np_dtype),
                               [d if isinstance(d, int) else 1 for d in t.shape])
    (value,) = run_op(rw.module, op, [stand_in], env={})
    return constant_for(rw, value, op.result)


@register("fold-constants")
class FoldConstants:
    """Replace pure ops on constants (and shape_of of static dims) by constants; results of more
    than `max_elements` elements stay ops."""

    max_elements: int = 1 << 20

    def run(self, module: Module) -> bool:
        return apply_rules(module, [fold_static_shape_of, fold_pure_op(self.max_elements)])
