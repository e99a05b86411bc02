"""Lowerings of graph ops to kernel IR, by family; importing this package registers them."""
from . import elementwise, linalg, movement, reduction  # noqa: F401
