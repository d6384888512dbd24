"""Read events from a file: one JSON object, a JSON array, or NDJSON (one object per line)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel


class Item(BaseModel):
    """One input item: its position (1-based) and either the parsed JSON or why it failed."""

    position: int
    data: Any = None
    error: str | None = None


def read_items(text: str) -> Iterator[Item]:
    stripped = text.strip()
    if not stripped:
        return
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        whole = None
    else:
        items = whole if isinstance(whole, list) else [whole]
        for n, data in enumerate(items, 1):
            yield Item(position=n, data=data)
        return
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield Item(position=n, data=json.loads(line))
        except json.JSONDecodeError as exc:
            yield Item(position=n, error=f"malformed JSON: {exc.msg} at column {exc.colno}")
