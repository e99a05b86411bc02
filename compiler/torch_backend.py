"""A `torch.compile` backend: each graph TorchDynamo captures is compiled by this compiler.

    import compiler
    fast = torch.compile(model, backend=compiler.torch_backend)
    fast = torch.compile(model, backend=compiler.make_torch_backend(target="interpreter"))

Dynamo hands the backend an FX GraphModule at the torch level plus real example inputs. The backend
binds the graph's module state (parameters, buffers, module attributes: every input that does not
come from the compiled frame's own arguments) as constants, the way inductor's "freezing" does, so
weights can be packed at compile time; torch.export-s the bound graph; and compiles the exported
program with `compiler.compile`. That happens on the graph's first call (torch.export inside the
backend call would pick up the enclosing Dynamo frame's guards). Integer/SymInt graph inputs
(dynamic shapes) are specialized: one compiled module per distinct set of shapes and scalars.

The returned callable takes and returns torch tensors: CPU inputs reach the compiled module through
DLPack without a copy, outputs come back with torch.from_numpy. It is for inference: when autograd
is recording (an input requires grad under grad mode) the graph runs eagerly instead, so backward
stays correct. A graph that cannot be compiled (an unsupported ATen op, input mutation, a tensor
that is not on the CPU, a target without a code generator) runs eagerly with one warning that says
why, naming the ops. Frozen weights are re-bound when one changes (its identity or version).
"""
from __future__ import annotations

import functools
import warnings
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch
# torch itself is imported on first use: `import compiler` stays light for the CLI

__all__ = ["torch_backend", "make_torch_backend", "TorchBackendWarning"]


class TorchBackendWarning(RuntimeWarning):
    """A graph (or one call of it) runs eagerly in PyTorch instead of through the compiler."""


class _Unsupported(Exception):
    """Why a graph cannot be compiled; becomes the fallback warning."""


def make_torch_backend(target: Optional[str] = None, *, freeze: bool = True,
                       **compile_options: Any) -> Callable:
    """A torch.compile backend compiling for `target` (None: compiler.api.DEFAULT_TARGET).
    freeze=False keeps parameters and buffers as run-time inputs instead of constants.
    compile_options go to compiler.compile (opt_level, passes, dump_dir, ...)."""
    return functools.partial(torch_backend, target=target, freeze=freeze, **compile_options)


def torch_backend(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], *,
                  target: Optional[str] = None, freeze: bool = True,
                  **compile_options: Any) -> Callable:
    """The backend itself: `torch.compile(model, backend=compiler.torch_backend)`."""
    from . import api
    return CompiledGraph(gm, list(example_inputs), target or api.DEFAULT_TARGET, freeze,
                         compile_options)


class CompiledGraph:
    """One Dynamo graph: compiled modules per input signature, or eager when it cannot be."""

    def __init__(self, gm: torch.fx.GraphModule, example_inputs: list[Any], target: str,
                 freeze: bool, compile_options: dict[str, Any]) -> None:
        import torch
        self.gm = gm
        self.target = target
        self.compile_options = compile_options
        self.compiled: dict[tuple, _Entry] = {}
        self.eager_reason: Optional[str] = None  # set: the whole graph runs eagerly
        self._warned_grad = False
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        self.frozen: list[int] = []   # inputs bound as constants
        self.runtime: list[int] = []  # tensors passed at run time
        self.scalars: list[int] = []  # ints/floats/SymInts: specialized per value
        for i, x in enumerate(example_inputs):
            if isinstance(x, torch.Tensor):
                node = placeholders[i] if i < len(placeholders) else None
                (self.frozen if freeze and _is_module_state(x, node) else self.runtime).append(i)
            elif isinstance(x, (int, float, bool, torch.SymInt, torch.SymFloat, torch.SymBool)):
                self.scalars.append(i)
            else:
                self._give_up(f"graph input {i} is a {type(x).__name__}, not a tensor or number")
                return
        # compiled on the first call, outside Dynamo's tracing context (torch.export inside a
        # backend call picks up the enclosing frame's guards)
        self._bound: list[tuple[torch.Tensor, int]] = []

    # --- calling ---------------------------------------------------------------------------------
    def __call__(self, *args: Any) -> Any:
        import torch
        if self.eager_reason is not None:
            return self.gm(*args)
        if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad
                                           for a in args):
            if not self._warned_grad:
                self._warned_grad = True
                warnings.warn("compiler.torch_backend compiles for inference; this call records "
                              "autograd (an input requires grad), so the graph runs eagerly. Use "
                              "torch.inference_mode() or torch.no_grad() to run it compiled.",
                              TorchBackendWarning, stacklevel=2)
            return self.gm(*args)
        if any(args[i] is not t or t._version != v for i, (t, v) in zip(self.frozen, self._bound)):
            self.compiled.clear()  # a weight was replaced or updated in place: bind it again
        try:
            entry = self._entry(args)
        except _Unsupported as e:
            self._give_up(str(e))
            return self.gm(*args)
        outs = entry.module(*[_to_numpy(args[i]) for i in self.runtime])
        from torch.utils import _pytree as pytree
        return pytree.tree_unflatten([_to_torch(o) for o in outs], entry.out_spec)

    # --- compiling -------------------------------------------------------------------------------
    def _key(self, args: Sequence[Any]) -> tuple:
        return (tuple((tuple(args[i].shape), args[i].dtype) for i in self.runtime)
                + tuple(_concrete(args[i]) for i in self.scalars))

    def _entry(self, args: Sequence[Any]) -> "_Entry":
        key = self._key(args)
        if key not in self.compiled:
            self.compiled[key] = self._compile(args)
            self._bound = [(args[i], args[i]._version) for i in self.frozen]
        return self.compiled[key]

    def _compile(self, args: Sequence[Any]) -> "_Entry":
        import torch
        from . import api
        for i in self.frozen + self.runtime:
            t = args[i]
            if t.device.type != "cpu":
                raise _Unsupported(f"graph input {i} is on {t.device}; this backend runs CPU "
                                   "tensors")
            if t.dtype not in _numpy_dtypes():
                raise _Unsupported(f"graph input {i} has dtype {t.dtype}, which NumPy cannot "
                                   "hold")
            if t.is_sparse or t.layout != torch.strided:
                raise _Unsupported(f"graph input {i} has layout {t.layout}")
        bound = bind_graph(self.gm, args, self.frozen, self.scalars)
        runtime_args = tuple(args[i].detach() for i in self.runtime)
        with torch.no_grad():
            want = self.gm(*[a.detach() if isinstance(a, torch.Tensor) else _concrete(a)
                             for a in args])
        from torch.utils import _pytree as pytree
        leaves, out_spec = pytree.tree_flatten(want)
        bad = [type(x).__name__ for x in leaves if not isinstance(x, torch.Tensor)]
        if bad:
            raise _Unsupported(f"the graph returns non-tensor values ({', '.join(bad)})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecations
            try:
                ep = torch.export.export(bound, runtime_args)
            except Exception as e:  # torch raises many kinds
                raise _Unsupported(f"torch.export of the graph failed: {_first_line(e)}") from e
            sig = ep.graph_signature
            mutated = (list(sig.buffers_to_mutate.values())
                       + list(sig.user_inputs_to_mutate.values()))
            if mutated:
                raise _Unsupported(f"the graph mutates its inputs in place "
                                   f"({', '.join(mutated)})")
            try:
                module = api.compile(ep, target=self.target, **self.compile_options)
            except ImportError as e:
                raise _Unsupported(f"target '{self.target}' cannot be built here: {e}") from e
            except Exception as e:  # unsupported ops, import and build errors name the cause
                raise _Unsupported(f"{type(e).__name__}: {e}") from e
        if len(module.output_types) != len(leaves):
            raise _Unsupported(f"the compiled module has {len(module.output_types)} outputs, "
                               f"the graph {len(leaves)}")
        return _Entry(module, out_spec)

    def _give_up(self, reason: str) -> None:
        self.eager_reason = reason
        self.compiled.clear()
        warnings.warn(f"compiler.torch_backend: running a graph of {len(self.gm.graph.nodes)} "
                      f"nodes eagerly in PyTorch: {reason}", TorchBackendWarning, stacklevel=3)


class _Entry:
    __slots__ = ("module", "out_spec")

    def __init__(self, module: Any, out_spec: Any) -> None:
        self.module = module
        self.out_spec = out_spec


def bind_graph(gm: torch.fx.GraphModule, args: Sequence[Any], frozen: list[int],
               scalars: list[int]) -> torch.fx.GraphModule:
    """A copy of the Dynamo graph that torch.export can take: frozen inputs become attributes
    (constants after export), scalar inputs and `.item()` of frozen one-element tensors become
    Python values in their users' arguments; the remaining placeholders are the run-time tensors."""
    import torch
    graph = torch.fx.Graph()
    env: dict[torch.fx.Node, torch.fx.Node] = {}
    graph.output(graph.graph_copy(gm.graph, env))
    for node in graph.nodes:  # Dynamo's fake values and guards' sources mean nothing to export
        node.meta = {k: v for k, v in node.meta.items() if k == "stack_trace"}
    root = torch.nn.Module()
    placeholders = [env[n] for n in gm.graph.nodes if n.op == "placeholder"]
    for k, i in enumerate(frozen):
        t = args[i].detach()
        root.register_buffer(f"frozen_{k}", t)
        node = placeholders[i]
        for user in list(node.users):
            if t.numel() == 1 and _is_item(user):  # momentum.item() -> 0.1
                _substitute(graph, user, t.item())
        with graph.inserting_before(node):
            attr = graph.get_attr(f"frozen_{k}")
        node.replace_all_uses_with(attr)
        graph.erase_node(node)
    for i in scalars:
        _substitute(graph, placeholders[i], _concrete(args[i]))
    graph.lint()
    return torch.fx.GraphModule(root, graph)


def _is_item(node: torch.fx.Node) -> bool:
    import torch
    return ((node.op == "call_method" and node.target == "item")
            or (node.op == "call_function" and node.target in (torch.Tensor.item,
                                                               torch.ops.aten.item.default)))


def _substitute(graph: torch.fx.Graph, node: torch.fx.Node, value: Any) -> None:
    """Replace every use of `node` by a Python value and drop the node."""
    import torch
    def swap(a: Any) -> Any:
        return value if a is node else a
    for user in list(node.users):
        user.args = torch.fx.node.map_aggregate(user.args, swap)
        user.kwargs = torch.fx.node.map_aggregate(user.kwargs, swap)
    graph.erase_node(node)


def _is_module_state(t: torch.Tensor, node: Optional[torch.fx.Node]) -> bool:
    """A parameter, buffer or other tensor reached from module/global state rather than from the
    compiled frame's arguments (Dynamo records where each graph input came from)."""
    import torch
    if isinstance(t, torch.nn.Parameter):
        return True
    grapharg = node.meta.get("grapharg") if node is not None else None
    source = getattr(grapharg, "source", None)
    if source is None:
        return False
    while getattr(source, "base", None) is not None:
        if "ParamBuffer" in type(source).__name__ or "NNModule" in type(source).__name__:
            return True
        source = source.base
    return not getattr(source, "is_input", True)  # rooted in a global or a closure variable


def _concrete(x: Any) -> Any:
    """A SymInt/SymFloat/SymBool as its Python value (others unchanged)."""
    import torch
    if isinstance(x, torch.SymInt):
        return int(x)
    if isinstance(x, torch.SymFloat):
        return float(x)
    if isinstance(x, torch.SymBool):
        return bool(x)
    return x


def _numpy_dtypes() -> set:
    import torch
    return {torch.float16, torch.float32, torch.float64, torch.int8, torch.uint8, torch.int16,
            torch.int32, torch.int64, torch.bool}


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    """A CPU tensor as a NumPy array sharing its memory (DLPack)."""
    import torch
    t = t.detach()
    if t.is_conj() or t.is_neg():
        t = t.resolve_conj().resolve_neg()
    return np.from_dlpack(t)


def _to_torch(a: Any) -> torch.Tensor:
    """A result array as a tensor, sharing memory where torch can (writable, positive strides)."""
    import torch
    a = np.asarray(a)
    if not a.flags.writeable or any(s < 0 for s in a.strides) or not a.dtype.isnative:
        a = np.array(a, copy=True, order="C")
    return torch.from_numpy(a)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"
