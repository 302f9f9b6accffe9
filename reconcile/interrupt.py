"""Ending promptly when interrupted: Ctrl-C or SIGTERM, whatever the network is doing.

Python delivers a signal to the main thread only, as ``KeyboardInterrupt`` (SIGINT) or, with
``sigterm_interrupts``, ``Terminated`` (SIGTERM: a service manager, ``kill``, ECS stopping a
task). Work the main thread waits for in other threads (both regions' snapshots, their listing
families) is then abandoned, never waited for: ``at_once`` returns at the interrupt, and
``exit_now`` ends the process without joining threads that may sit in a network call for as long
as botocore's read timeout times its attempts (60 s each, "read_timeout", botocore Config
reference, https://docs.aws.amazon.com/botocore/latest/reference/config.html). Those threads
only read; what was emitted is counted by the main thread before it exits.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from types import FrameType
from typing import NoReturn, TypeVar

_T = TypeVar("_T")
_WAKE_SECONDS = 0.1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C, so it ends the same way (with the same
    how-far line and exit code)."""

    def __str__(self) -> str:
        return "terminated (SIGTERM)"


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Inside, SIGTERM raises ``Terminated`` in the main thread (the default would end the
    process on the spot: no how-far line, no lock released)."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` now: flush what was printed, and do not wait for worker
    threads still blocked in a network call (``os._exit`` skips the interpreter's join of
    every thread pool's workers)."""
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe or stream: nothing more to say
            stream.flush()
    os._exit(code)


def at_once(*calls: Callable[[], _T], name: str = "worker") -> list[_T]:
    """Run ``calls`` in threads at once; their results in order. The first failure (or an
    interrupt in the caller) returns at once, abandoning the others rather than waiting for them
    (``concurrent.futures``' ``with`` block would join them)."""
    pool = ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix=name)
    try:
        futures = [pool.submit(call) for call in calls]
        # Waits in short steps: the kernel may deliver Ctrl-C to any thread, and then only a
        # main thread that wakes up runs Python's handler (an untimed wait would sleep on;
        # "Signals and threads", https://docs.python.org/3/library/signal.html).
        while wait(futures, timeout=_WAKE_SECONDS, return_when=FIRST_EXCEPTION).not_done:
            if any(future.done() and future.exception() for future in futures):
                break
        for future in futures:
            error = future.exception() if future.done() else None
            if error is not None:
                raise error
        results = [future.result() for future in futures]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results
