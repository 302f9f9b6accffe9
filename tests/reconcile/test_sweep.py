"""A sweep lists the per-device links of one slice of the fleet a run (``reconcile.sweep``):
which calls it makes, what it compares, and that N consecutive days cover every link."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from jobs.config import ConfigError, run_config_from_env
from pipeline.model import EntityKind
from reconcile.cli import main
from reconcile.diff import diff_snapshots
from reconcile.hashing import bucket_of
from reconcile.inventory import Inventory
from reconcile.ratelimit import RateLimiter
from reconcile.report import load_json, render, to_json
from reconcile.snapshot import Snapshot, take_snapshot
from reconcile.sweep import WHOLE, Sweep, SweepMismatchError, parse_sweep
from sandbox.certificates import self_signed_pem

SRC, DST = "us-east-1", "eu-west-1"
DAY_MS = 86_400_000
NOW = 1_796_119_205_000
DEVICES = 12
SLICES = 3


@pytest.fixture
def regions(aws_credentials: None) -> Iterator[tuple[Any, Any, list[str]]]:
    """Both regions hold the same things and certificates; only the source attaches them (the
    stream lost every attach): each device's link is a drift. Yields the certificate ids."""
    with mock_aws(config={"iot": {"use_valid_cert": True}}):
        source = boto3.client("iot", region_name=SRC)
        destination = boto3.client("iot", region_name=DST)
        ids = []
        for i in range(DEVICES):
            pem = self_signed_pem(f"device-{i}")
            certs = []
            for iot in (source, destination):
                iot.create_thing(thingName=f"device-{i}")
                certs.append(
                    iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
                )
            cert = certs[0]
            source.attach_thing_principal(thingName=f"device-{i}", principal=cert["certificateArn"])
            ids.append(cert["certificateId"])
        yield source, destination, ids


def _snapshot(iot: Any, region: str, sweep: Sweep) -> tuple[Snapshot, Inventory]:
    inventory = Inventory(iot, RateLimiter.unlimited(), sweep=sweep)
    return take_snapshot(inventory, region), inventory


def _missing_links(report: Any) -> set[str]:
    return {d.name for d in report.drifts if d.entity is EntityKind.THING_PRINCIPAL}


def test_each_slice_lists_its_certificates_things_only_and_the_slices_cover_every_link(
    regions: tuple[Any, Any, list[str]],
) -> None:
    source, destination, ids = regions
    whole = diff_snapshots(_snapshot(source, SRC, WHOLE)[0], _snapshot(destination, DST, WHOLE)[0])
    every_link = _missing_links(whole)
    assert len(every_link) == DEVICES
    found: list[str] = []
    for k in range(SLICES):
        sweep = Sweep(k, SLICES)
        src, inventory = _snapshot(source, SRC, sweep)
        dst, _ = _snapshot(destination, DST, sweep)
        in_slice = {i for i in ids if bucket_of(i, SLICES) == k}
        # One ListPrincipalThingsV2 per certificate of the slice, none for the others
        assert inventory.calls["ListPrincipalThingsV2"] == len(in_slice)
        assert {name.split("#")[1] for name in src.thing_principals["name"]} == in_slice
        report = diff_snapshots(src, dst)
        assert report.sweep == sweep
        assert report.counts["thing_principal"] == len(in_slice)
        # Every other kind is compared whole: the certificates and things are in sync
        assert {d.entity for d in report.drifts} <= {EntityKind.THING_PRINCIPAL}
        found += _missing_links(report)
    assert sorted(found) == sorted(every_link)  # every link once over the slices


def test_a_whole_view_is_compared_on_the_slice_and_two_slices_never(
    regions: tuple[Any, Any, list[str]],
) -> None:
    source, destination, ids = regions
    sweep = Sweep(1, SLICES)
    swept, _ = _snapshot(destination, DST, sweep)
    # The state table holds every link (here: the source read whole, as origin state_table):
    # against a swept destination only the slice's links are drift, never the others
    table = replace(_snapshot(source, SRC, WHOLE)[0], origin="state_table")
    report = diff_snapshots(table, swept)
    in_slice = {i for i in ids if bucket_of(i, SLICES) == 1}
    assert {name.split("#")[1] for name in _missing_links(report)} == in_slice
    assert report.sweep == sweep
    other, _ = _snapshot(source, SRC, Sweep(2, SLICES))
    with pytest.raises(SweepMismatchError, match=r"2/3 and 1/3"):
        diff_snapshots(other, swept)


def test_a_saved_snapshot_keeps_its_slice_and_the_fingerprint_tells_slices_apart(
    regions: tuple[Any, Any, list[str]], tmp_path: Path
) -> None:
    source, _, _ = regions
    first, _ = _snapshot(source, SRC, Sweep(0, SLICES))
    first.save(tmp_path / "s")
    loaded = Snapshot.load(tmp_path / "s")
    assert loaded.sweep == Sweep(0, SLICES) and loaded == first
    assert json.loads((tmp_path / "s" / "snapshot.json").read_text())["sweep"] == {
        "slice": 0,
        "slices": SLICES,
    }
    # The same rows under another slice's label are other content
    relabelled = Snapshot(SRC, first.taken_at_ms, first.frames, sweep=Sweep(1, SLICES))
    assert relabelled.fingerprint() != first.fingerprint()
    # A snapshot saved before sweeps (no "sweep" in its manifest) is whole
    whole, _ = _snapshot(source, SRC, WHOLE)
    whole.save(tmp_path / "w")
    manifest = json.loads((tmp_path / "w" / "snapshot.json").read_text())
    del manifest["sweep"]
    (tmp_path / "w" / "snapshot.json").write_text(json.dumps(manifest))
    assert Snapshot.load(tmp_path / "w").sweep == WHOLE


def test_consecutive_days_take_consecutive_slices() -> None:
    days = [Sweep.today(7, NOW + day * DAY_MS).slice for day in range(14)]
    assert sorted(days[:7]) == list(range(7)) and days[7:] == days[:7]
    assert Sweep.today(1, NOW) == WHOLE


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7", Sweep.today(7, NOW)), ("3/7", Sweep(3, 7)), (" 0/1 ", WHOLE), ("1", WHOLE)],
)
def test_sweep_text_reads_as_today_or_a_named_slice(text: str, expected: Sweep) -> None:
    assert parse_sweep(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0", "1 to 366 slices, not 0"),
        ("7/7", "slice 7 is not one of 0..6"),
        ("a/7", "expected N"),
        ("400", "not 400"),
        ("-1/3", "expected N"),
    ],
)
def test_a_bad_sweep_is_refused_naming_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_sweep(text, NOW)


def test_the_report_says_the_slice_and_reads_it_back() -> None:
    source = Snapshot.from_records(SRC, NOW, things=[{"name": "t"}])
    target = Snapshot.from_records(DST, NOW, things=[{"name": "t"}])
    sweep = Sweep(2, 5)
    report = diff_snapshots(
        Snapshot(SRC, NOW, source.frames, sweep=sweep),
        Snapshot(DST, NOW, target.frames, sweep=sweep),
    )
    document = to_json(report)
    assert document["sweep"] == {"slice": 2, "slices": 5}
    assert load_json(document).sweep == sweep
    assert "thing principals and shadows: slice 2 of 5" in render(report, "table")
    assert "slice" not in render(diff_snapshots(source, target), "table").splitlines()[0]


def test_the_cli_sweeps_today_and_refuses_a_bad_value_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Snapshot.from_records(SRC, NOW, things=[{"name": "t"}])
    for snapshot, name in ((source, "src"), (source, "dst")):
        Snapshot(snapshot.region, NOW, snapshot.frames, sweep=Sweep(1, 4)).save(tmp_path / name)
    audit = ["audit", "--from-snapshots", str(tmp_path / "src"), str(tmp_path / "dst")]
    shown = CliRunner().invoke(main, [*audit, "--format", "json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["sweep"] == {"slice": 1, "slices": 4}
    bad = CliRunner().invoke(main, ["--sweep", "4/4", *audit])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines()[-1].endswith("--sweep '4/4': slice 4 is not one of 0..3")


def test_the_job_reads_sweep_slices() -> None:
    env = {
        "SOURCE_REGION": SRC,
        "TARGET_REGION": DST,
        "STATE_TABLE": "t",
        "REPORT_LOCATION": "/tmp/r",
    }
    assert run_config_from_env(env).sweep_slices == 1
    assert run_config_from_env({**env, "SWEEP_SLICES": "7"}).sweep_slices == 7
    for bad in ("0", "x", "367"):
        with pytest.raises(ConfigError, match="SWEEP_SLICES"):
            run_config_from_env({**env, "SWEEP_SLICES": bad})
