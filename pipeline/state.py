"""Pure decisions of the persist step: does a change move an entity's desired state forward?

``decide(stored, change)`` is the whole write policy of the state table (DESIGN.md §3) as a
function over data; ``pipeline.statetable`` only carries it out with a conditional write.

Ordering, per entity:
- a change with a ``version`` from the same origin region and the same registry entity ID
  (``thingId``/``thingGroupId``) as the stored one is newer only if its version is higher;
- a versioned full-state change always outranks a stored item that has no version (a stub written
  by a partial event), so a late-arriving CREATED is never lost to an association event;
- anything else (other region, re-created entity with a new ID, unversioned events) is ordered by
  the event timestamp.
Deletes keep a tombstone with the delete's ordering metadata, so a late UPDATED of the deleted
entity is stale and never resurrects it; a re-created entity (new ID, later timestamp) does.
Partial events (type association, hierarchy link) patch only a live item already in the table.
An event whose result equals the stored state is ``unchanged``: from another region (an echo of
our own replication, active-active) it writes nothing, so no stream record and no loop; from the
same region it advances only the ordering metadata, because a newer event with old content
(A -> B -> A) must still outrank the delayed "B".
Corrective events (reconciliation) always write unless the table holds something newer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from pipeline.model import Change, Item


class Outcome(StrEnum):
    APPLIED = "applied"
    STALE = "stale"
    DUPLICATE = "duplicate"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"  # never stored (a dynamic group's membership: ``pipeline.persist``)


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    # The item to write: always for APPLIED; for UNCHANGED when only ordering metadata moves on.
    item: Item | None = None


def decide(stored: Item | None, change: Change) -> Decision:
    """Decide what ``change`` does to the ``stored`` item (``None`` when there is none)."""
    origin = change.origin
    if stored is not None and not change.corrective and stored.last_event_id == origin.event_id:
        return Decision(Outcome.DUPLICATE, f"event {origin.event_id} was already applied")

    if change.partial and (stored is None or stored.deleted):
        # A partial event knows one facet only; the entity's own full event carries it too.
        return Decision(
            Outcome.STALE,
            "partial event for an entity that is not live in the table; "
            "its full-state event carries the same fact",
        )

    if stored is not None and any(
        stored.state.get(key) != value for key, value in change.expected.items()
    ):
        return Decision(
            Outcome.STALE,
            f"the change assumes {change.expected}, the stored state differs",
        )

    if stored is not None and not _is_newer(stored, change):
        return Decision(Outcome.STALE, _stale_reason(stored, change))

    state = _next_state(stored, change)
    same_content = (
        stored is not None
        and not change.corrective
        and stored.deleted == change.deleted
        and stored.state == state
    )
    if same_content and stored is not None and stored.origin_region != origin.region:
        # An echo: another region's registry reporting what we replicated there.
        return Decision(Outcome.UNCHANGED, "the stored desired state already matches the event")

    keep_ordering = change.partial and stored is not None
    item = Item(
        kind=change.kind,
        name=change.name,
        state=state,
        deleted=change.deleted,
        origin_region=origin.region,
        event_ts=max(origin.timestamp_ms, stored.event_ts if stored else 0),
        last_event_id=origin.event_id,
        # A partial event has no version of its own: keep the full event's ordering basis.
        origin_id=stored.origin_id if keep_ordering and stored else origin.entity_id,
        origin_version=stored.origin_version if keep_ordering and stored else origin.version,
        sync=change.sync if change.corrective else (stored.sync if stored else None),
        rev=(stored.rev + 1) if stored else 1,
    )
    if keep_ordering and stored is not None:
        item = replace(item, origin_region=stored.origin_region)
    if same_content:
        # Same region, newer, same content (A -> B -> A, or a no-op update): the content stays
        # but the ordering basis must move on, or the delayed "B" would later win.
        return Decision(Outcome.UNCHANGED, "content unchanged; ordering metadata advanced", item)
    return Decision(Outcome.APPLIED, "newer than the stored state", item)


def _is_newer(stored: Item, change: Change) -> bool:
    origin = change.origin
    if origin.version is not None and not change.partial:
        if stored.origin_version is None:
            return True
        same_entity = (
            stored.origin_region == origin.region
            and stored.origin_id is not None
            and stored.origin_id == origin.entity_id
        )
        if same_entity:
            if change.corrective:
                return origin.version >= stored.origin_version
            # A DELETED event carries the version of the last update it ends, so at equal
            # versions the delete is the later event.
            ends_it = change.deleted and not stored.deleted
            return origin.version > stored.origin_version or (
                origin.version == stored.origin_version and ends_it
            )
    if change.corrective:
        return origin.timestamp_ms >= stored.event_ts
    return origin.timestamp_ms > stored.event_ts


def _stale_reason(stored: Item, change: Change) -> str:
    origin = change.origin
    if (
        origin.version is not None
        and stored.origin_version is not None
        and stored.origin_id == origin.entity_id
    ):
        return f"version {origin.version} is not newer than stored version {stored.origin_version}"
    return f"timestamp {origin.timestamp_ms} is not newer than stored {stored.event_ts}"


def _next_state(stored: Item | None, change: Change) -> dict[str, Any]:
    if change.deleted:
        return {}
    if change.corrective or stored is None or stored.deleted:
        return dict(change.fields)
    merged = dict(stored.state)
    merged.update(change.fields)
    return merged
