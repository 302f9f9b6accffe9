"""Root causes: drift that exists only because other drift does, listed under its cause.

Flow: ``reconcile.diff`` → ``DriftReport`` → ``by_root_cause`` → the report renderings
(``reconcile.report``) and the drift report notebook (``jobs.notebook_data``). Pure, no I/O.

One missing thing group makes every membership of it missing too: 174 "high" membership rows
say nothing the group's own row does not. A drift's *cause* is the drift of an entity it cannot
exist without, missing (or extra) the same way:

- a membership's cause is its thing group's drift, else its thing's;
- a thing's cause is its thing type's drift: the type a missing thing has in the source (an
  extra thing in the target) missing (extra) the same way, or changed (a re-created type holds
  new things back); and for a changed thing whose type differs, its type's drift on either side
  (a type changed in the source is re-created in the destination: deprecated, its things
  detached keeping at most 3 attributes, deleted 5 minutes later, created and re-attached,
  ``pipeline.kinds.thing_type``), so its things' type and attributes drift meanwhile.
- a thing principal's (``<thing>#<certificate id>``) cause is its certificate's drift, else its
  thing's;
- a policy attachment's cause is its policy's drift, else its target's (certificate or group).

Causes chain (a membership of a thing of a missing type), so dependents are attached to the
*root*: the first drift up the chain that has no cause of its own. Nothing is dropped: every
drift of the report is either a root (a ``Cause``) or a dependent of exactly one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.kinds import ENTITIES
from pipeline.kinds.links import split_link, split_target
from pipeline.model import EntityKind
from reconcile.drift import SEVERITY_RANK, Drift


@dataclass(frozen=True)
class Cause:
    """A drift with no cause of its own, and every drift that exists because of it."""

    drift: Drift
    dependents: tuple[Drift, ...] = ()

    @property
    def explains(self) -> int:
        """Drift items this row stands for: itself and its dependents."""
        return 1 + len(self.dependents)

    def consequences(self) -> list[str]:
        """One phrase per dependent entity kind, e.g. ``174 memberships of the missing group
        emea-site-0-floor-1`` (dependency order)."""
        counts = Counter(d.entity for d in self.dependents)
        noun = ENTITIES[self.drift.entity].noun[0]
        return [
            f"{count} {ENTITIES[entity].noun[count != 1]} of the {self.drift.kind} {noun} "
            f"{self.drift.name}"
            for entity, count in sorted(counts.items(), key=lambda item: ENTITIES[item[0]].rank)
        ]

    def dependents_of(self, entity: EntityKind) -> tuple[Drift, ...]:
        return tuple(d for d in self.dependents if d.entity is entity)


def _types_of(drift: Drift) -> list[tuple[str, tuple[str, ...]]]:
    """The thing types whose drift can explain a thing's drift, each with the kinds of type
    drift that do: a missing (extra) thing's type missing (extra) the same way, or changed (its
    re-create holds new things back); a changed thing whose type differs (the lifecycle detaches
    it, keeping at most 3 attributes): either side's type missing, extra or changed."""
    types = drift.details.get("thing_type", {})
    sides: list[tuple[Any, tuple[str, ...]]]
    if drift.kind in ("missing", "extra"):
        side = "source" if drift.kind == "missing" else "target"
        sides = [(types.get(side), (drift.kind, "changed"))]
    else:
        sides = [
            (types.get("source"), ("changed", "missing")),
            (types.get("target"), ("changed", "extra")),
        ]
    return [(name, kinds) for name, kinds in sides if isinstance(name, str) and name]


_Key = tuple[EntityKind, str, str]  # (entity, name, drift kind)


def _candidates(drift: Drift) -> list[_Key]:
    """The keys of the drifts that would explain ``drift``, most specific first."""
    if drift.entity is EntityKind.THING:
        return [(EntityKind.THING_TYPE, n, k) for n, kinds in _types_of(drift) for k in kinds]
    if drift.kind not in ("missing", "extra"):
        return []
    named: list[tuple[EntityKind, str | None]] = []
    if drift.entity is EntityKind.MEMBERSHIP:
        named = [(EntityKind.THING_GROUP, drift.group), (EntityKind.THING, drift.thing)]
    elif drift.entity is EntityKind.THING_PRINCIPAL:
        thing, certificate = split_link(drift.name)
        named = [(EntityKind.CERTIFICATE, certificate), (EntityKind.THING, thing)]
    elif drift.entity is EntityKind.POLICY_TARGET:
        policy, target = split_link(drift.name)
        target_kind, target_name = split_target(target)
        named = [(EntityKind.POLICY, policy)]
        if target_kind is not None:
            named.append((target_kind, target_name))
    return [(entity, name, drift.kind) for entity, name in named if name is not None]


def _cause_key(drift: Drift, present: set[_Key]) -> _Key | None:
    """The key of the drift ``drift`` exists because of, if that drift is in the report."""
    return next((key for key in _candidates(drift) if key in present), None)


def by_root_cause(drifts: Iterable[Drift]) -> list[Cause]:
    """Every drift once: roots with their dependents, the roots that explain most first (then
    the more severe, then the report's own order)."""
    ordered = list(drifts)
    by_key: dict[_Key, Drift] = {(d.entity, d.name, d.kind): d for d in ordered}
    present = set(by_key)

    def root_of(drift: Drift) -> Drift:
        seen: set[_Key] = {(drift.entity, drift.name, drift.kind)}
        current = drift
        while (key := _cause_key(current, present)) is not None:
            if key in seen:  # a cycle cannot happen with these rules; stop rather than loop
                break
            seen.add(key)
            current = by_key[key]
        return current

    dependents: dict[_Key, list[Drift]] = {}
    roots: list[Drift] = []
    for drift in ordered:
        root = root_of(drift)
        if root is drift:
            roots.append(drift)
        else:
            dependents.setdefault((root.entity, root.name, root.kind), []).append(drift)
    causes = [Cause(r, tuple(dependents.get((r.entity, r.name, r.kind), ()))) for r in roots]
    position = {id(c): i for i, c in enumerate(causes)}
    return sorted(
        causes,
        key=lambda c: (-c.explains, -SEVERITY_RANK[c.drift.severity], position[id(c)]),
    )
