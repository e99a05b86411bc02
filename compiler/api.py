"""`compiler.compile`: any supported model form -> graph IR -> passes -> a callable module.

    import compiler
    mod = compiler.compile("model.onnx")                        # or a ModelProto
    mod = compiler.compile(torch_module, example_inputs=(x,))   # or an ExportedProgram
    outs = mod(x)                                                # list of numpy arrays

Targets: "interpreter" (the reference interpreter), "llvm" (host CPU), "xla" and "tpu" (through
XLA), "cuda" (planned). Each target is a `build(module, target, dump_dir=...)` function found
through TARGETS; it returns an object that is called with arrays and returns a list of arrays.
target=None picks "llvm".
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import numpy as np

from . import ir

# target name -> "package.module:function" building a runnable module (None: planned, not built)
TARGETS: dict[str, Optional[str]] = {
    "interpreter": "compiler.api:build_interpreter",
    "llvm": "codegen.llvm:build",
    "xla": "codegen.xla:build",
    "tpu": "codegen.xla:build",
    "cuda": None,
}
DEFAULT_TARGET = "llvm"


class CompileError(ValueError):
    """The input could not be compiled: says what was given and what went wrong."""


def to_module(graph: Any, example_inputs: Optional[Sequence[Any]] = None,
              dynamic_dims: Any = None) -> ir.Module:
    """Import `graph` (ONNX model or path, torch module or ExportedProgram, IR Module or text)."""
    if isinstance(graph, ir.Module):
        return graph
    if isinstance(graph, (str, os.PathLike)):
        path = os.fspath(graph)
        if isinstance(graph, str) and graph.lstrip().startswith("module @"):
            return ir.parse(graph)
        if path.endswith(".onnx"):
            from frontends import from_onnx
            return from_onnx(path)
        if os.path.exists(path):
            return ir.load(path)
        raise CompileError(f"{path}: no such file (give an .onnx file, an IR file, or IR text)")
    mod_name = type(graph).__module__
    if mod_name.startswith("onnx"):
        from frontends import from_onnx
        return from_onnx(graph)
    if mod_name.startswith("torch"):
        from frontends.torch import from_torch
        return from_torch(graph, example_inputs=example_inputs, dynamic_shapes=dynamic_dims)
    try:
        import torch
        if isinstance(graph, torch.nn.Module):
            from frontends.torch import from_torch
            return from_torch(graph, example_inputs=example_inputs, dynamic_shapes=dynamic_dims)
    except ImportError:
        pass
    raise CompileError(f"cannot compile a {type(graph).__name__}: give an onnx.ModelProto or .onnx "
                       "path, a torch.nn.Module with example_inputs, a torch.export.ExportedProgram, "
                       "an IR Module or IR text")


class CompiledModule:
    """A module run by the reference interpreter: call it with arrays (one per graph input), get
    a list of arrays. Code generators return their own runnable modules with the same surface."""

    def __init__(self, module: ir.Module, target: str) -> None:
        self.module = module
        self.target = target
        self.function = module.main

    @property
    def input_types(self) -> list[ir.TensorType]:
        return self.function.arg_types

    @property
    def output_types(self) -> list[ir.TensorType]:
        return self.function.output_types

    def __call__(self, *inputs: Any) -> list[np.ndarray]:
        arrays = [_as_numpy(x) for x in inputs]
        return ir.interpret(self.module, *arrays)

    def __repr__(self) -> str:
        sig = ", ".join(str(t) for t in self.input_types)
        return f"CompiledModule(@{self.module.name}({sig}), target={self.target!r})"


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # torch tensors (CPU)
        return x.detach().cpu().numpy()
    return np.asarray(x)


def build_interpreter(module: ir.Module, target: str = "interpreter", *,
                      dump_dir: Optional[str] = None) -> CompiledModule:
    return CompiledModule(module, target)


def build(module: ir.Module, target: str, *, dump_dir: Optional[str] = None) -> Any:
    """Build an optimized module for `target` (see TARGETS)."""
    if target not in TARGETS:
        raise CompileError(f"unknown target '{target}'; targets are " + ", ".join(TARGETS))
    where = TARGETS[target]
    if where is None:
        ready = [t for t, w in TARGETS.items() if w is not None]
        raise CompileError(f"target '{target}' has no code generator yet; available: "
                           + ", ".join(ready))
    import importlib
    mod_name, fn_name = where.split(":")
    builder = getattr(importlib.import_module(mod_name), fn_name)
    try:
        return builder(module, target, dump_dir=dump_dir)
    except CompileError:
        raise
    except ValueError as e:  # LoweringError, ScheduleError, ...: say which target refused
        raise CompileError(f"target '{target}': {e}") from e


def optimize(module: ir.Module, pipeline: Optional[str] = None, *, opt_level: int = 2,
             dump_dir: Optional[str] = None, print_ir_after: Any = None,
             check_numerics: Any = False, verify_each: bool = True) -> ir.Module:
    """Run a pass pipeline (None: the default one for opt_level) on a copy of `module` and return
    the copy. Instruments: print_ir_after ("all", "change" or pass names), dump_dir (numbered IR
    files and a summary), check_numerics (True or a passes.manager.NumericsCheck) and
    verify_each; see passes/manager.py."""
    from passes.manager import PassManager
    from .pipeline import default_pipeline

    text = pipeline if pipeline is not None else default_pipeline(opt_level)
    pm = PassManager.from_string(text, verify_each=verify_each, print_ir_after=print_ir_after,
                                 dump_dir=dump_dir, check_numerics=check_numerics)
    return pm.run(ir.clone_module(module))


def compile(graph: Any, target: Optional[str] = None, *,
            example_inputs: Optional[Sequence[Any]] = None, opt_level: int = 2,
            passes: Optional[str] = None, dynamic_dims: Any = None,
            dump_dir: Optional[str] = None, print_ir_after: Any = None,
            check_numerics: Any = False) -> Any:
    """Import, optimize and build `graph` for `target`; see the module docstring."""
    target = target or DEFAULT_TARGET
    if target not in TARGETS:
        raise CompileError(f"unknown target '{target}'; targets are " + ", ".join(TARGETS))
    if not 0 <= opt_level <= 3:
        raise CompileError(f"opt_level must be 0..3, got {opt_level}")
    module = to_module(graph, example_inputs, dynamic_dims)
    ir.verify(module)
    if check_numerics is True and example_inputs is not None:
        from passes.manager import NumericsCheck
        check_numerics = NumericsCheck(inputs=[_as_numpy(x) for x in example_inputs])
    module = optimize(module, passes, opt_level=opt_level, dump_dir=dump_dir,
                      print_ir_after=print_ir_after, check_numerics=check_numerics)
    return build(module, target, dump_dir=dump_dir)
