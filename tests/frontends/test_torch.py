"""The PyTorch frontend: small models imported with from_torch, run by the reference interpreter
on fresh random inputs and compared with the module's own output; dynamic dims, naming,
locations, folding and the errors a user sees."""
from __future__ import annotations

from typing import Any, Sequence

import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.export import Dim

from compiler.ir import interpret, parse, print_module, verify
from frontends.torch import TorchImportError, UnsupportedTorchOpsError, from_torch

RTOL = 1e-5


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _flat(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for o in out for t in _flat(o)]


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """t as NumPy (bf16 through ml_dtypes, which NumPy itself lacks)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.float().numpy().astype(ml_dtypes.bfloat16)
    return t.numpy()


def assert_close(ours: np.ndarray, ref: torch.Tensor, what: str = "") -> None:
    ref_np = to_numpy(ref)
    assert ours.shape == ref_np.shape, what
    assert ours.dtype == ref_np.dtype, what
    if ref_np.dtype.kind in "biu":
        np.testing.assert_array_equal(ours, ref_np, err_msg=what)
        return
    a, b = ours.astype(np.float64), ref_np.astype(np.float64)
    assert np.array_equal(np.isnan(a), np.isnan(b)), what
    a, b = np.nan_to_num(a, nan=0.0), np.nan_to_num(b, nan=0.0)
    err = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
    assert err < RTOL, f"{what}: relative error {err:.3g}"


def check(model: nn.Module, example: Sequence[torch.Tensor],
          fresh: Sequence[Sequence[torch.Tensor]] = (), dynamic_shapes: Any = None):
    """Import model, then compare ours with torch's on the example and on fresh inputs."""
    model.eval()
    mod = from_torch(model, tuple(example), dynamic_shapes=dynamic_shapes)
    verify(mod)
    for inputs in [example, *fresh]:
        with torch.no_grad():
            ref = _flat(model(*inputs))
        ours = interpret(mod, *[to_numpy(t) for t in inputs])
        assert len(ours) == len(ref)
        for i, (o, r) in enumerate(zip(ours, ref)):
            assert_close(o, r, f"output {i}")
    return mod


def op_names(mod) -> list[str]:
    return [op.name for op in mod.main.ops]


# --- models ---------------------------------------------------------------------------------------


class MLP(nn.Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 8)
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate=self.approximate))


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(2)
        self.fc = nn.Linear(16 * 2 * 2, 10)
        for bn in (self.bn1, self.bn2):  # non-trivial running statistics
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.avg(F.relu(self.bn2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


class Block(nn.Module):
    """GPT-style: token + position embedding, pre-LN causal self-attention and MLP, residuals."""

    def __init__(self, vocab: int = 50, d: int = 32, heads: int = 4, max_len: int = 16) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.ln1, self.ln2, self.ln_f = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * d, d))
        self.head = nn.Linear(d, vocab, bias=False)
        self.heads = heads

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        b, t = idx.shape
        x = self.tok(idx) + self.pos(torch.arange(t))
        q, k, v = self.qkv(self.ln1(x)).split(x.shape[-1], dim=-1)
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, -1))
        x = x + self.mlp(self.ln2(x))
        return self.head(self.ln_f(x))


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.rand(d) + 0.5)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class LlamaBlock(nn.Module):
    """RMSNorm, rotary embedding from cached cos/sin tables, grouped-query causal attention,
    SiLU-gated MLP."""

    def __init__(self, d: int = 32, heads: int = 4, kv_heads: int = 2, max_len: int = 32) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.hd = heads, kv_heads, d // heads
        self.norm1, self.norm2 = RMSNorm(d), RMSNorm(d)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.wv = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.w1 = nn.Linear(d, 64, bias=False)
        self.w3 = nn.Linear(d, 64, bias=False)
        self.w2 = nn.Linear(64, d, bias=False)
        inv = 1.0 / (10000 ** (torch.arange(0, self.hd, 2).float() / self.hd))
        freqs = torch.outer(torch.arange(max_len).float(), inv)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", emb.cos(), persistent=False)
        self.register_buffer("sin_cached", emb.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = self.norm1(x)
        q = self.wq(h).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.wk(h).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        v = self.wv(h).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        cos, sin = self.cos_cached[:t], self.sin_cached[:t]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.wo(y.transpose(1, 2).reshape(b, t, -1))
        h = self.norm2(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class TensorOps(nn.Module):
    """Slicing, indexing, joining, expanding, selection and ordering ops."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("idx", torch.tensor([3, 0, 2]))

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        a = x[:, 1:5] + x[:, -4:]
        b = x[..., ::2]
        c = x[:, self.idx]
        d = torch.cat([x, y], dim=1)
        e1, e2, e3 = torch.split(d, [3, 5, 6], dim=1)
        f = y[:, :1].expand(-1, 6) * e3
        g = torch.where(x > 0, x, d[:, 6:] * 0.5)
        h = torch.cumsum(x, dim=1)
        vals, inds = torch.topk(x, 3, dim=1)
        srt, order = torch.sort(y, dim=1, descending=True)
        k = torch.flip(x, [1]).masked_fill(x < -0.5, -1.0).clamp(-0.8, 0.9)
        m = torch.gather(x, 1, inds)
        n = torch.stack([x[0], x[1]], dim=0).unsqueeze(0).squeeze(0)
        p = F.pad(x, (1, 2), value=0.25).repeat(1, 2).tril(1)
        mx, amx = x.max(dim=1)
        v = x.var(dim=1, keepdim=True) + x.std(dim=0)
        s = x.select(1, 2) + x[:, -1]
        return (a, b, c, e1, e2, f, g, h, vals, inds, srt, order, k, m, n, p, mx, amx, v, s,
                x.argmin(1), y.amax(0), torch.index_select(y, 1, self.idx))


class IntBoolOps(nn.Module):
    def forward(self, i: torch.Tensor, j: torch.Tensor, mask: torch.Tensor):
        f = i * 0.5 + 1                        # int tensor with float scalar -> float
        q = torch.div(i, 3, rounding_mode="floor") + torch.div(i, 3, rounding_mode="trunc")
        r = torch.remainder(i, 4) + torch.fmod(i, 4)
        t = i / j                              # true division of ints -> float
        both = mask & (i > 0) | ~mask
        cnt = both.sum(dim=1)                  # bool sum -> i64
        w = torch.where(mask, i, j)
        c = torch.cumsum(i, dim=1)
        m = torch.maximum(i, j) - torch.minimum(i, j).abs()
        any_ = mask.any(dim=1)
        eq = (i == j) | (i >= 2)
        return f, q, r, t, both, cnt, w, c, m, any_, eq, i.to(torch.float32) * 2, mask.int() + 1


# --- numerics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_mlp_gelu(approximate: str) -> None:
    mod = check(MLP(approximate), [torch.randn(4, 16)], [[torch.randn(4, 16)]])
    assert "gelu" in op_names(mod)


def test_cnn() -> None:
    mod = check(CNN(), [torch.randn(2, 3, 16, 16)], [[torch.randn(2, 3, 16, 16)]])
    names = op_names(mod)
    for op in ("conv", "batch_norm", "relu", "max_pool", "avg_pool", "linear"):
        assert op in names, op


def test_transformer_block() -> None:
    model = Block()
    mod = check(model, [torch.randint(0, 50, (2, 8))], [[torch.randint(0, 50, (2, 8))]])
    names = op_names(mod)
    assert "softmax" in names and "layer_norm" in names and "gather" in names


def test_llama_block() -> None:
    mod = check(LlamaBlock(), [torch.randn(2, 8, 32)], [[torch.randn(2, 8, 32)]])
    assert "silu" in op_names(mod)


def test_tensor_ops() -> None:
    check(TensorOps(), [torch.randn(4, 8), torch.randn(4, 6)],
          [[torch.randn(4, 8), torch.randn(4, 6)]])


def test_int_and_bool_tensors() -> None:
    def make():
        i = torch.randint(-9, 10, (3, 5))
        j = torch.randint(1, 6, (3, 5)) * torch.where(torch.rand(3, 5) > 0.5, 1, -1)
        return [i, j, torch.rand(3, 5) > 0.5]
    check(IntBoolOps(), make(), [make()])


class Upsample(nn.Module):
    def forward(self, x: torch.Tensor):
        return (F.interpolate(x, scale_factor=2, mode="nearest"),
                F.interpolate(x, size=(9, 7), mode="bilinear", align_corners=True),
                F.interpolate(x, scale_factor=2, mode="bilinear"),
                F.pixel_shuffle(x, 2), F.adaptive_avg_pool2d(x, (3, 2)),
                F.adaptive_avg_pool2d(x, 1))


def test_upsample_and_pooling() -> None:
    check(Upsample(), [torch.randn(1, 4, 6, 4)], [[torch.randn(1, 4, 6, 4)]])


class Convs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2)
        self.c3 = nn.Conv3d(2, 4, 3, padding=1)
        self.ct = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
        self.gn = nn.GroupNorm(2, 4)

    def forward(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor):
        return (F.max_pool1d(self.c1(a), 2, ceil_mode=True), F.avg_pool3d(self.c3(b), 2),
                self.ct(self.gn(c)), F.avg_pool2d(c, 3, stride=2, padding=1))


def test_conv_variants() -> None:
    def make():
        return [torch.randn(2, 4, 11), torch.randn(1, 2, 4, 4, 4), torch.randn(2, 4, 5, 5)]
    check(Convs(), make(), [make()])


class Activations(nn.Module):
    def forward(self, x: torch.Tensor):
        return (F.silu(x), F.elu(x, 0.7), F.selu(x), F.leaky_relu(x, 0.2), F.softplus(x, beta=2),
                F.hardtanh(x, -0.5, 0.5), F.hardswish(x), torch.sigmoid(x), torch.tanh(x),
                torch.erf(x), torch.sin(x) + torch.cos(x), x.abs().sqrt(), x.abs().rsqrt(),
                x.exp(), (x.abs() + 1).log(), x.sign(), x.floor() + x.ceil() + x.round(),
                x.reciprocal(), x.pow(3), F.relu6(x * 4), torch.softmax(x, -1),
                torch.log_softmax(x, 0), torch.isnan(x.log()), torch.isinf(1 / (x * 0)),
                F.layer_norm(x, (5,)), x.clamp(min=-0.1), x.prod(1), x.sum(), x.mean(),
                x.trunc(), F.normalize(x, dim=-1), torch.logsumexp(x, 1))


def test_activations_and_math() -> None:
    check(Activations(), [torch.randn(3, 5)], [[torch.randn(3, 5)]])


class Attention(nn.Module):
    def forward(self, q, k, v, mask, bias):
        return (F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=0.3))


def test_attention_masks() -> None:
    def make():
        q, k, v = torch.randn(2, 2, 4, 8), torch.randn(2, 2, 6, 8), torch.randn(2, 2, 6, 8)
        mask = torch.rand(4, 6) > 0.3
        mask[1] = False  # a fully masked row: torch gives zeros there
        return [q, k, v, mask, torch.randn(2, 1, 4, 6)]
    check(Attention(), make(), [make()])


class Writes(nn.Module):
    """Out-of-place writes (slice_scatter, index_put with int and mask indices) and reads with
    several index tensors (gather_nd)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        z = x.clone()
        z[:, 1:3] = y[:, :2]
        z[:, 0] = 5.0
        z[::2, 3] = 1.5
        w = x.clone()
        w[torch.tensor([0, 2])] = 1.0
        v = x.clone()
        v[x > 0] = 0.0
        u = x.clone()
        u[torch.tensor([0, 1]), torch.tensor([2, 3])] += 4.0
        rows, cols = torch.tensor([[0], [2]]), torch.tensor([1, -1, 2])
        return z, w, v, u, x[rows, cols], y[:, cols][rows], torch.einsum("ij,kj->ik", x, y)


def test_writes_and_advanced_indexing() -> None:
    def make():
        return [torch.randn(3, 4), torch.randn(3, 4)]
    check(Writes(), make(), [make()])


class DTypes(nn.Module):
    def forward(self, h, b, d, i8, u8, i16, i32):
        return (h * 2 + h, (b * 2 - b).float(), d.exp(), i8 * 3, u8 + 1, i16 - i16.abs(),
                i32 // 2, h.float().sum(-1), b.relu())


def test_dtypes() -> None:
    def make():
        x = torch.randn(2, 6)
        return [x.half(), x.bfloat16(), x.double(),
                torch.randint(-20, 20, (2, 6), dtype=torch.int8),
                torch.randint(0, 200, (2, 6), dtype=torch.uint8),
                torch.randint(-99, 99, (2, 6), dtype=torch.int16),
                torch.randint(-99, 99, (2, 6), dtype=torch.int32)]
    mod = check(DTypes(), make(), [make()])
    assert [a.dtype.name for a in mod.main.args] == ["f16", "bf16", "f64", "i8", "u8", "i16", "i32"]


# --- dynamic shapes, naming, folding, locations ---------------------------------------------------


def test_dynamic_batch_and_sequence() -> None:
    model = Block().eval()
    batch, seq = Dim("batch", min=1, max=8), Dim("seq", min=2, max=16)
    mod = from_torch(model, (torch.randint(0, 50, (2, 5)),),
                     dynamic_shapes=({0: batch, 1: seq},))
    text = print_module(mod)
    assert "?batch" in text and "?seq" in text
    assert "%idx: i64[?batch,?seq]" in text
    assert mod.dim_bounds["batch"] == (1, 8) and mod.dim_bounds["seq"] == (2, 16)
    for b, t in ((3, 7), (1, 12)):
        idx = torch.randint(0, 50, (b, t))
        (ours,) = interpret(mod, idx.numpy())
        with torch.no_grad():
            assert_close(ours, model(idx))
    full = print_module(mod, inline_limit=None)
    assert print_module(parse(full), inline_limit=None) == full


def test_dynamic_llama_dims_by_name() -> None:
    model = LlamaBlock().eval()
    batch, seq = Dim("b"), Dim("t", max=32)
    mod = from_torch(model, [torch.randn(2, 8, 32)],
                     dynamic_shapes={"x": {0: batch, 1: seq}})
    assert mod.main.args[0].type.shape == ("b", "t", 32)
    assert mod.dim_bounds["b"][1] is None  # unbounded
    for b, t in ((1, 5), (3, 11)):
        x = torch.randn(b, t, 32)
        (ours,) = interpret(mod, x.numpy())
        with torch.no_grad():
            assert_close(ours, model(x))


def test_exported_program_and_fqn_names() -> None:
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3)).eval()
    ep = torch.export.export(model, (torch.randn(5, 6),))
    mod = from_torch(ep)
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= set(mod.constants)
    x = torch.randn(5, 6)
    (ours,) = interpret(mod, x.numpy())
    with torch.no_grad():
        assert_close(ours, model(x))
    # an already decomposed program (addmm of a transposed weight) imports as linear too
    mod2 = from_torch(ep.run_decompositions())
    assert op_names(mod2).count("linear") == 2 and "0.weight" in mod2.constants
    # Dim names for a program exported with dynamic shapes come from the same dynamic_shapes
    example, shapes = (torch.randn(5, 6),), ({0: Dim("rows")},)
    ep_dyn = torch.export.export(model, example, dynamic_shapes=shapes)
    assert from_torch(ep_dyn, example, shapes).main.args[0].type.shape == ("rows", 6)
    assert from_torch(ep_dyn).main.args[0].type.shape[0] != "rows"  # torch's own symbol


class Folding(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(4, 4).tril() == 0
        return x.masked_fill(mask, 0.0) + torch.arange(4.0) * 2


def test_import_time_folding_and_locations() -> None:
    mod = check(Folding(), [torch.randn(4, 4)])
    names = op_names(mod)
    assert "trilu" not in names and "eq" not in names and "range" not in names
    where = next(op for op in mod.main.ops if op.name == "where")
    assert where.loc is not None and where.loc.name.startswith("where")  # masked_fill's node
    assert where.loc.file is not None and where.loc.file.endswith("test_torch.py")
    assert where.loc.line == Folding.forward.__code__.co_firstlineno + 2


# --- errors ---------------------------------------------------------------------------------------


class Unsupported(nn.Module):
    def forward(self, x: torch.Tensor):
        return torch.fft.rfft(x).abs() + 1, x.atan() + x.atan() * 2, x[x > 0]


def test_unsupported_ops_listed_at_once() -> None:
    with pytest.raises(UnsupportedTorchOpsError) as info:
        from_torch(Unsupported(), (torch.randn(4, 8),))
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "aten._fft_r2c.default: 1 node(s)" in msg
    assert "aten.atan.default: 2 node(s) (atan, atan_1)" in msg
    assert "aten.index.Tensor: 1 node(s) (index: boolean-mask indexing" in msg
    assert msg.startswith("4 node(s) of 3 unsupported ATen op(s)")
    assert info.value.missing["aten.atan.default"] == ["atan", "atan_1"]


def test_training_mode_hint_and_bad_dtype() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))  # training mode: dropout is live
    with pytest.raises(UnsupportedTorchOpsError, match="call .eval"):
        from_torch(model, (torch.randn(2, 4),))
    with pytest.raises(TorchImportError, match="complex64 has no IR dtype"):
        from_torch(Folding(), (torch.randn(4, 4, dtype=torch.complex64),))


def test_export_failure_is_wrapped() -> None:
    model = MLP()
    with pytest.raises(TorchImportError, match="torch.export of MLP failed"):
        from_torch(model, (torch.randn(4, 16),), dynamic_shapes=({1: Dim("features")},))
    with pytest.raises(TorchImportError, match="needs example_inputs"):
        from_torch(model)


class Mutating(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("total", torch.zeros(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.total.add_(x.sum(0))
        return x * 2


def test_buffer_mutation_is_an_error() -> None:
    with pytest.raises(TorchImportError, match="mutates buffer 'total'"):
        from_torch(Mutating(), (torch.randn(2, 3),))


class MutatesInput(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x.add_(1)
        return x * 2


def test_input_mutation_is_an_error() -> None:
    with pytest.raises(TorchImportError, match="mutates user input 'x' in place"):
        from_torch(MutatesInput(), (torch.randn(2, 3),))


def test_wrong_input_shape_is_a_value_error() -> None:
    mod = from_torch(MLP().eval(), (torch.randn(4, 16),))
    with pytest.raises(ValueError, match="dim 1 is 15, expected 16"):
        interpret(mod, np.zeros((4, 15), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        interpret(mod, np.zeros((4, 16), np.float64))


def test_float8_weights_and_unsigned_dtypes_import_bit_exactly():
    from compiler.ir import dtypes as dt

    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("w8", torch.randn(4).to(torch.float8_e4m3fn))

        def forward(self, x, u):
            return x * self.w8.to(torch.float32), u.to(torch.int64) + 1

    model = Scaled().eval()
    x = torch.randn(3, 4)
    u = torch.tensor([0, 1, 7, 65534], dtype=torch.uint16)
    m = from_torch(model, example_inputs=(x, u))
    assert m.constants["w8"].dtype == dt.f8e4m3fn.np_dtype
    assert m.constants["w8"].view(np.uint8).tobytes() == model.w8.view(torch.uint8).numpy().tobytes()
    got, got_u = interpret(m, x.numpy(), u.numpy())
    want, want_u = model(x, u)
    np.testing.assert_array_equal(got, want.numpy())
    np.testing.assert_array_equal(got_u, want_u.numpy())
