"""Every environment variable gradesync reads, with defaults that run against a local stack."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import time
from functools import cached_property, lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gradesync import sources_file
from gradesync.grades import GradeFormat, Separator
from gradesync.sources import (
    MOODLE_COURSE_PATTERN,
    RECONCILE_MIN_CALLS,
    AnyInstallation,
    Installation,
    InstallationUnknown,
    MoodleSource,
    Sources,
    api_gap,
)
from gradesync.webhook_secrets import check_webhook_secret

# The simulator accepts exactly these; a real Coachview gets its own from the environment.
SIM_CLIENT_ID = "gradesync-dev"
SIM_CLIENT_SECRET = "gradesync-dev-secret"
SIM_RESULTLINK_SECRET = "gradesync-dev-resultlink-secret"
SIM_RESULTLINK_PLUGIN_KEY = "gradesync-dev"

Delivery = Literal["rest", "resultlink", "shadow"]
# Where a source's grade comes from (issue 16's per-installation "grade policy"): fetched from
# the LMS API, carried in the event, or none (completions without grades are intended).
GradePolicy = Literal["fetch", "event", "completion_only"]


MIN_CONSOLE_PASSWORD_CHARS = 12
MIN_CONSOLE_SECRET_CHARS = 32
MIN_METRICS_TOKEN_CHARS = 16
_CONSOLE_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def parse_console_users(text: str) -> dict[str, str]:
    """``name:password[,name:password]``; the message names the fault, never a password."""
    users: dict[str, str] = {}
    for n, pair in enumerate((p.strip() for p in text.split(",")), start=1):
        name, colon, password = pair.partition(":")
        if not colon or not _CONSOLE_NAME.fullmatch(name):
            raise ValueError(f"entry {n}: expected name:password (name: letters, digits, ._@-)")
        if len(password) < MIN_CONSOLE_PASSWORD_CHARS:
            raise ValueError(
                f"entry {n} ({name}): password shorter than {MIN_CONSOLE_PASSWORD_CHARS} characters"
            )
        if name in users:
            raise ValueError(f"entry {n}: {name} is named twice")
        users[name] = password
    return users


class Settings(BaseSettings):
    # Empty variables (as in .env.example) count as unset.
    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", frozen=True, env_ignore_empty=True
    )

    redis_url: str = Field("redis://localhost:6379/0", alias="REDIS_URL")

    coachview_base_url: str = Field("http://localhost:8100", alias="COACHVIEW_BASE_URL")
    coachview_client_id: str = Field(SIM_CLIENT_ID, alias="COACHVIEW_CLIENT_ID")
    coachview_client_secret: SecretStr = Field(
        SecretStr(SIM_CLIENT_SECRET), alias="COACHVIEW_CLIENT_SECRET"
    )
    # ``api`` and the entity scopes of what gradesync reads and writes (names by Coachview's
    # <Entiteit>.Lezen/.Schrijven pattern; the public connector, diezit/coachview-connector
    # src/Coachview.php, asks api plus per-entity scopes such as Personen.Lezen): without an
    # entity's scope Coachview answers example values. `gradesync doctor` asks each alone.
    coachview_scope: str = Field(
        "api Personen.Lezen Opleidingsonderdelen.Lezen Opleidingsonderdeeluitvoeringen.Lezen "
        "Opleidingsonderdeeluitvoeringen.Schrijven Opleidingsvraagonderdelen.Lezen "
        "Opleidingsvraagonderdelen.Schrijven",
        alias="COACHVIEW_SCOPE",
    )
    coachview_timeout_s: float = Field(10.0, alias="COACHVIEW_TIMEOUT_S", gt=0)
    # Which Coachview person field is tried first for the LMS person id.
    coachview_person_match: str = Field("externId,id", alias="COACHVIEW_PERSON_MATCH")
    coachview_delivery: Delivery = Field("rest", alias="COACHVIEW_DELIVERY")
    coachview_resultlink_secret: SecretStr = Field(
        SecretStr(SIM_RESULTLINK_SECRET), alias="COACHVIEW_RESULTLINK_SECRET"
    )
    coachview_resultlink_plugin_key: str = Field(
        SIM_RESULTLINK_PLUGIN_KEY, alias="COACHVIEW_RESULTLINK_PLUGIN_KEY"
    )
    # Person and course look-ups change rarely; caching them is what keeps a completion cheap.
    coachview_cache_ttl_s: int = Field(3600, alias="COACHVIEW_CACHE_TTL_S", ge=0)
    # A course's roster (its learners' enrolments) is personal data and changes: minutes only;
    # 0 turns rosters off (every completion looked up directly).
    coachview_roster_ttl_s: int = Field(120, alias="COACHVIEW_ROSTER_TTL_S", ge=0, le=600)
    # Requests kept back from the daily budget: in-flight requests of other workers, and
    # room for a person to use the API by hand.
    coachview_budget_reserve: int = Field(25, alias="COACHVIEW_BUDGET_RESERVE", ge=0)
    # The daily budget when Coachview sends no X-Rate-Limit-* headers (its headers win), and
    # its window: gradesync then counts what it sent itself.
    coachview_daily_limit: int = Field(5000, alias="COACHVIEW_DAILY_LIMIT", ge=1)
    coachview_budget_window_s: float = Field(
        86400.0, alias="COACHVIEW_BUDGET_WINDOW_S", gt=0, le=7 * 86400
    )
    # Requests per second toward Coachview across all workers (unset: no limit).
    coachview_rate_limit_per_s: float | None = Field(None, alias="COACHVIEW_RATE_LIMIT_PER_S", gt=0)

    retry_max_attempts: int = Field(30, alias="GRADESYNC_RETRY_MAX_ATTEMPTS", ge=0)
    retry_time: time = Field(time(3, 0), alias="GRADESYNC_RETRY_TIME")
    timezone: str = Field("Europe/Amsterdam", alias="GRADESYNC_TIMEZONE")

    transient_max_retries: int = Field(6, alias="GRADESYNC_TRANSIENT_MAX_RETRIES", ge=0)
    transient_backoff_s: float = Field(4.0, alias="GRADESYNC_TRANSIENT_BACKOFF_S", ge=0)
    transient_backoff_max_s: float = Field(120.0, alias="GRADESYNC_TRANSIENT_BACKOFF_MAX_S", ge=0)

    visibility_timeout_s: int = Field(3600, alias="GRADESYNC_VISIBILITY_TIMEOUT_S", gt=0)
    sweep_interval_s: float = Field(60.0, alias="GRADESYNC_SWEEP_INTERVAL_S", gt=0)
    restore_interval_s: int = Field(10, alias="GRADESYNC_RESTORE_INTERVAL_S", gt=0)
    # How long beat and a worker wait for a Redis that went away before exiting (non-zero) for
    # their supervisor to restart them: a restart takes seconds, a lost broker is for good.
    broker_give_up_s: float = Field(300.0, alias="GRADESYNC_BROKER_GIVE_UP_S", gt=0)
    # A worker that takes nothing for this long while messages wait in the queue has stopped
    # consuming (its control channel may still answer pings): it exits to be restarted.
    worker_starved_s: float = Field(120.0, alias="GRADESYNC_WORKER_STARVED_S", gt=0)
    # A run with no progress this long (no step done, no retry countdown running) while the
    # broker queue is empty has lost its chain: the sweep sends it again. Longer than the
    # longest single step (a minute's wait for Coachview plus its request timeouts).
    stall_after_s: int = Field(300, alias="GRADESYNC_STALL_AFTER_S", gt=0)
    # Re-sends of a stalled run before the next stall fails it (``stalled``): a run that keeps
    # stalling must not spend Coachview's daily budget in a loop.
    max_stalls: int = Field(3, alias="GRADESYNC_MAX_STALLS", ge=0)

    log_level: str = Field("INFO", alias="GRADESYNC_LOG_LEVEL")
    log_format: str = Field("json", alias="GRADESYNC_LOG_FORMAT")

    # The LMS installations (issue 16); unset: one per kind from the variables below.
    sources_path: str | None = Field(None, alias="GRADESYNC_SOURCES")

    # -- ingress ---------------------------------------------------------------------------
    webhook_secret_moodle: SecretStr | None = Field(None, alias="GRADESYNC_WEBHOOK_SECRET_MOODLE")
    webhook_secret_ilias: SecretStr | None = Field(None, alias="GRADESYNC_WEBHOOK_SECRET_ILIAS")
    webhook_secret_anewspring: SecretStr | None = Field(
        None, alias="GRADESYNC_WEBHOOK_SECRET_ANEWSPRING"
    )
    webhook_secret_xapi: SecretStr | None = Field(None, alias="GRADESYNC_WEBHOOK_SECRET_XAPI")
    webhook_secret_canonical: SecretStr | None = Field(
        None, alias="GRADESYNC_WEBHOOK_SECRET_CANONICAL"
    )
    insecure_dev: bool = Field(False, alias="GRADESYNC_INSECURE_DEV")
    max_body_bytes: int = Field(64 * 1024, alias="GRADESYNC_MAX_BODY_BYTES", gt=0)
    # Reverse proxies (comma-separated addresses) whose X-Forwarded-For the ingress believes;
    # none by default: every caller is who its connection says.
    trusted_proxies: str = Field("", alias="GRADESYNC_TRUSTED_PROXIES")
    # A webhook body arrives in milliseconds; a caller that trickles it holds a connection.
    body_timeout_s: float = Field(10.0, alias="GRADESYNC_BODY_TIMEOUT_S", gt=0, le=300)

    # Bearer token a scraper of /metrics sends (the metrics name every installation). Unset:
    # /metrics answers 403, except under GRADESYNC_INSECURE_DEV=1.
    metrics_token: SecretStr | None = Field(None, alias="GRADESYNC_METRICS_TOKEN")

    # -- the console (/console on the ingress) -----------------------------------------------
    # ``name:password`` pairs, comma-separated: who may log in. Unset: the console refuses to
    # serve (outside GRADESYNC_INSECURE_DEV=1, where it is open without a login).
    console_users: SecretStr | None = Field(None, alias="GRADESYNC_CONSOLE_USERS")
    # Signs the session cookie; required with GRADESYNC_CONSOLE_USERS outside development (in
    # development each process makes its own, so sessions end with the process).
    console_secret: SecretStr | None = Field(None, alias="GRADESYNC_CONSOLE_SECRET")

    # -- Reconciliation with the LMS (issue 26; per installation: the sources file's reconcile)
    reconcile_at: time = Field(time(2, 30), alias="GRADESYNC_RECONCILE_AT")
    reconcile_max_calls: int = Field(
        5000, alias="GRADESYNC_RECONCILE_MAX_CALLS", ge=RECONCILE_MIN_CALLS
    )
    reconcile_overlap_h: float = Field(24.0, alias="GRADESYNC_RECONCILE_OVERLAP_H", ge=0)
    reconcile_first_days: int = Field(30, alias="GRADESYNC_RECONCILE_FIRST_DAYS", ge=1)
    reconcile_grace_h: float = Field(24.0, alias="GRADESYNC_RECONCILE_GRACE_H", ge=0)

    # -- Moodle (web services, for the grade and id look-ups) ------------------------------
    # The installation Moodle's webhooks belong to (the completion key's source_instance).
    moodle_instance: str = Field("default", alias="MOODLE_INSTANCE", min_length=1)
    moodle_url: str | None = Field(None, alias="MOODLE_URL")
    moodle_token: SecretStr | None = Field(None, alias="MOODLE_TOKEN")
    # Unset: idnumber with a web service, else id (gradesync.sources.MoodleSource.person_key).
    moodle_person_field: Literal["id", "idnumber", "username", "email"] | None = Field(
        None, alias="MOODLE_PERSON_FIELD"
    )
    moodle_course_field: Literal["id", "idnumber", "shortname"] = Field(
        "id", alias="MOODLE_COURSE_FIELD"
    )
    moodle_grade_format: GradeFormat = Field("dutch", alias="MOODLE_GRADE_FORMAT")
    moodle_decimal_separator: Separator = Field(".", alias="MOODLE_DECIMAL_SEPARATOR")
    # Moodle's course_completed event never carries a grade: fetch it, or say none is wanted.
    moodle_grade_policy: Literal["fetch", "completion_only"] = Field(
        "fetch", alias="MOODLE_GRADE_POLICY"
    )

    # -- ILIAS (SOAP poller) -------------------------------------------------------------------
    ilias_soap_url: str | None = Field(None, alias="ILIAS_SOAP_URL")
    ilias_client: str = Field("default", alias="ILIAS_CLIENT")
    ilias_user: str | None = Field(None, alias="ILIAS_USER")
    ilias_password: SecretStr | None = Field(None, alias="ILIAS_PASSWORD")
    ilias_instance: str = Field("default", alias="ILIAS_INSTANCE")
    ilias_timezone: str = Field("Europe/Amsterdam", alias="ILIAS_TIMEZONE")
    ilias_course_field: Literal["obj_id", "ref_id"] = Field("obj_id", alias="ILIAS_COURSE_FIELD")
    ilias_poll_interval_s: float = Field(300.0, alias="ILIAS_POLL_INTERVAL_S", gt=0)
    ilias_poll_overlap_s: int = Field(120, alias="ILIAS_POLL_OVERLAP_S", ge=0)

    # -- aNewSpring ------------------------------------------------------------------------
    anewspring_url: str | None = Field(None, alias="ANEWSPRING_URL")
    anewspring_api_key: SecretStr | None = Field(None, alias="ANEWSPRING_API_KEY")
    anewspring_instance: str = Field("default", alias="ANEWSPRING_INSTANCE")
    anewspring_completion_events: str = Field("completed", alias="ANEWSPRING_COMPLETION_EVENTS")
    anewspring_grade_policy: GradePolicy = Field("fetch", alias="ANEWSPRING_GRADE_POLICY")
    anewspring_grade_format: GradeFormat = Field("dutch", alias="ANEWSPRING_GRADE_FORMAT")
    anewspring_decimal_separator: Separator = Field(".", alias="ANEWSPRING_DECIMAL_SEPARATOR")

    # -- xAPI ------------------------------------------------------------------------------
    xapi_instance: str = Field("default", alias="XAPI_INSTANCE", min_length=1)
    xapi_course_pattern: str = Field(MOODLE_COURSE_PATTERN, alias="XAPI_COURSE_PATTERN")
    # The Statement endpoint's own body limit: a log store's batch is far larger than one
    # webhook (checked before anything is parsed).
    xapi_max_body_bytes: int = Field(1024 * 1024, alias="GRADESYNC_XAPI_MAX_BODY_BYTES", gt=0)
    # How long a statement id is remembered: a resent batch within it is recognised as such.
    xapi_statement_days: int = Field(90, alias="GRADESYNC_XAPI_STATEMENT_DAYS", gt=0)

    def webhook_secret(self, source: str) -> str | None:
        """The secret of the canonical route, or (environment configuration) a kind's."""
        secret: SecretStr | None = getattr(self, f"webhook_secret_{source}")
        return None if secret is None else secret.get_secret_value()

    @cached_property
    def sources(self) -> Sources:
        """Every LMS installation: from ``GRADESYNC_SOURCES``, or one per kind from today's
        variables (the same model either way, so nothing else knows the difference)."""
        try:
            if self.sources_path is not None:
                return sources_file.load(self.sources_path, os.environ)
            return self._environment_sources()
        except sources_file.SourcesError as exc:
            what = "the sources file" if self.sources_path else "these environment variables"
            raise ConfigurationError(
                f"gradesync cannot start: fix {what}\n  " + "\n  ".join(exc.problems)
            ) from None

    def _environment_sources(self) -> Sources:
        def api(url: str | None, credential: SecretStr | None) -> dict[str, Any] | None:
            # A URL without its credential is refused, naming the variable that is missing.
            return None if not url else {"url": url, "credential": credential}

        entries: list[dict[str, Any]] = [
            {
                "kind": "moodle",
                "instance": self.moodle_instance,
                "secret": self.webhook_secret_moodle,
                "api": api(self.moodle_url, self.moodle_token),
                "grade_policy": self.moodle_grade_policy,
                "person_field": self.moodle_person_field,
                "course_field": self.moodle_course_field,
                "grade_format": self.moodle_grade_format,
                "decimal_separator": self.moodle_decimal_separator,
            },
            {
                "kind": "ilias",
                "instance": self.ilias_instance,
                "secret": self.webhook_secret_ilias,
                "api": api(self.ilias_soap_url, self.ilias_password),
                "course_field": self.ilias_course_field,
                "timezone": self.ilias_timezone,
                "client": self.ilias_client,
                "user": self.ilias_user,
                "poll_interval_s": self.ilias_poll_interval_s,
                "poll_overlap_s": self.ilias_poll_overlap_s,
            },
            {
                "kind": "anewspring",
                "instance": self.anewspring_instance,
                "secret": self.webhook_secret_anewspring,
                "api": api(self.anewspring_url, self.anewspring_api_key),
                "grade_policy": self.anewspring_grade_policy,
                "completion_events": self.anewspring_completion_events.split(","),
                "grade_format": self.anewspring_grade_format,
                "decimal_separator": self.anewspring_decimal_separator,
            },
            {
                "kind": "xapi",
                "instance": self.xapi_instance,
                "secret": self.webhook_secret_xapi,
                "course_pattern": self.xapi_course_pattern,
            },
        ]
        data = {"installations": entries}
        try:
            sources = Sources.parse(data, {}, from_environment=True)
        except ValidationError as exc:
            raise sources_file.SourcesError(
                [_environment_problem(loc, msg) for loc, msg in sources_file.problems(exc)]
            ) from None
        # /events/{kind} keeps serving the one installation MOODLE_INSTANCE (etc.) names.
        return sources.made_from_environment({str(e["kind"]): str(e["instance"]) for e in entries})

    @field_validator(
        "webhook_secret_moodle",
        "webhook_secret_ilias",
        "webhook_secret_anewspring",
        "webhook_secret_xapi",
        "webhook_secret_canonical",
    )
    @classmethod
    def _usable_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked when the process starts, not at the first request: a malformed secret must
        # stop the ingress with a message naming the variable, never answer 500 to a caller.
        if value is not None:
            check_webhook_secret(value.get_secret_value())
        return value

    @field_validator("console_users")
    @classmethod
    def _console_users(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_console_users(value.get_secret_value())
        return value

    @field_validator("console_secret")
    @classmethod
    def _console_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_CONSOLE_SECRET_CHARS:
            raise ValueError(f"at least {MIN_CONSOLE_SECRET_CHARS} characters")
        return value

    @property
    def console_logins(self) -> dict[str, str]:
        """Name → password of who may log in to the console (empty: nobody configured)."""
        if self.console_users is None:
            return {}
        return parse_console_users(self.console_users.get_secret_value())

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        token = None if value is None else value.get_secret_value()
        if token is not None and (len(token) < MIN_METRICS_TOKEN_CHARS or token != token.strip()):
            raise ValueError(
                f"at least {MIN_METRICS_TOKEN_CHARS} characters, no surrounding whitespace"
            )
        return value

    @field_validator("coachview_client_secret", "coachview_resultlink_secret")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("coachview_daily_limit")
    @classmethod
    def _above_the_reserve(cls, value: int, info: ValidationInfo) -> int:
        # A reserve that takes the whole budget would start every process and deliver nothing.
        reserve = info.data.get("coachview_budget_reserve")
        if reserve is not None and reserve >= value:
            raise ValueError(
                f"must be more than COACHVIEW_BUDGET_RESERVE ({reserve}): the reserve is kept "
                "back from it, so nothing could ever be delivered"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone name
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def person_match_order(self) -> tuple[str, ...]:
        return tuple(f.strip() for f in self.coachview_person_match.split(",") if f.strip())

    def person_match_for(self, source: str, instance: str) -> tuple[str, ...]:
        """The Coachview person fields an installation's learner ids are tried against: those of
        COACHVIEW_PERSON_MATCH, less Coachview's own ``id`` (PersoonId) for an installation that
        names learners by the LMS's internal id, unless COACHVIEW_PERSON_MATCH was set: both
        systems number their people from 1, so Moodle user 57 would be PersoonId 57."""
        order = self.person_match_order
        if "coachview_person_match" in self.model_fields_set:
            return order
        try:
            inst = self.sources.find(source, instance)
        except InstallationUnknown:
            return order
        if isinstance(inst, MoodleSource) and inst.internal_person_ids:
            return tuple(f for f in order if f != "id") or order
        return order


def persoonid_matching_off(s: Settings) -> list[str]:
    """Start-up and doctor warnings: installations matched on the LMS's internal id, for which
    PersoonId matching is off (COACHVIEW_PERSON_MATCH unset)."""
    return [
        f"{inst.name} names learners by Moodle's internal user id: matched on Coachview's "
        f"{', '.join(order)} only, not PersoonId (the two systems' numbers overlap); set "
        "person_field idnumber (MOODLE_PERSON_FIELD), or COACHVIEW_PERSON_MATCH explicitly"
        for inst in s.sources.installations
        if isinstance(inst, MoodleSource)
        and (order := s.person_match_for(inst.kind, inst.instance)) != s.person_match_order
    ]


class ConfigurationError(SystemExit):
    """Start-up refused: the environment names something unusable. A ``SystemExit`` so that
    every entry point (CLI, ingress, ``celery -A workers …``) stops with this message alone,
    not a traceback."""


def describe_problems(exc: ValidationError) -> str:
    lines = ["gradesync cannot start: fix these environment variables"]
    for err in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(p) for p in err["loc"])
        # A default's check reports the field's Python name: name its variable instead.
        field = Settings.model_fields.get(name)
        name = field.alias if field is not None and field.alias else name
        lines.append(f"  {name}: {err['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


# Where a field of an installation made from the environment came from.
_ENV_NAMES = {
    "installations[0].instance": "MOODLE_INSTANCE",
    "installations[0].api.url": "MOODLE_URL",
    "installations[0].api.credential_env": "MOODLE_TOKEN",
    "installations[0].person_field": "MOODLE_PERSON_FIELD",
    "installations[1].api.credential_env": "ILIAS_PASSWORD",
    "installations[2].api.credential_env": "ANEWSPRING_API_KEY",
    "installations[1].instance": "ILIAS_INSTANCE",
    "installations[1].api.url": "ILIAS_SOAP_URL",
    "installations[1].timezone": "ILIAS_TIMEZONE",
    "installations[1].client": "ILIAS_CLIENT",
    "installations[2].instance": "ANEWSPRING_INSTANCE",
    "installations[2].api.url": "ANEWSPRING_URL",
    "installations[2].completion_events": "ANEWSPRING_COMPLETION_EVENTS",
    "installations[3].instance": "XAPI_INSTANCE",
    "installations[3].course_pattern": "XAPI_COURSE_PATTERN",
}


def _environment_problem(loc: tuple[int | str, ...], msg: str) -> str:
    name = _ENV_NAMES.get(sources_file.field_name(loc), "environment")
    if loc[-1] == "credential_env":  # the file's wording does not fit a variable
        msg = "is not set, but the API's URL is"
    return f"{name}: {msg}"


_API_GAPS = {
    "moodle": "Moodle's course_completed event carries no grade and MOODLE_GRADE_POLICY=fetch "
    "(the default) needs MOODLE_URL and MOODLE_TOKEN to fetch it: set both, or "
    "MOODLE_GRADE_POLICY=completion_only if completions without grades are intended",
    "anewspring": "ANEWSPRING_GRADE_POLICY=fetch (the default) needs ANEWSPRING_URL and "
    "ANEWSPRING_API_KEY to fetch a grade an event lacks: set both, or "
    "ANEWSPRING_GRADE_POLICY=event (grades come in the event) or completion_only",
}


def lms_api_gap(s: Settings, inst: Installation) -> str | None:
    """Why ``inst``'s grades cannot be had under its grade policy, or ``None`` (in the words
    of wherever it was configured: the sources file or the environment variables)."""
    gap = api_gap(inst)
    if gap is None or not s.sources.from_environment:
        return gap
    return _API_GAPS[inst.kind]


def require_lms_apis(s: Settings) -> list[str]:
    """Start-up check of the ingress and the worker: an installation in use (its webhook secret
    is set) whose grades would be lost raises :class:`ConfigurationError`. With
    ``GRADESYNC_INSECURE_DEV=1`` every installation is open and every process still starts: the
    gaps are returned for a warning, and such a completion ends ``failed``
    (``lms_api_not_configured``), never delivered silently without its grade."""
    installations: list[AnyInstallation] = s.sources.installations
    if s.insecure_dev:
        return [gap for inst in installations if (gap := lms_api_gap(s, inst))]
    gaps = [
        gap
        for inst in installations
        if inst.webhook_secret() is not None and (gap := lms_api_gap(s, inst))
    ]
    if gaps:
        raise ConfigurationError("; ".join(gaps))
    return []


# The variables that configure installations without a sources file.
PER_KIND_VARIABLE = re.compile(
    r"(MOODLE|ILIAS|ANEWSPRING|XAPI)_\w+|GRADESYNC_WEBHOOK_SECRET_(MOODLE|ILIAS|ANEWSPRING|XAPI)"
)


NOT_READ = (
    "GRADESYNC_SOURCES is set: the sources file configures every installation, these "
    "variables are not read (unset them, or name them as secret_env / credential_env)"
)


def ignored_variables(s: Settings, environ: Mapping[str, str]) -> list[str]:
    """Per-kind variables set while ``GRADESYNC_SOURCES`` is: the file configures every
    installation, so they are not read (unless the file names them as a ``secret_env`` or
    ``credential_env``). An operator who set ``MOODLE_URL`` expects it to count."""
    if s.sources_path is None:
        return []
    named = {
        name
        for inst in s.sources.installations
        for name in (inst.secret_env, inst.api.credential_env if inst.api else None)
        if name
    }
    per_kind = {
        f.alias
        for f in Settings.model_fields.values()
        if f.alias and PER_KIND_VARIABLE.fullmatch(f.alias)
    }
    return sorted(n for n in per_kind - named if environ.get(n, "").strip())


def require_coachview(s: Settings) -> None:
    """Start-up check of the worker: outside development it delivers only to a Coachview the
    operator named, with credentials of their own (the defaults are the simulator's)."""
    if s.insecure_dev:
        return
    problems = []
    if "coachview_base_url" not in s.model_fields_set:
        problems.append(
            "COACHVIEW_BASE_URL is not set: name your Coachview (e.g. https://secure.coachview.net)"
        )
    if s.coachview_client_secret.get_secret_value() == SIM_CLIENT_SECRET:
        problems.append(
            "COACHVIEW_CLIENT_ID / COACHVIEW_CLIENT_SECRET are the simulator's: set your own"
        )
    if problems:
        raise ConfigurationError(
            "; ".join(problems) + " (or GRADESYNC_INSECURE_DEV=1 for the local simulator)"
        )


def redacted_url(url: str) -> str:
    """A URL fit for a message: its password masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        s = Settings()
    except ValidationError as exc:
        raise ConfigurationError(describe_problems(exc)) from None
    s.sources  # noqa: B018 -- read at start-up: a broken sources file stops every process here
    return s
