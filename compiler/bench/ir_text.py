"""Benchmark: print and parse a module of N ops (default 10,000), medians over repeats.

    python -m compiler bench ir-text [--ops 10000] [--repeat 5]
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from compiler import ir


def make_module(n_ops: int, seed: int = 0) -> ir.Module:
    """A transformer-like chain of n_ops ops: matmuls, adds, activations, softmax, reshapes and
    attributes, on a symbolic batch dim, with small inline weights."""
    rng = np.random.default_rng(seed)
    m = ir.Module("bench")
    f = ir.FunctionBuilder(m, "main")
    x = f.arg("x", ir.tensor(["batch", 16], "f32"))
    w = f.constant(rng.standard_normal((4, 4)).astype(np.float32), name="w")
    b = f.constant(rng.standard_normal(16).astype(np.float32), name="b")
    cycle = [
        lambda v: f.reshape(v, shape=["batch", 4, 4]),
        lambda v: f.matmul(v, w),
        lambda v: f.transpose(v, perm=[0, 2, 1]),
        lambda v: f.reshape(v, shape=["batch", 16]),
        lambda v: f.add(v, b),
        lambda v: f.gelu(v, approximate="tanh"),
        lambda v: f.softmax(v, axis=-1),
        lambda v: f.mul(v, v),
        lambda v: f.leaky_relu(v, alpha=0.1),
        lambda v: f.tanh(v),
    ]
    h, i = x, 0
    while len(f.function.ops) < n_ops:
        h = cycle[i % len(cycle)](h)
        i += 1
    f.ret(h)
    return m


def run(n_ops: int = 10_000, repeat: int = 5) -> dict[str, float]:
    """Returns median seconds for print, parse and the sum; prints a table."""
    m = make_module(n_ops)
    assert sum(len(fn.ops) for fn in m.functions) == n_ops
    ir.parse(ir.print_module(m))  # warm-up: builds the grammar's parser tables once
    prints, parses = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        text = ir.print_module(m)
        t1 = time.perf_counter()
        m2 = ir.parse(text)
        t2 = time.perf_counter()
        prints.append(t1 - t0)
        parses.append(t2 - t1)
    assert ir.print_module(m2) == text
    res = {"print_s": statistics.median(prints), "parse_s": statistics.median(parses)}
    res["total_s"] = res["print_s"] + res["parse_s"]
    print(f"ir-text: {n_ops} ops, {len(text.splitlines())} lines, {len(text) / 1e6:.2f} MB")
    print(f"  print  {res['print_s'] * 1e3:8.1f} ms (median of {repeat})")
    print(f"  parse  {res['parse_s'] * 1e3:8.1f} ms")
    print(f"  total  {res['total_s'] * 1e3:8.1f} ms")
    return res
