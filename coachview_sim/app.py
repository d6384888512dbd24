"""The Coachview simulator: Coachview-like API over HTTP, plus the ``/_sim`` admin API."""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coachview_sim import credentials, resultlink, wire
from coachview_sim.preconditions import MalformedIfMatch
from coachview_sim.store import (
    NotFound,
    PreconditionRequired,
    RuleViolation,
    Seed,
    StaleEtag,
    Store,
)

IN_FLIGHT_GRACE_S = 0.1


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error_rate: float = Field(0.0, ge=0, le=1)
    error_status: int = Field(503, ge=400, le=599)
    latency_ms: int = Field(0, ge=0, le=60_000)
    rate_limit_per_s: float | None = Field(None, gt=0)
    # What a 429 from the rate-limit fault tells the client to wait.
    retry_after_s: int = Field(1, ge=0, le=3600)


class SimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token_ttl_s: int = Field(3600, gt=0)
    # Coachview allows 5,000 REST requests per 24 hours per client.
    daily_budget: int = Field(5000, ge=0)
    budget_window_s: float = Field(86400, gt=0)
    # Off: the budget is enforced but never told (no X-Rate-Limit-* on any response), as a
    # Coachview that omits the headers would.
    rate_limit_headers: bool = True
    resultlink_secret: str = credentials.RESULTLINK_SECRET
    resultlink_plugin_key: str = credentials.RESULTLINK_PLUGIN_KEY
    # Coachview without an entity's scope answers example values (its support pages: every
    # public id the same): on, every person look-up answers the one example person.
    example_values: bool = False


# The example person a Coachview answers without Personen.Lezen (its values are this sim's).
EXAMPLE_PERSON: dict[str, Any] = {
    wire.P_ID: 1,
    wire.P_EXTERN_ID: "Voorbeeld",
    wire.P_FIRST_NAME: "Voorbeeld",
    wire.P_LAST_NAME: "Persoon",
}


class Sim:
    """Everything mutable about one simulator instance, behind locks."""

    def __init__(self) -> None:
        self.store = Store()
        self.lock = threading.Lock()
        self.faults = Faults()
        self.config = SimConfig()
        self.tokens: dict[str, float] = {}
        self.requests: Counter[str] = Counter()
        self.window_start = 0.0
        self.window_count = 0
        self.budget_reset_at = 0.0
        self.budget_used = 0
        self.limited = 0  # 429s served: the budget or the rate-limit fault said no
        # For checking clients: arrival times, and requests that came before a Retry-After.
        self.arrivals: list[float] = []
        self.not_before = 0.0
        self.told_at = 0.0
        self.early = 0
        self.rng = random.Random()

    def reset(self) -> None:
        self.store.reset()
        with self.lock:
            self.faults = Faults()
            self.config = SimConfig()
            self.tokens.clear()
            self.requests.clear()
            self.window_start, self.window_count = 0.0, 0
            self.budget_reset_at, self.budget_used = 0.0, 0
            self.limited = 0
            self.arrivals.clear()
            self.not_before, self.early, self.told_at = 0.0, 0, 0.0

    def arrive(self, now: float) -> None:
        with self.lock:
            self.arrivals.append(now)
            # Requests already on the wire when the 429 went out cannot have known of it.
            if self.told_at + IN_FLIGHT_GRACE_S < now < self.not_before:
                self.early += 1

    def told_to_wait(self, now: float, seconds: float) -> None:
        with self.lock:
            self.told_at = now
            self.not_before = max(self.not_before, now + seconds)

    def max_per_second(self) -> int:
        """The most API requests that arrived within any one-second window."""
        with self.lock:
            times = sorted(self.arrivals)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best

    def spend(self, now: float) -> dict[str, str] | None:
        """Take one request from the daily budget; the rate-limit headers, or None if spent."""
        with self.lock:
            if now >= self.budget_reset_at:
                self.budget_reset_at, self.budget_used = now + self.config.budget_window_s, 0
            allowed = self.budget_used < self.config.daily_budget
            if allowed:
                self.budget_used += 1
            headers = {
                wire.RATE_LIMIT: str(self.config.daily_budget),
                wire.RATE_REMAINING: str(max(0, self.config.daily_budget - self.budget_used)),
                wire.RATE_RESET: str(math.ceil(self.budget_reset_at)),
            }
            return headers if allowed else None

    def seconds_to_reset(self, now: float) -> int:
        with self.lock:
            return max(1, int(self.budget_reset_at - now + 0.999))

    def count(self, route: str) -> None:
        with self.lock:
            self.requests[route] += 1

    def over_rate_limit(self, now: float) -> bool:
        with self.lock:
            limit = self.faults.rate_limit_per_s
            if limit is None:
                return False
            if now - self.window_start >= 1.0:
                self.window_start, self.window_count = now, 0
            if self.window_count >= limit:
                return True
            self.window_count += 1
            return False

    def issue_token(self) -> tuple[str, int]:
        token = secrets.token_urlsafe(24)
        with self.lock:
            ttl = self.config.token_ttl_s
            self.tokens[token] = time.monotonic() + ttl
        return token, ttl

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expires = self.tokens.get(token)
        return expires is not None and expires > time.monotonic()


# The dependencies and Coachview routes are ``async def``: they never block, and a sync one
# would cost a thread-pool hop per request (the benchmarks run thousands a second).
async def where_clause(where: str = "") -> dict[str, list[str]]:
    try:
        return wire.parse_where(where)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc


# Module level: FastAPI resolves these annotations by name.
Where = Annotated[dict[str, list[str]], Depends(where_clause)]
Skip = Annotated[int, Query(ge=0)]
Take = Annotated[int, Query(ge=1, le=1000)]
Count = Annotated[bool, Query(alias="Count")]
Rows = list[dict[str, Any]]


def _route_name(app: FastAPI, request: Request, names: dict[tuple[str, str], str]) -> str:
    """``GET /api/v1/Personen/{person_id}`` for ``GET /api/v1/Personen/1001`` (memoised: the
    simulator serves thousands of requests a second in the benchmarks)."""
    key = (request.method, request.url.path)
    name = names.get(key)
    if name is None:
        name = f"{request.method} {request.url.path}"
        for route in app.router.routes:
            match, _ = route.matches(request.scope)
            if match == Match.FULL:
                name = f"{request.method} {getattr(route, 'path', request.url.path)}"
                break
        names[key] = name
    return name


class CoachviewBehaviour:
    """Counting, faults and the daily budget in front of the Coachview routes, as plain ASGI
    middleware (Starlette's BaseHTTPMiddleware costs more than the routes themselves)."""

    def __init__(
        self, app: ASGIApp, sim: Sim, app_ref: FastAPI, route_names: dict[tuple[str, str], str]
    ) -> None:
        self.app, self.sim, self.app_ref, self.route_names = app, sim, app_ref, route_names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        sim = self.sim
        sim.count(_route_name(self.app_ref, Request(scope), self.route_names))
        sim.arrive(time.monotonic())
        faults = sim.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        early: Response | None = None
        if sim.over_rate_limit(time.monotonic()):
            sim.limited += 1
            sim.told_to_wait(time.monotonic(), faults.retry_after_s)
            early = JSONResponse(
                {"error": "rate_limited"},
                status_code=429,
                headers={"Retry-After": str(faults.retry_after_s)},
            )
        elif faults.error_rate and sim.rng.random() < faults.error_rate:
            early = JSONResponse({"error": "injected fault"}, status_code=faults.error_status)
        if early is not None:
            await early(scope, receive, send)
            return
        if scope["path"].startswith(wire.RESULT_LINK):  # not a REST call: no budget
            await self.app(scope, receive, send)
            return
        now = time.time()
        budget = sim.spend(now)
        told = sim.config.rate_limit_headers
        if budget is None:
            spent = {
                wire.RATE_LIMIT: str(sim.config.daily_budget),
                wire.RATE_REMAINING: "0",
                wire.RATE_RESET: str(math.ceil(sim.budget_reset_at)),
            }
            spent = {**(spent if told else {}), "Retry-After": str(sim.seconds_to_reset(now))}
            sim.limited += 1
            response = JSONResponse({"error": "daily budget spent"}, status_code=429, headers=spent)
            await response(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in budget.items()] if told else []

        async def with_budget(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_budget)


_IDENTITY = (wire.SIMULATOR_HEADER.lower().encode(), wire.SIMULATOR_HEADER_VALUE.encode())


class SimulatorApp(FastAPI):
    """FastAPI that marks every response as the simulator's, its own error pages included.

    Done here rather than in a middleware: Starlette's outermost error handler answers a crash
    past every middleware, and even that answer must say where it came from.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return

        async def identified(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), _IDENTITY]}
            await send(message)

        await super().__call__(scope, receive, identified)


def create_app(sim: Sim | None = None) -> FastAPI:
    sim = sim or Sim()
    app = SimulatorApp(title="Coachview simulator (gradesync)", version="1")
    app.state.sim = sim
    route_names: dict[tuple[str, str], str] = {}

    app.add_middleware(CoachviewBehaviour, sim=sim, app_ref=app, route_names=route_names)

    async def bearer(authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not sim.token_valid(token):
            raise HTTPException(401, "invalid or expired token")

    def page(rows: list[dict[str, Any]], skip: int, take: int, count: bool) -> JSONResponse:
        headers = {"RowCount": str(len(rows))} if count else {}
        return JSONResponse(rows[skip : skip + take], headers=headers)

    # -- OAuth2 --------------------------------------------------------------------------------

    @app.post(wire.TOKEN_PATH)
    def token(
        grant_type: Annotated[str, Form()],
        client_id: Annotated[str, Form()],
        client_secret: Annotated[str, Form()],
        scope: Annotated[str, Form()] = "api",
    ) -> JSONResponse:
        if grant_type != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if not (
            secrets.compare_digest(client_id.encode(), credentials.CLIENT_ID.encode())
            and secrets.compare_digest(client_secret.encode(), credentials.CLIENT_SECRET.encode())
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        value, ttl = sim.issue_token()
        return JSONResponse(
            {"access_token": value, "token_type": "Bearer", "expires_in": ttl, "scope": scope}
        )

    # -- REST resources ------------------------------------------------------------------------

    authed = [Depends(bearer)]

    def _query(fn: Callable[[dict[str, list[str]]], Rows], where: dict[str, list[str]]) -> Rows:
        try:
            return fn(where)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc

    def listing(path: str, query: Callable[[dict[str, list[str]]], Rows]) -> None:
        """A Coachview collection: ``where=``, ``skip``, ``take``, ``Count``."""

        async def endpoint(
            where: Where, skip: Skip = 0, take: Take = 100, count: Count = False
        ) -> Response:
            return page(_query(query, where), skip, take, count)

        app.get(path, dependencies=authed)(endpoint)

    def persons(where: dict[str, list[str]]) -> Rows:
        if sim.config.example_values:
            return [dict(EXAMPLE_PERSON)]
        return sim.store.query_persons(where)

    listing(wire.PERSONS, persons)
    listing(wire.COMPONENTS, sim.store.query_components)
    listing(wire.PARTICIPATIONS, sim.store.query_participations)
    listing(wire.REQUEST_COMPONENTS, sim.store.query_requests)

    # The store's refusals, as Coachview answers them (body as FastAPI's HTTPException).
    refusals: tuple[tuple[type[Exception], int], ...] = (
        (NotFound, 404),
        (StaleEtag, 412),
        (PreconditionRequired, 428),
        (MalformedIfMatch, 400),
        (RuleViolation, 409),
    )
    for error, status in refusals:

        def refuse(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)

        app.add_exception_handler(error, refuse)

    @app.get(wire.PERSONS + "/{person_id}", dependencies=authed)
    async def person(person_id: int) -> dict[str, Any]:
        return sim.store.person(person_id)

    def with_etag(row: dict[str, Any]) -> JSONResponse:
        """The row, its etag also in the ``ETag`` header (the client reads ``auditTrail``)."""
        return JSONResponse(row, headers={"ETag": row[wire.AUDIT][wire.ETAG]})

    def writable(
        path: str,
        read: Callable[[int], dict[str, Any]],
        update: Callable[[int, dict[str, Any], list[str]], dict[str, Any]],
    ) -> None:
        """One entity by id: ``GET`` and the conditional partial ``PUT``."""

        async def get(entity_id: int) -> JSONResponse:
            return with_etag(read(entity_id))

        async def put(entity_id: int, body: dict[str, Any], request: Request) -> JSONResponse:
            return with_etag(update(entity_id, body, request.headers.getlist("If-Match")))

        app.get(path + "/{entity_id}", dependencies=authed)(get)
        app.put(path + "/{entity_id}", dependencies=authed)(put)

    writable(wire.PARTICIPATIONS, sim.store.participation, sim.store.update_participation)
    writable(wire.REQUEST_COMPONENTS, sim.store.request, sim.store.update_request)

    # -- the e-learning result link ------------------------------------------------------------

    @app.post(wire.RESULT_LINK)
    async def result_link(request: Request, plugin: str = "") -> Response:
        body = await request.body()
        config = sim.config
        if not secrets.compare_digest(plugin.encode(), config.resultlink_plugin_key.encode()):
            return Response("unknown plugin key", status_code=403)
        signature = request.headers.get(wire.RESULT_LINK_SIGNATURE)
        if not resultlink.signature_valid(body, config.resultlink_secret, signature):
            return Response("bad signature", status_code=403)
        try:
            message = resultlink.parse(body)
        except ValueError as exc:
            return Response(f"does not match the XSD: {exc}", status_code=400)
        try:
            sim.store.apply_result(message)
        except NotFound as exc:
            return Response(str(exc), status_code=404)
        return Response("ok", status_code=200)

    @app.api_route(wire.RESULT_LINK, methods=["GET", "PUT", "DELETE", "PATCH"])
    def result_link_other() -> Response:
        return Response("method not allowed", status_code=405)

    # -- admin API (not Coachview) ---------------------------------------------------------------

    @app.post("/_sim/reset")
    def reset() -> dict[str, str]:
        sim.reset()
        return {"status": "reset"}

    @app.post("/_sim/seed")
    def seed(body: dict[str, Any]) -> dict[str, int]:
        try:
            return sim.store.seed(Seed.model_validate(body))
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_url=False)) from exc
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc

    @app.get("/_sim/seed")
    def seeded() -> dict[str, Any]:
        return sim.store.seeded().model_dump(exclude={"results"})

    @app.get("/_sim/state")
    def state() -> dict[str, Any]:
        with sim.lock:
            by_route = dict(sim.requests)
        return {
            "enrolmentComponents": sim.store.state(),
            "requests": {
                "total": sum(by_route.values()),
                "byRoute": by_route,
                "rateLimited": sim.limited,
                "maxPerSecond": sim.max_per_second(),
                "earlyAfter429": sim.early,
            },
        }

    @app.post("/_sim/faults")
    def faults(body: Faults) -> dict[str, Any]:
        with sim.lock:
            sim.faults = body
            sim.window_start, sim.window_count = 0.0, 0
        return body.model_dump()

    @app.post("/_sim/config")
    def config(body: SimConfig) -> dict[str, Any]:
        with sim.lock:
            sim.config = body
        return body.model_dump()

    return app
