"""Persist refuses timestamps from the future, once, where an event is admitted (the handler,
``pipeline.ingest.admit``), and orders one a little ahead at its own clock plus the tolerance
(counted), on moto."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from pipeline import persist
from pipeline.ingest import admit, persist_change
from pipeline.kinds.links import membership_name
from pipeline.model import EntityKind
from pipeline.state import (
    MAX_CLOCK_SKEW_MS,
    ORDERING_TOLERANCE_MS,
    FutureTimestampError,
    Outcome,
)
from tests.pipeline.conftest import SRC, Pipeline, fixture_event

NOW = 1_764_000_000_000
DAY_MS = 86_400_000
MEMBER = membership_name("MyThing", "MyChildThingGroup")


def membership(op: str, ts: int) -> dict[str, Any]:
    event = fixture_event("thing_group_membership_event")
    event.update(operation=op, timestamp=ts, eventId=f"m-{op}-{ts}")
    return event


def test_a_future_event_is_refused_and_later_real_changes_still_apply(
    pipeline: Pipeline,
) -> None:
    # GIVEN a membership event stamped a day ahead (memberships are ordered by timestamp, so
    # once stored it would make every real change until then "stale")
    future = membership("ADDED", NOW + DAY_MS)
    # WHEN it is admitted, THEN it is refused with the reason, and nothing is written
    with pytest.raises(FutureTimestampError, match="in the future") as refused:
        admit(future, region=SRC, now=NOW)
    assert refused.value.timestamp_ms == NOW + DAY_MS
    assert pipeline.table.get(EntityKind.MEMBERSHIP, MEMBER) is None
    # AND the real changes that follow are applied
    added = admit(membership("ADDED", NOW), region=SRC, now=NOW)
    removed = admit(membership("REMOVED", NOW + 1000), region=SRC, now=NOW + 1000)
    assert persist_change(pipeline.table, added).outcome is Outcome.APPLIED
    assert persist_change(pipeline.table, removed).outcome is Outcome.APPLIED


def test_a_clock_a_little_ahead_is_within_the_skew(pipeline: Pipeline) -> None:
    ahead = admit(membership("ADDED", NOW + MAX_CLOCK_SKEW_MS), region=SRC, now=NOW)
    assert persist_change(pipeline.table, ahead).outcome is Outcome.APPLIED
    with pytest.raises(FutureTimestampError):
        admit(membership("REMOVED", NOW + MAX_CLOCK_SKEW_MS + 1), region=SRC, now=NOW)


def test_an_event_stamped_ahead_does_not_shadow_the_real_change_after_it(
    pipeline: Pipeline,
) -> None:
    # GIVEN a membership added by an event stamped 4 minutes ahead of persist's clock (admitted:
    # within the allowed skew)
    ahead = admit(membership("ADDED", NOW + 4 * 60_000), region=SRC, now=NOW)
    assert persist_change(pipeline.table, ahead).outcome is Outcome.APPLIED
    # WHEN the thing is removed from the group 2 s later (a correct clock's stamp)
    removed = admit(membership("REMOVED", NOW + 2_000), region=SRC, now=NOW + 2_000)
    # THEN the removal is applied (it was dropped as stale: the thing stayed a member for the
    # 4 minutes, and in the destination until the nightly run)
    assert persist_change(pipeline.table, removed).outcome is Outcome.APPLIED
    stored = pipeline.table.get(EntityKind.MEMBERSHIP, MEMBER)
    assert stored is not None and stored.deleted


def emf_values(output: str, metric: str) -> list[Any]:
    """The values of ``metric`` in the EMF lines powertools printed."""
    values = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            if metric in document:
                value = document[metric]
                values += value if isinstance(value, list) else [value]
    return values


def test_the_handler_refuses_a_future_event_with_a_metric(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    real_now = time.time_ns() // 1_000_000
    # GIVEN a corrective event stamped a day ahead of the wall clock
    with pytest.raises(FutureTimestampError):
        persist.lambda_handler(membership("ADDED", real_now + DAY_MS), None)
    # THEN the refusal is counted where an alarm can see it, and nothing is written
    assert emf_values(capsys.readouterr().out, persist.FUTURE_TIMESTAMP_METRIC) == [1.0]
    assert pipeline.table.get(EntityKind.MEMBERSHIP, MEMBER) is None
    # AND an ordinary event is persisted, counting zero refusals
    result = persist.lambda_handler(membership("ADDED", real_now), None)
    assert result["outcome"] == "applied"
    assert emf_values(capsys.readouterr().out, persist.FUTURE_TIMESTAMP_METRIC) == [0.0]


def test_the_handler_counts_an_event_whose_ordering_time_it_capped(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    before = time.time_ns() // 1_000_000
    # GIVEN an event stamped 2 minutes ahead of the wall clock: persisted, capped, counted
    result = persist.lambda_handler(membership("ADDED", before + 120_000), None)
    after = time.time_ns() // 1_000_000
    assert result["outcome"] == "applied"
    assert emf_values(capsys.readouterr().out, persist.FUTURE_TIMESTAMP_CAPPED_METRIC) == [1.0]
    # THEN it is ordered at persist's clock plus the tolerance, not at its stamp
    stored = pipeline.table.get(EntityKind.MEMBERSHIP, MEMBER)
    assert stored is not None
    assert before + ORDERING_TOLERANCE_MS <= stored.event_ts <= after + ORDERING_TOLERANCE_MS
    # AND an event stamped by a correct clock counts zero capped
    persist.lambda_handler(membership("REMOVED", time.time_ns() // 1_000_000), None)
    assert emf_values(capsys.readouterr().out, persist.FUTURE_TIMESTAMP_CAPPED_METRIC) == [0.0]
