"""Retained messages as AWS IoT Core's message broker keeps them (moto 5.2's iot-data records a
Publish's topic and payload and nothing else: no retained messages, no ListRetainedMessages or
GetRetainedMessage; ``MOTO_GAPS``).

Sources: AWS IoT Developer Guide, "Using MQTT retained messages" (mqtt.md#mqtt-retain), "MQTT
topics", "Reserved topics"; AWS IoT API Reference and botocore's iot-data model: Publish,
ListRetainedMessages, GetRetainedMessage (``pipeline.kinds.retained_message`` cites them).

- Publish with ``retain=true`` stores the message (payload, QoS, MQTT 5 user properties, the
  time) as its topic's one retained message, replacing the one before; with an empty payload it
  deletes it ("a message with the RETAIN flag set and an empty (0-byte) message payload").
- ListRetainedMessages pages ``retainedTopics`` (``topic``, ``payloadSize``, ``qos``,
  ``lastModifiedTime``) with ``nextToken``/``maxResults`` (at most 200, botocore's model);
  [assumption] in topic order, 25 a page unless asked (AWS documents neither).
- GetRetainedMessage answers ``topic``, ``payload``, ``qos``, ``lastModifiedTime`` and, where
  the message had them, ``userProperties`` (base64 of their JSON); ResourceNotFoundException for
  a topic without one.
- Refused as AWS refuses (``REFUSALS``): a payload over 128 KB ("AWS IoT rejects messages larger
  than this size", General Reference); a retained publish to a reserved (``$``) topic ("You
  can't publish to a reserved topic with the RETAIN flag set").
- [not emulated] the account's maximum number of retained messages (AWS answers a throttled
  response at it), the three-year expiry of an untouched one, delivery to subscribers.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from moto.iotdata.exceptions import InvalidRequestException, ResourceNotFoundException
from moto.iotdata.models import IoTDataPlaneBackend
from moto.iotdata.responses import IoTDataPlaneResponse

from pipeline.kinds.retained_message import (
    PAYLOAD_MAX_BYTES,
    RESERVED_PREFIX,
    USER_PROPERTIES_HEADER,
)
from sandbox.emulation.paging import page
from sandbox.emulation.refusals import refuse
from sandbox.emulation.registry import _Installed

MAX_RESULTS = 200  # ListRetainedMessages' maxResults (botocore's iot-data model: 1-200)


@dataclass(frozen=True)
class Retained:
    payload: bytes
    qos: int
    user_properties: str | None  # their JSON text, as the publish's header carried it
    last_modified_ms: int

    def summary(self, topic: str) -> dict[str, Any]:
        return {
            "topic": topic,
            "payloadSize": len(self.payload),
            "qos": self.qos,
            "lastModifiedTime": self.last_modified_ms,
        }


def retained_messages(backend: IoTDataPlaneBackend) -> dict[str, Retained]:
    """The region's retained messages, by topic (kept on moto's backend: reset with it)."""
    stored: dict[str, Retained] = vars(backend).setdefault("iot_crr_retained", {})
    return stored


def _now_ms() -> int:
    emulation = _Installed.emulation
    return emulation.now_ms() if emulation is not None else int(time.time() * 1000)


def publish(
    backend: IoTDataPlaneBackend,
    topic: str,
    payload: bytes,
    *,
    qos: int = 0,
    retain: bool = False,
    user_properties: str | None = None,
) -> None:
    """A Publish as the broker takes it: refused, or retained (or a retained one deleted)."""
    if len(payload) > PAYLOAD_MAX_BYTES:
        raise refuse("publish_payload_too_large", size=len(payload), limit=PAYLOAD_MAX_BYTES)
    if retain and topic.startswith(RESERVED_PREFIX):
        raise refuse("retain_on_reserved_topic", topic=topic)
    if retain:
        stored = retained_messages(backend)
        if payload:
            stored[topic] = Retained(payload, qos, user_properties, _now_ms())
        else:
            stored.pop(topic, None)
    backend.publish(topic, payload)  # moto's record of what was published


def _user_properties(header: str | None) -> str | None:
    """The ``x-amz-mqtt5-user-properties`` header: base64 of a JSON array (botocore's model)."""
    if not header:
        return None
    try:
        text = base64.b64decode(header, validate=True).decode()
        json.loads(text)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestException("userProperties must be base64 of a JSON array") from exc
    return text


def _response_publish(self: IoTDataPlaneResponse) -> str:
    topic = self.path.split("/topics/")[-1]
    topic = unquote(topic) if "%" in topic else topic  # as moto's own publish reads it
    query = self.querystring
    body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
    publish(
        self.iotdata_backend,
        topic,
        body,
        qos=int(query.get("qos", ["0"])[0]),
        retain=query.get("retain", ["false"])[0].lower() == "true",
        user_properties=_user_properties(self.headers.get(USER_PROPERTIES_HEADER)),
    )
    return json.dumps({})


def _response_list_retained_messages(self: IoTDataPlaneResponse) -> str:
    stored = retained_messages(self.iotdata_backend)
    size = self.querystring.get("maxResults", [None])[0]
    if size is not None and not 1 <= int(size) <= MAX_RESULTS:
        raise InvalidRequestException(f"maxResults must be 1..{MAX_RESULTS}")
    topics, token = page(
        sorted(stored),
        None if size is None else int(size),
        self.querystring.get("nextToken", [None])[0],
    )
    result: dict[str, Any] = {"retainedTopics": [stored[t].summary(t) for t in topics]}
    return json.dumps({**result, "nextToken": token} if token else result)


def _response_get_retained_message(self: IoTDataPlaneResponse) -> str:
    topic = unquote(self.path.split("/retainedMessage/", 1)[-1])
    message = retained_messages(self.iotdata_backend).get(topic)
    if message is None:
        raise ResourceNotFoundException()
    result: dict[str, Any] = {
        "topic": topic,
        "payload": base64.b64encode(message.payload).decode(),  # a blob in a JSON body
        "qos": message.qos,
        "lastModifiedTime": message.last_modified_ms,
    }
    if message.user_properties is not None:
        result["userProperties"] = base64.b64encode(message.user_properties.encode()).decode()
    return json.dumps(result)


RESPONSE_PATCHES: dict[str, Callable[..., Any]] = {
    "publish": _response_publish,
    "list_retained_messages": _response_list_retained_messages,
    "get_retained_message": _response_get_retained_message,
}
