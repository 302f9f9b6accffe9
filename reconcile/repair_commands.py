"""The commands that repair, ``plan``, ``apply`` and ``reconcile`` (the contract of all the
commands: ``reconcile.commands``): a plan built from an audit, saved, shown, and its corrective
events emitted into the persist path."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import click

from reconcile.auditing import audit_registries, check_state_table, write_output
from reconcile.context import CliError, Factory, in_region, pass_factory
from reconcile.drift import DriftReport
from reconcile.emit import EmitResult, Emitter
from reconcile.engine import Failback, Reconciler
from reconcile.exits import EXIT_DRIFT, EXIT_ERROR, EXIT_IN_SYNC
from reconcile.failback import describe_held
from reconcile.guards import Guards
from reconcile.ignore import IgnoreRules
from reconcile.options import (
    AuditOptions,
    audit_options,
    ignore_options,
    policy_account_option,
    state_table_option,
)
from reconcile.output_paths import writable_file
from reconcile.plan import (
    Plan,
    check_snapshots_fresh,
    check_trusted,
    check_unverified,
    describe_plan,
    summarize_plan,
)
from reconcile.plansign import plan_key
from reconcile.repair_options import (
    EmitOptions,
    apply_guard_options,
    emit_options,
    failback_options,
    guard_options,
)
from reconcile.report import render

PLAN_FORMATS = ("table", "json")
PLAN_LINES = 20  # actions a plan shows on a terminal; the rest: where its last line says


@click.command()
@audit_options
@guard_options
@failback_options
@state_table_option
@click.option(
    "--plan-file",
    "plan_path",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=writable_file,
    help="Where to save the plan (JSON) for `iot-crr apply`.  [required]",
)
@click.option(
    "--out", "old_plan_path", hidden=True, type=click.Path(path_type=Path), callback=writable_file
)
@pass_factory
def plan(
    factory: Factory,
    *,
    audit: AuditOptions,
    guards: Guards,
    failback: Failback | None,
    state_table: str | None,
    plan_path: Path | None,
    old_plan_path: Path | None,
) -> None:
    """Audit, then save the repair plan without applying it.

    Prints the plan (the dry run) as a table or JSON. Exit 0 when in sync, 1 when the plan
    has work.

    \b
    Example:
      iot-crr plan --source-region us-east-1 --target-region eu-west-1 --plan-file plan.json
      iot-crr apply plan.json --state-machine-arn arn:aws:states:...:stateMachine:crr-persist
    """
    plan_path = plan_path or old_plan_path  # --out: the old spelling, kept for scripts
    if plan_path is None:
        raise click.UsageError("Missing option '--plan-file'.")
    if audit.fmt not in PLAN_FORMATS:
        raise click.UsageError(
            f"a plan prints as {' or '.join(PLAN_FORMATS)}, not {audit.fmt} "
            "(for a Markdown or HTML drift report: iot-crr audit --format)"
        )
    if failback is not None:
        check_state_table(factory, state_table, audit)
    engine = factory.reconciler(
        ignore=audit.ignore,
        guards=guards,
        state_table=state_table,
        failback=failback,
        policy_accounts=audit.policy_accounts,
    )
    audited = audit_registries(factory, engine, audit)
    repair = engine.plan(audited)
    repair.save(plan_path, key=plan_key())
    on_terminal = audit.output is None and sys.stdout.isatty()
    write_output(_show_plan(repair, audit.fmt, f"all in {plan_path}", on_terminal), audit.output)
    _show_held(audited.report)
    done = repair.is_empty and not audited.report.held
    raise click.exceptions.Exit(EXIT_IN_SYNC if done else EXIT_DRIFT)


@click.command()
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@emit_options
@state_table_option
@apply_guard_options
@ignore_options
@policy_account_option
@failback_options
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Snapshot both regions again, rebuild the plan and refuse it unless both registries "
    "are unchanged and call for exactly its actions (same ignore rules and account map "
    "needed). --no-verify takes only a signed plan (IOT_CRR_PLAN_KEY) that revokes, grants "
    "access and removes a thing's type nowhere.",
)
@click.option("--yes", is_flag=True, help="Emit without asking (for scripts).")
@pass_factory
def apply(
    factory: Factory,
    *,
    plan_file: Path,
    emit: EmitOptions,
    state_table: str | None,
    guards: Guards,
    ignore: IgnoreRules,
    policy_accounts: dict[str, str],
    failback: Failback | None,
    verify: bool,
    yes: bool,
) -> None:
    """Emit a saved plan's corrective events into the persist path.

    The plan file is not trusted: it must hash to its id (and carry a valid signature when
    IOT_CRR_PLAN_KEY is set; `plan` signs with it), and this command's own guards apply, never
    those in the file. Refuses an expired plan, one stamped after this machine's clock, and
    (with --verify) one the registries no longer call for; without verification, an unsigned
    plan, and revocations, grants of access and type removals. Shows what will be emitted and
    asks first (--yes to skip). Exit 0 when every event was emitted, 1 when the plan holds drift
    its guards held back (deletes without --allow-deletes: left unrepaired, as for
    `reconcile --apply`), 2 on errors. Interrupted, it says how many events went out; re-running
    is safe (an event already emitted is not applied twice).

    \b
    Example:
      iot-crr apply plan.json --state-machine-arn arn:aws:states:...:stateMachine:crr-persist
    """
    emit.check(state_table)
    key = plan_key()
    repair = Plan.load(plan_file, key=key)
    # Free checks first (hash, guards, times, expiry); snapshots are not free.
    check_trusted(repair, guards, now=factory.clock())
    if not verify:
        check_unverified(repair, signed=key is not None)
    if state_table and (failback is not None or emit.via == "table"):
        factory.check_table(state_table, repair.source_region)
    with factory.watching(not verify) as progress:
        # apply's own guards and ignore rules, never the file's
        engine = factory.reconciler(
            ignore=ignore,
            guards=guards,
            state_table=state_table,
            failback=failback,
            policy_accounts=policy_accounts,
            progress=progress,
        )
        if verify:
            engine.verify(repair)
    click.echo(summarize_plan(repair, now=engine.clock()), err=True)
    if not repair.actions:
        _exit_repaired(repair)
    _confirm(yes, f"emit {len(repair.actions)} corrective event(s) via {emit.via}?")
    emitter = factory.emitter(
        emit.via,
        repair.source_region,
        state_machine_arn=emit.state_machine_arn,
        state_table=state_table,
    )
    _emit(factory, engine, emitter, repair)
    _exit_repaired(repair)


@click.command()
@audit_options
@guard_options
@emit_options
@state_table_option
@failback_options
@click.option("--apply", "do_apply", is_flag=True, help="Emit the corrective events.")
@pass_factory
def reconcile(
    factory: Factory,
    *,
    audit: AuditOptions,
    guards: Guards,
    emit: EmitOptions,
    state_table: str | None,
    failback: Failback | None,
    do_apply: bool,
) -> None:
    """Audit, plan and (with --apply) emit corrective events; a dry run otherwise.

    The report goes to stdout (or --output), the plan and the emit summary to stderr. With
    --state-table (or STATE_TABLE) the audit is three-way: rows of the table for entities in
    neither registry are drift too (table_only), repaired by a tombstone. Exit 0 when in sync, or with --apply when every corrective event was emitted (the repair is
    then in the pipeline: run `iot-crr audit` in a minute to confirm); 1 when drift was found
    and not repaired (a dry run, actions the guards held back, or with --failback changes the
    target made that never reached the state table: listed as held); 2 on errors.

    \b
    Example:
      iot-crr reconcile --source-region us-east-1 --target-region eu-west-1       # dry run
      iot-crr reconcile --source-region us-east-1 --target-region eu-west-1 --apply \\
          --state-machine-arn arn:aws:states:...:stateMachine:crr-persist
      # failback after a failover to eu-west-1 (docs/failover.md):
      iot-crr reconcile --source-region eu-west-1 --target-region us-east-1 --failback \\
          --state-table iot-registry-crr-state --apply --state-machine-arn arn:...:crr-persist
    """
    if do_apply:
        emit.check(state_table)
    if failback is not None or (do_apply and emit.via == "table"):
        check_state_table(factory, state_table, audit)
    engine = factory.reconciler(
        ignore=audit.ignore,
        guards=guards,
        state_table=state_table,
        failback=failback,
        policy_accounts=audit.policy_accounts,
    )
    audited = audit_registries(factory, engine, audit)
    if engine.table is not None and not audited.report.explained and not audit.from_snapshots:
        # The three-way audit: rows of the table in neither registry are drift only it shows
        # (``table_only``), and the plan tombstones them (stamped with the source snapshot's
        # time: a row written after it wins over its tombstone, pipeline.state). Not against
        # saved snapshots: the live table is not of their moment.
        audited = engine.explain(audited)
    if do_apply and audit.from_snapshots:
        # Saved snapshots of any age would emit what the registries no longer call for.
        taken = {
            side.region: int(side.taken_at_ms) for side in (audited.source, audited.destination)
        }
        check_snapshots_fresh(taken, ttl_seconds=guards.ttl_seconds, now=factory.clock())
    report = audited.report
    write_output(render(report, audit.fmt), audit.output)
    if report.in_sync:
        raise click.exceptions.Exit(EXIT_IN_SYNC)
    repair = engine.plan(audited)
    # A person reading a terminal sees the first actions; a log (stderr redirected) all of them.
    limit = PLAN_LINES if sys.stderr.isatty() else None
    rest_in = "all with 2>FILE, or in a plan file: iot-crr plan --plan-file FILE"
    click.echo(describe_plan(repair, limit=limit, rest_in=rest_in), err=True)
    _show_held(report)
    emitter = factory.emitter(
        emit.via if do_apply else "dry-run",
        repair.source_region,
        state_machine_arn=emit.state_machine_arn,
        state_table=state_table,
    )
    _emit(factory, engine, emitter, repair)
    if not do_apply:
        raise click.exceptions.Exit(EXIT_DRIFT)
    click.echo(
        "corrective events are in the pipeline; run `iot-crr audit` in a minute to confirm",
        err=True,
    )
    _exit_repaired(repair, report)


# --- how the repairing commands show a plan and emit it ----------------------------------------


def _show_held(report: DriftReport) -> None:
    """The failback guard's held drifts, after the plan (stderr, like the plan)."""
    if report.held:
        click.echo(describe_held(report), err=True)


def _exit_repaired(repair: Plan, report: DriftReport | None = None) -> NoReturn:
    """How ``apply`` and ``reconcile --apply`` end once every event went out (the one exit
    contract of both): drift just repaired is not drift found (0); drift the guards held back
    (deletes without --allow-deletes, a failback's held changes) is drift left unrepaired (1)."""
    held = bool(repair.skipped) or (report is not None and bool(report.held))
    raise click.exceptions.Exit(EXIT_DRIFT if held else EXIT_IN_SYNC)


def _confirm(yes: bool, question: str) -> None:
    """Ask ``question`` on the terminal unless ``yes``; refuse (never hang) without a terminal."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError("refusing to emit without confirmation: stdin is not a terminal; pass --yes")
    if not click.confirm(question, default=False, err=True):
        raise CliError("not confirmed; nothing emitted")


def _show_plan(repair: Plan, fmt: str, rest_in: str, bounded: bool) -> str:
    if fmt == "json":
        return json.dumps(repair.to_json(), indent=2, sort_keys=True)
    return describe_plan(repair, limit=PLAN_LINES if bounded else None, rest_in=rest_in)


def _emit(factory: Factory, engine: Reconciler, emitter: Emitter, repair: Plan) -> None:
    """Emit ``repair`` (into its source region) and say how it went; exit 2 on failures."""
    with in_region(repair.source_region):
        result = replace(engine, emitter=emitter).apply(repair, progress=factory.emit_progress())
    _report_emit(result, emitter)


def _report_emit(result: EmitResult, emitter: Emitter) -> None:
    if emitter.via == "dry-run":
        click.echo("dry run: nothing emitted (use --apply)", err=True)
        return
    click.echo(f"emitted: {result.summary()}", err=True)
    for failure in result.failures:
        kind = "retryable" if failure.retryable else "permanent"
        click.echo(f"failed {failure.key} ({kind}): {failure.error}: {failure.message}", err=True)
    if not result.ok:
        raise click.exceptions.Exit(EXIT_ERROR)
