"""The op registry: one declarative record per op drives the printer, parser, verifier, shape
inference, the interpreter and constant folding.

An op is declared once with `def_op`: its operands, typed attributes with defaults, traits, a type
rule and a NumPy reference implementation. Nothing else needs to change to add an op.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

from . import dtypes as dt
from .types import Dim, TensorType, TypeInferenceError

TRAITS = frozenset({
    "pure",          # no side effects: may be removed, reordered, folded, merged
    "elementwise",   # each output element depends on the same-index input elements only
    "broadcasting",  # operands broadcast against each other (NumPy rules)
    "injective",     # each output element reads one input element (data movement)
    "reduction",     # reduces over axes
    "commutative",   # binary op whose operands may be swapped
    "quantized",     # works on quantized integers (scales and zero points)
    "contraction",   # matmul/conv-like: heavy compute that epilogues fuse into
})

ATTR_KINDS = frozenset({
    "int", "float", "bool", "str", "dtype", "symbol",
    "ints", "floats", "strs", "dims",  # lists; "dims" holds ints and symbolic dim names
})


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class AttrSpec:
    """An attribute's kind, its default (REQUIRED when it has none) and allowed string values.

    A default of None makes the attribute optional: None means "not given".
    """

    kind: str
    default: Any = REQUIRED
    choices: Optional[tuple[str, ...]] = None

    def __post_init__(self) -> None:
        if self.kind not in ATTR_KINDS:
            raise ValueError(f"unknown attribute kind {self.kind!r}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def attr(kind: str, default: Any = REQUIRED, choices: Optional[Sequence[str]] = None) -> AttrSpec:
    """Shorthand for AttrSpec in op declarations."""
    return AttrSpec(kind, default, tuple(choices) if choices is not None else None)


TypeRule = Callable[..., "TensorType | Sequence[TensorType]"]


@dataclass(frozen=True)
class OpDef:
    """One op's declaration. See `def_op` for the meaning of each field."""

    name: str
    operands: tuple[str, ...]
    attrs: Mapping[str, AttrSpec]
    traits: frozenset[str]
    type_rule: TypeRule
    reference: Callable[..., Any]
    doc: str = ""
    needs_out_shapes: bool = False
    operand_specs: tuple[tuple[str, str], ...] = field(default=())  # (name, "" | "?" | "*")

    @property
    def min_operands(self) -> int:
        return sum(1 for _, k in self.operand_specs if k == "")

    @property
    def max_operands(self) -> Optional[int]:
        """Largest operand count, None when the last operand is variadic."""
        if any(k == "*" for _, k in self.operand_specs):
            return None
        return len(self.operand_specs)

    def has(self, trait: str) -> bool:
        return trait in self.traits

    def check_operand_count(self, n: int) -> None:
        hi = self.max_operands
        if n < self.min_operands or (hi is not None and n > hi):
            want = (f"{self.min_operands}" if hi == self.min_operands else
                    f"{self.min_operands} to {hi}" if hi is not None else
                    f"at least {self.min_operands}")
            names = ", ".join(f"{nm}{k}" for nm, k in self.operand_specs)
            raise TypeInferenceError(f"{self.name} takes {want} operands ({names}), got {n}")

    def normalize_attrs(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """Check attributes against the schema, coerce them to canonical Python values, fill
        defaults. Raises TypeInferenceError naming the attribute."""
        unknown = sorted(set(attrs) - set(self.attrs))
        if unknown:
            raise TypeInferenceError(
                f"{self.name} has no attribute {', '.join(unknown)}; its attributes are "
                f"{', '.join(self.attrs) or '(none)'}")
        out: dict[str, Any] = {}
        for key, spec in self.attrs.items():
            if key not in attrs or (attrs[key] is None and spec.default is None):
                if spec.required:
                    raise TypeInferenceError(f"{self.name} needs attribute '{key}' ({spec.kind})")
                out[key] = spec.default
                continue
            out[key] = coerce_attr(self.name, key, spec, attrs[key])
        return out

    def infer(self, operand_types: Sequence[TensorType], attrs: Mapping[str, Any]) -> list[TensorType]:
        """Result types for these operand types and (normalized) attributes."""
        self.check_operand_count(len(operand_types))
        res = self.type_rule(*operand_types, **attrs)
        return [res] if isinstance(res, TensorType) else list(res)


def coerce_attr(op: str, key: str, spec: AttrSpec, value: Any) -> Any:
    """Canonical form of one attribute value (tuples for lists, DType for dtypes)."""
    def bad(why: str) -> TypeInferenceError:
        return TypeInferenceError(f"{op} attribute '{key}' must be {spec.kind}: {why}")

    k = spec.kind
    if k == "int":
        if isinstance(value, bool) or not isinstance(value, (int,)) and not _is_np_int(value):
            raise bad(f"got {value!r}")
        return int(value)
    if k == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not _is_np_num(value):
            raise bad(f"got {value!r}")
        return float(value)
    if k == "bool":
        if not isinstance(value, bool) and not (isinstance(value, int) and value in (0, 1)):
            raise bad(f"got {value!r}")
        return bool(value)
    if k in ("str", "symbol"):
        if not isinstance(value, str):
            raise bad(f"got {value!r}")
        if spec.choices is not None and value not in spec.choices:
            raise TypeInferenceError(f"{op} attribute '{key}' is {value!r}; expected one of "
                                     + ", ".join(repr(c) for c in spec.choices))
        return value
    if k == "dtype":
        try:
            return dt.dtype(value)
        except ValueError as e:
            raise bad(str(e)) from None
    # lists
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise bad(f"got {value!r}, not a list")
    items = list(value)
    elem = {"ints": "int", "floats": "float", "strs": "str"}.get(k)
    if elem is not None:
        return tuple(coerce_attr(op, key, AttrSpec(elem), v) for v in items)
    # dims: ints >= -1 (reshape's -1 and 0) or symbol names
    dims: list[Dim] = []
    for v in items:
        if isinstance(v, str):
            dims.append(v)
        elif not isinstance(v, bool) and (isinstance(v, int) or _is_np_int(v)):
            dims.append(int(v))
        else:
            raise bad(f"element {v!r} is neither an int nor a symbolic dim")
    return tuple(dims)


def _is_np_int(v: Any) -> bool:
    import numpy as np
    return isinstance(v, np.integer)


def _is_np_num(v: Any) -> bool:
    import numpy as np
    return isinstance(v, (np.integer, np.floating))


REGISTRY: dict[str, OpDef] = {}


def def_op(name: str, operands: Sequence[str], type_rule: TypeRule, reference: Callable[..., Any],
           *, attrs: Optional[Mapping[str, AttrSpec]] = None, traits: Sequence[str] = ("pure",),
           doc: str = "", needs_out_shapes: bool = False) -> OpDef:
    """Declare an op and add it to the registry.

    operands: names; a trailing "?" marks an optional operand (only at the end), a trailing "*"
      a variadic last operand ("inputs*" takes zero or more; use min count checks in the rule).
    type_rule(*operand_types, **attrs) -> TensorType or a sequence of them (several results).
    reference(*arrays, **attrs) -> ndarray or tuple of ndarrays: the op's meaning in NumPy.
      With needs_out_shapes=True it also gets `out_shapes=[tuple of ints per result]`.
    """
    if name in REGISTRY:
        raise ValueError(f"op {name!r} is already registered")
    unknown = set(traits) - TRAITS
    if unknown:
        raise ValueError(f"op {name!r}: unknown traits {sorted(unknown)}")
    specs: list[tuple[str, str]] = []
    for i, o in enumerate(operands):
        kind = o[-1] if o[-1] in "?*" else ""
        if kind == "*" and i != len(operands) - 1:
            raise ValueError(f"op {name!r}: variadic operand {o!r} must be last")
        if kind == "" and specs and specs[-1][1] == "?":
            raise ValueError(f"op {name!r}: optional operands must come last")
        specs.append((o.rstrip("?*"), kind))
    opdef = OpDef(name=name, operands=tuple(n for n, _ in specs), attrs=dict(attrs or {}),
                  traits=frozenset(traits), type_rule=type_rule, reference=reference, doc=doc,
                  needs_out_shapes=needs_out_shapes, operand_specs=tuple(specs))
    REGISTRY[name] = opdef
    return opdef


def get_op(name: str) -> OpDef:
    """The registered op `name`; KeyError with a helpful message if there is none."""
    _load_ops()
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown op '{name}'") from None


def find_op(name: str) -> Optional[OpDef]:
    _load_ops()
    return REGISTRY.get(name)


def all_ops() -> dict[str, OpDef]:
    _load_ops()
    return dict(REGISTRY)


_loaded = False


def _load_ops() -> None:
    """Import the op declaration modules once (they register themselves)."""
    global _loaded
    if not _loaded:
        _loaded = True
        from . import ops  # noqa: F401
