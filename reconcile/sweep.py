"""A sweep: each run lists the per-device links of one slice of the fleet, the next run the next.

Why: a certificate's things are listed by one ListPrincipalThingsV2 call per certificate, a
thing's shadows by a call or more per thing (``Listing.swept``). No AWS call returns either in
bulk (AWS IoT API Reference: ListPrincipalThingsV2, ListThingPrincipalsV2 and
ListNamedShadowsForThing each take one principal or thing), and at the assumed 10 TPS a region
needs 27.8 h for 1M certificates (README, known limits; bench B5). A sweep of ``slices`` lists,
in a run, the links of the parents whose name falls in its ``slice`` (``bucket_of``, the stable
hash), a different slice each UTC day (``Sweep.today``): every link is compared once in
``slices`` daily runs, each run making 1/``slices`` of those calls. The streaming path still
replicates every change as it happens; what a sweep delays is only the nightly *detection* of a
link drift the stream missed, by up to ``slices`` days.

A snapshot records the slice it listed (``Snapshot.sweep``; saved with it), and every
comparison narrows its views to that slice (``narrowed``): the state table's (which holds every
link), a whole snapshot's beside a swept one. Links outside the slice are neither drift nor
repaired. Two snapshots of different slices are never compared (``SweepMismatchError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.errors import PermanentError
from pipeline.kinds import KINDS
from pipeline.kinds.base import Kind
from reconcile.hashing import bucket_of, in_buckets

if TYPE_CHECKING:
    import pandas as pd

MAX_SLICES = 366  # a sweep longer than a year of daily runs is no audit
_DAY_MS = 86_400_000
_TEXT = re.compile(r"(?:(?P<slice>\d+)/)?(?P<slices>\d+)")

# The kinds a sweep narrows: links listed one call per device (``Listing.swept``).
SWEPT: tuple[Kind, ...] = tuple(kind for kind in KINDS.values() if kind.listing.swept)


def _check_slices(slices: int) -> int:
    if not 1 <= slices <= MAX_SLICES:
        raise ValueError(f"a sweep has 1 to {MAX_SLICES} slices, not {slices}")
    return slices


class SweepMismatchError(PermanentError):
    """Two snapshots listing different slices of the per-device links (nothing to compare)."""


@dataclass(frozen=True)
class Sweep:
    """Slice ``slice`` of ``slices`` (``Sweep()``: the whole fleet, every run)."""

    slice: int = 0
    slices: int = 1

    def __post_init__(self) -> None:
        _check_slices(self.slices)
        if not 0 <= self.slice < self.slices:
            raise ValueError(f"slice {self.slice} is not one of 0..{self.slices - 1}")

    @classmethod
    def today(cls, slices: int, now_ms: int) -> Sweep:
        """The slice of the UTC day ``now_ms`` falls in: consecutive days, consecutive slices."""
        return cls((now_ms // _DAY_MS) % _check_slices(slices), slices)

    @property
    def whole(self) -> bool:
        return self.slices == 1

    def __str__(self) -> str:
        """What a report says of it: ``thing principals and shadows: slice 3 of 7``."""
        which = "every one" if self.whole else f"slice {self.slice} of {self.slices}"
        return f"{' and '.join(kind.spec.noun[1] for kind in SWEPT)}: {which}"

    def lists_under(self, kind: Kind, parent: dict[str, Any] | Any) -> bool:
        """Whether a snapshot lists ``kind``'s links under ``parent`` (its parent's record)."""
        return self.whole or not kind.listing.swept or self.holds(str(parent["name"]))

    def holds(self, parent: str) -> bool:
        """Whether the parent named ``parent`` (a certificate id, a thing name) is in the slice."""
        return self.whole or bucket_of(parent, self.slices) == self.slice

    def keeps(self, kind: Kind, names: pd.Series) -> np.ndarray:
        """Which of ``kind``'s link names (a swept kind's frame's ``name`` column) are in the
        slice: those whose parent (the one of ``kind.depends_on`` that is its listing's
        ``parent``) the slice holds."""
        if self.whole or not kind.listing.swept:
            return np.ones(len(names), dtype=bool)
        parent = kind.listing.parent
        parents = [
            next(n for k, n in kind.depends_on(str(name), {}) if k is parent)
            for name in names.tolist()
        ]
        return in_buckets(parents, self.slices, np.array([self.slice], dtype=np.uint64))


WHOLE = Sweep()


def parse_sweep(text: str, now_ms: int) -> Sweep:
    """``N`` (today's slice of N: ``Sweep.today``) or ``K/N`` (slice K of N, 0 <= K < N); a
    ValueError naming what is wrong."""
    match = _TEXT.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r}: expected N (today's slice of N) or K/N (slice K of N)")
    slices = int(match["slices"])
    try:
        if match["slice"] is None:
            return Sweep.today(slices, now_ms)
        return Sweep(int(match["slice"]), slices)
    except ValueError as error:
        raise ValueError(f"{text!r}: {error}") from error


def common(first: Sweep, second: Sweep) -> Sweep:
    """The slice two snapshots are compared on: a swept one's (a whole one narrows to it); two
    different slices share nothing (``SweepMismatchError``)."""
    if first.whole or first == second:
        return second
    if second.whole:
        return first
    raise SweepMismatchError(
        "the snapshots hold different slices of the per-device links "
        f"({first.slice}/{first.slices} and {second.slice}/{second.slices}): take both in one run"
    )
