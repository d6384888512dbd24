"""A record's history and outcome as an administrator reads them: one sentence per entry in
the page's language, and the fields written to Coachview as a small table (field, before →
after). Pure: the ledger's entries and a translator in, text out; never a Python repr."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

Translate = Callable[..., str]
# The write steps whose history entries carry the fields written (old and new).
WRITE_STEPS = ("participation", "request_component")
# Steps that say only "done" (older records' one-write-per-field chain included).
PLAIN_STEPS = ("person", "course", "resolved", "result_link")


@dataclass(frozen=True)
class Change:
    field: str
    old: str
    new: str


@dataclass(frozen=True)
class Line:
    at: str
    text: str
    changes: list[Change] = field(default_factory=list)
    # The system's own words (an error's message), shown small: not translated.
    technical: str = ""


def local(value: object, tz: ZoneInfo) -> str:
    """A moment in ``tz`` to the minute, with its zone's abbreviation (CET); a date as it is;
    anything else as text."""
    text = value
    if isinstance(value, str):
        try:
            parsed: date = (
                datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
            )
        except ValueError:
            return value
        value = parsed
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        try:
            return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        except OverflowError:  # text that only looks like a moment (0001-01-01T00:35:18+14:00)
            return str(text)
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def shown(value: object, t: Translate, tz: ZoneInfo) -> str:
    """A field's value: empty, yes/no, a moment in local time, or the value itself."""
    if value is None or value == "":
        return t("empty")
    if isinstance(value, bool):
        return t("yes") if value else t("no")
    return local(value, tz)


def changes(writes: object, t: Translate, tz: ZoneInfo) -> list[Change]:
    if not isinstance(writes, list):
        return []
    return [
        Change(
            field=_label("f_", w.get("field"), t),
            old=shown(w.get("old"), t, tz),
            new=shown(w.get("new"), t, tz),
        )
        for w in writes
        if isinstance(w, Mapping)
    ]


def error_text(error: object, t: Translate) -> tuple[str, str]:
    """An error as (what it means, in the page's language; the system's message)."""
    if not isinstance(error, Mapping):
        return str(error or ""), ""
    code, message = str(error.get("code", "")), str(error.get("message", ""))
    title = t(code)
    if title == code:  # a code without a label yet
        title = t("error_code", code=code)
    return title, message


def note_text(note: object, t: Translate) -> str:
    """An outcome note (``result_kept_existing``, ``later_event_ignored``) as a sentence."""
    if not isinstance(note, Mapping):
        return ""
    key = f"note_{note.get('code')}"
    values = {k: v if v is not None else t("empty") for k, v in note.items() if k != "code"}
    text = t(key, **values) if values else t(key)
    return "" if text == key else text


def _label(prefix: str, name: object, t: Translate) -> str:
    """A field's or step's label; a name without one (a new field) is shown as it is."""
    key = f"{prefix}{name}"
    label = t(key)
    return str(name) if label == key else label


def tell(entry: Mapping[str, Any], t: Translate, tz: ZoneInfo) -> Line:
    """One history entry as a sentence (and its table of written fields, if any)."""
    what = str(entry.get("what", ""))
    at = local(entry.get("at"), tz)
    error, technical = error_text(entry.get("error"), t)
    note = note_text(entry.get("note"), t)

    def line(text: str, rows: list[Change] | None = None, tech: str = technical) -> Line:
        return Line(at, " ".join(p for p in (text, note) if p), rows or [], tech)

    if what in WRITE_STEPS:
        rows = changes(entry.get("writes"), t, tz)
        step = _label("s_", what, t)
        return line(t("h_written", step=step) if rows else t("h_step", step=step), rows)
    if what in ("would_write", "would_skip"):
        rows = changes(entry.get("writes"), t, tz)
        return line(t(f"h_{what}", step=_label("s_", entry.get("step"), t)), rows)
    if what == "lms":
        moved = entry.get("completed_at")
        if isinstance(moved, Mapping):
            at_lms, said = local(moved.get("at"), tz), local(moved.get("event"), tz)
            return line(t("h_lms") + " " + t("h_lms_time", at=at_lms, event=said))
        return line(t("h_lms"))
    gave_up = entry.get("error")
    if (
        what == "given_up"
        and isinstance(gave_up, Mapping)
        and gave_up.get("code") == "operator_gave_up"
    ):
        # The message is the administrator's own reason: shown as it is, in full.
        return line(t("h_given_up_by", by=entry.get("by") or "?", reason=technical), tech="")
    values = {
        "error": error,
        "next_attempt": local(entry.get("next_attempt"), tz),
        "until": local(entry.get("until"), tz),
        "approval_date": local(entry.get("approval_date"), tz),
        "by": entry.get("by") or "?",
        "attempt": entry.get("attempt", ""),
        "retry": entry.get("retry", ""),
        "event_id": entry.get("event_id", ""),
        "grade": entry.get("grade", ""),
        "kept": entry.get("kept", ""),
        "new": entry.get("new", ""),
    }
    if what in PLAIN_STEPS or f"h_{what}" != t(f"h_{what}"):
        return line(t(f"h_{what}", **values))
    return line(t("h_step", step=what))


def written(history: Iterable[Mapping[str, Any]], t: Translate, tz: ZoneInfo) -> list[Line]:
    """What the delivery wrote to Coachview: the write steps of the last run, in order."""
    done: dict[str, Line] = {}
    for entry in history:
        if entry.get("what") == "started":
            done = {}  # an earlier attempt's writes were written again, or found done
        elif entry.get("what") in (*WRITE_STEPS, "result_link"):
            done[str(entry["what"])] = tell(entry, t, tz)
    return list(done.values())
