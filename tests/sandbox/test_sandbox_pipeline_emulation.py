"""Lambda running our handlers, delivery quirks, Global Table replication, the event source mapping."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sqs,
)

from pipeline.kinds.thing_type import PendingTypeDeletion
from sandbox.emulation import (
    FUNCTION_LOG,
    Delivery,
    DeliveryQuirks,
    DrainReport,
    EventSourceMapping,
    FailedBatch,
    environment_lock,
)
from sandbox.emulation.lambda_runtime import forget_function_environment
from sandbox.schedule import PENDING_RATE_SECONDS
from sandbox.stack import Sandbox

SOURCE = "us-east-1"
DESTINATION = "eu-west-1"


# ---- Lambda runs our handlers -------------------------------------------------------------------


class HandlerBoomError(Exception):
    pass


def echo_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"event": event, "setting": os.environ.get("SETTING"), "fn": context.function_name}


def failing_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise HandlerBoomError("boom")


def printing_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # what Powertools Metrics does with an EMF document
    print(json.dumps({"_aws": {"CloudWatchMetrics": []}, "n": event["n"]}))
    print("unterminated", end="")
    return {}


def _create_function(box: Sandbox, name: str, handler: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.txt", "x")
    box.client("lambda", SOURCE).create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=box.resources.role_arn,
        Handler=handler,
        Code={"ZipFile": buffer.getvalue()},
        Environment={"Variables": {"SETTING": "from-config"}},
    )


def test_aws_lambda_invoke_runs_the_functions_handler_with_its_environment(box: Sandbox) -> None:
    _create_function(box, "echo", f"{__name__}.echo_handler")
    response = box.client("lambda", SOURCE).invoke(
        FunctionName="echo", Payload=json.dumps({"x": 1})
    )
    body = json.loads(response["Payload"].read())
    assert body == {"event": {"x": 1}, "setting": "from-config", "fn": "echo"}
    # A variable the process did not have stays until the emulation is uninstalled (removing it
    # after each call raced with threads reading os.environ), then it is gone.
    forget_function_environment()
    assert "SETTING" not in os.environ


def test_aws_lambda_unhandled_error_response(box: Sandbox) -> None:
    _create_function(box, "fails", f"{__name__}.failing_handler")
    response = box.client("lambda", SOURCE).invoke(FunctionName="fails", Payload="{}")
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Payload"].read())
    assert body == {"errorType": "HandlerBoomError", "errorMessage": "boom"}
    assert box.invocation_errors[-1].error_type == "HandlerBoomError"


def test_aws_lambda_a_functions_stdout_goes_to_its_log_not_the_console(
    box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    # Lambda sends a function's stdout (its logs, EMF metric lines) to CloudWatch Logs; the
    # operator's console shows only what the sandbox itself prints.
    _create_function(box, "printer", f"{__name__}.printing_handler")
    print("before")
    box.client("lambda", SOURCE).invoke(FunctionName="printer", Payload=json.dumps({"n": 1}))
    print("after")
    assert capsys.readouterr().out == "before\nafter\n"
    assert FUNCTION_LOG.lines("printer") == [
        json.dumps({"_aws": {"CloudWatchMetrics": []}, "n": 1}),
        "unterminated",
    ]


@pytest.mark.parametrize("module", [lambda_eval_utils, state_task_service_sqs])
def test_step_functions_tasks_make_clients_only_under_the_environment_lock(
    box: Sandbox, module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Creating a client walks os.environ whole; applying a function's environment adds and
    # removes keys. Unserialised, a persist execution failed with States.Runtime "'STATE_TABLE'".
    held: list[bool] = []
    real_client = boto3.client

    def client(*args: Any, **kwargs: Any) -> Any:
        held.append(environment_lock()._is_owned())  # type: ignore[attr-defined]
        return real_client(*args, **kwargs)

    monkeypatch.setattr(boto3, "client", client)
    module.boto_client_for(region=SOURCE, service="lambda")
    assert held == [True]


# ---- Delivery quirks (the IoT rule's at-least-once, unordered delivery) ------------------------


def _sample_events(count: int) -> list[dict[str, Any]]:
    return [{"eventId": str(i)} for i in range(count)]


def test_default_delivery_is_once_and_in_order() -> None:
    outcome = DeliveryQuirks(Delivery()).apply(_sample_events(20))
    assert [e["eventId"] for e in outcome.delivered] == [str(i) for i in range(20)]
    assert (outcome.dropped, outcome.duplicated) == (0, 0)


def test_delivery_quirks_are_deterministic_under_a_seed() -> None:
    policy = Delivery(duplicate_probability=0.3, drop_probability=0.2, reorder_window=5, seed=7)
    first = DeliveryQuirks(policy).apply(_sample_events(50))
    second = DeliveryQuirks(policy).apply(_sample_events(50))
    other = DeliveryQuirks(Delivery(0.3, 0.2, 5, seed=8)).apply(_sample_events(50))
    ids = [e["eventId"] for e in first.delivered]
    assert ids == [e["eventId"] for e in second.delivered]
    assert ids != [e["eventId"] for e in other.delivered]
    assert first.dropped > 0 and first.duplicated > 0
    assert len(ids) == 50 - first.dropped + first.duplicated
    assert ids != sorted(ids, key=int)  # reordered...
    for start in range(0, len(ids), 5):  # ...but only within each window
        window = [int(i) for i in ids[start : start + 5]]
        assert max(window) - min(window) < 5 + first.duplicated + first.dropped


# ---- Global Table replication -------------------------------------------------------------------


def _scan(box: Sandbox, region: str) -> dict[str, dict[str, Any]]:
    items = box.client("dynamodb", region).scan(TableName=box.table_name)["Items"]
    return {item["pk"]["S"]: item for item in items}


def test_global_table_copies_puts_and_deletes_in_stream_order(box: Sandbox) -> None:
    # GIVEN writes to the source replica
    ddb = box.client("dynamodb", SOURCE)
    table = box.table_name
    ddb.put_item(TableName=table, Item={"pk": {"S": "A"}, "v": {"N": "1"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "A"}, "v": {"N": "2"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "B"}, "v": {"N": "1"}})
    ddb.delete_item(TableName=table, Key={"pk": {"S": "B"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "A"}, "v": {"N": "2"}})  # no change
    # WHEN replication runs
    copied = box.replicate_tables()
    # THEN the destination holds the last write of each item; the no-change write is not copied
    assert copied == 4
    assert _scan(box, DESTINATION) == {"A": {"pk": {"S": "A"}, "v": {"N": "2"}}}
    # AND replicated writes are not copied back (no echo loop)
    assert box.replicate_tables() == 0


def test_global_table_replicates_destination_writes_to_the_source(box: Sandbox) -> None:
    box.client("dynamodb", DESTINATION).put_item(
        TableName=box.table_name, Item={"pk": {"S": "PENDING#x"}}
    )
    assert box.replicate_tables() == 1
    assert set(_scan(box, SOURCE)) == {"PENDING#x"}
    assert box.replicate_tables() == 0


# ---- The event source mapping -------------------------------------------------------------------


def test_esm_delivers_destination_stream_in_lambdas_event_shape(
    box: Sandbox, recorder: Any
) -> None:
    ddb = box.client("dynamodb", SOURCE)
    ddb.put_item(TableName=box.table_name, Item={"pk": {"S": "THING#t1"}})
    box.replicate_tables()
    report = box.run_event_source_mapping()
    assert report.records_applied == 1
    [record] = recorder.batches[-1]
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventName"] == "INSERT"
    assert record["awsRegion"] == DESTINATION
    assert record["eventSourceARN"] == box.resources.destination_stream_arn
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
    assert record["dynamodb"]["NewImage"] == {"pk": {"S": "THING#t1"}}


def test_drain_redelivers_from_the_lowest_failed_record(box: Sandbox, recorder: Any) -> None:
    # GIVEN three items and a replicator that fails the second one once
    ddb = box.client("dynamodb", SOURCE)
    keys = ("THING#k1", "THING#k2", "THING#k3")
    for key in keys:
        ddb.put_item(TableName=box.table_name, Item={"pk": {"S": key}})
    recorder.fail_keys["THING#k2"] = 1
    # WHEN the pipeline drains
    report = box.drain(timeout=30)
    # THEN the first batch had all three, the retry starts at k2, and everything is applied
    delivered = [[r["dynamodb"]["Keys"]["pk"]["S"] for r in b] for b in recorder.batches]
    assert delivered == [list(keys), list(keys[1:])]
    assert report.batch_item_failures == 1
    assert report.records_applied == 3
    assert report.failed_batches == []


def test_drain_counts_the_pipelines_bookkeeping_records_apart(box: Sandbox, recorder: Any) -> None:
    # GIVEN an entity item and the replicator's bookkeeping for it (echo ledger, a pending
    # deletion), all of which reach the destination's stream
    ddb = box.client("dynamodb", SOURCE)
    pending = PendingTypeDeletion.key_for(DESTINATION, "x")
    for key in ("THING#k1", f"ECHO#{DESTINATION}#THING#k1", pending):
        ddb.put_item(TableName=box.table_name, Item={"pk": {"S": key}})
    # WHEN the pipeline drains
    report = box.drain(timeout=30)
    # THEN one record of an entity was applied; the two others are counted as bookkeeping
    assert (report.records_applied, report.bookkeeping_records) == (1, 2)


class FakeCursor:
    """An in-memory stream: records with increasing sequence numbers."""

    stream_arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/x"

    def __init__(self, keys: list[str]) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = [
            (
                "shard-0",
                {
                    "eventID": str(i),
                    "eventName": "INSERT",
                    "dynamodb": {
                        "Keys": {"pk": {"S": key}},
                        "NewImage": {"pk": {"S": key}},
                        "SequenceNumber": str(100 + i),
                    },
                },
            )
            for i, key in enumerate(keys)
        ]
        self.committed = 0

    def read(self, limit: int = 1000) -> list[tuple[str, dict[str, Any]]]:
        rest = [r for r in self.records if int(r[1]["dynamodb"]["SequenceNumber"]) > self.committed]
        return rest[:limit]

    def commit(self, shard_id: str, sequence_number: str) -> None:
        self.committed = int(sequence_number)


def test_esm_sends_a_batch_to_on_failure_after_bounded_retries() -> None:
    # GIVEN a handler that always fails K2, and a batch size of 2
    seen: list[list[str]] = []

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
        seen.append(keys)
        failed = [r for r in event["Records"] if r["dynamodb"]["Keys"]["pk"]["S"] == "K2"]
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in failed
            ]
        }

    cursor = FakeCursor(["K1", "K2", "K3", "K4"])
    mapping = EventSourceMapping(cursor, handler, DESTINATION, batch_size=2, max_retry_attempts=2)  # type: ignore[arg-type]
    # WHEN it is polled until idle
    while mapping.poll().replicator_invocations:
        pass
    # THEN K2 is retried twice after the first attempt, then its batch goes to on-failure
    assert seen == [["K1", "K2"], ["K2", "K3"], ["K2", "K3"], ["K4"]]
    [failed] = mapping.stats.failed_batches
    assert (failed.first_sequence_number, failed.size, failed.attempts) == ("101", 2, 3)


def test_esm_treats_a_raised_error_as_a_failure_of_the_whole_batch() -> None:
    calls: list[int] = []

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("crash")
        return {"batchItemFailures": []}

    mapping = EventSourceMapping(FakeCursor(["K1", "K2"]), handler, DESTINATION)  # type: ignore[arg-type]
    while mapping.poll().replicator_invocations:
        pass
    assert calls == [2, 2]
    assert mapping.stats.handler_errors == 1
    assert isinstance(mapping.errors[0], RuntimeError)


def test_esm_poll_reports_what_it_did_and_stats_add_the_polls_up() -> None:
    # GIVEN a thing record the handler fails once, then an echo-ledger record
    failing = {"THING#k1": 1}

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        failed = []
        for record in event["Records"]:
            key = record["dynamodb"]["Keys"]["pk"]["S"]
            if failing.get(key):
                failing[key] -= 1
                failed.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
        return {"batchItemFailures": failed}

    cursor = FakeCursor(["THING#k1", f"ECHO#{DESTINATION}#THING#k1"])
    mapping = EventSourceMapping(cursor, handler, DESTINATION)  # type: ignore[arg-type]
    # WHEN it is polled twice
    first, second = mapping.poll(), mapping.poll()
    # THEN the first poll stopped at the failure, the second delivered both records
    assert (first.replicator_invocations, first.batch_item_failures) == (1, 1)
    assert (first.records_applied, first.bookkeeping_records) == (0, 0)
    assert (second.replicator_invocations, second.batch_item_failures) == (1, 0)
    assert (second.records_applied, second.bookkeeping_records) == (1, 1)
    # AND the mapping's stats are the two polls added up
    assert (mapping.stats.replicator_invocations, mapping.stats.batch_item_failures) == (2, 1)
    assert (mapping.stats.records_applied, mapping.stats.bookkeeping_records) == (1, 1)


def test_drain_reports_add_counts_and_keep_the_latest_rounds_running_executions() -> None:
    first = DrainReport(rounds=1, events_published=2, executions_running=3)
    first.executions.update({"SUCCEEDED": 2})
    second = DrainReport(rounds=1, records_applied=4, executions_running=0)
    second.executions.update({"SUCCEEDED": 1, "FAILED": 1})
    second.failed_batches.append(FailedBatch("1", "2", 2, 4, "retries exhausted"))
    # Parts of one round (stages, regions) add up, running executions included
    part = DrainReport()
    part.add(first)
    part.add(first)
    assert (part.events_published, part.executions_running) == (4, 6)
    # Rounds add up too, but executions still running are the latest round's
    total = DrainReport()
    total.add_round(first)
    total.add_round(second)
    assert (total.rounds, total.events_published, total.records_applied) == (2, 2, 4)
    assert total.executions == {"SUCCEEDED": 3, "FAILED": 1}
    assert total.failed_batches == second.failed_batches
    assert total.executions_running == 0


def test_the_pending_schedule_is_the_templates() -> None:
    # The sandbox runs the pending-deletion task as often as infra/destination.yaml schedules it.
    template = (Path(__file__).parents[2] / "infra" / "destination.yaml").read_text()
    function = template.split("Handler: pipeline.pending.lambda_handler", 1)[1]
    minutes = re.search(r"Schedule: rate\((\d+) minutes\)", function)
    assert minutes is not None
    assert int(minutes.group(1)) * 60 == PENDING_RATE_SECONDS
