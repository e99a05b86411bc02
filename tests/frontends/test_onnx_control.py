"""ONNX control flow (frontends/onnx/ops/control.py): If, Loop and Scan imported by inlining their
subgraphs, compared with onnx.reference.ReferenceEvaluator on fresh random inputs."""
from __future__ import annotations

from typing import Optional

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from compiler import ir
from frontends import OnnxImportError, from_onnx

RNG = np.random.default_rng(7)


def vi(name: str, dtype: int, shape: Optional[list]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def make_model(nodes, inputs, outputs, inits=None, opset: int = 17) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs,
                          [numpy_helper.from_array(np.asarray(a), n) for n, a in
                           (inits or {}).items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def check(m: onnx.ModelProto, feeds: dict[str, np.ndarray], module: Optional[ir.Module] = None,
          atol: float = 1e-6) -> ir.Module:
    """Import m (unless given), run it on feeds, compare every output with ONNX's reference."""
    module = module or from_onnx(m)
    got = ir.interpret(module, *feeds.values())
    want = ReferenceEvaluator(m).run(None, feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, (g.shape, w.shape)
        np.testing.assert_allclose(g, w, atol=atol, rtol=1e-6)
    return module


def ops_of(module: ir.Module) -> list[str]:
    return [op.name for op in module.main.ops]


def floats(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


# --- If ----------------------------------------------------------------------------------------


def branches(then_nodes, then_out, else_nodes, else_out, dtype=T.FLOAT, shape=None):
    then_g = helper.make_graph(then_nodes, "then", [], [vi(then_out, dtype, shape)])
    else_g = helper.make_graph(else_nodes, "else", [], [vi(else_out, dtype, shape)])
    return {"then_branch": then_g, "else_branch": else_g}


def test_if_with_a_known_condition_imports_only_the_taken_branch():
    br = branches([helper.make_node("Add", ["x", "x"], ["t"])], "t",
                  [helper.make_node("Mul", ["x", "x"], ["e"])], "e")
    for flag, op in ((True, "add"), (False, "mul")):
        m = make_model([helper.make_node("If", ["c"], ["y"], **br)], [vi("x", T.FLOAT, [3])],
                       [vi("y", T.FLOAT, [3])], inits={"c": np.array(flag)})
        module = check(m, {"x": floats(3)})
        assert op in ops_of(module) and "where" not in ops_of(module)
        assert {"add", "mul"} - {op} & set(ops_of(module)) == set()


def test_if_with_a_runtime_condition_selects_and_keeps_symbolic_dims():
    """Both branches read the outer-scope x ([?n, 4]); the outputs are selected with where."""
    br = branches([helper.make_node("Add", ["x", "x"], ["t"])], "t",
                  [helper.make_node("Neg", ["x"], ["e"])], "e", shape=["n", 4])
    m = make_model([helper.make_node("If", ["c"], ["y"], **br)],
                   [vi("c", T.BOOL, [1]), vi("x", T.FLOAT, ["n", 4])],
                   [vi("y", T.FLOAT, ["n", 4])])
    module = from_onnx(m)
    assert "func @main(%c: bool[1], %x: f32[?n,4]) -> (f32[?n,4])" in ir.print_module(module)
    assert "where" in ops_of(module)
    for n, flag in ((1, True), (3, False), (2, True)):
        check(m, {"c": np.array([flag]), "x": floats(n, 4)}, module)


def test_if_branches_of_different_types_need_a_known_condition():
    br = branches([helper.make_node("Constant", [], ["t"], value_floats=[1.0, 2.0])], "t",
                  [helper.make_node("Constant", [], ["e"], value_floats=[1.0, 2.0, 3.0])], "e")
    m = make_model([helper.make_node("If", ["c"], ["y"], name="branchy", **br)],
                   [vi("c", T.BOOL, [])], [vi("y", T.FLOAT, [None])])
    with pytest.raises(OnnxImportError, match=r"If node 'branchy'.*output 0 is f32\[2\] in "
                                              r"then_branch but f32\[3\] in else_branch"):
        from_onnx(m)


# --- Loop --------------------------------------------------------------------------------------


def loop_body(extra_nodes=(), cond_node=None):
    """Body (i, cond_in, acc[3]) -> (cond_out, acc + x * i, acc as a scan output)."""
    nodes = [helper.make_node("Cast", ["i"], ["fi"], to=T.FLOAT),
             helper.make_node("Mul", ["x", "fi"], ["xi"]),
             helper.make_node("Add", ["acc", "xi"], ["acc_out"]),
             helper.make_node("Identity", ["acc"], ["scan"])]
    nodes.append(cond_node or helper.make_node("Identity", ["cond_in"], ["cond_out"]))
    return helper.make_graph(list(extra_nodes) + nodes, "body",
                             [vi("i", T.INT64, []), vi("cond_in", T.BOOL, []),
                              vi("acc", T.FLOAT, [3])],
                             [vi("cond_out", T.BOOL, []), vi("acc_out", T.FLOAT, [3]),
                              vi("scan", T.FLOAT, [3])])


def test_loop_with_a_constant_trip_count_is_unrolled():
    node = helper.make_node("Loop", ["M", "cond", "acc0"], ["acc", "scans"], body=loop_body())
    m = make_model([node], [vi("x", T.FLOAT, [3]), vi("acc0", T.FLOAT, [3])],
                   [vi("acc", T.FLOAT, [3]), vi("scans", T.FLOAT, [4, 3])],
                   inits={"M": np.int64(4), "cond": np.array(True)})
    module = check(m, {"x": floats(3), "acc0": floats(3)})
    assert ops_of(module).count("add") == 4 and "where" not in ops_of(module)


def test_while_loop_whose_condition_is_computed_from_the_iteration_number():
    """No trip count: the body's condition (i < 2) is known at import time in every iteration."""
    body = loop_body([helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(
        np.int64(2)))], helper.make_node("Less", ["i", "two"], ["cond_out"]))
    node = helper.make_node("Loop", ["", "cond", "acc0"], ["acc", "scans"], body=body)
    m = make_model([node], [vi("x", T.FLOAT, [3]), vi("acc0", T.FLOAT, [3])],
                   [vi("acc", T.FLOAT, [3]), vi("scans", T.FLOAT, [3, 3])],
                   inits={"cond": np.array(True)})
    check(m, {"x": floats(3), "acc0": floats(3)})


def test_if_inside_a_loop_body_folds_on_the_iteration_number():
    """The body's If (i == 0) is decided per unrolled iteration, so no where is needed."""
    zero = numpy_helper.from_array(np.int64(0))
    br = branches([helper.make_node("Identity", ["x"], ["t"])], "t",
                  [helper.make_node("Mul", ["acc", "x"], ["e"])], "e", shape=[3])
    body = loop_body([helper.make_node("Constant", [], ["zero"], value=zero),
                      helper.make_node("Equal", ["i", "zero"], ["first"]),
                      helper.make_node("If", ["first"], ["picked"], **br)])
    body.output[2].name = "picked"
    node = helper.make_node("Loop", ["M", "cond", "acc0"], ["acc", "scans"], body=body)
    m = make_model([node], [vi("x", T.FLOAT, [3]), vi("acc0", T.FLOAT, [3])],
                   [vi("acc", T.FLOAT, [3]), vi("scans", T.FLOAT, [3, 3])],
                   inits={"M": np.int64(3), "cond": np.array(True)})
    module = check(m, {"x": floats(3), "acc0": floats(3)})
    assert "where" not in ops_of(module)


def test_loop_with_a_runtime_condition_masks_the_carried_values():
    """A known trip count bounds the unrolling; whether each iteration runs is a run-time
    value, kept with where. (No scan outputs: their length would be unknown.)"""
    body = loop_body([helper.make_node("ReduceSum", ["acc"], ["s"], keepdims=0)],
                     helper.make_node("Less", ["s", "limit"], ["cond_out"]))
    body.output.pop()  # drop the scan output
    node = helper.make_node("Loop", ["M", "cond", "acc0"], ["acc"], body=body)
    m = make_model([node], [vi("x", T.FLOAT, [3]), vi("acc0", T.FLOAT, [3]),
                            vi("cond", T.BOOL, [])], [vi("acc", T.FLOAT, [3])],
                   inits={"M": np.int64(6), "limit": np.float32(3.0)})
    module = from_onnx(m)
    assert "where" in ops_of(module)
    for flag in (True, False, True):
        x = np.abs(floats(3))
        check(m, {"x": x, "acc0": np.zeros(3, np.float32), "cond": np.array(flag)}, module)


def test_loop_with_a_runtime_trip_count_uses_the_declared_scan_length():
    node = helper.make_node("Loop", ["M", "cond", "acc0"], ["acc", "scans"], body=loop_body())
    m = make_model([node], [vi("M", T.INT64, []), vi("x", T.FLOAT, [3]),
                            vi("acc0", T.FLOAT, [3])],
                   [vi("acc", T.FLOAT, [3]), vi("scans", T.FLOAT, [5, 3])],
                   inits={"cond": np.array(True)})
    check(m, {"M": np.int64(5), "x": floats(3), "acc0": floats(3)})


def test_loop_that_never_runs_gives_empty_scan_outputs():
    node = helper.make_node("Loop", ["M", "cond", "acc0"], ["acc", "scans"], body=loop_body())
    m = make_model([node], [vi("x", T.FLOAT, [3]), vi("acc0", T.FLOAT, [3])],
                   [vi("acc", T.FLOAT, [3]), vi("scans", T.FLOAT, [0, 3])],
                   inits={"M": np.int64(3), "cond": np.array(False)})
    module = from_onnx(m)
    x, acc0 = floats(3), floats(3)
    acc, scans = ir.interpret(module, x, acc0)
    np.testing.assert_array_equal(acc, acc0)
    assert scans.shape == (0, 3) and scans.dtype == np.float32


def test_loop_with_an_unbounded_runtime_trip_count_is_an_error():
    body = loop_body()
    body.output.pop()
    node = helper.make_node("Loop", ["M", "", "acc0"], ["acc"], name="spin", body=body)
    m = make_model([node], [vi("M", T.INT64, []), vi("x", T.FLOAT, [3]),
                            vi("acc0", T.FLOAT, [3])], [vi("acc", T.FLOAT, [3])])
    with pytest.raises(OnnxImportError, match=r"Loop node 'spin'.*run-time values.*constant trip"):
        from_onnx(m)


# --- Scan --------------------------------------------------------------------------------------


def scan_body(state_shape, elem_shape):
    """(sum, elem) -> (sum + elem, sum * elem)"""
    return helper.make_graph(
        [helper.make_node("Add", ["s", "e"], ["s_out"]),
         helper.make_node("Mul", ["s", "e"], ["y"])], "body",
        [vi("s", T.FLOAT, state_shape), vi("e", T.FLOAT, elem_shape)],
        [vi("s_out", T.FLOAT, state_shape), vi("y", T.FLOAT, elem_shape)])


def test_scan_axes_and_directions_with_a_symbolic_dim():
    """Scan x[?b, 4, 3] along axis 1 backwards; per-step outputs stacked along axis 1, prepended."""
    node = helper.make_node("Scan", ["s0", "x"], ["s", "ys"], num_scan_inputs=1,
                            body=scan_body(["b", 3], ["b", 3]), scan_input_axes=[1],
                            scan_input_directions=[1], scan_output_axes=[-2],
                            scan_output_directions=[1])
    m = make_model([node], [vi("s0", T.FLOAT, ["b", 3]), vi("x", T.FLOAT, ["b", 4, 3])],
                   [vi("s", T.FLOAT, ["b", 3]), vi("ys", T.FLOAT, ["b", 4, 3])])
    module = from_onnx(m)
    assert "-> (f32[?b,3], f32[?b,4,3])" in ir.print_module(module)
    for b in (1, 2):  # numpy: ONNX's reference implements forward scans only
        s0, x = floats(b, 3), floats(b, 4, 3)
        s, ys = ir.interpret(module, s0, x)
        acc, steps = s0, []
        for t in range(4):
            e = x[:, 3 - t]
            steps.append(acc * e)
            acc = acc + e
        np.testing.assert_allclose(s, acc, rtol=1e-6)
        np.testing.assert_allclose(ys, np.stack(steps[::-1], axis=1), rtol=1e-6)


def test_scan8_with_a_batch_dim():
    node = helper.make_node("Scan", ["", "s0", "x"], ["s", "ys"], num_scan_inputs=1,
                            body=scan_body([2], [2]), directions=[1])
    m = make_model([node], [vi("s0", T.FLOAT, [3, 2]), vi("x", T.FLOAT, [3, 5, 2])],
                   [vi("s", T.FLOAT, [3, 2]), vi("ys", T.FLOAT, [3, 5, 2])], opset=8)
    feeds = {"s0": floats(3, 2), "x": floats(3, 5, 2)}
    s, ys = ir.interpret(from_onnx(m), *feeds.values())
    # numpy: each batch row scanned in reverse, outputs in scan order
    for b in range(3):
        acc = feeds["s0"][b].copy()
        for t in range(5):
            e = feeds["x"][b, 4 - t]
            np.testing.assert_allclose(ys[b, t], acc * e, rtol=1e-6)
            acc = acc + e
        np.testing.assert_allclose(s[b], acc, rtol=1e-6)


def test_scan_over_a_symbolic_length_is_an_error():
    node = helper.make_node("Scan", ["s0", "x"], ["s", "ys"], name="scanner", num_scan_inputs=1,
                            body=scan_body([3], [3]))
    m = make_model([node], [vi("s0", T.FLOAT, [3]), vi("x", T.FLOAT, ["t", 3])],
                   [vi("s", T.FLOAT, [3]), vi("ys", T.FLOAT, ["t", 3])])
    with pytest.raises(OnnxImportError, match=r"Scan node 'scanner'.*static sequence length"):
        from_onnx(m)
