"""Transformer converters: Attention (opset 23+: grouped-query heads, past key/values, masks,
causal and sliding windows, softcap) and RotaryEmbedding, built from matmul/softmax IR ops."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from compiler.ir import Value
from compiler.ir import dtypes as dt
from compiler.ir.types import Dim

from ..importer import NodeContext, converter, ir_dtype
from .nn import _as_dtype, _scalar


@converter("RotaryEmbedding", since=23)
def rotary_embedding(ctx: NodeContext) -> Value:
    """Rotate the first rotary_embedding_dim features of each head by the cached angles:
    halves (or interleaved pairs) (x1, x2) -> (cos*x1 - sin*x2, sin*x1 + cos*x2)."""
    x, cos, sin = ctx.input(0), ctx.input(1), ctx.input(2)
    rank = x.type.rank
    if rank == 3:
        heads = int(ctx.attr("num_heads", 0))
        hidden = x.shape[2]
        if not heads or not isinstance(hidden, int) or hidden % heads:
            raise ctx.error(f"3-D X {x.type} needs attribute num_heads dividing its last dim")
        xs = ctx.op("reshape", x, shape=[x.shape[0], x.shape[1], heads, hidden // heads])
        head_axis = 2  # [B, S, H, D]: the caches [B, S, D/2] broadcast after unsqueeze(2)
    elif rank == 4:
        xs, head_axis = x, 1  # [B, H, S, D]: caches unsqueeze(1)
    else:
        raise ctx.error(f"input X must have rank 3 or 4, got {x.type}")
    head = xs.shape[3]
    if not isinstance(head, int):
        raise ctx.error(f"needs a static head size, got {x.type}")
    rot = int(ctx.attr("rotary_embedding_dim", 0)) or head
    half = rot // 2
    if ctx.has_input(3):
        pos = ctx.input(3)
        cos, sin = ctx.op("gather", cos, pos, axis=0), ctx.op("gather", sin, pos, axis=0)
    if cos.shape[-1] != half:
        raise ctx.error(f"cos_cache {cos.type} must end in rotary_embedding_dim/2 = {half}")
    cos, sin = (ctx.op("unsqueeze", _as_dtype(ctx, c, x), axes=[head_axis]) for c in (cos, sin))
    interleaved = bool(ctx.attr("interleaved", 0))
    step = 2 if interleaved else 1
    x1 = ctx.op("slice", xs, starts=[0], ends=[rot if interleaved else half], axes=[3],
                steps=[step])
    x2 = ctx.op("slice", xs, starts=[1 if interleaved else half], ends=[rot], axes=[3],
                steps=[step])
    real = ctx.op("sub", ctx.op("mul", cos, x1), ctx.op("mul", sin, x2))
    imag = ctx.op("add", ctx.op("mul", sin, x1), ctx.op("mul", cos, x2))
    if interleaved:
        pairs = ctx.op("concat", ctx.op("unsqueeze", real, axes=[4]),
                       ctx.op("unsqueeze", imag, axes=[4]), axis=4)
        rotated = ctx.op("reshape", pairs, shape=[*xs.shape[:3], rot])
    else:
        rotated = ctx.op("concat", real, imag, axis=3)
    if rot < head:
        rest = ctx.op("slice", xs, starts=[rot], ends=[head], axes=[3])
        rotated = ctx.op("concat", rotated, rest, axis=3)
    return rotated if rank == 4 else ctx.op("reshape", rotated, shape=list(x.shape))


def _heads_first(ctx: NodeContext, t: Value, heads: int, what: str) -> Value:
    """[B, S, heads*D] -> [B, heads, S, D]."""
    hidden = t.shape[2]
    if not heads or not isinstance(hidden, int) or hidden % heads:
        raise ctx.error(f"3-D {what} {t.type} needs num_heads attributes dividing its last dim")
    t = ctx.op("reshape", t, shape=[t.shape[0], t.shape[1], heads, hidden // heads])
    return ctx.op("transpose", t, perm=[0, 2, 1, 3])


def _repeat_heads(ctx: NodeContext, t: Value, reps: int) -> Value:
    """[B, H, S, D] -> [B, H*reps, S, D], each head repeated reps times (grouped-query)."""
    if reps == 1:
        return t
    b, h, s, d = t.shape
    wide = ctx.op("broadcast_to", ctx.op("unsqueeze", t, axes=[2]), shape=[b, h, reps, s, d])
    return ctx.op("reshape", wide, shape=[b, h * reps, s, d])  # type: ignore[operator]


def _bias_from_allowed(ctx: NodeContext, allowed: Value, like: Value) -> Value:
    """0 where allowed, -inf elsewhere, in like's dtype."""
    return ctx.op("where", allowed, _scalar(ctx, 0.0, like), _scalar(ctx, -np.inf, like))


@converter("Attention", since=23)
def attention(ctx: NodeContext) -> list[Optional[Value]]:
    """softmax(Q K^T * scale [softcapped] + bias) V with the bias summed from attn_mask (bool:
    0/-inf; float: added), the offset-aware causal mask, sliding windows and nonpad_kv_seqlen
    padding; rows with every key masked give zeros. Grouped-query K/V heads are repeated;
    past_key/past_value are concatenated in front (present_* outputs)."""
    q, k, v = ctx.input(0), ctx.input(1), ctx.input(2)
    rank = q.type.rank
    if rank not in (3, 4) or k.type.rank != rank or v.type.rank != rank:
        raise ctx.error(f"Q, K, V must all be 3-D or 4-D, got {q.type}, {k.type}, {v.type}")
    if rank == 3:
        q_heads, kv_heads = int(ctx.attr("q_num_heads", 0)), int(ctx.attr("kv_num_heads", 0))
        q = _heads_first(ctx, q, q_heads, "Q")
        k = _heads_first(ctx, k, kv_heads, "K")
        v = _heads_first(ctx, v, kv_heads, "V")
    v = _as_dtype(ctx, v, q)
    if ctx.has_input(4) != ctx.has_input(5):
        raise ctx.error("past_key and past_value must be given together")
    if ctx.has_input(4):
        k = ctx.op("concat", ctx.input(4), k, axis=2)
        v = ctx.op("concat", ctx.input(5), v, axis=2)
    present_k, present_v = k, v
    nonpad = ctx.input(6) if ctx.has_input(6) else None
    if nonpad is not None and ctx.has_input(4):
        raise ctx.error("nonpad_kv_seqlen cannot be combined with past_key/past_value")
    b, hq, sq, head = q.shape
    hk, skv = k.shape[1], k.shape[2]
    if not isinstance(head, int) or not isinstance(hq, int) or not isinstance(hk, int) or \
            hq % hk:
        raise ctx.error(f"needs static head counts (Q heads a multiple of K/V heads) and head "
                        f"size, got Q {q.type}, K {k.type}")
    scale = ctx.attr("scale")
    scale = 1.0 / math.sqrt(head) if scale is None else float(scale)
    root = _scalar(ctx, math.sqrt(scale), q)  # Q and K are each scaled by sqrt(scale)
    k = _repeat_heads(ctx, k, hq // hk)
    v = _repeat_heads(ctx, v, hq // hk)
    scores = ctx.op("matmul", ctx.op("mul", q, root),
                    ctx.op("transpose", ctx.op("mul", k, root), perm=[0, 1, 3, 2]))
    softcap = float(ctx.attr("softcap", 0.0))
    if softcap > 0:
        capped = ctx.op("tanh", ctx.op("div", scores, _scalar(ctx, softcap, scores)))
        scores = ctx.op("mul", capped, _scalar(ctx, softcap, scores))
    qk_out = scores  # modes 0 and 1 (the reference reports the softcapped product for both)

    biases: list[Value] = []
    past = ctx.input(4).shape[2] if ctx.has_input(4) else 0
    if ctx.has_input(3):
        mask = ctx.input(3)
        short = skv - mask.shape[-1] if isinstance(skv, int) and \
            isinstance(mask.shape[-1], int) else 0
        if short > 0:  # a shorter mask: the missing keys are masked out
            pads = [0] * (2 * mask.type.rank)
            pads[-1] = short
            fill = 0.0 if mask.dtype is dt.bool_ else -np.inf
            mask = ctx.op("pad", mask, pads=pads, value=fill)
        biases.append(_bias_from_allowed(ctx, mask, q) if mask.dtype is dt.bool_
                      else _as_dtype(ctx, mask, q))
    left, right = int(ctx.attr("left_window_size", -1)), int(ctx.attr("right_window_size", -1))
    causal = bool(ctx.attr("is_causal", 0))
    if causal or left >= 0 or right >= 0:
        biases += _position_biases(ctx, q, skv, nonpad, past, causal, left, right)
    if nonpad is not None:
        if not isinstance(skv, int):
            raise ctx.error(f"nonpad_kv_seqlen needs a static key length, got K {k.type}")
        keys = ctx.const(np.arange(skv, dtype=nonpad.dtype.np_dtype))
        valid = ctx.op("lt", keys, ctx.op("reshape", nonpad, shape=[-1, 1, 1, 1]))
        biases.append(_bias_from_allowed(ctx, valid, q))
    bias = None
    for term in biases:
        bias = term if bias is None else ctx.op("add", bias, term)
    logits = scores if bias is None else ctx.op("add", scores, bias)
    mode = int(ctx.attr("qk_matmul_output_mode", 0))
    if mode == 2:
        qk_out = logits
    precision = ctx.attr("softmax_precision")
    work = ir_dtype(int(precision), "Attention softmax_precision") if precision else q.dtype
    if work is not q.dtype:
        logits = ctx.op("cast", logits, to=work)
    probs = ctx.op("softmax", logits, axis=-1)
    if bias is not None and _may_mask_rows(ctx, bias):
        row_max = ctx.op("reduce_max", bias, axes=[-1], keepdims=True)
        empty = ctx.op("isinf", row_max, detect_positive=False)
        probs = ctx.op("where", empty, _scalar(ctx, 0.0, probs), probs)
    probs = _as_dtype(ctx, probs, q)
    if mode == 3:
        qk_out = probs
    elif mode not in (0, 1, 2):
        raise ctx.error(f"attribute qk_matmul_output_mode={mode} is not 0, 1, 2 or 3")
    y = ctx.op("matmul", probs, v)  # [B, Hq, Sq, Dv]
    if rank == 3:
        dv = y.shape[3]
        y = ctx.op("reshape", ctx.op("transpose", y, perm=[0, 2, 1, 3]),
                   shape=[b, sq, hq * dv])  # type: ignore[operator]
    return [y, present_k, present_v, qk_out]


def _position_biases(ctx: NodeContext, q: Value, skv: Dim, nonpad: Optional[Value], past: Dim,
                     causal: bool, left: int, right: int) -> list[Value]:
    """The causal and sliding-window bias over (query i, key j). Query i sits at absolute
    position i + offset: offset is the past length, or nonpad_kv_seqlen - q length per batch.
    Key j is visible iff (causal) j <= i + offset and, for each bound >= 0,
    i + offset - left <= j <= i + offset + right."""
    sq = q.shape[2]
    static = isinstance(sq, int) and isinstance(skv, int)
    if nonpad is None and isinstance(past, int) and not static:
        if left >= 0 or right >= 0:
            raise ctx.error("sliding windows need static query and key lengths")
        ones = ctx.op("full", shape=[sq, skv], value=1.0, dtype=q.dtype)
        allowed = ctx.op("ne", ctx.op("trilu", ones, upper=False, k=past), _scalar(ctx, 0, q))
        return [_bias_from_allowed(ctx, allowed, q)]
    if not static or not isinstance(past, int):
        raise ctx.error(f"causal/window masks with nonpad_kv_seqlen need static query and key "
                        f"lengths, got {sq} and {skv}")
    diff = np.arange(sq)[:, None] - np.arange(skv)[None, :]  # i - j, before the offset
    if nonpad is None:
        d = diff + past
        allowed = np.ones(d.shape, dtype=bool)
        if causal:
            allowed &= d >= 0
        if left >= 0:
            allowed &= d <= left
        if right >= 0:
            allowed &= -d <= right
        return [_bias_from_allowed(ctx, ctx.const(allowed), q)]
    itype = nonpad.dtype.np_dtype
    offset = ctx.op("sub", ctx.op("reshape", nonpad, shape=[-1, 1, 1]),
                    ctx.const(np.asarray(sq, dtype=itype)))
    d = ctx.op("add", ctx.const(diff.astype(itype)), offset)  # [B, Sq, Skv]
    conds = []
    if causal:
        conds.append(ctx.op("ge", d, ctx.const(np.asarray(0, dtype=itype))))
    if left >= 0:
        conds.append(ctx.op("le", d, ctx.const(np.asarray(left, dtype=itype))))
    if right >= 0:
        conds.append(ctx.op("ge", d, ctx.const(np.asarray(-right, dtype=itype))))
    allowed = conds[0]
    for c in conds[1:]:
        allowed = ctx.op("and", allowed, c)
    return [_bias_from_allowed(ctx, ctx.op("unsqueeze", allowed, axes=[1]), q)]


def _may_mask_rows(ctx: NodeContext, bias: Value) -> bool:
    """Whether some row of the bias could be all -inf (always, unless the bias is known)."""
    known = ctx.known_value(bias)
    if known is None:
        return True
    return bool(np.any(np.all(np.isneginf(known), axis=-1)))
