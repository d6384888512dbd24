"""``gradesync sim-data``: fix the simulator's data as an administrator fixes Coachview's — a
person with the LMS person id as external id, an enrolment on a training, the LMS course id
on a training's e-learning component — without reading ``coachview_sim/demo-seed.json``.

Each change is a ``POST /_sim/seed`` fragment built from what the simulator holds
(``GET /_sim/seed``): new ids follow the highest in use, and a training is sent back whole (the
simulator replaces a training seeded again, components included).
"""

from __future__ import annotations

from typing import Any

import httpx

Data = dict[str, Any]


class SimDataError(ValueError):
    """The change names something the simulator does not hold (said in the message)."""


def _next_id(rows: list[Data], floor: int) -> int:
    return max([floor, *(int(r["id"]) for r in rows)]) + 1


def person_by_extern_id(data: Data, extern_id: str) -> Data:
    for person in data["persons"]:
        if person.get("externId") == extern_id:
            return dict(person)
    raise SimDataError(f"no person has external id {extern_id!r} (add one: sim-data person)")


def add_person(data: Data, extern_id: str, first: str, last: str) -> Data:
    """A person whose external id is the LMS person id (what gradesync matches on)."""
    if any(p.get("externId") == extern_id for p in data["persons"]):
        raise SimDataError(f"a person with external id {extern_id!r} exists already")
    person = {
        "id": _next_id(data["persons"], 1000),
        "externId": extern_id,
        "firstName": first,
        "lastName": last,
    }
    return {"persons": [person]}


def enrol(data: Data, extern_id: str, training_id: int) -> Data:
    person = person_by_extern_id(data, extern_id)
    if not any(t["id"] == training_id for t in data["trainings"]):
        known = ", ".join(f"{t['id']} ({t['name']})" for t in data["trainings"])
        raise SimDataError(f"no training {training_id}; there are: {known}")
    enrolment = {
        "id": _next_id(data["enrolments"], 7000),
        "personId": person["id"],
        "trainingId": training_id,
    }
    return {"enrolments": [enrolment]}


def set_course(data: Data, component_id: int, course_id: str) -> Data:
    """The LMS course id as the e-learning code of a training's component."""
    for training in data["trainings"]:
        if any(c["id"] == component_id for c in training["components"]):
            components = [
                c | {"elearningCourseId": course_id} if c["id"] == component_id else c
                for c in training["components"]
            ]
            return {"trainings": [training | {"components": components}]}
    raise SimDataError(f"no component {component_id}: `gradesync sim-data show` lists them")


def describe(data: Data) -> list[str]:
    """The simulator's persons, trainings (components, course ids) and enrolments."""
    names = {p["id"]: f"{p['firstName']} {p['lastName']}".strip() for p in data["persons"]}
    lines = ["persons (external id = LMS person id):"]
    lines += [
        f"  {p['id']}  external id {p.get('externId') or '-'}  {names[p['id']]}"
        for p in data["persons"]
    ]
    lines.append("trainings (e-learning code = LMS course id):")
    for t in data["trainings"]:
        lines.append(f"  {t['id']}  {t['name']}")
        lines += [
            f"    component {c['id']}  {c['name']}  "
            f"e-learning code {c.get('elearningCourseId') or '-'}"
            for c in t["components"]
        ]
    lines.append("enrolments:")
    lines += [
        f"  {e['id']}  {names.get(e['personId'], e['personId'])} on training {e['trainingId']}"
        for e in data["enrolments"]
    ]
    return lines


def fetch(sim_url: str) -> Data:
    response = httpx.get(f"{sim_url.rstrip('/')}/_sim/seed", timeout=10)
    response.raise_for_status()
    data: Data = response.json()
    return data


def send(sim_url: str, fragment: Data) -> None:
    response = httpx.post(f"{sim_url.rstrip('/')}/_sim/seed", json=fragment, timeout=10)
    if response.status_code == 422:
        raise SimDataError(f"the simulator refused it: {response.json().get('detail')}")
    response.raise_for_status()
