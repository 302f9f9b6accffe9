"""End to end on the sandbox: `iot-crr readiness` over devices replicated by the pipeline, then
broken by hand in the destination, one way each; and the account checks."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from reconcile.cli import main
from reconcile.context import Factory
from sandbox.certificates import self_signed_pem
from sandbox.stack import Sandbox

from .conftest import DESTINATION, SOURCE

ACCOUNT = "123456789012"


def _policy(region: str, topic: str = "telemetry", effect: str = "Allow") -> str:
    thing = "${iot:Connection.Thing.ThingName}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": effect,
                    "Action": "iot:Connect",
                    "Resource": f"arn:aws:iot:{region}:{ACCOUNT}:client/{thing}",
                },
                {
                    "Effect": effect,
                    "Action": "iot:Publish",
                    "Resource": f"arn:aws:iot:{region}:{ACCOUNT}:topic/{topic}/{thing}",
                },
            ],
        }
    )


def _readiness(sandbox: Sandbox, *args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        main,
        [
            "readiness",
            "--source-region",
            SOURCE,
            "--target-region",
            DESTINATION,
            "--publish",
            "telemetry/{thing}",
            "--format",
            "json",
            *args,
        ],
        obj=Factory(client=sandbox.client, show_progress=False),
    )
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


# The ways a device breaks in the destination, and the reason readiness gives first.
BROKEN = {
    "d-inactive": "certificate {cert} is INACTIVE in eu-west-1 (ACTIVE in us-east-1)",
    "d-cert-missing": "certificate {cert} is missing in eu-west-1",
    "d-thing-missing": "thing d-thing-missing is missing in eu-west-1",
    "d-detached": "certificate {cert} is not attached to thing d-detached in eu-west-1",
    "d-no-policy": "no policy applies to certificate {cert} in eu-west-1 (us-east-1: device)",
    "d-policy-differs": "policy p-differs differs in eu-west-1 from us-east-1's (rewritten for "
    "eu-west-1): statement 1: Resource",
    "d-source-arn": "policy p-source-arn differs in eu-west-1",
    "d-deny": "CONNECT client/d-deny is explicitly denied in eu-west-1 by lockdown",
}


def test_readiness_names_each_device_broken_in_the_destination(sandbox: Sandbox) -> None:
    src, dst = sandbox.iot(SOURCE), sandbox.iot(DESTINATION)
    # GIVEN devices with certificates and policies in the source, replicated by the pipeline
    policies = {"d-policy-differs": "p-differs", "d-source-arn": "p-source-arn"}
    src.create_policy(policyName="device", policyDocument=_policy(SOURCE))
    for name in set(policies.values()):
        src.create_policy(policyName=name, policyDocument=_policy(SOURCE))
    certificates = {}
    for thing in ["d-ok", *BROKEN]:
        src.create_thing(thingName=thing)
        cert = src.register_certificate_without_ca(
            certificatePem=self_signed_pem(thing), status="ACTIVE"
        )
        src.attach_policy(policyName=policies.get(thing, "device"), target=cert["certificateArn"])
        src.attach_thing_principal(thingName=thing, principal=cert["certificateArn"])
        certificates[thing] = cert["certificateId"]
    src.create_thing(thingName="no-certificate")
    drained = sandbox.drain(timeout=120)
    assert drained.executions.get("SUCCEEDED") == drained.events_delivered, sandbox.failure_reasons

    # THEN every device is ready: exit 0
    code, ready = _readiness(sandbox)
    assert code == 0, ready
    assert ready["summary"] == {
        "devices": 9,
        "ready": 9,
        "not_ready": 0,
        "checks": 9,
        "checks_failed": 0,
    }
    device = next(d for d in ready["devices"] if d["thing"] == "d-ok")
    assert device["actions"] == [
        {
            "action": "CONNECT",
            "resource": "client/d-ok",
            "source": "ALLOWED",
            "destination": "ALLOWED",
        },
        {
            "action": "PUBLISH",
            "resource": "topic/telemetry/d-ok",
            "source": "ALLOWED",
            "destination": "ALLOWED",
        },
    ]

    # WHEN each is broken by hand in the destination, one way each
    def arn(thing: str) -> str:
        return f"arn:aws:iot:{DESTINATION}:{ACCOUNT}:cert/{certificates[thing]}"

    dst.update_certificate(certificateId=certificates["d-inactive"], newStatus="INACTIVE")
    dst.detach_policy(policyName="device", target=arn("d-cert-missing"))
    dst.detach_thing_principal(thingName="d-cert-missing", principal=arn("d-cert-missing"))
    dst.update_certificate(certificateId=certificates["d-cert-missing"], newStatus="INACTIVE")
    dst.delete_certificate(certificateId=certificates["d-cert-missing"])
    dst.detach_thing_principal(thingName="d-thing-missing", principal=arn("d-thing-missing"))
    dst.delete_thing(thingName="d-thing-missing")
    dst.detach_thing_principal(thingName="d-detached", principal=arn("d-detached"))
    dst.detach_policy(policyName="device", target=arn("d-no-policy"))
    dst.create_policy_version(
        policyName="p-differs", policyDocument=_policy(DESTINATION, "other"), setAsDefault=True
    )
    dst.create_policy_version(
        policyName="p-source-arn", policyDocument=_policy(SOURCE), setAsDefault=True
    )
    dst.create_policy(policyName="lockdown", policyDocument=_policy(DESTINATION, effect="Deny"))
    dst.attach_policy(policyName="lockdown", target=arn("d-deny"))

    # THEN readiness exits 1 and names what to fix for each, and only those
    code, report = _readiness(sandbox)
    assert code == 1
    verdicts = {d["thing"]: d for d in report["devices"]}
    assert verdicts["d-ok"]["ready"]
    assert {t for t, d in verdicts.items() if not d["ready"]} == set(BROKEN)
    for thing, reason in BROKEN.items():
        first = verdicts[thing]["reasons"][0]
        assert first.startswith(reason.format(cert=certificates[thing])), (thing, first)
    assert any(
        r.startswith(f"policy p-source-arn in eu-west-1 names arn:aws:iot:{SOURCE}:")
        for r in verdicts["d-source-arn"]["reasons"]
    )
    missing = verdicts["d-cert-missing"]["actions"]
    assert [a["destination"] for a in missing] == [None, None]
    assert report["skipped"] == []
    # One TestAuthorization per device and region, whatever the number of questions.
    assert report["calls"][SOURCE]["TestAuthorization"] == 9
    assert report["calls"][DESTINATION]["TestAuthorization"] == 8  # one certificate is gone

    # AND --thing checks only the things named, one without a certificate skipped
    code, named = _readiness(sandbox, "--thing", "d-ok", "--thing", "no-certificate")
    assert code == 0
    assert [d["thing"] for d in named["devices"]] == ["d-ok"]
    assert named["skipped"] == ["thing no-certificate: no certificate attached"]


def test_readiness_fails_account_checks_the_destination_lacks(sandbox: Sandbox) -> None:
    src = sandbox.iot(SOURCE)
    # GIVEN a topic rule and a role alias in the source only
    src.create_topic_rule(
        ruleName="telemetry_in",
        topicRulePayload={
            "sql": "SELECT * FROM 'telemetry/#'",
            "actions": [{"republish": {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/r", "topic": "x"}}],
            "ruleDisabled": False,
        },
    )
    src.create_role_alias(roleAlias="uploads", roleArn=f"arn:aws:iam::{ACCOUNT}:role/uploads")

    code, report = _readiness(sandbox)

    assert code == 1
    assert report["devices"] == []
    failed = [(c["check"], c["detail"].split(":")[0]) for c in report["checks"] if not c["ok"]]
    assert failed == [
        ("role aliases", "role alias uploads is missing"),
        ("topic rules", "rule telemetry_in (SELECT * FROM 'telemetry/#') is missing"),
    ]


def test_readiness_names_a_quota_lower_in_the_destination(sandbox: Sandbox) -> None:
    from sandbox.emulation.servicequotas import apply_quota, clear_quotas

    # GIVEN an IoT Core quota increased in the source only (Service Quotas' applied values)
    apply_quota(SOURCE, "L-CONNECT", "Connect requests per second per account", 500)
    try:
        code, report = _readiness(sandbox)
    finally:
        clear_quotas(SOURCE)
    # THEN a warning names it with its value in each region; devices are not held by it
    failed = [(c["check"], c["level"], c["detail"]) for c in report["checks"] if not c["ok"]]
    assert failed == [
        (
            "quotas",
            "warning",
            f"Connect requests per second per account (L-CONNECT) is 500 in {SOURCE}, "
            f"not listed in {DESTINATION}",
        )
    ]
    assert code == 0  # a warning: every device is ready
