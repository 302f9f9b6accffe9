"""Waiting for a settled pipeline: pump rounds until one finds nothing left anywhere, and give up
only on a pipeline that makes no progress (``settle``, ``Sandbox.drain``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from sandbox import SandboxError
from sandbox.emulation import DrainReport
from sandbox.half import Progress

RoundPump = Callable[[float, Callable[[int], None]], DrainReport]


class DrainTimeoutError(SandboxError):
    """Work was still arriving, and none of it got anywhere, for ``drain``'s timeout."""

    def __init__(self, timeout: float, report: DrainReport) -> None:
        super().__init__(f"the pipeline made no progress for {timeout}s: {report}")
        self.report = report


def settle(
    pump_round: RoundPump,
    timeout: float,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> DrainReport:
    """Pump rounds until one finds nothing left anywhere; raise ``DrainTimeoutError`` once
    ``timeout`` seconds pass without progress. Progress is a record applied or an execution
    ended: a slow machine that keeps applying is not a stuck pipeline (the demo's backfill took
    430 s of a fixed 600 s deadline on an idle 2-core machine and ran out of it under load),
    while work that gets nowhere (a batch retried round after round) still times out."""
    total = DrainReport()
    deadline = clock() + timeout
    while True:
        applied_before = total.records_applied

        def applied(count: int, base: int = applied_before) -> None:
            if progress is not None:
                progress(base + count)

        round_report = pump_round(max(deadline - clock(), 1.0), applied)
        total.add_round(round_report)
        if round_report.idle and not round_report.executions_running:
            return total
        if round_report.records_applied or round_report.executions:
            deadline = clock() + timeout
        elif clock() > deadline:
            raise DrainTimeoutError(timeout, total)
