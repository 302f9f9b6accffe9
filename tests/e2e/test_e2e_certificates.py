"""End to end on the sandbox: certificates, policies and attachments made in the source reach the
destination through the streaming path (CloudTrail-shaped events, emulated: sandbox.emulation.
controlplane), a revocation included, and a policy change arrives with its ARNs rewritten."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from pipeline.kinds.certificate import certificate_id_from_pem
from sandbox.certificates import self_signed_pem
from sandbox.emulation.refusals import POLICY_DELETE_AFTER_DETACH_SECONDS
from sandbox.stack import Sandbox

from .conftest import DESTINATION, SOURCE


def policy_document(region: str, topic: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "Resource": f"arn:aws:iot:{region}:123456789012:topic/{topic}",
                }
            ],
        }
    )


def test_certificates_policies_and_attachments_stream_to_the_destination(
    sandbox: Sandbox,
) -> None:
    src, dst = sandbox.iot(SOURCE), sandbox.iot(DESTINATION)
    # GIVEN a device with a certificate and a policy, created and attached in the source
    src.create_thing(thingName="device-1")
    pem = self_signed_pem()
    cert = src.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    cert_id = cert["certificateId"]
    src.create_policy(policyName="device", policyDocument=policy_document(SOURCE, "telemetry"))
    src.attach_policy(policyName="device", target=cert["certificateArn"])
    src.attach_thing_principal(
        thingName="device-1", principal=cert["certificateArn"], thingPrincipalType="EXCLUSIVE_THING"
    )
    report = sandbox.drain(timeout=120)
    assert report.executions.get("SUCCEEDED") == report.events_delivered, sandbox.failure_reasons
    # THEN the destination holds the same certificate (same id: SHA-256 of the DER), ACTIVE,
    # with the policy (ARNs rewritten) and the thing attached
    assert cert_id == certificate_id_from_pem(pem)
    copy = dst.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert copy["status"] == "ACTIVE"
    policy = dst.get_policy(policyName="device")
    assert f"arn:aws:iot:{DESTINATION}:" in policy["policyDocument"]
    assert SOURCE not in policy["policyDocument"]
    targets = dst.list_targets_for_policy(policyName="device")["targets"]
    assert targets == [copy["certificateArn"]]
    assert dst.list_thing_principals_v2(thingName="device-1")["thingPrincipalObjects"] == [
        {"principal": copy["certificateArn"], "thingPrincipalType": "EXCLUSIVE_THING"}
    ]

    # WHEN the certificate is revoked and the policy changed in the source
    src.update_certificate(certificateId=cert_id, newStatus="REVOKED")
    src.create_policy_version(
        policyName="device",
        policyDocument=policy_document(SOURCE, "alerts"),
        setAsDefault=True,
    )
    sandbox.drain(timeout=120)
    # THEN the destination copy is revoked and the policy in effect names the destination
    copy = dst.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert copy["status"] == "REVOKED"
    document = json.loads(dst.get_policy(policyName="device")["policyDocument"])
    assert document["Statement"][0]["Resource"] == (
        f"arn:aws:iot:{DESTINATION}:123456789012:topic/alerts"
    )


def test_the_sandbox_refuses_to_unrevoke_as_aws_does(sandbox: Sandbox) -> None:
    src = sandbox.iot(SOURCE)
    cert = src.register_certificate_without_ca(certificatePem=self_signed_pem(), status="ACTIVE")
    src.update_certificate(certificateId=cert["certificateId"], newStatus="REVOKED")
    try:
        src.update_certificate(certificateId=cert["certificateId"], newStatus="ACTIVE")
    except ClientError as error:
        assert error.response["Error"]["Code"] == "CertificateStateException"
    else:
        raise AssertionError("a revoked certificate was reactivated")


def test_a_policy_deleted_after_its_detach_converges_through_the_refusal(sandbox: Sandbox) -> None:
    # AWS refuses DeletePolicy for up to five minutes after a detach (AWS IoT API Reference,
    # DeletePolicy); the sandbox does so for POLICY_DELETE_AFTER_DETACH_SECONDS of its clock.
    src, dst = sandbox.iot(SOURCE), sandbox.iot(DESTINATION)
    cert = src.register_certificate_without_ca(certificatePem=self_signed_pem(), status="ACTIVE")
    src.create_policy(policyName="device", policyDocument=policy_document(SOURCE, "telemetry"))
    src.attach_policy(policyName="device", target=cert["certificateArn"])
    sandbox.drain(timeout=120)
    assert dst.list_targets_for_policy(policyName="device")["targets"]
    # GIVEN the policy detached and, once the source allows it, deleted in the source
    src.detach_policy(policyName="device", target=cert["certificateArn"])
    sandbox.advance_clock(POLICY_DELETE_AFTER_DETACH_SECONDS)
    src.delete_policy(policyName="device")
    refused_before = sandbox.refusals["delete_policy_just_detached"]
    # WHEN the pipeline runs until the destination has refused the converger's delete (right
    # after its detach) ...
    first = sandbox.pump_round()
    rounds = [first]
    while sandbox.refusals["delete_policy_just_detached"] == refused_before and len(rounds) < 5:
        rounds.append(sandbox.pump_round())
    assert sandbox.refusals["delete_policy_just_detached"] > refused_before, rounds
    assert dst.get_policy(policyName="device")  # refused: still there
    # ... and the destination's clock passes the window
    sandbox.advance_clock(POLICY_DELETE_AFTER_DETACH_SECONDS)
    report = sandbox.drain(timeout=120)
    # THEN the replicator's retry deleted it; nothing went to the on-failure destination
    assert sum(r.batch_item_failures for r in rounds) >= 1
    assert report.failed_batches == [] and not any(r.failed_batches for r in rounds)
    with pytest.raises(ClientError) as gone:
        dst.get_policy(policyName="device")
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
