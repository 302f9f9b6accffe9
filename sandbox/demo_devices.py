"""The demo's device credentials and onboarding, steps 3b and 3c of ``sandbox.demo``'s story:
certificates and a device policy created, attached, revoked and changed in the source; a CA with
its just-in-time provisioning template, a fleet-provisioning template and a role alias; each
streamed to the destination through the pipeline (CloudTrail events, emulated -> persist ->
replicator), checked there."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sandbox.certificates import CertificateAuthority, self_signed_pem
from sandbox.stack import Sandbox

DEVICE_POLICY = "device-policy"


def _device_policy(region: str, topic: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "Resource": f"arn:aws:iot:{region}:123456789012:topic/{topic}/*",
                },
            ],
        }
    )


def device_credentials(box: Sandbox, *, echo: Callable[[str], None]) -> bool:
    """Step 3b: certificates and a policy for the new devices, through the streaming path
    (control-plane calls -> CloudTrail events, emulated -> persist -> replicator); then a
    revocation and a policy change. True when the destination shows each as expected."""
    src, dst = box.iot(box.source_region), box.iot(box.destination_region)
    src.create_policy(
        policyName=DEVICE_POLICY, policyDocument=_device_policy(box.source_region, "telemetry")
    )
    certificates = []
    for i in range(3):
        # The device maker's certificate (its key never leaves the device; here: discarded).
        cert = src.register_certificate_without_ca(
            certificatePem=self_signed_pem(f"new-device-{i}"), status="ACTIVE"
        )
        src.attach_policy(policyName=DEVICE_POLICY, target=cert["certificateArn"])
        src.attach_thing_principal(thingName=f"new-device-{i}", principal=cert["certificateArn"])
        certificates.append(cert["certificateId"])
    box.drain(timeout=120)
    statuses = [_status(dst, cert) for cert in certificates]
    attached = sum(
        bool(dst.list_thing_principals(thingName=f"new-device-{i}")["principals"]) for i in range(3)
    )
    echo(
        f"3b. device credentials streamed: {len(certificates)} certificates + 1 policy created "
        f"and attached in the source → in the destination: {statuses.count('ACTIVE')} ACTIVE "
        f"(same ids), {attached} attached to their things"
    )
    # A device is compromised: revoke its certificate; and the policy moves to a new topic.
    src.update_certificate(certificateId=certificates[0], newStatus="REVOKED")
    src.create_policy_version(
        policyName=DEVICE_POLICY,
        policyDocument=_device_policy(box.source_region, "telemetry-v2"),
        setAsDefault=True,
    )
    box.drain(timeout=120)
    revoked = _status(dst, certificates[0])
    document = dst.get_policy(policyName=DEVICE_POLICY)["policyDocument"]
    resource = json.loads(document)["Statement"][1]["Resource"]
    echo(
        f"    revoked in the source → {revoked} in the destination (streaming path); policy "
        f"change → destination's default version names {resource}"
    )
    expected_resource = f"arn:aws:iot:{box.destination_region}:123456789012:topic/telemetry-v2/*"
    return (
        statuses == ["ACTIVE"] * 3
        and attached == 3
        and revoked == "REVOKED"
        and resource == expected_resource
    )


PROVISIONING_ROLE = "arn:aws:iam::123456789012:role/iot-provisioning"
# The role devices get AWS credentials for through the credential provider; the alias names it.
DEVICE_ROLE = "arn:aws:iam::123456789012:role/iot-device-credentials"
DEVICE_ROLE_ALIAS = "device-credentials"


def device_onboarding(box: Sandbox, *, echo: Callable[[str], None]) -> bool:
    """Step 3c: how new devices onboard in the DR region, through the streaming path: a CA
    (DEFAULT mode, its verification certificate signed with the CA's key) whose devices
    provision just in time with a JITP template, a fleet-provisioning template with a
    pre-provisioning hook, and the role alias devices exchange their certificate for AWS
    credentials with; then the CA is deactivated in the source. True when the destination shows
    each as expected."""
    src, dst = box.iot(box.source_region), box.iot(box.destination_region)
    body = json.dumps({"Parameters": {"SerialNumber": {"Type": "String"}}, "Resources": {}})
    src.create_provisioning_template(
        templateName="jitp-devices",
        templateBody=body,
        provisioningRoleArn=PROVISIONING_ROLE,
        type="JITP",
    )
    hook = f"arn:aws:lambda:{box.source_region}:123456789012:function:pre-provision"
    src.create_provisioning_template(
        templateName="fleet-claims",
        templateBody=body,
        provisioningRoleArn=PROVISIONING_ROLE,
        enabled=True,
        preProvisioningHook={"targetArn": hook, "payloadVersion": "2020-04-01"},
    )
    src.create_role_alias(
        roleAlias=DEVICE_ROLE_ALIAS, roleArn=DEVICE_ROLE, credentialDurationSeconds=3600
    )
    ca = CertificateAuthority.new("iot-crr demo CA")
    code = src.get_registration_code()["registrationCode"]
    ca_id = src.register_ca_certificate(
        caCertificate=ca.pem,
        verificationCertificate=ca.issue(code),
        setAsActive=True,
        allowAutoRegistration=True,
        registrationConfig={"templateName": "jitp-devices"},
    )["certificateId"]
    box.drain(timeout=120)
    copy = _ca(dst, ca_id)
    fleet = dst.describe_provisioning_template(templateName="fleet-claims")
    alias = _role_alias(dst, DEVICE_ROLE_ALIAS)
    echo(
        f"3c. onboarding streamed: CA {copy.get('status')} ({copy.get('certificateMode')}: the "
        "tool holds no CA key) with its JITP template, a fleet-provisioning template whose hook "
        f"names {fleet['preProvisioningHook']['targetArn']}, role alias {DEVICE_ROLE_ALIAS} → "
        f"{alias.get('roleArn', 'missing')} ({alias.get('credentialDurationSeconds', 0)} s)"
    )
    echo(
        "    (the sandbox has no Lambda function pre-provision in the DR region: the replicator "
        "warns above, metric ProvisioningHookFunctionsMissing; deploying it is the operator's)"
    )
    src.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
    box.drain(timeout=120)  # until the pipeline is idle: the condition, not a sleep
    inactive = _ca(dst, ca_id).get("status")
    echo(f"    CA set INACTIVE in the source → {inactive} in the destination (streaming path)")
    return (
        copy.get("status") == "ACTIVE"
        and inactive == "INACTIVE"
        and fleet["preProvisioningHook"]["targetArn"]
        == hook.replace(box.source_region, box.destination_region)
        and alias.get("roleArn") == DEVICE_ROLE
        and alias.get("credentialDurationSeconds") == 3600
    )


def _role_alias(iot: Any, name: str) -> dict[str, Any]:
    try:
        described = iot.describe_role_alias(roleAlias=name)
    except iot.exceptions.ResourceNotFoundException:
        return {}
    return dict(described["roleAliasDescription"])


def _ca(iot: Any, ca_id: str) -> dict[str, Any]:
    try:
        described = iot.describe_ca_certificate(certificateId=ca_id)
    except iot.exceptions.ResourceNotFoundException:
        return {}
    return dict(described["certificateDescription"])


def _status(iot: Any, certificate_id: str) -> str:
    try:
        description = iot.describe_certificate(certificateId=certificate_id)
    except iot.exceptions.ResourceNotFoundException:
        return "missing"
    return str(description["certificateDescription"]["status"])
