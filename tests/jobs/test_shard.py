"""Sharded runs (shards + merge) give the same report as an unsharded run (moto in-process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from jobs.artefacts import ArtefactNotFoundError, LocalStore, RunArtefacts, load_index
from jobs.config import RunConfig
from jobs.nightly import handle_event
from jobs.run import run_nightly
from jobs.shard import MergeSpec, ShardMismatchError, ShardResult, parse_merge, run_merge
from pipeline import aws as aws_clients
from pipeline.aws import ClientFactory
from pipeline.errors import EventValidationError
from reconcile.guards import Guards
from reconcile.plan import Plan
from tests.jobs.conftest import TABLE, fleet
from tests.jobs.scenario import DST, SRC, stepping_clock

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
RUN = "2026-01-01"


def config(location: Path) -> RunConfig:
    return RunConfig(
        source_region=SRC,
        destination_region=DST,
        state_table=TABLE,
        report_location=str(location),
        guards=Guards(max_changes=None),
    )


@pytest.fixture
def clients(aws: None) -> ClientFactory:
    return aws_clients.client


@pytest.fixture
def drifted(aws: None) -> None:
    fleet(boto3.client("iot", region_name=SRC), 30)
    fleet(boto3.client("iot", region_name=DST), 30, drifted=True)


def without_timestamps(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in {"generated_at", "generated_at_ms"}}


def without_loss_points(report: dict[str, Any]) -> dict[str, Any]:
    """The report minus the three-way audit's findings, which read the state table: the first
    run's repairs change the table before the second run reads it."""
    drifts = [{k: v for k, v in d.items() if k != "where"} for d in report["drifts"]]
    return {**without_timestamps(report), "drifts": drifts, "where_summary": None}


def plan_of(artefacts: RunArtefacts) -> Plan:
    return Plan.from_json(json.loads(artefacts.store.get(artefacts.key("plan.json"))))


def sharded_run(clients: ClientFactory, location: Path, count: int) -> dict[str, Any]:
    results = [
        handle_event(
            {"shard": {"index": i, "count": count}},
            config(location),
            clients,
            stepping_clock(T0),
        )
        for i in range(count)
    ]
    merge = {"merge": {"count": count, "shards": results}}
    return handle_event(merge, config(location), clients, stepping_clock(T0))


def test_sharded_and_unsharded_runs_give_identical_reports(
    drifted: None, clients: ClientFactory, tmp_path: Path
) -> None:
    # GIVEN the same drifted registries
    # WHEN one location gets an unsharded run and another 4 shards and a merge
    whole = run_nightly(config(tmp_path / "whole"), clients, stepping_clock(T0))
    merged = sharded_run(clients, tmp_path / "sharded", 4)

    # THEN both reports are identical but for their timestamps
    whole_art = RunArtefacts(LocalStore(tmp_path / "whole"), whole.record.prefix)
    shard_art = RunArtefacts(LocalStore(tmp_path / "sharded"), merged["prefix"])
    expected = whole_art.read_report_json()
    assert len(expected["drifts"]) > 10
    merged_report = shard_art.read_report_json()
    assert without_loss_points(merged_report) == without_loss_points(expected)
    assert merged_report["explained"] and all(d["where"] for d in merged_report["drifts"])
    # ... and so are the plans and the run records' findings
    assert plan_of(shard_art).actions == plan_of(whole_art).actions
    assert merged["drift"] == whole.record.drift
    assert merged["shards"] == 4
    assert merged["status"] == "completed"


def test_shards_share_one_snapshot_pair_and_write_partial_reports(
    drifted: None, clients: ClientFactory, tmp_path: Path
) -> None:
    results = [
        handle_event(
            {"shard": {"index": i, "count": 3}}, config(tmp_path), clients, stepping_clock(T0)
        )
        for i in range(3)
    ]

    assert {r["run_id"] for r in results} == {RUN}
    assert len({(r["source_fingerprint"], r["target_fingerprint"]) for r in results}) == 1
    artefacts = RunArtefacts(LocalStore(tmp_path), results[0]["prefix"])
    partial = [artefacts.read_shard_report(i, 3) for i in range(3)]
    assert sum(len(r.drifts) for r in partial) == sum(r["drift_total"] for r in results)
    assert all(r.drifts for r in partial)  # 30 things spread over every bucket
    # no run is recorded until the merge
    assert load_index(LocalStore(tmp_path)).empty


def test_merge_refuses_a_missing_shard(
    drifted: None, clients: ClientFactory, tmp_path: Path
) -> None:
    handle_event({"shard": {"index": 0, "count": 2}}, config(tmp_path), clients, stepping_clock(T0))

    with pytest.raises(ArtefactNotFoundError):
        run_merge(config(tmp_path), clients, stepping_clock(T0), MergeSpec(count=2))
    # the failure is on record, so the next firing retries
    assert list(load_index(LocalStore(tmp_path))["status"]) == ["failed"]


def test_merge_refuses_shards_of_different_runs(clients: ClientFactory, tmp_path: Path) -> None:
    shards = [
        ShardResult("a", 0, 2, "p/", "k0", 0, "", ""),
        ShardResult("b", 1, 2, "q/", "k1", 0, "", ""),
    ]
    spec = parse_merge({"merge": {"count": 2, "shards": [s.to_json() for s in shards]}})

    with pytest.raises(ShardMismatchError):
        run_merge(config(tmp_path), clients, stepping_clock(T0), spec)


@pytest.mark.parametrize(
    "event",
    [
        {"shard": {"index": 4, "count": 4}},
        {"shard": {"index": -1, "count": 4}},
        {"shard": {"count": 4}},
        {"merge": {"count": 0}},
    ],
)
def test_bad_shard_events_are_refused(
    event: dict[str, Any], clients: ClientFactory, tmp_path: Path
) -> None:
    with pytest.raises(EventValidationError):
        handle_event(event, config(tmp_path), clients, stepping_clock(T0))


def test_the_shard_report_is_the_reconcile_json_contract(
    drifted: None, clients: ClientFactory, tmp_path: Path
) -> None:
    result = handle_event(
        {"shard": {"index": 1, "count": 2}}, config(tmp_path), clients, stepping_clock(T0)
    )

    document = json.loads((tmp_path / result["report_key"]).read_text())
    assert document["schema_version"] == "2"
    assert len(document["drifts"]) == result["drift_total"]


def test_a_prepare_step_snapshots_once_for_every_shard(
    drifted: None, clients: ClientFactory, tmp_path: Path
) -> None:
    # GIVEN the run's snapshots taken by the prepare step
    prepared = handle_event({"prepare": {}}, config(tmp_path), clients, stepping_clock(T0))
    # ... and the registry changing afterwards
    boto3.client("iot", region_name=SRC).create_thing(thingName="late")

    # WHEN the shards and the merge run
    merged = sharded_run(clients, tmp_path, 2)

    # THEN they diffed the prepared snapshots, not the changed registry
    report = RunArtefacts(LocalStore(tmp_path), merged["prefix"]).read_report_json()
    assert report["fingerprints"]["source"] == prepared["source_fingerprint"]
    assert "late" not in {d["name"] for d in report["drifts"]}
