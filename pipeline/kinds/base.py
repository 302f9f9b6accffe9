"""What a kind module provides, and the small vocabulary the kinds share.

An entity kind is one module of ``pipeline.kinds`` holding one ``Kind`` (``links`` holds two):
its ``EntitySpec`` row, its snapshot columns, how AWS's shapes read as its state, how it is
listed, what it depends on, and the pure decision ``calls(name, desired, actual)``. The stages
are engines over these: the replicator's executor (``pipeline.converge``), the persist step's
lookups (``pipeline.persist``), the event parsers' dispatch (``pipeline.events``,
``pipeline.cloudtrail``), the snapshot's listing runner and tables (``reconcile.inventory``,
``reconcile.snapshot``). docs/design.md, "Adding an entity kind".

A kind imports no stage: what a converge hook needs from the replicator comes in as a
``Converging`` (the executor), typed here. Who calls AWS is in the parameter's name: ``iot``,
the replicator's region (``read``, hooks); ``reader``, the snapshot's (``record``, ``links``)
and a repair's (``details``); ``origin``, persist's lookups (``resolve``).
tests/infra/test_infra_iam.py grants each role the operations named that way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pipeline import rules
from pipeline.errors import EventValidationError, PermanentError, RetryableError
from pipeline.iot import Call
from pipeline.kinds.listing import Join, Listing, Partition, Reader
from pipeline.kinds.parse import CallParser
from pipeline.model import KEY_PREFIX, Change, EntityKind, Item
from pipeline.policyrewrite import ArnMapping

if TYPE_CHECKING:
    from pipeline.iot import Iot
    from pipeline.statetable import StateTable

# A kind's decisions are lists of Calls, which pipeline.iot.Iot applies; how it is listed is
# pipeline.kinds.listing's vocabulary, named here too for the kinds' modules.
__all__ = ["Call", "Join", "Listing", "Partition", "Reader"]

# How much a drift in a field matters for a DR region (reconcile.drift.changed_severity).
Severity = Literal["high", "medium", "low"]


@dataclass(frozen=True)
class EntitySpec:
    """The facts every stage reads about a kind.

    ``fields`` are the desired-state fields (``Item.state``; compared field by field by the
    diff, in this order), each with the severity of a difference in it: a wrong type, parent
    or dynamic query changes what the fleet *is*; attribute and flag differences change
    behaviour at the edges; a description is cosmetic. (A missing entity breaks failover: it is
    high whatever its kind; an extra one medium.) ``rank`` is the dependency rank: whatever an
    entity depends on has a lower rank (a thing needs its type and billing group, a membership
    its thing and group): creation and reports by ascending rank, deletion by descending.
    """

    kind: EntityKind
    frame: str  # the snapshot's table of this kind
    rank: int
    fields: Mapping[str, Severity]
    noun: tuple[str, str]  # how a sentence names it (singular, plural)
    alias: str | None = None  # a short name ignore patterns accept (reconcile.ignore)
    frame_key: tuple[str, ...] = ("name",)  # the columns identifying a row of ``frame``
    # Fields the replicator needs that the diff does not compare (the copy may rightly differ: a
    # certificate's CA, named where registered first); each has a severity, travels in events.
    carried: frozenset[str] = frozenset()
    # Fields the snapshot's listing does not read, because only a call per entity returns them
    # and a large fleet cannot afford one (a certificate's PEM): absent from a registry's
    # snapshot, so never compared, and read per entity (``Kind.details``) only for the rows a
    # repair carries (``reconcile.engine.Reconciler.plan``).
    detailed: frozenset[str] = frozenset()

    @property
    def compared_fields(self) -> tuple[str, ...]:
        uncompared = self.carried | self.detailed
        return tuple(name for name in self.fields if name not in uncompared)

    @property
    def key_prefix(self) -> str:
        """The state table's key prefix (``pipeline.model.KEY_PREFIX``: stored keys)."""
        return KEY_PREFIX[self.kind]

    @property
    def state_fields(self) -> tuple[str, ...]:
        return tuple(self.fields)


# --- convergence -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """What converging one item did: ``action`` is a short verb for logs and metrics."""

    action: str
    detail: str = ""


class DependencyNotReadyError(RetryableError):
    """A dependency (type, parent, thing) has not reached the local table replica yet, or is
    still missing in the destination after converging it."""


class ConvergeError(PermanentError):
    """The desired state cannot be reached in the destination as it stands (AWS refuses it)."""


class Converging(Protocol):
    """The replicator's executor as a kind's converge hook sees it (``pipeline.converge``)."""

    region: str
    iot: Iot
    table: StateTable
    clock: Callable[[], float]
    type_delete_delay_seconds: int
    policy_account_map: Mapping[str, str]

    def arn_mapping(self, item: Item) -> ArnMapping:
        """The item's origin region (and the configured accounts) to the destination's."""

    def expect(self, kind: EntityKind, name: str, *states: dict[str, Any] | None) -> None:
        """Record in the echo ledger, before the calls, what they make the entity look like."""

    def converge(self, item: Item) -> Result:
        """Converge another item (its expectation recorded first)."""

    def converge_key(self, kind: EntityKind, name: str) -> Result:
        """Converge a dependency from the local table; it must be there and live."""

    def ensure(self, kind: EntityKind, name: str) -> None:
        """Create a dependency from the local table if the destination lacks it."""

    def run(self, kind: Kind, item: Item) -> Result:
        """The generic path: read, decide, apply with dependencies."""

    def with_dependencies(self, kind: Kind, item: Item, action: Callable[[], None]) -> None:
        """Run ``action``; if AWS says a resource is missing, create the item's dependencies
        (``Kind.depends_on``) from the local table and run it once more."""

    def count(self, metric: str, value: int) -> None:
        """Add to a count the replicator emits as a metric once per invocation."""

    def function_exists(self, arn: str) -> bool | None:
        """Whether the Lambda function ``arn`` exists (a hook the operator deploys); ``None``
        where the replicator has no Lambda client to ask."""

    def kind(self, kind: EntityKind) -> Kind:
        """Another kind (what a hook does to entities of other kinds goes through them)."""


# --- snapshot cells ------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Column:
    """One column of a kind's snapshot table: its pandas dtype and how a plain record's value is
    stored in a cell (``encode``, canonical so equal state compares equal across regions and
    across save/load) and read back from the cell's plain value (``decode``; ``None`` for a
    missing value). ``json``: the cell holds canonical JSON; ``json_text``: the value is JSON
    text (a shadow's sections) that the reports show as is, not re-quoted. ``CATEGORY``
    (``label``): text of few distinct values, held dictionary-encoded."""

    name: str
    dtype: str = "string"
    encode: Callable[[Any], Any] = lambda value: value
    decode: Callable[[Any], Any] = lambda cell: cell
    json: bool = False
    json_text: bool = False


def text(name: str) -> Column:
    return Column(name)


# A pandas categorical: a small integer code per row and each distinct value once. The
# snapshot holds such a column so in memory (``reconcile.snapshot.conform``) and digests,
# compares and reads it back as the text it stands for: its fingerprint is the text's.
CATEGORY = "category"


def label(name: str) -> Column:
    """Text most rows share with many others at any fleet size: the name of an entity a fleet
    has far fewer of than of things (a thing's type or billing group, a membership's group) or
    a status (an enum of AWS's: botocore's iot model, ``CertificateStatus``,
    ``CACertificateStatus``, ``AuthorizerStatus``). At 1M things a type's text took 14.5 MB,
    its codes take 1 MB (bench/results/README.md, B1). Not for a name or key each row holds
    its own of, nor a thing group's parent (as many as inner groups, in a table of few rows)."""
    return Column(name, CATEGORY)


# Text held compressed, with a digest per cell (``reconcile.packed``): a column whose cells are
# many and long. Compared by digest, read back as the text it stands for: its fingerprint is
# the text's.
PACKED = "packed_string"


def json_map(name: str, dtype: str = "string") -> Column:
    """A name -> value map, stored as canonical JSON; absent reads as ``{}``."""
    return Column(
        name,
        dtype,
        encode=lambda value: canonical_json(dict(value or {})),
        decode=lambda cell: _json(cell) or {},
        json=True,
    )


def attribute_map() -> Column:
    """A thing's or a thing group's attribute map, packed (``PACKED``): at 1M things it took
    128 MB a side as text, 41 MB packed (bench/results/README.md, B1). One encoding for the
    column name in every kind, so thing groups' are packed too."""
    return json_map("attributes", PACKED)


def json_list(name: str, *, sort: bool) -> Column:
    """A list as canonical JSON (sorted when its order means nothing); absent reads as ``[]``."""
    return Column(
        name,
        encode=lambda value: canonical_json(sorted(value or []) if sort else list(value or [])),
        decode=lambda cell: _json(cell) or [],
        json=True,
    )


def json_or_none(name: str) -> Column:
    """An optional JSON value (a dynamic group's query): NA when absent."""
    return Column(
        name,
        encode=lambda value: canonical_json(value) if value else None,
        decode=_json,
        json=True,
    )


def flag(name: str, *, dtype: str = "bool") -> Column:
    """A boolean; ``boolean`` (nullable) where a listing may not report it (read as False)."""
    encode = (lambda value: bool(value or False)) if dtype == "bool" else (lambda value: value)
    return Column(name, dtype, encode=encode, decode=lambda cell: bool(cell or False))


def version() -> Column:
    """The per-region version a listing returns: kept for information, never compared."""
    return Column("version", "Int64")


def _json(cell: Any) -> Any:
    return None if cell is None else json.loads(cell)


@dataclass(frozen=True)
class Cascade:
    """Entities of ``kind`` that AWS removes with a deleted entity, without an event or call of
    their own: those whose names start with ``prefix`` (a key prefix the state table can scan
    for) and that ``matches`` (the link's end named after the deleted entity). Persist writes
    their tombstones with the delete's (``pipeline.ingest``)."""

    kind: EntityKind
    matches: Callable[[str], bool]
    prefix: str = ""


# --- the kind ------------------------------------------------------------------------------------

EventParser = Callable[[dict[str, Any], str], Change]


class Kind:
    """A kind's facts and decisions. Subclasses set the class attributes and override what
    their kind needs; every method here is the common case."""

    spec: EntitySpec
    columns: tuple[Column, ...]  # the snapshot table: key columns, state fields, then version
    listing: Listing
    joins: tuple[Join, ...] = ()
    # Registry event types (``eventType``) this kind parses (``pipeline.events`` dispatches).
    registry_events: Mapping[str, EventParser] = {}
    # Messages without an ``eventType`` this kind parses, by the MQTT topic filter of the
    # reserved topics they are published on (a shadow's ``update/documents``): the IoT rule
    # adds the ``topic`` (``SELECT *, topic() AS topic``), ``pipeline.events`` dispatches on it.
    topics: Mapping[str, EventParser] = {}
    # CloudTrail event names (control-plane calls) this kind parses (``pipeline.cloudtrail``).
    api_calls: Mapping[str, CallParser] = {}
    # Metrics the replicator emits every invocation for this kind, 0 included (a baseline for
    # alarms); other counts a hook reports are emitted when not zero.
    baseline_metrics: tuple[str, ...] = ()
    # The default TPS quota of each read call the snapshot makes for this kind (its listing's,
    # describes' and joins' operations), per account and region, as AWS publishes it (AWS
    # General Reference, "AWS IoT Core endpoints and quotas"); an assumption is labelled where
    # it is set. ``reconcile.ratelimit`` paces each operation at it.
    quotas: Mapping[str, float] = {}
    # The state fields naming ARNs of the origin's region or account: the destination's copy
    # names its own (``written``). The replicator converges to the state as written, and the
    # diff compares the source's state as written with the destination's.
    arn_fields: tuple[str, ...] = ()

    @property
    def kind(self) -> EntityKind:
        return self.spec.kind

    # --- names and values ------------------------------------------------------------------

    def check_name(self, field_name: str, name: object) -> str:
        """A name of this kind, validated (a corrective event's ``name``)."""
        return rules.validate_name(field_name, name)

    def check_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """A corrective event's ``state``: each key a field of this kind, each value valid."""
        checked: dict[str, Any] = {}
        for key, value in state.items():
            if key not in self.spec.fields:
                expected = ", ".join(self.spec.fields) or "none"
                raise EventValidationError(
                    f"state.{key}", f"unknown field for {self.kind.value}; expected: {expected}"
                )
            checked[key] = self.check_field(key, value, state)
        return checked

    def check_stored(self, state: Mapping[str, Any]) -> None:
        """A stored item's ``state`` before it is converged: each field of this kind valid, as
        a corrective event's (``check_state``; other keys are left to the kind). A malformed
        one raises ``EventValidationError`` naming the field, a permanent error, instead of a
        plain ``TypeError`` deep in a kind, which the replicator's event source mapping
        retried until the record expired and then dropped without a reason (issue 28)."""
        for key, value in state.items():
            if key in self.spec.fields:
                self.check_field(key, value, state)

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        """One field of a corrective event's state (``state``: the whole, for context)."""
        raise EventValidationError(f"state.{key}", "no validator for this field")

    # --- snapshot cells --------------------------------------------------------------------

    def written(self, field: str, value: Any, mapping: ArnMapping) -> Any:
        """``value`` (not ``None``) of ``field``, one of ``arn_fields``, as the destination's
        copy holds it: ``mapping`` takes the origin's region and accounts to the destination's."""
        raise NotImplementedError

    def as_written(self, state: Mapping[str, Any], mapping: ArnMapping) -> dict[str, Any]:
        """``state`` as the destination's copy holds it (each of ``arn_fields`` ``written``)."""
        return {
            key: self.written(key, value, mapping)
            if key in self.arn_fields and value is not None
            else value
            for key, value in state.items()
        }

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    def encode(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A listed (or table) record of plain values as the snapshot row's cells."""
        return {column.name: column.encode(record.get(column.name)) for column in self.columns}

    def decode(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A snapshot row (its cells as plain values) as the kind's state fields."""
        return {name: self.column(name).decode(row[name]) for name in self.spec.fields}

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        """The entity's state in ``iot``'s region (``None``: absent); ``deleting`` adds what
        a delete needs to know (what is attached)."""
        raise NotImplementedError

    def record(self, reader: Reader, listed: Mapping[str, Any]) -> dict[str, Any] | None:
        """The snapshot record of a listed item, after the ``listing.describe`` calls
        (``None``: deleted meanwhile). A link's records come from ``links``."""
        raise NotImplementedError

    def details(self, reader: Reader, name: str) -> dict[str, Any] | None:
        """The fields of ``spec.detailed`` of one listed entity, read with ``listing.details``
        (``None``: deleted meanwhile)."""
        raise NotImplementedError

    def links(self, reader: Reader, parent: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """A link kind's records under one record of ``listing.parent`` (calling ``listing.op``
        where the parent's record does not carry them)."""
        raise NotImplementedError

    def lists_under(self, parent: Mapping[str, Any]) -> bool:
        """Whether ``links`` is asked for this parent record (a dynamic group's members are
        computed per region, never listed)."""
        return True

    def resolve(self, origin: Iot, change: Change) -> Change | None:
        """``change`` completed with what its ``lookup`` asks for, read in its origin region
        (``origin``); ``None`` when the entity is gone since (its delete follows)."""
        return change

    # --- convergence -----------------------------------------------------------------------

    def depends_on(self, name: str, state: Mapping[str, Any]) -> tuple[tuple[EntityKind, str], ...]:
        """The entities that must exist before this one: created from the local table when a
        call fails for want of them."""
        return ()

    def cascades(self, name: str) -> tuple[Cascade, ...]:
        """What AWS removes with this entity when it is deleted, with no event of its own (the
        links that name it): the state table must follow (``pipeline.ingest``)."""
        return ()

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        """The calls that bring the entity from ``actual`` (``read``; ``None``: absent) to
        ``desired`` (``None``: deleted). Pure; names and values validated."""
        raise NotImplementedError

    def converge(self, ctx: Converging, item: Item) -> Result:
        """Converge ``item`` in the destination; kinds whose convergence needs reads between
        calls override it."""
        return ctx.run(self, item)
