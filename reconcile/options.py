"""The ``iot-crr`` options: each declared once, each group reaching a command as one typed value.

A command is given ``audit: AuditOptions`` (what to compare, how to report), ``regions:
Regions``, ``ignore: IgnoreRules`` or ``state_table: str | None`` (declared here), ``guards:
Guards``, ``emit: EmitOptions`` or ``failback: Failback | None`` (``reconcile.repair_options``)
or ``readiness: ReadinessOptions`` (``reconcile.readiness_options``), never a bag of raw values:
the decorators build them (``grouped``) and refuse what is malformed with a usage error naming
the option; the files a command writes are checked as they are parsed
(``reconcile.output_paths``). Checks that need the command's other options (a failback needs the
state table) are the command's.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from pipeline.errors import EventValidationError
from pipeline.policyrewrite import ACCOUNT_MAP_VARIABLE, parse_account_map
from reconcile.ignore import DEFAULT_FILE as DEFAULT_IGNORE_FILE
from reconcile.ignore import IgnoreRules
from reconcile.output_paths import writable_file
from reconcile.regions import UnknownRegionError, check_region
from reconcile.report import FORMATS

F = Callable[..., Any]
Decorator = Callable[[F], F]


def grouped(name: str, build: Callable[..., Any], *options: Decorator) -> Decorator:
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


REGION_OPTIONS = (
    click.option(
        "--source-region", envvar="SOURCE_REGION", show_envvar=True, help="Region replicated from."
    ),
    click.option(
        "--target-region", envvar="TARGET_REGION", show_envvar=True, help="Region replicated to."
    ),
)


def _regions(source_region: str | None, target_region: str | None) -> Regions:
    return Regions(source_region, target_region)


region_options = grouped("regions", _regions, *REGION_OPTIONS)


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


ignore_options = grouped("ignore", ignore_rules, *_IGNORE_OPTIONS)


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
REPORT_OPTIONS = (
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


audit_options = grouped(
    "audit",
    _audit_options,
    *REGION_OPTIONS,
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
    *REPORT_OPTIONS,
)


# --- the state table ---------------------------------------------------------------------------

state_table_option = click.option(
    "--state-table",
    envvar="STATE_TABLE",
    show_envvar=True,
    help="The state table's name, in the source region: read by --explain, --table-vs-target, "
    "--failback, reconcile (rows in neither registry are repaired) and readiness (certificates "
    "the target refused to register), written by --via table.",
)
