"""`iot-crr sandbox up`'s pump on the real pipeline: slow rounds never end it, it converges,
every failure is printed with its entity and reason, and its exports are all another shell needs."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconcile.cli import main
from sandbox import pump
from sandbox.cli import exports, welcome
from sandbox.emulation import DrainReport
from sandbox.schedule import PENDING_RATE_SECONDS
from sandbox.stack import Sandbox
from tests.e2e.conftest import DESTINATION, SOURCE

BURST = 20  # registry calls per burst; the 2,000-call figure is measured once (README, "Measured")


def destination_things(sandbox: Sandbox) -> int:
    return len(sandbox.iot(DESTINATION).list_things(maxResults=250)["things"])


def test_rounds_over_budget_are_reported_and_the_pump_goes_on_to_converge(
    sandbox: Sandbox,
) -> None:
    # GIVEN a burst of registry calls in the source region, and a round budget of zero (every
    # round that waits for anything is over budget)
    iot = sandbox.iot(SOURCE)

    def burst(start: int) -> None:
        for i in range(start, start + BURST):
            iot.create_thing(thingName=f"burst-{i:04d}")

    burst(0)
    stop = threading.Event()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        slow = sum("slow round" in seen for seen in lines)
        if "slow round" in line and slow == 1:
            burst(BURST)  # a second burst, which only a pump still running can deliver
        if line.startswith("round") and destination_things(sandbox) == 2 * BURST:
            stop.set()  # the condition the test waits for: the destination converged

    # WHEN the pump runs until the destination holds every thing of both bursts
    total = pump.run(sandbox, stop, echo, interval=0, round_budget=0.0)

    # THEN slow rounds were reported, the pump went on, and everything arrived exactly once
    assert any("slow round" in line for line in lines)
    assert sum(line.startswith("round") for line in lines) >= 2
    assert destination_things(sandbox) == 2 * BURST
    # With a zero budget a round leaves its executions running and counts them in a later round;
    # the pump stops as soon as the destination converged, so executions that finished just after
    # the last round's wait are never counted: the count is a lower bound. None may have failed.
    assert set(total.executions) == {"SUCCEEDED"}


def test_a_failure_is_printed_with_its_entity_and_reason(sandbox: Sandbox) -> None:
    # GIVEN an event the persist handler refuses (a THING event without a thing name),
    # started on the persist state machine as the IoT rule would
    sfn = sandbox.client("stepfunctions", SOURCE)
    event = {"eventType": "THING", "operation": "CREATED", "thingName": "", "timestamp": 1}
    sfn.start_execution(stateMachineArn=sandbox.state_machine_arn, input=json.dumps(event))
    stop = threading.Event()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if "failed (persist)" in line:
            stop.set()

    # WHEN the pump runs until a failure line appears
    pump.run(sandbox, stop, echo, interval=0)

    # THEN the round line counts it and the failure line names the entity and the reason
    [failure] = [line for line in lines if "failed (persist)" in line]
    assert "THING" in failure
    assert ": " in failure.split("THING", 1)[1]
    assert any(line.startswith("round") and "1 failures" in line for line in lines)
    # and the message is still in the queue for the operator (read, not consumed)
    assert len(sandbox.persist_failures()) == 1


def test_the_printed_exports_are_all_reconcile_apply_needs(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a thing in the source that never reached the destination (no pump ran)
    sandbox.iot_backend(SOURCE).create_thing("lonely", None, None)
    sandbox.outbox(SOURCE).take()  # its event was "dropped"
    text = welcome(sandbox)
    for name, value in exports(sandbox).items():
        assert f"export {name}={value}" in text
    # WHEN `iot-crr reconcile --apply` runs with exactly those variables and no options
    for name, value in exports(sandbox).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["reconcile", "--apply"])

    # THEN it emitted the corrective event into the sandbox's pipeline, which delivers it
    assert "emitted:" in result.output and "failed=0" in result.output, result.output
    report: Any = sandbox.drain(timeout=60)
    assert isinstance(report, DrainReport)
    assert destination_things(sandbox) == 1


def test_a_deleted_thing_type_finishes_without_minutes_of_wall_time(sandbox: Sandbox) -> None:
    # GIVEN a type replicated, then deprecated and deleted in the source (its 5 minutes skipped
    # on the sandbox's clock), so the replicator deprecates it in the destination and leaves a
    # pending deletion for the destination stack's scheduled task
    source, destination = sandbox.iot(SOURCE), sandbox.iot(DESTINATION)
    source.create_thing_type(thingTypeName="retired")
    sandbox.drain()
    source.deprecate_thing_type(thingTypeName="retired")
    sandbox.skip(PENDING_RATE_SECONDS + 1)
    source.delete_thing_type(thingTypeName="retired")
    sandbox.drain()
    assert destination.describe_thing_type(thingTypeName="retired")["thingTypeMetadata"][
        "deprecated"
    ]
    assert [p.name for p in sandbox.pending_deletions()] == ["retired"]
    stop = threading.Event()
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith("pending type deletions") and "deleted" in line:
            stop.set()

    # WHEN `sandbox up`'s pump runs (bounded by wall time, far below the 5 minutes of AWS's wait
    # and the schedule's)
    timer = threading.Timer(120, stop.set)
    timer.start()
    try:
        pump.run(sandbox, stop, echo, interval=0.1)
    finally:
        timer.cancel()

    # THEN the scheduled task ran on the sandbox's clock and finished the deletion
    assert any("1 deleted (retired)" in line for line in lines), lines
    names = [t["thingTypeName"] for t in destination.list_thing_types()["thingTypes"]]
    assert "retired" not in names
    assert sandbox.pending_deletions() == []
