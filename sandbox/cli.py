"""``iot-crr sandbox``: run the embedded two-region sandbox from a shell.

``sandbox up`` starts it in the foreground, prints the ``export`` lines another shell needs
(endpoint, credentials, regions, state machine, table) and pumps the pipeline (``sandbox.pump``)
until Ctrl-C or SIGTERM. ``sandbox`` and ``demo`` reach ``iot-crr`` through the
``iot_crr.commands`` entry points in pyproject.toml: the product never imports the sandbox.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sandbox import DEFAULT_DESTINATION_REGION, DEFAULT_ROUND_BUDGET, DEFAULT_SOURCE_REGION

if TYPE_CHECKING:
    from sandbox.stack import Sandbox

# moto (the sandbox extra) is imported inside the commands, so `iot-crr` works without it.


@click.group("sandbox")
def sandbox() -> None:
    """The embedded two-region sandbox (moto plus the emulation of what moto lacks).

    \b
    Example:
      iot-crr sandbox up --source-region us-east-1 --target-region eu-west-1
    """


@sandbox.command("up")
@click.option("--source-region", default=DEFAULT_SOURCE_REGION, show_default=True)
@click.option("--target-region", default=DEFAULT_DESTINATION_REGION, show_default=True)
@click.option("--destination-region", "old_target_region", hidden=True)  # the old spelling
@click.option(
    "--port",
    default=0,
    type=click.IntRange(0, 65535),
    show_default="a free port",
    help="Listen port.",
)
@click.option(
    "--interval",
    default=1.0,
    type=click.FloatRange(min=0),
    show_default=True,
    help="Seconds between rounds when the pipeline is idle.",
)
@click.option(
    "--round-budget",
    default=DEFAULT_ROUND_BUDGET,
    type=click.FloatRange(min=0),
    show_default=True,
    help="Seconds a round may take before it is reported as slow (the pump goes on).",
)
@click.option(
    "--duplicates",
    default=0.0,
    type=click.FloatRange(0, 1),
    show_default=True,
    help="Probability that an event is delivered twice.",
)
@click.option(
    "--reorder-window",
    default=0,
    type=click.IntRange(min=0),
    show_default=True,
    help="Shuffle within N events.",
)
@click.option(
    "--drops",
    default=0.0,
    type=click.FloatRange(0, 1),
    show_default=True,
    help="Probability that an event is dropped.",
)
@click.option("--seed", default=0, type=int, show_default=True, help="Seed of the quirks above.")
@click.option(
    "--two-way",
    is_flag=True,
    help="Run the pipeline in both directions (failover and failback, docs/failover.md): each "
    "region persists its own registry's events and replicates the other's.",
)
@click.option(
    "--verbose", is_flag=True, help="Also show the handlers' JSON logs, metrics and moto's logs."
)
def up(
    *,
    source_region: str,
    target_region: str,
    old_target_region: str | None,
    port: int,
    interval: float,
    round_budget: float,
    duplicates: float,
    reorder_window: int,
    drops: float,
    seed: int,
    two_way: bool,
    verbose: bool,
) -> None:
    """Run the sandbox in the foreground until Ctrl-C (or SIGTERM); then exits 130.

    Prints the `export` lines another shell needs, then one line per round of the pipeline
    that moved something, and every failure with its entity and reason.

    \b
    Example:
      iot-crr sandbox up --port 4566
      # in another shell, paste the printed exports, then:
      aws iot create-thing --thing-name sensor-1 --region us-east-1
      iot-crr audit
      iot-crr sandbox up --two-way   # both directions: failover and failback
    """
    from reconcile.exits import EXIT_INTERRUPTED
    from reconcile.regions import UnknownRegionError, check_region
    from sandbox import SandboxError, pump
    from sandbox.emulation import Delivery
    from sandbox.stack import Sandbox

    target_region = old_target_region or target_region
    try:
        check_region(source_region, "--source-region")
        check_region(target_region, "--target-region")
    except UnknownRegionError as error:
        raise click.UsageError(str(error)) from error
    _quiet_handlers(verbose)
    delivery = Delivery(duplicates, drops, reorder_window, seed)
    # Ctrl-C raises KeyboardInterrupt, and so does SIGTERM (a service manager, `kill`) under
    # `iot-crr` (reconcile.interrupt): the pump stops mid-round, the server stops, and the
    # process ends with 130 without waiting for the executions moto still runs in its threads.
    try:
        with Sandbox(
            source_region, target_region, delivery=delivery, port=port, two_way=two_way
        ) as box:
            click.echo(welcome(box))
            pump.run(
                box, threading.Event(), click.echo, interval=interval, round_budget=round_budget
            )
    except KeyboardInterrupt:
        click.echo("stopped")
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except SandboxError as error:
        raise click.ClickException(str(error)) from error


def exports(box: Sandbox) -> dict[str, str]:
    """Everything another shell needs for `iot-crr` and the AWS CLI against this sandbox."""
    env = box.environment()
    return {
        "AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
        "AWS_SESSION_TOKEN": env["AWS_SESSION_TOKEN"],
        "AWS_DEFAULT_REGION": box.source_region,
        "SOURCE_REGION": box.source_region,
        "TARGET_REGION": box.destination_region,
        "PERSIST_STATE_MACHINE_ARN": box.state_machine_arn,
        "STATE_TABLE": box.table_name,
        # Two-way: the target region's persist state machine, for a reconcile back (failback).
        **(
            {
                "TARGET_PERSIST_STATE_MACHINE_ARN": box.resources.state_machine_in(
                    box.destination_region
                )
            }
            if box.two_way
            else {}
        ),
    }


def welcome(box: Sandbox) -> str:
    """What `sandbox up` prints once it is ready: copy-paste exports and what to try."""
    arrow = "⇄" if box.two_way else "→"
    lines = [
        f"Sandbox up at {box.endpoint_url}: {box.source_region} {arrow} {box.destination_region} "
        "(moto; registry events are on in both regions, emulated"
        + ("; the pipeline runs both ways)." if box.two_way else ")."),
        "In another shell, paste:",
        "",
        *(f"  export {name}={shlex.quote(value)}" for name, value in exports(box).items()),
        "  unset AWS_PROFILE",
        "",
        "then, for example:",
        f"  aws iot create-thing --thing-name sensor-1   # a registry change in {box.source_region}",
        "  iot-crr audit                                  # compare the two registries",
        "  iot-crr reconcile --apply                      # repair through the pipeline",
        *(
            [
                f"  aws iot create-thing --thing-name sensor-2 --region {box.destination_region}"
                f"   # flows back to {box.source_region}",
                "  iot-crr audit --source-region $TARGET_REGION --target-region $SOURCE_REGION",
            ]
            if box.two_way
            else []
        ),
        "",
        "Pumping the pipeline: one line per round that moved something; Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _quiet_handlers(verbose: bool) -> None:
    """The handlers run in this process: their JSON logs, metric lines and moto's request log
    are for debugging (`--verbose`); the pump's own lines carry every failure and its reason."""
    if verbose:
        from sandbox.emulation import FUNCTION_LOG

        FUNCTION_LOG.echo = sys.stdout  # the functions' stdout (kept apart otherwise)
        logging.getLogger("werkzeug").setLevel(logging.INFO)
        return
    _handler_log_level("CRITICAL")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    for name in ("moto", "werkzeug", "botocore"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _handler_log_level(default: str) -> None:
    """``POWERTOOLS_LOG_LEVEL`` (``default`` unless set) for the handlers' loggers, those already
    made included: a handler module imported before a command runs (the sandbox's in-process
    pipeline and the demo import them) made its Logger with the variable unset (INFO). Loggers
    of one service share one ``logging`` logger (the kinds' log as the replicator)."""
    from jobs import run
    from pipeline import pending, persist, replicate

    level = os.environ.setdefault("POWERTOOLS_LOG_LEVEL", default)
    for module in (persist, replicate, pending, run):
        module.logger.setLevel(level)


class StoryFormatter(logging.Formatter):
    """A handler's log record as a line of the demo's story: ``! service: message (field=value,
    ...)``. Deployed, the same record is one JSON line in CloudWatch (Powertools' formatter)."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        fields = ", ".join(
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in self._STANDARD and not key.startswith("_")
        )
        line = f"  ! {record.name}: {record.getMessage()}"
        return f"{line} ({fields})" if fields else line


def _story_handler_logs() -> None:
    """The in-process handlers' warnings as readable lines of the story, not raw JSON."""
    from jobs import run
    from pipeline import pending, persist, replicate

    for module in (persist, replicate, pending, run):
        module.logger.registered_handler.setFormatter(StoryFormatter())


@click.command("demo")
@click.option(
    "--out",
    default="out",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the drift reports and the repair plan are written.",
)
@click.option(
    "--things",
    default=None,
    type=click.IntRange(1, 100_000),
    help="Things in the fleet, at least 20 (10 with --failover)  [default: 2000; 20 with "
    "--failover]",
)
@click.option("--seed", default=7, show_default=True, type=int, help="Seed for the fleet.")
@click.option(
    "--failover",
    is_flag=True,
    help="The failover story instead (docs/failover.md): the pipeline both ways, the primary "
    "stops, work in the DR region, the primary returns, failback; exits 0 when both final "
    "audits do.",
)
def demo(out: Path, things: int | None, seed: int, failover: bool) -> None:
    """The whole story on the embedded sandbox: backfill, live changes, drift, repair.

    No AWS account needed. Exits 0 when the final audit is clean, 1 otherwise.

    \b
    Example:
      iot-crr demo --things 500 --out out
      iot-crr demo --failover        # failover and failback, both ways
    """
    # Bad input is refused before anything changes this process's logging or environment.
    if failover:
        from sandbox.failover import MIN_THINGS as min_things
    else:
        from sandbox.demo import MIN_THINGS as min_things
    if things is not None and things < min_things:
        story = "--failover" if failover else "the demo"
        raise click.BadParameter(f"at least {min_things} for {story}", param_hint="--things")
    from sandbox.demo import OutInUseError, check_out, run_demo

    if not failover:
        try:
            check_out(out)
        except OutInUseError as error:
            raise click.BadParameter(str(error), param_hint="--out") from error
    # The handlers run in this process: keep their INFO logs and metrics off the story.
    _handler_log_level("WARNING")
    _story_handler_logs()
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    if failover:
        from sandbox.failover import run_failover_demo

        result = run_failover_demo(things=things or 20, echo=click.echo)
        sys.exit(0 if result.clean else 1)
    clean = run_demo(out, things=things or 2000, seed=seed, echo=click.echo)
    sys.exit(0 if clean else 1)
