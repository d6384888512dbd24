"""A score on the LMS's own range, as the grade Coachview stores.

Moodle (``graderaw`` between ``grademin`` and ``grademax``), aNewSpring and xAPI
(``score.raw`` between ``min`` and ``max``, or ``scaled``) all report a number on a range; the
display text an LMS shows beside it is never parsed here. One pure rule for all of them, so a
Moodle 60 on 20–100 and an xAPI raw 60 on 20–100 become the same Coachview result.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

# ``formatted`` (the LMS's display text) is chosen per installation too, but it is text the LMS
# gives, not a number this module renders: see each adapter.
GradeFormat = Literal["dutch", "percent", "raw", "formatted"]
NumericFormat = Literal["dutch", "percent", "raw"]
Separator = Literal[".", ","]

_TENTH = Decimal("0.1")


def as_decimal(value: object) -> Decimal | None:
    """A finite number from JSON (int, float or numeric text), else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def fraction(raw: Decimal, low: Decimal, high: Decimal) -> Decimal | None:
    """Where ``raw`` lies on ``low..high`` (0..1); None for an empty range or a raw outside it.

    Outside the range is not clamped: a score above the maximum means the range we were given
    is not the one the LMS scored on, and writing 10.0 for it would be a guess locked in
    Coachview for good.
    """
    if high <= low or not low <= raw <= high:
        return None
    return (raw - low) / (high - low)


def render(
    raw: Decimal, low: Decimal, high: Decimal, style: NumericFormat, separator: Separator = "."
) -> str | None:
    """The grade text for Coachview, or None when the numbers do not make a grade.

    - ``dutch``: 1 + 9 × (raw − min) / (max − min), one decimal, half up (the Dutch 1–10 scale);
    - ``percent``: 100 × (raw − min) / (max − min), one decimal, half up;
    - ``raw``: the raw score as the LMS gave it, trailing zeros dropped.
    """
    part = fraction(raw, low, high)
    if part is None:
        return None
    if style == "dutch":
        text = str((1 + 9 * part).quantize(_TENTH, rounding=ROUND_HALF_UP))
    elif style == "percent":
        text = str((100 * part).quantize(_TENTH, rounding=ROUND_HALF_UP))
    else:
        text = format(raw.normalize(), "f")
    return text.replace(".", separator)


def render_scaled(scaled: Decimal, style: NumericFormat, separator: Separator = ".") -> str | None:
    """xAPI's ``score.scaled`` (−1..1): a negative score is a legal score of 0 on the 0..1 range."""
    if not Decimal(-1) <= scaled <= Decimal(1):
        return None
    return render(max(scaled, Decimal(0)), Decimal(0), Decimal(1), style, separator)
