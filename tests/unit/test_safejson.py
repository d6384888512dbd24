"""JSON from strangers: each limit of ``gradesync/safejson.py`` at its exact boundary."""

from __future__ import annotations

import pytest

from gradesync.safejson import MAX_DEPTH, MAX_NUMBER_CHARS, JsonRejected, depth, loads


def rejected(data: str | bytes) -> str:
    with pytest.raises(JsonRejected) as info:
        loads(data)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "deepest"),
    [
        ("7", 0),
        ('"[{"', 0),
        ("[]", 1),
        ("[][][]", 1),
        ("[[], [[]], []]", 3),
        ('{"a": [{"b": {}}]}', 4),
        ('["]", "\\"[", "\\\\", [1]]', 2),
        ('["\\\n[", 1]', 1),  # a backslash before a newline still escapes inside a string
    ],
)
def test_depth_counts_only_brackets_outside_strings(text: str, deepest: int) -> None:
    assert depth(text) == deepest


def test_the_depth_limit_is_thirty_two_levels_exactly() -> None:
    assert MAX_DEPTH == 32
    assert loads("[" * 32 + "]" * 32) == eval("[" * 32 + "]" * 32)
    assert rejected("[" * 33 + "]" * 33) == "nested deeper than 32 levels"
    assert rejected('{"a":' * 33 + "1" + "}" * 33) == "nested deeper than 32 levels"


def test_the_number_limit_is_sixty_four_characters_exactly() -> None:
    assert MAX_NUMBER_CHARS == 64
    assert loads("9" * 64) == int("9" * 64)
    assert loads("-" + "9" * 63) == -int("9" * 63)
    assert loads("0." + "5" * 62) == float("0." + "5" * 62)
    for number in ("9" * 65, "-" + "9" * 64, "0." + "5" * 63, "1" * 61 + "e+10"):
        assert rejected(f"[{number}]") == "a number is longer than 64 characters"


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" * 20 + ".0e300"])
def test_floats_that_overflow_are_refused(number: str) -> None:
    assert rejected(number) == "a number is too large"


def test_floats_that_fit_are_kept() -> None:
    assert loads("1.5e308") == 1.5e308
    assert loads("-2.5") == -2.5


@pytest.mark.parametrize("name", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_are_refused_by_name(name: str) -> None:
    assert rejected(f'{{"grade": {name}}}') == f"{name} is not JSON"


def test_bytes_are_utf8_and_the_bad_byte_is_named() -> None:
    assert loads('{"naam": "José"}'.encode()) == {"naam": "José"}
    assert rejected(b'{"naam": "Jos\xe9"}') == "not UTF-8 (byte 13)"


@pytest.mark.parametrize("text", ["{nope", "", "[1,]", '{"a" 1}'])
def test_malformed_json_says_where(text: str) -> None:
    message = rejected(text)
    assert message.startswith("Expecting ") and "at line 1 column" in message


def test_a_rejection_is_a_value_error() -> None:
    assert issubclass(JsonRejected, ValueError)
