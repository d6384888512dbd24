"""Course rosters over real processes: a burst of completions for one course is resolved from
one roster read, and a learner enrolled after the roster was cached is still delivered."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Stack, canonical

ALL_ONCE = {"result": 1, "attendance": 1, "passed": 1, "completed": 1, "approved": 1}
LEARNERS = 12
COURSE = "601"
REQUESTS = "GET /api/v1/Opleidingsvraagonderdelen"
PARTICIPATIONS = "GET /api/v1/Opleidingsonderdeeluitvoeringen"
PERSONS = "GET /api/v1/Personen"


def learner(n: int) -> dict[str, Any]:
    return {"id": 3000 + n, "externId": f"R{n}", "firstName": "L", "lastName": str(n)}


def enrolment(n: int) -> dict[str, Any]:
    return {"id": 8000 + n, "personId": 3000 + n, "trainingId": 601}


def cohort(clean: Stack) -> None:
    clean.seed(
        {
            "persons": [learner(n) for n in range(LEARNERS)],
            "trainings": [
                {
                    "id": 601,
                    "components": [{"id": 9601, "elearningCourseId": COURSE}],
                }
            ],
            "enrolments": [enrolment(n) for n in range(LEARNERS)],
        }
    )


def complete(clean: Stack, n: int) -> str:
    return clean.enqueue(canonical(person_id=f"R{n}", course_id=COURSE, event_id=f"roster-{n}"))


def test_a_burst_for_one_course_is_resolved_from_one_roster_read(clean: Stack) -> None:
    cohort(clean)
    rids = [complete(clean, n) for n in range(LEARNERS)]
    for rid in rids:
        assert clean.settle(rid).state == "delivered"
    state = clean.state()
    for row in state["enrolmentComponents"]:
        assert row["writes"] == ALL_ONCE, row
    by_route = state["requests"]["byRoute"]
    # A worker process whose token an earlier test's simulator reset revoked sends its first
    # request twice (401, new token, again): at most one request more per token fetched.
    again = by_route["POST /auth/connect/token"]
    # The first completion is looked up directly (3 reads); every other one comes from the one
    # roster read (one page of each entity, one page of persons by id): 12 reads of each entity
    # without rosters.
    reads = (by_route[REQUESTS], by_route[PARTICIPATIONS], by_route[PERSONS])
    assert 6 <= sum(reads) <= 6 + again and max(reads) <= 2 + again, by_route
    puts = sum(n for route, n in by_route.items() if route.startswith("PUT"))
    assert 2 * LEARNERS <= puts <= 2 * LEARNERS + again  # one per entity per completion


def test_a_learner_enrolled_after_the_roster_was_cached_is_still_delivered(clean: Stack) -> None:
    cohort(clean)
    for n in range(2):  # the second one reads the roster
        assert clean.settle(complete(clean, n)).state == "delivered"
    before = clean.state()["requests"]["byRoute"]
    cached = cached_rosters(clean)
    assert len(cached) == 1  # the course's roster, read by the second completion
    late = LEARNERS + 1
    clean.seed({"persons": [learner(late)], "enrolments": [enrolment(late)]})
    record = clean.settle(complete(clean, late))
    assert record.state == "delivered", record
    assert clean.component(8000 + late, 9601)["writes"] == ALL_ONCE
    # The cached roster did not know the learner: the direct look-ups found the enrolment.
    after = clean.state()["requests"]["byRoute"]
    assert after[REQUESTS] == before[REQUESTS] + 1
    assert after[PARTICIPATIONS] == before[PARTICIPATIONS] + 1
    assert cached_rosters(clean) == cached  # used as it was, not read again


def cached_rosters(clean: Stack) -> dict[bytes, Any]:
    keys = [k for k in clean.redis.scan_iter("gs:cache:roster:*") if not k.endswith(b":lock")]
    return {k: clean.redis.get(k) for k in keys}
