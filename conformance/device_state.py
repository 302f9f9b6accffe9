"""What a region's iot-data endpoint holds for a scenario, and how a run removes it again:
device shadows of named things and retained messages under a topic prefix (issue 24).

Plain boto3 only, independent of ``pipeline`` and ``reconcile`` (whose copies and audits the
scenarios check against this). AWS IoT API Reference (iot-data): GetThingShadow,
ListNamedShadowsForThing, DeleteThingShadow, ListRetainedMessages, GetRetainedMessage, Publish.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

CLASSIC = "~classic"  # the classic (unnamed) shadow's key here, as docs/shadows.md names it
Sections = dict[str, dict[str, Any]]


def _not_found(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ResourceNotFoundException"


def named_shadows(data: Any, thing: str) -> list[str]:
    """The names of ``thing``'s named shadows (ListNamedShadowsForThing, paged by nextToken)."""
    names: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = data.list_named_shadows_for_thing(thingName=thing, **token)
        names += page.get("results", [])
        if not page.get("nextToken"):
            return names
        token = {"nextToken": page["nextToken"]}


def shadows(data: Any, thing: str) -> dict[str, Sections]:
    """``thing``'s shadows: name (``~classic`` for the classic one) -> desired and reported, the
    two sections the pipeline replicates (metadata, delta and version are each region's own).
    A shadow deleted between the listing and the read is left out."""
    found: dict[str, Sections] = {}
    for name in [None, *named_shadows(data, thing)]:
        named = {} if name is None else {"shadowName": name}
        try:
            document = json.loads(data.get_thing_shadow(thingName=thing, **named)["payload"].read())
        except ClientError as error:
            if _not_found(error):  # no classic shadow: GetThingShadow answers 404
                continue
            raise
        state = document.get("state") or {}
        found[name or CLASSIC] = {key: state.get(key) or {} for key in ("desired", "reported")}
    return found


def retained(data: Any, topic: str) -> tuple[bytes, int] | None:
    """The retained message on ``topic`` (payload, QoS), or None (GetRetainedMessage: 404)."""
    try:
        message = data.get_retained_message(topic=topic)
    except ClientError as error:
        if _not_found(error):
            return None
        raise
    return bytes(message.get("payload") or b""), int(message.get("qos", 0))


def retained_topics(data: Any, prefix: str) -> list[str]:
    """Topics of the account's retained messages starting with ``prefix`` (ListRetainedMessages,
    paged by nextToken)."""
    topics: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = data.list_retained_messages(**token)
        topics += [
            t["topic"] for t in page.get("retainedTopics", []) if t["topic"].startswith(prefix)
        ]
        if not page.get("nextToken"):
            return topics
        token = {"nextToken": page["nextToken"]}


def remove(data: Any, things: list[str], prefix: str) -> list[str]:
    """Every shadow of ``things`` and every retained message under ``prefix`` in ``data``'s
    region; returns what it removed. A retained message is deleted by a retained publish with an
    empty payload ("Using MQTT retained messages"). Shadows go one by one (DeleteThingShadow; a
    404 is one gone already): [assumption] DeleteThing need not remove them, no source read in
    this session says it does."""
    removed: list[str] = []
    for thing in things:
        for name in [None, *named_shadows(data, thing)]:
            named = {} if name is None else {"shadowName": name}
            try:
                data.delete_thing_shadow(thingName=thing, **named)
            except ClientError as error:
                if not _not_found(error):
                    raise
                continue
            removed.append(f"shadow {thing}#{name or CLASSIC}")
    for topic in retained_topics(data, prefix):
        data.publish(topic=topic, qos=1, retain=True, payload=b"")
        removed.append(f"retained message {topic}")
    return removed
