"""Functional tests of the pipeline on moto (in-process), two regions.

The state table lives in the destination region only: persist writes straight into it, which is
what Global Table replication delivers there (the sandbox tests cover replication itself).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from pipeline.ingest import admit, persist_change
from pipeline.statetable import PersistResult
from sandbox.inprocess import DST, SRC, TABLE, LocalPipeline
from tests.conftest import RegistryView

FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"


def fixture_event(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


class Pipeline(LocalPipeline):
    """persist -> (replicated) state table -> stream -> event source mapping -> replicator, all
    on moto (``sandbox.inprocess``)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.dst = RegistryView(self.destination)

    def persist(self, event: dict[str, Any]) -> PersistResult:
        return persist_change(self.table, admit(event, region=SRC))

    def replicate(self) -> int:
        """Hand the new stream records to the replicator, each batch once, as the event source
        mapping does; returns how many batch item failures it reported."""
        return self.deliver().batch_item_failures


@pytest.fixture
def aws_env(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.setenv("AWS_REGION", DST)
    monkeypatch.setenv("STATE_TABLE", TABLE)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "IotRegistryCrr")
    with mock_aws():
        yield


@pytest.fixture
def pipeline(aws_env: None) -> Pipeline:
    return Pipeline()
