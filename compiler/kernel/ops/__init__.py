"""Lowerings of graph ops to kernel IR, by family; importing this package registers them."""
from . import elementwise, linalg, misc, movement, nn, quant, reduction  # noqa: F401
