"""A hostile LMS id over real processes (simulator, worker, Redis): ``nobody,EXT-0093`` once
matched learner EXT-0093 through Coachview's any-of syntax, and that learner got the grade."""

from __future__ import annotations

from gradesync.metrics import FAILED_KEY
from tests.integration.conftest import Stack, canonical


def test_an_id_with_filter_syntax_ends_failed_and_nobody_is_written(clean: Stack) -> None:
    clean.seed()  # EXT-0093 (Chloë) is enrolled on the course with LMS id 312
    rid = clean.enqueue(canonical(person_id="nobody,EXT-0093", course_id="312", event_id="inj"))
    record = clean.settle(rid)
    assert record.state == "failed" and record.last_error is not None
    assert record.last_error.code == "unqueryable_id"
    assert "','" in record.last_error.message and "EXT-0093" not in record.last_error.message
    assert int(clean.redis.hget(FAILED_KEY, "unqueryable_id") or 0) == 1
    rows = clean.state()["enrolmentComponents"]
    assert rows and all(not any(row["writes"].values()) for row in rows)
