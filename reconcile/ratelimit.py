"""Client-side rate limiting for the snapshot's read calls: one token bucket per IoT API.

Sits under ``reconcile.inventory``: every List/Describe call the snapshot makes first takes a
token here, so a snapshot of a large fleet stays under the account's per-API quotas instead of
relying on throttling plus botocore retries (which would also starve the replicator and other
tools sharing the quota). Each API has its own quota, so listings of different APIs run
concurrently (``reconcile.snapshot``) and share nothing but this limiter; it is thread-safe.
Defaults are AWS IoT's documented default TPS quotas
(https://docs.aws.amazon.com/general/latest/gr/iot-core.html#throttling-limits). The clock and
sleep are parameters, so tests and benchmarks run a ``VirtualClock`` and never wait.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pipeline.kinds import KINDS

# Default per-account, per-region TPS quotas for the calls a snapshot makes, each kind's own
# (``Kind.quotas``: AWS General Reference, "AWS IoT Core endpoints and quotas",
# https://docs.aws.amazon.com/general/latest/gr/iot-core.html, with the Service Quotas codes;
# assumptions labelled there). Adjustable in AWS, hence ``scale`` and ``overrides`` below.
DEFAULT_QUOTAS: dict[str, float] = {
    **{op: quota for kind in KINDS.values() for op, quota in kind.quotas.items()},
    # Readiness (reconcile.readiness): TestAuthorization 10 TPS, Service Quotas code L-31D9CC26
    # ("TestAuthorization API TPS"), and ListThingPrincipals / ListPrincipalThings 10 TPS, the
    # figures of the archived AWS IoT limits page ("AWS IoT Throttling Limits",
    # awsdocs/aws-iot-docs developerguide/limits-iot.md); [assumption] still the defaults (the
    # current quotas page could not be read: README known limits).
    "TestAuthorization": 10,
    "ListThingPrincipals": 10,
    "ListPrincipalThings": 10,
}


@dataclass
class _Bucket:
    interval: float  # seconds per call (1 / rate)
    tolerance: float  # how far ahead of the steady pace a burst may run: (capacity - 1) x interval
    next_at: float  # when the next call would be due at the steady pace (GCRA's "TAT")


class RateLimiter:
    """Token buckets keyed by API operation name (e.g. ``"ListThings"``).

    Each bucket refills at the operation's quota and holds at most one second's worth of tokens
    (so a burst never exceeds the quota within any one-second window by more than one second's
    allowance). Operations without a quota are not limited.

    Implemented as the generic cell rate algorithm: a token bucket kept as one timestamp, so an
    ``acquire`` *reserves* its slot under a lock and sleeps outside it. Concurrent callers of
    one operation get distinct slots at the quota's spacing; callers of different operations
    never wait for each other.

    ``scale`` multiplies every quota (``0.5`` leaves half the quota to other clients);
    ``overrides`` sets absolute rates per operation after scaling. A rate of ``0`` or less
    means "unlimited" for that operation.
    """

    def __init__(
        self,
        quotas: Mapping[str, float] | None = None,
        *,
        scale: float = 1.0,
        overrides: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        rates = {op: rate * scale for op, rate in (quotas or DEFAULT_QUOTAS).items()}
        rates.update(overrides or {})
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        self._rates = {op: rate for op, rate in rates.items() if rate > 0}
        self._buckets = {
            op: _Bucket(interval=1.0 / rate, tolerance=(max(rate, 1.0) - 1.0) / rate, next_at=now)
            for op, rate in self._rates.items()
        }
        self.waited_seconds = 0.0

    @classmethod
    def unlimited(cls) -> RateLimiter:
        """A limiter that never waits (tests, moto)."""
        return cls(quotas={})

    def now(self) -> float:
        """The limiter's clock (a ``VirtualClock``'s reading in the caller's context)."""
        return self._clock()

    def wait_until(self, moment: float) -> None:
        """Sleep until ``moment`` on the limiter's clock (already past: at once)."""
        left = moment - self._clock()
        if left > 0:
            self._sleep(left)

    def rate(self, operation: str) -> float | None:
        """The operation's rate in calls per second, or ``None`` when it is not limited."""
        return self._rates.get(operation)

    def acquire(self, operation: str) -> float:
        """Take one token for ``operation``, sleeping until one is available; returns the wait."""
        bucket = self._buckets.get(operation)
        if bucket is None:
            return 0.0
        with self._lock:
            now = self._clock()
            due = max(bucket.next_at, now)
            wait = max(0.0, due - bucket.tolerance - now)
            bucket.next_at = due + bucket.interval
            self.waited_seconds += wait
        if wait > 0:
            self._sleep(wait)
        return wait


class VirtualClock:
    """Time that passes only when a caller sleeps, kept per line of work (tests, benchmarks).

    Each context (``contextvars``: a thread's, or a task run in a copy of its submitter's
    context, as ``reconcile.snapshot`` runs its listings) has its own reading, starting from its
    submitter's; ``sleep`` advances only the caller's. Concurrent listings thus each see the time
    their own quota imposes, and ``elapsed`` (the latest reading any context reached) is the
    wall time of the whole run with zero network latency.

    A task handed to a pool starts at its submitter's reading, whether or not a thread is free:
    a pool's bound on concurrency is not modelled (its figures are optimistic), a chain of calls
    one after another is.
    """

    def __init__(self) -> None:
        self._now: contextvars.ContextVar[float] = contextvars.ContextVar(
            "virtual_now", default=0.0
        )
        self._lock = threading.Lock()
        self.elapsed = 0.0

    def __call__(self) -> float:
        return self._now.get()

    def sleep(self, seconds: float) -> None:
        now = self._now.get() + seconds
        self._now.set(now)
        with self._lock:
            self.elapsed = max(self.elapsed, now)
