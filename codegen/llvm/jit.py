"""LLVM machinery: the host target machine, the O3 pipeline, object code and loading it.

Compiled code always goes through an object file (`compile_object`), which is what the on-disk
cache and `save` store; `load_object` maps one into this process with llvmlite's MCJIT and
resolves its calls into libm, libgomp and libc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
from typing import Optional

import llvmlite.binding as llvm

_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _init() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    _load_runtime_libraries()


@functools.lru_cache(maxsize=None)
def host() -> dict:
    """The host CPU's name, features and the vector width the default schedules use."""
    _init()
    cpu = llvm.get_host_cpu_name()
    feats = llvm.get_host_cpu_features()
    flat = feats.flatten()
    have = {f[1:] for f in flat.split(",") if f.startswith("+")}
    if os.environ.get("DLC_VECTOR_BITS"):  # e.g. 256 to act like an AVX2 machine
        bits = int(os.environ["DLC_VECTOR_BITS"])
    else:
        bits = 512 if "avx512f" in have else 256 if "avx2" in have or "avx" in have else 128
    if bits < 512:
        flat = ",".join(f if not f.startswith("+avx512") else "-" + f[1:]
                        for f in flat.split(","))
    return {"cpu": cpu, "features": flat, "vector_bits": bits,
            "triple": llvm.get_process_triple(), "fma": "fma" in have,
            "avx512vnni": "avx512vnni" in have and bits >= 512, "avxvnni": "avxvnni" in have}


def target_key() -> str:
    h = host()
    return f"{h['triple']}|{h['cpu']}|{h['vector_bits']}|{h['features']}"


@functools.lru_cache(maxsize=None)
def target_machine() -> "llvm.TargetMachine":
    return new_target_machine()


def new_target_machine() -> "llvm.TargetMachine":
    """A fresh host target machine (an execution engine takes ownership of the one it gets)."""
    _init()
    h = host()
    target = llvm.Target.from_triple(h["triple"])
    # the large code model: MCJIT maps an object's code and data sections separately, and in a
    # big process (torch, jax, many modules) they can land more than 2 GB apart, which the
    # small model's 32-bit PC-relative references cannot reach (LLVM aborts on it)
    return target.create_target_machine(cpu=h["cpu"], features=h["features"], opt=3,
                                        reloc="pic", codemodel="large")


def optimize(mod: "llvm.ModuleRef") -> None:
    tm = target_machine()
    pto = llvm.PipelineTuningOptions(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_unrolling = True
    pb = llvm.create_pass_builder(tm, pto)
    mpm = pb.getModulePassManager()
    mpm.run(mod, pb)


def compile_object(llvm_ir: str, opt: bool = True) -> bytes:
    """LLVM IR text -> verified, O3-optimized object code for the host."""
    _init()
    with _lock:
        mod = llvm.parse_assembly(llvm_ir)
        mod.triple = host()["triple"]
        mod.data_layout = str(target_machine().target_data)
        mod.verify()
        if opt:
            optimize(mod)
        return target_machine().emit_object(mod)


def assembly(llvm_ir: str) -> str:
    """Optimized assembly of LLVM IR text (for inspecting the code)."""
    _init()
    with _lock:
        mod = llvm.parse_assembly(llvm_ir)
        mod.triple = host()["triple"]
        mod.data_layout = str(target_machine().target_data)
        optimize(mod)
        return target_machine().emit_assembly(mod)


class LoadedObject:
    """Object code mapped into this process; `address(name)` gives a function's address."""

    def __init__(self, obj: bytes) -> None:
        _init()
        with _lock:
            empty = llvm.parse_assembly("")
            empty.triple = host()["triple"]
            self.engine = llvm.create_mcjit_compiler(empty, new_target_machine())
            self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
            self.engine.finalize_object()

    def address(self, name: str) -> int:
        addr = self.engine.get_function_address(name)
        if not addr:
            raise KeyError(f"no function {name} in the object code")
        return addr


# ------------------------------------------------------------------------ runtime helpers

def _load_runtime_libraries() -> None:
    """libgomp (parallel loops), libm (math) and libc (aligned_alloc/free) into the process, so
    object code can call them. No calls go back into Python."""
    for lib in ("gomp", "m", "c"):
        path = ctypes.util.find_library(lib)
        if path is None and lib == "gomp":
            path = _bundled_gomp()
        if path is None:
            raise RuntimeError(f"codegen.llvm needs lib{lib}, which this machine lacks")
        llvm.load_library_permanently(path)
        if lib == "gomp":
            gomp = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            gomp.omp_set_num_threads(num_threads())


def _bundled_gomp() -> Optional[str]:
    try:
        import torch
        d = os.path.join(os.path.dirname(torch.__file__), "lib")
        for f in os.listdir(d):
            if f.startswith("libgomp"):
                return os.path.join(d, f)
    except Exception:
        return None
    return None


def num_threads() -> int:
    """Threads for parallel loops: $DLC_NUM_THREADS, else the cores this process may use."""
    env = os.environ.get("DLC_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
