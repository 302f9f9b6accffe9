"""Reconciliation end to end on the sandbox, through the `iot-crr` command line.

`iot-crr audit --format json` reports every seeded difference exactly once; `iot-crr reconcile
--apply` emits corrective events into the persist state machine; once the pipeline drains, a
second audit exits 0. The destination registry is only ever changed by the replicator.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from reconcile.cli import main
from reconcile.context import Factory
from sandbox.emulation import Delivery
from sandbox.stack import Sandbox
from tests.e2e.conftest import DESTINATION, SOURCE

REGIONS = ["--source-region", SOURCE, "--target-region", DESTINATION]


def _cli(sandbox: Sandbox, *args: str) -> tuple[int, str]:
    factory = Factory(client=sandbox.client, show_progress=False)
    result = CliRunner().invoke(main, list(args), obj=factory)
    return result.exit_code, result.stdout


def _seed_with_drift(sandbox: Sandbox) -> None:
    src, dst = sandbox.iot(SOURCE), sandbox.iot(DESTINATION)
    src.create_thing_type(
        thingTypeName="Sensor", thingTypeProperties={"searchableAttributes": ["site"]}
    )
    src.create_billing_group(billingGroupName="gold")
    src.create_thing_group(thingGroupName="site")
    src.create_thing_group(thingGroupName="floor", parentGroupName="site")
    for name in ("a", "b", "c"):
        src.create_thing(
            thingName=name,
            thingTypeName="Sensor",
            attributePayload={"attributes": {"site": "s1"}},
            billingGroupName="gold",
        )
        src.add_thing_to_thing_group(thingName=name, thingGroupName="floor")
    sandbox.drain(timeout=120)
    # Drift of every kind: dropped events, then hand edits in the destination.
    sandbox.set_delivery(Delivery(drop_probability=1.0))
    src.update_thing(thingName="a", attributePayload={"attributes": {"site": "s2"}, "merge": True})
    src.create_thing(thingName="d")
    src.update_thing_group(
        thingGroupName="site", thingGroupProperties={"thingGroupDescription": "HQ"}
    )
    sandbox.drain(timeout=60)
    sandbox.set_delivery(Delivery())
    dst.remove_thing_from_thing_group(thingName="b", thingGroupName="floor")
    dst.create_thing(thingName="only-in-destination")
    sandbox.outbox(DESTINATION).take()


def test_audit_reports_each_difference_once_and_reconcile_repairs_through_the_pipeline(
    sandbox: Sandbox,
) -> None:
    _seed_with_drift(sandbox)
    # WHEN auditing as JSON
    code, out = _cli(sandbox, "audit", *REGIONS, "--format", "json")
    assert code == 1
    drifts = sorted((d["entity"], d["name"], d["kind"]) for d in json.loads(out)["drifts"])
    # THEN every seeded difference is there exactly once. AWS publishes no billing-group events,
    # so the billing group and the things' billing links only ever arrive by reconciliation.
    assert drifts == [
        ("billing_group", "gold", "missing"),
        ("membership", "b#floor", "missing"),
        ("thing", "a", "changed"),  # attribute (dropped event) and billing group
        ("thing", "b", "changed"),  # billing group
        ("thing", "c", "changed"),  # billing group
        ("thing", "d", "missing"),
        ("thing", "only-in-destination", "extra"),
        ("thing_group", "site", "changed"),
    ], sandbox.failure_reasons()
    # WHEN reconciling with --apply through the persist state machine
    code, _ = _cli(
        sandbox,
        "reconcile",
        *REGIONS,
        "--apply",
        "--allow-deletes",
        "--state-machine-arn",
        sandbox.state_machine_arn,
    )
    assert code == 0  # drift was found and every repair emitted: nothing left to act on
    report = sandbox.drain(timeout=120)
    # One corrective event per drift, each converged (8); apart from them, the echo-ledger
    # entries the replicator wrote before converging, which reach its own stream too (skipped):
    # one per record, and one more for a dependency converged on the way (billing group "gold"
    # when a thing's record runs before its own, which depends on the executions' order).
    # If not, the pipeline says why.
    assert report.records_applied == 8, (report, sandbox.failure_reasons())
    assert 8 <= report.bookkeeping_records <= 9, (report, sandbox.failure_reasons())
    # THEN a second audit is clean
    assert _cli(sandbox, "audit", *REGIONS)[0] == 0, sandbox.failure_reasons()
