"""Real architectures (GPT-2, BERT, a Llama-style decoder, ResNet; small configs) through both
frontends, compiled by XLA: relative error (norm of difference / norm of reference) against
PyTorch under 1e-4 on target "xla" and under 1e-2 on target "tpu" (bf16 contraction inputs)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import compiler
from compiler.bench import models
from tests.codegen.xla.util import rel_err

NAMES = sorted(models.MODELS)
LIMIT = {"xla": 1e-4, "tpu": 1e-2}


@pytest.fixture(scope="module", params=NAMES)
def model_case(request, tmp_path_factory):
    model, inputs = models.build(request.param)
    with torch.no_grad():
        want = model(*inputs).numpy().astype(np.float64)
    path = str(tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx")
    models.to_onnx(model, inputs, path)
    return request.param, model, inputs, want, path


@pytest.mark.parametrize("frontend", ["torch", "onnx"])
def test_model_on_xla_and_tpu(model_case, frontend):
    name, model, inputs, want, path = model_case
    arrays = [x.numpy() for x in inputs]
    if frontend == "torch":
        mod = compiler.compile(model, target="xla", example_inputs=inputs)
    else:
        mod = compiler.compile(path, target="xla")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no TPU here: "tpu" runs on XLA's CPU backend
        tpu = compiler.api.build(mod.module, "tpu")  # the same optimized module
    for target, m in (("xla", mod), ("tpu", tpu)):
        (got,) = m(*arrays)
        assert got.shape == want.shape
        err = rel_err(got, want)
        assert err < LIMIT[target], (name, frontend, target, err)
