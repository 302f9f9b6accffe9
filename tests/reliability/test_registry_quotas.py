"""Issue 22, item 6: the pipeline meets the registry's quotas as AWS enforces them, on the strict
emulation (``sandbox.emulation.quotas``), with the source's events delivered to the destination
in an order other than the source's.

A thing can belong to at most 10 thing groups (AWS IoT guide, "Static thing groups"): a thing
in 10 groups of the source that leaves one and joins another may meet the join in the
destination first, while it is still in the 10 there; and dynamic groups need the destination's
fleet indexing ("Dynamic thing groups").
"""

from __future__ import annotations

from typing import Any

from pipeline.rules import MAX_GROUPS_PER_THING
from sandbox import emulation
from sandbox.inprocess import LocalPipeline
from tests.conftest import RegistryView

JsonDict = dict[str, Any]


def _membership(events: list[JsonDict], operation: str, group: str) -> JsonDict:
    found = [
        e
        for e in events
        if e["eventType"] == "THING_GROUP_MEMBERSHIP_EVENT"
        and e["operation"] == operation
        and e["groupArn"].endswith(f"/{group}")
    ]
    assert len(found) == 1, (operation, group, events)
    return found[0]


def _in_ten_groups_then_moved(pipeline: LocalPipeline, world: emulation.RegistryEmulation) -> None:
    """A thing in g00..g09 in both regions; then, in the source, out of g00 and into g10."""
    iot = pipeline.source
    iot.create_thing(thingName="t")
    for i in range(MAX_GROUPS_PER_THING + 1):
        iot.create_thing_group(thingGroupName=f"g{i:02}")
    for i in range(MAX_GROUPS_PER_THING):
        iot.add_thing_to_thing_group(thingName="t", thingGroupName=f"g{i:02}")
    for event in world.outbox(pipeline.source_region).take():
        pipeline.persist_event(event)
    stats = pipeline.drain()
    assert stats.failed_batches == [] and pipeline.failures.sent == []
    iot.remove_thing_from_thing_group(thingName="t", thingGroupName="g00")
    iot.add_thing_to_thing_group(thingName="t", thingGroupName="g10")


MOVED = [f"g{i:02}" for i in range(1, MAX_GROUPS_PER_THING + 1)]


def test_eleventh_group_waits_for_the_removal_not_arrived_yet(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # GIVEN the join has reached the table and the leave has not
    _in_ten_groups_then_moved(pipeline, registry_world)
    events = registry_world.outbox(pipeline.source_region).take()
    pipeline.persist_event(_membership(events, "ADDED", "g10"))
    # WHEN the destination refuses the join (the thing is in 10 groups there)
    stats = pipeline.deliver()
    # THEN it waits (the event source mapping redelivers it), nothing goes to the failure queue
    assert stats.batch_item_failures == 1
    assert pipeline.failures.sent == []
    # and once the leave has arrived, the redelivered join goes through
    pipeline.persist_event(_membership(events, "REMOVED", "g00"))
    stats = pipeline.drain()
    assert stats.failed_batches == [] and pipeline.failures.sent == []
    assert sorted(RegistryView(pipeline.destination).list_thing_groups_for_thing("t")) == MOVED


def test_eleventh_group_applies_the_removal_in_the_table_first(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # GIVEN both changes in the table, the join's stream record first
    _in_ten_groups_then_moved(pipeline, registry_world)
    events = registry_world.outbox(pipeline.source_region).take()
    pipeline.persist_event(_membership(events, "ADDED", "g10"))
    pipeline.persist_event(_membership(events, "REMOVED", "g00"))
    # WHEN the replicator drains them
    stats = pipeline.drain()
    # THEN the leave the table holds is applied before the join, which never fails
    assert stats.batch_item_failures == 0
    assert pipeline.failures.sent == []
    assert sorted(RegistryView(pipeline.destination).list_thing_groups_for_thing("t")) == MOVED


def test_a_dynamic_group_waits_for_the_destinations_fleet_indexing(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # GIVEN a dynamic group in the source, whose fleet indexing is on, and a destination whose
    # indexing is off (AWS's default; `iot-crr doctor` says to fix it)
    indexing = {"thingIndexingMode": "REGISTRY"}
    pipeline.source.update_indexing_configuration(thingIndexingConfiguration=indexing)
    pipeline.source.create_dynamic_thing_group(thingGroupName="hot", queryString="attributes.t:1")
    for event in registry_world.outbox(pipeline.source_region).take():
        pipeline.persist_event(event)
    # WHEN it is replicated, the destination refuses it (ResourceNotFoundException, REFUSALS)
    stats = pipeline.deliver()
    # THEN the record is not lost: it is redelivered, not dropped nor sent to the failure queue
    assert stats.batch_item_failures == 1
    assert pipeline.failures.sent == []
    destination = RegistryView(pipeline.destination)
    assert destination.describe_thing_group("hot") is None
    # and once the destination's indexing is on, the redelivery creates it
    pipeline.destination.update_indexing_configuration(thingIndexingConfiguration=indexing)
    stats = pipeline.drain()
    assert stats.failed_batches == []
    described = destination.describe_thing_group("hot")
    assert described is not None and described["query"]["query_string"] == "attributes.t:1"
