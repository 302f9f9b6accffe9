"""What a region's registry holds, by name, for comparing source and destination in e2e tests."""

from __future__ import annotations

from typing import Any


def registry_view(iot: Any) -> dict[str, Any]:
    things = {}
    for summary in iot.list_things(maxResults=250)["things"]:
        things[summary["thingName"]] = (
            summary.get("thingTypeName"),
            summary.get("attributes", {}),
        )
    types = {}
    for thing_type in iot.list_thing_types()["thingTypes"]:
        props = thing_type.get("thingTypeProperties") or {}
        types[thing_type["thingTypeName"]] = (
            props.get("thingTypeDescription"),
            tuple(props.get("searchableAttributes") or ()),
            thing_type["thingTypeMetadata"].get("deprecated", False),
        )
    groups = {}
    members = set()
    for entry in iot.list_thing_groups()["thingGroups"]:
        name = entry["groupName"]
        group = iot.describe_thing_group(thingGroupName=name)
        props = group.get("thingGroupProperties") or {}
        groups[name] = (
            group["thingGroupMetadata"].get("parentGroupName"),
            # The replicator clears a description with "" (pipeline.iot): the same state as no
            # description, as the snapshot reads it (reconcile.inventory).
            props.get("thingGroupDescription") or None,
            (props.get("attributePayload") or {}).get("attributes") or {},
            group.get("queryString"),
        )
        if group.get("queryString") is None:
            for thing in iot.list_things_in_thing_group(thingGroupName=name)["things"]:
                members.add((thing, name))
    return {"things": things, "types": types, "groups": groups, "members": members}
