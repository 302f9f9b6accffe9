"""The entity kinds: one module per kind, each holding its ``Kind`` (``pipeline.kinds.base``).

Every per-kind fact lives in its kind's module; the tables the stages read derive from them
here. The kinds are found, not listed: every module of this package that defines ``KINDS``
contributes them, so adding a kind is one new module (docs/design.md, "Adding an entity kind";
tests/unit/test_kinds.py names a kind that lacks a piece). They are ordered as ``EntityKind``
declares its members, which is also the order of a snapshot's tables (and its fingerprint).
"""

from __future__ import annotations

import importlib
import pkgutil

from pipeline.kinds.base import EntitySpec, Kind
from pipeline.model import EntityKind


def _discover() -> dict[EntityKind, Kind]:
    found: dict[EntityKind, Kind] = {}
    for module in pkgutil.iter_modules(__path__):
        for kind in getattr(importlib.import_module(f"{__name__}.{module.name}"), "KINDS", ()):
            if kind.kind in found:
                raise RuntimeError(f"two modules define the kind {kind.kind.value}")
            found[kind.kind] = kind
    return {member: found[member] for member in EntityKind if member in found}


KINDS: dict[EntityKind, Kind] = _discover()
ENTITIES: dict[EntityKind, EntitySpec] = {kind: k.spec for kind, k in KINDS.items()}
# Dependency order (ascending ``rank``): the order a repair creates in, and reports read in.
ENTITY_ORDER: tuple[EntityKind, ...] = tuple(
    spec.kind for spec in sorted(ENTITIES.values(), key=lambda spec: spec.rank)
)
# The fields each entity's desired state may hold (the ``Item.state`` map). A change may set a
# subset of them (a THING_EVENT carries no billing group); the rest keep their stored value.
STATE_FIELDS: dict[EntityKind, tuple[str, ...]] = {
    kind: spec.state_fields for kind, spec in ENTITIES.items()
}
