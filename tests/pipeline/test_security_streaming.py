"""Certificates, policies and attachments through the streaming path, on moto in two regions:
CloudTrail-shaped events (sandbox.emulation.controlplane) -> persist (lookups in the source) ->
state table -> replicator -> destination registry. moto runs with ``use_valid_cert`` so a
certificate's id is the SHA-256 of its DER in both regions, as in AWS."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from pipeline import persist
from pipeline.cloudtrail import parse_cloudtrail_event
from pipeline.errors import EventValidationError
from pipeline.events import corrective_event, parse_event
from pipeline.ingest import admit
from pipeline.kinds.policy import ARNS_REWRITTEN_METRIC, FOREIGN_ARNS_METRIC
from pipeline.model import Change, EntityKind, Origin
from pipeline.policyrewrite import DuplicateKeyError
from pipeline.state import Outcome
from pipeline.statetable import PersistResult
from sandbox.certificates import self_signed_pem
from sandbox.emulation.controlplane import cloudtrail_event
from sandbox.inprocess import DST, SRC, TABLE, LocalPipeline
from tests.pipeline.conftest import RegistryView, fixture_event
from tests.pipeline.test_persist import emf_values

T0 = 1_796_119_205  # epoch seconds
THING = "MyThing"  # the documented THING_EVENT fixture's thing


def document(region: str, topic: str = "telemetry") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["iot:Publish"],
                    "Resource": f"arn:aws:iot:{region}:123456789012:topic/{topic}",
                }
            ],
        }
    )


class Harness(LocalPipeline):
    """The in-process pipeline plus what a real account adds: CloudTrail events of the calls."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.dst = RegistryView(self.destination)
        self.events: list[dict[str, Any]] = []

    def call(self, name: str, request: dict[str, Any], *, at: int) -> dict[str, Any]:
        """Make the call in the source and record the CloudTrail event it produces."""
        method = getattr(self.source, _snake(name))
        response = method(**request)
        self.events.append(cloudtrail_event(name, _request(request), response, region=SRC, when=at))
        return dict(response)

    def persist_control(self, event: dict[str, Any]) -> PersistResult | None:
        result = parse_cloudtrail_event(event)
        assert isinstance(result, Change), result
        return self.persist_change(result)  # its lookups in the source, then the write

    def flush(self) -> list[PersistResult | None]:
        results = [self.persist_control(event) for event in self.events]
        self.events.clear()
        self.drain()
        return results


def _snake(name: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower().replace("_c_a", "_ca")


def _request(request: dict[str, Any]) -> dict[str, Any]:
    # CloudTrail names AttachThingPrincipal's principal header "principal", as the API does.
    return dict(request)


@pytest.fixture
def h(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.setenv("AWS_REGION", DST)
    monkeypatch.setenv("STATE_TABLE", TABLE)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "IotRegistryCrr")
    with mock_aws(config={"iot": {"use_valid_cert": True}}):
        harness = Harness()
        # The thing the certificate is attached to, through its registry event.
        harness.source.create_thing(thingName=THING)
        harness.persist_event(fixture_event("thing_event"))
        yield harness


def test_a_policy_is_written_with_regions_and_accounts_mapped_and_reported(
    aws_credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    source_arn = f"arn:aws:iot:{SRC}:123456789012:topic/telemetry"
    third = "arn:aws:iot:ap-south-1:123456789012:topic/elsewhere"
    policy = json.loads(document(SRC))
    policy["Statement"][0]["Resource"] = [source_arn, third]
    with mock_aws():
        # GIVEN a replicator configured with the destination account of the source's
        h = Harness(policy_account_map={"123456789012": "210987654321"})
        # WHEN a policy naming the source region and account (and a third region) is created
        h.call(
            "CreatePolicy", {"policyName": "device", "policyDocument": json.dumps(policy)}, at=T0
        )
        h.flush()
        # THEN the destination's copy names the destination region and account
        copy = h.dst.get_policy("device")
        assert copy is not None
        resources = json.loads(copy["document"])["Statement"][0]["Resource"]
        assert resources == [
            f"arn:aws:iot:{DST}:210987654321:topic/telemetry",
            "arn:aws:iot:ap-south-1:210987654321:topic/elsewhere",
        ]
    # AND one log line names the policy, what was rewritten and the foreign ARN
    out = capsys.readouterr().out
    lines = [r.__dict__ for r in caplog.records if getattr(r, "policy", None) == "device"]
    assert [(line["rewritten"], line["foreign"]) for line in lines] == [(2, [third])]
    assert lines[0]["rewrites"][0] == {
        "path": "Statement[0].Resource[0]",
        "before": source_arn,
        "after": resources[0],
    }
    # AND the invocation's metrics count them
    assert sum(emf_values(out, ARNS_REWRITTEN_METRIC)) == 2
    assert sum(emf_values(out, FOREIGN_ARNS_METRIC)) == 1


def provision(h: Harness) -> tuple[str, str]:
    """A device's certificate and policy, created and attached in the source."""
    cert = h.call(
        "RegisterCertificateWithoutCA",
        {"certificatePem": self_signed_pem(), "status": "ACTIVE"},
        at=T0,
    )
    h.call("CreatePolicy", {"policyName": "device", "policyDocument": document(SRC)}, at=T0 + 1)
    h.call("AttachPolicy", {"policyName": "device", "target": cert["certificateArn"]}, at=T0 + 2)
    h.call(
        "AttachThingPrincipal",
        {
            "thingName": THING,
            "principal": cert["certificateArn"],
            "thingPrincipalType": "EXCLUSIVE_THING",
        },
        at=T0 + 3,
    )
    return cert["certificateId"], cert["certificateArn"]


def test_created_and_attached_in_the_source_appear_active_and_attached(h: Harness) -> None:
    cert_id, _ = provision(h)
    results = h.flush()
    assert all(r is not None and r.outcome is Outcome.APPLIED for r in results)
    copy = h.dst.describe_certificate(cert_id)
    assert copy is not None and copy["status"] == "ACTIVE"  # the same id in both regions
    policy = h.dst.get_policy("device")
    assert policy is not None
    assert f"arn:aws:iot:{DST}:" in policy["document"] and SRC not in policy["document"]
    assert policy["targets"] == [copy["arn"]]
    assert h.dst.thing_principal(THING, cert_id) is not None


def test_a_revocation_reaches_the_destination_and_a_late_active_does_not_undo_it(
    h: Harness,
) -> None:
    cert_id, _ = provision(h)
    h.flush()
    # GIVEN the certificate deactivated, reactivated and revoked in the source
    h.call("UpdateCertificate", {"certificateId": cert_id, "newStatus": "INACTIVE"}, at=T0 + 10)
    h.call("UpdateCertificate", {"certificateId": cert_id, "newStatus": "ACTIVE"}, at=T0 + 11)
    h.call("UpdateCertificate", {"certificateId": cert_id, "newStatus": "REVOKED"}, at=T0 + 12)
    inactive, active, revoked = h.events
    # WHEN CloudTrail delivers the revocation first and the older calls late
    h.events[:] = [revoked, active, inactive]
    results = h.flush()
    # THEN the destination copy is REVOKED and the late calls were stale
    assert [r.outcome if r else None for r in results] == [
        Outcome.APPLIED,
        Outcome.STALE,
        Outcome.STALE,
    ]
    copy = h.dst.describe_certificate(cert_id)
    assert copy is not None and copy["status"] == "REVOKED"


def test_a_policy_change_propagates_with_its_arns_rewritten(h: Harness) -> None:
    provision(h)
    h.flush()
    h.call(
        "CreatePolicyVersion",
        {"policyName": "device", "policyDocument": document(SRC, "alerts"), "setAsDefault": True},
        at=T0 + 20,
    )
    h.flush()
    policy = h.dst.get_policy("device")
    assert policy is not None
    assert json.loads(policy["document"])["Statement"][0]["Resource"] == (
        f"arn:aws:iot:{DST}:123456789012:topic/alerts"
    )
    # AND SetDefaultPolicyVersion back to version 1 is looked up and replicated too
    h.call("SetDefaultPolicyVersion", {"policyName": "device", "policyVersionId": "1"}, at=T0 + 21)
    h.flush()
    policy = h.dst.get_policy("device")
    assert policy is not None and "topic/telemetry" in policy["document"]


def test_detach_and_delete_reach_the_destination(h: Harness) -> None:
    cert_id, cert_arn = provision(h)
    h.flush()
    h.call("DetachThingPrincipal", {"thingName": THING, "principal": cert_arn}, at=T0 + 30)
    h.call("DetachPolicy", {"policyName": "device", "target": cert_arn}, at=T0 + 31)
    h.call("UpdateCertificate", {"certificateId": cert_id, "newStatus": "INACTIVE"}, at=T0 + 32)
    h.call("DeleteCertificate", {"certificateId": cert_id}, at=T0 + 33)
    h.call("DeletePolicy", {"policyName": "device"}, at=T0 + 34)
    h.flush()
    assert h.dst.describe_certificate(cert_id) is None
    assert h.dst.get_policy("device") is None
    assert h.table.get(EntityKind.CERTIFICATE, cert_id).deleted  # type: ignore[union-attr]


def test_a_delete_delivered_before_the_detaches_still_converges(h: Harness) -> None:
    # The destination copy still has its attachments when the delete arrives: converge detaches
    # them first, as AWS requires (DeleteCertificate refuses an attached certificate).
    cert_id, cert_arn = provision(h)
    h.flush()
    h.call("DetachThingPrincipal", {"thingName": THING, "principal": cert_arn}, at=T0 + 30)
    h.call("DetachPolicy", {"policyName": "device", "target": cert_arn}, at=T0 + 31)
    h.call("UpdateCertificate", {"certificateId": cert_id, "newStatus": "INACTIVE"}, at=T0 + 32)
    h.call("DeleteCertificate", {"certificateId": cert_id}, at=T0 + 33)
    h.events.reverse()
    h.flush()
    assert h.dst.describe_certificate(cert_id) is None


def test_the_persist_handler_takes_cloudtrail_events(h: Harness) -> None:
    # GIVEN a call in the region whose persist handler runs (the harness's table region)
    response = h.destination.register_certificate_without_ca(
        certificatePem=self_signed_pem(), status="INACTIVE"
    )
    cert_id = response["certificateId"]
    now = dt.datetime.now(dt.UTC).timestamp()  # the handler bounds timestamps by the wall clock
    event = cloudtrail_event(
        "RegisterCertificateWithoutCA", {"status": "INACTIVE"}, response, region=DST, when=now
    )
    failed = cloudtrail_event(
        "DeleteCertificate",
        {"certificateId": cert_id},
        region=DST,
        when=now,
        error_code="CertificateStateException",
    )
    # WHEN the persist Lambda handler gets the EventBridge events
    output = persist.lambda_handler(event, None)
    skipped = persist.lambda_handler(failed, None)
    # THEN the certificate is stored with the status and PEM read from the registry
    assert output["outcome"] == "applied"
    assert output["key"] == f"CERT#{cert_id}"
    item = h.table.get(EntityKind.CERTIFICATE, cert_id)
    assert item is not None and item.state["status"] == "INACTIVE"
    assert item.state["pem"].startswith("-----BEGIN CERTIFICATE-----\n")
    # AND the failed call is skipped with its reason
    assert skipped["outcome"] == "skipped" and "failed_call" in skipped["reason"]


def test_a_call_from_another_region_is_refused(h: Harness) -> None:
    event = cloudtrail_event("DeletePolicy", {"policyName": "p"}, region=SRC, when=T0)
    with pytest.raises(EventValidationError, match="awsRegion"):
        persist.lambda_handler(event, None)


def test_registry_events_still_parse(h: Harness) -> None:
    # The dispatch on detail-type leaves registry events to their own parser.
    change = parse_event(fixture_event("thing_event"), region=SRC)
    assert change.kind is EntityKind.THING


# A document whose text says Deny and then Allow for one statement: Python's parser (like most)
# keeps the last value, so replicated through it the destination's copy allowed iot:* on *.
AMBIGUOUS = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:*",'
    '"Resource":"*","Effect":"Allow"}]}'
)


def test_a_policy_that_repeats_a_key_is_refused_at_persist_and_the_others_replicate(
    h: Harness,
) -> None:
    # GIVEN an ambiguous policy and an ordinary one created in the source
    h.call("CreatePolicy", {"policyName": "odd", "policyDocument": AMBIGUOUS}, at=T0)
    h.call("CreatePolicy", {"policyName": "device", "policyDocument": document(SRC)}, at=T0 + 1)
    odd, ordinary = h.events
    h.events.clear()
    # WHEN persist takes their CloudTrail events, THEN the ambiguous one is refused, a permanent
    # error naming the policy and the key (the failure queue gets it), nothing stored
    with pytest.raises(DuplicateKeyError, match=r"policy odd's document repeats the key "):
        h.persist_control(odd)
    assert h.table.get(EntityKind.POLICY, "odd") is None
    # AND the ordinary one is replicated as always
    result = h.persist_control(ordinary)
    assert result is not None and result.outcome is Outcome.APPLIED
    h.drain()
    assert h.dst.get_policy("odd") is None
    assert h.dst.get_policy("device") is not None


def test_the_error_names_the_repeated_key() -> None:
    event = cloudtrail_event(
        "CreatePolicy", {"policyName": "odd", "policyDocument": AMBIGUOUS}, {}, region=SRC, when=T0
    )
    with pytest.raises(DuplicateKeyError) as refused:
        parse_cloudtrail_event(event)
    assert refused.value.keys == ("Statement[0].Effect",)
    assert refused.value.policy == "odd"
    assert refused.value.field == "requestParameters.policyDocument"


def test_a_stored_document_that_repeats_a_key_goes_to_the_failure_queue_alone(h: Harness) -> None:
    # GIVEN the table holding an ambiguous document (written before persist refused them) and
    # an ordinary policy, delivered to the replicator in one batch
    for name, text in (("odd", AMBIGUOUS), ("device", document(SRC))):
        origin = Origin(SRC, T0 * 1000, f"e-{name}")
        h.table.apply(Change(EntityKind.POLICY, name, origin, fields={"document": text}))
    # WHEN the replicator converges them
    report = h.drain()
    # THEN the ambiguous one is a permanent failure naming the policy (the record's key) and the
    # repeated key, never written; the ordinary one is written
    (failure,) = h.failures.sent
    assert failure["key"] == "POLICY#odd"
    assert failure["errorType"] == "DuplicateKeyError"
    assert "repeats the key Statement[0].Effect" in failure["reason"]
    assert report.batch_item_failures == 0
    assert h.dst.get_policy("odd") is None
    assert h.dst.get_policy("device") is not None


def test_a_corrective_event_that_repeats_a_key_is_refused_at_admission() -> None:
    change = Change(
        EntityKind.POLICY,
        "odd",
        Origin(SRC, T0 * 1000, "fix-1"),
        fields={"document": AMBIGUOUS},
        corrective=True,
        sync="s",
    )
    with pytest.raises(DuplicateKeyError, match=r"Statement\[0\]\.Effect"):
        admit(corrective_event(change), region=SRC, now=T0 * 1000)
