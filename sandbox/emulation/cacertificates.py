"""CA certificates as AWS IoT keeps them (moto 5.2 stores a CA's PEM and status only;
``MOTO_GAPS``).

Sources: AWS IoT API Reference (RegisterCACertificate, UpdateCACertificate, DeleteCACertificate,
DescribeCACertificate, ListCACertificates, ListCertificatesByCA, GetRegistrationCode,
CACertificateDescription) and botocore's iot service model; AWS IoT Developer Guide, "Manage your
CA certificates" (manage-your-CA-certs.html), "Just-in-time provisioning" (jit-provisioning.html),
"Deactivate a CA certificate" (deactivate-ca-cert.html). What each
refusal rests on is in ``REFUSALS``; docs/onboarding-kinds.md is the whole account.

- A CA registers in ``certificateMode`` DEFAULT (the default; a ``verificationCertificate`` whose
  common name is the account's registration code, signed by the CA's key) or SNI_ONLY (none).
  It is INACTIVE unless ``setAsActive``; ``allowAutoRegistration`` sets ``autoRegistrationStatus``.
  Its ARN names ``cacert/`` (IAM's resource type for it, "Actions, resources and condition keys
  for AWS IoT"; moto: ``cert/``).
- Device certificates registered with (or without) a CA: ``devicecertificates``.
- [assumption] ``customerVersion`` starts at 1 and goes up by 1, and ``generationId`` changes, on
  each UpdateCACertificate; ``removeAutoRegistration`` drops the ``registrationConfig``.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from moto.core.responses import ActionResult, EmptyResult
from moto.iot.models import FakeCaCertificate, FakeCertificate, IoTBackend
from moto.iot.responses import IoTResponse

from sandbox.emulation.controlplane import _cert, present, publish_call
from sandbox.emulation.devicecertificates import DEFAULT, SNI_ONLY, certificate_id, load, signed_by
from sandbox.emulation.paging import page
from sandbox.emulation.patches import _PATCHES, JsonDict
from sandbox.emulation.provisioning import templates
from sandbox.emulation.refusals import refuse


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _now() -> datetime:
    return datetime.now(UTC)


# ---- registration code, CA registration -------------------------------------------------------


def _get_registration_code(self: IoTBackend) -> str:
    """GetRegistrationCode: "If you already have a registration code, this API call will return
    the same registration code" (AWS IoT API Reference); 64 hexadecimal digits (botocore's model:
    RegistrationCode). moto: a new UUID on each call."""
    code: str = self.__dict__.setdefault("crr_registration_code", secrets.token_hex(32))
    return code


def check_registration_config(backend: IoTBackend, config: JsonDict | None) -> None:
    """A registrationConfig naming a provisioning template names an existing JITP template."""
    name = (config or {}).get("templateName")
    if not name:
        return
    template = templates(backend).get(name)
    if template is None:
        raise refuse("register_ca_unknown_template", name=name)
    if template.type != "JITP":
        raise refuse("register_ca_fleet_template", name=name, type=template.type)


def _register_ca_certificate(
    self: IoTBackend,
    *,
    ca_certificate: str,
    verification_certificate: str | None,
    set_as_active: bool,
    allow_auto_registration: bool,
    registration_config: JsonDict | None,
    certificate_mode: str | None,
    tags: Any = None,
) -> FakeCaCertificate:
    mode = certificate_mode or DEFAULT
    if mode == DEFAULT and not verification_certificate:
        raise refuse("register_ca_without_verification")
    if mode == SNI_ONLY and verification_certificate:
        raise refuse("register_ca_sni_with_verification")
    ca = load(ca_certificate)
    if verification_certificate:
        verification = load(verification_certificate)
        if _common_name(verification) != _get_registration_code(self):
            raise refuse(
                "register_ca_wrong_registration_code", common_name=_common_name(verification)
            )
        if not signed_by(verification, ca):
            raise refuse("register_ca_unsigned_verification")
    ca_id = certificate_id(ca)
    if ca_id in self.ca_certificates:
        raise refuse("register_ca_twice", certificate_id=ca_id)
    check_registration_config(self, registration_config)
    original = _PATCHES.original(IoTBackend, "register_ca_certificate")
    registered: FakeCaCertificate = original(
        self, ca_certificate, set_as_active, registration_config
    )
    registered.arn = registered.arn.replace(":cert/", ":cacert/")
    registered.crr_mode = mode  # type: ignore[attr-defined]
    registered.crr_auto_registration = "ENABLE" if allow_auto_registration else "DISABLE"  # type: ignore[attr-defined]
    registered.crr_customer_version = 1  # type: ignore[attr-defined]
    registered.crr_generation_id = str(uuid.uuid4())  # type: ignore[attr-defined]
    registered.validity_not_before = ca.not_valid_before_utc
    registered.validity_not_after = ca.not_valid_after_utc
    request = {
        "caCertificate": ca_certificate,
        "verificationCertificate": verification_certificate,
        "setAsActive": set_as_active,
        "allowAutoRegistration": allow_auto_registration,
        "registrationConfig": registration_config,
        "certificateMode": certificate_mode,
    }
    publish_call(self, "RegisterCACertificate", present(request), _cert(registered))
    return registered


def _update_ca_certificate(
    self: IoTBackend,
    *,
    certificate_id: str,
    new_status: str | None,
    new_auto_registration_status: str | None,
    registration_config: JsonDict | None,
    remove_auto_registration: bool | None,
) -> None:
    ca: Any = self.describe_ca_certificate(certificate_id)
    check_registration_config(self, registration_config)
    if new_status:
        ca.status = new_status
    if new_auto_registration_status:
        ca.crr_auto_registration = new_auto_registration_status
    if remove_auto_registration:
        ca.registration_config = None
    elif registration_config is not None:
        ca.registration_config = registration_config
    ca.crr_customer_version = getattr(ca, "crr_customer_version", 1) + 1
    ca.crr_generation_id = str(uuid.uuid4())
    ca.last_modified_date = _now()
    request = {
        "certificateId": certificate_id,
        "newStatus": new_status,
        "newAutoRegistrationStatus": new_auto_registration_status,
        "registrationConfig": registration_config,
        "removeAutoRegistration": remove_auto_registration,
    }
    publish_call(self, "UpdateCACertificate", present(request), None)


def _delete_ca_certificate(self: IoTBackend, certificate_id: str) -> None:
    ca = self.describe_ca_certificate(certificate_id)
    if ca.status == "ACTIVE":
        raise refuse("delete_active_ca", certificate_id=certificate_id)
    registered = _registered_with(self, certificate_id)
    if registered:
        raise refuse(
            "delete_ca_with_certificates", certificate_id=certificate_id, count=len(registered)
        )
    del self.ca_certificates[certificate_id]
    publish_call(self, "DeleteCACertificate", {"certificateId": certificate_id}, None)


def _registered_with(backend: IoTBackend, ca_id: str) -> list[FakeCertificate]:
    return [c for c in backend.certificates.values() if c.ca_certificate_id == ca_id]


# ---- responses ---------------------------------------------------------------------------------


def _backend(response: IoTResponse) -> Any:
    return response.iot_backend


def _response_get_registration_code(self: IoTResponse) -> ActionResult:
    return ActionResult({"registrationCode": _get_registration_code(self.iot_backend)})


def _response_register_ca_certificate(self: IoTResponse) -> ActionResult:
    ca = _backend(self).register_ca_certificate(
        ca_certificate=self._get_param("caCertificate"),
        verification_certificate=self._get_param("verificationCertificate"),
        set_as_active=bool(self._get_param("setAsActive")),
        allow_auto_registration=bool(self._get_param("allowAutoRegistration")),
        registration_config=self._get_param("registrationConfig"),
        certificate_mode=self._get_param("certificateMode"),
        tags=self._get_param("tags"),
    )
    return ActionResult({"certificateId": ca.certificate_id, "certificateArn": ca.arn})


def _response_update_ca_certificate(self: IoTResponse) -> EmptyResult:
    _backend(self).update_ca_certificate(
        certificate_id=self._get_param("certificateId"),
        new_status=self._get_param("newStatus"),
        new_auto_registration_status=self._get_param("newAutoRegistrationStatus"),
        registration_config=self._get_param("registrationConfig"),
        remove_auto_registration=self._get_param("removeAutoRegistration"),
    )
    return EmptyResult()


def _response_delete_ca_certificate(self: IoTResponse) -> EmptyResult:
    _backend(self).delete_ca_certificate(self._get_param("certificateId"))
    return EmptyResult()


def _ca_description(ca: FakeCaCertificate) -> JsonDict:
    """CACertificateDescription (botocore's iot model)."""
    return {
        "certificateArn": ca.arn,
        "certificateId": ca.certificate_id,
        "status": ca.status,
        "certificatePem": ca.certificate_pem,
        "ownedBy": ca.owner,
        "creationDate": ca.creation_date,
        "autoRegistrationStatus": getattr(ca, "crr_auto_registration", "DISABLE"),
        "lastModifiedDate": ca.last_modified_date,
        "customerVersion": getattr(ca, "crr_customer_version", 1),
        "generationId": getattr(ca, "crr_generation_id", ""),
        "validity": {"notBefore": ca.validity_not_before, "notAfter": ca.validity_not_after},
        "certificateMode": getattr(ca, "crr_mode", DEFAULT),
    }


def _response_describe_ca_certificate(self: IoTResponse) -> ActionResult:
    ca = self.iot_backend.describe_ca_certificate(self._get_param("certificateId"))
    result: JsonDict = {"certificateDescription": _ca_description(ca)}
    if ca.registration_config:
        result["registrationConfig"] = ca.registration_config
    return ActionResult(result)


def _by_creation(items: list[Any], ascending: Any) -> list[Any]:
    """[assumption] Newest first unless ``isAscendingOrder`` (ListCertificates: "If True, the
    results are returned in ascending order, based on the creation date")."""
    return sorted(items, key=lambda item: item.creation_date, reverse=not ascending)


def _response_list_ca_certificates(self: IoTResponse) -> ActionResult:
    """ListCACertificates (moto: not implemented): CACertificate items, by creation date,
    filtered by ``templateName`` (the provisioning template in a CA's registrationConfig)."""
    name = self._get_param("templateName")
    cas = [
        ca
        for ca in self.iot_backend.ca_certificates.values()
        if not name or (ca.registration_config or {}).get("templateName") == name
    ]
    items, marker = page(
        _by_creation(cas, self._get_param("ascendingOrder")),
        self._get_param("pageSize"),
        self._get_param("marker"),
    )
    listed = [
        {
            "certificateArn": ca.arn,
            "certificateId": ca.certificate_id,
            "status": ca.status,
            "creationDate": ca.creation_date,
        }
        for ca in items
    ]
    return ActionResult(_with(marker, "nextMarker", {"certificates": listed}))


def _response_list_certificates_by_ca(self: IoTResponse) -> ActionResult:
    """ListCertificatesByCA, paged (moto: every certificate at once)."""
    backend = self.iot_backend
    ca_id = self._get_param("caCertificateId")
    items, marker = page(
        _by_creation(_registered_with(backend, ca_id), self._get_param("ascendingOrder")),
        self._get_param("pageSize"),
        self._get_param("marker"),
    )
    listed = [certificate.to_dict() for certificate in items]
    return ActionResult(_with(marker, "nextMarker", {"certificates": listed}))


def _with(marker: str | None, key: str, result: JsonDict) -> JsonDict:
    return {**result, key: marker} if marker else result


BACKEND_PATCHES: dict[str, Callable[..., Any]] = {
    "get_registration_code": _get_registration_code,
    "register_ca_certificate": _register_ca_certificate,
    "update_ca_certificate": _update_ca_certificate,
    "delete_ca_certificate": _delete_ca_certificate,
}
RESPONSE_PATCHES: dict[str, Callable[..., Any]] = {
    "get_registration_code": _response_get_registration_code,
    "register_ca_certificate": _response_register_ca_certificate,
    "update_ca_certificate": _response_update_ca_certificate,
    "delete_ca_certificate": _response_delete_ca_certificate,
    "describe_ca_certificate": _response_describe_ca_certificate,
    "list_ca_certificates": _response_list_ca_certificates,
    "list_certificates_by_ca": _response_list_certificates_by_ca,
}
