"""``iot-crr demo``: the whole story on the embedded two-region sandbox.

1. A source fleet exists before the pipeline is switched on (its events go nowhere).
2. The first nightly run is the backfill: snapshot, diff, plan, corrective events into the table.
3. Live changes stream through the pipeline: IoT rule → persist state machine → state table →
   Global Table → replicator → destination registry; device credentials (3b) and onboarding
   (3c), both ``sandbox.demo_devices``, and a gateway's device shadows (3d,
   ``sandbox.demo_shadows``) too.
4. Drift happens: dropped events, a hand edit in the destination, a group deleted there, a thing
   created there only, a shadow edited there.
5. The nightly job finds it, explains it, and repairs it through the persist state machine.
6. The next nightly run finds zero drift. Reports go to ``--out``; the runs' artefacts and
   history to ``--out``/reports, which ``make report`` renders into the drift notebooks.
7. ``iot-crr readiness``: every device would connect and publish in the destination; a hand
   edit there (a certificate set INACTIVE) and readiness names the device and the fix; restored
   (``sandbox.demo_readiness``).

Everything here is the project's real code; the only stand-ins are moto and the labelled
emulations in ``sandbox.emulation``.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.artefacts import RunRecord
from jobs.config import RunConfig
from jobs.run import run_nightly
from pipeline.clock import now_ms
from reconcile.drift import DriftReport
from reconcile.guards import Guards
from reconcile.plan import Plan, describe_plan
from reconcile.report import load_json, render
from sandbox import demo_shadows
from sandbox.demo_devices import device_credentials, device_onboarding
from sandbox.demo_readiness import readiness
from sandbox.emulation import Delivery, DrainReport
from sandbox.stack import Sandbox

Echo = Callable[[str], None]

THING_TYPES = {
    "TempSensor": ("Temperature sensor", ["model", "site"]),
    "Gateway": ("Edge gateway", ["model", "firmware"]),
    "Meter": ("Energy meter", ["model"]),
    "Camera": ("Security camera", ["model", "site"]),
}
REGIONS = ("emea", "amer")
SITES_PER_REGION = 3
FLOORS_PER_SITE = 2
BILLING_GROUPS = ("standard", "premium")
# The story rolls firmware out to 20 things (``live_changes``) and edits things 1 to 4 by index.
MIN_THINGS = 20
# Written into ``--out``/reports by the demo: a reports directory without it is not the demo's,
# and the demo never deletes it (each demo replaces its own run history).
_MARKER = ".written-by-iot-crr-demo"


class OutInUseError(ValueError):
    """``--out`` holds a reports directory the demo did not write."""


def check_out(out: Path) -> None:
    """Refuse (``OutInUseError``) an ``out`` whose reports/ the demo would replace but did not
    write: someone's run history is never deleted by a demo."""
    reports = out / "reports"
    if reports.exists() and not (reports / _MARKER).is_file():
        raise OutInUseError(
            f"{reports} was not written by the demo, which replaces its run history there; "
            "choose another --out, or remove it yourself"
        )


@dataclass(frozen=True)
class Fleet:
    things: list[str]
    floors: list[str]


def run_demo(out: Path, *, things: int = 2000, seed: int = 7, echo: Echo = print) -> bool:
    """Run the story; True when the final audit is clean. Raises ``ValueError`` for a fleet
    smaller than ``MIN_THINGS`` and ``OutInUseError`` (``check_out``) before anything starts."""
    if things < MIN_THINGS:
        raise ValueError(f"the demo's story needs at least {MIN_THINGS} things")
    check_out(out)
    # Each demo is a new deployment: its run history starts empty (else its runs, which reuse
    # their run ids, would be skipped as already completed).
    shutil.rmtree(out / "reports", ignore_errors=True)
    (out / "reports").mkdir(parents=True)
    (out / "reports" / _MARKER).write_text(
        "iot-crr demo: this run history is replaced by the next demo\n"
    )
    rng = random.Random(seed)
    started = time.perf_counter()
    with Sandbox() as box:
        step = _Steps(echo, started)
        step(f"sandbox up at {box.endpoint_url}: {box.source_region} → {box.destination_region}")

        fleet = seed_fleet(box, things, rng)
        discarded = len(box.outbox(box.source_region).take())
        step(
            f"1. source fleet exists before the pipeline: {things} things, "
            f"{len(THING_TYPES)} types, {len(fleet.floors)} floors in a 3-level hierarchy, "
            f"{len(BILLING_GROUPS)} billing groups ({discarded} registry events went nowhere)"
        )

        # The first reconciliation is the backfill: straight into the state table, no cap.
        backfill = nightly(box, out, "1-backfill", Guards(max_changes=None), via_table=True)
        step(
            f"2. first nightly run (the backfill): {backfill.drift_total} drift items → "
            f"{backfill.repairs_emitted} corrective events written to the state table"
        )
        drained = box.drain(timeout=600, progress=step.counter(backfill.repairs_emitted))
        step(f"   pipeline drained: {drained.records_applied} records applied in the destination")

        live_changes(box.iot(box.source_region), fleet, rng)
        drained = box.drain(timeout=120)
        step(streamed_line(drained))
        _explain_failures(box, drained, echo)

        credentials = device_credentials(box, echo=step)
        _explain_failures(box, box.drain(timeout=120), echo)
        onboarded = device_onboarding(box, echo=step)
        _explain_failures(box, box.drain(timeout=120), echo)
        shadows = demo_shadows.device_shadows(box, echo=step)
        _explain_failures(box, box.drain(timeout=120), echo)

        inject_drift(box, fleet, rng)
        step(
            "4. drift injected: 3 dropped events, a hand edit, a deleted group, "
            "a destination-only thing, a hand-edited shadow"
        )

        repair = nightly(box, out, "2-nightly", Guards(allow_deletes=True))
        step(f"5. nightly run: {_summary_line(repair)}")
        report = _report_of(out, repair)
        write_reports(report, out, "drift")
        echo(render(report, "table", limit=15))
        plan_file = out / "reports" / repair.prefix / "plan.json"
        plan = Plan.load(plan_file)
        echo(describe_plan(plan, limit=11, rest_in=f"all in {plan_file}"))
        drained = box.drain(timeout=120)
        step(
            f"   repair: {repair.repairs_emitted} corrective events through the persist "
            f"state machine; {drained.records_applied} records applied"
        )
        _explain_failures(box, drained, echo)

        final = nightly(box, out, "3-nightly", Guards(allow_deletes=True))
        write_reports(_report_of(out, final), out, "final")
        step(
            f"6. next nightly run: {_summary_line(final)}; reports in {out}/, run history in "
            f"{out}/reports/ (make report renders the notebooks)"
        )
        ready = readiness(box, out, echo=step)
        repaired = demo_shadows.sections(box, box.source_region) == demo_shadows.sections(
            box, box.destination_region
        )
        return (
            final.drift_total == 0 and credentials and onboarded and shadows and repaired and ready
        )


def nightly(
    box: Sandbox, out: Path, run_id: str, guards: Guards, *, via_table: bool = False
) -> RunRecord:
    """One run of the nightly job (jobs.run), as the schedule would start it."""
    config = RunConfig(
        source_region=box.source_region,
        destination_region=box.destination_region,
        state_table=box.table_name,
        report_location=str(out / "reports"),
        guards=guards,
        persist_state_machine_arn=None if via_table else box.state_machine_arn,
        run_id=f"demo-{run_id}",
        # LIST_SHADOWS, for the gateways' shadows only (SHADOW_INCLUDE: sandbox.demo_shadows)
        list_shadows=True,
        shadows=demo_shadows.nightly_shadows(),
    )
    result = run_nightly(config, box.client, now_ms, metrics=lambda _: None)
    return result.record


def seed_fleet(box: Sandbox, count: int, rng: random.Random) -> Fleet:
    """A realistic source registry: types, a region/site/floor hierarchy, billing groups.

    Seeding is the demo's set-up, not code under test, so it goes straight into moto's backend
    (about 100x faster than over HTTP, docs/design.md "The sandbox"); everything after it uses
    the AWS API.
    """
    backend = box.iot_backend(box.source_region)
    for name, (description, searchable) in THING_TYPES.items():
        backend.create_thing_type(
            name, {"thingTypeDescription": description, "searchableAttributes": searchable}
        )
    for name in BILLING_GROUPS:
        backend.create_billing_group(name, {})
    floors: list[str] = []
    for region in REGIONS:
        backend.create_thing_group(
            region, None, {"attributePayload": {"attributes": {"tier": "region"}}}
        )
        for s in range(SITES_PER_REGION):
            site = f"{region}-site-{s}"
            backend.create_thing_group(site, region, {"thingGroupDescription": f"Site {s}"})
            for f in range(FLOORS_PER_SITE):
                floor = f"{site}-floor-{f}"
                backend.create_thing_group(floor, site, {})
                floors.append(floor)
    names: list[str] = []
    for i in range(count):
        name = f"device-{i:05d}"
        thing_type = rng.choice(list(THING_TYPES))
        attributes = {
            "model": f"{thing_type.lower()}-v{rng.randint(1, 4)}",
            "firmware": f"1.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
            "site": f"s{rng.randint(0, 5)}",
        }
        backend.create_thing(
            name, thing_type, {"attributes": attributes}, rng.choice(BILLING_GROUPS)
        )
        backend.add_thing_to_thing_group(rng.choice(floors), None, name, None)
        names.append(name)
    return Fleet(names, floors)


def live_changes(iot: Any, fleet: Fleet, rng: random.Random) -> None:
    """A morning's work in the source: firmware rollout, new devices, a move, a retirement."""
    for name in rng.sample(fleet.things, 20):
        iot.update_thing(
            thingName=name,
            attributePayload={"attributes": {"firmware": "2.0.0"}, "merge": True},
        )
    for i in range(5):
        name = f"new-device-{i}"
        iot.create_thing(
            thingName=name,
            thingTypeName="Meter",
            attributePayload={"attributes": {"model": "meter-v5"}},
        )
        iot.add_thing_to_thing_group(thingName=name, thingGroupName=fleet.floors[0])
    moved = fleet.things[1]
    groups = iot.list_thing_groups_for_thing(thingName=moved)["thingGroups"]
    for group in groups:
        iot.remove_thing_from_thing_group(thingName=moved, thingGroupName=group["groupName"])
    iot.add_thing_to_thing_group(thingName=moved, thingGroupName=fleet.floors[-1])
    iot.delete_thing(thingName=fleet.things[2])
    iot.create_thing_group(thingGroupName="emea-site-0-floor-9", parentGroupName="emea-site-0")


def inject_drift(box: Sandbox, fleet: Fleet, rng: random.Random) -> None:
    """Drift of the kinds that happen in production, then let the pipeline settle."""
    src, dst = box.iot(box.source_region), box.iot(box.destination_region)
    # Dropped events (a failed rule action): these three changes never reach the pipeline.
    box.set_delivery(Delivery(drop_probability=1.0))
    src.update_thing(
        thingName=fleet.things[3],
        attributePayload={"attributes": {"firmware": "2.1.0"}, "merge": True},
    )
    src.create_thing(thingName="lost-device", thingTypeName="Gateway")
    src.update_thing_group(
        thingGroupName="amer", thingGroupProperties={"thingGroupDescription": "Americas"}
    )
    box.drain(timeout=60)
    box.set_delivery(Delivery())
    # Hand edits in the destination: an attribute, a deleted group, a thing that exists only there.
    dst.update_thing(
        thingName=fleet.things[4],
        attributePayload={"attributes": {"model": "hand-edited"}, "merge": True},
    )
    dst.delete_thing_group(thingGroupName=fleet.floors[1])
    dst.create_thing(thingName="destination-only")
    demo_shadows.hand_edit(box)
    box.outbox(box.destination_region).take()


def write_reports(report: DriftReport, out: Path, stem: str) -> None:
    for fmt, suffix in (("json", "json"), ("markdown", "md"), ("html", "html")):
        (out / f"{stem}.{suffix}").write_text(render(report, fmt))


# Why step 3's split varies between runs, printed with it. A typed thing's CreateThing publishes
# THING_EVENT CREATED and THING_TYPE_ASSOCIATION_EVENT, a child group's CreateThingGroup
# THING_GROUP_EVENT CREATED and THING_GROUP_HIERARCHY_EVENT ADDED (``sandbox.emulation``); the
# IoT rule starts an execution per event and Step Functions runs them concurrently, in no set
# order. The second event only repeats a fact the CREATED carries (``pipeline.state``): before
# the CREATED it is "stale", after it "unchanged" (which writes ordering metadata, so it also
# counts as a record the replicator applies). The registries end the same either way.
VARYING_SPLIT = (
    "   (unchanged/stale vary between runs: a new thing's type association and a new group's "
    "parent link run concurrently with its CREATED, in no set order; before it they are "
    "stale, after it unchanged, which also writes a record; the destination ends the same)"
)


def streamed_line(drained: DrainReport) -> str:
    """Step 3's line: events, executions, what persist decided and the records applied; with
    why the split of the same events varies from one run to the next, when it can."""
    persisted = ", ".join(f"{n} {outcome}" for outcome, n in sorted(drained.persisted.items()))
    executions = ", ".join(f"{n} {status}" for status, n in sorted(drained.executions.items()))
    line = (
        f"3. live changes streamed: {drained.events_delivered} events → {executions} "
        f"executions, persisted: {persisted} → {drained.records_applied} records applied"
    )
    if drained.persisted["unchanged"] or drained.persisted["stale"]:
        line += "\n" + VARYING_SPLIT
    return line


def _report_of(out: Path, record: RunRecord) -> DriftReport:
    return load_json(json.loads((out / "reports" / record.prefix / "report.json").read_text()))


def _summary_line(record: RunRecord) -> str:
    if record.drift_total == 0:
        return "in sync (0 drift)"
    parts = []
    for key, count in sorted(record.drift.items()):
        if count:
            parts.append(f"{count} {key.replace('.', ' ')}")
    return f"{record.drift_total} drift items — " + ", ".join(parts)


def _explain_failures(box: Sandbox, drained: DrainReport, echo: Echo) -> None:
    """A failed execution or a batch given up on prints why (the failure queues, the errors)."""
    if set(drained.executions) - {"SUCCEEDED"} or drained.failed_batches:
        for reason in box.failure_reasons():
            echo(f"   ! {reason}")


class _Steps:
    def __init__(self, echo: Echo, started: float) -> None:
        self._echo = echo
        self._started = started

    def __call__(self, message: str) -> None:
        self._echo(f"[{time.perf_counter() - self._started:6.1f}s] {message}")

    def counter(self, total: int) -> Callable[[int], None] | None:
        """A progress line for long waits, only on a terminal (logs get the step lines)."""
        if not sys.stdout.isatty():
            return None

        def show(done: int) -> None:
            elapsed = time.perf_counter() - self._started
            end = "\n" if done >= total else ""
            print(
                f"\r[{elapsed:6.1f}s]    replicating: {done}/{total} records", end=end, flush=True
            )

        return show
