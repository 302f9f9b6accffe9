"""Two-way replication (issue 12): changes in both regions, no echo, no loop, no lost update.

Both regions run the whole pipeline (``sandbox.inprocess.TwoWayPipeline``): each persists its own
registry's events into its replica of the state table, the Global Table emulation copies both
ways (last writer wins) whenever a ``replicate`` step is drawn (so replication lags by a random
number of steps), and each region's replicator converges its registry. Hypothesis interleaves
registry changes in both regions, event deliveries (with duplicates and any reordering),
replication and replicator runs, and sometimes lets everything settle. Then everything settles,
and:

- both registries are identical;
- no update is lost: when every change to a thing since the last settle was made in one region
  (so every change of the other region was visible there), both registries end with the state
  that region's last change left;
- no ping-pong: each registry change causes at most two entity writes (the persist step's, and
  its Global Table copy); echoes write nothing.

``RELIABILITY_EXAMPLES`` sets the example count (default 200); ``RELIABILITY_SLOW=1`` raises it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import emulation
from sandbox.inprocess import DST, SRC, TwoWayPipeline
from tests.reliability.conftest import MAX_EXAMPLES, reset_world

REGIONS = (SRC, DST)
THINGS = ("t0", "t0", "t0", "t1")  # mostly one thing: its changes race each other
ENTITY_PREFIXES = ("THING", "TYPE", "GROUP", "BILLING", "MEMBER")
MAX_SETTLE_ROUNDS = 12

region = st.sampled_from(REGIONS)
thing = st.sampled_from(THINGS)
attributes = st.dictionaries(st.just("v"), st.sampled_from(("a", "b", "c")), min_size=1)
change = st.one_of(
    st.tuples(st.just("update"), thing, attributes),
    st.tuples(st.just("update"), thing, attributes),
    st.tuples(st.just("create"), thing, attributes),
    st.tuples(st.just("delete"), thing),
)
# A round: up to two registry changes (in either region), then the pipeline's actions in any
# order, each possibly left for a later round (lag); now and then everything settles.
ACTIONS = (("deliver", SRC), ("deliver", DST), ("replicate",), ("drain", SRC), ("drain", DST))
rounds = st.lists(
    st.tuples(
        st.lists(st.tuples(region, change), max_size=2),
        st.permutations(ACTIONS),
        st.lists(st.booleans(), min_size=len(ACTIONS), max_size=len(ACTIONS)),  # lagging
        st.integers(0, 9),  # 0: settle after the round
    ),
    min_size=1,
    max_size=5,
)


def apply_change(iot: Any, op: tuple[Any, ...]) -> bool:
    """One registry call; False when the registry refuses it (nothing changed)."""
    name, thing, *rest = op
    try:
        if name == "create":
            iot.create_thing(thingName=thing, attributePayload={"attributes": rest[0]})
        elif name == "update":
            iot.update_thing(
                thingName=thing, attributePayload={"attributes": rest[0], "merge": False}
            )
        else:
            iot.delete_thing(thingName=thing)
    except ClientError:
        return False
    return True


def registry_state(iot: Any, thing: str) -> dict[str, str] | None:
    with contextlib.suppress(ClientError):
        return dict(iot.describe_thing(thingName=thing).get("attributes") or {})
    return None


def fleet(iot: Any) -> dict[str, dict[str, str]]:
    """Every thing in a registry with its attributes."""
    return {t["thingName"]: dict(t.get("attributes") or {}) for t in iot.list_things()["things"]}


@dataclass
class World:
    """The pipeline, the events published but not yet delivered, and what the test tracks."""

    pipeline: TwoWayPipeline
    events: emulation.RegistryEmulation
    inbox: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {r: [] for r in REGIONS})
    user_events: int = 0
    # thing -> [(region, state after the change)] since the last settle
    recent: dict[str, list[tuple[str, dict[str, str] | None]]] = field(default_factory=dict)

    def collect(self, *, user: bool) -> None:
        for name in REGIONS:
            published = self.events.outbox(name).take()
            self.inbox[name] += published
            if user:
                self.user_events += len(published)

    def change(self, name: str, op: tuple[Any, ...]) -> None:
        iot = self.pipeline[name].iot
        if apply_change(iot, op):
            self.recent.setdefault(op[1], []).append((name, registry_state(iot, op[1])))
        self.collect(user=True)

    def deliver(self, name: str, data: st.DataObject | None = None) -> None:
        """Persist the region's pending events: with ``data``, some twice and in any order."""
        events, self.inbox[name] = self.inbox[name], []
        delivered = []
        for event in events:
            delivered.append(event)
            if data is not None and data.draw(st.booleans(), label="duplicate"):
                delivered.append(dict(event))
        if data is not None:
            delivered = data.draw(st.permutations(delivered), label="order")
        for event in delivered:
            self.pipeline[name].persist_event(event)

    def drain(self, name: str) -> int:
        invocations = self.pipeline[name].drain()
        self.collect(user=False)
        return invocations

    def settle(self) -> None:
        """Deliver, replicate and drain until nothing moves; a loop never settles."""
        for _ in range(MAX_SETTLE_ROUNDS):
            moved = sum(len(events) for events in self.inbox.values())
            for name in REGIONS:
                self.deliver(name)
            moved += self.pipeline.replicate()
            moved += sum(self.drain(name) for name in REGIONS)
            if not moved:
                self.recent.clear()
                return
        raise AssertionError(f"still replicating after {MAX_SETTLE_ROUNDS} rounds (a loop)")

    def entity_writes(self) -> int:
        copied = self.pipeline.replication.copied
        return self.pipeline.persist_entity_writes() + sum(copied[p] for p in ENTITY_PREFIXES)


@pytest.fixture
def two_way(
    registry_world: emulation.RegistryEmulation, clients: Callable[[str, str], Any]
) -> Iterator[Callable[[], World]]:
    def make() -> World:
        reset_world(registry_world)
        # Expectations and event timestamps on one clock, as AWS's are (pipeline.echo).
        pipeline = TwoWayPipeline(client=clients, wall_clock=lambda: registry_world.now_ms() / 1000)
        return World(pipeline, registry_world)

    yield make


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=rounds, data=st.data())
def test_both_registries_end_identical_with_no_lost_update_and_no_ping_pong(
    two_way: Callable[[], World], plan: list[Any], data: st.DataObject
) -> None:
    world = two_way()
    for changes, actions, lagging, settle in plan:
        for name, op in changes:
            world.change(name, op)
        for (action, *args), late in zip(actions, lagging, strict=True):
            if late:
                continue
            if action == "deliver":
                world.deliver(args[0], data)
            elif action == "replicate":
                world.pipeline.replicate()
            else:
                world.drain(args[0])
        if not settle:
            world.settle()
    unchallenged = {
        thing: changes[-1]
        for thing, changes in world.recent.items()
        if len({name for name, _ in changes}) == 1
    }
    world.settle()

    # (A full audit costs half a second here; its tests are tests/reliability/test_failover.py.)
    fleets = {name: fleet(world.pipeline[name].iot) for name in REGIONS}
    assert fleets[SRC] == fleets[DST]
    for thing, (name, state) in unchallenged.items():
        for other in REGIONS:
            assert registry_state(world.pipeline[other].iot, thing) == state, (
                f"{thing}: the last change (in {name}) was lost in {other}"
            )
    assert world.entity_writes() <= 2 * world.user_events


def test_issue_12_race_echo_after_a_newer_version_does_not_roll_the_source_back(
    two_way: Callable[[], World],
) -> None:
    """The race as reported: B's replicator applies v5 after A already wrote v6; v6 reaches
    B's table; then B's registry event for v5 (the echo, newer than v6) reaches B's persist."""
    world = two_way()
    a, b = REGIONS
    world.change(a, ("create", "t0", {"v": "4"}))
    world.settle()
    world.change(a, ("update", "t0", {"v": "5"}))
    world.deliver(a)
    world.pipeline.replicate()  # v5 in B's table
    world.change(a, ("update", "t0", {"v": "6"}))  # A writes v6 ...
    world.drain(b)  # ... then B's replicator applies v5: its echo is newer than v6
    world.deliver(a)
    world.pipeline.replicate()  # v6 reaches B's table
    world.deliver(b)  # the echo of v5 arrives
    world.settle()
    for name in REGIONS:
        assert registry_state(world.pipeline[name].iot, "t0") == {"v": "6"}, name
