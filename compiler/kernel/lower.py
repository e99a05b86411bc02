"""Graph IR -> kernels: every fused group (and every op left alone) becomes one kernel.

Each op has a lowering (`@lowering("add")`) from its operands' `View`s to its results' `View`s.
A View is an index function: `view.at(i, j, ...)` is the expression of that element. Elementwise
and data-movement ops return new index functions (they inline into whoever reads them); ops that
need their own loop nest (reductions, contractions, scans) create a stage (`te.reduce`,
`te.compute`, `te.extern`) and return a View that reads its tensor. The group's outputs become
the kernel's output stages; then a default schedule is applied (compiler.kernel.schedules).

    group = lower_function(module, fn)      # -> LoweredGroup: schedule-ready stages
    kernel = group.build()                   # default schedule, then Kernel
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from compiler.ir import dtypes as dt
from compiler.ir.core import Function, Module, Op, Value

from . import te
from .ir import (Const, Expr, KernelError, Var, as_expr, binop, cast, const)
from .schedule import Schedule


class LoweringError(KernelError):
    """An op has no lowering to kernel IR, or one of its attributes is not supported."""


@dataclass
class View:
    """A tensor as an index function. shape entries are ints or Exprs (symbolic dims)."""
    shape: tuple[Any, ...]
    dtype: dt.DType
    fn: Callable[..., Expr]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def at(self, *idx: Any) -> Expr:
        if len(idx) != len(self.shape):
            raise KernelError(f"view of rank {len(self.shape)} indexed with {len(idx)} indices")
        return self.fn(*[as_expr(i) for i in idx])

    def __getitem__(self, idx: Any) -> Expr:
        return self.at(*(idx if isinstance(idx, tuple) else (idx,)))


def view_of(t: te.Tensor) -> View:
    return View(tuple(t.shape), t.dtype, lambda *i: t[i])


LowerFn = Callable[["Ctx", Op, list[View]], "View | list[View]"]
LOWERINGS: dict[str, LowerFn] = {}


def lowering(*names: str) -> Callable[[LowerFn], LowerFn]:
    def deco(fn: LowerFn) -> LowerFn:
        for n in names:
            LOWERINGS[n] = fn
        return fn
    return deco


@dataclass
class Ctx:
    """Per-kernel lowering state: names stages deterministically, records the group's kind."""
    module: Module
    prefix: str = "s"
    count: int = 0
    dims: dict[str, Var] = field(default_factory=dict)
    contractions: list[dict] = field(default_factory=list)  # for the matmul schedule
    constant_inputs: set = field(default_factory=set)         # placeholder names of weights
    placeholders: dict[str, te.Tensor] = field(default_factory=dict)

    def name(self, base: str) -> str:
        self.count += 1
        return f"{self.prefix}{self.count}_{base}"

    def dim(self, d: Any) -> Expr:
        if isinstance(d, int):
            return Const(d)
        if isinstance(d, str):
            if d not in self.dims:
                self.dims[d] = Var(d)
            return self.dims[d]
        return as_expr(d)

    def shape(self, v: Value) -> tuple[Any, ...]:
        return tuple(d if isinstance(d, int) else self.dim(d) for d in v.type.shape)

    # stages
    def materialize(self, v: View, base: str = "t") -> View:
        """Compute a view into its own stage (for values read many times, or by extern code)."""
        t = te.compute(self.name(base), v.shape, lambda *i: v.at(*i), v.dtype)
        return view_of(t)

    def reduce(self, base: str, shape: Sequence[Any], rshape: Sequence[Any],
               fn: Callable[..., Expr], combiner: str, init: Any) -> View:
        t = te.reduce(self.name(base), shape, rshape, fn, combiner, init)
        return view_of(t)

    def tensor(self, v: View, base: str = "t") -> te.Tensor:
        """The te.Tensor behind a view, materializing it if it is an index function."""
        t = te.compute(self.name(base), v.shape, lambda *i: v.at(*i), v.dtype)
        return t


def attrs_of(op: Op) -> dict:
    return op.opdef.normalize_attrs(op.attrs) if hasattr(op.opdef, "normalize_attrs") else op.attrs


@dataclass
class LoweredGroup:
    name: str
    inputs: list[te.Tensor]
    outputs: list[te.Tensor]
    dims: list[Var]
    kind: str
    ctx: Ctx
    const_names: list[str] = field(default_factory=list)  # weights after the function's args

    def schedule(self, trace: Optional[Any] = None, level: str = "default") -> Schedule:
        """The group's schedule: `trace` replayed, else the default one ("default"), the default
        without the tuned contraction micro-kernel ("safe"), or none at all ("none")."""
        s = Schedule(self.outputs, self.inputs)
        if trace is not None:
            s.apply_trace(trace)
        elif level != "none":
            from .schedules import default_schedule
            default_schedule(s, self, safe=(level == "safe"))
        return s

    def build(self, trace: Optional[Any] = None) -> Any:
        """Schedule and build the kernel. A default schedule that turns out illegal for this
        group (a ScheduleError) falls back to a simpler one, so a group always builds; the
        kernel's attrs record which ("schedule_level")."""
        if trace is not None:
            return self.schedule(trace).build(self.name, self.dims)
        errors = []
        for level in ("default", "safe", "none"):
            try:
                k = self.schedule(level=level).build(self.name, self.dims)
                k.attrs["schedule_level"] = level
                if errors:
                    k.attrs["schedule_fallback"] = errors
                return k
            except KernelError as e:
                if isinstance(e, LoweringError):
                    raise
                errors.append(f"{level}: {e}")
        raise LoweringError(f"{self.name}: no schedule builds: " + "; ".join(errors))


def lower_function(module: Module, fn: Function, name: str, kind: str = "opaque",
                   constant_args: Sequence[Any] = ()) -> LoweredGroup:
    """Lower `fn` (a fused body, or a one-op function) into stages. Arguments are kernel inputs
    in0..inN, outputs out0..outM. constant_args[k] is the array of argument k when it is a
    weight (True when only known to be one): small ones become immediates, the others stay
    inputs that schedules may pack."""
    ctx = Ctx(module)
    env: dict[Value, View] = {}
    inputs: list[te.Tensor] = []
    for k, a in enumerate(fn.args):
        t = te.placeholder(f"in{k}", ctx.shape(a), a.type.dtype)
        inputs.append(t)
        ctx.placeholders[t.name] = t
        c = constant_args[k] if k < len(constant_args) else None
        if c is not None and c is not False:
            ctx.constant_inputs.add(t.name)
            arr = getattr(c, "shape", None) is not None and c
            if arr is not False and arr.size <= 64 and (arr.size == 1 or arr.ndim == 1) \
                    and not a.type.dtype.is_narrow:
                env[a] = constant_view(ctx, arr, a)
                continue
        env[a] = view_of(t)
    const_names: list[str] = []
    for op in fn.ops:
        if op.name == "constant":
            arr = module.constants[op.attrs["name"]]
            if arr.size <= 64 and (arr.size == 1 or arr.ndim == 1) and not op.results[0].type.dtype.is_narrow:
                env[op.results[0]] = constant_view(ctx, arr, op.results[0])
            else:  # a weight: one more kernel input
                k = len(inputs)
                t = te.placeholder(f"in{k}", ctx.shape(op.results[0]), op.results[0].type.dtype)
                inputs.append(t)
                ctx.placeholders[t.name] = t
                ctx.constant_inputs.add(t.name)
                const_names.append(op.attrs["name"])
                env[op.results[0]] = view_of(t)
            continue
        low = LOWERINGS.get(op.name)
        if low is None:
            raise LoweringError(f"op '{op.name}' has no lowering to kernel IR (at {op.loc})")
        try:
            res = low(ctx, op, [env[v] for v in op.operands])
        except LoweringError:
            raise
        except KernelError as e:
            raise LoweringError(f"{op.name} (at {op.loc}): {e}") from e
        res = res if isinstance(res, list) else [res]
        for v, r in zip(op.results, res):
            if r.dtype != v.type.dtype:
                raise LoweringError(f"lowering of {op.name} gave {r.dtype.name}, the op "
                                    f"produces {v.type.dtype.name}")
            env[v] = r
    outputs: list[te.Tensor] = []
    for k, v in enumerate(fn.outputs):
        view = env[v]
        t = te.compute(f"out{k}", view.shape, lambda *i, view=view: view.at(*i), view.dtype)
        outputs.append(t)
    dims = [ctx.dims[d] for d in sorted(ctx.dims)]
    return LoweredGroup(name, inputs, outputs, dims, kind, ctx, const_names)


def constant_view(ctx: Ctx, arr: Any, v: Value) -> View:
    """A small constant inside a group: a scalar becomes an immediate; others must be passed in
    (the graph passes normally keep weights as group operands)."""
    import numpy as np
    a = np.asarray(arr)
    d = v.type.dtype
    if a.size == 1:
        c = scalar_const(a.reshape(()).item(), d)
        return View(tuple(a.shape), d, lambda *i: c)
    if a.size <= 64 and a.ndim == 1:
        vals = [scalar_const(x, d) for x in a.tolist()]

        def pick(i: Expr) -> Expr:
            if isinstance(i, Const):
                return vals[i.value]
            from .ir import select
            e = vals[-1]
            for k in range(len(vals) - 2, -1, -1):
                e = select(binop("==", i, k), vals[k], e)
            return e
        return View(tuple(a.shape), d, pick)
    raise LoweringError(f"constant @{v.name} of {a.size} elements inside a fused group: pass it "
                        "as an operand")


def scalar_const(x: Any, d: dt.DType) -> Expr:
    if d.is_narrow:
        raise LoweringError(f"constant of narrow type {d.name} inside a group")
    if d.is_float:
        return Const(float(x), d)
    if d.is_bool:
        return Const(bool(x), d)
    return Const(int(x), d)


# ------------------------------------------------------------------------------ helpers

def broadcast_index(src: View, out_shape: Sequence[Any], idx: Sequence[Expr]) -> list[Expr]:
    """Indices into `src` for output index `idx` under NumPy broadcasting."""
    r = len(out_shape) - src.ndim
    out = []
    for k, d in enumerate(src.shape):
        if isinstance(d, int) and d == 1 and not (isinstance(out_shape[r + k], int)
                                                  and out_shape[r + k] == 1):
            out.append(Const(0))
        elif isinstance(d, Const) and d.value == 1:
            out.append(Const(0))
        else:
            out.append(idx[r + k])
    return out


def bview(src: View, out_shape: Sequence[Any]) -> Callable[..., Expr]:
    """src broadcast to out_shape, as an index function."""
    def f(*idx: Expr) -> Expr:
        return src.at(*broadcast_index(src, out_shape, idx))
    return f


def out_shape(ctx: Ctx, op: Op, k: int = 0) -> tuple[Any, ...]:
    return ctx.shape(op.results[k])


def out_dtype(op: Op, k: int = 0) -> dt.DType:
    return op.results[k].type.dtype


# importing the op lowerings registers them
from . import ops as _ops  # noqa: E402,F401
