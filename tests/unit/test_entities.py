"""The entity table (``pipeline.model.ENTITIES``) is complete and self-consistent: every per-kind
fact derives from it, so a kind missing from it, or two kinds sharing a key prefix, a frame, a
rank or an alias, would break keys, ordering or ignore patterns silently."""

from __future__ import annotations

from pipeline.model import (
    ENTITIES,
    ENTITY_ORDER,
    KEY_PREFIX,
    KEY_SEPARATOR,
    STATE_FIELDS,
    EntityKind,
    entity_key,
    parse_key,
)


def test_every_kind_has_exactly_one_spec() -> None:
    assert set(ENTITIES) == set(EntityKind)
    assert all(spec.kind is kind for kind, spec in ENTITIES.items())


def test_per_kind_facts_are_distinct() -> None:
    specs = list(ENTITIES.values())
    for attribute in ("key_prefix", "frame", "rank", "noun"):
        values = [getattr(spec, attribute) for spec in specs]
        assert len(set(values)) == len(values), attribute
    aliases = [spec.alias for spec in specs if spec.alias is not None]
    assert len(set(aliases)) == len(aliases)
    assert not set(aliases) & {kind.value for kind in EntityKind}  # an alias never shadows a kind


def test_key_prefixes_cannot_be_confused_with_names() -> None:
    for kind, spec in ENTITIES.items():
        assert KEY_SEPARATOR not in spec.key_prefix
        assert parse_key(entity_key(kind, "x")) == (kind, "x")


def test_derived_names_follow_the_table() -> None:
    assert ENTITY_ORDER == (
        EntityKind.THING_TYPE,
        EntityKind.THING_GROUP,
        EntityKind.BILLING_GROUP,
        EntityKind.THING,
        EntityKind.MEMBERSHIP,
        EntityKind.CERTIFICATE,
        EntityKind.POLICY,
        EntityKind.THING_PRINCIPAL,
        EntityKind.POLICY_TARGET,
    )
    assert [ENTITIES[kind].rank for kind in ENTITY_ORDER] == sorted(
        spec.rank for spec in ENTITIES.values()
    )
    assert KEY_PREFIX[EntityKind.THING_TYPE] == "TYPE"
    assert STATE_FIELDS[EntityKind.THING] == ("thing_type", "attributes", "billing_group")
    assert STATE_FIELDS[EntityKind.MEMBERSHIP] == ()


def test_field_severities_are_known_severities() -> None:
    for spec in ENTITIES.values():
        assert set(spec.fields.values()) <= {"high", "medium", "low"}
