"""ONNX op converters, one module per family; importing this package registers them."""
from . import core, math, nn, tensor, quant, control  # noqa: F401
