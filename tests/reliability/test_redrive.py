"""Issue 27 item 10: the replicator's failure queue holds a batch's metadata, not its records
(Lambda Developer Guide, "Retain discarded records for a DynamoDB event source in Lambda"), and
the stream keeps the records 24 h: ``iot-crr redrive`` re-reads them while it does and hands them
to the replicator function the message names, else it names the reconciliation."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from moto.core.config import default_user_config

from pipeline.errors import EventValidationError
from reconcile.cli import main
from reconcile.context import Factory
from reconcile.redrive import parse_message, past_retention
from sandbox import emulation
from sandbox.inprocess import DST, SRC, TABLE, LocalPipeline
from sandbox.provision import REPLICATE_HANDLER

# The Lambda Developer Guide's example of an on-failure record for a DynamoDB stream.
AWS_EXAMPLE = {
    "requestContext": {
        "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
        "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:myfunction",
        "condition": "RetryAttemptsExhausted",
        "approximateInvokeCount": 1,
    },
    "responseContext": {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    },
    "version": "1.0",
    "timestamp": "2019-11-14T00:13:49.717Z",
    "DDBStreamBatchInfo": {
        "shardId": "shardId-00000001573689847184-864758bb",
        "startSequenceNumber": "800000000003126276362",
        "endSequenceNumber": "800000000003126276362",
        "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
        "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z",
        "batchSize": 1,
        "streamArn": "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388",
    },
}


def test_the_documented_message_names_the_batch_and_its_age_decides() -> None:
    batch = parse_message(json.dumps(AWS_EXAMPLE))
    assert (batch.shard_id, batch.start, batch.end, batch.size, batch.region) == (
        "shardId-00000001573689847184-864758bb",
        "800000000003126276362",
        "800000000003126276362",
        1,
        "us-east-2",
    )
    arrived = datetime(2019, 11, 14, 0, 13, 19, tzinfo=UTC)
    assert not past_retention(batch, int((arrived + timedelta(hours=23)).timestamp() * 1000))
    assert past_retention(batch, int((arrived + timedelta(hours=24)).timestamp() * 1000))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"requestContext": {}, "version": "1.0"}, "DDBStreamBatchInfo"),  # another source's
        (
            {**AWS_EXAMPLE, "DDBStreamBatchInfo": {"shardId": "s", "streamArn": "a"}},
            "DDBStreamBatchInfo.startSequenceNumber",
        ),
    ],
)
def test_a_message_of_another_shape_is_refused(body: dict[str, Any], field: str) -> None:
    with pytest.raises(EventValidationError) as error:
        parse_message(body)
    assert error.value.field == field


def _replicator_function(pipeline: LocalPipeline, clients: Any) -> str:
    """The destination's replicator function, as its stack makes it (the emulation runs the
    handler on Invoke: moto's Docker-free Lambda)."""
    role = clients("iam", DST).create_role(RoleName="replicator", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.txt", "x")
    created = clients("lambda", DST).create_function(
        FunctionName="replicator",
        Runtime="python3.12",
        Role=role,
        Handler=REPLICATE_HANDLER,
        Code={"ZipFile": buffer.getvalue()},
        Environment={"Variables": {"STATE_TABLE": TABLE}},
    )
    return str(created["FunctionArn"])


def test_a_batch_given_up_on_is_re_read_from_the_stream_and_re_driven(
    pipeline: LocalPipeline,
    registry_world: emulation.RegistryEmulation,
    clients: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(default_user_config["lambda"], "use_docker", False)
    # GIVEN a thing whose type has not reached the state table: its record fails (a dependency
    # not replicated yet) until the mapping gives up and sends the batch's metadata
    pipeline.source.create_thing_type(thingTypeName="sensor")
    pipeline.source.create_thing(thingName="s1", thingTypeName="sensor")
    events = registry_world.outbox(SRC).take()
    for event in events:
        if event["eventType"] == "THING_EVENT":
            pipeline.persist_event(event)
    [failed] = pipeline.drain().failed_batches
    # ... and the type arrives afterwards: the thing stays missing in the destination
    for event in events:
        if event["eventType"] == "THING_TYPE_EVENT":
            pipeline.persist_event(event)
    assert pipeline.drain().failed_batches == []
    assert not pipeline.destination.list_things()["things"]

    function_arn = _replicator_function(pipeline, clients)
    message = tmp_path / "failed.json"
    # as `aws sqs receive-message` prints it
    body = failed.message(function_arn, datetime.now(UTC))
    assert body["DDBStreamBatchInfo"]["approximateArrivalOfFirstRecord"] is not None
    message.write_text(json.dumps({"Messages": [{"MessageId": "m1", "Body": json.dumps(body)}]}))
    factory = Factory(client=clients, show_progress=False)

    # WHEN the operator looks first: the batch's entity, nothing written
    listed = CliRunner().invoke(main, ["redrive", str(message)], obj=factory)
    assert listed.exit_code == 0, listed.output
    assert "entities: THING#s1\n" in listed.output
    assert not pipeline.destination.list_things()["things"]

    # THEN --apply converges it through the replicator function
    applied = CliRunner().invoke(main, ["redrive", str(message), "--apply"], obj=factory)
    assert applied.exit_code == 0, applied.output
    assert "re-driven through" in applied.output
    thing = pipeline.destination.describe_thing(thingName="s1")
    assert thing["thingTypeName"] == "sensor"


def test_a_batch_older_than_the_streams_retention_names_the_reconciliation(
    pipeline: LocalPipeline, clients: Any, tmp_path: Path
) -> None:
    # GIVEN the documented message, a day and more after its first record arrived
    message = tmp_path / "failed.json"
    message.write_text(json.dumps(AWS_EXAMPLE))
    now = datetime(2019, 11, 15, 0, 13, 20, tzinfo=UTC)
    factory = Factory(client=clients, clock=lambda: int(now.timestamp() * 1000))
    result = CliRunner().invoke(main, ["redrive", str(message), "--apply"], obj=factory)
    # THEN nothing is read or invoked (the stream in the message does not exist here), and
    # the operator is told to reconcile: exit 1, something left
    assert result.exit_code == 1, result.output
    assert "DynamoDB Streams keep them 24 h" in result.output
    assert "iot-crr reconcile" in result.output


def test_a_batch_of_a_stream_that_is_gone_names_the_reconciliation(
    pipeline: LocalPipeline, clients: Any, tmp_path: Path
) -> None:
    # GIVEN a recent message whose stream no longer exists (its table deleted or re-created):
    # AWS answers ResourceNotFoundException (botocore's dynamodbstreams model), as moto does
    info = {
        **AWS_EXAMPLE["DDBStreamBatchInfo"],
        "streamArn": f"arn:aws:dynamodb:{DST}:123456789012:table/gone/stream/2019-11-14T00:04:06.388",
        "approximateArrivalOfFirstRecord": datetime.now(UTC).isoformat(),
    }
    message = tmp_path / "failed.json"
    message.write_text(json.dumps({**AWS_EXAMPLE, "DDBStreamBatchInfo": info}))
    result = CliRunner().invoke(
        main, ["redrive", str(message), "--apply"], obj=Factory(client=clients)
    )
    assert result.exit_code == 1, result.output
    assert "no longer holds these records" in result.output
