"""simplify: algebraic identities and chains of data-movement ops and casts, as rewrite rules.

Every rule is exact: the interpreter's results are bit for bit the same after it (no float math
is reassociated), and every replacement has the replaced value's type. Float identities are
applied only where IEEE arithmetic makes them exact:

- x + c is x only for c = -0.0 (x + 0.0 turns -0.0 into +0.0), and x - c only for c = +0.0;
- x * 1 and x / 1 are x for every float (signed zeros, infinities and nan included);
- x - x is 0 only for integers (inf - inf and nan - nan are nan).

Data movement: no-op reshapes, transposes, broadcasts, slices, single-input concats and
`identity` go; chains of reshape-like ops (reshape, squeeze, unsqueeze, flatten) become one
reshape (or nothing), transpose chains one transpose; a broadcast_to feeding an elementwise op
that broadcasts anyway is dropped (the case of a splat constant broadcast to a big shape, and any
other). Casts: a cast to the operand's own dtype goes, and cast(cast(x, a), b) becomes
cast(x, b) when x -> a keeps every value.

A rule that needs a constant operand reads it through the rewriter: the constant must be a splat
(every element equal). Rules that would change a result's shape or dtype (x * ones that
broadcasts x to a larger shape, say) do not apply. Ops a rewrite leaves unused are removed by
the rewrite driver; constants left unread go with prune-dead.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from compiler.ir import Module, Op, TensorType, TypeInferenceError, Value
from compiler.ir import dtypes as dt

from .registry import register
from .rewrite import Rewriter, Rule, apply_rules

# ops that only reshape: the elements keep their row-major order, only the dims change
RESHAPES = frozenset({"reshape", "squeeze", "unsqueeze", "flatten"})


# --- helpers -------------------------------------------------------------------------------------


def producer(v: Value, *names: str) -> Optional[Op]:
    """The op defining v when it is one of `names`."""
    return v.owner if v.owner is not None and v.owner.name in names else None


def splat_zero(rw: Rewriter, v: Value, negative: bool) -> bool:
    """v is a constant of zeros; for floats, all -0.0 (negative) or all +0.0 (not negative)."""
    arr = rw.constant_value(v)
    if arr is None or arr.size == 0 or not np.all(arr == 0):
        return False
    if not v.dtype.is_float:
        return True
    signs = np.signbit(arr.astype(np.float64))  # exact for f16/bf16/f32, sign of zero kept
    return bool(np.all(signs)) if negative else not bool(np.any(signs))


def zero_of(rw: Rewriter, v: Value, negative: bool) -> bool:
    """v is the zero that leaves the other operand unchanged in an add (negative) or a sub
    (positive): any zero for integers, -0.0 or +0.0 for floats."""
    return v.dtype.is_int and rw.is_splat(v, 0) or v.dtype.is_float and splat_zero(rw, v, negative)


def reshape_to(rw: Rewriter, x: Value, t: TensorType) -> Optional[Value]:
    """A reshape of x to exactly type t, or None when the reshape rule cannot express it."""
    shape = list(t.shape)
    try:  # allowzero: a 0 in the target is a zero dim, not "copy the input dim"
        y = rw.op("reshape", x, shape=shape, allowzero=0 in shape)
    except TypeInferenceError:
        return None
    return y if y.type == t else None  # type: ignore[union-attr]


def perm_of(op: Op) -> list[int]:
    """A transpose's permutation, the empty default (reverse the axes) spelled out."""
    rank = op.operands[0].type.rank
    return list(op.attrs.get("perm") or range(rank)[::-1])


# casts that keep every value of the source dtype exactly (standard dtypes only): wider ints of
# the same or a signed kind, floats whose significand holds every integer of the source, wider
# floats. bool -> any numeric type is exact too.
_EXACT_INT_TO_FLOAT = {"f16": 11, "bf16": 8, "f32": 24, "f64": 53}  # significand bits
_WIDER_FLOATS = {"f16": ("f32", "f64"), "bf16": ("f32", "f64"), "f32": ("f64",)}


def cast_is_exact(src: dt.DType, to: dt.DType) -> bool:
    """Every value of src converts to `to` exactly."""
    if src.is_narrow or to.is_narrow:
        return False
    if src.is_bool:
        return not to.is_bool
    if src.is_int and to.is_int:
        if src.kind == to.kind:
            return to.bits > src.bits
        return src.kind == "uint" and to.kind == "int" and to.bits > src.bits
    if src.is_int and to.is_float:
        value_bits = src.bits - 1 if src.kind == "int" else src.bits
        return value_bits <= _EXACT_INT_TO_FLOAT[to.name]
    if src.is_float and to.is_float:
        return to.name in _WIDER_FLOATS.get(src.name, ())
    return False


# --- arithmetic identities -----------------------------------------------------------------------


def mul_by_one(op: Op, rw: Rewriter) -> Optional[Value]:  # x*1 -> x, 1*x -> x
    if op.name == "mul":
        for x, one in (op.operands, op.operands[::-1]):
            if x.type == op.result.type and rw.is_splat(one, 1):
                return x
    return None


def add_zero(op: Op, rw: Rewriter) -> Optional[Value]:  # x+0 -> x (ints), x+(-0.0) -> x (floats)
    if op.name == "add":
        for x, zero in (op.operands, op.operands[::-1]):
            if x.type == op.result.type and zero_of(rw, zero, negative=True):
                return x
    return None


def sub_zero(op: Op, rw: Rewriter) -> Optional[Value]:  # x-0 -> x (ints), x-(+0.0) -> x (floats)
    if op.name == "sub":
        x, zero = op.operands
        if x.type == op.result.type and zero_of(rw, zero, negative=False):
            return x
    return None


def div_by_one(op: Op, rw: Rewriter) -> Optional[Value]:  # x/1 -> x
    if op.name == "div":
        x, one = op.operands
        if x.type == op.result.type and rw.is_splat(one, 1):
            return x
    return None


def sub_self(op: Op, rw: Rewriter) -> Optional[Value]:  # x-x -> 0 (integers only)
    if op.name == "sub" and op.operands[0] is op.operands[1] and op.result.dtype.is_int:
        t = op.result.type
        return rw.op("full", shape=list(t.shape), value=0.0, dtype=t.dtype)  # type: ignore
    return None


def double_neg(op: Op, rw: Rewriter) -> Optional[Value]:  # -(-x) -> x
    inner = producer(op.operands[0], "neg") if op.name == "neg" else None
    return inner.operands[0] if inner is not None else None


# --- data movement -------------------------------------------------------------------------------


def identity_op(op: Op, rw: Rewriter) -> Optional[Value]:  # identity(x) -> x
    return op.operands[0] if op.name == "identity" else None


def reshape_noop(op: Op, rw: Rewriter) -> Optional[Value]:  # reshape(x) to x's own type -> x
    # also squeeze/unsqueeze/flatten: same dims, same row-major elements
    if op.name in RESHAPES and op.result.type == op.operands[0].type:
        return op.operands[0]
    return None


def reshape_chain(op: Op, rw: Rewriter) -> Optional[Value]:  # reshape(reshape(x)) -> reshape(x)
    # any two of reshape/squeeze/unsqueeze/flatten; a pair that cancels (unsqueeze then squeeze
    # of the same axis, say) gives x itself
    inner = producer(op.operands[0], *RESHAPES) if op.name in RESHAPES else None
    if inner is None:
        return None
    x = inner.operands[0]
    return x if x.type == op.result.type else reshape_to(rw, x, op.result.type)


# transpose(transpose(x, p), q) -> transpose(x, p[q]), or x when that is the identity
def transpose_chain(op: Op, rw: Rewriter) -> Optional[Value]:
    inner = producer(op.operands[0], "transpose") if op.name == "transpose" else None
    if inner is None:
        return None
    p, q = perm_of(inner), perm_of(op)
    composed = [p[i] for i in q]  # result axis i is inner axis q[i], which is x axis p[q[i]]
    x = inner.operands[0]
    if composed == list(range(len(composed))):
        return x
    return rw.op("transpose", x, perm=composed)  # type: ignore[return-value]


def transpose_noop(op: Op, rw: Rewriter) -> Optional[Value]:  # transpose(x, identity perm) -> x
    if op.name == "transpose" and perm_of(op) == list(range(op.result.type.rank)):
        return op.operands[0]
    return None


def broadcast_noop(op: Op, rw: Rewriter) -> Optional[Value]:  # broadcast_to(x) to x's type -> x
    if op.name == "broadcast_to" and op.result.type == op.operands[0].type:
        return op.operands[0]
    return None


# f(broadcast_to(y), z) -> f(y, z)
def drop_broadcast_operand(op: Op, rw: Rewriter) -> Optional[Value]:
    # when f broadcasts its operands anyway and its result type stays: each element reads the
    # same value of y either way (a splat constant broadcast to a big shape is the common case)
    if not (op.opdef.has("elementwise") and op.opdef.has("broadcasting")):
        return None
    for i, v in enumerate(op.operands):
        bcast = producer(v, "broadcast_to")
        if bcast is None:
            continue
        operands = list(op.operands)
        operands[i] = bcast.operands[0]
        try:
            types = op.opdef.infer([o.type for o in operands], op.attrs)
        except TypeInferenceError:
            continue
        if types == [r.type for r in op.results]:
            return rw.op(op.name, *operands, **op.attrs)  # type: ignore[return-value]
    return None


def slice_everything(op: Op, rw: Rewriter) -> Optional[Value]:  # slice taking all of x -> x
    # same type and forward steps: every sliced axis starts at 0 and keeps its length, so it
    # takes every element in order (a backward step would reverse; it is fine on size <= 1)
    if op.name != "slice" or op.result.type != op.operands[0].type:
        return None
    x = op.operands[0]
    n = len(op.attrs["starts"])
    axes = op.attrs.get("axes") or tuple(range(n))
    steps = op.attrs.get("steps") or (1,) * n
    for axis, step in zip(axes, steps):
        d = x.type.shape[axis]
        if step < 0 and not (isinstance(d, int) and d <= 1):
            return None
    return x


def concat_single(op: Op, rw: Rewriter) -> Optional[Value]:  # concat(x) -> x
    if op.name == "concat" and len(op.operands) == 1:
        return op.operands[0]
    return None


# --- casts ---------------------------------------------------------------------------------------


def cast_noop(op: Op, rw: Rewriter) -> Optional[Value]:  # cast(x: T, to=T) -> x
    # except a saturating cast to f8e5m2, which clamps x's infinities
    if op.name == "cast" and op.result.type == op.operands[0].type:
        if not (op.result.dtype == dt.f8e5m2 and op.attrs.get("saturate", True)):
            return op.operands[0]
    return None


def cast_chain(op: Op, rw: Rewriter) -> Optional[Value]:  # cast(cast(x, a), b) -> cast(x, b)
    # only when x -> a keeps every value (i8 -> i32 -> i64, f16 -> f32 -> f64): casting the same
    # value to b then gives the same result. Standard dtypes only, and no float -> int outer cast
    # (out-of-range float -> int conversion is undefined and may depend on the source width).
    inner = producer(op.operands[0], "cast") if op.name == "cast" else None
    if inner is None:
        return None
    x, to = inner.operands[0], op.result.dtype
    if not cast_is_exact(x.dtype, inner.result.dtype) or to.is_narrow:
        return None
    if inner.result.dtype.is_float and to.is_integral:
        return None
    return rw.op("cast", x, **op.attrs)  # type: ignore[return-value]


def unflatten_contraction(op: Op, rw: Rewriter) -> Optional[Value]:
    """reshape(gemm/linear/matmul(reshape(x: [*lead, K] -> [M, K]), w, ...) -> [*lead, N])
    -> the contraction on x itself (what frontends emit for a Linear on 3-D input); the
    kernel then indexes the output directly instead of through two reshapes."""
    if op.name not in RESHAPES:
        return None
    mm = producer(op.operands[0], "gemm", "linear", "matmul")
    if mm is None or rw.num_users(mm.results[0]) != 1:
        return None
    flat = producer(mm.operands[0], *RESHAPES)
    if flat is None:
        return None
    x = flat.operands[0]
    xs, ys, fs = x.type.shape, op.result.type.shape, flat.result.type.shape
    if any(not isinstance(d, int) for d in (*xs, *ys, *fs)) or len(fs) != 2 or len(xs) < 2:
        return None
    lead = list(ys[:-1])
    if list(xs[:len(lead)]) != lead or fs[0] != int(np.prod(lead)) or \
            fs[1] != int(np.prod(xs[len(lead):])) or len(xs) == len(lead):
        return None
    if len(xs) > len(lead) + 1:  # merge the trailing dims into K: [*lead, K]
        x = reshape_to(rw, x, TensorType(tuple(lead) + (fs[1],), x.type.dtype))
        if x is None:
            return None
    if mm.name == "linear":
        return rw.op("linear", x, *mm.operands[1:])  # type: ignore[return-value]
    b = mm.operands[1]
    if mm.name == "matmul":
        if b.type.rank != 2:
            return None
        return rw.op("matmul", x, b)  # type: ignore[return-value]
    a = mm.attrs
    if a.get("trans_a"):
        return None
    if a.get("trans_b"):
        b = rw.op("transpose", b, perm=[1, 0])
    y = rw.op("matmul", x, b)
    if a.get("alpha", 1.0) != 1.0:
        y = rw.op("mul", y, rw.constant(np.asarray(a["alpha"], y.dtype.np_dtype), "alpha"))
    if len(mm.operands) > 2:
        c = mm.operands[2]
        if c.type.rank == 2 and c.type.shape[0] != 1:
            c = reshape_to(rw, c, TensorType(tuple(lead) + (c.type.shape[1],), c.type.dtype))
            if c is None:
                return None
        if a.get("beta", 1.0) != 1.0:
            c = rw.op("mul", c, rw.constant(np.asarray(a["beta"], c.dtype.np_dtype), "beta"))
        y = rw.op("add", y, c)
    return y if y.type == op.result.type else None  # type: ignore[union-attr]


RULES: Sequence[Rule] = (
    mul_by_one, add_zero, sub_zero, div_by_one, sub_self, double_neg,
    identity_op, reshape_noop, reshape_chain, transpose_noop, transpose_chain,
    broadcast_noop, drop_broadcast_operand, slice_everything, concat_single,
    cast_noop, cast_chain, unflatten_contraction,
)


@register("simplify")
class Simplify:
    """Algebraic identities and movement/cast chains; exact (see the module docstring)."""

    def run(self, module: Module) -> bool:
        return apply_rules(module, RULES)
