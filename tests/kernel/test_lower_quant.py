"""Quantized ops on the LLVM target (compiler/kernel/ops/quant.py, schedules/int8.py): every op
against the reference interpreter bit for bit on fresh random inputs (NaN, infinities and
saturation included; per-tensor and per-axis parameters; ragged shapes; the dtypes the ops
take), the three forms of the int8 dot product (VNNI, pmaddwd, portable), and a QDQ layer
compiled through the default pipeline into one int8 kernel with packed weights."""
from __future__ import annotations

import json

import numpy as np
import pytest

import compiler
from codegen.llvm import intrinsics, jit
from compiler import ir
from compiler.ir import dtypes as dt
from compiler.ir.types import TensorType as T

RNG_SEED = 20261125


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLC_CACHE_DIR", str(tmp_path / "cache"))


def _ints(rng, d: dt.DType, shape) -> np.ndarray:
    lo, hi = d.int_range()
    return rng.integers(lo, hi, shape, endpoint=True).astype(d.np_dtype)


def _check(m: ir.Module, args: list, labels: list[str], dump_dir=None) -> None:
    """Every output of the compiled module equals the interpreter's, bit for bit."""
    want = ir.interpret(m, *args)
    got = compiler.compile(m, target="llvm", dump_dir=dump_dir)(*args)
    assert len(got) == len(want) == len(labels)
    for label, w, g in zip(labels, want, got):
        assert (w.dtype, w.shape) == (g.dtype, g.shape), label
        if w.tobytes() != g.tobytes():
            bad = np.flatnonzero(w.reshape(-1).view(np.uint8) != g.reshape(-1).view(np.uint8))
            k = bad[0] // w.dtype.itemsize
            pytest.fail(f"{label}: {len(bad)} bytes differ; first at element {k}: "
                        f"want {w.reshape(-1)[k]!r}, got {g.reshape(-1)[k]!r}")


def _special(x: np.ndarray) -> np.ndarray:
    """x with NaN, infinities, huge values and exact halves in its first elements."""
    x = x.copy()
    flat = x.reshape(-1)
    flat[:8] = [np.nan, np.inf, -np.inf, 1e30, -1e30, 2.5, -3.5, 0.5]
    return x


# ------------------------------------------------------------------------------ elementwise maps

QUANTIZE_CASES = [  # x dtype, result dtype, axis, zero point: "s" scalar, "axis", None
    ("f32", "i8", 1, "s"), ("f32", "u8", 0, "axis"), ("f16", "i8", -1, "axis"),
    ("f64", "i32", 1, "s"), ("f32", "i16", 1, "axis"), ("f32", "u16", 1, None),
    ("bf16", "u8", 1, "s"), ("f32", "i4", 1, "s"), ("f32", "u4", 0, "axis"),
    ("f32", "f8e4m3fn", 1, "s"), ("f32", "i32", 1, "axis")]


def test_quantize_matches_reference():
    rng = np.random.default_rng(RNG_SEED)
    m = ir.Module("q")
    f = ir.FunctionBuilder(m, "main")
    args, outs, labels = [], [], []
    shape = (5, 37)
    for n, (xd, od, axis, zp) in enumerate(QUANTIZE_CASES):
        xdt, odt = dt.dtype(xd), dt.dtype(od)
        with np.errstate(over="ignore"):
            args.append(_special(rng.standard_normal(shape).astype(np.float32) * 60)
                        .astype(xdt.np_dtype))
        x = f.arg(f"x{n}", T(shape, xdt))
        c = shape[axis % 2]
        sshape = (c,) if zp == "axis" else ()
        s = f.constant(rng.uniform(0.05, 2.0, sshape).astype(xdt.np_dtype), f"s{n}")
        if zp is None:
            outs.append(f.op("quantize", x, s, axis=axis, dtype=odt))
        else:
            if odt.is_narrow_float:
                z = np.zeros(sshape, odt.np_dtype)
            else:
                lo, hi = odt.int_range()
                z = rng.integers(max(lo, -100), min(hi, 100), sshape, endpoint=True)
            outs.append(f.op("quantize", x, s, f.constant(np.asarray(z).astype(odt.np_dtype),
                                                          f"z{n}"), axis=axis))
        labels.append(f"quantize {xd}->{od} axis={axis} zero point {zp}")
    f.ret(*outs)
    _check(m, args, labels)


DEQUANTIZE_CASES = [  # x dtype, scale dtype, axis, zero point
    ("i8", "f32", 1, "s"), ("u8", "f32", 0, "axis"), ("i32", "f32", 1, "axis"),
    ("i16", "f16", 1, "s"), ("u16", "bf16", 1, None), ("i8", "f64", -1, "axis"),
    ("i4", "f32", 1, "s"), ("f8e4m3fn", "f32", 1, None)]


def test_dequantize_matches_reference():
    rng = np.random.default_rng(RNG_SEED + 1)
    m = ir.Module("dq")
    f = ir.FunctionBuilder(m, "main")
    args, outs, labels = [], [], []
    shape = (4, 29)
    for n, (xd, sd, axis, zp) in enumerate(DEQUANTIZE_CASES):
        xdt, sdt = dt.dtype(xd), dt.dtype(sd)
        if xdt.is_narrow_float:
            args.append((rng.standard_normal(shape) * 10).astype(xdt.np_dtype))
        else:
            args.append(_ints(rng, xdt, shape))
        x = f.arg(f"x{n}", T(shape, xdt))
        sshape = (shape[axis % 2],) if zp == "axis" else ()
        s = f.constant(rng.uniform(1e-3, 3.0, sshape).astype(sdt.np_dtype), f"s{n}")
        if zp is None:
            outs.append(f.op("dequantize", x, s, axis=axis))
        else:
            outs.append(f.op("dequantize", x, s, f.constant(_ints(rng, xdt, sshape), f"z{n}"),
                             axis=axis))
        labels.append(f"dequantize {xd} scale {sd} axis={axis} zero point {zp}")
    f.ret(*outs)
    _check(m, args, labels)


def test_requantize_matches_reference_including_i32_extremes():
    rng = np.random.default_rng(RNG_SEED + 2)
    m = ir.Module("rq")
    f = ir.FunctionBuilder(m, "main")
    args, outs, labels = [], [], []
    shape = (6, 33)
    for n, (od, axis, per_axis) in enumerate([("i8", 1, True), ("u8", 0, False),
                                              ("i8", -1, True)]):
        acc = _ints(rng, dt.i32, shape)
        acc.reshape(-1)[:4] = [-2**31, 2**31 - 1, 0, 12345]
        mult = rng.uniform(1e-9, 1e-6, (shape[axis % 2],) if per_axis else ()).astype(np.float32)
        args += [acc, mult]
        x = f.arg(f"x{n}", T(shape, dt.i32))
        mv = f.arg(f"m{n}", T(mult.shape, dt.f32))
        z = np.asarray(-7 if od == "i8" else 130, dt.dtype(od).np_dtype)
        outs.append(f.op("requantize", x, mv, f.constant(z, f"z{n}"), axis=axis))
        labels.append(f"requantize ->{od} axis={axis} per-axis {per_axis}")
    f.ret(*outs)
    _check(m, args, labels)


def test_dynamic_quantize_matches_reference():
    rng = np.random.default_rng(RNG_SEED + 3)
    m = ir.Module("dyn")
    f = ir.FunctionBuilder(m, "main")
    args, outs, labels = [], [], []
    shape = (7, 45)
    for kind in ("normal", "positive", "negative", "nan", "zeros"):
        x = rng.standard_normal(shape).astype(np.float32) * 3
        if kind == "positive":
            x = np.abs(x) + 1
        elif kind == "negative":
            x = -np.abs(x) - 1
        elif kind == "nan":
            x[2, 3] = np.nan
        elif kind == "zeros":
            x[:] = 0
        args.append(x)
        outs += f.op("dynamic_quantize", f.arg(f"x{kind}", T(shape, dt.f32)))
        labels += [f"dynamic_quantize {kind}: {r}" for r in ("y", "scale", "zero point")]
    f.ret(*outs)
    _check(m, args, labels)


# ------------------------------------------------------------------------------ contractions

MATMUL_CASES = [  # a shape, b shape, a dtype, b dtype, a zero point, b zero point, b constant
    ((6, 9), (9, 21), "u8", "i8", "s", "s", True),           # ragged K (copies, zero-padded)
    ((6, 16), (16, 40), "i8", "i8", "row", "col", True),      # per-row / per-column
    ((2, 5, 12), (12, 70), "i8", "u8", "s", "col2", True),    # batched a, [1, N] zero point
    ((2, 5, 12), (2, 12, 7), "u8", "u8", "row2", "s", False),  # batched b (a copy of it)
    ((12,), (12, 33), "i8", "i8", "s", None, True),           # 1-D a
    ((3, 12), (12,), "u8", "i8", "zero", "s", False),         # 1-D b
    ((13,), (13,), "u8", "u8", "s", "s", False),               # 1-D both
    ((1, 2, 8), (3, 8, 5), "i8", "i8", "s", "s", False),       # broadcast batch
    ((17, 64), (64, 100), "i8", "i8", None, None, True),       # no zero points
    ((37, 256), (256, 300), "u8", "i8", "s", "col", True),     # ragged tiles, several panels
    ((3, 10, 64), (64, 512), "i8", "i8", "s", None, True),     # batch inside parallel panels
]


def _zero_point(f, rng, kind, d: dt.DType, a_shape, b_shape, name):
    M = a_shape[-2] if len(a_shape) > 1 else 1
    N = b_shape[-1] if len(b_shape) > 1 else 1
    shape = {"s": (), "zero": (), "row": (M,), "col": (N,), "row2": tuple(a_shape[:-1]) + (1,),
             "col2": (1, N)}[kind]
    z = np.zeros(shape, d.np_dtype) if kind == "zero" else _ints(rng, d, shape)
    return f.constant(z, name)


def test_matmul_integer_matches_reference():
    rng = np.random.default_rng(RNG_SEED + 4)
    m = ir.Module("mm")
    f = ir.FunctionBuilder(m, "main")
    args, outs, labels = [], [], []
    for n, (ash, bsh, ad, bd, za, zb, bconst) in enumerate(MATMUL_CASES):
        adt, bdt = dt.dtype(ad), dt.dtype(bd)
        av, bv = _ints(rng, adt, ash), _ints(rng, bdt, bsh)
        av.reshape(-1)[:2] = adt.int_range()  # the extremes: products a vpmaddubsw saturates
        args.append(av)
        a = f.arg(f"a{n}", T(ash, adt))
        if bconst:
            b = f.constant(bv, f"w{n}")
        else:
            args.append(bv)
            b = f.arg(f"b{n}", T(bsh, bdt))
        zps = []
        if za is not None or zb is not None:
            zps.append(_zero_point(f, rng, za or "zero", adt, ash, bsh, f"za{n}"))
        if zb is not None:
            zps.append(_zero_point(f, rng, zb, bdt, ash, bsh, f"zb{n}"))
        outs.append(f.op("matmul_integer", a, b, *zps))
        labels.append(f"matmul_integer {ad}{list(ash)} x {bd}{list(bsh)} zero points {za}/{zb}")
    f.ret(*outs)
    _check(m, args, labels)


def test_qlinear_matmul_matches_reference():
    rng = np.random.default_rng(RNG_SEED + 5)
    m = ir.Module("qmm")
    f = ir.FunctionBuilder(m, "main")
    args, outs, labels = [], [], []
    for n, (ash, bsh, per) in enumerate([((5, 20), (20, 18), True), ((2, 3, 8), (8, 40), False),
                                         ((8,), (8, 5), False)]):
        args.append(_ints(rng, dt.u8, ash))
        a = f.arg(f"a{n}", T(ash, dt.u8))
        M, N = (ash[-2] if len(ash) > 1 else 1), bsh[-1]
        rows = per and len(ash) == 2
        sa = rng.uniform(0.01, 0.1, (M,) if rows else ()).astype(np.float32)
        za = rng.integers(0, 255, (M,) if rows else ()).astype(np.uint8)
        sb = rng.uniform(1e-3, 1e-2, (N,) if per else ()).astype(np.float32)
        zb = rng.integers(-5, 5, (N,) if per else ()).astype(np.int8)
        outs.append(f.op("qlinear_matmul", a, f.constant(sa, f"sa{n}"), f.constant(za, f"za{n}"),
                         f.constant(_ints(rng, dt.i8, bsh), f"b{n}"), f.constant(sb, f"sb{n}"),
                         f.constant(zb, f"zb{n}"), f.constant(np.float32(0.7), f"sy{n}"),
                         f.constant(np.int8(-3), f"zy{n}")))
        labels.append(f"qlinear_matmul {list(ash)} x {list(bsh)} per-row/column {per}")
    f.ret(*outs)
    _check(m, args, labels)


CONV_CASES = [  # spatial dims, groups, strides, pads, dilations, x dtype, w dtype, w zero point
    (1, 1, [1], [0, 0], [1], "u8", "i8", "s"),
    (2, 2, [2, 1], [1, 0, 1, 2], [1, 2], "i8", "i8", "channel"),
    (2, 1, [1, 1], [1, 1, 1, 1], [1, 1], "u8", "u8", None)]


def test_conv_integer_and_qlinear_conv_match_reference():
    rng = np.random.default_rng(RNG_SEED + 6)
    m = ir.Module("conv")
    f = ir.FunctionBuilder(m, "main")
    args, outs, labels = [], [], []
    C, Mo = 4, 6
    for n, (d, groups, strides, pads, dil, xd, wd, wz) in enumerate(CONV_CASES):
        xdt, wdt = dt.dtype(xd), dt.dtype(wd)
        xs, ws = (2, C) + (7,) * d, (Mo, C // groups) + (3,) * d
        args.append(_ints(rng, xdt, xs))
        x = f.arg(f"x{n}", T(xs, xdt))
        w = f.constant(_ints(rng, wdt, ws), f"w{n}")
        xz = f.constant(_ints(rng, xdt, ()), f"xz{n}")
        zps = [xz]
        if wz is not None:
            zps.append(f.constant(_ints(rng, wdt, () if wz == "s" else (Mo,)), f"wz{n}"))
        attrs = dict(strides=strides, pads=pads, dilations=dil, groups=groups)
        outs.append(f.op("conv_integer", x, w, *zps, **attrs))
        labels.append(f"conv_integer {d}-D groups={groups} {xd}x{wd} w zero point {wz}")
        outs.append(f.op(
            "qlinear_conv", x, f.constant(np.float32(0.02), f"sx{n}"), xz, w,
            f.constant(rng.uniform(1e-3, 1e-2, Mo).astype(np.float32), f"sw{n}"),
            f.constant(_ints(rng, wdt, (Mo,)), f"wzc{n}"), f.constant(np.float32(0.5), f"sy{n}"),
            f.constant(np.int8(3), f"zy{n}"),
            f.constant(rng.integers(-5000, 5000, Mo).astype(np.int32), f"bias{n}"), **attrs))
        labels.append(f"qlinear_conv {d}-D groups={groups} {xd}x{wd}")
    f.ret(*outs)
    _check(m, args, labels)


def test_symbolic_rows_and_a_clear_error_for_a_symbolic_k():
    rng = np.random.default_rng(RNG_SEED + 7)
    w = _ints(rng, dt.i8, (32, 48))
    m = ir.Module("dyn")
    f = ir.FunctionBuilder(m, "main")
    f.ret(f.op("matmul_integer", f.arg("a", T(("n", 32), dt.u8)), f.constant(w, "w"),
               f.constant(np.uint8(7), "za")))
    mod = compiler.compile(m, target="llvm")
    for n in (3, 29):
        a = _ints(rng, dt.u8, (n, 32))
        np.testing.assert_array_equal(mod(a)[0], ir.interpret(m, a)[0])
    text = """module @k {
  func @main(%a: u8[4,?k], %b: i8[?k,8]) -> (i32[4,8]) {
    %y = matmul_integer(%a, %b) : i32[4,8] loc("node_mm")
    return %y
  }
}
"""
    with pytest.raises(Exception, match=r"matmul_integer.*node_mm.*K is symbolic \(\?k\)"):
        compiler.compile(text, target="llvm")


# ------------------------------------------------------------------------------ the int8 kernel

@pytest.mark.parametrize("isa", ["vnni", "pmaddwd", "generic"])
def test_each_dot4_form_is_exact(isa, tmp_path, monkeypatch):
    """u8 x s8 products at the extremes: 255 * -128 four times needs 18 bits (vpmaddubsw's
    16-bit pair sums would saturate); every form must give the exact i32 sum."""
    h = jit.host()
    if isa == "vnni" and not (h["avx512vnni"] or h["avxvnni"]):
        pytest.skip("the host has no VNNI")
    if isa == "pmaddwd" and "+avx2" not in h["features"]:
        pytest.skip("the host has no AVX2")
    monkeypatch.setattr(intrinsics, "DOT4_ISA", isa)
    rng = np.random.default_rng(RNG_SEED + 8)
    a = np.where(rng.random((9, 64)) < 0.5, 255, rng.integers(0, 256, (9, 64))).astype(np.uint8)
    b = np.where(rng.random((64, 40)) < 0.5, -128, rng.integers(-128, 128, (64, 40))).astype(
        np.int8)
    m = ir.Module("dot4")
    f = ir.FunctionBuilder(m, "main")
    f.ret(f.op("matmul_integer", f.arg("a", T(a.shape, dt.u8)), f.constant(b, "w")))
    dump = tmp_path / "dump"
    _check(m, [a], [f"matmul_integer with dot4 as {isa}"], dump_dir=str(dump))
    asm = jit.assembly((dump / "module.ll").read_text())
    want = {"vnni": "vpdpbusd", "pmaddwd": "vpmaddwd"}.get(isa)
    if want is not None:
        assert want in asm
    if isa != "vnni":
        assert "vpdpbusd" not in asm


def _qdq_layer(rng, M: int, K: int, N: int) -> ir.Module:
    """x -> quantize/dequantize -> gemm(dequantized int8 weight, dequantized int32 bias) ->
    quantize/dequantize -> relu -> quantize/dequantize, as ONNX Runtime's QDQ format writes it."""
    m = ir.Module("layer")
    f = ir.FunctionBuilder(m, "main")
    c = f.constant
    xs, xz = c(np.float32(0.03), "xs"), c(np.int8(-4), "xz")
    ws = rng.uniform(2e-3, 2e-2, N).astype(np.float32)
    x = f.dequantize(f.quantize(f.arg("x", T((M, K), dt.f32)), xs, xz), xs, xz)
    w = f.dequantize(c(_ints(rng, dt.i8, (K, N)), "w"), c(ws, "ws"), axis=1)
    b = f.dequantize(c(rng.integers(-3000, 3000, N).astype(np.int32), "b"),
                     c(ws * np.float32(0.03), "bs"), axis=0)
    ys, yz = c(np.float32(0.05), "ys"), c(np.int8(2), "yz")
    y = f.dequantize(f.quantize(f.op("gemm", x, w, b), ys, yz), ys, yz)
    zs, zz = c(np.float32(0.04), "zs"), c(np.uint8(0), "zz")
    f.ret(f.dequantize(f.quantize(f.op("relu", y), zs, zz), zs, zz))
    return m


def test_qdq_layer_becomes_one_fused_int8_kernel_with_packed_weights(tmp_path):
    """dequantize -> gemm -> quantize (ONNX Runtime's QDQ form: per-channel weights, an int32
    bias) through the default pipeline: rewrite-qdq makes it matmul_integer + requantize,
    fuse-ops one group with its epilogue (bias, requantization, relu, the next quantize), the
    int8 schedule packs the weight as [N/32, K/4, 32, 4]; the layer is one kernel that matches
    the interpreter on the optimized module bit for bit."""
    from compiler.pipeline import default_pipeline
    from passes import parse_pipeline
    M, K, N = 24, 96, 80
    seed = RNG_SEED + 9
    optimized = _qdq_layer(np.random.default_rng(seed), M, K, N)
    parse_pipeline(default_pipeline(2)).run(optimized)
    names = [op.name for op in optimized.main.ops if op.name != "constant"]
    assert names == ["quantize", "fused"], names
    body = optimized.function(optimized.main.ops[-1].attrs["body"])
    assert {"matmul_integer", "requantize", "quantize"} <= {op.name for op in body.ops}

    dump = tmp_path / "dump"
    compiled = compiler.compile(_qdq_layer(np.random.default_rng(seed), M, K, N),
                                target="llvm", dump_dir=str(dump))
    manifest = json.loads((dump / "llvm-manifest.json").read_text())
    fused = [c for c in manifest["calls"] if c["op"] == "fused"]
    assert len(fused) == 1 and fused[0]["schedule"] == "default", manifest["calls"]
    assert "dot4_u8s8" in (dump / "kernels.kir").read_text()
    assert [(s["block"], s.get("group")) for s in manifest["slots"] if s["kind"] == "packed"] \
        == [(32, 4)]
    x = np.random.default_rng(seed + 1).standard_normal((M, K)).astype(np.float32) * 2
    np.testing.assert_array_equal(compiled(x)[0], ir.interpret(optimized, x)[0])


def test_int8_schedule_trace_replays_to_the_same_kernel():
    from compiler.kernel.lower import lower_function
    from compiler.kernel.printer import print_kernel
    rng = np.random.default_rng(RNG_SEED + 10)
    m = ir.Module("mm")
    f = ir.FunctionBuilder(m, "main")
    f.ret(f.op("matmul_integer", f.arg("a", T((10, 64), dt.i8)),
               f.constant(_ints(rng, dt.i8, (64, 70)), "w"), f.constant(np.int8(5), "za")))
    group = lower_function(m, m.main, "k", "contraction")
    kernel = group.build()
    trace = json.loads(kernel.attrs["trace"])
    assert ["pack", ["in1", 1, 32, 4]] in trace
    again = lower_function(m, m.main, "k", "contraction").build(trace=kernel.attrs["trace"])
    assert print_kernel(again) == print_kernel(kernel)
