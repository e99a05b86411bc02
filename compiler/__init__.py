"""A deep-learning compiler: `compile(graph, target=...)` imports a model (ONNX, PyTorch, IR),
optimizes its graph and builds it for a target. `compiler.ir` is the graph IR."""
from .api import CompileError, CompiledModule, compile, optimize

__all__ = ["compile", "optimize", "CompiledModule", "CompileError"]
