"""The installed `iot-crr` in a subprocess: every way it ends is 0, 1, 2 or 130, in one line.

The SIGINT and SIGTERM tests run `reconcile --apply` against the sandbox (served from this
process) and interrupt it once the sandbox has seen some of its executions start: no sleeping for a guess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sandbox.cli import exports
from sandbox.stack import Sandbox
from tests.e2e.conftest import SOURCE

IOT_CRR = str(Path(sys.executable).with_name("iot-crr"))
FLEET = 225


def iot_crr(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [IOT_CRR, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def test_a_plan_file_that_is_not_utf8_is_one_line_and_exit_2(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_bytes(b"\xff\xfe not json")

    result = iot_crr("apply", str(plan), "--state-machine-arn", "arn:x")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_endpoint_that_is_not_a_url_is_one_line_and_exit_2() -> None:
    result = iot_crr(
        "audit",
        "--source-region",
        "us-east-1",
        "--target-region",
        "eu-west-1",
        env={"AWS_ENDPOINT_URL": "notaurl", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: Invalid endpoint: notaurl [ValueError] (run with iot-crr --debug for the traceback)"
    ]


def test_debug_shows_the_traceback_and_still_exits_2() -> None:
    result = iot_crr(
        "--debug",
        "audit",
        "--source-region",
        "us-east-1",
        "--target-region",
        "eu-west-1",
        env={"AWS_ENDPOINT_URL": "notaurl", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
    )

    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sigint_or_sigterm_during_apply_exits_130_and_says_how_far_it_got(
    signum: int, sandbox: Sandbox, tmp_path: Path
) -> None:
    # GIVEN a source fleet the target lacks entirely (its events never delivered)
    backend = sandbox.iot_backend(SOURCE)
    for i in range(FLEET):
        backend.create_thing(f"device-{i:04d}", None, None)
    sandbox.outbox(SOURCE).take()
    sfn = sandbox.client("stepfunctions", SOURCE)

    def started() -> int:
        return sum(
            len(page["executions"])
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=sandbox.state_machine_arn
            )
        )

    # WHEN `reconcile --apply` runs and is interrupted once 20 executions have started
    process = subprocess.Popen(
        [IOT_CRR, "reconcile", "--apply"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **exports(sandbox)},
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 120
    pace = threading.Event()
    while started() < 20 and process.poll() is None and time.monotonic() < deadline:
        pace.wait(0.02)  # pacing the poll of a condition, not waiting for one
    assert process.poll() is None, "the apply finished before it could be interrupted"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)

    # THEN it exits 130 and says how many of the 225 events went out, and that re-running is safe
    assert process.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: ")
    assert f"of {FLEET} corrective events emitted; re-run to finish" in last
    emitted = int(last.removeprefix("interrupted: ").split(" ", 1)[0])
    # every event it counted did start; the one in flight at the signal may not be counted
    assert 19 <= emitted <= started() < FLEET
    assert "Traceback" not in stderr


@pytest.mark.parametrize("args", [["--help"], ["audit", "--help"]])
def test_help_exits_0(args: list[str]) -> None:
    assert iot_crr(*args).returncode == 0
