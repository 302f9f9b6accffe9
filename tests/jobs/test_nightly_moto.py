"""The nightly run's edges on moto in-process: failures on record, Step Functions emission,
an S3 report location, and the Lambda handler."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from jobs import history
from jobs.artefacts import LocalStore, RunArtefacts, S3Store, load_index
from jobs.config import RunConfig
from jobs.nightly import lambda_handler
from jobs.run import run_nightly
from pipeline import aws as aws_clients
from pipeline.aws import ClientFactory
from pipeline.model import EntityKind
from reconcile.guards import Guards, PlanRefusedError
from reconcile.partition import PartitionRefusedError
from reconcile.report import load_json
from tests.jobs.conftest import TABLE, fleet
from tests.jobs.scenario import DST, SRC, stepping_clock

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def clients(aws: None) -> ClientFactory:
    fleet(boto3.client("iot", region_name=SRC), 12)
    fleet(boto3.client("iot", region_name=DST), 12, drifted=True)
    return aws_clients.client


def config(location: str, **changes: object) -> RunConfig:
    base = RunConfig(
        source_region=SRC,
        destination_region=DST,
        state_table=TABLE,
        report_location=location,
        guards=Guards(max_changes=100),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_refused_plan_fails_the_run_on_record(clients: ClientFactory, tmp_path: Path) -> None:
    # GIVEN a cap of one change and more drift than that
    metrics: list[str] = []
    refused = config(str(tmp_path), guards=Guards(max_changes=1))

    # WHEN the run plans, THEN it raises the guard's error ...
    with pytest.raises(PlanRefusedError):
        run_nightly(refused, clients, stepping_clock(T0), metrics=metrics.append)

    # ... after recording the failure, the report (operators still see the drift) and metrics
    (row,) = load_index(LocalStore(tmp_path)).to_dict("records")
    assert row["status"] == "failed"
    assert "max_changes" in row["error"]
    # naming the job's knob, not the CLI's flag (issue 22, item 2)
    assert "MAX_CHANGES" in row["error"] and "--max-changes" not in row["error"]
    assert row["diffed"] and row["drift_total"] > 1
    assert (tmp_path / row["prefix"] / "report.json").is_file()
    assert json.loads(metrics[0])["RunFailed"] == 1

    # AND a second firing with the same run id runs again (a failed run is not "done")
    again = run_nightly(config(str(tmp_path)), clients, stepping_clock(T0))
    assert not again.skipped
    assert again.record.status == "completed"


def test_a_run_listing_things_by_type_refuses_a_region_with_an_untyped_thing(
    clients: ClientFactory, tmp_path: Path
) -> None:
    # GIVEN a destination holding things without a type (extra-0..2), both thing indexes on
    for region in (SRC, DST):
        boto3.client("iot", region_name=region).update_indexing_configuration(
            thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"}
        )
    by_type = config(str(tmp_path), partitions={EntityKind.THING: "type"})  # LIST_IN_PARTS

    # WHEN the job lists things in parts by type  THEN the run fails on record, naming an
    # untyped thing, instead of diffing a snapshot without them
    with pytest.raises(PartitionRefusedError, match=r"thing 'extra-\d' has no type"):
        run_nightly(by_type, clients, stepping_clock(T0))
    (row,) = load_index(LocalStore(tmp_path)).to_dict("records")
    assert row["status"] == "failed"
    assert "cannot be listed in parts by type" in row["error"]
    assert row["error"].endswith("(reading eu-west-1)")  # the region that refused


def test_two_runs_on_one_day_keep_their_own_records(clients: ClientFactory, tmp_path: Path) -> None:
    # GIVEN a run at 02:00 UTC and another at 14:00 the same day (an operator's, or a retry)
    first = run_nightly(config(str(tmp_path)), clients, stepping_clock(T0 + 2 * 3_600_000))
    second = run_nightly(config(str(tmp_path)), clients, stepping_clock(T0 + 14 * 3_600_000))

    # THEN neither was skipped nor overwritten: two ids, two prefixes, two rows of the index
    assert not second.skipped
    # (the clock moves 5 ms per reading: stepping_clock)
    assert first.record.run_id.startswith("2026-01-01T020000.")
    assert second.record.run_id.startswith("2026-01-01T140000.")
    assert first.record.prefix != second.record.prefix
    index = load_index(LocalStore(tmp_path))
    assert list(index["run_id"]) == [first.record.run_id, second.record.run_id]
    assert list(index["status"]) == ["completed", "completed"]
    # and the history the notebooks read shows both runs
    over_time = history.drift_over_time(index)
    assert list(over_time["run_id"]) == [first.record.run_id, second.record.run_id]


def test_repairs_go_to_the_persist_state_machine_when_configured(
    clients: ClientFactory, tmp_path: Path
) -> None:
    sfn = boto3.client("stepfunctions", region_name=SRC)
    arn = sfn.create_state_machine(
        name="persist",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]

    result = run_nightly(
        config(str(tmp_path), persist_state_machine_arn=arn), clients, stepping_clock(T0)
    )

    started = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert result.record.emitted_via == "stepfunctions"
    assert result.record.repairs_emitted == result.record.planned == len(started) > 0
    assert result.record.emit_outcomes == {"started": len(started)}


def test_artefacts_go_to_s3_for_an_s3_location(clients: ClientFactory) -> None:
    s3 = boto3.client("s3", region_name=SRC)
    s3.create_bucket(Bucket="crr-reports")

    result = run_nightly(config("s3://crr-reports/nightly"), clients, stepping_clock(T0))

    store = S3Store(s3, "crr-reports", "nightly")
    assert list(load_index(store)["run_id"]) == [result.record.run_id]
    assert result.record.prefix.startswith("runs/date=2026-01-01/")
    artefacts = RunArtefacts(store, result.record.prefix)
    assert load_json(artefacts.read_report_json()).drifts
    assert artefacts.has_snapshot("source") and artefacts.has_snapshot("target")


def test_the_lambda_handler_runs_a_scheduled_event(
    clients: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "SOURCE_REGION": SRC,
        "TARGET_REGION": DST,
        "STATE_TABLE": TABLE,
        "REPORT_LOCATION": str(tmp_path),
        "RUN_ID": "scheduled-1",
        "MAX_CHANGES": "0",
        # plain moto has no TestAuthorization nor authorizers: readiness runs on the sandbox
        # (tests/jobs/scenario.py)
        "READINESS_SAMPLE": "0",
    }.items():
        monkeypatch.setenv(name, value)

    first = lambda_handler({"source": "nightly-schedule"}, None)
    second = lambda_handler({"source": "nightly-schedule"}, None)

    assert first["status"] == "completed" and not first["skipped"]
    assert first["run_id"] == "scheduled-1"
    assert second["skipped"] is True


def test_a_run_only_reads_the_destination(clients: ClientFactory, tmp_path: Path) -> None:
    # GIVEN every AWS call the run makes, recorded at the client (botocore's own event hook)
    calls: list[tuple[str, str]] = []

    def recording(service: str, region: str) -> object:
        client = boto3.client(service, region_name=region)  # type: ignore[call-overload]

        def record(model: object, **_: object) -> None:
            calls.append((region, f"{service}:{model.name}"))  # type: ignore[attr-defined]

        client.meta.events.register("before-call.*.*", record)
        return client

    # WHEN a run finds drift and repairs it
    result = run_nightly(config(str(tmp_path)), recording, stepping_clock(T0))
    assert result.record.repairs_emitted > 0

    # THEN it never writes to the destination: only listings and descriptions there
    destination = {call for region, call in calls if region == DST}
    assert destination, "the destination was read"
    assert all(call.startswith(("iot:List", "iot:Describe")) for call in destination), destination


def test_a_run_with_sweep_slices_lists_the_days_slice_and_says_so(
    clients: ClientFactory, tmp_path: Path
) -> None:
    # GIVEN SWEEP_SLICES=3 and two runs on consecutive days
    swept = config(str(tmp_path), sweep_slices=3)
    days = [run_nightly(swept, clients, stepping_clock(T0 + day * 86_400_000)) for day in (0, 1)]

    # THEN each report compared the per-device links of its day's slice, the next day the next
    slices = []
    for result in days:
        report = load_json(
            json.loads((tmp_path / result.record.prefix / "report.json").read_text())
        )
        slices.append(report.sweep)
    assert [s.slices for s in slices] == [3, 3]
    assert slices[1].slice == (slices[0].slice + 1) % 3
