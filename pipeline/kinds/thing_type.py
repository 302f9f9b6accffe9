"""Thing types, and the lifecycle AWS imposes on deleting one.

AWS behaviours relied on (AWS IoT API Reference and Developer Guide):
- A type must be deprecated, and then five minutes must pass, before DeleteThingType succeeds
  ("Delete a thing type": https://docs.aws.amazon.com/iot/latest/developerguide/delete-thing-types.html;
  deprecation: https://docs.aws.amazon.com/iot/latest/developerguide/deprecate-thing-type.html).
  The replicator never waits (it would block its stream shard): it deprecates, detaches the
  type from its things, and records a ``PendingTypeDeletion`` that the destination stack's
  scheduled task (``pipeline.pending``) completes (``finish_deletion``).
- UpdateThingType changes only ``mqtt5Configuration`` (AWS answers anything else with
  InvalidRequestException "Can only update mqtt5Configuration.": aws/aws-cli#9884;
  CloudFormation's AWS::IoT::ThingType marks description and searchable attributes "Update
  requires: Replacement"), so any other property change is the same lifecycle followed by a
  create and re-attaching the type's things.
- AWS refuses a deprecated type to new things, yet the source may have things of a type
  deprecated since: ``pipeline.kinds.thing`` undeprecates it around the call.
- DescribeThingType and ListThingTypes return a type in the same shape (``state_of``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field

from pipeline import rules
from pipeline.errors import EventValidationError, RetryableError
from pipeline.iot import Iot
from pipeline.kinds.base import (
    Call,
    Converging,
    DependencyNotReadyError,
    EntitySpec,
    Kind,
    Listing,
    Reader,
    Result,
    flag,
    json_list,
    text,
)
from pipeline.kinds.parse import Crud, RegistryEvent, description, validate
from pipeline.model import Change, EntityKind, Item, MalformedRecord, Origin, RegionalRecord

THING_TYPE_EVENT = "THING_TYPE_EVENT"
# The margin over AWS's five minutes covers clock skew between our clock and AWS's.
TYPE_DELETE_MARGIN_SECONDS = 30


# --- the registry event --------------------------------------------------------------------------


class _ThingTypeEvent(RegistryEvent):
    operation: Crud
    thing_type_id: str = Field(alias="thingTypeId", min_length=1)
    thing_type_name: str = Field(alias="thingTypeName")
    is_deprecated: bool | None = Field(None, alias="isDeprecated")
    searchable_attributes: list[str] | None = Field(None, alias="searchableAttributes")
    description: str | None = None
    # thingTypeProperties.mqtt5Configuration.propagatingAttributes (AWS IoT API Reference,
    # PropagatingAttribute: https://docs.aws.amazon.com/iot/latest/apireference/API_PropagatingAttribute.html)
    propagating_attributes: list[Any] | None = Field(None, alias="propagatingAttributes")


def _parse(data: dict[str, Any], region: str) -> Change:
    event = validate(_ThingTypeEvent, data)
    name = rules.validate_name("thingTypeName", event.thing_type_name)
    origin = Origin(region, event.timestamp, event.event_id, event.thing_type_id)
    if event.operation == "DELETED":
        return Change(EntityKind.THING_TYPE, name, origin, deleted=True)
    if event.is_deprecated is None:
        # Defaulting would silently undeprecate a type on a malformed UPDATED event.
        raise EventValidationError("isDeprecated", f"required on {event.operation}")
    fields = {
        "description": description("description", event.description),
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


# --- AWS's shape and the pure decision -----------------------------------------------------------


def state_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A DescribeThingType response, or a ListThingTypes item, as the type's state."""
    properties = raw.get("thingTypeProperties") or {}
    metadata = raw.get("thingTypeMetadata") or {}
    mqtt5 = properties.get("mqtt5Configuration") or {}
    return {
        "description": properties.get("thingTypeDescription") or None,
        "searchable_attributes": sorted(properties.get("searchableAttributes") or []),
        "deprecated": bool(metadata.get("deprecated", False)),
        "propagating_attributes": list(mqtt5.get("propagatingAttributes") or []),
    }


@dataclass(frozen=True)
class TypeChanges:
    recreate: bool  # description or searchable attributes differ: AWS cannot update them
    propagating: list[dict[str, str]] | None  # new mqtt5 propagating attributes, or None
    deprecate: bool | None  # new deprecation flag, or None when it is right


def type_changes(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> TypeChanges:
    recreate = (desired.get("description") or None) != (actual.get("description") or None) or (
        sorted(desired.get("searchable_attributes") or [])
        != sorted(actual.get("searchable_attributes") or [])
    )
    propagating = None
    if "propagating_attributes" in desired and list(
        desired["propagating_attributes"] or []
    ) != list(actual.get("propagating_attributes") or []):
        propagating = list(desired["propagating_attributes"] or [])
    deprecated = bool(desired.get("deprecated", False))
    flag_ = None if deprecated == bool(actual.get("deprecated")) else deprecated
    return TypeChanges(recreate, propagating, flag_)


def deprecation(name: str, *, undo: bool = False) -> Call:
    return Call("DeprecateThingType", {"thingTypeName": name, "undoDeprecate": undo})


def _create(name: str, desired: Mapping[str, Any]) -> list[Call]:
    properties: dict[str, Any] = {}
    text_ = rules.validate_description("description", desired.get("description"))
    if text_:
        properties["thingTypeDescription"] = text_
    if desired.get("searchable_attributes"):
        properties["searchableAttributes"] = list(desired["searchable_attributes"])
    if desired.get("propagating_attributes"):
        properties["mqtt5Configuration"] = {
            "propagatingAttributes": list(desired["propagating_attributes"])
        }
    create = Call(
        "CreateThingType",
        {
            "thingTypeName": rules.validate_name("thingTypeName", name),
            "thingTypeProperties": properties,
        },
    )
    return [create, deprecation(name)] if desired.get("deprecated") else [create]


# --- the pending deletion ------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingTypeDeletion(RegionalRecord):
    """A type deprecated in ``region``'s registry and detached, deletable after
    ``delete_after`` (epoch seconds); ``recreate``: created again after (its properties changed).
    Kept in the region's replica of the state table (``StateTable.put_record``)."""

    region: str
    name: str
    delete_after: int
    recreate: bool

    PREFIX = "PENDING#TYPEDELETE#"  # every region's

    @property
    def key(self) -> str:
        return self.key_for(self.region, self.name)

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": "pending_type_delete",
            "name": self.name,
            "region": self.region,
            "delete_after": self.delete_after,
            "recreate": self.recreate,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PendingTypeDeletion:
        """Strict: each attribute of its type, else ``EventValidationError`` naming it."""
        region, name = record.get("region"), record.get("name")
        delete_after, recreate = record.get("delete_after", 0), record.get("recreate", False)
        for field, value, ok in (
            ("region", region, isinstance(region, str) and region),
            ("name", name, isinstance(name, str) and name),
            ("delete_after", delete_after, type(delete_after) is int),
            ("recreate", recreate, isinstance(recreate, bool)),
        ):
            if not ok:
                raise EventValidationError(
                    f"pending deletion {field}", f"unreadable value {value!r:.60}"
                )
        return cls(str(region), str(name), int(delete_after), bool(recreate))


def pending(ctx: Converging, name: str) -> PendingTypeDeletion | None:
    return ctx.table.get_record(PendingTypeDeletion, PendingTypeDeletion.key_for(ctx.region, name))


def pending_deletions(ctx: Converging) -> Iterator[PendingTypeDeletion | MalformedRecord]:
    """This region's pending deletions (``pipeline.pending`` finishes the due ones)."""
    return ctx.table.records(PendingTypeDeletion, PendingTypeDeletion.prefix(ctx.region))


# --- the kind --------------------------------------------------------------------------------------


class ThingType(Kind):
    spec = EntitySpec(
        EntityKind.THING_TYPE,
        frame="thing_types",
        rank=0,
        fields={
            "description": "low",
            "searchable_attributes": "medium",
            "deprecated": "medium",
            "propagating_attributes": "medium",
        },
        noun=("thing type", "thing types"),
        alias="type",
    )
    columns = (
        text("name"),
        text("description"),
        json_list("searchable_attributes", sort=True),
        flag("deprecated"),
        # Order kept: it is the order of the MQTT5 user properties.
        json_list("propagating_attributes", sort=False),
    )
    listing = Listing("ListThingTypes", name="thingTypeName")
    quotas = {"ListThingTypes": 10}  # L-F9EBF527
    registry_events = {THING_TYPE_EVENT: _parse}

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        field = f"state.{key}"
        if key == "description":
            return description(field, value)
        if key == "searchable_attributes":
            return sorted(rules.validate_attribute_names(field, value))
        if key == "deprecated":
            if not isinstance(value, bool):
                raise EventValidationError(field, "must be a boolean")
            return value
        return propagating_attributes(field, value)

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        response = iot.maybe("DescribeThingType", thingTypeName=name)
        return None if response is None else state_of(response)

    def record(self, reader: Reader, listed: Mapping[str, Any]) -> dict[str, Any]:
        return {"name": listed["thingTypeName"], **state_of(listed)}

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        """Create, or update in place (MQTT5 propagating attributes, the deprecation flag).
        A deletion or a property change AWS cannot update starts the lifecycle, whose first
        call (deprecating) is all that is returned for it."""
        if desired is None or (actual is not None and type_changes(desired, actual).recreate):
            return [] if actual is None or actual.get("deprecated") else [deprecation(name)]
        if actual is None:
            return _create(name, desired)
        changes = type_changes(desired, actual)
        calls: list[Call] = []
        if changes.propagating is not None:
            calls.append(
                Call(
                    "UpdateThingType",
                    {
                        "thingTypeName": name,
                        "thingTypeProperties": {
                            "mqtt5Configuration": {"propagatingAttributes": changes.propagating}
                        },
                    },
                )
            )
        if changes.deprecate is not None:
            calls.append(deprecation(name, undo=not changes.deprecate))
        return calls

    def converge(self, ctx: Converging, item: Item) -> Result:
        name, desired = item.name, item.state
        actual = self.read(ctx.iot, name)
        if item.deleted:
            if actual is None:
                ctx.table.delete_record(PendingTypeDeletion.key_for(ctx.region, name))
                return Result("noop", "already absent")
            return _start_lifecycle(ctx, name, actual, recreate=False)
        if actual is None:
            ctx.iot.apply(self.calls(name, desired, None))
            return Result("created")
        waiting = pending(ctx, name)
        if type_changes(desired, actual).recreate:
            if waiting is not None:  # already on its way out: it comes back with these properties
                ctx.table.put_record(replace(waiting, recreate=True))
                return Result("recreate-pending", "the pending deletion will re-create it")
            return _start_lifecycle(ctx, name, actual, recreate=True)
        if waiting is not None:
            # Deleted and re-created in the source with the same properties: keep the type.
            return _restore(ctx, name, desired)
        calls = self.calls(name, desired, actual)
        ctx.iot.apply(calls)
        return Result("updated" if calls else "noop")


KIND = ThingType()
KINDS = (KIND,)


# --- the lifecycle ---------------------------------------------------------------------------------


def _start_lifecycle(
    ctx: Converging, name: str, actual: Mapping[str, Any], *, recreate: bool
) -> Result:
    """Deprecate, record the deletion as pending, and detach what can be detached."""
    deprecation = KIND.calls(name, None, actual)
    if deprecation:
        ctx.expect(EntityKind.THING_TYPE, name, {"deprecated": True})
        ctx.iot.apply(deprecation)
    due = int(ctx.clock()) + ctx.type_delete_delay_seconds + TYPE_DELETE_MARGIN_SECONDS
    ctx.table.put_record(PendingTypeDeletion(ctx.region, name, due, recreate))
    with contextlib.suppress(RetryableError):  # the pending job detaches the rest later
        _detach(ctx, name, recreate=recreate)
    verb = "recreate-pending" if recreate else "deletion-pending"
    return Result(verb, f"deprecated; deletable after {due}")


def _detach(ctx: Converging, name: str, *, recreate: bool) -> None:
    """Take the type off its things in the destination, as the source did before deleting it.

    For a deletion, a thing is detached by converging it to its desired state, which no
    longer has the type; a thing whose desired state still has it waits (its update has not
    arrived; detaching it blindly could break the 3-attribute limit of untyped things). For a
    re-create every thing is detached, keeping at most 3 attributes (AWS allows no more on
    an untyped thing); re-attaching converges it back to its full desired state.
    """
    things = ctx.kind(EntityKind.THING)
    waiting: list[str] = []
    for listed in list(ctx.iot.items("ListThings", thingTypeName=name)):
        thing = str(listed["thingName"])
        thing_item = ctx.table.get(EntityKind.THING, thing)
        if recreate:
            actual = things.read(ctx.iot, thing) or {}
            attributes = dict(actual.get("attributes") or {})
            kept = dict(sorted(attributes.items())[: rules.UNTYPED_THING_MAX_ATTRIBUTES])
            untyped = {"thing_type": None, "attributes": kept}
            ctx.expect(EntityKind.THING, thing, untyped)
            ctx.iot.apply(things.calls(thing, untyped, actual))
        elif thing_item is not None and (
            thing_item.deleted or thing_item.state.get("thing_type") != name
        ):
            ctx.converge(thing_item)
        else:
            waiting.append(thing)
    if waiting:
        raise DependencyNotReadyError(
            f"thing type {name!r}: {len(waiting)} thing(s) still want it in the table "
            f"(their updates have not arrived), e.g. {waiting[:3]}"
        )


def _restore(ctx: Converging, name: str, desired: Mapping[str, Any]) -> Result:
    """Cancel a pending deletion: the type is wanted again as it is."""
    ctx.expect(EntityKind.THING_TYPE, name, dict(desired))
    if not desired.get("deprecated"):
        ctx.iot.apply([deprecation(name, undo=True)])
    _reattach(ctx, name)
    ctx.table.delete_record(PendingTypeDeletion.key_for(ctx.region, name))
    return Result("restored", "the pending deletion is cancelled")


def _reattach(ctx: Converging, name: str) -> None:
    """Converge every thing whose desired type is ``name`` (detached by the lifecycle).

    A scan of the thing items: type re-creates are rare, and the table, not the destination,
    knows which things want the type."""
    for thing_item in ctx.table.items_of(EntityKind.THING):
        if not thing_item.deleted and thing_item.state.get("thing_type") == name:
            ctx.converge(thing_item)


def finish_deletion(ctx: Converging, name: str) -> Result:
    """Second half of the lifecycle, once the delay has passed (``pipeline.pending``):
    detach, delete, and for a re-create create it again and re-attach its things."""
    item = ctx.table.get(EntityKind.THING_TYPE, name)
    wanted = item is not None and not item.deleted
    actual = KIND.read(ctx.iot, name)
    if (
        wanted
        and item is not None
        and actual is not None
        and not type_changes(item.state, actual).recreate
    ):
        return _restore(ctx, name, item.state)
    if actual is not None:
        _detach(ctx, name, recreate=wanted)
        then = [item.state] if wanted and item is not None else []
        ctx.expect(EntityKind.THING_TYPE, name, None, *then)
        ctx.iot.apply([Call("DeleteThingType", {"thingTypeName": name})])
    if wanted and item is not None:
        ctx.iot.apply(_create(name, item.state))
        _reattach(ctx, name)
    ctx.table.delete_record(PendingTypeDeletion.key_for(ctx.region, name))
    return Result("recreated" if wanted else "deleted")
