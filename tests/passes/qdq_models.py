"""Models for the rewrite-qdq tests: small PyTorch models exported to ONNX and quantized by ONNX
Runtime's `quantize_static` in the QDQ format (per-channel weights), and QDQ graphs built in the
IR: one random quantized contraction layer, or any graph with quantize/dequantize pairs inserted
after its values (calibrated on one run, as a static quantizer does)."""
from __future__ import annotations

import logging
from typing import Optional

import numpy as np

from compiler import ir
from compiler.ir import Module, Op, TensorType, Value
from compiler.ir import dtypes as dt
from compiler.ir.interpreter import run_function

# --- ONNX Runtime QDQ models ---------------------------------------------------------------------


def small_cnn():
    """conv/relu/max_pool/conv/relu/flatten/linear on 8 images of 3x16x16."""
    import torch

    class SmallCNN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.c2 = torch.nn.Conv2d(8, 16, 3, padding=1, stride=2)
            self.fc = torch.nn.Linear(16 * 4 * 4, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
            return self.fc(torch.flatten(torch.relu(self.c2(x)), 1))

    torch.manual_seed(0)
    return SmallCNN().eval(), (torch.randn(8, 3, 16, 16),)


def export(name: str, path: str) -> None:
    """Export "cnn" (small_cnn) or "gpt2" (compiler/bench/models.py's small GPT-2) to ONNX."""
    from compiler.bench import models
    model, inputs = small_cnn() if name == "cnn" else models.build(name)
    models.to_onnx(model, inputs, path)


def random_feed(model_path: str, seed: int) -> dict[str, np.ndarray]:
    """Fresh random inputs for a model: normal floats, token ids below 1000."""
    import onnx
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in onnx.load(model_path, load_external_data=False).graph.input:
        t = inp.type.tensor_type
        shape = [d.dim_value for d in t.shape.dim]
        if t.elem_type == onnx.TensorProto.INT64:
            feeds[inp.name] = rng.integers(0, 1000, shape).astype(np.int64)
        else:
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def quantize_qdq(src: str, dst: str, samples: int = 8) -> None:
    """quantize_static(QuantFormat.QDQ, per_channel=True), calibrated on random inputs."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class RandomReader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([random_feed(src, 1000 + i) for i in range(samples)])

        def get_next(self) -> Optional[dict[str, np.ndarray]]:
            return next(self.feeds, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "please consider pre-processing" warnings
    try:
        quantize_static(src, dst, RandomReader(), quant_format=QuantFormat.QDQ, per_channel=True)
    finally:
        root.setLevel(level)


def ort_run(path: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def output_scale(path: str) -> float:
    """The scale of the DequantizeLinear that produces the model's (first) output."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    node = next(n for n in m.graph.node if m.graph.output[0].name in n.output)
    assert node.op_type == "DequantizeLinear", node.op_type
    return float(inits[node.input[1]])


# --- IR: one random quantized contraction layer -------------------------------------------------

KINDS = ("matmul", "matmul3d", "matmul_act", "gemm", "linear", "conv1d", "conv2d")
WITH_BIAS = ("gemm", "linear", "conv1d", "conv2d")


def qdq_layer(seed: int, kind: str, weights: str, bias: str, quantized_out: bool
              ) -> tuple[Module, list[np.ndarray], float]:
    """dequantize(x) -> contraction(dequantize(w) or float w [, bias]) [-> quantize], as ONNX
    Runtime writes it. weights: "dq" (dequantize of an int8 constant), "float" (that constant
    folded to f32, reaching +-127 per channel as ONNX Runtime's symmetric weights do), "q"
    (dequantize(quantize(float constant))); bias: "none", "exact" (an int32
    multiple of s_x * s_w, folded to f32), "dq" (dequantize of int32), "float" (any floats).
    Returns the module, its inputs and an error bound for its float output (0 when quantized)."""
    rng = np.random.default_rng(seed)
    m = Module("layer")
    f = ir.FunctionBuilder(m, "main")
    xdt = np.dtype(np.uint8) if rng.random() < 0.5 else np.dtype(np.int8)
    info = np.iinfo(xdt)
    k = int(rng.integers(1, 24))
    n = int(rng.integers(1, 9))
    conv = kind.startswith("conv")
    if conv:
        d = 1 if kind == "conv1d" else 2
        groups = int(rng.choice([1, 2])) if n % 2 == 0 else 1
        c = groups * int(rng.integers(1, 4))
        kernel = [int(rng.integers(1, 4)) for _ in range(d)]
        x_shape = [int(rng.integers(1, 3)), c] + [int(rng.integers(3, 7)) for _ in range(d)]
        w_shape = [n, c // groups] + kernel
        attrs = {"strides": [int(rng.integers(1, 3))] * d,
                 "pads": [int(rng.integers(0, 2))] * 2 * d, "groups": groups}
        w_axis = 0
    elif kind == "matmul3d":
        x_shape, w_shape, w_axis, attrs = [2, int(rng.integers(1, 5)), k], [k, n], 1, {}
    elif kind == "linear":
        x_shape, w_shape, w_axis, attrs = [int(rng.integers(1, 4)), 3, k], [n, k], 0, {}
    elif kind == "gemm":
        trans_a, trans_b = bool(rng.random() < 0.3), bool(rng.random() < 0.5)
        m_ = int(rng.integers(1, 5))
        x_shape = [k, m_] if trans_a else [m_, k]
        w_shape = [n, k] if trans_b else [k, n]
        w_axis, attrs = (0 if trans_b else 1), {"trans_a": trans_a, "trans_b": trans_b}
    else:
        x_shape, w_shape, w_axis, attrs = [int(rng.integers(1, 5)), k], [k, n], 1, {}
    x_scale = np.float32(rng.uniform(0.005, 0.05))
    x_zp = np.asarray(rng.integers(info.min, info.max, endpoint=True) // 2, xdt)
    xq = rng.integers(info.min, info.max, x_shape, endpoint=True).astype(xdt)
    inputs = [xq]
    xv = f.dequantize(f.arg("x", TensorType(tuple(x_shape), dt.dtype(xdt))),
                      f.constant(x_scale, "x_scale"), f.constant(x_zp, "x_zero_point"))

    # the second operand: an activation (both dequantized, per tensor) or a weight
    if kind == "matmul_act":
        yq = rng.integers(-128, 127, w_shape, endpoint=True).astype(np.int8)
        inputs.append(yq)
        w_scale = np.float32(rng.uniform(0.005, 0.05))
        wv = f.dequantize(f.arg("y", TensorType(tuple(w_shape), dt.i8)),
                          f.constant(w_scale, "y_scale"))
        w_max = 128.0 * float(w_scale)
    else:
        per_channel = rng.random() < 0.7
        wq = rng.integers(-127, 127, w_shape, endpoint=True).astype(np.int8)
        count = w_shape[w_axis]
        w_scale = rng.uniform(0.002, 0.02, count if per_channel else ()).astype(np.float32)
        w_zp = (rng.integers(-20, 20, w_scale.shape).astype(np.int8) if rng.random() < 0.3
                else np.zeros(w_scale.shape, np.int8))
        if weights == "float":  # ONNX Runtime's symmetric weights: +-127 in every channel
            w_zp[...] = 0
            first = [0] * len(w_shape)
            for c in range(count if per_channel else 1):
                first[w_axis] = c
                wq[tuple(first)] = 127 if rng.random() < 0.5 else -127
        deq = ir.get_op("dequantize").reference(wq, w_scale, w_zp, axis=w_axis)
        if weights == "float":
            wv = f.constant(deq, "w")
        elif weights == "q":
            s, z = f.constant(w_scale, "w_scale"), f.constant(w_zp, "w_zero_point")
            wv = f.dequantize(f.quantize(f.constant(deq, "w"), s, z, axis=w_axis), s, z,
                              axis=w_axis)
        else:
            wv = f.dequantize(f.constant(wq, "w_q"), f.constant(w_scale, "w_scale"),
                              f.constant(w_zp, "w_zero_point"), axis=w_axis)
        w_max = float(np.abs(deq).max())
    acc_scale = (x_scale * np.asarray(w_scale, np.float32)).astype(np.float32)

    operands = [xv, wv]
    if bias != "none" and kind in WITH_BIAS:
        bq = rng.integers(-5000, 5000, n).astype(np.int32)
        bscale = np.broadcast_to(acc_scale, (n,)).astype(np.float32)
        if bias == "dq":
            operands.append(f.dequantize(f.constant(bq, "b_q"), f.constant(bscale, "b_scale"),
                                         axis=0))
        elif bias == "exact":
            operands.append(f.constant((bq.astype(np.float32) * bscale).astype(np.float32), "b"))
        else:
            operands.append(f.constant(rng.uniform(-1, 1, n).astype(np.float32), "b"))
    op = {"matmul3d": "matmul", "matmul_act": "matmul", "conv1d": "conv",
          "conv2d": "conv"}.get(kind, kind)
    y = f.op(op, *operands, **attrs)
    terms = int(np.prod(w_shape[1:])) if conv else k
    x_max = float(x_scale) * float(info.max - info.min)
    bound = 2.0 * terms * 2.0**-24 * (terms * x_max * w_max + 1.0) + float(acc_scale.max())
    if quantized_out:
        # calibrate: the output scale from the float result's range
        fn = f.ret(y)
        (ref,) = ir.interpret(m, *inputs)
        y_scale = np.float32(max(float(np.abs(ref).max()), 1e-3) / 100.0)
        ydt = np.int8 if rng.random() < 0.5 else np.uint8
        y_zp = np.asarray(0 if ydt == np.int8 else 128, ydt)
        fn.outputs = [f.quantize(y, f.constant(y_scale, "y_scale"),
                                 f.constant(y_zp, "y_zero_point"))]
        return m, inputs, 0.0
    f.ret(y)
    return m, inputs, bound


# --- IR: quantize/dequantize pairs after every value --------------------------------------------

SHARED_PARAMS = frozenset({  # ops whose output keeps the input's parameters (ONNX Runtime's rule)
    "reshape", "transpose", "squeeze", "unsqueeze", "flatten", "slice", "identity",
    "broadcast_to", "tile", "reverse", "depth_to_space", "space_to_depth", "split", "gather",
    "gather_elements", "gather_nd", "concat", "max_pool", "relu"})


def insert_qdq(module: Module, inputs: list[np.ndarray], seed: int) -> Module:
    """`module` with quantize -> dequantize after each f32 argument and op result, with
    per-tensor i8/u8 parameters calibrated on one run with `inputs`. Data-movement ops reuse
    their input's parameters, as ONNX Runtime's quantizer does."""
    rng = np.random.default_rng(seed)
    fn = module.main
    seen: dict[Value, np.ndarray] = dict(zip(fn.args, inputs))

    def observe(op: Op, results: list[np.ndarray]) -> None:
        seen.update(zip(op.results, results))
    run_function(module, fn, inputs, observer=observe)

    ops: list[Op] = []
    mapping: dict[Value, Value] = {}
    params: dict[Value, tuple[Value, Value]] = {}  # dequantized value -> its (scale, zp)

    def const(arr: np.ndarray, name: str) -> Value:
        op = Op("constant", [], [TensorType(arr.shape, dt.dtype(arr.dtype))],
                {"name": module.add_constant(arr, name)})
        ops.append(op)
        return op.result

    def add(name: str, operands: list[Value], **attrs) -> Value:
        opdef = ir.get_op(name)
        attrs = opdef.normalize_attrs(attrs)
        op = Op(name, operands, opdef.infer([v.type for v in operands], attrs), attrs)
        ops.append(op)
        return op.result

    def qdq(v: Value, shared: Optional[tuple[Value, Value]]) -> None:
        arr = seen.get(v)
        if v.dtype != dt.f32 or arr is None or arr.size == 0 or not np.all(np.isfinite(arr)):
            return
        if shared is None:
            lo, hi = min(float(arr.min()), 0.0), max(float(arr.max()), 0.0)
            if rng.random() < 0.5:
                span = max(hi - lo, 1e-3)
                scale, zp = span / 255.0, np.uint8(round(-lo / span * 255))
            else:
                scale, zp = max(-lo, hi, 1e-3) / 127.0, np.int8(0)
            shared = (const(np.asarray(scale, np.float32), "s"), const(np.asarray(zp), "z"))
        q = add("quantize", [v, *shared])
        mapping[v] = add("dequantize", [q, *shared])
        params[mapping[v]] = shared

    for a in fn.args:
        qdq(a, None)
    for op in fn.ops:
        op.operands = [mapping.get(v, v) for v in op.operands]
        ops.append(op)
        if op.name in ("constant", "quantize", "dequantize"):
            continue
        shared = params.get(op.operands[0]) if op.name in SHARED_PARAMS and op.operands else None
        for r in op.results:
            qdq(r, shared)
    fn.ops = ops
    fn.outputs = [mapping.get(v, v) for v in fn.outputs]
    return module


def count_ops(module: Module) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in module.ops():
        counts[op.name] = counts.get(op.name, 0) + 1
    return counts


def dequantize_feeding_contractions(module: Module) -> list[Op]:
    """Contractions that still read a dequantize (what rewrite-qdq leaves float)."""
    return [op for op in module.ops() if op.name in ("matmul", "gemm", "linear", "conv")
            and any(v.owner is not None and v.owner.name == "dequantize" for v in op.operands)]

