"""Converge one destination-registry entity to its desired state (DESIGN.md §4).

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
  pending deletion that ``pipeline.pending`` completes after the delay AWS requires.
- Dynamic groups are replicated by definition; their memberships never are.

The comparison functions (``thing_changes`` and friends) are pure; ``Converger`` carries them out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.errors import NotFoundError, PermanentError, RetryableError
from pipeline.iot import IotRegistry
from pipeline.model import EntityKind, Item, split_membership_name
from pipeline.statetable import StateTable

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


def type_changes(desired: dict[str, Any], actual: dict[str, Any]) -> tuple[bool, bool | None]:
    """(properties differ, new deprecation flag or None when it is right)."""
    properties = (desired.get("description") or None) != (actual.get("description") or None) or (
        sorted(desired.get("searchable_attributes") or [])
        != sorted(actual.get("searchable_attributes") or [])
    )
    deprecated = bool(desired.get("deprecated", False))
    flag = None if deprecated == bool(actual.get("deprecated")) else deprecated
    return properties, flag


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
    ) -> None:
        self.iot = iot
        self.table = table
        self.region = region
        self.clock = clock
        self.type_delete_delay_seconds = type_delete_delay_seconds

    def converge(self, item: Item) -> Result:
        handler = {
            EntityKind.THING: self._thing,
            EntityKind.THING_TYPE: self._thing_type,
            EntityKind.THING_GROUP: self._thing_group,
            EntityKind.BILLING_GROUP: self._billing_group,
            EntityKind.MEMBERSHIP: self._membership,
        }[item.kind]
        return handler(item)

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
            self._with_dependencies(
                item,
                lambda: self._assigning_type(
                    desired.get("thing_type"), lambda: self._create_thing(name, desired)
                ),
            )
            return Result("created")
        changes = thing_changes(desired, actual)
        if not changes.registry_update and changes.billing_group is None:
            return Result("noop", "already matches")
        self._with_dependencies(
            item,
            lambda: self._assigning_type(
                changes.thing_type, lambda: self._update_thing(name, desired, actual, changes)
            ),
        )
        return Result("updated")

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
            return self._start_type_deletion(name, actual)
        self.table.delete_raw(pending_type_key(self.region, name))  # re-created: cancel any
        if actual is None:
            self.iot.create_thing_type(
                name, desired.get("description"), list(desired.get("searchable_attributes") or [])
            )
            if desired.get("deprecated"):
                self.iot.deprecate_thing_type(name)
            return Result("created")
        properties, deprecate = type_changes(desired, actual)
        if properties:
            self.iot.update_thing_type(
                name, desired.get("description"), list(desired.get("searchable_attributes") or [])
            )
        if deprecate is not None:
            self.iot.deprecate_thing_type(name, undo=not deprecate)
        return Result("updated" if properties or deprecate is not None else "noop")

    def _start_type_deletion(self, name: str, actual: dict[str, Any] | None) -> Result:
        if actual is None:
            self.table.delete_raw(pending_type_key(self.region, name))
            return Result("noop", "already absent")
        if not actual.get("deprecated"):
            self.iot.deprecate_thing_type(name)
        for thing in list(self.iot.iter_things_of_type(name)):
            self.iot.update_thing(thing, remove_thing_type=True)
        due = int(self.clock()) + self.type_delete_delay_seconds
        self.table.put_raw(
            {
                "pk": pending_type_key(self.region, name),
                "kind": "pending_type_delete",
                "name": name,
                "region": self.region,
                "delete_after": due,
            }
        )
        return Result("deletion-pending", f"deprecated; deletable after {due}")

    def finish_type_deletion(self, name: str) -> Result:
        """Second half of the lifecycle, once the delay has passed (``pipeline.pending``)."""
        item = self.table.get(EntityKind.THING_TYPE, name)
        if item is not None and not item.deleted:
            self.table.delete_raw(pending_type_key(self.region, name))
            return Result("noop", "type is wanted again")
        for thing in list(self.iot.iter_things_of_type(name)):
            self.iot.update_thing(thing, remove_thing_type=True)
        self.iot.delete_thing_type(name)
        self.table.delete_raw(pending_type_key(self.region, name))
        return Result("deleted")

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
            self._delete_group(name, actual, depth)
            actual = None
        if actual is None:
            self._create_group(name, desired, depth)
            return Result("created")
        if group_needs_update(desired, actual):
            self.iot.update_thing_group(
                name,
                description=desired.get("description", actual.get("description")),
                attributes=dict(desired.get("attributes", actual.get("attributes")) or {}),
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
                self._thing_group(parent_item, depth + 1)
        self.iot.create_thing_group(
            name,
            parent=parent,
            description=desired.get("description"),
            attributes=dict(desired.get("attributes") or {}),
            query=desired.get("query"),
        )

    def _delete_group(self, name: str, actual: dict[str, Any], depth: int) -> None:
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
            self.iot.add_thing_to_thing_group(thing, group)
        except NotFoundError:
            thing_item = self.table.get(EntityKind.THING, thing)
            if thing_item is not None and thing_item.deleted:
                return Result("skipped", "the thing is deleted in the source")
            self._ensure(EntityKind.THING, thing)
            self._ensure(EntityKind.THING_GROUP, group)
            self.iot.add_thing_to_thing_group(thing, group)
        return Result("added")
