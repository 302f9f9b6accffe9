"""One whole nightly run at a time: a lease item in a small DynamoDB table, taken with a
conditional PutItem and given back with a conditional DeleteItem.

Why: the schedule, a retry, a hand-started backfill or a Fargate task started while the Lambda
still runs must never diff and emit at the same time (both would see the same drift and emit it
twice). Shards and merges of a sharded run are not locked: they run in parallel by design.

AWS behaviour relied on: a PutItem with a ``ConditionExpression`` writes only if the condition
holds for the stored item, atomically, and otherwise fails with
``ConditionalCheckFailedException`` (Amazon DynamoDB Developer Guide, "Condition expressions",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html).
A lease expires (``expires_at``, epoch seconds), so a run that died without releasing never blocks
the next night; the same attribute is the table's TTL attribute, but TTL deletes lazily, so the
condition checks the expiry itself.

The lock is on only where ``RUN_LOCK_TABLE`` is set (the templates set it to the table's ARN).

A run stopped from outside gives the lease back too: stopping a task sends SIGTERM, then SIGKILL
30 s later ("When StopTask is called on a task, the equivalent of docker stop is issued ... This
results in a SIGTERM value and a default 30-second timeout, after which the SIGKILL value is
sent", Amazon ECS API Reference, StopTask). Python's default SIGTERM ends the process without
running ``finally``, which left the 12-hour container lease held and every run until then
skipped; while a run holds the lease, SIGTERM raises ``RunTerminatedError`` instead, so the run
is recorded as failed and the lease released within those 30 s.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from pipeline import aws
from pipeline.aws import ClientFactory
from pipeline.errors import ConditionFailedError, PermanentError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LOCK_TABLE_VARIABLE = "RUN_LOCK_TABLE"
LOCK_NAME = "nightly"
EXPIRY_ATTRIBUTE = (
    "expires_at"  # epoch seconds; also the table's TTL attribute (infra/reconcile.yaml)
)
# A container run has no deadline of its own; a lease it never gave back (the task was killed)
# expires well before the next night's run.
CONTAINER_LEASE_SECONDS = 12 * 3600
# Added to a Lambda's remaining time: the lease outlives the invocation a little, never a night.
LAMBDA_LEASE_MARGIN_SECONDS = 60

Clock = Callable[[], float]  # epoch seconds


class RunTerminatedError(PermanentError):
    """The process was asked to stop (SIGTERM) while a run held the lease."""


@dataclass(frozen=True)
class Lease:
    name: str
    owner: str
    expires_at: int  # epoch seconds


class LockTable:
    """The run lock's only DynamoDB calls."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table
        self._aws = aws.AwsCalls()

    def try_put(self, lease: Lease, now: int) -> bool:
        """Write ``lease`` unless another unexpired lease holds the name; True if written."""
        try:
            self._aws(
                "PutItem",
                self._client.put_item,
                TableName=self._table,
                Item={
                    "pk": {"S": lease.name},
                    "owner": {"S": lease.owner},
                    EXPIRY_ATTRIBUTE: {"N": str(lease.expires_at)},
                },
                ConditionExpression="attribute_not_exists(pk) OR #expires < :now",
                ExpressionAttributeNames={"#expires": EXPIRY_ATTRIBUTE},
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ConditionFailedError:
            return False
        return True

    def holder(self, name: str) -> Lease | None:
        item = self._aws(
            "GetItem",
            self._client.get_item,
            TableName=self._table,
            Key={"pk": {"S": name}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        return Lease(name, item["owner"]["S"], int(item[EXPIRY_ATTRIBUTE]["N"]))

    def release(self, lease: Lease) -> bool:
        """Delete ``lease`` if it is still ours; False if it expired and another run took it."""
        try:
            self._aws(
                "DeleteItem",
                self._client.delete_item,
                TableName=self._table,
                Key={"pk": {"S": lease.name}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": lease.owner}},
            )
        except ConditionFailedError:
            return False
        return True


def is_whole_run(event: Mapping[str, Any]) -> bool:
    """A normal run (locked), not one step of a sharded run (never locked)."""
    return not any(key in event for key in ("shard", "merge", "prepare"))


def lock_table_from_env(env: Mapping[str, str], factory: ClientFactory) -> LockTable | None:
    """The lock table named by ``RUN_LOCK_TABLE`` (a table ARN), or None when unset."""
    arn = (env.get(LOCK_TABLE_VARIABLE) or "").strip()
    if not arn:
        return None
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "dynamodb" or not parts[5].startswith("table/"):
        raise ValueError(f"{LOCK_TABLE_VARIABLE}: not a DynamoDB table ARN: {arn!r}")
    return LockTable(factory("dynamodb", parts[3]), parts[5].removeprefix("table/"))


def run_exclusive(
    run: Callable[[], dict[str, Any]],
    table: LockTable | None,
    *,
    lease_seconds: int,
    clock: Clock,
    owner: str | None = None,
) -> dict[str, Any]:
    """``run()`` while holding the lease; a skipped result (not an error) if another run holds it.

    The lease is released when ``run`` returns or raises. ``table`` None runs without a lock.
    """
    if table is None:
        return run()
    now = int(clock())
    lease = Lease(LOCK_NAME, owner or uuid.uuid4().hex, now + lease_seconds)
    if not table.try_put(lease, now):
        other = table.holder(LOCK_NAME)
        until = f"until {other.expires_at} (epoch s), owner {other.owner}" if other else "just now"
        return {
            "status": "skipped",
            "message": f"another nightly run holds the run lock {until}; this run did nothing",
        }
    try:
        with _sigterm_raises():
            return run()
    finally:
        table.release(lease)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises ``RunTerminatedError`` in the block (once: a second one during the
    clean-up is ignored, SIGKILL still follows); the previous handler is restored after.
    Signal handlers belong to the main thread: elsewhere the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise RunTerminatedError("the run was stopped (SIGTERM) before it finished")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def lambda_lease_seconds(context: Any) -> int:
    """A Lambda run's lease: its remaining time (it cannot run longer) plus a margin."""
    remaining_ms = int(context.get_remaining_time_in_millis()) if context else 900_000
    return remaining_ms // 1000 + LAMBDA_LEASE_MARGIN_SECONDS


def exclusive(
    event: Mapping[str, Any],
    env: Mapping[str, str],
    factory: ClientFactory,
    run: Callable[[], dict[str, Any]],
    *,
    lease_seconds: int,
    clock: Clock = time.time,
) -> dict[str, Any]:
    """The call sites' one line: a whole run under the lock (when configured), anything else as is."""
    table = lock_table_from_env(env, factory) if is_whole_run(event) else None
    return run_exclusive(run, table, lease_seconds=lease_seconds, clock=clock)
