"""The gateway in front of moto: one clear line for a region the sandbox does not serve and
for an action moto lacks, as an AWS-shaped error boto3 raises (never moto's HTML 500 page)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sandbox.stack import Sandbox
from tests.sandbox.conftest import DESTINATION, SOURCE


def test_a_region_the_sandbox_does_not_serve_is_refused_naming_the_served_ones(
    box: Sandbox,
) -> None:
    with pytest.raises(ClientError) as caught:
        box.iot("ap-south-1").list_things()

    error = caught.value.response["Error"]
    assert error["Code"] == "SandboxRegionNotServed"
    assert error["Message"] == (
        f"the sandbox serves {SOURCE} and {DESTINATION}, not ap-south-1 "
        "(start it with --source-region/--target-region)"
    )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 0


@pytest.mark.parametrize("service", ["sqs", "dynamodb", "stepfunctions"])
def test_every_regional_protocol_gets_a_parseable_refusal(box: Sandbox, service: str) -> None:
    client = box.client(service, "ap-south-1")
    call = {"sqs": "list_queues", "dynamodb": "list_tables", "stepfunctions": "list_state_machines"}
    with pytest.raises(ClientError, match="the sandbox serves"):
        getattr(client, call[service])()


def test_the_served_regions_and_global_services_answer(box: Sandbox) -> None:
    assert box.iot(SOURCE).list_things()["things"] == []
    assert box.iot(DESTINATION).list_things()["things"] == []
    # IAM is global: its calls are signed for us-east-1 whatever the client's region
    assert "Roles" in box.client("iam", "ap-south-1").list_roles()


def test_an_action_moto_lacks_is_one_line_not_an_html_page(box: Sandbox) -> None:
    with pytest.raises(ClientError) as caught:
        box.iot(SOURCE).describe_audit_task(taskId="x")

    error = caught.value.response["Error"]
    assert error["Code"] == "NotImplemented"
    assert "describe_audit_task" in error["Message"]
    assert "<" not in error["Message"]
