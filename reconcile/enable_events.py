"""`iot-crr enable-events`: turn AWS IoT registry events on (or off) in one region.

Registry events are off by default and enabled per account and region; the streaming path sees
nothing until they are on in the source region (and in the destination too, for active-active).
The decision and the calls are ``pipeline.eventconfig``'s; this is the command, at deploy time.
"""

from __future__ import annotations

from collections.abc import Mapping

import click

from pipeline.eventconfig import REGISTRY_EVENT_TYPES, configuration_changes, enable_events
from reconcile.context import Factory, in_region, pass_factory


def render_table(region: str, before: Mapping[str, bool], after: Mapping[str, bool]) -> str:
    """A before/after table of the registry event types, for the console."""

    def state(value: bool | None) -> str:
        return "on" if value else "off"

    width = max(len(t) for t in REGISTRY_EVENT_TYPES)
    lines = [
        f"Registry events in {region}",
        f"{'event type':<{width}}  before  after",
    ]
    for event_type in REGISTRY_EVENT_TYPES:
        old, new = before.get(event_type, False), after.get(event_type, False)
        mark = "  (changed)" if old != new else ""
        lines.append(f"{event_type:<{width}}  {state(old):<6}  {state(new):<5}{mark}".rstrip())
    changed = len(configuration_changes(before, after))
    lines.append(f"{changed} event type(s) changed." if changed else "Already as requested.")
    return "\n".join(lines)


@click.command(name="enable-events")
@click.option(
    "--region",
    envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
    show_default="AWS_REGION, else AWS_DEFAULT_REGION",
    help="Region to configure.",
)
@click.option("--disable", is_flag=True, help="Turn the registry event types off instead.")
@pass_factory
def enable_events_command(factory: Factory, region: str | None, disable: bool) -> None:
    """Turn the six AWS IoT registry event types on (or off) in one region, idempotently.

    \b
    Example:
      iot-crr enable-events --region us-east-1
      iot-crr enable-events --region eu-west-1 --disable
    """
    if not region:  # neither the option nor its environment fallbacks
        raise click.UsageError("Missing option '--region' (or AWS_REGION / AWS_DEFAULT_REGION).")
    with in_region(region):
        before, after = enable_events(factory.aws_client("iot", region), enable=not disable)
    click.echo(render_table(region, before, after))
