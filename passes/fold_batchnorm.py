"""fold-batchnorm: fold an inference batch_norm into the conv, linear, matmul or gemm feeding it.

batch_norm(y) = (y - mean) * s + bias with s = scale / sqrt(var + eps), per channel (axis 1 of y).
When y = conv(x, w, b) that is w' x + b' with

    w' = w * s[:, None, ...]     (w is [M, C/groups, *k]: its axis 0 is the channel)
    b' = (b - mean) * s + bias   (b = 0 when the conv has none)

computed in float64 and rounded once to the weights' dtype. The same holds for a rank-2 result
[N, features] of linear (w [features, K]: scale its rows), matmul (constant b [K, features]: scale
its columns; the shift becomes an `add` after the matmul) and gemm (constant b, either layout; the
shift and beta * c become the new c, with beta = 1). For results of rank 3 or more, batch_norm's
channel axis 1 is not their feature axis, so those are left alone.

Conditions: the weights, the conv/linear bias or gemm's c, and all four batch_norm parameters are
constants; the contraction's result feeds only the batch_norm (it is not returned or read by
another op), so folding removes it. The folded weights and bias are new constants named after
the old ones (`@w` -> `@w_bn`); the old ones stay for their other readers, or for prune-dead.

Not exact: the folded op computes sum(x * (w * s)) + b' instead of (sum(x * w) + b - mean) * s +
bias, so results match the unfolded graph within float rounding of the weights' dtype (a few
ulps of the magnitudes involved), not bit for bit.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from compiler.ir import Module, Op, Value
from compiler.ir import dtypes as dt

from .registry import register
from .rewrite import Rewriter, apply_rules

CONTRACTIONS = ("conv", "linear", "matmul", "gemm")


def batch_norm_factors(op: Op, rw: Rewriter) -> Optional[tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]]:
    """(s, mean, bias) of a batch_norm with constant parameters, in float64; None otherwise."""
    params = [rw.constant_value(v) for v in op.operands[1:]]
    if any(p is None for p in params):
        return None
    scale, bias, mean, var = (p.astype(np.float64) for p in params)  # type: ignore[union-attr]
    # the reference adds epsilon in x's compute dtype (f32 for f16/bf16/f32): round it the same
    eps = op.attrs.get("epsilon", 1e-5)
    if op.result.dtype != dt.f64:
        eps = float(np.float32(eps))
    with np.errstate(divide="ignore", invalid="ignore"):  # a non-finite s is refused later
        s = scale / np.sqrt(var + eps)
    return s, mean, bias


def fold_batchnorm(op: Op, rw: Rewriter) -> Optional[Value]:  # bn(conv(x, w, b)) -> conv(x, w', b')
    if op.name != "batch_norm" or not op.result.dtype.is_float:
        return None
    y = op.operands[0]
    producer = y.owner
    if producer is None or producer.name not in CONTRACTIONS or rw.num_users(y) != 1:
        return None
    if producer.name != "conv" and y.type.rank != 2:
        return None  # batch_norm's channel axis 1 is the feature axis only for [N, features]
    factors = batch_norm_factors(op, rw)
    if factors is None:
        return None
    return FOLDERS[producer.name](producer, rw, *factors)


def _weights_and_bias(rw: Rewriter, w: Value, b: Optional[Value]
                      ) -> Optional[tuple[np.ndarray, "np.ndarray | float"]]:
    """The constant weights and bias (0 when absent) in float64; None if one is not constant."""
    warr = rw.constant_value(w)
    barr = rw.constant_value(b) if b is not None else None
    if warr is None or (b is not None and barr is None):
        return None
    return warr.astype(np.float64), (barr.astype(np.float64) if barr is not None else 0.0)


def _names(w: Value, b: Optional[Value]) -> tuple[str, str]:
    """Names of the folded weights and bias: the old constants' names plus "_bn"."""
    wname = w.owner.attrs["name"]  # type: ignore[union-attr]  # w is a constant here
    bname = b.owner.attrs["name"] if b is not None else f"{wname}_bias"  # type: ignore[union-attr]
    return f"{wname}_bn", f"{bname}_bn"


def _new_constants(rw: Rewriter, like: Value, weights: np.ndarray, bias: np.ndarray,
                   names: tuple[str, str]) -> Optional[tuple[Value, Value]]:
    """The folded arrays (float64) rounded once to like's dtype, as new constants; None when one
    is not finite (a zero variance with epsilon 0, an f16 overflow): the folded op would then
    compute inf * 0 where batch_norm did not."""
    rounded = [np.asarray(a).astype(like.dtype.np_dtype) for a in (weights, bias)]
    if not all(np.isfinite(r.astype(np.float64)).all() for r in rounded):
        return None
    out = []
    for arr, name in zip(rounded, names):
        v = rw.constant(arr, name)
        v.name = v.owner.attrs["name"]  # type: ignore[union-attr]  # print it as %name
        out.append(v)
    return out[0], out[1]


def fold_into_conv(conv: Op, rw: Rewriter, s: np.ndarray, mean: np.ndarray,
                   bias: np.ndarray) -> Optional[Value]:
    x, w = conv.operands[:2]
    b = conv.operands[2] if len(conv.operands) > 2 else None
    got = _weights_and_bias(rw, w, b)
    if got is None:
        return None
    w64, b64 = got  # w is [M, C/groups, *k]
    new = _new_constants(rw, w, w64 * s.reshape((-1,) + (1,) * (w64.ndim - 1)),
                         (b64 - mean) * s + bias, _names(w, b))
    return None if new is None else rw.op("conv", x, *new, **conv.attrs)  # type: ignore


def fold_into_linear(lin: Op, rw: Rewriter, s: np.ndarray, mean: np.ndarray,
                     bias: np.ndarray) -> Optional[Value]:
    x, w = lin.operands[:2]
    b = lin.operands[2] if len(lin.operands) > 2 else None
    got = _weights_and_bias(rw, w, b)
    if got is None:
        return None
    w64, b64 = got  # w is [features, K]
    new = _new_constants(rw, w, w64 * s[:, None], (b64 - mean) * s + bias, _names(w, b))
    return None if new is None else rw.op("linear", x, *new)  # type: ignore[return-value]


def fold_into_matmul(mm: Op, rw: Rewriter, s: np.ndarray, mean: np.ndarray,
                     bias: np.ndarray) -> Optional[Value]:
    a, w = mm.operands
    got = _weights_and_bias(rw, w, None)
    if got is None or w.type.rank != 2:
        return None
    # w is [K, features]; matmul has no bias operand, so the shift is an add after it
    new = _new_constants(rw, w, got[0] * s[None, :], bias - mean * s, _names(w, None))
    if new is None:
        return None
    return rw.op("add", rw.op("matmul", a, new[0]), new[1])  # type: ignore[return-value]


def fold_into_gemm(gemm: Op, rw: Rewriter, s: np.ndarray, mean: np.ndarray,
                   bias: np.ndarray) -> Optional[Value]:
    a, w = gemm.operands[:2]
    c = gemm.operands[2] if len(gemm.operands) > 2 else None
    beta = gemm.attrs.get("beta", 1.0)
    if beta == 0.0:
        c = None  # the reference ignores c then (nan in c included)
    got = _weights_and_bias(rw, w, c)
    if got is None:
        return None
    w64, c64 = got  # w is [K, features], or [features, K] with trans_b
    scaled = w64 * (s[:, None] if gemm.attrs.get("trans_b", False) else s[None, :])
    # c is [], [1], [N], [M, 1], [1, N] or [M, N]: the new c broadcasts the same way
    new = _new_constants(rw, w, scaled, beta * c64 * s + (bias - mean * s), _names(w, c))
    if new is None:
        return None
    return rw.op("gemm", a, *new, **dict(gemm.attrs, beta=1.0))  # type: ignore[return-value]


FOLDERS = {"conv": fold_into_conv, "linear": fold_into_linear, "matmul": fold_into_matmul,
           "gemm": fold_into_gemm}


@register("fold-batchnorm")
class FoldBatchNorm:
    """Fold inference batch_norm into a preceding conv/linear/matmul/gemm with constant weights
    (results within float rounding; see the module docstring)."""

    def run(self, module: Module) -> bool:
        return apply_rules(module, [fold_batchnorm])
