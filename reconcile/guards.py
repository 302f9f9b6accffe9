"""The guards a repair plan is built and applied under, and the refusal they raise.

``Guards`` are recorded in the plan; ``Sizes`` are what the source-size guards compare.
``check_source_size`` and ``check_change_cap`` run when ``reconcile.planner`` builds a plan and
when ``reconcile.plan.check_trusted`` accepts a loaded one. A ``PlanRefusedError`` names the
guard, why, and how the entry point that raised it sets that guard (``Knobs``: the CLI's flags
here, the nightly job's settings in ``jobs.config``). Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.errors import PermanentError


class PlanRefusedError(PermanentError):
    """A guard refused to build the plan; ``guard`` names which one, ``reason`` says why and
    ``knob`` how the entry point that raised it sets that guard (``Knobs``)."""

    def __init__(self, guard: str, reason: str, knob: str | None = None) -> None:
        super().__init__(f"plan refused ({guard}): {reason}" + (f"; {knob}" if knob else ""))
        self.guard = guard
        self.reason = reason
        self.knob = knob

    def naming(self, knobs: Knobs) -> PlanRefusedError:
        """The same refusal, naming the knob of the entry point whose ``knobs`` these are."""
        return PlanRefusedError(self.guard, self.reason, knobs.get(self.guard))


# How an entry point's operator sets each guard, as a refusal names it: the CLI's flags here;
# the nightly job's settings in ``jobs.config.JOB_KNOBS``.
Knobs = Mapping[str, str]
CLI_KNOBS: Knobs = {
    "max_changes": "raise --max-changes (0: no cap) if this is expected",
    "allow_deletes": "pass --allow-deletes to apply deletes",
    "min_source_ratio": "lower --min-source-ratio if the source really shrank",
}


@dataclass(frozen=True)
class Guards:
    """Safety limits a plan is built under (recorded in the plan so a reader sees them).

    ``max_changes=None`` means no cap. ``min_source_ratio`` refuses a source with fewer things than
    that fraction of the target's: a half-empty source is far likelier a broken snapshot (wrong
    region, missing permissions) than a real mass deletion.
    """

    allow_deletes: bool = False
    max_changes: int | None = 1000
    min_source_ratio: float = 0.5
    ttl_seconds: int = 3600


@dataclass(frozen=True)
class Sizes:
    """What the source-size guards compare (``check_source_size``): each snapshot's things, and
    its entities of every kind but memberships. Recorded in the plan, so ``apply`` applies its
    own guards to a plan it does not rebuild (``--no-verify``)."""

    source_things: int
    target_things: int
    source_entities: int
    target_entities: int


def check_source_size(sizes: Sizes, guards: Guards, source_region: str, target_region: str) -> None:
    """Refuse a source that looks broken next to its target (``PlanRefusedError``): empty, or
    with fewer things than ``guards.min_source_ratio`` of the target's."""
    if sizes.source_entities == 0 and sizes.target_entities > 0:
        raise PlanRefusedError(
            "empty_source",
            f"the source snapshot of {source_region} is empty while {target_region} holds "
            f"{sizes.target_entities} entities; check the region and permissions",
        )
    source_things, target_things = sizes.source_things, sizes.target_things
    if target_things and source_things < guards.min_source_ratio * target_things:
        raise PlanRefusedError(
            "min_source_ratio",
            f"the source {source_region} has {source_things} things, fewer than "
            f"{guards.min_source_ratio:g} x the target's {target_things}: "
            "the source snapshot looks incomplete",
        )


def check_change_cap(
    changes: int, guards: Guards, *, note: str = "", knob: str | None = None
) -> None:
    """Refuse more than ``guards.max_changes`` actions (``PlanRefusedError``; ``note`` added to
    its reason, ``knob`` how the caller's operator raises the cap)."""
    if guards.max_changes is not None and changes > guards.max_changes:
        raise PlanRefusedError(
            "max_changes",
            f"{changes} changes exceed the cap of {guards.max_changes}{note}",
            knob,
        )
