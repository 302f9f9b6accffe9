"""The state table adapter on moto: batched apply equals one-by-one apply, even under races."""

from __future__ import annotations

from typing import Any

from pipeline.kinds.thing_type import PendingTypeDeletion
from pipeline.model import Change, EntityKind, Origin
from pipeline.state import Outcome
from tests.pipeline.conftest import SRC, Pipeline


def change(name: str, version: int, ts: int, value: str, *, event_id: str | None = None) -> Change:
    return Change(
        EntityKind.THING,
        name,
        Origin(SRC, ts, event_id or f"{name}-{version}", f"id-{name}", version),
        {"thing_type": None, "attributes": {"v": value}},
    )


def test_apply_many_matches_apply_one_by_one(pipeline: Pipeline) -> None:
    # GIVEN changes with a stale one, a duplicate and a repeated key in the same batch
    changes = [
        change("a", 2, 2000, "2"),
        change("a", 1, 1000, "1"),  # stale
        change("b", 1, 1000, "1"),
        change("b", 1, 1000, "1"),  # duplicate
        change("a", 3, 3000, "3"),
    ] + [change(f"n{i}", 1, 1000, "x") for i in range(150)]
    outcomes = [r.outcome for r in pipeline.table.apply_many(changes)]
    assert outcomes[:5] == [
        Outcome.APPLIED,
        Outcome.STALE,
        Outcome.APPLIED,
        Outcome.DUPLICATE,
        Outcome.APPLIED,
    ]
    assert outcomes[5:] == [Outcome.APPLIED] * 150
    item = pipeline.table.get(EntityKind.THING, "a")
    assert item is not None and item.state["attributes"] == {"v": "3"} and item.rev == 2


def test_apply_many_falls_back_when_another_writer_wins_the_race(pipeline: Pipeline) -> None:
    # GIVEN another writer stores a newer version right after our batched read
    ddb = pipeline.table._ddb
    raced: list[bool] = []

    def other_writer(**_: Any) -> None:
        if not raced:
            raced.append(True)
            pipeline.table.apply(change("a", 5, 5000, "5"))

    ddb.meta.events.register("after-call.dynamodb.BatchGetItem", other_writer)
    try:
        results = pipeline.table.apply_many([change("a", 4, 4000, "4")])
    finally:
        ddb.meta.events.unregister("after-call.dynamodb.BatchGetItem", other_writer)
    # THEN our conditional write failed, we decided again on the fresh item: ours is stale
    assert raced and results[0].outcome is Outcome.STALE
    item = pipeline.table.get(EntityKind.THING, "a")
    assert item is not None and item.state["attributes"] == {"v": "5"}


def test_prefetch_serves_reads_and_writes_invalidate_it(pipeline: Pipeline) -> None:
    pipeline.table.apply(change("a", 1, 1000, "1"))
    pipeline.table.prefetch(["THING#a", "THING#missing"])
    calls: list[str] = []
    ddb = pipeline.table._ddb

    def count(event_name: str, **_: Any) -> None:
        calls.append(event_name)

    ddb.meta.events.register("before-call.dynamodb.GetItem", count)
    try:
        assert pipeline.table.get(EntityKind.THING, "a") is not None
        assert pipeline.table.get(EntityKind.THING, "missing") is None
        assert calls == []
        pipeline.table.apply(change("a", 2, 2000, "2"))  # reads, then writes: cache dropped
        item = pipeline.table.get(EntityKind.THING, "a")
    finally:
        ddb.meta.events.unregister("before-call.dynamodb.GetItem", count)
    assert item is not None and item.state["attributes"] == {"v": "2"}


def test_parallel_scan_reads_every_entity_once_and_skips_bookkeeping(pipeline: Pipeline) -> None:
    # GIVEN 60 things, one deleted (a tombstone), and a bookkeeping item
    pipeline.table.apply_many([change(f"t{i:02d}", 1, 1000, str(i)) for i in range(60)])
    deletion = Change(EntityKind.THING, "t00", Origin(SRC, 2000, "del", "id-t00", 2), deleted=True)
    pipeline.table.apply(deletion)
    pipeline.table.put_record(PendingTypeDeletion(SRC, "x", delete_after=1, recreate=False))

    for segments in (1, 4):
        items = pipeline.table.scan_entities(segments)
        # THEN every entity comes back exactly once, the tombstone as deleted, no bookkeeping
        assert sorted(item.name for item in items) == [f"t{i:02d}" for i in range(60)]
        by_name = {item.name: item for item in items}
        assert by_name["t00"].deleted and by_name["t07"].state["attributes"] == {"v": "7"}
