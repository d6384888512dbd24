"""The console in plain words: every message in English and Dutch, every error code and history
entry with a sentence of its own, and no Python repr in what a page shows."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from console import story
from console.i18n import LABELS, translator
from gradesync.record import STATES

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "console" / "templates"
TZ = ZoneInfo("Europe/Amsterdam")
REPR = ("{'", "[{", "None", "True", "False")


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(LABELS))
def test_every_message_has_english_and_dutch_with_the_same_placeholders(key: str) -> None:
    english, dutch = LABELS[key]
    assert english.strip() and dutch.strip(), key
    assert placeholders(english) == placeholders(dutch), key


def test_every_key_a_template_names_has_both_languages() -> None:
    used = {
        key
        for page in TEMPLATES.glob("*.html")
        for key in re.findall(r"""\bt\(\s*["']([a-z_]+)["']\s*[,)]""", page.read_text())
    }
    assert "budget_figure" in used
    assert not used - LABELS.keys()


def test_every_error_code_state_and_history_entry_has_words() -> None:
    source = "\n".join(
        p.read_text() for d in ("gradesync", "workers") for p in (ROOT / d).rglob("*.py")
    )
    codes = set(re.findall(r"""code(?:=|: str = |\s*=\s*)["']([a-z_]+)["']""", source))
    codes |= set(re.findall(r"""Unresolved\(\s*["']([a-z_]+)["']""", source))
    assert {"unknown_person", "rejected", "stalled", "grade_unavailable"} <= codes
    assert not codes - LABELS.keys()
    assert not set(STATES) - LABELS.keys()
    entries = set(re.findall(r"""hist\(now, ["']([a-z_]+)["']""", source))
    entries |= {"delivered", "failed", "given_up", "replaced", "merged", "restarted"}
    assert "operator_retry" in entries
    assert not {f"h_{e}" for e in entries} - LABELS.keys()


HISTORY: list[dict[str, Any]] = [
    {"at": "2026-11-20T13:03:00+00:00", "what": "received"},
    {"at": "2026-11-20T13:03:01+00:00", "what": "started", "attempt": 1},
    {
        "at": "2026-11-20T13:03:02+00:00",
        "what": "unresolved",
        "error": {"code": "unknown_person", "message": "no Coachview person has externId 4242"},
        "next_attempt": "2026-11-21T02:00:00+00:00",
    },
    {"at": "2026-11-21T08:00:00+00:00", "what": "operator_retry", "by": "anna", "was": None},
    {"at": "2026-11-21T08:00:01+00:00", "what": "started", "attempt": 2},
    {
        "at": "2026-11-21T08:00:02+00:00",
        "what": "lms",
        "note": None,
        "completed_at": {
            "source": "moodle",
            "at": "2026-11-20T12:59:00+00:00",
            "event": "2026-11-20T13:03:00+00:00",
        },
    },
    {
        "at": "2026-11-21T08:00:03+00:00",
        "what": "participation",
        "writes": [
            {"field": "result", "old": None, "new": "7,8"},
            {"field": "attendance", "old": False, "new": True},
        ],
        "note": {"code": "result_kept_existing", "existing": "6,0", "new": "7,8"},
    },
    {
        "at": "2026-11-21T08:00:04+00:00",
        "what": "request_component",
        "writes": [{"field": "approval_date", "old": None, "new": "2026-11-20"}],
    },
    {"at": "2026-11-21T08:00:05+00:00", "what": "delivered"},
    {
        "at": "2026-11-22T08:00:05+00:00",
        "what": "given_up",
        "error": {"code": "operator_gave_up", "message": "left the company"},
        "by": "bram",
    },
    {"at": "2026-11-22T08:00:06+00:00", "what": "some_future_entry", "x": {"y": None}},
]


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_history_reads_as_sentences_and_tables_without_python(lang: str) -> None:
    t = translator(lang)
    lines = [story.tell(entry, t, TZ) for entry in HISTORY]
    shown = " ".join(
        [line.text + line.technical + line.at for line in lines]
        + [c.field + c.old + c.new for line in lines for c in line.changes]
    )
    for mark in REPR:
        assert mark not in shown, (mark, shown)
    assert "CET" in lines[0].at  # times carry their zone
    written = story.written(HISTORY, t, TZ)
    assert [[(c.old, c.new) for c in line.changes] for line in written] == [
        [(t("empty"), "7,8"), (t("no"), t("yes"))],
        [(t("empty"), "2026-11-20")],
    ]
    assert "6,0" in lines[6].text  # the kept result, said in words
    assert "anna" in lines[3].text and "left the company" in lines[9].text
    if lang == "nl":
        assert "Coachview kan het nog niet plaatsen: Onbekende persoon" in lines[2].text
        assert "Opgegeven door bram" in lines[9].text
