"""Text columns of few distinct values as the snapshot holds them: dictionary-encoded.

A kind declares such a column (``pipeline.kinds.base.label``: a thing's type and billing group,
a membership's group, a status); ``reconcile.snapshot.conform`` holds it as a pandas
categorical: a small integer code per row (int8 up to 127 distinct values) and each distinct
value once. Everything else sees the text it stands for: ``sorted_categories`` keeps the
categories text in sorted order, so sorting rows by such a column sorts them by their text
(``conform``'s row order is the text column's); ``digest_labels`` feeds the fingerprint the
text's bytes (a snapshot's fingerprint is its text columns' own: saved snapshots keep loading);
``labels_differ`` compares two such columns by value, whatever either one's categories.

Why a pandas categorical rather than Arrow's dictionary type (``pd.ArrowDtype(pa.dictionary(
...))``), measured on pandas 3.1 and pyarrow 26 with 1M cells of 20 values: the categorical
holds 1.0 MB (int8 codes), the Arrow dictionary 4.1 MB (int32 indices); pandas sorts a frame by
a categorical column, where it refuses an Arrow dictionary column with missing values
(ArrowInvalid); and a categorical written to Parquet reads back as one, where an Arrow
dictionary column fails to read back (TypeError: data type not understood).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reconcile.hashing import digest_bytes, string_hashes

# The snapshot's text dtype ("string": missing is NA), which ``== "string"`` would not tell from
# pandas' "str" (missing is NaN): categories of text read from Parquet or records come as "str".
_TEXT = pd.api.types.pandas_dtype("string")
# Rows of a column whose text ``digest_labels`` makes at once.
_DIGEST_STEP = 1 << 16


def is_label(series: pd.Series) -> bool:
    """Whether ``series`` is held dictionary-encoded (a categorical)."""
    return isinstance(series.dtype, pd.CategoricalDtype)


def sorted_categories(series: pd.Series) -> pd.Series:
    """A categorical column whose categories are text ("string") in sorted order (a Parquet file,
    records or a caller may give others)."""
    categories = series.cat.categories
    if categories.dtype == _TEXT and categories.is_monotonic_increasing:
        return series
    return series.cat.set_categories(categories.astype(_TEXT).sort_values())


def labels(series: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """A categorical column as its codes (-1: missing) and its categories as Arrow strings: the
    text of row i is ``categories[codes[i]]``."""
    categories = pa.array(series.cat.categories.array)
    if isinstance(categories, pa.ChunkedArray):
        categories = categories.combine_chunks()
    return series.cat.codes.to_numpy(), categories


def digest_labels(digest: Any, series: pd.Series) -> None:
    """Feed ``digest`` exactly what ``reconcile.hashing.digest_strings`` feeds it for the text a
    categorical column stands for: each value's length (-1: missing), then the values' bytes,
    made a step of rows at a time (never the whole column's text at once)."""
    codes, categories = labels(series)
    # The last entry, -1, is the one a missing value's code (-1) picks.
    lengths = np.append(np.asarray(pc.binary_length(categories), dtype="<i8"), -1)
    steps = range(0, len(codes), _DIGEST_STEP)
    for start in steps:
        digest.update(lengths[codes[start : start + _DIGEST_STEP]])
    for start in steps:
        step = codes[start : start + _DIGEST_STEP]
        digest_bytes(digest, categories.take(step[step >= 0]))


def labels_differ(
    source: pd.Series, destination: pd.Series, pairs: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Which ``pairs`` of cells (positions in each categorical column) hold different values.

    The source's categories are mapped once into the destination's (a few values each), then
    the paired cells' integer codes are compared by numpy: a value the destination's categories
    lack maps to -2, which no code equals; a missing value (-1) equals only a missing one."""
    left = source.cat.codes.to_numpy()[pairs[0]]
    right = destination.cat.codes.to_numpy()[pairs[1]]
    ours, theirs = source.cat.categories, destination.cat.categories
    if not ours.equals(theirs):
        into = theirs.get_indexer(ours)
        into[into < 0] = -2
        left = np.append(into, -1)[left]  # a missing value's code, -1, picks the last: -1
    differ: np.ndarray = left != right
    return differ


def label_values(series: pd.Series, positions: np.ndarray) -> list[Any]:
    """The text of a categorical column's cells at ``positions`` as plain values (``None``:
    missing), by numpy: one Python string per distinct value, shared by the cells holding it
    (Arrow's ``to_pylist`` of a dictionary array boxes every cell: 3x slower at 1M things)."""
    values = np.array([*series.cat.categories.tolist(), None], dtype=object)
    taken: list[Any] = values[series.cat.codes.to_numpy()[positions]].tolist()
    return taken


def label_hashes(series: pd.Series) -> np.ndarray:
    """``reconcile.hashing.string_hashes`` of the text a categorical column stands for (the
    same hash as the text's), made per distinct value and picked by code: a key column such as
    a membership's group hashes a few values, not a string per row."""
    codes, categories = labels(series)
    # The last entry, a missing value's hash, is the one a missing value's code (-1) picks.
    values = pa.concat_arrays([categories.cast(pa.large_string()), pa.nulls(1, pa.large_string())])
    hashes: np.ndarray = string_hashes(values)[codes]
    return hashes
