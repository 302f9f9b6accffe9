"""Persist step: one registry event (or corrective event) into the state table.

The task the persist state machine runs for each event the IoT rule delivers (and for each
corrective event reconciliation emits). Admit (parse, refuse a timestamp from the future, cap
one a little ahead: counted, ``FUTURE_TIMESTAMP_CAPPED_METRIC``) →
(where the event leaves something out, read it in the origin region: the change's ``lookup``,
which its kind resolves) → decide and conditionally write:
the rules are ``pipeline.ingest``'s, this is the Lambda handler. Bad input raises a
``PermanentError`` that the state machine routes to its failure queue; throttling raises a
``RetryableError`` it retries.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from pipeline import aws
from pipeline.clock import now_ms
from pipeline.cloudtrail import Skipped, is_cloudtrail_event, parse_cloudtrail_event
from pipeline.errors import EventValidationError
from pipeline.ingest import admit, bounded, look_up, persist_change
from pipeline.iot import Iot
from pipeline.kinds.shadow_selection import ShadowSelection, selection_from_env
from pipeline.model import Change
from pipeline.settings import Settings, SettingsError, load_settings
from pipeline.state import FutureTimestampError
from pipeline.statetable import StateTable

logger = Logger(service="iot-crr-persist")
metrics = Metrics(namespace="IotRegistryCrr", service="persist")
FUTURE_TIMESTAMP_METRIC = "FutureTimestampsRefused"
# Events admitted with their ordering time capped at persist's clock plus the tolerance
# (``pipeline.state.capped``): a clock ahead in the origin, or an odd stamp.
FUTURE_TIMESTAMP_CAPPED_METRIC = "FutureTimestampsCapped"
SKIPPED_CALLS_METRIC = "ControlPlaneCallsSkipped"


@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if is_cloudtrail_event(event):
        return _control_plane_call(event)
    refused = 0
    try:
        settings = load_settings()
        # Admitted before the dynamic-group lookup: a refused event costs no IoT call.
        change = admit(event, region=settings.region, now=now_ms())
    except FutureTimestampError as error:
        refused = 1
        logger.error(
            "future timestamp refused",
            extra={"event_id": event.get("eventId"), "error": str(error)},
        )
        raise
    finally:
        # One value per invocation, 0 included, so an alarm on the sum has a baseline: a bad
        # clock or a forged event is worth an alarm, not just one record in the failure queue.
        metrics.add_metric(name=FUTURE_TIMESTAMP_METRIC, unit=MetricUnit.Count, value=refused)
    return _looked_up_and_persisted(settings, change, str(event.get("eventType")))


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
    change = bounded("detail.eventTime", result, now_ms())
    return _looked_up_and_persisted(settings, change, str(event["detail"]["eventName"]))


def _looked_up_and_persisted(settings: Settings, change: Change, event_name: str) -> dict[str, Any]:
    kept = _shadow_selection().admitted(change)
    if kept is None:
        return {
            "outcome": "skipped",
            "key": "",
            "reason": f"shadow {change.name} is not replicated (SHADOW_INCLUDE, SHADOW_EXCLUDE)",
        }
    change = kept
    # One value per admitted event, 0 included (a baseline, as for the refusals).
    stamped = change.origin.stamped_ms
    metrics.add_metric(
        name=FUTURE_TIMESTAMP_CAPPED_METRIC, unit=MetricUnit.Count, value=int(stamped is not None)
    )
    if stamped is not None:
        logger.warning(
            "timestamp ahead of persist's clock: ordered at its clock plus the tolerance",
            extra={
                "event_id": change.origin.event_id,
                "key": change.key,
                "stamped_ms": stamped,
                "ordered_at_ms": change.origin.timestamp_ms,
            },
        )
    if change.lookup is not None:
        resolved = look_up(change, Iot(aws.client("iot", settings.region)))
        if resolved is None:
            return {
                "outcome": "skipped",
                "key": "",
                "reason": f"{event_name}: {change.kind.value} {change.name} is gone since; "
                "its delete call follows",
            }
        change = resolved
    return _persist(settings.state_table, settings.region, change)


def _shadow_selection() -> ShadowSelection:
    """Which shadows and sections this pipeline replicates (read per call, as the settings)."""
    try:
        return selection_from_env(os.environ)
    except EventValidationError as error:
        raise SettingsError(f"{error.field}: {error.reason}") from error


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
