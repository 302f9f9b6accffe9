"""persist -> state table stream -> replicator -> destination registry, on moto (two regions)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from pipeline.converge import Converger
from pipeline.errors import ThrottledError
from pipeline.iot import Iot
from pipeline.kinds.base import Call
from pipeline.kinds.thing_type import PendingTypeDeletion
from pipeline.model import Change, EntityKind, Origin
from pipeline.pending import finish_due
from pipeline.state import Outcome
from tests.conftest import aws_error_response
from tests.pipeline.conftest import DST, Pipeline, fixture_event


def thing_event(
    name: str, version: int, ts: int, op: str = "UPDATED", **extra: Any
) -> dict[str, Any]:
    event = fixture_event("thing_event")
    event.update(
        thingName=name,
        versionNumber=version,
        timestamp=ts,
        operation=op,
        eventId=f"{name}-{version}-{op}-{ts}",
    )
    event.update(extra)
    return event


def group_event(name: str, parent: str | None, ts: int, **extra: Any) -> dict[str, Any]:
    event = fixture_event("thing_group_event")
    event.update(
        thingGroupName=name,
        parentGroupName=parent,
        timestamp=ts,
        eventId=f"{name}-{ts}",
        thingGroupId=f"id-{name}",
    )
    event.update(extra)
    return event


def test_documented_thing_event_creates_the_thing(pipeline: Pipeline) -> None:
    assert pipeline.persist(fixture_event("thing_event")).outcome is Outcome.APPLIED
    assert pipeline.replicate() == 0
    thing = pipeline.dst.describe_thing("MyThing")
    assert thing == {
        "thing_type": None,
        "attributes": {"attribute1": "value1", "attribute2": "value2", "attribute3": "value3"},
        "billing_group": None,
    }


def test_documented_type_and_association_events(pipeline: Pipeline) -> None:
    # GIVEN the documented type event and a thing named as in the association example
    pipeline.persist(fixture_event("thing_type_event"))
    pipeline.persist(thing_event("myThing", 1, 1234567890000, "CREATED", attributes={"a": "1"}))
    assert pipeline.replicate() == 0
    # WHEN the documented association event arrives (later timestamp than the thing event)
    assert (
        pipeline.persist(fixture_event("thing_type_association_event")).outcome is Outcome.APPLIED
    )
    assert pipeline.replicate() == 0
    # THEN the destination thing has the type, which has the documented properties
    assert pipeline.dst.describe_thing("myThing")["thing_type"] == "MyThingType"  # type: ignore[index]
    assert pipeline.dst.describe_thing_type("MyThingType") == {
        "description": "My thing type",
        "searchable_attributes": ["attribute1", "attribute2", "attribute3"],
        "deprecated": False,
        "propagating_attributes": [],
    }


def test_documented_group_hierarchy_and_membership_events(pipeline: Pipeline) -> None:
    pipeline.persist(fixture_event("thing_group_event"))  # MyRootThingGroup
    pipeline.persist(group_event("MyChildThingGroup", "MyRootThingGroup", 1234567890100))
    pipeline.persist(fixture_event("thing_event"))  # MyThing
    assert (
        pipeline.persist(fixture_event("thing_group_hierarchy_event")).outcome is Outcome.UNCHANGED
    )
    pipeline.persist(fixture_event("thing_group_membership_event"))
    assert pipeline.replicate() == 0
    child = pipeline.dst.describe_thing_group("MyChildThingGroup")
    assert child is not None and child["parent"] == "MyRootThingGroup"
    root = pipeline.dst.describe_thing_group("MyRootThingGroup")
    assert root is not None and root["description"] == "My root thing group"
    members = pipeline.destination.list_things_in_thing_group(thingGroupName="MyChildThingGroup")
    assert members["things"] == ["MyThing"]


def test_child_group_creates_its_parent_chain_from_the_event(pipeline: Pipeline) -> None:
    # GIVEN the documented level-5 group event arrives before any of its ancestors' events
    pipeline.persist(fixture_event("thing_group_event_updated"))
    # WHEN it is replicated (issue 10: the old replicator retried until the nightly run)
    assert pipeline.replicate() == 0
    # THEN the whole chain exists, from the event's rootToParentThingGroups, parents first
    level5 = pipeline.dst.describe_thing_group("Tg_level5")
    assert level5 is not None and level5["parent"] == "Tg_level4"
    assert pipeline.dst.describe_thing_group("Tg_level4")["parent"] == "Tg_level3"  # type: ignore[index]
    assert pipeline.dst.describe_thing_group("Tg_level1")["parent"] == "TgTopLevel"  # type: ignore[index]
    assert pipeline.dst.describe_thing_group("TgTopLevel")["parent"] is None  # type: ignore[index]
    # WHEN an ancestor's own (versioned) event arrives later, it outranks the stub
    update = group_event("Tg_level4", "Tg_level3", 1603995417000)
    update["description"] = "level four"
    assert pipeline.persist(update).outcome is Outcome.APPLIED
    assert pipeline.replicate() == 0
    assert pipeline.dst.describe_thing_group("Tg_level4")["description"] == "level four"  # type: ignore[index]


def test_out_of_order_and_duplicate_thing_events(pipeline: Pipeline) -> None:
    v3 = thing_event("t1", 3, 3000, attributes={"x": "3"})
    v2 = thing_event("t1", 2, 2000, attributes={"x": "2"})
    assert pipeline.persist(v3).outcome is Outcome.APPLIED
    assert pipeline.persist(v2).outcome is Outcome.STALE
    assert pipeline.persist(v3).outcome is Outcome.DUPLICATE
    assert pipeline.replicate() == 0
    assert pipeline.dst.describe_thing("t1")["attributes"] == {"x": "3"}  # type: ignore[index]


def test_update_after_delete_does_not_resurrect(pipeline: Pipeline) -> None:
    pipeline.persist(thing_event("t1", 1, 1000, "CREATED", attributes={"x": "1"}))
    pipeline.replicate()
    pipeline.persist(thing_event("t1", 2, 3000, "DELETED"))
    assert (
        pipeline.persist(thing_event("t1", 2, 2000, attributes={"x": "2"})).outcome is Outcome.STALE
    )
    assert pipeline.replicate() == 0
    assert pipeline.dst.describe_thing("t1") is None


def test_echo_from_the_destination_region_writes_nothing(pipeline: Pipeline) -> None:
    pipeline.persist(thing_event("t1", 1, 1000, "CREATED", attributes={"x": "1"}))
    pipeline.replicate()
    # The destination registry's own event for the replicated thing (active-active).
    echo = thing_event("t1", 1, 5000, "CREATED", attributes={"x": "1"}, thingId="dest-id")
    from pipeline.ingest import admit, persist_change

    pipeline.stream.read()  # the replicator's own bookkeeping (its echo ledger)
    result = persist_change(pipeline.table, admit(echo, region=DST))
    assert result.outcome is Outcome.ECHO  # the replicator's expectation says so
    # No entity record, so no loop: the only write is the ledger's echo mark (bookkeeping).
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in pipeline.stream.read()]
    assert keys == [f"ECHO#{DST}#THING#t1"]


def test_attribute_update_costs_two_iot_calls(pipeline: Pipeline) -> None:
    pipeline.persist(thing_event("t1", 1, 1000, "CREATED", attributes={"x": "1", "y": "1"}))
    pipeline.replicate()
    pipeline.persist(thing_event("t1", 2, 2000, attributes={"x": "2"}))
    records = pipeline.stream.read()
    converger = Converger(Iot(pipeline.destination), pipeline.table, region=DST, clock=lambda: 0)
    item = pipeline.table.get(EntityKind.THING, "t1")
    assert item is not None
    converger.converge(item)
    assert sum(converger.iot.calls.values()) == 2  # DescribeThing + UpdateThing
    assert len(records) == 1
    assert pipeline.dst.describe_thing("t1")["attributes"] == {"x": "2"}  # type: ignore[index]


def test_thing_type_deletion_is_deferred_and_never_blocks(pipeline: Pipeline) -> None:
    type_event = fixture_event("thing_type_event")
    pipeline.persist(type_event)
    pipeline.persist(thing_event("t1", 1, 1234567890200, "CREATED", thingTypeName="MyThingType"))
    assert pipeline.replicate() == 0
    # WHEN the source deletes the type (after removing it from its things)
    pipeline.persist(thing_event("t1", 2, 1234567890300, thingTypeName=None, attributes={}))
    deleted = dict(type_event, operation="DELETED", eventId="type-del", timestamp=1234567890400)
    pipeline.persist(deleted)
    assert pipeline.replicate() == 0
    # THEN the type is deprecated, detached and pending, not deleted yet
    assert pipeline.dst.describe_thing_type("MyThingType")["deprecated"] is True  # type: ignore[index]
    assert pipeline.dst.describe_thing("t1")["thing_type"] is None  # type: ignore[index]
    converger = Converger(Iot(pipeline.destination), pipeline.table, region=DST, clock=lambda: 0)
    assert finish_due(converger, now=0)["waiting"] == ["MyThingType"]
    # AND once five minutes have passed it is deleted
    assert finish_due(converger, now=10**10)["deleted"] == ["MyThingType"]
    assert pipeline.dst.describe_thing_type("MyThingType") is None


@pytest.mark.parametrize(
    "bad",
    [{}, {"region": DST, "name": "X", "delete_after": "soon"}, {"region": DST, "name": 5}],
    ids=["empty", "delete_after-a-string", "name-a-number"],
)
def test_an_unreadable_pending_record_does_not_stop_the_others(
    pipeline: Pipeline, bad: dict[str, Any]
) -> None:
    # GIVEN an unreadable pending record, read first (moto scans in insertion order) ...
    bad_key = PendingTypeDeletion.key_for(DST, "Broken")
    pipeline.table._put({"pk": bad_key, **bad})
    # ... and a type whose deletion is due
    type_event = fixture_event("thing_type_event")
    pipeline.persist(type_event)
    pipeline.replicate()
    pipeline.persist(dict(type_event, operation="DELETED", eventId="del", timestamp=1234567890400))
    pipeline.replicate()
    converger = Converger(Iot(pipeline.destination), pipeline.table, region=DST, clock=lambda: 0)
    # WHEN the pending task runs
    done = finish_due(converger, now=10**10)
    # THEN the due type is deleted all the same, and the bad record is reported as failed
    assert done["deleted"] == ["MyThingType"]
    assert done["failed"] == [bad_key]


def test_bad_record_does_not_take_good_records_down(pipeline: Pipeline) -> None:
    from pipeline import replicate

    pipeline.persist(thing_event("good-1", 1, 1000, "CREATED", attributes={"a": "1"}))
    pipeline.persist(thing_event("good-2", 1, 1000, "CREATED", attributes={"a": "2"}))
    records = pipeline.stream.read()
    bad = {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "999", "Keys": {"pk": {"N": "1"}}}}
    response = replicate.lambda_handler({"Records": [records[0], bad, records[1]]}, None)
    # The bad record is permanent: reported to the failure sink, not retried forever.
    assert response["batchItemFailures"] == []
    assert pipeline.dst.describe_thing("good-1") is not None
    assert pipeline.dst.describe_thing("good-2") is not None


def test_a_thing_refused_by_aws_rules_is_permanent_and_named(pipeline: Pipeline) -> None:
    from pipeline.converge import Result
    from pipeline.failures import FailureSink
    from pipeline.replicate import Replicator, logger

    pipeline.persist(thing_event("t1", 1, 1000, "CREATED", attributes={"a": "1"}))
    records = pipeline.stream.read()
    # GIVEN the table holds a state AWS would refuse (4 attributes on an untyped thing)
    four = {"a": "1", "b": "2", "c": "3", "d": "4"}
    origin = Origin("us-east-1", 2_000_000, "bad-state")  # after the event (1000 s)
    pipeline.table.apply(
        Change(EntityKind.THING, "t1", origin, {"attributes": four}, corrective=True, sync="s")
    )
    sink = FailureSink(logger)
    converger = Converger(Iot(pipeline.destination), pipeline.table, region=DST, clock=lambda: 0)
    result = Replicator(converger, sink, DST).handle(records[0])
    assert isinstance(result, Result) and result.action == "failed-permanently"
    assert sink.sent[0]["errorType"] == "RegistryValidationError"
    assert "attributes" in sink.sent[0]["reason"]


def _throttle_first(client: Any, operation: str, times: int) -> list[int]:
    """Make AWS answer ``ThrottlingException`` to the first ``times`` calls of ``operation``."""
    seen = [0]

    def before_send(request: Any, **_: Any) -> AWSResponse | None:
        seen[0] += 1
        if seen[0] > times:
            return None
        return aws_error_response(request.url, 429, "ThrottlingException", "Rate exceeded")

    client.meta.events.register_first(f"before-send.iot.{operation}", before_send)
    return seen


def test_throttling_is_retried_by_botocore(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import aws

    monkeypatch.setattr(aws, "DEFAULT_MAX_ATTEMPTS", 4)
    client = aws.client("iot", DST)
    seen = _throttle_first(client, "CreateThing", 2)
    Iot(client).apply([Call("CreateThing", {"thingName": "t1"})])
    assert seen[0] == 3  # two throttled attempts, then success
    assert Iot(client).maybe("DescribeThing", thingName="t1") is not None


def test_throttling_beyond_retries_is_retryable_error(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    from pipeline import aws

    client = aws.client("iot", DST)
    _throttle_first(client, "CreateThing", 100)
    with pytest.raises(ThrottledError):
        Iot(client).apply([Call("CreateThing", {"thingName": "t1"})])


def test_thing_of_a_deprecated_type_is_still_replicated(pipeline: Pipeline) -> None:
    # GIVEN a type deprecated in the source while things still use it (AWS allows that)
    deprecated = dict(fixture_event("thing_type_event"), isDeprecated=True)
    pipeline.persist(deprecated)
    pipeline.persist(thing_event("old-1", 1, 1234567890200, "CREATED", thingTypeName="MyThingType"))
    # WHEN both reach the destination, where AWS refuses a deprecated type to new things
    assert pipeline.replicate() == 0
    # THEN the thing has its type, and the type is deprecated again
    assert pipeline.dst.describe_thing("old-1")["thing_type"] == "MyThingType"  # type: ignore[index]
    assert pipeline.dst.describe_thing_type("MyThingType")["deprecated"] is True  # type: ignore[index]
