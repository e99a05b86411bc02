"""StableHLO rules for convolution, transposed convolution, pooling and resize (channels-first).

Pools are `reduce_window`s; average pooling divides by a count computed the same way (a
reduce_window over ones that covers the input, and the explicit padding when it counts), so no
per-shape table is stored. Resize is separable: along each resized axis the output is a fixed
linear map of the input, and that map is obtained by running the op's own reference on an
identity matrix at compile time (gathers for nearest modes, a matmul otherwise), so every
coordinate transform, rounding mode and cubic/antialias option means exactly what the reference
says.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from compiler.ir import Op, get_op
from compiler.ir import dtypes as dt

from .emitter import Emitter, Val
from .lower_contraction import dot
from .lowering import Context, compute_dtype, lowering, lowest, optional, result_type


def _window_attrs(op: Op, d: int) -> tuple[list[int], list[int], list[int]]:
    a = op.attrs
    strides = list(a.get("strides") or [1] * d)
    pads = list(a.get("pads") or [0] * (2 * d))
    dil = list(a.get("dilations") or [1] * d)
    return strides, pads, dil


def _contraction_inputs(e: Emitter, ctx: Context, *xs: Val) -> tuple[list[Val], Any]:
    """Operands in the compute dtype (bf16 with the TPU option) and the result dtype."""
    cd = compute_dtype(xs[0].dtype)
    out = [e.convert(x, cd) for x in xs]
    if ctx.options.bf16_contractions and cd == dt.f32:
        out = [e.convert(x, dt.bf16) for x in out]
    return out, cd


def _add_bias(e: Emitter, y: Val, bias: Optional[Val]) -> Val:
    if bias is None:
        return y
    b = e.convert(bias, y.dtype)
    return e.add(y, e.reshape(b, (b.shape[0],) + (1,) * (y.rank - 2)))


@lowering("conv")
def _conv(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x, w, bias = optional(args, 3)
    shape, dtype = result_type(op)
    d = x.rank - 2
    strides, pads, dil = _window_attrs(op, d)
    (xc, wc), cd = _contraction_inputs(e, ctx, x, w)
    y = e.convolution(xc, wc, shape, strides=strides, padding=list(zip(pads[:d], pads[d:])),
                      lhs_dilation=[1] * d, rhs_dilation=dil, groups=op.attrs["groups"],
                      out_dtype=cd)
    return [e.convert(_add_bias(e, y, bias), dtype)]


@lowering("conv_transpose")
def _conv_transpose(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    """A forward convolution of x dilated by the strides with the flipped kernel, its input and
    output channels swapped per group."""
    x, w, bias = optional(args, 3)
    shape, dtype = result_type(op)
    d = x.rank - 2
    strides, pads, dil = _window_attrs(op, d)
    out_pad = list(op.attrs["output_padding"] or [0] * d)
    g = op.attrs["groups"]
    c, mg, ks = w.shape[0], w.shape[1], list(w.shape[2:])
    wt = e.reshape(w, (g, c // g, mg) + tuple(ks))
    wt = e.transpose(wt, [0, 2, 1] + list(range(3, 3 + d)))
    wt = e.reverse(e.reshape(wt, (g * mg, c // g) + tuple(ks)), list(range(2, 2 + d)))
    lo = [dl * (k - 1) - p for dl, k, p in zip(dil, ks, pads[:d])]
    hi = [dl * (k - 1) - p + o for dl, k, p, o in zip(dil, ks, pads[d:], out_pad)]
    (xc, wc), cd = _contraction_inputs(e, ctx, x, wt)
    full = [(i - 1) * s + 1 + max(l, 0) + max(h, 0) - dl * (k - 1)
            for i, s, l, h, dl, k in zip(x.shape[2:], strides, lo, hi, dil, ks)]
    y = e.convolution(xc, wc, (shape[0], shape[1], *full), strides=[1] * d,
                      padding=[(max(l, 0), max(h, 0)) for l, h in zip(lo, hi)],
                      lhs_dilation=strides, rhs_dilation=dil, groups=g, out_dtype=cd)
    # negative padding crops: slice it off
    start = [0, 0] + [max(-l, 0) for l in lo]
    y = e.slice(y, start, [s0 + n for s0, n in zip(start, shape)])
    return [e.convert(_add_bias(e, y, bias), dtype)]


# --- pools --------------------------------------------------------------------------------------


def _pool_geometry(x: Val, out: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                   pads: Sequence[int], dil: Sequence[int]) -> tuple[list[int], list[int]]:
    """Per spatial axis: the input length the windows read (from the start) and the end padding
    they need, so that the reduce_window output has exactly `out` positions."""
    d = len(kernel)
    length, high = [], []
    for ax in range(d):
        need = (out[ax] - 1) * strides[ax] + dil[ax] * (kernel[ax] - 1) + 1
        i = x.shape[2 + ax]
        h = need - pads[ax] - i
        length.append(i if h >= 0 else i + h)
        high.append(max(h, 0))
    return length, high


def _crop(e: Emitter, x: Val, length: Sequence[int]) -> Val:
    return e.slice(x, [0] * x.rank, list(x.shape[:2]) + list(length))


@lowering("max_pool")
def _max_pool(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x = args[0]
    shape, dtype = result_type(op)
    d = x.rank - 2
    kernel = list(op.attrs["kernel"])
    strides, pads, dil = _window_attrs(op, d)
    length, high = _pool_geometry(x, shape[2:], kernel, strides, pads, dil)
    xs = _crop(e, x, length)
    (y,) = e.reduce_window(
        [xs], [e.const(lowest(x.dtype), x.dtype)], [1, 1] + kernel, [1, 1] + strides,
        [(0, 0), (0, 0)] + list(zip(pads[:d], high)),
        lambda s, a, b: [s.op1("stablehlo.maximum", [a, b], (), x.dtype)], [1, 1] + dil)
    return [y]


def _window_sum(e: Emitter, x: Val, kernel: Sequence[int], strides: Sequence[int],
                padding: Sequence[tuple[int, int]]) -> Val:
    lead = x.rank - len(kernel)
    (y,) = e.reduce_window(
        [x], [e.const(0.0, x.dtype)], [1] * lead + list(kernel), [1] * lead + list(strides),
        [(0, 0)] * lead + list(padding),
        lambda s, a, b: [s.op1("stablehlo.add", [a, b], (), x.dtype)])
    return y


@lowering("avg_pool")
def _avg_pool(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0 = args[0]
    shape, dtype = result_type(op)
    d = x0.rank - 2
    kernel = list(op.attrs["kernel"])
    strides, pads, _ = _window_attrs(op, d)
    x = e.convert(x0, compute_dtype(x0.dtype))
    length, high = _pool_geometry(x, shape[2:], kernel, strides, pads, [1] * d)
    xs = _crop(e, x, length)
    total = _window_sum(e, xs, kernel, strides, list(zip(pads[:d], high)))
    # the divisor: per axis, the taps inside the input (plus those in the explicit padding if
    # they count), multiplied across axes; taps past the padding never count
    count = None
    for ax in range(d):
        i, b, p_end = x.shape[2 + ax], pads[ax], pads[d + ax]
        lo, hi = (-b, i + p_end) if op.attrs["count_include_pad"] else (0, i)
        taps = np.arange(shape[2 + ax])[:, None] * strides[ax] + np.arange(kernel[ax]) - b
        per_axis = ((taps >= lo) & (taps < hi)).sum(axis=1).astype(np.float64)
        vec = e.broadcast_in_dim(e.const(per_axis, x.dtype), total.shape, [2 + ax])
        count = vec if count is None else e.mul(count, vec)
    return [e.convert(e.div(total, count), dtype)]


@lowering("global_avg_pool", "global_max_pool")
def _global_pool(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0 = args[0]
    shape, dtype = result_type(op)
    axes = list(range(2, x0.rank))
    if op.name == "global_max_pool":
        y = e.reduce_simple(x0, lowest(x0.dtype), axes, "maximum")
    else:
        x = e.convert(x0, compute_dtype(x0.dtype))
        n = float(np.prod([x.shape[a] for a in axes]))
        y = e.div(e.reduce_simple(x, 0.0, axes, "add"), n)
    return [e.convert(e.reshape(y, shape), dtype)]


# --- resize -------------------------------------------------------------------------------------


def axis_map(op_name: str, attrs: dict, n_in: int, n_out: int, scale: Optional[float] = None,
             roi: Optional[tuple[float, float]] = None,
             extrapolation: float = 0.0) -> np.ndarray:
    """The [n_out, n_in] matrix of the op's resize along one axis: its reference applied to an
    identity (the first axis resized, the second kept)."""
    eye = np.eye(n_in, dtype=np.float64)
    kw = dict(attrs)
    kw["sizes"] = (n_out, n_in)
    if op_name == "resize_general":
        kw["scales"] = (scale, 1.0)
        kw["roi"] = (roi[0], 0.0, roi[1], 1.0) if roi is not None else ()
        kw["extrapolation_value"] = extrapolation
    return np.asarray(get_op(op_name).reference(eye, **kw), dtype=np.float64)


def resize_axis(e: Emitter, ctx: Context, x: Val, axis: int, w0: np.ndarray,
                outside: Optional[np.ndarray], nearest: bool, fill: float) -> Val:
    """x mapped along `axis` by the [n_out, n_in] matrix w0 (rows in `outside` become `fill`)."""
    n_out = w0.shape[0]
    if nearest:  # one 1 per row: a gather of constant indices, exact for every dtype
        idx = ctx.constant(np.argmax(w0, axis=1).astype(np.int64), dt.i64)
        g = e.gather_points(x, [axis], [idx])  # [n_out, other dims]
        y = e.transpose(g, list(range(1, axis + 1)) + [0] + list(range(axis + 1, x.rank)))
    else:
        wmat = ctx.constant(w0, x.dtype)
        y = dot(e, ctx, x, wmat, ([], []), ([axis], [1]), out_dtype=x.dtype)
        y = e.transpose(y, list(range(axis)) + [x.rank - 1] + list(range(axis, x.rank - 1)))
    if outside is not None and outside.any():
        bshape = [n_out if i == axis else 1 for i in range(x.rank)]
        mask = e.broadcast_to(e.const(outside.reshape(bshape), dt.bool_), y.shape)
        y = e.select(mask, e.const(fill, y.dtype), y)
    return y


@lowering("resize")
def _resize(e: Emitter, op: Op, args: list[Val], ctx: Context) -> list[Val]:
    x0 = args[0]
    shape, dtype = result_type(op)
    attrs = {k: v for k, v in op.attrs.items() if k != "sizes"}
    nearest = op.attrs["mode"] == "nearest"
    y = x0 if nearest else e.convert(x0, compute_dtype(x0.dtype))
    for ax in range(x0.rank):
        if shape[ax] == x0.shape[ax]:
            continue
        w0 = axis_map("resize", attrs, x0.shape[ax], shape[ax])
        y = resize_axis(e, ctx, y, ax, w0, None, nearest, 0.0)
    return [e.convert(y, dtype)]
