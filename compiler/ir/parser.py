"""Parse the IR text form (see printer.py) with a lark LALR grammar.

Parsing checks syntax and names (an undefined value or a redefinition is a ParseError with
file:line:col and a caret under the spot); types, attributes and op semantics are checked by the
verifier, so that a parsed module can still be shown and diagnosed with its own line numbers.
"""
from __future__ import annotations

import functools
import json
import re
from typing import Any, Optional

import lark
import numpy as np

from . import dtypes as dt
from .core import Function, Location, Module, Op, Value
from .registry import AttrSpec, coerce_attr, find_op
from .types import TensorType, TypeInferenceError

GRAMMAR = r"""
start: "module" SYMREF "{" item* "}"
?item: dim_decl | const_decl | func
dim_decl: "dim" DIMSYM "in" "[" INT "," bound "]"
?bound: INT | INF
const_decl: "const" SYMREF ":" TYPE "=" const_value
?const_value: EXTERNAL | DENSE
func: "func" SYMREF "(" [arg ("," arg)*] ")" "->" "(" [TYPE ("," TYPE)*] ")" "{" op* ret "}"
arg: VALUE ":" TYPE
op: RESULTS NAME OPERANDS [ATTRS] TYPES [loc]
ret: RETURN [VALUE ("," VALUE)*]
loc: "loc" "(" [STRING] [AT STRING [":" INT [":" INT]]] ")"

// An op line is a handful of coarse tokens (results, operand list, attribute dict, result
// types), split further in Python: lark's cost is per token, and this keeps a 10,000-op module
// well under a second.
RESULTS: /%[A-Za-z0-9_.]+(\s*,\s*%[A-Za-z0-9_.]+)*\s*=/
OPERANDS: /\(\s*(%[A-Za-z0-9_.]+(\s*,\s*%[A-Za-z0-9_.]+)*\s*)?\)/
ATTRS: /\{([^{}"\n]|"([^"\\\n]|\\.)*")*\}/
TYPES: /:\s*[a-z][a-z0-9]*\[[^\]\n]*\](\s*,\s*[a-z][a-z0-9]*\[[^\]\n]*\])*/
DENSE: /dense<\[[^\]]*\]>/
RETURN: "return"
EXTERNAL: "external"
INF: "inf"
AT: "at"
SYMREF: /@[A-Za-z0-9_.]+/
VALUE: /%[A-Za-z0-9_.]+/
DIMSYM: /\?[A-Za-z_][A-Za-z0-9_]*/
TYPE: /[a-z][a-z0-9]*\[[^\]\n]*\]/
NAME: /[A-Za-z_][A-Za-z0-9_.]*/
INT: /[-+]?\d+/
STRING: /"([^"\\\n]|\\.)*"/
COMMENT: /\/\/[^\n]*/
%import common.WS
%ignore WS
%ignore COMMENT
"""

_TERMINAL_NAMES = {
    "SYMREF": "@name", "VALUE": "%value", "DIMSYM": "?dim", "TYPE": "a type like f32[2,?n]",
    "NAME": "a name", "INT": "an integer", "STRING": "a string",
    "RESULTS": "results like '%0 ='", "OPERANDS": "operands like (%a, %b)",
    "ATTRS": "attributes like {axis = 1}", "TYPES": "':' and result types",
    "DENSE": "dense<[...]>", "EXTERNAL": "'external'",
    "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['",
    "RSQB": "']'", "COMMA": "','", "COLON": "':'", "EQUAL": "'='", "RETURN": "'return'",
    "MORETHAN": "'>'", "LESSTHAN": "'<'", "$END": "end of input",
}


class ParseError(ValueError):
    """A syntax or name error, with file:line:col and the offending line under a caret."""

    def __init__(self, message: str, line: Optional[int] = None, col: Optional[int] = None,
                 source: Optional[str] = None, filename: Optional[str] = None) -> None:
        self.message = message
        self.line = line
        self.col = col
        self.filename = filename or "<string>"
        text = f"{self.filename}:{line if line is not None else '?'}:{col if col is not None else '?'}: error: {message}"
        if source is not None and line is not None:
            lines = source.splitlines()
            if 0 < line <= len(lines):
                text += "\n" + lines[line - 1] + "\n" + " " * max((col or 1) - 1, 0) + "^"
        super().__init__(text)


class SymRef(str):
    """An `@name` token (a constant or function name)."""

    line: Optional[int] = None


class DimSym(str):
    """A `?name` token in an attribute."""


class Word(str):
    """A bare word in an attribute: a dtype, true/false, inf/nan."""


class _Located:
    """A parsed piece with the token position it started at."""

    __slots__ = ("data", "line", "col")

    def __init__(self, data: Any, line: int, col: int) -> None:
        self.data = data
        self.line = line
        self.col = col


def _pos(tok: lark.Token) -> tuple[int, int]:
    return tok.line, tok.column  # type: ignore[return-value]


def _name_pos(tok: "lark.Token | _Located") -> tuple[str, int, int]:
    """A value name (without %) and where it is, from a VALUE token or a split-out name."""
    if isinstance(tok, _Located):
        return tok.data, tok.line, tok.col
    return str(tok)[1:], tok.line, tok.column  # type: ignore[return-value]


class _ToPython(lark.Transformer):
    """Runs inside the LALR parser (no parse tree is built): tokens to Python records."""

    def TYPE(self, tok: lark.Token) -> _Located:
        return _Located(parse_type(str(tok), *_pos(tok)), *_pos(tok))

    def TYPES(self, tok: lark.Token) -> list[_Located]:
        line, col = _pos(tok)
        return [_Located(parse_type(m.group(), line, col + m.start()), line, col + m.start())
                for m in _TYPE_RE.finditer(tok)]

    def RESULTS(self, tok: lark.Token) -> list[_Located]:
        return _names_in(tok)

    def OPERANDS(self, tok: lark.Token) -> list[_Located]:
        return _names_in(tok)

    def ATTRS(self, tok: lark.Token) -> list[tuple[str, Any]]:
        return _AttrReader(str(tok), *_pos(tok)).read()

    def DENSE(self, tok: lark.Token) -> _Located:
        body = tok[len("dense<["):-len("]>")].strip()
        return _Located([t.strip() for t in body.split(",")] if body else [], *_pos(tok))

    def INT(self, tok: lark.Token) -> int:
        return int(tok)

    def STRING(self, tok: lark.Token) -> str:
        return json.loads(tok)

    def SYMREF(self, tok: lark.Token) -> SymRef:
        ref = SymRef(tok[1:])
        ref.line = tok.line  # a function's name carries the function's line
        return ref

    def DIMSYM(self, tok: lark.Token) -> DimSym:
        return DimSym(tok[1:])

    def loc(self, items: list) -> Location:
        name, _at, file, line, col = (items + [None] * 5)[:5]
        return Location(name=name, file=file, line=line, col=col)


_OPERANDS_PREFIX = re.compile(r"\(\s*(%[A-Za-z0-9_.]+\s*(,\s*%[A-Za-z0-9_.]+\s*)*)?")
_TYPE_RE = re.compile(r"[a-z][a-z0-9]*\[[^\]]*\]")
_NAME_IN_RE = re.compile(r"%[A-Za-z0-9_.]+")


def _names_in(tok: lark.Token) -> list[_Located]:
    """The %names in a results or operands token, each with its own column."""
    line, col = _pos(tok)
    return [_Located(m.group()[1:], line, col + m.start()) for m in _NAME_IN_RE.finditer(tok)]


class _AttrReader:
    """Reads an attribute dict token `{key = value, ...}`: values are numbers, strings, bare
    words (dtypes, true/false, inf/nan), @symbols, ?dims and flat or nested lists of them."""

    TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\\n]|\\.)*")"""
                       r"|(?P<float>[-+]?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)|-inf)"
                       r"|(?P<int>[-+]?\d+)|(?P<sym>@[A-Za-z0-9_.]+)|(?P<dim>\?[A-Za-z_][A-Za-z0-9_]*)"
                       r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<punct>[\[\]=,{}]))")

    def __init__(self, text: str, line: int, col: int) -> None:
        self.text, self.line, self.col = text, line, col
        self.tokens: list[tuple[str, Any, int]] = []
        pos = 0
        while pos < len(text):
            m = self.TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise self.error("unexpected character " + repr(text[pos:].lstrip()[:1]),
                                 pos + len(text[pos:]) - len(text[pos:].lstrip()))
            kind = m.lastgroup
            raw = m.group(kind)
            start = m.start(kind)
            value: Any = {"str": lambda r: json.loads(r), "float": float, "int": int,
                          "sym": lambda r: SymRef(r[1:]), "dim": lambda r: DimSym(r[1:]),
                          "name": Word, "punct": str}[kind](raw)
            self.tokens.append((kind, value, start))
            pos = m.end()
        self.i = 0

    def error(self, message: str, offset: int) -> ParseError:
        return ParseError(message, self.line, self.col + offset)

    def peek(self) -> tuple[str, Any, int]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", None, len(self.text))

    def expect(self, punct: str) -> None:
        kind, value, at = self.peek()
        if kind != "punct" or value != punct:
            shown = "end of attributes" if kind == "end" else repr(str(value))
            raise self.error(f"expected '{punct}' in attributes, got {shown}", at)
        self.i += 1

    def read(self) -> list[tuple[str, Any]]:
        self.expect("{")
        items: list[tuple[str, Any]] = []
        while self.peek()[:2] != ("punct", "}"):
            if items:
                self.expect(",")
            kind, key, at = self.peek()
            if kind != "name":
                raise self.error(f"expected an attribute name, got {str(key)!r}", at)
            self.i += 1
            self.expect("=")
            items.append((str(key), self.value()))
        self.expect("}")
        if self.i != len(self.tokens):
            raise self.error("unexpected text after the attributes", self.peek()[2])
        return items

    def value(self) -> Any:
        kind, value, at = self.peek()
        if kind == "punct" and value == "[":
            self.i += 1
            out = []
            while self.peek()[:2] != ("punct", "]"):
                if out:
                    self.expect(",")
                out.append(self.value())
            self.i += 1
            return out
        if kind in ("punct", "end"):
            raise self.error("expected an attribute value, got "
                             + ("end of attributes" if kind == "end" else repr(value)), at)
        self.i += 1
        return value


_PARSER: Optional[lark.Lark] = None


def _get_parser() -> lark.Lark:
    global _PARSER
    if _PARSER is None:
        _PARSER = lark.Lark(GRAMMAR, parser="lalr", transformer=_ToPython(),
                            propagate_positions=False, maybe_placeholders=True, cache=True)
    return _PARSER


def parse_type(text: str, line: Optional[int] = None, col: Optional[int] = None) -> TensorType:
    """`f32[2,?n]` -> TensorType; ParseError for an unknown dtype or a bad dim."""
    try:
        return _parse_type(text)
    except ParseError as e:
        raise ParseError(e.message, line, col) from None


@functools.lru_cache(maxsize=4096)
def _parse_type(text: str) -> TensorType:
    # types repeat throughout a module, and TensorType is immutable: parse each text once
    name, _, rest = text.partition("[")
    if name not in dt.BY_NAME:
        raise ParseError(f"unknown dtype '{name}'; the IR has {', '.join(dt.BY_NAME)}")
    dims: list[Any] = []
    body = rest[:-1].strip()
    for part in body.split(",") if body else []:
        part = part.strip()
        try:
            dims.append(part[1:] if part.startswith("?") else int(part))
        except ValueError:
            raise ParseError(f"bad dim '{part}' in type {text}") from None
    try:
        return TensorType(tuple(dims), dt.BY_NAME[name])
    except (TypeError, ValueError) as e:
        raise ParseError(f"bad type {text}: {e}") from None


def parse(text: str, weights: Optional[dict[str, np.ndarray]] = None,
          filename: Optional[str] = None) -> Module:
    """Parse IR text into a Module. `weights` supplies the arrays of constants printed as
    `external` (a safetensors file's contents, see `load`)."""
    try:
        tree = _get_parser().parse(text)
    except lark.exceptions.VisitError as e:  # an error raised inside a callback
        orig = e.orig_exc
        if isinstance(orig, ParseError):
            raise ParseError(orig.message, orig.line, orig.col, text, filename) from None
        raise
    except lark.exceptions.UnexpectedInput as e:
        raise ParseError(_describe(e, text), e.line, e.column, text, filename) from None
    except ParseError as e:
        raise ParseError(e.message, e.line, e.col, text, filename) from None
    try:
        return _Builder(text, filename, weights or {}).build(tree)
    except ParseError as e:
        raise ParseError(e.message, e.line, e.col, text, filename) from None


def _describe(e: lark.exceptions.UnexpectedInput, text: str) -> str:
    """A readable message for lark's error (may move e.column to the precise spot)."""
    expected = set(getattr(e, "expected", None) or getattr(e, "allowed", None) or ())
    pos = getattr(e, "pos_in_stream", None)
    if isinstance(e, lark.exceptions.UnexpectedToken):
        pos = e.token.start_pos
    if "OPERANDS" in expected and pos is not None and text.startswith("(", pos):
        # the operand list is one token: point at the character inside it that is wrong
        ok = _OPERANDS_PREFIX.match(text, pos)
        bad = ok.end() if ok else pos
        e.column += bad - pos
        ch = repr(text[bad]) if bad < len(text) else "end of input"
        return f"unexpected {ch} in the operand list; expected %name, ',' or ')'"
    if "TYPES" in expected and pos is not None and text.startswith(":", pos):
        bad = text[pos:].split("\n", 1)[0]
        return f"bad result types {bad!r}; expected ': ' then types like f32[2,?n], comma-separated"
    names = sorted({_TERMINAL_NAMES.get(t, repr(t.lower())) for t in expected})
    shown = ", ".join(names) if len(names) < 8 else "one of " + ", ".join(names[:8]) + ", ..."
    if isinstance(e, lark.exceptions.UnexpectedToken):
        got = "end of input" if e.token.type == "$END" else repr(str(e.token))
        return f"unexpected {got}; expected {shown}"
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        ch = text[pos] if pos is not None and pos < len(text) else ""
        return f"unexpected character {ch!r}" + (f"; expected {shown}" if names else "")
    return "unexpected end of input"


class _Builder:
    """Turns the parser's records into a Module, resolving value names per function."""

    def __init__(self, text: str, filename: Optional[str], weights: dict[str, np.ndarray]) -> None:
        self.text = text
        self.filename = filename
        self.weights = weights

    def build(self, tree: lark.Tree) -> Module:
        name, *items = tree.children
        m = Module(str(name))
        m.source, m.source_file = self.text, self.filename
        for item in items:
            if item.data == "dim_decl":
                sym, lo, hi = item.children
                m.dim_bounds[str(sym)] = (lo, None if isinstance(hi, lark.Token) else hi)
            elif item.data == "const_decl":
                cname, typ, value = item.children
                m.constants[str(cname)] = self._constant(str(cname), typ, value)
            else:
                m.functions.append(self._function(item))
        return m

    def _constant(self, name: str, typ: _Located, value: Any) -> np.ndarray:
        t: TensorType = typ.data
        if not t.is_static:
            raise ParseError(f"constant @{name} has symbolic dims: {t}", typ.line, typ.col)
        if isinstance(value, lark.Token):  # external
            if name not in self.weights:
                raise ParseError(f"constant @{name} is external, but no weights were given for it "
                                 "(load the module with compiler.ir.load, or pass weights=)",
                                 typ.line, typ.col)
            arr = np.asarray(self.weights[name])
            if tuple(arr.shape) != t.shape or arr.dtype != t.dtype.np_dtype:
                raise ParseError(f"weights for @{name} are {arr.dtype}{list(arr.shape)}, "
                                 f"the text declares {t}", typ.line, typ.col)
            return arr
        values = value.data
        n = t.num_elements()
        if len(values) != n:
            raise ParseError(f"constant @{name} : {t} needs {n} values, dense<> has {len(values)}",
                             typ.line, typ.col)
        return _dense_array(values, t, typ)

    def _function(self, item: lark.Tree) -> Function:
        fname, *rest = item.children
        ret = rest[-1]
        args_and_types, op_trees = [], []
        for r in rest[:-1]:
            if isinstance(r, lark.Tree) and r.data == "op":
                op_trees.append(r)
            else:
                args_and_types.append(r)
        fn = Function(str(fname))
        defined: dict[str, Value] = {}

        def define(tok: "lark.Token | _Located", t: TensorType, owner: Optional[Op] = None,
                   index: int = 0) -> Value:
            name, line, col = _name_pos(tok)
            if name in defined:
                raise ParseError(f"redefinition of %{name}", line, col)
            v = Value(t, name, owner, index)
            defined[name] = v
            return v

        out_types: list[TensorType] = []
        for a in args_and_types:
            if a is None:
                continue
            if isinstance(a, lark.Tree):  # arg
                tok, typ = a.children
                fn.args.append(define(tok, typ.data))
            else:
                out_types.append(a.data)
        pending = []
        for t in op_trees:
            results, opname, operands, attr_items, types, loc = t.children
            first = results[0]
            if len(types) != len(results):
                raise ParseError(f"{opname} has {len(results)} results but {len(types)} types",
                                 types[0].line, types[0].col)
            op = Op(str(opname), [], [ty.data for ty in types], {}, loc)
            op.src_line = first.line
            op.results = [define(r, ty.data, op, i) for i, (r, ty) in enumerate(zip(results, types))]
            op.attrs = self._attrs(str(opname), attr_items or [], first.line, first.col)
            pending.append((op, operands))
            fn.ops.append(op)
        for op, toks in pending:
            op.operands = [self._use(defined, tok) for tok in toks]
        ret_tok, *ret_vals = ret.children
        fn.outputs = [self._use(defined, tok) for tok in ret_vals if tok is not None]
        if len(fn.outputs) != len(out_types):
            raise ParseError(f"@{fn.name} returns {len(fn.outputs)} values, its signature declares "
                             f"{len(out_types)}", *_pos(ret_tok))
        for i, (v, t) in enumerate(zip(fn.outputs, out_types)):
            if v.type != t:
                raise ParseError(f"@{fn.name} returns %{v.name} of type {v.type} as result {i}, "
                                 f"the signature declares {t}", *_pos(ret_tok))
        fn.src_line = fname.line
        return fn

    @staticmethod
    def _use(defined: dict[str, Value], tok: "lark.Token | _Located") -> Value:
        name, line, col = _name_pos(tok)
        if name not in defined:
            raise ParseError(f"use of undefined value %{name}", line, col)
        return defined[name]

    @staticmethod
    def _attrs(opname: str, items: list[tuple[str, Any]], line: int, col: int) -> dict[str, Any]:
        """Attributes, converted by the op's schema. Values that do not fit stay raw, and the
        verifier reports them with the op's line; a duplicated key is a parse error."""
        raw: dict[str, Any] = {}
        for key, value in items:
            if key in raw:
                raise ParseError(f"{opname}: attribute '{key}' is given twice", line, col)
            raw[key] = value
        opdef = find_op(opname)
        if opdef is None:
            return raw
        out: dict[str, Any] = {}
        for key, value in raw.items():
            spec = opdef.attrs.get(key)
            out[key] = value if spec is None else _from_text(opname, key, spec, value)
        for key, spec in opdef.attrs.items():
            if key not in out and not spec.required:
                out[key] = spec.default
        return out


_WORD_FLOATS = {"inf": float("inf"), "nan": float("nan")}


def _from_text(op: str, key: str, spec: AttrSpec, value: Any) -> Any:
    """One attribute from its parsed tokens to the schema's Python value (raw if it does not fit)."""
    try:
        return coerce_attr(op, key, spec, _untoken(spec.kind, value))
    except TypeInferenceError:
        return value


def _untoken(kind: str, v: Any) -> Any:
    """Token classes to plain values where they fit `kind`; a misfit becomes _Raw, which no
    coercion accepts (a bare word where a string is expected, a quoted string for a dtype)."""
    elem = {"ints": "int", "floats": "float", "strs": "str", "dims": "dim"}.get(kind)
    if elem is not None and isinstance(v, list):
        return [_untoken(elem, x) for x in v]
    if isinstance(v, Word):
        if kind == "bool" and v in ("true", "false"):
            return v == "true"
        if kind == "float" and v in _WORD_FLOATS:
            return _WORD_FLOATS[v]
        return str(v) if kind == "dtype" else _Raw(v)
    if isinstance(v, SymRef):
        return str(v) if kind == "symbol" else _Raw(v)
    if isinstance(v, DimSym):
        return str(v) if kind == "dim" else _Raw(v)
    if isinstance(v, str):
        return v if kind == "str" else _Raw(v)
    return v


class _Raw:
    """A token that must not coerce to the attribute's kind; the verifier reports it."""

    def __init__(self, v: Any) -> None:
        self.v = v

    def __repr__(self) -> str:
        return repr(self.v)


def _narrow_floats(texts: list[str], d: dt.DType) -> np.ndarray:
    """Narrow-float element texts: numbers (exact in f64), inf, nan, -nan, or `nan:0xHH` (a nan
    by its bits; see printer.format_scalars)."""
    bits = []
    for x in texts:
        if x.startswith("nan:0x"):
            b = int(x[len("nan:0x"):], 16)
            if b >= 1 << d.bits or not np.isnan(np.array(b, np.uint8).view(d.np_dtype)
                                               .astype(np.float64)):
                raise ValueError(f"{x!r} is not a nan of {d}")
            bits.append(b)
        else:
            bits.append(int(np.array(float(x)).astype(d.np_dtype).view(np.uint8)))
    return np.array(bits, dtype=np.uint8).view(d.np_dtype)


def _dense_array(texts: list[str], t: TensorType, typ: _Located) -> np.ndarray:
    """The values of `dense<[...]>` (element texts) as an array of type t."""
    npd = t.dtype.np_dtype
    try:
        if t.dtype.is_bool:
            bad = [x for x in texts if x not in ("true", "false")]
            if bad:
                raise ValueError(f"{bad[0]!r} is not true or false")
            arr = np.array([x == "true" for x in texts], dtype=np.bool_)
        elif t.dtype.is_integral:
            wide = np.array([int(x) for x in texts], dtype=object)
            lo, hi = t.dtype.int_range()
            if any(v < lo or v > hi for v in wide):
                raise ValueError(f"a value is out of range for {t.dtype}")
            # ml_dtypes' 4/2-bit ints convert from i64, not from Python objects
            arr = wide.astype(np.int64).astype(npd) if t.dtype.is_narrow else wide.astype(npd)
        elif t.dtype.is_narrow_float:
            arr = _narrow_floats(texts, t.dtype)
        else:
            for x in texts:
                float(x)  # refuse words and other non-numbers with Python's message
            # NumPy parses each text straight to f32/f64: correctly rounded, so shortest
            # round-trip texts give back the exact values
            via = npd if npd in (np.float32, np.float64) else np.float64
            arr = np.array(texts, dtype=np.str_).astype(via).astype(npd) if texts else \
                np.zeros(0, npd)
    except ValueError as e:
        raise ParseError(f"bad dense<> values for {t}: {e}", typ.line, typ.col) from None
    return arr.reshape(t.shape)
