"""Frontends: models imported into the graph IR.

    from_onnx(model_or_path, bind=None)                         ONNX ModelProto, .onnx path or bytes
    frontends.torch.from_torch(module, example_inputs=...)      torch.nn.Module or ExportedProgram
"""
from .onnx import NeedsConstantError, OnnxImportError, UnsupportedOpsError, from_onnx



def from_torch(module_or_exported_program, example_inputs=None, dynamic_shapes=None):
    """Import a torch.nn.Module (with example_inputs) or a torch.export.ExportedProgram; see
    frontends.torch. Imported lazily: `import frontends` does not load torch."""
    from .torch import from_torch as _from_torch
    return _from_torch(module_or_exported_program, example_inputs=example_inputs,
                       dynamic_shapes=dynamic_shapes)


__all__ = ["from_onnx", "from_torch", "OnnxImportError", "NeedsConstantError",
           "UnsupportedOpsError"]
