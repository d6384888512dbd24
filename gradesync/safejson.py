"""JSON from strangers (webhook bodies, operators' files), parsed with limits.

Python's ``json`` module raises ``RecursionError`` on deep nesting and ``ValueError`` on integers
past its digit limit, and accepts ``NaN``/``Infinity``, which JSON does not have. Here each of
those is a :class:`JsonRejected` with a message a caller can act on, and the structure is
checked before the parser recurses into it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 64

# A JSON string literal: what lies inside strings never counts as nesting.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class JsonRejected(ValueError):
    """Not JSON, or JSON beyond the limits."""


def depth(text: str) -> int:
    """How deeply arrays and objects nest (0 for a scalar)."""
    level = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub('""', text)):
        if bracket in "[{":
            level += 1
            deepest = max(deepest, level)
        else:
            level -= 1
    return deepest


def _number(text: str) -> str:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonRejected(f"a number is longer than {MAX_NUMBER_CHARS} characters")
    return text


def _int(text: str) -> int:
    return int(_number(text))


def _float(text: str) -> float:
    value = float(_number(text))
    if math.isinf(value):
        raise JsonRejected("a number is too large")
    return value


def _constant(name: str) -> Any:
    raise JsonRejected(f"{name} is not JSON")


def loads(data: str | bytes) -> Any:
    """Parse ``data`` (UTF-8 if bytes) or raise :class:`JsonRejected`."""
    if isinstance(data, bytes):
        try:
            data = data.decode()
        except UnicodeDecodeError as exc:
            raise JsonRejected(f"not UTF-8 (byte {exc.start})") from exc
    if depth(data) > MAX_DEPTH:
        raise JsonRejected(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(data, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except JsonRejected:
        raise
    except json.JSONDecodeError as exc:
        raise JsonRejected(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
