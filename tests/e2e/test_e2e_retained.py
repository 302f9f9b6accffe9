"""End to end on the sandbox: retained messages (iot-data, over HTTP) that exist only in the
source, or differ in the destination, are found by `iot-crr --retained GLOB audit` and repaired
by `reconcile --apply` through the persist state machine, the Global Table and the replicator
(Publish with retain in the destination; an empty retained publish deletes an extra one)."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from reconcile.cli import main
from reconcile.context import Factory
from sandbox.stack import Sandbox

from .conftest import DESTINATION, SOURCE

REGIONS = ["--source-region", SOURCE, "--target-region", DESTINATION]


def _retained(sandbox: Sandbox, region: str) -> dict[str, Any]:
    """Every retained message under ``config/`` in ``region``: topic -> (payload, QoS)."""
    data = sandbox.client("iot-data", region)
    topics = [
        summary["topic"]
        for page in data.get_paginator("list_retained_messages").paginate()
        for summary in page["retainedTopics"]
        if summary["topic"].startswith("config/")
    ]
    found = {}
    for topic in topics:
        message = data.get_retained_message(topic=topic)
        found[topic] = (message["payload"], message["qos"])
    return found


def _cli(sandbox: Sandbox, *args: str) -> tuple[int, str]:
    factory = Factory(client=sandbox.client, show_progress=False)
    result = CliRunner().invoke(main, ["--retained", "config/*", *args], obj=factory)
    return result.exit_code, result.stdout


def test_retained_messages_are_audited_and_repaired(sandbox: Sandbox) -> None:
    source, destination = (sandbox.client("iot-data", r) for r in (SOURCE, DESTINATION))
    # GIVEN retained configuration in the source, one of them changed by hand in the
    # destination, an extra one there, and a retained topic outside the glob
    source.publish(topic="config/dev-1", payload=b'{"mode": "eco"}', qos=1, retain=True)
    source.publish(topic="config/dev-2", payload=b"\x00\x01", retain=True)
    source.publish(topic="status/dev-1", payload=b"online", retain=True)
    destination.publish(topic="config/dev-2", payload=b"\x00\x02", retain=True)
    destination.publish(topic="config/old", payload=b"stale", retain=True)
    # WHEN auditing
    code, out = _cli(sandbox, "audit", *REGIONS, "--format", "json")
    assert code == 1
    drifts = sorted((d["entity"], d["name"], d["kind"]) for d in json.loads(out)["drifts"])
    assert drifts == [
        ("retained_message", "config/dev-1", "missing"),
        ("retained_message", "config/dev-2", "changed"),
        ("retained_message", "config/old", "extra"),
    ]
    # AND reconciling through the persist state machine, deletes allowed
    arn = sandbox.state_machine_arn
    args = ("reconcile", *REGIONS, "--apply", "--allow-deletes", "--state-machine-arn", arn)
    assert _cli(sandbox, *args)[0] == 0
    sandbox.drain(timeout=120)
    # THEN the destination retains what the source does under the glob, and nothing else there
    assert (
        _retained(sandbox, DESTINATION)
        == _retained(sandbox, SOURCE)
        == {
            "config/dev-1": (b'{"mode": "eco"}', 1),
            "config/dev-2": (b"\x00\x01", 0),
        }
    )
    assert _cli(sandbox, "audit", *REGIONS)[0] == 0, sandbox.failure_reasons()
