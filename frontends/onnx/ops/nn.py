"""Neural-network converters: convolutions, pools, normalizations, resize, recurrent nets,
attention and the sampling ops (GridSample, RoiAlign, AffineGrid, Col2Im, MaxUnpool).

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
from typing import Callable, Optional, Sequence

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


# --- recurrent nets (unrolled over the static sequence length) ------------------------------------

# activation name -> default (alpha, beta); None where the function takes no such parameter
_ACT_PARAMS: dict[str, tuple[Optional[float], Optional[float]]] = {
    "relu": (None, None), "tanh": (None, None), "sigmoid": (None, None),
    "softsign": (None, None), "softplus": (None, None), "affine": (1.0, 0.0),
    "leakyrelu": (0.01, None), "thresholdedrelu": (1.0, None), "scaledtanh": (1.0, 1.0),
    "hardsigmoid": (0.2, 0.5), "elu": (1.0, None),
}

Activation = Callable[[Value], Value]


def _activation(ctx: NodeContext, name: str, alpha: Optional[float],
                beta: Optional[float]) -> Activation:
    def lin(x: Value, a: float, b: float) -> Value:
        return ctx.op("add", ctx.op("mul", x, _scalar(ctx, a, x)), _scalar(ctx, b, x))

    kind = name.lower()
    table: dict[str, Activation] = {
        "relu": lambda x: ctx.op("relu", x),
        "tanh": lambda x: ctx.op("tanh", x),
        "sigmoid": lambda x: ctx.op("sigmoid", x),
        "softplus": lambda x: ctx.op("softplus", x),
        "softsign": lambda x: ctx.op("div", x, ctx.op("add", ctx.op("abs", x),
                                                      _scalar(ctx, 1.0, x))),
        "affine": lambda x: lin(x, alpha, beta),  # type: ignore[arg-type]
        "leakyrelu": lambda x: ctx.op("leaky_relu", x, alpha=alpha),
        "thresholdedrelu": lambda x: ctx.op("where", ctx.op("gt", x, _scalar(ctx, alpha, x)),
                                            x, _scalar(ctx, 0.0, x)),
        "scaledtanh": lambda x: ctx.op("mul", ctx.op("tanh", lin(x, beta, 0.0)),  # type: ignore
                                       _scalar(ctx, alpha, x)),  # type: ignore[arg-type]
        "hardsigmoid": lambda x: ctx.op("clip", lin(x, alpha, beta), min=0.0,  # type: ignore
                                        max=1.0),
        "elu": lambda x: ctx.op("elu", x, alpha=alpha),
    }
    if kind not in table:
        raise ctx.error(f"activation {name!r} is not supported; supported: "
                        f"{', '.join(sorted(table))}")
    return table[kind]


def _activations(ctx: NodeContext, defaults: list[str], dirs: int) -> list[list[Activation]]:
    """Per direction, the activation functions (f, g, h order), with alpha/beta consumed in
    order by the functions that take them."""
    names = list(ctx.attr("activations") or []) or defaults * dirs
    if len(names) != len(defaults) * dirs:
        raise ctx.error(f"attribute activations={names} must list {len(defaults) * dirs} "
                        "functions")
    alphas = [float(a) for a in ctx.attr("activation_alpha") or []]
    betas = [float(b) for b in ctx.attr("activation_beta") or []]
    fns: list[Activation] = []
    for name in names:
        da, db = _ACT_PARAMS.get(name.lower(), (None, None))
        a = (alphas.pop(0) if alphas else da) if da is not None else None
        b = (betas.pop(0) if betas else db) if db is not None else None
        fns.append(_activation(ctx, name, a, b))
    n = len(defaults)
    return [fns[i * n:(i + 1) * n] for i in range(dirs)]


def _per_direction(ctx: NodeContext, v: Value, dirs: int) -> list[Value]:
    """[dirs, ...] -> one [...] value per direction."""
    if dirs == 1:
        return [ctx.op("squeeze", v, axes=[0])]
    parts = ctx.op("split", v, axis=0, sizes=[1] * dirs)
    return [ctx.op("squeeze", p, axes=[0]) for p in parts]


def _split(ctx: NodeContext, v: Value, n: int, axis: int = -1) -> list[Value]:
    size = v.shape[axis]
    if not isinstance(size, int) or size % n:
        raise ctx.error(f"cannot split {v.type} into {n} gates")
    return list(ctx.op("split", v, axis=axis, sizes=[size // n] * n))


def _recurrent(ctx: NodeContext, kind: str) -> list[Optional[Value]]:
    """Unroll RNN/GRU/LSTM: the input projection of all steps is one matmul, then each step
    adds the recurrent matmul and applies the gates. sequence_lens masks steps past each
    sequence's end (state kept, output zero), which also makes reverse directions start at
    each sequence's last element."""
    n_gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
    x, w, r = ctx.input(0), ctx.input(1), ctx.input(2)
    layout = int(ctx.attr("layout", 0))
    if x.type.rank != 3:
        raise ctx.error(f"input X must have rank 3, got {x.type}")
    if layout:
        x = ctx.op("transpose", x, perm=[1, 0, 2])
    seq, batch = x.shape[0], x.shape[1]
    if not isinstance(seq, int):
        raise ctx.error(f"needs a static sequence length to unroll, got X {x.type}")
    hidden = int(ctx.attr("hidden_size", 0)) or r.shape[-1]
    direction = str(ctx.attr("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ctx.error(f"attribute direction={direction!r} is not forward, reverse or "
                        "bidirectional")
    dirs = 2 if direction == "bidirectional" else 1
    defaults = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"],
                "LSTM": ["Sigmoid", "Tanh", "Tanh"]}[kind]
    acts = _activations(ctx, defaults, dirs)
    clip = ctx.attr("clip")
    before_reset = bool(ctx.attr("linear_before_reset", 0))
    input_forget = bool(ctx.attr("input_forget", 0))

    def state_input(i: int) -> list[Optional[Value]]:
        if not ctx.has_input(i):
            return [None] * dirs
        v = ctx.input(i)
        return _per_direction(ctx, ctx.op("transpose", v, perm=[1, 0, 2]) if layout else v, dirs)

    def zeros(shape: list[Dim]) -> Value:
        if all(isinstance(s, int) for s in shape):
            return ctx.const(np.zeros(shape, dtype=x.dtype.np_dtype))
        return ctx.op("full", shape=shape, value=0.0, dtype=x.dtype)

    init_h, init_c = state_input(5), state_input(6) if kind == "LSTM" else [None] * dirs
    mask_steps: Optional[list[Value]] = None
    if ctx.has_input(4):
        lens = ctx.known(4)
        if lens is None or np.any(lens != seq):
            lens_v = ctx.input(4)
            mask_steps = [ctx.op("unsqueeze", ctx.op("lt", ctx.const(np.asarray(
                t, dtype=lens_v.dtype.np_dtype)), lens_v), axes=[1]) for t in range(seq)]
    ws, rs = _per_direction(ctx, w, dirs), _per_direction(ctx, r, dirs)
    bs = _per_direction(ctx, ctx.input(3), dirs) if ctx.has_input(3) else [None] * dirs
    ps = _per_direction(ctx, ctx.input(7), dirs) if kind == "LSTM" and ctx.has_input(7) \
        else [None] * dirs
    g = n_gates * hidden

    def pre(v: Value) -> Value:  # clip is applied to the inputs of the activations
        return v if clip is None else ctx.op("clip", v, min=-float(clip), max=float(clip))

    ys, hs, cs = [], [], []
    for d in range(dirs):
        f = acts[d]
        xw = ctx.op("matmul", x, ctx.op("transpose", ws[d], perm=[1, 0]))  # [seq, batch, g]
        rec_bias: Optional[Value] = None
        if bs[d] is not None:
            wb, rb = _split(ctx, bs[d], 2)
            if kind == "GRU":  # Rb of the hidden gate stays inside the reset product
                rb_zr, rec_bias = ctx.op("split", rb, axis=0, sizes=[2 * hidden, hidden])
                rb = ctx.op("concat", rb_zr, _scalar_zeros(ctx, hidden, x), axis=0)
            xw = ctx.op("add", xw, ctx.op("add", wb, rb))
        steps = [ctx.op("squeeze", s, axes=[0])
                 for s in (ctx.op("split", xw, axis=0, sizes=[1] * seq) if seq > 1 else [xw])]
        if kind == "GRU":
            r_zr, r_h = ctx.op("split", rs[d], axis=0, sizes=[2 * hidden, hidden])
            rt = ctx.op("transpose", r_zr, perm=[1, 0])
            rht = ctx.op("transpose", r_h, perm=[1, 0])
        else:
            rt = ctx.op("transpose", rs[d], perm=[1, 0])
        peep = _split(ctx, ps[d], 3) if ps[d] is not None else None
        h = init_h[d] if init_h[d] is not None else zeros([batch, hidden])
        c = init_c[d] if init_c[d] is not None else zeros([batch, hidden])
        outs: list[Optional[Value]] = [None] * seq
        reverse = direction == "reverse" or d == 1
        for t in (reversed(range(seq)) if reverse else range(seq)):
            xt = steps[t]
            if kind == "RNN":
                h_new, c_new = f[0](pre(ctx.op("add", xt, ctx.op("matmul", h, rt)))), c
            elif kind == "GRU":
                xz, xr, xh = _split(ctx, xt, 3)
                hz, hr = _split(ctx, ctx.op("matmul", h, rt), 2)
                z = f[0](pre(ctx.op("add", xz, hz)))
                rg = f[0](pre(ctx.op("add", xr, hr)))
                if before_reset:
                    hh = ctx.op("matmul", h, rht)
                    if rec_bias is not None:
                        hh = ctx.op("add", hh, rec_bias)
                    hh = ctx.op("mul", rg, hh)
                else:
                    hh = ctx.op("matmul", ctx.op("mul", rg, h), rht)
                    if rec_bias is not None:
                        hh = ctx.op("add", hh, rec_bias)
                cand = f[1](pre(ctx.op("add", xh, hh)))
                one_minus_z = ctx.op("sub", _scalar(ctx, 1.0, z), z)
                h_new = ctx.op("add", ctx.op("mul", one_minus_z, cand), ctx.op("mul", z, h))
                c_new = c
            else:
                gi, go, gf, gc = _split(ctx, ctx.op("add", xt, ctx.op("matmul", h, rt)), 4)
                if peep is not None:
                    gi = ctx.op("add", gi, ctx.op("mul", peep[0], c))
                    gf = ctx.op("add", gf, ctx.op("mul", peep[2], c))
                i_g = f[0](pre(gi))
                f_g = ctx.op("sub", _scalar(ctx, 1.0, i_g), i_g) if input_forget else f[0](pre(gf))
                c_new = ctx.op("add", ctx.op("mul", f_g, c), ctx.op("mul", i_g, f[1](pre(gc))))
                if peep is not None:
                    go = ctx.op("add", go, ctx.op("mul", peep[1], c_new))
                h_new = ctx.op("mul", f[0](pre(go)), f[2](c_new))
            if mask_steps is not None:
                m = mask_steps[t]
                outs[t] = ctx.op("where", m, h_new, _scalar(ctx, 0.0, h_new))
                h = ctx.op("where", m, h_new, h)
                c = ctx.op("where", m, c_new, c) if kind == "LSTM" else c
            else:
                outs[t], h, c = h_new, h_new, c_new
        y = [ctx.op("unsqueeze", o, axes=[0]) for o in outs]  # type: ignore[arg-type]
        ys.append(ctx.op("unsqueeze", y[0] if seq == 1 else ctx.op("concat", *y, axis=0),
                         axes=[1]))
        hs.append(ctx.op("unsqueeze", h, axes=[0]))
        cs.append(ctx.op("unsqueeze", c, axes=[0]))
    y_all = ys[0] if dirs == 1 else ctx.op("concat", *ys, axis=1)  # [seq, dirs, batch, hidden]
    y_h = hs[0] if dirs == 1 else ctx.op("concat", *hs, axis=0)  # [dirs, batch, hidden]
    y_c = cs[0] if dirs == 1 else ctx.op("concat", *cs, axis=0)
    if layout:
        y_all = ctx.op("transpose", y_all, perm=[2, 0, 1, 3])
        y_h = ctx.op("transpose", y_h, perm=[1, 0, 2])
        y_c = ctx.op("transpose", y_c, perm=[1, 0, 2])
    return [y_all, y_h, y_c] if kind == "LSTM" else [y_all, y_h]


def _scalar_zeros(ctx: NodeContext, n: int, like: Value) -> Value:
    return ctx.const(np.zeros(n, dtype=like.dtype.np_dtype))


@converter("RNN", since=1)
def rnn(ctx: NodeContext) -> list[Optional[Value]]:
    return _recurrent(ctx, "RNN")


@converter("GRU", since=1)
def gru(ctx: NodeContext) -> list[Optional[Value]]:
    return _recurrent(ctx, "GRU")


@converter("LSTM", since=1)
def lstm(ctx: NodeContext) -> list[Optional[Value]]:
    return _recurrent(ctx, "LSTM")


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


# --- transformer ops ------------------------------------------------------------------------------


@converter("RotaryEmbedding", since=23)
def rotary_embedding(ctx: NodeContext) -> Value:
    """Rotate the first rotary_embedding_dim features of each head by the cached angles:
    halves (or interleaved pairs) (x1, x2) -> (cos*x1 - sin*x2, sin*x1 + cos*x2)."""
    x, cos, sin = ctx.input(0), ctx.input(1), ctx.input(2)
    rank = x.type.rank
    if rank == 3:
        heads = int(ctx.attr("num_heads", 0))
        hidden = x.shape[2]
        if not heads or not isinstance(hidden, int) or hidden % heads:
            raise ctx.error(f"3-D X {x.type} needs attribute num_heads dividing its last dim")
        xs = ctx.op("reshape", x, shape=[x.shape[0], x.shape[1], heads, hidden // heads])
        head_axis = 2  # [B, S, H, D]: the caches [B, S, D/2] broadcast after unsqueeze(2)
    elif rank == 4:
        xs, head_axis = x, 1  # [B, H, S, D]: caches unsqueeze(1)
    else:
        raise ctx.error(f"input X must have rank 3 or 4, got {x.type}")
    head = xs.shape[3]
    if not isinstance(head, int):
        raise ctx.error(f"needs a static head size, got {x.type}")
    rot = int(ctx.attr("rotary_embedding_dim", 0)) or head
    half = rot // 2
    if ctx.has_input(3):
        pos = ctx.input(3)
        cos, sin = ctx.op("gather", cos, pos, axis=0), ctx.op("gather", sin, pos, axis=0)
    if cos.shape[-1] != half:
        raise ctx.error(f"cos_cache {cos.type} must end in rotary_embedding_dim/2 = {half}")
    cos, sin = (ctx.op("unsqueeze", _as_dtype(ctx, c, x), axes=[head_axis]) for c in (cos, sin))
    interleaved = bool(ctx.attr("interleaved", 0))
    step = 2 if interleaved else 1
    x1 = ctx.op("slice", xs, starts=[0], ends=[rot if interleaved else half], axes=[3],
                steps=[step])
    x2 = ctx.op("slice", xs, starts=[1 if interleaved else half], ends=[rot], axes=[3],
                steps=[step])
    real = ctx.op("sub", ctx.op("mul", cos, x1), ctx.op("mul", sin, x2))
    imag = ctx.op("add", ctx.op("mul", sin, x1), ctx.op("mul", cos, x2))
    if interleaved:
        pairs = ctx.op("concat", ctx.op("unsqueeze", real, axes=[4]),
                       ctx.op("unsqueeze", imag, axes=[4]), axis=4)
        rotated = ctx.op("reshape", pairs, shape=[*xs.shape[:3], rot])
    else:
        rotated = ctx.op("concat", real, imag, axis=3)
    if rot < head:
        rest = ctx.op("slice", xs, starts=[rot], ends=[head], axes=[3])
        rotated = ctx.op("concat", rotated, rest, axis=3)
    return rotated if rank == 4 else ctx.op("reshape", rotated, shape=list(x.shape))


def _heads_first(ctx: NodeContext, t: Value, heads: int, what: str) -> Value:
    """[B, S, heads*D] -> [B, heads, S, D]."""
    hidden = t.shape[2]
    if not heads or not isinstance(hidden, int) or hidden % heads:
        raise ctx.error(f"3-D {what} {t.type} needs num_heads attributes dividing its last dim")
    t = ctx.op("reshape", t, shape=[t.shape[0], t.shape[1], heads, hidden // heads])
    return ctx.op("transpose", t, perm=[0, 2, 1, 3])


def _repeat_heads(ctx: NodeContext, t: Value, reps: int) -> Value:
    """[B, H, S, D] -> [B, H*reps, S, D], each head repeated reps times (grouped-query)."""
    if reps == 1:
        return t
    b, h, s, d = t.shape
    wide = ctx.op("broadcast_to", ctx.op("unsqueeze", t, axes=[2]), shape=[b, h, reps, s, d])
    return ctx.op("reshape", wide, shape=[b, h * reps, s, d])  # type: ignore[operator]


def _bias_from_allowed(ctx: NodeContext, allowed: Value, like: Value) -> Value:
    """0 where allowed, -inf elsewhere, in like's dtype."""
    return ctx.op("where", allowed, _scalar(ctx, 0.0, like), _scalar(ctx, -np.inf, like))


@converter("Attention", since=23)
def attention(ctx: NodeContext) -> list[Optional[Value]]:
    """softmax(Q K^T * scale [softcapped] + bias) V with the bias summed from attn_mask (bool:
    0/-inf; float: added), the offset-aware causal mask, sliding windows and nonpad_kv_seqlen
    padding; rows with every key masked give zeros. Grouped-query K/V heads are repeated;
    past_key/past_value are concatenated in front (present_* outputs)."""
    q, k, v = ctx.input(0), ctx.input(1), ctx.input(2)
    rank = q.type.rank
    if rank not in (3, 4) or k.type.rank != rank or v.type.rank != rank:
        raise ctx.error(f"Q, K, V must all be 3-D or 4-D, got {q.type}, {k.type}, {v.type}")
    if rank == 3:
        q_heads, kv_heads = int(ctx.attr("q_num_heads", 0)), int(ctx.attr("kv_num_heads", 0))
        q = _heads_first(ctx, q, q_heads, "Q")
        k = _heads_first(ctx, k, kv_heads, "K")
        v = _heads_first(ctx, v, kv_heads, "V")
    v = _as_dtype(ctx, v, q)
    if ctx.has_input(4) != ctx.has_input(5):
        raise ctx.error("past_key and past_value must be given together")
    if ctx.has_input(4):
        k = ctx.op("concat", ctx.input(4), k, axis=2)
        v = ctx.op("concat", ctx.input(5), v, axis=2)
    present_k, present_v = k, v
    nonpad = ctx.input(6) if ctx.has_input(6) else None
    if nonpad is not None and ctx.has_input(4):
        raise ctx.error("nonpad_kv_seqlen cannot be combined with past_key/past_value")
    b, hq, sq, head = q.shape
    hk, skv = k.shape[1], k.shape[2]
    if not isinstance(head, int) or not isinstance(hq, int) or not isinstance(hk, int) or \
            hq % hk:
        raise ctx.error(f"needs static head counts (Q heads a multiple of K/V heads) and head "
                        f"size, got Q {q.type}, K {k.type}")
    scale = ctx.attr("scale")
    scale = 1.0 / math.sqrt(head) if scale is None else float(scale)
    root = _scalar(ctx, math.sqrt(scale), q)  # Q and K are each scaled by sqrt(scale)
    k = _repeat_heads(ctx, k, hq // hk)
    v = _repeat_heads(ctx, v, hq // hk)
    scores = ctx.op("matmul", ctx.op("mul", q, root),
                    ctx.op("transpose", ctx.op("mul", k, root), perm=[0, 1, 3, 2]))
    softcap = float(ctx.attr("softcap", 0.0))
    if softcap > 0:
        capped = ctx.op("tanh", ctx.op("div", scores, _scalar(ctx, softcap, scores)))
        scores = ctx.op("mul", capped, _scalar(ctx, softcap, scores))
    qk_out = scores  # modes 0 and 1 (the reference reports the softcapped product for both)

    biases: list[Value] = []
    past = ctx.input(4).shape[2] if ctx.has_input(4) else 0
    if ctx.has_input(3):
        mask = ctx.input(3)
        short = skv - mask.shape[-1] if isinstance(skv, int) and \
            isinstance(mask.shape[-1], int) else 0
        if short > 0:  # a shorter mask: the missing keys are masked out
            pads = [0] * (2 * mask.type.rank)
            pads[-1] = short
            fill = 0.0 if mask.dtype is dt.bool_ else -np.inf
            mask = ctx.op("pad", mask, pads=pads, value=fill)
        biases.append(_bias_from_allowed(ctx, mask, q) if mask.dtype is dt.bool_
                      else _as_dtype(ctx, mask, q))
    left, right = int(ctx.attr("left_window_size", -1)), int(ctx.attr("right_window_size", -1))
    causal = bool(ctx.attr("is_causal", 0))
    if causal or left >= 0 or right >= 0:
        biases += _position_biases(ctx, q, skv, nonpad, past, causal, left, right)
    if nonpad is not None:
        if not isinstance(skv, int):
            raise ctx.error(f"nonpad_kv_seqlen needs a static key length, got K {k.type}")
        keys = ctx.const(np.arange(skv, dtype=nonpad.dtype.np_dtype))
        valid = ctx.op("lt", keys, ctx.op("reshape", nonpad, shape=[-1, 1, 1, 1]))
        biases.append(_bias_from_allowed(ctx, valid, q))
    bias = None
    for term in biases:
        bias = term if bias is None else ctx.op("add", bias, term)
    logits = scores if bias is None else ctx.op("add", scores, bias)
    mode = int(ctx.attr("qk_matmul_output_mode", 0))
    if mode == 2:
        qk_out = logits
    precision = ctx.attr("softmax_precision")
    work = ir_dtype(int(precision), "Attention softmax_precision") if precision else q.dtype
    if work is not q.dtype:
        logits = ctx.op("cast", logits, to=work)
    probs = ctx.op("softmax", logits, axis=-1)
    if bias is not None and _may_mask_rows(ctx, bias):
        row_max = ctx.op("reduce_max", bias, axes=[-1], keepdims=True)
        empty = ctx.op("isinf", row_max, detect_positive=False)
        probs = ctx.op("where", empty, _scalar(ctx, 0.0, probs), probs)
    probs = _as_dtype(ctx, probs, q)
    if mode == 3:
        qk_out = probs
    elif mode not in (0, 1, 2):
        raise ctx.error(f"attribute qk_matmul_output_mode={mode} is not 0, 1, 2 or 3")
    y = ctx.op("matmul", probs, v)  # [B, Hq, Sq, Dv]
    if rank == 3:
        dv = y.shape[3]
        y = ctx.op("reshape", ctx.op("transpose", y, perm=[0, 2, 1, 3]),
                   shape=[b, sq, hq * dv])  # type: ignore[operator]
    return [y, present_k, present_v, qk_out]


def _position_biases(ctx: NodeContext, q: Value, skv: Dim, nonpad: Optional[Value], past: Dim,
                     causal: bool, left: int, right: int) -> list[Value]:
    """The causal and sliding-window bias over (query i, key j). Query i sits at absolute
    position i + offset: offset is the past length, or nonpad_kv_seqlen - q length per batch.
    Key j is visible iff (causal) j <= i + offset and, for each bound >= 0,
    i + offset - left <= j <= i + offset + right."""
    sq = q.shape[2]
    static = isinstance(sq, int) and isinstance(skv, int)
    if nonpad is None and isinstance(past, int) and not static:
        if left >= 0 or right >= 0:
            raise ctx.error("sliding windows need static query and key lengths")
        ones = ctx.op("full", shape=[sq, skv], value=1.0, dtype=q.dtype)
        allowed = ctx.op("ne", ctx.op("trilu", ones, upper=False, k=past), _scalar(ctx, 0, q))
        return [_bias_from_allowed(ctx, allowed, q)]
    if not static or not isinstance(past, int):
        raise ctx.error(f"causal/window masks with nonpad_kv_seqlen need static query and key "
                        f"lengths, got {sq} and {skv}")
    diff = np.arange(sq)[:, None] - np.arange(skv)[None, :]  # i - j, before the offset
    if nonpad is None:
        d = diff + past
        allowed = np.ones(d.shape, dtype=bool)
        if causal:
            allowed &= d >= 0
        if left >= 0:
            allowed &= d <= left
        if right >= 0:
            allowed &= -d <= right
        return [_bias_from_allowed(ctx, ctx.const(allowed), q)]
    itype = nonpad.dtype.np_dtype
    offset = ctx.op("sub", ctx.op("reshape", nonpad, shape=[-1, 1, 1]),
                    ctx.const(np.asarray(sq, dtype=itype)))
    d = ctx.op("add", ctx.const(diff.astype(itype)), offset)  # [B, Sq, Skv]
    conds = []
    if causal:
        conds.append(ctx.op("ge", d, ctx.const(np.asarray(0, dtype=itype))))
    if left >= 0:
        conds.append(ctx.op("le", d, ctx.const(np.asarray(left, dtype=itype))))
    if right >= 0:
        conds.append(ctx.op("ge", d, ctx.const(np.asarray(-right, dtype=itype))))
    allowed = conds[0]
    for c in conds[1:]:
        allowed = ctx.op("and", allowed, c)
    return [_bias_from_allowed(ctx, ctx.op("unsqueeze", allowed, axes=[1]), q)]


def _may_mask_rows(ctx: NodeContext, bias: Value) -> bool:
    """Whether some row of the bias could be all -inf (always, unless the bias is known)."""
    known = ctx.known_value(bias)
    if known is None:
        return True
    return bool(np.any(np.all(np.isneginf(known), axis=-1)))
