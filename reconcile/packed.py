"""Bulky text columns as the snapshot holds them: compressed, with a strong digest per cell.

A kind declares such a column (``pipeline.kinds.base.PACKED``: a thing's attribute map, the
widest column of the largest table); ``reconcile.snapshot.conform`` holds it as ``Packed``: the
cells in blocks of ``BLOCK_ROWS`` rows, each block's bytes and offsets compressed (zstd, level 3:
pyarrow's ``Codec``), and a 128-bit BLAKE2b digest of every cell. At 1M things of 10 attributes
the column took 128 MB a side as Arrow strings; packed it takes about 41 MB (25 MB of blocks,
16 MB of digests), and the diff's inputs and the diff fit the 0.5 GB of issue 26 (bench/results/
README.md, B1).

What reads it:
- the diff compares two such columns by their digests (``packed_differ``): equal digests are
  equal cells but for a BLAKE2b-128 collision (about 2^64 tries by the birthday bound, where a
  64-bit fast hash would leave it to chance); no block is decompressed to compare;
- the diff reads the cells of the rows it reports (``Packed.cells_at``): only the blocks holding
  them are decompressed, each once per call and dropped after, so a block of text per reader
  thread is held at once;
- the fingerprint digests the text's own lengths and bytes (``digest_packed``: the same bytes
  ``reconcile.hashing.digest_strings`` feeds it for the text column, so saved snapshots keep
  their fingerprints);
- everything else (pandas: iterating, ``to_dict``, Parquet through ``__arrow_array__``) sees the
  text, decompressed as it asks for it. ``Snapshot.save`` writes the text (``plain``), so a saved
  snapshot's files are plain Parquet.

A ``Packed`` column is immutable (``__setitem__`` refuses), as a snapshot's frames are.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import ExtensionArray, ExtensionDtype, register_extension_dtype

from pipeline.kinds.base import PACKED
from reconcile.hashing import digest_strings

BLOCK_ROWS = 1 << 16
# zstd level 3 (its default): 1M attribute maps (120 MB of text) took 24.7 MB against lz4's 56 MB
# and zstd -5's 51.7 MB, and decompress in 0.08-0.2 s against lz4's 0.04-0.09 s (same machine,
# idle to loaded): memory is what packing is for (bench/results/README.md, B1).
_CODEC = pa.Codec("zstd", compression_level=3)
# Threads decompressing the blocks ``Packed.cells_at`` reads (the bench machine's 2 cores): one
# took 1.19 s for the diff's first call at 1M things where two took 0.80 s (B1).
_READERS = 2
_DIGEST_BYTES = 16
# A missing cell's digest: no text's (BLAKE2b never gives it but by a 2^-128 chance).
_MISSING = b"\xff" * _DIGEST_BYTES
_TEXT = pd.StringDtype("pyarrow")


@register_extension_dtype
class PackedDtype(ExtensionDtype):
    """The dtype of a packed text column (``pipeline.kinds.base.PACKED``): text, missing as NA."""

    name = PACKED
    type = str
    kind = "O"
    na_value = pd.NA

    @classmethod
    def construct_array_type(cls) -> builtins.type[Packed]:
        return Packed

    def __repr__(self) -> str:
        return "PackedDtype()"


@dataclass(frozen=True)
class _Block:
    """``rows`` cells: their offsets (int64, from 0) and bytes compressed, their validity."""

    rows: int
    offsets: pa.Buffer
    data: pa.Buffer
    data_size: int
    validity: pa.Buffer | None  # None: no missing cell
    nulls: int

    def text(self) -> pa.LargeStringArray:
        # Into the default pool (jemalloc, decay 0: ``reconcile/__init__.py``), which faults a
        # block's pages in again each time (0.13 s a side at 1M, 0.075 s from a pool keeping
        # them). The C library's pool kept 50-100 MB in the reader threads' arenas (B1), and
        # the bundled mimalloc crashes when short-lived threads allocate from it (apache/arrow
        # #50908, #50471): a test process crashed so here with it.
        size = (self.rows + 1) * 8
        offsets = _CODEC.decompress(self.offsets, decompressed_size=size)
        data = _CODEC.decompress(self.data, decompressed_size=self.data_size)
        return pa.LargeStringArray.from_buffers(self.rows, offsets, data, self.validity, self.nulls)

    @property
    def nbytes(self) -> int:
        validity = self.validity.size if self.validity is not None else 0
        return self.offsets.size + self.data.size + validity


def _pack_block(strings: pa.LargeStringArray) -> tuple[_Block, bytes]:
    """One block of text (a slice of a column) compressed, and its cells' digests."""
    count = len(strings)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64)
    offsets = offsets[strings.offset : strings.offset + count + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    raw = strings.buffers()[2]
    data = raw[first:last] if raw is not None else pa.py_buffer(b"")
    validity = None
    if strings.null_count:
        validity = pa.array(strings.is_valid().to_numpy(zero_copy_only=False)).buffers()[1]
    block = _Block(
        rows=count,
        offsets=_CODEC.compress((offsets - first).astype("<i8"), asbytes=False),
        data=_CODEC.compress(data, asbytes=False),
        data_size=last - first,
        validity=validity,
        nulls=strings.null_count,
    )
    blake = hashlib.blake2b
    digests = b"".join(
        _MISSING if value is None else blake(value.encode(), digest_size=_DIGEST_BYTES).digest()
        for value in strings.to_pylist()
    )
    return block, digests


class Packed(ExtensionArray):
    """A text column held compressed in blocks, with a 128-bit digest per cell (see module)."""

    def __init__(self, blocks: Sequence[_Block], digests: np.ndarray) -> None:
        self._blocks = tuple(blocks)
        self._digests = digests  # (rows, 2) uint64: a cell's BLAKE2b-128
        self._starts = np.cumsum([0, *(block.rows for block in self._blocks)])

    __hash__ = None  # type: ignore[assignment]  # a column, compared elementwise

    # -- making one ------------------------------------------------------------------------

    @classmethod
    def of_text(cls, strings: pa.Array | pa.ChunkedArray) -> Packed:
        """Arrow text packed, ``BLOCK_ROWS`` rows a block."""
        column = strings.cast(pa.large_string())
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        blocks, digests = [], []
        for start in range(0, len(column), BLOCK_ROWS):
            block, digest = _pack_block(column.slice(start, BLOCK_ROWS))
            blocks.append(block)
            digests.append(digest)
        joined = np.frombuffer(b"".join(digests), dtype="<u8").reshape(-1, 2)
        return cls(blocks, joined)

    @classmethod
    def _from_sequence(cls, scalars: Any, *, dtype: Any = None, copy: bool = False) -> Packed:
        if isinstance(scalars, Packed):
            return scalars
        if isinstance(scalars, pd.Series | pd.Index):
            scalars = scalars.array
        if hasattr(scalars, "__arrow_array__"):
            return cls.of_text(pa.array(scalars))
        values = np.asarray(scalars, dtype=object)
        return cls.of_text(pa.array(values, type=pa.large_string(), from_pandas=True))

    @classmethod
    def _from_factorized(cls, values: np.ndarray, original: Packed) -> Packed:
        return cls._from_sequence(values)

    @classmethod
    def _concat_same_type(cls, to_concat: Sequence[Packed]) -> Packed:
        parts = [chunk for column in to_concat for chunk in column.text().chunks]
        return cls.of_text(pa.chunked_array(parts, type=pa.large_string()))

    # -- reading it --------------------------------------------------------------------------

    def blocks(self) -> Iterator[pa.LargeStringArray]:
        """The text, a block at a time (each decompressed as it is reached)."""
        for block in self._blocks:
            yield block.text()

    def text(self) -> pa.ChunkedArray:
        """The whole column as Arrow text (every block decompressed: for a small column, or
        pandas' own operations; the diff reads ``cells_at``)."""
        return pa.chunked_array(list(self.blocks()), type=pa.large_string())

    def cells_at(self, positions: np.ndarray) -> list[Any]:
        """The cells at ``positions`` (any order, repeats allowed) as plain values, None for a
        missing one (``taken``)."""
        cells: list[Any] = self.taken(positions).to_pylist()
        return cells

    def taken(self, positions: Any) -> pa.LargeStringArray:
        """The cells at ``positions`` (any order; ``IndexError`` outside ``0..len-1``) as
        Arrow text: the blocks holding them decompressed, each once (on ``_READERS`` threads
        where there are several: zstd and Arrow's take release the GIL), each block's text
        dropped once its cells are taken."""
        positions = np.asarray(positions, dtype=np.int64)
        if not len(positions):
            return pa.array([], type=pa.large_string())
        if positions.min() < 0 or positions.max() >= len(self):
            raise IndexError(f"positions outside 0..{len(self) - 1} of a packed column")
        which = np.searchsorted(self._starts, positions, side="right") - 1
        order = np.argsort(which, kind="stable")
        grouped, blocks = positions[order], which[order]
        bounds = np.searchsorted(blocks, np.arange(len(self._blocks) + 1))

        def cells(k: int) -> pa.Array:
            at = grouped[bounds[k] : bounds[k + 1]] - self._starts[k]
            return self._blocks[k].text().take(at)

        needed = np.flatnonzero(np.diff(bounds)).tolist()
        if len(needed) == 1:  # one block (a cell, a short slice): no threads
            parts = [cells(needed[0])]
        else:
            with ThreadPoolExecutor(_READERS, thread_name_prefix="packed") as pool:
                parts = list(pool.map(cells, needed))
        taken: pa.LargeStringArray = pa.concat_arrays(parts).take(np.argsort(order))
        return taken

    def digests(self) -> np.ndarray:
        """A (rows, 2) uint64 BLAKE2b-128 per cell (missing cells: all bits set)."""
        return self._digests

    # -- the ExtensionArray interface --------------------------------------------------------

    @property
    def dtype(self) -> PackedDtype:
        return PackedDtype()

    def __len__(self) -> int:
        return len(self._digests)

    @property
    def nbytes(self) -> int:
        return sum(block.nbytes for block in self._blocks) + self._digests.nbytes

    def __arrow_array__(self, type: Any = None) -> pa.ChunkedArray:
        return self.text()

    def __iter__(self) -> Iterator[Any]:
        for strings in self.blocks():
            for value in strings.to_pylist():
                yield pd.NA if value is None else value

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, int | np.integer):
            index = int(item) + (len(self) if item < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"index {item} out of bounds for length {len(self)}")
            value = self.cells_at(np.array([index]))[0]
            return pd.NA if value is None else value
        if item is Ellipsis:
            return self
        item = pd.api.indexers.check_array_indexer(self, item)
        if isinstance(item, slice):
            return self.take(np.arange(len(self))[item])
        return self.take(np.flatnonzero(item) if item.dtype == bool else item)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError("a packed column is immutable (a snapshot's frames are never mutated)")

    def isna(self) -> np.ndarray:
        missing = np.frombuffer(_MISSING, dtype="<u8")
        return np.asarray((self._digests == missing).all(axis=1))

    def take(self, indices: Any, *, allow_fill: bool = False, fill_value: Any = None) -> Packed:
        """pandas' ``take``: only the blocks holding the cells are read; with ``allow_fill``,
        -1 gives ``fill_value`` (missing by default)."""
        positions = np.asarray(indices, dtype=np.int64)
        if not allow_fill:
            if len(positions) and (positions.min() < -len(self) or positions.max() >= len(self)):
                raise IndexError(f"take: indices outside a packed column of {len(self)} rows")
            return Packed.of_text(
                self.taken(np.where(positions < 0, positions + len(self), positions))
            )
        if (positions < -1).any():
            raise ValueError("take: indices below -1 with allow_fill")
        fill = positions == -1
        taken = self.taken(positions[~fill])
        if not fill.any():
            return Packed.of_text(taken)
        filler = None if fill_value is None or fill_value is pd.NA else str(fill_value)
        cells: list[Any] = [filler] * len(positions)
        for at, cell in zip(np.flatnonzero(~fill).tolist(), taken.to_pylist(), strict=True):
            cells[at] = cell
        return Packed.of_text(pa.array(cells, type=pa.large_string()))

    def fillna(self, value: Any = None, limit: int | None = None, copy: bool = True) -> Packed:
        """Missing cells as ``value`` (a new column: this one is immutable)."""
        if limit is not None:
            raise NotImplementedError("fillna with a limit on a packed column")
        return Packed.of_text(pc.fill_null(self.text(), str(value)))

    def _where(self, mask: np.ndarray, value: Any) -> Packed:
        text = pd.array(self.text(), dtype=_TEXT)
        return Packed.of_text(pa.array(text._where(mask, value)))

    def copy(self) -> Packed:
        return Packed(self._blocks, self._digests)  # immutable: the blocks are shared

    def astype(self, dtype: Any, copy: bool = True) -> Any:
        dtype = pd.api.types.pandas_dtype(dtype)
        if isinstance(dtype, PackedDtype):
            return self.copy() if copy else self
        if isinstance(dtype, pd.StringDtype):
            return pd.array(self.text(), dtype=dtype)
        return pd.array(self.text(), dtype=_TEXT).astype(dtype, copy=False)

    def to_numpy(self, dtype: Any = None, copy: bool = False, na_value: Any = pd.NA) -> np.ndarray:
        values = np.array([na_value if v is pd.NA else v for v in self], dtype=object)
        return values if dtype is None else values.astype(dtype)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.to_numpy(dtype=dtype)

    def __eq__(self, other: Any) -> Any:
        return pd.array(self.text(), dtype=_TEXT) == other

    def _values_for_factorize(self) -> tuple[np.ndarray, Any]:
        return self.to_numpy(na_value=None), None


def is_packed(series: pd.Series) -> bool:
    """Whether ``series`` is held packed."""
    return isinstance(series.dtype, PackedDtype)


def pack(series: pd.Series) -> pd.Series:
    """A text column packed (its index and name kept)."""
    if is_packed(series):
        return series
    packed = Packed.of_text(pa.array(series.astype(_TEXT).array))
    return pd.Series(packed, index=series.index, name=series.name, copy=False)


def pack_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    """Pack ``columns`` of ``frame`` (a frame just made, in its final row order), in place."""
    for column in columns:
        frame[column] = pack(frame[column])


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its packed columns as text (what is saved to Parquet)."""
    packed = [column for column in frame.columns if is_packed(frame[column])]
    return frame.astype(dict.fromkeys(packed, _TEXT)) if packed else frame


def packed_differ(
    source: pd.Series, destination: pd.Series, pairs: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Which ``pairs`` of cells (positions in each column) differ, by their digests."""
    left = source.array.digests()[pairs[0]]
    right = destination.array.digests()[pairs[1]]
    return np.asarray((left != right).any(axis=1))


def digest_packed(digest: Any, series: pd.Series) -> None:
    """Feed ``digest`` what ``reconcile.hashing.digest_strings`` feeds it for the same text
    (it is that function, over the blocks: two passes, each block decompressed in each)."""
    digest_strings(digest, series.array.blocks)
