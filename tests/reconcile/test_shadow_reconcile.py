"""Reconciliation of device shadows on moto in two regions: the snapshot lists each thing's
classic and named shadows (ListNamedShadowsForThing, GetThingShadow on iot-data), the generic
diff, plan and repair bring the destination's shadows to the source's, and the per-thing API
cost is what the kind's listing says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from pipeline.kinds.shadow_selection import ShadowSelection
from pipeline.model import EntityKind
from reconcile.diff import diff_snapshots
from reconcile.emit import TableEmitter
from reconcile.engine import Reconciler
from reconcile.guards import Guards
from reconcile.ignore import IgnoreRules
from reconcile.inventory import Inventory
from reconcile.ratelimit import RateLimiter
from reconcile.snapshot import Snapshot, take_snapshot
from sandbox.inprocess import DST, SRC, TABLE, LocalPipeline

NOW = 1_796_119_205_000


@pytest.fixture
def pipeline(pipeline_environment: None) -> Iterator[LocalPipeline]:
    with mock_aws():
        yield LocalPipeline(opt_in={EntityKind.SHADOW})


def _write(region: str, thing: str, state: dict[str, Any], shadow: str | None = None) -> None:
    import boto3

    data = boto3.client("iot-data", region_name=region)
    named = {} if shadow is None else {"shadowName": shadow}
    data.update_thing_shadow(thingName=thing, payload=json.dumps({"state": state}), **named)


def _shadow(region: str, thing: str, shadow: str | None = None) -> dict[str, Any] | None:
    import boto3

    data = boto3.client("iot-data", region_name=region)
    named = {} if shadow is None else {"shadowName": shadow}
    try:
        document = json.loads(data.get_thing_shadow(thingName=thing, **named)["payload"].read())
    except data.exceptions.ResourceNotFoundException:
        return None
    return {key: document["state"].get(key, {}) for key in ("desired", "reported")}


def test_a_shadow_drift_is_compared_field_by_field() -> None:
    source = Snapshot.from_records(
        SRC, NOW, shadows=[{"name": "t#~classic", "desired": '{"a":1}', "reported": "{}"}]
    )
    target = Snapshot.from_records(
        DST, NOW, shadows=[{"name": "t#~classic", "desired": '{"a":2}', "reported": "{}"}]
    )
    (drift,) = diff_snapshots(source, target).drifts
    assert (drift.entity, drift.kind, drift.severity) == (EntityKind.SHADOW, "changed", "high")
    assert drift.details == {"desired": {"source": '{"a":1}', "target": '{"a":2}'}}


def test_reconciliation_creates_repairs_and_deletes_shadows(pipeline: LocalPipeline) -> None:
    src, dst = pipeline.source, pipeline.destination
    # GIVEN two devices with a classic and two named shadows each in the source (their messages
    # never reached the pipeline), the things already in both regions
    for thing in ("dev-1", "dev-2"):
        src.create_thing(thingName=thing)
        dst.create_thing(thingName=thing)
        _write(SRC, thing, {"desired": {"mode": "eco"}, "reported": {"fw": "1.0"}})
        _write(SRC, thing, {"desired": {"interval": 60}}, "config")
        _write(SRC, thing, {"reported": {"battery": 0.93}}, "$telemetry")
    # AND a shadow only the destination has, and a hand edit there
    _write(DST, "dev-1", {"desired": {"x": 1}}, "stale")
    # WHEN reconciliation runs and the pipeline converges the destination
    pipeline.reconcile()
    pipeline.converge_fully()
    # THEN the destination's shadows are the source's
    for thing in ("dev-1", "dev-2"):
        assert _shadow(DST, thing) == {"desired": {"mode": "eco"}, "reported": {"fw": "1.0"}}
        assert _shadow(DST, thing, "config") == {"desired": {"interval": 60}, "reported": {}}
        assert _shadow(DST, thing, "$telemetry") == {"desired": {}, "reported": {"battery": 0.93}}
    assert _shadow(DST, "dev-1", "stale") is None
    # AND a hand edit in the destination (a key added, one changed) is found and replaced
    _write(DST, "dev-2", {"desired": {"mode": "boost", "extra": True}})
    report = pipeline.audit()
    assert [(d.entity, d.name, d.kind) for d in report.drifts] == [
        (EntityKind.SHADOW, "dev-2#~classic", "changed")
    ]
    pipeline.reconcile()
    pipeline.converge_fully()
    assert _shadow(DST, "dev-2") == {"desired": {"mode": "eco"}, "reported": {"fw": "1.0"}}
    assert pipeline.audit().in_sync
    assert pipeline.audit().counts[EntityKind.SHADOW.value] == 6


def test_the_snapshot_costs_one_listing_and_one_read_per_shadow_per_thing(
    pipeline: LocalPipeline,
) -> None:
    src = pipeline.source
    for n in range(5):
        src.create_thing(thingName=f"dev-{n}")
        _write(SRC, f"dev-{n}", {"desired": {"n": n}})
        _write(SRC, f"dev-{n}", {"desired": {"n": n}}, "a")
        _write(SRC, f"dev-{n}", {"reported": {"n": n}}, "b")
    src.create_thing(thingName="no-shadows")
    inventory = Inventory(src, RateLimiter.unlimited(), opt_in={EntityKind.SHADOW})
    snapshot = take_snapshot(inventory, SRC)
    assert len(snapshot.shadows) == 15
    # per thing: ListNamedShadowsForThing once, GetThingShadow for the classic shadow (a 404
    # where there is none) and once per named shadow
    assert inventory.calls["ListNamedShadowsForThing"] == 6
    assert inventory.calls["GetThingShadow"] == 5 * 3 + 1


def test_shadows_are_listed_only_when_asked(pipeline: LocalPipeline) -> None:
    # GIVEN a thing with a shadow, streamed into the state table as well
    src = pipeline.source
    src.create_thing(thingName="dev-1")
    _write(SRC, "dev-1", {"desired": {"a": 1}})
    # WHEN a snapshot is not asked for shadows (the default: their per-thing calls)
    inventory = Inventory(src, RateLimiter.unlimited())
    snapshot = take_snapshot(inventory, SRC)
    # THEN it makes no shadow call and its shadow table is empty
    assert snapshot.counts()["shadows"] == 0 and snapshot.counts()["things"] == 1
    assert not {"ListNamedShadowsForThing", "GetThingShadow"} & set(inventory.calls)
    # AND the state table, read for a comparison with such snapshots, leaves shadows out too
    from pipeline.kinds.shadow import parse_message
    from reconcile.engine import table_snapshotter

    message = {
        "current": {"state": {"desired": {"a": 1}}, "version": 1},
        "timestamp": NOW // 1000 - 60,
        "topic": "$aws/things/dev-1/shadow/update/documents",
    }
    pipeline.table.apply(parse_message(message, SRC))

    def factory(service: str, region: str) -> Any:
        import boto3

        return boto3.client(service, region_name=region)  # type: ignore[call-overload]

    assert table_snapshotter(factory, TABLE)(DST).counts()["shadows"] == 0
    listed = table_snapshotter(factory, TABLE, opt_in={EntityKind.SHADOW})(DST)
    assert listed.counts()["shadows"] == 1


def test_reconciliation_replicates_only_the_selected_shadows_and_sections(
    aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    selection = ShadowSelection(exclude=("$*",), sections=("desired",))
    with mock_aws():
        pipeline = LocalPipeline(opt_in={EntityKind.SHADOW}, shadows=selection)
        src, dst = pipeline.source, pipeline.destination
        # GIVEN a device with a classic and a `$telemetry` shadow in the source, and in the
        # destination its own reported state and a `$`-prefixed shadow of its own
        src.create_thing(thingName="dev-1")
        dst.create_thing(thingName="dev-1")
        _write(SRC, "dev-1", {"desired": {"mode": "eco"}, "reported": {"fw": "1.0"}})
        _write(SRC, "dev-1", {"reported": {"battery": 0.93}}, "$telemetry")
        _write(DST, "dev-1", {"reported": {"fw": "2.0"}})
        _write(DST, "dev-1", {"reported": {"rssi": -60}}, "$local")
        # WHEN reconciliation runs (SHADOW_EXCLUDE='$*', SHADOW_SECTIONS=desired)
        report = pipeline.audit()
        assert [(d.name, d.kind, tuple(d.details)) for d in report.drifts] == [
            ("dev-1#~classic", "changed", ("desired",))
        ]
        pipeline.reconcile()
        pipeline.converge_fully()
        # THEN the destination has the source's desired state, its own reported state, and
        # neither `$` shadow moved
        assert _shadow(DST, "dev-1") == {"desired": {"mode": "eco"}, "reported": {"fw": "2.0"}}
        assert _shadow(DST, "dev-1", "$telemetry") is None
        assert _shadow(DST, "dev-1", "$local") == {"desired": {}, "reported": {"rssi": -60}}
        assert pipeline.audit().in_sync
        # AND a hand edit of the destination's desired state is found and repaired
        _write(DST, "dev-1", {"desired": {"mode": "boost"}})
        assert [d.name for d in pipeline.audit().drifts] == ["dev-1#~classic"]
        pipeline.reconcile()
        pipeline.converge_fully()
        assert _shadow(DST, "dev-1") == {"desired": {"mode": "eco"}, "reported": {"fw": "2.0"}}


def test_ignore_rules_work_on_shadows_as_on_other_kinds(pipeline: LocalPipeline) -> None:
    src, dst = pipeline.source, pipeline.destination
    # GIVEN a device's shadows differing in both regions
    src.create_thing(thingName="dev-1")
    dst.create_thing(thingName="dev-1")
    _write(SRC, "dev-1", {"desired": {"mode": "eco"}, "reported": {"fw": "1.0"}})
    _write(DST, "dev-1", {"desired": {"mode": "boost"}, "reported": {"fw": "2.0"}})
    _write(SRC, "dev-1", {"reported": {"battery": 0.93}}, "$telemetry")
    # WHEN the operator ignores `$` shadows, and every shadow's reported section
    rules = IgnoreRules(("shadow:*#$*", "shadow:*:reported"))
    engine = Reconciler(
        pipeline.snapshot,
        ignore=rules,
        guards=Guards(allow_deletes=True, max_changes=None, min_source_ratio=0.0),
        emitter=TableEmitter(pipeline.table),
    )
    audit = engine.audit(SRC, DST)
    # THEN only the classic shadow's desired state is drift
    assert [(d.name, tuple(d.details)) for d in audit.report.drifts] == [
        ("dev-1#~classic", ("desired",))
    ]
    # AND the repair keeps the ignored field as the destination has it, and creates no `$` shadow
    engine.apply(engine.plan(audit))
    pipeline.converge_fully()
    assert _shadow(DST, "dev-1") == {"desired": {"mode": "eco"}, "reported": {"fw": "2.0"}}
    assert _shadow(DST, "dev-1", "$telemetry") is None


def test_globs_naming_things_list_the_shadows_of_those_things_only(
    pipeline: LocalPipeline,
) -> None:
    src = pipeline.source
    for thing in ("gw-1", "gw-2", "sensor-1", "sensor-2", "sensor-3"):
        src.create_thing(thingName=thing)
        _write(SRC, thing, {"desired": {"on": True}})
    # WHEN only the gateways' shadows are replicated (SHADOW_INCLUDE='gw-*#*')
    selection = ShadowSelection(include=("gw-*#*",))
    under = {EntityKind.SHADOW: selection.lists_under}
    inventory = Inventory(src, RateLimiter.unlimited(), opt_in={EntityKind.SHADOW}, under=under)
    snapshot = take_snapshot(inventory, SRC)
    # THEN the snapshot makes the per-thing shadow calls for the two gateways alone
    assert sorted(snapshot.shadows["name"]) == ["gw-1#~classic", "gw-2#~classic"]
    assert inventory.calls["ListNamedShadowsForThing"] == 2
    assert inventory.calls["GetThingShadow"] == 2
