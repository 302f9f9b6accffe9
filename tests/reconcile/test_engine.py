"""The engine composes the three-way audit itself, from the state table's reader it is given
(pure: snapshots from dicts, no network)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline.policyrewrite import canonical_document
from reconcile.engine import Failback, Reconciler, TableNeededError
from reconcile.snapshot import Snapshot

SRC, DST = "us-east-1", "eu-west-1"
ACCOUNTS = {"111111111111": "222222222222"}


def policy(region: str, account: str, topic: str) -> dict[str, str]:
    arn = f"arn:aws:iot:{region}:{account}:topic/{topic}"
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": arn}]}
    return {"name": "p", "document": canonical_document(json.dumps(document))}


def world() -> tuple[dict[str, Snapshot], dict[str, Snapshot]]:
    """The source changed its policy (v2) and the event never reached the table, which holds v1
    as the source wrote it; the destination holds v1 as the replicator wrote it (its region, its
    account)."""
    registries = {
        SRC: Snapshot.from_records(SRC, 1, policies=[policy(SRC, "111111111111", "v2")]),
        DST: Snapshot.from_records(DST, 1, policies=[policy(DST, "222222222222", "v1")]),
    }
    table = Snapshot.from_records(SRC, 1, policies=[policy(SRC, "111111111111", "v1")])
    return registries, {SRC: dataclasses.replace(table, origin="state_table")}


def test_explain_reads_the_table_and_compares_it_as_the_replicator_writes() -> None:
    registries, tables = world()
    engine = Reconciler(registries.__getitem__, table=tables.__getitem__, policy_accounts=ACCOUNTS)
    # WHEN the audit is explained by the engine
    explained = engine.explain(engine.audit(SRC, DST)).report
    # THEN the change is lost before the table: the table and the destination agree once the
    # destination's copy is read as the replicator wrote it (account mapped, not just region)
    assert explained.explained
    assert [(d.name, d.kind, d.where) for d in explained.drifts] == [
        ("p", "changed", "lost_before_table")
    ]


def test_table_vs_target_reads_the_table_in_the_source_region_only() -> None:
    registries, tables = world()
    read: list[str] = []

    def snapshot(region: str) -> Snapshot:
        read.append(region)
        return registries[region]

    engine = Reconciler(snapshot, table=tables.__getitem__, policy_accounts=ACCOUNTS)
    report = engine.table_vs_target(SRC, DST)
    assert read == [DST]  # the source registry is not read
    assert report.source_region == f"{SRC} state table"
    assert report.explained and report.in_sync


def test_an_engine_without_the_tables_reader_cannot_read_it() -> None:
    registries, _ = world()
    with pytest.raises(TableNeededError):
        Reconciler(registries.__getitem__, failback=Failback())
    engine = Reconciler(registries.__getitem__)
    with pytest.raises(TableNeededError):
        engine.explain(engine.audit(SRC, DST))
