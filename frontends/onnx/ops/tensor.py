"""Data movement and tensor creation: transposes, splits, pads, tiles, gathers and scatters, top-k,
one-hot, triangles, ranges, windows, DFT/STFT, and the ops whose output shapes depend on data
(NonZero, Unique, Compress), which import only when their inputs are known.

Inputs that decide an output shape (pads, repeats, K, split sizes, depth, axes) must be known at
import time: the IR's shapes are static or symbolic, never data-dependent. Inputs that only decide
values (Trilu's k, ReverseSequence's lengths, Pad's constant value, OneHot's values) may be
run-time values; those converters compose masks from existing IR ops.
"""
from __future__ import annotations

import math
import string
from typing import Optional

import numpy as np

from compiler.ir import Value
from compiler.ir import dtypes as dt

from ..importer import NodeContext, converter, ir_dtype

INT64 = np.int64


def _ints(arr: Optional[np.ndarray]) -> list[int]:
    return [] if arr is None else [int(v) for v in np.asarray(arr).reshape(-1)]


def _scalar(ctx: NodeContext, i: int, what: str) -> np.ndarray:
    """Known input i, which must hold exactly one element; returned as a 0-d array."""
    arr = ctx.require_known(i, what)
    if arr.size != 1:
        raise ctx.error(f"input {i} ({what}) must hold one value, got shape {list(arr.shape)}")
    return arr.reshape(())


def _data_dependent(ctx: NodeContext, i: int = 0) -> np.ndarray:
    """Known input i of an op whose output shape depends on its values."""
    arr = ctx.known(i)
    if arr is None:
        raise ctx.needs_constant(f"the output shape depends on the values of input {i}, which "
                                 "are only known at run time; the IR needs shapes known at compile "
                                 "time (this op imports only when its input is a constant)",
                                 ctx.inputs[i])
    return arr


def _exact_float(value: np.ndarray) -> Optional[float]:
    """value as a Python float when that float converts back to the same value, else None."""
    f = float(value)
    return f if np.asarray(f).astype(value.dtype) == value else None


def _dtype_attr(ctx: NodeContext, name: str, default: dt.DType) -> dt.DType:
    code = ctx.attr(name)
    return default if code is None else ir_dtype(code, f"{ctx.op_type} node '{ctx.node.name}' "
                                                       f"attribute {name}")


# --- transpose, flatten, split ------------------------------------------------------------------


@converter("Transpose")
def transpose(ctx: NodeContext) -> Value:
    return ctx.op("transpose", ctx.input(0), perm=list(ctx.attr("perm", [])))


@converter("Flatten")
def flatten(ctx: NodeContext) -> Value:
    return ctx.op("flatten", ctx.input(0), axis=ctx.attr("axis", 1))


@converter("Split")
def split(ctx: NodeContext) -> list[Value]:
    x = ctx.input(0)
    axis = ctx.attr("axis", 0)
    n = len(ctx.node.output)
    if ctx.opset >= 13 or (ctx.opset < 2 and ctx.has_input(1)):
        sizes = _ints(ctx.require_known(1, "split")) if ctx.has_input(1) else None
    else:
        sizes = ctx.attr("split")
    if x.type.rank == 0:
        raise ctx.error("cannot split a 0-d tensor")
    if not -x.type.rank <= axis < x.type.rank:
        raise ctx.error(f"attribute axis {axis} is out of range for rank {x.type.rank}")
    d = x.shape[axis]
    if not sizes:
        if n == 1:
            return [x]
        if isinstance(d, str):
            raise ctx.error(f"splitting dim ?{d} into {n} parts needs a static dim")
        parts = ctx.attr("num_outputs", n) if ctx.opset >= 18 else n
        if parts != n:
            raise ctx.error(f"attribute num_outputs {parts} differs from the {n} outputs")
        if ctx.opset >= 18:  # ceil-sized chunks, the last one smaller
            chunk = -(-d // n)
            sizes = [min(chunk, max(d - i * chunk, 0)) for i in range(n)]
        elif d % n:
            raise ctx.error(f"dim {d} does not split into {n} equal parts; give 'split'")
        else:
            sizes = [d // n] * n
    if len(sizes) != n:
        raise ctx.error(f"split sizes {list(sizes)} do not match the {n} outputs")
    outs = ctx.op("split", x, axis=axis, sizes=list(sizes))
    outs = outs if isinstance(outs, list) else [outs]
    dims = ctx.dims(0)
    if dims is not None and x.type.rank == 1:  # a shape vector: each part keeps its dims
        ends = np.cumsum(sizes)
        for out, end, size in zip(outs, ends, sizes):
            ctx.set_dims(out, dims[end - size:end])
    return outs


# --- pad, tile ----------------------------------------------------------------------------------

PAD_MODES = ("constant", "reflect", "edge", "wrap")


@converter("Pad")
def pad_v1(ctx: NodeContext) -> Value:
    pads = ctx.attr("pads") if ctx.opset >= 2 else ctx.attr("paddings")
    if pads is None:
        raise ctx.error("attribute pads is required")
    return _pad(ctx, list(pads), np.asarray(ctx.attr("value", 0.0), np.float32))


@converter("Pad", since=11)
def pad(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    pads = _ints(ctx.require_known(1, "pads"))
    if ctx.has_input(3):
        axes = _ints(ctx.require_known(3, "axes"))
        r = x.type.rank
        if len(pads) != 2 * len(axes):
            raise ctx.error(f"pads {pads} must have 2 entries per axis of {axes}")
        full = [0] * (2 * r)
        for j, a in enumerate(axes):
            if not -r <= a < r:
                raise ctx.error(f"axis {a} is out of range for rank {r}")
            full[a % r], full[a % r + r] = pads[j], pads[j + len(axes)]
        pads = full
    if not ctx.has_input(2):
        return _pad(ctx, pads, np.zeros((), x.dtype.np_dtype))
    known = ctx.known(2)
    if known is not None and known.size == 1:
        return _pad(ctx, pads, known.reshape(()))
    return _pad(ctx, pads, None)


def _pad(ctx: NodeContext, pads: list[int], value: Optional[np.ndarray]) -> Value:
    """Pad input 0; value None means input 2 holds the constant value at run time."""
    x = ctx.input(0)
    mode = ctx.attr("mode", "constant")
    if mode not in PAD_MODES:
        raise ctx.error(f"attribute mode {mode!r} is not one of {', '.join(PAD_MODES)}")
    if len(pads) != 2 * x.type.rank:
        raise ctx.error(f"pads {pads} must have 2*rank = {2 * x.type.rank} entries")
    if mode != "constant":
        return ctx.op("pad", x, pads=pads, mode=mode)
    exact = None if value is None else _exact_float(value.astype(x.dtype.np_dtype))
    if exact is not None:
        return ctx.op("pad", x, pads=pads, value=exact)
    # a fill that is a run-time value (or not exact as a float): pad a mask, then select
    fill = ctx.input(2) if value is None else ctx.const(value.astype(x.dtype.np_dtype))
    if fill.type.rank:
        fill = ctx.op("reshape", fill, shape=[])
    if fill.dtype is not x.dtype:
        fill = ctx.op("cast", fill, to=x.dtype)
    inside = ctx.op("full", shape=list(x.shape), value=0.0, dtype=dt.bool_)
    outside = ctx.op("pad", inside, pads=pads, value=1.0)
    return ctx.op("where", outside, fill, ctx.op("pad", x, pads=pads, value=0.0))


@converter("Tile")
def tile_v1(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    tiles, axis = int(_scalar(ctx, 1, "tiles")), int(_scalar(ctx, 2, "axis"))
    repeats = [1] * x.type.rank
    if not -x.type.rank <= axis < x.type.rank:
        raise ctx.error(f"axis {axis} is out of range for rank {x.type.rank}")
    repeats[axis] = tiles
    return ctx.op("tile", x, repeats=repeats)


@converter("Tile", since=6)
def tile(ctx: NodeContext) -> Value:
    return ctx.op("tile", ctx.input(0), repeats=_ints(ctx.require_known(1, "repeats")))


# --- gathers and scatters -----------------------------------------------------------------------

REDUCTIONS = {16: ("none", "add", "mul"), 18: ("none", "add", "mul", "max", "min")}


def _reduction(ctx: NodeContext) -> str:
    reduction = ctx.attr("reduction", "none")
    allowed = REDUCTIONS[18 if ctx.opset >= 18 else 16]
    if reduction not in allowed:
        raise ctx.error(f"attribute reduction {reduction!r} is not one of {', '.join(allowed)}")
    return reduction


@converter("GatherElements", since=11)
def gather_elements(ctx: NodeContext) -> Value:
    return ctx.op("gather_elements", ctx.input(0), ctx.input(1), axis=ctx.attr("axis", 0))


@converter("GatherND", since=11)
def gather_nd(ctx: NodeContext) -> Value:
    return ctx.op("gather_nd", ctx.input(0), ctx.input(1), batch_dims=ctx.attr("batch_dims", 0))


@converter("ScatterElements", "Scatter", since=9)
def scatter_elements(ctx: NodeContext) -> Value:
    reduction = _reduction(ctx)
    return ctx.op("scatter_elements", ctx.input(0), ctx.input(1), ctx.input(2),
                  axis=ctx.attr("axis", 0), reduction=reduction)


@converter("ScatterND", since=11)
def scatter_nd(ctx: NodeContext) -> Value:
    return ctx.op("scatter_nd", ctx.input(0), ctx.input(1), ctx.input(2),
                  reduction=_reduction(ctx))


# --- topk, one-hot, trilu, eye-like -------------------------------------------------------------


@converter("TopK")
def topk(ctx: NodeContext) -> list[Value]:
    if ctx.opset < 10:
        k = ctx.attr("k")
        if k is None:
            raise ctx.error("attribute k is required")
    else:
        k = int(_scalar(ctx, 1, "K"))
    return ctx.op("topk", ctx.input(0), k=k, axis=ctx.attr("axis", -1),
                  largest=bool(ctx.attr("largest", 1)), sorted=bool(ctx.attr("sorted", 1)))


@converter("OneHot", since=9)
def one_hot(ctx: NodeContext) -> Value:
    indices = ctx.input(0)
    depth = _scalar(ctx, 1, "depth")
    if depth.dtype.kind == "f" and depth != np.floor(depth):
        raise ctx.error(f"depth {float(depth)} is not an integer")
    depth = int(depth)
    values = ctx.input(2)
    if values.shape not in ((2,),):
        raise ctx.error(f"input 2 (values) must have shape [2] (off, on), got {values.type}")
    if not indices.dtype.is_int:  # ONNX casts non-integer indices to int64
        indices = ctx.op("cast", indices, to=dt.i64)
    axis = ctx.attr("axis", -1)
    known = ctx.known(2)
    if known is not None:
        off, on = _exact_float(known[0]), _exact_float(known[1])
        if off is not None and on is not None:
            return ctx.op("one_hot", indices, depth=depth, axis=axis, on_value=on,
                          off_value=off, dtype=values.dtype)
    hot = ctx.op("one_hot", indices, depth=depth, axis=axis, dtype=dt.bool_)
    off, on = (ctx.op("gather", values, ctx.const(np.asarray(i, INT64))) for i in (0, 1))
    return ctx.op("where", hot, on, off)


@converter("Trilu", since=14)
def trilu(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    upper = bool(ctx.attr("upper", 1))
    if x.type.rank < 2:
        raise ctx.error(f"input must have rank >= 2, got {x.type}")
    if not ctx.has_input(1):
        return ctx.op("trilu", x, upper=upper, k=0)
    known = ctx.known(1)
    if known is not None:
        return ctx.op("trilu", x, upper=upper, k=int(_scalar(ctx, 1, "k")))
    # k known only at run time: keep where (column - row) >= k (upper) or <= k (lower)
    n, m = x.shape[-2:]
    if not (isinstance(n, int) and isinstance(m, int)):
        raise ctx.error(f"a run-time k needs static matrix dims, got {x.type}")
    offset = ctx.const(np.arange(m, dtype=INT64)[None, :] - np.arange(n, dtype=INT64)[:, None])
    k = ctx.input(1)
    if k.type.rank:
        k = ctx.op("reshape", k, shape=[])
    if k.dtype is not dt.i64:
        k = ctx.op("cast", k, to=dt.i64)
    keep = ctx.op("ge" if upper else "le", offset, k)
    return ctx.op("where", keep, x, ctx.const(np.zeros((), x.dtype.np_dtype)))


@converter("EyeLike", since=9)
def eye_like(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    dtype = _dtype_attr(ctx, "dtype", x.dtype)
    k = ctx.attr("k", 0)
    if x.type.rank not in (1, 2):
        raise ctx.error(f"input must be 2-D, got {x.type}")
    shape = list(x.shape) * (2 if x.type.rank == 1 else 1)
    if all(isinstance(d, int) for d in shape):
        return ctx.const(np.eye(shape[0], shape[1], k=k, dtype=dtype.np_dtype))
    ones = ctx.op("full", shape=shape, value=1.0, dtype=dtype)  # symbolic dims: the k-th diagonal
    return ctx.op("trilu", ctx.op("trilu", ones, upper=True, k=k), upper=False, k=k)


# --- range, windows, mel weights ----------------------------------------------------------------


@converter("Range", since=11)
def range_(ctx: NodeContext) -> Value:
    values = [ctx.known(i) for i in range(3)]
    if all(v is not None for v in values):
        start, limit, delta = (v.reshape(()) for v in values)  # type: ignore[union-attr]
        return ctx.const(_range(ctx, start, limit, delta))
    # arange(0, ?n, 1) (position ids from a symbolic dim) is representable: cumsum of ones
    limit_dims = ctx.dims(1)
    start, delta = values[0], values[2]
    if start is not None and delta is not None and limit_dims is not None and \
            len(limit_dims) == 1 and isinstance(limit_dims[0], str) and \
            start.size == delta.size == 1 and start.reshape(()) == 0 and delta.reshape(()) == 1:
        ones = ctx.op("full", shape=[limit_dims[0]], value=1.0, dtype=ctx.input(0).dtype)
        return ctx.op("cumsum", ones, axis=0, exclusive=True)
    raise ctx.needs_constant("start, limit and delta must be constants (or arange(0, n, 1) of a symbolic "
                    "dim n): the output length depends on their values")


def _range(ctx: NodeContext, start: np.ndarray, limit: np.ndarray,
           delta: np.ndarray) -> np.ndarray:
    dtype = start.dtype
    if delta == 0:
        raise ctx.error("delta is 0")
    if dtype.kind in "iu":
        s, l, d = int(start), int(limit), int(delta)
        n = max(-((s - l) // d), 0)
        return (s + np.arange(n, dtype=INT64) * d).astype(dtype)
    s, l, d = float(start), float(limit), float(delta)
    n = max(math.ceil((l - s) / d), 0)
    return (s + np.arange(n, dtype=np.float64) * d).astype(dtype)


def _window(ctx: NodeContext, terms: tuple[float, ...]) -> Value:
    """A generalized cosine window sum_j (-1)^j terms[j] cos(2 pi j n / N) (N = size when
    periodic, size - 1 otherwise), folded to a constant."""
    size = int(_scalar(ctx, 0, "size"))
    if size < 0:
        raise ctx.error(f"size {size} is negative")
    dtype = _dtype_attr(ctx, "output_datatype", dt.f32)
    n_1 = size if ctx.attr("periodic", 1) else size - 1
    n = np.arange(size, dtype=np.float64)
    with np.errstate(all="ignore"):
        w = sum((-1) ** j * a * np.cos(2 * np.pi * j * n / n_1) for j, a in enumerate(terms))
    return ctx.const(np.asarray(w, np.float64).astype(dtype.np_dtype))


@converter("HannWindow", since=17)
def hann_window(ctx: NodeContext) -> Value:
    return _window(ctx, (0.5, 0.5))


@converter("HammingWindow", since=17)
def hamming_window(ctx: NodeContext) -> Value:
    return _window(ctx, (25 / 46, 21 / 46))


@converter("BlackmanWindow", since=17)
def blackman_window(ctx: NodeContext) -> Value:
    return _window(ctx, (0.42, 0.5, 0.08))


@converter("MelWeightMatrix", since=17)
def mel_weight_matrix(ctx: NodeContext) -> Value:
    num_mel_bins = int(_scalar(ctx, 0, "num_mel_bins"))
    dft_length = int(_scalar(ctx, 1, "dft_length"))
    sample_rate = _scalar(ctx, 2, "sample_rate").item()
    low, high = (float(_scalar(ctx, i, w)) for i, w in ((3, "lower_edge_hertz"),
                                                         (4, "upper_edge_hertz")))
    dtype = _dtype_attr(ctx, "output_datatype", dt.f32)
    if num_mel_bins < 1 or dft_length < 1 or sample_rate < 1:
        raise ctx.error("num_mel_bins, dft_length and sample_rate must be positive")
    # the ONNX reference's arithmetic, step by step (floor divisions make it sensitive to rounding)
    low_mel, high_mel = (2595 * np.log1p(f / 700) / np.log(10) for f in (low, high))
    step = (high_mel - low_mel) / (num_mel_bins + 2)
    mel = np.arange(num_mel_bins + 2) * step + low_mel
    hertz = 700 * np.expm1(mel / 2595 * np.log(10))
    bins = (((dft_length + 1) * hertz) // sample_rate).astype(INT64)
    out = np.zeros((dft_length // 2 + 1, num_mel_bins))
    for i in range(num_mel_bins):
        lo, mid, hi = (int(b) for b in bins[i:i + 3])
        if mid == lo:
            out[mid, i] = 1
        else:
            out[lo:mid + 1, i] = (np.arange(lo, mid + 1) - lo) / (mid - lo)
        if hi > mid:
            out[mid:hi, i] = (hi - np.arange(mid, hi)) / (hi - mid)
    return ctx.const(out.astype(dtype.np_dtype))


# --- DFT, STFT ----------------------------------------------------------------------------------


def _dft_weights(n_in: int, c_in: int, length: int, inverse: bool, onesided: bool) -> np.ndarray:
    """W[n, c, k, d] with out[..., k, d] = sum_{n,c} x[..., n, c] W[n, c, k, d]: the DFT of
    length `length` of a real (c_in 1) or complex (c_in 2) signal of n_in samples, which is
    truncated or zero-padded to `length` (as numpy.fft does)."""
    if inverse and onesided:  # irfft: one-sided spectrum -> real signal of `length` samples
        m = np.arange(min(n_in, length // 2 + 1))
        t = np.arange(length)
        coef = np.where((m == 0) | (2 * m == length), 1.0, 2.0)[:, None] / length
        theta = 2 * np.pi * np.outer(m, t) / length
        w = np.zeros((n_in, 2, length, 1))
        w[m, 0, :, 0] = coef * np.cos(theta)
        w[m, 1, :, 0] = -coef * np.sin(theta)
        return w[:, :c_in]
    k_out = length // 2 + 1 if onesided else length
    n = np.arange(min(n_in, length))
    theta = 2 * np.pi * np.outer(n, np.arange(k_out)) / length
    sign, scale = (1.0, 1.0 / length) if inverse else (-1.0, 1.0)
    cos, sin = scale * np.cos(theta), scale * sign * np.sin(theta)
    w = np.zeros((n_in, 2, k_out, 2))
    w[n, 0, :, 0], w[n, 0, :, 1] = cos, sin    # (re + i im)(cos + i sign sin)
    w[n, 1, :, 0], w[n, 1, :, 1] = -sin, cos
    return w[:, :c_in]


def _dft(ctx: NodeContext, x: Value, axis: int, length: Optional[int], inverse: bool,
         onesided: bool) -> Value:
    """DFT of x [..., c] (c = 1 real, 2 complex) along axis as one einsum with a constant."""
    r = x.type.rank
    if r < 2 or x.shape[-1] not in (1, 2):
        raise ctx.error(f"input must be [..., 1] (real) or [..., 2] (complex), got {x.type}")
    if not x.dtype.is_float:
        raise ctx.error(f"input must be a float tensor, got {x.dtype}")
    if not -r <= axis < r or axis % r == r - 1:
        raise ctx.error(f"axis {axis} must name a signal axis of {x.type} (not the last)")
    axis %= r
    n_in = x.shape[axis]
    if not isinstance(n_in, int):
        raise ctx.error(f"the signal dim {axis} of {x.type} must be static")
    if length is None:
        length = 2 * (n_in - 1) if inverse and onesided else n_in
    if length < 1:
        raise ctx.error(f"dft_length {length} must be positive")
    w = _dft_weights(n_in, x.shape[-1], length, inverse, onesided)  # type: ignore[arg-type]
    letters = [c for c in string.ascii_lowercase][: r - 2]
    lhs = letters[:axis] + ["N"] + letters[axis:] + ["C"]
    out = letters[:axis] + ["K"] + letters[axis:] + ["D"]
    equation = f"{''.join(lhs)},NCKD->{''.join(out)}"
    return ctx.op("einsum", x, ctx.const(w.astype(x.dtype.np_dtype)), equation=equation)


def _dft_length(ctx: NodeContext) -> Optional[int]:
    return int(_scalar(ctx, 1, "dft_length")) if ctx.has_input(1) else None


@converter("DFT", since=17)
def dft_v17(ctx: NodeContext) -> Value:
    return _dft(ctx, ctx.input(0), ctx.attr("axis", 1), _dft_length(ctx),
                bool(ctx.attr("inverse", 0)), bool(ctx.attr("onesided", 0)))


@converter("DFT", since=20)
def dft(ctx: NodeContext) -> Value:
    axis = int(_scalar(ctx, 2, "axis")) if ctx.has_input(2) else -2
    return _dft(ctx, ctx.input(0), axis, _dft_length(ctx), bool(ctx.attr("inverse", 0)),
                bool(ctx.attr("onesided", 0)))


@converter("STFT", since=17)
def stft(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    if x.type.rank != 3 or x.shape[-1] not in (1, 2) or not isinstance(x.shape[1], int):
        raise ctx.error(f"signal must be [batch, length, 1 or 2] with a static length, "
                        f"got {x.type}")
    step = int(_scalar(ctx, 1, "frame_step"))
    window = ctx.input(2) if ctx.has_input(2) else None
    if ctx.has_input(3):
        frame = int(_scalar(ctx, 3, "frame_length"))
    elif window is not None:
        if window.type.rank != 1 or not isinstance(window.shape[0], int):
            raise ctx.error(f"window must be 1-D and static, got {window.type}")
        frame = window.shape[0]
    else:
        frame = x.shape[1]
    if step < 1 or not 1 <= frame <= x.shape[1]:  # type: ignore[operator]
        raise ctx.error(f"frame_step {step} and frame_length {frame} do not fit a signal of "
                        f"length {x.shape[1]}")
    n_frames = 1 + (x.shape[1] - frame) // step  # type: ignore[operator]
    starts = np.arange(n_frames, dtype=INT64)[:, None] * step
    frames = ctx.op("gather", x, ctx.const(starts + np.arange(frame, dtype=INT64)), axis=1)
    if window is not None:
        if window.shape != (frame,):
            raise ctx.error(f"window {window.type} must have frame_length {frame} entries")
        frames = ctx.op("mul", frames, ctx.op("reshape", window, shape=[frame, 1]))
    return _dft(ctx, frames, 2, frame, False, bool(ctx.attr("onesided", 1)))


# --- ReverseSequence ----------------------------------------------------------------------------


@converter("ReverseSequence", since=10)
def reverse_sequence(ctx: NodeContext) -> Value:
    x, lens = ctx.input(0), ctx.input(1)
    t_ax, b_ax = ctx.attr("time_axis", 0), ctx.attr("batch_axis", 1)
    if {t_ax, b_ax} != {0, 1} or x.type.rank < 2:
        raise ctx.error(f"time_axis {t_ax} and batch_axis {b_ax} must be 0 and 1 (in some order) "
                        f"of an input of rank >= 2, got {x.type}")
    steps = x.shape[t_ax]
    if not isinstance(steps, int):
        raise ctx.error(f"the time dim of {x.type} must be static")
    # index along time: lens-1-t for t < lens, else t (kept in place)
    rest = [1] * (x.type.rank - 2)
    t_shape, b_shape = [1, 1] + rest, [1, 1] + rest
    t_shape[t_ax], b_shape[b_ax] = steps, x.shape[b_ax]  # type: ignore[call-overload]
    t = ctx.const(np.arange(steps, dtype=INT64).reshape(t_shape))
    if lens.dtype is not dt.i64:
        lens = ctx.op("cast", lens, to=dt.i64)
    lens = ctx.op("reshape", lens, shape=b_shape)
    back = ctx.op("sub", ctx.op("sub", lens, ctx.const(np.ones((), INT64))), t)
    index = ctx.op("where", ctx.op("lt", t, lens), back, t)
    index = ctx.op("broadcast_to", index, shape=list(x.shape))
    return ctx.op("gather_elements", x, index, axis=t_ax)


# --- ops with data-dependent output shapes: folded when the input is known ----------------------


@converter("NonZero", since=9)
def non_zero(ctx: NodeContext) -> Value:
    x = _data_dependent(ctx)
    return ctx.const(np.asarray(np.nonzero(x), dtype=INT64).reshape(x.ndim, -1))


@converter("Unique", since=11)
def unique(ctx: NodeContext) -> list[Value]:
    x = _data_dependent(ctx)
    axis = ctx.attr("axis")
    if axis is not None and not -x.ndim <= axis < x.ndim:
        raise ctx.error(f"attribute axis {axis} is out of range for rank {x.ndim}")
    y, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True,
                                          return_counts=True, axis=axis)
    if not ctx.attr("sorted", 1):  # the order of first occurrence
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        first, counts, inverse = first[order], counts[order], rank[inverse]
        y = np.take(x.reshape(-1) if axis is None else x, first, axis=0 if axis is None else axis)
    outs = [y, first, inverse.reshape(-1), counts]
    return [ctx.const(a if i == 0 else a.astype(INT64)) for i, a in enumerate(outs)]


@converter("Compress", since=9)
def compress(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    cond = _data_dependent(ctx, 1).reshape(-1)
    axis = ctx.attr("axis")
    if axis is None:
        x = ctx.op("reshape", x, shape=[-1])
        axis = 0
    if not -x.type.rank <= axis < x.type.rank:
        raise ctx.error(f"attribute axis {axis} is out of range for rank {x.type.rank}")
    d = x.shape[axis]
    if isinstance(d, int) and len(cond) > d:
        raise ctx.error(f"condition has {len(cond)} entries for a dim of size {d}")
    return ctx.op("gather", x, ctx.const(np.nonzero(cond)[0].astype(INT64)), axis=axis)
