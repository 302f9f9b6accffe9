"""``python -m bench`` (``make bench``): run B1 to B4, save their JSON, write the table.

``--quick`` runs every benchmark at small N (the reliability suite's smoke test uses it so the
benchmark code cannot rot); ``--only diff,snapshot,replicator,ignore`` picks some; ``--out`` changes
the results directory. ``bench/results/README.md`` is rewritten from whatever full (non-quick)
results are in the directory, so running one benchmark keeps the others' rows.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import diff_bench, ignore_bench, replicator_bench, scale_bench, snapshot_bench
from bench.common import RESULTS, machine

BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "diff": diff_bench.run,
    "snapshot": snapshot_bench.run,
    "replicator": replicator_bench.run,
    "ignore": ignore_bench.run,
    "scale": scale_bench.run,
}


def _load(out_dir: Path, name: str) -> dict[str, Any] | None:
    path = out_dir / f"{name}.json"
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _runs(target: dict[str, Any]) -> str:
    """The ratios of every run of a target measured several times (the median one reported)."""
    ratios = target.get("ratios")
    if not ratios or len(ratios) < 2:
        return ""
    listed = ", ".join(f"{ratio}x" for ratio in ratios)
    return f"; the median of {len(ratios)} runs, each its own process: {listed}"


def _mark(met: bool) -> str:
    return "met" if met else "**not met**"


def results_table(out_dir: Path, quick: bool = False) -> str:
    """The Markdown summary of the saved results (full runs, or the quick ones)."""
    suffix = "_quick" if quick else ""
    diff = _load(out_dir, f"diff{suffix}")
    snap = _load(out_dir, f"snapshot{suffix}")
    repl = _load(out_dir, f"replicator{suffix}")
    ignore = _load(out_dir, f"ignore{suffix}")
    scale = _load(out_dir, f"scale{suffix}")
    any_result = diff or snap or repl or ignore or scale
    info = any_result["machine"] if any_result else machine()
    lines = [
        "# Benchmark results" + (" (quick run)" if quick else ""),
        "",
        "Written by `make bench` (`python -m bench`); raw figures in the JSON files next to this one.",
        f"Machine: {info['cpu_count']} CPU ({info['cpu_model']}), {info.get('memory_gb')} GB RAM, "
        f"Python {info['python']}, load average {info.get('load_average_1m')} at the start "
        "(shared machine: wall times above a load of 2 are pessimistic).",
        "",
        "| Benchmark | Measure | Target | Result | Status |",
        "|---|---|---|---|---|",
    ]
    notes: list[str] = []
    if diff:
        rows, diff_notes = _diff_rows(diff)
        lines += rows
        notes += diff_notes
    if snap:
        fleet = snap["fleet"]
        proj = snap["projection_1m"]
        lines += [
            f"| B2 snapshot cost | API calls / page-size lower bound ({fleet['things']:,} things, "
            f"{fleet['groups']} groups) | ≤ 1.05x | {snap['total_calls']:,} / "
            f"{snap['total_lower_bound']:,} = {snap['ratio']}x | "
            f"{_mark(snap['targets']['calls_vs_bound']['met'])} |",
            f"| B2 snapshot cost | wall time at default quotas / max-per-API bound "
            f"({fleet['things']:,} things, virtual clock) | ≤ 1.1x | "
            f"{snap['seconds_at_default_quotas']} s / {snap['quota_bound_seconds']} s = "
            f"{snap['time_vs_quota_bound']}x (the limiter's one-second burst: floor "
            f"{snap.get('limiter_floor_seconds', '?')} s) | "
            f"{_mark(snap['targets']['time_vs_quota_bound']['met'])} |",
            f"| B2 snapshot cost | wall time at default quotas, 1M things / 1,000 groups "
            f"(projected) | ≤ 1.1x the bound ({proj['quota_bound_seconds']:.0f} s) | "
            f"{proj['seconds_at_default_quotas'] / 60:.1f} min ({proj['calls']:,} calls; one "
            f"API after another: {proj['sequential_seconds'] / 60:.1f} min) | "
            f"{_mark(proj['seconds_at_default_quotas'] <= 1.1 * proj['quota_bound_seconds'])} |",
        ]
        lines += _latency_rows(snap)
    if repl:
        calls = repl["calls_by_kind"]
        target = repl["targets"]["thing_update_calls"]
        by_kind = ", ".join(f"{k} {v['calls_per_event']}" for k, v in calls.items())
        lines += [
            f"| B3 replicator cost | IoT calls per thing update | ≤ 2 | "
            f"{target['calls_per_event']} | {_mark(target['met'])} |",
            f"| B3 replicator cost | IoT calls per event, by kind | (informative) | {by_kind} | - |",
        ]
        sandbox = repl["sandbox"]
        if sandbox.get("usable"):
            lines.append(
                f"| B3 sandbox throughput | events/s end to end (persist state machine → table → "
                f"replication → replicator), moto over HTTP | (informative) | "
                f"create {sandbox['create']['events_per_second']}/s, "
                f"update {sandbox['update']['events_per_second']}/s | - |"
            )
        else:
            lines.append(
                f"| B3 sandbox throughput | events/s end to end | (informative) | "
                f"not measured: {sandbox.get('reason')} | - |"
            )
    if ignore:
        extra = ignore["targets"]["extra_at_largest"]
        per_1000 = ignore["targets"]["linear_in_rules"]["seconds_per_1000_rules"]
        sizes = " / ".join(f"{s['rules']:,}" for s in ignore["sizes"])
        lines += [
            f"| B4 ignore rules | time {extra['rules']:,} exact-name rules add to a "
            f"{ignore['things']}-thing first-run audit (load, filter, the plan's field checks) | "
            f"≤ {extra['target_seconds']} s | {extra['seconds']} s (load average "
            f"{ignore['machine']['load_average_1m']} at its start) | {_mark(extra['met'])} |",
            f"| B4 ignore rules | seconds per 1,000 rules at {sizes} rules | flat (≤ 2x) | "
            f"{' / '.join(str(p) for p in per_1000)} | "
            f"{_mark(ignore['targets']['linear_in_rules']['met'])} |",
        ]
    if scale:
        lines += _scale_rows(scale)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def _diff_rows(diff: dict[str, Any]) -> tuple[list[str], list[str]]:
    """B1's rows of the table and its notes below it."""
    lines: list[str] = []
    notes: list[str] = []
    big = diff["engine"][-1]
    t = diff["targets"]
    ref = diff["deepdiff"]["at_reference"]
    peer, vs = big["polars"], t["first_call_vs_polars"]
    memory = t["inputs_and_diff_rss_at_largest"]
    lines += [
        f"| B1 diff engine | first call of the diff as the nightly job makes it (snapshots "
        f"saved first, so fingerprints cached; explanations included) / a plain polars "
        f"full-join diff of the same frames, same run, N={big['n']:,} things "
        f"| ≤ {vs['target_ratio']}x | {big['seconds']} s / {peer['seconds']} s = "
        f"{vs['ratio']}x (CPU {big['cpu_seconds']} s / {peer['cpu_seconds']} s = "
        f"{vs['cpu_ratio']}x; polars {peer['version']} on {peer['threads']} threads, its join "
        f"alone {peer['join_seconds']} s; our later call {big['later_call_seconds']} s; "
        f"load {big['load_average_1m']}{_runs(vs)}) | {_mark(vs['met'])} |",
    ]
    if fresh := big.get("fresh"):
        saved = big["fingerprint_at_save"]
        lines.append(
            f"| B1 diff engine | first call on fresh snapshots, fingerprints included (the "
            f"former definition) / the same polars run; fingerprint at save (both "
            f"snapshots, done by the job's save before the diff), N={big['n']:,} | "
            f"(informative) | {fresh['seconds']} s / {peer['seconds']} s = "
            f"{vs.get('fresh_ratio', '?')}x (CPU {fresh['cpu_seconds']} s; load "
            f"{fresh['load_average_1m']}); fingerprint at save {saved['seconds']} s (CPU "
            f"{saved['cpu_seconds']} s, +{saved['rss_increment_mb']} MB RSS) | - |"
        )
    lines += [
        f"| B1 diff engine | drift counts equal to the polars peer's, N="
        f"{' / '.join(f'{n:,}' for n in t['same_counts_as_polars']['sizes'])} | equal | "
        f"{big['drifts']:,} drifts at N={big['n']:,} | "
        f"{_mark(t['same_counts_as_polars']['met'])} |",
        f"| B1 diff engine | peak RSS of the inputs and the diff (above the interpreter's "
        f"{big['interpreter_rss_mb']} MB), N={big['n']:,} | ≤ {memory['target_mb']:.0f} MB | "
        f"{memory['inputs_and_diff_mb']} MB{' (the largest of its runs)' if 'runs' in big else ''}"
        f" (median run: inputs {big['inputs_rss_mb']} MB RSS, "
        f"{big['input_bytes_per_thing']} B/thing of frames; diff "
        f"{big['diff_rss_increment_mb']} MB); {memory['bytes_per_thing']} B/thing, so 10M "
        f"things ~{memory['projected_10m_gb']} GB | {_mark(memory['met'])} |",
        f"| B1 diff engine | speed-up over whole-snapshot DeepDiff at N={ref['n']:,} | ≥ 100x | "
        f"{t['speedup_vs_deepdiff']['speedup']}x in CPU time, "
        f"{t['speedup_vs_deepdiff'].get('speedup_wall_time', '?')}x in wall time (DeepDiff "
        f"{ref['seconds']} s wall / {ref.get('cpu_seconds', '?')} s CPU, {ref['mode']}) "
        f"| {_mark(t['speedup_vs_deepdiff']['met'])} |",
    ]
    if ten := diff.get("at_10m"):
        notes.append(
            f"B1 at 10M things (`python -m bench.diff_bench --ten-million`, load "
            f"{ten['load_average_1m']}): first call {ten['seconds']} s (CPU "
            f"{ten['cpu_seconds']} s{'; ' + ten['first_call'] if 'first_call' in ten else ''}) "
            f"/ polars {ten['polars']['seconds']} s (CPU "
            f"{ten['polars']['cpu_seconds']} s) = {ten['ratio_to_polars']}x (CPU "
            f"{ten['cpu_ratio_to_polars']}x), same counts: {ten['polars']['same_counts']}; "
            f"{ten['drifts']:,} drifts; inputs and diff {ten['inputs_and_diff_mb'] / 1024:.2f} "
            f"GB (inputs {ten['inputs_rss_mb'] / 1024:.2f} GB, {ten['input_bytes_per_thing']} "
            f"B/thing of frames; diff {ten['diff_rss_increment_mb'] / 1024:.2f} GB): "
            f"{ten['bytes_per_thing']} B/thing."
        )
    elif big["n"] < 10_000_000:
        notes.append(
            f"B1 at 10M things: not part of a default run (`python -m bench.diff_bench --sizes "
            f"100000,10000000` runs it): building its inputs takes about 10x the 1M build "
            f"({big.get('build_seconds', '?')} s here) and it needs about "
            f"{memory['projected_10m_gb']} GB above the interpreter by this run's "
            f"{memory['bytes_per_thing']} B/thing, the polars peer as much again."
        )
    if before := diff.get("before_issue_26"):
        notes.append(
            f"B1 before issue 26 (commit {before['commit']}, N={before['n']:,}, same bench "
            f"and machine, load {before['load_average_1m']}): first call {before['seconds']} s "
            f"(CPU {before['cpu_seconds']} s) / polars {before['polars_seconds']} s (CPU "
            f"{before['polars_cpu_seconds']} s) = "
            f"{before['seconds'] / before['polars_seconds']:.2f}x; later call "
            f"{before['later_call_seconds']} s; inputs and diff {before['inputs_and_diff_mb']} "
            f"MB (inputs {before['inputs_rss_mb']} MB + diff {before['diff_rss_increment_mb']} MB)."
        )
    if rows := diff.get("before_after_833e1b1"):
        notes += [
            "B1 before (833e1b1) / after this round's diff changes (memberships and "
            "fingerprints on worker threads, the cyclic collector paused while drifts are "
            "built, paired cells compared a chunk of each side at a time, no position arrays "
            "for whole sides), N=1,000,000, the first call on fresh snapshots (fingerprints "
            "included: the former definition), runs alternated on the same saved inputs:",
            "",
            "| Code | First call | CPU | Polars (same run) | Ratio | Inputs + diff | Diff | Load |",
            "|---|---|---|---|---|---|---|---|",
            *(
                f"| {r['code']} | {r['seconds']} s | {r['cpu_seconds']} s | "
                f"{r['polars_seconds']} s | {r['seconds'] / r['polars_seconds']:.2f}x | "
                f"{r['inputs_and_diff_mb']} MB | {r['diff_rss_increment_mb']} MB | "
                f"{r['load_average_1m']} |"
                for r in rows
            ),
            "",
        ]
    if rows := diff.get("before_after_f0d49f0"):
        notes += [
            "B1 before (f0d49f0) / after the drift-building changes (drifts built by "
            "comprehensions over bulk-read columns and made by `new_drift`, which sets the slots "
            "directly; sorted a block at a time by name), N=1,000,000, the first call as the job "
            "makes it, runs alternated on the same saved inputs:",
            "",
            "| Code | First call | CPU | Polars (same run) | Ratio | Later call | Fresh snapshots, "
            "fingerprints included | Inputs + diff | Load |",
            "|---|---|---|---|---|---|---|---|---|",
            *(
                f"| {r['code']} | {r['seconds']} s | {r['cpu_seconds']} s | "
                f"{r['polars_seconds']} s | {r['seconds'] / r['polars_seconds']:.2f}x | "
                f"{r['later_call_seconds']} s | {r['fresh_seconds']} s | "
                f"{r['inputs_and_diff_mb']} MB | {r['load_average_1m']} |"
                for r in rows
            ),
            "",
        ]
    for round_ in diff.get("rounds_issue_26") or []:
        notes.append(round_["text"])
        if header := round_.get("header"):
            notes += [
                "",
                "| " + " | ".join(header) + " |",
                "|" + "---|" * len(header),
                *("| " + " | ".join(row) + " |" for row in round_["rows"]),
                "",
            ]
    return lines, notes


def _latency_rows(snap: dict[str, Any]) -> list[str]:
    """B2 under modelled round trips (issue 26, target 2): per latency, the whole snapshot and
    the things listing against their quota bounds, the listing whole and in parts by type."""
    rows = snap.get("latency") or []
    if not rows:
        return []
    fleet = snap["fleet"]
    target = snap["targets"]["things_listing_at_200ms"]
    per_latency = "; ".join(
        f"{r['latency_ms']} ms: {r['things_listing_ratio']}x whole / "
        f"{r['by_type']['things_listing_ratio']}x by type (snapshot {r['ratio_to_bound']}x / "
        f"{r['by_type']['ratio_to_bound']}x, last answer {r['by_type']['last_answer']['operation']})"
        for r in rows
    )
    projected = "; ".join(
        f"{p['things']:,} @ {p['latency_ms']} ms: {p['whole_seconds'] / 60:.1f} min whole, "
        f"{p['by_type_seconds'] / 60:.1f} min by type (bound {p['quota_bound_seconds'] / 60:.1f} min)"
        for p in snap.get("projection_things_listing", [])
        if p["latency_ms"] in (0, 200)
    )
    return [
        f"| B2 snapshot under latency | things listing time / ListThings quota bound at "
        f"{target['latency_ms']} ms a call ({fleet['things']:,} things, {fleet['types']} types, "
        f"virtual clock) | ≤ 1.1x | whole {target['whole']}x, in parts by type "
        f"{target['by_type']}x (same snapshot: {target['same_snapshot']}) | {_mark(target['met'])} |",
        f"| B2 snapshot under latency | per modelled latency (things listing; whole snapshot) | "
        f"(informative) | {per_latency} | - |",
        f"| B2 snapshot under latency | things listing, 1M and 10M things (projected) | "
        f"(informative) | {projected} | - |",
    ]


def _scale_rows(scale: dict[str, Any]) -> list[str]:
    """B5: the model of the nightly run and the streaming path at documented quotas."""
    nightly = {(p["things"], p["latency_ms"]): p for p in scale["nightly"]}
    m = nightly[1_000_000, 0]
    m200 = nightly[1_000_000, 200]
    limits = scale["lambda_thresholds_things"]
    stream = scale["streaming"]
    rates = ", ".join(
        f"{kind} {r['events_per_second_at_quotas']}/s ({r['binding_quota']})"
        for kind, r in stream["rates"].items()
    )
    per_shard = ", ".join(
        f"{kind} {r['events_per_second_per_shard']}/s" for kind, r in stream["rates"].items()
    )
    sandbox = stream["sandbox"]
    target = scale["targets"]["nightly_1m_with_new_kinds_fits_a_run"]
    return [
        f"| B5 nightly cost (model) | one region's snapshot, 1M things + 1M certificates + "
        f"3 shadows each, at documented quotas, 0 / 200 ms a call | ≤ 15 min (Lambda), else "
        f"the 12 h Fargate run with at most a weekly sweep (7 slices) | "
        f"{m['calls']:,} calls; registry {m['registry_seconds'] / 60:.1f} min, + certificates "
        f"and principals {m['with_certificates_seconds'] / 3600:.1f} h, + shadows "
        f"{m['with_certificates_and_shadows_seconds'] / 3600:.1f} h / at 200 ms: registry "
        f"{m200['registry_seconds'] / 60:.1f} min, all "
        f"{m200['with_certificates_and_shadows_seconds'] / 3600:.1f} h (ListPrincipalThingsV2: a "
        f"call per certificate, 10 TPS; no DescribeCertificate); whole: {target['runner']}, "
        f"swept: Fargate with {target['fargate_slices']} slices | {_mark(target['met'])} |",
        f"| B5 nightly cost (model) | largest fleet whose snapshot fits Lambda (80% of 15 min) | "
        f"(informative) | registry only {limits['registry@0ms']:,} things "
        f"({limits['registry@200ms']:,} at 200 ms); with a certificate each "
        f"{limits['with_certificates@0ms']:,} ({limits['with_certificates@200ms']:,} at 200 ms), "
        f"and shadows {limits['with_certificates_and_shadows@200ms']:,} at 200 ms; "
        f"above: JobRunner=fargate (12 h), above that quota increases | - |",
        f"| B5 nightly cost with a sweep (model) | fewest SWEEP_SLICES (reconcile.sweep) with "
        f"which one region's snapshot, certificates and shadows included, fits Lambda (80% of "
        f"15 min) / the 12 h Fargate run | (informative) | {_sweeps(scale['sweeps'])} | - |",
        f"| B5 streaming (model) | sustained registry changes/s at default write quotas | "
        f"(informative) | {rates}; per stream shard at {stream['shard_round_trip_ms']} ms a call "
        f"[assumed]: {per_shard} | - |",
        f"| B5 streaming (model) | documented end-to-end latency floor (IoT rule → Express → "
        f"DynamoDB → Global Table → stream → Lambda) | (informative) | "
        f"{stream['documented_floor_seconds']} s (the event source mapping's 1 s batching "
        f"window; Lambda polls 4 times a second; AWS publishes no figure for the other hops, "
        f"ReplicationLatency is a metric); sandbox: {_e2e(sandbox)}create "
        f"{sandbox['create_events_per_second']}/s, update {sandbox['update_events_per_second']}/s "
        f"(100 updates in {sandbox['update_seconds_for_100']} s) | - |",
    ]


def _sweeps(sweeps: list[dict[str, Any]]) -> str:
    def fewest(n: int | None) -> str:
        return "none fits" if n is None else f"{n}"

    return "; ".join(
        f"{s['things']:,} @ {s['latency_ms']} ms: {fewest(s['fewest_slices']['lambda'])} / "
        f"{fewest(s['fewest_slices']['fargate'])} (7 slices: "
        f"{s['seconds_with_7_slices'] / 3600:.1f} h a run)"
        for s in sweeps
    )


def _e2e(sandbox: dict[str, Any]) -> str:
    e2e = sandbox.get("end_to_end_seconds")
    if not e2e:
        return ""
    return (
        f"end to end median {e2e['median']} s, max {e2e['max']} s over {e2e['updates']} shadow "
        "updates (docs/shadows.md); throughput "
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N everywhere (smoke test)")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    for name in chosen:
        BENCHMARKS[name](quick=args.quick, out_dir=args.out)
    table = results_table(args.out, quick=args.quick)
    readme = args.out / ("README.quick.md" if args.quick else "README.md")
    readme.write_text(table)
    print(table)
    print(f"-> {readme}")


if __name__ == "__main__":
    main()
