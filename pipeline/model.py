"""The shared vocabulary: registry entities, their desired state, and changes to it.

Everything downstream speaks these types: the event parser turns registry events into
``Change`` values, reconciliation turns drift into corrective ``Change`` values, the state table
stores one ``Item`` per entity, and the replicator converges the destination registry to an item.

Entities are identified by name only: IDs and versions are generated per region (a replica gets
its own), so they are kept as *ordering* metadata of the origin region, never compared across
regions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

KEY_SEPARATOR = "#"  # never valid in an IoT name ([a-zA-Z0-9:_-]+), so keys are unambiguous


class EntityKind(StrEnum):
    THING = "thing"
    THING_TYPE = "thing_type"
    THING_GROUP = "thing_group"
    BILLING_GROUP = "billing_group"
    MEMBERSHIP = "membership"
    # The registry's security side (pipeline.cloudtrail, pipeline.security): a certificate is
    # named by its id, a policy by its name, the links by ``<thing>#<certificate id>`` and
    # ``<policy>#cert/<certificate id>`` or ``<policy>#thinggroup/<group>``.
    CERTIFICATE = "certificate"
    POLICY = "policy"
    THING_PRINCIPAL = "thing_principal"
    POLICY_TARGET = "policy_target"


# How much a drift in a field matters for a DR region (reconcile.drift.changed_severity).
Severity = Literal["high", "medium", "low"]


@dataclass(frozen=True)
class EntitySpec:
    """Everything the code knows about one entity kind, in one place: the rest derives from
    ``ENTITIES`` (docs/design.md, "Adding an entity kind").

    ``fields`` are the desired-state fields (``Item.state``; compared field by field by the
    diff, in this order), each with the severity of a difference in it: a wrong type, parent
    or dynamic query changes what the fleet *is*; attribute and flag differences change
    behaviour at the edges; a description is cosmetic. (A missing entity breaks failover: it is
    high whatever its kind; an extra one medium.) ``rank`` is the dependency rank:
    whatever an entity depends on has a lower rank (a thing needs its type and billing group,
    a membership its thing and group), so creation runs by ascending rank and deletion by
    descending rank; reports list kinds in the same order.
    """

    kind: EntityKind
    key_prefix: str  # the state table's key: ``<key_prefix>#<name>``
    frame: str  # the snapshot's table of this kind (reconcile.snapshot.SCHEMAS)
    rank: int
    fields: Mapping[str, Severity]
    noun: tuple[str, str]  # how a sentence names it (singular, plural)
    alias: str | None = None  # a short name ignore patterns accept (reconcile.ignore)
    frame_key: tuple[str, ...] = ("name",)  # the columns identifying a row of ``frame``

    @property
    def state_fields(self) -> tuple[str, ...]:
        return tuple(self.fields)


# The entity table. Every per-kind fact lives here; adding a kind adds one row (plus its adapter
# calls: events, converge, snapshot; see docs/design.md).
ENTITIES: dict[EntityKind, EntitySpec] = {
    spec.kind: spec
    for spec in (
        EntitySpec(
            EntityKind.THING_TYPE,
            key_prefix="TYPE",
            frame="thing_types",
            rank=0,
            fields={
                "description": "low",
                "searchable_attributes": "medium",
                "deprecated": "medium",
                "propagating_attributes": "medium",
            },
            noun=("thing type", "thing types"),
            alias="type",
        ),
        EntitySpec(
            EntityKind.THING_GROUP,
            key_prefix="GROUP",
            frame="thing_groups",
            rank=1,
            fields={
                "parent": "high",
                "description": "low",
                "attributes": "medium",
                "query": "high",
            },
            noun=("group", "groups"),
            alias="group",
        ),
        EntitySpec(
            EntityKind.BILLING_GROUP,
            key_prefix="BILLING",
            frame="billing_groups",
            rank=2,
            fields={"description": "low"},
            noun=("billing group", "billing groups"),
            alias="billing",
        ),
        EntitySpec(
            EntityKind.THING,
            key_prefix="THING",
            frame="things",
            rank=3,
            fields={"thing_type": "high", "attributes": "medium", "billing_group": "medium"},
            noun=("thing", "things"),
        ),
        EntitySpec(
            EntityKind.MEMBERSHIP,
            key_prefix="MEMBER",
            frame="memberships",
            rank=4,
            fields={},  # a link: it exists or not (named ``thing#group``, ``membership_name``)
            noun=("membership", "memberships"),
            alias="member",
            frame_key=("thing", "group"),
        ),
        # The security side (pipeline.cloudtrail streams it, pipeline.security converges it).
        EntitySpec(
            EntityKind.CERTIFICATE,
            key_prefix="CERT",
            frame="certificates",
            rank=5,
            # ``pem`` (canonical, pipeline.security.canonical_pem) is what registers the copy;
            # the id is its hash, so two regions' PEMs of one id never differ. A status that
            # differs is a device that can (or cannot) connect: high.
            fields={"status": "high", "pem": "low"},
            noun=("certificate", "certificates"),
            alias="cert",
        ),
        EntitySpec(
            EntityKind.POLICY,
            key_prefix="POLICY",
            frame="policies",
            rank=6,
            # The default version's document as the origin region has it (canonical JSON);
            # the destination's copy has its ARNs rewritten (pipeline.policyrewrite).
            fields={"document": "high"},
            noun=("policy", "policies"),
        ),
        EntitySpec(
            EntityKind.THING_PRINCIPAL,
            key_prefix="PRINCIPAL",
            frame="thing_principals",
            rank=7,  # after its thing and its certificate; named ``<thing>#<certificate id>``
            fields={"exclusive": "medium"},
            noun=("thing principal", "thing principals"),
            alias="principal",
        ),
        EntitySpec(
            EntityKind.POLICY_TARGET,
            key_prefix="POLICYTARGET",
            frame="policy_targets",
            rank=8,  # after its policy and its target; ``<policy>#cert/<id>`` or ``#thinggroup/<g>``
            fields={},
            noun=("policy attachment", "policy attachments"),
            alias="policytarget",
        ),
    )
}

# Dependency order (ascending ``rank``): the order a repair creates in, and reports read in.
ENTITY_ORDER: tuple[EntityKind, ...] = tuple(
    spec.kind for spec in sorted(ENTITIES.values(), key=lambda spec: spec.rank)
)
KEY_PREFIX: dict[EntityKind, str] = {kind: ENTITIES[kind].key_prefix for kind in EntityKind}
_KIND_BY_PREFIX = {prefix: kind for kind, prefix in KEY_PREFIX.items()}
# The fields each entity's desired state may hold (the ``Item.state`` map). A change may set a
# subset of them (a THING_EVENT carries no billing group); the rest keep their stored value.
STATE_FIELDS: dict[EntityKind, tuple[str, ...]] = {
    kind: ENTITIES[kind].state_fields for kind in EntityKind
}


def membership_name(thing: str, group: str) -> str:
    return f"{thing}{KEY_SEPARATOR}{group}"


def split_membership_name(name: str) -> tuple[str, str]:
    thing, _, group = name.partition(KEY_SEPARATOR)
    return thing, group


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
class DynamicQuery:
    """A dynamic thing group's definition; its members are computed by each region's index."""

    query_string: str
    index_name: str = "AWS_Things"
    query_version: str = "2017-09-30"

    def to_dict(self) -> dict[str, str]:
        return {
            "query_string": self.query_string,
            "index_name": self.index_name,
            "query_version": self.query_version,
        }


@dataclass(frozen=True)
class Origin:
    """Where and when a change happened, used only to order changes to the same entity.

    ``entity_id`` and ``version`` come from the origin region's registry (``thingId`` and
    ``versionNumber``); ``timestamp_ms`` is the event's own timestamp in epoch milliseconds.
    """

    region: str
    timestamp_ms: int
    event_id: str
    entity_id: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class Change:
    """One desired-state change for one entity, from a registry event or from reconciliation.

    ``fields`` holds only the fields this change knows (a subset of ``STATE_FIELDS[kind]``);
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
    # A THING_GROUP_EVENT does not say reliably whether the group is dynamic (only the
    # undocumented ``dynamicGroupMappingId`` hints at it) nor carry the query: persist looks the
    # group up in the origin region (DescribeThingGroup) before writing.
    lookup_query: bool = False
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
