"""Unit tests for pipeline.events: registry event payloads -> Change, and corrective events.

The fixtures under tests/fixtures/events are the documented example payloads (AWS IoT developer
guide, "Registry events"), with one concrete operation picked where the docs write
``CREATED|UPDATED|DELETED``, plus the Powertools ADDED/REMOVED association shape and one
corrective event of our own shape.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import events
from pipeline.errors import EventValidationError, RegistryValidationError
from pipeline.events import EVENT_TYPES, corrective_event, parse_event
from pipeline.kinds import STATE_FIELDS
from pipeline.model import Change, EntityKind, Lookup, Origin

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"

ProjectError = type[EventValidationError] | type[RegistryValidationError]


def load(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return payload


def with_(fixture: str, /, **changes: Any) -> dict[str, Any]:
    """A fixture with some keys replaced (a value of ``...`` deletes the key)."""
    payload = load(fixture)
    for key, value in changes.items():
        if value is ...:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


# --- documented examples -----------------------------------------------------------------------


def test_thing_event_created() -> None:
    # GIVEN the documented THING_EVENT example
    # WHEN it is parsed in the origin region
    change = parse_event(load("thing_event"), region=REGION)
    # THEN it is a full, versioned thing change carrying type and attributes
    assert change == Change(
        EntityKind.THING,
        "MyThing",
        Origin(
            REGION,
            1234567890123,
            "f5ae9b94-8b8e-4d8e-8c8f-b3266dd89853",
            "b604f69c-aa9a-4d4a-829e-c480e958a0b5",
            1,
        ),
        fields={
            "thing_type": None,
            "attributes": {"attribute1": "value1", "attribute2": "value2", "attribute3": "value3"},
        },
    )
    assert change.key == "THING#MyThing"


def test_thing_event_updated_with_type_and_null_attributes() -> None:
    payload = with_(
        "thing_event", operation="UPDATED", versionNumber=7, thingTypeName="Sensor", attributes=None
    )
    change = parse_event(payload, region=OTHER_REGION)
    assert change.fields == {"thing_type": "Sensor", "attributes": {}}
    assert change.origin.version == 7
    assert change.origin.region == OTHER_REGION
    assert not change.deleted


def test_thing_event_absent_attributes_mean_none() -> None:
    change = parse_event(with_("thing_event", attributes=...), region=REGION)
    assert change.fields["attributes"] == {}


def test_thing_event_deleted_is_a_tombstone_without_fields() -> None:
    change = parse_event(with_("thing_event", operation="DELETED", versionNumber=3), region=REGION)
    assert change.deleted
    assert change.fields == {}
    assert change.origin.version == 3


@pytest.mark.parametrize("fixture", ["thing_event", "thing_group_event"])
def test_deleted_event_without_version_is_a_tombstone_ordered_by_timestamp(fixture: str) -> None:
    # Issue 27, item 6: no public DELETED payload shows versionNumber. Old code: refused
    # (EventValidationError: versionNumber: Field required), the delete never replicated.
    change = parse_event(with_(fixture, operation="DELETED", versionNumber=...), region=REGION)
    assert change.deleted
    assert change.origin.version is None


@pytest.mark.parametrize("fixture", ["thing_event", "thing_group_event"])
@pytest.mark.parametrize("operation", ["CREATED", "UPDATED"])
def test_created_or_updated_event_still_needs_its_version(fixture: str, operation: str) -> None:
    for version in (..., None):
        with pytest.raises(EventValidationError) as caught:
            parse_event(with_(fixture, operation=operation, versionNumber=version), region=REGION)
        assert caught.value.field == "versionNumber"


def test_typed_thing_may_carry_more_than_three_attributes() -> None:
    attrs = {f"a{i}": "v" for i in range(50)}
    payload = with_("thing_event", thingTypeName="Sensor", attributes=attrs)
    assert parse_event(payload, region=REGION).fields["attributes"] == attrs


def test_thing_type_event_created() -> None:
    change = parse_event(load("thing_type_event"), region=REGION)
    assert change == Change(
        EntityKind.THING_TYPE,
        "MyThingType",
        Origin(
            REGION,
            1234567890123,
            "8827376c-4b05-49a3-9b3b-733729df7ed5",
            "c530ae83-32aa-4592-94d3-da29879d1aac",
        ),
        fields={
            "description": "My thing type",
            "searchable_attributes": ["attribute1", "attribute2", "attribute3"],
            "deprecated": False,
            "propagating_attributes": [],
        },
    )


def test_thing_type_deprecation_arrives_as_updated() -> None:
    payload = with_(
        "thing_type_event",
        operation="UPDATED",
        isDeprecated=True,
        deprecationDate=1234567899999,
        searchableAttributes=["zeta", "alpha"],
        description=None,
        propagatingAttributes=[{"userPropertyKey": "k", "thingAttribute": "serial"}],
    )
    change = parse_event(payload, region=REGION)
    assert change.fields == {
        "description": None,
        "searchable_attributes": ["alpha", "zeta"],
        "deprecated": True,
        "propagating_attributes": [{"userPropertyKey": "k", "thingAttribute": "serial"}],
    }


def test_thing_type_event_without_propagating_attributes_has_none() -> None:
    change = parse_event(load("thing_type_event"), region=REGION)
    assert change.fields["propagating_attributes"] == []


def test_malformed_propagating_attributes_are_named() -> None:
    payload = with_("thing_type_event", propagatingAttributes=[{"thingAttribute": "serial"}])
    with pytest.raises(EventValidationError) as caught:
        parse_event(payload, region=REGION)
    assert caught.value.field == "propagatingAttributes[0]"


def test_thing_type_deleted() -> None:
    payload = with_("thing_type_event", operation="DELETED", isDeprecated=...)
    change = parse_event(payload, region=REGION)
    assert change.deleted
    assert change.fields == {}
    assert change.origin.version is None


@pytest.mark.parametrize(
    ("fixture", "thing_type"),
    [
        ("thing_type_association_event", "MyThingType"),  # CREATED, AWS docs shape
        ("thing_type_association_event_added", "MyThingType"),  # ADDED, Powertools shape
        ("thing_type_association_event_removed", None),
    ],
)
def test_thing_type_association_both_shapes(fixture: str, thing_type: str | None) -> None:
    # (the REMOVED shape clears the type only where the stored type is the one it names)
    change = parse_event(load(fixture), region=REGION)
    assert change.kind is EntityKind.THING
    assert change.name == "myThing"
    assert change.partial
    assert not change.deleted
    assert change.fields == {"thing_type": thing_type}
    assert change.origin.entity_id == "b604f69c-aa9a-4d4a-829e-c480e958a0b5"
    assert change.origin.version is None


def test_thing_type_association_deleted_clears_only_the_type_it_names() -> None:
    # AWS IoT guide, "Registry events": thingTypeName is the type "associated with, or no
    # longer associated with, the thing". Fails on the old parser, which cleared any type.
    change = parse_event(with_("thing_type_association_event", operation="DELETED"), region=REGION)
    assert change.fields == {"thing_type": None}
    assert change.expected == {"thing_type": "MyThingType"}
    assert change.partial


def test_thing_type_association_created_assumes_nothing() -> None:
    change = parse_event(load("thing_type_association_event"), region=REGION)
    assert change.expected == {}


def test_thing_group_event_root_created() -> None:
    change = parse_event(load("thing_group_event"), region=REGION)
    assert change == Change(
        EntityKind.THING_GROUP,
        "MyRootThingGroup",
        Origin(
            REGION,
            1234567890123,
            "87f8e095-531c-47b3-aab5-5171364d138d",
            "8f82a106-6b1d-4331-8984-a84db5f6f8cb",
            1,
        ),
        fields={
            "parent": None,
            "description": "My root thing group",
            "attributes": {"attribute1": "value1", "attribute2": "value2", "attribute3": "value3"},
        },
        lookup=Lookup(),
    )


def test_thing_group_event_nested_updated() -> None:
    change = parse_event(load("thing_group_event_updated"), region=REGION)
    assert change.name == "Tg_level5"
    assert change.fields["parent"] == "Tg_level4"
    assert change.fields["description"] == "New description for Tg_level5"
    assert "query" not in change.fields  # persist looks it up (DescribeThingGroup)
    assert change.origin.version == 3
    assert change.origin.timestamp_ms == 1603995417409
    assert change.lookup == Lookup()


@pytest.mark.parametrize("mapping_id", [None, "4a1c"])
def test_whether_a_group_is_dynamic_is_left_to_lookup(mapping_id: str | None) -> None:
    # GIVEN a group event, with or without the undocumented dynamicGroupMappingId
    payload = with_("thing_group_event_updated", dynamicGroupMappingId=mapping_id, description="")
    # WHEN parsed
    change = parse_event(payload, region=REGION)
    # THEN the query is not claimed either way: persist asks DescribeThingGroup in the origin
    # (the old parser decided "static" from a null dynamicGroupMappingId)
    assert change.lookup == Lookup()
    assert "query" not in change.fields
    assert change.fields["description"] is None


def test_group_event_carries_its_ancestors_root_first() -> None:
    change = parse_event(load("thing_group_event_updated"), region=REGION)
    assert change.ancestors[-1] == "Tg_level4"
    assert change.ancestors[0] != "Tg_level4"


def test_group_event_with_a_bad_ancestor_arn_is_named() -> None:
    payload = with_("thing_group_event_updated", rootToParentThingGroups=[{"groupArn": 7}])
    with pytest.raises(EventValidationError) as caught:
        parse_event(payload, region=REGION)
    assert caught.value.field == "rootToParentThingGroups[0].groupArn"


def test_thing_group_deleted() -> None:
    change = parse_event(with_("thing_group_event", operation="DELETED"), region=REGION)
    assert change.deleted
    assert change.fields == {}
    assert change.lookup is None


def test_group_may_carry_fifty_attributes_but_not_more() -> None:
    fifty = {f"a{i}": "v" for i in range(50)}
    assert parse_event(with_("thing_group_event", attributes=fifty), region=REGION)
    with pytest.raises(RegistryValidationError) as caught:
        parse_event(with_("thing_group_event", attributes={**fifty, "x": "y"}), region=REGION)
    assert caught.value.field == "attributes"


@pytest.mark.parametrize(("operation", "deleted"), [("ADDED", False), ("REMOVED", True)])
def test_membership_names_come_from_the_arns(operation: str, deleted: bool) -> None:
    payload = with_("thing_group_membership_event", operation=operation)
    change = parse_event(payload, region=REGION)
    assert change.kind is EntityKind.MEMBERSHIP
    assert change.name == "MyThing#MyChildThingGroup"
    assert change.key == "MEMBER#MyThing#MyChildThingGroup"
    assert change.deleted is deleted
    assert change.fields == {}
    assert change.origin.entity_id == "8505ebf8-4d32-4286-80e9-c23a4a16bbd8"


def test_membership_arns_in_other_partitions_and_names_with_colons() -> None:
    payload = with_(
        "thing_group_membership_event",
        thingArn="arn:aws-cn:iot:cn-north-1:123456789012:thing/dev:01",
        groupArn="arn:aws-us-gov:iot:us-gov-west-1:123456789012:thinggroup/g_1",
    )
    assert parse_event(payload, region=REGION).name == "dev:01#g_1"


@pytest.mark.parametrize(
    ("operation", "fields"), [("ADDED", {"parent": "MyRootThingGroup"}), ("REMOVED", {})]
)
def test_hierarchy_event_names_the_child(operation: str, fields: dict[str, Any]) -> None:
    change = parse_event(with_("thing_group_hierarchy_event", operation=operation), region=REGION)
    assert change.kind is EntityKind.THING_GROUP
    assert change.name == "MyChildThingGroup"
    assert change.partial
    assert not change.deleted
    assert change.fields == fields
    assert change.origin.entity_id == "06838589-373f-4312-b1f2-53f2192291c4"


# --- envelope: timestamps, extra keys, event types -----------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "millis"),
    [
        (1234567890123, 1234567890123),  # ms as documented
        (1234567890, 1234567890000),  # 10 digits: seconds
        (1603995417.409, 1603995417409),  # fractional seconds
        (1603995417409.0, 1603995417409),  # ms as a float
        (99_999_999_999, 99_999_999_999_000),  # just below the ms threshold: seconds
        (100_000_000_000, 100_000_000_000),  # at the threshold: ms
        (0, 0),
    ],
)
def test_timestamps_in_ms_or_seconds(timestamp: float, millis: int) -> None:
    change = parse_event(with_("thing_event", timestamp=timestamp), region=REGION)
    assert change.origin.timestamp_ms == millis


def test_topic_and_other_extra_keys_are_ignored() -> None:
    payload = with_("thing_event", topic="$aws/events/thing/MyThing/created", uuid="x", expires=1)
    assert parse_event(payload, region=REGION) == parse_event(load("thing_event"), region=REGION)


def test_event_types_cover_every_parser() -> None:
    assert set(EVENT_TYPES) == set(events._PARSERS) | {events.CORRECTIVE_EVENT}
    assert len(EVENT_TYPES) == 7
    assert "CRR_CORRECTIVE_EVENT" in EVENT_TYPES


def test_unknown_event_type_lists_the_known_ones() -> None:
    with pytest.raises(EventValidationError) as caught:
        parse_event(with_("thing_event", eventType="JOB_EVENT"), region=REGION)
    assert caught.value.field == "eventType"
    assert "'JOB_EVENT'" in caught.value.reason
    assert "THING_GROUP_HIERARCHY_EVENT" in caught.value.reason


# --- malformed inputs --------------------------------------------------------------------------

BAD_PAYLOADS: list[tuple[str, Any, ProjectError, str]] = [
    ("missing thingName", with_("thing_event", thingName=...), EventValidationError, "thingName"),
    ("missing eventId", with_("thing_event", eventId=...), EventValidationError, "eventId"),
    ("empty eventId", with_("thing_event", eventId=""), EventValidationError, "eventId"),
    ("missing timestamp", with_("thing_event", timestamp=...), EventValidationError, "timestamp"),
    ("missing version", with_("thing_event", versionNumber=...), EventValidationError, "versionNumber"),
    ("version as string", with_("thing_event", versionNumber="1"), EventValidationError, "versionNumber"),
    ("version as bool", with_("thing_event", versionNumber=True), EventValidationError, "versionNumber"),
    ("negative version", with_("thing_event", versionNumber=-1), EventValidationError, "versionNumber"),
    ("thingName not str", with_("thing_event", thingName=5), EventValidationError, "thingName"),
    ("name with a space", with_("thing_event", thingName="My Thing"), RegistryValidationError, "thingName"),
    ("bad type name", with_("thing_event", thingTypeName="a b"), RegistryValidationError, "thingTypeName"),
    ("attribute value with a space", with_("thing_event", attributes={"colour": "dark red"}), RegistryValidationError, "attributes.colour"),
    ("attribute value not str", with_("thing_event", attributes={"colour": 1}), EventValidationError, "attributes.colour"),
    ("attributes not a map", with_("thing_event", attributes=["a"]), EventValidationError, "attributes"),
    ("4 attributes, untyped thing", with_("thing_event", attributes={f"a{i}": "v" for i in range(4)}), RegistryValidationError, "attributes"),
    ("unknown eventType", with_("thing_event", eventType="THING_SHADOW"), EventValidationError, "eventType"),
    ("eventType not str", with_("thing_event", eventType=1), EventValidationError, "eventType"),
    ("missing eventType", with_("thing_event", eventType=...), EventValidationError, "eventType"),
    ("unknown operation", with_("thing_event", operation="RENAMED"), EventValidationError, "operation"),
    ("ADDED on a thing event", with_("thing_event", operation="ADDED"), EventValidationError, "operation"),
    ("UPDATED on an association", with_("thing_type_association_event", operation="UPDATED"), EventValidationError, "operation"),
    ("lowercase operation", with_("thing_group_membership_event", operation="added"), EventValidationError, "operation"),
    ("bool timestamp", with_("thing_event", timestamp=True), EventValidationError, "timestamp"),
    ("string timestamp", with_("thing_event", timestamp="1234567890123"), EventValidationError, "timestamp"),
    ("negative timestamp", with_("thing_event", timestamp=-1), EventValidationError, "timestamp"),
    ("NaN timestamp", with_("thing_event", timestamp=float("nan")), EventValidationError, "timestamp"),
    ("absurd timestamp", with_("thing_event", timestamp=10**20), EventValidationError, "timestamp"),
    ("bad thing ARN", with_("thing_group_membership_event", thingArn="MyThing"), EventValidationError, "thingArn"),
    ("group ARN as thing ARN", with_("thing_group_membership_event", thingArn="arn:aws:iot:eu-west-1:123456789012:thinggroup/G"), EventValidationError, "thingArn"),
    ("bad group ARN", with_("thing_group_membership_event", groupArn="arn:aws:iot:eu-west-1:123456789012:thinggroup/"), EventValidationError, "groupArn"),
    ("bad name inside ARN", with_("thing_group_membership_event", groupArn="arn:aws:iot:eu-west-1:1:thinggroup/a.b"), RegistryValidationError, "groupArn"),
    ("missing membershipId", with_("thing_group_membership_event", membershipId=...), EventValidationError, "membershipId"),
    ("non-dict payload (list)", [load("thing_event")], EventValidationError, "payload"),
    ("non-dict payload (str)", json.dumps(load("thing_event")), EventValidationError, "payload"),
    ("non-dict payload (None)", None, EventValidationError, "payload"),
    ("huge description", with_("thing_type_event", description="x" * 2029), RegistryValidationError, "description"),
    ("description with newline", with_("thing_group_event", description="a\nb"), RegistryValidationError, "description"),
    ("type without isDeprecated", with_("thing_type_event", isDeprecated=...), EventValidationError, "isDeprecated"),
    ("isDeprecated as string", with_("thing_type_event", isDeprecated="false"), EventValidationError, "isDeprecated"),
    ("searchable attribute not str", with_("thing_type_event", searchableAttributes=[1]), EventValidationError, "searchableAttributes.0"),
    ("bad searchable attribute", with_("thing_type_event", searchableAttributes=["a b"]), RegistryValidationError, "searchableAttributes.0"),
    ("bad parent name", with_("thing_group_event", parentGroupName="a/b"), RegistryValidationError, "parentGroupName"),
    ("bad child name", with_("thing_group_hierarchy_event", childGroupName=""), RegistryValidationError, "childGroupName"),
    ("missing childGroupId", with_("thing_group_hierarchy_event", childGroupId=...), EventValidationError, "childGroupId"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "error", "field"),
    [pytest.param(p, e, f, id=case) for case, p, e, f in BAD_PAYLOADS],
)
def test_malformed_payloads_name_the_field(payload: Any, error: ProjectError, field: str) -> None:
    with pytest.raises(error) as caught:
        parse_event(payload, region=REGION)
    assert type(caught.value) is error
    assert caught.value.field == field


def test_pydantic_error_is_chained_not_leaked() -> None:
    with pytest.raises(EventValidationError) as caught:
        parse_event(with_("thing_event", thingName=...), region=REGION)
    assert caught.value.__cause__ is not None
    assert caught.value.reason == "Field required"


# --- corrective events -------------------------------------------------------------------------


def test_corrective_fixture_parses() -> None:
    change = parse_event(load("corrective_event"), region=REGION)
    assert change == Change(
        EntityKind.THING_GROUP,
        "floor-2",
        Origin(REGION, 1700000000000, "crr-2b7f0c1e-5d0a-4a8e-9a51-0d3c5f7e9b21", None, 4),
        fields={
            "parent": "building-1",
            "description": "Second floor",
            "attributes": {"level": "2"},
            "query": None,
        },
        corrective=True,
        sync="reconcile-2023-11-14T22:13:20Z",
    )


def _corrective(kind: EntityKind, name: str, fields: dict[str, Any], **kw: Any) -> Change:
    return Change(
        kind,
        name,
        Origin(REGION, 1700000000123, "evt-1", None, kw.pop("version", None)),
        fields=fields,
        corrective=True,
        sync="sync-1",
        **kw,
    )


ROUND_TRIPS = [
    _corrective(
        EntityKind.THING,
        "sensor-1",
        {"thing_type": "Sensor", "attributes": {"a": "1"}, "billing_group": "bg1"},
        version=9,
    ),
    _corrective(EntityKind.THING, "sensor-2", {"thing_type": None, "attributes": {}}),
    _corrective(EntityKind.THING, "gone", {}, deleted=True),
    _corrective(
        EntityKind.THING_TYPE,
        "Sensor",
        {"description": "d", "searchable_attributes": ["a", "b"], "deprecated": True},
    ),
    _corrective(
        EntityKind.THING_GROUP,
        "dyn",
        {
            "parent": None,
            "description": None,
            "attributes": {},
            "query": {
                "query_string": "attributes.level:2",
                "index_name": "AWS_Things",
                "query_version": "2017-09-30",
            },
        },
    ),
    _corrective(EntityKind.BILLING_GROUP, "bg1", {"description": "billing"}),
    _corrective(EntityKind.MEMBERSHIP, "sensor-1#floor-2", {}),
    _corrective(EntityKind.MEMBERSHIP, "sensor-1#floor-3", {}, deleted=True),
]


@pytest.mark.parametrize("change", ROUND_TRIPS, ids=lambda c: f"{c.kind}:{c.name}")
def test_corrective_round_trip(change: Change) -> None:
    # GIVEN a corrective change WHEN it becomes a payload, travels as JSON and is parsed
    payload = json.loads(json.dumps(corrective_event(change)))
    # THEN the same change comes back
    assert parse_event(payload, region=change.origin.region) == change


def test_corrective_event_carries_a_dynamic_query() -> None:
    query = {
        "query_string": "thingName:sensor-*",
        "index_name": "AWS_Things",
        "query_version": "2017-09-30",
    }
    change = _corrective(EntityKind.THING_GROUP, "dyn", {"query": query})
    payload = corrective_event(change)
    assert payload["state"]["query"] == query
    assert parse_event(payload, region=REGION).fields == {"query": query}


def test_corrective_event_drops_entity_id_and_marks_corrective() -> None:
    change = parse_event(load("thing_event"), region=REGION)
    change = Change(change.kind, change.name, change.origin, change.fields, sync="s")
    back = parse_event(corrective_event(change), region=REGION)
    assert back.corrective
    assert back.origin.entity_id is None
    assert back.fields == change.fields
    assert back.origin.version == 1


def test_corrective_event_requires_sync_and_ms_timestamp() -> None:
    base = ROUND_TRIPS[0]
    no_sync = Change(base.kind, base.name, base.origin, base.fields, corrective=True)
    with pytest.raises(EventValidationError) as caught:
        corrective_event(no_sync)
    assert caught.value.field == "sync"
    seconds = Origin(REGION, 1700000000, "e", None, None)
    with pytest.raises(EventValidationError) as caught:
        corrective_event(Change(base.kind, base.name, seconds, base.fields, sync="s"))
    assert caught.value.field == "timestamp"


def test_an_invalid_corrective_state_is_refused_where_it_is_parsed() -> None:
    # GIVEN a corrective event built for an invalid state (building validates nothing: the
    # parse at admission does, once, in the emitter and again in persist: pipeline.ingest)
    bad = _corrective(EntityKind.THING, "t", {"attributes": {"a": "with space"}})
    payload = corrective_event(bad)
    # THEN parsing it refuses it, naming the field
    with pytest.raises(RegistryValidationError) as caught:
        parse_event(payload, region=REGION)
    assert caught.value.field == "state.attributes.a"


def test_all_state_fields_have_a_validator() -> None:
    samples: dict[str, Any] = {
        "thing_type": "T",
        "attributes": {},
        "billing_group": "B",
        "parent": "P",
        "description": "d",
        "searchable_attributes": [],
        "deprecated": False,
        "query": None,
        "propagating_attributes": [{"userPropertyKey": "k", "connectionAttribute": "iot:ClientId"}],
        "status": "REVOKED",
        "pem": "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        "document": '{"Statement":[],"Version":"2012-10-17"}',
        "exclusive": True,
        "role_arn": "arn:aws:iam::123456789012:role/device-credentials",
        "credential_duration_seconds": 3600,
        "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:authorize",
        "token_key_name": "token",
        "token_signing_public_keys": {"key1": "-----BEGIN PUBLIC KEY-----"},
        "signing_disabled": False,
        "caching_for_http": True,
        "default": True,
        "ca": "c" * 64,
        "type": "JITP",
        "body": '{"Resources":{}}',
        "versions": ['{"Resources":{}}'],
        "enabled": True,
        "hook": {"targetArn": "arn:aws:lambda:us-east-1:123456789012:function:f"},
        "auto_registration": "ENABLE",
        "registration_config": {"templateName": "t"},
        "desired": '{"color":"red","nested":{"on":true}}',
        "reported": '{"temperature":21.5}',
        "payload": "aGVsbG8=",
        "qos": 1,
        "user_properties": '[{"unit":"C"}]',
    }
    cert = "c" * 64
    names_by_kind = {
        EntityKind.MEMBERSHIP: "a#b",
        EntityKind.CERTIFICATE: cert,
        EntityKind.POLICY: "device.policy@v2",
        EntityKind.THING_PRINCIPAL: f"device-1#{cert}",
        EntityKind.POLICY_TARGET: f"p#cert/{cert}",
        EntityKind.CA_CERTIFICATE: cert,
        EntityKind.SHADOW: "device-1#~classic",
        EntityKind.RETAINED_MESSAGE: "sensors/device-1/config",
    }
    # A field name means one thing per kind: an authorizer's status is not a certificate's.
    # A CA's status is ACTIVE or INACTIVE (UpdateCACertificate).
    overrides: dict[EntityKind, dict[str, Any]] = {
        EntityKind.AUTHORIZER: {"status": "INACTIVE"},
        EntityKind.CA_CERTIFICATE: {"status": "INACTIVE"},
    }
    for kind, names in STATE_FIELDS.items():
        name = names_by_kind.get(kind, "n")
        state = {field: overrides.get(kind, {}).get(field, samples[field]) for field in names}
        payload = corrective_event(_corrective(kind, name, state))
        assert parse_event(payload, region=REGION).fields == state


def corrective(**changes: Any) -> dict[str, Any]:
    return with_("corrective_event", **changes)


BAD_CORRECTIVES: list[tuple[str, Any, ProjectError, str]] = [
    ("unknown entity", corrective(entity="keyring"), EventValidationError, "entity"),
    ("entity not str", corrective(entity=1), EventValidationError, "entity"),
    ("unknown state key", corrective(state={"colour": "red"}), EventValidationError, "state.colour"),
    ("key of another kind", corrective(state={"thing_type": "T"}), EventValidationError, "state.thing_type"),
    ("state not a map", corrective(state=[]), EventValidationError, "state"),
    ("missing sync", corrective(sync=...), EventValidationError, "sync"),
    ("empty sync", corrective(sync=""), EventValidationError, "sync"),
    ("missing deleted", corrective(deleted=...), EventValidationError, "deleted"),
    ("deleted as int", corrective(deleted=0), EventValidationError, "deleted"),
    ("bad name", corrective(name="floor 2"), RegistryValidationError, "name"),
    ("bad parent", corrective(state={"parent": "a b"}), RegistryValidationError, "state.parent"),
    ("bad group attributes", corrective(state={"attributes": {"a": "b c"}}), RegistryValidationError, "state.attributes.a"),
    ("too many group attributes", corrective(state={"attributes": {f"a{i}": "v" for i in range(51)}}), RegistryValidationError, "state.attributes"),
    ("query not an object", corrective(state={"query": "x"}), EventValidationError, "state.query"),
    ("query with extra key", corrective(state={"query": {"query_string": "q", "index_name": "AWS_Things", "query_version": "2017-09-30", "x": "y"}}), EventValidationError, "state.query"),
    ("query part empty", corrective(state={"query": {"query_string": "", "index_name": "AWS_Things", "query_version": "2017-09-30"}}), EventValidationError, "state.query.query_string"),
    ("bad description", corrective(state={"description": "a\tb"}), RegistryValidationError, "state.description"),
    ("bad version", corrective(versionNumber="4"), EventValidationError, "versionNumber"),
    ("membership without #", corrective(entity="membership", name="thing", state={}), EventValidationError, "name"),
    ("membership with bad group", corrective(entity="membership", name="thing#", state={}), RegistryValidationError, "name"),
    ("membership with state", corrective(entity="membership", name="a#b", state={"parent": None}), EventValidationError, "state.parent"),
    ("deprecated not bool", corrective(entity="thing_type", name="T", state={"deprecated": "yes"}), EventValidationError, "state.deprecated"),
    ("searchable not a list", corrective(entity="thing_type", name="T", state={"searchable_attributes": "a"}), RegistryValidationError, "state.searchable_attributes"),
    ("thing with 4 attributes, no type", corrective(entity="thing", name="t", state={"thing_type": None, "attributes": {f"a{i}": "v" for i in range(4)}}), RegistryValidationError, "state.attributes"),
    ("bad billing group", corrective(entity="thing", name="t", state={"billing_group": "b g"}), RegistryValidationError, "state.billing_group"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "error", "field"),
    [pytest.param(p, e, f, id=case) for case, p, e, f in BAD_CORRECTIVES],
)
def test_malformed_corrective_events(payload: Any, error: ProjectError, field: str) -> None:
    with pytest.raises(error) as caught:
        parse_event(payload, region=REGION)
    assert type(caught.value) is error
    assert caught.value.field == field


def test_corrective_thing_without_type_in_state_allows_fifty_attributes() -> None:
    attrs = {f"a{i}": "v" for i in range(50)}
    payload = corrective(entity="thing", name="t", state={"attributes": attrs})
    assert parse_event(payload, region=REGION).fields == {"attributes": attrs}


# --- property: only the two project errors ever escape -----------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["", "MyThing", "a b", "ADDED", "CREATED", "thing", "arn:aws:iot:x:1:thing/"])
)
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_KEYS = sorted(
    {key for path in FIXTURES.glob("*.json") for key in json.loads(path.read_text())}
    | {"state", "entity", "name", "deleted", "sync", "dynamicGroupMappingId"}
)
# RELIABILITY_SLOW=1 (the project convention) runs a longer search.
_EXAMPLES = 3000 if os.environ.get("RELIABILITY_SLOW") else 250
_FIXTURE_NAMES = sorted(path.stem for path in FIXTURES.glob("*.json"))


def _mutate(payload: dict[str, Any], edits: list[tuple[str, Any, bool]]) -> dict[str, Any]:
    mutated = copy.deepcopy(payload)
    for key, value, delete in edits:
        if delete:
            mutated.pop(key, None)
        else:
            mutated[key] = value
    return mutated


_mutated_fixtures = st.builds(
    _mutate,
    st.sampled_from(_FIXTURE_NAMES).map(load),
    st.lists(st.tuples(st.sampled_from(_KEYS), _json, st.booleans()), min_size=1, max_size=3),
)
_arbitrary_dicts = st.dictionaries(
    st.sampled_from(_KEYS) | st.text(max_size=8), _json, max_size=8
) | st.builds(
    lambda event_type, rest: {**rest, "eventType": event_type},
    st.sampled_from(EVENT_TYPES),
    st.dictionaries(st.sampled_from(_KEYS), _json, max_size=10),
)


@settings(max_examples=_EXAMPLES, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(payload=_mutated_fixtures | _arbitrary_dicts | _json)
def test_parse_event_raises_only_project_errors(payload: Any) -> None:
    try:
        change = parse_event(payload, region=REGION)
    except (EventValidationError, RegistryValidationError) as exc:
        assert exc.field
        return
    assert isinstance(change, Change)
    assert change.origin.region == REGION
    assert set(change.fields) <= set(STATE_FIELDS[change.kind])
    assert change.origin.timestamp_ms >= 0
