"""Diff: every entity kind x drift kind on two moto regions; queries, sharding, properties."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.model import EntityKind
from reconcile.diff import diff_snapshots
from reconcile.drift import (
    Drift,
    DriftReport,
    RepairRows,
    ReportMergeError,
    merge_reports,
    new_drift,
)
from reconcile.hashing import bucket_of
from reconcile.snapshot import Snapshot

SRC, DST = "us-east-1", "eu-west-1"
NOW = 1_700_000_000_000
Seed = Callable[..., None]
SnapshotOf = Callable[..., Snapshot]


def fixed_clock() -> int:
    return NOW


def index(report: DriftReport) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(entity, kind, name) -> details, asserting each appears once."""
    keys = [(d.entity.value, d.kind, d.name) for d in report.drifts]
    assert len(keys) == len(set(keys)), "a drift was reported twice"
    return {(d.entity.value, d.kind, d.name): d.details for d in report.drifts}


def test_every_seeded_difference_is_found_once_and_explained(
    source_iot: Any, target_iot: Any, seed: Seed, snapshot_of: SnapshotOf
) -> None:
    # GIVEN the same registry in both regions ...
    seed(source_iot)
    seed(target_iot)
    # ... then, per entity kind, one entity only in the source, one only in the target, and
    # some changed in the target
    source_iot.create_thing_type(thingTypeName="camera")
    target_iot.create_thing_type(thingTypeName="legacy")
    target_iot.update_thing(thingName="t1", thingTypeName="gateway")
    target_iot.deprecate_thing_type(thingTypeName="gateway")

    source_iot.create_thing_group(thingGroupName="floor-3", parentGroupName="building")
    target_iot.create_thing_group(thingGroupName="annex")
    target_iot.update_thing_group(
        thingGroupName="building",
        thingGroupProperties={"attributePayload": {"attributes": {"city": "Lyon", "zip": "1"}}},
    )
    target_iot.update_thing_group(
        thingGroupName="floor-1", thingGroupProperties={"thingGroupDescription": "ground"}
    )
    target_iot.delete_thing_group(thingGroupName="floor-2")  # re-created at the root
    target_iot.create_thing_group(thingGroupName="floor-2")
    target_iot.add_thing_to_thing_group(thingGroupName="floor-2", thingName="t2")

    source_iot.create_billing_group(billingGroupName="spare")
    target_iot.create_billing_group(billingGroupName="old-billing")
    target_iot.update_billing_group(
        billingGroupName="fleet", billingGroupProperties={"billingGroupDescription": "other"}
    )

    target_iot.delete_thing(thingName="t3")
    target_iot.create_thing(thingName="rogue")
    target_iot.remove_thing_from_billing_group(billingGroupName="fleet", thingName="t0")
    target_iot.update_thing(
        thingName="t2",
        attributePayload={"attributes": {"colour": "blue", "room": ""}, "merge": True},
    )

    target_iot.remove_thing_from_thing_group(thingGroupName="floor-1", thingName="t1")
    target_iot.add_thing_to_thing_group(thingGroupName="annex", thingName="t0")

    # WHEN both regions are snapshotted and diffed
    report = diff_snapshots(snapshot_of(source_iot, SRC), snapshot_of(target_iot, DST))

    # THEN each difference is reported exactly once, with what differs
    found = index(report)
    assert set(found) == {
        ("thing_type", "missing", "camera"),
        ("thing_type", "extra", "legacy"),
        ("thing_type", "changed", "gateway"),
        ("thing_group", "missing", "floor-3"),
        ("thing_group", "extra", "annex"),
        ("thing_group", "changed", "building"),
        ("thing_group", "changed", "floor-1"),
        ("thing_group", "changed", "floor-2"),
        ("billing_group", "missing", "spare"),
        ("billing_group", "extra", "old-billing"),
        ("billing_group", "changed", "fleet"),
        ("thing", "missing", "t3"),
        ("thing", "extra", "rogue"),
        ("thing", "changed", "t0"),
        ("thing", "changed", "t1"),
        ("thing", "changed", "t2"),
        ("membership", "missing", "t1#floor-1"),
        ("membership", "extra", "t0#annex"),
    }
    assert found["thing_type", "changed", "gateway"] == {
        "deprecated": {"source": False, "target": True}
    }
    assert found["thing_group", "changed", "building"] == {
        "attributes.city": {"source": "Paris", "target": "Lyon"},
        "attributes.zip": {"source": None, "target": "1"},
    }
    assert found["thing_group", "changed", "floor-1"] == {
        "description": {"source": None, "target": "ground"}
    }
    assert found["thing_group", "changed", "floor-2"] == {
        "parent": {"source": "building", "target": None}
    }
    assert found["billing_group", "changed", "fleet"] == {
        "description": {"source": "main", "target": "other"}
    }
    assert found["thing", "changed", "t0"] == {"billing_group": {"source": "fleet", "target": None}}
    assert found["thing", "changed", "t1"] == {
        "thing_type": {"source": "sensor", "target": "gateway"}
    }
    assert found["thing", "changed", "t2"] == {
        "attributes.colour": {"source": "red", "target": "blue"},
        "attributes.room": {"source": "102", "target": None},
    }
    assert found["thing", "missing", "t3"] == {
        "thing_type": {"source": "sensor", "target": None},
        "attributes": {"source": {"colour": "red", "room": "103"}, "target": None},
        "billing_group": {"source": None, "target": None},
    }
    membership = next(d for d in report.drifts if d.name == "t1#floor-1")
    assert (membership.thing, membership.group) == ("t1", "floor-1")
    assert report.summary()["thing"] == {"missing": 1, "extra": 1, "changed": 3}
    assert report.counts == {
        "thing_type": 3,
        "thing_group": 4,
        "billing_group": 2,
        "thing": 4,
        "membership": 3,
        "certificate": 0,
        "policy": 0,
        "thing_principal": 0,
        "policy_target": 0,
        "role_alias": 0,
        "authorizer": 0,
        "provisioning_template": 0,
        "ca_certificate": 0,
        "shadow": 0,
        "retained_message": 0,
    }
    assert not report.in_sync


def test_identical_regions_are_in_sync(
    source_iot: Any, target_iot: Any, seed: Seed, snapshot_of: SnapshotOf
) -> None:
    seed(source_iot)
    seed(target_iot)
    report = diff_snapshots(snapshot_of(source_iot, SRC), snapshot_of(target_iot, DST))
    assert report.in_sync
    assert report.drifts == ()


def test_severity_follows_what_differs() -> None:
    source = Snapshot.from_records(
        SRC,
        1,
        things=[
            {"name": "a", "thing_type": "x"},
            {"name": "b", "attributes": {"k": "1"}},
            {"name": "m"},
        ],
        thing_types=[{"name": "x", "description": "one"}],
    )
    target = Snapshot.from_records(
        DST,
        1,
        things=[{"name": "a", "thing_type": "y"}, {"name": "b"}, {"name": "z"}],
        thing_types=[{"name": "x", "description": "two"}],
    )
    severity = {d.name: d.severity for d in diff_snapshots(source, target).drifts}
    assert severity == {"x": "low", "a": "high", "b": "medium", "m": "high", "z": "medium"}


def test_report_is_sorted_in_dependency_order() -> None:
    source = Snapshot.from_records(
        SRC,
        1,
        things=[{"name": "b"}, {"name": "a"}],
        thing_types=[{"name": "t"}],
        memberships=[{"thing": "a", "group": "g"}],
        thing_groups=[{"name": "g"}],
    )
    target = Snapshot.from_records(DST, 1, things=[{"name": "c"}])
    order = [(d.entity.value, d.kind, d.name) for d in diff_snapshots(source, target).drifts]
    assert order == [
        ("thing_type", "missing", "t"),
        ("thing_group", "missing", "g"),
        ("thing", "missing", "a"),
        ("thing", "missing", "b"),
        ("thing", "extra", "c"),
        ("membership", "missing", "a#g"),
    ]


# -- dynamic groups (moto has none: hand-built snapshots) ----------------------------------


def dynamic(query: str, name: str = "hot") -> dict[str, Any]:
    return {
        "name": name,
        "query": {
            "query_string": query,
            "index_name": "AWS_Things",
            "query_version": "2017-09-30",
        },
    }


def test_dynamic_group_query_drift_is_explained() -> None:
    source = Snapshot.from_records(SRC, 1, thing_groups=[dynamic("attributes.temp>30")])
    target = Snapshot.from_records(DST, 1, thing_groups=[dynamic("attributes.temp>40")])

    (drift,) = diff_snapshots(source, target).drifts

    assert (drift.entity, drift.kind, drift.severity) == (
        EntityKind.THING_GROUP,
        "changed",
        "high",
    )
    assert drift.details["query"]["source"]["query_string"] == "attributes.temp>30"
    assert drift.details["query"]["target"]["query_string"] == "attributes.temp>40"


def test_static_group_made_dynamic_is_a_query_drift() -> None:
    source = Snapshot.from_records(SRC, 1, thing_groups=[dynamic("thingName:a*")])
    target = Snapshot.from_records(DST, 1, thing_groups=[{"name": "hot"}])
    (drift,) = diff_snapshots(source, target).drifts
    assert drift.details == {
        "query": {
            "source": {
                "query_string": "thingName:a*",
                "index_name": "AWS_Things",
                "query_version": "2017-09-30",
            },
            "target": None,
        }
    }


def test_dynamic_group_membership_is_never_compared() -> None:
    # GIVEN each region computed different members for the same dynamic group
    things = [{"name": "a"}, {"name": "b"}]
    source = Snapshot.from_records(
        SRC,
        1,
        things=things,
        thing_groups=[dynamic("x:1")],
        memberships=[{"thing": "a", "group": "hot"}],
    )
    target = Snapshot.from_records(
        DST,
        1,
        things=things,
        thing_groups=[dynamic("x:1")],
        memberships=[{"thing": "b", "group": "hot"}],
    )
    report = diff_snapshots(source, target)
    assert report.in_sync
    assert report.counts["membership"] == 0


def test_versions_are_not_compared() -> None:
    source = Snapshot.from_records(SRC, 1, things=[{"name": "a", "version": 7}])
    target = Snapshot.from_records(DST, 1, things=[{"name": "a", "version": 1}])
    assert diff_snapshots(source, target).in_sync


def test_empty_snapshots_are_in_sync() -> None:
    report = diff_snapshots(Snapshot.from_records(SRC, 1), Snapshot.from_records(DST, 1))
    assert report.in_sync
    assert report.counts == dict.fromkeys(
        [
            "thing_type",
            "thing_group",
            "billing_group",
            "thing",
            "membership",
            "certificate",
            "policy",
            "thing_principal",
            "policy_target",
            "role_alias",
            "authorizer",
            "provisioning_template",
            "ca_certificate",
            "shadow",
            "retained_message",
        ],
        0,
    )


# -- sharding ---------------------------------------------------------------------------------


def drifting_pair(n: int = 300) -> tuple[Snapshot, Snapshot]:
    """``n`` things, every 7th changed, every 11th missing, plus extras and memberships."""
    source_things = [{"name": f"thing-{i}", "attributes": {"a": str(i)}} for i in range(n)]
    target_things = [
        {"name": f"thing-{i}", "attributes": {"a": str(i + (1 if i % 7 == 0 else 0))}}
        for i in range(n)
        if i % 11
    ] + [{"name": f"extra-{i}"} for i in range(5)]
    groups = [{"name": f"g{i}"} for i in range(4)]
    source = Snapshot.from_records(
        SRC,
        1,
        things=source_things,
        thing_groups=groups,
        memberships=[{"thing": f"thing-{i}", "group": f"g{i % 4}"} for i in range(0, n, 3)],
    )
    target = Snapshot.from_records(
        DST,
        2,
        things=target_things,
        thing_groups=groups[:3],
        memberships=[{"thing": f"thing-{i}", "group": f"g{i % 4}"} for i in range(0, n, 5)],
    )
    return source, target


@pytest.mark.parametrize("buckets", [1, 3, 8])
def test_sharded_diff_merges_into_the_unsharded_report(buckets: int) -> None:
    source, target = drifting_pair()
    whole = diff_snapshots(source, target, clock=fixed_clock)

    shards = [
        diff_snapshots(
            source, target, buckets=buckets, bucket_range=range(b, b + 1), clock=fixed_clock
        )
        for b in range(buckets)
    ]

    assert merge_reports(reversed(shards)) == whole
    assert len(whole.drifts) > 50
    if buckets > 1:
        assert all(len(s.drifts) < len(whole.drifts) for s in shards)


def test_bucket_ranges_select_only_their_names() -> None:
    source, target = drifting_pair()
    report = diff_snapshots(source, target, buckets=4, bucket_range=range(2, 4))
    assert report.drifts
    assert all(bucket_of(d.name, 4) in (2, 3) for d in report.drifts)


def test_overlapping_or_foreign_shards_are_refused() -> None:
    source, target = drifting_pair()
    shard = diff_snapshots(source, target, buckets=2, bucket_range=range(0, 1))
    with pytest.raises(ReportMergeError, match="overlap"):
        merge_reports([shard, shard])
    other = diff_snapshots(source, Snapshot.from_records(DST, 1))
    with pytest.raises(ReportMergeError, match="different snapshots"):
        merge_reports([shard, other])
    with pytest.raises(ValueError):
        diff_snapshots(source, target, buckets=2, bucket_range=range(1, 3))


def test_bucket_of_is_stable() -> None:
    # pinned: a changed hash would silently reshuffle every Distributed Map shard between
    # a run's planning and its workers
    assert bucket_of("sensor-1", 1024) == 657
    assert all(0 <= bucket_of(f"n{i}", 7) < 7 for i in range(200))
    assert len({bucket_of(f"n{i}", 7) for i in range(200)}) == 7


# -- properties ---------------------------------------------------------------------------------

names = st.sets(st.from_regex(r"[a-z]{1,6}", fullmatch=True), max_size=12)
attrs = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["1", "2"]), max_size=3)


@st.composite
def snapshots(draw: st.DrawFn, region: str) -> Snapshot:
    things = [{"name": n, "attributes": draw(attrs)} for n in draw(names)]
    return Snapshot.from_records(region, 1, things=things)


@settings(max_examples=60, deadline=None)
@given(a=snapshots(SRC), b=snapshots(DST))
def test_diff_is_antisymmetric_and_reflexive(a: Snapshot, b: Snapshot) -> None:
    forward = {(d.kind, d.name) for d in diff_snapshots(a, b).drifts}
    backward = {(d.kind, d.name) for d in diff_snapshots(b, a).drifts}
    swap = {"missing": "extra", "extra": "missing", "changed": "changed"}
    assert {(swap[k], n) for k, n in forward} == backward
    assert diff_snapshots(a, a).in_sync


# --- the hashing the diff and the fingerprint share -----------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        [f"device-{i}" for i in range(3000)],  # mostly distinct: the fast route
        ["same"] * 3000,  # repetitive: pandas' own route
        ["a", None, "ünïcødé", "", "x" * 5000],
    ],
)
def test_column_hash_equals_pandas_hash(values: list[str | None]) -> None:
    import pandas as pd

    from reconcile.snapshot import column_hash

    series = pd.Series(values, dtype="string[pyarrow]")
    expected = pd.util.hash_pandas_object(series, index=False).to_numpy()
    assert (column_hash(series) == expected).all()


def test_key_hash_collisions_fall_back_to_an_exact_join(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    # GIVEN two snapshots with drift of every kind
    source = Snapshot.from_records(
        SRC,
        1,
        things=[{"name": n, "attributes": {"v": n}} for n in ("a", "b", "c")],
        memberships=[{"thing": "a", "group": "g"}],
        thing_groups=[{"name": "g"}],
    )
    target = Snapshot.from_records(
        DST,
        1,
        things=[{"name": "b", "attributes": {"v": "other"}}, {"name": "d", "attributes": {}}],
        thing_groups=[{"name": "g"}],
    )
    expected = diff_snapshots(source, target, clock=lambda: 0)
    assert {(d.entity, d.kind) for d in expected.drifts} == {
        (EntityKind.THING, "missing"),
        (EntityKind.THING, "extra"),
        (EntityKind.THING, "changed"),
        (EntityKind.MEMBERSHIP, "missing"),
    }
    # WHEN every key hash collides (as two names sharing a 64-bit hash would)
    real = Snapshot.column_hashes

    def colliding(self: Snapshot, table: str) -> dict[str, np.ndarray]:
        hashes = dict(real(self, table))
        for key in ("name", "thing", "group"):
            if key in hashes:
                hashes[key] = np.zeros_like(hashes[key])
        return hashes

    monkeypatch.setattr(Snapshot, "column_hashes", colliding)
    # THEN the diff is the same, found by joining on the names themselves
    assert diff_snapshots(source, target, clock=lambda: 0).drifts == expected.drifts


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "ab", ""])), min_size=1, max_size=40),
    st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "ab", ""])), min_size=1, max_size=40),
    st.randoms(use_true_random=False),
)
def test_paired_cells_compare_alike_across_chunks_in_any_order(
    left: list[str | None], right: list[str | None], rng: Any
) -> None:
    """Columns read from Parquet come in chunks: the compare takes a chunk of each side at a
    time where the pairs come in order, and any pairs otherwise, with the same answer."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from reconcile.pairs import differing

    def chunked(values: list[str | None]) -> pd.DataFrame:
        cuts = sorted(rng.sample(range(len(values) + 1), min(3, len(values) + 1)))
        parts = [values[a:b] for a, b in zip([0, *cuts], [*cuts, len(values)], strict=True)]
        array = pa.chunked_array([pa.array(p, pa.large_string()) for p in parts])
        return pd.DataFrame({"v": pd.Series(pd.arrays.ArrowStringArray(array))})

    count = min(len(left), len(right))
    in_order = (
        np.array(sorted(rng.sample(range(len(left)), count)), dtype=np.int64),
        np.array(sorted(rng.sample(range(len(right)), count)), dtype=np.int64),
    )
    shuffled = (in_order[0], np.array(rng.sample(list(in_order[1]), count), dtype=np.int64))
    for pairs in (in_order, shuffled):
        expected = [left[i] != right[j] for i, j in zip(*pairs, strict=True)]
        found = differing(chunked(left), chunked(right), ("v",), pairs)
        assert found.tolist() == expected


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"thing": "t1", "group": "g1"},
        {"rows": RepairRows({"name": "t1"}, {"name": "t1", "thing_type": None})},
    ],
)
def test_new_drift_is_the_drift_its_init_makes(given: dict[str, Any]) -> None:
    """The diff's cheaper constructor sets every field as ``Drift(...)`` does (rows too, which
    equality leaves out), the others to their defaults."""
    args = (EntityKind.THING, "t1", "changed", "low", {"x": {"source": 1, "target": 2}})
    made, expected = new_drift(*args, **given), Drift(*args, **given)
    assert made == expected
    assert repr(made) == repr(expected) and made.rows == expected.rows
    for name in Drift.__slots__:
        assert getattr(made, name) == getattr(expected, name)
