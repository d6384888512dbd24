"""Course rosters (issue 12, "read less"): when one is read, where it places a learner, how it
is shared in Redis, and when the direct look-ups still decide."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import fakeredis
import pytest

from gradesync.coachview.cache import Directory, cache_key
from gradesync.coachview.client import REQUEST_COMPONENT, TooManyRows, Writable
from gradesync.coachview.placement import place
from gradesync.coachview.rosters import READS_KEPT_S, TOO_MANY_READS, Rosters
from gradesync.entities import Component, Participation, Person, RequestComponent
from gradesync.errors import Permanent, Unresolved
from gradesync.roster import (
    DEMAND,
    Placement,
    Roster,
    RosterPerson,
    list_reads,
    place_in_roster,
    wants_roster,
)

FIELDS = ("externId", "id")
COURSE = [Component(id=9001, training_id=501, elearning_code="12")]


def seat(person: int, enrolment: int, **fields: Any) -> tuple[RequestComponent, Participation]:
    ids = {"id": enrolment - 7000, "component_id": 9001, "person_id": person}
    request = RequestComponent(enrolment_id=enrolment, etag='"r"', **ids, **fields)
    return request, Participation(enrolment_id=enrolment, etag='"p"', **ids)


def hashed(key: bytes | str, kind: str) -> bool:
    """A key named by a digest: course ids and rosters are personal data, not key names."""
    digest = (key.decode() if isinstance(key, bytes) else key).removeprefix(f"gs:cache:{kind}:")
    return len(digest) == 24 and all(c in "0123456789abcdef" for c in digest)


def roster(*seats: tuple[int, str | None, int]) -> Roster:
    """(person id, externId, enrolment id) per learner on the course."""
    rows = [seat(person, enrolment) for person, _, enrolment in seats]
    return Roster(
        persons=[
            RosterPerson(id=person, codes={"externId": extern, "id": str(person)})
            for person, extern, _ in seats
        ],
        requests=[r for r, _ in rows],
        participations=[p for _, p in rows],
        reads=3,
    )


# -- the pure decisions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("demand", "ttl", "last_reads", "wanted"),
    [
        (0, 120, None, False),
        (1, 120, None, False),
        (DEMAND, 120, None, True),
        (DEMAND, 120, 6, True),
        # A big course's roster (30 reads): worth it once 10 completions came, not before.
        (DEMAND, 120, 30, False),
        (9, 120, 30, False),
        (10, 120, 30, True),
        (50, 0, None, False),
        (DEMAND, 1, None, True),  # a roster kept one second is still a roster
        (10_000, 120, TOO_MANY_READS, False),
    ],
)
def test_a_roster_is_read_only_for_a_course_in_demand_for_what_it_costs(
    demand: int, ttl: int, last_reads: int | None, wanted: bool
) -> None:
    assert wants_roster(demand, ttl, last_reads) is wanted


@pytest.mark.parametrize(("rows", "reads"), [(0, 1), (99, 1), (100, 2), (250, 3)])
def test_a_full_page_costs_one_more_read(rows: int, reads: int) -> None:
    assert list_reads(rows, 100) == reads


def test_the_roster_places_a_learner_matched_on_the_first_field() -> None:
    match = place_in_roster(roster((1001, "57", 7001), (1002, "58", 7002)), COURSE, "58", FIELDS)
    assert match is not None and match.earlier_fields == ()
    placement = match.placement
    assert (placement.person.id, placement.request.enrolment_id) == (1002, 7002)
    assert placement.participation.enrolment_id == 7002
    assert placement.request.etag == '"r"' and placement.participation.etag == '"p"'


def test_a_match_on_a_later_field_names_the_fields_to_confirm_directly() -> None:
    match = place_in_roster(roster((1001, None, 7001)), COURSE, "1001", FIELDS)
    assert match is not None and match.earlier_fields == ("externId",)


def test_what_the_roster_cannot_place_is_left_to_the_direct_look_ups() -> None:
    assert place_in_roster(roster((1001, "57", 7001)), COURSE, "99", FIELDS) is None
    # In the roster, but its enrolment has no participation (yet): direct.
    no_participation = roster((1001, "57", 7001)).model_copy(update={"participations": []})
    assert place_in_roster(no_participation, COURSE, "57", FIELDS) is None


def test_a_learner_whose_roster_enrolments_are_all_approved_is_looked_up_directly() -> None:
    """A re-take enrolled after the roster was read is not in it: the closed enrolment the
    roster holds must not be taken for this completion's."""
    closed = roster((1001, "57", 7001))
    closed = closed.model_copy(
        update={"requests": [closed.requests[0].model_copy(update={"approved": True})]}
    )
    assert place_in_roster(closed, COURSE, "57", FIELDS) is None


def test_two_roster_persons_with_one_lms_id_are_ambiguous() -> None:
    with pytest.raises(Permanent) as info:
        place_in_roster(roster((1001, "57", 7001), (1002, "57", 7002)), COURSE, "57", FIELDS)
    assert info.value.code == "ambiguous_person"
    assert "field 'externId'" in str(info.value)  # where the operator must look


# -- the roster in Redis ------------------------------------------------------------------------


class Coachview:
    """Answers the roster reads and the direct look-ups from one roster; counts every call."""

    def __init__(self, data: Roster, too_big: bool = False) -> None:
        self.data = data
        self.too_big = too_big
        self.calls: list[str] = []

    def rows(
        self, kind: Writable[Any], component_ids: Sequence[int], person_id: int | None = None
    ) -> list[Any]:
        self.calls.append(f"{kind.what}s" + ("" if person_id is None else " of one"))
        if self.too_big:
            raise TooManyRows("too many")
        rows = self.data.requests if kind is REQUEST_COMPONENT else self.data.participations
        return [r for r in rows if person_id is None or r.person_id == person_id]

    def persons_by_ids(self, ids: Any, fields: Sequence[str]) -> list[RosterPerson]:
        self.calls.append("persons by id")
        return [p for p in self.data.persons if p.id in set(ids)]

    def find_persons(self, field: str, value: str) -> list[Person]:
        self.calls.append(f"person by {field}")
        return [Person(id=p.id) for p in self.data.persons if p.codes.get(field) == value]

    def components_for_course(self, course_id: str) -> list[Component]:
        self.calls.append("components")
        return list(COURSE)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def rosters(client: Coachview, r: Any = None, ttl: int = 120) -> Rosters:
    clock = Clock()
    return Rosters(
        client,  # type: ignore[arg-type]
        r if r is not None else fakeredis.FakeRedis(),
        ttl,
        sleep=clock.sleep,
        clock=clock,
    )


def test_demand_counts_completions_of_a_course_within_the_roster_lifetime() -> None:
    r = fakeredis.FakeRedis()
    store = rosters(Coachview(roster()), r)
    assert [store.wanted("12") for _ in range(3)] == [False, True, True]
    assert store.wanted("312") is False
    [key] = [k for k in r.keys("gs:cache:demand:*") if r.get(k) == b"3"]
    assert 0 < r.ttl(key) <= 120
    assert hashed(key, "demand")
    assert rosters(Coachview(roster()), ttl=0).wanted("12") is False


def test_a_roster_is_read_once_in_three_reads_and_shared_with_hashed_key_and_ttl() -> None:
    r = fakeredis.FakeRedis()
    client = Coachview(roster((1001, "57", 7001), (1002, "58", 7002)))
    first, second = rosters(client, r), rosters(client, r)  # two workers, one Redis
    got = first.get("12", COURSE, FIELDS)
    assert got == client.data
    assert second.get("12", COURSE, FIELDS) == client.data
    assert client.calls == ["request components", "participations", "persons by id"]
    [key] = r.keys("gs:cache:roster:*")
    assert 0 < r.ttl(key) <= 120 and hashed(key, "roster")


def test_a_worker_waits_for_the_roster_another_is_reading_then_reads_directly() -> None:
    r = fakeredis.FakeRedis()
    client = Coachview(roster((1001, "57", 7001)))
    r.set(cache_key("roster", "12", ",".join(FIELDS)) + ":lock", "1")  # another is reading
    assert rosters(client, r).get("12", COURSE, FIELDS) is None  # after WAIT_S
    assert client.calls == []  # it did not read the roster too


def test_a_course_too_big_for_a_roster_is_not_read_again_by_every_worker() -> None:
    r = fakeredis.FakeRedis()
    client = Coachview(roster(), too_big=True)
    assert rosters(client, r).get("12", COURSE, FIELDS) is None
    assert rosters(client, r).get("12", COURSE, FIELDS) is None
    assert client.calls == ["request components"]
    # Nor wanted at all for a day, however many completions come.
    store = rosters(client, r)
    assert not any(store.wanted("12") for _ in range(50))
    [cost] = r.keys("gs:cache:roster-reads:*")
    assert 3600 < r.ttl(cost) <= READS_KEPT_S


def test_a_roster_remembers_what_reading_it_cost() -> None:
    r = fakeredis.FakeRedis()
    rosters(Coachview(roster((1001, "57", 7001))), r).get("12", COURSE, FIELDS)
    [cost] = r.keys("gs:cache:roster-reads:*")
    assert r.get(cost) == b"3"  # one page of each entity, one of persons


# -- roster or direct ---------------------------------------------------------------------------


def placed(client: Coachview, lms_id: str, times: int = 1) -> list[Placement]:
    r = fakeredis.FakeRedis()
    directory = Directory(client, r, 3600)  # type: ignore[arg-type]
    store = rosters(client, r)
    return [place(directory, store, lms_id, "12", FIELDS) for _ in range(times)]


def test_the_first_completion_of_a_course_is_looked_up_directly_then_the_roster_serves() -> None:
    client = Coachview(roster((1001, "57", 7001), (1002, "58", 7002)))
    r = fakeredis.FakeRedis()
    directory = Directory(client, r, 3600)  # type: ignore[arg-type]
    store = rosters(client, r)
    anna = place(directory, store, "57", "12", FIELDS)
    assert client.calls == [
        "person by externId",
        "components",
        "request components of one",
        "participations of one",
    ]
    client.calls.clear()
    bram = place(directory, store, "58", "12", FIELDS)
    assert client.calls == ["request components", "participations", "persons by id"]
    client.calls.clear()
    assert place(directory, store, "57", "12", FIELDS) == anna
    assert client.calls == []  # the third: no request at all
    assert bram.person.id == 1002 and bram.request.enrolment_id == 7002


def test_a_learner_enrolled_after_the_roster_was_read_is_found_directly() -> None:
    client = Coachview(roster((1001, "57", 7001)))
    r = fakeredis.FakeRedis()
    directory = Directory(client, r, 3600)  # type: ignore[arg-type]
    store = rosters(client, r)
    for _ in range(2):
        place(directory, store, "57", "12", FIELDS)
    client.data = roster((1001, "57", 7001), (1003, "59", 7003))  # enrolled just now
    client.calls.clear()
    late = place(directory, store, "59", "12", FIELDS)
    assert late.person.id == 1003 and late.request.enrolment_id == 7003
    assert "request components of one" in client.calls


def test_a_later_field_match_in_the_roster_loses_to_an_earlier_field_match_outside_it() -> None:
    # Person 1001 is on the course and matches LMS id "1001" by id; person 2002, not on the
    # course, holds "1001" as externId: the global match order picks 2002, not enrolled here.
    course = roster((1001, None, 7001), (1002, "58", 7002))
    outsider = RosterPerson(id=2002, codes={"externId": "1001", "id": "2002"})
    client = Coachview(course.model_copy(update={"persons": [*course.persons, outsider]}))
    r = fakeredis.FakeRedis()
    directory = Directory(client, r, 3600)  # type: ignore[arg-type]
    store = rosters(client, r)
    store.wanted("12")
    with pytest.raises(Unresolved) as info:
        place(directory, store, "1001", "12", FIELDS)
    assert info.value.reason == "not_enrolled"
    assert "persons by id" in client.calls and "person by externId" in client.calls


def test_a_later_field_match_in_the_roster_stands_when_no_earlier_field_matches() -> None:
    client = Coachview(roster((1001, None, 7001), (1002, "58", 7002)))
    r = fakeredis.FakeRedis()
    directory = Directory(client, r, 3600)  # type: ignore[arg-type]
    store = rosters(client, r)
    store.wanted("12")
    found = place(directory, store, "1001", "12", FIELDS)
    assert found.person.id == 1001
    assert "person by externId" in client.calls and "request components of one" not in client.calls


def test_a_course_in_demand_whose_roster_another_worker_reads_is_placed_directly() -> None:
    client = Coachview(roster((1001, "57", 7001)))
    r = fakeredis.FakeRedis()
    r.set(cache_key("roster", "12", ",".join(FIELDS)) + ":lock", "1")  # another is reading
    directory = Directory(client, r, 3600)  # type: ignore[arg-type]
    store = rosters(client, r)
    first, second = (place(directory, store, "57", "12", FIELDS) for _ in range(2))
    assert first == second and first.person.id == 1001 and first.request.enrolment_id == 7001
    assert "request components" not in client.calls  # in demand, but no roster was read
