"""`iot-crr redrive`: what an operator does with a message of the replicator's failure queue.

What the queue holds. The stream's event source mapping sends a batch it gave up on (retries or
record age exhausted) to its on-failure destination as *metadata*, not the records: "Each record
sent to the destination is a JSON document with metadata about the failed invocation" (Lambda
Developer Guide, "Retain discarded records for a DynamoDB event source in Lambda",
https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html); its example names
``requestContext`` (``functionArn``, ``condition``) and ``DDBStreamBatchInfo`` (``shardId``,
``startSequenceNumber``, ``endSequenceNumber``, ``approximateArrivalOfFirstRecord``,
``batchSize``, ``streamArn``). The records themselves stay in the stream only 24 hours: "There is
a 24 hour limit on data retention" (DynamoDB Streams API Reference, TrimmedDataAccessException;
DynamoDB Developer Guide, "Change data capture for DynamoDB Streams").

What this does with one. ``parse_message`` reads the metadata (pure); ``read_batch`` re-reads the
batch's records from the stream (GetShardIterator AT_SEQUENCE_NUMBER, GetRecords up to the end
sequence number) while the stream still holds them; ``redrive`` hands them to the replicator
function the message names (lambda:Invoke, in the shape the mapping delivers), which converges
each record's entity to the state table's *current* item, as the mapping would have. A batch
older than the stream's retention, or one the stream no longer holds (trimmed, or the stream is
gone), cannot be re-read: the command says so and names the repair, the reconciliation.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import ClientError

from pipeline.errors import EventValidationError
from pipeline.model import parse_key
from reconcile.context import Factory, in_region, pass_factory
from reconcile.exits import EXIT_DRIFT, EXIT_IN_SYNC

STREAM_RETENTION_MS = 24 * 3600 * 1000
"""DynamoDB Streams keep a record 24 hours (TrimmedDataAccessException, DynamoDB Streams API
Reference)."""

# What GetShardIterator/GetRecords answer for records the stream no longer holds (botocore's
# dynamodbstreams model): trimmed after 24 h, or the shard or stream gone.
_GONE = frozenset({"TrimmedDataAccessException", "ResourceNotFoundException"})
_MAX_EMPTY_PAGES = 10  # "it might take multiple calls to get to a portion ... that contains"
_MAX_PAYLOAD_BYTES = 5_000_000  # under Lambda's 6 MB for a synchronous invocation's request


@dataclass(frozen=True)
class FailedBatch:
    """One on-failure message of a DynamoDB stream's event source mapping."""

    function_arn: str
    condition: str
    stream_arn: str
    shard_id: str
    start: str
    end: str
    size: int
    first_arrival_ms: int | None

    @property
    def region(self) -> str:
        return self.stream_arn.split(":")[3]


def parse_message(body: str | Mapping[str, Any]) -> FailedBatch:
    """The batch an on-failure message describes; a message of another shape is refused."""
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as error:
            raise EventValidationError("message", f"not JSON: {error.msg}") from error
    if not isinstance(body, Mapping):
        raise EventValidationError("message", "must be a JSON object")
    info = body.get("DDBStreamBatchInfo")
    if not isinstance(info, Mapping):
        raise EventValidationError(
            "DDBStreamBatchInfo", "missing: not a DynamoDB stream mapping's on-failure message"
        )
    given = body.get("requestContext")
    context: Mapping[str, Any] = given if isinstance(given, Mapping) else {}

    def text(where: Mapping[str, Any], name: str, prefix: str) -> str:
        value = where.get(name)
        if not isinstance(value, str) or not value:
            raise EventValidationError(f"{prefix}.{name}", "missing or not a string")
        return value

    for name in ("startSequenceNumber", "endSequenceNumber"):
        if not text(info, name, "DDBStreamBatchInfo").isdigit():
            raise EventValidationError(f"DDBStreamBatchInfo.{name}", "must be digits")
    size = info.get("batchSize")
    return FailedBatch(
        function_arn=text(context, "functionArn", "requestContext"),
        condition=str(context.get("condition", "")),
        stream_arn=text(info, "streamArn", "DDBStreamBatchInfo"),
        shard_id=text(info, "shardId", "DDBStreamBatchInfo"),
        start=info["startSequenceNumber"],
        end=info["endSequenceNumber"],
        size=size if isinstance(size, int) else 0,
        first_arrival_ms=_epoch_ms(info.get("approximateArrivalOfFirstRecord")),
    )


def _epoch_ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        return None


def past_retention(batch: FailedBatch, now_ms: int) -> bool:
    """Whether the stream may have trimmed the batch's first record already."""
    return batch.first_arrival_ms is not None and now_ms - batch.first_arrival_ms >= (
        STREAM_RETENTION_MS
    )


def read_batch(streams: Any, batch: FailedBatch) -> list[dict[str, Any]] | None:
    """The batch's records re-read from the stream, oldest first; ``None`` when the stream no
    longer holds them."""
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=batch.stream_arn,
            ShardId=batch.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=batch.start,
        )["ShardIterator"]
        records: list[dict[str, Any]] = []
        empty = 0
        while iterator and empty < _MAX_EMPTY_PAGES:
            page = streams.get_records(ShardIterator=iterator)
            found = page.get("Records") or []
            empty = 0 if found else empty + 1
            for record in found:
                if int(record["dynamodb"]["SequenceNumber"]) > int(batch.end):
                    return records
                records.append(record)
            if records and int(records[-1]["dynamodb"]["SequenceNumber"]) >= int(batch.end):
                return records
            iterator = page.get("NextShardIterator")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _GONE:
            return None
        raise
    return records or None


def lambda_record(record: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A DynamoDB Streams API record in the shape Lambda's event source mapping delivers (the
    Lambda Developer Guide's DynamoDB example event): epoch seconds for the creation time, the
    stream's ARN and region added."""
    data = dict(record["dynamodb"])
    created = data.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        data["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record.get("eventID"),
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": data,
        "eventSourceARN": stream_arn,
    }


def _chunks(records: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    size = 0
    for record in records:
        length = len(json.dumps(record, default=str))
        if chunk and size + length > _MAX_PAYLOAD_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(record)
        size += length
    if chunk:
        yield chunk


def redrive(functions: Any, batch: FailedBatch, records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Invoke the replicator with the re-read records; the keys it still failed (its partial
    batch response, or every record of an invocation that raised)."""
    keys = {str(r["dynamodb"]["SequenceNumber"]): _key(r) for r in records}
    event_records = [lambda_record(r, batch.stream_arn, batch.region) for r in records]
    failed: list[str] = []
    for chunk in _chunks(event_records):
        response = functions.invoke(
            FunctionName=batch.function_arn, Payload=json.dumps({"Records": chunk}, default=str)
        )
        payload = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            failed += [_key(r) for r in chunk]
            continue
        for failure in (payload or {}).get("batchItemFailures") or []:
            failed.append(keys.get(str(failure.get("itemIdentifier")), "?"))
    return failed


def _key(record: Mapping[str, Any]) -> str:
    return str(((record["dynamodb"].get("Keys") or {}).get("pk") or {}).get("S", "?"))


def _messages(paths: Sequence[str]) -> Iterator[tuple[str, Any]]:
    """(where, body) of each message: a file holds one on-failure message, or the answer of
    ``aws sqs receive-message`` (its ``Messages[].Body``); ``-`` reads standard input."""
    for path in paths:
        content = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        try:
            data = json.loads(content)
        except json.JSONDecodeError as error:
            raise EventValidationError(path, f"not JSON: {error.msg}") from error
        if isinstance(data, Mapping) and isinstance(data.get("Messages"), list):
            for message in data["Messages"]:
                yield f"{path} message {message.get('MessageId', '?')}", message.get("Body", "")
        else:
            yield path, data


_RECONCILE = (
    "the stream no longer holds these records (DynamoDB Streams keep them 24 h): run the "
    "reconciliation, which repairs whatever they carried: iot-crr reconcile --source-region "
    "SOURCE --target-region {region} --apply (the nightly job does)"
)


@click.command(name="redrive")
@click.argument("messages", nargs=-1, required=True, metavar="MESSAGE_FILE...")
@click.option("--apply", is_flag=True, help="Re-drive the records (default: only list them).")
@pass_factory
def redrive_command(factory: Factory, messages: tuple[str, ...], apply: bool) -> None:
    """Re-drive a batch the replicator's stream mapping gave up on (ReplicatorFailureQueue).

    The queue's message names the batch (shard, sequence numbers), not its records: they are
    re-read from the state table's stream while it holds them (24 h) and handed to the
    replicator function the message names; older, the reconciliation repairs them.

    Exit codes: 0 re-driven (or listed), 1 something left (records gone from the stream, or
    still failing), 2 error.

    \b
    Example:
      aws sqs receive-message --queue-url $REPLICATOR_FAILURE_QUEUE_URL > failed.json
      iot-crr redrive failed.json           # what would be re-driven
      iot-crr redrive failed.json --apply
    """
    left = False
    for where, body in _messages(messages):
        batch = parse_message(body)
        click.echo(
            f"{where}: {batch.size} record(s) of shard {batch.shard_id}, sequence "
            f"{batch.start}..{batch.end} ({batch.condition or 'no condition given'})"
        )
        with in_region(batch.region):
            records = None
            if not past_retention(batch, factory.clock()):
                records = read_batch(factory.aws_client("dynamodbstreams", batch.region), batch)
            if records is None:
                click.echo("  " + _RECONCILE.format(region=batch.region))
                left = True
                continue
            # The pipeline's bookkeeping items (echo ledger, pending deletions) share the stream.
            keys = sorted({k for r in records if parse_key(k := _key(r)) is not None})
            click.echo(f"  re-read {len(records)} record(s); entities: {', '.join(keys) or 'none'}")
            if not apply:
                continue
            failed = redrive(factory.aws_client("lambda", batch.region), batch, records)
        if failed:
            left = True
            click.echo(
                f"  still failing: {', '.join(sorted(set(failed)))} (see the replicator's log)"
            )
        else:
            click.echo(f"  re-driven through {batch.function_arn}")
    raise click.exceptions.Exit(EXIT_DRIFT if left else EXIT_IN_SYNC)
