"""ONNX frontend: `from_onnx(model_or_path) -> Module`. See importer.py."""
from .importer import (NodeContext, OnnxImportError, UnsupportedOpsError, converter, from_onnx,
                       supported_op_types)

__all__ = ["from_onnx", "OnnxImportError", "UnsupportedOpsError", "converter", "NodeContext",
           "supported_op_types"]
