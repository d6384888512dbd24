"""The literal wire examples in ``exchanges/``, loaded for both sides' contract tests.

Each file is one exchange as it travels on the wire: ``request`` (method, path, query, the
headers that matter, a ``form``, ``json`` or ``xml`` body) and ``response`` (status, the headers
that matter, a ``json`` body when it matters). ``volatile`` maps a location such as
``response.json.auditTrail.etag`` or ``request.headers.Authorization`` to the pattern its value
must fit: values a server chooses (tokens, etags, budget counters). The client is tested against
the literal values; the simulator's answers are matched by the pattern there. ``given`` holds
what the client is configured with to produce the request (a result-link secret).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).parent
SEED: dict[str, Any] = json.loads((HERE / "seed.json").read_text())


@dataclass(frozen=True)
class Exchange:
    name: str
    request: dict[str, Any]
    response: dict[str, Any]
    volatile: dict[str, str] = field(default_factory=dict)
    given: dict[str, str] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return str(self.request["method"])

    @property
    def path(self) -> str:
        return str(self.request["path"])

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request["query"])

    @property
    def request_headers(self) -> dict[str, str]:
        return dict(self.request["headers"])

    @property
    def status(self) -> int:
        return int(self.response["status"])

    @property
    def response_headers(self) -> dict[str, str]:
        return dict(self.response["headers"])

    def request_body(self) -> bytes:
        """The body bytes exactly as they travel (JSON compact, as clients send it)."""
        if "form" in self.request:
            return urlencode(self.request["form"]).encode()
        if "json" in self.request:
            return json.dumps(self.request["json"], separators=(",", ":")).encode()
        if "xml" in self.request:
            return str(self.request["xml"]).encode()
        return b""

    def response_body(self) -> bytes:
        return json.dumps(self.response["json"]).encode() if "json" in self.response else b""

    def pattern(self, location: str) -> re.Pattern[str] | None:
        regex = self.volatile.get(location)
        return None if regex is None else re.compile(regex)


def at(document: Any, location: str) -> Any:
    """The value at a dotted ``location`` (numbers index lists)."""
    for part in location.split("."):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def replaced(document: Any, location: str, value: Any) -> Any:
    """A copy of ``document`` with ``location`` set to ``value``."""
    head, _, rest = location.partition(".")
    if isinstance(document, list):
        copy: Any = list(document)
        key: Any = int(head)
    else:
        copy, key = dict(document), head
    copy[key] = replaced(copy[key], rest, value) if rest else value
    return copy


def load(name: str) -> Exchange:
    raw = json.loads((HERE / "exchanges" / f"{name}.json").read_text())
    example = Exchange(
        name=name,
        request=raw["request"],
        response=raw["response"],
        volatile=raw.get("volatile", {}),
        given=raw.get("given", {}),
    )
    # The literal values must fit their own patterns, or the two sides test different things.
    whole = {"request": example.request, "response": example.response}
    for location, regex in example.volatile.items():
        assert re.fullmatch(regex, str(at(whole, location))), f"{name}: {location} ≠ {regex}"
    return example


NAMES = sorted(p.stem for p in (HERE / "exchanges").glob("*.json"))
TOKEN = load("01-token")
