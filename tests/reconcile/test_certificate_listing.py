"""Certificates at scale (issue 27, item 2): a snapshot lists certificates with ListCertificates
alone, and a repair reads a certificate's PEM (DescribeCertificate, in the source region) only
for the certificates it registers or rewrites; the PEM, the same for one id in every region, is
then never drift, against a registry or against the state table."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from pipeline.kinds.certificate import canonical_pem
from pipeline.model import EntityKind
from reconcile.details import DetailsMissingError, needs_details, with_details
from reconcile.diff import diff_snapshots
from reconcile.engine import ReaderNeededError, Reconciler
from reconcile.explain import explain
from reconcile.guards import PlanRefusedError
from reconcile.inventory import Inventory
from reconcile.plan import Guards
from reconcile.planner import build_plan
from reconcile.ratelimit import RateLimiter, VirtualClock
from reconcile.snapshot import Snapshot, take_snapshot
from sandbox.certificates import self_signed_pem
from sandbox.inprocess import DST, SRC, LocalPipeline

NOW = 1_796_119_205_000
CERT = "c" * 64
PEM = canonical_pem("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")


class Counted:
    """Each region's reads, counted: the snapshots' and the repair's apart."""

    def __init__(self, pipeline: LocalPipeline) -> None:
        self.pipeline = pipeline
        self.snapshots: dict[str, Counter[str]] = {}
        self.repair: dict[str, Counter[str]] = {}

    def _inventory(self, region: str) -> Inventory:
        client = self.pipeline.source if region == SRC else self.pipeline.destination
        return Inventory(client, RateLimiter.unlimited())

    def snapshot(self, region: str) -> Snapshot:
        inventory = self._inventory(region)
        self.snapshots[region] = inventory.calls
        return take_snapshot(inventory, region)

    def reader(self, region: str) -> Inventory:
        inventory = self._inventory(region)
        self.repair[region] = inventory.calls
        return inventory


def _register(client: Any, pem: str, status: str) -> str:
    return str(
        client.register_certificate_without_ca(certificatePem=pem, status=status)["certificateId"]
    )


def test_a_snapshot_lists_certificates_without_a_call_per_certificate(
    pipeline: LocalPipeline,
) -> None:
    # GIVEN three certificates in the source, one of them attached to its thing
    src = pipeline.source
    ids = [
        _register(src, self_signed_pem(f"d{i}"), s)
        for i, s in enumerate(("ACTIVE", "INACTIVE", "REVOKED"))
    ]
    src.create_thing(thingName="device-0")
    arn = src.describe_certificate(certificateId=ids[0])["certificateDescription"]["certificateArn"]
    src.attach_thing_principal(thingName="device-0", principal=arn)
    counted = Counted(pipeline)
    # WHEN the source is snapshotted
    snapshot = counted.snapshot(SRC)
    # THEN the certificates and their statuses come from ListCertificates' one page, the thing
    # principals from one ListPrincipalThingsV2 each: no DescribeCertificate at all
    calls = counted.snapshots[SRC]
    assert calls["DescribeCertificate"] == 0
    assert (calls["ListCertificates"], calls["ListPrincipalThingsV2"]) == (1, 3)
    rows = snapshot.certificates.set_index("name")
    assert rows.loc[ids, "status"].tolist() == ["ACTIVE", "INACTIVE", "REVOKED"]
    # AND the PEM and the CA, which only DescribeCertificate returns, are not in it
    assert rows["pem"].isna().all() and rows["ca"].isna().all()
    assert snapshot.thing_principals["name"].tolist() == [f"device-0#{ids[0]}"]


def test_a_repair_reads_the_pem_only_of_the_certificates_it_writes(
    pipeline: LocalPipeline,
) -> None:
    # GIVEN a certificate in sync, one INACTIVE in the destination only, one missing there
    src, dst = pipeline.source, pipeline.destination
    pems = [self_signed_pem(f"d{i}") for i in range(3)]
    ids = [_register(src, pem, "ACTIVE") for pem in pems]
    _register(dst, pems[0], "ACTIVE")
    _register(dst, pems[1], "INACTIVE")
    counted = Counted(pipeline)
    engine = Reconciler(counted.snapshot, reader=counted.reader, guards=Guards(max_changes=None))
    # WHEN the registries are audited and the repair planned
    audit = engine.audit(SRC, DST)
    plan = engine.plan(audit)
    # THEN neither snapshot described a certificate; the repair described the two it writes,
    # in the source, and nothing in the destination
    assert [calls["DescribeCertificate"] for calls in counted.snapshots.values()] == [0, 0]
    assert dict(counted.repair[SRC]) == {"DescribeCertificate": 2}
    assert DST not in counted.repair
    # AND its corrective state carries the source's PEM (canonical) as before the listing
    # left it out: the status to rewrite, and the certificate to register
    upserts = {a.name: a for a in plan.actions if a.entity is EntityKind.CERTIFICATE}
    assert set(upserts) == {ids[1], ids[2]}
    for cert_id, pem in zip(ids[1:], pems[1:], strict=True):
        assert upserts[cert_id].fields == {
            "status": "ACTIVE",
            "pem": canonical_pem(pem),
            "ca": None,
        }
    assert upserts[ids[1]].changed == ("status",)


def test_an_engine_without_a_reader_refuses_a_repair_that_needs_one(
    pipeline: LocalPipeline,
) -> None:
    _register(pipeline.source, self_signed_pem("device"), "ACTIVE")
    engine = Reconciler(pipeline.snapshot)
    audit = engine.audit(SRC, DST)
    with pytest.raises(ReaderNeededError, match="1 entities read one by one in us-east-1"):
        engine.plan(audit)


def _listed(region: str, status: str) -> Snapshot:
    """A registry's snapshot of ``CERT``: as listed, without its PEM."""
    return Snapshot.from_records(region, NOW, certificates=[{"name": CERT, "status": status}])


def test_a_certificate_gone_before_its_pem_is_read_is_held_back() -> None:
    source, target = _listed(SRC, "ACTIVE"), Snapshot(DST, NOW)
    drafted = build_plan(diff_snapshots(source, target), source, target, Guards(), now=NOW)
    assert needs_details(drafted) == [(EntityKind.CERTIFICATE, CERT)]
    with pytest.raises(DetailsMissingError, match=f"certificate '{CERT}' without its ca, pem"):
        with_details(drafted, {})
    # WHEN its DescribeCertificate found it deleted since the snapshot
    plan = with_details(drafted, {(EntityKind.CERTIFICATE, CERT): None})
    # THEN it is not registered without a PEM: held back, saying why, in a plan of its own id
    assert plan.actions == ()
    (held,) = plan.skipped
    assert (held.entity, held.name, held.reason) == (
        EntityKind.CERTIFICATE,
        CERT,
        f"gone from {SRC} since its snapshot",
    )
    assert plan.plan_id != drafted.plan_id


def test_a_plan_its_guards_refuse_reads_nothing(pipeline: LocalPipeline) -> None:
    """The guards decide on the draft: a plan over the change cap (or from a source that looks
    broken) is refused before a single certificate is described (1,000,000 missing would
    otherwise be 27.8 h of DescribeCertificate at 10 TPS before the refusal)."""
    src, dst = pipeline.source, pipeline.destination
    pem = self_signed_pem("in-sync")
    _register(src, pem, "ACTIVE")
    _register(dst, pem, "ACTIVE")  # a destination that holds something: no backfill
    for i in range(3):
        _register(src, self_signed_pem(f"d{i}"), "ACTIVE")
    counted = Counted(pipeline)
    engine = Reconciler(counted.snapshot, reader=counted.reader, guards=Guards(max_changes=2))
    audit = engine.audit(SRC, DST)
    with pytest.raises(PlanRefusedError, match="3"):
        engine.plan(audit)
    assert counted.repair == {}


def test_the_pem_is_not_compared_with_the_state_table_which_holds_it() -> None:
    """The three-way audit: the table holds the PEM (persist read it), the registries' snapshots
    do not; the certificate in sync everywhere shows no drift, and a status the table missed is
    still found (and the table's PEM is used for its repair, with no read)."""
    table = replace(
        Snapshot.from_records(
            SRC, NOW, certificates=[{"name": CERT, "status": "INACTIVE", "pem": PEM}]
        ),
        origin="state_table",
    )
    in_sync = diff_snapshots(_listed(SRC, "INACTIVE"), table)
    assert in_sync.drifts == ()
    source, destination = _listed(SRC, "ACTIVE"), _listed(DST, "INACTIVE")
    report = diff_snapshots(source, destination)
    explained = explain(report, source, table, destination, clock=lambda: NOW)
    ((drift),) = explained.drifts
    assert (drift.kind, drift.where, tuple(drift.details)) == (
        "changed",
        "lost_before_table",
        ("status",),
    )
    # A row that holds its PEM (the table's, a snapshot saved by an earlier version) is not read.
    active = _listed(DST, "ACTIVE")
    repair = build_plan(diff_snapshots(table, active), table, active, Guards(), now=NOW)
    assert needs_details(repair) == []
    assert repair.actions[0].fields == {"status": "INACTIVE", "pem": PEM, "ca": None}


def test_a_repair_reads_a_few_certificates_at_once(pipeline: LocalPipeline) -> None:
    """One after another, a DescribeCertificate slower than 100 ms leaves its 10 TPS idle (a
    first run into an empty DR reads every certificate): the reads overlap, 4 at once."""
    # GIVEN 8 certificates missing in the destination, and 200 ms for every call to return
    for i in range(8):
        _register(pipeline.source, self_signed_pem(f"d{i}"), "ACTIVE")
    clock = VirtualClock()
    client = pipeline.source
    client.meta.events.register("after-call.iot.DescribeCertificate", lambda **_: clock.sleep(0.2))
    limiter = RateLimiter(quotas={}, clock=clock, sleep=clock.sleep)
    engine = Reconciler(pipeline.snapshot, reader=lambda _region: Inventory(client, limiter))
    # WHEN the repair is planned
    plan = engine.plan(engine.audit(SRC, DST))
    # THEN every certificate is read, and the reads overlapped (the virtual clock does not bound
    # a pool: each starts when handed over, at most 8 ahead): 0.2 s, not 1.6 s one after another
    assert all(a.fields["pem"] for a in plan.actions)
    assert len(plan.actions) == 8
    assert clock.elapsed == pytest.approx(0.2)
