"""Control-plane calls in, ``Change`` values out: certificates, policies and attachments.

AWS IoT publishes no registry events for certificates, policies or their attachments. What it
does publish is every control-plane call, to CloudTrail, which forwards it to the default
EventBridge bus as an event whose ``detail-type`` is ``AWS API Call via CloudTrail``, ``source``
``aws.iot`` and ``detail`` the CloudTrail record (``eventName``, ``eventTime``, ``awsRegion``,
``eventID``, ``requestParameters``, ``responseElements``, and ``errorCode`` when the call
failed). Sources:
- Amazon EventBridge User Guide, "Events from AWS services" / "AWS service events delivered via
  AWS CloudTrail": https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event.html
  (such events need a CloudTrail trail with logging enabled; delivery is best effort);
- AWS CloudTrail User Guide, "CloudTrail record contents":
  https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html
  (``eventTime`` is when the request completed, from the serving host's NTP-synced clock, to the
  second; ``responseElements`` is present for calls that change something, and may be null);
- AWS IoT Developer Guide, "Logging AWS IoT API calls using AWS CloudTrail":
  https://docs.aws.amazon.com/iot/latest/developerguide/iot-using-cloudtrail.html (its AttachPolicy
  example names the target ``principal`` in ``requestParameters``, where the API says ``target``);
- the request and response shapes: AWS IoT API Reference, one page per action (e.g.
  https://docs.aws.amazon.com/iot/latest/apireference/API_AttachThingPrincipal.html).

This module is pure and keeps the envelope: ``parse_cloudtrail_event(payload)`` unwraps the
record into an ``ApiCall`` and hands it to the parser of the kind whose call it is
(``Kind.api_calls`` in ``pipeline.kinds``), which returns one ``Change`` or one ``Skipped`` (a
call that changes nothing we replicate) with a stable ``code`` to count by; a failed call or an
event name no kind knows is skipped here; it never raises for an event name it does not know. A
payload that is not a CloudTrail event, or a known call whose parameters are malformed, raises
``EventValidationError`` (a ``PermanentError``: the failure queue keeps it).

What CloudTrail may leave out is looked up, not guessed: a ``Change`` whose ``lookup`` is set
tells persist what to read from the origin region first (the certificate's PEM and status from
DescribeCertificate; a policy version's document from GetPolicyVersion), as for a dynamic
group's query. Private keys are never read: the only fields taken from a call are the ones its
kind names (CreateKeysAndCertificate's ``keyPair`` is ignored).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pipeline.errors import EventValidationError
from pipeline.kinds import KINDS
from pipeline.kinds.parse import ApiCall, CallParser, ParseResult, SkipCode, Skipped, skip
from pipeline.model import Origin

__all__ = ["EVENT_NAMES", "ParseResult", "SkipCode", "Skipped", "parse_cloudtrail_event"]

DETAIL_TYPE = "AWS API Call via CloudTrail"
SOURCE = "aws.iot"
EVENT_SOURCE = "iot.amazonaws.com"

_PARSERS: dict[str, CallParser] = {
    name: parser for kind in KINDS.values() for name, parser in kind.api_calls.items()
}
# The event names the EventBridge rule selects (tests/infra checks the template lists these).
EVENT_NAMES: tuple[str, ...] = tuple(_PARSERS)


def _epoch_ms(value: object) -> int:
    if not isinstance(value, str):
        raise EventValidationError("detail.eventTime", "must be an ISO 8601 UTC time")
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise EventValidationError("detail.eventTime", f"not an ISO 8601 time: {value!r}") from exc
    if when.tzinfo is None:
        raise EventValidationError("detail.eventTime", "must carry a time zone (UTC 'Z')")
    return int(when.timestamp() * 1000)


def _string(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise EventValidationError(f"{where}.{key}", "must be a non-empty string")
    return value


def _call(payload: Mapping[str, Any]) -> ApiCall:
    if payload.get("detail-type") != DETAIL_TYPE:
        raise EventValidationError("detail-type", f"must be {DETAIL_TYPE!r}")
    if payload.get("source") != SOURCE:
        raise EventValidationError("source", f"must be {SOURCE!r}")
    detail = payload.get("detail")
    if not isinstance(detail, Mapping):
        raise EventValidationError("detail", "must be the CloudTrail record (an object)")
    if detail.get("eventSource") != EVENT_SOURCE:
        raise EventValidationError("detail.eventSource", f"must be {EVENT_SOURCE!r}")
    event_name = _string(detail, "eventName", "detail")
    event_id = _string(detail, "eventID", "detail")
    region = _string(detail, "awsRegion", "detail")
    request = detail.get("requestParameters")
    response = detail.get("responseElements")
    if request is not None and not isinstance(request, Mapping):
        raise EventValidationError("detail.requestParameters", "must be an object or null")
    if response is not None and not isinstance(response, Mapping):
        raise EventValidationError("detail.responseElements", "must be an object or null")
    origin = Origin(region, _epoch_ms(detail.get("eventTime")), event_id)
    return ApiCall(event_name, event_id, origin, request or {}, response)


def parse_cloudtrail_event(payload: Mapping[str, Any]) -> ParseResult:
    """The change one ``AWS API Call via CloudTrail`` event for AWS IoT describes, or why none."""
    if not isinstance(payload, Mapping):
        raise EventValidationError(
            "payload", f"must be a JSON object, got {type(payload).__name__}"
        )
    call = _call(payload)
    error_code = payload["detail"].get("errorCode")
    if error_code:
        # A failed call changed nothing (CloudTrail record contents: errorCode).
        return skip(call, SkipCode.FAILED_CALL, f"the call failed: {error_code}")
    parser = _PARSERS.get(call.event_name)
    if parser is None:
        return skip(call, SkipCode.NOT_REPLICATED, "not a call this tool replicates")
    return parser(call)


def is_cloudtrail_event(payload: Mapping[str, Any]) -> bool:
    """Whether ``payload`` is meant for ``parse_cloudtrail_event`` (persist dispatches on it)."""
    return isinstance(payload, Mapping) and payload.get("detail-type") == DETAIL_TYPE
