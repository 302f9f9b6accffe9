"""An account played by the sandbox: its endpoint, boto3's normal credential chain, and its
pipeline pumped by a thread as AWS would run a deployed one. Only time is simulated: AWS's
5-minute waits are skipped by telling the pump that the time has passed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from conformance.target import Target, account_client_factory
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


@pytest.fixture
def account() -> Iterator[tuple[Pump, Target]]:
    with Sandbox(SOURCE, DESTINATION) as box, Pump(box) as pump:
        for region in (SOURCE, DESTINATION):
            box.iot(region).update_indexing_configuration(
                thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"}
            )
        target = Target(
            kind="aws",
            source_region=SOURCE,
            destination_region=DESTINATION,
            state_machine_arn=box.state_machine_arn,
            state_table=box.table_name,
            make_client=account_client_factory(),  # boto3's chain, as on an account
            poll_interval=0.05,
            converge_timeout=180.0,
            type_delete_timeout=180.0,
            fast_forward=pump.fast_forward,
            now=lambda: time.time() + pump.skipped,
        )
        yield pump, target
        assert pump.errors == []
