"""Nothing personal in a task event: what Flower (and any other event reader) may see.

Celery puts a task's arguments, its return value and its exception text into the events it
sends (``task-received``: ``args``/``kwargs``; ``task-succeeded``: ``result``, the ``saferepr`` of
the return value; ``task-failed``/``task-retried``: ``exception`` and ``traceback``). A pipeline
step's arguments and return value carry the record's facts — LMS and Coachview person ids,
course ids, the grade — and an exception's text may quote a Coachview answer. Rather than make
every task careful, the worker's one event dispatcher rewrites those fields before anything is
published: arguments show only the record id label the pipeline sets (``key=<record id>``),
results are withheld, and a failure shows its exception type only. The ledger (``gradesync
show KEY``) and the worker's log keep what an operator needs.
"""

from __future__ import annotations

import re
from typing import Any

from celery.app.events import Events
from celery.events.dispatcher import EventDispatcher

WITHHELD = "[withheld: see `gradesync show <key>`]"
# What a pipeline step's argsrepr is (see workers/pipeline.py), and the argument-free tasks'.
_SHOWN_ARGS = re.compile(r"(key=[A-Za-z0-9_.:-]{1,200}|\(\)|\[\]|\{\})?")
# The leading exception class name of a repr such as ``Transient('503 from …')``.
_EXC_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def label(rid: str) -> str:
    """The only argument text a step's events may show: the opaque record id."""
    return f"key={rid}"


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    """A task event's fields with everything that could be personal replaced."""
    out = dict(fields)
    for name in ("args", "kwargs"):
        if name in out and not _SHOWN_ARGS.fullmatch(str(out[name])):
            out[name] = WITHHELD
    if "result" in out:
        out["result"] = WITHHELD
    if "exception" in out:
        found = _EXC_TYPE.match(str(out["exception"]))
        out["exception"] = found.group(0) if found else WITHHELD
    if "traceback" in out:
        out["traceback"] = WITHHELD
    return out


class RedactingDispatcher(EventDispatcher):  # type: ignore[misc]
    """Celery's event dispatcher, with every task event's fields passed through :func:`redact`."""

    def send(self, type: str, *args: Any, **fields: Any) -> Any:
        if type.startswith("task-"):
            fields = redact(fields)
        return super().send(type, *args, **fields)


class RedactingEvents(Events):  # type: ignore[misc]
    dispatcher_cls = "workers.privacy:RedactingDispatcher"
