"""The pass registry and pipeline strings.

`register(name)` adds a pass class (a dataclass whose fields are its options, with a
`run(module) -> bool` method that says whether it changed the module). `parse_pipeline` turns
"a,b{opt=1,flag=true}" into pass instances, checking names and option types.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from compiler.ir import Module


class Pass(Protocol):
    name: str

    def run(self, module: Module) -> bool: ...


class PassError(ValueError):
    """A bad pipeline string, pass name or option."""


_PASSES: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: register a pass (made a dataclass if it is not one) under `name`."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise PassError(f"pass name {name!r} must be lower-case words joined by '-'")

    def deco(cls: type) -> type:
        if name in _PASSES:
            raise PassError(f"pass {name!r} is already registered (by {_PASSES[name].__qualname__})")
        if not dataclasses.is_dataclass(cls):
            cls = dataclass(cls)
        if not callable(getattr(cls, "run", None)):
            raise PassError(f"pass {name!r} ({cls.__qualname__}) has no run(module) method")
        cls.name = name  # type: ignore[attr-defined]
        _PASSES[name] = cls
        return cls
    return deco


def available_passes() -> dict[str, type]:
    """Registered passes by name (importing the built-in ones first)."""
    _load_builtin()
    return dict(_PASSES)


def pass_options(cls: type) -> list[tuple[str, str, Any]]:
    """(option name as written in pipelines, type name, default) for each option of a pass."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        tname = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        out.append((f.name.replace("_", "-"), tname, default))
    return out


_ITEM_RE = re.compile(r"\s*([A-Za-z0-9_-]+)\s*(\{([^{}]*)\})?\s*(,|$)")


def parse_pipeline(text: str) -> "Pipeline":
    """Parse "name,name{key=value,...}" into a Pipeline; PassError names what is wrong."""
    passes = available_passes()
    items: list[Any] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _ITEM_RE.match(text, pos)
        if not m:
            raise PassError(f"bad pipeline {text!r} at column {pos + 1}: expected name or "
                            "name{key=value,...}")
        name, opts = m.group(1), m.group(3)
        if name not in passes:
            known = ", ".join(sorted(passes)) or "(none registered)"
            raise PassError(f"unknown pass '{name}'; available: {known}")
        items.append(_instantiate(passes[name], name, opts or ""))
        pos = m.end()
    return Pipeline(items)


def _instantiate(cls: type, name: str, opts: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in opts.split(","))):
        key, eq, raw = part.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or key not in fields:
            valid = ", ".join(k.replace("_", "-") for k in fields) or "(none)"
            raise PassError(f"pass '{name}': bad option {part!r}; options are {valid}")
        kwargs[key] = _convert(name, key, fields[key], raw.strip())
    return cls(**kwargs)


def _convert(name: str, key: str, f: dataclasses.Field, raw: str) -> Any:
    tname = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    try:
        if tname == "bool":
            if raw not in ("true", "false", "1", "0"):
                raise ValueError
            return raw in ("true", "1")
        if tname == "int":
            return int(raw)
        if tname == "float":
            return float(raw)
        return raw
    except ValueError:
        raise PassError(f"pass '{name}': option {key.replace('_', '-')}={raw!r} is not a "
                        f"{tname}") from None


@dataclass
class Pipeline:
    """Passes run in order; each is followed by the verifier when `verify_each` is set."""

    passes: list[Any] = field(default_factory=list)
    verify_each: bool = True

    def run(self, module: Module) -> Module:
        """Run the passes with no instruments but verification (see passes.manager)."""
        from .manager import PassManager
        return PassManager(self, verify_each=self.verify_each).run(module)

    def __str__(self) -> str:
        return ",".join(p.name for p in self.passes)


_builtin_loaded = False


def _load_builtin() -> None:
    """Import every module of this package once: each registers its passes."""
    global _builtin_loaded
    if not _builtin_loaded:
        _builtin_loaded = True
        import importlib
        import pkgutil

        import passes
        for info in pkgutil.iter_modules(passes.__path__):
            if info.name not in ("registry", "rewrite", "manager"):
                importlib.import_module(f"passes.{info.name}")
