"""Latency benchmark: our compiled module against ONNX Runtime and PyTorch eager, in one run.

    python -m compiler bench MODEL [--target llvm] [--batch B] [--seq S] [--repeat 20]
        [--warmup 3] [--threads K] [--json FILE] [--workdir DIR] [--frontend onnx|torch]

MODEL is one of compiler/bench/workloads.py's NAMES (matmul, mlp, gpt2-base, bert-base, gpt2,
bert, llama, resnet, mlp-int8, gpt2-int8). The model is exported to ONNX once (cached in
~/.cache/dlcompiler/bench or --workdir); ours compiles that same file (or the torch module with
--frontend torch), ONNX Runtime runs it on its CPU execution provider, torch runs the module
eagerly under torch.inference_mode. All use K threads (default: every core; ours through
OMP_NUM_THREADS and DLC_NUM_THREADS).

Timing: each runner is warmed up, then in each of N rounds every runner, in an order rotated per
round so drift hits all alike, waits for the process to go idle (another runtime's spinning
thread pool would slow it several times on a small machine), makes one untimed call and one
timed call. Figures: the median and min of the timed calls; ratios of medians; the relative
error ||a - b|| / ||b|| of each runner's outputs against torch's on the same inputs; our compile
time, cold (DLC_CACHE_DIR, our runtime's on-disk cache, is an empty temporary folder for the
run, so the user's cache is neither used nor filled) and, when the compiled module says whether
it came from the cache (`mod.cache_hit`), the same compile again in a fresh process; our memory
plan (`mod.memory_stats`: arena_bytes against intermediate_bytes_sum) when there is one; and how
busy other processes kept the CPUs meanwhile (/proc/stat; a note when that makes figures noisy).

int8 variants run ours and ONNX Runtime on the same QDQ file, and ours, ONNX Runtime and torch in
fp32: ratios against both, and agreement of ours with ONNX Runtime's int8 result as the maximum
difference and the fraction of outputs within one quantization step of the output (the scale
of the DequantizeLinear that produces it).
"""
from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Optional

import numpy as np

from .workloads import NAMES, Workload


@dataclasses.dataclass
class Runner:
    """One way of running the model: `call()` runs it once on the bound inputs."""
    name: str
    label: str
    call: Callable[[], Any]
    times: list[float] = dataclasses.field(default_factory=list)

    def summary(self, flops: Optional[float]) -> dict[str, Any]:
        ms = [t * 1e3 for t in self.times]
        med = statistics.median(ms)
        out = {"label": self.label, "median_ms": med, "min_ms": min(ms), "max_ms": max(ms),
               "runs": len(ms)}
        if flops:
            out["gflops"] = flops / (med * 1e-3) / 1e9
        return out


class BenchError(Exception):
    """A benchmark could not run (bad model name, a runner that cannot be built)."""


def run(model: str, target: str = "llvm", *, batch: Optional[int] = None,
        seq: Optional[int] = None, repeat: int = 20, warmup: int = 3,
        threads: Optional[int] = None, json_path: Optional[str] = None,
        workdir: Optional[str] = None, frontend: str = "onnx", cache_check: bool = True,
        out: Any = None) -> dict[str, Any]:
    """Measure `model` (see workloads.NAMES); print a table to `out` (default stdout) and
    return the figures (also written to json_path). Our compile failure does not stop the
    others: it is reported under "errors" and as the row's text."""
    from . import workloads
    out = out or sys.stdout
    if model not in NAMES:
        raise BenchError(f"unknown model '{model}'; models: {', '.join(NAMES)}")
    if frontend not in ("onnx", "torch"):
        raise BenchError(f"--frontend must be onnx or torch, got '{frontend}'")
    if repeat < 1 or warmup < 0:
        raise BenchError("--repeat must be at least 1 and --warmup at least 0")
    import tempfile

    import torch
    threads = threads or os.cpu_count() or 1
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="dlc-bench-cache-") as cache:
        # our runtime reads these: its thread count, and an empty on-disk cache so that the
        # first compile is cold and the second is timed from that cache (the user's own cache
        # is left alone); torch and ORT get their threads directly
        env = {"OMP_NUM_THREADS": str(threads), "DLC_NUM_THREADS": str(threads),
               "DLC_CACHE_DIR": cache}
        saved_env = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            res = _run(model, target, batch, seq, repeat, warmup, threads, workdir, frontend,
                       cache_check)
        finally:
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            torch.set_num_threads(saved_threads)
    print_table(res, out)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(res, f, indent=1)
    return res


def _run(model: str, target: str, batch: Optional[int], seq: Optional[int], repeat: int,
         warmup: int, threads: int, workdir: Optional[str], frontend: str,
         cache_check: bool) -> dict[str, Any]:
    from . import workloads
    w = workloads.make(model, batch, seq)
    res: dict[str, Any] = {
        "model": model, "description": w.description, "target": target, "frontend": frontend,
        "batch": w.batch, "seq": w.seq, "threads": threads, "repeat": repeat, "warmup": warmup,
        "flops": w.flops, "runners": {}, "ratios": {}, "agreement": {}, "compile": {},
        "memory": None, "errors": {}}
    t0 = time.perf_counter()
    try:
        float_path, reused = workloads.onnx_file(w, workdir)
    except Exception as e:  # torch.onnx raises many kinds
        raise BenchError(f"exporting {model} to ONNX failed: {type(e).__name__}: {e}") from e
    res["onnx"] = {"float": float_path, "export_s": None if reused else time.perf_counter() - t0}
    arrays = [x.numpy() for x in w.inputs]

    runners: list[Runner] = []
    mods: dict[str, Any] = {}

    def add_ours(name: str, label: str, graph: Any, example: Any = None) -> None:
        try:
            mod, info = _compile(graph, target, example, cache_check)
        except Exception as e:  # compile errors of every layer name their cause
            res["errors"][name] = f"{type(e).__name__}: {e}"
            return
        mods[name] = mod
        res["compile"][name] = info
        runners.append(Runner(name, label, lambda: mod(*arrays)))

    def add_ort(name: str, label: str, path: str) -> None:
        try:
            runners.append(_ort_runner(name, label, path, arrays, threads))
        except Exception as e:  # ORT's own errors (unsupported op, bad model)
            res["errors"][name] = f"{type(e).__name__}: {e}"

    if w.int8:
        t0 = time.perf_counter()
        try:
            qdq_path, reused = workloads.qdq_file(w, float_path)
        except Exception as e:
            raise BenchError(f"quantizing {model} failed: {type(e).__name__}: {e}") from e
        res["onnx"].update(qdq=qdq_path, quantize_s=None if reused else time.perf_counter() - t0)
        add_ours("ours", f"ours int8 ({target})", qdq_path)
        add_ort("ort", "onnxruntime int8", qdq_path)
        add_ours("ours-fp32", f"ours fp32 ({target})", _source(w, float_path, frontend),
                 w.inputs)
        add_ort("ort-fp32", "onnxruntime fp32", float_path)
    else:
        add_ours("ours", f"ours ({target})", _source(w, float_path, frontend), w.inputs)
        add_ort("ort", "onnxruntime", float_path)
    runners.append(_torch_runner(w))

    load = _CpuLoad()
    outputs = _time(runners, repeat, warmup, res["errors"])
    res["other_cpu_load"] = load.others()
    if "torch" not in outputs:
        raise BenchError(f"torch eager failed on {model}: {res['errors'].get('torch')}")
    for r in runners:
        res["runners"][r.name] = r.summary(w.flops)
    _ratios(res)
    _agreement(res, outputs, workloads.output_step(qdq_path) if w.int8 else None)
    stats = getattr(mods.get("ours"), "memory_stats", None)
    if callable(stats):
        stats = stats()
    if stats:
        res["memory"] = dict(stats)
    return res


# --- runners -------------------------------------------------------------------------------------

def _source(w: Workload, float_path: str, frontend: str) -> Any:
    """What our compile imports: the ONNX file ORT runs, or the torch module itself."""
    return float_path if frontend == "onnx" else w.model


def _compile(graph: Any, target: str, example: Any, cache_check: bool) -> tuple[Any, dict]:
    """compile(), timed; then, when the module tells whether it came from the on-disk cache,
    the same compile in a fresh process (ONNX files) or a second time here (torch modules)."""
    import compiler
    t0 = time.perf_counter()
    mod = compiler.compile(graph, target=target,
                           example_inputs=None if isinstance(graph, str) else example)
    info: dict[str, Any] = {"cold_s": time.perf_counter() - t0}
    hit = getattr(mod, "cache_hit", None)
    if hit is None or not cache_check:
        return mod, info
    info["cold_cache_hit"] = bool(hit)  # True: the "cold" compile found a cached build
    if isinstance(graph, str):
        info.update(recompile_in_fresh_process(graph, target))
    else:
        t0 = time.perf_counter()
        again = compiler.compile(graph, target=target, example_inputs=example)
        info.update(cache_s=time.perf_counter() - t0,
                    cache_hit=bool(getattr(again, "cache_hit", False)), cache_how="same process")
    return mod, info


def recompile_in_fresh_process(path: str, target: str) -> dict[str, Any]:
    """Compile `path` again in a new interpreter (only the compile call is timed)."""
    code = ("import json, sys, time; import compiler; t0 = time.perf_counter(); "
            "m = compiler.compile(sys.argv[1], target=sys.argv[2]); "
            "print(json.dumps({'s': time.perf_counter() - t0, "
            "'hit': bool(getattr(m, 'cache_hit', False))}))")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root,
                                                                    os.environ.get("PYTHONPATH")])))
    try:
        p = subprocess.run([sys.executable, "-c", code, path, target], capture_output=True,
                           text=True, env=env, timeout=1800)
    except subprocess.TimeoutExpired:
        return {"cache_error": "recompile in a fresh process took over 30 minutes"}
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["?"])[-1]
        return {"cache_error": f"recompile in a fresh process failed: {tail}"}
    got = json.loads(p.stdout.strip().splitlines()[-1])
    return {"cache_s": got["s"], "cache_hit": got["hit"], "cache_how": "fresh process"}


def _ort_runner(name: str, label: str, path: str, arrays: list[np.ndarray],
                threads: int) -> Runner:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feeds = {i.name: a for i, a in zip(sess.get_inputs(), arrays)}
    return Runner(name, label, lambda: sess.run(None, feeds))


def _torch_runner(w: Workload) -> Runner:
    return Runner("torch", "torch eager" + (" fp32" if w.int8 else ""),
                  lambda: w.model(*w.inputs))


def _time(runners: list[Runner], repeat: int, warmup: int,
          errors: dict[str, str]) -> dict[str, list[np.ndarray]]:
    """Warm each runner up, then `repeat` rounds, the runners' order rotated each round. In a
    round each runner waits until the process is idle (the previous runner's worker threads
    stop spinning: OpenBLAS spins ~100 ms, ONNX Runtime tens of ms, and on a machine with few
    cores a spinning pool slows the next runner by several times), makes one untimed call
    (wakes its own threads) and one timed call: steady-state latency, free of the others.
    A runner that raises while warming up is dropped and its error recorded in `errors`.
    Returns each remaining runner's outputs from its warm-up."""
    import torch
    outputs: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for r in list(runners):
            _settle()
            try:
                for _ in range(max(warmup, 1)):
                    got = r.call()
            except Exception as e:  # a runtime's input checks, ORT run errors, ...
                errors[r.name] = f"{type(e).__name__}: {e}"
                runners.remove(r)
                continue
            outputs[r.name] = _as_arrays(got)
        n = len(runners)
        for i in range(repeat):
            for r in runners[i % n:] + runners[:i % n]:
                _settle()
                r.call()
                t0 = time.perf_counter()
                r.call()
                r.times.append(time.perf_counter() - t0)
    return outputs


def _settle(window_s: float = 0.002, busy: float = 0.1, limit_s: float = 1.0) -> None:
    """Sleep until this process uses under `busy` of one core over a window (at most
    limit_s): the previous runner's threads have gone to sleep."""
    end = time.perf_counter() + limit_s
    while time.perf_counter() < end:
        c0, t0 = time.process_time(), time.perf_counter()
        time.sleep(window_s)
        if time.process_time() - c0 < busy * (time.perf_counter() - t0):
            return


class _CpuLoad:
    """How busy other processes kept the machine's CPUs while we timed (Linux /proc/stat): a
    shared machine makes medians noisy, and the table says so."""

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> Optional[tuple[float, float, float]]:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # - idle, iowait
        return busy / os.sysconf("SC_CLK_TCK"), time.process_time(), time.perf_counter()

    def others(self) -> Optional[float]:
        """Share of all CPUs used by other processes since __init__ (0..1), or None."""
        end = self._read()
        if self.start is None or end is None:
            return None
        busy, own, wall = (b - a for a, b in zip(self.start, end))
        return max(0.0, min(1.0, (busy - own) / (wall * (os.cpu_count() or 1))))


def _as_arrays(got: Any) -> list[np.ndarray]:
    """Copies: a runtime may hand out views of buffers that its next call overwrites."""
    import torch
    items = list(got) if isinstance(got, (list, tuple)) else [got]
    return [np.array(x.numpy() if isinstance(x, torch.Tensor) else x, copy=True) for x in items]


# --- figures -------------------------------------------------------------------------------------

def _ratios(res: dict[str, Any]) -> None:
    med = {k: v["median_ms"] for k, v in res["runners"].items()}
    if "ours" in med:
        for other in ("ort", "torch", "ours-fp32", "ort-fp32"):
            if other in med:
                res["ratios"][f"ours/{other}"] = med["ours"] / med[other]
    if "ort" in med and "torch" in med:
        res["ratios"]["ort/torch"] = med["ort"] / med["torch"]


def _agreement(res: dict[str, Any], outputs: dict[str, list[np.ndarray]],
               step: Optional[float]) -> None:
    ref = outputs["torch"]
    for name, outs in outputs.items():
        if name != "torch":
            res["agreement"][f"{name} vs torch"] = compare(outs, ref)
    if "ours" in outputs and "ort" in outputs and res["model"].endswith("-int8"):
        a = compare(outputs["ours"], outputs["ort"])
        a["step"] = step
        if step is not None:
            diff = np.abs(outputs["ours"][0].astype(np.float64)
                          - outputs["ort"][0].astype(np.float64))
            a["within_one_step"] = float(np.mean(diff <= step * (1 + 1e-6)))
            a["max_steps"] = float(diff.max() / step)
        res["agreement"]["ours vs ort"] = a


def compare(got: list[np.ndarray], want: list[np.ndarray]) -> dict[str, Any]:
    """Relative error ||got - want|| / ||want|| over all outputs, and the largest difference."""
    if len(got) != len(want):
        return {"error": f"{len(got)} outputs, expected {len(want)}"}
    num = den = 0.0
    max_abs = 0.0
    for g, w in zip(got, want):
        g = np.asarray(g, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        if g.shape != w.shape:
            return {"error": f"output shape {list(g.shape)}, expected {list(w.shape)}"}
        d = g - w
        num += float(np.sum(d * d))
        den += float(np.sum(w * w))
        if d.size:
            max_abs = max(max_abs, float(np.max(np.abs(d))))
    return {"rel_err": (num ** 0.5) / max(den ** 0.5, 1e-300), "max_abs": max_abs}


def print_table(res: dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout
    p = lambda s="": print(s, file=out)  # noqa: E731
    shape = f"batch {res['batch']}" + (f", seq {res['seq']}" if res["seq"] is not None else "")
    p(f"bench {res['model']}: {res['description']}")
    p(f"  {shape}; {res['threads']} threads; median of {res['repeat']} after {res['warmup']} "
      f"warm-ups, runners rotated; target {res['target']}, {res['frontend']} frontend")
    runners = res["runners"]
    ours = runners.get("ours", {}).get("median_ms")
    gf = res["flops"] is not None
    p(f"  {'runner':24s} {'median ms':>10s} {'min ms':>9s}" + (f" {'GFLOP/s':>8s}" if gf else "")
      + f" {'ours/this':>10s}")
    for name, r in runners.items():
        ratio = f"{ours / r['median_ms']:10.2f}" if ours and name != "ours" else " " * 10
        p(f"  {r['label']:24s} {r['median_ms']:10.3f} {r['min_ms']:9.3f}"
          + (f" {r['gflops']:8.1f}" if gf else "") + f" {ratio}")
    for name, err in res["errors"].items():
        p(f"  {name:24s} failed: {err}")
    other = res.get("other_cpu_load")
    if other is not None and other > 0.05:
        p(f"  note: other processes kept {other:.0%} of the CPUs busy while timing: the figures "
          "are noisy (compare min ms, or rerun on a quiet machine)")
    if res["ratios"]:
        p("  ratios of medians (below 1: the first is faster): "
          + ", ".join(f"{k} {v:.2f}" for k, v in res["ratios"].items()))
    for name, a in res["agreement"].items():
        if "error" in a:
            p(f"  agreement {name}: {a['error']}")
            continue
        line = f"  agreement {name}: rel err {a['rel_err']:.2e}, max abs diff {a['max_abs']:.2e}"
        if a.get("step") is not None:
            line += (f"; within one output step ({a['step']:.3g}): {a['within_one_step']:.2%}, "
                     f"max {a['max_steps']:.2f} steps")
        p(line)
    for name, c in res["compile"].items():
        line = f"  compile {name}: cold {c['cold_s']:.2f} s"
        if c.get("cold_cache_hit"):
            line += " (a cache hit: not cold)"
        if "cache_s" in c:
            line += (f"; again ({c['cache_how']}) {c['cache_s']:.2f} s, "
                     f"{'from the cache' if c['cache_hit'] else 'cache MISS'}")
        elif "cache_error" in c:
            line += f"; {c['cache_error']}"
        p(line)
    onnx = res.get("onnx", {})
    if onnx.get("export_s") is not None:
        p(f"  (torch.onnx.export took {onnx['export_s']:.1f} s, not counted; cached as "
          f"{onnx['float']})")
    mem = res["memory"]
    if mem:
        arena = mem.get("arena_bytes")
        total = mem.get("intermediate_bytes_sum")
        line = "  memory plan:"
        if arena is not None and total is not None:
            share = f" ({arena / total:.0%})" if total else ""
            line += (f" arena {arena / 2**20:.2f} MiB for {total / 2**20:.2f} MiB of "
                     f"intermediates{share}")
        rest = {k: v for k, v in mem.items() if k not in ("arena_bytes", "intermediate_bytes_sum")}
        if rest:
            line += ("," if line.endswith(")") or "arena" in line else "") + " " + ", ".join(
                f"{k} {v / 2**20:.2f} MiB" if k.endswith("_bytes") and isinstance(v, (int, float))
                else f"{k} {v}" for k, v in rest.items())
        p(line)
