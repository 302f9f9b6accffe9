"""Device certificates registered with a CA, or without one (moto 5.2 links a CA only on
identical PEM text and checks nothing; ``MOTO_GAPS``).

Sources: AWS IoT API Reference (RegisterCertificate, RegisterCertificateWithoutCA,
CertificateDescription and Certificate: ``certificateMode``, ``caCertificateId``); AWS IoT
Developer Guide, "Register a client certificate manually" (manual-cert-registration.html) and
"Manage your CA certificates" (manage-your-CA-certs.html). Refusals: ``REFUSALS``.

- A certificate registered with a CA must be signed by a registered, ACTIVE CA (the one
  ``caCertificatePem`` names, else the one whose subject is its issuer); it takes the CA's id and
  certificate mode ("Registers a device certificate with IoT in the same certificate mode as the
  signing CA").
- One registered without a CA is SNI_ONLY; one AWS issued (CreateKeysAndCertificate,
  CreateCertificateFromCsr) is DEFAULT (CertificateDescription, ``certificateMode``).
- Without ``status`` or ``setAsActive`` a registered certificate is INACTIVE ("The client
  certificate is registered with AWS IoT, but it is not active yet"; moto: status null).
- Both calls publish their CloudTrail event; RegisterCertificate's carries ``caCertificatePem``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from moto.iot.exceptions import InvalidRequestException
from moto.iot.models import FakeCaCertificate, FakeCertificate, IoTBackend, iot_backends

from sandbox.emulation.controlplane import _cert, _publishing, present
from sandbox.emulation.patches import _PATCHES, JsonDict
from sandbox.emulation.refusal import GUIDE, Refusal
from sandbox.emulation.refusals import RefusedError, refuse

DEFAULT = "DEFAULT"
SNI_ONLY = "SNI_ONLY"


# ---- X.509 -------------------------------------------------------------------------------------


def load(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as error:
        raise InvalidRequestException(f"not a PEM certificate: {error}") from error


def certificate_id(certificate: x509.Certificate) -> str:
    """AWS's id of a certificate: the SHA-256 of its DER encoding (``MOTO_GAPS``)."""
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def issuing_ca(backend: IoTBackend, certificate_pem: str, ca_pem: str | None) -> FakeCaCertificate:
    """The registered, ACTIVE CA that signed ``certificate_pem``: the one ``ca_pem`` names, or
    else the one whose subject is the certificate's issuer ("If you have more than one CA
    certificate that has the same subject field, you must specify the CA certificate",
    RegisterCertificate). Refused as ``REFUSALS`` says otherwise."""
    device = load(certificate_pem)
    if ca_pem:
        named_id = certificate_id(load(ca_pem))
        ca = backend.ca_certificates.get(named_id)
        if ca is None:
            raise refuse("register_certificate_unregistered_ca", certificate_id=named_id)
    else:
        candidates = [
            c
            for c in backend.ca_certificates.values()
            if load(c.certificate_pem).subject == device.issuer
        ]
        if not candidates:
            raise refuse("register_certificate_unregistered_ca", certificate_id="(none named)")
        ca = candidates[0]
    if not signed_by(device, load(ca.certificate_pem)):
        raise refuse("register_certificate_wrong_ca", certificate_id=ca.certificate_id)
    if ca.status != "ACTIVE":
        raise refuse("register_certificate_inactive_ca", certificate_id=ca.certificate_id)
    return ca


def _check_issuer(
    self: IoTBackend, emulation: Any, certificate_pem: str, ca_certificate_pem: str | None, **_: Any
) -> None:
    issuing_ca(self, certificate_pem, ca_certificate_pem)


def _take_issuer(
    self: IoTBackend,
    emulation: Any,
    *,
    certificate_pem: str,
    ca_certificate_pem: str | None,
    set_as_active: bool,
    status: str | None,
) -> None:
    """After moto's registration (which links a CA only on identical PEM text): the certificate
    takes its issuing CA's id and certificate mode, and is INACTIVE unless asked otherwise."""
    ca = issuing_ca(self, certificate_pem, ca_certificate_pem)
    device = _registered(self, certificate_pem, status)
    device.ca_certificate_id = ca.certificate_id
    device.crr_mode = getattr(ca, "crr_mode", DEFAULT)


# [assumption] AWS's answer to a certificate it will not register here (MOTO_GAPS): the code is
# one RegisterCertificateWithoutCA's model lists, the text ours. Only with the emulation's
# ``shared_certificate_rule`` on, so not in REFUSALS (which the emulation always applies).
SHARED_CERTIFICATE_REFUSAL = Refusal(
    "RegisterCertificateWithoutCA",
    "InvalidRequestException",
    "The certificate {certificate_id} cannot be registered without a CA in this region: {why}",
    f"{GUIDE}register-device-cert.html, 2022 text: client certificates 'can be shared by AWS "
    "accounts and Regions, but only if the client certificate is signed by a certificate "
    "authority (CA) that is NOT registered with AWS IoT'; 'The Amazon Root CA is automatically "
    "registered with AWS IoT'",
    message_seen=False,
)


def _check_shareable(
    self: IoTBackend, emulation: Any, certificate_pem: str, status: str | None
) -> None:
    """With ``shared_certificate_rule`` on: refuse an AWS-issued certificate of another region
    (DEFAULT mode without a CA: "generated by AWS IoT Core", CertificateDescription
    ``certificateMode``) and one signed by a CA registered in this region."""
    if emulation is None or not emulation.shared_certificate_rule:
        return
    device = load(certificate_pem)
    cert_id = certificate_id(device)
    why = ""
    for region, backend in iot_backends[self.account_id].items():
        found = backend.certificates.get(cert_id) if region != self.region_name else None
        issued = found is not None and not found.ca_certificate_id
        if issued and getattr(found, "crr_mode", DEFAULT) == DEFAULT:
            why = "it was issued by AWS IoT"
    for ca in self.ca_certificates.values():
        if signed_by(device, load(ca.certificate_pem)):
            why = f"its CA {ca.certificate_id} is registered with AWS IoT"
    if why:
        refusal = SHARED_CERTIFICATE_REFUSAL
        raise RefusedError(refusal.code, refusal.message.format(certificate_id=cert_id, why=why))


def _without_ca(self: IoTBackend, emulation: Any, certificate_pem: str, status: str | None) -> None:
    _registered(self, certificate_pem, status).crr_mode = SNI_ONLY


def _registered(backend: IoTBackend, certificate_pem: str, status: str | None) -> Any:
    """The certificate just registered; without a status (or setAsActive) it is INACTIVE: "The
    client certificate is registered with AWS IoT, but it is not active yet"
    (manual-cert-registration.html; moto: status None)."""
    device = backend.certificates[certificate_id(load(certificate_pem))]
    if device.status is None:
        device.status = "INACTIVE"
    return device


def _certificate_to_dict(self: FakeCertificate) -> JsonDict:
    """ListCertificates and ListCertificatesByCA items (Certificate): with ``certificateMode``."""
    data: JsonDict = _PATCHES.original(FakeCertificate, "to_dict")(self)
    return {**data, "certificateMode": getattr(self, "crr_mode", DEFAULT)}


def _certificate_description(self: FakeCertificate) -> JsonDict:
    """DescribeCertificate (CertificateDescription): with ``caCertificateId`` (when registered
    with a CA) and ``certificateMode``."""
    data: JsonDict = _PATCHES.original(FakeCertificate, "to_description_dict")(self)
    data["certificateMode"] = getattr(self, "crr_mode", DEFAULT)
    if self.ca_certificate_id:
        data["caCertificateId"] = self.ca_certificate_id
    return data


BACKEND_PATCHES: dict[str, Callable[..., Any]] = {
    "register_certificate": _publishing(
        "register_certificate",
        "RegisterCertificate",
        lambda r, certificate_pem, ca_certificate_pem, set_as_active, status: (
            present(
                {
                    "certificatePem": certificate_pem,
                    "caCertificatePem": ca_certificate_pem,
                    "setAsActive": set_as_active,
                    "status": status,
                }
            ),
            _cert(r),
        ),
        before=_check_issuer,
        after=_take_issuer,
    ),
    "register_certificate_without_ca": _publishing(
        "register_certificate_without_ca",
        "RegisterCertificateWithoutCA",
        lambda r, certificate_pem, status: (
            {"certificatePem": certificate_pem, "status": status},
            _cert(r),
        ),
        before=_check_shareable,
        after=_without_ca,
    ),
}
CLASS_PATCHES = (
    (FakeCertificate, "to_dict", _certificate_to_dict),
    (FakeCertificate, "to_description_dict", _certificate_description),
)
