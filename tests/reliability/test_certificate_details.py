"""Issue 27 item 2 on the emulated AWS: a snapshot lists certificates without their PEM and CA
(ListCertificates' items carry neither: botocore's iot model, shape ``Certificate``), so the
repair reads both (DescribeCertificate, ``CertificateDescription``: ``certificatePem``,
``caCertificateId``) for the certificates it writes, and for no other."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from pipeline.kinds.certificate import canonical_pem
from reconcile.inventory import Inventory
from sandbox import emulation
from sandbox.certificates import CertificateAuthority
from sandbox.inprocess import DST, SRC, LocalPipeline


def test_a_certificate_of_a_ca_in_both_regions_is_registered_with_it(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    """The CA, which only DescribeCertificate names, is read with the PEM: the replicator
    registers the copy with its CA where that CA is registered and ACTIVE in the destination
    (RegisterCertificate; docs/onboarding-kinds.md, fact 5), not without it."""
    # GIVEN a CA registered in both regions, and a device certificate it signed in the source
    src, dst = pipeline.source, pipeline.destination
    authority = CertificateAuthority.new()
    (ca_id,) = {
        client.register_ca_certificate(
            caCertificate=authority.pem, certificateMode="SNI_ONLY", setAsActive=True
        )["certificateId"]
        for client in (src, dst)
    }
    device = authority.issue("device-1")
    cert_id = src.register_certificate(
        certificatePem=device, caCertificatePem=authority.pem, setAsActive=True
    )["certificateId"]
    reads: dict[str, Counter[str]] = {}

    def reader(region: str) -> Inventory:
        inventory = pipeline.inventory(region)
        reads[region] = inventory.calls
        return inventory

    engine = replace(pipeline.reconciler(), reader=reader)
    # WHEN the repair is planned (one DescribeCertificate, in the source) and applied, and the
    # pipeline converges the destination
    plan = engine.plan(engine.audit(SRC, DST))
    assert {region: dict(calls) for region, calls in reads.items()} == {
        SRC: {"DescribeCertificate": 1}
    }
    (upsert,) = plan.actions
    assert upsert.fields == {"status": "ACTIVE", "pem": canonical_pem(device), "ca": ca_id}
    engine.apply(plan)
    pipeline.converge_fully()
    # THEN the copy is registered with its CA, and the registries agree
    copy = dst.describe_certificate(certificateId=cert_id)["certificateDescription"]
    assert (copy["status"], copy.get("caCertificateId")) == ("ACTIVE", ca_id)
    assert pipeline.audit().in_sync
