"""What a person sees on a terminal (issue 22 item 10): ``reconcile`` and ``plan`` run in a
pseudo-terminal (a real one, as a person's shell gives them: ``isatty`` is true) show a bounded
list of actions and say where the rest is; redirected, they print every action."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from reconcile.repair_commands import PLAN_LINES
from reconcile.snapshot import Snapshot

IOT_CRR = str(Path(sys.executable).with_name("iot-crr"))
THINGS = 60  # actions: one creation per thing missing from the destination


def snapshots(tmp_path: Path) -> list[str]:
    """A source with ``THINGS`` things and an empty destination, saved as snapshots."""
    source = Snapshot.from_records(
        "us-east-1", 1, things=[{"name": f"thing-{i:03d}"} for i in range(THINGS)]
    )
    target = Snapshot.from_records("eu-west-1", 1)
    source.save(tmp_path / "src")
    target.save(tmp_path / "dst")
    return [str(tmp_path / "src"), str(tmp_path / "dst")]


def on_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``iot-crr args`` with stdout and stderr on a pseudo-terminal; its exit code and
    everything it wrote there."""
    controller, terminal = pty.openpty()
    child = subprocess.Popen(
        [IOT_CRR, *args], stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, cwd=cwd
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: every writer of the terminal has closed it
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    code = child.wait(timeout=120)
    return code, b"".join(chunks).decode().replace("\r\n", "\n")


def action_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("upsert thing")]


def test_reconcile_on_a_terminal_lists_a_bounded_plan(tmp_path: Path) -> None:
    code, text = on_terminal(["reconcile", "--from-snapshots", *snapshots(tmp_path)], tmp_path)
    assert code == 1, text
    assert len(action_lines(text)) == PLAN_LINES
    assert f"… and {THINGS - PLAN_LINES} more: all with 2>FILE" in text


def test_plan_on_a_terminal_lists_a_bounded_plan_and_names_its_file(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    args = ["plan", "--from-snapshots", *snapshots(tmp_path), "--plan-file", str(plan_file)]
    code, text = on_terminal(args, tmp_path)
    assert code == 1, text
    assert len(action_lines(text)) == PLAN_LINES
    assert f"… and {THINGS - PLAN_LINES} more: all in {plan_file}" in text


def test_reconcile_redirected_lists_every_action(tmp_path: Path) -> None:
    done = subprocess.run(
        [IOT_CRR, "reconcile", "--from-snapshots", *snapshots(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert len(action_lines(done.stderr)) == THINGS
    assert "more" not in done.stderr
