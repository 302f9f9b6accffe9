"""``iot-crr sandbox up``'s pump: the pipeline one round at a time, one line per round, forever.

Flow: ``Sandbox.pump_round`` (events → executions → Global Table → replicator) → ``round_line``
and ``failure_line`` → the console; then what the templates schedule (``Sandbox.run_schedules``:
the destination's pending-deletion task every 5 minutes), on the sandbox's clock, which an idle
pump with deletions pending jumps to the task's next firing (``Sandbox.skip_to_schedule``). The pump ends only when ``stop`` is set (Ctrl-C/SIGTERM in
the CLI). A round slower than its budget is reported and the pump goes on: a burst of registry
calls is work in progress, not a failure (executions still running at the budget are left for
the next round, which waits for them again).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from reconcile.humanize import format_duration
from sandbox import DEFAULT_ROUND_BUDGET
from sandbox.emulation import DrainReport
from sandbox.failures import (
    Failure,
    batch_failure,
    failure_line,
    persist_failure,
    replicator_failure,
)
from sandbox.schedule import PENDING_RATE_SECONDS
from sandbox.stack import Sandbox


def round_line(number: int, report: DrainReport, pending: int, failures: int, took: float) -> str:
    """One console line per round: what moved through each stage, and what is left."""
    executions = sum(report.executions.values())
    not_succeeded = {k: v for k, v in sorted(report.executions.items()) if k != "SUCCEEDED"}
    outcome = (
        f" ({', '.join(f'{v} {k}' for k, v in not_succeeded.items())})" if not_succeeded else ""
    )
    return (
        f"round {number}: {report.events_published} events → {executions} executions{outcome} → "
        f"{report.records_applied} applied; {failures} failures; {pending} pending "
        f"[{format_duration(took)}]"
    )


def schedule_line(result: dict[str, list[str]], skipped: float) -> str:
    """The pending-deletion task's run, when it did or tried something."""
    parts = [
        f"{len(names)} {outcome} ({', '.join(names)})" for outcome, names in result.items() if names
    ]
    return (
        f"pending type deletions (every {format_duration(PENDING_RATE_SECONDS)}; sandbox clock {format_duration(skipped)} "
        f"ahead of wall time): {'; '.join(parts)}"
    )


class FailureWatch:
    """The failures that appeared since the last look: both failure queues (read without
    consuming them, so they stay for the operator) and batches the mapping gave up on."""

    def __init__(self, box: Sandbox) -> None:
        self._box = box
        self._seen_messages: set[str] = set()
        self._seen_batches: dict[int, int] = {}  # per mapping (two-way has two)

    def new(self) -> list[Failure]:
        failures: list[Failure] = []
        for parse, messages in (
            (persist_failure, self._box.persist_failures()),
            (replicator_failure, self._box.replicator_rejects()),
        ):
            for message_id, body in messages:
                if message_id not in self._seen_messages:
                    self._seen_messages.add(message_id)
                    failures.append(parse(body))
        for number, mapping in enumerate(self._box.event_source_mappings()):
            batches = mapping.stats.failed_batches
            failures += [batch_failure(b) for b in batches[self._seen_batches.get(number, 0) :]]
            self._seen_batches[number] = len(batches)
        return failures


def run(
    box: Sandbox,
    stop: threading.Event,
    echo: Callable[[str], None],
    *,
    interval: float = 1.0,
    round_budget: float = DEFAULT_ROUND_BUDGET,
    clock: Callable[[], float] = time.monotonic,
) -> DrainReport:
    """Pump until ``stop`` is set; returns the totals. Busy rounds follow each other at once;
    after an idle round the pump waits ``interval`` (or until stopped)."""
    total = DrainReport()
    watch = FailureWatch(box)
    number = 0
    skipped = 0.0  # idle time the sandbox's clock jumped over
    while not stop.is_set():
        started = clock()
        report = box.pump_round(execution_wait=round_budget)
        took = clock() - started
        failures = watch.new()
        total.add_round(report)
        busy = not report.idle or report.executions_running > 0
        pending = report.executions_running + len(box.outbox(box.source_region))
        if box.two_way:
            pending += len(box.outbox(box.destination_region))
        # A round that only moved bookkeeping (stream records, the destination's own events)
        # is pumped but not printed: every line says something a person can act on.
        moved = report.events_published + sum(report.executions.values()) + report.records_applied
        visible = moved or pending or failures
        if visible:
            number += 1
            echo(round_line(number, report, pending, len(failures), took))
            for failure in failures:
                echo(failure_line(failure))
        # What the templates schedule (the pending-deletion task), on the sandbox's clock.
        scheduled = box.run_schedules()
        if scheduled is not None and any(scheduled.values()):
            echo(schedule_line(scheduled, skipped))
        if took > round_budget:
            echo(
                f"  slow round: {format_duration(took)} (budget {format_duration(round_budget)}); "
                "the pipeline is still moving, pumping on"
            )
        if not busy:
            # Idle with type deletions pending: the sandbox's clock jumps to the task's next
            # firing rather than wait minutes of wall time for it.
            skipped += box.skip_to_schedule()
            stop.wait(interval)  # pacing an idle pump; Ctrl-C/SIGTERM set ``stop``
    return total
