"""Reconciliation of provisioning templates and CA certificates: a whole run on moto in two
regions (with the sandbox's emulation of what moto lacks): created, changed and deleted in the
source with no event delivered, repaired through the pipeline, deletes only when allowed; and
the pure diff of their ARNs as the replicator writes them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto import mock_aws

from pipeline.kinds.certificate import certificate_id_from_pem
from pipeline.model import EntityKind
from reconcile.diff import diff_snapshots
from reconcile.guards import Guards
from reconcile.snapshot import Snapshot
from sandbox import emulation
from sandbox.certificates import CertificateAuthority
from sandbox.inprocess import DST, SRC, LocalPipeline
from tests.conftest import RegistryView

NOW = 1_796_119_205_000
ROLE = "arn:aws:iam::111111111111:role/provisioning"


def body(name: str) -> str:
    return json.dumps({"Resources": {name: {}}})


@pytest.fixture
def pipeline(pipeline_environment: None) -> Iterator[LocalPipeline]:
    with mock_aws():
        emulation.install(emulation.RegistryEmulation())
        try:
            yield LocalPipeline()
        finally:
            emulation.uninstall()


def test_templates_and_cas_are_created_changed_and_deleted_by_reconciliation(
    pipeline: LocalPipeline,
) -> None:
    src, dst = pipeline.source, RegistryView(pipeline.destination)
    # GIVEN a JITP template and its CA, and a fleet template with two versions, in the source
    # only (no CloudTrail event delivered)
    src.create_provisioning_template(
        templateName="jitp", templateBody=body("j"), provisioningRoleArn=ROLE, type="JITP"
    )
    ca = CertificateAuthority.new()
    ca_id = certificate_id_from_pem(ca.pem)
    src.register_ca_certificate(
        caCertificate=ca.pem,
        certificateMode="SNI_ONLY",
        setAsActive=True,
        registrationConfig={"templateName": "jitp"},
    )
    src.create_provisioning_template(
        templateName="fleet", templateBody=body("v1"), provisioningRoleArn=ROLE, enabled=True
    )
    src.create_provisioning_template_version(
        templateName="fleet", templateBody=body("v2"), setAsDefault=True
    )
    # WHEN reconciliation runs and the pipeline converges
    pipeline.reconcile()
    pipeline.converge_fully()
    # THEN they are in the destination, and the next audit is clean
    fleet = dst.read(EntityKind.PROVISIONING_TEMPLATE, "fleet")
    assert fleet is not None and len(fleet["versions"]) == 2
    assert json.loads(fleet["body"]) == json.loads(body("v2"))
    copy = dst.read(EntityKind.CA_CERTIFICATE, ca_id)
    assert copy is not None and copy["mode"] == "SNI_ONLY" and copy["status"] == "ACTIVE"
    assert pipeline.audit().in_sync
    # WHEN the CA is deactivated and the fleet template disabled, with no event delivered
    src.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
    src.update_provisioning_template(templateName="fleet", enabled=False)
    report = pipeline.audit()
    assert {(d.entity, d.kind, d.severity) for d in report.drifts} == {
        (EntityKind.CA_CERTIFICATE, "changed", "high"),
        (EntityKind.PROVISIONING_TEMPLATE, "changed", "high"),
    }
    pipeline.reconcile()
    pipeline.converge_fully()
    copy = dst.read(EntityKind.CA_CERTIFICATE, ca_id)
    assert copy is not None and copy["status"] == "INACTIVE"
    assert pipeline.audit().in_sync
    # WHEN both are deleted in the source: reported, removed only with --allow-deletes
    src.delete_ca_certificate(certificateId=ca_id)
    src.delete_provisioning_template(templateName="jitp")
    pipeline.reconcile(guards=Guards(allow_deletes=False, max_changes=None, min_source_ratio=0.0))
    pipeline.converge_fully()
    assert dst.read(EntityKind.CA_CERTIFICATE, ca_id) is not None
    pipeline.reconcile()  # the in-process pipeline allows deletes by default
    pipeline.converge_fully()
    assert dst.read(EntityKind.CA_CERTIFICATE, ca_id) is None
    assert dst.read(EntityKind.PROVISIONING_TEMPLATE, "jitp") is None
    assert pipeline.audit().in_sync


def _template(role: str, hook: str) -> dict[str, object]:
    return {
        "name": "fleet",
        "type": "FLEET_PROVISIONING",
        "body": '{"Resources":{}}',
        "versions": ['{"Resources":{}}'],
        "enabled": True,
        "role_arn": role,
        "hook": {"targetArn": hook},
        "description": None,
    }


def test_a_templates_role_and_hook_are_compared_as_the_replicator_writes_them() -> None:
    hook = "arn:aws:lambda:{}:{}:function:pre"
    source = Snapshot.from_records(
        SRC, NOW, provisioning_templates=[_template(ROLE, hook.format(SRC, "111111111111"))]
    )
    copy = _template(ROLE.replace("111111111111", "222222222222"), hook.format(DST, "222222222222"))
    target = Snapshot.from_records(DST, NOW, provisioning_templates=[copy])
    assert [d.details.keys() for d in diff_snapshots(source, target).drifts] == [
        {"role_arn", "hook"}
    ]
    mapped = diff_snapshots(source, target, policy_accounts={"111111111111": "222222222222"})
    assert mapped.drifts == ()
