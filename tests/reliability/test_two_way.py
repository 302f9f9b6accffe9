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
  its Global Table copy), and at most six table writes in all (the echo ledger's included);
  echoes write no entity item.

Changes are creates, updates and deletes: a delete and re-create racing the other region's
changes is where the echo rule was weakest (a delete carries no content to tell an operator's
delete from the replicator's; see the named regression tests below).

``RELIABILITY_EXAMPLES`` sets the example count (default 200); ``RELIABILITY_SLOW=1`` raises it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.inprocess import DST, SRC
from tests.reliability.conftest import CLOCK, MAX_EXAMPLES
from tests.reliability.two_way_world import REGIONS, World, fleet, registry_state

THINGS = ("t0", "t0", "t0", "t1")  # mostly one thing: its changes race each other

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


# Bookkeeping included (``World.table_writes``): the entity's persist write and its copy, the
# receiving region's expectation and echo mark, each with its copy. A change taken for an echo
# writes only a mark; duplicates write nothing.
MAX_TABLE_WRITES_PER_CHANGE = 6


@pytest.fixture(scope="module")
def writes_per_change() -> Iterator[list[float]]:
    """Table writes per registry change in each example; the figures go to the test's output
    (``-s``): the issue asks for the number in two-way mode."""
    ratios: list[float] = []
    yield ratios
    if ratios:
        print(
            f"\ntable writes per registry change over {len(ratios)} examples: "
            f"max {max(ratios):.2f}, mean {sum(ratios) / len(ratios):.2f}"
        )


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=rounds, data=st.data())
def test_both_registries_end_identical_with_no_lost_update_and_no_ping_pong(
    two_way: Callable[[], World],
    writes_per_change: list[float],
    plan: list[Any],
    data: st.DataObject,
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
    # Changed in both regions since the last settle: a conflict. The Global Table keeps the
    # item written last (DynamoDB developer guide, global tables: last writer wins), so either
    # region's last change may win, but no other state: never an older change of either region.
    challenged = {
        thing: [[state for name, state in changes if name == region][-1] for region in REGIONS]
        for thing, changes in world.recent.items()
        if thing not in unchallenged
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
    for thing, lasts in challenged.items():
        final = registry_state(world.pipeline[SRC].iot, thing)
        assert final in lasts, f"{thing}: {final} is neither region's last change {lasts}"
    assert world.entity_writes() <= 2 * world.user_events
    writes = world.table_writes()
    if world.user_events:
        writes_per_change.append(writes / world.user_events)
    assert writes <= MAX_TABLE_WRITES_PER_CHANGE * world.user_events


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


def test_a_change_equal_to_the_other_regions_is_not_undone_by_its_older_change_arriving_late(
    two_way: Callable[[], World],
) -> None:
    """Found by the property: B creates t0 {v: b}; A creates t0 {v: a}, then updates it to
    {v: b}. B's create reaches A's table first; A's update arrives before A's create. The
    update equals the stored content (from B), so it used to write nothing; the older create
    then won by timestamp and A's table held {v: a} (never converged into A's own registry,
    {v: b}), while B got {v: a}: the registries ended different. Equal content from another
    region must still move the ordering on to the newer event."""
    world = two_way()
    a, b = REGIONS
    world.change(b, ("create", "t0", {"v": "b"}))
    world.change(a, ("create", "t0", {"v": "a"}))
    world.deliver(b)
    world.pipeline.replicate()  # B's {v: b} in A's table
    world.change(a, ("update", "t0", {"v": "b"}))
    created, updated = world.inbox[a]
    world.inbox[a] = [updated, created]
    world.deliver(a)
    world.settle()
    for name in REGIONS:
        assert registry_state(world.pipeline[name].iot, "t0") == {"v": "b"}, name


def test_a_delete_taken_for_an_echo_is_not_undone_by_the_older_create_arriving_after_it(
    two_way: Callable[[], World],
) -> None:
    """A's replicator deletes t0 (B deleted it); A's operator then re-creates t0 and deletes it
    again. A's DELETED reaches persist first: it agrees with the replicator's expectation (a
    delete carries no content) and is taken for its echo. The CREATED, arriving last, must not
    be applied: A's registry no longer has t0, and B would get it back for good."""
    world = two_way()
    a, b = REGIONS
    world.change(a, ("create", "t0", {"v": "a"}))
    world.settle()
    world.change(b, ("delete", "t0"))
    world.deliver(b)
    world.pipeline.replicate()
    world.drain(a)  # A's replicator deletes t0 (expectation: deleted)
    world.change(a, ("create", "t0", {"v": "c"}))
    world.change(a, ("delete", "t0"))
    echo_deleted, created, deleted = world.inbox[a]
    world.inbox[a] = [deleted, echo_deleted, created]
    world.deliver(a)
    world.settle()
    for name in REGIONS:
        assert registry_state(world.pipeline[name].iot, "t0") is None, name


def test_a_change_back_taken_for_an_echo_is_not_undone_by_the_change_before_it(
    two_way: Callable[[], World],
) -> None:
    """The same with content: A's replicator writes {v: b}; A's operator changes t0 to {v: c}
    and back to {v: b}. The change back arrives first and is taken for the echo; the {v: c}
    arriving after must be stale, or the table (and B) would hold what A no longer has."""
    world = two_way()
    a, b = REGIONS
    world.change(a, ("create", "t0", {"v": "a"}))
    world.settle()
    world.change(b, ("update", "t0", {"v": "b"}))
    world.deliver(b)
    world.pipeline.replicate()
    world.drain(a)  # A's replicator writes {v: b}
    world.change(a, ("update", "t0", {"v": "c"}))
    world.change(a, ("update", "t0", {"v": "b"}))
    echo_b, to_c, back_to_b = world.inbox[a]
    world.inbox[a] = [back_to_b, echo_b, to_c]
    world.deliver(a)
    world.settle()
    for name in REGIONS:
        assert registry_state(world.pipeline[name].iot, "t0") == {"v": "b"}, name


def test_an_echo_stamped_ahead_is_still_an_echo_and_does_not_shadow_the_next_local_change(
    two_way: Callable[[], World],
) -> None:
    """Issue 28, item 4: A's replicator writes {v: b}; the registry event of that write (the
    echo) carries a stamp 3 minutes ahead of A's persist clock (a clock ahead, or an odd stamp).
    It must still be taken for the echo (no entity write), and the echo mark it leaves must not
    make the operator's change in A, made just after, "overwritten": that mark used to be the
    stamp, 3 minutes ahead, and the change was dropped, leaving A at {v: c} and B at {v: b}."""
    world = two_way()
    a, b = REGIONS
    world.change(a, ("create", "t0", {"v": "a"}))
    world.settle()
    world.change(b, ("update", "t0", {"v": "b"}))
    world.deliver(b)
    world.pipeline.replicate()
    world.drain(a)  # A's replicator writes {v: b}
    (echo,) = world.inbox[a]
    echo["timestamp"] += 3 * 60_000
    writes = world.entity_writes()
    world.deliver(a)
    assert world.entity_writes() == writes  # an echo: nothing written
    CLOCK.advance(2)  # beyond the tolerance (ORDERING_TOLERANCE_MS) after persist took the echo
    world.change(a, ("update", "t0", {"v": "c"}))
    world.settle()
    for name in REGIONS:
        assert registry_state(world.pipeline[name].iot, "t0") == {"v": "c"}, name


def test_table_writes_per_change_in_two_way_mode(two_way: Callable[[], World]) -> None:
    """Each registry change: its persist write and the Global Table's copy (2 entity writes),
    plus, in the other region, the replicator's echo-ledger entry and the echo mark persist
    sets when the echo arrives, each with its copy back (4 bookkeeping writes). The echo
    writes no entity item."""
    world = two_way()
    world.change(SRC, ("create", "t0", {"v": "0"}))
    world.settle()
    before = world.entity_writes(), world.pipeline.replication.copied["ECHO"]
    changes = 10
    for i in range(changes):
        world.change(SRC if i % 2 else DST, ("update", "t0", {"v": str(i + 1)}))
        world.settle()
    entity = world.entity_writes() - before[0]
    ledger = 2 * (world.pipeline.replication.copied["ECHO"] - before[1])  # written + copied
    assert (entity, ledger) == (2 * changes, 4 * changes)
