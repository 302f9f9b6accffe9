"""Handler settings, read from the environment on every call.

Read per call, not at import: in the sandbox one process hosts every "function", each with its
own environment, and tests change it between calls.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipeline.errors import PermanentError


class SettingsError(PermanentError):
    """A required environment variable is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    region: str
    state_table: str
    type_delete_delay_seconds: int = 300
    failure_queue_url: str | None = None


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
    return Settings(
        region=region,
        state_table=table,
        type_delete_delay_seconds=delay_seconds,
        failure_queue_url=os.environ.get("FAILURE_QUEUE_URL") or None,
    )
