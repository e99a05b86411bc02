"""Real architectures from `transformers` (random weights, no downloads) for tests and benchmarks:
GPT-2, BERT, a Llama-style decoder (grouped-query attention, rotary embeddings) and a ResNet, in
small configs (2 layers, hidden 256) by default, and GPT-2 base for import/compile timings.
Each is wrapped to return one tensor. Needs the `transformers` package (a test extra)."""
from __future__ import annotations

import warnings
from typing import Callable

import torch

HIDDEN, LAYERS, VOCAB, SEQ = 256, 2, 1000, 16


class _Logits(torch.nn.Module):
    """Returns logits / last hidden state instead of transformers' output dataclass."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        for key in ("logits", "last_hidden_state"):
            if hasattr(out, key):
                return getattr(out, key)
        return out[0]


def gpt2(layers: int = LAYERS, hidden: int = HIDDEN, heads: int = 4, vocab: int = VOCAB):
    from transformers import GPT2Config, GPT2LMHeadModel
    cfg = GPT2Config(n_layer=layers, n_embd=hidden, n_head=heads, vocab_size=vocab,
                     n_positions=1024, use_cache=False, bos_token_id=vocab - 1,
                     eos_token_id=vocab - 1)
    return _Logits(GPT2LMHeadModel(cfg)), _ids(vocab)


def bert():
    from transformers import BertConfig, BertModel
    cfg = BertConfig(num_hidden_layers=LAYERS, hidden_size=HIDDEN, num_attention_heads=4,
                     intermediate_size=4 * HIDDEN, vocab_size=VOCAB, use_cache=False)
    return _Logits(BertModel(cfg, add_pooling_layer=False)), _ids(VOCAB)


def llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(num_hidden_layers=LAYERS, hidden_size=HIDDEN, num_attention_heads=8,
                      num_key_value_heads=2, intermediate_size=2 * HIDDEN, vocab_size=VOCAB,
                      use_cache=False)
    return _Logits(LlamaForCausalLM(cfg)), _ids(VOCAB)


def resnet():
    from transformers import ResNetConfig, ResNetModel
    cfg = ResNetConfig(embedding_size=32, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 1, 1],
                       layer_type="basic")
    return _Logits(ResNetModel(cfg)), (torch.randn(1, 3, 64, 64),)


def _ids(vocab: int):
    return (torch.randint(0, vocab, (1, SEQ)),)


def gpt2_base():
    """GPT-2 base: 12 layers, hidden 768, 12 heads, vocabulary 50257 (124M parameters)."""
    model, _ = gpt2(layers=12, hidden=768, heads=12, vocab=50257)
    return model, (torch.randint(0, 50257, (1, 128)),)


MODELS: dict[str, Callable] = {"gpt2": gpt2, "bert": bert, "llama": llama, "resnet": resnet}
LARGE: dict[str, Callable] = {"gpt2-base": gpt2_base}


def build(name: str, seed: int = 0):
    """(model in eval mode, example inputs), deterministic for a seed."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, inputs = {**MODELS, **LARGE}[name]()
    return model.eval(), inputs


def to_onnx(model: torch.nn.Module, inputs, path: str) -> None:
    """Export with torch.onnx (the torch.export-based exporter)."""
    import logging
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, path, dynamo=True, verbose=False)
