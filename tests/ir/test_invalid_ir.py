"""Invalid IR text files (tests/ir/invalid/*.ir), each rejected with the expected message and line.

Each file starts with `// expect: <text in the message>` and `// line: <N or none>`.
"""
from __future__ import annotations

import pathlib
import re

import pytest

from compiler import ir

CASES = sorted((pathlib.Path(__file__).parent / "invalid").glob("*.ir"))


def _header(text: str, key: str) -> str:
    m = re.search(rf"^// {key}: (.*)$", text, re.M)
    assert m, f"missing '// {key}:' header"
    return m.group(1).strip()


def test_there_are_enough_cases():
    assert len(CASES) >= 15


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_invalid_ir_is_rejected(path: pathlib.Path):
    text = path.read_text()
    expect, line = _header(text, "expect"), _header(text, "line")
    with pytest.raises((ir.ParseError, ir.VerificationError)) as info:
        ir.verify(ir.parse(text, filename=str(path)))
    err = info.value
    assert expect in str(err)
    if line == "none":
        assert err.line is None
    else:
        assert err.line == int(line)
        # the message names the file and line, and shows the offending line's text
        assert f"{path}:{line}:" in str(err)
        assert text.splitlines()[int(line) - 1].strip() in str(err)
