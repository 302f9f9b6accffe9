"""The drift model: what differs between the two registries, entity by entity.

``reconcile.diff`` finds drift, ``reconcile.ignore`` filters it, ``reconcile.report`` renders it
and ``reconcile.plan`` turns it into repairs; all of them read these types, so they live apart
from the diff engine (which imports the ignore rules, which need the severity of a drift).
Reports of a sharded diff merge back into one here (``merge_reports``, for ``jobs.shard``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal

from pipeline.errors import PermanentError
from pipeline.kinds import ENTITIES, ENTITY_ORDER
from pipeline.kinds.base import Severity
from pipeline.model import EntityKind
from reconcile.sweep import WHOLE, Sweep

DriftKind = Literal["missing", "extra", "changed"]
# Where a drift was lost, from the three-way audit (reconcile.explain): the source registry and
# the state table disagree / the table holds the source's state but the destination differs /
# the table disagrees with both / not lost: a thing type on its way out of the destination, which
# AWS deletes only 5 minutes after its deprecation (the destination stack's pending task) / not
# lost: a certificate (and its links) the destination's registry refused to register
# (``pipeline.kinds.certificate_refusal``), which no repair can register.
LossPoint = Literal[
    "lost_before_table",
    "lost_after_table",
    "table_only",
    "type_deletion_pending",
    "not_registrable",
]
LOSS_POINTS: tuple[LossPoint, ...] = (
    "lost_before_table",
    "lost_after_table",
    "table_only",
    "type_deletion_pending",
    "not_registrable",
)

DRIFT_KINDS: tuple[DriftKind, ...] = ("missing", "extra", "changed")
# Drift.sort_key's ranks, looked up rather than searched for (a report sorts every drift).
_ENTITY_RANK = {entity: rank for rank, entity in enumerate(ENTITY_ORDER)}
_KIND_RANK = {kind: rank for rank, kind in enumerate(DRIFT_KINDS)}

SEVERITY_RANK: dict[Severity, int] = {"low": 0, "medium": 1, "high": 2}


def changed_severity(entity: EntityKind, details: dict[str, dict[str, Any]]) -> Severity:
    """The severity of a ``changed`` drift: its most severe field's (``EntitySpec.fields``;
    ``attributes.<key>`` counts as ``attributes``, an unknown field as medium)."""
    fields = ENTITIES[entity].fields
    severity: Severity = "low"
    for name in details:
        candidate = fields.get(name.split(".", 1)[0], "medium")
        if SEVERITY_RANK[candidate] > SEVERITY_RANK[severity]:
            severity = candidate
    return severity


@dataclass(frozen=True, slots=True)
class RepairRows:
    """What a repair of a drift is made from: the rows the diff compared, as it read them (plain
    cells of the state columns, and the registry version where the table has one), which the plan
    decodes (``reconcile.snapshot.desired_fields``): the source's, and for a changed drift the
    destination's (the plan keeps its fields where ignore rules cover them)."""

    source: dict[str, Any]
    destination: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Drift:
    """One difference for one entity. ``details`` maps a field (``attributes.<key>`` for
    attributes) to ``{"source": value, "target": value}``; values are plain JSON values.
    "target" is the saved reports' name for the destination (docs/design.md, "Names")."""

    entity: EntityKind
    name: str  # for memberships: "thing#group" (pipeline.model.membership_name)
    kind: DriftKind  # missing = in source, not destination; extra = in destination only
    severity: Severity
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    thing: str | None = None  # memberships only
    group: str | None = None
    where: LossPoint | None = None  # set by the three-way audit (reconcile.explain) only
    # Where ``type_deletion_pending``: when the pending task may finish it (epoch seconds).
    finishes_at: int | None = None
    # Where ``not_registrable``: "cannot be registered in <region>: <AWS's code and reason>".
    refused: str | None = None
    # Why a failback reconcile does not repair it (reconcile.failback); None: repairable.
    held: str | None = None
    # The rows to repair from, for the plan (missing and changed drifts); not part of the drift's
    # identity, nor of the JSON report (reconcile.report).
    rows: RepairRows | None = field(default=None, compare=False, repr=False)

    def sort_key(self) -> tuple[int, int, str]:
        return (_ENTITY_RANK[self.entity], _KIND_RANK[self.kind], self.name)


# ``new_drift``'s means: the slots' own setters, in field order, and the other fields' defaults.
_SETTERS = {f.name: getattr(Drift, f.name).__set__ for f in fields(Drift)}
_BULK_FIELDS = ("entity", "name", "kind", "severity", "details", "thing", "group", "rows")
_OTHER_DEFAULTS = tuple(
    (_SETTERS[f.name], f.default) for f in fields(Drift) if f.name not in _BULK_FIELDS
)
if any(default is MISSING for _, default in _OTHER_DEFAULTS):  # a plain default each, or else
    raise TypeError("new_drift sets Drift's other fields to their defaults: give each one")
(_ENTITY, _NAME, _KIND, _SEVERITY, _DETAILS, _THING, _GROUP, _ROWS) = (
    _SETTERS[name] for name in _BULK_FIELDS
)


def new_drift(
    entity: EntityKind,
    name: str,
    kind: DriftKind,
    severity: Severity,
    details: dict[str, dict[str, Any]],
    *,
    thing: str | None = None,
    group: str | None = None,
    rows: RepairRows | None = None,
) -> Drift:
    """``Drift(entity, name, kind, severity, details, thing, group, rows=rows)``, the other
    fields their defaults, made at half the cost: a frozen dataclass's ``__init__`` sets each
    field through ``object.__setattr__``, and the diff makes a drift per differing row (70,000
    at 1M things, bench/results/README.md, B1); this sets the slots directly."""
    drift: Drift = object.__new__(Drift)
    _ENTITY(drift, entity)
    _NAME(drift, name)
    _KIND(drift, kind)
    _SEVERITY(drift, severity)
    _DETAILS(drift, details)
    _THING(drift, thing)
    _GROUP(drift, group)
    _ROWS(drift, rows)
    for setter, default in _OTHER_DEFAULTS:
        setter(drift, default)
    return drift


@dataclass(frozen=True)
class DriftReport:
    source_region: str
    target_region: str  # the destination (the saved reports' field names)
    source_fingerprint: str
    target_fingerprint: str
    generated_at_ms: int
    drifts: tuple[Drift, ...]  # sorted by (entity order, drift kind order, name)
    counts: dict[str, int]  # entities compared per kind (source side)
    # True once the three-way audit (reconcile.explain) set every drift's ``where``.
    explained: bool = False
    # The slice of the per-device links compared (``reconcile.sweep``; WHOLE: every link).
    sweep: Sweep = WHOLE

    def where_summary(self) -> dict[str, int]:
        """``loss point -> drifts`` (every loss point present, zeros too; explained reports)."""
        counts: dict[str, int] = dict.fromkeys(LOSS_POINTS, 0)
        for drift in self.drifts:
            if drift.where is not None:
                counts[drift.where] += 1
        return counts

    def summary(self) -> dict[str, dict[str, int]]:
        """``entity -> {missing, extra, changed}``, every entity kind present (zeros too)."""
        table: dict[str, dict[str, int]] = {
            kind.value: dict.fromkeys(DRIFT_KINDS, 0) for kind in ENTITY_ORDER
        }
        for drift in self.drifts:
            table[drift.entity.value][drift.kind] += 1
        return table

    @property
    def held(self) -> tuple[Drift, ...]:
        """The drifts a failback reconcile holds back (``reconcile.failback``)."""
        return tuple(drift for drift in self.drifts if drift.held)

    @property
    def in_sync(self) -> bool:
        return not self.drifts


class ReportMergeError(PermanentError):
    """Shard reports that cannot be merged (different snapshots, or overlapping shards)."""


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
        explained=all(r.explained for r in shards),
        sweep=first.sweep,  # the same in every shard: the fingerprints hold it
    )
