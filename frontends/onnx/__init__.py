"""ONNX frontend: `from_onnx(model_or_path) -> Module`. See importer.py."""
from .importer import (NeedsConstantError, NodeContext, OnnxImportError, UnsupportedOpsError, converter, from_onnx,
                       supported_op_types)

__all__ = ["from_onnx", "OnnxImportError", "NeedsConstantError", "UnsupportedOpsError", "converter", "NodeContext",
           "supported_op_types"]
