"""The three-way audit, pure: the state table as a snapshot, and each drift's loss point."""

from __future__ import annotations

from typing import Any

from pipeline.kinds.thing_type import PendingTypeDeletion
from pipeline.model import EntityKind, Item
from reconcile.diff import diff_snapshots
from reconcile.explain import classify, explain, table_snapshot, table_vs_target
from reconcile.report import load_json, render, to_json
from reconcile.snapshot import Snapshot

SRC, DST = "us-east-1", "eu-west-1"
PROPAGATING = [{"userPropertyKey": "site", "thingAttribute": "site"}, {"userPropertyKey": "id"}]


def item(kind: EntityKind, name: str, state: dict[str, Any], *, deleted: bool = False) -> Item:
    return Item(kind, name, state, deleted, SRC, 1000, "e1")


def thing(name: str, **attributes: str) -> dict[str, Any]:
    return {"name": name, "thing_type": "sensor", "attributes": attributes}


def test_table_items_become_the_same_snapshot_as_the_registry_they_describe() -> None:
    # GIVEN table items for the registry below, plus a tombstone
    registry = Snapshot.from_records(
        SRC,
        1,
        things=[{**thing("t1", colour="red"), "billing_group": "bg"}],
        thing_types=[
            {
                "name": "sensor",
                "description": "d",
                "searchable_attributes": ["b", "a"],
                "propagating_attributes": PROPAGATING,
            }
        ],
        thing_groups=[
            {"name": "g", "attributes": {"k": "v"}},
            {
                "name": "dyn",
                "query": {
                    "query_string": "a:1",
                    "index_name": "AWS_Things",
                    "query_version": "2017-09-30",
                },
            },
        ],
        billing_groups=[{"name": "bg", "description": None}],
        memberships=[{"thing": "t1", "group": "g"}],
    )
    items = [
        item(
            EntityKind.THING,
            "t1",
            {"thing_type": "sensor", "attributes": {"colour": "red"}, "billing_group": "bg"},
        ),
        item(EntityKind.THING, "gone", {"thing_type": None, "attributes": {}}, deleted=True),
        item(
            EntityKind.THING_TYPE,
            "sensor",
            {
                "description": "d",
                "searchable_attributes": ["a", "b"],
                "deprecated": False,
                "propagating_attributes": PROPAGATING,
            },
        ),
        item(
            EntityKind.THING_GROUP,
            "g",
            {"parent": None, "description": None, "attributes": {"k": "v"}, "query": None},
        ),
        item(
            EntityKind.THING_GROUP,
            "dyn",
            {
                "parent": None,
                "description": None,
                "attributes": {},
                "query": {
                    "query_string": "a:1",
                    "index_name": "AWS_Things",
                    "query_version": "2017-09-30",
                },
            },
        ),
        item(EntityKind.BILLING_GROUP, "bg", {"description": None}),
        item(EntityKind.MEMBERSHIP, "t1#g", {}),
    ]

    table = table_snapshot(items, "table", 1)

    # THEN the two compare equal: no drift between a registry and a table that agree
    assert diff_snapshots(registry, table).in_sync
    assert table.counts() == registry.counts()


def scenario() -> tuple[Snapshot, Snapshot, Snapshot]:
    """Source, table and target with one drift of each class (and one that is two at once)."""
    source = Snapshot.from_records(
        SRC,
        1,
        things=[
            thing("dropped", v="2"),  # event dropped: table and target still hold v=1
            thing("unapplied"),  # replicator failed: the table has it, the target does not
            thing("edited", v="1"),  # hand edit in the target
            thing("muddled", v="1"),  # the table holds a third value
            thing("billed", v="1"),  # hand edit in the target, billing group not in the table
        ],
    )
    table = Snapshot.from_records(
        "table",
        1,
        things=[
            thing("dropped", v="1"),
            thing("unapplied"),
            thing("edited", v="1"),
            thing("muddled", v="3"),
            {**thing("billed", v="1"), "billing_group": "bg"},
        ],
    )
    target = Snapshot.from_records(
        DST,
        1,
        things=[
            thing("dropped", v="1"),
            thing("edited", v="hand"),
            thing("muddled", v="2"),
            thing("billed", v="hand"),
        ],
    )
    return source, table, target


def test_each_drift_is_named_by_the_hop_that_lost_it() -> None:
    source, table, target = scenario()
    report = diff_snapshots(source, target)

    explained = explain(report, source, table, target)

    assert explained.explained
    where = {d.name: d.where for d in explained.drifts}
    assert where == {
        "dropped": "lost_before_table",
        "unapplied": "lost_after_table",
        "edited": "lost_after_table",
        "muddled": "table_only",
        # the table's other difference (billing group) does not hide the hand edit
        "billed": "lost_after_table",
    }
    assert explained.where_summary() == {
        "lost_before_table": 1,
        "lost_after_table": 3,
        "table_only": 1,
        "type_deletion_pending": 0,
        "not_registrable": 0,
    }
    # nothing else changed
    assert [(d.name, d.kind, d.details) for d in explained.drifts] == [
        (d.name, d.kind, d.details) for d in report.drifts
    ]


def test_classify_needs_a_difference_on_some_hop() -> None:
    source, _, target = scenario()
    drift = diff_snapshots(source, target).drifts[0]
    assert classify(drift, None, None) is None


def test_table_vs_target_blames_every_drift_on_the_replicator_hop() -> None:
    _, table, target = scenario()
    report = table_vs_target(diff_snapshots(table, target))
    assert report.explained
    assert {d.where for d in report.drifts} == {"lost_after_table"}
    assert {d.name for d in report.drifts} == {"unapplied", "edited", "muddled", "billed"}


def test_the_table_is_a_snapshot_of_its_own_origin_labelled_as_such_in_reports() -> None:
    # GIVEN the state table as read in the source region
    table = table_snapshot([item(EntityKind.THING, "t", {"attributes": {}})], SRC, 1)
    # THEN it keeps the region it was read in, and says it is the table (the diff decides by it)
    assert (table.region, table.origin) == (SRC, "state_table")
    # AND reports show it where a region would be
    target = Snapshot.from_records(DST, 1)
    assert diff_snapshots(table, target).source_region == f"{SRC} state table"
    assert diff_snapshots(target, table).target_region == f"{SRC} state table"


def orphaned_rows() -> list[Item]:
    """A table that kept links after their group (or thing) was deleted: rows written before
    persist followed AWS's cascade (issue 22, item 1)."""
    return [
        item(EntityKind.THING, "t", thing("t")),
        item(EntityKind.THING_GROUP, "gone", {}, deleted=True),
        item(EntityKind.THING_GROUP, "kept", {"parent": None}),
        item(EntityKind.MEMBERSHIP, "t#gone", {}),
        item(EntityKind.MEMBERSHIP, "t#kept", {}),
        item(EntityKind.POLICY_TARGET, "p#thinggroup/gone", {}),
        item(EntityKind.POLICY_TARGET, "p#thinggroup/kept", {}),
        item(EntityKind.THING_PRINCIPAL, f"ghost#{'a' * 64}", {}),
    ]


def test_a_link_the_table_kept_after_its_group_or_thing_went_is_table_only_not_lost() -> None:
    # GIVEN both registries hold what the table's live ends say (no link of "gone" or "ghost")
    registry = {
        "things": [thing("t")],
        "thing_groups": [{"name": "kept"}],
        "memberships": [{"thing": "t", "group": "kept"}],
        "policy_targets": [{"name": "p#thinggroup/kept"}],
    }
    target = Snapshot.from_records(DST, 1, **registry)
    table = table_snapshot(orphaned_rows(), SRC, 0)

    # WHEN the table is audited against the destination alone
    report = table_vs_target(diff_snapshots(table, target), table)

    # THEN the links to a deleted end are the table's own (no registry holds them), not the
    # replicator's loss: they were "membership missing" (high, lost_after_table) every night
    assert {(d.entity.value, d.name, d.where) for d in report.drifts} == {
        ("membership", "t#gone", "table_only"),
        ("policy_target", "p#thinggroup/gone", "table_only"),
        ("thing_principal", f"ghost#{'a' * 64}", "table_only"),
    }


def test_rows_for_entities_in_neither_registry_are_table_only_drifts() -> None:
    # GIVEN a group deleted in both registries whose delete event was lost (the table still
    # holds it and a membership), and links the table kept after their group or thing went
    registry = {
        "things": [thing("t")],
        "thing_groups": [{"name": "kept"}],
        "memberships": [{"thing": "t", "group": "kept"}],
        "policy_targets": [{"name": "p#thinggroup/kept"}],
    }
    source = Snapshot.from_records(SRC, 1, **registry)
    target = Snapshot.from_records(DST, 1, **registry)
    items = [
        *orphaned_rows(),
        item(EntityKind.THING_GROUP, "lost", {"parent": None}),
        item(EntityKind.MEMBERSHIP, "t#lost", {}),
    ]
    report = diff_snapshots(source, target)
    assert report.in_sync  # the registries agree: their own diff cannot show these rows

    explained = explain(report, source, table_snapshot(items, SRC, 0), target)

    # THEN each row is a table_only drift (the table's state, as extra against the source)
    assert [(d.entity.value, d.name, d.kind, d.where) for d in explained.drifts] == [
        ("thing_group", "lost", "extra", "table_only"),
        ("membership", "t#gone", "extra", "table_only"),
        ("membership", "t#lost", "extra", "table_only"),
        ("thing_principal", f"ghost#{'a' * 64}", "extra", "table_only"),
        ("policy_target", "p#thinggroup/gone", "extra", "table_only"),
    ]
    assert explained.where_summary()["table_only"] == 5
    assert not explained.in_sync
    # AND the JSON report keeps them, with the class's advice
    document = to_json(explained)
    assert document["where_summary"]["table_only"] == 5
    assert "tombstone" in document["fixes"]["table_only"]


def test_a_type_on_its_way_out_of_the_destination_is_its_own_class_with_its_due_time() -> None:
    # GIVEN a type deleted in the source (the table holds its tombstone) and one re-created with
    # other searchable attributes, both still in the destination (deprecated, the things of the
    # re-created one detached) with their deletions pending there, due at 1,000,330
    type_ = {"description": "", "searchable_attributes": ["a"], "deprecated": False}
    old = {**type_, "deprecated": True}
    things = [thing("t1")]
    source = Snapshot.from_records(
        SRC,
        1,
        thing_types=[{**type_, "name": "sensor", "searchable_attributes": ["b"]}],
        things=things,
    )
    items = [
        item(EntityKind.THING_TYPE, "retired", type_, deleted=True),
        item(EntityKind.THING_TYPE, "sensor", {**type_, "searchable_attributes": ["b"]}),
        item(EntityKind.THING, "t1", thing("t1")),
    ]
    pending = [
        PendingTypeDeletion(DST, "retired", 1_000_330, recreate=False),
        PendingTypeDeletion(DST, "sensor", 1_000_330, recreate=True),
        PendingTypeDeletion(SRC, "t1-type", 5, recreate=False),  # another region's: ignored
    ]
    table = table_snapshot(items, SRC, 1, pending)
    target = Snapshot.from_records(
        DST,
        1,
        thing_types=[{**old, "name": "retired"}, {**old, "name": "sensor"}],
        things=[{**thing("t1"), "thing_type": None}],
    )
    report = diff_snapshots(source, target)

    # WHEN the three-way audit explains the drift
    explained = explain(report, source, table, target)

    # THEN each is the pending deletion's (not lost after the table), with when it finishes
    assert {(d.entity, d.name): (d.where, d.finishes_at) for d in explained.drifts} == {
        (EntityKind.THING_TYPE, "retired"): ("type_deletion_pending", 1_000_330),
        (EntityKind.THING_TYPE, "sensor"): ("type_deletion_pending", 1_000_330),
        (EntityKind.THING, "t1"): ("type_deletion_pending", 1_000_330),
    }
    # which a report says, and its JSON keeps
    text = render(explained, "table", limit=50)
    assert "type_deletion_pending" in text
    assert "deletion pending: due 1970-01-12" in text
    assert load_json(to_json(explained)) == explained
    # and without the pending records the same drift is the replicator's hop, as before
    bare = explain(report, source, table_snapshot(items, SRC, 1), target)
    assert {d.where for d in bare.drifts} == {"lost_after_table"}
