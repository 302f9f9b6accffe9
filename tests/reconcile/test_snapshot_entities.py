"""Reconciliation's per-kind code is held to the entity table (``pipeline.model.ENTITIES``): a
kind added to the table without its snapshot table, listing family or state-field reader fails
here, by name, instead of being left out of snapshots and diffs."""

from __future__ import annotations

import pytest

from pipeline.model import ENTITIES, EntityKind, EntitySpec
from reconcile.snapshot import FAMILIES, SCHEMAS, SORT_KEYS, Snapshot, desired_fields

_PER_REGION = {"version"}  # kept for information, never compared (pipeline/model.py)


def test_every_kind_has_a_snapshot_table_and_nothing_else_does() -> None:
    assert set(SCHEMAS) == {spec.frame for spec in ENTITIES.values()}
    assert set(SORT_KEYS) == set(SCHEMAS)
    assert set(Snapshot.__dataclass_fields__) >= set(SCHEMAS)


@pytest.mark.parametrize("spec", ENTITIES.values(), ids=lambda spec: spec.kind.value)
def test_a_snapshot_table_holds_the_kinds_key_and_state_fields(spec: EntitySpec) -> None:
    columns = list(SCHEMAS[spec.frame])
    assert columns[: len(spec.frame_key)] == list(spec.frame_key)
    assert set(columns) - set(spec.frame_key) - _PER_REGION == set(spec.state_fields)


@pytest.mark.parametrize("spec", ENTITIES.values(), ids=lambda spec: spec.kind.value)
def test_a_snapshot_row_reads_back_as_exactly_the_state_fields(spec: EntitySpec) -> None:
    snapshot = Snapshot.from_records(
        "r", 0, **{spec.frame: [{"name": "n", "thing": "t", "group": "g"}]}
    )
    row = getattr(snapshot, spec.frame).iloc[0]
    assert tuple(desired_fields(spec.kind, row)) == spec.state_fields


def test_every_kind_is_listed_by_a_snapshot_family() -> None:
    assert set(FAMILIES) == {kind.value for kind in EntityKind}
