"""The persist step's rules, apart from its handler: an event admitted once, then written.

Every hop that takes an event in does it in two steps, each once:

- ``admit(payload, region=..., now=...)``: parse the payload as persist does (``parse_event``),
  refuse a timestamp from the future (``check_not_future``) and cap one a little ahead of
  ``now`` (``bounded``, ``pipeline.state.capped``). The persist Lambda admits each
  event it is given (``pipeline.persist``); reconciliation admits each corrective event it is
  about to emit (``reconcile.emit``), so it never emits one persist would refuse.
- ``look_up``: where an event leaves something out (a dynamic group's query, a certificate's
  PEM), its kind reads it in the origin region (the change's ``lookup``).
- ``persist_change`` / ``persist_changes``: write an admitted change if it moves the entity's
  desired state forward (``pipeline.state``), as a conditional write (``pipeline.statetable``).

Here rather than in ``pipeline.persist`` so that reconciliation, which persists straight into
the table for large backfills, imports no handler (and no handler's logger or metrics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

from pipeline.clock import now_ms
from pipeline.events import parse_event
from pipeline.iot import Iot
from pipeline.kinds import KINDS
from pipeline.kinds.links import split_membership_name
from pipeline.kinds.membership import is_dynamic
from pipeline.model import Change, EntityKind, Item, Origin
from pipeline.state import Outcome, capped, check_not_future
from pipeline.statetable import PersistResult, StateTable


def admit(payload: Mapping[str, Any], *, region: str, now: int | None = None) -> Change:
    """The change in ``payload`` (a registry or corrective event reaching ``region``'s persist
    step), ``bounded`` by ``now`` (epoch ms, default the wall clock); refused when invalid
    (``EventValidationError``, ``RegistryValidationError``): ``PermanentError``s."""
    return bounded("timestamp", parse_event(payload, region=region), now)


def bounded(field: str, change: Change, now: int | None = None) -> Change:
    """``change`` refused if stamped beyond ``now`` plus the allowed skew
    (``FutureTimestampError``, a ``PermanentError``), else ordered no later than ``now`` plus
    the tolerance (``pipeline.state.capped``: ``origin.stamped_ms`` says it was capped)."""
    now = now_ms() if now is None else now
    check_not_future(field, change.origin.timestamp_ms, now)
    return capped(change, now)


def persist_change(table: StateTable, change: Change) -> PersistResult:
    """Write one admitted change if it moves the entity's desired state forward
    (``pipeline.state``).

    A dynamic group's membership is never stored: each region's fleet index computes it. A
    group event's ancestors the table has not seen yet are recorded first (as unversioned
    stubs that any real event of theirs outranks), so the replicator can create the parent
    chain now rather than wait for the parents' own events or the nightly run. A delete writes
    first the tombstones of what AWS removed with it (``cascade_tombstones``).
    """
    if change.kind is EntityKind.MEMBERSHIP:
        skipped = _skipped_if_dynamic(change, table.get(EntityKind.THING_GROUP, _group(change)))
        if skipped is not None:
            return skipped
    for stub in ancestor_stubs(change):
        if table.get(stub.kind, stub.name) is None:
            table.apply(stub)
    # The dependents first: a retry after a failure in between finds the delete not yet
    # applied and writes them again (each a duplicate by then).
    for tombstone in cascade_tombstones(table, change):
        table.apply(tombstone)
    return table.apply(change)


def cascade_tombstones(table: StateTable, change: Change) -> list[Change]:
    """For a delete, a tombstone per live item the table holds of what AWS removes with the
    entity (``Kind.cascades``: a group's memberships and policy attachments, a thing's
    memberships and principals), stamped with the delete's time: a late event of a dependent,
    made before the delete, is then stale (``pipeline.state``) and cannot resurrect it, and a
    dependent re-made after it (a later timestamp) outranks the tombstone."""
    if not change.deleted or not KINDS[change.kind].cascades(change.name):
        return []
    stored = table.get(change.kind, change.name)
    if stored is None or stored.deleted:
        return []  # nothing was live to cascade from (or a redelivery: done already)
    tombstones: list[Change] = []
    for cascade in KINDS[change.kind].cascades(change.name):
        for item in table.items_of(cascade.kind, cascade.prefix):
            if item.deleted or not cascade.matches(item.name):
                continue
            origin = Origin(
                change.origin.region,
                change.origin.timestamp_ms,
                f"{change.origin.event_id}#cascade#{item.key}",
            )
            tombstones.append(Change(item.kind, item.name, origin, deleted=True))
    return tombstones


def persist_changes(table: StateTable, changes: Sequence[Change]) -> list[PersistResult]:
    """``persist_change`` for many admitted changes, in order, batched for backfills: the same
    rules and the same outcomes as one by one, in about N/100 reads instead of 2N calls.

    Consecutive changes of one kind of path go together: memberships (the dynamic-group skip,
    their groups read in one batch: a membership never changes a group, so each reads what it
    would read alone), and the rest (``StateTable.apply_many``). A change with ancestors or a delete with cascades goes
    alone (``persist_change``: its stubs or its dependents' tombstones go in just before it).
    Corrective events carry no ancestors and a backfill creates, so it takes only the batched
    paths.
    """
    results: list[PersistResult] = []
    for path, run in groupby(changes, key=_path):
        batch = list(run)
        if path == "one by one":
            results.extend(persist_change(table, change) for change in batch)
        elif path == "membership":
            results.extend(_persist_memberships(table, batch))
        else:
            results.extend(table.apply_many(batch))
    return results


def _path(change: Change) -> str:
    if change.ancestors or (change.deleted and KINDS[change.kind].cascades(change.name)):
        return "one by one"
    return "membership" if change.kind is EntityKind.MEMBERSHIP else "plain"


def _persist_memberships(table: StateTable, memberships: list[Change]) -> list[PersistResult]:
    groups = table.get_items(EntityKind.THING_GROUP, (_group(change) for change in memberships))
    skipped = [_skipped_if_dynamic(change, groups[_group(change)]) for change in memberships]
    applied = iter(
        table.apply_many([c for c, skip in zip(memberships, skipped, strict=True) if skip is None])
    )
    return [skip if skip is not None else next(applied) for skip in skipped]


def _group(membership: Change) -> str:
    return split_membership_name(membership.name)[1]


def _skipped_if_dynamic(membership: Change, group: Item | None) -> PersistResult | None:
    """A dynamic group's membership is never stored: each region's fleet index computes it."""
    if is_dynamic(group):
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


def look_up(change: Change, iot: Iot) -> Change | None:
    """``change`` completed with what its ``lookup`` asks for, read in its origin region by its
    kind (a dynamic group's query, a certificate's PEM and status, a policy version's
    document); ``None`` when the entity is gone since (its delete follows)."""
    if change.lookup is None:
        return change
    return KINDS[change.kind].resolve(iot, change)
