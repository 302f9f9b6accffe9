"""The one factory for boto3 clients: every client is made for a named region and passed in.

Configuration is boto3's own: credentials and profile (``AWS_PROFILE``), endpoint
(``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``), retries (``AWS_RETRY_MODE``,
``AWS_MAX_ATTEMPTS``). When the environment sets no retry policy we use botocore's *adaptive*
mode, which retries throttling and 5xx with backoff and rate-limits the client itself.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.utils import CLIENT_NAME_TO_HYPHENIZED_SERVICE_ID_OVERRIDES

from pipeline.errors import (
    AwsRequestError,
    AwsServiceError,
    AwsWaitError,
    ConditionFailedError,
    NotFoundError,
    ThrottledError,
)

DEFAULT_MAX_ATTEMPTS = 8

ClientFactory = Callable[[str, str], Any]
"""``factory(service, region)`` -> a boto3 client: ``client`` below, or a test's or the sandbox's."""


# A snapshot's listings share one IoT client from up to ~20 threads (reconcile.inventory);
# botocore's pool holds 10 connections by default ("max_pool_connections", botocore Config
# reference, https://docs.aws.amazon.com/botocore/latest/reference/config.html), beyond which
# urllib3 opens and discards extra ones with a warning.
MAX_POOL_CONNECTIONS = 25


def client_config(**overrides: Any) -> Config:
    settings: dict[str, Any] = {
        "user_agent_extra": "iot-registry-crr",
        "max_pool_connections": MAX_POOL_CONNECTIONS,
    }
    if not (os.environ.get("AWS_RETRY_MODE") or os.environ.get("AWS_MAX_ATTEMPTS")):
        settings["retries"] = {"mode": "adaptive", "max_attempts": DEFAULT_MAX_ATTEMPTS}
    settings.update(overrides)
    return Config(**settings)


# What boto3 reads from the environment when it builds a client; a change makes a new client.
_ENVIRONMENT = (
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
)


def client(service: str, region: str, **config: Any) -> Any:
    """A boto3 client for ``service`` in ``region`` (never the implicit default region).

    Clients are reused for the same service, region and environment: building a session costs
    a quarter of a second, which a warm Lambda should pay once, not once per invocation.
    """
    if not region:
        raise ValueError(f"a region is required for the {service} client")
    environment = tuple(os.environ.get(name) for name in _ENVIRONMENT)
    service_endpoint = os.environ.get(endpoint_variable(service))
    return _cached_client(
        service, region, environment, service_endpoint, tuple(sorted(config.items()))
    )


@functools.lru_cache(maxsize=64)
def _cached_client(
    service: str,
    region: str,
    environment: tuple[str | None, ...],
    service_endpoint: str | None,
    config: tuple[tuple[str, Any], ...],
) -> Any:
    del environment, service_endpoint  # part of the cache key only
    session = boto3.session.Session(region_name=region)
    return session.client(service, config=client_config(**dict(config)))  # type: ignore[call-overload]


def endpoint_variable(service: str) -> str:
    """The environment variable boto3 reads ``service``'s endpoint from: named after the
    service's ID, not the client's name (``AWS_ENDPOINT_URL_IOT_DATA_PLANE`` for ``iot-data``,
    whose service ID is "IoT Data Plane"; ``AWS_ENDPOINT_URL_DYNAMODB_STREAMS``,
    ``AWS_ENDPOINT_URL_SFN``). AWS SDKs and Tools Reference Guide, "Service-specific endpoints"
    (the identifier column); botocore.configprovider ``_get_service_env_var_name``."""
    service_id = CLIENT_NAME_TO_HYPHENIZED_SERVICE_ID_OVERRIDES.get(service, service)
    return "AWS_ENDPOINT_URL_" + service_id.replace("-", "_").upper()


def data_client(iot_client: Any, factory: ClientFactory | None = None) -> Any:
    """The iot-data client (Device Shadow service, message broker) beside an IoT client: the one
    place that decides how one is made.

    Where the caller's clients come from an injected ``factory`` (a test's, the sandbox's IAM
    emulation, which checks each call against the acting role), the iot-data client is that
    factory's too, ``factory("iot-data", region)``: made, signed and checked as every other.

    Otherwise the same region and, where the IoT client was pointed at an endpoint of its own
    (the sandbox's), the same endpoint; else boto3's configuration decides, as for every client:
    ``AWS_ENDPOINT_URL_IOT_DATA_PLANE`` (``endpoint_variable``) names the account's data
    endpoint (``aws iot describe-endpoint --endpoint-type iot:Data-ATS``), which AWS recommends
    for production; without it botocore's regional ``data-ats.iot.<region>.amazonaws.com`` (AWS
    General Reference, "AWS IoT Core endpoints and quotas", data plane endpoints; the CLI's
    iot-data pages call it the default endpoint).
    """
    region = iot_client.meta.region_name
    if factory is not None:
        return factory("iot-data", region)
    endpoint = str(iot_client.meta.endpoint_url).rstrip("/")
    configured = (os.environ.get("AWS_ENDPOINT_URL") or "").rstrip("/")
    if endpoint.endswith((".amazonaws.com", ".amazonaws.com.cn")) or endpoint == configured:
        return client("iot-data", region)  # boto3's configuration: reused, as every client
    session = boto3.session.Session(region_name=region)
    return session.client("iot-data", endpoint_url=endpoint, config=client_config())


# Codes that mean "slow down" across IoT, DynamoDB, Step Functions, S3 and SQS.
_THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
    }
)
_NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "NoSuchKey", "NotFound"})
_SERVER_CODES = frozenset(
    {
        "InternalFailureException",
        "InternalException",
        "InternalServerError",
        "ServiceUnavailableException",
        "ServiceUnavailable",
    }
)


# Refusals that mean "wait, then the same call succeeds", where AWS gives them no code of their
# own (both are InvalidRequestException, like permanent refusals): the message is the only way
# to tell them apart, so they are matched on it here and nowhere else. (operation, code,
# message fragment, public source of the message).
WAIT_REFUSALS: tuple[tuple[str, str, str, str], ...] = (
    (
        "DeleteThingType",
        "InvalidRequestException",
        "Please wait for 5 minutes after deprecation and then retry",
        "https://docs.aws.amazon.com/iot/latest/developerguide/delete-thing-types.html; the "
        "message as hashicorp/terraform-provider-aws internal/service/iot/thing_type.go "
        "retries it",
    ),
    (
        "DeleteThing",
        "InvalidRequestException",
        "is still attached to one or more principals",
        "https://github.com/rebuy-de/aws-nuke/issues/374, "
        "https://github.com/aws/aws-connected-device-framework/issues/76 (detaching is "
        "asynchronous)",
    ),
    # The converger deletes a group's children just before the group; should AWS still count a
    # child as attached for a moment, the same delete succeeds later. AWS's text as
    # getmoto/moto#2941 quotes it (moto refuses with it since getmoto/moto#2942); the code:
    # "Static thing groups" says a group with child groups cannot be deleted. [assumption] that
    # the refusal can outlast the children's deletion: an account probe
    # (conformance: delete_thing_group_with_children) records the code and text only.
    (
        "DeleteThingGroup",
        "InvalidRequestException",
        "when there are still child groups attached to it",
        "https://github.com/getmoto/moto/issues/2941 (AWS's answer quoted)",
    ),
    # The converger detaches a policy's targets (and a certificate's policies and things) just
    # before deleting it, and a detach takes effect later: "it can take up to five minutes after
    # a policy is detached before it's ready to be deleted" (AWS IoT API Reference,
    # DeletePolicy). Any message: [assumption] AWS's text for these conflicts is not public.
    ("DeletePolicy", "DeleteConflictException", "", "AWS IoT API Reference, DeletePolicy"),
    (
        "DeleteCertificate",
        "DeleteConflictException",
        "",
        "AWS IoT API Reference, DeleteCertificate (a thing or policy still attached); detaching "
        "is asynchronous as for DeleteThing above",
    ),
    # A JITP template's CA, and a CA's device certificates, are deleted first (their ranks are
    # higher), but their delete records may reach the replicator after the template's or the
    # CA's: the refusal lasts until they do. [assumption] AWS's texts are not public.
    (
        "DeleteProvisioningTemplate",
        "DeleteConflictException",
        "",
        "AWS IoT API Reference, DeleteProvisioningTemplate (a template attached to resources)",
    ),
    (
        "DeleteCACertificate",
        "CertificateStateException",
        "",
        "AWS IoT API Reference, DeleteCACertificate; docs/onboarding-kinds.md (a CA with "
        "registered certificates: the sandbox's assumption; the converger deactivates first)",
    ),
)


def classify_client_error(operation: str, error: ClientError) -> Exception:
    """The project's error for a botocore ``ClientError``, by code and status, never by message
    (except the ``WAIT_REFUSALS``).

    Callers raise it ``from`` the original error. Throttling and 5xx are retryable (botocore has
    already retried them); a missing resource is ``NotFoundError`` (the caller decides whether
    that is fine); a failed DynamoDB condition is ``ConditionFailedError``; anything else is a
    permanent ``AwsRequestError``. Every error keeps AWS's ``code``.
    """
    details = error.response.get("Error", {})
    code = str(details.get("Code", "Unknown"))
    message = str(details.get("Message", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _THROTTLING_CODES or status == 429:
        return ThrottledError(operation, code, message)
    if code in _NOT_FOUND_CODES or status == 404:
        return NotFoundError(operation, code, message)
    if code in _SERVER_CODES or status >= 500:
        return AwsServiceError(operation, code, message)
    if code == "ConditionalCheckFailedException":
        return ConditionFailedError(operation, code, message)
    for wait_operation, wait_code, fragment, _source in WAIT_REFUSALS:
        if (operation, code) == (wait_operation, wait_code) and fragment in message:
            return AwsWaitError(operation, code, message)
    return AwsRequestError(operation, code, message)


# The IAM actions a call may be authorized by, where AWS's references name two: the API
# Reference (and botocore's iot model) says ListPrincipalThingsV2 "Requires permission to access
# the ListPrincipalThings action", and ListThingPrincipalsV2 the ListThingPrincipals action,
# while the Service Authorization Reference lists the V2 names as actions of their own
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsiot.html). The
# roles grant both, so neither reading can refuse the call (infra/, checked by tests/infra; the
# sandbox's IAM emulation requires both).
# Publish (iot-data), which the project makes only with RETAIN set (pipeline.kinds.
# retained_message), needs both iot:Publish and iot:RetainPublish ("AWS IoT Core policy actions":
# "To grant iot:RetainPublish permission, you must also grant iot:Publish permission").
IAM_ACTIONS = {
    "ListPrincipalThingsV2": ("ListPrincipalThingsV2", "ListPrincipalThings"),
    "ListThingPrincipalsV2": ("ListThingPrincipalsV2", "ListThingPrincipals"),
    "Publish": ("Publish", "RetainPublish"),
}


def iam_actions(prefix: str, operation: str) -> tuple[str, ...]:
    """The IAM actions (``prefix:Name``) that may authorize ``operation``: its own name, and
    any other name AWS documents for it (``IAM_ACTIONS``)."""
    return tuple(f"{prefix}:{name}" for name in IAM_ACTIONS.get(operation, (operation,)))


# botocore's exceptions that mean no (whole) answer came back: the network, a timeout, a response
# cut short. The same call may succeed later. Every other ``BotoCoreError`` is raised before the
# request leaves (no credentials, no region, parameters that fail the service model's
# validation): retrying it unchanged cannot help. Hierarchy: botocore/exceptions.py,
# https://github.com/boto/botocore/blob/develop/botocore/exceptions.py ("Error handling",
# https://docs.aws.amazon.com/boto3/latest/guide/error-handling.html).
_TRANSIENT_BOTOCORE_ERRORS: tuple[type[BotoCoreError], ...] = (
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
)


def classify_botocore_error(operation: str, error: BotoCoreError) -> Exception:
    """The project's error for a ``BotoCoreError`` that is not a ``ClientError``: retryable for
    a connection failure (after botocore's own retries), permanent otherwise."""
    code = type(error).__name__
    if isinstance(error, _TRANSIENT_BOTOCORE_ERRORS):
        return AwsServiceError(operation, code, str(error))
    return AwsRequestError(operation, code, str(error))


T = TypeVar("T")


class AwsCalls:
    """The one way an adapter calls AWS: ``calls("DescribeThing", client.describe_thing,
    thingName=name)``.

    Counts each call by operation (``counts``: the benchmarks' and the operator's evidence of
    cost; safe across threads, boto3 clients being thread-safe), runs ``before(operation)``
    first (a rate limiter), and raises the project's errors (``classify_client_error``,
    ``classify_botocore_error``) ``from`` botocore's. An adapter that must react to one code
    catches the typed error (``NotFoundError``, ``ConditionFailedError``) or reads its ``code``.
    """

    def __init__(self, before: Callable[[str], object] | None = None) -> None:
        self.counts: Counter[str] = Counter()
        self._before = before
        self._lock = threading.Lock()

    def __call__(self, operation: str, method: Callable[..., T], /, **params: Any) -> T:
        if self._before is not None:
            self._before(operation)
        with self._lock:
            self.counts[operation] += 1
        try:
            return method(**params)
        except ClientError as error:
            raise classify_client_error(operation, error) from error
        except BotoCoreError as error:
            raise classify_botocore_error(operation, error) from error

    def maybe(self, operation: str, method: Callable[..., T], /, **params: Any) -> T | None:
        """The call's answer; ``None`` when the resource does not exist (``NotFoundError``)."""
        try:
            return self(operation, method, **params)
        except NotFoundError:
            return None
