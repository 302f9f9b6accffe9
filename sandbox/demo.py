"""``iot-crr demo``: the whole story on the embedded two-region sandbox.

1. A source fleet exists before the pipeline is switched on (its events go nowhere).
2. The first reconciliation is the backfill: audit, plan, corrective events into the state table.
3. Live changes stream through the pipeline: IoT rule → persist state machine → state table →
   Global Table → replicator → destination registry.
4. Drift happens: dropped events, a hand edit in the destination, a group deleted there, a thing
   created there only.
5. Reconciliation finds it, explains it, and repairs it through the persist state machine.
6. A second audit shows zero drift. Reports go to ``--out``.

Everything here is the project's real code; the only stand-ins are moto and the labelled
emulations in ``sandbox.emulation``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.statetable import StateTable
from reconcile.diff import DriftReport, diff_snapshots
from reconcile.emit import (
    EmitResult,
    corrective_changes,
    emit_via_stepfunctions,
    emit_via_table,
)
from reconcile.inventory import Inventory
from reconcile.plan import Guards, Plan, build_plan, describe_plan
from reconcile.ratelimit import RateLimiter
from reconcile.report import render
from reconcile.snapshot import Snapshot, take_snapshot
from sandbox.emulation import Delivery
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


@dataclass(frozen=True)
class Fleet:
    things: list[str]
    floors: list[str]


def run_demo(out: Path, *, things: int = 2000, seed: int = 7, echo: Echo = print) -> bool:
    """Run the story; True when the final audit is clean."""
    out.mkdir(parents=True, exist_ok=True)
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

        report, plan = audit_and_plan(box, Guards(max_changes=None))
        step(f"2. first audit: {_summary_line(report)}")
        emitted = emit_via_table(corrective_changes(plan, box.source_region), _source_table(box))
        step(f"   backfill: {emitted.summary()} corrective events written to the state table")
        drained = box.drain(timeout=600)
        step(f"   pipeline drained: {drained.records_applied} records applied in the destination")

        live_changes(box.iot(box.source_region), fleet, rng)
        drained = box.drain(timeout=120)
        step(
            f"3. live changes streamed: {drained.events_delivered} events → "
            f"{dict(drained.executions)} executions → {drained.records_applied} applied"
        )

        inject_drift(box, fleet, rng)
        step(
            "4. drift injected: 3 dropped events, a hand edit, a deleted group, "
            "a destination-only thing"
        )

        report, plan = audit_and_plan(box, Guards(allow_deletes=True))
        write_reports(report, out, "drift")
        plan.save(out / "plan.json")
        step(f"5. audit: {_summary_line(report)}")
        echo(render(report, "table", limit=15))
        lines = describe_plan(plan).splitlines()
        echo("\n".join(lines[:12]))
        if len(lines) > 12:
            echo(f"  … and {len(lines) - 12} more actions (see {out / 'plan.json'})")
        result = emit_repairs(box, plan)
        drained = box.drain(timeout=120)
        step(
            f"   repair: {result.summary()} via the persist state machine; "
            f"{drained.records_applied} records applied"
        )

        final, _ = audit_and_plan(box, Guards(allow_deletes=True))
        write_reports(final, out, "final")
        step(f"6. final audit: {_summary_line(final)}; reports in {out}/")
        return final.in_sync


def seed_fleet(box: Sandbox, count: int, rng: random.Random) -> Fleet:
    """A realistic source registry: types, a region/site/floor hierarchy, billing groups.

    Seeding is the demo's set-up, not code under test, so it goes straight into moto's backend
    (about 100x faster than over HTTP, moto.md); everything after it uses the AWS API.
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
    box.outbox(box.destination_region).take()


def audit_and_plan(box: Sandbox, guards: Guards) -> tuple[DriftReport, Plan]:
    source = _snapshot(box, box.source_region)
    target = _snapshot(box, box.destination_region)
    report = diff_snapshots(source, target)
    return report, build_plan(report, source, target, guards, now=int(time.time() * 1000))


def emit_repairs(box: Sandbox, plan: Plan) -> EmitResult:
    changes = corrective_changes(plan, box.source_region)
    sfn = box.client("stepfunctions", box.source_region)
    return emit_via_stepfunctions(changes, sfn, box.state_machine_arn)


def write_reports(report: DriftReport, out: Path, stem: str) -> None:
    for fmt, suffix in (("json", "json"), ("markdown", "md"), ("html", "html")):
        (out / f"{stem}.{suffix}").write_text(render(report, fmt))


def _snapshot(box: Sandbox, region: str) -> Snapshot:
    return take_snapshot(Inventory(box.iot(region), RateLimiter()), region)


def _source_table(box: Sandbox) -> StateTable:
    return StateTable(box.client("dynamodb", box.source_region), box.table_name)


def _summary_line(report: DriftReport) -> str:
    if report.in_sync:
        return "in sync (0 drift)"
    parts = []
    for entity, kinds in report.summary().items():
        counted = ", ".join(f"{n} {kind}" for kind, n in kinds.items() if n)
        if counted:
            parts.append(f"{entity}: {counted}")
    return f"{len(report.drifts)} drift items — " + "; ".join(parts)


class _Steps:
    def __init__(self, echo: Echo, started: float) -> None:
        self._echo = echo
        self._started = started

    def __call__(self, message: str) -> None:
        self._echo(f"[{time.perf_counter() - self._started:6.1f}s] {message}")
