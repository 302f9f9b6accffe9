"""The artefact stores (local directory, S3 on moto) and the run index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from jobs.artefacts import (
    ArtefactError,
    ArtefactNotFoundError,
    LocalStore,
    RunArtefacts,
    RunRecord,
    S3Store,
    Store,
    index_key,
    load_index,
    open_store,
    partition_date,
    read_run_record,
    run_prefix,
    write_run_record,
)
from reconcile.snapshot import Snapshot

BUCKET = "crr-reports"


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "reports")
    request.getfixturevalue("aws")
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return S3Store(client, BUCKET, "nightly/")


def record(run_id: str, started: int, **fields: Any) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        prefix=f"runs/date=2026-01-01/run={run_id}/",
        status="completed",
        started_at_ms=started,
        finished_at_ms=started + 1000,
        source_region="us-east-1",
        target_region="eu-west-1",
        **fields,
    )


def test_bytes_round_trip_and_listing(store: Store) -> None:
    store.put("runs/a/x.json", b"1")
    store.put("runs/b/y.json", b"2")
    store.put("index/z.json", b"3")

    assert store.get("runs/a/x.json") == b"1"
    assert store.exists("runs/b/y.json")
    assert not store.exists("runs/c.json")
    assert store.keys("runs/") == ["runs/a/x.json", "runs/b/y.json"]
    with pytest.raises(ArtefactNotFoundError):
        store.get("runs/missing.json")


def test_snapshots_round_trip_through_the_store(store: Store) -> None:
    snapshot = Snapshot.from_records(
        "us-east-1",
        1,
        things=[{"name": "t1", "thing_type": "sensor", "attributes": {"a": "1"}}],
        thing_types=[{"name": "sensor"}],
        memberships=[{"thing": "t1", "group": "g"}],
        thing_groups=[{"name": "g"}],
    )
    artefacts = RunArtefacts(store, "runs/date=2026-01-01/run=r1/")

    assert not artefacts.has_snapshot("source")
    artefacts.save_snapshot("source", snapshot)

    assert artefacts.has_snapshot("source")
    assert artefacts.load_snapshot("source") == snapshot


def test_the_index_holds_one_record_per_run(store: Store) -> None:
    write_run_record(
        store, record("r2", 2000, drift={"thing.missing": 2}, drift_total=2, diffed=True)
    )
    write_run_record(
        store, record("r1", 1000, drift={"thing.missing": 1}, drift_total=1, diffed=True)
    )
    # a rerun of r1 replaces its record rather than adding a row
    write_run_record(
        store, record("r1", 1000, drift={"thing.missing": 5}, drift_total=5, diffed=True)
    )

    index = load_index(store)

    assert list(index["run_id"]) == ["r1", "r2"]  # in start order
    assert list(index["drift.thing.missing"]) == [5, 2]
    assert str(index["started_at"].dt.tz) == "UTC"
    assert read_run_record(store, "r2") == record(
        "r2", 2000, drift={"thing.missing": 2}, drift_total=2, diffed=True
    )
    assert read_run_record(store, "r3") is None


def test_an_empty_location_has_an_empty_index(tmp_path: Path) -> None:
    assert load_index(LocalStore(tmp_path)).empty


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    made: list[str] = []

    def s3_client() -> Any:
        made.append("s3")
        return object()

    assert isinstance(open_store(str(tmp_path), s3_client), LocalStore)
    remote = open_store("s3://bucket/some/prefix", s3_client)
    assert isinstance(remote, S3Store)
    assert (remote.bucket, remote.prefix) == ("bucket", "some/prefix")
    assert made == ["s3"]
    with pytest.raises(ArtefactError):
        open_store("gs://bucket/prefix", s3_client)


def test_run_partitions_follow_the_run_date() -> None:
    assert partition_date("2026-03-04", 0).isoformat() == "2026-03-04"
    assert partition_date("backfill", 1_767_225_600_000).isoformat() == "2026-01-01"
    assert run_prefix("r1", partition_date("r1", 0)) == "runs/date=1970-01-01/run=r1/"
    with pytest.raises(ArtefactError):
        run_prefix("../escape", partition_date("x", 0))


@pytest.mark.parametrize(
    "key", ["../outside.json", "runs/../../outside.json", "/etc/passwd", "runs\\..\\x"]
)
def test_the_local_store_refuses_keys_outside_its_root(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "reports")
    with pytest.raises(ArtefactError, match="outside the store"):
        store.put(key, b"x")
    with pytest.raises(ArtefactError, match="outside the store"):
        store.get(key)
    assert not (tmp_path / "outside.json").exists()


def test_a_forged_index_prefix_cannot_read_outside_the_store(tmp_path: Path) -> None:
    # GIVEN a file next to the store and a run record whose prefix points at it
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "report.json").write_text("{}")
    store = LocalStore(tmp_path / "reports")
    artefacts = RunArtefacts(store, "../secret/")
    with pytest.raises(ArtefactError, match="outside the store"):
        artefacts.read_report_json()


def test_a_symlink_out_of_the_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "reports" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ArtefactError, match="resolves outside"):
        LocalStore(tmp_path / "reports").put("link/x", b"x")


@pytest.mark.parametrize("run_id", ["r1\n", "r1/..", "", ".hidden", "a" * 129])
def test_run_ids_must_match_in_full(run_id: str) -> None:
    with pytest.raises(ArtefactError, match="run id"):
        run_prefix(run_id, partition_date("x", 0))


def test_records_of_older_runs_still_read(store: Store) -> None:
    # GIVEN a record written when the job still counted the destination's type deletions
    old = {**record("2025-12-31", 1000).to_json(), "pending_types_deleted": 0}
    store.put(index_key("2025-12-31"), json.dumps(old).encode())
    # THEN it reads back as a current record
    assert read_run_record(store, "2025-12-31") == record("2025-12-31", 1000)
