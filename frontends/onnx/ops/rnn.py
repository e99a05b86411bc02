"""RNN, GRU and LSTM converters: unrolled over the static sequence length into IR ops, every
direction, ONNX's activation functions, clip, peepholes, initial states and sequence_lens."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from compiler.ir import Value
from compiler.ir.types import Dim

from ..importer import NodeContext, converter
from .nn import _scalar

# activation name -> default (alpha, beta); None where the function takes no such parameter
_ACT_PARAMS: dict[str, tuple[Optional[float], Optional[float]]] = {
    "relu": (None, None), "tanh": (None, None), "sigmoid": (None, None),
    "softsign": (None, None), "softplus": (None, None), "affine": (1.0, 0.0),
    "leakyrelu": (0.01, None), "thresholdedrelu": (1.0, None), "scaledtanh": (1.0, 1.0),
    "hardsigmoid": (0.2, 0.5), "elu": (1.0, None),
}

Activation = Callable[[Value], Value]


def _activation(ctx: NodeContext, name: str, alpha: Optional[float],
                beta: Optional[float]) -> Activation:
    def lin(x: Value, a: float, b: float) -> Value:
        return ctx.op("add", ctx.op("mul", x, _scalar(ctx, a, x)), _scalar(ctx, b, x))

    kind = name.lower()
    table: dict[str, Activation] = {
        "relu": lambda x: ctx.op("relu", x),
        "tanh": lambda x: ctx.op("tanh", x),
        "sigmoid": lambda x: ctx.op("sigmoid", x),
        "softplus": lambda x: ctx.op("softplus", x),
        "softsign": lambda x: ctx.op("div", x, ctx.op("add", ctx.op("abs", x),
                                                      _scalar(ctx, 1.0, x))),
        "affine": lambda x: lin(x, alpha, beta),  # type: ignore[arg-type]
        "leakyrelu": lambda x: ctx.op("leaky_relu", x, alpha=alpha),
        "thresholdedrelu": lambda x: ctx.op("where", ctx.op("gt", x, _scalar(ctx, alpha, x)),
                                            x, _scalar(ctx, 0.0, x)),
        "scaledtanh": lambda x: ctx.op("mul", ctx.op("tanh", lin(x, beta, 0.0)),  # type: ignore
                                       _scalar(ctx, alpha, x)),  # type: ignore[arg-type]
        "hardsigmoid": lambda x: ctx.op("clip", lin(x, alpha, beta), min=0.0,  # type: ignore
                                        max=1.0),
        "elu": lambda x: ctx.op("elu", x, alpha=alpha),
    }
    if kind not in table:
        raise ctx.error(f"activation {name!r} is not supported; supported: "
                        f"{', '.join(sorted(table))}")
    return table[kind]


def _activations(ctx: NodeContext, defaults: list[str], dirs: int) -> list[list[Activation]]:
    """Per direction, the activation functions (f, g, h order), with alpha/beta consumed in
    order by the functions that take them."""
    names = list(ctx.attr("activations") or []) or defaults * dirs
    if len(names) != len(defaults) * dirs:
        raise ctx.error(f"attribute activations={names} must list {len(defaults) * dirs} "
                        "functions")
    alphas = [float(a) for a in ctx.attr("activation_alpha") or []]
    betas = [float(b) for b in ctx.attr("activation_beta") or []]
    fns: list[Activation] = []
    for name in names:
        da, db = _ACT_PARAMS.get(name.lower(), (None, None))
        a = (alphas.pop(0) if alphas else da) if da is not None else None
        b = (betas.pop(0) if betas else db) if db is not None else None
        fns.append(_activation(ctx, name, a, b))
    n = len(defaults)
    return [fns[i * n:(i + 1) * n] for i in range(dirs)]


def _per_direction(ctx: NodeContext, v: Value, dirs: int) -> list[Value]:
    """[dirs, ...] -> one [...] value per direction."""
    if dirs == 1:
        return [ctx.op("squeeze", v, axes=[0])]
    parts = ctx.op("split", v, axis=0, sizes=[1] * dirs)
    return [ctx.op("squeeze", p, axes=[0]) for p in parts]


def _split(ctx: NodeContext, v: Value, n: int, axis: int = -1) -> list[Value]:
    size = v.shape[axis]
    if not isinstance(size, int) or size % n:
        raise ctx.error(f"cannot split {v.type} into {n} gates")
    return list(ctx.op("split", v, axis=axis, sizes=[size // n] * n))


def _recurrent(ctx: NodeContext, kind: str) -> list[Optional[Value]]:
    """Unroll RNN/GRU/LSTM: the input projection of all steps is one matmul, then each step
    adds the recurrent matmul and applies the gates. sequence_lens masks steps past each
    sequence's end (state kept, output zero), which also makes reverse directions start at
    each sequence's last element."""
    x, w, r = ctx.input(0), ctx.input(1), ctx.input(2)
    layout = int(ctx.attr("layout", 0))
    if x.type.rank != 3:
        raise ctx.error(f"input X must have rank 3, got {x.type}")
    if layout:
        x = ctx.op("transpose", x, perm=[1, 0, 2])
    seq, batch = x.shape[0], x.shape[1]
    if not isinstance(seq, int):
        raise ctx.error(f"needs a static sequence length to unroll, got X {x.type}")
    hidden = int(ctx.attr("hidden_size", 0)) or r.shape[-1]
    direction = str(ctx.attr("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ctx.error(f"attribute direction={direction!r} is not forward, reverse or "
                        "bidirectional")
    dirs = 2 if direction == "bidirectional" else 1
    defaults = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"],
                "LSTM": ["Sigmoid", "Tanh", "Tanh"]}[kind]
    acts = _activations(ctx, defaults, dirs)
    clip = ctx.attr("clip")
    before_reset = bool(ctx.attr("linear_before_reset", 0))
    input_forget = bool(ctx.attr("input_forget", 0))

    def state_input(i: int) -> list[Optional[Value]]:
        if not ctx.has_input(i):
            return [None] * dirs
        v = ctx.input(i)
        return _per_direction(ctx, ctx.op("transpose", v, perm=[1, 0, 2]) if layout else v, dirs)

    def zeros(shape: list[Dim]) -> Value:
        if all(isinstance(s, int) for s in shape):
            return ctx.const(np.zeros(shape, dtype=x.dtype.np_dtype))
        return ctx.op("full", shape=shape, value=0.0, dtype=x.dtype)

    init_h, init_c = state_input(5), state_input(6) if kind == "LSTM" else [None] * dirs
    mask_steps: Optional[list[Value]] = None
    if ctx.has_input(4):
        lens = ctx.known(4)
        if lens is None or np.any(lens != seq):
            lens_v = ctx.input(4)
            mask_steps = [ctx.op("unsqueeze", ctx.op("lt", ctx.const(np.asarray(
                t, dtype=lens_v.dtype.np_dtype)), lens_v), axes=[1]) for t in range(seq)]
    ws, rs = _per_direction(ctx, w, dirs), _per_direction(ctx, r, dirs)
    bs = _per_direction(ctx, ctx.input(3), dirs) if ctx.has_input(3) else [None] * dirs
    ps = _per_direction(ctx, ctx.input(7), dirs) if kind == "LSTM" and ctx.has_input(7) \
        else [None] * dirs

    def pre(v: Value) -> Value:  # clip is applied to the inputs of the activations
        return v if clip is None else ctx.op("clip", v, min=-float(clip), max=float(clip))

    ys, hs, cs = [], [], []
    for d in range(dirs):
        f = acts[d]
        xw = ctx.op("matmul", x, ctx.op("transpose", ws[d], perm=[1, 0]))  # [seq, batch, g]
        rec_bias: Optional[Value] = None
        if bs[d] is not None:
            wb, rb = _split(ctx, bs[d], 2)
            if kind == "GRU":  # Rb of the hidden gate stays inside the reset product
                rb_zr, rec_bias = ctx.op("split", rb, axis=0, sizes=[2 * hidden, hidden])
                rb = ctx.op("concat", rb_zr, _scalar_zeros(ctx, hidden, x), axis=0)
            xw = ctx.op("add", xw, ctx.op("add", wb, rb))
        steps = [ctx.op("squeeze", s, axes=[0])
                 for s in (ctx.op("split", xw, axis=0, sizes=[1] * seq) if seq > 1 else [xw])]
        if kind == "GRU":
            r_zr, r_h = ctx.op("split", rs[d], axis=0, sizes=[2 * hidden, hidden])
            rt = ctx.op("transpose", r_zr, perm=[1, 0])
            rht = ctx.op("transpose", r_h, perm=[1, 0])
        else:
            rt = ctx.op("transpose", rs[d], perm=[1, 0])
        peep = _split(ctx, ps[d], 3) if ps[d] is not None else None
        h = init_h[d] if init_h[d] is not None else zeros([batch, hidden])
        c = init_c[d] if init_c[d] is not None else zeros([batch, hidden])
        outs: list[Optional[Value]] = [None] * seq
        reverse = direction == "reverse" or d == 1
        for t in (reversed(range(seq)) if reverse else range(seq)):
            xt = steps[t]
            if kind == "RNN":
                h_new, c_new = f[0](pre(ctx.op("add", xt, ctx.op("matmul", h, rt)))), c
            elif kind == "GRU":
                xz, xr, xh = _split(ctx, xt, 3)
                hz, hr = _split(ctx, ctx.op("matmul", h, rt), 2)
                z = f[0](pre(ctx.op("add", xz, hz)))
                rg = f[0](pre(ctx.op("add", xr, hr)))
                if before_reset:
                    hh = ctx.op("matmul", h, rht)
                    if rec_bias is not None:
                        hh = ctx.op("add", hh, rec_bias)
                    hh = ctx.op("mul", rg, hh)
                else:
                    hh = ctx.op("matmul", ctx.op("mul", rg, h), rht)
                    if rec_bias is not None:
                        hh = ctx.op("add", hh, rec_bias)
                cand = f[1](pre(ctx.op("add", xh, hh)))
                one_minus_z = ctx.op("sub", _scalar(ctx, 1.0, z), z)
                h_new = ctx.op("add", ctx.op("mul", one_minus_z, cand), ctx.op("mul", z, h))
                c_new = c
            else:
                gi, go, gf, gc = _split(ctx, ctx.op("add", xt, ctx.op("matmul", h, rt)), 4)
                if peep is not None:
                    gi = ctx.op("add", gi, ctx.op("mul", peep[0], c))
                    gf = ctx.op("add", gf, ctx.op("mul", peep[2], c))
                i_g = f[0](pre(gi))
                f_g = ctx.op("sub", _scalar(ctx, 1.0, i_g), i_g) if input_forget else f[0](pre(gf))
                c_new = ctx.op("add", ctx.op("mul", f_g, c), ctx.op("mul", i_g, f[1](pre(gc))))
                if peep is not None:
                    go = ctx.op("add", go, ctx.op("mul", peep[1], c_new))
                h_new = ctx.op("mul", f[0](pre(go)), f[2](c_new))
            if mask_steps is not None:
                m = mask_steps[t]
                outs[t] = ctx.op("where", m, h_new, _scalar(ctx, 0.0, h_new))
                h = ctx.op("where", m, h_new, h)
                c = ctx.op("where", m, c_new, c) if kind == "LSTM" else c
            else:
                outs[t], h, c = h_new, h_new, c_new
        y = [ctx.op("unsqueeze", o, axes=[0]) for o in outs]  # type: ignore[arg-type]
        ys.append(ctx.op("unsqueeze", y[0] if seq == 1 else ctx.op("concat", *y, axis=0),
                         axes=[1]))
        hs.append(ctx.op("unsqueeze", h, axes=[0]))
        cs.append(ctx.op("unsqueeze", c, axes=[0]))
    y_all = ys[0] if dirs == 1 else ctx.op("concat", *ys, axis=1)  # [seq, dirs, batch, hidden]
    y_h = hs[0] if dirs == 1 else ctx.op("concat", *hs, axis=0)  # [dirs, batch, hidden]
    y_c = cs[0] if dirs == 1 else ctx.op("concat", *cs, axis=0)
    if layout:
        y_all = ctx.op("transpose", y_all, perm=[2, 0, 1, 3])
        y_h = ctx.op("transpose", y_h, perm=[1, 0, 2])
        y_c = ctx.op("transpose", y_c, perm=[1, 0, 2])
    return [y_all, y_h, y_c] if kind == "LSTM" else [y_all, y_h]


def _scalar_zeros(ctx: NodeContext, n: int, like: Value) -> Value:
    return ctx.const(np.zeros(n, dtype=like.dtype.np_dtype))


@converter("RNN", since=1)
def rnn(ctx: NodeContext) -> list[Optional[Value]]:
    return _recurrent(ctx, "RNN")


@converter("GRU", since=1)
def gru(ctx: NodeContext) -> list[Optional[Value]]:
    return _recurrent(ctx, "GRU")


@converter("LSTM", since=1)
def lstm(ctx: NodeContext) -> list[Optional[Value]]:
    return _recurrent(ctx, "LSTM")
