"""LLVM CPU code generation: kernel IR -> LLVM IR -> object code for the host (llvmlite)."""
from __future__ import annotations

from typing import Any, Optional


def build(module: Any, target: str = "llvm", *, dump_dir: Optional[str] = None) -> Any:
    """Compile an optimized graph-IR module for the host CPU (cached on disk by content)."""
    from compiler.runtime import LLVMModule
    from .program import build_artifact
    manifest, obj, hit = build_artifact(module, dump_dir=dump_dir)
    return LLVMModule(manifest, obj, module.constants, cache_hit=hit, module=module)
