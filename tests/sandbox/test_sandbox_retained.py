"""Retained messages on the sandbox, over HTTP with boto3's iot-data client
(``sandbox.emulation.retained``): Publish with retain keeps a topic's last message and an empty
one deletes it, ListRetainedMessages pages them, GetRetainedMessage reads one, and the refusals
AWS makes (MOTO_GAPS, REFUSALS)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from pipeline.kinds.retained_message import PAYLOAD_MAX_BYTES
from sandbox.stack import Sandbox

SOURCE = "us-east-1"


def test_retained_publishes_are_kept_listed_read_and_deleted(box: Sandbox) -> None:
    data = box.client("iot-data", SOURCE)
    # GIVEN retained publishes on nested topics, one replaced, and a plain publish
    data.publish(topic="ret/dev-1/config", payload=b"v1", retain=True)
    data.publish(
        topic="ret/dev-1/config", payload=b"\x00v2", qos=1, retain=True, userProperties=[{"a": "1"}]
    )
    data.publish(topic="ret/dev-2/config", payload=b"c2", retain=True)
    data.publish(topic="ret/dev-3/telemetry", payload=b"t")
    # THEN the topic's last retained message is what GetRetainedMessage reads
    message = data.get_retained_message(topic="ret/dev-1/config")
    assert (message["payload"], message["qos"]) == (b"\x00v2", 1)
    assert message["userProperties"] == b'[{"a":"1"}]'
    # AND ListRetainedMessages pages the retained topics only, with their summaries
    pages = list(
        data.get_paginator("list_retained_messages").paginate(PaginationConfig={"PageSize": 1})
    )
    listed = [t for p in pages for t in p["retainedTopics"] if t["topic"].startswith("ret/")]
    assert [(t["topic"], t["payloadSize"], t["qos"]) for t in listed] == [
        ("ret/dev-1/config", 3, 1),
        ("ret/dev-2/config", 2, 0),
    ]
    assert len(pages) >= 2
    # WHEN an empty retained message is published THEN the topic retains nothing
    data.publish(topic="ret/dev-2/config", payload=b"", retain=True)
    with pytest.raises(ClientError) as error:
        data.get_retained_message(topic="ret/dev-2/config")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        ("$aws/things/t/shadow/update", b"x", "InvalidRequestException"),
        ("ret/big", b"x" * (PAYLOAD_MAX_BYTES + 1), "RequestEntityTooLargeException"),
    ],
)
def test_publishes_aws_refuses(box: Sandbox, topic: str, payload: bytes, code: str) -> None:
    data = box.client("iot-data", SOURCE)
    with pytest.raises(ClientError) as error:
        data.publish(topic=topic, payload=payload, retain=True)
    assert error.value.response["Error"]["Code"] == code
    assert not [t for t in data.list_retained_messages()["retainedTopics"] if t["topic"] == topic]
