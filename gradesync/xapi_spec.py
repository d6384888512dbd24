"""What xAPI 1.0.3 itself calls an invalid Statement, and a Statement's id.

Source: adlnet/xAPI-Spec ``xAPI-Data.md`` (2.4 Statement Properties: ``id`` a UUID; ``actor``
an Agent with exactly one inverse functional identifier, or a Group; ``verb.id`` an IRI;
``object`` required, a ``StatementRef`` naming a UUID; ``result.success``/``completion``
booleans; ``score.scaled`` in −1..1, ``raw`` between ``min`` and ``max``, ``min`` below ``max``;
``context.registration`` a UUID; ``timestamp`` ISO 8601; a voiding Statement's object a
``StatementRef``) and ``xAPI-Communication.md`` (2.1 Statement Resource: the same id twice in one
batch is a 400).

Only these are refused (400, naming the statement's index and field): anything else a sink
cannot use is the reader's business (gradesync/xapi_read.py), answered 200 and ignored with a
reason, because a log store resends a refused batch for ever. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from gradesync.grades import as_decimal

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
# Derived statement ids: uuid5 in gradesync's own namespace over the statement's content, so a
# resent batch of id-less statements (moodle-logstore_xapi sends none) gets the same ids.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://gradesync.invalid/xapi/statement")
STATEMENT_KEYS = frozenset(
    {
        "id",
        "actor",
        "verb",
        "object",
        "result",
        "context",
        "timestamp",
        "stored",
        "authority",
        "version",
        "attachments",
        "objectType",
    }
)
STANDARD_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
IFIS = ("mbox", "mbox_sha1sum", "openid", "account")
OBJECT_TYPES = frozenset({"Activity", "Agent", "Group", "StatementRef", "SubStatement"})
# Set by the LRS that stored a statement, not by its author: a forwarded copy carries them, the
# original did not, and the two are one statement (xAPI-Data.md, Statement Immutability);
# attachments are not part of a statement at all (ibid.).
NOT_COMPARED = ("id", "stored", "authority", "version", "attachments")


class Invalid(ValueError):
    """A statement xAPI calls invalid: ``field`` names where, from the batch's root."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def is_uuid(value: Any) -> bool:
    """A UUID in the standard string form (xAPI-Data.md 2.4.1); ``uuid.UUID`` alone also reads
    ``----`` + 32 hex digits, which a voiding statement would then name differently."""
    return isinstance(value, str) and STANDARD_UUID.fullmatch(value) is not None


def _iri(value: Any) -> bool:
    return isinstance(value, str) and ":" in value and not any(c.isspace() for c in value)


def _object(data: Any, field: str, *, required: bool = True) -> dict[str, Any] | None:
    if data is None and not required:
        return None
    if not isinstance(data, dict):
        raise Invalid(field, "must be a JSON object" if data is not None else "is required")
    return data


def _agent(data: Any, field: str) -> None:
    actor = _object(data, field)
    assert actor is not None
    kind = actor.get("objectType", "Agent")
    if kind not in ("Agent", "Group"):
        raise Invalid(f"{field}.objectType", "must be Agent or Group")
    ifis = [k for k in IFIS if k in actor]
    if kind == "Agent" and len(ifis) != 1:
        raise Invalid(field, "an Agent has exactly one of mbox, mbox_sha1sum, openid, account")
    if kind == "Group" and len(ifis) > 1:
        raise Invalid(field, "a Group has at most one of mbox, mbox_sha1sum, openid, account")
    if kind == "Group" and not ifis and not isinstance(actor.get("member"), list):
        raise Invalid(f"{field}.member", "an anonymous Group lists its members")
    if "mbox" in actor and not (
        isinstance(actor["mbox"], str) and actor["mbox"].startswith("mailto:")
    ):
        raise Invalid(f"{field}.mbox", 'must be a "mailto:" IRI')
    if "openid" in actor and not _iri(actor["openid"]):
        raise Invalid(f"{field}.openid", "must be a URI")
    if "account" in actor:
        account = _object(actor["account"], f"{field}.account")
        assert account is not None
        for key in ("homePage", "name"):
            if not isinstance(account.get(key), str):
                raise Invalid(f"{field}.account.{key}", "is required (a string)")
    for n, member in enumerate(actor.get("member") or []):
        _agent(member, f"{field}.member[{n}]")


def _score(data: Any, field: str) -> None:
    score = _object(data, field, required=False)
    if score is None:
        return
    numbers = {}
    for key in ("scaled", "raw", "min", "max"):
        if key in score:
            number = as_decimal(score[key]) if not isinstance(score[key], str) else None
            if number is None:
                raise Invalid(f"{field}.{key}", "must be a number")
            numbers[key] = number
    scaled, raw, low, high = (numbers.get(k) for k in ("scaled", "raw", "min", "max"))
    if scaled is not None and not -1 <= scaled <= 1:
        raise Invalid(f"{field}.scaled", "must lie between -1 and 1")
    if low is not None and high is not None and not low < high:
        raise Invalid(f"{field}.min", "must be less than max")
    if raw is not None and low is not None and raw < low:
        raise Invalid(f"{field}.raw", "must not be less than min")
    if raw is not None and high is not None and raw > high:
        raise Invalid(f"{field}.raw", "must not be more than max")


def _result(data: Any, field: str) -> None:
    result = _object(data, field, required=False)
    if result is None:
        return
    for key in ("success", "completion"):
        if key in result and not isinstance(result[key], bool):
            raise Invalid(f"{field}.{key}", "must be true or false")
    _score(result.get("score"), f"{field}.score")


def timestamp(value: Any, field: str) -> datetime | None:
    """An ISO 8601 timestamp (with or without a zone; the zone-less reading is the reader's)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(field, "must be an ISO 8601 timestamp")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(field, "must be an ISO 8601 timestamp") from None


def check(data: Any, field: str) -> dict[str, Any]:
    """The statement, or :class:`Invalid` for the first problem xAPI names."""
    statement = _object(data, field)
    assert statement is not None
    unknown = sorted(set(statement) - STATEMENT_KEYS)
    if unknown:
        raise Invalid(f"{field}.{unknown[0]}", "is not a Statement property")
    if "id" in statement and not is_uuid(statement["id"]):
        raise Invalid(f"{field}.id", "must be a UUID")
    _agent(statement.get("actor"), f"{field}.actor")
    verb = _object(statement.get("verb"), f"{field}.verb")
    assert verb is not None
    if not _iri(verb.get("id")):
        raise Invalid(f"{field}.verb.id", "is required (an IRI)")
    target = _object(statement.get("object"), f"{field}.object")
    assert target is not None
    kind = target.get("objectType", "Activity")
    if kind not in OBJECT_TYPES:
        raise Invalid(
            f"{field}.object.objectType", f"must be one of {', '.join(sorted(OBJECT_TYPES))}"
        )
    if kind == "Activity" and not _iri(target.get("id")):
        raise Invalid(f"{field}.object.id", "is required (an IRI)")
    if kind == "StatementRef" and not is_uuid(target.get("id")):
        raise Invalid(f"{field}.object.id", "must be a UUID (the statement referred to)")
    if verb["id"] == VOIDED and kind != "StatementRef":
        raise Invalid(
            f"{field}.object.objectType", "a voiding statement's object is a StatementRef"
        )
    _result(statement.get("result"), f"{field}.result")
    context = _object(statement.get("context"), f"{field}.context", required=False)
    if context is not None and "registration" in context and not is_uuid(context["registration"]):
        raise Invalid(f"{field}.context.registration", "must be a UUID")
    timestamp(statement.get("timestamp"), f"{field}.timestamp")
    version = statement.get("version")
    if version is not None and not (isinstance(version, str) and version.startswith("1.0")):
        raise Invalid(f"{field}.version", "must be 1.0.x")
    return statement


def _agent_form(agent: Any) -> Any:
    """An Agent or Group as compared: ``objectType`` ``Agent`` is the default an LRS may add,
    an e-mail domain is case-insensitive, members are an unordered list."""
    if not isinstance(agent, dict):
        return agent
    out = {k: v for k, v in agent.items() if not (k == "objectType" and v == "Agent")}
    mbox = out.get("mbox")
    if isinstance(mbox, str) and "@" in mbox:
        local, _, domain = mbox.rpartition("@")
        out["mbox"] = f"{local}@{domain.lower()}"
    if isinstance(out.get("member"), list):
        members = [_agent_form(m) for m in out["member"]]
        out["member"] = sorted(members, key=lambda m: json.dumps(m, sort_keys=True))
    return out


def _activity_form(activity: Any) -> Any:
    """An Activity as compared: its definition is not part of the statement, and
    ``objectType`` ``Activity`` is the default."""
    if not isinstance(activity, dict):
        return activity
    if activity.get("objectType", "Activity") != "Activity":
        return (
            _agent_form(activity) if activity.get("objectType") in ("Agent", "Group") else activity
        )
    return {k: v for k, v in activity.items() if k not in ("definition", "objectType")}


def _context_form(context: Any) -> Any:
    """contextActivities values as arrays (the LRS returns them so, xAPI-Data.md 2.4.6.2)."""
    if not isinstance(context, dict):
        return context
    out = dict(context)
    for key in ("instructor", "team"):
        if key in out:
            out[key] = _agent_form(out[key])
    activities = out.get("contextActivities")
    if isinstance(activities, dict):
        out["contextActivities"] = {
            kind: [_activity_form(a) for a in (given if isinstance(given, list) else [given])]
            for kind, given in activities.items()
        }
    return out


def _instant_form(value: Any) -> Any:
    """A zoned timestamp as its instant in UTC: the zone and precision are serialization."""
    try:
        at = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return value
    if at is None or at.utcoffset() is None:
        return value
    try:
        return at.astimezone(UTC).isoformat()
    except (OverflowError, ValueError):
        return value


def _canonical(statement: dict[str, Any]) -> bytes:
    """The statement as xAPI compares statements (xAPI-Data.md 2.3.1, Statement Comparison):
    what an LRS may set or re-serialize (its own properties, the timestamp's zone and
    precision, a Verb's display, Activity definitions, contextActivities as arrays, Group
    members' order, attachments, an e-mail domain's case) left out or normalised, so a
    forwarded copy is the same statement and not a 409 its sender resends for ever."""
    body = {k: v for k, v in statement.items() if k not in NOT_COMPARED}
    body["actor"] = _agent_form(body.get("actor"))
    if isinstance(body.get("verb"), dict):
        body["verb"] = {k: v for k, v in body["verb"].items() if k != "display"}
    body["object"] = _activity_form(body.get("object"))
    if "context" in body:
        body["context"] = _context_form(body["context"])
    if "timestamp" in body:
        body["timestamp"] = _instant_form(body["timestamp"])
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def statement_id(statement: dict[str, Any]) -> str:
    """The statement's own id (lower case), or one derived from its content."""
    given = statement.get("id")
    if isinstance(given, str):
        return str(uuid.UUID(given))
    return str(uuid.uuid5(NAMESPACE, _canonical(statement).decode()))


def digest(statement: dict[str, Any]) -> str:
    """What two statements with one id are compared by (the LRS-set properties left out)."""
    return hashlib.sha256(_canonical(statement)).hexdigest()[:32]


def check_batch(data: Any) -> list[tuple[str, dict[str, Any]]]:
    """One statement or an array of them → ``(id, statement)`` in order; :class:`Invalid` for
    the first invalid one or a repeated given id (nothing of the batch may then be recorded)."""
    single = isinstance(data, dict)
    items = [data] if single else data
    if not isinstance(items, list):
        raise Invalid("(body)", "must be a Statement or an array of Statements")
    seen: dict[str, int] = {}
    out: list[tuple[str, dict[str, Any]]] = []
    for n, item in enumerate(items):
        field = "statement" if single else f"statements[{n}]"
        statement = check(item, field)
        sid = statement_id(statement)
        # Only an id the sender gave is its own twice; two id-less statements alike are one
        # statement said twice (recorded once), not a batch to refuse for ever.
        if sid in seen and "id" in statement:
            raise Invalid(f"{field}.id", f"repeats the id of statements[{seen[sid]}]")
        seen.setdefault(sid, n)
        out.append((sid, statement))
    return out
