"""The one translation of botocore's exceptions into the project's (``pipeline.aws``)."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from pipeline.errors import AwsRequestError, AwsServiceError, PermanentError, RetryableError
from pipeline.iot import IotRegistry


def _iot(endpoint: str = "http://127.0.0.1:9") -> IotRegistry:
    client = boto3.client(
        "iot",
        region_name="eu-west-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )
    return IotRegistry(client)


def test_parameters_the_service_model_refuses_are_permanent() -> None:
    # botocore validates parameters before sending (ParamValidationError): retrying cannot help.
    with pytest.raises(AwsRequestError) as raised:
        _iot().deprecate_thing_type("type", undo="yes")  # type: ignore[arg-type]
    assert isinstance(raised.value, PermanentError)
    assert raised.value.code == "ParamValidationError"
    assert raised.value.operation == "DeprecateThingType"


def test_a_connection_failure_is_retryable() -> None:
    # Nothing listens on port 9: EndpointConnectionError after botocore's (one) attempt.
    with pytest.raises(AwsServiceError) as raised:
        _iot().describe_thing("thing")
    assert isinstance(raised.value, RetryableError)
    assert raised.value.code == "EndpointConnectionError"
