"""Kernel IR to kernel IR: unrolling and vectorization, run before code generation.

- `unroll`: a loop of kind "unrolled" becomes copies of its body with the index a constant
  (so a register tile's local buffer has constant indices and LLVM keeps it in registers).
- `vectorize`: a loop of kind "vectorized" with extent L becomes one L-lane body: its index is
  ramp(0, 1, L); loads at ramp(b, 1) become vector loads, other indices gathers; stores likewise.
  A store to an index that does not depend on the loop (a reduction along it) folds the lanes
  (reduce_add/max/min). A guard that depends on the loop index splits the loop: a vector body
  when every lane is in range, else masked loads and stores (`masked_load`/`masked_store`
  calls) where they are contiguous, else the scalar loop.
"""
from __future__ import annotations

from typing import Optional

from .ir import (Alloc, Bin, Broadcast, Buffer, Call, Cast, Const, Expr, For, If, KernelError,
                 Kernel, Let, Load, Ramp, Select, Seq, Stmt, Store, Un, Var, binop, broadcast,
                 call, cast, select, seq, subst_stmt, substitute, walk_expr, walk_stmt, _rebuild)


def lower_kernel(k: Kernel) -> Kernel:
    body = simplify_divmod(k.body)
    body = unroll(body)
    body = version_guards(body)
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


# ------------------------------------------------------------------------------ guards

def version_guards(s: Stmt) -> Stmt:
    """Loop versioning of bounds guards: a guard inside a loop nest that holds for every
    iteration of the inner loops whenever a cheap test at the top of an outer loop's body holds
    is hoisted there, giving `if test { body without it } else { body }`. A ragged tile then
    runs the guard-free body for all full tiles and the guarded one only at the edge (a
    micro-kernel's hot loop stays branch-free). A conjunct `a < b` is hoisted at loop L when it
    uses L's index, is affine in the loops between L and the guard, those have constant
    extents, and at least one loop lies between L and the guard."""
    def go(st: Stmt) -> Stmt:
        if isinstance(st, Seq):
            return seq(*[go(x) for x in st.stmts])
        if isinstance(st, For):
            if st.kind in ("serial", "parallel"):
                hits = _hoistable(st)
                if hits:
                    body = _version_at(st.body, hits, go)
                    return For(st.var, st.extent, st.kind, body, st.name)
            return For(st.var, st.extent, st.kind, go(st.body), st.name)
        if isinstance(st, If):
            return If(st.cond, go(st.then), go(st.orelse) if st.orelse is not None else None)
        if isinstance(st, Alloc):
            return Alloc(st.buffer, go(st.body))
        if isinstance(st, Let):
            return Let(st.var, st.value, go(st.body))
        return st
    return go(s)


def _version_at(s: Stmt, hits: list, go) -> Stmt:
    """Version the smallest statements of `s` that hold the hoisted guards (the part of a tile
    body that has them, not the whole body)."""
    ids = {id(x) for x in walk_stmt(s) if isinstance(x, If)}
    mine = [h for h in hits if h[0] in ids]
    if not mine:
        return go(s)
    if isinstance(s, Seq):
        return seq(*[_version_at(x, mine, go) for x in s.stmts])
    if isinstance(s, Alloc) and s.buffer.scope not in ("local", "shared"):
        return Alloc(s.buffer, _version_at(s.body, mine, go))
    # (a local buffer is versioned whole: each copy gets its own, so that the edge copy's
    # variable indices into a register tile do not force the fast copy's tile into memory)
    tests: list[Expr] = []
    for _, _, w in mine:
        if w not in tests:
            tests.append(w)
    test = _simplify_tests(tests)
    fast = _strip_guards(s, {(i, c) for i, c, _ in mine})
    return If(test, go(fast), go(s))


def _simplify_tests(tests: list[Expr]) -> Expr:
    """AND of tests `a < b`; of several with the same b and a differing by constants, only
    the largest a is kept (a tile's rows: r + 1 < M, ..., r + 11 < M -> r + 11 < M)."""
    from .ir import canon
    best: dict = {}
    order: list = []
    for t in tests:
        key = None
        if isinstance(t, Bin) and t.op in ("<", "<="):
            a = canon(t.a)
            off = 0
            if isinstance(a, Bin) and a.op == "+" and isinstance(a.b, Const):
                a, off = a.a, a.b.value
            elif isinstance(a, Const):
                a, off = Const(0), a.value
            key = (t.op, a, t.b)
        if key is None:
            order.append(t)
            continue
        if key not in best:
            order.append(key)
            best[key] = off
        best[key] = max(best[key], off)
    out: Optional[Expr] = None
    for k in order:
        if isinstance(k, tuple):
            op, a, b = k
            t = binop(op, binop("+", a, best[k]), b)
        else:
            t = k
        out = t if out is None else binop("and", out, t)
    return out


def _conjuncts(c: Expr) -> list[Expr]:
    if isinstance(c, Bin) and c.op == "and":
        return _conjuncts(c.a) + _conjuncts(c.b)
    return [c]


def _hoistable(loop: For) -> list[tuple[int, Expr, Expr]]:
    """(id of the If, conjunct, test at the top of `loop`'s body) for each hoistable conjunct."""
    out: list[tuple[int, Expr, Expr]] = []

    def visit(st: Stmt, inner: dict, depth: int) -> None:
        if isinstance(st, Seq):
            for x in st.stmts:
                visit(x, inner, depth)
        elif isinstance(st, For):
            ext = st.extent.value if isinstance(st.extent, Const) else None
            visit(st.body, {**inner, st.var: ext}, depth + 1)
        elif isinstance(st, Let):
            visit(st.body, {**inner, st.var: None}, depth)
        elif isinstance(st, Alloc):
            visit(st.body, inner, depth)
        elif isinstance(st, If):
            if st.orelse is None and depth >= 1:
                for c in _conjuncts(st.cond):
                    if _uses(c, loop.var):
                        w = _worst_case(c, inner)
                        if w is not None:
                            out.append((id(st), c, w))
            visit(st.then, inner, depth)
            if st.orelse is not None:
                visit(st.orelse, inner, depth)
    visit(loop.body, {}, 0)
    return out


def _worst_case(c: Expr, inner: dict) -> Optional[Expr]:
    """A test free of the inner loops' indices that implies `c` for all their values."""
    from .schedule import _linear
    if not (isinstance(c, Bin) and c.op in ("<", "<=", ">", ">=") and c.a.dtype.is_int
            and c.lanes == 1):
        return None
    if any(isinstance(x, Load) for x in walk_expr(c)):
        return None  # memory read there may differ at the top of the loop (hand-written nests)
    used = {x for x in walk_expr(c) if isinstance(x, Var) and x in inner}
    if any(inner[v] is None for v in used):
        return None
    a, b = (c.a, c.b) if c.op in ("<", "<=") else (c.b, c.a)
    la, lb = _linear(a, used), _linear(b, used)
    if la is None or lb is None:
        return None
    hi = la[1]  # a at its largest
    for v, k in la[0].items():
        hi = hi + max(0, k) * (inner[v] - 1)
    lo = lb[1]  # b at its smallest
    for v, k in lb[0].items():
        lo = lo + min(0, k) * (inner[v] - 1)
    return binop("<" if c.op in ("<", ">") else "<=", hi, lo)


def _strip_guards(s: Stmt, drop: set) -> Stmt:
    if isinstance(s, Seq):
        return seq(*[_strip_guards(x, drop) for x in s.stmts])
    if isinstance(s, For):
        return For(s.var, s.extent, s.kind, _strip_guards(s.body, drop), s.name)
    if isinstance(s, Alloc):
        return Alloc(s.buffer, _strip_guards(s.body, drop))
    if isinstance(s, Let):
        return Let(s.var, s.value, _strip_guards(s.body, drop))
    if isinstance(s, If):
        then = _strip_guards(s.then, drop)
        orelse = _strip_guards(s.orelse, drop) if s.orelse is not None else None
        if orelse is None:
            keep = [c for c in _conjuncts(s.cond) if (id(s), c) not in drop]
            if not keep:
                return then
            cond = keep[0]
            for c in keep[1:]:
                cond = binop("and", cond, c)
            return If(cond, then)
        return If(s.cond, then, orelse)
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
                try:  # the partial vector: masked loads and stores, else the scalar loop
                    partial = _Vec(f.var, lanes, masked=True).stmt(f.body)
                except _NoVector:
                    partial = serial
                return If(full, vec, partial)
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
    """Vectorizes a loop body over `var`. With `masked`, a guard that depends on the lanes
    becomes a mask: the guarded stores become masked stores, and the loads they make that
    depend on the lanes masked loads (contiguous ones only), run when any lane is valid."""

    def __init__(self, var: Var, lanes: int, masked: bool = False) -> None:
        self.var = var
        self.lanes = lanes
        self.masked = masked

    def stmt(self, s: Stmt) -> Stmt:
        if isinstance(s, Seq):
            return seq(*[self.stmt(x) for x in s.stmts])
        if isinstance(s, Store):
            return self.store(s)
        if isinstance(s, If):
            if _uses(s.cond, self.var):
                if self.masked and s.orelse is None:
                    return self.masked_if(s)
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

    def masked_if(self, s: If) -> Stmt:
        from .ir import BOOL
        lane = [c for c in _conjuncts(s.cond) if _uses(c, self.var)]
        rest = [c for c in _conjuncts(s.cond) if not _uses(c, self.var)]
        lc = lane[0]
        for c in lane[1:]:
            lc = binop("and", lc, c)
        mask = self.expr(lc)
        body = self.masked_body(s.then, mask)
        cond: Expr = Call("reduce_max", (mask,), BOOL, 1)  # any lane valid
        for c in reversed(rest):
            cond = binop("and", c, cond)
        return If(cond, body)

    def masked_body(self, s: Stmt, mask: Expr) -> Stmt:
        if isinstance(s, Seq):
            return seq(*[self.masked_body(x, mask) for x in s.stmts])
        if isinstance(s, If) and not _uses(s.cond, self.var) and s.orelse is None:
            return If(s.cond, self.masked_body(s.then, mask))
        if not isinstance(s, Store):
            raise _NoVector()
        index = self.expr(s.index)
        if not (isinstance(index, Ramp) and index.stride == 1 and index.lanes == self.lanes):
            raise _NoVector()
        ramp = Ramp(Const(0), 1, self.lanes)

        def go(x: Expr) -> Expr:
            if x == self.var:
                return ramp
            if isinstance(x, Load):
                i = go(x.index)
                if i.lanes == 1:
                    return Load(x.buffer, i, x.buffer.dtype, 1)
                if not (isinstance(i, Ramp) and i.stride == 1 and i.lanes == self.lanes):
                    raise _NoVector()  # a gather, or a load wider than the lanes
                ld = Load(x.buffer, i, x.buffer.dtype, i.lanes)
                return Call("masked_load", (ld, mask), ld.dtype, ld.lanes)
            return _rebuild(x, go, {})
        value = go(s.value)
        if value.lanes not in (1, self.lanes):
            raise _NoVector()
        value = broadcast(value, self.lanes)
        return Store(s.buffer, index, Call("masked_store", (value, mask), value.dtype,
                                           self.lanes))

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
        if k % c == 0:  # any integer atom times a multiple of c goes to the quotient
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
