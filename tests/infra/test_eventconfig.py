"""`iot-crr enable-events`: the pure decision, the adapter on a stubbed real client, the command.

moto has no event configurations, so the adapter runs against botocore's Stubber on a real boto3
IoT client: a fake of AWS (request shapes are validated against the service model), not of our code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from pipeline.errors import AwsRequestError, AwsServiceError, ThrottledError
from pipeline.eventconfig import (
    REGISTRY_EVENT_TYPES,
    configuration_changes,
    desired_configuration,
    enable_events,
)
from reconcile.context import Factory
from reconcile.enable_events import enable_events_command

ALL_OFF = {t: False for t in REGISTRY_EVENT_TYPES} | {"JOB": True, "CERTIFICATE": False}


def _described(config: dict[str, bool]) -> dict[str, Any]:
    return {"eventConfigurations": {t: {"Enabled": on} for t, on in config.items()}}


@pytest.fixture
def iot(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Stubber]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("iot", region_name="eu-west-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_registry_event_types_are_the_six_documented_ones() -> None:
    assert REGISTRY_EVENT_TYPES == (
        "THING",
        "THING_GROUP",
        "THING_TYPE",
        "THING_GROUP_MEMBERSHIP",
        "THING_GROUP_HIERARCHY",
        "THING_TYPE_ASSOCIATION",
    )


def test_desired_configuration_sets_registry_types_and_keeps_the_others() -> None:
    desired = desired_configuration(ALL_OFF, enable=True)
    assert all(desired[t] for t in REGISTRY_EVENT_TYPES)
    assert desired["JOB"] is True and desired["CERTIFICATE"] is False
    assert desired_configuration(desired, enable=False) == ALL_OFF


def test_desired_configuration_adds_types_the_account_never_listed() -> None:
    assert desired_configuration({}, enable=True) == {t: True for t in REGISTRY_EVENT_TYPES}


def test_configuration_changes_lists_only_differences() -> None:
    current = ALL_OFF | {"THING": True}
    changes = configuration_changes(current, desired_configuration(current, enable=True))
    assert changes == {t: True for t in REGISTRY_EVENT_TYPES if t != "THING"}


def test_enable_updates_only_the_changed_types(iot: tuple[Any, Stubber]) -> None:
    # GIVEN THING already on  WHEN enabling  THEN one update with the five other types
    client, stubber = iot
    before = ALL_OFF | {"THING": True}
    stubber.add_response("describe_event_configurations", _described(before), {})
    stubber.add_response(
        "update_event_configurations",
        {},
        {
            "eventConfigurations": {
                t: {"Enabled": True} for t in REGISTRY_EVENT_TYPES if t != "THING"
            }
        },
    )
    got_before, after = enable_events(client, enable=True)
    assert got_before == before
    assert after == before | {t: True for t in REGISTRY_EVENT_TYPES}


def test_enable_twice_makes_no_update_call(iot: tuple[Any, Stubber]) -> None:
    # GIVEN everything already on  WHEN enabling  THEN only the describe call happens
    client, stubber = iot
    on = ALL_OFF | {t: True for t in REGISTRY_EVENT_TYPES}
    stubber.add_response("describe_event_configurations", _described(on), {})
    before, after = enable_events(client, enable=True)
    assert before == after == on


def test_disable_turns_only_registry_types_off(iot: tuple[Any, Stubber]) -> None:
    client, stubber = iot
    on = ALL_OFF | {t: True for t in REGISTRY_EVENT_TYPES}
    stubber.add_response("describe_event_configurations", _described(on), {})
    stubber.add_response(
        "update_event_configurations",
        {},
        {"eventConfigurations": {t: {"Enabled": False} for t in REGISTRY_EVENT_TYPES}},
    )
    _, after = enable_events(client, enable=False)
    assert after == ALL_OFF


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 400, ThrottledError),
        ("InternalFailureException", 500, AwsServiceError),
        ("UnauthorizedException", 401, AwsRequestError),
    ],
)
def test_aws_errors_are_classified(
    iot: tuple[Any, Stubber], code: str, status: int, error: type[Exception]
) -> None:
    client, stubber = iot
    stubber.add_client_error(
        "describe_event_configurations", service_error_code=code, http_status_code=status
    )
    with pytest.raises(error) as raised:
        enable_events(client, enable=True)
    assert raised.value.__cause__ is not None


def _run(
    client: Any, *args: str, env: dict[str, str] | None = None
) -> tuple[Any, list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def factory(service: str, region: str) -> Any:
        seen.append((service, region))
        return client

    result = CliRunner().invoke(
        enable_events_command, list(args), obj=Factory(client=factory), env=env
    )
    return result, seen


def test_command_prints_before_and_after(iot: tuple[Any, Stubber]) -> None:
    client, stubber = iot
    stubber.add_response("describe_event_configurations", _described(ALL_OFF), {})
    stubber.add_response(
        "update_event_configurations",
        {},
        {"eventConfigurations": {t: {"Enabled": True} for t in REGISTRY_EVENT_TYPES}},
    )
    result, factory_calls = _run(client, "--region", "eu-west-1")
    assert result.exit_code == 0, result.output
    assert factory_calls == [("iot", "eu-west-1")]
    assert "Registry events in eu-west-1" in result.output
    thing_line = next(line for line in result.output.splitlines() if line.startswith("THING "))
    assert thing_line.split()[1:3] == ["off", "on"]
    assert "6 event type(s) changed." in result.output


def test_command_takes_the_region_from_the_environment(iot: tuple[Any, Stubber]) -> None:
    client, stubber = iot
    on = {t: True for t in REGISTRY_EVENT_TYPES}
    stubber.add_response("describe_event_configurations", _described(on), {})
    result, factory_calls = _run(client, env={"AWS_REGION": "", "AWS_DEFAULT_REGION": "ap-south-1"})
    assert result.exit_code == 0, result.output
    assert factory_calls == [("iot", "ap-south-1")]
    assert "Already as requested." in result.output


def test_command_requires_a_region(iot: tuple[Any, Stubber]) -> None:
    client, _ = iot
    result, _ = _run(client, env={"AWS_REGION": "", "AWS_DEFAULT_REGION": ""})
    assert result.exit_code == 2
    assert "--region" in result.output


def test_command_exits_2_with_one_line_on_aws_errors(iot: tuple[Any, Stubber]) -> None:
    client, stubber = iot
    stubber.add_client_error(
        "describe_event_configurations",
        service_error_code="AccessDeniedException",
        service_message="not allowed",
        http_status_code=403,
    )
    result, _ = _run(client, "--region", "eu-west-1", "--disable")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [
        "Error: eu-west-1: DescribeEventConfigurations failed: AccessDeniedException: not allowed"
    ]
