"""Device certificates, by id, with their status.

AWS publishes no registry events for certificates; their control-plane calls reach persist as
CloudTrail records (``pipeline.cloudtrail``), parsed here. AWS behaviours relied on (AWS IoT API
Reference, one page per action, unless said otherwise):
- RegisterCertificateWithoutCA registers a certificate from its PEM with a status (ACTIVE,
  INACTIVE or REVOKED); the certificate id is the SHA-256 of the DER, so the same in every
  region ("Register a client certificate": client certificates can be shared by accounts and
  regions, each registering its own copy; the id as a hash: stated by AWS Support per
  https://github.com/getmoto/moto/issues/3321, not in the API reference). The issuing CA need
  not be registered: the copy is in SNI_ONLY mode (CertificateDescription.certificateMode), and
  devices must send SNI, which AWS IoT requires of every TLS client anyway (developer guide,
  "Transport security").
- AWS may refuse to register a certificate shared from another region (an AWS-issued one, one
  of a CA registered there): recorded once, never a failure (``certificate_refusal``).
- A REVOKED certificate's status can't be changed (developer guide, "Revoke a client
  certificate"): a destination copy that is REVOKED while the source's is not cannot be repaired
  by UpdateCertificate; it is reported, never silently recreated.
- DeleteCertificate refuses a certificate that is ACTIVE or still has a policy or thing attached
  (DeleteConflictException / CertificateStateException), so a delete detaches and deactivates
  first; a refusal right after the detach is a wait (``pipeline.aws.WAIT_REFUSALS``).
- CertificateDescription.certificateId: fixed length 64, ``(0x)?[a-fA-F0-9]+``; UpdateCertificate's
  ``newStatus`` values PENDING_TRANSFER and PENDING_ACTIVATION are internal to AWS IoT,
  REGISTER_INACTIVE is deprecated: only ACTIVE, INACTIVE and REVOKED are replicated.
Private keys never pass through: the only fields read are named here (CreateKeysAndCertificate's
``keyPair`` is ignored).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import textwrap
from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from typing import Any

from pipeline.errors import AwsRequestError, EventValidationError, NotFoundError, PermanentError
from pipeline.iot import Iot
from pipeline.kinds.base import (
    Call,
    ConvergeError,
    Converging,
    EntitySpec,
    Kind,
    Listing,
    Reader,
    Result,
    label,
    text,
)
from pipeline.kinds.certificate_refusal import (
    CERTIFICATES_NOT_REGISTRABLE_METRIC,
    forget_refusal,
    is_registration_refusal,
    not_registrable,
)
from pipeline.kinds.parse import (
    ApiCall,
    CallParser,
    ParseResult,
    SkipCode,
    non_empty_text,
    skip,
)
from pipeline.model import Change, EntityKind, Item, Lookup

_CERTIFICATE_ID = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_PEM = re.compile(
    r"-----BEGIN CERTIFICATE-----(?P<body>[A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----", re.ASCII
)


class CertificateStatus(StrEnum):
    """The statuses we replicate (AWS IoT API Reference, UpdateCertificate)."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    REVOKED = "REVOKED"


def certificate_id(field_name: str, value: object) -> str:
    """A certificate id, validated, lowercase (the name of a certificate entity)."""
    if not isinstance(value, str):
        raise EventValidationError(field_name, "must be a certificate id")
    text_ = value[2:] if value.startswith("0x") else value
    if _CERTIFICATE_ID.fullmatch(text_) is None:
        raise EventValidationError(field_name, "must be 64 hexadecimal digits")
    return text_.lower()


def certificate_id_from_pem(pem: str) -> str:
    """The certificate id AWS IoT gives ``pem``: the SHA-256 of its DER encoding, lowercase hex
    (https://github.com/getmoto/moto/issues/3321, https://github.com/getmoto/moto/pull/6858;
    only a real account can confirm it: the README's known limits)."""
    match = _PEM.search(pem)
    if match is None:
        raise EventValidationError("certificatePem", "not a PEM certificate")
    try:
        der = base64.b64decode("".join(match["body"].split()), validate=True)
    except binascii.Error as exc:
        raise EventValidationError("certificatePem", "the PEM body is not base64") from exc
    return hashlib.sha256(der).hexdigest()


def canonical_pem(pem: str) -> str:
    """One PEM text per certificate: the DER re-encoded, 64 characters a line, ``\\n`` endings.

    The same certificate may come back from two regions with different line breaks; compared
    and stored in this form, only a different certificate differs.
    """
    match = _PEM.search(pem)
    if match is None:
        raise PermanentError("certificatePem is not a PEM certificate")
    der = base64.b64decode("".join(match["body"].split()), validate=True)
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


# --- CloudTrail calls ----------------------------------------------------------------------------


def _created(call: ApiCall) -> ParseResult:
    """CreateKeysAndCertificate, CreateCertificateFromCsr, RegisterCertificate(WithoutCA).

    The id comes from ``responseElements.certificateId``; for a registration without it, from the
    PEM in ``requestParameters``. The status and the PEM are always looked up: the request says
    the status only through optional, call-specific parameters (``setAsActive``, ``status``),
    and the PEM of a created certificate is only in the response.
    """
    response = call.response or {}
    cert_id: str | None = None
    if "certificateId" in response:
        cert_id = certificate_id("responseElements.certificateId", response["certificateId"])
    elif isinstance(call.request.get("certificatePem"), str):
        cert_id = certificate_id_from_pem(call.request["certificatePem"])
    if cert_id is None:
        return skip(
            call,
            SkipCode.NO_CERTIFICATE_ID,
            "the event names no certificate id (responseElements is null); "
            "the next reconciliation registers the certificate",
        )
    return Change(EntityKind.CERTIFICATE, cert_id, call.origin, lookup=Lookup())


def _updated(call: ApiCall) -> ParseResult:
    cert_id = certificate_id("requestParameters.certificateId", call.request.get("certificateId"))
    raw = call.request.get("newStatus")
    if not isinstance(raw, str):
        raise EventValidationError("requestParameters.newStatus", "must be a certificate status")
    try:
        status = CertificateStatus(raw)
    except ValueError:
        return skip(
            call,
            SkipCode.UNKNOWN_STATUS,
            f"status {raw!r} is not replicated (only ACTIVE, INACTIVE and REVOKED)",
        )
    # The status comes from the event; the PEM only if the table has none yet (persist decides).
    return Change(
        EntityKind.CERTIFICATE,
        cert_id,
        call.origin,
        fields={"status": status.value},
        lookup=Lookup(),
    )


def _deleted(call: ApiCall) -> ParseResult:
    cert_id = certificate_id("requestParameters.certificateId", call.request.get("certificateId"))
    return Change(EntityKind.CERTIFICATE, cert_id, call.origin, deleted=True)


# --- the pure decision ---------------------------------------------------------------------------


def certificate_calls(
    cert_id: str,
    desired: Mapping[str, Any] | None,
    actual: Mapping[str, Any] | None,
    ca_pem: str | None = None,
) -> list[Call]:
    """The calls that bring certificate ``cert_id`` from ``actual`` (``read``: ``{"status",
    "pem", "arn"}``, ``None`` when absent) to ``desired`` (``None``: deleted); ``ca_pem``: the
    destination's copy of the CA that signed it, ACTIVE there (``None``: none to register with).

    A delete needs ``actual["things"]`` and ``actual["policies"]`` (what is attached)."""
    if desired is None:
        if actual is None:
            return []
        calls = [
            Call("DetachThingPrincipal", {"thingName": thing, "principal": actual["arn"]})
            for thing in actual.get("things", [])
        ]
        calls += [
            Call("DetachPolicy", {"policyName": policy, "target": actual["arn"]})
            for policy in actual.get("policies", [])
        ]
        if actual.get("status") == "ACTIVE":
            calls.append(
                Call("UpdateCertificate", {"certificateId": cert_id, "newStatus": "INACTIVE"})
            )
        calls.append(Call("DeleteCertificate", {"certificateId": cert_id}))
        return calls
    status = desired.get("status")
    if actual is None:
        pem = desired.get("pem")
        if not pem or not status:
            raise ConvergeError(
                f"certificate {cert_id}: the state table has no PEM or status to register it "
                "with; the next reconciliation reads them from the source"
            )
        if ca_pem:
            # With its CA where the CA is registered (and ACTIVE) in the destination: the copy
            # takes the CA's id and mode, as the source's (docs/onboarding-kinds.md, fact 5:
            # a certificate of a CA registered there may be refused without it).
            return [
                Call(
                    "RegisterCertificate",
                    {"certificatePem": pem, "caCertificatePem": ca_pem, "status": status},
                )
            ]
        return [Call("RegisterCertificateWithoutCA", {"certificatePem": pem, "status": status})]
    if status is None or status == actual.get("status"):
        return []
    if actual.get("status") == "REVOKED":
        raise ConvergeError(
            f"certificate {cert_id} is REVOKED in the destination and {status} in the source; "
            "AWS IoT cannot change a revoked certificate's status (delete it in the destination "
            "to have it registered again)"
        )
    return [Call("UpdateCertificate", {"certificateId": cert_id, "newStatus": status})]


# --- the kind --------------------------------------------------------------------------------------


class Certificate(Kind):
    spec = EntitySpec(
        EntityKind.CERTIFICATE,
        frame="certificates",
        rank=7,  # after the CA certificate it may be registered with
        # ``pem`` (canonical, ``canonical_pem``) is what registers the copy; the id is its hash,
        # so two regions' PEMs of one id never differ: not compared. A status that differs is a
        # device that can (or cannot) connect: high.
        # ``ca``: the CA the source's registration names (its id, the same in every region), to
        # register the copy with where that CA is in the destination; carried, not compared: a
        # copy registered before its CA reached the destination, or while the CA was INACTIVE
        # there, stays registered without it (AWS cannot re-link a registered certificate).
        fields={"status": "high", "pem": "low", "ca": "low"},
        noun=("certificate", "certificates"),
        alias="cert",
        carried=frozenset({"ca"}),
        # Only DescribeCertificate returns them (CertificateDescription), one call per
        # certificate: read for the certificates a repair registers or rewrites, not listed.
        detailed=frozenset({"pem", "ca"}),
    )
    columns = (text("name"), label("status"), text("pem"), text("ca"))
    # ListCertificates' items (botocore's iot model, shape ``Certificate``: certificateArn,
    # certificateId, status, certificateMode, creationDate) carry the id, the status and the
    # ARN its thing principals are listed by; 250 a page (``pageSize`` 1..250).
    listing = Listing("ListCertificates", name="certificateId", details=("DescribeCertificate",))
    # 10 TPS each: the archived "AWS IoT Limits" page's throttling table (awsdocs/aws-iot-docs,
    # developerguide/limits-iot.md); [assumption] still the defaults of Service Quotas'
    # "ListCertificates API TPS" (L-97DA2C60) and "DescribeCertificate API TPS" (L-FC864907),
    # whose current defaults could not be read (README, known limits).
    quotas = {"ListCertificates": 10, "DescribeCertificate": 10}
    baseline_metrics = (CERTIFICATES_NOT_REGISTRABLE_METRIC,)
    api_calls: Mapping[str, CallParser] = {
        "CreateKeysAndCertificate": _created,
        "CreateCertificateFromCsr": _created,
        "RegisterCertificate": _created,
        "RegisterCertificateWithoutCA": _created,
        "UpdateCertificate": _updated,
        "DeleteCertificate": _deleted,
    }

    def check_name(self, field_name: str, name: object) -> str:
        return certificate_id(field_name, name)

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        field = f"state.{key}"
        if key == "status":
            if value not in {status.value for status in CertificateStatus}:
                raise EventValidationError(field, "must be ACTIVE, INACTIVE or REVOKED")
            return value
        if key == "ca":
            return None if value is None else certificate_id(field, value)
        return non_empty_text(field, value)

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        """``{"status", "pem", "arn", "ca"}`` (the PEM canonical); deleting, also ``things``
        and ``policies`` attached."""
        response = iot.maybe("DescribeCertificate", certificateId=name)
        if response is None:
            return None
        description = response["certificateDescription"]
        state = {
            "status": description["status"],
            "pem": canonical_pem(description["certificatePem"]),
            "arn": description["certificateArn"],
            "ca": description.get("caCertificateId") or None,
        }
        if deleting:
            arn = description["certificateArn"]
            state["things"] = [str(t) for t in iot.items("ListPrincipalThings", principal=arn)]
            state["policies"] = [
                str(p["policyName"]) for p in iot.items("ListAttachedPolicies", target=arn)
            ]
        return state

    def record(self, reader: Reader, listed: Mapping[str, Any]) -> dict[str, Any] | None:
        """``name``, ``status`` and ``arn`` (its thing principals are listed by that ARN), as
        ListCertificates has them; ``pem`` and ``ca`` are ``details``."""
        return {
            "name": listed["certificateId"],
            "status": listed["status"],
            "arn": listed["certificateArn"],
        }

    def details(self, reader: Reader, name: str) -> dict[str, Any] | None:
        """``pem`` (canonical) and ``ca`` (DescribeCertificate); ``None`` once deleted."""
        try:
            described = reader.call("DescribeCertificate", certificateId=name)
        except NotFoundError:
            return None
        description = described["certificateDescription"]
        return {
            "pem": canonical_pem(description["certificatePem"]),
            "ca": description.get("caCertificateId") or None,
        }

    def resolve(self, origin: Iot, change: Change) -> Change | None:
        """The PEM and status, read in the origin region (a status the event carries wins:
        it is the call's own); ``None`` when the certificate is gone and the event says no
        status."""
        if change.lookup is None:
            return change
        fields = dict(change.fields)
        described = self.read(origin, change.name)
        if described is None:
            if "status" not in fields:
                return None
        else:
            fields["pem"] = described["pem"]
            fields["ca"] = described["ca"]
            fields.setdefault("status", described["status"])
        return replace(change, fields=fields, lookup=None)

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        return certificate_calls(name, desired, actual)

    def converge(self, ctx: Converging, item: Item) -> Result:
        """The common path, but a certificate to register looks its CA up in the destination
        first (created from the local table when the table has it); a registration AWS refuses
        is recorded once, not failed (``certificate_refusal``), and the record dropped once it
        registers or is deleted."""
        desired = None if item.deleted else item.state
        actual = self.read(ctx.iot, item.name, deleting=item.deleted)
        registering = actual is None and desired is not None
        ca_pem = self._ca_pem(ctx, desired) if registering and desired else None
        calls = certificate_calls(item.name, desired, actual, ca_pem)
        try:
            ctx.iot.apply(calls)
        except AwsRequestError as error:
            if registering and is_registration_refusal(error):
                raise not_registrable(ctx, item.name, error) from error
            raise
        if registering or item.deleted:
            forget_refusal(ctx, item.name)
        if not calls:
            return Result("noop", "already as desired")
        verb = "deleted" if item.deleted else "created" if actual is None else "updated"
        return Result(verb, ", ".join(call.op for call in calls))

    def _ca_pem(self, ctx: Converging, desired: Mapping[str, Any]) -> str | None:
        """The destination's PEM of the certificate's CA when it is registered there and ACTIVE
        ("The CA certificate must be active before you can register any client certificates it
        has signed", AWS IoT Developer Guide, manage-your-CA-certs.html); else ``None``."""
        ca_id = desired.get("ca")
        if not ca_id:
            return None
        ca_kind = ctx.kind(EntityKind.CA_CERTIFICATE)
        found = ca_kind.read(ctx.iot, ca_id)
        if found is None:
            stored = ctx.table.get(EntityKind.CA_CERTIFICATE, ca_id)
            if stored is None or stored.deleted:
                return None  # a CA the tool does not replicate: registered without it
            ctx.ensure(EntityKind.CA_CERTIFICATE, ca_id)
            found = ca_kind.read(ctx.iot, ca_id)
        if found is None or found.get("status") != "ACTIVE":
            return None
        return str(found["pem"])


KIND = Certificate()
KINDS = (KIND,)
