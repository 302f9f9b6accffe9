"""End to end on the sandbox: live registry changes in the source reach the destination."""

from __future__ import annotations

from sandbox.emulation import Delivery
from sandbox.stack import Sandbox

from .conftest import DESTINATION, SOURCE
from .registry_view import registry_view


def _assert_converged(sandbox: Sandbox) -> None:
    source = registry_view(sandbox.iot(SOURCE))
    destination = registry_view(sandbox.iot(DESTINATION))
    assert destination == source


def _make_fleet(sandbox: Sandbox) -> None:
    iot = sandbox.iot(SOURCE)
    iot.create_thing_type(
        thingTypeName="sensor",
        thingTypeProperties={"thingTypeDescription": "a sensor", "searchableAttributes": ["floor"]},
    )
    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(
        thingGroupName="building",
        parentGroupName="site",
        thingGroupProperties={"attributePayload": {"attributes": {"city": "Paris"}}},
    )
    iot.create_thing_group(thingGroupName="floor-1", parentGroupName="building")
    for region in (SOURCE, DESTINATION):  # dynamic groups need fleet indexing in both regions
        sandbox.iot(region).update_indexing_configuration(
            thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"}
        )
    iot.create_dynamic_thing_group(thingGroupName="hot", queryString="attributes.temp:high")
    for i in range(3):
        iot.create_thing(
            thingName=f"s{i}",
            thingTypeName="sensor",
            attributePayload={"attributes": {"floor": "1"}},
        )
        iot.add_thing_to_thing_group(thingGroupName="floor-1", thingName=f"s{i}")
    iot.create_thing(thingName="plain", attributePayload={"attributes": {"a": "1"}})


def test_live_changes_of_every_entity_kind_reach_the_destination(sandbox: Sandbox) -> None:
    # GIVEN a fleet created in the source region
    _make_fleet(sandbox)
    report = sandbox.drain(timeout=120)
    assert report.executions.get("SUCCEEDED") == report.events_delivered
    _assert_converged(sandbox)
    # WHEN things, groups and memberships change and some are deleted
    iot = sandbox.iot(SOURCE)
    iot.update_thing(thingName="s0", attributePayload={"attributes": {"floor": "2"}, "merge": True})
    iot.update_thing(thingName="plain", attributePayload={"attributes": {"b": "2"}})
    iot.update_thing_group(
        thingGroupName="building",
        thingGroupProperties={
            "thingGroupDescription": "HQ",
            "attributePayload": {"attributes": {}},
        },
    )
    iot.update_dynamic_thing_group(
        thingGroupName="hot", queryString="attributes.temp:very-high", thingGroupProperties={}
    )
    iot.remove_thing_from_thing_group(thingGroupName="floor-1", thingName="s1")
    iot.delete_thing(thingName="s2")
    report = sandbox.drain(timeout=120)
    # THEN the destination registry matches the source
    assert report.failed_batches == []
    _assert_converged(sandbox)


def test_injected_duplicates_and_reordering_converge(sandbox: Sandbox) -> None:
    # GIVEN an IoT rule that duplicates and reorders deliveries
    sandbox.set_delivery(Delivery(duplicate_probability=0.5, reorder_window=6, seed=11))
    _make_fleet(sandbox)
    iot = sandbox.iot(SOURCE)
    for version in range(3):
        iot.update_thing(
            thingName="plain", attributePayload={"attributes": {"v": str(version)}, "merge": True}
        )
    # WHEN it drains
    report = sandbox.drain(timeout=180)
    # THEN duplicates were delivered and the destination still matches the source
    assert report.events_duplicated > 0
    assert report.failed_batches == []
    _assert_converged(sandbox)
