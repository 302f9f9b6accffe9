"""THE ONE PLACE where the sandbox supplies AWS behaviour that moto 5.2.5 lacks.

Everything else in the sandbox is moto running for real. Each patch or helper below names the AWS
behaviour it emulates and where that behaviour is documented (``reference/aws-iot-registry.md``,
``reference/moto.md``). Patches are applied to moto's *backends and response classes* in this
process, which is also the process that hosts the ThreadedMotoServer, so every client of the
endpoint (a test, the pipeline's own handlers, the AWS CLI from another shell) sees them.
``install()`` applies them and ``uninstall()`` puts moto back exactly as it was, so other tests
that use ``mock_aws`` in the same process see plain moto.

Contents, in the order of the data flow:
1. Lambda runs our handlers (``LambdaSimpleBackend.invoke``).
2. Registry events: the IoT backend's mutating calls publish AWS-shaped registry events into a
   per-region ``Outbox``, as the IoT rule ``SELECT *, topic() AS topic`` would see them.
3. moto gaps that change the pipeline's behaviour (listed in ``MOTO_GAPS``).
4. Delivery quirks (duplicates, reordering, drops) under a seed, and the IoT rule's
   Step Functions action.
5. Global Table replication between the two regions' state tables.
6. The DynamoDB-stream event source mapping that feeds the replicator in Lambda's event shape.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.iot.exceptions import (
    InvalidRequestException,
    ResourceAlreadyExistsException,
    VersionConflictException,
)
from moto.iot.models import FakeThing, FakeThingGroup, FakeThingType, IoTBackend
from moto.iot.responses import IoTResponse
from moto.moto_api._internal import mock_random

JsonDict = dict[str, Any]
Handler = Callable[[JsonDict, Any], Any]

# The moto gaps this module closes, one line each (the tests name the same behaviours).
MOTO_GAPS = (
    "DeleteThing on a missing thing succeeds (moto: 404)",
    "DeleteThing removes the thing from its thing groups (moto: stays listed)",
    "A thing's version starts at 1 and goes up by 1 on each UpdateThing (moto: always 1)",
    "CreateThing on an existing name: same config is idempotent, else ResourceAlreadyExists "
    "(moto: silently replaces)",
    "CreateThingType on an existing name: same properties idempotent, else ResourceAlreadyExists "
    "(moto: overwrites)",
    "UpdateThingGroup: merge=false replaces all attributes, '' removes a key, {} clears "
    "(moto: stores '' and ignores {})",
    "Create/Update/DeleteDynamicThingGroup store queryString, indexName, queryVersion and "
    "DescribeThingGroup reports them (moto: not implemented; no membership is computed)",
    "UpdateThingType changes description/searchable attributes (moto: not implemented)",
    "DeprecateThingType records deprecationDate (moto: only the flag)",
    "DeleteThingType refuses a type that is not deprecated or still has things "
    "(moto: deletes at once; the 5-minute wait is not emulated)",
)


# --------------------------------------------------------------------------------------------
# Patch bookkeeping
# --------------------------------------------------------------------------------------------


class _Patches:
    """Attributes replaced on moto classes, with what to put back."""

    _MISSING = object()

    def __init__(self) -> None:
        self._saved: list[tuple[object, str, object]] = []

    def set(self, owner: object, name: str, value: object) -> None:
        self._saved.append((owner, name, vars(owner).get(name, self._MISSING)))
        setattr(owner, name, value)

    def original(self, owner: object, name: str) -> Any:
        for saved_owner, saved_name, value in self._saved:
            if saved_owner is owner and saved_name == name and value is not self._MISSING:
                return value
        return getattr(owner, name)

    def restore(self) -> None:
        for owner, name, value in reversed(self._saved):
            if value is self._MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, value)
        self._saved.clear()


# --------------------------------------------------------------------------------------------
# 1. Lambda runs our handlers
# --------------------------------------------------------------------------------------------

# One process hosts every "function": handlers read their settings from os.environ per call, so
# invocations are serialised while a function's environment is applied.
_ENV_LOCK = threading.RLock()


@contextmanager
def function_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Apply a function's environment variables for one call, then restore the process's."""
    with _ENV_LOCK:
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str = ""
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def import_handler(path: str) -> Handler:
    """``"pipeline.persist.lambda_handler"`` → the function, imported the way Lambda does."""
    module_name, _, attribute = path.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


def call_handler(
    handler_path: str, event: Any, env: Mapping[str, str], function_name: str = ""
) -> Any:
    """Run a handler as Lambda would: its environment applied, a context object passed."""
    handler = import_handler(handler_path)
    with function_environment(env):
        return handler(event, LambdaContext(function_name or handler_path))


@dataclass(frozen=True)
class InvocationError:
    function_name: str
    error_type: str
    message: str


def _lambda_invoke(  # noqa: PLR0917 - moto's own signature, called positionally
    self: LambdaSimpleBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> bytes:
    """AWS Lambda runs the function's code (moto's Docker-free backend only echoes the payload).

    Reference: moto.md "Running the project's own handlers as Lambda tasks". An exception becomes
    Lambda's unhandled-error response (``x-amz-function-error: Unhandled``, ``errorType`` = the
    exception class name), which is what Step Functions' Retry/Catch match on.
    """
    function = self.get_function(function_name, qualifier)
    env = {
        **(function.environment_vars or {}),
        "AWS_REGION": self.region_name,
        "AWS_DEFAULT_REGION": self.region_name,
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
    }
    event = json.loads(body) if body else {}
    try:
        result = call_handler(str(function.handler), event, env, function.function_name)
    except Exception as error:  # Lambda's own contract: an unhandled error is a response
        if _Installed.emulation is not None:
            _Installed.emulation.invocation_errors.append(
                InvocationError(function.function_name, type(error).__name__, str(error))
            )
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
    return json.dumps(result, default=str).encode()


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

    def peek(self) -> list[JsonDict]:
        with self._lock:
            return list(self._events)

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)


def _topic(event: Mapping[str, Any]) -> str:
    """The reserved MQTT topic AWS publishes the event on (aws-iot-registry.md §1.2)."""
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
    """State of the emulated AWS behaviour: outboxes, clock, ids, invocation errors.

    ``clock`` returns epoch seconds; event timestamps are epoch milliseconds, strictly increasing
    so two calls in the same millisecond still have an order (AWS calls take longer than 1 ms).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last_ms = 0
        self._outboxes: dict[str, Outbox] = {}
        self.invocation_errors: list[InvocationError] = []

    def outbox(self, region: str) -> Outbox:
        with self._lock:
            return self._outboxes.setdefault(region, Outbox())

    def clear(self) -> None:
        with self._lock:
            self._outboxes.clear()
        self.invocation_errors.clear()

    def now_ms(self) -> int:
        with self._lock:
            self._last_ms = max(self._last_ms + 1, int(self._clock() * 1000))
            return self._last_ms

    def publish(self, region: str, event: JsonDict) -> None:
        """Publish as AWS does, then shape as the IoT rule ``SELECT *, topic() AS topic`` would."""
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

    # Payloads exactly as aws-iot-registry.md §1.3 documents them.

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
            "rootToParentThingGroups": [
                {"groupArn": entry["groupArn"], "groupId": _group_id(backend, entry)}
                for entry in chain
            ],
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


class _Installed:
    """The emulation currently receiving events (one per process: the patches are global)."""

    emulation: RegistryEmulation | None = None


_PATCHES = _Patches()


def _publish(backend: IoTBackend, event_factory: Callable[[RegistryEmulation], JsonDict]) -> None:
    emulation = _Installed.emulation
    if emulation is not None:
        emulation.publish(backend.region_name, event_factory(emulation))


def _original(name: str) -> Any:
    return _PATCHES.original(IoTBackend, name)


# ---- things -----------------------------------------------------------------------------------


def _create_thing(
    self: IoTBackend,
    thing_name: str,
    thing_type_name: str,
    attribute_payload: dict[str, Any] | None,
    billing_group_name: str | None = None,
) -> FakeThing:
    """CreateThing: idempotent for the same config, else ResourceAlreadyExistsException
    (aws-iot-registry.md §2.1); publishes THING_EVENT CREATED (version 1) and, for a typed
    thing, THING_TYPE_ASSOCIATION_EVENT CREATED [inferred]."""
    existing = _find_thing(self, thing_name)
    if existing is not None:
        wanted_attributes = (attribute_payload or {}).get("attributes") or {}
        same = (
            _thing_type_name(existing) == (thing_type_name or None)
            and existing.attributes == wanted_attributes
            and (existing.billing_group_name or None) == (billing_group_name or None)
        )
        if same:
            return existing
        raise ResourceAlreadyExistsException(
            f"Thing {thing_name} already exists in account with different attributes",
            resource_id=existing.thing_id,
            resource_arn=existing.arn,
        )
    thing: FakeThing = _original("create_thing")(
        self, thing_name, thing_type_name, attribute_payload, billing_group_name
    )
    _publish(self, lambda emu: emu.thing_event("CREATED", thing))
    if thing.thing_type is not None:
        type_name = thing.thing_type.thing_type_name
        _publish(self, lambda emu: emu.type_association_event("CREATED", thing, type_name))
    return thing


def _update_thing(
    self: IoTBackend,
    thing_name: str,
    thing_type_name: str,
    attribute_payload: dict[str, Any] | None,
    remove_thing_type: bool,
) -> None:
    """UpdateThing: the version goes up by 1 (moto keeps 1); publishes THING_EVENT UPDATED with the
    resulting attributes, and type association DELETED/CREATED when the type changes."""
    thing = self.describe_thing(thing_name)
    type_before = _thing_type_name(thing)
    _original("update_thing")(
        self, thing_name, thing_type_name, attribute_payload, remove_thing_type
    )
    thing.version += 1
    _publish(self, lambda emu: emu.thing_event("UPDATED", thing))
    type_after = _thing_type_name(thing)
    if type_before != type_after:
        if type_before:
            before = type_before
            _publish(self, lambda emu: emu.type_association_event("DELETED", thing, before))
        if type_after:
            after = type_after
            _publish(self, lambda emu: emu.type_association_event("CREATED", thing, after))


def _delete_thing(self: IoTBackend, thing_name: str) -> None:
    """DeleteThing: succeeds for a missing thing (AWS API reference, DeleteThing) and takes the
    thing out of its groups; publishes THING_EVENT DELETED with the thing's last version."""
    thing = _find_thing(self, thing_name)
    if thing is None:
        return
    _original("delete_thing")(self, thing_name)
    for group in self.thing_groups.values():
        group.things.pop(thing.arn, None)
        getattr(group, "crr_membership_ids", {}).pop(thing.arn, None)
    _publish(self, lambda emu: emu.thing_event("DELETED", thing))


# ---- thing types ------------------------------------------------------------------------------


def _create_thing_type(
    self: IoTBackend, thing_type_name: str, thing_type_properties: dict[str, Any]
) -> tuple[str, str]:
    """CreateThingType: idempotent for the same properties, else ResourceAlreadyExistsException
    (aws-iot-registry.md §2.2); publishes THING_TYPE_EVENT CREATED."""
    existing = _find_type(self, thing_type_name)
    if existing is not None:
        if (existing.thing_type_properties or {}) == (thing_type_properties or {}):
            return existing.thing_type_name, existing.arn
        raise ResourceAlreadyExistsException(
            f"Thing type {thing_type_name} already exists with different properties",
            resource_id=existing.thing_type_id,
            resource_arn=existing.arn,
        )
    name, arn = _original("create_thing_type")(self, thing_type_name, thing_type_properties)
    thing_type = self.thing_types[arn]
    _publish(self, lambda emu: emu.thing_type_event("CREATED", thing_type))
    return name, arn


def _deprecate_thing_type(
    self: IoTBackend, thing_type_name: str, undo_deprecate: bool
) -> FakeThingType:
    """DeprecateThingType: records ``deprecationDate``; publishes THING_TYPE_EVENT UPDATED with
    ``isDeprecated`` flipped (aws-iot-registry.md §1.2, inferred)."""
    thing_type: FakeThingType = _original("deprecate_thing_type")(
        self, thing_type_name, undo_deprecate
    )
    if undo_deprecate:
        thing_type.metadata.pop("deprecationDate", None)
    else:
        thing_type.metadata["deprecationDate"] = datetime.fromtimestamp(
            (_Installed.emulation.now_ms() if _Installed.emulation else time.time() * 1000) / 1000
        )
    _publish(self, lambda emu: emu.thing_type_event("UPDATED", thing_type))
    return thing_type


def _update_thing_type(
    self: IoTBackend, thing_type_name: str, thing_type_properties: dict[str, Any]
) -> None:
    """UpdateThingType (a newer API moto lacks): the given properties replace the stored ones;
    publishes THING_TYPE_EVENT UPDATED."""
    thing_type = self.describe_thing_type(thing_type_name)
    thing_type.thing_type_properties = {
        **(thing_type.thing_type_properties or {}),
        **(thing_type_properties or {}),
    }
    _publish(self, lambda emu: emu.thing_type_event("UPDATED", thing_type))


def _delete_thing_type(self: IoTBackend, thing_type_name: str) -> None:
    """DeleteThingType: refused unless the type is deprecated and no thing has it
    (aws-iot-registry.md §2.2; the 5-minute wait is not emulated); publishes DELETED."""
    thing_type = self.describe_thing_type(thing_type_name)
    if not thing_type.metadata.get("deprecated"):
        raise InvalidRequestException(
            f"Can not delete thing type {thing_type_name}: it is not deprecated"
        )
    if any(_thing_type_name(thing) == thing_type_name for thing in self.things.values()):
        raise InvalidRequestException(
            f"Can not delete thing type {thing_type_name}: things are still associated with it"
        )
    _original("delete_thing_type")(self, thing_type_name)
    _publish(self, lambda emu: emu.thing_type_event("DELETED", thing_type))


# ---- thing groups -----------------------------------------------------------------------------


def _create_thing_group(
    self: IoTBackend,
    thing_group_name: str,
    parent_group_name: str,
    thing_group_properties: dict[str, Any],
) -> tuple[str, str, str]:
    """CreateThingGroup: publishes THING_GROUP_EVENT CREATED and, with a parent,
    THING_GROUP_HIERARCHY_EVENT ADDED (the only way a hierarchy link is made)."""
    existed = _find_group(self, thing_group_name) is not None
    result: tuple[str, str, str] = _original("create_thing_group")(
        self, thing_group_name, parent_group_name, thing_group_properties
    )
    if not existed:
        group = self.thing_groups[result[1]]
        _publish(self, lambda emu: emu.thing_group_event("CREATED", group, self))
        parent = _find_group(self, parent_group_name) if parent_group_name else None
        if parent is not None:
            _publish(self, lambda emu: emu.hierarchy_event("ADDED", parent, group))
    return result


def _apply_group_properties(group: FakeThingGroup, properties: Mapping[str, Any]) -> None:
    payload = properties.get("attributePayload")
    if payload is not None:
        current = _group_attributes(group)
        given = payload.get("attributes") or {}
        merged = {**current, **given} if payload.get("merge") else dict(given)
        # An empty value removes the key (AttributePayload, aws-iot-registry.md §2.1).
        _group_properties(group)["attributePayload"] = {
            "attributes": {key: value for key, value in merged.items() if value != ""}
        }
    if "thingGroupDescription" in properties:
        group.thing_group_properties["thingGroupDescription"] = properties["thingGroupDescription"]


def _update_thing_group(
    self: IoTBackend,
    thing_group_name: str,
    thing_group_properties: dict[str, Any],
    expected_version: int | None,
) -> int:
    """UpdateThingGroup: merge=false (or omitted) replaces the whole attribute set, ``""`` removes
    a key, ``{}`` clears (moto stores ``""`` and ignores ``{}``); honours expectedVersion;
    publishes THING_GROUP_EVENT UPDATED with the new version."""
    group = self.describe_thing_group(thing_group_name)
    if expected_version and expected_version != group.version:
        raise VersionConflictException(thing_group_name)
    _apply_group_properties(group, thing_group_properties or {})
    group.version += 1
    _publish(self, lambda emu: emu.thing_group_event("UPDATED", group, self))
    return int(group.version)


def _delete_thing_group(self: IoTBackend, thing_group_name: str) -> None:
    """DeleteThingGroup: publishes THING_GROUP_EVENT DELETED when a group was deleted."""
    group = _find_group(self, thing_group_name)
    _original("delete_thing_group")(self, thing_group_name)
    if group is not None:
        _publish(self, lambda emu: emu.thing_group_event("DELETED", group, self))


def _create_dynamic_thing_group(
    self: IoTBackend,
    *,
    thing_group_name: str,
    thing_group_properties: dict[str, Any] | None,
    query_string: str,
    index_name: str | None,
    query_version: str | None,
) -> FakeThingGroup:
    """CreateDynamicThingGroup (moto lacks it): a thing group holding its query; no membership
    is computed. Publishes THING_GROUP_EVENT CREATED with a ``dynamicGroupMappingId``."""
    existing = _find_group(self, thing_group_name)
    if existing is not None:
        if getattr(existing, "crr_query_string", None) == query_string:
            return existing
        raise ResourceAlreadyExistsException(
            f"Thing Group {thing_group_name} already exists",
            resource_id=existing.thing_group_id,
            resource_arn=existing.arn,
        )
    group = FakeThingGroup(
        thing_group_name,
        "",
        dict(thing_group_properties or {}),
        self.account_id,
        self.region_name,
        self.thing_groups,
    )
    group.crr_query_string = query_string  # type: ignore[attr-defined]
    group.crr_index_name = index_name or "AWS_Things"  # type: ignore[attr-defined]
    group.crr_query_version = query_version or "2017-09-30"  # type: ignore[attr-defined]
    group.crr_dynamic_mapping_id = str(mock_random.uuid4())  # type: ignore[attr-defined]
    self.thing_groups[group.arn] = group
    _publish(self, lambda emu: emu.thing_group_event("CREATED", group, self))
    return group


def _update_dynamic_thing_group(
    self: IoTBackend,
    *,
    thing_group_name: str,
    thing_group_properties: dict[str, Any] | None,
    expected_version: int | None,
    query_string: str | None,
    index_name: str | None,
    query_version: str | None,
) -> int:
    """UpdateDynamicThingGroup (moto lacks it): may change the query; publishes UPDATED."""
    group = self.describe_thing_group(thing_group_name)
    if getattr(group, "crr_query_string", None) is None:
        raise InvalidRequestException(f"{thing_group_name} is not a dynamic thing group")
    if expected_version and expected_version != group.version:
        raise VersionConflictException(thing_group_name)
    _apply_group_properties(group, thing_group_properties or {})
    if query_string:
        group.crr_query_string = query_string  # type: ignore[attr-defined]
    if index_name:
        group.crr_index_name = index_name  # type: ignore[attr-defined]
    if query_version:
        group.crr_query_version = query_version  # type: ignore[attr-defined]
    group.version += 1
    _publish(self, lambda emu: emu.thing_group_event("UPDATED", group, self))
    return int(group.version)


def _delete_dynamic_thing_group(self: IoTBackend, thing_group_name: str) -> None:
    """DeleteDynamicThingGroup (moto lacks it): like DeleteThingGroup."""
    self.delete_thing_group(thing_group_name)


def _group_to_dict(self: FakeThingGroup) -> JsonDict:
    """DescribeThingGroup reports a dynamic group's queryString, indexName, queryVersion, status."""
    data: JsonDict = _PATCHES.original(FakeThingGroup, "to_dict")(self)
    query = getattr(self, "crr_query_string", None)
    if query is not None:
        data.update(
            queryString=query,
            indexName=getattr(self, "crr_index_name", "AWS_Things"),
            queryVersion=getattr(self, "crr_query_version", "2017-09-30"),
            status="ACTIVE",
        )
    return data


# ---- memberships ------------------------------------------------------------------------------


def _add_thing_to_thing_group(
    self: IoTBackend,
    thing_group_name: str | None,
    thing_group_arn: str | None,
    thing_name: str | None,
    thing_arn: str | None,
) -> None:
    """AddThingToThingGroup (also reached from UpdateThingGroupsForThing): publishes
    THING_GROUP_MEMBERSHIP_EVENT ADDED (ARNs only, a new membershipId) when the thing joins."""
    group = self._identify_thing_group(thing_group_name, thing_group_arn)
    thing = self._identify_thing(thing_name, thing_arn)
    was_member = thing.arn in group.things
    _original("add_thing_to_thing_group")(
        self, thing_group_name, thing_group_arn, thing_name, thing_arn
    )
    if not was_member:
        ids = group.__dict__.setdefault("crr_membership_ids", {})
        membership_id = ids[thing.arn] = str(uuid.uuid4())
        _publish(self, lambda emu: emu.membership_event("ADDED", group, thing, membership_id))


def _remove_thing_from_thing_group(
    self: IoTBackend,
    thing_group_name: str | None,
    thing_group_arn: str | None,
    thing_name: str | None,
    thing_arn: str | None,
) -> None:
    """RemoveThingFromThingGroup: publishes THING_GROUP_MEMBERSHIP_EVENT REMOVED when it leaves."""
    group = self._identify_thing_group(thing_group_name, thing_group_arn)
    thing = self._identify_thing(thing_name, thing_arn)
    was_member = thing.arn in group.things
    _original("remove_thing_from_thing_group")(
        self, thing_group_name, thing_group_arn, thing_name, thing_arn
    )
    if was_member:
        ids = group.__dict__.setdefault("crr_membership_ids", {})
        membership_id = ids.pop(thing.arn, None) or str(uuid.uuid4())
        _publish(self, lambda emu: emu.membership_event("REMOVED", group, thing, membership_id))


# ---- response handlers for the calls moto does not route ---------------------------------------


def _path_name(response: IoTResponse, marker: str) -> str:
    from urllib.parse import unquote

    return unquote(response.path.split(marker)[-1].split("?")[0])


def _backend(response: IoTResponse) -> Any:
    # The methods added by this module are unknown to moto's type hints.
    return response.iot_backend


def _response_create_dynamic_thing_group(self: IoTResponse) -> Any:
    from moto.core.responses import ActionResult

    group = _backend(self).create_dynamic_thing_group(
        thing_group_name=_path_name(self, "/dynamic-thing-groups/"),
        thing_group_properties=self._get_param("thingGroupProperties"),
        query_string=self._get_param("queryString"),
        index_name=self._get_param("indexName"),
        query_version=self._get_param("queryVersion"),
    )
    return ActionResult(
        {
            "thingGroupName": group.thing_group_name,
            "thingGroupArn": group.arn,
            "thingGroupId": group.thing_group_id,
            "indexName": group.crr_index_name,
            "queryString": group.crr_query_string,
            "queryVersion": group.crr_query_version,
        }
    )


def _response_update_dynamic_thing_group(self: IoTResponse) -> Any:
    from moto.core.responses import ActionResult

    version = _backend(self).update_dynamic_thing_group(
        thing_group_name=_path_name(self, "/dynamic-thing-groups/"),
        thing_group_properties=self._get_param("thingGroupProperties"),
        expected_version=self._get_param("expectedVersion"),
        query_string=self._get_param("queryString"),
        index_name=self._get_param("indexName"),
        query_version=self._get_param("queryVersion"),
    )
    return ActionResult({"version": version})


def _response_delete_dynamic_thing_group(self: IoTResponse) -> Any:
    from moto.core.responses import EmptyResult

    _backend(self).delete_dynamic_thing_group(
        thing_group_name=_path_name(self, "/dynamic-thing-groups/")
    )
    return EmptyResult()


def _response_update_thing_type(self: IoTResponse) -> Any:
    from moto.core.responses import EmptyResult

    _backend(self).update_thing_type(
        thing_type_name=_path_name(self, "/thing-types/"),
        thing_type_properties=self._get_param("thingTypeProperties"),
    )
    return EmptyResult()


# --------------------------------------------------------------------------------------------
# install / uninstall
# --------------------------------------------------------------------------------------------

_BACKEND_PATCHES: dict[str, Callable[..., Any]] = {
    "create_thing": _create_thing,
    "update_thing": _update_thing,
    "delete_thing": _delete_thing,
    "create_thing_type": _create_thing_type,
    "deprecate_thing_type": _deprecate_thing_type,
    "update_thing_type": _update_thing_type,
    "delete_thing_type": _delete_thing_type,
    "create_thing_group": _create_thing_group,
    "update_thing_group": _update_thing_group,
    "delete_thing_group": _delete_thing_group,
    "create_dynamic_thing_group": _create_dynamic_thing_group,
    "update_dynamic_thing_group": _update_dynamic_thing_group,
    "delete_dynamic_thing_group": _delete_dynamic_thing_group,
    "add_thing_to_thing_group": _add_thing_to_thing_group,
    "remove_thing_from_thing_group": _remove_thing_from_thing_group,
}
_RESPONSE_PATCHES: dict[str, Callable[..., Any]] = {
    "create_dynamic_thing_group": _response_create_dynamic_thing_group,
    "update_dynamic_thing_group": _response_update_dynamic_thing_group,
    "delete_dynamic_thing_group": _response_delete_dynamic_thing_group,
    "update_thing_type": _response_update_thing_type,
}


class EmulationAlreadyInstalledError(Exception):
    """Another sandbox in this process already owns the moto patches."""


def install(emulation: RegistryEmulation) -> None:
    """Apply every patch of this module to moto; ``emulation`` receives the events."""
    if _Installed.emulation is not None:
        raise EmulationAlreadyInstalledError("the registry emulation is already installed")
    _PATCHES.set(LambdaSimpleBackend, "invoke", _lambda_invoke)
    for name, function in _BACKEND_PATCHES.items():
        _PATCHES.set(IoTBackend, name, function)
    for name, function in _RESPONSE_PATCHES.items():
        _PATCHES.set(IoTResponse, name, function)
    _PATCHES.set(FakeThingGroup, "to_dict", _group_to_dict)
    _Installed.emulation = emulation


def uninstall() -> None:
    """Put moto back exactly as it was."""
    _PATCHES.restore()
    _Installed.emulation = None


def active() -> RegistryEmulation | None:
    return _Installed.emulation


# --------------------------------------------------------------------------------------------
# 4. Delivery quirks and the IoT rule
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """How the IoT rule delivers events: AWS publishes at least once and in no guaranteed order
    (aws-iot-registry.md §1.1). The default delivers every event once, in order.

    ``duplicate_probability``: each event is delivered a second time with this probability.
    ``drop_probability``: each event is lost with this probability (emulates a failed rule action).
    ``reorder_window``: events are shuffled within consecutive windows of this many events.
    ``seed``: the same seed and the same input give the same deliveries.
    """

    duplicate_probability: float = 0.0
    drop_probability: float = 0.0
    reorder_window: int = 0
    seed: int = 0


@dataclass(frozen=True)
class DeliveryOutcome:
    delivered: list[JsonDict]
    dropped: int
    duplicated: int


class DeliveryQuirks:
    """Applies a ``Delivery`` policy; holds the seeded random source across calls."""

    def __init__(self, policy: Delivery) -> None:
        self.policy = policy
        self._rng = random.Random(policy.seed)

    def apply(self, events: Iterable[JsonDict]) -> DeliveryOutcome:
        policy = self.policy
        delivered: list[JsonDict] = []
        dropped = duplicated = 0
        for event in events:
            if policy.drop_probability and self._rng.random() < policy.drop_probability:
                dropped += 1
                continue
            delivered.append(event)
            if policy.duplicate_probability and self._rng.random() < policy.duplicate_probability:
                delivered.append(dict(event))
                duplicated += 1
        window = policy.reorder_window
        if window > 1:
            for start in range(0, len(delivered), window):
                chunk = delivered[start : start + window]
                self._rng.shuffle(chunk)
                delivered[start : start + window] = chunk
        return DeliveryOutcome(delivered, dropped, duplicated)


def start_executions(sfn: Any, state_machine_arn: str, events: Iterable[JsonDict]) -> list[str]:
    """The IoT rule's ``stepFunctions`` action: one StartExecution per event, input = the event.

    Names are a prefix plus a UUID, as the rule action makes them (aws-iot-registry.md §5.1), so
    Step Functions never deduplicates a duplicate delivery.
    """
    arns = []
    for event in events:
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn,
            name=f"registry-event-{uuid.uuid4().hex}",
            input=json.dumps(event),
        )
        arns.append(response["executionArn"])
    return arns


class ExecutionTimeoutError(Exception):
    """Executions were still RUNNING when the deadline passed."""

    def __init__(self, running: list[str]) -> None:
        super().__init__(f"{len(running)} executions still RUNNING, e.g. {running[:3]}")
        self.running = running


def wait_for_executions(
    sfn: Any, execution_arns: Iterable[str], timeout: float = 60.0, poll_interval: float = 0.01
) -> dict[str, str]:
    """Poll DescribeExecution until no execution is RUNNING; their final statuses by ARN."""
    pending = list(execution_arns)
    statuses: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while pending:
        still_running = []
        for arn in pending:
            status = sfn.describe_execution(executionArn=arn)["status"]
            if status == "RUNNING":
                still_running.append(arn)
            else:
                statuses[arn] = status
        pending = still_running
        if pending:
            if time.monotonic() > deadline:
                raise ExecutionTimeoutError(pending)
            time.sleep(poll_interval)  # pacing the poll of a condition, not waiting for one
    return statuses


# --------------------------------------------------------------------------------------------
# 5. and 6. DynamoDB streams: Global Table replication and the event source mapping
# --------------------------------------------------------------------------------------------


def is_noop_modify(record: Mapping[str, Any]) -> bool:
    """moto emits MODIFY for a write that changes nothing; AWS emits no record at all."""
    data = record.get("dynamodb", {})
    return record.get("eventName") == "MODIFY" and data.get("NewImage") == data.get("OldImage")


def _sequence(record: Mapping[str, Any]) -> int:
    return int(record["dynamodb"]["SequenceNumber"])


class StreamCursor:
    """Reads one table's stream from the start, remembering the last sequence number per shard.

    ``read`` returns records after the committed position without moving it; ``commit`` moves it.
    No-op MODIFY records are skipped here, because AWS never emits them.
    """

    def __init__(self, streams: Any, stream_arn: str) -> None:
        self._streams = streams
        self.stream_arn = stream_arn
        self._committed: dict[str, str] = {}

    def _shards(self) -> list[str]:
        description = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        return [shard["ShardId"] for shard in description.get("Shards", [])]

    def read(self, limit: int = 1000) -> list[tuple[str, JsonDict]]:
        """Up to ``limit`` records after the committed position, as ``(shard_id, record)``."""
        out: list[tuple[str, JsonDict]] = []
        for shard_id in self._shards():
            after = self._committed.get(shard_id)
            kwargs: JsonDict = {"StreamArn": self.stream_arn, "ShardId": shard_id}
            if after is None:
                kwargs["ShardIteratorType"] = "TRIM_HORIZON"
            else:
                kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
                kwargs["SequenceNumber"] = after
            iterator = self._streams.get_shard_iterator(**kwargs)["ShardIterator"]
            while iterator and len(out) < limit:
                page = self._streams.get_records(ShardIterator=iterator, Limit=limit - len(out))
                records = page.get("Records", [])
                if not records:
                    break
                for record in records:
                    if is_noop_modify(record):
                        # Nothing to deliver, but never read it again.
                        if not out:
                            self._committed[shard_id] = record["dynamodb"]["SequenceNumber"]
                        continue
                    out.append((shard_id, record))
                iterator = page.get("NextShardIterator")
            if len(out) >= limit:
                break
        return out

    def commit(self, shard_id: str, sequence_number: str) -> None:
        self._committed[shard_id] = sequence_number


def _fingerprint(table_key: Any, image: Any) -> str:
    return json.dumps([table_key, image], sort_keys=True, default=str)


class GlobalTableReplication:
    """DynamoDB Global Tables (version 2019.11.21) between two replicas of the same table.

    Reference: aws-iot-registry.md §4 (streams under global tables). Each replica's writes are
    applied to the other replica in stream order (last writer wins); INSERT/MODIFY become a put of
    the new image, REMOVE a delete. A replicated write appears in the receiving replica's stream
    (the replicator depends on that) but is not replicated back.
    """

    def __init__(self, regions: Mapping[str, tuple[Any, Any, str]], table_name: str) -> None:
        # region -> (dynamodb client, streams client, stream arn)
        self._table_name = table_name
        self._clients = {region: clients[0] for region, clients in regions.items()}
        self._cursors = {
            region: StreamCursor(clients[1], clients[2]) for region, clients in regions.items()
        }
        self._echoes: dict[str, Counter[str]] = {region: Counter() for region in regions}

    def replicate(self) -> int:
        """Copy every new write to the other replicas; the number of writes applied."""
        applied = 0
        for source, cursor in self._cursors.items():
            while True:
                batch = cursor.read()
                if not batch:
                    break
                writes = [(record, self._is_echo(source, record)) for _, record in batch]
                applied += self._copy(source, [record for record, echo in writes if not echo])
                shard_id, last = batch[-1]
                cursor.commit(shard_id, last["dynamodb"]["SequenceNumber"])
        return applied

    def _is_echo(self, source: str, record: Mapping[str, Any]) -> bool:
        """Our own replicated write arriving back in the stream of the replica we wrote to."""
        fingerprint = _fingerprint(record["dynamodb"]["Keys"], _new_image(record))
        echoes = self._echoes[source]
        if echoes[fingerprint]:
            echoes[fingerprint] -= 1
            return True
        return False

    def _copy(self, source: str, records: list[Mapping[str, Any]]) -> int:
        """Apply records to the other replicas in stream order, 25 per BatchWriteItem; a key
        seen twice starts a new batch, so the later write still lands last (last writer wins)."""
        applied = 0
        for target, client in self._clients.items():
            if target == source:
                continue
            requests: list[dict[str, Any]] = []
            keys: set[str] = set()
            for record in records:
                data = record["dynamodb"]
                key = json.dumps(data["Keys"], sort_keys=True)
                if key in keys or len(requests) == BATCH_WRITE_LIMIT:
                    self._write(client, requests)
                    requests, keys = [], set()
                new_image = _new_image(record)
                if new_image is None:
                    requests.append({"DeleteRequest": {"Key": data["Keys"]}})
                else:
                    requests.append({"PutRequest": {"Item": new_image}})
                keys.add(key)
                self._echoes[target][_fingerprint(data["Keys"], new_image)] += 1
                applied += 1
            self._write(client, requests)
        return applied

    def _write(self, client: Any, requests: list[dict[str, Any]]) -> None:
        while requests:
            response = client.batch_write_item(RequestItems={self._table_name: requests})
            requests = response.get("UnprocessedItems", {}).get(self._table_name, [])


BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem maximum


def _new_image(record: Mapping[str, Any]) -> Any:
    return record["dynamodb"].get("NewImage") if record["eventName"] != "REMOVE" else None


def lambda_stream_record(record: Mapping[str, Any], stream_arn: str, region: str) -> JsonDict:
    """A DynamoDB Streams API record in the shape Lambda's event source mapping delivers."""
    data = dict(record["dynamodb"])
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        data["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record.get("eventID"),
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,  # moto always says us-east-1
        "dynamodb": data,
        "eventSourceARN": stream_arn,
    }


class LambdaStreamReader:
    """A table's new stream records in Lambda's event shape, each returned once.

    For tests and benchmarks that hand records to the replicator themselves; the sandbox's own
    ``EventSourceMapping`` adds batching, redelivery and the failure destination.
    """

    def __init__(self, streams: Any, stream_arn: str, region: str) -> None:
        self.arn = stream_arn
        self._region = region
        self._cursor = StreamCursor(streams, stream_arn)

    def read(self) -> list[JsonDict]:
        batch = self._cursor.read()
        for shard_id, record in batch:
            self._cursor.commit(shard_id, record["dynamodb"]["SequenceNumber"])
        return [lambda_stream_record(record, self.arn, self._region) for _, record in batch]


@dataclass(frozen=True)
class FailedBatch:
    """What Lambda sends to the on-failure destination once retries are exhausted."""

    first_sequence_number: str
    last_sequence_number: str
    size: int
    attempts: int
    reason: str


@dataclass
class MappingStats:
    batches: int = 0
    records_applied: int = 0
    batch_item_failures: int = 0
    handler_errors: int = 0
    failed_batches: list[FailedBatch] = field(default_factory=list)


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
        self.stats = MappingStats()
        self.errors: list[BaseException] = []

    def poll(self, on_batch: Callable[[MappingStats], None] | None = None) -> int:
        """Deliver pending records; the number of handler invocations made. ``on_batch`` sees
        the running totals after each batch (progress for long drains)."""
        invocations = 0
        while True:
            batch = self._cursor.read(self.batch_size)
            if not batch:
                return invocations
            invocations += 1
            delivered = self._deliver(batch)
            if on_batch is not None:
                on_batch(self.stats)
            if not delivered:
                return invocations

    def _deliver(self, batch: list[tuple[str, JsonDict]]) -> bool:
        """One attempt; True when the whole batch is checkpointed."""
        records = [
            lambda_stream_record(record, self._cursor.stream_arn, self._region)
            for _, record in batch
        ]
        self.stats.batches += 1
        failed = self._failed_sequences(records)
        by_sequence = {_sequence(record): i for i, (_, record) in enumerate(batch)}
        lowest = min((int(seq) for seq in failed if int(seq) in by_sequence), default=None)
        if lowest is None:
            self.stats.records_applied += len(batch)
            shard_id, last = batch[-1]
            self._cursor.commit(shard_id, last["dynamodb"]["SequenceNumber"])
            return True
        first_failed = by_sequence[lowest]
        self.stats.records_applied += first_failed
        if first_failed:
            shard_id, before = batch[first_failed - 1]
            self._cursor.commit(shard_id, before["dynamodb"]["SequenceNumber"])
        key = str(lowest)
        self._attempts[key] = self._attempts.get(key, 0) + 1
        if self._attempts[key] > self.max_retry_attempts:
            rest = batch[first_failed:]
            self.stats.failed_batches.append(
                FailedBatch(
                    first_sequence_number=rest[0][1]["dynamodb"]["SequenceNumber"],
                    last_sequence_number=rest[-1][1]["dynamodb"]["SequenceNumber"],
                    size=len(rest),
                    attempts=self._attempts.pop(key),
                    reason="retries exhausted",
                )
            )
            shard_id, last = batch[-1]
            self._cursor.commit(shard_id, last["dynamodb"]["SequenceNumber"])
            return True
        return False

    def _failed_sequences(self, records: list[JsonDict]) -> list[str]:
        try:
            response = self._handler({"Records": records})
        except Exception as error:  # Lambda's contract: a raised error fails the whole batch
            self.errors.append(error)
            self.stats.handler_errors += 1
            return [records[0]["dynamodb"]["SequenceNumber"]]
        failures = (response or {}).get("batchItemFailures") or []
        self.stats.batch_item_failures += len(failures)
        return [str(failure["itemIdentifier"]) for failure in failures]


__all__ = [
    "MOTO_GAPS",
    "Delivery",
    "DeliveryOutcome",
    "DeliveryQuirks",
    "EventSourceMapping",
    "ExecutionTimeoutError",
    "FailedBatch",
    "GlobalTableReplication",
    "LambdaContext",
    "Outbox",
    "RegistryEmulation",
    "StreamCursor",
    "call_handler",
    "function_environment",
    "install",
    "is_noop_modify",
    "lambda_stream_record",
    "start_executions",
    "uninstall",
    "wait_for_executions",
]
