"""The reconciliation commands of ``iot-crr``: snapshot, audit, plan, apply, reconcile, readiness.

Each command is a thin edge: it takes its options as typed values (``reconcile.options``),
builds its collaborators through the ``Factory`` (``reconcile.context``), reconciles through
``reconcile.engine.Reconciler``, prints, and ends with an exit code: 0 in sync, 1 drift found,
2 error (bad arguments, AWS errors, refused or stale plans, events that could not be emitted)
with a one-line message on stderr. ``reconcile.cli`` puts them in the ``iot-crr`` group.

The read-only ones are here; those that repair (``plan``, ``apply``, ``reconcile``) are
``reconcile.repair_commands``, what both share ``reconcile.auditing``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from pipeline.kinds.certificate_refusal import refusals
from pipeline.statetable import StateTable
from reconcile.auditing import audit_registries, check_state_table, write_output
from reconcile.context import Factory, pass_factory
from reconcile.exits import EXIT_DRIFT, EXIT_IN_SYNC
from reconcile.interrupt import at_once
from reconcile.options import (
    AuditOptions,
    audit_options,
    checked_region,
    quiet_option,
    state_table_option,
)
from reconcile.output_paths import holds_snapshot, snapshot_directory
from reconcile.readiness.assess import assess
from reconcile.readiness.devices import ProbeError, Probes
from reconcile.readiness.report import render as render_readiness
from reconcile.readiness_options import ReadinessOptions, readiness_options
from reconcile.repair_commands import apply, plan, reconcile
from reconcile.report import render


@click.command()
@click.option("--region", required=True, help="Region to snapshot.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    callback=snapshot_directory,
    help="Directory to write the Parquet snapshot into: new, empty, or holding a snapshot "
    "(replaced).",
)
@quiet_option
@pass_factory
def snapshot(factory: Factory, region: str, out: Path, quiet: bool) -> None:
    """Snapshot one region's registry to Parquet files (read-only).

    \b
    Example:
      iot-crr snapshot --region us-east-1 --out snap/us-east-1
      iot-crr snapshot --region eu-west-1 --out snap/eu-west-1
      iot-crr audit --from-snapshots snap/us-east-1 snap/eu-west-1
    """
    region = checked_region(region, "--region")
    with factory.watching(quiet) as progress:
        # Read in a worker, so the main thread (where Ctrl-C lands) is free to end at once.
        (snap,) = at_once(lambda: factory.snapshotter(progress)(region), name="snapshot")
    replaced = " (replaced the snapshot there)" if holds_snapshot(out) else ""
    snap.save(out)
    click.echo(
        f"{region}: {len(snap.things)} things, {len(snap.thing_types)} types, "
        f"{len(snap.thing_groups)} groups, {len(snap.billing_groups)} billing groups, "
        f"{len(snap.memberships)} memberships; fingerprint {snap.fingerprint()} -> {out}"
        f"{replaced}"
    )


@click.command()
@audit_options
@click.option(
    "--explain",
    is_flag=True,
    help="Also read the state table and say where each drift was lost (before the table, "
    "after it, or in the table only) and what to check.",
)
@click.option(
    "--table-vs-target",
    is_flag=True,
    help="Compare only the state table with the target registry (replication health; the "
    "source registry is not read).",
)
@state_table_option
@pass_factory
def audit(
    factory: Factory,
    *,
    audit: AuditOptions,
    explain: bool,
    table_vs_target: bool,
    state_table: str | None,
) -> None:
    """Compare the two registries and report every difference (read-only).

    Exit 0 when in sync, 1 when drift is found.

    \b
    Example:
      iot-crr audit --source-region us-east-1 --target-region eu-west-1
      iot-crr audit --format html --output drift.html --ignore 'thing:*:attributes.lastSeen'
    """
    if (explain or table_vs_target) and not state_table:
        raise click.UsageError(
            "--explain and --table-vs-target need --state-table (or STATE_TABLE)"
        )
    if explain and table_vs_target:
        raise click.UsageError("--explain and --table-vs-target are alternatives; pick one")
    if explain or table_vs_target:
        check_state_table(factory, state_table, audit)
    engine = factory.reconciler(
        ignore=audit.ignore, state_table=state_table, policy_accounts=audit.policy_accounts
    )
    if table_vs_target:
        source_region, destination_region = audit.regions.pair()
        if audit.from_snapshots:
            raise click.UsageError("--table-vs-target reads the live target; drop --from-snapshots")
        with factory.watching(audit.quiet) as progress:
            live = replace(engine, snapshot=factory.snapshotter(progress))
            report = live.table_vs_target(source_region, destination_region)
    else:
        audited = audit_registries(factory, engine, audit)
        report = (engine.explain(audited) if explain else audited).report
    write_output(render(report, audit.fmt), audit.output)
    raise click.exceptions.Exit(EXIT_IN_SYNC if report.in_sync else EXIT_DRIFT)


@click.command()
@readiness_options
@state_table_option
@pass_factory
def readiness(factory: Factory, *, readiness: ReadinessOptions, state_table: str | None) -> None:
    """Would each device connect and work in the target region right now? (read-only)

    A device (a thing with a certificate) is ready when every action allowed in the source is
    allowed in the target, as TestAuthorization answers in each: iot:Connect with its client id,
    and each --publish/--subscribe/--receive. Each device that is not gets reasons saying what
    to fix; account checks (endpoint, domain configurations, custom authorizers, role aliases,
    CA certificates, provisioning templates, registry events and fleet indexing, topic rules)
    pass or fail with the fix. Paced to TestAuthorization's quota (10 per second and region).
    With --state-table, a device whose certificate the target refused to register is named
    with AWS's reason (the replicator's record).

    Exit 0 when every device is ready and no check failed, 1 otherwise, 2 on errors.

    \b
    Example:
      iot-crr readiness --source-region us-east-1 --target-region eu-west-1 \\
          --publish 'telemetry/{thing}' --subscribe 'commands/{thing}/#' --sample 100
      iot-crr readiness --thing sensor-1 --format html --output readiness.html
    """
    try:
        probes = Probes(
            readiness.client_id_template, readiness.publish, readiness.subscribe, readiness.receive
        )
    except ProbeError as error:
        raise click.UsageError(str(error)) from error
    report = assess(
        factory.aws_client,
        readiness.regions.pair(),
        probes,
        things=readiness.things,
        sample=readiness.sample,
        accounts=readiness.policy_accounts,
        clock=factory.clock,
        refused=_refusals(factory, state_table, readiness.regions.pair()),
    )
    write_output(render_readiness(report, readiness.fmt), readiness.output)
    raise click.exceptions.Exit(EXIT_IN_SYNC if report.ready else EXIT_DRIFT)


def _refusals(
    factory: Factory, state_table: str | None, regions: tuple[str, str]
) -> dict[str, str]:
    """The certificates the target refused to register, from the state table (read in the
    source region) when one is named; none otherwise."""
    if not state_table:
        return {}
    table = StateTable(factory.aws_client("dynamodb", regions[0]), state_table)
    return refusals(table, regions[1])


COMMANDS = (snapshot, audit, plan, apply, reconcile, readiness)
