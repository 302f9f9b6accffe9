"""The fields a repair needs that no listing returns (``EntitySpec.detailed``: a certificate's
PEM and CA, which only DescribeCertificate returns), read for the entities the plan writes.

A snapshot lists; it does not make one call per entity where the kind's listing carries the rest
(a certificate's id, status and ARN: ListCertificates' items). So a drafted plan's upserts of
such a kind lack those fields, and the engine completes it (``reconcile.engine.Reconciler.plan``):

    drafted = build_plan(...)                          # the guards decide on the draft, no reads
    wanted = needs_details(drafted)                    # the upserts lacking them
    plan = with_details(drafted, read_details(reader, wanted))

The draft is guarded first, so a plan refused (a broken source, over the change cap) costs no
read. Rows that hold their detailed fields (the state table's, which persist fills from the
origin, or a snapshot saved by an earlier version) are not read. An entity gone by the time it is
read is held back, never upserted without its fields. ``needs_details`` and ``with_details`` are
pure; ``read_details`` calls the kinds' ``details`` through the reader it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pipeline.errors import PermanentError
from pipeline.kinds import ENTITIES, KINDS
from pipeline.model import EntityKind
from reconcile.partition import mapped_in_order
from reconcile.plan import Plan, RepairAction, plan_id

if TYPE_CHECKING:
    from reconcile.inventory import Inventory

# Reads at once: one after another, a call slower than 1/quota leaves the quota idle (100 ms at
# DescribeCertificate's 10 TPS); 4 keep it busy up to 400 ms a call, as the listings' describes.
DETAILS_WORKERS = 4

# An entity's detailed fields by (kind, name), as its kind's ``details`` read them in the source
# region; ``None``: the entity was gone by then.
Details = Mapping[tuple[EntityKind, str], Mapping[str, Any] | None]


class DetailsMissingError(PermanentError):
    """``with_details`` was not given the detailed fields of an upsert that lacks them (a wiring
    bug: ``needs_details`` names them)."""


def lacks_details(action: RepairAction) -> bool:
    """An upsert of a kind with detailed fields, none of which it carries."""
    detailed = ENTITIES[action.entity].detailed
    return (
        action.op == "upsert"
        and bool(detailed)
        and all(action.fields.get(name) is None for name in detailed)
    )


def needs_details(plan: Plan) -> list[tuple[EntityKind, str]]:
    """The entities whose detailed fields ``plan``'s upserts lack: the only ones read one by one
    (a certificate to register or whose status to rewrite, never the fleet)."""
    return [(a.entity, a.name) for a in plan.actions if lacks_details(a)]


def read_details(
    reader: Inventory,
    entities: Iterable[tuple[EntityKind, str]],
    *,
    workers: int = DETAILS_WORKERS,
) -> Details:
    """The detailed fields of ``entities``, read entity by entity (``Kind.details``, the calls
    of ``Listing.details``), ``workers`` at once, each paced by ``reader``'s limiter; ``None``
    for an entity gone."""
    keys = list(entities)
    read = mapped_in_order(
        lambda key: KINDS[key[0]].details(reader, key[1]),
        keys,
        workers=workers,
        pace=reader.limiter,
    )
    return dict(zip(keys, read, strict=True))


def with_details(plan: Plan, details: Details) -> Plan:
    """``plan`` with its upserts' detailed fields from ``details`` (every entity
    ``needs_details`` names; ``DetailsMissingError`` otherwise); an upsert whose entity was gone
    is held back (``skipped``, saying so). The plan gets the id of its new content."""
    if not any(lacks_details(action) for action in plan.actions):
        return plan
    actions: list[RepairAction] = []
    gone: list[RepairAction] = []
    for action in plan.actions:
        if not lacks_details(action):
            actions.append(action)
            continue
        key = (action.entity, action.name)
        if key not in details:
            raise DetailsMissingError(
                f"the plan upserts {action.entity.value} {action.name!r} without its "
                f"{', '.join(sorted(ENTITIES[action.entity].detailed))} (read them first: "
                "needs_details)"
            )
        read = details[key]
        if read is None:
            gone.append(
                replace(action, reason=f"gone from {plan.source_region} since its snapshot")
            )
            continue
        actions.append(replace(action, fields={**action.fields, **read}))
    completed = replace(plan, plan_id="", actions=tuple(actions), skipped=(*gone, *plan.skipped))
    return replace(completed, plan_id=plan_id(completed))
