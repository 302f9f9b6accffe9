"""Reconciliation of the onboarding kinds: the diff (ARNs compared as the replicator writes
them), the plan's guards, and whole runs on moto in two regions (snapshot both, diff, plan, emit,
converge): created, changed and deleted in the source, repaired in the destination."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from moto import mock_aws

from pipeline.events import corrective_event, parse_event
from pipeline.model import EntityKind
from reconcile.diff import diff_snapshots
from reconcile.emit import corrective_changes
from reconcile.guards import Guards
from reconcile.planner import build_plan
from reconcile.snapshot import Snapshot
from sandbox.inprocess import DST, SRC, LocalPipeline

NOW = 1_796_119_205_000
ACCOUNTS = {"111111111111": "222222222222"}


def _alias(account: str, seconds: int = 3600) -> dict[str, Any]:
    role = f"arn:aws:iam::{account}:role/device-credentials"
    return {"name": "fleet", "role_arn": role, "credential_duration_seconds": seconds}


def test_a_role_alias_is_compared_with_the_replicators_account_mapping() -> None:
    source = Snapshot.from_records(SRC, NOW, role_aliases=[_alias("111111111111")])
    target = Snapshot.from_records(DST, NOW, role_aliases=[_alias("222222222222")])
    (drift,) = diff_snapshots(source, target).drifts
    assert (drift.entity, drift.kind, drift.severity) == (EntityKind.ROLE_ALIAS, "changed", "high")
    assert diff_snapshots(source, target, policy_accounts=ACCOUNTS).drifts == ()
    # The state table holds the source's role: compared with the source as it is, with the
    # destination as written
    table = replace(
        Snapshot.from_records(SRC, NOW, role_aliases=[_alias("111111111111")]),
        origin="state_table",
    )
    assert diff_snapshots(source, table, policy_accounts=ACCOUNTS).drifts == ()
    assert diff_snapshots(table, target, policy_accounts=ACCOUNTS).drifts == ()


def test_a_changed_duration_is_planned_with_the_sources_state() -> None:
    source = Snapshot.from_records(SRC, NOW, role_aliases=[_alias("111111111111", 900)])
    target = Snapshot.from_records(DST, NOW, role_aliases=[_alias("111111111111", 3600)])
    report = diff_snapshots(source, target)
    (drift,) = report.drifts
    assert drift.severity == "medium"
    assert drift.details == {"credential_duration_seconds": {"source": 900, "target": 3600}}
    plan = build_plan(report, source, target, Guards(), now=NOW)
    (action,) = plan.actions
    assert (action.op, action.entity, action.fields) == (
        "upsert",
        EntityKind.ROLE_ALIAS,
        {
            "role_arn": "arn:aws:iam::111111111111:role/device-credentials",
            "credential_duration_seconds": 900,
        },
    )
    for change in corrective_changes(plan, SRC, sync="s"):  # persist accepts it, validated
        assert parse_event(corrective_event(change), region=SRC).fields == action.fields


def test_a_destination_only_alias_is_deleted_only_when_deletes_are_allowed() -> None:
    source = Snapshot.from_records(SRC, NOW, things=[{"name": "t"}])
    target = Snapshot.from_records(
        DST, NOW, things=[{"name": "t"}], role_aliases=[_alias("111111111111")]
    )
    report = diff_snapshots(source, target)
    assert [(d.entity, d.kind) for d in report.drifts] == [(EntityKind.ROLE_ALIAS, "extra")]
    guarded = build_plan(report, source, target, Guards(), now=NOW)
    assert list(guarded.actions) == []
    assert [(s.entity, s.name) for s in guarded.skipped] == [(EntityKind.ROLE_ALIAS, "fleet")]
    allowed = build_plan(report, source, target, Guards(allow_deletes=True), now=NOW)
    assert [(a.op, a.name) for a in allowed.actions] == [("delete", "fleet")]


def _authorizer(region: str, account: str) -> dict[str, Any]:
    return {
        "name": "tokens",
        "function_arn": f"arn:aws:lambda:{region}:{account}:function:authorize",
        "token_key_name": "token",
        "token_signing_public_keys": {"key1": "k"},
        "status": "ACTIVE",
        "signing_disabled": False,
        "caching_for_http": False,
        "default": True,
    }


def test_an_authorizers_function_is_compared_as_the_destination_regions() -> None:
    source = Snapshot.from_records(SRC, NOW, authorizers=[_authorizer(SRC, "111111111111")])
    target = Snapshot.from_records(DST, NOW, authorizers=[_authorizer(DST, "111111111111")])
    assert diff_snapshots(source, target).drifts == ()
    other_account = Snapshot.from_records(DST, NOW, authorizers=[_authorizer(DST, "222222222222")])
    (drift,) = diff_snapshots(source, other_account).drifts
    assert (drift.entity, drift.severity) == (EntityKind.AUTHORIZER, "high")
    assert diff_snapshots(source, other_account, policy_accounts=ACCOUNTS).drifts == ()
    # The plan carries the source's state (the replicator rewrites it as it writes)
    inactive = Snapshot.from_records(
        DST, NOW, authorizers=[{**_authorizer(DST, "111111111111"), "status": "INACTIVE"}]
    )
    report = diff_snapshots(source, inactive)
    assert [d.details for d in report.drifts] == [
        {"status": {"source": "ACTIVE", "target": "INACTIVE"}}
    ]
    (action,) = build_plan(report, source, inactive, Guards(), now=NOW).actions
    assert action.fields["function_arn"] == _authorizer(SRC, "111111111111")["function_arn"]


# --- whole runs on moto ----------------------------------------------------------------------


@pytest.fixture
def pipeline(pipeline_environment: None) -> Iterator[LocalPipeline]:
    with mock_aws():
        yield LocalPipeline()


def test_reconciliation_creates_changes_and_deletes_role_aliases(pipeline: LocalPipeline) -> None:
    src, dst = pipeline.source, pipeline.destination
    role = "arn:aws:iam::123456789012:role/device-credentials"
    # GIVEN role aliases in the source only (as if CloudTrail had delivered none of the calls)
    # and one in the destination only
    src.create_role_alias(roleAlias="fleet", roleArn=role, credentialDurationSeconds=900)
    src.create_role_alias(roleAlias="gateways", roleArn=role)
    dst.create_role_alias(roleAlias="stale", roleArn=role)
    # WHEN reconciliation runs and the pipeline converges the destination
    pipeline.reconcile()
    pipeline.converge_fully()
    # THEN the destination holds the source's aliases, and not its own
    assert sorted(dst.list_role_aliases()["roleAliases"]) == ["fleet", "gateways"]
    fleet = dst.describe_role_alias(roleAlias="fleet")["roleAliasDescription"]
    assert (fleet["roleArn"], fleet["credentialDurationSeconds"]) == (role, 900)
    # AND a change and a delete the stream lost are repaired by the next run
    src.update_role_alias(roleAlias="fleet", credentialDurationSeconds=7200)
    src.delete_role_alias(roleAlias="gateways")
    report = pipeline.audit()
    assert sorted((d.name, d.kind) for d in report.drifts) == [
        ("fleet", "changed"),
        ("gateways", "extra"),
    ]
    pipeline.reconcile()
    pipeline.converge_fully()
    assert dst.list_role_aliases()["roleAliases"] == ["fleet"]
    fleet = dst.describe_role_alias(roleAlias="fleet")["roleAliasDescription"]
    assert fleet["credentialDurationSeconds"] == 7200
    assert pipeline.audit().in_sync
    assert pipeline.audit().counts[EntityKind.ROLE_ALIAS.value] == 1
