"""An in-process two-region pipeline on moto, for the tests and the benchmarks.

persist (``StateTable.apply``) → state table (one table standing for the Global Table and its
destination replica) → its DynamoDB stream → the sandbox's event source mapping
(``sandbox.emulation.EventSourceMapping``) → the replicator's batch handler
(``pipeline.replicate.handle_batch``: Powertools' batch processor) → destination
registry; and reconciliation (``reconcile.engine.Reconciler``: snapshot → diff → plan → emit
via the table) back into the same table. Everything runs in this process under the
caller's ``mock_aws`` (no server, no threads), so one round trip costs milliseconds.

The stream is drained by the same event source mapping as the sandbox's: batches in order, a
batch with reported failures delivered again from its lowest failed record, up to
``max_retry_attempts`` retries, then the on-failure destination (``DrainReport.failed_batches``);
permanent failures go to the ``FailureSink`` and are never retried. Only the replicator is built
here rather than from the environment, so that its converger keeps this pipeline's fake clock:
deferred thing-type deletions complete by moving it forward, never by waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from pipeline import replicate
from pipeline.aws import ClientFactory
from pipeline.clock import to_ms
from pipeline.converge import build_converger
from pipeline.errors import CrrError
from pipeline.failures import FailureSink
from pipeline.ingest import admit, look_up, persist_change
from pipeline.iot import Iot
from pipeline.kinds.shadow_selection import ALL, ShadowSelection
from pipeline.kinds.thing_type import TYPE_DELETE_MARGIN_SECONDS
from pipeline.model import Change, EntityKind
from pipeline.pending import finish_due
from pipeline.replicate import Replicator
from pipeline.state import Outcome
from pipeline.statetable import PersistResult
from reconcile.drift import DriftReport
from reconcile.emit import EmitResult, TableEmitter
from reconcile.engine import Reconciler
from reconcile.guards import Guards
from reconcile.inventory import Inventory
from reconcile.ratelimit import RateLimiter
from reconcile.snapshot import Snapshot, take_snapshot
from sandbox.emulation import (
    DrainReport,
    EventSourceMapping,
    GlobalTableReplication,
    LambdaStreamReader,
)

SRC = "us-east-1"
DST = "eu-west-1"
TABLE = "crr-state"
TYPE_DELETE_DELAY_SECONDS = 300
# The mapping's retries of a failing batch before its on-failure destination: ten deliveries in
# all, as this harness's own drain allowed before it drained through the mapping.
MAX_RETRY_ATTEMPTS = 9


def boto3_client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def create_state_table(ddb: Any, name: str = TABLE) -> None:
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


class FakeClock:
    """Epoch seconds that move only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def poll(mapping: EventSourceMapping) -> DrainReport:
    """One poll of ``mapping``: every pending batch once, stopping at a batch that reports
    failures (its retry is the next poll's). A handler that raised is raised here: Lambda would
    retry it, in process it is a bug in the handler."""
    errors = len(mapping.errors)
    report = mapping.poll()
    if len(mapping.errors) > errors:
        raise mapping.errors[errors]
    return report


def drain(mapping: EventSourceMapping) -> DrainReport:
    """Poll ``mapping`` until nothing is left to deliver or retry."""
    total = DrainReport()
    while (report := poll(mapping)).replicator_invocations:
        total.add(report)
    return total


class LocalPipeline:
    """The streaming path and reconciliation, in process, on the caller's ``mock_aws``."""

    def __init__(
        self,
        *,
        client: ClientFactory = boto3_client,
        source_region: str = SRC,
        destination_region: str = DST,
        table_name: str = TABLE,
        clock: FakeClock | None = None,
        create_table: bool = True,
        max_retry_attempts: int = MAX_RETRY_ATTEMPTS,
        policy_account_map: Mapping[str, str] | None = None,
        opt_in: Iterable[EntityKind] = (),
        include: Mapping[EntityKind, tuple[str, ...]] | None = None,
        shadows: ShadowSelection = ALL,
    ) -> None:
        self.source_region = source_region
        self.opt_in = frozenset(opt_in)  # the opt-in kinds its snapshots list (shadows)
        self.include = dict(include or {})  # per kind, the name globs they keep
        # Which shadows and sections its persist step and reconciliation replicate.
        self.shadows = shadows
        self.destination_region = destination_region
        self.clock = clock or FakeClock()
        ddb = client("dynamodb", destination_region)
        if create_table:
            create_state_table(ddb, table_name)
        arn = ddb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        streams = client("dynamodbstreams", destination_region)
        self.stream = LambdaStreamReader(streams, arn, destination_region)
        self.source = client("iot", source_region)
        self.destination = client("iot", destination_region)
        self.client = client  # the factory every client here comes from, iot-data's too
        self.source_registry = Iot(self.source, factory=client)
        self.converger = build_converger(
            destination_region,
            table_name,
            clock=self.clock,
            type_delete_delay_seconds=TYPE_DELETE_DELAY_SECONDS,
            client=client,
            policy_account_map=policy_account_map,
        )
        self.table = self.converger.table
        self.registry = self.converger.iot
        self.failures = FailureSink(Logger(service="iot-crr-harness"))
        # Shares ``stream``'s cursor: a record handed over by either is not delivered again.
        self.mapping = EventSourceMapping(
            self.stream.cursor,
            self._invoke_replicator,
            destination_region,
            max_retry_attempts=max_retry_attempts,
        )
        self.last_report: DriftReport | None = None

    # --- streaming path -----------------------------------------------------------------------

    def persist_event(self, event: Mapping[str, Any]) -> PersistResult:
        """The persist task for one registry event (admit, dynamic-group lookup, write)."""
        change = admit(event, region=self.source_region)
        return self.persist_change(change)

    def persist_change(self, change: Change) -> PersistResult:
        """Persist's shadow selection and lookups in the source region (``look_up``), then
        the write."""
        kept = self.shadows.admitted(change)
        if kept is None:
            return PersistResult(Outcome.SKIPPED, change.key, "shadow not replicated")
        resolved = look_up(kept, self.source_registry)
        if resolved is None:
            return PersistResult(Outcome.SKIPPED, change.key, "gone since; its delete follows")
        return persist_change(self.table, resolved)

    def deliver(self) -> DrainReport:
        """One poll of the event source mapping (``poll``)."""
        return poll(self.mapping)

    def drain(self) -> DrainReport:
        """Poll the event source mapping until nothing is left to deliver or retry."""
        return drain(self.mapping)

    def _invoke_replicator(self, event: dict[str, Any]) -> Any:
        """The replicator's Lambda handler, with this pipeline's replicator (one per invocation)."""
        replicator = Replicator(self.converger, self.failures, self.destination_region)

        @replicate.metrics.log_metrics
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            return replicate.handle_batch(replicator, event, context)

        return handler(event, None)

    def finish_type_deletions(self) -> dict[str, list[str]]:
        """Run the pending job once the deprecation wait (and our margin) has passed (fake
        clock; the emulated AWS follows the same clock where it is shared)."""
        self.clock.advance(TYPE_DELETE_DELAY_SECONDS + TYPE_DELETE_MARGIN_SECONDS + 1)
        return finish_due(self.converger, now=self.clock())

    # --- reconciliation -----------------------------------------------------------------------

    def snapshot(self, region: str) -> Snapshot:
        return take_snapshot(self.inventory(region), region)

    def inventory(self, region: str) -> Inventory:
        """A region's registry read without pacing (the snapshot's, and a repair's reads)."""
        client = self.source if region == self.source_region else self.destination
        under = {EntityKind.SHADOW: self.shadows.lists_under}
        return Inventory(
            client,
            RateLimiter.unlimited(),
            opt_in=self.opt_in,
            include=self.include,
            under=under,
            factory=self.client,
        )

    def reconciler(self, guards: Guards | None = None) -> Reconciler:
        """The engine on this process's registries: no API pacing, deletes allowed and no cap
        unless ``guards`` say otherwise, corrective events straight into the state table."""
        return Reconciler(
            self.snapshot,
            guards=guards or Guards(allow_deletes=True, max_changes=None, min_source_ratio=0.0),
            emitter=TableEmitter(self.table),
            shadows=self.shadows,
            reader=self.inventory,
        )

    def audit(self) -> DriftReport:
        return self.reconciler().audit(self.source_region, self.destination_region).report

    def reconcile(self, guards: Guards | None = None) -> EmitResult:
        """One reconciliation run: snapshot both, diff, plan (deletes allowed), emit via table.

        ``last_report`` keeps the drift it found (in sync: nothing was emitted).
        """
        engine = self.reconciler(guards)
        audit = engine.audit(self.source_region, self.destination_region)
        self.last_report = audit.report
        if audit.report.in_sync:
            return EmitResult()
        return engine.apply(engine.plan(audit))

    def converge_fully(self) -> None:
        """Drain, finish deferred deletions (the pending task), and drain what that woke."""
        self.drain()
        self.finish_type_deletions()
        self.drain()


def persist_all(pipeline: LocalPipeline, events: Iterable[Mapping[str, Any]]) -> list[Any]:
    """Persist each event; a refused one yields its exception instead of stopping the run."""
    outcomes: list[Any] = []
    for event in events:
        try:
            outcomes.append(pipeline.persist_event(event))
        except CrrError as error:  # collected for the caller to assert on; bugs propagate
            outcomes.append(error)
    return outcomes


# --- two-way --------------------------------------------------------------------------------


class RegionHalf:
    """One region of a two-way pipeline: its replica of the state table, its persist step (for
    its own registry's events) and its replicator (on its replica's stream)."""

    def __init__(
        self,
        region: str,
        *,
        client: ClientFactory,
        table_name: str,
        clock: FakeClock,
        wall_clock: Callable[[], float],
        max_retry_attempts: int,
    ) -> None:
        self.region = region
        # Persist's clock is the one the registry stamps its events with and the replicator
        # records its echo expectations on (AWS's clocks agree): an event stamped ahead of it
        # is ordered at it (``pipeline.state.capped``), as in AWS.
        self.wall_clock = wall_clock
        self.ddb = client("dynamodb", region)
        create_state_table(self.ddb, table_name)
        self.stream_arn = self.ddb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        self.client = client  # the factory every client here comes from, iot-data's too
        self.iot = client("iot", region)
        self.converger = build_converger(
            region,
            table_name,
            clock=clock,
            type_delete_delay_seconds=TYPE_DELETE_DELAY_SECONDS,
            wall_clock=wall_clock,
            client=client,
        )
        self.table = self.converger.table
        self.registry = self.converger.iot
        self.failures = FailureSink(Logger(service="iot-crr-harness"))
        streams = client("dynamodbstreams", region)
        self.mapping = EventSourceMapping(
            LambdaStreamReader(streams, self.stream_arn, region).cursor,
            self._invoke_replicator,
            region,
            max_retry_attempts=max_retry_attempts,
        )
        self.table_writes = 0  # entity items written by this region's persist step

    def persist_event(self, event: Mapping[str, Any]) -> PersistResult:
        now = to_ms(self.wall_clock())
        change = look_up(admit(event, region=self.region, now=now), self.registry)
        assert change is not None  # a registry event's lookup (a group's query) always resolves
        result = persist_change(self.table, change)
        self.table_writes += result.wrote
        return result

    def drain(self) -> DrainReport:
        """Poll the event source mapping until nothing is left to deliver or retry."""
        return drain(self.mapping)

    def _invoke_replicator(self, event: dict[str, Any]) -> Any:
        replicator = Replicator(self.converger, self.failures, self.region)
        return replicate.handle_batch(replicator, event, None)


class TwoWayPipeline:
    """The pipeline in both directions, in process: each region persists its own registry's
    events into its replica, the Global Table emulation copies both ways (last writer wins) when
    ``replicate`` is called, and each region's replicator converges its registry to the items
    the other region wrote. The tests interleave the steps to play replication lag."""

    def __init__(
        self,
        *,
        client: ClientFactory = boto3_client,
        regions: tuple[str, str] = (SRC, DST),
        table_name: str = TABLE,
        wall_clock: Callable[[], float] | None = None,
        max_retry_attempts: int = MAX_RETRY_ATTEMPTS,
        opt_in: Iterable[EntityKind] = (),
    ) -> None:
        self.clock = FakeClock()
        self.opt_in = frozenset(opt_in)  # the opt-in kinds its snapshots list (shadows)
        self.halves = {
            region: RegionHalf(
                region,
                client=client,
                table_name=table_name,
                clock=self.clock,
                wall_clock=wall_clock or time.time,
                max_retry_attempts=max_retry_attempts,
            )
            for region in regions
        }
        self.replication = GlobalTableReplication(
            {
                region: (half.ddb, client("dynamodbstreams", region), half.stream_arn)
                for region, half in self.halves.items()
            },
            table_name,
        )

    def __getitem__(self, region: str) -> RegionHalf:
        return self.halves[region]

    def replicate(self) -> int:
        return self.replication.replicate()

    def persist_entity_writes(self) -> int:
        return sum(half.table_writes for half in self.halves.values())

    def snapshot(self, region: str) -> Snapshot:
        return take_snapshot(self.inventory(region), region)

    def inventory(self, region: str) -> Inventory:
        half = self.halves[region]
        return Inventory(half.iot, RateLimiter.unlimited(), opt_in=self.opt_in, factory=half.client)

    def reconciler(self, source: str, guards: Guards) -> Reconciler:
        """The engine on both registries, emitting into ``source``'s replica of the table."""
        return Reconciler(
            self.snapshot,
            guards=guards,
            emitter=TableEmitter(self[source].table),
            reader=self.inventory,
        )

    def audit(self, source: str, target: str) -> DriftReport:
        return self.reconciler(source, Guards()).audit(source, target).report

    def reconcile(self, source: str, target: str, guards: Guards) -> tuple[DriftReport, EmitResult]:
        """Make ``target`` match ``source``: corrective events (origin ``source``) into the
        source's replica, which the Global Table brings to the target's replicator."""
        engine = self.reconciler(source, guards)
        audit = engine.audit(source, target)
        if audit.report.in_sync:
            return audit.report, EmitResult()
        return audit.report, engine.apply(engine.plan(audit))
