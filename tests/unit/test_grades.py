"""The one rule that turns an LMS score on its range into Coachview's grade text."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradesync.grades import as_decimal, fraction, render, render_scaled

D = Decimal


@pytest.mark.parametrize(
    ("raw", "low", "high", "dutch", "percent"),
    [
        ("80", "0", "100", "8.2", "80.0"),  # Moodle's own test: '80.00' on a 0–100 course
        ("60", "20", "100", "5.5", "50.0"),  # a non-zero minimum counts: (60−20)/80 = 0.5
        ("0", "0", "100", "1.0", "0.0"),
        ("100", "0", "100", "10.0", "100.0"),
        ("55", "0", "100", "6.0", "55.0"),  # 5.95 rounds half up
    ],
)
def test_dutch_and_percent(raw: str, low: str, high: str, dutch: str, percent: str) -> None:
    assert render(D(raw), D(low), D(high), "dutch") == dutch
    assert render(D(raw), D(low), D(high), "percent") == percent


def test_half_up_at_the_boundary() -> None:
    # 1 + 9 × 0.85 = 8.65 exactly: half up gives 8.7 (binary floats would give 8.6).
    assert render(D("17"), D("0"), D("20"), "dutch") == "8.7"
    assert render(D("17"), D("0"), D("20"), "dutch", ",") == "8,7"


def test_percent_rounds_half_up_too() -> None:
    # 49 of 80 points is 61.25 % exactly: half up gives 61.3 (Decimal's default, half even, 61.2).
    assert render(D("49"), D("0"), D("80"), "percent") == "61.3"
    assert render(D("49"), D("0"), D("80"), "percent", ",") == "61,3"


def test_raw_keeps_the_lms_number() -> None:
    assert render(D("80.00000"), D("0"), D("100"), "raw") == "80"
    assert render(D("7.25"), D("0"), D("10"), "raw", ",") == "7,25"


@pytest.mark.parametrize(
    ("raw", "low", "high"),
    [("101", "0", "100"), ("-1", "0", "100"), ("5", "10", "10"), ("5", "10", "0")],
)
def test_outside_or_empty_range_is_no_grade(raw: str, low: str, high: str) -> None:
    assert fraction(D(raw), D(low), D(high)) is None
    assert render(D(raw), D(low), D(high), "dutch") is None


def test_scaled() -> None:
    assert render_scaled(D("0.85"), "dutch") == "8.7"
    assert render_scaled(D("-0.5"), "dutch") == "1.0"  # legal in xAPI: the lowest grade
    assert render_scaled(D("1.5"), "dutch") is None
    assert render_scaled(D("0.85"), "dutch", ",") == "8,7"


@pytest.mark.parametrize(
    ("scaled", "dutch"),
    # xAPI 1.0.3 (adlnet/xAPI-Spec, xAPI-Data.md 2.4.5.1 Score): scaled is a "Decimal number
    # between -1 and 1, inclusive".
    [("-1", "1.0"), ("1", "10.0"), ("-1.01", None), ("-1.5", None), ("1.01", None)],
)
def test_scaled_takes_both_ends_of_its_range_and_nothing_beyond(
    scaled: str, dutch: str | None
) -> None:
    assert render_scaled(D(scaled), "dutch") == dutch


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (80, D(80)),
        ("80.00", D("80.00")),
        (8.5, D("8.5")),
        (" 7 ", D(7)),
        ("Error", None),
        ("-", None),
        (None, None),
        (True, None),
        ("NaN", None),
        ("Infinity", None),
    ],
)
def test_as_decimal(value: object, expected: Decimal | None) -> None:
    assert as_decimal(value) == expected


@given(
    st.decimals(min_value=-1000, max_value=1000, places=2),
    st.decimals(min_value=0, max_value=1000, places=2),
    st.decimals(min_value=0, max_value=1, places=4),
)
def test_dutch_is_always_between_1_and_10(low: Decimal, span: Decimal, where: Decimal) -> None:
    high = low + span
    raw = low + span * where
    text = render(raw, low, high, "dutch")
    if span == 0:
        assert text is None
    else:
        assert text is not None and D(1) <= D(text) <= D(10)
