"""The ``iot-crr`` options: each declared once, each group reaching a command as one typed value.

A command is given ``audit: AuditOptions`` (what to compare, how to report), ``guards: Guards``,
``emit: EmitOptions``, ``failback: Failback | None``, ``regions: Regions``, ``ignore:
IgnoreRules`` or ``state_table: str | None``, never a bag of raw values: the decorators here build
them (``_grouped``) and refuse what is malformed with a usage error naming the option. Checks that
need the command's other options (a failback needs the state table) are the command's.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from pipeline.errors import EventValidationError
from pipeline.policyrewrite import ACCOUNT_MAP_VARIABLE, parse_account_map
from reconcile.emit import VIAS, Via
from reconcile.engine import Failback
from reconcile.failback import overwrite_rules
from reconcile.ignore import DEFAULT_FILE as DEFAULT_IGNORE_FILE
from reconcile.ignore import IgnoreRules
from reconcile.plan import MAX_TTL_SECONDS, Guards
from reconcile.regions import UnknownRegionError, check_region
from reconcile.report import FORMATS
from reconcile.snapshot import MANIFEST

F = Callable[..., Any]
Decorator = Callable[[F], F]


def _grouped(name: str, build: Callable[..., Any], *options: Decorator) -> Decorator:
    """``options`` whose values reach the command as one argument, ``name=build(**values)``
    (``build``'s parameters are the options' names)."""
    params = tuple(inspect.signature(build).parameters)

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def call(*args: Any, **kwargs: Any) -> Any:
            values = {param: kwargs.pop(param) for param in params}
            return command(*args, **kwargs, **{name: build(**values)})

        decorated: F = call
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate


# --- regions ----------------------------------------------------------------------------------


def checked_region(name: str, option: str) -> str:
    """``name`` if botocore knows the region, else a usage error naming ``option``."""
    try:
        return check_region(name, option)
    except UnknownRegionError as error:
        raise click.UsageError(str(error)) from error


@dataclass(frozen=True)
class Regions:
    """``--source-region`` and ``--target-region`` as given (``pair`` checks them where a
    command needs both: a command reading saved snapshots needs neither)."""

    source: str | None
    destination: str | None  # --target-region: the flag keeps its name (docs/design.md, "Names")

    def pair(self) -> tuple[str, str]:
        """Both regions: given, different, and known to botocore (else a usage error)."""
        if not self.source or not self.destination:
            raise click.UsageError("--source-region and --target-region are required")
        if self.source == self.destination:
            raise click.UsageError("--source-region and --target-region must differ")
        return (
            checked_region(self.source, "--source-region"),
            checked_region(self.destination, "--target-region"),
        )


_REGION_OPTIONS = (
    click.option(
        "--source-region", envvar="SOURCE_REGION", show_envvar=True, help="Region replicated from."
    ),
    click.option(
        "--target-region", envvar="TARGET_REGION", show_envvar=True, help="Region replicated to."
    ),
)


def _regions(source_region: str | None, target_region: str | None) -> Regions:
    return Regions(source_region, target_region)


region_options = _grouped("regions", _regions, *_REGION_OPTIONS)


# --- what an audit compares and how it reports -------------------------------------------------

quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress display (it shows only on a terminal)."
)

_IGNORE_OPTIONS = (
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


def ignore_rules(ignore_patterns: tuple[str, ...], ignore_file: Path | None) -> IgnoreRules:
    """The rules of ``--ignore`` and the ignore file, said on stderr (ignored drift is
    invisible: the operator sees what hides it)."""
    if ignore_file is not None:
        rules = IgnoreRules.from_file(ignore_file, ignore_patterns)
    else:
        rules = IgnoreRules.from_file(Path(DEFAULT_IGNORE_FILE), ignore_patterns, missing_ok=True)
    if rules.describe():
        click.echo(rules.describe(), err=True)
    return rules


ignore_options = _grouped("ignore", ignore_rules, *_IGNORE_OPTIONS)


# --- files a command writes: checked before it reads anything ----------------------------------


def unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be written as a file, or ``None`` when it can (as far as this process
    can tell before writing: the directory exists and lets it create or replace a file)."""
    if path.is_dir():
        return "is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else "is not writable"
    parent = path.parent
    if not parent.is_dir():
        return f"its directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"its directory {parent} is not writable"
    return None


def writable_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A click callback: the report or plan file a command writes at its end, refused before
    the audit runs (learning it after a long snapshot is the worst time) with the path and why."""
    if value is not None and (reason := unwritable(value)):
        raise click.BadParameter(f"{value}: {reason}")
    return value


def snapshot_directory(
    ctx: click.Context, param: click.Parameter, value: Path | None
) -> Path | None:
    """A click callback: ``snapshot --out`` writes into a new or empty directory, or replaces a
    snapshot saved there before; a directory holding anything else is refused (it would mix a
    snapshot into unrelated files)."""
    if value is None:
        return None
    if value.exists() and not value.is_dir():
        raise click.BadParameter(f"{value}: is a file, not a directory")
    if value.is_dir():
        others = sorted(p.name for p in value.iterdir() if not _snapshot_file(p))
        if others:
            shown = ", ".join(others[:3]) + (
                f" and {len(others) - 3} more" if len(others) > 3 else ""
            )
            raise click.BadParameter(
                f"{value}: not empty and not a snapshot ({shown}); use a new or empty directory"
            )
        if not os.access(value, os.W_OK | os.X_OK):
            raise click.BadParameter(f"{value}: is not writable")
    elif reason := unwritable(value):
        raise click.BadParameter(f"{value}: {reason}")
    return value


def holds_snapshot(directory: Path) -> bool:
    """Whether ``directory`` holds a snapshot saved before (``snapshot --out`` replaces it)."""
    return (directory / MANIFEST).is_file()


def _snapshot_file(path: Path) -> bool:
    return path.is_file() and (path.name == MANIFEST or path.suffix == ".parquet")


def _account_map(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, str]:
    try:
        return parse_account_map(value or "")
    except EventValidationError as error:
        raise click.BadParameter(error.reason) from error


# Source -> destination accounts in policy ARNs, as the replicator's POLICY_ACCOUNT_MAP: policies
# are diffed (and a plan verified) as the replicator writes them.
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
_REPORT_OPTIONS = (
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
        callback=writable_file,
        help="Write the report to FILE instead of stdout.",
    ),
)


@dataclass(frozen=True)
class AuditOptions:
    """What an auditing command (``audit``, ``plan``, ``reconcile``) compares, under which rules,
    and where its report goes."""

    regions: Regions
    from_snapshots: tuple[Path, Path] | None  # two saved snapshots instead of the registries
    ignore: IgnoreRules
    policy_accounts: Mapping[str, str]  # --policy-account-map
    quiet: bool
    fmt: str
    output: Path | None


def _audit_options(
    *,
    source_region: str | None,
    target_region: str | None,
    policy_accounts: dict[str, str],
    quiet: bool,
    from_snapshots: tuple[Path, Path] | None,
    ignore_patterns: tuple[str, ...],
    ignore_file: Path | None,
    fmt: str,
    output: Path | None,
) -> AuditOptions:
    return AuditOptions(
        regions=Regions(source_region, target_region),
        from_snapshots=from_snapshots,
        ignore=ignore_rules(ignore_patterns, ignore_file),
        policy_accounts=policy_accounts,
        quiet=quiet,
        fmt=fmt,
        output=output,
    )


audit_options = _grouped(
    "audit",
    _audit_options,
    *_REGION_OPTIONS,
    policy_account_option,
    quiet_option,
    click.option(
        "--from-snapshots",
        nargs=2,
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        metavar="SRC_DIR DST_DIR",
        help="Diff two saved snapshots (from `iot-crr snapshot`) instead of the live registries.",
    ),
    *_IGNORE_OPTIONS,
    *_REPORT_OPTIONS,
)


# --- the state table ---------------------------------------------------------------------------

state_table_option = click.option(
    "--state-table",
    envvar="STATE_TABLE",
    show_envvar=True,
    help="The state table's name, in the source region: read by --explain, --table-vs-target, "
    "--failback and reconcile (rows in neither registry are repaired), written by --via table.",
)


# --- guards -------------------------------------------------------------------------------------

# The guards `apply` enforces itself (never the ones recorded in a plan file).
_APPLY_GUARD_OPTIONS = (
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


def _guards(
    allow_deletes: bool,
    max_changes: int,
    min_source_ratio: float,
    ttl_seconds: int = Guards.ttl_seconds,
) -> Guards:
    return Guards(
        allow_deletes=allow_deletes,
        max_changes=max_changes or None,
        min_source_ratio=min_source_ratio,
        ttl_seconds=ttl_seconds,
    )


def _apply_guards(allow_deletes: bool, max_changes: int, min_source_ratio: float) -> Guards:
    return _guards(allow_deletes, max_changes, min_source_ratio)


apply_guard_options = _grouped("guards", _apply_guards, *_APPLY_GUARD_OPTIONS)

guard_options = _grouped(
    "guards",
    _guards,
    *_APPLY_GUARD_OPTIONS,
    click.option(
        "--ttl",
        "ttl_seconds",
        type=click.IntRange(min=1, max=MAX_TTL_SECONDS),
        default=Guards.ttl_seconds,
        show_default=True,
        help="Seconds a saved plan stays valid.",
    ),
)


# --- where corrective events go --------------------------------------------------------------


@dataclass(frozen=True)
class EmitOptions:
    """``--via`` and the persist state machine; the table is ``--state-table``."""

    via: Via
    state_machine_arn: str | None

    def check(self, state_table: str | None) -> None:
        """A usage error unless the way out has what it needs."""
        if self.via == "stepfunctions" and not self.state_machine_arn:
            raise click.UsageError(
                "--via stepfunctions needs --state-machine-arn (or PERSIST_STATE_MACHINE_ARN)"
            )
        if self.via == "table" and not state_table:
            raise click.UsageError("--via table needs --state-table (or STATE_TABLE)")


emit_options = _grouped(
    "emit",
    EmitOptions,
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
)


# --- failback (after a failover: reconcile from the DR region back to the primary) ----------


def _failback(failback: bool, overwrite_patterns: tuple[str, ...]) -> Failback | None:
    if not failback:
        if overwrite_patterns:
            raise click.UsageError("--overwrite names held entities: it needs --failback")
        return None
    return Failback(overwrite_rules(overwrite_patterns))


failback_options = _grouped(
    "failback",
    _failback,
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


# --- readiness: what each device is asked in both regions ------------------------------------


@dataclass(frozen=True)
class ReadinessOptions:
    """Which devices ``readiness`` checks and what it asks each (``{thing}``: the thing's name),
    and where its report goes."""

    regions: Regions
    things: tuple[str, ...]
    sample: int | None
    client_id_template: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    receive: tuple[str, ...]
    policy_accounts: Mapping[str, str]
    fmt: str
    output: Path | None


def _readiness_options(
    *,
    source_region: str | None,
    target_region: str | None,
    things: tuple[str, ...],
    sample: int | None,
    client_id_template: str,
    publish: tuple[str, ...],
    subscribe: tuple[str, ...],
    receive: tuple[str, ...],
    policy_accounts: dict[str, str],
    fmt: str,
    output: Path | None,
) -> ReadinessOptions:
    if things and sample is not None:
        raise click.UsageError("--thing and --sample are alternatives; pick one")
    return ReadinessOptions(
        Regions(source_region, target_region),
        things,
        sample,
        client_id_template,
        publish,
        subscribe,
        receive,
        policy_accounts,
        fmt,
        output,
    )


readiness_options = _grouped(
    "readiness",
    _readiness_options,
    *_REGION_OPTIONS,
    click.option(
        "--thing",
        "things",
        multiple=True,
        metavar="NAME",
        help="Check this thing's device(s), one per certificate (repeatable). Default: every "
        "thing with a certificate.",
    ),
    click.option(
        "--sample",
        type=click.IntRange(min=1),
        metavar="N",
        help="Check the things of N certificates picked at random.",
    ),
    click.option(
        "--client-id-template",
        default="{thing}",
        show_default=True,
        help="The MQTT client id each device connects with.",
    ),
    click.option(
        "--publish", multiple=True, metavar="TOPIC", help="Ask iot:Publish on TOPIC (repeatable)."
    ),
    click.option(
        "--subscribe",
        multiple=True,
        metavar="FILTER",
        help="Ask iot:Subscribe on the topic filter FILTER (repeatable).",
    ),
    click.option(
        "--receive", multiple=True, metavar="TOPIC", help="Ask iot:Receive on TOPIC (repeatable)."
    ),
    policy_account_option,
    *_REPORT_OPTIONS,
)
