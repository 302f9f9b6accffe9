"""Issue 28: a plan file cannot do more than the registries call for.

Reproduced as an attacker would (a plan file rewritten, its unkeyed id recomputed) and as an
unlucky operator would (a planning host's clock ahead, a shrunken source applied without
snapshots, policies across accounts): through the CLI (``CliRunner``, moto in process), each
refusal is exit code 2 with one line and writes nothing to the state table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.kinds.certificate import certificate_id_from_pem
from pipeline.model import EntityKind
from pipeline.state import MAX_CLOCK_SKEW_MS
from pipeline.statetable import StateTable
from reconcile.context import Factory
from reconcile.plan import Plan
from sandbox.certificates import self_signed_pem
from sandbox.inprocess import SRC, TABLE, LocalPipeline, create_state_table
from tests.reliability.test_safety import (
    NOW_MS,
    REGIONS,
    Clock,
    apply_args,
    assert_refused,
    forge,
    planned,
    run,
    table_keys,
    things,
)

KEY = "a-key-only-the-operators-know"


@pytest.fixture
def cli(pipeline: LocalPipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Factory:
    monkeypatch.chdir(tmp_path)
    for key in (
        "SOURCE_REGION",
        "TARGET_REGION",
        "STATE_TABLE",
        "PERSIST_STATE_MACHINE_ARN",
        "IOT_CRR_PLAN_KEY",
        "POLICY_ACCOUNT_MAP",
    ):
        monkeypatch.delenv(key, raising=False)
    return Factory(clock=Clock(NOW_MS), show_progress=False)


@pytest.fixture
def source_table(pipeline: LocalPipeline) -> StateTable:
    client = boto3.client("dynamodb", region_name=SRC)
    create_state_table(client, TABLE)
    return StateTable(client, TABLE)


ALLOW_ALL = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }
)


def hazardous_actions(pem: str) -> list[dict[str, Any]]:
    """What the attacker of issue 28 added: a DR certificate revoked, an ``iot:*`` on ``*``
    policy, a thing's type stripped."""
    return [
        {
            "op": "upsert",
            "entity": "certificate",
            "name": certificate_id_from_pem(pem),
            "fields": {"status": "REVOKED", "pem": pem},
            "version": None,
            "reason": "changed: status",
        },
        {
            "op": "upsert",
            "entity": "policy",
            "name": "allow-everything",
            "fields": {"document": ALLOW_ALL},
            "version": None,
            "reason": "missing: in us-east-1, not in eu-west-1",
        },
        {
            "op": "upsert",
            "entity": "thing",
            "name": "t0",
            "fields": {"thing_type": None, "attributes": {}, "billing_group": None},
            "version": None,
            "reason": "changed: thing_type",
        },
    ]


def rewrite(path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        extra = hazardous_actions(self_signed_pem("dr-device"))
        data["actions"].extend({**a, **_new_fields(data["actions"][0], a)} for a in extra)

    forge(path, edit)


def _new_fields(template: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    """Whatever fields this plan version gives an action, with the forger's values."""
    return {key: value for key, value in template.items() if key not in action} | action


# --- item 2: an unkeyed plan id is no authority ---------------------------------------------


def test_a_rewritten_unsigned_plan_is_refused_without_verification(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable, tmp_path: Path
) -> None:
    # GIVEN an honest plan rewritten by someone who knows the format: a DR certificate revoked,
    # an iot:* on * policy installed, a thing's type stripped, the (unkeyed) id recomputed
    path = planned(pipeline, cli, tmp_path)
    rewrite(path)
    assert len(Plan.load(path).actions) == 6  # the file itself is well formed
    # WHEN it is applied without verification and without a key
    result = run(cli, *apply_args(path, "--no-verify"))
    # THEN it is refused before anything is written: without a key only --verify vouches
    assert_refused(result, "unsigned", "--verify")
    assert table_keys(source_table) == []


def test_the_same_rewritten_plan_is_refused_by_verification(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable, tmp_path: Path
) -> None:
    path = planned(pipeline, cli, tmp_path)
    rewrite(path)
    assert_refused(run(cli, *apply_args(path)), "differ from a plan rebuilt", "3 not called for")
    assert table_keys(source_table) == []


def revoked_in_source(pipeline: LocalPipeline) -> str:
    """A certificate ACTIVE in the destination and REVOKED in the source: the plan revokes it."""
    pem = self_signed_pem("device-1")
    for iot in (pipeline.source, pipeline.destination):
        iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    cert_id = certificate_id_from_pem(pem)
    pipeline.source.update_certificate(certificateId=cert_id, newStatus="REVOKED")
    return cert_id


def test_a_signed_plan_revokes_or_grants_only_after_verification(
    *,
    pipeline: LocalPipeline,
    cli: Factory,
    source_table: StateTable,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a signed plan that revokes a certificate and installs a policy, both called for by
    # the registries (the key holder vouches for the file, not for what the registries hold)
    monkeypatch.setenv("IOT_CRR_PLAN_KEY", KEY)
    cert_id = revoked_in_source(pipeline)
    pipeline.source.create_policy(policyName="allow-everything", policyDocument=ALLOW_ALL)
    path = tmp_path / "plan.json"
    assert run(cli, "plan", *REGIONS, "--plan-file", str(path)).exit_code == 1
    kinds = {(a.entity, a.name) for a in Plan.load(path, key=KEY.encode()).actions}
    assert kinds == {
        (EntityKind.CERTIFICATE, cert_id),
        (EntityKind.POLICY, "allow-everything"),
    }
    # WHEN it is applied without verification THEN the irreversible and widening changes are
    # refused on the file's word alone, naming them
    result = run(cli, *apply_args(path, "--no-verify"))
    assert_refused(result, "revokes 1 certificate", "policy allow-everything", "--verify")
    assert table_keys(source_table) == []
    # AND verified against fresh snapshots they go through, as `reconcile --apply` would
    result = run(cli, *apply_args(path))
    assert result.exit_code == 0, result.output
    assert "revoke certificate" in result.stderr  # the summary shows them before emitting
    assert table_keys(source_table) == [f"CERT#{cert_id}", "POLICY#allow-everything"]


def test_a_signed_plan_stripping_a_type_is_refused_without_verification(
    *,
    pipeline: LocalPipeline,
    cli: Factory,
    source_table: StateTable,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the source removed a thing's type (an untyped thing keeps at most 3 attributes)
    monkeypatch.setenv("IOT_CRR_PLAN_KEY", KEY)
    for iot in (pipeline.source, pipeline.destination):
        iot.create_thing_type(thingTypeName="Gateway")
        iot.create_thing(thingName="gw-1", thingTypeName="Gateway")
    pipeline.source.update_thing(thingName="gw-1", removeThingType=True)
    path = tmp_path / "plan.json"
    assert run(cli, "plan", *REGIONS, "--plan-file", str(path)).exit_code == 1
    result = run(cli, *apply_args(path, "--no-verify"))
    assert_refused(result, "removes the type of 1 thing", "gw-1")
    assert table_keys(source_table) == []
    assert run(cli, *apply_args(path)).exit_code == 0
    assert table_keys(source_table) == ["THING#gw-1"]


def test_a_signed_plan_of_registry_changes_applies_without_verification(
    *,
    pipeline: LocalPipeline,
    cli: Factory,
    source_table: StateTable,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The purpose of a key: a reviewed plan applied later without snapshotting both regions.
    monkeypatch.setenv("IOT_CRR_PLAN_KEY", KEY)
    path = planned(pipeline, cli, tmp_path)
    result = run(cli, *apply_args(path, "--no-verify"))
    assert result.exit_code == (1 if "held back" in result.output else 0), result.output
    assert len(table_keys(source_table)) == 3


# --- item 3: a plan stamped ahead of the clock ------------------------------------------------


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "no-verify"])
def test_a_plan_stamped_ahead_of_the_clock_is_refused(
    *,
    pipeline: LocalPipeline,
    cli: Factory,
    source_table: StateTable,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    verify: bool,
) -> None:
    # GIVEN a plan whose snapshot is stamped ~5 minutes ahead (within the skew persist allows
    # a registry event): its corrective events would make every real change to those things
    # in the next 5 minutes "stale"
    monkeypatch.setenv("IOT_CRR_PLAN_KEY", KEY)
    assert isinstance(cli.clock, Clock)
    ahead = MAX_CLOCK_SKEW_MS - 10_000
    cli.clock.now = NOW_MS + ahead
    path = planned(pipeline, cli, tmp_path)  # made on a host whose clock is ahead
    cli.clock.now = NOW_MS
    # WHEN it is applied here THEN it is refused, naming the stamp
    result = run(cli, *apply_args(path, *([] if verify else ["--no-verify"])))
    assert_refused(result, "source_taken_at", "ahead of this machine's clock")
    assert table_keys(source_table) == []
    # AND once this clock has passed the stamp the same plan goes through
    cli.clock.now = NOW_MS + ahead
    last = run(cli, *apply_args(path, *([] if verify else ["--no-verify"])))
    assert "emitted: applied=3 failed=0" in last.output
    # (exit 1 where the plan held a delete back: drift left unrepaired, issue 22 item 9)
    assert last.exit_code == (1 if "held back" in last.output else 0), last.output


# --- item 8: apply --no-verify enforces --min-source-ratio -----------------------------------


def test_apply_without_verification_enforces_the_source_ratio(
    *,
    pipeline: LocalPipeline,
    cli: Factory,
    source_table: StateTable,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a signed plan made under a lowered ratio: the source has 4 things, the target 10,
    # and the plan deletes the 6 the source lacks
    monkeypatch.setenv("IOT_CRR_PLAN_KEY", KEY)
    things(pipeline.source, range(4))
    things(pipeline.destination, range(10))
    path = tmp_path / "plan.json"
    lowered = ("--min-source-ratio", "0.3", "--allow-deletes")
    made = run(cli, "plan", *REGIONS, "--plan-file", str(path), *lowered)
    assert made.exit_code == 1, made.output
    assert Plan.load(path, key=KEY.encode()).counts["delete.thing"] == 6
    # WHEN it is applied without verification under apply's default ratio (0.5)
    result = run(cli, *apply_args(path, "--no-verify", "--allow-deletes"))
    # THEN apply's own guard refuses it, as the rebuilt plan would have been
    assert_refused(result, "min_source_ratio", "4 things", "10")
    assert table_keys(source_table) == []
    result = run(cli, *apply_args(path, "--no-verify", *lowered))
    assert result.exit_code == 0, result.output
    assert len(table_keys(source_table)) == 6


# --- apply takes the policy account map its --verify rebuilds with ---------------------------

SRC_ACCOUNT, DST_ACCOUNT = "111111111111", "222222222222"


def _policy(region: str, account: str) -> str:
    resource = f"arn:aws:iot:{region}:{account}:topic/telemetry"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": resource}],
        }
    )


@pytest.mark.parametrize("how", ["option", "environment"])
def test_apply_verifies_cross_account_policies_with_the_account_map(
    *,
    pipeline: LocalPipeline,
    cli: Factory,
    source_table: StateTable,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    # GIVEN the destination is another account: its copy of a policy names that account
    pipeline.source.create_policy(policyName="device", policyDocument=_policy(SRC, SRC_ACCOUNT))
    pipeline.destination.create_policy(
        policyName="device", policyDocument=_policy("eu-west-1", DST_ACCOUNT)
    )
    things(pipeline.source, range(2))
    mapping = f"{SRC_ACCOUNT}={DST_ACCOUNT}"
    path = tmp_path / "plan.json"
    made = run(cli, "plan", *REGIONS, "--plan-file", str(path), "--policy-account-map", mapping)
    assert made.exit_code == 1, made.output
    assert {a.entity for a in Plan.load(path).actions} == {EntityKind.THING}  # policy in sync
    # WHEN apply (verifying by default) is given the same map THEN it rebuilds the same plan
    if how == "option":
        result = run(cli, *apply_args(path, "--policy-account-map", mapping))
    else:
        monkeypatch.setenv("POLICY_ACCOUNT_MAP", mapping)
        result = run(cli, *apply_args(path))
    assert result.exit_code == 0, result.output
    assert len(table_keys(source_table)) == 2
