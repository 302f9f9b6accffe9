"""B5: the nightly run and the streaming path at scale, from documented quotas (issue 26, 3 and 4).

A model, not a measurement: arithmetic over the calls the code makes (the kinds' listings; the
replicator's calls per event, measured by B3 in ``bench/results/replicator.json``) and AWS's
default quotas, each with its source. It runs in milliseconds, quick or not.

**Nightly run (target 3).** One region's snapshot of ``N`` things, each with one certificate
attached (a thing principal), a classic and two named shadows, in 1,000-thing static groups, 10
billing groups, 20 types and 10 policies. Per operation: its calls (pages of 250, one describe or
link listing per entity) over its quota. The listing families run at once (each API has its own
quota), so a snapshot takes as long as its slowest family; a family that makes its calls one
after another on ``chains`` threads also needs ``calls x latency / chains``. Certificates are
listed with ListCertificates alone (their PEM and CA are read by a repair, for the certificates
it writes: ``reconcile.details``); each certificate's things are one ListPrincipalThingsV2.
Both regions are read at once (``Reconciler.snapshots``), so the run's snapshot time is one
region's. The runner: Lambda while the snapshot fits in ``LAMBDA_SHARE`` of the 15-minute
timeout (the rest for the diff, plan and emission), else Fargate; past the run lock's 12 hours,
quota increases.

**Streaming (target 4).** The replicator's sustained rate per event kind is the lowest, over
the calls it makes, of quota / calls per event (B3's measured counts); per stream shard it also
cannot exceed one event per (calls per event x round trip), as it converges a batch's records
one after another, one invocation per shard (``infra/destination.yaml``: no
ParallelizationFactor). The latency floor lists what AWS documents per hop, beside the
sandbox's measured throughput.

CLI: ``python -m bench.scale_bench [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import RESULTS, save

PAGE = 250  # ListThings, ListCertificates, ListPrincipalThingsV2, ListTargetsForPolicy: max 250
THINGS = (10_000, 100_000, 1_000_000, 10_000_000)
LATENCIES_MS = (0, 100, 200)
LAMBDA_TIMEOUT_SECONDS = 900  # Lambda's maximum, the reconcile function's Timeout
LAMBDA_SHARE = 0.8  # of it for the snapshot
RUN_LOCK_SECONDS = 12 * 3600  # the job's run lock outlives a Fargate run of 12 h (deploy.md)
WEEKLY_SWEEP = 7  # slices: every per-device link compared within a week of nightly runs
SHARD_ROUND_TRIP_MS = 50  # [assumption] one IoT control-plane call from the replicator, in region

SQ = "Service Quotas default (iotcore), public dump of the Service Quotas API ('AWS Service Quota list')"
ARCHIVED = "AWS IoT Developer Guide, 'AWS IoT Limits' (archived: awsdocs/aws-iot-docs, developerguide/limits-iot.md)"
ASSUMED = "[assumption] no published default read"

# Write (and replicator read) quotas, per account and region. The snapshot's read quotas are the
# kinds' own (``reconcile.ratelimit.DEFAULT_QUOTAS``), with their sources where they are set.
QUOTAS: dict[str, tuple[float, str]] = {
    "DescribeThing": (350, f"{SQ}, L-0EF0F5EE"),
    "CreateThing": (100, f"{SQ}, L-64CBACAC"),
    "UpdateThing": (100, f"{SQ}, L-211F680E"),
    "DeleteThing": (100, f"{SQ}, L-889800F7"),
    "AddThingToThingGroup": (100, f"{SQ}, L-2904683A"),
    "RemoveThingFromThingGroup": (100, f"{SQ}, L-2A81A394"),
    "AttachThingPrincipal": (100, f"{SQ}, L-F64D1AA6"),
    "DescribeThingGroup": (100, f"{SQ}, L-52E1E197"),
    "CreateThingGroup": (25, f"{SQ}, L-512F449C"),
    "UpdateThingGroup": (15, f"{SQ}, L-5D84F9FE"),
    "DeleteThingGroup": (15, f"{SQ}, L-FCAB1AF4"),
    "ListThingGroups": (10, f"{SQ}, L-1E5260D6"),
    "DescribeThingType": (100, f"{SQ}, L-DDCF8E97"),
    "CreateThingType": (15, f"{SQ}, L-8650816F"),
    "DeprecateThingType": (15, f"{SQ}, L-7F1DBFAE"),
    "SearchIndex": (15, f"{ARCHIVED}, fleet indexing throttling limits"),
}


def read_quotas() -> dict[str, float]:
    """The snapshot's read quotas: the kinds' own, with their sources where they are set."""
    from reconcile.ratelimit import DEFAULT_QUOTAS

    return dict(DEFAULT_QUOTAS)


@dataclass(frozen=True)
class Lane:
    calls: dict[str, int]
    chains: int


def snapshot_families(
    things: int, named_shadows: int = 2, slices: int = 1
) -> dict[str, list[Lane]]:
    """Per listing family of one region's snapshot, its lanes: calls per operation made one
    after another on ``chains`` threads (the listing's own thread: 1; a kind's
    ``describe_workers`` or link ``workers``: theirs). ``slices``: a sweep's (``reconcile.
    sweep``): the per-device link listings are made for one slice of the parents."""

    def pages(count: int) -> int:
        return max(1, math.ceil(count / PAGE))

    swept = math.ceil(things / slices)  # certificates (one per thing) or things in the slice

    groups, billing, policies = max(1, things // 1000), 10, 10
    return {
        "thing": [Lane({"ListThings": pages(things)}, 1)],
        "thing (billing group join)": [
            Lane({"ListThingsInBillingGroup": billing * pages(things // billing)}, 2)
        ],
        "thing_group": [
            Lane({"ListThingGroups": pages(groups)}, 1),
            Lane({"DescribeThingGroup": groups}, 4),
        ],
        "membership": [Lane({"ListThingsInThingGroup": groups * pages(1000)}, 4)],
        "certificate + thing_principal": [
            Lane({"ListCertificates": pages(things)}, 1),
            Lane({"ListPrincipalThingsV2": swept}, 4),
        ],
        "policy + policy_target": [
            Lane(
                {
                    "ListPolicies": 1,
                    "GetPolicy": policies,
                    "ListTargetsForPolicy": policies * pages(things // policies),
                },
                1,
            )
        ],
        "shadow (opt-in)": [
            Lane(
                {
                    "ListNamedShadowsForThing": swept,
                    "GetThingShadow": swept * (1 + named_shadows),
                },
                4,
            )
        ],
    }


def family_seconds(lanes: list[Lane], quotas: dict[str, float], latency_ms: int) -> float:
    """Its slowest API at its quota, or its slowest lane's round trips."""
    quota_bound = max(n / quotas[op] for lane in lanes for op, n in lane.calls.items())
    round_trips = max(sum(lane.calls.values()) * latency_ms / 1000 / lane.chains for lane in lanes)
    return max(quota_bound, round_trips)


def nightly(
    things: int, latency_ms: int, quotas: dict[str, float], slices: int = 1
) -> dict[str, Any]:
    families = snapshot_families(things, slices=slices)
    seconds = {name: family_seconds(f, quotas, latency_ms) for name, f in families.items()}
    registry = max(s for n, s in seconds.items() if not n.startswith(("certificate", "shadow")))
    with_certificates = max(s for n, s in seconds.items() if not n.startswith("shadow"))
    everything = max(seconds.values())
    return {
        "things": things,
        "latency_ms": latency_ms,
        "slices": slices,
        "calls": sum(sum(lane.calls.values()) for f in families.values() for lane in f),
        "calls_by_operation": {
            op: n for f in families.values() for lane in f for op, n in lane.calls.items()
        },
        "seconds_by_family": {name: round(s, 1) for name, s in seconds.items()},
        "registry_seconds": round(registry, 1),
        "with_certificates_seconds": round(with_certificates, 1),
        "with_certificates_and_shadows_seconds": round(everything, 1),
        "runner": {
            "registry": runner(registry),
            "with_certificates": runner(with_certificates),
            "with_certificates_and_shadows": runner(everything),
        },
    }


def runner(seconds: float) -> str:
    if seconds <= LAMBDA_SHARE * LAMBDA_TIMEOUT_SECONDS:
        return "lambda"
    return "fargate" if seconds <= RUN_LOCK_SECONDS else "fargate + quota increases"


def thresholds(quotas: dict[str, float]) -> dict[str, Any]:
    """The largest fleet whose snapshot fits Lambda's share, per content and latency."""
    budget = LAMBDA_SHARE * LAMBDA_TIMEOUT_SECONDS
    out: dict[str, Any] = {}
    for latency_ms in LATENCIES_MS:
        for content in ("registry", "with_certificates", "with_certificates_and_shadows"):
            low, high = 1, 100_000_000
            while low < high:  # the largest N whose projected snapshot fits
                mid = (low + high + 1) // 2
                if nightly(mid, latency_ms, quotas)[f"{content}_seconds"] <= budget:
                    low = mid
                else:
                    high = mid - 1
            out[f"{content}@{latency_ms}ms"] = low
    return out


def sweeps(quotas: dict[str, float]) -> list[dict[str, Any]]:
    """Per fleet size and latency: the fewest sweep slices (``SWEEP_SLICES``) with which a run's
    snapshot, certificates and shadows included, fits Lambda's share, and the run lock's 12 h
    (Fargate); ``None`` where no sweep does (what is not swept is too slow by itself)."""
    from reconcile.sweep import MAX_SLICES

    out = []
    for things in (1_000_000, 10_000_000):
        for latency_ms in (0, 200):
            fewest: dict[str, int | None] = {}
            for runner_name, budget in (
                ("lambda", LAMBDA_SHARE * LAMBDA_TIMEOUT_SECONDS),
                ("fargate", RUN_LOCK_SECONDS),
            ):
                key = "with_certificates_and_shadows_seconds"
                fits = [
                    n
                    for n in range(1, MAX_SLICES + 1)
                    if nightly(things, latency_ms, quotas, n)[key] <= budget
                ]
                fewest[runner_name] = fits[0] if fits else None
            week = nightly(things, latency_ms, quotas, 7)
            out.append(
                {
                    "things": things,
                    "latency_ms": latency_ms,
                    "fewest_slices": fewest,
                    "seconds_with_7_slices": week["with_certificates_and_shadows_seconds"],
                }
            )
    return out


def streaming(replicator: dict[str, Any] | None) -> dict[str, Any]:
    """Sustained change rate per event kind at the default quotas, per shard at an assumed
    round trip, and the documented latency floor of the streaming path."""
    quotas = {**read_quotas(), **{op: tps for op, (tps, _) in QUOTAS.items()}}
    rates: dict[str, Any] = {}
    for kind, measured in (replicator or {}).get("calls_by_kind", {}).items():
        events = measured["events"]
        per_op = {
            op: quotas[op] * events / calls
            for op, calls in measured["calls"].items()
            if op in quotas
        }
        if not per_op:
            continue
        binding = min(per_op, key=lambda op: per_op[op])
        rates[kind] = {
            "events_per_second_at_quotas": round(per_op[binding], 1),
            "binding_quota": binding,
            "unquoted": sorted(set(measured["calls"]) - set(quotas)),
            "events_per_second_per_shard": round(
                1000 / (measured["calls_per_event"] * SHARD_ROUND_TRIP_MS), 1
            ),
        }
    sandbox = (replicator or {}).get("sandbox", {})
    return {
        "rates": rates,
        "shard_round_trip_ms": SHARD_ROUND_TRIP_MS,
        "floor": [
            {
                "hop": "registry event -> IoT rule -> Step Functions Express (persist)",
                "documented": "no latency figure published",
            },
            {
                "hop": "persist -> state table (DynamoDB write)",
                "documented": "no latency figure published (single-digit ms is marketing, not a quota)",
            },
            {
                "hop": "Global Table replication to the destination's replica",
                "documented": "no figure: AWS publishes the ReplicationLatency metric to watch "
                "(DynamoDB Developer Guide, 'Monitoring global tables')",
            },
            {
                "hop": "replica's stream -> replicator Lambda",
                "documented": "Lambda polls each shard 4 times a second (up to 250 ms), then "
                "waits for a full batch (100) or the batching window (1 s here): at low change "
                "rates about 1 s (Lambda Developer Guide, 'Using Lambda with DynamoDB', "
                "'Polling and batching streams'; infra/destination.yaml)",
                "seconds": 1.0,
            },
        ],
        "documented_floor_seconds": 1.0,
        "sandbox": {
            # Measured on the sandbox (UpdateThingShadow in the source to the destination's
            # GetThingShadow showing it; 2 shared cores): docs/shadows.md, "Sandbox".
            "end_to_end_seconds": {"median": 1.9, "max": 3.4, "updates": 10},
            "create_events_per_second": sandbox.get("create", {}).get("events_per_second"),
            "update_events_per_second": sandbox.get("update", {}).get("events_per_second"),
            "update_seconds_for_100": sandbox.get("update", {}).get("seconds"),
        },
    }


def run(quick: bool = False, out_dir: Path = RESULTS) -> dict[str, Any]:
    quotas = read_quotas()
    replicator_file = out_dir / ("replicator_quick.json" if quick else "replicator.json")
    if not replicator_file.exists():  # B3 not run here: its last full result
        replicator_file = RESULTS / "replicator.json"
    replicator = json.loads(replicator_file.read_text()) if replicator_file.exists() else None
    projections = [nightly(n, ms, quotas) for n in THINGS for ms in LATENCIES_MS]
    one_million = next(p for p in projections if p["things"] == 1_000_000 and not p["latency_ms"])
    swept = sweeps(quotas)
    fargate_slices = next(
        s["fewest_slices"]["fargate"]
        for s in swept
        if s["things"] == 1_000_000 and not s["latency_ms"]
    )
    result = {
        "benchmark": "B5 scale model",
        "quick": quick,
        "quotas_tps": {
            op: quotas.get(op, QUOTAS.get(op, (None,))[0])
            for op in sorted(
                {op for p in projections for op in p["calls_by_operation"]} | set(QUOTAS)
            )
        },
        "quota_sources": {op: source for op, (_, source) in QUOTAS.items()},
        "nightly": projections,
        "lambda_thresholds_things": thresholds(quotas),
        "sweeps": swept,
        "streaming": streaming(replicator),
        "targets": {
            # Issue 26, target 3: the run fits its budget, Lambda's, or else the Fargate task's
            # (deploy.md's documented runner above Lambda's size) with at most a weekly sweep.
            "nightly_1m_with_new_kinds_fits_a_run": {
                "seconds": one_million["with_certificates_and_shadows_seconds"],
                "runner": one_million["runner"]["with_certificates_and_shadows"],
                "fargate_slices": fargate_slices,
                "met": one_million["runner"]["with_certificates_and_shadows"] == "lambda"
                or (fargate_slices is not None and fargate_slices <= WEEKLY_SWEEP),
            },
        },
    }
    path = save("scale_quick" if quick else "scale", result, out_dir)
    print(summary(result))
    print(f"  -> {path}")
    return result


def summary(result: dict[str, Any]) -> str:
    lines = ["B5 scale model (documented quotas; arithmetic)"]
    for p in result["nightly"]:
        lines.append(
            f"  {p['things']:>10,} things @ {p['latency_ms']:>3} ms: registry "
            f"{p['registry_seconds'] / 60:8.1f} min ({p['runner']['registry']}), + certificates "
            f"{p['with_certificates_seconds'] / 3600:7.1f} h, + shadows "
            f"{p['with_certificates_and_shadows_seconds'] / 3600:7.1f} h "
            f"({p['runner']['with_certificates_and_shadows']})"
        )
    lines.append(f"  Lambda thresholds (things): {result['lambda_thresholds_things']}")
    for sweep in result["sweeps"]:
        lines.append(
            f"  sweep {sweep['things']:>10,} things @ {sweep['latency_ms']:>3} ms: fewest slices "
            f"{sweep['fewest_slices']}, 7 slices {sweep['seconds_with_7_slices'] / 3600:.1f} h"
        )
    for kind, rate in result["streaming"]["rates"].items():
        lines.append(
            f"  stream {kind}: {rate['events_per_second_at_quotas']}/s at quotas "
            f"({rate['binding_quota']}), {rate['events_per_second_per_shard']}/s per shard"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_bench")
    parser.add_argument("--quick", action="store_true", help="the same (the model is instant)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    run(quick=args.quick, out_dir=args.out)


if __name__ == "__main__":
    main()
