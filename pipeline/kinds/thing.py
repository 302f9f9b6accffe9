"""Things: attributes, type and billing group.

AWS behaviours relied on (AWS IoT API Reference, one page per action, unless said otherwise):
- DescribeThing returns ``thingTypeName``, ``attributes`` and ``billingGroupName``; ListThings
  the same fields but the billing group (not returned in AWS; moto returns it, we do not rely
  on it): the snapshot joins it from ListThingsInBillingGroup.
- UpdateThing with ``attributePayload.merge`` true and ``""`` for a removed key changes exactly
  what differs, on AWS and moto alike (merge false "overwrites" only on AWS).
- A thing without a type holds at most 3 attributes, a typed one 50 (AWS IoT Core quotas); an
  AttributePayload holds "up to three key-value pair[s]" (AWS IoT API Reference,
  AttributePayload), read as a limit per request too for a thing without a type: an update
  that would send more (new values plus ``""`` for removed keys) removes first, in requests
  within the thing's limit before the call (``attribute_steps``).
- DeleteThing succeeds silently for a missing thing, and refuses one with principals attached
  ("Cannot delete. Thing ... is still attached to one or more principals": rebuy-de/aws-nuke#374,
  getmoto/moto#4616): a delete detaches them first; detaching is asynchronous
  (aws/aws-connected-device-framework#76), so that refusal is a wait (``pipeline.aws``).
- AWS refuses a deprecated type to new things ("Deprecate a thing type",
  https://docs.aws.amazon.com/iot/latest/developerguide/deprecate-thing-type.html), yet the source
  may have things of a type deprecated since: the type is undeprecated around the call.
- Registry events: THING_EVENT (created, updated, deleted) and THING_TYPE_ASSOCIATION_EVENT
  (AWS IoT Developer Guide, "Registry events",
  https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from pipeline import rules
from pipeline.errors import AwsRequestError, NotFoundError
from pipeline.iot import Iot
from pipeline.kinds import thing_type
from pipeline.kinds.base import (
    Call,
    Cascade,
    Converging,
    EntitySpec,
    Join,
    Kind,
    Listing,
    Partition,
    Reader,
    Result,
    attribute_map,
    label,
    text,
    version,
)
from pipeline.kinds.links import link_name
from pipeline.kinds.parse import (
    Crud,
    NonEmptyStr,
    RegistryEvent,
    optional_name,
    validate,
    versioned,
)
from pipeline.model import Change, EntityKind, Item, Origin

THING_EVENT = "THING_EVENT"
THING_TYPE_ASSOCIATION_EVENT = "THING_TYPE_ASSOCIATION_EVENT"


# --- registry events -----------------------------------------------------------------------------


class _ThingEvent(RegistryEvent):
    operation: Crud
    thing_id: NonEmptyStr = Field(alias="thingId")
    thing_name: str = Field(alias="thingName")
    # None only in a DELETED event (``parse.versioned``).
    version_number: int | None = Field(None, alias="versionNumber", ge=0)
    thing_type_name: str | None = Field(None, alias="thingTypeName")
    attributes: dict[str, str] | None = None


class _ThingTypeAssociationEvent(RegistryEvent):
    # Two documented shapes: CREATED/DELETED (AWS docs) and ADDED/REMOVED (Powertools, 2025).
    operation: Literal["CREATED", "DELETED", "ADDED", "REMOVED"]
    thing_id: NonEmptyStr = Field(alias="thingId")
    thing_name: str = Field(alias="thingName")
    thing_type_name: str = Field(alias="thingTypeName")


def _parse_thing(data: dict[str, Any], region: str) -> Change:
    event = validate(_ThingEvent, data)
    name = rules.validate_name("thingName", event.thing_name)
    version = versioned(event.operation, event.version_number)
    origin = Origin(region, event.timestamp, event.event_id, event.thing_id, version)
    if event.operation == "DELETED":
        return Change(EntityKind.THING, name, origin, deleted=True)
    type_name = optional_name("thingTypeName", event.thing_type_name)
    attributes = rules.validate_attributes(
        "attributes", event.attributes or {}, typed=type_name is not None
    )
    return Change(
        EntityKind.THING, name, origin, fields={"thing_type": type_name, "attributes": attributes}
    )


def _parse_type_association(data: dict[str, Any], region: str) -> Change:
    event = validate(_ThingTypeAssociationEvent, data)
    name = rules.validate_name("thingName", event.thing_name)
    type_name = rules.validate_name("thingTypeName", event.thing_type_name)
    origin = Origin(region, event.timestamp, event.event_id, event.thing_id)
    if event.operation in ("CREATED", "ADDED"):
        return Change(
            EntityKind.THING, name, origin, fields={"thing_type": type_name}, partial=True
        )
    # DELETED names the type the thing is *no longer* associated with ("Registry events"): on a
    # change A -> B it must not clear B when it arrives after the THING_EVENT.
    return Change(
        EntityKind.THING,
        name,
        origin,
        fields={"thing_type": None},
        partial=True,
        expected={"thing_type": type_name},
    )


# --- AWS's shape and the pure decision -----------------------------------------------------------


def state_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A DescribeThing response, or a ListThings item, as the thing's state."""
    return {
        "thing_type": raw.get("thingTypeName") or None,
        "attributes": {str(k): str(v) for k, v in (raw.get("attributes") or {}).items()},
        "billing_group": raw.get("billingGroupName") or None,
    }


# --- listing in parts ----------------------------------------------------------------------------


def _type_filters(reader: Reader) -> Iterator[dict[str, Any]]:
    for listed in reader.items("ListThingTypes", key="thingTypeName"):
        yield {"thingTypeName": listed["thingTypeName"]}


# Whether every thing has a type, asked of fleet indexing's thing index: ``thingIndexingMode`` OFF,
# REGISTRY or REGISTRY_AND_SHADOW (API Reference, ThingIndexingConfiguration); fields, prefix
# search and NOT ("Query syntax", developerguide/query-syntax.html), ``thingTypeName:aa`` "things
# that are associated with type aa" ("Example thing queries"). [assumption] ``*`` matches any
# value, so the query finds things without a type; the index trails the registry: a thing made
# untyped moments before may not show (README, known limits).
UNTYPED_QUERY = "NOT thingTypeName:*"


def _untyped_things(reader: Reader) -> str | None:
    """Why the things cannot be listed by type: a thing without one (a SearchIndex call), or no
    thing index to ask (a GetIndexingConfiguration call); None when every thing has one."""
    config = reader.call("GetIndexingConfiguration").get("thingIndexingConfiguration") or {}
    if config.get("thingIndexingMode", "OFF") == "OFF":
        return (
            "fleet indexing of things is off, so nothing can tell whether a thing has no type "
            "(aws iot update-indexing-configuration --thing-indexing-configuration "
            "thingIndexingMode=REGISTRY turns it on)"
        )
    query = {"indexName": rules.THINGS_INDEX, "queryString": UNTYPED_QUERY, "maxResults": 1}
    found = reader.call("SearchIndex", **query).get("things") or []
    return f"thing {found[0]['thingName']!r} has no type ({UNTYPED_QUERY})" if found else None


# ListThings filters by ``thingTypeName``, by ``attributeName``/``attributeValue`` (optionally
# ``usePrefixAttributeValue``) and by nothing else (botocore's iot model, ListThings request), and
# a thing has at most one type ("Number of thing types that can be associated with a thing: 1",
# AWS IoT Developer Guide, "AWS IoT Limits"): one listing per type lists each typed thing once.
# No filter selects things *without* a type: the operator's word, never a default, checked first
# (an untyped thing in neither snapshot but in the state table would be tombstoned, so deleted in
# the destination: reconcile.planner). [assumption] a deprecated type's things are listed too.
BY_TYPE = Partition(
    "type",
    _type_filters,
    requires="every thing has a thing type (ListThings has no filter for untyped things: an "
    "untyped thing would be missing from the snapshot)",
    check=_untyped_things,
)


@dataclass(frozen=True)
class ThingChanges:
    thing_type: str | None
    remove_thing_type: bool
    attributes: dict[str, str] | None  # the full new set, or None when unchanged
    billing_group: tuple[str | None, str | None] | None  # (leave, join), or None when unchanged

    @property
    def registry_update(self) -> bool:
        return bool(self.thing_type or self.remove_thing_type or self.attributes is not None)


def thing_changes(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> ThingChanges:
    """What differs between a thing's desired state and its state in the destination.

    A field missing from ``desired`` (a stub written by a partial event) is left alone.
    """
    type_name: str | None = None
    remove = False
    if "thing_type" in desired and desired["thing_type"] != actual.get("thing_type"):
        type_name = desired["thing_type"]
        remove = type_name is None
    attributes = None
    if "attributes" in desired and dict(desired["attributes"] or {}) != actual.get("attributes"):
        attributes = dict(desired["attributes"] or {})
    billing = None
    if "billing_group" in desired and desired["billing_group"] != actual.get("billing_group"):
        billing = (actual.get("billing_group"), desired["billing_group"])
    return ThingChanges(type_name, remove, attributes, billing)


def _create(name: str, desired: Mapping[str, Any]) -> Call:
    params: dict[str, Any] = {"thingName": rules.validate_name("thingName", name)}
    if desired.get("billing_group"):
        params["billingGroupName"] = rules.validate_name(
            "billingGroupName", desired["billing_group"]
        )
    type_name = desired.get("thing_type")
    if type_name:
        params["thingTypeName"] = rules.validate_name("thingTypeName", type_name)
    attributes = rules.validate_attributes(
        "attributes", dict(desired.get("attributes") or {}), typed=type_name is not None
    )
    params["attributePayload"] = {"attributes": attributes}
    return Call("CreateThing", params)


def attribute_steps(
    actual: Mapping[str, Any], wanted: Mapping[str, str], *, typed: bool
) -> list[list[str]]:
    """The removed keys to send ahead of the update, one list per UpdateThing, when one request
    would carry more keys (new values and ``""`` for the removed ones) than AWS takes for the
    thing (``typed``: after the call); each earlier request within the limit of the thing as it
    is before the call. Empty: one request does it."""
    removed = [key for key in actual.get("attributes") or {} if key not in wanted]
    limit = rules.attribute_limit(typed=typed)
    if limit is None or len(wanted) + len(removed) <= limit:
        return []
    step = rules.attribute_limit(typed=actual.get("thing_type") is not None) or len(removed)
    return [removed[i : i + step] for i in range(0, len(removed), step)]


def _update(
    name: str, desired: Mapping[str, Any], actual: Mapping[str, Any], changes: ThingChanges
) -> list[Call]:
    calls: list[Call] = []
    if changes.registry_update:
        params: dict[str, Any] = {"thingName": rules.validate_name("thingName", name)}
        if changes.thing_type:
            params["thingTypeName"] = rules.validate_name("thingTypeName", changes.thing_type)
        if changes.remove_thing_type:
            params["removeThingType"] = True
        if changes.attributes is not None:
            typed = desired.get("thing_type", actual.get("thing_type")) is not None
            payload = dict(rules.validate_attributes("attributes", changes.attributes, typed=typed))
            steps = attribute_steps(actual, payload, typed=typed)
            for keys in steps:
                removal = {"attributes": dict.fromkeys(keys, ""), "merge": True}
                calls.append(Call("UpdateThing", {"thingName": name, "attributePayload": removal}))
            if not steps:
                for key in actual.get("attributes") or {}:
                    payload.setdefault(key, "")
            params["attributePayload"] = {"attributes": payload, "merge": True}
        calls.append(Call("UpdateThing", params))
    if changes.billing_group is not None:
        leave, join = changes.billing_group
        if leave:
            calls.append(
                Call("RemoveThingFromBillingGroup", {"thingName": name, "billingGroupName": leave})
            )
        if join:
            calls.append(
                Call(
                    "AddThingToBillingGroup",
                    {
                        "thingName": name,
                        "billingGroupName": rules.validate_name("billingGroupName", join),
                    },
                )
            )
    return calls


# --- the kind --------------------------------------------------------------------------------------


class Thing(Kind):
    spec = EntitySpec(
        EntityKind.THING,
        frame="things",
        rank=3,
        fields={"thing_type": "high", "attributes": "medium", "billing_group": "medium"},
        noun=("thing", "things"),
    )
    columns = (
        text("name"),
        label("thing_type"),
        attribute_map(),
        label("billing_group"),
        version(),
    )
    listing = Listing("ListThings", name="thingName", partitions=(BY_TYPE,))
    # ListThings does not return the billing group in AWS: one listing per billing group, 4 at
    # once (each follows its page tokens: at 200 ms a call, 2 kept its 25 TPS 40% busy, bench B2).
    joins = (
        Join(
            "billing_group",
            EntityKind.BILLING_GROUP,
            "ListThingsInBillingGroup",
            "billingGroupName",
            workers=4,
        ),
    )
    quotas = {"ListThings": 10, "ListThingsInBillingGroup": 25}  # L-57AAC135, L-E8797DCC
    registry_events = {
        THING_EVENT: _parse_thing,
        THING_TYPE_ASSOCIATION_EVENT: _parse_type_association,
    }

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        field = f"state.{key}"
        if key == "attributes":
            # The cap depends on the type; when the state does not say, allow the larger cap.
            typed = state["thing_type"] is not None if "thing_type" in state else True
            return rules.validate_attributes(field, value, typed=typed)
        return optional_name(field, value)

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        response = iot.maybe("DescribeThing", thingName=name)
        if response is None:
            return None
        state = state_of(response)
        if deleting:
            state["principals"] = _principals(iot, name)
        return state

    def record(self, reader: Reader, listed: Mapping[str, Any]) -> dict[str, Any]:
        return {"name": listed["thingName"], **state_of(listed), "version": listed.get("version")}

    def depends_on(self, name: str, state: Mapping[str, Any]) -> tuple[tuple[EntityKind, str], ...]:
        needs = ((EntityKind.THING_TYPE, "thing_type"), (EntityKind.BILLING_GROUP, "billing_group"))
        return tuple((kind, state[key]) for kind, key in needs if state.get(key))

    def cascades(self, name: str) -> tuple[Cascade, ...]:
        """A deleted thing leaves its groups (the sandbox's DeleteThing does what AWS does,
        AWS IoT API Reference, DeleteThing; no membership event is documented for it: "Registry
        events", https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html),
        and had no principal left: AWS refuses DeleteThing while one is attached, so their
        detach calls came first, however late their events arrive."""
        own = link_name(name, "")  # ``<thing>#``: its links' names start so, and only theirs
        return (
            Cascade(EntityKind.MEMBERSHIP, lambda link: True, prefix=own),
            Cascade(EntityKind.THING_PRINCIPAL, lambda link: True, prefix=own),
        )

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        if desired is None:
            if actual is None:
                return []
            detach = [
                Call("DetachThingPrincipal", {"thingName": name, "principal": principal})
                for principal in actual.get("principals", [])
            ]
            return [*detach, Call("DeleteThing", {"thingName": name})]
        if actual is None:
            return [_create(name, desired)]
        return _update(name, desired, actual, thing_changes(desired, actual))

    def converge(self, ctx: Converging, item: Item) -> Result:
        if item.deleted:
            return ctx.run(self, item)
        name, desired = item.name, item.state
        actual = self.read(ctx.iot, name)
        calls = self.calls(name, desired, actual)
        if not calls:
            return Result("noop", "already matches")
        changes = None if actual is None else thing_changes(desired, actual)
        new_type = desired.get("thing_type") if changes is None else changes.thing_type

        def update() -> None:
            if changes is not None and changes.thing_type and actual and actual.get("thing_type"):
                # A new type first dissociates the old one: its association event says "no type".
                ctx.expect(EntityKind.THING, name, dict(desired), {"thing_type": None})
            if actual is not None and changes is not None and changes.attributes is not None:
                # Removals ahead of the update (``attribute_steps``) each publish an UPDATED.
                typed = desired.get("thing_type", actual.get("thing_type")) is not None
                left = dict(actual.get("attributes") or {})
                passing = []
                for keys in attribute_steps(actual, changes.attributes, typed=typed):
                    left = {k: v for k, v in left.items() if k not in keys}
                    passing.append({"attributes": dict(left)})
                if passing:
                    ctx.expect(EntityKind.THING, name, dict(desired), *passing)
            ctx.iot.apply(calls)

        try:
            ctx.with_dependencies(self, item, lambda: _assigning(ctx, new_type, update))
        except AwsRequestError:
            # AWS refuses a deprecated type to a thing; when the type is deprecated mid-lifecycle
            # here (re-create), finishing the lifecycle re-attaches this thing from the table.
            type_name = desired.get("thing_type")
            if type_name and thing_type.pending(ctx, type_name) is not None:
                return Result("deferred", f"type {type_name!r} is being re-created")
            raise
        return Result("created" if actual is None else "updated")


def _assigning(ctx: Converging, type_name: str | None, action: Callable[[], None]) -> None:
    """Run ``action``, which gives a thing the type ``type_name``. AWS refuses a deprecated type to
    new things, yet the source may have things of a type deprecated since: the type is
    undeprecated for the call and deprecated again after (the table says which types are)."""
    type_item = ctx.table.get(EntityKind.THING_TYPE, type_name) if type_name else None
    if type_name is None or type_item is None or not type_item.state.get("deprecated"):
        action()
        return
    described = thing_type.KIND.read(ctx.iot, type_name)
    if described is None or not described.get("deprecated"):
        action()  # a missing type is created (deprecated) by the dependency step
        return
    ctx.expect(
        EntityKind.THING_TYPE,
        type_name,
        {**type_item.state, "deprecated": False},
        type_item.state,
    )
    ctx.iot.apply([thing_type.deprecation(type_name, undo=True)])
    try:
        action()
    finally:
        ctx.iot.apply([thing_type.deprecation(type_name)])


def _principals(iot: Iot, name: str) -> list[str]:
    # A thing deleted meanwhile has none (NotFound from the listing).
    try:
        return [str(principal) for principal in iot.items("ListThingPrincipals", thingName=name)]
    except NotFoundError:
        return []


KIND = Thing()
KINDS = (KIND,)
