"""Device shadows through the streaming path, on moto in two regions: the messages AWS publishes
on a shadow's ``update/documents`` and ``delete/accepted`` topics (the IoT rule adds
``topic``) -> persist -> state table -> replicator (UpdateThingShadow / DeleteThingShadow on
iot-data) -> destination shadow. Classic and named; created, changed, deleted; out of order,
duplicated and late; and a property: the order of delivery never changes the final shadow."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.events import corrective_event
from pipeline.kinds.shadow import (
    DELETE_ACCEPTED,
    UPDATE_DOCUMENTS,
    shadow_calls,
    shadow_key_name,
    topic_of,
)
from pipeline.model import Change, EntityKind, Origin
from pipeline.state import Outcome
from tests.pipeline.conftest import SRC, Pipeline

T0 = 1_700_000_000  # epoch seconds: a shadow message's timestamp is to the second
THING = "sensor-1"


def documents(
    thing: str,
    shadow: str | None,
    *,
    version: int,
    at: int,
    desired: dict[str, Any] | None = None,
    reported: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An update/documents message as the IoT rule delivers it ("Device Shadow service
    documents": previous/current, each state, metadata, version; timestamp in seconds)."""
    state = {k: v for k, v in (("desired", desired), ("reported", reported)) if v is not None}
    return {
        "previous": {"state": {}, "metadata": {}, "version": version - 1},
        "current": {"state": state, "metadata": {}, "version": version},
        "timestamp": at,
        "topic": topic_of(thing, shadow, UPDATE_DOCUMENTS),
    }


def deleted(thing: str, shadow: str | None, *, version: int, at: int) -> dict[str, Any]:
    return {"version": version, "timestamp": at, "topic": topic_of(thing, shadow, DELETE_ACCEPTED)}


def shadow_in(pipeline: Pipeline, thing: str, shadow: str | None) -> dict[str, Any] | None:
    """The destination's shadow as plain sections (None: it has none)."""
    state = pipeline.dst.read(EntityKind.SHADOW, shadow_key_name(thing, shadow))
    return None if state is None else {key: json.loads(value) for key, value in state.items()}


def with_thing(pipeline: Pipeline, name: str = THING) -> Pipeline:
    """The thing exists in both regions already (its shadows are what changes)."""
    for client in (pipeline.source, pipeline.destination):
        client.create_thing(thingName=name)
    return pipeline


def test_a_classic_and_a_named_shadow_are_created_changed_and_deleted(pipeline: Pipeline) -> None:
    p = with_thing(pipeline)
    # GIVEN a device's classic shadow and a named one written in the source
    p.persist(documents(THING, None, version=1, at=T0, desired={"color": "red"}))
    p.persist(documents(THING, "config", version=1, at=T0, reported={"fw": "1.0", "n": {"a": 1}}))
    p.drain()
    # THEN the destination has both, the same desired and reported state
    assert shadow_in(p, THING, None) == {"desired": {"color": "red"}, "reported": {}}
    assert shadow_in(p, THING, "config") == {
        "desired": {},
        "reported": {"fw": "1.0", "n": {"a": 1}},
    }

    # WHEN keys are changed, added and removed (the documents message is the whole state)
    p.persist(documents(THING, None, version=2, at=T0 + 1, desired={"color": "blue", "speed": 2.5}))
    p.persist(documents(THING, "config", version=2, at=T0 + 1, reported={"n": {"b": [1, 2]}}))
    p.drain()
    # THEN the destination replaces them: removed keys are gone, nested ones too
    assert shadow_in(p, THING, None) == {"desired": {"color": "blue", "speed": 2.5}, "reported": {}}
    assert shadow_in(p, THING, "config") == {"desired": {}, "reported": {"n": {"b": [1, 2]}}}

    # WHEN the named shadow is deleted
    p.persist(deleted(THING, "config", version=3, at=T0 + 2))
    p.drain()
    assert shadow_in(p, THING, "config") is None
    assert shadow_in(p, THING, None) is not None
    item = p.table.get(EntityKind.SHADOW, f"{THING}#config")
    assert item is not None and item.deleted  # a tombstone


def test_out_of_order_duplicated_and_late_messages_end_in_the_sources_shadow(
    pipeline: Pipeline,
) -> None:
    p = with_thing(pipeline)
    first = documents(THING, None, version=1, at=T0, desired={"mode": "eco"})
    second = documents(THING, None, version=2, at=T0 + 5, desired={"mode": "boost"})
    gone = deleted(THING, None, version=3, at=T0 + 9)
    # the newest first, then a duplicate of it, then the older one
    assert p.persist(second).outcome is Outcome.APPLIED
    assert p.persist(second).outcome is Outcome.DUPLICATE
    assert p.persist(first).outcome is Outcome.STALE
    p.drain()
    assert shadow_in(p, THING, None) == {"desired": {"mode": "boost"}, "reported": {}}
    # a delete, then a late update made before it: the tombstone holds
    assert p.persist(gone).outcome is Outcome.APPLIED
    assert p.persist(second).outcome is Outcome.STALE
    assert p.persist(documents(THING, None, version=2, at=T0 + 6, desired={"x": 1})).outcome is (
        Outcome.STALE
    )
    p.drain()
    assert shadow_in(p, THING, None) is None
    # re-created later (a new version after the delete): it lives again
    p.persist(documents(THING, None, version=4, at=T0 + 10, reported={"up": True}))
    p.drain()
    assert shadow_in(p, THING, None) == {"desired": {}, "reported": {"up": True}}


def test_two_updates_in_one_second_are_ordered_by_their_version(pipeline: Pipeline) -> None:
    p = with_thing(pipeline)
    v5 = documents(THING, "cfg", version=5, at=T0, desired={"step": 5})
    v6 = documents(THING, "cfg", version=6, at=T0, desired={"step": 6})
    gone = deleted(THING, "cfg", version=6, at=T0)  # delete/accepted of the same second
    assert p.persist(v6).outcome is Outcome.APPLIED
    assert p.persist(v5).outcome is Outcome.STALE
    p.drain()
    assert shadow_in(p, THING, "cfg") == {"desired": {"step": 6}, "reported": {}}
    assert p.persist(gone).outcome is Outcome.APPLIED  # at the same version, the delete ends it
    p.drain()
    assert shadow_in(p, THING, "cfg") is None


def test_a_hand_edit_in_the_destination_is_replaced_not_merged(pipeline: Pipeline) -> None:
    p = with_thing(pipeline)
    data = p.converger.iot  # the destination's adapter (iot and iot-data)
    update = {"state": {"desired": {"extra": 1, "color": "green"}, "reported": {"temp": 3}}}
    data.call("UpdateThingShadow", thingName=THING, payload=json.dumps(update).encode())
    p.persist(documents(THING, None, version=1, at=T0, desired={"color": "red"}))
    p.drain()
    assert shadow_in(p, THING, None) == {"desired": {"color": "red"}, "reported": {}}


def test_a_shadow_of_a_thing_the_destination_lacks_waits_for_the_thing(pipeline: Pipeline) -> None:
    p = pipeline
    p.source.create_thing(thingName=THING)
    thing_created = {
        "eventType": "THING_EVENT",
        "eventId": "e-1",
        "timestamp": T0 * 1000,
        "operation": "CREATED",
        "accountId": "123456789012",
        "thingId": "id-1",
        "thingName": THING,
        "versionNumber": 1,
        "thingTypeName": None,
        "attributes": {},
    }
    # the shadow's message reaches the table first, the thing's event after it
    p.persist(documents(THING, None, version=1, at=T0, desired={"a": 1}))
    p.persist(thing_created)
    p.drain()
    assert p.dst.describe_thing(THING) is not None
    assert shadow_in(p, THING, None) == {"desired": {"a": 1}, "reported": {}}


def test_the_decision_is_a_full_replace_and_nothing_when_equal() -> None:
    name = shadow_key_name(THING, "cfg")
    actual = {"desired": '{"a":1,"n":{"x":1,"y":2}}', "reported": '{"r":true}'}
    desired = {"desired": '{"n":{"x":1,"y":3},"b":[1]}', "reported": '{"r":1}'}
    (call,) = shadow_calls(name, desired, actual)
    assert call.op == "UpdateThingShadow"
    assert call.params["shadowName"] == "cfg"
    assert json.loads(call.params["payload"]) == {
        "state": {"desired": {"a": None, "b": [1], "n": {"y": 3}}, "reported": {"r": 1}}
    }
    assert shadow_calls(name, actual, actual) == []
    assert shadow_calls(name, None, None) == []
    (gone,) = shadow_calls(name, None, actual)
    assert (gone.op, gone.params) == (
        "DeleteThingShadow",
        {"thingName": THING, "shadowName": "cfg"},
    )


# --- a property: the order of delivery does not change the final shadow -------------------------

_values = st.one_of(st.integers(-5, 5), st.booleans(), st.sampled_from(["a", "b"]))
_sections = st.dictionaries(st.sampled_from(["k1", "k2", "k3"]), _values, max_size=3)


_EXAMPLES = itertools.count()


@st.composite
def histories(draw: st.DrawFn, thing: str) -> list[dict[str, Any]]:
    """A shadow's messages in publication order: updates and deletes, versions going up, some
    of them in the same second."""
    messages: list[dict[str, Any]] = []
    at = T0
    for version in range(1, draw(st.integers(1, 6)) + 1):
        at += draw(st.integers(0, 2))
        if draw(st.integers(0, 4)) == 0:
            messages.append(deleted(thing, "cfg", version=version, at=at))
        else:
            desired, reported = draw(_sections), draw(_sections)
            messages.append(
                documents(thing, "cfg", version=version, at=at, desired=desired, reported=reported)
            )
    return messages


def _final(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    last = messages[-1]
    if "current" not in last:
        return None
    state = last["current"]["state"]
    return {"desired": state.get("desired", {}), "reported": state.get("reported", {})}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_delivery_order_and_duplicates_never_change_the_final_shadow(
    aws_env: None, data: st.DataObject
) -> None:
    # GIVEN a thing and a state table of this example's own (moto's state outlives an example)
    n = next(_EXAMPLES)
    thing = f"device-{n}"
    p = with_thing(Pipeline(table_name=f"crr-state-{n}"), thing)
    history = data.draw(histories(thing))
    # WHEN the messages arrive shuffled, some twice, the replicator running between some
    delivered = data.draw(st.permutations(history + data.draw(st.lists(st.sampled_from(history)))))
    for message in delivered:
        p.persist(message)
        if data.draw(st.booleans()):
            p.drain()
    p.drain()
    # THEN the destination's shadow is the last one the source published
    assert shadow_in(p, thing, "cfg") == _final(history)


def test_the_persist_function_stores_only_the_selected_shadows_and_sections(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import persist

    # GIVEN the persist function told to leave out `$`-prefixed shadows and replicate only the
    # desired section (the reported one is each device's own, in each region)
    monkeypatch.setenv("SHADOW_EXCLUDE", "$*")
    monkeypatch.setenv("SHADOW_SECTIONS", "desired")
    # WHEN a device's `$telemetry` and classic shadows change
    skipped = persist.lambda_handler(
        documents(THING, "$telemetry", version=1, at=T0, reported={"t": 21.5}), None
    )
    applied = persist.lambda_handler(
        documents(THING, None, version=4, at=T0, desired={"mode": "eco"}, reported={"fw": "1.0"}),
        None,
    )
    # THEN the telemetry shadow never reaches the table
    assert skipped["outcome"] == "skipped" and "$telemetry" in skipped["reason"]
    assert pipeline.table.get(EntityKind.SHADOW, shadow_key_name(THING, "$telemetry")) is None
    # AND of the classic shadow, only its desired state does
    assert applied["outcome"] == "applied"
    stored = pipeline.table.get(EntityKind.SHADOW, shadow_key_name(THING, None))
    assert stored is not None and stored.state == {"desired": '{"mode":"eco"}'}


def test_a_desired_only_pipeline_leaves_the_destinations_reported_state_alone(
    aws_env: None,
) -> None:
    from pipeline.kinds.shadow_selection import ShadowSelection

    p = with_thing(Pipeline(shadows=ShadowSelection(sections=("desired",))))
    # GIVEN the device reporting its own state in the destination
    data = p.converger.iot  # the destination's adapter (iot and iot-data)
    own = {"state": {"reported": {"fw": "2.0"}}}
    data.call("UpdateThingShadow", thingName=THING, payload=json.dumps(own).encode())
    # WHEN the source's shadow changes, desired and reported
    event = documents(THING, None, version=4, at=T0, desired={"mode": "eco"}, reported={"x": 1})
    assert p.persist_event(event).outcome is Outcome.APPLIED
    p.drain()
    # THEN the destination has the source's desired state and its device's reported state
    assert shadow_in(p, THING, None) == {"desired": {"mode": "eco"}, "reported": {"fw": "2.0"}}


def test_persist_refuses_a_bad_selection_setting(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import persist
    from pipeline.settings import SettingsError

    monkeypatch.setenv("SHADOW_SECTIONS", "metadata")
    with pytest.raises(SettingsError, match="SHADOW_SECTIONS"):
        persist.lambda_handler(documents(THING, None, version=1, at=T0, desired={"a": 1}), None)


def test_a_repair_made_in_the_second_of_the_stored_change_still_repairs(
    pipeline: Pipeline,
) -> None:
    """A shadow message's timestamp is to the second and stands for its last millisecond, so a
    corrective event from a snapshot that began in that second is not newer than the change
    the table holds. Asking for the stored state, it is written again and the destination
    repaired (the demo's flake: its nightly began 54 ms before the end of the second of its
    last shadow write); asking for another state, it stays stale."""
    p = with_thing(pipeline)
    p.persist(documents(THING, None, version=1, at=T0, desired={"mode": "eco"}))
    p.drain()
    # GIVEN a hand edit in the destination
    edit = {"state": {"desired": {"mode": "boost"}}}
    p.converger.iot.call("UpdateThingShadow", thingName=THING, payload=json.dumps(edit).encode())
    # WHEN reconciliation repairs it with the stored state, stamped within T0's second
    name = shadow_key_name(THING, None)
    stored = p.table.get(EntityKind.SHADOW, name)
    assert stored is not None
    repair = Change(
        kind=EntityKind.SHADOW,
        name=name,
        origin=Origin(SRC, T0 * 1000 + 500, "crr-1"),
        fields=dict(stored.state),
        corrective=True,
        sync="sync-1",
    )
    assert p.persist(corrective_event(repair)).outcome is Outcome.APPLIED
    p.drain()
    # THEN the destination holds the stored state again, its ordering unchanged
    assert shadow_in(p, THING, None) == {"desired": {"mode": "eco"}, "reported": {}}
    again = p.table.get(EntityKind.SHADOW, name)
    assert again is not None and again.event_ts == stored.event_ts
    # AND a corrective event of another state in that second is stale
    other = replace(
        repair,
        fields={**stored.state, "desired": '{"mode":"other"}'},
        origin=replace(repair.origin, event_id="crr-2"),
        sync="sync-2",
    )
    assert p.persist(corrective_event(other)).outcome is Outcome.STALE
