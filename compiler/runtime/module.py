"""The compiled module: checked inputs in, native entry point, NumPy arrays out.

    mod = compiler.compile(model, target="llvm")
    y, = mod(x)                 # numpy arrays or anything with __dlpack__ (torch tensors: no copy)
    mod.save("model.dlc"); mod2 = compiler.load("model.dlc")

Before native code runs, every input is checked: its dtype, rank and static dims, and the
symbolic dims bound consistently across inputs (a ValueError subclass, InputError, names the
input). Intermediates live in one arena laid out by liveness (a static plan per binding of the
symbolic dims: two tensors share bytes when their lifetimes do not overlap).
"""
from __future__ import annotations

import ctypes
import json
import os
from typing import Any, Optional, Sequence

import numpy as np

from compiler.ir import dtypes as dt


class InputError(ValueError):
    """A compiled module was called with an input of the wrong dtype or shape, or count."""


ALIGN = 64


class LLVMModule:
    """A module compiled by codegen.llvm. Call it with one array per graph input."""

    target = "llvm"

    def __init__(self, manifest: dict, obj: bytes, constants: dict[str, np.ndarray],
                 cache_hit: bool = False, module: Any = None) -> None:
        from codegen.llvm import jit
        self.module = module  # the optimized graph IR it was built from (None when loaded)
        self.manifest = manifest
        self.object_code = obj
        self.cache_hit = cache_hit
        self._loaded = jit.LoadedObject(obj)
        addr = self._loaded.address("dlc_entry")
        self._entry = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)(addr)
        self.slots = manifest["slots"]
        self.inputs = manifest["inputs"]
        self.outputs = manifest["outputs"]
        self.dim_names = manifest["dims"]
        self._constants: dict[int, np.ndarray] = {}
        for sid, s in enumerate(self.slots):
            if s["kind"] == "const":
                arr = constants.get(s["name"])
                if arr is None:
                    raise ValueError(f"compiled module needs constant @{s['name']}")
                self._constants[sid] = _storage(np.ascontiguousarray(arr), s["dtype"])
        from codegen.llvm.program import pack_constant
        for sid, s in enumerate(self.slots):
            if s["kind"] == "packed":
                self._constants[sid] = pack_constant(self._constants[s["of"]], s["axis"],
                                                     s["block"], s.get("group", 1))
        self._plans: dict[tuple, tuple] = {}
        self._input_dtypes = [np.dtype(_np_dtype(i["dtype"])) for i in self.inputs]

    # ------------------------------------------------------------------ signature
    @property
    def input_types(self) -> list:
        from compiler import ir
        return [ir.tensor(i["shape"], i["dtype"]) for i in self.inputs]

    @property
    def output_types(self) -> list:
        from compiler import ir
        return [ir.tensor(o["shape"], o["dtype"]) for o in self.outputs]

    def __repr__(self) -> str:
        sig = ", ".join(str(t) for t in self.input_types)
        return (f"LLVMModule(({sig}), {len(self.manifest['calls'])} kernel calls, "
                f"{self.manifest['num_kernels']} distinct kernels)")

    # ------------------------------------------------------------------ checks
    def _check(self, arrays: Sequence[Any]) -> tuple[list[np.ndarray], dict[str, int]]:
        if len(arrays) != len(self.inputs):
            raise InputError(f"expected {len(self.inputs)} inputs, got {len(arrays)}")
        dims: dict[str, int] = {}
        out = []
        for k, (x, spec, npd) in enumerate(zip(arrays, self.inputs, self._input_dtypes)):
            name = "%" + spec["name"] if spec.get("name") else f"#{k}"
            a = _as_array(x)
            if a.dtype != npd:
                raise InputError(f"input {k} ({name}): expected dtype {spec['dtype']}, got "
                                 f"{a.dtype}")
            shape = spec["shape"]
            if a.ndim != len(shape):
                raise InputError(f"input {k} ({name}): expected rank {len(shape)} "
                                 f"{_fmt(shape)}, got shape {list(a.shape)}")
            for axis, (want, got) in enumerate(zip(shape, a.shape)):
                if isinstance(want, int):
                    if want != got:
                        raise InputError(f"input {k} ({name}): expected shape {_fmt(shape)}, got "
                                         f"{list(a.shape)} (axis {axis})")
                else:
                    if dims.setdefault(want, got) != got:
                        raise InputError(f"input {k} ({name}): dim {want} is {got} on axis "
                                         f"{axis} but {dims[want]} in an earlier input")
            out.append(np.ascontiguousarray(a))
        for d in self.dim_names:
            if d not in dims:
                raise InputError(f"symbolic dim {d} is not bound by any input")
        return out, dims

    # ------------------------------------------------------------------ memory plan
    def _shape(self, s: dict, dims: dict[str, int]) -> tuple[int, ...]:
        return tuple(d if isinstance(d, int) else dims[d] for d in s["shape"])

    def plan(self, dims: dict[str, int]) -> tuple:
        """Offsets of the temps in the arena for this binding (cached), and the arena size."""
        key = tuple(dims.get(d, 0) for d in self.dim_names)
        if key in self._plans:
            return self._plans[key]
        temps = []
        for sid, s in enumerate(self.slots):
            if s["kind"] == "temp":
                n = int(np.prod(self._shape(s, dims), dtype=np.int64))
                size = max(n * _itemsize(s["dtype"]), 1)
                size = (size + ALIGN - 1) // ALIGN * ALIGN
                temps.append((sid, size, s["defined"], s.get("last_use", s["defined"])))
        # greedy: place larger first at the lowest offset that does not overlap a live one
        placed: list[tuple[int, int, int, int]] = []  # offset, size, start, end
        offsets: dict[int, int] = {}
        for sid, size, start, end in sorted(temps, key=lambda t: -t[1]):
            busy = sorted((o, o + sz) for o, sz, s0, e0 in placed if not (e0 < start or end < s0))
            off = 0
            for lo, hi in busy:
                if off + size <= lo:
                    break
                off = max(off, hi)
            offsets[sid] = off
            placed.append((off, size, start, end))
        arena = max((o + sz for o, sz, _, _ in placed), default=0)
        total = sum(t[1] for t in temps)
        plan = (offsets, arena, total)
        self._plans[key] = plan
        return plan

    @property
    def memory_stats(self) -> dict:
        """Arena bytes against the sum of all intermediates, for the last binding planned."""
        if not self._plans:
            return {}
        offsets, arena, total = list(self._plans.values())[-1]
        return {"arena_bytes": arena, "intermediate_bytes_sum": total,
                "weights_bytes": sum(a.nbytes for a in self._constants.values())}

    # ------------------------------------------------------------------ call
    def profile(self, *inputs: Any, repeat: int = 5) -> list[dict]:
        """Run each kernel call on its own (the debug executor of TVM): median milliseconds
        per call, slowest first. The outputs are not returned."""
        import time
        arrays, dims = self._check(inputs)
        ptrs, dvals, outs, keep, arena = self._prepare(arrays, dims)
        rows = []
        dim_index = {d: k for k, d in enumerate(self.dim_names)}
        for n, c in enumerate(self.manifest["calls"]):
            args = [ctypes.c_void_p(int(ptrs[s])) for s in c["params"]]
            args += [ctypes.c_int64(int(dvals[dim_index[d]])) for d in c["dims"]]
            fn = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * len(c["params"])
                                          + [ctypes.c_int64] * len(c["dims"])))(
                self._loaded.address(c["kernel"]))
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn(*args)
                times.append(time.perf_counter() - t0)
            rows.append({"call": n, "kernel": c["kernel"], "op": c["op"], "loc": c.get("loc"),
                         "ms": float(np.median(times)) * 1e3})
        return sorted(rows, key=lambda r: -r["ms"])

    def _prepare(self, arrays: list, dims: dict) -> tuple:
        """The slot pointers, dim values, fresh output arrays, and the arena (kept alive by the
        caller while native code runs)."""
        offsets, arena_size, _ = self.plan(dims)
        arena = np.empty(arena_size + ALIGN, np.uint8)
        base = arena.ctypes.data
        base += (-base) % ALIGN
        ptrs = np.zeros(len(self.slots), np.uint64)
        outs: list[Optional[np.ndarray]] = [None] * len(self.outputs)
        keep = []
        for sid, s in enumerate(self.slots):
            kind = s["kind"]
            if kind == "input":
                ptrs[sid] = arrays[s["index"]].ctypes.data
            elif kind in ("const", "packed"):
                ptrs[sid] = self._constants[sid].ctypes.data
            elif kind == "temp":
                ptrs[sid] = base + offsets[sid]
            elif kind == "output":
                a = np.empty(self._shape(s, dims), _np_dtype(s["dtype"]))
                outs[s["index"]] = a
                keep.append(a)
                ptrs[sid] = a.ctypes.data if a.size else base
        dvals = np.array([dims[d] for d in self.dim_names] or [0], np.int64)
        return ptrs, dvals, outs, keep, arena

    def __call__(self, *inputs: Any) -> list[np.ndarray]:
        arrays, dims = self._check(inputs)
        ptrs, dvals, outs, keep, arena = self._prepare(arrays, dims)
        self._entry(ptrs.ctypes.data, dvals.ctypes.data)
        result = []
        for k, o in enumerate(self.outputs):
            if outs[k] is not None and self.slots[o["slot"]].get("index") == k \
                    and self.slots[o["slot"]]["kind"] == "output":
                result.append(outs[k])
                continue
            # an output that is an input, a weight or an alias of a temp: copy it out
            s = self.slots[o["slot"]]
            shape = tuple(d if isinstance(d, int) else dims[d] for d in o["shape"])
            if s["kind"] == "input":
                src = arrays[s["index"]]
            elif s["kind"] in ("const", "packed"):
                src = self._constants[o["slot"]]
            elif s["kind"] == "output":
                src = outs[s["index"]]
            else:
                n = int(np.prod(shape, dtype=np.int64))
                src = np.frombuffer((ctypes.c_uint8 * max(n * _itemsize(o["dtype"]), 1))
                                    .from_address(int(ptrs[o["slot"]])), _np_dtype(o["dtype"]),
                                    count=n)
            result.append(np.array(src, copy=True).reshape(shape).view(_np_dtype(o["dtype"]))
                          if s["kind"] != "temp" else np.array(src).reshape(shape))
        return result

    # ------------------------------------------------------------------ save / load
    def save(self, path: str) -> None:
        """A directory with module.o (object code), manifest.json and weights.safetensors."""
        from safetensors.numpy import save_file
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "module.o"), "wb") as f:
            f.write(self.object_code)
        with open(os.path.join(path, "manifest.json"), "w") as f:
            json.dump(self.manifest, f)
        weights = {s["name"]: self._constants[sid] for sid, s in enumerate(self.slots)
                   if s["kind"] == "const"}
        save_file({k: np.ascontiguousarray(v) for k, v in weights.items()},
                  os.path.join(path, "weights.safetensors"))


def load(path: str) -> LLVMModule:
    """Load a module saved with `save` (no pickle: object code, JSON and safetensors)."""
    from safetensors.numpy import load_file
    from codegen.llvm import jit
    try:
        with open(os.path.join(path, "manifest.json")) as f:
            manifest = json.load(f)
        with open(os.path.join(path, "module.o"), "rb") as f:
            obj = f.read()
    except OSError as e:
        raise ValueError(f"{path}: not a saved compiled module ({e})") from None
    if manifest.get("target") != jit.target_key():
        raise ValueError(f"{path}: compiled for another CPU ({manifest.get('target')}); "
                         "recompile it here")
    weights = load_file(os.path.join(path, "weights.safetensors"))
    return LLVMModule(manifest, obj, weights)


def _np_dtype(name: str) -> np.dtype:
    return dt.dtype(name).np_dtype


def _itemsize(name: str) -> int:
    return dt.dtype(name).np_dtype.itemsize


def _storage(a: np.ndarray, name: str) -> np.ndarray:
    want = _np_dtype(name)
    return a if a.dtype == want else a.astype(want)


def _fmt(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) if isinstance(d, int) else f"?{d}" for d in shape) + "]"


def _as_array(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "__dlpack__"):
        if hasattr(x, "detach"):  # torch: CPU, no grad
            x = x.detach()
            if getattr(x, "device", None) is not None and str(x.device) != "cpu":
                x = x.cpu()
            if not x.is_contiguous():
                x = x.contiguous()
            try:
                return np.from_dlpack(x)
            except (TypeError, RuntimeError, BufferError):
                return x.numpy()
        try:
            return np.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError):
            pass
    return np.asarray(x)
