"""The one translation of botocore's exceptions into the project's (``pipeline.aws``)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pipeline.aws import AwsCalls, data_client
from pipeline.errors import (
    AwsRequestError,
    AwsServiceError,
    AwsWaitError,
    ConditionFailedError,
    NotFoundError,
    PermanentError,
    RetryableError,
    ThrottledError,
)
from pipeline.iot import Iot


def _iot(endpoint: str = "http://127.0.0.1:9") -> Iot:
    client = boto3.client(
        "iot",
        region_name="eu-west-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )
    return Iot(client)


def test_parameters_the_service_model_refuses_are_permanent() -> None:
    # botocore validates parameters before sending (ParamValidationError): retrying cannot help.
    with pytest.raises(AwsRequestError) as raised:
        _iot().call("DeprecateThingType", thingTypeName="type", undoDeprecate="yes")
    assert isinstance(raised.value, PermanentError)
    assert raised.value.code == "ParamValidationError"
    assert raised.value.operation == "DeprecateThingType"


def test_a_connection_failure_is_retryable() -> None:
    # Nothing listens on port 9: EndpointConnectionError after botocore's (one) attempt.
    with pytest.raises(AwsServiceError) as raised:
        _iot().call("DescribeThing", thingName="thing")
    assert isinstance(raised.value, RetryableError)
    assert raised.value.code == "EndpointConnectionError"


def _refuse(code: str, status: int, message: str = "no") -> Any:
    def method(**_: Any) -> None:
        raise ClientError(
            {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            "Operation",
        )

    return method


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 400, ThrottledError),
        ("SomethingNew", 429, ThrottledError),
        ("InternalFailure", 500, AwsServiceError),
        ("ResourceNotFoundException", 404, NotFoundError),
        ("ConditionalCheckFailedException", 400, ConditionFailedError),
        ("InvalidRequestException", 400, AwsRequestError),
    ],
)
def test_calls_translate_by_code_and_status(code: str, status: int, expected: type) -> None:
    calls = AwsCalls()
    with pytest.raises(expected) as raised:
        calls("PutItem", _refuse(code, status))
    assert type(raised.value) is expected
    assert (raised.value.operation, raised.value.code) == ("PutItem", code)
    assert isinstance(raised.value.__cause__, ClientError)


def test_a_wait_refusal_is_matched_on_its_message_for_its_operation_only() -> None:
    message = "Cannot delete. Thing t is still attached to one or more principals"
    refusal = _refuse("InvalidRequestException", 400, message)
    with pytest.raises(AwsWaitError):
        AwsCalls()("DeleteThing", refusal)
    with pytest.raises(AwsRequestError) as raised:
        AwsCalls()("DeleteThingGroup", refusal)
    assert not isinstance(raised.value, AwsWaitError)


def test_delete_thing_group_with_children_is_a_wait() -> None:
    # Issue 27, item 8: the converger deletes a group right after its children; AWS's refusal
    # while a child still counts (getmoto/moto#2941 quotes it) must be retried, not a permanent
    # failure. Old code: AwsRequestError.
    message = " Cannot delete thing group : site when there are still child groups attached to it"
    with pytest.raises(AwsWaitError):
        AwsCalls()("DeleteThingGroup", _refuse("InvalidRequestException", 400, message))


def test_calls_are_counted_per_operation_failed_ones_too_after_before() -> None:
    seen: list[str] = []
    calls = AwsCalls(before=seen.append)
    assert calls("GetItem", lambda **params: params, Key="k") == {"Key": "k"}
    assert calls.maybe("GetItem", _refuse("ResourceNotFoundException", 400)) is None
    with pytest.raises(ThrottledError):
        calls("Scan", _refuse("ThrottlingException", 400))
    assert calls.counts == {"GetItem": 2, "Scan": 1}
    assert seen == ["GetItem", "GetItem", "Scan"]


def test_the_data_endpoint_is_read_from_the_variable_boto3_reads(
    aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # boto3 names a service's endpoint variable after its service ID ("IoT Data Plane"), not the
    # client's name ("Service-specific endpoints", AWS SDKs and Tools Reference Guide).
    iot = boto3.client("iot", region_name="eu-west-1")
    regional = data_client(iot).meta.endpoint_url
    account = "https://example-ats.iot.eu-west-1.amazonaws.com"
    monkeypatch.setenv("AWS_ENDPOINT_URL_IOT_DATA_PLANE", account)
    # THEN the variable set later is read (the reused client was made without it)
    assert regional == "https://data-ats.iot.eu-west-1.amazonaws.com"
    assert data_client(iot).meta.endpoint_url == account
