"""An event stamped ahead of persist's clock cannot shadow the real changes made after it
(issue 28, item 4): its ordering time is capped at the admitting clock plus the tolerance
(``pipeline.state.capped``), and the echo ledger still recognises an echo stamped ahead.

Pure: ``capped`` and ``decide`` over data. Times are epoch milliseconds; ``NOW`` is persist's
clock when the early-stamped event is admitted.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.echo import Expectation
from pipeline.model import Change, EntityKind, Item, Origin
from pipeline.state import MAX_CLOCK_SKEW_MS, ORDERING_TOLERANCE_MS, Outcome, capped, decide

SRC = "us-east-1"
DST = "eu-west-1"
NOW = 1_764_000_000_000
MEMBER = "sensor-1#floor-2"


def membership(ts: int, *, removed: bool = False, region: str = SRC) -> Change:
    """Memberships carry no version: they are ordered by timestamp alone."""
    op = "removed" if removed else "added"
    return Change(
        EntityKind.MEMBERSHIP,
        MEMBER,
        Origin(region, ts, f"{op}-{ts}", entity_id="membership-1"),
        deleted=removed,
    )


def persisted(stored: Item | None, change: Change, *, now: int) -> tuple[Item | None, Outcome]:
    """Persist's decision for ``change`` admitted at ``now`` (capped, then decided)."""
    decision = decide(stored, capped(change, now))
    return decision.item or stored, decision.outcome


def test_a_future_stamped_event_does_not_make_the_real_change_after_it_stale() -> None:
    # GIVEN a membership added by an event stamped 4 minutes ahead of persist's clock (within
    # the skew persist allows, so it is admitted)
    early = membership(NOW + 4 * 60_000)
    # AND the member removed 2 s later, an event stamped by a correct clock
    removal = membership(NOW + 2_000, removed=True)

    # Uncapped (the bug as reported): the removal is "stale" and dropped, the thing stays a member
    stored = decide(None, early).item
    assert decide(stored, removal).outcome is Outcome.STALE

    # WHEN persist admits each at its own clock
    stored, first = persisted(None, early, now=NOW)
    stored, second = persisted(stored, removal, now=NOW + 2_000)
    # THEN both apply, the removal last: the real change wins
    assert (first, second) == (Outcome.APPLIED, Outcome.APPLIED)
    assert stored is not None and stored.deleted
    assert stored.event_ts == NOW + 2_000


def test_capping_keeps_the_stamp_and_leaves_a_stamp_within_the_tolerance_alone() -> None:
    ahead = capped(membership(NOW + 60_000), NOW)
    assert ahead.origin.timestamp_ms == NOW + ORDERING_TOLERANCE_MS
    assert ahead.origin.stamped_ms == NOW + 60_000
    within = membership(NOW + ORDERING_TOLERANCE_MS)
    assert capped(within, NOW) == within
    assert capped(within, NOW).origin.stamped_ms is None


def test_genuine_events_a_little_ahead_keep_their_own_order() -> None:
    # GIVEN an add and a removal stamped within the tolerance ahead of persist's clock,
    # delivered in reverse order
    added, removed = membership(NOW + 300), membership(NOW + 600, removed=True)
    stored, _ = persisted(None, removed, now=NOW)
    # THEN the older add is stale: their stamps, not their arrival, order them
    stored, outcome = persisted(stored, added, now=NOW + 10)
    assert outcome is Outcome.STALE
    assert stored is not None and stored.deleted


@given(
    ahead=st.integers(ORDERING_TOLERANCE_MS + 1, MAX_CLOCK_SKEW_MS),
    after=st.integers(ORDERING_TOLERANCE_MS + 1, MAX_CLOCK_SKEW_MS),
    removed_first=st.booleans(),
)
def test_a_real_change_made_after_the_tolerance_always_wins(
    ahead: int, after: int, removed_first: bool
) -> None:
    # GIVEN any admitted event stamped ahead of persist's clock (up to the allowed skew)
    stored, _ = persisted(None, membership(NOW + ahead, removed=removed_first), now=NOW)
    # WHEN a real change of the opposite kind is made later than the tolerance, stamped and
    # admitted at that time
    real = membership(NOW + after, removed=not removed_first)
    stored, outcome = persisted(stored, real, now=NOW + after)
    # THEN it is applied and is what the table holds
    assert outcome is Outcome.APPLIED
    assert stored is not None and stored.deleted is (not removed_first)


def thing(region: str, ts: int, version: int, value: str) -> Change:
    return Change(
        EntityKind.THING,
        "sensor-1",
        Origin(region, ts, f"{region}-{version}-{ts}", f"id-{region}", version),
        fields={"thing_type": None, "attributes": {"v": value}},
    )


def test_an_echo_stamped_ahead_is_still_an_echo_and_its_mark_is_capped() -> None:
    """Two-way: B's replicator records an expectation, then writes v5 to B's registry; B's
    registry event for it (the echo) is stamped 3 minutes ahead of B's persist clock. It must
    still be taken for the echo, and the echo mark it leaves must not make an operator's change
    in B, made seconds later, stale."""
    # GIVEN v5 from A in the table, and B's ledger expecting it (recorded at NOW - 100)
    stored = decide(None, thing(SRC, NOW - 1_000, 5, "5")).item
    assert stored is not None
    ledger = [Expectation.of(NOW - 100, stored.state)]
    echo = thing(DST, NOW + 3 * 60_000, 2, "5")

    # WHEN B's persist admits the echo at NOW
    decision = decide(stored, capped(echo, NOW), ledger)
    # THEN it is an echo (nothing written), and the mark is persist's clock plus the tolerance
    assert decision.outcome is Outcome.ECHO and decision.item is None
    assert decision.echoed_ms == NOW + ORDERING_TOLERANCE_MS

    # AND an operator's change in B 5 s later is applied (with the uncapped mark, NOW + 3 min,
    # it was "overwritten" and dropped)
    change = thing(DST, NOW + 5_000, 3, "operator")
    assert decide(stored, change, ledger, echoed_ms=NOW + 3 * 60_000).outcome is Outcome.STALE
    after = decide(stored, capped(change, NOW + 5_000), ledger, echoed_ms=decision.echoed_ms)
    assert after.outcome is Outcome.APPLIED
    assert after.item is not None and after.item.state["attributes"] == {"v": "operator"}
