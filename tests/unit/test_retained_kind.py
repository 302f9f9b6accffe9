"""The retained-message kind's pure parts (``pipeline.kinds.retained_message``): topics AWS
accepts for a retained message, the state's values, GetRetainedMessage's answer as state, the
Publish calls that repair or delete one, and the topic globs a snapshot includes."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from pipeline.errors import EventValidationError
from pipeline.kinds.base import Call
from pipeline.kinds.retained_message import (
    KIND,
    PAYLOAD_MAX_BYTES,
    retained_calls,
    state_of,
)
from pipeline.model import EntityKind
from reconcile.inventory import included

STATE = {"payload": base64.b64encode(b"\x00on").decode(), "qos": 1, "user_properties": "[]"}


@pytest.mark.parametrize(
    "topic",
    ["config/dev-1", "a", "déjà/vu", "a/b/c/d/e/f/g/h", "x" * 256, "dev:1/cfg"],
)
def test_topics_a_retained_message_may_have(topic: str) -> None:
    assert KIND.check_name("name", topic) == topic


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("", "non-empty"),
        ("$aws/things/t/shadow/update", "reserved"),
        ("config/+/x", "wildcard"),
        ("config/#", "wildcard"),
        ("a/b/c/d/e/f/g/h/i", "7 forward slashes"),
        ("é" * 129, "256 bytes"),
        (7, "non-empty topic"),
    ],
)
def test_topics_aws_refuses_to_retain_on(topic: Any, reason: str) -> None:
    with pytest.raises(EventValidationError, match=reason):
        KIND.check_name("name", topic)


def test_values_are_checked_as_aws_takes_them() -> None:
    assert KIND.check_state(STATE) == STATE
    assert KIND.check_field("user_properties", '[{"k": "v"}]', STATE) == '[{"k":"v"}]'
    too_big = base64.b64encode(b"x" * (PAYLOAD_MAX_BYTES + 1)).decode()
    for key, value, reason in [
        ("payload", "", "never empty"),
        ("payload", "not base64!", "base64"),
        ("payload", too_big, "payload limit"),
        ("qos", 2, "0 or 1"),
        ("qos", True, "0 or 1"),
        ("user_properties", '{"k": "v"}', "array"),
        ("user_properties", '[{"k": 1}]', "strings"),
    ]:
        with pytest.raises(EventValidationError, match=reason):
            KIND.check_field(key, value, STATE)
    with pytest.raises(EventValidationError, match="unknown field"):
        KIND.check_state({"lastModifiedTime": 1})


def test_get_retained_message_reads_as_state() -> None:
    answer = {
        "topic": "config/d",
        "payload": b"\x00on",
        "qos": 1,
        "lastModifiedTime": 1_796_119_205_000,  # each region's own: not in the state
        "userProperties": b'[{"b": "2"}, {"a": "1"}]',
    }
    assert state_of(answer) == {**STATE, "user_properties": '[{"b":"2"},{"a":"1"}]'}
    assert state_of({"payload": b"x"})["user_properties"] == "[]"


def test_a_missing_or_changed_message_is_published_with_retain() -> None:
    publish = Call(
        "Publish",
        {
            "topic": "config/d",
            "qos": 1,
            "retain": True,
            "payload": b"\x00on",
            "userProperties": [{"a": "1"}],
        },
    )
    desired = {**STATE, "user_properties": '[{"a":"1"}]'}
    assert retained_calls("config/d", desired, None) == [publish]
    assert retained_calls("config/d", desired, {**desired, "qos": 0}) == [publish]
    assert retained_calls("config/d", desired, desired) == []
    # no user properties: none sent
    (call,) = retained_calls("config/d", STATE, None)
    assert "userProperties" not in call.params


def test_a_delete_is_an_empty_retained_publish() -> None:
    assert retained_calls("config/d", None, STATE) == [
        Call("Publish", {"topic": "config/d", "retain": True, "payload": b""})
    ]
    assert retained_calls("config/d", None, None) == []


def test_a_reserved_topic_is_never_published() -> None:
    with pytest.raises(EventValidationError, match="reserved"):
        retained_calls("$aws/x", STATE, None)


def test_topic_globs_include_by_fnmatch_case_sensitively() -> None:
    include = {EntityKind.RETAINED_MESSAGE: ("config/*", "status/dev-?")}
    kind = EntityKind.RETAINED_MESSAGE
    assert included(include, kind, "config/a/b")  # "*" crosses "/"
    assert included(include, kind, "status/dev-1")
    assert not included(include, kind, "status/dev-10")
    assert not included(include, kind, "Config/a")
    assert included(include, EntityKind.THING, "anything")  # a kind not named: all
