"""Persist step: one registry event (or corrective event) into the state table.

The task the persist state machine runs for each event the IoT rule delivers (and for each
corrective event reconciliation emits). Parse → (for dynamic groups, look the query up in the
origin region) → decide and conditionally write. Bad input raises a ``PermanentError`` that the
state machine routes to its failure queue; throttling raises a ``RetryableError`` it retries.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger

from pipeline import aws
from pipeline.events import parse_event
from pipeline.iot import IotRegistry
from pipeline.model import Change
from pipeline.settings import load_settings
from pipeline.statetable import PersistResult, StateTable

logger = Logger(service="iot-crr-persist")


def persist_change(table: StateTable, change: Change) -> PersistResult:
    """Write one change if it moves the entity's desired state forward (``pipeline.state``)."""
    return table.apply(change)


def resolve_dynamic_query(change: Change, iot: IotRegistry) -> Change:
    """A dynamic group's event lacks its query: read it from the origin region's registry."""
    if not change.lookup_query:
        return change
    described = iot.describe_thing_group(change.name)
    fields = dict(change.fields)
    # A group deleted since the event has no query to read; its DELETED event follows.
    fields["query"] = described["query"] if described else None
    return replace(change, fields=fields, lookup_query=False)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings()
    change = parse_event(event, region=settings.region)
    if change.lookup_query:
        change = resolve_dynamic_query(change, IotRegistry(aws.client("iot", settings.region)))
    table = StateTable(aws.client("dynamodb", settings.region), settings.state_table)
    result = persist_change(table, change)
    logger.info(
        "persisted",
        extra={
            "key": result.key,
            "outcome": result.outcome.value,
            "event_id": change.origin.event_id,
        },
    )
    return {"outcome": result.outcome.value, "key": result.key, "reason": result.reason}
