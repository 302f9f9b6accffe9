"""3. moto gaps that change the pipeline's behaviour (listed in ``MOTO_GAPS``): dynamic thing
groups, which moto lacks, served on its IoT backend as AWS serves them (``registry_fixes``
holds the other mutating calls)."""

from __future__ import annotations

from typing import Any

from moto.iot.exceptions import ResourceAlreadyExistsException, VersionConflictException
from moto.iot.models import FakeThingGroup, IoTBackend
from moto.moto_api._internal import mock_random

from pipeline import rules
from sandbox.emulation.patches import _PATCHES, JsonDict
from sandbox.emulation.quotas import check_new_dynamic_group, is_dynamic
from sandbox.emulation.refusals import refuse
from sandbox.emulation.registry import _find_group
from sandbox.emulation.registry_fixes import _apply_group_properties, _delete_group, _publish


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
    check_new_dynamic_group(self, thing_group_name, thing_group_properties)  # quotas
    group = FakeThingGroup(
        thing_group_name,
        None,  # type: ignore[arg-type]  # a root: moto lists roots by parent None
        dict(thing_group_properties or {}),
        self.account_id,
        self.region_name,
        self.thing_groups,
    )
    group.crr_query_string = query_string  # type: ignore[attr-defined]
    group.crr_index_name = index_name or rules.THINGS_INDEX  # type: ignore[attr-defined]
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
    if not is_dynamic(group):  # AWS has no call that turns a static group dynamic (REFUSALS)
        raise refuse("update_dynamic_thing_group_static", name=thing_group_name)
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
    """DeleteDynamicThingGroup (moto lacks it): like DeleteThingGroup, for a dynamic group only
    (``REFUSALS``)."""
    group = _find_group(self, thing_group_name)
    if group is not None and not is_dynamic(group):
        raise refuse("delete_dynamic_thing_group_static", name=thing_group_name)
    _delete_group(self, thing_group_name, group)


def _group_to_dict(self: FakeThingGroup) -> JsonDict:
    """DescribeThingGroup reports a dynamic group's queryString, indexName, queryVersion, status."""
    data: JsonDict = _PATCHES.original(FakeThingGroup, "to_dict")(self)
    query = getattr(self, "crr_query_string", None)
    if query is not None:
        data.update(
            queryString=query,
            indexName=getattr(self, "crr_index_name", rules.THINGS_INDEX),
            queryVersion=getattr(self, "crr_query_version", "2017-09-30"),
            status="ACTIVE",
        )
    return data
