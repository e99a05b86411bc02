"""ONNX model -> graph IR.

The importer walks the (topologically sorted) ONNX graph and calls one converter per node, chosen
by op type and the node's opset (the highest `since` not above it). Ops without a converter whose
ONNX schema defines them as a function (Gelu, HardSwish, LayerNormalization, ...) are expanded into
their function body and imported node by node.

Values whose contents are known at import time (initializers, Constant nodes, and anything
computed only from them, such as shape arithmetic on static shapes) are folded through the
reference interpreter, so reshape targets become static attributes. Shape vectors of tensors with
symbolic dims are tracked as lists of dims (`[?batch, 128, 12, 64]`), so Shape -> Gather ->
Concat -> Reshape chains keep their symbols.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import onnx
import onnx.checker
import onnx.external_data_helper
import onnx.inliner
from onnx import TensorProto, helper, numpy_helper

from compiler import ir
from compiler.ir import dtypes as dt
from compiler.ir.core import Location, Module, Value, clean_name
from compiler.ir.interpreter import fold
from compiler.ir.types import Dim, TensorType

FOLD_LIMIT = 1 << 22  # elements: larger constant results stay ops (fold-constants may take them)
MIN_OPSET, MAX_OPSET = 1, onnx.defs.onnx_opset_version()


class OnnxImportError(ValueError):
    """The model cannot be imported: says which node (type, name, opset) and why."""


class NeedsConstantError(OnnxImportError):
    """A value that decides shapes (pads, split sizes, a reshape target...) depends on graph
    inputs (`.inputs`, their names); binding them to values (from_onnx(..., bind=...)) makes the
    model importable for those values."""

    def __init__(self, message: str, values: Sequence[Optional[Value]] = ()) -> None:
        super().__init__(message)
        self.values = [v for v in values if v is not None]
        self.inputs: list[str] = []


class UnsupportedOpsError(OnnxImportError):
    """Every node the importer has no converter for, listed at once."""

    def __init__(self, missing: list[tuple[str, str, str, int]]) -> None:
        self.missing = missing
        lines = [f"  {dom + '.' if dom else ''}{op} (node '{name}', opset {ver})"
                 for op, dom, name, ver in missing]
        kinds = sorted({m[0] for m in missing})
        super().__init__(f"{len(missing)} node(s) of {len(kinds)} unsupported op type(s) "
                         f"({', '.join(kinds)}):\n" + "\n".join(lines))


ONNX_DTYPES: dict[int, dt.DType] = {
    TensorProto.BOOL: dt.bool_, TensorProto.INT8: dt.i8, TensorProto.UINT8: dt.u8,
    TensorProto.INT16: dt.i16, TensorProto.INT32: dt.i32, TensorProto.INT64: dt.i64,
    TensorProto.FLOAT16: dt.f16, TensorProto.BFLOAT16: dt.bf16, TensorProto.FLOAT: dt.f32,
    TensorProto.DOUBLE: dt.f64, TensorProto.UINT16: dt.u16, TensorProto.UINT32: dt.u32,
    TensorProto.UINT64: dt.u64, TensorProto.FLOAT8E4M3FN: dt.f8e4m3fn,
    TensorProto.FLOAT8E5M2: dt.f8e5m2, TensorProto.FLOAT8E4M3FNUZ: dt.f8e4m3fnuz,
    TensorProto.FLOAT8E5M2FNUZ: dt.f8e5m2fnuz, TensorProto.FLOAT8E8M0: dt.f8e8m0,
    TensorProto.FLOAT4E2M1: dt.f4e2m1, TensorProto.INT4: dt.i4, TensorProto.UINT4: dt.u4,
    TensorProto.INT2: dt.i2, TensorProto.UINT2: dt.u2,
}


def ir_dtype(elem_type: int, where: str) -> dt.DType:
    """The IR dtype of an ONNX element type; OnnxImportError naming `where` if there is none."""
    if elem_type in ONNX_DTYPES:
        return ONNX_DTYPES[elem_type]
    name = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() \
        else str(elem_type)
    raise OnnxImportError(f"{where}: element type {name} has no IR dtype (the IR has "
                          f"{', '.join(d.name for d in dt.DTYPES)})")


def onnx_dtype(d: dt.DType) -> int:
    for k, v in ONNX_DTYPES.items():
        if v is d:
            return k
    raise KeyError(d)


# ---------------------------------------------------------------------------------------------
# converter registry

ConverterFn = Callable[["NodeContext"], "Union[Value, Sequence[Optional[Value]], None]"]
_CONVERTERS: dict[tuple[str, str], list[tuple[int, ConverterFn]]] = {}


def converter(*op_types: str, since: int = 1, domain: str = "") -> Callable[[ConverterFn], ConverterFn]:
    """Register fn as the converter of op_types for opsets >= since (until a later `since`)."""
    def deco(fn: ConverterFn) -> ConverterFn:
        for op_type in op_types:
            lst = _CONVERTERS.setdefault((domain, op_type), [])
            if any(s == since for s, _ in lst):
                raise ValueError(f"two converters for {op_type} since opset {since}")
            lst.append((since, fn))
            lst.sort(key=lambda p: p[0])
        return fn
    return deco


def find_converter(domain: str, op_type: str, opset: int) -> Optional[ConverterFn]:
    """The converter for op_type at this opset of its domain: the one registered with the
    highest `since` not above the version of the op's schema in force at that opset."""
    _load_converters()
    candidates = _CONVERTERS.get((domain or "", op_type))
    if not candidates:
        return None
    version = schema_version(op_type, domain, opset)
    best = None
    for since, fn in candidates:
        if since <= version:
            best = fn
    return best


def schema_version(op_type: str, domain: str, opset: int) -> int:
    """The opset in which the op's definition in force at `opset` was introduced."""
    try:
        return onnx.defs.get_schema(op_type, opset, domain).since_version
    except onnx.defs.SchemaError:
        return opset


def supported_op_types() -> list[str]:
    _load_converters()
    return sorted(op for _, op in _CONVERTERS)


_loaded = False


def _load_converters() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from . import ops  # noqa: F401


# ---------------------------------------------------------------------------------------------
# per-node context


class NodeContext:
    """What a converter sees: the node, its opset, operand values, what is known of them, and
    helpers that add IR ops (folding them when all operands are known)."""

    def __init__(self, importer: "Importer", node: onnx.NodeProto, opset: int,
                 attrs: dict[str, Any]) -> None:
        self.importer = importer
        self.node = node
        self.opset = opset
        self.attrs = attrs
        self.inputs: list[Optional[Value]] = [importer.lookup(n) if n else None for n in node.input]
        self.loc = Location(name=node.name or node.op_type, file=importer.filename)

    # --- reading ------------------------------------------------------------------------------
    @property
    def op_type(self) -> str:
        return self.node.op_type

    def input(self, i: int) -> Value:
        """Input i, which must be present."""
        v = self.inputs[i] if i < len(self.inputs) else None
        if v is None:
            raise self.error(f"input {i} is required")
        return v

    def has_input(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] is not None

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def known(self, i: int) -> Optional[np.ndarray]:
        """The value of input i if it is known at import time, else None (also when absent)."""
        v = self.inputs[i] if i < len(self.inputs) else None
        return None if v is None else self.importer.known.get(v)

    def known_value(self, v: Value) -> Optional[np.ndarray]:
        return self.importer.known.get(v)

    def require_known(self, i: int, what: str) -> np.ndarray:
        arr = self.known(i)
        if arr is None:
            raise self.needs_constant(f"input {i} ({what}) must be a constant (an initializer or "
                                      "computed from constants); it depends on run-time values",
                                      self.inputs[i])
        return arr

    def needs_constant(self, message: str, *values: Optional[Value]) -> NeedsConstantError:
        """The error for a shape-deciding value only known at run time; `values` are the node
        inputs it needs (by default all), traced back to graph inputs by the importer."""
        return NeedsConstantError(f"{self.op_type} node '{self.node.name}' (opset {self.opset}): "
                                  f"{message}", values or self.inputs)

    def dims(self, i: int) -> Optional[list[Optional[Dim]]]:
        """Input i as a list of dims (ints, symbols; None where unknown) when it is a 1-D integer
        tensor whose entries are known: a constant, or a shape computed from symbolic dims."""
        v = self.inputs[i] if i < len(self.inputs) else None
        return None if v is None else self.importer.dims_of(v)

    # --- building -----------------------------------------------------------------------------
    def op(self, name: str, *operands: Value, **attrs: Any) -> "Value | list[Value]":
        """Add IR op `name`; folded into a constant when every operand is known and small."""
        return self.importer.emit(name, list(operands), attrs, self.loc)

    def const(self, array: Any, dtype: Any = None, name: Optional[str] = None) -> Value:
        """A constant value (known at import time)."""
        arr = np.asarray(array, dtype=None if dtype is None else dt.dtype(dtype).np_dtype)
        return self.importer.constant(arr, name or (self.node.name or self.op_type) + "_const")

    def set_dims(self, v: Value, dims: Sequence[Optional[Dim]]) -> Value:
        """Record that 1-D integer value v holds these dims (for shape arithmetic)."""
        self.importer.shape_dims[v] = list(dims)
        return v

    def error(self, message: str) -> OnnxImportError:
        return OnnxImportError(f"{self.op_type} node '{self.node.name}' (opset {self.opset}): "
                               f"{message}")


# ---------------------------------------------------------------------------------------------
# the importer


@dataclass
class Importer:
    model: onnx.ModelProto
    filename: Optional[str] = None
    bound: dict[str, np.ndarray] = field(default_factory=dict)
    module: Module = field(init=False)
    known: dict[Value, np.ndarray] = field(default_factory=dict, init=False)
    shape_dims: dict[Value, list[Optional[Dim]]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.opsets = {imp.domain or "": imp.version for imp in self.model.opset_import}
        if "ai.onnx" in self.opsets:
            self.opsets.setdefault("", self.opsets.pop("ai.onnx"))
        self.module = Module(clean_name(self.model.graph.name) or "onnx_model")
        self.f = ir.FunctionBuilder(self.module, "main")
        self.scopes: list[dict[str, Value]] = [{}]
        self.arg_names: dict[str, Value] = {}
        self.base_dir = os.path.dirname(os.path.abspath(self.filename)) if self.filename else None
        self._symbols: dict[str, str] = {}

    # --- values --------------------------------------------------------------------------------
    def lookup(self, name: str) -> Value:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise OnnxImportError(f"value '{name}' is used before it is produced")

    def define(self, name: str, v: Value) -> None:
        self.scopes[-1][name] = v
        if v.name is None and v.owner is not None and v.owner.name != "constant":
            v.name = clean_name(name)

    def constant(self, arr: np.ndarray, name: Optional[str]) -> Value:
        v = self.f.constant(arr, name=clean_name(name) or "cst")
        self.known[v] = self.module.constants[v.owner.attrs["name"]]
        return v

    def dims_of(self, v: Value) -> Optional[list[Optional[Dim]]]:
        if v in self.shape_dims:
            return list(self.shape_dims[v])
        arr = self.known.get(v)
        if arr is not None and arr.ndim <= 1 and arr.dtype.kind in "iu":
            return [int(x) for x in arr.reshape(-1)]
        return None

    def emit(self, name: str, operands: list[Value], attrs: dict[str, Any],
             loc: Optional[Location]) -> "Value | list[Value]":
        res = self.f.op(name, *operands, loc=loc, **attrs)
        results = res if isinstance(res, list) else [res]
        values = fold(self.module, results[0].owner, [self.known.get(v) for v in operands],
                      FOLD_LIMIT) if operands else None
        if values is None:
            return res
        self.f.function.ops.pop()  # replaced by constants
        folded = [self.constant(val, loc.name if loc else None) for val in values]
        return folded if isinstance(res, list) else folded[0]

    def graph_inputs_feeding(self, values: Sequence[Value]) -> list[str]:
        """Names of the graph inputs that these values are computed from."""
        names = {v: n for n, v in self.arg_names.items()}
        seen: set[Value] = set()
        stack = list(values)
        found: list[str] = []
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            if v in names:
                found.append(names[v])
            elif v.owner is not None:
                stack.extend(v.owner.operands)
        return sorted(found)

    def symbol(self, dim_param: str) -> str:
        """The IR symbol of an ONNX dim_param (cleaned to an identifier)."""
        if dim_param not in self._symbols:
            sym = clean_name(dim_param) or "dim"
            if not sym[0].isalpha() and sym[0] != "_":
                sym = "d_" + sym
            self._symbols[dim_param] = sym.replace(".", "_")
        return self._symbols[dim_param]

    def value_type(self, vi: onnx.ValueInfoProto, where: str) -> TensorType:
        t = vi.type
        if t.WhichOneof("value") != "tensor_type":
            raise OnnxImportError(f"{where} '{vi.name}': only tensor types can be imported, got "
                                  f"{t.WhichOneof('value')}")
        dtype = ir_dtype(t.tensor_type.elem_type, f"{where} '{vi.name}'")
        if not t.tensor_type.HasField("shape"):
            raise OnnxImportError(f"{where} '{vi.name}' has no shape; the compiler needs the rank "
                                  "(give dims or dim_params)")
        dims: list[Dim] = []
        for i, d in enumerate(t.tensor_type.shape.dim):
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param") and d.dim_param:
                dims.append(self.symbol(d.dim_param))
            else:
                dims.append(self.symbol(f"{vi.name}_{i}"))
        return TensorType(tuple(dims), dtype)

    # --- the walk ------------------------------------------------------------------------------
    def run(self) -> Module:
        g = self.model.graph
        opset = self.opsets.get("", 0)
        # a model may import only other domains (ai.onnx.preview.training, ...): no default opset
        only_other_domains = "" not in self.opsets and bool(self.opsets)
        if not only_other_domains and not MIN_OPSET <= opset <= MAX_OPSET:
            raise OnnxImportError(f"the model uses opset {opset} of the default domain; the "
                                  f"installed onnx knows opsets up to {MAX_OPSET}")
        self.check_supported(g.node, self.opsets)
        inits = {t.name for t in g.initializer}
        for t in g.initializer:
            arr = tensor_to_array(t, self.base_dir)
            self.define(t.name, self.constant(arr, t.name))
        for vi in g.input:
            if vi.name in inits:
                continue  # an initializer with a default value: a constant here
            t = self.value_type(vi, "graph input")
            if vi.name in self.bound:
                arr = np.asarray(self.bound[vi.name])
                if arr.dtype != t.dtype.np_dtype or arr.ndim != t.rank:
                    raise OnnxImportError(f"value bound to graph input '{vi.name}' is "
                                          f"{arr.dtype}{list(arr.shape)}, the input is {t}")
                self.define(vi.name, self.constant(arr, vi.name))
                continue
            self.arg_names[vi.name] = self.f.arg(vi.name, t)
            self.define(vi.name, self.arg_names[vi.name])
        self.convert_nodes(g.node, self.opsets)
        outputs = [self.lookup(o.name) for o in g.output]
        self.f.ret(*outputs)
        from passes.prune_dead import PruneDead
        PruneDead().run(self.module)
        ir.verify(self.module)
        return self.module

    def check_supported(self, nodes: Sequence[onnx.NodeProto], opsets: dict[str, int]) -> None:
        missing: list[tuple[str, str, str, int]] = []
        self._collect_missing(nodes, opsets, missing)
        if missing:
            raise UnsupportedOpsError(missing)

    def _collect_missing(self, nodes, opsets, missing) -> None:
        for i, node in enumerate(nodes):
            dom = node.domain if node.domain != "ai.onnx" else ""
            ver = opsets.get(dom, 0)
            if find_converter(dom, node.op_type, ver) is None and \
                    function_schema(node.op_type, dom, ver) is None:
                missing.append((node.op_type, dom, node.name or f"#{i}", ver))
            for a in node.attribute:  # subgraphs (If/Loop/Scan bodies)
                for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    self._collect_missing(sub.node, opsets, missing)

    def convert_nodes(self, nodes: Sequence[onnx.NodeProto], opsets: dict[str, int]) -> None:
        for node in nodes:
            self.convert_node(node, opsets)

    def convert_node(self, node: onnx.NodeProto, opsets: dict[str, int]) -> None:
        dom = node.domain if node.domain != "ai.onnx" else ""
        ver = opsets.get(dom, 0)
        fn = find_converter(dom, node.op_type, ver)
        if fn is None:
            self.expand_function(node, dom, ver)
            return
        ctx = NodeContext(self, node, ver, attributes(node))
        try:
            res = fn(ctx)
        except NeedsConstantError as e:
            e.inputs = self.graph_inputs_feeding(e.values)
            raise
        except ir.TypeInferenceError as e:
            raise ctx.error(str(e)) from None
        outs = [] if res is None else [res] if isinstance(res, Value) else list(res)
        for name, v in zip(node.output, outs):
            if name and v is not None:
                self.define(name, v)
        for i, name in enumerate(node.output):
            if name and (i >= len(outs) or outs[i] is None):
                raise ctx.error(f"output {i} ('{name}') is not produced by this importer")

    def expand_function(self, node: onnx.NodeProto, dom: str, ver: int) -> None:
        """Import an op defined as an ONNX function by importing its body in a new scope."""
        body = function_body(node, dom, ver, [self.lookup(n) if n else None for n in node.input])
        if body is None:
            raise OnnxImportError(f"{node.op_type} node '{node.name}' (opset {ver}): no converter "
                                  "and no function definition")
        caller_attrs = {a.name: a for a in node.attribute}
        schema = function_schema(node.op_type, dom, ver)
        for name, spec in (schema.attributes.items() if schema is not None else ()):
            # an attribute the caller left unset takes the op's default, not the body op's
            if name not in caller_attrs and spec.default_value.type != onnx.AttributeProto.UNDEFINED:
                default = onnx.AttributeProto()
                default.CopyFrom(spec.default_value)
                default.name = name
                caller_attrs[name] = default
        scope: dict[str, Value] = {}
        for formal, actual in zip(body.input, node.input):
            if actual:
                scope[formal] = self.lookup(actual)
        body_opsets = dict(self.opsets)
        body_opsets.update({imp.domain or "": imp.version for imp in body.opset_import})
        self.scopes.append(scope)
        try:
            for inner in body.node:
                self.convert_node(bind_attribute_refs(inner, caller_attrs, node.name), body_opsets)
            # only the outputs the node uses: a body may skip optional ones (SoftmaxCrossEntropyLoss)
            results = {name: self.lookup(inner) for name, inner in zip(node.output, body.output)
                       if name}
        finally:
            self.scopes.pop()
        for name, v in results.items():
            self.define(name, v)


# ---------------------------------------------------------------------------------------------
# ONNX helpers


def tensor_to_array(t: onnx.TensorProto, base_dir: Optional[str] = None) -> np.ndarray:
    """An initializer or Constant tensor as an array of an IR dtype; external data is read from
    the folder `base_dir` (the model file's)."""
    dtype = ir_dtype(t.data_type, f"tensor '{t.name}'")
    if t.data_location == TensorProto.EXTERNAL:
        if base_dir is None:
            raise OnnxImportError(f"tensor '{t.name}' keeps its data in an external file; import "
                                  "the model from its path (or onnx.load it with its data)")
        if not dtype.is_narrow:
            return _read_external(t, dtype, base_dir)
        t = _with_external_data(t, base_dir)  # packed 4/2-bit data: onnx's own reader
    if t.data_type == TensorProto.BFLOAT16:
        raw = numpy_helper.to_array(t)
        return np.asarray(raw).astype(dt.bf16.np_dtype) if raw.dtype != dt.bf16.np_dtype else raw
    arr = numpy_helper.to_array(t)
    if dtype.is_narrow:
        # onnx gives the ml_dtypes dtype (4/2-bit values unpacked one per byte); older onnx
        # versions gave the bits as uint8: reinterpret them, never convert values
        arr = np.ascontiguousarray(arr)
        if arr.dtype != dtype.np_dtype:
            arr = arr.astype(np.uint8).view(dtype.np_dtype)
        return dt.canonical_bits(arr)
    return np.asarray(arr, dtype=dtype.np_dtype)


def _external_path(t: onnx.TensorProto, base_dir: str) -> tuple[str, dict[str, str]]:
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    base = os.path.realpath(base_dir)
    path = os.path.realpath(os.path.join(base, location))
    if not location or os.path.isabs(location) or not path.startswith(base + os.sep):
        raise OnnxImportError(f"tensor '{t.name}': external data location {location!r} must be a "
                              "relative path inside the model's folder")
    return path, info


def _read_external(t: onnx.TensorProto, dtype: dt.DType, base_dir: str) -> np.ndarray:
    """Read an external tensor straight into an array, checking the file holds all of it."""
    path, info = _external_path(t, base_dir)
    storage = np.dtype(np.uint16) if dtype is dt.bf16 else dtype.np_dtype
    shape = tuple(int(d) for d in t.dims)
    count = int(np.prod(shape, dtype=np.int64))
    offset = int(info.get("offset", 0))
    nbytes = count * storage.itemsize
    if "length" in info and int(info["length"]) != nbytes:
        raise OnnxImportError(f"tensor '{t.name}': external data length {info['length']} does not "
                              f"match {dtype}{list(shape)} ({nbytes} bytes)")
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise OnnxImportError(f"tensor '{t.name}': cannot read external data {path}: "
                              f"{e.strerror or e}") from None
    if offset < 0 or offset + nbytes > size:
        raise OnnxImportError(f"tensor '{t.name}': external data {path} is truncated (needs bytes "
                              f"{offset}..{offset + nbytes}, the file has {size})")
    arr = np.fromfile(path, dtype=storage.newbyteorder("<"), count=count, offset=offset)
    arr = arr.astype(storage, copy=False).reshape(shape)
    return arr.view(dt.bf16.np_dtype) if dtype is dt.bf16 else arr


def _with_external_data(t: onnx.TensorProto, base_dir: str) -> onnx.TensorProto:
    _external_path(t, base_dir)  # refuse locations outside the model's folder
    copy = onnx.TensorProto()
    copy.CopyFrom(t)
    try:
        onnx.external_data_helper.load_external_data_for_tensor(copy, base_dir)
    except (OSError, ValueError) as e:
        raise OnnxImportError(f"tensor '{t.name}': cannot read external data: {e}") from None
    copy.data_location = TensorProto.DEFAULT
    del copy.external_data[:]
    return copy


def attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """A node's attributes as Python values (tensors as arrays, graphs as GraphProto)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            out[a.name] = tensor_to_array(a.t)
        elif a.type == onnx.AttributeProto.GRAPH:
            out[a.name] = a.g
        else:
            v = helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode("utf-8")
            elif isinstance(v, list) and v and isinstance(v[0], bytes):
                v = [x.decode("utf-8") for x in v]
            out[a.name] = v
    return out


def function_schema(op_type: str, domain: str, opset: int) -> Optional[onnx.defs.OpSchema]:
    """The op's schema when ONNX defines it as a function at this opset, else None."""
    try:
        schema = onnx.defs.get_schema(op_type, opset, domain)
    except onnx.defs.SchemaError:
        return None
    if schema.has_function or schema.has_context_dependent_function:
        return schema
    return None


def function_body(node: onnx.NodeProto, domain: str, opset: int,
                  inputs: Sequence[Optional[Value]]) -> Optional[onnx.FunctionProto]:
    schema = function_schema(node.op_type, domain, opset)
    if schema is None:
        return None
    if schema.has_function and not schema.has_context_dependent_function:
        body = schema.get_function_with_opset_version(opset) if schema.function_opset_versions \
            else schema.function_body
        if isinstance(body, bytes):
            proto = onnx.FunctionProto()
            proto.ParseFromString(body)
            return proto
        return body
    types = []
    for v in inputs:
        tp = onnx.TypeProto()
        if v is not None:
            tp = helper.make_tensor_type_proto(onnx_dtype(v.dtype),
                                               [d if isinstance(d, int) else str(d) for d in v.shape])
        types.append(tp.SerializeToString())
    raw = schema.get_context_dependent_function(node.SerializeToString(), types)
    if not raw:
        return None
    proto = onnx.FunctionProto()
    proto.ParseFromString(raw)
    return proto


def bind_attribute_refs(node: onnx.NodeProto, caller: dict[str, onnx.AttributeProto],
                        caller_name: str) -> onnx.NodeProto:
    """A copy of a function-body node with attribute references replaced by the caller's values
    (references to attributes the caller did not set are dropped: the default applies)."""
    if not any(a.ref_attr_name for a in node.attribute):
        out = onnx.NodeProto()
        out.CopyFrom(node)
    else:
        out = onnx.NodeProto()
        out.CopyFrom(node)
        del out.attribute[:]
        for a in node.attribute:
            if a.ref_attr_name:
                if a.ref_attr_name in caller:
                    b = onnx.AttributeProto()
                    b.CopyFrom(caller[a.ref_attr_name])
                    b.name = a.name
                    out.attribute.append(b)
            else:
                out.attribute.append(a)
    out.name = f"{caller_name}/{node.name or node.op_type}"
    return out


def load_model(model_or_path: "onnx.ModelProto | str | os.PathLike | bytes") -> tuple[onnx.ModelProto, Optional[str]]:
    """Load a model from a path, bytes or ModelProto (with external data), checking it."""
    filename = None
    if isinstance(model_or_path, onnx.ModelProto):
        model = model_or_path
    elif isinstance(model_or_path, (bytes, bytearray)):
        model = _parse_bytes(bytes(model_or_path), "<bytes>")
    else:
        filename = os.fspath(model_or_path)
        try:
            with open(filename, "rb") as fh:
                data = fh.read()
        except OSError as e:
            raise OnnxImportError(f"{filename}: {e.strerror or e}") from None
        model = _parse_bytes(data, filename)  # external weights are read later, straight to arrays
    if not model.HasField("graph"):
        raise OnnxImportError(f"{filename or 'model'}: not an ONNX model (it has no graph)")
    _check(model, filename)
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    return model, filename


def _check(model: onnx.ModelProto, filename: Optional[str]) -> None:
    """onnx's checker. A file is checked by its path, so that weights in external files beside it
    are checked without being read; a ModelProto must hold its weights."""
    if filename is None and any(t.data_location == TensorProto.EXTERNAL
                                for t in model.graph.initializer):
        raise OnnxImportError("the model keeps weights in external files; import it from its "
                              "path (or onnx.load it with its data)")
    try:
        onnx.checker.check_model(filename if filename else model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid model"
        raise OnnxImportError(f"{filename or 'model'}: the model is not valid ONNX: {first}") from None


def _parse_bytes(data: bytes, where: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError, and friends
        raise OnnxImportError(f"{where}: not a readable ONNX file ({type(e).__name__}: {e}); "
                              "is it truncated or not an .onnx file?") from None
    return model


def from_onnx(model_or_path: "onnx.ModelProto | str | os.PathLike | bytes",
              bind: Optional[dict[str, np.ndarray]] = None) -> Module:
    """Import an ONNX model (a ModelProto, a path to a .onnx file, or its bytes) as an IR module
    whose @main takes the graph inputs and returns the graph outputs.

    bind: graph inputs to treat as constants with these values (they are not arguments of
    @main); for inputs that decide shapes, such as pads or split sizes given as inputs."""
    model, filename = load_model(model_or_path)
    unknown = set(bind or {}) - {vi.name for vi in model.graph.input}
    if unknown:
        raise OnnxImportError(f"bind names no graph input: {', '.join(sorted(unknown))}")
    return Importer(model, filename, dict(bind or {})).run()

