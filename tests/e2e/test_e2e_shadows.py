"""End to end on the sandbox: device shadows written in the source (iot-data, over HTTP) reach
the destination through the streaming path (the emulated update/documents and delete/accepted
messages -> the IoT rule's Step Functions action -> persist -> Global Table -> replicator),
classic and named, changed and deleted, under duplicated and reordered delivery; what the
stream lost, `iot-crr reconcile --apply` repairs through the pipeline."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from reconcile.cli import main
from reconcile.context import Factory
from sandbox.emulation import Delivery
from sandbox.stack import Sandbox

from .conftest import DESTINATION, SOURCE

REGIONS = ["--source-region", SOURCE, "--target-region", DESTINATION]


def _write(sandbox: Sandbox, state: dict[str, Any], shadow: str | None = None) -> None:
    named = {} if shadow is None else {"shadowName": shadow}
    payload = json.dumps({"state": state}).encode()
    sandbox.client("iot-data", SOURCE).update_thing_shadow(
        thingName="dev-1", payload=payload, **named
    )


def _shadows(sandbox: Sandbox, region: str) -> dict[str, Any]:
    """Every shadow of dev-1 in ``region``: name (None: classic) -> its desired and reported."""
    data = sandbox.client("iot-data", region)
    found: dict[str, Any] = {}
    for shadow in [None, *data.list_named_shadows_for_thing(thingName="dev-1")["results"]]:
        named = {} if shadow is None else {"shadowName": shadow}
        try:
            document = json.loads(
                data.get_thing_shadow(thingName="dev-1", **named)["payload"].read()
            )
        except data.exceptions.ResourceNotFoundException:
            continue
        state = document.get("state") or {}
        found[shadow or "~classic"] = {k: state.get(k, {}) for k in ("desired", "reported")}
    return found


def _cli(sandbox: Sandbox, *args: str) -> tuple[int, str]:
    factory = Factory(client=sandbox.client, show_progress=False)
    result = CliRunner().invoke(main, ["--shadows", *args], obj=factory)
    return result.exit_code, result.stdout


def test_shadows_stream_created_changed_and_deleted(sandbox: Sandbox) -> None:
    sandbox.iot(SOURCE).create_thing(thingName="dev-1")
    sandbox.drain(timeout=120)
    # GIVEN a device's classic and named shadows written in the source
    _write(sandbox, {"desired": {"color": "red"}, "reported": {"color": "blue"}})
    _write(sandbox, {"reported": {"fw": "1.0", "cfg": {"a": 1}}}, "config")
    report = sandbox.drain(timeout=120)
    assert report.executions.get("SUCCEEDED") == report.events_delivered, sandbox.failure_reasons()
    # THEN the destination holds the same desired and reported state
    assert _shadows(sandbox, DESTINATION) == _shadows(sandbox, SOURCE) != {}
    # WHEN they change (keys removed too) and one is deleted, delivered duplicated and reordered
    sandbox.set_delivery(Delivery(duplicate_probability=0.5, reorder_window=4, seed=3))
    _write(sandbox, {"desired": {"color": None, "mode": "eco"}})
    _write(sandbox, {"reported": {"cfg": {"a": None, "b": [1, 2]}}}, "config")
    _write(sandbox, {"desired": {"x": 1}}, "temporary")
    sandbox.client("iot-data", SOURCE).delete_thing_shadow(
        thingName="dev-1", shadowName="temporary"
    )
    report = sandbox.drain(timeout=120)
    # THEN the destination ends as the source is
    assert report.failed_batches == [], sandbox.failure_reasons()
    assert _shadows(sandbox, DESTINATION) == _shadows(sandbox, SOURCE)
    assert set(_shadows(sandbox, DESTINATION)) == {"~classic", "config"}


def test_shadows_the_stream_lost_are_repaired_by_reconciliation(sandbox: Sandbox) -> None:
    sandbox.iot(SOURCE).create_thing(thingName="dev-1")
    _write(sandbox, {"desired": {"mode": "eco"}})
    sandbox.drain(timeout=120)
    # GIVEN shadow changes whose messages are all lost, and a hand edit in the destination
    sandbox.set_delivery(Delivery(drop_probability=1.0))
    _write(sandbox, {"desired": {"interval": 60}}, "config")
    sandbox.drain(timeout=60)
    sandbox.set_delivery(Delivery())
    payload = json.dumps({"state": {"desired": {"mode": "boost"}}}).encode()
    sandbox.client("iot-data", DESTINATION).update_thing_shadow(thingName="dev-1", payload=payload)
    sandbox.outbox(DESTINATION).take()
    # WHEN auditing
    code, out = _cli(sandbox, "audit", *REGIONS, "--format", "json")
    assert code == 1
    drifts = sorted((d["entity"], d["name"], d["kind"]) for d in json.loads(out)["drifts"])
    assert drifts == [
        ("shadow", "dev-1#config", "missing"),
        ("shadow", "dev-1#~classic", "changed"),
    ]
    # AND reconciling through the persist state machine
    arn = sandbox.state_machine_arn
    assert _cli(sandbox, "reconcile", *REGIONS, "--apply", "--state-machine-arn", arn)[0] == 0
    sandbox.drain(timeout=120)
    # THEN the destination's shadows are the source's again, and a second audit is clean
    assert _shadows(sandbox, DESTINATION) == _shadows(sandbox, SOURCE)
    assert _cli(sandbox, "audit", *REGIONS)[0] == 0, sandbox.failure_reasons()
