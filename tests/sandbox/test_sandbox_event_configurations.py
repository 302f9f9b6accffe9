"""`iot-crr enable-events` against the sandbox: the event configuration is emulated (moto has
none) and registry events are published only for the types enabled, as in AWS."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from pipeline.eventconfig import REGISTRY_EVENT_TYPES
from reconcile.enable_events import enable_events_command
from sandbox.stack import Sandbox
from tests.sandbox.conftest import SOURCE


def test_the_sandbox_starts_with_the_registry_types_on_and_others_off(box: Sandbox) -> None:
    config = box.iot(SOURCE).describe_event_configurations()["eventConfigurations"]

    assert {t for t, c in config.items() if c["Enabled"]} == set(REGISTRY_EVENT_TYPES)
    assert config["JOB"] == {"Enabled": False}


def test_enable_events_runs_against_the_sandbox_and_disabling_stops_the_events(
    box: Sandbox,
) -> None:
    runner = CliRunner()
    off = runner.invoke(enable_events_command, ["--region", SOURCE, "--disable"])
    assert off.exit_code == 0, off.output
    box.iot(SOURCE).create_thing(thingName="unseen")
    assert len(box.outbox(SOURCE)) == 0

    on = runner.invoke(enable_events_command, ["--region", SOURCE])
    assert on.exit_code == 0, on.output
    box.iot(SOURCE).create_thing(thingName="seen")
    assert [e["thingName"] for e in box.outbox(SOURCE).take()] == ["seen"]


def test_an_unknown_event_type_is_refused_as_aws_does(box: Sandbox) -> None:
    with pytest.raises(ClientError) as caught:
        box.iot(SOURCE).update_event_configurations(
            eventConfigurations={"NOT_A_TYPE": {"Enabled": True}}
        )
    assert caught.value.response["Error"]["Code"] in (
        "InvalidRequestException",
        "ValidationException",
    )
