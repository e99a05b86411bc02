"""rewrite-qdq: QDQ patterns to integer ops (IR text in, IR text out), weight recovery, property
tests on random graphs and random quantized layers, and ONNX Runtime's own QDQ models (a small
CNN and a 2-layer GPT-2) compared with ONNX Runtime's results."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import ir
from passes import parse_pipeline
from passes.rewrite_qdq import recover_quantized
from tests.ir.test_roundtrip_property import random_graphs
from tests.passes import qdq_models as qm

INTEGER_OPS = ("matmul_integer", "conv_integer", "requantize")
CONTRACTIONS = ("matmul", "gemm", "linear", "conv")


def rewrite(m: ir.Module, options: str = "") -> bool:
    p = parse_pipeline("rewrite-qdq" + options)
    return p.passes[0].run(m)


def check(before: str, after: str, inputs: list[np.ndarray], step: float = 0,
          options: str = "") -> ir.Module:
    """Run the pass on `before`, compare the text with `after`, verify, and compare the
    interpreter's outputs: bit for bit, or within one quantization `step`."""
    m = ir.parse(before)
    want = ir.interpret(m, *inputs)
    assert rewrite(m, options) == (before != after)
    assert ir.print_module(m) == after
    ir.verify(m)
    for w, got in zip(want, ir.interpret(m, *inputs)):
        assert w.dtype == got.dtype and w.shape == got.shape
        if step == 0:
            assert w.tobytes() == got.tobytes()
        else:
            assert np.abs(w.astype(np.float64) - got.astype(np.float64)).max() <= step
    return m


def _ints(dtype, shape, seed: int) -> np.ndarray:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


# --- IR text in, IR text out -------------------------------------------------------------------

MATMUL = """\
module @m {
  const @xs : f32[] = dense<[0.02]>
  const @xz : u8[] = dense<[128]>
  const @w : i8[3,2] = dense<[1, -2, 3, 4, -5, 6]>
  const @ws : f32[2] = dense<[0.5, 0.25]>
  const @ys : f32[] = dense<[0.1]>
  const @yz : i8[] = dense<[-3]>
  func @main(%x: u8[4,3]) -> (i8[4,2]) {
    %xs = constant() {name = @xs} : f32[]
    %xz = constant() {name = @xz} : u8[]
    %w = constant() {name = @w} : i8[3,2]
    %ws = constant() {name = @ws} : f32[2]
    %ys = constant() {name = @ys} : f32[]
    %yz = constant() {name = @yz} : i8[]
    %a = dequantize(%x, %xs, %xz) : f32[4,3]
    %b = dequantize(%w, %ws) : f32[3,2]
    %y = matmul(%a, %b) : f32[4,2] loc("node_matmul")
    %q = quantize(%y, %ys, %yz) : i8[4,2]
    return %q
  }
}
"""

MATMUL_AFTER = """\
module @m {
  const @xz : u8[] = dense<[128]>
  const @w : i8[3,2] = dense<[1, -2, 3, 4, -5, 6]>
  const @yz : i8[] = dense<[-3]>
  const @q_multiplier : f32[2] = dense<[0.099999994, 0.049999997]>
  func @main(%x: u8[4,3]) -> (i8[4,2]) {
    %xz = constant() {name = @xz} : u8[]
    %w = constant() {name = @w} : i8[3,2]
    %yz = constant() {name = @yz} : i8[]
    %0 = matmul_integer(%x, %w, %xz) : i32[4,2] loc("node_matmul")
    %1 = constant() {name = @q_multiplier} : f32[2]
    %2 = requantize(%0, %1, %yz) : i8[4,2]
    return %2
  }
}
"""


def test_matmul_with_per_channel_weights_becomes_matmul_integer_and_requantize():
    # multiplier = 0.02 * [0.5, 0.25] / 0.1 in f32; the per-column scale runs along axis 1
    check(MATMUL, MATMUL_AFTER, [_ints(np.uint8, (4, 3), 0)], step=1)


# ONNX Runtime's Gemm as the importer leaves it: the int8 weight (rows [127, -64, 3] * 0.01 and
# [-127, 5, 100] * 0.02) and the int32 bias ([40, -7] * 0.05 * ws) are folded to f32 constants
GEMM = """\
module @m {
  const @xs : f32[] = dense<[0.05]>
  const @xz : i8[] = dense<[-10]>
  const @w : f32[2,3] = dense<[1.27, -0.64, 0.03, -2.54, 0.099999994, 2.0]>
  const @b : f32[2] = dense<[0.020000001, -0.007]>
  const @ys : f32[] = dense<[0.125]>
  const @yz : i8[] = dense<[5]>
  func @main(%x: f32[4,3]) -> (f32[4,2]) {
    %xs = constant() {name = @xs} : f32[]
    %xz = constant() {name = @xz} : i8[]
    %w = constant() {name = @w} : f32[2,3]
    %b = constant() {name = @b} : f32[2]
    %ys = constant() {name = @ys} : f32[]
    %yz = constant() {name = @yz} : i8[]
    %xq = quantize(%x, %xs, %xz) : i8[4,3]
    %xd = dequantize(%xq, %xs, %xz) : f32[4,3]
    %y = gemm(%xd, %w, %b) {trans_b = true} : f32[4,2]
    %yq = quantize(%y, %ys, %yz) : i8[4,2]
    %yd = dequantize(%yq, %ys, %yz) : f32[4,2]
    return %yd
  }
}
"""

GEMM_AFTER = """\
module @m {
  const @xs : f32[] = dense<[0.05]>
  const @xz : i8[] = dense<[-10]>
  const @ys : f32[] = dense<[0.125]>
  const @yz : i8[] = dense<[5]>
  const @y_w_q : i8[3,2] = dense<[127, -127, -64, 5, 3, 100]>
  const @y_bias_i32 : i32[2] = dense<[40, -7]>
  const @yq_multiplier : f32[2] = dense<[0.004, 0.008]>
  func @main(%x: f32[4,3]) -> (f32[4,2]) {
    %xs = constant() {name = @xs} : f32[]
    %xz = constant() {name = @xz} : i8[]
    %ys = constant() {name = @ys} : f32[]
    %yz = constant() {name = @yz} : i8[]
    %xq = quantize(%x, %xs, %xz) : i8[4,3]
    %0 = constant() {name = @y_w_q} : i8[3,2]
    %1 = matmul_integer(%xq, %0, %xz) : i32[4,2]
    %2 = constant() {name = @y_bias_i32} : i32[2]
    %3 = add(%1, %2) : i32[4,2]
    %4 = constant() {name = @yq_multiplier} : f32[2]
    %5 = requantize(%3, %4, %yz) : i8[4,2]
    %yd = dequantize(%5, %ys, %yz) : f32[4,2]
    return %yd
  }
}
"""


def test_gemm_with_folded_float_weights_and_bias():
    """Weights come back as int8 (transposed for matmul_integer), the bias as int32 in the
    accumulator; the float output may move by one output step (0.125)."""
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    check(GEMM, GEMM_AFTER, [x], step=0.125)
    assert not rewrite(ir.parse(GEMM), "{recover-weights=false}")  # float weights stay float


CONV = """\
module @m {
  const @xs : f32[] = dense<[0.04]>
  const @xz : u8[] = dense<[100]>
  const @w : i8[2,1,2,2] = dense<[1, -2, 3, 4, -5, 6, 7, -8]>
  const @ws : f32[2] = dense<[0.5, 0.25]>
  const @b : i32[2] = dense<[300, -41]>
  const @bs : f32[2] = dense<[0.02, 0.01]>
  const @ys : f32[] = dense<[0.1]>
  const @yz : u8[] = dense<[0]>
  func @main(%x: u8[1,1,5,5]) -> (u8[1,2,2,2]) {
    %xs = constant() {name = @xs} : f32[]
    %xz = constant() {name = @xz} : u8[]
    %w = constant() {name = @w} : i8[2,1,2,2]
    %ws = constant() {name = @ws} : f32[2]
    %b = constant() {name = @b} : i32[2]
    %bs = constant() {name = @bs} : f32[2]
    %ys = constant() {name = @ys} : f32[]
    %yz = constant() {name = @yz} : u8[]
    %xd = dequantize(%x, %xs, %xz) : f32[1,1,5,5]
    %wd = dequantize(%w, %ws) {axis = 0} : f32[2,1,2,2]
    %bd = dequantize(%b, %bs) {axis = 0} : f32[2]
    %c = conv(%xd, %wd, %bd) {pads = [1, 1, 1, 1]} : f32[1,2,6,6] loc("node_conv")
    %cq = quantize(%c, %ys, %yz) : u8[1,2,6,6]
    %cd = dequantize(%cq, %ys, %yz) : f32[1,2,6,6]
    %p = max_pool(%cd) {kernel = [3, 3], strides = [3, 3]} : f32[1,2,2,2] loc("node_pool")
    %pq = quantize(%p, %ys, %yz) : u8[1,2,2,2]
    return %pq
  }
}
"""

CONV_AFTER = """\
module @m {
  const @xz : u8[] = dense<[100]>
  const @w : i8[2,1,2,2] = dense<[1, -2, 3, 4, -5, 6, 7, -8]>
  const @yz : u8[] = dense<[0]>
  const @c_bias_i32 : i32[2,1,1] = dense<[300, -41]>
  const @cq_multiplier : f32[2] = dense<[0.19999999, 0.099999994]>
  func @main(%x: u8[1,1,5,5]) -> (u8[1,2,2,2]) {
    %xz = constant() {name = @xz} : u8[]
    %w = constant() {name = @w} : i8[2,1,2,2]
    %yz = constant() {name = @yz} : u8[]
    %0 = conv_integer(%x, %w, %xz) {pads = [1, 1, 1, 1]} : i32[1,2,6,6] loc("node_conv")
    %1 = constant() {name = @c_bias_i32} : i32[2,1,1]
    %2 = add(%0, %1) : i32[1,2,6,6]
    %3 = constant() {name = @cq_multiplier} : f32[2]
    %4 = requantize(%2, %3, %yz) : u8[1,2,6,6]
    %5 = max_pool(%4) {kernel = [3, 3], strides = [3, 3]} : u8[1,2,2,2] loc("node_pool")
    return %5
  }
}
"""


def test_conv_with_int32_bias_then_max_pool_on_integers():
    """The dequantized int32 bias (scale = x_scale * w_scale) joins the accumulator; max_pool
    between Q/DQ pairs of one scale runs on u8 and the pairs fold."""
    check(CONV, CONV_AFTER, [_ints(np.uint8, (1, 1, 5, 5), 2)], step=1)


MOVEMENT = """\
module @m {
  const @s : f32[] = dense<[0.5]>
  const @z : i8[] = dense<[3]>
  const @s2 : f32[] = dense<[0.25]>
  func @main(%x: i8[2,6]) -> (i8[3,4], i8[2,6], i8[2,6]) {
    %s = constant() {name = @s} : f32[]
    %z = constant() {name = @z} : i8[]
    %s2 = constant() {name = @s2} : f32[]
    %d = dequantize(%x, %s, %z) : f32[2,6]
    %r = reshape(%d) {shape = [3, 4]} : f32[3,4]
    %rq = quantize(%r, %s, %z) : i8[3,4]
    %e = dequantize(%x, %s, %z) : f32[2,6]
    %t = relu(%e) : f32[2,6]
    %tq = quantize(%t, %s, %z) : i8[2,6]
    %k = quantize(%d, %s2, %z) : i8[2,6]
    return %rq, %tq, %k
  }
}
"""

MOVEMENT_AFTER = """\
module @m {
  const @s : f32[] = dense<[0.5]>
  const @z : i8[] = dense<[3]>
  const @s2 : f32[] = dense<[0.25]>
  func @main(%x: i8[2,6]) -> (i8[3,4], i8[2,6], i8[2,6]) {
    %s = constant() {name = @s} : f32[]
    %z = constant() {name = @z} : i8[]
    %s2 = constant() {name = @s2} : f32[]
    %d = dequantize(%x, %s, %z) : f32[2,6]
    %0 = reshape(%x) {shape = [3, 4]} : i8[3,4]
    %1 = max(%x, %z) : i8[2,6]
    %k = quantize(%d, %s2, %z) : i8[2,6]
    return %0, %1, %k
  }
}
"""


def test_pairs_fold_through_data_movement_and_relu_exactly():
    """reshape (whose result only feeds a quantize) and relu (as max(q, z), its dequantize
    having no other user) move onto the integers; a pair with another scale stays."""
    m = check(MOVEMENT, MOVEMENT_AFTER, [_ints(np.int8, (2, 6), 3)], options="{exact-only=true}")
    assert not rewrite(m)  # a fixpoint


STAYS_FLOAT_HEAD = """\
module @m {
  const @xs : f32[] = dense<[0.02]>
  const @w : i8[3,2] = dense<[1, -2, 3, 4, -5, 6]>
  const @ws : f32[2] = dense<[0.5, 0.25]>
  const @rs : f32[3] = dense<[0.5, 0.25, 0.125]>
  const @hs : f16[] = dense<[0.5]>
"""

STAYS_FLOAT_BODY = """\
    %xs = constant() {name = @xs} : f32[]
    %w = constant() {name = @w} : i8[3,2]
    %ws = constant() {name = @ws} : f32[2]
    %rs = constant() {name = @rs} : f32[3]
    %hs = constant() {name = @hs} : f16[]
    %a = dequantize(%x, %xs) : f32[4,3]
    %b = dequantize(%w, %ws) : f32[3,2]
"""

STAYS_FLOAT = {  # arguments besides %x: i8[4,3], result type, body
    "scale is an argument": ("%s: f32[]", "f32[4,2]", """\
    %an = dequantize(%x, %s) : f32[4,3]
    %0 = matmul(%an, %b) : f32[4,2]
"""),
    "op in between": ("", "f32[4,2]", """\
    %e = exp(%a) : f32[4,3]
    %0 = matmul(%e, %b) : f32[4,2]
"""),
    "gemm alpha": ("", "f32[4,2]", """\
    %0 = gemm(%a, %b) {alpha = 2.0} : f32[4,2]
"""),
    "f16 scales": ("%h: i8[3,2]", "f16[4,2]", """\
    %ah = dequantize(%x, %hs) : f16[4,3]
    %bh = dequantize(%h, %hs) : f16[3,2]
    %0 = matmul(%ah, %bh) : f16[4,2]
"""),
    "i32 overflow": ("%u: u8[4,40000], %v: u8[40000,1]", "f32[4,1]", """\
    %ud = dequantize(%u, %xs) : f32[4,40000]
    %vd = dequantize(%v, %xs) : f32[40000,1]
    %0 = matmul(%ud, %vd) : f32[4,1]
"""),
    "scales along K": ("", "f32[4,2]", """\
    %rows = dequantize(%w, %rs) {axis = 0} : f32[3,2]
    %0 = matmul(%a, %rows) : f32[4,2]
"""),
}


@pytest.mark.parametrize("case", list(STAYS_FLOAT))
def test_patterns_that_cannot_be_integer_stay_float(case):
    """A scale that is an argument, an op between dequantize and matmul, gemm alpha 2, f16
    scales, an accumulator that could overflow i32 (40000 * 255 * 255 > 2**31 - 1), and scales
    per row of b (along K) are left as they are."""
    args, result, body = STAYS_FLOAT[case]
    text = (STAYS_FLOAT_HEAD + f"  func @main(%x: i8[4,3]{', ' + args if args else ''}) -> "
            f"({result}) {{\n" + STAYS_FLOAT_BODY + body + "    return %0\n  }\n}\n")
    m = ir.parse(text)
    assert ir.print_module(m) == text
    assert not rewrite(m)
    assert ir.print_module(m) == text


def test_a_lossy_round_trip_is_kept():
    """quantize(dequantize(q)) is folded only when it is the identity on every q: a scale of
    1e-45 (subnormal) loses values, so that pair stays."""
    text = MOVEMENT.replace("dense<[0.5]>", "dense<[1e-45]>")
    m = ir.parse(text)
    rewrite(m, "{exact-only=true}")
    assert "quantize(%r, %s, %z)" not in ir.print_module(m)  # the reshape moved...
    assert any(op.name == "quantize" and op.operands[0].owner.name == "dequantize"
               for op in m.main.ops)  # ...but the lossy pair stays


def test_embedding_table_is_quantized_ahead_of_the_gather():
    """quantize(gather(table)) == gather(quantize(table)) for per-tensor parameters: the
    quantized table is computed by the pass (by the quantize reference) and the gather moves i8."""
    text = """\
module @m {
  const @t : f32[4,2] = dense<[0.5, -1.0, 1.5, 2.0, -0.25, 0.0, 1.0, 3.0]>
  const @s : f32[] = dense<[0.25]>
  const @z : i8[] = dense<[1]>
  func @main(%i: i64[3]) -> (i8[3,2]) {
    %t = constant() {name = @t} : f32[4,2]
    %s = constant() {name = @s} : f32[]
    %z = constant() {name = @z} : i8[]
    %g = gather(%t, %i) : f32[3,2]
    %q = quantize(%g, %s, %z) : i8[3,2]
    return %q
  }
}
"""
    after = """\
module @m {
  const @t_q : i8[4,2] = dense<[3, -3, 7, 9, 0, 1, 5, 13]>
  func @main(%i: i64[3]) -> (i8[3,2]) {
    %0 = constant() {name = @t_q} : i8[4,2]
    %1 = gather(%0, %i) : i8[3,2]
    return %1
  }
}
"""
    check(text, after, [np.array([3, 0, 2], np.int64)])


# --- weight recovery ---------------------------------------------------------------------------


def test_recover_quantized_weights_exactly():
    rng = np.random.default_rng(4)
    q = rng.integers(-127, 128, (6, 50)).astype(np.int8)
    q[:, 0] = 127  # ONNX Runtime's symmetric weights reach +-127 in every channel
    s = rng.uniform(1e-3, 1e-1, 6).astype(np.float32)
    w = ir.get_op("dequantize").reference(q, s, axis=0)
    q2, s2, z2 = recover_quantized(w, 0)
    np.testing.assert_array_equal(ir.get_op("dequantize").reference(q2, s2, z2, axis=0), w)
    np.testing.assert_array_equal(q2, q)
    # asymmetric per tensor (zero point 6), as ONNX Runtime writes an embedding table
    qa = rng.integers(-128, 128, (30, 20)).astype(np.int8)
    wa = ir.get_op("dequantize").reference(qa, np.float32(0.003), np.int8(6), axis=1)
    q3, s3, z3 = recover_quantized(wa, None)
    np.testing.assert_array_equal(ir.get_op("dequantize").reference(q3, s3, z3, axis=1), wa)
    # float weights (not a grid of 256 values) and -0.0 (dequantize never writes it) are refused
    assert recover_quantized(rng.standard_normal((6, 50)).astype(np.float32), 0) is None
    assert recover_quantized(np.array([1.0, -0.0, 2.0], np.float32), None) is None


# --- properties --------------------------------------------------------------------------------

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _integer_ops(m: ir.Module) -> int:
    return sum(op.name in INTEGER_OPS for op in m.ops())


@SETTINGS
@given(random_graphs(), st.integers(0, 2**16))
def test_random_graphs_with_qdq_pairs_keep_their_values(case, seed):
    """Random graphs over the whole op set, with quantize/dequantize pairs inserted after every
    f32 value as a static quantizer would: the exact rules change nothing bit for bit. The full
    pass on the plain graph is bit-exact too unless it made a contraction integer (the
    generated contractions do not read dequantize, so it does not)."""
    g, _ = case
    m = g.module
    want = ir.interpret(m, *g.inputs)
    integer = _integer_ops(m)
    rewrite(m)
    ir.verify(m)
    if _integer_ops(m) == integer:
        assert all(_identical(a, b) for a, b in zip(want, ir.interpret(m, *g.inputs)))
    q = qm.insert_qdq(m, g.inputs, seed)
    ir.verify(q)
    full = ir.parse(ir.print_module(q, inline_limit=None))
    want = ir.interpret(q, *g.inputs)
    rewrite(q, "{exact-only=true}")
    ir.verify(q)
    assert all(_identical(a, b) for a, b in zip(want, ir.interpret(q, *g.inputs)))
    # all rules: a contraction made integer moves its output by up to one step, and what the
    # random ops after it make of that is unbounded, so this checks types and shapes only
    rewrite(full)
    ir.verify(full)
    for a, b in zip(want, ir.interpret(full, *g.inputs)):
        assert a.dtype == b.dtype and a.shape == b.shape


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.sampled_from(qm.KINDS),
       st.sampled_from(["dq", "float", "q"]), st.sampled_from(["none", "exact", "dq", "float"]),
       st.booleans())
def test_random_quantized_layers_become_integer_within_one_step(seed, kind, weights, bias, q_out):
    """Every generated QDQ layer (matmul, batched matmul, activation x activation, gemm with
    transposes, linear, grouped/strided conv 1-D/2-D; per-tensor or per-channel weights with
    zero points, as int8 constants, folded floats or quantize(float); int32, folded, or float
    biases) becomes integer. A quantized output moves by at most one step: the integer sum is
    exact and the float one is off by at most K * 2**-24 of the sum of |terms|, far below a
    step, so only values within that of a rounding boundary round the other way. A float output
    stays within that float error (plus half an accumulator step for a float bias)."""
    m, inputs, bound = qm.qdq_layer(seed, kind, weights, bias, q_out)
    (want,) = ir.interpret(m, *inputs)
    assert rewrite(m)
    ir.verify(m)
    assert not any(op.name in CONTRACTIONS for op in m.ops())
    assert sum(op.name in ("matmul_integer", "conv_integer") for op in m.ops()) == 1
    # a float bias (not a multiple of the accumulator's scale) is added in float
    float_bias = bias == "float" and kind in qm.WITH_BIAS
    assert any(op.name == "requantize" for op in m.ops()) == (q_out and not float_bias)
    (got,) = ir.interpret(m, *inputs)
    if q_out:
        assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max() <= 1
    else:
        assert np.abs(got - want).max() <= bound


# --- ONNX Runtime's QDQ models -------------------------------------------------------------------


@pytest.fixture(scope="module", params=["cnn", "gpt2"])
def qdq_model(request, tmp_path_factory):
    for module in ("onnxruntime", "torch", "onnxscript"):
        pytest.importorskip(module)
    if request.param == "gpt2":
        pytest.importorskip("transformers")
    d = tmp_path_factory.mktemp(request.param)
    src, dst = str(d / "float.onnx"), str(d / "qdq.onnx")
    qm.export(request.param, src)
    qm.quantize_qdq(src, dst)
    return request.param, dst


def test_onnx_runtime_qdq_models_run_on_integer_ops(qdq_model):
    """ONNX Runtime's quantize_static (QDQ, per-channel) output, imported: every matmul/gemm/conv
    becomes integer, and the outputs match ONNX Runtime's within one output step on >= 99% of
    the elements (the figures are printed: `pytest -s`)."""
    from frontends import from_onnx
    name, path = qdq_model
    m = from_onnx(path)
    before = qm.count_ops(m)
    contractions = sum(before.get(k, 0) for k in CONTRACTIONS)
    assert len(qm.dequantize_feeding_contractions(m)) == contractions > 0
    assert rewrite(m)
    ir.verify(m)
    after = qm.count_ops(m)
    assert qm.dequantize_feeding_contractions(m) == []
    assert sum(after.get(k, 0) for k in CONTRACTIONS) == 0
    integer = after.get("matmul_integer", 0) + after.get("conv_integer", 0)
    assert integer == contractions
    assert after.get("requantize", 0) == contractions  # every output is quantized in QDQ
    scale = qm.output_scale(path)
    diffs = []
    for seed in range(5):
        feeds = qm.random_feed(path, seed)
        (ours,) = ir.interpret(m, *feeds.values())
        (ref,) = qm.ort_run(path, feeds)
        diffs.append(np.abs(ours - ref).reshape(-1))
    diff = np.concatenate(diffs)
    fraction = float(np.mean(diff <= scale * (1 + 1e-6)))
    print(f"\n{name}: {contractions} contractions -> {integer} integer ops; "
          f"{sum(before.values())} ops -> {sum(after.values())}; quantize "
          f"{before.get('quantize', 0)} -> {after.get('quantize', 0)}, dequantize "
          f"{before.get('dequantize', 0)} -> {after.get('dequantize', 0)}; within one step of "
          f"ONNX Runtime: {fraction:.4%} ({np.mean(diff == 0):.4%} equal, max "
          f"{diff.max() / scale:.2f} steps, {diff.size} elements)")
    assert fraction >= 0.99
