"""Registry events in, ``Change`` values out: the edge where untrusted JSON becomes the model.

Sits at the very start of the streaming path. The persist state machine receives the payload an
IoT rule selected from ``$aws/events/...`` (or a corrective event that reconciliation emitted)
and calls ``parse_event(payload, region=AWS_REGION)``; everything after it (ordering, state-table
writes, replication) speaks ``pipeline.model.Change`` only. Reconciliation builds its corrective
events with ``corrective_event(change)``, which is the exact inverse of the parser.

Contract: a payload either parses into one ``Change`` or raises a ``PermanentError``:
``EventValidationError(field, reason)`` for a malformed shape (missing field, wrong type,
unknown ``eventType`` or ``operation``, bad ARN) or ``RegistryValidationError`` for a value that
breaks AWS IoT's name/value rules (``pipeline.rules``). Nothing is dropped silently, and no
``KeyError``/``TypeError``/``pydantic.ValidationError`` escapes. Unknown extra keys (the
``topic`` an IoT rule may add, ``accountId``, ``rootToParentThingGroups``...) are ignored.

Payload shapes: AWS IoT Developer Guide, "Registry events",
https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from pipeline import cloudtrail, rules
from pipeline.errors import EventValidationError
from pipeline.model import (
    KEY_SEPARATOR,
    STATE_FIELDS,
    Change,
    DynamicQuery,
    EntityKind,
    Origin,
    membership_name,
)

THING_EVENT = "THING_EVENT"
THING_TYPE_EVENT = "THING_TYPE_EVENT"
THING_TYPE_ASSOCIATION_EVENT = "THING_TYPE_ASSOCIATION_EVENT"
THING_GROUP_EVENT = "THING_GROUP_EVENT"
THING_GROUP_MEMBERSHIP_EVENT = "THING_GROUP_MEMBERSHIP_EVENT"
THING_GROUP_HIERARCHY_EVENT = "THING_GROUP_HIERARCHY_EVENT"
CORRECTIVE_EVENT = "CRR_CORRECTIVE_EVENT"

# Every eventType parse_event accepts (the infra tests check the IoT rule selects these).
EVENT_TYPES: tuple[str, ...] = (
    THING_EVENT,
    THING_TYPE_EVENT,
    THING_TYPE_ASSOCIATION_EVENT,
    THING_GROUP_EVENT,
    THING_GROUP_MEMBERSHIP_EVENT,
    THING_GROUP_HIERARCHY_EVENT,
    CORRECTIVE_EVENT,
)

# Below this an epoch timestamp is in seconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_SECONDS_BELOW = 100_000_000_000
# Above this no clock is plausible and the value would not survive a JSON round trip exactly.
_TIMESTAMP_MAX_MS = 2**53

_THING_ARN = re.compile(r"arn:aws[a-z-]*:iot:[a-z0-9-]*:[^:/]*:thing/(?P<name>[^/]+)", re.ASCII)
_GROUP_ARN = re.compile(
    r"arn:aws[a-z-]*:iot:[a-z0-9-]*:[^:/]*:thinggroup/(?P<name>[^/]+)", re.ASCII
)

_QUERY_KEYS = frozenset(DynamicQuery("q").to_dict())


# --- edge models ---------------------------------------------------------------------------------


def _epoch_ms(value: Any) -> int:
    """Epoch milliseconds from an event ``timestamp``; 10-digit (second) values are scaled up."""
    # bool is an int subclass: ``true`` must not become 1 ms after the epoch.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number of epoch milliseconds, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if value < 0:
        raise ValueError("must not be negative")
    millis = round(value * 1000) if value < _SECONDS_BELOW else round(value)
    if millis > _TIMESTAMP_MAX_MS:
        raise ValueError(f"must be at most {_TIMESTAMP_MAX_MS} ms")
    return millis


EpochMillis = Annotated[int, BeforeValidator(_epoch_ms)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
Crud = Literal["CREATED", "UPDATED", "DELETED"]
AddRemove = Literal["ADDED", "REMOVED"]


class _Event(BaseModel):
    # strict: no "1" -> 1 or 1 -> True coercion; extra keys (``topic``, ``accountId``) ignored.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    event_id: NonEmptyStr = Field(alias="eventId")
    timestamp: EpochMillis


class _ThingEvent(_Event):
    operation: Crud
    thing_id: NonEmptyStr = Field(alias="thingId")
    thing_name: str = Field(alias="thingName")
    version_number: int = Field(alias="versionNumber", ge=0)
    thing_type_name: str | None = Field(None, alias="thingTypeName")
    attributes: dict[str, str] | None = None


class _ThingTypeEvent(_Event):
    operation: Crud
    thing_type_id: NonEmptyStr = Field(alias="thingTypeId")
    thing_type_name: str = Field(alias="thingTypeName")
    is_deprecated: bool | None = Field(None, alias="isDeprecated")
    searchable_attributes: list[str] | None = Field(None, alias="searchableAttributes")
    description: str | None = None
    # thingTypeProperties.mqtt5Configuration.propagatingAttributes (AWS IoT API Reference,
    # PropagatingAttribute: https://docs.aws.amazon.com/iot/latest/apireference/API_PropagatingAttribute.html)
    propagating_attributes: list[Any] | None = Field(None, alias="propagatingAttributes")


class _ThingTypeAssociationEvent(_Event):
    # Two documented shapes: CREATED/DELETED (AWS docs) and ADDED/REMOVED (Powertools, 2025).
    operation: Literal["CREATED", "DELETED", "ADDED", "REMOVED"]
    thing_id: NonEmptyStr = Field(alias="thingId")
    thing_name: str = Field(alias="thingName")
    thing_type_name: str = Field(alias="thingTypeName")


class _ThingGroupEvent(_Event):
    operation: Crud
    thing_group_id: NonEmptyStr = Field(alias="thingGroupId")
    thing_group_name: str = Field(alias="thingGroupName")
    version_number: int = Field(alias="versionNumber", ge=0)
    parent_group_name: str | None = Field(None, alias="parentGroupName")
    description: str | None = None
    attributes: dict[str, str] | None = None
    # Root first, down to the direct parent (AWS IoT guide, "Registry events").
    root_to_parent: list[dict[str, Any]] | None = Field(None, alias="rootToParentThingGroups")


class _MembershipEvent(_Event):
    operation: AddRemove
    thing_arn: str = Field(alias="thingArn")
    group_arn: str = Field(alias="groupArn")
    membership_id: NonEmptyStr = Field(alias="membershipId")


class _HierarchyEvent(_Event):
    operation: AddRemove
    parent_name: str = Field(alias="thingGroupName")
    child_group_id: NonEmptyStr = Field(alias="childGroupId")
    child_name: str = Field(alias="childGroupName")


class _CorrectiveEvent(_Event):
    entity: str
    name: str
    state: dict[str, Any]
    deleted: bool
    sync: NonEmptyStr
    version_number: int | None = Field(None, alias="versionNumber", ge=0)


_M = TypeVar("_M", bound=_Event)


def _validate(model: type[_M], payload: dict[str, Any]) -> _M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        field = ".".join(str(part) for part in first["loc"]) or "payload"
        reason = first["msg"]
        if len(errors) > 1:
            reason += f" (and {len(errors) - 1} more)"
        raise EventValidationError(field, reason) from exc


# --- public API ----------------------------------------------------------------------------------


def parse_event(payload: Mapping[str, Any], *, region: str) -> Change:
    """The ``Change`` a registry (or corrective) event describes; ``region`` is its origin.

    Raises ``EventValidationError`` for a malformed payload and ``RegistryValidationError`` for
    a name or value AWS IoT would refuse; both name the offending field.
    """
    if not isinstance(payload, Mapping):
        raise EventValidationError(
            "payload", f"must be a JSON object, got {type(payload).__name__}"
        )
    data = dict(payload)
    if "eventType" not in data:
        raise EventValidationError("eventType", "Field required")
    event_type = data["eventType"]
    parser = _PARSERS.get(event_type) if isinstance(event_type, str) else None
    if parser is None:
        raise EventValidationError(
            "eventType",
            f"unknown event type {event_type!r}; expected one of {', '.join(EVENT_TYPES)}",
        )
    return parser(data, region)


def corrective_event(change: Change) -> dict[str, Any]:
    """The ``CRR_CORRECTIVE_EVENT`` payload for ``change``: the inverse of ``parse_event``.

    ``parse_event(corrective_event(c), region=c.origin.region)`` gives back ``c`` as a
    corrective change (``entity_id`` dropped, ``corrective=True``) for any canonical ``c``
    (sorted searchable attributes, no empty descriptions). The state is not validated here:
    reconciliation admits the payload as persist does (``pipeline.ingest.admit``) before it
    emits it, so it cannot emit an event persist would refuse.
    """
    if change.sync is None:
        raise EventValidationError("sync", "a corrective event needs a sync token")
    if change.origin.timestamp_ms < _SECONDS_BELOW:
        # parse_event would read it as seconds: refuse rather than shift it 1000x.
        raise EventValidationError(
            "timestamp", f"{change.origin.timestamp_ms} is not a plausible epoch-ms value"
        )
    payload: dict[str, Any] = {
        "eventType": CORRECTIVE_EVENT,
        "eventId": change.origin.event_id,
        "timestamp": change.origin.timestamp_ms,
        "entity": change.kind.value,
        "name": change.name,
        "state": {key: _plain(value) for key, value in change.fields.items()},
        "deleted": change.deleted,
        "sync": change.sync,
        "versionNumber": change.origin.version,
    }
    return payload


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a state value (a ``DynamicQuery`` becomes its dict)."""
    if isinstance(value, DynamicQuery):
        return value.to_dict()
    return copy.deepcopy(value)


# --- one parser per event type -------------------------------------------------------------------


def _thing(data: dict[str, Any], region: str) -> Change:
    event = _validate(_ThingEvent, data)
    name = rules.validate_name("thingName", event.thing_name)
    origin = Origin(region, event.timestamp, event.event_id, event.thing_id, event.version_number)
    if event.operation == "DELETED":
        return Change(EntityKind.THING, name, origin, deleted=True)
    thing_type = _optional_name("thingTypeName", event.thing_type_name)
    attributes = rules.validate_attributes(
        "attributes", event.attributes or {}, typed=thing_type is not None
    )
    return Change(
        EntityKind.THING, name, origin, fields={"thing_type": thing_type, "attributes": attributes}
    )


def _thing_type(data: dict[str, Any], region: str) -> Change:
    event = _validate(_ThingTypeEvent, data)
    name = rules.validate_name("thingTypeName", event.thing_type_name)
    origin = Origin(region, event.timestamp, event.event_id, event.thing_type_id)
    if event.operation == "DELETED":
        return Change(EntityKind.THING_TYPE, name, origin, deleted=True)
    if event.is_deprecated is None:
        # Defaulting would silently undeprecate a type on a malformed UPDATED event.
        raise EventValidationError("isDeprecated", f"required on {event.operation}")
    fields = {
        "description": _description("description", event.description),
        "searchable_attributes": sorted(
            rules.validate_attribute_names(
                "searchableAttributes", event.searchable_attributes or []
            )
        ),
        "deprecated": event.is_deprecated,
        "propagating_attributes": propagating_attributes(
            "propagatingAttributes", event.propagating_attributes
        ),
    }
    return Change(EntityKind.THING_TYPE, name, origin, fields=fields)


def _thing_type_association(data: dict[str, Any], region: str) -> Change:
    event = _validate(_ThingTypeAssociationEvent, data)
    name = rules.validate_name("thingName", event.thing_name)
    thing_type = rules.validate_name("thingTypeName", event.thing_type_name)
    origin = Origin(region, event.timestamp, event.event_id, event.thing_id)
    if event.operation in ("CREATED", "ADDED"):
        return Change(
            EntityKind.THING, name, origin, fields={"thing_type": thing_type}, partial=True
        )
    # DELETED names the type the thing is *no longer* associated with ("Registry events"): on a
    # change A -> B it must not clear B when it arrives after the THING_EVENT.
    return Change(
        EntityKind.THING,
        name,
        origin,
        fields={"thing_type": None},
        partial=True,
        expected={"thing_type": thing_type},
    )


def _thing_group(data: dict[str, Any], region: str) -> Change:
    event = _validate(_ThingGroupEvent, data)
    name = rules.validate_name("thingGroupName", event.thing_group_name)
    origin = Origin(
        region, event.timestamp, event.event_id, event.thing_group_id, event.version_number
    )
    if event.operation == "DELETED":
        return Change(EntityKind.THING_GROUP, name, origin, deleted=True)
    fields: dict[str, Any] = {
        "parent": _optional_name("parentGroupName", event.parent_group_name),
        "description": _description("description", event.description),
        "attributes": rules.validate_attributes(
            "attributes",
            event.attributes or {},
            typed=None,
            max_count=rules.THING_GROUP_MAX_ATTRIBUTES,
        ),
    }
    # Whether the group is dynamic, and its query, only DescribeThingGroup says: the event's
    # ``dynamicGroupMappingId`` is undocumented beyond its presence, so it decides nothing.
    # "query" is left out (the stored one is kept) until persist looks it up.
    ancestors = tuple(
        _group_name_from_entry(f"rootToParentThingGroups[{i}].groupArn", entry)
        for i, entry in enumerate(event.root_to_parent or [])
    )
    return Change(
        EntityKind.THING_GROUP,
        name,
        origin,
        fields=fields,
        lookup_query=True,
        ancestors=ancestors,
    )


def _membership(data: dict[str, Any], region: str) -> Change:
    event = _validate(_MembershipEvent, data)
    thing = _name_from_arn("thingArn", event.thing_arn, _THING_ARN, "thing")
    group = _name_from_arn("groupArn", event.group_arn, _GROUP_ARN, "thinggroup")
    origin = Origin(region, event.timestamp, event.event_id, event.membership_id)
    return Change(
        EntityKind.MEMBERSHIP,
        membership_name(thing, group),
        origin,
        deleted=event.operation == "REMOVED",
    )


def _hierarchy(data: dict[str, Any], region: str) -> Change:
    event = _validate(_HierarchyEvent, data)
    parent = rules.validate_name("thingGroupName", event.parent_name)
    child = rules.validate_name("childGroupName", event.child_name)
    origin = Origin(region, event.timestamp, event.event_id, event.child_group_id)
    # A parent is fixed when the child is created, so REMOVED only accompanies the child's
    # deletion, which the child's own THING_GROUP_EVENT (DELETED) carries. It changes nothing.
    fields = {"parent": parent} if event.operation == "ADDED" else {}
    return Change(EntityKind.THING_GROUP, child, origin, fields=fields, partial=True)


def _corrective(data: dict[str, Any], region: str) -> Change:
    event = _validate(_CorrectiveEvent, data)
    try:
        kind = EntityKind(event.entity)
    except ValueError as exc:
        expected = ", ".join(k.value for k in EntityKind)
        raise EventValidationError(
            "entity", f"unknown entity {event.entity!r}; expected one of {expected}"
        ) from exc
    name = _entity_name(kind, event.name)
    origin = Origin(region, event.timestamp, event.event_id, None, event.version_number)
    return Change(
        kind,
        name,
        origin,
        fields=_state(kind, event.state),
        deleted=event.deleted,
        corrective=True,
        sync=event.sync,
    )


_PARSERS: dict[str, Callable[[dict[str, Any], str], Change]] = {
    THING_EVENT: _thing,
    THING_TYPE_EVENT: _thing_type,
    THING_TYPE_ASSOCIATION_EVENT: _thing_type_association,
    THING_GROUP_EVENT: _thing_group,
    THING_GROUP_MEMBERSHIP_EVENT: _membership,
    THING_GROUP_HIERARCHY_EVENT: _hierarchy,
    CORRECTIVE_EVENT: _corrective,
}


# --- value helpers -------------------------------------------------------------------------------


def _optional_name(field: str, value: object) -> str | None:
    return None if value is None else rules.validate_name(field, value)


def _description(field: str, value: object) -> str | None:
    # The registry has no distinction between an empty and an absent description; one
    # canonical form keeps echo suppression and drift diffs from seeing a change.
    return rules.validate_description(field, value) or None


def _name_from_arn(field: str, arn: str, pattern: re.Pattern[str], resource: str) -> str:
    match = pattern.fullmatch(arn)
    if match is None:
        raise EventValidationError(
            field,
            f"not an AWS IoT {resource} ARN (arn:aws:iot:<region>:<account>:{resource}/<name>)",
        )
    return rules.validate_name(field, match["name"])


def _group_name_from_entry(field: str, entry: Mapping[str, Any]) -> str:
    arn = entry.get("groupArn")
    if not isinstance(arn, str):
        raise EventValidationError(field, "must be a thing group ARN")
    return _name_from_arn(field, arn, _GROUP_ARN, "thinggroup")


_PROPAGATING_KEYS = frozenset({"userPropertyKey", "thingAttribute", "connectionAttribute"})


def propagating_attributes(field: str, value: object) -> list[dict[str, str]]:
    """A thing type's MQTT5 propagating attributes in one canonical form (a list, order kept:
    AWS IoT API Reference, Mqtt5Configuration / PropagatingAttribute)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise EventValidationError(field, "must be a list of propagating attributes")
    checked: list[dict[str, str]] = []
    for i, entry in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(entry, dict) or "userPropertyKey" not in entry:
            raise EventValidationError(where, "must be an object with a userPropertyKey")
        unknown = set(entry) - _PROPAGATING_KEYS
        if unknown:
            raise EventValidationError(where, f"unknown keys {sorted(unknown)}")
        for key, part in entry.items():
            if not isinstance(part, str) or not part:
                raise EventValidationError(f"{where}.{key}", "must be a non-empty string")
        checked.append(dict(entry))
    return checked


def _entity_name(kind: EntityKind, name: str) -> str:
    if kind is EntityKind.CERTIFICATE:
        return cloudtrail.certificate_id("name", name)
    if kind is EntityKind.POLICY:
        return cloudtrail.policy_name("name", name)
    if kind is EntityKind.THING_PRINCIPAL:
        thing, sep, cert = name.partition(KEY_SEPARATOR)
        if not sep:
            raise EventValidationError("name", "a thing principal is '<thing>#<certificate id>'")
        return cloudtrail.thing_principal_name(
            rules.validate_name("name", thing), cloudtrail.certificate_id("name", cert)
        )
    if kind is EntityKind.POLICY_TARGET:
        return _policy_target_name(name)
    if kind is not EntityKind.MEMBERSHIP:
        return rules.validate_name("name", name)
    thing, sep, group = name.partition(KEY_SEPARATOR)
    if not sep:
        raise EventValidationError("name", "a membership name is '<thing>#<group>'")
    return membership_name(rules.validate_name("name", thing), rules.validate_name("name", group))


def _policy_target_name(name: str) -> str:
    policy, sep, target = name.partition(KEY_SEPARATOR)
    kind, slash, rest = target.partition("/")
    if not sep or not slash or kind not in ("cert", "thinggroup"):
        raise EventValidationError(
            "name", "a policy target is '<policy>#cert/<id>' or '<policy>#thinggroup/<group>'"
        )
    checked = (
        cloudtrail.certificate_id("name", rest)
        if kind == "cert"
        else rules.validate_name("name", rest)
    )
    return cloudtrail.policy_target_name(
        cloudtrail.policy_name("name", policy), f"{kind}/{checked}"
    )


def _state(kind: EntityKind, state: dict[str, Any]) -> dict[str, Any]:
    """A corrective event's ``state``, each key known for ``kind`` and each value valid."""
    allowed = STATE_FIELDS[kind]
    checked: dict[str, Any] = {}
    for key, value in state.items():
        if key not in allowed:
            expected = ", ".join(allowed) or "none"
            raise EventValidationError(
                f"state.{key}", f"unknown field for {kind.value}; expected: {expected}"
            )
        field = f"state.{key}"
        if key == "attributes":
            checked[key] = _state_attributes(kind, state, field, value)
        elif key in ("thing_type", "billing_group", "parent"):
            checked[key] = _optional_name(field, value)
        elif key == "description":
            checked[key] = _description(field, value)
        elif key == "searchable_attributes":
            checked[key] = sorted(rules.validate_attribute_names(field, value))
        elif key == "deprecated":
            if not isinstance(value, bool):
                raise EventValidationError(field, "must be a boolean")
            checked[key] = value
        elif key == "query":
            checked[key] = _query(field, value)
        elif key == "propagating_attributes":
            checked[key] = propagating_attributes(field, value)
        elif key == "status":
            if value not in {status.value for status in cloudtrail.CertificateStatus}:
                raise EventValidationError(field, "must be ACTIVE, INACTIVE or REVOKED")
            checked[key] = value
        elif key in ("pem", "document"):
            if not isinstance(value, str) or not value:
                raise EventValidationError(field, "must be a non-empty string")
            checked[key] = value
        elif key == "exclusive":
            if not isinstance(value, bool):
                raise EventValidationError(field, "must be a boolean")
            checked[key] = value
        else:  # pragma: no cover - STATE_FIELDS grew a field this parser does not know
            raise EventValidationError(field, "no validator for this field")
    return checked


def _state_attributes(
    kind: EntityKind, state: dict[str, Any], field: str, value: object
) -> dict[str, str]:
    if kind is EntityKind.THING_GROUP:
        return rules.validate_attributes(
            field, value, typed=None, max_count=rules.THING_GROUP_MAX_ATTRIBUTES
        )
    # A thing's cap depends on its type; when the state does not say, allow the larger cap.
    typed = state["thing_type"] is not None if "thing_type" in state else True
    return rules.validate_attributes(field, value, typed=typed)


def _query(field: str, value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != _QUERY_KEYS:
        raise EventValidationError(
            field, f"must be null or an object with exactly {', '.join(sorted(_QUERY_KEYS))}"
        )
    query: dict[str, str] = {}
    for key, part in value.items():
        if not isinstance(part, str) or not part:
            raise EventValidationError(f"{field}.{key}", "must be a non-empty string")
        query[key] = part
    return query
