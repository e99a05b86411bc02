"""Every registry op compiled by XLA agrees with the reference interpreter on fresh random
inputs (the op families' sample generators), and the TPU forms of the contractions stay within
bf16 accuracy."""
from __future__ import annotations

import numpy as np
import pytest

from codegen.xla import supported_ops
from compiler import ir
from tests.codegen.xla.util import build, check_op, rel_err
from tests.ir.opcheck import one_op_module, seed_of
from tests.ir.samples import all_samples

SAMPLES = all_samples()
SEEDS = 3


def _sample(name: str, seed: int):
    inputs, attrs = SAMPLES[name](np.random.default_rng(seed_of("xla", name, str(seed))))
    if name == "roi_align" and not attrs.get("sampling_ratio"):
        attrs["sampling_ratio"] = 2  # 0 means a data-dependent sample count (refused, see below)
    return inputs, attrs


def test_every_op_has_a_lowering():
    assert set(ir.all_ops()) - supported_ops() == set()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_op_matches_interpreter(name):
    for seed in range(SEEDS):
        inputs, attrs = _sample(name, seed)
        check_op(name, inputs, attrs)


CONTRACTIONS = ["matmul", "gemm", "linear", "einsum", "conv", "conv_transpose", "deform_conv"]


@pytest.mark.parametrize("name", CONTRACTIONS)
def test_tpu_contractions_within_bf16(name):
    """target="tpu" rounds f32 contraction inputs to bf16 (f32 accumulation): within 1e-2."""
    for seed in range(SEEDS):
        inputs, attrs = _sample(name, seed)
        m = one_op_module(name, inputs, attrs)
        want = ir.interpret(m, *inputs, dtype="f64")[0]
        got = build(m, "tpu")(*inputs)[0]
        assert got.dtype == inputs[0].dtype and got.shape == want.shape
        if got.dtype.kind in "iu":
            np.testing.assert_array_equal(got, want)
        else:
            assert rel_err(got, want) < 2e-2, (name, attrs)


def test_tpu_text_has_bf16_dots_and_tiles():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((120, 1000)).astype(np.float32)
    b = rng.standard_normal((1000, 250)).astype(np.float32)
    m = one_op_module("matmul", [a, b], {})
    mod = build(m, "tpu")
    text = mod.stablehlo
    assert "tensor<120x1024xbf16>" in text and "tensor<1024x256xbf16>" in text  # padded tiles
    assert "-> tensor<120x256xf32>" in text  # f32 accumulation
    assert rel_err(mod(a, b)[0], a.astype(np.float64) @ b) < 1e-2
    f32 = build(m, "tpu", bf16_contractions=False, pad_to_tiles=False)
    assert "bf16" not in f32.stablehlo
    np.testing.assert_allclose(f32(a, b)[0], a @ b, rtol=1e-4, atol=1e-3)
