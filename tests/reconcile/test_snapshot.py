"""Snapshot: the inventory on moto, restarts, call counts, rate limiting, Parquet round trip."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from pipeline.errors import AwsRequestError, AwsServiceError, ThrottledError
from pipeline.model import EntityKind
from reconcile.inventory import Inventory, ListingRestartError
from reconcile.ratelimit import DEFAULT_QUOTAS, RateLimiter, VirtualClock
from reconcile.snapshot import (
    SCHEMAS,
    ListingStatus,
    Snapshot,
    SnapshotFileError,
    desired_fields,
    take_snapshot,
)

SRC = "us-east-1"
Seed = Callable[..., None]
Snap = Callable[..., Snapshot]


class FakeClock:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class WithoutListedBillingGroup:
    """The moto client, but ListThings without ``billingGroupName`` (as in AWS)."""

    def __init__(self, iot: Any) -> None:
        self._iot = iot

    def __getattr__(self, name: str) -> Any:
        return getattr(self._iot, name)

    def list_things(self, **params: Any) -> Any:
        page = self._iot.list_things(**params)
        for thing in page["things"]:
            thing.pop("billingGroupName", None)
        return page


def client_error(code: str, status: int, operation: str = "ListThings") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": "nope"},
            "ResponseMetadata": {"HTTPStatusCode": status},  # type: ignore[typeddict-item]
        },
        operation,
    )


class FailingIot:
    """A client whose listings fail with a given error (optionally only with a token)."""

    def __init__(self, error: ClientError, *, only_with_token: bool = False) -> None:
        self.error = error
        self.only_with_token = only_with_token

    def list_things(self, **params: Any) -> Any:
        if self.only_with_token and "nextToken" not in params:
            return {"things": [{"thingName": "a"}], "nextToken": "stale"}
        raise self.error


# -- the inventory on moto -----------------------------------------------------------------


def test_snapshot_reads_every_entity_kind(source_iot: Any, seed: Seed, snapshot_of: Snap) -> None:
    # GIVEN a seeded registry, read through a client whose ListThings omits billing groups
    seed(source_iot)

    # WHEN it is snapshotted
    snap = take_snapshot(
        Inventory(WithoutListedBillingGroup(source_iot), RateLimiter.unlimited()), SRC
    )

    # THEN every table holds the registry, canonically encoded
    things = snap.things.set_index("name")
    assert list(things.index) == ["t0", "t1", "t2", "t3"]
    assert things.loc["t0", "billing_group"] == "fleet"  # from ListThingsInBillingGroup
    assert things["billing_group"].isna().sum() == 3
    assert things.loc["t2", "attributes"] == '{"colour":"red","room":"102"}'
    assert set(things["thing_type"]) == {"sensor"}
    types = snap.thing_types.set_index("name")
    assert types.loc["sensor", "searchable_attributes"] == '["colour","room"]'
    assert types.loc["sensor", "description"] == "a sensor"
    assert types.loc["gateway", "description"] is pd.NA
    assert not types["deprecated"].any()
    groups = snap.thing_groups.set_index("name")
    assert groups.loc["floor-1", "parent"] == "building"
    assert groups.loc["building", "parent"] is pd.NA
    assert groups.loc["building", "attributes"] == '{"city":"Paris"}'
    assert groups.loc["building", "description"] == "HQ"
    assert groups["query"].isna().all()
    assert snap.billing_groups.to_dict("records") == [{"name": "fleet", "description": "main"}]
    assert snap.memberships.to_dict("records") == [
        {"thing": "t0", "group": "floor-1"},
        {"thing": "t1", "group": "floor-1"},
        {"thing": "t2", "group": "floor-2"},
    ]


def test_snapshot_tables_keep_their_schema(source_iot: Any, seed: Seed, snapshot_of: Snap) -> None:
    # GIVEN a registry with only a type (every other table empty)
    source_iot.create_thing_type(thingTypeName="lonely")

    snap = snapshot_of(source_iot, SRC)

    # THEN empty frames keep their columns and dtypes
    for table, schema in SCHEMAS.items():
        frame = getattr(snap, table)
        assert list(frame.columns) == list(schema)
        assert {c: str(t) for c, t in frame.dtypes.items()} == schema
    assert len(snap.things) == 0


def test_snapshot_drops_links_to_things_that_are_gone(
    source_iot: Any, seed: Seed, snapshot_of: Snap
) -> None:
    # GIVEN a thing deleted after joining a group (moto keeps listing it in the group)
    seed(source_iot)
    source_iot.delete_thing(thingName="t2")

    snap = snapshot_of(source_iot, SRC)

    # THEN no membership names a thing the snapshot does not hold
    assert "t2" not in set(snap.things["name"])
    assert "t2" not in set(snap.memberships["thing"])


def test_api_calls_are_bounded_by_pages(source_iot: Any, seed: Seed, snapshot_of: Snap) -> None:
    # GIVEN 7 things, 3 thing groups, 1 billing group and a page size of 3
    seed(source_iot, things=7)
    inventory = Inventory(source_iot, RateLimiter.unlimited(), page_size=3)

    take_snapshot(inventory, SRC)

    # THEN calls are per page and per group, never per thing
    assert dict(inventory.calls) == {
        "ListThingTypes": 1,
        "ListThingGroups": 1,
        "DescribeThingGroup": 3,
        "ListBillingGroups": 1,
        "DescribeBillingGroup": 1,
        "ListThings": math.ceil(7 / 3),
        "ListThingsInBillingGroup": 1,
        "ListThingsInThingGroup": 3,  # one page each (moto does not page this call)
        "ListCertificates": 1,  # none to describe
        "ListPolicies": 1,
        "ListRoleAliases": 1,
        "ListAuthorizers": 1,
        "ListProvisioningTemplates": 1,  # none to describe
        "ListCACertificates": 1,
    }


def test_progress_reports_final_counts(source_iot: Any, seed: Seed, snapshot_of: Snap) -> None:
    seed(source_iot)
    final: dict[str, ListingStatus] = {}
    inventory = Inventory(source_iot, RateLimiter.unlimited())

    def record(status: ListingStatus) -> None:
        if status.done:
            final[status.family] = status

    take_snapshot(inventory, SRC, progress=record)

    assert {family: status.items for family, status in final.items()} == {
        EntityKind.THING_TYPE.value: 2,
        EntityKind.THING_GROUP.value: 3,
        EntityKind.BILLING_GROUP.value: 1,
        EntityKind.THING.value: 4,
        EntityKind.MEMBERSHIP.value: 3,
        EntityKind.CERTIFICATE.value: 0,
        EntityKind.THING_PRINCIPAL.value: 0,
        EntityKind.POLICY.value: 0,
        EntityKind.POLICY_TARGET.value: 0,
        EntityKind.ROLE_ALIAS.value: 0,
        EntityKind.AUTHORIZER.value: 0,
        EntityKind.PROVISIONING_TEMPLATE.value: 0,
        EntityKind.CA_CERTIFICATE.value: 0,
        EntityKind.SHADOW.value: 0,  # not asked for (opt-in): finished at once
        EntityKind.RETAINED_MESSAGE.value: 0,
    }
    assert final[EntityKind.THING.value].calls == inventory.calls["ListThings"] == 1
    assert all(status.region == SRC and status.eta_seconds == 0.0 for status in final.values())


def test_progress_estimates_time_left_from_the_quotas(source_iot: Any) -> None:
    # GIVEN 6 things read one per page at 2 ListThings/s, and an estimate of 10 things
    for i in range(6):
        source_iot.create_thing(thingName=f"t{i}")
    clock = VirtualClock()
    limiter = RateLimiter(overrides={"ListThings": 2}, clock=clock, sleep=clock.sleep)
    inventory = Inventory(source_iot, limiter, page_size=1)
    etas: list[float | None] = []

    def record(status: ListingStatus) -> None:
        if status.family == EntityKind.THING.value and not status.done:
            etas.append(status.eta_seconds)

    with patch("reconcile.families._REPORT_EVERY", 1):
        take_snapshot(inventory, SRC, progress=record, expected={"thing": 10})

    # THEN at the start and after each of the n things, 10 - n things are left: one page of
    # 250 at most, at 2/s
    assert etas == [pytest.approx(0.5)] * 7


def test_listing_families_run_concurrently_under_their_own_quotas(
    source_iot: Any, seed: Seed
) -> None:
    # GIVEN 20 things (20 pages at 1 ListThings/s) and 20 group members (20 pages at 1/s)
    source_iot.create_thing_group(thingGroupName="g")
    for i in range(20):
        source_iot.create_thing(thingName=f"t{i:02d}")
        source_iot.add_thing_to_thing_group(thingGroupName="g", thingName=f"t{i:02d}")
    clock = VirtualClock()
    limiter = RateLimiter(
        overrides={"ListThings": 1, "ListThingsInThingGroup": 1},
        clock=clock,
        sleep=clock.sleep,
    )
    snap = take_snapshot(Inventory(source_iot, limiter, page_size=1), SRC)

    # THEN the snapshot took as long as one of them (19 s after the first call), not both (38 s)
    assert len(snap.things) == len(snap.memberships) == 20
    assert clock.elapsed == pytest.approx(19.0)


@pytest.mark.parametrize("failing", ["list_thing_types", "list_things_in_thing_group"])
def test_a_failing_listing_stops_the_others(source_iot: Any, failing: str) -> None:
    # GIVEN one listing (a family, or a group's member list) fails while things are still
    # being listed, slowly
    source_iot.create_thing_group(thingGroupName="g")
    for i in range(50):
        source_iot.create_thing(thingName=f"t{i:02d}")
    listed: list[int] = []

    class Failing(WithoutListedBillingGroup):
        def list_things(self, **params: Any) -> Any:
            listed.append(1)
            time.sleep(0.01)  # real threads: give the failure time to land mid-listing
            return super().list_things(**params)

        def __getattr__(self, name: str) -> Any:
            if name == failing:

                def fail(**_: Any) -> Any:
                    raise client_error("AccessDeniedException", 403, "ListSomething")

                return fail
            return super().__getattr__(name)

    inventory = Inventory(Failing(source_iot), RateLimiter.unlimited(), page_size=1)

    # THEN the snapshot raises that failure (not a cancellation), and things stopped early
    with pytest.raises(AwsRequestError, match="AccessDenied"):
        take_snapshot(inventory, SRC)
    assert len(listed) < 50


def test_invalid_token_restarts_the_listing(source_iot: Any, seed: Seed, snapshot_of: Snap) -> None:
    # GIVEN a client that deletes the thing behind the page token right after the first page
    for i in range(10):
        source_iot.create_thing(thingName=f"t{i:02d}")

    class DeletingBehindToken(WithoutListedBillingGroup):
        pages = 0

        def list_things(self, **params: Any) -> Any:
            page = super().list_things(**params)
            DeletingBehindToken.pages += 1
            if DeletingBehindToken.pages == 1:
                source_iot.delete_thing(thingName="t03")  # the first thing of page 2
            return page

    inventory = Inventory(DeletingBehindToken(source_iot), RateLimiter.unlimited(), page_size=3)

    # WHEN the things are listed
    names = [thing["name"] for thing in inventory.entities(EntityKind.THING)]

    # THEN the listing restarted once, and every surviving thing appears exactly once
    assert inventory.restarts["ListThings"] == 1
    assert names == [f"t{i:02d}" for i in range(10) if i != 3]
    # 1 page, 1 failed call, then 3 pages of the 9 survivors
    assert inventory.calls["ListThings"] == 5


def test_a_token_that_never_settles_fails() -> None:
    inventory = Inventory(
        FailingIot(client_error("InvalidToken", 400), only_with_token=True),
        RateLimiter.unlimited(),
    )
    with pytest.raises(ListingRestartError) as raised:
        list(inventory.entities(EntityKind.THING))
    assert isinstance(raised.value.__cause__, ClientError)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 400, ThrottledError),
        ("InternalFailureException", 500, AwsServiceError),
        ("ServiceUnavailableException", 503, AwsServiceError),
        ("AccessDeniedException", 403, AwsRequestError),
        ("InvalidToken", 400, AwsRequestError),  # without a token: a real request error
    ],
)
def test_client_errors_are_classified(code: str, status: int, expected: type) -> None:
    inventory = Inventory(FailingIot(client_error(code, status)), RateLimiter.unlimited())
    with pytest.raises(expected) as raised:
        list(inventory.entities(EntityKind.THING))
    assert isinstance(raised.value.__cause__, ClientError)


# -- rate limiting -------------------------------------------------------------------------


def test_rate_limiter_paces_calls_at_the_quota() -> None:
    # GIVEN ListThings at its default 10/s, on a clock that moves only when we sleep
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)

    # WHEN 25 calls are made
    for _ in range(25):
        limiter.acquire("ListThings")

    # THEN the first 10 are a burst and the other 15 are spaced 0.1 s apart
    assert clock.now == pytest.approx(1.5)
    assert len(clock.sleeps) == 15
    assert limiter.waited_seconds == pytest.approx(1.5)


def test_rate_limiter_scale_overrides_and_unknown_operations() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        scale=0.5, overrides={"DescribeThingGroup": 2}, clock=clock, sleep=clock.sleep
    )
    assert limiter.rate("ListThings") == DEFAULT_QUOTAS["ListThings"] * 0.5
    assert limiter.rate("ListThingsInThingGroup") == 12.5
    assert limiter.rate("DescribeThingGroup") == 2
    assert limiter.rate("DescribeThing") is None

    for _ in range(4):
        limiter.acquire("DescribeThingGroup")
    assert clock.now == pytest.approx(1.0)  # burst of 2, then 2 more at 0.5 s each

    before = clock.now
    for _ in range(100):
        limiter.acquire("DescribeThing")  # no quota configured: never waits
    assert clock.now == before


def test_rate_limiter_gives_concurrent_callers_distinct_slots() -> None:
    # GIVEN four threads taking 10 ListThings tokens each on one virtual clock
    clock = VirtualClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)

    def take() -> None:
        for _ in range(10):
            limiter.acquire("ListThings")

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN 40 calls at 10/s with a burst of 10 end at 3 s, whatever the interleaving
    assert clock.elapsed == pytest.approx(3.0)


def test_rate_limiter_refills_while_idle() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(10):
        limiter.acquire("ListThings")
    clock.now += 5.0  # idle: the bucket refills, but only to one second's worth
    for _ in range(10):
        assert limiter.acquire("ListThings") == 0.0
    assert limiter.acquire("ListThings") == pytest.approx(0.1)


def test_snapshot_is_paced_by_the_limiter(source_iot: Any, seed: Seed, snapshot_of: Snap) -> None:
    # GIVEN 12 things read at 1 per page with ListThings limited to 2/s
    for i in range(12):
        source_iot.create_thing(thingName=f"t{i}")
    clock = FakeClock()
    limiter = RateLimiter(overrides={"ListThings": 2}, clock=clock, sleep=clock.sleep)
    inventory = Inventory(source_iot, limiter, page_size=1)

    list(inventory.entities(EntityKind.THING))

    # THEN 12 calls took (12 - 2 burst) / 2 per second = 5 s of (fake) time
    assert inventory.calls["ListThings"] == 12
    assert clock.now == pytest.approx(5.0)


# -- persistence and identity ----------------------------------------------------------------


def test_parquet_round_trip_keeps_content_and_fingerprint(
    source_iot: Any, tmp_path: Path, seed: Seed, snapshot_of: Snap
) -> None:
    seed(source_iot)
    snap = snapshot_of(source_iot, SRC)

    snap.save(tmp_path / "snap")
    loaded = Snapshot.load(tmp_path / "snap")

    assert loaded.fingerprint() == snap.fingerprint()
    assert loaded == snap
    for table in SCHEMAS:
        pd.testing.assert_frame_equal(getattr(loaded, table), getattr(snap, table))
    manifest = json.loads((tmp_path / "snap" / "snapshot.json").read_text())
    assert manifest["region"] == SRC
    assert manifest["fingerprint"] == snap.fingerprint()
    assert manifest["counts"]["things"] == 4


def test_empty_snapshot_round_trips(tmp_path: Path) -> None:
    snap = Snapshot.from_records(SRC, 1)
    snap.save(tmp_path)
    loaded = Snapshot.load(tmp_path)
    assert loaded.fingerprint() == snap.fingerprint()
    for table, schema in SCHEMAS.items():
        assert {c: str(t) for c, t in getattr(loaded, table).dtypes.items()} == schema


def test_load_refuses_tampered_or_missing_snapshots(tmp_path: Path) -> None:
    Snapshot.from_records(SRC, 1, things=[{"name": "a"}]).save(tmp_path)
    Snapshot.from_records(SRC, 1, things=[{"name": "b"}]).things.to_parquet(
        tmp_path / "things.parquet", index=False
    )
    with pytest.raises(SnapshotFileError, match="fingerprint"):
        Snapshot.load(tmp_path)
    with pytest.raises(SnapshotFileError):
        Snapshot.load(tmp_path / "nowhere")


def test_fingerprint_covers_content_not_time_or_region() -> None:
    base = Snapshot.from_records(SRC, 1, things=[{"name": "a", "attributes": {"x": "1", "y": "2"}}])
    same = Snapshot.from_records(
        "eu-west-1", 2, things=[{"name": "a", "attributes": {"y": "2", "x": "1"}}]
    )
    other = Snapshot.from_records(SRC, 1, things=[{"name": "a", "attributes": {"x": "2"}}])
    assert base.fingerprint() == same.fingerprint()
    assert base.fingerprint() != other.fingerprint()


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Snapshot.from_records(SRC, 1, things=[{"name": "a"}, {"name": "a"}])


def test_desired_fields_turn_rows_into_state() -> None:
    snap = Snapshot.from_records(
        SRC,
        1,
        things=[{"name": "t", "thing_type": "s", "attributes": {"a": "1"}}],
        thing_types=[{"name": "s", "searchable_attributes": ["b", "a"], "deprecated": True}],
        thing_groups=[
            {
                "name": "g",
                "parent": "p",
                "query": {
                    "query_string": "x:1",
                    "index_name": "AWS_Things",
                    "query_version": "2017-09-30",
                },
            }
        ],
        billing_groups=[{"name": "b", "description": "d"}],
    )
    assert desired_fields(EntityKind.THING, snap.things.iloc[0]) == {
        "thing_type": "s",
        "attributes": {"a": "1"},
        "billing_group": None,
    }
    assert desired_fields(EntityKind.THING_TYPE, snap.thing_types.iloc[0]) == {
        "description": None,
        "searchable_attributes": ["a", "b"],
        "deprecated": True,
        "propagating_attributes": [],
    }
    assert desired_fields(EntityKind.THING_GROUP, snap.thing_groups.iloc[0]) == {
        "parent": "p",
        "description": None,
        "attributes": {},
        "query": {"query_string": "x:1", "index_name": "AWS_Things", "query_version": "2017-09-30"},
    }
    assert desired_fields(EntityKind.BILLING_GROUP, snap.billing_groups.iloc[0]) == {
        "description": "d"
    }
    assert desired_fields(EntityKind.MEMBERSHIP, {"thing": "t", "group": "g"}) == {}
    # plain Python values, not numpy/pandas scalars
    assert (
        type(desired_fields(EntityKind.THING_TYPE, snap.thing_types.iloc[0])["deprecated"]) is bool
    )
