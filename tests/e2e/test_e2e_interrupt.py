"""Ctrl-C (and SIGTERM) end every long command within seconds, with exit 130, whatever the
network is doing: the installed `iot-crr` and `python -m jobs.nightly` in a subprocess.

The network here is a black hole: a server that accepts every connection and never answers, so
each call waits for botocore's read timeout (60 s) and then retries. A command is signalled once
the black hole holds its calls (the condition that it started working), and must exit within
``BOUND`` seconds: well under one read timeout, so a command that waits for its threads' calls
fails. The time each took is printed (`pytest -s`) for the record.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from reconcile.diff import diff_snapshots
from reconcile.guards import Guards
from reconcile.planner import build_plan
from reconcile.snapshot import Snapshot

IOT_CRR = str(Path(sys.executable).with_name("iot-crr"))
BOUND = 10.0  # seconds from the signal to the exit
PLAN_KEY = "interrupt-test-key"
SOURCE, TARGET = "us-east-1", "eu-west-1"
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:iot-crr-state-persist"


class BlackHole:
    """A TCP server on 127.0.0.1 that accepts connections and never answers them."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._held: list[socket.socket] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:  # closed
                return
            with self._changed:
                self._held.append(connection)
                self._changed.notify_all()

    @property
    def held(self) -> int:
        with self._changed:
            return len(self._held)

    def close(self) -> None:
        self._server.close()
        with self._changed:
            for connection in self._held:
                connection.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


def environment(hole: BlackHole) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{hole.port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SOURCE_REGION": SOURCE,
        "TARGET_REGION": TARGET,
        "STATE_TABLE": "iot-crr-state",
        "IOT_CRR_PLAN_KEY": PLAN_KEY,  # apply --no-verify takes only a signed plan
        "REPORT_LOCATION": "",
    }


def interrupted(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    started: Callable[[], bool],
    signum: int = signal.SIGINT,
) -> tuple[int, str, float]:
    """Run ``argv``, signal it once ``started()`` holds, and return its exit code, stderr and
    the seconds from the signal to its exit."""
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd
    )
    deadline = time.monotonic() + 120
    pace = threading.Event()
    while not started() and process.poll() is None and time.monotonic() < deadline:
        pace.wait(0.02)  # pacing the poll of a condition, not waiting for one
    assert process.poll() is None, f"{argv} ended before it was signalled: {process.stderr}"
    assert started(), f"{argv} never started working"
    process.send_signal(signum)
    signalled = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(f"{argv} still running 60 s after the signal: {stderr}")
    took = time.monotonic() - signalled
    print(f"\n{' '.join(argv[1:3])} ({signal.Signals(signum).name}): exit in {took:.2f}s")
    return process.returncode, stderr, took


def plan_file(directory: Path, things: int) -> Path:
    """A fresh plan creating ``things`` things in the target (signed as the env would sign)."""
    now = int(time.time() * 1000)
    source = Snapshot.from_records(
        SOURCE, now, things=[{"name": f"device-{i:03d}", "version": 1} for i in range(things)]
    )
    target = Snapshot.from_records(TARGET, now)
    plan = build_plan(diff_snapshots(source, target), source, target, Guards(), now=now)
    path = directory / "plan.json"
    plan.save(path, key=PLAN_KEY.encode())
    return path


LISTING_COMMANDS = {
    "snapshot": ["snapshot", "--region", SOURCE, "--out", "snap"],
    "audit": ["audit"],
    "plan": ["plan", "--plan-file", "plan-out.json"],
    "reconcile": ["reconcile"],
    "reconcile --apply": ["reconcile", "--apply", "--state-machine-arn", ARN],
}


@pytest.mark.parametrize("command", LISTING_COMMANDS)
def test_ctrl_c_while_listings_wait_on_the_network_exits_130_at_once(
    command: str, black_hole: BlackHole, tmp_path: Path
) -> None:
    # GIVEN a command whose listings (both regions', every family at once) are all in calls that
    # never return; WHEN it is interrupted
    code, stderr, took = interrupted(
        [IOT_CRR, *LISTING_COMMANDS[command]],
        environment(black_hole),
        tmp_path,
        lambda: black_hole.held >= 4,
    )

    # THEN it exits 130 within seconds, with one line and no traceback
    assert code == 130, stderr
    assert took < BOUND, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in stderr


def test_sigterm_ends_a_listing_command_like_ctrl_c(black_hole: BlackHole, tmp_path: Path) -> None:
    code, stderr, took = interrupted(
        [IOT_CRR, "audit"],
        environment(black_hole),
        tmp_path,
        lambda: black_hole.held >= 4,
        signal.SIGTERM,
    )

    assert code == 130, stderr
    assert took < BOUND, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted: terminated (SIGTERM)"


def test_ctrl_c_while_apply_verifies_exits_130_at_once(
    black_hole: BlackHole, tmp_path: Path
) -> None:
    # GIVEN a fresh plan, and apply's verification snapshots stuck in the network
    plan = plan_file(tmp_path, 3)
    code, stderr, took = interrupted(
        [IOT_CRR, "apply", str(plan), "--yes", "--state-machine-arn", ARN],
        environment(black_hole),
        tmp_path,
        lambda: black_hole.held >= 4,
    )

    assert code == 130, stderr
    assert took < BOUND, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_emit_stuck_in_the_network_is_interrupted_with_how_far_it_got(
    signum: int, black_hole: BlackHole, tmp_path: Path
) -> None:
    # GIVEN a plan of 5 actions whose first StartExecution never returns
    plan = plan_file(tmp_path, 5)
    code, stderr, took = interrupted(
        [IOT_CRR, "apply", str(plan), "--yes", "--no-verify", "--state-machine-arn", ARN],
        environment(black_hole),
        tmp_path,
        lambda: black_hole.held >= 1,
        signum,
    )

    # THEN it exits 130 at once and says none went out, and that re-running is safe
    assert code == 130, stderr
    assert took < BOUND, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: 0 of 5 corrective events emitted; re-run to finish")


def test_ctrl_c_ends_the_nightly_job_run_locally(black_hole: BlackHole, tmp_path: Path) -> None:
    env = {**environment(black_hole), "REPORT_LOCATION": str(tmp_path / "reports")}
    code, stderr, took = interrupted(
        [sys.executable, "-m", "jobs.nightly"],
        env,
        Path(__file__).parents[2],
        lambda: black_hole.held >= 4,
    )

    assert code == 130, stderr
    assert took < BOUND, stderr
    assert stderr.strip().splitlines()[-1] == "nightly: interrupted"
    assert "Traceback" not in stderr


class Lines:
    """A process's stdout, read line by line in a thread, for conditions to wait on."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.closed = False
        self._changed = threading.Condition()
        self._process = process
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait_for(self, holds: Callable[[list[str]], bool], timeout: float = 180) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: holds(self.lines), timeout), self.lines

    def wait_closed(self) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.closed, 60), self.lines


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_a_busy_sandbox_up_within_seconds_with_130(signum: int) -> None:
    # GIVEN `sandbox up` pumping a burst of registry changes (executions running in moto's
    # threads when the signal lands)
    process = subprocess.Popen(
        [IOT_CRR, "sandbox", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        out = Lines(process)
        out.wait_for(lambda lines: any(line.startswith("Pumping") for line in lines))
        endpoint = next(
            line.split("=", 1)[1] for line in out.lines if "export AWS_ENDPOINT_URL=" in line
        )
        iot = boto3.client(
            "iot",
            region_name=SOURCE,
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for i in range(100):
            iot.create_thing(thingName=f"burst-{i:03d}")
        out.wait_for(
            lambda lines: any(
                " 0 executions" not in line for line in lines if line.startswith("round")
            )
        )

        # WHEN it is signalled
        process.send_signal(signum)
        signalled = time.monotonic()
        process.wait(timeout=60)
        took = time.monotonic() - signalled
        out.wait_closed()
        assert process.stderr is not None
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    print(f"\nsandbox up ({signal.Signals(signum).name}): exit in {took:.2f}s")

    # THEN it stops within seconds, says so, and exits 130
    assert process.returncode == 130, stderr
    assert took < BOUND, stderr
    assert out.lines[-1] == "stopped"
    assert "Traceback" not in stderr
