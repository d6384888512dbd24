"""Throughput and cost of the pipeline against a bare Celery chain, in one run.

    python -m benchmarks.pipeline [--completions 2000] [--workers 2]
    python -m benchmarks.pipeline --mode retry-pass [--due 1000] [--pending 10000 100000]
                                  [--repeats 3]

``pipeline`` starts its own redis-server, simulator (no latency, no budget) and one worker with
``--workers`` processes, then runs (a) N chains of no-op tasks as long as the real chain — the
baseline — and (b) N real completions; it prints completions/s for both and their ratio,
end-to-end latency, Coachview requests and Redis commands per completion, CPU time per
completion of each process (Redis, simulator, workers, this driver) for both runs, and ledger
bytes per record. ``retry-pass`` times the daily retry pass (median of ``--repeats``) with a
fixed number due among growing numbers of pending records.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import cpu
from benchmarks.requests_per_completion import events, seed
from benchmarks.stack import BenchStack
from gradesync.procs import start_redis, wait_until
from gradesync.record import Record

CHAIN_LENGTH = 4  # fetch_from_lms, resolve, write_participation, write_request_component
MINIMUM_REQUESTS = 2  # one PUT per entity (token, course and rosters amortised)


def commands(stack: BenchStack) -> int:
    stats = stack.ledger.r.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


def baseline(stack: BenchStack, n: int) -> float:
    # Deferred: Celery and the no-op tasks read the stack's REDIS_URL on import.
    from celery import chain

    from benchmarks.noop import DONE, done, noop

    r = stack.ledger.r
    r.delete(DONE)
    started = time.perf_counter()
    for i in range(n):
        rid = f"b{i}"
        steps = [noop.si({}, rid)] + [noop.s(rid) for _ in range(CHAIN_LENGTH - 2)]
        chain(*steps, done.s(rid)).apply_async()
    wait_until(lambda: int(r.get(DONE) or 0) >= n, timeout=1800, interval=0.1)
    return n / (time.perf_counter() - started)


def ledger_bytes(stack: BenchStack, sample: int = 200) -> float:
    r, ledger = stack.ledger.r, stack.ledger
    records = [rec for rec in ledger.newest(limit=sample) if isinstance(rec, Record)]
    sizes = []
    for rec in records:
        keys = [f"gs:rec:{rec.id}", f"gs:hist:{rec.id}", f"gs:eid:{rec.event.id}"]
        sizes.append(sum(int(r.memory_usage(k) or 0) for k in keys))
    return statistics.mean(sizes)


def run_pipeline(n: int, workers: int) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        BenchStack(Path(tmp), workers, extra=("-I", "benchmarks.noop")) as stack,
    ):
        stack.reset()
        stack.config(daily_budget=10_000_000)
        stack.seed(seed(n, 10))
        trees = {p.name: p.popen.pid for p in stack.procs}
        cpu_start = cpu.snapshot(trees)
        base = baseline(stack, n)
        cpu_base = cpu.snapshot(trees)
        before = commands(stack)
        started = time.perf_counter()
        latencies = stack.deliver(events(n, 10), "rest", timeout=1800)
        real = n / (time.perf_counter() - started)
        cpu_real = cpu.snapshot(trees)
        redis_per = (commands(stack) - before) / n
        requests = stack.state()["requests"]["total"]
        latencies.sort()
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"completions: {n}, worker processes: {workers}")
        print(f"baseline (bare {CHAIN_LENGTH}-task chain): {base:8.1f} completions/s")
        print(f"pipeline (against the simulator): {real:8.1f} completions/s")
        print(f"ratio pipeline/baseline:          {real / base:8.2f}   (target >= 0.5)")
        print(f"end-to-end latency p50 / p99:     {p50 * 1000:6.0f} ms / {p99 * 1000:.0f} ms")
        per = requests / n
        print(
            f"Coachview requests/completion:    {per:8.2f}   (minimum {MINIMUM_REQUESTS}, "
            f"{per / MINIMUM_REQUESTS - 1:+.1%})"
        )
        print(f"Redis commands/completion:        {redis_per:8.1f}")
        print(f"CPU ms/completion, baseline:      {cpu.report(cpu_start, cpu_base, n)}")
        print(f"CPU ms/completion, pipeline:      {cpu.report(cpu_base, cpu_real, n)}")
        print(f"ledger bytes/record:              {ledger_bytes(stack):8.0f}   (target <= 1024)")
    os._exit(0)


def run_retry_pass(due: int, pendings: list[int], repeats: int) -> None:
    # Deferred: settings are read on import; this mode sets its own REDIS_URL first.
    import redis

    from gradesync.event import CompletionEvent
    from gradesync.ledger import Ledger
    from gradesync.record import LedgerError, Record
    from workers.schedule import run_retry_pass as retry_pass

    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    error = LedgerError(code="unknown_person", message="no Coachview person has this LMS id")
    timings: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        from gradesync.procs import free_port  # deferred with the imports above

        port = free_port()
        env = dict(os.environ)
        proc = start_redis(port, Path(tmp), env)
        try:
            client = redis.Redis(port=port)
            ledger = Ledger(client)
            for pending, _ in itertools.product(pendings, range(repeats)):
                client.flushdb()
                pipe = client.pipeline(transaction=False)
                for i in range(pending):
                    event = CompletionEvent.model_validate(
                        {
                            "source": "moodle",
                            "event_id": f"p{i}",
                            "person_id": f"u{i}",
                            "course_id": "12",
                            "grade": "7",
                            "completed_at": now.isoformat(),
                        }
                    )
                    when = now + (timedelta(hours=1) if i < due else timedelta(days=3))
                    rec = Record(
                        id=event.key.id,
                        event=event,
                        state="unresolved",
                        first_seen=now,
                        updated=now,
                        next_attempt=when,
                        last_error=error,
                        attempts=1,
                    )
                    pipe.set(f"gs:rec:{rec.id}", rec.model_dump_json())
                    pipe.zadd("gs:state:unresolved", {rec.id: now.timestamp()})
                    pipe.zadd("gs:due", {rec.id: when.timestamp()})
                    if i % 5000 == 4999:
                        pipe.execute()
                pipe.execute()
                started = time.perf_counter()
                result = retry_pass(ledger, now + timedelta(hours=2), 30, lambda rid: None)
                timings.setdefault(pending, []).append(time.perf_counter() - started)
                assert result.requeued == due, result
        finally:
            proc.stop()
    # The median of a few passes: one pass takes under a second, and a shared machine's
    # hiccups alone move a single timing by a fifth.
    median = {pending: statistics.median(times) for pending, times in timings.items()}
    for pending, times in timings.items():
        runs = ", ".join(f"{t:.3f}" for t in times)
        print(f"pending {pending:>7}, due {due}: retry pass {median[pending]:.3f} s  ({runs})")
    small, large = min(pendings), max(pendings)
    print(f"ratio {large} / {small} pending: {median[large] / median[small]:.2f}   (target <= 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["pipeline", "retry-pass"], default="pipeline")
    parser.add_argument("--completions", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--pending", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3, help="retry passes per size (median)")
    args = parser.parse_args()
    if args.mode == "pipeline":
        run_pipeline(args.completions, args.workers)
    else:
        run_retry_pass(args.due, args.pending, args.repeats)


if __name__ == "__main__":
    main()
