"""The default schedule of an int8 contraction (matmul_integer, see kernel/ops/quant.py):

    mm[b..., i, j]  = sum over groups g of 4 k: dot4_u8s8(word of a'[i, 4g..4g+3],
                                                          word of b[4g..4g+3, j])
    colsum[j]       = sum over g: dot4_u8s8(ones, word of b[.., j])      (when a' has a zero point)
    out[b..., i, j] = epilogue(mm[b..., i, j] - za' * colsum[j] ..., bias, requantize, ...)

A constant 2-D b is packed at compile time as [N/NR, K/4, NR, 4] (`Schedule.pack(b, 1, NR, 4)`):
each panel of NR columns is contiguous (the hardware prefetcher streams it) and the 4 bytes of k
that one i32 lane multiplies are adjacent, so 16 lanes of words are one 64-byte load (one
vpdpbusd operand). The output is cut into MR x NR register tiles (NR = two vectors of 16
i32 lanes on AVX-512): per group of 4 k, MR word broadcasts of a', NR/16 vector loads of b and
MR*NR/16 dot4s into accumulators that LLVM keeps in registers; the epilogue (bias,
requantization, the activation and the next quantize) runs on the tile straight from them and
stores the result once.

Panels of NR columns are the outer loop, parallel when there are enough of them (else panels,
batch and row blocks fused); the column sums a panel needs are computed once per panel
(compute_at the panel loop). Inside a panel, the accumulators of a block of up to 128 rows live
on the stack and k runs in blocks of 64 groups with the row tiles inside, so a block of the
panel (8 KB) is read from memory once and from L1/L2 by the other tiles. Row sums (only for a
weight zero point) stay a root stage; the copies of a (flipped or padded) and of a
non-constant b are vectorized loops, parallel only when large.

`acc + dot4_u8s8` is one vpdpbusd accumulating in place (codegen/llvm/codegen.py): a separate
add would take the other vector port and halve the throughput.
"""
from __future__ import annotations

from typing import Any, Optional

from ..ir import Const, TensorLoad, walk_expr
from ..schedule import Schedule


def _ext(e: Any) -> Optional[int]:
    if isinstance(e, int):
        return e
    return e.value if isinstance(e, Const) and isinstance(e.value, int) else None


def choose_rows(M: Optional[int], mr_max: int) -> int:
    """Rows per tile: the fewest tiles, then the fewest wasted rows, never below half the
    register budget (a symbolic M takes the maximum)."""
    if M is None:
        return mr_max
    if M <= mr_max:
        return M
    best = None
    for mr in range(mr_max, max(1, mr_max // 2) - 1, -1):
        tiles = -(-M // mr)
        key = (tiles * mr - M > 0, tiles, tiles * mr - M)
        if best is None or key < best[0]:
            best = (key, mr)
    return best[1]


def schedule_int8_contraction(s: Schedule, out: str, mm: str, info: dict, host: dict,
                              threads: int = 1, config: Optional[dict] = None) -> bool:
    """Schedule int8 contraction `mm` with its elementwise epilogue `out` (see the module
    docstring). Returns False, changing nothing, when the epilogue does not read `mm` at its
    own indices (the generic schedule then takes the group)."""
    os_, ms = s[out], s[mm]
    ost, mst = os_.stage, ms.stage
    q = info["int8"]
    nb = info["batch"]
    ovars = [a.var for a in ost.axes]
    reads = [x for x in walk_expr(ost.body) if isinstance(x, TensorLoad)
             and x.tensor is mst.outputs[0]]
    if len(ost.axes) != len(mst.axes) or not reads or any(list(x.indices) != ovars
                                                          for x in reads):
        return False
    cfg = dict(config or {})
    M, N = _ext(mst.axes[nb].extent), _ext(mst.axes[nb + 1].extent)
    K4 = _ext(mst.raxes[0].extent)
    bits = host.get("vector_bits", 256)
    VL = max(1, bits // 32)
    if N is not None and N < VL:
        VL = N
    nvec = cfg.get("nvec", 2 if N is None or N > VL else 1)
    NR = nvec * VL
    nregs = 32 if bits >= 512 else 16
    mr_max = min(12 if nregs == 32 else 6, (nregs - nvec - 2) // nvec)
    MR = cfg.get("MR", choose_rows(M, mr_max))

    if q.get("pack"):  # panels of NR columns, the 4 bytes of a group of k adjacent
        s.pack(q["pack"], 1, NR, 4)

    # out: panels of NR columns, blocks of IB rows, MR x NR tiles
    tiles = cfg.get("tiles_per_block", max(1, 128 // MR))
    if M is not None:
        tiles = max(1, min(tiles, -(-M // MR)))
    IB = MR * tiles
    GB = cfg.get("k_block", 64)  # groups of 4 k per block: the block of b stays in L2
    names = [lp.name for lp in os_.leaves]
    bts, i_name, j_name = names[:nb], names[nb], names[nb + 1]
    jo, ji = s.split(out, j_name, NR)
    ib, irest = s.split(out, i_name, IB)
    io, ii = s.split(out, irest, MR)
    s.reorder(out, jo, *bts, ib, io, ii, ji)
    panels = -(-N // NR) if N is not None else None
    macs = (M or 256) * (N or 256) * 4 * (K4 or 64)
    for b in range(nb):
        macs *= _ext(mst.axes[b].extent) or 16
    colsum = q.get("colsum")
    cs_batched = colsum is not None and len(s[colsum].stage.axes) > 1
    if panels is not None and panels >= 4 * max(1, threads):
        # enough panels to share: the column sums once per panel, row blocks inside
        par, block_loop = jo, ib
        cs_loop = jo if not cs_batched else ib
    else:
        par = jo
        for nm in bts + [ib]:
            par = s.fuse(out, par, nm)
        block_loop = cs_loop = par
    if macs >= 1 << 20:
        s.parallel(out, par)

    # the accumulators of a block of rows (IB x NR, on the stack); its micro-kernel: blocks of
    # k outermost, then tiles of MR rows, k, then the tile's rows and vectors unrolled and the
    # lanes vectorized (the tile's accumulators stay in registers across a block of k)
    s.set_scope(mm, "local")
    s.compute_at(mm, out, block_loop)
    mnames = [lp.name for lp in ms.leaves]
    mb, mi, mj, mg = mnames[:nb], mnames[nb], mnames[nb + 1], mnames[nb + 2]
    mio, mii = s.split(mm, mi, MR)
    jvo, jvi = s.split(mm, mj, VL)
    if K4 is None or K4 > GB:
        go, gi = s.split(mm, mg, GB)
        s.reorder(mm, *mb, go, mio, gi, mii, jvo, jvi)
    else:
        s.reorder(mm, *mb, mio, mg, mii, jvo, jvi)
    for b in mb:
        s.unroll(mm, b)
    s.unroll(mm, mii)
    s.unroll(mm, jvo)
    if VL > 1:
        s.vectorize(mm, jvi)
    else:
        s.unroll(mm, jvi)

    if colsum is not None:
        cs = s[colsum]
        s.set_scope(colsum, "local")
        s.compute_at(colsum, out, cs_loop)
        cn = [lp.name for lp in cs.leaves]
        cb, cj, cg = cn[:-2], cn[-2], cn[-1]
        cjo, cji = s.split(colsum, cj, VL)
        s.reorder(colsum, *cb, cg, cjo, cji)
        for b in cb:
            s.unroll(colsum, b)
        s.unroll(colsum, cjo)
        if VL > 1:
            s.vectorize(colsum, cji)
        else:
            s.unroll(colsum, cji)

    for name in q.get("copies", ()):
        _schedule_copy(s, name, bits)

    # the epilogue: rows serial, vectors of the tile unrolled, lanes vectorized
    eo, ei = s.split(out, ji, VL)
    if VL > 1:
        s.vectorize(out, ei)
    s.unroll(out, eo)
    return True



def _schedule_copy(s: Schedule, name: str, bits: int) -> None:
    """a' (a ^ 0x80, or zero-padded along K) and b's [K/4, N, 4] copy: a vectorized loop nest,
    parallel only when large (a parallel region costs a wake-up of every thread)."""
    ss = s[name]
    leaves = [lp.name for lp in ss.leaves]
    inner = leaves[-1]
    if len(leaves) >= 2 and _ext(ss.leaves[-1].extent) == 4:  # b's copy: (column, byte)
        inner = s.fuse(name, leaves[-2], leaves[-1])
        leaves = leaves[:-2] + [inner]
    lanes = max(1, bits // 8)
    numel = 1
    for lp in ss.leaves:
        numel *= _ext(lp.extent) or 1024
    _, vi = s.split(name, inner, lanes)
    s.vectorize(name, vi)
    if len(leaves) >= 2 and numel >= 1 << 20:
        s.parallel(name, leaves[0])
