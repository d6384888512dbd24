"""The canonical completion event (contract v1) and the completion key it belongs to."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

Source = Literal["moodle", "ilias", "anewspring", "xapi"]
SOURCES: tuple[str, ...] = ("moodle", "ilias", "anewspring", "xapi")


def _id_text(value: Any) -> Any:
    # LMSs hand out numeric ids (Moodle, ILIAS); the canonical form is text, so accept both.
    if isinstance(value, bool):
        raise ValueError("must be a string, not a boolean")
    if isinstance(value, int):
        return str(value)
    return value


MAX_GRADE_LENGTH = 32


def _grade_text(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("must be a string or a number, not a boolean")
    if isinstance(value, int | float | Decimal):
        if isinstance(value, float) and value != value:  # NaN
            raise ValueError("must be a finite number")
        return format(Decimal(str(value)).normalize(), "f")
    if isinstance(value, str):
        value = value.strip()
        if len(value) > MAX_GRADE_LENGTH:
            raise ValueError(f"must be at most {MAX_GRADE_LENGTH} characters")
        return value or None
    return value


def _instant(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 timestamp with offset or epoch seconds")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    return value


Identifier = Annotated[
    str,
    BeforeValidator(_id_text),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
]


class CompletionKey(BaseModel):
    """One ledger record per key: a learner's completion of one course in one LMS installation."""

    model_config = ConfigDict(frozen=True)

    source: Source
    source_instance: str
    person_id: str
    course_id: str

    def text(self) -> str:
        return "|".join((self.source, self.source_instance, self.person_id, self.course_id))

    @property
    def id(self) -> str:
        """Opaque, stable id: safe to show in Flower, logs and URLs (no personal data)."""
        return hashlib.sha256(self.text().encode()).hexdigest()[:20]


class CompletionEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Source
    source_instance: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)
    ] = "default"
    event_id: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
        | None
    ) = None
    person_id: Identifier
    course_id: Identifier
    grade: Annotated[str | None, BeforeValidator(_grade_text)] = None
    completed_at: Annotated[datetime, BeforeValidator(_instant)] = Field(
        description="ISO 8601 with offset, or epoch seconds"
    )

    @field_validator("completed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a UTC offset (naive timestamps are ambiguous)")
        return value

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

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``{field, message}`` pairs a person can act on."""
    out = []
    for err in exc.errors(include_url=False):
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
