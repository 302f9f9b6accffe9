"""Registry events in, ``Change`` values out: the envelope and the dispatch.

Sits at the very start of the streaming path. The persist state machine receives the payload an
IoT rule selected from ``$aws/events/...`` (or a corrective event that reconciliation emitted)
and calls ``parse_event(payload, region=AWS_REGION)``; everything after it (ordering, state-table
writes, replication) speaks ``pipeline.model.Change`` only. Reconciliation builds its corrective
events with ``corrective_event(change)``, which is the exact inverse of the parser.

Contract: a payload either parses into one ``Change`` or raises a ``PermanentError``:
``EventValidationError(field, reason)`` for a malformed shape (missing field, wrong type,
unknown ``eventType`` or ``operation``, bad ARN) or ``RegistryValidationError`` for a value that
breaks AWS IoT's name/value rules (``pipeline.rules``). Nothing is dropped silently, and no
``KeyError``/``TypeError``/``pydantic.ValidationError`` escapes. Unknown extra keys (the
``topic`` an IoT rule may add, ``accountId``, ``rootToParentThingGroups``...) are ignored.

Each kind parses its own event types (``Kind.registry_events`` in ``pipeline.kinds``, with the
shared models of ``pipeline.kinds.parse``); this module dispatches on ``eventType`` (or, for a
message without one, such as a shadow's ``update/documents``, on the ``topic`` the IoT rule
adds: ``Kind.topics``) and owns the corrective event, whose name and state the kind checks (``check_name``, ``check_state``).
Payload shapes: AWS IoT Developer Guide, "Registry events",
https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import Field

from pipeline.errors import EventValidationError
from pipeline.kinds import KINDS
from pipeline.kinds.parse import SECONDS_BELOW, NonEmptyStr, RegistryEvent, validate
from pipeline.model import Change, EntityKind, Origin

CORRECTIVE_EVENT = "CRR_CORRECTIVE_EVENT"

_PARSERS: dict[str, Callable[[dict[str, Any], str], Change]] = {
    event_type: parser
    for kind in KINDS.values()
    for event_type, parser in kind.registry_events.items()
}
# Every eventType parse_event accepts (the infra tests check the IoT rule selects these).
EVENT_TYPES: tuple[str, ...] = (*_PARSERS, CORRECTIVE_EVENT)
# Messages without an eventType, by the topic filter of the reserved topics they come from (a
# shadow's update/documents and delete/accepted): the infra tests check the rules select these.
_TOPIC_PARSERS: dict[str, Callable[[dict[str, Any], str], Change]] = {
    topic_filter: parser for kind in KINDS.values() for topic_filter, parser in kind.topics.items()
}
EVENT_TOPICS: tuple[str, ...] = tuple(_TOPIC_PARSERS)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching: ``+`` is one level, a trailing ``#`` any number of levels
    (AWS IoT Developer Guide, "MQTT topics", topic filters)."""
    wanted, levels = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(wanted):
        if part == "#":
            return True
        if i >= len(levels) or part not in ("+", levels[i]):
            return False
    return len(wanted) == len(levels)


class _CorrectiveEvent(RegistryEvent):
    entity: str
    name: str
    state: dict[str, Any]
    deleted: bool
    sync: NonEmptyStr
    version_number: int | None = Field(None, alias="versionNumber", ge=0)


def parse_event(payload: Mapping[str, Any], *, region: str) -> Change:
    """The ``Change`` a registry (or corrective) event describes; ``region`` is its origin.

    Raises ``EventValidationError`` for a malformed payload and ``RegistryValidationError`` for
    a name or value AWS IoT would refuse; both name the offending field.
    """
    if not isinstance(payload, Mapping):
        raise EventValidationError(
            "payload", f"must be a JSON object, got {type(payload).__name__}"
        )
    data = dict(payload)
    if "eventType" not in data:
        topic = data.get("topic")
        for topic_filter, topic_parser in _TOPIC_PARSERS.items():
            if isinstance(topic, str) and topic_matches(topic_filter, topic):
                return topic_parser(data, region)
        raise EventValidationError("eventType", "Field required")
    event_type = data["eventType"]
    if event_type == CORRECTIVE_EVENT:
        return _corrective(data, region)
    parser = _PARSERS.get(event_type) if isinstance(event_type, str) else None
    if parser is None:
        raise EventValidationError(
            "eventType",
            f"unknown event type {event_type!r}; expected one of {', '.join(EVENT_TYPES)}",
        )
    return parser(data, region)


def corrective_event(change: Change) -> dict[str, Any]:
    """The ``CRR_CORRECTIVE_EVENT`` payload for ``change``: the inverse of ``parse_event``.

    ``parse_event(corrective_event(c), region=c.origin.region)`` gives back ``c`` as a
    corrective change (``entity_id`` dropped, ``corrective=True``) for any canonical ``c``
    (sorted searchable attributes, no empty descriptions). The state is not validated here:
    reconciliation admits the payload as persist does (``pipeline.ingest.admit``) before it
    emits it, so it cannot emit an event persist would refuse.
    """
    if change.sync is None:
        raise EventValidationError("sync", "a corrective event needs a sync token")
    if change.origin.timestamp_ms < SECONDS_BELOW:
        # parse_event would read it as seconds: refuse rather than shift it 1000x.
        raise EventValidationError(
            "timestamp", f"{change.origin.timestamp_ms} is not a plausible epoch-ms value"
        )
    payload: dict[str, Any] = {
        "eventType": CORRECTIVE_EVENT,
        "eventId": change.origin.event_id,
        "timestamp": change.origin.timestamp_ms,
        "entity": change.kind.value,
        "name": change.name,
        "state": copy.deepcopy(change.fields),
        "deleted": change.deleted,
        "sync": change.sync,
        "versionNumber": change.origin.version,
    }
    return payload


def _corrective(data: dict[str, Any], region: str) -> Change:
    event = validate(_CorrectiveEvent, data)
    try:
        kind = EntityKind(event.entity)
    except ValueError as exc:
        expected = ", ".join(k.value for k in EntityKind)
        raise EventValidationError(
            "entity", f"unknown entity {event.entity!r}; expected one of {expected}"
        ) from exc
    checker = KINDS[kind]
    origin = Origin(region, event.timestamp, event.event_id, None, event.version_number)
    return Change(
        kind,
        checker.check_name("name", event.name),
        origin,
        fields=checker.check_state(event.state),
        deleted=event.deleted,
        corrective=True,
        sync=event.sync,
    )
