"""The gate's own arithmetic (issue 22's mutation run): the spacing a rate limit gives, the
minute a worker waits at most, in all, and a pause of nothing being no pause."""

from __future__ import annotations

import fakeredis
import pytest

from gradesync.coachview.gate import PAUSE, Gate, Paused


class Sleeps:
    """A sleep that only records (Redis's clock, which the gate reads, does not move)."""

    def __init__(self, most: int = 5) -> None:
        self.slept: list[float] = []
        self.most = most

    def __call__(self, seconds: float) -> None:
        assert len(self.slept) < self.most, "the gate kept sleeping"
        self.slept.append(seconds)


def test_requests_are_spaced_ten_percent_under_the_limit() -> None:
    r = fakeredis.FakeRedis()
    assert Gate(r, 10).interval == pytest.approx(1 / 9)
    assert Gate(r, 0.5).interval == pytest.approx(2 / 0.9)
    assert Gate(r, None).interval == Gate(r, 0).interval == 0.0


def test_a_free_gate_lets_a_request_go_at_once() -> None:
    sleeps = Sleeps()
    assert Gate(fakeredis.FakeRedis(), None, sleep=sleeps).wait_turn() == 0.0
    assert sleeps.slept == []


def test_a_worker_waits_a_minute_at_most_by_default() -> None:
    sleeps = Sleeps()
    gate = Gate(fakeredis.FakeRedis(), None, sleep=sleeps)
    gate.pause(60.5)
    with pytest.raises(Paused):
        gate.wait_turn()
    assert sleeps.slept == []


def test_the_minute_counts_every_wait_together() -> None:
    sleeps = Sleeps()
    gate = Gate(fakeredis.FakeRedis(), None, sleep=sleeps, max_wait_s=60)
    gate.pause(25)
    with pytest.raises(Paused):
        gate.wait_turn()
    assert len(sleeps.slept) == 2  # 25 + 25 s waited; a third would pass the minute


def test_a_pause_of_nothing_writes_nothing() -> None:
    r = fakeredis.FakeRedis()
    Gate(r, None).pause(0)
    Gate(r, None).pause(float("nan"))
    assert r.exists(PAUSE) == 0
    Gate(r, None).pause(5)
    assert r.exists(PAUSE) == 1


def test_a_wait_of_exactly_the_minute_is_waited(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["60", "0"])  # what Redis says: wait 60 s, then go
    sleeps = Sleeps()
    gate = Gate(fakeredis.FakeRedis(), None, sleep=sleeps, max_wait_s=60)
    monkeypatch.setattr(gate, "_acquire", lambda keys, args: next(answers))
    assert gate.wait_turn() == 60.0
    assert sleeps.slept == [60.0]
