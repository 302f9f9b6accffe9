"""Reconciliation of retained messages on moto in two regions, with the sandbox's emulation of
the retained messages moto lacks (``sandbox.emulation.retained``): the snapshot lists the topics
its globs include (ListRetainedMessages, GetRetainedMessage on iot-data), the audit finds a
missing, a changed and an extra one, and reconcile --apply repairs them through the pipeline
(Publish with retain; an empty payload deletes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipeline.model import EntityKind
from reconcile.diff import diff_snapshots
from reconcile.guards import Guards
from reconcile.inventory import Inventory
from reconcile.ratelimit import RateLimiter
from reconcile.snapshot import Snapshot, take_snapshot
from sandbox import emulation
from sandbox.inprocess import DST, SRC, TABLE, LocalPipeline

NOW = 1_796_119_205_000
RETAINED = EntityKind.RETAINED_MESSAGE
CONFIG = {RETAINED: ("config/*",)}


@pytest.fixture
def pipeline(pipeline_environment: None) -> Iterator[LocalPipeline]:
    with mock_aws():
        emulation.install(emulation.RegistryEmulation())
        try:
            yield LocalPipeline(opt_in={RETAINED}, include=CONFIG)
        finally:
            emulation.uninstall()


def _data(region: str) -> Any:
    return boto3.client("iot-data", region_name=region)


def _retain(region: str, topic: str, payload: bytes, **options: Any) -> None:
    _data(region).publish(topic=topic, payload=payload, retain=True, **options)


def _retained(region: str, topic: str) -> dict[str, Any] | None:
    data = _data(region)
    try:
        message = data.get_retained_message(topic=topic)
    except data.exceptions.ResourceNotFoundException:
        return None
    return {
        "payload": message["payload"],
        "qos": message["qos"],
        "user_properties": message.get("userProperties"),
    }


def test_a_changed_payload_is_a_high_drift() -> None:
    row = {"name": "config/d1", "payload": "YQ==", "qos": 1, "user_properties": "[]"}
    source = Snapshot.from_records(SRC, NOW, retained_messages=[row])
    target = Snapshot.from_records(DST, NOW, retained_messages=[{**row, "payload": "Yg=="}])
    (drift,) = diff_snapshots(source, target).drifts
    assert (drift.entity, drift.kind, drift.severity) == (RETAINED, "changed", "high")
    assert drift.details == {"payload": {"source": "YQ==", "target": "Yg=="}}


def test_reconciliation_repairs_missing_changed_and_extra_retained_messages(
    pipeline: LocalPipeline,
) -> None:
    # GIVEN retained configuration in the source (binary, QoS 1, MQTT 5 user properties), and
    # a retained message outside the included topics
    _retain(SRC, "config/dev-1", b"\x00\x01mode=eco", qos=1, userProperties=[{"v": "2"}])
    _retain(SRC, "config/dev-2", b'{"interval": 60}')
    _retain(SRC, "status/dev-1", b"online")
    # AND in the destination: dev-2's changed by hand, an extra config topic and an extra
    # topic outside the globs (left alone)
    _retain(DST, "config/dev-2", b'{"interval": 5}')
    _retain(DST, "config/old", b"stale")
    _retain(DST, "status/dev-9", b"offline")
    # WHEN the audit runs
    report = pipeline.audit()
    # THEN it finds the missing, the changed and the extra one among the included topics only
    assert sorted((d.name, d.kind) for d in report.drifts if d.entity is RETAINED) == [
        ("config/dev-1", "missing"),
        ("config/dev-2", "changed"),
        ("config/old", "extra"),
    ]
    # WHEN reconcile --apply runs (deletes allowed) and the pipeline converges the destination
    pipeline.reconcile(Guards(allow_deletes=True, max_changes=None, min_source_ratio=0.0))
    pipeline.converge_fully()
    # THEN the destination retains the source's messages, payload, QoS and properties alike
    assert _retained(DST, "config/dev-1") == {
        "payload": b"\x00\x01mode=eco",
        "qos": 1,
        "user_properties": b'[{"v":"2"}]',
    }
    assert _retained(DST, "config/dev-2") == {
        "payload": b'{"interval": 60}',
        "qos": 0,
        "user_properties": None,
    }
    # AND the extra one was deleted by an empty retained publish; topics outside the globs
    # were neither copied nor deleted
    assert _retained(DST, "config/old") is None
    assert _retained(DST, "status/dev-1") is None
    assert _retained(DST, "status/dev-9") is not None
    assert pipeline.audit().in_sync


def test_extra_retained_messages_stay_without_allow_deletes(pipeline: LocalPipeline) -> None:
    # GIVEN a retained message only the destination has (and one both have)
    _retain(SRC, "config/dev-1", b"c")
    _retain(DST, "config/dev-1", b"c")
    _retain(DST, "config/old", b"stale")
    # WHEN reconciliation runs without --allow-deletes
    pipeline.reconcile(Guards(allow_deletes=False, max_changes=None, min_source_ratio=0.0))
    pipeline.converge_fully()
    # THEN it is still retained there
    assert _retained(DST, "config/old") is not None


def test_the_listing_describes_only_the_included_topics(pipeline: LocalPipeline) -> None:
    for n in range(5):
        _retain(SRC, f"config/dev-{n}", b"c")
        _retain(SRC, f"telemetry/dev-{n}", b"t")
    inventory = Inventory(
        pipeline.source, RateLimiter.unlimited(), page_size=2, opt_in={RETAINED}, include=CONFIG
    )
    snapshot = take_snapshot(inventory, SRC)
    assert sorted(snapshot.retained_messages["name"]) == [f"config/dev-{n}" for n in range(5)]
    # one GetRetainedMessage per included topic; 10 topics at 2 a page: 5 pages
    assert inventory.calls["GetRetainedMessage"] == 5
    assert inventory.calls["ListRetainedMessages"] == 5


def test_retained_messages_are_listed_only_when_asked(pipeline: LocalPipeline) -> None:
    _retain(SRC, "config/dev-1", b"c")
    inventory = Inventory(pipeline.source, RateLimiter.unlimited())
    snapshot = take_snapshot(inventory, SRC)
    assert snapshot.counts()["retained_messages"] == 0
    assert not {"ListRetainedMessages", "GetRetainedMessage"} & set(inventory.calls)


def test_the_state_table_without_retained_rows_reads_under_topic_globs(
    pipeline: LocalPipeline,
) -> None:
    """``iot-crr --retained GLOB reconcile`` with a state table (its three-way audit) reads the
    table under the same globs; a table holding no retained message gave a frame without columns
    (a boolean mask of no rows selects columns), refused as ``missing columns``."""
    from reconcile.engine import table_snapshotter

    def factory(service: str, region: str) -> Any:
        return boto3.client(service, region_name=region)  # type: ignore[call-overload]

    # GIVEN the state table holds no retained message, WHEN it is read under topic globs
    snapshot = table_snapshotter(factory, TABLE, opt_in={RETAINED}, include=CONFIG)(DST)
    # THEN its retained-message table is empty, with its columns
    assert snapshot.counts()["retained_messages"] == 0
    assert "payload" in snapshot.frames["retained_messages"].columns
