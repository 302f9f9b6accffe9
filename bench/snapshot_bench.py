"""B2: what a snapshot costs in API calls, against the lower bound set by page sizes.

A registry of N things, G static groups (with memberships), B billing groups and T types is
seeded straight into moto's IoT backend (``moto.iot.models.iot_backends``; fast, and never a code
path under test). ``reconcile.snapshot.take_snapshot`` then reads it through
``reconcile.inventory.Inventory``, and every request the boto3 client makes is counted with a
botocore ``before-call.iot.*`` hook (so the count is what AWS would bill and throttle, not what
the inventory believes it did).

Lower bound, per operation, with AWS's page sizes (250 per List call): ``ceil(N/250)``
ListThings, one ListThingGroups page per 250 groups plus one DescribeThingGroup per group, one
ListThingsInThingGroup page per 250 members of each group (at least one per group), the same
for billing groups, one ListThingTypes page per 250 types. Target: at most 1.05x the bound.

Wall time: the snapshot runs under the real ``RateLimiter`` at the documented default quotas on
a ``VirtualClock`` (time passes only when a listing waits for its quota; each concurrent
listing keeps its own reading), which gives the wall time those quotas impose with zero
latency. Each API has its own quota and the listing families run concurrently, so no snapshot
can be faster than ``max over APIs (calls / quota)``; target: at most 1.1x that bound. For 1M
things the calls are the page-size counts scaled by the call ratio measured here, and the time
is projected, not measured: the time a snapshot at our limiter needs for the slowest API
plus the scheduling overhead measured here. The limiter lets one second's worth of calls
through at once, so a measured time can sit up to a second under the bound.

Latency (issue 26, target 2): the same snapshot with every call taking 50, 100 or 200 ms of its
caller's virtual time to return (a botocore ``after-call`` hook), the things listing as one chain
of pages and in parts by thing type (``pipeline.kinds.thing.BY_TYPE``; sound here, every seeded
thing has a type), each compared with its quota bound and checked to give the same snapshot. A
chain of calls is modelled exactly; a pool's bound on concurrency is not (a task starts when it
is handed over), so pooled calls' figures are optimistic: the things listing's 4 parts keep
ListThings' 10 TPS busy up to 400 ms a call in reality too.

CLI: ``python -m bench.snapshot_bench [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import math
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import RESULTS, save

PAGE = 250
TARGET_RATIO = 1.05
TARGET_TIME_RATIO = 1.1
FULL = {"things": 20_000, "groups": 100, "billing_groups": 5, "types": 10}
QUICK = {"things": 1_200, "groups": 8, "billing_groups": 2, "types": 3}
# The fleet the wall-time projection is for: 1M things, 1,000 groups of 1,000 things each.
PROJECTION = {"things": 1_000_000, "groups": 1_000, "billing_groups": 10, "types": 20}
REGION = "us-east-1"
# Round trips modelled per call (target 2 of issue 26); the listing as one chain of pages, and in
# parts by thing type (``pipeline.kinds.thing.BY_TYPE``: sound here, every seeded thing is typed).
LATENCIES_MS = (0, 50, 100, 200)
QUICK_LATENCIES_MS = (200,)  # the smoke test's budget (CI): the worst only
LISTINGS: dict[str, dict[str, str]] = {"whole": {}, "by_type": {"thing": "type"}}


def quota_bound_seconds(calls: dict[str, int], quotas: dict[str, float]) -> float:
    """The least wall time any snapshot making ``calls`` needs: its slowest API at its quota
    (calls without one, a partition's single check of the fleet index, bound nothing)."""
    return max(count / quotas[op] for op, count in calls.items() if op in quotas)


def limiter_floor_seconds(calls: dict[str, int], quotas: dict[str, float]) -> float:
    """The same with the limiter's burst (one second's worth of calls) taken first: the least
    time our ``RateLimiter`` can give; at most one second under ``quota_bound_seconds``."""
    return max(
        max(0, count - max(quotas[op], 1)) / quotas[op]
        for op, count in calls.items()
        if op in quotas
    )


def lower_bound(
    *,
    things: int,
    groups: int,
    billing_groups: int,
    types: int,
    members_per_group: int,
    members_per_billing_group: int,
) -> dict[str, int]:
    """The fewest calls of each operation any correct snapshot needs at AWS's page sizes."""

    def pages(count: int) -> int:
        return max(1, math.ceil(count / PAGE))

    return {
        "ListThings": pages(things),
        "ListThingTypes": pages(types),
        "ListThingGroups": pages(groups),
        "DescribeThingGroup": groups,
        "ListThingsInThingGroup": groups * pages(members_per_group),
        "ListBillingGroups": pages(billing_groups),
        "DescribeBillingGroup": billing_groups,
        "ListThingsInBillingGroup": billing_groups * pages(members_per_billing_group),
    }


def seed(backend: Any, things: int, groups: int, billing_groups: int, types: int) -> None:
    """Fill a moto IoT backend directly (~100k things/s); memberships spread evenly. The thing
    index is on: listing by type first asks it whether a thing has no type."""
    backend.update_indexing_configuration(
        {"thingIndexingMode": "REGISTRY"}, {"thingGroupIndexingMode": "OFF"}
    )
    for t in range(types):
        backend.create_thing_type(f"type-{t}", {"thingTypeDescription": f"type {t}"})
    group_objects = []
    for g in range(groups):
        _, arn, _ = backend.create_thing_group(f"group-{g}", None, {"thingGroupDescription": "g"})
        group_objects.append(backend.thing_groups[arn])
    billing = [backend.create_billing_group(f"bg-{b}", None) for b in range(billing_groups)]
    for i in range(things):
        thing = backend.create_thing(
            f"thing-{i:08d}", f"type-{i % types}", {"attributes": {"a": str(i), "b": "x"}}
        )
        group = group_objects[i % groups]
        group.things[thing.arn] = thing
        billing_group = billing[i % billing_groups]
        billing_group.things.append(thing.arn)
        thing.billing_group_name = billing_group.billing_group_name


def measure(fleet: dict[str, int], latencies: tuple[int, ...] = LATENCIES_MS) -> dict[str, Any]:
    import boto3
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iot.models import iot_backends

    from pipeline.kinds.thing import BY_TYPE
    from reconcile.ratelimit import DEFAULT_QUOTAS
    from sandbox.emulation.install import served_in_process

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws(), served_in_process():
        seed(iot_backends[DEFAULT_ACCOUNT_ID][REGION], **fleet)
        base = _take(boto3.client("iot", region_name=REGION), 0, {})
        sweep = [
            (latency, name, _take(boto3.client("iot", region_name=REGION), latency, partitions))
            for latency in latencies
            for name, partitions in LISTINGS.items()
            if latency or partitions  # zero latency, whole listing: ``base``
        ]
    requests, wall, snapshot = base["requests"], base["elapsed"], base["snapshot"]

    per_group = math.ceil(fleet["things"] / fleet["groups"])
    per_billing = math.ceil(fleet["things"] / fleet["billing_groups"])
    bound = lower_bound(**fleet, members_per_group=per_group, members_per_billing_group=per_billing)
    total, total_bound = sum(requests.values()), sum(bound.values())
    projection_bound = lower_bound(
        **PROJECTION,
        members_per_group=PROJECTION["things"] // PROJECTION["groups"],
        members_per_billing_group=PROJECTION["things"] // PROJECTION["billing_groups"],
    )
    ratio = total / total_bound
    quotas = dict(DEFAULT_QUOTAS)
    bound_seconds = quota_bound_seconds(dict(requests), quotas)
    time_ratio = wall / bound_seconds
    # What the schedule adds to the slowest API's own time (a listing waiting for the one it
    # depends on) does not grow with the fleet; the 1M figure adds it to that fleet's floor.
    floor = limiter_floor_seconds(dict(requests), quotas)
    overhead = max(0.0, wall - floor)
    projected_calls = {op: round(calls * ratio) for op, calls in projection_bound.items()}
    by_operation = {op: calls / quotas[op] for op, calls in projected_calls.items()}
    projected_bound = quota_bound_seconds(projected_calls, quotas)
    projected_wall = limiter_floor_seconds(projected_calls, quotas) + overhead
    latency = _latency_rows(base, sweep, quotas, latencies)
    at_worst = next(row for row in latency if row["latency_ms"] == max(latencies))
    return {
        "fleet": fleet,
        "counts": snapshot.counts(),
        "calls": dict(sorted(requests.items())),
        "inventory_calls": dict(sorted(base["inventory"].calls.items())),
        "lower_bound": bound,
        "total_calls": total,
        "total_lower_bound": total_bound,
        "ratio": round(ratio, 4),
        "moto_wall_seconds": round(base["seconds"], 2),
        "seconds_at_default_quotas": round(wall, 2),
        "quota_bound_seconds": round(bound_seconds, 2),
        "time_vs_quota_bound": round(time_ratio, 3),
        "limiter_floor_seconds": round(floor, 2),
        "schedule_overhead_seconds": round(overhead, 2),
        "latency": latency,
        "projection_1m": {
            "fleet": PROJECTION,
            "calls": sum(projection_bound.values()),
            "seconds_by_operation": {op: round(s, 1) for op, s in by_operation.items()},
            "quota_bound_seconds": round(projected_bound, 1),
            "seconds_at_default_quotas": round(projected_wall, 1),
            "time_vs_quota_bound": round(projected_wall / projected_bound, 3),
            "sequential_seconds": round(sum(by_operation.values()), 1),
            "quotas_tps": quotas,
        },
        "projection_things_listing": things_listing_projection(
            quotas["ListThings"], BY_TYPE.workers
        ),
        "targets": {
            "calls_vs_bound": {
                "target": TARGET_RATIO,
                "ratio": round(ratio, 4),
                "met": ratio <= TARGET_RATIO,
            },
            "time_vs_quota_bound": {
                "target": TARGET_TIME_RATIO,
                "ratio": round(time_ratio, 3),
                "met": time_ratio <= TARGET_TIME_RATIO,
            },
            "things_listing_at_200ms": {
                "target": TARGET_TIME_RATIO,
                "latency_ms": at_worst["latency_ms"],
                "whole": at_worst["things_listing_ratio"],
                "by_type": at_worst["by_type"]["things_listing_ratio"],
                "met": at_worst["by_type"]["things_listing_ratio"] <= TARGET_TIME_RATIO,
                "same_snapshot": all(row["by_type"]["same_snapshot"] for row in latency),
            },
        },
    }


def _take(client: Any, latency_ms: int, partitions: dict[str, str]) -> dict[str, Any]:
    """One snapshot of the seeded region through ``client``, on a virtual clock, every call
    taking ``latency_ms`` of its caller's time to return; requests counted per operation and
    the virtual time each operation's last response arrived."""
    from pipeline.model import EntityKind
    from reconcile.inventory import Inventory
    from reconcile.ratelimit import RateLimiter, VirtualClock
    from reconcile.snapshot import take_snapshot

    requests: Counter[str] = Counter()
    finished: dict[str, float] = {}
    lock = threading.Lock()  # the listings run in several threads
    clock = VirtualClock()

    def sent(model: Any, **_: Any) -> None:
        with lock:
            requests[model.name] += 1

    def answered(model: Any, **_: Any) -> None:
        if latency_ms:
            clock.sleep(latency_ms / 1000)
        with lock:
            finished[model.name] = max(finished.get(model.name, 0.0), clock())

    client.meta.events.register("before-call.iot.*", sent)
    client.meta.events.register("after-call.iot.*", answered)
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    inventory = Inventory(
        client, limiter, partitions={EntityKind(k): v for k, v in partitions.items()}
    )
    started = time.perf_counter()
    snapshot = take_snapshot(inventory, REGION)
    return {
        "snapshot": snapshot,
        "requests": requests,
        "finished": finished,
        "elapsed": clock.elapsed,
        "inventory": inventory,
        "seconds": time.perf_counter() - started,
    }


def _latency_rows(
    base: dict[str, Any],
    sweep: list[tuple[int, str, dict[str, Any]]],
    quotas: dict[str, float],
    latencies: tuple[int, ...],
) -> list[dict[str, Any]]:
    """Per modelled latency: the whole snapshot's and the things listing's time against their
    quota bounds, for the listing as one chain of pages and in parts by thing type."""

    def figures(taken: dict[str, Any]) -> dict[str, Any]:
        requests, finished = taken["requests"], taken["finished"]
        bound = quota_bound_seconds(dict(requests), quotas)
        things_bound = requests["ListThings"] / quotas["ListThings"]
        slowest = max(finished, key=lambda op: finished[op])
        return {
            "seconds": round(taken["elapsed"], 2),
            "quota_bound_seconds": round(bound, 2),
            "ratio_to_bound": round(taken["elapsed"] / bound, 3),
            "things_listing_seconds": round(finished["ListThings"], 2),
            "things_listing_bound_seconds": round(things_bound, 2),
            "things_listing_ratio": round(finished["ListThings"] / things_bound, 3),
            "list_things_calls": requests["ListThings"],
            "last_answer": {"operation": slowest, "seconds": round(finished[slowest], 2)},
            "same_snapshot": taken["snapshot"].fingerprint() == base["snapshot"].fingerprint(),
        }

    runs = {(0, "whole"): base} | {(latency, name): taken for latency, name, taken in sweep}
    return [
        {
            "latency_ms": latency,
            **figures(runs[latency, "whole"]),
            "by_type": figures(runs[latency, "by_type"]),
        }
        for latency in latencies
    ]


def things_listing_projection(quota: float, parts: int) -> list[dict[str, Any]]:
    """The things listing's time for 1M and 10M things at each modelled latency: pages at the
    quota, or one chain's round trips, whichever is slower (1 chain whole; ``parts`` at once by
    type, for a fleet of at least that many types of similar size)."""
    rows = []
    for things in (1_000_000, 10_000_000):
        pages = math.ceil(things / PAGE)
        bound = pages / quota
        for latency_ms in LATENCIES_MS:
            seconds = {
                name: max(bound, pages * latency_ms / 1000 / chains)
                for name, chains in (("whole", 1), ("by_type", parts))
            }
            rows.append(
                {
                    "things": things,
                    "latency_ms": latency_ms,
                    "quota_bound_seconds": round(bound, 1),
                    **{f"{name}_seconds": round(value, 1) for name, value in seconds.items()},
                    **{f"{name}_ratio": round(value / bound, 3) for name, value in seconds.items()},
                }
            )
    return rows


def run(quick: bool = False, out_dir: Path = RESULTS) -> dict[str, Any]:
    fleet, latencies = (QUICK, QUICK_LATENCIES_MS) if quick else (FULL, LATENCIES_MS)
    result = {"benchmark": "B2 snapshot cost", "quick": quick, **measure(fleet, latencies)}
    path = save("snapshot_quick" if quick else "snapshot", result, out_dir)
    print(summary(result))
    print(f"  -> {path}")
    return result


def summary(result: dict[str, Any]) -> str:
    fleet = result["fleet"]
    projection = result["projection_1m"]
    target = result["targets"]["calls_vs_bound"]
    timing = result["targets"]["time_vs_quota_bound"]
    return "\n".join(
        [
            "B2 snapshot cost" + (" (quick)" if result["quick"] else ""),
            f"  fleet: {fleet['things']:,} things, {fleet['groups']} groups, "
            f"{fleet['billing_groups']} billing groups, {fleet['types']} types",
            f"  calls: {result['total_calls']:,} vs lower bound {result['total_lower_bound']:,} "
            f"= {result['ratio']:.3f}x  (target <= {target['target']}x: "
            f"{'MET' if target['met'] else 'NOT MET'})",
            f"  by operation: {result['calls']}",
            f"  time at default quotas for this fleet: {result['seconds_at_default_quotas']:.1f} s "
            f"vs max-per-API bound {result['quota_bound_seconds']:.1f} s = {timing['ratio']:.3f}x "
            f"(target <= {timing['target']}x: {'MET' if timing['met'] else 'NOT MET'}; the "
            f"limiter's floor, its one-second burst first, is {result['limiter_floor_seconds']:.1f} s; "
            f"virtual clock; moto itself took {result['moto_wall_seconds']:.1f} s)",
            f"  projected for 1M things / 1,000 groups: {projection['calls']:,} calls, "
            f"{projection['seconds_at_default_quotas'] / 60:.1f} min at default quotas "
            f"= {projection['time_vs_quota_bound']:.3f}x the bound "
            f"({projection['quota_bound_seconds']:.0f} s; one API after another: "
            f"{projection['sequential_seconds'] / 60:.1f} min) {projection['seconds_by_operation']}",
            "  modelled latency per call (virtual clock): snapshot / things listing vs their bounds",
            *(
                f"    {row['latency_ms']:>3} ms: whole {row['ratio_to_bound']:.2f}x / "
                f"{row['things_listing_ratio']:.2f}x; by type {row['by_type']['ratio_to_bound']:.2f}x"
                f" / {row['by_type']['things_listing_ratio']:.2f}x (last answer: "
                f"{row['by_type']['last_answer']['operation']} at "
                f"{row['by_type']['last_answer']['seconds']} s; same snapshot: "
                f"{row['by_type']['same_snapshot']})"
                for row in result["latency"]
            ),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.snapshot_bench")
    parser.add_argument("--quick", action="store_true", help="small fleet (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    run(quick=args.quick, out_dir=args.out)


if __name__ == "__main__":
    main()
