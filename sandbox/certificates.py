"""Certificates for the sandbox, the demo, the tests and the conformance probes, made locally.

``self_signed_pem``: a device certificate as a device maker's own CA would issue it (registered
with RegisterCertificateWithoutCA); only the certificate leaves this module, the private key is
discarded at once. ``CertificateAuthority``: a CA of one's own (RegisterCACertificate) that
issues device certificates and the verification certificate AWS IoT asks for in DEFAULT mode
(AWS IoT Developer Guide, "Manage your CA certificates"); its key stays inside the object, never
written anywhere, and goes with it. So no device or CA key ever passes through the tool.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def self_signed_pem(common_name: str = "device") -> str:
    """A fresh P-256 certificate for ``common_name``, valid a year, as PEM text."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    return _pem(_builder(name, name, key.public_key(), days=365).sign(key, hashes.SHA256()))


@dataclass(frozen=True)
class CertificateAuthority:
    """A P-256 root CA, valid ten years, whose key never leaves this object."""

    certificate: x509.Certificate
    _key: ec.EllipticCurvePrivateKey

    @classmethod
    def new(cls, common_name: str = "iot-crr test CA") -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(common_name)
        certificate = (
            _builder(name, name, key.public_key(), days=3650)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @property
    def pem(self) -> str:
        return _pem(self.certificate)

    def issue(self, common_name: str) -> str:
        """A certificate for ``common_name`` signed by this CA (its key is discarded): a device
        certificate, or with the registration code as its name, a verification certificate."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(common_name)
        issued = _builder(subject, self.certificate.subject, key.public_key(), days=365)
        return _pem(issued.sign(self._key, hashes.SHA256()))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_BEFORE + dt.timedelta(days=days))
    )


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()
