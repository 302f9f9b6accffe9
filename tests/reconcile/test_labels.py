"""Low-cardinality text columns (``pipeline.kinds.base.label``) are held dictionary-encoded
(``reconcile.labels``), and nothing but memory shows it: fingerprints, saved snapshots, row
order and the diff's findings are the text's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.model import EntityKind
from reconcile.diff import diff_snapshots
from reconcile.hashing import string_hashes
from reconcile.labels import label_hashes, labels_differ
from reconcile.pairs import cells_at
from reconcile.snapshot import SCHEMAS, Snapshot, desired_fields

SRC, DST = "us-east-1", "eu-west-1"
ENCODED = {
    "things": {"thing_type", "billing_group"},
    "memberships": {"group"},
    "certificates": {"status"},
    "ca_certificates": {"status"},
    "authorizers": {"status"},
}


def varied() -> Snapshot:
    """Every encoded column, with missing values, unsorted input and non-ASCII text."""
    return Snapshot.from_records(
        SRC,
        1,
        things=[
            {
                "name": "t3",
                "thing_type": "sensor",
                "attributes": {"a": "1"},
                "billing_group": "fleet",
            },
            {"name": "t1", "thing_type": "gateway", "billing_group": None},
            {"name": "t2", "thing_type": None, "billing_group": "fleet"},
            {"name": "t0", "thing_type": "sensor-ü", "billing_group": "b"},
        ],
        memberships=[
            {"thing": "t1", "group": "floor-2"},
            {"thing": "t1", "group": "floor-1"},
            {"thing": "t0", "group": "floor-2"},
            {"thing": "t3", "group": "a"},
        ],
        certificates=[
            {"name": "c1", "status": "ACTIVE"},
            {"name": "c0", "status": "REVOKED"},
            {"name": "c2", "status": "ACTIVE"},
        ],
        ca_certificates=[{"name": "ca1", "status": "INACTIVE"}],
        authorizers=[{"name": "au", "status": "ACTIVE"}],
    )


# ``varied().fingerprint()`` computed on main at 115e09c, before any column was encoded: the
# fingerprint digests the text, so saved snapshots' manifests keep matching.
PINNED = "24a4badb271678dc5c0c7c0959c795a4ab0cd3b031a0695c206ba810e44f6e8f"


def encoded(frame: pd.DataFrame) -> set[str]:
    return {c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}


def test_low_cardinality_columns_are_dictionary_encoded_and_keys_are_not() -> None:
    snapshot = varied()
    assert {t: encoded(f) for t, f in snapshot.frames.items() if encoded(f)} == ENCODED
    assert snapshot.things["thing_type"].cat.categories.tolist() == [
        "gateway",
        "sensor",
        "sensor-ü",
    ]
    assert snapshot.things["thing_type"].cat.codes.tolist() == [2, 0, -1, 1]
    # empty tables too: the dtypes are the schema's
    empty = Snapshot.from_records(SRC, 1)
    for table, schema in SCHEMAS.items():
        assert encoded(getattr(empty, table)) == ENCODED.get(table, set())
        assert {c: str(t) for c, t in getattr(empty, table).dtypes.items()} == schema


def test_the_fingerprint_is_the_texts_as_before_encoding() -> None:
    assert varied().fingerprint() == PINNED


def test_rows_sort_by_text_whatever_order_the_categories_come_in() -> None:
    # GIVEN memberships whose group categories come in reverse order (as a caller may give)
    links = pd.DataFrame(
        {
            "thing": pd.Series(["t1", "t1", "t0", "t3"], dtype="string"),
            "group": pd.Categorical(
                ["floor-2", "floor-1", "floor-2", "a"], categories=["floor-2", "floor-1", "a"]
            ),
        }
    )
    given = Snapshot(SRC, 1, memberships=links)
    # THEN they are held, sorted and digested as the same text given plainly is
    plain = Snapshot(SRC, 1, memberships=links.astype({"group": "string"}))
    assert given.memberships["group"].cat.categories.tolist() == ["a", "floor-1", "floor-2"]
    assert given.memberships.to_dict("records") == plain.memberships.to_dict("records")
    assert given.memberships.astype("string").equals(plain.memberships.astype("string"))
    assert given.fingerprint() == plain.fingerprint()


def test_saved_snapshots_round_trip_and_plain_text_files_still_load(tmp_path: Path) -> None:
    snapshot = varied()
    snapshot.save(tmp_path)
    loaded = Snapshot.load(tmp_path)  # checks the recorded fingerprint
    assert loaded.fingerprint() == PINNED
    for table in SCHEMAS:
        pd.testing.assert_frame_equal(getattr(loaded, table), getattr(snapshot, table))
    # A file saved before the encoding holds plain text: it loads, encoded, same fingerprint.
    for table, columns in ENCODED.items():
        plain = getattr(snapshot, table).astype({column: "string" for column in columns})
        plain.to_parquet(tmp_path / f"{table}.parquet", index=False)
    old = Snapshot.load(tmp_path)
    assert {t: encoded(f) for t, f in old.frames.items() if encoded(f)} == ENCODED
    for table in SCHEMAS:
        pd.testing.assert_frame_equal(getattr(old, table), getattr(snapshot, table))


def things(*rows: tuple[str, str | None]) -> list[dict[str, Any]]:
    return [{"name": name, "thing_type": kind} for name, kind in rows]


def test_columns_with_different_dictionaries_compare_by_value() -> None:
    # GIVEN types whose dictionaries differ: the source knows a, b, c; the destination b, c, d
    source = Snapshot.from_records(
        SRC,
        1,
        things=things(
            ("same", "b"), ("changed", "a"), ("lost", "c"), ("gained", None), ("hidden", "a")
        ),
    )
    target = Snapshot.from_records(
        DST,
        1,
        things=things(
            ("same", "b"), ("changed", "d"), ("lost", None), ("gained", "c"), ("hidden", "b")
        ),
    )
    assert source.things["thing_type"].cat.categories.tolist() == ["a", "b", "c"]
    assert target.things["thing_type"].cat.categories.tolist() == ["b", "c", "d"]

    report = diff_snapshots(source, target)

    # THEN equal values (b: code 1 on one side, 0 on the other) are no drift; a changed value
    # (a to b: code 0 on both sides), a value lost and a value gained are, explained as text
    assert {d.name: d.details for d in report.drifts} == {
        "changed": {"thing_type": {"source": "a", "target": "d"}},
        "hidden": {"thing_type": {"source": "a", "target": "b"}},
        "gained": {"thing_type": {"source": None, "target": "c"}},
        "lost": {"thing_type": {"source": "c", "target": None}},
    }
    assert {type(d.details["thing_type"]["source"]) for d in report.drifts} == {str, type(None)}
    (changed,) = (d for d in report.drifts if d.name == "changed")
    assert changed.rows is not None
    assert desired_fields(EntityKind.THING, changed.rows.source)["thing_type"] == "a"


def test_memberships_join_on_groups_of_different_dictionaries() -> None:
    # GIVEN the same links, the destination knowing one more group (so other codes)
    links = [{"thing": "t1", "group": "g2"}, {"thing": "t2", "group": "g3"}]
    source = Snapshot.from_records(SRC, 1, memberships=[*links, {"thing": "t1", "group": "g3"}])
    target = Snapshot.from_records(DST, 1, memberships=[*links, {"thing": "t3", "group": "g1"}])
    assert source.memberships["group"].cat.categories.tolist() == ["g2", "g3"]
    assert target.memberships["group"].cat.categories.tolist() == ["g1", "g2", "g3"]

    for buckets in (1, 3):  # a sharded diff names links by their text too
        merged = [
            (d.kind, d.thing, d.group)
            for shard in range(buckets)
            for d in diff_snapshots(
                source, target, buckets=buckets, bucket_range=range(shard, shard + 1)
            ).drifts
        ]
        assert sorted(merged) == [("extra", "t3", "g1"), ("missing", "t1", "g3")]


def test_codes_compare_through_unsorted_dictionaries_and_cells_read_as_text() -> None:
    left = pd.Series(pd.Categorical(["x", None, "y", "z", "y"], categories=["z", "y", "x"]))
    right = pd.Series(pd.Categorical(["x", None, "x", None, "y"], categories=["y", "x", "w"]))
    pairs = (np.arange(5), np.arange(5))
    assert labels_differ(left, right, pairs).tolist() == [False, False, True, True, False]
    # crossed pairs: left's missing value against right's, left's y against right's y
    crossed = (np.array([1, 2, 0]), np.array([3, 4, 4]))
    assert labels_differ(left, right, crossed).tolist() == [False, False, True]
    frame = pd.DataFrame({"group": left})
    assert cells_at(frame, np.array([3, 1, 0]), ("group",)) == {"group": ["z", None, "x"]}


def test_a_label_column_hashes_as_its_text() -> None:
    # A membership's group is a key the diff joins on: its hash is the text's, per value.
    text = pd.Series(["g2", None, "g1", "g2"], dtype="string")
    encoded = text.astype("category")
    expected = string_hashes(pa.array(text.array).cast(pa.large_string()))
    assert list(label_hashes(encoded)) == list(expected)
