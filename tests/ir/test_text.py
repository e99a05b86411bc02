"""The text form: printing, parsing, round trips, parse errors, save/load with safetensors."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import ir
from compiler.ir import FunctionBuilder, Location, Module, tensor
from compiler.ir import dtypes as dt

FULL = """\
module @everything {
  dim ?batch in [1, 64]
  dim ?seq in [1, inf]
  const @w : f32[2,2] = dense<[0.1, -2.5, 1e-07, 3.4028235e+38]>
  const @special : f32[4] = dense<[nan, inf, -inf, -0.0]>
  const @h : f16[2] = dense<[0.0999755859375, 65504.0]>
  const @b : bf16[2] = dense<[1.0078125, -3.0]>
  const @d : f64[1] = dense<[0.1]>
  const @i : i64[3] = dense<[-9223372036854775808, 0, 9223372036854775807]>
  const @u : u8[2] = dense<[0, 255]>
  const @flags : bool[2] = dense<[true, false]>
  const @scalar : f32[] = dense<[2.0]>
  func @main(%x: f32[?batch,?seq,2], %idx: i64[3]) -> (f32[?batch,?seq,2], i64[3], f32[?batch,?seq,2]) {
    %w = constant() {name = @w} : f32[2,2]
    %0 = matmul(%x, %w) : f32[?batch,?seq,2] loc("MatMul_0")
    %1 = gelu(%0) {approximate = "tanh"} : f32[?batch,?seq,2] loc("n" at "model.onnx":3:7)
    %2 = leaky_relu(%1) {alpha = 1e-05} : f32[?batch,?seq,2] loc(at "x.py":10)
    %3 = clip(%2) {min = -inf, max = 6.0} : f32[?batch,?seq,2]
    %4 = cast(%idx) {to = i32} : i32[3]
    %5 = cast(%4) {to = i64} : i64[3]
    %6 = reshape(%3) {shape = [?batch, -1, 2]} : f32[?batch,?seq,2]
    return %3, %5, %6
  }
  func @helper(%a: bool[2]) -> (bool[2]) {
    %0 = not(%a) : bool[2]
    return %0
  }
}
"""


def test_full_syntax_roundtrips_exactly():
    m = ir.parse(FULL)
    ir.verify(m)
    assert ir.print_module(m, inline_limit=None) == FULL


def test_parsed_values_are_exact():
    m = ir.parse(FULL)
    c = m.constants
    assert c["w"].dtype == np.float32 and c["w"][0, 0] == np.float32(0.1)
    assert c["w"][1, 1] == np.finfo(np.float32).max
    assert np.isnan(c["special"][0]) and c["special"][1] == np.inf and c["special"][2] == -np.inf
    assert c["special"][3] == 0 and np.signbit(c["special"][3])
    assert c["h"].dtype == np.float16 and c["h"][1] == np.float16(65504)
    assert c["b"].dtype == dt.bf16.np_dtype and float(c["b"][0]) == 1.0078125
    assert c["i"][0] == np.iinfo(np.int64).min and c["i"][2] == np.iinfo(np.int64).max
    assert c["flags"].tolist() == [True, False] and c["scalar"].shape == ()
    assert m.dim_bounds == {"batch": (1, 64), "seq": (1, None)}
    ops = m.main.ops
    assert ops[1].loc == Location(name="MatMul_0")
    assert ops[2].loc == Location(name="n", file="model.onnx", line=3, col=7)
    assert ops[3].loc == Location(file="x.py", line=10)
    assert ops[3].attrs == {"alpha": 1e-05}
    assert ops[4].attrs == {"min": -np.inf, "max": 6.0}
    assert ops[5].attrs["to"] is dt.i32
    assert ops[7].attrs["shape"] == ("batch", -1, 2)


def test_defaults_are_filled_and_not_printed():
    m = ir.parse(FULL)
    gelu = m.main.ops[2]
    text = ir.print_op(gelu)
    assert "approximate" in text
    op = m.main.ops[3]
    assert op.name == "leaky_relu"
    op.attrs["alpha"] = 0.01  # the default
    assert "alpha" not in ir.print_op(op)


def test_roundtrip_random_f32_values_bitwise():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(200), rng.standard_normal(200) * 1e-30,
                             rng.standard_normal(200) * 1e30]).astype(np.float32)
    with np.errstate(over="ignore"):  # the 1e30 values become inf in f16: still round-trip
        arrays = (values, values.astype(np.float16), values.astype(dt.bf16.np_dtype),
                  values.astype(np.float64) * np.pi)
    for arr in arrays:
        m = Module("v")
        f = FunctionBuilder(m)
        f.ret(f.constant(arr, name="v"))
        m2 = ir.parse(ir.print_module(m, inline_limit=None))
        assert m2.constants["v"].dtype == arr.dtype
        assert m2.constants["v"].tobytes() == arr.tobytes()


def test_printer_makes_names_unique_and_valid():
    m = Module("names")
    f = FunctionBuilder(m)
    x = f.arg("input:0/x", tensor([2], "f32"))
    a = f.op("exp", x, result_names=["same"])
    b = f.op("neg", a, result_names=["same"])
    c = f.op("abs", b, result_names=["7"])
    f.ret(c)
    text = ir.print_module(m)
    assert "%input_0_x: f32[2]" in text
    assert "%same = exp(%input_0_x)" in text and "%0 = neg(%same)" in text
    assert "%1 = abs(%0)" in text
    assert ir.print_module(ir.parse(text)) == text


def test_string_attrs_escape():
    m = ir.parse(FULL)
    op = m.main.ops[2]
    op.attrs["approximate"] = 'tan"h\\'
    text = ir.print_module(m, inline_limit=None)
    assert r'{approximate = "tan\"h\\"}' in text
    assert ir.parse(text).main.ops[2].attrs["approximate"] == 'tan"h\\'


def test_comments_are_ignored():
    text = FULL.replace("  func @helper", "  // a comment line\n  func @helper")
    assert ir.print_module(ir.parse(text), inline_limit=None) == FULL


@pytest.mark.parametrize("text, message, line, col", [
    ("module @m {\n  func @f(%x: f32[2]) -> (f32[2]) {\n    %0 = exp(%x) : f32[2,\n    return %0\n  }\n}\n",
     "bad result types ': f32[2,'", 3, 18),
    ("module @m {\n  const @c : f32[2] = dense<[1.0, oops]>\n}\n", "bad dense<> values", 2, 14),
    ("module @m {\n  const @c : i8[2] = dense<[1, 300]>\n}\n", "out of range for i8", 2, 14),
    ("module @m {\n  const @c : bool[1] = dense<[1]>\n}\n", "is not true or false", 2, 14),
    ("module @m {\n  const @c : f32[?n] = dense<[1.0]>\n}\n", "symbolic dims", 2, 14),
    ("module @m {\n  func @f(%x: f32[2]) -> (f32[2]) {\n    %0 = exp(%x) {a = [1, } : f32[2]\n    return %0\n  }\n}\n",
     "expected an attribute value", 3, 27),
    ("module @m {\n  func @f(%x: f32[2]) -> (f32[2]) {\n    %0, %1 = exp(%x) : f32[2]\n    return %0\n  }\n}\n",
     "exp has 2 results but 1 types", 3, 24),
    ("module @m {\n  func @f(%x: f32[2]) -> (f32[2], f32[2]) {\n    return %x\n  }\n}\n",
     "returns 1 values, its signature declares 2", 3, 5),
    ("module @m {\n  func @f(%x: f32[2], %x: f32[2]) -> (f32[2]) {\n    return %x\n  }\n}\n",
     "redefinition of %x", 2, 23),
    ("module @m {\n  func @f(%x: f32[2x3]) -> (f32[2]) {\n    return %x\n  }\n}\n",
     "bad dim '2x3'", 2, 15),
    ("", "unexpected end of input", None, None),
])
def test_parse_errors_point_at_the_spot(text, message, line, col):
    with pytest.raises(ir.ParseError) as info:
        ir.parse(text, filename="bad.ir")
    err = info.value
    assert message in err.message
    if line is not None:
        assert (err.line, err.col) == (line, col)
        rendered = str(err).splitlines()
        assert rendered[0].startswith(f"bad.ir:{line}:{col}: error: ")
        assert rendered[1] == text.splitlines()[line - 1]
        assert rendered[2] == " " * (col - 1) + "^"


def test_parse_type():
    assert ir.parse_type("f32[2,?n,3]") == tensor([2, "n", 3], "f32")
    assert ir.parse_type("bool[]") == tensor([], "bool")
    with pytest.raises(ir.ParseError, match="unknown dtype 'q4'"):
        ir.parse_type("q4[2]")


def test_save_load_with_external_weights(tmp_path):
    rng = np.random.default_rng(1)
    m = Module("weights")
    f = FunctionBuilder(m)
    x = f.arg("x", tensor([4, 64], "f32"))
    big = rng.standard_normal((64, 64)).astype(np.float32)
    w = f.constant(big, name="big")
    b16 = f.constant(rng.standard_normal(64).astype(dt.bf16.np_dtype), name="b16")
    small = f.constant(np.float32([1, 2]), name="small")
    y = f.matmul(x, w)
    f.ret(y, f.cast(b16, to="f32"), small)
    path = tmp_path / "model.ir"
    ir.save(m, str(path))
    text = path.read_text()
    assert "const @big : f32[64,64] = external" in text
    assert "const @b16 : bf16[64] = external" in text
    assert "const @small : f32[2] = dense<[1.0, 2.0]>" in text
    assert (tmp_path / "model.safetensors").exists()
    m2 = ir.load(str(path))
    assert str(m2) == str(m)
    for k in m.constants:
        assert m2.constants[k].dtype == m.constants[k].dtype
        assert m2.constants[k].tobytes() == m.constants[k].tobytes()
    xin = rng.standard_normal((4, 64)).astype(np.float32)
    for a, b in zip(ir.interpret(m, xin), ir.interpret(m2, xin)):
        np.testing.assert_array_equal(a, b)
    # saving a module with only small constants removes the stale weights file
    m2.constants = {"small": m2.constants["small"]}
    m2.functions[0].ops = [op for op in m2.main.ops if op.attrs.get("name") == "small"]
    m2.functions[0].outputs = [m2.main.ops[0].result]
    m2.functions[0].args = []
    ir.save(m2, str(path))
    assert not (tmp_path / "model.safetensors").exists()
    assert ir.load(str(path)).constants.keys() == {"small"}


def test_load_rejects_weights_of_the_wrong_shape(tmp_path):
    m = Module("w")
    f = FunctionBuilder(m)
    f.ret(f.constant(np.zeros((32,), np.float32), name="w"))
    ir.save(m, str(tmp_path / "a.ir"))
    text = (tmp_path / "a.ir").read_text().replace("f32[32]", "f32[33]")
    with pytest.raises(ir.ParseError, match=r"weights for @w are float32\[32\], the text declares f32\[33\]"):
        ir.parse(text, weights={"w": np.zeros(32, np.float32)})


def test_attribute_defaults_compare_by_their_text():
    m = ir.parse(FULL)
    op = m.main.ops[3]  # leaky_relu, alpha default 0.01
    op.attrs["alpha"] = -0.0
    assert "{alpha = -0.0}" in ir.print_op(op)
    clip = m.main.ops[4]
    clip.attrs["min"] = None
    assert "min" not in ir.print_op(clip)
    text = ir.print_module(m, inline_limit=None)
    assert ir.print_module(ir.parse(text), inline_limit=None) == text
