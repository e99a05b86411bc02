"""Element types of the graph IR and their NumPy counterparts.

bf16 has no NumPy dtype of its own; `ml_dtypes` supplies one, so the reference interpreter can
compute in it exactly as the hardware rounds.
"""
from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np


@dataclass(frozen=True)
class DType:
    """One element type: its IR name, bit width, kind and NumPy dtype."""

    name: str
    bits: int
    kind: str  # "bool", "int", "uint", "float"
    np_dtype: np.dtype

    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def is_int(self) -> bool:
        """Signed or unsigned integer (bool excluded)."""
        return self.kind in ("int", "uint")

    @property
    def is_signed(self) -> bool:
        return self.kind in ("int", "float")

    @property
    def is_bool(self) -> bool:
        return self.kind == "bool"

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name


bool_ = DType("bool", 8, "bool", np.dtype(np.bool_))
i8 = DType("i8", 8, "int", np.dtype(np.int8))
u8 = DType("u8", 8, "uint", np.dtype(np.uint8))
i16 = DType("i16", 16, "int", np.dtype(np.int16))
i32 = DType("i32", 32, "int", np.dtype(np.int32))
i64 = DType("i64", 64, "int", np.dtype(np.int64))
f16 = DType("f16", 16, "float", np.dtype(np.float16))
bf16 = DType("bf16", 16, "float", np.dtype(ml_dtypes.bfloat16))
f32 = DType("f32", 32, "float", np.dtype(np.float32))
f64 = DType("f64", 64, "float", np.dtype(np.float64))

ALL_DTYPES: tuple[DType, ...] = (bool_, i8, u8, i16, i32, i64, f16, bf16, f32, f64)
FLOAT_DTYPES = tuple(d for d in ALL_DTYPES if d.is_float)
INT_DTYPES = tuple(d for d in ALL_DTYPES if d.is_int)
SIGNED_INT_DTYPES = tuple(d for d in INT_DTYPES if d.kind == "int")
BY_NAME: dict[str, DType] = {d.name: d for d in ALL_DTYPES}
_BY_NUMPY: dict[np.dtype, DType] = {d.np_dtype: d for d in ALL_DTYPES}


def dtype(name_or_np: "str | DType | np.dtype | type") -> DType:
    """Look a dtype up by IR name ("f32"), DType, or NumPy dtype; ValueError if unknown."""
    if isinstance(name_or_np, DType):
        return name_or_np
    if isinstance(name_or_np, str) and name_or_np in BY_NAME:
        return BY_NAME[name_or_np]
    try:
        npd = np.dtype(name_or_np)
    except TypeError:
        npd = None
    if isinstance(name_or_np, str) and npd is not None and npd.name != name_or_np:
        npd = None  # NumPy's short codes ("f8", "i4") read differently from the IR's names
    if npd is not None and npd in _BY_NUMPY:
        return _BY_NUMPY[npd]
    known = ", ".join(BY_NAME)
    raise ValueError(f"unknown dtype {name_or_np!r}; the IR has {known}")
