"""ILIAS learning progress read as completions: which course, which rows, which instant.

Rows are ``<LPChange UserId ObjId RefIds Timestamp LPStatus/>`` (ILIAS
``Services/Tracking/classes/class.ilLPXmlWriter.php``, sample
tests/fixtures/ilias-getLearningProgressChanges.xml); the push is the ``updateStatus`` event's
parameters (tests/fixtures/ilias-updateStatus.json).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gradesync.lms.ilias import LPChange
from gradesync.parsed import Completion, Ignored
from gradesync.settings import get_settings
from gradesync.sources import IliasSource
from producers import ilias

FIXTURES = Path(__file__).parent.parent / "fixtures"
INSTALLATION = get_settings().sources.typed(IliasSource)  # Europe/Amsterdam, courses by obj_id


def row(**attributes: str) -> str:
    values = {"UserId": "57", "ObjId": "312", "RefIds": "74", "LPStatus": "2"}
    values |= {"Timestamp": "2026-11-20 10:22:11", **attributes}
    text = " ".join(f'{name}="{value}"' for name, value in values.items())
    return f"<LPData><LPChange {text}/></LPData>"


def completion(data: Any, inst: IliasSource = INSTALLATION) -> Completion:
    (done,) = ilias.parse(data, inst)
    assert isinstance(done, Completion)
    return done


@pytest.mark.parametrize(
    ("ref_ids", "course"),
    [
        ("74", "74"),
        ("74,75", "74"),  # a course linked in two places: its first reference
        (" 74 , 75", "74"),
        ("", "312"),  # no reference given: the object id rather than nothing
    ],
)
def test_courses_by_ref_id_take_the_first_reference(ref_ids: str, course: str) -> None:
    by_ref = INSTALLATION.model_copy(update={"course_field": "ref_id"})
    assert completion(row(RefIds=ref_ids), by_ref).event.course_id == course
    assert completion(row(RefIds=ref_ids)).event.course_id == "312"  # by obj_id: never a ref


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("1", "ILIAS LPStatus 1 (in progress)"),
        ("7", "ILIAS LPStatus 7 (unknown)"),  # a status a later ILIAS may add
        ("x", "ILIAS LPStatus 'x'"),
        (None, "ILIAS LPStatus ''"),
    ],
)
def test_rows_that_are_not_completions_are_ignored_naming_their_status(
    status: str | None, reason: str
) -> None:
    lp_data = row(LPStatus=status) if status else row().replace(' LPStatus="2"', "")
    (ignored,) = ilias.parse(lp_data, INSTALLATION)
    assert isinstance(ignored, Ignored) and ignored.reason == reason


def test_times_are_the_servers_local_time_unless_they_carry_an_offset() -> None:
    assert completion(row()).event.completed_at.isoformat() == "2026-11-20T10:22:11+01:00"
    utc = completion(row(Timestamp="2026-11-20T09:22:11+00:00")).event.completed_at
    assert utc.isoformat() == "2026-11-20T09:22:11+00:00"


def test_a_pushed_epoch_time_is_shown_in_the_servers_zone() -> None:
    push = json.loads((FIXTURES / "ilias-updateStatus.json").read_text())
    push["timestamp"] = int(datetime(2026, 11, 20, 9, 22, 11, tzinfo=UTC).timestamp())
    assert completion(push).event.completed_at.isoformat() == "2026-11-20T10:22:11+01:00"


@pytest.mark.parametrize("value", [True, [2026, 11, 20]])
def test_a_pushed_time_of_another_type_names_the_forms_it_may_take(value: object) -> None:
    push = json.loads((FIXTURES / "ilias-updateStatus.json").read_text())
    push["timestamp"] = value
    with pytest.raises(ValidationError) as info:
        ilias.parse(push, INSTALLATION)
    (error,) = info.value.errors()
    assert error["loc"] == ("timestamp",)
    assert error["msg"] == "Value error, must be 'YYYY-MM-DD hh:mm:ss', ISO 8601 or epoch seconds"


@pytest.mark.parametrize("context", [None, {"zone": "Europe/Amsterdam"}])
def test_ilias_times_without_the_installations_zone_are_a_programming_error(
    context: dict[str, str] | None,
) -> None:
    attributes = {"UserId": "57", "ObjId": "312", "Timestamp": "2026-11-20 10:22:11"}
    with pytest.raises(TypeError) as info:
        LPChange.model_validate({**attributes, "LPStatus": "2"}, context=context)
    assert str(info.value) == (
        "validate ILIAS data with context=gradesync.lms.ilias.context(installation)"
    )


def test_another_document_than_lp_data_is_named() -> None:
    with pytest.raises(ValueError, match=r"^expected <LPData>, got <NotLPData>$"):
        ilias.parse("<NotLPData/>", INSTALLATION)
