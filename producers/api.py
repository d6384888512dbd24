"""The producers' HTTP ingress (``gradesync api``): authenticate, validate, record, enqueue.

Nothing slow happens here: no LMS or Coachview call, only Redis. A request is answered once
its completion is durably in the ledger (and its outbox) and handed to the broker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import redis
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from console.routes import build_router as console_router
from gradesync import keys, logs, metrics
from gradesync.event import CompletionEvent, field_errors
from gradesync.ledger import Ledger, utcnow
from gradesync.parsed import Completion, Parsed, Rejected
from gradesync.settings import (
    NOT_READ,
    Settings,
    get_settings,
    ignored_variables,
    persoonid_matching_off,
    require_lms_apis,
)
from gradesync.sources import (
    Installation,
    InstallationDisabled,
    InstallationUnknown,
    InstanceMismatch,
)
from gradesync.submit import record_refused, submit
from producers import bodies, metrics_route, signatures, xapi_statements
from producers.limits import BodyLimit, route_limit
from producers.native import bound, canonical

log = logs.get("gradesync.api")
Auth = Literal["standard", "moodle", "anewspring"]
REPLAY_TTL_S = 2 * signatures.TOLERANCE_S + 60
T = TypeVar("T")


class Reject(Exception):
    def __init__(
        self, status: int, error: str, detail: Any, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers


# A disabled installation's senders are asked to come back (503): local_webhookengine treats a
# 4xx as final and aNewSpring gives up after its retries, so a 403 lost their completions.
DISABLED_RETRY_AFTER_S = 900


def _disabled(exc: InstallationDisabled) -> Reject:
    return Reject(
        503,
        "installation_disabled",
        str(exc),
        headers={"Retry-After": str(DISABLED_RETRY_AFTER_S)},
    )


async def _body(request: Request) -> bytes:
    """The whole body (its size and read time bounded below the app: producers/limits.py); a
    caller that hangs up is not an error worth a traceback."""
    try:
        return await request.body()
    except ClientDisconnect as exc:
        raise Reject(400, "client_disconnected", "the client went away mid-body") from exc


class Ingress:
    def __init__(self, ledger: Ledger, send: Callable[[str], None], settings: Settings) -> None:
        self.ledger = ledger
        self.send = send
        self.settings = settings

    # -- the installation and its authentication -----------------------------------------

    def installation(self, kind: str, instance: str | None) -> Installation:
        """The route's installation: 404 when the sources have none of that name, 503 with
        Retry-After when it is disabled (its senders retry; nothing is recorded meanwhile)."""
        try:
            return self.settings.sources.admit(kind, instance)
        except InstallationUnknown as exc:
            raise Reject(404, "unknown_installation", str(exc)) from exc
        except InstallationDisabled as exc:
            raise _disabled(exc) from exc

    def _secrets(self, source: str, inst: Installation | None) -> list[str]:
        """The secrets a caller may sign with now (while rotating: the previous one too)."""
        if inst is None:
            secret = self.settings.webhook_secret(source)
            secrets = [] if secret is None else [secret]
        else:
            secrets = inst.webhook_secrets(utcnow().date())
        if not secrets and not self.settings.insecure_dev:
            name = source if inst is None else inst.name
            raise Reject(401, "unauthenticated", f"no webhook secret is configured for {name}")
        return secrets

    def authenticate(
        self,
        source: str,
        inst: Installation | None,
        auth: Auth,
        headers: dict[str, str],
        body: bytes,
        decode: bodies.Decoder = bodies.json_body,
    ) -> tuple[str | None, Any]:
        """Verify the caller, then parse the body: where the scheme signs the raw bytes (Standard
        Webhooks, aNewSpring) nothing a stranger sends is parsed; Moodle's token sits inside
        the body, so that body is parsed first, with limits. Returns the Standard Webhooks
        message id (the replay key) when there is one, and the parsed body."""
        secrets = self._secrets(source, inst)
        try:
            if not secrets:  # GRADESYNC_INSECURE_DEV=1 and no secret: development only
                return None, decode(body)
            if auth == "anewspring":
                signatures.verify_anewspring(secrets, headers.get("x-webhook-signature"), body)
                return None, decode(body)
            if auth == "moodle" and not signatures.has_standard_headers(headers):
                data = decode(body)
                token = data.get("token") if isinstance(data, dict) else None
                signatures.verify_token(secrets, token)
                return None, data
            msg_id = signatures.verify_standard(secrets, headers, body)
            return msg_id, decode(body)
        except signatures.SignatureError as exc:
            raise Reject(401, "unauthenticated", str(exc)) from exc
        except bodies.BodyRejected as exc:
            raise Reject(exc.status, exc.error, exc.detail) from exc

    # -- replay protection (Standard Webhooks' webhook-id) ---------------------------------

    def _replay_key(self, source: str, msg_id: str) -> str:
        return keys.webhook_id(source, msg_id)

    def claim(self, source: str, msg_id: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        """Take the ``webhook-id`` for this body in one atomic step (concurrent deliveries of
        one id with different bodies must not both get in): ``None`` to go on, the first
        answer for a replay, 409 for the same id with another body."""
        key, digest = self._replay_key(source, msg_id), hashlib.sha256(body).hexdigest()
        fresh = json.dumps({"body": digest, "response": None})
        if self.ledger.r.set(key, fresh, nx=True, ex=REPLAY_TTL_S):
            return None
        raw = self.ledger.r.get(key)
        seen: dict[str, Any] = json.loads(raw) if raw is not None else {"body": digest}
        if seen["body"] != digest:
            raise Reject(409, "replayed_id", "webhook-id was used before with a different body")
        # Still in flight: go on; recording the same event twice is idempotent (a duplicate).
        response: dict[str, Any] | None = seen.get("response")
        return None if response is None else (200, response)

    def remember(self, source: str, msg_id: str, body: bytes, response: dict[str, Any]) -> None:
        value = json.dumps({"body": hashlib.sha256(body).hexdigest(), "response": response})
        self.ledger.r.set(self._replay_key(source, msg_id), value, ex=REPLAY_TTL_S)

    def release(self, source: str, msg_id: str) -> None:
        """A claimed id whose request was refused: the sender may try it again."""
        self.ledger.r.delete(self._replay_key(source, msg_id))

    # -- the one path every source takes -------------------------------------------------------

    def record(
        self, source: str, inst: Installation | None, parsed: Parsed
    ) -> tuple[int, dict[str, Any]]:
        if isinstance(parsed, Rejected):
            raise Reject(422, "invalid", [{"field": "(body)", "message": parsed.reason}])
        if not isinstance(parsed, Completion):
            metrics.received(source, inst.name if inst else "canonical", "ignored")
            return 202, {"ignored": parsed.reason}
        installation = f"{parsed.event.source}/{parsed.event.source_instance}"
        if parsed.refused is not None:
            refused = record_refused(
                parsed.event, self.ledger, parsed.refused, source, parsed.needs
            )
            if refused is None:
                return 202, {"ignored": f"{parsed.refused}; its completion is recorded already"}
            admission = refused
        else:
            admission = submit(parsed.event, self.ledger, self.send, parsed.needs, channel=source)
        if admission.outcome == "conflict":
            metrics.received(source, installation, "conflict")
            raise Reject(409, "event_id_conflict", "event_id was used before for another event")
        body = {
            "key": admission.record.id,
            "event_id": parsed.event.id,
            "state": admission.record.state,
        }
        metrics.received(source, installation, admission.outcome)
        return (200 if admission.outcome == "duplicate" else 202), body

    async def handle(
        self, request: Request, source: str, instance: str | None, native: bool, auth: Auth
    ) -> JSONResponse:
        """One request to ``/events`` (``native`` false: the canonical event, its installation
        named in the body) or to ``/events/{source}[/{instance}]``."""
        try:
            inst = self.installation(source, instance) if native else None
            status, body = await self._handle(request, source, inst, auth)
        except Reject as exc:
            if exc.status >= 400:
                label = self._label(source, instance, native)
                metrics.rejected(source, label, exc.error)
                # Who was refused and why, for the operator; never the body, a secret or an id
                # (a made-up instance is ``unknown``: the caller's text is not logged either).
                log.log(
                    logging.WARNING if exc.status in (401, 403, 503) else logging.INFO,
                    "refused",
                    route=source,
                    installation=label,
                    status=exc.status,
                    error=exc.error,
                )
            return JSONResponse(
                {"error": exc.error, "detail": exc.detail}, exc.status, headers=exc.headers
            )
        return JSONResponse(body, status)

    def _label(self, source: str, instance: str | None, native: bool) -> str:
        """A refusal's ``installation`` label: a known installation's name (disabled ones too),
        never a path segment a caller made up (``unknown``), so no caller grows the label set."""
        if not native:
            return "canonical"
        try:
            return self.settings.sources.find(source, instance).name
        except InstallationUnknown:
            return "unknown"

    async def _handle(
        self, request: Request, source: str, inst: Installation | None, auth: Auth
    ) -> tuple[int, dict[str, Any]]:
        body = await _body(request)
        try:
            decode = bodies.decoder(source, request.headers.get("content-type", ""))
        except bodies.BodyRejected as exc:
            raise Reject(exc.status, exc.error, exc.detail) from exc
        headers = {k.lower(): v for k, v in request.headers.items()}
        # Verifying and parsing are CPU work on caller-chosen bytes: off the event loop, so
        # one body never holds up /healthz, the console or the other webhooks.
        msg_id, data = await run_in_threadpool(
            self.authenticate, source, inst, auth, headers, body, decode
        )
        # Replays are told apart per installation: ids are the sender's, and two LMSs may
        # well number their messages alike.
        replay = source if inst is None else inst.name
        if msg_id is None:
            return await self._record(source, inst, data)
        earlier = await self._ledger_call(self.claim, replay, msg_id, body)
        if earlier is not None:
            return earlier
        try:
            status, response = await self._record(source, inst, data)
        except Reject:
            await self._ledger_call(self.release, replay, msg_id)
            raise
        await self._ledger_call(self.remember, replay, msg_id, body, response)
        return status, response

    async def _ledger_call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await run_in_threadpool(fn, *args)
        except redis.RedisError as exc:
            log.error("ingress_redis_unavailable", error=type(exc).__name__)
            raise Reject(503, "unavailable", "the ledger is unreachable; retry later") from exc

    async def _record(
        self, source: str, inst: Installation | None, data: Any
    ) -> tuple[int, dict[str, Any]]:
        if isinstance(data, dict):
            data.pop("token", None)  # Moodle's shared secret never reaches the ledger
        parse = canonical(self.settings.sources) if inst is None else bound(inst)
        try:
            items = await run_in_threadpool(parse, data)
        except ValidationError as exc:
            raise Reject(422, "invalid", field_errors(exc)) from exc
        except InstanceMismatch as exc:
            raise Reject(422, "invalid", [{"field": exc.field, "message": str(exc)}]) from exc
        except InstallationUnknown as exc:  # a canonical event naming no known installation
            detail = [{"field": "source_instance", "message": str(exc)}]
            raise Reject(422, "invalid", detail) from exc
        except InstallationDisabled as exc:
            raise _disabled(exc) from exc
        except ValueError as exc:
            raise Reject(422, "invalid", [{"field": "(body)", "message": str(exc)}]) from exc
        if len(items) != 1:
            raise Reject(422, "invalid", "send one completion per request")
        return await self._ledger_call(self.record, source, inst, items[0])


STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _object_body(auth: Auth, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """The request body and the authentication headers, so the OpenAPI document says how to
    call each route (and fuzzers reach the headers too)."""
    names = ("X-WebHook-Signature",) if auth == "anewspring" else STANDARD_HEADERS
    return {
        "parameters": [
            {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
            for name in names
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema or {"type": "object"}}},
        },
    }


# Each LMS kind's authentication and what its route takes.
NATIVE_ROUTES: dict[str, tuple[Auth, str]] = {
    "moodle": (
        "moodle",
        "Moodle ``local_webhooks`` body; authenticated by its ``token`` or a signature.",
    ),
    "anewspring": (
        "anewspring",
        "aNewSpring webhook; ``X-WebHook-Signature`` = Base64(HMAC-SHA1(body)).",
    ),
    "ilias": (
        "standard",
        "ILIAS ``updateStatus`` parameters as JSON, signed per Standard Webhooks.",
    ),
    "xapi": ("standard", 'An xAPI "completed" statement, signed per Standard Webhooks.'),
}


def _native_routes(
    app: FastAPI,
    ingress: Ingress,
    kind: str,
    auth: Auth,
    doc: str,
    responses: dict[int | str, dict[str, Any]],
) -> None:
    """``/events/{kind}/{instance}``, checked with that installation's own secret, and
    ``/events/{kind}``: the kind's ``default`` installation."""

    async def default(request: Request) -> JSONResponse:
        return await ingress.handle(request, kind, None, True, auth)

    async def named(request: Request, instance: str) -> JSONResponse:
        return await ingress.handle(request, kind, instance, True, auth)

    for path, endpoint in ((f"/events/{kind}", default), (f"/events/{kind}/{{instance}}", named)):
        app.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            status_code=202,
            responses=responses,
            openapi_extra=_object_body(auth),
            description=doc,
            name=f"{kind}{'' if endpoint is default else '_instance'}",
        )


def create_app(
    ledger: Ledger | None,
    send: Callable[[str], None],
    settings: Settings | None = None,
) -> FastAPI:
    """The ingress: ``send`` hands a recorded completion to the workers (the application shell
    passes the pipeline's enqueue; producers never import the workers). ``ledger`` ``None``:
    the one at ``REDIS_URL``."""
    settings = settings or get_settings()
    # Raises ConfigurationError when grades would be lost, unless GRADESYNC_INSECURE_DEV=1.
    for gap in require_lms_apis(settings):
        log.warning("lms_api_not_configured", detail=gap)
    if unread := ignored_variables(settings, os.environ):
        log.warning("variables_not_read", variables=unread, detail=NOT_READ)
    for note in persoonid_matching_off(settings):
        log.warning("persoonid_matching_off", detail=note)
    if ledger is None:
        ledger = Ledger(redis.Redis.from_url(settings.redis_url))

    ingress = Ingress(ledger, send, settings)
    app = FastAPI(
        title="gradesync ingress",
        version="1",
        description="LMS completion events in; see README for authentication per source.",
        # No Swagger UI or ReDoc: FastAPI loads them unpinned from a CDN, without integrity,
        # into the console's origin. The document itself stays at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )

    # Every route's body limit and read timeout, before anything parses the body.
    app.add_middleware(
        BodyLimit,
        limit=route_limit(settings.max_body_bytes, settings.xapi_max_body_bytes),
        timeout_s=settings.body_timeout_s,
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "detail": exc.detail}, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Which parameter and what is wrong; never the input echoed back, nor our source lines.
        detail = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse({"error": "invalid", "detail": detail}, 422)

    @app.exception_handler(ClientDisconnect)
    async def gone(_: Request, __: ClientDisconnect) -> JSONResponse:
        # The caller hung up mid-body (any route, the console's forms too): nobody to answer,
        # and nothing worth a traceback in the log.
        return JSONResponse({"error": "client_disconnected", "detail": "gone"}, 400)

    responses: dict[int | str, dict[str, Any]] = {
        code: {"description": text}
        for code, text in {
            200: "already recorded (same body as the first time)",
            202: "recorded and enqueued, or ignored (not a completion)",
            400: "malformed JSON",
            401: "bad or missing signature / token",
            503: "the installation is disabled (Retry-After), or the ledger is unreachable",
            404: "no installation of that name in the sources",
            409: "webhook-id or event_id replayed with a different body",
            413: "body too large",
            415: "not a media type the route takes (JSON; Moodle: also form; aNewSpring: XML)",
            422: "invalid fields (named in detail)",
        }.items()
    }
    canonical_schema = CompletionEvent.model_json_schema()

    @app.post(
        "/events",
        status_code=202,
        responses=responses,
        openapi_extra=_object_body("standard", canonical_schema),
    )
    async def canonical(request: Request) -> JSONResponse:
        """The canonical event, signed per Standard Webhooks."""
        return await ingress.handle(request, "canonical", None, False, "standard")

    for kind, (auth, doc) in NATIVE_ROUTES.items():
        _native_routes(app, ingress, kind, auth, doc, responses)
    xapi_statements.mount(app, ingress, _body, Reject)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "Redis unreachable"}})
    def readyz() -> JSONResponse:
        try:
            ingress.ledger.r.ping()
        except redis.RedisError as exc:
            return JSONResponse({"error": "unavailable", "detail": type(exc).__name__}, 503)
        return JSONResponse({"status": "ready"})

    # The console for the people who fix the data; not part of the OpenAPI document.
    app.include_router(console_router(ingress.ledger, send, settings))

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            401: {"description": "no or wrong bearer token"},
            403: {"description": "no GRADESYNC_METRICS_TOKEN configured"},
        },
    )
    def prometheus(request: Request) -> Response:
        return metrics_route.scrape(request, ingress.ledger, settings)

    return app
