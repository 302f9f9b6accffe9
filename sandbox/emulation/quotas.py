"""3. (continued) The registry's documented quotas and requirements, which moto enforces none of.

The patched backend calls (``registry_fixes``, ``controlplane``'s AttachPolicy) check these
before they change anything, so a refused call leaves no trace and publishes no event. The
values are AWS's, kept once in ``pipeline.rules``; each refusal's code, text and source is in
``REFUSALS``:

- a thing in at most 10 thing groups; a hierarchy at most 7 levels deep, at most 100 direct
  children per group; a dynamic group never in a hierarchy, never a policy target;
- dynamic groups only with thing indexing on, which then stays on while any exists; at most 100
  of them per account and region; SearchIndex of an index only while its indexing is on;
- attributes: at most 3 on an untyped thing, 50 on a typed one or a thing group, each name and
  value as the service model says; at most 3 searchable attributes per thing type.

The sandbox computes no dynamic membership (``MOTO_GAPS``): a thing is in no dynamic group, so
at the 10-group limit ``overrideDynamicGroups`` has nothing to evict and the add is refused, as
AWS refuses it for a thing in no dynamic group ("Dynamic thing groups", AWS IoT Developer Guide).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from moto.core.responses import ActionResult
from moto.iot.models import FakeThing, FakeThingGroup, IoTBackend
from moto.iot.responses import IoTResponse

from pipeline import rules
from pipeline.errors import RegistryValidationError
from sandbox.emulation.patches import _PATCHES
from sandbox.emulation.refusals import RefusedError, refuse
from sandbox.emulation.registry import RegistryEmulation, _find_group


def is_dynamic(group: FakeThingGroup) -> bool:
    return getattr(group, "crr_query_string", None) is not None


def _depth(group: FakeThingGroup) -> int:
    """1 for a root group; its ancestors plus one otherwise."""
    return len(group.metadata.get("rootToParentThingGroups") or []) + 1


# ---- groups and memberships ---------------------------------------------------------------------


def check_join(backend: IoTBackend, thing: FakeThing, group: FakeThingGroup) -> None:
    """AddThingToThingGroup of a thing not yet in ``group``: at most 10 groups per thing."""
    count = sum(thing.arn in other.things for other in backend.thing_groups.values())
    if count >= rules.MAX_GROUPS_PER_THING:
        raise refuse(
            "thing_groups_per_thing",
            name=thing.thing_name,
            group=group.thing_group_name,
            count=count,
        )


def check_new_group(
    backend: IoTBackend, name: str, parent_name: str | None, properties: Mapping[str, Any]
) -> None:
    """CreateThingGroup of a new group: its parent's depth, children and kind; its attributes."""
    check_group_attributes(name, properties)
    parent = _find_group(backend, parent_name) if parent_name else None
    if parent is None:
        return  # a root group; a missing parent is moto's answer
    if is_dynamic(parent):
        raise refuse("dynamic_group_in_hierarchy", name=name, parent=parent_name)
    if _depth(parent) >= rules.MAX_GROUP_DEPTH:
        raise refuse(
            "thing_group_depth", name=name, parent=parent_name, limit=rules.MAX_GROUP_DEPTH
        )
    children = sum(g.parent_group_name == parent_name for g in backend.thing_groups.values())
    if children >= rules.MAX_CHILD_GROUPS:
        raise refuse(
            "thing_group_children", name=name, parent=parent_name, limit=rules.MAX_CHILD_GROUPS
        )


def check_new_dynamic_group(
    backend: IoTBackend, name: str, properties: Mapping[str, Any] | None
) -> None:
    """CreateDynamicThingGroup of a new group: thing indexing on, fewer than 100 already."""
    if _thing_indexing_mode(backend) == "OFF":
        raise refuse("dynamic_group_without_index")
    if sum(map(is_dynamic, backend.thing_groups.values())) >= rules.MAX_DYNAMIC_GROUPS:
        raise refuse("dynamic_groups_per_account", name=name, limit=rules.MAX_DYNAMIC_GROUPS)
    check_group_attributes(name, properties or {})


def _thing_indexing_mode(backend: IoTBackend) -> str:
    configuration = backend.get_indexing_configuration()["thingIndexingConfiguration"]
    return str(configuration.get("thingIndexingMode") or "OFF")


def _update_indexing_configuration(
    self: IoTBackend,
    thingIndexingConfiguration: dict[str, Any] | None,  # moto's parameter names
    thingGroupIndexingConfiguration: dict[str, Any] | None,
) -> None:
    """UpdateIndexingConfiguration: thing indexing cannot be turned off while dynamic groups
    exist (``REFUSALS``)."""
    mode = (thingIndexingConfiguration or {}).get("thingIndexingMode")
    dynamic = sum(map(is_dynamic, self.thing_groups.values()))
    if mode == "OFF" and dynamic:
        raise refuse("disable_index_with_dynamic_groups", count=dynamic)
    _PATCHES.original(IoTBackend, "update_indexing_configuration")(
        self, thingIndexingConfiguration, thingGroupIndexingConfiguration
    )


def _response_search_index(self: IoTResponse) -> Any:
    """SearchIndex: an index exists only while its indexing is on (``REFUSALS``); moto searches
    its things whatever the index and the configuration say.

    AWS_Things: moto's search. AWS_ThingGroups (AWS IoT guide, "Manage thing group indexing":
    thingGroupIndexingMode ON creates it, OFF "No indexing/delete index"; its documents are
    botocore's ``ThingGroupDocument``): the groups matching ``*`` or one
    ``thingGroupName:<name, * as a wildcard>`` term, the guide's own example query; any other
    query is refused as InvalidQueryException, a query the sandbox does not evaluate
    ([not emulated], ``MOTO_GAPS``: stricter than AWS, never more lenient). Any other index
    does not exist ([assumption] answered as a missing index is)."""
    index = self._get_param("indexName") or rules.THINGS_INDEX
    backend = self.iot_backend
    if index == rules.THINGS_INDEX:
        if _thing_indexing_mode(backend) == "OFF":
            raise refuse("search_index_without_index")
        return _PATCHES.original(IoTResponse, "search_index")(self)
    configuration = backend.get_indexing_configuration()["thingGroupIndexingConfiguration"]
    group_indexing = dict(configuration).get("thingGroupIndexingMode")
    if index != rules.THING_GROUPS_INDEX or group_indexing != "ON":
        raise refuse("search_missing_index", index=index)
    matches = _group_name_matcher(str(self._get_param("queryString") or ""))
    groups = [group for name, group in _groups_by_name(backend) if matches(name)]
    return ActionResult({"things": [], "thingGroups": [_group_document(g) for g in groups]})


def _group_name_matcher(query: str) -> Callable[[str], bool]:
    """The names ``query`` selects: ``*`` every one, ``thingGroupName:<glob>`` those it matches."""
    query = query.strip()
    if query == "*":
        return lambda name: True
    field, _, pattern = query.partition(":")
    if field != "thingGroupName" or not pattern or " " in pattern:
        # Not a claim about AWS (so not among REFUSALS): a query the sandbox cannot evaluate.
        raise RefusedError(
            "InvalidQueryException",
            f"[sandbox] query {query!r} on AWS_ThingGroups is not evaluated: the sandbox "
            "answers '*' and thingGroupName:<name, * as a wildcard> only",
        )
    expression = re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
    return lambda name: expression.fullmatch(name) is not None


def _groups_by_name(backend: IoTBackend) -> list[tuple[str, FakeThingGroup]]:
    groups = ((g.thing_group_name, g) for g in backend.thing_groups.values())
    return sorted(groups, key=lambda item: item[0])


def _group_document(group: FakeThingGroup) -> dict[str, Any]:
    """A ``ThingGroupDocument`` (botocore's iot model): name, id, description, attributes and
    the names of every ancestor."""
    properties: dict[str, Any] = dict(group.thing_group_properties or {})
    ancestors = [
        parent["groupName"] for parent in group.metadata.get("rootToParentThingGroups") or []
    ]
    document: dict[str, Any] = {
        "thingGroupName": group.thing_group_name,
        "thingGroupId": group.thing_group_id,
        "attributes": (properties.get("attributePayload") or {}).get("attributes") or {},
        "parentGroupNames": ancestors,
    }
    if properties.get("thingGroupDescription"):
        document["thingGroupDescription"] = properties["thingGroupDescription"]
    return document


def refuse_dynamic_policy_target(
    backend: IoTBackend, emulation: RegistryEmulation | None, policy_name: str, target: str
) -> None:
    """AttachPolicy (a ``controlplane`` hook): a dynamic group cannot have policies."""
    group = backend.thing_groups.get(target)
    if group is not None and is_dynamic(group):
        raise refuse("policy_on_dynamic_group", name=group.thing_group_name)


# ---- attributes ---------------------------------------------------------------------------------


def check_thing_attributes(name: str, attributes: Mapping[str, str], *, typed: bool) -> None:
    """A thing's whole attribute set, as it would be after the call."""
    limit = rules.attribute_limit(typed=typed)
    if limit is not None and len(attributes) > limit:
        key = "typed_thing_attributes" if typed else "untyped_thing_attributes"
        raise refuse(key, name=name, limit=limit)
    check_attribute_values(attributes)


def check_group_attributes(name: str, properties: Mapping[str, Any]) -> None:
    """A new group's properties: at most 50 attributes, each as the model says."""
    payload = properties.get("attributePayload") or {}
    attributes = payload.get("attributes") or {}
    check_attribute_count(name, attributes)
    check_attribute_values(attributes)


def check_attribute_count(name: str, attributes: Mapping[str, str]) -> None:
    """A group's whole attribute set, as it would be after the call."""
    if len(attributes) > rules.THING_GROUP_MAX_ATTRIBUTES:
        raise refuse("thing_group_attributes", name=name, limit=rules.THING_GROUP_MAX_ATTRIBUTES)


def check_attribute_values(attributes: Mapping[str, str]) -> None:
    """Each attribute name and value of a request as botocore's iot model constrains them (an
    empty value is allowed: it removes the attribute in a merging update)."""
    for key, value in attributes.items():
        try:
            rules.validate_attribute_name("attributes", key)
            rules.validate_attribute_value("attributes", value)
        except RegistryValidationError as error:
            raise refuse("attribute_constraint", value=error.value, rule=error.rule) from error


def check_searchable_attributes(name: str, properties: Mapping[str, Any] | None) -> None:
    """CreateThingType of a new type: at most 3 searchable attributes."""
    searchable = (properties or {}).get("searchableAttributes") or []
    if len(searchable) > rules.MAX_SEARCHABLE_ATTRIBUTES:
        raise refuse("searchable_attributes", name=name, limit=rules.MAX_SEARCHABLE_ATTRIBUTES)
