"""`iot-crr demo` refuses what it cannot do before it starts a sandbox (issue 28): a fleet too
small for its story, and an --out whose reports/ it did not write (it replaces its run history)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from sandbox.cli import demo
from sandbox.demo import MIN_THINGS


def test_a_fleet_too_small_for_the_story_is_a_usage_error(tmp_path: Path) -> None:
    # The story rolls firmware out to 20 things and edits things 1 to 4 by index.
    result = CliRunner().invoke(demo, ["--things", "5", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert f"at least {MIN_THINGS}" in result.output and "--things" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "reports").exists()  # refused before anything started


def test_reports_the_demo_did_not_write_are_never_deleted(tmp_path: Path) -> None:
    # GIVEN an --out directory whose reports/ holds someone's run history
    history = tmp_path / "reports" / "index" / "2026-01-01.json"
    history.parent.mkdir(parents=True)
    history.write_text('{"run_id": "2026-01-01"}\n')
    # WHEN the demo is pointed at it
    result = CliRunner().invoke(demo, ["--out", str(tmp_path)])
    # THEN it refuses, naming the directory, and the history is intact
    assert result.exit_code == 2, result.output
    assert "--out" in result.output and "reports" in result.output
    assert history.read_text() == '{"run_id": "2026-01-01"}\n'
