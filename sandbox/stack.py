"""The two-region sandbox as one object: server, emulation, resources and the pump between them.

Flow driven by ``drain()``, one round at a time until a round finds nothing to do:
  source outbox (registry events) ─▶ delivery quirks ─▶ persist state machine (real ASL, real
  handler) ─▶ source state table ══ Global Table emulation ══▶ destination state table ─▶
  event source mapping emulation ─▶ ``pipeline.replicate`` ─▶ destination registry.
The replicator's own calls publish registry events in the destination region; nothing consumes
them (the destination's persist path is not deployed in the one-way sandbox), so they are
discarded each round and counted. Each region's part of the flow is a ``sandbox.half.StackHalf``
(its way in: outbox to state table; its way out: its replica's stream to its registry); this
module joins the halves with the Global Table emulation and pumps them, each round's counts in
one ``DrainReport``.

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

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session

from pipeline import aws
from pipeline.kinds.thing_type import PendingTypeDeletion
from pipeline.statetable import StateTable
from sandbox import DEFAULT_DESTINATION_REGION, DEFAULT_SOURCE_REGION, SandboxError, emulation
from sandbox.emulation import (
    Delivery,
    DeliveryQuirks,
    DrainReport,
    EventSourceMapping,
    GlobalTableReplication,
    JsonDict,
    Outbox,
    RegistryEmulation,
)
from sandbox.failures import (
    Failure,
    batch_failure,
    failure_line,
    invocation_failure,
    persist_failure,
    replicator_failure,
)
from sandbox.half import Progress, StackHalf, real_replicator
from sandbox.provision import (
    DEFAULT_TABLE_NAME,
    DEFAULT_TYPE_DELETE_DELAY_SECONDS,
    SandboxResources,
    provision,
)
from sandbox.schedule import PendingSchedule, pending_deletions, run_pending
from sandbox.server import MotoServer
from sandbox.settle import settle

StreamHandlerFactory = Callable[[SandboxResources], emulation.StreamHandler]


def _real_replicator(resources: SandboxResources) -> emulation.StreamHandler:
    return real_replicator(resources, resources.destination_region)


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
        self._server = MotoServer(port, regions=(source_region, destination_region))
        self._emulation = RegistryEmulation()
        self._resources: SandboxResources | None = None
        self._quirks = DeliveryQuirks(self.delivery)
        self._replication: GlobalTableReplication | None = None
        self._halves: dict[str, StackHalf] = {}  # by region, the source's first: delivery order
        self._schedule = PendingSchedule(self._emulation)  # the pending task's (``run_schedules``)
        self._clients: dict[tuple[str, str], Any] = {}
        self._botocore_session = botocore.session.get_session()

    def advance_clock(self, seconds: float) -> None:
        """Move the emulated AWS's clock on (e.g. past the 5 minutes DeleteThingType waits after
        a deprecation), so tests never sleep."""
        self._emulation.advance(seconds)

    def skip(self, seconds: float) -> None:
        """Jump the clock of AWS's waits and the schedules on (``RegistryEmulation.skip``);
        registry events keep wall-clock timestamps."""
        self._emulation.skip(seconds)

    # ---- what the templates schedule, on the sandbox's clock ----------------------------------

    def run_schedules(self) -> dict[str, list[str]] | None:
        """Run the pending-deletion task if its schedule (``sandbox.schedule``) has fired on the
        sandbox's clock, as of the firing's time; None if it has not fired since the last run."""
        fired = self._schedule.fired()
        if fired is None:
            return None
        result: dict[str, list[str]] = {}
        for region in self._pending_regions():
            done = self.run_pending(datetime.fromtimestamp(fired, UTC), region=region)
            for outcome, names in done.items():
                result.setdefault(outcome, []).extend(names)
        return result

    def skip_to_schedule(self) -> float:
        """An idle sandbox holding pending type deletions jumps its clock to the
        pending task's next firing (AWS's 5-minute wait and the schedule's, without minutes of
        wall time); returns the seconds skipped (0: nothing pending)."""
        if not self.pending_deletions():
            return 0.0
        seconds = self._schedule.until_next()
        self.skip(seconds)
        return seconds

    def pending_deletions(self) -> list[PendingTypeDeletion]:
        """The pending type deletions of every region with a replicator (the destination; in
        two-way the source too), each read in its own region's replica of the state table."""
        return [
            pending
            for region in self._pending_regions()
            for pending in pending_deletions(
                StateTable(self.client("dynamodb", region), self.table_name), region
            )
        ]

    def _pending_regions(self) -> list[str]:
        """The regions whose stack has the pending task: those with a replicator."""
        return [half.region for half in self._replicating() if half.mapping is not None]

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> Sandbox:
        self._server.start()
        # moto's backends are process-wide and outlive a server: start from empty.
        self._server.reset()
        emulation.FUNCTION_LOG.clear()
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
        self._halves = {}
        self._clients.clear()

    def reset(self, delivery: Delivery | None = None) -> None:
        """Forget every resource and event, then provision afresh (cheaper than a restart)."""
        self._server.reset()
        self._emulation.clear()
        emulation.FUNCTION_LOG.clear()
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
        self._schedule.start()
        regions = {
            resources.source_region: resources.source_stream_arn,
            resources.destination_region: resources.destination_stream_arn,
        }
        self._replication = GlobalTableReplication(
            {
                region: (
                    self.client("dynamodb", region),
                    self.client("dynamodbstreams", region),
                    stream_arn,
                )
                for region, stream_arn in regions.items()
            },
            resources.table_name,
        )
        # The destination's replicator always; the source's in two-way.
        replicators = {resources.destination_region: self._replicator_factory(resources)}
        if resources.reverse is not None:
            replicators[resources.source_region] = real_replicator(
                resources, resources.source_region
            )
        self._halves = {
            region: StackHalf(
                region,
                resources,
                self.outbox(region),
                self.client,
                replicator=replicators.get(region),
                max_retry_attempts=self.max_retry_attempts,
            )
            for region in regions
        }

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

    def event_source_mappings(self) -> list[EventSourceMapping]:
        """The destination's mapping, and the source's too in two-way."""
        return [half.mapping for half in self._replicating() if half.mapping is not None]

    @property
    def invocation_errors(self) -> list[emulation.InvocationError]:
        return emulation.FUNCTION_LOG.errors

    @property
    def refusals(self) -> Counter[str]:
        """The emulated AWS's refusals met so far, by ``REFUSALS`` key (e.g. a DeletePolicy
        right after a detach), so tests can show a retry path really ran."""
        return self._emulation.refusals

    def failures(self) -> list[Failure]:
        """Why work did not get through: the persist failure queues (each message is the event
        with the error Step Functions caught), the replicators' reject queues, the functions'
        unhandled errors (those Step Functions retried included), and the event source
        mappings' failed batches and raised errors. Queue messages are read without being
        consumed."""
        failures = [persist_failure(body) for _, body in self.persist_failures()]
        failures += [replicator_failure(body) for _, body in self.replicator_rejects()]
        failures += [invocation_failure(error) for error in self.invocation_errors]
        for mapping in self.event_source_mappings():
            failures += [batch_failure(batch) for batch in mapping.stats.failed_batches]
            failures += [
                Failure("replicator", "invocation", repr(error)) for error in mapping.errors
            ]
        return failures

    def failure_reasons(self) -> list[str]:
        """``failures``, one line each, for a test's assertion message or the demo."""
        return [failure_line(failure).strip() for failure in self.failures()]

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
        return [message for half in self._halves.values() for message in half.persist_failures()]

    def replicator_rejects(self) -> list[tuple[str, JsonDict]]:
        """(message id, body) of every message in the replicator's reject queue(s)."""
        return [message for half in self._halves.values() for message in half.replicator_rejects()]

    def _replicating(self) -> list[StackHalf]:
        """The halves in the order their replicators run: the destination's, then (two-way) the
        source's. The order decides how two-way writes interleave, hence the failover demo's
        figures."""
        return sorted(self._halves.values(), key=lambda h: h.region != self.destination_region)

    # ---- the pump -------------------------------------------------------------------------

    def deliver_events(self, timeout: float = 60.0, *, leave_running: bool = False) -> DrainReport:
        """The IoT rule: source-region events → persist executions, waited for until finished
        (two-way: each region's events → its own persist state machine; a paused region's
        events wait). ``leave_running``: see ``StackHalf.deliver``."""
        report = DrainReport()
        for half in self._halves.values():
            if half.persists and half.region not in self.paused:
                report.add(half.deliver(self._quirks, timeout, leave_running))
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
        for half in self._replicating():
            if half.region not in self.paused:
                report.add(half.replicate(progress))
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
        report.add(self.run_event_source_mapping(progress))
        if not self.two_way:  # one way: nothing consumes the destination's own events
            report.destination_events_discarded = len(self.outbox(self.destination_region).take())
        report.rounds = 1
        return report

    def drain(self, timeout: float = 60.0, progress: Progress | None = None) -> DrainReport:
        """Pump every stage until a whole round finds nothing left anywhere, or raise
        ``DrainTimeoutError`` once ``timeout`` seconds pass without progress (``settle``; tests
        and the demo wait for a settled pipeline; ``sandbox up`` pumps round by round instead and
        never gives up). ``progress`` is told how many records the replicator has applied so far,
        after each batch."""
        return settle(self.pump_round, timeout, progress)

    def run_pending(self, now: datetime | None = None, *, region: str | None = None) -> Any:
        """Run ``pipeline.pending`` (deferred thing-type deletions) as its schedule would, at
        ``now`` (the sandbox's clock unless told), in ``region`` (the destination unless told);
        ``sandbox.schedule.run_pending``."""
        moment = (now or datetime.fromtimestamp(self._emulation.wait_clock(), UTC)).astimezone(UTC)
        return run_pending(self.resources, moment, region or self.destination_region)
