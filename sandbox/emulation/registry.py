"""2. Registry events: the IoT backend's mutating calls publish AWS-shaped registry events into a
per-region ``Outbox``, as the IoT rule ``SELECT *, topic() AS topic`` would see them."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

from moto.iot.exceptions import InvalidRequestException
from moto.iot.models import FakeThing, FakeThingGroup, FakeThingType, IoTBackend

from pipeline.clock import to_ms
from pipeline.eventconfig import REGISTRY_EVENT_TYPES
from sandbox.emulation.patches import JsonDict

# AWS IoT API Reference, UpdateEventConfigurations: the valid keys of eventConfigurations.
EVENT_TYPES = (
    "THING",
    "THING_GROUP",
    "THING_TYPE",
    "THING_GROUP_MEMBERSHIP",
    "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION",
    "JOB",
    "JOB_EXECUTION",
    "POLICY",
    "CERTIFICATE",
    "CA_CERTIFICATE",
)
assert set(REGISTRY_EVENT_TYPES) <= set(EVENT_TYPES)

# --------------------------------------------------------------------------------------------
# 2. Registry events
# --------------------------------------------------------------------------------------------


class Outbox:
    """Registry events published in one region, in publication order (thread-safe)."""

    def __init__(self) -> None:
        self._events: deque[JsonDict] = deque()
        self._lock = threading.Lock()

    def put(self, event: JsonDict) -> None:
        with self._lock:
            self._events.append(event)

    def take(self) -> list[JsonDict]:
        """Remove and return every event published so far."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
            return events

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)


def _topic(event: Mapping[str, Any]) -> str:
    """The reserved MQTT topic AWS publishes the event on ("Registry events", AWS IoT Developer Guide)."""
    kind = event["eventType"]
    operation = str(event["operation"]).lower()
    if kind == "THING_EVENT":
        return f"$aws/events/thing/{event['thingName']}/{operation}"
    if kind == "THING_TYPE_EVENT":
        return f"$aws/events/thingType/{event['thingTypeName']}/{operation}"
    if kind == "THING_TYPE_ASSOCIATION_EVENT":
        return (
            f"$aws/events/thingTypeAssociation/thing/{event['thingName']}/{event['thingTypeName']}"
        )
    if kind == "THING_GROUP_EVENT":
        return f"$aws/events/thingGroup/{event['thingGroupName']}/{operation}"
    if kind == "THING_GROUP_MEMBERSHIP_EVENT":
        group = str(event["groupArn"]).rpartition("/")[2]
        thing = str(event["thingArn"]).rpartition("/")[2]
        return f"$aws/events/thingGroupMembership/thingGroup/{group}/thing/{thing}/{operation}"
    if kind == "THING_GROUP_HIERARCHY_EVENT":
        return (
            f"$aws/events/thingGroupHierarchy/thingGroup/{event['thingGroupName']}"
            f"/childThingGroup/{event['childGroupName']}/{operation}"
        )
    raise ValueError(f"unknown registry event type {kind!r}")


def _thing_type_name(thing: FakeThing) -> str | None:
    return thing.thing_type.thing_type_name if thing.thing_type else None


def _group_properties(group: FakeThingGroup) -> dict[str, Any]:
    # moto annotates the properties as dict[str, str]; AWS's shape nests attributePayload.
    properties: dict[str, Any] = group.thing_group_properties
    return properties


def _group_attributes(group: FakeThingGroup) -> dict[str, str]:
    payload = _group_properties(group).get("attributePayload") or {}
    return dict(payload.get("attributes") or {})


class RegistryEmulation:
    """State of the emulated AWS behaviour: outboxes, clock, event configurations, refusals.

    ``clock`` returns epoch seconds; event timestamps are epoch milliseconds, strictly increasing
    so two calls in the same millisecond still have an order (AWS calls take longer than 1 ms).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._offset = 0.0
        self._skipped = 0.0  # waits ``skip`` jumped over: ``wait_clock`` only
        self._lock = threading.Lock()
        self._last_ms = 0
        self._outboxes: dict[str, Outbox] = {}
        self._event_configurations: dict[str, dict[str, bool]] = {}
        self.refusals: Counter[str] = Counter()  # REFUSALS keys met, so tests can see them
        # [assumption] the guide's 2022 rule on certificates shared across Regions, off: AWS's
        # current rule is unconfirmed (MOTO_GAPS; sandbox.emulation.devicecertificates).
        self.shared_certificate_rule = False
        self._policy_detached_at: dict[tuple[str, str], float] = {}

    def outbox(self, region: str) -> Outbox:
        with self._lock:
            return self._outboxes.setdefault(region, Outbox())

    def clear(self) -> None:
        with self._lock:
            self._outboxes.clear()
            self._event_configurations.clear()
            self._policy_detached_at.clear()
        self.refusals.clear()
        self.shared_certificate_rule = False

    def now(self) -> float:
        """Epoch seconds: the injected clock plus whatever ``advance`` added."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move this emulation's clock on (AWS's waits, e.g. 5 minutes after deprecation)."""
        with self._lock:
            self._offset += seconds

    def wait_clock(self) -> float:
        """Epoch seconds on which AWS's waits are judged (a type deletable 5 minutes after its
        deprecation, a policy some seconds after a detach) and the sandbox's schedules fire:
        ``now`` plus the idle time ``skip`` jumped over. Registry events keep ``now``'s
        timestamps: persist refuses a timestamp more than 5 minutes ahead of its own clock
        (``pipeline.state.check_not_future``), so skipping never moves them."""
        return self.now() + self._skipped

    def skip(self, seconds: float) -> None:
        """Jump ``wait_clock`` on by ``seconds`` of idle time (``sandbox up`` waiting for its
        pending-deletion schedule), leaving event timestamps on ``now``."""
        with self._lock:
            self._skipped += seconds

    def policy_detached(self, region: str, policy_name: str) -> None:
        """Record that a target was detached from the policy now (DeletePolicy waits on it)."""
        with self._lock:
            self._policy_detached_at[(region, policy_name)] = self.wait_clock()

    def seconds_since_policy_detach(self, region: str, policy_name: str) -> float | None:
        """Seconds on this clock since the policy's last detach; None if never detached (or
        deleted since)."""
        with self._lock:
            detached_at = self._policy_detached_at.get((region, policy_name))
        return None if detached_at is None else self.wait_clock() - detached_at

    def policy_deleted(self, region: str, policy_name: str) -> None:
        with self._lock:
            self._policy_detached_at.pop((region, policy_name), None)

    def event_configuration(self, region: str) -> dict[str, bool]:
        """Event type -> enabled in ``region`` (every type AWS lists; see MOTO_GAPS for the
        sandbox's starting point)."""
        with self._lock:
            config = self._event_configurations.setdefault(
                region, {t: t in REGISTRY_EVENT_TYPES for t in EVENT_TYPES}
            )
            return dict(config)

    def configure_events(self, region: str, changes: Mapping[str, bool]) -> None:
        unknown = sorted(set(changes) - set(EVENT_TYPES))
        if unknown:
            # AWS IoT API Reference, UpdateEventConfigurations: the valid keys are EVENT_TYPES.
            raise InvalidRequestException(f"unknown event types {unknown}")
        self.event_configuration(region)  # the starting point, if this is the first change
        with self._lock:
            self._event_configurations[region].update(changes)

    def now_ms(self) -> int:
        with self._lock:
            self._last_ms = max(self._last_ms + 1, to_ms(self.now()))
            return self._last_ms

    def publish(self, region: str, event: JsonDict) -> None:
        """Publish as AWS does (only event types enabled in ``region``), then shape as the IoT
        rule ``SELECT *, topic() AS topic`` would."""
        # A payload's eventType is the configuration's type plus "_EVENT" (THING_EVENT: THING).
        configuration_type = str(event["eventType"]).removesuffix("_EVENT")
        if not self.event_configuration(region).get(configuration_type, False):
            return
        self.outbox(region).put({**event, "topic": _topic(event)})

    def _base(self, event_type: str, operation: str, account_id: str | None) -> JsonDict:
        base: JsonDict = {
            "eventType": event_type,
            "eventId": str(uuid.uuid4()),
            "timestamp": self.now_ms(),
            "operation": operation,
        }
        if account_id is not None:
            base["accountId"] = account_id
        return base

    # Payloads exactly as https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html documents them.

    def thing_event(self, operation: str, thing: FakeThing) -> JsonDict:
        return {
            **self._base("THING_EVENT", operation, thing.account_id),
            "thingId": thing.thing_id,
            "thingName": thing.thing_name,
            "versionNumber": thing.version,
            "thingTypeName": _thing_type_name(thing),
            "attributes": dict(thing.attributes),
        }

    def thing_type_event(self, operation: str, thing_type: FakeThingType) -> JsonDict:
        properties = thing_type.thing_type_properties or {}
        deprecation = thing_type.metadata.get("deprecationDate")
        event = {
            **self._base("THING_TYPE_EVENT", operation, thing_type.account_id),
            "thingTypeId": thing_type.thing_type_id,
            "thingTypeName": thing_type.thing_type_name,
            "isDeprecated": bool(thing_type.metadata.get("deprecated")),
            "deprecationDate": int(deprecation.timestamp()) if deprecation else None,
            "searchableAttributes": list(properties.get("searchableAttributes") or []),
            "description": properties.get("thingTypeDescription"),
        }
        propagating = (properties.get("mqtt5Configuration") or {}).get("propagatingAttributes")
        if propagating:
            event["propagatingAttributes"] = propagating
        return event

    def type_association_event(
        self, operation: str, thing: FakeThing, thing_type_name: str
    ) -> JsonDict:
        # The documented example carries no accountId.
        return {
            **self._base("THING_TYPE_ASSOCIATION_EVENT", operation, None),
            "thingId": thing.thing_id,
            "thingName": thing.thing_name,
            "thingTypeName": thing_type_name,
        }

    def thing_group_event(
        self, operation: str, group: FakeThingGroup, backend: IoTBackend
    ) -> JsonDict:
        parent = _find_group(backend, group.parent_group_name) if group.parent_group_name else None
        chain = group.metadata.get("rootToParentThingGroups") or []
        return {
            **self._base("THING_GROUP_EVENT", operation, group.account_id),
            "thingGroupId": group.thing_group_id,
            "thingGroupName": group.thing_group_name,
            "versionNumber": group.version,
            "parentGroupName": group.parent_group_name or None,
            "parentGroupId": parent.thing_group_id if parent else None,
            "description": group.thing_group_properties.get("thingGroupDescription"),
            # A root group's chain is null, not [] (registry-events.html, the CREATED example).
            "rootToParentThingGroups": [
                {"groupArn": entry["groupArn"], "groupId": _group_id(backend, entry)}
                for entry in chain
            ]
            or None,
            "attributes": _group_attributes(group),
            "dynamicGroupMappingId": getattr(group, "crr_dynamic_mapping_id", None),
        }

    def membership_event(
        self, operation: str, group: FakeThingGroup, thing: FakeThing, membership_id: str
    ) -> JsonDict:
        return {
            **self._base("THING_GROUP_MEMBERSHIP_EVENT", operation, group.account_id),
            "groupArn": group.arn,
            "groupId": group.thing_group_id,
            "thingArn": thing.arn,
            "thingId": thing.thing_id,
            "membershipId": membership_id,
        }

    def hierarchy_event(
        self, operation: str, parent: FakeThingGroup, child: FakeThingGroup
    ) -> JsonDict:
        return {
            **self._base("THING_GROUP_HIERARCHY_EVENT", operation, parent.account_id),
            "thingGroupId": parent.thing_group_id,
            "thingGroupName": parent.thing_group_name,
            "childGroupId": child.thing_group_id,
            "childGroupName": child.thing_group_name,
        }


class _Installed:
    """The emulation currently receiving events (one per process: the patches are global)."""

    emulation: RegistryEmulation | None = None


def _find_group(backend: IoTBackend, name: str) -> FakeThingGroup | None:
    for group in backend.thing_groups.values():
        if group.thing_group_name == name:
            return group
    return None


def _group_id(backend: IoTBackend, entry: Mapping[str, str]) -> str | None:
    group = backend.thing_groups.get(entry["groupArn"])
    return group.thing_group_id if group else None


def _find_thing(backend: IoTBackend, name: str) -> FakeThing | None:
    for thing in backend.things.values():
        if thing.thing_name == name:
            return thing
    return None


def _find_type(backend: IoTBackend, name: str) -> FakeThingType | None:
    for thing_type in backend.thing_types.values():
        if thing_type.thing_type_name == name:
            return thing_type
    return None
