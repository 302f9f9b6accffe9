"""Progress displays: what a terminal and a log show, and when progress is shown at all."""

from __future__ import annotations

import io

from rich.console import Console

from reconcile.progress import LogProgress, TerminalProgress, progress_wanted
from reconcile.snapshot import ListingStatus


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def status(
    items: int, *, calls: int = 1, done: bool = False, eta: float | None = None
) -> ListingStatus:
    return ListingStatus("us-east-1", "thing", items, calls, done, 0.0 if done else eta)


def test_progress_is_shown_only_on_a_terminal_and_never_when_quiet() -> None:
    assert progress_wanted(False, Tty())
    assert not progress_wanted(True, Tty())
    assert not progress_wanted(False, io.StringIO())  # piped


def test_log_progress_throttles_lines_but_always_logs_the_end() -> None:
    clock, lines = Ticker(), []
    log = LogProgress(lines.append, every_seconds=30, clock=clock)

    log(status(0, calls=0))
    clock.now = 10.0
    log(status(2500, calls=10, eta=30.0))  # within 30 s of the last line: dropped
    clock.now = 40.0
    log(status(10_000, calls=40, eta=6.0))
    clock.now = 41.0
    log(status(10_000, calls=41, done=True))

    assert lines == [
        "snapshot us-east-1 thing: 0 calls  0 seen  -  eta ?",
        "snapshot us-east-1 thing: 40 calls  10,000 seen  250/s  eta 6.0s",
        "snapshot us-east-1 thing: 41 calls  10,000 seen  244/s  done in 41.0s",
    ]


def test_terminal_progress_shows_each_family_with_pages_items_rate_and_eta() -> None:
    out = Tty()
    console = Console(file=out, force_terminal=True, width=120)
    clock = Ticker()
    with TerminalProgress(console, clock) as show:
        show(status(0, calls=0))
        clock.now = 4.0
        show(status(1000, calls=4, eta=400.0))
        show(ListingStatus("eu-west-1", "membership", 250, 1, False, 2.0))
    text = out.getvalue()
    assert "snapshot us-east-1 thing" in text
    assert "4 calls  1,000 seen  250/s  eta 6m 40s" in text
    assert "snapshot eu-west-1 membership" in text
