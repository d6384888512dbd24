"""Coachview requests per completion on the simulator, each figure beside its target (issue 12).

    python -m benchmarks.requests_per_completion [--sizes 1000] [--courses 10]
                                                 [--modes rest resultlink] [--workers 2]

For each delivery mode and size: a day of N completions over the courses with every learner
distinct; one where 30 % of the completions are by persons who already completed another course
(enrolled on both); and one where 20 % of the learners are not enrolled, followed by one daily
retry pass (they are still not enrolled: every request of the retry counts too). Starts its own
redis-server, simulator and celery worker on free ports; resets all of it between runs.

Targets: rest ≤ 2.5 REST requests per completion; resultlink exactly 1 POST per delivered
completion and ≤ 0.05 REST requests per completion; the 20 % day ≤ 5,000 REST requests.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.stack import BenchStack
from gradesync.procs import wait_until

RESULT_LINK = "POST /elearning/result.aspx"
REST_PER_COMPLETION = 2.5
RESULTLINK_REST_PER_COMPLETION = 0.05
DAY_BUDGET = 5000
REPEAT_SHARE = 0.3
UNRESOLVED_SHARE = 0.2


@dataclass
class Day:
    """One run: what Coachview holds, the completions, and whether a daily pass follows."""

    mix: str
    seed: dict[str, Any]
    events: list[dict[str, Any]]
    retry_pass: bool = False


def _person(i: int) -> dict[str, Any]:
    return {"id": 10_000 + i, "externId": f"P{i}"}


def _trainings(courses: int) -> list[dict[str, Any]]:
    return [
        {"id": 100 + c, "components": [{"id": 5000 + c, "elearningCourseId": f"C{c}"}]}
        for c in range(courses)
    ]


def _day(mix: str, completions: list[tuple[int, int]], enrolled: int, courses: int) -> Day:
    """``completions``: (person, course) pairs; persons below ``enrolled`` are enrolled on
    every course they complete, the others on none."""
    persons = sorted({p for p, _ in completions})
    pairs = sorted({(p, c) for p, c in completions if p < enrolled})
    return Day(
        mix=mix,
        seed={
            "persons": [_person(p) for p in persons],
            "trainings": _trainings(courses),
            "enrolments": [
                {"id": 20_000 + i, "personId": 10_000 + p, "trainingId": 100 + c}
                for i, (p, c) in enumerate(pairs)
            ],
        },
        events=[
            {
                "source": "moodle",
                "event_id": f"bench-{i}",
                "person_id": f"P{p}",
                "course_id": f"C{c}",
                "grade": "7.5",
                "completed_at": "2026-11-20T14:03:00+01:00",
            }
            for i, (p, c) in enumerate(completions)
        ],
        retry_pass=enrolled < len(persons),
    )


def _distinct(n: int, courses: int) -> list[tuple[int, int]]:
    return [(i, i % courses) for i in range(n)]


def seed(n: int, courses: int) -> dict[str, Any]:
    """Every learner distinct and enrolled (benchmarks/pipeline.py's data too)."""
    return _day("distinct", _distinct(n, courses), n, courses).seed


def events(n: int, courses: int) -> list[dict[str, Any]]:
    return _day("distinct", _distinct(n, courses), n, courses).events


def days(n: int, courses: int) -> list[Day]:
    distinct = _distinct(n, courses)
    first = n - int(n * REPEAT_SHARE)
    # The repeats: persons 0, 1, … completing the course after their first one.
    repeats = [(i, (i % courses + 1) % courses) for i in range(n - first)]
    return [
        _day("distinct", distinct, n, courses),
        _day(f"{REPEAT_SHARE:.0%} repeat", distinct[:first] + repeats, n, courses),
        _day(
            f"{UNRESOLVED_SHARE:.0%} unresolved", distinct, n - int(n * UNRESOLVED_SHARE), courses
        ),
    ]


@dataclass
class Measured:
    completions: int
    delivered: int
    rest: int
    posts: int
    seconds: float

    @property
    def per_completion(self) -> float:
        return self.rest / self.completions


def _settled(stack: BenchStack) -> bool:
    counts = stack.ledger.counts()
    return counts["queued"] == 0 and counts["in_progress"] == 0


def run(stack: BenchStack, day: Day, mode: str) -> Measured:
    # Deferred: settings (REDIS_URL, ports) are read on import, after the stack set them.
    from gradesync.event import CompletionEvent
    from gradesync.ledger import utcnow
    from gradesync.submit import submit
    from workers.pipeline import enqueue
    from workers.schedule import run_retry_pass

    stack.reset()
    stack.config(daily_budget=1_000_000)  # count requests here, not the budget: one window
    stack.seed(day.seed)
    started = time.monotonic()
    for data in day.events:
        submit(CompletionEvent.model_validate(data), stack.ledger, lambda r: enqueue(r, mode))  # type: ignore[arg-type]
    wait_until(lambda: _settled(stack), 900, 0.2)
    if day.retry_pass:
        run_retry_pass(stack.ledger, utcnow() + timedelta(days=1), 30)
        wait_until(lambda: _settled(stack), 900, 0.2)
    routes = stack.state()["requests"]["byRoute"]
    return Measured(
        completions=len(day.events),
        delivered=stack.ledger.counts()["delivered"],
        rest=sum(v for k, v in routes.items() if k != RESULT_LINK),
        posts=routes.get(RESULT_LINK, 0),
        seconds=time.monotonic() - started,
    )


def verdict(mode: str, day: Day, m: Measured) -> tuple[str, bool]:
    """The target this figure is held to, and whether it meets it."""
    if day.retry_pass:
        return f"REST in the day ≤ {DAY_BUDGET:,}", m.rest <= DAY_BUDGET
    if mode == "resultlink":
        target = f"1 POST per delivered, REST/completion ≤ {RESULTLINK_REST_PER_COMPLETION}"
        ok = m.posts == m.delivered == m.completions
        return target, ok and m.per_completion <= RESULTLINK_REST_PER_COMPLETION
    return f"REST/completion ≤ {REST_PER_COMPLETION}", m.per_completion <= REST_PER_COMPLETION


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--courses", type=int, default=10)
    parser.add_argument("--modes", nargs="+", default=["rest", "resultlink"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as tmp, BenchStack(Path(tmp), args.workers) as stack:
        print(
            f"{'mode':<11} {'mix':<15} {'completions':>11} {'delivered':>9} {'REST':>6} "
            f"{'REST/compl.':>11} {'POSTs':>6} {'per day in 5,000':>16}  target"
        )
        for mode in args.modes:
            for n in args.sizes:
                for day in days(n, args.courses):
                    m = run(stack, day, mode)
                    target, ok = verdict(mode, day, m)
                    failed |= not ok
                    per_day = f"{int(DAY_BUDGET / m.per_completion):,}" if m.rest else "no limit"
                    print(
                        f"{mode:<11} {day.mix:<15} {m.completions:>11} {m.delivered:>9} "
                        f"{m.rest:>6} {m.per_completion:>11.3f} {m.posts:>6} {per_day:>16}  "
                        f"{target}: {'PASS' if ok else 'FAIL'}  ({m.seconds:.0f} s)",
                        flush=True,
                    )
    os._exit(1 if failed else 0)


if __name__ == "__main__":
    main()
