"""Intrinsic calls of the kernel IR as LLVM IR.

LLVM intrinsics where they exist (sqrt, fabs, floor, ceil, roundeven, trunc, minimum/maximum,
fma, vector reductions). exp, log, tanh, erf and sigmoid on f32 are polynomial approximations
(Cephes-style range reduction; max relative error ~2 ulp for exp/log, ~1e-6 for tanh/erf)
built from ordinary instructions, so a 16-lane call stays 16 lanes. Everything else calls libm
once per lane.
"""
from __future__ import annotations

import math
from typing import Any

from llvmlite import ir as ll

from compiler.kernel.ir import Call, KernelError

from .codegen import F16, F32, F64, I1, I32, I64, _suffix, reg_type, vec

LIBM = {"sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
        "exp", "log", "tanh", "erf", "pow", "atan2", "expm1", "log1p", "fmod", "exp2", "log2",
        "cbrt"}


def call_intrinsic(g: Any, b: ll.IRBuilder, name: str, args: list) -> Any:
    t = args[0].type
    fn = g.mc.declare(f"{name}.{_suffix(t)}", t, [a.type for a in args])
    return b.call(fn, args)


def _lanes(t: ll.Type) -> int:
    return t.count if isinstance(t, ll.VectorType) else 1


def _elem(t: ll.Type) -> ll.Type:
    return t.element if isinstance(t, ll.VectorType) else t


def libm(g: Any, b: ll.IRBuilder, name: str, args: list) -> Any:
    t = args[0].type
    et = _elem(t)
    if et == F16:  # compute in f32, round back
        wide = [b.fpext(a, vec(F32, _lanes(t))) for a in args]
        return b.fptrunc(libm(g, b, name, wide), t)
    cname = name + ("f" if et == F32 else "")
    fn = g.mc.declare(cname, et, [et] * len(args))
    if _lanes(t) == 1:
        return b.call(fn, args)
    out = ll.Constant(t, ll.Undefined)
    for lane in range(t.count):
        li = ll.Constant(I32, lane)
        r = b.call(fn, [b.extract_element(a, li) for a in args])
        out = b.insert_element(out, r, li)
    return out


def emit(g: Any, b: ll.IRBuilder, e: Call, args: list) -> Any:
    name = e.name
    t = args[0].type if args else None
    et = _elem(t) if t is not None else None
    if name in ("sqrt", "fabs", "floor", "ceil", "trunc", "roundeven", "fma", "copysign"):
        return call_intrinsic(g, b, "llvm." + name, args)
    if name == "round":
        return call_intrinsic(g, b, "llvm.roundeven", args)
    if name == "rsqrt":
        one = g.const_like(t, 1.0)
        return b.fdiv(one, call_intrinsic(g, b, "llvm.sqrt", args))
    if name == "fmax_nan":
        return call_intrinsic(g, b, "llvm.maximum", args)
    if name == "fmin_nan":
        return call_intrinsic(g, b, "llvm.minimum", args)
    if name == "isnan":
        return b.fcmp_unordered("uno", args[0], args[0])
    if name == "isinf":
        a = call_intrinsic(g, b, "llvm.fabs", args)
        return b.fcmp_ordered("==", a, g.const_like(t, math.inf))
    if name.startswith("reduce_"):
        return reduce_lanes(g, b, name, args[0], e)
    if name == "dot4_u8s8":
        return dot4_u8s8(g, b, args[0], args[1])
    if name == "bitcast":  # reinterpret bits as e.dtype
        return b.bitcast(args[0], vec(reg_type(e.dtype), e.lanes))
    if et == F32 and name in FAST:
        return FAST[name](g, b, args[0])
    if name == "sigmoid":
        one = g.const_like(t, 1.0)
        return b.fdiv(one, b.fadd(one, libm(g, b, "exp", [b.fneg(args[0])])))
    if name == "fmod" and et in (F32, F64):
        return b.frem(args[0], args[1])
    if name in LIBM:
        return libm(g, b, name, args)
    raise KernelError(f"llvm: unknown intrinsic {name}")


def reduce_lanes(g: Any, b: ll.IRBuilder, name: str, v: Any, e: Call) -> Any:
    t = v.type
    et = _elem(t)
    isf = et in (F16, F32, F64)
    if name == "reduce_add":
        if isf:
            fn = g.mc.declare(f"llvm.vector.reduce.fadd.{_suffix(t)}", et, [et, t])
            return b.call(fn, [ll.Constant(et, -0.0), v], fastmath=("reassoc",))
        fn = g.mc.declare(f"llvm.vector.reduce.add.{_suffix(t)}", et, [t])
        return b.call(fn, [v])
    if name == "reduce_mul":
        if isf:
            fn = g.mc.declare(f"llvm.vector.reduce.fmul.{_suffix(t)}", et, [et, t])
            return b.call(fn, [ll.Constant(et, 1.0), v], fastmath=("reassoc",))
        fn = g.mc.declare(f"llvm.vector.reduce.mul.{_suffix(t)}", et, [t])
        return b.call(fn, [v])
    signed = e.args[0].dtype.kind == "int"
    kind = {"reduce_max": "max", "reduce_min": "min", "reduce_fmax_nan": "max",
            "reduce_fmin_nan": "min"}[name]
    if isf:
        op = "fmaximum" if kind == "max" else "fminimum"
    else:
        op = ("s" if signed else "u") + kind
    fn = g.mc.declare(f"llvm.vector.reduce.{op}.{_suffix(t)}", et, [t])
    return b.call(fn, [v])


# ------------------------------------------------------------------------- int8 dot products

DOT4_ISA: "str | None" = None  # "vnni", "pmaddwd" or "generic"; None: the best the host has


def dot4_isa(lanes: int) -> str:
    """How dot4_u8s8 on `lanes` i32 lanes is emitted on this host."""
    if DOT4_ISA is not None:  # forced (tests); the x86 forms exist for 4, 8 and 16 lanes
        return DOT4_ISA if lanes in (4, 8, 16) else "generic"
    from .jit import host
    h = host()
    if (lanes == 16 and h["avx512vnni"]) or (lanes in (4, 8) and (h["avxvnni"] or (
            h["avx512vnni"] and "+avx512vl" in h["features"]))):
        return "vnni"
    if (lanes == 16 and "+avx512bw" in h["features"] and h["vector_bits"] >= 512) or (
            lanes == 8 and "+avx2" in h["features"]) or (lanes == 4 and "+sse2" in h["features"]):
        return "pmaddwd"
    return "generic"


def dot4_u8s8(g: Any, b: ll.IRBuilder, u: Any, s: Any, acc: Any = None) -> Any:
    """Per i32 lane: the sum of the 4 products of u's bytes (unsigned) and s's bytes (signed),
    exact. vpdpbusd (AVX-512 VNNI / AVX-VNNI) where the host has it; else two vpmaddwd on the
    bytes widened to 16 bits (u8 * s8 pairs cannot saturate there, unlike vpmaddubsw's 16-bit
    sums); else shifts and multiplies that any target lowers."""
    t = u.type
    n = _lanes(t)
    isa = dot4_isa(n)
    if isa == "vnni":
        bt = ll.VectorType(ll.IntType(8), 4 * n)
        width = {16: "512", 8: "256", 4: "128"}[n]
        fn = g.mc.declare(f"llvm.x86.avx512.vpdpbusd.{width}", t, [t, bt, bt])
        return b.call(fn, [g.const_like(t, 0) if acc is None else acc, b.bitcast(u, bt),
                           b.bitcast(s, bt)])
    if isa == "pmaddwd":
        ht = ll.VectorType(ll.IntType(16), 2 * n)
        name = {16: "llvm.x86.avx512.pmaddw.d.512", 8: "llvm.x86.avx2.pmadd.wd",
                4: "llvm.x86.sse2.pmadd.wd"}[n]
        fn = g.mc.declare(name, t, [ht, ht])
        uh, sh = b.bitcast(u, ht), b.bitcast(s, ht)
        eight = g.const_like(ht, 8)
        u_even = b.and_(uh, g.const_like(ht, 0xFF))
        u_odd = b.lshr(uh, eight)
        s_even = b.ashr(b.shl(sh, eight), eight)
        s_odd = b.ashr(sh, eight)
        r = b.add(b.call(fn, [u_even, s_even]), b.call(fn, [u_odd, s_odd]))
        return r if acc is None else b.add(acc, r)
    for r in range(4):
        ur = b.and_(b.lshr(u, g.const_like(t, 8 * r)), g.const_like(t, 0xFF))
        sr = b.ashr(b.shl(s, g.const_like(t, 24 - 8 * r)), g.const_like(t, 24))
        p = b.mul(ur, sr)
        acc = p if acc is None else b.add(acc, p)
    return acc


# ------------------------------------------------------------------------- f32 polynomials

def _c(g: Any, t: ll.Type, v: float) -> Any:
    return g.const_like(t, v)


def _poly(g: Any, b: ll.IRBuilder, x: Any, coeffs: list[float]) -> Any:
    """Horner with fma: coeffs from the highest power down."""
    t = x.type
    acc = _c(g, t, coeffs[0])
    for c in coeffs[1:]:
        acc = call_intrinsic(g, b, "llvm.fma", [acc, x, _c(g, t, c)])
    return acc


def fast_exp(g: Any, b: ll.IRBuilder, x: Any) -> Any:
    t = x.type
    n = _lanes(t)
    it = vec(I32, n)
    # clamp to the range where exp is finite and normal; NaN passes through the selects below
    hi, lo = 88.72283935546875, -87.33654022216797
    xc = call_intrinsic(g, b, "llvm.minnum", [x, _c(g, t, hi)])
    xc = call_intrinsic(g, b, "llvm.maxnum", [xc, _c(g, t, lo)])
    k = call_intrinsic(g, b, "llvm.roundeven", [b.fmul(xc, _c(g, t, 1.4426950408889634))])
    r = call_intrinsic(g, b, "llvm.fma", [k, _c(g, t, -0.693359375), xc])
    r = call_intrinsic(g, b, "llvm.fma", [k, _c(g, t, 2.12194440e-4), r])
    p = _poly(g, b, r, [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                        1.6666665459e-1, 5.0000001201e-1])
    r2 = b.fmul(r, r)
    y = call_intrinsic(g, b, "llvm.fma", [p, r2, b.fadd(r, _c(g, t, 1.0))])
    ki = b.fptosi(k, it)
    scale = b.bitcast(b.shl(b.add(ki, g.const_like(it, 127)), g.const_like(it, 23)), t)
    res = b.fmul(y, scale)
    res = b.select(b.fcmp_ordered(">", x, _c(g, t, hi)), _c(g, t, math.inf), res)
    res = b.select(b.fcmp_ordered("<", x, _c(g, t, -103.97)), _c(g, t, 0.0), res)
    # between -103.97 and lo: use two scalings to reach subnormals
    sub = b.fcmp_ordered("<", x, _c(g, t, lo))
    half = fast_exp_plain(g, b, b.fmul(x, _c(g, t, 0.5)))
    res = b.select(b.and_(sub, b.fcmp_ordered(">=", x, _c(g, t, -103.97))),
                   b.fmul(half, half), res)
    return b.select(b.fcmp_unordered("uno", x, x), x, res)


def fast_exp_plain(g: Any, b: ll.IRBuilder, x: Any) -> Any:
    """exp for x in [-87.3, 88.7] (no special cases)."""
    t = x.type
    it = vec(I32, _lanes(t))
    k = call_intrinsic(g, b, "llvm.roundeven", [b.fmul(x, _c(g, t, 1.4426950408889634))])
    r = call_intrinsic(g, b, "llvm.fma", [k, _c(g, t, -0.693359375), x])
    r = call_intrinsic(g, b, "llvm.fma", [k, _c(g, t, 2.12194440e-4), r])
    p = _poly(g, b, r, [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                        1.6666665459e-1, 5.0000001201e-1])
    y = call_intrinsic(g, b, "llvm.fma", [p, b.fmul(r, r), b.fadd(r, _c(g, t, 1.0))])
    ki = b.fptosi(k, it)
    return b.fmul(y, b.bitcast(b.shl(b.add(ki, g.const_like(it, 127)), g.const_like(it, 23)), t))


def fast_log(g: Any, b: ll.IRBuilder, x: Any) -> Any:
    t = x.type
    it = vec(I32, _lanes(t))
    # scale subnormals up by 2^23
    small = b.fcmp_ordered("<", x, _c(g, t, 1.17549435e-38))
    xs = b.select(small, b.fmul(x, _c(g, t, 8388608.0)), x)
    bias = b.select(small, g.const_like(it, 23), g.const_like(it, 0))
    w = b.bitcast(xs, it)
    e = b.sub(b.lshr(w, g.const_like(it, 23)), g.const_like(it, 127))
    e = b.sub(e, bias)
    m = b.bitcast(b.or_(b.and_(w, g.const_like(it, 0x7FFFFF)), g.const_like(it, 0x3F800000)), t)
    # m in [1, 2): move to [sqrt(1/2), sqrt(2))
    big = b.fcmp_ordered(">", m, _c(g, t, 1.41421356))
    m = b.select(big, b.fmul(m, _c(g, t, 0.5)), m)
    e = b.select(big, b.add(e, g.const_like(it, 1)), e)
    f = b.fsub(m, _c(g, t, 1.0))
    p = _poly(g, b, f, [7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
                        1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
                        3.3333331174e-1])
    f2 = b.fmul(f, f)
    y = b.fmul(b.fmul(p, f2), f)
    y = call_intrinsic(g, b, "llvm.fma", [f2, _c(g, t, -0.5), y])
    ef = b.sitofp(e, t)
    r = b.fadd(f, y)
    r = call_intrinsic(g, b, "llvm.fma", [ef, _c(g, t, 0.693147180559945), r])
    r = b.select(b.fcmp_ordered("==", x, _c(g, t, 0.0)), _c(g, t, -math.inf), r)
    r = b.select(b.fcmp_ordered("<", x, _c(g, t, 0.0)), _c(g, t, math.nan), r)
    r = b.select(b.fcmp_ordered("==", x, _c(g, t, math.inf)), _c(g, t, math.inf), r)
    return b.select(b.fcmp_unordered("uno", x, x), x, r)


def fast_tanh(g: Any, b: ll.IRBuilder, x: Any) -> Any:
    t = x.type
    ax = call_intrinsic(g, b, "llvm.fabs", [x])
    # large |x|: 1 - 2/(exp(2|x|)+1); small: odd polynomial (Cephes tanhf)
    axc = call_intrinsic(g, b, "llvm.minnum", [ax, _c(g, t, 20.0)])
    e2 = fast_exp_plain(g, b, b.fmul(axc, _c(g, t, 2.0)))
    big = b.fsub(_c(g, t, 1.0), b.fdiv(_c(g, t, 2.0), b.fadd(e2, _c(g, t, 1.0))))
    x2 = b.fmul(x, x)
    p = _poly(g, b, x2, [-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
                         1.33314422036e-1, -3.33332819422e-1])
    small = call_intrinsic(g, b, "llvm.fma", [b.fmul(p, x2), x, x])
    big = call_intrinsic(g, b, "llvm.copysign", [big, x])
    r = b.select(b.fcmp_ordered("<", ax, _c(g, t, 0.625)), small, big)
    return b.select(b.fcmp_unordered("uno", x, x), x, r)


def fast_erf(g: Any, b: ll.IRBuilder, x: Any) -> Any:
    """erf via 1 - (poly(t)) * exp(-x^2) with t = 1/(1 + p|x|) for |x| >= 0.5 (A&S 7.1.26
    refined) and a Taylor-like polynomial for small |x|."""
    t = x.type
    ax = call_intrinsic(g, b, "llvm.fabs", [x])
    # small |x|: erf(x) = x * P(x^2)
    x2 = b.fmul(x, x)
    ps = _poly(g, b, x2, [1.2055332e-4, -8.5483270e-4, 5.2239776e-3, -2.6866171e-2,
                          1.1283792e-1, -3.7612639e-1, 1.1283792e0])  # Taylor series
    small = b.fmul(x, ps)
    # large |x|: erfc via a rational fit on t = 1/(1+0.5|x|) (Numerical Recipes erfcc, 1.2e-7)
    axc = call_intrinsic(g, b, "llvm.minnum", [ax, _c(g, t, 10.0)])
    tt = b.fdiv(_c(g, t, 1.0), call_intrinsic(g, b, "llvm.fma",
                                             [axc, _c(g, t, 0.5), _c(g, t, 1.0)]))
    q = _poly(g, b, tt, [0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807,
                         -0.18628806, 0.09678418, 0.37409196, 1.00002368, -1.26551223])
    arg = b.fadd(b.fneg(b.fmul(axc, axc)), q)
    erfc = b.fmul(tt, fast_exp(g, b, arg))
    big = call_intrinsic(g, b, "llvm.copysign", [b.fsub(_c(g, t, 1.0), erfc), x])
    r = b.select(b.fcmp_ordered("<", ax, _c(g, t, 0.5)), small, big)
    return b.select(b.fcmp_unordered("uno", x, x), x, r)


def fast_sigmoid(g: Any, b: ll.IRBuilder, x: Any) -> Any:
    t = x.type
    one = _c(g, t, 1.0)
    return b.fdiv(one, b.fadd(one, fast_exp(g, b, b.fneg(x))))


FAST = {"exp": fast_exp, "log": fast_log, "tanh": fast_tanh, "erf": fast_erf,
        "sigmoid": fast_sigmoid}


def fmod_floor(g: Any, b: ll.IRBuilder, x: Any, y: Any) -> Any:
    """x mod y with the divisor's sign (Python/NumPy %): frem, then shift by y when the signs
    differ and the remainder is not zero."""
    t = x.type
    r = b.frem(x, y)
    zero = g.const_like(t, 0.0)
    fix = b.and_(b.fcmp_ordered("!=", r, zero),
                 b.xor(b.fcmp_ordered("<", r, zero), b.fcmp_ordered("<", y, zero)))
    return b.select(fix, b.fadd(r, y), r)
