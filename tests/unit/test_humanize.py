"""Durations and axis units people read without arithmetic."""

from __future__ import annotations

import pytest

from reconcile.humanize import fitting_unit, format_duration


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.42, "0.4s"),
        (59.94, "59.9s"),
        (227, "3m 47s"),
        (3_600, "1h 00m"),
        (7_530, "2h 05m"),
        (86_400 + 4 * 3_600, "1d 4h"),
    ],
)
def test_durations_read_like_a_person_writes_them(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


@pytest.mark.parametrize(
    ("largest", "unit"),
    [
        (30, "seconds"),
        (300, "minutes"),
        (3 * 3_600, "hours"),
        (86_400, "hours"),
        (5 * 86_400, "days"),
    ],
)
def test_an_axis_of_durations_gets_a_unit_that_fits(largest: float, unit: str) -> None:
    assert fitting_unit(largest)[1] == unit
