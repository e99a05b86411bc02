"""A StableHLO text builder: typed SSA values and one method per StableHLO op.

`Emitter` writes ops in MLIR's generic form (`%3 = "stablehlo.add"(%1, %2) : (...) -> ...`),
which every StableHLO version parses the same way, and tracks each value's static shape and IR
dtype so that lowering rules read like NumPy: `e.add(x, 1.0)` broadcasts (NumPy rules) and turns
the Python number into a constant of x's dtype. Regions (reduce bodies, comparators) are built
by nested emitters that share the value counter.

Only `stablehlo`, `chlo` (erf and the inverse trigonometric/hyperbolic functions, which XLA
expands exactly as it does for JAX) and `func` ops are written.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from compiler.ir import dtypes as dt
from compiler.ir.dtypes import DType

ELEMENT_TYPES: dict[str, str] = {
    "bool": "i1", "i8": "i8", "u8": "ui8", "i16": "i16", "u16": "ui16", "i32": "i32",
    "u32": "ui32", "i64": "i64", "u64": "ui64", "f16": "f16", "bf16": "bf16", "f32": "f32",
    "f64": "f64", "f8e4m3fn": "f8E4M3FN", "f8e5m2": "f8E5M2", "f8e4m3fnuz": "f8E4M3FNUZ",
    "f8e5m2fnuz": "f8E5M2FNUZ", "f8e8m0": "f8E8M0FNU", "f4e2m1": "f4E2M1FN", "i4": "i4",
    "u4": "ui4", "i2": "i2", "u2": "ui2",
}


class LoweringError(ValueError):
    """An op (or an op with these attributes) has no StableHLO lowering; says why."""


def tensor_type(shape: Sequence[int], dtype: DType) -> str:
    """MLIR tensor type text: tensor<2x3xf32>, tensor<f32> for a scalar."""
    dims = "".join(f"{d}x" for d in shape)
    return f"tensor<{dims}{ELEMENT_TYPES[dtype.name]}>"


@dataclass(frozen=True)
class Val:
    """An SSA value of the StableHLO function: its name and static type."""

    name: str
    shape: tuple[int, ...]
    dtype: DType

    @property
    def type(self) -> str:
        return tensor_type(self.shape, self.dtype)

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)


Operand = Union[Val, int, float, bool, np.ndarray]


def i64_array(values: Sequence[int]) -> str:
    """A dense i64 array attribute: array<i64: 1, 2>."""
    vals = ", ".join(str(int(v)) for v in values)
    return f"array<i64: {vals}>" if vals else "array<i64>"


def _ints(values: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def float_literal(v: float, dtype: DType) -> str:
    """A float element as MLIR reads it back exactly: decimal when finite, else the bit pattern."""
    v = float(v)
    if math.isfinite(v):
        text = repr(v)  # MLIR wants a '.' in every float literal: 1e-05 -> 1.0e-05
        return text if "." in text else text.replace("e", ".0e", 1)
    bits = np.asarray(v).astype(dtype.np_dtype).view(f"u{dtype.np_dtype.itemsize}")
    width = dtype.np_dtype.itemsize * 2
    return f"0x{int(bits):0{width}X}"


def dense_literal(array: np.ndarray, dtype: DType) -> str:
    """dense<...> for an array: a splat when all elements are equal, else nested lists of
    decimal elements (floats exact: repr of a float of the array's own precision)."""
    a = np.asarray(array)
    flat = a.reshape(-1)
    if flat.size and (flat == flat[0]).all() | _all_nan(flat):
        return f"dense<{_element(flat[0], dtype)}>"
    if flat.size == 0:
        return "dense<>"
    if dtype.name in _HEX_DTYPES and flat.size > 16:  # raw little-endian bytes: exact, compact
        raw = np.ascontiguousarray(a.astype(dtype.np_dtype)).tobytes()
        return f'dense<"0x{raw.hex().upper()}">'

    def nest(x: np.ndarray) -> str:
        if x.ndim == 0:
            return _element(x[()], dtype)
        return "[" + ", ".join(nest(s) for s in x) + "]"
    return f"dense<{nest(a)}>"


_HEX_DTYPES = frozenset({"f16", "bf16", "f32", "f64", "i8", "u8", "i16", "u16", "i32", "u32", "i64",
                         "u64"})


def _all_nan(flat: np.ndarray) -> bool:
    try:
        return bool(np.isnan(flat.astype(np.float64)).all())
    except (TypeError, ValueError):
        return False


def _element(v: Any, dtype: DType) -> str:
    if dtype.is_bool:
        return "true" if bool(v) else "false"
    if dtype.is_integral:
        return str(int(v))
    return float_literal(float(np.asarray(v).astype(np.float64)), dtype)


def _mlir_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


class Emitter:
    """Writes the ops of one function body (or region). See the module docstring."""

    def __init__(self, counter: Optional[Iterator[int]] = None, indent: str = "    ") -> None:
        self.counter = counter if counter is not None else itertools.count()
        self.indent = indent
        self.lines: list[str] = []
        self.loc: Optional[str] = None  # location attached to the ops written now
        self._consts: dict[tuple, Val] = {}

    # --- raw op writing --------------------------------------------------------------------------

    def fresh(self) -> str:
        return f"%{next(self.counter)}"

    def comment(self, text: str) -> None:
        self.lines.append(f"{self.indent}// {text}")

    def op(self, name: str, operands: Sequence[Val],
           results: Sequence[tuple[Sequence[int], DType]], attrs: Optional[dict[str, str]] = None,
           regions: Sequence[str] = ()) -> list[Val]:
        """Write one op in generic form; returns its result values."""
        res_name = self.fresh()
        if len(results) == 1:
            outs = [Val(res_name, tuple(results[0][0]), results[0][1])]
            lhs = res_name + " = "
        elif results:
            outs = [Val(f"{res_name}#{i}", tuple(s), d) for i, (s, d) in enumerate(results)]
            lhs = f"{res_name}:{len(results)} = "
        else:
            outs, lhs = [], ""
        text = f'{lhs}"{name}"({", ".join(v.name for v in operands)})'
        if regions:
            text += " (" + ", ".join(regions) + ")"
        if attrs:
            text += " {" + ", ".join(f"{k} = {v}" for k, v in attrs.items()) + "}"
        ins = ", ".join(v.type for v in operands)
        outs_t = ", ".join(tensor_type(s, d) for s, d in results)
        text += f" : ({ins}) -> " + (f"({outs_t})" if len(results) != 1 else outs_t)
        if self.loc:
            text += f" loc({_mlir_string(self.loc)})"
        self.lines.append(self.indent + text)
        return outs

    def op1(self, name: str, operands: Sequence[Val], shape: Sequence[int], dtype: DType,
            attrs: Optional[dict[str, str]] = None, regions: Sequence[str] = ()) -> Val:
        return self.op(name, operands, [(shape, dtype)], attrs, regions)[0]

    def region(self, arg_types: Sequence[tuple[Sequence[int], DType]],
               body: Callable[..., Sequence[Val]]) -> str:
        """A one-block region: body(emitter, *args) returns the values it yields."""
        sub = Emitter(self.counter, self.indent + "  ")
        args = [Val(sub.fresh(), tuple(s), d) for s, d in arg_types]
        results = list(body(sub, *args))
        sub.op("stablehlo.return", results, [])
        head = ", ".join(f"{a.name}: {a.type}" for a in args)
        inner = "\n".join(sub.lines)
        return f"{{\n{self.indent}^bb0({head}):\n{inner}\n{self.indent}}}"

    # --- constants and conversions -------------------------------------------------------------

    def const(self, value: Any, dtype: DType, shape: Sequence[int] = ()) -> Val:
        """A constant of `dtype`: a scalar broadcast to `shape`, or an array (shape ignored)."""
        arr = np.asarray(value)
        if arr.ndim == 0:
            key = ("splat", dtype.name, tuple(shape), _element(arr[()], dtype))
            if key in self._consts:
                return self._consts[key]
            lit = f"dense<{_element(arr[()], dtype)}> : {tensor_type(shape, dtype)}"
            v = self.op1("stablehlo.constant", [], shape, dtype, {"value": lit})
            self._consts[key] = v
            return v
        arr = _as_dtype(arr, dtype)
        lit = f"{dense_literal(arr, dtype)} : {tensor_type(arr.shape, dtype)}"
        return self.op1("stablehlo.constant", [], arr.shape, dtype, {"value": lit})

    def scalar_like(self, value: Any, like: Val) -> Val:
        return self.const(value, like.dtype, ())

    def convert(self, x: Val, dtype: DType) -> Val:
        if x.dtype == dtype:
            return x
        return self.op1("stablehlo.convert", [x], x.shape, dtype)

    def bitcast_convert(self, x: Val, dtype: DType) -> Val:
        return self.op1("stablehlo.bitcast_convert", [x], x.shape, dtype)

    def iota(self, shape: Sequence[int], dim: int, dtype: DType = dt.i64) -> Val:
        return self.op1("stablehlo.iota", [], shape, dtype, {"iota_dimension": f"{dim} : i64"})

    # --- shapes --------------------------------------------------------------------------------

    def reshape(self, x: Val, shape: Sequence[int]) -> Val:
        shape = tuple(int(s) for s in shape)
        if x.shape == shape:
            return x
        if math.prod(shape) != x.size:
            raise LoweringError(f"reshape of {x.shape} to {shape} changes the element count")
        return self.op1("stablehlo.reshape", [x], shape, x.dtype)

    def transpose(self, x: Val, perm: Sequence[int]) -> Val:
        perm = [int(p) for p in perm]
        if perm == list(range(x.rank)):
            return x
        return self.op1("stablehlo.transpose", [x], [x.shape[p] for p in perm], x.dtype,
                        {"permutation": i64_array(perm)})

    def broadcast_in_dim(self, x: Val, shape: Sequence[int], dims: Sequence[int]) -> Val:
        shape = tuple(int(s) for s in shape)
        if x.shape == shape and list(dims) == list(range(len(shape))):
            return x
        return self.op1("stablehlo.broadcast_in_dim", [x], shape, x.dtype,
                        {"broadcast_dimensions": i64_array(dims)})

    def broadcast_to(self, x: Val, shape: Sequence[int]) -> Val:
        """NumPy broadcasting of x to `shape` (trailing dims aligned)."""
        shape = tuple(int(s) for s in shape)
        if x.shape == shape:
            return x
        lead = len(shape) - x.rank
        if lead < 0 or any(d not in (1, s) for d, s in zip(x.shape, shape[lead:])):
            raise LoweringError(f"cannot broadcast {x.shape} to {shape}")
        return self.broadcast_in_dim(x, shape, list(range(lead, len(shape))))

    def slice(self, x: Val, starts: Sequence[int], limits: Sequence[int],
              strides: Optional[Sequence[int]] = None) -> Val:
        strides = list(strides) if strides is not None else [1] * x.rank
        shape = [max(0, -(-(lim - s) // st)) for s, lim, st in zip(starts, limits, strides)]
        if list(starts) == [0] * x.rank and list(shape) == list(x.shape):
            return x
        return self.op1("stablehlo.slice", [x], shape, x.dtype,
                        {"start_indices": i64_array(starts), "limit_indices": i64_array(limits),
                         "strides": i64_array(strides)})

    def slice_axis(self, x: Val, axis: int, start: int, stop: int, step: int = 1) -> Val:
        starts, limits, strides = [0] * x.rank, list(x.shape), [1] * x.rank
        starts[axis], limits[axis], strides[axis] = start, stop, step
        return self.slice(x, starts, limits, strides)

    def concat(self, xs: Sequence[Val], axis: int) -> Val:
        xs = [x for x in xs]
        if len(xs) == 1:
            return xs[0]
        shape = list(xs[0].shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        return self.op1("stablehlo.concatenate", xs, shape, xs[0].dtype,
                        {"dimension": f"{axis} : i64"})

    def pad(self, x: Val, value: Val, low: Sequence[int], high: Sequence[int],
            interior: Optional[Sequence[int]] = None) -> Val:
        interior = list(interior) if interior is not None else [0] * x.rank
        if not any(low) and not any(high) and not any(interior):
            return x
        shape = [lo + hi + d + max(d - 1, 0) * i
                 for d, lo, hi, i in zip(x.shape, low, high, interior)]
        return self.op1("stablehlo.pad", [x, value], shape, x.dtype,
                        {"edge_padding_low": i64_array(low),
                         "edge_padding_high": i64_array(high),
                         "interior_padding": i64_array(interior)})

    def reverse(self, x: Val, axes: Sequence[int]) -> Val:
        axes = [a for a in axes if x.shape[a] > 1]
        if not axes:
            return x
        return self.op1("stablehlo.reverse", [x], x.shape, x.dtype,
                        {"dimensions": i64_array(sorted(axes))})

    # --- elementwise ---------------------------------------------------------------------------

    def _operands(self, *xs: Operand) -> list[Val]:
        """Vals broadcast to their common shape; Python numbers become constants of the first
        Val's dtype."""
        like = next((x for x in xs if isinstance(x, Val)), None)
        if like is None:
            raise LoweringError("an elementwise op needs at least one tensor operand")
        vals = [x if isinstance(x, Val) else self.const(x, like.dtype) for x in xs]
        shape = np.broadcast_shapes(*(v.shape for v in vals))
        return [self.broadcast_to(v, shape) for v in vals]

    def unary(self, name: str, x: Val, dtype: Optional[DType] = None) -> Val:
        return self.op1(name if "." in name else f"stablehlo.{name}", [x], x.shape,
                        dtype or x.dtype)

    def binary(self, name: str, a: Operand, b: Operand) -> Val:
        a, b = self._operands(a, b)
        return self.op1(f"stablehlo.{name}", [a, b], a.shape, a.dtype)

    def add(self, a: Operand, b: Operand) -> Val:
        return self.binary("add", a, b)

    def sub(self, a: Operand, b: Operand) -> Val:
        return self.binary("subtract", a, b)

    def mul(self, a: Operand, b: Operand) -> Val:
        return self.binary("multiply", a, b)

    def div(self, a: Operand, b: Operand) -> Val:
        return self.binary("divide", a, b)

    def max(self, a: Operand, b: Operand) -> Val:
        return self.binary("maximum", a, b)

    def min(self, a: Operand, b: Operand) -> Val:
        return self.binary("minimum", a, b)

    def and_(self, a: Operand, b: Operand) -> Val:
        return self.binary("and", a, b)

    def or_(self, a: Operand, b: Operand) -> Val:
        return self.binary("or", a, b)

    def not_(self, x: Val) -> Val:
        return self.unary("not", x)

    def neg(self, x: Val) -> Val:
        return self.unary("negate", x)

    def abs(self, x: Val) -> Val:
        return self.unary("abs", x)

    def exp(self, x: Val) -> Val:
        return self.unary("exponential", x)

    def log(self, x: Val) -> Val:
        return self.unary("log", x)

    def sqrt(self, x: Val) -> Val:
        return self.unary("sqrt", x)

    def floor(self, x: Val) -> Val:
        return self.unary("floor", x)

    def ceil(self, x: Val) -> Val:
        return self.unary("ceil", x)

    def compare(self, direction: str, a: Operand, b: Operand) -> Val:
        a, b = self._operands(a, b)
        kind = ("FLOAT" if a.dtype.is_float or a.dtype.is_narrow_float else
                "SIGNED" if a.dtype.kind in ("int", "narrow_int") else "UNSIGNED")
        return self.op1("stablehlo.compare", [a, b], a.shape, dt.bool_, {
            "comparison_direction": f"#stablehlo<comparison_direction {direction}>",
            "compare_type": f"#stablehlo<comparison_type {kind}>"})

    def select(self, cond: Val, a: Operand, b: Operand) -> Val:
        like = a if isinstance(a, Val) else b
        if not isinstance(like, Val):
            raise LoweringError("select needs a tensor branch")
        av = a if isinstance(a, Val) else self.const(a, like.dtype)
        bv = b if isinstance(b, Val) else self.const(b, like.dtype)
        shape = np.broadcast_shapes(cond.shape, av.shape, bv.shape)
        return self.op1("stablehlo.select", [self.broadcast_to(cond, shape),
                                             self.broadcast_to(av, shape),
                                             self.broadcast_to(bv, shape)], shape, av.dtype)

    def isnan(self, x: Val) -> Val:
        return self.compare("NE", x, x)

    # --- reductions ----------------------------------------------------------------------------

    def reduce(self, xs: Sequence[Val], inits: Sequence[Val], axes: Sequence[int],
               body: Callable[..., Sequence[Val]]) -> list[Val]:
        """stablehlo.reduce of xs over axes; body(e, *accs, *elems) combines scalars."""
        axes = sorted(set(int(a) for a in axes))
        shape = [d for i, d in enumerate(xs[0].shape) if i not in axes]
        scalar_types = [((), x.dtype) for x in xs]
        region = self.region(scalar_types + scalar_types, body)
        return self.op("stablehlo.reduce", list(xs) + list(inits),
                       [(shape, x.dtype) for x in xs], {"dimensions": i64_array(axes)}, [region])

    def reduce_simple(self, x: Val, init: Any, axes: Sequence[int], combine: str) -> Val:
        """Reduce with one binary StableHLO op (add, multiply, maximum, minimum, and, or)."""
        if not axes:
            return x
        init_v = init if isinstance(init, Val) else self.const(init, x.dtype)
        return self.reduce([x], [init_v], axes,
                           lambda e, a, b: [e.op1(f"stablehlo.{combine}", [a, b], (), x.dtype)])[0]

    def reduce_window(self, xs: Sequence[Val], inits: Sequence[Val], window: Sequence[int],
                      strides: Sequence[int], padding: Sequence[tuple[int, int]],
                      body: Callable[..., Sequence[Val]],
                      dilations: Optional[Sequence[int]] = None) -> list[Val]:
        r = xs[0].rank
        dilations = list(dilations) if dilations is not None else [1] * r
        shape = []
        for d, k, s, (lo, hi), dl in zip(xs[0].shape, window, strides, padding, dilations):
            reach = dl * (k - 1) + 1
            shape.append(max(0, (d + lo + hi - reach) // s + 1))
        scalar_types = [((), x.dtype) for x in xs]
        region = self.region(scalar_types + scalar_types, body)
        pads = ", ".join(f"[{lo}, {hi}]" for lo, hi in padding)
        attrs = {"window_dimensions": i64_array(window), "window_strides": i64_array(strides),
                 "padding": f"dense<[{pads}]> : tensor<{r}x2xi64>" if r else
                 "dense<> : tensor<0x2xi64>"}
        if any(d != 1 for d in dilations):
            attrs["window_dilations"] = i64_array(dilations)
        return self.op("stablehlo.reduce_window", list(xs) + list(inits),
                       [(shape, x.dtype) for x in xs], attrs, [region])

    # --- contractions --------------------------------------------------------------------------

    def dot_general(self, a: Val, b: Val, batch: tuple[Sequence[int], Sequence[int]],
                    contract: tuple[Sequence[int], Sequence[int]],
                    out_dtype: Optional[DType] = None) -> Val:
        """Result dims: batch dims, then a's free dims, then b's free dims (StableHLO order)."""
        (ab, bb), (ac, bc) = batch, contract
        a_free = [i for i in range(a.rank) if i not in ab and i not in ac]
        b_free = [i for i in range(b.rank) if i not in bb and i not in bc]
        shape = ([a.shape[i] for i in ab] + [a.shape[i] for i in a_free]
                 + [b.shape[i] for i in b_free])
        nums = (f"lhs_batching_dimensions = {_ints(ab)}, rhs_batching_dimensions = {_ints(bb)}, "
                f"lhs_contracting_dimensions = {_ints(ac)}, "
                f"rhs_contracting_dimensions = {_ints(bc)}")
        return self.op1("stablehlo.dot_general", [a, b], shape, out_dtype or a.dtype,
                        {"dot_dimension_numbers": f"#stablehlo.dot<{nums}>"})

    def convolution(self, x: Val, w: Val, out_shape: Sequence[int], *, strides: Sequence[int],
                    padding: Sequence[tuple[int, int]], lhs_dilation: Sequence[int],
                    rhs_dilation: Sequence[int], groups: int,
                    out_dtype: Optional[DType] = None) -> Val:
        """NCHW-style convolution: x [N, C, *sp], w [O, C/groups, *k] -> [N, O, *out]."""
        d = x.rank - 2
        sp = ", ".join(str(i) for i in range(d))
        nums = f"[b, f, {sp}]x[o, i, {sp}]->[b, f, {sp}]"
        pads = ", ".join(f"[{lo}, {hi}]" for lo, hi in padding)
        return self.op1("stablehlo.convolution", [x, w], out_shape, out_dtype or x.dtype, {
            "dimension_numbers": f"#stablehlo.conv<{nums}>",
            "window_strides": i64_array(strides),
            "padding": f"dense<[{pads}]> : tensor<{d}x2xi64>",
            "lhs_dilation": i64_array(lhs_dilation), "rhs_dilation": i64_array(rhs_dilation),
            "feature_group_count": f"{groups} : i64", "batch_group_count": "1 : i64"})

    # --- gathers and scatters ------------------------------------------------------------------

    def _index_vector(self, indices: Sequence[Val]) -> Val:
        """Index arrays of one shape S stacked into [*S, k] (i64)."""
        shape = indices[0].shape
        cols = [self.reshape(self.convert(i, dt.i64), shape + (1,)) for i in indices]
        return self.concat(cols, len(shape))

    def gather_points(self, x: Val, axes: Sequence[int], indices: Sequence[Val]) -> Val:
        """x indexed on `axes` by index arrays of one shape S (in range): result
        S + x's other dims (in order). NumPy's x[..., i0, ..., i1, ...] with the advanced index
        dims moved first."""
        axes = [int(a) for a in axes]
        shape = np.broadcast_shapes(*(i.shape for i in indices))
        indices = [self.broadcast_to(i, shape) for i in indices]
        start = self._index_vector(indices)
        rest = [i for i in range(x.rank) if i not in axes]
        n = len(shape)
        nums = (f"offset_dims = {_ints(range(n, n + len(rest)))}, "
                f"collapsed_slice_dims = {_ints(sorted(axes))}, "
                f"start_index_map = {_ints(axes)}, index_vector_dim = {n}")
        sizes = [1 if i in axes else x.shape[i] for i in range(x.rank)]
        out = tuple(shape) + tuple(x.shape[i] for i in rest)
        return self.op1("stablehlo.gather", [x, start], out, x.dtype, {
            "dimension_numbers": f"#stablehlo.gather<{nums}>",
            "slice_sizes": i64_array(sizes), "indices_are_sorted": "false"})

    def scatter_points(self, x: Val, axes: Sequence[int], indices: Sequence[Val], updates: Val,
                       combine: Optional[str]) -> Val:
        """x with `updates` (shape S + x's other dims) written at the index arrays (shape S) on
        `axes`; combine None replaces, else the StableHLO op combining old and new."""
        axes = [int(a) for a in axes]
        shape = indices[0].shape
        start = self._index_vector(indices)
        rest = [i for i in range(x.rank) if i not in axes]
        n = len(shape)
        nums = (f"update_window_dims = {_ints(range(n, n + len(rest)))}, "
                f"inserted_window_dims = {_ints(sorted(axes))}, "
                f"scatter_dims_to_operand_dims = {_ints(axes)}, index_vector_dim = {n}")

        def body(e: Emitter, old: Val, new: Val) -> list[Val]:
            if combine is None:
                return [new]
            return [e.op1(f"stablehlo.{combine}", [old, new], (), x.dtype)]
        region = self.region([((), x.dtype), ((), x.dtype)], body)
        return self.op1("stablehlo.scatter", [x, start, updates], x.shape, x.dtype, {
            "scatter_dimension_numbers": f"#stablehlo.scatter<{nums}>",
            "indices_are_sorted": "false", "unique_indices": "false"}, [region])

    def sort(self, xs: Sequence[Val], axis: int, less: Callable[..., Sequence[Val]],
             stable: bool = True) -> list[Val]:
        """Sort xs together along axis; less(e, a0, b0, a1, b1, ...) says a goes before b."""
        types = []
        for x in xs:
            types += [((), x.dtype), ((), x.dtype)]
        region = self.region(types, less)
        return self.op("stablehlo.sort", list(xs), [(x.shape, x.dtype) for x in xs],
                       {"dimension": f"{axis} : i64", "is_stable": "true" if stable else "false"},
                       [region])


def _as_dtype(arr: np.ndarray, dtype: DType) -> np.ndarray:
    if arr.dtype == dtype.np_dtype:
        return arr
    if dtype.is_bool:
        return arr != 0
    return arr.astype(dtype.np_dtype)
