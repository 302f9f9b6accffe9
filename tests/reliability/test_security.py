"""Security: no attribute values, descriptions or full payloads in the handlers' logs at INFO.

A run of both handlers (persist and the replicator, success and failure paths) with attribute
values and descriptions carrying a marker string; every log line they write is captured and
parsed, and the marker must never appear in a line at INFO (or WARNING). ERROR lines name the
failing record and its reason, so they are only checked for size: never a whole payload.

IAM wildcards in the templates are checked by ``tests/infra/test_infra_iam.py`` (one checker
for the project, with its allow-list of list calls AWS authorizes only on ``"*"``); it is not
repeated here.
"""

from __future__ import annotations

import json
import logging

import boto3
import pytest

from pipeline import persist, replicate
from pipeline.errors import PermanentError
from sandbox import emulation
from sandbox.inprocess import DST, SRC, TABLE, LocalPipeline, create_state_table
from tests.conftest import RegistryView

MARKER = "S3CRET-marker-7f3a"

HANDLER_LOGGERS = ("iot-crr-persist", "iot-crr-replicator")


def _rendered(record: logging.LogRecord) -> str:
    """Everything a log line would carry: the message and every extra field."""
    return json.dumps(
        {
            "message": record.getMessage(),
            **{k: v for k, v in vars(record).items() if k not in ("msg", "args")},
        },
        default=str,
    )


def test_no_marker_in_info_logs_of_either_handler(
    pipeline: LocalPipeline, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN registry changes whose values and descriptions carry the marker
    iot = pipeline.source
    iot.create_thing_type(
        thingTypeName="sensor", thingTypeProperties={"thingTypeDescription": f"d {MARKER}"}
    )
    iot.create_thing_group(
        thingGroupName="site",
        thingGroupProperties={
            "thingGroupDescription": MARKER,
            "attributePayload": {"attributes": {"k": MARKER}},
        },
    )
    iot.create_thing(
        thingName="dev-1", thingTypeName="sensor", attributePayload={"attributes": {"key": MARKER}}
    )
    iot.update_thing(
        thingName="dev-1", attributePayload={"attributes": {"key": f"{MARKER}-2"}, "merge": True}
    )
    world = emulation.active()
    assert world is not None
    events = world.outbox("us-east-1").take()
    assert len(events) >= 4
    caplog.clear()

    # WHEN the persist handler runs on each, in the source region where it is deployed ...
    monkeypatch.setenv("AWS_REGION", SRC)
    create_state_table(boto3.client("dynamodb", region_name=SRC), TABLE)
    for event in events:
        persist.lambda_handler(event, None)
    # ... and on a bad one whose value carries the marker (refused)
    with pytest.raises(PermanentError):
        persist.lambda_handler({**events[-1], "attributes": {"key": f"{MARKER} with space"}}, None)
    # ... and the replicator, in the destination, handles the replica's stream (the harness
    # writes the replica as Global Table replication would; the records' images carry values)
    monkeypatch.setenv("AWS_REGION", DST)
    for event in events:
        pipeline.persist_event(event)
    response = replicate.lambda_handler({"Records": pipeline.stream.read()}, None)
    assert response["batchItemFailures"] == []
    assert (
        RegistryView(pipeline.destination).describe_thing("dev-1") is not None
    )  # the run did real work

    # THEN no INFO or WARNING line holds the marker, and no line holds a whole payload
    records = [r for r in caplog.records if r.name in HANDLER_LOGGERS]
    assert any(r.levelno == logging.INFO for r in records), "expected the handlers to log"
    leaking = [
        _rendered(r)
        for r in records
        if logging.INFO <= r.levelno <= logging.WARNING and MARKER in _rendered(r)
    ]
    assert leaking == []
    assert all(len(_rendered(r)) < 4_000 for r in records)


def test_the_check_sees_a_value_logged_as_an_extra_field(caplog: pytest.LogCaptureFixture) -> None:
    # The control: a handler logging a value in ``extra`` is caught by the same rendering.
    persist.logger.info("persisted", extra={"attributes": {"key": MARKER}})
    (record,) = [r for r in caplog.records if r.name == "iot-crr-persist"]
    assert MARKER in _rendered(record)
