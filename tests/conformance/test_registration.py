"""Whether a device certificate of the source registers in the destination
(``conformance.registration``, issue 27 item 1): with ``--aws`` AWS's answers are recorded and
compared with the recorded answers; on the sandbox, its answers must equal them, and with the
guide's 2022 rule turned on (``RegistryEmulation.shared_certificate_rule``) both are refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conformance import answers, registration
from conformance.onboarding_refusals import delete_certificate
from conformance.run import Run
from conformance.target import Target
from sandbox import emulation

SANDBOX_PIPELINE = False  # the questions ask the registries alone


def _no_certificates_left(target: Target) -> bool:
    return all(
        not target.iot(region).list_certificates()["certificates"]
        and not target.iot(region).list_ca_certificates()["certificates"]
        for region in (target.source_region, target.destination_region)
    )


@pytest.mark.conformance
def test_registration(
    conformance_target: Target, conformance_run: Run, record_registration: Any
) -> None:
    answered = registration.ask(
        conformance_target.source,
        conformance_target.destination,
        conformance_run.scope("registration"),
    )
    for question, answer in answered.items():
        record_registration(question, answer)
    assert set(answered) == set(registration.QUESTIONS)
    recorded = answers.load(answers.COMMITTED).get("registrations", [])
    contradictions = answers.compare_registrations(recorded, answered)
    assert [str(c) for c in contradictions] == []


@pytest.fixture
def shared_certificate_rule() -> Iterator[None]:
    """The sandbox's emulation applying the guide's 2022 rule, for one test."""
    world = emulation.active()
    assert world is not None
    world.shared_certificate_rule = True
    try:
        yield
    finally:
        world.shared_certificate_rule = False


def test_the_sandbox_refuses_both_under_the_2022_rule_and_removes_everything(
    conformance_target: Target, shared_certificate_rule: None
) -> None:
    answered = registration.ask(
        conformance_target.source,
        conformance_target.destination,
        Run.new().scope("registration"),
    )
    # The emulation's assumed code (sandbox.emulation.devicecertificates,
    # SHARED_CERTIFICATE_REFUSAL), with its reason for each.
    assert {q: a.code for q, a in answered.items()} == {
        "aws-issued": "InvalidRequestException",
        "signed-by-destination-ca": "InvalidRequestException",
    }
    assert "issued by AWS IoT" in answered["aws-issued"].message
    assert "is registered with AWS IoT" in answered["signed-by-destination-ca"].message
    assert _no_certificates_left(conformance_target)


def test_a_copy_already_registered_is_removed_and_the_question_asked_again(
    conformance_target: Target,
) -> None:
    """The deployed pipeline may register the source's certificate first (on an account it
    replicates what the question makes): the answer is AWS's to the question's own call."""
    source, destination = conformance_target.source, conformance_target.destination
    created = source.create_keys_and_certificate(setAsActive=False)
    destination.register_certificate_without_ca(
        certificatePem=created["certificatePem"], status="INACTIVE"
    )
    scope = Run.new().scope("registration")
    pem, certificate_id = created["certificatePem"], created["certificateId"]
    assert registration.register(destination, pem, certificate_id, scope).accepted
    # Still there at the last attempt: AWS's answer as it is, for the comparison to report.
    assert registration.register(destination, pem, certificate_id, scope, attempts=1).code == (
        "ResourceAlreadyExistsException"
    )
    for iot in (destination, source):
        delete_certificate(iot, certificate_id)
    assert _no_certificates_left(conformance_target)
