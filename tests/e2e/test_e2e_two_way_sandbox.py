"""`iot-crr sandbox up --two-way`: the pipeline in both directions on the sandbox (issue 12)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from sandbox import pump
from sandbox.cli import exports, welcome
from sandbox.stack import Sandbox
from tests.e2e.conftest import DESTINATION, SOURCE


@pytest.fixture(scope="module")
def two_way() -> Iterator[Sandbox]:
    with Sandbox(SOURCE, DESTINATION, two_way=True) as box:
        yield box


def test_a_change_in_the_target_region_reaches_the_source_and_its_echo_writes_nothing(
    two_way: Sandbox,
) -> None:
    # GIVEN a thing created in the DR (target) region
    two_way.iot(DESTINATION).create_thing(
        thingName="dr-sensor", attributePayload={"attributes": {"site": "dub"}}
    )
    stop = threading.Event()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        described = two_way.iot(SOURCE).list_things()["things"]
        if any(thing["thingName"] == "dr-sensor" for thing in described):
            stop.set()

    # WHEN the pump runs until the source region holds it
    total = pump.run(two_way, stop, echo, interval=0)
    total.add(two_way.drain(timeout=60))

    # THEN it arrived with its attributes; the one registry change was persisted once (in the
    # DR region), and the source's echo of the replicator's write was recognised and persisted
    # nothing, so nothing went back
    described = two_way.iot(SOURCE).describe_thing(thingName="dr-sensor")
    assert described["attributes"] == {"site": "dub"}, lines
    assert two_way.failure_reasons() == []
    assert dict(total.persisted) == {"applied": 1, "echo": 1}, lines


def test_a_persist_failure_in_the_target_region_is_printed(two_way: Sandbox) -> None:
    # GIVEN an event the DR region's persist handler refuses, started as its IoT rule would
    machine = two_way.resources.state_machine_in(DESTINATION)
    event = {"eventType": "THING", "operation": "CREATED", "thingName": "", "timestamp": 1}
    two_way.client("stepfunctions", DESTINATION).start_execution(
        stateMachineArn=machine, input=json.dumps(event)
    )
    stop = threading.Event()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if "failed (persist)" in line:
            stop.set()

    pump.run(two_way, stop, echo, interval=0)
    assert any(line.startswith("  failed (persist) THING") for line in lines), lines


def test_the_exports_name_both_regions_persist_state_machines(two_way: Sandbox) -> None:
    names = exports(two_way)
    assert names["PERSIST_STATE_MACHINE_ARN"].startswith(f"arn:aws:states:{SOURCE}:")
    assert names["TARGET_PERSIST_STATE_MACHINE_ARN"].startswith(f"arn:aws:states:{DESTINATION}:")
    assert f"{SOURCE} ⇄ {DESTINATION}" in welcome(two_way)


def test_onboarding_kinds_made_in_the_dr_region_reach_the_source_and_their_echoes_write_nothing(
    two_way: Sandbox,
) -> None:
    two_way.reset()
    dr, primary = two_way.iot(DESTINATION), two_way.iot(SOURCE)
    role = "arn:aws:iam::123456789012:role/devices"
    function = "arn:aws:lambda:{region}:123456789012:function:authorize"
    # GIVEN a role alias and an authorizer created in the DR region during a failover
    dr.create_role_alias(roleAlias="fleet", roleArn=role, credentialDurationSeconds=900)
    dr.create_authorizer(
        authorizerName="tokens",
        authorizerFunctionArn=function.format(region=DESTINATION),
        signingDisabled=True,
    )
    # WHEN the pipeline runs both ways until nothing moves
    report = two_way.drain(timeout=120)
    # THEN the primary holds them, the authorizer naming the primary region's function
    assert two_way.failure_reasons() == []
    alias = primary.describe_role_alias(roleAlias="fleet")["roleAliasDescription"]
    assert (alias["roleArn"], alias["credentialDurationSeconds"]) == (role, 900)
    described = primary.describe_authorizer(authorizerName="tokens")["authorizerDescription"]
    assert described["authorizerFunctionArn"] == function.format(region=SOURCE)
    # AND each change was persisted once, in the DR region; the primary's CloudTrail events of
    # the replicator's writes were recognised as echoes (the function as written there), so
    # nothing went back
    assert dict(report.persisted) == {"applied": 2, "echo": 2}, report


def test_shadows_written_in_the_dr_region_reach_the_source_and_their_echoes_write_nothing(
    two_way: Sandbox,
) -> None:
    two_way.reset()
    two_way.iot(DESTINATION).create_thing(thingName="dr-dev")
    two_way.drain(timeout=120)
    # GIVEN a device writing its classic and a named shadow in the DR region (after a failover)
    data = two_way.client("iot-data", DESTINATION)
    for named, state in (
        ({}, {"desired": {"mode": "boost"}, "reported": {"fw": "2.0"}}),
        ({"shadowName": "config"}, {"desired": {"interval": 30}}),
    ):
        payload = json.dumps({"state": state}).encode()
        data.update_thing_shadow(thingName="dr-dev", payload=payload, **named)
    # WHEN the pipeline runs both ways until nothing moves
    report = two_way.drain(timeout=120)
    # THEN the source holds both shadows as the DR region has them
    assert two_way.failure_reasons() == []
    source = two_way.client("iot-data", SOURCE)
    for named, expected in (
        ({}, {"desired": {"mode": "boost"}, "reported": {"fw": "2.0"}}),
        ({"shadowName": "config"}, {"desired": {"interval": 30}}),
    ):
        document = json.loads(
            source.get_thing_shadow(thingName="dr-dev", **named)["payload"].read()
        )
        state = {k: v for k, v in document["state"].items() if k in ("desired", "reported")}
        assert state == expected, named  # (the delta is each region's own)
    # AND each update was persisted once, in the DR region; the source's update/documents
    # messages of the replicator's writes were recognised as echoes, so nothing went back
    assert dict(report.persisted) == {"applied": 2, "echo": 2}, report
