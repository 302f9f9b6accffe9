"""The demo's story as a test: found drift of every injected kind, repaired to a clean audit."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.demo import run_demo


def test_the_demo_story_ends_with_a_clean_audit(tmp_path: Path) -> None:
    # The demo runs its own sandbox; a small fleet keeps this test quick.
    assert run_demo(tmp_path, things=40, echo=lambda _: None)
    report = json.loads((tmp_path / "drift.json").read_text())
    kinds = {(d["entity"], d["kind"]) for d in report["drifts"]}
    assert {("thing", "extra"), ("thing", "changed"), ("thing_group", "missing")} <= kinds
    assert json.loads((tmp_path / "final.json").read_text())["drifts"] == []
