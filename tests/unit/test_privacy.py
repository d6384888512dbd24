from __future__ import annotations

from workers.privacy import WITHHELD, label, redact


def test_every_task_event_field_that_could_be_personal_is_replaced() -> None:
    ctx = "({'facts': {'person_ref': '57', 'grade': '8.5'}, 'person': 1001}, 'ab12')"
    fields = {
        "uuid": "u-1",
        "args": ctx,
        "kwargs": "{'grade': '8.5'}",
        "result": "{'facts': {'grade': '8.5'}}",
        "exception": 'Permanent(\'update enrolment component: 422 {"resultaat": "8.5"}\')',
        "traceback": 'Traceback …\ngradesync.errors.Permanent: … "8.5"',
        "runtime": 0.25,
    }
    shown = redact(fields)
    assert shown == {
        "uuid": "u-1",
        "args": WITHHELD,
        "kwargs": WITHHELD,
        "result": WITHHELD,
        "exception": "Permanent",
        "traceback": WITHHELD,
        "runtime": 0.25,
    }


def test_the_record_label_and_empty_arguments_stay_visible() -> None:
    fields = {"args": label("3f9a0c"), "kwargs": "{}"}
    assert redact(fields) == fields
    assert redact({"args": "()", "kwargs": ""}) == {"args": "()", "kwargs": ""}
