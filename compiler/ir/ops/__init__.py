"""Op declarations, one module per family; importing this package registers them all."""
from . import module_ops, elementwise, reduction, normalization, linalg, movement, quantization, nn, math_extra, nn_extra, misc_extra  # noqa: F401
