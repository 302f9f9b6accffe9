"""6. The DynamoDB-stream event source mapping that feeds the replicator in Lambda's event shape,
and ``DrainReport``: what a drain moved through the pipeline, this mapping's counts included."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from pipeline.model import parse_key
from sandbox.emulation.patches import JsonDict
from sandbox.emulation.streams import StreamCursor, lambda_stream_record


@dataclass(frozen=True)
class FailedBatch:
    """A batch given up on once retries are exhausted; ``message`` is what Lambda sends to the
    on-failure destination for it: metadata, not the records (``reconcile.redrive``)."""

    first_sequence_number: str
    last_sequence_number: str
    size: int
    attempts: int
    reason: str
    shard_id: str = ""
    stream_arn: str = ""
    first_arrival: datetime | None = None
    last_arrival: datetime | None = None

    def message(self, function_arn: str, now: datetime) -> JsonDict:
        """The on-failure record of the Lambda Developer Guide's example ("Retain discarded
        records for a DynamoDB event source in Lambda")."""

        def stamp(moment: datetime | None) -> str | None:
            return None if moment is None else moment.astimezone(UTC).isoformat()

        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": self.attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": stamp(now),
            "DDBStreamBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": self.first_sequence_number,
                "endSequenceNumber": self.last_sequence_number,
                "approximateArrivalOfFirstRecord": stamp(self.first_arrival),
                "approximateArrivalOfLastRecord": stamp(self.last_arrival),
                "batchSize": self.size,
                "streamArn": self.stream_arn,
            },
        }


@dataclass
class DrainReport:
    """What a drain moved through the pipeline, stage by stage: the sandbox's rounds
    (``sandbox.stack``: every stage), the in-process pipeline's drains (``sandbox.inprocess``:
    the stream only) and one ``EventSourceMapping.poll``. A stage the drain does not run
    counts 0; ``add`` sums two reports."""

    rounds: int = 0
    # The IoT rule and the persist state machine.
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
    executions_running: int = 0  # left running at the end of a round: the next round waits
    # The Global Table.
    records_replicated: int = 0
    # The event source mapping and the replicator. Checkpointed records (converged, skipped or
    # sent to the failure sink) are counted apart: entity items (the registry work) and the
    # pipeline's own bookkeeping items (echo ledger ``ECHO#...``, deferred deletions
    # ``PENDING#...``), which reach the stream too and which the replicator skips. Lambda's
    # mapping does not tell them apart; the sandbox's report does.
    replicator_invocations: int = 0
    records_applied: int = 0
    bookkeeping_records: int = 0
    batch_item_failures: int = 0  # records reported back for redelivery
    handler_errors: int = 0  # invocations that raised (the whole batch failed)
    failed_batches: list[FailedBatch] = field(default_factory=list)  # retries exhausted
    # One-way: the replicator's own calls publish registry events in the destination, which
    # nothing consumes (its persist path is not deployed).
    destination_events_discarded: int = 0

    @property
    def idle(self) -> bool:
        return not (
            self.events_published
            or self.records_replicated
            or self.replicator_invocations
            or self.destination_events_discarded
        )

    def add(self, other: DrainReport) -> None:
        """Add ``other``'s counts to these (another stage, region or batch of the same round)."""
        for name in (f.name for f in fields(self)):
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, Counter):
                mine.update(theirs)
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                setattr(self, name, mine + theirs)

    def add_round(self, other: DrainReport) -> None:
        """Add the next round's counts; ``executions_running`` is a state: the latest round's."""
        self.add(other)
        self.executions_running = other.executions_running


StreamHandler = Callable[[JsonDict], Any]


class EventSourceMapping:
    """Lambda's DynamoDB-stream event source mapping with ReportBatchItemFailures.

    Reference: Lambda docs "Using Lambda with DynamoDB" / partial batch responses. Records are
    delivered in batches of up to ``batch_size``; when the function reports batch item failures,
    Lambda checkpoints before the lowest failed sequence number and retries from there; a raised
    error fails the whole batch; after ``max_retry_attempts`` retries the batch goes to the
    on-failure destination (``stats.failed_batches``) and the mapping moves on. Each ``poll``
    makes at most one attempt per batch, so other work can happen between retries.
    """

    def __init__(
        self,
        cursor: StreamCursor,
        handler: StreamHandler,
        region: str,
        batch_size: int = 100,
        max_retry_attempts: int = 3,
    ) -> None:
        self._cursor = cursor
        self._handler = handler
        self._region = region
        self.batch_size = batch_size
        self.max_retry_attempts = max_retry_attempts
        self._attempts: dict[str, int] = {}
        self.stats = DrainReport()  # every poll's, added up
        self.errors: list[BaseException] = []

    def poll(self, on_batch: Callable[[DrainReport], None] | None = None) -> DrainReport:
        """Deliver pending records; what this poll did (``replicator_invocations``: the handler
        invocations made). ``on_batch`` sees the poll's report after each batch (progress for
        long drains)."""
        report = DrainReport()
        while True:
            batch = self._cursor.read(self.batch_size)
            if not batch:
                return report
            delivered, attempt = self._deliver(batch)
            report.add(attempt)
            self.stats.add(attempt)
            if on_batch is not None:
                on_batch(report)
            if not delivered:
                return report

    def _deliver(self, batch: list[tuple[str, JsonDict]]) -> tuple[bool, DrainReport]:
        """One attempt: whether the whole batch is checkpointed, and what the attempt did."""
        report = DrainReport(replicator_invocations=1)
        records = [
            lambda_stream_record(record, self._cursor.stream_arn, self._region)
            for _, record in batch
        ]
        failed = self._failed_sequences(records, report)
        by_sequence = {_sequence(record): i for i, (_, record) in enumerate(batch)}
        lowest = min((int(seq) for seq in failed if int(seq) in by_sequence), default=None)
        if lowest is None:
            _count_checkpointed(batch, report)
            shard_id, last = batch[-1]
            self._cursor.commit(shard_id, last["dynamodb"]["SequenceNumber"])
            return True, report
        first_failed = by_sequence[lowest]
        _count_checkpointed(batch[:first_failed], report)
        if first_failed:
            shard_id, before = batch[first_failed - 1]
            self._cursor.commit(shard_id, before["dynamodb"]["SequenceNumber"])
        key = str(lowest)
        self._attempts[key] = self._attempts.get(key, 0) + 1
        if self._attempts[key] > self.max_retry_attempts:
            rest = batch[first_failed:]
            report.failed_batches.append(
                FailedBatch(
                    first_sequence_number=rest[0][1]["dynamodb"]["SequenceNumber"],
                    last_sequence_number=rest[-1][1]["dynamodb"]["SequenceNumber"],
                    size=len(rest),
                    attempts=self._attempts.pop(key),
                    reason="retries exhausted",
                    shard_id=rest[0][0],
                    stream_arn=self._cursor.stream_arn,
                    first_arrival=_arrival(rest[0][1]),
                    last_arrival=_arrival(rest[-1][1]),
                )
            )
            shard_id, last = batch[-1]
            self._cursor.commit(shard_id, last["dynamodb"]["SequenceNumber"])
            return True, report
        return False, report

    def _failed_sequences(self, records: list[JsonDict], report: DrainReport) -> list[str]:
        try:
            response = self._handler({"Records": records})
        except Exception as error:  # Lambda's contract: a raised error fails the whole batch
            self.errors.append(error)
            report.handler_errors += 1
            return [records[0]["dynamodb"]["SequenceNumber"]]
        failures = (response or {}).get("batchItemFailures") or []
        report.batch_item_failures += len(failures)
        return [str(failure["itemIdentifier"]) for failure in failures]


def _count_checkpointed(batch: list[tuple[str, JsonDict]], report: DrainReport) -> None:
    entities = sum(_is_entity_record(record) for _, record in batch)
    report.records_applied += entities
    report.bookkeeping_records += len(batch) - entities


def _is_entity_record(record: Mapping[str, Any]) -> bool:
    """A record of an entity item (``pipeline.model`` key), not of the pipeline's bookkeeping."""
    key = ((record["dynamodb"].get("Keys") or {}).get("pk") or {}).get("S")
    return isinstance(key, str) and parse_key(key) is not None


def _arrival(record: Mapping[str, Any]) -> datetime | None:
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(created, (int, float)):
        return datetime.fromtimestamp(created, UTC)
    return created if isinstance(created, datetime) else None


def _sequence(record: Mapping[str, Any]) -> int:
    return int(record["dynamodb"]["SequenceNumber"])
