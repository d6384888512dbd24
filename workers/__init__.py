"""gradesync's Celery workers: ``celery -A workers worker|beat|flower``."""

from workers import reconcile as _reconcile  # noqa: F401  (registers reconciliation's task)
from workers import schedule as _schedule  # noqa: F401  (registers beat's tasks)
from workers import tasks as _tasks  # noqa: F401  (registers the pipeline's tasks)
from workers import watchdog as _watchdog  # noqa: F401  (a worker that takes no tasks exits)
from workers.app import app

__all__ = ["app"]
