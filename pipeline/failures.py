"""Where records that can never succeed go, with their reason: an SQS queue (or, without one,
an ERROR log line). Sending is the only I/O here; a failed send is retryable, so the record is
reported back to the event source mapping instead of being lost."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from pipeline.aws import AwsCalls
from pipeline.errors import AwsError, AwsServiceError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class FailureSink:
    def __init__(
        self, logger: Logger, sqs_client: SQSClient | None = None, queue_url: str | None = None
    ) -> None:
        self._logger = logger
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._aws = AwsCalls()
        self.sent: list[dict[str, Any]] = []

    def record(self, *, key: str, sequence_number: str, error: Exception) -> None:
        entry = {
            "key": key,
            "sequenceNumber": sequence_number,
            "errorType": type(error).__name__,
            "reason": str(error),
        }
        self._logger.error("permanent failure", extra=entry)
        self.sent.append(entry)
        if self._sqs is None or not self._queue_url:
            return
        try:
            self._aws(
                "SendMessage",
                self._sqs.send_message,
                QueueUrl=self._queue_url,
                MessageBody=json.dumps(entry),
            )
        except AwsError as send_error:
            # Even a permanent refusal is retried: the record must not be lost with its reason.
            raise AwsServiceError(
                "SendMessage", send_error.code, f"could not record failure of {key}: {send_error}"
            ) from send_error
