"""Compile StableHLO text with jaxlib's PJRT client and run it.

The PJRT entry points used here (`xla_bridge.get_backend`, `Client.compile_and_load` of MLIR text,
`LoadedExecutable.execute`, `xla_client.batched_device_put`) are jaxlib internals, not a stable
API; pyproject pins jax/jaxlib for that reason. Arrays are uploaded with 64-bit types intact
(`enable_x64=True` per call), so jax's global x64 flag is left alone.
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Sequence

import numpy as np

from compiler.ir import dtypes as dt

from .emitter import LoweringError


class XlaUnavailable(RuntimeError):
    """jax/jaxlib is missing or has no usable backend."""


def _jax() -> Any:
    try:
        from jax._src import core, xla_bridge
        from jax.sharding import SingleDeviceSharding
        from jaxlib import xla_client
    except ImportError as e:  # pragma: no cover - jax is a hard dependency
        raise XlaUnavailable(f"target 'xla' needs jax and jaxlib ({e}); pip install "
                             "jax==0.10.2 jaxlib==0.10.2") from None
    return core, xla_bridge, SingleDeviceSharding, xla_client


def backend_for(target: str) -> tuple[Any, str]:
    """(PJRT client, platform) for a target: "xla" takes XLA's default backend (a GPU or TPU
    when jax sees one, else the CPU); "tpu" a TPU, else the CPU with a warning."""
    _, xb, _, _ = _jax()
    if target == "tpu":
        try:
            client = xb.get_backend("tpu")
            return client, "tpu"
        except RuntimeError:
            warnings.warn("target 'tpu': XLA sees no TPU here; running the TPU-shaped StableHLO "
                          "on XLA's CPU backend (for verification, not speed)", stacklevel=4)
            return xb.get_backend("cpu"), "cpu"
    client = xb.get_backend()
    return client, client.platform


class Executable:
    """A compiled StableHLO module on one device: call with NumPy arrays, get NumPy arrays."""

    def __init__(self, client: Any, text: str, weights: Sequence[np.ndarray]) -> None:
        core, _, sharding_cls, xc = _jax()
        self._core, self._xc = core, xc
        self.client = client
        self.device = client.local_devices()[0]
        self._sharding = sharding_cls(self.device)
        t0 = time.perf_counter()
        opts = xc.CompileOptions()
        try:
            self.exe = client.compile_and_load(text, xc.DeviceList((self.device,)), opts)
        except Exception as e:  # XLA names the failing op by its loc("...")
            raise LoweringError(f"XLA ({client.platform}) did not compile the StableHLO: "
                                f"{e}") from None
        self.compile_seconds = time.perf_counter() - t0
        self._weights = [self.put(w) for w in weights]  # uploaded once

    def put(self, x: np.ndarray) -> Any:
        x = np.ascontiguousarray(x)
        aval = self._core.ShapedArray(x.shape, x.dtype)
        return self._xc.batched_device_put(aval, self._sharding, [x], [self.device], True,
                                           enable_x64=True)

    def __call__(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        bufs = [self.put(a) for a in arrays] + self._weights
        outs = self.exe.execute(bufs)
        return [np.array(o) for o in outs]


def as_numpy(x: Any) -> np.ndarray:
    """A NumPy view (or copy) of an array-like: torch tensors through DLPack (bf16 through its
    bits, which NumPy's DLPack import does not take)."""
    if isinstance(x, np.ndarray):
        return x
    mod = type(x).__module__
    if mod.startswith("torch"):
        t = x.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        import torch
        if t.dtype == torch.bfloat16:
            return t.contiguous().view(torch.int16).numpy().view(dt.bf16.np_dtype)
        try:
            return np.from_dlpack(t.contiguous())
        except (TypeError, RuntimeError, BufferError):
            return t.numpy()
    if hasattr(x, "__dlpack__") and not isinstance(x, (list, tuple)):
        try:
            return np.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError):
            pass
    return np.asarray(x)
