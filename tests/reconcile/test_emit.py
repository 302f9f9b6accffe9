"""Tests for reconcile.emit: corrective changes (pure) and both emitters on moto."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from pipeline import aws
from pipeline.events import parse_event
from pipeline.ingest import persist_change, persist_changes
from pipeline.kinds.links import membership_name
from pipeline.model import Change, EntityKind, Origin
from pipeline.state import Outcome
from pipeline.statetable import StateTable
from reconcile.diff import diff_snapshots
from reconcile.emit import (
    EXECUTION_NAME_MAX,
    EmitResult,
    corrective_changes,
    emit_via_stepfunctions,
    emit_via_table,
    execution_name,
)
from reconcile.guards import Guards
from reconcile.plan import Plan
from reconcile.planner import build_plan
from reconcile.snapshot import Snapshot

SRC, DST = "us-east-1", "eu-west-1"
NOW = 1_700_000_000_000
TAKEN = NOW - 30_000
NAME_RULE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")

DYNAMIC_QUERY = {
    "query_string": "thingName:t*",
    "index_name": "AWS_Things",
    "query_version": "2017-09-30",
}


def make_plan(*, allow_deletes: bool = True) -> Plan:
    source = Snapshot.from_records(
        SRC,
        TAKEN,
        thing_types=[{"name": "sensor", "description": "a sensor"}],
        thing_groups=[{"name": "root", "version": 2}, {"name": "leaf", "parent": "root"}],
        things=[
            {"name": "t1", "thing_type": "sensor", "attributes": {"a": "1"}, "version": 5},
            {"name": "t2"},
        ],
        memberships=[{"thing": "t1", "group": "leaf"}],
    )
    target = Snapshot.from_records(DST, NOW, things=[{"name": "t2"}, {"name": "stray"}])
    report = diff_snapshots(source, target)
    return build_plan(report, source, target, Guards(allow_deletes=allow_deletes), now=NOW)


# --- corrective_changes (pure) ----------------------------------------------------------------


def test_corrective_changes_carry_full_state_in_plan_order() -> None:
    plan = make_plan()
    changes = corrective_changes(plan, SRC, sync="s1")

    assert [(c.kind, c.name) for c in changes] == [(a.entity, a.name) for a in plan.actions]
    thing = next(c for c in changes if c.name == "t1")
    assert thing.fields == {"thing_type": "sensor", "attributes": {"a": "1"}, "billing_group": None}
    assert thing.origin == Origin(SRC, TAKEN, "crr-s1-3", version=5)
    assert thing.corrective and thing.sync == "s1" and not thing.deleted
    stray = next(c for c in changes if c.name == "stray")
    assert stray.deleted and stray.fields == {}
    assert any(c.name == membership_name("t1", "leaf") for c in changes)


def test_event_ids_are_unique_and_sync_defaults_to_the_plan_id() -> None:
    plan = make_plan()
    changes = corrective_changes(plan, SRC)
    assert {c.sync for c in changes} == {plan.plan_id}
    assert len({c.origin.event_id for c in changes}) == len(changes) == len(plan.actions)
    # a different sync token gives different event ids (a new repair, not a duplicate)
    again = corrective_changes(plan, SRC, sync="other")
    assert not {c.origin.event_id for c in changes} & {c.origin.event_id for c in again}


@given(st.text(min_size=1, max_size=200), st.integers(min_value=0, max_value=10**6))
def test_execution_names_are_valid_and_distinct(sync: str, index: int) -> None:
    a = execution_name(f"crr-{sync}-{index}")
    b = execution_name(f"crr-{sync}-{index + 1}")
    assert NAME_RULE.match(a) and NAME_RULE.match(b)
    assert a != b


def test_execution_name_keeps_a_plain_event_id() -> None:
    assert execution_name("crr-1700000000000-abc-12") == "crr-1700000000000-abc-12"
    assert len(execution_name("crr-" + "x" * 300 + "-7")) <= EXECUTION_NAME_MAX


# --- emit via the state table (moto DynamoDB) -------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with mock_aws():
        yield


@pytest.fixture
def table(aws_env: None) -> StateTable:
    ddb = aws.client("dynamodb", SRC)
    ddb.create_table(
        TableName="crr-state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return StateTable(ddb, "crr-state")


def test_emit_via_table_writes_one_item_per_action(table: StateTable) -> None:
    # GIVEN a plan with upserts and a delete
    plan = make_plan()
    changes = corrective_changes(plan, SRC)
    seen: list[tuple[int, int]] = []
    # WHEN it is emitted through the persist code
    result = emit_via_table(changes, table, progress=lambda done, total: seen.append((done, total)))
    # THEN every action is applied and the items hold the full desired state
    assert result.ok
    assert result.counts == {"applied": len(changes)}
    assert seen[-1] == (len(changes), len(changes))
    item = table.get(EntityKind.THING, "t1")
    assert item is not None
    assert item.state == {"thing_type": "sensor", "attributes": {"a": "1"}, "billing_group": None}
    assert item.sync == plan.plan_id and item.origin_region == SRC
    stray = table.get(EntityKind.THING, "stray")
    assert stray is not None and stray.deleted


def test_a_replayed_plan_counts_as_duplicates(table: StateTable) -> None:
    # GIVEN a plan emitted once
    changes = corrective_changes(make_plan(), SRC)
    emit_via_table(changes, table)
    first = table.get(EntityKind.THING, "t1")
    # WHEN the same plan is emitted again (a replay: same event ids, same sync token, which
    # asynchronous Express workflows would not deduplicate by execution name either)
    again = emit_via_table(changes, table)
    # THEN every change is a duplicate and no item is rewritten
    assert again.ok and again.counts == {"duplicate": len(changes)}
    second = table.get(EntityKind.THING, "t1")
    assert first is not None and second == first


def test_emit_via_table_follows_persist_for_a_dynamic_groups_membership(
    table: StateTable,
) -> None:
    # GIVEN the state table knows group "dyn" as dynamic (its members are computed per region)
    dynamic = Change(
        EntityKind.THING_GROUP,
        "dyn",
        Origin(SRC, TAKEN - 1_000, "live-dyn", version=1),
        fields={"parent": None, "attributes": {}, "query": DYNAMIC_QUERY},
    )
    assert table.apply(dynamic).outcome is Outcome.APPLIED
    membership = membership_name("t1", "dyn")
    changes = [
        *corrective_changes(make_plan(), SRC),
        Change(
            EntityKind.MEMBERSHIP,
            membership,
            Origin(SRC, TAKEN, "crr-x-9"),
            corrective=True,
            sync="x",
        ),
    ]
    # WHEN the plan and a membership of that group go through the table
    via_table = emit_via_table(changes, table, now=NOW)
    # THEN the membership is skipped as persist skips it, and not stored
    assert via_table.ok and via_table.counts.get("skipped") == 1
    assert table.get(EntityKind.MEMBERSHIP, membership) is None
    # AND the rest is applied as before
    assert via_table.counts["applied"] == len(changes) - 1


def test_persist_changes_gives_the_outcomes_of_persist_change_one_by_one(
    table: StateTable,
) -> None:
    # GIVEN a group event with ancestors, memberships (one of a dynamic group), and plain
    # changes, interleaved
    live = [
        Change(
            EntityKind.THING_GROUP,
            "dyn",
            Origin(SRC, TAKEN, "e0", version=1),
            fields={
                "parent": None,
                "attributes": {},
                "query": DYNAMIC_QUERY,
            },
        ),
        Change(
            EntityKind.THING_GROUP,
            "leaf2",
            Origin(SRC, TAKEN, "e1", version=1),
            fields={"parent": "mid", "attributes": {}},
            ancestors=("top", "mid"),
        ),
        Change(EntityKind.MEMBERSHIP, membership_name("t1", "dyn"), Origin(SRC, TAKEN, "e2")),
        Change(EntityKind.MEMBERSHIP, membership_name("t1", "leaf2"), Origin(SRC, TAKEN, "e3")),
        *corrective_changes(make_plan(), SRC),
    ]
    # WHEN persisted in one batch, and one by one into a second table
    batched = persist_changes(table, live)
    ddb = aws.client("dynamodb", SRC)
    ddb.create_table(
        TableName="one-by-one",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    single = StateTable(ddb, "one-by-one")
    one_by_one = [persist_change(single, change) for change in live]
    # THEN the outcomes and the stored items are the same
    assert [(r.outcome, r.key) for r in batched] == [(r.outcome, r.key) for r in one_by_one]
    assert Outcome.SKIPPED in {r.outcome for r in batched}
    assert {i.key: i for i in table.scan_entities()} == {i.key: i for i in single.scan_entities()}
    assert table.get(EntityKind.THING_GROUP, "top") is not None  # the ancestor stubs


def test_a_newer_live_event_outranks_the_corrective_one(table: StateTable) -> None:
    # GIVEN a live change to t1 persisted after the source snapshot was taken
    live = Change(
        EntityKind.THING,
        "t1",
        Origin(SRC, TAKEN + 1_000, "live-1", entity_id="id-t1", version=6),
        fields={"thing_type": None, "attributes": {"a": "2"}, "billing_group": None},
    )
    table.apply(live)
    # WHEN the plan (built from the older snapshot) is emitted
    result = emit_via_table(corrective_changes(make_plan(), SRC), table)
    # THEN the corrective change for t1 is stale and the live state stays
    assert result.counts.get("stale") == 1
    item = table.get(EntityKind.THING, "t1")
    assert item is not None and item.state["attributes"] == {"a": "2"}


def test_emit_via_table_records_failures_per_change(aws_env: None) -> None:
    # GIVEN a state table that does not exist
    missing = StateTable(aws.client("dynamodb", SRC), "no-such-table")
    changes = corrective_changes(make_plan(), SRC)
    # WHEN we emit
    result = emit_via_table(changes, missing)
    # THEN every change is reported as failed, none dropped
    assert not result.ok
    assert [f.key for f in result.failures] == [c.key for c in changes]
    assert result.total == len(changes)


# --- emit via Step Functions (moto, executions do not run) ------------------------------------

PASS_MACHINE = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


@pytest.fixture
def state_machine(aws_env: None) -> tuple[Any, str]:
    sfn = aws.client("stepfunctions", SRC)
    arn = sfn.create_state_machine(
        name="persist",
        definition=PASS_MACHINE,
        roleArn="arn:aws:iam::123456789012:role/persist",
    )["stateMachineArn"]
    return sfn, arn


def executions(sfn: Any, arn: str) -> list[dict[str, Any]]:
    listed = sfn.list_executions(stateMachineArn=arn)["executions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]


def test_emit_via_stepfunctions_starts_one_execution_per_change(
    state_machine: tuple[Any, str],
) -> None:
    sfn, arn = state_machine
    changes = corrective_changes(make_plan(), SRC)

    result = emit_via_stepfunctions(changes, sfn, arn)

    assert result.ok and result.counts == {"started": len(changes)}
    started = executions(sfn, arn)
    assert len(started) == len(changes)
    names = {e["name"] for e in started}
    assert len(names) == len(changes) and all(NAME_RULE.match(n) for n in names)
    # the inputs parse back into exactly the corrective changes
    parsed = {
        c.origin.event_id: c
        for c in (parse_event(json.loads(e["input"]), region=SRC) for e in started)
    }
    for change in changes:
        assert parsed[change.origin.event_id] == change


def test_missing_state_machine_fails_every_change(aws_env: None) -> None:
    sfn = aws.client("stepfunctions", SRC)
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:absent"
    changes = corrective_changes(make_plan(), SRC)
    result = emit_via_stepfunctions(changes, sfn, arn)
    assert result.counts == {}
    assert len(result.failures) == len(changes)
    assert all(not f.retryable for f in result.failures)


def test_an_invalid_change_fails_alone(state_machine: tuple[Any, str]) -> None:
    # GIVEN one change persist would refuse (a name AWS IoT does not allow) among valid ones
    sfn, arn = state_machine
    good = corrective_changes(make_plan(), SRC)
    bad = Change(
        EntityKind.THING,
        "bad name with spaces",
        Origin(SRC, TAKEN, "crr-x-99"),
        corrective=True,
        sync="x",
    )
    # WHEN emitted
    result = emit_via_stepfunctions([*good, bad], sfn, arn)
    # THEN only that change fails, with a permanent error, and it never started
    assert result.counts == {"started": len(good)}
    (failure,) = result.failures
    assert failure.key == bad.key and failure.error == "RegistryValidationError"
    assert not failure.retryable
    assert len(executions(sfn, arn)) == len(good)


class RefusingSfn:
    """A Step Functions client that answers every start with one error code (after botocore's
    own retries gave up, for throttling)."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.calls = 0

    def start_execution(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        raise ClientError({"Error": {"Code": self.code, "Message": "no"}}, "StartExecution")


FAKE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:persist"


def test_throttling_left_over_is_a_retryable_failure_per_change() -> None:
    fake = RefusingSfn("ThrottlingException")
    changes = corrective_changes(make_plan(), SRC)
    result = emit_via_stepfunctions(changes, fake, FAKE_ARN)
    assert fake.calls == len(changes)
    assert len(result.failures) == len(changes)
    assert all(f.retryable and f.error == "ThrottlingException" for f in result.failures)


def test_a_closed_execution_of_the_same_event_counts_as_duplicate() -> None:
    changes = corrective_changes(make_plan(), SRC)
    result = emit_via_stepfunctions(changes, RefusingSfn("ExecutionAlreadyExists"), FAKE_ARN)
    assert result.ok and result.counts == {"duplicate": len(changes)}


# --- one validation path for both emitters ----------------------------------------------------

WALL_NOW = NOW + 3_600_000  # the emitters' clock in these tests


def _bad(name: str, origin_ms: int = TAKEN, **fields: Any) -> Change:
    return Change(
        EntityKind.THING,
        name,
        Origin(SRC, origin_ms, f"crr-bad-{name[:3]}"),
        fields=fields,
        corrective=True,
        sync="bad",
    )


INVALID = [
    pytest.param(_bad("bad name <script>"), "RegistryValidationError", id="bad-name"),
    pytest.param(_bad("t9", evil="x"), "EventValidationError", id="unknown-field"),
    pytest.param(
        _bad("t9", attributes={"a b": "1"}), "RegistryValidationError", id="bad-attribute"
    ),
    pytest.param(
        _bad("t9", origin_ms=WALL_NOW + 3_600_000), "FutureTimestampError", id="future-timestamp"
    ),
]


@pytest.mark.parametrize(("bad", "error"), INVALID)
def test_the_table_path_refuses_what_persist_would_refuse(
    table: StateTable, bad: Change, error: str
) -> None:
    # WHEN an invalid corrective change is emitted straight into the table with valid ones
    good = corrective_changes(make_plan(), SRC)
    result = emit_via_table([*good, bad], table, now=WALL_NOW)
    # THEN it fails alone, permanently, and never reaches the table
    assert result.counts == {"applied": len(good)}
    assert [(f.key, f.error, f.retryable) for f in result.failures] == [(bad.key, error, False)]
    assert table.get(EntityKind.THING, bad.name) is None


@pytest.mark.parametrize(("bad", "error"), INVALID)
def test_both_emitters_refuse_alike(
    state_machine: tuple[Any, str], bad: Change, error: str
) -> None:
    sfn, arn = state_machine
    ddb = aws.client("dynamodb", SRC)
    ddb.create_table(
        TableName="crr-state",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    results: list[EmitResult] = [
        emit_via_stepfunctions([bad], sfn, arn, now=WALL_NOW),
        emit_via_table([bad], StateTable(ddb, "crr-state"), now=WALL_NOW),
    ]
    assert [[(f.error, f.message) for f in r.failures] for r in results] == [
        [(error, results[0].failures[0].message)]
    ] * 2
    assert executions(sfn, arn) == []


def test_a_timestamp_within_the_clock_skew_is_accepted(table: StateTable) -> None:
    # A source clock a little ahead of ours (under five minutes) is not an attack.
    ahead = Change(
        EntityKind.THING,
        "t9",
        Origin(SRC, WALL_NOW + 60_000, "crr-skew-0"),
        fields={"thing_type": None, "attributes": {}, "billing_group": None},
        corrective=True,
        sync="skew",
    )
    assert emit_via_table([ahead], table, now=WALL_NOW).counts == {"applied": 1}
