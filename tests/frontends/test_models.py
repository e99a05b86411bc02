"""Real architectures through both frontends: imported, interpreted, and matching PyTorch with
relative error (norm of difference / norm of reference) under 1e-5; then compiled with the
default pipeline for target="llvm" and matching PyTorch under 1e-4."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import compiler
from compiler import ir
from compiler.bench import models

NAMES = sorted(models.MODELS)


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want))


@pytest.fixture(scope="module", params=NAMES)
def model_case(request):
    model, inputs = models.build(request.param)
    with torch.no_grad():
        want = model(*inputs).numpy().astype(np.float64)
    return request.param, model, inputs, want


def test_torch_frontend(model_case):
    from frontends.torch import from_torch
    name, model, inputs, want = model_case
    m = from_torch(model, example_inputs=inputs)
    (got,) = ir.interpret(m, *[x.numpy() for x in inputs])
    assert got.shape == want.shape
    assert rel_err(got, want) < 1e-5, name
    _check_llvm(m, inputs, want, name)


def _check_llvm(m, inputs, want, name):
    (got,) = compiler.compile(m, target="llvm")(*[x.numpy() for x in inputs])
    assert got.shape == want.shape
    assert rel_err(got, want) < 1e-4, name


def test_onnx_frontend(model_case, tmp_path):
    from frontends import from_onnx
    name, model, inputs, want = model_case
    path = str(tmp_path / f"{name}.onnx")
    models.to_onnx(model, inputs, path)
    m = from_onnx(path)
    (got,) = ir.interpret(m, *[x.numpy() for x in inputs])
    assert got.shape == want.shape
    assert rel_err(got, want) < 1e-5, name
    _check_llvm(m, inputs, want, name)
