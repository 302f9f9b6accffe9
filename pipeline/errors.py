"""The project's exceptions, classified the way the pipeline must react to them.

- ``RetryableError``: try again later (throttling, 5xx, a dependency not replicated yet). The
  replicator reports the record as a batch item failure so the event source mapping retries it;
  the persist state machine's Retry re-invokes the task.
- ``PermanentError``: retrying cannot help (bad input, a rule AWS refuses). The record goes to the
  failure destination with the reason; the rest of the batch carries on.

Never branch on message text: branch on these classes and their fields.
"""

from __future__ import annotations


class CrrError(Exception):
    """Base of every error this project raises on purpose."""


class RetryableError(CrrError):
    """A failure that may succeed if tried again (throttling, 5xx, ordering across items)."""


class PermanentError(CrrError):
    """A failure that will not succeed if retried unchanged."""


class NotRegistrableError(PermanentError):
    """AWS refuses, for good, to create an entity in this region (a certificate shared from
    another region, ``pipeline.kinds.certificate_refusal``): recorded once by its kind, and
    neither retried nor queued as a failure, for it and for what depends on it."""


class EventValidationError(PermanentError):
    """A registry event (or stream record) is malformed: ``field`` names what, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid event: {field}: {reason}")
        self.field = field
        self.reason = reason


class RegistryValidationError(PermanentError):
    """A name or value breaks AWS IoT's documented rules; checked before any call (moto checks none)."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{field}={shown} breaks AWS IoT rule: {rule}")
        self.field = field
        self.value = value
        self.rule = rule


class AwsError(CrrError):
    """One AWS call failed after botocore's own retries: ``operation`` names the call, ``code`` is
    AWS's error code (botocore's exception class for a failure before any answer). Made only by
    ``pipeline.aws`` (``AwsCalls``); callers branch on the subclasses and, where one code matters,
    on ``code``."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.code = code


class ThrottledError(AwsError, RetryableError):
    """AWS throttled the call even after botocore's own retries."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(operation, code, f"{operation} throttled: {message}")


class AwsServiceError(AwsError, RetryableError):
    """AWS answered 5xx (or the connection failed) even after botocore's own retries."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(operation, code, f"{operation} failed: {code}: {message}")


class AwsRequestError(AwsError, PermanentError):
    """AWS refused the request itself (4xx other than throttling and not-found)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(operation, code, f"{operation} failed: {code}: {message}")
        self.aws_message = message  # AWS's own text, as it answered


class ConditionFailedError(AwsRequestError):
    """DynamoDB refused a conditional write because its condition did not hold
    (``ConditionalCheckFailedException``): the caller's compare-and-swap lost, nothing was
    written."""


class AwsWaitError(AwsError, RetryableError):
    """AWS refused the request for now: it succeeds once AWS has caught up (a deprecated type's
    5-minute wait, an asynchronous detach). See ``pipeline.aws.WAIT_REFUSALS``."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(operation, code, f"{operation} refused for now: {code}: {message}")


class NotFoundError(AwsError):
    """The named resource does not exist. Callers decide whether that is fine (deletes) or not."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(operation, code, f"{operation}: resource not found: {message}")
