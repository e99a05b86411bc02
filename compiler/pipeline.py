"""Default pass pipelines, one per opt_level; read top to bottom like a table of contents.

Passes that a build does not have registered are left out (and listed by `missing_passes`), so a
pipeline never names a pass that does not exist.
"""
from __future__ import annotations

PIPELINES: dict[int, list[str]] = {
    0: [],
    1: [
        "fold-constants",   # evaluate ops on constants through the interpreter
        "simplify",         # algebraic identities, reshape/transpose/cast chains
        "cse",              # merge identical ops
        "prune-dead",       # drop unused ops and constants
    ],
    2: [
        "fold-constants",
        "simplify",
        "fold-batchnorm",   # inference batch norm into the preceding conv/matmul weights
        "rewrite-qdq",      # DequantizeLinear -> op -> QuantizeLinear to integer ops
        "fold-constants",   # what the rewrites exposed
        "cse",
        "prune-dead",
        "fuse-ops",         # fused groups: one kernel each for the code generators
    ],
}
PIPELINES[3] = PIPELINES[2]


def default_pipeline(opt_level: int) -> str:
    """The pipeline string for an opt_level (0..3), limited to registered passes."""
    from passes import available_passes
    if opt_level not in PIPELINES:
        raise ValueError(f"opt_level must be 0..3, got {opt_level}")
    have = available_passes()
    return ",".join(p for p in PIPELINES[opt_level] if p in have)


def missing_passes(opt_level: int) -> list[str]:
    from passes import available_passes
    have = available_passes()
    return [p for p in PIPELINES[opt_level] if p not in have]
