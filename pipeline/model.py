"""The shared vocabulary: registry entities, their desired state, and changes to it.

Everything downstream speaks these types: the event parsers turn registry events into
``Change`` values, reconciliation turns drift into corrective ``Change`` values, the state table
stores one ``Item`` per entity, and the replicator converges the destination registry to an item.
What each kind *is* (its fields, its AWS calls, its snapshot table) lives in ``pipeline.kinds``.

Entities are identified by name only: IDs and versions are generated per region (a replica gets
its own), so they are kept as *ordering* metadata of the origin region, never compared across
regions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

KEY_SEPARATOR = "#"  # never valid in an IoT name ([a-zA-Z0-9:_-]+), so keys are unambiguous


class EntityKind(StrEnum):
    THING = "thing"
    THING_TYPE = "thing_type"
    THING_GROUP = "thing_group"
    BILLING_GROUP = "billing_group"
    MEMBERSHIP = "membership"
    # The registry's security side (streamed from CloudTrail, pipeline.cloudtrail): a
    # certificate is named by its id, a policy by its name, the links as pipeline.kinds.links
    # spells them.
    CERTIFICATE = "certificate"
    POLICY = "policy"
    THING_PRINCIPAL = "thing_principal"
    POLICY_TARGET = "policy_target"
    # The onboarding kinds (streamed from CloudTrail too): how devices reach AWS. A provisioning
    # template by its name, a CA certificate by its id (the SHA-256 of its DER, as a certificate's).
    ROLE_ALIAS = "role_alias"
    AUTHORIZER = "authorizer"
    PROVISIONING_TEMPLATE = "provisioning_template"
    CA_CERTIFICATE = "ca_certificate"
    # Device state (AWS IoT Device Shadow service, through iot-data): a thing's classic or
    # named shadow, named ``<thing>#<shadow>`` (pipeline.kinds.shadow).
    SHADOW = "shadow"
    # The message broker's retained messages (iot-data), named by their topic
    # (pipeline.kinds.retained_message); reconciled only, never streamed.
    RETAINED_MESSAGE = "retained_message"


# Each kind's state-table key prefix (``<prefix>#<name>``). Stored keys: never renamed. A new
# kind adds its member above and its prefix here (its module in ``pipeline.kinds`` does the rest).
KEY_PREFIX: dict[EntityKind, str] = {
    EntityKind.THING: "THING",
    EntityKind.THING_TYPE: "TYPE",
    EntityKind.THING_GROUP: "GROUP",
    EntityKind.BILLING_GROUP: "BILLING",
    EntityKind.MEMBERSHIP: "MEMBER",
    EntityKind.CERTIFICATE: "CERT",
    EntityKind.POLICY: "POLICY",
    EntityKind.THING_PRINCIPAL: "PRINCIPAL",
    EntityKind.POLICY_TARGET: "POLICYTARGET",
    EntityKind.ROLE_ALIAS: "ROLEALIAS",
    EntityKind.AUTHORIZER: "AUTHORIZER",
    EntityKind.PROVISIONING_TEMPLATE: "PROVTEMPLATE",
    EntityKind.CA_CERTIFICATE: "CACERT",
    EntityKind.SHADOW: "SHADOW",
    EntityKind.RETAINED_MESSAGE: "RETAINED",
}
_KIND_BY_PREFIX = {prefix: kind for kind, prefix in KEY_PREFIX.items()}


def entity_key(kind: EntityKind, name: str) -> str:
    """The state table's partition key, e.g. ``THING#sensor-1`` or ``MEMBER#sensor-1#floor-2``."""
    return f"{KEY_PREFIX[kind]}{KEY_SEPARATOR}{name}"


def parse_key(key: str) -> tuple[EntityKind, str] | None:
    """The entity kind and name behind a key; ``None`` for keys that are not entities."""
    prefix, sep, name = key.partition(KEY_SEPARATOR)
    kind = _KIND_BY_PREFIX.get(prefix)
    if kind is None or not sep or not name:
        return None
    return kind, name


@dataclass(frozen=True)
class Origin:
    """Where and when a change happened, used only to order changes to the same entity.

    ``entity_id`` and ``version`` come from the origin region's registry (``thingId`` and
    ``versionNumber``); ``timestamp_ms`` is the event's ordering time in epoch milliseconds: its
    own timestamp, or, where that was ahead of the admitting clock by more than the tolerance,
    that clock plus the tolerance (``pipeline.state.capped``), the stamp then kept in
    ``stamped_ms``.
    """

    region: str
    timestamp_ms: int
    event_id: str
    entity_id: str | None = None
    version: int | None = None
    stamped_ms: int | None = None  # the event's own timestamp, only where it was capped


@dataclass(frozen=True)
class Lookup:
    """A read in the origin region that a change needs before it can be stored (persist asks
    the change's kind, ``pipeline.kinds``, to make it); ``version`` names a policy version
    (``None``: the one in effect)."""

    version: str | None = None


@dataclass(frozen=True)
class Change:
    """One desired-state change for one entity, from a registry event or from reconciliation.

    ``fields`` holds only the fields this change knows (a subset of the kind's state fields,
    ``pipeline.kinds``);
    ``deleted`` marks a delete (a tombstone is kept). A ``corrective`` change carries the full
    desired state and a fresh ``sync`` token, so it is written even when the table agrees.
    ``partial`` marks events that describe one facet of an entity (a type association, a
    hierarchy link): they never outrank a versioned full-state change.
    """

    kind: EntityKind
    name: str
    origin: Origin
    fields: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
    corrective: bool = False
    partial: bool = False
    sync: str | None = None
    # What the event leaves out and persist must read in the origin region before writing
    # (the kind's ``resolve``): a dynamic group's query, a certificate's PEM, a policy version's
    # document.
    lookup: Lookup | None = None
    # The stored values this change assumes: written only when the stored state has them. A type
    # association DELETED names the type *no longer* associated (AWS IoT guide, "Registry
    # events": https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html), so
    # it clears the type only while the stored type is the one it names.
    expected: dict[str, Any] = field(default_factory=dict)
    # A THING_GROUP_EVENT's ``rootToParentThingGroups``: the group's ancestors, root first. Not
    # desired state: it lets persist record parents the table has not seen yet.
    ancestors: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return entity_key(self.kind, self.name)


class RegionalRecord:
    """The key grammar of a bookkeeping record a region keeps in its replica of the state
    table: ``<PREFIX><region>#<name>``; ``prefix(region)`` lists that region's records."""

    PREFIX: ClassVar[str]

    @classmethod
    def prefix(cls, region: str) -> str:
        return f"{cls.PREFIX}{region}#"

    @classmethod
    def key_for(cls, region: str, name: str) -> str:
        return f"{cls.prefix(region)}{name}"


@dataclass(frozen=True)
class MalformedRecord:
    """A bookkeeping record its class could not read: its key, and why."""

    key: str
    reason: str


@dataclass(frozen=True)
class Item:
    """One state-table item: the desired state of one entity plus its ordering metadata."""

    kind: EntityKind
    name: str
    state: dict[str, Any]
    deleted: bool
    origin_region: str
    event_ts: int
    last_event_id: str
    origin_id: str | None = None
    origin_version: int | None = None
    sync: str | None = None
    rev: int = 0

    @property
    def key(self) -> str:
        return entity_key(self.kind, self.name)

    def field(self, name: str, default: Any = None) -> Any:
        return self.state.get(name, default)
