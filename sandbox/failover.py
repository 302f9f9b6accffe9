"""``iot-crr demo --failover``: failover and failback on the two-way sandbox (docs/failover.md).

0. Normal operation: the pipeline runs both ways; a fleet made in the primary reaches the DR
   region; audits in both directions exit 0.
1. Just before the outage the primary changes two things whose events never reach the state
   table (the outage takes the IoT rule with it); then the primary stops (``Sandbox.pause``).
2. Failover: operators change the DR registry (updates, creates, a delete); the DR region's
   persist path records them in its replica; replication to the primary waits.
3. The primary returns (``Sandbox.resume``): the Global Table delivers the queued writes and
   the primary's replicator applies the DR region's changes.
4. Failback audit DR → primary: only the primary's two lost changes remain.
5. One reconcile DR → primary with ``--failback``: the dry run holds both (``reconcile.failback``);
   the operator lets the DR version win for one (``--overwrite``) and keeps the primary's other
   one, which a reconcile primary → DR then carries to the DR region.
6. Audits in both directions exit 0.

Every step an operator takes is the real ``iot-crr`` command, run in this process against the
sandbox over HTTP and printed as the operator would type it (exports of ``sandbox up``).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from click.testing import CliRunner

from reconcile.cli import Factory, main
from sandbox.stack import Sandbox

Echo = Callable[[str], None]

FLOOR = "floor-1"
MIN_THINGS = 10  # the story changes device-003 and device-005 … device-009


@dataclass
class FailoverResult:
    """What the story did, for its caller (the CLI's exit code, the test's assertions)."""

    seconds: float = 0.0
    changed_in_dr: int = 0  # entities the DR region changed while the primary was down
    lost_in_primary: int = 0  # registry events of the primary lost with the outage
    held: list[str] = field(default_factory=list)  # held by the failback dry run
    overwritten: list[str] = field(default_factory=list)  # the DR version won
    kept: list[str] = field(default_factory=list)  # the primary's version kept
    audits: dict[str, int] = field(default_factory=dict)  # "DR -> PRIMARY": exit code (final)

    @property
    def clean(self) -> bool:
        return len(self.audits) == 2 and not any(self.audits.values())


@dataclass(frozen=True)
class Command:
    """One ``iot-crr`` run: its exit code and what it printed."""

    exit_code: int
    stdout: str
    stderr: str


def run_failover_demo(*, things: int = 20, echo: Echo = print) -> FailoverResult:
    """Run the story (``things`` ≥ 10); ``result.clean`` when both final audits exit 0."""
    if things < MIN_THINGS:
        raise ValueError(f"the failover story needs at least {MIN_THINGS} things")
    started = time.perf_counter()
    result = FailoverResult()

    def step(message: str) -> None:
        echo(f"[{time.perf_counter() - started:6.1f}s] {message}")

    with Sandbox(two_way=True) as box:
        primary, dr = box.source_region, box.destination_region
        cli = _Cli(box, echo)
        step(f"sandbox up at {box.endpoint_url}: {primary} ⇄ {dr}, the pipeline both ways")

        names = seed_fleet(box.iot(primary), things)
        drained = box.drain(timeout=120)
        step(
            f"0. normal operation: {things} things made in {primary} → "
            f"{drained.records_applied} records applied in {dr}; their echoes there: "
            f"{drained.persisted.get('echo', 0)} recognised, nothing written back"
        )
        cli.audit(dr, primary)
        cli.audit(primary, dr)

        late_change, late_new = names[3], "late-device"
        src = box.iot(primary)
        src.update_thing(
            thingName=late_change,
            attributePayload={"attributes": {"firmware": "9.9-primary"}, "merge": True},
        )
        src.create_thing(thingName=late_new, attributePayload={"attributes": {"firmware": "9.9"}})
        result.lost_in_primary = len(box.outbox(primary).take())
        box.pause(primary)
        step(
            f"1. the primary {primary} stops; its last {result.lost_in_primary} registry events "
            f"({late_change} updated, {late_new} created) never reached the state table"
        )

        result.changed_in_dr = work_in_dr(box.iot(dr), names)
        drained = box.drain(timeout=120)
        step(
            f"2. failover: {result.changed_in_dr} things changed in {dr} → "
            f"{sum(drained.executions.values())} persist executions there; "
            f"replication to {primary} waits"
        )

        box.resume(primary)
        drained = box.drain(timeout=120)
        step(
            f"3. the primary is back: the Global Table delivered {drained.records_replicated} "
            f"queued writes; {drained.records_applied} records applied"
        )

        step(f"4. failback audit {dr} → {primary}: what replication could not carry")
        cli.audit(dr, primary)
        table = ["--state-table", box.table_name]
        dry = cli.run(
            ["reconcile", "--source-region", dr, "--target-region", primary, "--failback", *table]
        )
        result.held = _held_names(dry.stderr)
        step(f"5. failback, DR → primary: {len(result.held)} held: {', '.join(result.held)}")
        dr_machine = box.resources.state_machine_in(dr)
        result.overwritten = [late_change]
        cli.run(
            [
                "reconcile",
                *("--source-region", dr, "--target-region", primary, "--failback", *table),
                *("--overwrite", f"thing:{late_change}", "--apply"),
                *("--state-machine-arn", dr_machine),
            ]
        )
        box.drain(timeout=120)
        result.kept = [late_new]
        cli.run(
            [
                "reconcile",
                *("--source-region", primary, "--target-region", dr, "--apply"),
                *("--state-machine-arn", box.state_machine_arn),
            ]
        )
        box.drain(timeout=120)
        step(
            f"   {late_change}: {dr}'s version won (--overwrite); {late_new}: {primary}'s kept "
            f"(reconcile {primary} → {dr})"
        )

        result.audits = {
            f"{dr} -> {primary}": cli.audit(dr, primary).exit_code,
            f"{primary} -> {dr}": cli.audit(primary, dr).exit_code,
        }
        result.seconds = time.perf_counter() - started
        state = "identical" if result.clean else "NOT identical"
        step(f"6. both audits exit {sorted(set(result.audits.values()))}: the registries are {state}")
    return result


def seed_fleet(iot: Any, count: int) -> list[str]:
    """A small fleet in the primary, over the API (the pipeline carries it to the DR region)."""
    iot.create_thing_group(thingGroupName=FLOOR)
    names = [f"device-{i:03d}" for i in range(count)]
    for name in names:
        iot.create_thing(
            thingName=name, attributePayload={"attributes": {"firmware": "1.0", "site": "dub"}}
        )
        iot.add_thing_to_thing_group(thingGroupName=FLOOR, thingName=name)
    return names


def work_in_dr(iot: Any, names: Sequence[str]) -> int:
    """The DR region's work during the outage: three updates, two new things, a delete."""
    for name in names[5:8]:
        iot.update_thing(
            thingName=name,
            attributePayload={"attributes": {"firmware": "2.0-dr"}, "merge": True},
        )
    for i in range(2):
        iot.create_thing(
            thingName=f"dr-device-{i}", attributePayload={"attributes": {"firmware": "2.0-dr"}}
        )
        iot.add_thing_to_thing_group(thingGroupName=FLOOR, thingName=f"dr-device-{i}")
    iot.remove_thing_from_thing_group(thingGroupName=FLOOR, thingName=names[9])
    iot.delete_thing(thingName=names[9])
    return 6


class _Cli:
    """Runs ``iot-crr`` in this process against the sandbox and prints it as typed."""

    def __init__(self, box: Sandbox, echo: Echo) -> None:
        # The sandbox's clients: made under the emulation's environment lock (the handlers
        # run in this process and apply their environment while they run).
        self._factory = Factory(client=box.client, show_progress=False)
        self._echo = echo

    def run(self, args: list[str]) -> Command:
        runner = CliRunner()
        outcome = runner.invoke(main, args, obj=self._factory, catch_exceptions=False)
        command = Command(outcome.exit_code, outcome.stdout, outcome.stderr)
        self._echo(f"   $ iot-crr {shlex.join(args)}   # exit {command.exit_code}")
        for line in _gist(command):
            self._echo(f"     {line}")
        return command

    def audit(self, source: str, target: str) -> Command:
        return self.run(["audit", "--source-region", source, "--target-region", target])


def _gist(command: Command) -> list[str]:
    """The lines worth reading: the report's headline, held entities, the emit summary."""
    lines = command.stdout.splitlines()[:1]
    for line in command.stderr.splitlines():
        if line.startswith(("held", "  held", "emitted:", "plan ", "  upsert", "  delete")):
            lines.append(line.strip())
    return lines


def _held_names(stderr: str) -> list[str]:
    return [line.split()[2] for line in stderr.splitlines() if line.startswith("  held ")]
