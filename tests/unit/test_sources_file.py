"""Reading the sources file (gradesync/sources_file.py) as an operator meets it: each problem
once, on the line to edit, in words that say what to write; a file that cannot be read or
parsed said as such; and the checks of the whole file (a name twice, a grade that could not be
fetched, a shared webhook secret) past entries they do not concern."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from gradesync import sources_file
from gradesync.sources_file import MAX_BYTES, SourcesError
from tests.unit.test_sources import WHSEC, write

HOOK = "a-moodle-token-of-16"
ILIAS = {"kind": "ilias", "secret": WHSEC}


def refused(path: Path | str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(SourcesError) as info:
        sources_file.load(str(path), env or {})
    assert str(info.value).splitlines() == info.value.problems  # one line each
    return info.value.problems


def text_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    return path


def test_a_name_given_twice_is_said_once_with_its_line(tmp_path: Path) -> None:
    # The file's only problem: the model's own duplicate check runs too, and is not repeated.
    path = text_file(
        tmp_path,
        f"installations:\n  - kind: ilias\n    secret: {WHSEC}\n"
        "  - kind: ilias\n    secret: an-ilias-token-of-16\n",
    )
    assert refused(path) == [
        f"{path}:4: installations[1]: ilias/default is named twice (instance must be unique "
        "per kind)"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            f"installations:\n  - instance: a\n    secret: {WHSEC}\n",
            ":2: installations[0].kind: kind is required: one of moodle, ilias, anewspring, xapi",
        ),
        (
            f"installations:\n  - kind: ilias\n    secret: {WHSEC}\n    instance: 2024\n",
            ':4: installations[0].instance: must be text: quote it (e.g. instance: "2024"); '
            "YAML reads yes/no, on/off and digits as booleans and numbers",
        ),
        (
            # A value on the line after its key: the key's line is the one to edit.
            f"installations:\n  - kind: ilias\n    secret: {WHSEC}\n    timezone:\n"
            "      Mars/Olympus\n",
            ":4: installations[0].timezone: unknown time zone 'Mars/Olympus' (an IANA name, "
            "e.g. Europe/Amsterdam)",
        ),
        (
            "installations: [\n",
            ":2: not valid YAML: expected the node content, but found '<stream end>'",
        ),
    ],
)
def test_each_problem_is_said_on_its_line_in_words_that_say_what_to_write(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = text_file(tmp_path, text)
    assert refused(path) == [f"{path}{problem}"]


def test_a_character_yaml_does_not_allow_is_said_without_a_line(tmp_path: Path) -> None:
    path = text_file(tmp_path, "installations:\n  - kind: ilias\n    secret: a\x07b\n")
    # PyYAML's ReaderError says its position on a line of its own: folded into the one line.
    assert refused(path) == [
        f"{path}: not valid YAML: unacceptable character #x0007: special characters are not "
        'allowed in "<unicode string>", position 44'
    ]


def test_a_missing_file_is_said_with_why(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    assert refused(path) == [
        f"{path}: cannot be read: FileNotFoundError: [Errno 2] No such file or directory: '{path}'"
    ]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    said: list[list[str]] = []

    def read() -> None:
        try:
            sources_file.load(str(fifo), {})
        except SourcesError as exc:
            said.append(exc.problems)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    waiting = reader.is_alive()
    if waiting:  # release it: opening the other end lets a blocked open return
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join()
    assert not waiting and said == [[f"{fifo}: not a regular file"]]


def test_a_file_of_exactly_the_largest_size_is_read(tmp_path: Path) -> None:
    text = f"installations:\n  - kind: ilias\n    secret: {WHSEC}\n# "
    path = text_file(tmp_path, text + "x" * (MAX_BYTES - len(text) - 1) + "\n")
    assert path.stat().st_size == MAX_BYTES
    assert [i.name for i in sources_file.load(str(path), {}).installations] == ["ilias/default"]
    path.write_text(path.read_text() + "\n")
    assert refused(path) == [f"{path}: larger than 1024 KiB"]


# -- the checks of the whole file look past entries they do not concern -----------------------


def test_a_name_twice_is_found_past_an_entry_that_is_no_mapping() -> None:
    assert sources_file.duplicates({"installations": [ILIAS, "x", ILIAS]}) == [(2, "ilias/default")]


def test_a_grade_that_could_not_be_fetched_is_found_past_another_kind(tmp_path: Path) -> None:
    moodle = {"kind": "moodle", "secret": HOOK}  # grade_policy fetch (the default), no api
    assert refused(write(tmp_path, [ILIAS, moodle])) == [
        f"{tmp_path / 'sources.yaml'}:4: installations[1].grade_policy: fetch (the default) "
        "needs api (url and credential) to fetch the grade moodle's completion event lacks: "
        "add api, or set grade_policy completion_only"
    ]


def test_a_shared_webhook_secret_is_found_past_entries_without_one(tmp_path: Path) -> None:
    lrs = {"kind": "xapi", "instance": "lrs", "basic_auth": {"username": "u", "password": "pw"}}
    staff = {"kind": "moodle", "secret": HOOK, "grade_policy": "completion_only"}
    acme = {**staff, "instance": "acme"}
    entries = ["not a mapping", lrs, staff, acme]
    problems = refused(text_file(tmp_path, yaml.safe_dump({"installations": entries})))
    assert [p.split(": ", 1)[1] for p in problems] == [
        "installations[0]: Input should be a valid dictionary or object to extract fields from",
        "installations[3].secret: is the webhook secret of installations[2] (moodle/default) "
        "too: give each installation its own (a shared one lets either's signature pass on the "
        "other's route)",
    ]


def test_two_empty_secrets_are_two_missing_secrets_not_a_shared_one(tmp_path: Path) -> None:
    entry: dict[str, Any] = {"kind": "ilias", "secret_env": "EMPTY"}
    problems = refused(write(tmp_path, [entry, {**entry, "instance": "b"}]), {"EMPTY": ""})
    assert [p.split(": ", 1)[1] for p in problems] == [
        f"installations[{n}].secret_env: environment variable EMPTY (the webhook secret) is "
        "unset or empty"
        for n in (0, 1)
    ]
