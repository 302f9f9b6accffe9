"""Thing groups: hierarchy, description, attributes, and a dynamic group's definition.

AWS behaviours relied on (AWS IoT API Reference, one page per action, unless said otherwise):
- A group's parent is fixed at creation (CreateThingGroup ``parentGroupName``; UpdateThingGroup
  has none): a parent that differs means the source deleted and re-created the group. The
  hierarchy is at most 7 deep (AWS IoT Core quotas); a group with children cannot be deleted.
- DescribeThingGroup returns the parent (``thingGroupMetadata.parentGroupName``), the
  properties and, for a dynamic group, ``queryString``, ``indexName`` and ``queryVersion``.
- A THING_GROUP_EVENT does not say reliably whether the group is dynamic (only the undocumented
  ``dynamicGroupMappingId`` hints at it) nor carry the query: persist looks the group up in the
  origin region before writing (``resolve``). Its ``rootToParentThingGroups`` lists the group's
  ancestors, root first (AWS IoT Developer Guide, "Registry events",
  https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html).
- Group attributes are replaced with merge=True and ``""`` for each removed key: AWS ignores an
  empty attribute map (getmoto/moto#5318, "AWS will simply ignore it"), so merge=False with
  ``{}`` would never clear the last attributes.
- Dynamic groups are replicated by definition; their memberships never are.
- A group is static or dynamic for life: no call converts one into the other, and each kind has
  its own update and delete calls (UpdateDynamicThingGroup, DeleteDynamicThingGroup: "This
  operation does not support dynamic thing groups", AWS's answer to DeleteThingGroup of a dynamic
  group, rebuy-de/aws-nuke#1199). A group whose kind differs under the same name was deleted
  and re-created in the source: it is deleted and re-created here, as for a new parent.
- DeleteThingGroup refuses a group with child groups (InvalidRequestException, "Static thing
  groups"): children are deleted first, and a refusal right after is a wait
  (``pipeline.aws.WAIT_REFUSALS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pydantic import Field

from pipeline import rules
from pipeline.errors import EventValidationError, NotFoundError
from pipeline.iot import Iot
from pipeline.kinds.base import (
    Call,
    Cascade,
    ConvergeError,
    Converging,
    DependencyNotReadyError,
    EntitySpec,
    Kind,
    Listing,
    Reader,
    Result,
    attribute_map,
    json_or_none,
    text,
    version,
)
from pipeline.kinds.links import split_link, split_membership_name, split_target
from pipeline.kinds.parse import (
    GROUP_ARN,
    AddRemove,
    Crud,
    NonEmptyStr,
    RegistryEvent,
    description,
    name_from_arn,
    optional_name,
    validate,
    versioned,
)
from pipeline.model import Change, EntityKind, Item, Lookup, Origin

THING_GROUP_EVENT = "THING_GROUP_EVENT"
THING_GROUP_HIERARCHY_EVENT = "THING_GROUP_HIERARCHY_EVENT"
MAX_GROUP_DEPTH = (
    7  # AWS's hierarchy depth limit; a longer chain in the table is a cycle or bad data
)
DEFAULT_QUERY_VERSION = "2017-09-30"
_QUERY_KEYS = frozenset({"query_string", "index_name", "query_version"})


# --- registry events -----------------------------------------------------------------------------


class _ThingGroupEvent(RegistryEvent):
    operation: Crud
    thing_group_id: NonEmptyStr = Field(alias="thingGroupId")
    thing_group_name: str = Field(alias="thingGroupName")
    # None only in a DELETED event (``parse.versioned``).
    version_number: int | None = Field(None, alias="versionNumber", ge=0)
    parent_group_name: str | None = Field(None, alias="parentGroupName")
    description: str | None = None
    attributes: dict[str, str] | None = None
    # Root first, down to the direct parent (AWS IoT guide, "Registry events").
    root_to_parent: list[dict[str, Any]] | None = Field(None, alias="rootToParentThingGroups")


class _HierarchyEvent(RegistryEvent):
    operation: AddRemove
    parent_name: str = Field(alias="thingGroupName")
    child_group_id: NonEmptyStr = Field(alias="childGroupId")
    child_name: str = Field(alias="childGroupName")


def _attributes(field: str, value: object) -> dict[str, str]:
    return rules.validate_attributes(
        field, value, typed=None, max_count=rules.THING_GROUP_MAX_ATTRIBUTES
    )


def _ancestor(field: str, entry: Mapping[str, Any]) -> str:
    arn = entry.get("groupArn")
    if not isinstance(arn, str):
        raise EventValidationError(field, "must be a thing group ARN")
    return name_from_arn(field, arn, GROUP_ARN, "thinggroup")


def _parse_group(data: dict[str, Any], region: str) -> Change:
    event = validate(_ThingGroupEvent, data)
    name = rules.validate_name("thingGroupName", event.thing_group_name)
    version = versioned(event.operation, event.version_number)
    origin = Origin(region, event.timestamp, event.event_id, event.thing_group_id, version)
    if event.operation == "DELETED":
        return Change(EntityKind.THING_GROUP, name, origin, deleted=True)
    fields: dict[str, Any] = {
        "parent": optional_name("parentGroupName", event.parent_group_name),
        "description": description("description", event.description),
        "attributes": _attributes("attributes", event.attributes or {}),
    }
    # "query" is left out (the stored one is kept) until persist looks it up.
    ancestors = tuple(
        _ancestor(f"rootToParentThingGroups[{i}].groupArn", entry)
        for i, entry in enumerate(event.root_to_parent or [])
    )
    return Change(
        EntityKind.THING_GROUP, name, origin, fields=fields, lookup=Lookup(), ancestors=ancestors
    )


def _parse_hierarchy(data: dict[str, Any], region: str) -> Change:
    event = validate(_HierarchyEvent, data)
    parent = rules.validate_name("thingGroupName", event.parent_name)
    child = rules.validate_name("childGroupName", event.child_name)
    origin = Origin(region, event.timestamp, event.event_id, event.child_group_id)
    # A parent is fixed when the child is created, so REMOVED only accompanies the child's
    # deletion, which the child's own THING_GROUP_EVENT (DELETED) carries. It changes nothing.
    fields = {"parent": parent} if event.operation == "ADDED" else {}
    return Change(EntityKind.THING_GROUP, child, origin, fields=fields, partial=True)


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


# --- AWS's shape and the pure decision -----------------------------------------------------------


def state_of(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A DescribeThingGroup response as the group's state."""
    properties = raw.get("thingGroupProperties") or {}
    metadata = raw.get("thingGroupMetadata") or {}
    query = None
    if raw.get("queryString"):
        query = {
            "query_string": raw["queryString"],
            "index_name": raw.get("indexName") or rules.THINGS_INDEX,
            "query_version": raw.get("queryVersion") or DEFAULT_QUERY_VERSION,
        }
    attributes = (properties.get("attributePayload") or {}).get("attributes") or {}
    return {
        "parent": metadata.get("parentGroupName") or None,
        "description": properties.get("thingGroupDescription") or None,
        "attributes": {str(k): str(v) for k, v in attributes.items()},
        "query": query,
    }


def needs_update(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    return any(
        key in desired and (desired[key] or None) != (actual.get(key) or None)
        for key in ("description", "attributes", "query")
    )


def _properties(
    text_: str | None, attributes: dict[str, str], *, merge: bool | None
) -> dict[str, Any]:
    # Not capped: a merging payload also names each removed key (with "").
    payload: dict[str, Any] = {
        "attributes": rules.validate_attributes("attributes", attributes, typed=None)
    }
    if merge is not None:
        payload["merge"] = merge
    properties: dict[str, Any] = {"attributePayload": payload}
    if text_ is not None:
        properties["thingGroupDescription"] = rules.validate_description("description", text_)
    return properties


def _dynamic(query: Mapping[str, str]) -> dict[str, str]:
    return {
        "queryString": query["query_string"],
        "indexName": query.get("index_name") or rules.THINGS_INDEX,
        "queryVersion": query.get("query_version") or DEFAULT_QUERY_VERSION,
    }


def _create(name: str, desired: Mapping[str, Any]) -> Call:
    group = rules.validate_name("thingGroupName", name)
    properties = _properties(
        desired.get("description"), dict(desired.get("attributes") or {}), merge=None
    )
    query = desired.get("query")
    if query:
        return Call(
            "CreateDynamicThingGroup",
            {"thingGroupName": group, "thingGroupProperties": properties, **_dynamic(query)},
        )
    params: dict[str, Any] = {"thingGroupName": group, "thingGroupProperties": properties}
    if desired.get("parent"):
        params["parentGroupName"] = rules.validate_name("parentGroupName", desired["parent"])
    return Call("CreateThingGroup", params)


def _update(name: str, desired: Mapping[str, Any], actual: Mapping[str, Any]) -> Call:
    """Description and the whole attribute set (merge=True, ``""`` for each removed key)."""
    attributes = dict(desired.get("attributes", actual.get("attributes")) or {})
    payload = dict(rules.validate_attributes("attributes", attributes, typed=None))
    for key in actual.get("attributes") or {}:
        payload.setdefault(key, "")
    # An empty description clears it; leaving it out would keep the old one.
    properties = _properties(
        desired.get("description", actual.get("description")) or "", payload, merge=True
    )
    query = desired.get("query", actual.get("query"))
    if query:
        return Call(
            "UpdateDynamicThingGroup",
            {"thingGroupName": name, "thingGroupProperties": properties, **_dynamic(query)},
        )
    return Call("UpdateThingGroup", {"thingGroupName": name, "thingGroupProperties": properties})


def recreated(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    """Whether the destination's group cannot become ``desired`` in place: its parent (fixed at
    creation) or its kind, static or dynamic (no call converts one into the other), differs."""
    if "parent" in desired and desired["parent"] != actual.get("parent"):
        return True
    return "query" in desired and bool(desired["query"]) != bool(actual.get("query"))


def _delete(name: str, actual: Mapping[str, Any]) -> Call:
    dynamic = actual.get("query") is not None
    return Call(
        "DeleteDynamicThingGroup" if dynamic else "DeleteThingGroup", {"thingGroupName": name}
    )


# --- the kind --------------------------------------------------------------------------------------


class ThingGroup(Kind):
    spec = EntitySpec(
        EntityKind.THING_GROUP,
        frame="thing_groups",
        rank=1,
        fields={"parent": "high", "description": "low", "attributes": "medium", "query": "high"},
        noun=("group", "groups"),
        alias="group",
    )
    columns = (
        text("name"),
        text("parent"),
        text("description"),
        attribute_map(),
        json_or_none("query"),
        version(),
    )
    # One describe per group: 4 at once keep DescribeThingGroup's 100 TPS busy up to 40 ms a
    # call (bench B2: one after another, 100 groups took 2.5x the snapshot's bound at 200 ms).
    listing = Listing(
        "ListThingGroups", name="groupName", describe=("DescribeThingGroup",), describe_workers=4
    )
    quotas = {"ListThingGroups": 10, "DescribeThingGroup": 100}  # L-1E5260D6, L-52E1E197
    registry_events = {
        THING_GROUP_EVENT: _parse_group,
        THING_GROUP_HIERARCHY_EVENT: _parse_hierarchy,
    }

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        field = f"state.{key}"
        if key == "parent":
            return optional_name(field, value)
        if key == "description":
            return description(field, value)
        if key == "attributes":
            return _attributes(field, value)
        return _query(field, value)

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        response = iot.maybe("DescribeThingGroup", thingGroupName=name)
        return None if response is None else state_of(response)

    def record(self, reader: Reader, listed: Mapping[str, Any]) -> dict[str, Any] | None:
        name = listed["groupName"]
        try:
            response = reader.call("DescribeThingGroup", thingGroupName=name)
        except NotFoundError:
            return None  # deleted since it was listed: it no longer exists
        return {"name": name, **state_of(response), "version": response.get("version")}

    def resolve(self, origin: Iot, change: Change) -> Change:
        """Whether the group is dynamic, and its query: DescribeThingGroup's ``queryString``
        (a group deleted since the event has none; its DELETED event follows)."""
        if change.lookup is None:
            return change
        described = self.read(origin, change.name)
        fields = {**change.fields, "query": described["query"] if described else None}
        return replace(change, fields=fields, lookup=None)

    def depends_on(self, name: str, state: Mapping[str, Any]) -> tuple[tuple[EntityKind, str], ...]:
        return ((EntityKind.THING_GROUP, state["parent"]),) if state.get("parent") else ()

    def cascades(self, name: str) -> tuple[Cascade, ...]:
        """A deleted group takes its memberships and its policy attachments with it: AWS
        deletes a group that still has things ("Static thing groups") and publishes membership
        events only for AddThingToThingGroup and RemoveThingFromThingGroup, and no
        DetachPolicy call is made for it (AWS IoT Developer Guide, "Registry events",
        https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html). That no
        event follows is what the registry events page implies, not what it says: an
        assumption (README, known limits)."""
        target = (EntityKind.THING_GROUP, name)
        return (
            Cascade(EntityKind.MEMBERSHIP, lambda link: split_membership_name(link)[1] == name),
            Cascade(
                EntityKind.POLICY_TARGET, lambda link: split_target(split_link(link)[1]) == target
            ),
        )

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        """Create, update or delete this group alone: a parent or a kind that differs is a
        delete and a create (its children and a missing parent are the converge hook's)."""
        if desired is None:
            return [] if actual is None else [_delete(name, actual)]
        if actual is None:
            return [_create(name, desired)]
        if recreated(desired, actual):
            return [_delete(name, actual), _create(name, desired)]
        return [_update(name, desired, actual)] if needs_update(desired, actual) else []

    def converge(self, ctx: Converging, item: Item) -> Result:
        return _converge(ctx, item, depth=0)


KIND = ThingGroup()
KINDS = (KIND,)


def _converge(ctx: Converging, item: Item, depth: int) -> Result:
    name, desired = item.name, item.state
    actual = KIND.read(ctx.iot, name)
    if item.deleted:
        if actual is None:
            return Result("noop", "already absent")
        _delete_tree(ctx, name, actual, depth)
        return Result("deleted")
    if actual is not None and recreated(desired, actual):
        # A parent is fixed at creation, a kind for life: the source re-created the group.
        _delete_tree(ctx, name, actual, depth, then=desired)
        actual = None
    if actual is None:
        _create_with_parents(ctx, name, desired, depth)
        return Result("created")
    calls = KIND.calls(name, desired, actual)
    ctx.iot.apply(calls)
    return Result("updated") if calls else Result("noop", "already matches")


def _create_with_parents(
    ctx: Converging, name: str, desired: Mapping[str, Any], depth: int
) -> None:
    parent = desired.get("parent")
    if parent:
        if depth >= MAX_GROUP_DEPTH:
            raise ConvergeError(f"thing group {name!r}: parent chain deeper than {MAX_GROUP_DEPTH}")
        if KIND.read(ctx.iot, parent) is None:
            parent_item = ctx.table.get(EntityKind.THING_GROUP, parent)
            if parent_item is None:
                raise DependencyNotReadyError(
                    f"parent group {parent!r} of {name!r} not in table yet"
                )
            if parent_item.deleted:
                raise ConvergeError(
                    f"group {name!r} wants parent {parent!r}, deleted in the source"
                )
            ctx.expect(EntityKind.THING_GROUP, parent, parent_item.state)
            _converge(ctx, parent_item, depth + 1)
    ctx.iot.apply(KIND.calls(name, desired, None))


def _delete_tree(
    ctx: Converging,
    name: str,
    actual: Mapping[str, Any],
    depth: int,
    then: Mapping[str, Any] | None = None,
) -> None:
    """Delete a group and its unwanted children; ``then``: the state it is re-created with."""
    for listed in ctx.iot.items("ListThingGroups", parentGroup=name, recursive=False):
        child = str(listed["groupName"])
        child_item = ctx.table.get(EntityKind.THING_GROUP, child)
        if (
            child_item is not None
            and not child_item.deleted
            and child_item.state.get("parent") == name
        ):
            raise DependencyNotReadyError(
                f"group {name!r} cannot be deleted while its child {child!r} is still wanted"
            )
        child_actual = KIND.read(ctx.iot, child)
        if child_actual is not None:
            _delete_tree(ctx, child, child_actual, depth + 1)
    ctx.expect(EntityKind.THING_GROUP, name, None, *([dict(then)] if then is not None else []))
    ctx.iot.apply(KIND.calls(name, None, actual))
