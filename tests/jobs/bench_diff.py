"""Measures the diff stage on synthetic fleets: time and peak RSS (not a test; run by hand).

    .venv/bin/python -m tests.jobs.bench_diff 100000 1000000

Each size runs in a fresh subprocess so peak RSS is that size's own. Frames are built directly
(no AWS): things with a type and two attributes, one membership per thing over 1,000 groups;
the target differs by 1% changed, 0.5% missing and 0.5% extra things.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def frames(n: int, *, target: bool) -> dict[str, pd.DataFrame]:
    from reconcile.snapshot import SCHEMAS

    rng = np.random.default_rng(7)
    names = pd.Series([f"thing-{i:08d}" for i in range(n)], dtype="string")
    colour = np.where(rng.random(n) < (0.01 if target else 0.0), "blue", "red")
    things = pd.DataFrame(
        {
            "name": names,
            "thing_type": pd.Series(
                np.where(np.arange(n) % 2, "sensor", "gateway"), dtype="string"
            ),
            "attributes": pd.Series(
                ['{"colour":"' + c + '","site":"dub"}' for c in colour], dtype="string"
            ),
            "billing_group": pd.Series([None] * n, dtype="string"),
            "version": pd.Series(np.ones(n, dtype=np.int64), dtype="Int64"),
        }
    )
    groups = pd.DataFrame(
        {
            "name": pd.Series([f"group-{g:04d}" for g in range(1000)], dtype="string"),
            "parent": pd.Series([None] * 1000, dtype="string"),
            "description": pd.Series([None] * 1000, dtype="string"),
            "attributes": pd.Series(["{}"] * 1000, dtype="string"),
            "query": pd.Series([None] * 1000, dtype="string"),
            "version": pd.Series([1] * 1000, dtype="Int64"),
        }
    )
    memberships = pd.DataFrame(
        {
            "thing": names,
            "group": pd.Series([f"group-{i % 1000:04d}" for i in range(n)], dtype="string"),
        }
    )
    if target:
        keep = rng.random(n) >= 0.005  # 0.5% missing in the target
        things, memberships = things[keep], memberships[keep]
        extra = max(1, n // 200)
        things = pd.concat(
            [
                things,
                pd.DataFrame(
                    {
                        "name": pd.Series([f"extra-{i:08d}" for i in range(extra)], dtype="string"),
                        "thing_type": pd.Series([None] * extra, dtype="string"),
                        "attributes": pd.Series(["{}"] * extra, dtype="string"),
                        "billing_group": pd.Series([None] * extra, dtype="string"),
                        "version": pd.Series([1] * extra, dtype="Int64"),
                    }
                ),
            ]
        )
    empty = {
        t: pd.DataFrame({c: pd.Series([], dtype=d) for c, d in s.items()})
        for t, s in SCHEMAS.items()
    }
    return {**empty, "things": things, "thing_groups": groups, "memberships": memberships}


def measure(n: int) -> dict[str, float]:
    from reconcile.diff import diff_snapshots
    from reconcile.snapshot import Snapshot

    start = time.perf_counter()
    source = Snapshot(region="us-east-1", taken_at_ms=0, **frames(n, target=False))
    target = Snapshot(region="eu-west-1", taken_at_ms=0, **frames(n, target=True))
    built_s = time.perf_counter() - start
    rss_built = rss_mb()

    start = time.perf_counter()
    fingerprints = (source.fingerprint(), target.fingerprint())
    fingerprint_s = time.perf_counter() - start

    start = time.perf_counter()
    report = diff_snapshots(source, target)
    diff_s = time.perf_counter() - start
    rss_diff = rss_mb()

    start = time.perf_counter()
    shard = diff_snapshots(source, target, buckets=16, bucket_range=range(0, 1))
    shard_s = time.perf_counter() - start
    assert fingerprints[0] == report.source_fingerprint
    return {
        "things": n,
        "drifts": len(report.drifts),
        "build_s": round(built_s, 2),
        "fingerprint_both_s": round(fingerprint_s, 2),
        "diff_s": round(diff_s, 2),
        "diff_one_of_16_buckets_s": round(shard_s, 2),
        "shard_drifts": len(shard.drifts),
        "rss_after_build_mb": round(rss_built),
        "peak_rss_after_diff_mb": round(rss_diff),
    }


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--one":
        print(json.dumps(measure(int(argv[1]))))
        return
    for size in argv or ["100000", "1000000"]:
        out = subprocess.run(
            [sys.executable, "-m", "tests.jobs.bench_diff", "--one", size],
            check=True,
            capture_output=True,
            text=True,
        )
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main(sys.argv[1:])
