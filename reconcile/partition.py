"""Listing at once: a kind's listing in parts (``pipeline.kinds.base.Partition``), and its
describes (``Listing.describe_workers``).

Why: a listing follows its page tokens, so it asks for a page only once the previous one has
returned. With a round trip of ``L`` seconds one listing makes at most ``1 / L`` calls a second,
and once ``L`` exceeds ``1 / quota`` (100 ms at ListThings' 10 TPS, Service Quotas L-57AAC135)
the round trips, not the quota, set its pace: bench B2 measures twice the quota bound at 200 ms.
Parts listed at once keep the quota busy; they share it (a quota is per API, per account and
region, whatever the request's filters: "ListThings API TPS"), and the snapshot's limiter paces
them together.

A partition is sound only for a fleet that meets its ``requires``: the operator asks for one
(``Inventory(partitions=...)``; ``iot-crr --list-in-parts``, the job's ``LIST_IN_PARTS``: both
``parse_partitions``), never a default, and the listing first asks the region whether it does
(``Partition.check``): one that does not, or cannot tell, refuses (``PartitionRefusedError``).
Names listed by two parts are yielded once.
Describes are per listed item and keep nothing in order but their results, so they run on a
few threads at once whatever the fleet; their records come back in listing order.

A consumer takes up a worker's result no earlier than the worker's clock read when it finished
(``Pace.wait_until``: a no-op on a real clock, where that moment has passed; on a
``VirtualClock`` it moves the consumer's reading, so work it does next starts after it).
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from pipeline.errors import PermanentError
from pipeline.kinds import KINDS
from pipeline.kinds.base import Kind, Partition, Reader
from pipeline.model import EntityKind

Lister = Callable[..., Iterator[Any]]  # one filtered listing: ``lister(**filters)``
_In = TypeVar("_In")
_Out = TypeVar("_Out")


class Pace(Protocol):
    """The snapshot's clock, as its rate limiter keeps it (``reconcile.ratelimit``)."""

    def now(self) -> float: ...

    def wait_until(self, moment: float) -> None: ...


def _timed(pace: Pace, fn: Callable[[], _Out]) -> tuple[_Out, float]:
    result = fn()
    return result, pace.now()


def partition_named(partitions: Sequence[Partition], name: str, kind: str) -> Partition:
    """The partition ``name`` of a kind's listing, or a ValueError naming those it has."""
    for partition in partitions:
        if partition.name == name:
            return partition
    offered = ", ".join(p.name for p in partitions) or "none"
    raise ValueError(f"{kind} has no listing partition {name!r} (it has: {offered})")


def chosen_partitions(names: Mapping[EntityKind, str]) -> dict[EntityKind, Partition]:
    """The partition named for each kind (``Inventory(partitions=...)``), each checked."""
    return {
        kind: partition_named(KINDS[kind].listing.partitions, name, kind.value)
        for kind, name in names.items()
    }


# Every KIND=PARTITION an operator may ask for, from the kinds' own declarations.
PARTITIONS: dict[str, tuple[EntityKind, Partition]] = {
    f"{kind.kind.value}={partition.name}": (kind.kind, partition)
    for kind in KINDS.values()
    for partition in kind.listing.partitions
}


def parse_partitions(values: Iterable[str]) -> dict[EntityKind, str]:
    """``KIND=PARTITION`` values (``thing=type``) as ``Inventory``'s ``partitions``; a ValueError
    naming the value, what is wrong with it and the valid choices."""
    chosen: dict[EntityKind, str] = {}
    kinds = {kind.value for kind, _ in PARTITIONS.values()}
    for value in values:
        kind_name, _, name = (part.strip() for part in value.partition("="))
        if f"{kind_name}={name}" not in PARTITIONS:
            if not name:
                why = "expected KIND=PARTITION"
            elif kind_name not in kinds:
                why = f"{kind_name!r} is not a kind that lists in parts"
            else:
                why = f"{kind_name} has no listing partition {name!r}"
            raise ValueError(f"{value!r}: {why} (choices: {', '.join(PARTITIONS) or 'none'})")
        kind, _ = PARTITIONS[f"{kind_name}={name}"]
        if chosen.setdefault(kind, name) != name:
            raise ValueError(f"{value!r}: {kind_name} is already listed in parts by {chosen[kind]}")
    return chosen


class PartitionRefusedError(PermanentError):
    """A listing in parts the region does not meet the requirement of (or cannot tell)."""


def checked(partition: Partition, kind: Kind, reader: Reader) -> Partition:
    """``partition`` once the region says it meets its ``requires`` (``Partition.check``), else
    ``PartitionRefusedError`` saying why."""
    why = partition.check(reader)
    if why is not None:
        raise PartitionRefusedError(
            f"{kind.kind.value} cannot be listed in parts by {partition.name}: {why}; it "
            f"requires that {partition.requires}. List it whole instead"
        )
    return partition


def listed_in_parts(
    lister: Lister,
    parts: Sequence[Mapping[str, Any]],
    *,
    workers: int,
    name_of: Callable[[Any], str],
    pace: Pace,
) -> Iterator[Any]:
    """Every item of the ``parts`` (each the filters of one listing), listed ``workers`` at a
    time, each part in a copy of the caller's context (a ``VirtualClock``'s reading, log
    context); yielded part by part in the order given, each name once."""
    if not parts:
        return
    seen: set[str] = set()
    pool = ThreadPoolExecutor(min(workers, len(parts)), "partition")
    try:
        futures = [
            pool.submit(
                contextvars.copy_context().run, _timed, pace, lambda p=part: list(lister(**p))
            )
            for part in parts
        ]
        for future in futures:
            items, done_at = future.result()
            pace.wait_until(done_at)
            for item in items:
                name = name_of(item)
                if name not in seen:
                    seen.add(name)
                    yield item
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a consumer that stops early


def mapped_in_order(
    fn: Callable[[_In], _Out], items: Iterable[_In], *, workers: int, pace: Pace
) -> Iterator[_Out]:
    """``fn`` of each item, ``workers`` at a time (each in a copy of the caller's context, at
    most ``2 x workers`` ahead of the consumer), in the items' order."""
    pool = ThreadPoolExecutor(workers, "describe")
    pending: deque[Future[tuple[_Out, float]]] = deque()

    def taken() -> _Out:
        result, done_at = pending.popleft().result()
        pace.wait_until(done_at)
        return result

    try:
        for item in items:
            task = lambda item=item: fn(item)  # noqa: E731
            pending.append(pool.submit(contextvars.copy_context().run, _timed, pace, task))
            if len(pending) >= 2 * workers:
                yield taken()
        while pending:
            yield taken()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def listed_records(
    reader: Reader,
    kind: Kind,
    partition: Partition | None,
    pace: Pace,
    *,
    keep: Callable[[Any], bool] = lambda _: True,
) -> Iterator[dict[str, Any]]:
    """A kind of its own's records (``Inventory.entities``): its listing, whole or in the parts
    of ``partition``, each listed item ``keep`` accepts described (``describe_workers`` at once,
    if any); an entity deleted between its listing and its describe is skipped."""
    listing = kind.listing
    every = (
        reader.items(listing.op, key=listing.name)
        if partition is None
        else listed_in_parts(
            lambda **filters: reader.items(listing.op, key=listing.name, **filters),
            list(checked(partition, kind, reader).parts(reader)),
            workers=partition.workers,
            name_of=lambda item: str(item if listing.name is None else item[listing.name]),
            pace=pace,
        )
    )
    listed = (item for item in every if keep(item))
    records = (
        mapped_in_order(
            lambda item: kind.record(reader, item),
            listed,
            workers=listing.describe_workers,
            pace=pace,
        )
        if listing.describe_workers
        else (kind.record(reader, item) for item in listed)
    )
    yield from (record for record in records if record is not None)
