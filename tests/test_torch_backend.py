"""compiler.torch_backend under torch.compile: results equal eager PyTorch on fresh random inputs;
weights are bound as constants (and re-bound when they change); graphs the compiler cannot take
run eagerly with a warning naming the cause; autograd calls run eagerly."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import compiler
from compiler.torch_backend import CompiledGraph, TorchBackendWarning, make_torch_backend

TARGET = "llvm"  # later also "llvm"


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def recording(target: str = TARGET, **options):
    """A backend that also keeps the CompiledGraph objects it made."""
    graphs: list[CompiledGraph] = []
    backend = make_torch_backend(target=target, **options)

    def compile_graph(gm, example_inputs):
        g = backend(gm, example_inputs)
        graphs.append(g)
        return g
    return compile_graph, graphs


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.LayerNorm(64),
                               torch.nn.Linear(64, 8)).eval()


def test_exported_from_the_package():
    import sys
    assert compiler.torch_backend is sys.modules["compiler.torch_backend"].torch_backend
    assert callable(compiler.make_torch_backend(target=TARGET))


def test_mlp_matches_eager_and_weights_are_constants():
    model = mlp()
    backend, graphs = recording()
    fast = torch.compile(model, backend=backend)
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TorchBackendWarning)
        with torch.inference_mode():
            for _ in range(3):
                x = torch.from_numpy(rng.standard_normal((5, 32)).astype(np.float32))
                torch.testing.assert_close(fast(x), model(x), rtol=1e-5, atol=1e-6)
    assert len(graphs) == 1
    g = graphs[0]
    assert g.eager_reason is None and len(g.compiled) == 1
    assert len(g.frozen) == 6 and len(g.runtime) == 1  # 3 layers' weights and biases, x
    (entry,) = g.compiled.values()
    assert entry.module.target == TARGET
    assert [tuple(t.shape) for t in entry.module.input_types] == [(5, 32)]


def test_unfrozen_weights_are_inputs():
    model = mlp()
    backend, graphs = recording(freeze=False)
    fast = torch.compile(model, backend=backend)
    x = torch.randn(4, 32)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-5, atol=1e-6)
    (g,) = graphs
    assert g.frozen == [] and len(g.runtime) == 7
    (entry,) = g.compiled.values()
    assert len(entry.module.input_types) == 7


def test_changed_weights_are_bound_again():
    model = mlp()
    fast = torch.compile(model, backend=make_torch_backend(target=TARGET))
    x = torch.randn(4, 32)
    with torch.no_grad():
        before = fast(x)
        model[3].weight.mul_(2.0)  # in place: the tensor's version changes
        after = fast(x)
        torch.testing.assert_close(after, model(x), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(before, after)


def test_shape_change_compiles_per_shape():
    model = mlp()
    backend, graphs = recording()
    fast = torch.compile(model, backend=backend)
    with torch.no_grad():
        for n in (2, 7, 3):  # a second shape makes Dynamo pass the batch as a SymInt
            x = torch.randn(n, 32)
            torch.testing.assert_close(fast(x), model(x), rtol=1e-5, atol=1e-6)
    assert all(g.eager_reason is None for g in graphs)
    assert sum(len(g.compiled) for g in graphs) == 3


def test_tiny_gpt2_matches_eager():
    from compiler.bench import models
    model, (ids,) = models.build("gpt2")
    backend, graphs = recording()
    fast = torch.compile(model, backend=backend)
    with torch.inference_mode():
        for seed in (0, 1):
            ids = torch.randint(0, models.VOCAB, (1, models.SEQ),
                                generator=torch.Generator().manual_seed(seed))
            got, want = fast(ids), model(ids)
            assert got.shape == want.shape == (1, models.SEQ, models.VOCAB)
            err = (torch.linalg.norm(got - want) / torch.linalg.norm(want)).item()
            assert err < 1e-5, err
    assert graphs and all(g.eager_reason is None and g.compiled for g in graphs)


def test_unsupported_op_falls_back_with_a_warning_naming_it():
    class Sorts(torch.nn.Module):
        def forward(self, x):
            return torch.sort(x, dim=-1, stable=True).values * 2 + torch.special.i0e(x)

    model = Sorts()
    backend, graphs = recording()
    fast = torch.compile(model, backend=backend)
    x = torch.randn(3, 5)
    with pytest.warns(TorchBackendWarning, match="eagerly in PyTorch") as record:
        got = fast(x)
    torch.testing.assert_close(got, model(x))
    message = str(record[0].message)
    assert "i0e" in message, message
    assert graphs[0].eager_reason is not None
    with warnings.catch_warnings():  # warned once, then silently eager
        warnings.simplefilter("error", TorchBackendWarning)
        torch.testing.assert_close(fast(x + 1), model(x + 1))


def test_unavailable_target_falls_back():
    model = mlp()
    fast = torch.compile(model, backend=make_torch_backend(target="cuda"))
    x = torch.randn(2, 32)
    with pytest.warns(TorchBackendWarning, match="target 'cuda' has no code generator"):
        with torch.no_grad():
            torch.testing.assert_close(fast(x), model(x))


def test_autograd_calls_run_eagerly():
    model = mlp().train(False)
    fast = torch.compile(model, backend=make_torch_backend(target=TARGET))
    x = torch.randn(3, 32, requires_grad=True)
    with pytest.warns(TorchBackendWarning, match="runs eagerly"):
        y = fast(x)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_outputs_share_memory_with_numpy_results():
    """Outputs come back through torch.from_numpy: no copy of what the module returned."""
    from compiler.torch_backend import _to_numpy, _to_torch
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = _to_torch(a)
    a[0, 0] = 42
    assert t[0, 0].item() == 42
    x = torch.randn(4, 5)
    view = _to_numpy(x)
    x[1, 2] = 7.0
    assert view[1, 2] == 7.0
    r = _to_torch(a[::-1])  # negative strides: torch cannot view them, so a copy
    np.testing.assert_array_equal(r.numpy(), a[::-1])
