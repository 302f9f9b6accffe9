"""Pure decisions of the persist step: does a change move an entity's desired state forward?

``decide(stored, change)`` is the whole write policy of the state table (docs/design.md) as a
function over data; ``pipeline.statetable`` only carries it out with a conditional write.

Ordering, per entity:
- a change with a ``version`` from the same origin region and the same registry entity ID
  (``thingId``/``thingGroupId``) as the stored one is newer only if its version is higher;
- a versioned full-state change always outranks a stored item that has no version (a stub written
  by a partial event), so a late-arriving CREATED is never lost to an association event;
- anything else (other region, re-created entity with a new ID, unversioned events) is ordered by
  the event timestamp; a shadow's messages (a version, no registry ID) too, their version
  ordering only two of the same second and region.
Deletes keep a tombstone with the delete's ordering metadata, so a late UPDATED of the deleted
entity is stale and never resurrects it; a re-created entity (new ID, later timestamp) does.
Partial events (type association, hierarchy link) patch only a live item already in the table.
An event whose result equals the stored state is ``unchanged``: it advances only the ordering
metadata, from either region, because a newer event with old content (A -> B -> A) must still
outrank the delayed "B" (with two regions, B's own older change arriving late would otherwise
win in the table while B's registry holds A: the registries would end different). The
replicators then have nothing to call, so no loop; our own replication's echoes never get here
(``pipeline.echo`` drops them first).
Corrective events (reconciliation) always write unless the table holds something newer, or the
table's last write was this very corrective event (same event id and sync token): a replayed plan
is a duplicate, since asynchronous Express workflows do not deduplicate by execution name.

Timestamps are bounded too: where changes are ordered by timestamp, one stamped in the future
would make every later real change "stale" until the clock caught up. Where a change is admitted
(``pipeline.ingest.admit``), a stamp beyond the allowed skew is refused (``check_not_future``)
and one within it but beyond ``ORDERING_TOLERANCE_MS`` ahead of the admitting clock is ordered
as if made at that clock plus the tolerance (``capped``, counted by persist): a real change made
after it then outranks it. ``decide`` stays a pure function of its arguments.
Two-way: an event of this region's registry that reports what this region's replicator wrote
(an echo, ``pipeline.echo``) is dropped whatever the table holds by then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pipeline.echo import Expectation, is_echo, overwritten
from pipeline.errors import PermanentError
from pipeline.model import Change, Item

# How far ahead of our clock a timestamp may be. Registry events are stamped by AWS's clock and
# we read ours from an NTP-synced host, so seconds apart at most; 5 minutes is our own choice of
# margin (no AWS figure), small enough that a bad stamp cannot shadow real changes for long.
MAX_CLOCK_SKEW_MS = 5 * 60 * 1000
# How far ahead of the admitting clock a timestamp may order a change. Beyond it the change is
# ordered at that clock plus this (``capped``), so a skewed or forged stamp shadows the real
# changes made after it for this long at most, not for up to ``MAX_CLOCK_SKEW_MS``. Assumption:
# AWS publishes no bound on the skew between its services' clocks (Lambda's execution
# environment keeps its clock by NTP: AWS Lambda Developer Guide, "Defined runtime environment
# variables", TZ); NTP-synced hosts agree to far better than a second, so genuine events keep
# their own stamps, and their order, untouched.
ORDERING_TOLERANCE_MS = 1_000


class FutureTimestampError(PermanentError):
    """A timestamp beyond now plus the allowed skew.

    Ordering is by timestamp where versions do not apply, so one such value written to the state
    table would make every later real change "stale" until the clock caught up.
    """

    def __init__(self, field: str, timestamp_ms: int, now_ms: int) -> None:
        ahead_s = (timestamp_ms - now_ms) // 1000
        super().__init__(
            f"{field} {_iso(timestamp_ms)} is {ahead_s}s in the future (now {_iso(now_ms)}, "
            f"allowed skew {MAX_CLOCK_SKEW_MS // 1000}s); refused so it cannot make later "
            "changes stale"
        )
        self.field = field
        self.timestamp_ms = timestamp_ms
        self.now_ms = now_ms


def check_not_future(field: str, timestamp_ms: int, now: int) -> None:
    """Raise ``FutureTimestampError`` if ``timestamp_ms`` is beyond ``now`` plus the skew."""
    if timestamp_ms > now + MAX_CLOCK_SKEW_MS:
        raise FutureTimestampError(field, timestamp_ms, now)


def capped(change: Change, now: int) -> Change:
    """``change`` ordered no later than ``now`` plus ``ORDERING_TOLERANCE_MS``: its origin's
    ``timestamp_ms`` capped there, its own stamp kept in ``stamped_ms``, when it was beyond.

    Everything persist orders by (the stored ``event_ts``, the echo ledger's windows and mark,
    a delete's cascaded tombstones) then uses the capped time. The echo ledger's expectations
    are recorded on the replicator's clock before persist reads them, so an echo stamped ahead
    is compared with them as before: capped or not, it is later than every one of them.
    """
    limit = now + ORDERING_TOLERANCE_MS
    stamp = change.origin.timestamp_ms
    if stamp <= limit:
        return change
    return replace(change, origin=replace(change.origin, timestamp_ms=limit, stamped_ms=stamp))


class Outcome(StrEnum):
    APPLIED = "applied"
    STALE = "stale"
    DUPLICATE = "duplicate"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"  # never stored (a dynamic group's membership: ``pipeline.persist``)
    ECHO = "echo"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    # The item to write: always for APPLIED; for UNCHANGED when only ordering metadata moves on.
    item: Item | None = None
    # For ECHO: the echo mark to record in the region's ledger (``pipeline.echo.overwritten``),
    # when a full-state echo is newer than the mark it holds.
    echoed_ms: int | None = None


def decide(
    stored: Item | None,
    change: Change,
    echoes: Sequence[Expectation] = (),
    echoed_ms: int = 0,
) -> Decision:
    """Decide what ``change`` does to the ``stored`` item (``None`` when there is none);
    ``echoes`` is the entity's echo ledger in the change's region and ``echoed_ms`` its echo
    mark, the newest full-state event taken for an echo (``pipeline.echo``)."""
    origin = change.origin
    if stored is not None and _already_applied(stored, change):
        return Decision(Outcome.DUPLICATE, f"event {origin.event_id} was already applied")
    if is_echo(echoes, stored, change):
        newer = not change.partial and origin.timestamp_ms > echoed_ms
        return Decision(
            Outcome.ECHO,
            f"reports a write of the replicator in {origin.region}, not a change",
            echoed_ms=origin.timestamp_ms if newer else None,
        )
    if overwritten(echoes, change, echoed_ms):
        return Decision(
            Outcome.STALE,
            f"overwritten in {origin.region}'s registry after it was made (by the replicator, "
            "or by a later change taken for its echo)",
        )

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
        if _reasserts(stored, change):
            return Decision(
                Outcome.APPLIED,
                "corrective: the stored state again, not newer than it (written again so the "
                "destination converges to it; nothing older comes back)",
                replace(
                    stored,
                    last_event_id=origin.event_id,
                    sync=change.sync,
                    rev=stored.rev + 1,
                ),
            )
        return Decision(Outcome.STALE, _stale_reason(stored, change))

    state = _next_state(stored, change)
    same_content = (
        stored is not None
        and not change.corrective
        and stored.deleted == change.deleted
        and stored.state == state
    )
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
        # Newer, same content (A -> B -> A, a no-op update, or a region setting what the other
        # region's change already set): the content stays but the ordering basis must move on
        # to this event, or a delayed older change of its region ("B") would later win, and
        # the registries would end different. Not an echo: those the ledger recognised above.
        return Decision(Outcome.UNCHANGED, "content unchanged; ordering metadata advanced", item)
    return Decision(Outcome.APPLIED, "newer than the stored state", item)


def _already_applied(stored: Item, change: Change) -> bool:
    """The stored item's last write was this very event.

    A corrective event is the same event only with the same sync token too: a replayed plan
    (same plan id, so same event ids and token) must not write again, because the persist state
    machine is an asynchronous Express workflow, which runs at least once and does not
    deduplicate by execution name ("Execution guarantees", AWS Step Functions Developer Guide,
    https://docs.aws.amazon.com/step-functions/latest/dg/express-at-least-once-execution.html).
    """
    if stored.last_event_id != change.origin.event_id:
        return False
    return not change.corrective or stored.sync == change.sync


def _reasserts(stored: Item, change: Change) -> bool:
    """Whether a corrective ``change`` that is not newer than ``stored`` asks for the very
    state stored: reconciliation found the destination off the table's state, and its snapshot
    began in the second of the change the table holds (a shadow message's timestamp is to the
    second and stands for its last millisecond: ``pipeline.kinds.shadow.stamped_ms``), so its
    event is not newer. Writing the stored item again, its ordering unchanged, is what repairs
    the destination; it can bring back nothing older, the state being the stored one."""
    return (
        change.corrective
        and stored.deleted == change.deleted
        and stored.state == _next_state(stored, change)
    )


def _is_newer(stored: Item, change: Change) -> bool:
    origin = change.origin
    if origin.version is not None and not change.partial and not _version_without_id(change):
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
    if origin.timestamp_ms == stored.event_ts:
        return (
            _ends_it(stored, change)
            or _removes_in_its_second(stored, change)
            or _restricts_more(stored, change)
            or _counts_past(stored, change)
        )
    return origin.timestamp_ms > stored.event_ts


def _removes_in_its_second(stored: Item, change: Change) -> bool:
    """At equal timestamps, for a control-plane change (CloudTrail's ``eventTime`` is to the
    second; no version, no registry id): a delete ends the live state stored from the same
    region. The usual sequence within one second is a change and then the delete (an authorizer
    or CA deactivated, then deleted, as AWS requires); without this the delete arriving second
    was dropped as not newer and the copy outlived the source's entity until the nightly run.
    The other order (delete, then a re-create within the same second) ends deleted: absent is
    the more restrictive state, as for a certificate's status, and the nightly run repairs it."""
    origin = change.origin
    return (
        change.deleted
        and not stored.deleted
        and not change.corrective
        and origin.version is None
        and origin.entity_id is None
        and stored.origin_region == origin.region
    )


def _version_without_id(change: Change) -> bool:
    """A change with a version but no registry id: a shadow's message (``pipeline.kinds.
    shadow``). Its version counts one shadow's updates in its region but starts again at 0
    when a shadow is re-created more than 48 hours after its deletion (AWS IoT Developer
    Guide, "Interacting with shadows"), so it is ordered by timestamp, and the version only
    orders two changes of the same second (``_counts_past``)."""
    return change.origin.entity_id is None and not change.corrective


def _counts_past(stored: Item, change: Change) -> bool:
    """At equal timestamps (a shadow's messages are stamped to the second): a higher version of
    the same region, with no registry id on either side, is the later change; at an equal
    version a delete ends what the stored update made."""
    origin = change.origin
    if (
        not _version_without_id(change)
        or origin.version is None
        or stored.origin_version is None
        or stored.origin_id is not None
        or stored.origin_region != origin.region
    ):
        return False
    return origin.version > stored.origin_version or (
        origin.version == stored.origin_version and change.deleted and not stored.deleted
    )


def _ends_it(stored: Item, change: Change) -> bool:
    """At equal timestamps: does ``change`` delete the very entity the stored item is (same
    region, same registry ID, e.g. a membership's ``membershipId``)? Then it is the later event,
    as a DELETED at an equal version is: an entity is removed after it was made. Without this a
    membership added and removed within one millisecond stayed a member (issue 28)."""
    origin = change.origin
    return (
        change.deleted
        and not stored.deleted
        and stored.origin_region == origin.region
        and stored.origin_id is not None
        and stored.origin_id == origin.entity_id
    )


# A certificate's status is ordered by the CloudTrail record's ``eventTime``: when the request
# completed, to the second, from the serving host's NTP-synced clock (CloudTrail User Guide,
# "CloudTrail record contents"). So "later" is a later second; records arrive in any order
# (best-effort delivery, EventBridge User Guide), and the stored ``event_ts`` outranks any
# older status however late it arrives: a late ACTIVE never overrides a later REVOKED. Two
# changes within one second are unordered: the more restrictive status wins the tie (an
# over-restrictive copy is safe and the nightly run corrects it; an over-permissive one is a
# hole). REVOKED is final in AWS ("Revoke a client certificate"), so it also wins every tie.
STATUS_RESTRICTION = {"ACTIVE": 0, "INACTIVE": 1, "REVOKED": 2}


def _restricts_more(stored: Item, change: Change) -> bool:
    """At equal timestamps: does ``change`` set a more restrictive status than the stored one?"""
    new = change.fields.get("status")
    if new is None or change.deleted or stored.deleted:
        return False
    old = stored.state.get("status")
    return STATUS_RESTRICTION.get(new, -1) > STATUS_RESTRICTION.get(str(old), -1)


def _stale_reason(stored: Item, change: Change) -> str:
    origin = change.origin
    if (
        origin.version is not None
        and stored.origin_version is not None
        and stored.origin_id == origin.entity_id
        and not _version_without_id(change)
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


def _iso(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"
