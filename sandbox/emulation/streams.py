"""5. Global Table replication between the two regions' state tables, and 6. the
DynamoDB-stream event source mapping that feeds the replicator in Lambda's event shape."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.model import parse_key
from sandbox.emulation.patches import JsonDict

# --------------------------------------------------------------------------------------------
# 5. and 6. DynamoDB streams: Global Table replication and the event source mapping
# --------------------------------------------------------------------------------------------


def is_noop_modify(record: Mapping[str, Any]) -> bool:
    """moto emits MODIFY for a write that changes nothing; AWS emits no record at all."""
    data = record.get("dynamodb", {})
    return record.get("eventName") == "MODIFY" and data.get("NewImage") == data.get("OldImage")


def _sequence(record: Mapping[str, Any]) -> int:
    return int(record["dynamodb"]["SequenceNumber"])


class StreamCursor:
    """Reads one table's stream from the start, remembering the last sequence number per shard.

    ``read`` returns records after the committed position without moving it; ``commit`` moves it.
    No-op MODIFY records are skipped here, because AWS never emits them.
    """

    def __init__(self, streams: Any, stream_arn: str) -> None:
        self._streams = streams
        self.stream_arn = stream_arn
        self._committed: dict[str, str] = {}

    def _shards(self) -> list[str]:
        description = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        return [shard["ShardId"] for shard in description.get("Shards", [])]

    def read(self, limit: int = 1000) -> list[tuple[str, JsonDict]]:
        """Up to ``limit`` records after the committed position, as ``(shard_id, record)``."""
        out: list[tuple[str, JsonDict]] = []
        for shard_id in self._shards():
            after = self._committed.get(shard_id)
            kwargs: JsonDict = {"StreamArn": self.stream_arn, "ShardId": shard_id}
            if after is None:
                kwargs["ShardIteratorType"] = "TRIM_HORIZON"
            else:
                kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
                kwargs["SequenceNumber"] = after
            iterator = self._streams.get_shard_iterator(**kwargs)["ShardIterator"]
            while iterator and len(out) < limit:
                page = self._streams.get_records(ShardIterator=iterator, Limit=limit - len(out))
                records = page.get("Records", [])
                if not records:
                    break
                for record in records:
                    if is_noop_modify(record):
                        # Nothing to deliver, but never read it again.
                        if not out:
                            self._committed[shard_id] = record["dynamodb"]["SequenceNumber"]
                        continue
                    out.append((shard_id, record))
                iterator = page.get("NextShardIterator")
            if len(out) >= limit:
                break
        return out

    def commit(self, shard_id: str, sequence_number: str) -> None:
        self._committed[shard_id] = sequence_number


def _fingerprint(table_key: Any, image: Any) -> str:
    return json.dumps([table_key, image], sort_keys=True, default=str)


class GlobalTableReplication:
    """DynamoDB Global Tables (version 2019.11.21) between replicas of the same table, both ways.

    Reference: "How DynamoDB global tables work",
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html.
    Each replica's writes are applied to the others; INSERT/MODIFY become a put of the new image,
    REMOVE a delete. A replicated write appears in the receiving replica's stream (the replicator
    depends on that) but is not replicated back. Concurrent writes to one item in two replicas
    resolve by *last writer wins*, the same item in every replica: a global table in
    multi-Region eventual consistency (the default) resolves concurrent writes to one item with a
    last-writer-wins mechanism based on the timestamps of the writes (AWS Prescriptive Guidance,
    "Overview of global tables",
    https://docs.aws.amazon.com/prescriptive-guidance/latest/dynamodb-global-tables/overview.html).
    Here "last" is the stream record's ApproximateCreationDateTime, ties broken by region name.

    Replication lag is whatever the caller leaves between two ``replicate`` calls (the tests
    interleave them with everything else).
    """

    def __init__(self, regions: Mapping[str, tuple[Any, Any, str]], table_name: str) -> None:
        # region -> (dynamodb client, streams client, stream arn)
        self._table_name = table_name
        self._clients = {region: clients[0] for region, clients in regions.items()}
        self._cursors = {
            region: StreamCursor(clients[1], clients[2]) for region, clients in regions.items()
        }
        self._echoes: dict[str, Counter[str]] = {region: Counter() for region in regions}
        # region -> item key -> (write time, writing region, read order) of the write it holds
        self._latest: dict[str, dict[str, tuple[float, str, int]]] = {r: {} for r in regions}
        self.copied: Counter[str] = Counter()  # replicated writes by key prefix (THING, ECHO...)

    def replicate(self) -> int:
        """Copy every new write to the other replicas; the number of writes applied."""
        pending: list[tuple[tuple[float, str, int], str, Mapping[str, Any]]] = []
        for source, cursor in self._cursors.items():
            while True:
                batch = cursor.read()
                if not batch:
                    break
                for _, record in batch:
                    if not self._is_echo(source, record):
                        stamp = (_created(record), source, len(pending))
                        pending.append((stamp, source, record))
                shard_id, last = batch[-1]
                cursor.commit(shard_id, last["dynamodb"]["SequenceNumber"])
        # Each replica's own writes first: an older write from elsewhere must not overwrite them.
        for stamp, source, written in pending:
            key = _key(written)
            self._latest[source][key] = max(self._latest[source].get(key, stamp), stamp)
        pending.sort(key=lambda entry: entry[0])
        applied = 0
        for target in self._clients:
            winners = [
                written
                for stamp, source, written in pending
                if source != target and self._wins(target, _key(written), stamp)
            ]
            applied += self._copy(target, winners)
        return applied

    def _wins(self, target: str, key: str, stamp: tuple[float, str, int]) -> bool:
        held = self._latest[target].get(key)
        if held is not None and held >= stamp:
            return False
        self._latest[target][key] = stamp
        return True

    def _is_echo(self, source: str, record: Mapping[str, Any]) -> bool:
        """Our own replicated write arriving back in the stream of the replica we wrote to."""
        fingerprint = _fingerprint(record["dynamodb"]["Keys"], _new_image(record))
        echoes = self._echoes[source]
        if echoes[fingerprint]:
            echoes[fingerprint] -= 1
            return True
        return False

    def _copy(self, target: str, records: list[Mapping[str, Any]]) -> int:
        """Apply records to one replica in time order, 25 per BatchWriteItem; a key seen twice
        starts a new batch, so the later write still lands last."""
        client = self._clients[target]
        requests: list[dict[str, Any]] = []
        keys: set[str] = set()
        for record in records:
            data = record["dynamodb"]
            key = _key(record)
            if key in keys or len(requests) == BATCH_WRITE_LIMIT:
                self._write(client, requests)
                requests, keys = [], set()
            new_image = _new_image(record)
            if new_image is None:
                requests.append({"DeleteRequest": {"Key": data["Keys"]}})
            else:
                requests.append({"PutRequest": {"Item": new_image}})
            keys.add(key)
            self.copied[str(data["Keys"]["pk"]["S"]).partition("#")[0]] += 1
            self._echoes[target][_fingerprint(data["Keys"], new_image)] += 1
        self._write(client, requests)
        return len(records)

    def _write(self, client: Any, requests: list[dict[str, Any]]) -> None:
        while requests:
            response = client.batch_write_item(RequestItems={self._table_name: requests})
            requests = response.get("UnprocessedItems", {}).get(self._table_name, [])


def _is_entity_record(record: Mapping[str, Any]) -> bool:
    """A record of an entity item (``pipeline.model`` key), not of the pipeline's bookkeeping."""
    key = ((record["dynamodb"].get("Keys") or {}).get("pk") or {}).get("S")
    return isinstance(key, str) and parse_key(key) is not None


def _key(record: Mapping[str, Any]) -> str:
    return json.dumps(record["dynamodb"]["Keys"], sort_keys=True)


def _created(record: Mapping[str, Any]) -> float:
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        return created.timestamp()
    return float(created or 0)


BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem maximum


def _new_image(record: Mapping[str, Any]) -> Any:
    return record["dynamodb"].get("NewImage") if record["eventName"] != "REMOVE" else None


def lambda_stream_record(record: Mapping[str, Any], stream_arn: str, region: str) -> JsonDict:
    """A DynamoDB Streams API record in the shape Lambda's event source mapping delivers."""
    data = dict(record["dynamodb"])
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        data["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record.get("eventID"),
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,  # moto always says us-east-1
        "dynamodb": data,
        "eventSourceARN": stream_arn,
    }


class LambdaStreamReader:
    """A table's new stream records in Lambda's event shape, each returned once.

    For tests and benchmarks that hand records to the replicator themselves; the sandbox's own
    ``EventSourceMapping`` adds batching, redelivery and the failure destination. A mapping given
    ``cursor`` drains the same stream: a record either of them delivered is not read again.
    """

    def __init__(self, streams: Any, stream_arn: str, region: str) -> None:
        self.arn = stream_arn
        self._region = region
        self.cursor = StreamCursor(streams, stream_arn)

    def read(self) -> list[JsonDict]:
        batch = self.cursor.read()
        for shard_id, record in batch:
            self.cursor.commit(shard_id, record["dynamodb"]["SequenceNumber"])
        return [lambda_stream_record(record, self.arn, self._region) for _, record in batch]


@dataclass(frozen=True)
class FailedBatch:
    """What Lambda sends to the on-failure destination once retries are exhausted."""

    first_sequence_number: str
    last_sequence_number: str
    size: int
    attempts: int
    reason: str


@dataclass
class MappingStats:
    batches: int = 0
    # Checkpointed records (converged, skipped or sent to the failure sink), counted apart:
    # entity items (the registry work) and the pipeline's own bookkeeping items (echo ledger
    # ``ECHO#...``, deferred deletions ``PENDING#...``), which reach the stream too and which the
    # replicator skips. Lambda's mapping does not tell them apart; the sandbox's report does.
    records_applied: int = 0
    bookkeeping_records: int = 0
    batch_item_failures: int = 0
    handler_errors: int = 0
    failed_batches: list[FailedBatch] = field(default_factory=list)


StreamHandler = Callable[[JsonDict], Any]


class EventSourceMapping:
    """Lambda's DynamoDB-stream event source mapping with ReportBatchItemFailures.

    Reference: Lambda docs "Using Lambda with DynamoDB" / partial batch responses. Records are
    delivered in batches of up to ``batch_size``; when the function reports batch item failures,
    Lambda checkpoints before the lowest failed sequence number and retries from there; a raised
    error fails the whole batch; after ``max_retry_attempts`` retries the batch goes to the
    on-failure destination (``stats.failed_batches``) and the mapping moves on. Each ``poll``
    makes at most one attempt per batch, so other work can happen between retries.
    """

    def __init__(
        self,
        cursor: StreamCursor,
        handler: StreamHandler,
        region: str,
        batch_size: int = 100,
        max_retry_attempts: int = 3,
    ) -> None:
        self._cursor = cursor
        self._handler = handler
        self._region = region
        self.batch_size = batch_size
        self.max_retry_attempts = max_retry_attempts
        self._attempts: dict[str, int] = {}
        self.stats = MappingStats()
        self.errors: list[BaseException] = []

    def poll(self, on_batch: Callable[[MappingStats], None] | None = None) -> int:
        """Deliver pending records; the number of handler invocations made. ``on_batch`` sees
        the running totals after each batch (progress for long drains)."""
        invocations = 0
        while True:
            batch = self._cursor.read(self.batch_size)
            if not batch:
                return invocations
            invocations += 1
            delivered = self._deliver(batch)
            if on_batch is not None:
                on_batch(self.stats)
            if not delivered:
                return invocations

    def _deliver(self, batch: list[tuple[str, JsonDict]]) -> bool:
        """One attempt; True when the whole batch is checkpointed."""
        records = [
            lambda_stream_record(record, self._cursor.stream_arn, self._region)
            for _, record in batch
        ]
        self.stats.batches += 1
        failed = self._failed_sequences(records)
        by_sequence = {_sequence(record): i for i, (_, record) in enumerate(batch)}
        lowest = min((int(seq) for seq in failed if int(seq) in by_sequence), default=None)
        if lowest is None:
            self._count_checkpointed(batch)
            shard_id, last = batch[-1]
            self._cursor.commit(shard_id, last["dynamodb"]["SequenceNumber"])
            return True
        first_failed = by_sequence[lowest]
        self._count_checkpointed(batch[:first_failed])
        if first_failed:
            shard_id, before = batch[first_failed - 1]
            self._cursor.commit(shard_id, before["dynamodb"]["SequenceNumber"])
        key = str(lowest)
        self._attempts[key] = self._attempts.get(key, 0) + 1
        if self._attempts[key] > self.max_retry_attempts:
            rest = batch[first_failed:]
            self.stats.failed_batches.append(
                FailedBatch(
                    first_sequence_number=rest[0][1]["dynamodb"]["SequenceNumber"],
                    last_sequence_number=rest[-1][1]["dynamodb"]["SequenceNumber"],
                    size=len(rest),
                    attempts=self._attempts.pop(key),
                    reason="retries exhausted",
                )
            )
            shard_id, last = batch[-1]
            self._cursor.commit(shard_id, last["dynamodb"]["SequenceNumber"])
            return True
        return False

    def _count_checkpointed(self, batch: list[tuple[str, JsonDict]]) -> None:
        entities = sum(_is_entity_record(record) for _, record in batch)
        self.stats.records_applied += entities
        self.stats.bookkeeping_records += len(batch) - entities

    def _failed_sequences(self, records: list[JsonDict]) -> list[str]:
        try:
            response = self._handler({"Records": records})
        except Exception as error:  # Lambda's contract: a raised error fails the whole batch
            self.errors.append(error)
            self.stats.handler_errors += 1
            return [records[0]["dynamodb"]["SequenceNumber"]]
        failures = (response or {}).get("batchItemFailures") or []
        self.stats.batch_item_failures += len(failures)
        return [str(failure["itemIdentifier"]) for failure in failures]
