"""One region of the sandbox stack: its registry events' way into the state table, and its
replicator's way out (``sandbox.inprocess.RegionHalf``'s model, on the moto server).

In: the region's outbox (its registry events) → delivery quirks → the IoT rule's Step Functions
action → its persist state machine (real ASL, real handler) → its replica of the state table.
Out: its replica's stream → the event source mapping emulation → ``pipeline.replicate`` → its
registry. One way, the source region has only the way in and the destination only the way out;
two-way, each region has both (``sandbox.provision``). ``sandbox.stack`` joins the two halves
with the Global Table emulation and pumps them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.aws import ClientFactory
from sandbox import topicrules
from sandbox.emulation import (
    DeliveryQuirks,
    DrainReport,
    EventSourceMapping,
    ExecutionTimeoutError,
    JsonDict,
    Outbox,
    StreamCursor,
    StreamHandler,
    call_handler,
    start_executions,
    wait_for_executions,
)
from sandbox.failures import queue_messages
from sandbox.provision import REPLICATE_HANDLER, SandboxResources

Progress = Callable[[int], None]


def real_replicator(resources: SandboxResources, region: str) -> StreamHandler:
    """The replicator's Lambda handler in ``region``, with the environment its stack gives it."""
    env = resources.replicator_environment(region)

    def handler(event: JsonDict) -> Any:
        return call_handler(REPLICATE_HANDLER, event, env, "replicate")

    return handler


class StackHalf:
    """One region of the sandbox: its persist path and its replicator, where it has them."""

    def __init__(
        self,
        region: str,
        resources: SandboxResources,
        outbox: Outbox,
        client: ClientFactory,
        *,
        replicator: StreamHandler | None,
        max_retry_attempts: int,
    ) -> None:
        self.region = region
        self.outbox = outbox
        self._client = client
        self.failure_queue_url = dict(resources.failure_queues()).get(region)
        self.state_machine_arn = (
            resources.state_machine_in(region) if self.failure_queue_url else None
        )
        self.reject_queue_url = dict(resources.reject_queues()).get(region)
        stream_arn = (
            resources.source_stream_arn
            if region == resources.source_region
            else resources.destination_stream_arn
        )
        self.mapping = (
            None
            if replicator is None
            else EventSourceMapping(
                StreamCursor(client("dynamodbstreams", region), stream_arn),
                replicator,
                region,
                max_retry_attempts=max_retry_attempts,
            )
        )
        self._left_running: list[str] = []  # executions a round stopped waiting for
        self._seen: set[str] = set()  # executions a round counted or waits for

    @property
    def persists(self) -> bool:
        """Whether this region's own registry events have a way into the table."""
        return self.state_machine_arn is not None

    def deliver(self, quirks: DeliveryQuirks, timeout: float, leave_running: bool) -> DrainReport:
        """The IoT rule: this region's events → its persist executions, waited for until
        finished. With ``leave_running``, executions still running after ``timeout`` are counted
        (``executions_running``) and left: the next call lists and waits for them again.
        Otherwise they raise ``ExecutionTimeoutError``."""
        report = DrainReport()
        if self.state_machine_arn is None:
            return report
        events = self.outbox.take()
        report.events_published = len(events)
        topicrules.deliver(self.region, events)  # rules created through the API, if any
        sfn = self._client("stepfunctions", self.region)
        # Executions started by anyone else since the last round (`iot-crr apply`, `reconcile
        # --apply`) are counted too, running or already finished, and those a previous round
        # left running (counted once, when they finish): the pump's counts add up to what
        # apply started. (Listing only the RUNNING ones missed every execution that finished
        # before the round looked, so the pump showed fewer than apply had started.)
        left, self._left_running = self._left_running, []
        arns = [*left, *self._started_since(sfn)]
        if events:
            outcome = quirks.apply(events)
            report.events_dropped = outcome.dropped
            report.events_duplicated = outcome.duplicated
            report.events_delivered = len(outcome.delivered)
            arns += start_executions(sfn, self.state_machine_arn, outcome.delivered)
        self._seen.update(arns)
        if not arns:
            return report
        outputs: dict[str, Any] = {}
        try:
            statuses = wait_for_executions(sfn, arns, timeout=timeout, outputs=outputs)
        except ExecutionTimeoutError as late:
            if not leave_running:
                raise
            statuses = late.finished
            self._left_running = late.running
            report.executions_running = len(late.running)
        report.executions.update(statuses.values())
        report.persisted.update(
            str(output.get("outcome")) for output in outputs.values() if isinstance(output, dict)
        )
        return report

    def _started_since(self, sfn: Any) -> list[str]:
        """The executions of this region's persist state machine not seen by a round yet,
        oldest first. ListExecutions lists the most recent first (AWS Step Functions API
        Reference, ListExecutions: "Results are sorted by time, with the most recent execution
        first"; moto sorts by start date the same way), so the listing stops at the first one
        seen. The state machine is Express, as deployed, whose executions AWS does not list
        (same page: "not supported by EXPRESS state machines"); moto lists them, and only the
        sandbox's own harness reads them here, never the pipeline."""
        new: dict[str, None] = {}
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.state_machine_arn
        ):
            for execution in page["executions"]:
                if execution["executionArn"] in self._seen:
                    return list(reversed(new))
                new[execution["executionArn"]] = None
        return list(reversed(new))

    def replicate(self, progress: Progress | None = None) -> DrainReport:
        """This region's replicator on its replica's stream: one poll of its event source
        mapping. ``progress`` is told how many records it has applied so far, after each
        batch."""
        if self.mapping is None:
            return DrainReport()

        def on_batch(report: DrainReport) -> None:
            if progress is not None:
                progress(report.records_applied)

        return self.mapping.poll(on_batch)

    def persist_failures(self) -> list[tuple[str, JsonDict]]:
        """(message id, body) of every message in this region's persist failure queue."""
        if self.failure_queue_url is None:
            return []
        return queue_messages(self.region, self.failure_queue_url)

    def replicator_rejects(self) -> list[tuple[str, JsonDict]]:
        """(message id, body) of every message in this region's replicator reject queue."""
        if self.reject_queue_url is None:
            return []
        return queue_messages(self.region, self.reject_queue_url)
