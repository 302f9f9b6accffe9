"""The state table's write policy (pipeline.state.decide), as pure functions over data."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.model import Change, EntityKind, Item, Origin
from pipeline.state import Outcome, decide

SRC = "us-east-1"


def thing_event(
    version: int,
    ts: int,
    *,
    attrs: dict[str, str] | None = None,
    deleted: bool = False,
    thing_id: str = "id-1",
    event_id: str | None = None,
    region: str = SRC,
) -> Change:
    return Change(
        kind=EntityKind.THING,
        name="sensor-1",
        origin=Origin(region, ts, event_id or f"e-{version}-{ts}", thing_id, version),
        fields={} if deleted else {"thing_type": None, "attributes": attrs or {"v": str(version)}},
        deleted=deleted,
    )


def apply_all(changes: list[Change]) -> Item | None:
    item: Item | None = None
    for change in changes:
        decision = decide(item, change)
        if decision.item is not None:
            item = decision.item
    return item


def test_first_event_is_applied() -> None:
    decision = decide(None, thing_event(1, 1000))
    assert decision.outcome is Outcome.APPLIED
    assert decision.item is not None
    assert decision.item.state == {"thing_type": None, "attributes": {"v": "1"}}
    assert decision.item.origin_version == 1
    assert decision.item.rev == 1


def test_older_version_after_newer_is_stale() -> None:
    stored = apply_all([thing_event(3, 3000)])
    decision = decide(stored, thing_event(2, 2000))
    assert decision.outcome is Outcome.STALE
    assert "version 2" in decision.reason


def test_version_wins_over_timestamp_for_the_same_thing() -> None:
    # GIVEN version 3 stored with a later clock reading than version 4 (clock skew)
    stored = apply_all([thing_event(3, 5000)])
    # THEN version 4 is still newer: versions order events of one thing in one region
    assert decide(stored, thing_event(4, 4000)).outcome is Outcome.APPLIED


def test_duplicate_event_id_is_a_duplicate() -> None:
    event = thing_event(1, 1000)
    stored = apply_all([event])
    assert decide(stored, event).outcome is Outcome.DUPLICATE


def test_late_update_does_not_resurrect_a_deleted_thing() -> None:
    stored = apply_all([thing_event(1, 1000), thing_event(3, 3000, deleted=True)])
    assert stored is not None and stored.deleted
    assert decide(stored, thing_event(2, 2000)).outcome is Outcome.STALE


def test_recreated_thing_with_new_id_is_applied_after_tombstone() -> None:
    stored = apply_all([thing_event(5, 1000), thing_event(5, 2000, deleted=True)])
    # A re-created thing restarts at version 1 with a new thingId and a later timestamp.
    decision = decide(stored, thing_event(1, 3000, thing_id="id-2"))
    assert decision.outcome is Outcome.APPLIED
    assert decision.item is not None and not decision.item.deleted


def test_equal_content_from_another_region_advances_ordering_to_it() -> None:
    stored = apply_all([thing_event(1, 1000, attrs={"a": "1"})])
    # The other region's registry sets the same content (its replicator's echoes are the echo
    # ledger's to drop, tests/unit/test_echo*): the content stays, the ordering moves to it.
    same = thing_event(2, 9000, attrs={"a": "1"}, thing_id="dest-id", region="eu-west-1")
    decision = decide(stored, same)
    assert decision.outcome is Outcome.UNCHANGED
    assert decision.item is not None and decision.item.origin_region == "eu-west-1"
    # THEN that region's older change, delivered late, is stale (it no longer is its registry's)
    older = thing_event(1, 5000, attrs={"a": "2"}, thing_id="dest-id", region="eu-west-1")
    assert decide(decision.item, older).outcome is Outcome.STALE


def test_same_region_newer_event_with_old_content_advances_ordering() -> None:
    # GIVEN A (v1) stored, then A again (v3) after a change to B (v2) whose event is delayed
    stored = apply_all([thing_event(1, 1000, attrs={"a": "A"})])
    decision = decide(stored, thing_event(3, 3000, attrs={"a": "A"}))
    assert decision.outcome is Outcome.UNCHANGED
    assert decision.item is not None and decision.item.origin_version == 3
    # THEN the delayed B (v2) is stale
    assert decide(decision.item, thing_event(2, 2000, attrs={"a": "B"})).outcome is Outcome.STALE


def test_corrective_change_always_writes_when_not_older() -> None:
    stored = apply_all([thing_event(1, 1000, attrs={"a": "1"})])
    corrective = Change(
        kind=EntityKind.THING,
        name="sensor-1",
        origin=Origin(SRC, 1000, "crr-x-1", None, 1),
        fields={"thing_type": None, "attributes": {"a": "1"}, "billing_group": None},
        corrective=True,
        sync="x",
    )
    decision = decide(stored, corrective)
    assert decision.outcome is Outcome.APPLIED
    assert decision.item is not None and decision.item.sync == "x"


def test_corrective_change_never_overrides_a_newer_live_event() -> None:
    stored = apply_all([thing_event(1, 5000)])
    corrective = Change(
        kind=EntityKind.THING,
        name="sensor-1",
        origin=Origin(SRC, 4000, "crr-y-1", None, 1),
        fields={"thing_type": None, "attributes": {}, "billing_group": None},
        corrective=True,
        sync="y",
    )
    assert decide(stored, corrective).outcome is Outcome.STALE


def test_partial_event_patches_live_item_and_keeps_version_basis() -> None:
    stored = apply_all([thing_event(2, 1000, attrs={"a": "1"})])
    association = Change(
        kind=EntityKind.THING,
        name="sensor-1",
        origin=Origin(SRC, 2000, "assoc-1", "id-1"),
        fields={"thing_type": "Sensor"},
        partial=True,
    )
    decision = decide(stored, association)
    assert decision.outcome is Outcome.APPLIED
    assert decision.item is not None
    assert decision.item.state == {"thing_type": "Sensor", "attributes": {"a": "1"}}
    assert decision.item.origin_version == 2
    # A later full event of the same thing still orders by version.
    assert decide(decision.item, thing_event(3, 1500)).outcome is Outcome.APPLIED


def test_partial_event_never_creates_or_revives_an_item() -> None:
    association = Change(
        kind=EntityKind.THING,
        name="sensor-1",
        origin=Origin(SRC, 2000, "assoc-1"),
        fields={"thing_type": "Sensor"},
        partial=True,
    )
    assert decide(None, association).outcome is Outcome.STALE
    tombstone = apply_all([thing_event(1, 1000, deleted=True)])
    assert decide(tombstone, association).outcome is Outcome.STALE


def _dissociation(type_name: str, ts: int) -> Change:
    return Change(
        kind=EntityKind.THING,
        name="sensor-1",
        origin=Origin(SRC, ts, f"assoc-deleted-{ts}", "id-1"),
        fields={"thing_type": None},
        partial=True,
        expected={"thing_type": type_name},
    )


def test_type_dissociation_after_the_new_type_arrived_changes_nothing() -> None:
    # GIVEN a change A -> B whose THING_EVENT (type B) is stored first
    stored = apply_all([thing_event(1, 1000)])
    assert stored is not None
    moved = Change(
        kind=EntityKind.THING,
        name="sensor-1",
        origin=Origin(SRC, 2000, "e-2", "id-1", 2),
        fields={"thing_type": "B", "attributes": {}},
    )
    stored = apply_all([thing_event(1, 1000), moved])
    # WHEN the association DELETED(A), published later, arrives after it
    decision = decide(stored, _dissociation("A", 3000))
    # THEN B stays (the old policy cleared the type whatever DELETED named)
    assert decision.outcome is Outcome.STALE
    assert decision.item is None


def test_type_dissociation_clears_the_type_it_names() -> None:
    typed = Change(
        kind=EntityKind.THING,
        name="sensor-1",
        origin=Origin(SRC, 2000, "e-2", "id-1", 2),
        fields={"thing_type": "A", "attributes": {}},
    )
    stored = apply_all([typed])
    decision = decide(stored, _dissociation("A", 3000))
    assert decision.outcome is Outcome.APPLIED
    assert decision.item is not None
    assert decision.item.state["thing_type"] is None


def test_thing_event_keeps_the_billing_group_it_does_not_carry() -> None:
    stored = Item(
        kind=EntityKind.THING,
        name="sensor-1",
        state={"thing_type": None, "attributes": {}, "billing_group": "Gold"},
        deleted=False,
        origin_region=SRC,
        event_ts=1000,
        last_event_id="crr",
    )
    decision = decide(stored, thing_event(2, 2000, attrs={"a": "1"}))
    assert decision.item is not None
    assert decision.item.state["billing_group"] == "Gold"


@st.composite
def event_histories(draw: Any) -> list[Change]:
    """A thing's true history: updates with rising versions and timestamps, maybe a delete."""
    count = draw(st.integers(min_value=1, max_value=8))
    events = [
        thing_event(v, 1000 * v, attrs={"n": str(draw(st.integers(0, 3)))})
        for v in range(1, count + 1)
    ]
    if draw(st.booleans()):
        events.append(thing_event(count, 1000 * (count + 1), deleted=True))
    return events


@settings(max_examples=300, deadline=None)
@given(history=event_histories(), data=st.data())
def test_any_delivery_order_with_duplicates_converges_to_the_last_event(
    history: list[Change], data: Any
) -> None:
    # GIVEN the true history delivered shuffled and with duplicates
    delivered = data.draw(st.permutations(history + data.draw(st.lists(st.sampled_from(history)))))
    # WHEN every delivered event goes through decide
    final = apply_all(list(delivered))
    # THEN the stored state is the last true event's state
    expected = apply_all(history)
    assert final is not None and expected is not None
    assert (final.deleted, final.state) == (expected.deleted, expected.state)


def membership_event(ts: int, *, removed: bool) -> Change:
    return Change(
        kind=EntityKind.MEMBERSHIP,
        name="sensor-1#floor-2",
        origin=Origin(SRC, ts, f"m-{ts}-{removed}", f"mid-{ts}"),
        deleted=removed,
    )


@settings(max_examples=300, deadline=None)
@given(
    flips=st.lists(st.booleans(), min_size=1, max_size=8),
    data=st.data(),
)
def test_unversioned_events_converge_by_timestamp_in_any_order(
    flips: list[bool], data: Any
) -> None:
    # GIVEN a membership added and removed over time (no version: ordered by timestamp)
    history = [membership_event(1000 * (i + 1), removed=removed) for i, removed in enumerate(flips)]
    # WHEN delivered shuffled, with duplicates
    extra = data.draw(st.lists(st.sampled_from(history)))
    final = apply_all(list(data.draw(st.permutations(history + extra))))
    # THEN the last true event decides whether the membership exists
    assert final is not None and final.deleted == flips[-1]


def _corrective(event_id: str, sync: str, ts: int = 2000) -> Change:
    return Change(
        kind=EntityKind.THING,
        name="sensor-1",
        origin=Origin(SRC, ts, event_id, None, 1),
        fields={"thing_type": None, "attributes": {"a": "1"}, "billing_group": None},
        corrective=True,
        sync=sync,
    )


def test_a_replayed_corrective_event_is_a_duplicate() -> None:
    # GIVEN a corrective event applied once (asynchronous Express workflows may run it again,
    # and a replayed plan re-emits it: same event id, same sync token)
    stored = apply_all([thing_event(1, 1000), _corrective("crr-p1-0", "p1")])
    assert stored is not None and stored.sync == "p1"
    # WHEN it arrives again, THEN nothing is written
    decision = decide(stored, _corrective("crr-p1-0", "p1"))
    assert decision.outcome is Outcome.DUPLICATE and decision.item is None


def test_a_new_plan_with_the_same_content_still_writes() -> None:
    # A new plan has a new sync token (and event ids): it must write even if the table agrees.
    stored = apply_all([thing_event(1, 1000), _corrective("crr-p1-0", "p1")])
    assert decide(stored, _corrective("crr-p2-0", "p2")).outcome is Outcome.APPLIED
    # Same event id under another token is not the same event either.
    assert decide(stored, _corrective("crr-p1-0", "p2")).outcome is Outcome.APPLIED


def _membership(ts: int, *, removed: bool, membership_id: str = "m-1") -> Change:
    # As pipeline.kinds.membership parses THING_GROUP_MEMBERSHIP_EVENT: no version, ordered by
    # the event's millisecond timestamp, the membership's ID as the entity ID.
    return Change(
        kind=EntityKind.MEMBERSHIP,
        name="t1|g1",
        origin=Origin(SRC, ts, f"{'rm' if removed else 'add'}-{membership_id}", membership_id),
        deleted=removed,
    )


def test_a_membership_added_and_removed_in_one_millisecond_is_removed() -> None:
    # GIVEN an add and the removal of that membership, stamped the same millisecond
    added, removed = _membership(5_000, removed=False), _membership(5_000, removed=True)
    # THEN the removal ends it, whatever order the two arrive in
    for order in ([added, removed], [removed, added]):
        item = apply_all(order)
        assert item is not None
        assert item.deleted, order


def test_a_tie_does_not_let_a_removal_end_another_membership() -> None:
    # GIVEN the membership re-made (a new ID) in the millisecond the old one was removed
    old_removed = _membership(5_000, removed=True, membership_id="m-1")
    new_added = _membership(5_000, removed=False, membership_id="m-2")
    item = apply_all([new_added, old_removed])
    # THEN the old one's removal does not end the new membership
    assert item is not None
    assert not item.deleted


def _control_plane(ts_ms: int, *, deleted: bool, event_id: str) -> Change:
    # As pipeline.cloudtrail parses a CloudTrail record: eventTime to the second, no version
    # and no registry id.
    return Change(
        kind=EntityKind.AUTHORIZER,
        name="tokens",
        origin=Origin(SRC, ts_ms, event_id),
        fields={} if deleted else {"status": "INACTIVE"},
        deleted=deleted,
    )


def test_a_control_plane_change_then_delete_in_one_second_ends_deleted_in_any_order() -> None:
    # GIVEN an authorizer deactivated and then deleted within one CloudTrail second
    change = _control_plane(7_000, deleted=False, event_id="update")
    delete = _control_plane(7_000, deleted=True, event_id="delete")
    # THEN the delete ends it, whichever arrives first
    for order in ([change, delete], [delete, change]):
        item = apply_all(order)
        assert item is not None and item.deleted, order
