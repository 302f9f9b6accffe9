"""The three-way audit: where each drift was lost, from the state table as a third view.

The pipeline is registry → events → state table → replicator → destination registry, and the
table holds every entity's desired state (pipeline.statetable). So besides source vs
destination, the audit can read the table (a parallel Scan: DynamoDB capacity, no IoT quota)
and say for each drift which hop lost it:

- ``lost_before_table``: the source and the table disagree, the table and the destination
  agree: the change never reached the pipeline (registry events disabled, the rule's action
  failed, an event dropped).
- ``lost_after_table``: the table holds the source's state but the destination differs: the
  replicator could not apply it, or someone edited the destination by hand.
- ``table_only``: the table disagrees with both; among them a row for an entity neither
  registry holds (a lost delete, a link AWS deleted with its group or thing): repair tombstones it.

Flow: ``table_snapshot`` (state-table items → a ``Snapshot``, the same tables and canonical
values as a registry's) → ``explain`` (three pure diffs → each drift's ``where``). A "changed"
drift is judged on the fields it names, so an unrelated difference between the source and the
table (say a billing group, which has no registry events) does not mask a hand edit.
The table is read at a slightly different moment than the registries: a change in flight
while the audit runs can land in either class.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pipeline.errors import EventValidationError
from pipeline.kinds import ENTITIES
from pipeline.kinds.certificate_refusal import OPERATOR_FIX, UnregistrableCertificate
from pipeline.kinds.links import ends, split_membership_name
from pipeline.kinds.thing_type import PendingTypeDeletion
from pipeline.model import EntityKind, Item
from pipeline.statetable import SCAN_SEGMENTS, StateTable
from reconcile.diff import diff_snapshots
from reconcile.drift import LOSS_POINTS, Drift, DriftReport, LossPoint
from reconcile.snapshot import Snapshot

if TYPE_CHECKING:
    from reconcile.ignore import IgnoreRules

# What to do about each class: the report prints it next to the class.
FIXES: dict[LossPoint, str] = {
    "lost_before_table": (
        "the change never reached the state table: check that registry events are enabled "
        "(iot-crr enable-events) and the IoT rule's error action / dead-letter queue; billing "
        "groups have no registry events and reach the table only through reconciliation"
    ),
    "lost_after_table": (
        "the table holds the source's state but the destination differs: check the "
        "replicator's failure queue, or whether someone edited the destination by hand"
    ),
    "table_only": (
        "the table disagrees with both registries: repair (iot-crr reconcile --apply with the "
        "state table) rewrites the table from the source and lets the replicator converge the "
        "destination; a row for an entity in neither registry (a lost delete, a link AWS "
        "deleted with its group or thing) gets a tombstone"
    ),
    "type_deletion_pending": (
        "not lost: AWS deletes a thing type only 5 minutes after its deprecation, so the "
        "destination's type (and its things' detachment) waits for the destination stack's "
        "pending task (every 5 minutes), which finishes it after the time shown; nothing to "
        "repair, audit again after it"
    ),
    "not_registrable": (
        "not lost: the destination's registry refused to register the certificate (AWS's "
        "reason shown, recorded by the replicator: an AWS-issued certificate, or one of a CA "
        "registered there, may not be shared across Regions), so no repair is planned for it "
        f"or its attachments; {OPERATOR_FIX}"
    ),
}
assert tuple(FIXES) == LOSS_POINTS


def table_snapshot(
    items: Iterable[Item],
    region: str,
    taken_at_ms: int,
    pending: Iterable[PendingTypeDeletion] = (),
    refused: Iterable[UnregistrableCertificate] = (),
) -> Snapshot:
    """The state table's desired state, as read in ``region``, as a ``Snapshot`` of that origin.

    Tombstones are absent entities. Every live row is kept, a link whose thing or group the table
    holds deleted too: AWS removes a deleted group's memberships and attachments with it
    (``Kind.cascades``), so such a row (written before persist followed that) is in neither
    registry, and the audits name it ``table_only`` so that repair tombstones it
    (``table_only_rows``, ``orphans``). Versions are left empty (they are per region anyway).
    ``pending``: the table's pending type deletions (every region's), and ``refused``: the
    certificates a region's registry refused, kept with the snapshot for ``explain``.
    """
    by_kind: dict[EntityKind, list[Item]] = {kind: [] for kind in EntityKind}
    for item in items:
        if not item.deleted:
            by_kind[item.kind].append(item)
    memberships = []
    for item in by_kind[EntityKind.MEMBERSHIP]:
        thing, group = split_membership_name(item.name)
        memberships.append({"thing": thing, "group": group})
    named = {
        spec.frame: [{**item.state, "name": item.name} for item in by_kind[kind]]
        for kind, spec in ENTITIES.items()
        if kind is not EntityKind.MEMBERSHIP
    }
    snapshot = Snapshot.from_records(region, taken_at_ms, **named, memberships=memberships)
    return dataclasses.replace(
        snapshot,
        origin="state_table",
        pending_deletions=tuple(pending),
        refused_certificates=tuple(refused),
    )


# The ends whose absence from the table ends a link. A policy is not one: a policy's deletion
# is refused while it is attached (AWS IoT API Reference, DeletePolicy), so the table holds its
# attachments' own deletes; nor a certificate (the table keeps its detachments' own events).
_ENDS_OWNED_BY_THE_TABLE = (EntityKind.THING, EntityKind.THING_GROUP)


def orphans(report: DriftReport, table: Snapshot) -> set[tuple[EntityKind, str]]:
    """The drifts of ``report`` (the table against a registry) that are links the table holds
    whose thing or thing group it does not: AWS deleted those links with their end
    (``Kind.cascades``), so no registry holds them."""
    alive = {
        (kind, str(name))
        for kind in _ENDS_OWNED_BY_THE_TABLE
        for name in getattr(table, ENTITIES[kind].frame)["name"]
    }
    return {
        (drift.entity, drift.name)
        for drift in report.drifts
        if drift.kind == "missing"
        and drift.entity in LINK_KINDS
        and any(
            end not in alive
            for end in ends(drift.entity, drift.name)
            if end[0] in _ENDS_OWNED_BY_THE_TABLE
        )
    }


LINK_KINDS = (EntityKind.MEMBERSHIP, EntityKind.THING_PRINCIPAL, EntityKind.POLICY_TARGET)


def read_table(
    table: StateTable, region: str, taken_at_ms: int, *, segments: int = SCAN_SEGMENTS
) -> Snapshot:
    """The whole state table (its replica in ``region``) as a snapshot, read by a parallel Scan
    (no IoT quota), with its pending type deletions and refused certificates (read in the same
    Scan)."""
    prefixes = (PendingTypeDeletion.PREFIX, UnregistrableCertificate.PREFIX)
    items, records = table.scan(segments, records=prefixes)
    pending, refused = [], []
    for record in records:
        # A malformed record explains nothing (the pending task reports it: pipeline.pending).
        with contextlib.suppress(EventValidationError):
            if str(record["pk"]).startswith(UnregistrableCertificate.PREFIX):
                refused.append(UnregistrableCertificate.from_record(record))
            else:
                pending.append(PendingTypeDeletion.from_record(record))
    return table_snapshot(items, region, taken_at_ms, pending, refused)


def _differs(drift: Drift, other: Drift | None) -> bool:
    """Whether ``other`` (the same entity's drift on one hop) covers ``drift``'s difference."""
    if other is None:
        return False
    if drift.kind != "changed" or other.kind != "changed":
        return True  # presence differs on that hop, or the entity differs as a whole
    return bool(set(drift.details) & set(other.details))


def classify(drift: Drift, before: Drift | None, after: Drift | None) -> LossPoint | None:
    """Where ``drift`` (source vs destination) was lost, given the same entity's drift between
    source and table (``before``) and between table and destination (``after``).

    ``None`` only when neither hop shows it, which equal values on both hops make impossible
    except where a comparison is skipped (memberships of a group dynamic on one side)."""
    lost_before, lost_after = _differs(drift, before), _differs(drift, after)
    if lost_before and lost_after:
        return "table_only"
    if lost_before:
        return "lost_before_table"
    if lost_after:
        return "lost_after_table"
    return None


def explain(
    report: DriftReport,
    source: Snapshot,
    table: Snapshot,
    target: Snapshot,
    *,
    ignore: IgnoreRules | None = None,
    clock: Callable[[], int] | None = None,
    policy_accounts: Mapping[str, str] | None = None,
) -> DriftReport:
    """``report`` (source vs target) with every drift's ``where`` set from the table's view;
    ``policy_accounts`` as the report's diff had them (the table holds the source's documents,
    the target the replicator's rewrite of them)."""
    kwargs: dict[str, Any] = {"ignore": ignore, "policy_accounts": policy_accounts}
    if clock is not None:
        kwargs["clock"] = clock
    # The table holds every link: narrowed once to the report's slice (``reconcile.sweep``), so
    # both diffs below share one narrowed view and its fingerprint, not a narrowing each.
    table = table.swept(report.sweep)
    before = {(d.entity, d.name): d for d in diff_snapshots(source, table, **kwargs).drifts}
    after = {(d.entity, d.name): d for d in diff_snapshots(table, target, **kwargs).drifts}
    due, refused = _due(table, target.region), _refused(table, target.region)
    drifts = [
        _placed(
            drift,
            classify(
                drift, before.get((drift.entity, drift.name)), after.get((drift.entity, drift.name))
            ),
            due,
            refused,
        )
        for drift in report.drifts
    ]
    drifts += table_only_rows(before, after, {(d.entity, d.name) for d in report.drifts})
    drifts.sort(key=Drift.sort_key)
    return dataclasses.replace(report, drifts=tuple(drifts), explained=True)


def table_only_rows(
    before: Mapping[tuple[EntityKind, str], Drift],
    after: Mapping[tuple[EntityKind, str], Drift],
    reported: Collection[tuple[EntityKind, str]],
) -> list[Drift]:
    """The table's rows for entities neither registry holds, as ``table_only`` drifts: extra in
    the table against the source (``before``) and missing from the destination (``after``);
    none of them in the registries' own diff (``reported``), where source and destination agree.

    The two registries agree, so the source-vs-destination diff cannot show them, yet the table
    would replay them into the destination (say a rebuilt replica) and the table-vs-destination
    audit reports them missing: a lost delete event, or a link AWS removed with its group or
    thing (``Kind.cascades``) recorded before persist followed the cascade. The drift is the
    table-vs-source one (``extra``: the table's values on the ``target`` side); its repair is a
    tombstone (``reconcile.planner``)."""
    return [
        dataclasses.replace(drift, where="table_only")
        for key, drift in before.items()
        if drift.kind == "extra"
        and key not in reported
        and (missing := after.get(key)) is not None
        and missing.kind == "missing"
    ]


def _due(table: Snapshot, region: str) -> dict[str, int]:
    """Thing type -> when ``region``'s pending task may delete it (the table's records)."""
    return {p.name: p.delete_after for p in table.pending_deletions if p.region == region}


def _refused(table: Snapshot, region: str) -> dict[str, str]:
    """Certificate id -> why ``region``'s registry refused to register it (the table's records)."""
    return {r.certificate_id: r.reason for r in table.refused_certificates if r.region == region}


def _placed(
    drift: Drift,
    lost: LossPoint | None,
    due: Mapping[str, int],
    refused: Mapping[str, str] | None = None,
) -> Drift:
    """``drift`` with its loss point, unless a pending type deletion, or a certificate the
    destination refused, explains what differs after the table (a refused certificate: also
    where the source and the table differ besides, ``table_only``: no repair registers it)."""
    after = lost in ("lost_after_table", "table_only")
    if after and (certificate := refused_certificate(drift, refused or {})):
        reason = (refused or {})[certificate]
        return dataclasses.replace(drift, where="not_registrable", refused=reason)
    pending = pending_type(drift, due) if lost == "lost_after_table" else None
    if pending is None:
        return dataclasses.replace(drift, where=lost)
    return dataclasses.replace(drift, where="type_deletion_pending", finishes_at=due[pending])


def refused_certificate(drift: Drift, refused: Mapping[str, str]) -> str | None:
    """The certificate the destination refused that explains ``drift`` (missing there): the
    certificate itself, or the certificate end of its thing or policy attachment."""
    if drift.kind != "missing":
        return None
    if drift.entity is EntityKind.CERTIFICATE:
        return drift.name if drift.name in refused else None
    if drift.entity in (EntityKind.THING_PRINCIPAL, EntityKind.POLICY_TARGET):
        for kind, name in ends(drift.entity, drift.name):
            if kind is EntityKind.CERTIFICATE and name in refused:
                return name
    return None


def pending_type(drift: Drift, due: Mapping[str, int]) -> str | None:
    """The thing type whose pending deletion in the destination explains ``drift`` (lost after
    the table), if one does: the type itself (still there, deprecated: deleted or re-created in
    the source), or a thing's type while the lifecycle has it detached or not yet detached."""
    if drift.entity is EntityKind.THING_TYPE:
        return drift.name if drift.name in due else None
    if drift.entity is EntityKind.THING and drift.kind == "changed":
        types = drift.details.get("thing_type", {})
        for side in ("source", "target"):
            if types.get(side) in due:
                return str(types[side])
    return None


def table_vs_target(report: DriftReport, table: Snapshot | None = None) -> DriftReport:
    """A table-vs-destination diff as an explained report: every drift there is, by definition,
    lost after the table (the replicator's hop), unless ``table`` explains it: a pending type
    deletion, or a link whose thing or group the table holds deleted (``table_only``: in no
    registry; the three-way audit's repair tombstones it)."""
    due = {} if table is None else _due(table, report.target_region)
    refused = {} if table is None else _refused(table, report.target_region)
    # A link whose end the table holds deleted is in no registry: not the replicator's loss.
    orphaned = set() if table is None else orphans(report, table)
    drifts = tuple(
        dataclasses.replace(d, where="table_only")
        if (d.entity, d.name) in orphaned
        else _placed(d, "lost_after_table", due, refused)
        for d in report.drifts
    )
    return dataclasses.replace(report, drifts=drifts, explained=True)
