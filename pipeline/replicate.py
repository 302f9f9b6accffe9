"""Replicator: the destination region's DynamoDB-stream handler (docs/design.md, replicator).

For each stream record of the local state-table replica, converge the destination registry to
the item's *current* desired state (``pipeline.converge``). Returns Lambda's partial batch
response: a retryable failure (throttling, 5xx, a dependency not replicated yet) fails only its
own record, which the event source mapping retries; a permanent one (bad data, a change AWS
refuses) goes to the failure queue with its reason and does not block the shard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from pipeline import aws, echo
from pipeline.converge import Converger, Result, build_converger
from pipeline.errors import EventValidationError, NotRegistrableError, PermanentError
from pipeline.failures import FailureSink
from pipeline.kinds.links import split_membership_name
from pipeline.model import EntityKind, entity_key, parse_key
from pipeline.settings import Settings, load_settings

logger = Logger(service="iot-crr-replicator")
metrics = Metrics(namespace="IotRegistryCrr", service="replicator")


class Replicator:
    """Handles one stream record at a time; one instance per invocation."""

    def __init__(self, converger: Converger, failures: FailureSink, region: str) -> None:
        self.converger = converger
        self.failures = failures
        self.region = region
        self._done: dict[str, int] = {}  # key -> item revision already converged in this batch
        self.results: list[tuple[str, Result]] = []

    def prefetch(self, records: list[dict[str, Any]]) -> None:
        """Read every item the batch will need in a few BatchGetItem calls, not one per record."""
        keys: list[str] = []
        for record in records:
            key = (((record.get("dynamodb") or {}).get("Keys") or {}).get("pk") or {}).get("S")
            parsed = parse_key(key) if isinstance(key, str) else None
            if parsed is None:
                continue
            keys.append(key)  # type: ignore[arg-type]
            keys.append(echo.ledger_key(self.region, key))  # type: ignore[arg-type]
            kind, name = parsed
            if kind is EntityKind.MEMBERSHIP:
                keys.append(entity_key(EntityKind.THING_GROUP, split_membership_name(name)[1]))
        if keys:
            self.converger.table.prefetch(keys)

    def handle(self, record: dict[str, Any]) -> Result:
        stream = record.get("dynamodb") or {}
        sequence = str(stream.get("SequenceNumber", ""))
        key = ((stream.get("Keys") or {}).get("pk") or {}).get("S")
        try:
            result = self._handle(record, stream, key)
        except NotRegistrableError as refused:
            # Recorded once where AWS refused (the kind's record, log line and count); for the
            # entity and what needs it, nothing to retry and nothing to queue.
            result = Result("not-registrable", str(refused))
        except PermanentError as error:
            self.failures.record(key=str(key), sequence_number=sequence, error=error)
            result = Result("failed-permanently", str(error))
        self.results.append((str(key), result))
        return result

    def _handle(self, record: dict[str, Any], stream: dict[str, Any], key: str | None) -> Result:
        if not isinstance(key, str):
            raise EventValidationError("dynamodb.Keys.pk", "missing or not a string key")
        parsed = parse_key(key)
        if parsed is None:
            return Result("skipped", "bookkeeping item")
        if record.get("eventName") == "REMOVE":
            # Deletes are tombstones; an item removed outright (TTL, by hand) asks for nothing.
            return Result("skipped", "item removed from the table")
        kind, name = parsed
        # The item's current state, read strongly consistent from this region's replica, which
        # reflects every write that replica acknowledged, hence the write behind this record
        # ("DynamoDB read consistency": https://docs.aws.amazon.com/amazondynamodb/latest/
        # developerguide/HowItWorks.ReadConsistency.html). Gone means removed since: its REMOVE
        # record follows this one (a stream keeps one item's records in order), and the record's
        # own image is stale; applying it re-created what the newest state no longer has.
        item = self.converger.table.get(kind, name)
        if item is None:
            return Result("skipped", "item removed from the table since this record")
        if item.origin_region == self.region:
            # Made by this region's own registry (active-active): applying it would be an echo.
            return Result("skipped", "originated in this region")
        if self._done.get(key) == item.rev:
            return Result("noop", "already converged in this batch")
        result = self.converger.converge(item)
        self._done[key] = item.rev
        return result


def build_replicator(settings: Settings, *, clock: Callable[[], float] = time.time) -> Replicator:
    converger = build_converger(
        settings.region,
        settings.state_table,
        clock=clock,
        type_delete_delay_seconds=settings.type_delete_delay_seconds,
        policy_account_map=settings.policy_account_map,
    )
    sqs = aws.client("sqs", settings.region) if settings.failure_queue_url else None
    return Replicator(
        converger, FailureSink(logger, sqs, settings.failure_queue_url), settings.region
    )


@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_batch(build_replicator(load_settings()), event, context)


def handle_batch(replicator: Replicator, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One invocation's work: Powertools' batch processor over the records, the partial batch
    response, the invocation's metrics (flushed by ``lambda_handler``'s ``log_metrics``). The
    in-process pipeline (``sandbox.inprocess``) calls it with a replicator of its own."""
    # Report every failed record, even when all failed: Lambda retries them the same way, and
    # the response (not an exception) is what names each record.
    processor = BatchProcessor(
        event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
    )

    records = event.get("Records")
    if isinstance(records, list):
        metrics.add_metric(name="StreamRecords", unit=MetricUnit.Count, value=len(records))
        replicator.prefetch([r for r in records if isinstance(r, dict)])

    def record_handler(record: DynamoDBRecord) -> None:
        replicator.handle(record.raw_event)

    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    # One value per invocation: EMF carries at most 100 values per metric, and totals are
    # what the alarms and dashboards read.
    actions = [result.action for _, result in replicator.results]
    converged = sum(a not in {"skipped", "failed-permanently", "not-registrable"} for a in actions)
    metrics.add_metric(name="ConvergedItems", unit=MetricUnit.Count, value=converged)
    metrics.add_metric(
        name="PermanentFailures", unit=MetricUnit.Count, value=actions.count("failed-permanently")
    )
    # What the kinds counted (a policy's rewritten ARNs, pipeline.kinds.policy).
    for name, value in replicator.converger.take_counts().items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(
        name="RetryableFailures",
        unit=MetricUnit.Count,
        value=len(response.get("batchItemFailures") or []),
    )
    return dict(response)
