"""simplify: IR text in, IR text out per rule family (with the near misses that must stay), and
bit-identical interpreter results on random graphs and on random chains of the patterns."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import ir
from compiler.ir import BuildError, Function, FunctionBuilder, Module, Value, tensor
from compiler.ir import dtypes as dt
from passes.simplify import Simplify, cast_is_exact
from tests.ir.test_roundtrip_property import random_graphs
from tests.passes.util import identical

SPECIALS = np.array([-0.0, -0.0, 0.0, np.inf, -np.inf, np.nan])  # signed zeros are the subtle case


def random_array(rng: np.random.Generator, shape: list[int], d: dt.DType) -> np.ndarray:
    """Random values of dtype d; floats mixed with -0.0, 0.0, +-inf and nan, integers over the
    dtype's whole range, so that a rule that is not exact shows up in the bits."""
    if d.is_float:
        x = rng.standard_normal(shape)
        special = rng.random(shape) < 0.4
        x = np.where(special, SPECIALS[rng.integers(0, len(SPECIALS), shape)], x)
        return np.asarray(x).astype(d.np_dtype)
    if d.is_bool:
        return np.asarray(rng.random(shape) < 0.5)
    lo, hi = d.int_range()
    return rng.integers(lo, hi, shape, endpoint=True, dtype=np.int64 if lo < 0 else np.uint64
                        ).astype(d.np_dtype)


def random_inputs(fn: Function, rng: np.random.Generator) -> list[np.ndarray]:
    """random_array for each of fn's arguments (each symbolic dim gets one random size)."""
    sizes: dict[str, int] = {}
    shapes = [[d if isinstance(d, int) else sizes.setdefault(d, int(rng.integers(1, 5)))
               for d in a.type.shape] for a in fn.args]
    return [random_array(rng, shape, a.dtype) for shape, a in zip(shapes, fn.args)]




def check_simplify(before: str, after: str) -> ir.Module:
    """simplify turns `before` into `after` (printed), which verifies and computes the same bits
    on fresh random inputs; a second run changes nothing."""
    m = ir.parse(before)
    inputs = [random_inputs(m.main, np.random.default_rng(seed)) for seed in range(4)]
    want = [ir.interpret(m, *xs) for xs in inputs]
    assert Simplify().run(m)
    assert ir.print_module(m) == after
    ir.verify(m)
    for xs, w in zip(inputs, want):
        assert all(identical(g, e) for g, e in zip(ir.interpret(m, *xs), w))
    assert not Simplify().run(m)
    return m


def test_float_identities_only_where_exact():
    # x*1, 1*x, x+(-0.0), x-(+0.0), x/1 go; x+0.0 (turns -0.0 into 0.0), x-(-0.0), x-x (inf, nan)
    # and a multiply that broadcasts x stay
    check_simplify("""\
module @m {
  const @one : f32[] = dense<[1.0]>
  const @pz : f32[] = dense<[0.0]>
  const @nz : f32[] = dense<[-0.0]>
  const @ones : f32[2,3] = dense<[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]>
  func @main(%x: f32[3]) -> (f32[3], f32[3], f32[2,3]) {
    %one = constant() {name = @one} : f32[]
    %pz = constant() {name = @pz} : f32[]
    %nz = constant() {name = @nz} : f32[]
    %ones = constant() {name = @ones} : f32[2,3]
    %0 = mul(%x, %one) : f32[3]
    %1 = mul(%one, %0) : f32[3]
    %2 = add(%1, %nz) : f32[3]
    %3 = add(%nz, %2) : f32[3]
    %4 = add(%3, %pz) : f32[3]
    %5 = sub(%4, %pz) : f32[3]
    %6 = sub(%5, %nz) : f32[3]
    %7 = div(%6, %one) : f32[3]
    %8 = sub(%7, %7) : f32[3]
    %9 = neg(%8) : f32[3]
    %10 = neg(%9) : f32[3]
    %11 = mul(%x, %ones) : f32[2,3]
    return %10, %7, %11
  }
}
""", """\
module @m {
  const @one : f32[] = dense<[1.0]>
  const @pz : f32[] = dense<[0.0]>
  const @nz : f32[] = dense<[-0.0]>
  const @ones : f32[2,3] = dense<[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]>
  func @main(%x: f32[3]) -> (f32[3], f32[3], f32[2,3]) {
    %pz = constant() {name = @pz} : f32[]
    %nz = constant() {name = @nz} : f32[]
    %ones = constant() {name = @ones} : f32[2,3]
    %0 = add(%x, %pz) : f32[3]
    %1 = sub(%0, %nz) : f32[3]
    %2 = sub(%1, %1) : f32[3]
    %3 = mul(%x, %ones) : f32[2,3]
    return %2, %1, %3
  }
}
""")


def test_integer_identities():
    check_simplify("""\
module @m {
  const @zero : i32[] = dense<[0]>
  const @one : i32[1] = dense<[1]>
  func @main(%i: i32[?n,4]) -> (i32[?n,4], i32[?n,4]) {
    %zero = constant() {name = @zero} : i32[]
    %one = constant() {name = @one} : i32[1]
    %0 = add(%zero, %i) : i32[?n,4]
    %1 = sub(%0, %zero) : i32[?n,4]
    %2 = div(%1, %one) : i32[?n,4]
    %3 = mul(%2, %one) : i32[?n,4]
    %4 = neg(%3) : i32[?n,4]
    %5 = neg(%4) : i32[?n,4]
    %6 = sub(%5, %5) : i32[?n,4]
    return %5, %6
  }
}
""", """\
module @m {
  const @zero : i32[] = dense<[0]>
  const @one : i32[1] = dense<[1]>
  func @main(%i: i32[?n,4]) -> (i32[?n,4], i32[?n,4]) {
    %0 = full() {shape = [?n, 4], value = 0.0, dtype = i32} : i32[?n,4]
    return %i, %0
  }
}
""")


def test_reshape_transpose_and_no_op_movement():
    check_simplify("""\
module @m {
  func @main(%x: f32[?n,2,3]) -> (f32[?n,3,2], f32[?n,2,3], f32[2,?n,3], f32[?n,2,3], f32[?n,2,2]) {
    %0 = reshape(%x) {shape = [0, 6]} : f32[?n,6]
    %1 = reshape(%0) {shape = [0, 3, 2]} : f32[?n,3,2]
    %2 = unsqueeze(%x) {axes = [1]} : f32[?n,1,2,3]
    %3 = squeeze(%2) {axes = [1]} : f32[?n,2,3]
    %4 = reshape(%3) {shape = [0, 2, 3]} : f32[?n,2,3]
    %5 = transpose(%4) {perm = [0, 2, 1]} : f32[?n,3,2]
    %6 = transpose(%5) {perm = [2, 1, 0]} : f32[2,3,?n]
    %7 = transpose(%6) {perm = [2, 0, 1]} : f32[?n,2,3]
    %8 = identity(%7) : f32[?n,2,3]
    %9 = concat(%8) {axis = 1} : f32[?n,2,3]
    %10 = slice(%9) {starts = [0, 0], ends = [9223372036854775807, 3], axes = [0, -1]} : f32[?n,2,3]
    %11 = transpose(%10) {perm = [0, 1, 2]} : f32[?n,2,3]
    %12 = transpose(%11) {perm = [1, 0, 2]} : f32[2,?n,3]
    %13 = slice(%11) {starts = [-1], ends = [-9223372036854775807], steps = [-1]} : f32[?n,2,3]
    %14 = slice(%11) {starts = [1], ends = [3], axes = [2]} : f32[?n,2,2]
    return %1, %11, %12, %13, %14
  }
}
""", """\
module @m {
  func @main(%x: f32[?n,2,3]) -> (f32[?n,3,2], f32[?n,2,3], f32[2,?n,3], f32[?n,2,3], f32[?n,2,2]) {
    %0 = reshape(%x) {shape = [?n, 3, 2]} : f32[?n,3,2]
    %1 = transpose(%x) {perm = [1, 0, 2]} : f32[2,?n,3]
    %2 = slice(%x) {starts = [-1], ends = [-9223372036854775807], steps = [-1]} : f32[?n,2,3]
    %3 = slice(%x) {starts = [1], ends = [3], axes = [2]} : f32[?n,2,2]
    return %0, %x, %1, %2, %3
  }
}
""")


def test_cast_chains_fold_only_through_exact_casts():
    # i8 -> i32 -> i64, f16 -> f32 -> f64, bool -> i8 -> f32 and f16 -> f32 -> f16 fold; the rest
    # stay: f32 -> f16 rounds, f64 -> i32 is a float -> int conversion, i8 -> u8 wraps
    check_simplify("""\
module @m {
  func @main(%a: i8[4], %h: f16[4], %f: f32[4], %b: bool[4]) -> (i64[4], f64[4], f32[4], i32[4], f32[4], i32[4], f32[4], f16[4]) {
    %0 = cast(%a) {to = i32} : i32[4]
    %1 = cast(%0) {to = i64} : i64[4]
    %2 = cast(%h) {to = f32} : f32[4]
    %3 = cast(%2) {to = f64} : f64[4]
    %4 = cast(%f) {to = f16} : f16[4]
    %5 = cast(%4) {to = f32} : f32[4]
    %6 = cast(%f) {to = f64} : f64[4]
    %7 = cast(%6) {to = i32} : i32[4]
    %8 = cast(%f) {to = f32} : f32[4]
    %9 = cast(%a) {to = u8} : u8[4]
    %10 = cast(%9) {to = i32} : i32[4]
    %11 = cast(%b) {to = i8} : i8[4]
    %12 = cast(%11) {to = f32} : f32[4]
    %13 = cast(%2) {to = f16} : f16[4]
    return %1, %3, %5, %7, %8, %10, %12, %13
  }
}
""", """\
module @m {
  func @main(%a: i8[4], %h: f16[4], %f: f32[4], %b: bool[4]) -> (i64[4], f64[4], f32[4], i32[4], f32[4], i32[4], f32[4], f16[4]) {
    %0 = cast(%a) {to = i64} : i64[4]
    %1 = cast(%h) {to = f64} : f64[4]
    %2 = cast(%f) {to = f16} : f16[4]
    %3 = cast(%2) {to = f32} : f32[4]
    %4 = cast(%f) {to = f64} : f64[4]
    %5 = cast(%4) {to = i32} : i32[4]
    %6 = cast(%a) {to = u8} : u8[4]
    %7 = cast(%6) {to = i32} : i32[4]
    %8 = cast(%b) {to = f32} : f32[4]
    return %0, %1, %3, %5, %f, %7, %8, %h
  }
}
""")


def test_exact_casts():
    assert cast_is_exact(dt.i8, dt.i16) and cast_is_exact(dt.u8, dt.i16)
    assert cast_is_exact(dt.i8, dt.f16) and cast_is_exact(dt.u8, dt.bf16)
    assert cast_is_exact(dt.i16, dt.f32) and cast_is_exact(dt.i32, dt.f64)
    assert cast_is_exact(dt.bool_, dt.i8) and cast_is_exact(dt.bf16, dt.f32)
    assert not cast_is_exact(dt.i16, dt.f16) and not cast_is_exact(dt.i32, dt.f32)
    assert not cast_is_exact(dt.i8, dt.u16) and not cast_is_exact(dt.u8, dt.i8)
    assert not cast_is_exact(dt.f16, dt.bf16) and not cast_is_exact(dt.f32, dt.f16)
    assert not cast_is_exact(dt.i64, dt.f64) and not cast_is_exact(dt.f8e4m3fn, dt.f32)


def test_broadcasts_that_the_consumer_does_anyway_go():
    # broadcast_to(c) feeding mul/where that broadcast anyway is dropped; where dropping it would
    # shrink the result (add to a [2,3]) or the consumer does not broadcast (exp) it stays
    check_simplify("""\
module @m {
  const @c : f32[] = dense<[2.5]>
  func @main(%x: f32[?n,3], %m: bool[?n,3]) -> (f32[?n,3], f32[?n,3], f32[2,3], f32[?n,3], f32[?n,3]) {
    %c = constant() {name = @c} : f32[]
    %0 = broadcast_to(%c) {shape = [?n, 3]} : f32[?n,3]
    %1 = mul(%x, %0) : f32[?n,3]
    %2 = where(%m, %0, %x) : f32[?n,3]
    %3 = broadcast_to(%c) {shape = [2, 3]} : f32[2,3]
    %4 = add(%3, %c) : f32[2,3]
    %5 = broadcast_to(%x) {shape = [1, 3]} : f32[?n,3]
    %6 = exp(%0) : f32[?n,3]
    return %1, %2, %4, %5, %6
  }
}
""", """\
module @m {
  const @c : f32[] = dense<[2.5]>
  func @main(%x: f32[?n,3], %m: bool[?n,3]) -> (f32[?n,3], f32[?n,3], f32[2,3], f32[?n,3], f32[?n,3]) {
    %c = constant() {name = @c} : f32[]
    %0 = broadcast_to(%c) {shape = [?n, 3]} : f32[?n,3]
    %1 = mul(%x, %c) : f32[?n,3]
    %2 = where(%m, %c, %x) : f32[?n,3]
    %3 = broadcast_to(%c) {shape = [2, 3]} : f32[2,3]
    %4 = add(%3, %c) : f32[2,3]
    %5 = exp(%0) : f32[?n,3]
    return %1, %2, %4, %x, %5
  }
}
""")


def test_nothing_to_do_is_no_change():
    text = """\
module @m {
  func @main(%x: f32[2,2]) -> (f32[2,2]) {
    %0 = transpose(%x) : f32[2,2]
    %1 = add(%0, %0) : f32[2,2]
    return %1
  }
}
"""
    m = ir.parse(text)
    assert not Simplify().run(m)
    assert ir.print_module(m) == text


PROPERTY = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@PROPERTY
@given(random_graphs())
def test_random_graphs_keep_their_bits(case):
    g, _ = case
    m = g.module
    want = ir.interpret(m, *g.inputs)
    Simplify().run(m)
    ir.verify(m)
    assert all(identical(a, b) for a, b in zip(ir.interpret(m, *g.inputs), want))
    assert not Simplify().run(m)


# --- random chains of the patterns simplify looks for, and their near misses ----------------------

DTYPES = [dt.f32, dt.f16, dt.bf16, dt.f64, dt.i8, dt.u8, dt.i32, dt.i64, dt.bool_]


def _const(f: FunctionBuilder, value: float, v: Value, shape: tuple) -> Value:
    return f.constant(np.full(shape, value).astype(v.dtype.np_dtype))


def _binary_with_constant(draw, f: FunctionBuilder, v: Value) -> Value:
    # the identities and their near misses (x + 0.0 is not x for x = -0.0; x - (-0.0) neither)
    name, value = draw(st.sampled_from([("mul", 1.0), ("add", 0.0), ("add", -0.0), ("sub", 0.0),
                                        ("sub", -0.0), ("div", 1.0), ("mul", 2.0), ("div", 2.0)]))
    shape = draw(st.sampled_from([(), (1,) * v.type.rank, tuple(v.shape), (2,) + tuple(v.shape)]))
    c = _const(f, value, v, shape)
    return f.op(name, *((v, c) if draw(st.booleans()) else (c, v)))


def _reshape_like(draw, f: FunctionBuilder, v: Value) -> Value:
    kind = draw(st.sampled_from(["reshape", "unsqueeze", "squeeze", "flatten"]))
    if kind == "reshape":
        return f.reshape(v, shape=draw(st.permutations(list(v.shape))) or [])
    if kind == "unsqueeze":
        return f.unsqueeze(v, axes=[draw(st.integers(0, v.type.rank))])
    if kind == "squeeze":
        return f.squeeze(v)
    return f.flatten(v, axis=draw(st.integers(0, v.type.rank)))


def _cast_twice(draw, f: FunctionBuilder, v: Value) -> Value:
    """A cast through a dtype (mostly one that holds v's values exactly), then to any dtype."""
    exact = [d for d in DTYPES if cast_is_exact(v.dtype, d)]
    mid = draw(st.sampled_from(exact if exact and draw(st.integers(0, 3)) else DTYPES))
    return f.cast(f.cast(v, to=mid), to=draw(st.sampled_from(DTYPES)))


def _slice(draw, f: FunctionBuilder, v: Value) -> Value:
    if v.type.rank == 0:
        raise BuildError("no axis to slice")  # (the slice type rule fails on rank 0)
    axis = draw(st.integers(0, v.type.rank - 1))
    start, end, step = draw(st.sampled_from([(0, 2**63 - 1, 1), (0, 1, 1), (0, 9, 2),
                                             (-1, -2**63, -1)]))
    return f.slice(v, starts=[start], ends=[end], axes=[axis], steps=[step])


def _broadcast_then(draw, f: FunctionBuilder, v: Value) -> Value:
    c = _const(f, draw(st.sampled_from([1.0, 3.0])), v, ())
    b = f.broadcast_to(c, shape=list(v.shape))
    name = draw(st.sampled_from(["add", "mul", "max", "eq"]))
    return f.op(name, *((v, b) if draw(st.booleans()) else (b, v)))


STEPS = [
    _binary_with_constant,
    _binary_with_constant,  # twice: an identity needs the right constant, side and shape
    lambda draw, f, v: f.sub(v, v),
    lambda draw, f, v: f.neg(v),
    _reshape_like,
    lambda draw, f, v: _reshape_like(draw, f, _reshape_like(draw, f, v)),
    lambda draw, f, v: f.transpose(v, perm=draw(st.permutations(range(v.type.rank)))),
    lambda draw, f, v: f.transpose(f.transpose(v, perm=draw(st.permutations(range(v.type.rank)))),
                                   perm=draw(st.permutations(range(v.type.rank)))),
    lambda draw, f, v: f.cast(v, to=draw(st.sampled_from(DTYPES))),
    _cast_twice,
    lambda draw, f, v: f.identity(v),
    _slice,
    lambda draw, f, v: f.concat(v, axis=0),
    _broadcast_then,
    lambda draw, f, v: f.broadcast_to(v, shape=list(v.shape)),
]


@st.composite
def pattern_chains(draw):
    """A graph on one argument returning every value it computes: up to 12 steps, each applied
    to the last value (mostly, so that chains form) or an earlier one; steps that do not
    type-check for that value are skipped."""
    rank = draw(st.integers(0, 3))
    shape = draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank))
    d = draw(st.sampled_from(DTYPES))
    m = Module("chain")
    f = FunctionBuilder(m, "main")
    values = [f.arg("x", tensor(shape, d))]
    for _ in range(draw(st.integers(1, 12))):
        v = values[-1] if draw(st.integers(0, 3)) else draw(st.sampled_from(values))
        try:
            values.append(draw(st.sampled_from(STEPS))(draw, f, v))
        except BuildError:
            continue
    f.ret(*values[1:] or values)  # every value is an output: a changed bit anywhere shows
    x = random_array(np.random.default_rng(draw(st.integers(0, 2**32 - 1))), shape, d)
    return m, x


@PROPERTY
@given(pattern_chains())
def test_random_pattern_chains_keep_their_bits(case):
    m, x = case
    ir.verify(m)
    want = ir.interpret(m, x)
    Simplify().run(m)
    ir.verify(m)
    got = ir.interpret(m, x)
    assert all(identical(a, b) for a, b in zip(got, want)), ir.print_module(m)
    assert not Simplify().run(m)


def test_contraction_between_reshapes_works_on_the_unflattened_operand():
    # what torch.export gives for a Linear (addmm) or Conv1D on [batch, seq, K] input
    before = """\
module @m {
  func @main(%x: f32[2,3,4], %w: f32[4,5], %b: f32[5], %v: f32[5,4]) -> (f32[2,3,5], f32[2,3,5]) {
    %0 = reshape(%x) {shape = [6, 4]} : f32[6,4]
    %1 = gemm(%0, %w, %b) : f32[6,5]
    %2 = reshape(%1) {shape = [2, 3, 5]} : f32[2,3,5]
    %3 = linear(%0, %v, %b) : f32[6,5]
    %4 = reshape(%3) {shape = [2, 3, 5]} : f32[2,3,5]
    return %2, %4
  }
}
"""
    m = ir.parse(before)
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(a.type.shape).astype(np.float32) for a in m.main.args]
    want = ir.interpret(m, *args)
    Simplify().run(m)
    text = ir.print_module(m)
    assert "gemm" not in text and "reshape" not in text, text
    assert "matmul(%x, %w)" in text and "linear(%x, %v, %b)" in text, text
    for g, w in zip(ir.interpret(m, *args), want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
