"""The ILIAS pull: ask one ILIAS installation for learning-progress changes since its own cursor,
kept in Redis under its instance name (so it survives restarts, and installations never share
one).

The cursor moves to the time the poll started; each poll asks from a little before it
(``poll_overlap_s``) so clock drift loses nothing, and the completion key and event id
make the overlap harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from gradesync import keys
from gradesync.ledger import Ledger
from gradesync.lms.ilias import TIMESTAMP_FORMAT, IliasSoap, parse_lp_data
from gradesync.parsed import Completion, Rejected
from gradesync.sources import IliasSource
from gradesync.submit import submit

FIRST_POLL_LOOKBACK = timedelta(days=1)


class PollResult(BaseModel):
    since: str
    completions: int = 0
    new: int = 0
    ignored: int = 0
    # Rows ILIAS sent that are not valid: named in beat's log (ids, never names or grades).
    rejected: list[str] = Field(default_factory=list)


def cursor_key(instance: str) -> str:
    return keys.ilias_cursor(instance)


def poll(
    soap: IliasSoap,
    ledger: Ledger,
    inst: IliasSource,
    now: datetime,
    send: Callable[[str], None],
) -> PollResult:
    """One poll of ``inst`` (one with an API and a user: :attr:`IliasSource.polled`)."""
    if inst.api is None or inst.user is None:
        raise ValueError(f"{inst.name} is not polled: it needs api (url, credential) and user")
    key = cursor_key(inst.instance)
    stored = ledger.r.get(key)
    cursor = (
        datetime.fromisoformat(stored.decode() if isinstance(stored, bytes) else str(stored))
        if stored
        else now - FIRST_POLL_LOOKBACK
    )
    since = (cursor - timedelta(seconds=inst.poll_overlap_s)).astimezone(inst.tz)
    result = PollResult(since=since.strftime(TIMESTAMP_FORMAT))
    sid = soap.login(inst.client, inst.user, inst.api.secret())
    try:
        lp_data = soap.learning_progress_changes(sid, result.since)
    finally:
        soap.logout(sid)
    for parsed in parse_lp_data(lp_data, inst):
        if isinstance(parsed, Completion):
            result.completions += 1
            admission = submit(parsed.event, ledger, send, parsed.needs, channel="ilias")
            result.new += admission.outcome == "created"
        elif isinstance(parsed, Rejected):
            result.rejected.append(parsed.reason)
        else:
            result.ignored += 1
    ledger.r.set(key, now.isoformat())
    return result
