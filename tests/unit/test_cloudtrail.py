"""Unit tests for pipeline.cloudtrail: EventBridge "AWS API Call via CloudTrail" events for AWS
IoT -> Change (or Skipped); the call parsers live with their kinds (pipeline.kinds).

The envelope and the record follow the documented shapes (EventBridge User Guide, "Events from
AWS services"; CloudTrail User Guide, "CloudTrail record contents"); the AttachPolicy fixture is
the AWS IoT Developer Guide's CloudTrail example ("Logging AWS IoT API calls using AWS
CloudTrail") in an EventBridge envelope. Request and response parameters are the AWS IoT API
Reference's, one call each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pipeline.cloudtrail import (
    EVENT_NAMES,
    SkipCode,
    Skipped,
    is_cloudtrail_event,
    parse_cloudtrail_event,
)
from pipeline.errors import EventValidationError, RegistryValidationError
from pipeline.kinds.certificate import certificate_id_from_pem
from pipeline.model import Change, EntityKind, Lookup, Origin

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cloudtrail"
REGION = "us-east-1"
ACCOUNT = "123456789012"
CERT_ID = "528ce36e8047f6a75ee51ab7beddb4eb268ad41d2ea881a10b67e8e76924d894"
CERT_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{CERT_ID}"
EVENT_TIME = "2026-12-01T10:00:05Z"
EVENT_MS = 1796119205000


def event(
    name: str,
    request: dict[str, Any] | None,
    response: dict[str, Any] | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """An EventBridge event carrying the CloudTrail record of one AWS IoT call."""
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "accountId": ACCOUNT},
        "eventTime": EVENT_TIME,
        "eventSource": "iot.amazonaws.com",
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": request,
        "responseElements": response,
        "requestID": "0f0e0d0c-0000-4000-8000-000000000001",
        "eventID": "1a2b3c4d-0000-4000-8000-000000000002",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    record.update(detail)
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iot",
        "account": ACCOUNT,
        "time": EVENT_TIME,
        "region": REGION,
        "resources": [],
        "detail": record,
    }


def origin() -> Origin:
    return Origin(REGION, EVENT_MS, "1a2b3c4d-0000-4000-8000-000000000002")


def change(result: Change | Skipped) -> Change:
    assert isinstance(result, Change), result
    return result


def skipped(result: Change | Skipped) -> Skipped:
    assert isinstance(result, Skipped), result
    return result


def self_signed_pem() -> tuple[str, str]:
    """A throwaway certificate (the key is discarded here) and the SHA-256 of its DER."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device-1")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return pem, hashlib.sha256(der).hexdigest()


# --- the documented example ----------------------------------------------------------------------


def test_documented_attach_policy_example() -> None:
    # GIVEN the IoT guide's AttachPolicy record (target named "principal", no response)
    payload = json.loads((FIXTURES / "attach_policy.json").read_text())
    # WHEN parsed
    result = change(parse_cloudtrail_event(payload))
    # THEN it is the attachment of that policy to that certificate, stamped with eventTime
    assert result == Change(
        EntityKind.POLICY_TARGET,
        f"ExamplePolicyForIoT#cert/{CERT_ID}",
        Origin(REGION, 1460159496000, "8bff4fed-c229-4d2d-8264-4ab28a487505"),
    )


# --- certificates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "request_"),
    [
        ("CreateKeysAndCertificate", {"setAsActive": True}),
        ("CreateCertificateFromCsr", {"setAsActive": False}),
        ("RegisterCertificate", {"certificatePem": "-", "setAsActive": True}),
        ("RegisterCertificateWithoutCA", {"certificatePem": "-", "status": "ACTIVE"}),
    ],
)
def test_created_certificate_is_looked_up_by_the_id_in_the_response(
    name: str, request_: dict[str, Any]
) -> None:
    response = {"certificateId": CERT_ID, "certificateArn": CERT_ARN}
    result = change(parse_cloudtrail_event(event(name, request_, response)))
    assert result == Change(
        EntityKind.CERTIFICATE,
        CERT_ID,
        origin(),
        lookup=Lookup(),
    )


def test_private_key_in_a_response_is_never_read() -> None:
    response = {
        "certificateId": CERT_ID,
        "certificateArn": CERT_ARN,
        "certificatePem": "-----BEGIN CERTIFICATE-----...",
        "keyPair": {"PublicKey": "public", "PrivateKey": "SECRET-KEY-MATERIAL"},
    }
    result = change(parse_cloudtrail_event(event("CreateKeysAndCertificate", {}, response)))
    assert "SECRET-KEY-MATERIAL" not in repr(result)
    assert result.fields == {}


def test_registration_without_response_takes_the_id_from_the_pem() -> None:
    pem, expected = self_signed_pem()
    payload = event("RegisterCertificateWithoutCA", {"certificatePem": pem}, None)
    result = change(parse_cloudtrail_event(payload))
    assert (result.kind, result.name) == (EntityKind.CERTIFICATE, expected)


def test_certificate_id_is_the_sha256_of_the_der() -> None:
    pem, expected = self_signed_pem()
    assert certificate_id_from_pem(pem) == expected
    assert certificate_id_from_pem(pem.replace("\n", "\r\n")) == expected


def test_created_certificate_without_any_id_is_skipped_not_guessed() -> None:
    result = skipped(parse_cloudtrail_event(event("CreateKeysAndCertificate", {}, None)))
    assert result.code is SkipCode.NO_CERTIFICATE_ID


@pytest.mark.parametrize("status", ["ACTIVE", "INACTIVE", "REVOKED"])
def test_update_certificate_carries_the_new_status(status: str) -> None:
    request = {"certificateId": CERT_ID.upper(), "newStatus": status}
    result = change(parse_cloudtrail_event(event("UpdateCertificate", request)))
    assert result == Change(
        EntityKind.CERTIFICATE,
        CERT_ID,
        origin(),
        fields={"status": status},
        lookup=Lookup(),
    )


@pytest.mark.parametrize("status", ["PENDING_TRANSFER", "PENDING_ACTIVATION", "REGISTER_INACTIVE"])
def test_internal_statuses_are_skipped(status: str) -> None:
    request = {"certificateId": CERT_ID, "newStatus": status}
    result = skipped(parse_cloudtrail_event(event("UpdateCertificate", request)))
    assert result.code is SkipCode.UNKNOWN_STATUS


def test_delete_certificate() -> None:
    request = {"certificateId": CERT_ID, "forceDelete": False}
    result = change(parse_cloudtrail_event(event("DeleteCertificate", request)))
    assert (result.kind, result.name, result.deleted) == (EntityKind.CERTIFICATE, CERT_ID, True)


def test_bad_certificate_id_is_refused() -> None:
    request = {"certificateId": "not-an-id", "newStatus": "ACTIVE"}
    with pytest.raises(EventValidationError, match=r"requestParameters\.certificateId"):
        parse_cloudtrail_event(event("UpdateCertificate", request))


# --- policies ------------------------------------------------------------------------------------

RAW_DOCUMENT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:client/${{iot:ClientId}}",
            }
        ],
    },
    indent=2,
)
# The state holds the canonical form: key order and whitespace are never drift.
DOCUMENT = json.dumps(json.loads(RAW_DOCUMENT), sort_keys=True, separators=(",", ":"))


def test_create_policy_carries_the_document() -> None:
    request = {"policyName": "device-policy", "policyDocument": RAW_DOCUMENT}
    response = {"policyName": "device-policy", "policyVersionId": "1"}
    result = change(parse_cloudtrail_event(event("CreatePolicy", request, response)))
    assert result == Change(
        EntityKind.POLICY, "device-policy", origin(), fields={"document": DOCUMENT}
    )


def test_default_policy_version_carries_the_document() -> None:
    request = {"policyName": "device-policy", "policyDocument": RAW_DOCUMENT, "setAsDefault": True}
    result = change(parse_cloudtrail_event(event("CreatePolicyVersion", request)))
    assert result.fields == {"document": DOCUMENT}


def test_non_default_policy_version_changes_nothing() -> None:
    request = {"policyName": "device-policy", "policyDocument": RAW_DOCUMENT, "setAsDefault": False}
    assert skipped(parse_cloudtrail_event(event("CreatePolicyVersion", request))).code is (
        SkipCode.NO_EFFECT
    )
    request.pop("setAsDefault")
    assert skipped(parse_cloudtrail_event(event("CreatePolicyVersion", request))).code is (
        SkipCode.NO_EFFECT
    )


def test_set_default_version_looks_the_version_up() -> None:
    request = {"policyName": "device-policy", "policyVersionId": "3"}
    result = change(parse_cloudtrail_event(event("SetDefaultPolicyVersion", request)))
    assert result.lookup == Lookup("3")
    assert result.fields == {}


def test_delete_policy_version_changes_nothing_and_delete_policy_deletes() -> None:
    request = {"policyName": "device-policy", "policyVersionId": "2"}
    assert skipped(parse_cloudtrail_event(event("DeletePolicyVersion", request))).code is (
        SkipCode.NO_EFFECT
    )
    result = change(parse_cloudtrail_event(event("DeletePolicy", {"policyName": "device-policy"})))
    assert (result.kind, result.name, result.deleted) == (EntityKind.POLICY, "device-policy", True)


@pytest.mark.parametrize("name", ["CreatePolicy", "CreatePolicyVersion"])
def test_policy_document_absent_from_the_record_is_taken_from_the_response_or_looked_up(
    name: str,
) -> None:
    # Issue 27, item 9. Old code: EventValidationError (requestParameters.policyDocument).
    request: dict[str, Any] = {"policyName": "device-policy", "setAsDefault": True}
    in_response = {"policyDocument": RAW_DOCUMENT, "policyVersionId": "4"}
    assert change(parse_cloudtrail_event(event(name, request, in_response))).fields == {
        "document": DOCUMENT
    }
    looked_up = change(parse_cloudtrail_event(event(name, request, {"policyVersionId": "4"})))
    assert (looked_up.fields, looked_up.lookup) == ({}, Lookup("4"))
    in_effect = change(parse_cloudtrail_event(event(name, request)))
    assert in_effect.lookup == Lookup(None)  # the default version, read in the origin
    with pytest.raises(EventValidationError, match="policyVersionId"):
        parse_cloudtrail_event(event(name, request, {"policyVersionId": "v4"}))


@pytest.mark.parametrize("document", ["not json", "[1, 2]", 7])
def test_bad_policy_document_is_refused(document: Any) -> None:
    request = {"policyName": "p", "policyDocument": document}
    with pytest.raises(EventValidationError, match="policyDocument"):
        parse_cloudtrail_event(event("CreatePolicy", request))


def test_bad_policy_name_is_refused() -> None:
    with pytest.raises(EventValidationError, match="policyName"):
        parse_cloudtrail_event(event("DeletePolicy", {"policyName": "bad name/with slash"}))


# --- attachments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "deleted"),
    [("AttachPolicy", False), ("DetachPolicy", True)],
)
def test_policy_attached_to_a_thing_group(name: str, deleted: bool) -> None:
    target = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/floor-1"
    result = change(parse_cloudtrail_event(event(name, {"policyName": "p", "target": target})))
    assert (result.kind, result.name, result.deleted) == (
        EntityKind.POLICY_TARGET,
        "p#thinggroup/floor-1",
        deleted,
    )


def test_deprecated_principal_policy_calls_are_attachments_too() -> None:
    request = {"policyName": "p", "principal": CERT_ARN}
    attach = change(parse_cloudtrail_event(event("AttachPrincipalPolicy", request)))
    detach = change(parse_cloudtrail_event(event("DetachPrincipalPolicy", request)))
    assert attach.name == detach.name == f"p#cert/{CERT_ID}"
    assert (attach.deleted, detach.deleted) == (False, True)


def test_policy_on_a_cognito_identity_is_skipped() -> None:
    request = {"policyName": "p", "target": "us-east-1:1f8f0b9c-aaaa-bbbb-cccc-0123456789ab"}
    result = skipped(parse_cloudtrail_event(event("AttachPolicy", request)))
    assert result.code is SkipCode.UNSUPPORTED_PRINCIPAL


@pytest.mark.parametrize(
    ("principal_type", "exclusive"),
    [("EXCLUSIVE_THING", True), ("NON_EXCLUSIVE_THING", False), (None, False)],
)
def test_attach_thing_principal(principal_type: str | None, exclusive: bool) -> None:
    request: dict[str, Any] = {"thingName": "device-1", "principal": CERT_ARN}
    if principal_type is not None:
        request["thingPrincipalType"] = principal_type
    result = change(parse_cloudtrail_event(event("AttachThingPrincipal", request)))
    assert result == Change(
        EntityKind.THING_PRINCIPAL,
        f"device-1#{CERT_ID}",
        origin(),
        fields={"exclusive": exclusive},
    )


def test_detach_thing_principal() -> None:
    request = {"thingName": "device-1", "principal": CERT_ARN}
    result = change(parse_cloudtrail_event(event("DetachThingPrincipal", request)))
    assert (result.name, result.deleted, result.fields) == (f"device-1#{CERT_ID}", True, {})


def test_thing_principal_absent_from_the_record() -> None:
    # Issue 27, item 9: ``principal`` travels in a header (botocore's model). Old code:
    # EventValidationError (requestParameters.principal).
    request = {"thingName": "device-1", "thingPrincipalType": "EXCLUSIVE_THING"}
    attach = change(parse_cloudtrail_event(event("AttachThingPrincipal", request)))
    assert (attach.lookup, attach.fields) == (Lookup(), {"exclusive": True})
    detach = skipped(parse_cloudtrail_event(event("DetachThingPrincipal", {"thingName": "d"})))
    assert detach.code is SkipCode.NO_PRINCIPAL


def test_bad_thing_principal_type_and_thing_name_are_refused() -> None:
    request = {"thingName": "device-1", "principal": CERT_ARN, "thingPrincipalType": "SOMETIMES"}
    with pytest.raises(EventValidationError, match="thingPrincipalType"):
        parse_cloudtrail_event(event("AttachThingPrincipal", request))
    with pytest.raises(RegistryValidationError, match="thingName"):
        parse_cloudtrail_event(
            event("AttachThingPrincipal", {"thingName": "bad name", "principal": CERT_ARN})
        )


# --- failures, unknown calls, malformed envelopes --------------------------------------------------


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_failed_calls_are_skipped_whatever_their_parameters(name: str) -> None:
    payload = event(name, None, None, errorCode="ResourceAlreadyExistsException")
    result = skipped(parse_cloudtrail_event(payload))
    assert result.code is SkipCode.FAILED_CALL
    assert "ResourceAlreadyExistsException" in result.reason


@pytest.mark.parametrize("name", ["CreateThing", "ListThings", "CreateTopicRule", "FutureCall"])
def test_unknown_event_names_are_skipped_with_a_reason(name: str) -> None:
    result = skipped(parse_cloudtrail_event(event(name, {"anything": 1})))
    assert (result.event_name, result.code) == (name, SkipCode.NOT_REPLICATED)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.update({"detail-type": "Thing Changed"}), "detail-type"),
        (lambda p: p.update({"source": "aws.ec2"}), "source"),
        (lambda p: p.update({"detail": "text"}), "detail"),
        (lambda p: p["detail"].update({"eventSource": "ec2.amazonaws.com"}), "eventSource"),
        (lambda p: p["detail"].pop("eventName"), "eventName"),
        (lambda p: p["detail"].pop("eventID"), "eventID"),
        (lambda p: p["detail"].update({"eventTime": "yesterday"}), "eventTime"),
        (lambda p: p["detail"].update({"eventTime": "2026-12-01T10:00:05"}), "eventTime"),
        (lambda p: p["detail"].update({"requestParameters": [1]}), "requestParameters"),
    ],
)
def test_malformed_envelopes_name_the_field(mutate: Any, field: str) -> None:
    payload = event("DeletePolicy", {"policyName": "p"})
    mutate(payload)
    with pytest.raises(EventValidationError, match=field):
        parse_cloudtrail_event(payload)


def test_dispatch_predicate() -> None:
    assert is_cloudtrail_event(event("DeletePolicy", {"policyName": "p"}))
    assert not is_cloudtrail_event({"eventType": "THING_EVENT"})


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_known_call_without_parameters_is_a_clear_error_or_a_skip(name: str) -> None:
    # A known call with no parameters is malformed (a named field), never a KeyError/TypeError.
    try:
        result = parse_cloudtrail_event(event(name, None, None))
    except (EventValidationError, RegistryValidationError) as error:
        assert "requestParameters" in str(error)
    else:
        assert isinstance(result, Skipped)
