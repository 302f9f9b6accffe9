"""Registry events emitted by the sandbox for each mutating IoT call.

Payloads as AWS documents them: https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html
"""

from __future__ import annotations

from typing import Any

from sandbox.stack import Sandbox

SOURCE = "us-east-1"

DOCUMENTED_FIELDS = {
    "THING_EVENT": {
        "eventType", "eventId", "timestamp", "operation", "accountId", "thingId", "thingName",
        "versionNumber", "thingTypeName", "attributes",
    },
    "THING_TYPE_EVENT": {
        "eventType", "eventId", "timestamp", "operation", "accountId", "thingTypeId",
        "thingTypeName", "isDeprecated", "deprecationDate", "searchableAttributes", "description",
    },
    "THING_TYPE_ASSOCIATION_EVENT": {
        "eventId", "eventType", "operation", "thingId", "thingName", "thingTypeName", "timestamp",
    },
    "THING_GROUP_EVENT": {
        "eventType", "eventId", "timestamp", "operation", "accountId", "thingGroupId",
        "thingGroupName", "versionNumber", "parentGroupName", "parentGroupId", "description",
        "rootToParentThingGroups", "attributes", "dynamicGroupMappingId",
    },
    "THING_GROUP_MEMBERSHIP_EVENT": {
        "eventType", "eventId", "timestamp", "operation", "accountId", "groupArn", "groupId",
        "thingArn", "thingId", "membershipId",
    },
    "THING_GROUP_HIERARCHY_EVENT": {
        "eventType", "eventId", "timestamp", "operation", "accountId", "thingGroupId",
        "thingGroupName", "childGroupId", "childGroupName",
    },
}  # fmt: skip


def _events(box: Sandbox) -> list[dict[str, Any]]:
    events = box.outbox(SOURCE).take()
    for event in events:
        # Every payload has exactly the documented fields, plus the rule's topic().
        assert set(event) == DOCUMENTED_FIELDS[event["eventType"]] | {"topic"}, event
    return events


def test_thing_events_follow_aws_version_sequence(box: Sandbox) -> None:
    # GIVEN a source registry
    iot = box.iot(SOURCE)
    # WHEN a thing is created, updated twice and deleted
    iot.create_thing(thingName="t1", attributePayload={"attributes": {"a": "1"}})
    iot.update_thing(thingName="t1", attributePayload={"attributes": {"b": "2"}, "merge": True})
    iot.update_thing(thingName="t1", attributePayload={"attributes": {"c": "3"}})
    iot.delete_thing(thingName="t1")
    # THEN THING_EVENTs carry versions 1, 2, 3 and the delete carries the last version
    events = _events(box)
    assert [(e["operation"], e["versionNumber"]) for e in events] == [
        ("CREATED", 1),
        ("UPDATED", 2),
        ("UPDATED", 3),
        ("DELETED", 3),
    ]
    assert events[1]["attributes"] == {"a": "1", "b": "2"}
    assert events[2]["attributes"] == {"c": "3"}
    assert events[0]["topic"] == "$aws/events/thing/t1/created"
    assert events[0]["thingTypeName"] is None
    assert len({e["eventId"] for e in events}) == 4
    timestamps = [e["timestamp"] for e in events]
    assert timestamps == sorted(timestamps) and timestamps[0] > 10**12  # epoch milliseconds


def test_describe_thing_reports_the_aws_version_and_recreate_restarts_at_1(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    iot.create_thing(thingName="t1")
    iot.update_thing(thingName="t1", attributePayload={"attributes": {"a": "1"}})
    assert iot.describe_thing(thingName="t1")["version"] == 2
    iot.delete_thing(thingName="t1")
    iot.create_thing(thingName="t1")
    assert iot.describe_thing(thingName="t1")["version"] == 1
    assert _events(box)[-1]["versionNumber"] == 1


def test_thing_type_lifecycle_events(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    iot.create_thing_type(
        thingTypeName="sensor",
        thingTypeProperties={"thingTypeDescription": "d", "searchableAttributes": ["a"]},
    )
    iot.deprecate_thing_type(thingTypeName="sensor")
    iot.deprecate_thing_type(thingTypeName="sensor", undoDeprecate=True)
    iot.deprecate_thing_type(thingTypeName="sensor")
    box.advance_clock(301)  # AWS deletes a type 5 minutes after its deprecation
    iot.delete_thing_type(thingTypeName="sensor")
    events = _events(box)
    assert [(e["operation"], e["isDeprecated"]) for e in events] == [
        ("CREATED", False),
        ("UPDATED", True),
        ("UPDATED", False),
        ("UPDATED", True),
        ("DELETED", True),
    ]
    assert events[0]["searchableAttributes"] == ["a"]
    assert events[0]["description"] == "d"
    assert events[0]["deprecationDate"] is None
    assert isinstance(events[1]["deprecationDate"], int)
    assert events[4]["topic"] == "$aws/events/thingType/sensor/deleted"


def test_type_association_events_on_create_and_type_change(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    for name in ("a", "b"):
        iot.create_thing_type(thingTypeName=name)
    iot.create_thing(thingName="t1", thingTypeName="a")
    iot.update_thing(thingName="t1", thingTypeName="b")
    iot.update_thing(thingName="t1", removeThingType=True)
    associations = [
        (e["operation"], e["thingTypeName"])
        for e in _events(box)
        if e["eventType"] == "THING_TYPE_ASSOCIATION_EVENT"
    ]
    assert associations == [("CREATED", "a"), ("DELETED", "a"), ("CREATED", "b"), ("DELETED", "b")]


def test_thing_group_events_with_hierarchy(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    root = iot.create_thing_group(thingGroupName="root")
    mid = iot.create_thing_group(thingGroupName="mid", parentGroupName="root")
    iot.create_thing_group(
        thingGroupName="leaf",
        parentGroupName="mid",
        thingGroupProperties={
            "thingGroupDescription": "leaf group",
            "attributePayload": {"attributes": {"k": "v"}},
        },
    )
    iot.update_thing_group(
        thingGroupName="leaf", thingGroupProperties={"thingGroupDescription": "new"}
    )
    events = _events(box)
    kinds = [(e["eventType"], e["operation"]) for e in events]
    assert kinds == [
        ("THING_GROUP_EVENT", "CREATED"),
        ("THING_GROUP_EVENT", "CREATED"),
        ("THING_GROUP_HIERARCHY_EVENT", "ADDED"),
        ("THING_GROUP_EVENT", "CREATED"),
        ("THING_GROUP_HIERARCHY_EVENT", "ADDED"),
        ("THING_GROUP_EVENT", "UPDATED"),
    ]
    leaf_created, leaf_updated = events[3], events[5]
    assert leaf_created["parentGroupName"] == "mid"
    assert leaf_created["parentGroupId"] == mid["thingGroupId"]
    # Root first, down to the direct parent, as {groupArn, groupId}.
    assert leaf_created["rootToParentThingGroups"] == [
        {"groupArn": root["thingGroupArn"], "groupId": root["thingGroupId"]},
        {"groupArn": mid["thingGroupArn"], "groupId": mid["thingGroupId"]},
    ]
    assert leaf_created["attributes"] == {"k": "v"}
    assert leaf_created["dynamicGroupMappingId"] is None
    assert (leaf_updated["versionNumber"], leaf_updated["description"]) == (2, "new")
    hierarchy = events[2]
    assert (hierarchy["thingGroupName"], hierarchy["childGroupName"]) == ("root", "mid")
    assert hierarchy["topic"] == (
        "$aws/events/thingGroupHierarchy/thingGroup/root/childThingGroup/mid/added"
    )


def test_membership_events_carry_arns_only(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    thing = iot.create_thing(thingName="t1")
    group = iot.create_thing_group(thingGroupName="g1")
    iot.create_thing_group(thingGroupName="g2")
    box.outbox(SOURCE).take()
    iot.add_thing_to_thing_group(thingGroupName="g1", thingName="t1")
    iot.add_thing_to_thing_group(thingGroupName="g1", thingName="t1")  # already a member
    iot.update_thing_groups_for_thing(
        thingName="t1", thingGroupsToAdd=["g2"], thingGroupsToRemove=["g1"]
    )
    events = _events(box)
    assert [(e["operation"], e["groupArn"].rsplit("/", 1)[1]) for e in events] == [
        ("ADDED", "g1"),
        ("ADDED", "g2"),
        ("REMOVED", "g1"),
    ]
    added, _, removed = events
    assert added["thingArn"] == thing["thingArn"]
    assert added["groupId"] == group["thingGroupId"]
    assert added["membershipId"] == removed["membershipId"]
    assert added["topic"] == "$aws/events/thingGroupMembership/thingGroup/g1/thing/t1/added"


def test_destination_region_events_go_to_their_own_outbox(box: Sandbox) -> None:
    box.iot("eu-west-1").create_thing(thingName="t1")
    assert len(box.outbox(SOURCE)) == 0
    assert [e["thingName"] for e in box.outbox("eu-west-1").take()] == ["t1"]
