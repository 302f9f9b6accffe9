"""Fixtures for the nightly job tests: the shared sandbox scenario and in-process moto regions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sandbox.provision import create_state_table
from tests.jobs.scenario import DST, SRC, Scenario, shared_root, shared_scenario

TABLE = "iot-crr-state"


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return shared_scenario(shared_root(tmp_path_factory))


@pytest.fixture
def aws(aws_credentials: None) -> Iterator[None]:
    """Dummy credentials, no ambient endpoint, two moto regions with the state table."""
    with mock_aws():
        for region in (SRC, DST):
            create_state_table(boto3.client("dynamodb", region_name=region), TABLE)
        yield


def fleet(iot: Any, things: int, *, drifted: bool = False) -> None:
    """A registry of ``things`` things over two types and a group tree; ``drifted`` makes the
    target's version differ in a known way (missing, extra and changed things, memberships)."""
    iot.create_thing_type(thingTypeName="sensor")
    iot.create_thing_type(thingTypeName="gateway")
    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(thingGroupName="floor-1", parentGroupName="site")
    for i in range(things):
        if drifted and i % 7 == 0:
            continue  # missing in the target
        colour = "blue" if drifted and i % 5 == 0 else "red"
        iot.create_thing(
            thingName=f"t{i:03d}",
            thingTypeName="sensor" if i % 2 else "gateway",
            attributePayload={"attributes": {"colour": colour, "n": str(i)}},
        )
        if i % 3 == 0 and not (drifted and i % 9 == 0):
            iot.add_thing_to_thing_group(thingGroupName="floor-1", thingName=f"t{i:03d}")
    if drifted:
        for i in range(3):
            iot.create_thing(thingName=f"extra-{i}")
