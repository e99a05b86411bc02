"""The default schedule of a contraction: a packed, register-blocked micro-kernel.

    mm[b..., i, j]  = sum_k A[b..., i, k] * B[b..., k, j]      (a reduce stage, casts allowed)
    out[b..., i, j] = epilogue(mm[b..., i, j], ...)            (bias, GELU, residual: same indices)

The output is cut into MR x NR tiles (NR a multiple of the vector width). For each tile the
accumulator `mm` lives in a local MR x NR buffer that LLVM keeps in registers over all of K:
per step of k, NR/VL vector loads of B, MR broadcasts of A and MR*NR/VL FMAs. The epilogue
reads the tile from registers (every access to it has a constant index, so LLVM's SROA keeps it
in registers) and stores the output once.

Loop order: chunks of P panels of B (NR columns each) by T tiles of A (MR rows each), the batch
axes and both chunk loops fused into one parallel loop (threads take chunks dynamically); in a
chunk, panels outside tiles. The T*MR rows of A stay in L2 across the P panels, and a thread's
consecutive chunks reuse the same P panels from L2. P, T come from the L2 size and are
divisors of the tile counts where possible (a partial chunk recomputes a clamped tile).

- A constant 2-D B is packed at compile time as [ceil(N/NR), K, NR] (`Schedule.pack`): a tile
  reads one contiguous, zero-padded panel, so the tile needs no guard on N.
- A B whose N axis is not its last (attention's K read as K[b, j, k]) is first copied into a
  transposed buffer (`cache_read` with a layout), so the hot loop still has vector loads.
- Ragged M or N, or a symbolic M (dynamic batch/sequence dim), split with guards: the
  tile's rows are clamped (schedule._Builder._ragged), and `transform.version_guards` gives
  full tiles a guard-free copy of the tile (with its own registers). An unpacked B with a
  ragged N keeps lane guards in its edge tiles, as masked loads and stores.
- The k loop is unrolled by 4 when 4 divides K.
- `config` overrides MR, NR, P, T, KU (for tuning and experiments).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

from ..ir import Const, TensorLoad, Var, walk_expr
from ..schedule import Schedule, ScheduleError

AxisRef = Union[int, str]


@dataclass
class Tile:
    """The register tile: MR rows, NR columns (NR = nvec vectors of VL lanes)."""
    MR: int
    NR: int
    VL: int


def _ext(e: Any) -> Optional[int]:
    if isinstance(e, int):
        return e
    return e.value if isinstance(e, Const) and isinstance(e.value, int) else None


def choose_tile(M: Optional[int], N: Optional[int], vector_bits: int, itemsize: int = 4) -> Tile:
    """Tile sizes for the host's vector registers (32 with AVX-512, else 16).

    NR is two vectors and MR as many rows as the registers allow (MR*NR/VL accumulators, NR/VL
    vectors of B and one broadcast of A live at once): 12x32 on AVX-512, 6x16 on AVX2. A
    constant M picks the MR (down to half the maximum) with the least work, counting the rows
    a ragged last tile wastes; a tiny M (a matrix-vector product) takes one or two rows and
    four vectors of N instead."""
    VL = max(1, vector_bits // (8 * itemsize))
    nregs = 32 if vector_bits >= 512 else 16
    nvec = 2
    if M is not None and M <= 2:
        nvec = 4
    if N is not None:
        nvec = max(1, min(nvec, -(-N // VL)))
        # a narrow or ragged N: fewer vectors if that wastes fewer columns (a one-vector tile
        # costs a little more per column: a load of A per FMA instead of per two)
        nvec = min(range(1, nvec + 1),
                   key=lambda v: -(-N // (v * VL)) * v * VL * (1 + 0.3 / v) - 1e-3 * v)
    mr_max = min(12 if nregs == 32 else 6, (nregs - nvec - 1) // nvec)
    if N is not None and N < VL:
        return Tile(MR=min(mr_max, M) if M is not None else mr_max, NR=N, VL=N)
    if M is None:
        MR = mr_max
    elif M <= mr_max:
        MR = M
    else:
        # rows computed (a ragged last tile computes all MR) plus a per-tile overhead worth a
        # few rows (the epilogue, the edge's copy of it, the loop); half the budget at least
        MR = min(range(mr_max, max(1, mr_max // 2) - 1, -1),
                 key=lambda mr: -(-M // mr) * (mr + TILE_OVERHEAD_ROWS))
    return Tile(MR=MR, NR=nvec * VL, VL=VL)


def _blocks(M: Optional[int], N: Optional[int], K: Optional[int], MR: int, NR: int,
            itemsize: int, cfg: dict, batch: int = 1) -> tuple[int, int]:
    """Panels of B per chunk (P) and tiles of A per block (T) of the blocked loop order
    (`batch`: how many independent matrices share the parallel loop)."""
    P, T = cfg.get("P"), cfg.get("T")
    if P is not None and T is not None:
        return P, T
    if K is None or N is None:
        return P or 1, T or 1
    nj = -(-N // NR)
    ni = -(-M // MR) if M is not None else 1
    panel, rows = NR * K * itemsize, MR * K * itemsize
    if P is None:  # the chunk's panels of B take about half the L2
        P = _divisor_at_most(nj, max(1, (L2_BYTES // 2) // panel))
    if T is None:  # the block of A an eighth
        T = _divisor_at_most(ni, max(1, (L2_BYTES // 8) // rows))
    # enough chunks to share among the threads
    while batch * (-(-nj // P)) * (-(-ni // T)) < MIN_CHUNKS and (P > 1 or T > 1):
        if T >= P:
            T = _divisor_at_most(ni, T - 1)
        else:
            P = _divisor_at_most(nj, P - 1)
    return P, T


L2_BYTES = 2 << 20
TILE_OVERHEAD_ROWS = 4
MIN_CHUNKS = 8


def _divisor_at_most(n: int, cap: int) -> int:
    """A block size for n items, at most cap: the largest divisor of n if it is at least half
    of cap (no partial block), else equal blocks rounded up (less than one item wasted per
    block: a partial chunk recomputes a clamped tile)."""
    cap = max(1, min(cap, n))
    d = next(x for x in range(cap, 0, -1) if n % x == 0)
    if 2 * d >= cap:
        return d
    blocks = -(-n // cap)
    return -(-n // blocks)


def _axis_index(st: Any, ref: AxisRef, reduce: bool = False) -> int:
    axes = st.raxes if reduce else st.axes
    if isinstance(ref, int):
        if not 0 <= ref < len(axes):
            raise ScheduleError(f"schedule_contraction: stage {st.name} has no "
                                f"{'reduce ' if reduce else ''}axis {ref}")
        return ref
    for k, a in enumerate(axes):
        if a.name == ref or a.name.split(".")[-1] == ref.split(".")[-1]:
            return k
    raise ScheduleError(f"schedule_contraction: stage {st.name} has no axis {ref!r}")


def _operand_loads(mm: Any, iv: Var, jv: Var, kv: Var) -> tuple[list, list]:
    """The mm body's reads of A (indexed by i and k) and of B (by k and j)."""
    a_loads, b_loads = [], []
    for x in walk_expr(mm.body):
        if not isinstance(x, TensorLoad):
            continue
        used = {y for ix in x.indices for y in walk_expr(ix) if isinstance(y, Var)}
        if jv in used and kv in used and iv not in used:
            b_loads.append(x)
        elif iv in used and kv in used and jv not in used:
            a_loads.append(x)
    return a_loads, b_loads


def _packable(s: Schedule, b_loads: list, jv: Var, kv: Var) -> Optional[tuple[str, int]]:
    """(name, axis of N) of a 2-D input read as B[k, j] or B[j, k] directly."""
    if len({id(x.tensor) for x in b_loads}) != 1:
        return None
    t = b_loads[0].tensor
    if t.stage is not None or t.ndim != 2 or t not in s.inputs:
        return None
    for x in b_loads:
        if tuple(x.indices) == (kv, jv):
            axis = 1
        elif tuple(x.indices) == (jv, kv):
            axis = 0
        else:
            return None
    return t.name, axis


def _contiguous_in_j(b_loads: list, jv: Var) -> bool:
    """Whether every read of B steps by one element along j: vector loads along N."""
    from ..schedule import _linear
    for x in b_loads:
        if any(jv in set(walk_expr(ix)) for ix in x.indices[:-1]):
            return False
        lin = _linear(x.indices[-1], {jv})
        if lin is None or lin[0].get(jv) != 1:
            return False
    return True


def schedule_contraction(s: Schedule, out: str, mm: str, *, m_axis: AxisRef, n_axis: AxisRef,
                         k_axis: AxisRef, batch_axes: Sequence[AxisRef], b_is_constant: bool,
                         host: dict, config: Optional[dict] = None) -> None:
    """Schedule reduce stage `mm` and its elementwise consumer `out` (which may be `mm` itself
    when the contraction is the kernel's output) as a register-blocked micro-kernel."""
    # check everything before the first primitive, so a refusal leaves `s` untouched
    mst, ost = s[mm].stage, s[out].stage
    if not mst.is_reduction or len(mst.raxes) != 1 or mst.combiner != "+":
        raise ScheduleError(f"schedule_contraction: {mm} is not a sum over one axis")
    im = _axis_index(mst, m_axis)
    jn = _axis_index(mst, n_axis)
    kk = _axis_index(mst, k_axis, reduce=True)
    bt = [_axis_index(mst, b) for b in batch_axes]
    if len({im, jn, *bt}) != 2 + len(bt) or len(mst.axes) != 2 + len(bt) \
            or len(ost.axes) != len(mst.axes):
        raise ScheduleError(f"schedule_contraction: axes of {mm} are not batch..., m, n")
    if out != mm:  # the epilogue must read mm at its own indices (elementwise)
        ovars = [a.var for a in ost.axes]
        reads = [x for x in walk_expr(ost.body) if isinstance(x, TensorLoad)
                 and x.tensor is mst.outputs[0]]
        if not reads or any(list(x.indices) != ovars for x in reads):
            raise ScheduleError(f"schedule_contraction: {out} does not read {mm} elementwise")
    else:  # no epilogue: accumulate in a local stage, the output copies it
        mm = s.cache_write(mm, "local")
    os_, ms = s[out], s[mm]
    ost, mst = os_.stage, ms.stage

    iv, jv, kv = mst.axes[im].var, mst.axes[jn].var, mst.raxes[kk].var
    acc = mst.outputs[0].dtype
    itemsize = acc.np_dtype.itemsize if not acc.is_bool else 1
    M, N, K = (_ext(mst.axes[im].extent), _ext(mst.axes[jn].extent),
               _ext(mst.raxes[kk].extent))
    cfg = dict(config or {})
    tile = choose_tile(M, N, host.get("vector_bits", 256), itemsize)
    MR, NR, VL = cfg.get("MR", tile.MR), cfg.get("NR", tile.NR), tile.VL
    _, b_loads = _operand_loads(mst, iv, jv, kv)

    packed = None
    if b_is_constant and N is not None and N > VL:
        packed = _packable(s, b_loads, jv, kv)
        if packed is not None:
            s.pack(packed[0], packed[1], NR)

    if packed is None and b_loads and not _contiguous_in_j(b_loads, jv):
        _transpose_b(s, mm, b_loads, jv)

    oname = [lp.name for lp in os_.leaves]
    obatch = [oname[b] for b in bt]
    jo, ji = s.split(out, oname[jn], NR)
    io, ii = s.split(out, oname[im], MR)
    nbatch = 1
    for b in bt:
        nbatch *= _ext(mst.axes[b].extent) or 16
    P, T = _blocks(M, N, K, MR, NR, itemsize, cfg, nbatch)
    if P > 1 or T > 1:
        # chunks of P panels of B x T tiles of A: the T*MR rows of A stay in L2 across the P
        # panels, the P panels across the chunks of one thread
        joo, joi = s.split(out, jo, P)
        ioo, ioi = s.split(out, io, T)
        s.reorder(out, *obatch, joo, ioo, joi, ioi, ii, ji)
        outer, tile_loop = obatch + [joo, ioo], ioi
    else:
        s.reorder(out, *obatch, jo, io, ii, ji)
        outer, tile_loop = obatch + [jo, io], None
    par = outer[0]
    for nm in outer[1:]:
        par = s.fuse(out, par, nm)
    tile_loop = tile_loop or par
    flops = 2 * (M or 256) * (N or 256) * (K or 256) * nbatch
    if flops >= 1 << 18:
        s.parallel(out, par)
    s.set_scope(mm, "local")
    s.compute_at(mm, out, tile_loop)

    # the micro-kernel: k outermost, rows and vectors unrolled, lanes vectorized
    mname = [lp.name for lp in ms.leaves]
    mb = [mname[b] for b in bt]
    mi, mj = mname[im], mname[jn]
    mk = mname[len(mst.axes) + kk]
    jvo, jvi = s.split(mm, mj, VL)
    # k unrolled by 4 (when it divides K): fewer loop branches, and the out-of-order core
    # overlaps the B loads of the next steps with this step's FMAs (+2..10% at large K)
    KU = cfg.get("KU", next((u for u in (4, 2) if K is not None and K >= 4 * u
                             and K % u == 0), 1))
    if KU > 1 and K is not None and K % KU == 0:
        mk, mku = s.split(mm, mk, KU)
        s.reorder(mm, *mb, mk, mku, mi, jvo, jvi)
        s.unroll(mm, mku)
    else:
        s.reorder(mm, *mb, mk, mi, jvo, jvi)
    for b in mb:
        s.unroll(mm, b)
    s.unroll(mm, mi)
    s.unroll(mm, jvo)
    if VL > 1:
        s.vectorize(mm, jvi)
    else:
        s.unroll(mm, jvi)

    # the epilogue: rows and vectors unrolled too, so that every access to the tile has a
    # constant index and LLVM turns the whole tile into registers (SROA), never memory
    eo, ei = s.split(out, ji, VL)
    if VL > 1:
        s.vectorize(out, ei)
    s.unroll(out, eo)
    s.unroll(out, ii)


def _transpose_b(s: Schedule, mm: str, b_loads: list, jv: Var) -> Optional[str]:
    """Copy a B whose N axis is not the last one (attention's K read as K[b, j, k]) into a
    transposed buffer, N last, before the tiles run: one pass over B buys vector loads in the
    hot loop. Returns the copy's stage, scheduled as a parallel loop nest."""
    t = b_loads[0].tensor
    if len({id(x.tensor) for x in b_loads}) != 1 or len({x.indices for x in b_loads}) != 1:
        return None
    idx = list(b_loads[0].indices)
    pj = [d for d, ix in enumerate(idx) if jv in set(walk_expr(ix))]
    if len(pj) != 1 or idx[pj[0]] != jv:
        return None
    layout = [d for d in range(t.ndim) if d != pj[0]] + [pj[0]]
    cname = s.cache_read(t.name, "global", [mm], layout=layout)
    names = [lp.name for lp in s[cname].leaves]
    outer = names[0]
    for nm in names[1:-1]:
        outer = s.fuse(cname, outer, nm)
    if len(names) > 1:
        s.parallel(cname, outer)
    return cname
