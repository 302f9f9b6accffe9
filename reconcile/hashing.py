"""Hashes of snapshot columns: the diff's key hashes and the fingerprint's digests.

``string_hashes`` hashes a string column to 64-bit integers over its Arrow buffers (vectorised,
fast, not stable across versions: only ever joined on within one process, every pair checked);
``digest_strings`` feeds a string column's canonical bytes to the fingerprint's sha256;
``column_hash`` is pandas' own per-cell hash (other dtypes); ``combine_hashes`` combines column
hashes into row hashes as pandas combines a DataFrame's. ``bucket_of`` (``in_buckets`` over a
column) is the one *stable* hash: a name's bucket among n, the same in every process and run
(a shard's names, ``reconcile.diff``; a sweep's slice, ``reconcile.sweep``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_NULL_HASH = np.uint64(np.iinfo(np.uint64).max)  # what pandas gives a missing string
# string_hashes' constants (splitmix64's): any odd multipliers would do, the join verifies.
_LENGTH_MULT = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def column_hash(series: pd.Series) -> np.ndarray:
    """``pd.util.hash_pandas_object`` of ``series`` (uint64 per cell, index ignored)."""
    if not len(series):  # as pandas gives it, without its per-call cost (most kinds are empty)
        return np.empty(0, dtype=np.uint64)
    hashes: np.ndarray = pd.util.hash_pandas_object(series, index=False).to_numpy()
    return hashes


def arrow_strings(series: pd.Series) -> pa.Array | pa.ChunkedArray:
    """A string column as Arrow strings (zero-copy for pyarrow-backed columns)."""
    return pa.array(series.array)


def string_hashes(strings: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A uint64 hash per string, vectorised over the Arrow buffers (no Python object per cell):
    each value's length and its bytes, eight at a time, mixed in (xor, multiply, xor-shift),
    then splitmix64's finaliser. Missing values hash to ``_NULL_HASH``. Equal strings hash
    equal; distinct ones may collide, so whoever joins on these checks the pairs they find.
    """
    if isinstance(strings, pa.ChunkedArray):
        parts = [string_hashes(chunk) for chunk in strings.chunks]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    if strings.type != pa.large_string():
        strings = strings.cast(pa.large_string())
    count = len(strings)
    if not count:
        return np.empty(0, dtype=np.uint64)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64)
    offsets = offsets[strings.offset : strings.offset + count + 1]
    starts = offsets[:-1] - offsets[0]
    lengths = np.diff(offsets)
    # The values' bytes, padded so that a word read at any start stays in the buffer.
    data = np.zeros(int(offsets[-1] - offsets[0]) + 8, dtype=np.uint8)
    if len(data) > 8:
        buffer = np.frombuffer(strings.buffers()[2], dtype=np.uint8)
        data[:-8] = buffer[offsets[0] : offsets[-1]]
    # Every 8-byte little-endian word starting at each byte (a strided view, no copy).
    words = np.ndarray(shape=(len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    hashes = lengths.astype(np.uint64) * _LENGTH_MULT
    shortest, longest = int(lengths.min()), int(lengths.max())
    active: np.ndarray | slice = slice(None)  # every value, while all have 8 more bytes
    for at in range(0, longest, 8):
        if at + 8 > shortest and isinstance(active, slice):
            active = np.arange(count)
        if isinstance(active, np.ndarray) and at:
            active = active[lengths[active] > at]
        word = words[starts[active] + at]
        if isinstance(active, np.ndarray):
            left = lengths[active] - at
            short = left < 8
            if short.any():  # keep only the value's own bytes of its last word
                shift = (left[short] * 8).astype(np.uint64)
                word[short] &= (np.uint64(1) << shift) - np.uint64(1)
        word ^= hashes[active]
        word *= _MIX_1
        word ^= word >> np.uint64(32)
        hashes[active] = word
    # One avalanche at the end (splitmix64's finaliser), so every bit depends on every word.
    hashes ^= hashes >> np.uint64(30)
    hashes *= _MIX_1
    hashes ^= hashes >> np.uint64(27)
    hashes *= _MIX_2
    hashes ^= hashes >> np.uint64(31)
    if strings.null_count:
        hashes[strings.is_null().to_numpy(zero_copy_only=False)] = _NULL_HASH
    return hashes


def digest_strings(
    digest: Any, strings: pa.Array | pa.ChunkedArray | Callable[[], Iterable[pa.Array]]
) -> None:
    """Feed ``digest`` a string column's lengths (-1: missing) and then its values' bytes.

    A chunk at a time (the bytes fed are the whole column's lengths, then its bytes): the
    lengths of a whole column at once took 20 bytes a row of temporary memory. ``strings`` may
    also be a function giving the chunks afresh for each of the two passes (a packed column's
    blocks, decompressed as they are reached: ``reconcile.packed``)."""
    chunks = strings if callable(strings) else partial(_chunks_of, strings)
    for chunk in chunks():
        lengths = pc.fill_null(pc.binary_length(chunk), -1)
        digest.update(np.asarray(lengths).astype("<i8"))
    for chunk in chunks():
        # A missing value's slot may hold bytes: leave them out.
        digest_bytes(digest, chunk.drop_null() if chunk.null_count else chunk)


def _chunks_of(strings: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return list(strings.chunks) if isinstance(strings, pa.ChunkedArray) else [strings]


def digest_bytes(digest: Any, values: pa.Array) -> None:
    """Feed ``digest`` the bytes of ``values`` (strings, none missing), one after another."""
    if not len(values):
        return
    wide = pa.types.is_large_string(values.type)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64 if wide else np.int32)
    first, last = offsets[values.offset], offsets[values.offset + len(values)]
    if last > first:
        digest.update(memoryview(values.buffers()[2])[first:last])


def combine_hashes(columns: list[np.ndarray], length: int = 0) -> np.ndarray:
    """Row hashes from column hashes, exactly as ``pd.util.hash_pandas_object`` combines a
    DataFrame's columns (CPython's tuple hash), so ``fingerprint`` keeps its values."""
    if not columns:
        return np.full(length, 0x345678 + 97531, dtype=np.uint64)
    count = len(columns)
    mult = np.uint64(1000003)
    out = np.zeros_like(columns[0]) + np.uint64(0x345678)
    for i, column in enumerate(columns):
        inverse_i = count - i
        out ^= column
        out *= mult
        mult += np.uint64(82520 + inverse_i + inverse_i)
    out += np.uint64(97531)
    return out


def bucket_of(name: str, buckets: int) -> int:
    """The shard of ``name`` among ``buckets``: stable across processes, runs and machines."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def in_buckets(names: pd.Series | list[str], buckets: int, wanted: np.ndarray) -> np.ndarray:
    """Which of ``names`` fall in the ``wanted`` buckets: ``bucket_of`` over a whole column."""
    values = names.tolist() if isinstance(names, pd.Series) else names
    # The per-name digest is the only Python-level step; the modulo and the test are numpy's.
    digests = b"".join(
        hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest() for name in values
    )
    bucket = np.frombuffer(digests, dtype=">u8").astype(np.uint64) % np.uint64(buckets)
    return np.isin(bucket, wanted)
