"""Which statements are one statement (xAPI-Data.md 2.3.1, Statement Immutability, and its
Statement Comparison Requirements), as gradesync/xapi_spec.py compares them: the id derived
for a statement without one (moodle-logstore_xapi sends none; a resend must get the same id)
and the digest a resent id is checked against (a difference is a 409).

"Differences which could have been caused by exceptions to Statement immutability MUST be
ignored"; "differences relating to a different serialization of any properties not listed as
exceptions MUST not be ignored". Played on the specification's long example and a Moodle log
store statement (tests/conformance/xapi, each naming its source).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gradesync.xapi_spec import Invalid, check_batch, digest, statement_id

CORPUS = Path(__file__).resolve().parent.parent / "conformance" / "xapi"
Statement = dict[str, Any]
Change = Callable[[Statement], object]


def corpus(name: str) -> Statement:
    (data,) = json.loads((CORPUS / f"{name}.json").read_text())["statements"]
    data.pop("id", None)  # compared by content: the id is derived
    assert isinstance(data, dict)
    return data


LONG = corpus("xapi-spec-group-team-pb")
MOODLE = corpus("moodle-logstore_xapi-course_completed")


def changed(change: Change, data: Statement = LONG) -> Statement:
    data = copy.deepcopy(data)
    change(data)
    return data


def one(a: Statement, b: Statement) -> bool:
    """One statement: the same derived id and the same digest (never one without the other)."""
    same_id, same_digest = statement_id(a) == statement_id(b), digest(a) == digest(b)
    assert same_id == same_digest
    return same_id


def keys_reversed(member: int) -> Change:
    """The group's members in reverse order, one of them with its keys in reverse order too
    (a JSON object's key order means nothing; Ena's is the one whose order would then move)."""

    def change(s: Statement) -> None:
        members = s["actor"]["member"]
        members[member] = dict(reversed(members[member].items()))
        members.reverse()

    return change


def nothing(s: Statement) -> None:
    """The example as it is."""


def object_agent(s: Statement) -> None:
    s.update(object={"objectType": "Agent", "mbox": "mailto:ena@example.com"})


# What an LRS may do to a statement it stores and forwards (each a documented exception).
FORWARDED: dict[str, Change] = {
    "LRS properties set": lambda s: s.update(
        stored="2013-05-19T00:00:00Z",
        authority={"mbox": "mailto:lrs@example.com"},
        version="1.0.3",
    ),
    "attachments": lambda s: s.update(attachments=[{"usageType": "http://x.nl/a", "length": 1}]),
    "verb display": lambda s: s["verb"].update(display={"nl-NL": "bijgewoond"}),
    "activity definition": lambda s: s["object"].pop("definition"),
    "activity definition, no objectType": lambda s: s["object"].pop("definition"),
    "objectType Activity left out": lambda s: s["object"].pop("objectType"),
    "timestamp in another zone and precision": lambda s: s.update(
        timestamp="2013-05-18T07:32:34.804000+02:00"
    ),
    "group members reordered, one's keys too": keys_reversed(2),
    "member objectType Agent left out": lambda s: s["actor"]["member"][1].pop("objectType"),
    "e-mail domain's case": lambda s: s["actor"].update(mbox="mailto:teampb@EXAMPLE.com"),
    "instructor objectType Agent left out": lambda s: s["context"]["instructor"].pop("objectType"),
    "team e-mail domain's case": lambda s: s["context"]["team"].update(
        mbox="mailto:teampb@Example.COM"
    ),
    "contextActivities as one object": lambda s: s["context"]["contextActivities"].update(
        parent=s["context"]["contextActivities"]["parent"][0]
    ),
    "context activity definition": lambda s: s["context"]["contextActivities"]["category"][0].pop(
        "definition"
    ),
    "object Agent's e-mail domain": lambda s: s["object"].update(mbox="mailto:ena@EXAMPLE.com"),
    "object Group's members reordered": lambda s: s["object"]["member"].reverse(),
}
# The statement a variant is made from, where it is not the example itself.
FORWARDED_FROM: dict[str, Change] = {
    "activity definition, no objectType": lambda s: s["object"].pop("objectType"),
    "object Agent's e-mail domain": object_agent,
    "object Group's members reordered": lambda s: s.update(
        object={"objectType": "Group", "member": copy.deepcopy(s["actor"]["member"])}
    ),
}


@pytest.mark.parametrize("name", FORWARDED)
def test_what_an_lrs_may_change_leaves_one_statement(name: str) -> None:
    base = changed(FORWARDED_FROM.get(name, nothing))
    assert one(base, changed(FORWARDED[name], base))


def test_a_statement_with_its_id_has_the_digest_of_the_same_without() -> None:
    """The id is the LRS's to assign; a forwarded copy carries one, the original did not."""
    with_id = {**LONG, "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee"}
    assert digest(with_id) == digest(LONG)
    assert statement_id(with_id) == "6690e6c9-3ef0-4ed3-8b37-7f3964730bee"


# What the author said differently: another statement, never a resend of the first.
OTHER: dict[str, Change] = {
    "another learner in the group": lambda s: s["actor"]["member"][0]["account"].update(
        name="13936750"
    ),
    "an Agent of the group's mailbox": lambda s: s.update(
        actor={"objectType": "Agent", "mbox": s["actor"]["mbox"]}
    ),
    # RFC 5321 2.4: the local part of a mailbox is case-sensitive, only the domain is not.
    "the mailbox's local part in capitals": lambda s: s["actor"].update(
        mbox="mailto:TeamPB@example.com"
    ),
    # ... and the domain is what follows the last "@": a quoted local part may hold one.
    "the quoted local part in capitals": lambda s: s["actor"].update(
        mbox='mailto:"team@PB"@example.com'
    ),
    "another verb": lambda s: s["verb"].update(id="http://adlnet.gov/expapi/verbs/attempted"),
    "another object": lambda s: s["object"].update(id="http://www.example.com/meetings/1"),
    "another Agent as the object": lambda s: s["object"].update(mbox="mailto:toby@example.com"),
    "another instructor": lambda s: s["context"]["instructor"]["account"].update(name="1"),
    "another team": lambda s: s["context"]["team"].update(mbox="mailto:teampc@example.com"),
    "another parent activity": lambda s: s["context"]["contextActivities"]["parent"][0].update(
        id="http://www.example.com/meetings/series/268"
    ),
    "another registration": lambda s: s["context"].update(
        registration="ec531277-b57b-4c15-8d91-d292c5b2b8f8"
    ),
    # xAPI-Data.md 2.3.1: the duration is compared as a string, not as a length of time.
    "the duration written otherwise": lambda s: s["result"].update(duration="PT60M"),
    "another instant": lambda s: s.update(timestamp="2013-05-18T05:32:35.804+00:00"),
}
OTHER_FROM: dict[str, Change] = {
    "the quoted local part in capitals": lambda s: s["actor"].update(
        mbox='mailto:"team@pb"@example.com'
    ),
    "an Agent of the group's mailbox": lambda s: s.update(
        actor={"objectType": "Group", "mbox": s["actor"]["mbox"]}
    ),
    "another Agent as the object": object_agent,
}


@pytest.mark.parametrize("name", OTHER)
def test_what_the_author_said_otherwise_is_another_statement(name: str) -> None:
    base = changed(OTHER_FROM.get(name, nothing))
    assert not one(base, changed(OTHER[name], base))


def test_an_item_of_a_batch_that_is_no_object_is_named_by_its_index() -> None:
    with pytest.raises(Invalid) as caught:
        check_batch([LONG, "statement"])
    assert (caught.value.field, caught.value.message) == ("statements[1]", "must be a JSON object")


@pytest.fixture
def host_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    def switch(zone: str) -> None:
        monkeypatch.setenv("TZ", zone)
        time.tzset()

    yield switch
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("timestamp", ["2013-05-18T05:32:34.804+02:00", "2013-05-18T05:32:34"])
def test_the_derived_id_does_not_depend_on_the_hosts_time_zone(
    host_zone: Callable[[str], None], timestamp: str
) -> None:
    """Two workers in two zones must derive one id for one statement: a zoned timestamp is
    compared as its instant in UTC, a zone-less one as written (the host's zone is no part of
    what the sender meant)."""
    data = changed(lambda s: s.update(timestamp=timestamp))
    host_zone("UTC")
    in_utc = statement_id(data), digest(data)
    host_zone("Pacific/Kiritimati")  # UTC+14
    assert (statement_id(data), digest(data)) == in_utc


def test_a_timestamp_at_the_edge_of_the_calendar_is_compared_as_written() -> None:
    """Year 1 an hour east of UTC has no instant in UTC that Python can write: no crash."""
    early = changed(lambda s: s.update(timestamp="0001-01-01T00:30:00+01:00"))
    assert not one(early, changed(lambda s: s.update(timestamp="0001-01-01T00:30:00+02:00")))


def test_derived_ids_and_digests_are_golden_values(host_zone: Callable[[str], None]) -> None:
    """A log store resends a batch it got no answer to: the ids it is answered and the digests
    stored for them must be those of every earlier version, or a resend after an upgrade is
    recorded anew (or refused as a conflict). Taken with the host at UTC+14. A change that fails
    this test needs a migration of the stored statements first."""
    host_zone("Pacific/Kiritimati")
    unicode = {**MOODLE, "actor": {**MOODLE["actor"], "name": "Zoë Çelik"}}
    assert [(statement_id(s), digest(s)) for s in (MOODLE, LONG, unicode)] == [
        ("a51ec920-57e7-53a7-bd3b-8c5b2d869e82", "e7970c03e90a21f54768326a4a2cb8f9"),
        ("3936bf7f-4bf7-585b-b799-6b850441eaf2", "175a31bfd3ad60456d32c91edd9a4dc9"),
        ("e004a866-b241-54d6-971d-a6dfba4a6609", "e8edf386d4ef113076b8319a28111e62"),
    ]
