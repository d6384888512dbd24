"""Cached identity look-ups: a course's components once for all its learners, a person once
per TTL. Only hits are cached, so a person or course added to Coachview is found at once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import redis
from pydantic import TypeAdapter

from gradesync import keys
from gradesync.coachview.client import CoachviewClient
from gradesync.entities import Component, Person
from gradesync.matching import choose_person, elearning_components, no_person

PREFIX = keys.CACHE
_components = TypeAdapter(list[Component])


def cache_key(kind: str, *parts: str) -> str:
    # Hashed: LMS person ids are personal data and stay out of key names.
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
    return f"{PREFIX}{kind}:{digest}"


def find_person(
    client: CoachviewClient, lms_person_id: str, fields: Sequence[str]
) -> tuple[str, Person] | None:
    """The Coachview person with this LMS id on the first match field that has one (and which
    field), uncached: what the pipeline caches and `gradesync diagnose` asks afresh."""
    for field in fields:
        found = choose_person(field, client.find_persons(field, lms_person_id))
        if found is not None:
            return field, found
    return None


class Directory:
    def __init__(self, client: CoachviewClient, cache: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.cache = cache
        self.ttl_s = ttl_s

    def _get(self, key: str) -> str | None:
        if not self.ttl_s:
            return None
        hit = self.cache.get(key)
        return None if hit is None else hit.decode() if isinstance(hit, bytes) else str(hit)

    def _put(self, key: str, value: str) -> None:
        if self.ttl_s:
            self.cache.set(key, value, ex=self.ttl_s)

    def person(self, lms_person_id: str, fields: Sequence[str]) -> Person:
        # One entry for the whole match order: a learner matched on a later field costs
        # no look-ups on the earlier ones next time.
        key = cache_key("person", ",".join(fields), lms_person_id)
        hit = self._get(key)
        if hit is not None:
            return Person.model_validate_json(hit)
        matched = find_person(self.client, lms_person_id, fields)
        if matched is None:
            raise no_person(fields)
        self._put(key, matched[1].model_dump_json())
        return matched[1]

    def components(self, course_id: str) -> list[Component]:
        key = cache_key("course", course_id)
        hit = self._get(key)
        if hit is not None:
            return _components.validate_json(hit)
        found = elearning_components(course_id, self.client.components_for_course(course_id))
        self._put(key, json.dumps([c.model_dump() for c in found]))
        return found
