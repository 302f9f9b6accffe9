"""3. moto gaps that change the pipeline's behaviour (listed in ``MOTO_GAPS``): the IoT backend's
mutating calls, patched to behave as AWS does and to publish registry events."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from moto.iot.exceptions import (
    ResourceAlreadyExistsException,
    VersionConflictException,
)
from moto.iot.models import FakeThing, FakeThingGroup, FakeThingType, IoTBackend

from pipeline import rules
from sandbox.emulation.patches import _PATCHES, JsonDict
from sandbox.emulation.quotas import (
    check_attribute_count,
    check_attribute_values,
    check_join,
    check_new_group,
    check_searchable_attributes,
    check_thing_attributes,
    is_dynamic,
)
from sandbox.emulation.refusals import THING_TYPE_DELETE_WAIT_SECONDS, RefusedError, refuse
from sandbox.emulation.registry import (
    RegistryEmulation,
    _find_group,
    _find_thing,
    _find_type,
    _group_attributes,
    _group_properties,
    _Installed,
    _thing_type_name,
)


def _publish(backend: IoTBackend, event_factory: Callable[[RegistryEmulation], JsonDict]) -> None:
    emulation = _Installed.emulation
    if emulation is not None:
        emulation.publish(backend.region_name, event_factory(emulation))


def _original(name: str) -> Any:
    return _PATCHES.original(IoTBackend, name)


def _now() -> float:
    """Epoch seconds on the installed emulation's clock of AWS's waits (``wait_clock``:
    injectable and skippable, so tests and ``sandbox up`` need not sleep)."""
    emulation = _Installed.emulation
    return emulation.wait_clock() if emulation is not None else time.time()


# ---- things -----------------------------------------------------------------------------------


def _create_thing(
    self: IoTBackend,
    thing_name: str,
    thing_type_name: str,
    attribute_payload: dict[str, Any] | None,
    billing_group_name: str | None = None,
) -> FakeThing:
    """CreateThing: idempotent for the same config, else ResourceAlreadyExistsException
    (AWS IoT API Reference, CreateThing); publishes THING_EVENT CREATED (version 1) and, for a typed
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
    attributes = (attribute_payload or {}).get("attributes") or {}
    check_thing_attributes(thing_name, attributes, typed=bool(thing_type_name))  # quotas
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
    """UpdateThing: the version goes up by 1 (moto keeps 1); a result beyond the attribute
    quotas is refused (``quotas``); publishes THING_EVENT UPDATED with the resulting
    attributes, and type association DELETED/CREATED when the type changes."""
    thing = self.describe_thing(thing_name)
    type_before = _thing_type_name(thing)
    given = (attribute_payload or {}).get("attributes") or {}
    check_attribute_values(given)
    untyped_after = remove_thing_type or not (thing_type_name or type_before)
    limit = rules.UNTYPED_THING_MAX_ATTRIBUTES
    if untyped_after and len(given) > limit:  # per request too (REFUSALS, an assumption)
        raise refuse(
            "untyped_thing_attribute_payload", name=thing_name, limit=limit, count=len(given)
        )
    saved = (thing.thing_type, dict(thing.attributes))
    _original("update_thing")(
        self, thing_name, thing_type_name, attribute_payload, remove_thing_type
    )
    try:
        check_thing_attributes(thing_name, thing.attributes, typed=thing.thing_type is not None)
    except RefusedError:
        thing.thing_type, thing.attributes = saved  # AWS refuses the whole call
        raise
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
    thing out of its groups; publishes THING_EVENT DELETED with the thing's last version. With
    principals attached moto itself refuses, as AWS does (``REFUSALS``)."""
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
    (AWS IoT API Reference, CreateThingType); publishes THING_TYPE_EVENT CREATED."""
    existing = _find_type(self, thing_type_name)
    if existing is not None:
        if (existing.thing_type_properties or {}) == (thing_type_properties or {}):
            return existing.thing_type_name, existing.arn
        raise ResourceAlreadyExistsException(
            f"Thing type {thing_type_name} already exists with different properties",
            resource_id=existing.thing_type_id,
            resource_arn=existing.arn,
        )
    check_searchable_attributes(thing_type_name, thing_type_properties)  # quotas
    name, arn = _original("create_thing_type")(self, thing_type_name, thing_type_properties)
    thing_type = self.thing_types[arn]
    _publish(self, lambda emu: emu.thing_type_event("CREATED", thing_type))
    return name, arn


def _deprecate_thing_type(
    self: IoTBackend, thing_type_name: str, undo_deprecate: bool
) -> FakeThingType:
    """DeprecateThingType: records ``deprecationDate``; publishes THING_TYPE_EVENT UPDATED with
    ``isDeprecated`` flipped ("Registry events", AWS IoT Developer Guide; inferred)."""
    thing_type: FakeThingType = _original("deprecate_thing_type")(
        self, thing_type_name, undo_deprecate
    )
    if undo_deprecate:
        thing_type.metadata.pop("deprecationDate", None)
    else:
        thing_type.metadata["deprecationDate"] = datetime.fromtimestamp(_now())
    _publish(self, lambda emu: emu.thing_type_event("UPDATED", thing_type))
    return thing_type


def _update_thing_type(
    self: IoTBackend, thing_type_name: str, thing_type_properties: dict[str, Any]
) -> None:
    """UpdateThingType (a newer API moto lacks): changes only ``mqtt5Configuration``; anything
    else is refused ("Can only update mqtt5Configuration.", ``REFUSALS``); publishes
    THING_TYPE_EVENT UPDATED."""
    thing_type = self.describe_thing_type(thing_type_name)
    properties = thing_type_properties or {}
    if set(properties) - {"mqtt5Configuration"}:
        raise refuse("update_thing_type_beyond_mqtt5")
    thing_type.thing_type_properties = {
        **(thing_type.thing_type_properties or {}),
        **properties,
    }
    _publish(self, lambda emu: emu.thing_type_event("UPDATED", thing_type))


def _delete_thing_type(self: IoTBackend, thing_type_name: str) -> None:
    """DeleteThingType: refused unless the type has been deprecated for 5 minutes (on the
    emulation's clock, which tests inject) and no thing has it (``REFUSALS``); publishes
    DELETED."""
    thing_type = self.describe_thing_type(thing_type_name)
    if not thing_type.metadata.get("deprecated"):
        raise refuse("delete_thing_type_not_deprecated", name=thing_type_name)
    deprecated_at = thing_type.metadata.get("deprecationDate")
    if deprecated_at is None or _now() - deprecated_at.timestamp() < (
        THING_TYPE_DELETE_WAIT_SECONDS
    ):
        raise refuse("delete_thing_type_too_soon", name=thing_type_name)
    if any(_thing_type_name(thing) == thing_type_name for thing in self.things.values()):
        raise refuse("delete_thing_type_in_use", name=thing_type_name)
    _original("delete_thing_type")(self, thing_type_name)
    _publish(self, lambda emu: emu.thing_type_event("DELETED", thing_type))


# ---- thing groups -----------------------------------------------------------------------------


def _create_thing_group(
    self: IoTBackend,
    thing_group_name: str,
    parent_group_name: str,
    thing_group_properties: dict[str, Any],
) -> tuple[str, str, str]:
    """CreateThingGroup: a new group within the quotas (``quotas``); publishes
    THING_GROUP_EVENT CREATED and, with a parent, THING_GROUP_HIERARCHY_EVENT ADDED (the only
    way a hierarchy link is made)."""
    existed = _find_group(self, thing_group_name) is not None
    if not existed:
        check_new_group(self, thing_group_name, parent_group_name, thing_group_properties or {})
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
    """Within the attribute quotas (``quotas``), checked before anything changes."""
    payload = properties.get("attributePayload")
    if payload is not None:
        current = _group_attributes(group)
        given = payload.get("attributes") or {}
        check_attribute_values(given)
        # An empty map changes nothing, merge or not: "AWS will simply ignore it"
        # (getmoto/moto#5318). Removing attributes takes merge=true and "" per key.
        merged = current if not given else {**current, **given} if payload.get("merge") else given
        # An empty value removes the key (AWS IoT API Reference, AttributePayload).
        attributes = {key: value for key, value in merged.items() if value != ""}
        check_attribute_count(group.thing_group_name, attributes)
        _group_properties(group)["attributePayload"] = {"attributes": attributes}
    if "thingGroupDescription" in properties:
        group.thing_group_properties["thingGroupDescription"] = properties["thingGroupDescription"]


def _update_thing_group(
    self: IoTBackend,
    thing_group_name: str,
    thing_group_properties: dict[str, Any],
    expected_version: int | None,
) -> int:
    """UpdateThingGroup: merge=false (or omitted) replaces the whole attribute set, ``""`` removes
    a key, ``{}`` changes nothing (getmoto/moto#5318); honours expectedVersion; publishes
    THING_GROUP_EVENT UPDATED with the new version."""
    group = self.describe_thing_group(thing_group_name)
    if is_dynamic(group):  # UpdateDynamicThingGroup's (REFUSALS)
        raise refuse("update_thing_group_dynamic", arn=group.arn)
    if expected_version and expected_version != group.version:
        raise VersionConflictException(thing_group_name)
    _apply_group_properties(group, thing_group_properties or {})
    group.version += 1
    _publish(self, lambda emu: emu.thing_group_event("UPDATED", group, self))
    return int(group.version)


def _delete_thing_group(self: IoTBackend, thing_group_name: str) -> None:
    """DeleteThingGroup: refused for a dynamic group (DeleteDynamicThingGroup's, ``REFUSALS``)
    and, by moto, for a group with children; publishes THING_GROUP_EVENT DELETED when a group
    was deleted."""
    group = _find_group(self, thing_group_name)
    if group is not None and is_dynamic(group):
        raise refuse("delete_thing_group_dynamic", arn=group.arn)
    _delete_group(self, thing_group_name, group)


def _delete_group(self: IoTBackend, thing_group_name: str, group: FakeThingGroup | None) -> None:
    _original("delete_thing_group")(self, thing_group_name)
    if group is not None:
        _publish(self, lambda emu: emu.thing_group_event("DELETED", group, self))


# ---- memberships ------------------------------------------------------------------------------


def _add_thing_to_thing_group(
    self: IoTBackend,
    thing_group_name: str | None,
    thing_group_arn: str | None,
    thing_name: str | None,
    thing_arn: str | None,
) -> None:
    """AddThingToThingGroup (also reached from UpdateThingGroupsForThing): refused while the
    thing is in another group of the same hierarchy (one root group: "you can't add a thing to
    more than one group in the same hierarchy", ``REFUSALS``) or in 10 (``quotas``); publishes
    THING_GROUP_MEMBERSHIP_EVENT ADDED (ARNs only, a new membershipId) when the thing joins."""
    group = self._identify_thing_group(thing_group_name, thing_group_arn)
    thing = self._identify_thing(thing_name, thing_arn)
    was_member = thing.arn in group.things
    root = _root(group)
    for other in self.thing_groups.values():
        if other is not group and thing.arn in other.things and _root(other) == root:
            siblings = (
                group.parent_group_name and other.parent_group_name == group.parent_group_name
            )
            raise refuse(
                "sibling_thing_groups" if siblings else "cousin_thing_groups",
                name=thing.thing_name,
                group=group.thing_group_name,
                other=other.thing_group_name,
                root=root,
            )
    if not was_member:
        check_join(self, thing, group)
    _original("add_thing_to_thing_group")(
        self, thing_group_name, thing_group_arn, thing_name, thing_arn
    )
    if not was_member:
        ids = group.__dict__.setdefault("crr_membership_ids", {})
        membership_id = ids[thing.arn] = str(uuid.uuid4())
        _publish(self, lambda emu: emu.membership_event("ADDED", group, thing, membership_id))


def _root(group: FakeThingGroup) -> str:
    """The root group of ``group``'s hierarchy (itself for a root): the first of its
    ``rootToParentThingGroups``."""
    ancestors = group.metadata.get("rootToParentThingGroups") or []
    return str(ancestors[0]["groupName"]) if ancestors else str(group.thing_group_name)


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
