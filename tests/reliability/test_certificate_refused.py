"""Issue 27 item 1: a device certificate the destination refuses to register (an AWS-issued one,
by the guide's 2022 text: ``pipeline.kinds.certificate_refusal``) is recorded once in the
destination's replica of the state table, counted and logged once, never a failure-queue entry;
the three-way audit reports it as a class of its own that the plan does not repair; readiness
names the device. The emulation applies that rule only when a test turns it on
(``RegistryEmulation.shared_certificate_rule``, an assumption in ``MOTO_GAPS``)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.cloudtrail import Skipped, is_cloudtrail_event, parse_cloudtrail_event
from pipeline.kinds.certificate_refusal import (
    CERTIFICATES_NOT_REGISTRABLE_METRIC,
    UnregistrableCertificate,
    refusals,
)
from pipeline.model import EntityKind
from reconcile.engine import table_snapshotter
from reconcile.inventory import Inventory
from reconcile.readiness.assess import assess
from reconcile.readiness.devices import Probes
from reconcile.report import render, to_json
from sandbox import emulation
from sandbox.certificates import CertificateAuthority
from sandbox.inprocess import DST, SRC, TABLE, LocalPipeline, boto3_client

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
    }
)


def _sync(pipeline: LocalPipeline, world: emulation.RegistryEmulation) -> None:
    """Persist the source's calls (CloudTrail-shaped, as persist's control-plane path takes
    them), then let the replicator drain the stream."""
    for event in world.outbox(SRC).take():
        if not is_cloudtrail_event(event):
            pipeline.persist_event(event)  # a registry event
            continue
        change = parse_cloudtrail_event(event)
        assert not isinstance(change, Skipped), change
        pipeline.persist_change(change)
    stats = pipeline.drain()
    assert stats.failed_batches == []


def _emf_values(output: str, metric: str) -> list[Any]:
    values: list[Any] = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            if metric in document:
                value = document[metric]
                values += value if isinstance(value, list) else [value]
    return values


def _refusal(pipeline: LocalPipeline, cert_id: str) -> UnregistrableCertificate | None:
    key = UnregistrableCertificate.key_for(DST, cert_id)
    return pipeline.table.get_record(UnregistrableCertificate, key)


def test_a_refused_registration_is_recorded_once_not_failed(
    pipeline: LocalPipeline,
    registry_world: emulation.RegistryEmulation,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    registry_world.shared_certificate_rule = True
    # GIVEN an AWS-issued certificate in the source (CreateKeysAndCertificate: DEFAULT mode)
    cert = pipeline.source.create_keys_and_certificate(setAsActive=True)
    cert_id = cert["certificateId"]
    # WHEN it is replicated, the destination refusing it
    _sync(pipeline, registry_world)
    # THEN nothing reaches the failure queue; the refusal is a record with AWS's code and text
    assert pipeline.failures.sent == []
    refusal = _refusal(pipeline, cert_id)
    assert refusal is not None
    assert refusal.code == "InvalidRequestException"
    assert "issued by AWS IoT" in refusal.message
    assert refusal.reason.startswith(f"cannot be registered in {DST}: InvalidRequestException")
    assert sum(_emf_values(capsys.readouterr().out, CERTIFICATES_NOT_REGISTRABLE_METRIC)) == 1
    # WHEN the certificate changes again in the source (the same refusal)
    registry_world.advance(1)  # a later call (the fake clock stands still otherwise)
    pipeline.source.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
    _sync(pipeline, registry_world)
    # THEN still no failure, one record, and no second count
    assert pipeline.failures.sent == []
    assert pipeline.table.get(EntityKind.CERTIFICATE, cert_id).state["status"] == "INACTIVE"
    assert _refusal(pipeline, cert_id) == refusal
    assert sum(_emf_values(capsys.readouterr().out, CERTIFICATES_NOT_REGISTRABLE_METRIC)) == 0
    # WHEN AWS no longer refuses it (the rule off) and it changes again: registered, record gone
    registry_world.shared_certificate_rule = False
    registry_world.advance(1)
    pipeline.source.update_certificate(certificateId=cert_id, newStatus="ACTIVE")
    _sync(pipeline, registry_world)
    assert pipeline.failures.sent == []
    assert pipeline.destination.describe_certificate(certificateId=cert_id)
    assert _refusal(pipeline, cert_id) is None


def test_the_record_is_dropped_when_the_source_deletes_the_certificate(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    registry_world.shared_certificate_rule = True
    cert = pipeline.source.create_keys_and_certificate(setAsActive=False)
    _sync(pipeline, registry_world)
    assert _refusal(pipeline, cert["certificateId"]) is not None
    registry_world.advance(1)
    pipeline.source.delete_certificate(certificateId=cert["certificateId"])
    _sync(pipeline, registry_world)
    assert pipeline.failures.sent == []
    assert _refusal(pipeline, cert["certificateId"]) is None


def test_the_sandbox_registers_an_aws_issued_certificate_by_default(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # The rule is unconfirmed: the sandbox is not stricter than AWS may be (the demo's devices).
    cert = pipeline.source.create_keys_and_certificate(setAsActive=True)
    _sync(pipeline, registry_world)
    assert pipeline.failures.sent == []
    assert pipeline.destination.describe_certificate(certificateId=cert["certificateId"])


def test_the_opt_in_rule_refuses_a_certificate_of_a_ca_registered_in_the_region(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # The guide's 2022 text: shared only "if the client certificate is signed by a certificate
    # authority (CA) that is NOT registered with AWS IoT" (docs/onboarding-kinds.md, fact 5).
    authority = CertificateAuthority.new()
    dst = pipeline.destination
    dst.register_ca_certificate(caCertificate=authority.pem, certificateMode="SNI_ONLY")
    registry_world.shared_certificate_rule = True
    with pytest.raises(ClientError) as error:
        dst.register_certificate_without_ca(certificatePem=authority.issue("device-1"))
    assert error.value.response["Error"]["Code"] == "InvalidRequestException"
    # A CA not registered there: shared as the guide says it may be.
    other = CertificateAuthority.new("another CA")
    dst.register_certificate_without_ca(certificatePem=other.issue("device-2"))
    registry_world.shared_certificate_rule = False
    dst.register_certificate_without_ca(certificatePem=authority.issue("device-3"))


def test_the_audit_reports_a_refused_certificate_and_plans_no_repair(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    registry_world.shared_certificate_rule = True
    # GIVEN a device whose AWS-issued certificate the destination refused: its thing
    # attachment and policy attachment wait for it, neither retried nor a failure
    src = pipeline.source
    cert = src.create_keys_and_certificate(setAsActive=True)
    cert_id = cert["certificateId"]
    src.create_thing(thingName="device-1")
    src.create_policy(policyName="device", policyDocument=POLICY)
    src.attach_thing_principal(thingName="device-1", principal=cert["certificateArn"])
    src.attach_policy(policyName="device", target=cert["certificateArn"])
    _sync(pipeline, registry_world)
    assert pipeline.failures.sent == []
    refusal = _refusal(pipeline, cert_id)
    assert refusal is not None
    # WHEN the nightly run audits (three-way, the state table read) and plans
    read_table = table_snapshotter(boto3_client, TABLE)  # the in-process table is DST's only
    reads: list[str] = []  # the regions the repair reads certificates in (DescribeCertificate)

    def reader(region: str) -> Inventory:
        reads.append(region)
        return pipeline.inventory(region)

    engine = replace(pipeline.reconciler(), table=lambda _region: read_table(DST), reader=reader)
    audit = engine.explain(engine.audit(SRC, DST))
    plan = engine.plan(audit)
    # THEN the certificate and its attachments are a class of their own, with AWS's reason, and
    # nothing is planned for them (the thing and the policy are in sync)
    kinds = {EntityKind.CERTIFICATE, EntityKind.THING_PRINCIPAL, EntityKind.POLICY_TARGET}
    drifts = audit.report.drifts
    assert {d.entity for d in drifts} == kinds
    for drift in drifts:
        assert (drift.kind, drift.where, drift.refused) == (
            "missing",
            "not_registrable",
            refusal.reason,
        )
    assert audit.report.where_summary()["not_registrable"] == 3
    assert plan.actions == ()
    assert reads == []  # and its PEM is not read for a repair that will not be made
    text = render(audit.report, "table")
    assert refusal.reason in text
    assert "fleet provisioning" in text
    assert to_json(audit.report)["drifts"][0]["refused"] == refusal.reason
    # AND readiness names the device, with AWS's reason (the table's records)
    report = assess(boto3_client, (SRC, DST), Probes(), refused=refusals(pipeline.table, DST))
    [device] = report.not_ready
    assert device.thing == "device-1"
    assert f"certificate {cert_id} {refusal.reason}" in device.reasons[0]
