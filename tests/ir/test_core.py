"""Types, the builder, the registry's rules for declarations, the interpreter's input checks, and
the verifier on modules built in Python."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import ir
from compiler.ir import BuildError, FunctionBuilder, Module, TensorType, TypeInferenceError, tensor
from compiler.ir import dtypes as dt
from compiler.ir.core import clean_name
from compiler.ir.registry import REGISTRY, TRAITS, attr, def_op
from compiler.ir.types import SymProduct, broadcast_shapes, normalize_axis


# --- types ------------------------------------------------------------------------------------------

def test_tensor_type_basics():
    t = tensor(["b", 3], "f32")
    assert str(t) == "f32[?b,3]" and t.rank == 2 and not t.is_static and t.symbols == {"b"}
    assert tensor([2, 3], dt.i8).num_elements() == 6
    assert tensor([], "bool").rank == 0 and str(tensor([], "bool")) == "bool[]"
    assert t.with_dtype("bf16").dtype is dt.bf16 and t.with_shape([1]).shape == (1,)
    with pytest.raises(ValueError, match="negative dim"):
        tensor([-1], "f32")
    with pytest.raises(ValueError, match="bad symbolic dim name"):
        tensor(["1x"], "f32")
    with pytest.raises(ValueError, match="unknown dtype 'f8'"):
        tensor([1], "f8")


def test_dtype_lookup():
    assert dt.dtype(np.float32) is dt.f32 and dt.dtype("bf16") is dt.bf16
    assert dt.dtype(dt.bf16.np_dtype) is dt.bf16
    assert [d.name for d in dt.ALL_DTYPES] == ["bool", "i8", "u8", "i16", "i32", "i64", "f16",
                                               "bf16", "f32", "f64"]
    with pytest.raises(ValueError):
        dt.dtype(np.complex64)


@pytest.mark.parametrize("shapes, want", [
    (((2, 1), (3,)), (2, 3)),
    (((), (4, 5)), (4, 5)),
    ((("b", 1), (1, 7)), ("b", 7)),
    ((("b", 4), ("b", 1)), ("b", 4)),
    ((("b",), (5,)), (5,)),
    (((1,), ("n",)), ("n",)),
])
def test_broadcast_shapes(shapes, want):
    assert broadcast_shapes(*shapes) == want


def test_broadcast_rejects_mismatch():
    with pytest.raises(TypeInferenceError, match=r"shapes \[2\] and \[3\] do not broadcast"):
        broadcast_shapes((2,), (3,))
    with pytest.raises(TypeInferenceError, match=r"\[\?a\] and \[\?b\]"):
        broadcast_shapes(("a",), ("b",))


def test_normalize_axis():
    assert normalize_axis(-1, 3) == 2 and normalize_axis(0, 0) == 0 and normalize_axis(-1, 0) == 0
    with pytest.raises(TypeInferenceError, match="axis 3 is out of range for rank 3"):
        normalize_axis(3, 3)
    with pytest.raises(TypeInferenceError):
        normalize_axis(-4, 3)


def test_sym_product():
    p = SymProduct(["b", 12, 64])
    q = p.divide(SymProduct(["b", 12]))
    assert q is not None and q.as_dim() == 64
    assert SymProduct(["b", 768]).divide(SymProduct([768])).as_dim() == "b"
    assert SymProduct([6]).divide(SymProduct([4])) is None
    assert SymProduct(["a"]).divide(SymProduct(["b"])) is None
    assert str(SymProduct(["b", 2, "a"])) == "2*?a*?b"


def test_clean_name():
    assert clean_name("x") == "x" and clean_name("/layer.0/Add:0") == "layer.0_Add_0"
    assert clean_name("") is None and clean_name("///") is None


# --- builder ----------------------------------------------------------------------------------------

def test_builder_builds_and_infers():
    m = Module("b")
    f = FunctionBuilder(m)
    x = f.arg("x", tensor(["n", 4], "f32"))
    c = f.constant(np.arange(4, dtype=np.float32), name="c")
    y = f.add(x, c)
    assert y.type == tensor(["n", 4], "f32") and y.owner.name == "add"
    f.ret(y)
    assert m.functions == [f.function] and m.main is f.function
    assert [op.name for op in m.main.ops] == ["constant", "add"]
    assert m.main.ops[1].operands == [x, c] and m.main.ops[1].results == [y]
    ir.verify(m)
    with pytest.raises(BuildError, match="already returned"):
        f.ret(y)


def test_builder_errors_name_the_op_and_types():
    m = Module("b")
    f = FunctionBuilder(m)
    x = f.arg("x", tensor([2], "f32"))
    i = f.arg("i", tensor([2], "i32"))
    with pytest.raises(BuildError, match=r"add\(f32\[2\], i32\[2\]\): add operands must share a dtype"):
        f.add(x, i)
    with pytest.raises(BuildError, match="not an IR Value"):
        f.add(x, np.ones(2, np.float32))
    with pytest.raises(BuildError, match="cast needs attribute 'to'"):
        f.cast(x)
    with pytest.raises(BuildError, match="exp has no attribute axis"):
        f.exp(x, axis=1)
    with pytest.raises(AttributeError, match="no attribute or op 'frobnicate'"):
        f.frobnicate(x)
    with pytest.raises(KeyError, match="unknown op 'frobnicate'"):
        f.op("frobnicate", x)


def test_constants_get_unique_names():
    m = Module("c")
    assert m.add_constant(np.zeros(2), "w") == "w"
    assert m.add_constant(np.zeros(2), "w") == "w_1"
    assert m.add_constant(np.zeros(2), None) == "cst"
    with pytest.raises(ValueError, match="unknown dtype"):
        m.add_constant(np.zeros(2, np.complex64), "z")


# --- registry -------------------------------------------------------------------------------------

def test_every_op_is_declared_completely():
    ops = ir.all_ops()
    assert len(ops) >= 100
    for name, od in ops.items():
        assert od.doc, f"{name} has no doc"
        assert "pure" in od.traits and od.traits <= TRAITS, name
        for key, spec in od.attrs.items():
            if not spec.required and spec.default is not None:
                # defaults must already be in canonical form, or printing would not omit them
                from compiler.ir.registry import coerce_attr
                assert coerce_attr(name, key, spec, spec.default) == spec.default, (name, key)


def test_def_op_rejects_bad_declarations():
    rule = lambda x: x  # noqa: E731
    with pytest.raises(ValueError, match="already registered"):
        def_op("add", ["a", "b"], rule, np.add)
    with pytest.raises(ValueError, match="unknown traits"):
        def_op("test_bad_trait", ["x"], rule, np.abs, traits=("pure", "shiny"))
    with pytest.raises(ValueError, match="optional operands must come last"):
        def_op("test_bad_optional", ["x?", "y"], rule, np.abs)
    with pytest.raises(ValueError, match="variadic operand"):
        def_op("test_bad_variadic", ["xs*", "y"], rule, np.abs)
    with pytest.raises(ValueError, match="unknown attribute kind"):
        attr("complex")
    assert not any(n.startswith("test_bad") for n in REGISTRY)


def test_operand_count_messages():
    with pytest.raises(TypeInferenceError, match=r"add takes 2 operands \(a, b\), got 1"):
        ir.get_op("add").infer([tensor([1], "f32")], {})


# --- interpreter ------------------------------------------------------------------------------------

def _sym_module() -> Module:
    m = Module("s")
    m.dim_bounds["n"] = (1, 8)
    f = FunctionBuilder(m)
    x = f.arg("x", tensor(["n", 3], "f32"))
    y = f.arg("y", tensor(["n", 1], "f32"))
    f.ret(f.mul(x, y))
    return m


def test_interpreter_binds_symbolic_dims():
    m = _sym_module()
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((5, 1)).astype(np.float32)
    (out,) = ir.interpret(m, x, y)
    np.testing.assert_array_equal(out, x * y)


@pytest.mark.parametrize("inputs, message", [
    ((np.zeros((5, 3), np.float64), np.zeros((5, 1), np.float32)),
     r"input 0 \(%x\): expected dtype f32 \(f32\[\?n,3\]\), got float64"),
    ((np.zeros((5, 4), np.float32), np.zeros((5, 1), np.float32)), r"input 0 \(%x\): dim 1 is 4, expected 3"),
    ((np.zeros((5,), np.float32), np.zeros((5, 1), np.float32)), r"input 0 \(%x\): expected rank 2"),
    ((np.zeros((5, 3), np.float32), np.zeros((6, 1), np.float32)),
     r"input 1 \(%y\): dim 0 \(\?n\) is 6, but \?n = 5 elsewhere"),
    ((np.zeros((9, 3), np.float32), np.zeros((9, 1), np.float32)), r"\?n = 9 is outside its bounds \[1, 8\]"),
    ((np.zeros((5, 3), np.float32),), r"@main takes 2 inputs"),
])
def test_interpreter_checks_inputs(inputs, message):
    with pytest.raises(ValueError, match=message):
        ir.interpret(_sym_module(), *inputs)


def test_interpreter_float64_mode():
    m = Module("f")
    f = FunctionBuilder(m)
    x = f.arg("x", tensor([16], "f32"))
    f.ret(f.exp(f.mul(x, f.constant(np.float32(3.0)))))
    xin = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    (lo,) = ir.interpret(m, xin)
    (hi,) = ir.interpret(m, xin, dtype=np.float64)
    assert lo.dtype == np.float32 and hi.dtype == np.float64
    np.testing.assert_allclose(hi, np.exp(xin.astype(np.float64) * 3.0), rtol=1e-14)
    np.testing.assert_allclose(lo, hi, rtol=1e-6)
    with pytest.raises(ValueError, match="must be a float type"):
        ir.interpret(m, xin, dtype=np.int32)


def test_interpreter_reports_failing_op_with_location():
    m = ir.parse("module @m {\n  func @main(%x: f32[2]) -> (f32[3]) {\n"
                 "    %0 = exp(%x) : f32[3]\n    return %0\n  }\n}\n")
    with pytest.raises(ir.InterpreterError, match=r"op 'exp' \(%0\) at line 3: result 0: dim 0 is 2, expected 3"):
        ir.interpret(m, np.ones(2, np.float32))


# --- verifier on built modules ----------------------------------------------------------------------

def test_verifier_locates_ops_of_built_modules_in_the_printed_text():
    m = Module("v")
    f = FunctionBuilder(m)
    x = f.arg("x", tensor([2], "f32"))
    y = f.exp(x)
    z = f.neg(y)
    f.ret(z)
    y.owner.results[0].type = TensorType((3,), dt.f32)  # break the exp op after the fact
    with pytest.raises(ir.VerificationError) as info:
        ir.verify(m)
    err = info.value
    assert err.line == 3 and "<printed module>:3: error: 'exp' result 0 is declared f32[3]" in str(err)
    assert ">" in str(err).splitlines()[3] and "exp(%x)" in str(err).splitlines()[3]


def test_verifier_catches_values_from_another_function():
    m = Module("v")
    f = FunctionBuilder(m, "a")
    xa = f.arg("x", tensor([2], "f32"))
    f.ret(f.exp(xa))
    g = FunctionBuilder(m, "b")
    g.arg("x", tensor([2], "f32"))
    g.ret(g.neg(xa))  # xa belongs to @a
    with pytest.raises(ir.VerificationError, match=r"operand 0 \(%x\) of 'neg' is not defined in this function"):
        ir.verify(m)
