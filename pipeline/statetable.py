"""DynamoDB adapter for the state table: one item per entity, holding its desired state.

The only module that reads or writes the state table. The write policy itself is the pure
``pipeline.state.decide``; here we carry it out as compare-and-swap: read the item, decide, then
write with a condition that the item is still the revision we read (``rev``), or still absent.
A concurrent writer makes the condition fail and we decide again on the fresh item, so no update
is ever lost and no write is ever based on a stale read.

Item layout (partition key ``pk`` only): an entity's item as ``pipeline.tableitems`` writes and
reads it (``state``, ``deleted``, ``origin_*``, ``event_ts``, ``rev``, …). Other keys hold the
pipeline's own bookkeeping, read and written as typed records: a kind's (``Bookkeeping``: a
deferred thing-type deletion, ``pipeline.kinds.thing_type``; a certificate the region refused to
register, ``pipeline.kinds.certificate_refusal``) and the echo ledger
(``EchoLedger``, ``ECHO#<region>#<entity key>``, ``pipeline.echo``: ``entries``, a list the
replicator writes, ``expires_at``, epoch seconds for the table's TTL, and ``echoed_ms``, the
echo mark persist writes). Each writer sets only its own attributes. Outside this module (and
``pipeline.tableitems``, a stream record's image) the table is Items and those records, never
raw items.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from pipeline import echo
from pipeline.aws import AwsCalls
from pipeline.echo import Expectation
from pipeline.errors import (
    AwsRequestError,
    ConditionFailedError,
    EventValidationError,
    NotFoundError,
    RetryableError,
    ThrottledError,
)
from pipeline.model import Change, EntityKind, Item, MalformedRecord, entity_key
from pipeline.state import Decision, Outcome, decide
from pipeline.tableitems import (
    from_dynamodb,
    item_from_image,
    item_from_record,
    item_to_record,
    to_dynamodb,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MAX_CAS_ATTEMPTS = 8
T = TypeVar("T")
BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem maximum
SCAN_SEGMENTS = 4  # parallel Scan workers for a whole-table read (the audit's third view)
MAX_SCAN_SEGMENTS = 1_000_000  # DynamoDB's TotalSegments maximum


class ConcurrentWriteError(RetryableError):
    """Other writers kept changing the item between our read and our write."""


class Bookkeeping(Protocol):
    """A typed record the pipeline keeps beside the entities (its key is no entity's)."""

    @property
    def key(self) -> str: ...

    def to_record(self) -> dict[str, Any]: ...

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Self: ...


B = TypeVar("B", bound=Bookkeeping)


@dataclass(frozen=True)
class PersistResult:
    outcome: Outcome
    key: str
    reason: str
    wrote: bool = False  # the item was written (every APPLIED, some UNCHANGED)


class StateTable:
    """The state table in one region. Takes the boto3 DynamoDB client for that region."""

    def __init__(self, dynamodb_client: DynamoDBClient, table_name: str) -> None:
        self._ddb = dynamodb_client
        self._aws = AwsCalls()
        self.name = table_name
        # Records read ahead by ``prefetch`` (one stream batch's worth); writes invalidate.
        self._prefetched: dict[str, dict[str, Any] | None] = {}
        self.ledger = EchoLedger(self)

    def get(self, kind: EntityKind, name: str) -> Item | None:
        record = self._get(entity_key(kind, name))
        return item_from_record(record) if record else None

    def get_items(self, kind: EntityKind, names: Iterable[str]) -> dict[str, Item | None]:
        """Many items of one kind by name, 100 per BatchGetItem."""
        wanted = list(names)
        records = self._get_many(entity_key(kind, name) for name in wanted)
        return {name: _item_or_none(records[entity_key(kind, name)]) for name in wanted}

    def prefetch(self, keys: Iterable[str]) -> None:
        """Read many items in few calls (BatchGetItem) for the reads that follow."""
        self._prefetched.update(self._get_many(keys))

    def items_of(self, kind: EntityKind, prefix: str = "") -> Iterator[Item]:
        """Every item of ``kind`` whose name starts with ``prefix`` (a filtered Scan: it reads
        the whole table, so rare reads only: a delete's cascade, a pending task)."""
        for record in self._scan_prefix(entity_key(kind, prefix)):
            item = item_from_record(record)
            if item is not None:
                yield item

    # --- bookkeeping records -------------------------------------------------------------------

    def get_record(self, cls: type[B], key: str) -> B | None:
        record = self._get(key)
        return None if record is None else cls.from_record(record)

    def put_record(self, record: Bookkeeping) -> None:
        self._put({"pk": record.key, **record.to_record()})

    def delete_record(self, key: str) -> None:
        self._prefetched.pop(key, None)
        self._call("DeleteItem", self._ddb.delete_item, TableName=self.name, Key={"pk": {"S": key}})

    def records(self, cls: type[B], prefix: str) -> Iterator[B | MalformedRecord]:
        """Every record of ``cls`` whose key starts with ``prefix`` (small sets only); one that
        ``cls`` cannot read is yielded as a ``MalformedRecord`` in its place, so the records
        after it are still read (a bad one once stopped every pending deletion after it)."""
        for record in self._scan_prefix(prefix):
            try:
                yield cls.from_record(record)
            except EventValidationError as error:
                yield MalformedRecord(str(record.get("pk", "")), str(error))

    # --- raw reads and writes (this module only) -------------------------------------------------

    def _get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """Consistent reads of many keys, 100 per BatchGetItem; missing keys map to ``None``."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any] | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.name: {
                    "Keys": [{"pk": {"S": key}} for key in wanted[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            for _ in range(MAX_CAS_ATTEMPTS):
                response = self._call(
                    "BatchGetItem", self._ddb.batch_get_item, RequestItems=request
                )
                for image in response.get("Responses", {}).get(self.name, []):
                    record = from_dynamodb(image)
                    found[record["pk"]] = record
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise ThrottledError(
                    "BatchGetItem",
                    "UnprocessedKeys",
                    f"keys left unprocessed {MAX_CAS_ATTEMPTS} times",
                )
        return found

    def _get(self, key: str) -> dict[str, Any] | None:
        if key in self._prefetched:
            return self._prefetched[key]
        response = self._call(
            "GetItem",
            self._ddb.get_item,
            TableName=self.name,
            Key={"pk": {"S": key}},
            ConsistentRead=True,
        )
        image = response.get("Item")
        return from_dynamodb(image) if image else None

    def _put(self, record: Mapping[str, Any]) -> None:
        self._prefetched.pop(str(record["pk"]), None)
        self._call("PutItem", self._ddb.put_item, TableName=self.name, Item=to_dynamodb(record))

    def _scan_prefix(self, prefix: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "FilterExpression": "begins_with(pk, :p)",
            "ExpressionAttributeValues": {":p": {"S": prefix}},
        }
        while True:
            page = self._call("Scan", self._ddb.scan, **kwargs)
            for image in page.get("Items", []):
                yield from_dynamodb(image)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def scan_entities(self, segments: int = SCAN_SEGMENTS) -> list[Item]:
        """Every entity item (tombstones included; bookkeeping keys skipped), read by a
        parallel Scan (``scan``)."""
        return self.scan(segments)[0]

    def scan(
        self, segments: int = SCAN_SEGMENTS, *, records: str | tuple[str, ...] | None = None
    ) -> tuple[list[Item], list[dict[str, Any]]]:
        """Every entity item (tombstones included), and the bookkeeping records whose key
        starts with ``records`` (one of them, a tuple; none if None), read in one parallel Scan: ``segments``
        workers, each scanning its own segment (Segment / TotalSegments, "Parallel scan" in the
        Amazon DynamoDB Developer Guide,
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Scan.html). Costs
        read capacity, no IoT quota. Consistent reads: the audit compares against what the
        table holds now, not a second ago."""
        if not 1 <= segments <= MAX_SCAN_SEGMENTS:
            raise ValueError(f"segments must be 1..{MAX_SCAN_SEGMENTS}, got {segments}")

        def segment(number: int) -> tuple[list[Item], list[dict[str, Any]]]:
            kwargs: dict[str, Any] = {
                "TableName": self.name,
                "Segment": number,
                "TotalSegments": segments,
                "ConsistentRead": True,
            }
            items: list[Item] = []
            kept: list[dict[str, Any]] = []
            while True:
                page = self._call("Scan", self._ddb.scan, **kwargs)
                for image in page.get("Items", []):
                    item = item_from_image(image)
                    if item is not None:
                        items.append(item)
                    elif records is not None and image["pk"]["S"].startswith(records):
                        kept.append(from_dynamodb(image))
                if "LastEvaluatedKey" not in page:
                    return items, kept
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

        with ThreadPoolExecutor(segments, thread_name_prefix="scan") as pool:
            parts = list(pool.map(segment, range(segments)))
        return [i for items, _ in parts for i in items], [r for _, kept in parts for r in kept]

    def apply_many(self, changes: Sequence[Change]) -> list[PersistResult]:
        """``apply`` for many changes in fewer calls, for backfills: one BatchGetItem per 100
        keys, then one conditional PutItem per change that writes. A write whose condition
        fails (another writer got there first) falls back to ``apply``, so the outcome is
        exactly that of applying the changes one by one, in order. (Batched writes cannot carry
        conditions, and transactions cost far more than they save here.)"""
        results: list[PersistResult] = []
        for chunk in _unique_key_chunks(changes, BATCH_GET_LIMIT // 2):
            stored = self._get_many(key for change in chunk for key in echo.keys_to_read(change))
            for change in chunk:
                before = _item_or_none(stored[change.key])
                decision = decide(before, change, *echo.ledger_for(stored, change))
                if decision.item is not None and not self._write_if_unchanged(decision, before):
                    results.append(self.apply(change))
                    continue
                self.ledger.mark(change, decision)
                results.append(
                    PersistResult(
                        decision.outcome, change.key, decision.reason, decision.item is not None
                    )
                )
        return results

    def apply(self, change: Change) -> PersistResult:
        """Decide and conditionally write one change; retried on concurrent writers."""
        for _ in range(MAX_CAS_ATTEMPTS):
            records = self._get_many(echo.keys_to_read(change))
            stored = _item_or_none(records[change.key])
            decision = decide(stored, change, *echo.ledger_for(records, change))
            if decision.item is None:
                self.ledger.mark(change, decision)
                return PersistResult(decision.outcome, change.key, decision.reason)
            if self._write_if_unchanged(decision, stored):
                return PersistResult(decision.outcome, change.key, decision.reason, True)
        raise ConcurrentWriteError(
            f"{change.key}: the item changed under {MAX_CAS_ATTEMPTS} consecutive writes"
        )

    def _update(
        self,
        key: str,
        expression: str,
        values: Mapping[str, Any],
        condition: str | None = None,
    ) -> None:
        self._prefetched.pop(key, None)
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "Key": {"pk": {"S": key}},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": to_dynamodb(values),
        }
        if condition is not None:
            kwargs["ConditionExpression"] = condition
        self._call("UpdateItem", self._ddb.update_item, **kwargs)

    def _write_if_unchanged(self, decision: Decision, stored: Item | None) -> bool:
        assert decision.item is not None
        self._prefetched.pop(decision.item.key, None)
        try:
            self._call(
                "PutItem",
                self._ddb.put_item,
                TableName=self.name,
                Item=to_dynamodb(item_to_record(decision.item)),
                **_unchanged_condition(stored),
            )
        except ConditionFailedError:
            return False
        return True

    def _call(self, operation: str, method: Callable[..., T], **kwargs: Any) -> T:
        try:
            return self._aws(operation, method, **kwargs)
        except NotFoundError as error:
            # A missing *table* is a deployment fault, not an absent item: permanent.
            raise AwsRequestError(operation, error.code, str(error)) from error


def _unchanged_condition(stored: Item | None) -> dict[str, Any]:
    """The write goes through only if the item is still what we decided on."""
    if stored is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "ConditionExpression": "#rev = :rev",
        "ExpressionAttributeNames": {"#rev": "rev"},
        "ExpressionAttributeValues": {":rev": {"N": str(stored.rev)}},
    }


def _item_or_none(record: Mapping[str, Any] | None) -> Item | None:
    return item_from_record(record) if record else None


def _unique_key_chunks(changes: Sequence[Change], size: int) -> Iterator[list[Change]]:
    """Chunks of at most ``size`` changes in order, no key twice in one chunk (a transaction
    may not name an item twice, and the second change must see the first one's result)."""
    chunk: list[Change] = []
    keys: set[str] = set()
    for change in changes:
        if len(chunk) == size or change.key in keys:
            yield chunk
            chunk, keys = [], set()
        chunk.append(change)
        keys.add(change.key)
    if chunk:
        yield chunk


class EchoLedger:
    """The echo ledger (``pipeline.echo``) in one region's replica of the table: what that
    region's replicator is about to write to each entity (``record``; persist reads it with the
    entity's item, ``echo.keys_to_read``), and the echo mark persist moves forward (``mark``)."""

    def __init__(self, table: StateTable) -> None:
        self._table = table

    def record(self, region: str, key: str, new: Sequence[Expectation], now_ms: int) -> None:
        """Append to the entity's ledger in ``region``. Only that region's replicator writes
        it, one stream record at a time per entity, so a plain read-modify-write is enough."""
        ledger_key = echo.ledger_key(region, key)
        record = self._table._get(ledger_key)
        entries = echo.record(echo.expectations_of(record), new, now_ms)
        values = {
            "entries": [e.to_record() for e in entries],
            # DynamoDB TTL deletes the item once the newest expectation has expired.
            "expires_at": (entries[-1].recorded_ms + echo.TTL_MS) // 1000 + 1,
        }
        if record is None:
            # Only the replicator creates the ledger (persist's mark needs it to exist).
            self._table._put({"pk": ledger_key, **values})
            return
        # An update of its own attributes only: persist sets ``echoed_ms`` on the same item.
        self._table._update(
            ledger_key,
            "SET entries = :entries, expires_at = :expires",
            {":entries": values["entries"], ":expires": values["expires_at"]},
        )

    def expectations(self, region: str, key: str) -> list[Expectation]:
        """The entity's ledger in ``region`` (none: no ledger)."""
        return echo.expectations_of(self._table._get(echo.ledger_key(region, key)))

    def mark(self, change: Change, decision: Decision) -> None:
        """Record the echo mark ``decide`` asked for; only ever moved forward, and only on a
        ledger that still exists (the mark outlives nothing the ledger does not)."""
        if decision.echoed_ms is None:
            return
        # Not met: a newer mark is there already, or the ledger expired; nothing to record.
        with contextlib.suppress(ConditionFailedError):
            self._table._update(
                echo.ledger_key(change.origin.region, change.key),
                "SET echoed_ms = :ts",
                {":ts": decision.echoed_ms},
                "attribute_exists(pk) AND (attribute_not_exists(echoed_ms) OR echoed_ms < :ts)",
            )
