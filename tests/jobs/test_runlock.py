"""The run lock: a conditional PutItem lease on a real (moto) DynamoDB table."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jobs import runlock
from jobs.runlock import Lease, LockTable
from pipeline.errors import CrrError

REGION = "eu-west-1"
TABLE = "iot-crr-run-lock"
ARN = f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}"


@pytest.fixture
def client(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb


def _factory(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)


def test_a_second_run_is_skipped_while_the_first_holds_the_lease(client: Any) -> None:
    # GIVEN a run in progress (its body starts a second run)  WHEN the second run asks for the
    # lock  THEN it does nothing and says so, and the first run's result is returned
    table = LockTable(client, TABLE)
    inner: list[dict[str, Any]] = []

    def first() -> dict[str, Any]:
        inner.append(
            runlock.run_exclusive(
                lambda: pytest.fail("the second run must not run"),
                table,
                lease_seconds=900,
                clock=lambda: 1_000.0,
            )
        )
        return {"status": "completed"}

    result = runlock.run_exclusive(first, table, lease_seconds=900, clock=lambda: 1_000.0)

    assert result == {"status": "completed"}
    assert inner[0]["status"] == "skipped"
    assert "holds the run lock until 1900" in inner[0]["message"]
    # AND the first run gave the lease back
    assert table.holder(runlock.LOCK_NAME) is None


def test_the_lease_is_released_when_the_run_raises(client: Any) -> None:
    table = LockTable(client, TABLE)

    def failing() -> dict[str, Any]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        runlock.run_exclusive(failing, table, lease_seconds=60, clock=lambda: 10.0)
    assert table.holder(runlock.LOCK_NAME) is None


def test_an_expired_lease_is_taken_over_and_its_late_release_is_refused(client: Any) -> None:
    # GIVEN a run that died holding a lease that expired at t=100
    table = LockTable(client, TABLE)
    stale = Lease(runlock.LOCK_NAME, "dead-run", expires_at=100)
    assert table.try_put(stale, now=0)
    # WHEN a run starts before the expiry  THEN it is refused; after it  THEN it takes over
    assert not table.try_put(Lease(runlock.LOCK_NAME, "early", 200), now=99)
    fresh = Lease(runlock.LOCK_NAME, "next-night", expires_at=1_000)
    assert table.try_put(fresh, now=101)
    # AND the dead run's release (were it to come back) does not remove the new holder's lease
    assert not table.release(stale)
    assert table.holder(runlock.LOCK_NAME) == fresh


def test_steps_of_a_sharded_run_and_unconfigured_jobs_are_not_locked(client: Any) -> None:
    env = {runlock.LOCK_TABLE_VARIABLE: ARN}
    table = LockTable(client, TABLE)
    assert table.try_put(Lease(runlock.LOCK_NAME, "someone", 10**11), now=0)
    ran: list[str] = []

    def run() -> dict[str, Any]:
        ran.append("x")
        return {"status": "completed"}

    for event in ({"shard": {"index": 0, "count": 2}}, {"merge": {"count": 2}}, {"prepare": {}}):
        assert runlock.exclusive(event, env, _factory, run, lease_seconds=60)["status"] == (
            "completed"
        )
    assert runlock.exclusive({}, {}, _factory, run, lease_seconds=60)["status"] == "completed"
    assert runlock.exclusive({}, env, _factory, run, lease_seconds=60)["status"] == "skipped"
    assert len(ran) == 4


def test_a_malformed_lock_table_setting_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="RUN_LOCK_TABLE: not a DynamoDB table ARN"):
        runlock.lock_table_from_env({runlock.LOCK_TABLE_VARIABLE: TABLE}, _factory)


def test_a_missing_table_is_an_aws_error_not_a_skip(client: Any) -> None:
    # A lock that cannot be taken for another reason than "held" fails the run (never silent).
    table = LockTable(client, "no-such-table")
    with pytest.raises(CrrError):
        runlock.run_exclusive(lambda: {}, table, lease_seconds=60, clock=lambda: 0.0)


def test_the_lambda_lease_is_its_remaining_time_plus_a_margin() -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 899_500

    assert runlock.lambda_lease_seconds(Context()) == 899 + runlock.LAMBDA_LEASE_MARGIN_SECONDS


# A container run stopped mid-run (ECS StopTask: SIGTERM, then SIGKILL 30 s later), in a
# process of its own: Python's default SIGTERM ends the process without running `finally`.
_STOPPED_RUN = f"""
import os, signal, threading
import boto3
from moto import mock_aws
from jobs import runlock
from jobs.runlock import LockTable

with mock_aws():
    client = boto3.client("dynamodb", region_name="{REGION}")
    client.create_table(
        TableName="{TABLE}",
        AttributeDefinitions=[{{"AttributeName": "pk", "AttributeType": "S"}}],
        KeySchema=[{{"AttributeName": "pk", "KeyType": "HASH"}}],
        BillingMode="PAY_PER_REQUEST",
    )
    table = LockTable(client, "{TABLE}")

    def run():
        print("holder while running:", table.holder(runlock.LOCK_NAME).owner, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(60)  # the rest of a long run; the signal interrupts it
        return {{"status": "completed"}}

    try:
        runlock.run_exclusive(
            run, table, lease_seconds=runlock.CONTAINER_LEASE_SECONDS, clock=lambda: 0.0, owner="me"
        )
    except runlock.RunTerminatedError as error:
        print("raised:", error)
    print("holder after:", table.holder(runlock.LOCK_NAME))
    print("handler after:", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
"""


def test_a_run_stopped_by_sigterm_gives_the_lease_back(aws_credentials: None) -> None:
    # GIVEN a run holding the 12-hour container lease  WHEN the task is stopped (SIGTERM)
    done = subprocess.run(
        [sys.executable, "-c", _STOPPED_RUN],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    # THEN the run ends with an error saying why, and the lease is given back (the next run
    # is not skipped for 12 hours), and the process's own SIGTERM handling is restored
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout.splitlines() == [
        "holder while running: me",
        "raised: the run was stopped (SIGTERM) before it finished",
        "holder after: None",
        "handler after: True",
    ]
