"""HTTP outcomes as typed errors, shared by the Coachview client and the LMS clients."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from gradesync import logs
from gradesync.errors import Permanent, PreconditionFailed, Transient, UnexpectedResponse
from gradesync.printable import printable

T = TypeVar("T")
log = logs.get("gradesync.http")
EXCERPT_CHARS = 120


# Coachview asking every worker to hold off for longer than a day is not a plan but a bug (or
# an attack): we wait a day at most, then ask again.
MAX_RETRY_AFTER_S = 24 * 3600
_DELTA_SECONDS = re.compile(r"\d{1,15}")


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3),
    clamped to :data:`MAX_RETRY_AFTER_S`. Anything else (``inf``, ``nan``, ``-1``, ``1e999``,
    garbage) is ignored with a warning: a header must not pause every worker for centuries."""
    if not value:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text).timestamp()
        except (TypeError, ValueError, OverflowError):
            log.warning("header_ignored", header="Retry-After", reason="not seconds or a date")
            return None
        seconds = max(0.0, when - (time.time() if now is None else now))
    if seconds > MAX_RETRY_AFTER_S:
        log.warning("header_clamped", header="Retry-After", to_s=MAX_RETRY_AFTER_S)
        return float(MAX_RETRY_AFTER_S)
    return seconds


def request(client: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send; a timeout or connection failure becomes :class:`Transient`."""
    try:
        return client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise Transient(f"{method} {url}: timed out", code="timeout") from exc
    except httpx.TransportError as exc:
        raise Transient(f"{method} {url}: {type(exc).__name__}", code="connection") from exc


def raise_for_status(response: httpx.Response, what: str) -> None:
    """5xx, 408, 429 → :class:`Transient`; 412 → :class:`PreconditionFailed`; other 4xx →
    :class:`Permanent`; a redirect or another non-2xx → :class:`UnexpectedResponse` (no API we
    call redirects: a 3xx is a wrong base URL or a login page). Each carries a short, redacted
    excerpt of the body for the ledger."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if status < 400:
        where = response.headers.get("location", "?")
        raise UnexpectedResponse(f"{what}: HTTP {status} redirect to {redact(where)}")
    detail = f"{what}: HTTP {status} {short_body(response)}"
    if status == 429:
        raise Transient(
            detail,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            code="rate_limited",
        )
    if status >= 500 or status == 408:
        raise Transient(detail, code=f"http_{status}")
    if status == 412:
        raise PreconditionFailed(detail)
    raise Permanent(detail, code=f"http_{status}")


def short_body(response: httpx.Response) -> str:
    """A bounded, one-line, redacted excerpt: error bodies are not public, and may echo the
    personal data we sent (digits and e-mail addresses are masked)."""
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        return f"<{len(response.content)} bytes, not text>"
    title = _TITLE.search(text)
    if title:  # an HTML page says what it is in its title
        text = f"<title>{title.group(1)}</title>"
    return redact(" ".join(printable(text).split()))[:EXCERPT_CHARS]


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_EMAIL = re.compile(r"[^\s@<>\"']+@[^\s@<>\"']+")
_DIGITS = re.compile(r"\d")


def redact(text: str) -> str:
    return _DIGITS.sub("#", _EMAIL.sub("<email>", text))


def json_body(response: httpx.Response, what: str, expect: type[T]) -> T:
    """The 2xx JSON body of the type the caller expects (``dict`` or ``list``); anything else
    (an error status, HTML, an empty body, other JSON) is a typed error, never a crash."""
    raise_for_status(response, what)
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not response.content:
        raise UnexpectedResponse(f"{what}: HTTP {response.status_code} with an empty body")
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise UnexpectedResponse(
            f"{what}: HTTP {response.status_code} {kind}: {short_body(response)}"
        )
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise UnexpectedResponse(f"{what}: not JSON: {short_body(response)}") from exc
    if not isinstance(body, expect):
        got = _JSON_NAMES.get(type(body), type(body).__name__)
        raise UnexpectedResponse(f"{what}: expected a JSON {_JSON_NAMES[expect]}, got {got}")
    return body


_JSON_NAMES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def parsed(read: Callable[[Any], T], data: Any, what: str) -> T:
    """``read(data)`` (e.g. a reader in gradesync/coachview/readers.py); a missing, renamed or
    mistyped field becomes :class:`UnexpectedResponse` naming it."""
    try:
        return read(data)
    except KeyError as exc:
        raise UnexpectedResponse(f"{what}: field {exc.args[0]!r} is missing") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise UnexpectedResponse(f"{what}: {field_problem(exc)}") from exc


class FieldProblem(ValueError):
    """A field of an answer has the wrong type or form (the value is not kept: it may be
    personal data)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field {field!r}: {problem}")
        self.field = field


def field_problem(exc: Exception) -> str:
    """Which field is wrong, without the value (it may be personal data)."""
    if isinstance(exc, FieldProblem):
        return str(exc)
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors(include_url=False, include_input=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        return f"field {field!r}: {first['msg']}" if field else f"the answer: {first['msg']}"
    return f"a field has an unexpected type ({type(exc).__name__})"
