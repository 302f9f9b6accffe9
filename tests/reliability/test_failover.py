"""Failover and failback (issue 12, docs/failover.md), on the two-way in-process pipeline.

Conflicts: the same thing changed in both regions within the replication lag ends in one state in
both registries: the state table item written last wins in every replica (DynamoDB Global Tables
reconcile concurrent writes with last writer wins), and each region's replicator converges its
registry to that item.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from reconcile.engine import Failback
from reconcile.explain import read_table
from reconcile.guards import Guards
from reconcile.planner import build_plan
from reconcile.snapshot import Snapshot
from sandbox.inprocess import DST, SRC
from tests.reliability.two_way_world import REGIONS, World, registry_state

PRIMARY, DR = SRC, DST


def in_sync_both_ways(world: World) -> bool:
    return all(
        world.pipeline.audit(source, target).in_sync
        for source, target in ((PRIMARY, DR), (DR, PRIMARY))
    )


@pytest.mark.parametrize("last_writer", REGIONS)
def test_a_conflict_resolves_to_the_last_written_item_in_both_registries(
    two_way: Callable[[], World], last_writer: str
) -> None:
    world = two_way()
    world.change(PRIMARY, ("create", "t0", {"v": "0"}))
    world.settle()
    # Both regions change t0 before either change has replicated.
    world.change(PRIMARY, ("update", "t0", {"v": "primary"}))
    world.change(DR, ("update", "t0", {"v": "dr"}))
    first = DR if last_writer == PRIMARY else PRIMARY
    world.deliver(first)
    world.deliver(last_writer)  # its persist step writes the state table last
    world.settle()

    expected = {"v": "primary" if last_writer == PRIMARY else "dr"}
    for name in REGIONS:
        assert registry_state(world.pipeline[name].iot, "t0") == expected, name
    assert in_sync_both_ways(world)


def test_failover_work_in_the_dr_region_then_failback(two_way: Callable[[], World]) -> None:
    world = two_way()
    # Normal operation: the primary's fleet replicated to the DR region.
    for thing in ("shared", "gone", "late"):
        world.change(PRIMARY, ("create", thing, {"v": "0"}))
    world.settle()
    assert in_sync_both_ways(world)

    # The primary fails. Its last changes never reach the state table.
    world.change(PRIMARY, ("update", "late", {"v": "primary-only"}))
    world.change(PRIMARY, ("create", "late-new", {"v": "primary-only"}))
    world.inbox[PRIMARY].clear()

    # Failover: operators and devices change the registry in the DR region; its persist step
    # writes the state table there; replication to the primary is down.
    world.change(DR, ("update", "shared", {"v": "dr"}))
    world.change(DR, ("create", "dr-new", {"v": "dr"}))
    world.change(DR, ("delete", "gone"))
    world.deliver(DR)
    world.drain(DR)

    # The primary returns: the Global Table catches up, the primary's replicator applies the
    # DR region's changes, and their echoes in the primary write nothing.
    world.settle()
    for thing, state in (("shared", {"v": "dr"}), ("dr-new", {"v": "dr"}), ("gone", None)):
        assert registry_state(world.pipeline[PRIMARY].iot, thing) == state, thing

    # Failback audit, DR -> primary: exactly the primary's changes that never reached the
    # table, for the operator to choose.
    report = world.pipeline.audit(DR, PRIMARY)
    assert {(d.name, d.kind) for d in report.drifts} == {
        ("late", "changed"),
        ("late-new", "extra"),
    }
    source, target = world.pipeline.snapshot(DR), world.pipeline.snapshot(PRIMARY)
    plan = build_plan(report, source, target, Guards(), now=source.taken_at_ms)
    assert [a.name for a in plan.skipped] == ["late-new"]  # no delete without --allow-deletes

    # With the failback guard (`reconcile --failback`) both are held, even with deletes
    # allowed: the DR table never saw them, so they are the primary's own changes.
    def table(region: str) -> Snapshot:
        return read_table(world.pipeline[region].table, region, 0)

    engine = replace(
        world.pipeline.reconciler(DR, Guards(allow_deletes=True)), table=table, failback=Failback()
    )
    audit = engine.audit(DR, PRIMARY)
    reason = "changed in us-east-1 but never replicated"
    assert {(d.name, d.held) for d in audit.report.held} == {
        ("late", reason),
        ("late-new", reason),
    }
    assert engine.plan(audit).actions == ()

    # The operator keeps the DR region's "late" (reconcile DR -> primary) and the primary's
    # "late-new" (reconcile primary -> DR).
    world.pipeline.reconcile(DR, PRIMARY, Guards())
    world.settle()
    world.pipeline.reconcile(PRIMARY, DR, Guards())
    world.settle()

    assert in_sync_both_ways(world)
    assert registry_state(world.pipeline[PRIMARY].iot, "late") == {"v": "0"}
    assert registry_state(world.pipeline[DR].iot, "late-new") == {"v": "primary-only"}
