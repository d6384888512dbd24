"""Reconciliation (issue 26): the pure rules, and whole runs against the fake Moodle site in
process (fakeredis; the real-process test is tests/faults/test_reconcile.py)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradesync.completion_time import MoodleCompletionStatus
from gradesync.errors import RemoteError
from gradesync.ledger import Ledger
from gradesync.lms.moodle import MoodleWS
from gradesync.lms.moodle_reconcile import MoodleReconciler
from gradesync.reconcile import plan
from gradesync.reconcile.run import run
from gradesync.reconcile.store import Store
from gradesync.sources import MoodleSource
from tests.fakes.moodle_site import Site, transport

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
OVERLAP = timedelta(hours=24)
FIRST = timedelta(days=30)


def moodle(**reconcile: Any) -> MoodleSource:
    return MoodleSource.model_validate(
        {
            "kind": "moodle",
            "instance": "school",
            "secret": "a-webhook-secret-of-32-characters!",
            "api": {"url": "http://moodle.test", "credential": "t"},
            "course_field": "idnumber",
            "reconcile": reconcile,
        }
    )


# -- plan ------------------------------------------------------------------------------------


def test_window_first_run_default_then_cursor_less_overlap() -> None:
    first = plan.window_start(None, NOW, timedelta(hours=24), timedelta(days=30))
    assert first == NOW - timedelta(days=30)
    assert plan.window_start(NOW - DAY, NOW, timedelta(hours=6), timedelta(days=30)) == (
        NOW - DAY - timedelta(hours=6)
    )
    given_since = NOW - timedelta(days=90)
    assert (
        plan.window_start(NOW - DAY, NOW, timedelta(0), timedelta(days=1), given_since)
        == given_since
    )


def test_capped_pass_keeps_cursor_until_every_course_is_done() -> None:
    state = plan.State(cursor=NOW - 2 * DAY)
    current = plan.begin(state, NOW, OVERLAP, FIRST)
    assert current.since == NOW - 3 * DAY
    kept = plan.after(state, current, every_course_done=False)
    assert kept.cursor == NOW - 2 * DAY and kept.current == current
    # The next run continues the same pass, with the same window.
    assert plan.begin(kept, NOW + DAY, OVERLAP, FIRST) == current
    done = plan.after(kept, current, every_course_done=True)
    assert done == plan.State(cursor=NOW, current=None)


@given(
    learners=st.lists(st.integers(1, 10_000), max_size=40),
    resume=st.one_of(st.none(), st.integers(1, 10_000)),
    skip=st.sets(st.integers(1, 10_000), max_size=10),
)
def test_to_ask_is_after_the_resume_point_in_id_order_without_known(
    learners: list[int], resume: int | None, skip: set[int]
) -> None:
    asked = plan.to_ask(
        [str(u) for u in learners], None if resume is None else str(resume), {str(u) for u in skip}
    )
    expected = sorted({u for u in learners if (resume is None or u > resume) and u not in skip})
    assert asked == [str(u) for u in expected]


def status(completed: bool, at: datetime | None) -> MoodleCompletionStatus:
    stamp = None if at is None else int(at.timestamp())
    return MoodleCompletionStatus.model_validate(
        {
            "completed": completed,
            "aggregation": 1,
            "completions": [{"complete": completed, "timecompleted": stamp}],
        }
    )


def test_verdicts() -> None:
    since = NOW - 3 * DAY
    assert plan.verdict(None, since, NOW) == ("left", None)
    assert plan.verdict(status(False, None), since, NOW) == ("incomplete", None)
    no_criteria = MoodleCompletionStatus(completed=False, aggregation=1, completions=[])
    assert plan.verdict(no_criteria, since, NOW) == ("no_criteria", None)
    assert plan.verdict(status(True, NOW - DAY), since, NOW) == ("record", NOW - DAY)
    assert plan.verdict(status(True, NOW - 9 * DAY), since, NOW) == ("before_window", NOW - 9 * DAY)


def test_next_run_is_the_next_time_of_day_in_the_zone() -> None:
    tz = ZoneInfo("Europe/Amsterdam")
    now = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)  # a pure function of its inputs: any date
    assert plan.next_run(time(2, 30), now, tz) == datetime(2026, 12, 7, 1, 30, tzinfo=UTC)
    assert plan.next_run(time(22, 0), now, tz) == datetime(2026, 12, 6, 21, 0, tzinfo=UTC)


def test_missed_counts_only_after_grace_within_a_week_and_without_webhook() -> None:
    found = {
        "late": plan.Found(completed=NOW - 2 * DAY, found=NOW - DAY),
        "recent": plan.Found(completed=NOW - timedelta(hours=2), found=NOW),
        "webhook": plan.Found(completed=NOW - 2 * DAY, found=NOW - DAY),
        "old": plan.Found(completed=NOW - 20 * DAY, found=NOW - 10 * DAY),
    }
    assert plan.missed_by_webhook(found, {"webhook"}, NOW, timedelta(hours=24)) == ["late"]


# -- runs against the fake site ------------------------------------------------------------


class Bench:
    def __init__(self, courses: int = 3, learners: int = 4) -> None:
        self.site = Site()
        for c in range(1, courses + 1):
            self.site.add_course(100 + c, f"C{c}", [1000 * c + u for u in range(1, learners + 1)])
        self.ledger = Ledger(fakeredis.FakeRedis())
        self.sent: list[str] = []
        self.inst = moodle()

    def lms(self) -> MoodleReconciler:
        ws = MoodleWS("http://moodle.test", self.site.token, transport=transport(self.site))
        return MoodleReconciler(ws, "idnumber")

    def run(self, max_calls: int = 10_000, **kw: Any) -> plan.Summary:
        codes = [c["idnumber"] for c in self.site.courses.values()]
        return run(
            self.inst,
            self.lms(),
            codes,
            self.ledger,
            self.sent.append,
            kw.pop("now", NOW),
            max_calls=max_calls,
            overlap=OVERLAP,
            first_window=FIRST,
            **kw,
        )


def test_records_each_completion_once_with_the_lms_time_and_a_second_run_finds_nothing() -> None:
    b = Bench()
    b.site.complete(101, 1001, int((NOW - DAY).timestamp()))
    b.site.complete(103, 3004, int((NOW - 2 * DAY).timestamp()))
    first = b.run()
    assert (first.recorded, first.finished, first.checked) == (2, True, 12)
    rec = b.ledger.find("moodle|school|1001|101")
    assert rec is not None and rec.event.completed_at == NOW - DAY
    assert [h["what"] for h in b.ledger.history(rec.id)] == ["received", "reconciled"]
    assert sorted(b.sent) == sorted([rec.id, b.ledger.find("moodle|school|3004|103").id])  # type: ignore[union-attr]
    second = b.run(now=NOW + timedelta(hours=1))
    assert second.recorded == 0 and second.finished
    # Only the learners whose answer may still change are asked again.
    assert second.checked == 10


def test_capped_run_resumes_where_it_stopped_and_moves_the_cursor_only_at_the_end() -> None:
    b = Bench(courses=3, learners=4)
    b.site.complete(103, 3004, int((NOW - DAY).timestamp()))
    first = b.run(max_calls=7)  # 1 course map + 1 list + 4 learners + 1 list: course 2 waits
    assert not first.finished and first.courses_done == 1 and first.calls == 7
    store = Store(b.ledger, b.inst.name)
    assert store.state().cursor is None and store.state().current is not None
    second = b.run(max_calls=7, now=NOW + timedelta(minutes=5))
    third = b.run(max_calls=7, now=NOW + timedelta(minutes=10))
    assert second.recorded + third.recorded == 1 and third.finished
    assert store.state().cursor == NOW  # the pass began at the first run


def test_a_purged_record_is_not_brought_back() -> None:
    b = Bench(courses=1, learners=1)
    b.site.complete(101, 1001, int((NOW - DAY).timestamp()))
    b.run()
    rec = b.ledger.find("moodle|school|1001|101")
    assert rec is not None
    b.ledger.start(rec.id, NOW)
    b.ledger.deliver(rec.id, NOW)
    assert b.ledger.purge(rec.id, ("delivered",))
    again = b.run(since=NOW - 5 * DAY, now=NOW + timedelta(hours=1))
    assert again.recorded == 0 and b.ledger.get(rec.id) is None


def test_learners_who_left_are_counted_and_completed_before_the_window_are_settled() -> None:
    b = Bench(courses=1, learners=3)
    b.site.complete(101, 1001, int((NOW - DAY).timestamp()))
    b.site.leave(101, 1001, "suspend")
    b.site.complete(101, 1002, int((NOW - 60 * DAY).timestamp()))
    first = b.run()
    assert (first.recorded, first.left, first.before_window) == (0, 1, 1)
    assert first.left_learners == ["101/1001"]
    second = b.run(now=NOW + timedelta(hours=1))
    assert second.checked == 2  # the settled learner is not asked again


def test_dry_run_records_and_moves_nothing() -> None:
    b = Bench(courses=1, learners=2)
    b.site.complete(101, 1002, int((NOW - DAY).timestamp()))
    summary = b.run(dry_run=True)
    assert summary.would_record == ["101/1002"] and summary.recorded == 0
    assert b.ledger.counts()["queued"] == 0
    assert Store(b.ledger, b.inst.name).state() == plan.State()


def test_course_ids_map_back_through_course_field_in_one_call() -> None:
    b = Bench(courses=5)
    lms = b.lms()
    assert lms.course_ids(["C2", "C5", "elsewhere"]) == {"C2": "102", "C5": "105"}
    assert lms.calls == 1


def test_configured_courses_need_a_valid_block() -> None:
    with pytest.raises(ValueError, match="max_calls"):
        moodle(max_calls=0)
    assert moodle(courses=["C1"]).reconcile.courses == ("C1",)
    with pytest.raises(ValueError, match="quoted"):
        moodle(at=240)  # YAML's reading of an unquoted 04:00
    assert moodle(at="04:00").reconcile.at == time(4, 0)


def test_beat_runs_each_reconciled_installation_nightly_at_its_time() -> None:
    import celeryconfig

    entry = celeryconfig.beat_schedule["gradesync-reconcile-moodle-default"]
    assert entry["task"] == "gradesync.reconcile" and entry["args"] == ("moodle", "default")
    assert entry["schedule"].hour == {2} and entry["schedule"].minute == {30}


def test_an_lms_failure_mid_pass_keeps_what_was_answered() -> None:
    b = Bench(courses=2, learners=3)
    b.site.complete(101, 1001, int((NOW - DAY).timestamp()))
    answered = 0

    original = b.site.answer

    def flaky(form: dict[str, str]) -> Any:
        nonlocal answered
        answered += 1
        if answered > 4:  # map, list, two learners; then Moodle goes away
            return {"exception": "moodle_exception", "errorcode": "sitemaintenance", "message": "x"}
        return original(form)

    b.site.answer = flaky  # type: ignore[method-assign]
    with pytest.raises(RemoteError):
        b.run()
    store = Store(b.ledger, b.inst.name)
    assert store.state().current is not None and store.state().current.resume == {"101": "1002"}  # type: ignore[union-attr]
    assert store.last().error == "moodle_sitemaintenance"  # type: ignore[union-attr]
    assert b.ledger.find("moodle|school|1001|101") is not None
    b.site.answer = original  # type: ignore[method-assign]
    assert b.run(now=NOW + timedelta(minutes=5)).finished


def test_a_learner_whose_enrolment_was_deleted_since_the_last_answer_is_named_once() -> None:
    b = Bench(courses=1, learners=3)
    b.run()  # everyone answered "not complete"
    b.site.complete(101, 1002, int((NOW + timedelta(hours=1)).timestamp()))
    b.site.leave(101, 1002, "remove")  # completed, then removed before the next night
    b.site.leave(101, 1003, "remove")
    second = b.run(now=NOW + timedelta(days=1))
    assert second.left_learners == ["101/1002 (enrolment deleted)", "101/1003 (enrolment deleted)"]
    assert b.run(now=NOW + timedelta(days=2)).left == 0  # named once


@given(
    before=st.sets(st.sampled_from("123456"), max_size=6),
    listed=st.sets(st.sampled_from("123456"), max_size=6),
    known=st.sets(st.sampled_from("123456"), max_size=6),
)
def test_removed_is_open_before_minus_listed_minus_known(
    before: set[str], listed: set[str], known: set[str]
) -> None:
    assert set(plan.removed(before, listed, known)) == before - listed - known


# -- what a new user and an attacker found (issue 26 review) ---------------------------------


def test_a_cap_too_small_to_ask_one_learner_is_refused() -> None:
    # A run spends one call mapping the courses and one listing the resumed course's learners:
    # with a cap of 1 or 2 no learner is ever asked and the pass never ends (silently, nightly).
    for cap in (1, 2):
        with pytest.raises(ValueError, match="max_calls"):
            moodle(max_calls=cap)
    assert moodle(max_calls=3).reconcile.max_calls == 3


def test_a_narrow_since_does_not_hide_a_completion_from_a_wider_pass_later() -> None:
    # An operator runs --since too late, then again from the outage's real start: the learner
    # who completed in between must be recorded by the second run.
    b = Bench(courses=1, learners=2)
    b.site.complete(101, 1001, int((NOW - 5 * DAY).timestamp()))
    assert b.run(since=NOW - 2 * DAY).before_window == 1
    wider = b.run(since=NOW - 10 * DAY, now=NOW + timedelta(minutes=5))
    assert wider.recorded == 1
    rec = b.ledger.find("moodle|school|1001|101")
    assert rec is not None and rec.event.completed_at == NOW - 5 * DAY
    # Within one window a settled learner is still not asked again.
    assert b.run(now=NOW + timedelta(minutes=10)).checked == 1


def refuse_course(b: Bench, course: str, errorcode: str) -> None:
    original = b.site.answer

    def answer(form: dict[str, str]) -> Any:
        if form.get("courseid") == course:
            return {"exception": "require_login_exception", "errorcode": errorcode, "message": "x"}
        return original(form)

    b.site.answer = answer  # type: ignore[method-assign]


def test_a_course_moodle_refuses_is_named_and_does_not_block_the_others() -> None:
    # A hidden course (require_login_exception) or one where the token's role lacks a
    # capability answers the same every night: the courses after it must still be reconciled.
    b = Bench(courses=3, learners=2)
    b.site.complete(103, 3001, int((NOW - DAY).timestamp()))
    refuse_course(b, "101", "requireloginerror")
    first = b.run()
    assert first.recorded == 1 and first.failed_courses == ["101: moodle_requireloginerror"]
    assert b.ledger.find("moodle|school|3001|103") is not None
    # The pass ends, but the cursor stays: the next pass looks again from the same start.
    state = Store(b.ledger, b.inst.name).state()
    assert state.current is None and state.cursor is None
    second = b.run(now=NOW + timedelta(hours=1))
    assert second.since == first.since and second.failed_courses == first.failed_courses


def test_a_learner_id_that_is_not_a_moodle_id_is_a_typed_error_naming_the_field() -> None:
    b = Bench(courses=2, learners=1)
    b.site.complete(102, 2001, int((NOW - DAY).timestamp()))
    listed = b.site._ws_core_enrol_get_enrolled_users

    def markup(form: dict[str, str]) -> Any:
        if form["courseid"] == "101":
            return [{"id": "1\n2"}, {"id": "<img src=x onerror=alert(1)>"}]
        return listed(form)

    b.site._ws_core_enrol_get_enrolled_users = markup  # type: ignore[method-assign]
    summary = b.run()
    assert summary.failed_courses == ["101: moodle_unexpected_response"]
    assert summary.recorded == 1 and summary.checked == 1


def test_a_killed_run_leaves_its_resume_point_and_a_lock_that_frees_itself_soon() -> None:
    # kill -9 runs no ``finally``: what was answered must already be stored, and the lock must
    # not keep a rerun out for hours (it is kept alive by every answer instead).
    b = Bench(courses=2, learners=3)
    store = Store(b.ledger, b.inst.name)
    seen: list[dict[str, str]] = []
    alive: list[int] = []
    original = b.site.answer

    def watch(form: dict[str, str]) -> Any:
        current = store.state().current
        seen.append(dict(current.resume) if current is not None else {})
        return original(form)

    b.site.answer = watch  # type: ignore[method-assign]
    b.run(keepalive=lambda: alive.append(1))
    # map, list 101, three learners of 101, list 102, …: before the third learner's call the
    # first two answers are stored.
    assert seen[4] == {"101": "1002"}
    assert len(alive) >= 6  # one per learner's answer, at least
    from gradesync.reconcile.store import LOCK_S

    assert LOCK_S <= 300


def test_a_course_without_completion_criteria_costs_one_learner_a_night_not_all() -> None:
    # Moodle answers nocriteriaset for every learner of a course without completion criteria
    # (completion/classes/external.php: get_completions() is empty): nothing to find there.
    b = Bench(courses=2, learners=50)
    b.site.complete(102, 2007, int((NOW - DAY).timestamp()))
    original = b.site.answer

    def no_criteria(form: dict[str, str]) -> Any:
        if form.get("courseid") == "101" and "completion" in form.get("wsfunction", ""):
            return {"exception": "moodle_exception", "errorcode": "nocriteriaset", "message": "x"}
        return original(form)

    b.site.answer = no_criteria  # type: ignore[method-assign]
    for night in range(2):
        summary = b.run(now=NOW + night * DAY)
        assert summary.finished and summary.failed_courses == []
        asked_in_101 = summary.checked - (50 if night == 0 else 49)
        assert asked_in_101 == 1
    assert b.ledger.find("moodle|school|2007|102") is not None


def test_a_moodle_failing_at_the_first_call_leaves_a_run_with_its_error() -> None:
    # A wrong token (or Moodle down) fails the course look-up itself: that run must be seen
    # (status, doctor) — not "not run yet" forever — and must not move the cursor.
    b = Bench(courses=1, learners=1)
    invalid = {"exception": "moodle_exception", "errorcode": "invalidtoken", "message": "x"}
    b.site.answer = lambda form: invalid  # type: ignore[method-assign]
    with pytest.raises(RemoteError):
        b.run()
    store = Store(b.ledger, b.inst.name)
    last = store.last()
    assert last is not None and last.error == "moodle_invalidtoken" and not last.finished
    assert store.state().cursor is None


def test_a_moodle_error_code_is_passed_on_only_as_an_identifier() -> None:
    # Moodle's errorcode ends in the run's error, printed by status and doctor: markup, escape
    # sequences or new lines from a hostile or broken site crashed `gradesync status` (Rich).
    from gradesync.lms.moodle import MoodleError

    b = Bench(courses=1, learners=1)
    evil = {"exception": "x", "errorcode": "[/bold]\x1b[31m\n<b>", "message": "[/x]\x1b[2J"}
    b.site.answer = lambda form: evil  # type: ignore[method-assign]
    with pytest.raises(MoodleError) as raised:
        b.lms().course_ids(["C1"])
    assert raised.value.code == "moodle_unreadable_errorcode"
    assert "\x1b" not in str(raised.value) and "\n" not in str(raised.value)
