"""Neural-network ATen ops: matmul family, convolution, pooling, normalization, attention and
upsampling.

scaled_dot_product_attention is decomposed here, into 4-D matmuls, the scale, the causal or
given mask and a softmax, keeping batch and head dims apart (torch's own decomposition merges
them, which a symbolic batch cannot express).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch

from compiler.ir import Value
from compiler.ir import dtypes as dt
from compiler.ir.types import Dim

from .elementwise import promote
from .importer import NodeContext, converter, torch_dtype
from .shape import fill

# --- matmul family --------------------------------------------------------------------------------


def _matmul_operands(ctx: NodeContext, a_key: str, b_key: str) -> tuple[Value, Value]:
    a, b = ctx.tensor(a_key), ctx.tensor(b_key)
    d = promote(a, b)
    return ctx.cast(a, d), ctx.cast(b, d)


@converter("aten.matmul", "aten.mm", "aten.bmm", "aten.mv", "aten.dot")
def matmul(ctx: NodeContext) -> Value:
    a, b = _matmul_operands(ctx, "self", "mat2" if ctx.has("mat2") else
                            "vec" if ctx.has("vec") else "other" if ctx.has("other") else "tensor")
    return ctx.op("matmul", a, b)


@converter("aten.einsum")
def einsum(ctx: NodeContext) -> Value:
    xs = list(ctx.arg("tensors"))
    d = promote(*xs)
    return ctx.op("einsum", *[ctx.cast(v, d) for v in xs], equation=ctx.arg("equation"))


@converter("aten.linear")
def linear(ctx: NodeContext) -> Value:
    x, w = ctx.tensor("input"), ctx.tensor("weight")
    if ctx.has("bias"):
        return ctx.op("linear", x, w, ctx.tensor("bias"))
    return ctx.op("linear", x, w)


def _transposed_weight(v: Value) -> Optional[Value]:
    """w when v is transpose(w) of a 2-D w (how linear decomposes: permute(w, [1, 0]))."""
    op = v.owner
    if op is not None and op.name == "transpose" and v.type.rank == 2 and \
            tuple(op.attrs.get("perm") or (1, 0)) == (1, 0):
        return op.operands[0]
    return None


@converter("aten.addmm")
def addmm(ctx: NodeContext) -> Value:
    bias = ctx.tensor("self")
    a, b = _matmul_operands(ctx, "mat1", "mat2")
    beta, alpha = float(ctx.arg("beta", 1)), float(ctx.arg("alpha", 1))
    w = _transposed_weight(b)
    if w is not None and bias.type.rank == 1 and alpha == beta == 1.0:
        return ctx.op("linear", a, w, ctx.cast(bias, a.dtype))  # decomposed nn.Linear
    return ctx.op("gemm", a, b, ctx.cast(bias, a.dtype), alpha=alpha, beta=beta)


@converter("aten.baddbmm")
def baddbmm(ctx: NodeContext) -> Value:
    bias = ctx.tensor("self")
    a, b = _matmul_operands(ctx, "batch1", "batch2")
    y = ctx.op("matmul", a, b)
    alpha, beta = ctx.arg("alpha", 1), ctx.arg("beta", 1)
    if alpha != 1:
        y = ctx.op("mul", y, ctx.scalar(alpha, y.dtype))
    if beta == 0:
        return y
    c = ctx.cast(bias, y.dtype)
    return ctx.op("add", y, c if beta == 1 else ctx.op("mul", c, ctx.scalar(beta, y.dtype)))


# --- convolution and pooling ----------------------------------------------------------------------


def _per_axis(ctx: NodeContext, key: str, n: int, default: int) -> list[int]:
    v = ctx.ints(key, [])
    if not v:
        return [default] * n
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise ctx.error(f"argument '{key}' = {v} must have 1 or {n} entries")
    return v


@converter("aten.convolution")
def convolution(ctx: NodeContext) -> Value:
    x, w = ctx.tensor("input"), ctx.tensor("weight")
    d = x.type.rank - 2
    strides = _per_axis(ctx, "stride", d, 1)
    pads = _per_axis(ctx, "padding", d, 0)
    dilations = _per_axis(ctx, "dilation", d, 1)
    groups = int(ctx.arg("groups", 1))
    operands = [x, ctx.cast(w, x.dtype)] + ([ctx.cast(ctx.tensor("bias"), x.dtype)]
                                            if ctx.has("bias") else [])
    if ctx.arg("transposed", False):
        out_pad = _per_axis(ctx, "output_padding", d, 0)
        return ctx.op("conv_transpose", *operands, strides=strides, pads=pads + pads,
                      dilations=dilations, groups=groups, output_padding=out_pad)
    return ctx.op("conv", *operands, strides=strides, pads=pads + pads, dilations=dilations,
                  groups=groups)


def _indices_unused(node: torch.fx.Node) -> Optional[str]:
    from .importer import used_outputs
    if isinstance(node.meta.get("val"), (list, tuple)) and 1 in used_outputs(node):
        return "its indices output is used (only the pooled values are supported)"
    return None


def _pool_window(ctx: NodeContext, x: Value) -> tuple[list[int], list[int], list[int]]:
    d = x.type.rank - 2
    kernel = _per_axis(ctx, "kernel_size", d, 1)
    strides = ctx.ints("stride", []) or kernel  # torch: an empty stride means the kernel size
    strides = strides * d if len(strides) == 1 else strides
    pads = _per_axis(ctx, "padding", d, 0)
    return kernel, strides, pads + pads


@converter("aten.max_pool1d_with_indices", "aten.max_pool2d_with_indices",
           "aten.max_pool3d_with_indices", "aten.max_pool1d", "aten.max_pool2d",
           "aten.max_pool3d", check=_indices_unused)
def max_pool(ctx: NodeContext) -> "Value | list[Optional[Value]]":
    x = ctx.tensor("self")
    kernel, strides, pads = _pool_window(ctx, x)
    y = ctx.op("max_pool", x, kernel=kernel, strides=strides, pads=pads,
               dilations=_per_axis(ctx, "dilation", x.type.rank - 2, 1),
               ceil_mode=bool(ctx.arg("ceil_mode", False)))
    return [y, None] if isinstance(ctx.meta(None), (list, tuple)) else y


def _no_divisor_override(node: torch.fx.Node) -> Optional[str]:
    if len(node.args) > 6 and node.args[6] is not None or node.kwargs.get("divisor_override"):
        return "divisor_override"
    return None


@converter("aten.avg_pool1d", "aten.avg_pool2d", "aten.avg_pool3d", check=_no_divisor_override)
def avg_pool(ctx: NodeContext) -> Value:
    x = ctx.tensor("self")
    kernel, strides, pads = _pool_window(ctx, x)
    return ctx.op("avg_pool", x, kernel=kernel, strides=strides, pads=pads,
                  ceil_mode=bool(ctx.arg("ceil_mode", False)),
                  count_include_pad=bool(ctx.arg("count_include_pad", True)))


def _adaptive_plan(in_dims: Sequence[Dim], out: Sequence[int]) -> Optional[str]:
    """'global', 'identity', 'window', or None when the windows are uneven."""
    if all(o == 1 for o in out):
        return "global"
    if list(in_dims) == list(out):
        return "identity"
    if all(isinstance(i, int) and o > 0 and i % o == 0 for i, o in zip(in_dims, out)):
        return "window"
    return None


def _check_adaptive(node: torch.fx.Node) -> Optional[str]:
    val = node.args[0].meta.get("val") if isinstance(node.args[0], torch.fx.Node) else None
    out = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
    if isinstance(val, torch.Tensor) and isinstance(out, (list, tuple)) and \
            all(isinstance(o, int) for o in out):
        spatial = [int(s) if isinstance(s, int) else str(s) for s in val.shape[-len(out):]]
        if _adaptive_plan(spatial, out) is None:
            return (f"adaptive pooling of {list(val.shape)} to {list(out)} has uneven windows "
                    "(only sizes that divide the input, or 1, are supported)")
    return _indices_unused(node)


@converter("aten.adaptive_avg_pool1d", "aten._adaptive_avg_pool2d", "aten.adaptive_avg_pool2d",
           "aten._adaptive_avg_pool3d", "aten.adaptive_avg_pool3d", "aten.adaptive_max_pool1d",
           "aten.adaptive_max_pool2d", "aten.adaptive_max_pool3d", check=_check_adaptive)
def adaptive_pool(ctx: NodeContext) -> "Value | list[Optional[Value]]":
    x = ctx.tensor("self")
    out = ctx.ints("output_size")
    is_max = "max" in ctx.node.target.overloadpacket.__name__
    spatial = x.shape[-len(out):]
    plan = _adaptive_plan(spatial, out)
    if plan == "global":
        y = ctx.op("global_max_pool" if is_max else "global_avg_pool", x)
    elif plan == "identity":
        y = x
    elif plan == "window":
        kernel = [int(i) // o for i, o in zip(spatial, out)]
        y = ctx.op("max_pool" if is_max else "avg_pool", x, kernel=kernel, strides=kernel)
    else:
        raise ctx.error(f"adaptive pooling of {x.type} to {out} has uneven windows")
    return [y, None] if isinstance(ctx.meta(None), (list, tuple)) else y


# --- normalization --------------------------------------------------------------------------------


def _channel_param(ctx: NodeContext, key: str, x: Value, value: float) -> Value:
    """Parameter `key` in x's dtype, or a [C] constant of value when it is None."""
    if ctx.has(key):
        return ctx.cast(ctx.tensor(key), x.dtype)
    c = x.shape[1]
    if not isinstance(c, int):
        raise ctx.error(f"a missing '{key}' needs a static channel dim, got {x.type}")
    return ctx.const(np.full([c], value), x.dtype)


def _only_first_output(node: torch.fx.Node) -> Optional[str]:
    from .importer import used_outputs
    extra = sorted(used_outputs(node) - {0})
    if extra:
        return f"its saved-statistics outputs {extra} are used (inference form only)"
    if "native_batch_norm" in str(node.target) and "legit" not in str(node.target):
        training = node.args[5] if len(node.args) > 5 else node.kwargs.get("training")
        if training:
            return "batch norm in training mode (call .eval() before exporting)"
    return None


@converter("aten._native_batch_norm_legit_no_training", "aten.native_batch_norm",
           check=_only_first_output)
def batch_norm(ctx: NodeContext) -> list[Optional[Value]]:
    x = ctx.tensor("input")
    y = ctx.op("batch_norm", x, _channel_param(ctx, "weight", x, 1.0),
               _channel_param(ctx, "bias", x, 0.0), ctx.cast(ctx.tensor("running_mean"), x.dtype),
               ctx.cast(ctx.tensor("running_var"), x.dtype), epsilon=float(ctx.arg("eps")))
    return [y, None, None]


@converter("aten._native_batch_norm_legit.no_stats", check=_only_first_output)
def batch_norm_batch_stats(ctx: NodeContext) -> list[Optional[Value]]:
    """Batch norm over the batch's own statistics (how instance_norm decomposes): with one
    sample it is instance_norm, else normalize over every axis but the channels."""
    x = ctx.tensor("input")
    eps = float(ctx.arg("eps"))
    scale, bias = _channel_param(ctx, "weight", x, 1.0), _channel_param(ctx, "bias", x, 0.0)
    if x.shape[0] == 1 and x.type.rank >= 3:
        return [ctx.op("instance_norm", x, scale, bias, epsilon=eps), None, None]
    axes = [0] + list(range(2, x.type.rank))
    mean = ctx.op("reduce_mean", x, axes=axes, keepdims=True)
    dev = ctx.op("sub", x, mean)
    var = ctx.op("reduce_mean", ctx.op("mul", dev, dev), axes=axes, keepdims=True)
    y = ctx.op("mul", dev, ctx.op("rsqrt", ctx.op("add", var, ctx.scalar(eps, x.dtype))))
    per_channel = [1] * x.type.rank
    per_channel[1] = -1
    y = ctx.op("mul", y, ctx.op("reshape", scale, shape=per_channel))
    return [ctx.op("add", y, ctx.op("reshape", bias, shape=per_channel)), None, None]


@converter("aten.native_layer_norm")
def layer_norm(ctx: NodeContext) -> list[Optional[Value]]:
    x = ctx.tensor("input")
    n = len(ctx.ints("normalized_shape"))
    axis = x.type.rank - n
    eps = float(ctx.arg("eps"))
    scale = ctx.cast(ctx.tensor("weight"), x.dtype) if ctx.has("weight") else None
    bias = ctx.cast(ctx.tensor("bias"), x.dtype) if ctx.has("bias") else None
    if bias is not None and scale is None:
        scale = fill(ctx, list(x.shape[axis:]), 1, x.dtype)
    operands = [x] + [v for v in (scale, bias) if v is not None]
    y = ctx.op("layer_norm", *operands, axis=axis, epsilon=eps)
    used = ctx.used_outputs()
    mean = rstd = None
    if used & {1, 2}:  # the saved statistics, with the normalized dims kept as 1s
        axes = list(range(axis, x.type.rank))
        mean = ctx.op("reduce_mean", x, axes=axes, keepdims=True)
        dev = ctx.op("sub", x, mean)
        var = ctx.op("reduce_mean", ctx.op("mul", dev, dev), axes=axes, keepdims=True)
        rstd = ctx.op("rsqrt", ctx.op("add", var, ctx.scalar(eps, x.dtype)))
    return [y, mean if 1 in used else None, rstd if 2 in used else None]


@converter("aten.native_group_norm", check=_only_first_output)
def group_norm(ctx: NodeContext) -> list[Optional[Value]]:
    x = ctx.tensor("input")
    flat = x.type.rank == 2
    xi = ctx.op("unsqueeze", x, axes=[2]) if flat else x
    y = ctx.op("group_norm", xi, _channel_param(ctx, "weight", x, 1.0),
               _channel_param(ctx, "bias", x, 0.0), num_groups=int(ctx.arg("group")),
               epsilon=float(ctx.arg("eps")))
    return [ctx.op("squeeze", y, axes=[2]) if flat else y, None, None]


@converter("aten.rms_norm", "aten._fused_rms_norm", check=_only_first_output)
def rms_norm(ctx: NodeContext) -> "Value | list[Optional[Value]]":
    x = ctx.tensor("input")
    axis = x.type.rank - len(ctx.ints("normalized_shape"))
    eps = ctx.arg("eps")
    if eps is None:  # torch's default: the machine epsilon of x's dtype
        eps = torch.finfo(torch_dtype(x.dtype)).eps
    operands = [x] + ([ctx.cast(ctx.tensor("weight"), x.dtype)] if ctx.has("weight") else [])
    y = ctx.op("rms_norm", *operands, axis=axis, epsilon=float(eps))
    return [y, None] if isinstance(ctx.meta(None), (list, tuple)) else y


# --- attention ------------------------------------------------------------------------------------


def _sdpa_check(node: torch.fx.Node) -> Optional[str]:
    from .importer import bind_arguments, used_outputs
    args = bind_arguments(node)
    if args.get("dropout_p"):
        return "dropout_p > 0 (attention dropout only applies in training)"
    if isinstance(node.meta.get("val"), (list, tuple)) and used_outputs(node) - {0}:
        return "its logsumexp output is used"
    return None


@converter("aten.scaled_dot_product_attention", "aten._scaled_dot_product_flash_attention_for_cpu",
           check=_sdpa_check)
def scaled_dot_product_attention(ctx: NodeContext) -> "Value | list[Optional[Value]]":
    q, k, v = ctx.tensor("query"), ctx.tensor("key"), ctx.tensor("value")
    mask = ctx.arg("attn_mask")
    out = attention(ctx, q, k, v, mask, bool(ctx.arg("is_causal", False)), ctx.arg("scale"),
                    bool(ctx.arg("enable_gqa", False)))
    return [out, None] if isinstance(ctx.meta(None), (list, tuple)) else out


def _repeat_heads(ctx: NodeContext, x: Value, groups: int) -> Value:
    """[..., Hkv, S, E] -> [..., Hkv*groups, S, E], each head repeated `groups` times."""
    shape = list(x.shape)
    wide = ctx.op("unsqueeze", x, axes=[x.type.rank - 2])
    wide = ctx.op("broadcast_to", wide, shape=shape[:-2] + [groups] + shape[-2:])
    h = shape[-3]
    if not isinstance(h, int):
        raise ctx.error(f"grouped-query attention needs a static head count, got {x.type}")
    return ctx.op("reshape", wide, shape=shape[:-3] + [h * groups] + shape[-2:])


def attention(ctx: NodeContext, q: Value, k: Value, v: Value, mask: Optional[Value],
              is_causal: bool, scale: Optional[float], enable_gqa: bool) -> Value:
    """softmax(q @ k^T * scale + mask) @ v, the math torch's reference implementation does."""
    e = q.shape[-1]
    if scale is None:
        if not isinstance(e, int):
            raise ctx.error(f"attention needs a static head dim for its default scale, got "
                            f"{q.type}")
        scale = 1.0 / math.sqrt(e)
    if enable_gqa and q.type.rank >= 3 and k.shape[-3] != q.shape[-3]:
        hq, hk = q.shape[-3], k.shape[-3]
        if not (isinstance(hq, int) and isinstance(hk, int) and hq % hk == 0):
            raise ctx.error(f"grouped-query attention with {q.type} and {k.type}")
        k, v = _repeat_heads(ctx, k, hq // hk), _repeat_heads(ctx, v, hq // hk)
    d = q.dtype
    perm = list(range(k.type.rank))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    s = ctx.op("matmul", q, ctx.op("transpose", k, perm=perm))
    s = ctx.op("mul", s, ctx.scalar(scale, d))
    neg_inf = ctx.scalar(-np.inf, d)
    if is_causal:
        l_dim, s_dim = q.shape[-2], k.shape[-2]
        if isinstance(l_dim, int) and isinstance(s_dim, int):
            keep = ctx.const(np.tril(np.ones((l_dim, s_dim), np.bool_)))
        else:
            keep = ctx.op("trilu", ctx.op("full", shape=[l_dim, s_dim], value=1.0, dtype=dt.bool_),
                          upper=False)
        s = ctx.op("where", keep, s, neg_inf)
    if mask is not None:
        if mask.dtype.is_bool:
            s = ctx.op("where", mask, s, neg_inf)
        else:
            s = ctx.op("add", s, ctx.cast(mask, d))
    p = ctx.op("softmax", s, axis=-1)
    if mask is not None:  # rows with every key masked give zeros, as torch's math path does
        top = ctx.op("reduce_max", s, axes=[s.type.rank - 1], keepdims=True)
        p = ctx.op("where", ctx.op("eq", top, neg_inf), ctx.scalar(0, d), p)
    return ctx.op("matmul", p, v)


# --- upsampling -----------------------------------------------------------------------------------


def _scales(node: torch.fx.Node) -> Optional[list[float]]:
    from .importer import bind_arguments
    args = bind_arguments(node)
    if args.get("scale_factors") is not None:
        return list(args["scale_factors"])
    named = [args.get(k) for k in ("scales", "scales_d", "scales_h", "scales_w") if k in args]
    if named and all(s is not None for s in named):
        return [float(s) for s in named]
    return None


def _check_upsample(node: torch.fx.Node) -> Optional[str]:
    """torch maps coordinates with the given scale factor; the IR's resize with in/out, which
    agree only when in * scale is a whole number."""
    scales = _scales(node)
    x = node.args[0].meta.get("val") if isinstance(node.args[0], torch.fx.Node) else None
    if scales is None or not isinstance(x, torch.Tensor):
        return None
    for size, s in zip(x.shape[2:], scales):
        if isinstance(size, int) and not float(size * s).is_integer():
            return (f"scale factor {s} on a dim of size {size} is not a whole output size; "
                    "give the output size instead")
    return None


@converter("aten.upsample_nearest1d", "aten.upsample_nearest2d", "aten.upsample_nearest3d",
           "aten._upsample_nearest_exact1d", "aten._upsample_nearest_exact2d",
           "aten._upsample_nearest_exact3d", "aten.upsample_linear1d",
           "aten.upsample_bilinear2d", "aten.upsample_trilinear3d", check=_check_upsample)
def upsample(ctx: NodeContext) -> Value:
    x = ctx.tensor("input") if ctx.has("input") else ctx.tensor("self")
    sizes = ctx.out_shape()
    if sizes is None or any(d is None for d in sizes):
        raise ctx.error(f"upsampling {x.type}: the output size is not a plain dim")
    name = ctx.node.target.overloadpacket.__name__
    if "nearest_exact" in name:  # src = floor((dst + 0.5) * in / out)
        return ctx.op("resize", x, sizes=sizes, mode="nearest",
                      coordinate_transformation_mode="half_pixel",
                      nearest_mode="round_prefer_ceil")
    if "nearest" in name:  # src = floor(dst * in / out)
        return ctx.op("resize", x, sizes=sizes, mode="nearest",
                      coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    mode = "align_corners" if ctx.arg("align_corners", False) else "pytorch_half_pixel"
    return ctx.op("resize", x, sizes=sizes, mode="linear", coordinate_transformation_mode=mode)
