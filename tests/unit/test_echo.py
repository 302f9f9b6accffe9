"""Two-way replication: echoes of the replicator's own writes (pipeline.echo, pipeline.state).

Region A (primary) replicates to region B; B's registry events reach B's persist step. Times are
epoch milliseconds; the replicator records its expectations at ``recorded_ms``.
"""

from __future__ import annotations

from typing import Any

from pipeline.echo import MAX_EXPECTATIONS, TTL_MS, Expectation, digest, is_echo, record
from pipeline.model import Change, EntityKind, Item, Origin
from pipeline.state import Outcome, decide

A = "us-east-1"
B = "eu-west-1"


def content(version: int) -> dict[str, Any]:
    return {"thing_type": None, "attributes": {"v": str(version)}}


def event(
    region: str, ts: int, version: int, state: dict[str, Any], *, deleted: bool = False
) -> Change:
    thing_id = f"id-{region}"
    return Change(
        kind=EntityKind.THING,
        name="sensor-1",
        origin=Origin(region, ts, f"{region}-{version}-{ts}", thing_id, version),
        fields={} if deleted else dict(state),
        deleted=deleted,
    )


def run(
    changes: list[Change], ledger: list[Expectation], stored: Item | None = None
) -> tuple[Item | None, list[Outcome]]:
    """Decide each change in turn; ``ledger`` is B's (A's events are decided in A and reach B's
    table by Global Table replication, which is the same write)."""
    outcomes = []
    for change in changes:
        decision = decide(stored, change, ledger if change.origin.region == B else [])
        outcomes.append(decision.outcome)
        if decision.item is not None:
            stored = decision.item
    return stored, outcomes


def test_echo_arriving_after_a_newer_replicated_version_is_not_applied() -> None:
    """Issue 12's race: B's replicator applies v5, A writes v6, v6 reaches B's table, then B's
    registry event for v5 (the echo, newer by timestamp than v6) arrives. Without the ledger it
    is applied and replicates back: A is rolled back to v5."""
    v5 = event(A, 5_000, 5, content(5))
    v6 = event(A, 5_120, 6, content(6))
    echo_of_v5 = event(B, 5_150, 2, content(5))  # B's registry, after the write at 5 100
    ledger = [Expectation.of(5_100, content(5))]

    # Without the ledger: the bug as reported (all three applied, final state v5).
    final, outcomes = run([v5, v6, echo_of_v5], ledger=[])
    assert outcomes == [Outcome.APPLIED] * 3
    assert final is not None and final.state == content(5)

    final, outcomes = run([v5, v6, echo_of_v5], ledger)
    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.ECHO]
    assert final is not None and final.state == content(6) and final.origin_region == A

    # Also once B's replicator has moved on to v6: the late echo of v5 is still an echo.
    ledger.append(Expectation.of(5_300, content(6)))
    final, outcomes = run([v5, v6, echo_of_v5, event(B, 5_350, 3, content(6))], ledger)
    assert outcomes[2:] == [Outcome.ECHO, Outcome.ECHO]
    assert final is not None and final.state == content(6)


def test_a_duplicate_echo_is_an_echo_again() -> None:
    ledger = [Expectation.of(5_100, content(5))]
    stored, _ = run([event(A, 5_000, 5, content(5))], ledger)
    echo = event(B, 5_150, 2, content(5))
    assert decide(stored, echo, ledger).outcome is Outcome.ECHO
    assert decide(stored, echo, ledger).outcome is Outcome.ECHO


def test_restoring_an_older_replicated_content_after_the_newer_was_visible_is_a_change() -> None:
    # B saw v5 then v6 replicated; an operator in B then sets the v5 content again.
    ledger = [Expectation.of(5_100, content(5)), Expectation.of(5_300, content(6))]
    stored, _ = run([event(A, 5_000, 5, content(5)), event(A, 5_120, 6, content(6))], ledger)
    operator = event(B, 9_000, 4, content(5))
    decision = decide(stored, operator, ledger)
    assert decision.outcome is Outcome.APPLIED
    assert decision.item is not None and decision.item.origin_region == B


def test_a_local_change_closes_the_window_of_earlier_expectations() -> None:
    # B's replicator wrote v5; an operator in B changed it to X, then back to the v5 content.
    ledger = [Expectation.of(5_100, content(5))]
    x = {"thing_type": None, "attributes": {"v": "x"}}
    final, outcomes = run(
        [event(A, 5_000, 5, content(5)), event(B, 6_000, 3, x), event(B, 7_000, 4, content(5))],
        ledger,
    )
    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.APPLIED]
    assert final is not None and final.state == content(5) and final.origin_region == B


def test_partial_and_delete_echoes() -> None:
    ledger = [Expectation.of(5_100, content(5) | {"thing_type": "Gateway"})]
    association = Change(
        EntityKind.THING,
        "sensor-1",
        Origin(B, 5_200, "assoc", "id-B"),
        fields={"thing_type": "Gateway"},
        partial=True,
    )
    assert is_echo(ledger, None, association)
    # A delete is no echo of an update, nor the other way round.
    assert not is_echo(ledger, None, event(B, 5_200, 3, {}, deleted=True))
    assert is_echo(
        [Expectation.of(5_100, None, deleted=True)], None, event(B, 5_200, 3, {}, deleted=True)
    )
    assert not is_echo(
        [Expectation.of(5_100, None, deleted=True)], None, event(B, 5_200, 3, content(5))
    )


def test_other_regions_corrective_and_expired_expectations_are_never_echoes() -> None:
    ledger = [Expectation.of(5_100, content(5))]
    corrective = Change(
        EntityKind.THING,
        "sensor-1",
        Origin(B, 5_200, "fix", None),
        fields=content(5),
        corrective=True,
        sync="s",
    )
    assert not is_echo(ledger, None, corrective)
    assert not is_echo(ledger, None, event(B, 5_100 + TTL_MS + 1, 3, content(5)))


def test_record_prunes_expired_and_keeps_the_newest() -> None:
    old = [Expectation.of(i, content(i)) for i in range(MAX_EXPECTATIONS + 5)]
    kept = record(old, [Expectation.of(10_000, content(0))], now_ms=10_000)
    assert len(kept) == MAX_EXPECTATIONS and kept[-1].recorded_ms == 10_000
    assert record(old, [], now_ms=TTL_MS + 10_000) == []


def test_a_local_change_the_replicator_then_overwrote_is_stale_whatever_arrives_first() -> None:
    """B's operator creates the thing with {c} at 5 050; B's replicator, converging A's item
    {a}, records its expectation at 5 100 and overwrites it: B's registry holds {a}. Whichever of
    the two events reaches B's persist first, B's table must not end with {c}, or B (whose
    replicator skips B's own items) and A would differ for good."""
    a_item, _ = run([event(A, 4_000, 1, {"attributes": {"v": "a"}})], [])
    ledger = [Expectation.of(5_100, {"attributes": {"v": "a"}})]
    create_c = event(B, 5_050, 1, {"attributes": {"v": "c"}})
    echo_a = event(B, 5_150, 2, {"attributes": {"v": "a"}})
    for order in ([create_c, echo_a], [echo_a, create_c]):
        final, outcomes = run(order, ledger, stored=a_item)
        assert final is not None and final.state["attributes"] == {"v": "a"}, outcomes
        assert outcomes[order.index(create_c)] is Outcome.STALE


def test_digests_ignore_order_and_take_lists_of_maps() -> None:
    maps = [{"userPropertyKey": "b", "thingAttribute": "b"}, {"userPropertyKey": "a"}]
    assert digest(maps) == digest(list(reversed(maps)))
    assert digest([]) == digest(None) == digest({}) and digest("") == digest(None)
    assert digest(["x"]) != digest(["y"])


def test_a_change_older_than_an_event_taken_for_an_echo_is_stale() -> None:
    """B's replicator deleted the thing (expectation at 5 100); B's operator re-created it
    (5 200) and deleted it again (5 300). The DELETED arrives first and agrees with the
    expectation (a delete carries no content): it is taken for the echo, and its time becomes
    the ledger's echo mark. The CREATED, arriving after, is older than the mark: stale."""
    tombstone, _ = run([event(A, 5_000, 2, {}, deleted=True)], [])
    ledger = [Expectation.of(5_100, None, deleted=True)]
    deleted = decide(tombstone, event(B, 5_300, 1, {}, deleted=True), ledger)
    assert (deleted.outcome, deleted.echoed_ms) == (Outcome.ECHO, 5_300)
    created = decide(tombstone, event(B, 5_200, 1, content(9)), ledger, echoed_ms=5_300)
    assert created.outcome is Outcome.STALE and created.item is None
    # Without the mark it would have been applied (the bug the two-way property found).
    assert decide(tombstone, event(B, 5_200, 1, content(9)), ledger).outcome is Outcome.APPLIED


def test_the_echo_mark_only_moves_forward_and_never_for_a_partial_echo() -> None:
    ledger = [Expectation.of(5_100, content(5) | {"thing_type": "Gateway"})]
    echo = event(B, 5_150, 2, content(5) | {"thing_type": "Gateway"})
    assert decide(None, echo, ledger).echoed_ms == 5_150
    late_echo = decide(None, echo, ledger, echoed_ms=5_200)
    assert (late_echo.outcome, late_echo.echoed_ms) == (Outcome.ECHO, None)
    association = Change(
        EntityKind.THING,
        "sensor-1",
        Origin(B, 5_300, "assoc", "id-B"),
        fields={"thing_type": "Gateway"},
        partial=True,
    )
    partial = decide(None, association, ledger)
    assert (partial.outcome, partial.echoed_ms) == (Outcome.ECHO, None)
