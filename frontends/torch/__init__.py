"""PyTorch frontend: `from_torch(module_or_exported_program, example_inputs, dynamic_shapes)`.

The importer (importer.py) exports with torch.export, decomposes to core ATen and calls one
converter per ATen op; the converters live in elementwise.py, shape.py, reduce.py and nn.py.
"""
from .importer import (NodeContext, TorchImportError, UnsupportedTorchOpsError, converter,
                       from_torch, supported_ops)

__all__ = ["from_torch", "TorchImportError", "UnsupportedTorchOpsError", "converter",
           "NodeContext", "supported_ops"]
