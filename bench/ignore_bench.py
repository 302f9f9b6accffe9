"""B4: what ignore rules (``reconcile.ignore``) add to an audit, at 20k and 200k rules.

An ignore file of N exact thing names (none of them in the fleet, as a list of retired devices
would be) and three globs is loaded (``IgnoreRules.from_file``), then applied as an audit and a
repair apply it: to the drifts of a 300-thing audit (``filter``, what ``diff_snapshots`` does),
and to every field of every drifted thing (``ignores``, what the plan does for each action). Two
audits: a nightly one (``bench.diff_bench.build_frames``: 1% drift of every kind) and a first
run (the destination empty: every thing and membership missing).

Issue 22, item 13: 200,000 exact names took about 40 s on a 300-thing audit, every drift being
matched against every rule (fnmatch, whose cache of 32,768 compiled patterns such a file
overflows, so each match compiled its pattern again). Measured before the change, here (2 cores,
load about 6), on the nightly audit: 20,000 rules added 22 s (filter 3.9 s, the plan's field
checks 16.8 s), 200,000 rules 274 s for the filter and loading alone. Matching is now one dict lookup per drift for exact names plus the
name globs (``IgnoreRules.candidates``): the figure to watch is the time per rule, which stays
flat from 20k to 200k rules. Target: 200,000 rules add at most 3 s to the first-run audit,
loading them included (on a 2-core machine).

CLI: ``python -m bench.ignore_bench [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, save
from bench.diff_bench import build_frames

THINGS = 300
FULL_SIZES = (20_000, 200_000)
QUICK_SIZES = (2_000, 5_000)
TARGET_SECONDS_200K = 3.0
GLOBS = ("thing:test-*", "*:tmp-*", "thing:*:attributes.lastSeen")


def audits() -> dict[str, Any]:
    """The drift reports of the two audits (no ignore rules) and the source's things by name."""
    from reconcile.diff import diff_snapshots
    from reconcile.snapshot import Snapshot

    frames = build_frames(THINGS)
    source = Snapshot(region="us-east-1", taken_at_ms=1, **frames["source"])
    nightly = Snapshot(region="eu-west-1", taken_at_ms=1, **frames["target"])
    empty = {
        table: frame.iloc[0:0] if table in ("things", "memberships") else frame
        for table, frame in frames["target"].items()
    }
    first_run = Snapshot(region="eu-west-1", taken_at_ms=1, **empty)
    return {
        "nightly": diff_snapshots(source, nightly, clock=lambda: 0).drifts,
        "first_run": diff_snapshots(source, first_run, clock=lambda: 0).drifts,
    }


def measure(n: int, reports: dict[str, Any], directory: Path) -> dict[str, Any]:
    from pipeline.model import EntityKind
    from reconcile.ignore import IgnoreRules

    path = directory / f"rules-{n}"
    names = [f"thing:retired-{i:07}" for i in range(n)]
    path.write_text("\n".join([*names, *GLOBS]) + "\n", encoding="utf-8")
    started = time.perf_counter()
    rules = IgnoreRules.from_file(path)
    result: dict[str, Any] = {"rules": n + len(GLOBS), "load_seconds": _since(started)}
    fields = ["thing_type", "billing_group", *(f"attributes.a{k}" for k in range(10))]
    for audit, drifts in reports.items():
        started = time.perf_counter()
        kept = list(rules.filter(drifts))
        filtered = _since(started)
        things = [d for d in drifts if d.entity is EntityKind.THING]
        started = time.perf_counter()
        for drift in things:
            for name in fields:
                rules.ignores(drift.entity, drift.name, name)
        checked = _since(started)
        result[audit] = {
            "drifts": len(drifts),
            "kept": len(kept),
            "filter_seconds": filtered,
            "field_checks": len(things) * len(fields),
            "field_check_seconds": checked,
            "extra_seconds": round(result["load_seconds"] + filtered + checked, 3),
        }
    return result


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def run(quick: bool = False, out_dir: Path = RESULTS) -> dict[str, Any]:
    reports = audits()
    sizes = QUICK_SIZES if quick else FULL_SIZES
    with tempfile.TemporaryDirectory() as directory:
        measured = [measure(n, reports, Path(directory)) for n in sizes]
    largest = measured[-1]
    per_rule = [m["first_run"]["extra_seconds"] / m["rules"] for m in measured]
    result = {
        "benchmark": "B4 ignore rules",
        "quick": quick,
        "things": THINGS,
        "sizes": measured,
        "targets": {
            "extra_at_largest": {
                "rules": largest["rules"],
                "target_seconds": TARGET_SECONDS_200K,
                "seconds": largest["first_run"]["extra_seconds"],
                "met": largest["first_run"]["extra_seconds"] <= TARGET_SECONDS_200K,
            },
            "linear_in_rules": {
                "seconds_per_1000_rules": [round(1000 * p, 4) for p in per_rule],
                # 10x the rules costs at most ~10x (2x slack for a shared machine's noise).
                "met": per_rule[-1] <= 2 * per_rule[0],
            },
        },
    }
    path = save("ignore_quick" if quick else "ignore", result, out_dir)
    print(summary(result))
    print(f"  -> {path}")
    return result


def summary(result: dict[str, Any]) -> str:
    lines = ["B4 ignore rules" + (" (quick)" if result["quick"] else "")]
    for size in result["sizes"]:
        for audit in ("nightly", "first_run"):
            a = size[audit]
            lines.append(
                f"  {size['rules']:>7,} rules, {audit} audit ({a['drifts']} drifts): "
                f"+{a['extra_seconds']:.2f} s (load {size['load_seconds']:.2f} s, filter "
                f"{a['filter_seconds']:.3f} s, {a['field_checks']} field checks "
                f"{a['field_check_seconds']:.3f} s)"
            )
    for name, target in result["targets"].items():
        lines.append(f"  target {name}: {'MET' if target['met'] else 'NOT MET'} {target}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ignore_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small N (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    run(quick=args.quick, out_dir=args.out)


if __name__ == "__main__":
    main()
