"""The kernel IR: buffers and loop nests over loads, stores and scalar or vector expressions.

A `Kernel` is a function over buffers (its parameters, flat row-major arrays of one dtype) and
symbolic dims (int64 scalars). Its body is a statement tree:

    For(var, extent, kind, body)   kind: serial, parallel, vectorized, unrolled,
                                         gpu.block.x/y/z, gpu.thread.x/y/z (for the CUDA generator)
    Store(buffer, index, value)    flat element index
    Alloc(buffer, body)            a local (or GPU shared) buffer live in `body`
    Seq([...]), If(cond, then, else), Let(var, value, body)

Expressions are immutable and carry a dtype (a graph-IR `DType`) and a lane count (1 for
scalars): Const, Var, Bin, Un, Cast, Select, Load, Call (an intrinsic such as exp or fma),
Ramp(base, stride, lanes) and Broadcast(value, lanes) (the vector forms), and Reduce-lane
intrinsics. Constructors fold constants and trivial identities (x*1, x+0) so that index
arithmetic stays small.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence, Union

from compiler.ir import dtypes as dt

I64 = dt.dtype("i64")
I32 = dt.dtype("i32")
BOOL = dt.dtype("bool")
F32 = dt.dtype("f32")

LOOP_KINDS = ("serial", "parallel", "vectorized", "unrolled",
              "gpu.block.x", "gpu.block.y", "gpu.block.z",
              "gpu.thread.x", "gpu.thread.y", "gpu.thread.z")

ARITH = ("+", "-", "*", "/", "//", "%", "min", "max", "&", "|", "^", "<<", ">>")
COMPARE = ("<", "<=", "==", "!=", ">", ">=")
LOGIC = ("and", "or")


class KernelError(ValueError):
    """A kernel could not be built: an op has no lowering, or a schedule step is illegal."""


# ---------------------------------------------------------------------------------------------
# expressions

class Expr:
    """Base of all expressions. Every expression has `dtype` and `lanes`."""

    __slots__ = ()
    dtype: dt.DType
    lanes: int

    # operators build expressions, folding constants: index arithmetic reads naturally
    def __add__(self, o: Any) -> "Expr": return binop("+", self, o)
    def __radd__(self, o: Any) -> "Expr": return binop("+", o, self)
    def __sub__(self, o: Any) -> "Expr": return binop("-", self, o)
    def __rsub__(self, o: Any) -> "Expr": return binop("-", o, self)
    def __mul__(self, o: Any) -> "Expr": return binop("*", self, o)
    def __rmul__(self, o: Any) -> "Expr": return binop("*", o, self)
    def __floordiv__(self, o: Any) -> "Expr": return binop("//", self, o)
    def __mod__(self, o: Any) -> "Expr": return binop("%", self, o)
    def __neg__(self) -> "Expr": return binop("-", const(0, self.dtype), self)


@dataclass(frozen=True, eq=True)
class Const(Expr):
    value: Union[int, float, bool]
    dtype: dt.DType = I64
    lanes: int = 1


@dataclass(frozen=True, eq=True)
class Var(Expr):
    name: str
    dtype: dt.DType = I64
    lanes: int = 1


@dataclass(frozen=True, eq=True)
class Bin(Expr):
    op: str
    a: Expr
    b: Expr
    dtype: dt.DType = I64
    lanes: int = 1


@dataclass(frozen=True, eq=True)
class Un(Expr):
    op: str  # "neg", "not" (logical), "bnot" (bitwise)
    a: Expr
    dtype: dt.DType = I64
    lanes: int = 1


@dataclass(frozen=True, eq=True)
class Cast(Expr):
    a: Expr
    dtype: dt.DType = I64
    lanes: int = 1


@dataclass(frozen=True, eq=True)
class Select(Expr):
    cond: Expr
    a: Expr
    b: Expr
    dtype: dt.DType = I64
    lanes: int = 1


@dataclass(frozen=True, eq=True)
class Load(Expr):
    buffer: "Buffer"
    index: Expr
    dtype: dt.DType = I64
    lanes: int = 1


@dataclass(frozen=True, eq=True)
class TensorLoad(Expr):
    """A read of a compute stage's tensor at multi-dimensional indices; lowering turns it into a
    flat `Load` (schedules need the indices to infer the regions that stages touch)."""
    tensor: Any
    indices: tuple[Expr, ...]
    dtype: dt.DType = I64
    lanes: int = 1


@dataclass(frozen=True, eq=True)
class Call(Expr):
    """An intrinsic: math functions (exp, log, sqrt, tanh, erf, ...), fma, bit conversions, and
    the lane reductions reduce_add/reduce_max/reduce_min of a vector."""
    name: str
    args: tuple[Expr, ...]
    dtype: dt.DType = F32
    lanes: int = 1


@dataclass(frozen=True, eq=True)
class Ramp(Expr):
    base: Expr
    stride: int
    lanes: int = 1
    dtype: dt.DType = I64


@dataclass(frozen=True, eq=True)
class Broadcast(Expr):
    value: Expr
    lanes: int = 1
    dtype: dt.DType = I64


def const(value: Any, dtype: dt.DType = I64) -> Const:
    if dtype.is_bool:
        return Const(bool(value), dtype)
    if dtype.kind in ("int", "uint"):
        return Const(int(value), dtype)
    return Const(float(value), dtype)


def as_expr(x: Any, like: Optional[Expr] = None) -> Expr:
    if isinstance(x, Expr):
        return x
    if isinstance(x, bool):
        return Const(x, BOOL)
    if isinstance(x, int):
        return Const(x, like.dtype if like is not None and like.dtype.is_int else I64)
    if isinstance(x, float):
        return Const(x, like.dtype if like is not None and like.dtype.is_float else F32)
    raise TypeError(f"not an expression: {x!r}")


def _fold(op: str, a: Any, b: Any, dtype: dt.DType) -> Any:
    if op == "+": return a + b
    if op == "-": return a - b
    if op == "*": return a * b
    if op == "//": return a // b if b else None
    if op == "%": return a % b if b else None
    if op == "/":
        if dtype.is_int:
            return None  # C-style truncation is left to codegen
        return a / b if b else None
    if op == "min": return min(a, b)
    if op == "max": return max(a, b)
    if op in COMPARE:
        return {"<": a < b, "<=": a <= b, "==": a == b, "!=": a != b, ">": a > b, ">=": a >= b}[op]
    if op == "and": return bool(a and b)
    if op == "or": return bool(a or b)
    return None


def binop(op: str, a: Any, b: Any) -> Expr:
    """Build `a op b`, folding constants and identities on integers."""
    a = as_expr(a, b if isinstance(b, Expr) else None)
    b = as_expr(b, a)
    lanes = max(a.lanes, b.lanes)
    if a.lanes != b.lanes:
        if a.lanes == 1:
            a = broadcast(a, lanes)
        elif b.lanes == 1:
            b = broadcast(b, lanes)
        else:
            raise KernelError(f"lane mismatch in {op}: {a.lanes} and {b.lanes}")
    dtype = BOOL if op in COMPARE or op in LOGIC else a.dtype
    if lanes > 1:
        v = _vector_fold(op, a, b, lanes)
        if v is not None:
            return v
    if isinstance(a, Const) and isinstance(b, Const) and lanes == 1:
        v = _fold(op, a.value, b.value, a.dtype)
        if v is not None and (dtype.is_float or dtype.is_bool or isinstance(v, (int, bool))):
            return const(v, dtype)
    if a.dtype.is_int and lanes == 1:
        if op == "+":
            if _is(b, 0): return a
            if _is(a, 0): return b
            if isinstance(a, Const) and not isinstance(b, Const):
                return binop("+", b, a)
            # (x + c1) + c2 -> x + (c1 + c2)
            if isinstance(b, Const) and isinstance(a, Bin) and a.op == "+" and isinstance(a.b, Const):
                return binop("+", a.a, a.b.value + b.value)
        elif op == "-":
            if _is(b, 0): return a
            if a == b: return const(0, dtype)
        elif op == "*":
            if _is(b, 1): return a
            if _is(a, 1): return b
            if _is(a, 0) or _is(b, 0): return const(0, dtype)
            if isinstance(a, Const) and not isinstance(b, Const):
                return binop("*", b, a)
        elif op in ("//",):
            if _is(b, 1): return a
            if _is(a, 0): return a
        elif op == "%":
            if _is(b, 1): return const(0, dtype)
        elif op == "min" and a == b:
            return a
        elif op == "max" and a == b:
            return a
    return Bin(op, a, b, dtype, lanes)


def _vector_fold(op: str, a: Expr, b: Expr, lanes: int) -> Optional[Expr]:
    """ramp/broadcast algebra, so vectorized indices stay ramp(base, stride)."""
    if isinstance(a, Broadcast) and isinstance(b, Broadcast):
        return broadcast(binop(op, a.value, b.value), lanes)
    if not a.dtype.is_int:
        return None
    if op in ("+", "-") and isinstance(a, Ramp) and isinstance(b, Broadcast):
        return ramp(binop(op, a.base, b.value), a.stride, lanes)
    if op == "+" and isinstance(a, Broadcast) and isinstance(b, Ramp):
        return ramp(binop("+", a.value, b.base), b.stride, lanes)
    if op in ("+", "-") and isinstance(a, Ramp) and isinstance(b, Ramp):
        return ramp(binop(op, a.base, b.base), a.stride + (b.stride if op == "+" else -b.stride),
                    lanes)
    if op == "*":
        for x, y in ((a, b), (b, a)):
            if isinstance(x, Ramp) and isinstance(y, Broadcast) and isinstance(y.value, Const):
                c = y.value.value
                return ramp(binop("*", x.base, c), x.stride * c, lanes)
    if op in ("//", "%") and isinstance(a, Ramp) and isinstance(b, Broadcast) \
            and isinstance(b.value, Const) and isinstance(b.value.value, int) and b.value.value > 0:
        # lanes within one multiple of c: ramp(c*q, s) // c = q, % c = ramp(0, s) (a packed
        # layout's block of 4 bytes read as one word stays a ramp)
        c = b.value.value
        q = _exact_div(a.base, c)
        if q is not None and 0 <= a.stride and a.stride * (lanes - 1) < c:
            return broadcast(q, lanes) if op == "//" else ramp(Const(0, a.dtype), a.stride, lanes)
    return None


def _exact_div(e: Expr, c: int) -> Optional[Expr]:
    """e / c when e is a multiple of c by its form (c*x, sums of such), else None."""
    if isinstance(e, Const) and isinstance(e.value, int):
        return Const(e.value // c, e.dtype) if e.value % c == 0 else None
    if isinstance(e, Bin) and e.op in ("+", "-"):
        x, y = _exact_div(e.a, c), _exact_div(e.b, c)
        return None if x is None or y is None else binop(e.op, x, y)
    if isinstance(e, Bin) and e.op == "*":
        for x, y in ((e.a, e.b), (e.b, e.a)):
            if isinstance(y, Const) and isinstance(y.value, int) and y.value % c == 0:
                return binop("*", x, y.value // c)
    return None


def ramp(base: Expr, stride: int, lanes: int) -> Expr:
    if base.lanes > 1:
        return _nested_ramp(base, stride, lanes)
    if stride == 0:
        return broadcast(base, lanes)
    return Ramp(base, stride, lanes, base.dtype)


def _nested_ramp(base: Expr, stride: int, lanes: int) -> Expr:
    """A ramp from each lane of a vector base (a loop vectorized around a read that already
    has lanes, such as 4 bytes read as one word): lane a*lanes + b is base[a] + stride*b."""
    n = base.lanes * lanes
    if isinstance(base, Ramp) and base.stride == stride * lanes:
        return ramp(base.base, stride, n)  # contiguous: one ramp
    t = Ramp(Const(0, base.dtype), 1, n, base.dtype)
    if isinstance(base, Ramp):
        outer = binop("+", binop("*", binop("//", t, lanes), base.stride), base.base)
    elif isinstance(base, Broadcast):
        outer = Broadcast(base.value, n, base.dtype)
    else:
        raise KernelError(f"a ramp of {lanes} lanes from each lane of a non-affine vector index")
    return binop("+", outer, binop("*", binop("%", t, lanes), stride))


def _is(e: Expr, v: int) -> bool:
    return isinstance(e, Const) and e.lanes == 1 and e.value == v


def broadcast(e: Expr, lanes: int) -> Expr:
    if lanes == 1 or e.lanes == lanes:
        return e
    if e.lanes != 1:
        raise KernelError(f"cannot broadcast a {e.lanes}-lane value to {lanes} lanes")
    return Broadcast(e, lanes, e.dtype)


def cast(dtype: dt.DType, e: Expr) -> Expr:
    if e.dtype == dtype:
        return e
    if isinstance(e, Const) and e.lanes == 1 and not dtype.is_narrow and dtype.name != "bf16" \
            and dtype.name != "f16" and e.dtype.name not in ("f16", "bf16"):
        v = e.value
        if dtype.is_int and isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                return Cast(e, dtype, 1)
            v = int(v)  # C truncation toward zero
        if dtype.is_int:
            import numpy as np
            v = int(np.array(v).astype(dtype.np_dtype)) if -2**63 <= v < 2**64 else None
            if v is None:
                return Cast(e, dtype, 1)
        return const(v, dtype)
    return Cast(e, dtype, e.lanes)


def select(c: Expr, a: Any, b: Any) -> Expr:
    a = as_expr(a)
    b = as_expr(b, a)
    if isinstance(c, Const):
        return a if c.value else b
    lanes = max(c.lanes, a.lanes, b.lanes)
    return Select(broadcast(c, lanes), broadcast(a, lanes), broadcast(b, lanes), a.dtype, lanes)


def call(name: str, dtype: dt.DType, *args: Any) -> Expr:
    args = tuple(as_expr(a) for a in args)
    lanes = max([a.lanes for a in args] + [1])
    # storage widths: a narrow (4/2-bit) value is one byte in registers and memory
    sbits = lambda d: d.np_dtype.itemsize * 8  # noqa: E731
    if name == "bitcast" and len(args) == 1 and sbits(args[0].dtype) != sbits(dtype):
        # the bits are reinterpreted as a whole: 64 lanes of i8 are 16 lanes of i32
        total = args[0].lanes * sbits(args[0].dtype)
        if total % sbits(dtype):
            raise KernelError(f"bitcast of {args[0].lanes} x {args[0].dtype.name} to "
                              f"{dtype.name}: {total} bits do not divide evenly")
        return Call(name, args, dtype, total // sbits(dtype))
    return Call(name, tuple(broadcast(a, lanes) for a in args), dtype, lanes)


def load(buffer: "Buffer", index: Any) -> Expr:
    index = as_expr(index)
    return Load(buffer, index, buffer.dtype, index.lanes)


def minimum(a: Any, b: Any) -> Expr: return binop("min", a, b)
def maximum(a: Any, b: Any) -> Expr: return binop("max", a, b)


# ---------------------------------------------------------------------------------------------
# buffers, statements, kernels

@dataclass(frozen=True, eq=False)
class Buffer:
    """A flat row-major array: `shape` entries are ints or Exprs over the kernel's dims.
    scope: "global" (a kernel parameter), "local" (per thread), "shared" (GPU block)."""
    name: str
    dtype: dt.DType
    shape: tuple[Any, ...]
    scope: str = "global"

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"Buffer({self.name})"

    @property
    def strides(self) -> list[Expr]:
        out: list[Expr] = []
        acc: Expr = Const(1)
        for d in reversed(self.shape):
            out.append(acc)
            acc = acc * d
        return out[::-1]

    @property
    def numel(self) -> Expr:
        n: Expr = Const(1)
        for d in self.shape:
            n = n * d
        return n

    def offset(self, indices: Sequence[Any]) -> Expr:
        if len(indices) != len(self.shape):
            raise KernelError(f"{self.name}: {len(indices)} indices for rank {len(self.shape)}")
        off: Expr = Const(0)
        for i, s in zip(indices, self.strides):
            off = off + as_expr(i) * s
        return off

    def __getitem__(self, indices: Any) -> Expr:
        if not isinstance(indices, tuple):
            indices = (indices,)
        return load(self, self.offset(indices))


class Stmt:
    __slots__ = ()


@dataclass(eq=False)
class For(Stmt):
    var: Var
    extent: Expr
    kind: str
    body: Stmt
    name: str = ""  # the loop's handle for schedules (defaults to the var's name)

    def __post_init__(self) -> None:
        if self.kind not in LOOP_KINDS:
            raise KernelError(f"unknown loop kind {self.kind!r}")
        self.extent = as_expr(self.extent)
        if not self.name:
            self.name = self.var.name


@dataclass(eq=False)
class Store(Stmt):
    buffer: Buffer
    index: Expr
    value: Expr


@dataclass(eq=False)
class Alloc(Stmt):
    buffer: Buffer
    body: Stmt


@dataclass(eq=False)
class Seq(Stmt):
    stmts: list[Stmt]


@dataclass(eq=False)
class If(Stmt):
    cond: Expr
    then: Stmt
    orelse: Optional[Stmt] = None


@dataclass(eq=False)
class Let(Stmt):
    var: Var
    value: Expr
    body: Stmt


def seq(*stmts: Optional[Stmt]) -> Stmt:
    flat: list[Stmt] = []
    for s in stmts:
        if s is None:
            continue
        if isinstance(s, Seq):
            flat.extend(s.stmts)
        else:
            flat.append(s)
    return flat[0] if len(flat) == 1 else Seq(flat)


def store(buffer: Buffer, indices: Sequence[Any], value: Expr) -> Store:
    if value.dtype != buffer.dtype:
        raise KernelError(f"store of {value.dtype.name} into {buffer.name} ({buffer.dtype.name})")
    return Store(buffer, buffer.offset(indices), value)


@dataclass(eq=False)
class Kernel:
    """One kernel: `params` are global buffers (inputs then outputs), `dims` symbolic int64 dims
    that shapes may use, `body` the loop nest. `attrs` records how it was made (its group kind,
    the schedule trace applied)."""
    name: str
    params: list[Buffer]
    dims: list[Var]
    body: Stmt
    num_outputs: int = 1
    attrs: dict = field(default_factory=dict)

    def __str__(self) -> str:
        from .printer import print_kernel
        return print_kernel(self)


# ---------------------------------------------------------------------------------------------
# traversal

def children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, (Bin,)):
        return (e.a, e.b)
    if isinstance(e, (Un, Cast)):
        return (e.a,)
    if isinstance(e, Select):
        return (e.cond, e.a, e.b)
    if isinstance(e, Load):
        return (e.index,)
    if isinstance(e, TensorLoad):
        return e.indices
    if isinstance(e, Call):
        return e.args
    if isinstance(e, Ramp):
        return (e.base,)
    if isinstance(e, Broadcast):
        return (e.value,)
    return ()


def walk_expr(e: Expr) -> Iterator[Expr]:
    stack = [e]
    while stack:
        x = stack.pop()
        yield x
        stack.extend(children(x))


def substitute(e: Expr, mapping: dict) -> Expr:
    """Replace Vars (by identity in `mapping`) and rebuild with folding."""
    if not mapping:
        return e
    memo: dict[int, Expr] = {}

    def go(x: Expr) -> Expr:
        k = id(x)
        if k in memo:
            return memo[k]
        r = _rebuild(x, go, mapping)
        memo[k] = r
        return r
    return go(e)


def _rebuild(x: Expr, go: Any, mapping: dict) -> Expr:
    if isinstance(x, Var):
        return mapping.get(x, x)
    if isinstance(x, Const):
        return x
    if isinstance(x, Bin):
        return binop(x.op, go(x.a), go(x.b))
    if isinstance(x, Un):
        a = go(x.a)
        return Un(x.op, a, x.dtype, a.lanes)
    if isinstance(x, Cast):
        return cast(x.dtype, go(x.a))
    if isinstance(x, Select):
        return select(go(x.cond), go(x.a), go(x.b))
    if isinstance(x, Load):
        return load(x.buffer, go(x.index))
    if isinstance(x, TensorLoad):
        return TensorLoad(x.tensor, tuple(go(i) for i in x.indices), x.dtype, x.lanes)
    if isinstance(x, Call):
        return call(x.name, x.dtype, *[go(a) for a in x.args])
    if isinstance(x, Ramp):
        return ramp(go(x.base), x.stride, x.lanes)
    if isinstance(x, Broadcast):
        return broadcast(go(x.value), x.lanes)
    raise KernelError(f"unknown expression {type(x).__name__}")


def map_stmt(s: Stmt, fexpr: Any, fbuf: Any = None) -> Stmt:
    """Rebuild a statement tree applying `fexpr` to every top-level expression (and `fbuf` to
    every buffer reference in stores/allocs, when given)."""
    fb = fbuf or (lambda b: b)
    if isinstance(s, Seq):
        return Seq([map_stmt(x, fexpr, fbuf) for x in s.stmts])
    if isinstance(s, For):
        return For(s.var, fexpr(s.extent), s.kind, map_stmt(s.body, fexpr, fbuf), s.name)
    if isinstance(s, Store):
        return Store(fb(s.buffer), fexpr(s.index), fexpr(s.value))
    if isinstance(s, Alloc):
        return Alloc(fb(s.buffer), map_stmt(s.body, fexpr, fbuf))
    if isinstance(s, If):
        return If(fexpr(s.cond), map_stmt(s.then, fexpr, fbuf),
                  map_stmt(s.orelse, fexpr, fbuf) if s.orelse is not None else None)
    if isinstance(s, Let):
        return Let(s.var, fexpr(s.value), map_stmt(s.body, fexpr, fbuf))
    raise KernelError(f"unknown statement {type(s).__name__}")


def subst_stmt(s: Stmt, mapping: dict) -> Stmt:
    return map_stmt(s, lambda e: substitute(e, mapping))


def walk_stmt(s: Stmt) -> Iterator[Stmt]:
    stack = [s]
    while stack:
        x = stack.pop()
        yield x
        if isinstance(x, Seq):
            stack.extend(reversed(x.stmts))
        elif isinstance(x, (For, Alloc, Let)):
            stack.append(x.body)
        elif isinstance(x, If):
            stack.append(x.then)
            if x.orelse is not None:
                stack.append(x.orelse)


def canon(e: Expr) -> Expr:
    """Canonical form of an integer index expression: a sum of coefficient * atom plus a
    constant, atoms being variables or non-affine subterms (kept as they are), so that
    (a*8 + b) - a*8 becomes b."""
    if e.lanes != 1 or not e.dtype.is_int:
        return e
    terms: dict = {}
    order: list = []
    c = [0]

    def add(x: Expr, k: int) -> None:
        if isinstance(x, Const):
            c[0] += k * x.value
        elif isinstance(x, Bin) and x.op == "+":
            add(x.a, k)
            add(x.b, k)
        elif isinstance(x, Bin) and x.op == "-":
            add(x.a, k)
            add(x.b, -k)
        elif isinstance(x, Bin) and x.op == "*" and isinstance(x.b, Const):
            add(x.a, k * x.b.value)
        elif isinstance(x, Bin) and x.op == "*" and isinstance(x.a, Const):
            add(x.b, k * x.a.value)
        else:
            if x not in terms:
                terms[x] = 0
                order.append(x)
            terms[x] += k
    try:
        add(e, 1)
    except TypeError:
        return e
    out: Optional[Expr] = None
    for x in order:
        k = terms[x]
        if k == 0:
            continue
        t = x if k == 1 else binop("*", x, Const(k, x.dtype))
        out = t if out is None else binop("+", out, t)
    if out is None:
        return Const(c[0], e.dtype)
    return binop("+", out, Const(c[0], e.dtype)) if c[0] else out
