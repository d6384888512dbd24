"""Reconciliation's figures on /metrics, read from Redis at each scrape (any process may have run
it): per installation the last run, the next, and the completions no webhook delivered."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gradesync.ledger import Ledger, utcnow
from gradesync.reconcile.figures import figures
from gradesync.settings import Settings


class ReconcileCollector(Collector):
    def __init__(self, ledger: Ledger, settings: Settings) -> None:
        self.ledger = ledger
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        label = ["installation"]
        last = GaugeMetricFamily(
            "gradesync_reconcile_last_run_timestamp_seconds",
            "When reconciliation last ran (0: never)",
            labels=label,
        )
        finished = GaugeMetricFamily(
            "gradesync_reconcile_last_run_finished",
            "1 when the last run did every course; 0 when the call cap or the LMS stopped it",
            labels=label,
        )
        recorded = GaugeMetricFamily(
            "gradesync_reconcile_last_run_recorded",
            "Completions the last run recorded that the ledger lacked",
            labels=label,
        )
        calls = GaugeMetricFamily(
            "gradesync_reconcile_last_run_lms_calls", "LMS calls the last run made", labels=label
        )
        upcoming = GaugeMetricFamily(
            "gradesync_reconcile_next_run_timestamp_seconds",
            "When beat runs reconciliation next",
            labels=label,
        )
        missed = GaugeMetricFamily(
            "gradesync_reconcile_missed_by_webhook",
            "Completions of the last 7 days only reconciliation delivered (after the grace "
            "period): 0 while the webhook works",
            labels=label,
        )
        refused = GaugeMetricFamily(
            "gradesync_reconcile_last_run_courses_refused",
            "Courses the LMS refused to read in the last run (hidden, a capability missing): "
            "0 when every course was read",
            labels=label,
        )
        for f in figures(self.ledger, self.settings, utcnow()):
            name = [f.installation]
            run = f.last_run
            last.add_metric(name, 0 if run is None else run.at.timestamp())
            finished.add_metric(name, 1 if run is not None and run.finished else 0)
            recorded.add_metric(name, 0 if run is None else run.recorded)
            calls.add_metric(name, 0 if run is None else run.calls)
            upcoming.add_metric(name, f.next_run.timestamp())
            missed.add_metric(name, f.missed_by_webhook)
            refused.add_metric(name, 0 if run is None else len(run.failed_courses))
        yield from (last, finished, recorded, calls, upcoming, missed, refused)


_collector: ReconcileCollector | None = None


def refresh(ledger: Ledger, settings: Settings) -> None:
    """Register the collector once, for this process's registry; it reads the ledger and
    settings of the latest scrape (one per process in production, one per app in tests)."""
    global _collector
    if _collector is None:
        _collector = ReconcileCollector(ledger, settings)
        REGISTRY.register(_collector)
    _collector.ledger, _collector.settings = ledger, settings
