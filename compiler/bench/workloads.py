"""The models `python -m compiler bench MODEL` measures, as PyTorch modules with example inputs,
and their ONNX files (exported once with torch.onnx's dynamo exporter, cached on disk; int8
variants quantized by ONNX Runtime's quantize_static in the QDQ format).

    matmul      fp32 a @ b, 1024x1024 times 1024x1024 (--batch sets the rows of a)
    mlp         Linear 1024->4096, GELU, Linear 4096->1024 on a batch of 64
    gpt2-base   GPT-2 base, 12 layers, hidden 768, sequence 128, batch 1
    bert-base   BERT base, 12 layers, hidden 768, sequence 128, batch 1
    gpt2, bert, llama, resnet
                the small configs of compiler/bench/models.py (2 layers, hidden 256, sequence 16;
                ResNet on 64x64 images)
    mlp-int8, gpt2-int8
                mlp and the small GPT-2 (2 layers) quantized: QDQ, per-channel weights, calibrated
                on a few random batches
Weights are random (seeded), never downloaded.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import warnings
from typing import Callable, Optional

import numpy as np
import torch

DEFAULT_WORKDIR = os.path.join(os.path.expanduser("~"), ".cache", "dlcompiler", "bench")
CALIBRATION_BATCHES = 4


@dataclasses.dataclass
class Workload:
    """One benchmark model: the float PyTorch module, its inputs, and what the figures mean."""
    name: str
    description: str
    model: torch.nn.Module
    inputs: tuple[torch.Tensor, ...]
    batch: int
    seq: Optional[int]                       # None: the model has no sequence length
    flops: Optional[float] = None            # per run, for GFLOP/s
    int8: bool = False                       # also quantize to QDQ and run that
    make_inputs: Optional[Callable[[int], tuple[torch.Tensor, ...]]] = None  # seed -> inputs

    def key(self) -> str:
        """Names the cached ONNX file: model, shapes, library versions and a weight fingerprint,
        so a changed config or seed never reuses a stale export."""
        from importlib.metadata import version
        h = hashlib.sha1()
        for name, t in self.model.state_dict().items():
            flat = t.detach().reshape(-1)
            h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
            h.update(flat[:64].contiguous().numpy().tobytes())
        for x in self.inputs:
            h.update(f"{tuple(x.shape)}{x.dtype}".encode())
        h.update(f"{torch.__version__}{version('transformers')}".encode())
        base = self.name.removesuffix("-int8")
        seq = f"-s{self.seq}" if self.seq is not None else ""
        return f"{base}-b{self.batch}{seq}-{h.hexdigest()[:12]}"


class MatMul(torch.nn.Module):
    """a @ b with both operands given at run time (as torch.matmul is timed)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


def _mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(),
                               torch.nn.Linear(4096, 1024))


def _bert_base() -> torch.nn.Module:
    from transformers import BertConfig, BertModel

    from .models import _Logits
    return _Logits(BertModel(BertConfig(use_cache=False), add_pooling_layer=False))


def _token_inputs(vocab: int, batch: int, seq: int) -> Callable[[int], tuple[torch.Tensor, ...]]:
    def make(seed: int) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(seed)
        return (torch.randint(0, vocab, (batch, seq), generator=g),)
    return make


def _normal_inputs(*shapes: tuple[int, ...]) -> Callable[[int], tuple[torch.Tensor, ...]]:
    def make(seed: int) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(seed)
        return tuple(torch.randn(s, generator=g) for s in shapes)
    return make


NAMES = ("matmul", "mlp", "gpt2-base", "bert-base", "gpt2", "bert", "llama", "resnet",
         "mlp-int8", "gpt2-int8")


def make(name: str, batch: Optional[int] = None, seq: Optional[int] = None,
         seed: int = 0) -> Workload:
    """Build a workload by name (see the module docstring) in eval mode, deterministic for a
    seed; batch and seq override the defaults."""
    from . import models
    if name not in NAMES:
        raise KeyError(f"unknown model '{name}'; models: {', '.join(NAMES)}")
    base = name.removesuffix("-int8")
    torch.manual_seed(seed)
    flops = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if base == "matmul":
            m = batch or 1024
            model, make_inputs, seq = MatMul(), _normal_inputs((m, 1024), (1024, 1024)), None
            flops = 2.0 * m * 1024 * 1024
            desc = f"fp32 matmul {m}x1024 @ 1024x1024"
        elif base == "mlp":
            b = batch or 64
            model, make_inputs, seq = _mlp(), _normal_inputs((b, 1024)), None
            flops = 2.0 * b * 1024 * 4096 * 2
            desc = f"MLP 1024->4096 (GELU) ->1024, batch {b}"
        elif base == "resnet":
            model, _ = models.build("resnet", seed)
            model, make_inputs, seq = model, _normal_inputs((batch or 1, 3, 64, 64)), None
            desc = f"ResNet (small: 4 stages, 32..256 channels), {batch or 1}x3x64x64"
        else:
            if base == "gpt2-base":
                model, _ = models.build("gpt2-base", seed)
                vocab, seq, desc = 50257, seq or 128, "GPT-2 base (12 layers, hidden 768)"
            elif base == "bert-base":
                model, vocab = _bert_base().eval(), 30522
                seq, desc = seq or 128, "BERT base (12 layers, hidden 768)"
            else:  # gpt2, bert, llama: the small configs
                model, _ = models.build(base, seed)
                vocab, seq = models.VOCAB, seq or models.SEQ
                desc = f"{base} small ({models.LAYERS} layers, hidden {models.HIDDEN})"
            make_inputs = _token_inputs(vocab, batch or 1, seq)
            desc += f", batch {batch or 1}, sequence {seq}"
    if name.endswith("-int8"):
        desc += "; int8 QDQ (per-channel, static)"
    inputs = make_inputs(seed)
    return Workload(name, desc, model.eval(), inputs, batch=inputs[0].shape[0], seq=seq,
                    flops=flops, int8=name.endswith("-int8"), make_inputs=make_inputs)


def onnx_file(w: Workload, workdir: Optional[str] = None) -> tuple[str, bool]:
    """The float model as ONNX (exported once, then reused): (path, reused). Each export is a
    folder <workdir>/<key>/ holding model.onnx and the weights file the exporter writes."""
    import shutil

    from .models import to_onnx
    root = workdir or DEFAULT_WORKDIR
    folder = os.path.join(root, w.key())
    path = os.path.join(folder, "model.onnx")
    if os.path.exists(path):
        return path, True
    os.makedirs(root, exist_ok=True)
    tmp = f"{folder}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    quiet = logging.getLogger("onnxscript")  # its constant folder logs what it cannot fold
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        to_onnx(w.model, w.inputs, os.path.join(tmp, "model.onnx"))
        try:
            os.rename(tmp, folder)  # whole exports only, also with concurrent runs
        except OSError:  # another run finished first
            if not os.path.exists(path):
                raise
    finally:
        quiet.setLevel(level)
        shutil.rmtree(tmp, ignore_errors=True)
    return path, False


def qdq_file(w: Workload, float_path: str) -> tuple[str, bool]:
    """ONNX Runtime's quantize_static of the float file (QDQ, per-channel weights), calibrated on
    CALIBRATION_BATCHES random batches (seeds 1000...): (path, reused)."""
    path = os.path.join(os.path.dirname(float_path), f"qdq{CALIBRATION_BATCHES}.onnx")
    if os.path.exists(path):
        return path, True
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    names = onnx_input_names(float_path)
    batches = iter([w.make_inputs(1000 + i) for i in range(CALIBRATION_BATCHES)])

    class Reader(CalibrationDataReader):
        def get_next(self) -> Optional[dict[str, np.ndarray]]:
            xs = next(batches, None)
            return None if xs is None else {n: x.numpy() for n, x in zip(names, xs)}

    tmp = path + f".tmp{os.getpid()}.onnx"
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "please consider pre-processing before quantization"
    try:
        quantize_static(float_path, tmp, Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True)
    finally:
        root.setLevel(level)
    os.replace(tmp, path)
    return path, False


def onnx_input_names(path: str) -> list[str]:
    import onnx
    graph = onnx.load(path, load_external_data=False).graph
    inits = {t.name for t in graph.initializer}
    return [i.name for i in graph.input if i.name not in inits]


def output_step(path: str) -> Optional[float]:
    """The quantization step of a QDQ model's first output: the scale of the DequantizeLinear
    producing it, when that scale is one number; else None."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(path).graph
    inits = {t.name: t for t in graph.initializer}
    out = graph.output[0].name
    node = next((n for n in graph.node if out in n.output), None)
    if node is None or node.op_type != "DequantizeLinear" or node.input[1] not in inits:
        return None
    scale = numpy_helper.to_array(inits[node.input[1]])
    return float(scale) if scale.size == 1 else None
