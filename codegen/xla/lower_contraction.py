"""StableHLO rules for the contractions: matmul, gemm, linear, einsum, and det.

`dot` is the one place a contraction becomes `stablehlo.dot_general`: f16/bf16 operands multiply
and accumulate in f32 and round once (as the references); with the TPU options f32 operands are
rounded to bf16 and accumulated in f32, and operands are zero-padded to the TPU's (8, 128) tiles
where that adds at most TILE_WASTE more elements (zero padding of the contracted dim adds
nothing to the sums; padded rows and columns are sliced off).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

from compiler.ir import Op
from compiler.ir import dtypes as dt
from compiler.ir.dtypes import DType
from compiler.ir.ops.linalg import parse_einsum

from .emitter import Emitter, Val
from .lowering import (Context, broadcast_shapes, compute_dtype, lowering, optional, result_type,
                       unsupported)

TILE_WASTE = 0.125  # pad to tiles when it grows an operand by at most this fraction
SUBLANE, LANE = 8, 128


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def _tile(n: int, m: int) -> int:
    """n padded to a multiple of m when that costs at most TILE_WASTE, else n."""
    p = _round_up(n, m)
    return p if n >= m and p != n and (p - n) <= TILE_WASTE * n else n


def dot(e: Emitter, ctx: Context, a: Val, b: Val, batch: tuple[Sequence[int], Sequence[int]],
        contract: tuple[Sequence[int], Sequence[int]], out_dtype: Optional[DType] = None) -> Val:
    """dot_general in the target's preferred form; result dims are batch, a free, b free, in
    the compute dtype (f32 for f16/bf16 inputs) unless out_dtype is given."""
    cd = compute_dtype(a.dtype)
    a, b = e.convert(a, cd), e.convert(b, cd)
    opts = ctx.options
    if opts.bf16_contractions and cd == dt.f32:
        a, b = e.convert(a, dt.bf16), e.convert(b, dt.bf16)
    a_free = [i for i in range(a.rank) if i not in batch[0] and i not in contract[0]]
    b_free = [i for i in range(b.rank) if i not in batch[1] and i not in contract[1]]
    pad_m = pad_n = None
    if opts.pad_to_tiles and a.dtype.is_float and len(a_free) == 1 and len(b_free) == 1 \
            and len(contract[0]) == 1:
        (m_ax,), (n_ax,), (ka, kb) = a_free, b_free, (contract[0][0], contract[1][0])
        m, n, k = a.shape[m_ax], b.shape[n_ax], a.shape[ka]
        pm, pn, pk = _tile(m, SUBLANE), _tile(n, LANE), _tile(k, LANE)
        if (pm, pn, pk) != (m, n, k):
            zero = e.const(0.0, a.dtype)
            a = e.pad(a, zero, [0] * a.rank,
                      [(pm - m) if i == m_ax else (pk - k) if i == ka else 0
                       for i in range(a.rank)])
            b = e.pad(b, zero, [0] * b.rank,
                      [(pn - n) if i == n_ax else (pk - k) if i == kb else 0
                       for i in range(b.rank)])
            pad_m, pad_n = (m, pm), (n, pn)
    y = e.dot_general(a, b, batch, contract, out_dtype or cd)
    if pad_m is not None and (pad_m[0] != pad_m[1] or pad_n[0] != pad_n[1]):
        nb = len(batch[0])
        limits = list(y.shape)
        limits[nb], limits[nb + 1] = pad_m[0], pad_n[0]
        y = e.slice(y, [0] * y.rank, limits)
    return y


def _broadcast_batch(e: Emitter, x: Val, batch: Sequence[int]) -> Val:
    """x [..., r, c] with its batch dims broadcast to `batch`."""
    return e.broadcast_to(x, tuple(batch) + x.shape[-2:])


@lowering("matmul")
def _matmul(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    a0, b0 = args
    shape, dtype = result_type(op)
    a = a0 if a0.rank > 1 else e.reshape(a0, (1,) + a0.shape)
    b = b0 if b0.rank > 1 else e.reshape(b0, b0.shape + (1,))
    return [e.convert(e.reshape(matmul_values(e, ctx, a, b), shape), dtype)]


def matmul_values(e: Emitter, ctx: Context, a: Val, b: Val) -> Val:
    """NumPy matmul of a [..., M, K] and b [..., K, N] (rank >= 2, batch dims broadcast) in
    the compute dtype: [..., M, N]."""
    if b.rank == 2:  # batch dims of a only: one [B*M, K] @ [K, N] product
        return e.reshape(_rows_times(e, ctx, a, b, 0), a.shape[:-1] + b.shape[-1:])
    if a.rank == 2:  # [M, K] @ [..., K, N] -> [M, ..., N] -> [..., M, N]
        y = dot(e, ctx, a, b, ([], []), ([1], [b.rank - 2]))
        return e.transpose(y, list(range(1, b.rank - 1)) + [0, b.rank - 1])
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a, b = _broadcast_batch(e, a, batch), _broadcast_batch(e, b, batch)
    nb = len(batch)
    return dot(e, ctx, a, b, (list(range(nb)), list(range(nb))), ([nb + 1], [nb]))


@lowering("gemm")
def _gemm(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    a, b, c = optional(args, 3)
    shape, dtype = result_type(op)
    alpha, beta = op.attrs["alpha"], op.attrs["beta"]
    y = dot(e, ctx, a, b, ([], []), ([0 if op.attrs["trans_a"] else 1],
                                     [1 if op.attrs["trans_b"] else 0]))
    cast = (lambda v: int(v)) if dtype.is_int else float
    if alpha != 1.0:
        y = e.mul(y, e.const(cast(alpha), y.dtype))
    if c is not None and beta != 0.0:
        cw = e.convert(c, y.dtype)
        y = e.add(y, cw if beta == 1.0 else e.mul(cw, e.const(cast(beta), y.dtype)))
    return [e.convert(y, dtype)]


def _rows_times(e: Emitter, ctx: Context, x: Val, w: Val, k_axis: int) -> Val:
    """x [..., K] with its leading dims flattened into rows, times w (contracted on k_axis):
    a plain 2-D product, which the TPU tiling (and XLA's dot emitters) handle best."""
    rows = e.reshape(x, (math.prod(x.shape[:-1]), x.shape[-1]))
    return dot(e, ctx, rows, w, ([], []), ([1], [k_axis]))


@lowering("linear")
def _linear(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, w, bias = optional(args, 3)
    shape, dtype = result_type(op)
    y = e.reshape(_rows_times(e, ctx, x, w, 1), shape)
    if bias is not None:
        y = e.add(y, e.convert(bias, y.dtype))
    return [e.convert(y, dtype)]


# --- einsum ---------------------------------------------------------------------------------------


def _diagonal(e: Emitter, x: Val, labels: list[str]) -> tuple[Val, list[str]]:
    """Remove repeated labels of one operand by taking the diagonal."""
    while True:
        seen: dict[str, int] = {}
        pair = None
        for i, lab in enumerate(labels):
            if lab in seen:
                pair = (seen[lab], i)
                break
            seen[lab] = i
        if pair is None:
            return x, labels
        p, q = pair
        mask = e.compare("EQ", e.iota(x.shape, p), e.iota(x.shape, q))
        zero = e.const(0, x.dtype)
        x = e.reduce_simple(e.select(mask, x, zero), 0, [q], "add")
        labels = labels[:q] + labels[q + 1:]


def _sum_out(e: Emitter, x: Val, labels: list[str], keep: set[str]) -> tuple[Val, list[str]]:
    drop = [i for i, lab in enumerate(labels) if lab not in keep]
    if drop:
        x = e.reduce_simple(x, 0, drop, "add")
    return x, [lab for lab in labels if lab in keep]


def einsum(e: Emitter, ctx: Context, equation: str, inputs: list[Val]) -> tuple[Val, list[str],
                                                                               dict[str, int]]:
    """The einsum of inputs: (value, its labels, label sizes); the caller orders and shapes it."""
    ins, out = parse_einsum(equation, [x.rank for x in inputs])
    n_ell = max([x.rank - (len(lab) - 1) for x, lab in zip(inputs, ins) if "..." in lab],
                default=0)
    ell = [f"...{i}" for i in range(n_ell)]

    def expand(lab: list[str], rank: int) -> list[str]:
        if "..." not in lab:
            return list(lab)
        k = rank - (len(lab) - 1)
        i = lab.index("...")
        return lab[:i] + ell[n_ell - k:] + lab[i + 1:]
    labels = [expand(lab, x.rank) for lab, x in zip(ins, inputs)]
    out_labels = expand(out, n_ell + len(out) - 1) if "..." in out else list(out)
    sizes: dict[str, int] = {}
    for x, lab in zip(inputs, labels):
        for d, s in zip(x.shape, lab):
            sizes[s] = max(sizes.get(s, 1), d)
    ops: list[tuple[Val, list[str]]] = []
    for x, lab in zip(inputs, labels):
        x = e.convert(x, compute_dtype(x.dtype))
        x, lab = _diagonal(e, x, lab)
        # a size-1 dim that broadcasts against a larger one drops out (it broadcasts later)
        ones = [i for i, s in enumerate(lab) if x.shape[i] == 1 and sizes[s] > 1]
        if ones:
            x = e.reshape(x, [d for i, d in enumerate(x.shape) if i not in ones])
            lab = [s for i, s in enumerate(lab) if i not in ones]
        ops.append((x, lab))
    for i in range(len(ops)):
        others = set(out_labels)
        for j, (_, lab) in enumerate(ops):
            if j != i:
                others |= set(lab)
        ops[i] = _sum_out(e, ops[i][0], ops[i][1], others)
    x, lab = ops[0]
    for i in range(1, len(ops)):
        y, ylab = ops[i]
        later = set(out_labels)
        for _, l2 in ops[i + 1:]:
            later |= set(l2)
        common = [s for s in lab if s in ylab]
        batch = [s for s in common if s in later]
        contract = [s for s in common if s not in later]
        x = dot(e, ctx, x, y, ([lab.index(s) for s in batch], [ylab.index(s) for s in batch]),
                ([lab.index(s) for s in contract], [ylab.index(s) for s in contract]))
        lab = batch + [s for s in lab if s not in common] + [s for s in ylab if s not in common]
        x, lab = _sum_out(e, x, lab, later)
    x, lab = _sum_out(e, x, lab, set(out_labels))
    return x, lab, {s: sizes[s] for s in out_labels}


@lowering("einsum")
def _einsum(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    shape, dtype = result_type(op)
    x, lab, sizes = einsum(e, ctx, op.attrs["equation"].replace(" ", ""), list(args))
    out_labels = list(sizes)
    # order as the output, then broadcast the labels that only size-1 dims carried
    present = [s for s in out_labels if s in lab]
    x = e.transpose(x, [lab.index(s) for s in present])
    full = [sizes[s] for s in out_labels]
    x = e.broadcast_in_dim(x, full, [out_labels.index(s) for s in present])
    return [e.convert(e.reshape(x, shape), dtype)]


# --- det ------------------------------------------------------------------------------------------

MAX_DET = 64


@lowering("det")
def _det(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    """LU with partial pivoting, unrolled over the columns, in the wide float (the reference
    uses LAPACK in f64)."""
    x0 = args[0]
    shape, dtype = result_type(op)
    m = x0.shape[-1]
    if m > MAX_DET:
        raise unsupported(op, f"det of {m}x{m} matrices: the StableHLO lowering unrolls "
                              f"elimination for at most {MAX_DET} columns")
    wide = ctx.options.wide_float
    a = e.convert(e.convert(x0, compute_dtype(x0.dtype)), wide)
    batch = x0.shape[:-2]
    nb = len(batch)
    a = e.reshape(a, (math.prod(batch), m, m))
    bsz = a.shape[0]
    sign = e.const(1.0, wide, (bsz,))
    rows = e.iota((bsz, m), 1)
    for k in range(m):
        col = e.reshape(e.slice_axis(a, 2, k, k + 1), (bsz, m))
        mag = e.select(e.compare("GE", rows, k), e.abs(col), e.const(-1.0, wide))
        # first row of largest magnitude at or below k (argmax with ties to the lower row)

        def body(s: Emitter, va: Val, ia: Val, vb: Val, ib: Val) -> list[Val]:
            pick_a = s.or_(s.compare("GT", va, vb),
                           s.and_(s.compare("EQ", va, vb), s.compare("LT", ia, ib)))
            return [s.select(pick_a, va, vb), s.select(pick_a, ia, ib)]
        _, p = e.reduce([mag, rows], [e.const(-2.0, wide), e.const(m, dt.i64)], [1], body)
        # swap rows k and p: a permutation matrix per batch
        pk = e.broadcast_in_dim(p, (bsz, m), [0])
        c_i = e.iota((bsz, m, m), 2)
        src = e.select(e.compare("EQ", rows, k), pk,
                       e.select(e.compare("EQ", rows, pk), e.const(k, dt.i64), rows))
        perm = e.convert(e.compare("EQ", c_i, e.broadcast_in_dim(src, (bsz, m, m), [0, 1])),
                         wide)
        a = e.dot_general(perm, a, ([0], [0]), ([2], [1]))
        sign = e.select(e.compare("EQ", p, k), sign, e.neg(sign))
        pivot = e.reshape(e.slice(a, [0, k, k], [bsz, k + 1, k + 1]), (bsz, 1))
        col = e.reshape(e.slice_axis(a, 2, k, k + 1), (bsz, m))
        below = e.compare("GT", rows, k)
        safe = e.select(e.compare("EQ", pivot, 0.0), e.const(1.0, wide), pivot)
        factors = e.select(e.and_(below, e.compare("NE", e.broadcast_to(pivot, (bsz, m)), 0.0)),
                           e.div(col, safe), e.const(0.0, wide))
        row_k = e.slice(a, [0, k, 0], [bsz, k + 1, m])  # [b, 1, m]
        a = e.sub(a, e.mul(e.reshape(factors, (bsz, m, 1)), row_k))
    diag_mask = e.compare("EQ", e.iota((bsz, m, m), 1), e.iota((bsz, m, m), 2))
    diag = e.reduce_simple(e.select(diag_mask, a, e.const(0.0, wide)), 0, [2], "add")
    det = e.mul(e.reduce_simple(diag, 1.0, [1], "multiply"), sign)
    if nb == 0:
        det = e.reshape(det, ())
    return [e.convert(e.convert(e.reshape(det, shape), compute_dtype(dtype)), dtype)]

