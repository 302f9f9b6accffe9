"""The emulation's stream cursor describes a stream once, and again only when a shard closed;
it reads on with GetRecords' next iterator, and a record not committed is read again.

A stand-in for the DynamoDB Streams API (not moto: its streams have one shard that never closes)
with a parent shard that closes and a child shard that appears then, as DescribeStream and
GetRecords tell them (botocore's dynamodbstreams model: a closed shard has an
EndingSequenceNumber; GetRecords on it ends with a null NextShardIterator).
"""

from __future__ import annotations

from typing import Any

from sandbox.emulation.streams import StreamCursor

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/label"


def record(sequence: int) -> dict[str, Any]:
    return {
        "eventName": "INSERT",
        "dynamodb": {"SequenceNumber": str(sequence), "Keys": {"pk": {"S": f"k{sequence}"}}},
    }


class Streams:
    """Shards as lists of sequence numbers; a closed shard's reader gets no next iterator."""

    def __init__(self) -> None:
        self.shards: dict[str, list[int]] = {"parent": []}
        self.closed: set[str] = set()
        self.describes = 0
        self.iterators = 0  # GetShardIterator calls

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        assert StreamArn == ARN
        self.describes += 1
        return {"StreamDescription": {"Shards": [{"ShardId": s} for s in self.shards]}}

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        self.iterators += 1
        after = int(kwargs["SequenceNumber"]) if "SequenceNumber" in kwargs else 0
        return {"ShardIterator": f"{kwargs['ShardId']}|{after}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        shard, after = ShardIterator.split("|")
        found = [s for s in self.shards[shard] if s > int(after)][:Limit]
        last = found[-1] if found else int(after)
        at_end = last == (self.shards[shard] or [0])[-1]
        page: dict[str, Any] = {"Records": [record(s) for s in found]}
        if not (shard in self.closed and at_end):
            page["NextShardIterator"] = f"{shard}|{last}"
        return page


def read_and_commit(cursor: StreamCursor) -> list[int]:
    batch = cursor.read()
    for shard_id, item in batch:
        cursor.commit(shard_id, item["dynamodb"]["SequenceNumber"])
    return [int(item["dynamodb"]["SequenceNumber"]) for _, item in batch]


def test_while_no_shard_closes_and_all_is_committed_one_describe_and_one_iterator_do() -> None:
    streams = Streams()
    streams.shards["parent"] += [1, 2]
    cursor = StreamCursor(streams, ARN)

    assert read_and_commit(cursor) == [1, 2]
    assert read_and_commit(cursor) == []
    streams.shards["parent"].append(3)
    assert read_and_commit(cursor) == [3]
    assert streams.describes == 1  # described once while no shard closes
    assert streams.iterators == 1  # read on with GetRecords' NextShardIterator


def test_a_closed_shard_makes_the_next_read_find_its_children() -> None:
    streams = Streams()
    streams.shards["parent"] += [1, 2]
    cursor = StreamCursor(streams, ARN)
    assert read_and_commit(cursor) == [1, 2]

    # WHEN the parent takes a last record and closes, and its child takes the next ones
    streams.shards["parent"].append(3)
    streams.closed.add("parent")
    streams.shards["child"] = [4, 5]

    # THEN the read that meets the closed end describes again, and the child is read next
    assert read_and_commit(cursor) == [3]
    assert read_and_commit(cursor) == [4, 5]
    assert streams.describes == 2


def test_a_record_not_committed_is_read_again() -> None:
    streams = Streams()
    streams.shards["parent"] += [1, 2, 3]
    cursor = StreamCursor(streams, ARN)

    # GIVEN a consumer that checkpoints only the first record it was given (a failed batch)
    batch = cursor.read()
    assert [int(item["dynamodb"]["SequenceNumber"]) for _, item in batch] == [1, 2, 3]
    cursor.commit(batch[0][0], batch[0][1]["dynamodb"]["SequenceNumber"])

    # THEN the next read starts after the checkpoint, with a new iterator
    assert read_and_commit(cursor) == [2, 3]
    assert streams.iterators == 2
    assert read_and_commit(cursor) == []
