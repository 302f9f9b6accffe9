"""B3: what the replicator costs, in destination IoT calls per applied event, by event kind;
and how many events per second the whole sandbox pipeline moves.

Part 1 runs in process on moto (``sandbox.inprocess.LocalPipeline``): for each kind, K changes
are persisted into the state table and the stream is drained through the sandbox's event source
mapping → ``pipeline.replicate.handle_batch`` (Powertools' batch processor) →
``pipeline.converge.Converger``; ``Iot.calls`` counts every IoT call. Target: at most 2 calls on average for a thing update (describe +
update).

Part 2 runs the sandbox (``sandbox.stack.Sandbox``: moto server, registry-event emulation, the
persist state machine executing the real ASL and handler, Global Table and event source mapping
emulation, the real replicator): N things are created and updated in the source region and the
time to ``drain()`` everything into the destination gives events per second end to end. Moto
over HTTP on a 2-core machine bounds this figure, not AWS.

CLI: ``python -m bench.replicator_bench [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from bench.common import RESULTS, save
from pipeline.kinds.links import membership_name
from pipeline.model import Change, EntityKind, Origin

TARGET_THING_UPDATE = 2.0
SRC = "us-east-1"


class _Changes:
    """Change values as the event parser makes them, with ever-increasing timestamps."""

    def __init__(self) -> None:
        self.ts = 1_700_000_000_000

    def make(
        self,
        kind: EntityKind,
        name: str,
        fields: dict[str, Any] | None = None,
        *,
        deleted: bool = False,
        version: int | None = None,
    ) -> Change:
        self.ts += 1
        return Change(
            kind,
            name,
            Origin(SRC, self.ts, f"evt-{self.ts}", f"id-{name}", version),
            fields=dict(fields or {}),
            deleted=deleted,
        )


def _scenarios(k: int, c: _Changes) -> list[tuple[str, Callable[[], list[Change]]]]:
    """(kind label, changes to persist then drain), in an order where each builds on the last."""
    typ = EntityKind.THING_TYPE
    grp = EntityKind.THING_GROUP
    thg = EntityKind.THING
    mem = EntityKind.MEMBERSHIP

    def type_fields(deprecated: bool) -> dict[str, Any]:
        return {"description": "d", "searchable_attributes": [], "deprecated": deprecated}

    def group_fields(parent: str | None, value: str) -> dict[str, Any]:
        return {"parent": parent, "description": "g", "attributes": {"a": value}, "query": None}

    def thing_fields(type_name: str | None, value: str) -> dict[str, Any]:
        return {"thing_type": type_name, "attributes": {"a": value, "b": "x"}}

    return [
        (
            "thing type create",
            lambda: [c.make(typ, f"ty-{i}", type_fields(False)) for i in range(k)],
        ),
        (
            "thing type deprecate",
            lambda: [c.make(typ, f"ty-{i}", type_fields(True)) for i in range(1, k)],
        ),
        (
            "thing group create (root)",
            lambda: [c.make(grp, f"g-{i}", group_fields(None, "1"), version=1) for i in range(k)],
        ),
        (
            "thing group create (child)",
            lambda: [c.make(grp, f"c-{i}", group_fields("g-0", "1"), version=1) for i in range(k)],
        ),
        (
            "thing group update",
            lambda: [c.make(grp, f"g-{i}", group_fields(None, "2"), version=2) for i in range(k)],
        ),
        (
            "thing create",
            lambda: [c.make(thg, f"t-{i}", thing_fields("ty-0", "1"), version=1) for i in range(k)],
        ),
        (
            "thing update",
            lambda: [c.make(thg, f"t-{i}", thing_fields("ty-0", "2"), version=2) for i in range(k)],
        ),
        (
            "thing type change",
            lambda: [c.make(thg, f"t-{i}", thing_fields(None, "2"), version=3) for i in range(k)],
        ),
        (
            "membership add",
            lambda: [c.make(mem, membership_name(f"t-{i}", "g-0")) for i in range(k)],
        ),
        (
            "membership remove",
            lambda: [c.make(mem, membership_name(f"t-{i}", "g-0"), deleted=True) for i in range(k)],
        ),
        (
            "thing delete",
            lambda: [c.make(thg, f"t-{i}", deleted=True, version=4) for i in range(k)],
        ),
        (
            "thing group delete",
            lambda: [c.make(grp, f"c-{i}", deleted=True, version=2) for i in range(k)],
        ),
    ]


def measure_calls(k: int) -> dict[str, Any]:
    """IoT calls per applied event, by kind, on moto in process."""
    from moto import mock_aws

    from sandbox.emulation.install import served_in_process
    from sandbox.inprocess import LocalPipeline

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
    results: dict[str, Any] = {}
    # The replicator's handler flushes its metrics after each invocation, as in Lambda; here
    # they would only print.
    quiet = {"POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true")}
    with mock.patch.dict(os.environ, quiet), mock_aws(), served_in_process():
        pipeline = LocalPipeline()
        changes = _Changes()
        for label, make in _scenarios(k, changes):
            batch = make()
            for change in batch:
                pipeline.persist_change(change)
            before = dict(pipeline.registry.calls)
            started = time.perf_counter()
            stats = pipeline.drain()
            seconds = time.perf_counter() - started
            after = pipeline.registry.calls
            delta = {
                op: after[op] - before.get(op, 0) for op in after if after[op] != before.get(op, 0)
            }
            total = sum(delta.values())
            results[label] = {
                "events": len(batch),
                "records": stats.records_applied,
                "retryable_failures": stats.batch_item_failures,
                "calls_per_event": round(total / len(batch), 2),
                "calls": delta,
                "ms_per_event_on_moto": round(1000 * seconds / len(batch), 1),
            }
    return results


def measure_sandbox(things: int) -> dict[str, Any]:
    """Events per second through the whole sandbox pipeline (creates, then updates)."""
    try:
        from sandbox.stack import Sandbox
    except ImportError as error:  # pragma: no cover - the sandbox extra is not installed
        return {"usable": False, "reason": f"cannot import the sandbox: {error}"}
    result: dict[str, Any] = {"usable": True, "things": things}
    with Sandbox() as sandbox:
        iot = sandbox.iot(sandbox.source_region)
        for phase, action in (
            (
                "create",
                lambda i: iot.create_thing(
                    thingName=f"s-{i}", attributePayload={"attributes": {"a": "1"}}
                ),
            ),
            (
                "update",
                lambda i: iot.update_thing(
                    thingName=f"s-{i}", attributePayload={"attributes": {"a": "2"}, "merge": True}
                ),
            ),
        ):
            for i in range(things):
                action(i)
            started = time.perf_counter()
            report = sandbox.drain(timeout=600)
            seconds = time.perf_counter() - started
            result[phase] = {
                "events": report.events_published,
                "seconds": round(seconds, 2),
                "events_per_second": round(report.events_published / seconds, 1)
                if seconds
                else None,
                "records_applied": report.records_applied,
                "batch_item_failures": report.batch_item_failures,
                "executions": dict(report.executions),
            }
        dst = sandbox.iot(sandbox.destination_region)
        result["destination_things"] = len(
            [t for page in dst.get_paginator("list_things").paginate() for t in page["things"]]
        )
    return result


def run(quick: bool = False, out_dir: Path = RESULTS) -> dict[str, Any]:
    k = 2 if quick else 50  # quick (the smoke test): every kind's batch, each of two events
    calls = measure_calls(k)
    try:
        sandbox = measure_sandbox(5 if quick else 100)
    except Exception as error:
        sandbox = {"usable": False, "reason": f"{type(error).__name__}: {error}"}
    update = calls["thing update"]["calls_per_event"]
    result = {
        "benchmark": "B3 replicator cost",
        "quick": quick,
        "events_per_kind": k,
        "calls_by_kind": calls,
        "sandbox": sandbox,
        "targets": {
            "thing_update_calls": {
                "target": TARGET_THING_UPDATE,
                "calls_per_event": update,
                "met": update <= TARGET_THING_UPDATE,
            },
        },
    }
    path = save("replicator_quick" if quick else "replicator", result, out_dir)
    print(summary(result))
    print(f"  -> {path}")
    return result


def summary(result: dict[str, Any]) -> str:
    lines = ["B3 replicator cost" + (" (quick)" if result["quick"] else "")]
    for label, row in result["calls_by_kind"].items():
        lines.append(
            f"  {label:<28} {row['calls_per_event']:>5.2f} IoT calls/event  {row['calls']}"
        )
    target = result["targets"]["thing_update_calls"]
    lines.append(
        f"  target thing update <= {target['target']}: {'MET' if target['met'] else 'NOT MET'} ({target['calls_per_event']})"
    )
    sandbox = result["sandbox"]
    if sandbox.get("usable"):
        for phase in ("create", "update"):
            row = sandbox[phase]
            lines.append(
                f"  sandbox {phase}: {row['events']} events in {row['seconds']} s = "
                f"{row['events_per_second']} events/s end to end (failures {row['batch_item_failures']})"
            )
    else:
        lines.append(f"  sandbox: not usable ({sandbox.get('reason')})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replicator_bench")
    parser.add_argument("--quick", action="store_true", help="few events (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    run(quick=args.quick, out_dir=args.out)


if __name__ == "__main__":
    main()
