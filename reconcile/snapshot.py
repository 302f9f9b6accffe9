"""A region's registry at one moment, as pandas DataFrames: the input of the diff.

Flow: ``take_snapshot(inventory, region)`` reads one region through ``reconcile.inventory``
(the only IoT-calling edge; the kinds' listings run concurrently) → ``Snapshot`` (one table per
entity kind, canonical values) → ``save`` to Parquet / ``load`` back →
``reconcile.diff.diff_snapshots``. The plan stage turns a snapshot row back into the kind's state
fields with ``desired_fields``.

The tables are the kinds' (``pipeline.kinds``: each kind's ``columns``, in ``EntityKind`` order,
which is also the fingerprint's). Values are stored canonically so equal state compares equal
across regions and across save/load: attribute maps and dynamic queries as compact JSON with
sorted keys, searchable attributes as a sorted JSON list, missing values as NA. Versions are
kept for information only: they are generated per region and never compared (pipeline/model.py).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from pipeline.clock import now_ms
from pipeline.errors import PermanentError
from pipeline.kinds import KINDS
from pipeline.kinds.base import CATEGORY, PACKED, Kind, canonical_json
from pipeline.kinds.certificate_refusal import UnregistrableCertificate
from pipeline.kinds.thing_type import PendingTypeDeletion
from pipeline.model import EntityKind
from reconcile.families import FAMILIES, ListingProgress, ListingStatus, read_region
from reconcile.hashing import arrow_strings, column_hash, digest_strings
from reconcile.inventory import Inventory
from reconcile.keys import Keyed, key_hashes, sorted_by_key
from reconcile.labels import digest_labels, is_label, sorted_categories
from reconcile.packed import digest_packed, is_packed, pack_columns, plain
from reconcile.sweep import SWEPT, WHOLE, Sweep, common

__all__ = [
    "FAMILIES",
    "JSON_COLUMNS",
    "SCHEMAS",
    "SORT_KEYS",
    "ListingProgress",
    "ListingStatus",
    "Snapshot",
    "SnapshotFileError",
    "canonical_json",
    "desired_fields",
    "take_snapshot",
]

SNAPSHOT_FORMAT = 4  # 2: certificates, policies and their attachments; 3: onboarding kinds;
# 4: the fingerprint digests string columns as bytes
MANIFEST = "snapshot.json"

_BY_FRAME: dict[str, Kind] = {kind.spec.frame: kind for kind in KINDS.values()}
# Column name -> pandas dtype, per table: the kind's key columns, its state fields, and the
# per-region version where the listing returns one. Every frame is conformed to these (also when
# empty), so the diff and Parquet never see object columns of mixed types.
SCHEMAS: dict[str, dict[str, str]] = {
    frame: {column.name: column.dtype for column in kind.columns}
    for frame, kind in _BY_FRAME.items()
}
SORT_KEYS: dict[str, list[str]] = {frame: list(k.spec.frame_key) for frame, k in _BY_FRAME.items()}
# Text columns of few distinct values (``pipeline.kinds.base.label``), per table: categorical.
_LABELS = {t: [c.name for c in k.columns if c.dtype == CATEGORY] for t, k in _BY_FRAME.items()}
# Bulky text columns (``pipeline.kinds.base.PACKED``), per table: text until sorted, then packed.
_PACKED = {t: [c.name for c in k.columns if c.dtype == PACKED] for t, k in _BY_FRAME.items()}
# Columns holding canonical JSON, decoded by ``cell_value`` and ``desired_fields``.
JSON_COLUMNS = frozenset(
    column.name for kind in KINDS.values() for column in kind.columns if column.json
)


class SnapshotFileError(PermanentError):
    """A saved snapshot is missing, unreadable, or does not match its recorded fingerprint."""

    def __init__(self, directory: Path, reason: str) -> None:
        super().__init__(f"snapshot at {directory}: {reason}")
        self.directory = directory
        self.reason = reason


def conform(table: str, frame: pd.DataFrame) -> Keyed:
    """``frame`` with exactly the table's columns and dtypes, sorted by key, index 0..n-1; with
    its key hashes (``reconcile.keys``: the diff's, which the duplicate check is made with)."""
    schema = SCHEMAS[table]
    missing = [column for column in schema if column not in frame.columns]
    if missing:
        raise ValueError(f"{table}: missing columns {missing}")
    out = frame.loc[:, list(schema)].astype({**schema, **dict.fromkeys(_PACKED[table], "string")})
    for column in _LABELS[table]:
        out[column] = sorted_categories(out[column])
    keyed = sorted_by_key(table, out, SORT_KEYS[table])
    pack_columns(keyed.frame, _PACKED[table])
    return keyed


def empty_frame(table: str) -> pd.DataFrame:
    """The table with no rows (a copy: a tenth of building it, and snapshots have many)."""
    empty = _EMPTY.get(table)
    if empty is None:
        frame = pd.DataFrame({c: pd.Series([], dtype=d) for c, d in SCHEMAS[table].items()})
        empty = _EMPTY.setdefault(table, conform(table, frame).frame)
    return empty.copy()


_EMPTY: dict[str, pd.DataFrame] = {}


def _frame(table: str, rows: list[dict[str, Any]]) -> Keyed:
    if not rows:
        return Keyed(empty_frame(table), None)
    return conform(table, pd.DataFrame.from_records(rows, columns=list(SCHEMAS[table])))


@dataclass(frozen=True, init=False, eq=False)
class Snapshot:
    """One region's registry: a table per entity kind (``SCHEMAS``), conformed on construction.

    ``Snapshot(region, taken_at_ms, things=frame, ...)``: a table not given is empty. Each
    table reads as an attribute too (``snapshot.things``).
    """

    region: str
    taken_at_ms: int  # when the snapshot started (epoch ms)
    frames: Mapping[str, pd.DataFrame]
    # What was read in ``region``: its registry, or the state table (``reconcile.explain``).
    origin: Literal["registry", "state_table"] = "registry"
    # The state table's only: thing types each region's pending task is to delete.
    pending_deletions: tuple[PendingTypeDeletion, ...] = ()
    # The state table's only: certificates a region's registry refused to register.
    refused_certificates: tuple[UnregistrableCertificate, ...] = ()
    # The slice of the per-device links its tables hold (``reconcile.sweep``; WHOLE: all).
    sweep: Sweep = WHOLE

    def __init__(
        self,
        region: str,
        taken_at_ms: int,
        frames: Mapping[str, pd.DataFrame] | None = None,
        *,
        origin: Literal["registry", "state_table"] = "registry",
        pending_deletions: Iterable[PendingTypeDeletion] = (),
        refused_certificates: Iterable[UnregistrableCertificate] = (),
        sweep: Sweep = WHOLE,
        **tables: pd.DataFrame,
    ) -> None:
        given = {**(frames or {}), **tables}
        unknown = set(given) - set(SCHEMAS)
        if unknown:
            raise TypeError(f"unknown snapshot tables {sorted(unknown)}")
        keyed = {t: conform(t, frame) for t, frame in given.items()}
        self._set(
            region,
            taken_at_ms,
            keyed,
            origin=origin,
            pending_deletions=tuple(pending_deletions),
            refused_certificates=tuple(refused_certificates),
            sweep=sweep,
        )

    def _set(
        self,
        region: str,
        taken_at_ms: int,
        conformed: Mapping[str, Keyed],
        *,
        origin: Literal["registry", "state_table"],
        pending_deletions: tuple[PendingTypeDeletion, ...],
        refused_certificates: tuple[UnregistrableCertificate, ...],
        sweep: Sweep,
    ) -> None:
        """Fill in a snapshot from frames already conformed (with their key hashes where
        known: ``Keyed``); a table not given is empty."""
        object.__setattr__(self, "region", region)
        object.__setattr__(self, "taken_at_ms", taken_at_ms)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "pending_deletions", pending_deletions)
        object.__setattr__(self, "refused_certificates", refused_certificates)
        object.__setattr__(self, "sweep", sweep)
        frames = {t: conformed[t].frame if t in conformed else empty_frame(t) for t in SCHEMAS}
        object.__setattr__(self, "frames", frames)
        # ``column_hashes``' cache: the hashes each frame came with (``conform``'s), which are
        # of that very frame (a table not given is empty: hashed on first use, if ever).
        hashes = {t: k.hashes for t, k in conformed.items() if k.hashes is not None}
        object.__setattr__(self, "_column_hashes", hashes)

    @classmethod
    def _of_conformed(
        cls,
        region: str,
        taken_at_ms: int,
        conformed: Mapping[str, Keyed],
        *,
        origin: Literal["registry", "state_table"] = "registry",
        pending_deletions: tuple[PendingTypeDeletion, ...] = (),
        refused_certificates: tuple[UnregistrableCertificate, ...] = (),
        sweep: Sweep = WHOLE,
    ) -> Snapshot:
        """A snapshot of frames ``conform`` made (``_frame``'s, another snapshot's, which are
        never mutated): not conformed again, which took half of a small snapshot's time."""
        snapshot = cls.__new__(cls)
        snapshot._set(
            region,
            taken_at_ms,
            conformed,
            origin=origin,
            pending_deletions=pending_deletions,
            refused_certificates=refused_certificates,
            sweep=sweep,
        )
        return snapshot

    def __getattr__(self, name: str) -> pd.DataFrame:
        frames = self.__dict__.get("frames")
        if frames is not None and name in frames:
            frame: pd.DataFrame = frames[name]
            return frame
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    # -- construction from plain records (the inventory's, tests, benchmarks) -------------

    @classmethod
    def from_records(
        cls, region: str, taken_at_ms: int, **tables: Iterable[Mapping[str, Any]]
    ) -> Snapshot:
        """A snapshot from records holding plain values (``attributes`` as a dict, ``query`` as
        a dict or None, ``searchable_attributes`` as a list), by table; omitted fields default
        to empty, omitted tables are empty."""
        frames = {}
        for table, records in tables.items():
            kind = _BY_FRAME.get(table)
            if kind is None:
                raise TypeError(f"unknown snapshot table {table!r}")
            frames[table] = _frame(table, [kind.encode(record) for record in records])
        return cls._of_conformed(region, taken_at_ms, frames)

    def with_table(self, table: str, frame: pd.DataFrame) -> Snapshot:
        """This snapshot with ``table`` replaced by ``frame`` (conformed)."""
        if table not in SCHEMAS:
            raise TypeError(f"unknown snapshot table {table!r}")
        return self._with_frames({**self._keyed(), table: conform(table, frame)}, self.sweep)

    def _keyed(self) -> dict[str, Keyed]:
        """This snapshot's frames, with the key hashes known of each (those of these very
        frames: a snapshot made of them may keep them)."""
        known: dict[str, dict[str, np.ndarray]] = self.__dict__.get("_column_hashes", {})
        return {t: Keyed(frame, known.get(t)) for t, frame in self.frames.items()}

    def _with_frames(self, conformed: Mapping[str, Keyed], sweep: Sweep) -> Snapshot:
        return Snapshot._of_conformed(
            self.region,
            self.taken_at_ms,
            conformed,
            origin=self.origin,
            pending_deletions=self.pending_deletions,
            refused_certificates=self.refused_certificates,
            sweep=sweep,
        )

    def swept(self, sweep: Sweep) -> Snapshot:
        """This snapshot narrowed to ``sweep``'s slice of the per-device links (a whole one, or
        one of that slice already: itself); one listing another slice cannot be
        (``reconcile.sweep.SweepMismatchError``)."""
        if common(self.sweep, sweep) == self.sweep:
            return self
        frames = self._keyed()
        for kind in SWEPT:
            keyed = frames[kind.spec.frame]
            if len(keyed.frame):  # a mask keeps a conformed frame's order, dtypes and hashes
                keep = sweep.keeps(kind, keyed.frame["name"])
                frames[kind.spec.frame] = keyed.masked(
                    keyed.frame.loc[keep].reset_index(drop=True), keep
                )
        return self._with_frames(frames, sweep)

    def narrowed(
        self, kind: EntityKind, keep: Callable[[str, Mapping[str, Any]], dict[str, Any] | None]
    ) -> Snapshot:
        """This snapshot with ``kind``'s rows as ``keep(name, state)`` has them: left out for
        ``None``, else with that state (which shadows, and which of their sections, the
        pipeline replicates: ``pipeline.kinds.shadow_selection``)."""
        model = KINDS[kind]
        frame = self.frames[model.spec.frame]
        records = []
        for cells in frame.to_dict("records"):
            row = {str(column): value for column, value in cells.items()}
            record = {c.name: c.decode(plain_value(row[c.name])) for c in model.columns}
            kept = keep(str(record["name"]), desired_fields(kind, row))
            if kept is not None:
                records.append(model.encode({**record, **kept}))
        # ``_frame`` conformed the table (and hashed its keys): not conformed again.
        table = model.spec.frame
        return self._with_frames({**self._keyed(), table: _frame(table, records)}, self.sweep)

    # -- identity ---------------------------------------------------------------------------

    def tables(self) -> dict[str, pd.DataFrame]:
        return dict(self.frames)

    def counts(self) -> dict[str, int]:
        return {table: len(frame) for table, frame in self.tables().items()}

    def column_hashes(self, table: str) -> dict[str, np.ndarray]:
        """One 64-bit hash per cell of each key column of ``table`` (``SORT_KEYS``), for the
        diff's join: strings by ``string_hashes``, other dtypes by ``column_hash``.

        Only ever joined on within one process, and every pair it finds is checked on the values
        themselves (``reconcile.diff``): a fast hash, not a stable one (the fingerprint is).
        Made with the frame by ``conform`` (whose duplicate check uses them), so the diff's
        first call finds them; else computed on first use. Kept: a snapshot's frames are not
        to be mutated.
        """
        cache: dict[str, dict[str, np.ndarray]] = self.__dict__.setdefault("_column_hashes", {})
        hashes = cache.get(table)
        if hashes is None:
            hashes = cache[table] = key_hashes(self.frames[table], SORT_KEYS[table])
        return hashes

    def fingerprint(self) -> str:
        """sha256 over the canonical content of every table (not region or taken_at).

        Frames are conformed (fixed columns, dtypes and row order), so the content is digested
        column by column: a string column as its UTF-8 bytes and the length of each value (-1
        for a missing one), so chunking and offsets never matter and a Parquet round trip keeps
        it; another column as its cells' ``column_hash``. Hashing the bytes instead of a hash per
        cell keeps it cheap (about 1 GB/s). Computed once: a snapshot's frames are not to be
        mutated.
        """
        cached: str | None = self.__dict__.get("_fingerprint")
        if cached is not None:
            return cached
        digest = hashlib.sha256(f"snapshot-v{SNAPSHOT_FORMAT}".encode())
        if not self.sweep.whole:  # another slice is other content (a whole one's is unchanged)
            digest.update(f"\x1esweep\x1f{self.sweep.slice}/{self.sweep.slices}".encode())
        for table, frame in self.tables().items():
            digest.update(f"\x1e{table}\x1f{len(frame)}\x1f{','.join(frame.columns)}".encode())
            if not len(frame):
                continue
            for column in frame.columns:
                series = frame[column]
                if is_label(series) or is_packed(series):  # as its text (labels, packed)
                    (digest_labels if is_label(series) else digest_packed)(digest, series)
                elif isinstance(series.dtype, pd.StringDtype):
                    digest_strings(digest, arrow_strings(series))
                else:
                    digest.update(column_hash(series).astype("<u8").tobytes())
        value = digest.hexdigest()
        object.__setattr__(self, "_fingerprint", value)
        return value

    # -- persistence ------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """One Parquet file per table plus ``snapshot.json`` (region, time, fingerprint, counts)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for table, frame in self.tables().items():
            plain(frame).to_parquet(directory / f"{table}.parquet", index=False)
        manifest = {
            "format": SNAPSHOT_FORMAT,
            "region": self.region,
            "taken_at_ms": self.taken_at_ms,
            "fingerprint": self.fingerprint(),
            "counts": self.counts(),
            "sweep": {"slice": self.sweep.slice, "slices": self.sweep.slices},
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: Path) -> Snapshot:
        """The snapshot saved in ``directory``; refuses one whose content no longer matches."""
        directory = Path(directory)
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
            frames = {table: pd.read_parquet(directory / f"{table}.parquet") for table in SCHEMAS}
            sweep = Sweep(**manifest.get("sweep", {}))  # absent: saved before sweeps, whole
            snapshot = cls(
                str(manifest["region"]), int(manifest["taken_at_ms"]), frames, sweep=sweep
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise SnapshotFileError(directory, f"cannot load: {error}") from error
        if snapshot.fingerprint() != manifest.get("fingerprint"):
            raise SnapshotFileError(directory, "content does not match the recorded fingerprint")
        return snapshot

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return (
            self.region == other.region
            and self.taken_at_ms == other.taken_at_ms
            and self.fingerprint() == other.fingerprint()
        )

    __hash__ = None  # type: ignore[assignment]


# --- reading a region -------------------------------------------------------------------------


def take_snapshot(
    inventory: Inventory,
    region: str,
    *,
    progress: ListingProgress | None = None,
    expected: Mapping[str, int] | None = None,
    clock: Callable[[], int] = now_ms,
) -> Snapshot:
    """Read one region's whole registry through ``inventory`` (``reconcile.families.
    read_region``: the listing families at once, progress reported, links to entities the
    listing did not return dropped); its per-device links, of the inventory's sweep."""
    taken_at_ms = clock()
    records = read_region(inventory, region, progress=progress, expected=expected)
    tables = {KINDS[kind].spec.frame: rows for kind, rows in records.items()}
    snapshot = Snapshot.from_records(region, taken_at_ms, **tables)
    return snapshot._with_frames(snapshot._keyed(), inventory.sweep)  # what it listed


def plain_value(value: Any) -> Any:
    """A cell as a plain Python value: NA → None, numpy scalars → Python scalars."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def cell_value(column: str, value: Any) -> Any:
    """A cell as the plain value it stands for: canonical JSON columns are decoded."""
    plain = plain_value(value)
    if plain is None or column not in JSON_COLUMNS:
        return plain
    return json.loads(plain)


def desired_fields(kind: EntityKind, row: Mapping[str, Any] | pd.Series) -> dict[str, Any]:
    """A snapshot row as the kind's state fields (``pipeline.kinds``: what a corrective event
    carries). ``row`` is a row of the kind's table (a ``pd.Series`` or a dict of its columns)."""
    model = KINDS[kind]
    return model.decode({name: plain_value(row[name]) for name in model.spec.fields})
