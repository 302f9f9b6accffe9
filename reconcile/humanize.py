"""Durations as people write them: ``0.4s``, ``3m 47s``, ``2h 05m``, ``3d 4h``.

One place for the console (``sandbox up``'s rounds) and the notebooks (time to repair).
"""

from __future__ import annotations

import math

_UNITS = ((86_400, "days"), (3_600, "hours"), (60, "minutes"), (1, "seconds"))


def format_duration(seconds: float) -> str:
    """Two units at most, the larger first; below a minute, tenths of a second."""
    if math.isnan(seconds):
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 3_600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86_400:
        return f"{whole // 3_600}h {whole % 3_600 // 60:02d}m"
    return f"{whole // 86_400}d {whole % 86_400 // 3_600}h"


def fitting_unit(largest_seconds: float) -> tuple[int, str]:
    """The unit an axis of durations up to ``largest_seconds`` reads best in: (seconds per
    unit, name). At least two of the unit, so an axis never shows only fractions."""
    for size, name in _UNITS:
        if largest_seconds >= 2 * size:
            return size, name
    return 1, "seconds"
