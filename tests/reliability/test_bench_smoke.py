"""The benchmarks at small N, so their code cannot rot between ``make bench`` runs.

Runs ``python -m bench --quick`` into a temporary directory (a subprocess, as ``make bench``
runs it: the diff benchmark spawns its own interpreters and the sandbox starts a moto server)
and checks each result file and the table. Targets are not asserted here: a quick run on a
loaded CI machine says nothing about them; the figures live in ``bench/results/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.diff_bench import DRIFT, build_frames
from bench.scale_bench import nightly, read_quotas
from bench.snapshot_bench import lower_bound, things_listing_projection

REPO = Path(__file__).resolve().parents[2]


def test_quick_bench_writes_every_result_and_the_table(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STATE_TABLE"))}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("diff_quick", "snapshot_quick", "replicator_quick", "ignore_quick", "scale_quick"):
        result = json.loads((tmp_path / f"{name}.json").read_text())
        assert result["machine"]["cpu_count"] >= 1
        assert result["targets"], name
        assert all(isinstance(t["met"], bool) for t in result["targets"].values())
    diff = json.loads((tmp_path / "diff_quick.json").read_text())
    assert diff["engine"][-1]["changed_rows_explained"] > 0
    # The first call as the nightly job makes it (fingerprints computed at save, apart), and the
    # fresh snapshots' first call (fingerprints included) beside it.
    assert diff["engine"][-1]["fingerprint_at_save"]["seconds"] >= 0
    assert diff["engine"][-1]["fresh"]["same_report"]
    table = (tmp_path / "README.quick.md").read_text()
    for row in ("B1 diff engine", "B2 snapshot cost", "B3 replicator cost", "B4 ignore rules"):
        assert row in table
    assert "first call on fresh snapshots, fingerprints included" in table
    assert "B2 snapshot under latency" in table and "B5 nightly cost" in table
    snapshot = json.loads((tmp_path / "snapshot_quick.json").read_text())
    assert [row["latency_ms"] for row in snapshot["latency"]] == [200]
    assert snapshot["latency"][0]["by_type"]["same_snapshot"] is True


def test_synthetic_drift_has_every_kind_at_one_percent() -> None:
    frames = build_frames(1000)
    src, tgt = frames["source"], frames["target"]
    k = round(1000 * DRIFT)
    names_src, names_tgt = set(src["things"]["name"]), set(tgt["things"]["name"])
    assert len(names_src - names_tgt) == k  # missing
    assert len(names_tgt - names_src) == k  # extra
    both = src["things"].merge(tgt["things"], on="name", suffixes=("_s", "_t"))
    assert (both["attributes_s"] != both["attributes_t"]).sum() == k
    assert (both["thing_type_s"] != both["thing_type_t"]).sum() == k
    links_s = set(zip(src["memberships"]["thing"], src["memberships"]["group"], strict=True))
    links_t = set(zip(tgt["memberships"]["thing"], tgt["memberships"]["group"], strict=True))
    assert len(links_t - links_s) == k  # moved things: an extra membership each


@pytest.mark.parametrize(("things", "expected"), [(0, 1), (250, 1), (251, 2), (1_000_000, 4000)])
def test_snapshot_lower_bound_counts_pages(things: int, expected: int) -> None:
    bound = lower_bound(
        things=things,
        groups=3,
        billing_groups=1,
        types=1,
        members_per_group=300,
        members_per_billing_group=10,
    )
    assert bound["ListThings"] == expected
    assert bound["DescribeThingGroup"] == 3
    assert bound["ListThingsInThingGroup"] == 6


def test_scale_model_is_quota_bound_or_round_trip_bound() -> None:
    quotas = read_quotas()
    at_zero = nightly(1_000_000, 0, quotas)
    # 4,000 ListThings pages at 10 TPS; a certificate's principals at 10 TPS (ListCertificates'
    # pages carry the rest: no DescribeCertificate in a snapshot)
    assert at_zero["seconds_by_family"]["thing"] == 400.0
    assert "DescribeCertificate" not in at_zero["calls_by_operation"]
    assert at_zero["calls_by_operation"]["ListCertificates"] == 4_000
    assert at_zero["with_certificates_seconds"] == 100_000.0
    # quota-bound up to 400 ms a call; at 800 ms, 4 principal listings at once: 1M x 0.8 / 4 s
    assert nightly(1_000_000, 100, quotas)["with_certificates_seconds"] == 100_000.0
    assert nightly(1_000_000, 800, quotas)["with_certificates_seconds"] == 200_000.0


def test_things_listing_projection_parts_keep_the_quota_busy() -> None:
    rows = {(r["things"], r["latency_ms"]): r for r in things_listing_projection(10, 4)}
    assert rows[1_000_000, 200]["whole_ratio"] == 2.0
    assert rows[1_000_000, 200]["by_type_ratio"] == 1.0
    assert rows[10_000_000, 0]["quota_bound_seconds"] == 4000.0
