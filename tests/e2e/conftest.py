"""A started two-region sandbox running the real pipeline handlers, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.stack import Sandbox

SOURCE = "us-east-1"
DESTINATION = "eu-west-1"


@pytest.fixture(scope="module")
def started_sandbox() -> Iterator[Sandbox]:
    with Sandbox(SOURCE, DESTINATION) as box:
        yield box


@pytest.fixture
def sandbox(started_sandbox: Sandbox) -> Sandbox:
    """The module's sandbox, emptied and with default (in-order, once) delivery."""
    started_sandbox.reset()
    return started_sandbox
