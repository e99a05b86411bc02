"""Random valid samples for the data-movement ops (see tests/ir/samples/__init__.py)."""
from __future__ import annotations

import math

import numpy as np

from compiler.ir import dtypes as dt

from . import Sample, SampleFn

DTYPES = ("f32", "f16", "bf16", "f64", "i32", "i64", "i8", "u8", "bool")
NUMERIC = ("f32", "f16", "bf16", "f64", "i32", "i64", "i8", "u8")


def _shape(rng: np.random.Generator, lo: int = 0, hi: int = 4) -> tuple[int, ...]:
    return tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(lo, hi + 1))))


def _array(rng: np.random.Generator, shape, dtype: str = "f32") -> np.ndarray:
    """Non-trivial values of a dtype: floats away from 0, small ints, random bools."""
    d = dt.dtype(dtype)
    if d.is_bool:
        return rng.random(shape) < 0.5
    if d.is_int:
        lo = 0 if d.kind == "uint" else -50
        return rng.integers(lo, 50, size=shape).astype(d.np_dtype)
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 1e-2, 0.5, x).astype(d.np_dtype)


def _any(rng: np.random.Generator, shape, kinds=DTYPES) -> np.ndarray:
    return _array(rng, shape, str(rng.choice(kinds)))


def _neg(rng: np.random.Generator, axis: int, rank: int) -> int:
    """axis, or its negative form half the time."""
    return axis - rank if rng.random() < 0.5 else axis


def _index_dtype(rng: np.random.Generator) -> type:
    return np.int32 if rng.random() < 0.5 else np.int64


def _reshape(rng: np.random.Generator) -> Sample:
    shape = _shape(rng)
    x = _any(rng, shape)
    n = math.prod(shape)
    divs = [d for d in range(1, n + 1) if n % d == 0]
    a = int(rng.choice(divs))
    target = [a, n // a] if rng.random() < 0.5 else [a, -1]
    if shape and rng.random() < 0.3:
        target = [0, -1]  # 0 copies dim 0
    return [x], {"shape": target}


def _transpose(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng))
    perm = [int(p) for p in rng.permutation(x.ndim)] if rng.random() < 0.7 else []
    return [x], {"perm": perm}


def _broadcast_to(rng: np.random.Generator) -> Sample:
    shape = _shape(rng, 0, 3)
    x_shape = tuple(d if rng.random() < 0.5 else 1 for d in shape)
    target = [1 if rng.random() < 0.3 else d for d in shape]  # 1s where x is larger (Expand)
    target = [int(rng.integers(1, 4))] * int(rng.integers(0, 2)) + target
    return [_any(rng, x_shape)], {"shape": target}


def _concat(rng: np.random.Generator) -> Sample:
    shape = list(_shape(rng, 1))
    axis = int(rng.integers(len(shape)))
    dtype = str(rng.choice(DTYPES))
    xs = []
    for _ in range(int(rng.integers(1, 4))):
        shape[axis] = int(rng.integers(1, 4))
        xs.append(_array(rng, tuple(shape), dtype))
    return xs, {"axis": _neg(rng, axis, len(shape))}


def _split(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng, 1))
    axis = int(rng.integers(x.ndim))
    n = x.shape[axis]
    cuts = sorted(int(c) for c in rng.integers(0, n + 1, size=int(rng.integers(0, 3))))
    sizes = np.diff([0] + cuts + [n]).tolist()
    return [x], {"axis": _neg(rng, axis, x.ndim), "sizes": sizes}


def _slice(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng, 1))
    k = int(rng.integers(1, x.ndim + 1))
    axes = [int(a) for a in rng.permutation(x.ndim)[:k]]
    starts, ends, steps = [], [], []
    for a in axes:
        d = x.shape[a]
        step = int(rng.choice([1, 1, 2, -1, -2]))
        starts.append(int(rng.integers(-d - 2, d + 2)))
        ends.append(int(rng.choice([rng.integers(-d - 2, d + 2), 2**63 - 1, -2**63])))
        steps.append(step)
    attrs = {"starts": starts, "ends": ends, "axes": [_neg(rng, a, x.ndim) for a in axes],
             "steps": steps}
    if axes == list(range(k)) and all(s == 1 for s in steps):
        attrs["axes"], attrs["steps"] = [], []  # the defaults
    return [x], attrs


def _gather(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng, 1))
    axis = int(rng.integers(x.ndim))
    d = x.shape[axis]
    idx = rng.integers(-d, d, size=_shape(rng, 0, 2)).astype(_index_dtype(rng))
    return [x, idx], {"axis": _neg(rng, axis, x.ndim)}


def _elements(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    x = _any(rng, _shape(rng, 1))
    axis = int(rng.integers(x.ndim))
    ishape = [int(rng.integers(1, d + 1)) for d in x.shape]
    ishape[axis] = int(rng.integers(1, 5))
    d = x.shape[axis]
    idx = rng.integers(-d, d, size=ishape).astype(_index_dtype(rng))
    return x, idx, axis


def _gather_elements(rng: np.random.Generator) -> Sample:
    x, idx, axis = _elements(rng)
    return [x, idx], {"axis": _neg(rng, axis, x.ndim)}


def _gather_nd(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng, 1))
    b = int(rng.integers(0, x.ndim))
    m = int(rng.integers(1, x.ndim - b + 1))
    ishape = x.shape[:b] + _shape(rng, 0, 2) + (m,)
    bound = np.array(x.shape[b:b + m])
    idx = (rng.integers(0, 1 << 20, size=ishape) % (2 * bound) - bound).astype(_index_dtype(rng))
    return [x, idx], {"batch_dims": b}


def _reduction(rng: np.random.Generator, x: np.ndarray) -> str:
    if x.dtype == np.bool_:
        return "none"
    return str(rng.choice(["none", "add", "mul", "max", "min"]))


def _scatter_elements(rng: np.random.Generator) -> Sample:
    x, idx, axis = _elements(rng)
    updates = _array(rng, idx.shape, dt.dtype(x.dtype).name)
    return [x, idx, updates], {"axis": _neg(rng, axis, x.ndim), "reduction": _reduction(rng, x)}


def _scatter_nd(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng, 1), ("f32", "f16", "bf16", "f64", "bool"))
    k = int(rng.integers(1, x.ndim + 1))
    ishape = _shape(rng, 0, 2) + (k,)
    bound = np.array(x.shape[:k])
    idx = (rng.integers(0, 1 << 20, size=ishape) % (2 * bound) - bound).astype(_index_dtype(rng))
    updates = _array(rng, ishape[:-1] + x.shape[k:], dt.dtype(x.dtype).name)
    return [x, idx, updates], {"reduction": _reduction(rng, x)}


def _pad(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng))
    mode = str(rng.choice(["constant", "reflect", "edge", "wrap"]))
    begins, ends = [], []
    for d in x.shape:
        hi = {"constant": 3, "reflect": d - 1, "edge": 3, "wrap": d}[mode]
        begins.append(int(rng.integers(0, hi + 1)))
        ends.append(int(rng.integers(0, hi + 1)))
    if mode == "constant" and x.ndim:  # crop one side of an axis
        a = int(rng.integers(x.ndim))
        begins[a] = -int(rng.integers(0, x.shape[a]))
    value = float(rng.integers(0, 2)) if x.dtype == np.bool_ else float(rng.integers(-3, 4))
    value = abs(value) if x.dtype == np.uint8 else value
    return [x], {"pads": begins + ends, "mode": mode, "value": value}


def _tile(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng, 0, 3))
    return [x], {"repeats": [int(r) for r in rng.integers(1, 4, size=x.ndim)]}


def _squeeze(rng: np.random.Generator) -> Sample:
    shape = [1 if rng.random() < 0.4 else d for d in _shape(rng)]
    x = _any(rng, tuple(shape))
    ones = [i for i, d in enumerate(shape) if d == 1]
    if not ones or rng.random() < 0.3:
        return [x], {}
    pick = [a for a in ones if rng.random() < 0.6] or ones[:1]
    return [x], {"axes": [_neg(rng, a, x.ndim) for a in pick]}


def _unsqueeze(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng, 0, 3))
    r = x.ndim + int(rng.integers(1, 3))
    axes = [int(a) for a in rng.permutation(r)[: r - x.ndim]]
    return [x], {"axes": [_neg(rng, a, r) for a in axes]}


def _flatten(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng))
    axis = int(rng.integers(0, x.ndim + 1))
    return [x], {"axis": axis - x.ndim if axis and rng.random() < 0.5 else axis}


def _identity(rng: np.random.Generator) -> Sample:
    return [_any(rng, _shape(rng))], {}


def _depth_to_space(rng: np.random.Generator) -> Sample:
    b = int(rng.integers(1, 4))
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 3)) * b * b) + _shape(rng, 2, 2)
    return [_any(rng, shape)], {"blocksize": b, "mode": str(rng.choice(["DCR", "CRD"]))}


def _space_to_depth(rng: np.random.Generator) -> Sample:
    b = int(rng.integers(1, 4))
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)),
             int(rng.integers(1, 3)) * b, int(rng.integers(1, 3)) * b)
    return [_any(rng, shape)], {"blocksize": b}


def _reverse(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng))
    axes = [_neg(rng, int(a), x.ndim) for a in rng.permutation(x.ndim)[: rng.integers(0, 3)]]
    return [x], {"axes": axes}


def _full(rng: np.random.Generator) -> Sample:
    dtype = str(rng.choice(DTYPES))
    value = float(rng.integers(0, 2)) if dtype == "bool" else float(rng.integers(-5, 6))
    if dt.dtype(dtype).is_float:
        value += 0.25
    if dtype == "u8":
        value = abs(value)
    return [], {"shape": list(_shape(rng)), "value": value, "dtype": dtype}


def _range(rng: np.random.Generator) -> Sample:
    dtype = str(rng.choice(["i64", "i32", "i8", "f32", "f64", "f16"]))
    start = float(rng.integers(-5, 6))
    delta = float(rng.choice([-3, -2, -1, 1, 2, 3]))
    limit = start + delta * float(rng.integers(-1, 8))
    if dt.dtype(dtype).is_float:
        start, delta = start + 0.5, delta * 0.75
    return [], {"start": start, "limit": limit, "delta": delta, "dtype": dtype}


def _shape_of(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng))
    attrs = {}
    if rng.random() < 0.5:
        attrs["start"] = int(rng.integers(-5, 6))
    if rng.random() < 0.5:
        attrs["end"] = int(rng.integers(-5, 6))
    return [x], attrs


def _one_hot(rng: np.random.Generator) -> Sample:
    depth = int(rng.integers(1, 6))
    idx = rng.integers(-depth - 1, depth + 1, size=_shape(rng, 0, 3)).astype(_index_dtype(rng))
    axis = int(rng.integers(-idx.ndim - 1, idx.ndim + 1))
    dtype = str(rng.choice(["f32", "f16", "i32", "i64"]))
    return [idx], {"depth": depth, "axis": axis, "on_value": 3.0, "off_value": -1.0,
                   "dtype": dtype}


def _topk(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng, 1), NUMERIC)
    axis = int(rng.integers(x.ndim))
    k = int(rng.integers(0, x.shape[axis] + 1))
    return [x], {"k": k, "axis": _neg(rng, axis, x.ndim), "largest": bool(rng.random() < 0.5),
                 "sorted": bool(rng.random() < 0.8)}


def _trilu(rng: np.random.Generator) -> Sample:
    x = _any(rng, _shape(rng, 2))
    return [x], {"upper": bool(rng.random() < 0.5), "k": int(rng.integers(-3, 4))}


SAMPLES: dict[str, SampleFn] = {
    "reshape": _reshape, "transpose": _transpose, "broadcast_to": _broadcast_to,
    "concat": _concat, "split": _split, "slice": _slice, "gather": _gather,
    "gather_elements": _gather_elements, "gather_nd": _gather_nd,
    "scatter_elements": _scatter_elements, "scatter_nd": _scatter_nd, "pad": _pad,
    "tile": _tile, "squeeze": _squeeze, "unsqueeze": _unsqueeze, "flatten": _flatten,
    "identity": _identity, "depth_to_space": _depth_to_space,
    "space_to_depth": _space_to_depth, "reverse": _reverse, "full": _full, "range": _range,
    "shape_of": _shape_of, "one_hot": _one_hot, "topk": _topk, "trilu": _trilu,
}
