"""A Coachview that enforces its daily budget but sends no X-Rate-Limit-* headers: workers count
what they send themselves and stop at COACHVIEW_DAILY_LIMIT (less the reserve), then resume
after the window (issue 12)."""

from __future__ import annotations

from gradesync.procs import start_beat, wait_until
from tests.faults.conftest import Workers
from tests.integration.conftest import Stack, canonical

ALL_ONCE = {"result": 1, "attendance": 1, "passed": 1, "completed": 1, "approved": 1}
LIMIT, WINDOW_S = 20, 5


def test_without_headers_workers_stop_at_the_local_limit_and_resume(
    clean: Stack, workers: Workers
) -> None:
    n = 8
    clean.seed(
        {
            "persons": [{"id": 2000 + i, "externId": f"L{i}"} for i in range(n)],
            "trainings": [{"id": 501, "components": [{"id": 9001, "elearningCourseId": "12"}]}],
            "enrolments": [
                {"id": 8000 + i, "personId": 2000 + i, "trainingId": 501} for i in range(n)
            ],
        }
    )
    # The simulator refuses (429) past its budget but never tells how much is left.
    clean.config(daily_budget=LIMIT, budget_window_s=WINDOW_S, rate_limit_headers=False)
    env = {"COACHVIEW_DAILY_LIMIT": str(LIMIT), "COACHVIEW_BUDGET_WINDOW_S": str(WINDOW_S)}
    workers.start(concurrency=2, **env)
    beat = start_beat(clean.workdir, {**clean.env, **env})  # its sweep resumes the waiting
    try:
        rids = [
            clean.enqueue(canonical(person_id=f"L{i}", event_id=f"nh{i}"), "rest") for i in range(n)
        ]

        def all_settled() -> bool:
            return all(
                (r := clean.ledger.get(rid)) is not None
                and r.state not in ("queued", "in_progress")
                for rid in rids
            )

        wait_until(all_settled, timeout=180, interval=0.5)
    finally:
        beat.stop()
        keys = list(clean.redis.scan_iter("gs:redbeat*"))
        if keys:
            clean.redis.delete(*keys)
    records = [clean.ledger.get(rid) for rid in rids]
    assert [r.state for r in records if r is not None] == ["delivered"] * n
    waited = [
        h
        for rid in rids
        for h in clean.ledger.history(rid)
        if h["what"] == "deferred" and "budget" in str(h)
    ]
    assert waited, "the local count should have made some completions wait for the window"
    rows = [r for r in clean.state()["enrolmentComponents"] if r["enrolmentId"] >= 8000]
    assert len(rows) == n and all(r["writes"] == ALL_ONCE for r in rows)
    # Stopped by its own count before Coachview had to refuse anything.
    assert clean.state()["requests"]["rateLimited"] == 0
