"""The persist step's rules, apart from its handler: an event admitted once, then written.

Every hop that takes an event in does it in two steps, each once:

- ``admit(payload, region=..., now=...)``: parse the payload as persist does (``parse_event``)
  and refuse a timestamp from the future (``check_not_future``). The persist Lambda admits each
  event it is given (``pipeline.persist``); reconciliation admits each corrective event it is
  about to emit (``reconcile.emit``), so it never emits one persist would refuse.
- ``persist_change`` / ``persist_changes``: write an admitted change if it moves the entity's
  desired state forward (``pipeline.state``), as a conditional write (``pipeline.statetable``).

Here rather than in ``pipeline.persist`` so that reconciliation, which persists straight into
the table for large backfills, imports no handler (and no handler's logger or metrics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from itertools import groupby
from typing import Any

from pipeline.clock import now_ms
from pipeline.events import parse_event
from pipeline.iot import IotRegistry
from pipeline.model import Change, EntityKind, Origin, entity_key, split_membership_name
from pipeline.state import Outcome, check_not_future
from pipeline.statetable import PersistResult, StateTable, item_from_record


def admit(payload: Mapping[str, Any], *, region: str, now: int | None = None) -> Change:
    """The change in ``payload`` (a registry or corrective event reaching ``region``'s persist
    step), refused when invalid (``EventValidationError``, ``RegistryValidationError``) or
    stamped beyond ``now`` (epoch ms, default the wall clock) plus the allowed skew
    (``FutureTimestampError``): both ``PermanentError``s."""
    change = parse_event(payload, region=region)
    check_not_future("timestamp", change.origin.timestamp_ms, now_ms() if now is None else now)
    return change


def persist_change(table: StateTable, change: Change) -> PersistResult:
    """Write one admitted change if it moves the entity's desired state forward
    (``pipeline.state``).

    A dynamic group's membership is never stored: each region's fleet index computes it. A
    group event's ancestors the table has not seen yet are recorded first (as unversioned
    stubs that any real event of theirs outranks), so the replicator can create the parent
    chain now rather than wait for the parents' own events or the nightly run.
    """
    if change.kind is EntityKind.MEMBERSHIP:
        skipped = _skipped_if_dynamic(change, table.get_raw(_group_key(change)))
        if skipped is not None:
            return skipped
    for stub in ancestor_stubs(change):
        if table.get(stub.kind, stub.name) is None:
            table.apply(stub)
    return table.apply(change)


def persist_changes(table: StateTable, changes: Sequence[Change]) -> list[PersistResult]:
    """``persist_change`` for many admitted changes, in order, batched for backfills: the same
    rules and the same outcomes as one by one, in about N/100 reads instead of 2N calls.

    Consecutive changes of one kind of path go together: memberships (the dynamic-group skip,
    their groups read in one batch: a membership never changes a group, so each reads what it
    would read alone), a change with ancestors (alone: its stubs go in just before it), and the
    rest (``StateTable.apply_many``). Corrective events carry no ancestors, so a backfill takes
    only the batched paths.
    """
    results: list[PersistResult] = []
    for path, run in groupby(changes, key=_path):
        batch = list(run)
        if path == "ancestors":
            results.extend(persist_change(table, change) for change in batch)
        elif path == "membership":
            results.extend(_persist_memberships(table, batch))
        else:
            results.extend(table.apply_many(batch))
    return results


def _path(change: Change) -> str:
    if change.ancestors:
        return "ancestors"
    return "membership" if change.kind is EntityKind.MEMBERSHIP else "plain"


def _persist_memberships(table: StateTable, memberships: list[Change]) -> list[PersistResult]:
    groups = table.get_many(_group_key(change) for change in memberships)
    skipped = [_skipped_if_dynamic(change, groups[_group_key(change)]) for change in memberships]
    applied = iter(
        table.apply_many([c for c, skip in zip(memberships, skipped, strict=True) if skip is None])
    )
    return [skip if skip is not None else next(applied) for skip in skipped]


def _group_key(membership: Change) -> str:
    return entity_key(EntityKind.THING_GROUP, split_membership_name(membership.name)[1])


def _skipped_if_dynamic(
    membership: Change, group_record: Mapping[str, Any] | None
) -> PersistResult | None:
    """A dynamic group's membership is never stored: each region's fleet index computes it."""
    group = item_from_record(group_record) if group_record else None
    if group is not None and group.state.get("query"):
        return PersistResult(
            Outcome.SKIPPED, membership.key, "membership of a dynamic group is not replicated"
        )
    return None


def ancestor_stubs(change: Change) -> list[Change]:
    """One change per ancestor in a THING_GROUP_EVENT's ``rootToParentThingGroups`` (root
    first), each knowing only its parent. Unversioned and timestamped with the event, so the
    ancestor's own versioned events always outrank it (``pipeline.state``)."""
    stubs: list[Change] = []
    parent: str | None = None
    for ancestor in change.ancestors:
        origin = Origin(
            change.origin.region,
            change.origin.timestamp_ms,
            f"{change.origin.event_id}#ancestor#{ancestor}",
        )
        stubs.append(Change(EntityKind.THING_GROUP, ancestor, origin, fields={"parent": parent}))
        parent = ancestor
    return stubs


def resolve_dynamic_query(change: Change, iot: IotRegistry) -> Change:
    """Whether a group is dynamic, and its query, only the origin region's registry says
    (DescribeThingGroup's ``queryString``): the event's ``dynamicGroupMappingId`` is
    undocumented."""
    if not change.lookup_query:
        return change
    described = iot.describe_thing_group(change.name)
    fields = dict(change.fields)
    # A group deleted since the event has no query to read; its DELETED event follows.
    fields["query"] = described["query"] if described else None
    return replace(change, fields=fields, lookup_query=False)
