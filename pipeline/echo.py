"""Echoes in two-way replication: which registry events report our own replicator's writes.

When the pipeline runs in both directions, every write the replicator makes to its region's
registry comes back as that region's own registry event (the *echo*) and reaches the same
region's persist step. An echo is not a change anybody made: writing it would replicate stale
content back to the region it came from. Comparing the echo with the stored item is not enough:
the replicator applies v5, the other region writes v6, v6 reaches this region's table, and only
then the echo of v5 arrives, newer by timestamp and different from the stored v6 (issue 12).

So the replicator writes down what it is about to apply *before* each registry call: an
``Expectation`` (a digest of each field of the entity's state, or its deletion, and when it
was recorded) appended to the
entity's *echo ledger*, one bookkeeping item per region and entity in the region's own replica of
the state table (``ledger_key``). Persist drops a same-region, non-corrective event that agrees
with an expectation whose window is still open (``is_echo``):

- it *agrees*: every field the event carries equals the expected value (a field the expectation
  does not know is a wildcard; a partial event carries one field), and the delete flag matches;
- the expectation's window is *open* at the event's timestamp: it closes when the replicator
  records a newer expectation for the entity (``recorded_ms`` of the next one);
- the table does not hold a different change of this region's own registry (an operator who
  changed the entity after the replicated state was visible, even back to an older replicated
  content, is never taken for an echo);
- expectations expire after ``TTL_MS`` and at most ``MAX_EXPECTATIONS`` are kept per entity.

The other way round, a change of this region's registry made *before* the replicator recorded
an expectation for the entity, and reaching persist only after, was overwritten in the registry
by that write (the replicator converges the whole entity): it is stale (``overwritten``).
Without that rule a local change and a concurrent replicated one would leave the two registries
different whenever the echo arrived first. Likewise for a change older than a full-state event
persist already took for an echo: that event reported what the registry held after the change
(AWS stamps a registry event with when it occurred, AWS IoT Developer Guide, "Registry events",
https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html), so persist keeps
the newest one's timestamp as the ledger's *echo mark* (``echoed_ms``) and the older change is
stale (``overwritten``). A delete needs it most: it carries no content, so an operator's delete
of an entity re-created after the replicator deleted it agrees with the replicator's expectation.

The decision is pure (``pipeline.state.decide`` calls ``is_echo``); ``pipeline.statetable`` reads
the ledger with the item (one BatchGetItem, ``keys_to_read``) and the replicator appends to it
(``StateTable.ledger``, an ``EchoLedger``).
Assumption: the replicator's clock and the registry's event timestamps agree to within the time
between two replications of the same entity (both are AWS clocks; no AWS document bounds it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import EventValidationError
from pipeline.model import Change, Item

LEDGER_PREFIX = "ECHO"
# How long an echo may take from the registry call to the persist step (IoT rule, Step
# Functions retries, the failure queue's redrive): generous, since a window also closes early.
TTL_MS = 60 * 60 * 1000
MAX_EXPECTATIONS = 32  # per entity; bounds the ledger item far below DynamoDB's 400 KB


@dataclass(frozen=True)
class Expectation:
    """What the replicator is about to make one entity look like in its region's registry:
    ``digests`` maps each desired-state field to a digest of its value (``Expectation.of``),
    which keeps the ledger small whatever the entity holds."""

    recorded_ms: int
    deleted: bool = False
    digests: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, recorded_ms: int, state: Mapping[str, Any] | None, *, deleted: bool = False
    ) -> Expectation:
        digests = {name: digest(value) for name, value in (state or {}).items()}
        return cls(recorded_ms, deleted, digests)

    def to_record(self) -> dict[str, Any]:
        return {"at": self.recorded_ms, "deleted": self.deleted, "digests": self.digests}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Expectation:
        return cls(
            int(record["at"]), bool(record.get("deleted")), dict(record.get("digests") or {})
        )


def digest(value: Any) -> str:
    """A short digest of one field's value; empty and absent are one value in the registry."""
    text = json.dumps(_normal(value), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ledger_key(region: str, entity_key: str) -> str:
    """The ledger's key: per region (each region's replicator writes only its own) and entity.
    Its prefix is no entity kind's, so the replicator skips it as bookkeeping."""
    return f"{LEDGER_PREFIX}#{region}#{entity_key}"


def keys_to_read(change: Change) -> list[str]:
    """The item, and for a registry event its region's ledger (read together, one BatchGetItem)."""
    if change.corrective:
        return [change.key]
    return [change.key, ledger_key(change.origin.region, change.key)]


def expectations_of(record: Mapping[str, Any] | None) -> list[Expectation]:
    """A stored ledger's expectations (``None``: no ledger yet)."""
    entries = (record or {}).get("entries") or []
    if not isinstance(entries, list):
        raise EventValidationError("entries", "the echo ledger must hold a list")
    return [Expectation.from_record(entry) for entry in entries]


def ledger_for(
    records: Mapping[str, Mapping[str, Any] | None], change: Change
) -> tuple[list[Expectation], int]:
    """The ledger ``decide`` weighs ``change`` against, among ``records`` read with
    ``keys_to_read``: none for a corrective change."""
    if change.corrective:
        return [], 0
    record = records.get(ledger_key(change.origin.region, change.key))
    mark = (record or {}).get("echoed_ms", 0)
    if isinstance(mark, bool) or not isinstance(mark, int):
        raise EventValidationError("echoed_ms", "the echo mark must be a number")
    return expectations_of(record), mark


def record(
    ledger: Sequence[Expectation], new: Iterable[Expectation], now_ms: int
) -> list[Expectation]:
    """The ledger after appending ``new``: expired expectations dropped, the newest kept."""
    kept = [e for e in ledger if now_ms - e.recorded_ms <= TTL_MS]
    kept.extend(new)
    kept.sort(key=lambda e: e.recorded_ms)
    return kept[-MAX_EXPECTATIONS:]


def is_echo(ledger: Sequence[Expectation], stored: Item | None, change: Change) -> bool:
    """Does ``change`` (an event of ``change.origin.region``'s registry) report a write of that
    region's replicator, rather than a change somebody made?"""
    if change.corrective or not ledger:
        return False
    if (
        stored is not None
        and stored.origin_region == change.origin.region
        and not _matches_item(stored, change)
    ):
        # The table holds a different change of this region's own registry: the replicator does
        # not converge this region to it, so the event is the registry's truth and must count.
        return False
    ts = change.origin.timestamp_ms
    ordered = sorted(ledger, key=lambda e: e.recorded_ms)
    for expectation in ordered:
        if ts - expectation.recorded_ms > TTL_MS:
            continue
        later = [e.recorded_ms for e in ordered if e.recorded_ms > expectation.recorded_ms]
        if later and ts >= later[0]:
            continue  # the replicator wrote again since: this one's echoes are all older
        if agrees(expectation, change):
            return True
    return False


def overwritten(ledger: Sequence[Expectation], change: Change, echoed_ms: int = 0) -> bool:
    """Was ``change``, made in its region's registry, overwritten there since it was made?

    The replicator converges the whole entity to the table's item: a change made before it
    recorded an expectation (and reaching persist only now) is no longer what that registry
    holds, and writing it would replicate a state no registry has. Likewise a change older than
    a full-state event persist already took for an echo (``echoed_ms``, the ledger's echo
    mark): that event reported what the registry held after the change, and it was dropped, so
    the older change must not stand in its place. (A deletion's event carries no content: when
    an operator re-creates and deletes an entity the replicator had just deleted, and the
    DELETED arrives first, it agrees with the replicator's expectation and is taken for its
    echo; the CREATED, arriving after, would otherwise be applied and leave the table holding a
    thing that registry no longer has.)"""
    if change.corrective:
        return False
    ts = change.origin.timestamp_ms
    return ts < echoed_ms or any(0 < e.recorded_ms - ts <= TTL_MS for e in ledger)


def _matches_item(stored: Item, change: Change) -> bool:
    if stored.deleted or change.deleted:
        return stored.deleted == change.deleted
    return all(
        digest(value) == digest(stored.state[name])
        for name, value in change.fields.items()
        if name in stored.state
    )


def agrees(expectation: Expectation, change: Change) -> bool:
    """Every fact the change states matches the expectation (unknown fields are wildcards)."""
    if expectation.deleted != change.deleted:
        return False
    return all(
        digest(value) == expectation.digests[name]
        for name, value in change.fields.items()
        if name in expectation.digests
    )


def _normal(value: Any) -> Any:
    if isinstance(value, list | tuple):
        # Order-free (searchable attributes); items may be maps (propagating attributes).
        return sorted(value, key=lambda v: json.dumps(v, sort_keys=True, default=str)) or None
    if isinstance(value, dict):
        return dict(value) or None
    return value if value not in ("", False) else None
