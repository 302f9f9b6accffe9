"""Control-plane calls in, ``ControlChange`` values out: certificates, policies and attachments.

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

This module is pure: ``parse_cloudtrail_event(payload)`` returns one ``ControlChange`` or one
``Skipped`` (a failed call, a call that changes nothing we replicate, an event name we do not
know) with a stable ``code`` to count by; it never raises for an event name it does not know. A
payload that is not a CloudTrail event, or a known call whose parameters are malformed, raises
``EventValidationError`` (a ``PermanentError``: the failure queue keeps it).

What CloudTrail may leave out is looked up, not guessed: a ``ControlChange`` whose ``lookup`` is
set tells persist what to read from the origin region first (the certificate's PEM and status
from DescribeCertificate; a policy version's document from GetPolicyVersion), the way
``Change.lookup_query`` does for dynamic groups. Private keys are never read: the only fields
taken from a call are the ones named below (CreateKeysAndCertificate's ``keyPair`` is ignored).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pipeline import rules
from pipeline.errors import EventValidationError
from pipeline.model import KEY_SEPARATOR, Origin
from pipeline.policyrewrite import canonical_document

DETAIL_TYPE = "AWS API Call via CloudTrail"
SOURCE = "aws.iot"
EVENT_SOURCE = "iot.amazonaws.com"


class ControlKind(StrEnum):
    """The control-plane entities this module describes (keys: see ``ControlChange.name``)."""

    CERTIFICATE = "certificate"
    POLICY = "policy"
    THING_PRINCIPAL = "thing_principal"
    POLICY_TARGET = "policy_target"


class CertificateStatus(StrEnum):
    """The statuses we replicate (AWS IoT API Reference, UpdateCertificate). PENDING_TRANSFER
    and PENDING_ACTIVATION are internal to AWS IoT, REGISTER_INACTIVE is deprecated."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    REVOKED = "REVOKED"


class LookupKind(StrEnum):
    CERTIFICATE = "certificate"  # DescribeCertificate: certificatePem, status
    POLICY_VERSION = "policy_version"  # GetPolicyVersion(policyName, key): policyDocument


@dataclass(frozen=True)
class Lookup:
    """What persist must read from the origin region before the change can be stored."""

    kind: LookupKind
    key: str | None = None


@dataclass(frozen=True)
class ControlChange:
    """One desired-state change to a certificate, a policy or an attachment.

    Names: a certificate is its id (64 lowercase hex digits: the SHA-256 of its DER encoding,
    so the same in every region and account); a policy is its name; a thing-principal attachment
    is ``<thing>#<certificate id>``; a policy attachment is ``<policy>#cert/<certificate id>`` or
    ``<policy>#thinggroup/<group>``.

    Fields: a certificate's ``status`` (``CertificateStatus``); a policy's ``document`` (the
    default version's JSON text, as the origin region holds it; the destination gets it with
    its ARNs rewritten, ``pipeline.policyrewrite``); a thing-principal attachment's
    ``exclusive`` (``thingPrincipalType`` EXCLUSIVE_THING). Policy version ids are per region,
    so they are never state.
    """

    kind: ControlKind
    name: str
    origin: Origin
    event_name: str
    fields: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
    lookup: Lookup | None = None


class SkipCode(StrEnum):
    FAILED_CALL = "failed_call"
    NOT_REPLICATED = "not_replicated"
    NO_EFFECT = "no_effect"
    UNSUPPORTED_PRINCIPAL = "unsupported_principal"
    UNKNOWN_STATUS = "unknown_status"
    NO_CERTIFICATE_ID = "no_certificate_id"


@dataclass(frozen=True)
class Skipped:
    """A well-formed event that changes nothing we replicate; ``code`` is stable, for counting."""

    event_name: str
    event_id: str
    code: SkipCode
    reason: str


ParseResult = ControlChange | Skipped


# --- names and values ----------------------------------------------------------------------------

# AWS IoT API Reference, CreatePolicy: policyName 1-128 characters of [\w+=,.@-].
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
# CertificateDescription.certificateId: fixed length 64, (0x)?[a-fA-F0-9]+.
_CERTIFICATE_ID = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_CERT_ARN = re.compile(
    r"arn:aws[a-z-]*:iot:[a-z0-9-]+:[0-9]{12}:cert/(?P<id>[0-9a-fA-F]{64})", re.ASCII
)
_GROUP_ARN = re.compile(
    r"arn:aws[a-z-]*:iot:[a-z0-9-]+:[0-9]{12}:thinggroup/(?P<name>[^/]+)", re.ASCII
)
_PEM = re.compile(
    r"-----BEGIN CERTIFICATE-----(?P<body>[A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----", re.ASCII
)
_VERSION_ID = re.compile(r"[0-9]+", re.ASCII)


def certificate_id_from_pem(pem: str) -> str:
    """The certificate id AWS IoT gives ``pem``: the SHA-256 of its DER encoding, lowercase hex.

    Not stated in the API Reference; reported by users and confirmed by AWS Support
    (https://github.com/getmoto/moto/issues/3321, "IoT: Set Certificate ID to SHA256 hexdigest of
    DER", https://github.com/getmoto/moto/pull/6858). Only a real account can confirm it: see
    the README's known limits.
    """
    match = _PEM.search(pem)
    if match is None:
        raise EventValidationError("certificatePem", "not a PEM certificate")
    try:
        der = base64.b64decode("".join(match["body"].split()), validate=True)
    except binascii.Error as exc:
        raise EventValidationError("certificatePem", "the PEM body is not base64") from exc
    return hashlib.sha256(der).hexdigest()


def policy_name(field_name: str, value: object) -> str:
    if not isinstance(value, str) or _POLICY_NAME.fullmatch(value) is None:
        raise EventValidationError(field_name, "must be 1-128 characters of [\\w+=,.@-]")
    return value


def certificate_id(field_name: str, value: object) -> str:
    if not isinstance(value, str):
        raise EventValidationError(field_name, "must be a certificate id")
    text = value[2:] if value.startswith("0x") else value
    if _CERTIFICATE_ID.fullmatch(text) is None:
        raise EventValidationError(field_name, "must be 64 hexadecimal digits")
    return text.lower()


def thing_principal_name(thing: str, certificate: str) -> str:
    return f"{thing}{KEY_SEPARATOR}{certificate}"


def policy_target_name(policy: str, target: str) -> str:
    """``target`` is ``cert/<id>`` or ``thinggroup/<name>``."""
    return f"{policy}{KEY_SEPARATOR}{target}"


def split_pair(name: str) -> tuple[str, str]:
    first, _, second = name.partition(KEY_SEPARATOR)
    return first, second


# --- the envelope --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    event_name: str
    event_id: str
    origin: Origin
    request: Mapping[str, Any]
    response: Mapping[str, Any] | None


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


def _call(payload: Mapping[str, Any]) -> _Call:
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
    return _Call(event_name, event_id, origin, request or {}, response)


def parse_cloudtrail_event(payload: Mapping[str, Any]) -> ParseResult:
    """The change one ``AWS API Call via CloudTrail`` event for AWS IoT describes, or why none."""
    if not isinstance(payload, Mapping):
        raise EventValidationError(
            "payload", f"must be a JSON object, got {type(payload).__name__}"
        )
    call = _call(payload)
    detail = payload["detail"]
    error_code = detail.get("errorCode")
    if error_code:
        # A failed call changed nothing (CloudTrail record contents: errorCode).
        return _skip(call, SkipCode.FAILED_CALL, f"the call failed: {error_code}")
    parser = _PARSERS.get(call.event_name)
    if parser is None:
        return _skip(call, SkipCode.NOT_REPLICATED, "not a call this tool replicates")
    return parser(call)


def is_cloudtrail_event(payload: Mapping[str, Any]) -> bool:
    """Whether ``payload`` is meant for ``parse_cloudtrail_event`` (persist dispatches on it)."""
    return isinstance(payload, Mapping) and payload.get("detail-type") == DETAIL_TYPE


def _skip(call: _Call, code: SkipCode, reason: str) -> Skipped:
    return Skipped(call.event_name, call.event_id, code, reason)


# --- certificates --------------------------------------------------------------------------------


def _created_certificate(call: _Call) -> ParseResult:
    """CreateKeysAndCertificate, CreateCertificateFromCsr, RegisterCertificate(WithoutCA).

    The id comes from ``responseElements.certificateId``; for a registration without it, from the
    PEM in ``requestParameters``. The status and the PEM are always looked up: the request says
    the status only through optional, call-specific parameters (``setAsActive``, ``status``),
    and the PEM of a created certificate is only in the response.
    """
    response = call.response or {}
    cert_id: str | None = None
    if "certificateId" in response:
        cert_id = certificate_id("responseElements.certificateId", response["certificateId"])
    elif isinstance(call.request.get("certificatePem"), str):
        cert_id = certificate_id_from_pem(call.request["certificatePem"])
    if cert_id is None:
        return _skip(
            call,
            SkipCode.NO_CERTIFICATE_ID,
            "the event names no certificate id (responseElements is null); "
            "the next reconciliation registers the certificate",
        )
    return ControlChange(
        ControlKind.CERTIFICATE,
        cert_id,
        call.origin,
        call.event_name,
        lookup=Lookup(LookupKind.CERTIFICATE),
    )


def _update_certificate(call: _Call) -> ParseResult:
    cert_id = certificate_id("requestParameters.certificateId", call.request.get("certificateId"))
    raw = call.request.get("newStatus")
    if not isinstance(raw, str):
        raise EventValidationError("requestParameters.newStatus", "must be a certificate status")
    try:
        status = CertificateStatus(raw)
    except ValueError:
        return _skip(
            call,
            SkipCode.UNKNOWN_STATUS,
            f"status {raw!r} is not replicated (only ACTIVE, INACTIVE and REVOKED)",
        )
    # The status comes from the event; the PEM only if the table has none yet (persist decides).
    return ControlChange(
        ControlKind.CERTIFICATE,
        cert_id,
        call.origin,
        call.event_name,
        fields={"status": status.value},
        lookup=Lookup(LookupKind.CERTIFICATE),
    )


def _delete_certificate(call: _Call) -> ParseResult:
    cert_id = certificate_id("requestParameters.certificateId", call.request.get("certificateId"))
    return ControlChange(
        ControlKind.CERTIFICATE, cert_id, call.origin, call.event_name, deleted=True
    )


# --- policies ------------------------------------------------------------------------------------


def _document(field_name: str, value: object) -> str:
    """A policy document as canonical JSON text (``policyrewrite.canonical_document``)."""
    if isinstance(value, Mapping):  # a record that already decoded it
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if not isinstance(value, str):
        raise EventValidationError(field_name, "must be a policy document (JSON text)")
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError as exc:
        raise EventValidationError(field_name, f"not JSON: {exc.msg}") from exc
    if not isinstance(decoded, dict):
        raise EventValidationError(field_name, "must be a JSON object")
    return canonical_document(value)


def _create_policy(call: _Call) -> ParseResult:
    name = policy_name("requestParameters.policyName", call.request.get("policyName"))
    document = _document("requestParameters.policyDocument", call.request.get("policyDocument"))
    return ControlChange(
        ControlKind.POLICY, name, call.origin, call.event_name, fields={"document": document}
    )


def _create_policy_version(call: _Call) -> ParseResult:
    name = policy_name("requestParameters.policyName", call.request.get("policyName"))
    set_as_default = call.request.get("setAsDefault", False)
    if set_as_default is not True and set_as_default != "true":
        return _skip(
            call, SkipCode.NO_EFFECT, "a version that is not the default changes nothing in effect"
        )
    document = _document("requestParameters.policyDocument", call.request.get("policyDocument"))
    return ControlChange(
        ControlKind.POLICY, name, call.origin, call.event_name, fields={"document": document}
    )


def _set_default_policy_version(call: _Call) -> ParseResult:
    name = policy_name("requestParameters.policyName", call.request.get("policyName"))
    version = call.request.get("policyVersionId")
    if not isinstance(version, str) or _VERSION_ID.fullmatch(version) is None:
        raise EventValidationError("requestParameters.policyVersionId", "must be digits")
    # The document of a version never changes, so reading it later is exact.
    return ControlChange(
        ControlKind.POLICY,
        name,
        call.origin,
        call.event_name,
        lookup=Lookup(LookupKind.POLICY_VERSION, version),
    )


def _delete_policy_version(call: _Call) -> ParseResult:
    policy_name("requestParameters.policyName", call.request.get("policyName"))
    # The default version cannot be deleted this way (AWS IoT API Reference,
    # DeletePolicyVersion), so the document in effect is unchanged.
    return _skip(call, SkipCode.NO_EFFECT, "deleting a non-default version changes nothing")


def _delete_policy(call: _Call) -> ParseResult:
    name = policy_name("requestParameters.policyName", call.request.get("policyName"))
    return ControlChange(ControlKind.POLICY, name, call.origin, call.event_name, deleted=True)


# --- attachments ---------------------------------------------------------------------------------


def _policy_attachment(call: _Call, *, deleted: bool) -> ParseResult:
    """AttachPolicy/DetachPolicy (``target``) and the deprecated Attach/DetachPrincipalPolicy
    (``principal``; also what the IoT guide's CloudTrail example shows for AttachPolicy)."""
    name = policy_name("requestParameters.policyName", call.request.get("policyName"))
    key = "target" if "target" in call.request else "principal"
    target = call.request.get(key)
    if not isinstance(target, str) or not target:
        raise EventValidationError(f"requestParameters.{key}", "must be a non-empty string")
    cert = _CERT_ARN.fullmatch(target)
    group = _GROUP_ARN.fullmatch(target)
    if cert is not None:
        resolved = f"cert/{cert['id'].lower()}"
    elif group is not None:
        resolved = f"thinggroup/{rules.validate_name(f'requestParameters.{key}', group['name'])}"
    else:
        return _skip(
            call,
            SkipCode.UNSUPPORTED_PRINCIPAL,
            "only certificates and thing groups are replicated as policy targets",
        )
    return ControlChange(
        ControlKind.POLICY_TARGET,
        policy_target_name(name, resolved),
        call.origin,
        call.event_name,
        deleted=deleted,
    )


def _thing_principal(call: _Call, *, deleted: bool) -> ParseResult:
    thing = rules.validate_name("requestParameters.thingName", call.request.get("thingName"))
    principal = call.request.get("principal")
    if not isinstance(principal, str) or not principal:
        raise EventValidationError("requestParameters.principal", "must be a non-empty string")
    cert = _CERT_ARN.fullmatch(principal)
    if cert is None:
        return _skip(
            call,
            SkipCode.UNSUPPORTED_PRINCIPAL,
            "only certificate principals are replicated (not Cognito or federated identities)",
        )
    fields: dict[str, Any] = {}
    if not deleted:
        kind = call.request.get("thingPrincipalType", "NON_EXCLUSIVE_THING")
        if kind not in ("EXCLUSIVE_THING", "NON_EXCLUSIVE_THING"):
            raise EventValidationError(
                "requestParameters.thingPrincipalType",
                "must be EXCLUSIVE_THING or NON_EXCLUSIVE_THING",
            )
        # Defaults to NON_EXCLUSIVE_THING (AWS IoT API Reference, ThingPrincipalObject).
        fields["exclusive"] = kind == "EXCLUSIVE_THING"
    return ControlChange(
        ControlKind.THING_PRINCIPAL,
        thing_principal_name(thing, cert["id"].lower()),
        call.origin,
        call.event_name,
        fields=fields,
        deleted=deleted,
    )


_PARSERS: dict[str, Callable[[_Call], ParseResult]] = {
    "CreateKeysAndCertificate": _created_certificate,
    "CreateCertificateFromCsr": _created_certificate,
    "RegisterCertificate": _created_certificate,
    "RegisterCertificateWithoutCA": _created_certificate,
    "UpdateCertificate": _update_certificate,
    "DeleteCertificate": _delete_certificate,
    "CreatePolicy": _create_policy,
    "CreatePolicyVersion": _create_policy_version,
    "SetDefaultPolicyVersion": _set_default_policy_version,
    "DeletePolicyVersion": _delete_policy_version,
    "DeletePolicy": _delete_policy,
    "AttachPolicy": lambda call: _policy_attachment(call, deleted=False),
    "DetachPolicy": lambda call: _policy_attachment(call, deleted=True),
    "AttachPrincipalPolicy": lambda call: _policy_attachment(call, deleted=False),
    "DetachPrincipalPolicy": lambda call: _policy_attachment(call, deleted=True),
    "AttachThingPrincipal": lambda call: _thing_principal(call, deleted=False),
    "DetachThingPrincipal": lambda call: _thing_principal(call, deleted=True),
}

# The event names the EventBridge rule selects (tests/infra checks the template lists these).
EVENT_NAMES: tuple[str, ...] = tuple(_PARSERS)
