"""What the kinds' event parsers share: the edge where untrusted JSON becomes ``Change`` values.

Two sources publish changes: the registry's events (``$aws/events/...``: AWS IoT Developer Guide,
"Registry events", https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html),
one pydantic model per event type, based on ``RegistryEvent``; and CloudTrail's records of
control-plane calls (``ApiCall``, the envelope ``pipeline.cloudtrail`` unwraps). Each kind module
parses the events and calls of its own kind; ``pipeline.events`` and ``pipeline.cloudtrail``
keep the envelopes and dispatch on ``eventType`` / ``eventName``.

Contract of every parser: one ``Change`` (or, for a call, a ``Skipped`` with a stable code),
or a ``PermanentError``: ``EventValidationError(field, reason)`` for a malformed shape,
``RegistryValidationError`` for a value AWS IoT would refuse (``pipeline.rules``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from pipeline import rules
from pipeline.errors import EventValidationError
from pipeline.model import Change, Origin

# Below this an epoch timestamp is in seconds: 1e11 s is the year 5138, 1e11 ms is 1973.
SECONDS_BELOW = 100_000_000_000
# Above this no clock is plausible and the value would not survive a JSON round trip exactly.
_TIMESTAMP_MAX_MS = 2**53

THING_ARN = re.compile(r"arn:aws[a-z-]*:iot:[a-z0-9-]*:[^:/]*:thing/(?P<name>[^/]+)", re.ASCII)
GROUP_ARN = re.compile(r"arn:aws[a-z-]*:iot:[a-z0-9-]*:[^:/]*:thinggroup/(?P<name>[^/]+)", re.ASCII)


# --- registry events -----------------------------------------------------------------------------


def _epoch_ms(value: Any) -> int:
    """Epoch milliseconds from an event ``timestamp``; 10-digit (second) values are scaled up."""
    # bool is an int subclass: ``true`` must not become 1 ms after the epoch.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number of epoch milliseconds, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if value < 0:
        raise ValueError("must not be negative")
    millis = round(value * 1000) if value < SECONDS_BELOW else round(value)
    if millis > _TIMESTAMP_MAX_MS:
        raise ValueError(f"must be at most {_TIMESTAMP_MAX_MS} ms")
    return millis


EpochMillis = Annotated[int, BeforeValidator(_epoch_ms)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
Crud = Literal["CREATED", "UPDATED", "DELETED"]
AddRemove = Literal["ADDED", "REMOVED"]


class RegistryEvent(BaseModel):
    """The fields every registry event has. Strict: no "1" -> 1 or 1 -> True coercion; extra
    keys (the ``topic`` an IoT rule may add, ``accountId``...) are ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    event_id: NonEmptyStr = Field(alias="eventId")
    timestamp: EpochMillis


_M = TypeVar("_M", bound=RegistryEvent)


def validate(model: type[_M], payload: Mapping[str, Any]) -> _M:
    """``payload`` as ``model``; the first problem named as an ``EventValidationError``."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        field = ".".join(str(part) for part in first["loc"]) or "payload"
        reason = first["msg"]
        if len(errors) > 1:
            reason += f" (and {len(errors) - 1} more)"
        raise EventValidationError(field, reason) from exc


def versioned(operation: str, version: int | None) -> int | None:
    """A THING_EVENT's or THING_GROUP_EVENT's ``versionNumber``: required in CREATED and UPDATED,
    optional in DELETED. AWS's "Registry events" page shows one sample per event type for
    "CREATED|UPDATED|DELETED" together, and no public record shows an actual DELETED payload:
    [assumption] a DELETED event may lack the field (issue 27). Without it the delete is ordered
    by its timestamp, as unversioned events are (``pipeline.state``)."""
    if version is None and operation != "DELETED":
        raise EventValidationError("versionNumber", f"required in a {operation} event")
    return version


def optional_name(field: str, value: object) -> str | None:
    return None if value is None else rules.validate_name(field, value)


def description(field: str, value: object) -> str | None:
    # The registry has no distinction between an empty and an absent description; one
    # canonical form keeps echo suppression and drift diffs from seeing a change.
    return rules.validate_description(field, value) or None


def name_from_arn(field: str, arn: str, pattern: re.Pattern[str], resource: str) -> str:
    match = pattern.fullmatch(arn)
    if match is None:
        raise EventValidationError(
            field,
            f"not an AWS IoT {resource} ARN (arn:aws:iot:<region>:<account>:{resource}/<name>)",
        )
    return rules.validate_name(field, match["name"])


def boolean(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise EventValidationError(field, "must be a boolean")
    return value


def non_empty_text(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise EventValidationError(field, "must be a non-empty string")
    return value


# --- control-plane calls (CloudTrail) ------------------------------------------------------------


@dataclass(frozen=True)
class ApiCall:
    """One control-plane call as CloudTrail recorded it (``pipeline.cloudtrail`` unwraps it)."""

    event_name: str
    event_id: str
    origin: Origin
    request: Mapping[str, Any]
    response: Mapping[str, Any] | None


class SkipCode(StrEnum):
    FAILED_CALL = "failed_call"
    NOT_REPLICATED = "not_replicated"
    NO_EFFECT = "no_effect"
    UNSUPPORTED_PRINCIPAL = "unsupported_principal"
    UNKNOWN_STATUS = "unknown_status"
    NO_CERTIFICATE_ID = "no_certificate_id"
    NO_PRINCIPAL = "no_principal"


@dataclass(frozen=True)
class Skipped:
    """A well-formed event that changes nothing we replicate; ``code`` is stable, for counting."""

    event_name: str
    event_id: str
    code: SkipCode
    reason: str


ParseResult = Change | Skipped
CallParser = Callable[[ApiCall], ParseResult]


def skip(call: ApiCall, code: SkipCode, reason: str) -> Skipped:
    return Skipped(call.event_name, call.event_id, code, reason)


def request_text(call: ApiCall, key: str) -> str:
    """A non-empty string of the call's ``requestParameters``."""
    value = call.request.get(key)
    if not isinstance(value, str) or not value:
        raise EventValidationError(f"requestParameters.{key}", "must be a non-empty string")
    return value
