"""The ``iot-crr`` CLI on moto (in-process, two regions): commands, outputs and exit codes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import click
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from click.testing import CliRunner, Result
from moto import mock_aws

from pipeline import aws
from pipeline.events import parse_event
from pipeline.model import EntityKind
from pipeline.statetable import StateTable
from reconcile import cli
from reconcile.cli import COMMANDS_ENTRY_POINTS, main
from reconcile.context import Factory
from reconcile.guards import Guards
from reconcile.plan import Plan

SRC, DST = "us-east-1", "eu-west-1"
TABLE = "crr-state"
REGIONS = ["--source-region", SRC, "--target-region", DST]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key in (
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
        "SOURCE_REGION",
        "TARGET_REGION",
        "IOT_CRR_PLAN_KEY",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.chdir(tmp_path)  # no stray .iotdriftignore from the working tree
    with mock_aws():
        yield


def seed(region: str, *, extra_thing: str | None = None, attr: str = "1") -> None:
    iot = aws.client("iot", region)
    iot.create_thing_type(thingTypeName="sensor", thingTypeProperties={"searchableAttributes": []})
    iot.create_thing_group(thingGroupName="building")
    iot.create_thing_group(thingGroupName="floor-1", parentGroupName="building")
    iot.create_billing_group(billingGroupName="ops")
    iot.create_thing(
        thingName="s1", thingTypeName="sensor", attributePayload={"attributes": {"a": attr}}
    )
    iot.add_thing_to_thing_group(thingGroupName="floor-1", thingName="s1")
    iot.add_thing_to_billing_group(billingGroupName="ops", thingName="s1")
    if extra_thing:
        iot.create_thing(thingName=extra_thing)


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def factory(aws_env: None) -> Factory:
    return Factory(clock=Clock(1_800_000_000_000), show_progress=False)


def run(factory: Factory, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=factory)


def create_table() -> StateTable:
    ddb = aws.client("dynamodb", SRC)
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return StateTable(ddb, TABLE)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


# --- audit ------------------------------------------------------------------------------------


def test_piped_output_shows_no_progress(aws_env: None) -> None:
    # GIVEN the default factory (progress when stdout is a terminal) and a piped stdout
    seed(SRC)
    seed(DST)
    result = run(Factory(clock=Clock(1_800_000_000_000)), "audit", *REGIONS)
    # THEN only the report: nothing on stderr, no progress lines on stdout
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "snapshot us-east-1" not in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--explain"], "need --state-table"),
        (["--table-vs-target"], "need --state-table"),
        (["--explain", "--table-vs-target", "--state-table", TABLE], "alternatives"),
    ],
)
def test_explain_options_are_checked(factory: Factory, args: list[str], fragment: str) -> None:
    result = run(factory, "audit", *REGIONS, *args)
    assert result.exit_code == 2
    assert fragment in result.stderr


def test_audit_explain_on_moto_says_nothing_reached_the_table(factory: Factory) -> None:
    # GIVEN drift and an empty state table (no event ever reached the pipeline)
    seed(SRC, extra_thing="only-in-source")
    seed(DST)
    create_table()
    result = run(factory, "audit", *REGIONS, "--explain", "--state-table", TABLE, "-q")
    assert result.exit_code == 1, result.output
    assert re.search(r"^lost_before_table +1 ", result.stdout, re.M)  # the where table
    assert "registry events are enabled" in " ".join(result.stdout.split())  # wrapped prose


def test_audit_in_sync_exits_0(factory: Factory) -> None:
    seed(SRC)
    seed(DST)
    result = run(factory, "audit", *REGIONS)
    assert result.exit_code == 0, result.output


def test_audit_with_drift_exits_1_and_reports_json(factory: Factory) -> None:
    # GIVEN the target lacks one thing and has another attribute value
    seed(SRC, extra_thing="only-in-source")
    seed(DST, attr="2")
    # WHEN audited as JSON
    result = run(factory, "audit", *REGIONS, "--format", "json")
    # THEN exit 1 and both differences are in the report, once each
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    found = sorted((d["entity"], d["name"], d["kind"]) for d in report["drifts"])
    assert found == [("thing", "only-in-source", "missing"), ("thing", "s1", "changed")]


def test_regions_come_from_the_environment(
    factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(SRC, extra_thing="x")
    seed(DST)
    monkeypatch.setenv("SOURCE_REGION", SRC)
    monkeypatch.setenv("TARGET_REGION", DST)
    assert run(factory, "audit").exit_code == 1


def test_ignore_pattern_silences_drift_and_output_goes_to_a_file(
    factory: Factory, tmp_path: Path
) -> None:
    seed(SRC, extra_thing="tmp-1")
    seed(DST)
    out = tmp_path / "report.md"
    result = run(
        factory, "audit", *REGIONS, "--ignore", "thing:tmp-*", "--format", "markdown",
        "--output", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.read_text().strip()
    assert result.stdout == ""


def test_default_ignore_file_is_read_when_present(factory: Factory, tmp_path: Path) -> None:
    seed(SRC, extra_thing="tmp-1")
    seed(DST)
    assert run(factory, "audit", *REGIONS).exit_code == 1
    (tmp_path / ".iotdriftignore").write_text("# test fixtures\nthing:tmp-*\n")
    assert run(factory, "audit", *REGIONS).exit_code == 0


def test_snapshot_then_audit_from_snapshots(factory: Factory, tmp_path: Path) -> None:
    seed(SRC, extra_thing="x")
    seed(DST)
    for region, name in ((SRC, "src"), (DST, "dst")):
        result = run(factory, "snapshot", "--region", region, "--out", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        assert "2 things" in result.stdout or "1 things" in result.stdout
    result = run(factory, "audit", "--from-snapshots", str(tmp_path / "src"), str(tmp_path / "dst"))
    assert result.exit_code == 1, result.output


# --- errors -----------------------------------------------------------------------------------


def registry_never_read(service: str, region: str) -> Any:
    """A client factory under which reading a registry fails the test: what is refused before
    the audit must be refused before any snapshot."""
    if service == "iot":
        pytest.fail(f"the registry in {region} was read before the refusal")
    return aws.client(service, region)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["audit", *REGIONS, "--output", "missing/report.md"], "its directory missing does not"),
        (["audit", *REGIONS, "--output", "."], "is a directory"),
        (["plan", *REGIONS, "--plan-file", "missing/plan.json"], "its directory missing does not"),
        (["plan", *REGIONS, "--out", "missing/plan.json"], "its directory missing does not"),
        (["reconcile", *REGIONS, "--output", "missing/r.json"], "its directory missing does not"),
        (["snapshot", "--region", SRC, "--out", "busy"], "busy: not empty and not a snapshot"),
    ],
)
def test_files_a_command_writes_are_checked_before_the_audit(
    aws_env: None, tmp_path: Path, args: list[str], fragment: str
) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    result = run(Factory(client=registry_never_read, show_progress=False), *args)
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr, result.stderr


def test_snapshot_into_a_directory_holding_a_snapshot_says_it_replaced_it(
    factory: Factory, tmp_path: Path
) -> None:
    seed(SRC)
    out = str(tmp_path / "snap")
    assert "replaced" not in run(factory, "snapshot", "--region", SRC, "--out", out).stdout
    again = run(factory, "snapshot", "--region", SRC, "--out", out)
    assert again.exit_code == 0, again.output
    assert again.stdout.rstrip().endswith("(replaced the snapshot there)")


@pytest.mark.parametrize(
    "args",
    [
        ["audit", *REGIONS, "--explain"],
        ["audit", *REGIONS, "--table-vs-target"],
        ["reconcile", *REGIONS, "--apply", "--via", "table"],
        ["plan", *REGIONS, "--plan-file", "p.json", "--failback"],
    ],
)
def test_an_unknown_state_table_is_named_with_its_region_before_the_audit(
    aws_env: None, args: list[str]
) -> None:
    result = run(
        Factory(client=registry_never_read, show_progress=False),
        *args,
        "--state-table",
        "no-such-table",
    )
    assert_one_line_error(result, f"{SRC}: state table 'no-such-table' does not exist")


@pytest.mark.parametrize(
    "args",
    [
        ["audit"],
        ["audit", "--source-region", SRC],
        ["audit", "--source-region", SRC, "--target-region", SRC],
        ["audit", *REGIONS, "--format", "yaml"],
        ["reconcile", *REGIONS, "--apply"],  # no state machine ARN
        ["reconcile", *REGIONS, "--apply", "--via", "table"],  # no table
    ],
)
def test_bad_arguments_exit_2(factory: Factory, args: list[str]) -> None:
    result = run(factory, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


class DeniedIot:
    """An IoT client whose every call is refused, as with missing IAM permissions."""

    def __getattr__(self, operation: str) -> Any:
        def refuse(**_: Any) -> Any:
            response: dict[str, Any] = {
                "Error": {"Code": "AccessDeniedException", "Message": "not allowed"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            }
            raise ClientError(response, operation)  # type: ignore[arg-type]

        return refuse


def test_aws_errors_exit_2_with_one_line(aws_env: None) -> None:
    factory = Factory(client=lambda service, region: DeniedIot(), show_progress=False)
    result = run(factory, "audit", *REGIONS)
    assert_one_line_error(result, "AccessDeniedException")


def test_bad_ignore_pattern_exits_2(factory: Factory) -> None:
    result = run(factory, "audit", *REGIONS, "--ignore", "nonsense")
    assert_one_line_error(result)


# --- plan and apply ---------------------------------------------------------------------------


def test_plan_saves_a_plan_and_exits_1(factory: Factory, tmp_path: Path) -> None:
    seed(SRC, extra_thing="x")
    seed(DST)
    path = tmp_path / "plan.json"
    result = run(factory, "plan", *REGIONS, "--plan-file", str(path))
    assert result.exit_code == 1, result.output
    plan = Plan.load(path)
    assert [(a.op, a.entity, a.name) for a in plan.actions] == [("upsert", EntityKind.THING, "x")]
    assert "upsert" in result.stdout and "x" in result.stdout


def test_plan_in_sync_exits_0(factory: Factory, tmp_path: Path) -> None:
    seed(SRC)
    seed(DST)
    result = run(factory, "plan", *REGIONS, "--plan-file", str(tmp_path / "p.json"))
    assert result.exit_code == 0, result.output
    assert Plan.load(tmp_path / "p.json").is_empty


def test_refused_plan_exits_2(factory: Factory, tmp_path: Path) -> None:
    # A destination that holds part of the fleet (into an empty one the cap does not apply)
    seed(SRC, extra_thing="x")
    seed(DST, attr="2")
    result = run(
        factory, "plan", *REGIONS, "--plan-file", str(tmp_path / "p.json"), "--max-changes", "1"
    )
    assert_one_line_error(result, "max_changes")
    assert "--max-changes" in result.output  # the knob of the entry point that refused
    assert not (tmp_path / "p.json").exists()


def test_plan_then_apply_via_table(factory: Factory, tmp_path: Path) -> None:
    # GIVEN a saved plan for one missing thing
    seed(SRC, extra_thing="x")
    seed(DST)
    table = create_table()
    path = tmp_path / "plan.json"
    assert run(factory, "plan", *REGIONS, "--plan-file", str(path)).exit_code == 1
    # WHEN it is applied through the persist code
    result = run(factory, "apply", str(path), "--yes", "--via", "table", "--state-table", TABLE)
    # THEN it exits 0 and the state table holds the corrective item
    assert result.exit_code == 0, result.output
    assert "applied=1" in result.stderr
    item = table.get(EntityKind.THING, "x")
    assert item is not None and item.sync == Plan.load(path).plan_id


def test_apply_refuses_an_expired_plan(factory: Factory, tmp_path: Path) -> None:
    seed(SRC, extra_thing="x")
    create_table()
    path = tmp_path / "plan.json"
    run(factory, "plan", *REGIONS, "--plan-file", str(path), "--ttl", "60")
    assert isinstance(factory.clock, Clock)
    factory.clock.now += 60_000
    result = run(factory, "apply", str(path), "--yes", "--via", "table", "--state-table", TABLE)
    assert_one_line_error(result, "expired")


def test_apply_refuses_a_plan_whose_registry_changed(
    factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOT_CRR_PLAN_KEY", "k")  # --no-verify takes signed plans only
    seed(SRC, extra_thing="x")
    table = create_table()
    path = tmp_path / "plan.json"
    run(factory, "plan", *REGIONS, "--plan-file", str(path))
    aws.client("iot", SRC).create_thing(thingName="late-arrival")

    result = run(factory, "apply", str(path), "--yes", "--via", "table", "--state-table", TABLE)
    assert_one_line_error(result, "source registry")
    assert table.get(EntityKind.THING, "x") is None
    # --no-verify checks the signature, the guards and the times, not the registries
    assert (
        run(
            factory,
            "apply",
            str(path),
            "--yes",
            "--no-verify",
            "--via",
            "table",
            "--state-table",
            TABLE,
        ).exit_code
        == 0
    )


def test_apply_shows_what_it_will_emit_and_refuses_without_a_terminal(
    factory: Factory, tmp_path: Path
) -> None:
    seed(SRC, extra_thing="x")
    seed(DST)
    table = create_table()
    path = tmp_path / "plan.json"
    run(factory, "plan", *REGIONS, "--plan-file", str(path))
    # WHEN applied from a script without --yes (stdin is not a terminal)
    result = run(factory, "apply", str(path), "--via", "table", "--state-table", TABLE)
    # THEN the summary is shown, it refuses with one line and exit 2 instead of waiting
    assert result.exit_code == 2, result.output
    assert "1 corrective event(s) into us-east-1's persist path: upsert thing 1" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: refusing to emit without confirmation: stdin is not a terminal; pass --yes"
    )
    assert table.get(EntityKind.THING, "x") is None


def test_plan_signs_with_the_key_and_apply_verifies_it(
    factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(SRC, extra_thing="x")
    seed(DST)
    table = create_table()
    path = tmp_path / "plan.json"
    monkeypatch.setenv("IOT_CRR_PLAN_KEY", "k1")
    run(factory, "plan", *REGIONS, "--plan-file", str(path))
    assert json.loads(path.read_text())["signature"].startswith("hmac-sha256:")
    apply = ["apply", str(path), "--yes", "--via", "table", "--state-table", TABLE]
    # a different key on the applying side refuses it
    monkeypatch.setenv("IOT_CRR_PLAN_KEY", "k2")
    assert_one_line_error(run(factory, *apply), "signature does not verify")
    assert table.get(EntityKind.THING, "x") is None
    # the right key applies it
    monkeypatch.setenv("IOT_CRR_PLAN_KEY", "k1")
    assert run(factory, *apply).exit_code == 0
    assert table.get(EntityKind.THING, "x") is not None


def test_commands_say_which_ignore_rules_they_loaded(factory: Factory, tmp_path: Path) -> None:
    seed(SRC)
    seed(DST)
    (tmp_path / ".iotdriftignore").write_text("thing:test-*\n")
    result = run(factory, "audit", *REGIONS, "--ignore", "thing:lab-*")
    expected = f"ignore rules: 1 from {(tmp_path / '.iotdriftignore').resolve()}, 1 from --ignore"
    assert expected in result.stderr.splitlines()
    # AND once, also when the three-way audit diffs three times under them
    create_table()
    explained = run(
        factory, "audit", *REGIONS, "--ignore", "thing:lab-*", "--explain", "--state-table", TABLE
    )
    assert explained.stderr.splitlines().count(expected) == 1


def test_apply_reports_emit_failures_with_exit_2(factory: Factory, tmp_path: Path) -> None:
    seed(SRC, extra_thing="x")
    path = tmp_path / "plan.json"
    run(factory, "plan", *REGIONS, "--plan-file", str(path))
    # a table that exists (an unknown one is refused before anything) but is not a state table
    aws.client("dynamodb", SRC).create_table(
        TableName="not-a-state-table",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    result = run(
        factory, "apply", str(path), "--yes", "--via", "table", "--state-table", "not-a-state-table"
    )
    assert result.exit_code == 2
    assert "failed THING#" in result.stderr
    assert "Traceback" not in result.stderr


# --- reconcile --------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [True, False], ids=["with-upserts", "deletes-only"])
def test_apply_and_reconcile_apply_share_one_exit_contract(
    factory: Factory, tmp_path: Path, missing: bool
) -> None:
    # GIVEN a thing only the target has (a delete the guards hold back without --allow-deletes),
    # with or without a thing the target lacks
    seed(SRC, extra_thing="x" if missing else None)
    seed(DST, extra_thing="y")
    create_table()
    path = tmp_path / "plan.json"
    assert run(factory, "plan", *REGIONS, "--plan-file", str(path)).exit_code == 1
    via_table = ("--yes", "--via", "table", "--state-table", TABLE)
    # WHEN both emit every action they may
    applied = run(factory, "apply", str(path), *via_table)
    reconciled = run(factory, "reconcile", *REGIONS, "--apply", *via_table[1:])
    # THEN both exit 1: the held-back delete is drift left unrepaired
    assert applied.exit_code == 1, applied.output
    assert reconciled.exit_code == 1, reconciled.output


def test_reconcile_is_a_dry_run_without_apply(factory: Factory) -> None:
    seed(SRC, extra_thing="x")
    seed(DST)
    table = create_table()
    result = run(factory, "reconcile", *REGIONS, "--via", "table", "--state-table", TABLE)
    assert result.exit_code == 1, result.output
    assert "dry run" in result.stderr
    assert table.get(EntityKind.THING, "x") is None


def test_reconcile_apply_starts_persist_executions(factory: Factory) -> None:
    # GIVEN drift and the persist state machine in the source region
    seed(SRC, extra_thing="x")
    seed(DST, attr="2")
    sfn = aws.client("stepfunctions", SRC)
    arn = sfn.create_state_machine(
        name="persist",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/persist",
    )["stateMachineArn"]
    # WHEN reconciled with --apply
    result = run(factory, "reconcile", *REGIONS, "--apply", "--state-machine-arn", arn)
    # THEN every repair was emitted, so the command exits 0 and says what happens next
    assert result.exit_code == 0, result.output
    assert "run `iot-crr audit` in a minute to confirm" in result.output
    listed = sfn.list_executions(stateMachineArn=arn)["executions"]
    inputs = [
        parse_event(
            json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]), region=SRC
        )
        for e in listed
    ]
    assert sorted(c.name for c in inputs) == ["s1", "x"]
    assert all(c.corrective and c.origin.region == SRC for c in inputs)
    s1 = next(c for c in inputs if c.name == "s1")
    assert s1.fields["attributes"] == {"a": "1"}


class DyingStepFunctions:
    """A real (moto) Step Functions client whose endpoint dies after ``answers`` starts: every
    later call fails as botocore fails against an endpoint that is gone."""

    def __init__(self, client: Any, answers: int) -> None:
        self.client, self.answers, self.calls = client, answers, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def start_execution(self, **params: Any) -> Any:
        self.calls += 1
        if self.calls > self.answers:
            raise EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com/")
        return self.client.start_execution(**params)


def test_an_endpoint_dying_during_an_emit_stops_it_with_one_line_saying_how_far(
    aws_env: None,
) -> None:
    # GIVEN 12 things to repair, and a persist endpoint that dies after 3 starts
    seed(SRC)
    seed(DST)
    for i in range(12):
        aws.client("iot", SRC).create_thing(thingName=f"late-{i:02d}")
    sfn = aws.client("stepfunctions", SRC)
    arn = sfn.create_state_machine(
        name="persist",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/persist",
    )["stateMachineArn"]
    dying = DyingStepFunctions(sfn, answers=3)
    factory = Factory(
        client=lambda service, region: (
            dying if service == "stepfunctions" else aws.client(service, region)
        ),
        show_progress=False,
    )
    # WHEN reconciled with --apply
    result = run(factory, "reconcile", *REGIONS, "--apply", "--state-machine-arn", arn, "-q")
    # THEN it stops at the first call that found no endpoint (not one failure per event), with
    # one line naming the region and the call, how far it got, and that re-running is safe
    assert result.exit_code == 2, result.output
    assert dying.calls == 4
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {SRC}: StartExecution could not reach the endpoint (EndpointConnectionError); "
        "3 of 12 corrective events emitted; re-run to finish (safe: an event already emitted "
        "is not applied twice)"
    )


def test_reconcile_in_sync_exits_0_and_emits_nothing(factory: Factory) -> None:
    seed(SRC)
    seed(DST)
    result = run(factory, "reconcile", *REGIONS, "--apply", "--state-machine-arn", "arn:x")
    assert result.exit_code == 0, result.output


def test_the_old_plan_out_spelling_still_works_hidden(factory: Factory, tmp_path: Path) -> None:
    seed(SRC, extra_thing="x")
    seed(DST)
    path = tmp_path / "p.json"
    assert run(factory, "plan", *REGIONS, "--out", str(path)).exit_code == 1
    assert path.exists()
    assert "--out " not in CliRunner().invoke(main, ["plan", "--help"]).output


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_plan_refuses_formats_it_cannot_render(factory: Factory, tmp_path: Path, fmt: str) -> None:
    result = run(factory, "plan", *REGIONS, "--plan-file", str(tmp_path / "p"), "--format", fmt)
    assert result.exit_code == 2
    assert f"a plan prints as table or json, not {fmt}" in result.output
    assert not (tmp_path / "p").exists()


def test_a_mistyped_region_is_refused_before_any_call(factory: Factory) -> None:
    result = run(factory, "audit", "--source-region", "us-east-1", "--target-region", "eu-wst-1")
    assert result.exit_code == 2
    assert "did you mean eu-west-1?" in result.output


def test_every_command_has_an_example_and_shows_its_defaults() -> None:
    def commands(group: click.Group, path: list[str]) -> list[list[str]]:
        found = []
        for name in group.list_commands(click.Context(group)):
            command = group.get_command(click.Context(group), name)
            assert command is not None
            found.append([*path, name])
            if isinstance(command, click.Group):
                found += commands(command, [*path, name])
        return found

    every = commands(main, [])
    assert len(every) >= 8  # snapshot audit plan apply reconcile enable-events sandbox up demo
    for args in [[], *every]:
        text = CliRunner().invoke(main, [*args, "--help"]).output
        assert "Example:" in text, args
    assert "[default: 1000" in CliRunner().invoke(main, ["reconcile", "--help"]).output


def test_help_shows_one_default_per_option_and_required_only_without_fallback() -> None:
    # issue 22 item 15: `--port` showed two defaults, `enable-events --region` "[required]"
    # although AWS_REGION / AWS_DEFAULT_REGION stand in for it
    for args in (["sandbox", "up"], ["enable-events"], ["reconcile"], ["doctor"]):
        command = main
        for name in args:
            found = command.get_command(click.Context(command), name)
            assert isinstance(found, click.Command)
            command = found  # type: ignore[assignment]
        for param in command.params:
            record = param.get_help_record(click.Context(command))
            if record is None:
                continue
            help_text = " ".join(record[1].split())
            assert help_text.count("default:") <= 1, (args, record)
            if param.envvar:
                assert "required" not in help_text, (args, record)


@pytest.mark.parametrize(
    "args",
    [["--duplicates", "5"], ["--drops", "1.5"], ["--drops", "-0.1"], ["--port", "70000"]],
)
def test_sandbox_up_refuses_values_out_of_range(args: list[str]) -> None:
    result = CliRunner().invoke(main, ["sandbox", "up", *args])
    assert result.exit_code == 2
    assert "is not in the range" in result.output


def test_enable_events_without_any_region_names_the_fallbacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["enable-events"])
    assert result.exit_code == 2
    assert "Missing option '--region' (or AWS_REGION / AWS_DEFAULT_REGION)" in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("iot-crr, version ")


def test_help_explains_exit_codes() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "1 drift found" in result.output
    for command in ("snapshot", "audit", "plan", "apply", "reconcile"):
        assert command in result.output


def test_sandbox_commands_are_listed_from_their_entry_points() -> None:
    # The product does not import the sandbox: `sandbox` and `demo` come from pyproject's
    # "iot_crr.commands" entry points, loaded when asked for.
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "sandbox" in result.output and "demo" in result.output
    result = CliRunner().invoke(main, ["sandbox", "--help"])
    assert result.exit_code == 0, result.output
    assert "up" in result.output


def test_a_declared_command_that_is_not_installed_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an entry point whose module is absent (the job's image ships no sandbox/)
    ghost = EntryPoint("ghost", "no_such_package.cli:ghost", COMMANDS_ENTRY_POINTS)
    monkeypatch.setattr(cli, "_entry_points", lambda: {"ghost": ghost})
    # THEN help still works and lists it as unavailable ...
    listed = CliRunner().invoke(main, ["--help"])
    assert listed.exit_code == 0 and "ghost" in listed.output
    # ... and running it fails with one line naming what is missing
    result = CliRunner().invoke(main, ["ghost"])
    assert_one_line_error(result, "iot-crr ghost", "no_such_package")


# --- failback (reconcile.failback) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--failback"], "--failback needs --state-table"),
        (["--overwrite", "thing:x"], "--overwrite names held entities: it needs --failback"),
        (["--failback", "--state-table", TABLE, "--overwrite", "thing:x:attributes.a"], "whole"),
    ],
)
def test_failback_options_are_checked(factory: Factory, args: list[str], fragment: str) -> None:
    result = run(factory, "reconcile", *REGIONS, *args)
    assert result.exit_code == 2
    assert fragment in result.stderr


def test_failback_holds_the_targets_unreplicated_change_until_it_is_named(
    factory: Factory, tmp_path: Path
) -> None:
    # GIVEN a thing only the target has, which the state table (read in the source region)
    # never saw: a change made in the target that never replicated
    seed(SRC)
    seed(DST, extra_thing="late")
    create_table()
    failback = ["--failback", "--state-table", TABLE, "--allow-deletes"]
    # WHEN reconciling with --failback: held, not planned (even with deletes allowed), exit 1
    held = run(factory, "reconcile", *REGIONS, *failback, "-q")
    assert held.exit_code == 1, held.output
    assert "0 action(s)" in held.stderr
    assert "held: 1 (changed in eu-west-1 but never replicated; not repaired)" in held.stderr
    assert "held thing        late  (created in eu-west-1)" in held.stderr
    # ... and once named, planned like any drift
    named = run(factory, "reconcile", *REGIONS, *failback, "--overwrite", "thing:late", "-q")
    assert "delete thing         late" in named.stderr, named.stderr
    # A plan made with --overwrite is refused by an apply that holds the entity
    path = tmp_path / "plan.json"
    made = run(
        factory, "plan", *REGIONS, *failback, "--overwrite", "thing:late", "--plan-file", str(path)
    )
    assert made.exit_code == 1
    args = ["--yes", "--via", "table", "--state-table", TABLE, "--failback", "--allow-deletes"]
    refused = run(factory, "apply", str(path), *args)
    assert refused.exit_code == 2, refused.output
    assert "the plan's actions differ from a plan rebuilt" in refused.stderr
    assert run(factory, "apply", str(path), *args, "--overwrite", "thing:late").exit_code == 0


def test_reconcile_from_snapshots_refuses_to_apply_snapshots_past_the_plan_expiry(
    factory: Factory, tmp_path: Path
) -> None:
    # Issue 22, item 5: saved snapshots of any age were emitted from.
    seed(SRC, extra_thing="x")
    seed(DST)
    table = create_table()
    for region, name in ((SRC, "src"), (DST, "dst")):
        assert (
            run(factory, "snapshot", "--region", region, "--out", str(tmp_path / name)).exit_code
            == 0
        )
    apply = [
        "reconcile",
        "--from-snapshots",
        str(tmp_path / "src"),
        str(tmp_path / "dst"),
        "--apply",
        "--via",
        "table",
        "--state-table",
        TABLE,
    ]
    assert isinstance(factory.clock, Clock)
    factory.clock.now += Guards().ttl_seconds * 1000  # as old as a plan that just expired
    assert_one_line_error(run(factory, *apply), "past the plan expiry")
    assert table.get(EntityKind.THING, "x") is None  # nothing emitted
    factory.clock.now -= 1000  # within the expiry: emitted
    assert run(factory, *apply).exit_code == 0
    assert table.get(EntityKind.THING, "x") is not None


def test_the_shadow_selection_options_and_their_environment_narrow_the_audit(
    factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    def write(region: str, state: dict[str, object], shadow: str | None = None) -> None:
        named = {} if shadow is None else {"shadowName": shadow}
        payload = json.dumps({"state": state})
        aws.client("iot-data", region).update_thing_shadow(thingName="s1", payload=payload, **named)

    # GIVEN the same device in both regions, its reported state its own in each, and a `$`
    # shadow only the source has
    for region, fw in ((SRC, "1.0"), (DST, "2.0")):
        aws.client("iot", region).create_thing(thingName="s1")
        write(region, {"desired": {"mode": "eco"}, "reported": {"fw": fw}})
    write(SRC, {"reported": {"t": 21.5}}, "$telemetry")
    # THEN every shadow and section compared: drift
    assert run(factory, "--shadows", "audit", *REGIONS).exit_code == 1
    # AND with `$` shadows left out and only the desired section replicated: in sync
    narrowed = ("--shadow-exclude", "$*", "--shadow-sections", "desired")
    result = run(factory, "--shadows", *narrowed, "audit", *REGIONS)
    assert result.exit_code == 0, result.output
    assert "shadows: exclude $*; desired only" in result.stderr  # said, as ignore rules are
    # AND the same from the environment the persist function and the job read
    monkeypatch.setenv("SHADOW_EXCLUDE", "$*")
    monkeypatch.setenv("SHADOW_SECTIONS", "desired")
    assert run(factory, "--shadows", "audit", *REGIONS).exit_code == 0


def test_a_bad_shadow_glob_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["--shadow-exclude", "things/*", "audit", "--help"])
    assert result.exit_code == 2
    assert "--shadow-exclude" in result.output and "no shadow-name glob" in result.output


# --- listing in parts ---------------------------------------------------------------------------


def index_things(region: str) -> None:
    aws.client("iot", region).update_indexing_configuration(
        thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"}
    )


def fingerprint(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout.split("fingerprint ")[1].split()[0]


def test_list_in_parts_snapshots_the_same_where_every_thing_has_a_type(
    factory: Factory, tmp_path: Path
) -> None:
    # GIVEN a region whose every thing has a type, its thing index on
    seed(SRC)
    index_things(SRC)
    snapshot = ["snapshot", "--region", SRC, "--out"]

    # WHEN it is snapshotted whole and in parts by type
    whole = run(factory, *snapshot, str(tmp_path / "whole"))
    parts = run(factory, "--list-in-parts", "thing=type", *snapshot, str(tmp_path / "parts"))

    # THEN the snapshots are the same
    assert fingerprint(parts) == fingerprint(whole)


@pytest.mark.parametrize(
    "command", [["snapshot", "--region", SRC, "--out", "snap"], ["audit", *REGIONS]]
)
def test_list_in_parts_reaches_the_listing_which_refuses_an_untyped_thing(
    factory: Factory, command: list[str]
) -> None:
    # GIVEN a thing without a type in the source, its thing index on (and the destination's)
    seed(SRC, extra_thing="untyped-1")
    seed(DST)
    index_things(SRC)
    index_things(DST)
    assert run(factory, *command).exit_code in (0, 1)  # whole: read as ever

    # WHEN a command lists things in parts by type  THEN it refuses, one line naming the region
    # and the thing, instead of a snapshot without it
    result = run(factory, "--list-in-parts", "thing=type", *command)
    assert_one_line_error(
        result, f"{SRC}: thing cannot be listed in parts by type: thing 'untyped-1' has no type"
    )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("thing=colour", "thing has no listing partition 'colour'"),
        ("thing", "expected KIND=PARTITION"),
        ("group=type", "'group' is not a kind that lists in parts"),
    ],
)
def test_a_bad_list_in_parts_is_one_line_naming_the_choices(
    aws_env: None, value: str, why: str
) -> None:
    factory = Factory(client=registry_never_read, show_progress=False)
    result = run(factory, "--list-in-parts", value, "audit", *REGIONS)
    assert_one_line_error(result, f"--list-in-parts {value!r}: {why} (choices: thing=type)")


def test_list_in_parts_help_has_an_example_and_what_it_requires() -> None:
    text = " ".join(CliRunner().invoke(main, ["--help"]).output.split())
    assert "e.g. --list-in-parts thing=type" in text
    assert "every thing has a thing type (ListThings has no filter for untyped things" in text
    assert "an untyped thing would be missing from the snapshot" in text
