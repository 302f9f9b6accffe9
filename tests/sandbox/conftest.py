"""A module-scoped sandbox whose replicator is a recording stand-in (not the pipeline's)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.provision import SandboxResources
from sandbox.stack import Sandbox

SOURCE = "us-east-1"
DESTINATION = "eu-west-1"


class RecordingReplicator:
    """Stands in for ``pipeline.replicate``: records every batch, fails what it is told to."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail_keys: dict[str, int] = {}  # partition key -> how many more times to fail

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        records = event["Records"]
        self.batches.append(records)
        failures = []
        for record in records:
            key = record["dynamodb"]["Keys"]["pk"]["S"]
            if self.fail_keys.get(key, 0) > 0:
                self.fail_keys[key] -= 1
                failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
        return {"batchItemFailures": failures}


@pytest.fixture(scope="module")
def recorder() -> RecordingReplicator:
    return RecordingReplicator()


@pytest.fixture(scope="module")
def started_sandbox(recorder: RecordingReplicator) -> Iterator[Sandbox]:
    def factory(resources: SandboxResources) -> RecordingReplicator:
        return recorder

    with Sandbox(SOURCE, DESTINATION, replicator=factory) as box:
        yield box


@pytest.fixture
def box(started_sandbox: Sandbox, recorder: RecordingReplicator) -> Sandbox:
    """The module's sandbox, reset to empty for this test."""
    started_sandbox.reset()
    recorder.batches.clear()
    recorder.fail_keys.clear()
    return started_sandbox
