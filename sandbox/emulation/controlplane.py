"""Emulation: the EventBridge events CloudTrail delivers for AWS IoT's control-plane calls.

moto records no CloudTrail events for IoT calls and delivers nothing to EventBridge, so the
sandbox builds the event a real account's default bus would carry for a call it made: an
``AWS API Call via CloudTrail`` event from ``aws.iot`` whose ``detail`` is the CloudTrail record
(``eventTime`` to the second, ``eventName``, ``awsRegion``, ``eventID``, ``requestParameters``,
``responseElements``). Shapes: Amazon EventBridge User Guide, "Events from AWS services"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event.html); AWS CloudTrail
User Guide, "CloudTrail record contents"; AWS IoT Developer Guide, "Logging AWS IoT API calls
using AWS CloudTrail" (its AttachPolicy example).

[assumption] Which response fields CloudTrail keeps for each IoT call is not documented: the
sandbox keeps ``certificateId``/``certificateArn`` and ``policyName``/``policyVersionId`` and
never a private key (CreateKeysAndCertificate's ``keyPair``), and tests also deliver events with
``responseElements`` null, which the pipeline must survive.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

# Response fields the emulation passes on (never keys or PEMs of created certificates).
_KEPT_RESPONSE_FIELDS = ("certificateId", "certificateArn", "policyName", "policyVersionId")


def cloudtrail_event(
    event_name: str,
    request: dict[str, Any] | None,
    response: dict[str, Any] | None = None,
    *,
    region: str,
    account: str = "123456789012",
    when: float,
    event_id: str | None = None,
    error_code: str | None = None,
) -> dict[str, Any]:
    """The EventBridge event for one AWS IoT call made at epoch second ``when``."""
    stamp = datetime.fromtimestamp(int(when), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "accountId": account},
        "eventTime": stamp,
        "eventSource": "iot.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": "iot-crr-sandbox",
        "requestParameters": request,
        "responseElements": _kept(response),
        "requestID": str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error_code is not None:
        record["errorCode"] = error_code
        record["errorMessage"] = error_code
        record["responseElements"] = None
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iot",
        "account": account,
        "time": stamp,
        "region": region,
        "resources": [],
        "detail": record,
    }


def _kept(response: dict[str, Any] | None) -> dict[str, Any] | None:
    if response is None:
        return None
    kept = {key: response[key] for key in _KEPT_RESPONSE_FIELDS if key in response}
    return kept or None
