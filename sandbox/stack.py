"""The two-region sandbox as one object: server, emulation, resources and the pump between them.

Flow driven by ``drain()``, one round at a time until a round finds nothing to do:
  source outbox (registry events) ─▶ delivery quirks ─▶ persist state machine (real ASL, real
  handler) ─▶ source state table ══ Global Table emulation ══▶ destination state table ─▶
  event source mapping emulation ─▶ ``pipeline.replicate`` ─▶ destination registry.
The replicator's own calls publish registry events in the destination region; nothing consumes
them (the destination's persist path is not deployed in the one-way sandbox), so they are
discarded each round and counted.

Two-way (``Sandbox(two_way=True)``, ``iot-crr sandbox up --two-way``): the same flow runs the
other way too. Each region's events go to its own persist state machine and replica; the Global
Table emulation copies both ways (last writer wins), a round after the writes or in the same
round at random (seeded: the replication lag); each region's replicator converges its registry
to the items the other region wrote, and the echoes of its own calls reach its persist path,
which recognises them (``pipeline.echo``). ``pause(region)`` plays an outage: that region's
events wait in its outbox, its replicator stops and the Global Table queues both ways until
``resume(region)``.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session

from pipeline import aws
from sandbox import DEFAULT_DESTINATION_REGION, DEFAULT_SOURCE_REGION, emulation, topicrules
from sandbox.emulation import (
    Delivery,
    DeliveryQuirks,
    EventSourceMapping,
    GlobalTableReplication,
    JsonDict,
    Outbox,
    RegistryEmulation,
    StreamCursor,
)
from sandbox.provision import (
    DEFAULT_TABLE_NAME,
    DEFAULT_TYPE_DELETE_DELAY_SECONDS,
    PENDING_HANDLER,
    REPLICATE_HANDLER,
    SandboxResources,
    provision,
)
from sandbox.server import MotoServer

Progress = Callable[[int], None]


class SandboxError(Exception):
    """The sandbox is not in a state to do what was asked."""


class DrainTimeoutError(SandboxError):
    """Work was still arriving when ``drain`` ran out of time."""

    def __init__(self, timeout: float, report: DrainReport) -> None:
        super().__init__(f"the pipeline did not settle within {timeout}s: {report}")
        self.report = report


@dataclass
class DrainReport:
    """What one ``drain()`` moved through the pipeline."""

    rounds: int = 0
    events_published: int = 0
    events_delivered: int = 0
    events_dropped: int = 0
    events_duplicated: int = 0
    executions: Counter[str] = field(default_factory=Counter)
    # What persist decided for each succeeded execution (``pipeline.state.Outcome``): only
    # "applied" and "unchanged" write, so only they reach the stream. A type association that
    # arrives before its thing's CREATED is "stale" (the CREATED carries the type): how many
    # records one event makes depends on the order the executions ran in.
    persisted: Counter[str] = field(default_factory=Counter)
    records_replicated: int = 0
    replicator_invocations: int = 0
    records_applied: int = 0  # entity records the replicator converged (or failed permanently)
    bookkeeping_records: int = 0  # its own echo-ledger / pending-deletion records, skipped
    batch_item_failures: int = 0
    failed_batches: int = 0
    destination_events_discarded: int = 0
    executions_running: int = 0  # left running at the end (``pump_round``): the next round waits

    @property
    def idle(self) -> bool:
        return not (
            self.events_published
            or self.records_replicated
            or self.replicator_invocations
            or self.destination_events_discarded
        )

    def add(self, other: DrainReport) -> None:
        for name in (
            "events_published",
            "events_delivered",
            "events_dropped",
            "events_duplicated",
            "records_replicated",
            "replicator_invocations",
            "records_applied",
            "bookkeeping_records",
            "batch_item_failures",
            "failed_batches",
            "destination_events_discarded",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.executions.update(other.executions)
        self.executions_running = other.executions_running  # a state, not a count: the latest
        self.persisted.update(other.persisted)


StreamHandlerFactory = Callable[[SandboxResources], emulation.StreamHandler]


def _real_replicator(
    resources: SandboxResources, region: str | None = None
) -> emulation.StreamHandler:
    env = resources.replicator_environment(region)

    def handler(event: JsonDict) -> Any:
        return emulation.call_handler(REPLICATE_HANDLER, event, env, "replicate")

    return handler


class Sandbox:
    """A local two-region AWS running the pipeline end to end (see the module docstring)."""

    def __init__(
        self,
        source_region: str = DEFAULT_SOURCE_REGION,
        destination_region: str = DEFAULT_DESTINATION_REGION,
        *,
        table_name: str = DEFAULT_TABLE_NAME,
        delivery: Delivery | None = None,
        port: int = 0,
        type_delete_delay_seconds: int = DEFAULT_TYPE_DELETE_DELAY_SECONDS,
        max_retry_attempts: int = 3,
        replicator: StreamHandlerFactory = _real_replicator,
        two_way: bool = False,
    ) -> None:
        if source_region == destination_region:
            raise SandboxError("the source and destination regions must differ")
        self.source_region = source_region
        self.destination_region = destination_region
        self.table_name = table_name
        self.delivery = delivery or Delivery()
        self.type_delete_delay_seconds = type_delete_delay_seconds
        self.max_retry_attempts = max_retry_attempts
        self._replicator_factory = replicator
        self.two_way = two_way
        self.paused: set[str] = set()  # regions in an outage (``pause``)
        self._lag = random.Random(self.delivery.seed)  # replication in the same round or the next
        self._reverse_mapping: EventSourceMapping | None = None
        self._server = MotoServer(port, regions=(source_region, destination_region))
        self._emulation = RegistryEmulation()
        self._resources: SandboxResources | None = None
        self._quirks = DeliveryQuirks(self.delivery)
        self._replication: GlobalTableReplication | None = None
        self._mapping: EventSourceMapping | None = None
        self._clients: dict[tuple[str, str], Any] = {}
        # executions a round stopped waiting for, per region
        self._left_running: dict[str, list[str]] = {}
        self._botocore_session = botocore.session.get_session()

    def advance_clock(self, seconds: float) -> None:
        """Move the emulated AWS's clock on (e.g. past the 5 minutes DeleteThingType waits after
        a deprecation), so tests never sleep."""
        self._emulation.advance(seconds)

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> Sandbox:
        self._server.start()
        # moto's backends are process-wide and outlive a server: start from empty.
        self._server.reset()
        try:
            emulation.install(self._emulation)
        except emulation.EmulationAlreadyInstalledError:
            self._server.stop()
            raise
        try:
            self._provision()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if emulation.active() is self._emulation:
            emulation.uninstall()
        self._server.stop()
        self._resources = None
        self._clients.clear()

    def reset(self, delivery: Delivery | None = None) -> None:
        """Forget every resource and event, then provision afresh (cheaper than a restart)."""
        self._server.reset()
        self._emulation.clear()
        emulation.FUNCTION_LOG.clear()
        self._left_running = {}
        self.paused.clear()
        if delivery is not None:
            self.delivery = delivery
        self._quirks = DeliveryQuirks(self.delivery)
        self._provision()

    def set_delivery(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self._quirks = DeliveryQuirks(delivery)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _provision(self) -> None:
        resources = provision(
            self.source_region,
            self.destination_region,
            self.table_name,
            self.type_delete_delay_seconds,
            client_factory=self.client,
            two_way=self.two_way,
        )
        self._resources = resources
        regions = {
            resources.source_region: (
                self.client("dynamodb", resources.source_region),
                self.client("dynamodbstreams", resources.source_region),
                resources.source_stream_arn,
            ),
            resources.destination_region: (
                self.client("dynamodb", resources.destination_region),
                self.client("dynamodbstreams", resources.destination_region),
                resources.destination_stream_arn,
            ),
        }
        self._replication = GlobalTableReplication(regions, resources.table_name)
        self._mapping = EventSourceMapping(
            StreamCursor(
                self.client("dynamodbstreams", resources.destination_region),
                resources.destination_stream_arn,
            ),
            self._replicator_factory(resources),
            resources.destination_region,
            max_retry_attempts=self.max_retry_attempts,
        )
        self._reverse_mapping = None
        if resources.reverse is not None:
            self._reverse_mapping = EventSourceMapping(
                StreamCursor(
                    self.client("dynamodbstreams", resources.source_region),
                    resources.source_stream_arn,
                ),
                _real_replicator(resources, resources.source_region),
                resources.source_region,
                max_retry_attempts=self.max_retry_attempts,
            )

    # ---- an outage (two-way failover) ------------------------------------------------------

    def pause(self, region: str) -> None:
        """``region`` goes down: its registry events wait in its outbox (the IoT rule's
        deliveries), its replicator stops, and the Global Table replicates nothing until it is
        back (``resume``), then delivers what was queued: writes a region could not yet
        propagate are kept and propagated when it comes back online (Amazon DynamoDB Developer
        Guide, "Evacuating a Region with DynamoDB global tables", offline MREC tables,
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-global-table-design.prescriptive-guidance.evacuation.html).
        Its registry stays reachable: what to do with it is the caller's."""
        if region not in (self.source_region, self.destination_region):
            raise SandboxError(f"the sandbox has no region {region}")
        self.paused.add(region)

    def resume(self, region: str) -> None:
        self.paused.discard(region)

    # ---- accessors ------------------------------------------------------------------------

    @property
    def resources(self) -> SandboxResources:
        if self._resources is None:
            raise SandboxError("the sandbox is not started")
        return self._resources

    @property
    def endpoint_url(self) -> str:
        return self._server.endpoint_url

    @property
    def state_machine_arn(self) -> str:
        return self.resources.state_machine_arn

    @property
    def event_source_mapping(self) -> EventSourceMapping:
        if self._mapping is None:
            raise SandboxError("the sandbox is not started")
        return self._mapping

    def function_output(self, function_name: str | None = None) -> list[str]:
        """What the functions (or the one named) wrote to stdout: their logs and EMF metrics."""
        return emulation.FUNCTION_LOG.lines(function_name)

    @property
    def invocation_errors(self) -> list[emulation.InvocationError]:
        return self._emulation.invocation_errors

    @property
    def refusals(self) -> Counter[str]:
        """The emulated AWS's refusals met so far, by ``REFUSALS`` key (e.g. a DeletePolicy
        right after a detach), so tests can show a retry path really ran."""
        return self._emulation.refusals

    def failure_reasons(self) -> list[str]:
        """Why work did not get through, one line each, for a test's assertion message: the
        persist failure queue (each message is the event with the error Step Functions caught),
        the replicator's reject queue, the functions' unhandled errors (those Step Functions
        retried included), and the event source mapping's failed batches and raised errors.
        Queue messages are read without being consumed."""
        resources = self.resources
        reasons = [
            f"persist failure queue: {_persist_failure(body)}"
            for region, queue in resources.failure_queues()
            for body in self._peek_queue(region, queue)
        ]
        reasons += [
            f"replicator reject queue: {body}"
            for region, queue in resources.reject_queues()
            for body in self._peek_queue(region, queue)
        ]
        reasons += [
            f"{error.function_name} raised {error.error_type}: {error.message}"
            for error in self.invocation_errors
        ]
        for mapping in self.event_source_mappings():
            reasons += [
                f"event source mapping gave up on {batch}" for batch in mapping.stats.failed_batches
            ]
            reasons += [f"replicator invocation raised {error!r}" for error in mapping.errors]
        return reasons

    def event_source_mappings(self) -> list[EventSourceMapping]:
        """The destination's mapping, and the source's too in two-way."""
        mappings = [self.event_source_mapping]
        if self._reverse_mapping is not None:
            mappings.append(self._reverse_mapping)
        return mappings

    def _peek_queue(self, region: str, queue_url: str) -> list[str]:
        sqs = self.client("sqs", region)
        bodies: dict[str, str] = {}
        handles: list[str] = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                bodies[message["MessageId"]] = message["Body"]
                handles.append(message["ReceiptHandle"])
        for handle in handles:  # visible again: reading is not consuming
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0
            )
        return list(bodies.values())

    def environment(self) -> dict[str, str]:
        return self._server.environment()

    def client(self, service: str, region: str) -> Any:
        """A client of the sandbox endpoint for ``region`` (cached; boto3 clients are thread-safe).

        Same configuration as ``pipeline.aws.client`` (it reads ``AWS_ENDPOINT_URL``), but one
        botocore session for all of them: a fresh session reloads botocore's data files (~0.25 s).
        """
        key = (service, region)
        if key not in self._clients:
            # Creating a client reads os.environ whole: not while a handler's environment is
            # half applied on another thread (``emulation.environment_lock``).
            with emulation.environment_lock():
                session = boto3.session.Session(
                    region_name=region, botocore_session=self._botocore_session
                )
                self._clients[key] = session.client(service, config=aws.client_config())  # type: ignore[call-overload]
        return self._clients[key]

    def iot(self, region: str) -> Any:
        return self.client("iot", region)

    def iot_backend(self, region: str) -> Any:
        """moto's in-process IoT backend of ``region``: for seeding fixtures fast, never for
        code under test (which must go through the API like any client)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.iot.models import iot_backends

        return iot_backends[DEFAULT_ACCOUNT_ID][region]

    def outbox(self, region: str) -> Outbox:
        return self._emulation.outbox(region)

    def persist_failures(self) -> list[tuple[str, JsonDict]]:
        """(message id, body) of every message in the persist failure queue(s), oldest first."""
        return [
            message
            for region, queue in self.resources.failure_queues()
            for message in self._peek(region, queue)
        ]

    def replicator_rejects(self) -> list[tuple[str, JsonDict]]:
        """(message id, body) of every message in the replicator's reject queue(s)."""
        return [
            message
            for region, queue in self.resources.reject_queues()
            for message in self._peek(region, queue)
        ]

    def _peek(self, region: str, queue_url: str) -> list[tuple[str, JsonDict]]:
        # Read through moto's backend, not ReceiveMessage: receiving would hide the messages
        # from the operator's own `aws sqs receive-message` for the visibility timeout.
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[DEFAULT_ACCOUNT_ID][region].get_queue(queue_url.rsplit("/", 1)[-1])
        out = []
        for message in list(queue._messages):
            try:
                body = json.loads(message.body)
            except ValueError:
                body = {"reason": message.body}
            out.append((str(message.id), body if isinstance(body, dict) else {"reason": body}))
        return out

    # ---- the pump -------------------------------------------------------------------------

    def deliver_events(self, timeout: float = 60.0, *, leave_running: bool = False) -> DrainReport:
        """The IoT rule: source-region events → persist executions, waited for until finished
        (two-way: each region's events → its own persist state machine; a paused region's
        events wait).

        With ``leave_running``, executions still running after ``timeout`` are counted
        (``executions_running``) and left: the next call lists and waits for them again.
        Otherwise they raise ``ExecutionTimeoutError``."""
        regions = [self.source_region] + ([self.destination_region] if self.two_way else [])
        report = DrainReport()
        for region in regions:
            if region in self.paused:
                continue
            part = self._deliver_region(region, timeout, leave_running)
            running = report.executions_running + part.executions_running
            report.add(part)
            report.executions_running = running
        return report

    def _deliver_region(self, region: str, timeout: float, leave_running: bool) -> DrainReport:
        report = DrainReport()
        events = self.outbox(region).take()
        report.events_published = len(events)
        topicrules.deliver(region, events)  # rules created through the API, if any
        sfn = self.client("stepfunctions", region)
        state_machine_arn = self.resources.state_machine_in(region)
        # Executions started by anyone else (`iot-crr reconcile --apply`) are waited for too,
        # and those a previous round left running (counted once, when they finish).
        running = {
            execution["executionArn"]
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=state_machine_arn, statusFilter="RUNNING"
            )
            for execution in page["executions"]
        }
        left = self._left_running.pop(region, [])
        arns = [*left, *sorted(running - set(left))]
        if events:
            outcome = self._quirks.apply(events)
            report.events_dropped = outcome.dropped
            report.events_duplicated = outcome.duplicated
            report.events_delivered = len(outcome.delivered)
            arns += emulation.start_executions(sfn, state_machine_arn, outcome.delivered)
        if not arns:
            return report
        outputs: dict[str, Any] = {}
        try:
            statuses = emulation.wait_for_executions(sfn, arns, timeout=timeout, outputs=outputs)
        except emulation.ExecutionTimeoutError as late:
            if not leave_running:
                raise
            statuses = late.finished
            self._left_running[region] = late.running
            report.executions_running = len(late.running)
        report.executions.update(statuses.values())
        report.persisted.update(
            str(output.get("outcome")) for output in outputs.values() if isinstance(output, dict)
        )
        return report

    def replicated(self) -> Counter[str]:
        """Global Table copies so far, by item key prefix (``THING``, ``ECHO``, …)."""
        if self._replication is None:
            raise SandboxError("the sandbox is not started")
        return Counter(self._replication.copied)

    def replicate_tables(self) -> int:
        if self._replication is None:
            raise SandboxError("the sandbox is not started")
        if self.paused:
            return 0  # a region is down: the Global Table queues its writes both ways
        return self._replication.replicate()

    def run_event_source_mapping(self, progress: Progress | None = None) -> DrainReport:
        """The destination's replicator (and two-way, the source's) on its replica's stream; a
        paused region's replicator does not run."""
        report = DrainReport()
        if self.destination_region not in self.paused:
            report.add(self._run_mapping(self.event_source_mapping, progress))
        if self._reverse_mapping is not None and self.source_region not in self.paused:
            report.add(self._run_mapping(self._reverse_mapping, progress))
        return report

    def _run_mapping(
        self, mapping: EventSourceMapping, progress: Progress | None = None
    ) -> DrainReport:
        before = _snapshot(mapping.stats)
        report = DrainReport()

        def on_batch(stats: Any) -> None:
            if progress is not None:
                progress(_snapshot(stats)[0] - before[0])

        report.replicator_invocations = mapping.poll(on_batch)
        after = _snapshot(mapping.stats)
        report.records_applied = after[0] - before[0]
        report.batch_item_failures = after[1] - before[1]
        report.failed_batches = after[2] - before[2]
        report.bookkeeping_records = after[3] - before[3]
        return report

    def pump_round(
        self, execution_wait: float = 60.0, progress: Progress | None = None
    ) -> DrainReport:
        """One round of every stage: events → executions (waited for at most
        ``execution_wait``; later ones are left for the next round) → Global Table → the
        replicator. Never raises for time: a slow round is the caller's to report."""
        report = self.deliver_events(timeout=execution_wait, leave_running=True)
        # Two-way: the Global Table's lag, at random (seeded) a round behind the writes that
        # have just been persisted; a round that persisted nothing always replicates, so a
        # drain never stops with writes left unreplicated.
        lagging = self.two_way and report.events_published and self._lag.random() < 0.5
        if not lagging:
            report.records_replicated = self.replicate_tables()
        running = report.executions_running
        report.add(self.run_event_source_mapping(progress))
        report.executions_running = running
        if not self.two_way:  # one way: nothing consumes the destination's own events
            report.destination_events_discarded = len(self.outbox(self.destination_region).take())
        report.rounds = 1
        return report

    def drain(self, timeout: float = 60.0, progress: Progress | None = None) -> DrainReport:
        """Pump every stage until a whole round finds nothing left anywhere, or raise
        ``DrainTimeoutError`` after ``timeout`` (tests and the demo wait for a settled pipeline;
        ``sandbox up`` pumps round by round instead and never gives up). ``progress`` is told
        how many records the replicator has applied so far, after each batch."""
        total = DrainReport()
        deadline = time.monotonic() + timeout
        while True:
            applied_before = total.records_applied

            def applied(count: int, base: int = applied_before) -> None:
                if progress is not None:
                    progress(base + count)

            round_report = self.pump_round(max(deadline - time.monotonic(), 1.0), applied)
            total.add(round_report)
            total.rounds += 1
            if round_report.idle and not round_report.executions_running:
                return total
            if time.monotonic() > deadline:
                raise DrainTimeoutError(timeout, total)

    def run_pending(self, now: datetime | None = None) -> Any:
        """Run ``pipeline.pending`` (deferred thing-type deletions) as its schedule would, at ``now``.

        The event is an EventBridge Scheduler/Events scheduled event whose ``time`` is ``now``,
        so a test can jump past the deprecation wait without waiting.
        """
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        event = {
            "version": "0",
            "id": "sandbox-pending",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.destination_region,
            "resources": [],
            "detail": {},
        }
        env = self.resources.replicator_environment()
        return emulation.call_handler(PENDING_HANDLER, event, env, "pending")


def _persist_failure(body: str) -> str:
    """The persist state machine's failure record (its input plus ``error``: what Catch caught)
    in one line: the event's type, operation and entity, then the error and its cause."""
    try:
        record = json.loads(body)
    except ValueError:
        return body
    error = record.get("error") or {}
    entity = next(
        (
            str(record[k])
            for k in ("thingName", "thingGroupName", "thingTypeName", "name", "thingArn")
            if k in record
        ),
        "?",
    )
    event = f"{record.get('eventType', '?')} {record.get('operation', '')} {entity}"
    return f"{event}: {error.get('Error', '?')}: {error.get('Cause', '')}"


def _snapshot(stats: emulation.MappingStats) -> tuple[int, int, int, int]:
    return (
        stats.records_applied,
        stats.batch_item_failures,
        len(stats.failed_batches),
        stats.bookkeeping_records,
    )
