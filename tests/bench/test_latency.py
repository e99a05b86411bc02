"""`python -m compiler bench MODEL`: tiny configs on the interpreter with few repeats. The table
and the JSON carry every figure (medians, ratios, agreement, compile time, memory plan), ours
agrees with torch and ONNX Runtime, the int8 variant agrees with ONNX Runtime's QDQ run within one
output step, and a target that cannot build is reported while the other runners still run."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from compiler import api
from compiler.bench import latency, workloads

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAST = dict(repeat=2, warmup=1, threads=2)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("bench"))  # exports shared by this file's tests


def bench(model: str, workdir: str, **kw):
    out = io.StringIO()
    res = latency.run(model, kw.pop("target", "interpreter"), workdir=workdir, out=out,
                      **{**FAST, **kw})
    return res, out.getvalue()


def check_timings(res: dict, runners: list[str]) -> None:
    assert list(res["runners"]) == runners
    for r in res["runners"].values():
        assert r["runs"] == FAST["repeat"]
        assert 0 < r["min_ms"] <= r["median_ms"] <= r["max_ms"]


def test_mlp_table_json_and_agreement(workdir, tmp_path):
    path = str(tmp_path / "mlp.json")
    res, table = bench("mlp", workdir, batch=2, json_path=path)
    assert res["errors"] == {}
    check_timings(res, ["ours", "ort", "torch"])
    med = {k: v["median_ms"] for k, v in res["runners"].items()}
    assert res["ratios"]["ours/ort"] == pytest.approx(med["ours"] / med["ort"])
    assert res["ratios"]["ours/torch"] == pytest.approx(med["ours"] / med["torch"])
    assert res["flops"] == 2.0 * 2 * 1024 * 4096 * 2
    assert res["runners"]["ours"]["gflops"] == pytest.approx(res["flops"] / med["ours"] / 1e6)
    assert res["agreement"]["ours vs torch"]["rel_err"] < 1e-5
    assert res["agreement"]["ort vs torch"]["rel_err"] < 1e-5
    assert res["compile"]["ours"]["cold_s"] > 0
    assert "cache_s" not in res["compile"]["ours"]  # the interpreter has no on-disk cache
    assert res["memory"] is None
    for text in ("ours (interpreter)", "onnxruntime", "torch eager", "median ms", "ours/ort",
                 "ours/torch", "GFLOP/s", "agreement ours vs torch: rel err", "compile ours: cold"):
        assert text in table, text
    with open(path) as f:
        assert json.load(f) == json.loads(json.dumps(res))
    # the export is cached: a second run reuses it
    res2, _ = bench("mlp", workdir, batch=2, repeat=1)
    assert res2["onnx"]["float"] == res["onnx"]["float"] and res2["onnx"]["export_s"] is None


def test_gpt2_through_the_torch_frontend(workdir):
    res, table = bench("gpt2", workdir, frontend="torch")
    assert res["errors"] == {} and res["frontend"] == "torch" and res["seq"] == 16
    check_timings(res, ["ours", "ort", "torch"])
    assert res["agreement"]["ours vs torch"]["rel_err"] < 1e-5
    assert "torch frontend" in table


def test_int8_mlp_against_onnx_runtime_qdq(workdir):
    res, table = bench("mlp-int8", workdir, batch=2)
    assert res["errors"] == {}
    check_timings(res, ["ours", "ort", "ours-fp32", "ort-fp32", "torch"])
    assert set(res["ratios"]) >= {"ours/ort", "ours/ours-fp32", "ours/torch"}
    q = res["agreement"]["ours vs ort"]
    assert q["step"] > 0 and q["within_one_step"] >= 0.99 and q["max_steps"] <= 2
    # quantization costs accuracy against fp32, but not much; fp32 runs agree tightly
    assert 1e-4 < res["agreement"]["ours vs torch"]["rel_err"] < 0.1
    assert res["agreement"]["ours-fp32 vs torch"]["rel_err"] < 1e-5
    assert "within one output step" in table and "ours int8 (interpreter)" in table


class _CachedInterpreter(api.CompiledModule):
    """The interpreter dressed as a code generator with an on-disk cache and a memory plan."""
    builds = 0

    def __init__(self, module, target):
        super().__init__(module, target)
        type(self).builds += 1
        self.cache_hit = type(self).builds > 1
        self.memory_stats = {"arena_bytes": 3 << 20, "intermediate_bytes_sum": 12 << 20}


def build_cached(module, target, *, dump_dir=None):
    return _CachedInterpreter(module, target)


def test_cache_and_memory_plan_are_reported(workdir, monkeypatch):
    monkeypatch.setitem(api.TARGETS, "cached", f"{__name__}:build_cached")
    _CachedInterpreter.builds = 0
    res, table = bench("matmul", workdir, target="cached", batch=8, frontend="torch")
    c = res["compile"]["ours"]
    assert c["cold_cache_hit"] is False and c["cache_hit"] is True and c["cache_s"] > 0
    assert res["memory"] == {"arena_bytes": 3 << 20, "intermediate_bytes_sum": 12 << 20}
    assert "from the cache" in table
    assert "memory plan: arena 3.00 MiB for 12.00 MiB of intermediates (25%)" in table
    assert res["agreement"]["ours vs torch"]["rel_err"] < 1e-5


def test_recompile_in_a_fresh_process(workdir):
    w = workloads.make("mlp", batch=2)
    path, _ = workloads.onnx_file(w, workdir)
    got = latency.recompile_in_fresh_process(path, "interpreter")
    assert got["cache_how"] == "fresh process" and got["cache_s"] > 0
    assert got["cache_hit"] is False  # the interpreter has no cache


def test_compare():
    a = np.array([3.0, 4.0], np.float32)
    assert latency.compare([a], [a]) == {"rel_err": 0.0, "max_abs": 0.0}
    got = latency.compare([a + np.array([0, 0.5], np.float32)], [a])
    assert got["rel_err"] == pytest.approx(0.1) and got["max_abs"] == pytest.approx(0.5)
    assert "shape" in latency.compare([a[:1]], [a])["error"]
    assert "outputs" in latency.compare([a, a], [a])["error"]


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "compiler", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)


def test_cli_runs_and_reports_a_target_that_cannot_build(workdir, tmp_path):
    out = tmp_path / "r.json"
    r = cli("bench", "mlp", "--target", "interpreter", "--batch", "2", "--repeat", "1",
            "--warmup", "0", "--workdir", workdir, "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "ours (interpreter)" in r.stdout and "ours/ort" in r.stdout
    assert json.loads(out.read_text())["runners"]["ours"]["runs"] == 1
    r = cli("bench", "mlp", "--target", "cuda", "--batch", "2", "--repeat", "1",
            "--workdir", workdir)
    assert r.returncode == 1
    assert "target 'cuda' has no code generator yet" in r.stderr
    assert "onnxruntime" in r.stdout and "torch eager" in r.stdout  # the others still ran
    assert "Traceback" not in r.stderr
    for args, message in [(("bench", "mlp", "--threads", "0"), "--threads must be at least 1"),
                          (("bench", "gpt3"), "unknown benchmark 'gpt3'")]:
        r = cli(*args)
        assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr
