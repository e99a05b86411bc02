"""Control flow: If, Loop and Scan, imported by inlining their subgraphs.

The graph IR has no regions, so control flow is resolved at import time:
- If: a condition known at import time imports only the taken branch; otherwise both branches
  are imported and each output is selected with `where` (the branches must agree on types).
- Loop: the body is unrolled. The iteration count comes from a known trip count and condition
  (the body's condition output is followed as long as it is known). When whether an iteration
  runs is known only at run time, the body is unrolled up to a static bound (the known trip
  count, or the leading dim the model declares for the loop's scan outputs) and each
  loop-carried value is kept with `where(iteration runs, new, old)`.
- Scan: unrolled over the static sequence length.

A subgraph is imported in a new importer scope whose inputs are bound to values; names of the
enclosing graphs stay visible, as in ONNX.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import onnx

from compiler.ir import Value
from compiler.ir import dtypes as dt

from ..importer import NodeContext, OnnxImportError, converter, tensor_to_array

MAX_UNROLL = 4096  # iterations: more is almost surely a run-time loop, not a static one

Flag = Union[bool, Value]  # known at import time, or a run-time bool scalar


def import_subgraph(ctx: NodeContext, graph: onnx.GraphProto, bindings: Sequence[Value],
                    what: str) -> list[Value]:
    """Import `graph` inline with its inputs bound to `bindings`; returns its outputs."""
    imp = ctx.importer
    if len(bindings) != len(graph.input):
        raise ctx.error(f"{what} takes {len(graph.input)} inputs, the node gives {len(bindings)}")
    scope: dict[str, Value] = {}
    for t in graph.initializer:
        scope[t.name] = imp.constant(tensor_to_array(t, imp.base_dir), t.name)
    for vi, v in zip(graph.input, bindings):
        scope[vi.name] = v
    opsets = dict(imp.opsets)
    opsets[""] = ctx.opset
    imp.scopes.append(scope)
    try:
        imp.convert_nodes(graph.node, opsets)
        return [imp.lookup(o.name) for o in graph.output]
    except OnnxImportError as e:
        raise type(e)(f"in {what} of {ctx.op_type} node '{ctx.node.name}': {e}") \
            if type(e) is OnnxImportError else e
    finally:
        imp.scopes.pop()


def _scalar(ctx: NodeContext, v: Value, what: str) -> Value:
    """A single-element tensor as a scalar."""
    if not v.type.is_static or v.type.num_elements() != 1:
        raise ctx.error(f"{what} must hold one element, got shape {list(v.shape)}")
    return v if v.type.rank == 0 else ctx.op("reshape", v, shape=[])


def _flag(ctx: NodeContext, v: Value, what: str) -> Flag:
    """A condition: its value if known at import time, else the run-time bool scalar."""
    known = ctx.known_value(v)
    if known is not None:
        if known.size != 1:
            raise ctx.error(f"{what} must hold one element, got shape {list(known.shape)}")
        return bool(known.reshape(-1)[0])
    if v.dtype is not dt.bool_:
        raise ctx.error(f"{what} must be bool, got {v.dtype}")
    return _scalar(ctx, v, what)


def _and(ctx: NodeContext, a: Flag, b: Flag) -> Flag:
    if a is False or b is False:
        return False
    if a is True:
        return b
    if b is True:
        return a
    return ctx.op("and", a, b)  # type: ignore[arg-type]


def _flag_value(ctx: NodeContext, f: Flag) -> Value:
    return ctx.const(np.asarray(f, dtype=np.bool_)) if isinstance(f, bool) else f


def _stack(ctx: NodeContext, items: list[Value], axis: int, what: str) -> Value:
    """Per-iteration values joined along a new axis."""
    first = items[0]
    for j, v in enumerate(items):
        if v.type != first.type:
            raise ctx.error(f"{what} is {first.type} in iteration 0 but {v.type} in iteration "
                            f"{j}; per-iteration outputs must have one type")
    rank = first.type.rank
    if not -(rank + 1) <= axis <= rank:
        raise ctx.error(f"{what}: axis {axis} is out of range for per-iteration values of "
                        f"rank {rank}")
    axis %= rank + 1
    parts = [ctx.op("unsqueeze", v, axes=[axis]) for v in items]
    return parts[0] if len(parts) == 1 else ctx.op("concat", *parts, axis=axis)


# --- If ----------------------------------------------------------------------------------------


@converter("If", since=1)
def if_(ctx: NodeContext) -> list[Value]:
    then_g, else_g = ctx.attr("then_branch"), ctx.attr("else_branch")
    cond = _flag(ctx, ctx.input(0), "cond")
    if isinstance(cond, bool):
        return import_subgraph(ctx, then_g if cond else else_g, [],
                               "then_branch" if cond else "else_branch")
    a = import_subgraph(ctx, then_g, [], "then_branch")
    b = import_subgraph(ctx, else_g, [], "else_branch")
    if len(a) != len(b):
        raise ctx.error(f"then_branch has {len(a)} outputs, else_branch {len(b)}")
    outs = []
    for i, (x, y) in enumerate(zip(a, b)):
        if x is y:
            outs.append(x)
        elif x.type != y.type:
            raise ctx.error(f"output {i} is {x.type} in then_branch but {y.type} in else_branch; "
                            "with a condition known only at run time both branches must give "
                            "one type (the IR has no dynamic shapes)")
        else:
            outs.append(ctx.op("where", cond, x, y))
    return outs


# --- Loop --------------------------------------------------------------------------------------


@converter("Loop", since=1)
def loop(ctx: NodeContext) -> list[Value]:
    body: onnx.GraphProto = ctx.attr("body")
    n_carried = len(ctx.node.input) - 2
    n_scan = len(body.output) - 1 - n_carried
    if n_carried < 0 or n_scan < 0 or len(body.input) != n_carried + 2:
        raise ctx.error(f"the body has {len(body.input)} inputs and {len(body.output)} outputs "
                        f"for {max(n_carried, 0)} loop-carried values")
    carried = [ctx.input(2 + i) for i in range(n_carried)]
    trip: Optional[Union[int, Value]] = None
    if ctx.has_input(0):
        known = ctx.known(0)
        trip = int(known.reshape(-1)[0]) if known is not None else \
            _scalar(ctx, ctx.input(0), "trip count M")
    uses_cond = ctx.has_input(1)  # without it the body's condition output is ignored
    cond: Flag = _flag(ctx, ctx.input(1), "cond") if uses_cond else True
    if trip is None and not uses_cond:
        raise ctx.error("neither a trip count nor a condition is given: the loop never ends")
    bound = _declared_iterations(ctx, n_carried, n_scan)
    scans: list[list[Value]] = [[] for _ in range(n_scan)]
    i = 0
    while True:
        in_range: Flag = trip is None or (i < trip if isinstance(trip, int) else
                                          ctx.op("lt", ctx.const(np.int64(i)), trip))
        runs = _and(ctx, in_range, cond)
        if runs is False:
            break
        if runs is not True:
            limit = _runtime_limit(ctx, trip, bound, n_scan)
            if i >= limit:
                break
        if i >= MAX_UNROLL:
            raise ctx.error(f"the loop runs more than {MAX_UNROLL} iterations; loops are unrolled "
                            "at import time")
        outs = import_subgraph(ctx, body, [ctx.const(np.int64(i)), _flag_value(ctx, cond),
                                           *carried], f"body (iteration {i})")
        new = outs[1:1 + n_carried]
        if runs is True:
            carried = new
        else:
            carried = [_keep(ctx, runs, n, o, k) for k, (n, o) in enumerate(zip(new, carried))]
        for k in range(n_scan):
            scans[k].append(outs[1 + n_carried + k])
        if uses_cond:
            # an iteration that did not run must not restart the loop
            cond = _and(ctx, runs, _flag(ctx, outs[0], "the body's condition output"))
        i += 1
    if i == 0 and n_scan:
        stacked = _empty_scan_outputs(ctx, body, carried, cond)
    else:
        stacked = [_stack(ctx, items, 0, f"scan output {k}") for k, items in enumerate(scans)]
    return (carried + stacked)[:len(ctx.node.output)]


def _keep(ctx: NodeContext, runs: Value, new: Value, old: Value, k: int) -> Value:
    """Loop-carried value k after an iteration that runs only if `runs` (known at run time)."""
    if new is old:
        return new
    if new.type != old.type:
        raise ctx.error(f"loop-carried value {k} changes from {old.type} to {new.type} in an "
                        "iteration that runs depending on run-time values; the loop can be "
                        "unrolled only with a known trip count and condition")
    return ctx.op("where", runs, new, old)


def _declared_iterations(ctx: NodeContext, n_carried: int, n_scan: int) -> Optional[int]:
    """The iteration count the model declares: the static leading dim of the loop's scan
    outputs in the graph's output and value_info types (a scan output has one row per
    iteration, so a declared length fixes the count)."""
    graph = ctx.importer.model.graph
    declared = {vi.name: vi for vi in list(graph.value_info) + list(graph.output)}
    found = set()
    for name in list(ctx.node.output)[n_carried:n_carried + n_scan]:
        vi = declared.get(name)
        if vi is None or not vi.type.HasField("tensor_type") or \
                not vi.type.tensor_type.HasField("shape"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value"):
            found.add(int(dims[0].dim_value))
    if len(found) > 1:
        raise ctx.error(f"the scan outputs are declared with different lengths {sorted(found)}")
    return found.pop() if found else None


def _runtime_limit(ctx: NodeContext, trip: Optional[Union[int, Value]], bound: Optional[int],
                   n_scan: int) -> int:
    """How far to unroll when whether an iteration runs is known only at run time."""
    if n_scan:
        if bound is None:
            raise ctx.needs_constant("the number of iterations depends on run-time values (trip count or "
                            "condition), so the scan outputs' length is unknown; declare the "
                            "scan outputs' static length in the graph or use a constant trip "
                            "count and condition")
        return bound if not isinstance(trip, int) else min(bound, trip)
    if isinstance(trip, int):
        return trip
    raise ctx.needs_constant("the number of iterations depends on run-time values and has no static "
                    "bound; the IR has no loops, so Loop needs a constant trip count (or a "
                    "declared scan-output length)")


def _empty_scan_outputs(ctx: NodeContext, body: onnx.GraphProto, carried: list[Value],
                        cond: Flag) -> list[Value]:
    """Scan outputs of a loop that runs no iteration: empty, typed by one (unused) import of
    the body (its ops are dead and pruned)."""
    outs = import_subgraph(ctx, body, [ctx.const(np.int64(0)), _flag_value(ctx, cond), *carried],
                           "body (for the scan outputs' types)")
    empty = []
    for k, v in enumerate(outs[1 + len(carried):]):
        if not v.type.is_static:
            raise ctx.error(f"scan output {k} of a loop with no iterations has the symbolic "
                            f"type {v.type}")
        empty.append(ctx.const(np.zeros((0,) + tuple(v.shape), dtype=v.dtype.np_dtype)))
    return empty


# --- Scan --------------------------------------------------------------------------------------


@converter("Scan", since=9)
def scan(ctx: NodeContext) -> list[Value]:
    body: onnx.GraphProto = ctx.attr("body")
    m = ctx.attr("num_scan_inputs")
    values = [ctx.input(i) for i in range(len(ctx.node.input))]
    n = len(values) - m
    k = len(body.output) - n
    if n < 0 or k < 0:
        raise ctx.error(f"num_scan_inputs={m} does not fit {len(values)} inputs and a body with "
                        f"{len(body.output)} outputs")
    in_axes = _per(ctx, "scan_input_axes", m, 0)
    in_dirs = _per(ctx, "scan_input_directions", m, 0)
    out_axes = _per(ctx, "scan_output_axes", k, 0)
    out_dirs = _per(ctx, "scan_output_directions", k, 0)
    states, outs = _unroll_scan(ctx, body, values[:n], values[n:], in_axes, in_dirs, out_axes,
                                out_dirs)
    return (states + outs)[:len(ctx.node.output)]


@converter("Scan", since=8)
def scan8(ctx: NodeContext) -> list[Value]:
    """Scan-8: every state and sequence has a leading batch dim; each batch row is scanned
    separately (along axis 1), then the results are stacked back along the batch dim."""
    body: onnx.GraphProto = ctx.attr("body")
    m = ctx.attr("num_scan_inputs")
    values = [ctx.input(i) for i in range(1, len(ctx.node.input))]
    n = len(values) - m
    k = len(body.output) - n
    if n < 0 or k < 0:
        raise ctx.error(f"num_scan_inputs={m} does not fit {len(values)} inputs and a body with "
                        f"{len(body.output)} outputs")
    batches = {v.shape[0] if v.type.rank else None for v in values}
    if len(batches) != 1 or not isinstance(next(iter(batches)), int):
        raise ctx.error(f"states and scan inputs need one static batch dim (dim 0), got "
                        f"{[list(v.shape) for v in values]}")
    batch = int(next(iter(batches)))
    if ctx.has_input(0):
        lens = ctx.require_known(0, "sequence_lens")
        full = {v.shape[1] for v in values[n:]}
        if len(full) != 1 or any(int(x) != next(iter(full)) for x in lens.reshape(-1)):
            raise ctx.error(f"sequence_lens {lens.tolist()} must all equal the full sequence "
                            f"length {sorted(full, key=str)}; partial sequences are not supported")
    dirs = _per(ctx, "directions", m, 0)
    rows: list[list[Value]] = []
    for b in range(batch):
        idx = ctx.const(np.int64(b))
        row = [ctx.op("gather", v, idx, axis=0) for v in values]
        states, outs = _unroll_scan(ctx, body, row[:n], row[n:], [0] * m, dirs, [0] * k,
                                    [0] * k, f" (batch {b})")
        rows.append(states + outs)
    return [_stack(ctx, [r[j] for r in rows], 0, f"output {j}")
            for j in range(n + k)][:len(ctx.node.output)]


def _per(ctx: NodeContext, name: str, count: int, default: int) -> list[int]:
    vals = list(ctx.attr(name, [default] * count))
    if len(vals) != count:
        raise ctx.error(f"attribute {name}={vals} must have {count} entries")
    for v in vals:
        if name.endswith("directions") and v not in (0, 1):
            raise ctx.error(f"attribute {name}={vals}: directions are 0 (forward) or 1 (reverse)")
    return vals


def _unroll_scan(ctx: NodeContext, body: onnx.GraphProto, states: list[Value],
                 seqs: list[Value], in_axes: list[int], in_dirs: list[int],
                 out_axes: list[int], out_dirs: list[int], where: str = "") -> \
        tuple[list[Value], list[Value]]:
    """Run the scan body once per element of the sequences; returns (final states, stacked
    per-iteration outputs)."""
    if not seqs:
        raise ctx.error("Scan needs at least one scan input (num_scan_inputs >= 1)")
    axes, lengths = [], set()
    for j, (x, a) in enumerate(zip(seqs, in_axes)):
        if not -x.type.rank <= a < x.type.rank:
            raise ctx.error(f"scan input {j}: axis {a} is out of range for shape {list(x.shape)}")
        axes.append(a % x.type.rank)
        lengths.add(x.shape[a % x.type.rank])
    if len(lengths) != 1 or not isinstance(next(iter(lengths)), int):
        raise ctx.error(f"the scan inputs need one static sequence length, got "
                        f"{sorted(map(str, lengths))}{where}; the IR has no loops, so Scan is "
                        "unrolled at import time")
    length = int(next(iter(lengths)))
    if length == 0:
        raise ctx.error(f"the sequence length is 0{where}; an empty Scan is not supported")
    if length > MAX_UNROLL:
        raise ctx.error(f"the sequence length {length} exceeds {MAX_UNROLL}; Scan is unrolled at "
                        "import time")
    per_step: list[list[Value]] = []
    for t in range(length):
        elems = [ctx.op("gather", x, ctx.const(np.int64(length - 1 - t if d else t)), axis=a)
                 for x, a, d in zip(seqs, axes, in_dirs)]
        outs = import_subgraph(ctx, body, states + elems, f"body (iteration {t}{where})")
        states = outs[:len(states)]
        per_step.append(outs[len(states):])
    stacked = []
    for j, (a, d) in enumerate(zip(out_axes, out_dirs)):
        items = [step[j] for step in per_step]
        stacked.append(_stack(ctx, items[::-1] if d else items, a, f"scan output {j}"))
    return states, stacked
