"""Showing a snapshot's progress: bars on a terminal (rich), log lines in a job.

``reconcile.snapshot.take_snapshot`` reports a ``ListingStatus`` per listing family as pages
arrive (from its worker threads); the two displays here turn them into output. Both are
thread-safe. The CLI shows ``TerminalProgress`` only when stdout is a terminal and ``--quiet``
is not given (``progress_wanted``); the nightly job logs through ``LogProgress``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn

from reconcile.humanize import format_duration
from reconcile.snapshot import ListingStatus


def progress_wanted(quiet: bool, stream: IO[str] | None = None) -> bool:
    """Progress only for a person watching: stdout is a terminal and ``--quiet`` was not given."""
    return not quiet and (stream or sys.stdout).isatty()


class _Rates:
    """Items per second per (region, family), since the family's first report."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._started: dict[tuple[str, str], float] = {}

    def describe(self, status: ListingStatus) -> str:
        """``pages/calls, items, rate, eta`` as one short text."""
        key = (status.region, status.family)
        now = self._clock()
        started = self._started.setdefault(key, now)
        elapsed = now - started
        rate = f"{status.items / elapsed:,.0f}/s" if elapsed > 0 and status.items else "-"
        if status.done:
            left = f"done in {format_duration(elapsed)}"
        elif status.eta_seconds is None:
            left = "eta ?"
        else:
            left = f"eta {format_duration(status.eta_seconds)}"
        return f"{status.calls:,} calls  {status.items:,} seen  {rate}  {left}"


class TerminalProgress:
    """One live line per region and listing family on stderr (rich), while a ``with`` lasts."""

    def __init__(
        self, console: Console | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._progress = Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description:<28}"),
            TextColumn("{task.fields[detail]}"),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[tuple[str, str], TaskID] = {}
        self._rates = _Rates(clock)
        self._lock = threading.Lock()

    def __enter__(self) -> TerminalProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def __call__(self, status: ListingStatus) -> None:
        key = (status.region, status.family)
        with self._lock:
            detail = self._rates.describe(status)
            task = self._tasks.get(key)
            if task is None:
                task = self._progress.add_task(
                    f"snapshot {status.region} {status.family}", total=None, detail=detail
                )
                self._tasks[key] = task
            self._progress.update(task, detail=detail)
            if status.done:
                self._progress.update(task, total=1, completed=1)


class LogProgress:
    """Progress as log lines: one per family at most every ``every_seconds``, and when done."""

    def __init__(
        self,
        log: Callable[[str], None],
        every_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._every = every_seconds
        self._clock = clock
        self._rates = _Rates(clock)
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def __call__(self, status: ListingStatus) -> None:
        key = (status.region, status.family)
        with self._lock:
            detail = self._rates.describe(status)
            now = self._clock()
            last = self._last.get(key)
            if not status.done and last is not None and now - last < self._every:
                return
            self._last[key] = now
        self._log(f"snapshot {status.region} {status.family}: {detail}")
