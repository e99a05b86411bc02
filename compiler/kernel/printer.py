"""Kernel IR as text: one statement per line, C-like, for dumps, tests and structural hashes.

    kernel @mm(%A: f32[64, 32], %B: f32[32, 48], %C: f32[64, 48]) dims() {
      parallel for mm.i0 in 0..64 {
        vectorized for mm.i1 in 0..48 {
          C[mm.i0*48 + mm.i1] = 0.0
    ...
"""
from __future__ import annotations

import hashlib

from .ir import (Alloc, Bin, Broadcast, Buffer, Call, Cast, Const, Expr, For, If, Kernel, Let,
                 Load, Ramp, Select, Seq, Stmt, Store, TensorLoad, Un, Var)


def expr_str(e: Expr) -> str:
    lanes = f"x{e.lanes}" if e.lanes > 1 else ""
    if isinstance(e, Const):
        v = e.value
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return repr(v) + ("" if e.dtype.name == "f32" else e.dtype.name)
        return str(v) if e.dtype.name == "i64" else f"{v}{e.dtype.name}"
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Bin):
        if e.op in ("min", "max"):
            return f"{e.op}({expr_str(e.a)}, {expr_str(e.b)})"
        return f"({expr_str(e.a)} {e.op} {expr_str(e.b)})"
    if isinstance(e, Un):
        return f"{e.op}({expr_str(e.a)})"
    if isinstance(e, Cast):
        return f"{e.dtype.name}{lanes}({expr_str(e.a)})"
    if isinstance(e, Select):
        return f"select({expr_str(e.cond)}, {expr_str(e.a)}, {expr_str(e.b)})"
    if isinstance(e, Load):
        return f"{e.buffer.name}[{expr_str(e.index)}]"
    if isinstance(e, TensorLoad):
        return f"{e.tensor.name}[{', '.join(expr_str(i) for i in e.indices)}]"
    if isinstance(e, Call):
        return f"{e.name}{lanes}:{e.dtype.name}({', '.join(expr_str(a) for a in e.args)})"
    if isinstance(e, Ramp):
        return f"ramp({expr_str(e.base)}, {e.stride}, {e.lanes})"
    if isinstance(e, Broadcast):
        return f"bcast({expr_str(e.value)}, {e.lanes})"
    return f"<{type(e).__name__}>"


def _buf(b: Buffer) -> str:
    dims = ", ".join(expr_str(d) if isinstance(d, Expr) else str(d) for d in b.shape)
    return f"{b.dtype.name}[{dims}]"


def stmt_lines(s: Stmt, indent: int = 1) -> list[str]:
    pad = "  " * indent
    if isinstance(s, Seq):
        return [line for x in s.stmts for line in stmt_lines(x, indent)]
    if isinstance(s, For):
        kind = "" if s.kind == "serial" else s.kind + " "
        head = f"{pad}{kind}for {s.var.name} in 0..{expr_str(s.extent)} {{"
        return [head] + stmt_lines(s.body, indent + 1) + [pad + "}"]
    if isinstance(s, Store):
        return [f"{pad}{s.buffer.name}[{expr_str(s.index)}] = {expr_str(s.value)}"]
    if isinstance(s, Alloc):
        return ([f"{pad}alloc {s.buffer.scope} {s.buffer.name}: {_buf(s.buffer)}"]
                + stmt_lines(s.body, indent))
    if isinstance(s, If):
        out = [f"{pad}if {expr_str(s.cond)} {{"] + stmt_lines(s.then, indent + 1)
        if s.orelse is not None:
            out += [pad + "} else {"] + stmt_lines(s.orelse, indent + 1)
        return out + [pad + "}"]
    if isinstance(s, Let):
        return [f"{pad}let {s.var.name} = {expr_str(s.value)}"] + stmt_lines(s.body, indent)
    return [f"{pad}<{type(s).__name__}>"]


def print_kernel(k: Kernel) -> str:
    params = ", ".join(f"%{b.name}: {_buf(b)}" for b in k.params)
    dims = ", ".join(v.name for v in k.dims)
    lines = [f"kernel @{k.name}({params}) dims({dims}) {{"] + stmt_lines(k.body) + ["}"]
    return "\n".join(lines) + "\n"


def structural_hash(k: Kernel) -> str:
    """A hash of the kernel's text with its name and buffer names replaced by positions: two
    kernels that compute the same thing on the same shapes hash alike."""
    text = print_kernel(k).split("\n", 1)[1]
    sig = ";".join(_buf(b) for b in k.params) + "|" + ",".join(v.name for v in k.dims)
    for i, b in enumerate(k.params):
        text = text.replace(b.name + "[", f"$p{i}[")
    return hashlib.sha256((sig + "\n" + text).encode()).hexdigest()[:24]
