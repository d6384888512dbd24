"""ILIAS: learning-progress changes in, canonical completions out.

Pull (default): the poller (gradesync.lms.ilias_poller) reads ``<LPData>`` through SOAP; the
same documents can be fed to ``gradesync enqueue --source ilias``.
Push: the ``Services/Tracking`` ``updateStatus`` event parameters (``obj_id``, ``usr_id``,
``status``, ``old_status``, ``percentage``, optional ``mark``) forwarded as JSON by a small
event plugin, plus a ``timestamp``. Samples: tests/fixtures/ilias-getLearningProgressChanges.xml,
tests/fixtures/ilias-updateStatus.json.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from gradesync.event import Identifier
from gradesync.lms.ilias import (
    COMPLETED,
    LocalTime,
    completion,
    context,
    parse_lp_data,
    status_text,
)
from gradesync.parsed import Ignored, Parsed
from gradesync.sources import IliasSource, InstanceMismatch


class UpdateStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    obj_id: Identifier
    usr_id: Identifier
    status: int
    old_status: int | None = None
    percentage: int | None = None
    mark: str | None = None
    timestamp: LocalTime
    instance: str | None = None


def parse(data: Any, inst: IliasSource) -> list[Parsed]:
    """An ``<LPData>`` document (text) or one ``updateStatus`` push (JSON object)."""
    if isinstance(data, str | bytes):
        return parse_lp_data(data, inst)
    if not isinstance(data, dict):
        raise ValueError("an ILIAS payload is LPData XML or an updateStatus JSON object")
    update = UpdateStatus.model_validate(data, context=context(inst))
    if update.instance is not None and update.instance != inst.instance:
        # The route names the installation; a body naming another one was sent to the wrong
        # place (or means to file under someone else's installation).
        raise InstanceMismatch("instance", inst)
    if update.status != COMPLETED:
        return [Ignored(reason=f"ILIAS status {status_text(update.status)}")]
    return [completion(inst, update.usr_id, update.obj_id, "", update.timestamp, update.mark)]
