"""The wall clock, in epoch milliseconds: the unit of registry event timestamps, state-table
items, snapshots, plans and runs.

The one place the process reads the time of day for them; code that must be testable takes a
``Clock`` parameter defaulting to ``now_ms`` (tests and benchmarks pass their own). Clocks in
epoch seconds (the converger's, a lease's: ``time.time``) convert with ``to_ms``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]  # epoch milliseconds


def now_ms() -> int:
    """Now, in epoch milliseconds (integer nanoseconds divided: no float rounding)."""
    return time.time_ns() // 1_000_000


def to_ms(epoch_seconds: float) -> int:
    """Epoch seconds (a ``time.time``-style clock) in epoch milliseconds."""
    return int(epoch_seconds * 1000)
