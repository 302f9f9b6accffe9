"""Retained messages, by topic: the last message published with the RETAIN flag on a topic,
which AWS IoT Core's message broker stores and sends to every new subscriber of that topic (an
initial configuration, a last-known state). They are regional: a device that reconnects to the
DR region after a failover receives there only what was retained there.

Reconciled only, never streamed (docs/retained.md): no event or rule sees a retained message as
retained. The IoT SQL reference's functions give a message's topic, client id and payload, none
its RETAIN flag ("Functions", AWS IoT Developer Guide), and a client may publish to a retained
topic without the flag ("Using MQTT retained messages"), so a rule on the topics would take
plain telemetry for retained state; a message AWS deletes after three years unused announces
nothing. ListRetainedMessages is the only complete source: the nightly snapshot lists it.

AWS behaviours relied on (AWS IoT Developer Guide, "Using MQTT retained messages",
https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt-retain; AWS IoT API
Reference and botocore's iot-data model: ListRetainedMessages, GetRetainedMessage, Publish):
- One message per topic: a new retained publish replaces it. "Devices, applications, and
  services can delete a retained message by publishing a message with the RETAIN flag set and an
  empty (0-byte) message payload" (also Publish's ``payload``: "Publishing an empty (null)
  payload with retain = true deletes the retained message"). So a retained message's payload is
  never empty, and the replicator's delete is that publish (``calls``).
- "You can't publish to a reserved topic with the RETAIN flag set": no topic starting with
  ``$`` (reserved topics, "Reserved topics") is a retained message's. Publishing clients can't
  use the wildcards ``+`` and ``#`` in a topic name ("MQTT topics"); so ``#``, the state
  table's key separator, is in no topic.
- ListRetainedMessages pages ``retainedTopics`` (``topic``, ``payloadSize``, ``qos``,
  ``lastModifiedTime``) by ``nextToken``, ``maxResults`` 1-200; GetRetainedMessage gives
  ``payload`` (a blob), ``qos`` (0-1), ``lastModifiedTime`` (epoch ms, each region's own: kept
  out of the state) and ``userProperties`` (base64 JSON of an array of objects, or null).
  Publish takes ``topic``, ``qos``, ``retain``, ``payload`` and ``userProperties`` (a JSON
  array of objects, sent as a header). The other MQTT 5 properties a message may carry (content
  type, payload format, response topic, correlation data, message expiry) GetRetainedMessage
  does not return: they cannot be copied.
- Limits (AWS General Reference, "AWS IoT Core endpoints and quotas", message broker): a
  PUBLISH payload is at most 128 KB [assumption: 128 x 1024 bytes, as the shadow's 8 KB];
  a topic has at most 7 forward slashes; [assumption] a topic is at most 256 bytes of UTF-8
  (that row was not read in this session). When the account holds its maximum number of
  retained messages ("Maximum number of retained messages per account", Service Quotas), "AWS
  IoT Core returns a throttled response to messages published with RETAIN set and payloads
  greater than 0 bytes" (mqtt.md): a retryable error for the replicator.
- IAM ("AWS IoT Core policy actions", "Actions, resources, and condition keys for AWS IoT"):
  ListRetainedMessages on ``*`` only; GetRetainedMessage on the topic; a retained publish needs
  ``iot:RetainPublish`` and ``iot:Publish`` on the topic ("To grant iot:RetainPublish permission,
  you must also grant iot:Publish permission"): ``pipeline.aws.IAM_ACTIONS``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from pipeline.errors import EventValidationError, NotFoundError
from pipeline.iot import Iot
from pipeline.kinds.base import (
    Call,
    Column,
    EntitySpec,
    Kind,
    Listing,
    Reader,
    canonical_json,
    text,
)
from pipeline.model import KEY_SEPARATOR, EntityKind

PAYLOAD_MAX_BYTES = 128 * 1024  # a PUBLISH payload (General Reference, message broker limits)
TOPIC_MAX_BYTES = 256  # [assumption] the message broker's topic size
TOPIC_MAX_SLASHES = 7  # General Reference, message broker limits
QOS_LEVELS = (0, 1)  # AWS IoT supports QoS 0 and 1 (botocore: Qos 0-1)
NO_PROPERTIES = "[]"  # a message without MQTT 5 user properties
RESERVED_PREFIX = "$"  # reserved topics: never retained

# The header botocore sends Publish's ``userProperties`` in (its iot-data model), base64 JSON.
USER_PROPERTIES_HEADER = "x-amz-mqtt5-user-properties"


# --- names and values ----------------------------------------------------------------------------


def topic_problem(topic: object) -> str | None:
    """Why ``topic`` is no retained message's topic (``None``: it may be one)."""
    if not isinstance(topic, str) or not topic:
        return "must be a non-empty topic name"
    if topic.startswith(RESERVED_PREFIX):
        return "a reserved ($) topic holds no retained message"
    if "+" in topic or KEY_SEPARATOR in topic or "\x00" in topic:
        return "a topic name holds no wildcard (+, #) and no NUL"
    if topic.count("/") > TOPIC_MAX_SLASHES:
        return f"a topic has at most {TOPIC_MAX_SLASHES} forward slashes"
    if len(topic.encode("utf-8", "surrogatepass")) > TOPIC_MAX_BYTES:
        return f"a topic is at most {TOPIC_MAX_BYTES} bytes of UTF-8"
    return None


def check_topic(field_name: str, topic: object) -> str:
    problem = topic_problem(topic)
    if problem is not None:
        raise EventValidationError(field_name, problem)
    assert isinstance(topic, str)
    return topic


def payload_text(payload: bytes) -> str:
    """A payload as the state holds it: standard base64 (the bytes may be any binary)."""
    return base64.b64encode(payload).decode("ascii")


def payload_bytes(field_name: str, value: object) -> bytes:
    """The payload a state's base64 text holds, validated: 1..128 KB (an empty one deletes)."""
    if not isinstance(value, str):
        raise EventValidationError(field_name, "must be the payload as base64 text")
    try:
        payload = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EventValidationError(field_name, "must be the payload as base64 text") from exc
    if not payload:
        raise EventValidationError(field_name, "a retained message's payload is never empty")
    if len(payload) > PAYLOAD_MAX_BYTES:
        raise EventValidationError(
            field_name, f"{len(payload)} bytes exceed the {PAYLOAD_MAX_BYTES}-byte payload limit"
        )
    return payload


def check_qos(field_name: str, value: object) -> int:
    if isinstance(value, bool) or value not in QOS_LEVELS:
        raise EventValidationError(field_name, "must be 0 or 1")
    assert isinstance(value, int)
    return value


def properties_text(field_name: str, value: object) -> str:
    """MQTT 5 user properties as canonical JSON text of AWS's array of objects, in their order
    (a property may repeat); ``[]`` for none."""
    if value is None:
        return NO_PROPERTIES
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise EventValidationError(field_name, "must be a JSON array of objects") from exc
    if not isinstance(value, list) or not all(
        isinstance(entry, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in entry.items())
        for entry in value
    ):
        raise EventValidationError(field_name, "must be a JSON array of objects of strings")
    return canonical_json(value)


def state_of(message: Mapping[str, Any]) -> dict[str, Any]:
    """GetRetainedMessage's answer as the retained message's state (its payload as base64)."""
    body = message.get("payload") or b""
    raw = body.read() if hasattr(body, "read") else body
    return {
        "payload": payload_text(raw if isinstance(raw, bytes) else str(raw).encode()),
        "qos": int(message.get("qos") or 0),
        "user_properties": properties_text("userProperties", message.get("userProperties")),
    }


# --- the pure decision ---------------------------------------------------------------------------


def retained_calls(
    topic: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
) -> list[Call]:
    """The calls that bring the retained message of ``topic`` from ``actual`` (``read``;
    ``None``: none retained) to ``desired`` (``None``: deleted): one Publish with retain, of the
    source's payload, QoS and user properties, or of an empty payload, which deletes it."""
    check_topic("topic", topic)
    if desired is None:
        if actual is None:
            return []
        return [Call("Publish", {"topic": topic, "retain": True, "payload": b""})]
    wanted = {
        "payload": desired.get("payload"),
        "qos": desired.get("qos") or 0,
        "user_properties": desired.get("user_properties") or NO_PROPERTIES,
    }
    if actual is not None and all(actual.get(key) == value for key, value in wanted.items()):
        return []
    params: dict[str, Any] = {
        "topic": topic,
        "qos": check_qos("state.qos", wanted["qos"]),
        "retain": True,
        "payload": payload_bytes("state.payload", wanted["payload"]),
    }
    properties = json.loads(properties_text("state.user_properties", wanted["user_properties"]))
    if properties:
        params["userProperties"] = properties
    return [Call("Publish", params)]


# --- the kind ------------------------------------------------------------------------------------


class RetainedMessage(Kind):
    spec = EntitySpec(
        EntityKind.RETAINED_MESSAGE,
        frame="retained_messages",
        # Depends on nothing; after the shadows, with the device-state kinds.
        rank=12,
        # The payload is what a device receives on subscribing (its configuration, a last
        # known state): high. Properties travel with it: medium. The QoS only bounds the
        # delivery guarantee to new subscribers: low.
        fields={"payload": "high", "user_properties": "medium", "qos": "low"},
        noun=("retained message", "retained messages"),
        alias="retained",
    )
    columns = (
        text("name"),
        text("payload"),
        text("user_properties"),
        Column("qos", "Int64"),
    )
    # ListRetainedMessages, then GetRetainedMessage per listed topic the snapshot includes
    # (``Inventory``'s name globs). Opt-in (``iot-crr --retained GLOB``, the job's
    # RETAINED_TOPICS): each GetRetainedMessage is metered as messaging besides its API call,
    # and a topic namespace may hold telemetry nobody wants copied (docs/retained.md, "Cost").
    listing = Listing(
        "ListRetainedMessages", name="topic", describe=("GetRetainedMessage",), opt_in=True
    )
    # [assumption] AWS General Reference, "AWS IoT Core endpoints and quotas": the rows for
    # these two calls were not read in this session. ListRetainedMessages paced as IoT's list
    # calls (10 TPS), GetRetainedMessage at 100 TPS (docs/retained.md, "Quotas").
    quotas = {"ListRetainedMessages": 10, "GetRetainedMessage": 100}

    def check_name(self, field_name: str, name: object) -> str:
        return check_topic(field_name, name)

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        field_name = f"state.{key}"
        if key == "payload":
            return payload_text(payload_bytes(field_name, value))
        if key == "qos":
            return check_qos(field_name, value)
        if not isinstance(value, str):
            raise EventValidationError(field_name, "must be a JSON array's text")
        return properties_text(field_name, value)

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        response = iot.maybe("GetRetainedMessage", topic=name)
        return None if response is None else state_of(response)

    def record(self, reader: Reader, listed: Mapping[str, Any]) -> dict[str, Any] | None:
        topic = str(listed["topic"])
        try:
            response = reader.call("GetRetainedMessage", topic=topic)
        except NotFoundError:
            return None  # deleted (an empty retained publish) since it was listed
        return {"name": topic, **state_of(response)}

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        return retained_calls(name, desired, actual)


KIND = RetainedMessage()
KINDS = (KIND,)
