"""Neural-network converters: convolutions, pools, normalizations, resize and the sampling ops
(GridSample, RoiAlign, AffineGrid, Col2Im, MaxUnpool). Recurrent nets are in rnn.py, attention
and rotary embeddings in attention.py.

Window attributes are resolved at import time: auto_pad becomes explicit pads (from static
shapes; with stride 1 no shape is needed), ConvTranspose's output_shape becomes pads or extra
output padding. Ops the IR has no record for are decomposed where that is exact (dilated
AveragePool and LpPool are sums over a depthwise conv with a ones kernel, LRN is a conv over
the channel axis, RNN/GRU/LSTM are unrolled over their static sequence length, Attention is
matmul/softmax with its masks built from IR ops). Every op of this family has a direct
converter, including those ONNX defines as functions (LayerNormalization, GroupNormalization,
RMSNormalization, Attention, RotaryEmbedding, AffineGrid, CenterCropPad, and DepthToSpace /
SpaceToDepth from opset 28): their expansions are slower or need run-time control flow.

Shape-deciding inputs that are only known at run time (Resize scales/sizes/roi, MaxUnpool
output_shape, ...) fall back to the output's declared static shape where that determines them,
else raise NeedsConstantError.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from compiler.ir import Value
from compiler.ir import dtypes as dt
from compiler.ir.reference import nn as ref
from compiler.ir.types import Dim

from ..importer import NodeContext, converter, ir_dtype

# --- shared helpers -------------------------------------------------------------------------------


def _ints(values: Optional[Sequence]) -> list[int]:
    return [] if values is None else [int(v) for v in values]


def _scalar(ctx: NodeContext, value: float, like: Value) -> Value:
    """A 0-d constant of like's dtype."""
    return ctx.const(np.asarray(value, dtype=like.dtype.np_dtype))


def _spatial(ctx: NodeContext, x: Value, what: str = "input X") -> int:
    d = x.type.rank - 2
    if d < 1:
        raise ctx.error(f"{what} must be [N, C, *spatial] with at least one spatial dim, got "
                        f"{x.type}")
    return d


def _per_axis(ctx: NodeContext, name: str, d: int, default: int) -> list[int]:
    """A per-spatial-axis attribute (strides, dilations) with its default filled in."""
    values = _ints(ctx.attr(name)) or [default] * d
    if len(values) != d:
        raise ctx.error(f"attribute {name}={values} must have {d} values (one per spatial dim)")
    return values


def _static_spatial(ctx: NodeContext, x: Value, ax: int, why: str) -> int:
    size = x.shape[2 + ax]
    if not isinstance(size, int):
        raise ctx.error(f"{why} needs a static size for spatial dim {ax} of X {x.type}")
    return size


def _window_pads(ctx: NodeContext, x: Value, kernel: Sequence[int], strides: Sequence[int],
                 dilations: Sequence[int]) -> list[int]:
    """Explicit [begins..., ends...] pads from `pads` or `auto_pad` (ONNX Conv/pool rules)."""
    d = len(kernel)
    auto = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    if auto == "NOTSET":
        pads = _ints(ctx.attr("pads")) or [0] * (2 * d)
        if len(pads) != 2 * d:
            raise ctx.error(f"attribute pads={pads} must have {2 * d} values ([begins, ends])")
        return pads
    if auto == "VALID":
        return [0] * (2 * d)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.error(f"attribute auto_pad={auto!r} is not one of NOTSET, SAME_UPPER, "
                        "SAME_LOWER, VALID")
    begins, ends = [], []
    for ax in range(d):
        reach = dilations[ax] * (kernel[ax] - 1) + 1
        if strides[ax] == 1:  # output = input: the padding does not depend on the size
            total = reach - 1
        else:
            size = _static_spatial(ctx, x, ax, f"auto_pad={auto} with stride {strides[ax]}")
            out = -(-size // strides[ax])
            total = max(0, (out - 1) * strides[ax] + reach - size)
        small, big = total // 2, total - total // 2
        begins.append(small if auto == "SAME_UPPER" else big)
        ends.append(big if auto == "SAME_UPPER" else small)
    return begins + ends


def _kernel_shape(ctx: NodeContext, d: int, w: Optional[Value] = None) -> list[int]:
    kernel = _ints(ctx.attr("kernel_shape"))
    if w is not None:
        wk = list(w.shape[2:])
        if not all(isinstance(k, int) for k in wk):
            raise ctx.error(f"the weight needs a static kernel size, got {w.type}")
        if kernel and kernel != wk:
            raise ctx.error(f"attribute kernel_shape={kernel} disagrees with the weight {w.type}")
        return wk  # type: ignore[return-value]
    if len(kernel) != d:
        raise ctx.error(f"attribute kernel_shape={kernel} must have {d} values")
    return kernel


def _optional(ctx: NodeContext, i: int) -> list[Value]:
    return [ctx.input(i)] if ctx.has_input(i) else []


def _wants_output(ctx: NodeContext, i: int) -> bool:
    return len(ctx.node.output) > i and bool(ctx.node.output[i])


# --- convolutions ---------------------------------------------------------------------------------


@converter("Conv", since=1)
def conv(ctx: NodeContext) -> Value:
    x, w = ctx.input(0), ctx.input(1)
    d = _spatial(ctx, x)
    kernel = _kernel_shape(ctx, d, w)
    strides, dilations = _per_axis(ctx, "strides", d, 1), _per_axis(ctx, "dilations", d, 1)
    pads = _window_pads(ctx, x, kernel, strides, dilations)
    return ctx.op("conv", x, w, *_optional(ctx, 2), strides=strides, pads=pads,
                  dilations=dilations, groups=int(ctx.attr("group", 1)))


@converter("ConvTranspose", since=1)
def conv_transpose(ctx: NodeContext) -> Value:
    x, w = ctx.input(0), ctx.input(1)
    d = _spatial(ctx, x)
    kernel = _kernel_shape(ctx, d, w)
    strides, dilations = _per_axis(ctx, "strides", d, 1), _per_axis(ctx, "dilations", d, 1)
    out_pad = _per_axis(ctx, "output_padding", d, 0)
    auto = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    out_shape = _ints(ctx.attr("output_shape"))
    extra = [0] * d  # output beyond what pads and output_padding can express
    if out_shape or auto in ("SAME_UPPER", "SAME_LOWER"):
        # ONNX: total_padding = s*(in-1) + output_padding + dil*(k-1)+1 - output_shape
        if out_shape and len(out_shape) not in (d, d + 2):
            raise ctx.error(f"attribute output_shape={out_shape} must have {d} values")
        out_shape = out_shape[-d:] if out_shape else []
        begins, ends = [], []
        for ax in range(d):
            reach = dilations[ax] * (kernel[ax] - 1) + 1
            if not out_shape and strides[ax] == 1:
                total = out_pad[ax] + reach - 1  # output_shape = input size
            else:
                size = _static_spatial(ctx, x, ax, "ConvTranspose output_shape/auto_pad")
                target = out_shape[ax] if out_shape else size * strides[ax]
                total = strides[ax] * (size - 1) + out_pad[ax] + reach - target
            if total < 0:  # a larger output: zeros at the end, as output_padding adds them
                extra[ax], total = -total, 0
            small, big = total // 2, total - total // 2
            begins.append(small if auto == "SAME_UPPER" else big)
            ends.append(big if auto == "SAME_UPPER" else small)
        pads = begins + ends
    else:
        pads = _window_pads(ctx, x, kernel, strides, dilations)
    limit = [max(s, dl) for s, dl in zip(strides, dilations)]
    grow = [min(e, lim - 1 - op) for e, lim, op in zip(extra, limit, out_pad)]
    out_pad = [op + g for op, g in zip(out_pad, grow)]
    y = ctx.op("conv_transpose", x, w, *_optional(ctx, 2), strides=strides, pads=pads,
               dilations=dilations, groups=int(ctx.attr("group", 1)), output_padding=out_pad)
    rest = [e - g for e, g in zip(extra, grow)]
    if any(rest):
        y = ctx.op("pad", y, pads=[0] * (d + 2) + [0, 0] + rest)
    return y


# --- pools ----------------------------------------------------------------------------------------


def _pool_attrs(ctx: NodeContext, x: Value) -> tuple[list[int], list[int], list[int], list[int],
                                                      bool]:
    """kernel, strides, pads, dilations, ceil_mode of a MaxPool/AveragePool/LpPool node."""
    d = _spatial(ctx, x)
    kernel = _kernel_shape(ctx, d)
    strides, dilations = _per_axis(ctx, "strides", d, 1), _per_axis(ctx, "dilations", d, 1)
    pads = _window_pads(ctx, x, kernel, strides, dilations)
    return kernel, strides, pads, dilations, bool(ctx.attr("ceil_mode", 0))


@converter("MaxPool", since=1)
def max_pool(ctx: NodeContext) -> "Value | list[Value]":
    x = ctx.input(0)
    kernel, strides, pads, dilations, ceil_mode = _pool_attrs(ctx, x)
    window = dict(kernel=kernel, strides=strides, pads=pads, dilations=dilations,
                  ceil_mode=ceil_mode)
    if _wants_output(ctx, 1):
        return ctx.op("max_pool_with_indices", x, **window,
                      storage_order=int(ctx.attr("storage_order", 0)))
    return ctx.op("max_pool", x, **window)


@converter("AveragePool", since=1)
def average_pool(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    kernel, strides, pads, dilations, ceil_mode = _pool_attrs(ctx, x)
    include_pad = bool(ctx.attr("count_include_pad", 0))
    if all(dl == 1 for dl in dilations):
        return ctx.op("avg_pool", x, kernel=kernel, strides=strides, pads=pads,
                      ceil_mode=ceil_mode, count_include_pad=include_pad)
    # dilated: window sums over a ones kernel divided by the (constant) count of each window
    total, conv_pads = _window_sum(ctx, x, kernel, strides, pads, dilations, ceil_mode)
    d = len(kernel)
    ins = [_static_spatial(ctx, x, ax, "AveragePool with dilations") for ax in range(d)]
    mask = np.zeros([1, 1] + [i + conv_pads[ax] + conv_pads[d + ax] for ax, i in enumerate(ins)],
                    dtype=x.dtype.np_dtype)
    counted = [slice(conv_pads[ax] - (pads[ax] if include_pad else 0),
                     conv_pads[ax] + i + (pads[d + ax] if include_pad else 0))
               for ax, i in enumerate(ins)]
    mask[(0, 0, *counted)] = 1
    ones = np.ones([1, 1, *kernel], dtype=x.dtype.np_dtype)
    count = ctx.op("conv", ctx.const(mask), ctx.const(ones), strides=strides,
                   dilations=dilations)
    count = _crop_like(ctx, count, total)
    return ctx.op("div", total, count)


def _window_sum(ctx: NodeContext, x: Value, kernel: list[int], strides: list[int],
                pads: list[int], dilations: list[int],
                ceil_mode: bool) -> tuple[Value, list[int]]:
    """Per-channel sums over each pooling window (zero padding): a depthwise conv with a ones
    kernel, with extra end padding for ceil_mode. Returns the sums and the conv's pads."""
    d = len(kernel)
    c = x.shape[1]
    if not isinstance(c, int):
        raise ctx.error(f"needs a static channel count, got X {x.type}")
    conv_pads = list(pads)
    outs = None
    if ceil_mode:
        ins = [_static_spatial(ctx, x, ax, "ceil_mode=1") for ax in range(d)]
        outs = ref.pool_output_shape(ins, kernel, strides, pads, dilations, True)
        for ax in range(d):
            reach = dilations[ax] * (kernel[ax] - 1) + 1
            need = (outs[ax] - 1) * strides[ax] + reach - ins[ax] - pads[ax]
            conv_pads[d + ax] = max(pads[d + ax], need)
    ones = ctx.const(np.ones([c, 1, *kernel], dtype=x.dtype.np_dtype))
    total = ctx.op("conv", x, ones, strides=strides, pads=conv_pads, dilations=dilations,
                   groups=c)
    if outs is not None and list(total.shape[2:]) != outs:  # a last window starting in padding
        total = ctx.op("slice", total, starts=[0] * d, ends=outs, axes=list(range(2, 2 + d)))
    return total, conv_pads


def _crop_like(ctx: NodeContext, v: Value, like: Value) -> Value:
    d = v.type.rank - 2
    if list(v.shape[2:]) == list(like.shape[2:]):
        return v
    return ctx.op("slice", v, starts=[0] * d, ends=list(like.shape[2:]),
                  axes=list(range(2, 2 + d)))


def _abs_pow(ctx: NodeContext, x: Value, p: float) -> Value:
    """|x| ** p (x*x for p = 2)."""
    if p == 2:
        return ctx.op("mul", x, x)
    ax = ctx.op("abs", x)
    return ax if p == 1 else ctx.op("pow", ax, _scalar(ctx, p, x))


def _root(ctx: NodeContext, s: Value, p: float) -> Value:
    if p == 1:
        return s
    if p == 2:
        return ctx.op("sqrt", s)
    return ctx.op("pow", s, _scalar(ctx, 1.0 / p, s))


@converter("LpPool", since=1)
def lp_pool(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    p = float(ctx.attr("p", 2))
    if not p > 0:
        raise ctx.error(f"attribute p={p} must be positive")
    kernel, strides, pads, dilations, ceil_mode = _pool_attrs(ctx, x)
    total, _ = _window_sum(ctx, _abs_pow(ctx, x, p), kernel, strides, pads, dilations, ceil_mode)
    return _root(ctx, total, p)


@converter("GlobalAveragePool", since=1)
def global_average_pool(ctx: NodeContext) -> Value:
    return ctx.op("global_avg_pool", ctx.input(0))


@converter("GlobalMaxPool", since=1)
def global_max_pool(ctx: NodeContext) -> Value:
    return ctx.op("global_max_pool", ctx.input(0))


@converter("GlobalLpPool", since=1)
def global_lp_pool(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    p = float(ctx.attr("p", 2))
    axes = list(range(2, 2 + _spatial(ctx, x)))
    if p == 2:
        return ctx.op("reduce_l2", x, axes=axes, keepdims=True)
    if p == 1:
        return ctx.op("reduce_l1", x, axes=axes, keepdims=True)
    return _root(ctx, ctx.op("reduce_sum", _abs_pow(ctx, x, p), axes=axes, keepdims=True), p)


@converter("MaxUnpool", since=9)
def max_unpool(ctx: NodeContext) -> Value:
    """Scatter X into zeros at the flat Indices (into [N, C, *inferred]), then pad or crop to
    output_shape like the ONNX reference."""
    x, idx = ctx.input(0), ctx.input(1)
    d = _spatial(ctx, x)
    kernel = _kernel_shape(ctx, d)
    strides = _per_axis(ctx, "strides", d, 1)
    pads = _ints(ctx.attr("pads")) or [0] * (2 * d)
    if not x.type.is_static:
        raise ctx.error(f"needs a static input shape, got X {x.type}")
    inferred = [(x.shape[2 + ax] - 1) * strides[ax] - pads[ax] - pads[d + ax] + kernel[ax]
                for ax in range(d)]
    full = [*x.shape[:2], *inferred]
    zeros = ctx.op("full", shape=[math.prod(full)], value=0.0, dtype=x.dtype)
    flat_idx = ctx.op("reshape", idx, shape=[-1])
    flat_x = ctx.op("reshape", x, shape=[-1])
    y = ctx.op("reshape", ctx.op("scatter_elements", zeros, flat_idx, flat_x, axis=0),
               shape=full)
    if ctx.has_input(2):
        known = ctx.known(2)
        declared = _declared_shape(ctx, 0)
        if known is None and declared is None:
            raise ctx.needs_constant("input 2 (output_shape) depends on run-time values and the "
                                     "model declares no static output shape")
        target = [int(v) for v in known.reshape(-1)][-d:] if known is not None else declared[-d:]
        grow = [max(0, t - i) for t, i in zip(target, inferred)]
        if any(t < i for t, i in zip(target, inferred)):
            y = ctx.op("slice", y, starts=[0] * d, ends=[min(t, i) for t, i in
                                                          zip(target, inferred)],
                       axes=list(range(2, 2 + d)))
        if any(grow):
            y = ctx.op("pad", y, pads=[0] * (d + 2) + [0, 0] + grow)
    return y


def _declared_shape(ctx: NodeContext, i: int) -> Optional[list[int]]:
    """The static shape the model declares for output i of this node (graph outputs and
    value_info), or None."""
    name = ctx.node.output[i] if len(ctx.node.output) > i else ""
    g = ctx.importer.model.graph
    for vi in list(g.output) + list(g.value_info):
        if vi.name == name and vi.type.HasField("tensor_type") and \
                vi.type.tensor_type.HasField("shape"):
            dims = vi.type.tensor_type.shape.dim
            if all(dd.HasField("dim_value") for dd in dims):
                return [int(dd.dim_value) for dd in dims]
    return None


# --- normalizations -------------------------------------------------------------------------------


def _as_dtype(ctx: NodeContext, v: Value, like: Value) -> Value:
    return v if v.dtype is like.dtype else ctx.op("cast", v, to=like.dtype)


@converter("BatchNormalization", since=1)
def batch_norm(ctx: NodeContext) -> Value:
    """Inference batch norm with running statistics. Training (training_mode=1, or is_test=0
    with the statistics outputs requested) draws batch statistics and is not imported."""
    x = ctx.input(0)
    if ctx.attr("training_mode", 0):
        raise ctx.error("training_mode=1 is not supported (the compiler imports inference "
                        "graphs; export the model in eval mode)")
    if any(_wants_output(ctx, i) for i in range(1, 5)):
        raise ctx.error("the mean/var/saved statistics outputs exist only in training mode, "
                        "which is not supported; export the model in eval mode")
    scale, bias, mean, var = (_as_dtype(ctx, ctx.input(i), x) for i in range(1, 5))
    eps = float(ctx.attr("epsilon", 1e-5))
    if ctx.attr("spatial", 1) == 0:  # opset < 9: per-activation statistics [C, *spatial]
        inv = ctx.op("mul", scale, ctx.op("rsqrt", ctx.op("add", var, _scalar(ctx, eps, x))))
        y = ctx.op("mul", ctx.op("sub", x, mean), inv)
        return ctx.op("add", y, bias)
    return ctx.op("batch_norm", x, scale, bias, mean, var, epsilon=eps)


@converter("InstanceNormalization", since=1)
def instance_norm(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    return ctx.op("instance_norm", x, _as_dtype(ctx, ctx.input(1), x),
                  _as_dtype(ctx, ctx.input(2), x), epsilon=float(ctx.attr("epsilon", 1e-5)))


def _stash_dtype(ctx: NodeContext) -> dt.DType:
    return ir_dtype(int(ctx.attr("stash_type", 1)), f"{ctx.op_type} attribute stash_type")


@converter("LayerNormalization", since=17)
def layer_norm(ctx: NodeContext) -> list[Optional[Value]]:
    """layer_norm for Y; the optional Mean and InvStdDev outputs (in stash_type) are computed
    with reductions when the node uses them."""
    x = ctx.input(0)
    rank = x.type.rank
    axis = int(ctx.attr("axis", -1))
    if not -rank <= axis < rank:
        raise ctx.error(f"attribute axis={axis} is out of range for X {x.type}")
    axis %= rank
    eps = float(ctx.attr("epsilon", 1e-5))
    params = [_as_dtype(ctx, ctx.input(1), x)] + \
        ([_as_dtype(ctx, ctx.input(2), x)] if ctx.has_input(2) else [])
    y = ctx.op("layer_norm", x, *params, axis=axis, epsilon=eps)
    if not (_wants_output(ctx, 1) or _wants_output(ctx, 2)):
        return [y]
    stash = _stash_dtype(ctx)
    xs = x if x.dtype is stash else ctx.op("cast", x, to=stash)
    axes = list(range(axis, rank))
    mean = ctx.op("reduce_mean", xs, axes=axes, keepdims=True)
    centered = ctx.op("sub", xs, mean)
    var = ctx.op("reduce_mean", ctx.op("mul", centered, centered), axes=axes, keepdims=True)
    inv_std = ctx.op("rsqrt", ctx.op("add", var, _scalar(ctx, eps, xs)))
    return [y, mean, inv_std]


@converter("GroupNormalization", since=18)
def group_norm(ctx: NodeContext) -> Value:
    """Opset 18 scales per group ([num_groups]); opset 21 per channel ([C])."""
    x = ctx.input(0)
    groups = int(ctx.attr("num_groups"))
    scale, bias = _as_dtype(ctx, ctx.input(1), x), _as_dtype(ctx, ctx.input(2), x)
    if ctx.opset < 21 and groups != x.shape[1]:
        c = x.shape[1]
        if not isinstance(c, int) or c % groups:
            raise ctx.error(f"needs a static channel count divisible by num_groups={groups}, "
                            f"got X {x.type}")
        # the group of each channel: per-group parameters repeated C/num_groups times
        owner = ctx.const(np.repeat(np.arange(groups, dtype=np.int64), c // groups))
        scale, bias = ctx.op("gather", scale, owner), ctx.op("gather", bias, owner)
    return ctx.op("group_norm", x, scale, bias, num_groups=groups,
                  epsilon=float(ctx.attr("epsilon", 1e-5)))


@converter("RMSNormalization", since=23)
def rms_norm(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    return ctx.op("rms_norm", x, _as_dtype(ctx, ctx.input(1), x),
                  axis=int(ctx.attr("axis", -1)), epsilon=float(ctx.attr("epsilon", 1e-5)))


@converter("LRN", since=1)
def lrn(ctx: NodeContext) -> Value:
    """x / (bias + alpha/size * sum of x**2 over a window of `size` channels) ** beta; the
    window sum is a conv over the channel axis of x**2 viewed as [N, 1, C, *rest]."""
    x = ctx.input(0)
    size = int(ctx.attr("size"))
    alpha, beta = float(ctx.attr("alpha", 1e-4)), float(ctx.attr("beta", 0.75))
    bias = float(ctx.attr("bias", 1.0))
    if x.type.rank < 2:
        raise ctx.error(f"input X must be [N, C, ...], got {x.type}")
    sq = ctx.op("mul", x, x)
    rest = list(x.shape[2:])
    if len(rest) > 2:  # conv takes up to 3 spatial dims: fold the trailing ones together
        if not all(isinstance(d, int) for d in rest):
            raise ctx.error(f"X {x.type} of rank > 4 needs static trailing dims")
        rest = [math.prod(rest)]  # type: ignore[arg-type]
    flat = ctx.op("reshape", sq, shape=[x.shape[0], 1, x.shape[1], *rest])
    lo, hi = (size - 1) // 2, (size - 1) - (size - 1) // 2
    ones = ctx.const(np.ones((1, 1, size, *[1] * len(rest)), dtype=x.dtype.np_dtype))
    zeros = [0] * len(rest)
    window = ctx.op("conv", flat, ones, pads=[lo, *zeros, hi, *zeros])
    window = ctx.op("reshape", window, shape=list(x.shape))
    base = ctx.op("add", ctx.op("mul", window, _scalar(ctx, alpha / size, x)),
                  _scalar(ctx, bias, x))
    return ctx.op("div", x, ctx.op("pow", base, _scalar(ctx, beta, x)))


@converter("Dropout", since=1)
def dropout(ctx: NodeContext) -> list[Optional[Value]]:
    """Inference: the identity, and an all-true mask when the node asks for it (before opset 7,
    is_test is taken as set). training_mode=true is random and not imported, unless the ratio
    is 0."""
    x = ctx.input(0)
    training = False
    if ctx.opset >= 12 and ctx.has_input(2):
        mode = ctx.require_known(2, "training_mode")
        training = bool(mode.reshape(-1)[0])
    if training:
        ratio = ctx.known(1) if ctx.has_input(1) else np.asarray(0.5)
        if ratio is None or float(np.asarray(ratio).reshape(-1)[0]) != 0.0:
            raise ctx.error("training_mode=true drops random elements, which the compiler does "
                            "not import; export the model in eval mode")
    outs: list[Optional[Value]] = [x]
    if _wants_output(ctx, 1):
        # opset < 10 gives the mask x's dtype; later opsets a bool tensor
        mdt = dt.bool_ if ctx.opset >= 10 else x.dtype
        if x.type.is_static:
            outs.append(ctx.const(np.ones(x.shape, dtype=mdt.np_dtype)))
        else:
            outs.append(ctx.op("full", shape=list(x.shape), value=1.0, dtype=mdt))
    return outs


# --- resize ---------------------------------------------------------------------------------------

_IR_RESIZE_COORDS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                     "asymmetric")


def _resize(ctx: NodeContext, x: Value, sizes: list[Dim], scales: list[float], *,
            exact: bool, mode: str, coord: str, nearest_mode: str = "round_prefer_floor",
            cubic_coeff_a: float = -0.75, exclude_outside: bool = False,
            antialias: bool = False, roi: Sequence[float] = (),
            extrapolation_value: float = 0.0) -> Value:
    """The IR resize when the coordinate transform only needs output/input ratios (`exact`:
    the scales are those ratios), else resize_general."""
    if mode not in ("nearest", "linear", "cubic"):
        raise ctx.error(f"attribute mode={mode!r} is not nearest, linear or cubic")
    if antialias and mode == "nearest":
        antialias = False  # antialiasing filters linear and cubic interpolation only
    if all(n == i for n, i in zip(sizes, x.shape)) and all(s == 1.0 for s in scales) and \
            coord != "tf_crop_and_resize":
        return x
    common = dict(mode=mode, coordinate_transformation_mode=coord, nearest_mode=nearest_mode,
                  cubic_coeff_a=cubic_coeff_a, exclude_outside=exclude_outside)
    if exact and not antialias and coord in _IR_RESIZE_COORDS:
        return ctx.op("resize", x, sizes=sizes, **common)
    return ctx.op("resize_general", x, sizes=sizes, scales=scales, antialias=antialias,
                  roi=list(roi), extrapolation_value=extrapolation_value, **common)


def _sizes_from_scales(ctx: NodeContext, x: Value,
                       scales: Sequence[float]) -> tuple[list[Dim], bool]:
    """Output dims floor(in * scale) and whether every scale is exactly out/in."""
    sizes: list[Dim] = []
    exact = True
    for ax, (i, s) in enumerate(zip(x.shape, scales)):
        if not s > 0:
            raise ctx.error(f"scales {list(scales)} must be positive")
        if s == 1.0:
            sizes.append(i)
            continue
        if not isinstance(i, int):
            raise ctx.error(f"resizing dim {ax} by {s} needs its static size; X is {x.type}")
        n = int(math.floor(i * s))
        if n < 1:
            raise ctx.error(f"scale {s} gives an empty dim {ax} (input size {i})")
        exact = exact and n / i == s
        sizes.append(n)
    return sizes, exact


def _expand_axes(ctx: NodeContext, values: Sequence, axes: Optional[list[int]], rank: int,
                 fill: Sequence) -> list:
    """Per-axis values given for `axes` (all axes when None) as a full-rank list."""
    if axes is None:
        if len(values) != rank:
            raise ctx.error(f"got {len(values)} values {list(values)} for rank {rank}")
        return list(values)
    out = list(fill)
    for a, v in zip(axes, values):
        out[a] = v
    return out


@converter("Resize", since=10)
def resize_10(ctx: NodeContext) -> Value:
    """Opset 10: scales input, asymmetric coordinates (Upsample's semantics)."""
    x = ctx.input(0)
    scales = [float(s) for s in ctx.require_known(1, "scales").reshape(-1)]
    return _upsample(ctx, x, scales, str(ctx.attr("mode", "nearest")))


@converter("Resize", since=11)
def resize(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    r = x.type.rank
    mode = str(ctx.attr("mode", "nearest"))
    coord = str(ctx.attr("coordinate_transformation_mode", "half_pixel"))
    axes = _ints(ctx.attr("axes")) or None
    if axes is not None:
        axes = [a + r if a < 0 else a for a in axes]
        if any(not 0 <= a < r for a in axes) or len(set(axes)) != len(axes):
            raise ctx.error(f"attribute axes={ctx.attr('axes')} is invalid for rank {r}")
    roi_arr = ctx.known(1) if ctx.has_input(1) else None
    if ctx.has_input(1) and roi_arr is None and coord == "tf_crop_and_resize":
        raise ctx.needs_constant("input 1 (roi) must be a constant")
    roi: list[float] = []
    if coord == "tf_crop_and_resize":
        if roi_arr is None or roi_arr.size == 0:
            raise ctx.error("coordinate_transformation_mode=tf_crop_and_resize needs roi")
        flat = [float(v) for v in roi_arr.reshape(-1)]
        n = len(flat) // 2
        roi = _expand_axes(ctx, flat[:n], axes, r, [0.0] * r) + \
            _expand_axes(ctx, flat[n:], axes, r, [1.0] * r)
    scales_arr = ctx.known(2) if ctx.has_input(2) else None
    if ctx.has_input(2) and scales_arr is None:
        raise ctx.needs_constant("input 2 (scales) must be a constant")
    has_scales = scales_arr is not None and scales_arr.size > 0
    has_sizes = ctx.has_input(3) and (ctx.known(3) is None or ctx.known(3).size > 0)
    if has_scales == has_sizes:
        raise ctx.error("exactly one of scales and sizes must be given")
    policy = str(ctx.attr("keep_aspect_ratio_policy", "stretch"))
    if has_scales:
        scales = _expand_axes(ctx, [float(s) for s in scales_arr.reshape(-1)], axes, r,
                              [1.0] * r)
        sizes, exact = _sizes_from_scales(ctx, x, scales)
    else:
        dims = ctx.dims(3)
        if (dims is None or any(d is None for d in dims)) and policy == "stretch":
            dims = _declared_shape(ctx, 0)  # run-time sizes: the output's declared shape
            axes = None
        if dims is None or any(d is None for d in dims):
            raise ctx.needs_constant("input 3 (sizes) depends on run-time values; the compiler "
                                     "needs output sizes known at import time")
        sizes = _expand_axes(ctx, dims, axes, r, list(x.shape))
        todo = axes if axes is not None else list(range(r))
        for ax in todo:
            if sizes[ax] != x.shape[ax] and not isinstance(x.shape[ax], int):
                raise ctx.error(f"resizing dim {ax} needs its static size; X is {x.type}")
        ratio = {ax: sizes[ax] / x.shape[ax] for ax in todo if isinstance(sizes[ax], int)
                 and isinstance(x.shape[ax], int)}
        scales = [ratio.get(ax, 1.0) for ax in range(r)]
        exact = True
        if policy != "stretch":
            if policy not in ("not_larger", "not_smaller") or len(ratio) != len(todo):
                raise ctx.error(f"keep_aspect_ratio_policy={policy!r} needs static sizes and is "
                                "one of stretch, not_larger, not_smaller")
            s = (min if policy == "not_larger" else max)(ratio.values())
            scales = [s if ax in todo else 1.0 for ax in range(r)]
            sizes = [int(s * x.shape[ax] + 0.5) if ax in todo else x.shape[ax]
                     for ax in range(r)]
            exact = all(sizes[ax] / x.shape[ax] == s for ax in todo)
    return _resize(ctx, x, sizes, scales, exact=exact, mode=mode, coord=coord,
                   nearest_mode=str(ctx.attr("nearest_mode", "round_prefer_floor")),
                   cubic_coeff_a=float(ctx.attr("cubic_coeff_a", -0.75)),
                   exclude_outside=bool(ctx.attr("exclude_outside", 0)),
                   antialias=bool(ctx.attr("antialias", 0)), roi=roi,
                   extrapolation_value=float(ctx.attr("extrapolation_value", 0.0)))


def _upsample(ctx: NodeContext, x: Value, scales: list[float], mode: str) -> Value:
    """Upsample (and Resize-10): asymmetric coordinates; nearest takes the floor when
    upsampling and the ceiling when downsampling (ONNX Runtime's rule)."""
    if len(scales) != x.type.rank:
        raise ctx.error(f"scales {scales} must have one value per dim of X {x.type}")
    mode = {"bilinear": "linear", "trilinear": "linear"}.get(mode, mode)
    if mode not in ("nearest", "linear"):
        raise ctx.error(f"attribute mode={mode!r} is not nearest or linear")
    nearest = "floor"
    if any(s < 1 for s in scales):
        if any(s > 1 for s in scales):
            raise ctx.error(f"nearest up- and downsampling at once (scales {scales}) is not "
                            "supported")
        nearest = "ceil"
    sizes, exact = _sizes_from_scales(ctx, x, scales)
    return _resize(ctx, x, sizes, scales, exact=exact, mode=mode, coord="asymmetric",
                   nearest_mode=nearest)


@converter("Upsample", since=1)
def upsample(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    if ctx.opset < 7:
        scales = [1.0, 1.0, float(ctx.attr("height_scale")), float(ctx.attr("width_scale"))]
    elif ctx.opset < 9:
        scales = [float(s) for s in ctx.attr("scales")]
    else:
        scales = [float(s) for s in ctx.require_known(1, "scales").reshape(-1)]
    return _upsample(ctx, x, scales, str(ctx.attr("mode", "nearest")))


@converter("DepthToSpace", since=1)
def depth_to_space(ctx: NodeContext) -> Value:
    return ctx.op("depth_to_space", ctx.input(0), blocksize=int(ctx.attr("blocksize")),
                  mode=str(ctx.attr("mode", "DCR")))


@converter("SpaceToDepth", since=1)
def space_to_depth(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    b = int(ctx.attr("blocksize"))
    mode = str(ctx.attr("mode", "DCR"))
    if mode == "DCR":
        return ctx.op("space_to_depth", x, blocksize=b)
    if mode != "CRD":
        raise ctx.error(f"attribute mode={mode!r} is not DCR or CRD")
    if x.type.rank != 4 or not all(isinstance(v, int) for v in x.shape[1:]):
        raise ctx.error(f"mode CRD needs X [N, C, H, W] with static C, H, W, got {x.type}")
    n, c, h, w = x.shape
    if h % b or w % b:  # type: ignore[operator]
        raise ctx.error(f"H and W of X {x.type} must be multiples of blocksize {b}")
    # CRD: output channel c*b*b + i*b + j holds x[c, y*b + i, x*b + j]
    y = ctx.op("reshape", x, shape=[n, c, h // b, b, w // b, b])  # type: ignore[operator]
    y = ctx.op("transpose", y, perm=[0, 1, 3, 5, 2, 4])
    return ctx.op("reshape", y, shape=[n, c * b * b, h // b, w // b])  # type: ignore[operator]


# --- sampling and rearranging ---------------------------------------------------------------------


@converter("GridSample", since=16)
def grid_sample(ctx: NodeContext) -> Value:
    mode = str(ctx.attr("mode", "bilinear" if ctx.opset < 20 else "linear"))
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    if mode not in ("linear", "nearest", "cubic"):
        raise ctx.error(f"attribute mode={ctx.attr('mode')!r} is not supported")
    padding = str(ctx.attr("padding_mode", "zeros"))
    if padding not in ("zeros", "border", "reflection"):
        raise ctx.error(f"attribute padding_mode={padding!r} is not zeros, border or reflection")
    x, grid = ctx.input(0), ctx.input(1)
    return ctx.op("grid_sample", x, _as_dtype(ctx, grid, x), mode=mode, padding_mode=padding,
                  align_corners=bool(ctx.attr("align_corners", 0)))


@converter("AffineGrid", since=20)
def affine_grid(ctx: NodeContext) -> Value:
    """grid[n, *pos] = theta[n] @ [x, y, (z,) 1] over a constant base grid of normalized pixel
    coordinates (the function body's If/Range are resolved here from the static size)."""
    theta = ctx.input(0)
    known, declared = ctx.known(1), _declared_shape(ctx, 0)
    if known is None and declared is None:
        ctx.require_known(1, "size")
    # a run-time size: the grid's declared static shape [N, *spatial, d] gives it
    size = [int(v) for v in known.reshape(-1)] if known is not None else \
        [declared[0], 0, *declared[1:-1]]  # type: ignore[index]
    spatial = size[2:]
    d = len(spatial)
    if d not in (2, 3) or theta.type.rank != 3:
        raise ctx.error(f"size {size} must be [N, C, H, W] or [N, C, D, H, W] with theta "
                        f"[N, {d}, {d + 1}], got theta {theta.type}")
    align = bool(ctx.attr("align_corners", 0))

    def axis_coords(n: int) -> np.ndarray:
        if align:
            return np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
        return (2 * np.arange(n) + 1) / n - 1

    mesh = np.meshgrid(*(axis_coords(n) for n in spatial), indexing="ij")  # D/H/W order
    base = np.stack([*reversed(mesh), np.ones(spatial)], axis=-1)  # x first, then y (z), 1
    base = ctx.const(base.reshape(-1, d + 1).astype(theta.dtype.np_dtype))
    grid = ctx.op("matmul", base, ctx.op("transpose", theta, perm=[0, 2, 1]))  # [N, P, d]
    return ctx.op("reshape", grid, shape=[theta.shape[0], *spatial, d])


@converter("RoiAlign", since=10)
def roi_align(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    coord = str(ctx.attr("coordinate_transformation_mode",
                         "half_pixel" if ctx.opset >= 16 else "output_half_pixel"))
    mode = str(ctx.attr("mode", "avg"))
    if mode not in ("avg", "max") or coord not in ("half_pixel", "output_half_pixel"):
        raise ctx.error(f"unsupported mode={mode!r} / coordinate_transformation_mode={coord!r}")
    return ctx.op("roi_align", x, _as_dtype(ctx, ctx.input(1), x), ctx.input(2), mode=mode,
                  output_height=int(ctx.attr("output_height", 1)),
                  output_width=int(ctx.attr("output_width", 1)),
                  sampling_ratio=int(ctx.attr("sampling_ratio", 0)),
                  spatial_scale=float(ctx.attr("spatial_scale", 1.0)),
                  coordinate_transformation_mode=coord)


@converter("Col2Im", since=18)
def col2im(ctx: NodeContext) -> Value:
    """A grouped conv_transpose with one-hot kernels: column channel c*K + k adds its values
    at block offset k of channel c (K = prod(block_shape))."""
    x = ctx.input(0)
    known, declared = ctx.known(1), _declared_shape(ctx, 0)
    if known is None and declared is None:
        ctx.require_known(1, "image_shape")
    # a run-time image_shape: the output's declared static shape [N, C, *image] gives it
    image = [int(v) for v in known.reshape(-1)] if known is not None else declared[2:]
    block = [int(v) for v in ctx.require_known(2, "block_shape").reshape(-1)]
    d = len(image)
    strides, dilations = _per_axis(ctx, "strides", d, 1), _per_axis(ctx, "dilations", d, 1)
    pads = _ints(ctx.attr("pads")) or [0] * (2 * d)
    k = math.prod(block)
    ck = x.shape[1]
    if x.type.rank != 3 or not isinstance(ck, int) or ck % k:
        raise ctx.error(f"input must be [N, C*{k}, L] with a static channel dim, got {x.type}")
    c = ck // k
    grid, out_pad = [], []
    for ax in range(d):
        span = image[ax] + pads[ax] + pads[d + ax] - (dilations[ax] * (block[ax] - 1) + 1)
        grid.append(span // strides[ax] + 1)
        out_pad.append(span % strides[ax])
    if isinstance(x.shape[2], int) and x.shape[2] != math.prod(grid):
        raise ctx.error(f"input has {x.shape[2]} blocks but image_shape {image}, block_shape "
                        f"{block} and the window attributes give {math.prod(grid)}")
    w = np.zeros((c, k, k), dtype=x.dtype.np_dtype)
    w[:, np.arange(k), np.arange(k)] = 1
    w = ctx.const(w.reshape(c * k, 1, *block))
    cols = ctx.op("reshape", x, shape=[x.shape[0], ck, *grid])
    return ctx.op("conv_transpose", cols, w, strides=strides, pads=pads, dilations=dilations,
                  groups=c, output_padding=out_pad)


@converter("CenterCropPad", since=18)
def center_crop_pad(ctx: NodeContext) -> Value:
    """Crop (start (in - out) // 2) or zero-pad (begin (out - in) // 2) each listed axis."""
    x = ctx.input(0)
    r = x.type.rank
    dims = ctx.dims(1)
    axes = [a + r if a < 0 else a for a in (_ints(ctx.attr("axes")) or range(r))]
    if dims is None or any(not isinstance(v, int) for v in dims):
        dims, axes = _declared_shape(ctx, 0), list(range(r))  # the output's declared shape
        if dims is None:
            raise ctx.needs_constant("input 1 (shape) must be known at import time (or the "
                                     "output's shape declared static)")
    starts, ends, crop_axes, pads = [], [], [], [0] * (2 * r)
    for a, want in zip(axes, dims):
        have = x.shape[a]
        if want == have:
            continue
        if not isinstance(have, int):
            raise ctx.error(f"axis {a} of {x.type} is symbolic; cropping or padding it needs a "
                            "static size")
        if want < have:  # type: ignore[operator]
            start = (have - want) // 2  # type: ignore[operator]
            crop_axes.append(a)
            starts.append(start)
            ends.append(start + want)  # type: ignore[operator]
        else:
            pads[a] = (want - have) // 2  # type: ignore[operator]
            pads[r + a] = want - have - pads[a]  # type: ignore[operator]
    y = ctx.op("slice", x, starts=starts, ends=ends, axes=crop_axes) if crop_axes else x
    return ctx.op("pad", y, pads=pads) if any(pads) else y
