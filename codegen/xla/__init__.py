"""XLA and TPU targets: graph IR -> StableHLO text -> an XLA executable through jaxlib's PJRT.

    mod = compiler.compile(model, target="xla")    # XLA's default backend (the CPU here)
    outs = mod(x)                                   # NumPy arrays (or torch tensors) in
    print(mod.stablehlo)                            # exactly the text XLA compiled

Stages (each a module of this package):
  translate.py     graph IR -> StableHLO (`lower_*.py` hold one rule per op, by family)
  specialize.py    symbolic dims -> one static binding per distinct input shape
  runtime.py       PJRT: compile the text, upload weights once, execute

target="tpu" emits the TPU's preferred forms (bf16 matmul/conv inputs with f32 accumulation,
contraction operands padded to (8, 128) tiles where that adds little) and runs on a TPU when XLA
has one, else on XLA's CPU backend with a warning. `build(..., bf16_contractions=False)` keeps
f32 contractions on "tpu".
"""
from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from compiler.ir import Module, TensorType
from compiler.ir import dtypes as dt
from compiler.ir.interpreter import bind_dims

from .emitter import LoweringError
from .lowering import Options
from .runtime import Executable, as_numpy, backend_for
from .specialize import specialize
from .translate import Program, supported_ops, translate

__all__ = ["build", "XlaModule", "InputError", "LoweringError", "Options", "translate",
           "supported_ops", "options_for"]


class InputError(ValueError):
    """A call's inputs do not match the compiled signature: names the input, expected, actual."""


class RuntimeCheckError(IndexError):
    """A run-time check of the compiled code failed (an index out of range, say)."""


def options_for(target: str, bf16_contractions: Optional[bool] = None,
                pad_to_tiles: Optional[bool] = None) -> Options:
    """The emission options of a target ("xla" or "tpu")."""
    if target not in ("xla", "tpu"):
        raise ValueError(f"codegen.xla builds targets 'xla' and 'tpu', not {target!r}")
    tpu = target == "tpu"
    return Options(target=target,
                   bf16_contractions=tpu if bf16_contractions is None else bf16_contractions,
                   pad_to_tiles=tpu if pad_to_tiles is None else pad_to_tiles,
                   wide_float=dt.f32 if tpu else dt.f64)


class XlaModule:
    """A module compiled by XLA. Inputs are checked (dtype, shape, symbolic dims bound
    consistently, within their bounds) before anything runs. A module with symbolic dims is
    compiled once per distinct binding of them (`specializations`)."""

    def __init__(self, module: Module, target: str, options: Options,
                 dump_dir: Optional[str] = None) -> None:
        self.module = module
        self.target = target
        self.options = options
        self.dump_dir = dump_dir
        self.function = module.main
        self.client, self.platform = backend_for(target)
        self.specializations: dict[tuple[tuple[str, int], ...], tuple[Program, Executable]] = {}
        self._last: Optional[tuple[Program, Executable]] = None
        if all(t.is_static for t in self.function.arg_types):
            self._last = self._compile(module, ())

    # --- the runnable-module surface -------------------------------------------------------------

    @property
    def input_types(self) -> list[TensorType]:
        return self.function.arg_types

    @property
    def output_types(self) -> list[TensorType]:
        return self.function.output_types

    @property
    def stablehlo(self) -> str:
        """The StableHLO text XLA compiled (for symbolic dims: the latest specialization)."""
        if self._last is None:
            raise LoweringError(f"@{self.function.name} has symbolic dims and has not run yet: "
                                "its StableHLO exists once per input shape (see "
                                "`specializations`)")
        return self._last[0].text

    @property
    def compile_seconds(self) -> float:
        return sum(exe.compile_seconds for _, exe in self.specializations.values())

    def __call__(self, *inputs: Any) -> list[np.ndarray]:
        arrays, env = self._check_inputs(inputs)
        key = tuple(sorted(env.items()))
        if key not in self.specializations:
            self._last = self._compile(specialize(self.module, env), key)
        program, exe = self.specializations[key]
        self._last = (program, exe)
        outs = exe(arrays)
        n = len(program.output_types)
        for flag, message in zip(outs[n:], program.checks):
            if bool(flag):
                raise RuntimeCheckError(message)
        return outs[:n]

    def __repr__(self) -> str:
        sig = ", ".join(str(t) for t in self.input_types)
        return (f"XlaModule(@{self.module.name}({sig}), target={self.target!r}, "
                f"platform={self.platform!r})")

    # --- internals -------------------------------------------------------------------------------

    def _compile(self, module: Module, key: tuple) -> tuple[Program, Executable]:
        program = translate(module, self.options)
        if self.dump_dir is not None:
            os.makedirs(self.dump_dir, exist_ok=True)
            suffix = "".join(f".{s}={n}" for s, n in key)
            path = os.path.join(self.dump_dir, f"stablehlo{suffix}.mlir")
            with open(path, "w") as fh:
                fh.write(program.text)
        exe = Executable(self.client, program.text, program.weights)
        self.specializations[key] = (program, exe)
        return program, exe

    def _check_inputs(self, inputs: tuple) -> tuple[list[np.ndarray], dict[str, int]]:
        fn = self.function
        if len(inputs) != len(fn.args):
            sig = ", ".join(f"%{a.name or i}: {a.type}" for i, a in enumerate(fn.args))
            raise InputError(f"@{fn.name} takes {len(fn.args)} inputs ({sig}), got {len(inputs)}")
        env: dict[str, int] = {}
        arrays = []
        for i, (arg, x) in enumerate(zip(fn.args, inputs)):
            what = f"input {i} (%{arg.name})" if arg.name else f"input {i}"
            try:
                a = as_numpy(x)
            except Exception as e:
                raise InputError(f"{what}: cannot read a {type(x).__name__} as an array ({e})") \
                    from None
            if a.dtype != arg.dtype.np_dtype:
                raise InputError(f"{what}: expected dtype {arg.dtype} ({arg.type}), got "
                                 f"{a.dtype} with shape {a.shape}")
            try:
                bind_dims(arg.type, a.shape, env, what)
            except ValueError as e:
                raise InputError(str(e)) from None
            arrays.append(a)
        for sym, (lo, hi) in self.module.dim_bounds.items():
            if sym in env and (env[sym] < lo or (hi is not None and env[sym] > hi)):
                raise InputError(f"?{sym} = {env[sym]} is outside its bounds [{lo}, {hi}]")
        return arrays, env


def build(module: Module, target: str = "xla", *, dump_dir: Optional[str] = None,
          bf16_contractions: Optional[bool] = None,
          pad_to_tiles: Optional[bool] = None) -> XlaModule:
    """Compile `module` for target "xla" or "tpu" (see the module docstring). With dump_dir the
    StableHLO text is written to <dump_dir>/stablehlo.mlir (stablehlo.<sym>=<n>.mlir per
    specialization of symbolic dims)."""
    return XlaModule(module, target, options_for(target, bf16_contractions, pad_to_tiles),
                     dump_dir)
