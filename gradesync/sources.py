"""The LMS installations one deployment serves (issue 16): one entry per installation, each with
its own webhook secret, LMS API and credential, grade policy, id fields and options.

Pure: the models validate a mapping (from the sources file, see :mod:`gradesync.sources_file`,
or from today's single-installation environment variables); secrets named by environment
variable are resolved from the ``env`` mapping given in the validation context, so a test
passes its own. A secret's value never appears in an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, time
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import regex
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gradesync.event import check_identifier
from gradesync.grades import GradeFormat, Separator
from gradesync.webhook_secrets import check_webhook_secret

Kind = Literal["moodle", "ilias", "anewspring", "xapi"]
KINDS: tuple[Kind, ...] = ("moodle", "ilias", "anewspring", "xapi")
DEFAULT_INSTANCE = "default"
# A path segment and a Redis key part as they are: no escaping anywhere, no look-alikes.
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62})")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InstallationUnknown(LookupError):
    """No installation of this kind has this instance name."""


class InstallationDisabled(Exception):
    """The installation exists and is switched off (``enabled: false``)."""


class InstanceMismatch(ValueError):
    """A body names another installation than the route it arrived at (refused, 422)."""

    def __init__(self, field: str, route: Installation) -> None:
        super().__init__(
            f"names another installation than this route's ({route.name}): the installation "
            "comes from the route, send the event to that installation's route"
        )
        self.field = field


def shown(name: str, limit: int = 64) -> str:
    """A caller's name as an answer may repeat it: quoted, escaped to ASCII (a zero-width
    character or a NUL is seen as such), and at most ``limit`` characters of it."""
    if len(name) <= limit:
        return ascii(name)
    return f"{name[:limit]!a}… ({len(name)} characters)"


def _slug(value: str) -> str:
    if not SLUG.fullmatch(value):
        raise ValueError(
            "must be a slug: lower-case letters, digits, - and _, starting with a letter or "
            "digit, at most 63 characters"
        )
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (an IANA name, e.g. Europe/Amsterdam)"
        ) from None
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
TimeZone = Annotated[str, AfterValidator(_zone)]


def _env(info: ValidationInfo) -> Mapping[str, str]:
    env = info.context.get("env") if isinstance(info.context, dict) else None
    return env if env is not None else {}


def _resolve(
    literal: SecretStr | None, env_name: str | None, info: ValidationInfo, what: str
) -> SecretStr | None:
    """A credential given literally or by environment variable (the variable is preferred:
    the file then holds no secret). Raises naming the variable, never the value."""
    if literal is not None and env_name is not None:
        raise ValueError(f"give the {what} literally or by environment variable, not both")
    if env_name is None:
        return literal
    if not _ENV_NAME.fullmatch(env_name):
        raise ValueError(f"{env_name!r} is not an environment variable name")
    value = _env(info).get(env_name, "")
    if not value.strip():
        raise ValueError(f"environment variable {env_name} (the {what}) is unset or empty")
    if value != value.strip():
        raise ValueError(
            f"environment variable {env_name} (the {what}) has whitespace around it "
            "(a copy-paste slip?)"
        )
    return SecretStr(value)


def _literal_credential(value: SecretStr | None) -> SecretStr | None:
    """A credential written in the file: refused like an empty or padded variable."""
    text = None if value is None else value.get_secret_value()
    if text is not None and not text.strip():
        raise ValueError("is empty")
    if text is not None and text != text.strip():
        raise ValueError("has whitespace around it (a copy-paste slip?)")
    return value


def _literal_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        check_webhook_secret(value.get_secret_value())
    return value


class Strict(BaseModel):
    # A typo (``secert_env``) is an error naming the key, never a silently defaulted field.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Api(Strict):
    """The LMS's API: where it is and the credential it takes (Moodle's web-service token,
    aNewSpring's API key, the ILIAS SOAP user's password)."""

    url: HttpUrl
    credential: SecretStr | None = None
    credential_env: str | None = Field(None, validate_default=True)
    _credential: SecretStr | None = PrivateAttr(None)

    _literal = field_validator("credential")(_literal_credential)

    @field_validator("credential_env")
    @classmethod
    def _credential_given(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "credential" not in info.data:  # the literal one was refused: said there
            return value
        if _resolve(info.data.get("credential"), value, info, "API credential") is None:
            raise ValueError("the API needs credential_env (preferred) or credential")
        return value

    @model_validator(mode="after")
    def _keep_credential(self, info: ValidationInfo) -> Api:
        self._credential = _resolve(self.credential, self.credential_env, info, "API credential")
        return self

    def secret(self) -> str:
        assert self._credential is not None  # checked by the validators
        return self._credential.get_secret_value()


# A run spends one call mapping the courses and one listing the resumed course's learners
# before it asks a learner: a smaller cap would never ask one, and the pass would never end.
RECONCILE_MIN_CALLS = 3


class Reconcile(Strict):
    """Issue 26: a nightly look at which learners completed the courses Coachview knows, so a
    webhook that never came is caught up. Unset values take the ``GRADESYNC_RECONCILE_*``
    defaults (see :mod:`gradesync.reconcile`)."""

    enabled: StrictBool = True
    # When beat runs it, in GRADESYNC_TIMEZONE.
    at: time | None = None
    # Coachview's e-learning course ids to look at; unset: every one Coachview holds.
    courses: tuple[str, ...] | None = None
    max_calls: int | None = Field(None, ge=RECONCILE_MIN_CALLS)

    @field_validator("at", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        # YAML reads an unquoted 04:00 as the number 240 (base 60), which would be 00:04.
        if value is not None and not isinstance(value, str | time):
            raise ValueError('write the time quoted, as "HH:MM" (e.g. "02:30")')
        return value


class Installation(Strict):
    """What every kind shares. ``enabled: false`` refuses its events (403) and holds its queued
    records (they wait, spending no attempts) until it is enabled again."""

    KIND: ClassVar[Kind]
    # Whether the kind has a credential besides the webhook secret (checked by the kind).
    SECRET_OPTIONAL: ClassVar[bool] = False
    kind: Kind
    instance: str = Field(DEFAULT_INSTANCE, validate_default=True)
    # Strict: a quoted "no" or "0" is a string a person wrote, not a switch YAML read.
    enabled: StrictBool = True
    secret: SecretStr | None = None
    # Checked even when absent (validate_default): a missing secret is reported beside every
    # other problem of the entry, not only once the rest is right.
    secret_env: str | None = Field(None, validate_default=True)
    # Rotation without a gap: the secret being replaced, accepted beside the new one through
    # ``previous_secret_expires`` (a date, UTC) — as Standard Webhooks and Stripe do.
    previous_secret_env: str | None = None
    previous_secret_expires: date | None = Field(None, validate_default=True)
    api: Api | None = None
    _webhook_secret: SecretStr | None = PrivateAttr(None)
    _previous_secret: SecretStr | None = PrivateAttr(None)

    @field_validator("instance")
    @classmethod
    def _instance(cls, value: str, info: ValidationInfo) -> str:
        """A slug, so that ``/events/{kind}/{instance}`` reaches it. Today's variables may keep
        the name they had (an upgrade note once advised the Moodle host, a URL): it is part of
        every record key, and ``/events/{kind}`` serves that installation."""
        if isinstance(info.context, dict) and info.context.get("from_environment", False):
            return check_identifier(value)
        return _slug(value)

    # A literal secret's problem is the ``secret:`` line's, not ``secret_env``'s.
    _literal = field_validator("secret")(_literal_secret)

    @field_validator("secret_env")
    @classmethod
    def _secret_given(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "secret" not in info.data:  # the literal one was refused: said there
            return value
        resolved = _resolve(info.data.get("secret"), value, info, "webhook secret")
        optional = cls.SECRET_OPTIONAL or (
            isinstance(info.context, dict) and info.context.get("from_environment", False)
        )
        if resolved is None and not optional:
            raise ValueError("a webhook secret is needed: secret_env (preferred) or secret")
        if resolved is not None and value is not None:
            check_webhook_secret(resolved.get_secret_value())
        return value

    @field_validator("previous_secret_expires")
    @classmethod
    def _previous_dated(cls, value: date | None, info: ValidationInfo) -> date | None:
        named = info.data.get("previous_secret_env") is not None
        if named and value is None:
            raise ValueError("give the date (YYYY-MM-DD) through which previous_secret_env counts")
        if value is not None and not named:
            raise ValueError("dates a previous secret: name it in previous_secret_env")
        return value

    @model_validator(mode="after")
    def _keep_secret(self, info: ValidationInfo) -> Installation:
        self._webhook_secret = _resolve(self.secret, self.secret_env, info, "webhook secret")
        if self.previous_secret_env is not None:
            previous = _resolve(None, self.previous_secret_env, info, "previous webhook secret")
            assert previous is not None  # _resolve refuses an unset variable
            check_webhook_secret(previous.get_secret_value())
            self._previous_secret = previous
        return self

    @property
    def name(self) -> str:
        """``kind/instance``: how logs, metrics and reports name the installation."""
        return f"{self.kind}/{self.instance}"

    def webhook_secret(self) -> str | None:
        """``None`` only for an installation made from environment variables without one (its
        route then answers 401, as before the sources file)."""
        return None if self._webhook_secret is None else self._webhook_secret.get_secret_value()

    def webhook_secrets(self, today: date) -> list[str]:
        """The secrets a caller may sign with on ``today`` (UTC): the current one, and the
        previous one through its expiry date. Empty: no secret (see :meth:`webhook_secret`)."""
        current = self.webhook_secret()
        found = [] if current is None else [current]
        expires = self.previous_secret_expires
        if self._previous_secret is not None and expires is not None and today <= expires:
            found.append(self._previous_secret.get_secret_value())
        return found


class MoodleSource(Installation):
    KIND: ClassVar[Kind] = "moodle"
    kind: Literal["moodle"]
    # Moodle's course_completed event never carries a grade: fetch it, or say none is wanted.
    grade_policy: Literal["fetch", "completion_only"] = "fetch"
    # Unset: ``idnumber`` (where Coachview's own Moodle provisioning writes ExternId/PersoonId)
    # when there is a web service to read it with, else Moodle's internal ``id``.
    person_field: Literal["id", "idnumber", "username", "email"] | None = None
    course_field: Literal["id", "idnumber", "shortname"] = "id"
    # The course total's number on its range (gradesync/grades.py), never Moodle's display text
    # unless ``formatted`` is asked for.
    grade_format: GradeFormat = "dutch"
    decimal_separator: Separator = "."
    reconcile: Reconcile = Reconcile()

    @field_validator("person_field")
    @classmethod
    def _readable(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Only the web service reads a user field: without it the field could not be matched.
        if value not in (None, "id") and info.data.get("api") is None:
            raise ValueError(f"{value} is read with the web service: add api, or use id")
        return value

    @property
    def person_key(self) -> str:
        """The Moodle user field that names the learner to Coachview."""
        return self.person_field or ("idnumber" if self.api is not None else "id")

    @property
    def internal_person_ids(self) -> bool:
        """Learners are named by Moodle's own user id, a number Coachview's PersoonIds share."""
        return self.person_key == "id"


class IliasSource(Installation):
    KIND: ClassVar[Kind] = "ilias"
    kind: Literal["ilias"]
    # The mark comes in the push event; the pulled LPData carries none.
    grade_policy: Literal["event"] = "event"
    course_field: Literal["obj_id", "ref_id"] = "obj_id"
    # ILIAS writes its server's local time.
    timezone: TimeZone = "Europe/Amsterdam"
    client: str = Field("default", min_length=1)
    user: str | None = None
    poll_interval_s: float = Field(300.0, gt=0)
    poll_overlap_s: int = Field(120, ge=0)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def polled(self) -> bool:
        """The SOAP poller runs for this installation (an API and a user are configured)."""
        return self.api is not None and self.user is not None


class ANewSpringSource(Installation):
    KIND: ClassVar[Kind] = "anewspring"
    kind: Literal["anewspring"]
    grade_policy: Literal["fetch", "event", "completion_only"] = "fetch"
    completion_events: tuple[str, ...] = ("completed",)
    # A fetched grade (getResults' course ``grade``, read on the 1–10 range: see
    # gradesync/lms/anewspring.py) as the same rule renders Moodle's.
    grade_format: GradeFormat = "dutch"
    decimal_separator: Separator = "."

    @field_validator("completion_events")
    @classmethod
    def _some_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(n.strip() for n in value if n.strip())
        if not names:
            raise ValueError("name at least one completion event")
        return names


# xAPI verbs that count as a completion unless an installation names its own (README).
XAPI_COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
XAPI_PASSED = "http://adlnet.gov/expapi/verbs/passed"
XAPI_FAILED = "http://adlnet.gov/expapi/verbs/failed"
CMI5_SATISFIED = "https://w3id.org/xapi/adl/verbs/satisfied"
# Older releases of moodle-logstore_xapi said "completed" in the Tin Can registry's words.
TINCAN_COMPLETED = "http://id.tincanapi.com/verb/completed"
# The course objects of moodle-logstore_xapi (src/transformer/utils/get_activity/course.php:
# ``<wwwroot>/course/view.php?id=N``); its activities (``mod/…/view.php``) never match.
MOODLE_COURSE_PATTERN = r"^https?://[^?#]*/course/view\.php\?id=(?P<course>[0-9]+)$"


class BasicAuth(Strict):
    """The HTTP Basic credentials an xAPI client (an LMS log store, an LRS's forwarding) sends
    to this installation's Statement endpoint."""

    username: str = Field(min_length=1, pattern=r"^[^:\s]+$")
    password: SecretStr | None = None
    password_env: str | None = Field(None, validate_default=True)
    _password: SecretStr | None = PrivateAttr(None)

    _literal = field_validator("password")(_literal_credential)

    @field_validator("password_env")
    @classmethod
    def _password_given(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "password" not in info.data:  # the literal one was refused: said there
            return value
        if _resolve(info.data.get("password"), value, info, "Basic auth password") is None:
            raise ValueError("basic_auth needs password_env (preferred) or password")
        return value

    @model_validator(mode="after")
    def _keep_password(self, info: ValidationInfo) -> BasicAuth:
        self._password = _resolve(self.password, self.password_env, info, "Basic auth password")
        return self

    def secret(self) -> str:
        assert self._password is not None  # checked by the validators
        return self._password.get_secret_value()


class XapiSource(Installation):
    KIND: ClassVar[Kind] = "xapi"
    SECRET_OPTIONAL: ClassVar[bool] = True  # Basic auth may be its only credential
    kind: Literal["xapi"]
    # ``event``: the statement's score is the grade; ``completion_only``: never a grade.
    grade_policy: Literal["event", "completion_only"] = "event"
    grade_format: Literal["dutch", "percent", "raw"] = "dutch"
    course_pattern: str = MOODLE_COURSE_PATTERN
    verbs: tuple[str, ...] = (XAPI_COMPLETED, XAPI_PASSED, CMI5_SATISFIED, TINCAN_COMPLETED)
    # Which of the actor's identifiers names the learner.
    actor_id: Literal["account", "mbox", "openid"] = "account"
    # When set, an account from another homePage is ignored (another site's user 57).
    account_homepage: str | None = None
    # A Moodle installation (its instance name) whose web services map ``account.name`` (the
    # Moodle user id the log store sends) to that installation's ``person_field``.
    moodle: str | None = None
    basic_auth: BasicAuth | None = None

    @field_validator("course_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = regex.compile(value)  # the engine that matches it (gradesync/xapi_read.py)
        except regex.error as exc:
            raise ValueError(f"is not a regular expression: {exc}") from None
        if "course" not in compiled.groupindex:
            raise ValueError("needs a named group (?P<course>…) for the course id")
        return value

    @field_validator("verbs")
    @classmethod
    def _some_verbs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(v.strip() for v in value if v.strip())
        if not names:
            raise ValueError("name at least one verb id")
        return names

    @model_validator(mode="after")
    def _some_credential(self, info: ValidationInfo) -> XapiSource:
        optional = isinstance(info.context, dict) and info.context.get("from_environment", False)
        if self.basic_auth is None and self.webhook_secret() is None and not optional:
            raise ValueError(
                "an xAPI installation needs basic_auth (its Statement endpoint) or a webhook "
                "secret (secret_env, for signed statements on /events/xapi)"
            )
        return self


Inst = TypeVar("Inst", "MoodleSource", "IliasSource", "ANewSpringSource", "XapiSource")
AnyInstallation = Annotated[
    MoodleSource | IliasSource | ANewSpringSource | XapiSource, Field(discriminator="kind")
]


def api_gap(inst: Installation) -> str | None:
    """Why this installation's grades cannot be had under its grade policy, or ``None``."""
    if getattr(inst, "grade_policy", None) == "fetch" and inst.api is None:
        return (
            f"{inst.name}: grade_policy fetch needs api (url and credential) to "
            "fetch the grade the event lacks; add it, or set grade_policy "
            + ("completion_only" if inst.kind == "moodle" else "event or completion_only")
        )
    return None


class Sources(Strict):
    """Every installation, unique per kind and instance."""

    installations: list[AnyInstallation] = Field(min_length=1)
    # The instance ``/events/{kind}`` (no instance segment) serves per kind: ``default``, or,
    # made from environment variables, the one MOODLE_INSTANCE (etc.) names.
    _route_default: dict[str, str] = PrivateAttr(default_factory=dict)
    _from_environment: bool = PrivateAttr(False)

    @model_validator(mode="after")
    def _unique(self) -> Sources:
        seen: set[tuple[str, str]] = set()
        for n, inst in enumerate(self.installations):
            if (inst.kind, inst.instance) in seen:
                raise ValueError(
                    f"installations[{n}]: {inst.name} is named twice (instance must be unique "
                    "per kind)"
                )
            seen.add((inst.kind, inst.instance))
            if isinstance(inst, XapiSource) and inst.moodle is not None:
                self._moodle_named(n, inst.moodle)
        return self

    def _moodle_named(self, n: int, name: str) -> None:
        """An xAPI installation's ``moodle`` names a Moodle installation with web services."""
        found = [i for i in self.installations if i.kind == "moodle" and i.instance == name]
        if not found or found[0].api is None:
            raise ValueError(
                f"installations[{n}].moodle: names no Moodle installation with an api "
                f"({shown(name)}): its web services map the xAPI account to the learner"
            )

    def find(self, kind: str, instance: str | None = None) -> AnyInstallation:
        """The installation, enabled or not; ``None`` instance: the kind's default route."""
        name = instance if instance is not None else self._route_default.get(kind, DEFAULT_INSTANCE)
        for inst in self.installations:
            if inst.kind == kind and inst.instance == name:
                return inst
        raise InstallationUnknown(f"no {kind} installation named {shown(name)} in the sources")

    def typed(self, model: type[Inst], instance: str | None = None) -> Inst:
        """:meth:`find` for a caller that knows the kind, typed as that kind's model."""
        inst = self.find(model.KIND, instance)
        assert isinstance(inst, model)  # the discriminator made it so
        return inst

    def admit(self, kind: str, instance: str | None = None) -> AnyInstallation:
        """The installation events may be recorded for: known and enabled."""
        inst = self.find(kind, instance)
        if not inst.enabled:
            raise InstallationDisabled(f"installation {inst.name} is disabled")
        return inst

    @property
    def from_environment(self) -> bool:
        return self._from_environment

    def made_from_environment(self, route_default: dict[str, str]) -> Sources:
        """Mark these as today's one-per-kind variables, each kind's route serving its one."""
        self._route_default, self._from_environment = dict(route_default), True
        return self

    def ilias_polled(self) -> list[IliasSource]:
        return [i for i in self.installations if isinstance(i, IliasSource) and i.polled]

    @classmethod
    def parse(cls, data: Any, env: Mapping[str, str], *, from_environment: bool = False) -> Sources:
        return cls.model_validate(data, context={"env": env, "from_environment": from_environment})
