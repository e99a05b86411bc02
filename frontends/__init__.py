"""Frontends: models imported into the graph IR.

    from_onnx(model_or_path, bind=None)                         ONNX ModelProto, .onnx path or bytes
    frontends.torch.from_torch(module, example_inputs=...)      torch.nn.Module or ExportedProgram
"""
from .onnx import NeedsConstantError, OnnxImportError, UnsupportedOpsError, from_onnx

__all__ = ["from_onnx", "OnnxImportError", "NeedsConstantError", "UnsupportedOpsError"]
