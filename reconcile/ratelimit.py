"""Client-side rate limiting for the snapshot's read calls: one token bucket per IoT API.

Sits under ``reconcile.inventory``: every List/Describe call the snapshot makes first takes a
token here, so a snapshot of a large fleet stays under the account's per-API quotas instead of
relying on throttling plus botocore retries (which would also starve the replicator and other
tools sharing the quota). Defaults are AWS IoT's documented default TPS quotas
(https://docs.aws.amazon.com/general/latest/gr/iot-core.html#throttling-limits). The clock and
sleep are parameters, so tests run a fake clock and never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Default per-account, per-region TPS quotas for the calls a snapshot makes (Service Quotas,
# iotcore). Adjustable in AWS, hence ``scale`` and ``overrides`` below.
DEFAULT_QUOTAS: dict[str, float] = {
    "ListThings": 10,
    "ListThingTypes": 10,
    "ListThingGroups": 10,
    "DescribeThingGroup": 100,
    "ListThingsInThingGroup": 25,
    "ListBillingGroups": 10,
    "DescribeBillingGroup": 100,
    "ListThingsInBillingGroup": 25,
}

_EPSILON = 1e-9


@dataclass
class _Bucket:
    rate: float  # tokens per second
    capacity: float  # burst size
    tokens: float
    updated: float  # clock reading of the last refill


class RateLimiter:
    """Token buckets keyed by API operation name (e.g. ``"ListThings"``).

    Each bucket refills at the operation's quota and holds at most one second's worth of tokens
    (so a burst never exceeds the quota within any one-second window by more than one second's
    allowance). Operations without a quota are not limited.

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
        now = clock()
        self._buckets = {
            op: _Bucket(rate=rate, capacity=max(rate, 1.0), tokens=max(rate, 1.0), updated=now)
            for op, rate in rates.items()
            if rate > 0
        }
        self.waited_seconds = 0.0

    @classmethod
    def unlimited(cls) -> RateLimiter:
        """A limiter that never waits (tests, moto)."""
        return cls(quotas={})

    def rate(self, operation: str) -> float | None:
        """The operation's rate in calls per second, or ``None`` when it is not limited."""
        bucket = self._buckets.get(operation)
        return bucket.rate if bucket else None

    def acquire(self, operation: str) -> float:
        """Take one token for ``operation``, sleeping until one is available; returns the wait."""
        bucket = self._buckets.get(operation)
        if bucket is None:
            return 0.0
        waited = 0.0
        while True:
            now = self._clock()
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(bucket.capacity, bucket.tokens + elapsed * bucket.rate)
            bucket.updated = now
            # The tolerance absorbs float rounding: without it a bucket at 0.9999999999 asks
            # for a sleep too short to move the clock, forever.
            if bucket.tokens >= 1.0 - _EPSILON:
                bucket.tokens = max(0.0, bucket.tokens - 1.0)
                self.waited_seconds += waited
                return waited
            delay = (1.0 - bucket.tokens) / bucket.rate
            self._sleep(delay)
            waited += delay
