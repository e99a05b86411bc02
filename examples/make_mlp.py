"""Write examples/mlp.ir (+ mlp.safetensors): a two-layer MLP classifier with a symbolic batch.

    python examples/make_mlp.py      # regenerates the files (fixed seed, same bytes)
"""
from __future__ import annotations

import os

import numpy as np

from compiler import ir


def build(seed: int = 0) -> ir.Module:
    rng = np.random.default_rng(seed)
    m = ir.Module("mlp")
    m.dim_bounds["batch"] = (1, 256)
    f = ir.FunctionBuilder(m, "main")
    x = f.arg("x", ir.tensor(["batch", 64], "f32"))
    w1 = f.constant((rng.standard_normal((64, 128)) / 8).astype(np.float32), name="fc1.weight")
    b1 = f.constant((rng.standard_normal(128) / 10).astype(np.float32), name="fc1.bias")
    w2 = f.constant((rng.standard_normal((128, 10)) / 11).astype(np.float32), name="fc2.weight")
    b2 = f.constant((rng.standard_normal(10) / 10).astype(np.float32), name="fc2.bias")
    h = f.gelu(f.add(f.matmul(x, w1), b1))
    logits = f.add(f.matmul(h, w2), b2)
    f.ret(f.softmax(logits, axis=-1))
    ir.verify(m)
    return m


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mlp.ir")
    ir.save(build(), path)
    print(f"wrote {path}")
