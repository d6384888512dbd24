"""Read events from a file: one JSON object, a JSON array, or NDJSON (one object per line).

Files come from people and other programs: a line that is not UTF-8, not JSON, nested too deeply
or carrying an absurd number is reported as that line's error, and the other lines still go in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from gradesync import safejson

# What Windows tools (Notepad, PowerShell's utf8) write before UTF-8 text.
BOM = b"\xef\xbb\xbf"


class Item(BaseModel):
    """One input item: its position (1-based) and either the parsed JSON or why it failed."""

    position: int
    data: Any = None
    error: str | None = None


class NotText(ValueError):
    """The input is binary (a NUL byte), not a JSON or XML text."""


def decode(data: bytes) -> str:
    """The whole input as text, for formats read in one piece (ILIAS's LPData XML)."""
    if b"\x00" in data:
        raise NotText("this is a binary file, not JSON or XML text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotText(f"not UTF-8 text (byte {exc.start})") from exc


def read_items(data: bytes) -> Iterator[Item]:
    if b"\x00" in data:
        raise NotText("this is a binary file, not JSON text")
    # Off the whole file, not only the one-document read: NDJSON's first line lost its event.
    data = data.removeprefix(BOM)
    stripped = data.strip()
    if not stripped:
        return
    try:
        whole = safejson.loads(stripped)
    except safejson.JsonRejected:
        pass
    else:
        items = whole if isinstance(whole, list) else [whole]
        for n, value in enumerate(items, 1):
            yield Item(position=n, data=value)
        return
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield Item(position=n, data=safejson.loads(line))
        except safejson.JsonRejected as exc:
            yield Item(position=n, error=f"malformed JSON on line {n}: {exc}")
