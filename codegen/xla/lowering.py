"""The lowering table: graph IR op name -> a rule that writes StableHLO for one op.

A rule is `rule(e, op, args, ctx) -> list[Val]`: `e` the Emitter, `op` the IR op (static result
types, normalized attributes), `args` its operands as StableHLO values, `ctx` the target options
and the run-time checks. Rules live in the `lower_*` modules, one per op family, and register
themselves with `@lowering("name", ...)`. The IR's reference interpreter is the semantics each
rule reproduces (rounding, integer division, NaN handling, index wrapping).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from compiler.ir import Op
from compiler.ir import dtypes as dt
from compiler.ir.dtypes import DType

from .emitter import Emitter, LoweringError, Val

Rule = Callable[[Emitter, Op, list, "Context"], list]
LOWERINGS: dict[str, Rule] = {}


def lowering(*names: str) -> Callable[[Rule], Rule]:
    """Register a rule for the named ops."""
    def register(fn: Rule) -> Rule:
        for n in names:
            if n in LOWERINGS:
                raise ValueError(f"two StableHLO lowerings for op {n!r}")
            LOWERINGS[n] = fn
        return fn
    return register


@dataclass(frozen=True)
class Options:
    """What the emitted StableHLO is shaped for.

    bf16_contractions: matmul/conv-like ops on f32 take bf16 inputs with f32 accumulation (the
      TPU's MXU form); pad_to_tiles: contraction operands are zero-padded to the TPU's (8, 128)
      tiles where the padding is small; wide_float: the float type of index/coordinate math and
      of requantization (f64 matches the reference exactly; TPUs have no f64)."""

    target: str = "xla"
    bf16_contractions: bool = False
    pad_to_tiles: bool = False
    wide_float: DType = dt.f64


@dataclass
class Context:
    options: Options
    checks: list[tuple[Val, str]] = field(default_factory=list)
    # array -> Val: a constant made by a rule (resize matrices, say); the translator passes a
    # large one as a weight argument instead of writing it inline
    constant: Callable[[np.ndarray, DType], Val] = None  # type: ignore[assignment]

    def check(self, flag: Val, message: str) -> None:
        """A run-time check: the compiled function also returns `flag` (a bool scalar), and
        the runtime raises with `message` when it is true (out-of-range indices, say)."""
        self.checks.append((flag, message))


# --- helpers shared by the rule modules --------------------------------------------------------

LOW_PRECISION = (dt.f16, dt.bf16)


def compute_dtype(d: DType) -> DType:
    """f16/bf16 compute in f32 and round once (as the references do); other types in themselves."""
    return dt.f32 if d in LOW_PRECISION else d


def widen(e: Emitter, *xs: Val) -> list[Val]:
    return [e.convert(x, compute_dtype(x.dtype)) for x in xs]


def result_type(op: Op, i: int = 0) -> tuple[tuple[int, ...], DType]:
    t = op.results[i].type
    return tuple(t.shape), t.dtype  # type: ignore[return-value]


def unsupported(op: Op, why: str) -> LoweringError:
    """The error for attributes (or shapes) StableHLO cannot express; the translator adds
    which op it is and where."""
    return LoweringError(f"cannot be lowered to StableHLO: {why}")


def norm_axis(axis: int, rank: int) -> int:
    return 0 if rank == 0 else axis % rank


def lowest(d: DType) -> float:
    """The identity of max: -inf for floats, the minimum for integers, false for bool."""
    if d.is_float:
        return float("-inf")
    if d.is_bool:
        return 0
    return d.int_range()[0]


def highest(d: DType) -> float:
    if d.is_float:
        return float("inf")
    if d.is_bool:
        return 1
    return d.int_range()[1]


def reduce_all_any(e: Emitter, flag: Val) -> Val:
    """A bool tensor reduced to one bool scalar: any element true."""
    return e.reduce_simple(flag, False, range(flag.rank), "or") if flag.rank else flag


def wrap_indices(e: Emitter, ctx: Context, op: Op, idx: Val, size: "int | Val",
                 what: str = "index") -> Val:
    """Negative indices count from the end; out-of-range ones are a run-time error (the
    reference raises), and clamped so the gather itself stays in bounds."""
    i = e.convert(idx, dt.i64)
    n = size if isinstance(size, Val) else e.const(int(size), dt.i64)
    i = e.select(e.compare("LT", i, 0), e.add(i, n), i)
    bad = e.or_(e.compare("LT", i, 0), e.compare("GE", i, n))
    where = f"op '{op.name}'" + (f" (%{op.results[0].name})" if op.results[0].name else "")
    ctx.check(reduce_all_any(e, bad), f"{where}: an {what} is out of range for the dimension it "
              "indexes")
    hi = e.sub(n, 1)
    return e.max(e.min(i, hi), 0)


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    import numpy as np
    return tuple(int(d) for d in np.broadcast_shapes(*shapes))


def optional(args: list, n: int) -> list[Optional[Val]]:
    """args padded with None to n entries (absent optional operands)."""
    return list(args) + [None] * (n - len(args))
