"""Every entity kind is complete: its module in ``pipeline.kinds`` holds every piece the stages
run (docs/design.md, "Adding an entity kind"). A kind missing a piece fails here, by its name
and the piece's, rather than at its first event, snapshot or repair."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import botocore
import pytest

from pipeline.iot import _DATA_PAGING, _paginators
from pipeline.kinds import ENTITIES, ENTITY_ORDER, KINDS, STATE_FIELDS
from pipeline.kinds.base import EntitySpec, Kind, Listing, text
from pipeline.model import KEY_PREFIX, KEY_SEPARATOR, EntityKind, entity_key, parse_key
from reconcile.families import FAMILIES
from reconcile.snapshot import SCHEMAS, Snapshot, desired_fields

_PER_REGION = {"version"}  # kept for information, never compared (pipeline/model.py)
_DTYPES = {"string", "category", "packed_string", "bool", "boolean", "Int64"}


def _operations() -> set[str]:
    """The IoT API's operations and the Device Shadow service's (iot-data)."""
    operations: set[str] = set()
    for service in ("iot", "iot-data"):
        (model,) = Path(botocore.__file__).parent.glob(f"data/{service}/*/service-2.json.gz")
        operations |= set(json.loads(gzip.decompress(model.read_bytes()))["operations"])
    return operations


OPERATIONS = _operations()


def missing_pieces(kind: Kind) -> list[str]:
    """What ``kind`` lacks, each piece named as docs/design.md names it."""
    missing: list[str] = []
    spec = getattr(kind, "spec", None)
    if not isinstance(spec, EntitySpec):
        return ["spec (its EntitySpec row)"]
    if spec.kind not in KEY_PREFIX:
        missing.append("key prefix (pipeline.model.KEY_PREFIX)")
    columns = [column.name for column in getattr(kind, "columns", ())]
    if columns[: len(spec.frame_key)] != list(spec.frame_key):
        missing.append(f"columns starting with its key {spec.frame_key}")
    if set(columns) - set(spec.frame_key) - _PER_REGION != set(spec.fields):
        missing.append("a column per state field, and no other")
    if any(column.dtype not in _DTYPES for column in getattr(kind, "columns", ())):
        missing.append(f"column dtypes among {sorted(_DTYPES)}")
    listing = getattr(kind, "listing", None)
    if not isinstance(listing, Listing):
        missing.append("listing (its Listing spec)")
    else:
        if listing.op not in {*_paginators(), *_DATA_PAGING}:
            missing.append(f"a listing op botocore can paginate (not {listing.op!r})")
        if set(listing.describe) - OPERATIONS:
            missing.append(
                f"describe ops of the IoT API (not {sorted(set(listing.describe) - OPERATIONS)})"
            )
        reads = {
            *listing.operations,
            *listing.details,
            *(join.op for join in getattr(kind, "joins", ())),
        }
        if reads - set(getattr(kind, "quotas", {})):
            missing.append(f"quotas (the default TPS of {sorted(reads - set(kind.quotas))})")
        overridden = "links" if listing.parent is not None else "record"
        if getattr(type(kind), overridden) is getattr(Kind, overridden):
            missing.append(f"{overridden}() (the snapshot's records)")
        if spec.detailed and (not listing.details or type(kind).details is Kind.details):
            missing.append("details() and listing.details (the detailed fields read per entity)")
    for method, piece in (
        ("read", "read() (the replicator's describe)"),
        ("calls", "calls() (the pure decision)"),
    ):
        if getattr(type(kind), method) is getattr(Kind, method):
            missing.append(piece)
    if spec.fields and type(kind).check_field is Kind.check_field:
        missing.append("check_field() (a corrective event's state validated)")
    if set(kind.arn_fields) - set(spec.fields):
        missing.append("arn_fields among its state fields")
    if kind.arn_fields and type(kind).written is Kind.written:
        missing.append("written() (its ARN fields as the destination's copy names them)")
    return missing


@pytest.mark.parametrize("member", list(EntityKind), ids=lambda member: member.value)
def test_every_kind_has_a_module_with_every_piece(member: EntityKind) -> None:
    assert member in KINDS, (
        f"{member.value}: no module of pipeline/kinds defines it (a module's KINDS tuple)"
    )
    missing = missing_pieces(KINDS[member])
    assert not missing, f"{member.value}: missing {'; '.join(missing)}"


def test_an_incomplete_kind_is_named_with_what_it_lacks() -> None:
    class Half(Kind):
        spec = EntitySpec(
            EntityKind.THING, frame="halves", rank=99, fields={"x": "low"}, noun=("a", "b")
        )
        columns = (text("name"),)
        listing = Listing("ListNothing")
        arn_fields = ("x",)

    class Detailed(Kind):
        spec = EntitySpec(
            EntityKind.THING,
            frame="detailed",
            rank=98,
            fields={"x": "low"},
            noun=("a", "b"),
            detailed=frozenset({"x"}),
        )
        listing = Listing("ListThings")

    missing = missing_pieces(Half())
    assert "a column per state field, and no other" in missing
    assert "a listing op botocore can paginate (not 'ListNothing')" in missing
    assert "record() (the snapshot's records)" in missing
    assert "read() (the replicator's describe)" in missing
    assert "calls() (the pure decision)" in missing
    assert "check_field() (a corrective event's state validated)" in missing
    assert "quotas (the default TPS of ['ListNothing'])" in missing
    assert "written() (its ARN fields as the destination's copy names them)" in missing
    assert "details() and listing.details (the detailed fields read per entity)" in (
        missing_pieces(Detailed())
    )


def test_per_kind_facts_are_distinct() -> None:
    specs = list(ENTITIES.values())
    for attribute in ("key_prefix", "frame", "rank", "noun"):
        values = [getattr(spec, attribute) for spec in specs]
        assert len(set(values)) == len(values), attribute
    aliases = [spec.alias for spec in specs if spec.alias is not None]
    assert len(set(aliases)) == len(aliases)
    assert not set(aliases) & {kind.value for kind in EntityKind}  # an alias never shadows a kind


def test_key_prefixes_cannot_be_confused_with_names() -> None:
    assert set(KEY_PREFIX) == set(EntityKind)
    for kind in EntityKind:
        assert KEY_SEPARATOR not in KEY_PREFIX[kind]
        assert parse_key(entity_key(kind, "x")) == (kind, "x")


def test_derived_names_follow_the_kinds() -> None:
    assert ENTITY_ORDER == (
        EntityKind.THING_TYPE,
        EntityKind.THING_GROUP,
        EntityKind.BILLING_GROUP,
        EntityKind.THING,
        EntityKind.MEMBERSHIP,
        EntityKind.PROVISIONING_TEMPLATE,
        EntityKind.CA_CERTIFICATE,
        EntityKind.CERTIFICATE,
        EntityKind.POLICY,
        EntityKind.THING_PRINCIPAL,
        EntityKind.POLICY_TARGET,
        EntityKind.SHADOW,
        EntityKind.RETAINED_MESSAGE,
        EntityKind.ROLE_ALIAS,
        EntityKind.AUTHORIZER,
    )
    assert ENTITIES[EntityKind.THING_TYPE].key_prefix == "TYPE"
    assert STATE_FIELDS[EntityKind.THING] == ("thing_type", "attributes", "billing_group")
    assert STATE_FIELDS[EntityKind.MEMBERSHIP] == ()
    # The tables keep the order of the kinds' declaration: the snapshot's fingerprint.
    assert list(SCHEMAS) == [KINDS[kind].spec.frame for kind in EntityKind]


def test_field_severities_are_known_severities() -> None:
    for spec in ENTITIES.values():
        assert set(spec.fields.values()) <= {"high", "medium", "low"}


def test_every_kind_is_listed_by_a_snapshot_family() -> None:
    assert set(FAMILIES) == {kind.value for kind in EntityKind}
    assert all(set(ops) <= OPERATIONS for ops in FAMILIES.values())


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=lambda kind: kind.kind.value)
def test_a_snapshot_row_reads_back_as_exactly_the_state_fields(kind: Kind) -> None:
    snapshot = Snapshot.from_records(
        "r", 0, **{kind.spec.frame: [{"name": "n", "thing": "t", "group": "g"}]}
    )
    row = getattr(snapshot, kind.spec.frame).iloc[0]
    assert tuple(desired_fields(kind.kind, row)) == kind.spec.state_fields


def test_a_column_name_means_one_encoding_in_every_kind() -> None:
    # cell_value (the diff's explanations) decodes a column by its name alone
    by_name: dict[str, set[tuple[str, bool]]] = {}
    for kind in KINDS.values():
        for column in kind.columns:
            by_name.setdefault(column.name, set()).add((column.dtype, column.json))
    assert {name: codecs for name, codecs in by_name.items() if len(codecs) > 1} == {}
