"""An account played by the sandbox: its endpoint, boto3's normal credential chain, and its
pipeline pumped by a thread as AWS would run a deployed one. Only time is simulated: AWS's
5-minute waits are skipped by telling the pump that the time has passed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conformance.target import Target, account_client_factory
from sandbox.emulation import JsonDict
from sandbox.stack import Sandbox

SOURCE, DESTINATION = "us-east-1", "eu-west-1"


class Pump:
    """The sandbox's pipeline running on its own, as AWS runs a deployed one."""

    def __init__(self, box: Sandbox) -> None:
        self._box = box
        self._stop = threading.Event()
        self.skipped = 0.0
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._box.drain(timeout=180)
                self._box.run_pending(now=datetime.now(UTC) + timedelta(seconds=self.skipped))
            except BaseException as error:  # reported by the fixture, never swallowed
                self.errors.append(error)
                return
            self._stop.wait(0.05)  # pacing the pump, not waiting for a condition

    def fast_forward(self, seconds: float) -> None:
        self.skipped += seconds
        # AWS's waits jump on; event timestamps stay on persist's (wall) clock, as on the
        # sandbox target (conformance.target.sandbox_target).
        self._box.skip(seconds)

    def __enter__(self) -> Pump:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


class LaggingPipeline:
    """An account's pipeline that is always behind: each source-region event reaches persist
    ``lag`` seconds after the call that made it, on a clock that moves only while the caller
    waits (``Target.sleep``). Whatever a caller does without waiting, the pipeline has not seen
    yet; a caller that waits on a condition sees the pipeline's work once it is done. AWS bounds
    no delivery time (CloudTrail's events reach EventBridge "on a best effort basis":
    https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-cloudtrail.html; registry
    events at least once, in no guaranteed order: ``sandbox.emulation.Delivery``): this is one
    such latency, made exact."""

    def __init__(self, box: Sandbox, lag: float) -> None:
        self._box = box
        self.lag = lag
        self.now = 0.0  # the waiting caller's clock (``Target.clock``)
        self.skipped = 0.0  # AWS's waits skipped (``Target.fast_forward``)
        self._held: list[tuple[float, JsonDict]] = []  # (made at, event), in publication order

    def sleep(self, seconds: float) -> None:
        """Time passes for the caller: the events that are ``lag`` old by then are carried."""
        outbox = self._box.outbox(self._box.source_region)
        self._held += [(self.now, event) for event in outbox.take()]
        self.now += seconds
        for _, event in [h for h in self._held if h[0] + self.lag <= self.now]:
            outbox.put(event)
        self._held = [h for h in self._held if h[0] + self.lag > self.now]
        self._box.drain(timeout=180)
        self._box.run_pending(now=datetime.now(UTC) + timedelta(seconds=self.skipped))
        self._box.drain(timeout=180)

    def finish(self) -> None:
        """Let the pipeline carry everything made so far (what it writes then was left for it)."""
        self.sleep(self.lag)

    def fast_forward(self, seconds: float) -> None:
        self.skipped += seconds
        self._box.skip(seconds)


def _account_target(box: Sandbox, **timing: Any) -> Target:
    """The target built as on an account: boto3's credential chain, the sandbox's endpoint."""
    for region in (SOURCE, DESTINATION):
        box.iot(region).update_indexing_configuration(
            thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"}
        )
    return Target(
        kind="aws",
        source_region=SOURCE,
        destination_region=DESTINATION,
        state_machine_arn=box.state_machine_arn,
        state_table=box.table_name,
        make_client=account_client_factory(),  # boto3's chain, as on an account
        **timing,
    )


@pytest.fixture
def lagging_account() -> Iterator[tuple[LaggingPipeline, Target]]:
    """An account whose pipeline lags 5 s behind every call, progressing only while the caller
    waits (``LaggingPipeline``); polls every second of that clock."""
    with Sandbox(SOURCE, DESTINATION) as box:
        pipeline = LaggingPipeline(box, lag=5.0)
        target = _account_target(
            box,
            clock=lambda: pipeline.now,
            sleep=pipeline.sleep,
            poll_interval=1.0,
            converge_timeout=60.0,
            type_delete_timeout=60.0,
            fast_forward=pipeline.fast_forward,
            now=lambda: time.time() + pipeline.skipped,
        )
        yield pipeline, target


@pytest.fixture
def account() -> Iterator[tuple[Pump, Target]]:
    with Sandbox(SOURCE, DESTINATION) as box, Pump(box) as pump:
        target = _account_target(
            box,
            poll_interval=0.05,
            converge_timeout=180.0,
            type_delete_timeout=180.0,
            fast_forward=pump.fast_forward,
            now=lambda: time.time() + pump.skipped,
        )
        yield pump, target
        assert pump.errors == []
