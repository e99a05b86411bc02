"""The graph IR: dtypes, tensor types, values, ops, functions, modules, the op registry, the
text form (printer and lark parser), the verifier and the reference interpreter."""
from . import dtypes
from .builder import BuildError, FunctionBuilder
from .core import Function, Location, Module, Op, Value, clone_module
from .dtypes import DType
from .interpreter import InterpreterError, interpret
from .registry import REQUIRED, AttrSpec, OpDef, all_ops, attr, def_op, get_op
from .types import Dim, TensorType, TypeInferenceError, tensor

__all__ = [
    "dtypes", "DType", "Dim", "TensorType", "tensor", "TypeInferenceError",
    "Value", "Op", "Function", "Module", "Location", "clone_module",
    "OpDef", "AttrSpec", "attr", "def_op", "get_op", "all_ops", "REQUIRED",
    "FunctionBuilder", "BuildError", "interpret", "InterpreterError",
]
from .parser import ParseError, parse, parse_type
from .printer import print_module, print_op
from .serialize import load, save
from .verifier import VerificationError, verify

__all__ += ["ParseError", "parse", "parse_type", "print_module", "print_op", "load", "save",
            "VerificationError", "verify"]
