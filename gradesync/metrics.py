"""Prometheus metrics. The ingress counts what it receives; everything that happens in other
processes (workers, beat) is kept in Redis and read at scrape time, so one ``/metrics`` shows
the whole system without Prometheus multiprocess files."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from gradesync import keys
from gradesync.keys import text as _text
from gradesync.ledger import Ledger

RECEIVED = Counter(
    "gradesync_completions_received_total",
    "Completion events received by the ingress, by source, installation and admission outcome",
    ["source", "installation", "outcome"],
)
REJECTED = Counter(
    "gradesync_ingress_rejected_total",
    "Requests the ingress refused, by source, installation (unknown: a route naming none in "
    "the sources) and error code",
    ["source", "installation", "error"],
)
XAPI_STATEMENTS = Counter(
    "gradesync_xapi_statements_total",
    "Statements the xAPI Statement endpoint took, by installation, what they were (counted, "
    "not_passed, voiding, ignored, known: a statement id seen before) and, for ignored ones, "
    "why",
    ["installation", "outcome", "reason"],
)

CV_KEY = keys.METRICS_COACHVIEW
PASS_KEY = keys.METRICS_RETRY_PASS
FAILED_KEY = keys.METRICS_FAILED
FAILED_BY_INSTALLATION_KEY = keys.METRICS_FAILED_BY_INSTALLATION
# The installation of a record that could not be read.
UNKNOWN = "unknown"
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def received(source: str, installation: str, outcome: str) -> None:
    RECEIVED.labels(source, installation, outcome).inc()


def rejected(source: str, installation: str, error: str) -> None:
    REJECTED.labels(source, installation, error).inc()


def xapi_statement(installation: str, outcome: str, reason: str = "") -> None:
    XAPI_STATEMENTS.labels(installation, outcome, reason).inc()


class LatencyBuffer:
    """Coachview latencies, added up in the process and written to Redis at most once a
    second, so measuring costs no Redis round trip per request."""

    def __init__(self, flush_every_s: float = 1.0) -> None:
        self.flush_every_s = flush_every_s
        self._counts: dict[str, int] = {}
        self._sums: dict[str, float] = {}
        self._flushed = time.monotonic()

    def observe(self, r: redis.Redis, route: str, status: int, seconds: float) -> None:
        label = f"{route}|{status}"
        bucket = next((str(b) for b in BUCKETS if seconds <= b), "+Inf")
        key = f"{label}|{bucket}"
        self._counts[key] = self._counts.get(key, 0) + 1
        self._sums[label] = self._sums.get(label, 0.0) + seconds
        if time.monotonic() - self._flushed >= self.flush_every_s:
            self.flush(r)

    def flush(self, r: redis.Redis) -> None:
        counts, sums = self._counts, self._sums
        self._counts, self._sums, self._flushed = {}, {}, time.monotonic()
        if not counts:
            return
        with r.pipeline(transaction=False) as pipe:
            for field, n in counts.items():
                pipe.hincrby(CV_KEY, field, n)
            for label, total in sums.items():
                pipe.hincrbyfloat(CV_KEY, f"{label}|sum", total)
            pipe.execute()


def count_retry_pass(r: redis.Redis, requeued: int, given_up: int) -> None:
    with r.pipeline(transaction=False) as pipe:
        pipe.hincrby(PASS_KEY, "runs", 1)
        pipe.hincrby(PASS_KEY, "requeued", requeued)
        pipe.hincrby(PASS_KEY, "given_up", given_up)
        pipe.execute()


def count_failure(r: redis.Redis, code: str, installation: str = UNKNOWN) -> None:
    """A record of ``installation`` (``kind/instance``) ended ``failed`` in a worker
    (``unexpected_response``, ``rejected``, …)."""
    with r.pipeline(transaction=False) as pipe:
        pipe.hincrby(FAILED_KEY, code, 1)
        pipe.hincrby(FAILED_BY_INSTALLATION_KEY, f"{installation}|{code}", 1)
        pipe.execute()


class SharedCollector(Collector):
    """Reads the cross-process numbers from Redis when Prometheus scrapes."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterator[Any]:
        r = self.ledger.r
        records = GaugeMetricFamily(
            "gradesync_ledger_records", "Ledger records by state", labels=["state"]
        )
        for state, n in self.ledger.counts().items():
            records.add_metric([state], n)
        yield records
        yield GaugeMetricFamily(
            "gradesync_queue_depth",
            "Messages waiting on the broker queue",
            value=keys.queue_depth(r),
        )
        passes = {_text(k): float(v) for k, v in r.hgetall(PASS_KEY).items()}
        for name, help_text in (
            ("runs", "Daily retry passes run"),
            ("requeued", "Records re-enqueued by the daily retry pass"),
            ("given_up", "Records given up by the daily retry pass"),
        ):
            yield CounterMetricFamily(
                f"gradesync_retry_pass_{name}", help_text, value=passes.get(name, 0.0)
            )
        failed = CounterMetricFamily(
            "gradesync_failed_total", "Records a worker ended as failed, by code", labels=["code"]
        )
        for code, count in sorted((_text(k), float(v)) for k, v in r.hgetall(FAILED_KEY).items()):
            failed.add_metric([code], count)
        yield failed
        by_installation = CounterMetricFamily(
            "gradesync_failed_by_installation_total",
            "Records a worker ended as failed, by installation (kind/instance) and code",
            labels=["installation", "code"],
        )
        for field, count in sorted(
            (_text(k), float(v)) for k, v in r.hgetall(FAILED_BY_INSTALLATION_KEY).items()
        ):
            installation, _, code = field.partition("|")
            by_installation.add_metric([installation, code], count)
        yield by_installation
        yield self._latency(r)

    @staticmethod
    def _latency(r: redis.Redis) -> HistogramMetricFamily:
        raw = {_text(k): float(v) for k, v in r.hgetall(CV_KEY).items()}
        series: dict[tuple[str, str], dict[str, float]] = {}
        for field, value in raw.items():
            route, status, bucket = field.rsplit("|", 2)
            series.setdefault((route, status), {})[bucket] = value
        family = HistogramMetricFamily(
            "gradesync_coachview_request_seconds",
            "Coachview request latency by route and status",
            labels=["route", "status"],
        )
        for (route, status), values in sorted(series.items()):
            cumulative, buckets = 0.0, []
            for bound in (*map(str, BUCKETS), "+Inf"):
                cumulative += values.get(bound, 0.0)
                buckets.append((bound, cumulative))
            family.add_metric([route, status], buckets, values.get("sum", 0.0))
        return family


_collector: SharedCollector | None = None


def refresh(ledger: Ledger) -> None:
    """Register the shared collector once, for this process's registry."""
    global _collector
    if _collector is None:
        _collector = SharedCollector(ledger)
        REGISTRY.register(_collector)
