"""What every test tier shares: a clean AWS environment and AWS-shaped error answers."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

AMBIENT_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_IOT",
    "AWS_DEFAULT_REGION",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and none of the developer's own AWS settings (profile, endpoint, ...)."""
    for key in AMBIENT_AWS_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


def aws_error_response(url: str, status: int, code: str, message: str = "") -> AWSResponse:
    """An HTTP answer as AWS gives it for an error (JSON protocols): what a ``before-send``
    hook returns to make a real botocore client see throttling or a 5xx, retries included."""
    body = f'{{"__type": "{code}", "message": "{message}"}}'.encode()
    headers = HTTPHeaders()
    headers["x-amzn-ErrorType"] = code
    return AWSResponse(url, status, headers, _Body(body))
