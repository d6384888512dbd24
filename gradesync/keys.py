"""Every Redis key gradesync writes, in one place: all under ``gs:``, so one Redis can hold
gradesync beside other tenants and an operator can see at a glance what is whose."""

from __future__ import annotations

import hashlib
from typing import Any

PREFIX = "gs:"

# The ledger (gradesync/ledger.py): records, history, event ids and their indexes.
RECORD = f"{PREFIX}rec:"
HISTORY = f"{PREFIX}hist:"
EVENT_ID = f"{PREFIX}eid:"
STATE = f"{PREFIX}state:"
ALL = f"{PREFIX}all"
DUE = f"{PREFIX}due"
OUTBOX = f"{PREFIX}outbox"
DEFERRED = f"{PREFIX}deferred"

# The xAPI Statement endpoint (producers/xapi_statements.py): each statement id it took, with
# its content digest (a resent batch is recognised, a reused id is a conflict), and the grade
# of a cmi5 ``passed`` for the ``completed`` of the same registration.
XAPI_STATEMENT = f"{PREFIX}xapi:stmt:"
XAPI_PASSED = f"{PREFIX}xapi:passed:"
XAPI_VOIDED = f"{PREFIX}xapi:voided:"

# The broker (celeryconfig.py): kombu's Redis transport keeps a queue as one list per priority
# step, the plain name for 0 (the highest) and ``name + SEP + step`` for the others. Pinned here
# (and in celeryconfig's transport options) so the queue's depth is read from every list.
QUEUE = "gradesync"
PRIORITY_STEPS = (0, 3, 6, 9)
PRIORITY_SEP = "\x06\x16"
# A chain's steps that start Coachview work (the LMS fetch, the look-ups) wait behind every
# write step already queued: records are finished depth-first, so a day's budget running out
# finds records fully written rather than every record half-resolved.
STARTING_PRIORITY = 6


def queue_lists(queue: str = QUEUE) -> list[str]:
    """The Redis lists holding ``queue``'s messages, highest priority first."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS]


def queue_depth(r: Any, queue: str = QUEUE) -> int:
    """Messages waiting in ``queue``, over all its priority lists (one round trip)."""
    with r.pipeline(transaction=False) as pipe:
        for name in queue_lists(queue):
            pipe.llen(name)
        return sum(int(n) for n in pipe.execute())


# Coachview: the shared daily budget, the 429 pause and rate-limit gate, the look-up cache.
BUDGET = f"{PREFIX}budget"
GATE_PAUSE = f"{PREFIX}gate:pause"
GATE_TAT = f"{PREFIX}gate:tat"
CACHE = f"{PREFIX}cache:"

# Metrics written by workers and beat, read by the ingress's /metrics.
METRICS_COACHVIEW = f"{PREFIX}metrics:coachview"
METRICS_RETRY_PASS = f"{PREFIX}metrics:retry_pass"
METRICS_FAILED = f"{PREFIX}metrics:failed"
METRICS_FAILED_BY_INSTALLATION = f"{PREFIX}metrics:failed_by_installation"

# celery-redbeat: beat's schedule and the lock that keeps it to one instance.
REDBEAT = f"{PREFIX}redbeat"
BEAT_LOCK = f"{REDBEAT}:lock"


def ilias_cursor(instance: str) -> str:
    return f"{PREFIX}cursor:ilias:{instance}"


def ilias_poll_lock(instance: str) -> str:
    return f"{PREFIX}lock:ilias:{instance}"


# Records an operator purged: reconciliation never brings them back (issue 26).
TOMBSTONES = f"{PREFIX}tombstones"


def reconcile(installation: str, part: str) -> str:
    """Reconciliation's own keys per installation (``kind/instance``): ``state`` (cursor and the
    pass under way), ``settled_at:{course}`` (learner → completion time), ``open:{course}``,
    ``found``, ``last``, ``lock``."""
    return f"{PREFIX}reconcile:{installation}:{part}"


def webhook_id(source: str, msg_id: str) -> str:
    """A Standard Webhooks id seen by the ingress (hashed: the caller chose it)."""
    return f"{PREFIX}webhook:{source}:{hashlib.sha256(msg_id.encode()).hexdigest()[:32]}"


def console_revoked(csrf: str) -> str:
    """A console session ended by logging out (its cookie stays signed until it expires)."""
    return f"{PREFIX}console:revoked:{hashlib.sha256(csrf.encode()).hexdigest()[:32]}"


def console_login_attempts(kind: str, who: str) -> str:
    """Console login attempts per client address or per user name (hashed: the caller chose
    it, and a name or address is personal data)."""
    return f"{PREFIX}console:login:{kind}:{hashlib.sha256(who.encode()).hexdigest()[:32]}"


def text(value: Any) -> str:
    """A Redis reply as text (redis-py returns bytes unless told otherwise)."""
    return value.decode() if isinstance(value, bytes) else str(value)
