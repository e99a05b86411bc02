"""Frontends: models imported into the graph IR.

    from_onnx(model_or_path)                  ONNX ModelProto, .onnx path or bytes
"""
from .onnx import OnnxImportError, UnsupportedOpsError, from_onnx

__all__ = ["from_onnx", "OnnxImportError", "UnsupportedOpsError"]
