"""The options of the commands that repair (``plan``, ``apply``, ``reconcile``): their guards,
where corrective events go, and failback; each group reaching a command as one typed value
(``reconcile.options.grouped``)."""

from __future__ import annotations

from dataclasses import dataclass

import click

from reconcile.emit import VIAS, Via
from reconcile.engine import Failback
from reconcile.failback import overwrite_rules
from reconcile.guards import Guards
from reconcile.options import grouped
from reconcile.plan import MAX_TTL_SECONDS

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


apply_guard_options = grouped("guards", _apply_guards, *_APPLY_GUARD_OPTIONS)

guard_options = grouped(
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


emit_options = grouped(
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


failback_options = grouped(
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
