"""Drift between two snapshots: what the destination region lacks, has extra, or holds differently.

Flow: ``reconcile.snapshot`` (source, destination) → ``diff_snapshots`` → ``DriftReport`` →
``reconcile.report`` (rendering) and the plan stage (corrective changes). A pure function over
DataFrames; no AWS calls.

How it scales (bench/results/README.md, B1): per table, the key (name; thing and group for
memberships) is hashed to 64-bit integers, vectorised over the Arrow buffers
(``Snapshot.column_hashes``: made with the snapshot, whose duplicate check uses them); the two
sides are joined on those (an integer hash join, verified on the key values, falling back to a
join on the values themselves should hashes ever collide, ``reconcile.pairs``); the paired
rows' compared cells are tested for equality by Arrow's kernels (a chunk of each side at a time:
snapshot tables are sorted by key, so paired rows come in the same order on both sides; a packed
column, ``reconcile.packed``, by its cells' digests), and only rows that differ are read back
into Python (each side's in one read, so a packed column's blocks are decompressed once) and
explained
field by field (attribute by attribute; JSON decoded in bulk). No Python-level work is done per
unchanged row, nor a hash per cell: cost is linear in fleet size. The snapshots' fingerprints,
which the report carries, are digested on a second thread and the memberships diffed on a third
meanwhile (hashing, sha256 and Arrow's kernels release the GIL). Names are bucketed by a stable
hash (``reconcile.hashing.bucket_of``) so
one bucket range can be diffed on its own and shards merged back
(``reconcile.drift.merge_reports``) into exactly the report an unsharded diff gives.

Versions are never compared: they are generated per region (pipeline/model.py). Memberships of
dynamic groups are never compared: each region's index computes them.

A drift the plan repairs (missing, changed) carries the rows it was found in (``Drift.rows``:
the source's, and the destination's for a changed one), so the plan never reads the snapshots
again.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd

from pipeline.clock import now_ms
from pipeline.kinds import ENTITIES, ENTITY_ORDER, KINDS
from pipeline.kinds.links import membership_name, membership_names
from pipeline.model import EntityKind
from pipeline.policyrewrite import ArnMapping
from reconcile.drift import Drift, DriftReport, RepairRows, changed_severity, new_drift
from reconcile.hashing import in_buckets
from reconcile.ignore import IgnoreRules
from reconcile.pairs import Side, cells_at, differing, join, side_of
from reconcile.snapshot import (
    JSON_COLUMNS,
    Snapshot,
    plain_value,
)
from reconcile.sweep import common

_BY_NAME = attrgetter("name")
# Columns whose JSON maps are explained key by key ("attributes.colour").
_PER_KEY_COLUMNS = frozenset({"attributes"})


def _wanted_buckets(buckets: int, bucket_range: range | None) -> np.ndarray | None:
    """The buckets of ``bucket_range`` as an array; ``None`` when the range covers them all."""
    if bucket_range is None or set(bucket_range) >= set(range(buckets)):
        return None
    return np.fromiter(bucket_range, dtype=np.uint64)


def _decoded(column: str, values: list[Any]) -> list[Any]:
    """Plain cells of ``column`` as the values they stand for: canonical JSON columns decoded,
    all of them in one ``json.loads`` (a call per cell costs more than the parsing)."""
    if column not in JSON_COLUMNS or not values:
        return values
    text = ",".join("null" if value is None else value for value in values)
    decoded = json.loads(f"[{text}]")
    if len(decoded) != len(values):  # never with canonical cells; as loud as one by one then
        decoded = [None if value is None else json.loads(value) for value in values]
    return list(decoded)


def _differing_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The keys whose values differ between two maps (absent reads as None), sorted."""
    try:  # the keys of the pairs only one map holds: most keys of a changed map are equal
        candidates: Any = {key for key, _ in before.items() ^ after.items()}
    except TypeError:  # an unhashable value: every key
        candidates = before.keys() | after.keys()
    return sorted(key for key in candidates if before.get(key) != after.get(key))


def _changed_details(
    columns: tuple[str, ...], before: dict[str, list[Any]], after: dict[str, list[Any]]
) -> list[dict[str, dict[str, Any]]]:
    """Per changed row (``before`` the source's cells, ``after`` the destination's), its
    field-wise differences: the decoded values of the fields that differ (a field equal on both
    sides is absent), attribute maps key by key, fields in ``columns`` order. Canonical
    encodings compare equal as cells: only the cells that differ are decoded, a column at a
    time (one ``json.loads`` each)."""
    count = len(before["name"])
    details: list[dict[str, dict[str, Any]]] = [{} for _ in range(count)]
    for column in columns:
        left, right = before[column], after[column]
        differ = [i for i in range(count) if left[i] != right[i]]
        lefts = _decoded(column, [left[i] for i in differ])
        rights = _decoded(column, [right[i] for i in differ])
        if column not in _PER_KEY_COLUMNS:
            for i, value_before, value_after in zip(differ, lefts, rights, strict=True):
                details[i][column] = {"source": value_before, "target": value_after}
            continue
        prefix = f"{column}."
        for i, cell_before, cell_after in zip(differ, lefts, rights, strict=True):
            map_before, map_after = cell_before or {}, cell_after or {}
            row = details[i]
            for key in _differing_keys(map_before, map_after):
                row[prefix + key] = {"source": map_before.get(key), "target": map_after.get(key)}
    return details


def _one_side(
    columns: tuple[str, ...], cells: dict[str, list[Any]], side: str
) -> list[dict[str, dict[str, Any]]]:
    """Per row of ``cells`` (one side's), its details: every field, the other side None.
    Built a column at a time (a comprehension per column, then one ``dict(zip)`` per row)."""
    if not columns:
        return [{} for _ in cells["name"]]
    other = "target" if side == "source" else "source"
    fields = [[{side: value, other: None} for value in _decoded(c, cells[c])] for c in columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*fields, strict=True)]


def _own_rows(
    kind: EntityKind,
    own: pd.DataFrame,
    positions: np.ndarray,
    read: tuple[pd.DataFrame, dict[str, list[Any]]],
) -> list[dict[str, Any]]:
    """The rows a repair is made from: plain cells of the kind's name, state columns and
    version. ``read``: a frame and the cells of some of its columns already read at
    ``positions``, reused (not read again) where that frame is ``own``."""
    columns = ("name", *ENTITIES[kind].state_fields)
    columns += ("version",) if "version" in own.columns else ()
    frame, cells = read
    known = cells if frame is own else {}
    cells = {**known, **cells_at(own, positions, tuple(c for c in columns if c not in known))}
    rows = zip(*(cells[c] for c in columns), strict=True)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _split(
    cells: dict[str, list[Any]], count: int
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """Cells read for two sets of rows at once, parted: the first ``count`` rows', the rest's."""
    return (
        {column: values[:count] for column, values in cells.items()},
        {column: values[count:] for column, values in cells.items()},
    )


def _diff_entities(
    kind: EntityKind, source: Side, destination: Side, own: pd.DataFrame
) -> list[list[Drift]]:
    """The drift of a named kind, in blocks (missing, extra, changed: ``_in_order``); ``own`` is the source's table as read (the compared side may
    be rewritten as the replicator writes it: the desired state is the source's own)."""
    # The compared columns: the kind's state fields (not the name nor the per-region version,
    # nor a field it carries uncompared).
    columns = ENTITIES[kind].compared_fields
    names = ("name", *columns)
    # Names are joined through their hashes; only the rows that differ are ever read again.
    joined = join(source, destination, ("name",))
    pairs = (source.positions(joined.both_source), destination.positions(joined.both_destination))
    differ = differing(source.frame, destination.frame, columns, pairs)

    # The drifts are built by comprehensions over columns read in bulk (no call per drift
    # beyond its own construction): 40,000 of them at 1M things (bench/results/README.md, B1).
    # Each side's cells are read in one call (a packed column's blocks decompressed once).
    missing, changed = source.positions(joined.source_only), pairs[0][differ]
    extra = destination.positions(joined.destination_only)
    cells, before = _split(
        cells_at(source.frame, np.concatenate([missing, changed]), names), len(missing)
    )
    theirs, after = _split(
        cells_at(destination.frame, np.concatenate([extra, pairs[1][differ]]), names), len(extra)
    )
    missing_drifts = [
        new_drift(kind, str(name), "missing", "high", details, rows=RepairRows(own_row))
        for name, details, own_row in zip(
            cells["name"],
            _one_side(columns, cells, "source"),
            _own_rows(kind, own, missing, (source.frame, cells)),
            strict=True,
        )
    ]
    extra_drifts = [
        new_drift(kind, str(name), "extra", "medium", details)
        for name, details in zip(theirs["name"], _one_side(columns, theirs, "target"), strict=True)
    ]
    targets = [dict(zip(names, row, strict=True)) for row in zip(*after.values(), strict=True)]
    changed_drifts = [
        new_drift(
            kind,
            str(name),
            "changed",
            changed_severity(kind, details),
            details,
            rows=RepairRows(own_row, target),
        )
        for name, details, own_row, target in zip(
            before["name"],
            _changed_details(columns, before, after),
            _own_rows(kind, own, changed, (source.frame, before)),
            targets,
            strict=True,
        )
        if details  # ARN rewriting aside, differing cells mean a differing field
    ]
    return [missing_drifts, extra_drifts, changed_drifts]


def _static_links(
    snapshot: Snapshot, dynamic: set[str], buckets: int, wanted: np.ndarray | None
) -> Side:
    """The memberships compared: links to static groups, in the shard, keyed by (thing, group)."""
    links = snapshot.memberships
    keep: np.ndarray | None = None
    if dynamic:
        keep = ~links["group"].isin(list(dynamic)).to_numpy(dtype=bool)
    if wanted is not None:  # a link's bucket is its name's ("thing#group")
        names = membership_names(links["thing"], links["group"].astype("string"))
        in_shard = in_buckets(names, buckets, wanted)
        keep = in_shard if keep is None else keep & in_shard
    rows = None if keep is None else np.flatnonzero(keep)
    spec = ENTITIES[EntityKind.MEMBERSHIP]
    return side_of(snapshot, spec.frame, rows, spec.frame_key)


def _diff_memberships(source: Side, destination: Side) -> list[list[Drift]]:
    """Memberships are a set of (thing, group) pairs: only missing and extra exist (two
    blocks, ``_in_order``)."""
    joined = join(source, destination, ENTITIES[EntityKind.MEMBERSHIP].frame_key)
    entity = EntityKind.MEMBERSHIP
    picked = cells_at(source.frame, source.positions(joined.source_only), ("thing", "group"))
    groups: dict[str, str] = {}  # one string per group, not one per link
    missing = [
        new_drift(
            entity,
            membership_name(link_thing, link_group),
            "missing",
            "high",
            {},
            thing=link_thing,
            group=link_group,
            rows=RepairRows({}),
        )
        for link_thing, group in zip(picked["thing"], picked["group"], strict=True)
        for link_group in (groups.setdefault(group, group),)
    ]
    picked = cells_at(
        destination.frame, destination.positions(joined.destination_only), ("thing", "group")
    )
    extra = [
        new_drift(
            entity,
            membership_name(link_thing, link_group),
            "extra",
            "medium",
            {},
            thing=link_thing,
            group=link_group,
        )
        for link_thing, group in zip(picked["thing"], picked["group"], strict=True)
        for link_group in (groups.setdefault(group, group),)
    ]
    return [missing, extra]


def _diff_links(
    source: Snapshot, destination: Snapshot, buckets: int, wanted: np.ndarray | None
) -> tuple[list[list[Drift]], int]:
    """The memberships' drifts (in blocks, ``_in_order``) and the links compared."""
    # A group dynamic on either side has no comparable membership (its members are computed).
    dynamic = _dynamic_groups(source) | _dynamic_groups(destination)
    src_links = _static_links(source, dynamic, buckets, wanted)
    dst_links = _static_links(destination, dynamic, buckets, wanted)
    return _diff_memberships(src_links, dst_links), len(src_links)


def _dynamic_groups(snapshot: Snapshot) -> set[str]:
    groups = snapshot.thing_groups
    return set(groups.loc[groups["query"].notna(), "name"].astype(str))


def side_label(snapshot: Snapshot) -> str:
    """How a side appears in reports where a region would: its region, or for the state table
    read in a region, ``us-east-1 state table``."""
    if snapshot.origin == "state_table":
        return f"{snapshot.region} state table"
    return snapshot.region


def _as_written(
    kind: EntityKind, source: Snapshot, destination: Snapshot, accounts: Mapping[str, str]
) -> Snapshot:
    """``source`` with the kind's ARN fields (``Kind.arn_fields``: a policy's document, a role
    alias's role) as the replicator writes them in the destination: the source's region, and
    ``accounts`` (the replicator's ``POLICY_ACCOUNT_MAP``), rewritten to the destination's.
    Compared with the state table (which holds the source's state), nothing is rewritten; the
    table compared with a registry is rewritten from the region the table was read in."""
    model = KINDS[kind]
    table = model.spec.frame
    frame = getattr(source, table)
    if not model.arn_fields or frame.empty or destination.origin == "state_table":
        return source
    if source.region == destination.region and not accounts:
        return source
    mapping = ArnMapping(regions={source.region: destination.region}, accounts=accounts)
    frame = frame.copy()
    for field in model.arn_fields:
        column = model.column(field)
        frame[field] = [
            None
            if pd.isna(cell)
            else column.encode(model.written(field, column.decode(plain_value(cell)), mapping))
            for cell in frame[field]
        ]
    return source.with_table(table, frame)


def _diff_tables(
    source: Snapshot,
    destination: Snapshot,
    *,
    shard: Callable[[Snapshot, str], np.ndarray | None],
    policy_accounts: Mapping[str, str] | None,
) -> tuple[list[list[Drift]], dict[str, int]]:
    """Every named kind's drifts (in blocks, ``_in_order``; unfiltered) and the entities
    compared per kind."""
    drifts: list[list[Drift]] = []
    counts: dict[str, int] = {}
    for kind in ENTITY_ORDER:
        if kind is EntityKind.MEMBERSHIP:
            continue
        table = ENTITIES[kind].frame
        # A copy's ARNs name the destination (``Kind.arn_fields``): the source's state is
        # compared as the replicator writes it. Fingerprints stay the source's.
        side = _as_written(kind, source, destination, policy_accounts or {})
        src = side_of(side, table, shard(side, table), ("name",))
        dst = side_of(destination, table, shard(destination, table), ("name",))
        counts[kind.value] = len(src)
        drifts += _diff_entities(kind, src, dst, getattr(source, table))

    return drifts, counts


def _in_order(blocks: list[list[Drift]]) -> list[Drift]:
    """The drifts of ``blocks`` (each holds one entity kind's drifts of one drift kind) in
    ``Drift.sort_key``'s order: each block sorted by name (a C-level key; a block comes in its
    table's order, sorted by name already, so the sort mostly checks), then the blocks by their
    ranks. The same order as sorting them all by ``Drift.sort_key`` (both sorts are stable),
    without a Python call per drift."""
    drifts: list[Drift] = []
    for block in sorted((b for b in blocks if b), key=lambda b: b[0].sort_key()[:2]):
        block.sort(key=_BY_NAME)
        drifts += block
    return drifts


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (as it was before, after it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def diff_snapshots(
    source: Snapshot,
    destination: Snapshot,
    *,
    ignore: IgnoreRules | None = None,
    buckets: int = 1,
    bucket_range: range | None = None,
    clock: Callable[[], int] = now_ms,
    policy_accounts: Mapping[str, str] | None = None,
) -> DriftReport:
    """Every difference between ``source`` and ``destination`` (the region that should match it).

    Policy documents are compared as the replicator writes them: the source's region, and its
    accounts as ``policy_accounts`` maps them, rewritten to the destination's (so are the
    other kinds' ARN fields, ``Kind.arn_fields``).

    With ``bucket_range`` only names whose ``bucket_of(name, buckets)`` falls in the range are
    diffed (and counted); ``merge_reports`` of shards covering every bucket equals the
    unsharded report. ``ignore`` drops matching drifts (or fields of them) from the report.
    Per-device links are compared on the slice both snapshots hold (``reconcile.sweep.common``;
    the report says which).
    """
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    if bucket_range is not None and (
        len(bucket_range) and (min(bucket_range) < 0 or max(bucket_range) >= buckets)
    ):
        raise ValueError(f"bucket_range {bucket_range} outside 0..{buckets - 1}")

    wanted = _wanted_buckets(buckets, bucket_range)
    # Compared on the slice of the per-device links both hold (``reconcile.sweep``).
    sweep = common(source.sweep, destination.sweep)
    source, destination = source.swept(sweep), destination.swept(sweep)

    def shard(snapshot: Snapshot, table: str) -> np.ndarray | None:
        """Positions of the rows in the shard (``None``: every row)."""
        if wanted is None:
            return None
        return np.flatnonzero(in_buckets(getattr(snapshot, table)["name"], buckets, wanted))

    # Both fingerprints (sha256 over every table's bytes, which releases the GIL) are taken on a
    # second thread, and the memberships (mostly Arrow and numpy work, which release it too) are
    # diffed on a third, while this one diffs the named kinds: the report carries the
    # fingerprints, and a fresh snapshot has none (the nightly job's snapshots have theirs:
    # jobs.run saves them, which computes them, before it diffs). The cyclic garbage collector is paused
    # meanwhile: the drifts are many small dicts and no cycles, and its passes over them took a
    # sixth of the diff's time (bench/results/README.md, B1).
    with _collector_paused(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="diff") as pool:
        fingerprints = pool.submit(lambda: (source.fingerprint(), destination.fingerprint()))
        links = pool.submit(_diff_links, source, destination, buckets, wanted)
        blocks, counts = _diff_tables(
            source, destination, shard=shard, policy_accounts=policy_accounts
        )
        link_drifts, counts[EntityKind.MEMBERSHIP.value] = links.result()
        source_fingerprint, target_fingerprint = fingerprints.result()
    drifts = _in_order([*blocks, *link_drifts])
    if ignore is not None:
        drifts = list(ignore.filter(drifts))
    return DriftReport(
        source_region=side_label(source),
        target_region=side_label(destination),
        source_fingerprint=source_fingerprint,
        target_fingerprint=target_fingerprint,
        generated_at_ms=clock(),
        drifts=tuple(drifts),
        counts=counts,
        sweep=sweep,
    )
