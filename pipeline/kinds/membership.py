"""Static thing-group memberships: a link ``<thing>#<group>`` that exists or not.

AWS behaviours relied on:
- THING_GROUP_MEMBERSHIP_EVENT carries no names, only ARNs (AWS IoT Developer Guide, "Registry
  events", https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html).
- AddThingToThingGroup and RemoveThingFromThingGroup are idempotent, so the replicator makes
  them without reading first; ``overrideDynamicGroups`` lets a static membership win over
  dynamic groups at the 10-group limit, as it did in the source (AWS IoT API Reference,
  AddThingToThingGroup).
- A thing cannot be in "more than one group in the same hierarchy", nor in more than 10 groups
  (AWS IoT guide, "Static thing groups":
  https://docs.aws.amazon.com/iot/latest/developerguide/thing-groups.html): an add refused
  for either waits for the removals (``_add``). A hierarchy is read as all the groups under one
  root: wider than the guide's parenthesis ("two groups which share a common parent"), so a
  move between cousins waits too, whichever reading AWS applies.
- A dynamic group's members are computed by each region's fleet index: never listed, never
  stored (persist), never replicated.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import Field

from pipeline import rules
from pipeline.errors import AwsRequestError, NotFoundError
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
    label,
    text,
)
from pipeline.kinds.links import membership_name, parse_link, split_membership_name
from pipeline.kinds.parse import (
    GROUP_ARN,
    THING_ARN,
    AddRemove,
    NonEmptyStr,
    RegistryEvent,
    name_from_arn,
    validate,
)
from pipeline.model import Change, EntityKind, Item, Origin

THING_GROUP_MEMBERSHIP_EVENT = "THING_GROUP_MEMBERSHIP_EVENT"


class _MembershipEvent(RegistryEvent):
    operation: AddRemove
    thing_arn: str = Field(alias="thingArn")
    group_arn: str = Field(alias="groupArn")
    membership_id: NonEmptyStr = Field(alias="membershipId")


def _parse(data: dict[str, Any], region: str) -> Change:
    event = validate(_MembershipEvent, data)
    thing = name_from_arn("thingArn", event.thing_arn, THING_ARN, "thing")
    group = name_from_arn("groupArn", event.group_arn, GROUP_ARN, "thinggroup")
    origin = Origin(region, event.timestamp, event.event_id, event.membership_id)
    return Change(
        EntityKind.MEMBERSHIP,
        membership_name(thing, group),
        origin,
        deleted=event.operation == "REMOVED",
    )


def is_dynamic(group: Item | None) -> bool:
    """Whether the group (as the table holds it) is dynamic: its memberships are not ours."""
    return group is not None and bool(group.state.get("query"))


class Membership(Kind):
    spec = EntitySpec(
        EntityKind.MEMBERSHIP,
        frame="memberships",
        rank=4,
        fields={},  # a link: it exists or not
        noun=("membership", "memberships"),
        alias="member",
        frame_key=("thing", "group"),
    )
    columns = (text("thing"), label("group"))
    # The direct members of each listed static group, four groups at a time: the member API
    # allows 25 calls/s, which one thread at a typical 50-100 ms per call would fall short of.
    listing = Listing(
        "ListThingsInThingGroup",
        parent=EntityKind.THING_GROUP,
        workers=4,
        dangling=EntityKind.THING,
    )
    quotas = {"ListThingsInThingGroup": 25}  # L-D33FD5F9
    registry_events = {THING_GROUP_MEMBERSHIP_EVENT: _parse}

    def check_name(self, field_name: str, name: object) -> str:
        thing, group = parse_link(field_name, name, "a membership name is '<thing>#<group>'")
        return membership_name(
            rules.validate_name(field_name, thing), rules.validate_name(field_name, group)
        )

    def lists_under(self, parent: Mapping[str, Any]) -> bool:
        return not parent.get("query")  # a static group: its members are ours to read

    def links(self, reader: Reader, parent: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        group = parent["name"]
        for thing in reader.items("ListThingsInThingGroup", thingGroupName=group, recursive=False):
            yield {"thing": thing, "group": group}

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        thing, group = split_membership_name(name)
        try:
            groups = [g["groupName"] for g in iot.items("ListThingGroupsForThing", thingName=thing)]
        except NotFoundError:
            return None
        return {} if group in groups else None

    def depends_on(self, name: str, state: Mapping[str, Any]) -> tuple[tuple[EntityKind, str], ...]:
        thing, group = split_membership_name(name)
        return ((EntityKind.THING, thing), (EntityKind.THING_GROUP, group))

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        thing, group = split_membership_name(name)
        if desired is None:
            return [] if actual is None else [_remove(thing, group)]
        if actual is not None:
            return []
        return [
            Call(
                "AddThingToThingGroup",
                {
                    "thingName": rules.validate_name("thingName", thing),
                    "thingGroupName": rules.validate_name("thingGroupName", group),
                    "overrideDynamicGroups": True,
                },
            )
        ]

    def converge(self, ctx: Converging, item: Item) -> Result:
        """Without a read (both calls are idempotent): the link is added as if absent, or
        removed as if present."""
        thing, group = split_membership_name(item.name)
        group_item = ctx.table.get(EntityKind.THING_GROUP, group)
        if is_dynamic(group_item):
            return Result("skipped", "dynamic group: membership is computed by the region's index")
        if item.deleted:
            ctx.iot.apply(self.calls(item.name, None, {}))
            return Result("removed")
        if group_item is not None and group_item.deleted:
            return Result("skipped", "the group is deleted in the source")
        add = self.calls(item.name, item.state, None)
        try:
            _add(ctx, thing, group, add)
        except NotFoundError:
            thing_item = ctx.table.get(EntityKind.THING, thing)
            if thing_item is not None and thing_item.deleted:
                return Result("skipped", "the thing is deleted in the source")
            for kind, name in self.depends_on(item.name, item.state):
                ctx.ensure(kind, name)
            _add(ctx, thing, group, add)
        return Result("added")


def _remove(thing: str, group: str) -> Call:
    return Call("RemoveThingFromThingGroup", {"thingName": thing, "thingGroupName": group})


def _add(ctx: Converging, thing: str, group: str, add: list[Call]) -> None:
    """Add the thing to the group. A move between groups arrives as two independent items,
    the add possibly first: when AWS refuses the add, the groups that block it in the
    destination (those of ``group``'s hierarchy: a thing is in one group per hierarchy; any of
    its groups once it is in 10, AWS's limit) are looked up; the removals the table holds for them are
    applied first, and a membership the table still wants is a wait (retryable), never a
    permanent failure."""
    try:
        ctx.iot.apply(add)
        return
    except AwsRequestError as error:
        blocking = _blocking(ctx, thing, group)
        if not blocking:
            raise
        refusal = error
    waiting = []
    removed = False
    for other in blocking:
        member = ctx.table.get(EntityKind.MEMBERSHIP, membership_name(thing, other))
        if member is not None and member.deleted:
            ctx.iot.apply([_remove(thing, other)])
            removed = True
        else:
            waiting.append(other)
    # At the limit one removal makes room; a group of the hierarchy must have gone, every one.
    siblings_waiting = [other for other in waiting if blocking[other] == "hierarchy"]
    if siblings_waiting or not removed:
        raise DependencyNotReadyError(
            f"{thing!r} joins {group!r} once it has left "
            + (
                f"its group(s) {siblings_waiting} of the same hierarchy"
                if siblings_waiting
                else f"one of its {len(blocking)} groups {sorted(blocking)} "
                f"(at most {rules.MAX_GROUPS_PER_THING} per thing)"
            )
            + f" (AWS: {refusal})"
        ) from refusal
    ctx.iot.apply(add)


def _blocking(ctx: Converging, thing: str, group: str) -> dict[str, str]:
    """The destination groups of ``thing`` that can make AWS refuse adding it to ``group``,
    each with why: ``"hierarchy"`` (under ``group``'s root: "you can't add a thing to more than
    one group in the same hierarchy") or ``"limit"`` (the thing is in 10 groups: "You can add a
    thing to a maximum of 10 groups"; AWS IoT guide, "Static thing groups",
    https://docs.aws.amazon.com/iot/latest/developerguide/thing-groups.html)."""
    root = _root(ctx.iot, group)
    current = [
        str(listed["groupName"])
        for listed in ctx.iot.items("ListThingGroupsForThing", thingName=thing)
        if str(listed["groupName"]) != group
    ]
    blocking: dict[str, str] = {}
    if len(current) >= rules.MAX_GROUPS_PER_THING:
        blocking = dict.fromkeys(current, "limit")
    if root is not None:
        for other in current:
            if _root(ctx.iot, other) == root:
                blocking[other] = "hierarchy"
    return blocking


def _root(iot: Iot, group: str) -> str | None:
    """The root of ``group``'s hierarchy in the destination (itself for a root group), from
    DescribeThingGroup's ``thingGroupMetadata.rootToParentThingGroups`` (root first; AWS IoT API
    Reference, DescribeThingGroup); ``None`` when the group is gone."""
    described = iot.maybe("DescribeThingGroup", thingGroupName=group)
    if described is None:
        return None
    ancestors = (described.get("thingGroupMetadata") or {}).get("rootToParentThingGroups") or []
    return str(ancestors[0]["groupName"]) if ancestors else group


KIND = Membership()
KINDS = (KIND,)
