"""Issue 10: the pipeline behaves as AWS does, on the strict emulation (``sandbox.emulation``
refuses what AWS refuses, ``REFUSALS``), with the source's events delivered to the destination
in an order other than the source's.

Each test names the AWS behaviour and its public source; each fails on the code before issue 10
(the failure it showed is in the test's comment).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from pipeline.kinds.thing_type import TYPE_DELETE_MARGIN_SECONDS
from pipeline.pending import finish_due
from pipeline.state import Outcome
from sandbox import emulation
from sandbox.inprocess import SRC, LocalPipeline
from tests.conftest import RegistryView
from tests.reliability.conftest import CLOCK

JsonDict = dict[str, Any]


def _events(world: emulation.RegistryEmulation) -> list[JsonDict]:
    return world.outbox(SRC).take()


def _deliver(pipeline: LocalPipeline, events: list[JsonDict]) -> None:
    for event in events:
        pipeline.persist_event(event)


def _sync(pipeline: LocalPipeline, world: emulation.RegistryEmulation) -> None:
    """Deliver everything published so far in order and drain (the starting state)."""
    _deliver(pipeline, _events(world))
    stats = pipeline.drain()
    assert stats.failed_batches == []
    assert pipeline.failures.sent == []


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _pick(events: list[JsonDict], event_type: str, **match: Any) -> JsonDict:
    found = [
        e
        for e in events
        if e["eventType"] == event_type and all(e.get(k) == v for k, v in match.items())
    ]
    assert len(found) == 1, (event_type, match, events)
    return found[0]


# --- 1. type association DELETED names the type no longer associated -----------------------------


def test_type_change_survives_the_old_types_dissociation_arriving_last(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # Source: AWS IoT guide, "Registry events" (thingTypeName: "the thing type associated with,
    # or no longer associated with, the thing"). Old code: the thing ended untyped.
    iot = pipeline.source
    iot.create_thing_type(thingTypeName="A")
    iot.create_thing_type(thingTypeName="B")
    iot.create_thing(thingName="t", thingTypeName="A")
    _sync(pipeline, registry_world)
    iot.update_thing(thingName="t", thingTypeName="B")
    events = _events(registry_world)
    dissociation = _pick(events, "THING_TYPE_ASSOCIATION_EVENT", operation="DELETED")
    # AWS documents no order among a type change's events: DELETED(A) may be the last one
    # published, so it carries the latest timestamp here, and it is delivered last.
    dissociation["timestamp"] = max(e["timestamp"] for e in events) + 1
    rest = [e for e in events if e is not dissociation]
    _deliver(pipeline, [*rest, dissociation])  # DELETED(A) after the THING_EVENT and CREATED(B)
    pipeline.drain()
    assert RegistryView(pipeline.destination).describe_thing("t")["thing_type"] == "B"  # type: ignore[index]


# --- 2. and 7. a description change is a delete and re-create ------------------------------------


def test_type_description_change_is_replicated_as_a_re_create(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # Source: UpdateThingType answers "Can only update mqtt5Configuration." (aws/aws-cli#9884).
    # Old code: UpdateThingType with the description, refused: a permanent failure.
    iot = pipeline.source
    iot.create_thing_type(thingTypeName="T", thingTypeProperties={"thingTypeDescription": "v1"})
    iot.create_thing(thingName="t", thingTypeName="T", attributePayload={"attributes": {"a": "1"}})
    _sync(pipeline, registry_world)
    # The source's own lifecycle: deprecate, detach, wait 5 minutes, delete, create, re-attach.
    iot.deprecate_thing_type(thingTypeName="T")
    iot.update_thing(thingName="t", removeThingType=True)
    CLOCK.advance(301)
    iot.delete_thing_type(thingTypeName="T")
    iot.create_thing_type(thingTypeName="T", thingTypeProperties={"thingTypeDescription": "v2"})
    iot.update_thing(thingName="t", thingTypeName="T")
    iot.create_thing(thingName="t2", thingTypeName="T")
    # Delivered newest first: the table sees the final state before the intermediate ones.
    _deliver(pipeline, list(reversed(_events(registry_world))))
    pipeline.converge_fully()
    assert pipeline.failures.sent == []
    described = RegistryView(pipeline.destination).describe_thing_type("T")
    assert described is not None and described["description"] == "v2"
    assert not described["deprecated"]
    assert RegistryView(pipeline.destination).describe_thing("t") == {
        "thing_type": "T",
        "attributes": {"a": "1"},
        "billing_group": None,
    }
    assert RegistryView(pipeline.destination).describe_thing("t2")["thing_type"] == "T"  # type: ignore[index]
    assert pipeline.audit().in_sync


def test_emulated_update_thing_type_refuses_anything_but_mqtt5(pipeline: LocalPipeline) -> None:
    pipeline.source.create_thing_type(thingTypeName="T")
    with pytest.raises(ClientError) as error:
        pipeline.source.update_thing_type(
            thingTypeName="T", thingTypeProperties={"thingTypeDescription": "x"}
        )
    assert _code(error) == "InvalidRequestException"
    assert "Can only update mqtt5Configuration" in str(error.value)


# --- 3. MQTT5 propagating attributes ---------------------------------------------------------


def test_propagating_attributes_are_replicated_on_create_and_update(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # Source: AWS IoT API Reference, ThingTypeProperties.mqtt5Configuration. Old code: dropped.
    iot = pipeline.source
    first = [{"userPropertyKey": "serial", "thingAttribute": "serial"}]
    second = [*first, {"userPropertyKey": "client", "connectionAttribute": "iot:ClientId"}]
    iot.create_thing_type(
        thingTypeName="T",
        thingTypeProperties={"mqtt5Configuration": {"propagatingAttributes": first}},
    )
    _sync(pipeline, registry_world)
    iot.update_thing_type(
        thingTypeName="T",
        thingTypeProperties={"mqtt5Configuration": {"propagatingAttributes": second}},
    )
    _deliver(pipeline, _events(registry_world))
    pipeline.drain()
    assert (
        RegistryView(pipeline.destination).describe_thing_type("T")["propagating_attributes"]
        == second
    )  # type: ignore[index]
    assert pipeline.audit().in_sync


def test_propagating_attribute_drift_is_found_and_repaired(pipeline: LocalPipeline) -> None:
    attributes = [{"userPropertyKey": "serial", "thingAttribute": "serial"}]
    pipeline.source.create_thing_type(
        thingTypeName="T",
        thingTypeProperties={"mqtt5Configuration": {"propagatingAttributes": attributes}},
    )
    pipeline.destination.create_thing_type(thingTypeName="T")
    report = pipeline.audit()
    assert [d.kind for d in report.drifts] == ["changed"]
    pipeline.reconcile()
    pipeline.drain()
    assert pipeline.audit().in_sync


# --- 4. group attributes: {} does not clear them -----------------------------------------------


def test_removed_group_attributes_are_removed_in_the_destination(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # Source: getmoto/moto#5318 ("AWS will simply ignore" an empty attributes object). Old code:
    # merge=false with {} left the destination's attributes in place.
    iot = pipeline.source
    iot.create_thing_group(
        thingGroupName="g",
        thingGroupProperties={"attributePayload": {"attributes": {"a": "1", "b": "2"}}},
    )
    _sync(pipeline, registry_world)
    iot.update_thing_group(
        thingGroupName="g",
        thingGroupProperties={
            "attributePayload": {"attributes": {"a": "", "b": ""}, "merge": True}
        },
    )
    _deliver(pipeline, _events(registry_world))
    pipeline.drain()
    assert RegistryView(pipeline.destination).describe_thing_group("g")["attributes"] == {}  # type: ignore[index]


def test_emulated_update_thing_group_ignores_an_empty_attribute_map(
    pipeline: LocalPipeline,
) -> None:
    iot = pipeline.source
    iot.create_thing_group(
        thingGroupName="g", thingGroupProperties={"attributePayload": {"attributes": {"a": "1"}}}
    )
    iot.update_thing_group(
        thingGroupName="g",
        thingGroupProperties={"attributePayload": {"attributes": {}, "merge": False}},
    )
    described = iot.describe_thing_group(thingGroupName="g")["thingGroupProperties"]
    assert described["attributePayload"]["attributes"] == {"a": "1"}


# --- 5. a thing cannot be in two groups that share a parent --------------------------------------


def _siblings(pipeline: LocalPipeline, world: emulation.RegistryEmulation) -> None:
    iot = pipeline.source
    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(thingGroupName="floor-1", parentGroupName="site")
    iot.create_thing_group(thingGroupName="floor-2", parentGroupName="site")
    iot.create_thing(thingName="t")
    iot.add_thing_to_thing_group(thingName="t", thingGroupName="floor-1")
    _sync(pipeline, world)
    iot.remove_thing_from_thing_group(thingName="t", thingGroupName="floor-1")
    iot.add_thing_to_thing_group(thingName="t", thingGroupName="floor-2")


def test_move_between_sibling_groups_with_the_add_first(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # Source: AWS IoT guide, "Static thing groups" (a thing cannot be in two groups that share a
    # common parent). Old code: the refused add was a permanent failure.
    _siblings(pipeline, registry_world)
    events = _events(registry_world)
    added = _pick(events, "THING_GROUP_MEMBERSHIP_EVENT", operation="ADDED")
    removed = _pick(events, "THING_GROUP_MEMBERSHIP_EVENT", operation="REMOVED")
    pipeline.persist_event(added)
    stats = pipeline.deliver()  # only the add has arrived: it waits
    assert stats.batch_item_failures == 1
    assert pipeline.failures.sent == []
    pipeline.persist_event(removed)
    # The event source mapping redelivers the add; the removal, now in the table, goes first.
    stats = pipeline.drain()
    assert stats.failed_batches == []
    assert RegistryView(pipeline.destination).list_thing_groups_for_thing("t") == ["floor-2"]
    assert pipeline.failures.sent == []


def test_move_between_siblings_applies_the_removal_from_the_table_first(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    _siblings(pipeline, registry_world)
    events = _events(registry_world)
    added = _pick(events, "THING_GROUP_MEMBERSHIP_EVENT", operation="ADDED")
    removed = _pick(events, "THING_GROUP_MEMBERSHIP_EVENT", operation="REMOVED")
    _deliver(pipeline, [added, removed])  # both in the table; the add's record comes first
    stats = pipeline.drain()
    assert stats.batch_item_failures == 0
    assert RegistryView(pipeline.destination).list_thing_groups_for_thing("t") == ["floor-2"]


def test_emulated_add_to_a_sibling_group_is_refused(pipeline: LocalPipeline) -> None:
    iot = pipeline.source
    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(thingGroupName="floor-1", parentGroupName="site")
    iot.create_thing_group(thingGroupName="floor-2", parentGroupName="site")
    iot.create_thing(thingName="t")
    iot.add_thing_to_thing_group(thingName="t", thingGroupName="floor-1")
    with pytest.raises(ClientError) as error:
        iot.add_thing_to_thing_group(thingName="t", thingGroupName="floor-2")
    assert _code(error) == "InvalidRequestException"


# --- 6. DeleteThing is refused while principals are attached -----------------------------------


def test_thing_with_principals_in_the_destination_is_deleted(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # Source: "Cannot delete. Thing ... is still attached to one or more principals"
    # (rebuy-de/aws-nuke#374). Old code: a permanent failure.
    pipeline.source.create_thing(thingName="t")
    _sync(pipeline, registry_world)
    certificate = pipeline.destination.create_keys_and_certificate(setAsActive=True)
    pipeline.destination.attach_thing_principal(
        thingName="t", principal=certificate["certificateArn"]
    )
    pipeline.source.update_thing(thingName="t", attributePayload={"attributes": {"a": "1"}})
    pipeline.source.delete_thing(thingName="t")
    _deliver(pipeline, list(reversed(_events(registry_world))))  # DELETED before the UPDATED
    pipeline.drain()
    assert pipeline.failures.sent == []
    assert RegistryView(pipeline.destination).describe_thing("t") is None


# --- 7. DeleteThingType: 5 minutes after deprecation, no things, one type at a time ------------


def test_emulated_delete_thing_type_waits_five_minutes_on_the_injected_clock(
    pipeline: LocalPipeline,
) -> None:
    iot = pipeline.source
    iot.create_thing_type(thingTypeName="T")
    iot.deprecate_thing_type(thingTypeName="T")
    CLOCK.advance(299)
    with pytest.raises(ClientError) as error:
        iot.delete_thing_type(thingTypeName="T")
    assert _code(error) == "InvalidRequestException"
    assert "Please wait for 5 minutes after deprecation and then retry" in str(error.value)
    CLOCK.advance(2)
    iot.delete_thing_type(thingTypeName="T")


def test_type_deletions_wait_with_a_margin_and_one_never_blocks_another(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # Source: AWS IoT guide, "Delete a thing type" (wait five minutes after deprecating).
    iot = pipeline.source
    for name in ("A", "B"):
        iot.create_thing_type(thingTypeName=name)
    iot.create_thing(thingName="t", thingTypeName="A")
    _sync(pipeline, registry_world)
    iot.update_thing(thingName="t", removeThingType=True)
    for name in ("A", "B"):
        iot.deprecate_thing_type(thingTypeName=name)
    CLOCK.advance(301)
    for name in ("A", "B"):
        iot.delete_thing_type(thingTypeName=name)
    events = _events(registry_world)
    of_t = [e for e in events if e.get("thingName") == "t"]  # its update and dissociation
    _deliver(pipeline, [e for e in events if e not in of_t])  # t's events come last
    pipeline.drain()
    start = CLOCK()
    # Exactly AWS's 5 minutes later nothing is attempted: the margin is ours.
    assert finish_due(pipeline.converger, now=start + 300)["waiting"] == ["A", "B"]
    CLOCK.advance(300 + TYPE_DELETE_MARGIN_SECONDS + 1)
    result = finish_due(pipeline.converger, now=CLOCK())
    # A waits for t's own update (t still wants A in the table); B is deleted all the same.
    assert result["deleted"] == ["B"]
    assert result["retry"] == ["A"]
    assert RegistryView(pipeline.destination).describe_thing("t")["thing_type"] == "A"  # type: ignore[index]
    _deliver(pipeline, of_t)
    pipeline.drain()
    assert finish_due(pipeline.converger, now=CLOCK())["deleted"] == ["A"]
    assert pipeline.audit().in_sync


# --- 8. an untyped thing has at most 3 attributes ----------------------------------------------


def test_type_deletion_before_its_things_updates_never_breaks_the_attribute_limit(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # Source: AWS IoT guide, "Thing types" (a thing without a type: at most 3 attributes). Old
    # code: removeThingType on a thing with 5 attributes, refused: a permanent failure.
    iot = pipeline.source
    five = {f"k{i}": "v" for i in range(5)}
    iot.create_thing_type(thingTypeName="T")
    iot.create_thing(thingName="t", thingTypeName="T", attributePayload={"attributes": five})
    _sync(pipeline, registry_world)
    iot.update_thing(
        thingName="t",
        removeThingType=True,
        attributePayload={"attributes": {"k3": "", "k4": ""}, "merge": True},
    )
    iot.deprecate_thing_type(thingTypeName="T")
    CLOCK.advance(301)
    iot.delete_thing_type(thingTypeName="T")
    events = _events(registry_world)
    thing_events = [e for e in events if e["eventType"] != "THING_TYPE_EVENT"]
    _deliver(pipeline, [e for e in events if e["eventType"] == "THING_TYPE_EVENT"])
    pipeline.drain()
    assert pipeline.finish_type_deletions()["retry"] == ["T"]
    assert pipeline.failures.sent == []
    _deliver(pipeline, thing_events)
    pipeline.converge_fully()
    assert RegistryView(pipeline.destination).describe_thing_type("T") is None
    assert RegistryView(pipeline.destination).describe_thing("t")["attributes"] == {  # type: ignore[index]
        "k0": "v",
        "k1": "v",
        "k2": "v",
    }
    assert pipeline.failures.sent == []


def test_emulated_untyped_thing_refuses_a_fourth_attribute(pipeline: LocalPipeline) -> None:
    iot = pipeline.source
    with pytest.raises(ClientError) as error:
        iot.create_thing(
            thingName="t", attributePayload={"attributes": {f"k{i}": "v" for i in range(4)}}
        )
    assert _code(error) == "InvalidRequestException"
    iot.create_thing_type(thingTypeName="T")
    iot.create_thing(
        thingName="t",
        thingTypeName="T",
        attributePayload={"attributes": {f"k{i}": "v" for i in range(4)}},
    )
    with pytest.raises(ClientError) as error:
        iot.update_thing(thingName="t", removeThingType=True)
    assert _code(error) == "InvalidRequestException"


# --- 9. dynamic groups are confirmed in the origin; their memberships are not stored -----------


def test_dynamic_group_is_recognised_without_the_mapping_id(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # Source: AWS IoT API Reference, DescribeThingGroup (queryString). Old code: an event
    # without dynamicGroupMappingId made a static group in the destination.
    for iot in (pipeline.source, pipeline.destination):  # dynamic groups need fleet indexing
        iot.update_indexing_configuration(
            thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"}
        )
    pipeline.source.create_dynamic_thing_group(thingGroupName="dyn", queryString="attributes.a:1")
    events = _events(registry_world)
    for event in events:
        event.pop("dynamicGroupMappingId", None)
    _deliver(pipeline, events)
    pipeline.drain()
    described = RegistryView(pipeline.destination).describe_thing_group("dyn")
    assert described is not None and described["query"]["query_string"] == "attributes.a:1"
    membership = {
        "eventType": "THING_GROUP_MEMBERSHIP_EVENT",
        "eventId": "m-1",
        "timestamp": 1_700_000_000_000,
        "operation": "ADDED",
        "groupArn": "arn:aws:iot:us-east-1:123456789012:thinggroup/dyn",
        "thingArn": "arn:aws:iot:us-east-1:123456789012:thing/t",
        "membershipId": "1",
    }
    assert pipeline.persist_event(membership).outcome is Outcome.SKIPPED


def test_doctor_says_what_to_fix_before_dynamic_groups_can_work(pipeline: LocalPipeline) -> None:
    from reconcile.cli import main
    from reconcile.context import Factory

    registry_types = (
        "THING",
        "THING_GROUP",
        "THING_TYPE",
        "THING_GROUP_MEMBERSHIP",
        "THING_GROUP_HIERARCHY",
        "THING_TYPE_ASSOCIATION",
    )

    class WithEvents:
        """A moto client answering DescribeEventConfigurations (not implemented in moto)."""

        def __init__(self, client: Any, enabled: bool) -> None:
            self.client, self.enabled = client, enabled

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

        def describe_event_configurations(self) -> dict[str, Any]:
            return {"eventConfigurations": {t: {"Enabled": self.enabled} for t in registry_types}}

    pipeline.source.update_indexing_configuration(
        thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"}
    )
    # The doctor lists the source's dynamic groups (root groups only: never in a hierarchy).
    pipeline.source.create_thing_group(thingGroupName="site")
    pipeline.source.create_thing_group(thingGroupName="floor", parentGroupName="site")
    pipeline.source.create_dynamic_thing_group(thingGroupName="hot", queryString="attributes.t:1")
    client: Callable[..., Any] = lambda service, region, **_: (  # noqa: E731
        WithEvents(pipeline.source, True)
        if region == SRC
        else WithEvents(pipeline.destination, True)
    )
    runner = CliRunner()
    args = ["doctor", "--source-region", SRC, "--target-region", pipeline.destination_region]
    result = runner.invoke(main, args, obj=Factory(client=client))
    assert result.exit_code == 1, result.output
    assert "thingIndexingMode=OFF" in result.output
    assert "1 dynamic thing group(s) (hot)" in result.output
    pipeline.destination.update_indexing_configuration(
        thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"}
    )
    result = runner.invoke(main, args, obj=Factory(client=client))
    assert result.exit_code == 0, result.output


# --- 10. a group's parents from its own event ---------------------------------------------------


def test_child_group_event_first_creates_the_chain(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # Source: AWS IoT guide, "Registry events" (rootToParentThingGroups). Old code: the child
    # waited (retryable) until its parents' events or the nightly run.
    iot = pipeline.source
    iot.create_thing_group(thingGroupName="root")
    iot.create_thing_group(thingGroupName="mid", parentGroupName="root")
    iot.create_thing_group(thingGroupName="leaf", parentGroupName="mid")
    events = _events(registry_world)
    leaf = _pick(events, "THING_GROUP_EVENT", thingGroupName="leaf")
    pipeline.persist_event(leaf)
    stats = pipeline.drain()
    assert stats.batch_item_failures == 0
    assert RegistryView(pipeline.destination).describe_thing_group("leaf")["parent"] == "mid"  # type: ignore[index]
    assert RegistryView(pipeline.destination).describe_thing_group("mid")["parent"] == "root"  # type: ignore[index]
    _deliver(pipeline, [e for e in events if e is not leaf])
    pipeline.drain()
    assert pipeline.audit().in_sync
