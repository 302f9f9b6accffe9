"""``iot-crr sandbox``: run the embedded two-region sandbox from a shell.

``sandbox up`` starts it in the foreground, prints what another shell needs (endpoint, regions,
table, state machine) and pumps the pipeline until Ctrl-C. ``sandbox`` and ``demo`` reach
``iot-crr`` through the ``iot_crr.commands`` entry points in pyproject.toml: the product never
imports the sandbox.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from pathlib import Path

import click

from sandbox import DEFAULT_DESTINATION_REGION, DEFAULT_SOURCE_REGION

# moto (the sandbox extra) is imported inside the commands, so `iot-crr` works without it.


@click.group("sandbox")
def sandbox() -> None:
    """The embedded two-region sandbox (moto plus the emulation of what moto lacks)."""


@sandbox.command("up")
@click.option("--source-region", default=DEFAULT_SOURCE_REGION, show_default=True)
@click.option("--destination-region", default=DEFAULT_DESTINATION_REGION, show_default=True)
@click.option("--port", default=0, type=int, help="Listen port (default: a free port).")
@click.option(
    "--interval", default=1.0, type=float, show_default=True, help="Seconds between pumps."
)
@click.option("--duplicates", default=0.0, type=float, help="Probability of a duplicate delivery.")
@click.option("--reorder-window", default=0, type=int, help="Shuffle events within windows of N.")
@click.option("--drops", default=0.0, type=float, help="Probability of a dropped event.")
@click.option("--seed", default=0, type=int, show_default=True)
def up(
    *,
    source_region: str,
    destination_region: str,
    port: int,
    interval: float,
    duplicates: float,
    reorder_window: int,
    drops: float,
    seed: int,
) -> None:
    """Run the sandbox in the foreground until Ctrl-C."""
    from sandbox.emulation import Delivery
    from sandbox.stack import Sandbox, SandboxError

    delivery = Delivery(duplicates, drops, reorder_window, seed)
    stop = threading.Event()
    # Ctrl-C raises KeyboardInterrupt; SIGTERM (a service manager, `kill`) stops the same way.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with Sandbox(source_region, destination_region, delivery=delivery, port=port) as box:
            click.echo("Sandbox running. In another shell:")
            click.echo(f"  export AWS_ENDPOINT_URL={box.endpoint_url}")
            click.echo("  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing")
            click.echo(f"  source region:      {box.source_region}")
            click.echo(f"  destination region: {box.destination_region}")
            click.echo(f"  state table:        {box.table_name} (both regions)")
            click.echo(f"  persist machine:    {box.state_machine_arn}")
            click.echo("Pumping the pipeline; Ctrl-C to stop.")
            while not stop.is_set():
                report = box.drain(timeout=max(interval * 60, 60.0))
                if report.events_published or report.records_applied:
                    click.echo(
                        f"events {report.events_published} → executions "
                        f"{dict(report.executions)}; replicated {report.records_replicated}; "
                        f"applied {report.records_applied}; failures "
                        f"{report.batch_item_failures}"
                    )
                stop.wait(interval)  # pacing the pump, not waiting for a condition
            click.echo("stopped")
    except KeyboardInterrupt:
        click.echo("stopped")
    except SandboxError as error:
        raise click.ClickException(str(error)) from error


@click.command("demo")
@click.option(
    "--out",
    default="out",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the drift reports and the repair plan are written.",
)
@click.option("--things", default=2000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--seed", default=7, show_default=True, type=int, help="Seed for the fleet.")
def demo(out: Path, things: int, seed: int) -> None:
    """The whole story on the embedded sandbox: backfill, live changes, drift, repair.

    No AWS account needed. Exits 0 when the final audit is clean, 1 otherwise.
    """
    # The handlers run in this process: keep their INFO logs and metrics off the story.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    from sandbox.demo import run_demo

    clean = run_demo(out, things=things, seed=seed, echo=click.echo)
    sys.exit(0 if clean else 1)
