"""The read-only side of a snapshot: one region's registry, listed kind by kind.

Flow: ``take_snapshot`` (reconcile.snapshot) runs the kinds' listings (``Kind.listing``, in
``pipeline.kinds``: the list call, the describes per listed item, the links a parent yields)
through an ``Inventory``, concurrently (``reconcile.families``), and builds the snapshot's
tables from the records. The
listings use the cheapest calls (docs/design.md, "Reconciliation"): ``ListThings`` at 250 a page,
one describe per group, one member listing per static group; never one call per thing.

Every call goes through ``pipeline.iot.Iot`` (so ``pipeline.aws.AwsCalls``): a token from the
``RateLimiter`` first, then counted in ``calls`` (the operator's evidence of cost). Listings run
on threads: boto3 clients are thread-safe (boto3 guide, "Multithreading or multiprocessing with
clients"); the counters here are updated under a lock. A page token pointing at an entity
deleted between two pages (moto: ``InvalidToken``) restarts that listing, skipping names it
already yielded. Other failures are ``pipeline.errors``' classified errors, raised ``from``
botocore's.
"""

from __future__ import annotations

import fnmatch
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pipeline.errors import AwsError, AwsRequestError, NotFoundError
from pipeline.iot import PAGE_SIZE, Iot
from pipeline.kinds import KINDS
from pipeline.kinds.base import Join, Kind
from pipeline.model import EntityKind
from reconcile.partition import chosen_partitions, listed_records
from reconcile.ratelimit import RateLimiter
from reconcile.sweep import WHOLE, Sweep

if TYPE_CHECKING:
    from mypy_boto3_iot import IoTClient

    from pipeline.aws import ClientFactory

__all__ = ["PAGE_SIZE", "Inventory", "ListingRestartError", "included"]

MAX_RESTARTS = 5  # a listing that keeps losing its token is a real fault, not churn

# AWS IoT documents no token error code; moto uses ``InvalidToken``. Accept the likely spellings.
_INVALID_TOKEN_CODES = frozenset({"InvalidToken", "InvalidTokenException"})


class ListingRestartError(AwsRequestError):
    """A listing lost its page token more than ``MAX_RESTARTS`` times (churn that never settles)."""


class Inventory:
    """Read-only listings of one region's registry, as plain records.

    ``client`` is a boto3 IoT client for the region (``pipeline.aws.client("iot", region)``);
    ``limiter`` paces the calls. ``page_size`` exists so tests can force many pages.
    ``opt_in``: the opt-in kinds to list too (``Listing.opt_in``); ``include``: per kind, the
    name globs its listed entities must match to be described and kept (``included``).
    ``partitions``: per kind, the ``Partition`` to list it in (``reconcile.partition``).
    ``factory``: the factory ``client`` came from, if one was injected: the shadow and
    retained-message listings' iot-data client is made by it too (``pipeline.aws.data_client``).
    ``sweep``: the slice of the per-device links listed (``reconcile.sweep``).
    """

    def __init__(
        self,
        client: IoTClient,
        limiter: RateLimiter | None = None,
        *,
        page_size: int = PAGE_SIZE,
        opt_in: Iterable[EntityKind] = (),
        include: Mapping[EntityKind, Iterable[str]] | None = None,
        under: Mapping[EntityKind, Callable[[Mapping[str, Any]], bool]] | None = None,
        partitions: Mapping[EntityKind, str] | None = None,
        factory: ClientFactory | None = None,
        sweep: Sweep = WHOLE,
    ) -> None:
        self.opt_in = frozenset(opt_in)
        self.sweep = sweep
        self.include = {kind: tuple(globs) for kind, globs in (include or {}).items()}
        self.under = dict(under or {})  # per link kind, the parents it is listed under
        self._partitions = chosen_partitions(partitions or {})
        self._limiter = limiter or RateLimiter()
        self.iot = Iot(client, factory=factory, before=self._limiter.acquire, page_size=page_size)
        self.restarts: Counter[str] = Counter()
        self._restarts_lock = threading.Lock()

    @property
    def calls(self) -> Counter[str]:
        return self.iot.calls

    def lists(self, kind: Kind) -> bool:
        """Whether this snapshot lists ``kind`` (an opt-in kind only when asked)."""
        return not kind.listing.opt_in or kind.kind in self.opt_in

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    # -- what the kinds read through (pipeline.kinds.base.Reader) --------------------------

    def call(self, op: str, /, **params: Any) -> Any:
        return self.iot.call(op, **params)

    def items(self, op: str, /, *, key: str | None = None, **params: Any) -> Iterator[Any]:
        """Every item of listing ``op``, restarting when a page token goes stale; ``key`` names
        an item's name field (None: the items are names)."""
        name_of: Callable[[Any], str] = str if key is None else (lambda item: str(item[key]))
        seen: set[str] = set()
        restarts = 0
        while True:
            pages = 0
            try:
                for page in self.iot.pages(op, **params):
                    pages += 1
                    for item in page:
                        name = name_of(item)
                        if name not in seen:  # a restart lists again what was yielded
                            seen.add(name)
                            yield item
                return
            except AwsError as error:
                if not (pages and error.code in _INVALID_TOKEN_CODES):
                    raise
                restarts += 1
                with self._restarts_lock:
                    self.restarts[op] += 1
                if restarts > MAX_RESTARTS:
                    raise ListingRestartError(
                        op, error.code, f"page token lost {restarts} times"
                    ) from error.__cause__  # botocore's last refusal, as for every AWS error

    # -- the kinds' listings ------------------------------------------------------------------

    def entities(self, kind: EntityKind) -> Iterator[dict[str, Any]]:
        """Every entity of a kind with a listing of its own, as its record (an entity deleted
        between its listing and its describe is skipped: it no longer exists)."""
        model = KINDS[kind]
        listing = model.listing
        if listing.parent is not None:
            raise ValueError(f"{kind.value} is listed under its parent, {listing.parent.value}")

        def keep(listed: Any) -> bool:  # not asked for: not described
            return not listing.name or included(self.include, kind, str(listed[listing.name]))

        yield from listed_records(self, model, self._partitions.get(kind), self._limiter, keep=keep)

    def lists_under(self, kind: Kind, parent: Mapping[str, Any]) -> bool:
        """Whether ``kind``'s links are listed under ``parent`` (a record): as ``under`` (else
        the kind) says, and in the sweep's slice."""
        listed = self.under.get(kind.kind, kind.lists_under)(parent)
        return listed and self.sweep.lists_under(kind, parent)

    def links(self, kind: Kind, parent: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """A link kind's records under one parent record (none if gone)."""
        try:
            yield from kind.links(self, parent)
        except NotFoundError:
            return

    def joined(self, join: Join, parent: str) -> Iterator[str]:
        """The names ``join`` lists under one parent (none if the parent is gone)."""
        try:
            yield from self.items(join.op, **{join.param: parent})
        except NotFoundError:
            return


def included(include: Mapping[EntityKind, tuple[str, ...]], kind: EntityKind, name: str) -> bool:
    """Whether ``name`` matches a glob ``include`` names for ``kind`` (``fnmatch``, case-sensitive:
    ``iot-crr --retained 'config/*'``); any name of a kind ``include`` does not name."""
    globs = include.get(kind)
    return globs is None or any(fnmatch.fnmatchcase(name, glob) for glob in globs)
