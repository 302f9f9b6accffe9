"""Drift between two snapshots: what the target region lacks, has extra, or holds differently.

Flow: ``reconcile.snapshot`` (source, target) → ``diff_snapshots`` → ``DriftReport`` →
``reconcile.report`` (rendering) and the plan stage (corrective changes). A pure function over
DataFrames; no AWS calls.

How it scales: each table gets one 64-bit hash per row over its value columns
(``pd.util.hash_pandas_object``), the two sides are outer-joined on the name, and only rows whose
hashes differ are compared field by field to explain *what* differs (attribute by attribute).
Cost is linear in fleet size. Names are bucketed by a stable hash (``bucket_of``) so one bucket
range can be diffed on its own and shards merged back (``merge_reports``) into exactly the
report an unsharded diff gives.

Versions are never compared: they are generated per region (pipeline/model.py). Memberships of
dynamic groups are never compared: each region's index computes them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from pipeline.errors import PermanentError
from pipeline.model import KEY_SEPARATOR, EntityKind
from reconcile.snapshot import TABLE_OF_KIND, Snapshot, cell_value

if TYPE_CHECKING:
    from reconcile.ignore import IgnoreRules

DriftKind = Literal["missing", "extra", "changed"]
Severity = Literal["high", "medium", "low"]

# Dependency order, the order a repair runs in: report and plan read the same way.
ENTITY_ORDER: tuple[EntityKind, ...] = (
    EntityKind.THING_TYPE,
    EntityKind.THING_GROUP,
    EntityKind.BILLING_GROUP,
    EntityKind.THING,
    EntityKind.MEMBERSHIP,
)
DRIFT_KINDS: tuple[DriftKind, ...] = ("missing", "extra", "changed")

# The compared columns of each table (all of them but the name and the per-region version).
VALUE_COLUMNS: dict[EntityKind, tuple[str, ...]] = {
    EntityKind.THING: ("thing_type", "attributes", "billing_group"),
    EntityKind.THING_TYPE: ("description", "searchable_attributes", "deprecated"),
    EntityKind.THING_GROUP: ("parent", "description", "attributes", "query"),
    EntityKind.BILLING_GROUP: ("description",),
}
# Columns whose JSON maps are explained key by key ("attributes.colour").
_PER_KEY_COLUMNS = frozenset({"attributes"})

# How much a difference matters for a DR region. A missing entity breaks failover; a wrong
# type, parent or dynamic query changes what the fleet *is*; attribute and flag differences
# change behaviour at the edges; a description is cosmetic.
_FIELD_SEVERITY: dict[str, Severity] = {
    "thing_type": "high",
    "parent": "high",
    "query": "high",
    "billing_group": "medium",
    "attributes": "medium",
    "searchable_attributes": "medium",
    "deprecated": "medium",
    "description": "low",
}
_SEVERITY_RANK: dict[Severity, int] = {"low": 0, "medium": 1, "high": 2}


class ReportMergeError(PermanentError):
    """Shard reports that cannot be merged (different snapshots, or overlapping shards)."""


@dataclass(frozen=True)
class Drift:
    """One difference for one entity. ``details`` maps a field (``attributes.<key>`` for
    attributes) to ``{"source": value, "target": value}``; values are plain JSON values."""

    entity: EntityKind
    name: str  # for memberships: "thing#group" (pipeline.model.membership_name)
    kind: DriftKind  # missing = in source, not target; extra = in target only
    severity: Severity
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    thing: str | None = None  # memberships only
    group: str | None = None

    def sort_key(self) -> tuple[int, int, str]:
        return (ENTITY_ORDER.index(self.entity), DRIFT_KINDS.index(self.kind), self.name)


@dataclass(frozen=True)
class DriftReport:
    source_region: str
    target_region: str
    source_fingerprint: str
    target_fingerprint: str
    generated_at_ms: int
    drifts: tuple[Drift, ...]  # sorted by (entity order, drift kind order, name)
    counts: dict[str, int]  # entities compared per kind (source side)

    def summary(self) -> dict[str, dict[str, int]]:
        """``entity -> {missing, extra, changed}``, every entity kind present (zeros too)."""
        table: dict[str, dict[str, int]] = {
            kind.value: dict.fromkeys(DRIFT_KINDS, 0) for kind in ENTITY_ORDER
        }
        for drift in self.drifts:
            table[drift.entity.value][drift.kind] += 1
        return table

    @property
    def in_sync(self) -> bool:
        return not self.drifts


def bucket_of(name: str, buckets: int) -> int:
    """The shard of ``name`` among ``buckets``: stable across processes, runs and machines."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets


def _in_buckets(names: pd.Series, buckets: int, bucket_range: range | None) -> np.ndarray:
    if bucket_range is None or set(bucket_range) >= set(range(buckets)):
        return np.ones(len(names), dtype=bool)
    wanted = set(bucket_range)
    return np.fromiter(
        (bucket_of(name, buckets) in wanted for name in names), dtype=bool, count=len(names)
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def changed_severity(details: dict[str, dict[str, Any]]) -> Severity:
    severity: Severity = "low"
    for name in details:
        candidate = _FIELD_SEVERITY.get(name.split(".", 1)[0], "medium")
        if _SEVERITY_RANK[candidate] > _SEVERITY_RANK[severity]:
            severity = candidate
    return severity


def _explain(
    columns: tuple[str, ...], source: Mapping[Any, Any], target: Mapping[Any, Any]
) -> dict[str, dict[str, Any]]:
    """Field-wise differences of two rows (raw cells), attribute maps key by key."""
    details: dict[str, dict[str, Any]] = {}
    for column in columns:
        before = cell_value(column, source[column])
        after = cell_value(column, target[column])
        if before == after:
            continue
        if column in _PER_KEY_COLUMNS:
            before = before or {}
            after = after or {}
            for key in sorted(set(before) | set(after)):
                if before.get(key) != after.get(key):
                    details[f"{column}.{key}"] = {
                        "source": before.get(key),
                        "target": after.get(key),
                    }
        else:
            details[column] = {"source": before, "target": after}
    return details


def _one_side(
    columns: tuple[str, ...], row: Mapping[Any, Any], side: str
) -> dict[str, dict[str, Any]]:
    other = "target" if side == "source" else "source"
    return {c: {side: cell_value(c, row[c]), other: None} for c in columns}


def _row_hash(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    if frame.empty:
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(frame.loc[:, list(columns)], index=False).to_numpy()


def _diff_entities(kind: EntityKind, source: pd.DataFrame, target: pd.DataFrame) -> list[Drift]:
    columns = VALUE_COLUMNS[kind]
    left = pd.DataFrame({"name": source["name"], "_h": _row_hash(source, columns)})
    right = pd.DataFrame({"name": target["name"], "_h": _row_hash(target, columns)})
    joined = left.merge(right, on="name", how="outer", suffixes=("_s", "_t"), indicator=True)
    side = joined["_merge"]
    missing = joined.loc[side == "left_only", "name"]
    extra = joined.loc[side == "right_only", "name"]
    both = joined[side == "both"]
    changed = both.loc[both["_h_s"] != both["_h_t"], "name"]

    drifts: list[Drift] = []
    src = source.set_index("name", drop=False)
    tgt = target.set_index("name", drop=False)
    for row in src.loc[missing.to_numpy(), list(columns)].to_dict("index").items():
        drifts.append(
            Drift(kind, str(row[0]), "missing", "high", _one_side(columns, row[1], "source"))
        )
    for row in tgt.loc[extra.to_numpy(), list(columns)].to_dict("index").items():
        drifts.append(
            Drift(kind, str(row[0]), "extra", "medium", _one_side(columns, row[1], "target"))
        )
    names = changed.to_numpy()
    before = src.loc[names, list(columns)].to_dict("index")
    after = tgt.loc[names, list(columns)].to_dict("index")
    for name in names:
        details = _explain(columns, before[name], after[name])
        if details:  # both sides share dtypes, so differing hashes mean a differing field
            drifts.append(Drift(kind, str(name), "changed", changed_severity(details), details))
    return drifts


def _static_memberships(snapshot: Snapshot, dynamic: set[str]) -> pd.DataFrame:
    links = snapshot.memberships
    if dynamic:
        links = links[~links["group"].isin(list(dynamic))]
    return pd.DataFrame({"name": links["thing"] + KEY_SEPARATOR + links["group"]})


def _dynamic_groups(snapshot: Snapshot) -> set[str]:
    groups = snapshot.thing_groups
    return set(groups.loc[groups["query"].notna(), "name"].astype(str))


def diff_snapshots(
    source: Snapshot,
    target: Snapshot,
    *,
    ignore: IgnoreRules | None = None,
    buckets: int = 1,
    bucket_range: range | None = None,
    clock: Callable[[], int] = _now_ms,
) -> DriftReport:
    """Every difference between ``source`` and ``target`` (the region that should match it).

    With ``bucket_range`` only names whose ``bucket_of(name, buckets)`` falls in the range are
    diffed (and counted); ``merge_reports`` of shards covering every bucket equals the
    unsharded report. ``ignore`` drops matching drifts (or fields of them) from the report.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    if bucket_range is not None and (
        len(bucket_range) and (min(bucket_range) < 0 or max(bucket_range) >= buckets)
    ):
        raise ValueError(f"bucket_range {bucket_range} outside 0..{buckets - 1}")

    def shard(frame: pd.DataFrame) -> pd.DataFrame:
        mask = _in_buckets(frame["name"], buckets, bucket_range)
        return frame if mask.all() else frame[mask]

    drifts: list[Drift] = []
    counts: dict[str, int] = {}
    for kind in ENTITY_ORDER:
        if kind is EntityKind.MEMBERSHIP:
            continue
        table = TABLE_OF_KIND[kind]
        src = shard(getattr(source, table))
        tgt = shard(getattr(target, table))
        counts[kind.value] = len(src)
        drifts.extend(_diff_entities(kind, src, tgt))

    # A group dynamic on either side has no comparable membership (its members are computed).
    dynamic = _dynamic_groups(source) | _dynamic_groups(target)
    src_links = shard(_static_memberships(source, dynamic))
    tgt_links = shard(_static_memberships(target, dynamic))
    counts[EntityKind.MEMBERSHIP.value] = len(src_links)
    src_names = set(src_links["name"].astype(str))
    tgt_names = set(tgt_links["name"].astype(str))
    for names, drift_kind, severity in (
        (src_names - tgt_names, "missing", "high"),
        (tgt_names - src_names, "extra", "medium"),
    ):
        for name in names:
            thing, _, group = name.partition(KEY_SEPARATOR)
            drifts.append(
                Drift(
                    EntityKind.MEMBERSHIP,
                    name,
                    drift_kind,  # type: ignore[arg-type]
                    severity,  # type: ignore[arg-type]
                    {},
                    thing=thing,
                    group=group,
                )
            )

    if ignore is not None:
        drifts = list(ignore.filter(drifts))
    drifts.sort(key=Drift.sort_key)
    return DriftReport(
        source_region=source.region,
        target_region=target.region,
        source_fingerprint=source.fingerprint(),
        target_fingerprint=target.fingerprint(),
        generated_at_ms=clock(),
        drifts=tuple(drifts),
        counts=counts,
    )


def merge_reports(reports: Iterable[DriftReport]) -> DriftReport:
    """One report from shard reports of the same snapshot pair (disjoint bucket ranges)."""
    shards = list(reports)
    if not shards:
        raise ReportMergeError("no reports to merge")
    first = shards[0]
    identity = (
        first.source_region,
        first.target_region,
        first.source_fingerprint,
        first.target_fingerprint,
    )
    counts: dict[str, int] = {}
    drifts: list[Drift] = []
    seen: set[tuple[EntityKind, str]] = set()
    for report in shards:
        if (
            report.source_region,
            report.target_region,
            report.source_fingerprint,
            report.target_fingerprint,
        ) != identity:
            raise ReportMergeError("reports come from different snapshots")
        for kind, count in report.counts.items():
            counts[kind] = counts.get(kind, 0) + count
        for drift in report.drifts:
            if (drift.entity, drift.name) in seen:
                raise ReportMergeError(
                    f"{drift.entity.value} {drift.name} appears in two shards: ranges overlap"
                )
            seen.add((drift.entity, drift.name))
            drifts.append(drift)
    drifts.sort(key=Drift.sort_key)
    return DriftReport(
        source_region=first.source_region,
        target_region=first.target_region,
        source_fingerprint=first.source_fingerprint,
        target_fingerprint=first.target_fingerprint,
        generated_at_ms=max(r.generated_at_ms for r in shards),
        drifts=tuple(drifts),
        counts=counts,
    )
