"""Issue 22, item 2: the deploy guide's first run (the backfill), its command as written.

A synchronous ``aws lambda invoke`` of the job (up to 15 minutes) outlives the AWS CLI's read
timeout (``--cli-read-timeout``, 60 s by default), after which the CLI retries the call and
starts the job again (AWS CLI Command Reference, global options and ``aws lambda invoke``). The
guide invokes it asynchronously (``--invocation-type Event``: Lambda answers 202 at once), and
the function's asynchronous-invocation config must not retry a failed run by itself.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

DEPLOY = Path(__file__).parents[2] / "docs" / "deploy.md"
AWS_CLI_READ_TIMEOUT_DEFAULT_S = 60


def _first_run_command() -> list[str]:
    section = DEPLOY.read_text().split("### First run = backfill", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    (line,) = [line for line in block.splitlines() if line.startswith("aws lambda invoke")]
    return shlex.split(line)


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_the_first_run_is_invoked_so_the_cli_neither_times_out_nor_retries_it(
    templates: dict[str, Any],
) -> None:
    argv = _first_run_command()
    assert argv[:3] == ["aws", "lambda", "invoke"]
    assert _option(argv, "--function-name") == "<ReconcileFunctionName>"
    assert "ReconcileFunctionName" in templates["reconcile"]["Outputs"]
    timeout = templates["reconcile"]["Resources"]["ReconcileFunction"]["Properties"]["Timeout"]
    read_timeout = _option(argv, "--cli-read-timeout")
    # Either asynchronous, or the CLI waits as long as the function may run.
    asynchronous = _option(argv, "--invocation-type") == "Event"
    waits_long_enough = read_timeout is not None and (
        int(read_timeout) == 0 or int(read_timeout) >= timeout
    )
    assert timeout > AWS_CLI_READ_TIMEOUT_DEFAULT_S
    assert asynchronous or waits_long_enough, argv
    # An asynchronous invocation is retried by Lambda unless its config says not to: a failed
    # run waits for the operator (or the next night), never runs twice on its own.
    invoke_config = templates["reconcile"]["Resources"]["ReconcileInvokeConfig"]["Properties"]
    assert invoke_config["MaximumRetryAttempts"] == 0


def test_the_guide_says_what_to_set_when_the_cap_applies() -> None:
    section = DEPLOY.read_text().split("### First run = backfill", 1)[1].split("\n## ", 1)[0]
    # The job's knob (the stack's parameter and its variable), never the CLI's flag.
    assert "MaxChanges=0" in section and "MAX_CHANGES" in section
    assert "--max-changes" not in section


# --- what the guide names (issue 22 item 15) -----------------------------------------------


def test_the_guide_names_every_parameter_and_every_alarm_of_the_stacks(
    templates: dict[str, dict[str, Any]],
) -> None:
    guide = DEPLOY.read_text(encoding="utf-8")
    for name, template in templates.items():
        for parameter in template.get("Parameters", {}):
            assert f"`{parameter}`" in guide or f"{parameter}=" in guide, (name, parameter)
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                assert f"`{logical_id}`" in guide, (name, logical_id)
