"""Kernel IR to kernel IR: unrolling and vectorization, run before code generation.

- `unroll`: a loop of kind "unrolled" becomes copies of its body with the index a constant
  (so a register tile's local buffer has constant indices and LLVM keeps it in registers).
- `vectorize`: a loop of kind "vectorized" with extent L becomes one L-lane body: its index is
  ramp(0, 1, L); loads at ramp(b, 1) become vector loads, other indices gathers; stores likewise.
  A store to an index that does not depend on the loop (a reduction along it) folds the lanes
  (reduce_add/max/min). A guard that depends on the loop index splits the loop: a vector body
  when every lane is in range, the scalar loop otherwise.
"""
from __future__ import annotations

from typing import Optional

from .ir import (Alloc, Bin, Broadcast, Buffer, Call, Cast, Const, Expr, For, If, KernelError,
                 Kernel, Let, Load, Ramp, Select, Seq, Stmt, Store, Un, Var, binop, broadcast,
                 call, cast, select, seq, subst_stmt, substitute, walk_expr, walk_stmt, _rebuild)


def lower_kernel(k: Kernel) -> Kernel:
    body = simplify_divmod(k.body)
    body = unroll(body)
    body = vectorize(body)
    return Kernel(k.name, k.params, k.dims, body, k.num_outputs, dict(k.attrs))


def _map_loops(s: Stmt, fn) -> Stmt:
    """Rebuild bottom-up, calling fn on each For (after its body is rebuilt)."""
    if isinstance(s, Seq):
        return seq(*[_map_loops(x, fn) for x in s.stmts])
    if isinstance(s, For):
        return fn(For(s.var, s.extent, s.kind, _map_loops(s.body, fn), s.name))
    if isinstance(s, Alloc):
        return Alloc(s.buffer, _map_loops(s.body, fn))
    if isinstance(s, If):
        return If(s.cond, _map_loops(s.then, fn),
                  _map_loops(s.orelse, fn) if s.orelse is not None else None)
    if isinstance(s, Let):
        return Let(s.var, s.value, _map_loops(s.body, fn))
    return s


def unroll(s: Stmt) -> Stmt:
    def fn(f: For) -> Stmt:
        if f.kind != "unrolled":
            return f
        if not isinstance(f.extent, Const):
            raise KernelError(f"unroll: loop {f.name} has a symbolic extent")
        return seq(*[_simplify_stmt(subst_stmt(f.body, {f.var: Const(i)}))
                     for i in range(f.extent.value)])
    return _map_loops(s, fn)


def _simplify_stmt(s: Stmt) -> Stmt:
    """Drop guards that folded to constants."""
    if isinstance(s, If) and isinstance(s.cond, Const):
        return s.then if s.cond.value else (s.orelse or Seq([]))
    if isinstance(s, Seq):
        return seq(*[_simplify_stmt(x) for x in s.stmts])
    if isinstance(s, For):
        return For(s.var, s.extent, s.kind, _simplify_stmt(s.body), s.name)
    if isinstance(s, Alloc):
        return Alloc(s.buffer, _simplify_stmt(s.body))
    return s


# ------------------------------------------------------------------------------ vectorize

def vectorize(s: Stmt) -> Stmt:
    def fn(f: For) -> Stmt:
        if f.kind != "vectorized":
            return f
        if not isinstance(f.extent, Const):
            raise KernelError(f"vectorize: loop {f.name} has a symbolic extent")
        lanes = f.extent.value
        if lanes == 1:
            return _simplify_stmt(subst_stmt(f.body, {f.var: Const(0)}))
        serial = For(f.var, f.extent, "serial", f.body, f.name)
        guards = [x for x in walk_stmt(f.body) if isinstance(x, If) and _uses(x.cond, f.var)]
        try:
            if guards:
                # all lanes in range <=> the guard holds at both ends (guards are affine bounds)
                conds = [binop("and", substitute(g.cond, {f.var: Const(0)}),
                               substitute(g.cond, {f.var: Const(lanes - 1)})) for g in guards]
                full = conds[0]
                for c in conds[1:]:
                    full = binop("and", full, c)
                if not all(_affine_guard(g.cond, f.var) for g in guards):
                    return serial
                vec = _Vec(f.var, lanes).stmt(_drop_guards(f.body, f.var))
                return If(full, vec, serial)
            return _Vec(f.var, lanes).stmt(f.body)
        except _NoVector:
            return serial
    return _map_loops(s, fn)


class _NoVector(Exception):
    pass


def _uses(e: Expr, v: Var) -> bool:
    return any(x == v for x in walk_expr(e))


def _affine_guard(c: Expr, v: Var) -> bool:
    if isinstance(c, Bin) and c.op == "and":
        return _affine_guard(c.a, v) and _affine_guard(c.b, v)
    if isinstance(c, Bin) and c.op in ("<", "<=", ">", ">="):
        from .schedule import _linear
        return _linear(c.a, {v}) is not None and _linear(c.b, {v}) is not None
    return not _uses(c, v)


def _drop_guards(s: Stmt, v: Var) -> Stmt:
    if isinstance(s, If) and _uses(s.cond, v):
        return _drop_guards(s.then, v)
    if isinstance(s, Seq):
        return seq(*[_drop_guards(x, v) for x in s.stmts])
    if isinstance(s, Alloc):
        return Alloc(s.buffer, _drop_guards(s.body, v))
    if isinstance(s, If):
        return If(s.cond, _drop_guards(s.then, v),
                  _drop_guards(s.orelse, v) if s.orelse is not None else None)
    return s


class _Vec:
    def __init__(self, var: Var, lanes: int) -> None:
        self.var = var
        self.lanes = lanes

    def stmt(self, s: Stmt) -> Stmt:
        if isinstance(s, Seq):
            return seq(*[self.stmt(x) for x in s.stmts])
        if isinstance(s, Store):
            return self.store(s)
        if isinstance(s, If):
            if _uses(s.cond, self.var):
                raise _NoVector()
            return If(s.cond, self.stmt(s.then),
                      self.stmt(s.orelse) if s.orelse is not None else None)
        if isinstance(s, Alloc):
            return Alloc(s.buffer, self.stmt(s.body))
        if isinstance(s, For):
            # an inner loop (e.g. a reduction inside a vectorized spatial loop): vectorize its
            # body with the outer lanes; its own index stays scalar
            if _uses(s.extent, self.var) or s.kind == "parallel":
                raise _NoVector()
            return For(s.var, s.extent, s.kind if s.kind != "vectorized" else "serial",
                       self.stmt(s.body), s.name)
        raise _NoVector()

    def expr(self, e: Expr) -> Expr:
        ramp = Ramp(Const(0), 1, self.lanes)

        def go(x: Expr) -> Expr:
            if x == self.var:
                return ramp
            if isinstance(x, Load):
                return self.load(x.buffer, go(x.index))
            return _rebuild(x, go, {})
        return go(e)

    def load(self, buf: Buffer, index: Expr) -> Expr:
        if index.lanes == 1:
            return Load(buf, index, buf.dtype, 1)
        return Load(buf, index, buf.dtype, index.lanes)

    def store(self, s: Store) -> Stmt:
        index = self.expr(s.index)
        value = self.expr(s.value)
        if index.lanes == 1 and value.lanes > 1:
            # a reduction along the vector loop: acc = acc op f(lanes)
            v = s.value
            if isinstance(v, (Bin, Call)) and len(_args(v)) == 2:
                a, b = _args(v)
                op = v.op if isinstance(v, Bin) else v.name
                red = {"+": "reduce_add", "*": "reduce_mul", "max": "reduce_max",
                       "min": "reduce_min", "fmax_nan": "reduce_fmax_nan",
                       "fmin_nan": "reduce_fmin_nan"}.get(op)
                own = Load(s.buffer, s.index, s.buffer.dtype, 1)
                if red is not None and a == own and not _uses(s.index, self.var):
                    lanes_v = self.expr(b)
                    folded = Call(red, (broadcast(lanes_v, self.lanes),), v.dtype, 1)
                    return Store(s.buffer, index, _rebin(v, own, folded))
            raise _NoVector()
        if value.lanes == 1 and index.lanes > 1:
            value = broadcast(value, index.lanes)
        return Store(s.buffer, index, value)


def _args(e: Expr) -> tuple:
    return (e.a, e.b) if isinstance(e, Bin) else e.args


def _rebin(v: Expr, a: Expr, b: Expr) -> Expr:
    if isinstance(v, Bin):
        return binop(v.op, a, b)
    return call(v.name, v.dtype, a, b)


# ------------------------------------------------------------------------------ div/mod

def simplify_divmod(s: Stmt) -> Stmt:
    """Rewrite x // c and x % c where x = c*q + r with r provably in [0, c), using the loops'
    ranges: packed layouts and reshaped views then index without division."""
    def walk(st: Stmt, ranges: dict) -> Stmt:
        if isinstance(st, Seq):
            return seq(*[walk(x, ranges) for x in st.stmts])
        if isinstance(st, For):
            r = dict(ranges)
            if isinstance(st.extent, Const):
                r[st.var] = st.extent.value
            return For(st.var, st.extent, st.kind, walk(st.body, r), st.name)
        if isinstance(st, Store):
            return Store(st.buffer, _dm(st.index, ranges), _dm(st.value, ranges))
        if isinstance(st, If):
            return If(_dm(st.cond, ranges), walk(st.then, ranges),
                      walk(st.orelse, ranges) if st.orelse is not None else None)
        if isinstance(st, Alloc):
            return Alloc(st.buffer, walk(st.body, ranges))
        if isinstance(st, Let):
            return Let(st.var, _dm(st.value, ranges), walk(st.body, ranges))
        return st
    return walk(s, {})


def _dm(e: Expr, ranges: dict) -> Expr:
    if not ranges:
        return e

    def go(x: Expr) -> Expr:
        y = _rebuild(x, go, {})
        if isinstance(y, Bin) and y.op in ("//", "%") and isinstance(y.b, Const) \
                and y.lanes == 1 and y.dtype.is_int and isinstance(y.b.value, int) and y.b.value > 0:
            r = _divmod(y.a, y.b.value, ranges)
            if r is not None:
                return r[0] if y.op == "//" else r[1]
        return y
    return go(e)


def _divmod(a: Expr, c: int, ranges: dict):
    from .ir import canon
    terms: list = []
    const_ = [0]

    def add(x: Expr, k: int) -> bool:
        if isinstance(x, Const):
            const_[0] += k * x.value
            return True
        if isinstance(x, Bin) and x.op in ("+", "-"):
            return add(x.a, k) and add(x.b, k if x.op == "+" else -k)
        if isinstance(x, Bin) and x.op == "*" and isinstance(x.b, Const):
            return add(x.a, k * x.b.value)
        if isinstance(x, Var) and x in ranges:
            terms.append((x, k))
            return True
        return False
    if not add(canon(a), 1):
        return None
    q: Expr = Const(0)
    r: Expr = Const(0)
    lo = hi = 0
    cq, cr = divmod(const_[0], c)
    for v, k in terms:
        if k % c == 0:
            q = q + v * (k // c)
        else:
            r = r + v * k
            ext = ranges[v]
            lo += min(0, k * (ext - 1))
            hi += max(0, k * (ext - 1))
    if lo + cr < 0 or hi + cr >= c:
        return None
    return q + cq, r + cr
