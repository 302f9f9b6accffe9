"""Device shadows on the sandbox, over HTTP with boto3's iot-data client
(``sandbox.emulation.shadows``): the messages AWS publishes on the shadow topics, in the shape
the docs give and the persist step parses, and the refusals AWS makes (MOTO_GAPS)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.events import parse_event
from pipeline.kinds.shadow import STATE_MAX_BYTES
from sandbox.stack import Sandbox

SOURCE = "us-east-1"


def _update(box: Sandbox, thing: str, state: dict[str, Any], shadow: str | None = None) -> Any:
    data = box.client("iot-data", SOURCE)
    named = {} if shadow is None else {"shadowName": shadow}
    payload = json.dumps({"state": state, "clientToken": "tok-1"}).encode()
    return data.update_thing_shadow(thingName=thing, payload=payload, **named)


def _messages(box: Sandbox) -> list[dict[str, Any]]:
    return [event for event in box.outbox(SOURCE).take() if "/shadow/" in event.get("topic", "")]


def test_updates_and_deletes_publish_the_documented_messages(box: Sandbox) -> None:
    box.iot(SOURCE).create_thing(thingName="t1")
    box.outbox(SOURCE).take()
    _update(box, "t1", {"desired": {"color": "red"}})
    _update(box, "t1", {"reported": {"temp": 21.5}, "desired": {"color": None}}, shadow="cfg")
    _update(box, "t1", {"reported": {"temp": 22}}, shadow="cfg")
    box.client("iot-data", SOURCE).delete_thing_shadow(thingName="t1", shadowName="cfg")

    classic, named_new, named_changed, named_deleted = _messages(box)
    assert classic["topic"] == "$aws/things/t1/shadow/update/documents"
    assert classic["current"]["state"] == {"desired": {"color": "red"}}
    assert classic["current"]["version"] == 1
    assert set(classic) == {"current", "timestamp", "clientToken", "topic"}  # new: no previous
    assert classic["timestamp"] < 10**11  # epoch seconds
    assert named_new["topic"] == "$aws/things/t1/shadow/name/cfg/update/documents"
    assert named_changed["previous"]["state"] == {"reported": {"temp": 21.5}}
    assert named_changed["current"]["state"] == {"reported": {"temp": 22}}
    assert named_changed["current"]["version"] == named_changed["previous"]["version"] + 1
    assert named_deleted["topic"] == "$aws/things/t1/shadow/name/cfg/delete/accepted"
    assert set(named_deleted) == {"version", "timestamp", "topic"}

    # persist reads each of them as the shadow's change
    changes = [parse_event(m, region=SOURCE) for m in (classic, named_changed, named_deleted)]
    assert [(c.name, c.fields, c.deleted) for c in changes] == [
        ("t1#~classic", {"desired": '{"color":"red"}', "reported": "{}"}, False),
        ("t1#cfg", {"desired": "{}", "reported": '{"temp":22}'}, False),
        ("t1#cfg", {}, True),
    ]


def test_a_shadow_over_8_kb_is_refused_as_aws_refuses_it(box: Sandbox) -> None:
    box.iot(SOURCE).create_thing(thingName="t1")
    _update(box, "t1", {"desired": {"a": "x" * (STATE_MAX_BYTES // 2)}})
    box.outbox(SOURCE).take()
    with pytest.raises(ClientError) as error:  # the merged result counts, not the request
        _update(box, "t1", {"reported": {"b": "y" * (STATE_MAX_BYTES // 2)}})
    assert error.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert _messages(box) == []  # nothing changed, nothing published
    assert box.refusals["shadow_too_large"] == 1


def test_deleted_shadows_are_gone_as_in_aws(box: Sandbox) -> None:
    box.iot(SOURCE).create_thing(thingName="t1")
    data = box.client("iot-data", SOURCE)
    _update(box, "t1", {"desired": {"a": 1}}, shadow="one")
    _update(box, "t1", {"desired": {"a": 1}}, shadow="two")
    data.delete_thing_shadow(thingName="t1", shadowName="one")
    assert data.list_named_shadows_for_thing(thingName="t1")["results"] == ["two"]
    with pytest.raises(ClientError) as error:
        data.delete_thing_shadow(thingName="t1", shadowName="one")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # re-created: the version goes on from the deleted one's ("Interacting with shadows")
    again = json.loads(_update(box, "t1", {"desired": {"b": 2}}, shadow="one")["payload"].read())
    assert again["version"] > 1
