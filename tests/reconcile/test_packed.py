"""Bulky text columns (``pipeline.kinds.base.PACKED``: a thing's attributes) are held packed
(``reconcile.packed``): compressed in blocks, a digest per cell. Nothing but memory shows it:
the cells read back, fingerprints, saved snapshots and the diff's findings are the text's."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.model import EntityKind
from reconcile import packed
from reconcile.diff import diff_snapshots
from reconcile.hashing import digest_strings
from reconcile.packed import Packed, digest_packed, is_packed, pack, packed_differ, plain
from reconcile.snapshot import Snapshot, desired_fields

SRC, DST = "us-east-1", "eu-west-1"
TEXT = ['{"a":"1"}', None, "", '{"b":"ü"}', '{"a":"1"}', "x" * 300, None, '{"c":"3"}']


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 3 rows, so a column of a few cells spans several (a block is 65,536 rows)."""
    monkeypatch.setattr(packed, "BLOCK_ROWS", 3)


def column(values: list[str | None]) -> Packed:
    return Packed.of_text(pa.array(values, type=pa.large_string()))


@pytest.mark.usefixtures("small_blocks")
def test_cells_read_back_as_the_text_in_any_order() -> None:
    cells = column(TEXT)
    assert len(cells._blocks) == 3
    assert [None if v is pd.NA else v for v in cells] == TEXT
    positions = np.array([7, 0, 5, 1, 5, 3])
    assert cells.cells_at(positions) == [TEXT[i] for i in positions]
    assert cells.cells_at(np.array([], dtype=np.int64)) == []
    assert cells[3] == TEXT[3] and cells[1] is pd.NA and cells[-1] == TEXT[-1]
    assert cells.isna().tolist() == [v is None for v in TEXT]
    assert cells.text().to_pylist() == TEXT


@pytest.mark.usefixtures("small_blocks")
def test_digests_tell_equal_cells_from_different_ones() -> None:
    cells = column(TEXT)
    digests = cells.digests()
    assert (digests[0] == digests[4]).all()  # equal text, equal digest
    assert not (digests[0] == digests[7]).all()
    assert not (digests[1] == digests[2]).all()  # missing is not empty
    expected = hashlib.blake2b(TEXT[3].encode(), digest_size=16).digest()  # type: ignore[union-attr]
    assert digests[3].astype("<u8").tobytes() == expected
    other = column(['{"a":"1"}', None, "", '{"b":"u"}'])
    differ = packed_differ(pd.Series(cells), pd.Series(other), (np.arange(4), np.arange(4)))
    assert differ.tolist() == [False, False, False, True]


@pytest.mark.usefixtures("small_blocks")
def test_fingerprint_digest_is_the_texts() -> None:
    """``digest_packed`` feeds what ``digest_strings`` feeds for the same text (saved snapshots
    keep their fingerprints)."""
    theirs, ours = hashlib.sha256(), hashlib.sha256()
    digest_strings(theirs, pa.array(TEXT, type=pa.large_string()))
    digest_packed(ours, pd.Series(column(TEXT)))
    assert ours.hexdigest() == theirs.hexdigest()


def test_immutable_and_pandas_operations_see_text() -> None:
    series = pack(pd.Series(TEXT, dtype="string"))
    assert is_packed(series)
    with pytest.raises(TypeError, match="immutable"):
        series.array[0] = "y"
    assert series.loc[series.notna()].tolist() == [v for v in TEXT if v is not None]
    taken = series.array.take([2, -1], allow_fill=True)
    assert [None if v is pd.NA else v for v in taken] == ["", None]
    frame = pd.DataFrame({"attributes": series})
    assert plain(frame)["attributes"].dtype == pd.StringDtype("pyarrow")
    assert pd.concat([frame, frame])["attributes"].isna().sum() == 4


def test_packed_text_is_smaller_than_the_text() -> None:
    text = [
        f'{{"firmware":"1.{i % 7}.0","serial":"SN-{i:08d}","site":"plant-{i % 5}"}}'
        for i in range(50_000)
    ]
    strings = pa.array(text, type=pa.large_string())
    cells = Packed.of_text(strings)
    assert cells.nbytes < strings.nbytes / 2


def things(attributes: dict[str, dict[str, str]]) -> list[dict[str, object]]:
    return [{"name": name, "attributes": attrs} for name, attrs in attributes.items()]


def test_snapshot_holds_attributes_packed_and_saves_them_as_text(tmp_path: Path) -> None:
    snapshot = Snapshot.from_records(
        SRC, 1, things=things({"t2": {"b": "2"}, "t1": {"a": "1"}, "t0": {}})
    )
    assert is_packed(snapshot.things["attributes"])
    assert snapshot.things["name"].tolist() == ["t0", "t1", "t2"]  # sorted, then packed
    row = snapshot.things.iloc[1]
    assert desired_fields(EntityKind.THING, row)["attributes"] == {"a": "1"}
    snapshot.save(tmp_path)
    saved = pq.read_schema(tmp_path / "things.parquet")
    assert saved.field("attributes").type in (pa.string(), pa.large_string())
    loaded = Snapshot.load(tmp_path)
    assert is_packed(loaded.things["attributes"])
    assert loaded.fingerprint() == snapshot.fingerprint()
    assert loaded.things.to_dict("records") == snapshot.things.to_dict("records")


def test_fingerprint_of_a_packed_snapshot_is_the_texts() -> None:
    """The fingerprint digests the attributes' text: a snapshot made of the same rows with the
    column unpacked (as before packing) digests the same."""
    snapshot = Snapshot.from_records(
        SRC, 1, things=things({"t1": {"a": "1"}, "t0": {"ü": "é"}, "t2": {}})
    )
    unpacked = dict(snapshot.frames)
    unpacked["things"] = plain(snapshot.things)
    reference = hashlib.sha256()
    digest_strings(reference, pa.array(unpacked["things"]["attributes"].array))
    ours = hashlib.sha256()
    digest_packed(ours, snapshot.things["attributes"])
    assert ours.hexdigest() == reference.hexdigest()


@pytest.mark.usefixtures("small_blocks")
def test_diff_finds_changed_attributes_through_digests_and_explains_them() -> None:
    source = {f"t{i}": {"a": str(i)} for i in range(10)}
    target = {**source, "t4": {"a": "x"}, "t7": {"a": "7", "b": "new"}}
    del target["t2"]
    target["t99"] = {"z": "1"}
    report = diff_snapshots(
        Snapshot.from_records(SRC, 1, things=things(source)),
        Snapshot.from_records(DST, 1, things=things(target)),
        clock=lambda: 0,
    )
    found = {(d.name, d.kind): d.details for d in report.drifts}
    assert found == {
        ("t2", "missing"): {
            "attributes": {"source": {"a": "2"}, "target": None},
            "thing_type": {"source": None, "target": None},
            "billing_group": {"source": None, "target": None},
        },
        ("t99", "extra"): {
            "attributes": {"source": None, "target": {"z": "1"}},
            "thing_type": {"source": None, "target": None},
            "billing_group": {"source": None, "target": None},
        },
        ("t4", "changed"): {"attributes.a": {"source": "4", "target": "x"}},
        ("t7", "changed"): {"attributes.b": {"source": None, "target": "new"}},
    }
    changed = next(d for d in report.drifts if d.name == "t4")
    assert changed.rows is not None and changed.rows.destination is not None
    assert changed.rows.source["attributes"] == '{"a":"4"}'
    assert changed.rows.destination["attributes"] == '{"a":"x"}'


@pytest.mark.usefixtures("small_blocks")
def test_pandas_indexing_and_filling_as_on_text() -> None:
    """What a pandas user of a snapshot's frame may do, as a text column answers it (a second
    reviewer's findings: wrapped indices, ignored fill values, stepped slices)."""
    cells = column(["a", "b", "c", None, "e"])
    series = pd.Series(cells)
    with pytest.raises(IndexError):
        cells.take([5])
    with pytest.raises(IndexError):
        cells.take([-6])
    with pytest.raises(IndexError):
        cells.cells_at(np.array([5]))
    assert list(cells.take([-1, 0])) == ["e", "a"]
    assert series.reindex([0, 9], fill_value="").tolist() == ["a", ""]
    assert series.iloc[::-2].tolist() == ["e", "c", "a"]
    assert list(cells[np.array([-1, 1])]) == ["e", "b"]
    assert series.fillna("z").tolist() == ["a", "b", "c", "z", "e"]
    assert series.where(series != "b", "q").tolist()[:3] == ["a", "q", "c"]
    assert cells.cells_at(np.array([4, 0], dtype=np.uint64)) == ["e", "a"]
    assert repr(cells.dtype) == "PackedDtype()"
