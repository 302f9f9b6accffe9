"""Unit tests for reconcile.plan: ordering, guards, staleness and the plan file (no network)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jobs.config import JOB_KNOBS
from pipeline.errors import PermanentError
from pipeline.kinds.links import membership_name
from pipeline.model import EntityKind, Item
from pipeline.state import MAX_CLOCK_SKEW_MS
from reconcile.diff import diff_snapshots
from reconcile.explain import explain, table_snapshot
from reconcile.guards import CLI_KNOBS, Guards, PlanRefusedError, Sizes
from reconcile.plan import (
    MAX_TTL_SECONDS,
    PLAN_SCHEMA_VERSION,
    Plan,
    PlanFormatError,
    RepairAction,
    StalePlanError,
    check_fresh,
    check_same_actions,
    check_trusted,
    check_unverified,
    describe_plan,
    hazard,
    hazards,
    summarize_plan,
)
from reconcile.planner import build_plan
from reconcile.plansign import PlanIntegrityError, plan_key
from reconcile.report import load_json, to_json
from reconcile.snapshot import Snapshot

SRC, DST = "us-east-1", "eu-west-1"
NOW = 1_700_000_000_000
ALLOW_DELETES = Guards(allow_deletes=True)
DEFAULT_GUARDS = Guards()

# A hierarchy whose alphabetical order is the reverse of its depth order, so sorting by name
# alone would put children first.
HIERARCHY = [
    {"name": "z-root", "description": "root", "version": 3},
    {"name": "m-mid", "parent": "z-root", "attributes": {"floor": "2"}, "version": 1},
    {"name": "a-leaf", "parent": "m-mid", "version": 1},
]


def snap(region: str, taken_at_ms: int = NOW - 60_000, **tables: Any) -> Snapshot:
    return Snapshot.from_records(region, taken_at_ms, **tables)


def plan_for(source: Snapshot, target: Snapshot, guards: Guards = DEFAULT_GUARDS) -> Plan:
    return build_plan(diff_snapshots(source, target), source, target, guards, now=NOW)


def full_source() -> Snapshot:
    return snap(
        SRC,
        thing_types=[{"name": "sensor", "description": "a sensor", "searchable_attributes": ["a"]}],
        thing_groups=HIERARCHY,
        billing_groups=[{"name": "bill", "description": "cost centre"}],
        things=[
            {
                "name": "t1",
                "thing_type": "sensor",
                "attributes": {"a": "1"},
                "billing_group": "bill",
                "version": 7,
            },
            {"name": "t0", "version": 2},
        ],
        memberships=[{"thing": "t1", "group": "a-leaf"}],
    )


def order(plan: Plan) -> list[tuple[str, EntityKind, str]]:
    return [(a.op, a.entity, a.name) for a in plan.actions]


# --- ordering ---------------------------------------------------------------------------------


def test_upserts_run_types_groups_by_depth_billing_things_memberships() -> None:
    # GIVEN a source with one of everything and an empty target
    # WHEN we plan
    plan = plan_for(full_source(), snap(DST))
    # THEN dependencies come first, parents before children
    assert order(plan) == [
        ("upsert", EntityKind.THING_TYPE, "sensor"),
        ("upsert", EntityKind.THING_GROUP, "z-root"),
        ("upsert", EntityKind.THING_GROUP, "m-mid"),
        ("upsert", EntityKind.THING_GROUP, "a-leaf"),
        ("upsert", EntityKind.BILLING_GROUP, "bill"),
        ("upsert", EntityKind.THING, "t0"),
        ("upsert", EntityKind.THING, "t1"),
        ("upsert", EntityKind.MEMBERSHIP, membership_name("t1", "a-leaf")),
    ]
    assert plan.skipped == ()


def test_upserts_carry_the_full_source_state_and_version() -> None:
    plan = plan_for(full_source(), snap(DST))
    by_name = {(a.entity, a.name): a for a in plan.actions}

    thing = by_name[(EntityKind.THING, "t1")]
    assert thing.fields == {
        "thing_type": "sensor",
        "attributes": {"a": "1"},
        "billing_group": "bill",
    }
    assert thing.version == 7
    group = by_name[(EntityKind.THING_GROUP, "m-mid")]
    assert group.fields == {
        "parent": "z-root",
        "description": None,
        "attributes": {"floor": "2"},
        "query": None,
    }
    kind_type = by_name[(EntityKind.THING_TYPE, "sensor")]
    assert kind_type.fields["searchable_attributes"] == ["a"]
    assert kind_type.version is None
    assert all(a.reason.startswith("missing") for a in plan.actions)


def test_changed_entity_becomes_an_upsert_with_the_whole_source_state() -> None:
    # GIVEN a thing whose attributes differ in the target
    source = snap(SRC, things=[{"name": "t1", "attributes": {"a": "1", "b": "2"}, "version": 4}])
    target = snap(DST, things=[{"name": "t1", "attributes": {"a": "9"}, "version": 1}])
    # WHEN we plan
    plan = plan_for(source, target)
    # THEN one upsert carries every source attribute, not only the differing one
    (action,) = plan.actions
    assert (action.op, action.entity, action.name) == ("upsert", EntityKind.THING, "t1")
    assert action.fields["attributes"] == {"a": "1", "b": "2"}
    assert action.version == 4
    assert action.reason.startswith("changed")


def test_ignored_fields_keep_the_target_value_in_the_repair() -> None:
    from reconcile.ignore import IgnoreRules

    # GIVEN lastSeen and tmp* attributes are ignored, and differ along with a real attribute
    ignore = IgnoreRules(("thing:*:attributes.lastSeen", "thing:*:attributes.tmp*"))
    source = snap(
        SRC, things=[{"name": "t1", "attributes": {"a": "1", "lastSeen": "5", "tmp1": "x"}}]
    )
    target = snap(DST, things=[{"name": "t1", "attributes": {"a": "2", "lastSeen": "9"}}])
    report = diff_snapshots(source, target, ignore=ignore)
    # WHEN we plan with the same rules
    plan = build_plan(report, source, target, DEFAULT_GUARDS, now=NOW, ignore=ignore)
    # THEN the repair fixes "a" and leaves the ignored attributes as the target has them
    (action,) = plan.actions
    assert action.fields["attributes"] == {"a": "1", "lastSeen": "9"}


def test_the_plan_takes_the_state_the_diff_read_and_a_shard_report_carries_it() -> None:
    # GIVEN a report from the diff, and the same report as a shard writes it and the merge reads
    # it back (reconcile.report: the desired state travels only in shard reports)
    source, target = full_source(), snap(DST, things=[{"name": "t0", "attributes": {"x": "1"}}])
    report = diff_snapshots(source, target)
    shard = load_json(json.loads(json.dumps(to_json(report, rows=True))))
    # THEN both plan the same actions
    assert (
        plan_for(source, target).actions
        == build_plan(shard, source, target, DEFAULT_GUARDS, now=NOW).actions
    )
    # AND a report that lost the states (the public JSON) is refused, never guessed
    public = load_json(to_json(report))
    with pytest.raises(PlanRefusedError, match="carries no state") as refused:
        build_plan(public, source, target, DEFAULT_GUARDS, now=NOW)
    assert refused.value.guard == "inconsistent_report"


def test_a_policy_is_repaired_with_the_sources_own_document_not_the_compared_copy() -> None:
    # GIVEN a policy the diff compares as the replicator writes it (ARNs for the destination)
    document = '{"Statement":[{"Resource":"arn:aws:iot:us-east-1:111111111111:topic/t"}]}'
    source = snap(SRC, policies=[{"name": "p", "document": document}])
    stale = '{"Statement":[{"Resource":"arn:aws:iot:eu-west-1:222222222222:topic/old"}]}'
    target = snap(DST, policies=[{"name": "p", "document": stale}])
    report = diff_snapshots(source, target, policy_accounts={"111111111111": "222222222222"})
    # WHEN the drift is planned THEN the corrective event carries the source's document: the
    # replicator rewrites it on its way to the destination
    (action,) = build_plan(report, source, target, DEFAULT_GUARDS, now=NOW).actions
    assert action.fields == {"document": document}


def target_with_extras() -> tuple[Snapshot, Snapshot]:
    source = snap(SRC, things=[{"name": "keep"}])
    target = snap(
        DST,
        things=[{"name": "keep"}, {"name": "x1"}],
        thing_types=[{"name": "old-type"}],
        thing_groups=HIERARCHY,
        billing_groups=[{"name": "old-bill"}],
        memberships=[{"thing": "x1", "group": "a-leaf"}],
    )
    return source, target


def test_deletes_run_in_reverse_children_before_parents_types_last() -> None:
    source, target = target_with_extras()
    plan = plan_for(source, target, ALLOW_DELETES)
    assert order(plan) == [
        ("delete", EntityKind.MEMBERSHIP, membership_name("x1", "a-leaf")),
        ("delete", EntityKind.THING, "x1"),
        ("delete", EntityKind.BILLING_GROUP, "old-bill"),
        ("delete", EntityKind.THING_GROUP, "a-leaf"),
        ("delete", EntityKind.THING_GROUP, "m-mid"),
        ("delete", EntityKind.THING_GROUP, "z-root"),
        ("delete", EntityKind.THING_TYPE, "old-type"),
    ]
    assert all(a.fields == {} and a.version is None for a in plan.actions)


def test_upserts_come_before_deletes() -> None:
    source = snap(SRC, things=[{"name": "a"}, {"name": "new"}])
    target = snap(DST, things=[{"name": "a"}, {"name": "gone"}])
    plan = plan_for(source, target, ALLOW_DELETES)
    assert [a.op for a in plan.actions] == ["upsert", "delete"]


def test_group_cycles_and_orphans_do_not_hang_the_ordering() -> None:
    # A broken hierarchy (only possible in hand-made data) must still give a deterministic plan.
    source = snap(
        SRC,
        thing_groups=[
            {"name": "c1", "parent": "c2"},
            {"name": "c2", "parent": "c1"},
            {"name": "orphan", "parent": "nowhere"},
        ],
    )
    plan = plan_for(source, snap(DST))
    assert sorted(a.name for a in plan.actions) == ["c1", "c2", "orphan"]


# --- guards -----------------------------------------------------------------------------------


def test_deletes_without_allow_deletes_are_listed_as_skipped() -> None:
    source, target = target_with_extras()
    plan = plan_for(source, target)
    assert plan.actions == ()
    assert len(plan.skipped) == 7
    assert all(a.op == "delete" and "deletes not allowed" in a.reason for a in plan.skipped)
    assert plan.counts["skipped"] == 7
    assert not plan.is_empty
    assert "(skipped)" in describe_plan(plan)


def test_empty_source_with_a_populated_target_is_refused() -> None:
    target = snap(DST, thing_types=[{"name": "t"}])
    with pytest.raises(PlanRefusedError) as refused:
        plan_for(snap(SRC), target, ALLOW_DELETES)
    assert refused.value.guard == "empty_source"
    assert isinstance(refused.value, PermanentError)


def test_suspiciously_small_source_is_refused() -> None:
    source = snap(SRC, things=[{"name": f"t{i}"} for i in range(4)])
    target = snap(DST, things=[{"name": f"t{i}"} for i in range(10)])
    with pytest.raises(PlanRefusedError) as refused:
        plan_for(source, target, ALLOW_DELETES)
    assert refused.value.guard == "min_source_ratio"
    assert "4 things" in str(refused.value)


def test_source_at_the_ratio_is_accepted() -> None:
    source = snap(SRC, things=[{"name": f"t{i}"} for i in range(5)])
    target = snap(DST, things=[{"name": f"t{i}"} for i in range(10)])
    plan = plan_for(source, target, ALLOW_DELETES)
    assert plan.counts["delete.thing"] == 5


def test_plan_over_max_changes_is_refused_and_none_means_no_cap() -> None:
    # A destination that already holds part of the fleet: the cap applies.
    source = snap(SRC, things=[{"name": f"t{i}"} for i in range(5)])
    target = snap(DST, things=[{"name": "t0"}])
    with pytest.raises(PlanRefusedError) as refused:
        plan_for(source, target, Guards(max_changes=3))
    assert refused.value.guard == "max_changes"

    assert len(plan_for(source, target, Guards(max_changes=4)).actions) == 4
    assert len(plan_for(source, target, Guards(max_changes=None)).actions) == 4


def test_the_first_run_into_an_empty_destination_is_not_capped() -> None:
    # Issue 22, item 2: the deploy guide's backfill of a fleet over the default cap (1000).
    source = snap(SRC, things=[{"name": f"t{i:04}"} for i in range(1500)])
    plan = plan_for(source, snap(DST), Guards())
    assert len(plan.actions) == 1500
    # the same fleet into a destination holding one of them is capped again
    with pytest.raises(PlanRefusedError, match="max_changes"):
        plan_for(source, snap(DST, things=[{"name": "t0000"}]), Guards())


def test_a_refusal_names_the_knob_of_the_entry_point_that_raised_it() -> None:
    source = snap(SRC, things=[{"name": f"t{i}"} for i in range(5)])
    target = snap(DST, things=[{"name": "t0"}])
    with pytest.raises(PlanRefusedError) as refused:
        plan_for(source, target, Guards(max_changes=3))
    assert "--max-changes" not in str(refused.value)  # the planner knows no entry point
    cli = refused.value.naming(CLI_KNOBS)
    job = refused.value.naming(JOB_KNOBS)
    assert "--max-changes" in str(cli) and "MAX_CHANGES" not in str(cli)
    assert "MAX_CHANGES" in str(job) and "MaxChanges" in str(job)
    assert "--max-changes" not in str(job)
    assert cli.guard == job.guard == "max_changes"


def test_skipped_deletes_do_not_count_against_max_changes() -> None:
    source, target = target_with_extras()
    plan = plan_for(source, target, Guards(max_changes=1))
    assert len(plan.skipped) == 7


def table_only_audit() -> tuple[Snapshot, Snapshot, Any]:
    """Registries in sync; the table holds a group neither has (its delete event lost) with a
    membership, and a membership of a group it holds deleted (kept from before the cascade)."""
    registry = {"things": [{"name": "t"}], "thing_groups": [{"name": "kept"}]}
    source, target = snap(SRC, **registry), snap(DST, **registry)
    rows = [
        Item(EntityKind.THING, "t", {"thing_type": None, "attributes": {}}, False, SRC, 1, "e"),
        Item(EntityKind.THING_GROUP, "kept", {"parent": None}, False, SRC, 1, "e"),
        Item(EntityKind.THING_GROUP, "lost", {"parent": None}, False, SRC, 1, "e"),
        Item(EntityKind.MEMBERSHIP, "t#lost", {}, False, SRC, 1, "e"),
        Item(EntityKind.THING_GROUP, "gone", {}, True, SRC, 1, "e"),
        Item(EntityKind.MEMBERSHIP, "t#gone", {}, False, SRC, 1, "e"),
    ]
    table = table_snapshot(rows, SRC, 1)
    return source, target, explain(diff_snapshots(source, target), source, table, target)


def test_rows_in_neither_registry_are_tombstoned_without_allow_deletes() -> None:
    # GIVEN the three-way audit found rows of the table no registry holds
    source, target, report = table_only_audit()

    plan = build_plan(report, source, target, DEFAULT_GUARDS, now=NOW)

    # THEN each gets a delete (a tombstone for the table), links before their group; no guard
    # holds them back: they delete nothing either registry holds
    assert order(plan) == [
        ("delete", EntityKind.MEMBERSHIP, "t#lost"),
        ("delete", EntityKind.MEMBERSHIP, "t#gone"),
        ("delete", EntityKind.THING_GROUP, "lost"),
    ]
    assert all(a.reason == f"table only: in neither {SRC} nor {DST}" for a in plan.actions)
    assert plan.skipped == ()
    # AND they count against the cap like any action
    with pytest.raises(PlanRefusedError, match="max_changes"):
        build_plan(report, source, target, Guards(max_changes=2), now=NOW)


def test_an_extra_entity_the_table_disagrees_on_is_still_held_without_allow_deletes() -> None:
    # GIVEN a group only the destination holds, the table holding other values of it
    source = snap(SRC, things=[{"name": "t"}])
    target = snap(DST, things=[{"name": "t"}], thing_groups=[{"name": "g", "description": "x"}])
    table = snap(SRC, things=[{"name": "t"}], thing_groups=[{"name": "g", "description": "y"}])
    report = explain(diff_snapshots(source, target), source, table, target)
    assert [(d.name, d.kind, d.where) for d in report.drifts] == [("g", "extra", "table_only")]

    plan = build_plan(report, source, target, DEFAULT_GUARDS, now=NOW)

    # THEN it is a registry's entity: a delete only with --allow-deletes
    assert plan.actions == ()
    assert [(a.op, a.name) for a in plan.skipped] == [("delete", "g")]


def test_in_sync_registries_give_an_empty_plan() -> None:
    plan = plan_for(full_source(), snap(DST, **_records_of_full_source()))
    assert plan.is_empty
    assert plan.counts == {"skipped": 0, "total": 0}


def _records_of_full_source() -> dict[str, Any]:
    return {
        "thing_types": [
            {"name": "sensor", "description": "a sensor", "searchable_attributes": ["a"]}
        ],
        "thing_groups": HIERARCHY,
        "billing_groups": [{"name": "bill", "description": "cost centre"}],
        "things": [
            {
                "name": "t1",
                "thing_type": "sensor",
                "attributes": {"a": "1"},
                "billing_group": "bill",
            },
            {"name": "t0"},
        ],
        "memberships": [{"thing": "t1", "group": "a-leaf"}],
    }


# --- binding to snapshots ---------------------------------------------------------------------


def test_plan_records_snapshots_and_expiry() -> None:
    source = full_source()
    target = snap(DST)
    plan = plan_for(source, target, Guards(ttl_seconds=60))
    assert plan.source_fingerprint == source.fingerprint()
    assert plan.target_fingerprint == target.fingerprint()
    assert plan.source_taken_at_ms == source.taken_at_ms
    assert (plan.created_at_ms, plan.expires_at_ms) == (NOW, NOW + 60_000)
    assert (plan.source_region, plan.target_region) == (SRC, DST)


def test_fresh_plan_passes_check_fresh() -> None:
    source, target = full_source(), snap(DST)
    plan = plan_for(source, target)
    check_fresh(
        plan,
        now=NOW + 1000,
        source_fingerprint=source.fingerprint(),
        target_fingerprint=target.fingerprint(),
    )


def test_expired_plan_is_stale() -> None:
    plan = plan_for(full_source(), snap(DST), Guards(ttl_seconds=60))
    with pytest.raises(StalePlanError, match="expired"):
        check_fresh(plan, now=NOW + 60_000)


@pytest.mark.parametrize("side", ["source", "target"])
def test_plan_is_stale_once_a_registry_changed(side: str) -> None:
    source, target = full_source(), snap(DST)
    plan = plan_for(source, target)
    moved = snap(SRC if side == "source" else DST, things=[{"name": "newcomer"}]).fingerprint()
    fingerprints = {
        "source_fingerprint": source.fingerprint(),
        "target_fingerprint": target.fingerprint(),
        f"{side}_fingerprint": moved,
    }
    with pytest.raises(StalePlanError, match=side):
        check_fresh(plan, now=NOW, **fingerprints)


# --- the plan file ----------------------------------------------------------------------------


def test_plan_json_round_trip(tmp_path: Path) -> None:
    # GIVEN a plan with upserts of every kind and deletes
    _, target = target_with_extras()
    plan = plan_for(full_source(), target, ALLOW_DELETES)
    assert {a.op for a in plan.actions} == {"upsert", "delete"}
    data = plan.to_json()
    assert data["schema_version"] == PLAN_SCHEMA_VERSION
    assert data["counts"]["total"] == len(plan.actions)
    assert Plan.from_json(data) == plan

    path = tmp_path / "plan.json"
    plan.save(path)
    loaded = Plan.load(path)
    assert loaded == plan
    assert isinstance(loaded.actions[0], RepairAction)
    assert isinstance(loaded.actions[0].entity, EntityKind)
    assert loaded.guards == ALLOW_DELETES


def test_plan_id_is_stable_for_the_same_plan_and_differs_otherwise() -> None:
    a = plan_for(full_source(), snap(DST))
    b = plan_for(full_source(), snap(DST))
    c = build_plan(
        diff_snapshots(full_source(), snap(DST)), full_source(), snap(DST), Guards(), now=NOW + 1
    )
    assert a.plan_id == b.plan_id
    assert a.plan_id != c.plan_id


def test_unknown_schema_version_is_refused() -> None:
    data = plan_for(full_source(), snap(DST)).to_json()
    data["schema_version"] = PLAN_SCHEMA_VERSION + 1
    with pytest.raises(PlanFormatError, match="schema_version"):
        Plan.from_json(data)


def test_malformed_plan_file_is_refused(tmp_path: Path) -> None:
    data = plan_for(full_source(), snap(DST)).to_json()
    data["actions"][0]["op"] = "explode"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(PlanFormatError, match="actions"):
        Plan.load(bad)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(PlanFormatError):
        Plan.load(garbage)


# --- a plan file is untrusted -----------------------------------------------------------------


def forge(data: dict[str, Any]) -> dict[str, Any]:
    """What an attacker who knows the format does after editing: recompute the plan id."""
    body = {k: v for k, v in data.items() if k not in ("counts", "signature", "plan_id")}
    body["plan_id"] = ""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {**data, "plan_id": f"{data['created_at_ms']}-{digest[:12]}"}


def skipped_delete_plan() -> dict[str, Any]:
    source, target = target_with_extras()
    plan = plan_for(source, target)  # deletes not allowed: they are listed as skipped
    assert plan.skipped and not [a for a in plan.actions if a.op == "delete"]
    return plan.to_json()


def test_a_plan_edited_after_it_was_made_fails_its_content_hash(tmp_path: Path) -> None:
    # GIVEN a plan file whose skipped delete was moved into its actions by hand
    data = skipped_delete_plan()
    data["actions"].append(data["skipped"].pop())
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    # THEN loading refuses it: the content no longer hashes to the plan id
    with pytest.raises(PlanIntegrityError, match="content hash does not match plan id"):
        Plan.load(path)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda d: d.update(source_region=DST, target_region=SRC), id="swap-regions"),
        pytest.param(lambda d: d.update(expires_at_ms=10_000_000_000_000), id="expiry-2286"),
        pytest.param(lambda d: d["guards"].update(allow_deletes=True), id="recorded-guards"),
    ],
)
def test_any_edit_breaks_the_content_hash(edit: Any) -> None:
    data = plan_for(full_source(), snap(DST)).to_json()
    edit(data)
    with pytest.raises(PlanIntegrityError):
        Plan.from_json(data)


def test_a_forged_delete_is_refused_by_the_appliers_own_guard() -> None:
    # GIVEN a skipped delete moved into the actions and the id recomputed, and the plan's
    # recorded guards claiming deletes were allowed
    data = skipped_delete_plan()
    data["actions"].append(data["skipped"].pop())
    data["guards"]["allow_deletes"] = True
    plan = Plan.from_json(forge(data))
    # THEN the applier's guards (default: no deletes) refuse it, whatever the file says
    with pytest.raises(PlanRefusedError, match="allow_deletes") as refused:
        check_trusted(plan, Guards(), now=NOW)
    assert refused.value.guard == "allow_deletes"
    # and the operator's explicit --allow-deletes lets it through
    check_trusted(plan, Guards(allow_deletes=True), now=NOW)


def test_a_plan_over_the_appliers_cap_is_refused() -> None:
    # GIVEN a plan of 1,500 actions built (or edited) under a raised cap
    source = snap(SRC, things=[{"name": f"t{i:04d}"} for i in range(1500)])
    plan = plan_for(source, snap(DST), Guards(max_changes=None))
    assert len(plan.actions) == 1500
    # THEN applying under the default cap of 1,000 refuses it
    with pytest.raises(PlanRefusedError, match="1500 changes exceed the cap of 1000"):
        check_trusted(plan, Guards(), now=NOW)
    check_trusted(plan, Guards(max_changes=None), now=NOW)


def test_an_expiry_too_far_ahead_is_refused() -> None:
    # GIVEN a plan whose expiry was pushed to the year 2286 (id recomputed)
    data = plan_for(full_source(), snap(DST)).to_json()
    data["expires_at_ms"] = 10_000_000_000_000
    plan = Plan.from_json(forge(data))
    with pytest.raises(PlanRefusedError, match=f"at most {MAX_TTL_SECONDS}s"):
        check_trusted(plan, Guards(), now=NOW)


def test_a_plan_from_the_future_is_refused() -> None:
    data = plan_for(full_source(), snap(DST)).to_json()
    data["created_at_ms"] = NOW + 3_600_000
    data["expires_at_ms"] = NOW + 7_200_000
    with pytest.raises(PlanRefusedError, match=r"created_at is 3600s ahead of this machine"):
        check_trusted(Plan.from_json(forge(data)), Guards(), now=NOW)


@pytest.mark.parametrize("ahead_ms", [1, MAX_CLOCK_SKEW_MS - 10_000])
def test_a_snapshot_stamped_after_the_appliers_clock_is_refused_even_within_the_skew(
    ahead_ms: int,
) -> None:
    # The corrective events carry source_taken_at: stamped ahead, they would make real changes
    # made until then stale (persist accepts registry events up to the skew ahead).
    plan = plan_for(snap(SRC, taken_at_ms=NOW + ahead_ms, things=[{"name": "t"}]), snap(DST))
    plan = replace(plan, created_at_ms=NOW + ahead_ms, expires_at_ms=NOW + 3_600_000)
    with pytest.raises(PlanRefusedError, match=r"source_taken_at is .* ahead") as refused:
        check_trusted(plan, Guards(), now=NOW)
    assert refused.value.guard == "clock"
    check_trusted(plan, Guards(), now=NOW + ahead_ms)


def test_a_snapshot_newer_than_its_plan_is_refused() -> None:
    data = plan_for(full_source(), snap(DST)).to_json()
    data["source_taken_at_ms"] = NOW + 1
    with pytest.raises(PlanFormatError, match="source_taken_at"):
        check_trusted(Plan.from_json(forge(data)), Guards(), now=NOW + 10)


def test_a_plan_with_one_region_on_both_sides_is_refused() -> None:
    data = plan_for(full_source(), snap(DST)).to_json()
    data["target_region"] = SRC
    with pytest.raises(PlanFormatError, match="both us-east-1"):
        check_trusted(Plan.from_json(forge(data)), Guards(), now=NOW)


def test_an_honest_plan_passes_until_it_expires() -> None:
    plan = plan_for(full_source(), snap(DST), Guards(ttl_seconds=60))
    check_trusted(plan, Guards(), now=NOW + 59_999)
    with pytest.raises(StalePlanError, match="expired"):
        check_trusted(plan, Guards(), now=NOW + 60_000)


def test_a_rebuilt_plan_must_have_the_same_actions() -> None:
    # GIVEN a plan whose upsert was edited (a forger's id recomputed)
    honest = plan_for(full_source(), snap(DST))
    data = honest.to_json()
    data["actions"][-1]["fields"] = {"thing_type": "evil"}
    forged = Plan.from_json(forge(data))
    # WHEN compared with the plan rebuilt from the same registries
    rebuilt = plan_for(full_source(), snap(DST))
    check_same_actions(honest, rebuilt)
    # THEN the forged one is refused, naming the first action no registry calls for
    with pytest.raises(StalePlanError, match="1 not called for, 1 missing; first: upsert"):
        check_same_actions(forged, rebuilt)


# --- optional signatures (IOT_CRR_PLAN_KEY) ---------------------------------------------------

KEY = b"s3cret"


def test_a_signed_plan_loads_with_its_key(tmp_path: Path) -> None:
    plan = plan_for(full_source(), snap(DST))
    path = tmp_path / "plan.json"
    plan.save(path, key=KEY)
    assert json.loads(path.read_text())["signature"].startswith("hmac-sha256:")
    assert Plan.load(path, key=KEY) == plan


def test_a_signed_plan_is_refused_with_a_wrong_key_or_none(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    plan_for(full_source(), snap(DST)).save(path, key=KEY)
    with pytest.raises(PlanIntegrityError, match="signature does not verify"):
        Plan.load(path, key=b"other")
    with pytest.raises(PlanIntegrityError, match="signed but IOT_CRR_PLAN_KEY is not set"):
        Plan.load(path)


def test_an_unsigned_plan_is_refused_when_a_key_is_set(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    plan_for(full_source(), snap(DST)).save(path)
    with pytest.raises(PlanIntegrityError, match="not signed"):
        Plan.load(path, key=KEY)


def test_a_forged_signed_plan_fails_its_signature() -> None:
    # An attacker without the key can recompute the id but not the signature.
    data = plan_for(full_source(), snap(DST)).to_json(KEY)
    data["actions"][-1]["fields"] = {"thing_type": "evil"}
    with pytest.raises(PlanIntegrityError, match="signature"):
        Plan.from_json(forge(data), KEY)


def test_the_key_comes_from_the_environment() -> None:
    assert plan_key({"IOT_CRR_PLAN_KEY": "k"}) == b"k"
    assert plan_key({"IOT_CRR_PLAN_KEY": ""}) is None
    assert plan_key({}) is None


# --- what a plan may do on its own word (apply --no-verify) ----------------------------------

CERT = "a" * 64
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def upsert(entity: EntityKind, name: str, changed: tuple[str, ...] = (), **fields: Any) -> Any:
    return RepairAction("upsert", entity, name, fields=fields, changed=changed)


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (upsert(EntityKind.CERTIFICATE, CERT, ("status",), status="REVOKED", pem=PEM), "revoke"),
        (upsert(EntityKind.CERTIFICATE, CERT, status="ACTIVE", pem=PEM), "grant"),
        (upsert(EntityKind.CERTIFICATE, CERT, ("status",), status="INACTIVE", pem=PEM), None),
        (upsert(EntityKind.POLICY, "p", document='{"Statement":[]}'), "grant"),
        (upsert(EntityKind.POLICY_TARGET, f"p#cert/{CERT}"), "grant"),
        (upsert(EntityKind.THING_PRINCIPAL, f"t#{CERT}", exclusive=False), "grant"),
        (upsert(EntityKind.THING, "t", ("thing_type",), thing_type=None), "untype"),
        (upsert(EntityKind.THING, "t", ("thing_type",), thing_type="Camera"), None),
        (upsert(EntityKind.THING, "t", (), thing_type=None), None),  # a new untyped thing
        (upsert(EntityKind.THING, "t", ("attributes.a",), thing_type=None), None),
        (RepairAction("delete", EntityKind.CERTIFICATE, CERT), None),  # --allow-deletes' job
    ],
)
def test_hazards_are_the_irreversible_and_widening_changes(
    action: RepairAction, expected: str | None
) -> None:
    assert hazard(action) == expected


def plan_of(*actions: RepairAction) -> Plan:
    return replace(plan_for(full_source(), snap(DST)), actions=actions)


def test_an_unsigned_plan_is_never_applied_on_its_own_word() -> None:
    honest = plan_for(full_source(), snap(DST))
    assert hazards(honest) == {}
    with pytest.raises(PlanRefusedError, match="unsigned plan is applied only with --verify") as e:
        check_unverified(honest, signed=False)
    assert e.value.guard == "unsigned"
    check_unverified(honest, signed=True)


def test_a_signed_plan_with_hazards_needs_verification_and_says_which() -> None:
    plan = plan_of(
        upsert(EntityKind.THING, "t0"),
        upsert(EntityKind.CERTIFICATE, CERT, ("status",), status="REVOKED", pem=PEM),
        upsert(EntityKind.POLICY, "p1", document="{}"),
        upsert(EntityKind.POLICY_TARGET, f"p1#cert/{CERT}"),
        upsert(EntityKind.THING, "gw", ("thing_type",), thing_type=None),
    )
    with pytest.raises(PlanRefusedError) as refused:
        check_unverified(plan, signed=True)
    assert refused.value.guard == "unverified"
    assert str(refused.value) == (
        f"plan refused (unverified): the plan revokes 1 certificate (certificate {CERT}); "
        f"grants access with 1 policy, 1 policy attachment (policy p1, policy_target "
        f"p1#cert/{CERT}); removes the type of 1 thing (thing gw); such changes are emitted "
        "only when fresh snapshots call for them: apply it with --verify (the default)"
    )
    summary = summarize_plan(plan, now=NOW)
    assert f"  revoke certificate {CERT}" in summary
    assert "  grant access: policy p1" in summary
    assert "  remove the type of thing gw" in summary


def test_a_changed_upsert_records_what_changed() -> None:
    source = snap(SRC, things=[{"name": "t", "attributes": {"a": "1"}, "thing_type": None}])
    target = snap(DST, things=[{"name": "t", "attributes": {"a": "2"}, "thing_type": "x"}])
    (action,) = plan_for(source, target).actions
    assert action.changed == ("attributes.a", "thing_type")
    assert hazard(action) == "untype"
    (missing,) = plan_for(source, snap(DST)).actions
    assert missing.changed == ()


def test_the_source_size_guards_apply_to_the_sizes_a_plan_records() -> None:
    # GIVEN a plan made under a lowered ratio (4 things in the source, 10 in the target)
    source = snap(SRC, things=[{"name": f"t{i}"} for i in range(4)])
    target = snap(DST, things=[{"name": f"t{i}"} for i in range(10)])
    plan = plan_for(source, target, Guards(allow_deletes=True, min_source_ratio=0.3))
    assert plan.sizes == Sizes(
        source_things=4, target_things=10, source_entities=4, target_entities=10
    )
    # THEN the applier's own ratio is checked without snapshots
    with pytest.raises(PlanRefusedError, match=r"4 things, fewer than 0\.5 x the target.s 10"):
        check_trusted(plan, Guards(allow_deletes=True), now=NOW)
    check_trusted(plan, Guards(allow_deletes=True, min_source_ratio=0.3), now=NOW)
    # AND an empty source is refused whatever the ratio
    empty = replace(plan, sizes=Sizes(0, 10, 0, 10))
    with pytest.raises(PlanRefusedError, match="empty"):
        check_trusted(empty, Guards(allow_deletes=True, min_source_ratio=0.0), now=NOW)
