"""Listing in parts: a kind's listing as filtered listings at once (reconcile.partition)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from pipeline.model import EntityKind
from reconcile.inventory import Inventory
from reconcile.partition import (
    PartitionRefusedError,
    listed_in_parts,
    mapped_in_order,
    parse_partitions,
)
from reconcile.ratelimit import RateLimiter, VirtualClock
from reconcile.snapshot import Snapshot, take_snapshot

SRC = "us-east-1"
Snap = Callable[..., Snapshot]


def typed_fleet(iot: Any, per_type: int) -> None:
    """Things of 2 types, ``per_type`` each, in a region whose thing index is on (listing by
    type first asks it whether a thing has no type)."""
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    for type_name in ("sensor", "gateway"):
        iot.create_thing_type(thingTypeName=type_name)
        for i in range(per_type):
            iot.create_thing(
                thingName=f"{type_name}-{i:02d}",
                thingTypeName=type_name,
                attributePayload={"attributes": {"n": str(i)}},
            )


def with_latency(iot: Any, clock: VirtualClock, seconds: float) -> Any:
    """Every IoT call takes ``seconds`` of the caller's virtual time to return."""
    iot.meta.events.register("after-call.iot.*", lambda **_: clock.sleep(seconds))
    return iot


def test_by_type_lists_the_same_snapshot_one_listing_per_type(
    source_iot: Any, snapshot_of: Snap
) -> None:
    # GIVEN a fleet whose every thing has a type (2 types, 5 things each), pages of 2
    typed_fleet(source_iot, per_type=5)
    whole = Inventory(source_iot, RateLimiter.unlimited(), page_size=2)
    parts = Inventory(
        source_iot,
        RateLimiter.unlimited(),
        page_size=2,
        partitions={EntityKind.THING: "type"},
    )

    # WHEN both list it
    expected, got = take_snapshot(whole, SRC), take_snapshot(parts, SRC)

    # THEN the things are the same; ListThings pages per type (3 + 3), ListThingTypes once more,
    # and the thing index was asked once whether a thing has no type
    assert got.things.equals(expected.things)
    assert got.fingerprint() == expected.fingerprint()
    assert parts.calls["ListThings"] == 6
    assert whole.calls["ListThings"] == 5
    assert parts.calls["ListThingTypes"] == whole.calls["ListThingTypes"] + 1
    assert (parts.calls["GetIndexingConfiguration"], parts.calls["SearchIndex"]) == (1, 1)
    assert whole.calls["SearchIndex"] == 0


def test_by_type_is_refused_where_a_thing_has_no_type(source_iot: Any) -> None:
    # GIVEN a typed fleet and one thing without a type, which no ListThings filter selects
    typed_fleet(source_iot, per_type=2)
    source_iot.create_thing(thingName="untyped-1")
    parts = Inventory(source_iot, RateLimiter.unlimited(), partitions={EntityKind.THING: "type"})

    # WHEN it is listed in parts by type  THEN the snapshot is refused, naming the thing, rather
    # than taken without it (a thing in neither snapshot but in the state table is tombstoned)
    with pytest.raises(PartitionRefusedError, match=r"thing 'untyped-1' has no type") as refused:
        take_snapshot(parts, SRC)
    assert "every thing has a thing type" in str(refused.value)
    assert parts.calls["ListThings"] == 0  # refused before listing


def test_by_type_is_refused_where_nothing_can_tell(source_iot: Any) -> None:
    # GIVEN a typed fleet in a region whose thing index is off (as fleet indexing starts)
    typed_fleet(source_iot, per_type=2)
    source_iot.update_indexing_configuration(
        thingIndexingConfiguration={"thingIndexingMode": "OFF"}
    )
    parts = Inventory(source_iot, RateLimiter.unlimited(), partitions={EntityKind.THING: "type"})

    # THEN listing by type is refused, saying how to turn the index on
    with pytest.raises(PartitionRefusedError, match=r"fleet indexing of things is off.*REGISTRY"):
        take_snapshot(parts, SRC)
    assert parts.calls["SearchIndex"] == 0  # AWS refuses SearchIndex without the index


def test_partitions_are_parsed_from_kind_equals_partition() -> None:
    assert parse_partitions([]) == {}
    assert parse_partitions(["thing=type", " thing = type "]) == {EntityKind.THING: "type"}
    for value, why in [
        ("thing=colour", "thing has no listing partition 'colour'"),
        ("thing", "expected KIND=PARTITION"),
        ("gizmo=type", "'gizmo' is not a kind that lists in parts"),
        ("policy=type", "'policy' is not a kind that lists in parts"),
    ]:
        with pytest.raises(ValueError, match=r"^(.*)$") as refused:
            parse_partitions([value])
        assert str(refused.value) == f"{value!r}: {why} (choices: thing=type)"


def test_parts_overlap_their_round_trips(source_iot: Any) -> None:
    # GIVEN 2 types of 10 things, pages of 1, and 200 ms for every call to return
    typed_fleet(source_iot, per_type=10)

    def elapsed(partitions: dict[EntityKind, str]) -> float:
        clock = VirtualClock()
        client = with_latency(boto3.client("iot", region_name=SRC), clock, 0.2)
        inventory = Inventory(client, RateLimiter.unlimited(), page_size=1, partitions=partitions)
        assert len(list(inventory.entities(EntityKind.THING))) == 20
        return clock.elapsed

    # THEN one listing waits for each of its 20 pages in turn (4 s: 5 calls/s, half ListThings'
    # 10 TPS); two parts at once (after the thing index's 2 answers and the 2 pages of
    # ListThingTypes) take 10 pages' time each
    assert elapsed({}) == pytest.approx(20 * 0.2)
    assert elapsed({EntityKind.THING: "type"}) == pytest.approx(2 * 0.2 + 2 * 0.2 + 10 * 0.2)


def test_an_unknown_partition_is_refused_naming_those_offered(source_iot: Any) -> None:
    with pytest.raises(ValueError, match=r"thing has no listing partition 'name' \(it has: type\)"):
        Inventory(source_iot, partitions={EntityKind.THING: "name"})
    with pytest.raises(ValueError, match=r"it has: none"):
        Inventory(source_iot, partitions={EntityKind.POLICY: "type"})


def test_a_name_listed_by_two_parts_is_yielded_once() -> None:
    listings = {"a": ["x", "y"], "b": ["y", "z"]}

    def lister(part: str) -> Iterator[str]:
        yield from listings[part]

    got = list(
        listed_in_parts(
            lister,
            [{"part": "a"}, {"part": "b"}],
            workers=2,
            name_of=str,
            pace=RateLimiter.unlimited(),
        )
    )

    assert got == ["x", "y", "z"]


def test_describes_overlap_records_in_listing_order(source_iot: Any) -> None:
    # GIVEN 8 thing groups and 200 ms for every call to return
    for i in range(8):
        source_iot.create_thing_group(thingGroupName=f"g{i}")
    clock = VirtualClock()
    client = with_latency(boto3.client("iot", region_name=SRC), clock, 0.2)
    inventory = Inventory(client, RateLimiter(quotas={}, clock=clock, sleep=clock.sleep))

    records = list(inventory.entities(EntityKind.THING_GROUP))

    # THEN the records come in listing order, and the describes overlapped (the virtual clock
    # does not bound a pool: each starts when it is handed over, after the one page): 0.4 s,
    # not 1.8 s one after another; the consumer's clock waited for the last one
    listed = [g["groupName"] for g in source_iot.list_thing_groups()["thingGroups"]]
    assert [r["name"] for r in records] == listed
    assert clock.elapsed == pytest.approx(0.2 + 0.2)
    assert clock() == pytest.approx(clock.elapsed)


def test_mapped_in_order_keeps_the_order_and_stops_with_its_consumer() -> None:
    pace = RateLimiter.unlimited()
    assert list(mapped_in_order(lambda n: n * n, range(20), workers=3, pace=pace)) == [
        n * n for n in range(20)
    ]
    started: list[int] = []

    def square(n: int) -> int:
        started.append(n)
        return n * n

    taken = mapped_in_order(square, range(1000), workers=2, pace=pace)
    assert [next(taken) for _ in range(3)] == [0, 1, 4]
    taken.close()
    assert len(started) < 10  # at most 2 x workers ahead, the rest cancelled
