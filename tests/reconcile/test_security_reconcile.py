"""Reconciliation of certificates, policies and their attachments: the diff and the plan with
their guards (pure), and a whole run on moto in two regions (snapshot both, diff, plan, emit,
converge): what the streaming path never delivered is repaired, and a run after it is in sync."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pipeline.events import corrective_event
from pipeline.model import EntityKind
from pipeline.policyrewrite import canonical_document
from reconcile.cli import main
from reconcile.diff import diff_snapshots
from reconcile.emit import corrective_changes
from reconcile.guards import Guards
from reconcile.planner import build_plan
from reconcile.snapshot import Snapshot
from sandbox.certificates import self_signed_pem
from sandbox.inprocess import DST, SRC, LocalPipeline

CERT = "c" * 64
OTHER = "d" * 64
PEM = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
DOC = '{"Statement":[],"Version":"2012-10-17"}'
NOW = 1_796_119_205_000


def snapshots(
    source: dict[str, list[dict[str, Any]]], target: dict[str, list[dict[str, Any]]]
) -> tuple[Snapshot, Snapshot]:
    return Snapshot.from_records(SRC, NOW, **source), Snapshot.from_records(DST, NOW, **target)


def test_an_active_copy_of_a_revoked_certificate_is_high_severity() -> None:
    source, target = snapshots(
        {"certificates": [{"name": CERT, "status": "REVOKED", "pem": PEM}]},
        {"certificates": [{"name": CERT, "status": "ACTIVE", "pem": PEM}]},
    )
    (drift,) = diff_snapshots(source, target).drifts
    assert (drift.entity, drift.kind, drift.severity) == (
        EntityKind.CERTIFICATE,
        "changed",
        "high",
    )
    assert drift.details == {"status": {"source": "REVOKED", "target": "ACTIVE"}}


def test_a_destination_only_certificate_is_reported_not_removed_by_default() -> None:
    source, target = snapshots(
        {"things": [{"name": "t"}]},
        {
            "things": [{"name": "t"}],
            "certificates": [{"name": OTHER, "status": "ACTIVE", "pem": PEM}],
            "policies": [{"name": "p", "document": DOC}],
        },
    )
    report = diff_snapshots(source, target)
    assert {(d.entity, d.kind) for d in report.drifts} == {
        (EntityKind.CERTIFICATE, "extra"),
        (EntityKind.POLICY, "extra"),
    }
    guarded = build_plan(report, source, target, Guards(), now=NOW)
    assert guarded.actions == () or list(guarded.actions) == []
    assert {(s.entity, s.name) for s in guarded.skipped} == {
        (EntityKind.CERTIFICATE, OTHER),
        (EntityKind.POLICY, "p"),
    }
    allowed = build_plan(report, source, target, Guards(allow_deletes=True), now=NOW)
    assert {(a.op, a.entity, a.name) for a in allowed.actions} == {
        ("delete", EntityKind.CERTIFICATE, OTHER),
        ("delete", EntityKind.POLICY, "p"),
    }


def test_missing_entities_are_planned_in_dependency_order_with_their_state() -> None:
    source, target = snapshots(
        {
            "things": [{"name": "t"}],
            "certificates": [{"name": CERT, "status": "ACTIVE", "pem": PEM}],
            "policies": [{"name": "p", "document": DOC}],
            "thing_principals": [{"name": f"t#{CERT}", "exclusive": True}],
            "policy_targets": [{"name": f"p#cert/{CERT}"}],
        },
        {"things": [{"name": "t"}]},
    )
    report = diff_snapshots(source, target)
    plan = build_plan(report, source, target, Guards(), now=NOW)
    assert [a.entity for a in plan.actions] == [
        EntityKind.CERTIFICATE,
        EntityKind.POLICY,
        EntityKind.THING_PRINCIPAL,
        EntityKind.POLICY_TARGET,
    ]
    state = {a.entity: a.fields for a in plan.actions}
    assert state[EntityKind.CERTIFICATE] == {"status": "ACTIVE", "pem": PEM, "ca": None}
    assert state[EntityKind.THING_PRINCIPAL] == {"exclusive": True}
    # Each becomes a corrective event persist accepts (names and fields validated).
    for change in corrective_changes(plan, SRC, sync="s"):
        assert corrective_event(change)["name"] == change.name


# --- a whole run on moto ---------------------------------------------------------------------


def test_reconciliation_repairs_what_the_stream_never_delivered(pipeline: LocalPipeline) -> None:
    # GIVEN a device, its certificate, a policy and their attachments in the source only (as if
    # CloudTrail had delivered none of the calls)
    src, dst = pipeline.source, pipeline.destination
    src.create_thing(thingName="device-1")
    cert = src.register_certificate_without_ca(certificatePem=self_signed_pem(), status="ACTIVE")
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "Resource": f"arn:aws:iot:{SRC}:123456789012:topic/t",
                }
            ],
        }
    )
    src.create_policy(policyName="device", policyDocument=document)
    src.attach_policy(policyName="device", target=cert["certificateArn"])
    src.attach_thing_principal(thingName="device-1", principal=cert["certificateArn"])
    # WHEN reconciliation runs and the pipeline converges the destination
    pipeline.reconcile()
    pipeline.converge_fully()
    # THEN the destination has them all
    copy = dst.describe_certificate(certificateId=cert["certificateId"])["certificateDescription"]
    assert copy["status"] == "ACTIVE"
    assert f"arn:aws:iot:{DST}:" in dst.get_policy(policyName="device")["policyDocument"]
    assert dst.list_targets_for_policy(policyName="device")["targets"] == [copy["certificateArn"]]
    assert dst.list_thing_principals(thingName="device-1")["principals"] == [copy["certificateArn"]]
    # AND a revocation the stream lost is repaired by the next run, which then finds no drift
    src.update_certificate(certificateId=cert["certificateId"], newStatus="REVOKED")
    report = pipeline.audit()
    assert [(d.entity, d.kind, d.severity) for d in report.drifts] == [
        (EntityKind.CERTIFICATE, "changed", "high")
    ]
    pipeline.reconcile()
    pipeline.converge_fully()
    status = dst.describe_certificate(certificateId=cert["certificateId"])
    assert status["certificateDescription"]["status"] == "REVOKED"
    assert pipeline.audit().in_sync


def _policy(region: str, account: str) -> dict[str, Any]:
    resource = f"arn:aws:iot:{region}:{account}:topic/telemetry"
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": resource}]}
    # Snapshots hold documents canonical (pipeline.policyrewrite.canonical_document).
    return {"name": "p", "document": canonical_document(json.dumps(document))}


def policy_snapshots() -> tuple[Snapshot, Snapshot]:
    """The source's policy, and its copy written for another region in another account."""
    return snapshots(
        {"policies": [_policy(SRC, "111111111111")]},
        {"policies": [_policy(DST, "222222222222")]},
    )


def test_policies_are_compared_with_the_replicators_account_mapping() -> None:
    source, target = policy_snapshots()
    # Without the mapping, the copy's account is drift; with it, the copy is as written.
    assert [d.kind for d in diff_snapshots(source, target).drifts] == ["changed"]
    mapped = diff_snapshots(source, target, policy_accounts={"111111111111": "222222222222"})
    assert mapped.drifts == ()


def _table(**records: Any) -> Snapshot:
    """The state table as read in the source region (``reconcile.explain.read_table``)."""
    return replace(Snapshot.from_records(SRC, NOW, **records), origin="state_table")


def test_the_state_table_is_compared_as_holding_the_sources_documents() -> None:
    """The table holds documents as the source wrote them: source vs table compares them as
    they are, table vs destination rewrites them from the table's region (``--table-vs-target``
    and ``--explain``)."""
    accounts = {"111111111111": "222222222222"}
    source, target = policy_snapshots()
    table = _table(policies=[_policy(SRC, "111111111111")])
    assert diff_snapshots(source, table, policy_accounts=accounts).drifts == ()
    assert diff_snapshots(table, target, policy_accounts=accounts).drifts == ()
    stale = _table(policies=[_policy(SRC, "333333333333")])
    assert [d.kind for d in diff_snapshots(source, stale).drifts] == ["changed"]
    assert [d.kind for d in diff_snapshots(stale, target, policy_accounts=accounts).drifts] == [
        "changed"
    ]


def test_the_cli_takes_the_replicators_account_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POLICY_ACCOUNT_MAP", raising=False)
    for snapshot, name in zip(policy_snapshots(), ("src", "dst"), strict=True):
        snapshot.save(tmp_path / name)
    audit = ["audit", "--from-snapshots", str(tmp_path / "src"), str(tmp_path / "dst")]
    assert CliRunner().invoke(main, audit).exit_code == 1
    mapped = CliRunner().invoke(
        main, audit, env={"POLICY_ACCOUNT_MAP": "111111111111=222222222222"}
    )
    assert mapped.exit_code == 0, mapped.output
    # A bad map is a usage error naming the option
    bad = CliRunner().invoke(main, [*audit, "--policy-account-map", "us-east-1=eu-west-1"])
    assert bad.exit_code == 2
    assert "--policy-account-map" in bad.output and "us-east-1 is a region" in bad.output


AMBIGUOUS = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:*",'
    '"Resource":"*","Effect":"Allow"}]}'
)


def test_an_ambiguous_source_policy_is_reported_and_refused_alone_never_stopping_the_run(
    pipeline: LocalPipeline,
) -> None:
    # GIVEN a source policy that repeats a key, next to an ordinary one, neither streamed
    pipeline.source.create_policy(policyName="odd", policyDocument=AMBIGUOUS)
    pipeline.source.create_policy(policyName="device", policyDocument=DOC)
    # WHEN the nightly audit runs, THEN it completes and reports both as missing, the ambiguous
    # document as written (no parser's choice of its values)
    report = pipeline.audit()
    assert {(d.entity, d.name, d.kind) for d in report.drifts} == {
        (EntityKind.POLICY, "odd", "missing"),
        (EntityKind.POLICY, "device", "missing"),
    }
    snapshot = pipeline.snapshot(SRC)
    documents = dict(zip(snapshot.policies["name"], snapshot.policies["document"], strict=True))
    assert documents["odd"] == AMBIGUOUS
    # AND the repair refuses that one change, naming the key, and emits the other
    result = pipeline.reconcile()
    (failure,) = result.failures
    assert (failure.key, failure.error, failure.retryable) == (
        "POLICY#odd",
        "DuplicateKeyError",
        False,
    )
    assert "repeats the key Statement[0].Effect" in failure.message
    pipeline.converge_fully()
    assert pipeline.destination.list_policies()["policies"][0]["policyName"] == "device"
    assert len(pipeline.destination.list_policies()["policies"]) == 1
