"""NumPy reference implementations of ONNX neural-network operators.

These functions are the *definition* of the corresponding ops for the compiler's reference
interpreter, so they favour clarity and exact ONNX semantics, while staying vectorized enough
to interpret whole networks (convolutions use a strided im2col view plus one batched matmul,
pools loop over kernel taps only, resize works one axis at a time).

Conventions shared by all functions:

* Layout is NCHW-style: ``x`` has shape ``[N, C, *spatial]`` with ``d = x.ndim - 2 >= 1``
  spatial dims.
* ``pads`` uses ONNX order ``[begin_0, ..., begin_{d-1}, end_0, ..., end_{d-1}]`` and must be
  non-negative.
* Outputs keep the input dtype. float16 inputs are accumulated in float32 and cast back at the
  end; float32 accumulates in float32 and float64 in float64.
* Invalid arguments raise ``ValueError`` with a message naming the argument and its values.

Only NumPy is used; nothing here imports from the rest of ``compiler``.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "avg_pool",
    "conv",
    "conv_output_shape",
    "conv_transpose",
    "conv_transpose_output_shape",
    "global_avg_pool",
    "global_lp_pool",
    "global_max_pool",
    "lp_pool",
    "max_pool",
    "pool_output_shape",
    "resize",
]

_COORD_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
)
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
_RESIZE_MODES = ("nearest", "linear", "cubic")


# --------------------------------------------------------------------------------------------
# Argument validation helpers
# --------------------------------------------------------------------------------------------


def _int_list(name: str, values: Sequence[int], length: int, minimum: int) -> list[int]:
    """Convert ``values`` to a list of ints of the given length, each ``>= minimum``."""
    try:
        out = [operator.index(v) for v in values]
    except TypeError:
        raise ValueError(f"{name} must be a sequence of integers, got {values!r}") from None
    if len(out) != length:
        raise ValueError(f"{name} must have {length} values, got {len(out)}: {out}")
    bad = [v for v in out if v < minimum]
    if bad:
        raise ValueError(f"{name} values must be >= {minimum}, got {out}")
    return out


def _spatial_args(
    in_spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
) -> tuple[list[int], list[int], list[int], list[int], list[int], list[int]]:
    """Validate the common window arguments; returns (in, k, s, pad_begin, pad_end, dil)."""
    try:
        d = len(in_spatial)
    except TypeError:
        raise ValueError(f"in_spatial must be a sequence of ints, got {in_spatial!r}") from None
    if d < 1:
        raise ValueError(f"need at least one spatial dim, got in_spatial={list(in_spatial)}")
    ins = _int_list("in_spatial", in_spatial, d, 0)
    ks = _int_list("kernel", kernel, d, 1)
    ss = _int_list("strides", strides, d, 1)
    ps = _int_list("pads", pads, 2 * d, 0)
    ds = _int_list("dilations", dilations, d, 1)
    return ins, ks, ss, ps[:d], ps[d:], ds


def _check_x(x: np.ndarray, name: str = "x", *, floating: bool = True) -> None:
    """Require an array with at least one spatial dim (and a float dtype if ``floating``)."""
    if x.ndim < 3:
        raise ValueError(f"{name} must have shape [N, C, *spatial] (ndim >= 3), got {x.shape}")
    if floating and not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must have a floating dtype, got {x.dtype}")


def _acc_dtype(dtype: np.dtype) -> np.dtype:
    """Accumulation dtype: float64 stays float64, smaller floats accumulate in float32."""
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def _positive_output(name: str, out: list[int], detail: str) -> list[int]:
    if any(o < 1 for o in out):
        raise ValueError(f"{name}: computed output spatial shape {out} is empty ({detail})")
    return out


def _tap_slices(
    taps: Sequence[int], out: Sequence[int], strides: Sequence[int], dilations: Sequence[int]
) -> tuple[slice, ...]:
    """Slices selecting, for one kernel tap, the input positions of every output pixel."""
    return tuple(
        slice(t * dl, t * dl + (o - 1) * s + 1, s)
        for t, o, s, dl in zip(taps, out, strides, dilations)
    )


# --------------------------------------------------------------------------------------------
# Shape arithmetic
# --------------------------------------------------------------------------------------------


def conv_output_shape(
    in_spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
) -> list[int]:
    """Spatial output shape of an ONNX Conv: ``floor((i + pb + pe - dil*(k-1) - 1) / s) + 1``."""
    ins, ks, ss, pb, pe, ds = _spatial_args(in_spatial, kernel, strides, pads, dilations)
    out = [
        (i + b + e - dl * (k - 1) - 1) // s + 1
        for i, k, s, b, e, dl in zip(ins, ks, ss, pb, pe, ds)
    ]
    return _positive_output(
        "conv_output_shape", out,
        f"in_spatial={ins}, kernel={ks}, pads={pb + pe}, dilations={ds}",
    )


def conv_transpose_output_shape(
    in_spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    output_padding: Sequence[int],
) -> list[int]:
    """Spatial output shape of an ONNX ConvTranspose with explicit pads.

    ``s * (i - 1) + output_padding + dil * (k - 1) + 1 - pb - pe``. As in PyTorch, each
    ``output_padding`` must be smaller than the stride or the dilation of its axis.
    """
    ins, ks, ss, pb, pe, ds = _spatial_args(in_spatial, kernel, strides, pads, dilations)
    ops = _int_list("output_padding", output_padding, len(ins), 0)
    for op, s, dl in zip(ops, ss, ds):
        if op >= max(s, dl):
            raise ValueError(
                f"output_padding must be smaller than stride or dilation on each axis, got "
                f"output_padding={ops}, strides={ss}, dilations={ds}"
            )
    out = [
        s * (i - 1) + op + dl * (k - 1) + 1 - b - e
        for i, k, s, b, e, dl, op in zip(ins, ks, ss, pb, pe, ds, ops)
    ]
    return _positive_output(
        "conv_transpose_output_shape", out,
        f"in_spatial={ins}, kernel={ks}, strides={ss}, pads={pb + pe}, dilations={ds}, "
        f"output_padding={ops}",
    )


def pool_output_shape(
    in_spatial: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool,
) -> list[int]:
    """Spatial output shape of ONNX MaxPool/AveragePool/LpPool.

    With ``ceil_mode`` the division is rounded up, but (PyTorch / ONNX >= 19 rule) a last
    window that would start in the right padding is dropped, so every window starts inside the
    input or the left padding.
    """
    ins, ks, ss, pb, pe, ds = _spatial_args(in_spatial, kernel, strides, pads, dilations)
    out = []
    for i, k, s, b, e, dl in zip(ins, ks, ss, pb, pe, ds):
        span = i + b + e - dl * (k - 1) - 1
        if span < 0:
            out.append(0)
            continue
        if ceil_mode:
            o = -(-span // s) + 1
            if (o - 1) * s >= i + b:
                o -= 1
        else:
            o = span // s + 1
        out.append(o)
    return _positive_output(
        "pool_output_shape", out,
        f"in_spatial={ins}, kernel={ks}, pads={pb + pe}, dilations={ds}",
    )


# --------------------------------------------------------------------------------------------
# Convolutions
# --------------------------------------------------------------------------------------------


def _check_weights(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, n_out: int
) -> None:
    if w.ndim != x.ndim:
        raise ValueError(
            f"w must have ndim {x.ndim} to match x of shape {x.shape}, got shape {w.shape}"
        )
    if w.dtype != x.dtype:
        raise ValueError(f"w dtype {w.dtype} differs from x dtype {x.dtype}")
    if bias is not None:
        if bias.shape != (n_out,):
            raise ValueError(f"bias must have shape ({n_out},), got {bias.shape}")
        if bias.dtype != x.dtype:
            raise ValueError(f"bias dtype {bias.dtype} differs from x dtype {x.dtype}")


def _check_groups(groups: int, channels: int, n_out: int | None) -> int:
    try:
        g = operator.index(groups)
    except TypeError:
        raise ValueError(f"groups must be an integer, got {groups!r}") from None
    if g < 1 or channels % g or (n_out is not None and n_out % g):
        what = f"input channels ({channels})"
        if n_out is not None:
            what += f" and output channels ({n_out})"
        raise ValueError(f"groups must be >= 1 and divide the {what}, got groups={groups}")
    return g


def conv(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    groups: int,
) -> np.ndarray:
    """ONNX Conv: ``x [N, C, *in]`` with ``w [M, C/groups, *kernel]`` -> ``[N, M, *out]``."""
    x = np.asarray(x)
    w = np.asarray(w)
    bias = None if bias is None else np.asarray(bias)
    _check_x(x)
    n, c = x.shape[:2]
    m = w.shape[0] if w.ndim else 0
    _check_weights(x, w, bias, m)
    g = _check_groups(groups, c, m)
    cg, mg = c // g, m // g
    if w.shape[1] != cg:
        raise ValueError(
            f"w.shape[1] must equal C/groups = {c}/{g} = {cg}, got w.shape={w.shape}"
        )
    d = x.ndim - 2
    kernel = list(w.shape[2:])
    out = conv_output_shape(x.shape[2:], kernel, strides, pads, dilations)
    ss, ds = list(strides), list(dilations)
    acc = _acc_dtype(x.dtype)

    xp = np.pad(x.astype(acc, copy=False), [(0, 0), (0, 0)] + list(zip(pads[:d], pads[d:])))
    window = [dl * (k - 1) + 1 for k, dl in zip(kernel, ds)]
    view = sliding_window_view(xp, window, axis=tuple(range(2, 2 + d)))
    view = view[
        (slice(None), slice(None))
        + tuple(slice(None, (o - 1) * s + 1, s) for o, s in zip(out, ss))
        + tuple(slice(None, None, dl) for dl in ds)
    ]  # [N, C, *out, *kernel]
    n_pix = int(np.prod(out))
    n_tap = int(np.prod(kernel))
    view = view.reshape(n, g, cg, *out, *kernel)
    perm = (0, 1, *range(3, 3 + d), 2, *range(3 + d, 3 + 2 * d))
    cols = view.transpose(perm).reshape(n, g, n_pix, cg * n_tap)  # im2col (one copy)
    wm = w.astype(acc, copy=False).reshape(g, mg, cg * n_tap)
    y = np.matmul(cols, wm.transpose(0, 2, 1))  # [N, G, P, M/G]
    y = y.transpose(0, 1, 3, 2).reshape(n, m, *out)
    if bias is not None:
        y = y + bias.astype(acc).reshape(m, *([1] * d))
    return np.ascontiguousarray(y.astype(x.dtype, copy=False))


def conv_transpose(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    groups: int,
    output_padding: Sequence[int],
) -> np.ndarray:
    """ONNX ConvTranspose: ``x [N, C, *in]`` with ``w [C, M/groups, *kernel]`` -> ``[N, M, *out]``.

    Computed as a matmul followed by a scatter-add (col2im) over kernel taps into the full
    (unpadded) output, which is then cropped by ``pads``; ``output_padding`` extends the end.
    The ``output_shape`` attribute is not handled here: callers resolve it into ``pads``.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    bias = None if bias is None else np.asarray(bias)
    _check_x(x)
    n, c = x.shape[:2]
    if w.ndim != x.ndim:
        raise ValueError(
            f"w must have ndim {x.ndim} to match x of shape {x.shape}, got shape {w.shape}"
        )
    if w.shape[0] != c:
        raise ValueError(f"w.shape[0] must equal C = {c} (ONNX layout), got w.shape={w.shape}")
    g = _check_groups(groups, c, None)
    mg = w.shape[1]
    m = mg * g
    _check_weights(x, w, bias, m)
    cg = c // g
    d = x.ndim - 2
    in_sp = list(x.shape[2:])
    kernel = list(w.shape[2:])
    out = conv_transpose_output_shape(in_sp, kernel, strides, pads, dilations, output_padding)
    ss, ds = list(strides), list(dilations)
    pb = list(pads[:d])
    acc = _acc_dtype(x.dtype)

    n_pix = int(np.prod(in_sp))
    xm = x.astype(acc, copy=False).reshape(n, g, cg, n_pix).transpose(0, 1, 3, 2)
    wm = w.astype(acc, copy=False).reshape(g, cg, -1)
    cols = np.matmul(xm, wm)  # [N, G, P, M/G * K]
    cols = cols.reshape(n, g, *in_sp, mg, *kernel)
    perm = (0, 1, 2 + d, *range(3 + d, 3 + 2 * d), *range(2, 2 + d))
    cols = np.ascontiguousarray(cols.transpose(perm))  # [N, G, M/G, *kernel, *in]

    full_len = [s * (i - 1) + dl * (k - 1) + 1 for i, k, s, dl in zip(in_sp, kernel, ss, ds)]
    full_len = [max(f, b + o) for f, b, o in zip(full_len, pb, out)]  # room for output_padding
    full = np.zeros((n, g, mg, *full_len), dtype=acc)
    lead = (slice(None),) * 3
    for taps in itertools.product(*(range(k) for k in kernel)):
        full[lead + _tap_slices(taps, in_sp, ss, ds)] += cols[lead + taps]
    y = full[lead + tuple(slice(b, b + o) for b, o in zip(pb, out))].reshape(n, m, *out)
    if bias is not None:
        y = y + bias.astype(acc).reshape(m, *([1] * d))
    return np.ascontiguousarray(y.astype(x.dtype, copy=False))


# --------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------


def _pool_setup(
    x: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int] | None,
    ceil_mode: bool,
    fill: float | int,
    dtype: np.dtype,
) -> tuple[np.ndarray, list[int], list[int], list[int]]:
    """Pad ``x`` for pooling; returns (padded x, out shape, strides, dilations)."""
    d = x.ndim - 2
    dils = [1] * d if dilations is None else dilations
    out = pool_output_shape(x.shape[2:], kernel, strides, pads, dils, ceil_mode)
    ks, ss, ds = list(kernel), list(strides), list(dils)
    pb = list(pads[:d])
    # Only pad what the windows read: ceil_mode may need more than pe, truncation may need less.
    need = [(o - 1) * s + dl * (k - 1) + 1 for o, s, dl, k in zip(out, ss, ds, ks)]
    end = [max(0, nd - b - i) for nd, b, i in zip(need, pb, x.shape[2:])]
    xp = np.pad(
        x.astype(dtype, copy=False),
        [(0, 0), (0, 0)] + list(zip(pb, end)),
        constant_values=fill,
    )
    return xp, out, ss, ds


def _check_pool_x(x: np.ndarray, kernel: Sequence[int], *, floating: bool = True) -> None:
    _check_x(x, floating=floating)
    try:
        k = len(kernel)
    except TypeError:
        raise ValueError(f"kernel must be a sequence of ints, got {kernel!r}") from None
    if k != x.ndim - 2:
        raise ValueError(
            f"kernel must have {x.ndim - 2} values for x of shape {x.shape}, got {list(kernel)}"
        )


def max_pool(
    x: np.ndarray,
    *,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool,
) -> np.ndarray:
    """ONNX MaxPool (values only); padding never wins (-inf, or the dtype minimum for ints).

    NaNs propagate. The optional Indices output and ``storage_order`` are not implemented.
    """
    x = np.asarray(x)
    _check_pool_x(x, kernel, floating=False)
    if np.issubdtype(x.dtype, np.floating):
        fill: float | int = -np.inf
    elif np.issubdtype(x.dtype, np.integer):
        fill = int(np.iinfo(x.dtype).min)
    else:
        raise ValueError(f"x must have a floating or integer dtype, got {x.dtype}")
    xp, out, ss, ds = _pool_setup(x, kernel, strides, pads, dilations, ceil_mode, fill, x.dtype)
    lead = (slice(None),) * 2
    y = None
    for taps in itertools.product(*(range(k) for k in kernel)):
        v = xp[lead + _tap_slices(taps, out, ss, ds)]
        y = v.copy() if y is None else np.maximum(y, v, out=y)
    return y


def _window_counts(out_len: int, k: int, s: int, dl: int, pb: int, lo: int, hi: int) -> np.ndarray:
    """Per output position, how many taps of the window fall in ``[lo, hi)`` (input coords)."""
    pos = np.arange(out_len)[:, None] * s + np.arange(k)[None, :] * dl - pb
    return ((pos >= lo) & (pos < hi)).sum(axis=1)


def avg_pool(
    x: np.ndarray,
    *,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    ceil_mode: bool,
    count_include_pad: bool,
    dilations: Sequence[int] | None = None,
) -> np.ndarray:
    """ONNX AveragePool (PyTorch avg_pool semantics).

    The divisor counts the taps inside the input, plus those inside the explicit padding when
    ``count_include_pad``; taps past the padded input (``ceil_mode``'s extra reach) never
    count. A window with nothing to count yields NaN. ``dilations`` defaults to all ones.
    """
    x = np.asarray(x)
    _check_pool_x(x, kernel)
    acc = _acc_dtype(x.dtype)
    xp, out, ss, ds = _pool_setup(x, kernel, strides, pads, dilations, ceil_mode, 0, acc)
    d = x.ndim - 2
    lead = (slice(None),) * 2
    total = np.zeros(xp.shape[:2] + tuple(out), dtype=acc)
    for taps in itertools.product(*(range(k) for k in kernel)):
        total += xp[lead + _tap_slices(taps, out, ss, ds)]
    divisor = np.ones((), dtype=np.int64)
    for ax in range(d):
        i, b, e = x.shape[2 + ax], pads[ax], pads[d + ax]
        lo, hi = (-b, i + e) if count_include_pad else (0, i)
        cnt = _window_counts(out[ax], kernel[ax], ss[ax], ds[ax], b, lo, hi)
        divisor = np.multiply.outer(divisor, cnt)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = total / divisor.astype(acc)
    return y.astype(x.dtype, copy=False)


def lp_pool(
    x: np.ndarray,
    *,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    p: float = 2,
    dilations: Sequence[int] | None = None,
    ceil_mode: bool = False,
) -> np.ndarray:
    """ONNX LpPool: ``(sum over window of |x|**p) ** (1/p)``; padding contributes zero."""
    x = np.asarray(x)
    _check_pool_x(x, kernel)
    if not np.isfinite(p) or p <= 0:
        raise ValueError(f"p must be a finite positive number, got p={p!r}")
    acc = _acc_dtype(x.dtype)
    xp, out, ss, ds = _pool_setup(x, kernel, strides, pads, dilations, ceil_mode, 0, acc)
    xp = np.abs(xp) if p == 1 else (np.square(xp) if p == 2 else np.abs(xp) ** p)
    lead = (slice(None),) * 2
    total = np.zeros(xp.shape[:2] + tuple(out), dtype=acc)
    for taps in itertools.product(*(range(k) for k in kernel)):
        total += xp[lead + _tap_slices(taps, out, ss, ds)]
    y = total if p == 1 else (np.sqrt(total) if p == 2 else total ** (1.0 / p))
    return y.astype(x.dtype, copy=False)


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """ONNX GlobalAveragePool: mean over all spatial dims, kept as size-1 dims."""
    x = np.asarray(x)
    _check_x(x)
    axes = tuple(range(2, x.ndim))
    return np.mean(x, axis=axes, keepdims=True, dtype=_acc_dtype(x.dtype)).astype(x.dtype)


def global_max_pool(x: np.ndarray) -> np.ndarray:
    """ONNX GlobalMaxPool: max over all spatial dims, kept as size-1 dims."""
    x = np.asarray(x)
    _check_x(x, floating=False)
    return np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)


def global_lp_pool(x: np.ndarray, p: float = 2) -> np.ndarray:
    """ONNX GlobalLpPool: ``(sum |x|**p) ** (1/p)`` over all spatial dims, kept as size-1."""
    x = np.asarray(x)
    _check_x(x)
    if not np.isfinite(p) or p <= 0:
        raise ValueError(f"p must be a finite positive number, got p={p!r}")
    acc = _acc_dtype(x.dtype)
    a = np.abs(x.astype(acc, copy=False)) ** p
    y = np.sum(a, axis=tuple(range(2, x.ndim)), keepdims=True) ** (1.0 / p)
    return y.astype(x.dtype, copy=False)


# --------------------------------------------------------------------------------------------
# Resize
# --------------------------------------------------------------------------------------------


def _source_coords(n_in: int, n_out: int, scale: float | None, mode: str) -> np.ndarray:
    """Input coordinate of each output index along one axis (ONNX coordinate transform).

    With ``scale=None`` the scale is exactly ``n_out / n_in`` and each coordinate is computed
    as one division of exact integers, so integer and half-integer positions are exact (which
    matters for nearest rounding). Otherwise the given float scale is used as in ONNX.
    """
    xo = np.arange(n_out, dtype=np.float64)
    if mode == "align_corners":
        if n_out == 1:
            return np.zeros(1)
        return xo * (n_in - 1) / (n_out - 1)
    if mode == "pytorch_half_pixel" and n_out == 1:
        return np.zeros(1)
    if scale is None:
        if mode == "asymmetric":
            return xo * n_in / n_out
        # half_pixel, pytorch_half_pixel, and half_pixel_symmetric (whose offset is 0 here)
        return ((2 * xo + 1) * n_in - n_out) / (2 * n_out)
    if mode == "asymmetric":
        return xo / scale
    coords = (xo + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = n_out / (scale * n_in)
        coords = coords + (n_in / 2) * (1 - adjustment)
    return coords


def _cubic_weights(r: np.ndarray, a: float) -> list[np.ndarray]:
    """Keys cubic weights for taps at offsets -1, 0, 1, 2 from ``base`` (ratio ``r``)."""
    def near(t: np.ndarray) -> np.ndarray:  # |t| <= 1
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t: np.ndarray) -> np.ndarray:  # 1 < |t| < 2
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    return [far(r + 1), near(r), near(1 - r), far(2 - r)]


def _resize_axis(
    y: np.ndarray,
    axis: int,
    n_out: int,
    scale: float | None,
    mode: str,
    coord_mode: str,
    nearest_mode: str,
    cubic_coeff_a: float,
    exclude_outside: bool,
) -> np.ndarray:
    """Resize ``y`` along one axis."""
    n_in = y.shape[axis]
    xs = _source_coords(n_in, n_out, scale, coord_mode)
    if mode == "nearest":
        if nearest_mode == "round_prefer_floor":
            idx = np.ceil(xs - 0.5)
        elif nearest_mode == "round_prefer_ceil":
            idx = np.floor(xs + 0.5)
        elif nearest_mode == "floor":
            idx = np.floor(xs)
        else:
            idx = np.ceil(xs)
        return np.take(y, np.clip(idx.astype(np.int64), 0, n_in - 1), axis=axis)

    # ONNX picks the neighbours left-biased: base = ceil(x) - 1 and ratio in (0, 1].
    base = np.ceil(xs).astype(np.int64) - 1
    ratio = xs - base
    if mode == "linear":
        offsets, weights = [0, 1], [1 - ratio, ratio]
    else:
        offsets, weights = [-1, 0, 1, 2], _cubic_weights(ratio, cubic_coeff_a)
    idxs = [base + o for o in offsets]
    if exclude_outside:
        weights = [np.where((i >= 0) & (i < n_in), wt, 0.0) for i, wt in zip(idxs, weights)]
        norm = sum(weights)
        weights = [wt / norm for wt in weights]
    bshape = [1] * y.ndim
    bshape[axis] = n_out
    result = None
    for i, wt in zip(idxs, weights):
        term = np.take(y, np.clip(i, 0, n_in - 1), axis=axis) * wt.astype(y.dtype).reshape(bshape)
        result = term if result is None else result + term
    return result


def resize(
    x: np.ndarray,
    *,
    sizes: Sequence[int] | None = None,
    mode: str = "nearest",
    coordinate_transformation_mode: str = "half_pixel",
    nearest_mode: str = "round_prefer_floor",
    cubic_coeff_a: float = -0.75,
    exclude_outside: bool = False,
    extrapolation_value: float = 0.0,
    scales: Sequence[float] | None = None,
) -> np.ndarray:
    """ONNX Resize (opset 11-19 semantics) for modes nearest, linear and cubic.

    Exactly one of ``sizes`` (full output shape) or ``scales`` (one factor per axis; output
    length ``floor(n * scale)``) must be given. Any axis may be resized; linear / cubic are
    separable, so n-linear / n-cubic interpolation is done one axis at a time. Neighbour
    indices are clamped to the input (edge replication); ``exclude_outside`` drops (and
    renormalizes away) out-of-range cubic/linear taps. ``extrapolation_value`` only applies to
    ``tf_crop_and_resize``, which is not implemented (nor are ``antialias``, ``axes``, ``roi``
    and ``keep_aspect_ratio_policy``).
    """
    x = np.asarray(x)
    if x.ndim < 1:
        raise ValueError(f"x must have at least one dim, got shape {x.shape}")
    if mode not in _RESIZE_MODES:
        raise ValueError(f"mode must be one of {_RESIZE_MODES}, got {mode!r}")
    if coordinate_transformation_mode not in _COORD_MODES:
        raise ValueError(
            f"coordinate_transformation_mode must be one of {_COORD_MODES}, got "
            f"{coordinate_transformation_mode!r}"
            + (" (not implemented)" if coordinate_transformation_mode == "tf_crop_and_resize"
               else "")
        )
    if nearest_mode not in _NEAREST_MODES:
        raise ValueError(f"nearest_mode must be one of {_NEAREST_MODES}, got {nearest_mode!r}")
    if mode != "nearest" and not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"mode {mode!r} needs a floating x, got dtype {x.dtype}")
    if (sizes is None) == (scales is None):
        raise ValueError(
            f"exactly one of sizes and scales must be given, got sizes={sizes!r}, "
            f"scales={scales!r}"
        )
    if sizes is not None:
        out_shape = _int_list("sizes", sizes, x.ndim, 1)
        axis_scales: list[float | None] = [None] * x.ndim
        todo = [ax for ax in range(x.ndim) if out_shape[ax] != x.shape[ax]]
    else:
        try:
            sc = [float(s) for s in scales]  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise ValueError(f"scales must be a sequence of numbers, got {scales!r}") from None
        if len(sc) != x.ndim or any(not np.isfinite(s) or s <= 0 for s in sc):
            raise ValueError(f"scales must have {x.ndim} positive values, got {sc}")
        out_shape = [int(np.floor(n * s)) for n, s in zip(x.shape, sc)]
        if any(o < 1 for o in out_shape):
            raise ValueError(f"scales {sc} give an empty output shape {out_shape}")
        axis_scales = list(sc)
        todo = [ax for ax in range(x.ndim) if sc[ax] != 1.0]
    if any(x.shape[ax] == 0 for ax in todo):
        raise ValueError(f"cannot resize an empty axis of x with shape {x.shape}")

    y = x if mode == "nearest" else x.astype(_acc_dtype(x.dtype), copy=False)
    for ax in todo:
        y = _resize_axis(
            y, ax, out_shape[ax], axis_scales[ax], mode, coordinate_transformation_mode,
            nearest_mode, float(cubic_coeff_a), bool(exclude_outside),
        )
    return np.ascontiguousarray(y.astype(x.dtype, copy=False))
