"""Coachview REST client: one pooled httpx connection and one OAuth2 token per process."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from gradesync import http, logs
from gradesync.coachview import api, readers, resultlink
from gradesync.coachview.budget import Budget
from gradesync.coachview.gate import Gate
from gradesync.entities import Component, Participation, Person, RequestComponent
from gradesync.errors import Permanent, UnexpectedResponse, Unresolved
from gradesync.http import FieldProblem
from gradesync.roster import RosterPerson

# Refresh this long before the token's stated expiry, so a request never carries a dying token.
TOKEN_MARGIN_S = 60.0
DEFAULT_TOKEN_TTL_S = 900
# Coachview's admins choose 15 min, 1 h or 8 h; a longer life is not believed.
MAX_TOKEN_TTL_S = 24 * 3600
PAGE_SIZE = 100
# One learner's or one course's rows fit in far fewer; Coachview answers large skips slowly.
MAX_PAGES = 20
# gradesync's simulator sends this on every response. Delivering real completions into it
# would look like success and reach nobody, so only development allows it.
SIMULATOR_HEADER = "X-Gradesync-Simulator"
# ``where=id=1,2,…``: how many ids one look-up names (the URL stays short, one page answers).
IDS_PER_READ = 100
log = logs.get("gradesync.coachview")

Entity = TypeVar("Entity", Participation, RequestComponent)


@dataclass(frozen=True)
class Writable(Generic[Entity]):
    """One of the two entities gradesync writes: where it lives, how it reads, which English
    field is which Coachview field, and how its rows are looked up."""

    what: str
    path: str
    read: Callable[[dict[str, Any]], Entity]
    writes: Mapping[str, str]
    person_field: str
    component_field: str

    def item(self, entity_id: int) -> str:
        return f"{self.path}/{entity_id}"


PARTICIPATION: Writable[Participation] = Writable(
    "participation",
    api.PARTICIPATIONS,
    readers.participation,
    api.PARTICIPATION_WRITES,
    api.ParticipationField.PERSON_ID,
    api.ParticipationField.COMPONENT_ID,
)
REQUEST_COMPONENT: Writable[RequestComponent] = Writable(
    "request component",
    api.REQUEST_COMPONENTS,
    readers.request_component,
    api.REQUEST_COMPONENT_WRITES,
    api.RequestComponentField.PERSON_ID,
    api.RequestComponentField.COMPONENT_ID,
)


class TooManyRows(UnexpectedResponse):
    """A look-up matched more rows than :data:`MAX_PAGES` pages hold."""


class TokenCache:
    """The client-credentials token, shared by every task in this process."""

    def __init__(self, fetch: Callable[[], tuple[str, float]], clock: Callable[[], float]):
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetches = 0

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - TOKEN_MARGIN_S:
                token, ttl = self._fetch()
                self.fetches += 1
                self._token, self._expires_at = token, self._clock() + ttl
            return self._token

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None


# The scope without which Coachview answers example persons (its <Entiteit>.Lezen pattern).
PERSONS_SCOPE = "Personen.Lezen"


class CoachviewClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str = "api",
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_response: Callable[[httpx.Response, float], None] | None = None,
        budget: Budget | None = None,
        gate: Gate | None = None,
        allow_simulator: bool = False,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=1),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "gradesync"},
        )
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._on_response = on_response
        self._budget = budget
        self._gate = gate
        self._allow_simulator = allow_simulator
        self.tokens = TokenCache(self._fetch_token, clock)

    def close(self) -> None:
        self._http.close()

    # -- transport ---------------------------------------------------------------------------

    def _send(
        self, method: str, url: str, *, budgeted: bool = True, **kwargs: Any
    ) -> httpx.Response:
        if budgeted and self._budget is not None:
            self._budget.check()
        if self._gate is not None:
            self._gate.wait_turn()
        if budgeted and self._budget is not None:
            self._budget.sending()
        started = time.perf_counter()
        response = http.request(self._http, method, url, **kwargs)
        if SIMULATOR_HEADER in response.headers and not self._allow_simulator:
            raise Permanent(
                f"COACHVIEW_BASE_URL ({self._http.base_url}) is gradesync's simulator: set the "
                "real Coachview's URL, or GRADESYNC_INSECURE_DEV=1 on a development machine",
                code="coachview_is_simulator",
            )
        if budgeted and self._budget is not None:
            self._budget.observe(response.headers)
        if self._on_response is not None:
            self._on_response(response, time.perf_counter() - started)
        return response

    def _fetch_token(self) -> tuple[str, float]:
        response = self._send(
            "POST",
            api.TOKEN_PATH,
            data=api.token_form(self._client_id, self._client_secret, self._scope),
        )
        body = self._json(response, "token", dict)
        return http.parsed(_token, body, "token")

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        refreshed = resent = False
        while True:
            token = self.tokens.get()
            headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {token}"}
            response = self._send(method, url, headers=headers, **kwargs)
            kwargs["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
            if response.status_code == 401 and not refreshed:
                # The token may have been revoked or expired early: fetch a new one once.
                self.tokens.invalidate(token)
                refreshed = True
                continue
            if response.status_code == 429 and not resent and self._short_pause(response):
                # Sent again once the pause is over (the gate holds every worker until then):
                # a step of several look-ups must not lose those already made to a burst
                # limit, or it would never get past its last one.
                resent = True
                continue
            return response

    def _short_pause(self, response: httpx.Response) -> bool:
        """Pause every worker for a 429's ``Retry-After`` if it is one to wait out here."""
        wait = http.retry_after_seconds(response.headers.get("Retry-After"))
        if self._gate is None or wait is None or wait > self._gate.max_wait_s:
            return False
        self._gate.pause(wait)
        return True

    def _json(self, response: httpx.Response, what: str, expect: type[http.T]) -> http.T:
        self._raise_for_status(response, what)
        return http.json_body(response, what, expect)

    def _raise_for_status(self, response: httpx.Response, what: str) -> None:
        if response.status_code == 429:
            if self._budget is not None:
                self._budget.check()  # the day's budget is gone: wait for the reset
            wait = http.retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and self._gate is not None:
                self._gate.pause(wait)  # every worker holds off, not only this one
        http.raise_for_status(response, what)

    def _get_list(
        self, path: str, conditions: dict[str, Any], what: str, at_most: int | None = None
    ) -> list[dict[str, Any]]:
        """Every row that matches, page by page (``skip``/``take``): a look-up matching more
        than one page must not silently drop the rest. ``at_most``: no more rows can match
        (one per id asked for), so a full page of them is the last."""
        rows: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            params: dict[str, Any] = {"where": api.where(conditions), "take": PAGE_SIZE}
            if page:
                params["skip"] = page * PAGE_SIZE
            batch = self._json(self._request("GET", path, params=params), what, list)
            rows += batch
            if len(batch) < PAGE_SIZE or (at_most is not None and len(rows) >= at_most):
                return rows
        raise TooManyRows(
            f"{what}: more than {MAX_PAGES * PAGE_SIZE} rows match one look-up; not one learner's "
            "or one course's (does Coachview ignore the where= filter?)"
        )

    # -- resources ---------------------------------------------------------------------------

    def _where(
        self,
        path: str,
        conditions: dict[str, Any],
        what: str,
        read: Callable[[dict[str, Any]], http.T],
        asked: Callable[[dict[str, Any], http.T], bool],
        at_most: int | None = None,
    ) -> list[http.T]:
        """The rows a ``where=`` look-up returns that match what was asked: a Coachview that
        reads the filter differently (or ignores it) must not hand us another learner's row.
        Every row is read first, so a malformed one is still ``unexpected_response``."""

        def read_and_check(row: dict[str, Any]) -> tuple[http.T, bool]:
            entity = read(row)
            return entity, asked(row, entity)

        rows = self._get_list(path, conditions, what, at_most)
        checked = [http.parsed(read_and_check, row, what) for row in rows]
        kept = [entity for entity, matches in checked if matches]
        ids = {getattr(entity, "id", None) for entity, _ in checked}
        if rows and not kept and what == "persons" and len(ids) == 1:
            # One person, not the one asked for, for every look-up: Coachview without the
            # entity's scope answers example values (every public id the same). Said, never
            # "unknown"; a Coachview ignoring the filter answers many people instead.
            raise Permanent(
                "Coachview answered only persons without the value asked: its answers look "
                f"like example values; add the scope {PERSONS_SCOPE} to COACHVIEW_SCOPE",
                code="coachview_example_values",
            )
        if len(kept) < len(rows):
            # Counts and names only: the rows are personal data.
            log.warning(
                "coachview_filter_mismatch",
                resource=what,
                fields=sorted(conditions),
                returned=len(rows),
                dropped=len(rows) - len(kept),
            )
        return kept

    def find_persons(self, field: str, value: str) -> list[Person]:
        if field == api.PersonField.ID:
            # ASCII digits only: str.isdigit() also holds for "١٠٠١", which int() reads as 1001.
            if not (value.isascii() and value.isdigit()):
                return []
            response = self._request("GET", api.person_path(int(value)))
            if response.status_code == 404:
                return []
            found = http.parsed(readers.person, self._json(response, "person", dict), "person")
            return [found] if str(found.id) == value else []
        return self._where(
            api.PERSONS,
            {field: value},
            "persons",
            readers.person,
            lambda row, _: readers.code(row, field) == value,
        )

    def components_for_course(self, course_id: str) -> list[Component]:
        return self._where(
            api.COMPONENTS,
            {api.ComponentField.ELEARNING_CODE: course_id},
            "components",
            readers.component,
            lambda _, component: component.elearning_code == course_id,
        )

    def elearning_codes(self) -> list[str]:
        """The e-learning course ids on every e-learning component: the courses Coachview
        knows, which reconciliation asks the LMS about (one read per run, page by page)."""
        rows = self._get_list(api.COMPONENTS, {api.ComponentField.FORM: "Elearning"}, "components")
        found = [http.parsed(readers.component, row, "components") for row in rows]
        return sorted({c.elearning_code for c in found if c.elearning_code})

    def persons_by_ids(
        self, person_ids: Iterable[int], fields: Sequence[str]
    ) -> list[RosterPerson]:
        """The persons with these ids and their values of the match ``fields``,
        :data:`IDS_PER_READ` to a look-up."""
        ids = sorted(set(person_ids))
        wanted = set(ids)
        found: list[RosterPerson] = []
        for start in range(0, len(ids), IDS_PER_READ):
            batch = ids[start : start + IDS_PER_READ]
            found += self._where(
                api.PERSONS,
                {api.PersonField.ID: batch},
                "persons",
                lambda row: RosterPerson(
                    id=readers.identifier(row, api.PersonField.ID),
                    codes={field: readers.code(row, field) for field in fields},
                ),
                lambda _, person: person.id in wanted,
                at_most=len(batch),
            )
        return found

    def rows(
        self, kind: Writable[Entity], component_ids: Sequence[int], person_id: int | None = None
    ) -> list[Entity]:
        """``kind``'s rows for these components: one learner's, or (``person_id`` None) every
        learner's, which is a course's roster."""
        wanted = set(component_ids)
        conditions: dict[str, Any] = {}
        if person_id is not None:
            conditions[kind.person_field] = person_id
        conditions[kind.component_field] = list(component_ids)
        return self._where(
            kind.path,
            conditions,
            f"{kind.what}s",
            kind.read,
            lambda _, row: (
                row.component_id in wanted and (person_id is None or row.person_id == person_id)
            ),
        )

    def get(self, kind: Writable[Entity], entity_id: int) -> Entity:
        return self._entity(kind, self._request("GET", kind.item(entity_id)), kind.what)

    def update(
        self, kind: Writable[Entity], entity_id: int, fields: dict[str, Any], etag: str
    ) -> Entity:
        """One partial update of English-named ``fields``, always conditional (``If-Match``):
        an unconditioned write could overwrite what another writer put there since we read it."""
        what = f"update {kind.what}"
        if not etag:
            raise UnexpectedResponse(
                f"{what}: Coachview gave no etag to write against; refusing an unconditioned write"
            )
        body = {kind.writes[name]: value for name, value in fields.items()}
        response = self._request("PUT", kind.item(entity_id), json=body, headers={"If-Match": etag})
        return self._entity(kind, response, what)

    def _entity(self, kind: Writable[Entity], response: httpx.Response, what: str) -> Entity:
        entity = http.parsed(kind.read, self._json(response, what, dict), what)
        if entity.etag is None and response.headers.get("etag"):
            entity = entity.model_copy(update={"etag": response.headers["etag"]})
        return entity

    def post_result_link(self, body: bytes, plugin_key: str, secret: str) -> None:
        """One signed XML message; Coachview applies the six effects itself."""
        response = self._send(
            "POST",
            api.RESULT_LINK,
            budgeted=False,  # the result link is not a REST API call
            params={"plugin": plugin_key},
            content=body,
            headers={
                "Content-Type": "application/xml; charset=utf-8",
                api.RESULT_LINK_SIGNATURE: resultlink.sign(body, secret),
            },
        )
        if response.status_code == 404:
            raise Unresolved(
                "not_placed",
                "result link: Coachview could not place it (unknown person, unknown course or "
                "not enrolled); `gradesync diagnose KEY` tells which",
            )
        self._raise_for_status(response, "result link")


def _token(body: dict[str, Any]) -> tuple[str, float]:
    token = body["access_token"]
    if not isinstance(token, str) or not token:
        raise ValueError("access_token is not a non-empty string")
    return token, _lifetime(body.get("expires_in", DEFAULT_TOKEN_TTL_S))


def _lifetime(value: Any) -> float:
    """``expires_in``: a finite positive number of seconds (a string of one too: some servers
    quote it), capped at :data:`MAX_TOKEN_TTL_S`; ``"1e999"`` would cache a token forever."""
    problem = FieldProblem("expires_in", "expected a finite positive number of seconds")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise problem from None
    if type(value) not in (int, float) or not math.isfinite(value) or value <= 0:
        raise problem
    return float(min(value, MAX_TOKEN_TTL_S))
