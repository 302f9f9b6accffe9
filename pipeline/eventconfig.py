"""Turning AWS IoT registry events on or off in one region (`iot-crr enable-events`).

Registry events are off by default and enabled per account and region; the streaming path sees
nothing until the six registry event types are on in the source region (and in the destination
too, for active-active). This module sits before the whole flow, at deploy time:

- ``desired_configuration`` is the pure decision: the configuration after enabling/disabling the
  registry types, leaving every other event type (jobs, certificates, ...) as it was.
- ``enable_events`` is the adapter: DescribeEventConfigurations, then UpdateEventConfigurations
  only for the types that change, so running it twice changes nothing the second time.

The commands over it, ``iot-crr enable-events`` and ``iot-crr doctor``, live in ``reconcile``
(the Lambdas ship ``pipeline`` without click).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipeline.aws import AwsCalls

if TYPE_CHECKING:
    from mypy_boto3_iot import IoTClient

REGISTRY_EVENT_TYPES = (
    "THING",
    "THING_GROUP",
    "THING_TYPE",
    "THING_GROUP_MEMBERSHIP",
    "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION",
)

# This module's calls (one CLI command's worth per process).
_AWS = AwsCalls()

EventConfiguration = dict[str, bool]
"""Event type -> enabled, e.g. ``{"THING": True, "JOB": False}``."""


def desired_configuration(current: Mapping[str, bool], enable: bool) -> EventConfiguration:
    """The full configuration with the six registry types set to ``enable``; others unchanged."""
    desired = dict(current)
    for event_type in REGISTRY_EVENT_TYPES:
        desired[event_type] = enable
    return desired


def configuration_changes(
    current: Mapping[str, bool], desired: Mapping[str, bool]
) -> EventConfiguration:
    """Only the entries whose value differs (a type missing from ``current`` counts as off)."""
    return {
        event_type: enabled
        for event_type, enabled in desired.items()
        if current.get(event_type, False) != enabled
    }


def enable_events(
    iot_client: IoTClient, enable: bool
) -> tuple[EventConfiguration, EventConfiguration]:
    """Enable (or disable) the registry event types in the client's region; idempotent.

    Returns the configuration before and after. UpdateEventConfigurations is called only when a
    registry type changes, and with only the changed types. Raises ``ThrottledError`` /
    ``AwsServiceError`` (retryable) or ``AwsRequestError`` (permanent) on AWS failures.
    """
    before = describe_events(iot_client)
    after = desired_configuration(before, enable)
    changes = configuration_changes(before, after)
    if changes:
        _AWS(
            "UpdateEventConfigurations",
            iot_client.update_event_configurations,
            eventConfigurations={t: {"Enabled": on} for t, on in changes.items()},
        )
    return before, after


def indexing_configuration(iot_client: IoTClient) -> dict[str, Any]:
    """The region's fleet-indexing configuration (GetIndexingConfiguration), for the doctor."""
    return dict(_AWS("GetIndexingConfiguration", iot_client.get_indexing_configuration))


def describe_events(iot_client: IoTClient) -> EventConfiguration:
    """The region's event configuration (DescribeEventConfigurations)."""
    response = _AWS("DescribeEventConfigurations", iot_client.describe_event_configurations)
    configurations = response.get("eventConfigurations") or {}
    return {
        event_type: bool(setting.get("Enabled", False))
        for event_type, setting in configurations.items()
    }
