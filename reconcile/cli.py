"""``iot-crr``: the command line over reconciliation (snapshot → diff → plan → emit).

Each command is a thin edge: it builds its collaborators through the ``Factory`` in ``ctx.obj``
(tests pass one pointing at moto), reconciles through ``reconcile.engine.Reconciler``, and prints. Regions are
explicit options; endpoints and credentials are boto3's own (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``).

Exit codes fit CI: 0 in sync, 1 drift found, 2 error (bad arguments, AWS errors, refused or stale
plans, events that could not be emitted) with a one-line message on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.clock import now_ms
from pipeline.errors import CrrError, EventValidationError
from pipeline.eventconfig import enable_events_command
from pipeline.policyrewrite import ACCOUNT_MAP_VARIABLE, parse_account_map
from pipeline.statetable import StateTable
from reconcile.console import EXIT_DRIFT, EXIT_ERROR, EXIT_IN_SYNC
from reconcile.diff import diff_snapshots
from reconcile.doctor import doctor_command
from reconcile.drift import DriftReport
from reconcile.emit import VIAS, EmitResult, Emitter, Via, choose_emitter
from reconcile.engine import Audit, Failback, Reconciler, Snapshotter, registry_snapshotter
from reconcile.explain import explain_with_table, read_table, table_vs_target
from reconcile.failback import describe_held, overwrite_rules
from reconcile.ignore import DEFAULT_FILE as DEFAULT_IGNORE_FILE
from reconcile.ignore import IgnoreRules
from reconcile.plan import (
    MAX_TTL_SECONDS,
    Guards,
    Plan,
    check_trusted,
    describe_plan,
    plan_key,
    summarize_plan,
)
from reconcile.progress import TerminalProgress, progress_wanted
from reconcile.regions import UnknownRegionError, check_region
from reconcile.report import FORMATS, render
from reconcile.snapshot import ListingProgress, Snapshot

PLAN_FORMATS = ("table", "json")


class CliError(click.ClickException):
    """A known failure: one line on stderr, exit code 2 (1 is reserved for "drift found")."""

    exit_code = EXIT_ERROR


@dataclass
class Factory:
    """Builds every collaborator a command needs; tests replace ``client`` or ``clock``."""

    client: Callable[[str, str], Any] = aws.client
    clock: Callable[[], int] = now_ms
    show_progress: bool | None = None  # None: when stdout is a terminal (progress_wanted)

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
        snapshot = registry_snapshotter(self.aws_client, clock=self.clock, progress=progress)

        def in_region(region: str) -> Snapshot:
            with _in_region(region):
                return snapshot(region)

        return in_region

    def state_table(self, region: str, table_name: str) -> StateTable:
        return StateTable(self.aws_client("dynamodb", region), table_name)

    def emit_progress(self) -> Callable[[int, int], None] | None:
        return _count_progress("emitting") if self.progress_on else None


@contextmanager
def _in_region(region: str) -> Iterator[None]:
    """Errors raised inside name the region they happened in (calls already name themselves)."""
    try:
        yield
    except (CrrError, ClientError, BotoCoreError) as error:
        raise CliError(f"{region}: {' '.join(str(error).split())}") from error


def _count_progress(label: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        click.echo(f"\r{label} {done}/{total}", err=True, nl=done >= total)

    return show


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
@click.pass_context
def main(ctx: click.Context) -> None:
    """Cross-region replication and drift repair for the AWS IoT Core registry.

    Region, endpoint and credentials come from options and boto3's own environment
    (AWS_ENDPOINT_URL, AWS_PROFILE).

    Exit codes: 0 in sync (or repaired), 1 drift found, 2 error, 130 interrupted.

    \b
    Example:
      iot-crr audit --source-region us-east-1 --target-region eu-west-1
      iot-crr reconcile --source-region us-east-1 --target-region eu-west-1 --apply
    """
    if ctx.obj is None:
        ctx.obj = Factory()


# --- shared options ---------------------------------------------------------------------------

F = Callable[..., Any]


def _compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


region_options = _compose(
    click.option(
        "--source-region", envvar="SOURCE_REGION", show_envvar=True, help="Region replicated from."
    ),
    click.option(
        "--target-region", envvar="TARGET_REGION", show_envvar=True, help="Region replicated to."
    ),
)

quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress display (it shows only on a terminal)."
)

ignore_options = _compose(
    click.option(
        "--ignore",
        "ignore_patterns",
        multiple=True,
        metavar="PATTERN",
        help="Ignore drift matching PATTERN (repeatable); same syntax as the ignore file.",
    ),
    click.option(
        "--ignore-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help=f"Ignore rules file (default: {DEFAULT_IGNORE_FILE} if present).",
    ),
)


def _account_map(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, str]:
    try:
        return parse_account_map(value or "")
    except EventValidationError as error:
        raise click.BadParameter(error.reason) from error


# The replicator's setting of the same name: policies are diffed as the replicator writes them.
policy_account_option = click.option(
    "--policy-account-map",
    "policy_accounts",
    envvar=ACCOUNT_MAP_VARIABLE,
    show_envvar=True,
    callback=_account_map,
    metavar="SRC=DST,...",
    help="Source account -> destination account in policy ARNs (12-digit accounts), as the "
    "replicator's setting of the same variable.",
)

audit_options = _compose(
    region_options,
    policy_account_option,
    quiet_option,
    click.option(
        "--from-snapshots",
        nargs=2,
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        metavar="SRC_DIR DST_DIR",
        help="Diff two saved snapshots (from `iot-crr snapshot`) instead of the live registries.",
    ),
    ignore_options,
    click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Report format.",
    ),
    click.option(
        "--output",
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        help="Write the report to FILE instead of stdout.",
    ),
)

# The guards `apply` enforces itself (never the ones recorded in a plan file).
apply_guard_options = _compose(
    click.option("--allow-deletes", is_flag=True, help="Delete entities only the target has."),
    click.option(
        "--max-changes",
        type=click.IntRange(min=0),
        default=1000,
        show_default=True,
        help="Refuse plans with more changes than N (0: no cap).",
    ),
    click.option(
        "--min-source-ratio",
        type=click.FloatRange(min=0.0),
        default=0.5,
        show_default=True,
        help="Refuse when the source has fewer things than this fraction of the target's.",
    ),
)

guard_options = _compose(
    apply_guard_options,
    click.option(
        "--ttl",
        "ttl_seconds",
        type=click.IntRange(min=1, max=MAX_TTL_SECONDS),
        default=3600,
        show_default=True,
        help="Seconds a saved plan stays valid.",
    ),
)

emit_options = _compose(
    click.option(
        "--via",
        type=click.Choice(VIAS),
        default="stepfunctions",
        show_default=True,
        help="Start the persist state machine per change, or persist straight into the state "
        "table (large backfills).",
    ),
    click.option(
        "--state-machine-arn",
        envvar="PERSIST_STATE_MACHINE_ARN",
        show_envvar=True,
        help="The persist state machine in the source region (for --via stepfunctions).",
    ),
    click.option(
        "--state-table",
        envvar="STATE_TABLE",
        show_envvar=True,
        help="The state table name in the source region (for --via table, --failback).",
    ),
)


# After a failover: reconcile from the DR region back to the primary (reconcile.failback).
failback_options = _compose(
    click.option(
        "--failback",
        is_flag=True,
        help="Reconciling from the DR region back to the primary after a failover: also read "
        "the state table (--state-table, in the source region) and hold, not overwrite, the "
        "target's changes that never reached it (exit 1 while any is held).",
    ),
    click.option(
        "--overwrite",
        "overwrite_patterns",
        multiple=True,
        metavar="PATTERN",
        help="With --failback: repair these held entities anyway, the source's version winning "
        "(repeatable; entity:name-glob, as --ignore).",
    ),
)

state_table_option = click.option(
    "--state-table",
    envvar="STATE_TABLE",
    show_envvar=True,
    help="The state table's name, read in the source region (for --failback).",
)


# --- commands ---------------------------------------------------------------------------------


@main.command()
@click.option("--region", required=True, help="Region to snapshot.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the Parquet snapshot into.",
)
@quiet_option
@click.pass_obj
def snapshot(factory: Factory, region: str, out: Path, quiet: bool) -> None:
    """Snapshot one region's registry to Parquet files (read-only).

    \b
    Example:
      iot-crr snapshot --region us-east-1 --out snap/us-east-1
      iot-crr snapshot --region eu-west-1 --out snap/eu-west-1
      iot-crr audit --from-snapshots snap/us-east-1 snap/eu-west-1
    """
    region = _region(region, "--region")
    with factory.watching(quiet) as progress:
        snap = factory.snapshotter(progress)(region)
    snap.save(out)
    click.echo(
        f"{region}: {len(snap.things)} things, {len(snap.thing_types)} types, "
        f"{len(snap.thing_groups)} groups, {len(snap.billing_groups)} billing groups, "
        f"{len(snap.memberships)} memberships; fingerprint {snap.fingerprint()} -> {out}"
    )


@main.command()
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
@click.option(
    "--state-table",
    envvar="STATE_TABLE",
    show_envvar=True,
    help="The state table's name, read in the source region (for --explain, --table-vs-target).",
)
@click.pass_obj
def audit(
    factory: Factory, explain: bool, table_vs_target: bool, state_table: str | None, **opts: Any
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
    if table_vs_target:
        assert state_table is not None
        report = _table_vs_target(factory, state_table, opts)
    else:
        audited = _audit(factory, _reconciler(factory, opts), opts)
        report = audited.report
        if explain:
            assert state_table is not None
            report = explain_with_table(
                report,
                audited.source,
                audited.destination,
                factory.state_table(report.source_region, state_table),
                ignore=_ignore_rules(opts),
                clock=factory.clock,
            )
    _write(render(report, opts["fmt"]), opts["output"])
    raise click.exceptions.Exit(EXIT_IN_SYNC if report.in_sync else EXIT_DRIFT)


@main.command()
@audit_options
@guard_options
@failback_options
@state_table_option
@click.option(
    "--plan-file",
    "plan_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to save the plan (JSON) for `iot-crr apply`.  [required]",
)
@click.option("--out", "old_plan_path", hidden=True, type=click.Path(path_type=Path))
@click.pass_obj
def plan(factory: Factory, plan_path: Path | None, old_plan_path: Path | None, **opts: Any) -> None:
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
    if opts["fmt"] not in PLAN_FORMATS:
        raise click.UsageError(
            f"a plan prints as {' or '.join(PLAN_FORMATS)}, not {opts['fmt']} "
            "(for a Markdown or HTML drift report: iot-crr audit --format)"
        )
    engine = _reconciler(factory, opts)
    audited = _audit(factory, engine, opts)
    repair = engine.plan(audited)
    repair.save(plan_path, key=plan_key())
    _write(_show_plan(repair, opts["fmt"]), opts["output"])
    _show_held(audited.report)
    done = repair.is_empty and not audited.report.held
    raise click.exceptions.Exit(EXIT_IN_SYNC if done else EXIT_DRIFT)


@main.command()
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@emit_options
@apply_guard_options
@ignore_options
@failback_options
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Snapshot both regions again, rebuild the plan and refuse it unless both registries "
    "are unchanged and call for exactly its actions (same ignore rules needed).",
)
@click.option("--yes", is_flag=True, help="Emit without asking (for scripts).")
@click.pass_obj
def apply(factory: Factory, plan_file: Path, verify: bool, yes: bool, **opts: Any) -> None:
    """Emit a saved plan's corrective events into the persist path.

    The plan file is not trusted: it must hash to its id (and carry a valid signature when
    IOT_CRR_PLAN_KEY is set; `plan` signs with it), and this command's own guards apply, never those in the file.
    Refuses an expired plan or (with --verify) one the registries no longer call for. Shows what
    will be emitted and asks first (--yes to skip). Exit 0 when every event was emitted, 2
    otherwise.
    Interrupted, it says how many events went out; re-running is safe (an event already
    emitted is not applied twice).

    \b
    Example:
      iot-crr apply plan.json --state-machine-arn arn:aws:states:...:stateMachine:crr-persist
    """
    _check_emit_options(opts)
    repair = Plan.load(plan_file, key=plan_key())
    # Free checks first (hash, guards, times, expiry); snapshots are not free.
    check_trusted(repair, _guards(opts), now=factory.clock())
    with factory.watching(not verify) as progress:
        engine = _reconciler(factory, opts, progress)  # apply's own guards and ignore rules
        if verify:
            engine.verify(repair)
    click.echo(summarize_plan(repair, now=engine.clock()), err=True)
    if not repair.actions:
        return
    _confirm(yes, f"emit {len(repair.actions)} corrective event(s) via {opts['via']}?")
    emitter = _emitter(factory, opts["via"], opts, repair.source_region)
    with _in_region(repair.source_region):
        result = replace(engine, emitter=emitter).apply(repair, progress=factory.emit_progress())
    _report_emit(result, emitter)


@main.command()
@audit_options
@guard_options
@emit_options
@failback_options
@click.option("--apply", "do_apply", is_flag=True, help="Emit the corrective events.")
@click.pass_obj
def reconcile(factory: Factory, do_apply: bool, **opts: Any) -> None:
    """Audit, plan and (with --apply) emit corrective events; a dry run otherwise.

    The report goes to stdout (or --output), the plan and the emit summary to stderr.
    Exit 0 when in sync, or with --apply when every corrective event was emitted (the repair is
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
          --state-table iot-crr-state --apply --state-machine-arn arn:...:crr-persist
    """
    if do_apply:
        _check_emit_options(opts)
    engine = _reconciler(factory, opts)
    audited = _audit(factory, engine, opts)
    report = audited.report
    _write(render(report, opts["fmt"]), opts["output"])
    if report.in_sync:
        raise click.exceptions.Exit(EXIT_IN_SYNC)
    repair = engine.plan(audited)
    click.echo(describe_plan(repair), err=True)
    _show_held(report)
    emitter = _emitter(factory, opts["via"] if do_apply else "dry-run", opts, repair.source_region)
    with _in_region(repair.source_region):
        result = replace(engine, emitter=emitter).apply(repair, progress=factory.emit_progress())
    _report_emit(result, emitter)
    if not do_apply:
        raise click.exceptions.Exit(EXIT_DRIFT)
    click.echo(
        "corrective events are in the pipeline; run `iot-crr audit` in a minute to confirm",
        err=True,
    )
    # Drift just repaired is not drift found; what the guards held back still is.
    raise click.exceptions.Exit(EXIT_DRIFT if repair.skipped or report.held else EXIT_IN_SYNC)


# --- helpers the commands share ---------------------------------------------------------------


def _reconciler(
    factory: Factory, opts: dict[str, Any], progress: ListingProgress | None = None
) -> Reconciler:
    """The engine for an auditing command: the CLI's snapshots (into ``progress``), the ignore
    rules read once, the guards when the command has them; a dry run until told where."""
    guards = _guards(opts) if "allow_deletes" in opts else Guards()
    return Reconciler(
        factory.snapshotter(progress),
        ignore=_ignore_rules(opts),
        guards=guards,
        clock=factory.clock,
        failback=_failback(factory, opts),
        policy_accounts=opts.get("policy_accounts") or {},
    )


def _failback(factory: Factory, opts: dict[str, Any]) -> Failback | None:
    """The failback guard's table reader and overwrite rules, when ``--failback`` is given."""
    overwrite = opts.get("overwrite_patterns") or ()
    if not opts.get("failback"):
        if overwrite:
            raise click.UsageError("--overwrite names held entities: it needs --failback")
        return None
    name = opts.get("state_table")
    if not name:
        raise click.UsageError("--failback needs --state-table (or STATE_TABLE)")
    if opts.get("from_snapshots"):
        raise click.UsageError("--failback reads the live state table; drop --from-snapshots")

    def table(region: str) -> Snapshot:
        with _in_region(region):
            return read_table(factory.state_table(region, name), region, factory.clock())

    return Failback(table, overwrite_rules(overwrite))


def _show_held(report: DriftReport) -> None:
    """The failback guard's held drifts, after the plan (stderr, like the plan)."""
    if report.held:
        click.echo(describe_held(report), err=True)


def _audit(factory: Factory, engine: Reconciler, opts: dict[str, Any]) -> Audit:
    """Snapshot (or load) both sides and diff them under the engine's ignore rules; both live
    regions read at once under one progress display (unless ``--quiet``)."""
    if opts.get("from_snapshots"):
        source_dir, destination_dir = opts["from_snapshots"]
        return engine.compare(Snapshot.load(source_dir), Snapshot.load(destination_dir))
    with factory.watching(opts["quiet"]) as progress:
        source, destination = replace(engine, snapshot=factory.snapshotter(progress)).snapshots(
            *_regions(opts)
        )
    return engine.compare(source, destination)


def _table_vs_target(factory: Factory, state_table: str, opts: dict[str, Any]) -> DriftReport:
    """The state table (in the source region) against the destination registry only."""
    source_region, destination_region = _regions(opts)
    if opts.get("from_snapshots"):
        raise click.UsageError("--table-vs-target reads the live target; drop --from-snapshots")
    table = read_table(
        factory.state_table(source_region, state_table), source_region, factory.clock()
    )
    with factory.watching(opts["quiet"]) as progress:
        destination = factory.snapshotter(progress)(destination_region)
    rules = _ignore_rules(opts)
    report = diff_snapshots(
        table,
        destination,
        ignore=rules,
        clock=factory.clock,
        policy_accounts=opts.get("policy_accounts") or {},
    )
    return table_vs_target(report)


def _regions(opts: dict[str, Any]) -> tuple[str, str]:
    """The source and destination regions (the destination's flag is ``--target-region``)."""
    source, destination = opts.get("source_region"), opts.get("target_region")
    if not source or not destination:
        raise click.UsageError("--source-region and --target-region are required")
    if source == destination:
        raise click.UsageError("--source-region and --target-region must differ")
    return _region(source, "--source-region"), _region(destination, "--target-region")


def _region(name: str, option: str) -> str:
    try:
        return check_region(name, option)
    except UnknownRegionError as error:
        raise click.UsageError(str(error)) from error


def _ignore_rules(opts: dict[str, Any]) -> IgnoreRules:
    patterns = opts.get("ignore_patterns") or ()
    if opts.get("ignore_file"):
        rules = IgnoreRules.from_file(opts["ignore_file"], patterns)
    else:
        rules = IgnoreRules.from_file(Path(DEFAULT_IGNORE_FILE), patterns, missing_ok=True)
    if rules.describe():
        click.echo(rules.describe(), err=True)  # ignored drift is invisible: say what hides it
    return rules


def _confirm(yes: bool, question: str) -> None:
    """Ask ``question`` on the terminal unless ``yes``; refuse (never hang) without a terminal."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError("refusing to emit without confirmation: stdin is not a terminal; pass --yes")
    if not click.confirm(question, default=False, err=True):
        raise CliError("not confirmed; nothing emitted")


def _guards(opts: dict[str, Any]) -> Guards:
    return Guards(
        allow_deletes=opts["allow_deletes"],
        max_changes=opts["max_changes"] or None,
        min_source_ratio=opts["min_source_ratio"],
        ttl_seconds=opts.get("ttl_seconds") or Guards().ttl_seconds,  # apply has no --ttl
    )


def _show_plan(repair: Plan, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(repair.to_json(), indent=2, sort_keys=True)
    return describe_plan(repair)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text)
    else:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def _check_emit_options(opts: dict[str, Any]) -> None:
    if opts["via"] == "stepfunctions" and not opts.get("state_machine_arn"):
        raise click.UsageError(
            "--via stepfunctions needs --state-machine-arn (or PERSIST_STATE_MACHINE_ARN)"
        )
    if opts["via"] == "table" and not opts.get("state_table"):
        raise click.UsageError("--via table needs --state-table (or STATE_TABLE)")


def _emitter(factory: Factory, via: Via, opts: dict[str, Any], source_region: str) -> Emitter:
    """Corrective events go into the persist path of the *source* region (never the destination)."""
    return choose_emitter(
        via,
        factory.aws_client,
        source_region,
        state_machine_arn=opts.get("state_machine_arn"),
        state_table=opts.get("state_table"),
    )


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


# --- commands that live with their feature ----------------------------------------------------

main.add_command(enable_events_command, name="enable-events")
main.add_command(doctor_command)


def _entry_points() -> dict[str, EntryPoint]:
    return {entry.name: entry for entry in entry_points(group=COMMANDS_ENTRY_POINTS)}


def _unavailable(name: str, reason: str) -> click.Command:
    """A command that is listed but cannot run here: it says why, with exit code 2."""

    def fail() -> None:
        raise CliError(f"iot-crr {name}: {reason}")

    return click.Command(name, callback=fail, help=f"(unavailable: {reason})")
