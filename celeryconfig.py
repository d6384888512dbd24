"""Celery settings for gradesync. Each one is here to keep work from being lost or doubled."""

from __future__ import annotations

from celery.schedules import crontab

from gradesync import keys
from gradesync.reconcile.config import effective, reconcilable
from gradesync.settings import get_settings

_s = get_settings()

broker_url = _s.redis_url
broker_connection_retry_on_startup = True


def _retries_within(seconds: float, start: float = 2, step: float = 2, most: float = 30) -> int:
    """How many of kombu's reconnect attempts (2 s, 4 s, … 30 s apart: ensure_connection's
    defaults) fit in ``seconds``."""
    n, waited, interval = 0, 0.0, start
    while waited + interval <= seconds:
        waited, n, interval = waited + interval, n + 1, min(interval + step, most)
    return max(n, 1)


# A worker that lost Redis reconnects for GRADESYNC_BROKER_GIVE_UP_S, then exits ("Retry limit
# exceeded") for its supervisor to restart it — never a process alive without a broker.
broker_connection_max_retries = _retries_within(_s.broker_give_up_s)
# Redis redelivers an unacknowledged message after this long. It must exceed the longest a
# task can hold a message: a step plus its transient-retry countdowns (minutes). We never
# schedule ETAs near it: daily retries come from the ledger's due index, not from countdowns.
broker_transport_options = {
    "visibility_timeout": _s.visibility_timeout_s,
    # How often a worker looks for messages a dead worker left unacknowledged (after the
    # visibility timeout). kombu's default is ~100 s between real scans.
    "unacked_restore_interval": _s.restore_interval_s,
    "unacked_restore_throttle": 1,
    # A worker killed while holding the restore lock blocks every other worker's restore until
    # the lock expires (kombu's default: 300 s). A restore takes milliseconds.
    "unacked_mutex_expire": 15,
    # Notice a Redis that went away without closing the connection.
    "health_check_interval": 25,
    # kombu's defaults, pinned: gradesync reads the queue's depth from these lists (keys.py).
    "priority_steps": list(keys.PRIORITY_STEPS),
    "sep": keys.PRIORITY_SEP,
}


# A worker publishes each chain's next step itself, right after the step. Celery's default
# publish retry (3 retries 0.2 s apart, under a second) dropped that message during a Redis
# restart, and the run waited for the stall sweep. Retry for about half a minute instead
# (0 + 0.5 + 1 + 1.5 + 2 + … s, 2 s apart at most; measured: see
# tests/faults/test_redis_restart.py); the step has already written, so waiting is right.
task_publish_retry_policy = {
    "max_retries": 18,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 2,
}

# Ack only after the step has run, and put the message back if the worker process dies, so a
# killed worker loses nothing; every step is idempotent, so a rerun writes nothing twice.
task_acks_late = True
task_reject_on_worker_lost = True
# Take one message at a time: a dying worker then holds at most one unacked step.
worker_prefetch_multiplier = 1

# JSON only: no pickle from the broker.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
event_serializer = "json"

# The ledger records every outcome; chains pass values along without a result backend.
task_ignore_result = True
result_backend = None

task_default_queue = keys.QUEUE
# Flower reads these events.
worker_send_task_events = True

task_track_started = True

timezone = _s.timezone
enable_utc = True

# One beat only: RedBeat keeps the schedule in Redis behind a lock, so a second beat waits.
beat_scheduler = "workers.beat:Scheduler"
redbeat_redis_url = _s.redis_url
redbeat_key_prefix = keys.REDBEAT
redbeat_lock_key = keys.BEAT_LOCK
beat_max_loop_interval = 60
redbeat_lock_timeout = 5 * beat_max_loop_interval
beat_schedule = {
    "gradesync-daily-retry": {
        "task": "gradesync.retry_pass",
        "schedule": crontab(hour=_s.retry_time.hour, minute=_s.retry_time.minute),
    },
    "gradesync-sweep": {
        "task": "gradesync.sweep",
        "schedule": _s.sweep_interval_s,
    },
    # One poll per ILIAS installation with an API and a user, each at its own interval.
    **{
        f"gradesync-ilias-poll-{inst.instance}": {
            "task": "gradesync.poll_ilias",
            "schedule": inst.poll_interval_s,
            "args": (inst.instance,),
        }
        for inst in _s.sources.ilias_polled()
    },
    # Reconciliation per Moodle installation, nightly at its own time (GRADESYNC_TIMEZONE).
    **{
        f"gradesync-reconcile-{inst.kind}-{inst.instance}": {
            "task": "gradesync.reconcile",
            "schedule": crontab(
                hour=effective(inst, _s).at.hour, minute=effective(inst, _s).at.minute
            ),
            "args": (inst.kind, inst.instance),
        }
        for inst in reconcilable(_s.sources.installations)
    },
}

# Our logs are structured JSON on stderr already; do not wrap them in Celery's log lines.
worker_hijack_root_logger = False
worker_redirect_stdouts = False
