"""An in-process two-region pipeline on moto, for benchmarks and the reliability suite.

persist (``StateTable.apply``) → state table (one table standing for the Global Table and its
destination replica) → its DynamoDB stream → ``pipeline.replicate.Replicator`` → destination
registry; and reconciliation (``take_snapshot`` → ``diff_snapshots`` → ``build_plan`` →
``emit_via_table``) back into the same table. Everything runs in this process under the
caller's ``mock_aws`` (no server, no threads), so one round trip costs milliseconds.

The stream is driven the way Lambda's event source mapping does it: records in order, a record
reported as a retryable failure is delivered again in the next round; permanent failures go to
the ``FailureSink`` and are never retried. The clock is fake, so deferred thing-type deletions
complete by moving it forward, never by waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from pipeline.converge import Converger, Result
from pipeline.errors import CrrError, RetryableError
from pipeline.events import parse_event
from pipeline.failures import FailureSink
from pipeline.iot import IotRegistry
from pipeline.model import Change
from pipeline.pending import finish_due
from pipeline.persist import persist_change, resolve_dynamic_query
from pipeline.replicate import Replicator
from pipeline.statetable import PersistResult, StateTable
from reconcile.diff import DriftReport, diff_snapshots
from reconcile.emit import EmitResult, corrective_changes, emit_via_table
from reconcile.inventory import Inventory
from reconcile.plan import Guards, build_plan
from reconcile.ratelimit import RateLimiter
from reconcile.snapshot import Snapshot, take_snapshot
from sandbox.emulation import LambdaStreamReader

SRC = "us-east-1"
DST = "eu-west-1"
TABLE = "crr-state"
TYPE_DELETE_DELAY_SECONDS = 300

ClientFactory = Callable[[str, str], Any]


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


@dataclass
class DrainStats:
    """What draining the stream did: records handled, retried, and what each converge did."""

    records: int = 0
    deliveries: int = 0
    retryable_failures: int = 0
    results: list[tuple[str, Result]] = field(default_factory=list)
    undelivered: list[str] = field(default_factory=list)  # still failing after max_rounds


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
    ) -> None:
        self.source_region = source_region
        self.destination_region = destination_region
        self.clock = clock or FakeClock()
        ddb = client("dynamodb", destination_region)
        if create_table:
            create_state_table(ddb, table_name)
        self.table = StateTable(ddb, table_name)
        arn = ddb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        streams = client("dynamodbstreams", destination_region)
        self.stream = LambdaStreamReader(streams, arn, destination_region)
        self.source = client("iot", source_region)
        self.destination = client("iot", destination_region)
        self.source_registry = IotRegistry(self.source)
        self.registry = IotRegistry(self.destination)
        self.converger = Converger(
            self.registry,
            self.table,
            region=destination_region,
            clock=self.clock,
            type_delete_delay_seconds=TYPE_DELETE_DELAY_SECONDS,
        )
        self.failures = FailureSink(Logger(service="iot-crr-harness"))
        self.last_report: DriftReport | None = None

    # --- streaming path -----------------------------------------------------------------------

    def persist_event(self, event: Mapping[str, Any]) -> PersistResult:
        """The persist task for one registry event (parse, dynamic-group lookup, write)."""
        change = parse_event(event, region=self.source_region)
        return self.persist_change(change)

    def persist_change(self, change: Change) -> PersistResult:
        if change.lookup_query:
            change = resolve_dynamic_query(change, self.source_registry)
        return persist_change(self.table, change)

    def drain(self, max_rounds: int = 10) -> DrainStats:
        """Feed new stream records to the replicator until none is left to retry."""
        stats = DrainStats()
        pending = self.stream.read()
        stats.records = len(pending)
        for _ in range(max_rounds):
            if not pending:
                return stats
            replicator = Replicator(self.converger, self.failures, self.destination_region)
            retry: list[dict[str, Any]] = []
            for record in pending:
                stats.deliveries += 1
                try:
                    replicator.handle(record)
                except RetryableError:
                    stats.retryable_failures += 1
                    retry.append(record)
            stats.results.extend(replicator.results)
            # Records written meanwhile (none today: the replicator never writes entities)
            # join the next round after the retries, as a shard would order them.
            fresh = self.stream.read()
            stats.records += len(fresh)
            pending = retry + fresh
        stats.undelivered = [str(r["dynamodb"]["SequenceNumber"]) for r in pending]
        return stats

    def finish_type_deletions(self) -> dict[str, list[str]]:
        """Run the pending job once the deprecation wait has passed (fake clock)."""
        self.clock.advance(TYPE_DELETE_DELAY_SECONDS + 1)
        return finish_due(self.converger, now=self.clock())

    # --- reconciliation -----------------------------------------------------------------------

    def snapshot(self, region: str) -> Snapshot:
        client = self.source if region == self.source_region else self.destination
        return take_snapshot(Inventory(client, RateLimiter.unlimited()), region)

    def audit(self) -> DriftReport:
        return diff_snapshots(
            self.snapshot(self.source_region), self.snapshot(self.destination_region)
        )

    def reconcile(self, guards: Guards | None = None, *, now_ms: int | None = None) -> EmitResult:
        """One reconciliation run: snapshot both, diff, plan (deletes allowed), emit via table.

        ``last_report`` keeps the drift it found (in sync: nothing was emitted).
        """
        source = self.snapshot(self.source_region)
        target = self.snapshot(self.destination_region)
        report = diff_snapshots(source, target)
        self.last_report = report
        if report.in_sync:
            return EmitResult()
        plan = build_plan(
            report,
            source,
            target,
            guards or Guards(allow_deletes=True, max_changes=None, min_source_ratio=0.0),
            now=now_ms if now_ms is not None else source.taken_at_ms,
        )
        return emit_via_table(corrective_changes(plan, self.source_region), self.table)

    def converge_fully(self) -> None:
        """Drain, finish deferred deletions, and drain what that woke (the nightly tail)."""
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
