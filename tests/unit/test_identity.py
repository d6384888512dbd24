"""Identity as Coachview provisions it (issue 23.2): Moodle's ID number by default, read with a
web service that may hide it, and no PersoonId matching for an installation naming learners by
Moodle's internal id unless COACHVIEW_PERSON_MATCH says so."""

from __future__ import annotations

from typing import Any

import pytest
import respx

from gradesync.lms.moodle import MoodleError, MoodleWS
from gradesync.settings import ConfigurationError, Settings, persoonid_matching_off

MOODLE = "https://moodle.test"


def settings(**env: Any) -> Settings:
    base = {"MOODLE_URL": MOODLE, "MOODLE_TOKEN": "t", "MOODLE_GRADE_POLICY": "fetch"}
    return Settings(**(base | env))


def test_a_moodle_with_a_web_service_names_learners_by_their_id_number() -> None:
    s = settings()
    assert s.sources.find("moodle").person_key == "idnumber"  # type: ignore[union-attr]
    assert s.person_match_for("moodle", "default") == ("externId", "id")
    assert persoonid_matching_off(s) == []


def test_matching_moodles_internal_id_leaves_persoonid_out_unless_said() -> None:
    internal = settings(MOODLE_PERSON_FIELD="id")
    assert internal.person_match_for("moodle", "default") == ("externId",)
    (note,) = persoonid_matching_off(internal)
    assert "moodle/default" in note and "COACHVIEW_PERSON_MATCH" in note
    # no web service: nothing else can be read, so Moodle's id, without PersoonId either
    bare = Settings(MOODLE_URL="", MOODLE_TOKEN="", MOODLE_GRADE_POLICY="completion_only")
    assert bare.person_match_for("moodle", "default") == ("externId",)
    said = settings(MOODLE_PERSON_FIELD="id", COACHVIEW_PERSON_MATCH="externId,id")
    assert said.person_match_for("moodle", "default") == ("externId", "id")
    assert persoonid_matching_off(said) == []
    # other kinds are as configured
    assert internal.person_match_for("anewspring", "default") == ("externId", "id")


def test_an_id_number_without_a_web_service_cannot_be_read() -> None:
    s = Settings(
        MOODLE_URL="",
        MOODLE_TOKEN="",
        MOODLE_GRADE_POLICY="completion_only",
        MOODLE_PERSON_FIELD="idnumber",
    )
    with pytest.raises(ConfigurationError) as info:
        s.sources  # noqa: B018
    assert "MOODLE_PERSON_FIELD" in str(info.value)


@respx.mock
def test_a_hidden_id_number_is_said_and_a_read_one_is_cached() -> None:
    route = respx.post(f"{MOODLE}/webservice/rest/server.php")
    route.respond(200, json=[{"id": 57, "fullname": "Anna"}])  # no idnumber: not visible
    ws = MoodleWS(MOODLE, "t")
    with pytest.raises(MoodleError) as info:
        ws.user_field("57", "idnumber")
    assert info.value.code == "moodle_field_not_readable"
    assert "moodle/user:viewalldetails" in info.value.message
    # Moodle leaves an empty ID number out too (user/lib.php user_get_user_details)
    assert "the learner has none in Moodle" in info.value.message
    route.respond(200, json=[{"id": 58, "idnumber": "CV-58"}])
    assert ws.user_field("58", "idnumber") == "CV-58"
    assert ws.user_field("58", "idnumber") == "CV-58"
    assert route.call_count == 2  # the second read of 58 came from the cache
    route.respond(200, json=[{"id": 59, "idnumber": ""}])
    assert ws.user_field("59", "idnumber") is None  # readable, and not set
    route.respond(200, json=[])
    assert ws.user_field("60", "idnumber") is None  # no such user
