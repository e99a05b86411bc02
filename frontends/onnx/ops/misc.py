"""Converters of the ops no other family holds: the training optimizers (Adagrad, Adam,
Momentum of ai.onnx.preview.training), CumProd, BitCast, TensorScatter, DeformConv, MaxRoiPool,
TfIdfVectorizer and NonMaxSuppression.

The optimizers are elementwise update formulas composed from IR ops, one set per optimized tensor.
TensorScatter is a scatter_elements whose indices are built from write_indices. NonMaxSuppression's
output shape depends on the box and score values, so it needs them known at import time (the
backend specializes on them) and its result is computed here, following ONNX's reference.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from compiler.ir import Value
from compiler.ir import dtypes as dt
from compiler.ir.types import normalize_axis

from ..importer import NodeContext, converter, ir_dtype

TRAINING = "ai.onnx.preview.training"


def _scalar(ctx: NodeContext, like: Value, value: Any) -> Value:
    """A rank-0 constant holding value in like's dtype."""
    return ctx.const(np.asarray(value).astype(like.dtype.np_dtype))


# ---------------------------------------------------------------------------------------------
# training optimizers: inputs R, T, then per state kind one input per optimized tensor


def _optimizer_inputs(ctx: NodeContext, kinds: int) -> tuple[Value, Value, list[list[Value]]]:
    """R, T as the optimized tensors' float dtype, and the tensors grouped per optimized tensor:
    [[X1, G1, ...], [X2, G2, ...]] from the input order X1, X2, G1, G2, ...."""
    rest = [ctx.input(i) for i in range(2, len(ctx.inputs))]
    if not rest or len(rest) % kinds:
        raise ctx.error(f"needs R, T and {kinds} inputs per optimized tensor, got "
                        f"{len(ctx.inputs)} inputs")
    n = len(rest) // kinds
    groups = [[rest[k * n + i] for k in range(kinds)] for i in range(n)]
    x = groups[0][0]
    if not x.dtype.is_float:
        raise ctx.error(f"optimized tensors must be float, got {x.dtype}")
    r, t = ctx.input(0), ctx.input(1)
    r = r if r.dtype is x.dtype else ctx.op("cast", r, to=x.dtype)
    return r, t, groups


def _float_attr(ctx: NodeContext, name: str, default: Optional[float] = None) -> float:
    value = ctx.attr(name, default)
    if value is None:
        raise ctx.error(f"attribute '{name}' is required")
    return float(value)


def _regularized(ctx: NodeContext, x: Value, g: Value, norm_coefficient: float) -> Value:
    """G + norm_coefficient * X, the gradient of the L2 term added."""
    return ctx.op("add", ctx.op("mul", _scalar(ctx, x, norm_coefficient), x), g)


@converter("Adagrad", since=1, domain=TRAINING)
def adagrad(ctx: NodeContext) -> list[Value]:
    r, t, groups = _optimizer_inputs(ctx, 3)
    norm = _float_attr(ctx, "norm_coefficient", 0.0)
    decay = _float_attr(ctx, "decay_factor", 0.0)
    eps = _float_attr(ctx, "epsilon", 1e-6)
    # r / (1 + T * decay_factor)
    tf = ctx.op("cast", t, to=r.dtype)
    rate = ctx.op("div", r, ctx.op("add", _scalar(ctx, r, 1),
                                   ctx.op("mul", tf, _scalar(ctx, r, decay))))
    xs, hs = [], []
    for x, g, h in groups:
        g = _regularized(ctx, x, g, norm)
        h_new = ctx.op("add", h, ctx.op("mul", g, g))
        denom = ctx.op("add", ctx.op("sqrt", h_new), _scalar(ctx, x, eps))
        xs.append(ctx.op("sub", x, ctx.op("div", ctx.op("mul", rate, g), denom)))
        hs.append(h_new)
    return xs + hs


@converter("Adam", since=1, domain=TRAINING)
def adam(ctx: NodeContext) -> list[Value]:
    r, t, groups = _optimizer_inputs(ctx, 4)
    alpha = _float_attr(ctx, "alpha", 0.9)
    beta = _float_attr(ctx, "beta", 0.999)
    eps = _float_attr(ctx, "epsilon", 1e-6)
    norm = _float_attr(ctx, "norm_coefficient", 0.0)
    norm_post = _float_attr(ctx, "norm_coefficient_post", 0.0)
    # T > 0: R * sqrt(1 - beta**T) / (1 - alpha**T) (bias correction), else R
    one = _scalar(ctx, r, 1)
    tf = ctx.op("cast", t, to=r.dtype)
    corrected = ctx.op("div", ctx.op("mul", r, ctx.op("sqrt", ctx.op(
        "sub", one, ctx.op("pow", _scalar(ctx, r, beta), tf)))),
        ctx.op("sub", one, ctx.op("pow", _scalar(ctx, r, alpha), tf)))
    rate = ctx.op("where", ctx.op("gt", t, _scalar(ctx, t, 0)), corrected, r)
    xs, vs, hs = [], [], []
    for x, g, v, h in groups:
        g = _regularized(ctx, x, g, norm)
        v_new = ctx.op("add", ctx.op("mul", _scalar(ctx, x, alpha), v),
                       ctx.op("mul", _scalar(ctx, x, 1 - alpha), g))
        h_new = ctx.op("add", ctx.op("mul", _scalar(ctx, x, beta), h),
                       ctx.op("mul", _scalar(ctx, x, 1 - beta), ctx.op("mul", g, g)))
        denom = ctx.op("add", ctx.op("sqrt", h_new), _scalar(ctx, x, eps))
        x_new = ctx.op("sub", x, ctx.op("mul", rate, ctx.op("div", v_new, denom)))
        xs.append(ctx.op("mul", _scalar(ctx, x, 1 - norm_post), x_new) if norm_post else x_new)
        vs.append(v_new)
        hs.append(h_new)
    return xs + vs + hs


@converter("Momentum", since=1, domain=TRAINING)
def momentum(ctx: NodeContext) -> list[Value]:
    r, t, groups = _optimizer_inputs(ctx, 3)
    alpha = _float_attr(ctx, "alpha")
    beta = _float_attr(ctx, "beta")
    norm = _float_attr(ctx, "norm_coefficient")
    mode = ctx.attr("mode")
    if mode not in ("standard", "nesterov"):
        raise ctx.error(f"attribute mode = {mode!r} is not supported (ONNX defines 'standard' "
                        "and 'nesterov')")
    # the gradient's coefficient is 1 in the first iteration (T == 0)
    beta_t = ctx.op("where", ctx.op("gt", t, _scalar(ctx, t, 0)), _scalar(ctx, r, beta),
                    _scalar(ctx, r, 1))
    xs, vs = [], []
    for x, g, v in groups:
        g = _regularized(ctx, x, g, norm)
        v_new = ctx.op("add", ctx.op("mul", _scalar(ctx, x, alpha), v), ctx.op("mul", beta_t, g))
        step = v_new if mode == "standard" else \
            ctx.op("add", g, ctx.op("mul", _scalar(ctx, x, alpha), v_new))
        xs.append(ctx.op("sub", x, ctx.op("mul", r, step)))
        vs.append(v_new)
    return xs + vs


# ---------------------------------------------------------------------------------------------
# CumProd, BitCast


@converter("CumProd", since=26)
def cumprod(ctx: NodeContext) -> Value:
    axis = ctx.require_known(1, "axis")
    if axis.size != 1:
        raise ctx.error(f"input 1 (axis) must hold one value, got shape {list(axis.shape)}")
    return ctx.op("cumprod", ctx.input(0), axis=int(axis.reshape(-1)[0]),
                  exclusive=bool(ctx.attr("exclusive", 0)), reverse=bool(ctx.attr("reverse", 0)))


@converter("BitCast", since=26)
def bitcast(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    to = ir_dtype(ctx.attr("to"), f"BitCast node '{ctx.node.name}' attribute to")
    if to.bits != x.dtype.bits:
        raise ctx.error(f"attribute to = {to} has {to.bits} bits, the input {x.dtype} "
                        f"{x.dtype.bits}; BitCast needs equal widths")
    return x if to is x.dtype else ctx.op("bitcast", x, to=to)


# ---------------------------------------------------------------------------------------------
# TensorScatter: a KV-cache update, scatter_elements along the sequence axis


@converter("TensorScatter", since=24)
def tensor_scatter(ctx: NodeContext) -> Value:
    cache, update = ctx.input(0), ctx.input(1)
    rank = cache.type.rank
    mode = ctx.attr("mode", "linear")
    if mode not in ("linear", "circular"):
        raise ctx.error(f"attribute mode = {mode!r} is not supported (ONNX defines 'linear' and "
                        "'circular')")
    axis = normalize_axis(ctx.attr("axis", -2), rank, "TensorScatter axis")
    if axis == 0:
        raise ctx.error("attribute axis = 0 is the batch axis; the sequence axis must follow it")
    if update.type.rank != rank:
        raise ctx.error(f"update {update.type} must have the rank of past_cache {cache.type}")
    seq = update.shape[axis]
    ones = [1] * rank
    # write position of update[..., s, ...] in batch b: write_indices[b] + s
    if isinstance(seq, int):
        steps = ctx.const(np.arange(seq, dtype=np.int64))
    else:
        steps = ctx.op("cumsum", ctx.op("full", shape=[seq], value=1.0, dtype=dt.i64), axis=0,
                       exclusive=True)
    steps = ctx.op("reshape", steps, shape=ones[:axis] + [seq] + ones[axis + 1:])
    index = steps
    if ctx.has_input(2):
        starts = ctx.input(2)
        if starts.type.rank != 1:
            raise ctx.error(f"write_indices must be [batch], got {starts.type}")
        index = ctx.op("add", ctx.op("reshape", starts, shape=[starts.shape[0]] + ones[1:]), steps)
    if mode == "circular":
        length = cache.shape[axis]
        period = ctx.const(np.asarray(length, np.int64)) if isinstance(length, int) else \
            ctx.op("shape_of", cache, start=axis, end=axis + 1)
        index = ctx.op("mod", index, period)
    index = ctx.op("broadcast_to", index, shape=list(update.shape))
    return ctx.op("scatter_elements", cache, index, update, axis=axis)


# ---------------------------------------------------------------------------------------------
# DeformConv, TfIdfVectorizer


@converter("DeformConv", since=19)
def deform_conv(ctx: NodeContext) -> Value:
    x, w, offset = ctx.input(0), ctx.input(1), ctx.input(2)
    d = x.type.rank - 2
    kernel = ctx.attr("kernel_shape")
    if kernel is not None and list(kernel) != list(w.shape[2:]):
        raise ctx.error(f"attribute kernel_shape = {list(kernel)} differs from the weight's "
                        f"kernel {list(w.shape[2:])}")
    bias = ctx.input(3) if ctx.has_input(3) else None
    mask = ctx.input(4) if ctx.has_input(4) else None
    if mask is not None and bias is None:  # the IR's optional operands are trailing
        m = w.shape[0]
        if not isinstance(m, int):
            raise ctx.error(f"a mask without bias needs a static output channel count, got "
                            f"{w.type}")
        bias = ctx.const(np.zeros(m, x.dtype.np_dtype))
    operands = [x, w, offset] + [v for v in (bias, mask) if v is not None]
    return ctx.op("deform_conv", *operands, strides=list(ctx.attr("strides", [1] * d)),
                  pads=list(ctx.attr("pads", [0] * 2 * d)),
                  dilations=list(ctx.attr("dilations", [1] * d)),
                  groups=int(ctx.attr("group", 1)), offset_groups=int(ctx.attr("offset_group", 1)))


@converter("MaxRoiPool", since=1)
def max_roi_pool(ctx: NodeContext) -> Value:
    x, rois = ctx.input(0), ctx.input(1)
    pooled = ctx.attr("pooled_shape")
    if pooled is None or len(pooled) != 2:
        raise ctx.error(f"attribute pooled_shape must hold 2 sizes, got {pooled}")
    if rois.dtype is not x.dtype:
        rois = ctx.op("cast", rois, to=x.dtype)
    return ctx.op("max_roi_pool", x, rois, pooled_shape=list(pooled),
                  spatial_scale=float(ctx.attr("spatial_scale", 1.0)))


@converter("TfIdfVectorizer", since=9)
def tfidf_vectorizer(ctx: NodeContext) -> Value:
    if ctx.attr("pool_strings"):
        raise ctx.error("attribute pool_strings: string n-grams have no IR type (only "
                        "pool_int64s is supported)")
    pool = ctx.attr("pool_int64s")
    if not pool:
        raise ctx.error("attribute pool_int64s is required")
    mode = ctx.attr("mode")
    if mode not in ("TF", "IDF", "TFIDF"):
        raise ctx.error(f"attribute mode = {mode!r} is not supported (ONNX defines 'TF', 'IDF' "
                        "and 'TFIDF')")
    return ctx.op("tfidf_vectorizer", ctx.input(0), mode=mode,
                  min_gram_length=int(ctx.attr("min_gram_length")),
                  max_gram_length=int(ctx.attr("max_gram_length")),
                  max_skip_count=int(ctx.attr("max_skip_count")), pool=list(pool),
                  ngram_counts=list(ctx.attr("ngram_counts")),
                  ngram_indexes=list(ctx.attr("ngram_indexes")),
                  weights=list(ctx.attr("weights", [])))


# ---------------------------------------------------------------------------------------------
# NonMaxSuppression: computed at import time from known inputs


@converter("NonMaxSuppression", since=10)
def non_max_suppression(ctx: NodeContext) -> Value:
    center = int(ctx.attr("center_point_box", 0))
    if center not in (0, 1):
        raise ctx.error(f"attribute center_point_box = {center} is not supported (0: corners "
                        "[y1, x1, y2, x2], 1: [x_center, y_center, width, height])")
    what = ["boxes", "scores", "max_output_boxes_per_class", "iou_threshold", "score_threshold"]
    missing = [i for i in range(len(what)) if ctx.has_input(i) and ctx.known(i) is None]
    if missing:
        raise ctx.needs_constant(
            f"input(s) {', '.join(what[i] for i in missing)}: the number of selected boxes "
            "depends on their values, so they must be known when importing",
            *[ctx.inputs[i] for i in missing])
    values = [ctx.known(i) for i in range(len(what))]
    boxes, scores = values[0], values[1]
    if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.ndim != 3 or \
            scores.shape[0] != boxes.shape[0] or scores.shape[2] != boxes.shape[1]:
        raise ctx.error(f"boxes must be [batch, boxes, 4] and scores [batch, classes, boxes], got "
                        f"{list(boxes.shape)} and {list(scores.shape)}")
    first = [None if v is None or v.size == 0 else v.reshape(-1)[0] for v in values[2:]]
    max_out = 0 if first[0] is None else max(int(first[0]), 0)
    iou = np.float32(0) if first[1] is None else first[1]
    score = first[2]
    return ctx.const(non_max_suppression_reference(boxes, scores, max_out, iou, score, center))


def non_max_suppression_reference(boxes: np.ndarray, scores: np.ndarray, max_out: int,
                                  iou_threshold: Any, score_threshold: Any,
                                  center_point_box: int) -> np.ndarray:
    """ONNX NonMaxSuppression: per batch and class, boxes in order of decreasing score (ties:
    lower index first), those not above score_threshold dropped (None: none dropped), each kept
    unless its IoU with an already kept box of that class is greater than iou_threshold, at most
    max_out per class. Returns [selected, 3] int64 rows (batch, class, box)."""
    selected: list[tuple[int, int, int]] = []
    for b in range(boxes.shape[0]):
        corners = _box_corners(boxes[b], center_point_box)
        for c in range(scores.shape[1]):
            s = scores[b, c]
            order = np.argsort(-s, kind="stable")
            if score_threshold is not None:
                order = order[s[order] > score_threshold]
            kept: list[int] = []
            for i in order:
                if len(kept) >= max_out:
                    break
                if not any(_suppresses(corners, int(i), k, iou_threshold) for k in kept):
                    kept.append(int(i))
                    selected.append((b, c, int(i)))
    return np.asarray(selected, np.int64).reshape(-1, 3)


def _box_corners(boxes: np.ndarray, center_point_box: int) -> np.ndarray:
    """[boxes, 4] as (x_min, x_max, y_min, y_max), computed in the boxes' dtype as ONNX does."""
    if center_point_box:
        half_w, half_h = boxes[:, 2] / 2, boxes[:, 3] / 2
        return np.stack([boxes[:, 0] - half_w, boxes[:, 0] + half_w,
                         boxes[:, 1] - half_h, boxes[:, 1] + half_h], 1)
    return np.stack([np.minimum(boxes[:, 1], boxes[:, 3]), np.maximum(boxes[:, 1], boxes[:, 3]),
                     np.minimum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 0], boxes[:, 2])],
                    1)


def _suppresses(corners: np.ndarray, i: int, j: int, iou_threshold: Any) -> bool:
    """Whether box j, already kept, suppresses box i: their IoU is greater than the threshold
    (boxes that do not overlap, or have no area, never suppress)."""
    x1a, x2a, y1a, y2a = corners[i]
    x1b, x2b, y1b, y2b = corners[j]
    ix = min(x2a, x2b) - max(x1a, x1b)
    iy = min(y2a, y2b) - max(y1a, y1b)
    if ix <= 0 or iy <= 0:
        return False
    inter = ix * iy
    area_a, area_b = (x2a - x1a) * (y2a - y1a), (x2b - x1b) * (y2b - y1b)
    union = area_a + area_b - inter
    if inter <= 0 or area_a <= 0 or area_b <= 0 or union <= 0:
        return False
    return bool(inter / union > iou_threshold)


# --- ai.onnx.ml: the numeric ones ------------------------------------------------------------------

@converter("Binarizer", domain="ai.onnx.ml")
def binarizer(ctx: NodeContext) -> Value:
    x = ctx.input(0)
    threshold = ctx.const(np.asarray(ctx.attr("threshold", 0.0), dtype=x.dtype.np_dtype))
    return ctx.op("cast", ctx.op("gt", x, threshold), to=x.dtype)  # 1 where x > threshold


@converter("ArrayFeatureExtractor", domain="ai.onnx.ml")
def array_feature_extractor(ctx: NodeContext) -> Value:
    """Gather along the last axis with the indices flattened; a 1-D input gives one row (as ONNX
    Runtime and ONNX's reference do)."""
    x, idx = ctx.input(0), ctx.input(1)
    n = 1
    for d in idx.shape:
        if not isinstance(d, int):
            raise ctx.error(f"indices need a static shape, got {idx.type}")
        n *= d
    flat = ctx.op("reshape", idx, shape=[n])
    out = ctx.op("gather", x, flat, axis=-1)
    return ctx.op("reshape", out, shape=[1, n]) if x.type.rank == 1 else out
