"""Linear-algebra ops: matmul, gemm, linear and einsum (NumPy / ONNX / PyTorch semantics).

All are contractions: the heavy compute that elementwise epilogues fuse into. Contracted dims must
agree: equal ints, the same symbol, or a symbol against an int (the runtime checks that one).
Two different symbols are rejected, since the compiler cannot prove them equal.

f16 and bf16 operands are multiplied and accumulated in f32 and rounded once, as the code
generators do; f32 accumulates in f32, f64 in f64, integers wrap in their own width.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import dtypes as dt
from ..registry import attr, def_op
from ..types import Dim, TensorType, TypeInferenceError, broadcast_shapes, format_dim
from ._common import same_dtype

# Floats and the integer widths that matrix units and BLAS-like kernels support.
_CONTRACTION_DTYPES = frozenset({dt.f16, dt.bf16, dt.f32, dt.f64, dt.i32, dt.i64})
_LOW_PRECISION = (np.dtype(np.float16), dt.bf16.np_dtype)


def _check_dtype(op: str, *types: TensorType) -> dt.DType:
    """The operands' shared dtype, which must be a float or i32/i64."""
    d = same_dtype(op, *types)
    if d not in _CONTRACTION_DTYPES:
        raise TypeInferenceError(f"{op} needs f16/bf16/f32/f64/i32/i64 operands, got {d}")
    return d


def merge_dim(op: str, what: str, a: Dim, b: Dim) -> Dim:
    """The common value of two dims that must be equal; prefers the static one.

    A symbol against an int is accepted (checked at run time); two different ints or two
    different symbols are a TypeInferenceError naming `what`.
    """
    if a == b:
        return a
    if isinstance(a, str) and isinstance(b, int):
        return b
    if isinstance(a, int) and isinstance(b, str):
        return a
    hint = ("; use one symbol for both" if isinstance(a, str) and isinstance(b, str) else "")
    raise TypeInferenceError(f"{op}: {what} must be equal, got {format_dim(a)} and "
                             f"{format_dim(b)}{hint}")


def _shape_str(shape: Sequence[Dim]) -> str:
    return "[" + ",".join(format_dim(d) for d in shape) + "]"


def _low_precision_in_f32(*xs: np.ndarray) -> tuple[tuple[np.ndarray, ...], Optional[np.dtype]]:
    """The arrays widened to f32 when they are f16/bf16, and the dtype to round the result to."""
    low = xs[0].dtype if xs[0].dtype in _LOW_PRECISION else None
    if low is None:
        return xs, None
    return tuple(x.astype(np.float32) for x in xs), low


def _finish(y: np.ndarray, like: np.dtype, low: Optional[np.dtype]) -> np.ndarray:
    """Round a result computed in f32 back to the operand dtype (one rounding)."""
    y = np.asarray(y)
    return y.astype(low if low is not None else like, copy=False)


# --- matmul ---------------------------------------------------------------------------------------


def _matmul_rule(a: TensorType, b: TensorType) -> TensorType:
    d = _check_dtype("matmul", a, b)
    if a.rank == 0 or b.rank == 0:
        raise TypeInferenceError(f"matmul operands must have rank >= 1, got {a} and {b}")
    # NumPy 1-D promotion: a [K] acts as [1, K], b [K] as [K, 1]; the added dim is dropped again.
    ash = a.shape if a.rank > 1 else (1,) + a.shape
    bsh = b.shape if b.rank > 1 else b.shape + (1,)
    merge_dim("matmul", f"contraction dims (a {_shape_str(a.shape)} dim -1, b "
              f"{_shape_str(b.shape)} dim {-2 if b.rank > 1 else -1})", ash[-1], bsh[-2])
    try:
        batch = broadcast_shapes(ash[:-2], bsh[:-2])
    except TypeInferenceError as e:
        raise TypeInferenceError(f"matmul batch dims: {e}") from None
    out = batch + ((ash[-2],) if a.rank > 1 else ()) + ((bsh[-1],) if b.rank > 1 else ())
    return TensorType(out, d)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    (a2, b2), low = _low_precision_in_f32(a, b)
    return _finish(np.matmul(a2, b2), a.dtype, low)


def_op("matmul", ["a", "b"], _matmul_rule, _matmul, traits=("pure", "contraction"),
       doc="NumPy matmul: 1-D operands are promoted, batch dims broadcast")


# --- gemm -----------------------------------------------------------------------------------------


def _gemm_rule(a: TensorType, b: TensorType, c: Optional[TensorType] = None, *, alpha: float,
               beta: float, trans_a: bool, trans_b: bool) -> TensorType:
    d = _check_dtype("gemm", a, b, *([c] if c is not None else []))
    for name, t in (("a", a), ("b", b)):
        if t.rank != 2:
            raise TypeInferenceError(f"gemm operand {name} must have rank 2, got {t}")
    if d.is_int and not (float(alpha).is_integer() and float(beta).is_integer()):
        raise TypeInferenceError(f"gemm on {d} needs integral alpha and beta, got alpha={alpha}, "
                                 f"beta={beta}")
    m, k1 = a.shape[::-1] if trans_a else a.shape
    k2, n = b.shape[::-1] if trans_b else b.shape
    merge_dim("gemm", f"contraction dims (K of a {a} with trans_a={trans_a} and of b {b} with "
              f"trans_b={trans_b})", k1, k2)
    if c is not None:
        if c.rank > 2:
            raise TypeInferenceError(f"gemm operand c must have rank <= 2, got {c}")
        target = (m, n)[2 - c.rank:]
        for cd, td in zip(c.shape, target):
            # unidirectional: c's dim is 1 or the result dim; a symbol against an int is checked
            # at run time
            if cd == 1 or cd == td or isinstance(cd, str) != isinstance(td, str):
                continue
            raise TypeInferenceError(f"gemm operand c {c} does not broadcast to the result "
                                     f"{_shape_str((m, n))}")
    return TensorType((m, n), d)


def _gemm(a: np.ndarray, b: np.ndarray, c: Optional[np.ndarray] = None, *, alpha: float,
          beta: float, trans_a: bool, trans_b: bool) -> np.ndarray:
    xs, low = _low_precision_in_f32(a, b, *([c] if c is not None else []))
    a2, b2 = xs[0], xs[1]
    a2 = a2.T if trans_a else a2
    b2 = b2.T if trans_b else b2
    y = np.matmul(a2, b2)
    # Scalars in the compute dtype, so f32 stays f32 and integers stay integers.
    cast = (lambda v: y.dtype.type(int(v))) if y.dtype.kind in "iu" else y.dtype.type
    if alpha != 1.0:
        y = y * cast(alpha)
    if c is not None and beta != 0.0:
        y = y + (xs[2] if beta == 1.0 else xs[2] * cast(beta))
    return _finish(y, a.dtype, low)


def_op("gemm", ["a", "b", "c?"], _gemm_rule, _gemm,
       attrs={"alpha": attr("float", 1.0), "beta": attr("float", 1.0),
              "trans_a": attr("bool", False), "trans_b": attr("bool", False)},
       traits=("pure", "contraction"),
       doc="ONNX Gemm: alpha * op(a) @ op(b) + beta * c, op = transpose when trans_a/trans_b")


# --- linear ---------------------------------------------------------------------------------------


def _linear_rule(x: TensorType, w: TensorType, bias: Optional[TensorType] = None) -> TensorType:
    d = _check_dtype("linear", x, w, *([bias] if bias is not None else []))
    if x.rank < 1:
        raise TypeInferenceError(f"linear input x must have rank >= 1, got {x}")
    if w.rank != 2:
        raise TypeInferenceError(f"linear weight w must have rank 2 [N, K], got {w}")
    merge_dim("linear", f"in-features (x {x} dim -1, w {w} dim 1)", x.shape[-1], w.shape[1])
    n = w.shape[0]
    if bias is not None:
        if bias.rank != 1:
            raise TypeInferenceError(f"linear bias must have rank 1 [N], got {bias}")
        n = merge_dim("linear", f"out-features (w {w} dim 0, bias {bias})", n, bias.shape[0])
    return TensorType(x.shape[:-1] + (n,), d)


def _linear(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray] = None) -> np.ndarray:
    xs, low = _low_precision_in_f32(x, w, *([bias] if bias is not None else []))
    y = np.matmul(xs[0], xs[1].T)
    if bias is not None:
        y = y + xs[2]
    return _finish(y, x.dtype, low)


def_op("linear", ["x", "w", "bias?"], _linear_rule, _linear, traits=("pure", "contraction"),
       doc="torch.nn.functional.linear: x [..., K] @ w[N, K]^T + bias [N] -> [..., N]")


# --- einsum ---------------------------------------------------------------------------------------


def parse_einsum(equation: str, ranks: Sequence[int]) -> tuple[list[list[str]], list[str]]:
    """Split an einsum equation into per-operand label lists and the output label list.

    "..." becomes the single pseudo-label "..."; without "->" the output is NumPy's implicit one
    ("..." first, then the labels used once, in ASCII order). Raises TypeInferenceError for
    malformed equations and label/rank mismatches.
    """
    eq = equation.replace(" ", "")

    def bad(why: str) -> TypeInferenceError:
        return TypeInferenceError(f"einsum equation {equation!r}: {why}")

    if eq.count("->") > 1:
        raise bad("more than one '->'")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise bad(f"has {len(terms)} operand terms, but {len(ranks)} operands were given")

    def labels(term: str, where: str) -> list[str]:
        if term.count("...") > 1:
            raise bad(f"{where} has more than one '...'")
        out: list[str] = []
        for i, part in enumerate(term.split("...")):
            if i:
                out.append("...")
            for ch in part:
                if not ("a" <= ch <= "z" or "A" <= ch <= "Z"):
                    raise bad(f"{where} has {ch!r}; labels are letters a-z, A-Z")
                out.append(ch)
        return out

    ins = [labels(t, f"operand {i} term {t!r}") for i, t in enumerate(terms)]
    for i, (lab, r) in enumerate(zip(ins, ranks)):
        named = sum(1 for x in lab if x != "...")
        if named > r or ("..." not in lab and named != r):
            raise bad(f"operand {i} has rank {r} but term {terms[i]!r} names {named} dims")
    if arrow:
        out = labels(rhs, f"output term {rhs!r}")
        seen_in = {x for lab in ins for x in lab}
        for x in out:
            if x != "..." and x not in seen_in:
                raise bad(f"output label {x!r} appears in no operand")
        if len(set(out)) != len(out):
            raise bad("the output repeats a label")
    else:
        counts: dict[str, int] = {}
        for lab in ins:
            for x in lab:
                if x != "...":
                    counts[x] = counts.get(x, 0) + 1
        out = (["..."] if any("..." in lab for lab in ins) else [])
        out += sorted(x for x, n in counts.items() if n == 1)
    return ins, out


def _einsum_rule(*inputs: TensorType, equation: str) -> TensorType:
    if not inputs:
        raise TypeInferenceError("einsum needs at least one operand")
    d = _check_dtype("einsum", *inputs)
    ins, out = parse_einsum(equation, [t.rank for t in inputs])
    sizes: dict[str, Dim] = {}
    ellipses: list[tuple[Dim, ...]] = []
    for i, (lab, t) in enumerate(zip(ins, inputs)):
        n_ell = t.rank - (len(lab) - 1) if "..." in lab else 0
        pos = 0
        for x in lab:
            if x == "...":
                ellipses.append(t.shape[pos:pos + n_ell])
                pos += n_ell
                continue
            what = f"dims labelled {x!r} (operand {i} {t} and earlier)"
            sizes[x] = merge_dim("einsum", what, sizes[x], t.shape[pos]) if x in sizes \
                else t.shape[pos]
            pos += 1
    try:
        ell = broadcast_shapes(*ellipses)
    except TypeInferenceError as e:
        raise TypeInferenceError(f"einsum {equation!r}: the '...' dims: {e}") from None
    if ell and "..." not in out:
        # NumPy refuses to sum over broadcast dims implicitly; follow it.
        raise TypeInferenceError(f"einsum {equation!r}: '...' covers dims {_shape_str(ell)} but "
                                 "the output has no '...'")
    shape: list[Dim] = []
    for x in out:
        shape.extend(ell if x == "..." else (sizes[x],))
    return TensorType(tuple(shape), d)


def _einsum(*inputs: np.ndarray, equation: str) -> np.ndarray:
    xs, low = _low_precision_in_f32(*inputs)
    return _finish(np.einsum(equation.replace(" ", ""), *xs), inputs[0].dtype, low)


def_op("einsum", ["inputs*"], _einsum_rule, _einsum, attrs={"equation": attr("str")},
       traits=("pure", "contraction"),
       doc="Einstein summation (NumPy/ONNX): '...' broadcasts, no '->' means the implicit output")
