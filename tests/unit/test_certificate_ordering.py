"""The write policy for certificate status (pipeline.state): ordered by the CloudTrail record's
eventTime, a late ACTIVE never overrides a later REVOKED, ties go to the more restrictive status,
and the result does not depend on the order the events arrive in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.model import Change, EntityKind, Item, Origin
from pipeline.state import Outcome, decide

REGION = "us-east-1"
CERT = "c" * 64
PEM = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
T0 = 1_796_119_205_000


def status_change(status: str, ts: int, event_id: str | None = None) -> Change:
    return Change(
        EntityKind.CERTIFICATE,
        CERT,
        Origin(REGION, ts, event_id or f"{status}-{ts}"),
        fields={"status": status},
    )


def apply_all(changes: list[Change], stored: Item | None = None) -> Item | None:
    for change in changes:
        decision = decide(stored, change)
        if decision.item is not None:
            stored = decision.item
    return stored


def registered(status: str = "ACTIVE", ts: int = T0) -> Item:
    change = Change(
        EntityKind.CERTIFICATE,
        CERT,
        Origin(REGION, ts, "register"),
        fields={"status": status, "pem": PEM},
    )
    item = decide(None, change).item
    assert item is not None
    return item


def test_a_late_active_never_overrides_a_later_revoked() -> None:
    # GIVEN an ACTIVE certificate, then a revocation a second later
    stored = apply_all([status_change("REVOKED", T0 + 1000)], registered("ACTIVE"))
    # WHEN an ACTIVE from before the revocation arrives late
    decision = decide(stored, status_change("ACTIVE", T0 + 500))
    # THEN it is stale and the certificate stays revoked, PEM kept
    assert decision.outcome is Outcome.STALE
    assert stored is not None and stored.state == {"status": "REVOKED", "pem": PEM}


def test_within_one_second_the_more_restrictive_status_wins() -> None:
    stored = registered("ACTIVE")
    same_second = T0 + 1000
    revoked_first = apply_all(
        [status_change("REVOKED", same_second), status_change("ACTIVE", same_second)], stored
    )
    active_first = apply_all(
        [status_change("ACTIVE", same_second), status_change("REVOKED", same_second)], stored
    )
    assert revoked_first is not None and active_first is not None
    assert revoked_first.state["status"] == active_first.state["status"] == "REVOKED"
    inactive = apply_all(
        [status_change("INACTIVE", same_second), status_change("ACTIVE", same_second)], stored
    )
    assert inactive is not None and inactive.state["status"] == "INACTIVE"


def test_a_status_change_keeps_the_stored_pem() -> None:
    stored = apply_all([status_change("INACTIVE", T0 + 1000)], registered())
    assert stored is not None and stored.state == {"status": "INACTIVE", "pem": PEM}


def test_a_newer_registration_after_a_delete_wins_over_the_old_revocation() -> None:
    # GIVEN revoked, deleted, then registered again (the same certificate, so the same id)
    deleted = Change(EntityKind.CERTIFICATE, CERT, Origin(REGION, T0 + 2000, "del"), deleted=True)
    again = Change(
        EntityKind.CERTIFICATE,
        CERT,
        Origin(REGION, T0 + 3000, "again"),
        fields={"status": "ACTIVE", "pem": PEM},
    )
    # WHEN the events arrive out of order
    final = apply_all([again, status_change("REVOKED", T0 + 1000), deleted], registered())
    # THEN the latest call decides
    assert final is not None and not final.deleted and final.state["status"] == "ACTIVE"


STATUSES = st.sampled_from(["ACTIVE", "INACTIVE", "REVOKED"])


@given(
    st.lists(st.tuples(STATUSES, st.integers(min_value=1, max_value=6)), min_size=1, max_size=8),
    st.randoms(use_true_random=False),
)
def test_the_outcome_does_not_depend_on_delivery_order(
    calls: list[tuple[str, int]], random: object
) -> None:
    # GIVEN status changes stamped in whole seconds (CloudTrail's resolution), some equal
    changes = [
        status_change(status, T0 + second * 1000, f"e{i}")
        for i, (status, second) in enumerate(calls)
    ]
    shuffled = list(changes)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    # WHEN applied in the order they happened and in any other order
    in_order = apply_all(sorted(changes, key=lambda c: c.origin.timestamp_ms), registered())
    any_order = apply_all(shuffled, registered())
    # THEN both end with the status of the latest second, the most restrictive of that second
    latest = max(second for _, second in calls)
    rank = {"ACTIVE": 0, "INACTIVE": 1, "REVOKED": 2}
    expected = max((s for s, second in calls if second == latest), key=rank.__getitem__)
    assert in_order is not None and any_order is not None
    assert in_order.state["status"] == any_order.state["status"] == expected
