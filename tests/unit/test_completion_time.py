"""The completion-instant rule (issue 18): Moodle's criteria times, else the event's time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gradesync.completion_time import (
    AGGREGATION_ALL,
    AGGREGATION_ANY,
    MoodleCompletionStatus,
    MoodleCriterion,
    moodle_completion_instant,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
AMS = ZoneInfo("Europe/Amsterdam")
# The event fired at 00:20 local; the criteria were done the evening before.
EVENT = datetime(2026, 11, 20, 0, 20, tzinfo=AMS)
T2320 = int(datetime(2026, 11, 19, 23, 20, tzinfo=AMS).timestamp())
T2340 = int(datetime(2026, 11, 19, 23, 40, tzinfo=AMS).timestamp())
LATER = int((EVENT + timedelta(hours=1)).timestamp())


def done(at: int | None) -> MoodleCriterion:
    return MoodleCriterion(complete=True, timecompleted=at)


OPEN = MoodleCriterion(complete=False, timecompleted=None)


@pytest.mark.parametrize(
    ("aggregation", "criteria", "expected", "source"),
    [
        # all required: the course was complete once the last criterion was
        (AGGREGATION_ALL, [done(T2320), done(T2340)], T2340, "moodle_completion_criteria"),
        # any one suffices: the first criterion completed it
        (AGGREGATION_ANY, [done(T2340), done(T2320)], T2320, "moodle_completion_criteria"),
        # an incomplete criterion (another criterion type's own "any") does not count
        (AGGREGATION_ALL, [done(T2320), OPEN], T2320, "moodle_completion_criteria"),
        (AGGREGATION_ANY, [OPEN, done(T2340)], T2340, "moodle_completion_criteria"),
        # Moodle gives no time: the event's
        (AGGREGATION_ALL, [], None, "event"),
        (AGGREGATION_ALL, [OPEN], None, "event"),
        (AGGREGATION_ALL, [done(None)], None, "event"),
        (AGGREGATION_ALL, [done(0)], None, "event"),
        (AGGREGATION_ALL, [done(T2320), done(None)], None, "event"),
        (AGGREGATION_ANY, [done(T2320), done(0)], None, "event"),
        (AGGREGATION_ALL, [done(10**15)], None, "event"),  # not a representable time
        (AGGREGATION_ALL, [done(1)], None, "event"),  # 1970: outside every completion's window
        # an aggregation Moodle does not define: no rule to pick a time by
        (3, [done(T2320)], None, "event"),
        # never later than the event: Moodle stores the completion before it fires the event
        (AGGREGATION_ALL, [done(T2320), done(LATER)], None, "event"),
        (AGGREGATION_ANY, [done(LATER)], None, "event"),
        # the same second as the event (the cron marked it and fired at once): the criterion's
        (
            AGGREGATION_ALL,
            [done(int(EVENT.timestamp()))],
            int(EVENT.timestamp()),
            "moodle_completion_criteria",
        ),
    ],
)
def test_moodle_completion_instant(
    aggregation: int, criteria: list[MoodleCriterion], expected: int | None, source: str
) -> None:
    status = MoodleCompletionStatus(completed=True, aggregation=aggregation, completions=criteria)
    instant = moodle_completion_instant(status, EVENT)
    assert instant.source == source
    assert instant.at == (EVENT if expected is None else datetime.fromtimestamp(expected, UTC))


def test_moodle_answer_as_moodle_sends_it() -> None:
    """completion/classes/external.php's return structure, extra fields and all."""
    body = json.loads(
        (FIXTURES / "moodle-core_completion_get_course_completion_status.json").read_text()
    )
    status = MoodleCompletionStatus.model_validate(body["completionstatus"])
    instant = moodle_completion_instant(status, EVENT)
    assert instant.source == "moodle_completion_criteria"
    assert instant.at.astimezone(AMS) == datetime(2026, 11, 19, 23, 40, tzinfo=AMS)
