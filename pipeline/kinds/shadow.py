"""Device shadows, by ``<thing>#<shadow>``: the desired and reported state of a thing's classic
(unnamed) or named shadow, which devices and applications read and write through the Device
Shadow service (``iot-data``). After a failover a device asks the DR region for its shadow;
without a copy there it gets "not found" and its desired configuration is lost (shadows are
regional: AWS IoT Developer Guide, "Resilience in AWS IoT Core").

Only ``desired`` and ``reported`` are replicated: metadata, delta and version are computed by
each region's Device Shadow service itself (a version counts one region's updates, like a
registry version). Each section is kept as canonical JSON text, so the state table and the
snapshot hold any JSON a shadow holds (floats, nesting) unchanged.

AWS behaviours relied on:
- Topics ("Device Shadow MQTT topics", https://docs.aws.amazon.com/iot/latest/developerguide/
  device-shadow-mqtt.html): the prefix ``$aws/things/<thing>/shadow`` (classic) or
  ``$aws/things/<thing>/shadow/name/<shadow>`` (named); ``/update/documents`` carries the
  document after every successful update, ``/delete/accepted`` is published when a shadow is
  deleted. An IoT rule may select from these reserved topics, as from ``$aws/events``.
- The ``/documents`` message: ``previous`` and ``current`` (each ``state``, ``metadata``,
  ``version``), ``timestamp`` in epoch *seconds*, optional ``clientToken``; ``/delete/accepted``:
  ``version``, ``timestamp``, optional ``clientToken`` ("Device Shadow service documents",
  https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-document.html; the AWS IoT
  Device SDK v2's ShadowUpdatedEvent and DeleteShadowResponse models have the same fields).
- Versions: "Deleting a shadow does not reset its version number to 0" (device-shadow-mqtt.html,
  /delete), but a shadow re-created more than 48 hours after its deletion starts again at 0
  ("Interacting with shadows", device-shadow-data-flow.html). So changes are ordered by their
  timestamp (to the second); the version orders two changes of the same second from the same
  region (``pipeline.state``).
- Update semantics ("Device Shadow service documents"): an update changes only the fields it
  names, recursively into objects; ``null`` removes a field; an array is one value, replaced
  whole; a section that becomes empty is removed. So the replicator's UpdateThingShadow is a
  full replace of both sections: the source's values, and ``null`` for every key the
  destination has and the source lacks (``patch``); applying it twice, or an older item after
  a newer one, converges to the item the replicator read.
- Names (AWS IoT API Reference, GetThingShadow, ListNamedShadowsForThing): a thing name is
  ``[a-zA-Z0-9:_-]+`` (1-128), a shadow name ``[$a-zA-Z0-9:_-]+`` (1-64). ``CLASSIC``, the name
  token of the unnamed shadow, holds ``~``, which no shadow name can: it never collides.
- Size: "The device's shadow supports 8 KB of data only"; only the desired and reported state
  counts, not the metadata ("Diagnosing problems with shadows", https://docs.aws.amazon.com/iot/
  latest/developerguide/diagnosing-shadows.html). [assumption] counted as the UTF-8 bytes of
  the two sections' JSON.
- Listing: ListNamedShadowsForThing pages the named shadows' names of one thing (``pageSize``
  1-100); the classic shadow is read with GetThingShadow without a name. These are per-thing
  calls: the snapshot makes 1 + (named shadows) + 1 of them per thing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline import rules
from pipeline.errors import EventValidationError, NotFoundError
from pipeline.iot import Iot
from pipeline.kinds.base import (
    Call,
    Column,
    EntitySpec,
    EventParser,
    Kind,
    Listing,
    Reader,
    canonical_json,
    text,
)
from pipeline.kinds.parse import SECONDS_BELOW
from pipeline.model import KEY_SEPARATOR, Change, EntityKind, Origin

CLASSIC = "~classic"  # the unnamed shadow's name token: "~" is in no shadow name
_SHADOW_NAME = re.compile(r"[$a-zA-Z0-9:_-]{1,64}", re.ASCII)
SHADOW_NAME_RULE = "1-64 characters of [$a-zA-Z0-9:_-]"
STATE_MAX_BYTES = 8 * 1024  # desired + reported ("Diagnosing problems with shadows")
SECTIONS = ("desired", "reported")
EMPTY = "{}"  # a section the shadow does not have

# The topic filters the source's IoT rules select (infra/source.yaml; tests/infra checks them).
UPDATE_DOCUMENTS = "update/documents"
DELETE_ACCEPTED = "delete/accepted"
_TOPIC = re.compile(
    r"\$aws/things/(?P<thing>[^/]+)/shadow(?:/name/(?P<shadow>[^/]+))?/"
    r"(?P<stub>update/documents|delete/accepted)"
)


# --- names ---------------------------------------------------------------------------------------


def shadow_key_name(thing: str, shadow: str | None) -> str:
    """The entity name of a thing's shadow (``shadow`` None: the classic one)."""
    return f"{thing}{KEY_SEPARATOR}{CLASSIC if shadow is None else shadow}"


def split_shadow_name(name: str) -> tuple[str, str | None]:
    """``(thing, shadow)``; ``shadow`` is None for the classic shadow."""
    thing, _, shadow = name.partition(KEY_SEPARATOR)
    return thing, None if shadow == CLASSIC else shadow


def shadow_name(field_name: str, value: object) -> str:
    if not isinstance(value, str) or _SHADOW_NAME.fullmatch(value) is None:
        raise EventValidationError(field_name, f"shadow name must be {SHADOW_NAME_RULE}")
    return value


def check_shadow_key_name(field_name: str, value: object) -> str:
    if not isinstance(value, str) or KEY_SEPARATOR not in value:
        raise EventValidationError(field_name, "a shadow is '<thing>#<shadow name or ~classic>'")
    thing, _, shadow = value.partition(KEY_SEPARATOR)
    rules.validate_name(field_name, thing)
    if shadow != CLASSIC:
        shadow_name(field_name, shadow)
    return value


def topic_of(thing: str, shadow: str | None, stub: str) -> str:
    """The reserved topic a shadow's ``stub`` message is published on."""
    prefix = f"$aws/things/{thing}/shadow" + ("" if shadow is None else f"/name/{shadow}")
    return f"{prefix}/{stub}"


TOPIC_FILTERS = {
    "classic": (
        topic_of("+", None, UPDATE_DOCUMENTS),
        topic_of("+", None, DELETE_ACCEPTED),
    ),
    "named": (
        topic_of("+", "+", UPDATE_DOCUMENTS),
        topic_of("+", "+", DELETE_ACCEPTED),
    ),
}


# --- documents -----------------------------------------------------------------------------------


def _no_nulls(field_name: str, value: Any) -> None:
    """A stored shadow holds no null: null removes a field, and arrays cannot hold one."""
    if value is None:
        raise EventValidationError(field_name, "a shadow's state holds no null")
    if isinstance(value, dict):
        for key, inner in value.items():
            _no_nulls(f"{field_name}.{key}", inner)
    elif isinstance(value, list):
        for inner in value:
            _no_nulls(field_name, inner)


def section_text(field_name: str, value: Any) -> str:
    """A section (``desired`` or ``reported``) as canonical JSON text; absent reads as ``{}``."""
    if value is None:
        return EMPTY
    if not isinstance(value, dict):
        raise EventValidationError(field_name, "must be a JSON object")
    _no_nulls(field_name, value)
    return canonical_json(value)


def state_bytes(state: Mapping[str, Any]) -> int:
    """What counts towards the 8 KB limit: the desired and reported sections' JSON, in bytes."""
    sections = {key: json.loads(state.get(key) or EMPTY) for key in SECTIONS}
    live = {key: value for key, value in sections.items() if value}
    return len(canonical_json(live).encode()) if live else 0


def state_of(document: Mapping[str, Any]) -> dict[str, str]:
    """A shadow document (GetThingShadow's payload, or a ``/documents`` message's ``current``)
    as the shadow's state: its two sections' canonical JSON."""
    state = document.get("state") or {}
    if not isinstance(state, dict):
        raise EventValidationError("state", "must be a JSON object")
    return {key: section_text(f"state.{key}", state.get(key)) for key in SECTIONS}


def patch(actual: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The update that turns section ``actual`` into ``desired`` under AWS's merge: the values
    that differ (objects recursively, anything else whole) and ``None`` (JSON null: removes
    the field) for every key ``actual`` has and ``desired`` lacks. Values compare as canonical
    JSON, so ``true`` and ``1`` differ as they do in JSON."""
    changes: dict[str, Any] = {}
    for key, value in desired.items():
        old = actual.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            inner = patch(old, value)
            if inner:
                changes[key] = inner
        elif key not in actual or canonical_json(old) != canonical_json(value):
            changes[key] = value
    for key in actual:
        if key not in desired:
            changes[key] = None
    return changes


def shadow_calls(
    name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
) -> list[Call]:
    """The calls that bring shadow ``name`` from ``actual`` (``read``; ``None``: absent) to
    ``desired`` (``None``: deleted): one UpdateThingShadow replacing the sections ``desired``
    holds (a section it lacks is not replicated: ``pipeline.kinds.shadow_selection``), or one
    DeleteThingShadow."""
    thing, shadow = split_shadow_name(name)
    target: dict[str, Any] = {"thingName": thing}
    if shadow is not None:
        target["shadowName"] = shadow
    if desired is None:
        return [] if actual is None else [Call("DeleteThingShadow", target)]
    state: dict[str, Any] = {}
    for key in SECTIONS:
        if key not in desired:
            continue  # the destination's own (SHADOW_SECTIONS)
        want = json.loads(desired.get(key) or EMPTY)
        have = json.loads((actual or {}).get(key) or EMPTY)
        changes = patch(have, want)
        if changes:
            state[key] = changes
    if actual is not None and not state:
        return []
    if not state:
        # A shadow with both sections empty exists all the same (an update that nulls every
        # field leaves it, with its version). [assumption] AWS creates one from this update.
        state = {"desired": None}
    payload = canonical_json({"state": state}).encode()
    return [Call("UpdateThingShadow", {**target, "payload": payload})]


# --- messages (the source's IoT rules on the shadow topics) -------------------------------------


class _Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


_M = TypeVar("_M", bound=_Message)


class _Snapshot(_Message):
    state: dict[str, Any] | None = None
    version: int = Field(ge=0)


class _Documents(_Message):
    current: _Snapshot
    timestamp: int = Field(ge=0)


class _Deleted(_Message):
    version: int = Field(ge=0)
    timestamp: int = Field(ge=0)


def _validate(model: type[_M], payload: Mapping[str, Any]) -> _M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "payload"
        raise EventValidationError(field, error["msg"]) from exc


def stamped_ms(timestamp: int) -> int:
    """A message's timestamp in epoch ms. It is to the second: it stands for its whole second,
    so its last millisecond, and a change later in that second is never older than it (a
    corrective event stamped with a snapshot's millisecond within it, say)."""
    return timestamp if timestamp >= SECONDS_BELOW else timestamp * 1000 + 999


def parse_message(payload: Mapping[str, Any], region: str) -> Change:
    """A ``/update/documents`` or ``/delete/accepted`` message, with the ``topic`` the IoT rule
    adds (``SELECT *, topic() AS topic``), as a change of the shadow's desired state."""
    topic = payload.get("topic")
    match = _TOPIC.fullmatch(topic) if isinstance(topic, str) else None
    if match is None:
        raise EventValidationError(
            "topic", "must be a shadow's update/documents or delete/accepted"
        )
    thing = rules.validate_name("topic", match["thing"])
    shadow = None if match["shadow"] is None else shadow_name("topic", match["shadow"])
    name = shadow_key_name(thing, shadow)
    deleted = match["stub"] == DELETE_ACCEPTED
    fields: dict[str, str] = {}
    if deleted:
        gone = _validate(_Deleted, payload)
        version, timestamp = gone.version, gone.timestamp
    else:
        documents = _validate(_Documents, payload)
        version, timestamp = documents.current.version, documents.timestamp
        fields = state_of({"state": documents.current.state})
    # A message has no id: its region, topic, version and second name it (a redelivery is a
    # duplicate). The region too: each region counts its own versions, so a replicated write's
    # message in the other region can carry the same topic, version and second (two-way echo).
    event_id = f"{region}:{topic}@{version}@{timestamp}"
    # No registry id: ordered by timestamp, the version only within one second.
    origin = Origin(region, stamped_ms(timestamp), event_id, None, version)
    return Change(EntityKind.SHADOW, name, origin, fields=fields, deleted=deleted)


# --- the kind ------------------------------------------------------------------------------------


def _document(response: Mapping[str, Any]) -> dict[str, Any]:
    """GetThingShadow's answer: the document, a JSON blob (``payload``)."""
    body = response["payload"]
    raw = body.read() if hasattr(body, "read") else body
    document: dict[str, Any] = json.loads(raw or b"{}")
    return document


class Shadow(Kind):
    spec = EntitySpec(
        EntityKind.SHADOW,
        frame="shadows",
        # After its thing (created first, deleted after it).
        rank=11,
        # A lost desired state is a lost command to the device after failover: high. The
        # reported state is the device's to rewrite when it reconnects: medium.
        fields={"desired": "high", "reported": "medium"},
        noun=("shadow", "shadows"),
    )
    # The sections are canonical JSON text in the state (``check_field``): shown as JSON.
    columns = (
        text("name"),
        Column("desired", json_text=True),
        Column("reported", json_text=True),
    )
    # Per listed thing: its named shadows' names, then each shadow (the classic one too).
    # Opt-in (``iot-crr --shadows``, the job's LIST_SHADOWS): 1 + 1 + (named shadows) calls
    # per thing dominate a large fleet's nightly run (docs/shadows.md).
    listing = Listing(
        "ListNamedShadowsForThing",
        describe=("GetThingShadow",),
        parent=EntityKind.THING,
        workers=4,
        opt_in=True,
        swept=True,  # a run may list one slice of the things (``reconcile.sweep``)
    )
    # [assumption] AWS General Reference, "AWS IoT Core endpoints and quotas", Device Shadow
    # service: its per-account TPS for these calls were not read (no stored copy of the table);
    # ListNamedShadowsForThing paced as IoT's list calls (10), GetThingShadow at 400.
    quotas = {"ListNamedShadowsForThing": 10, "GetThingShadow": 400}
    topics: Mapping[str, EventParser] = {
        topic_filter: parse_message for family in TOPIC_FILTERS.values() for topic_filter in family
    }

    def check_name(self, field_name: str, name: object) -> str:
        return check_shadow_key_name(field_name, name)

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        field_name = f"state.{key}"
        if not isinstance(value, str):
            raise EventValidationError(field_name, "must be a JSON object's text")
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise EventValidationError(field_name, "must be a JSON object's text") from exc
        checked = section_text(field_name, parsed)
        sections = {k: v for k, v in state.items() if k in SECTIONS and isinstance(v, str)}
        try:
            size = state_bytes({**sections, key: checked})
        except ValueError:
            size = 0  # the other section is no JSON: its own check names it
        if size > STATE_MAX_BYTES:
            raise EventValidationError(
                "state", f"desired and reported exceed {STATE_MAX_BYTES} bytes, AWS's limit"
            )
        return checked

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        thing, shadow = split_shadow_name(name)
        params = {"thingName": thing} | ({} if shadow is None else {"shadowName": shadow})
        response = iot.maybe("GetThingShadow", **params)
        return None if response is None else state_of(_document(response))

    def links(self, reader: Reader, parent: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """The thing's classic shadow, if it has one, then its named shadows."""
        thing = str(parent["name"])
        try:
            named = list(reader.items("ListNamedShadowsForThing", thingName=thing))
        except NotFoundError:
            named = []
        for shadow in [None, *named]:
            params = {"thingName": thing} | ({} if shadow is None else {"shadowName": shadow})
            try:
                response = reader.call("GetThingShadow", **params)
            except NotFoundError:
                continue  # no classic shadow, or deleted since it was listed
            state = state_of(_document(response))
            yield {"name": shadow_key_name(thing, shadow), "thing": thing, **state}

    def depends_on(self, name: str, state: Mapping[str, Any]) -> tuple[tuple[EntityKind, str], ...]:
        return ((EntityKind.THING, split_shadow_name(name)[0]),)

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        return shadow_calls(name, desired, actual)


KIND = Shadow()
KINDS = (KIND,)
