"""Kernel IR -> LLVM IR (llvmlite.ir), with explicit vector types for vector expressions.

A kernel becomes `void @name(ptr noalias %buf0, ..., i64 %dim0, ...)`. Loops are plain
counted loops; a "parallel" loop is outlined into `@name.par<k>(ptr %closure)` and run by
libgomp's `GOMP_parallel`, each thread taking one contiguous chunk of the iterations. Local
buffers are allocas in the entry block of the function they live in (so a register tile stays in
registers after SROA); "heap" buffers are malloc'd and freed around their scope.

Storage types: bool is i8 in memory and i1 in registers; bf16 is i16 in memory and f32 in
registers (rounded to nearest even on every store); f16 is LLVM half. Math functions on f32
(exp, log, tanh, erf, sigmoid) are polynomial approximations built from vector-friendly
instructions, so they vectorize; the others call libm per lane.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from llvmlite import ir as ll

from compiler.ir import dtypes as dt
from compiler.kernel.ir import (Alloc, Bin, Broadcast, Buffer, Call, Cast, Const, Expr, For, If,
                                Kernel, KernelError, Let, Load, Ramp, Select, Seq, Stmt, Store,
                                Un, Var, walk_expr, walk_stmt)

I1, I8, I16, I32, I64 = ll.IntType(1), ll.IntType(8), ll.IntType(16), ll.IntType(32), ll.IntType(64)
F16, F32, F64 = ll.HalfType(), ll.FloatType(), ll.DoubleType()
PTR = ll.PointerType(I8)
VOID = ll.VoidType()


def reg_type(d: dt.DType) -> ll.Type:
    """The type a value of dtype `d` has in registers."""
    if d.is_bool:
        return I1
    if d.name == "bf16":
        return F32
    if d.name == "f16":
        return F16
    if d.name == "f32":
        return F32
    if d.name == "f64":
        return F64
    if d.is_int or d.is_narrow:
        return ll.IntType(d.np_dtype.itemsize * 8)
    raise KernelError(f"llvm: no register type for {d.name}")


def mem_type(d: dt.DType) -> ll.Type:
    """The type a value of dtype `d` has in memory."""
    if d.is_bool:
        return I8
    if d.name == "bf16":
        return I16
    return reg_type(d)


def vec(t: ll.Type, lanes: int) -> ll.Type:
    return t if lanes == 1 else ll.VectorType(t, lanes)


def _suffix(t: ll.Type) -> str:
    if isinstance(t, ll.VectorType):
        return f"v{t.count}{_suffix(t.element)}"
    if isinstance(t, ll.IntType):
        return f"i{t.width}"
    return {F16: "f16", F32: "f32", F64: "f64"}[t] if t in (F16, F32, F64) else str(t)


def _is_signed(d: dt.DType) -> bool:
    return d.kind in ("int", "narrow_int") or d.is_float


class ModuleCodegen:
    """Collects kernels into one llvmlite module."""

    def __init__(self, name: str = "dlc") -> None:
        self.module = ll.Module(name=name)
        self.functions: dict[str, ll.Function] = {}
        self._decls: dict[str, ll.Function] = {}

    def declare(self, name: str, ret: ll.Type, args: list) -> ll.Function:
        if name not in self._decls:
            existing = self.module.globals.get(name)
            self._decls[name] = existing or ll.Function(
                self.module, ll.FunctionType(ret, args), name=name)
        return self._decls[name]

    def add_kernel(self, k: Kernel) -> ll.Function:
        fn = _KernelGen(self, k).emit()
        self.functions[k.name] = fn
        return fn


class _FnState:
    def __init__(self, fn: ll.Function) -> None:
        self.fn = fn
        self.entry = fn.append_basic_block("entry")
        self.body = fn.append_basic_block("body")
        self.ebuilder = ll.IRBuilder(self.entry)


class _KernelGen:
    def __init__(self, mc: ModuleCodegen, k: Kernel) -> None:
        self.mc = mc
        self.k = k
        self.par_count = 0

    def emit(self) -> ll.Function:
        k = self.k
        argtys = [PTR] * len(k.params) + [I64] * len(k.dims)
        fn = ll.Function(self.mc.module, ll.FunctionType(VOID, argtys), name=k.name)
        for a, b in zip(fn.args[:len(k.params)], k.params):
            a.name = "p_" + _clean(b.name)
            a.add_attribute("noalias")
        for a, v in zip(fn.args[len(k.params):], k.dims):
            a.name = "d_" + _clean(v.name)
        fn.attributes.add("nounwind")
        st = _FnState(fn)
        env: dict = {}
        bufs: dict = {}
        for a, b in zip(fn.args, k.params):
            bufs[id(b)] = a
        for a, v in zip(fn.args[len(k.params):], k.dims):
            env[v] = a
        self.st = st
        b = ll.IRBuilder(st.body)
        b = self.stmt(b, k.body, env, bufs)
        b.ret_void()
        st.ebuilder.branch(st.body)
        return fn

    # ------------------------------------------------------------------------- statements
    def stmt(self, b: ll.IRBuilder, s: Stmt, env: dict, bufs: dict) -> ll.IRBuilder:
        if isinstance(s, Seq):
            for x in s.stmts:
                b = self.stmt(b, x, env, bufs)
            return b
        if isinstance(s, Store):
            ptr_base = bufs[id(s.buffer)]
            if isinstance(s.value, Call) and s.value.name == "masked_store":
                self.masked_access(b, s.buffer, s.index, s.value, env, bufs)
                return b
            val = self.expr(b, s.value, env, bufs)
            self.store(b, s.buffer, ptr_base, s.index, val, env, bufs)
            return b
        if isinstance(s, For):
            if s.kind == "parallel":
                return self.parallel_for(b, s, env, bufs)
            return self.serial_for(b, s, env, bufs)
        if isinstance(s, If):
            cond = self.expr(b, s.cond, env, bufs)
            if s.orelse is None:
                with b.if_then(cond):
                    self.stmt(b, s.then, env, bufs)
            else:
                with b.if_else(cond) as (then, other):
                    with then:
                        self.stmt(b, s.then, env, bufs)
                    with other:
                        self.stmt(b, s.orelse, env, bufs)
            return b
        if isinstance(s, Let):
            env2 = dict(env)
            env2[s.var] = self.expr(b, s.value, env, bufs)
            return self.stmt(b, s.body, env2, bufs)
        if isinstance(s, Alloc):
            buf = s.buffer
            bufs2 = dict(bufs)
            et = mem_type(buf.dtype)
            if buf.scope in ("local", "shared"):
                n = _const_numel(buf)
                # in the entry block: allocas in loops would grow the stack every iteration
                arr = self.st.ebuilder.alloca(ll.ArrayType(et, n), name=_clean(buf.name))
                arr.align = 64
                bufs2[id(buf)] = self.st.ebuilder.bitcast(arr, PTR)
                return self.stmt(b, s.body, env, bufs2)
            # heap
            size = self.expr(b, buf.numel, env, bufs)
            size = b.mul(size, ll.Constant(I64, max(1, _nbytes(et))))
            size = b.and_(b.add(size, ll.Constant(I64, 127)), ll.Constant(I64, -64))
            malloc = self.mc.declare("aligned_alloc", PTR, [I64, I64])
            free = self.mc.declare("free", VOID, [PTR])
            p = b.call(malloc, [ll.Constant(I64, 64), size])
            bufs2[id(buf)] = p
            b = self.stmt(b, s.body, env, bufs2)
            b.call(free, [p])
            return b
        raise KernelError(f"llvm: unknown statement {type(s).__name__}")

    def serial_for(self, b: ll.IRBuilder, s: For, env: dict, bufs: dict,
                   lo: Any = None, hi: Any = None) -> ll.IRBuilder:
        start = lo if lo is not None else ll.Constant(I64, 0)
        stop = hi if hi is not None else self.expr(b, s.extent, env, bufs)
        fn = b.function
        pre = b.block
        head = fn.append_basic_block(_clean(s.name) + ".head")
        body = fn.append_basic_block(_clean(s.name) + ".body")
        exit_ = fn.append_basic_block(_clean(s.name) + ".exit")
        b.branch(head)
        b.position_at_end(head)
        iv = b.phi(I64, name=_clean(s.var.name))
        iv.add_incoming(start, pre)
        b.cbranch(b.icmp_signed("<", iv, stop), body, exit_)
        b.position_at_end(body)
        env2 = dict(env)
        env2[s.var] = iv
        b = self.stmt(b, s.body, env2, bufs)
        nxt = b.add(iv, ll.Constant(I64, 1), flags=["nsw"])
        iv.add_incoming(nxt, b.block)
        b.branch(head)
        b.position_at_end(exit_)
        return b

    def parallel_for(self, b: ll.IRBuilder, s: For, env: dict, bufs: dict) -> ll.IRBuilder:
        """Outline the loop into a function run by every thread of GOMP_parallel."""
        self.par_count += 1
        # captured: every var and buffer the loop uses from outside
        used_vars, used_bufs = _free(s, env, bufs)
        slots: list[tuple[str, Any, Any]] = [("v", v, env[v]) for v in used_vars]
        slots += [("b", buf, bufs[id(buf)]) for buf in used_bufs]
        extent = self.expr(b, s.extent, env, bufs)
        n = len(slots) + 2  # extent, captures, the shared counter of the next free chunk
        closure = self.st.ebuilder.alloca(ll.ArrayType(I64, n), name="closure")
        def slot(bb: ll.IRBuilder, base: Any, i: int) -> Any:
            return bb.gep(base, [ll.Constant(I32, 0), ll.Constant(I32, i)])
        b.store(extent, slot(b, closure, 0))
        b.store(ll.Constant(I64, 0), slot(b, closure, n - 1))
        # buffers travel as pointers, not integers: a pointer loaded from memory is known not
        # to alias the outlined function's own allocas (its register tiles), an inttoptr is not
        for i, (kind, _, val) in enumerate(slots, 1):
            if kind == "v":
                b.store(val, slot(b, closure, i))
            else:
                b.store(val, b.bitcast(slot(b, closure, i), ll.PointerType(PTR)))
        name = f"{self.k.name}.par{self.par_count}"
        pfn = ll.Function(self.mc.module, ll.FunctionType(VOID, [PTR]), name=name)
        pfn.linkage = "internal"
        pfn.attributes.add("nounwind")
        outer_state = self.st
        self.st = _FnState(pfn)
        pb = ll.IRBuilder(self.st.body)
        arr = pb.bitcast(pfn.args[0], ll.PointerType(ll.ArrayType(I64, n)))
        env2: dict = {}
        bufs2: dict = {}
        ext = pb.load(slot(pb, arr, 0))
        for i, (kind, key, _) in enumerate(slots, 1):
            if kind == "v":
                env2[key] = pb.load(slot(pb, arr, i))
            else:
                bufs2[id(key)] = pb.load(pb.bitcast(slot(pb, arr, i), ll.PointerType(PTR)))
        # dynamic chunks: each thread takes the next ext/(4*threads) iterations off a shared
        # counter until none are left, so a core slowed by another process (or a ragged last
        # tile) does not hold the others up; consecutive iterations stay on one thread
        nth = pb.sext(pb.call(self.mc.declare("omp_get_num_threads", I32, []), []), I64)
        chunk = pb.sdiv(ext, pb.mul(nth, ll.Constant(I64, 4)))
        chunk = pb.select(pb.icmp_signed("<", chunk, ll.Constant(I64, 1)), ll.Constant(I64, 1),
                          chunk)
        counter = slot(pb, arr, n - 1)
        grab = pfn.append_basic_block("grab")
        work = pfn.append_basic_block("work")
        done = pfn.append_basic_block("done")
        pb.branch(grab)
        pb.position_at_end(grab)
        lo = pb.atomic_rmw("add", counter, chunk, "monotonic")
        pb.cbranch(pb.icmp_signed("<", lo, ext), work, done)
        pb.position_at_end(work)
        hi = pb.add(lo, chunk)
        hi = pb.select(pb.icmp_signed("<", hi, ext), hi, ext)
        serial = For(s.var, s.extent, "serial", s.body, s.name)
        pb = self.serial_for(pb, serial, env2, bufs2, lo=lo, hi=hi)
        pb.branch(grab)
        pb.position_at_end(done)
        pb.ret_void()
        self.st.ebuilder.branch(self.st.body)
        self.st = outer_state
        gomp = self.mc.declare("GOMP_parallel", VOID,
                               [ll.PointerType(ll.FunctionType(VOID, [PTR])), PTR, I32, I32])
        maxt = b.sext(b.call(self.mc.declare("omp_get_max_threads", I32, []), []), I64)
        nthreads = b.select(b.icmp_signed("<", extent, maxt), extent, maxt)
        nthreads = b.select(b.icmp_signed("<", nthreads, ll.Constant(I64, 1)),
                            ll.Constant(I64, 1), nthreads)
        b.call(gomp, [pfn, b.bitcast(closure, PTR), b.trunc(nthreads, I32),
                      ll.Constant(I32, 0)])
        return b

    # ------------------------------------------------------------------------- memory
    def elem_ptr(self, b: ll.IRBuilder, buf: Buffer, base: Any, index: Any) -> Any:
        et = mem_type(buf.dtype)
        typed = b.bitcast(base, ll.PointerType(et))
        return b.gep(typed, [index], inbounds=True)

    def load(self, b: ll.IRBuilder, e: Load, env: dict, bufs: dict) -> Any:
        buf = e.buffer
        base = bufs[id(buf)]
        et = mem_type(buf.dtype)
        idx = e.index
        if idx.lanes == 1:
            p = self.elem_ptr(b, buf, base, self.expr(b, idx, env, bufs))
            v = b.load(p, align=_nbytes(et))
            return self.from_mem(b, v, buf.dtype)
        if isinstance(idx, Ramp) and idx.stride == 1:
            p = self.elem_ptr(b, buf, base, self.expr(b, idx.base, env, bufs))
            p = b.bitcast(p, ll.PointerType(ll.VectorType(et, idx.lanes)))
            v = b.load(p, align=_nbytes(et))
            return self.from_mem(b, v, buf.dtype)
        if isinstance(idx, Broadcast):
            p = self.elem_ptr(b, buf, base, self.expr(b, idx.value, env, bufs))
            v = self.from_mem(b, b.load(p, align=_nbytes(et)), buf.dtype)
            return self.splat(b, v, idx.lanes)
        iv = self.expr(b, idx, env, bufs)
        out = ll.Constant(ll.VectorType(et, idx.lanes), ll.Undefined)
        for lane in range(idx.lanes):
            i = b.extract_element(iv, ll.Constant(I32, lane))
            out = b.insert_element(out, b.load(self.elem_ptr(b, buf, base, i),
                                               align=_nbytes(et)), ll.Constant(I32, lane))
        return self.from_mem(b, out, buf.dtype)

    def store(self, b: ll.IRBuilder, buf: Buffer, base: Any, idx: Expr, val: Any,
              env: dict, bufs: dict) -> None:
        et = mem_type(buf.dtype)
        mval = self.to_mem(b, val, buf.dtype)
        if idx.lanes == 1:
            b.store(mval, self.elem_ptr(b, buf, base, self.expr(b, idx, env, bufs)),
                    align=_nbytes(et))
            return
        if isinstance(idx, Ramp) and idx.stride == 1:
            p = self.elem_ptr(b, buf, base, self.expr(b, idx.base, env, bufs))
            p = b.bitcast(p, ll.PointerType(ll.VectorType(et, idx.lanes)))
            b.store(mval, p, align=_nbytes(et))
            return
        iv = self.expr(b, idx, env, bufs)
        for lane in range(idx.lanes):
            i = b.extract_element(iv, ll.Constant(I32, lane))
            x = b.extract_element(mval, ll.Constant(I32, lane))
            b.store(x, self.elem_ptr(b, buf, base, i), align=_nbytes(et))

    def masked_access(self, b: ll.IRBuilder, buf: Buffer, idx: Expr, e: Call, env: dict,
                      bufs: dict) -> Any:
        """llvm.masked.load / llvm.masked.store at contiguous `idx` (a stride-1 ramp) for
        Call("masked_load", (load, mask)) / Call("masked_store", (value, mask)); masked-off
        lanes load zero and are not touched by the store."""
        if not (isinstance(idx, Ramp) and idx.stride == 1):
            raise KernelError(f"llvm: {e.name} of {buf.name} needs a contiguous index")
        et = mem_type(buf.dtype)
        vt = ll.VectorType(et, idx.lanes)
        mask = self.expr(b, e.args[1], env, bufs)
        p = self.elem_ptr(b, buf, bufs[id(buf)], self.expr(b, idx.base, env, bufs))
        p = b.bitcast(p, ll.PointerType(vt))
        align = ll.Constant(I32, _nbytes(et))
        if e.name == "masked_load":
            fn = self.mc.declare(f"llvm.masked.load.{_suffix(vt)}.p0", vt,
                                 [ll.PointerType(vt), I32, mask.type, vt])
            v = b.call(fn, [p, align, mask, ll.Constant(vt, None)])
            return self.from_mem(b, v, buf.dtype)
        val = self.to_mem(b, self.expr(b, e.args[0], env, bufs), buf.dtype)
        fn = self.mc.declare(f"llvm.masked.store.{_suffix(vt)}.p0", VOID,
                             [vt, ll.PointerType(vt), I32, mask.type])
        b.call(fn, [val, p, align, mask])
        return None

    def from_mem(self, b: ll.IRBuilder, v: Any, d: dt.DType) -> Any:
        lanes = v.type.count if isinstance(v.type, ll.VectorType) else 1
        if d.is_bool:
            return b.icmp_unsigned("!=", v, ll.Constant(v.type, None))
        if d.name == "bf16":
            w = b.shl(b.zext(v, vec(I32, lanes)), self.const_like(vec(I32, lanes), 16))
            return b.bitcast(w, vec(F32, lanes))
        return v

    def to_mem(self, b: ll.IRBuilder, v: Any, d: dt.DType) -> Any:
        lanes = v.type.count if isinstance(v.type, ll.VectorType) else 1
        if d.is_bool:
            return b.zext(v, vec(I8, lanes))
        if d.name == "bf16":
            return self.f32_to_bf16(b, v, lanes)
        return v

    def f32_to_bf16(self, b: ll.IRBuilder, v: Any, lanes: int) -> Any:
        """Round to nearest even; NaN stays a (quiet) NaN."""
        it = vec(I32, lanes)
        w = b.bitcast(v, it)
        lsb = b.and_(b.lshr(w, self.const_like(it, 16)), self.const_like(it, 1))
        r = b.add(w, b.add(self.const_like(it, 0x7FFF), lsb))
        isnan = b.fcmp_unordered("uno", v, v)
        r = b.select(isnan, b.or_(w, self.const_like(it, 0x400000)), r)
        return b.trunc(b.lshr(r, self.const_like(it, 16)), vec(I16, lanes))

    # ------------------------------------------------------------------------- expressions
    def const_like(self, t: ll.Type, value: Any) -> Any:
        if isinstance(t, ll.VectorType):
            return ll.Constant(t, [ll.Constant(t.element, value)] * t.count)
        return ll.Constant(t, value)

    def splat(self, b: ll.IRBuilder, v: Any, lanes: int) -> Any:
        if lanes == 1:
            return v
        if isinstance(v, ll.Constant):
            return ll.Constant(ll.VectorType(v.type, lanes), [v] * lanes)
        vt = ll.VectorType(v.type, lanes)
        x = b.insert_element(ll.Constant(vt, ll.Undefined), v, ll.Constant(I32, 0))
        return b.shuffle_vector(x, ll.Constant(vt, ll.Undefined),
                                ll.Constant(ll.VectorType(I32, lanes), [0] * lanes))

    def expr(self, b: ll.IRBuilder, e: Expr, env: dict, bufs: dict) -> Any:
        if isinstance(e, Const):
            t = reg_type(e.dtype)
            v = e.value
            if e.dtype.is_bool:
                c = ll.Constant(I1, int(bool(v)))
            elif isinstance(t, ll.IntType):
                c = ll.Constant(t, int(v) & ((1 << t.width) - 1))
            else:
                c = ll.Constant(t, float(v))
            return self.splat(b, c, e.lanes)
        if isinstance(e, Var):
            try:
                return env[e]
            except KeyError:
                raise KernelError(f"llvm: {self.k.name}: variable {e.name} is not bound") from None
        if isinstance(e, Load):
            return self.load(b, e, env, bufs)
        if isinstance(e, Ramp):
            base = self.splat(b, self.expr(b, e.base, env, bufs), e.lanes)
            steps = ll.Constant(ll.VectorType(I64, e.lanes),
                                [ll.Constant(I64, i * e.stride) for i in range(e.lanes)])
            return b.add(base, steps)
        if isinstance(e, Broadcast):
            return self.splat(b, self.expr(b, e.value, env, bufs), e.lanes)
        if isinstance(e, Bin):
            return self.binary(b, e, env, bufs)
        if isinstance(e, Un):
            a = self.expr(b, e.a, env, bufs)
            if e.op == "neg":
                return b.fneg(a) if e.dtype.is_float else b.neg(a)
            if e.op in ("not", "bnot"):
                return b.not_(a)
            raise KernelError(f"llvm: unknown unary op {e.op}")
        if isinstance(e, Select):
            c = self.expr(b, e.cond, env, bufs)
            return b.select(c, self.expr(b, e.a, env, bufs), self.expr(b, e.b, env, bufs))
        if isinstance(e, Cast):
            return self.cast(b, self.expr(b, e.a, env, bufs), e.a.dtype, e.dtype, e.lanes)
        if isinstance(e, Call) and e.name == "masked_load":
            ld = e.args[0]
            return self.masked_access(b, ld.buffer, ld.index, e, env, bufs)
        if isinstance(e, Call):
            from . import intrinsics
            args = [self.expr(b, a, env, bufs) for a in e.args]
            return intrinsics.emit(self, b, e, args)
        raise KernelError(f"llvm: cannot emit {type(e).__name__}")

    def binary(self, b: ll.IRBuilder, e: Bin, env: dict, bufs: dict) -> Any:
        op = e.op
        if op in ("and", "or"):
            x = self.expr(b, e.a, env, bufs)
            y = self.expr(b, e.b, env, bufs)
            return b.and_(x, y) if op == "and" else b.or_(x, y)
        if op == "+" and isinstance(e.b, Call) and e.b.name == "dot4_u8s8":
            # acc + dot4(u, s): one vpdpbusd accumulating into acc
            from . import intrinsics
            return intrinsics.dot4_u8s8(self, b, *[self.expr(b, a, env, bufs) for a in e.b.args],
                                        acc=self.expr(b, e.a, env, bufs))
        d = e.a.dtype
        x = self.expr(b, e.a, env, bufs)
        y = self.expr(b, e.b, env, bufs)
        if d.is_float:
            if op == "+": return b.fadd(x, y, flags=("contract",))
            if op == "-": return b.fsub(x, y, flags=("contract",))
            if op == "*": return b.fmul(x, y, flags=("contract",))
            if op == "/": return b.fdiv(x, y)
            if op in ("min", "max"):
                from . import intrinsics
                return intrinsics.call_intrinsic(self, b, "llvm.minimum" if op == "min"
                                                 else "llvm.maximum", [x, y])
            if op in ("<", "<=", "==", ">", ">="):
                return b.fcmp_ordered(op, x, y)
            if op == "!=":
                return b.fcmp_unordered("!=", x, y)
            if op == "%":  # floor-mod with the divisor's sign, as Python and NumPy
                from . import intrinsics
                return intrinsics.fmod_floor(self, b, x, y)
            if op == "//":
                from . import intrinsics
                return intrinsics.call_intrinsic(self, b, "llvm.floor", [b.fdiv(x, y)])
            raise KernelError(f"llvm: op {op} on {d.name}")
        signed = _is_signed(d)
        if d.is_bool:
            signed = False
        if op == "+": return b.add(x, y)
        if op == "-": return b.sub(x, y)
        if op == "*": return b.mul(x, y)
        if op == "&": return b.and_(x, y)
        if op == "|": return b.or_(x, y)
        if op == "^": return b.xor(x, y)
        if op == "<<": return b.shl(x, y)
        if op == ">>": return b.ashr(x, y) if signed else b.lshr(x, y)
        if op in ("<", "<=", "==", "!=", ">", ">="):
            return b.icmp_signed(op, x, y) if signed else b.icmp_unsigned(op, x, y)
        if op == "min":
            c = b.icmp_signed("<", x, y) if signed else b.icmp_unsigned("<", x, y)
            return b.select(c, x, y)
        if op == "max":
            c = b.icmp_signed(">", x, y) if signed else b.icmp_unsigned(">", x, y)
            return b.select(c, x, y)
        if op in ("/", "//", "%"):
            return self.int_div(b, op, x, y, signed, e)
        raise KernelError(f"llvm: op {op} on {d.name}")

    def int_div(self, b: ll.IRBuilder, op: str, x: Any, y: Any, signed: bool, e: Bin) -> Any:
        """'/' truncates (C); '//' floors and '%' takes the divisor's sign (Python). Division
        by zero gives 0 instead of trapping."""
        t = x.type
        zero = self.const_like(t, 0)
        one = self.const_like(t, 1)
        ynz = b.icmp_unsigned("!=", y, zero)
        ysafe = b.select(ynz, y, one)
        if not signed:
            q = b.udiv(x, ysafe) if op != "%" else b.urem(x, ysafe)
            return b.select(ynz, q, zero)
        if isinstance(e.b, Const) and e.b.value > 0 and _nonneg(e.a):
            return b.sdiv(x, y) if op != "%" else b.srem(x, y)
        # avoid INT_MIN / -1 overflow: divide by 1 there, the result wraps like NumPy's
        q = b.sdiv(x, ysafe)
        r = b.srem(x, ysafe)
        if op == "/":
            return b.select(ynz, q, zero)
        adjust = b.and_(b.icmp_signed("!=", r, zero),
                        b.icmp_signed("!=", b.icmp_signed("<", r, zero),
                                      b.icmp_signed("<", ysafe, zero)))
        if op == "//":
            return b.select(ynz, b.select(adjust, b.sub(q, one), q), zero)
        return b.select(ynz, b.select(adjust, b.add(r, ysafe), r), zero)

    def cast(self, b: ll.IRBuilder, v: Any, src: dt.DType, dst: dt.DType, lanes: int) -> Any:
        st, dtt = reg_type(src), vec(reg_type(dst), lanes)
        if src == dst:
            return v
        if dst.is_bool:
            if src.is_float:
                return b.fcmp_unordered("!=", v, self.const_like(v.type, 0.0))
            return b.icmp_unsigned("!=", v, self.const_like(v.type, 0))
        if src.is_bool:
            if dst.is_float:
                return b.uitofp(v, dtt)
            return b.zext(v, dtt)
        if src.is_float and dst.is_float:
            sw, dw = _fwidth(reg_type(src)), _fwidth(reg_type(dst))
            if dst.name == "bf16":  # registers hold f32: round through bf16 now
                if sw > 32:
                    v = b.fptrunc(v, vec(F32, lanes))
                elif sw < 32:
                    v = b.fpext(v, vec(F32, lanes))
                return self.from_mem(b, self.f32_to_bf16(b, v, lanes), dst)
            if sw < dw:
                return b.fpext(v, dtt)
            if sw > dw:
                return b.fptrunc(v, dtt)
            return v
        if src.is_float:  # -> int: saturating, NaN -> 0 (no poison)
            name = "llvm.fptosi.sat" if _is_signed(dst) else "llvm.fptoui.sat"
            fnty = ll.FunctionType(dtt, [v.type])
            fn = self.mc.declare(f"{name}.{_suffix(dtt)}.{_suffix(v.type)}", dtt, [v.type])
            return b.call(fn, [v])
        if dst.is_float:
            return b.sitofp(v, dtt) if _is_signed(src) else b.uitofp(v, dtt)
        sw, dw = st.width, reg_type(dst).width
        if sw < dw:
            return b.sext(v, dtt) if _is_signed(src) else b.zext(v, dtt)
        if sw > dw:
            return b.trunc(v, dtt)
        return v


def _fwidth(t: ll.Type) -> int:
    return {F16: 16, F32: 32, F64: 64}[t]


def _nonneg(e: Expr) -> bool:
    """Index arithmetic over loop vars and non-negative constants stays non-negative."""
    for x in walk_expr(e):
        if isinstance(x, Const) and (not isinstance(x.value, int) or x.value < 0):
            return False
        if isinstance(x, Bin) and x.op not in ("+", "*", "//", "%", "min", "max"):
            return False
        if not isinstance(x, (Const, Var, Bin, Ramp, Broadcast)):
            return False
    return True


def _nbytes(t: ll.Type) -> int:
    if isinstance(t, ll.IntType):
        return max(1, t.width // 8)
    return {F16: 2, F32: 4, F64: 8}[t]


def _const_numel(buf: Buffer) -> int:
    n = 1
    for d in buf.shape:
        if isinstance(d, Const):
            d = d.value
        if not isinstance(d, int):
            raise KernelError(f"llvm: local buffer {buf.name} has a symbolic size")
        n *= d
    return max(n, 1)


def _clean(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in name)


def _free(s: For, env: dict, bufs: dict) -> tuple[list[Var], list[Buffer]]:
    """Vars bound outside `s` and buffers allocated outside it that `s` uses."""
    bound: set = set()
    inner_bufs: set = set()
    vars_: dict = {}
    used: dict = {}
    for x in walk_stmt(s):
        exprs: list[Expr] = []
        if isinstance(x, For):
            bound.add(x.var)
            exprs.append(x.extent)
        elif isinstance(x, Store):
            exprs += [x.index, x.value]
            used[id(x.buffer)] = x.buffer
        elif isinstance(x, If):
            exprs.append(x.cond)
        elif isinstance(x, Let):
            bound.add(x.var)
            exprs.append(x.value)
        elif isinstance(x, Alloc):
            inner_bufs.add(id(x.buffer))
            for d in x.buffer.shape:
                if isinstance(d, Expr):
                    exprs.append(d)
        for e in exprs:
            for y in walk_expr(e):
                if isinstance(y, Var):
                    vars_[y] = True
                elif isinstance(y, Load):
                    used[id(y.buffer)] = y.buffer
    vs = [v for v in vars_ if v not in bound and v in env]
    missing = [v for v in vars_ if v not in bound and v not in env]
    if missing:
        raise KernelError(f"llvm: unbound variables {[v.name for v in missing]}")
    bs = [b for k, b in used.items() if k not in inner_bufs]
    for b_ in bs:
        if b_.scope == "local" and id(b_) in bufs:
            raise KernelError(f"llvm: local buffer {b_.name} is shared by a parallel loop; "
                              "allocate it inside the loop")
    return vs, bs
