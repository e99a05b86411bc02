"""Neural-network ops: convolution, transposed convolution, pooling and resize (ONNX semantics).

Layout is channels-first: x is [N, C, *spatial] with 1 to 3 spatial dims (global pools take any
number). `pads` lists the begins of every spatial axis, then the ends (ONNX order). Empty list
attributes mean the natural default: strides and dilations all 1, pads all 0, output_padding 0.

The NumPy meaning lives in `compiler.ir.reference.nn`; this module declares the ops, validates
shapes and attributes, and adapts the references (defaults, bf16) to the registry's calling form.

Symbolic dims: N (and C where groups == 1) may be symbols. A symbolic spatial dim is accepted only
where the output size equals the input size (stride 1 and padding that exactly cancels the kernel's
reach, e.g. a 1x1 kernel or "same" padding), since anything else would be a formula of the symbol.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from .. import dtypes as dt
from ..reference import nn as ref
from ..registry import attr, def_op
from ..types import Dim, TensorType, TypeInferenceError, format_dim
from ._common import require_dtype, same_dtype
from .linalg import merge_dim

FLOAT = ("float",)
NUMERIC = ("float", "int", "uint")
MAX_SPATIAL = 3  # what the code generators implement; ONNX allows more


# --- attribute and shape helpers ------------------------------------------------------------------


def _spatial_rank(op: str, x: TensorType, max_spatial: Optional[int] = MAX_SPATIAL) -> int:
    """Number of spatial dims of x [N, C, *spatial]; TypeInferenceError when out of range."""
    d = x.rank - 2
    if d < 1 or (max_spatial is not None and d > max_spatial):
        want = f"1 to {max_spatial}" if max_spatial is not None else "at least 1"
        raise TypeInferenceError(f"{op} input x must be [N, C, *spatial] with {want} spatial "
                                 f"dims, got {x}")
    return d


def _list_attr(op: str, key: str, values: Sequence[int], n: int, default: int, minimum: int,
               hint: str = "") -> list[int]:
    """A per-axis attribute with n values (empty: n copies of default), each >= minimum."""
    if not values:
        return [default] * n
    if len(values) != n:
        raise TypeInferenceError(f"{op} attribute '{key}' must have {n} values{hint}, got "
                                 f"{list(values)}")
    if any(v < minimum for v in values):
        raise TypeInferenceError(f"{op} attribute '{key}' values must be >= {minimum}, got "
                                 f"{list(values)}")
    return list(values)


def _window(op: str, d: int, strides: Sequence[int], pads: Sequence[int],
            dilations: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """Validated strides, pads (2d values, begins then ends) and dilations with defaults filled."""
    ss = _list_attr(op, "strides", strides, d, 1, 1, f" (one per spatial dim, {d})")
    ps = _list_attr(op, "pads", pads, 2 * d, 0, 0,
                    f" ([begins..., ends...] for {d} spatial dims)")
    ds = _list_attr(op, "dilations", dilations, d, 1, 1, f" (one per spatial dim, {d})")
    return ss, ps, ds


def _static_kernel(op: str, w: TensorType) -> list[int]:
    """The kernel's spatial dims, which must be static."""
    ks = list(w.shape[2:])
    if not all(isinstance(k, int) for k in ks):
        raise TypeInferenceError(f"{op} needs a static kernel size, got weight {w}")
    if any(k < 1 for k in ks):  # type: ignore[operator]
        raise TypeInferenceError(f"{op} kernel dims must be >= 1, got weight {w}")
    return ks  # type: ignore[return-value]


def _spatial_out(op: str, x: TensorType, d: int, static_fn: Callable[[int, int], int],
                 same_size: Callable[[int], bool], detail: Callable[[int], str]) -> list[Dim]:
    """Output spatial dims: static_fn(axis, size) for static sizes (ValueError when the output
    would be empty); a symbolic size passes through only where same_size(axis) says the output
    equals the input."""
    out: list[Dim] = []
    for ax in range(d):
        i = x.shape[2 + ax]
        if isinstance(i, str):
            if not same_size(ax):
                raise TypeInferenceError(
                    f"{op}: spatial dim {ax} is symbolic ({format_dim(i)}) but its output size "
                    f"would be a formula of it ({detail(ax)}); {op} needs a static spatial size "
                    "there (or stride 1 with pads that cancel the kernel's reach)")
            out.append(i)
            continue
        try:
            out.append(static_fn(ax, i))
        except ValueError:
            raise TypeInferenceError(f"{op}: spatial dim {ax} of size {i} gives an empty output "
                                     f"({detail(ax)})") from None
    return out


def _check_bias(op: str, bias: Optional[TensorType], m: Dim) -> Dim:
    """Check bias is [M]; returns the merged channel dim."""
    if bias is None:
        return m
    if bias.rank != 1:
        raise TypeInferenceError(f"{op} bias must have rank 1 [M], got {bias}")
    return merge_dim(op, f"output channels (weight gives {format_dim(m)}, bias {bias})", m,
                     bias.shape[0])


def _static_channels(op: str, groups: int, **dims: Dim) -> None:
    """With groups > 1 the channel arithmetic needs static counts."""
    for name, v in dims.items():
        if isinstance(v, str):
            raise TypeInferenceError(f"{op} with groups={groups} needs a static {name}, got "
                                     f"{format_dim(v)}")


def _via_f32_for_bf16(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Run fn in f32 for bf16 operands and round once: the references take NumPy floats only."""
    def wrapped(*xs: Optional[np.ndarray], **kw: object) -> np.ndarray:
        if xs[0] is None or xs[0].dtype != dt.bf16.np_dtype:
            return fn(*xs, **kw)
        wide = [None if x is None else x.astype(np.float32) for x in xs]
        return np.asarray(fn(*wide, **kw)).astype(dt.bf16.np_dtype)
    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


def _defaults(d: int, strides: Sequence[int], pads: Sequence[int],
              dilations: Sequence[int]) -> tuple[list[int], list[int], list[int]]:
    """Fill empty window attributes for the references (already validated by the type rule)."""
    return (list(strides) or [1] * d, list(pads) or [0] * (2 * d), list(dilations) or [1] * d)


def _conv_operands(op: str, x: TensorType, w: TensorType, bias: Optional[TensorType],
                   groups: int, w_layout: str) -> tuple[dt.DType, int]:
    """Checks conv and conv_transpose share: one float dtype for x, w and bias, x's spatial rank,
    w of x's rank (laid out as w_layout), groups >= 1. Returns the dtype and the spatial rank."""
    dtype = same_dtype(op, x, w, *([bias] if bias is not None else []))
    require_dtype(op, x, FLOAT)
    d = _spatial_rank(op, x)
    if w.rank != x.rank:
        raise TypeInferenceError(f"{op} weight must be {w_layout} with rank {x.rank} like x {x}, "
                                 f"got {w}")
    if groups < 1:
        raise TypeInferenceError(f"{op} attribute 'groups' must be >= 1, got {groups}")
    return dtype, d


# --- conv -----------------------------------------------------------------------------------------


def _conv_rule(x: TensorType, w: TensorType, bias: Optional[TensorType] = None, *,
               strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
               groups: int) -> TensorType:
    op = "conv"
    dtype, d = _conv_operands(op, x, w, bias, groups, "[M, C/groups, *kernel]")
    ss, ps, ds = _window(op, d, strides, pads, dilations)
    ks = _static_kernel(op, w)
    c, m, cg = x.shape[1], w.shape[0], w.shape[1]
    if groups == 1:
        merge_dim(op, f"input channels (x {x} dim 1, weight {w} dim 1)", c, cg)
    else:
        _static_channels(op, groups, **{"input channel count": c, "output channel count": m,
                                        "weight dim 1": cg})
        if c % groups or m % groups:  # type: ignore[operator]
            raise TypeInferenceError(f"conv groups={groups} must divide the input channels ({c}) "
                                     f"and the output channels ({m})")
        if cg * groups != c:  # type: ignore[operator]
            raise TypeInferenceError(f"conv weight dim 1 must be C/groups = {c}/{groups} = "
                                     f"{c // groups}, got weight {w}")  # type: ignore[operator]
    m = _check_bias(op, bias, m)

    def static(ax: int, i: int) -> int:
        return ref.conv_output_shape([i], [ks[ax]], [ss[ax]], [ps[ax], ps[d + ax]], [ds[ax]])[0]

    def same(ax: int) -> bool:
        return ss[ax] == 1 and ps[ax] + ps[d + ax] == ds[ax] * (ks[ax] - 1)

    def detail(ax: int) -> str:
        return (f"kernel {ks[ax]}, stride {ss[ax]}, pads {ps[ax]},{ps[d + ax]}, "
                f"dilation {ds[ax]}")

    return TensorType((x.shape[0], m, *_spatial_out(op, x, d, static, same, detail)), dtype)


@_via_f32_for_bf16
def _conv(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray] = None, *,
          strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
          groups: int) -> np.ndarray:
    s, p, dl = _defaults(x.ndim - 2, strides, pads, dilations)
    return ref.conv(x, w, bias, strides=s, pads=p, dilations=dl, groups=groups)


_WINDOW_ATTRS = {"strides": attr("ints", ()), "pads": attr("ints", ()),
                 "dilations": attr("ints", ())}

def_op("conv", ["x", "w", "bias?"], _conv_rule, _conv,
       attrs={**_WINDOW_ATTRS, "groups": attr("int", 1)}, traits=("pure", "contraction"),
       doc="ONNX Conv: x [N,C,*in], w [M,C/groups,*k], bias [M] -> [N,M,*out]; "
           "empty strides/pads/dilations mean 1/0/1")


# --- conv_transpose -------------------------------------------------------------------------------


def _conv_transpose_rule(x: TensorType, w: TensorType, bias: Optional[TensorType] = None, *,
                         strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
                         groups: int, output_padding: Sequence[int]) -> TensorType:
    op = "conv_transpose"
    dtype, d = _conv_operands(op, x, w, bias, groups, "[C, M/groups, *kernel]")
    ss, ps, ds = _window(op, d, strides, pads, dilations)
    ops = _list_attr(op, "output_padding", output_padding, d, 0, 0,
                     f" (one per spatial dim, {d})")
    for ax in range(d):
        if ops[ax] >= max(ss[ax], ds[ax]):
            raise TypeInferenceError(
                f"conv_transpose output_padding must be smaller than the stride or the dilation "
                f"of its axis, got output_padding={ops}, strides={ss}, dilations={ds}")
    ks = _static_kernel(op, w)
    c = merge_dim(op, f"input channels (x {x} dim 1, weight {w} dim 0)", x.shape[1], w.shape[0])
    mg = w.shape[1]
    if groups == 1:
        m: Dim = mg
    else:
        _static_channels(op, groups, **{"input channel count": c, "weight dim 1": mg})
        if c % groups:  # type: ignore[operator]
            raise TypeInferenceError(f"conv_transpose groups={groups} must divide the input "
                                     f"channels ({c})")
        m = mg * groups  # type: ignore[operator]
    m = _check_bias(op, bias, m)

    def static(ax: int, i: int) -> int:
        return ref.conv_transpose_output_shape([i], [ks[ax]], [ss[ax]], [ps[ax], ps[d + ax]],
                                               [ds[ax]], [ops[ax]])[0]

    def same(ax: int) -> bool:
        return ss[ax] == 1 and ops[ax] + ds[ax] * (ks[ax] - 1) == ps[ax] + ps[d + ax]

    def detail(ax: int) -> str:
        return (f"kernel {ks[ax]}, stride {ss[ax]}, pads {ps[ax]},{ps[d + ax]}, dilation "
                f"{ds[ax]}, output_padding {ops[ax]}")

    return TensorType((x.shape[0], m, *_spatial_out(op, x, d, static, same, detail)), dtype)


@_via_f32_for_bf16
def _conv_transpose(x: np.ndarray, w: np.ndarray, bias: Optional[np.ndarray] = None, *,
                    strides: Sequence[int], pads: Sequence[int], dilations: Sequence[int],
                    groups: int, output_padding: Sequence[int]) -> np.ndarray:
    d = x.ndim - 2
    s, p, dl = _defaults(d, strides, pads, dilations)
    return ref.conv_transpose(x, w, bias, strides=s, pads=p, dilations=dl, groups=groups,
                              output_padding=list(output_padding) or [0] * d)


def_op("conv_transpose", ["x", "w", "bias?"], _conv_transpose_rule, _conv_transpose,
       attrs={**_WINDOW_ATTRS, "groups": attr("int", 1), "output_padding": attr("ints", ())},
       traits=("pure", "contraction"),
       doc="ONNX ConvTranspose: x [N,C,*in], w [C,M/groups,*k], bias [M] -> [N,M,*out]; "
           "empty strides/pads/dilations/output_padding mean 1/0/1/0")


# --- max_pool, avg_pool ---------------------------------------------------------------------------


def _pool_shape(op: str, x: TensorType, kernel: Sequence[int], strides: Sequence[int],
                pads: Sequence[int], dilations: Sequence[int], ceil_mode: bool) -> TensorType:
    d = _spatial_rank(op, x)
    if not kernel:
        raise TypeInferenceError(f"{op} attribute 'kernel' must have {d} values, got []")
    ks = _list_attr(op, "kernel", kernel, d, 1, 1, f" (one per spatial dim, {d})")
    ss, ps, ds = _window(op, d, strides, pads, dilations)
    for ax in range(d):
        # A window lying wholly in padding would give -inf (max) or 0/0 (avg): reject such pads.
        reach = ds[ax] * (ks[ax] - 1) + 1
        if ps[ax] >= reach or ps[d + ax] >= reach:
            raise TypeInferenceError(f"{op} pads {list(pads)} must be smaller than the window "
                                     f"({reach}) on spatial dim {ax}")

    def static(ax: int, i: int) -> int:
        return ref.pool_output_shape([i], [ks[ax]], [ss[ax]], [ps[ax], ps[d + ax]], [ds[ax]],
                                     ceil_mode)[0]

    def same(ax: int) -> bool:
        return ss[ax] == 1 and ps[ax] + ps[d + ax] == ds[ax] * (ks[ax] - 1)

    def detail(ax: int) -> str:
        return (f"kernel {ks[ax]}, stride {ss[ax]}, pads {ps[ax]},{ps[d + ax]}, dilation "
                f"{ds[ax]}, ceil_mode {ceil_mode}")

    return x.with_shape((*x.shape[:2], *_spatial_out(op, x, d, static, same, detail)))


def _max_pool_rule(x: TensorType, *, kernel: Sequence[int], strides: Sequence[int],
                   pads: Sequence[int], dilations: Sequence[int], ceil_mode: bool) -> TensorType:
    require_dtype("max_pool", x, NUMERIC)
    return _pool_shape("max_pool", x, kernel, strides, pads, dilations, ceil_mode)


@_via_f32_for_bf16
def _max_pool(x: np.ndarray, *, kernel: Sequence[int], strides: Sequence[int],
              pads: Sequence[int], dilations: Sequence[int], ceil_mode: bool) -> np.ndarray:
    s, p, dl = _defaults(x.ndim - 2, strides, pads, dilations)
    return ref.max_pool(x, kernel=list(kernel), strides=s, pads=p, dilations=dl,
                        ceil_mode=ceil_mode)


def_op("max_pool", ["x"], _max_pool_rule, _max_pool,
       attrs={"kernel": attr("ints"), **_WINDOW_ATTRS, "ceil_mode": attr("bool", False)},
       traits=("pure",),
       doc="ONNX MaxPool (values only); empty strides/pads/dilations mean 1/0/1")


def _avg_pool_rule(x: TensorType, *, kernel: Sequence[int], strides: Sequence[int],
                   pads: Sequence[int], ceil_mode: bool, count_include_pad: bool) -> TensorType:
    require_dtype("avg_pool", x, FLOAT)
    return _pool_shape("avg_pool", x, kernel, strides, pads, (), ceil_mode)


@_via_f32_for_bf16
def _avg_pool(x: np.ndarray, *, kernel: Sequence[int], strides: Sequence[int],
              pads: Sequence[int], ceil_mode: bool, count_include_pad: bool) -> np.ndarray:
    s, p, _ = _defaults(x.ndim - 2, strides, pads, ())
    return ref.avg_pool(x, kernel=list(kernel), strides=s, pads=p, ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad)


def_op("avg_pool", ["x"], _avg_pool_rule, _avg_pool,
       attrs={"kernel": attr("ints"), "strides": attr("ints", ()), "pads": attr("ints", ()),
              "ceil_mode": attr("bool", False), "count_include_pad": attr("bool", False)},
       traits=("pure",),
       doc="ONNX AveragePool; empty strides/pads mean 1/0; padding counts if count_include_pad")


# --- global pools ---------------------------------------------------------------------------------


def _global_rule(op: str, kinds: Sequence[str]) -> Callable[[TensorType], TensorType]:
    def rule(x: TensorType) -> TensorType:
        require_dtype(op, x, kinds)
        d = _spatial_rank(op, x, max_spatial=None)
        return x.with_shape((*x.shape[:2], *([1] * d)))
    return rule


def_op("global_avg_pool", ["x"], _global_rule("global_avg_pool", FLOAT),
       _via_f32_for_bf16(ref.global_avg_pool), traits=("pure", "reduction"),
       doc="mean over all spatial dims of [N, C, *spatial], kept as size-1 dims")
def_op("global_max_pool", ["x"], _global_rule("global_max_pool", NUMERIC),
       _via_f32_for_bf16(ref.global_max_pool), traits=("pure", "reduction"),
       doc="max over all spatial dims of [N, C, *spatial], kept as size-1 dims")


# --- resize ---------------------------------------------------------------------------------------

_RESIZE_MODES = ("nearest", "linear", "cubic")
_COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                "asymmetric")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _resize_rule(x: TensorType, *, sizes: Sequence[Dim], mode: str,
                 coordinate_transformation_mode: str, nearest_mode: str, cubic_coeff_a: float,
                 exclude_outside: bool) -> TensorType:
    require_dtype("resize", x, NUMERIC if mode == "nearest" else FLOAT)
    if x.rank < 1:
        raise TypeInferenceError(f"resize input must have rank >= 1, got {x}")
    if len(sizes) != x.rank:
        raise TypeInferenceError(f"resize attribute 'sizes' must give the full output shape "
                                 f"({x.rank} dims for {x}), got {list(sizes)}")
    for ax, (n, i) in enumerate(zip(sizes, x.shape)):
        if isinstance(n, int) and n < 1:
            raise TypeInferenceError(f"resize sizes must be >= 1, got {n} for dim {ax} in "
                                     f"{list(sizes)}")
        if isinstance(n, str) and n != i:
            # a new symbol would not be bound by any input: only "keep this symbolic dim" works
            raise TypeInferenceError(f"resize sizes[{ax}] is ?{n} but the input dim is "
                                     f"{format_dim(i)}; a symbolic size must equal the input's")
    return x.with_shape(tuple(sizes))


@_via_f32_for_bf16
def _resize(x: np.ndarray, *, sizes: Sequence[Dim], mode: str,
            coordinate_transformation_mode: str, nearest_mode: str, cubic_coeff_a: float,
            exclude_outside: bool) -> np.ndarray:
    # symbolic entries keep their axis (the type rule checked that), so take its size from x
    concrete = [n if isinstance(n, int) else i for n, i in zip(sizes, x.shape)]
    return ref.resize(x, sizes=concrete, mode=mode,
                      coordinate_transformation_mode=coordinate_transformation_mode,
                      nearest_mode=nearest_mode, cubic_coeff_a=cubic_coeff_a,
                      exclude_outside=exclude_outside)


def_op("resize", ["x"], _resize_rule, _resize,
       attrs={"sizes": attr("dims"), "mode": attr("str", "nearest", choices=_RESIZE_MODES),
              "coordinate_transformation_mode": attr("str", "half_pixel", choices=_COORD_MODES),
              "nearest_mode": attr("str", "round_prefer_floor", choices=_NEAREST_MODES),
              "cubic_coeff_a": attr("float", -0.75), "exclude_outside": attr("bool", False)},
       traits=("pure",),
       doc="ONNX Resize to the full output shape `sizes` (nearest, linear or cubic)")
