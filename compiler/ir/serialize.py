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

# safetensors' NumPy API has no bf16: such arrays travel as their u16 bits, named in the metadata
_BITS_KEY = "compiler.bf16_as_u16"


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
        tensors = {k: (v.view(np.uint16) if k in bf16 else np.ascontiguousarray(v))
                   for k, v in large.items()}
        save_file(tensors, wpath, metadata={_BITS_KEY: json.dumps(bf16)})
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
            bf16 = set(json.loads((st.metadata() or {}).get(_BITS_KEY, "[]")))
            for k in st.keys():
                arr = st.get_tensor(k)
                weights[k] = arr.view(dt.bf16.np_dtype) if k in bf16 else arr
    return parse(text, weights=weights, filename=path)
