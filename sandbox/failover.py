"""``iot-crr demo --failover``: failover and failback on the two-way sandbox (docs/failover.md).

0. Normal operation: the pipeline runs both ways; a fleet made in the primary reaches the DR
   region; audits in both directions exit 0.
1. Just before the outage the primary changes two things whose events never reach the state
   table (the outage takes the IoT rule with it); then the primary stops (``Sandbox.pause``).
2. Failover: operators change the DR registry (updates, creates, a delete) and a device that
   reconnected there writes its shadow; the DR region's persist path records them in its
   replica; replication to the primary waits.
3. The primary returns (``Sandbox.resume``): the Global Table delivers the queued writes and
   the primary's replicator applies the DR region's changes, the device's shadow included.
4. Failback audit DR → primary: only the primary's two lost changes remain.
5. One reconcile DR → primary with ``--failback``: the dry run holds both (``reconcile.failback``);
   the operator lets the DR version win for one (``--overwrite``) and keeps the primary's other
   one, which a reconcile primary → DR then carries to the DR region.
6. Audits in both directions exit 0, device shadows compared too (``iot-crr --shadows``).

Every step an operator takes is the real ``iot-crr`` command, run in this process against the
sandbox over HTTP and printed as the operator would type it (exports of ``sandbox up``).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from click.testing import CliRunner

from reconcile.cli import main
from reconcile.context import Factory
from sandbox.stack import Sandbox

Echo = Callable[[str], None]

FLOOR = "floor-1"
MIN_THINGS = 10  # the story changes device-003 and device-005 … device-009
# The shadow a device writes in the DR region during the outage (its classic one): an
# application's new desired state and the device's report.
DR_SHADOW = {"desired": {"mode": "dr"}, "reported": {"mode": "dr", "fw": "2.0-dr"}}


@dataclass(frozen=True)
class TableWrites:
    """State-table writes in normal two-way operation, for ``changes`` registry changes."""

    changes: int = 0
    entity: int = 0  # persist writes and their Global Table copies
    bookkeeping: int = 0  # echo-ledger writes (expectations, echo marks) and their copies

    def __str__(self) -> str:
        per = max(self.changes, 1)
        return (
            f"{self.entity / per:.2f} entity + {self.bookkeeping / per:.2f} echo-ledger "
            f"({self.entity} + {self.bookkeeping} for {self.changes} changes)"
        )


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
    table_writes: TableWrites = TableWrites()
    # The shadow the device wrote in the DR region, as the primary holds it once it is back
    # (its desired and reported sections; None: the primary has no such shadow).
    shadow_in_primary: dict[str, Any] | None = None

    @property
    def clean(self) -> bool:
        shadow_back = self.shadow_in_primary == DR_SHADOW
        return len(self.audits) == 2 and not any(self.audits.values()) and shadow_back


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
    with Sandbox(two_way=True) as box:
        story = _Story(box, echo, started)
        story.step(
            f"sandbox up at {box.endpoint_url}: {story.primary} ⇄ {story.dr}, "
            "the pipeline both ways"
        )
        names = story.normal_operation(things)
        late = story.outage(names)
        story.failover(names)
        story.primary_returns()
        story.failback(*late)
        story.final_audits()
    story.result.seconds = time.perf_counter() - started
    return story.result


class _Story:
    """The steps of the story, one method each, on one two-way sandbox."""

    def __init__(self, box: Sandbox, echo: Echo, started: float) -> None:
        self.box = box
        self.primary, self.dr = box.source_region, box.destination_region
        self.cli = _Cli(box, echo)
        self.result = FailoverResult()
        self.device = ""  # the device whose shadow is written in the DR region (``failover``)
        self._echo = echo
        self._started = started

    def step(self, message: str) -> None:
        self._echo(f"[{time.perf_counter() - self._started:6.1f}s] {message}")

    def normal_operation(self, things: int) -> list[str]:
        box, primary, dr = self.box, self.primary, self.dr
        names = seed_fleet(box.iot(primary), things)
        changes = len(box.outbox(primary))
        copied_before = box.replicated()
        drained = box.drain(timeout=120)
        copied = box.replicated() - copied_before
        self.result.table_writes = TableWrites(
            changes=changes,
            entity=drained.persisted["applied"] + sum(copied.values()) - copied["ECHO"],
            bookkeeping=2 * copied["ECHO"],  # each ledger write and its copy
        )
        self.step(
            f"0. normal operation: {changes} registry changes in {primary} (a group, {things} "
            f"things and their memberships) → persisted {dict(drained.persisted)} across both "
            f"regions (the echoes in {dr} write no entity item); table writes per change: "
            f"{self.result.table_writes}"
        )
        self.cli.audit(dr, primary)
        self.cli.audit(primary, dr)
        return names

    def outage(self, names: Sequence[str]) -> tuple[str, str]:
        """The primary's last changes, whose events are lost, then the primary stops."""
        late_change, late_new = names[3], "late-device"
        iot = self.box.iot(self.primary)
        iot.update_thing(
            thingName=late_change,
            attributePayload={"attributes": {"firmware": "9.9-primary"}, "merge": True},
        )
        iot.create_thing(thingName=late_new, attributePayload={"attributes": {"firmware": "9.9"}})
        self.result.lost_in_primary = len(self.box.outbox(self.primary).take())
        self.box.pause(self.primary)
        self.step(
            f"1. the primary {self.primary} stops; its last {self.result.lost_in_primary} "
            f"registry events ({late_change} updated, {late_new} created) never reached the "
            "state table"
        )
        return late_change, late_new

    def failover(self, names: Sequence[str]) -> None:
        self.result.changed_in_dr = work_in_dr(self.box.iot(self.dr), names)
        self.device = names[5]
        payload = json.dumps({"state": DR_SHADOW}).encode()
        self.box.client("iot-data", self.dr).update_thing_shadow(
            thingName=self.device, payload=payload
        )
        events = len(self.box.outbox(self.dr))
        drained = self.box.drain(timeout=120)
        self.step(
            f"2. failover: {self.result.changed_in_dr} things changed and {self.device}'s shadow "
            f"written in {self.dr} ({events} events) → persisted {dict(drained.persisted)} in "
            f"its replica; replication to {self.primary} waits"
        )

    def primary_returns(self) -> None:
        self.box.resume(self.primary)
        drained = self.box.drain(timeout=120)
        self.result.shadow_in_primary = shadow_of(self.box, self.primary, self.device)
        self.step(
            f"3. the primary is back: the Global Table delivered {drained.records_replicated} "
            f"queued writes; {drained.records_applied} records applied; {self.device}'s shadow "
            f"in {self.primary}: {_compact(self.result.shadow_in_primary)}"
        )

    def failback(self, late_change: str, late_new: str) -> None:
        """Audit, the guarded dry run, the operator's choice, one reconcile each way."""
        box, primary, dr, cli = self.box, self.primary, self.dr, self.cli
        self.step(f"4. failback audit {dr} → {primary}: what replication could not carry")
        cli.audit(dr, primary)
        back = ["--source-region", dr, "--target-region", primary]
        guard = ["--failback", "--state-table", box.table_name]
        dry = cli.run(["reconcile", *back, *guard])
        self.result.held = _held_names(dry.stderr)
        self.step(
            f"5. reconcile {dr} → {primary} --failback: {len(self.result.held)} held "
            f"({', '.join(self.result.held)}); the operator lets {dr}'s {late_change} win "
            f"and keeps {primary}'s {late_new}"
        )
        self.result.overwritten = [late_change]
        cli.run(
            [
                *("reconcile", *back, *guard, "--overwrite", f"thing:{late_change}"),
                *("--apply", "--state-machine-arn", box.resources.state_machine_in(dr)),
            ]
        )
        box.drain(timeout=120)
        self.result.kept = [late_new]
        cli.run(
            [
                *("reconcile", "--source-region", primary, "--target-region", dr),
                *("--apply", "--state-machine-arn", box.state_machine_arn),
            ]
        )
        box.drain(timeout=120)

    def final_audits(self) -> None:
        primary, dr = self.primary, self.dr
        self.result.audits = {
            f"{dr} -> {primary}": self.cli.audit(dr, primary, shadows=True).exit_code,
            f"{primary} -> {dr}": self.cli.audit(primary, dr, shadows=True).exit_code,
        }
        state = "identical" if self.result.clean else "NOT identical"
        codes = ", ".join(f"{pair} exit {code}" for pair, code in self.result.audits.items())
        self.step(f"6. final audits: {codes}; the registries are {state}")


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


def shadow_of(box: Sandbox, region: str, thing: str) -> dict[str, Any] | None:
    """A thing's classic shadow in ``region``: its desired and reported state (None: none)."""
    data = box.client("iot-data", region)
    try:
        document = json.loads(data.get_thing_shadow(thingName=thing)["payload"].read())
    except data.exceptions.ResourceNotFoundException:
        return None
    state = document.get("state") or {}
    return {key: state[key] for key in ("desired", "reported") if key in state}


def _compact(value: Any) -> str:
    return "none" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


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

    def audit(self, source: str, target: str, *, shadows: bool = False) -> Command:
        """``iot-crr audit``; ``shadows``: device shadows compared too (``--shadows``)."""
        listing = ["--shadows"] if shadows else []
        return self.run([*listing, "audit", "--source-region", source, "--target-region", target])


def _gist(command: Command) -> list[str]:
    """The lines worth reading: the report's headline, held entities, the emit summary."""
    lines = command.stdout.splitlines()[:1]
    for line in command.stderr.splitlines():
        if line.startswith(("held", "  held", "emitted:", "plan ", "  upsert", "  delete")):
            lines.append(line.strip())
    return lines


def _held_names(stderr: str) -> list[str]:
    return [line.split()[2] for line in stderr.splitlines() if line.startswith("  held ")]
