"""Benchmark: import time of a model through each frontend (ONNX file, torch.export).

    python -m compiler bench import [--model gpt2-base] [--repeat 1]

The ONNX file is exported once (not timed); each frontend's import is timed from the model object
(or file) to a verified IR module.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time


def run(model_name: str = "gpt2-base", repeat: int = 1) -> dict[str, float]:
    from compiler.bench import models
    from frontends import from_onnx
    from frontends.torch import from_torch

    model, inputs = models.build(model_name)
    params = sum(p.numel() for p in model.parameters())
    res: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{model_name}.onnx")
        t0 = time.perf_counter()
        models.to_onnx(model, inputs, path)
        export_s = time.perf_counter() - t0
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            m = from_onnx(path)
            times.append(time.perf_counter() - t0)
        res["onnx_s"] = statistics.median(times)
        onnx_ops = len(m.main.ops)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        m = from_torch(model, example_inputs=inputs)
        times.append(time.perf_counter() - t0)
    res["torch_s"] = statistics.median(times)
    print(f"import {model_name} ({params / 1e6:.0f}M parameters), median of {repeat}:")
    print(f"  from_onnx   {res['onnx_s']:7.2f} s  ({onnx_ops} IR ops; torch.onnx.export took "
          f"{export_s:.1f} s, not counted)")
    print(f"  from_torch  {res['torch_s']:7.2f} s  ({len(m.main.ops)} IR ops; torch.export included)")
    return res
