"""``sandbox.settle.settle``: the sandbox waits for a settled pipeline as long as it makes progress,
and gives up on one that makes none (the demo's fixed 600 s deadline failed a slow machine that
was still applying records)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from sandbox.emulation import DrainReport
from sandbox.settle import DrainTimeoutError, settle


class Clock:
    """A clock that moves only when a round is pumped (``pump``'s ``step``)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pump(clock: Clock, rounds: Iterator[DrainReport], step: float) -> Callable[..., DrainReport]:
    def pump_round(_wait: float, _progress: Callable[[int], None]) -> DrainReport:
        clock.now += step
        return next(rounds)

    return pump_round


def busy(applied: int = 0) -> DrainReport:
    return DrainReport(records_replicated=1, replicator_invocations=1, records_applied=applied)


def test_a_pipeline_applying_records_past_the_timeout_is_waited_for_until_it_settles() -> None:
    clock = Clock()
    rounds = iter([busy(applied=10) for _ in range(50)] + [DrainReport()])
    report = settle(pump(clock, rounds, step=10.0), timeout=60.0, clock=clock)
    assert clock.now == 510.0  # far beyond the timeout: every round applied something
    assert report.records_applied == 500


def test_executions_ending_count_as_progress() -> None:
    clock = Clock()
    ended = DrainReport(events_published=1, executions=Counter({"SUCCEEDED": 1}))
    rounds = iter([ended] * 20 + [DrainReport()])
    settle(pump(clock, rounds, step=10.0), timeout=30.0, clock=clock)
    assert clock.now == 210.0


def test_a_pipeline_making_no_progress_times_out() -> None:
    clock = Clock()
    rounds = iter([busy(applied=5)] + [busy() for _ in range(100)])
    with pytest.raises(DrainTimeoutError, match=r"no progress for 60\.0s") as raised:
        settle(pump(clock, rounds, step=10.0), timeout=60.0, clock=clock)
    assert raised.value.report.records_applied == 5
    assert clock.now == 80.0  # 10 s of progress, then 60 s without, then the round that noticed
