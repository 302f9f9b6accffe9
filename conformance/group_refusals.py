"""Probes of the thing-group refusals beyond the quotas (``sandbox.emulation.group_refusals``):
a call for the other kind of group, and a thing in two groups of one hierarchy. The dynamic
groups' probes need thing indexing on (as ``conformance.quota_refusals``'s) and delete the
dynamic group they make themselves."""

from __future__ import annotations

from typing import Any

from conformance.probing import Answer, Context, Probe, answer_of
from conformance.quota_refusals import QUERY


def _dynamic(iot: Any, ctx: Context, suffix: str) -> str:
    name = ctx.scope(suffix)
    iot.create_dynamic_thing_group(thingGroupName=name, queryString=QUERY, tags=ctx.scope.tags)
    return name


def delete_thing_group_dynamic(iot: Any, ctx: Context) -> Answer:
    """DeleteThingGroup of a dynamic group (rebuy-de/aws-nuke#1199: "This operation does not
    support dynamic thing groups")."""
    name = _dynamic(iot, ctx, "probe-dyn-delete")
    try:
        return answer_of(lambda: iot.delete_thing_group(thingGroupName=name), ctx.scope)
    finally:
        iot.delete_dynamic_thing_group(thingGroupName=name)


def update_thing_group_dynamic(iot: Any, ctx: Context) -> Answer:
    """UpdateThingGroup of a dynamic group (its properties are UpdateDynamicThingGroup's)."""
    name = _dynamic(iot, ctx, "probe-dyn-update")
    try:
        return answer_of(
            lambda: iot.update_thing_group(
                thingGroupName=name, thingGroupProperties={"thingGroupDescription": "static"}
            ),
            ctx.scope,
        )
    finally:
        iot.delete_dynamic_thing_group(thingGroupName=name)


def update_dynamic_thing_group_static(iot: Any, ctx: Context) -> Answer:
    """UpdateDynamicThingGroup of a static group: no call turns one kind into the other."""
    name = ctx.scope("probe-static-update")
    iot.create_thing_group(thingGroupName=name, tags=ctx.scope.tags)
    return answer_of(
        lambda: iot.update_dynamic_thing_group(
            thingGroupName=name, thingGroupProperties={}, queryString=QUERY
        ),
        ctx.scope,
    )


def delete_dynamic_thing_group_static(iot: Any, ctx: Context) -> Answer:
    """DeleteDynamicThingGroup of a static group."""
    name = ctx.scope("probe-static-delete")
    iot.create_thing_group(thingGroupName=name, tags=ctx.scope.tags)
    return answer_of(lambda: iot.delete_dynamic_thing_group(thingGroupName=name), ctx.scope)


def cousin_thing_groups(iot: Any, ctx: Context) -> Answer:
    """A thing in two cousin groups (root > a > a1, root > b > b1): "you can't add a thing to
    more than one group in the same hierarchy" (AWS IoT developer guide, "Static thing
    groups"); whether a common grandparent is enough is what this probe records."""
    names = {n: ctx.scope(f"probe-cousin-{n}") for n in ("root", "a", "b", "a1", "b1", "thing")}
    iot.create_thing_group(thingGroupName=names["root"], tags=ctx.scope.tags)
    for child, parent in (("a", "root"), ("b", "root"), ("a1", "a"), ("b1", "b")):
        iot.create_thing_group(
            thingGroupName=names[child], parentGroupName=names[parent], tags=ctx.scope.tags
        )
    iot.create_thing(thingName=names["thing"])
    iot.add_thing_to_thing_group(thingName=names["thing"], thingGroupName=names["a1"])
    return answer_of(
        lambda: iot.add_thing_to_thing_group(thingName=names["thing"], thingGroupName=names["b1"]),
        ctx.scope,
    )


GROUP_PROBES = (
    Probe("delete_thing_group_dynamic", "DeleteThingGroup", delete_thing_group_dynamic),
    Probe("update_thing_group_dynamic", "UpdateThingGroup", update_thing_group_dynamic),
    Probe(
        "update_dynamic_thing_group_static",
        "UpdateDynamicThingGroup",
        update_dynamic_thing_group_static,
    ),
    Probe(
        "delete_dynamic_thing_group_static",
        "DeleteDynamicThingGroup",
        delete_dynamic_thing_group_static,
    ),
    Probe("cousin_thing_groups", "AddThingToThingGroup", cousin_thing_groups),
)
