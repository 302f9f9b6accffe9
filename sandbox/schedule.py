"""What the stacks schedule, on the sandbox's clock: the pending-deletion task.

The destination stack runs ``pipeline.pending`` (deferred thing-type deletions) every
``PENDING_RATE_SECONDS``. The sandbox runs it when its firing is due on the emulated AWS's clock
of waits (``RegistryEmulation.wait_clock``; ``Sandbox.run_schedules``), and an idle sandbox
jumps that clock to the next firing (``Sandbox.skip_to_schedule``): AWS's 5-minute wait and the
schedule's, without minutes of wall time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.kinds.thing_type import PendingTypeDeletion
from pipeline.statetable import StateTable
from sandbox import emulation
from sandbox.emulation import RegistryEmulation
from sandbox.provision import PENDING_HANDLER, SandboxResources

PENDING_RATE_SECONDS = 300
"""How often the destination stack runs the pending-deletion task: infra/destination.yaml's
PendingFunction, ``Schedule: rate(5 minutes)`` (tests/sandbox check the two agree)."""


class PendingSchedule:
    """The pending-deletion task's schedule on ``clock``'s wait clock: every
    ``PENDING_RATE_SECONDS`` from the sandbox's start (``start``)."""

    def __init__(self, clock: RegistryEmulation) -> None:
        self._clock = clock
        self._next = 0.0  # the next firing

    def start(self) -> None:
        self._next = self._clock.wait_clock() + PENDING_RATE_SECONDS

    def fired(self) -> float | None:
        """The time of the firing due now, the schedule moved past it; None if none is due
        since the last one. Firings missed while busy are one run, as Lambda's reserved
        concurrency of 1 makes them."""
        now = self._clock.wait_clock()
        if now < self._next:
            return None
        fired = self._next
        while self._next <= now:
            self._next += PENDING_RATE_SECONDS
        return fired

    def until_next(self) -> float:
        """Seconds until the next firing (0 if it is due)."""
        return max(self._next - self._clock.wait_clock(), 0.0)


def pending_deletions(table: StateTable, region: str) -> list[PendingTypeDeletion]:
    """The pending type deletions of ``region``'s replicator in ``table`` (its region's
    replica); a malformed one is left out (the task reports it)."""
    return [
        pending
        for pending in table.records(PendingTypeDeletion, PendingTypeDeletion.prefix(region))
        if isinstance(pending, PendingTypeDeletion)
    ]


def run_pending(resources: SandboxResources, moment: datetime, region: str) -> Any:
    """Run ``pipeline.pending`` in ``region`` as its schedule would at ``moment``: the event is
    an EventBridge Scheduler/Events scheduled event whose ``time`` is ``moment``, so a test can
    jump past the deprecation wait without waiting."""
    event = {
        "version": "0",
        "id": "sandbox-pending",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": {},
    }
    env = resources.replicator_environment(region)
    return emulation.call_handler(PENDING_HANDLER, event, env, "pending")
