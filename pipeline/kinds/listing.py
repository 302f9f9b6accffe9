"""How a snapshot lists a kind (``Listing``, ``Partition``, ``Join``) and reads a region while
it does (``Reader``): the vocabulary of ``Kind.listing`` (``pipeline.kinds.base``), which
``reconcile.inventory`` and ``reconcile.partition`` run and ``reconcile.details`` reads with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.model import EntityKind


class Reader(Protocol):
    """How a kind reads a region while it is listed, or entity by entity for a repair
    (``Kind.details``): ``reconcile.inventory.Inventory``, paced by its rate limiter; a listing
    that loses its page token starts again."""

    def call(self, op: str, /, **params: Any) -> Any: ...

    def items(self, op: str, /, *, key: str | None = None, **params: Any) -> Iterator[Any]:
        """Every item of listing ``op``; ``key``: the field naming an item (None: items are
        names), by which a restarted listing skips what it already yielded."""
        ...


@dataclass(frozen=True)
class Partition:
    """A kind's listing as disjoint listings of ``Listing.op``, each filtered by one of ``parts``
    (request parameters, read through the snapshot's reader), at once on ``workers`` threads
    (``reconcile.partition``). Sound only for a fleet that meets ``requires``: asked by name.
    ``check`` reads whether the region meets it: why not (or why it cannot tell), None if so."""

    name: str
    parts: Callable[[Reader], Iterator[dict[str, Any]]]
    requires: str
    check: Callable[[Reader], str | None]
    workers: int = 4


@dataclass(frozen=True)
class Listing:
    """How a snapshot lists a kind, in the spirit of Cloud Custodian's ``enum_spec`` and
    ``detail_spec`` (``reconcile.inventory`` runs it).

    A kind of its own: ``op`` is the paginated list call and ``name`` the field naming a listed
    item; ``describe`` the operations ``Kind.record`` makes per listed item (none: the listing
    carries the whole state); ``details`` those ``Kind.details`` makes for one entity whose
    repair needs the fields the listing leaves out (``EntitySpec.detailed``; a repair's reads,
    not the snapshot's: ``reconcile.details``). A link: ``parent`` is the kind whose listed
    records yield it, and ``op`` the listing ``Kind.links`` makes once per parent record: right
    after the parent's record, in its listing's thread, or on ``workers`` threads of their own.
    ``dangling``: a kind whose deletions that listing may lag behind (moto lists a deleted thing in its groups):
    links naming one the snapshot does not hold are dropped (the record names it in the field
    called after that kind's value, ``"thing"``). ``opt_in``: listed only when the snapshot is
    asked to (``reconcile.inventory.Inventory``'s ``opt_in``), because its per-entity calls
    would dominate a large fleet's run (a thing's shadows); otherwise its table stays empty in
    every snapshot, the state table's included, so it shows no drift and is not audited.
    ``partitions``: how the operator may split the listing (``Partition``); ``describe_workers``:
    threads describing listed items at once, records in listing order (0: in the listing's).
    ``swept``: a link listed by one call per device (certificate or thing), which a run may
    make for one slice of the parents only (``reconcile.sweep``).
    """

    op: str
    name: str | None = None
    describe: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    parent: EntityKind | None = None
    workers: int = 0
    dangling: EntityKind | None = None
    opt_in: bool = False
    partitions: tuple[Partition, ...] = ()
    describe_workers: int = 0
    swept: bool = False

    @property
    def operations(self) -> tuple[str, ...]:
        """The operations a snapshot makes (not ``details``: a repair's)."""
        return (self.op, *self.describe)


@dataclass(frozen=True)
class Join:
    """A field of a kind's records filled from another kind's listing: ``op`` lists, once per
    record of ``parent`` (on ``workers`` threads), the names of the entities whose ``field``
    is that parent (a thing's billing group, from ListThingsInBillingGroup: ListThings does not
    return it in AWS). Names the snapshot does not hold are dropped, as for links."""

    field: str
    parent: EntityKind
    op: str
    param: str
    workers: int = 1
