"""A snapshot's key hashes are made when its tables are conformed: the duplicate check uses them,
the diff's first call finds them, and a derived snapshot never keeps a frame's stale ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import reconcile.keys
import reconcile.labels
from reconcile.diff import diff_snapshots
from reconcile.keys import key_hashes
from reconcile.snapshot import SCHEMAS, SORT_KEYS, Snapshot
from reconcile.sweep import Sweep

SRC, DST = "us-east-1", "eu-west-1"


def _known(snapshot: Snapshot) -> dict[str, dict[str, np.ndarray]]:
    """The key hashes the snapshot holds before anyone asked for them (``column_hashes``'
    cache), each checked to be its frame's own, row for row."""
    known: dict[str, dict[str, np.ndarray]] = dict(snapshot.__dict__.get("_column_hashes", {}))
    for table, hashes in known.items():
        fresh = key_hashes(snapshot.frames[table], SORT_KEYS[table])
        assert hashes.keys() == fresh.keys()
        for column, values in hashes.items():
            assert np.array_equal(values, fresh[column]), (table, column)
    return known


def _table(table: str, **columns: list[Any]) -> pd.DataFrame:
    """A table's frame in the order given: ``columns``, the others' cells missing."""
    rows = len(next(iter(columns.values())))
    return pd.DataFrame({c: columns.get(c, [None] * rows) for c in SCHEMAS[table]})


def _things(*names: str) -> pd.DataFrame:
    return _table("things", name=list(names))


def _links(*pairs: tuple[str, str]) -> pd.DataFrame:
    return _table("memberships", thing=[t for t, _ in pairs], group=[g for _, g in pairs])


def _colliding(strings: Any) -> np.ndarray:
    """Every string the same hash, as distinct keys sharing a 64-bit hash would."""
    return np.zeros(len(strings), dtype=np.uint64)


def test_a_snapshot_holds_its_key_hashes_before_the_first_diff() -> None:
    # GIVEN tables out of key order, made a snapshot of as loading or listing does
    snapshot = Snapshot(
        SRC,
        1,
        things=_things("c", "a", "b"),
        memberships=_links(("t2", "g1"), ("t1", "g2"), ("t1", "g1")),
    )
    records = Snapshot.from_records(SRC, 1, things=[{"name": "z"}, {"name": "y"}])
    # THEN their key hashes are known already, in the sorted tables' order
    assert {"things", "memberships"} <= _known(snapshot).keys()
    assert "things" in _known(records)
    # AND the duplicate check made with them refuses a repeated (thing, group), not a swapped one
    with pytest.raises(ValueError, match=r"memberships: duplicate key \['t', 'g'\]"):
        Snapshot(SRC, 1, memberships=_links(("t", "g"), ("t", "h"), ("t", "g")))
    assert len(Snapshot(SRC, 1, memberships=_links(("t", "g"), ("g", "t"))).memberships) == 2
    # AND the diff's first call uses them as before
    report = diff_snapshots(snapshot, records, clock=lambda: 0)
    assert sorted((d.kind, d.name) for d in report.drifts if d.entity.value == "thing") == [
        ("extra", "y"),
        ("extra", "z"),
        ("missing", "a"),
        ("missing", "b"),
        ("missing", "c"),
    ]


def test_a_listed_snapshot_holds_its_key_hashes(
    source_iot: Any, seed: Callable[..., None], snapshot_of: Callable[..., Snapshot]
) -> None:
    # GIVEN a region read as the nightly job reads it (take_snapshot)
    seed(source_iot)
    snapshot = snapshot_of(source_iot, SRC)
    # THEN the tables it listed come with their key hashes
    assert len(snapshot.things) and len(snapshot.memberships)
    assert {"things", "memberships", "thing_groups"} <= _known(snapshot).keys()


def test_keys_sharing_a_hash_are_told_apart_and_a_true_duplicate_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN every key hashing alike at construction
    monkeypatch.setattr(reconcile.keys, "string_hashes", _colliding)
    monkeypatch.setattr(reconcile.labels, "string_hashes", _colliding)  # a group's text
    # THEN distinct keys are accepted, and the snapshot holds the hashes it was made with
    snapshot = Snapshot(
        SRC, 1, things=_things("b", "a", "c"), memberships=_links(("t", "g1"), ("t", "g2"))
    )
    assert not _known(snapshot)["things"]["name"].any()
    assert list(snapshot.things["name"]) == ["a", "b", "c"]
    # AND a true duplicate is refused, naming the first row that repeats a key (as before)
    with pytest.raises(ValueError, match=r"things: duplicate key \['a'\]"):
        Snapshot(SRC, 1, things=_things("b", "a", "c", "a", "b"))
    with pytest.raises(ValueError, match=r"memberships: duplicate key \['t', 'g2'\]"):
        Snapshot(SRC, 1, memberships=_links(("t", "g2"), ("u", "g2"), ("t", "g1"), ("t", "g2")))
    # AND, hashes as they are, the diff of snapshots made with colliding ones is exact
    monkeypatch.undo()
    other = Snapshot(DST, 1, things=_things("a", "d"), memberships=_links(("t", "g2")))
    report = diff_snapshots(snapshot, other, clock=lambda: 0)
    assert sorted((d.kind, d.name) for d in report.drifts) == [
        ("extra", "d"),
        ("missing", "b"),
        ("missing", "c"),
        ("missing", "t#g1"),
    ]


def test_a_derived_snapshot_holds_its_own_frames_hashes() -> None:
    links = [f"device-{i}#cert-{i}" for i in range(12)]
    snapshot = Snapshot(
        SRC,
        1,
        things=_things("a", "b"),
        memberships=_links(("a", "g")),
        thing_principals=_table("thing_principals", name=links[::-1], exclusive=[False] * 12),
    )
    # WHEN a table is replaced: its hashes are the new frame's, the others kept
    replaced = snapshot.with_table("things", _things("d", "c", "b"))
    known = _known(replaced)
    assert {"things", "memberships", "thing_principals"} <= known.keys()
    assert known["memberships"] is _known(snapshot)["memberships"]
    # WHEN the per-device links are narrowed to a slice: the slice's rows' hashes
    swept = snapshot.swept(Sweep(1, 3))
    assert 0 < len(swept.thing_principals) < len(links)
    assert "thing_principals" in _known(swept)
    # AND the diffs of the derived snapshots are those of snapshots made afresh
    for derived in (replaced, swept):
        fresh = Snapshot(SRC, 1, derived.frames, sweep=derived.sweep)
        assert diff_snapshots(derived, snapshot.swept(derived.sweep), clock=lambda: 0) == (
            diff_snapshots(fresh, snapshot.swept(derived.sweep), clock=lambda: 0)
        )
