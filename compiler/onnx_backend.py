"""An `onnx.backend.base.Backend` over the compiler, so ONNX's own backend test suite runs on it.

    import compiler.onnx_backend as backend
    rep = backend.prepare(model)          # import (and, with a code generator, compile) once
    outputs = rep.run([x, y])             # or a dict {input name: array}

`prepare` imports the model and runs compiler.compile's default pass pipeline (`opt_level=2`
unless given), then builds the result for the target (`target=` keyword, else
$COMPILER_ONNX_TARGET, else compiler.api.DEFAULT_TARGET).
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import numpy as np
import onnx
import onnx.shape_inference
from onnx import helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType

from compiler import ir


class CompilerBackendRep(BackendRep):
    """A prepared model: the imported module plus the graph's input and output names."""

    def __init__(self, module: Any, input_names: Sequence[str], output_names: Sequence[str]):
        self.module = module  # a runnable module built for the backend's target
        self.input_names = list(input_names)
        self.output_names = list(output_names)

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        return tuple(self.module(*_as_list(inputs, self.input_names)))


class SpecializingBackendRep(CompilerBackendRep):
    """A model whose shapes depend on some inputs' values: imported per distinct value of those
    inputs (bound as constants), like a JIT specializing on shape arguments."""

    def __init__(self, model: onnx.ModelProto, input_names: Sequence[str],
                 output_names: Sequence[str], specialized: Sequence[str],
                 opt_level: int = 2, target: str = "interpreter") -> None:
        self.model = model
        self.opt_level = opt_level
        self.target = target
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.specialized = list(specialized)
        self.cache: dict[bytes, Any] = {}

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        from frontends import from_onnx
        from frontends.onnx import NeedsConstantError
        arrays = dict(zip(self.input_names, _as_list(inputs, self.input_names)))
        while True:
            bound = {n: arrays[n] for n in self.specialized}
            key = b"".join(n.encode() + a.dtype.str.encode() + repr(a.shape).encode() + a.tobytes()
                           for n, a in bound.items())
            if key in self.cache:
                break
            try:
                self.cache[key] = _build(from_onnx(self.model, bind=bound), self.opt_level,
                                         self.target)
                break
            except NeedsConstantError as e:  # binding some inputs can expose the next ones
                more = [n for n in e.inputs if n not in self.specialized]
                if not more or any(arrays[n].size > SPECIALIZE_LIMIT for n in more):
                    raise
                self.specialized += more
        rest = [arrays[n] for n in self.input_names if n not in bound]
        return tuple(self.cache[key](*rest))


def _as_list(inputs: Any, names: Sequence[str]) -> list[np.ndarray]:
    if isinstance(inputs, dict):
        missing = [n for n in names if n not in inputs]
        if missing:
            raise ValueError(f"missing inputs: {', '.join(missing)}")
        return [np.asarray(inputs[n]) for n in names]
    if isinstance(inputs, (list, tuple)):
        return [np.asarray(a) for a in inputs]
    return [np.asarray(inputs)]


def target_of(kwargs: dict) -> str:
    """The target the backend compiles for: the `target` keyword, else $COMPILER_ONNX_TARGET,
    else compiler.api.DEFAULT_TARGET."""
    from compiler.api import DEFAULT_TARGET
    return kwargs.get("target") or os.environ.get("COMPILER_ONNX_TARGET") or DEFAULT_TARGET


def _build(module: ir.Module, opt_level: int, target: str) -> Any:
    """What compiler.compile does after import: the default pipeline of the opt level, then the
    target's code generator."""
    from compiler.api import build, optimize
    return build(optimize(module, opt_level=opt_level), target)


SPECIALIZE_LIMIT = 1024  # elements: larger inputs are data, never specialized on


def _is_small(vi: onnx.ValueInfoProto) -> bool:
    """A static input of at most SPECIALIZE_LIMIT elements."""
    dims = list(vi.type.tensor_type.shape.dim)
    if not all(d.HasField("dim_value") for d in dims):
        return False
    return int(np.prod([d.dim_value for d in dims])) <= SPECIALIZE_LIMIT


class CompilerBackend(Backend):
    """The ONNX backend interface (prepare, run_model, run_node, supports_device)."""

    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU",
                **kwargs: Any) -> "CompilerBackendRep | SpecializingBackendRep":
        """Import the model. If a shape-deciding value (pads, split sizes, K, a reshape target,
        or the data of an op whose output shape depends on values, like NonZero) is computed
        from small graph inputs, the model is instead specialized on exactly those inputs'
        values at run time, one import per distinct value (cached)."""
        from frontends import from_onnx
        from frontends.onnx import NeedsConstantError
        if not cls.supports_device(device):
            raise ValueError(f"device {device!r} is not supported; use 'CPU'")
        inits = {t.name for t in model.graph.initializer}
        inputs = [i for i in model.graph.input if i.name not in inits]
        names = [i.name for i in inputs]
        outputs = [o.name for o in model.graph.output]
        opt_level = kwargs.get("opt_level", 2)
        target = target_of(kwargs)
        try:
            return CompilerBackendRep(_build(from_onnx(model), opt_level, target), names, outputs)
        except NeedsConstantError as e:
            if not e.inputs or not all(_is_small(i) for i in inputs if i.name in e.inputs):
                raise
            return SpecializingBackendRep(model, names, outputs, e.inputs, opt_level, target)

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU",
                  **kwargs: Any) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Optional[Sequence[tuple[Any, Any]]] = None,
                 **kwargs: Any) -> tuple[np.ndarray, ...]:
        """Run one node on arrays: a one-node model is built around it (opset from kwargs
        `opset_version`, default the newest this frontend imports)."""
        from frontends.onnx.importer import MAX_OPSET, onnx_dtype
        arrays = [np.asarray(x) for x in (inputs.values() if isinstance(inputs, dict) else inputs)]
        names = list(inputs) if isinstance(inputs, dict) else list(node.input)
        ins = [helper.make_tensor_value_info(n, onnx_dtype(ir.dtypes.dtype(a.dtype)), a.shape)
               for n, a in zip(names, arrays) if n]
        outs = [helper.make_empty_tensor_value_info(n) for n in node.output]
        graph = helper.make_graph([node], "run_node", ins, outs)
        opset = kwargs.get("opset_version", MAX_OPSET)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model = onnx.shape_inference.infer_shapes(model)  # the outputs need types to be valid
        return cls.run_model(model, [a for n, a in zip(names, arrays) if n], device, **kwargs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return Device(device).type == DeviceType.CPU


prepare = CompilerBackend.prepare
run_model = CompilerBackend.run_model
run_node = CompilerBackend.run_node
supports_device = CompilerBackend.supports_device
is_compatible = CompilerBackend.is_compatible
