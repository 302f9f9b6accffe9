"""`iot-crr demo` refuses what it cannot do before it starts a sandbox (issue 28): a fleet too
small for its story, and an --out whose reports/ it did not write (it replaces its run history)."""

from __future__ import annotations

import logging
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


def test_the_story_keeps_every_handlers_info_logs_off_the_screen(
    handler_loggers: list[logging.Logger],
) -> None:
    """The demo imports the nightly job (and its Logger) before it quiets the handlers: that
    logger too must log warnings only, or its progress lines fill the story."""
    import jobs.run  # noqa: F401  (its Logger exists before the quieting, as in the demo)
    from sandbox.cli import _handler_log_level

    _handler_log_level("WARNING")
    assert [logger.getEffectiveLevel() for logger in handler_loggers] == [logging.WARNING] * 4


def test_a_handler_warning_reads_as_a_line_of_the_story() -> None:
    # The replicator's records are JSON for CloudWatch; in the demo's terminal the story's
    # formatter gives its message and fields on one readable line.
    from pipeline.kinds import provisioning_template
    from sandbox.cli import StoryFormatter

    record = logging.makeLogRecord(
        {
            "name": "iot-crr-replicator",
            "levelno": logging.WARNING,
            "msg": "a hook names a function the destination does not have",
            "template": "fleet-claims",
            "function": "arn:aws:lambda:eu-west-1:123456789012:function:pre-provision",
        }
    )
    assert StoryFormatter().format(record) == (
        "  ! iot-crr-replicator: a hook names a function the destination does not have "
        "(template=fleet-claims, "
        "function=arn:aws:lambda:eu-west-1:123456789012:function:pre-provision)"
    )
    # The kinds log through their handler's logger, whose handler the demo formats.
    assert provisioning_template.logger.name == "iot-crr-replicator"
