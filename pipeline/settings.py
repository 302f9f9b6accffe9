"""Handler settings, read from the environment on every call.

Read per call, not at import: in the sandbox one process hosts every "function", each with its
own environment, and tests change it between calls.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.errors import EventValidationError, PermanentError
from pipeline.policyrewrite import ACCOUNT_MAP_VARIABLE, parse_account_map


class SettingsError(PermanentError):
    """A required environment variable is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    region: str
    state_table: str
    type_delete_delay_seconds: int = 300
    failure_queue_url: str | None = None
    # Source account -> destination account, for the ARNs of replicated policy documents.
    policy_account_map: Mapping[str, str] = field(default_factory=dict)


def load_settings() -> Settings:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise SettingsError("AWS_REGION is not set")
    table = os.environ.get("STATE_TABLE")
    if not table:
        raise SettingsError("STATE_TABLE is not set")
    delay = os.environ.get("TYPE_DELETE_DELAY_SECONDS", "300")
    try:
        delay_seconds = int(delay)
    except ValueError as error:
        raise SettingsError(f"TYPE_DELETE_DELAY_SECONDS={delay!r} is not a whole number") from error
    account_map = os.environ.get(ACCOUNT_MAP_VARIABLE, "")
    try:
        policy_account_map = parse_account_map(account_map)
    except EventValidationError as error:
        raise SettingsError(f"{ACCOUNT_MAP_VARIABLE}={account_map!r}: {error.reason}") from error
    return Settings(
        region=region,
        state_table=table,
        type_delete_delay_seconds=delay_seconds,
        failure_queue_url=os.environ.get("FAILURE_QUEUE_URL") or None,
        policy_account_map=policy_account_map,
    )
