"""Persist step: one registry event (or corrective event) into the state table.

The task the persist state machine runs for each event the IoT rule delivers (and for each
corrective event reconciliation emits). Parse → refuse a timestamp from the future → (for dynamic
groups, look the query up in the origin region) → decide and conditionally write. Bad input
raises a ``PermanentError`` that the state machine routes to its failure queue; throttling raises
a ``RetryableError`` it retries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from itertools import groupby
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from pipeline import aws
from pipeline.clock import now_ms
from pipeline.cloudtrail import Skipped, is_cloudtrail_event, parse_cloudtrail_event
from pipeline.control import control_change
from pipeline.errors import EventValidationError
from pipeline.events import parse_event
from pipeline.iot import IotRegistry
from pipeline.model import Change, EntityKind, Origin, entity_key, split_membership_name
from pipeline.security import IotSecurity
from pipeline.settings import load_settings
from pipeline.state import FutureTimestampError, Outcome, check_not_future
from pipeline.statetable import PersistResult, StateTable, item_from_record

logger = Logger(service="iot-crr-persist")
metrics = Metrics(namespace="IotRegistryCrr", service="persist")
FUTURE_TIMESTAMP_METRIC = "FutureTimestampsRefused"
SKIPPED_CALLS_METRIC = "ControlPlaneCallsSkipped"


def persist_change(table: StateTable, change: Change, *, now: int | None = None) -> PersistResult:
    """Write one change if it moves the entity's desired state forward (``pipeline.state``).

    ``now`` (epoch ms, default the wall clock) bounds the change's timestamp
    (``check_not_future``): a change from the future is refused before anything is written.

    A dynamic group's membership is never stored: each region's fleet index computes it. A
    group event's ancestors the table has not seen yet are recorded first (as unversioned
    stubs that any real event of theirs outranks), so the replicator can create the parent
    chain now rather than wait for the parents' own events or the nightly run.
    """
    check_not_future("timestamp", change.origin.timestamp_ms, now_ms() if now is None else now)
    if change.kind is EntityKind.MEMBERSHIP:
        skipped = _skipped_if_dynamic(change, table.get_raw(_group_key(change)))
        if skipped is not None:
            return skipped
    for stub in ancestor_stubs(change):
        if table.get(stub.kind, stub.name) is None:
            table.apply(stub)
    return table.apply(change)


def persist_changes(
    table: StateTable, changes: Sequence[Change], *, now: int | None = None
) -> list[PersistResult]:
    """``persist_change`` for many changes, in order, batched for backfills: the same rules and
    the same outcomes as one by one, in about N/100 reads instead of 2N calls.

    Consecutive changes of one kind of path go together: memberships (the dynamic-group skip,
    their groups read in one batch: a membership never changes a group, so each reads what it
    would read alone), a change with ancestors (alone: its stubs go in just before it), and the
    rest (``StateTable.apply_many``). Corrective events carry no ancestors, so a backfill takes
    only the batched paths. A change from the future raises before anything is written.
    """
    clock = now_ms() if now is None else now
    for change in changes:
        check_not_future("timestamp", change.origin.timestamp_ms, clock)
    results: list[PersistResult] = []
    for path, run in groupby(changes, key=_path):
        batch = list(run)
        if path == "ancestors":
            results.extend(persist_change(table, change, now=clock) for change in batch)
        elif path == "membership":
            results.extend(_persist_memberships(table, batch))
        else:
            results.extend(table.apply_many(batch))
    return results


def _path(change: Change) -> str:
    if change.ancestors:
        return "ancestors"
    return "membership" if change.kind is EntityKind.MEMBERSHIP else "plain"


def _persist_memberships(table: StateTable, memberships: list[Change]) -> list[PersistResult]:
    groups = table.get_many(_group_key(change) for change in memberships)
    skipped = [_skipped_if_dynamic(change, groups[_group_key(change)]) for change in memberships]
    applied = iter(
        table.apply_many([c for c, skip in zip(memberships, skipped, strict=True) if skip is None])
    )
    return [skip if skip is not None else next(applied) for skip in skipped]


def _group_key(membership: Change) -> str:
    return entity_key(EntityKind.THING_GROUP, split_membership_name(membership.name)[1])


def _skipped_if_dynamic(
    membership: Change, group_record: Mapping[str, Any] | None
) -> PersistResult | None:
    """A dynamic group's membership is never stored: each region's fleet index computes it."""
    group = item_from_record(group_record) if group_record else None
    if group is not None and group.state.get("query"):
        return PersistResult(
            Outcome.SKIPPED, membership.key, "membership of a dynamic group is not replicated"
        )
    return None


def ancestor_stubs(change: Change) -> list[Change]:
    """One change per ancestor in a THING_GROUP_EVENT's ``rootToParentThingGroups`` (root
    first), each knowing only its parent. Unversioned and timestamped with the event, so the
    ancestor's own versioned events always outrank it (``pipeline.state``)."""
    stubs: list[Change] = []
    parent: str | None = None
    for ancestor in change.ancestors:
        origin = Origin(
            change.origin.region,
            change.origin.timestamp_ms,
            f"{change.origin.event_id}#ancestor#{ancestor}",
        )
        stubs.append(Change(EntityKind.THING_GROUP, ancestor, origin, fields={"parent": parent}))
        parent = ancestor
    return stubs


def resolve_dynamic_query(change: Change, iot: IotRegistry) -> Change:
    """Whether a group is dynamic, and its query, only the origin region's registry says
    (DescribeThingGroup's ``queryString``): the event's ``dynamicGroupMappingId`` is
    undocumented."""
    if not change.lookup_query:
        return change
    described = iot.describe_thing_group(change.name)
    fields = dict(change.fields)
    # A group deleted since the event has no query to read; its DELETED event follows.
    fields["query"] = described["query"] if described else None
    return replace(change, fields=fields, lookup_query=False)


@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if is_cloudtrail_event(event):
        return _control_plane_call(event)
    refused = 0
    try:
        settings = load_settings()
        change = parse_event(event, region=settings.region)
        try:
            # Checked before the dynamic-group lookup: a refused event costs no IoT call.
            check_not_future("timestamp", change.origin.timestamp_ms, now_ms())
        except FutureTimestampError as error:
            refused = 1
            logger.error(
                "future timestamp refused",
                extra={"key": change.key, "event_id": change.origin.event_id, "error": str(error)},
            )
            raise
    finally:
        # One value per invocation, 0 included, so an alarm on the sum has a baseline: a bad
        # clock or a forged event is worth an alarm, not just one record in the failure queue.
        metrics.add_metric(name=FUTURE_TIMESTAMP_METRIC, unit=MetricUnit.Count, value=refused)
    if change.lookup_query:
        change = resolve_dynamic_query(change, IotRegistry(aws.client("iot", settings.region)))
    return _persist(settings.state_table, settings.region, change)


def _control_plane_call(event: dict[str, Any]) -> dict[str, Any]:
    """A certificate, policy or attachment call (``pipeline.cloudtrail``), delivered by the
    EventBridge rule: skipped with a counted reason, or looked up and persisted."""
    settings = load_settings()
    result = parse_cloudtrail_event(event)
    if isinstance(result, Skipped):
        metrics.add_metric(name=SKIPPED_CALLS_METRIC, unit=MetricUnit.Count, value=1)
        logger.info(
            "control-plane call skipped",
            extra={"call": result.event_name, "code": result.code.value, "reason": result.reason},
        )
        return {
            "outcome": "skipped",
            "key": "",
            "reason": f"{result.event_name}: {result.reason} ({result.code.value})",
        }
    if result.origin.region != settings.region:
        raise EventValidationError(
            "detail.awsRegion",
            f"a call in {result.origin.region} reached persist in {settings.region}",
        )
    check_not_future("detail.eventTime", result.origin.timestamp_ms, now_ms())
    change = control_change(result, IotSecurity(aws.client("iot", settings.region)))
    if change is None:
        return {
            "outcome": "skipped",
            "key": "",
            "reason": f"{result.event_name}: {result.kind.value} {result.name} is gone since; "
            "its delete call follows",
        }
    return _persist(settings.state_table, settings.region, change)


def _persist(table_name: str, region: str, change: Change) -> dict[str, Any]:
    table = StateTable(aws.client("dynamodb", region), table_name)
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
