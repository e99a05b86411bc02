"""fuse-ops: partition each function into fused groups (TVM FuseOps rules) and make each group an
explicit `fused` op that calls a new module function `@fused_N` holding the group's ops.

Every op gets a class from its registry traits (never from its name, except the one table of
normalizations below):

    contraction   trait "contraction" (matmul, conv, gemm, linear, einsum...)   an anchor
    reduction     trait "reduction", or a normalization in REDUCTION_LIKE        an anchor
    elementwise   trait "elementwise" (broadcasting included)
    injective     trait "injective" (data movement: reshape, transpose, gather...)
    opaque        anything else, ops without "pure", and `constant` / `fused`: never fused

A group is valid when it holds at most one anchor and at most `max_ops` ops, and
- with a contraction anchor: the other ops are elementwise/injective epilogues (bias, activation,
  residual add, reshapes), and none of them feeds the contraction (no prologues: a matmul reads
  each input element many times, so a fused prologue would be recomputed per use);
- with a reduction anchor: the other ops are elementwise, before it (prologue) or after (epilogue);
- without an anchor: elementwise and injective ops.
Ops are visited in program order; each one (except a contraction, which always starts a group)
joins its producers' groups when the merged group stays valid, anchored groups first, and the
merge never makes the graph of groups cyclic: a depth-first search over the groups looks for a
path that leaves the merged set and comes back (what TVM's post-dominator analysis ensures).

A value computed in a group and also needed outside it becomes one more result of the `fused`
op: it is written once, never recomputed, so no work is duplicated (TVM instead refuses such
merges; multi-output groups fuse e.g. a residual add into the layer norm that reads it).

What gets wrapped: every group of two or more ops, and a lone anchor (contraction, reduction,
softmax, layer_norm...), because those are the kernels that need a schedule template chosen by
`kind`. A lone elementwise or injective op stays a plain op: wrapping it would add a function
and a call that say nothing a code generator does not already see from the op itself. Groups
whose results nobody uses stay unwrapped too (a `fused` op needs a result).

The body's arguments are the group's external inputs with exactly their types (symbolic dims
included); a `constant` read only inside the group moves into the body, one read elsewhere too
is passed as an operand. `constant` ops are not counted against `max_ops`. Bodies of existing
`fused` ops are never partitioned again, and a second run changes nothing.

Numerics: ops are moved, never changed, so the interpreter's results are bitwise identical.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Optional

from compiler.ir import Function, Module, Op, Value
from compiler.ir.ops.module_ops import MODULE_OPS

from .registry import register

# The registry has no trait for normalizations: they reduce over axes internally but return a
# full-size tensor, so they do not carry "reduction". This table is the one place fusion looks
# at op names: these ops are reduction-like anchors, and the value is the `kind` of a group
# anchored on one. (batch_norm is absent on purpose: at inference it is a per-channel affine map
# with no reduction; it is opaque here and fold-batchnorm removes it.)
REDUCTION_LIKE: dict[str, str] = {
    "softmax": "softmax",
    "log_softmax": "softmax",
    "layer_norm": "layer_norm",
    "rms_norm": "layer_norm",
    "group_norm": "reduction",
    "instance_norm": "reduction",
}

# The quantization maps are elementwise for fusion (each output element reads one element of x
# and of each scale / zero point) though the registry does not call them so: their parameters
# are per tensor or per axis, not NumPy-broadcast operands. Fused after an integer contraction
# they make its requantization epilogue (dynamic_quantize, a reduction over x, is absent).
QUANT_ELEMENTWISE = frozenset({"quantize", "dequantize", "requantize"})

CONTRACTION, REDUCTION, ELEMENTWISE, INJECTIVE, OPAQUE = (
    "contraction", "reduction", "elementwise", "injective", "opaque")
ANCHORS = (CONTRACTION, REDUCTION)


def op_class(op: Op) -> str:
    """The fusion class of an op, from its traits (see the module docstring)."""
    if op.name in MODULE_OPS:
        return OPAQUE
    opdef = op.opdef
    if not opdef.has("pure"):
        return OPAQUE
    if opdef.has("contraction"):
        return CONTRACTION
    if opdef.has("reduction") or op.name in REDUCTION_LIKE:
        return REDUCTION
    if opdef.has("elementwise") or op.name in QUANT_ELEMENTWISE:
        return ELEMENTWISE
    if opdef.has("injective"):
        return INJECTIVE
    return OPAQUE


@dataclass
class FusedGroup:
    """Ops of one group in program order, and the `kind` its `fused` op gets."""

    ops: list[Op]
    kind: str


def group_kind(ops: list[Op]) -> str:
    """A group's `kind`: contraction, softmax, layer_norm, reduction, elementwise or injective."""
    classes = [op_class(op) for op in ops]
    for op, c in zip(ops, classes):
        if c == CONTRACTION:
            return CONTRACTION
        if c == REDUCTION:
            return REDUCTION_LIKE.get(op.name, REDUCTION)
    return ELEMENTWISE if all(c == ELEMENTWISE for c in classes) else INJECTIVE


class _Partition:
    """Union-find over one function's ops with the checks that keep every group valid."""

    def __init__(self, fn: Function, max_ops: int) -> None:
        self.fn = fn
        self.max_ops = max_ops
        self.index = {op: i for i, op in enumerate(fn.ops)}
        self.cls = {op: op_class(op) for op in fn.ops}
        self.users: dict[Value, list[Op]] = fn.uses()
        self.parent: dict[Op, Op] = {}
        self.members: dict[Op, list[Op]] = {}  # root -> ops of its group

    def find(self, op: Op) -> Op:
        root = op
        while self.parent[root] is not root:
            root = self.parent[root]
        while self.parent[op] is not root:  # path compression
            self.parent[op], op = root, self.parent[op]
        return root

    def run(self) -> list[list[Op]]:
        for op in self.fn.ops:
            if self.cls[op] == OPAQUE:
                continue
            self.parent[op] = op
            self.members[op] = [op]
            if self.cls[op] == CONTRACTION:
                continue  # a contraction never takes a prologue: it only starts a group
            for root in self._producer_groups(op):
                mine = self.find(op)
                if root is not mine and self._can_merge(mine, root, op):
                    self.parent[root] = mine
                    self.members[mine] += self.members.pop(root)
        return [sorted(ops, key=self.index.__getitem__) for ops in self.members.values()]

    def _producer_groups(self, op: Op) -> list[Op]:
        """Groups of op's fusible producers: anchored ones first, then in operand order."""
        roots: list[Op] = []
        for v in op.operands:
            p = v.owner
            if p is not None and p in self.parent and self.find(p) not in roots:
                roots.append(self.find(p))
        anchored = [r for r in roots if any(self.cls[o] in ANCHORS for o in self.members[r])]
        return anchored + [r for r in roots if r not in anchored]

    def _can_merge(self, a: Op, b: Op, current: Op) -> bool:
        ops = self.members[a] + self.members[b]
        return (len(ops) <= self.max_ops and self._valid(ops)
                and not self._creates_cycle({a, b}, current))

    def _valid(self, ops: list[Op]) -> bool:
        anchors = [o for o in ops if self.cls[o] in ANCHORS]
        if len(anchors) > 1:
            return False
        if not anchors:
            return True  # elementwise and injective ops only
        anchor = anchors[0]
        if self.cls[anchor] == REDUCTION:
            return all(self.cls[o] == ELEMENTWISE for o in ops if o is not anchor)
        inside = set(ops)  # a contraction: epilogues only, nothing inside feeds it
        return all(v.owner not in inside for v in anchor.operands)

    def _creates_cycle(self, roots: set[Op], current: Op) -> bool:
        """Whether some path leaves the groups `roots` and comes back into them. Only ops up to
        `current` are grouped yet; later ops cannot lead back to earlier ones, so the search
        stops there."""
        limit = self.index[current]
        stack = [s for r in roots for s in self._successors(r, limit) if s not in roots]
        seen: set[Op] = set()
        while stack:
            g = stack.pop()
            if g in seen:
                continue
            seen.add(g)
            for s in self._successors(g, limit):
                if s in roots:
                    return True
                stack.append(s)
        return False

    def _successors(self, node: Op, limit: int) -> list[Op]:
        """Groups (roots) or ungrouped ops that read a result of `node`'s group, up to `limit`."""
        ops = self.members[node] if node in self.members else [node]
        out = []
        for op in ops:
            for r in op.results:
                for u in self.users.get(r, ()):
                    if self.index[u] <= limit:
                        out.append(self.find(u) if u in self.parent else u)
        return out


def partition(fn: Function, max_ops: int = 16) -> list[FusedGroup]:
    """The groups of `fn` that fuse-ops wraps (two or more ops, or one anchor), in program order
    of their last op. A pure function of the graph: nothing is changed."""
    groups = []
    for ops in _Partition(fn, max(1, max_ops)).run():
        if len(ops) >= 2 or op_class(ops[0]) in ANCHORS:
            groups.append(FusedGroup(ops, group_kind(ops)))
    index = {op: i for i, op in enumerate(fn.ops)}
    return sorted(groups, key=lambda g: index[g.ops[-1]])


@register("fuse-ops")
class FuseOps:
    """Wrap each fused group in a `fused` op calling a new function @fused_N (see module doc)."""

    max_ops: int = 16

    def run(self, module: Module) -> bool:
        bodies = {op.attrs["body"] for op in module.ops() if op.name == "fused"}
        changed = False
        for fn in [f for f in module.functions if f.name not in bodies]:
            changed |= fuse_function(module, fn, self.max_ops)
        return changed


def fuse_function(module: Module, fn: Function, max_ops: int = 16) -> bool:
    """Replace each group of `partition(fn)` by a `fused` op; returns whether any was made."""
    groups = partition(fn, max_ops)
    if not groups:
        return False
    index = {op: i for i, op in enumerate(fn.ops)}
    users = fn.uses()
    returned = set(fn.outputs)
    position: dict[Op, int] = dict(index)  # sort key of each op of the new function
    removed: set[Op] = set()
    renamed: dict[Value, Value] = {}
    made: list[Op] = []
    for group in groups:
        outlined = _outline(module, fn, group, index, users, returned)
        if outlined is None:
            continue
        fused, moved, outer_results = outlined
        removed.update(moved)
        renamed.update(zip(outer_results, fused.results))
        position[fused] = index[group.ops[-1]]
        made.append(fused)
    if not made:
        return False
    kept = [op for op in fn.ops if op not in removed] + made
    for op in kept:
        op.operands = [renamed.get(v, v) for v in op.operands]
    fn.outputs = [renamed.get(v, v) for v in fn.outputs]
    fn.ops = _topological(kept, position)
    return True


def _outline(module: Module, fn: Function, group: FusedGroup, index: dict[Op, int],
             users: dict[Value, list[Op]], returned: set[Value]
             ) -> Optional[tuple[Op, list[Op], list[Value]]]:
    """Move the group's ops (and constants read only by them) into a new function; returns the
    `fused` op calling it, the ops moved out of `fn`, and the old values its results replace.
    None when the group has no result used outside it."""
    members = set(group.ops)
    consts = {v.owner for op in group.ops for v in op.operands
              if v.owner is not None and v.owner.name == "constant" and v not in returned
              and all(u in members for u in users.get(v, ()))}
    body_ops = sorted(members | consts, key=index.__getitem__)
    inside = set(body_ops)
    inputs: list[Value] = []
    for op in body_ops:
        for v in op.operands:
            if v.owner not in inside and v not in inputs:
                inputs.append(v)
    outputs = [r for op in group.ops for r in op.results
               if r in returned or any(u not in inside for u in users.get(r, ()))]
    if not outputs:
        return None
    args = [Value(v.type, v.name) for v in inputs]
    arg_of = dict(zip(inputs, args))
    for op in body_ops:
        op.operands = [arg_of.get(v, v) for v in op.operands]
    name = _fresh_name(module)
    module.functions.append(Function(name, args, body_ops, outputs))
    fused = Op("fused", inputs, [v.type for v in outputs], {"body": name, "kind": group.kind},
               result_names=[v.name for v in outputs])
    return fused, body_ops, outputs


def _fresh_name(module: Module) -> str:
    taken = {f.name for f in module.functions}
    n = 0
    while f"fused_{n}" in taken:
        n += 1
    return f"fused_{n}"


def _topological(ops: list[Op], position: dict[Op, int]) -> list[Op]:
    """Ops in an order where each operand is defined before use, as close to `position` as the
    dependencies allow (a fused op sits where its group's last op was)."""
    producer = {r: op for op in ops for r in op.results}
    waiting = {op: len({producer[v] for v in op.operands if v in producer}) for op in ops}
    readers: dict[Op, list[Op]] = {}
    for op in ops:
        for p in {producer[v] for v in op.operands if v in producer}:
            readers.setdefault(p, []).append(op)
    order = {op: i for i, op in enumerate(ops)}  # tie-break: fused ops after kept ops
    ready = [(position[op], order[op], op) for op in ops if waiting[op] == 0]
    heapq.heapify(ready)
    out: list[Op] = []
    while ready:
        _, _, op = heapq.heappop(ready)
        out.append(op)
        for r in readers.get(op, ()):
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, (position[r], order[r], r))
    if len(out) != len(ops):
        raise RuntimeError("fuse-ops made the graph of groups cyclic (a bug in the partition)")
    return out
