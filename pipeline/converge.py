"""Converge one destination-registry entity to its desired state (docs/design.md, replicator).

Level-triggered, like a Kubernetes controller: for an item of the state table we describe the
entity in the destination, compare, and make the fewest calls that close the gap. Applying the
same item twice, or an older item after a newer one, leaves the destination correct, because
we always converge to the *current* item, whatever the record that woke us.

- Dependencies first, read from the local table replica: a thing's type and billing group, a
  group's parent chain, a membership's thing and group. They are created lazily, when a call
  fails for want of them (or before creating a child group), so a plain update costs two calls.
- Deletes in reverse: a group's tombstoned children are deleted before it; a child still wanted
  makes the delete wait (retryable). Deleting a thing drops its memberships in AWS.
- Thing-type deletion is a lifecycle: deprecate, detach the type from its things, and record a
  pending deletion that ``pipeline.pending`` completes after the delay AWS requires. AWS's
  UpdateThingType changes only ``mqtt5Configuration``, so a description or searchable-attribute
  change is the same lifecycle followed by a create and re-attaching the type's things.
- Dynamic groups are replicated by definition; their memberships never are.
- Before touching an entity, the converger appends what it is about to make it look like to the
  entity's echo ledger (``pipeline.echo``), so that this region's persist step recognises the
  registry events of our own writes (two-way replication) however late they arrive.

The comparison functions (``thing_changes`` and friends) are pure; ``Converger`` carries them out.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline import aws
from pipeline.aws import ClientFactory
from pipeline.convergesecurity import SecurityConverger
from pipeline.echo import Expectation
from pipeline.errors import AwsRequestError, NotFoundError, PermanentError, RetryableError
from pipeline.iot import IotRegistry
from pipeline.model import (
    EntityKind,
    Item,
    entity_key,
    membership_name,
    split_membership_name,
)
from pipeline.security import IotSecurity
from pipeline.statetable import StateTable, item_from_record

MAX_GROUP_DEPTH = (
    7  # AWS's hierarchy depth limit; a longer chain in the table is a cycle or bad data
)


class DependencyNotReadyError(RetryableError):
    """A dependency (type, parent, thing) has not reached the local table replica yet."""


class ConvergeError(PermanentError):
    """The desired state cannot be reached in the destination as it stands (AWS refuses it)."""


@dataclass(frozen=True)
class ThingChanges:
    thing_type: str | None
    remove_thing_type: bool
    attributes: dict[str, str] | None  # the full new set, or None when unchanged
    billing_group: tuple[str | None, str | None] | None  # (leave, join), or None when unchanged

    @property
    def registry_update(self) -> bool:
        return bool(self.thing_type or self.remove_thing_type or self.attributes is not None)


def thing_changes(desired: dict[str, Any], actual: dict[str, Any]) -> ThingChanges:
    """What differs between a thing's desired state and its state in the destination.

    A field missing from ``desired`` (a stub written by a partial event) is left alone.
    """
    thing_type: str | None = None
    remove = False
    if "thing_type" in desired and desired["thing_type"] != actual.get("thing_type"):
        thing_type = desired["thing_type"]
        remove = thing_type is None
    attributes = None
    if "attributes" in desired and dict(desired["attributes"] or {}) != actual.get("attributes"):
        attributes = dict(desired["attributes"] or {})
    billing = None
    if "billing_group" in desired and desired["billing_group"] != actual.get("billing_group"):
        billing = (actual.get("billing_group"), desired["billing_group"])
    return ThingChanges(thing_type, remove, attributes, billing)


def group_needs_update(desired: dict[str, Any], actual: dict[str, Any]) -> bool:
    return any(
        key in desired and (desired[key] or None) != (actual.get(key) or None)
        for key in ("description", "attributes", "query")
    )


# AWS IoT needs a type deprecated for 5 minutes before DeleteThingType ("Delete a thing type":
# https://docs.aws.amazon.com/iot/latest/developerguide/delete-thing-types.html); the margin
# covers clock skew between our clock and AWS's.
TYPE_DELETE_MARGIN_SECONDS = 30
UNTYPED_MAX_ATTRIBUTES = 3  # AWS IoT guide, "Thing types": an untyped thing has at most 3


@dataclass(frozen=True)
class TypeChanges:
    recreate: bool  # description or searchable attributes differ: AWS cannot update them
    propagating: list[dict[str, str]] | None  # new mqtt5 propagating attributes, or None
    deprecate: bool | None  # new deprecation flag, or None when it is right


def type_changes(desired: dict[str, Any], actual: dict[str, Any]) -> TypeChanges:
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
    flag = None if deprecated == bool(actual.get("deprecated")) else deprecated
    return TypeChanges(recreate, propagating, flag)


def pending_type_key(region: str, name: str) -> str:
    return f"PENDING#TYPEDELETE#{region}#{name}"


@dataclass(frozen=True)
class Result:
    """What converging one item did: ``action`` is a short verb for logs and metrics."""

    action: str
    detail: str = ""


class Converger:
    """Makes the destination registry match items of the (local replica of the) state table."""

    def __init__(
        self,
        iot: IotRegistry,
        table: StateTable,
        *,
        region: str,
        clock: Callable[[], float],
        type_delete_delay_seconds: int = 300,
        wall_clock: Callable[[], float] = time.time,
        security: IotSecurity | None = None,
        policy_account_map: Mapping[str, str] | None = None,
    ) -> None:
        self.iot = iot
        # Certificates, policies and their attachments (pipeline.convergesecurity).
        self.security = SecurityConverger(
            security or IotSecurity(iot.client),
            region,
            self.converge_key,
            account_map=policy_account_map,
        )
        self.table = table
        self.region = region
        self.clock = clock
        self.type_delete_delay_seconds = type_delete_delay_seconds
        # Echo expectations are compared with the registry's event timestamps: real time, even
        # where ``clock`` is a test's fake one.
        self.wall_clock = wall_clock

    def expect(self, kind: EntityKind, name: str, *states: dict[str, Any] | None) -> None:
        """Record, before the registry calls, what they will make the entity look like
        (``None``: deleted); several states when the calls pass through intermediate ones."""
        now_ms = int(self.wall_clock() * 1000)
        self.table.record_expectations(
            self.region,
            entity_key(kind, name),
            [Expectation.of(now_ms, state, deleted=state is None) for state in states],
            now_ms,
        )

    def handlers(self) -> dict[EntityKind, Callable[[Item], Result]]:
        """The converge handler of each entity kind: one per kind of ``pipeline.model.ENTITIES``
        (tests/pipeline/test_converge_entities.py holds them equal)."""
        return {
            EntityKind.THING: self._thing,
            EntityKind.THING_TYPE: self._thing_type,
            EntityKind.THING_GROUP: self._thing_group,
            EntityKind.BILLING_GROUP: self._billing_group,
            EntityKind.MEMBERSHIP: self._membership,
            EntityKind.CERTIFICATE: self._security,
            EntityKind.POLICY: self._security,
            EntityKind.THING_PRINCIPAL: self._security,
            EntityKind.POLICY_TARGET: self._security,
        }

    def converge(self, item: Item) -> Result:
        self.expect(item.kind, item.name, None if item.deleted else item.state)
        return self.handlers()[item.kind](item)

    def _security(self, item: Item) -> Result:
        """Certificates, policies and their attachments (pipeline.convergesecurity)."""
        return Result(*self.security.converge(item))

    def converge_key(self, kind: EntityKind, name: str) -> Result:
        """Converge a dependency from the local table; it must be there and live."""
        item = self.table.get(kind, name)
        if item is None:
            raise DependencyNotReadyError(
                f"{kind.value} {name!r} is not in the local state table yet"
            )
        if item.deleted:
            raise ConvergeError(f"{kind.value} {name!r} is needed but deleted in the source")
        return self.converge(item)

    # --- things -------------------------------------------------------------------------------
    def _thing(self, item: Item) -> Result:
        name, desired = item.name, item.state
        actual = self.iot.describe_thing(name)
        if item.deleted:
            if actual is None:
                return Result("noop", "already absent")
            self.iot.delete_thing(name)
            return Result("deleted")
        if actual is None:
            return self._unless_type_pending(
                item,
                "created",
                lambda: self._assigning_type(
                    desired.get("thing_type"), lambda: self._create_thing(name, desired)
                ),
            )
        changes = thing_changes(desired, actual)
        if not changes.registry_update and changes.billing_group is None:
            return Result("noop", "already matches")
        return self._unless_type_pending(
            item,
            "updated",
            lambda: self._assigning_type(
                changes.thing_type, lambda: self._update_thing(name, desired, actual, changes)
            ),
        )

    def _unless_type_pending(self, item: Item, verb: str, action: Callable[[], None]) -> Result:
        """Run ``action`` with its dependencies. AWS refuses a deprecated type to a thing; when
        the type is deprecated mid-lifecycle here (re-create), finishing the lifecycle
        re-attaches this thing from the table, so the refusal is not a failure."""
        try:
            self._with_dependencies(item, action)
        except AwsRequestError:
            thing_type = item.state.get("thing_type")
            if thing_type and self.table.get_raw(pending_type_key(self.region, thing_type)):
                return Result("deferred", f"type {thing_type!r} is being re-created")
            raise
        return Result(verb)

    def _assigning_type(self, thing_type: str | None, action: Callable[[], None]) -> None:
        """Run ``action``, which gives a thing ``thing_type``. AWS refuses a deprecated type to
        new things, yet the source may have things of a type deprecated since: the type is
        undeprecated for the call and deprecated again after (the table says which types are)."""
        type_item = self.table.get(EntityKind.THING_TYPE, thing_type) if thing_type else None
        if thing_type is None or type_item is None or not type_item.state.get("deprecated"):
            action()
            return
        described = self.iot.describe_thing_type(thing_type)
        if described is None or not described.get("deprecated"):
            action()  # a missing type is created (deprecated) by the dependency step
            return
        self.expect(
            EntityKind.THING_TYPE,
            thing_type,
            {**type_item.state, "deprecated": False},
            type_item.state,
        )
        self.iot.deprecate_thing_type(thing_type, undo=True)
        try:
            action()
        finally:
            self.iot.deprecate_thing_type(thing_type)

    def _create_thing(self, name: str, desired: dict[str, Any]) -> None:
        self.iot.create_thing(
            name,
            desired.get("thing_type"),
            dict(desired.get("attributes") or {}),
            billing_group=desired.get("billing_group"),
        )

    def _update_thing(
        self, name: str, desired: dict[str, Any], actual: dict[str, Any], changes: ThingChanges
    ) -> None:
        if changes.thing_type and actual.get("thing_type"):
            # A new type first dissociates the old one: its association event says "no type".
            self.expect(EntityKind.THING, name, desired, {"thing_type": None})
        if changes.registry_update:
            final_type = desired.get("thing_type", actual.get("thing_type"))
            self.iot.update_thing(
                name,
                thing_type=changes.thing_type,
                remove_thing_type=changes.remove_thing_type,
                attributes=changes.attributes,
                typed=final_type is not None,
                previous_attributes=actual.get("attributes") or {},
            )
        if changes.billing_group is not None:
            leave, join = changes.billing_group
            if leave:
                self.iot.remove_thing_from_billing_group(name, leave)
            if join:
                self.iot.add_thing_to_billing_group(name, join)

    def _with_dependencies(self, item: Item, action: Callable[[], None]) -> None:
        """Run ``action``; if AWS says a dependency is missing, create it from the table, retry."""
        try:
            action()
            return
        except NotFoundError:
            pass
        if item.state.get("thing_type"):
            self._ensure(EntityKind.THING_TYPE, item.state["thing_type"])
        if item.state.get("billing_group"):
            self._ensure(EntityKind.BILLING_GROUP, item.state["billing_group"])
        try:
            action()
        except NotFoundError as error:
            raise DependencyNotReadyError(
                f"{item.key}: still missing a dependency: {error}"
            ) from error

    def _ensure(self, kind: EntityKind, name: str) -> None:
        describe = {
            EntityKind.THING_TYPE: self.iot.describe_thing_type,
            EntityKind.BILLING_GROUP: self.iot.describe_billing_group,
            EntityKind.THING_GROUP: self.iot.describe_thing_group,
            EntityKind.THING: self.iot.describe_thing,
        }[kind]
        if describe(name) is None:
            self.converge_key(kind, name)

    # --- thing types --------------------------------------------------------------------------
    def _thing_type(self, item: Item) -> Result:
        name, desired = item.name, item.state
        actual = self.iot.describe_thing_type(name)
        if item.deleted:
            if actual is None:
                self.table.delete_raw(pending_type_key(self.region, name))
                return Result("noop", "already absent")
            return self._start_type_lifecycle(name, actual, recreate=False)
        if actual is None:
            self._create_type(name, desired)
            return Result("created")
        changes = type_changes(desired, actual)
        pending = self.table.get_raw(pending_type_key(self.region, name))
        if changes.recreate:
            if pending is not None:  # already on its way out: it comes back with these properties
                self.table.put_raw({**pending, "recreate": True})
                return Result("recreate-pending", "the pending deletion will re-create it")
            return self._start_type_lifecycle(name, actual, recreate=True)
        if pending is not None:
            # Deleted and re-created in the source with the same properties: keep the type.
            return self._restore_type(name, desired)
        if changes.propagating is not None:
            self.iot.update_thing_type_mqtt5(name, changes.propagating)
        if changes.deprecate is not None:
            self.iot.deprecate_thing_type(name, undo=not changes.deprecate)
        updated = changes.propagating is not None or changes.deprecate is not None
        return Result("updated" if updated else "noop")

    def _create_type(self, name: str, desired: dict[str, Any]) -> None:
        self.iot.create_thing_type(
            name,
            desired.get("description"),
            list(desired.get("searchable_attributes") or []),
            list(desired.get("propagating_attributes") or []),
        )
        if desired.get("deprecated"):
            self.iot.deprecate_thing_type(name)

    def _start_type_lifecycle(self, name: str, actual: dict[str, Any], *, recreate: bool) -> Result:
        """Deprecate, detach what can be detached, and record the deletion as pending."""
        if not actual.get("deprecated"):
            self.expect(EntityKind.THING_TYPE, name, {"deprecated": True})
            self.iot.deprecate_thing_type(name)
        due = int(self.clock()) + self.type_delete_delay_seconds + TYPE_DELETE_MARGIN_SECONDS
        self.table.put_raw(
            {
                "pk": pending_type_key(self.region, name),
                "kind": "pending_type_delete",
                "name": name,
                "region": self.region,
                "delete_after": due,
                "recreate": recreate,
            }
        )
        with contextlib.suppress(RetryableError):  # the pending job detaches the rest later
            self._detach_type(name, recreate=recreate)
        verb = "recreate-pending" if recreate else "deletion-pending"
        return Result(verb, f"deprecated; deletable after {due}")

    def _detach_type(self, name: str, *, recreate: bool) -> None:
        """Take the type off its things in the destination, as the source did before deleting it.

        For a deletion, a thing is detached by converging it to its desired state, which no
        longer has the type; a thing whose desired state still has it waits (its update has not
        arrived; detaching it blindly could break the 3-attribute limit of untyped things). For a
        re-create every thing is detached, keeping at most 3 attributes (AWS allows no more on
        an untyped thing); re-attaching converges it back to its full desired state.
        """
        waiting: list[str] = []
        for thing in list(self.iot.iter_things_of_type(name)):
            thing_item = self.table.get(EntityKind.THING, thing)
            if recreate:
                actual = self.iot.describe_thing(thing) or {}
                attributes = dict(actual.get("attributes") or {})
                kept = dict(sorted(attributes.items())[:UNTYPED_MAX_ATTRIBUTES])
                self.expect(EntityKind.THING, thing, {"thing_type": None, "attributes": kept})
                self.iot.update_thing(
                    thing,
                    remove_thing_type=True,
                    attributes=kept if kept != attributes else None,
                    typed=False,
                    previous_attributes=attributes,
                )
            elif thing_item is not None and thing_item.deleted:
                self.expect(EntityKind.THING, thing, None)
                self.iot.delete_thing(thing)
            elif thing_item is None or thing_item.state.get("thing_type") == name:
                waiting.append(thing)
            else:
                self.converge(thing_item)
        if waiting:
            raise DependencyNotReadyError(
                f"thing type {name!r}: {len(waiting)} thing(s) still want it in the table "
                f"(their updates have not arrived), e.g. {waiting[:3]}"
            )

    def _restore_type(self, name: str, desired: dict[str, Any]) -> Result:
        """Cancel a pending deletion: the type is wanted again as it is."""
        self.expect(EntityKind.THING_TYPE, name, desired)
        if not desired.get("deprecated"):
            self.iot.deprecate_thing_type(name, undo=True)
        self._reattach_type(name)
        self.table.delete_raw(pending_type_key(self.region, name))
        return Result("restored", "the pending deletion is cancelled")

    def _reattach_type(self, name: str) -> None:
        """Converge every thing whose desired type is ``name`` (detached by the lifecycle).

        A scan of the thing items: type re-creates are rare, and the table, not the destination,
        knows which things want the type."""
        for record in self.table.scan_prefix(entity_key(EntityKind.THING, "")):
            thing_item = item_from_record(record)
            if (
                thing_item is not None
                and not thing_item.deleted
                and thing_item.state.get("thing_type") == name
            ):
                self.converge(thing_item)

    def finish_type_deletion(self, name: str) -> Result:
        """Second half of the lifecycle, once the delay has passed (``pipeline.pending``):
        detach, delete, and for a re-create create it again and re-attach its things."""
        item = self.table.get(EntityKind.THING_TYPE, name)
        wanted = item is not None and not item.deleted
        actual = self.iot.describe_thing_type(name)
        if (
            wanted
            and item is not None
            and actual is not None
            and not type_changes(item.state, actual).recreate
        ):
            return self._restore_type(name, item.state)
        if actual is not None:
            self._detach_type(name, recreate=wanted)
            then = [item.state] if wanted and item is not None else []
            self.expect(EntityKind.THING_TYPE, name, None, *then)
            self.iot.delete_thing_type(name)
        if wanted and item is not None:
            self._create_type(name, item.state)
            self._reattach_type(name)
        self.table.delete_raw(pending_type_key(self.region, name))
        return Result("recreated" if wanted else "deleted")

    # --- thing groups -------------------------------------------------------------------------
    def _thing_group(self, item: Item, depth: int = 0) -> Result:
        name, desired = item.name, item.state
        actual = self.iot.describe_thing_group(name)
        if item.deleted:
            if actual is None:
                return Result("noop", "already absent")
            self._delete_group(name, actual, depth)
            return Result("deleted")
        if actual is not None and "parent" in desired and desired["parent"] != actual["parent"]:
            # A parent is fixed at creation: the source deleted and re-created the group.
            self._delete_group(name, actual, depth, then=desired)
            actual = None
        if actual is None:
            self._create_group(name, desired, depth)
            return Result("created")
        if group_needs_update(desired, actual):
            self.iot.update_thing_group(
                name,
                description=desired.get("description", actual.get("description")),
                attributes=dict(desired.get("attributes", actual.get("attributes")) or {}),
                previous_attributes=dict(actual.get("attributes") or {}),
                query=desired.get("query", actual.get("query")),
            )
            return Result("updated")
        return Result("noop", "already matches")

    def _create_group(self, name: str, desired: dict[str, Any], depth: int) -> None:
        parent = desired.get("parent")
        if parent:
            if depth >= MAX_GROUP_DEPTH:
                raise ConvergeError(
                    f"thing group {name!r}: parent chain deeper than {MAX_GROUP_DEPTH}"
                )
            if self.iot.describe_thing_group(parent) is None:
                parent_item = self.table.get(EntityKind.THING_GROUP, parent)
                if parent_item is None:
                    raise DependencyNotReadyError(
                        f"parent group {parent!r} of {name!r} not in table yet"
                    )
                if parent_item.deleted:
                    raise ConvergeError(
                        f"group {name!r} wants parent {parent!r}, deleted in the source"
                    )
                self.expect(EntityKind.THING_GROUP, parent, parent_item.state)
                self._thing_group(parent_item, depth + 1)
        self.iot.create_thing_group(
            name,
            parent=parent,
            description=desired.get("description"),
            attributes=dict(desired.get("attributes") or {}),
            query=desired.get("query"),
        )

    def _delete_group(
        self, name: str, actual: dict[str, Any], depth: int, then: dict[str, Any] | None = None
    ) -> None:
        """Delete a group and its unwanted children; ``then``: the state it is re-created with."""
        for child in self.iot.list_child_groups(name):
            child_item = self.table.get(EntityKind.THING_GROUP, child)
            if (
                child_item is not None
                and not child_item.deleted
                and child_item.state.get("parent") == name
            ):
                raise DependencyNotReadyError(
                    f"group {name!r} cannot be deleted while its child {child!r} is still wanted"
                )
            child_actual = self.iot.describe_thing_group(child)
            if child_actual is not None:
                self._delete_group(child, child_actual, depth + 1)
        self.expect(EntityKind.THING_GROUP, name, None, *([then] if then is not None else []))
        self.iot.delete_thing_group(name, dynamic=actual.get("query") is not None)

    # --- billing groups -----------------------------------------------------------------------
    def _billing_group(self, item: Item) -> Result:
        name = item.name
        actual = self.iot.describe_billing_group(name)
        if item.deleted:
            if actual is None:
                return Result("noop", "already absent")
            self.iot.delete_billing_group(name)
            return Result("deleted")
        description = item.state.get("description")
        if actual is None:
            self.iot.create_billing_group(name, description)
            return Result("created")
        if (description or None) != actual.get("description"):
            self.iot.update_billing_group(name, description)
            return Result("updated")
        return Result("noop", "already matches")

    # --- memberships --------------------------------------------------------------------------
    def _membership(self, item: Item) -> Result:
        thing, group = split_membership_name(item.name)
        group_item = self.table.get(EntityKind.THING_GROUP, group)
        if group_item is not None and group_item.state.get("query"):
            return Result("skipped", "dynamic group: membership is computed by the region's index")
        if item.deleted:
            self.iot.remove_thing_from_thing_group(thing, group)
            return Result("removed")
        if group_item is not None and group_item.deleted:
            return Result("skipped", "the group is deleted in the source")
        try:
            self._add_member(thing, group)
        except NotFoundError:
            thing_item = self.table.get(EntityKind.THING, thing)
            if thing_item is not None and thing_item.deleted:
                return Result("skipped", "the thing is deleted in the source")
            self._ensure(EntityKind.THING, thing)
            self._ensure(EntityKind.THING_GROUP, group)
            self._add_member(thing, group)
        return Result("added")

    def _add_member(self, thing: str, group: str) -> None:
        """AddThingToThingGroup. AWS refuses a thing in two groups that share a parent (AWS IoT
        guide, "Static thing groups": https://docs.aws.amazon.com/iot/latest/developerguide/thing-groups.html).
        A move between sibling groups arrives as two independent items, the add possibly
        first: the thing's removals already in the table are applied first; a sibling the
        table still wants the thing in is a wait (retryable), never a permanent failure."""
        try:
            self.iot.add_thing_to_thing_group(thing, group)
            return
        except AwsRequestError as error:
            siblings = self._sibling_memberships(thing, group)
            if not siblings:
                raise
            refusal = error
        waiting = []
        for sibling in siblings:
            member = self.table.get(EntityKind.MEMBERSHIP, membership_name(thing, sibling))
            if member is not None and member.deleted:
                self.iot.remove_thing_from_thing_group(thing, sibling)
            else:
                waiting.append(sibling)
        if waiting:
            raise DependencyNotReadyError(
                f"{thing!r} joins {group!r} once it has left its sibling group(s) {waiting} "
                f"(AWS: {refusal})"
            )
        self.iot.add_thing_to_thing_group(thing, group)

    def _sibling_memberships(self, thing: str, group: str) -> list[str]:
        """The destination groups of ``thing`` that share a parent with ``group``."""
        described = self.iot.describe_thing_group(group)
        parent = described.get("parent") if described else None
        if not parent:
            return []
        siblings = []
        for other in self.iot.list_thing_groups_for_thing(thing):
            if other == group:
                continue
            other_state = self.iot.describe_thing_group(other)
            if other_state is not None and other_state.get("parent") == parent:
                siblings.append(other)
        return siblings


def build_converger(
    region: str,
    table_name: str,
    *,
    clock: Callable[[], float],
    type_delete_delay_seconds: int,
    wall_clock: Callable[[], float] = time.time,
    client: ClientFactory | None = None,
    policy_account_map: Mapping[str, str] | None = None,
) -> Converger:
    """The converger of ``region``'s registry to ``table_name`` (that region's replica), its
    clients made by ``client`` (``pipeline.aws.client``, looked up at call time, by default):
    the one place the replicator, the pending-deletion task and the in-process sandbox
    assemble one."""
    client = client or aws.client
    return Converger(
        IotRegistry(client("iot", region)),
        StateTable(client("dynamodb", region), table_name),
        region=region,
        clock=clock,
        type_delete_delay_seconds=type_delete_delay_seconds,
        wall_clock=wall_clock,
        policy_account_map=policy_account_map,
    )
