"""The one factory for boto3 clients: every client is made for a named region and passed in.

Configuration is boto3's own: credentials and profile (``AWS_PROFILE``), endpoint
(``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>``), retries (``AWS_RETRY_MODE``,
``AWS_MAX_ATTEMPTS``). When the environment sets no retry policy we use botocore's *adaptive*
mode, which retries throttling and 5xx with backoff and rate-limits the client itself.
"""

from __future__ import annotations

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


def client(service: str, region: str, **config: Any) -> Any:
    """A boto3 client for ``service`` in ``region`` (never the implicit default region)."""
    if not region:
        raise ValueError(f"a region is required for the {service} client")
    session = boto3.session.Session(region_name=region)
    return session.client(service, config=client_config(**config))  # type: ignore[call-overload]
