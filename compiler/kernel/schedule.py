"""Schedules: loop transformations on a kernel's stages, recorded as a replayable trace.

    s = Schedule(outputs=[out], inputs=[a, b])
    io, ii = s.split("mm", "mm.i0", 8)          # loop handles are names: "<stage>.<axis>..."
    s.reorder("mm", io, jo, "mm.r0", ii, ji)
    s.vectorize("mm", ji); s.parallel("mm", io)
    kernel = s.build("matmul_kernel")
    Schedule.replay(outputs, inputs, s.trace_json())   # the same kernel again

Primitives: split, reorder, fuse, vectorize, parallel, unroll, bind (GPU), compute_at,
cache_write, cache_read, set_scope, pack (a constant input in a blocked layout). Each checks
legality and raises `ScheduleError`; each appends (name, args) to the trace.

Loops of a stage are its axes, split into outer/inner ("x" -> "x.o", "x.i") or fused
("x", "y" -> "x.y"). Building walks the leaf loops in order: the index of every original axis is
rebuilt from the leaves, a split that does not divide gets a guard, and a reduction's
initialization is placed before its first reduce loop (repeating the spatial loops inside it).
`compute_at(P, C, loop)` computes P inside C's loop, over the region of P that C reads in one
iteration (found from C's index expressions); with scope "local" P's buffer is that region only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from compiler.ir import dtypes as dt

from .ir import (canon, Alloc, Buffer, Const, Expr, For, If, KernelError, Kernel, Load, Stmt,
                 TensorLoad, Var, as_expr, binop, const, map_stmt, seq, substitute, walk_expr)
from .te import Axis, Stage, Tensor, compute, stages_of


class ScheduleError(KernelError):
    """An illegal schedule step: names the primitive, the stage and the loop."""


@dataclass(eq=False)
class Loop:
    name: str
    var: Var
    extent: Expr
    reduce: bool
    kind: str = "serial"


@dataclass
class _Split:
    parent: Loop
    outer: Loop
    inner: Loop
    factor: int


@dataclass
class _Fuse:
    outer: Loop
    inner: Loop
    fused: Loop


@dataclass(eq=False)
class StageSchedule:
    stage: Stage
    roots: list[Loop]
    leaves: list[Loop]
    relations: list[Any] = field(default_factory=list)
    attach: Optional[tuple["StageSchedule", str]] = None
    scope: str = "global"
    inline_copy: bool = False
    # region per spatial root axis when attached: (base Expr, extent Expr); set during build
    region: Optional[list[tuple[Expr, Expr]]] = None
    ragged: bool = True  # the region may reach past the tensor's end (a ragged consumer tile)
    ragged_axes: Optional[set] = None  # which axes may (None: all of them)

    @property
    def name(self) -> str:
        return self.stage.name

    def loop(self, name: str, prim: str) -> Loop:
        for lp in self.leaves:
            if lp.name == name:
                return lp
        raise ScheduleError(f"{prim}: stage {self.name} has no loop {name!r}; its loops are "
                            + ", ".join(lp.name for lp in self.leaves))


def _const_int(e: Expr) -> Optional[int]:
    return e.value if isinstance(e, Const) and isinstance(e.value, int) else None


class Schedule:
    def __init__(self, outputs: Sequence[Tensor], inputs: Sequence[Tensor] = ()) -> None:
        self.outputs = list(outputs)
        self.inputs = list(inputs)
        self.trace: list[tuple[str, list[Any]]] = []
        self.stages: dict[str, StageSchedule] = {}
        self.order: list[StageSchedule] = []
        self.packed: dict[str, Any] = {}  # input name -> (PackedLayout)
        for st in stages_of(self.outputs):
            self._add(st)

    def _add(self, st: Stage, index: Optional[int] = None) -> StageSchedule:
        if st.name in self.stages:
            raise ScheduleError(f"two stages named {st.name}")
        roots = [Loop(a.name, a.var, a.extent, False) for a in st.axes]
        roots += [Loop(a.name, a.var, a.extent, True) for a in st.raxes]
        ss = StageSchedule(st, roots, list(roots))
        self.stages[st.name] = ss
        if index is None:
            self.order.append(ss)
        else:
            self.order.insert(index, ss)
        return ss

    def __getitem__(self, name: str) -> StageSchedule:
        if isinstance(name, Tensor):
            name = name.stage.name if name.stage is not None else name.name
        try:
            return self.stages[name]
        except KeyError:
            raise ScheduleError(f"no stage {name!r}; stages are " + ", ".join(self.stages)) from None

    def _record(self, prim: str, *args: Any) -> None:
        self.trace.append((prim, list(args)))

    # ----------------------------------------------------------------------------- primitives

    def split(self, stage: str, loop: str, factor: int) -> tuple[str, str]:
        ss = self[stage]
        lp = ss.loop(loop, "split")
        if ss.stage.extern is not None:
            raise ScheduleError(f"split: stage {stage} is hand-written (extern)")
        if not isinstance(factor, int) or factor < 1:
            raise ScheduleError(f"split: factor must be a positive int, got {factor!r}")
        if lp.kind != "serial":
            raise ScheduleError(f"split: loop {loop} of {stage} is already {lp.kind}")
        ext = _const_int(lp.extent)
        outer_ext = (ext + factor - 1) // factor if ext is not None else \
            binop("//", binop("+", lp.extent, factor - 1), factor)
        outer = Loop(loop + ".o", Var(f"{stage}:{loop}.o"), as_expr(outer_ext), lp.reduce)
        inner = Loop(loop + ".i", Var(f"{stage}:{loop}.i"), Const(factor), lp.reduce)
        k = ss.leaves.index(lp)
        ss.leaves[k:k + 1] = [outer, inner]
        ss.relations.append(_Split(lp, outer, inner, factor))
        self._record("split", stage, loop, factor)
        return outer.name, inner.name

    def reorder(self, stage: str, *loops: str) -> None:
        ss = self[stage]
        picked = [ss.loop(n, "reorder") for n in loops]
        if len(set(map(id, picked))) != len(picked):
            raise ScheduleError(f"reorder: a loop is named twice in {list(loops)}")
        slots = sorted(ss.leaves.index(lp) for lp in picked)
        for k, lp in zip(slots, picked):
            ss.leaves[k] = lp
        self._record("reorder", stage, *loops)

    def fuse(self, stage: str, outer: str, inner: str) -> str:
        ss = self[stage]
        o, i = ss.loop(outer, "fuse"), ss.loop(inner, "fuse")
        ko, ki = ss.leaves.index(o), ss.leaves.index(i)
        if ki != ko + 1:
            raise ScheduleError(f"fuse: {inner} must directly follow {outer} in stage {stage}")
        if o.reduce != i.reduce:
            raise ScheduleError(f"fuse: cannot fuse a reduce loop with a spatial one in {stage}")
        fused = Loop(f"{outer}.{inner}", Var(f"{stage}:{outer}.{inner}"), o.extent * i.extent,
                     o.reduce)
        ss.leaves[ko:ki + 1] = [fused]
        ss.relations.append(_Fuse(o, i, fused))
        self._record("fuse", stage, outer, inner)
        return fused.name

    def _kind(self, prim: str, kind: str, stage: str, loop: str) -> None:
        ss = self[stage]
        lp = ss.loop(loop, prim)
        if lp.kind != "serial":
            raise ScheduleError(f"{prim}: loop {loop} of {stage} is already {lp.kind}")
        if kind in ("vectorized", "unrolled") and _const_int(lp.extent) is None and not (
                ss.attach is not None and not lp.reduce):  # attached: sized by its region
            raise ScheduleError(f"{prim}: loop {loop} of {stage} has a symbolic extent "
                                f"({lp.extent}); split it by a constant first")
        if kind == "vectorized":
            ext = _const_int(lp.extent) or 1
            if ext > 64:
                raise ScheduleError(f"vectorize: loop {loop} of {stage} has {ext} iterations; "
                                    "split it to at most 64 lanes")
            if ss.leaves[-1] is not lp:
                raise ScheduleError(f"vectorize: {loop} is not the innermost loop of {stage}")
        if kind == "parallel" and lp.reduce:
            raise ScheduleError(f"parallel: {loop} of {stage} is a reduce loop (a race)")
        if kind == "parallel" and (ss.attach is not None or any(
                o.kind == "parallel" for o in ss.leaves)):
            raise ScheduleError(f"parallel: stage {stage} already has a parallel loop or is "
                                "computed inside another stage")
        lp.kind = kind
        self._record(prim, stage, loop)

    def vectorize(self, stage: str, loop: str) -> None:
        self._kind("vectorize", "vectorized", stage, loop)

    def parallel(self, stage: str, loop: str) -> None:
        self._kind("parallel", "parallel", stage, loop)

    def unroll(self, stage: str, loop: str) -> None:
        self._kind("unroll", "unrolled", stage, loop)

    def bind(self, stage: str, loop: str, tag: str) -> None:
        if tag not in ("gpu.block.x", "gpu.block.y", "gpu.block.z",
                       "gpu.thread.x", "gpu.thread.y", "gpu.thread.z"):
            raise ScheduleError(f"bind: unknown GPU tag {tag!r}")
        ss = self[stage]
        lp = ss.loop(loop, "bind")
        if lp.reduce:
            raise ScheduleError(f"bind: {loop} of {stage} is a reduce loop")
        lp.kind = tag
        self._record("bind", stage, loop, tag)

    def set_scope(self, stage: str, scope: str) -> None:
        if scope not in ("global", "local", "shared"):
            raise ScheduleError(f"set_scope: unknown scope {scope!r}")
        ss = self[stage]
        if ss.stage.outputs[0] in self.outputs:
            raise ScheduleError(f"set_scope: {stage} is a kernel output; it stays global")
        ss.scope = scope
        self._record("set_scope", stage, scope)

    def compute_at(self, stage: str, consumer: str, loop: str) -> None:
        ss, cs = self[stage], self[consumer]
        cs.loop(loop, "compute_at")
        if ss is cs:
            raise ScheduleError(f"compute_at: {stage} cannot be computed inside itself")
        if ss.stage.extern is not None:
            raise ScheduleError(f"compute_at: {stage} is hand-written (extern)")
        if ss.stage.outputs[0] in self.outputs:
            raise ScheduleError(f"compute_at: {stage} is a kernel output")
        readers = [o for o in self.order if ss.stage.outputs[0] in o.stage.inputs()]
        for r in readers:
            if r is not cs and r.attach != (cs, loop):
                raise ScheduleError(
                    f"compute_at: {stage} is also read by {r.name}, which is not computed at "
                    f"{consumer}.{loop}")
        if any(lp.kind == "parallel" for lp in ss.leaves):
            raise ScheduleError(f"compute_at: {stage} has a parallel loop")
        ss.attach = (cs, loop)
        # keep producers before consumers in the emission order
        self.order.remove(ss)
        self.order.insert(self.order.index(cs), ss)
        self._record("compute_at", stage, consumer, loop)

    def cache_write(self, stage: str, scope: str = "local") -> str:
        """Compute `stage` into a new stage `<stage>.local` (scope `scope`); `stage` becomes a
        copy from it. Returns the new stage's name (compute_at it inside the copy's loops)."""
        ss = self[stage]
        st = ss.stage
        if st.extern is not None:
            raise ScheduleError(f"cache_write: {stage} is hand-written (extern)")
        if ss.relations or ss.attach is not None:
            raise ScheduleError(f"cache_write: apply it before other primitives on {stage}")
        name = stage + ".local"
        from .te import reduce as te_reduce
        old = st.outputs[0]
        if st.is_reduction:
            spatial = [a.var for a in st.axes]
            red = [a.var for a in st.raxes]

            def body(*vs: Var) -> Expr:
                return substitute(st.body, dict(zip(spatial + red, vs)))
            cache = te_reduce(name, old.shape, [a.extent for a in st.raxes], body, st.combiner,
                              st.init)
        else:
            cache = compute(name, old.shape, lambda *vs: substitute(
                st.body, dict(zip([a.var for a in st.axes], vs))))
        # the old stage becomes a copy of the cache
        new_axes = [Axis(a.var, a.extent) for a in st.axes]
        st.raxes = []
        st.combiner = None
        st.init = None
        st.body = cache[tuple(a.var for a in new_axes)]
        st.axes = new_axes
        roots = [Loop(a.name, a.var, a.extent, False) for a in st.axes]
        ss.roots, ss.leaves, ss.relations = roots, list(roots), []
        cs = self._add(cache.stage, self.order.index(ss))
        cs.scope = scope
        self._record("cache_write", stage, scope)
        return name

    def cache_read(self, tensor: str, scope: str, readers: Sequence[str],
                   layout: Optional[Sequence[int]] = None) -> str:
        """Copy input/stage tensor `tensor` into a new stage `<tensor>.<scope>` that `readers`
        read instead. Returns the new stage's name. `layout`, a permutation of the tensor's
        axes, stores the copy transposed: copy[x[layout[0]], x[layout[1]], ...] = tensor[x]
        (e.g. [1, 0] gives a micro-kernel contiguous rows of a matrix read by column)."""
        src = self._tensor(tensor, "cache_read")
        perm = list(range(src.ndim)) if layout is None else list(layout)
        if sorted(perm) != list(range(src.ndim)):
            raise ScheduleError(f"cache_read: layout {layout} is not a permutation of the "
                                f"{src.ndim} axes of {tensor}")
        name = f"{tensor}.{scope}"
        inv = [perm.index(d) for d in range(src.ndim)]
        copy = compute(name, [src.shape[d] for d in perm],
                       lambda *vs: src[tuple(vs[inv[d]] for d in range(src.ndim))])
        for r in readers:
            rs = self[r]
            if src not in rs.stage.inputs():
                raise ScheduleError(f"cache_read: {r} does not read {tensor}")
            _replace_reads(rs.stage, src, copy, perm)
        first = min(self.order.index(self[r]) for r in readers)
        cs = self._add(copy.stage, first)
        cs.scope = scope
        if layout is None:
            self._record("cache_read", tensor, scope, list(readers))
        else:
            self._record("cache_read", tensor, scope, list(readers), perm)
        return name

    def pack(self, tensor: str, axis: int, block: int, group: int = 1) -> None:
        """Lay out constant input `tensor` (2-D [K, N] with axis 1, or [N, K] with axis 0: the
        blocked axis is N) as [ceil(N/block), K, block] at compile time, zero-padded, so that a
        micro-kernel reads `block` contiguous columns per row of K (see `pack_array`). With
        `group` > 1, `group` consecutive elements of K are adjacent inside a block:
        [ceil(N/block), ceil(K/group), block, group] (int8 weights: the 4 bytes one i32 lane
        multiplies). Reads keep their logical indices; the build maps them to the layout."""
        src = self._tensor(tensor, "pack")
        if src.stage is not None:
            raise ScheduleError(f"pack: {tensor} is computed in the kernel; only inputs pack")
        if src.ndim != 2 or axis not in (0, 1):
            raise ScheduleError(f"pack: {tensor} must be 2-D and packed along axis 0 or 1")
        if not isinstance(block, int) or block < 1:
            raise ScheduleError(f"pack: block must be a positive int, got {block!r}")
        if not isinstance(group, int) or group < 1:
            raise ScheduleError(f"pack: group must be a positive int, got {group!r}")
        self.packed[tensor] = (axis, block) if group == 1 else (axis, block, group)
        self._record("pack", tensor, axis, block, *([group] if group > 1 else []))

    def _tensor(self, name: str, prim: str) -> Tensor:
        for t in self.inputs:
            if t.name == name:
                return t
        for ss in self.order:
            for t in ss.stage.outputs:
                if t.name == name:
                    return t
        raise ScheduleError(f"{prim}: no tensor named {name!r}")

    # ----------------------------------------------------------------------------- trace

    def trace_json(self) -> str:
        return json.dumps([[p, a] for p, a in self.trace])

    def apply_trace(self, trace: "str | list") -> None:
        steps = json.loads(trace) if isinstance(trace, str) else trace
        for prim, args in steps:
            if prim not in PRIMITIVES:
                raise ScheduleError(f"trace: unknown primitive {prim!r}")
            getattr(self, prim)(*args)

    # ----------------------------------------------------------------------------- build

    def build(self, name: str, dims: Sequence[Var] = ()) -> Kernel:
        return _Builder(self).build(name, list(dims))


PRIMITIVES = ("split", "reorder", "fuse", "vectorize", "parallel", "unroll", "bind",
              "compute_at", "cache_write", "cache_read", "set_scope", "pack")


def pack_array(arr: Any, axis: int, block: int, group: int = 1) -> Any:
    """The packed layout of `Schedule.pack` as a NumPy array: [K, N] (axis 1) or [N, K]
    (axis 0) -> [ceil(N/block), K, block], zero-padded along N; with group > 1,
    [ceil(N/block), ceil(K/group), block, group], zero-padded along K too."""
    import numpy as np
    a = np.asarray(arr)
    if axis == 0:
        a = a.T
    K, N = a.shape
    if group > 1:
        nb, kg = -(-N // block), -(-K // group)
        out = np.zeros((kg * group, nb * block), a.dtype)
        out[:K, :N] = a
        return np.ascontiguousarray(out.reshape(kg, group, nb, block).transpose(2, 0, 3, 1))
    nb = -(-N // block)
    out = np.zeros((nb * block, K), a.dtype)
    out[:N] = a.T
    return np.ascontiguousarray(out.reshape(nb, block, K).transpose(0, 2, 1))


def _replace_reads(st: Stage, old: Tensor, new: Tensor,
                   perm: Optional[Sequence[int]] = None) -> None:
    from .ir import _rebuild

    def go(x: Expr) -> Expr:
        if isinstance(x, TensorLoad) and x.tensor is old:
            idx = [go(i) for i in x.indices]
            if perm is not None:
                idx = [idx[d] for d in perm]
            return TensorLoad(new, tuple(idx), new.dtype, x.lanes)
        return _rebuild(x, go, {})
    st.body = go(st.body) if st.body is not None else None


# --------------------------------------------------------------------------------------------
# building loop nests

def _linear(e: Expr, vars_: set) -> Optional[tuple[dict, Expr]]:
    """e = sum(c_v * v for v in vars_) + rest, with rest free of vars_; None if not affine."""
    if isinstance(e, Var):
        return ({e: 1}, Const(0)) if e in vars_ else ({}, e)
    if isinstance(e, Const):
        return {}, e
    if not any(isinstance(x, Var) and x in vars_ for x in walk_expr(e)):
        return {}, e
    if isinstance(e, Expr) and type(e).__name__ == "Bin":
        if e.op in ("+", "-"):
            a, b = _linear(e.a, vars_), _linear(e.b, vars_)
            if a is None or b is None:
                return None
            sign = 1 if e.op == "+" else -1
            co = dict(a[0])
            for v, c in b[0].items():
                co[v] = co.get(v, 0) + sign * c
            return co, binop(e.op, a[1], b[1])
        if e.op == "*":
            for x, y in ((e.a, e.b), (e.b, e.a)):
                if isinstance(y, Const) and isinstance(y.value, int):
                    a = _linear(x, vars_)
                    if a is None:
                        return None
                    return {v: c * y.value for v, c in a[0].items()}, a[1] * y.value
    return None


def _bound(e: Expr, ranges: dict) -> Optional[tuple[Expr, int]]:
    """Min and (constant) extent of e as the vars in `ranges` (var -> constant extent) vary."""
    lin = _linear(e, set(ranges))
    if lin is None:
        return None
    co, rest = lin
    lo: Expr = rest
    ext = 1
    for v, c in co.items():
        n = ranges[v]
        if c < 0:
            lo = lo + c * (n - 1)
        ext += abs(c) * (n - 1)
    return lo, ext


class _Builder:
    def __init__(self, sch: Schedule) -> None:
        self.sch = sch
        # tensor -> (buffer, bases or None): how reads of a tensor map to memory
        self.where: dict[int, tuple[Buffer, Optional[list[Expr]]]] = {}
        self.allocs_global: list[Buffer] = []

    def build(self, name: str, dims: list[Var]) -> Kernel:
        sch = self.sch
        params = [t.buffer for t in sch.inputs]
        for t in sch.inputs:
            self.where[id(t)] = (t.buffer, None)
        for t in sch.outputs:
            self.where[id(t)] = (t.buffer, None)
        body: list[Stmt] = []
        for ss in sch.order:
            if ss.attach is not None:
                continue
            for t in ss.stage.outputs:
                if id(t) not in self.where:
                    buf = Buffer(t.name, t.dtype, tuple(t.shape), "heap")
                    self.where[id(t)] = (buf, None)
                    self.allocs_global.append(buf)
            body.append(self.nest(ss))
        stmt = seq(*body)
        for buf in reversed(self.allocs_global):
            stmt = Alloc(buf, stmt)
        stmt = self.lower_reads(stmt)
        kernel = Kernel(name, params + [t.buffer for t in sch.outputs], dims, stmt,
                        num_outputs=len(sch.outputs))
        kernel.attrs["trace"] = sch.trace_json()
        if sch.packed:
            kernel.attrs["packed"] = {k: list(v) for k, v in sch.packed.items()}
        return kernel

    # index of each root axis as an expression of the leaf loops
    def root_values(self, ss: StageSchedule) -> tuple[dict, list[Expr]]:
        val: dict[int, Expr] = {id(lp): lp.var for lp in ss.leaves}
        guards: list[Expr] = []
        for rel in reversed(ss.relations):
            if isinstance(rel, _Split):
                o, i = val[id(rel.outer)], val[id(rel.inner)]
                v = o * rel.factor + i
                val[id(rel.parent)] = v
                ext = _const_int(rel.parent.extent)
                if ext is None or ext % rel.factor:
                    guards.append(binop("<", v, rel.parent.extent))
            else:
                f = val[id(rel.fused)]
                val[id(rel.outer)] = f // rel.inner.extent
                val[id(rel.inner)] = f % rel.inner.extent
        return {lp.var: val[id(lp)] for lp in ss.roots}, guards

    def nest(self, ss: StageSchedule) -> Stmt:
        st = ss.stage
        if st.extern is not None:
            outs = [self.where[id(t)][0] for t in st.outputs]
            ins = [_ExternIn(self, t) for t in st.extern_inputs]
            return st.extern(outs, ins)
        values, guards = self.root_values(ss)
        out = st.outputs[0]
        spatial = [values[a.var] for a in st.axes]
        buf, bases = self.where[id(out)]
        if ss.region is not None:  # attached: axes are relative to the region's base
            absolute = [b + v for (b, _), v in zip(ss.region, spatial)]
            if bases is not None and ss.ragged:
                absolute = self._ragged(ss, spatial, absolute, guards)
        else:
            absolute = spatial
        body_e = substitute(st.body, {**values, **{a.var: x for a, x in zip(st.axes, absolute)}})
        idx = spatial if bases is not None else absolute
        dst = canon(buf.offset(idx))
        leaves = ss.leaves
        attached = {}
        for other in self.sch.order:
            if other.attach is not None and other.attach[0] is ss:
                attached.setdefault(other.attach[1], []).append(other)

        from .ir import Store
        if not st.is_reduction:
            inner: Stmt = Store(buf, dst, body_e)
            inner = self._guard(inner, guards)
            return self._wrap(ss, leaves, inner, attached)
        first_r = next(k for k, lp in enumerate(leaves) if lp.reduce)
        outer, inner_l = leaves[:first_r], leaves[first_r:]
        cur = Load(buf, dst, buf.dtype)
        update = Store(buf, dst, _combine(st.combiner, cur, body_e))
        update = self._wrap(ss, inner_l, self._guard(update, guards), attached)
        init_leaves = [lp for lp in inner_l if not lp.reduce]
        sguards = [g for g in guards if not any(
            isinstance(x, Var) and any(x is lp.var or x == lp.var for lp in ss.leaves if lp.reduce)
            for x in walk_expr(g))]
        init = Store(buf, dst, st.init)
        init = self._plain_nest(init_leaves, self._guard(init, sguards))
        return self._wrap(ss, outer, seq(init, update), attached)

    def _ragged(self, ss: StageSchedule, spatial: list[Expr], absolute: list[Expr],
                guards: list[Expr]) -> list[Expr]:
        """A local region may hang past the tensor's end at a ragged tile. Per axis: reads of
        a packed input along its zero-padded axis need nothing but a clamp of the block; an
        axis that is not vectorized is clamped to the last index (the extra rows recompute it,
        in bounds, and no reader looks at them; readers keep constant offsets into the tile,
        so it stays in registers); a vectorized one gets a guard (clamping it would turn
        vector loads into gathers). Keeps a register tile's hot loop free of branches."""
        st = ss.stage
        vec_roots = _vector_roots(ss)
        out = []
        for k, (a, (b, e), v, x, d) in enumerate(zip(st.axes, ss.region, spatial, absolute,
                                                      st.outputs[0].shape)):
            padded = self._padded_reads(st, a.var, b, e)
            if ss.ragged_axes is not None and k not in ss.ragged_axes:
                out.append(x)  # the consumer's loops along it divide evenly: in bounds
            elif padded is not None:
                # clamp the tile (not the lanes) to the last block of the padding, so that a
                # tile wholly past the end reads in bounds too; vector loads stay contiguous
                block, length, n = padded
                last = binop("-", binop("*", binop("//", binop("+", as_expr(length), block - 1),
                                                   block), block // n), 1)
                if _const_int(e) <= n:
                    out.append(binop("min", binop("//", b, n), last) * n + v)
                else:  # a region of several blocks: clamp each block
                    blk = binop("+", binop("//", b, n), binop("//", v, n))
                    out.append(binop("min", blk, last) * n + binop("%", v, n))
            elif a.var not in vec_roots:
                out.append(binop("min", x, binop("-", as_expr(d), 1)))
            else:
                guards.append(binop("<", x, d))
                out.append(x)
        return out

    def _ragged_axes(self, cs: StageSchedule, t: Tensor,
                     readers: list[StageSchedule]) -> Optional[set]:
        """The axes of `t` along which consumer `cs` may read past the end: those its reads
        index with a root axis of `cs` split unevenly (None: any, when that is not known)."""
        if cs.region is not None or any(r is not cs and t in r.stage.inputs()
                                        for r in readers):
            return None
        uneven = [rel.parent for rel in cs.relations if isinstance(rel, _Split) and (
            _const_int(rel.parent.extent) is None or _const_int(rel.parent.extent) % rel.factor)]
        guarded = _roots_of(cs, uneven)
        out: set = set()
        for x in walk_expr(cs.stage.body):
            if isinstance(x, TensorLoad) and x.tensor is t:
                for d, ix in enumerate(x.indices):
                    if any(isinstance(y, Var) and y in guarded for y in walk_expr(ix)):
                        out.add(d)
        return out

    def _padded_reads(self, st: Stage, var: Var, base: Expr,
                      extent: Expr) -> Optional[tuple[int, Any, int]]:
        """(block, blocked dim, unit) if every read that `var` indexes is of one packed input
        along its blocked axis and the region [base, base + extent) starts at a multiple of
        the unit, the block or a divisor of it as large as the region: clamped unit by unit to
        the last block, every read lies in the zero padding."""
        e = _const_int(extent)
        if e is None:
            return None
        found: Optional[tuple[int, Any]] = None
        for x in walk_expr(st.body):
            if not isinstance(x, TensorLoad) or not any(
                    var in set(walk_expr(ix)) for ix in x.indices):
                continue
            t = x.tensor
            if t.stage is not None or t.name not in self.sch.packed:
                return None
            axis, block = self.sch.packed[t.name][:2]
            if x.indices[axis] != var or var in set(walk_expr(x.indices[1 - axis])) \
                    or found not in (None, (block, t.shape[axis])):
                return None
            found = (block, t.shape[axis])
        if found is None:
            return None
        block = found[0]
        if _multiple_of(base, block):
            return (*found, block)
        if block % e == 0 and _multiple_of(base, e):
            return (*found, e)
        return None

    def _guard(self, s: Stmt, guards: list[Expr]) -> Stmt:
        cond = None
        for g in guards:
            cond = g if cond is None else binop("and", cond, g)
        return s if cond is None else If(cond, s)

    def _plain_nest(self, loops: list[Loop], body: Stmt) -> Stmt:
        for lp in reversed(loops):
            kind = lp.kind if lp.kind in ("vectorized", "unrolled") else "serial"
            body = For(lp.var, lp.extent, kind, body, lp.name + ".init")
        return body

    def _wrap(self, ss: StageSchedule, loops: list[Loop], body: Stmt,
              attached: dict[str, list[StageSchedule]]) -> Stmt:
        for lp in reversed(loops):
            here = attached.get(lp.name, [])
            if here:
                body = self._attach(ss, lp, here, body)
            body = For(lp.var, lp.extent, lp.kind, body, lp.name)
        return body

    def _attach(self, cs: StageSchedule, at: Loop, producers: list[StageSchedule],
                body: Stmt) -> Stmt:
        """Compute `producers` at the start of loop `at` of consumer `cs`."""
        inner = cs.leaves[cs.leaves.index(at) + 1:]
        ranges = {lp.var: _const_int(lp.extent) for lp in inner}
        if any(v is None for v in ranges.values()):
            ranges = {k: v for k, v in ranges.items() if v is not None}
        # all of the consumer's constant loop extents, to simplify // and % in its indices
        self._known = {lp.var: _const_int(lp.extent) for lp in cs.leaves
                       if _const_int(lp.extent) is not None}
        values, cguards = self.root_values(cs)
        stmts: list[Stmt] = []
        allocs: list[Buffer] = []
        for ps in producers:
            t = ps.stage.outputs[0]
            readers = [cs] + [p for p in producers if p is not ps]
            region = self._region(t, readers, values, ranges)
            ps.ragged = bool(cguards) or cs.region is not None
            ps.ragged_axes = self._ragged_axes(cs, t, readers) if ps.ragged else set()
            ps.region = region
            if ps.scope in ("local", "shared"):
                exts = [e for _, e in region]
                if any(_const_int(e) is None for e in exts):
                    raise ScheduleError(
                        f"compute_at: the region of {ps.name} read in one iteration of "
                        f"{cs.name}.{at.name} is not constant-sized ({exts}); use scope global")
                buf = Buffer(t.name, t.dtype, tuple(_const_int(e) for e in exts), ps.scope)
                self.where[id(t)] = (buf, [b for b, _ in region])
                allocs.append(buf)
            else:
                if id(t) not in self.where:
                    buf = Buffer(t.name, t.dtype, tuple(t.shape), "heap")
                    self.where[id(t)] = (buf, None)
                    self.allocs_global.append(buf)
            # the producer's own root extents become the region's
            for root, (_, e) in zip(ps.roots, region):
                root.extent = e
            for rel in ps.relations:
                if isinstance(rel, _Split) and rel.parent in ps.roots:
                    ext = _const_int(rel.parent.extent)
                    rel.outer.extent = as_expr((ext + rel.factor - 1) // rel.factor) \
                        if ext is not None else binop("//", rel.parent.extent + (rel.factor - 1),
                                                      rel.factor)
            stmts.append(self.nest(ps))
        out = seq(*stmts, body)
        for b in reversed(allocs):
            out = Alloc(b, out)
        return out

    def _region(self, t: Tensor, readers: list[StageSchedule], cvalues: dict,
                ranges: dict) -> list[tuple[Expr, Expr]]:
        regions: list[Optional[tuple[Expr, int]]] = [None] * t.ndim
        full = [(Const(0), as_expr(d)) for d in t.shape]
        failed = [False] * t.ndim
        for r in readers:
            if r.region is None and r is not readers[0]:
                continue  # a sibling producer that does not read t yet placed
            exprs = [r.stage.body] + ([r.stage.init] if r.stage.init is not None else [])
            rvals, _ = self.root_values(r)
            rr = dict(ranges)
            if r is readers[0]:
                mapping = cvalues
            else:
                mapping = {a.var: b + rvals[a.var] for a, (b, _) in zip(r.stage.axes, r.region)}
                mapping.update({a.var: rvals[a.var] for a in r.stage.raxes})
                for lp in r.leaves:
                    n = _const_int(lp.extent)
                    if n is not None:
                        rr[lp.var] = n
            for e in exprs:
                for x in walk_expr(e):
                    if not (isinstance(x, TensorLoad) and x.tensor is t):
                        continue
                    for d, ix in enumerate(x.indices):
                        e = substitute(ix, mapping)
                        known = {**getattr(self, "_known", {}), **rr}
                        if known:
                            from .transform import _dm
                            e = _dm(e, known)
                        b = _bound(e, rr)
                        if b is None or failed[d]:
                            failed[d] = True
                            continue
                        if regions[d] is None:
                            regions[d] = b
                        else:
                            regions[d] = _union(regions[d], b)
                            if regions[d] is None:
                                failed[d] = True
        out = []
        for d in range(t.ndim):
            if failed[d] or regions[d] is None:
                out.append(full[d])
            else:
                out.append((regions[d][0], Const(regions[d][1])))
        return out

    def lower_reads(self, s: Stmt) -> Stmt:
        from .ir import _rebuild

        def go(x: Expr) -> Expr:
            if isinstance(x, TensorLoad):
                t = x.tensor
                idx = [go(i) for i in x.indices]
                if t.name in self.sch.packed and t.stage is None:
                    axis, block, *grp = self.sch.packed[t.name]
                    k, n = idx if axis == 1 else idx[::-1]
                    K = t.shape[1 - axis]
                    if grp:  # [N/block, K/g, block, g]
                        g = grp[0]
                        kp = binop("*", binop("//", binop("+", K, g - 1), g), g)
                        off = (n // block) * (kp * block) + (k // g) * (block * g) \
                            + (n % block) * g + k % g
                    else:
                        off = (n // block) * (K * block) + k * block + n % block
                    return Load(t.buffer, off, t.dtype, off.lanes)
                if id(t) not in self.where:
                    raise ScheduleError(f"build: {t.name} is read but never computed")
                buf, bases = self.where[id(t)]
                if bases is not None:
                    idx = [i - b for i, b in zip(idx, bases)]
                off = canon(buf.offset(idx))
                return Load(buf, off, t.dtype, off.lanes)  # lanes: a word read as 4 bytes
            return _rebuild(x, go, {})
        return map_stmt(s, go)


class _ExternIn:
    """An extern stage's view of one input: `buffer` to pass to loads."""

    def __init__(self, b: _Builder, t: Tensor) -> None:
        self.tensor = t
        if id(t) not in b.where:
            raise ScheduleError(f"build: {t.name} is read by an extern stage but never computed")
        self.buffer = b.where[id(t)][0]


def _vector_roots(ss: StageSchedule) -> set:
    """The vars of the root axes that a vectorized leaf loop of `ss` comes from."""
    return _roots_of(ss, [lp for lp in ss.leaves if lp.kind == "vectorized"])


def _roots_of(ss: StageSchedule, loops: list[Loop]) -> set:
    """The vars of the root axes that `loops` (of any level) come from."""
    parent: dict[int, list[Loop]] = {}
    for rel in ss.relations:
        if isinstance(rel, _Split):
            parent[id(rel.outer)] = parent[id(rel.inner)] = [rel.parent]
        else:
            parent[id(rel.fused)] = [rel.outer, rel.inner]
    roots: set = set()
    stack = list(loops)
    while stack:
        lp = stack.pop()
        if id(lp) in parent:
            stack.extend(parent[id(lp)])
        else:
            roots.add(lp.var)
    return roots


def _multiple_of(e: Expr, m: int) -> bool:
    """Whether integer expression `e` is a multiple of `m` for all values of its vars."""
    if m == 1:
        return True
    if isinstance(e, Const):
        return isinstance(e.value, int) and e.value % m == 0
    if isinstance(e, Expr) and type(e).__name__ == "Bin":
        if e.op in ("+", "-"):
            return _multiple_of(e.a, m) and _multiple_of(e.b, m)
        if e.op == "*":
            return _multiple_of(e.a, m) or _multiple_of(e.b, m)
    return False


def _union(a: tuple[Expr, int], b: tuple[Expr, int]) -> Optional[tuple[Expr, int]]:
    d = binop("-", b[0], a[0])
    if isinstance(d, Const):
        lo = a[0] if d.value >= 0 else b[0]
        hi = max(d.value + b[1], a[1]) if d.value >= 0 else max(a[1] - d.value, b[1])
        return lo, hi
    return None


def _combine(op: str, acc: Expr, x: Expr) -> Expr:
    if op in ("+", "*", "&", "|"):
        return binop(op, acc, x)
    if op == "max":
        if acc.dtype.is_float:  # NaN propagates, as in NumPy's max
            from .ir import call
            return call("fmax_nan", acc.dtype, acc, x)
        return binop("max", acc, x)
    if op == "min":
        if acc.dtype.is_float:
            from .ir import call
            return call("fmin_nan", acc.dtype, acc, x)
        return binop("min", acc, x)
    raise ScheduleError(f"unknown combiner {op}")
