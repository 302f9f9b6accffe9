"""A device certificate the destination region refuses to register (issue 27 item 1).

AWS may refuse to register a certificate in another Region: by the developer guide's 2022 text,
client certificates "can be shared by AWS accounts and Regions, but only if the client
certificate is signed by a certificate authority (CA) that is NOT registered with AWS IoT", and
"The Amazon Root CA is automatically registered with AWS IoT" (register-device-cert.html): so
AWS-issued certificates (CreateKeysAndCertificate, CreateCertificateFromCsr, fleet provisioning)
and certificates of a CA registered in the destination. Today's page drops the qualifier; which
refusal, and with which code, only an account settles (docs/onboarding-kinds.md, fact 5;
README, known limits). [assumption] Such a refusal is one of the two codes botocore's iot model
lists for RegisterCertificateWithoutCA and RegisterCertificate that are neither a conflict, a
state, a throttle nor a fault: InvalidRequestException ("The request is not valid") and
CertificateValidationException ("The certificate is invalid").

A refusal is not retried and not a failure-queue entry: the replicator records it once, as an
``UnregistrableCertificate`` in the destination's replica of the state table, with one log line
and one count of ``CERTIFICATES_NOT_REGISTRABLE_METRIC`` (an alarm in infra/destination.yaml);
the record is dropped once the certificate registers there or is deleted in the source. The
three-way audit (``reconcile.explain``) reports the certificate and its links as a class of
their own (``not_registrable``), which the plan does not repair, and readiness names the devices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from pipeline.errors import AwsRequestError, EventValidationError, NotRegistrableError
from pipeline.kinds.base import Converging
from pipeline.model import RegionalRecord
from pipeline.statetable import StateTable

logger = Logger(service="iot-crr-replicator")

CERTIFICATES_NOT_REGISTRABLE_METRIC = "CertificatesNotRegistrable"
REGISTERING = frozenset({"RegisterCertificateWithoutCA", "RegisterCertificate"})
# [assumption] the codes of a refusal to register a certificate shared from another Region
# (botocore's iot model, the two operations' error shapes; see the module's docstring).
REFUSAL_CODES = frozenset({"InvalidRequestException", "CertificateValidationException"})
# What the operator can do about it (the report, readiness and the log say it).
OPERATOR_FIX = (
    "give the device a certificate of the destination region (fleet provisioning there, "
    "https://docs.aws.amazon.com/iot/latest/developerguide/provision-wo-cert.html), or sign "
    "device certificates with a CA of your own registered in both regions; nothing to repair "
    "until then"
)


def is_registration_refusal(error: AwsRequestError) -> bool:
    """Whether ``error`` is AWS refusing to register a certificate (not a wait, not a fault)."""
    return error.operation in REGISTERING and error.code in REFUSAL_CODES


@dataclass(frozen=True)
class UnregistrableCertificate(RegionalRecord):
    """Certificate ``certificate_id`` refused by ``region``'s registry: AWS's ``code`` and
    ``message``, when (``at``: epoch seconds). Kept in the region's replica of the state table
    (``StateTable.put_record``)."""

    region: str
    certificate_id: str
    code: str
    message: str
    at: int

    PREFIX = "REFUSED#CERTIFICATE#"  # every region's

    @property
    def key(self) -> str:
        return self.key_for(self.region, self.certificate_id)

    @property
    def reason(self) -> str:
        """``cannot be registered in <region>: <code>: <AWS's message>``."""
        return f"cannot be registered in {self.region}: {self.code}: {self.message}"

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": "certificate_not_registrable",
            "region": self.region,
            "name": self.certificate_id,
            "code": self.code,
            "message": self.message,
            "at": self.at,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> UnregistrableCertificate:
        """Strict: each attribute of its type, else ``EventValidationError`` naming it."""
        values = {key: record.get(key) for key in ("region", "name", "code", "message")}
        for key, value in values.items():
            if not isinstance(value, str) or (key != "message" and not value):
                raise EventValidationError(
                    f"refused certificate {key}", f"unreadable {value!r:.60}"
                )
        at = record.get("at")
        if type(at) is not int:
            raise EventValidationError("refused certificate at", f"unreadable {at!r:.60}")
        return cls(
            str(values["region"]),
            str(values["name"]),
            str(values["code"]),
            str(values["message"]),
            at,
        )


def not_registrable(
    ctx: Converging, certificate_id: str, error: AwsRequestError
) -> NotRegistrableError:
    """Record AWS's refusal once (a record, a log line, a count; refused again, nothing new);
    the error to raise, which the replicator takes as an outcome, for the certificate and for
    the attachments that converge it as their dependency (none is retried or queued)."""
    key = UnregistrableCertificate.key_for(ctx.region, certificate_id)
    known = ctx.table.get_record(UnregistrableCertificate, key)
    if known is None:
        record = UnregistrableCertificate(
            ctx.region, certificate_id, error.code, error.aws_message, int(ctx.clock())
        )
        ctx.table.put_record(record)
        ctx.count(CERTIFICATES_NOT_REGISTRABLE_METRIC, 1)
        logger.warning(
            f"certificate {record.reason}: {OPERATOR_FIX}",
            extra={"certificate": certificate_id, "code": error.code},
        )
        known = record
    return NotRegistrableError(f"certificate {certificate_id} {known.reason}")


def refusals(table: StateTable, region: str) -> dict[str, str]:
    """Certificate id -> why ``region``'s registry refused it (its readable records)."""
    return {
        record.certificate_id: record.reason
        for record in table.records(
            UnregistrableCertificate, UnregistrableCertificate.prefix(region)
        )
        if isinstance(record, UnregistrableCertificate)
    }


def forget_refusal(ctx: Converging, certificate_id: str) -> None:
    """Drop the record of a refusal, if there is one (registered since, or deleted)."""
    key = UnregistrableCertificate.key_for(ctx.region, certificate_id)
    if ctx.table.get_record(UnregistrableCertificate, key) is not None:
        ctx.table.delete_record(key)
