"""Coachview requests per completion, measured on the simulator, in both delivery modes.

    python -m benchmarks.requests_per_completion [--sizes 1 100 1000] [--courses 10]

Starts its own redis-server, simulator and celery worker on free ports; for each size and mode
it resets everything, seeds N learners enrolled over the courses, enqueues N completions, waits
for all to be delivered and reads the simulator's request counters.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.stack import BenchStack


def seed(n: int, courses: int) -> dict[str, object]:
    return {
        "persons": [{"id": 10_000 + i, "externId": f"P{i}"} for i in range(n)],
        "trainings": [
            {"id": 100 + c, "components": [{"id": 5000 + c, "elearningCourseId": f"C{c}"}]}
            for c in range(courses)
        ],
        "enrolments": [
            {"id": 20_000 + i, "personId": 10_000 + i, "trainingId": 100 + i % courses}
            for i in range(n)
        ],
    }


def events(n: int, courses: int) -> list[dict[str, object]]:
    return [
        {
            "source": "moodle",
            "event_id": f"bench-{i}",
            "person_id": f"P{i}",
            "course_id": f"C{i % courses}",
            "grade": "7.5",
            "completed_at": "2026-11-20T14:03:00+01:00",
        }
        for i in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--courses", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, BenchStack(Path(tmp), args.workers) as stack:
        print(
            f"{'mode':<11} {'completions':>11} {'requests':>9} {'per completion':>15} "
            f"{'completions/day in 5,000':>25}  by route"
        )
        for mode in ("rest", "resultlink"):
            for n in args.sizes:
                stack.reset()
                # Count requests, not the budget: let the whole run fit in one window.
                stack.config(daily_budget=1_000_000)
                stack.seed(seed(n, args.courses))

                started = time.monotonic()
                stack.deliver(events(n, args.courses), mode)
                elapsed = time.monotonic() - started
                requests = stack.state()["requests"]
                rest = sum(v for k, v in requests["byRoute"].items() if "result.aspx" not in k)
                per = rest / n
                print(
                    f"{mode:<11} {n:>11} {rest:>9} {per:>15.2f} {int(5000 / per):>25}  "
                    f"{requests['byRoute']}  ({elapsed:.1f}s)"
                )
    os._exit(0)


if __name__ == "__main__":
    main()
