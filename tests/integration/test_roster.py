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
    # The first completion is looked up directly (3 reads); every other one comes from the one
    # roster read (one page of each entity, one page of persons by id).
    assert (by_route[REQUESTS], by_route[PARTICIPATIONS], by_route[PERSONS]) == (2, 2, 2)
    puts = sum(n for route, n in by_route.items() if route.startswith("PUT"))
    assert puts == 2 * LEARNERS  # one per entity per completion


def test_a_learner_enrolled_after_the_roster_was_cached_is_still_delivered(clean: Stack) -> None:
    cohort(clean)
    for n in range(2):  # the second one reads the roster
        assert clean.settle(complete(clean, n)).state == "delivered"
    assert clean.state()["requests"]["byRoute"][REQUESTS] == 2
    late = LEARNERS + 1
    clean.seed({"persons": [learner(late)], "enrolments": [enrolment(late)]})
    record = clean.settle(complete(clean, late))
    assert record.state == "delivered", record
    assert clean.component(8000 + late, 9601)["writes"] == ALL_ONCE
    # The cached roster did not know the learner: the direct look-ups found the enrolment.
    assert clean.state()["requests"]["byRoute"][REQUESTS] == 3
