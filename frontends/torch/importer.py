"""PyTorch model -> graph IR, through torch.export.

`from_torch` exports an `nn.Module` (or takes an `ExportedProgram`), runs the core ATen
decompositions, and walks the FX graph calling one converter per ATen op (see the ops modules
beside this one). A few ops that the IR has directly (linear, matmul, scaled_dot_product_attention)
are kept out of the decomposition (see KEEP_OPS): attention and matmul decompose into
`view(B*H, T, D)` + `bmm`, a dim no IR type can express when B is symbolic, and the others are IR
ops of their own (silu, softplus, rms_norm, ...).

What the importer tracks besides IR values:
- SymInts (`sym_size.int`, `operator.mul`, ...) as dims: an int, a symbol name, or unknown, so
  view/expand/full targets become `dims` attributes (one unknown entry becomes -1).
- Values known at import time (scalars, `full`, `arange`, lifted tensor constants and anything
  computed only from them) are folded through the reference interpreter. Parameters and buffers
  stay named weights: folding them is the job of the fold-constants pass.
Every converted result is checked against torch's own metadata for the node (rank, static dims);
its dtype is torch's, cast when a converter's computation ends in another one.
"""
from __future__ import annotations

import inspect
import operator
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
import torch.fx

from compiler import ir
from compiler.ir import dtypes as dt
from compiler.ir.core import Location, Module, Value, clean_name
from compiler.ir.interpreter import fold
from compiler.ir.types import Dim, TensorType

FOLD_LIMIT = 1 << 22  # elements: larger constant results stay ops (fold-constants may take them)
INT64_MAX = 2**63 - 1

# Ops kept out of the core ATen decomposition: the IR has them (or, for attention, a form
# that keeps batch and heads apart), so they import as one op instead of a pattern of several.
KEEP_OPS = ("aten.linear.default", "aten.matmul.default",
            "aten.scaled_dot_product_attention.default", "aten.silu.default",
            "aten.hardswish.default", "aten.hardsigmoid.default", "aten.softplus.default",
            "aten.pixel_shuffle.default", "aten.logsumexp.default", "aten.rms_norm.default",
            "aten.einsum.default",
            *(f"aten.{op}.{ov}" for op in (
                "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
                "_upsample_nearest_exact1d", "_upsample_nearest_exact2d",
                "_upsample_nearest_exact3d", "upsample_linear1d", "upsample_bilinear2d",
                "upsample_trilinear3d") for ov in ("vec", "default")))


class TorchImportError(ValueError):
    """The model cannot be imported: says which node (op, name, source line) and why."""


class UnsupportedTorchOpsError(TorchImportError):
    """Every FX node the importer cannot convert, listed at once (op, count, node names)."""

    def __init__(self, missing: dict[str, list[str]], hint: str = "") -> None:
        self.missing = missing
        total = sum(len(v) for v in missing.values())
        lines = []
        for op, nodes in sorted(missing.items()):
            shown = ", ".join(nodes[:6]) + (", ..." if len(nodes) > 6 else "")
            lines.append(f"  {op}: {len(nodes)} node(s) ({shown})")
        super().__init__(f"{total} node(s) of {len(missing)} unsupported ATen op(s):\n"
                         + "\n".join(lines) + (f"\n{hint}" if hint else ""))


TORCH_DTYPES: dict[torch.dtype, dt.DType] = {
    torch.bool: dt.bool_, torch.int8: dt.i8, torch.uint8: dt.u8, torch.int16: dt.i16,
    torch.int32: dt.i32, torch.int64: dt.i64, torch.float16: dt.f16, torch.bfloat16: dt.bf16,
    torch.float32: dt.f32, torch.float64: dt.f64, torch.uint16: dt.u16, torch.uint32: dt.u32,
    torch.uint64: dt.u64, torch.float8_e4m3fn: dt.f8e4m3fn, torch.float8_e5m2: dt.f8e5m2,
    torch.float8_e4m3fnuz: dt.f8e4m3fnuz, torch.float8_e5m2fnuz: dt.f8e5m2fnuz,
    torch.float8_e8m0fnu: dt.f8e8m0,
}
_TO_TORCH = {v: k for k, v in TORCH_DTYPES.items()}


def ir_dtype(td: torch.dtype, where: str) -> dt.DType:
    """The IR dtype of a torch dtype; TorchImportError naming `where` when there is none."""
    if td in TORCH_DTYPES:
        return TORCH_DTYPES[td]
    raise TorchImportError(f"{where}: dtype {td} has no IR dtype (the IR has "
                           f"{', '.join(d.name for d in dt.ALL_DTYPES)})")


def torch_dtype(d: dt.DType) -> torch.dtype:
    return _TO_TORCH[d]


@dataclass(frozen=True)
class Sym:
    """A symbolic scalar (SymInt, SymFloat, SymBool) whose value is not a known constant: the
    symbol it equals when it is a plain symbolic dim, else None."""

    name: Optional[str] = None


# ---------------------------------------------------------------------------------------------
# converter registry

ConverterFn = Callable[["NodeContext"], Any]
CheckFn = Callable[[torch.fx.Node], Optional[str]]
_CONVERTERS: dict[str, tuple[ConverterFn, Optional[CheckFn]]] = {}


def converter(*targets: str,
              check: Optional[CheckFn] = None) -> Callable[[ConverterFn], ConverterFn]:
    """Register fn for targets: "aten.add.Tensor" (one overload), "aten.add" (every overload
    without its own converter) or a Python function such as "operator.mul". `check(node)`
    returns why this particular node cannot be converted (None when it can); it runs before
    anything is converted, so every problem is reported at once."""
    def deco(fn: ConverterFn) -> ConverterFn:
        for t in targets:
            if t in _CONVERTERS:
                raise ValueError(f"two converters for {t}")
            _CONVERTERS[t] = (fn, check)
        return fn
    return deco


def target_name(target: Any) -> str:
    """The registry key of an FX call_function target."""
    if isinstance(target, torch._ops.OpOverload):
        return str(target)
    if isinstance(target, torch._ops.OpOverloadPacket):
        return str(target)
    module = getattr(target, "__module__", None) or ""
    module = {"_operator": "operator", "builtins": "builtins"}.get(module, module)
    return f"{module}.{getattr(target, '__name__', repr(target))}"


def find_converter(target: Any) -> Optional[tuple[ConverterFn, Optional[CheckFn]]]:
    _load_converters()
    found = _CONVERTERS.get(target_name(target))
    if found is None and isinstance(target, torch._ops.OpOverload):
        found = _CONVERTERS.get(str(target.overloadpacket))
    return found


def supported_ops() -> list[str]:
    """Every registered target name."""
    _load_converters()
    return sorted(_CONVERTERS)


_loaded = False


def _load_converters() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from . import elementwise, nn, reduce, shape  # noqa: F401


# ---------------------------------------------------------------------------------------------
# per-node context

Operand = Union[Value, int, float, bool, Sym]


class NodeContext:
    """What a converter sees: the FX node, its arguments by schema name, torch's metadata for
    its results, and helpers that add IR ops (folding them when every operand is known)."""

    def __init__(self, importer: "Importer", node: torch.fx.Node) -> None:
        self.importer = importer
        self.node = node
        self.loc = importer.location(node)
        self.raw = bind_arguments(node)

    # --- reading arguments ----------------------------------------------------------------------
    def has(self, key: Union[str, int]) -> bool:
        return key in self.raw and self.raw[key] is not None

    def arg(self, key: Union[str, int], default: Any = None) -> Any:
        """Argument `key` (schema name, or position for Python functions) with FX nodes replaced
        by what they converted to: Values, ints, Sym, lists of those."""
        if key not in self.raw:
            return default
        v = self.importer.resolve(self.raw[key])
        return default if v is None else v

    def tensor(self, key: Union[str, int]) -> Value:
        """Argument `key`, which must be a tensor."""
        v = self.arg(key)
        if not isinstance(v, Value):
            raise self.error(f"argument '{key}' must be a tensor, got {type(v).__name__}")
        return v

    def operand(self, key: Union[str, int]) -> Operand:
        """A tensor or a Python/symbolic scalar (for ops that take either)."""
        v = self.arg(key)
        if not isinstance(v, (Value, int, float, bool, Sym)):
            raise self.error(f"argument '{key}' must be a tensor or a number, got {v!r}")
        return v

    def ints(self, key: Union[str, int], default: Sequence[int] = ()) -> list[int]:
        """An int-list argument whose entries must be known (a bare int counts as one entry)."""
        v = self.arg(key, default)
        v = [v] if isinstance(v, (int, Sym)) else list(v)
        if not all(isinstance(x, int) for x in v):
            raise self.error(f"argument '{key}' = {v} must be known at import time")
        return [int(x) for x in v]

    def dims(self, key: Union[str, int], out: Optional[int] = 0) -> list[Optional[Dim]]:
        """A size-list argument as dims (int, symbol name, None for an expression). Entries left
        unknown are taken from torch's output shape of result `out` where that is a plain dim."""
        v = self.arg(key)
        v = [v] if isinstance(v, (int, Sym)) else list(v)
        dims: list[Optional[Dim]] = []
        for x in v:
            if isinstance(x, bool) or not isinstance(x, (int, Sym)):
                raise self.error(f"argument '{key}' entry {x!r} is not a size")
            dims.append(x if isinstance(x, int) else x.name)
        meta = self.out_shape(out) if out is not None else None
        if meta is not None and len(meta) == len(dims):
            dims = [m if d is None else d for d, m in zip(dims, meta)]
        return dims

    # --- torch's metadata -----------------------------------------------------------------------
    def meta(self, i: Optional[int] = 0) -> Any:
        val = self.node.meta.get("val")
        if isinstance(val, (list, tuple)) and i is not None:
            return val[i] if i < len(val) else None
        return val

    def out_dtype(self, i: int = 0) -> Optional[dt.DType]:
        m = self.meta(i)
        return ir_dtype(m.dtype, self.where) if isinstance(m, torch.Tensor) else None

    def out_shape(self, i: int = 0) -> Optional[list[Optional[Dim]]]:
        m = self.meta(i)
        if not isinstance(m, torch.Tensor):
            return None
        return [self.importer.dim_of(s) for s in m.shape]

    def used_outputs(self) -> set[int]:
        """Indices of the results that some node reads (through getitem)."""
        return used_outputs(self.node)

    # --- building --------------------------------------------------------------------------------
    def op(self, name: str, *operands: Value, **attrs: Any) -> "Value | list[Value]":
        """Add IR op `name`; folded into a constant when every operand is known and small."""
        return self.importer.emit(name, list(operands), attrs, self.loc)

    def const(self, array: Any, dtype: Any = None) -> Value:
        """A constant value (known at import time)."""
        arr = np.asarray(array, dtype=None if dtype is None else dt.dtype(dtype).np_dtype)
        return self.importer.constant(arr, self.node.name + "_const", loc=self.loc)

    def scalar(self, value: Any, dtype: dt.DType) -> Value:
        """A 0-d constant of dtype (shared between uses)."""
        return self.importer.scalar(value, dtype, self.loc)

    def cast(self, v: Value, dtype: dt.DType) -> Value:
        return v if v.dtype is dtype else self.op("cast", v, to=dtype)

    def as_value(self, x: Operand, dtype: dt.DType) -> Value:
        """x (a tensor, a number or a symbolic scalar) as a tensor of dtype."""
        if isinstance(x, Value):
            return self.cast(x, dtype)
        if isinstance(x, Sym):
            return self.cast(self.importer.sym_value(x, self), dtype)
        return self.scalar(x, dtype)

    def known(self, v: Value) -> Optional[np.ndarray]:
        return self.importer.known.get(v)

    @property
    def where(self) -> str:
        return f"{target_name(self.node.target)} node '{self.node.name}'" + (
            f" ({self.loc.file}:{self.loc.line})" if self.loc.file else "")

    def error(self, message: str) -> TorchImportError:
        return TorchImportError(f"{self.where}: {message}")


def bind_arguments(node: torch.fx.Node) -> dict[Union[str, int], Any]:
    """The node's arguments by schema name (defaults filled in) for ATen ops, by position for
    Python functions."""
    target = node.target
    if isinstance(target, torch._ops.OpOverload):
        out: dict[Union[str, int], Any] = {}
        pos = 0
        for a in target._schema.arguments:
            if not a.kwarg_only and pos < len(node.args):
                out[a.name] = node.args[pos]
                pos += 1
            elif a.name in node.kwargs:
                out[a.name] = node.kwargs[a.name]
            elif a.has_default_value():
                out[a.name] = a.default_value
            else:
                out[a.name] = None
        return out
    out = {i: a for i, a in enumerate(node.args)}
    out.update(node.kwargs)
    return out


def used_outputs(node: torch.fx.Node) -> set[int]:
    """Indices of node's results read through getitem (every index when read otherwise)."""
    used: set[int] = set()
    for user in node.users:
        if user.target is operator.getitem and isinstance(user.args[1], int):
            if user.users:  # a getitem nobody reads does not count
                used.add(user.args[1])
        else:
            val = node.meta.get("val")
            used.update(range(len(val)) if isinstance(val, (list, tuple)) else {0})
    return used


# ---------------------------------------------------------------------------------------------
# the importer

_STACK_RE = re.compile(r'File "([^"]+)", line (\d+)')
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep


class Importer:
    """Converts one (decomposed) ExportedProgram into an IR module."""

    def __init__(self, ep: "torch.export.ExportedProgram", name: str,
                 dim_names: dict[str, str], training: bool = False) -> None:
        self.ep = ep
        self.training = training  # the module was exported in training mode (for hints)
        self.module = Module(clean_name(name) or "torch_model")
        self.f = ir.FunctionBuilder(self.module, "main")
        self.env: dict[torch.fx.Node, Any] = {}
        self.known: dict[Value, np.ndarray] = {}
        self.dim_names = dim_names  # sympy symbol name -> IR symbol (the user's Dim names)
        self.sym_sources: dict[str, tuple[Value, int]] = {}  # symbol -> (argument, axis)
        self._scalars: dict[tuple[str, str], Value] = {}

    # --- dims ----------------------------------------------------------------------------------
    def symbol(self, expr: Any) -> str:
        """The IR symbol of a sympy symbol (the user's Dim name when known)."""
        key = str(expr)
        if key not in self.dim_names:
            sym = clean_name(key) or "dim"
            self.dim_names[key] = sym if sym[0].isalpha() or sym[0] == "_" else "d_" + sym
        return self.dim_names[key]

    def dim_of(self, s: Any) -> Optional[Dim]:
        """A torch size entry as an IR dim: int, symbol name, or None for an expression."""
        if isinstance(s, int):
            return int(s)
        if isinstance(s, torch.SymInt):
            const = s.node.maybe_as_int()
            if const is not None:
                return int(const)
            expr = s.node.expr
            if getattr(expr, "is_Symbol", False):
                return self.symbol(expr)
            return self.dim_names.get(str(expr))  # an expression named as an input dim
        return None

    def sym_value(self, s: Sym, ctx: NodeContext) -> Value:
        """A 0-d i64 tensor holding a symbolic dim's run-time value."""
        if s.name is None or s.name not in self.sym_sources:
            raise ctx.error("a symbolic size expression is used as a tensor value; only plain "
                            "symbolic dims of the inputs can be")
        arg, axis = self.sym_sources[s.name]
        shape = ctx.op("shape_of", arg)
        return ctx.op("gather", shape, self.scalar(axis, dt.i64, ctx.loc), axis=0)

    # --- values --------------------------------------------------------------------------------
    def resolve(self, a: Any) -> Any:
        if isinstance(a, torch.fx.Node):
            if a not in self.env:
                raise TorchImportError(f"node '{a.name}' is used before it is converted")
            return self.env[a]
        if isinstance(a, (list, tuple)):
            return [self.resolve(x) for x in a]
        return a

    def constant(self, arr: np.ndarray, name: Optional[str], known: bool = True,
                 loc: Optional[Location] = None) -> Value:
        v = self.f.constant(arr, name=clean_name(name) or "cst")
        v.owner.loc = loc
        if known:
            self.known[v] = self.module.constants[v.owner.attrs["name"]]
        return v

    def scalar(self, value: Any, dtype: dt.DType, loc: Optional[Location] = None) -> Value:
        """A 0-d constant, shared by every use of the same value and dtype."""
        key = (dtype.name, repr(value))
        if key not in self._scalars:
            with np.errstate(all="ignore"):
                arr = np.asarray(value).astype(dtype.np_dtype)
            self._scalars[key] = self.constant(arr, "scalar", loc=loc)
        return self._scalars[key]

    def emit(self, name: str, operands: list[Value], attrs: dict[str, Any],
             loc: Optional[Location]) -> "Value | list[Value]":
        res = self.f.op(name, *operands, loc=loc, **attrs)
        results = res if isinstance(res, list) else [res]
        values = fold(self.module, results[0].owner, [self.known.get(v) for v in operands],
                      FOLD_LIMIT) if operands else None
        if values is None:
            return res
        self.f.function.ops.pop()  # replaced by constants
        folded = [self.constant(val, loc.name if loc else None, loc=loc) for val in values]
        return folded if isinstance(res, list) else folded[0]

    def location(self, node: torch.fx.Node) -> Location:
        """The node's name, and the innermost source line outside torch recorded for it (the
        model's own code, not nn.Linear's forward)."""
        trace = node.meta.get("stack_trace") or ""
        frames = [(f, ln) for f, ln in _STACK_RE.findall(trace)
                  if not os.path.abspath(f).startswith(_TORCH_DIR)]
        if frames:
            file, line = frames[-1]
            return Location(name=node.name, file=file, line=int(line))
        return Location(name=node.name)

    # --- the walk ------------------------------------------------------------------------------
    def run(self) -> Module:
        graph = self.ep.graph_module.graph
        self.check_signature()
        self.check_supported(graph)
        sig = self.ep.graph_signature
        weights = {**sig.inputs_to_parameters, **sig.inputs_to_buffers}
        lifted = dict(sig.inputs_to_lifted_tensor_constants)
        user_inputs = set(sig.user_inputs)
        for node in graph.nodes:
            if node.op == "placeholder":
                if node.name in weights:
                    self.env[node] = self.weight(node, weights[node.name], known=False)
                elif node.name in lifted:
                    self.env[node] = self.weight(node, lifted[node.name], known=True)
                elif node.name in user_inputs:
                    self.env[node] = self.user_input(node)
                else:
                    raise TorchImportError(f"input '{node.name}' is neither a user input nor a "
                                           "parameter, buffer or tensor constant")
            elif node.op == "call_function":
                self.call(node)
            elif node.op == "output":
                self.finish(node)
        self.record_bounds()
        from passes.prune_dead import PruneDead
        PruneDead().run(self.module)
        ir.verify(self.module)
        return self.module

    def check_signature(self) -> None:
        from torch.export.graph_signature import InputKind, OutputKind
        sig = self.ep.graph_signature
        for spec in sig.output_specs:
            if spec.kind in (OutputKind.BUFFER_MUTATION, OutputKind.USER_INPUT_MUTATION,
                             OutputKind.PARAMETER_MUTATION):
                what = {OutputKind.BUFFER_MUTATION: "buffer",
                        OutputKind.USER_INPUT_MUTATION: "user input",
                        OutputKind.PARAMETER_MUTATION: "parameter"}[spec.kind]
                raise TorchImportError(
                    f"the model mutates {what} '{spec.target or spec.arg.name}' in place; the IR "
                    "has no state: return the new value instead of assigning it")
            if spec.kind not in (OutputKind.USER_OUTPUT,):
                raise TorchImportError(f"unsupported exported output kind {spec.kind.name} "
                                       f"('{spec.arg}')")
        for spec in sig.input_specs:
            if spec.kind in (InputKind.CUSTOM_OBJ, InputKind.TOKEN):
                raise TorchImportError(f"unsupported exported input kind {spec.kind.name} "
                                       f"('{spec.arg}'): script objects and effect tokens have "
                                       "no IR form")

    def check_supported(self, graph: torch.fx.Graph) -> None:
        missing: dict[str, list[str]] = {}
        for node in graph.nodes:
            if node.op == "call_function":
                found = find_converter(node.target)
                if found is None:
                    missing.setdefault(target_name(node.target), []).append(node.name)
                elif found[1] is not None:
                    why = found[1](node)
                    if why:
                        missing.setdefault(target_name(node.target), []).append(
                            f"{node.name}: {why}")
            elif node.op in ("get_attr", "call_module", "call_method"):
                missing.setdefault(f"{node.op} {node.target}", []).append(node.name)
        if missing:
            hint = ""
            training_ops = ("dropout", "bernoulli", "batch_norm", "rand")
            if self.training and any(t in op for op in missing for t in training_ops):
                hint = "(the module is in training mode: call .eval() before importing it)"
            raise UnsupportedTorchOpsError(missing, hint)

    def weight(self, node: torch.fx.Node, fqn: str, known: bool) -> Value:
        t = self.ep.state_dict.get(fqn)
        if t is None:
            t = self.ep.constants.get(fqn)
        if not isinstance(t, torch.Tensor):
            raise TorchImportError(f"no value for weight '{fqn}' in the exported program")
        return self.constant(tensor_to_array(t, f"weight '{fqn}'"), fqn, known=known,
                             loc=Location(name=node.name))

    def user_input(self, node: torch.fx.Node) -> Any:
        val = node.meta.get("val")
        if isinstance(val, (int, float, bool)) or val is None:
            return val  # a specialized non-tensor input: its value is baked into the graph
        if not isinstance(val, torch.Tensor):
            raise TorchImportError(f"input '{node.name}' is a {type(val).__name__}; only tensor "
                                   "inputs can be imported (symbolic ints cannot)")
        dims: list[Dim] = []
        for i, s in enumerate(val.shape):
            d = self.dim_of(s)
            if d is None:  # an expression of other dims (a derived Dim): its own symbol here
                d = self.dim_names.setdefault(str(s.node.expr), f"{node.name}_d{i}")
            dims.append(d)
        dtype = ir_dtype(val.dtype, f"input '{node.name}'")
        v = self.f.arg(node.name, TensorType(tuple(dims), dtype))
        for i, d in enumerate(dims):
            if isinstance(d, str):
                self.sym_sources.setdefault(d, (v, i))
        return v

    def call(self, node: torch.fx.Node) -> None:
        fn, _ = find_converter(node.target)  # type: ignore[misc]
        ctx = NodeContext(self, node)
        try:
            res = fn(ctx)
        except TorchImportError:
            raise
        except ir.TypeInferenceError as e:
            raise ctx.error(str(e)) from None
        self.env[node] = self.check_result(ctx, res)

    def check_result(self, ctx: NodeContext, res: Any) -> Any:
        """Name the results after the node and hold them to torch's metadata: the dtype (cast
        when a converter computed in another), the rank and the static dims."""
        if isinstance(res, (list, tuple)):
            return [self._check_one(ctx, r, i) for i, r in enumerate(res)]
        return self._check_one(ctx, res, None)

    def _check_one(self, ctx: NodeContext, v: Any, i: Optional[int]) -> Any:
        if not isinstance(v, Value):
            return v
        meta = ctx.meta(i) if i is not None else ctx.meta(None)
        if isinstance(meta, torch.Tensor):
            want = ir_dtype(meta.dtype, ctx.where)
            if v.dtype is not want:
                v = ctx.op("cast", v, to=want)
            shape = [self.dim_of(s) for s in meta.shape]
            if len(shape) != v.type.rank or any(
                    isinstance(a, int) and isinstance(b, int) and a != b
                    for a, b in zip(shape, v.shape)):
                raise ctx.error(f"converted to {v.type} but torch computes shape "
                                f"{list(meta.shape)} (a converter bug)")
        if v.name is None and v.owner is not None and v.owner.name != "constant":
            v.name = clean_name(ctx.node.name if i is None else f"{ctx.node.name}_{i}")
        return v

    def finish(self, node: torch.fx.Node) -> None:
        from torch.export.graph_signature import OutputKind
        outs = node.args[0]
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        specs = self.ep.graph_signature.output_specs
        values = []
        for spec, o in zip(specs, outs):
            if spec.kind != OutputKind.USER_OUTPUT:
                continue
            v = self.resolve(o)
            if not isinstance(v, Value):
                raise TorchImportError(f"output '{spec.arg}' is {v!r}, not a tensor; the IR "
                                       "returns tensors only")
            values.append(v)
        self.f.ret(*values)

    def record_bounds(self) -> None:
        """Bounds of the symbols in @main's argument types, from ep.range_constraints."""
        used = {d for a in self.f.function.args for d in a.type.shape if isinstance(d, str)}
        for sym, vr in self.ep.range_constraints.items():
            if not getattr(sym, "is_Symbol", False):
                continue
            name = self.symbol(sym)
            if name not in used:
                continue
            lo = _bound(vr.lower)
            hi = _bound(vr.upper)
            self.module.dim_bounds[name] = (max(lo if lo is not None else 0, 0), hi)


def _bound(x: Any) -> Optional[int]:
    """An int bound, None for +-infinity (torch's int_oo, which is not a sympy Integer)."""
    if isinstance(x, int) or getattr(x, "is_Integer", False):
        return int(x)
    return None


def tensor_to_array(t: torch.Tensor, where: str) -> np.ndarray:
    """A weight as a NumPy array of its IR dtype."""
    d = ir_dtype(t.dtype, where)
    t = t.detach().cpu()
    if d is dt.bf16:
        return t.float().numpy().astype(dt.bf16.np_dtype)
    if d.is_narrow_float:  # NumPy has no float8: move the bits (bit-exact, like ml_dtypes' types)
        return t.contiguous().view(torch.uint8).numpy().copy().view(d.np_dtype)
    return np.array(t.numpy(), dtype=d.np_dtype)  # a copy: later edits of the model do not leak


# ---------------------------------------------------------------------------------------------
# export and Dim names


def export_program(model: Any, example_inputs: Any, dynamic_shapes: Any
                   ) -> "torch.export.ExportedProgram":
    """torch.export the module (an ExportedProgram is taken as is), then decompose to core
    ATen except KEEP_OPS. torch's failures become TorchImportError."""
    if isinstance(model, torch.export.ExportedProgram):
        ep = model
    elif isinstance(model, torch.nn.Module):
        if example_inputs is None:
            raise TorchImportError(f"importing a {type(model).__name__} (an nn.Module) needs "
                                   "example_inputs to export it with torch.export")
        try:
            ep = torch.export.export(model, as_args(example_inputs), dynamic_shapes=dynamic_shapes)
        except Exception as e:  # torch raises many kinds: UserError, RuntimeError, ...
            raise TorchImportError(f"torch.export of {type(model).__name__} failed: "
                                   f"{_summary(e)}") from e
    else:
        raise TorchImportError(f"from_torch takes a torch.nn.Module or a "
                               f"torch.export.ExportedProgram, got {type(model).__name__}")
    table = torch.export.default_decompositions()
    for name in KEEP_OPS:
        op = _overload(name)
        if op is not None and op in table:
            del table[op]
    try:
        dec = ep.run_decompositions(table)
    except Exception as e:
        raise TorchImportError(f"decomposing the exported program failed: {_summary(e)}") from e
    return dec


def _overload(name: str) -> Any:
    ns, op, overload = name.split(".")
    try:
        return getattr(getattr(getattr(torch.ops, ns), op), overload)
    except AttributeError:
        return None


def _summary(e: BaseException) -> str:
    """The first line of torch's message, plus its suggested fixes when it gives some."""
    lines = [ln for ln in str(e).strip().splitlines()]
    first = next((ln.strip() for ln in lines if ln.strip()), type(e).__name__)
    out = f"{type(e).__name__}: {first}"
    if "Suggested fixes:" in lines:
        fixes = []
        for ln in lines[lines.index("Suggested fixes:") + 1:]:
            if not ln.strip():
                break
            fixes.append(ln.strip())
        if fixes:
            out += " (suggested fixes: " + "; ".join(fixes) + ")"
    return out


def as_args(example_inputs: Any) -> tuple:
    if isinstance(example_inputs, (list, tuple)):
        return tuple(example_inputs)
    return (example_inputs,)


def dim_names(ep: "torch.export.ExportedProgram", model: Any, example_inputs: Any,
              dynamic_shapes: Any) -> dict[str, str]:
    """Map the graph's size symbols (s0, s77, ...) to the names of the user's torch.export.Dim
    objects, by walking dynamic_shapes in parallel with example_inputs."""
    if dynamic_shapes is None or example_inputs is None:
        return {}
    args = as_args(example_inputs)
    specs: Any = dynamic_shapes
    if isinstance(dynamic_shapes, dict):
        if isinstance(model, torch.nn.Module):
            names = list(inspect.signature(model.forward).parameters)
        else:
            names = list(ep.graph_signature.user_inputs)
        specs = [dynamic_shapes.get(n) for n in names[:len(args)]]
    pairs: list[tuple[torch.Tensor, Any]] = []
    _pair_leaves(args, specs, pairs)
    sig = ep.graph_signature
    placeholders = [n for n in ep.graph_module.graph.nodes
                    if n.op == "placeholder" and n.name in set(sig.user_inputs)
                    and isinstance(n.meta.get("val"), torch.Tensor)]
    if len(placeholders) != len(pairs):
        return {}
    out: dict[str, str] = {}
    for node, (_, spec) in zip(placeholders, pairs):
        items = spec.items() if isinstance(spec, dict) else enumerate(spec or ())
        shape = node.meta["val"].shape
        for axis, d in items:
            name = getattr(d, "__name__", None)
            if name is None or not isinstance(axis, int) or not -len(shape) <= axis < len(shape):
                continue
            s = shape[axis]
            if isinstance(s, torch.SymInt) and getattr(s.node.expr, "is_Symbol", False) \
                    and re.match(r"[A-Za-z_][A-Za-z0-9_]*\Z", name):
                out.setdefault(str(s.node.expr), name)
    return out


def _pair_leaves(arg: Any, spec: Any, out: list[tuple[torch.Tensor, Any]]) -> None:
    """(tensor, its per-axis spec) for every tensor leaf of arg, in pytree order."""
    if isinstance(arg, torch.Tensor):
        out.append((arg, spec))
    elif isinstance(arg, (list, tuple)):
        subs = list(spec) if isinstance(spec, (list, tuple)) and len(spec) == len(arg) \
            else [None] * len(arg)
        for a, s in zip(arg, subs):
            _pair_leaves(a, s, out)
    elif isinstance(arg, dict):
        for k in arg:
            _pair_leaves(arg[k], spec.get(k) if isinstance(spec, dict) else None, out)


def from_torch(module_or_exported_program: Any, example_inputs: Any = None,
               dynamic_shapes: Any = None) -> Module:
    """Import a torch.nn.Module (exported with torch.export on example_inputs, with
    dynamic_shapes as torch.export takes them) or a torch.export.ExportedProgram as an IR module
    whose @main takes the user inputs and returns the user outputs. Parameters, buffers and
    tensor constants become module constants named by their qualified names ("fc1.weight");
    a torch.export.Dim stays a symbolic dim with the Dim's name and bounds."""
    model = module_or_exported_program
    ep = export_program(model, example_inputs, dynamic_shapes)
    names = dim_names(ep, model, example_inputs, dynamic_shapes)
    title = type(model).__name__ if isinstance(model, torch.nn.Module) else "exported_program"
    training = isinstance(model, torch.nn.Module) and model.training
    return Importer(ep, title, names, training).run()
