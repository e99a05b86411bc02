"""Element types of the graph IR and their NumPy counterparts.

bf16 and the narrow types have no NumPy dtype of their own; `ml_dtypes` supplies them, so the
reference interpreter can compute in them exactly as the hardware rounds.

Kinds:
- "bool", "int" (signed), "uint", "float": the arithmetic types; every op family handles them.
- "narrow_float": the 8- and 4-bit floats of LLM deployment (fp8 on Hopper, MX scales, fp4).
- "narrow_int", "narrow_uint": 4- and 2-bit integers (packed weights).
The narrow kinds are storage types: data-movement ops, cast, quantize and dequantize take them;
arithmetic type rules (which ask for "float", "int" or "uint") do not, since NumPy math on them
would round or wrap differently from what the hardware does (compute in them means: cast first).
A narrow value is held one element per byte (`np_dtype.itemsize` is 1; `bits` is the logical
width) in its canonical bit pattern: the low `bits` bits, the rest zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

NARROW_KINDS = ("narrow_float", "narrow_int", "narrow_uint")


@dataclass(frozen=True)
class DType:
    """One element type: its IR name, bit width, kind and NumPy dtype."""

    name: str
    bits: int
    kind: str  # "bool", "int", "uint", "float", "narrow_float", "narrow_int", "narrow_uint"
    np_dtype: np.dtype

    @property
    def is_float(self) -> bool:
        """An arithmetic float (f16, bf16, f32, f64); the narrow floats are not."""
        return self.kind == "float"

    @property
    def is_int(self) -> bool:
        """An arithmetic integer, signed or unsigned (bool and the narrow ints excluded)."""
        return self.kind in ("int", "uint")

    @property
    def is_signed(self) -> bool:
        """Holds negative values (f8e8m0, which has no sign bit, is unsigned)."""
        if self.kind == "narrow_float":
            return self.name != "f8e8m0"
        return self.kind in ("int", "float", "narrow_int")

    @property
    def is_bool(self) -> bool:
        return self.kind == "bool"

    @property
    def is_narrow(self) -> bool:
        """A narrow storage type (8/4-bit float, 4/2-bit integer): no arithmetic, cast first."""
        return self.kind in NARROW_KINDS

    @property
    def is_narrow_float(self) -> bool:
        return self.kind == "narrow_float"

    @property
    def is_narrow_int(self) -> bool:
        return self.kind in ("narrow_int", "narrow_uint")

    @property
    def is_integral(self) -> bool:
        """Any integer type, narrow ones included (bool excluded)."""
        return self.kind in ("int", "uint", "narrow_int", "narrow_uint")

    def int_range(self) -> tuple[int, int]:
        """(min, max) of an integer dtype, narrow ones included."""
        if not self.is_integral:
            raise ValueError(f"{self} is not an integer dtype")
        info = ml_dtypes.iinfo(self.np_dtype)
        return int(info.min), int(info.max)

    def float_max(self) -> float:
        """The largest finite value of a float dtype, narrow ones included."""
        if not (self.is_float or self.is_narrow_float):
            raise ValueError(f"{self} is not a float dtype")
        return float(ml_dtypes.finfo(self.np_dtype).max)

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name


def _np(t: type) -> np.dtype:
    return np.dtype(t)


bool_ = DType("bool", 8, "bool", _np(np.bool_))
i8 = DType("i8", 8, "int", _np(np.int8))
u8 = DType("u8", 8, "uint", _np(np.uint8))
i16 = DType("i16", 16, "int", _np(np.int16))
u16 = DType("u16", 16, "uint", _np(np.uint16))
i32 = DType("i32", 32, "int", _np(np.int32))
u32 = DType("u32", 32, "uint", _np(np.uint32))
i64 = DType("i64", 64, "int", _np(np.int64))
u64 = DType("u64", 64, "uint", _np(np.uint64))
f16 = DType("f16", 16, "float", _np(np.float16))
bf16 = DType("bf16", 16, "float", _np(ml_dtypes.bfloat16))
f32 = DType("f32", 32, "float", _np(np.float32))
f64 = DType("f64", 64, "float", _np(np.float64))
# narrow floats: e<exponent bits>m<mantissa bits>; fn = finite (no inf), uz = unsigned zero
# (no -0; the -0 pattern is the one nan), e8m0 = powers of two only (MX block scales)
f8e4m3fn = DType("f8e4m3fn", 8, "narrow_float", _np(ml_dtypes.float8_e4m3fn))
f8e5m2 = DType("f8e5m2", 8, "narrow_float", _np(ml_dtypes.float8_e5m2))
f8e4m3fnuz = DType("f8e4m3fnuz", 8, "narrow_float", _np(ml_dtypes.float8_e4m3fnuz))
f8e5m2fnuz = DType("f8e5m2fnuz", 8, "narrow_float", _np(ml_dtypes.float8_e5m2fnuz))
f8e8m0 = DType("f8e8m0", 8, "narrow_float", _np(ml_dtypes.float8_e8m0fnu))
f4e2m1 = DType("f4e2m1", 4, "narrow_float", _np(ml_dtypes.float4_e2m1fn))
i4 = DType("i4", 4, "narrow_int", _np(ml_dtypes.int4))
u4 = DType("u4", 4, "narrow_uint", _np(ml_dtypes.uint4))
i2 = DType("i2", 2, "narrow_int", _np(ml_dtypes.int2))
u2 = DType("u2", 2, "narrow_uint", _np(ml_dtypes.uint2))

# The core types of DESIGN.md, which every layer (code generators included) handles.
ALL_DTYPES: tuple[DType, ...] = (bool_, i8, u8, i16, i32, i64, f16, bf16, f32, f64)
WIDE_UINT_DTYPES: tuple[DType, ...] = (u16, u32, u64)
NARROW_FLOAT_DTYPES: tuple[DType, ...] = (f8e4m3fn, f8e5m2, f8e4m3fnuz, f8e5m2fnuz, f8e8m0,
                                          f4e2m1)
NARROW_INT_DTYPES: tuple[DType, ...] = (i4, u4, i2, u2)
NARROW_DTYPES = NARROW_FLOAT_DTYPES + NARROW_INT_DTYPES
# Every IR dtype.
DTYPES: tuple[DType, ...] = ALL_DTYPES + WIDE_UINT_DTYPES + NARROW_DTYPES
FLOAT_DTYPES = tuple(d for d in DTYPES if d.is_float)
INT_DTYPES = tuple(d for d in DTYPES if d.is_int)
SIGNED_INT_DTYPES = tuple(d for d in INT_DTYPES if d.kind == "int")
BY_NAME: dict[str, DType] = {d.name: d for d in DTYPES}
_BY_NUMPY: dict[np.dtype, DType] = {d.np_dtype: d for d in DTYPES}


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


def canonical_bits(arr: np.ndarray) -> np.ndarray:
    """A narrow-dtype array with every byte in its canonical pattern (the low `bits` bits).

    ml_dtypes reads only the low bits of a 4/2-bit element, so 0xFF and 0x0F are both int4 -1;
    bytes from outside (ONNX unpacking, safetensors) are masked so that equal values have equal
    bytes. Other arrays come back unchanged.
    """
    arr = np.asarray(arr)
    d = _BY_NUMPY.get(arr.dtype)
    if d is None or not d.is_narrow or d.bits >= 8:
        return arr
    return (arr.view(np.uint8) & np.uint8((1 << d.bits) - 1)).view(arr.dtype)
