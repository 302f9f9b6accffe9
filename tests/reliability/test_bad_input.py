"""R3 bad input: malformed and adversarial events and stream records, fed to both handlers.

Each bad input must end in a *permanent* project error that names the offending field (persist:
raised for the state machine's Catch; replicator: sent to the failure queue with its reason),
valid inputs next to it must still be applied, and nothing may escape as a crash (``KeyError``,
``TypeError``, a pydantic error) or as a retryable failure that would block the shard forever.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from pipeline import persist, replicate
from pipeline.errors import PermanentError
from pipeline.kinds.thing_type import PendingTypeDeletion
from pipeline.model import EntityKind
from pipeline.statetable import StateTable
from sandbox.inprocess import DST, SRC, TABLE, LocalPipeline, create_state_table
from tests.conftest import RegistryView

GOOD_THING: dict[str, Any] = {
    "eventType": "THING_EVENT",
    "eventId": "evt-good",
    "timestamp": 1_700_000_000_000,
    "operation": "CREATED",
    "accountId": "123456789012",
    "thingId": "id-good",
    "thingName": "good-thing",
    "versionNumber": 1,
    "thingTypeName": None,
    "attributes": {"colour": "red"},
}


def _thing(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(GOOD_THING)
    event.update(changes)
    event["eventId"] = f"evt-{len(json.dumps(changes, default=str))}-{sorted(changes)}"
    return event


def _without(key: str) -> dict[str, Any]:
    event = copy.deepcopy(GOOD_THING)
    del event[key]
    return event


HUGE = "a" * 5_000_000  # a 5 MB value: larger than any registry value, well under memory
MEMBERSHIP = {
    "eventType": "THING_GROUP_MEMBERSHIP_EVENT",
    "eventId": "m1",
    "timestamp": 1_700_000_000_000,
    "operation": "ADDED",
    "thingArn": "arn:aws:iot:us-east-1:123456789012:thing/good-thing",
    "groupArn": "arn:aws:iot:us-east-1:123456789012:thinggroup/g1",
    "membershipId": "mid",
}

# (case id, payload, the field the error must name)
BAD_EVENTS: list[tuple[str, Any, str]] = [
    ("not-an-object", ["THING_EVENT"], "payload"),
    ("a-string", "THING_EVENT", "payload"),
    ("null", None, "payload"),
    ("no-event-type", _without("eventType"), "eventType"),
    ("unknown-event-type", _thing(eventType="THING_SHADOW_EVENT"), "eventType"),
    ("event-type-not-a-string", _thing(eventType=7), "eventType"),
    ("unknown-operation", _thing(operation="RENAMED"), "operation"),
    ("missing-name", _without("thingName"), "thingName"),
    ("missing-event-id", _without("eventId"), "eventId"),
    ("name-is-a-number", _thing(thingName=42), "thingName"),
    ("timestamp-is-text", _thing(timestamp="yesterday"), "timestamp"),
    ("timestamp-negative", _thing(timestamp=-5), "timestamp"),
    ("timestamp-boolean", _thing(timestamp=True), "timestamp"),
    ("version-negative", _thing(versionNumber=-1), "versionNumber"),
    ("version-is-text", _thing(versionNumber="3"), "versionNumber"),
    ("attributes-a-list", _thing(attributes=["a", "b"]), "attributes"),
    ("attribute-value-a-number", _thing(attributes={"a": 1}), "attributes"),
    ("name-with-space", _thing(thingName="my thing"), "thingName"),
    ("name-with-separator", _thing(thingName="a#b"), "thingName"),
    ("name-empty", _thing(thingName=""), "thingName"),
    ("name-too-long", _thing(thingName="n" * 129), "thingName"),
    ("name-unicode-digits", _thing(thingName="\u0663\u0664"), "thingName"),
    ("attribute-value-with-space", _thing(attributes={"a": "two words"}), "attributes.a"),
    ("attribute-name-bad", _thing(attributes={"bad key": "v"}), "attributes"),
    (
        "too-many-untyped-attributes",
        _thing(attributes={f"k{i}": "v" for i in range(4)}),
        "attributes",
    ),
    ("huge-attribute-value", _thing(attributes={"blob": HUGE}), "attributes.blob"),
    (
        "huge-attribute-map",
        _thing(thingTypeName="t", attributes={f"k{i}": "v" for i in range(100_000)}),
        "attributes",
    ),
    ("membership-bad-arn", {**MEMBERSHIP, "thingArn": "not-an-arn"}, "thingArn"),
    ("membership-unknown-op", {**MEMBERSHIP, "operation": "MOVED"}, "operation"),
    (
        "corrective-unknown-entity",
        {
            "eventType": "CRR_CORRECTIVE_EVENT",
            "eventId": "c1",
            "timestamp": 1_700_000_000_000,
            "entity": "fleet_metric",
            "name": "x",
            "state": {},
            "deleted": False,
            "sync": "s",
        },
        "entity",
    ),
    (
        "corrective-unknown-field",
        {
            "eventType": "CRR_CORRECTIVE_EVENT",
            "eventId": "c2",
            "timestamp": 1_700_000_000_000,
            "entity": "thing",
            "name": "x",
            "state": {"colour": "red"},
            "deleted": False,
            "sync": "s",
        },
        "state.colour",
    ),
    (
        "type-update-without-deprecation-flag",
        {
            "eventType": "THING_TYPE_EVENT",
            "eventId": "ty",
            "timestamp": 1_700_000_000_000,
            "operation": "UPDATED",
            "thingTypeId": "i",
            "thingTypeName": "ty",
        },
        "isDeprecated",
    ),
]


@pytest.fixture
def source_table(pipeline: LocalPipeline, monkeypatch: pytest.MonkeyPatch) -> StateTable:
    """persist runs in the source region, writing that region's state table."""
    ddb = boto3.client("dynamodb", region_name=SRC)
    create_state_table(ddb, TABLE)
    monkeypatch.setenv("AWS_REGION", SRC)
    return StateTable(ddb, TABLE)


@pytest.mark.parametrize(
    ("payload", "field"), [c[1:] for c in BAD_EVENTS], ids=[c[0] for c in BAD_EVENTS]
)
def test_persist_refuses_bad_events_naming_the_field_and_keeps_applying_good_ones(
    source_table: StateTable, payload: Any, field: str
) -> None:
    # GIVEN a good event, then the bad one, then another good one (the state machine runs
    # one execution per event; a bad one must not poison the next)
    first = _thing(thingName="before")
    after = _thing(thingName="after")
    assert persist.lambda_handler(first, None)["outcome"] == "applied"
    # WHEN the bad event arrives
    with pytest.raises(PermanentError) as caught:
        persist.lambda_handler(payload, None)
    # THEN the error is permanent and names the field; its message stays short even for
    # huge payloads (it goes to a queue and a log line)
    message = str(caught.value)
    assert field in message, message
    assert getattr(caught.value, "field", "").startswith(field.split(".", maxsplit=1)[0]), (
        caught.value
    )
    assert len(message) < 2_000
    # ... and the next good event is applied
    assert persist.lambda_handler(after, None)["outcome"] == "applied"
    assert source_table.get(EntityKind.THING, "after") is not None


# --- the replicator ---------------------------------------------------------------------------


def _record(
    sequence: int, keys: Any, image: Any = None, event_name: str = "MODIFY"
) -> dict[str, Any]:
    stream: dict[str, Any] = {
        "SequenceNumber": str(sequence),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if keys is not None:
        stream["Keys"] = keys
    if image is not None:
        stream["NewImage"] = image
    return {
        "eventID": f"e{sequence}",
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "awsRegion": DST,
        "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/crr-state/stream/x",
        "dynamodb": stream,
    }


def _image(pk: str, state: Any, kind: Any = "thing") -> dict[str, Any]:
    return {
        "pk": {"S": pk},
        "kind": {"S": kind} if isinstance(kind, str) else {"N": str(kind)},
        "name": {"S": pk.split("#", 1)[1]},
        "state": state,
        "deleted": {"BOOL": False},
        "origin_region": {"S": "us-east-1"},
        "event_ts": {"N": "1700000000000"},
        "last_event_id": {"S": "x"},
        "rev": {"N": "1"},
    }


# (case id, record, what the failure reason must name)
BAD_RECORDS: list[Any] = [
    # Malformed states the kinds once read with plain Python (ValueError, TypeError,
    # AttributeError: retried until the record expired, then gone without a reason).
    pytest.param(
        _record(
            108,
            {"pk": {"S": "THING#ghost5"}},
            _image("THING#ghost5", {"M": {"attributes": {"L": [{"S": "a"}]}}}),
        ),
        "state.attributes",
        id="attributes-a-list",
    ),
    pytest.param(
        _record(
            109,
            {"pk": {"S": "THING#ghost6"}},
            _image("THING#ghost6", {"M": {"thing_type": {"N": "5"}}}),
        ),
        "state.thing_type",
        id="thing-type-a-number",
    ),
    pytest.param(
        _record(
            110,
            {"pk": {"S": "GROUP#ghost7"}},
            _image("GROUP#ghost7", {"M": {"attributes": {"S": "x"}}}, "thing_group"),
        ),
        "state.attributes",
        id="group-attributes-a-string",
    ),
    pytest.param(
        _record(
            111,
            {"pk": {"S": "TYPE#ghost8"}},
            _image("TYPE#ghost8", {"M": {"searchable_attributes": {"N": "3"}}}, "thing_type"),
        ),
        "state.searchable_attributes",
        id="type-searchable-a-number",
    ),
    pytest.param(_record(101, None), "Keys", id="no-keys"),
    pytest.param(_record(102, {"pk": {"N": "5"}}), "Keys", id="pk-not-a-string"),
    pytest.param(_record(103, {"sk": {"S": "x"}}), "Keys", id="pk-missing"),
    pytest.param(
        _record(105, {"pk": {"S": "THING#ghost2"}}, _image("THING#ghost2", {"S": "not-a-map"})),
        "state",
        id="state-not-a-map",
    ),
    pytest.param(
        _record(
            106,
            {"pk": {"S": "THING#ghost3"}},
            _image(
                "THING#ghost3", {"M": {"thing_type": {"S": "bad type!"}, "attributes": {"M": {}}}}
            ),
        ),
        "state.thing_type",
        id="bad-name-in-state",
    ),
    pytest.param(
        _record(
            107,
            {"pk": {"S": "THING#ghost4"}},
            # 300 KB: an item holds up to 400 KB, and a registry value at most 800 characters.
            _image("THING#ghost4", {"M": {"attributes": {"M": {"blob": {"S": "a" * 300_000}}}}}),
        ),
        "attributes.blob",
        id="huge-attribute-in-state",
    ),
]


@pytest.fixture
def failure_queue(pipeline: LocalPipeline, monkeypatch: pytest.MonkeyPatch) -> Any:
    sqs = boto3.client("sqs", region_name=DST)
    url = sqs.create_queue(QueueName="crr-failures")["QueueUrl"]
    monkeypatch.setenv("FAILURE_QUEUE_URL", url)
    return sqs, url


def _failures(queue: Any) -> list[dict[str, Any]]:
    sqs, url = queue
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        found.extend(json.loads(m["Body"]) for m in messages)
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@pytest.mark.parametrize(("bad", "named"), BAD_RECORDS)
def test_replicator_sends_bad_records_to_the_failure_queue_and_applies_the_rest(
    pipeline: LocalPipeline, failure_queue: Any, bad: dict[str, Any], named: str
) -> None:
    # GIVEN a batch: a valid record, the bad one, another valid record
    for name in ("ok-1", "ok-2"):
        assert pipeline.persist_event(_thing(thingName=name)).outcome == "applied"
    good = pipeline.stream.read()
    assert len(good) == 2
    batch = [good[0], bad, good[1]]
    # The bad item is in the table, as its record says: the replicator reads the table's item.
    if "NewImage" in bad["dynamodb"]:
        boto3.client("dynamodb", region_name=DST).put_item(
            TableName=TABLE, Item=bad["dynamodb"]["NewImage"]
        )
    # WHEN the replicator handles it
    response = replicate.lambda_handler({"Records": batch}, None)
    # THEN the bad record is not retried (it would block the shard forever) ...
    assert response["batchItemFailures"] == []
    # ... it reached the failure queue with a reason naming the problem ...
    (failure,) = _failures(failure_queue)
    assert failure["sequenceNumber"] == bad["dynamodb"]["SequenceNumber"]
    assert named in failure["reason"], failure
    assert len(failure["reason"]) < 2_000
    # ... and both valid records were applied
    for name in ("ok-1", "ok-2"):
        assert RegistryView(pipeline.destination).describe_thing(name) is not None


def test_a_bookkeeping_or_removed_record_is_skipped_not_failed(
    pipeline: LocalPipeline, failure_queue: Any
) -> None:
    records = [
        _record(201, {"pk": {"S": PendingTypeDeletion.key_for("eu-west-1", "ty")}}),
        _record(202, {"pk": {"S": "THING#gone"}}, event_name="REMOVE"),
        _record(203, {"pk": {"S": "NOTAKIND#x"}}),
        # An entity's record whose item is gone from the table (removed since): its image,
        # stale or missing, asks for nothing.
        _record(204, {"pk": {"S": "THING#ghost"}}),
        _record(205, {"pk": {"S": "THING#ghost9"}}, _image("THING#ghost9", {"M": {}})),
    ]
    response = replicate.lambda_handler({"Records": records}, None)
    assert response["batchItemFailures"] == []
    assert _failures(failure_queue) == []
    assert RegistryView(pipeline.destination).describe_thing("ghost9") is None


def test_an_event_that_is_not_a_stream_batch_fails_loudly() -> None:
    # A wrongly wired trigger must not be acknowledged as an empty success.
    with pytest.raises(Exception) as caught:
        replicate.lambda_handler({"detail-type": "Scheduled Event"}, None)
    assert not isinstance(caught.value, AssertionError)


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        pytest.param("deleted", {"S": "false"}, id="deleted-a-string"),
        pytest.param("deleted", {"N": "0"}, id="deleted-a-number"),
        pytest.param("event_ts", {"S": "1700000000000"}, id="event_ts-a-string"),
        pytest.param("origin_region", {"BOOL": True}, id="origin_region-a-boolean"),
    ],
)
def test_a_mistyped_item_is_refused_naming_the_attribute_not_read_loosely(
    pipeline: LocalPipeline, failure_queue: Any, attribute: str, value: dict[str, Any]
) -> None:
    # GIVEN a thing replicated to the destination
    assert pipeline.persist_event(_thing(thingName="t1")).outcome == "applied"
    pipeline.drain()
    assert RegistryView(pipeline.destination).describe_thing("t1") is not None
    # WHEN its item is rewritten with a mistyped attribute (bool("false") is True: read
    # loosely, a string "false" deleted the thing in the destination)
    ddb = boto3.client("dynamodb", region_name=DST)
    ddb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "THING#t1"}},
        UpdateExpression="SET #a = :v",
        ExpressionAttributeNames={"#a": attribute},
        ExpressionAttributeValues={":v": value},
    )
    response = replicate.lambda_handler({"Records": pipeline.stream.read()}, None)
    # THEN the record fails permanently, its reason naming the attribute, not retried ...
    assert response["batchItemFailures"] == []
    (failure,) = _failures(failure_queue)
    assert f"invalid event: {attribute}: must be" in failure["reason"], failure
    # ... and the thing is still there
    assert RegistryView(pipeline.destination).describe_thing("t1") is not None
