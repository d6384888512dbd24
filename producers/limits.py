"""Every route's body limit and read timeout, enforced on the bytes as they arrive — before any
handler parses them.

Starlette parses a form whole (up to 1,000 fields of 1 MiB each) before a handler can look at
it: three unauthenticated POSTs to ``/console/login`` grew the ingress (the process that takes
every LMS webhook) by 3 GiB. So the limit sits below the application, in the ASGI ``receive``
channel: a declared ``Content-Length`` over the route's limit is refused before a byte is read,
and a body that grows past it, or does not arrive in time, ends the request there (413, 408).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The console's forms hold a CSRF token, a user name and password, or a reason of at most 500
# characters (9 bytes each when percent-encoded): far below this.
CONSOLE_MAX_BODY_BYTES = 16 * 1024
# Routes that take no body at all (pages, health, metrics) still get a bound.
OTHER_MAX_BODY_BYTES = 16 * 1024


class BodyRefused(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def route_limit(events_max_bytes: int, xapi_max_bytes: int) -> Callable[[str], int]:
    """The body limit of a path: the webhooks' configured one, the Statement endpoint's (a log
    store's batch), else the small fixed ones."""

    def limit(path: str) -> int:
        if path.startswith("/xapi/"):
            return xapi_max_bytes
        if path == "/events" or path.startswith("/events/"):
            return events_max_bytes
        if path.startswith("/console"):
            return CONSOLE_MAX_BODY_BYTES
        return OTHER_MAX_BODY_BYTES

    return limit


class BodyLimit:
    """ASGI middleware: the route's limit and ``timeout_s`` for the whole body."""

    def __init__(self, app: ASGIApp, limit: Callable[[str], int], timeout_s: float) -> None:
        self.app, self.limit, self.timeout_s = app, limit, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, BodyRefused(413, "too_large", f"body exceeds {limit} bytes"))
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        state = {"read": 0, "done": False, "started": False}

        async def limited() -> Message:
            if state["done"]:  # the body is in: what follows is only the disconnect
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyRefused(
                    408, "body_timeout", f"the body did not arrive within {self.timeout_s:g} s"
                ) from None
            if message["type"] == "http.request":
                state["read"] += len(message.get("body", b""))
                if state["read"] > limit:
                    raise BodyRefused(413, "too_large", f"body exceeds {limit} bytes")
                state["done"] = not message.get("more_body", False)
            return message

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyRefused as refused:
            if not state["started"]:
                await _refuse(send, refused)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(send: Send, refused: BodyRefused) -> None:
    body = json.dumps({"error": refused.error, "detail": refused.detail}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of the body is not read
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": refused.status}
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})
