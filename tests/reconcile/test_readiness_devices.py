"""Readiness verdicts: a device's facts in both regions in, ready or the reasons out (pure)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from pipeline.policyrewrite import ArnMapping
from reconcile.readiness.devices import (
    Answer,
    Certificate,
    DeviceFacts,
    ProbeError,
    Probes,
    Question,
    RegionFacts,
    failing,
    policies_to_read,
    verdict,
)
from reconcile.readiness.policydiff import source_arns, statement_differences

SRC, DST, ACCOUNT = "us-east-1", "eu-west-1", "123456789012"
CERT = "ab" * 32
MAPPING = ArnMapping({SRC: DST})
CONNECT = Question("CONNECT", "client/dev-1")
PUBLISH = Question("PUBLISH", "topic/telemetry/dev-1")


def _document(region: str, topic: str = "telemetry", deny: bool = False) -> str:
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {
            "Sid": "Telemetry",
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"arn:aws:iot:{region}:{ACCOUNT}:topic/{topic}/*",
        },
    ]
    if deny:
        statements.append({"Effect": "Deny", "Action": "iot:Publish", "Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _certificate(region: str, status: str = "ACTIVE") -> Certificate:
    return Certificate(CERT, f"arn:aws:iot:{region}:{ACCOUNT}:cert/{CERT}", status)


def _allowed(question: Question, *policies: str) -> Answer:
    return Answer(question, "ALLOWED", allowed_by=policies)


def _denied(question: Question, *evaluated: str) -> Answer:
    return Answer(question, "IMPLICIT_DENY", evaluated=evaluated)


def _facts(destination: RegionFacts | None = None, **source: Any) -> DeviceFacts:
    src = RegionFacts(
        SRC,
        thing_exists=True,
        attached=True,
        certificate=_certificate(SRC),
        answers=(_allowed(CONNECT, "device"), _allowed(PUBLISH, "device")),
        policies={"device": _document(SRC)},
    )
    dst = RegionFacts(
        DST,
        thing_exists=True,
        attached=True,
        certificate=_certificate(DST),
        answers=(_allowed(CONNECT, "device"), _allowed(PUBLISH, "device")),
    )
    return DeviceFacts(
        "dev-1", CERT, (CONNECT, PUBLISH), replace(src, **source), destination or dst
    )


def _dst(**changes: Any) -> RegionFacts:
    return replace(_facts().destination, **changes)


def test_a_device_allowed_the_same_in_both_regions_is_ready() -> None:
    result = verdict(_facts(), MAPPING)
    assert result.ready
    assert result.reasons == ()
    assert [(a.source, a.destination) for a in result.actions] == [("ALLOWED", "ALLOWED")] * 2


def test_what_the_source_denies_need_not_be_allowed_in_the_destination() -> None:
    # Readiness is "every action allowed in the source is allowed in the destination"; a revoked
    # device (denied everything in the source) is ready however the destination answers.
    denied = (_denied(CONNECT, "device"), _denied(PUBLISH, "device"))
    facts = _facts(_dst(answers=denied), answers=denied)
    assert verdict(facts, MAPPING).ready
    assert failing(facts) == ()


def test_a_missing_thing_and_certificate_are_named_with_the_fix() -> None:
    facts = _facts(_dst(thing_exists=False, attached=False, certificate=None, answers=()))
    result = verdict(facts, MAPPING)
    assert not result.ready
    assert result.reasons[0].startswith("thing dev-1 is missing in eu-west-1")
    assert result.reasons[1].startswith(f"certificate {CERT} is missing in eu-west-1")
    assert len(result.reasons) == 2
    assert [a.destination for a in result.actions] == [None, None]


@pytest.mark.parametrize(
    ("status", "fix"),
    [
        ("INACTIVE", f"aws iot update-certificate --certificate-id {CERT} --new-status ACTIVE"),
        ("REVOKED", "cannot be reactivated"),
    ],
)
def test_a_certificate_not_active_in_the_destination(status: str, fix: str) -> None:
    denied = (_denied(CONNECT, "device"), _denied(PUBLISH, "device"))
    facts = _facts(_dst(certificate=_certificate(DST, status), answers=denied))
    (reason, *others) = verdict(facts, MAPPING).reasons
    assert reason.startswith(f"certificate {CERT} is {status} in eu-west-1 (ACTIVE in us-east-1)")
    assert fix in reason
    # The policies agree, so nothing else is blamed.
    assert others == []


def test_a_certificate_not_attached_to_its_thing() -> None:
    denied = (_allowed(CONNECT, "device"), _denied(PUBLISH, "device"))
    facts = _facts(_dst(attached=False, answers=denied))
    reasons = verdict(facts, MAPPING).reasons
    assert reasons[0].startswith(f"certificate {CERT} is not attached to thing dev-1 in eu-west-1")
    assert "aws iot attach-thing-principal --thing-name dev-1" in reasons[0]


def test_no_policy_in_the_destination() -> None:
    facts = _facts(_dst(answers=(_denied(CONNECT), _denied(PUBLISH))))
    (reason,) = verdict(facts, MAPPING).reasons
    assert reason.startswith(f"no policy applies to certificate {CERT} in eu-west-1")
    assert "(us-east-1: device)" in reason


def test_a_policy_not_attached_in_the_destination() -> None:
    facts = _facts(
        _dst(
            answers=(_allowed(CONNECT, "other"), _denied(PUBLISH, "other")),
            policies={"device": _document(DST), "other": "{}"},
        )
    )
    (reason,) = verdict(facts, MAPPING).reasons
    assert reason.startswith("policy device is not attached in eu-west-1 to certificate")
    assert "or to a group of thing dev-1" in reason


def test_a_policy_missing_in_the_destination() -> None:
    facts = _facts(
        _dst(
            answers=(_allowed(CONNECT, "other"), _denied(PUBLISH, "other")),
            policies={"device": None, "other": "{}"},
        )
    )
    (reason,) = verdict(facts, MAPPING).reasons
    assert (
        reason == "policy device is missing in eu-west-1: iot-crr reconcile --apply replicates it"
    )


def test_a_policy_that_differs_names_the_statement() -> None:
    facts = _facts(
        _dst(
            answers=(_allowed(CONNECT, "device"), _denied(PUBLISH, "device")),
            policies={"device": _document(DST, topic="other")},
        )
    )
    (reason,) = verdict(facts, MAPPING).reasons
    assert reason.startswith(
        "policy device differs in eu-west-1 from us-east-1's (rewritten for eu-west-1): "
        "statement 1 (Telemetry): Resource "
        '"arn:aws:iot:eu-west-1:123456789012:topic/telemetry/*" expected, '
        '"arn:aws:iot:eu-west-1:123456789012:topic/other/*" found'
    )


def test_a_policy_naming_the_source_region_is_named_with_its_arn() -> None:
    # Copied by hand, not rewritten: it differs from the rewritten source and names us-east-1.
    facts = _facts(
        _dst(
            answers=(_allowed(CONNECT, "device"), _denied(PUBLISH, "device")),
            policies={"device": _document(SRC)},
        )
    )
    reasons = verdict(facts, MAPPING).reasons
    assert len(reasons) == 2
    assert reasons[0].startswith("policy device differs in eu-west-1")
    assert reasons[1] == (
        "policy device in eu-west-1 names arn:aws:iot:us-east-1:123456789012:topic/telemetry/*, "
        "a resource of us-east-1: it grants nothing in eu-west-1 (replicated policies are "
        "rewritten for eu-west-1)"
    )


def test_an_explicit_deny_names_its_policy() -> None:
    deny = Answer(PUBLISH, "EXPLICIT_DENY", denied_by=("device",))
    facts = _facts(
        _dst(
            answers=(_allowed(CONNECT, "device"), deny),
            policies={"device": _document(DST, deny=True)},
        )
    )
    reasons = verdict(facts, MAPPING).reasons
    assert reasons[0] == (
        "PUBLISH topic/telemetry/dev-1 is explicitly denied in eu-west-1 by device (an explicit "
        "deny wins over any allow)"
    )
    assert reasons[1].startswith(
        "policy device differs in eu-west-1 from us-east-1's (rewritten for eu-west-1): "
        "statement 2: extra (the source has no such one)"
    )
    assert len(reasons) == 2


def test_a_deny_only_the_destination_applies_is_named() -> None:
    deny = Answer(PUBLISH, "EXPLICIT_DENY", allowed_by=("device",), denied_by=("lockdown",))
    facts = _facts(
        _dst(
            answers=(_allowed(CONNECT, "device"), deny),
            policies={"device": _document(DST), "lockdown": _document(DST, deny=True)},
        )
    )
    reasons = verdict(facts, MAPPING).reasons
    assert reasons == (
        "PUBLISH topic/telemetry/dev-1 is explicitly denied in eu-west-1 by lockdown (an explicit "
        "deny wins over any allow)",
        "policy lockdown applies in eu-west-1 and not in us-east-1: detach it there, or remove "
        "its Deny statement",
    )


def test_a_denial_nothing_explains_says_so_rather_than_guess() -> None:
    facts = _facts(
        _dst(
            answers=(_allowed(CONNECT, "device"), _denied(PUBLISH, "device")),
            policies={"device": _document(DST)},
        )
    )
    (reason,) = verdict(facts, MAPPING).reasons
    assert reason.startswith(
        "PUBLISH topic/telemetry/dev-1 is allowed in us-east-1 and IMPLICIT_DENY in eu-west-1"
    )


def test_the_policies_read_are_those_of_the_failing_actions() -> None:
    facts = _facts(_dst(answers=(_allowed(CONNECT, "device"), _denied(PUBLISH, "device", "other"))))
    assert policies_to_read(facts) == ({"device"}, {"device", "other"})
    assert policies_to_read(_facts()) == (set(), set())
    # Without answers in the destination (no certificate there) no document explains more.
    no_certificate = _facts(_dst(certificate=None, answers=()))
    assert policies_to_read(no_certificate) == ({"device"}, set())


def test_probes_ask_connect_then_each_topic_with_the_thing_named() -> None:
    probes = Probes("{thing}-client", publish=("t/{thing}",), subscribe=("c/{thing}/#",))
    assert probes.questions("dev-1") == (
        Question("CONNECT", "client/dev-1-client"),
        Question("PUBLISH", "topic/t/dev-1"),
        Question("SUBSCRIBE", "topicfilter/c/dev-1/#"),
    )
    assert probes.questions("dev-1")[1].arn("aws", DST, ACCOUNT) == (
        f"arn:aws:iot:{DST}:{ACCOUNT}:topic/t/dev-1"
    )


def test_probes_fit_one_test_authorization_call() -> None:
    Probes(publish=tuple(f"t/{i}" for i in range(9)))
    with pytest.raises(ProbeError, match="at most 10"):
        Probes(publish=tuple(f"t/{i}" for i in range(10)))


def test_statements_equal_after_the_rewrite_do_not_differ() -> None:
    assert statement_differences(_document(SRC), _document(DST), MAPPING) == []
    # Formatting and key order are not differences.
    reordered = json.dumps(json.loads(_document(DST)), sort_keys=True, indent=4)
    assert statement_differences(_document(SRC), reordered, MAPPING) == []


def test_a_document_that_repeats_a_key_is_named_not_compared() -> None:
    # json.loads would keep the last "Effect" and call the two documents equal.
    twice = _document(DST).replace('"Effect": "Allow"', '"Effect": "Deny", "Effect": "Allow"', 1)
    (difference,) = statement_differences(_document(SRC), twice, MAPPING)
    assert (
        str(difference) == "cannot compare: the destination's document repeats Statement[0].Effect"
    )


def test_source_arns_name_the_source_region_or_a_mapped_account() -> None:
    assert source_arns(_document(DST), SRC, {}) == []
    assert source_arns(_document(SRC), SRC, {}) == [
        f"arn:aws:iot:{SRC}:{ACCOUNT}:topic/telemetry/*"
    ]
    assert source_arns(_document(DST), SRC, {ACCOUNT: "999999999999"}) == [
        f"arn:aws:iot:{DST}:{ACCOUNT}:topic/telemetry/*"
    ]


def test_a_certificate_the_destination_refused_is_named_with_awss_reason() -> None:
    # Issue 27 item 1: the replicator's record of the refusal (pipeline.kinds.certificate_refusal)
    # says why, and registering it again would not help.
    refused = f"cannot be registered in {DST}: InvalidRequestException: issued by AWS IoT"
    facts = replace(_facts(_dst(certificate=None, answers=(), attached=False)), refused=refused)
    result = verdict(facts, MAPPING)
    assert not result.ready
    assert result.reasons[0].startswith(f"certificate {CERT} {refused}: ")
    assert "fleet provisioning" in result.reasons[0]
    assert "reconcile --apply" not in result.reasons[0]
