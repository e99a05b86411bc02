"""Graph IR module -> one object file with every kernel and a native entry point.

    artifact = build_artifact(module)       # manifest (dict) + object code (bytes)

Every op of @main becomes a kernel call, except constants (weights) and reshapes (aliases of
their operand's memory). Kernels with the same structure (hash of their kernel IR) are compiled
once. The entry `dlc_entry(i8** slots, i64* dims)` calls the kernels in order: no Python runs
between kernels. `slots` holds one pointer per value (inputs, outputs, weights, and
intermediates inside one arena that the runtime plans by liveness).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Optional

import numpy as np
from llvmlite import ir as ll

from compiler.ir.core import Function, Module, Op, Value
from compiler.ir.printer import print_module
from compiler.kernel.lower import lower_function
from compiler.kernel.printer import print_kernel
from compiler.kernel.transform import lower_kernel

from . import jit
from .codegen import I64, PTR, VOID, ModuleCodegen

CODEGEN_VERSION = "1"
ALIAS_OPS = ("reshape", "squeeze", "unsqueeze", "flatten", "identity")


def cache_dir() -> str:
    return os.environ.get("DLC_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "dlcompiler", "llvm")


_SOURCE_HASH: list[str] = []


def source_hash() -> str:
    """A hash of the lowering, schedule and codegen sources: editing them invalidates the cache."""
    if not _SOURCE_HASH:
        import compiler.kernel as kpkg
        h = hashlib.sha256()
        for root in (os.path.dirname(kpkg.__file__), os.path.dirname(__file__)):
            for dirpath, _, files in sorted(os.walk(root)):
                for f in sorted(files):
                    if f.endswith(".py"):
                        with open(os.path.join(dirpath, f), "rb") as fh:
                            h.update(f.encode() + fh.read())
        _SOURCE_HASH.append(h.hexdigest()[:16])
    return _SOURCE_HASH[0]


def module_key(module: Module) -> str:
    text = print_module(module)
    h = hashlib.sha256()
    h.update(CODEGEN_VERSION.encode())
    h.update(source_hash().encode())
    h.update(jit.target_key().encode())
    h.update(text.encode())
    return h.hexdigest()[:32]


def build_artifact(module: Module, use_cache: bool = True,
                   dump_dir: Optional[str] = None) -> tuple[dict, bytes, bool]:
    """(manifest, object code, cache hit)."""
    key = module_key(module)
    d = os.path.join(cache_dir(), key)
    if use_cache and os.path.exists(os.path.join(d, "manifest.json")):
        try:
            with open(os.path.join(d, "manifest.json")) as f:
                manifest = json.load(f)
            with open(os.path.join(d, "module.o"), "rb") as f:
                obj = f.read()
            if dump_dir:
                _dump(dump_dir, manifest, None)
            return manifest, obj, True
        except (OSError, ValueError):
            pass
    manifest, llvm_ir, kernels_text = _generate(module)
    t0 = time.perf_counter()
    obj = jit.compile_object(llvm_ir)
    manifest["llvm_compile_s"] = round(time.perf_counter() - t0, 3)
    if dump_dir:
        _dump(dump_dir, manifest, (kernels_text, llvm_ir))
    if use_cache:
        try:
            os.makedirs(d, exist_ok=True)
            tmp = os.path.join(d, f".tmp{os.getpid()}")
            with open(tmp + ".o", "wb") as f:
                f.write(obj)
            os.replace(tmp + ".o", os.path.join(d, "module.o"))
            with open(tmp + ".json", "w") as f:
                json.dump(manifest, f)
            os.replace(tmp + ".json", os.path.join(d, "manifest.json"))
        except OSError:
            pass
    return manifest, obj, False


def _dump(dump_dir: str, manifest: dict, texts: Optional[tuple[str, str]]) -> None:
    os.makedirs(dump_dir, exist_ok=True)
    with open(os.path.join(dump_dir, "llvm-manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    if texts is not None:
        with open(os.path.join(dump_dir, "kernels.kir"), "w") as f:
            f.write(texts[0])
        with open(os.path.join(dump_dir, "module.ll"), "w") as f:
            f.write(texts[1])


def _generate(module: Module) -> tuple[dict, str, str]:
    fn = module.main
    slots: list[dict] = []
    slot_of: dict[Value, int] = {}

    def new_slot(v: Value, kind: str, **extra: Any) -> int:
        slots.append({"kind": kind, "dtype": v.type.dtype.name,
                      "shape": [d for d in v.type.shape], **extra})
        slot_of[v] = len(slots) - 1
        return len(slots) - 1

    for k, a in enumerate(fn.args):
        new_slot(a, "input", index=k)
    out_index = {}
    for k, v in enumerate(fn.outputs):
        out_index.setdefault(v, k)
    calls: list[dict] = []
    kernels: dict[str, str] = {}        # structural key -> function name
    kernel_texts: list[str] = []
    mc = ModuleCodegen("dlc")
    packed_slots: dict[tuple, int] = {}
    const_slot: dict[str, int] = {}
    dims_all: set[str] = set()
    for v in fn.args:
        dims_all.update(d for d in v.type.shape if isinstance(d, str))

    for n_op, op in enumerate(fn.ops):
        if op.name == "constant":
            new_slot(op.results[0], "const", name=op.attrs["name"])
            continue
        if op.name in ALIAS_OPS and op.results[0] not in out_index \
                and op.operands[0] in slot_of:
            slot_of[op.results[0]] = slot_of[op.operands[0]]
            slots[slot_of[op.operands[0]]].setdefault("aliases", 0)
            continue
        if op.name == "fused":
            body = module.function(op.attrs["body"])
            args = list(op.operands)
            kind = op.attrs.get("kind", "opaque")
        else:
            args = list(dict.fromkeys(op.operands))
            body = Function(f"op_{op.name}", args=args, ops=[op], outputs=list(op.results))
            kind = op.name
        const_args = [module.constants[slots[slot_of[a]]["name"]]
                      if slots[slot_of[a]]["kind"] == "const" else None for a in args]
        group = lower_function(module, body, f"k{n_op}", kind, const_args)
        kern = lower_kernel(group.build())
        text = print_kernel(kern)
        skey = hashlib.sha256(text.split("\n", 1)[1].encode() + "|".join(
            f"{b.dtype.name}{list(map(str, b.shape))}" for b in kern.params).encode()
                             ).hexdigest()[:20]
        if skey not in kernels:
            fname = f"k{len(kernels)}_{_short(kind)}"
            kern.name = fname
            mc.add_kernel(kern)
            kernels[skey] = fname
            note = kern.attrs.get("schedule_fallback")
            kernel_texts.append(f"# group {kind}, schedule {kern.attrs.get('schedule_level')}"
                                + (f" (fell back: {note})" if note else "") + "\n"
                                + print_kernel(kern))
        fname = kernels[skey]
        params: list[int] = []
        packed = kern.attrs.get("packed", {})
        arg_slots = [slot_of[a] for a in args]
        for cname in group.const_names:
            if cname not in const_slot:
                slots.append({"kind": "const", "name": cname,
                              "dtype": module.constants[cname].dtype.name and
                              _dtype_name(module, cname), "shape": list(
                                  module.constants[cname].shape)})
                const_slot[cname] = len(slots) - 1
            arg_slots.append(const_slot[cname])
        for k, sid in enumerate(arg_slots):
            pk = packed.get(f"in{k}")
            if pk is not None:
                if slots[sid]["kind"] != "const":
                    raise RuntimeError(f"kernel {fname} packs input {k}, which is not a weight")
                key = (sid, tuple(pk))
                if key not in packed_slots:
                    slots.append({"kind": "packed", "of": sid, "axis": pk[0], "block": pk[1],
                                  **({"group": pk[2]} if len(pk) > 2 else {}),
                                  "dtype": slots[sid]["dtype"], "shape": slots[sid]["shape"]})
                    packed_slots[key] = len(slots) - 1
                sid = packed_slots[key]
            params.append(sid)
        for r in op.results:
            if r in out_index:
                new_slot(r, "output", index=out_index[r])
            else:
                new_slot(r, "temp", defined=len(calls))
            params.append(slot_of[r])
        calls.append({"kernel": fname, "params": params,
                      "schedule": kern.attrs.get("schedule_level"),
                      "schedule_fallback": kern.attrs.get("schedule_fallback"),
                      "dims": [v.name for v in kern.dims], "op": op.name,
                      "loc": str(op.loc) if op.loc else None})
        dims_all.update(v.name for v in kern.dims)
    # liveness: last call that reads each temp
    for c_i, c in enumerate(calls):
        for sid in c["params"]:
            slots[sid]["last_use"] = c_i
    outputs = []
    for k, v in enumerate(fn.outputs):
        sid = slot_of[v]
        outputs.append(sid)
        if slots[sid]["kind"] == "temp":  # an alias of a temp: keep it to the end
            slots[sid]["last_use"] = len(calls)
    dim_names = sorted(dims_all)
    _emit_entry(mc, calls, dim_names)
    manifest = {
        "version": CODEGEN_VERSION,
        "target": jit.target_key(),
        "inputs": [{"dtype": a.type.dtype.name, "shape": list(a.type.shape), "name": a.name}
                   for a in fn.args],
        "outputs": [{"dtype": v.type.dtype.name, "shape": list(v.type.shape), "slot": s}
                    for v, s in zip(fn.outputs, outputs)],
        "slots": slots,
        "calls": calls,
        "dims": dim_names,
        "num_kernels": len(kernels),
    }
    return manifest, str(mc.module), "\n".join(kernel_texts)


def _dtype_name(module: Module, name: str) -> str:
    from compiler.ir import dtypes as dt
    arr = module.constants[name]
    for f in module.functions:
        for op in f.ops:
            if op.name == "constant" and op.attrs["name"] == name:
                return op.results[0].type.dtype.name
    return dt.dtype(arr.dtype).name


def _short(kind: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in kind)[:24]


def _emit_entry(mc: ModuleCodegen, calls: list[dict], dim_names: list[str]) -> None:
    fn = ll.Function(mc.module, ll.FunctionType(VOID, [ll.PointerType(PTR),
                                                       ll.PointerType(I64)]), name="dlc_entry")
    slots_arg, dims_arg = fn.args
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    dim_index = {n: k for k, n in enumerate(dim_names)}
    for c in calls:
        kfn = mc.functions[c["kernel"]]
        args = [b.load(b.gep(slots_arg, [ll.Constant(I64, s)])) for s in c["params"]]
        args += [b.load(b.gep(dims_arg, [ll.Constant(I64, dim_index[d])])) for d in c["dims"]]
        b.call(kfn, args)
    b.ret_void()


def pack_constant(arr: np.ndarray, axis: int, block: int, group: int = 1) -> np.ndarray:
    """[K, N] (axis 1) or [N, K] (axis 0) -> [ceil(N/block), K, block], zero-padded (the layout
    of Schedule.pack; group > 1 interleaves K, see schedule.pack_array)."""
    if group > 1:
        from compiler.kernel.schedule import pack_array
        return pack_array(arr, axis, block, group)
    if axis == 0:
        arr = arr.T
    K, N = arr.shape
    nb = -(-N // block)
    padded = np.zeros((K, nb * block), arr.dtype)
    padded[:, :N] = arr
    return np.ascontiguousarray(padded.reshape(K, nb, block).transpose(1, 0, 2))
