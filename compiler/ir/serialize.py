"""Save and load modules: IR text plus a safetensors file of the constants too large to inline.

`save(m, "model.ir")` writes `model.ir` and, when some constant is printed as `external`,
`model.safetensors` beside it; `load("model.ir")` reads both back.
"""
from __future__ import annotations

import json
import os
from typing import Optional

import numpy as np

from . import dtypes as dt
from .core import Module
from .parser import parse
from .printer import DEFAULT_INLINE_LIMIT, print_module

# safetensors' NumPy API has no bf16 or narrow types: bf16 arrays travel as their u16 bits and the
# narrow ones (f8*, f4e2m1, i4, u4, i2, u2) as their u8 bits, one element per byte, named in the
# metadata with their IR dtype
_BITS_KEY = "compiler.bf16_as_u16"
_NARROW_KEY = "compiler.narrow_as_u8"


def weights_path(path: str) -> str:
    """The safetensors file that belongs to an IR text file."""
    root, _ = os.path.splitext(path)
    return root + ".safetensors"


def save(module: Module, path: str, inline_limit: Optional[int] = DEFAULT_INLINE_LIMIT) -> None:
    """Write the module's text to `path` and its large constants to the safetensors file beside it."""
    from safetensors.numpy import save_file

    text = print_module(module, inline_limit=inline_limit)
    large = {k: np.asarray(v) for k, v in module.constants.items()
             if inline_limit is not None and np.asarray(v).size > inline_limit}
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    wpath = weights_path(path)
    if large:
        bf16 = [k for k, v in large.items() if v.dtype == dt.bf16.np_dtype]
        narrow = {k: dt.dtype(v.dtype).name for k, v in large.items()
                  if dt.dtype(v.dtype).is_narrow}
        tensors = {k: (np.ascontiguousarray(v).view(np.uint16) if k in bf16 else
                       np.ascontiguousarray(dt.canonical_bits(v)).view(np.uint8) if k in narrow
                       else np.ascontiguousarray(v))
                   for k, v in large.items()}
        save_file(tensors, wpath, metadata={_BITS_KEY: json.dumps(bf16),
                                            _NARROW_KEY: json.dumps(narrow)})
    elif os.path.exists(wpath):
        os.remove(wpath)  # a stale weights file would be loaded with the new text


def load(path: str) -> Module:
    """Read a module written by `save` (text plus optional safetensors weights)."""
    from safetensors import safe_open

    with open(path, encoding="utf-8") as f:
        text = f.read()
    weights: dict[str, np.ndarray] = {}
    wpath = weights_path(path)
    if os.path.exists(wpath):
        with safe_open(wpath, framework="numpy") as st:
            meta = st.metadata() or {}
            bf16 = set(json.loads(meta.get(_BITS_KEY, "[]")))
            narrow = json.loads(meta.get(_NARROW_KEY, "{}"))
            for k in st.keys():
                arr = st.get_tensor(k)
                if k in bf16:
                    arr = arr.view(dt.bf16.np_dtype)
                elif k in narrow:
                    arr = dt.canonical_bits(arr.view(dt.dtype(narrow[k]).np_dtype))
                weights[k] = arr
    return parse(text, weights=weights, filename=path)
