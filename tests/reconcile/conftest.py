"""Fixtures for reconciliation tests: two isolated moto IoT regions (in-process) and helpers.

The source region is us-east-1 and the target eu-west-1. The ``seed`` fixture builds the same
small registry in a region; tests then edit one side to create exactly the drift they look for.
Helpers are handed out as fixtures (not imported from this file), so test modules need no
package layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from reconcile.inventory import Inventory
from reconcile.ratelimit import RateLimiter
from reconcile.snapshot import Snapshot, take_snapshot
from sandbox.inprocess import DST as LOCAL_DST
from sandbox.inprocess import TABLE, LocalPipeline

SRC = "us-east-1"
DST = "eu-west-1"


@pytest.fixture
def aws(aws_credentials: None) -> Iterator[None]:
    """Dummy credentials and no ambient endpoint/region, inside ``mock_aws``."""
    with mock_aws():
        yield


@pytest.fixture
def source_iot(aws: None) -> Any:
    return boto3.client("iot", region_name=SRC)


@pytest.fixture
def target_iot(aws: None) -> Any:
    return boto3.client("iot", region_name=DST)


@pytest.fixture
def seed() -> Callable[..., None]:
    return seed_registry


@pytest.fixture(name="snapshot_of")
def snapshot_of_fixture() -> Callable[..., Snapshot]:
    return snapshot_of


def seed_registry(iot: Any, things: int = 4) -> None:
    """A small registry: one type, a two-level group hierarchy, a billing group, things
    ``t0..t{n-1}`` with attributes, some in groups and in the billing group."""
    iot.create_thing_type(
        thingTypeName="sensor",
        thingTypeProperties={
            "thingTypeDescription": "a sensor",
            "searchableAttributes": ["room", "colour"],
        },
    )
    iot.create_thing_type(thingTypeName="gateway")
    iot.create_billing_group(
        billingGroupName="fleet", billingGroupProperties={"billingGroupDescription": "main"}
    )
    iot.create_thing_group(
        thingGroupName="building",
        thingGroupProperties={
            "thingGroupDescription": "HQ",
            "attributePayload": {"attributes": {"city": "Paris"}},
        },
    )
    iot.create_thing_group(thingGroupName="floor-1", parentGroupName="building")
    iot.create_thing_group(thingGroupName="floor-2", parentGroupName="building")
    for i in range(things):
        iot.create_thing(
            thingName=f"t{i}",
            thingTypeName="sensor",
            attributePayload={"attributes": {"room": str(100 + i), "colour": "red"}},
        )
    iot.add_thing_to_billing_group(billingGroupName="fleet", thingName="t0")
    iot.add_thing_to_thing_group(thingGroupName="floor-1", thingName="t0")
    iot.add_thing_to_thing_group(thingGroupName="floor-1", thingName="t1")
    iot.add_thing_to_thing_group(thingGroupName="floor-2", thingName="t2")


def snapshot_of(iot: Any, region: str, **inventory: Any) -> Snapshot:
    return take_snapshot(Inventory(iot, RateLimiter.unlimited(), **inventory), region)


@pytest.fixture
def pipeline_environment(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the in-process pipeline's handlers read from their environment (as deployed)."""
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.setenv("AWS_REGION", LOCAL_DST)
    monkeypatch.setenv("STATE_TABLE", TABLE)


@pytest.fixture
def pipeline(pipeline_environment: None) -> Iterator[LocalPipeline]:
    """Both regions and the pipeline in process, moto checking certificates as AWS does (a
    module needing other kinds listed, or the emulation, defines its own)."""
    with mock_aws(config={"iot": {"use_valid_cert": True}}):
        yield LocalPipeline()
