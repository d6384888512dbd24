"""A Moodle answer gradesync cannot read is a typed error naming what is wrong, never a copy of
the answer: it holds the learner's data, and the error lands in the ledger's ``last_error``."""

from __future__ import annotations

import pytest
import respx

from gradesync.lms.moodle import MoodleError, MoodleWS

MOODLE = "https://moodle.test"


@respx.mock
def test_an_unreadable_completion_status_keeps_no_excerpt_of_the_answer() -> None:
    status = {"completed": True, "learner": "Anna de Vries", "email": "anna@example.nl"}
    respx.post(f"{MOODLE}/webservice/rest/server.php").respond(
        200, json={"completionstatus": status, "warnings": [{"item": "user 4242"}]}
    )
    with pytest.raises(MoodleError) as info:
        MoodleWS(MOODLE, "t").completion_status("12", "4242")
    message = info.value.message
    assert info.value.code == "moodle_unexpected_response"
    assert "'aggregation'" in message  # what is wrong
    for personal in ("Anna", "anna@", "4242"):
        assert personal not in message
