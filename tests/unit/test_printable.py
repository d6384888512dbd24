"""Outside text shown on a terminal: whole escape sequences go, the sender's words stay."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradesync.printable import printable

ESC = "\x1b"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # An OSC-8 link (ST-terminated) and a colour, as a Coachview error page might carry them.
        (
            f"[/] {ESC}]8;;https://evil.example/{ESC}\\click{ESC}]8;;{ESC}\\ {ESC}[31mred",
            "[/] click red",
        ),
        (f"{ESC}]0;window title\x07after", "after"),  # an OSC ended by BEL
        (f"{ESC}[2J{ESC}[1;1Hcleared", "cleared"),  # CSI: clear screen, move the cursor
        ("line\nbreak\ttab\rreturn", "line break tab return"),
        ("zero\u200bwidth\u202eright-to-left", "zerowidthright-to-left"),
        ("[red]x and Chloë 7,5", "[red]x and Chloë 7,5"),  # markup and letters are the sender's
    ],
)
def test_escape_sequences_and_invisible_characters_go(text: str, shown: str) -> None:
    assert printable(text) == shown


@given(st.text())
def test_nothing_that_acts_on_a_terminal_survives(text: str) -> None:
    out = printable(text)
    assert ESC not in out and "\x07" not in out and "\x9b" not in out
    assert printable(out) == out
