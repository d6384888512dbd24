"""The xAPI 1.0.3 Statement endpoint, one per xAPI installation: what LMS log stores and LRS
statement forwarding send (xAPI-vle/moodle-logstore_xapi ``src/loader/moodle_curl_lrs.php``:
``POST <endpoint>/statements``, HTTP Basic, ``X-Experience-API-Version``, a JSON array of
id-less statements, anything but 200 a failure to resend).

- ``POST /xapi/{instance}/statements`` (``/xapi/statements``: the ``default`` installation):
  one statement or an array → 200 with the ids in order; ``PUT …?statementId=`` → 204;
  ``GET /xapi/{instance}/about`` → the version.
- The version header 1.0.x is required (else 400); every answer carries 1.0.3.
- HTTP Basic with the installation's ``basic_auth`` (compared in constant time, never logged).
- The route's own body limit (``GRADESYNC_XAPI_MAX_BODY_BYTES``), checked before parsing.
- A batch is checked as a whole: what xAPI calls invalid is a 400 naming the statement's index
  and field, and nothing of the batch is recorded; a known id with other content is a 409.
  Everything else that is not a usable completion is 200 and ignored with a counted reason.

Parsing, the course pattern and Redis run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

import redis
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gradesync import logs, metrics, safejson, xapi_multipart, xapi_read, xapi_spec
from gradesync.ledger import Ledger, utcnow
from gradesync.record import scope_of
from gradesync.settings import Settings
from gradesync.sources import XAPI_PASSED, Installation, XapiSource
from gradesync.submit import submit
from gradesync.xapi_spec import Invalid
from producers import xapi
from producers.xapi_store import StatementStore

log = logs.get("gradesync.xapi")
VERSION = "1.0.3"
VERSION_HEADER = "X-Experience-API-Version"
ACCEPTED_VERSION = re.compile(r"1\.0(\.[0-9]{1,4})?")
CHANNEL = "xapi"
ReadBody = Callable[[Request], Awaitable[bytes]]


class Host(Protocol):
    """What the endpoint uses of the ingress (producers/api.py's ``Ingress``)."""

    ledger: Ledger
    send: Callable[[str], None]
    settings: Settings

    def installation(self, kind: str, instance: str | None) -> Installation: ...


class Refused(Exception):
    def __init__(
        self, status: int, error: str, detail: Any, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


@dataclass
class Taken:
    """What one request did: the ids in order, and counts per outcome (for the log line)."""

    ids: list[str]
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def _answer(status: int, body: Any = None) -> Response:
    """An answer; its version header is the middleware's (:class:`VersionHeader`)."""
    return Response(status_code=status) if body is None else JSONResponse(body, status)


def check_version(headers: dict[str, str]) -> None:
    version = headers.get(VERSION_HEADER.lower(), "").strip()
    if not ACCEPTED_VERSION.fullmatch(version):
        raise Refused(
            400, "version", f"send {VERSION_HEADER}: 1.0.x (this endpoint speaks {VERSION})"
        )


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def authenticate(inst: XapiSource, header: str | None, insecure_dev: bool) -> None:
    """HTTP Basic against the installation's ``basic_auth``; none configured is open only in
    development (like an unset webhook secret)."""
    challenge = {"WWW-Authenticate": f'Basic realm="gradesync {inst.name}"'}
    if inst.basic_auth is None:
        if insecure_dev:
            return
        raise Refused(401, "unauthenticated", f"no basic_auth is configured for {inst.name}")
    scheme, _, encoded = (header or "").strip().partition(" ")
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError, ValueError):
        user, sep, password = "", "", ""
    # Both compared whatever the first said: the time taken tells nothing.
    ok = _equal(user, inst.basic_auth.username) & _equal(password, inst.basic_auth.secret())
    if scheme.lower() != "basic" or not sep or not ok:
        raise Refused(401, "unauthenticated", "HTTP Basic credentials missing or wrong", challenge)


class StatementEndpoint:
    def __init__(self, host: Host, read_body: ReadBody, refusal: type[Exception]) -> None:
        self.host, self.read_body, self.refusal = host, read_body, refusal

    # -- HTTP --------------------------------------------------------------------------------

    async def handle(self, request: Request, instance: str | None, put_id: str | None) -> Response:
        label = "unknown"
        try:
            inst = self._installation(instance)
            label = inst.name
            headers = {k.lower(): v for k, v in request.headers.items()}
            check_version(headers)
            s = self.host.settings
            authenticate(inst, headers.get("authorization"), s.insecure_dev)
            body = await self.read_body(request)  # bounded below the app: producers/limits.py
            content_type = headers.get("content-type", "")
            media = content_type.split(";")[0].strip().lower()
            if media == "multipart/mixed":  # statements with attachments
                body = await run_in_threadpool(_statements_part, content_type, body)
            elif media != "application/json":
                raise Refused(415, "unsupported_media_type", "send Content-Type: application/json")
            taken = await run_in_threadpool(self.take, inst, body, put_id, utcnow())
        except Refused as exc:
            return self._refused(label, exc.status, exc.error, exc.detail, exc.headers)
        except self.refusal as exc:  # the ingress's own refusals (installation, body)
            # Their headers too: a disabled installation's 503 carries Retry-After.
            known = cast(Any, exc)
            return self._refused(label, known.status, known.error, known.detail, known.headers)
        log.info("statements", installation=label, **taken.outcomes)
        return _answer(204) if put_id is not None else _answer(200, taken.ids)

    def about(self, instance: str | None) -> Response:
        """The About resource (xAPI-Communication.md 2.7): the versions spoken; open, as the
        specification has it, for an installation that exists."""
        try:
            self._installation(instance)
        except self.refusal as exc:
            known = cast(Any, exc)
            return self._refused("unknown", known.status, known.error, known.detail, known.headers)
        return _answer(200, {"version": [VERSION]})

    def _installation(self, instance: str | None) -> XapiSource:
        inst = self.host.installation("xapi", instance)
        assert isinstance(inst, XapiSource)  # the kind says so
        return inst

    def _refused(
        self, label: str, status: int, error: str, detail: Any, headers: dict[str, str] | None
    ) -> Response:
        metrics.rejected("xapi_statements", label, error)
        # Who was refused and why; never the body, the credentials or an id.
        level = logging.WARNING if status in (401, 403) else logging.INFO
        log.log(level, "refused", route="xapi", installation=label, status=status, error=error)
        response = _answer(status, {"error": error, "detail": detail})
        response.headers.update(headers or {})
        return response

    # -- the batch (in a worker thread) ------------------------------------------------------

    def take(self, inst: XapiSource, body: bytes, put_id: str | None, now: datetime) -> Taken:
        try:
            data = safejson.loads(body)
        except safejson.JsonRejected as exc:
            raise Refused(400, "malformed_json", f"body is not acceptable JSON: {exc}") from exc
        try:
            if put_id is not None:
                data = _put_body(data, put_id)
            batch = xapi_spec.check_batch(data)
        except Invalid as exc:
            raise Refused(400, "invalid", [{"field": exc.field, "message": exc.message}]) from exc
        store = StatementStore(
            self.host.ledger.r, inst.name, self.host.settings.xapi_statement_days
        )
        try:
            return self._record(inst, store, batch, now)
        except redis.RedisError as exc:
            log.error("ingress_redis_unavailable", error=type(exc).__name__)
            raise Refused(503, "unavailable", "the ledger is unreachable; retry later") from exc

    def _record(
        self,
        inst: XapiSource,
        store: StatementStore,
        batch: list[tuple[str, dict[str, Any]]],
        now: datetime,
    ) -> Taken:
        digests = [xapi_spec.digest(statement) for _, statement in batch]
        seen = store.known([sid for sid, _ in batch])
        for n, (earlier, digest) in enumerate(zip(seen, digests, strict=True)):
            if earlier is not None and earlier != digest:
                detail = [
                    {
                        "field": f"statements[{n}].id",
                        "message": "was sent before with other content",
                    }
                ]
                raise Refused(409, "statement_conflict", detail)
        taken = Taken(ids=[sid for sid, _ in batch])
        # Grows as the batch's own voidings come: one voiding first in the batch counts too.
        voided = store.voided_ahead([sid for sid, _ in batch])
        done: dict[str, str] = {}
        for (sid, statement), earlier, digest in zip(batch, seen, digests, strict=True):
            if earlier is not None or sid in done:
                taken.count("known")
                metrics.xapi_statement(inst.name, "known")
                continue
            self._one(inst, store, sid, statement, now, taken, voided)
            done[sid] = digest
        # After the ledger has them: a crash in between makes a resend take them again, which
        # the ledger's event ids make harmless.
        store.remember(list(done.items()))
        return taken

    def _one(
        self,
        inst: XapiSource,
        store: StatementStore,
        sid: str,
        statement: dict[str, Any],
        now: datetime,
        taken: Taken,
        voided: set[str],
    ) -> None:
        reading = xapi_read.read(statement, sid, inst, now)
        reason: str
        if not isinstance(reading, xapi_read.Voiding) and sid in voided:
            outcome, reason = "ignored", "voided_before_arrival"
        elif isinstance(reading, xapi_read.Skipped):
            outcome, reason = "ignored", reading.reason
        elif isinstance(reading, xapi_read.Voiding):
            outcome, reason = "voiding", self._void(inst, store, reading.target, sid, now)
            voided.add(reading.target)
        elif isinstance(reading, xapi_read.NotPassed):
            outcome, reason = "not_passed", ""
            submit(
                reading.event,
                self.host.ledger,
                self.host.send,
                channel=CHANNEL,
                instant_source=reading.completed_at_source,
                passed=False,
            )
        else:
            outcome, reason = "counted", self._counted(inst, store, reading)
        taken.count(outcome)
        metrics.xapi_statement(inst.name, outcome, reason)

    def _counted(self, inst: XapiSource, store: StatementStore, reading: xapi_read.Counted) -> str:
        event, registration = reading.event, reading.registration
        if registration is not None and event.grade is not None and reading.verb == XAPI_PASSED:
            store.keep_passed_grade(registration, event.key, event.grade)
        if registration is not None and event.grade is None:
            # cmi5: "completed" never carries the score; its registration's "passed" does.
            grade = store.passed_grade(registration, event.key)
            if grade is not None:
                event = event.model_copy(update={"grade": grade})
        admission = submit(
            event,
            self.host.ledger,
            self.host.send,
            xapi.needs(inst),
            CHANNEL,
            instant_source=reading.completed_at_source,
        )
        return "id_reused" if admission.outcome == "conflict" else ""

    def _void(
        self, inst: XapiSource, store: StatementStore, target: str, sid: str, now: datetime
    ) -> str:
        scope = scope_of(CHANNEL, "xapi", inst.instance)
        done = self.host.ledger.withdraw(f"xapi-{target}", scope, now, sid)
        if done in ("voided_after_delivery", "voided_during_delivery"):
            log.warning(done, installation=inst.name, statement=sid)
            return done
        if done == "unknown":
            # It may still come (a batch with the voiding first, a forwarding LRS out of
            # order): it is voided then too (xAPI-Data.md 2.3.2).
            store.void_ahead(target, sid)
            return "voids_unknown_statement"
        return ""


class VersionHeader:
    """Every answer under ``/xapi/`` carries the version header, the framework's own too (an
    unknown path, a wrong method): xAPI-Communication.md 6.2, "in every response"."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/xapi/"):
            await self.app(scope, receive, send)
            return

        async def versioned(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[VERSION_HEADER] = VERSION
            await send(message)

        await self.app(scope, receive, versioned)


def _statements_part(content_type: str, body: bytes) -> bytes:
    try:
        return xapi_multipart.statements_part(content_type, body)
    except xapi_multipart.NotStatements as exc:
        raise Refused(400, "malformed_multipart", str(exc)) from exc


def _put_body(data: Any, statement_id: str) -> dict[str, Any]:
    """PUT carries one statement; its ``id``, if any, must be the ``statementId``."""
    if not xapi_spec.is_uuid(statement_id):
        raise Invalid("statementId", "must be a UUID")
    if not isinstance(data, dict):
        raise Invalid("(body)", "PUT takes one Statement (a JSON object)")
    given = data.get("id")
    if given is not None and str(given).lower() != statement_id.lower():
        raise Invalid("statement.id", "differs from statementId")
    return {**data, "id": statement_id}


def mount(app: FastAPI, host: Host, read_body: ReadBody, refusal: type[Exception]) -> None:
    """The Statement and About routes, for every xAPI installation (``/xapi/statements``: the
    default one). ``refusal``: the ingress's refusal type, raised by ``host.installation`` and
    ``read_body`` (with ``status``, ``error``, ``detail``)."""
    endpoint = StatementEndpoint(host, read_body, refusal)
    app.add_middleware(VersionHeader)
    auth = [
        {"name": "Authorization", "in": "header", "required": False, "schema": {"type": "string"}},
        {"name": VERSION_HEADER, "in": "header", "required": False, "schema": {"type": "string"}},
    ]
    body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]
                }
            }
        },
    }
    responses: dict[int | str, dict[str, Any]] = {
        code: {"description": text}
        for code, text in {
            200: "the statement ids, in order (POST)",
            204: "stored (PUT)",
            400: "no 1.0.x version header, malformed JSON, or a statement xAPI calls invalid",
            401: "HTTP Basic credentials missing or wrong",
            403: "the installation is disabled",
            404: "no xAPI installation of that name",
            408: "the body did not arrive in time",
            409: "a statement id sent before with other content",
            413: "body too large",
            415: "neither JSON nor multipart/mixed",
            503: "the ledger is unreachable",
        }.items()
    }

    async def post_default(request: Request) -> Response:
        return await endpoint.handle(request, None, None)

    async def post_named(request: Request, instance: str) -> Response:
        return await endpoint.handle(request, instance, None)

    # statementId is checked by the endpoint (a 400 with the version header, as xAPI has it).
    async def put_default(request: Request, statementId: str = "") -> Response:
        return await endpoint.handle(request, None, statementId)

    async def put_named(request: Request, instance: str, statementId: str = "") -> Response:
        return await endpoint.handle(request, instance, statementId)

    async def about_default() -> Response:
        return endpoint.about(None)

    async def about_named(instance: str) -> Response:
        return endpoint.about(instance)

    extra = {"parameters": auth, "requestBody": body}
    for path, method, fn in (
        ("/xapi/statements", "POST", post_default),
        ("/xapi/{instance}/statements", "POST", post_named),
        ("/xapi/statements", "PUT", put_default),
        ("/xapi/{instance}/statements", "PUT", put_named),
    ):
        app.add_api_route(
            path,
            fn,
            methods=[method],
            responses=responses,
            openapi_extra=extra,
            name=f"xapi_{method.lower()}{'_instance' if '{instance}' in path else ''}",
            status_code=200 if method == "POST" else 204,
        )
    app.add_api_route("/xapi/about", about_default, methods=["GET"], name="xapi_about")
    app.add_api_route(
        "/xapi/{instance}/about", about_named, methods=["GET"], name="xapi_about_instance"
    )
