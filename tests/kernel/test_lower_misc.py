"""Kernel lowerings of the miscellaneous ops (compiler/kernel/ops/misc.py) on the LLVM target,
checked against the reference interpreter on fresh random data: scans, topk, gathers, scatters,
einsum, det, shape_of, tfidf_vectorizer, bitcast, and casts to and from the narrow types
(bit for bit)."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import compiler
from compiler import ir
from compiler.ir import FunctionBuilder, Module, tensor
from compiler.ir import dtypes as dt

RNG = np.random.default_rng(20261125)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLC_CACHE_DIR", str(tmp_path / "cache"))


def _module(arrays, calls, shapes=None):
    """One function: args typed like `arrays` (or `shapes`), then each (op, operand indices,
    attrs) of `calls` applied to them; all results are returned."""
    m = Module("t")
    f = FunctionBuilder(m, "main")
    args = [f.arg(f"a{i}", tensor(list(shapes[i] if shapes else a.shape),
                                  dt.dtype(a.dtype).name)) for i, a in enumerate(arrays)]
    outs = []
    for name, operands, attrs in calls:
        r = f.op(name, *[args[k] for k in operands], **attrs)
        outs += r if isinstance(r, list) else [r]
    f.ret(*outs)
    return m


def _run(arrays, calls, shapes=None):
    m = _module(arrays, calls, shapes)
    want = ir.interpret(m, *arrays)
    got = compiler.compile(m, target="llvm")(*arrays)
    assert len(got) == len(want)
    return got, want


def _same(got, want, what="", rtol=0.0):
    assert got.dtype == want.dtype and got.shape == want.shape, what
    if rtol and (want.dtype.kind == "f" or want.dtype == ml_dtypes.bfloat16):
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol,
                                   atol=rtol, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def _data(shape, dtype, lo=-4, hi=4):
    d = np.dtype(dtype)
    if d.kind in "iu":
        return RNG.integers(max(lo, np.iinfo(d).min), hi, shape).astype(d)
    return (RNG.standard_normal(shape) * 2).astype(d)


# ------------------------------------------------------------------------------ scans

@pytest.mark.parametrize("dtype", ["float32", "float16", "int64"])
def test_cumsum_cumprod_all_flags(dtype):
    x = _data((3, 7, 5), dtype)
    if np.dtype(dtype).kind == "f":
        x = (x * 0.5 + 1).astype(dtype)  # products of values near 1 stay finite
    calls = [(op, [0], dict(axis=ax, exclusive=ex, reverse=rv))
             for op in ("cumsum", "cumprod") for ax, ex, rv in
             ((1, False, False), (-1, True, False), (0, False, True), (1, True, True))]
    got, want = _run([x], calls)
    for g, w, c in zip(got, want, calls):
        _same(g, w, str(c), rtol=1e-6 if dtype == "float32" else 0)


def test_scans_wrap_integers_and_handle_scalars_and_symbolic_rows():
    x = RNG.integers(50, 120, (2, 40)).astype(np.int8)
    got, want = _run([x], [("cumprod", [0], dict(axis=1)), ("cumsum", [0], dict(axis=1))])
    for g, w in zip(got, want):
        _same(g, w)
    s = np.array(2.5, np.float32)
    got, want = _run([s], [("cumsum", [0], dict(axis=0, exclusive=True)),
                           ("cumprod", [0], dict(axis=0))])
    for g, w in zip(got, want):
        _same(g, w)
    x = _data((5, 33), "float32")
    m = _module([x], [("cumsum", [0], dict(axis=0, reverse=True))], shapes=[("n", 33)])
    mod = compiler.compile(m, target="llvm")
    for rows in (5, 2):
        xr = x[:rows]
        np.testing.assert_allclose(mod(xr)[0], ir.interpret(m, xr)[0], rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------ topk

@pytest.mark.parametrize("dtype", ["float32", "int64", "float16"])
def test_topk_orders_ties_by_index_and_nan_first(dtype):
    x = RNG.integers(-3, 4, (4, 11, 6)).astype(dtype)  # many ties
    if dtype != "int64":
        x[1, 3, 2] = x[2, 5, 0] = x[0, 0, 5] = np.nan
        x[3, 2, 1] = -0.0
    calls = [("topk", [0], dict(k=k, axis=ax, largest=lg))
             for k, ax, lg in ((3, 1, True), (3, 1, False), (6, -1, True), (1, 0, False),
                               (11, 1, True), (0, 2, True))]
    got, want = _run([x], calls)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# ------------------------------------------------------------------------------ gathers

@pytest.mark.parametrize("idx", ["int32", "int64"])
def test_gather_elements_and_gather_nd(idx):
    x = _data((4, 6, 5), "float32")
    ge = RNG.integers(-6, 6, (4, 3, 5)).astype(idx)
    nd0 = RNG.integers(-4, 4, (2, 7, 2)).astype(idx)
    nd0[..., 1] = nd0[..., 1] % 6
    nd1 = RNG.integers(-5, 5, (4, 3, 1)).astype(idx)
    got, want = _run([x, ge, nd0, nd1], [("gather_elements", [0, 1], dict(axis=1)),
                                         ("gather_nd", [0, 2], dict(batch_dims=0)),
                                         ("gather_nd", [0, 3], dict(batch_dims=1))])
    for g, w in zip(got, want):
        _same(g, w)


# ------------------------------------------------------------------------------ scatters

@pytest.mark.parametrize("dtype", ["float32", "float16", "int32"])
def test_scatters_with_duplicates_and_every_reduction(dtype):
    x = _data((5, 6, 7), dtype)
    ind_e = RNG.integers(-6, 6, (4, 5, 7)).astype(np.int64)   # duplicates along axis 1
    upd_e = _data((4, 5, 7), dtype)
    ind_n = RNG.integers(-5, 5, (9, 2)).astype(np.int32)       # duplicate rows likely
    ind_n[:, 1] = ind_n[:, 1] % 6
    upd_n = _data((9, 7), dtype)
    reds = ("none", "add", "mul", "max", "min")
    calls = [("scatter_elements", [0, 1, 2], dict(axis=1, reduction=r)) for r in reds]
    calls += [("scatter_nd", [0, 3, 4], dict(reduction=r)) for r in reds]
    got, want = _run([x, ind_e, upd_e, ind_n, upd_n], calls)
    for g, w, c in zip(got, want, calls):
        _same(g, w, str(c))


# ------------------------------------------------------------------------------ einsum

EQUATIONS = [("bij,bjk->bik", [(2, 3, 9), (2, 9, 5)]),
             ("bhqd,bhkd->bhqk", [(2, 3, 5, 8), (2, 3, 6, 8)]),
             ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]),
             ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
             ("bii->bi", [(2, 3, 3)]),
             ("i,j", [(3,), (4,)]),
             ("ij->", [(3, 7)]),
             ("ji", [(3, 4)])]


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64"])
def test_einsum_equations(dtype):
    arrays, calls = [], []
    for eq, shapes in EQUATIONS:
        ks = list(range(len(arrays), len(arrays) + len(shapes)))
        arrays += [_data(s, dtype) for s in shapes]
        calls.append(("einsum", ks, dict(equation=eq)))
    got, want = _run(arrays, calls)
    for g, w, c in zip(got, want, calls):
        _same(g, w, str(c), rtol={"float32": 1e-5, "float16": 1e-3}.get(dtype, 0))


# ------------------------------------------------------------------------------ det

@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_det_batches_and_singular(dtype):
    x = _data((2, 3, 6, 6), dtype)
    x[0, 1, 4] = x[0, 1, 2]  # singular
    x[1, 2] = np.eye(6, dtype=dtype)[::-1]  # a permutation: pivoting flips the sign
    got, want = _run([x, x[0, 0, :1, :1].copy()], [("det", [0], {}), ("det", [1], {})])
    for g, w in zip(got, want):
        _same(g, w, rtol={"float64": 1e-12, "float32": 1e-6}.get(dtype, 1e-3))
    assert got[0][0, 1] == 0 and got[0][1, 2] == want[0][1, 2]


# ------------------------------------------------------------------------------ shape_of, tfidf

def test_shape_of_symbolic_dims():
    m = Module("t")
    f = FunctionBuilder(m, "main")
    a = f.arg("x", tensor(["n", 3, "k"], "f32"))
    f.ret(f.op("shape_of", a), f.op("shape_of", a, start=1, end=-1))
    mod = compiler.compile(m, target="llvm")
    x = _data((4, 3, 2), "float32")
    for g, w in zip(mod(x), ir.interpret(m, x)):
        _same(g, w)


@pytest.mark.parametrize("mode", ["TF", "IDF", "TFIDF"])
def test_tfidf_vectorizer_modes(mode):
    x = RNG.integers(2, 9, (3, 13)).astype(np.int32)
    pool, counts = [2, 3, 5, 4, 5, 6, 7, 8, 6, 7, 2, 3, 5], [0, 4, 10]
    kw = dict(mode=mode, pool=pool, ngram_counts=counts, ngram_indexes=list(range(8)),
              weights=[0.5 + i for i in range(8)] if mode != "TF" else [])
    calls = [("tfidf_vectorizer", [0], dict(kw, min_gram_length=lo, max_gram_length=hi,
                                            max_skip_count=skip))
             for lo, hi, skip in ((1, 1, 0), (1, 2, 0), (2, 2, 3), (1, 3, 5))]
    got, want = _run([x], calls)
    for g, w in zip(got, want):
        _same(g, w)
    got, want = _run([x[0].astype(np.int64)], calls[1:2])
    _same(got[0], want[0])


# ------------------------------------------------------------------------------ bitcast

def _all_bits(d: dt.DType, n: int = 1024) -> np.ndarray:
    if d.is_bool:
        return np.array([False, True] * 8)
    width = d.np_dtype.itemsize * 8
    if d.bits <= 8:
        raw = np.arange(1 << d.bits, dtype=np.uint8)
    else:
        raw = RNG.integers(0, 1 << width, n, dtype=np.uint64).astype(f"u{width // 8}")
    return raw.view(d.np_dtype)


@pytest.mark.parametrize("bits", [16, 32, 64, 8, 4])
def test_bitcast_between_every_pair_of_a_width(bits):
    group = [d for d in dt.DTYPES if d.bits == bits]
    for src in group:
        x = _all_bits(src)
        targets = [d for d in group if d != src]
        got, want = _run([x], [("bitcast", [0], dict(to=d)) for d in targets])
        for g, w, d in zip(got, want, targets):
            if d.name == "bf16":  # a signalling nan is stored quiet (still a nan)
                gv, wv = g.astype(np.float32), w.astype(np.float32)
                nan = np.isnan(wv)
                assert np.array_equal(np.isnan(gv), nan), (src, d)
                g, w = g[~nan], w[~nan]
            assert np.array_equal(g.view(np.uint8), w.view(np.uint8)), (src, d)


# ------------------------------------------------------------------------------ narrow casts

NARROW = list(dt.NARROW_DTYPES)
STANDARD = [dt.dtype(n) for n in ("f32", "f64", "f16", "bf16", "i8", "u64", "bool")]


def _cast_calls(src: dt.DType, targets, variants: bool = True) -> list:
    """A cast of arg 0 to each target; with `variants`, every saturate/round_mode setting."""
    calls = []
    for to in targets:
        if to == src:
            continue
        if variants and to.is_narrow_float and to.name != "f8e8m0":
            calls += [("cast", [0], dict(to=to, saturate=s)) for s in (True, False)]
        elif variants and to.name == "f8e8m0":
            calls += [("cast", [0], dict(to=to, saturate=s, round_mode=r))
                      for s in (True, False) for r in ("up", "down", "nearest")]
        else:
            calls.append(("cast", [0], dict(to=to)))
    if src.name == "f8e5m2":
        calls.append(("cast", [0], dict(to=src, saturate=True)))  # clamps its infinities
    return calls


@pytest.mark.parametrize("src", NARROW, ids=lambda d: d.name)
def test_casts_from_every_narrow_bit_pattern(src):
    """Decoding is exact; narrow -> narrow is that decoding then the encoding tested below
    (with every saturate/round_mode variant), so the defaults suffice here."""
    x = _all_bits(src)
    calls = _cast_calls(src, STANDARD + NARROW, variants=False)
    got, want = _run([x], calls)
    for g, w, c in zip(got, want, calls):
        to = c[2]["to"]
        if src.is_narrow_float and to.is_int:
            # the reference leaves finite values outside the target's range to NumPy's
            # platform conversion; the kernel saturates there (like its other float -> int
            # casts); nan, infinities and values in range must agree
            v = x.astype(np.float64)
            lo, hi = to.int_range()
            ok = ~np.isfinite(v) | ((v > lo - 1) & (v < hi + 1))
            g, w = g[ok], w[ok]
        assert np.array_equal(np.asarray(g).view(np.uint8), np.asarray(w).view(np.uint8)), c


def _edge_values() -> np.ndarray:
    """Every finite narrow value, the midpoints between neighbours, and both nudged by an
    ulp: where rounding to the narrow types is decided."""
    vals = []
    for d in dt.NARROW_FLOAT_DTYPES:
        v = _all_bits(d).astype(np.float64)
        v = np.unique(v[np.isfinite(v)])
        mid = (v[1:] + v[:-1]) / 2
        for a in (v, mid):
            vals += [a, -a, np.nextafter(a, np.inf), np.nextafter(a, -np.inf)]
    v = np.concatenate(vals)
    return v[np.abs(v) < 1e38]


@pytest.mark.parametrize("src", ["f32", "f64", "f16", "bf16", "i64", "bool"])
def test_casts_to_every_narrow_type_round_and_saturate_like_ml_dtypes(src):
    d = dt.dtype(src)
    if d.name in ("f32", "f64"):
        special = np.array([np.inf, -np.inf, np.nan, -np.nan, 0.0, -0.0, 1e30, -1e30, 3e9,
                            -3e9, 1e-40])
        x = np.concatenate([_edge_values(), special, RNG.standard_normal(3000) *
                            10.0 ** RNG.integers(-12, 8, 3000)]).astype(d.np_dtype)
        if d.name == "f32":
            bits = RNG.integers(0, 1 << 32, 20000, dtype=np.uint64).astype(np.uint32)
            x = np.concatenate([x, bits.view(np.float32)])
    elif d.is_float:
        x = np.arange(1 << 16, dtype=np.uint16).view(d.np_dtype)  # every f16 / bf16
    elif d.is_bool:
        x = np.array([True, False])
    else:
        lo, hi = d.int_range()
        x = np.concatenate([np.arange(max(lo, -70000), min(hi, 70000) + 1),
                            RNG.integers(lo, hi, 1000)]).astype(d.np_dtype)
    got, want = _run([x], _cast_calls(d, NARROW))
    for g, w in zip(got, want):
        assert np.array_equal(g.view(np.uint8), w.view(np.uint8)), (
            src, w.dtype, x[g.view(np.uint8) != w.view(np.uint8)][:5])


def test_narrow_casts_in_a_ragged_2d_group():
    """Multi-dimensional narrow tensors through a fused group (vectorized rows, ragged tails)."""
    x = _data((5, 37), "float32")
    m = Module("t")
    f = FunctionBuilder(m, "main")
    a = f.arg("x", tensor([5, 37], "f32"))
    q = f.op("cast", a, to=dt.dtype("f8e4m3fn"))
    i4 = f.op("cast", a, to=dt.dtype("i4"))
    y = f.op("add", f.op("cast", q, to=dt.dtype("f32")), f.op("cast", i4, to=dt.dtype("f32")))
    f.ret(y, f.op("cast", f.op("cast", a, to=dt.dtype("f4e2m1")), to=dt.dtype("f16")))
    got = compiler.compile(m, target="llvm")(x)
    for g, w in zip(got, ir.interpret(m, x)):
        _same(g, w)
