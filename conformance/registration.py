"""Whether AWS registers, in the destination region, a device certificate of the source region
(issue 27 item 1; docs/onboarding-kinds.md, fact 5): two questions, each run source → destination.

- ``aws-issued``: a certificate AWS IoT issued in the source (CreateKeysAndCertificate, INACTIVE;
  the key is dropped), its PEM read back with DescribeCertificate as the pipeline reads it, then
  RegisterCertificateWithoutCA(certificatePem, status=INACTIVE) in the destination.
- ``signed-by-destination-ca``: a CA made here (``sandbox.certificates.CertificateAuthority``: the
  key never leaves the process) registered in the destination (RegisterCACertificate in SNI_ONLY
  mode, ACTIVE), a device certificate it signs registered in the source without a CA, then
  RegisterCertificateWithoutCA of it in the destination.

The developer guide's 2022 text says client certificates can be shared across Regions "only if
the client certificate is signed by a certificate authority (CA) that is NOT registered with AWS
IoT" (register-device-cert.html); today's page drops the qualifier. The answer (accepted, or AWS's
error code and message) is what ``pipeline.kinds.certificate_refusal`` relies on: recorded in the
account run's ``registrations`` and compared with ``conformance/recorded-answers.json``.

On an account the deployed pipeline replicates the source's certificate too, and may register it
in the destination before the question is asked: its copy is removed and the question asked again
(``ATTEMPTS``). Everything a question makes is removed at its end, whatever AWS answered:
certificates deactivated then deleted, the CA set INACTIVE then deleted. An interrupted run's CA
is found by its subject (``onboarding_refusals.remove_leftovers``); its certificates carry no name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from conformance.onboarding_refusals import delete_ca, delete_certificate
from conformance.probing import Answer, answer_of
from conformance.run import Scope
from sandbox.certificates import CertificateAuthority

# AWS IoT API Reference, RegisterCertificateWithoutCA (botocore iot 2015-05-28 model: the
# request takes certificatePem and status; errors include ResourceAlreadyExistsException,
# InvalidRequestException, CertificateValidationException).
OPERATION = "RegisterCertificateWithoutCA"
ALREADY_REGISTERED = "ResourceAlreadyExistsException"
ATTEMPTS = 3  # the pipeline registers a certificate once per change: one retry suffices, 3 bound it
STATUS = "INACTIVE"  # no device can connect with a copy the probe made


def register(
    destination: Any, pem: str, certificate_id: str, scope: Scope, attempts: int = ATTEMPTS
) -> Answer:
    """RegisterCertificateWithoutCA of ``pem`` in the destination; a copy already there (the
    pipeline's) is removed and the call made again. The id of a certificate is the same in every
    region (the SHA-256 of its DER: pipeline.kinds.certificate's docstring)."""
    answer = Answer(ALREADY_REGISTERED)
    for _ in range(attempts):
        answer = answer_of(
            lambda: destination.register_certificate_without_ca(certificatePem=pem, status=STATUS),
            scope,
        )
        if answer.code != ALREADY_REGISTERED:
            return answer
        delete_certificate(destination, certificate_id)
    return answer


@contextlib.contextmanager
def _removed(*removals: Callable[[], None]) -> Iterator[None]:
    """Run every removal at the end, in order, whatever happened."""
    try:
        yield
    finally:
        for remove in removals:
            remove()


def aws_issued(source: Any, destination: Any, scope: Scope) -> Answer:
    """An AWS-issued certificate of the source registered without a CA in the destination."""
    certificate_id: str = source.create_keys_and_certificate(setAsActive=False)["certificateId"]
    with _removed(
        lambda: delete_certificate(destination, certificate_id),
        lambda: delete_certificate(source, certificate_id),
    ):
        # AWS IoT API Reference, DescribeCertificate: certificateDescription.certificatePem.
        pem = source.describe_certificate(certificateId=certificate_id)["certificateDescription"][
            "certificatePem"
        ]
        return register(destination, pem, certificate_id, scope)


def signed_by_destination_ca(source: Any, destination: Any, scope: Scope) -> Answer:
    """A certificate of a CA registered in the destination, registered without a CA in the
    source, then without a CA in the destination."""
    authority = CertificateAuthority.new(scope("registration-ca"))
    # AWS IoT API Reference, RegisterCACertificate: "If the verificationCertificate field is not
    # provided, set certificateMode to be SNI_ONLY" (botocore model, certificateMode).
    ca_id: str = destination.register_ca_certificate(
        caCertificate=authority.pem, certificateMode="SNI_ONLY", setAsActive=True, tags=scope.tags
    )["certificateId"]
    pem = authority.issue(scope("registration-device"))
    with _removed(lambda: delete_ca(destination, ca_id)):
        certificate_id: str = source.register_certificate_without_ca(
            certificatePem=pem, status=STATUS
        )["certificateId"]
        with _removed(
            lambda: delete_certificate(destination, certificate_id),
            lambda: delete_certificate(source, certificate_id),
        ):
            return register(destination, pem, certificate_id, scope)


Question = Callable[[Any, Any, Scope], Answer]
QUESTIONS: dict[str, Question] = {
    "aws-issued": aws_issued,
    "signed-by-destination-ca": signed_by_destination_ca,
}


def ask(source: Any, destination: Any, scope: Scope) -> dict[str, Answer]:
    """Both questions, source → destination (each removes what it made)."""
    return {name: question(source, destination, scope) for name, question in QUESTIONS.items()}
