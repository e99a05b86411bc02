"""fold-batchnorm: IR text in, IR text out, and interpreter results that match the unfolded graph
within float rounding (the fold reassociates float math, see the pass's docstring)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import ir
from compiler.ir import Function, FunctionBuilder, Module, tensor
from compiler.ir import dtypes as dt
from passes.fold_batchnorm import FoldBatchNorm
from tests.ir.test_roundtrip_property import random_graphs

# Tolerance relative to the largest output magnitude. The two graphs differ in a handful of
# roundings: the folded weights once in their dtype, then the contraction and (unfolded only)
# batch_norm's subtract, multiply and add; f16/bf16 compute in f32 and round each op's result
# once. So the difference is a few ulps of the output's magnitude: 8-9 ulps for f32 (1.2e-7) and
# f64 (2.2e-16), 8 for f16 (4.9e-4) and bf16 (3.9e-3). Over 1000 random cases the largest seen is
# under 40% of these (f16), 2-25% for the others.
TOLERANCE = {dt.f64: 2e-15, dt.f32: 1e-6, dt.f16: 4e-3, dt.bf16: 3e-2}


def close(got: np.ndarray, want: np.ndarray, d: dt.DType) -> None:
    got, want = got.astype(np.float64), want.astype(np.float64)
    tol = TOLERANCE[d]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, float(np.abs(want).max(
        initial=0.0))))


def random_inputs(fn: Function, rng: np.random.Generator) -> list[np.ndarray]:
    sizes: dict[str, int] = {}
    return [rng.standard_normal([d if isinstance(d, int) else sizes.setdefault(d, 3)
                                 for d in a.type.shape]).astype(a.dtype.np_dtype) for a in fn.args]


def check_fold(before: str, after: str) -> ir.Module:
    """fold-batchnorm turns `before` into `after` (printed), which verifies and computes what
    `before` does within float rounding on fresh random inputs."""
    m = ir.parse(before)
    inputs = [random_inputs(m.main, np.random.default_rng(seed)) for seed in range(3)]
    want = [ir.interpret(m, *xs) for xs in inputs]
    assert FoldBatchNorm().run(m)
    assert ir.print_module(m) == after
    ir.verify(m)
    for xs, w in zip(inputs, want):
        for g, e in zip(ir.interpret(m, *xs), w):
            close(g, e, dt.dtype(e.dtype))
    assert not FoldBatchNorm().run(m)
    return m


# epsilon = 0 and variances 4 and 0.25 make s = scale / sqrt(var) = [0.5, 4.0]: exact constants
BN_PARAMS = """\
  const @scale : f32[2] = dense<[1.0, 2.0]>
  const @bias : f32[2] = dense<[0.25, -1.0]>
  const @mean : f32[2] = dense<[0.5, 2.0]>
  const @var : f32[2] = dense<[4.0, 0.25]>
"""
BN_OPS = """\
    %scale = constant() {name = @scale} : f32[2]
    %bias = constant() {name = @bias} : f32[2]
    %mean = constant() {name = @mean} : f32[2]
    %var = constant() {name = @var} : f32[2]
"""


def test_conv_with_bias():
    # w' = w * s = [0.75, -8.0]; b' = (b - mean) * s + bias = [0.25, -5.0]
    check_fold(f"""\
module @m {{
  const @w : f32[2,1,1,1] = dense<[1.5, -2.0]>
  const @b : f32[2] = dense<[0.5, 1.0]>
{BN_PARAMS}  func @main(%x: f32[?n,1,3,3]) -> (f32[?n,2,5,3]) {{
    %w = constant() {{name = @w}} : f32[2,1,1,1]
    %b = constant() {{name = @b}} : f32[2]
{BN_OPS}    %0 = conv(%x, %w, %b) {{pads = [1, 0, 1, 0]}} : f32[?n,2,5,3]
    %1 = batch_norm(%0, %scale, %bias, %mean, %var) {{epsilon = 0.0}} : f32[?n,2,5,3]
    return %1
  }}
}}
""", f"""\
module @m {{
  const @w : f32[2,1,1,1] = dense<[1.5, -2.0]>
  const @b : f32[2] = dense<[0.5, 1.0]>
{BN_PARAMS}  const @w_bn : f32[2,1,1,1] = dense<[0.75, -8.0]>
  const @b_bn : f32[2] = dense<[0.25, -5.0]>
  func @main(%x: f32[?n,1,3,3]) -> (f32[?n,2,5,3]) {{
    %w_bn = constant() {{name = @w_bn}} : f32[2,1,1,1]
    %b_bn = constant() {{name = @b_bn}} : f32[2]
    %0 = conv(%x, %w_bn, %b_bn) {{pads = [1, 0, 1, 0]}} : f32[?n,2,5,3]
    return %0
  }}
}}
""")


def test_linear_matmul_and_gemm():
    # linear: w' = w * s[:, None], b' = (b - mean) * s + bias = [0.25, -11.0]
    # matmul: w' = w * s[None, :]; the shift bias - mean * s = [0.0, -9.0] is added after it
    # gemm (trans_b, alpha 2, beta 0.5, c [1,2]): w' = w * s[:, None], c' = 0.5 * c * s + shift
    check_fold(f"""\
module @m {{
  const @lw : f32[2,2] = dense<[1.0, 2.0, 3.0, 4.0]>
  const @lb : f32[2] = dense<[0.5, -0.5]>
  const @mw : f32[2,2] = dense<[1.0, -1.0, 2.0, 0.5]>
  const @gw : f32[2,2] = dense<[1.0, 0.0, 0.0, 1.0]>
  const @gc : f32[1,2] = dense<[2.0, 4.0]>
{BN_PARAMS}  func @main(%x: f32[?n,2]) -> (f32[?n,2], f32[?n,2], f32[?n,2]) {{
    %lw = constant() {{name = @lw}} : f32[2,2]
    %lb = constant() {{name = @lb}} : f32[2]
    %mw = constant() {{name = @mw}} : f32[2,2]
    %gw = constant() {{name = @gw}} : f32[2,2]
    %gc = constant() {{name = @gc}} : f32[1,2]
{BN_OPS}    %0 = linear(%x, %lw, %lb) : f32[?n,2]
    %1 = batch_norm(%0, %scale, %bias, %mean, %var) {{epsilon = 0.0}} : f32[?n,2]
    %2 = matmul(%x, %mw) : f32[?n,2]
    %3 = batch_norm(%2, %scale, %bias, %mean, %var) {{epsilon = 0.0}} : f32[?n,2]
    %4 = gemm(%x, %gw, %gc) {{alpha = 2.0, beta = 0.5, trans_b = true}} : f32[?n,2]
    %5 = batch_norm(%4, %scale, %bias, %mean, %var) {{epsilon = 0.0}} : f32[?n,2]
    return %1, %3, %5
  }}
}}
""", f"""\
module @m {{
  const @lw : f32[2,2] = dense<[1.0, 2.0, 3.0, 4.0]>
  const @lb : f32[2] = dense<[0.5, -0.5]>
  const @mw : f32[2,2] = dense<[1.0, -1.0, 2.0, 0.5]>
  const @gw : f32[2,2] = dense<[1.0, 0.0, 0.0, 1.0]>
  const @gc : f32[1,2] = dense<[2.0, 4.0]>
{BN_PARAMS}  const @lw_bn : f32[2,2] = dense<[0.5, 1.0, 12.0, 16.0]>
  const @lb_bn : f32[2] = dense<[0.25, -11.0]>
  const @mw_bn : f32[2,2] = dense<[0.5, -4.0, 1.0, 2.0]>
  const @mw_bias_bn : f32[2] = dense<[0.0, -9.0]>
  const @gw_bn : f32[2,2] = dense<[0.5, 0.0, 0.0, 4.0]>
  const @gc_bn : f32[1,2] = dense<[0.5, -1.0]>
  func @main(%x: f32[?n,2]) -> (f32[?n,2], f32[?n,2], f32[?n,2]) {{
    %lw_bn = constant() {{name = @lw_bn}} : f32[2,2]
    %lb_bn = constant() {{name = @lb_bn}} : f32[2]
    %0 = linear(%x, %lw_bn, %lb_bn) : f32[?n,2]
    %mw_bn = constant() {{name = @mw_bn}} : f32[2,2]
    %mw_bias_bn = constant() {{name = @mw_bias_bn}} : f32[2]
    %1 = matmul(%x, %mw_bn) : f32[?n,2]
    %2 = add(%1, %mw_bias_bn) : f32[?n,2]
    %gw_bn = constant() {{name = @gw_bn}} : f32[2,2]
    %gc_bn = constant() {{name = @gc_bn}} : f32[1,2]
    %3 = gemm(%x, %gw_bn, %gc_bn) {{alpha = 2.0, trans_b = true}} : f32[?n,2]
    return %0, %2, %3
  }}
}}
""")


NOT_FOLDED = {
    # the conv result is also returned; the mean is an argument
    "conv": f"""\
module @m {{
  const @w : f32[2,1,1,1] = dense<[1.5, -2.0]>
{BN_PARAMS}  func @main(%x: f32[2,1,3,3], %m: f32[2]) -> (f32[2,2,3,3], f32[2,2,3,3], f32[2,2,3,3]) {{
    %w = constant() {{name = @w}} : f32[2,1,1,1]
{BN_OPS}    %0 = conv(%x, %w) : f32[2,2,3,3]
    %1 = batch_norm(%0, %scale, %bias, %mean, %var) : f32[2,2,3,3]
    %2 = conv(%x, %w) : f32[2,2,3,3]
    %3 = batch_norm(%2, %scale, %bias, %m, %var) : f32[2,2,3,3]
    return %0, %1, %3
  }}
}}
""",
    # a rank-3 linear result (its axis 1 is not the features); a relu in between; the weights
    # on matmul's left; a zero variance with epsilon 0 (s = inf)
    "features": f"""\
module @m {{
  const @lw : f32[2,2] = dense<[1.0, 2.0, 3.0, 4.0]>
  const @zero : f32[2] = dense<[0.0, 1.0]>
{BN_PARAMS}  func @main(%t: f32[2,2,2], %y: f32[2,2]) -> (f32[2,2,2], f32[2,2], f32[2,2], f32[2,2]) {{
    %lw = constant() {{name = @lw}} : f32[2,2]
    %zero = constant() {{name = @zero}} : f32[2]
{BN_OPS}    %0 = linear(%t, %lw) : f32[2,2,2]
    %1 = batch_norm(%0, %scale, %bias, %mean, %var) : f32[2,2,2]
    %2 = linear(%y, %lw) : f32[2,2]
    %3 = relu(%2) : f32[2,2]
    %4 = batch_norm(%3, %scale, %bias, %mean, %var) : f32[2,2]
    %5 = matmul(%lw, %y) : f32[2,2]
    %6 = batch_norm(%5, %scale, %bias, %mean, %var) : f32[2,2]
    %7 = matmul(%y, %lw) : f32[2,2]
    %8 = batch_norm(%7, %scale, %bias, %mean, %zero) {{epsilon = 0.0}} : f32[2,2]
    return %1, %4, %6, %8
  }}
}}
""",
}


@pytest.mark.parametrize("case", sorted(NOT_FOLDED))
def test_patterns_that_do_not_fold(case):
    m = ir.parse(NOT_FOLDED[case])
    assert not FoldBatchNorm().run(m)
    assert ir.print_module(m) == NOT_FOLDED[case]


def test_f16_weights_are_rounded_once_from_float64():
    rng = np.random.default_rng(7)
    m = Module("m")
    f = FunctionBuilder(m, "main")
    x = f.arg("x", tensor(["n", 3, 6], "f16"))
    w = f.constant(rng.standard_normal((4, 3, 3)).astype(np.float16), "w")
    params = [rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4),
              rng.uniform(0.5, 2.0, 4)]
    y = f.batch_norm(f.conv(x, w), *(f.constant(p.astype(np.float16)) for p in params),
                     epsilon=1e-3)
    f.ret(y)
    xs = rng.standard_normal((2, 3, 6)).astype(np.float16)
    (want,) = ir.interpret(m, xs)
    assert FoldBatchNorm().run(m)
    scale, bias, mean, var = (p.astype(np.float16).astype(np.float64) for p in params)
    s = scale / np.sqrt(var + float(np.float32(1e-3)))
    expect_w = (m.constants["w"].astype(np.float64) * s[:, None, None]).astype(np.float16)
    np.testing.assert_array_equal(m.constants["w_bn"], expect_w)
    np.testing.assert_array_equal(m.constants["w_bias_bn"],
                                  (bias - mean * s).astype(np.float16))
    (got,) = ir.interpret(m, xs)
    close(got, want, dt.f16)


# --- property tests -------------------------------------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@PROPERTY
@given(random_graphs())
def test_random_graphs(case):
    """Unchanged graphs keep their bits; folded ones match within rounding."""
    g, _ = case
    m = g.module
    want = ir.interpret(m, *g.inputs)
    changed = FoldBatchNorm().run(m)
    ir.verify(m)
    for got, w in zip(ir.interpret(m, *g.inputs), want):
        if changed and w.dtype.kind == "f":
            close(got, w, dt.dtype(w.dtype))
        else:
            assert got.dtype == w.dtype and got.tobytes() == w.tobytes()


FLOATS = [dt.f32, dt.f64, dt.f16, dt.bf16]


@st.composite
def contraction_with_batch_norm(draw):
    """conv (1-D or 2-D, groups, strides, pads, dilations, bias or not), linear, matmul or gemm
    (transposes, alpha, beta, c of every broadcastable shape) followed by batch_norm, with
    random constant weights and statistics, on an argument whose batch dim may be symbolic."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = draw(st.sampled_from(FLOATS))
    kind = draw(st.sampled_from(["conv", "linear", "matmul", "gemm"]))
    batch = draw(st.integers(1, 3))
    symbolic = draw(st.booleans())
    m = Module("bn")
    f = FunctionBuilder(m, "main")

    def const(shape, name):
        return f.constant(rng.standard_normal(shape).astype(d.np_dtype), name)

    def arg(shape):
        xshape = list(shape)
        t = tensor(["n"] + xshape[1:] if symbolic else xshape, d)
        return f.arg("x", t), rng.standard_normal(xshape).astype(d.np_dtype)

    if kind == "conv":
        groups, spatial = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
        k = draw(st.integers(1, 3))
        x, xs = arg([batch, cin] + [draw(st.integers(k + 1, 5))] * spatial)
        w = const([cout, cin // groups] + [k] * spatial, "w")
        bias = [const([cout], "b")] if draw(st.booleans()) else []
        y = f.conv(x, w, *bias, groups=groups, strides=[draw(st.integers(1, 2))] * spatial,
                   pads=[draw(st.integers(0, 1))] * 2 * spatial,
                   dilations=[draw(st.integers(1, 2))] * spatial if k < 3 else [])
        channels = cout
    else:
        kin, channels = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        x, xs = arg([batch, kin])
        if kind == "linear":
            bias = [const([channels], "b")] if draw(st.booleans()) else []
            y = f.linear(x, const([channels, kin], "w"), *bias)
        elif kind == "matmul":
            y = f.matmul(x, const([kin, channels], "w"))
        else:
            trans_b = draw(st.booleans())
            cshape = draw(st.sampled_from([None, [], [1], [channels], [1, channels]]
                                          + ([] if symbolic else [[batch, 1], [batch, channels]])))
            c = [] if cshape is None else [const(cshape, "c")]
            y = f.gemm(x, const([channels, kin] if trans_b else [kin, channels], "w"), *c,
                       trans_b=trans_b, alpha=draw(st.sampled_from([1.0, 0.5, -2.0])),
                       beta=draw(st.sampled_from([1.0, 0.0, 0.5])))
    stats = [rng.standard_normal(channels), rng.standard_normal(channels),
             rng.standard_normal(channels), rng.uniform(0.2, 3.0, channels)]
    out = f.batch_norm(y, *(f.constant(s.astype(d.np_dtype)) for s in stats),
                       epsilon=draw(st.sampled_from([1e-5, 1e-3, 0.1])))
    f.ret(out)
    return m, xs, d


@PROPERTY
@given(contraction_with_batch_norm())
def test_random_contractions_fold_and_match_within_rounding(case):
    m, xs, d = case
    ir.verify(m)
    (want,) = ir.interpret(m, xs)
    assert FoldBatchNorm().run(m)
    ir.verify(m)
    assert "batch_norm" not in {op.name for op in m.main.ops}
    (got,) = ir.interpret(m, xs)
    close(got, want, d)
