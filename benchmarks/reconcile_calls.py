"""Moodle web service calls per reconciliation run (issue 26), beside a naive baseline measured
on the same site in the same run.

    python -m benchmarks.reconcile_calls [--courses 100] [--learners 30] [--teachers 2]

A fake Moodle site in process (tests/fakes/moodle_site.py, answering in Moodle's shapes) with
``--courses`` courses of ``--learners`` learners and ``--teachers`` teachers each, all known to
Coachview. Three nights: before the first, 30 % of the learners completed within the window and
10 % long before it; before the second, another 10 %; before the third, nobody. Each night
gradesync's run (tests nothing but the calls) and the naive one ask the same site.

Naive: per course, look the course up by its id number, list every enrolled user, and ask each
one's completion status (``core_course_get_courses_by_field`` + ``core_enrol_get_enrolled_users``
+ ``core_completion_get_course_completion_status`` × users), every night.
gradesync: one course look-up for all courses, one list per course of the learners Moodle tracks
(``withcapability``), and a status call only for learners the ledger does not hold and who did
not complete before any window.
"""

from __future__ import annotations

import argparse
import contextlib
import random
from datetime import UTC, datetime, timedelta

import fakeredis

from gradesync import logs
from gradesync.ledger import Ledger
from gradesync.lms.moodle import MoodleError, MoodleWS
from gradesync.lms.moodle_reconcile import MoodleReconciler
from gradesync.reconcile.run import run
from gradesync.sources import MoodleSource
from tests.fakes.moodle_site import Site, transport

NIGHTS = ((0.30, 0.10), (0.10, 0.0), (0.0, 0.0))  # (completed in window, before it) per night


class Naive:
    def __init__(self, ws: MoodleWS) -> None:
        self.ws = ws
        self.calls = 0

    def night(self, codes: list[str]) -> int:
        self.calls = 0
        for code in codes:
            self.calls += 1
            found = self.ws.call("core_course_get_courses_by_field", field="idnumber", value=code)
            course = str(found["courses"][0]["id"])
            self.calls += 1
            users = self.ws.call("core_enrol_get_enrolled_users", courseid=course)
            for user in users:
                self.calls += 1
                # A teacher is not tracked: Moodle answers usernotenroled (counted all the same).
                with contextlib.suppress(MoodleError):
                    self.ws.call(
                        "core_completion_get_course_completion_status",
                        courseid=course,
                        userid=str(user["id"]),
                    )
        return self.calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--courses", type=int, default=100)
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--teachers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=26)
    args = parser.parse_args()
    logs.configure("WARNING")  # the table only
    rnd = random.Random(args.seed)
    site = Site()
    for c in range(1, args.courses + 1):
        learners = [100_000 * c + u for u in range(1, args.learners + 1)]
        teachers = [900_000_000 + 100 * c + t for t in range(args.teachers)]
        site.add_course(c, f"CV-{c}", learners, teachers)
    codes = [f"CV-{c}" for c in range(1, args.courses + 1)]
    inst = MoodleSource.model_validate(
        {
            "kind": "moodle",
            "instance": "bench",
            "secret": "a-webhook-secret-of-32-characters!",
            "api": {"url": "http://moodle.bench", "credential": site.token},
            "course_field": "idnumber",
        }
    )
    ws = MoodleWS("http://moodle.bench", site.token, transport=transport(site))
    ledger = Ledger(fakeredis.FakeRedis())
    now = datetime.now(UTC).replace(microsecond=0)
    open_learners = [
        (c, u) for c in site.courses for u in site.enrolments[c] if (c, u) not in site.teachers
    ]
    rnd.shuffle(open_learners)
    total = len(open_learners)
    print(f"{args.courses} courses × {args.learners} learners (+{args.teachers} teachers each)")
    print(
        f"{'night':>5} {'completed':>9} {'gradesync':>9} {'naive':>7} {'ratio':>6} {'recorded':>8}"
    )
    for night, (within, before) in enumerate(NIGHTS, start=1):
        for _ in range(round(within * total)):
            c, u = open_learners.pop()
            site.complete(c, u, int((now - timedelta(hours=rnd.randint(1, 20))).timestamp()))
        for _ in range(round(before * total)):
            c, u = open_learners.pop()
            site.complete(c, u, int((now - timedelta(days=90)).timestamp()))
        lms = MoodleReconciler(ws, "idnumber")
        summary = run(
            inst,
            lms,
            codes,
            ledger,
            lambda _rid: None,
            now,
            max_calls=1_000_000,
            overlap=timedelta(hours=24),
            first_window=timedelta(days=30),
        )
        naive = Naive(ws).night(codes)
        print(
            f"{night:>5} {len(site.completed):>9} {summary.calls:>9} {naive:>7} "
            f"{summary.calls / naive:>6.2f} {summary.recorded:>8}"
        )
        now += timedelta(days=1)


if __name__ == "__main__":
    main()
