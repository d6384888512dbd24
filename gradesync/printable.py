"""Outside text made safe to store and to show on a terminal.

A Coachview error page or an LMS id may carry ESC sequences (colours, OSC-8 links, a cleared
screen) or other control characters: stored in an excerpt and printed by ``gradesync show``
they would act on the operator's terminal. Rich markup is a separate matter: the CLI's consoles
do not parse it (gradesync/cli/common.py), so ``[/]`` or ``[link=…]`` in an id is shown as typed.
"""

from __future__ import annotations

import re
import unicodedata

# Whole terminal sequences, not only their ESC: an OSC (ESC ] … BEL or ESC \, e.g. an OSC-8
# link's address) or a CSI (ESC [ … final byte, e.g. a colour). Dropping the ESC alone would
# leave "]8;;https://…" in the text, as if it were part of what the sender wrote.
_SEQUENCE = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-?]*[ -/]*[@-~]|\x1b.?")


def printable(text: str) -> str:
    """``text`` without terminal escape sequences and without control, format or other
    invisible characters (Unicode category C); line breaks and tabs become spaces."""
    return "".join(
        " " if ch in "\t\n\r" else ch
        for ch in _SEQUENCE.sub("", text)
        if ch in "\t\n\r" or unicodedata.category(ch)[0] != "C"
    )
