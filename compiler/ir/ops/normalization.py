"""Normalization ops: layer_norm, rms_norm, batch_norm (inference), instance_norm, group_norm.
ONNX semantics (LayerNormalization, RMSNormalization, BatchNormalization with training_mode=0,
InstanceNormalization, GroupNormalization opset 21 with per-channel scale and bias).

Floats only. Statistics of f16/bf16 inputs are computed in f32 and the result is rounded once to
the input dtype (ONNX's default stash_type). Variances are biased (divide by the count).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..registry import attr, def_op
from ..types import Dim, TensorType, TypeInferenceError, format_dim, normalize_axis
from ._common import require_dtype
from .elementwise import _in_f32

FLOAT = ("float",)


# --- type-rule helpers ---------------------------------------------------------------------------


def _shape_str(shape: Sequence[Dim]) -> str:
    return "[" + ",".join(format_dim(d) for d in shape) + "]"


def _dims_agree(a: Dim, b: Dim) -> bool:
    """Dims that may be equal: the same, or one static and one symbolic (checked at run time)."""
    return a == b or isinstance(a, str) != isinstance(b, str)


def _check_float_x(op: str, x: TensorType, min_rank: int, layout: str = "") -> None:
    require_dtype(op, x, FLOAT, "operand x")
    if x.rank < min_rank:
        raise TypeInferenceError(f"{op} operand x must have rank >= {min_rank}{layout}, got {x}")


def _check_param_dtype(op: str, name: str, p: TensorType, x: TensorType) -> None:
    if p.dtype != x.dtype:
        raise TypeInferenceError(f"{op} operand {name} has dtype {p.dtype}; it must match x's "
                                 f"dtype {x.dtype}")


def _check_broadcasts_to(op: str, name: str, p: TensorType, x: TensorType, axis: int) -> None:
    """p must broadcast to x.shape[axis:] without growing it (NumPy rules, trailing-aligned)."""
    _check_param_dtype(op, name, p, x)
    target = x.shape[axis:]
    ok = p.rank <= len(target) and all(
        pd == 1 or (_dims_agree(pd, td) and td != 1)
        for pd, td in zip(p.shape[::-1], target[::-1]))
    if not ok:
        raise TypeInferenceError(
            f"{op} operand {name} of shape {_shape_str(p.shape)} does not broadcast to the "
            f"normalized shape x.shape[{axis}:] = {_shape_str(target)}")


def _check_channel_param(op: str, name: str, p: TensorType, x: TensorType) -> None:
    """p must be [C] where C = x.shape[1]."""
    _check_param_dtype(op, name, p, x)
    if p.rank != 1 or not _dims_agree(p.shape[0], x.shape[1]):
        raise TypeInferenceError(
            f"{op} operand {name} must have shape [C] = [{format_dim(x.shape[1])}] (x's channel "
            f"dim), got {_shape_str(p.shape)}")


# --- reference helpers ---------------------------------------------------------------------------


def _standardize(x: np.ndarray, axes: tuple[int, ...], epsilon: float) -> np.ndarray:
    """(x - mean) / sqrt(var + epsilon) over axes; var is biased."""
    n = max(int(np.prod([x.shape[a] for a in axes])), 1)  # 1: an empty x gives an empty result
    mean = np.sum(x, axis=axes, keepdims=True) / x.dtype.type(n)
    d = x - mean
    var = np.sum(d * d, axis=axes, keepdims=True) / x.dtype.type(n)
    return d / np.sqrt(var + x.dtype.type(epsilon))


def _per_channel(p: np.ndarray, rank: int) -> np.ndarray:
    """A [C] parameter shaped to broadcast against [N, C, ...spatial]."""
    return p.reshape((-1,) + (1,) * (rank - 2))


# --- layer_norm / rms_norm -----------------------------------------------------------------------


def _layer_norm_rule(x: TensorType, scale: Optional[TensorType] = None,
                     bias: Optional[TensorType] = None, *, axis: int, epsilon: float) -> TensorType:
    _check_float_x("layer_norm", x, 1)
    a = normalize_axis(axis, x.rank, "layer_norm axis")
    for name, p in (("scale", scale), ("bias", bias)):
        if p is not None:
            _check_broadcasts_to("layer_norm", name, p, x, a)
    return x


def _layer_norm(x: np.ndarray, scale: Optional[np.ndarray] = None,
                bias: Optional[np.ndarray] = None, *, axis: int, epsilon: float) -> np.ndarray:
    y = _standardize(x, tuple(range(axis % x.ndim, x.ndim)), epsilon)
    if scale is not None:
        y = y * scale
    if bias is not None:
        y = y + bias
    return y


def_op("layer_norm", ["x", "scale?", "bias?"], _layer_norm_rule, _in_f32(_layer_norm),
       attrs={"axis": attr("int", -1), "epsilon": attr("float", 1e-5)}, traits=("pure",),
       doc="(x - mean) / sqrt(var + epsilon) * scale + bias over axes [axis, rank)")


def _rms_norm_rule(x: TensorType, scale: Optional[TensorType] = None, *, axis: int,
                   epsilon: float) -> TensorType:
    _check_float_x("rms_norm", x, 1)
    a = normalize_axis(axis, x.rank, "rms_norm axis")
    if scale is not None:
        _check_broadcasts_to("rms_norm", "scale", scale, x, a)
    return x


def _rms_norm(x: np.ndarray, scale: Optional[np.ndarray] = None, *, axis: int,
              epsilon: float) -> np.ndarray:
    axes = tuple(range(axis % x.ndim, x.ndim))
    n = max(int(np.prod([x.shape[a] for a in axes])), 1)
    ms = np.sum(x * x, axis=axes, keepdims=True) / x.dtype.type(n)
    y = x / np.sqrt(ms + x.dtype.type(epsilon))
    return y * scale if scale is not None else y


def_op("rms_norm", ["x", "scale?"], _rms_norm_rule, _in_f32(_rms_norm),
       attrs={"axis": attr("int", -1), "epsilon": attr("float", 1e-5)}, traits=("pure",),
       doc="x / sqrt(mean(x**2) + epsilon) * scale over axes [axis, rank)")

# --- batch_norm / instance_norm / group_norm ----------------------------------------------------


def _batch_norm_rule(x: TensorType, scale: TensorType, bias: TensorType, mean: TensorType,
                     var: TensorType, *, epsilon: float) -> TensorType:
    _check_float_x("batch_norm", x, 2, " ([N, C, ...])")
    for name, p in (("scale", scale), ("bias", bias), ("mean", mean), ("var", var)):
        _check_channel_param("batch_norm", name, p, x)
    return x


def _batch_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, mean: np.ndarray,
                var: np.ndarray, *, epsilon: float) -> np.ndarray:
    r = x.ndim
    inv = _per_channel(scale, r) / np.sqrt(_per_channel(var, r) + x.dtype.type(epsilon))
    return (x - _per_channel(mean, r)) * inv + _per_channel(bias, r)


def_op("batch_norm", ["x", "scale", "bias", "mean", "var"], _batch_norm_rule,
       _in_f32(_batch_norm), attrs={"epsilon": attr("float", 1e-5)}, traits=("pure",),
       doc="inference batch norm of [N, C, ...] with running mean/var: "
           "(x - mean) / sqrt(var + epsilon) * scale + bias per channel")


def _instance_norm_rule(x: TensorType, scale: TensorType, bias: TensorType, *,
                        epsilon: float) -> TensorType:
    _check_float_x("instance_norm", x, 3, " ([N, C, ...spatial])")
    for name, p in (("scale", scale), ("bias", bias)):
        _check_channel_param("instance_norm", name, p, x)
    return x


def _instance_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, *,
                   epsilon: float) -> np.ndarray:
    y = _standardize(x, tuple(range(2, x.ndim)), epsilon)
    return y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)


def_op("instance_norm", ["x", "scale", "bias"], _instance_norm_rule, _in_f32(_instance_norm),
       attrs={"epsilon": attr("float", 1e-5)}, traits=("pure",),
       doc="normalize each (n, c) of [N, C, ...spatial] over the spatial axes, then scale + bias")


def _group_norm_rule(x: TensorType, scale: TensorType, bias: TensorType, *, num_groups: int,
                     epsilon: float) -> TensorType:
    _check_float_x("group_norm", x, 2, " ([N, C, ...])")
    if num_groups < 1:
        raise TypeInferenceError(
            f"group_norm attribute 'num_groups' must be >= 1, got {num_groups}")
    c = x.shape[1]
    if isinstance(c, int) and c % num_groups:
        raise TypeInferenceError(f"group_norm channel count C = {c} (x {x}) is not divisible by "
                                 f"num_groups = {num_groups}")
    for name, p in (("scale", scale), ("bias", bias)):
        _check_channel_param("group_norm", name, p, x)
    return x


def _group_norm(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, *, num_groups: int,
                epsilon: float) -> np.ndarray:
    n, c = x.shape[:2]
    if c % num_groups:  # only reachable with a symbolic C
        raise ValueError(f"group_norm: C = {c} is not divisible by num_groups = {num_groups}")
    # explicit sizes, not -1: reshape cannot infer a dim when N or a spatial dim is 0
    grouped = x.reshape(n, num_groups, x.size // max(n * num_groups, 1))
    y = _standardize(grouped, (2,), epsilon).reshape(x.shape)
    return y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)


def_op("group_norm", ["x", "scale", "bias"], _group_norm_rule, _in_f32(_group_norm),
       attrs={"num_groups": attr("int"), "epsilon": attr("float", 1e-5)}, traits=("pure",),
       doc="normalize [N, C, ...] over groups of C/num_groups channels, then per-channel "
           "scale + bias")
