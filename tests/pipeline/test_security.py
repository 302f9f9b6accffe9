"""Certificates, policies and their attachments (pipeline.kinds.certificate, .policy, .links):
the pure decisions (which calls bring the destination to the desired state) and the kinds'
reads, against moto in two regions (``use_valid_cert``: certificate id = SHA-256 of
the DER, as AWS computes it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from pipeline.aws import classify_client_error
from pipeline.errors import AwsWaitError
from pipeline.iot import Iot
from pipeline.kinds import KINDS
from pipeline.kinds.base import Call, ConvergeError
from pipeline.kinds.certificate import canonical_pem, certificate_calls, certificate_id_from_pem
from pipeline.kinds.links import POLICY_TARGET
from pipeline.kinds.policy import policy_calls
from pipeline.kinds.thing_principal import THING_PRINCIPAL
from pipeline.model import EntityKind
from pipeline.policyrewrite import ArnMapping, canonical_document
from sandbox.certificates import self_signed_pem
from tests.pipeline.conftest import RegistryView

SRC, DST = "us-east-1", "eu-west-1"
MAPPING = ArnMapping({SRC: DST})
CERT = "c" * 64


def thing_principal_calls(
    thing: str, principal_arn: str, desired: dict[str, Any] | None, actual: dict[str, Any] | None
) -> list[Call]:
    """The thing principal's decision, its certificate's ARN known (the converge hook's)."""
    with_arn = {"principal": principal_arn}
    return THING_PRINCIPAL.calls(
        f"{thing}#{CERT}",
        None if desired is None else {**desired, **with_arn},
        None if actual is None else {**actual, **with_arn},
    )


def policy_target_calls(policy: str, target_arn: str, desired: bool, attached: bool) -> list[Call]:
    """The policy target's decision, its target's ARN known (the converge hook's)."""
    target = {"target": target_arn}
    return POLICY_TARGET.calls(
        f"{policy}#cert/{CERT}", target if desired else None, target if attached else None
    )


def policy_doc(region: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "Resource": f"arn:aws:iot:{region}:123456789012:topic/telemetry",
                }
            ],
        }
    )


# --- pure decisions ------------------------------------------------------------------------------


def test_canonical_pem_ignores_line_endings_and_wrapping() -> None:
    pem = self_signed_pem()
    assert canonical_pem(pem.replace("\n", "\r\n")) == canonical_pem(pem) == pem
    assert certificate_id_from_pem(canonical_pem(pem)) == certificate_id_from_pem(pem)


def test_missing_certificate_is_registered_with_its_status() -> None:
    desired = {"status": "ACTIVE", "pem": "PEM"}
    assert certificate_calls("c" * 64, desired, None) == [
        Call("RegisterCertificateWithoutCA", {"certificatePem": "PEM", "status": "ACTIVE"})
    ]


def test_certificate_without_pem_cannot_be_registered() -> None:
    with pytest.raises(ConvergeError, match="no PEM"):
        certificate_calls("c" * 64, {"status": "ACTIVE"}, None)


@pytest.mark.parametrize(
    ("desired", "actual", "expected"),
    [
        ("REVOKED", "ACTIVE", ["UpdateCertificate"]),
        ("INACTIVE", "ACTIVE", ["UpdateCertificate"]),
        ("ACTIVE", "INACTIVE", ["UpdateCertificate"]),
        ("ACTIVE", "ACTIVE", []),
        ("REVOKED", "REVOKED", []),
    ],
)
def test_status_follows_the_source(desired: str, actual: str, expected: list[str]) -> None:
    calls = certificate_calls("c" * 64, {"status": desired, "pem": "P"}, {"status": actual})
    assert [c.op for c in calls] == expected
    if calls:
        assert calls[0].params == {"certificateId": "c" * 64, "newStatus": desired}


def test_revoked_in_the_destination_is_reported_not_recreated() -> None:
    with pytest.raises(ConvergeError, match="cannot change a revoked"):
        certificate_calls("c" * 64, {"status": "ACTIVE", "pem": "P"}, {"status": "REVOKED"})


def test_deleting_a_certificate_detaches_and_deactivates_first() -> None:
    actual = {"status": "ACTIVE", "arn": "arn:c", "things": ["t1"], "policies": ["p1"]}
    assert [c.op for c in certificate_calls("c" * 64, None, actual)] == [
        "DetachThingPrincipal",
        "DetachPolicy",
        "UpdateCertificate",
        "DeleteCertificate",
    ]
    assert certificate_calls("c" * 64, None, None) == []


def test_policy_is_created_with_its_arns_rewritten() -> None:
    (call,) = policy_calls("p", {"document": policy_doc(SRC)}, None, MAPPING)
    assert call.op == "CreatePolicy"
    assert f"arn:aws:iot:{DST}:" in call.params["policyDocument"]
    assert SRC not in call.params["policyDocument"]


def test_policy_in_sync_needs_nothing_whatever_the_formatting() -> None:
    actual = {"document": json.dumps(json.loads(policy_doc(DST)), indent=4), "versions": []}
    assert policy_calls("p", {"document": policy_doc(SRC)}, actual, MAPPING) == []


def test_changed_policy_gets_a_new_default_version_making_room_at_five() -> None:
    versions = [{"id": str(i), "default": i == 3} for i in range(1, 6)]
    actual = {"document": policy_doc("ap-south-1"), "versions": versions}
    calls = policy_calls("p", {"document": policy_doc(SRC)}, actual, MAPPING)
    assert [c.op for c in calls] == ["DeletePolicyVersion", "CreatePolicyVersion"]
    assert calls[0].params["policyVersionId"] == "1"
    assert calls[1].params["setAsDefault"] is True


def test_deleting_a_policy_detaches_and_drops_versions_first() -> None:
    actual = {
        "document": "{}",
        "versions": [{"id": "1", "default": False}, {"id": "2", "default": True}],
        "targets": ["arn:t"],
    }
    assert [c.op for c in policy_calls("p", None, actual, MAPPING)] == [
        "DetachPolicy",
        "DeletePolicyVersion",
        "DeletePolicy",
    ]


@pytest.mark.parametrize(
    ("desired", "actual", "expected"),
    [
        ({"exclusive": True}, None, ["AttachThingPrincipal"]),
        ({"exclusive": True}, {"exclusive": True}, []),
        ({"exclusive": True}, {"exclusive": None}, []),
        (
            {"exclusive": False},
            {"exclusive": True},
            ["DetachThingPrincipal", "AttachThingPrincipal"],
        ),
        (None, {"exclusive": False}, ["DetachThingPrincipal"]),
        (None, None, []),
    ],
)
def test_thing_principal_calls(
    desired: dict[str, Any] | None, actual: dict[str, Any] | None, expected: list[str]
) -> None:
    assert [c.op for c in thing_principal_calls("t", "arn:c", desired, actual)] == expected


def test_policy_target_calls() -> None:
    assert [c.op for c in policy_target_calls("p", "arn:t", True, False)] == ["AttachPolicy"]
    assert [c.op for c in policy_target_calls("p", "arn:t", False, True)] == ["DetachPolicy"]
    assert policy_target_calls("p", "arn:t", True, True) == []


def test_canonical_document() -> None:
    assert canonical_document('{"b": 1, "a": [1, 2]}') == '{"a":[1,2],"b":1}'


# --- the adapter on moto -------------------------------------------------------------------------


@pytest.fixture
def regions(aws_credentials: None) -> Iterator[tuple[Any, Any]]:
    with mock_aws(config={"iot": {"use_valid_cert": True}}):
        yield boto3.client("iot", region_name=SRC), boto3.client("iot", region_name=DST)


def test_certificate_round_trip_between_regions(regions: tuple[Any, Any]) -> None:
    # GIVEN a certificate registered and revoked in the source
    source, destination = regions
    pem = self_signed_pem()
    cert_id = source.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")[
        "certificateId"
    ]
    source.update_certificate(certificateId=cert_id, newStatus="REVOKED")
    src, dst = RegistryView(source), RegistryView(destination)
    desired = src.describe_certificate(cert_id)
    assert desired is not None and desired["status"] == "REVOKED"
    # WHEN the destination is converged to it
    dst.iot.apply(certificate_calls(cert_id, desired, dst.describe_certificate(cert_id)))
    # THEN the destination holds the same certificate (same id), revoked
    copy = dst.describe_certificate(cert_id)
    assert copy is not None
    assert (copy["status"], copy["pem"]) == ("REVOKED", canonical_pem(pem))
    assert cert_id == certificate_id_from_pem(pem)
    # AND converging again changes nothing
    assert certificate_calls(cert_id, desired, copy) == []


def test_policy_attachments_and_deletes_on_moto(regions: tuple[Any, Any]) -> None:
    _, destination = regions
    dst, iot = RegistryView(destination), Iot(destination)
    pem = self_signed_pem()
    cert = destination.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    cert_id = cert["certificateId"]
    destination.create_thing(thingName="device-1")
    iot.apply(policy_calls("p", {"document": policy_doc(SRC)}, None, MAPPING))
    iot.apply(policy_target_calls("p", cert["certificateArn"], True, False))
    iot.apply(thing_principal_calls("device-1", cert["certificateArn"], {"exclusive": False}, None))
    assert dst.read(EntityKind.POLICY_TARGET, f"p#cert/{cert_id}") is not None
    assert dst.thing_principal("device-1", cert_id) is not None
    policy = dst.get_policy("p")
    assert policy is not None and f"arn:aws:iot:{DST}:" in policy["document"]
    # WHEN the certificate and the policy are deleted (attachments first, as AWS requires)
    actual = KINDS[EntityKind.CERTIFICATE].read(iot, cert_id, deleting=True)
    assert actual is not None and actual["things"] == ["device-1"] and actual["policies"] == ["p"]
    iot.apply(certificate_calls(cert_id, None, actual))
    iot.apply(policy_calls("p", None, dst.get_policy("p"), MAPPING))
    # THEN both are gone
    assert dst.describe_certificate(cert_id) is None
    assert dst.get_policy("p") is None


@pytest.mark.parametrize("operation", ["DeletePolicy", "DeleteCertificate"])
def test_a_delete_refused_right_after_its_detach_is_a_wait(operation: str) -> None:
    # AWS: up to five minutes after a detach before the delete is allowed (DeletePolicy).
    error = ClientError(
        {
            "Error": {"Code": "DeleteConflictException", "Message": "attached"},
            "ResponseMetadata": {"HTTPStatusCode": 409},
        },
        operation,
    )
    assert isinstance(classify_client_error(operation, error), AwsWaitError)
    assert not isinstance(classify_client_error("AttachPolicy", error), AwsWaitError)
