"""R4 safety: reconciliation never does the dangerous thing by accident.

Through the CLI (``CliRunner``, moto in process): an empty or shrunken source is refused, the
change cap is honoured, stale plans are refused, and nothing is deleted without
``--allow-deletes``; each refusal is exit code 2 with a one-line message and emits nothing. A
property test checks the same guards on the pure planner over arbitrary registries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.model import EntityKind, Item
from pipeline.statetable import StateTable
from reconcile.cli import main
from reconcile.context import Factory
from reconcile.diff import diff_snapshots
from reconcile.guards import Guards, PlanRefusedError
from reconcile.planner import build_plan
from reconcile.snapshot import Snapshot
from sandbox.inprocess import SRC, TABLE, LocalPipeline, create_state_table
from tests.reliability.conftest import MAX_EXAMPLES

REGIONS = ["--source-region", "us-east-1", "--target-region", "eu-west-1"]
# `iot-crr reconcile --apply` emitting straight into the state table.
RECONCILE_VIA_TABLE = ["reconcile", *REGIONS, "--apply", "--via", "table", "--state-table", TABLE]
NOW_MS = 1_800_000_000_000


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def cli(pipeline: LocalPipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Factory:
    monkeypatch.chdir(tmp_path)  # no stray ignore file from the working tree
    for key in (
        "SOURCE_REGION",
        "TARGET_REGION",
        "STATE_TABLE",
        "PERSIST_STATE_MACHINE_ARN",
        "IOT_CRR_PLAN_KEY",
    ):
        monkeypatch.delenv(key, raising=False)
    return Factory(clock=Clock(NOW_MS), show_progress=False)


@pytest.fixture
def source_table(pipeline: LocalPipeline) -> StateTable:
    """Corrective events enter the persist path in the source region."""
    client = boto3.client("dynamodb", region_name=SRC)
    create_state_table(client, TABLE)
    return StateTable(client, TABLE)


def run(factory: Factory, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), obj=factory)


def assert_refused(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def things(iot: Any, names: range | list[str], prefix: str = "t") -> None:
    for i in names:
        iot.create_thing(thingName=f"{prefix}{i}")


def table_items(table: StateTable) -> list[Item]:
    return sorted(table.scan_entities(1), key=lambda item: item.key)


def table_keys(table: StateTable) -> list[str]:
    return [item.key for item in table_items(table)]


def test_an_empty_source_is_refused_and_nothing_is_emitted(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable
) -> None:
    # GIVEN a populated destination and an empty source (wrong region, missing permissions)
    things(pipeline.destination, range(5))
    # WHEN reconcile runs with deletes allowed and --apply
    result = run(
        cli,
        *RECONCILE_VIA_TABLE,
        "--allow-deletes",
    )
    # THEN it refuses with one line, and the state table is untouched
    assert_refused(result, "empty_source")
    assert table_keys(source_table) == []


def test_a_shrunken_source_is_refused(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable
) -> None:
    things(pipeline.source, range(4))
    things(pipeline.destination, range(10))
    result = run(
        cli,
        *RECONCILE_VIA_TABLE,
        "--allow-deletes",
    )
    assert_refused(result, "min_source_ratio")
    assert table_keys(source_table) == []
    # The operator can lower the guard on purpose, and then the deletes go through.
    result = run(
        cli,
        *RECONCILE_VIA_TABLE,
        "--allow-deletes",
        "--min-source-ratio",
        "0.3",
    )
    assert result.exit_code == 0, result.output  # every repair emitted
    assert len([k for k in table_keys(source_table) if k.startswith("THING#")]) == 6


def test_max_changes_is_honoured(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable
) -> None:
    # A destination that holds something (into an empty one, the backfill, no cap applies)
    things(pipeline.destination, range(6, 7))
    things(pipeline.source, range(7))
    result = run(
        cli,
        *RECONCILE_VIA_TABLE,
        "--max-changes",
        "5",
    )
    assert_refused(result, "max_changes", "6 changes")
    assert table_keys(source_table) == []
    result = run(
        cli,
        *RECONCILE_VIA_TABLE,
        "--max-changes",
        "6",
    )
    assert result.exit_code == 0, result.output  # every repair emitted
    assert len(table_keys(source_table)) == 6


def test_stale_plans_are_refused(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable, tmp_path: Path
) -> None:
    things(pipeline.source, range(2))
    plan = tmp_path / "plan.json"
    assert run(cli, "plan", *REGIONS, "--plan-file", str(plan), "--ttl", "600").exit_code == 1
    apply = ["apply", str(plan), "--yes", "--via", "table", "--state-table", TABLE]
    # GIVEN the target changes after the plan was made, THEN apply refuses it
    things(pipeline.destination, ["late"], prefix="")
    assert_refused(run(cli, *apply), "stale plan", "target registry")
    # GIVEN the registries are back as planned but the plan is past its ttl, THEN refused too
    pipeline.destination.delete_thing(thingName="late")
    assert isinstance(cli.clock, Clock)
    cli.clock.now += 600_000
    assert_refused(run(cli, *apply, "--no-verify"), "stale plan", "expired")
    assert table_keys(source_table) == []


def test_nothing_is_deleted_without_allow_deletes(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable
) -> None:
    # GIVEN the destination has things and a group the source does not
    things(pipeline.source, range(3))
    things(pipeline.destination, range(3))
    things(pipeline.destination, ["x", "y"], prefix="extra-")
    pipeline.destination.create_thing_group(thingGroupName="orphans")
    # WHEN reconcile --apply runs without --allow-deletes
    result = run(cli, *RECONCILE_VIA_TABLE)
    # THEN the deletes are listed as skipped, and no tombstone reaches the state table
    assert result.exit_code == 1, result.output
    assert "(skipped)" in result.stderr and "extra-x" in result.stderr
    assert table_keys(source_table) == []
    # WHEN the operator allows deletes, THEN tombstones are emitted for exactly the extras
    result = run(
        cli,
        *RECONCILE_VIA_TABLE,
        "--allow-deletes",
    )
    assert result.exit_code == 0, result.output  # every repair emitted
    items = table_items(source_table)
    assert [(i.key, i.deleted) for i in items] == [
        ("GROUP#orphans", True),
        ("THING#extra-x", True),
        ("THING#extra-y", True),
    ]


# --- a plan file is untrusted input ------------------------------------------------------------


def forge(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit a plan file the way an attacker who knows the format would: recompute its id."""
    data = json.loads(path.read_text())
    edit(data)
    body = {k: v for k, v in data.items() if k not in ("counts", "signature")}
    body["plan_id"] = ""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    data["plan_id"] = f"{data['created_at_ms']}-{digest[:12]}"
    path.write_text(json.dumps(data))


def planned(pipeline: LocalPipeline, cli: Factory, tmp_path: Path, *args: str) -> Path:
    """A saved plan for 3 missing things and 1 extra one (the delete is held back)."""
    things(pipeline.source, range(3))
    things(pipeline.destination, ["extra"], prefix="")
    path = tmp_path / "plan.json"
    result = run(cli, "plan", *REGIONS, "--plan-file", str(path), *args)
    assert result.exit_code == 1, result.output
    return path


def apply_args(path: Path, *extra: str) -> list[str]:
    return ["apply", str(path), "--yes", "--via", "table", "--state-table", TABLE, *extra]


def test_a_hand_edited_plan_fails_its_content_hash(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable, tmp_path: Path
) -> None:
    # GIVEN the held-back delete moved into the actions by hand (id not recomputed)
    path = planned(pipeline, cli, tmp_path)
    data = json.loads(path.read_text())
    data["actions"].append(data["skipped"].pop())
    path.write_text(json.dumps(data))
    # THEN apply refuses it before any snapshot or write
    assert_refused(run(cli, *apply_args(path)), "plan integrity", "content hash")
    assert table_keys(source_table) == []


def test_a_forged_delete_is_refused_by_apply_s_own_guard(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable, tmp_path: Path
) -> None:
    # GIVEN the held-back delete moved into the actions, the plan's guards claiming deletes
    # were allowed, and the id recomputed
    path = planned(pipeline, cli, tmp_path)

    def allow(data: dict[str, Any]) -> None:
        data["actions"].append(data["skipped"].pop())
        data["guards"]["allow_deletes"] = True

    forge(path, allow)
    # THEN apply (without --allow-deletes) refuses it: the file's guards count for nothing
    assert_refused(run(cli, *apply_args(path)), "allow_deletes", "deletes 1 entity")
    assert table_keys(source_table) == []


def test_a_plan_over_apply_s_cap_is_refused(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable, tmp_path: Path
) -> None:
    # GIVEN a plan made under a raised cap (1,500 actions would do the same as these 3)
    path = planned(pipeline, cli, tmp_path, "--max-changes", "0")
    # THEN apply's own cap refuses it, and raising the cap on purpose lets it through
    assert_refused(run(cli, *apply_args(path, "--max-changes", "2")), "max_changes", "3 changes")
    assert table_keys(source_table) == []
    # (exit 1: the plan's held-back delete is drift left unrepaired, as for reconcile --apply)
    assert run(cli, *apply_args(path, "--max-changes", "3")).exit_code == 1
    assert len(table_keys(source_table)) == 3


def test_a_plan_expiring_in_2286_is_refused(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable, tmp_path: Path
) -> None:
    path = planned(pipeline, cli, tmp_path)
    forge(path, lambda data: data.update(expires_at_ms=10_000_000_000_000))
    assert_refused(run(cli, *apply_args(path)), "expiry", "at most 86400s")
    assert table_keys(source_table) == []


def test_a_plan_from_the_future_is_refused(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable, tmp_path: Path
) -> None:
    path = planned(pipeline, cli, tmp_path)
    forge(
        path, lambda d: d.update(created_at_ms=NOW_MS + 3_600_000, expires_at_ms=NOW_MS + 7_200_000)
    )
    assert_refused(run(cli, *apply_args(path)), "created_at", "ahead of this machine")
    assert table_keys(source_table) == []


def test_verify_refuses_swapped_regions_and_edited_actions(
    pipeline: LocalPipeline, cli: Factory, source_table: StateTable, tmp_path: Path
) -> None:
    path = planned(pipeline, cli, tmp_path)
    honest = path.read_text()
    # GIVEN the regions swapped (id recomputed): the fresh snapshots do not match the plan
    forge(
        path, lambda d: d.update(source_region=d["target_region"], target_region=d["source_region"])
    )
    assert_refused(run(cli, *apply_args(path)), "stale plan", "changed since the plan")
    # GIVEN an upsert's state edited (id recomputed): the registries do not call for it
    path.write_text(honest)
    forge(path, lambda d: d["actions"][0]["fields"]["attributes"].update(owner="mallory"))
    assert_refused(run(cli, *apply_args(path)), "differ from a plan rebuilt", "1 not called for")
    assert table_keys(source_table) == []
    # The honest plan goes through (exit 1: its held-back delete is drift left unrepaired).
    path.write_text(honest)
    assert run(cli, *apply_args(path)).exit_code == 1
    assert len(table_keys(source_table)) == 3


def test_a_replayed_plan_writes_nothing_twice(
    pipeline: LocalPipeline,
    cli: Factory,
    source_table: StateTable,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IOT_CRR_PLAN_KEY", "k")  # the replay skips verification: signed
    path = planned(pipeline, cli, tmp_path)
    first = run(cli, *apply_args(path))
    assert first.exit_code == 1 and "applied=3" in first.stderr  # 1: the held-back delete
    items = table_items(source_table)
    # WHEN the same plan is applied again (a replay), THEN every event is a duplicate
    again = run(cli, *apply_args(path, "--no-verify"))
    assert again.exit_code == 1 and "duplicate=3 failed=0" in again.stderr
    assert table_items(source_table) == items


# --- the planner's guards over arbitrary registries -------------------------------------------

names = st.lists(st.sampled_from([f"n{i}" for i in range(12)]), unique=True, max_size=12)


def _snapshot(region: str, thing_names: list[str], attr: str) -> Snapshot:
    return Snapshot.from_records(
        region, 1, things=[{"name": n, "attributes": {"a": attr}} for n in thing_names]
    )


@settings(
    max_examples=max(25, MAX_EXAMPLES // 8),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    source=names,
    target=names,
    changed=st.booleans(),
    allow_deletes=st.booleans(),
    max_changes=st.none() | st.integers(0, 12),
    ratio=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_the_planner_never_breaks_a_guard(
    *,
    source: list[str],
    target: list[str],
    changed: bool,
    allow_deletes: bool,
    max_changes: int | None,
    ratio: float,
) -> None:
    src = _snapshot("us-east-1", source, "1")
    dst = _snapshot("eu-west-1", target, "2" if changed else "1")
    guards = Guards(allow_deletes=allow_deletes, max_changes=max_changes, min_source_ratio=ratio)
    report = diff_snapshots(src, dst, clock=lambda: NOW_MS)
    try:
        plan = build_plan(report, src, dst, guards, now=NOW_MS)
    except PlanRefusedError as refused:
        # A refusal always has one of the documented reasons, and each one really applies.
        if refused.guard == "empty_source":
            assert not source and target
        elif refused.guard == "min_source_ratio":
            assert len(source) < ratio * len(target)
        else:
            assert refused.guard == "max_changes" and max_changes is not None
        return
    assert not (not source and target), "an empty source must be refused"
    assert len(source) >= ratio * len(target) or not target
    deletes = [a for a in plan.actions if a.op == "delete"]
    if not allow_deletes:
        assert deletes == []
        assert {a.name for a in plan.skipped} == set(target) - set(source)
    else:
        assert {a.name for a in deletes} == set(target) - set(source)
    if max_changes is not None and target:
        assert len(plan.actions) <= max_changes
    if not target:  # the backfill is not capped, and only creates
        assert all(a.op == "upsert" for a in plan.actions)
    assert all(a.entity is EntityKind.THING for a in plan.actions)
