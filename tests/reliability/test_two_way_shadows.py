"""Device shadows in two-way replication (issue 24), on the two-way in-process pipeline
(``sandbox.inprocess.TwoWayPipeline``, tests/reliability/two_way_world.py): a device writing its
shadow in the DR region after a failover reaches the primary on failback, its echo there writes
nothing (the echo ledger covers shadows), and the failback guard holds a shadow the primary
changed just before the outage, as it holds any other kind (docs/failover.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pipeline.kinds.shadow import KIND, shadow_key_name
from pipeline.model import EntityKind
from reconcile.engine import Failback
from reconcile.explain import read_table
from reconcile.guards import Guards
from reconcile.snapshot import Snapshot
from sandbox.inprocess import DST, SRC
from tests.reliability.conftest import CLOCK
from tests.reliability.two_way_world import REGIONS, World

PRIMARY, DR = SRC, DST


def write(world: World, region: str, state: dict[str, Any], shadow: str | None = None) -> None:
    """A device (or an application) updates the shadow of ``dev`` in ``region``."""
    named = {} if shadow is None else {"shadowName": shadow}
    payload = json.dumps({"state": state}).encode()
    world.pipeline[region].registry.call(
        "UpdateThingShadow", thingName="dev", payload=payload, **named
    )
    world.collect(user=True)  # its update/documents message, as the region's IoT rule gets it


def shadow_of(world: World, region: str, shadow: str | None = None) -> dict[str, Any] | None:
    state = KIND.read(world.pipeline[region].registry, shadow_key_name("dev", shadow))
    return None if state is None else {key: json.loads(value) for key, value in state.items()}


def in_sync_both_ways(world: World) -> bool:
    return all(
        world.pipeline.audit(source, target).in_sync
        for source, target in ((PRIMARY, DR), (DR, PRIMARY))
    )


def test_a_shadow_written_in_dr_after_failover_reaches_the_primary_on_failback_without_ping_pong(
    two_way: Callable[..., World],
) -> None:
    world = two_way(opt_in={EntityKind.SHADOW})
    # GIVEN a device whose classic and named shadows the primary replicated to the DR region
    world.change(PRIMARY, ("create", "dev", {"v": "0"}))
    write(world, PRIMARY, {"desired": {"mode": "eco"}, "reported": {"fw": "1.0"}})
    write(world, PRIMARY, {"desired": {"interval": 60}}, "config")
    world.settle()
    assert shadow_of(world, DR) == {"desired": {"mode": "eco"}, "reported": {"fw": "1.0"}}
    assert in_sync_both_ways(world)
    CLOCK.advance(5)  # shadow messages are stamped to the second

    # WHEN the primary fails, and in the DR region the device reports a new firmware and an
    # application sets a new desired mode, while replication to the primary is down
    write(world, DR, {"desired": {"mode": "boost"}, "reported": {"fw": "2.0"}})
    write(world, DR, {"desired": {"interval": 30}}, "config")
    world.deliver(DR)
    world.drain(DR)
    writes = world.entity_writes()
    CLOCK.advance(5)
    # AND the primary returns: the Global Table catches up and its replicator applies them
    world.settle()  # fails if the pipeline never stops (a loop)

    # THEN the primary's shadows are the DR region's
    for shadow, expected in (
        (None, {"desired": {"mode": "boost"}, "reported": {"fw": "2.0"}}),
        ("config", {"desired": {"interval": 30}, "reported": {}}),
    ):
        assert shadow_of(world, PRIMARY, shadow) == shadow_of(world, DR, shadow) == expected
    # AND no ping-pong: the primary's echoes of the replicator's two updates were recognised
    # and wrote no entity item (the DR region's two persist writes were written before the
    # primary returned, each copied once to the primary's replica)
    assert world.entity_writes() - writes == 2
    assert in_sync_both_ways(world)


def test_the_failback_guard_holds_a_shadow_the_primary_changed_just_before_the_outage(
    two_way: Callable[..., World],
) -> None:
    world = two_way(opt_in={EntityKind.SHADOW})
    world.change(PRIMARY, ("create", "dev", {"v": "0"}))
    write(world, PRIMARY, {"desired": {"interval": 60}}, "config")
    write(world, PRIMARY, {"desired": {"mode": "eco"}})
    world.settle()
    CLOCK.advance(5)
    # GIVEN the primary's last shadow change, whose message never reached its state table
    write(world, PRIMARY, {"desired": {"interval": 15}}, "config")
    world.inbox[PRIMARY].clear()
    # AND a change in the DR region during the outage, replicated back on failback
    write(world, DR, {"desired": {"mode": "boost"}})
    world.settle()
    assert shadow_of(world, PRIMARY) == {"desired": {"mode": "boost"}, "reported": {}}

    # WHEN the operator audits DR -> primary with the failback guard (`reconcile --failback`)
    def table(region: str) -> Snapshot:
        return read_table(world.pipeline[region].table, region, 0)

    engine = replace(
        world.pipeline.reconciler(DR, Guards(allow_deletes=True)), table=table, failback=Failback()
    )
    audit = engine.audit(DR, PRIMARY)
    # THEN the primary's unreplicated shadow change is held, not overwritten
    assert {(d.entity, d.name, d.held) for d in audit.report.held} == {
        (EntityKind.SHADOW, "dev#config", "changed in us-east-1 but never replicated")
    }
    assert engine.plan(audit).actions == ()
    # AND the operator keeps it: a reconcile primary -> DR brings both regions to one state
    world.pipeline.reconcile(PRIMARY, DR, Guards())
    world.settle()
    for name in REGIONS:
        assert shadow_of(world, name, "config") == {"desired": {"interval": 15}, "reported": {}}
    assert in_sync_both_ways(world)
