"""Planning: drift turned into an ordered, guarded repair plan (``reconcile.plan``'s data).

Reconciliation runs ``snapshot → diff → plan → emit``; ``build_plan`` is the *plan* stage, a
pure function from a ``DriftReport`` (and the two snapshots it came from: their sizes, group
hierarchy and fingerprints) to a ``Plan``. Each upsert carries the source state the diff read
(``Drift.rows``, decoded here): the snapshots are not read again. Nothing here calls AWS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pipeline.kinds import ENTITIES
from pipeline.kinds.links import membership_name
from pipeline.model import EntityKind
from reconcile.guards import Guards, PlanRefusedError, Sizes, check_change_cap, check_source_size
from reconcile.plan import Plan, RepairAction, expires_at, plan_id
from reconcile.snapshot import desired_fields

if TYPE_CHECKING:
    import pandas as pd

    from reconcile.drift import Drift, DriftReport, RepairRows
    from reconcile.ignore import IgnoreRules
    from reconcile.snapshot import Snapshot


def build_plan(
    report: DriftReport,
    source: Snapshot,
    target: Snapshot,
    guards: Guards,
    *,
    now: int,
    ignore: IgnoreRules | None = None,
) -> Plan:
    """The ordered repair plan for ``report`` (pure; ``now`` in epoch milliseconds).

    "missing" and "changed" drift become upserts carrying the full desired state of the source
    row, as the diff read it (``Drift.rows``: the snapshots are not read again); "extra" drift
    becomes a delete when ``guards.allow_deletes``, otherwise a skipped entry. A row of the
    state table for an entity in neither registry (``table_only``, from the three-way audit)
    becomes a delete too, a tombstone for the table, whatever ``allow_deletes`` says: it
    deletes nothing a registry holds.
    Fields that ``ignore`` rules cover keep the target's value, so the repair leaves alone what
    the report was told to ignore (the report should already have been filtered by the same
    rules). Raises ``PlanRefusedError`` when the source looks broken or the plan is over the cap
    (``guards.max_changes``, which a backfill into an empty destination is not held to).
    """
    sizes = snapshot_sizes(source, target)
    check_source_size(sizes, guards, source.region, target.region)

    upserts: list[RepairAction] = []
    deletes: list[RepairAction] = []
    tombstones: list[RepairAction] = []
    for drift in report.drifts:
        if drift.where == "not_registrable":
            continue  # AWS refuses it there: reported, never repaired (reconcile.explain)
        entity = drift.entity
        name = _entity_name(entity, drift)
        if drift.kind == "extra" and drift.where == "table_only" and not _holds(target, drift):
            tombstones.append(
                RepairAction(
                    op="delete",
                    entity=entity,
                    name=name,
                    reason=f"table only: in neither {source.region} nor {target.region}",
                )
            )
            continue
        if drift.kind == "extra":
            deletes.append(
                RepairAction(
                    op="delete",
                    entity=entity,
                    name=name,
                    reason=f"extra: in {target.region}, not in {source.region}",
                )
            )
            continue
        rows = _rows(drift, source.region)
        fields = desired_fields(entity, rows.source)
        if ignore and drift.kind == "changed" and rows.destination is not None:
            kept = desired_fields(entity, rows.destination)
            fields = keep_ignored_fields(fields, kept, ignore, entity, name)
        upserts.append(
            RepairAction(
                op="upsert",
                entity=entity,
                name=name,
                fields=fields,
                version=rows.source.get("version"),
                reason=_upsert_reason(drift, source.region, target.region),
                changed=tuple(sorted(drift.details)) if drift.kind == "changed" else (),
            )
        )

    upserts = _ordered(upserts, _group_depths(source.thing_groups), reverse=False)
    deletes = _ordered(deletes, _group_depths(target.thing_groups), reverse=True)
    # A table-only row's tombstone deletes nothing either registry holds (both snapshots lack
    # it): ``allow_deletes`` guards the destination's entities, so it does not hold these back.
    tombstones = _ordered(tombstones, {}, reverse=True)
    if guards.allow_deletes:
        actions, skipped = [*upserts, *deletes, *tombstones], []
    else:
        actions = [*upserts, *tombstones]
        skipped = [replace(d, reason=f"{d.reason} (deletes not allowed)") for d in deletes]

    # The first run into an empty destination (the backfill) creates the whole fleet: the cap
    # guards what a destination holds, and it holds nothing yet.
    backfill = _entity_total(target) == 0 and target.memberships.empty
    if not backfill:
        check_change_cap(
            len(actions),
            guards,
            note=f" (it does not apply to the first run into an empty {target.region})",
        )

    plan = Plan(
        plan_id="",
        source_region=source.region,
        target_region=target.region,
        source_fingerprint=source.fingerprint(),
        target_fingerprint=target.fingerprint(),
        source_taken_at_ms=int(source.taken_at_ms),
        created_at_ms=now,
        expires_at_ms=expires_at(now, guards.ttl_seconds),
        guards=guards,
        sizes=sizes,
        actions=tuple(actions),
        skipped=tuple(skipped),
    )
    return replace(plan, plan_id=plan_id(plan))


def snapshot_sizes(source: Snapshot, target: Snapshot) -> Sizes:
    """What the source-size guards compare, read off both snapshots."""
    return Sizes(
        source_things=len(source.things),
        target_things=len(target.things),
        source_entities=_entity_total(source),
        target_entities=_entity_total(target),
    )


def _entity_total(snapshot: Snapshot) -> int:
    return sum(
        len(getattr(snapshot, spec.frame))
        for kind, spec in ENTITIES.items()
        if kind is not EntityKind.MEMBERSHIP
    )


def keep_ignored_fields(
    desired: dict[str, Any],
    target: Mapping[str, Any],
    ignore: IgnoreRules,
    entity: EntityKind,
    name: str,
) -> dict[str, Any]:
    """``desired`` with every ignored field (``attributes.<key>`` per attribute) as in ``target``."""
    result = dict(desired)
    for field_name in desired:
        if field_name == "attributes":
            continue
        if ignore.ignores(entity, name, field_name):
            result[field_name] = target.get(field_name)
    if isinstance(desired.get("attributes"), dict):
        attributes = dict(desired["attributes"])
        theirs = dict(target.get("attributes") or {})
        for key in set(attributes) | set(theirs):
            if ignore.ignores(entity, name, f"attributes.{key}"):
                if key in theirs:
                    attributes[key] = theirs[key]
                else:
                    attributes.pop(key, None)
        result["attributes"] = attributes
    return result


def _holds(snapshot: Snapshot, drift: Drift) -> bool:
    """Whether ``snapshot`` holds ``drift``'s entity: a ``table_only`` extra drift is a table
    row (``reconcile.explain.table_only_rows``) unless the destination holds the entity (then
    it is the registries' own drift, the table disagreeing with both)."""
    frame = getattr(snapshot, ENTITIES[drift.entity].frame)
    if frame.empty:
        return False
    if drift.entity is EntityKind.MEMBERSHIP:
        return bool(((frame["thing"] == drift.thing) & (frame["group"] == drift.group)).any())
    return bool((frame["name"] == drift.name).any())


def _entity_name(entity: EntityKind, drift: Drift) -> str:
    if entity is EntityKind.MEMBERSHIP and drift.thing and drift.group:
        return membership_name(drift.thing, drift.group)
    return drift.name


def _rows(drift: Drift, source_region: str) -> RepairRows:
    """The rows the diff read for ``drift`` (missing or changed)."""
    if drift.rows is None:
        # Only a report read back from JSON lacks it (the state is not part of the contract);
        # guessing the state would write wrong data into the pipeline.
        raise PlanRefusedError(
            "inconsistent_report",
            f"{drift.entity.value} {drift.name!r} is {drift.kind} in the report but the report "
            f"carries no state of it from {source_region}'s snapshot",
        )
    return drift.rows


def _upsert_reason(drift: Drift, source_region: str, target_region: str) -> str:
    if drift.kind == "missing":
        return f"missing: in {source_region}, not in {target_region}"
    details = drift.details
    if isinstance(details, Mapping) and details:
        return "changed: " + ", ".join(sorted(str(k) for k in details))
    return "changed"


def _group_depths(groups: pd.DataFrame) -> dict[str, int]:
    """Depth of each group in its hierarchy (roots are 0); cycles and orphans count as roots."""
    parents: dict[str, str | None] = {}
    if len(groups):
        for name, parent in zip(groups["name"], groups["parent"], strict=True):
            parents[str(name)] = parent if isinstance(parent, str) and parent else None
    depths: dict[str, int] = {}

    def depth(name: str) -> int:
        chain: list[str] = []
        current: str | None = name
        while current is not None and current not in depths and current not in chain:
            chain.append(current)
            current = parents.get(current)
        base = depths.get(current, -1) if current is not None and current in depths else -1
        for offset, member in enumerate(reversed(chain), start=1):
            depths[member] = base + offset
        return depths[name]

    for name in parents:
        depth(name)
    return depths


def _ordered(
    actions: Iterable[RepairAction], depths: Mapping[str, int], *, reverse: bool
) -> list[RepairAction]:
    def key(action: RepairAction) -> tuple[int, int, str]:
        depth = depths.get(action.name, 0) if action.entity is EntityKind.THING_GROUP else 0
        return (ENTITIES[action.entity].rank, depth, action.name)

    # Creation runs by ascending dependency rank (``EntitySpec.rank``), parent groups before
    # their children. Reversing the whole creation order gives children before parents and
    # types last.
    return sorted(actions, key=key, reverse=reverse)
