"""ILIAS: learning-progress changes in, canonical completions out.

Pull (default): SOAP ``getLearningProgressChanges(sid, timestamp, include_ref_ids,
type_filter)`` returns ``lp_data``, an ``<LPData>`` of ``<LPChange UserId ObjId RefIds Timestamp
LPStatus/>`` (ILIAS ``webservice/soap/classes/class.ilSoapLearningProgressAdministration.php``);
``LPStatus`` 0 not attempted, 1 in progress, 2 completed, 3 failed (``ilLPStatus``).
Push: the ``Services/Tracking`` ``updateStatus`` event parameters (``obj_id``, ``usr_id``,
``status``, ``old_status``, ``percentage``, optional ``mark``) forwarded as JSON by a small
event plugin, plus a ``timestamp``. Samples: tests/fixtures/ilias-getLearningProgressChanges.xml,
tests/fixtures/ilias-updateStatus.json.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from xml.etree import ElementTree as ET

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from gradesync.event import CompletionEvent, Identifier, instant_from_epoch, plausible_instant
from gradesync.settings import get_settings
from producers.native import Completion, Ignored, Parsed

COMPLETED = 2
STATUS_NAMES = {0: "not attempted", 1: "in progress", 2: "completed", 3: "failed"}
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def ilias_time(value: Any) -> datetime:
    """ILIAS writes server-local ``YYYY-MM-DD hh:mm:ss``; epoch seconds and ISO also pass."""
    tz = get_settings().ilias_tz
    if isinstance(value, int | float) and not isinstance(value, bool):
        return instant_from_epoch(value, tz)
    if isinstance(value, str):
        try:
            moment = datetime.strptime(value.strip(), TIMESTAMP_FORMAT)
        except ValueError:
            moment = datetime.fromisoformat(value.strip())
        return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    raise ValueError("must be 'YYYY-MM-DD hh:mm:ss', ISO 8601 or epoch seconds")


PlausibleTime = Annotated[datetime, AfterValidator(plausible_instant)]


class LPChange(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    usr_id: Identifier = Field(alias="UserId")
    obj_id: Identifier = Field(alias="ObjId")
    ref_ids: str = Field("", alias="RefIds")
    timestamp: PlausibleTime = Field(alias="Timestamp")
    status: int = Field(alias="LPStatus")

    _time = field_validator("timestamp", mode="before")(ilias_time)


class UpdateStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    obj_id: Identifier
    usr_id: Identifier
    status: int
    old_status: int | None = None
    percentage: int | None = None
    mark: str | None = None
    timestamp: PlausibleTime
    instance: str | None = None

    _time = field_validator("timestamp", mode="before")(ilias_time)


def _completion(usr: str, obj: str, ref_ids: str, at: datetime, mark: str | None) -> Completion:
    s = get_settings()
    course = obj if s.ilias_course_field == "obj_id" else (ref_ids.split(",")[0].strip() or obj)
    event = CompletionEvent.model_validate(
        {
            "source": "ilias",
            "source_instance": s.ilias_instance,
            "event_id": f"ilias-lp-{obj}-{usr}-{int(at.timestamp())}",
            "person_id": usr,
            "course_id": course,
            "grade": mark or None,
            "completed_at": at,
        }
    )
    # ILIAS's free-text LP mark is not in getLearningProgressChanges: sent without a grade.
    return Completion(event=event)


def parse_lp_data(xml: str | bytes) -> list[Parsed]:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"lp_data is not XML: {exc}") from exc
    if root.tag != "LPData":
        raise ValueError(f"expected <LPData>, got <{root.tag}>")
    out: list[Parsed] = []
    for node in root.iter("LPChange"):
        change = LPChange.model_validate(node.attrib)
        if change.status != COMPLETED:
            name = STATUS_NAMES.get(change.status, str(change.status))
            out.append(Ignored(reason=f"ILIAS LPStatus {change.status} ({name})"))
            continue
        out.append(
            _completion(change.usr_id, change.obj_id, change.ref_ids, change.timestamp, None)
        )
    return out


def parse(data: Any) -> list[Parsed]:
    """An ``<LPData>`` document (text) or one ``updateStatus`` push (JSON object)."""
    if isinstance(data, str | bytes):
        return parse_lp_data(data)
    if not isinstance(data, dict):
        raise ValueError("an ILIAS payload is LPData XML or an updateStatus JSON object")
    update = UpdateStatus.model_validate(data)
    if update.status != COMPLETED:
        name = STATUS_NAMES.get(update.status, str(update.status))
        return [Ignored(reason=f"ILIAS status {update.status} ({name})")]
    return [_completion(update.usr_id, update.obj_id, "", update.timestamp, update.mark)]
