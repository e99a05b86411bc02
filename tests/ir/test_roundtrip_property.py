"""Property test: random well-typed graphs over the whole op set print, parse and print to identical
text, verify, and interpret to bit-identical values after the round trip.

Graphs are built from the per-op SAMPLES generators (tests/ir/samples): each op's operands are fresh
function arguments (sometimes with symbolic dims), module constants, or (for the first, float
operand) an earlier result, adapted to the operand's type, so ops chain into each other.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import ir
from compiler.ir import BuildError, FunctionBuilder, Module, TensorType
from compiler.ir import dtypes as dt
from tests.ir.samples import all_samples

SAMPLES = all_samples()
OPS = sorted(SAMPLES)


def test_samples_cover_every_op():
    from compiler.ir.ops.module_ops import MODULE_OPS
    missing = sorted(set(ir.all_ops()) - set(SAMPLES) - MODULE_OPS)
    assert not missing, f"ops without a sample generator: {missing}"


class _Graph:
    """A module under construction plus the input arrays for its arguments."""

    def __init__(self) -> None:
        self.module = Module("random")
        self.f = FunctionBuilder(self.module, "main")
        self.inputs: list[np.ndarray] = []
        self.pool: list[ir.Value] = []

    def operand(self, draw, arr: np.ndarray, index: int, symbolic: bool) -> ir.Value:
        t = TensorType(arr.shape, dt.dtype(arr.dtype))
        floats = [v for v in self.pool if v.dtype.is_float]
        if index == 0 and t.dtype.is_float and floats and draw(st.booleans()):
            return self.chain(draw(st.sampled_from(floats)), t)
        if draw(st.integers(0, 3)) == 0:
            return self.f.constant(arr)
        if symbolic and arr.ndim:
            # one symbol per size keeps the bindings consistent across arguments
            axis = draw(st.integers(0, arr.ndim - 1))
            shape = list(arr.shape)
            shape[axis] = f"d{shape[axis]}"
            t = t.with_shape(shape)
        self.inputs.append(arr)
        return self.f.arg(None, t)

    def chain(self, v: ir.Value, t: TensorType) -> ir.Value:
        """Feed an earlier result into an operand of type t: as it is when the types agree,
        else cast to t's dtype, averaged to a scalar and broadcast to t's shape."""
        if v.type == t:
            return v
        if v.dtype != t.dtype:
            v = self.f.cast(v, to=t.dtype)
        if v.shape != t.shape:
            v = self.f.broadcast_to(self.f.reduce_mean(v), shape=list(t.shape))
        return v

    def add_op(self, draw, name: str, arrays: list[np.ndarray], attrs: dict) -> None:
        for symbolic in (draw(st.booleans()), False):
            mark = (len(self.f.function.args), len(self.inputs), len(self.f.function.ops),
                    dict(self.module.constants))
            try:
                operands = [self.operand(draw, a, i, symbolic) for i, a in enumerate(arrays)]
                res = self.f.op(name, *operands, **attrs)
            except BuildError:
                if not symbolic:
                    raise
                # some ops need static dims: roll back and build again with static arguments
                del self.f.function.args[mark[0]:], self.inputs[mark[1]:], self.f.function.ops[mark[2]:]
                self.module.constants = mark[3]
                continue
            self.pool.extend(res if isinstance(res, list) else [res])
            return


@st.composite
def random_graphs(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    names = draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=8))
    rng = np.random.default_rng(seed)
    g = _Graph()
    for name in names:
        arrays, attrs = SAMPLES[name](rng)
        g.add_op(draw, name, arrays, attrs)
    outs = draw(st.lists(st.sampled_from(g.pool), min_size=1, max_size=4))
    g.f.ret(*outs)
    return g, draw(st.sampled_from([None, 0, 4, 16]))


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@settings(max_examples=500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(random_graphs())
def test_print_parse_print_and_interpret_roundtrip(case):
    g, inline_limit = case
    m = g.module
    ir.verify(m)
    text = ir.print_module(m, inline_limit=inline_limit)
    external = {k: v for k, v in m.constants.items() if inline_limit is not None and v.size > inline_limit}
    m2 = ir.parse(text, weights=external)
    assert ir.print_module(m2, inline_limit=inline_limit) == text
    ir.verify(m2)
    before = ir.interpret(m, *g.inputs)
    after = ir.interpret(m2, *g.inputs)
    assert len(before) == len(after)
    for a, b in zip(before, after):
        assert _identical(a, b)


@pytest.mark.parametrize("name", OPS)
def test_each_op_roundtrips_alone(name):
    """Every op at least once, whatever hypothesis draws: one-op module, three seeds."""
    from tests.ir.opcheck import one_op_module
    for seed in range(3):
        arrays, attrs = SAMPLES[name](np.random.default_rng(seed))
        m = one_op_module(name, arrays, attrs, as_constants=(1,) if len(arrays) > 1 else ())
        text = ir.print_module(m, inline_limit=None)
        m2 = ir.parse(text)
        assert ir.print_module(m2, inline_limit=None) == text
        ir.verify(m2)
        args = [a for i, a in enumerate(arrays) if not (i == 1 and len(arrays) > 1)]
        for a, b in zip(ir.interpret(m, *args), ir.interpret(m2, *args)):
            assert _identical(a, b)
