"""Quantized ops: quantize / dequantize (per tensor, per axis), dynamic_quantize, requantize, the
exact integer contractions matmul_integer and conv_integer, and qlinear_matmul / qlinear_conv.

The semantics are the references in compiler/ir/ops/quantization.py, bit for bit: x / scale in
the float compute type, rounding half to even, NaN to the zero point, saturation; requantize
multiplies in f64 (exact for every i32 accumulator, as the reference does).

matmul_integer is an int8 contraction over 4-byte words. With a' the activations and b the
weights, one of them unsigned and the other signed (a is flipped to the other signedness,
a ^ 0x80, when both have the same: the zero point moves by 128 with it),

    acc[i, j] = sum_k (a'[i, k] - za') * (b[k, j] - zb)
              = S[i, j] - za' * colsum(b)[j] - zb * rowsum(a')[i] + K * za' * zb,
    S[i, j]   = sum over groups g of 4 k: dot4_u8s8(word of the unsigned operand, word of the
                signed one),

all in wrapping i32 arithmetic (the reference's int64 sum wrapped to i32). dot4_u8s8 is one
vpdpbusd lane on AVX-512 VNNI / AVX-VNNI hosts (codegen/llvm/intrinsics.py has the exact
pmaddwd and portable fallbacks). A word is a 4-lane byte read bitcast to i32; vectorized along
the output's columns, 16 words of a constant weight packed in panels with the 4 bytes of a
group of k adjacent (`Schedule.pack(b, 1, NR, 4)`, schedules/int8.py) are one 64-byte load.
K is padded to a multiple of 4 with zeros (a copy of a, or of a non-constant b, then does it).
colsum(b) and rowsum(a') are dot4 reductions against a word of ones, only built when the other
operand's zero point is not a constant 0.

conv_integer is a plain widening reduction (i32 products over channels and the window); it
shares the fp32 conv's loop structure, not the int8 micro-kernel.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from compiler.ir import dtypes as dt
from compiler.ir.core import Op
from compiler.ir.types import normalize_axis

from .. import te
from ..ir import (BOOL, F32, I32, I64, Const, Expr, KernelError, TensorLoad, Var, binop, call,
                  cast, const, maximum, minimum, ramp, select)
from ..lower import Ctx, View, attrs_of, lowering, out_dtype, out_shape, view_of

F64 = dt.dtype("f64")
U8, I8 = dt.dtype("u8"), dt.dtype("i8")
ONES = 0x01010101  # a word of four 1 bytes: dot4 against it sums the other operand's bytes


# ------------------------------------------------------------------------------ helpers

def _compute(d: dt.DType) -> dt.DType:
    """The float type quantization arithmetic runs in: f16/bf16 widen to f32 (the reference)."""
    return F32 if d.name in ("f16", "bf16") else d


def _is_scalar_shape(shape: Sequence[Any]) -> bool:
    return len(shape) == 0 or (len(shape) == 1 and isinstance(shape[0], int) and shape[0] == 1)


def _param(p: Optional[View], ndim: int, axis: int) -> Callable[..., Optional[Expr]]:
    """A per-tensor or per-axis scale / zero point as a function of the data's indices."""
    if p is None:
        return lambda *i: None
    if _is_scalar_shape(p.shape):
        return lambda *i: p.at(*[Const(0)] * p.ndim)
    ax = normalize_axis(axis, ndim)
    return lambda *i: p.at(i[ax])


def _widen_int(e: Expr, wide: dt.DType) -> Expr:
    """An integer (narrow ints included) as `wide`."""
    if e.dtype.is_narrow:
        from .misc import narrow_cast
        return narrow_cast(e, wide)
    return cast(wide, e)


def _to_float(e: Expr, fd: dt.DType) -> Expr:
    if e.dtype.is_narrow:
        from .misc import narrow_cast
        return narrow_cast(e, fd)
    return cast(fd, e)


def _is_zero(e: Optional[Expr]) -> bool:
    return e is None or (isinstance(e, Const) and e.value == 0)


def round_saturate(v: Expr, zp: Optional[Expr], out: dt.DType) -> Expr:
    """saturate(round_half_to_even(v) + zp) as `out` (an integer type); NaN rounds to 0. The
    clamp happens in float against [lo - zp, hi - zp], exact there, so the integer add after it
    cannot overflow."""
    lo, hi = out.int_range()
    zp_bits = 0 if zp is None else zp.dtype.bits
    # f32 holds every bound of the 8/16-bit types exactly; i32 ranges need f64
    fd = F64 if v.dtype == F64 or out.bits > 16 or zp_bits > 16 else F32
    wide = I64 if fd == F64 else I32
    v = cast(fd, v)
    v = select(call("isnan", BOOL, v), const(0.0, fd), v)
    z = const(0, wide) if zp is None else _widen_int(zp, wide)
    lo_f = cast(fd, binop("-", const(lo, wide), z))
    hi_f = cast(fd, binop("-", const(hi, wide), z))
    # clamping to integer bounds commutes with rounding; then adding 1.5 * 2^23 (2^52 for f64)
    # leaves an ulp of 1, so the add itself rounds half to even and the integer sits in the
    # low mantissa bits: exact for |v| < 2^22, and vector code (no float -> int conversion)
    c = maximum(minimum(v, hi_f), lo_f)
    magic = 1.5 * 2.0 ** (52 if fd == F64 else 23)
    bits = call("bitcast", wide, binop("+", c, const(magic, fd)))
    r = binop("-", bits, call("bitcast", wide, const(magic, fd)))
    q = binop("+", r, z)
    if out.is_narrow:
        from .misc import narrow_cast
        return narrow_cast(q, out)
    return cast(out, q)


# ------------------------------------------------------------------------------ quantize family

@lowering("quantize")
def _quantize(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """saturate(round(x / scale) + zero_point); narrow float results convert like `cast`."""
    x, scale = xs[0], xs[1]
    zp = xs[2] if len(xs) > 2 else None
    a = attrs_of(op)
    out = out_dtype(op)
    cd = _compute(x.dtype)
    fs, fz = _param(scale, x.ndim, a["axis"]), _param(zp, x.ndim, a["axis"])

    def f(*i: Expr) -> Expr:
        q = binop("/", cast(cd, x.at(*i)), cast(cd, fs(*i)))
        if out.is_narrow_float:
            from .misc import narrow_cast
            z = fz(*i)
            if z is not None:  # a zero zero point adds nothing (-0 stays -0)
                zf = _to_float(z, cd)
                q = select(binop("==", zf, const(0.0, cd)), q, binop("+", q, zf))
            return narrow_cast(q, out, bool(a["saturate"]))
        return round_saturate(q, fz(*i), out)
    return View(x.shape, out, f)


@lowering("dequantize")
def _dequantize(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """(x - zero_point) exactly in integers, converted once to the scale's compute type, times
    the scale, rounded to the scale's dtype."""
    x, scale = xs[0], xs[1]
    zp = xs[2] if len(xs) > 2 else None
    a = attrs_of(op)
    d = scale.dtype
    cd = _compute(d)
    fs, fz = _param(scale, x.ndim, a["axis"]), _param(zp, x.ndim, a["axis"])
    wide = I32 if x.dtype.bits <= 16 else I64

    def f(*i: Expr) -> Expr:
        v, z = x.at(*i), fz(*i)
        if x.dtype.is_narrow_float:
            dx = _to_float(v, cd)
            if z is not None:
                dx = binop("-", dx, _to_float(z, cd))
        else:
            dx = _widen_int(v, wide)
            if not _is_zero(z):
                dx = binop("-", dx, _widen_int(z, wide))
            dx = cast(cd, dx)
        return cast(d, binop("*", dx, cast(cd, fs(*i))))
    return View(x.shape, d, f)


@lowering("requantize")
def _requantize(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """saturate(round(x * multiplier) + zero_point), the product in f64 as the reference."""
    x, mult, zp = xs
    out = out_dtype(op)
    fm = _param(mult, x.ndim, attrs_of(op)["axis"])
    fz = _param(zp, x.ndim, 0)
    return View(x.shape, out, lambda *i: requantize_expr(x.at(*i), fm(*i), fz(*i), out))


def requantize_expr(acc: Expr, mult: Expr, zp: Optional[Expr], out: dt.DType) -> Expr:
    v = binop("*", cast(F64, acc), cast(F64, mult))
    return round_saturate(v, zp, out)


@lowering("dynamic_quantize")
def _dynamic_quantize(ctx: Ctx, op: Op, xs: list[View]) -> list[View]:
    """u8 quantization with the scale and zero point of x's range (0 included), step for step
    as ONNX's reference: max/min reductions, then scalar stages, then the elementwise map."""
    x = xs[0]
    cd = _compute(x.dtype)
    rshape = list(x.shape)

    def val(*r: Expr) -> Expr:
        return cast(cd, x.at(*r))
    mx = view_of(te.reduce(ctx.name("dq_max"), (), rshape, val, "max", const(float("-inf"), cd)))
    mn = view_of(te.reduce(ctx.name("dq_min"), (), rshape, val, "min", const(float("inf"), cd)))
    zero = const(0.0, cd)

    def scale_fn() -> Expr:
        m, n = mx.at(), mn.at()
        hi = select(binop(">", m, zero), m, zero)  # Python's max(0, m): NaN gives 0
        lo = select(binop("<", n, zero), n, zero)
        rng = select(binop("==", hi, lo), const(1.0, cd), binop("-", hi, lo))
        return binop("/", rng, const(255.0, cd))
    scale = view_of(te.compute(ctx.name("dq_scale"), (), scale_fn, cd))

    def zp_fn() -> Expr:
        n = mn.at()
        lo = select(binop("<", n, zero), n, zero)
        t = binop("-", zero, binop("/", lo, scale.at()))
        t = maximum(minimum(t, const(255.0, cd)), zero)
        return cast(U8, call("round", cd, t))
    zp = view_of(te.compute(ctx.name("dq_zero_point"), (), zp_fn, U8))

    def y(*i: Expr) -> Expr:
        return round_saturate(binop("/", val(*i), scale.at()), zp.at(), U8)
    return [View(x.shape, U8, y), scale, zp]


# ------------------------------------------------------------------------------ matmul_integer

def _placeholder_of(v: View) -> Optional[te.Tensor]:
    """The kernel input a view reads at its own indices, if it is one (no copy needed)."""
    probe = [Var(f"q.probe{k}") for k in range(v.ndim)]
    e = v.at(*probe)
    if isinstance(e, TensorLoad) and e.tensor.stage is None and list(e.indices) == probe \
            and e.tensor.dtype == v.dtype \
            and [str(s) for s in e.tensor.shape] == [str(s) for s in v.shape]:
        return e.tensor
    return None


def _batch_index(v: View, obatch: Sequence[Any], bt: Sequence[Expr], keep: int) -> list[Expr]:
    """Indices of v's leading (batch) dims for output batch indices `bt` (v's last `keep` dims
    are not batch dims), broadcasting size-1 dims."""
    r = len(obatch) - (v.ndim - keep)
    out: list[Expr] = []
    for k, d in enumerate(v.shape[:v.ndim - keep]):
        one = (isinstance(d, int) and d == 1) or (isinstance(d, Const) and d.value == 1)
        out.append(Const(0) if one else bt[r + k])
    return out


def _word(t: te.Tensor, idx: Sequence[Expr]) -> Expr:
    """The 4 bytes of t at idx (the last index a 4-lane ramp) as one i32 word."""
    return call("bitcast", I32, TensorLoad(t, tuple(idx), t.dtype, 4))


def _dot4(u: Expr, s: Expr) -> Expr:
    return call("dot4_u8s8", I32, u, s)


def _contraction_param(p: Optional[View], obatch: Sequence[Any], side: str
                       ) -> Callable[..., Optional[Expr]]:
    """A per-tensor, per-row (side 'a': [M] or [..., M, 1]) or per-column (side 'b': [N] or
    [..., 1, N]) parameter as a function of the output's (batch..., i, j)."""
    if p is None:
        return lambda *i: None
    if _is_scalar_shape(p.shape):
        return lambda *i: p.at(*[Const(0)] * p.ndim)
    if p.ndim == 1:
        return (lambda *i: p.at(i[-2])) if side == "a" else (lambda *i: p.at(i[-1]))

    def f(*i: Expr) -> Expr:
        bt, ii, jj = i[:-2], i[-2], i[-1]
        lead = _batch_index(p, obatch, bt, 2)
        return p.at(*lead, ii, Const(0)) if side == "a" else p.at(*lead, Const(0), jj)
    return f


def _static_value(p: Optional[View], fp: Callable[..., Optional[Expr]], rank: int,
                  value: int) -> bool:
    """Whether a zero point is known to equal `value` everywhere (absent means 0)."""
    if p is None:
        return value == 0
    if not _is_scalar_shape(p.shape):
        return False
    e = fp(*[Const(0)] * rank)
    return isinstance(e, Const) and e.value == value


def integer_matmul(ctx: Ctx, a: View, b: View, za: Optional[View], zb: Optional[View],
                   shape: Sequence[Any]) -> View:
    """(a - za) @ (b - zb) exactly, wrapped to i32, for a [..., M, K] and b [..., K, N] (batch
    dims broadcast to shape[:-2]); see the module docstring."""
    nb = len(shape) - 2
    obatch = tuple(shape[:nb])
    K = a.shape[-1]
    if not isinstance(K, int):  # KernelError: the lowering driver adds the op and location
        name = K.name if isinstance(K, Var) else K
        raise KernelError(f"the contraction dim K is symbolic (?{name}); the int8 kernel needs "
                          "a static K")
    K4 = -(-K // 4)
    ragged = K % 4 != 0
    flip = a.dtype == b.dtype  # dot4 takes one unsigned and one signed operand
    a_dt = (U8 if a.dtype == I8 else I8) if flip else a.dtype
    shift = 0 if not flip else (128 if a.dtype == I8 else -128)  # a' = a + shift, as a_dt

    # a' (converted and padded along K when needed): the input itself, or a copy
    at = None if flip or ragged else _placeholder_of(a)
    if at is None:
        def a_fn(*i: Expr) -> Expr:
            *lead, row, k = i
            v = a.at(*lead, row, minimum(k, K - 1) if ragged else k)
            if flip:
                v = cast(a_dt, binop("^", v, const(-128 if v.dtype == I8 else 128, v.dtype)))
            return select(binop("<", k, K), v, const(0, a_dt)) if ragged else v
        at = te.compute(ctx.name("a_q"), tuple(a.shape[:-1]) + (K4 * 4,), a_fn, a_dt)

    # b: a 2-D weight is read in place (the schedule packs it as [K/4, N, 4]); otherwise a copy
    # in that layout, zero-padded along K
    bt = _placeholder_of(b) if b.ndim == 2 and not ragged else None
    packable = bt is not None and bt.name in ctx.constant_inputs
    if bt is None or not packable:
        def b_fn(*i: Expr) -> Expr:
            *lead, g, j, r = i
            k = binop("+", binop("*", g, 4), r)
            v = b.at(*lead, minimum(k, K - 1) if ragged else k, j)
            return select(binop("<", k, K), v, const(0, b.dtype)) if ragged else v
        bt = te.compute(ctx.name("b_q"), tuple(b.shape[:-2]) + (K4, b.shape[-1], 4), b_fn,
                        b.dtype)
        packable = False

    def a_word(lead: Sequence[Expr], i: Expr, g: Expr) -> Expr:
        return _word(at, [*lead, i, ramp(binop("*", g, 4), 1, 4)])

    def b_word(lead: Sequence[Expr], j: Expr, g: Expr) -> Expr:
        if packable:
            return _word(bt, [ramp(binop("*", g, 4), 1, 4), j])
        return _word(bt, [*lead, g, j, ramp(Const(0), 1, 4)])

    a_unsigned = a_dt == U8

    def mm_fn(*v: Expr) -> Expr:
        bti, i, j, g = v[:nb], v[nb], v[nb + 1], v[nb + 2]
        aw = a_word(_batch_index(a, obatch, bti, 2), i, g)
        bw = b_word(_batch_index(b, obatch, bti, 2), j, g)
        return _dot4(aw, bw) if a_unsigned else _dot4(bw, aw)
    mm = te.reduce(ctx.name("matmul_i8"), tuple(shape), [K4], mm_fn, "+", const(0, I32))

    fza = _contraction_param(za, obatch, "a")
    fzb = _contraction_param(zb, obatch, "b")
    za_nonzero = not _static_value(za, fza, len(shape), -shift)  # za' = za + shift != 0
    zb_nonzero = not _static_value(zb, fzb, len(shape), 0)
    ones = Const(ONES, I32)

    colsum = rowsum = None
    if za_nonzero:  # colsum(b)[j]: one per column, over b's batch dims
        bb = tuple(b.shape[:-2])

        def cb_fn(*v: Expr) -> Expr:
            lead, j, g = v[:-2], v[-2], v[-1]
            bw = b_word(lead, j, g)
            return _dot4(ones, bw) if a_unsigned else _dot4(bw, ones)
        colsum = te.reduce(ctx.name("colsum_i8"), bb + (b.shape[-1],), [K4], cb_fn, "+",
                           const(0, I32))
    if zb_nonzero:  # rowsum(a')[i]: one per row, over a's batch dims
        ab = tuple(a.shape[:-2])

        def ra_fn(*v: Expr) -> Expr:
            lead, i, g = v[:-2], v[-2], v[-1]
            aw = a_word(lead, i, g)
            return _dot4(aw, ones) if a_unsigned else _dot4(ones, aw)
        rowsum = te.reduce(ctx.name("rowsum_i8"), ab + (a.shape[-2],), [K4], ra_fn, "+",
                           const(0, I32))

    ctx.contractions.append({"stage": mm.stage.name, "a": a, "b": b, "b_kn": True, "batch": nb,
                             "int8": {"pack": bt.name if packable else None,
                                      "copies": [t.stage.name for t in (at, bt)
                                                 if t.stage is not None],
                                      "colsum": colsum.stage.name if colsum else None,
                                      "rowsum": rowsum.stage.name if rowsum else None}})

    def out(*i: Expr) -> Expr:
        bti, row, col = i[:nb], i[nb], i[nb + 1]
        y = mm[tuple(i)]
        zap = None
        if za_nonzero:
            z = fza(*i)
            zap = binop("+", cast(I32, z) if z is not None else const(0, I32), shift)
            y = binop("-", y, binop("*", zap, colsum[tuple(_batch_index(b, obatch, bti, 2))
                                                     + (col,)]))
        if zb_nonzero:
            zbv = cast(I32, fzb(*i))
            y = binop("-", y, binop("*", zbv, rowsum[tuple(_batch_index(a, obatch, bti, 2))
                                                     + (row,)]))
            if zap is not None:
                y = binop("+", y, binop("*", binop("*", zap, zbv), K))
        return y
    return View(tuple(shape), I32, out)


def _promote_matmul(a: View, b: View, shape: Sequence[Any]
                    ) -> tuple[View, View, tuple, Callable[[View], View]]:
    """1-D operands as matrices (NumPy's promotion) and the function squeezing the result."""
    sa, sb = a.ndim == 1, b.ndim == 1
    if sa:
        a = View((1,) + a.shape, a.dtype, lambda i, k, a=a: a.at(k))
    if sb:
        b = View(b.shape + (1,), b.dtype, lambda k, j, b=b: b.at(k))
    full = tuple(shape)
    if sa and sb:
        full = (1, 1)
    elif sa:
        full = full[:-1] + (1,) + full[-1:]
    elif sb:
        full = full + (1,)

    def squeeze(v: View) -> View:
        if not (sa or sb):
            return v

        def f(*i: Expr) -> Expr:
            idx = list(i)
            if sa and sb:
                return v.at(Const(0), Const(0))
            if sa:
                idx = idx[:-1] + [Const(0)] + idx[-1:]
            if sb:
                idx = idx + [Const(0)]
            return v.at(*idx)
        return View(tuple(shape), v.dtype, f)
    return a, b, full, squeeze


@lowering("matmul_integer")
def _matmul_integer(ctx: Ctx, op: Op, xs: list[View]) -> View:
    a, b = xs[0], xs[1]
    za = xs[2] if len(xs) > 2 else None
    zb = xs[3] if len(xs) > 3 else None
    shape = out_shape(ctx, op)
    a2, b2, full, squeeze = _promote_matmul(a, b, shape)
    return squeeze(integer_matmul(ctx, a2, b2, za, zb, full))


@lowering("qlinear_matmul")
def _qlinear_matmul(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """requantize(matmul_integer(a, b, za, zb), (a_scale * b_scale) / y_scale, y_zero_point),
    the multiplier in f32 per row and column as the reference computes it."""
    a, sa, za, b, sb, zb, sy, zy = xs
    shape = out_shape(ctx, op)
    out = out_dtype(op)
    a2, b2, full, squeeze = _promote_matmul(a, b, shape)
    acc = integer_matmul(ctx, a2, b2, za, zb, full)
    obatch = tuple(full[:-2])
    fsa, fsb = _contraction_param(sa, obatch, "a"), _contraction_param(sb, obatch, "b")
    cd = _compute(sy.dtype)
    for s in (sa, sb):
        cd = F64 if _compute(s.dtype) == F64 else cd
    ysc = sy.at(*[Const(0)] * sy.ndim)
    yz = zy.at(*[Const(0)] * zy.ndim)

    def f(*i: Expr) -> Expr:
        m = binop("/", binop("*", cast(cd, fsa(*i)), cast(cd, fsb(*i))), cast(cd, ysc))
        return requantize_expr(acc.at(*i), m, yz, out)
    return squeeze(View(tuple(full), out, f))


# ------------------------------------------------------------------------------ conv_integer

def _conv_window(a: dict, d: int) -> tuple[list[int], list[int], list[int], int]:
    ss = list(a.get("strides") or ()) or [1] * d
    ps = list(a.get("pads") or ()) or [0] * (2 * d)
    ds = list(a.get("dilations") or ()) or [1] * d
    return ss, ps, ds, int(a.get("groups", 1))


def integer_conv(ctx: Ctx, op: Op, x: View, w: View, xz: Optional[View], wz: Optional[View],
                 bias: Optional[View], shape: Sequence[Any]) -> View:
    """conv(x - xz, w - wz) [+ bias] exactly, wrapped to i32; padding is zero after the shift
    (the zero point before it). A reduce stage over (input channel of the group, kernel...)."""
    d = x.ndim - 2
    ss, ps, ds, groups = _conv_window(attrs_of(op), d)
    cg = w.shape[1]
    ks = [int(k) for k in w.shape[2:]]
    m_per_group = w.shape[0] // groups if isinstance(w.shape[0], int) else None
    fxz = (lambda: None) if xz is None else (lambda: xz.at(*[Const(0)] * xz.ndim))
    xz0 = fxz()
    wz_scalar = wz is not None and _is_scalar_shape(wz.shape)

    def wz_at(m: Expr) -> Optional[Expr]:
        if wz is None:
            return None
        return wz.at(*[Const(0)] * wz.ndim) if wz_scalar else wz.at(m)

    def fn(*v: Expr) -> Expr:
        n, m, o = v[0], v[1], v[2:2 + d]
        c, kk = v[2 + d], v[3 + d:]
        g = binop("//", m, m_per_group) if groups > 1 else Const(0)
        ch = binop("+", binop("*", g, cg), c) if groups > 1 else c
        pos, conds = [], []
        for ax in range(d):
            p = binop("+", binop("-", binop("*", o[ax], ss[ax]), ps[ax]),
                      binop("*", kk[ax], ds[ax]))
            size = x.shape[2 + ax]
            conds += [binop(">=", p, 0), binop("<", p, size)]
            pos.append(maximum(minimum(p, binop("-", size, 1) if not isinstance(size, int)
                                       else size - 1), 0))
        xv = cast(I32, x.at(n, ch, *pos))
        if not _is_zero(xz0):
            xv = binop("-", xv, cast(I32, xz0))
        inside = conds[0]
        for cnd in conds[1:]:
            inside = binop("and", inside, cnd)
        xv = select(inside, xv, const(0, I32))
        wv = cast(I32, w.at(m, c, *kk))
        z = wz_at(m)
        if not _is_zero(z):
            wv = binop("-", wv, cast(I32, z))
        return binop("*", xv, wv)
    acc = te.reduce(ctx.name("conv_i8"), tuple(shape), [cg] + ks, fn, "+", const(0, I32))
    v = view_of(acc)
    if bias is None:
        return v
    return View(v.shape, I32, lambda *i: binop("+", v.at(*i), cast(I32, bias.at(i[1]))))


@lowering("conv_integer")
def _conv_integer(ctx: Ctx, op: Op, xs: list[View]) -> View:
    x, w = xs[0], xs[1]
    xz = xs[2] if len(xs) > 2 else None
    wz = xs[3] if len(xs) > 3 else None
    return integer_conv(ctx, op, x, w, xz, wz, None, out_shape(ctx, op))


@lowering("qlinear_conv")
def _qlinear_conv(ctx: Ctx, op: Op, xs: list[View]) -> View:
    """requantize(conv_integer(...) + bias, (x_scale * w_scale[m]) / y_scale, y_zero_point)."""
    x, sx, xz, w, sw, wz, sy, zy = xs[:8]
    bias = xs[8] if len(xs) > 8 else None
    shape = out_shape(ctx, op)
    out = out_dtype(op)
    acc = integer_conv(ctx, op, x, w, xz, wz, bias, shape)
    cd = F64 if F64 in (sx.dtype, sw.dtype, sy.dtype) else F32
    sx0 = sx.at(*[Const(0)] * sx.ndim)
    sy0 = sy.at(*[Const(0)] * sy.ndim)
    zy0 = zy.at(*[Const(0)] * zy.ndim)
    sw_scalar = _is_scalar_shape(sw.shape)

    def f(*i: Expr) -> Expr:
        swm = sw.at(*[Const(0)] * sw.ndim) if sw_scalar else sw.at(i[1])
        m = binop("/", binop("*", cast(cd, sx0), cast(cd, swm)), cast(cd, sy0))
        return requantize_expr(acc.at(*i), m, zy0, out)
    return View(tuple(shape), out, f)
