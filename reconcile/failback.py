"""The failback guard: what a reconcile from the DR region back to the primary must not overwrite.

After a failover the reconcile runs the other way (``--source-region $DR --target-region
$PRIMARY --failback``, docs/failover.md step 5). The three-way audit (``reconcile.explain``)
says for each drift where it was lost; in that direction one class has a meaning of its own:

- the DR registry (the source) agrees with the state table, the primary (the target) does not
  (``lost_after_table``): the primary holds a change the table never saw. After replication has
  caught up (runbook step 3) that is a change made in the primary just before the outage whose
  event never reached the table (the outage took the IoT rule or the persist step with it), or,
  rarer, a replicated change the primary's replicator could not apply (its failure queue says
  which). Repairing it would silently overwrite the primary's last changes, so it is **held**:
  listed with its fields, not planned, and the command exits 1 until the operator decides.
- every other class is the DR region's work (``lost_before_table``: a DR change whose event did
  not reach the table) or a disagreement of all three (``table_only``): repaired as usual.

The operator chooses per entity: ``--overwrite PATTERN`` (same ``entity:name-glob`` syntax as
``--ignore``) lets the DR version win for the entities it names; the others are kept, and a
reconcile primary → DR carries them to the DR region afterwards.

Pure functions over the audit data; the engine (``reconcile.engine.Failback``) reads the table
and calls ``hold_unreplicated``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

from reconcile.drift import Drift, DriftReport
from reconcile.ignore import IgnorePatternError, IgnoreRule, IgnoreRules


def held_reason(target_region: str) -> str:
    """What a held drift says, in the plan and in every report format."""
    return f"changed in {target_region} but never replicated"


def overwrite_rules(patterns: Iterable[str]) -> IgnoreRules:
    """``--overwrite`` patterns as rules (whole entities only: a field cannot be half held)."""
    kept = tuple(p for p in patterns if p.strip())
    for pattern in kept:
        rule = IgnoreRule.parse(pattern, "--overwrite")
        if rule.field is not None:
            raise IgnorePatternError(
                pattern, "name whole entities (entity:name-glob)", "--overwrite"
            )
    return IgnoreRules.from_patterns(kept, origin="--overwrite")


def is_unreplicated(drift: Drift) -> bool:
    """The source and the state table agree, the target differs: the target's own change."""
    return drift.where == "lost_after_table"


def hold_unreplicated(report: DriftReport, overwrite: IgnoreRules | None = None) -> DriftReport:
    """``report`` (explained) with the target's unreplicated changes marked held, except those
    ``overwrite`` names. Raises ``ValueError`` on an unexplained report: without the table's view
    nothing can be told apart, and guessing would overwrite."""
    if not report.explained:
        raise ValueError("the failback guard needs the three-way audit (an explained report)")
    reason = held_reason(report.target_region)
    drifts = tuple(
        dataclasses.replace(drift, held=reason)
        if is_unreplicated(drift)
        and not (overwrite and overwrite.ignores(drift.entity, drift.name))
        else drift
        for drift in report.drifts
    )
    return dataclasses.replace(report, drifts=drifts)


def repairable(report: DriftReport) -> DriftReport:
    """What the plan may repair: ``report`` without its held drifts."""
    return dataclasses.replace(report, drifts=tuple(d for d in report.drifts if not d.held))


def describe_held(report: DriftReport) -> str:
    """The held drifts, one line each with the fields that differ, and what to do; "" if none."""
    kept = report.held
    if not kept:
        return ""
    lines = [f"held: {len(kept)} ({held_reason(report.target_region)}; not repaired):"]
    for drift in kept:
        fields = _fields(drift, report.target_region)
        lines.append(f"  held {drift.entity.value:<12} {drift.name}  {fields}")
    lines.append(
        f"  to let {report.source_region}'s version win: --overwrite 'ENTITY:NAME' (repeatable); "
        f"to keep {report.target_region}'s: reconcile {report.target_region} → "
        f"{report.source_region} afterwards"
    )
    return "\n".join(lines)


def _fields(drift: Drift, target_region: str) -> str:
    if drift.kind == "extra":
        return f"(created in {target_region})"
    if drift.kind == "missing":
        return f"(deleted in {target_region})"
    return ", ".join(
        f"{name}: {json.dumps(values.get('source'))} → {json.dumps(values.get('target'))}"
        for name, values in drift.details.items()
    )
