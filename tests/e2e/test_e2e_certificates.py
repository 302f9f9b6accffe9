"""End to end on the sandbox: certificates, policies and attachments made in the source reach the
destination through the streaming path (CloudTrail-shaped events, emulated: sandbox.emulation.
controlplane), a revocation included, and a policy change arrives with its ARNs rewritten."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from pipeline.cloudtrail import certificate_id_from_pem
from sandbox.certificates import self_signed_pem
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
    src.attach_thing_principal(thingName="device-1", principal=cert["certificateArn"])
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
    assert dst.list_thing_principals(thingName="device-1")["principals"] == [copy["certificateArn"]]

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
