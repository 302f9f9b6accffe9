"""Device certificates for the sandbox, the demo and the tests: self-signed X.509 certificates
made locally, as a device maker's own CA would issue them (registered with
RegisterCertificateWithoutCA). Only the certificate leaves this module: the private key is
discarded at once, so no key ever passes through the tool or its sandbox."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def self_signed_pem(common_name: str = "device") -> str:
    """A fresh P-256 certificate for ``common_name``, valid a year, as PEM text."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_BEFORE + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()
