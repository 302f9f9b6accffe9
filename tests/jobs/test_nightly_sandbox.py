"""Two consecutive nightly runs on the sandbox, drift injected between them (tests/jobs/scenario.py).

End to end: the job snapshots both sandbox regions, emits corrective events into the state
table, the sandbox pipeline repairs the destination, and the artefacts and index tell the story.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from jobs import history
from jobs.artefacts import LocalStore, RunArtefacts, load_drift_items, load_index
from pipeline.model import EntityKind
from reconcile.plan import Plan
from tests.jobs.scenario import Scenario

RUN_FILES = (
    "report.json",
    "report.html",
    "plan.json",
    "drift_items.parquet",
    "readiness.json",
    "readiness.html",
)
SNAPSHOT_FILES = ("snapshot.json", "things.parquet", "memberships.parquet")


def test_each_run_writes_its_artefacts_under_a_date_partition(scenario: Scenario) -> None:
    root = Path(scenario.location)
    for run in scenario.runs:
        prefix = run["prefix"]
        # the run id is the time it started (jobs.run.default_run_id), its day the partition
        assert prefix == f"runs/date={run['run_id'][:10]}/run={run['run_id']}/"
        for name in RUN_FILES:
            assert (root / prefix / name).is_file(), name
        for side in ("source", "target"):
            for name in SNAPSHOT_FILES:
                assert (root / prefix / side / name).is_file(), f"{side}/{name}"


def test_the_index_has_one_completed_row_per_run(scenario: Scenario) -> None:
    index = load_index(LocalStore(scenario.location))

    assert list(index["run_id"]) == [run["run_id"] for run in scenario.runs]
    assert list(index["status"]) == ["completed", "completed"]
    assert list(index["drift_total"]) == [3, 2]
    assert list(index["drift.thing.missing"]) == [1, 0]
    assert list(index["drift.thing.extra"]) == [0, 1]
    assert list(index["repairs_emitted"]) == [3, 1]
    assert list(index["held_back"]) == [0, 1]  # the extra thing: deletes are not allowed
    assert (index["finished_at"] > index["started_at"]).all()
    assert (index["duration_diff_ms"] > 0).all()


def test_the_first_run_repairs_drift_through_the_pipeline(scenario: Scenario) -> None:
    # t1 was deleted in the destination and came back; the extra thing stays (no deletes)
    assert scenario.target_things_after == ["rogue", "t0", "t1", "t2", "t3"]
    # t0's membership, removed before run 2, was repaired by run 2
    assert scenario.target_floor_after == ["t0", "t1"]


def test_history_shows_first_seen_and_repaired(scenario: Scenario) -> None:
    store = LocalStore(scenario.location)
    index = load_index(store)
    episodes = history.drift_episodes(index, load_drift_items(store, index))
    by_item = episodes.assign(
        item=episodes["entity"] + ":" + episodes["name"] + ":" + episodes["kind"]
    ).set_index("item")
    day1, day2 = index["started_at"]

    repaired = by_item.loc["thing:t1:missing"]
    assert repaired["first_seen"] == day1
    assert repaired["repaired_at"] == day2
    assert repaired["time_to_repair"] == day2 - day1
    assert not repaired["open"]
    assert by_item.loc["thing:t2:changed", "repaired_run"] == index["run_id"][1]

    still_open = by_item.loc["thing:rogue:extra"]
    assert still_open["first_seen"] == day2
    assert still_open["open"]
    assert pd.isna(still_open["repaired_at"])


def test_the_report_json_lists_the_drift(scenario: Scenario) -> None:
    artefacts = RunArtefacts(LocalStore(scenario.location), scenario.runs[0]["prefix"])
    report = artefacts.read_report_json()

    assert report["schema_version"] == "2"
    assert {(d["entity"], d["name"], d["kind"]) for d in report["drifts"]} == {
        ("thing", "t1", "missing"),
        ("thing", "t2", "changed"),
        ("membership", "t1#floor-1", "missing"),
    }
    # the nightly job always reads the state table: these were hand edits in the destination
    assert report["explained"] is True
    assert {d["where"] for d in report["drifts"]} == {"lost_after_table"}
    plan = Plan.from_json(json.loads(artefacts.store.get(artefacts.key("plan.json"))))
    assert [a.name for a in plan.actions] == ["t1", "t2", "t1#floor-1"]


def test_a_second_run_with_the_same_run_id_does_nothing(scenario: Scenario) -> None:
    rerun = scenario.rerun

    assert rerun["skipped"] is True
    assert "already completed" in rerun["message"]
    assert rerun["run_id"] == scenario.runs[1]["run_id"]
    # the record it found is the completed run's, untouched
    assert rerun["finished_at_ms"] == scenario.runs[1]["finished_at_ms"]


def test_the_run_publishes_emf_metrics(scenario: Scenario) -> None:
    documents = [json.loads(line) for line in scenario.metrics]
    totals = documents[0]
    drift = {(d["Entity"], d["DriftKind"]): d["Drift"] for d in documents[1:]}

    assert totals["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "IotRegistryCrr"
    assert totals["RepairsEmitted"] == 3
    assert totals["DriftTotal"] == 3
    assert totals["RunDuration"] > 0
    assert drift[("thing", "missing")] == 1
    assert drift[("membership", "missing")] == 1
    assert len(drift) == len(EntityKind) * 3  # every entity x drift kind, zeros included
    # The readiness of a sample (the scenario's things have no certificate: none to check)
    assert totals["DevicesNotReadyInDR"] == 0
    assert totals["ReadinessChecksFailedInDR"] == 0
