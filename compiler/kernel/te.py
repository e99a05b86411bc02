"""Compute definitions: the tensors a kernel computes, before any schedule.

A `Tensor` is either a placeholder (a kernel input, read from a global buffer) or the result of
a stage:

- `compute(name, shape, fn)`: out[i...] = fn(i...), a pure expression of the indices;
- `reduce(name, shape, rshape, fn, combiner, init)`:
      out[i...] = fold of `combiner` from `init` over r... of fn(i..., r...)
  (a mean's division or a norm's square root is a compute stage after it);
- `extern(name, outs, build)`: a stage whose loop nest is written by hand (sort, scan, scatter).

Elementwise and data-movement ops are not stages: lowering composes them as index functions
(`View`) and they are inlined into the stage that reads them, which is how a fused group
becomes one loop nest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from compiler.ir import dtypes as dt

from .ir import Buffer, Expr, KernelError, TensorLoad, Var, as_expr

COMBINERS = ("+", "*", "max", "min", "&", "|")


@dataclass(eq=False)
class Axis:
    """An iteration axis of a stage: spatial (an output dim) or reduce."""
    var: Var
    extent: Expr
    reduce: bool = False

    @property
    def name(self) -> str:
        return self.var.name


@dataclass(eq=False)
class Tensor:
    name: str
    shape: tuple[Any, ...]
    dtype: dt.DType
    stage: Optional["Stage"] = None  # None: a placeholder (kernel input)
    value_index: int = 0             # which output of a multi-output (extern) stage
    buffer: Optional[Buffer] = None

    def __post_init__(self) -> None:
        if self.buffer is None:
            self.buffer = Buffer(self.name, self.dtype, tuple(self.shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, indices: Any) -> Expr:
        if not isinstance(indices, tuple):
            indices = (indices,)
        if len(indices) != len(self.shape):
            raise KernelError(f"{self.name}: {len(indices)} indices for rank {len(self.shape)}")
        return TensorLoad(self, tuple(as_expr(i) for i in indices), self.dtype, 1)

    def __repr__(self) -> str:
        return f"Tensor({self.name}, {self.dtype.name}{list(self.shape)})"


@dataclass(eq=False)
class Stage:
    """How one tensor is computed: `body` (a function of the axes' vars), folded with `combiner`
    from `init` over `raxes` for reductions; or `extern`, a hand-written loop nest."""
    name: str
    axes: list[Axis]                    # spatial, one per output dim
    raxes: list[Axis] = field(default_factory=list)
    body: Optional[Expr] = None
    combiner: Optional[str] = None
    init: Optional[Expr] = None
    extern: Optional[Callable[..., Any]] = None  # build(out_buffers, in_buffers) -> Stmt
    extern_inputs: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)

    @property
    def output(self) -> Tensor:
        return self.outputs[0]

    @property
    def is_reduction(self) -> bool:
        return bool(self.raxes)

    def inputs(self) -> list[Tensor]:
        """The tensors this stage reads."""
        if self.extern is not None:
            return list(self.extern_inputs)
        from .ir import walk_expr
        seen: dict[int, Tensor] = {}
        exprs = [e for e in (self.body, self.init) if e is not None]
        for e in exprs:
            for x in walk_expr(e):
                if isinstance(x, TensorLoad):
                    seen.setdefault(id(x.tensor), x.tensor)
        return list(seen.values())


def placeholder(name: str, shape: Sequence[Any], dtype: dt.DType) -> Tensor:
    return Tensor(name, tuple(shape), dtype)


def _axes(prefix: str, shape: Sequence[Any], reduce: bool = False) -> list[Axis]:
    return [Axis(Var(f"{prefix}{k}"), as_expr(d), reduce) for k, d in enumerate(shape)]


def compute(name: str, shape: Sequence[Any], fn: Callable[..., Expr],
            dtype: Optional[dt.DType] = None) -> Tensor:
    axes = _axes(name + ".i", shape)
    body = as_expr(fn(*[a.var for a in axes]))
    st = Stage(name, axes, body=body)
    t = Tensor(name, tuple(shape), dtype or body.dtype, st)
    if t.dtype != body.dtype:
        raise KernelError(f"stage {name}: body is {body.dtype.name}, tensor is {t.dtype.name}")
    st.outputs = [t]
    return t


def reduce(name: str, shape: Sequence[Any], rshape: Sequence[Any],
           fn: Callable[..., Expr], combiner: str, init: Any) -> Tensor:
    """out[i...] = fold of `combiner` from `init` over r... of fn(i..., r...); `fn` takes the
    spatial vars then the reduce vars. The result has the body's dtype (the accumulator)."""
    if combiner not in COMBINERS:
        raise KernelError(f"unknown combiner {combiner!r}")
    axes = _axes(name + ".i", shape)
    raxes = _axes(name + ".r", rshape, reduce=True)
    body = as_expr(fn(*[a.var for a in axes], *[a.var for a in raxes]))
    st = Stage(name, axes, raxes, body=body, combiner=combiner, init=as_expr(init, body))
    if st.init.dtype != body.dtype:
        raise KernelError(f"stage {name}: init is {st.init.dtype.name}, body {body.dtype.name}")
    t = Tensor(name, tuple(shape), body.dtype, st)
    st.outputs = [t]
    return t


def extern(name: str, outs: Sequence[tuple[Sequence[Any], dt.DType]], inputs: Sequence[Tensor],
           build: Callable[..., Any]) -> list[Tensor]:
    """A hand-written stage: build(out_buffers, in_buffers) returns its statement."""
    st = Stage(name, [], extern=build, extern_inputs=list(inputs))
    ts = [Tensor(f"{name}_{k}" if len(outs) > 1 else name, tuple(shape), dtype, st, k)
          for k, (shape, dtype) in enumerate(outs)]
    st.outputs = ts
    return ts


def stages_of(outputs: Sequence[Tensor]) -> list[Stage]:
    """All stages that `outputs` depend on, producers first."""
    order: list[Stage] = []
    seen: set[int] = set()

    def visit(t: Tensor) -> None:
        st = t.stage
        if st is None or id(st) in seen:
            return
        seen.add(id(st))
        for x in st.inputs():
            visit(x)
        order.append(st)
    for t in outputs:
        visit(t)
    return order
