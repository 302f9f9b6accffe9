"""``make conformance ARGS="--aws ..."`` end to end: pytest with the plugin's options, in its own
process, against the sandbox's endpoint as an account (its pipeline pumped in this process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.registry import thing_names
from conformance.run import Run
from conformance.tap import EventTap
from conformance.target import Target
from tests.conformance.conftest import DESTINATION, SOURCE, Pump

SCENARIO = """
import pytest

pytestmark = pytest.mark.conformance

def test_a_thing(conformance_target, conformance_run):
    scope = conformance_run.scope("plugin")
    conformance_target.source.create_thing(thingName=scope("device"))
"""
SANDBOX_ONLY = """
def test_sandbox_only():  # not a scenario: never run on an account
    raise AssertionError("ran on an account")
"""


def _pytest(pytester: pytest.Pytester, target: Target, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_scenario=SCENARIO, test_sandbox_only=SANDBOX_ONLY)
    return pytester.runpytest_subprocess(
        "-p",
        "conformance.plugin",
        "-p",
        "no:cacheprovider",
        "--aws",
        "--source-region",
        SOURCE,
        "--destination-region",
        DESTINATION,
        "--state-machine-arn",
        target.state_machine_arn,
        "--state-table",
        str(target.state_table),
        "--poll-interval",
        "0.05",
        *args,
    )


def test_refuses_a_foreign_registry_then_runs_beside_it_when_told(
    pytester: pytest.Pytester, account: tuple[Pump, Target]
) -> None:
    _, target = account
    target.source.create_thing(thingName="production-device")
    try:
        refused = _pytest(pytester, target)
        assert refused.ret == 2
        refused.stdout.fnmatch_lines(["*production-device*--i-know-this-account-is-shared*"])
        assert thing_names(target.source, "crrconf-") == []  # refused before creating anything

        record = pytester.path / "answers.json"
        told = _pytest(pytester, target, "--i-know-this-account-is-shared", "--record", str(record))
        assert told.ret == 0, told.stdout.str()
        told.assert_outcomes(passed=1, deselected=1)
        told.stdout.fnmatch_lines(
            [
                "*conformance run*",
                "*recorded * event shapes, 0 refusals, 0 authorizations and 0 registrations in*answers.json",
                "*API calls made by the suite*",
                "*iot:CreateThing: 1",
            ]
        )
        events = json.loads(record.read_text())["events"]
        assert [(e["eventType"], e["operation"]) for e in events][:1] == [
            ("THING_EVENT", "CREATED")
        ]
        assert thing_names(target.source, "crrconf-") == []  # cleaned up after itself
        assert thing_names(target.destination, "crrconf-") == []
        assert target.source.list_things()["things"][0]["thingName"] == "production-device"
    finally:
        target.source.delete_thing(thingName="production-device")


def test_cleanup_only_removes_an_interrupted_run(
    pytester: pytest.Pytester, account: tuple[Pump, Target]
) -> None:
    _, target = account
    run = Run("crashed1")
    EventTap(target.client, SOURCE, run).open(target.wait_until)
    # (No thing type: in its own process the 5-minute wait before deleting it would be real.)
    target.source.create_thing(thingName=run.name("device"))

    result = _pytest(pytester, target, "--cleanup-only", run.run_id)

    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*deleted thing crrconf-crashed1-device*", "*cleanup done*"])
    assert thing_names(target.source, run.prefix) == []
    assert not [r for r in target.source.list_topic_rules()["rules"] if "crashed1" in r["ruleName"]]


def test_an_unknown_run_id_is_a_usage_error(
    pytester: pytest.Pytester, account: tuple[Pump, Target], tmp_path: Path
) -> None:
    _, target = account
    result = _pytest(pytester, target, "--cleanup-only", "Not-A-Run")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*run id 'Not-A-Run': expected 6-12 lowercase letters or digits*"])
