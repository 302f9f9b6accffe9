"""Issue 22, item 1: the state table follows what AWS removes with a deleted entity.

A thing group deleted while it still has things takes its memberships (and its policy
attachments) with it, and AWS publishes no membership event for that; a thing deleted leaves
its groups and had no principal left (DeleteThing refuses while one is attached). The persist
step writes the dependents' tombstones with the delete (``Kind.cascades``,
``pipeline.ingest.cascade_tombstones``), stamped with the delete's time, so a late event of a
dependent made before the delete cannot bring it back.
"""

from __future__ import annotations

from typing import Any

from pipeline.kinds.links import membership_name, policy_target_name, thing_principal_name
from pipeline.model import Change, EntityKind, Origin
from pipeline.state import Outcome
from reconcile.explain import read_table
from sandbox import emulation
from sandbox.inprocess import LocalPipeline
from tests.conftest import RegistryView

JsonDict = dict[str, Any]
CERT = "a" * 64


def _persist_all(pipeline: LocalPipeline, world: emulation.RegistryEmulation) -> list[JsonDict]:
    events = world.outbox(pipeline.source_region).take()
    for event in events:
        pipeline.persist_event(event)
    return events


def _live(pipeline: LocalPipeline, kind: EntityKind, name: str) -> bool:
    item = pipeline.table.get(kind, name)
    return item is not None and not item.deleted


def _link(kind: EntityKind, name: str, ts: int, *, deleted: bool = False) -> Change:
    """A link's change as the control-plane path persists it (CloudTrail: no version)."""
    return Change(kind, name, Origin("us-east-1", ts, f"ct-{name}-{ts}"), deleted=deleted)


def test_a_deleted_group_takes_its_memberships_out_of_the_table(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # GIVEN a group with two things, replicated
    iot = pipeline.source
    iot.create_thing_group(thingGroupName="floor")
    for thing in ("a", "b"):
        iot.create_thing(thingName=thing)
        iot.add_thing_to_thing_group(thingName=thing, thingGroupName="floor")
    events = _persist_all(pipeline, registry_world)
    pipeline.drain()
    assert _live(pipeline, EntityKind.MEMBERSHIP, membership_name("a", "floor"))
    # WHEN the group is deleted in the source, things still in it (no membership event)
    iot.delete_thing_group(thingGroupName="floor")
    deleted = _persist_all(pipeline, registry_world)
    assert [e["eventType"] for e in deleted] == ["THING_GROUP_EVENT"]
    # THEN the table holds no live membership of it
    for thing in ("a", "b"):
        assert not _live(pipeline, EntityKind.MEMBERSHIP, membership_name(thing, "floor"))
    # and a late ADDED (made before the delete) cannot resurrect one
    added = next(e for e in events if e["eventType"] == "THING_GROUP_MEMBERSHIP_EVENT")
    assert pipeline.persist_event(added).outcome in (Outcome.STALE, Outcome.DUPLICATE)
    assert not _live(pipeline, EntityKind.MEMBERSHIP, membership_name("a", "floor"))
    # and the replicator converges the tombstones without a failure
    stats = pipeline.drain()
    assert stats.failed_batches == [] and pipeline.failures.sent == []
    assert RegistryView(pipeline.destination).describe_thing_group("floor") is None
    # and the table's view holds no membership the destination lacks
    view = read_table(pipeline.table, pipeline.source_region, 0, segments=1)
    assert view.memberships.empty


def test_a_group_recreated_later_keeps_its_new_memberships(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # GIVEN a group deleted and its tombstones written
    iot = pipeline.source
    iot.create_thing_group(thingGroupName="floor")
    iot.create_thing(thingName="a")
    iot.add_thing_to_thing_group(thingName="a", thingGroupName="floor")
    iot.delete_thing_group(thingGroupName="floor")
    _persist_all(pipeline, registry_world)
    # WHEN it is re-created and the thing added again (later events: AWS's timestamps)
    iot.create_thing_group(thingGroupName="floor")
    iot.add_thing_to_thing_group(thingName="a", thingGroupName="floor")
    _persist_all(pipeline, registry_world)
    # THEN the new membership is live: the old delete's tombstone does not outrank it
    assert _live(pipeline, EntityKind.MEMBERSHIP, membership_name("a", "floor"))


def test_a_deleted_thing_takes_its_memberships_and_principals_out_of_the_table(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # GIVEN a thing in a group, with a principal the table still holds (its detach's event late)
    iot = pipeline.source
    iot.create_thing_group(thingGroupName="floor")
    iot.create_thing(thingName="a")
    iot.create_thing(thingName="ab")  # a name the first one's prefix must not catch
    iot.add_thing_to_thing_group(thingName="a", thingGroupName="floor")
    iot.add_thing_to_thing_group(thingName="ab", thingGroupName="floor")
    _persist_all(pipeline, registry_world)
    thing_ts = pipeline.table.get(EntityKind.THING, "a")
    assert thing_ts is not None
    principal = thing_principal_name("a", CERT)
    pipeline.table.apply(_link(EntityKind.THING_PRINCIPAL, principal, thing_ts.event_ts))
    # WHEN the thing is deleted in the source
    iot.delete_thing(thingName="a")
    _persist_all(pipeline, registry_world)
    # THEN its membership and its principal are tombstones; the other thing's are not
    assert not _live(pipeline, EntityKind.MEMBERSHIP, membership_name("a", "floor"))
    assert not _live(pipeline, EntityKind.THING_PRINCIPAL, principal)
    assert _live(pipeline, EntityKind.MEMBERSHIP, membership_name("ab", "floor"))


def test_a_deleted_group_takes_its_policy_attachments_out_of_the_table(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # GIVEN a policy attached to a group and to a certificate, both in the table
    iot = pipeline.source
    iot.create_thing_group(thingGroupName="floor")
    iot.create_thing_group(thingGroupName="floor2")
    _persist_all(pipeline, registry_world)
    group = pipeline.table.get(EntityKind.THING_GROUP, "floor")
    assert group is not None
    on_group = policy_target_name("p", "thinggroup/floor")
    on_other = policy_target_name("p", "thinggroup/floor2")
    on_cert = policy_target_name("p", f"cert/{CERT}")
    for name in (on_group, on_other, on_cert):
        pipeline.table.apply(_link(EntityKind.POLICY_TARGET, name, group.event_ts))
    # WHEN the group is deleted
    iot.delete_thing_group(thingGroupName="floor")
    _persist_all(pipeline, registry_world)
    # THEN only its own attachment is a tombstone
    assert not _live(pipeline, EntityKind.POLICY_TARGET, on_group)
    assert _live(pipeline, EntityKind.POLICY_TARGET, on_other)
    assert _live(pipeline, EntityKind.POLICY_TARGET, on_cert)
