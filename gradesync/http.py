"""HTTP outcomes as typed errors, shared by the Coachview client and the LMS clients."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from gradesync.errors import Permanent, PreconditionFailed, Transient


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


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
    :class:`Permanent`, each with a bounded excerpt of the body for the ledger."""
    status = response.status_code
    if status < 400:
        return
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
    # Error body formats are not public; keep a bounded excerpt, one line.
    return response.text.strip().replace("\n", " ")[:300]
