"""The default schedule of a lowered group.

- Each output stage: the leading axes (those the group's reductions are indexed by) are fused
  into one parallel loop; the last axis is split by the vector width and vectorized.
- Each reduction stage is computed inside that loop (compute_at), in a local buffer when its
  region is constant-sized: a softmax row's max and sum, a layer norm's mean and variance, a
  convolution's output row. Its innermost spatial axis is vectorized with the reduce loops
  outside it; if it has none (a row reduction), the innermost reduce axis is vectorized.
- Contractions (matmul, linear, gemm) get the register-blocked micro-kernel of
  schedules/matmul.py when present, else a simpler tiled one here.
"""
from __future__ import annotations

from typing import Any, Optional

from ..ir import Const, TensorLoad, Var, walk_expr
from ..schedule import Schedule, ScheduleError, StageSchedule


PARALLEL_CHUNKS = 16  # leading axes are fused until they give this many parallel iterations


def vector_lanes(itemsize: int) -> int:
    from codegen.llvm.jit import host
    return max(1, host()["vector_bits"] // (8 * max(itemsize, 1)))


def _ext(e: Any) -> Optional[int]:
    return e.value if isinstance(e, Const) and isinstance(e.value, int) else None


def _readers(s: Schedule) -> dict[str, list[StageSchedule]]:
    out: dict[str, list[StageSchedule]] = {}
    for ss in s.order:
        for t in ss.stage.inputs():
            if t.stage is not None:
                out.setdefault(t.stage.name, []).append(ss)
    return out


def _axes_used(consumer: StageSchedule, tensor: Any) -> set[int]:
    """Which of the consumer's spatial axes index its reads of `tensor`."""
    pos = {a.var: k for k, a in enumerate(consumer.stage.axes)}
    used: set[int] = set()
    exprs = [consumer.stage.body] if consumer.stage.body is not None else []
    for e in exprs:
        for x in walk_expr(e):
            if isinstance(x, TensorLoad) and x.tensor is tensor:
                for ix in x.indices:
                    for y in walk_expr(ix):
                        if isinstance(y, Var) and y in pos:
                            used.add(pos[y])
    return used


def _producers(s: Schedule, ss: StageSchedule) -> list[StageSchedule]:
    """Non-output stages that `ss` depends on (transitively), producers first."""
    outs = {id(t) for t in s.outputs}
    seen: dict[int, StageSchedule] = {}

    def visit(x: StageSchedule) -> None:
        for t in x.stage.inputs():
            if t.stage is None or id(t) in outs:
                continue
            p = s[t.stage.name]
            if id(p) not in seen:
                visit(p)
                seen[id(p)] = p
    visit(ss)
    return list(seen.values())


def default_schedule(s: Schedule, group: Any, safe: bool = False) -> None:
    readers = _readers(s)
    contraction_stages = {c["stage"] for c in group.ctx.contractions}
    done: set[str] = set()
    for t in s.outputs:
        ss = s[t.stage.name]
        if ss.stage.extern is not None:
            continue
        prods = [p for p in _producers(s, ss) if p.name not in done and not _scheduled(p)]
        # a producer read by another output or an extern stays a root stage
        attachable = [p for p in prods if p.stage.extern is None and all(
            r is ss or r in prods for r in readers.get(p.name, []))]
        mm = [p for p in attachable if p.name in contraction_stages]
        if mm and _direct(ss, mm[0]) and _elementwise_reader(ss, mm[0]) and \
                _schedule_contraction(s, ss, mm[0], group, safe):
            done.update(p.name for p in prods)
            rest = [p for p in attachable if p is not mm[0]]
            for p in rest:
                if p.attach is None and not p.relations:  # not done by the contraction's
                    _schedule_root(s, p, [])
            continue
        if mm and not safe:
            # the output transposes or reshapes the product: compute the product once as its
            # own micro-kernel stage, then the output reads it
            _schedule_shared(s, mm[0], group, safe)
            attachable = [p for p in attachable if p is not mm[0] and not _scheduled(p)]
        _schedule_root(s, ss, attachable)
        for p in prods:  # producers shared with other outputs: root stages of their own
            if p not in attachable and p.name not in done and p.stage.extern is None \
                    and not _scheduled(p):
                _schedule_shared(s, p, group, safe)
        done.update(p.name for p in prods)
    for ss in list(s.order):
        if ss.attach is None and ss.stage.extern is None and ss.name not in done \
                and ss.stage.outputs[0] not in s.outputs and not _scheduled(ss):
            _schedule_root(s, ss, [])


def _elementwise_reader(out: StageSchedule, mm: StageSchedule) -> bool:
    """`out` reads `mm` only at its own indices (an epilogue)."""
    ovars = [a.var for a in out.stage.axes]
    reads = [x for x in walk_expr(out.stage.body)
             if isinstance(x, TensorLoad) and x.tensor is mm.stage.outputs[0]]
    return bool(reads) and len(ovars) == len(mm.stage.axes) and all(
        list(x.indices) == ovars for x in reads)


def _scheduled(ss: StageSchedule) -> bool:
    """Whether a schedule already touched this stage (e.g. the one cache_write made)."""
    return bool(ss.relations) or ss.attach is not None or any(
        lp.kind != "serial" for lp in ss.leaves)


def _schedule_shared(s: Schedule, p: StageSchedule, group: Any, safe: bool) -> None:
    """A stage read by several outputs is computed once, as a root stage."""
    contraction_stages = {c["stage"] for c in group.ctx.contractions}
    if p.name in contraction_stages and not safe:
        try:
            from .matmul import schedule_contraction
        except ImportError:
            schedule_contraction = None
        if schedule_contraction is not None:
            info = next(c for c in group.ctx.contractions if c["stage"] == p.name)
            from codegen.llvm.jit import host
            b_name = _b_placeholder(info)
            schedule_contraction(s, p.name, p.name, m_axis=info["batch"],
                                 n_axis=info["batch"] + 1, k_axis=0,
                                 batch_axes=list(range(info["batch"])),
                                 b_is_constant=b_name is not None
                                 and b_name in group.ctx.constant_inputs, host=host())
            return
    _schedule_root(s, p, [])


def _direct(out: StageSchedule, p: StageSchedule) -> bool:
    return p.stage.outputs[0] in out.stage.inputs()


def _schedule_root(s: Schedule, ss: StageSchedule, attachable: list[StageSchedule]) -> None:
    st = ss.stage
    n = len(st.axes)
    t = st.outputs[0]
    lanes = vector_lanes(t.dtype.np_dtype.itemsize if not t.dtype.is_bool else 1)
    if st.is_reduction:  # a root reduction (read by an extern or several outputs)
        _schedule_reduction(s, ss, lanes, parallel=True)
        return
    direct = [p for p in attachable if p.stage.outputs[0] in st.inputs()]
    p_axis = -1
    for p in direct:
        used = _axes_used(ss, p.stage.outputs[0])
        if used:
            p_axis = max(p_axis, max(used))
    if p_axis == n - 1 and n > 0:
        p_axis = n - 2  # e.g. an elementwise consumer of a conv: attach per row
    if p_axis < 0 and n > 1:
        p_axis = n - 2
    names = [lp.name for lp in ss.leaves]
    outer: Optional[str] = None   # the parallel loop: the fewest leading axes with enough work
    attach: Optional[str] = None  # where the reductions are computed: the loop of axis p_axis
    if p_axis >= 0:
        q, prod = 0, _ext(st.axes[0].extent) or 64
        while q < p_axis and prod < PARALLEL_CHUNKS:
            q += 1
            prod *= _ext(st.axes[q].extent) or 64
        outer = names[0]
        for nm in names[1:q + 1]:
            outer = s.fuse(ss.name, outer, nm)
        attach = outer if q == p_axis else names[p_axis]
    last = ss.leaves[-1].name if n > 0 and (outer is None or p_axis < n - 1) else None
    numel = 1
    for a in st.axes:
        e = _ext(a.extent)
        numel *= e if e is not None else 1024
    if last is not None and lanes > 1:
        le = _ext(ss.leaves[-1].extent)
        if le is None or le >= 2:
            _, vi = s.split(ss.name, last, lanes)
            s.vectorize(ss.name, vi)
    if outer is not None and numel >= 4096:
        oe = _ext(ss.loop(outer, "parallel").extent)
        if oe is None or oe >= 2:
            s.parallel(ss.name, outer)
    for p in attachable:
        if outer is not None:
            try:
                # a region that turns out symbolic-sized makes the build raise, and the group
                # falls back to the simpler schedule levels (LoweredGroup.build)
                s.set_scope(p.name, "local")
                s.compute_at(p.name, ss.name, attach)
            except ScheduleError:
                pass
        _schedule_reduction(s, p, vector_lanes(p.stage.outputs[0].dtype.np_dtype.itemsize
                                               if not p.stage.outputs[0].dtype.is_bool else 1),
                            parallel=p.attach is None)


def _schedule_reduction(s: Schedule, ss: StageSchedule, lanes: int, parallel: bool) -> None:
    st = ss.stage
    if not st.is_reduction:
        if ss.attach is None and parallel and len(ss.leaves) > 0:
            last = ss.leaves[-1]
            if lanes > 1 and (_ext(last.extent) is None or _ext(last.extent) >= 2):
                _, vi = s.split(ss.name, last.name, lanes)
                s.vectorize(ss.name, vi)
        return
    spatial = [lp for lp in ss.leaves if not lp.reduce]
    red = [lp for lp in ss.leaves if lp.reduce]
    if parallel and spatial:
        outer = spatial[0].name
        if len(spatial) > 1:
            for lp in spatial[1:-1]:
                outer = s.fuse(ss.name, outer, lp.name)
        oe = _ext(ss.loop(outer, "parallel").extent)
        if oe is None or oe >= 2:
            s.parallel(ss.name, outer)
        spatial = [lp for lp in ss.leaves if not lp.reduce]
    # decide what to vectorize: the innermost spatial axis when attached regions make it
    # longer than 1 (e.g. a conv row), else the innermost reduce axis (a row reduction)
    inner_sp = spatial[-1] if spatial else None
    if ss.attach is not None and inner_sp is not None:
        long_inner = _attached_inner_long(s, ss)
    else:
        long_inner = inner_sp is not None and (_ext(inner_sp.extent) or 2) > 1 and (
            parallel and len(spatial) >= 2)
    if long_inner and inner_sp is not None:
        order = [lp.name for lp in spatial[:-1]] + [lp.name for lp in red] + [inner_sp.name]
        s.reorder(ss.name, *order)
        if lanes > 1:
            _, vi = s.split(ss.name, inner_sp.name, lanes)
            s.vectorize(ss.name, vi)
        return
    if red and lanes > 1:
        r = red[-1]
        e = _ext(r.extent)
        if e is None or e >= lanes:
            _, vi = s.split(ss.name, r.name, lanes)
            s.vectorize(ss.name, vi)


def _attached_inner_long(s: Schedule, ss: StageSchedule) -> bool:
    """Whether the consumer reads this producer along an axis that varies inside the attach
    loop (so its region's innermost axis is longer than 1)."""
    cons, loop = ss.attach
    names = [lp.name for lp in cons.leaves]
    k = names.index(loop)
    inner_vars = set()
    for lp in cons.leaves[k + 1:]:
        inner_vars.add(lp.var)
    t = ss.stage.outputs[0]
    vals, _ = _root_values(s, cons)
    for x in walk_expr(cons.stage.body):
        if isinstance(x, TensorLoad) and x.tensor is t:
            from ..ir import substitute
            last = substitute(x.indices[-1], vals)
            if any(isinstance(y, Var) and y in inner_vars for y in walk_expr(last)):
                return True
    return False


def _root_values(s: Schedule, ss: StageSchedule):
    from ..schedule import _Builder
    return _Builder(s).root_values(ss)


def _schedule_contraction(s: Schedule, out: StageSchedule, mm: StageSchedule, group: Any,
                          safe: bool = False) -> bool:
    info = next(c for c in group.ctx.contractions if c["stage"] == mm.name)
    if "int8" in info:  # an integer contraction over 4-byte words (ops/quant.py)
        if safe:
            return False
        from codegen.llvm.jit import host, num_threads
        from .int8 import schedule_int8_contraction
        return schedule_int8_contraction(s, out.name, mm.name, info, host(), num_threads())
    try:
        from .matmul import schedule_contraction  # the register-blocked micro-kernel
    except ImportError:
        schedule_contraction = None
    if safe:
        schedule_contraction = None
    from codegen.llvm.jit import host
    if schedule_contraction is not None:
        b_name = _b_placeholder(info)
        schedule_contraction(
            s, out.name, mm.name,
            m_axis=info["batch"], n_axis=info["batch"] + 1, k_axis=0,
            batch_axes=list(range(info["batch"])),
            b_is_constant=b_name is not None and b_name in group.ctx.constant_inputs,
            host=host())
        return True
    return _simple_contraction(s, out, mm, info)


def _b_placeholder(info: dict) -> Optional[str]:
    """The kernel input that the contraction's B operand reads (None if B is computed or reads
    several inputs): the schedule packs it when it is a weight."""
    b = info["b"]
    probe = b.at(*[Var(f"_probe{k}") for k in range(b.ndim)])
    found = {id(x.tensor): x.tensor for x in walk_expr(probe) if isinstance(x, TensorLoad)}
    if len(found) != 1:
        return None
    t = next(iter(found.values()))
    return t.name if t.stage is None else None


def _simple_contraction(s: Schedule, out: StageSchedule, mm: StageSchedule, info: dict) -> bool:
    lanes = vector_lanes(mm.stage.outputs[0].dtype.np_dtype.itemsize)
    nb = info["batch"]
    names = [lp.name for lp in out.leaves]
    ovars = [a.var for a in out.stage.axes]
    reads = [x for x in walk_expr(out.stage.body)
             if isinstance(x, TensorLoad) and x.tensor is mm.stage.outputs[0]]
    if len(names) != len(mm.stage.axes) or not reads or any(
            list(x.indices) != ovars for x in reads):
        return False  # the epilogue reshapes or transposes: the generic schedule
    i_name, j_name = names[nb], names[nb + 1]
    MR, NR = 4, 2 * lanes
    io, ii = s.split(out.name, i_name, MR)
    jo, ji = s.split(out.name, j_name, NR)
    s.reorder(out.name, *names[:nb], io, jo, ii, ji)
    outer = io
    if nb:
        outer = names[0]
        for nm in names[1:nb]:
            outer = s.fuse(out.name, outer, nm)
        outer = s.fuse(out.name, outer, io)
    s.parallel(out.name, outer)
    jio, jii = s.split(out.name, ji, lanes)
    s.vectorize(out.name, jii)
    s.set_scope(mm.name, "local")
    s.compute_at(mm.name, out.name, jo)
    ml = [lp.name for lp in mm.leaves]
    bt, ci, cj, ck = ml[:nb], ml[nb], ml[nb + 1], ml[-1]
    cjo, cji = s.split(mm.name, cj, lanes)
    s.reorder(mm.name, *bt, ck, ci, cjo, cji)
    s.unroll(mm.name, ci)
    s.unroll(mm.name, cjo)
    s.vectorize(mm.name, cji)
    return True
