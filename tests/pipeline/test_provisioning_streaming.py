"""Provisioning templates and CA certificates through the streaming path, on moto in two regions
(the sandbox's emulation of what moto lacks): CloudTrail-shaped events -> persist (the template
or CA described in the source) -> state table -> replicator -> destination registry. Created,
changed, deleted; out-of-order and duplicated delivery; the ARN rewrites; the CA's status
ordering; a device certificate registered with its CA where the CA is in the destination."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from pipeline.kinds.certificate import certificate_id_from_pem
from pipeline.model import EntityKind
from pipeline.state import Outcome
from sandbox import emulation
from sandbox.certificates import CertificateAuthority
from sandbox.inprocess import DST, SRC, TABLE
from tests.pipeline.test_security_streaming import T0, Harness

ROLE = "arn:aws:iam::123456789012:role/provisioning"
HOOK = f"arn:aws:lambda:{SRC}:123456789012:function:pre-provision"


@pytest.fixture
def h(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The harness on moto with the sandbox's emulation (CA modes, auto-registration, device
    certificates signed by a registered CA: what moto does not keep)."""
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.setenv("AWS_REGION", DST)
    monkeypatch.setenv("STATE_TABLE", TABLE)
    with mock_aws():
        emulation.install(emulation.RegistryEmulation())
        try:
            yield Harness()
        finally:
            emulation.uninstall()


def body(device: str) -> str:
    return json.dumps(
        {"Parameters": {"SerialNumber": {"Type": "String"}}, "Resources": {device: {}}}
    )


def template(h: Harness, name: str = "fleet", **extra: Any) -> None:
    h.call(
        "CreateProvisioningTemplate",
        {
            "templateName": name,
            "templateBody": body("v1"),
            "provisioningRoleArn": ROLE,
            "enabled": True,
            **extra,
        },
        at=T0,
    )


def test_a_template_is_created_changed_and_deleted_with_its_hook_in_the_destination_region(
    h: Harness,
) -> None:
    # GIVEN a fleet-provisioning template with a pre-provisioning hook in the source
    template(h, preProvisioningHook={"targetArn": HOOK, "payloadVersion": "2020-04-01"})
    h.flush()
    copy = h.dst.read(EntityKind.PROVISIONING_TEMPLATE, "fleet")
    assert copy is not None and copy["enabled"] is True and copy["role_arn"] == ROLE
    # THEN the hook names the destination's function, the role is the (global) IAM role
    assert copy["hook"]["targetArn"] == HOOK.replace(SRC, DST)
    # WHEN a new default version, then a description, are made in the source
    h.call(
        "CreateProvisioningTemplateVersion",
        {"templateName": "fleet", "templateBody": body("v2"), "setAsDefault": True},
        at=T0 + 1,
    )
    h.call(
        "UpdateProvisioningTemplate", {"templateName": "fleet", "description": "line 2"}, at=T0 + 2
    )
    h.flush()
    copy = h.dst.read(EntityKind.PROVISIONING_TEMPLATE, "fleet")
    assert copy is not None and copy["description"] == "line 2"
    assert json.loads(copy["body"]) == json.loads(body("v2"))
    assert sorted(json.loads(v["body"])["Resources"].popitem()[0] for v in copy["versions"]) == [
        "v1",
        "v2",
    ]
    # WHEN it is deleted in the source
    h.call("DeleteProvisioningTemplate", {"templateName": "fleet"}, at=T0 + 3)
    h.flush()
    assert h.dst.read(EntityKind.PROVISIONING_TEMPLATE, "fleet") is None


def test_a_late_create_never_resurrects_a_deleted_template(h: Harness) -> None:
    template(h)
    h.call("DeleteProvisioningTemplate", {"templateName": "fleet"}, at=T0 + 5)
    create, delete = h.events
    # WHEN the delete arrives first, and the create late (and twice)
    h.events[:] = [delete, create, create]
    results = h.flush()
    # THEN the create is looked up (gone: skipped) and the destination has no template
    assert results[0] is not None and results[0].outcome is Outcome.APPLIED
    assert h.dst.read(EntityKind.PROVISIONING_TEMPLATE, "fleet") is None


def jitp(h: Harness, ca: CertificateAuthority, *, active: bool = True) -> str:
    h.call(
        "CreateProvisioningTemplate",
        {
            "templateName": "jitp",
            "templateBody": body("jitp"),
            "provisioningRoleArn": ROLE,
            "type": "JITP",
        },
        at=T0,
    )
    h.call(
        "RegisterCACertificate",
        {
            "caCertificate": ca.pem,
            "certificateMode": "SNI_ONLY",
            "setAsActive": active,
            "allowAutoRegistration": True,
            "registrationConfig": {"templateName": "jitp"},
        },
        at=T0 + 1,
    )
    return certificate_id_from_pem(ca.pem)


def test_a_jitp_ca_arrives_after_its_template_and_a_late_active_never_undoes_a_later_inactive(
    h: Harness,
) -> None:
    ca = CertificateAuthority.new()
    ca_id = jitp(h, ca)
    # WHEN the CA's event is delivered before its template's
    h.events.reverse()
    h.flush()
    copy = h.dst.read(EntityKind.CA_CERTIFICATE, ca_id)
    assert copy is not None
    assert (copy["status"], copy["auto_registration"]) == ("ACTIVE", "ENABLE")
    assert copy["registration_config"] == {"templateName": "jitp"}
    assert h.dst.read(EntityKind.PROVISIONING_TEMPLATE, "jitp") is not None
    # GIVEN the CA deactivated, reactivated, deactivated in the source, a second apart
    for at, status in ((T0 + 10, "INACTIVE"), (T0 + 11, "ACTIVE"), (T0 + 12, "INACTIVE")):
        h.call("UpdateCACertificate", {"certificateId": ca_id, "newStatus": status}, at=at)
    inactive, active, last = h.events
    # WHEN the last arrives first, the older ones late
    h.events[:] = [last, active, inactive]
    results = h.flush()
    assert [r.outcome if r else None for r in results] == [
        Outcome.APPLIED,
        Outcome.STALE,
        Outcome.STALE,
    ]
    copy = h.dst.read(EntityKind.CA_CERTIFICATE, ca_id)
    assert copy is not None and copy["status"] == "INACTIVE"


def test_a_device_certificate_is_registered_with_its_ca_where_the_ca_is_there(h: Harness) -> None:
    ca = CertificateAuthority.new()
    ca_id = jitp(h, ca)
    device = ca.issue("device-1")
    h.call(
        "RegisterCertificate",
        {"certificatePem": device, "caCertificatePem": ca.pem, "setAsActive": True},
        at=T0 + 2,
    )
    # WHEN the device certificate's event comes first: its CA is created from the table
    h.events[:] = [h.events[2], h.events[0], h.events[1]]
    h.flush()
    cert_id = certificate_id_from_pem(device)
    copy = h.dst.read(EntityKind.CERTIFICATE, cert_id)
    assert copy is not None and copy["status"] == "ACTIVE"
    assert copy["ca"] == ca_id


def test_a_device_certificate_of_an_unreplicated_ca_is_registered_without_it(h: Harness) -> None:
    ca = CertificateAuthority.new()
    # GIVEN a CA registered in the source before the pipeline (no event), and a device of it
    h.source.register_ca_certificate(
        caCertificate=ca.pem, certificateMode="SNI_ONLY", setAsActive=True
    )
    device = ca.issue("device-2")
    h.call(
        "RegisterCertificate",
        {"certificatePem": device, "caCertificatePem": ca.pem, "setAsActive": True},
        at=T0 + 2,
    )
    h.flush()
    copy = h.dst.read(EntityKind.CERTIFICATE, certificate_id_from_pem(device))
    assert copy is not None and copy["status"] == "ACTIVE" and copy["ca"] is None


def test_a_deleted_ca_is_deactivated_and_deleted_in_the_destination(h: Harness) -> None:
    ca = CertificateAuthority.new()
    ca_id = jitp(h, ca)
    h.flush()
    h.call("UpdateCACertificate", {"certificateId": ca_id, "newStatus": "INACTIVE"}, at=T0 + 5)
    h.call("DeleteCACertificate", {"certificateId": ca_id}, at=T0 + 6)
    h.flush()
    assert h.dst.read(EntityKind.CA_CERTIFICATE, ca_id) is None
