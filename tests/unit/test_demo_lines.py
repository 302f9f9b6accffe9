"""The demo's step-3 line says why its split varies between runs (issue 22 item 15)."""

from __future__ import annotations

from collections import Counter

from sandbox.demo import VARYING_SPLIT, streamed_line
from sandbox.emulation import DrainReport


def drained(**persisted: int) -> DrainReport:
    total = sum(persisted.values())
    return DrainReport(
        events_delivered=total,
        executions=Counter(SUCCEEDED=total),
        persisted=Counter(persisted),
        records_applied=persisted.get("applied", 0) + persisted.get("unchanged", 0),
    )


def test_a_split_that_can_vary_says_why() -> None:
    line = streamed_line(drained(applied=34, unchanged=4, stale=2))

    first, why = line.split("\n")
    assert first == (
        "3. live changes streamed: 40 events → 40 SUCCEEDED executions, "
        "persisted: 34 applied, 2 stale, 4 unchanged → 38 records applied"
    )
    assert why == VARYING_SPLIT
    assert "no set order" in why and "ends the same" in why
    assert "{" not in line  # no Python dict shown to a person


def test_a_split_that_cannot_vary_says_nothing_more() -> None:
    assert "\n" not in streamed_line(drained(applied=40))
