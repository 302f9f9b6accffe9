"""The one factory for boto3 clients: every client is made for a named region and passed in.

Configuration is boto3's own: credentials and profile (``AWS_PROFILE``), endpoint
(``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``), retries (``AWS_RETRY_MODE``,
``AWS_MAX_ATTEMPTS``). When the environment sets no retry policy we use botocore's *adaptive*
mode, which retries throttling and 5xx with backoff and rate-limits the client itself.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_MAX_ATTEMPTS = 8


def client_config(**overrides: Any) -> Config:
    settings: dict[str, Any] = {"user_agent_extra": "iot-registry-crr"}
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
    service_endpoint = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
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
