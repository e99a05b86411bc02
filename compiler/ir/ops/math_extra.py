"""More math ops: the trigonometric and hyperbolic functions beyond sin/cos/tanh, bitwise logic
and shifts on integers, and the determinant. ONNX semantics; binary ops broadcast.

f16 and bf16 math is computed in f32 and rounded once, as the code generators do.
"""
from __future__ import annotations

import numpy as np

from ..registry import def_op
from ..types import TensorType, TypeInferenceError
from ._common import require_dtype
from .elementwise import _binary, _in_f32, _unary
from .linalg import merge_dim

INT = ("int", "uint")
FLOAT = ("float",)

# --- trigonometric and hyperbolic ---------------------------------------------------------------
_unary("tan", np.tan, doc="tangent (radians)")
_unary("asin", np.arcsin, doc="inverse sine in [-pi/2, pi/2]; nan outside [-1, 1]")
_unary("acos", np.arccos, doc="inverse cosine in [0, pi]; nan outside [-1, 1]")
_unary("atan", np.arctan, doc="inverse tangent in (-pi/2, pi/2)")
_unary("sinh", np.sinh, doc="hyperbolic sine")
_unary("cosh", np.cosh, doc="hyperbolic cosine")
_unary("asinh", np.arcsinh, doc="inverse hyperbolic sine")
_unary("acosh", np.arccosh, doc="inverse hyperbolic cosine; nan below 1")
_unary("atanh", np.arctanh, doc="inverse hyperbolic tangent; +-inf at +-1, nan outside")

# --- bitwise logic ------------------------------------------------------------------------------
_unary("bitwise_not", np.invert, INT, "~x, every bit flipped")
_binary("bitwise_and", np.bitwise_and, INT, "a & b", commutative=True)
_binary("bitwise_or", np.bitwise_or, INT, "a | b", commutative=True)
_binary("bitwise_xor", np.bitwise_xor, INT, "a ^ b", commutative=True)


def _shift(a: np.ndarray, b: np.ndarray, left: bool) -> np.ndarray:
    """ONNX BitShift: a shift by a negative amount or by the bit width or more leaves only the
    sign fill (-1 for a right shift of a negative a, else 0), where C would be undefined."""
    a, b = np.broadcast_arrays(a, b)
    bits = a.dtype.itemsize * 8
    ok = (b >= 0) & (b < bits)
    amount = np.where(ok, b, 0).astype(a.dtype)
    if left:  # through the unsigned type of the same width: bits past the sign bit drop out
        unsigned = np.dtype(f"u{a.dtype.itemsize}")
        out = np.left_shift(a.view(unsigned), amount.view(unsigned)).view(a.dtype)
        fill = np.zeros_like(a)
    else:
        out = np.right_shift(a, amount)  # arithmetic for signed a
        fill = np.where(a < 0, -1, 0).astype(a.dtype) if a.dtype.kind == "i" else np.zeros_like(a)
    return np.where(ok, out, fill).astype(a.dtype)


_binary("shift_left", lambda a, b: _shift(a, b, True), INT,
        "a << b; bits shifted out are lost; b < 0 or b >= the bit width gives 0")
_binary("shift_right", lambda a, b: _shift(a, b, False), INT,
        "a >> b, arithmetic for signed a; b < 0 or b >= the bit width gives the sign fill "
        "(-1 for negative a, else 0)")

# --- determinant --------------------------------------------------------------------------------


def _det_rule(x: TensorType) -> TensorType:
    require_dtype("det", x, FLOAT, "operand x")
    if x.rank < 2:
        raise TypeInferenceError(f"det needs rank >= 2 ([..., M, M]), got {x}")
    merge_dim("det", f"the two last dims of x {x}", x.shape[-2], x.shape[-1])
    return x.with_shape(x.shape[:-2])


def _det(x: np.ndarray) -> np.ndarray:
    # LAPACK in f64, rounded once: the determinant of a float32 matrix in f32 LU loses digits
    return np.asarray(np.linalg.det(x.astype(np.float64))).astype(x.dtype)


def_op("det", ["x"], _det_rule, _in_f32(_det), traits=("pure",),
       doc="determinant of each M x M matrix in the last two dims of [..., M, M] -> [...]")
