"""Every way a command can end maps to 0, 1, 2 or 130, with one line on stderr.

Faults are injected through the CLI's own seam for tests (``Factory.client``): the AWS client
raises what a real one could (a KeyboardInterrupt mid-call, an unexpected error)."""

from __future__ import annotations

from typing import Any

import pytest

from reconcile.console import outcome
from reconcile.context import Factory
from reconcile.exits import EXIT_CODES

AUDIT = ["audit", "--source-region", "us-east-1", "--target-region", "eu-west-1"]


def factory_raising(error: BaseException) -> Factory:
    def client(service: str, region: str) -> Any:
        raise error

    return Factory(client=client, show_progress=False)


def test_ctrl_c_anywhere_is_130(capsys: pytest.CaptureFixture[str]) -> None:
    assert outcome(AUDIT, obj=factory_raising(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"


def test_an_unexpected_error_is_one_line_and_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert outcome(AUDIT, obj=factory_raising(RuntimeError("boom\nsecond line"))) == 2
    assert capsys.readouterr().err.splitlines() == [
        "Error: boom second line [RuntimeError] (run with iot-crr --debug for the traceback)"
    ]


def test_debug_adds_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert outcome(AUDIT, debug=True, obj=factory_raising(RuntimeError("boom"))) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--help"], 0),
        (["--version"], 0),
        (["no-such-command"], 2),
        (["audit", "--source-region", "us-east-1"], 2),  # a usage error
        (["plan", *AUDIT[1:], "--format", "html", "--plan-file", "p.json"], 2),
    ],
)
def test_other_endings_are_one_of_the_four_codes(args: list[str], code: int) -> None:
    assert outcome(args) == code
    assert code in EXIT_CODES
