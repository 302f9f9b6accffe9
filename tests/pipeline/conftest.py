"""Functional tests of the pipeline on moto (in-process), two regions.

The state table lives in the destination region only: persist writes straight into it, which is
what Global Table replication delivers there (the sandbox tests cover replication itself).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipeline import replicate
from pipeline.events import parse_event
from pipeline.iot import IotRegistry
from pipeline.persist import persist_change
from pipeline.statetable import PersistResult, StateTable
from sandbox.emulation import LambdaStreamReader

SRC = "us-east-1"
DST = "eu-west-1"
TABLE = "crr-state"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"


def fixture_event(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


class Pipeline:
    """persist -> (replicated) state table -> stream -> replicator, all on moto."""

    def __init__(self) -> None:
        ddb = boto3.client("dynamodb", region_name=DST)
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        self.table = StateTable(ddb, TABLE)
        arn = ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        self.stream = LambdaStreamReader(boto3.client("dynamodbstreams", region_name=DST), arn, DST)
        self.source = boto3.client("iot", region_name=SRC)
        self.destination = boto3.client("iot", region_name=DST)
        self.dst = IotRegistry(self.destination)

    def persist(self, event: dict[str, Any]) -> PersistResult:
        return persist_change(self.table, parse_event(event, region=SRC))

    def replicate(self) -> list[dict[str, str]]:
        """Hand the new stream records to the replicator; returns its batch item failures."""
        records = self.stream.read()
        if not records:
            return []
        response = replicate.lambda_handler({"Records": records}, None)
        return list(response["batchItemFailures"])


@pytest.fixture
def aws_env(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.setenv("AWS_REGION", DST)
    monkeypatch.setenv("STATE_TABLE", TABLE)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "IotRegistryCrr")
    with mock_aws():
        yield


@pytest.fixture
def pipeline(aws_env: None) -> Pipeline:
    return Pipeline()
