"""The ledger: one Redis record per completion key, its history, and the indexes operators use.

Layout (prefix ``gs:``):
- ``rec:{id}``    the record as JSON (``id`` is the completion key's opaque hash)
- ``hist:{id}``   a capped list of history entries (JSON), oldest first
- ``eid:{event_id}``  hash of ``{channel|source|instance}`` → ``"{id} {body-hash}"``: event
  idempotency, scoped per channel, source and installation (see ``record.event_scope``)
- ``state:{state}``   sorted set of ids by last update, one per state: counts and newest-first lists
- ``all``         sorted set of every id by last update
- ``due``         sorted set of ``unresolved`` ids by next attempt (epoch): the daily pass reads
  only what is due, however many records wait
- ``outbox``      sorted set of ids recorded for sending but not yet handed to the broker: a
  crash between the two leaves the id here, and the sweep sends it again
What a change *is* lives in gradesync/transitions.py (pure); here it is applied: each one reads
the record, decides, and writes the record and its indexes in one MULTI/EXEC under WATCH
(redis-py's ``transaction()`` helper retries on a concurrent change), so workers, ingress
processes and beat instances never half-apply a transition or apply one twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, time
from functools import partial
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import redis
from pydantic import BaseModel, Field

from gradesync import keys, transitions
from gradesync.completion_time import CompletedAtSource, CompletionInstant
from gradesync.event import CompletionEvent, CompletionKey, body_hash
from gradesync.keys import text as _text
from gradesync.record import (
    STATES,
    STEP_NAMES,
    Admission,
    Admitted,
    LedgerError,
    Record,
    State,
    Unreadable,
    UnreadableRecord,
    dump,
    event_scope,
    load,
)
from gradesync.settings import Delivery
from gradesync.transitions import Change, hist

HISTORY_CAP = 200
T = TypeVar("T")


class AmbiguousEventId(LookupError):
    def __init__(self, event_id: str, rids: list[str]) -> None:
        super().__init__(
            f"event id {event_id!r} names {len(rids)} records, sent by different sources or "
            "installations: " + ", ".join(rids) + "; give the record id instead"
        )


class Stalled(BaseModel):
    resend: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)


def _pack(entry: dict[str, Any]) -> str:
    """A history entry as ``"<epoch ms, base 36> <what>[ <details JSON>]"``: a quarter of the
    JSON size, which matters at one entry per step for every completion."""
    at = round(datetime.fromisoformat(entry["at"]).timestamp() * 1000)
    details = {k: v for k, v in entry.items() if k not in ("at", "what")}
    text = f"{_base36(at)} {entry['what']}"
    return f"{text} {json.dumps(details, separators=(',', ':'))}" if details else text


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def _unpack(raw: Any) -> dict[str, Any]:
    at, what, *rest = _text(raw).split(" ", 2)
    when = datetime.fromtimestamp(int(at, 36) / 1000, UTC).isoformat(timespec="milliseconds")
    return {"at": when, "what": what, **(json.loads(rest[0]) if rest else {})}


class Ledger:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client

    # -- keys ----------------------------------------------------------------------------------

    @staticmethod
    def _rec(rid: str) -> str:
        return f"{keys.RECORD}{rid}"

    @staticmethod
    def _hist_key(rid: str) -> str:
        return f"{keys.HISTORY}{rid}"

    @staticmethod
    def _eid(event_id: str) -> str:
        return f"{keys.EVENT_ID}{event_id}"

    @staticmethod
    def _state(state: str) -> str:
        return f"{keys.STATE}{state}"

    ALL = keys.ALL
    DUE = keys.DUE
    OUTBOX = keys.OUTBOX
    DEFERRED = keys.DEFERRED

    # -- the one write path ----------------------------------------------------------------------

    def _change(
        self,
        rid: str,
        decide: Callable[[Record | None], tuple[Change, T]],
        watch: tuple[str, ...] = (),
        before: Callable[[Any], T | None] | None = None,
    ) -> T:
        """Read the record, decide (a pure transition), write the change: atomically.

        ``watch``: more keys the decision depends on; ``before``: reads them inside the same
        transaction and may answer without a change (``None``: go on and decide)."""
        key = self._rec(rid)

        def attempt(pipe: Any) -> T:
            if before is not None:
                early = before(pipe)
                if early is not None:
                    return early
            old = load(pipe.get(key), rid)
            change, answer = decide(old)
            pipe.multi()
            self._apply(pipe, old, change)
            return answer

        # redis-py types the callable as returning None; value_from_callable hands its value back.
        return cast(T, self.r.transaction(attempt, key, *watch, value_from_callable=True))  # type: ignore[arg-type]

    def _apply(self, pipe: Any, old: Record | None, change: Change) -> None:
        new = change.record
        if new is not None:
            score = new.updated.timestamp()
            pipe.set(self._rec(new.id), dump(new))
            # Indexes follow state changes only: a step inside a run touches just the record.
            moved = old is None or old.state != new.state
            if moved:
                if old is not None:
                    pipe.zrem(self._state(old.state), new.id)
                pipe.zadd(self._state(new.state), {new.id: score})
                pipe.zadd(self.ALL, {new.id: score})
            elif new.state == "in_progress":  # progress within a run (see take_stalled)
                pipe.zadd(self._state(new.state), {new.id: score})
            if new.state == "unresolved" and new.next_attempt is not None:
                pipe.zadd(self.DUE, {new.id: new.next_attempt.timestamp()})
            elif old is not None and old.state == "unresolved":
                pipe.zrem(self.DUE, new.id)

            if change.outbox:
                pipe.zadd(self.OUTBOX, {new.id: score})
            if change.deferred_until is not None:
                pipe.zadd(self.DEFERRED, {new.id: change.deferred_until.timestamp()})
        rid = new.id if new is not None else (old.id if old is not None else None)
        if rid is not None and change.history:
            hk = self._hist_key(rid)
            pipe.rpush(hk, *(_pack(h) for h in change.history))
            pipe.ltrim(hk, -HISTORY_CAP, -1)
        if change.event_index is not None:
            event_id, scope, value = change.event_index
            pipe.hset(self._eid(event_id), scope, value)

    # -- admission -------------------------------------------------------------------------------

    def admit(
        self,
        event: CompletionEvent,
        now: datetime,
        needs: tuple[str, ...] = (),
        channel: str = "canonical",
        instant_source: CompletedAtSource = "event",
        passed: bool = True,
    ) -> Admission:
        """Record an event for its completion key; say whether a pipeline run must be enqueued.
        ``channel``: where it came in (``canonical``, ``moodle``, …), the event id's namespace;
        ``instant_source``: where its completion instant came from; ``passed`` false: the LMS
        says the learner did not pass (``not_passed``, nothing to enqueue)."""
        rid = event.key.id
        digest = body_hash(event)
        scope = event_scope(event, channel)
        eid = self._eid(event.id)
        index = (event.id, scope, f"{rid} {digest}")
        decide = (
            partial(transitions.admit, needs=needs) if passed else partial(transitions.not_passed)
        )
        admit = partial(
            decide, rid=rid, event=event, now=now, index=index, instant_source=instant_source
        )

        def seen_before(pipe: Any) -> Admission | None:
            # Read under the same WATCH as the record: two bodies with one event id for two
            # different keys cannot both pass this check before either has written the index.
            seen = pipe.hget(eid, scope)
            if seen is None:
                return None
            seen_rid, _, seen_digest = _text(seen).partition(" ")
            existing = load(pipe.get(self._rec(seen_rid)), seen_rid)
            if existing is None:
                return None
            outcome: Admitted = "duplicate" if seen_digest == digest else "conflict"
            return Admission(outcome=outcome, record=existing, enqueue=False)

        return self._change(rid, admit, watch=(eid,), before=seen_before)

    def withdraw(
        self, event_id: str, scope: str, now: datetime, statement: str
    ) -> transitions.Withdrawal:
        """The record an event id (in its channel's ``scope``) was admitted to, voided."""
        seen = self.r.hget(self._eid(event_id), scope)
        if seen is None:
            return "unknown"
        rid = _text(seen).partition(" ")[0]
        return self._change(rid, partial(transitions.withdraw, now=now, statement=statement))

    # -- the pipeline's transitions --------------------------------------------------------------

    def start(self, rid: str, now: datetime) -> Record | None:
        """Mark a run as started; ``None`` (or a closed record) tells the caller not to run."""
        return self._change(rid, partial(transitions.start, now=now))

    def enriched(
        self,
        rid: str,
        now: datetime,
        grade: str | None,
        match_person_id: str | None,
        match_course_id: str | None,
        note: str | None,
        instant: CompletionInstant | None = None,
    ) -> Record | None:
        """Store what the LMS told us (see :func:`gradesync.transitions.enriched`)."""
        return self._change(
            rid,
            partial(
                transitions.enriched,
                now=now,
                grade=grade,
                match_person_id=match_person_id,
                match_course_id=match_course_id,
                note=note,
                instant=instant,
            ),
        )

    def step_done(
        self,
        rid: str,
        step: str,
        now: datetime,
        note: dict[str, Any] | None = None,
        writes: list[dict[str, Any]] | None = None,
    ) -> Record | None:
        """A step is done: a history entry (with the fields it wrote to Coachview, old and
        new: what the console shows on a delivered record); returns the record as it now
        stands. Only an outcome note touches the record itself, so a plain step costs one round
        trip (the history append and the read together), not a transaction."""
        if note is None:
            return self._progress(rid, now, hist(now, step, writes=writes))

        return self._change(
            rid, partial(transitions.noted, step=step, now=now, note=note, writes=writes)
        )

    def shadow_step(
        self, rid: str, step: str, now: datetime, planned: dict[str, Any]
    ) -> Record | None:
        """A write step run in shadow mode: its history entry says what it would have done
        (``would_write`` with each field's old and new value, or ``would_skip`` and why)
        instead of doing it; returns the record as it now stands, as :meth:`step_done` does."""
        what = "would_write" if "writes" in planned else "would_skip"
        return self._progress(rid, now, hist(now, what, step=step, **planned))

    def _progress(self, rid: str, now: datetime, entry: dict[str, Any]) -> Record | None:
        hk = self._hist_key(rid)
        with self.r.pipeline(transaction=False) as pipe:
            pipe.rpush(hk, _pack(entry))
            pipe.ltrim(hk, -HISTORY_CAP, -1)
            # The run made progress: the stall sweep measures from here (see take_stalled).
            pipe.zadd(self._state("in_progress"), {rid: now.timestamp()}, xx=True)
            pipe.get(self._rec(rid))
            *_, raw = pipe.execute()
        return load(raw, rid)

    def note(self, rid: str, now: datetime, what: str, **details: Any) -> None:
        """A history entry that changes nothing else (e.g. ``reconciled``: who found it)."""
        hk = self._hist_key(rid)
        with self.r.pipeline(transaction=False) as pipe:
            pipe.rpush(hk, _pack(hist(now, what, **details)))
            pipe.ltrim(hk, -HISTORY_CAP, -1)
            pipe.execute()

    def steps(self, rid: str) -> list[str]:
        """The pipeline steps done for this record, in the order first done (from history)."""
        done: list[str] = []
        for entry in self.history(rid):
            if entry["what"] in STEP_NAMES and entry["what"] not in done:
                done.append(entry["what"])
        return done

    def deliver(self, rid: str, now: datetime) -> None:
        self._close(rid, now, "delivered", None)

    def fail(self, rid: str, now: datetime, error: LedgerError) -> State | None:
        """``failed``; a shadow run ends ``shadowed`` instead, the error saying what a real
        delivery would have met. Returns the record's state (``None``: no such record)."""
        return self._close(rid, now, "failed", error)

    def shadowed(self, rid: str, now: datetime, approval_date: str) -> None:
        """A shadow run got through: every write it would make is in history (``would_write``),
        dated ``approval_date``; nothing was written."""
        self._change(rid, partial(transitions.shadowed, now=now, approval_date=approval_date))

    def give_up(self, rid: str, now: datetime, error: LedgerError) -> None:
        self._close(rid, now, "given_up", error)

    def _close(
        self, rid: str, now: datetime, state: State, error: LedgerError | None
    ) -> State | None:
        return self._change(rid, partial(transitions.close, now=now, state=state, error=error))

    def unresolved(
        self,
        rid: str,
        now: datetime,
        error: LedgerError,
        *,
        max_retries: int,
        retry_time: time,
        tz: ZoneInfo,
    ) -> State | None:
        """Park a record for the daily pass, or give it up when its daily retries are spent."""

        return self._change(
            rid,
            partial(
                transitions.unresolved,
                now=now,
                error=error,
                max_retries=max_retries,
                retry_time=retry_time,
                tz=tz,
            ),
        )

    def defer(self, rid: str, now: datetime, until: datetime, error: LedgerError) -> None:
        """Back to ``queued`` until ``until`` (Coachview's budget reset): waiting, not failing."""
        self._change(rid, partial(transitions.defer, now=now, until=until, error=error))

    def delivery(self, rid: str, configured: Delivery) -> Delivery:
        """The record's delivery mode; one not decided yet is decided now: ``configured``."""
        return self._change(rid, partial(transitions.delivery, configured=configured))

    def busy_until(self, rid: str, until: datetime) -> None:
        """A run that waits on purpose (a retry countdown) is not stalled before ``until``."""
        self.r.zadd(self._state("in_progress"), {rid: until.timestamp()}, xx=True)

    def take_stalled(
        self, progress_before: datetime, now: datetime, max_stalls: int, limit: int = 1000
    ) -> Stalled:
        """Runs ``in_progress`` with no progress since ``progress_before``: their chain was lost
        (e.g. the next step's message died with Redis). Progress is the last step done, or the
        end of a retry countdown (:meth:`busy_until`). Also ``queued`` records last handed to
        the broker before ``progress_before`` that no step has started, neither in the outbox
        nor deferred: their first message was lost (kombu's Redis transport takes a message off
        the queue and then files it as unacknowledged, two commands: a Redis restart between
        them loses it, seen in the fault suite). Each id goes to one caller.

        A stalled run goes back to ``queued`` (and the outbox, so a crash before sending leaves
        it for the next sweep): its rerun is a new attempt. After ``max_stalls`` re-sends the
        next stall fails the record (``stalled``) instead of sending it round again.
        """
        raw = self.r.eval(
            _TAKE_STALLED,
            4,
            self._state("in_progress"),
            self._state("queued"),
            self.OUTBOX,
            self.DEFERRED,
            progress_before.timestamp(),
            now.timestamp(),
            limit,
        )
        taken = Stalled()
        for rid in (_text(r) for r in raw):
            outcome = self._change(
                rid, partial(transitions.restall, now=now, max_stalls=max_stalls)
            )
            if outcome == "resend":
                taken.resend.append(rid)
            elif outcome == "failed":
                taken.failed.append(rid)
        return taken

    def take_deferred(self, now: datetime, limit: int = 1000) -> list[str]:
        """Deferred records whose time has come, moved to the outbox in one step so a crash
        before sending leaves them for the sweep; each id goes to exactly one caller."""
        raw = self.r.eval(
            _TAKE_DEFERRED,
            3,
            self.DEFERRED,
            self.OUTBOX,
            self._state("queued"),
            now.timestamp(),
            limit,
        )
        return [_text(r) for r in raw]

    def hurry_deferred(self, rids: Sequence[str], now: datetime) -> None:
        """Deferred records due at ``now`` instead of later (only those still deferred)."""
        if rids:
            self.r.zadd(self.DEFERRED, dict.fromkeys(rids, now.timestamp()), xx=True)

    # -- operators ---------------------------------------------------------------------------

    def retry_now(self, rid: str, now: datetime, *, by: str = "") -> Record:
        """Queue an unresolved, failed, given-up or shadowed record again at once (after a data
        fix); ``by``: who asked (the console's user), kept in the history entry."""
        return self._change(rid, partial(transitions.retry_now, rid=rid, now=now, by=by))

    def give_up_now(self, rid: str, now: datetime, reason: str, *, by: str = "") -> Record:
        return self._change(
            rid, partial(transitions.give_up_now, rid=rid, now=now, reason=reason, by=by)
        )

    def purgeable(self, updated_before: datetime, states: tuple[str, ...]) -> list[str]:
        ids: list[str] = []
        for state in states:
            raw = self.r.zrangebyscore(self._state(state), "-inf", updated_before.timestamp())
            ids += [_text(r) for r in raw]
        return ids

    def purge(self, rid: str, states: tuple[str, ...]) -> bool:
        """Delete a closed record, its history and index entries (retention, GDPR/AVG)."""
        key = self._rec(rid)

        def attempt(pipe: Any) -> bool:
            try:
                rec = load(pipe.get(key), rid)
            except UnreadableRecord:
                rec = None  # `gradesync purge --unreadable` is for those
            if rec is None or rec.state not in states:
                return False
            eid = self._eid(rec.event.id)
            # Its event id's entries, whichever channel they came by.
            mine = [f for f, v in pipe.hgetall(eid).items() if _text(v).startswith(f"{rid} ")]
            pipe.multi()
            pipe.delete(key, self._hist_key(rid))
            # The key's hash only (no personal data): reconciliation must not restore it.
            pipe.sadd(keys.TOMBSTONES, rid)
            if mine:
                pipe.hdel(eid, *mine)
            pipe.zrem(self._state(rec.state), rid)
            for index in (self.ALL, self.DUE, self.OUTBOX, self.DEFERRED):
                pipe.zrem(index, rid)
            return True

        return cast(bool, self.r.transaction(attempt, key, value_from_callable=True))  # type: ignore[arg-type]

    # -- the daily pass --------------------------------------------------------------------------

    def due_ids(self, as_of: datetime, limit: int = 1000) -> list[str]:
        raw = self.r.zrangebyscore(self.DUE, "-inf", as_of.timestamp(), start=0, num=limit)
        return [_text(r) for r in raw]

    def requeue_due(
        self, rid: str, as_of: datetime, now: datetime, max_retries: int
    ) -> transitions.Requeued:
        """Take one due record for a daily retry; only one caller per due time can win."""
        return self._change(
            rid,
            partial(transitions.requeue_due, as_of=as_of, now=now, max_retries=max_retries),
        )

    # -- the outbox ------------------------------------------------------------------------------

    def sent(self, rid: str, now: datetime) -> None:
        """The broker has the message: the record no longer needs the outbox, and a queued one
        counts as handed on from ``now`` (:meth:`take_stalled`; a worker may have started it
        already, and then nothing moves)."""
        with self.r.pipeline(transaction=True) as pipe:
            pipe.zrem(self.OUTBOX, rid)
            pipe.zadd(self._state("queued"), {rid: now.timestamp()}, xx=True, gt=True)
            pipe.execute()

    def take_unsent(self, recorded_before: datetime, now: datetime, limit: int = 1000) -> list[str]:
        """Ids recorded before ``recorded_before`` and still not handed to the broker; each goes
        to one caller: taking one counts it as recorded ``now``, so two sweeps at once (beat
        queues one per interval, and a backlog holds several) do not both send it, and one that
        dies before sending leaves it for a sweep a grace later."""
        raw = self.r.eval(
            _TAKE_UNSENT, 1, self.OUTBOX, recorded_before.timestamp(), now.timestamp(), limit
        )
        return [_text(r) for r in raw]

    # -- reading ---------------------------------------------------------------------------------

    def get(self, rid: str) -> Record | None:
        raw = self.r.get(self._rec(rid))
        return load(raw, rid)

    def find(self, text: str) -> Record | None:
        """By record id, by completion key text (``source|instance|person|course``) or event id.

        Raises :class:`AmbiguousEventId` when an event id names records of several sources,
        and :class:`UnreadableRecord` when the record exists but cannot be loaded."""
        text = text.strip()
        rec = self.get(text)
        if rec is None and text.count("|") == 3:
            try:
                key = CompletionKey.from_text(text)
            except ValueError:
                key = None
            if key is not None:
                rec = self.get(key.id)
        if rec is None:
            rids = sorted({_text(v).partition(" ")[0] for v in self.r.hvals(self._eid(text))})
            if len(rids) > 1:
                raise AmbiguousEventId(text, rids)
            if rids:
                rec = self.get(rids[0])
        return rec

    def history(self, rid: str) -> list[dict[str, Any]]:
        return [_unpack(h) for h in self.r.lrange(self._hist_key(rid), 0, -1)]

    def ids(self, state: str, since: datetime | None = None) -> list[str]:
        """Every id in a state (last changed at or after ``since``), oldest change first. Ids
        only: a snapshot that later transitions cannot shift, for :meth:`load_many` to read."""
        low = "-inf" if since is None else since.timestamp()
        return [_text(i) for i in self.r.zrangebyscore(self._state(state), low, "+inf")]

    def load_many(self, ids: Sequence[str], batch: int = 500) -> Iterator[Record | Unreadable]:
        """The records, one ``MGET`` per ``batch`` ids; an unloadable one as
        :class:`Unreadable`, a vanished one (purged meanwhile) skipped."""
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            for rid, raw in zip(chunk, self.r.mget([self._rec(i) for i in chunk]), strict=True):
                try:
                    rec = load(raw, rid)
                except UnreadableRecord as exc:
                    yield Unreadable(id=rid, problems=exc.problems)
                    continue
                if rec is not None:
                    yield rec

    def counts_since(self, since: datetime) -> dict[str, int]:
        """Records per state whose last change was at or after ``since``."""
        with self.r.pipeline(transaction=False) as pipe:
            for state in STATES:
                pipe.zcount(self._state(state), since.timestamp(), "+inf")
            values = pipe.execute()
        return dict(zip(STATES, (int(v) for v in values), strict=True))

    def counts(self) -> dict[str, int]:
        with self.r.pipeline(transaction=False) as pipe:
            for state in STATES:
                pipe.zcard(self._state(state))
            values = pipe.execute()
        return dict(zip(STATES, (int(v) for v in values), strict=True))

    def newest(self, state: State | None = None, limit: int = 50) -> list[Record | Unreadable]:
        """Newest first; a record that cannot be loaded is listed as :class:`Unreadable`."""
        index = self.ALL if state is None else self._state(state)
        ids = [_text(i) for i in self.r.zrevrange(index, 0, max(0, limit - 1))]
        if not ids:
            return []
        raws = self.r.mget([self._rec(i) for i in ids])
        out: list[Record | Unreadable] = []
        for rid, raw in zip(ids, raws, strict=True):
            try:
                rec = load(raw, rid)
            except UnreadableRecord as exc:
                out.append(Unreadable(id=rid, problems=exc.problems))
                continue
            if rec is not None:
                out.append(rec)
        return out

    def remove_unreadable(self, rid: str) -> bool:
        """Delete a record that cannot be loaded (its history and index entries too), so an
        operator can clear what an older version or a damaged write left behind."""
        try:
            self.get(rid)
        except UnreadableRecord:
            pass
        else:
            return False  # absent, or readable: purge, give-up and retry are for those
        with self.r.pipeline() as pipe:
            pipe.delete(self._rec(rid), self._hist_key(rid))
            for state in STATES:
                pipe.zrem(self._state(state), rid)
            for index in (self.ALL, self.DUE, self.OUTBOX, self.DEFERRED):
                pipe.zrem(index, rid)
            pipe.execute()
        return True


# Claims the ids of KEYS[1] scored up to ARGV[1] (ARGV[3] at most): each now scores ARGV[2], so
# a second caller at the same moment finds none of them.
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
end
"""

_TAKE_UNSENT = _CLAIM + "return ids\n"

# The queued index's score is when the record was last handed on to be sent (admitted, queued
# again, taken from the deferred): older than ARGV[1], out of the outbox and not deferred, its
# message should long have started a step. Taken ids count from now (ZADD XX).
_TAKE_STALLED = (
    _CLAIM
    + """
local queued = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(queued) do
  if #ids >= tonumber(ARGV[3]) then break end
  if not redis.call('ZSCORE', KEYS[3], id) and not redis.call('ZSCORE', KEYS[4], id) then
    redis.call('ZADD', KEYS[2], 'XX', ARGV[2], id)
    table.insert(ids, id)
  end
end
return ids
"""
)

_TAKE_DEFERRED = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[1], id)
  redis.call('ZADD', KEYS[3], 'XX', ARGV[1], id)
end
return ids
"""


def utcnow() -> datetime:

    return datetime.now(UTC)
