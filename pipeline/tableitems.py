"""The state table's entity items as DynamoDB records, and back: the item layout, strictly typed.

An entity item (partition key ``pk``, ``pipeline.model.entity_key``) holds ``kind``, ``name``,
``state`` (map), ``deleted``, ``origin_region``, ``origin_id``, ``origin_version``,
``event_ts``, ``last_event_id``, ``sync`` and ``rev``. ``pipeline.statetable`` reads and writes
the table through these; a stream record's image (``pipeline.replicate``) is read here too.
Pure: no AWS calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from pipeline.errors import EventValidationError
from pipeline.model import Item, parse_key

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_dynamodb(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZER.serialize(v) for k, v in value.items()}


def from_dynamodb(image: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(_DESERIALIZER.deserialize(v)) for k, v in image.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; ours are all integers."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


def item_to_record(item: Item) -> dict[str, Any]:
    record: dict[str, Any] = {
        "pk": item.key,
        "kind": item.kind.value,
        "name": item.name,
        "state": item.state,
        "deleted": item.deleted,
        "origin_region": item.origin_region,
        "event_ts": item.event_ts,
        "last_event_id": item.last_event_id,
        "rev": item.rev,
    }
    for name in ("origin_id", "origin_version", "sync"):
        value = getattr(item, name)
        if value is not None:
            record[name] = value
    return record


# Each attribute of an entity item and the one Python type it must hold (absent or NULL: the
# default). Strict: a stored ``deleted: "false"`` (a string) is truthy, and read loosely it
# deleted the entity in the destination (issue 28); a mistyped item is refused, naming the
# attribute, as a permanent error (the replicator sends it to the failure queue with the reason).
_ITEM_TYPES: dict[str, tuple[type, str]] = {
    "state": (dict, "a map"),
    "deleted": (bool, "a boolean"),
    "origin_region": (str, "a string"),
    "event_ts": (int, "a number"),
    "last_event_id": (str, "a string"),
    "origin_id": (str, "a string"),
    "origin_version": (int, "a number"),
    "sync": (str, "a string"),
    "rev": (int, "a number"),
}


def _typed(record: Mapping[str, Any], name: str) -> Any:
    value = record.get(name)
    expected, noun = _ITEM_TYPES[name]
    # bool is an int in Python; a number attribute holding a boolean is mistyped too.
    if value is not None and (
        not isinstance(value, expected) or (expected is int and isinstance(value, bool))
    ):
        raise EventValidationError(name, f"must be {noun}, got {type(value).__name__}")
    return value


def item_from_record(record: Mapping[str, Any]) -> Item | None:
    """An entity item from a plain record; ``None`` when the key is not an entity's. Each
    attribute must have its type (``_ITEM_TYPES``), else ``EventValidationError``."""
    parsed = parse_key(str(record.get("pk", "")))
    if parsed is None:
        return None
    kind, name = parsed
    typed = {field_name: _typed(record, field_name) for field_name in _ITEM_TYPES}
    return Item(
        kind=kind,
        name=name,
        state=dict(typed["state"] or {}),
        deleted=typed["deleted"] or False,
        origin_region=typed["origin_region"] or "",
        event_ts=typed["event_ts"] or 0,
        last_event_id=typed["last_event_id"] or "",
        origin_id=typed["origin_id"],
        origin_version=typed["origin_version"],
        sync=typed["sync"],
        rev=typed["rev"] or 0,
    )


def item_from_image(image: Mapping[str, Any]) -> Item | None:
    """An entity item from a DynamoDB-JSON image (stream record, GetItem)."""
    return item_from_record(from_dynamodb(image))
