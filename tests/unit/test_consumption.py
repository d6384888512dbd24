"""When a worker counts as no longer taking tasks (gradesync/consumption.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gradesync.consumption import Look, starved_since, stuck

T0 = datetime(2026, 3, 29, 0, 59, 50, tzinfo=UTC)  # across Europe's DST change: UTC keeps on
AFTER = timedelta(seconds=120)


def looks(*rows: tuple[int, int, int], every_s: int = 10) -> datetime | None:
    """Feed (waiting, holding, received) looks taken every ``every_s`` from T0; the last since."""
    since, previous = None, None
    for n, (waiting, holding, received) in enumerate(rows):
        current = Look(T0 + timedelta(seconds=n * every_s), waiting, holding, received)
        since, previous = starved_since(since, previous, current), current
    return since


def test_messages_waiting_and_nothing_taken_starts_the_clock_at_the_second_look() -> None:
    # The first look has nothing to compare its counter with: it never counts.
    assert looks((5, 0, 0)) is None
    assert looks((5, 0, 0), (5, 0, 0)) == T0 + timedelta(seconds=10)
    assert looks((5, 0, 0), (5, 0, 0), (6, 0, 0)) == T0 + timedelta(seconds=10)


def test_a_receipt_a_held_task_or_an_empty_queue_resets_it() -> None:
    assert looks((5, 0, 0), (5, 0, 0), (5, 0, 1)) is None  # it took one since
    assert looks((5, 0, 0), (5, 0, 0), (5, 1, 0)) is None  # it holds one (a long step)
    assert looks((5, 0, 0), (5, 0, 0), (0, 0, 0)) is None  # another worker emptied the queue
    # ...and a later starvation starts its own clock.
    assert looks((5, 0, 0), (5, 0, 0), (0, 0, 0), (5, 0, 0)) == T0 + timedelta(seconds=30)


def test_stuck_exactly_at_the_bound() -> None:
    since = T0
    assert not stuck(None, T0 + timedelta(days=1), AFTER)
    assert not stuck(since, T0 + AFTER - timedelta(microseconds=1), AFTER)
    assert stuck(since, T0 + AFTER, AFTER)
    assert stuck(since, T0 + AFTER + timedelta(seconds=1), AFTER)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), max_size=40))
def test_a_worker_that_keeps_receiving_is_never_starved(
    rows: list[tuple[int, int]],
) -> None:
    fed = [(waiting, holding, n) for n, (waiting, holding) in enumerate(rows, 1)]
    assert looks(*fed) is None


@given(st.integers(2, 40), st.integers(1, 30))
def test_a_deaf_worker_is_stuck_once_the_bound_has_passed(n: int, every_s: int) -> None:
    since = looks(*[(1, 0, 7)] * n, every_s=every_s)
    last = T0 + timedelta(seconds=(n - 1) * every_s)
    assert since == T0 + timedelta(seconds=every_s)
    assert stuck(since, last, AFTER) == (last - since >= AFTER)
