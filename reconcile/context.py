"""What every ``iot-crr`` command is given, and how every one ends.

- ``Factory`` (the click context's object, ``pass_factory``) builds each collaborator a command
  needs: clients, snapshotters, the state table's reader, the engine, emitters; tests pass one
  pointing at moto, with their own clock.
- A known failure is a ``CliError`` (one line on stderr, exit code 2); ``in_region`` turns an
  AWS or project error into one, naming the region.
- Exit codes (``reconcile.exits``): 0 in sync (or done), 1 drift found (or, for ``doctor``,
  something to fix), 2 error, 130 interrupted (``reconcile.console``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.clock import Clock, now_ms
from pipeline.errors import CrrError
from pipeline.kinds.shadow_selection import ALL, ShadowSelection
from pipeline.model import EntityKind
from reconcile.emit import Emitter, Via, choose_emitter
from reconcile.engine import (
    Failback,
    Reconciler,
    Snapshotter,
    registry_reader,
    registry_snapshotter,
    table_snapshotter,
)
from reconcile.exits import EXIT_ERROR
from reconcile.guards import Guards
from reconcile.ignore import IgnoreRules
from reconcile.progress import TerminalProgress, progress_wanted
from reconcile.snapshot import ListingProgress, Snapshot
from reconcile.sweep import WHOLE, Sweep


class CliError(click.ClickException):
    """A known failure: one line on stderr, exit code 2 (1 is reserved for "drift found")."""

    exit_code = EXIT_ERROR


@contextmanager
def in_region(region: str) -> Iterator[None]:
    """Errors raised inside name the region they happened in (calls already name themselves)."""
    try:
        yield
    except (CrrError, ClientError, BotoCoreError) as error:
        raise CliError(f"{region}: {' '.join(str(error).split())}") from error


@dataclass
class Factory:
    """Builds every collaborator a command needs; tests replace ``client`` or ``clock``."""

    client: Callable[[str, str], Any] = aws.client
    clock: Clock = now_ms
    show_progress: bool | None = None  # None: when stdout is a terminal (progress_wanted)
    # The opt-in kinds snapshots list too (``iot-crr --shadows``; ``Listing.opt_in``).
    opt_in: frozenset[EntityKind] = frozenset()
    # Per kind, the name globs its listed entities must match (``iot-crr --retained GLOB``).
    include: Mapping[EntityKind, tuple[str, ...]] = field(default_factory=dict)
    # Which shadows and sections are replicated (``iot-crr --shadow-include`` ...).
    shadows: ShadowSelection = ALL
    # Per kind, the partition its listing runs in (``iot-crr --list-in-parts thing=type``).
    partitions: Mapping[EntityKind, str] = field(default_factory=dict)
    # The slice of the per-device links snapshots list (``iot-crr --sweep 7``).
    sweep: Sweep = WHOLE

    def aws_client(self, service: str, region: str) -> Any:
        """The client for ``service`` in ``region`` (``pipeline.aws.client`` reuses clients)."""
        return self.client(service, region)

    @property
    def progress_on(self) -> bool:
        return progress_wanted(False) if self.show_progress is None else self.show_progress

    @contextmanager
    def watching(self, quiet: bool = False) -> Iterator[ListingProgress | None]:
        """One progress display for every snapshot taken inside the ``with`` (both regions'
        listings at once), on a terminal unless ``quiet``; ``None`` when none is wanted."""
        if quiet or not self.progress_on:
            yield None
            return
        with TerminalProgress() as progress:
            yield progress

    def snapshotter(self, progress: ListingProgress | None = None) -> Snapshotter:
        """Snapshots a region on the Factory's clock; errors name the region."""
        return _naming_region(
            registry_snapshotter(
                self.aws_client,
                clock=self.clock,
                progress=progress,
                opt_in=self.opt_in,
                include=self.include,
                shadows=self.shadows,
                partitions=self.partitions,
                sweep=self.sweep,
            )
        )

    def table_reader(self, table_name: str) -> Snapshotter:
        """Reads the state table ``table_name`` as held in a region; errors name the region."""
        return _naming_region(
            table_snapshotter(
                self.aws_client,
                table_name,
                clock=self.clock,
                opt_in=self.opt_in,
                include=self.include,
            )
        )

    def check_table(self, table_name: str, region: str) -> None:
        """Refuse an unknown state table before any audit reads a registry (one DescribeTable),
        naming the table and the region."""
        try:
            self.aws_client("dynamodb", region).describe_table(TableName=table_name)
        except ClientError as error:
            # A table that does not exist: ResourceNotFoundException (Amazon DynamoDB API
            # Reference, DescribeTable, "Errors").
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise CliError(
                    f"{region}: state table {table_name!r} does not exist "
                    "(--state-table, or STATE_TABLE)"
                ) from error
            raise CliError(f"{region}: state table {table_name!r}: {error}") from error
        except BotoCoreError as error:
            raise CliError(f"{region}: state table {table_name!r}: {error}") from error

    def reconciler(
        self,
        *,
        ignore: IgnoreRules,
        guards: Guards | None = None,
        state_table: str | None = None,
        failback: Failback | None = None,
        policy_accounts: Mapping[str, str] | None = None,
        progress: ListingProgress | None = None,
    ) -> Reconciler:
        """The engine for a command: the CLI's snapshots (into ``progress``), the state table's
        reader when ``--state-table`` is given; a dry run until told where to emit."""
        if failback is not None and not state_table:
            raise click.UsageError("--failback needs --state-table (or STATE_TABLE)")
        return Reconciler(
            self.snapshotter(progress),
            ignore=ignore,
            guards=guards or Guards(),
            clock=self.clock,
            table=self.table_reader(state_table) if state_table else None,
            reader=registry_reader(self.aws_client),
            failback=failback,
            policy_accounts=policy_accounts or {},
            shadows=self.shadows,
        )

    def emitter(
        self, via: Via, region: str, *, state_machine_arn: str | None, state_table: str | None
    ) -> Emitter:
        """Corrective events go into the persist path of the *source* region (never the
        destination's)."""
        return choose_emitter(
            via,
            self.aws_client,
            region,
            state_machine_arn=state_machine_arn,
            state_table=state_table,
        )

    def emit_progress(self) -> Callable[[int, int], None] | None:
        return _count_progress("emitting") if self.progress_on else None


pass_factory = click.make_pass_decorator(Factory, ensure=True)
"""Passes the command the context's ``Factory`` (a default one when none was given)."""


def _naming_region(snapshotter: Snapshotter) -> Snapshotter:
    def in_named_region(region: str) -> Snapshot:
        with in_region(region):
            return snapshotter(region)

    return in_named_region


def _count_progress(label: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        click.echo(f"\r{label} {done}/{total}", err=True, nl=done >= total)

    return show
