"""A deep-learning compiler: `compile(graph, target=...)` imports a model (ONNX, PyTorch, IR),
optimizes its graph and builds it for a target. `compiler.ir` is the graph IR."""
from .api import CompileError, CompiledModule, compile, optimize
from .runtime import InputError, load
from .torch_backend import make_torch_backend, torch_backend  # binds the name to the function

__all__ = ["compile", "optimize", "load", "InputError", "CompiledModule", "CompileError", "torch_backend",
           "make_torch_backend"]
