"""The reference interpreter: runs a module on NumPy arrays. It is the semantics of the IR.

Each op runs its registry reference implementation. Inputs are checked against the function's
argument types (symbolic dims bound consistently) and every result against its declared type, so
a wrong type rule or reference shows up here, naming the op.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import dtypes as dt
from .core import Function, Module, Op, Value
from .types import TensorType


class InterpreterError(RuntimeError):
    """Running the module failed: names the op (and its location) or the input."""


def bind_dims(t: TensorType, shape: Sequence[int], env: dict[str, int], what: str) -> None:
    """Check a concrete shape against a type, binding symbolic dims in env; ValueError on mismatch."""
    if len(shape) != t.rank:
        raise ValueError(f"{what}: expected rank {t.rank} ({t}), got shape {tuple(shape)}")
    for i, (d, n) in enumerate(zip(t.shape, shape)):
        if isinstance(d, int):
            if d != n:
                raise ValueError(f"{what}: dim {i} is {n}, expected {d} (type {t}, "
                                 f"got shape {tuple(shape)})")
        elif env.setdefault(d, n) != n:
            raise ValueError(f"{what}: dim {i} (?{d}) is {n}, but ?{d} = {env[d]} elsewhere")


def concrete_shape(t: TensorType, env: dict[str, int]) -> tuple[int, ...]:
    """The type's shape with symbols replaced by their bound values."""
    try:
        return tuple(d if isinstance(d, int) else env[d] for d in t.shape)
    except KeyError as e:
        raise InterpreterError(f"symbolic dim ?{e.args[0]} of {t} is not bound by any input") from None


def check_inputs(fn: Function, arrays: Sequence[Any], env: dict[str, int],
                 bounds: Optional[dict[str, tuple[int, Optional[int]]]] = None) -> list[np.ndarray]:
    """Validate inputs against the function signature; returns them as ndarrays. ValueError
    names the input, the expected type and what was given."""
    if len(arrays) != len(fn.args):
        names = ", ".join(f"%{a.name or i}: {a.type}" for i, a in enumerate(fn.args))
        raise ValueError(f"@{fn.name} takes {len(fn.args)} inputs ({names}), got {len(arrays)}")
    out = []
    for i, (arg, x) in enumerate(zip(fn.args, arrays)):
        what = f"input {i} (%{arg.name})" if arg.name else f"input {i}"
        x = np.asarray(x)
        if x.dtype != arg.dtype.np_dtype:
            raise ValueError(f"{what}: expected dtype {arg.dtype} ({arg.type}), got {x.dtype}")
        bind_dims(arg.type, x.shape, env, what)
        out.append(x)
    for sym, (lo, hi) in (bounds or {}).items():
        if sym in env and (env[sym] < lo or (hi is not None and env[sym] > hi)):
            raise ValueError(f"?{sym} = {env[sym]} is outside its bounds [{lo}, {hi}]")
    return out


def run_function(module: Module, fn: Function, arrays: Sequence[Any],
                 compute_dtype: Optional[dt.DType] = None,
                 observer: Optional[Callable[[Op, list[np.ndarray]], None]] = None,
                 env: Optional[dict[str, int]] = None) -> list[np.ndarray]:
    """Run one function. compute_dtype (f64) widens every float value; observer(op, results) is
    called after each op (for numerics checks). `env` is given when a `fused` op calls its body:
    the arrays are then already checked (and possibly widened) values, bound in that env."""
    values: dict[Value, np.ndarray] = {}
    if env is None:
        env = {}
        inputs = [_widen(x, compute_dtype) for x in check_inputs(fn, arrays, env, module.dim_bounds)]
    else:
        inputs = list(arrays)
    for arg, x in zip(fn.args, inputs):
        values[arg] = x
    for op in fn.ops:
        results = run_op(module, op, [_lookup(values, v, op) for v in op.operands], env, compute_dtype)
        for v, r in zip(op.results, results):
            values[v] = r
        if observer is not None:
            observer(op, results)
    return [_lookup(values, v, None) for v in fn.outputs]


def run_op(module: Module, op: Op, args: Sequence[np.ndarray], env: dict[str, int],
           compute_dtype: Optional[dt.DType] = None) -> list[np.ndarray]:
    """Run one op's reference on arrays; checks the results against the op's result types."""
    where = _where(op)
    try:
        if op.name == "constant":
            raw: Any = module.constants[op.attrs["name"]]
        elif op.name == "fused":
            raw = run_function(module, module.function(op.attrs["body"]), args, compute_dtype,
                               env=env)
        else:
            opdef = op.opdef
            kwargs = dict(op.attrs)
            if opdef.needs_out_shapes:
                kwargs["out_shapes"] = [concrete_shape(v.type, env) for v in op.results]
            with np.errstate(all="ignore"):
                raw = opdef.reference(*args, **kwargs)
    except InterpreterError:
        raise
    except Exception as e:  # a reference failing is a bug or bad input: say where
        raise InterpreterError(f"{where}: {type(e).__name__}: {e}") from e
    results = list(raw) if isinstance(raw, (tuple, list)) else [raw]
    if len(results) != len(op.results):
        raise InterpreterError(f"{where}: reference returned {len(results)} results, "
                               f"the op declares {len(op.results)}")
    out = []
    for i, (v, r) in enumerate(zip(op.results, results)):
        r = np.asarray(r)
        # widened runs keep floats in compute_dtype; otherwise the result must have its dtype
        want = v.dtype.np_dtype
        if compute_dtype is not None and v.dtype.is_float:
            want = compute_dtype.np_dtype
        if r.dtype != want:
            widened = compute_dtype is not None and v.dtype.is_float
            # a narrow result must come back in its own dtype: converting would round or wrap
            if not widened and (r.dtype.kind != want.kind or v.dtype.is_narrow):
                raise InterpreterError(f"{where}: result {i} has dtype {r.dtype}, declared {v.type}")
            r = r.astype(want)
        try:
            bind_dims(v.type, r.shape, env, f"result {i}")
        except ValueError as e:
            raise InterpreterError(f"{where}: {e}") from None
        out.append(r)
    return out


FOLD_GROWTH_SLACK = 1 << 16  # bytes a fold may add beyond its operands' size


def fold(module: Module, op: Op, args: Sequence[Optional[np.ndarray]],
         max_elements: int) -> Optional[list[np.ndarray]]:
    """op's results computed from known operand values, or None when it is not foldable: an
    operand is unknown, the op is impure or a constant, a result has symbolic dims or more than
    max_elements elements (except a transpose or reshape: it only reorders the same bytes, and
    folding it spares a run-time copy of a weight, like a tied embedding's transpose), the
    results would take much more memory than the operands (a
    dequantize of int8 weights or a broadcast stays an op: folding it would inflate the
    weights), or the reference fails (the op then fails at run time instead, as it would
    without folding). Frontends and the fold-constants pass share this rule."""
    if op.name == "constant" or not op.opdef.has("pure") or any(a is None for a in args):
        return None
    reorder = op.name in ("transpose", "reshape", "squeeze", "unsqueeze", "flatten")
    if not all(r.type.is_static and (reorder or r.type.num_elements() <= max_elements)
               for r in op.results):
        return None
    out_bytes = sum(r.type.num_elements() * r.dtype.np_dtype.itemsize for r in op.results)
    if out_bytes > sum(a.nbytes for a in args) + FOLD_GROWTH_SLACK:  # type: ignore[union-attr]
        return None
    try:
        return run_op(module, op, args, {})  # type: ignore[arg-type]
    except InterpreterError:
        return None


def interpret(module: Module, *arrays: Any, dtype: Any = None,
              function: Optional[str] = None) -> list[np.ndarray]:
    """Run `module`'s entry function (or `function`) on arrays; returns the list of outputs.

    dtype=np.float64 (or "f64") computes every float value in float64, for an accurate reference;
    outputs are then float64 too.
    """
    fn = module.function(function) if function else module.main
    compute = dt.dtype(dtype) if dtype is not None else None
    if compute is not None and not compute.is_float:
        raise ValueError(f"interpret dtype must be a float type, got {compute}")
    return run_function(module, fn, arrays, compute)


def _widen(x: np.ndarray, compute_dtype: Optional[dt.DType]) -> np.ndarray:
    """x in compute_dtype when it is an arithmetic float (narrow floats keep their bits)."""
    if compute_dtype is not None and _is_float(x.dtype):
        return x.astype(compute_dtype.np_dtype)
    return x


def _is_float(npd: np.dtype) -> bool:
    """An arithmetic float dtype (f16, bf16, f32, f64); not f8e5m2, whose NumPy kind is 'f'."""
    try:
        return dt.dtype(npd).is_float
    except ValueError:
        return False


def _lookup(values: dict[Value, np.ndarray], v: Value, op: Optional[Op]) -> np.ndarray:
    try:
        return values[v]
    except KeyError:
        user = _where(op) if op is not None else "return"
        raise InterpreterError(f"{user}: value %{v.name} is used before it is defined "
                               "(run compiler.ir.verify to see where)") from None


def _where(op: Op) -> str:
    s = f"op '{op.name}'"
    if op.results and op.results[0].name:
        s += f" (%{op.results[0].name})"
    if op.src_line is not None:
        s += f" at line {op.src_line}"
    if op.loc is not None:
        s += f" [{op.loc}]"
    return s
