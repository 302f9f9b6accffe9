"""5. Global Table replication between the two regions' state tables."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sandbox.emulation.streams import StreamCursor

BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem maximum


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


def _key(record: Mapping[str, Any]) -> str:
    return json.dumps(record["dynamodb"]["Keys"], sort_keys=True)


def _created(record: Mapping[str, Any]) -> float:
    created = record["dynamodb"].get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        return created.timestamp()
    return float(created or 0)


def _new_image(record: Mapping[str, Any]) -> Any:
    return record["dynamodb"].get("NewImage") if record["eventName"] != "REMOVE" else None
