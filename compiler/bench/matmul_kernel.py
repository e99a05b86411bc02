"""The default matmul schedule's kernel against torch, in one run.

    python -m compiler.bench.matmul_kernel --m 1024 --n 1024 --k 1024
    python -m compiler.bench.matmul_kernel --m 128 --n 3072 --k 768 --threads 1,2

Builds out = A @ B + 1 (B a constant weight, packed at compile time) with the default
contraction schedule (compiler/kernel/schedules/matmul.py), compiles it with codegen.llvm, checks
it against NumPy and prints GFLOP/s (medians of repeated runs after warm-up) for ours and torch
at each thread count, with the ratio.
"""
from __future__ import annotations

import argparse
import ctypes
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from compiler.ir import dtypes as dt
from compiler.kernel import te
from compiler.kernel.ir import Kernel, Var
from compiler.kernel.schedule import Schedule, pack_array
from compiler.kernel.schedules.matmul import schedule_contraction
from compiler.kernel.transform import lower_kernel

F32 = dt.dtype("f32")


@dataclass
class MatmulProblem:
    """out[b..., i, j] = sum_k A[b..., i, k] * B[b..., k, j] + bias[j].

    `b_layout` "kn" reads B as [K, N], "nk" as [N, K] (a Linear weight, or attention's K^T).
    `b_constant` marks B as a weight (2-D, packed at compile time). `symbolic_m` makes M a
    runtime dim."""
    M: int
    N: int
    K: int
    batch: tuple[int, ...] = ()
    b_constant: bool = True
    b_layout: str = "kn"
    symbolic_m: bool = False
    epilogue: str = "bias"  # "bias", "none" (the contraction is the output)

    def build(self, name: str = "mm", trace: Optional[str] = None) -> tuple[Schedule, Kernel]:
        mdim: Any = Var("M") if self.symbolic_m else self.M
        bshape = self.batch if not self.b_constant else ()
        A = te.placeholder("A", (*self.batch, mdim, self.K), F32)
        B = te.placeholder("B", (*bshape, self.K, self.N) if self.b_layout == "kn"
                           else (*bshape, self.N, self.K), F32)
        bias = te.placeholder("bias", (self.N,), F32)
        nb = len(self.batch)

        def body(*v: Any) -> Any:
            bt, i, j, k = v[:nb], v[nb], v[nb + 1], v[nb + 2]
            bb = bt if not self.b_constant else ()
            b = B[(*bb, k, j)] if self.b_layout == "kn" else B[(*bb, j, k)]
            return A[(*bt, i, k)] * b
        C = te.reduce("C", (*self.batch, mdim, self.N), (self.K,), body, "+", 0.0)
        if self.epilogue == "none":
            out, inputs = C, [A, B]
        else:
            out = te.compute("D", (*self.batch, mdim, self.N), lambda *v: C[v] + bias[v[-1]])
            inputs = [A, B, bias]
        s = Schedule([out], inputs)
        if trace is not None:
            s.apply_trace(trace)
        else:
            from codegen.llvm.jit import host
            schedule_contraction(s, out.stage.name, "C", m_axis=nb, n_axis=nb + 1, k_axis=0,
                                 batch_axes=list(range(nb)), b_is_constant=self.b_constant,
                                 host=host())
        dims = [Var("M")] if self.symbolic_m else []
        return s, s.build(name, dims)

    def inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        bshape = self.batch if not self.b_constant else ()
        a = rng.standard_normal((*self.batch, self.M, self.K), np.float32)
        b = rng.standard_normal((*bshape, self.K, self.N) if self.b_layout == "kn"
                                else (*bshape, self.N, self.K), np.float32)
        out = [a, b]
        if self.epilogue != "none":
            out.append(rng.standard_normal(self.N, np.float32))
        return out

    def reference(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        a, b = arrays[0].astype(np.float64), arrays[1].astype(np.float64)
        if self.b_layout == "nk":
            b = np.swapaxes(b, -1, -2)
        r = a @ b
        if self.epilogue != "none":
            r = r + arrays[2]
        return r


class CompiledKernel:
    """One kernel compiled to object code and callable on NumPy arrays (packing constant
    inputs once, as the runtime does at compile time)."""

    def __init__(self, kernel: Kernel) -> None:
        from codegen.llvm import jit
        from codegen.llvm.codegen import ModuleCodegen
        self.kernel = kernel
        self.lowered = lower_kernel(kernel)
        mc = ModuleCodegen()
        mc.add_kernel(self.lowered)
        self.llvm_ir = str(mc.module)
        self.obj = jit.compile_object(self.llvm_ir)
        self.loaded = jit.LoadedObject(self.obj)
        nargs = len(kernel.params) + len(kernel.dims)
        proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * len(kernel.params)
                                        + [ctypes.c_int64] * len(kernel.dims)))
        self.fn = proto(self.loaded.address(kernel.name))
        self.nargs = nargs
        self.packed = kernel.attrs.get("packed", {})

    def prepare(self, arrays: Sequence[np.ndarray], dims: Sequence[int] = ()) -> list:
        """Arguments for `run`: inputs (constants packed), a fresh output, dims."""
        k = self.kernel
        nin = len(k.params) - k.num_outputs
        args = []
        for buf, a in zip(k.params[:nin], arrays):
            if buf.name in self.packed:
                axis, block = self.packed[buf.name]
                a = pack_array(a, axis, block)
            args.append(np.ascontiguousarray(a, np.float32))
        env = {v.name: d for v, d in zip(k.dims, dims)}
        for buf in k.params[nin:]:
            shape = [_eval_dim(d, env) for d in buf.shape]
            args.append(np.empty(shape, np.float32))
        return args + list(dims)

    def run(self, args: list) -> None:
        self.fn(*[a.ctypes.data if isinstance(a, np.ndarray) else a for a in args])

    def runner(self, args: list) -> Callable[[], None]:
        """A no-argument call of the kernel on prepared `args` (pointers taken once)."""
        ptrs = [a.ctypes.data if isinstance(a, np.ndarray) else a for a in args]
        fn = self.fn
        keep = (self, args)  # the arrays and the loaded code must outlive the closure

        def call() -> None:
            fn(*ptrs)
        call.keep = keep  # type: ignore[attr-defined]
        return call

    def __call__(self, arrays: Sequence[np.ndarray], dims: Sequence[int] = ()) -> np.ndarray:
        args = self.prepare(arrays, dims)
        self.run(args)
        return args[len(self.kernel.params) - 1]


def _eval_dim(d: Any, env: dict) -> int:
    from compiler.kernel.ir import Const
    if isinstance(d, int):
        return d
    if isinstance(d, Const):
        return int(d.value)
    if isinstance(d, Var):
        return env[d.name]
    raise ValueError(f"cannot evaluate dim {d}")


def median_seconds(fns: Sequence[Callable[[], Any]], repeat: int, warmup: int = 3,
                   clock: Callable[[], float] = time.perf_counter
                   ) -> tuple[list[float], list[float]]:
    """Median and best time of each function, their runs interleaved (so a noisy neighbour
    on the machine slows all of them alike). `clock=time.process_time` measures CPU time instead,
    which for one thread ignores the time other processes hold the core."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    ts: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            t = clock()
            fn()
            ts[k].append(clock() - t)
    return [statistics.median(t) for t in ts], [min(t) for t in ts]


def set_threads(n: int) -> None:
    """Threads for our parallel loops (libgomp) and for torch."""
    import torch
    from codegen.llvm import jit
    jit._init()
    import ctypes.util
    path = ctypes.util.find_library("gomp") or jit._bundled_gomp()
    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL).omp_set_num_threads(n)
    torch.set_num_threads(n)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--m", type=int, default=1024)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--k", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=0, help="a batch dim (B not constant)")
    ap.add_argument("--nk", action="store_true", help="B read as [N, K] (a Linear weight)")
    ap.add_argument("--threads", default=None, help="comma-separated, default 1 and all cores")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time one-thread runs by process CPU time (a busy machine)")
    args = ap.parse_args(argv)
    import torch
    from codegen.llvm.jit import num_threads
    p = MatmulProblem(args.m, args.n, args.k, batch=(args.batch,) if args.batch else (),
                      b_constant=not args.batch, b_layout="nk" if args.nk else "kn")
    t0 = time.perf_counter()
    _, kernel = p.build()
    ck = CompiledKernel(kernel)
    compile_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    arrays = p.inputs(rng)
    got = ck(arrays)
    ref = p.reference(arrays)
    err = float(np.abs(got - ref).max() / max(1e-30, np.abs(ref).max()))
    flop = 2.0 * args.m * args.n * args.k * max(1, args.batch)
    threads = [int(x) for x in args.threads.split(",")] if args.threads else \
        sorted({1, num_threads()})
    ta = [torch.from_numpy(a) for a in arrays]
    tb = ta[1] if args.nk is False else ta[1].transpose(-1, -2)
    kargs = ck.prepare(arrays)
    print(f"matmul M={args.m} N={args.n} K={args.k}" + (f" batch={args.batch}" if args.batch
                                                       else "")
          + f": compile {compile_s:.2f} s, max rel error {err:.2e}")
    for n in threads:
        set_threads(n)
        clock = time.process_time if args.cpu_time and n == 1 else time.perf_counter
        (ours, theirs), (ours_b, theirs_b) = median_seconds(
            [ck.runner(kargs), lambda: torch.addmm(ta[2], ta[0], tb) if not args.batch
             else torch.matmul(ta[0], tb) + ta[2]], args.repeat, clock=clock)
        ours_g, theirs_g = flop / ours / 1e9, flop / theirs / 1e9
        how = " (cpu time)" if clock is time.process_time else ""
        print(f"  threads={n}{how}: ours {ours_g:7.1f} GFLOP/s   torch {theirs_g:7.1f} GFLOP/s   "
              f"ours/torch {ours_g / theirs_g:5.2f}   (best of runs: ours "
              f"{flop / ours_b / 1e9:.1f}, torch {flop / theirs_b / 1e9:.1f})")
    return 0 if err < 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
