"""Pairing the two sides of a snapshot table, for the diff (``reconcile.diff``).

A side is the rows of a table taking part (a shard's, or all) with a 64-bit hash of their key
(``Snapshot.column_hashes``). ``join`` pairs the sides' rows by those hashes and checks every
pair on the key values themselves, redoing the join on the values should two keys ever share a
hash; ``differing`` compares paired rows cell by cell with Arrow's kernels (a step of pairs at a
time, so the cells compared take bounded memory); ``values`` reads cells at positions as plain
Python values. No Python-level work is done per row that takes part: only per row returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reconcile.hashing import combine_hashes
from reconcile.labels import is_label, label_values, labels_differ
from reconcile.packed import is_packed, packed_differ
from reconcile.snapshot import Snapshot


@dataclass(frozen=True)
class Side:
    """One side of a table as the diff sees it: the rows taking part and their key hashes."""

    frame: pd.DataFrame
    # Positions in ``frame`` of the rows taking part (the shard); ``None``: every row, in
    # order (no array of every position, nor a copy of one per lookup).
    rows: np.ndarray | None
    key: np.ndarray  # uint64 hash of the key columns, one per row taken part

    def __len__(self) -> int:
        return len(self.key)

    def positions(self, indices: np.ndarray) -> np.ndarray:
        """Positions in ``frame`` of the rows taking part at ``indices``."""
        return indices if self.rows is None else self.rows[indices]


@dataclass(frozen=True)
class Join:
    """An outer join of two sides on their key, as indices into each side's ``rows``."""

    source_only: np.ndarray
    destination_only: np.ndarray
    both_source: np.ndarray  # aligned pairs of rows with the same key
    both_destination: np.ndarray


def side_of(
    snapshot: Snapshot, table: str, rows: np.ndarray | None, key_columns: tuple[str, ...]
) -> Side:
    """``rows`` (``None``: all) of ``table`` with their key hashes (``Snapshot.column_hashes``)."""
    frame = getattr(snapshot, table)
    hashes = snapshot.column_hashes(table)
    picked = [hashes[c] if rows is None else hashes[c][rows] for c in key_columns]
    count = len(frame) if rows is None else len(rows)
    key = picked[0] if len(key_columns) == 1 else combine_hashes(picked, count)
    return Side(frame, rows, key)


def arrow(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    """A column as Arrow (zero-copy for pyarrow-backed and masked columns; a categorical as a
    dictionary array, whose ``take`` and ``to_pylist`` give its text)."""
    if hasattr(series.array, "__arrow_array__") or is_label(series):
        return pa.array(series.array)
    return pa.array(series.to_numpy(), from_pandas=True)


def take(column: pa.Array | pa.ChunkedArray, positions: np.ndarray) -> pa.Array:
    """``column.take(positions)``, chunk by chunk: Arrow's take of a chunked array first
    concatenates every chunk (a copy of the whole column per call; columns read from Parquet
    come in chunks)."""
    if isinstance(column, pa.Array):
        return column.take(positions)
    if column.num_chunks == 1:
        return column.chunk(0).take(positions)
    bounds = np.cumsum([0, *(len(chunk) for chunk in column.chunks)])
    which = np.searchsorted(bounds, positions, side="right") - 1
    ordered = bool(np.all(which[1:] >= which[:-1]))  # the diff's positions are, mostly
    order = None if ordered else np.argsort(which, kind="stable")
    grouped, chunks = (positions, which) if order is None else (positions[order], which[order])
    starts = np.searchsorted(chunks, np.arange(column.num_chunks + 1))
    parts = [
        column.chunk(k).take(grouped[starts[k] : starts[k + 1]] - bounds[k])
        for k in range(column.num_chunks)
        if starts[k + 1] > starts[k]
    ]
    taken = pa.concat_arrays(parts) if parts else column.chunk(0).take(positions[:0])
    if order is not None:  # back to the order asked for
        taken = taken.take(np.argsort(order))
    return taken


def same_cells(
    left: pa.Array | pa.ChunkedArray, right: pa.Array | pa.ChunkedArray
) -> pa.Array | pa.ChunkedArray:
    """Whether each pair of cells holds the same value (two missing values are the same)."""
    equal = pc.fill_null(pc.equal(left, right), False)
    if not left.null_count and not right.null_count:
        return equal
    return pc.or_(equal, pc.and_(left.is_null(), right.is_null()))


# Pairs compared per step: bounds the memory the compared cells take at once.
_COMPARE_STEP = 1 << 15


def _chunks(column: pa.Array | pa.ChunkedArray) -> tuple[list[pa.Array], np.ndarray]:
    """A column's chunks and where each starts (and, last, its length)."""
    chunks = [column] if isinstance(column, pa.Array) else list(column.chunks)
    return chunks, np.cumsum([0, *(len(chunk) for chunk in chunks)])


def _steps(
    rows: tuple[np.ndarray, np.ndarray], bounds: tuple[np.ndarray, np.ndarray]
) -> list[tuple[int, int]] | None:
    """Steps of at most ``_COMPARE_STEP`` pairs, each within one chunk on either side; ``None``
    unless both sides' positions increase (the diff's do: snapshot tables are sorted by key,
    so the paired rows come in the same order on both sides)."""
    cuts = [np.arange(0, len(rows[0]), _COMPARE_STEP), np.array([len(rows[0])])]
    for positions, starts in zip(rows, bounds, strict=True):
        if len(positions) > 1 and not bool(np.all(positions[1:] > positions[:-1])):
            return None
        cuts.append(np.searchsorted(positions, starts[1:-1]))
    edges = np.unique(np.concatenate(cuts)).tolist()
    return [(start, stop) for start, stop in pairwise(edges) if stop > start]


def differing(
    source: pd.DataFrame,
    destination: pd.DataFrame,
    columns: tuple[str, ...],
    pairs: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Which ``pairs`` of rows (positions in each frame) differ in any of ``columns``: the cells
    themselves are compared (Arrow kernels, a step of pairs at a time), never a fast hash of them.

    Each step's cells are taken from one chunk on each side where the positions increase (a
    column read from Parquet comes in chunks, and a take across chunks concatenates them).
    Two categorical columns compare their codes (``reconcile.labels.labels_differ``), two
    packed ones their cells' BLAKE2b-128 digests (``reconcile.packed.packed_differ``)."""
    left_rows, right_rows = pairs
    differ = np.zeros(len(left_rows), dtype=bool)
    for column in columns:
        if is_label(source[column]) and is_label(destination[column]):
            differ |= labels_differ(source[column], destination[column], pairs)
            continue
        if is_packed(source[column]) and is_packed(destination[column]):
            differ |= packed_differ(source[column], destination[column], pairs)
            continue
        left, right = _text(source[column]), _text(destination[column])
        (lefts, left_starts), (rights, right_starts) = _chunks(left), _chunks(right)
        steps = _steps(pairs, (left_starts, right_starts))
        if steps is None:  # any order: a take across chunks per step
            for start in range(0, len(left_rows), _COMPARE_STEP):
                stop = start + _COMPARE_STEP
                same = same_cells(
                    take(left, left_rows[start:stop]), take(right, right_rows[start:stop])
                )
                differ[start:stop] |= ~np.asarray(same, dtype=bool)
            continue
        for start, stop in steps:
            at_left, at_right = left_rows[start:stop], right_rows[start:stop]
            k = int(np.searchsorted(left_starts, at_left[0], side="right")) - 1
            j = int(np.searchsorted(right_starts, at_right[0], side="right")) - 1
            same = same_cells(
                lefts[k].take(at_left - left_starts[k]), rights[j].take(at_right - right_starts[j])
            )
            differ[start:stop] |= ~np.asarray(same, dtype=bool)
    return differ


def _text(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    """A column as Arrow, a categorical one as its text (compared with a text column)."""
    column = arrow(series)
    return column.dictionary_decode() if is_label(series) else column


def _same_keys(
    source: Side,
    destination: Side,
    columns: tuple[str, ...],
    pairs: tuple[np.ndarray, np.ndarray],
) -> bool:
    """Whether every paired row holds the same key values (checks the 64-bit key hashes)."""
    return not differing(source.frame, destination.frame, columns, pairs).any()


def join(source: Side, destination: Side, columns: tuple[str, ...]) -> Join:
    """Outer join on the key ``columns``: by key hash, verified on the values themselves.

    A 64-bit hash join of integers is several times cheaper than a join of strings. Should two
    keys ever share a hash (or a side repeat a key), the join is redone on the values, so the
    result never depends on hash luck.
    """
    if not len(source) or not len(destination):
        # One side empty (most kinds of most fleets on one side or both): nothing pairs up.
        none = np.empty(0, dtype=np.int64)
        return Join(
            source_only=np.arange(len(source)),
            destination_only=np.arange(len(destination)),
            both_source=none,
            both_destination=none,
        )
    index = pd.Index(source.key)
    # ``is_unique`` fills the index's hash table, which ``get_indexer`` then looks keys up in
    # (it needs a unique index and checks so itself): knowing the hashes unique beforehand
    # (the snapshot's duplicate check sorts them) would save nothing (1M keys: 0.15 s either way).
    if index.is_unique:
        found = index.get_indexer(destination.key)
        both_t = np.flatnonzero(found >= 0)
        both_s = found[both_t]
        if _same_keys(
            source, destination, columns, (source.positions(both_s), destination.positions(both_t))
        ):
            only_s = np.ones(len(source), dtype=bool)
            only_s[both_s] = False
            return Join(
                source_only=np.flatnonzero(only_s),
                destination_only=np.flatnonzero(found < 0),
                both_source=both_s,
                both_destination=both_t,
            )
    return _exact_join(source, destination, columns)


def _exact_join(source: Side, destination: Side, columns: tuple[str, ...]) -> Join:
    on = list(columns)
    left, right = (
        side.frame.loc[:, on]
        .iloc[side.positions(np.arange(len(side)))]
        .assign(_i=np.arange(len(side)))
        for side in (source, destination)
    )
    joined = _outer_join(left, right, on, suffixes=("_s", "_t"))
    side = joined["_merge"]

    def positions(which: str, column: str) -> np.ndarray:
        return joined.loc[side == which, column].to_numpy(dtype=np.int64)

    return Join(
        source_only=positions("left_only", "_i_s"),
        destination_only=positions("right_only", "_i_t"),
        both_source=positions("both", "_i_s"),
        both_destination=positions("both", "_i_t"),
    )


def _outer_join(
    left: pd.DataFrame,
    right: pd.DataFrame,
    on: list[str],
    suffixes: tuple[str, str] = ("_x", "_y"),
) -> pd.DataFrame:
    """An outer join with ``_merge`` indicator that also works when a side is empty (pandas'
    merge of arrow-backed string keys fails on an empty side)."""
    if not left.empty and not right.empty:
        return left.merge(right, on=on, how="outer", suffixes=suffixes, indicator=True)
    if right.empty:
        present, absent, side = left, right, "left_only"
        present_suffix, absent_suffix = suffixes
    else:
        present, absent, side = right, left, "right_only"
        absent_suffix, present_suffix = suffixes
    out = present.rename(columns={c: c + present_suffix for c in present.columns if c not in on})
    for column in absent.columns:
        if column not in on:  # the absent side's columns exist, all NA, as merge would give
            out[column + absent_suffix] = absent[column].reindex(out.index)
    return out.assign(_merge=side)


def cells_at(
    frame: pd.DataFrame, positions: np.ndarray, columns: tuple[str, ...]
) -> dict[str, list[Any]]:
    """The cells of ``columns`` at ``positions``, column by column, as plain values (None for
    a missing one): one Arrow ``take`` per column (a categorical's by numpy,
    ``reconcile.labels.label_values``; a packed one's from the blocks holding them,
    ``reconcile.packed.Packed.cells_at``), no Python work per cell."""
    return {column: _cells(frame[column], positions) for column in columns}


def _cells(series: pd.Series, positions: np.ndarray) -> list[Any]:
    if not len(positions):
        return []
    if is_label(series):
        return label_values(series, positions)
    if is_packed(series):
        packed: list[Any] = series.array.cells_at(positions)
        return packed
    cells: list[Any] = take(arrow(series), positions).to_pylist()
    return cells
