"""ONNX op converters, one module per family; importing this package registers them."""
from . import core, math, nn, rnn, attention, tensor, quant, control, misc  # noqa: F401
