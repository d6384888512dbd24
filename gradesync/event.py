"""The canonical completion event (contract v2) and the completion key it belongs to.

Every value is normalised and checked here, once, at the edge: the ledger stores only what this
model accepts, and loads every record through the same model, so nothing is stored that cannot be
read back.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

Source = Literal["moodle", "ilias", "anewspring", "xapi"]

MAX_ID_LENGTH = 255
MAX_GRADE_LENGTH = 32
# No LMS scale reaches this (Moodle's maximum grade is 100 by default); "1e999999" would be a
# finite Decimal of eight characters, and no grade.
MAX_GRADE_VALUE = Decimal(1_000_000)
# Completions before this are not e-learning results anyone still needs in Coachview; after
# "now + a day" a clock is wrong. Both bounds keep dates that overflow on time-zone
# conversion (year 1, year 9999) out of the ledger.
EARLIEST_COMPLETION = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW_ALLOWED = timedelta(days=1)


def _text_value(value: Any, what: str) -> str:
    if isinstance(value, bool):
        raise ValueError(f"must be {what}, not a boolean")
    # LMSs hand out numeric ids (Moodle, ILIAS); the canonical form is text, so accept both.
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"must be {what}")
    return value


def clean_text(value: str, max_length: int) -> str:
    """NFC, no surrounding Unicode whitespace, no control or invisible characters, not blank.

    One rule for every id and mark, so the same id typed two ways is one completion key, and a
    value that looks blank (``"\\u0085"``, ``"\\u200b"``) is refused instead of stored.
    """
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise ValueError("must not be blank")
    if any(unicodedata.category(ch)[0] == "C" for ch in text):
        raise ValueError("must not contain control or invisible characters")
    if len(text) > max_length:
        raise ValueError(f"must be at most {max_length} characters")
    return text


def check_identifier(value: Any) -> str:
    return clean_text(_text_value(value, "a string or an integer"), MAX_ID_LENGTH)


Identifier = Annotated[str, BeforeValidator(check_identifier)]


def check_grade(value: Any) -> str | None:
    """A finite, non-negative number in the source's scale, or a non-numeric mark (text such as
    ``"voldoende"`` or ``"8,5"``). The same checks apply to numbers and to numeric text, on the
    final text, so what is accepted on write is accepted on read."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("must be a string or a number, not a boolean")
    if isinstance(value, float | int | Decimal):
        text = _number_text(value)
    elif isinstance(value, str):
        if not value.strip():
            return None
        text = clean_text(value, MAX_GRADE_LENGTH)
    else:
        raise ValueError("must be a string or a number")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text  # a non-numeric mark: Coachview's result is text
    if not number.is_finite():
        raise ValueError("must be a finite number")
    if number.is_signed():  # "-0" too: Coachview would show the sign
        raise ValueError("must not be negative")
    if number > MAX_GRADE_VALUE:
        raise ValueError(f"must be at most {MAX_GRADE_VALUE:,}")
    if len(text) > MAX_GRADE_LENGTH:
        raise ValueError(f"must be at most {MAX_GRADE_LENGTH} characters")
    return text


def _number_text(value: float | int | Decimal) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if isinstance(value, int) and abs(value) >= 10**MAX_GRADE_LENGTH:
        raise ValueError(f"must be at most {MAX_GRADE_LENGTH} characters")
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError("must be a finite number")
    # Normalised but never in exponent form (1E+1 → "10"): Coachview shows it as typed.
    return format(number.normalize(), "f")


Grade = Annotated[str | None, BeforeValidator(check_grade)]


def instant_from_epoch(value: Any, tz: ZoneInfo | None = None) -> datetime:
    """Epoch seconds as an aware datetime; out-of-range numbers are a ``ValueError`` (Python
    raises ``OverflowError``/``OSError`` for them, which validation would not catch)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be epoch seconds")
    if not math.isfinite(value):
        raise ValueError("must be a finite number of epoch seconds")
    try:
        return datetime.fromtimestamp(value, tz or UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError("epoch seconds out of range") from exc


def _instant(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 timestamp with offset or epoch seconds")
    if isinstance(value, int | float):
        return instant_from_epoch(value)
    return value


def plausible_instant(value: datetime) -> datetime:
    """Aware, and between 2000-01-01 and a day from now (in UTC)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a UTC offset (naive timestamps are ambiguous)")
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError("is out of range") from exc
    latest = datetime.now(UTC) + CLOCK_SKEW_ALLOWED
    if not EARLIEST_COMPLETION <= utc <= latest:
        raise ValueError(
            f"must lie between {EARLIEST_COMPLETION.date().isoformat()} and a day from now"
        )
    return value


Instant = Annotated[datetime, BeforeValidator(_instant), AfterValidator(plausible_instant)]


def _key_part(part: str) -> str:
    # "%" first, so the encoding is reversible; a part without "|" or "%" is unchanged, which
    # keeps every existing record's id (sha256 of this text) as it was.
    return part.replace("%", "%25").replace("|", "%7C")


def _unkey_part(part: str) -> str:
    return part.replace("%7C", "|").replace("%7c", "|").replace("%25", "%")


class CompletionKey(BaseModel):
    """One ledger record per key: a learner's completion of one course in one LMS installation."""

    model_config = ConfigDict(frozen=True)

    source: Source
    source_instance: Identifier
    person_id: Identifier
    course_id: Identifier

    def text(self) -> str:
        """``source|instance|person|course``, each part with ``%`` and ``|`` percent-encoded:
        two different keys never share a text (nor, therefore, a record)."""
        parts = (self.source, self.source_instance, self.person_id, self.course_id)
        return "|".join(_key_part(p) for p in parts)

    @classmethod
    def from_text(cls, text: str) -> CompletionKey:
        parts = text.split("|")
        if len(parts) != 4:
            raise ValueError("a completion key has four parts: source|instance|person|course")
        source, instance, person, course = (_unkey_part(p) for p in parts)
        return cls.model_validate(
            {
                "source": source,
                "source_instance": instance,
                "person_id": person,
                "course_id": course,
            }
        )

    @property
    def id(self) -> str:
        """Opaque, stable id: safe to show in Flower, logs and URLs (no personal data)."""
        return hashlib.sha256(self.text().encode()).hexdigest()[:20]


class CompletionEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Source
    source_instance: Identifier = "default"
    event_id: Identifier | None = None
    person_id: Identifier
    course_id: Identifier
    grade: Grade = None
    completed_at: Instant = Field(description="ISO 8601 with offset, or epoch seconds")

    @model_validator(mode="after")
    def _derive_event_id(self) -> CompletionEvent:
        if self.event_id is None:
            object.__setattr__(self, "event_id", self.derived_event_id())
        return self

    def derived_event_id(self) -> str:
        material = "\x1f".join(
            (
                self.source,
                self.source_instance,
                self.person_id,
                self.course_id,
                self.grade or "",
                self.completed_at.astimezone(UTC).isoformat(),
            )
        )
        return "derived-" + hashlib.sha256(material.encode()).hexdigest()[:24]

    @property
    def key(self) -> CompletionKey:
        return CompletionKey(
            source=self.source,
            source_instance=self.source_instance,
            person_id=self.person_id,
            course_id=self.course_id,
        )

    @property
    def id(self) -> str:
        assert self.event_id is not None  # set by the model validator
        return self.event_id

    def approval_date(self, tz: ZoneInfo) -> date:
        """Coachview's approval date: the LMS completion instant's calendar date in ``tz``."""
        return self.completed_at.astimezone(tz).date()


def body_hash(event: CompletionEvent) -> str:
    """A short digest of the whole event: the same event id with another body is a conflict."""
    return hashlib.sha256(event.model_dump_json().encode()).hexdigest()[:16]


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``{field, message}`` pairs a person can act on."""
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(body)"
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "field required"
        else:
            message = err["msg"].removeprefix("Value error, ")
        out.append({"field": field, "message": message})
    return out


def describe(exc: ValidationError) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc))


def parse_event(data: Any) -> CompletionEvent:
    """Validate one canonical event; a non-object is reported as such, not as a crash."""
    if not isinstance(data, dict):
        raise ValueError(f"an event must be a JSON object, got {type(data).__name__}")
    return CompletionEvent.model_validate(data)
