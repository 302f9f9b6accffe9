"""What the commands of ``reconcile.commands`` and ``reconcile.repair_commands`` share: the
audit of ``audit``, ``plan`` and ``reconcile`` (both sides read or loaded, then compared), the
state table checked before it, and a report written to stdout or ``--output``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from reconcile.context import Factory
from reconcile.engine import Audit, Reconciler
from reconcile.options import AuditOptions
from reconcile.snapshot import Snapshot


def audit_registries(factory: Factory, engine: Reconciler, audit: AuditOptions) -> Audit:
    """Snapshot (or load) both sides and diff them under the engine's ignore rules; both live
    regions read at once under one progress display (unless ``--quiet``)."""
    if audit.from_snapshots:
        if engine.failback is not None:
            raise click.UsageError("--failback reads the live state table; drop --from-snapshots")
        source_dir, destination_dir = audit.from_snapshots
        loaded = (engine.scoped(Snapshot.load(side)) for side in (source_dir, destination_dir))
        return engine.compare(*loaded)
    regions = audit.regions.pair()
    with factory.watching(audit.quiet) as progress:
        live = replace(engine, snapshot=factory.snapshotter(progress))
        source, destination = live.snapshots(*regions)
    return engine.compare(source, destination)


def check_state_table(factory: Factory, state_table: str | None, audit: AuditOptions) -> None:
    """The state table a command will read or write exists in the source region (checked
    before the audit; saved snapshots name no live region, so there the read says it)."""
    if state_table and audit.regions.source and not audit.from_snapshots:
        factory.check_table(state_table, audit.regions.pair()[0])


def write_output(text: str, output: Path | None) -> None:
    """``text`` on stdout, or in the file ``output`` (``--output``), ending with a newline."""
    if output is None:
        click.echo(text)
    else:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
