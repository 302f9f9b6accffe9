"""``iot-crr``: the command line over reconciliation (snapshot → diff → plan → emit).

The group and where its commands live: the reconciliation commands (``reconcile.commands``),
the preflight ones (``reconcile.doctor``, ``reconcile.enable_events``), and the commands of the
sandbox, listed from their entry points and loaded on demand. Every command gets the
``Factory`` in ``ctx.obj`` (``reconcile.context``; tests pass one pointing at moto). Regions are
explicit options; endpoints and credentials are boto3's own (``AWS_ENDPOINT_URL``,
``AWS_PROFILE``).

Exit codes fit CI: 0 in sync, 1 drift found, 2 error (bad arguments, AWS errors, refused or stale
plans, events that could not be emitted) with a one-line message on stderr.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.errors import CrrError, EventValidationError
from pipeline.kinds.shadow_selection import (
    EXCLUDE_VARIABLE,
    INCLUDE_VARIABLE,
    SECTIONS_VARIABLE,
    parse_selection,
)
from pipeline.model import EntityKind
from reconcile.commands import COMMANDS
from reconcile.context import CliError, Factory
from reconcile.doctor import doctor_command
from reconcile.enable_events import enable_events_command
from reconcile.partition import PARTITIONS, parse_partitions
from reconcile.redrive import redrive_command
from reconcile.sweep import parse_sweep

COMMANDS_ENTRY_POINTS = "iot_crr.commands"
"""Entry-point group of commands that live outside the product (the sandbox's ``sandbox`` and
``demo``, declared in pyproject.toml): the product never imports them, so its image does not
ship them."""


class _Group(click.Group):
    """Adds the entry-point commands; turns the project's known errors into a one-line message and
    exit code 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_entry_points()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        entry = None if command is not None else _entry_points().get(cmd_name)
        if entry is None:
            return command
        try:
            loaded = entry.load()
        except ModuleNotFoundError as error:  # declared, but not installed (the job's image)
            return _unavailable(cmd_name, f"{entry.value} is not installed ({error})")
        if not isinstance(loaded, click.Command):
            return _unavailable(cmd_name, f"{entry.value} is not a click command")
        return loaded

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (CrrError, ClientError, BotoCoreError, OSError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise CliError(message) from exc


@click.group(cls=_Group, context_settings={"show_default": True})
@click.version_option(package_name="iot-registry-crr", prog_name="iot-crr")
@click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    help="Show the traceback of an unexpected error (still one exit code: 2).",
)
@click.option(
    "--shadows",
    is_flag=True,
    expose_value=False,
    callback=lambda ctx, _param, on: _list_shadows(ctx) if on else None,
    help="Snapshots list device shadows too (per thing: ListNamedShadowsForThing, and "
    "GetThingShadow per shadow; hours for a large fleet: docs/shadows.md).",
)
@click.option(
    "--retained",
    "retained_topics",
    metavar="GLOB",
    multiple=True,
    expose_value=False,
    callback=lambda ctx, _param, globs: _list_retained(ctx, globs) if globs else None,
    help="Snapshots list retained messages too, those whose topic matches GLOB (fnmatch, "
    "case-sensitive; repeatable; '*' for every topic): ListRetainedMessages, and "
    "GetRetainedMessage per topic included (docs/retained.md).",
)
@click.option(
    "--list-in-parts",
    "partitions",
    metavar="KIND=PARTITION",
    multiple=True,
    expose_value=False,
    callback=lambda ctx, _param, values: _list_in_parts(ctx, values) if values else None,
    help="Snapshots list KIND in parts at once (repeatable), e.g. --list-in-parts "
    f"{next(iter(PARTITIONS), 'KIND=PARTITION')}: faster where each call's round trip, not the "
    "quota, sets the pace. Sound only where "
    + "; ".join(f"{choice}: {p.requires}" for choice, (_, p) in PARTITIONS.items())
    + ". Each region is asked first; one that is not so, or cannot tell, is refused.",
)
@click.option(
    "--sweep",
    metavar="N|K/N",
    expose_value=False,
    callback=lambda ctx, _param, value: _sweep(ctx, value) if value else None,
    help="Snapshots list the per-device links (a certificate's things, a thing's shadows) of "
    "one slice of N only: today's (the UTC day number mod N, so N daily runs compare every "
    "link, each making 1/N of their calls), or slice K (0..N-1). The streaming path still "
    "replicates every change; the audit finds a link's drift within N runs.",
)
@click.option(
    "--shadow-include",
    envvar=INCLUDE_VARIABLE,
    default="",
    show_default=False,
    metavar="GLOBS",
    help="Only the shadows whose names match one of these globs (comma-separated; the "
    "classic shadow is ~classic). Set the persist function's SHADOW_INCLUDE the same.",
)
@click.option(
    "--shadow-exclude",
    envvar=EXCLUDE_VARIABLE,
    default="",
    show_default=False,
    metavar="GLOBS",
    help="Leave out the shadows whose names match one of these globs (e.g. '$*').",
)
@click.option(
    "--shadow-sections",
    envvar=SECTIONS_VARIABLE,
    type=click.Choice(["both", "desired", "reported"]),
    default="both",
    help="The shadow sections replicated; the other is each region's own.",
)
@click.pass_context
def main(
    ctx: click.Context, shadow_include: str, shadow_exclude: str, shadow_sections: str
) -> None:
    """Cross-region replication and drift repair for the AWS IoT Core registry.

    Region, endpoint and credentials come from options and boto3's own environment
    (AWS_ENDPOINT_URL, AWS_PROFILE).

    Exit codes: 0 in sync (or repaired), 1 drift found, 2 error, 130 interrupted.

    \b
    Example:
      iot-crr audit --source-region us-east-1 --target-region eu-west-1
      iot-crr reconcile --source-region us-east-1 --target-region eu-west-1 --apply
      iot-crr --shadows --shadow-exclude '$*' audit --source-region us-east-1 \\
          --target-region eu-west-1
    """
    try:
        selection = parse_selection(shadow_include, shadow_exclude, shadow_sections)
    except EventValidationError as error:
        option = {INCLUDE_VARIABLE: "--shadow-include", EXCLUDE_VARIABLE: "--shadow-exclude"}
        raise click.BadParameter(error.reason, param_hint=option.get(error.field)) from error
    ctx.ensure_object(Factory).shadows = selection
    if selection.describe():  # what the audit and the repair leave out, said as ignore rules are
        click.echo(selection.describe(), err=True)


def _list_shadows(ctx: click.Context) -> None:
    factory = ctx.ensure_object(Factory)
    factory.opt_in = factory.opt_in | {EntityKind.SHADOW}


def _list_retained(ctx: click.Context, globs: tuple[str, ...]) -> None:
    factory = ctx.ensure_object(Factory)
    factory.opt_in = factory.opt_in | {EntityKind.RETAINED_MESSAGE}
    factory.include = {**factory.include, EntityKind.RETAINED_MESSAGE: tuple(globs)}


def _list_in_parts(ctx: click.Context, values: tuple[str, ...]) -> None:
    try:
        partitions = parse_partitions(values)
    except ValueError as error:  # one line, as every error (not click's usage block)
        raise CliError(f"--list-in-parts {error}") from error
    ctx.ensure_object(Factory).partitions = partitions


def _sweep(ctx: click.Context, value: str) -> None:
    factory = ctx.ensure_object(Factory)
    try:
        factory.sweep = parse_sweep(value, factory.clock())
    except ValueError as error:  # one line, as every error
        raise CliError(f"--sweep {error}") from error


for _command in (*COMMANDS, doctor_command, enable_events_command, redrive_command):
    main.add_command(_command)


def _entry_points() -> dict[str, EntryPoint]:
    return {entry.name: entry for entry in entry_points(group=COMMANDS_ENTRY_POINTS)}


def _unavailable(name: str, reason: str) -> click.Command:
    """A command that is listed but cannot run here: it says why, with exit code 2."""

    def fail() -> None:
        raise CliError(f"iot-crr {name}: {reason}")

    return click.Command(name, callback=fail, help=f"(unavailable: {reason})")
