"""The default contraction schedule (compiler/kernel/schedules/matmul.py): numerics against
NumPy on ragged, batched, transposed and symbolic shapes; trace replay; legality errors."""
from __future__ import annotations

import numpy as np
import pytest

from compiler.bench.matmul_kernel import CompiledKernel, MatmulProblem
from compiler.ir import dtypes as dt
from compiler.kernel import te
from compiler.kernel.ir import For, If, Var, walk_stmt
from compiler.kernel.printer import stmt_lines
from compiler.kernel.schedule import Schedule, ScheduleError, pack_array
from compiler.kernel.schedules.matmul import choose_tile, schedule_contraction
from compiler.kernel.transform import lower_kernel, unroll, version_guards

F32 = dt.dtype("f32")

CASES = [
    MatmulProblem(37, 70, 50),                                    # ragged M and N, packed B
    MatmulProblem(1, 100, 64),                                    # a row: 1 x 64 tile
    MatmulProblem(24, 40, 16, b_layout="nk"),                     # Linear weight [N, K]
    MatmulProblem(13, 33, 17, epilogue="none"),                   # the contraction is the output
    MatmulProblem(2, 3, 300),                                     # N under a vector
    MatmulProblem(128, 96, 64, batch=(3,), b_constant=False),     # batched, B an activation
    MatmulProblem(20, 36, 24, batch=(2,), b_constant=False, b_layout="nk"),  # Q @ K^T
    MatmulProblem(100, 200, 72),                                  # several chunks, parallel
]


def _check(p: MatmulProblem, ck: CompiledKernel, seed: int, M: int | None = None) -> None:
    p = MatmulProblem(M or p.M, p.N, p.K, p.batch, p.b_constant, p.b_layout, p.symbolic_m,
                      p.epilogue)
    arrays = p.inputs(np.random.default_rng(seed))
    got = ck(arrays, [p.M] if p.symbolic_m else [])
    want = p.reference(arrays)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(p.K))


@pytest.mark.parametrize("p", CASES, ids=lambda p: f"{p.batch}x{p.M}x{p.N}x{p.K}-{p.b_layout}"
                         + ("-const" if p.b_constant else "") + f"-{p.epilogue}")
def test_numerics(p: MatmulProblem) -> None:
    _, kernel = p.build()
    _check(p, CompiledKernel(kernel), seed=p.M * 7 + p.N)


def test_symbolic_m_runs_any_m() -> None:
    """One kernel for a dynamic sequence length: full tiles, a ragged tail, fewer rows than a
    tile, and a single row."""
    p = MatmulProblem(50, 70, 33, symbolic_m=True)
    s, kernel = p.build()
    assert [v.name for v in kernel.dims] == ["M"]
    ck = CompiledKernel(kernel)
    for m in (50, 48, 7, 1):
        _check(p, ck, seed=m, M=m)


def test_avx2_tile_sizes_still_compute() -> None:
    """The 8-lane (AVX2) tile: 6 x 16, built and run on this host."""
    assert (choose_tile(None, None, 256).MR, choose_tile(None, None, 256).NR) == (6, 16)
    p = MatmulProblem(29, 45, 31)
    A = te.placeholder("A", (29, 31), F32)
    B = te.placeholder("B", (31, 45), F32)
    C = te.reduce("C", (29, 45), (31,), lambda i, j, k: A[i, k] * B[k, j], "+", 0.0)
    s = Schedule([C], [A, B])
    schedule_contraction(s, "C", "C", m_axis=0, n_axis=1, k_axis=0, batch_axes=[],
                         b_is_constant=True, host={"vector_bits": 256})
    assert ["pack", ["B", 1, 16]] in [list(x) for x in s.trace]
    ck = CompiledKernel(s.build("mm_avx2"))
    arrays = p.inputs(np.random.default_rng(3))[:2]
    np.testing.assert_allclose(ck(arrays), arrays[0] @ arrays[1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("p", [MatmulProblem(37, 70, 50),
                               MatmulProblem(20, 36, 24, batch=(2,), b_constant=False,
                                             b_layout="nk"),
                               MatmulProblem(50, 70, 33, symbolic_m=True)])
def test_trace_replays_to_the_same_kernel(p: MatmulProblem) -> None:
    s, kernel = p.build()
    trace = s.trace_json()
    _, again = p.build(trace=trace)
    assert str(again) == str(kernel)
    assert str(lower_kernel(again)) == str(lower_kernel(kernel))


def test_full_tiles_have_no_guards_in_the_hot_loop() -> None:
    """Ragged M and N: the k loop of the full-tile copy holds no branch (rows are clamped,
    packed columns padded, the epilogue's guards versioned out)."""
    _, kernel = MatmulProblem(37, 70, 50).build()
    low = lower_kernel(kernel)
    kloops = [x for x in walk_stmt(low.body) if isinstance(x, For) and x.name.startswith("C.r0")]
    assert kloops
    for k in kloops:
        assert not any(isinstance(x, (If, For)) for x in walk_stmt(k.body))


def test_version_guards_hoists_an_affine_bound() -> None:
    from compiler.kernel.ir import Buffer, Store, binop, const
    buf = Buffer("x", F32, (100,))
    o, i = Var("o"), Var("i")
    idx = o * 8 + i
    body = For(o, 13, "serial", For(i, 8, "vectorized", If(binop("<", idx, 100),
                                                             Store(buf, idx, const(1.0, F32)))))
    out = version_guards(unroll(body))
    assert "\n".join(stmt_lines(out)) == """\
  for o in 0..13 {
    if (((o * 8) + 7) < 100) {
      vectorized for i in 0..8 {
        x[((o * 8) + i)] = 1.0
      }
    } else {
      vectorized for i in 0..8 {
        if (((o * 8) + i) < 100) {
          x[((o * 8) + i)] = 1.0
        }
      }
    }
  }"""
    # a guard the inner loop cannot bound (a symbolic extent) stays where it is
    n = Var("n")
    body = For(o, 13, "serial", For(i, n, "serial", If(binop("<", o * 8 + i, 100),
                                                        Store(buf, o * 8 + i, const(1.0, F32)))))
    assert "\n".join(stmt_lines(version_guards(body))) == "\n".join(stmt_lines(body))


def test_pack_array_matches_the_packed_reads() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 70), np.float32)  # [K, N]
    p = pack_array(w, 1, 32)
    assert p.shape == (3, 5, 32)
    assert np.array_equal(p[1, 2, 3], w[2, 35]) and np.all(p[2, :, 6:] == 0)
    assert np.array_equal(pack_array(w.T, 0, 32), p)


def test_errors_name_the_problem() -> None:
    A = te.placeholder("A", (8, 4), F32)
    B = te.placeholder("B", (4, 8), F32)
    C = te.reduce("C", (8, 8), (4,), lambda i, j, k: A[i, k] * B[k, j], "+", 0.0)
    D = te.compute("D", (8, 8), lambda i, j: C[j, i])  # transposed: not elementwise
    s = Schedule([D], [A, B])
    with pytest.raises(ScheduleError, match="elementwise"):
        schedule_contraction(s, "D", "C", m_axis=0, n_axis=1, k_axis=0, batch_axes=[],
                             b_is_constant=True, host={"vector_bits": 512})
    assert s.trace == []  # nothing applied before the check
    with pytest.raises(ScheduleError, match="axis"):
        Schedule([D], [A, B]).pack("B", 2, 32)
    with pytest.raises(ScheduleError, match="permutation"):
        Schedule([D], [A, B]).cache_read("B", "global", ["C"], layout=[0, 0])


def test_tile_over_several_packed_blocks_stays_in_bounds() -> None:
    """A hand-written schedule whose 32-column tile spans two 16-column blocks of the packed
    weight, N ragged: each block of the tile is clamped to the padding on its own."""
    M, N, K = 10, 70, 12
    A = te.placeholder("A", (M, K), F32)
    B = te.placeholder("B", (K, N), F32)
    C = te.reduce("C", (M, N), (K,), lambda i, j, k: A[i, k] * B[k, j], "+", 0.0)
    D = te.compute("D", (M, N), lambda i, j: C[i, j] * 2.0)
    s = Schedule([D], [A, B])
    s.pack("B", 1, 16)
    jo, ji = s.split("D", "D.i1", 32)
    io, ii = s.split("D", "D.i0", 4)
    s.reorder("D", jo, io, ii, ji)
    s.set_scope("C", "local")
    s.compute_at("C", "D", io)
    cjo, cji = s.split("C", "C.i1", 16)
    s.reorder("C", "C.r0", "C.i0", cjo, cji)
    s.unroll("C", "C.i0")
    s.unroll("C", cjo)
    s.vectorize("C", cji)
    ck = CompiledKernel(s.build("mm_blocks"))
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((M, K), np.float32), rng.standard_normal((K, N), np.float32)
    np.testing.assert_allclose(ck([a, b]), 2 * (a @ b), rtol=1e-5, atol=1e-5)
    assert "min(" in str(ck.lowered)


def test_ragged_edge_of_an_unpacked_b_uses_masked_vectors() -> None:
    """N = 36 with B an activation: the edge tile's lanes past N are masked, not scalar."""
    p = MatmulProblem(20, 36, 24, batch=(2,), b_constant=False)
    _, kernel = p.build()
    ck = CompiledKernel(kernel)
    text = str(ck.lowered)
    assert "masked_load" in text and "masked_store" in text
    _check(p, ck, seed=11)
