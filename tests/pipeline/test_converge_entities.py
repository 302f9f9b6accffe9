"""The replicator converges every kind of the entity table (``pipeline.model.ENTITIES``): a kind
added to the table without its converge handler fails here rather than at its first event."""

from __future__ import annotations

from pipeline.converge import Converger
from pipeline.iot import IotRegistry
from pipeline.model import ENTITIES
from tests.pipeline.conftest import DST, Pipeline


def test_every_kind_has_a_converge_handler(pipeline: Pipeline) -> None:
    converger = Converger(
        IotRegistry(pipeline.destination), pipeline.table, region=DST, clock=lambda: 0
    )
    assert set(converger.handlers()) == set(ENTITIES)
