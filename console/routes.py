"""The console's pages and actions under ``/console`` (server-rendered, plain forms, no script).

Not logged in, a page answers 401 with the login form in its body (a browser shows the form,
a script sees 401); an action answers 401. A POST without this session's CSRF token answers
403. Every response carries the security headers; pages with personal data are ``no-store``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import redis
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader
from starlette.datastructures import FormData

from console import story, views
from console.auth import (
    COOKIE,
    SESSION_MAX_AGE_S,
    Access,
    LoginLimit,
    Revocations,
    Session,
    csrf_ok,
)
from console.i18n import choose, translator
from gradesync import logs
from gradesync.ledger import Ledger, utcnow
from gradesync.reconcile.figures import figures
from gradesync.record import UnreadableRecord
from gradesync.report import UNREADABLE
from gradesync.settings import Settings
from gradesync.usage import budget_for

log = logs.get("gradesync.console")
HERE = Path(__file__).resolve().parent
PREFIX = "/console"
MAX_REASON_CHARS = 500
REFRESH_S = 30
SECURITY_HEADERS = {
    # No inline script anywhere; forms post only back here; nobody may frame the console.
    "Content-Security-Policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
T = TypeVar("T")


@dataclass
class Visit:
    """One request's view of who is asking, in which language, with which session."""

    lang: str
    t: Callable[..., str]
    session: Session
    fresh: bool  # the session was made for this response: its cookie must be set
    user: str | None


def _safe_next(target: object) -> str:
    """Only a console path: a login must never redirect elsewhere."""
    if (
        isinstance(target, str)
        and target.startswith(PREFIX)
        and not target.startswith("//")
        and "\\" not in target
        and all(c.isprintable() for c in target)
    ):
        return target
    return f"{PREFIX}/"


class Console:
    def __init__(self, ledger: Ledger, send: Callable[[str], None], settings: Settings) -> None:
        self.ledger = ledger
        self.send = send
        self.settings = settings
        self.access = Access(settings)
        self.limit = LoginLimit(ledger.r)
        self.revocations = Revocations(ledger.r)
        self.budget = budget_for(ledger.r, settings)
        self.css = (HERE / "static" / "console.css").read_bytes()
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=True, auto_reload=False
        )
        self.env.filters["local"] = lambda value: story.local(value, settings.tz)

    def visit(self, request: Request) -> Visit:
        lang = choose(request.headers.get("accept-language"))
        session = self.access.load(request.cookies.get(COOKIE))
        if session is not None and session.user and self.revocations.revoked(session):
            session = None  # logged out: the cookie is still signed, but the session is over
        fresh = session is None
        if session is None:
            session = self.access.new_session()
        return Visit(lang, translator(lang), session, fresh, self.access.user(session))

    def _finish(self, visit: Visit, response: Response, personal: bool = True) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if personal:
            response.headers["Cache-Control"] = "no-store"
        if visit.fresh:
            response.set_cookie(
                COOKIE,
                self.access.dump(visit.session),
                max_age=SESSION_MAX_AGE_S,
                path=PREFIX,
                httponly=True,
                samesite="strict",
                secure=self.access.secure_cookie,
            )
        return response

    def page(self, visit: Visit, template: str, status: int = 200, **data: Any) -> Response:
        html = self.env.get_template(template).render(
            t=visit.t,
            lang=visit.lang,
            user=visit.user,
            csrf=visit.session.csrf,
            tz=self.settings.timezone,
            **data,
        )
        return self._finish(visit, HTMLResponse(html, status))

    def message(self, visit: Visit, status: int, key: str, detail: str = "") -> Response:
        return self.page(visit, "message.html", status, message=visit.t(key), detail=detail)

    def redirect(self, visit: Visit, url: str) -> Response:
        return self._finish(visit, RedirectResponse(url, 303))

    def login_form(self, visit: Visit, status: int, next_url: str, error: str = "") -> Response:
        return self.page(
            visit,
            "login.html",
            status,
            next_url=_safe_next(next_url),
            error=error and visit.t(error),
        )

    # -- gates -------------------------------------------------------------------------------

    def refused(self, visit: Visit, request: Request) -> Response | None:
        """Why this visitor may not have the page or action, as the answer; ``None``: go on."""
        if not self.access.configured:
            return self.message(visit, 503, "unconfigured")
        if visit.user is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return self.login_form(visit, 401, target, "login_needed")
            return self.message(visit, 401, "login_needed")
        return None

    async def form(self, visit: Visit, request: Request) -> FormData | Response:
        """The posted form, once its CSRF token is this session's; else the 403 answer."""
        form = await request.form()
        if visit.fresh or not csrf_ok(visit.session, form.get("csrf")):
            return self.message(visit, 403, "forbidden")
        return form

    async def action(self, visit: Visit, request: Request) -> FormData | Response:
        """An action's form: from a logged-in user, with this session's CSRF token."""
        if (refusal := self.refused(visit, request)) is not None:
            return refusal
        return await self.form(visit, request)

    async def read(self, visit: Visit, fn: Callable[..., T], *args: Any) -> T | Response:
        try:
            return await run_in_threadpool(fn, *args)
        except redis.RedisError as exc:
            log.error("console_redis_unavailable", error=type(exc).__name__)
            return self.message(visit, 503, "unavailable")

    # -- actions -------------------------------------------------------------------------------

    def retry(self, rid: str, user: str) -> None:
        self.ledger.retry_now(rid, utcnow(), by=user)
        self.send(rid)

    def retry_group(self, reason: str, user: str) -> int:
        queued = 0
        for rid in views.group_ids(self.ledger, reason):
            try:
                self.retry(rid, user)
            except (LookupError, ValueError):
                continue  # moved on since it was read (delivered, purged, retried by another)
            queued += 1
        log.info("console_group_retry", reason=reason, queued=queued, by=user)
        return queued


def build_router(ledger: Ledger, send: Callable[[str], None], settings: Settings) -> APIRouter:
    """The console's routes; kept out of the ingress's OpenAPI document (it is not an API)."""
    console = Console(ledger, send, settings)
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    @router.get("/static/console.css")
    def stylesheet(request: Request) -> Response:
        response = Response(console.css, media_type="text/css")
        response.headers["Cache-Control"] = "max-age=3600"
        response.headers.update(SECURITY_HEADERS)
        return response

    @router.get("/login")
    async def login_page(request: Request, next: str = f"{PREFIX}/") -> Response:
        visit = console.visit(request)
        if not console.access.configured:
            return console.message(visit, 503, "unconfigured")
        if visit.user is not None:
            return console.redirect(visit, _safe_next(next))
        return console.login_form(visit, 200, next)

    @router.post("/login")
    async def login(request: Request) -> Response:
        visit = console.visit(request)
        if not console.access.configured:
            return console.message(visit, 503, "unconfigured")
        form = await console.form(visit, request)
        if isinstance(form, Response):
            return form
        target = _safe_next(form.get("next"))
        name, password = form.get("user"), form.get("password")
        if not isinstance(name, str) or not isinstance(password, str):
            return console.login_form(visit, 401, target, "login_failed")
        ip = request.client.host if request.client else "unknown"
        wait = await console.read(visit, console.limit.reserve, ip, name, time.time())
        if isinstance(wait, Response):
            return wait
        if wait > 0:
            log.warning("console_login_throttled", wait_s=wait)
            answer = console.login_form(visit, 429, target, "login_limited")
            answer.headers["Retry-After"] = str(math.ceil(wait))
            return answer
        if not console.access.check(name, password):
            log.warning("console_login_failed")  # counted already, by reserve()
            return console.login_form(visit, 401, target, "login_failed")
        await console.read(visit, console.limit.succeeded, ip, name)
        # A new session (and CSRF token) at login: one fixed before it is worth nothing.
        visit.session, visit.fresh, visit.user = console.access.new_session(name), True, name
        log.info("console_login", user=name)
        return console.redirect(visit, target)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        visit = console.visit(request)
        form = await console.form(visit, request)
        if isinstance(form, Response):
            return form
        ended = await console.read(visit, console.revocations.revoke, visit.session)
        if isinstance(ended, Response):
            return ended
        visit.session, visit.fresh = console.access.new_session(), True
        return console.redirect(visit, f"{PREFIX}/login")

    @router.get("")
    @router.get("/")
    async def overview(request: Request) -> Response:
        visit = console.visit(request)
        if (refusal := console.refused(visit, request)) is not None:
            return refusal
        now = utcnow()
        data = await console.read(visit, views.overview, ledger, console.budget, now, settings.tz)
        if isinstance(data, Response):
            return data
        reconciliation = await console.read(visit, figures, ledger, settings, now)
        if isinstance(reconciliation, Response):
            return reconciliation
        return console.page(
            visit,
            "overview.html",
            view=data,
            refresh_s=REFRESH_S,
            attention_states=views.ATTENTION_STATES,
            reconciliation=reconciliation,
        )

    @router.get("/attention")
    async def attention(request: Request, retried: int | None = None) -> Response:
        visit = console.visit(request)
        if (refusal := console.refused(visit, request)) is not None:
            return refusal
        groups = await console.read(
            visit, views.attention, ledger, settings.retry_max_attempts, settings.tz
        )
        if isinstance(groups, Response):
            return groups
        return console.page(
            visit,
            "attention.html",
            groups=groups,
            advice={g.reason: views.advice(g.reason, visit.t) for g in groups},
            retried=retried,
            unreadable=UNREADABLE,
            rows_per_group=views.ROWS_PER_GROUP,
        )

    @router.post("/attention/retry")
    async def retry_group(request: Request) -> Response:
        visit = console.visit(request)
        form = await console.action(visit, request)
        if isinstance(form, Response):
            return form
        reason = form.get("reason")
        if not isinstance(reason, str) or not reason:
            return console.message(visit, 422, "action_refused", "reason: missing")
        assert visit.user is not None  # refused() let only a logged-in user through
        queued = await console.read(visit, console.retry_group, reason, visit.user)
        if isinstance(queued, Response):
            return queued
        return console.redirect(visit, f"{PREFIX}/attention?retried={queued}")

    @router.get("/search")
    async def search(request: Request, q: str = "") -> Response:
        visit = console.visit(request)
        if (refusal := console.refused(visit, request)) is not None:
            return refusal
        found = await console.read(visit, views.search, ledger, q[:500])
        if isinstance(found, Response):
            return found
        records, more = found
        return console.page(visit, "search.html", q=q, records=records, more=more)

    @router.get("/records/{rid}")
    async def record(request: Request, rid: str, done: str = "") -> Response:
        visit = console.visit(request)
        if (refusal := console.refused(visit, request)) is not None:
            return refusal
        try:
            rec = await console.read(visit, ledger.get, rid)
        except UnreadableRecord as exc:
            return console.message(visit, 409, "unreadable", "; ".join(exc.problems))
        if isinstance(rec, Response):
            return rec
        if rec is None:
            return console.message(visit, 404, "not_found")
        history = await console.read(visit, ledger.history, rid)
        if isinstance(history, Response):
            return history
        error, technical = story.error_text(rec.last_error and rec.last_error.model_dump(), visit.t)
        return console.page(
            visit,
            "record.html",
            rec=rec,
            lines=[story.tell(h, visit.t, settings.tz) for h in history],
            written=story.written(history, visit.t, settings.tz),
            outcome=story.note_text(rec.outcome, visit.t),
            # The old error stays in history: once retried, the banner waits for the outcome.
            error=error if rec.state in views.RETRYABLE else "",
            technical=technical,
            advice=views.advice(rec.last_error.code if rec.last_error else "", visit.t),
            done=done if done in ("retry", "give_up") else "",
            retryable=rec.state in views.RETRYABLE,
            can_give_up=rec.state not in ("delivered", "given_up"),
        )

    async def act(request: Request, rid: str, change: Callable[[str, FormData], str]) -> Response:
        visit = console.visit(request)
        form = await console.action(visit, request)
        if isinstance(form, Response):
            return form
        assert visit.user is not None
        try:
            done = await console.read(visit, change, visit.user, form)
        except (LookupError, ValueError) as exc:
            return console.message(visit, 409, "action_refused", str(exc))
        if isinstance(done, Response):
            return done
        return console.redirect(visit, f"{PREFIX}/records/{quote(rid, safe='')}?done={done}")

    @router.post("/records/{rid}/retry")
    async def retry(request: Request, rid: str) -> Response:
        def change(user: str, _: FormData) -> str:
            console.retry(rid, user)
            log.info("console_retry", record=rid, by=user)
            return "retry"

        return await act(request, rid, change)

    @router.post("/records/{rid}/give-up")
    async def give_up(request: Request, rid: str) -> Response:
        def change(user: str, form: FormData) -> str:
            reason = form.get("reason")
            if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_CHARS:
                raise ValueError(f"reason: 1 to {MAX_REASON_CHARS} characters")
            ledger.give_up_now(rid, utcnow(), reason.strip(), by=user)
            log.info("console_give_up", record=rid, by=user)
            return "give_up"

        return await act(request, rid, change)

    return router
