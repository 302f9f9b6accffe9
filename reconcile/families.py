"""Reading a region: every kind's listing family at once, with progress, for ``take_snapshot``.

``read_region`` runs the kinds' listings (``Kind.listing``) through an ``Inventory``
(``reconcile.inventory``: the one IoT-calling edge) on threads, one family per kind with a
listing of its own, its links and joins beside it; ``ListingStatus`` reports where each family
stands (``reconcile.progress`` shows it); the first failing listing stops the others.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from pipeline.iot import PAGE_SIZE
from pipeline.kinds import KINDS
from pipeline.kinds.base import Join, Kind
from pipeline.model import EntityKind
from reconcile.inventory import Inventory

__all__ = ["FAMILIES", "ListingProgress", "ListingStatus", "read_region"]


# --- reading a region: the kinds' listings, concurrently ----------------------------------------


def _families() -> dict[str, tuple[str, ...]]:
    """Each kind's listing family and the IoT APIs it calls: a kind with a listing of its own,
    then the links it yields (each a family of its own, fed by its parent's listing); a join
    counts with its parent's family (a thing's billing group, with the billing groups)."""
    families: dict[str, tuple[str, ...]] = {}
    for kind in KINDS.values():
        if kind.listing.parent is not None:
            continue
        joins = tuple(
            j.op for other in KINDS.values() for j in other.joins if j.parent is kind.kind
        )
        families[kind.kind.value] = (*kind.listing.operations, *joins)
        for child in _children(kind.kind):
            families[child.kind.value] = child.listing.operations
    return families


def _children(parent: EntityKind) -> list[Kind]:
    return [kind for kind in KINDS.values() if kind.listing.parent is parent]


# The listing families a snapshot runs at once, with the IoT APIs each one calls. Every API has
# its own quota (reconcile.ratelimit), so the families share nothing but the limiter and the
# snapshot takes as long as its slowest API, not the sum of them.
FAMILIES: dict[str, tuple[str, ...]] = _families()
_REPORT_EVERY = 250  # items between progress reports (one page of the largest listings)


@dataclass(frozen=True)
class ListingStatus:
    """Where one listing family of one region's snapshot stands (for progress displays)."""

    region: str
    family: str  # a key of FAMILIES
    items: int  # entities (or links) seen so far
    calls: int  # API calls the family has made so far (pages and describes)
    done: bool
    eta_seconds: float | None  # time left at the quotas, when the work left is known


ListingProgress = Callable[[ListingStatus], None]
_T = TypeVar("_T")


class SnapshotCancelled(Exception):
    """Raised inside a listing when another family failed or the run was interrupted."""


class _Tracker:
    """Counts per family; reports them; lets one failing family stop the others."""

    def __init__(
        self,
        region: str,
        inventory: Inventory,
        progress: ListingProgress | None,
        expected: Mapping[str, int] | None,
    ) -> None:
        self.region = region
        self.inventory = inventory
        self.progress = progress
        self.expected = dict(expected or {})
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.items: dict[str, int] = dict.fromkeys(FAMILIES, 0)
        self.done: set[str] = set()
        self.pending: Counter[str] = Counter()  # parents whose links are still to be listed
        self._failure: BaseException | None = None

    def submit(self, pool: ThreadPoolExecutor, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        """Run ``fn`` on ``pool`` in a copy of the caller's context (a ``VirtualClock``'s
        reading, log context), so work handed to another thread continues where its submitter
        stood; its first real failure stops every listing (``raise_failure`` re-raises it)."""
        context = contextvars.copy_context()

        def guarded() -> _T:
            try:
                return context.run(fn, *args)
            except SnapshotCancelled:
                raise
            except BaseException as error:
                with self.lock:
                    self._failure = self._failure or error
                self.stop.set()
                raise

        return pool.submit(guarded)

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def counted(self, family: str, items: Iterable[_T], *, count: bool = True) -> Iterator[_T]:
        """Pass items through, counting them (unless told not to) and reporting every page;
        stops with ``SnapshotCancelled`` once another family failed."""
        for item in items:
            if self.stop.is_set():
                raise SnapshotCancelled(family)
            if not count:
                yield item
                continue
            with self.lock:
                self.items[family] += 1
                seen = self.items[family]
            if seen % _REPORT_EVERY == 0:
                self.report(family)
            yield item

    def finish(self, family: str) -> None:
        with self.lock:
            self.done.add(family)
        self.report(family)

    def report(self, family: str) -> None:
        if self.progress is None:
            return
        calls = sum(self.inventory.calls[op] for op in FAMILIES[family])
        with self.lock:
            items, done = self.items[family], family in self.done
        self.progress(
            ListingStatus(
                self.region, family, items, calls, done, 0.0 if done else self._eta(family)
            )
        )

    def _eta(self, family: str) -> float | None:
        """Seconds the family's known remaining calls need at the quotas (``None``: unknown).

        Links listed on threads of their own: from the parents still waiting (one page each,
        at least); the other families only from ``expected`` (an earlier snapshot's counts):
        one describe per entity left, or one page per 250 of them.
        """
        listing = KINDS[EntityKind(family)].listing
        limiter = self.inventory.limiter
        if listing.workers:
            rate = limiter.rate(listing.op)
            return self.pending[family] / rate if rate else None
        expected = self.expected.get(family)
        if expected is None:
            return None
        left = max(0, expected - self.items[family])
        if listing.describe:
            rate = limiter.rate(listing.describe[0])
            return left / rate if rate else None
        rate = limiter.rate(listing.op)
        return math.ceil(left / PAGE_SIZE) / rate if rate else None


def read_region(
    inventory: Inventory,
    region: str,
    *,
    progress: ListingProgress | None = None,
    expected: Mapping[str, int] | None = None,
) -> dict[EntityKind, list[dict[str, Any]]]:
    """Every kind's records in one region, the listing families at once.

    ``progress`` receives a ``ListingStatus`` as listings advance (from worker threads);
    ``expected`` (family -> count, e.g. an earlier snapshot's) lets it estimate time left.
    Links are listed only where their kind asks (``Kind.lists_under``: a dynamic group's
    members are computed per region). Links and joins naming an entity of a ``dangling`` kind
    the listing did not return are dropped: it was deleted while we read (or the service still
    lists a deleted thing), and a link to nothing cannot be replicated. The first listing to fail
    stops the others and its error is raised; so is an interrupt.
    """
    tracker = _Tracker(region, inventory, progress, expected)
    for family in FAMILIES:  # every family shows from the start; rates count from here
        tracker.report(family)
    roots = [k for k in KINDS.values() if k.listing.parent is None and inventory.lists(k)]
    for kind in KINDS.values():
        if not inventory.lists(kind):
            tracker.finish(kind.kind.value)  # not asked for: nothing to list
    records: dict[EntityKind, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    pooled: list[tuple[Kind, Future[list[dict[str, Any]]]]] = []
    joined: list[tuple[Join, str, Future[list[str]]]] = []

    def links_of(child: Kind, parent: Mapping[str, Any]) -> list[dict[str, Any]]:
        links = list(tracker.counted(child.kind.value, inventory.links(child, parent)))
        with tracker.lock:
            tracker.pending[child.kind.value] -= 1
        return links

    def joined_of(join: Join, parent: str) -> list[str]:
        return list(tracker.counted(join.parent.value, inventory.joined(join, parent), count=False))

    def listing(kind: Kind, pools: Mapping[EntityKind | Join, ThreadPoolExecutor]) -> None:
        joins = [j for other in KINDS.values() for j in other.joins if j.parent is kind.kind]
        children = [child for child in _children(kind.kind) if inventory.lists(child)]
        mine: list[tuple[Join, str, Future[list[str]]]] = []
        for record in tracker.counted(kind.kind.value, inventory.entities(kind.kind)):
            records[kind.kind].append(record)
            for child in children:
                if not inventory.lists_under(child, record):
                    continue
                if child.listing.workers:
                    with tracker.lock:
                        tracker.pending[child.kind.value] += 1
                    pooled.append(
                        (child, tracker.submit(pools[child.kind], links_of, child, record))
                    )
                else:
                    links = tracker.counted(child.kind.value, inventory.links(child, record))
                    records[child.kind].extend(links)
            for join in joins:
                future = tracker.submit(pools[join], joined_of, join, record["name"])
                mine.append((join, record["name"], future))
        wait([future for _, _, future in mine])  # a family is done once its joins are
        joined.extend(mine)
        tracker.finish(kind.kind.value)
        for child in children:
            if not child.listing.workers:
                tracker.finish(child.kind.value)

    joins = [join for kind in KINDS.values() for join in kind.joins]
    with contextlib.ExitStack() as stack:
        pools: dict[EntityKind | Join, ThreadPoolExecutor] = {
            **{
                kind.kind: stack.enter_context(
                    ThreadPoolExecutor(kind.listing.workers, f"{kind.kind.value}-{region}")
                )
                for kind in KINDS.values()
                if kind.listing.workers
            },
            **{
                join: stack.enter_context(ThreadPoolExecutor(join.workers, f"{join.op}-{region}"))
                for join in joins
            },
        }
        families = stack.enter_context(ThreadPoolExecutor(len(roots), f"snapshot-{region}"))
        try:
            jobs = [tracker.submit(families, listing, kind, pools) for kind in roots]
            wait(jobs)
            wait([future for _, future in pooled])
            tracker.raise_failure()
            for child, future in pooled:
                records[child.kind].extend(future.result())
            for kind in KINDS.values():
                if kind.listing.workers and inventory.lists(kind):
                    tracker.finish(kind.kind.value)
        except BaseException:
            tracker.stop.set()  # the other listings end at their next item
            raise
    return _assembled(records, [(join, parent, future.result()) for join, parent, future in joined])


def _assembled(
    records: dict[EntityKind, list[dict[str, Any]]],
    joined: list[tuple[Join, str, list[str]]],
) -> dict[EntityKind, list[dict[str, Any]]]:
    """Joins filled in, dangling links dropped (see ``read_region``)."""
    names = {kind: {record.get("name") for record in rows} for kind, rows in records.items()}
    for kind in KINDS.values():
        for join in kind.joins:
            of = {
                name: parent
                for j, parent, listed in joined
                if j is join
                for name in listed
                if name in names[kind.kind]
            }
            for record in records[kind.kind]:
                record[join.field] = of.get(record["name"])
        dangling = kind.listing.dangling
        if dangling is not None:
            records[kind.kind] = [
                link for link in records[kind.kind] if link[dangling.value] in names[dangling]
            ]
    return records
