"""CA certificates and certificate registration on the sandbox, over HTTP with boto3
(``sandbox.emulation.cacertificates``; what AWS does and on which page: docs/onboarding-kinds.md).
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509

from sandbox.certificates import CertificateAuthority, self_signed_pem
from sandbox.stack import Sandbox

SOURCE = "us-east-1"
JITP_BODY = '{"Parameters": {}, "Resources": {}}'
ROLE = "arn:aws:iam::123456789012:role/provisioning"


def _refused(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as error:
        call()
    response = error.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"])


def _default_mode(iot: Any, authority: CertificateAuthority, **kwargs: Any) -> str:
    code = iot.get_registration_code()["registrationCode"]
    registered = iot.register_ca_certificate(
        caCertificate=authority.pem, verificationCertificate=authority.issue(code), **kwargs
    )
    return str(registered["certificateId"])


def _sni_only(iot: Any, authority: CertificateAuthority, **kwargs: Any) -> str:
    registered = iot.register_ca_certificate(
        caCertificate=authority.pem, certificateMode="SNI_ONLY", **kwargs
    )
    return str(registered["certificateId"])


def _cloudtrail(box: Sandbox) -> list[dict[str, Any]]:
    return [event["detail"] for event in box.outbox(SOURCE).take() if "detail" in event]


# ---- registration ------------------------------------------------------------------------------


def test_the_registration_code_is_the_same_64_hex_digits_on_every_call(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    code = iot.get_registration_code()["registrationCode"]
    assert re.fullmatch(r"[0-9a-f]{64}", code)
    assert iot.get_registration_code()["registrationCode"] == code


def test_a_default_mode_ca_is_described_as_aws_describes_it(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    authority = CertificateAuthority.new("fleet CA")
    ca_id = _default_mode(iot, authority, setAsActive=True, allowAutoRegistration=True)
    described = iot.describe_ca_certificate(certificateId=ca_id)
    description = described["certificateDescription"]
    assert description["certificateArn"] == f"arn:aws:iot:{SOURCE}:123456789012:cacert/{ca_id}"
    assert description["certificateId"] == ca_id
    assert (description["status"], description["certificateMode"]) == ("ACTIVE", "DEFAULT")
    assert description["autoRegistrationStatus"] == "ENABLE"
    assert description["customerVersion"] == 1 and description["generationId"]
    assert description["certificatePem"].strip() == authority.pem.strip()
    assert description["ownedBy"] == "123456789012"
    parsed = x509.load_pem_x509_certificate(authority.pem.encode())
    assert description["validity"]["notAfter"] == parsed.not_valid_after_utc
    assert "registrationConfig" not in described


def test_an_sni_only_ca_needs_no_verification_and_is_inactive_unless_asked(
    box: Sandbox,
) -> None:
    iot = box.iot(SOURCE)
    ca_id = _sni_only(iot, CertificateAuthority.new())
    description = iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    assert (description["status"], description["certificateMode"]) == ("INACTIVE", "SNI_ONLY")
    assert description["autoRegistrationStatus"] == "DISABLE"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"certificateMode": "DEFAULT"}, "InvalidRequestException"),
        ({"certificateMode": "SNI_ONLY", "verify": "code"}, "InvalidRequestException"),
        ({"verify": "not-the-code"}, "RegistrationCodeValidationException"),
        ({"verify": "code", "signer": "other"}, "CertificateValidationException"),
        (
            {"certificateMode": "SNI_ONLY", "registrationConfig": {"templateName": "none"}},
            "ResourceNotFoundException",
        ),
    ],
    ids=["default-without", "sni-with", "wrong-code", "other-signer", "unknown-template"],
)
def test_registrations_aws_refuses_are_refused_and_register_nothing(
    box: Sandbox, arguments: dict[str, Any], expected: str
) -> None:
    iot = box.iot(SOURCE)
    authority = CertificateAuthority.new()
    request = {k: v for k, v in arguments.items() if k not in ("verify", "signer")}
    if "verify" in arguments:
        name = arguments["verify"]
        name = iot.get_registration_code()["registrationCode"] if name == "code" else name
        signer = CertificateAuthority.new() if arguments.get("signer") else authority
        request["verificationCertificate"] = signer.issue(name)
    code, _ = _refused(lambda: iot.register_ca_certificate(caCertificate=authority.pem, **request))
    assert code == expected
    assert iot.list_ca_certificates()["certificates"] == []
    assert _cloudtrail(box) == []


def test_a_ca_registered_twice_is_refused(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    authority = CertificateAuthority.new()
    _sni_only(iot, authority)
    assert _refused(lambda: _sni_only(iot, authority)) == ("ResourceAlreadyExistsException", 409)


def test_a_jitp_registration_config_names_a_jitp_template(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    for name, kind in (("fleet", "FLEET_PROVISIONING"), ("jitp", "JITP")):
        iot.create_provisioning_template(
            templateName=name, templateBody=JITP_BODY, provisioningRoleArn=ROLE, type=kind
        )
    authority = CertificateAuthority.new()
    code, _ = _refused(
        lambda: _sni_only(iot, authority, registrationConfig={"templateName": "fleet"})
    )
    assert code == "InvalidRequestException"
    ca_id = _sni_only(iot, authority, registrationConfig={"templateName": "jitp"})
    config = iot.describe_ca_certificate(certificateId=ca_id)["registrationConfig"]
    assert config == {"templateName": "jitp"}


# ---- update, delete ----------------------------------------------------------------------------


def test_update_ca_certificate_changes_status_auto_registration_and_config(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    iot.create_provisioning_template(
        templateName="jitp", templateBody=JITP_BODY, provisioningRoleArn=ROLE, type="JITP"
    )
    ca_id = _sni_only(iot, CertificateAuthority.new())
    before = iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    iot.update_ca_certificate(
        certificateId=ca_id,
        newStatus="ACTIVE",
        newAutoRegistrationStatus="ENABLE",
        registrationConfig={"templateName": "jitp"},
    )
    described = iot.describe_ca_certificate(certificateId=ca_id)
    after = described["certificateDescription"]
    assert (after["status"], after["autoRegistrationStatus"]) == ("ACTIVE", "ENABLE")
    assert described["registrationConfig"] == {"templateName": "jitp"}
    assert after["customerVersion"] == before["customerVersion"] + 1
    assert after["generationId"] != before["generationId"]
    assert after["lastModifiedDate"] >= before["lastModifiedDate"]
    iot.update_ca_certificate(certificateId=ca_id, removeAutoRegistration=True)
    assert "registrationConfig" not in iot.describe_ca_certificate(certificateId=ca_id)


def test_an_update_naming_an_unknown_template_is_refused(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    ca_id = _sni_only(iot, CertificateAuthority.new())
    code, _ = _refused(
        lambda: iot.update_ca_certificate(
            certificateId=ca_id, registrationConfig={"templateName": "none"}
        )
    )
    assert code == "ResourceNotFoundException"


def test_an_active_ca_and_one_with_certificates_cannot_be_deleted(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    authority = CertificateAuthority.new()
    ca_id = _sni_only(iot, authority, setAsActive=True)
    delete = lambda: iot.delete_ca_certificate(certificateId=ca_id)  # noqa: E731
    assert _refused(delete) == ("CertificateStateException", 406)
    device = iot.register_certificate(certificatePem=authority.issue("d1"))["certificateId"]
    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
    assert _refused(delete) == ("CertificateStateException", 406)
    iot.delete_certificate(certificateId=device)
    delete()
    assert _refused(lambda: iot.describe_ca_certificate(certificateId=ca_id))[0] == (
        "ResourceNotFoundException"
    )


# ---- listings ----------------------------------------------------------------------------------


def test_list_ca_certificates_pages_by_creation_date_and_filters_by_template(
    box: Sandbox,
) -> None:
    iot = box.iot(SOURCE)
    iot.create_provisioning_template(
        templateName="jitp", templateBody=JITP_BODY, provisioningRoleArn=ROLE, type="JITP"
    )
    ids = [_sni_only(iot, CertificateAuthority.new(f"ca{i}")) for i in range(3)]
    with_template = _sni_only(
        iot, CertificateAuthority.new(), registrationConfig={"templateName": "jitp"}
    )
    first = iot.list_ca_certificates(pageSize=2, ascendingOrder=True)
    assert [c["certificateId"] for c in first["certificates"]] == ids[:2]
    rest = iot.list_ca_certificates(pageSize=2, ascendingOrder=True, marker=first["nextMarker"])
    assert [c["certificateId"] for c in rest["certificates"]] == [ids[2], with_template]
    assert "nextMarker" not in rest
    listed = iot.list_ca_certificates(templateName="jitp")["certificates"]
    assert [c["certificateId"] for c in listed] == [with_template]
    assert set(listed[0]) == {"certificateArn", "certificateId", "status", "creationDate"}


def test_list_ca_certificates_answers_25_a_page_by_default(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    for i in range(26):
        _sni_only(iot, CertificateAuthority.new(f"ca{i}"))
    first = iot.list_ca_certificates()
    assert len(first["certificates"]) == 25 and first["nextMarker"]
    pages = iot.get_paginator("list_ca_certificates").paginate()
    assert sum(len(p["certificates"]) for p in pages) == 26


# ---- device certificates -----------------------------------------------------------------------


def test_a_certificate_registered_with_its_ca_takes_the_cas_id_and_mode(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    authority = CertificateAuthority.new()
    ca_id = _sni_only(iot, authority, setAsActive=True)
    named = iot.register_certificate(
        certificatePem=authority.issue("d1"), caCertificatePem=authority.pem, setAsActive=True
    )["certificateId"]
    found = iot.register_certificate(certificatePem=authority.issue("d2"))["certificateId"]
    for certificate_id, status in ((named, "ACTIVE"), (found, "INACTIVE")):
        description = iot.describe_certificate(certificateId=certificate_id)[
            "certificateDescription"
        ]
        assert description["caCertificateId"] == ca_id
        assert (description["certificateMode"], description["status"]) == ("SNI_ONLY", status)
    by_ca = iot.list_certificates_by_ca(caCertificateId=ca_id, pageSize=1)
    assert len(by_ca["certificates"]) == 1 and by_ca["nextMarker"]
    pages = iot.get_paginator("list_certificates_by_ca").paginate(caCertificateId=ca_id)
    assert sorted(c["certificateId"] for p in pages for c in p["certificates"]) == sorted(
        [named, found]
    )


def test_registration_with_an_inactive_unregistered_or_other_ca_is_refused(
    box: Sandbox,
) -> None:
    iot = box.iot(SOURCE)
    inactive, active, unregistered = (CertificateAuthority.new(f"ca{i}") for i in range(3))
    _sni_only(iot, inactive)
    _sni_only(iot, active, setAsActive=True)
    cases = [
        (inactive.issue("d"), inactive.pem, ("CertificateStateException", 406)),
        (unregistered.issue("d"), unregistered.pem, ("CertificateValidationException", 400)),
        (unregistered.issue("d"), None, ("CertificateValidationException", 400)),
        (unregistered.issue("d"), active.pem, ("CertificateValidationException", 400)),
    ]
    for device, ca_pem, expected in cases:
        extra = {"caCertificatePem": ca_pem} if ca_pem else {}
        answer = _refused(partial(iot.register_certificate, certificatePem=device, **extra))
        assert answer == expected
    assert iot.list_certificates()["certificates"] == []


def test_certificate_modes_of_aws_issued_and_ca_less_certificates(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    issued = iot.create_keys_and_certificate(setAsActive=False)["certificateId"]
    without = iot.register_certificate_without_ca(certificatePem=self_signed_pem())
    listed = {c["certificateId"]: c for c in iot.list_certificates()["certificates"]}
    assert listed[issued]["certificateMode"] == "DEFAULT"
    assert listed[without["certificateId"]]["certificateMode"] == "SNI_ONLY"
    description = iot.describe_certificate(certificateId=without["certificateId"])[
        "certificateDescription"
    ]
    assert (description["certificateMode"], description["status"]) == ("SNI_ONLY", "INACTIVE")
    assert "caCertificateId" not in description


def test_a_default_mode_cas_certificates_are_default_mode(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    authority = CertificateAuthority.new()
    _default_mode(iot, authority, setAsActive=True)
    device = iot.register_certificate(certificatePem=authority.issue("d"))["certificateId"]
    description = iot.describe_certificate(certificateId=device)["certificateDescription"]
    assert description["certificateMode"] == "DEFAULT"


# ---- CloudTrail ---------------------------------------------------------------------------------


def test_ca_calls_publish_their_cloudtrail_events(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    box.outbox(SOURCE).take()
    authority = CertificateAuthority.new()
    ca_id = _sni_only(iot, authority, setAsActive=True, allowAutoRegistration=True)
    device = authority.issue("d")
    certificate = iot.register_certificate(certificatePem=device, caCertificatePem=authority.pem)
    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
    iot.delete_certificate(certificateId=certificate["certificateId"])
    iot.delete_ca_certificate(certificateId=ca_id)
    events = _cloudtrail(box)
    assert [e["eventName"] for e in events] == [
        "RegisterCACertificate",
        "RegisterCertificate",
        "UpdateCACertificate",
        "DeleteCertificate",
        "DeleteCACertificate",
    ]
    registered, linked, updated, _, deleted = events
    assert registered["requestParameters"] == {
        "caCertificate": authority.pem,
        "setAsActive": True,
        "allowAutoRegistration": True,
        "certificateMode": "SNI_ONLY",
    }
    assert registered["responseElements"] == {
        "certificateId": ca_id,
        "certificateArn": f"arn:aws:iot:{SOURCE}:123456789012:cacert/{ca_id}",
    }
    assert linked["requestParameters"]["caCertificatePem"] == authority.pem
    assert updated["requestParameters"] == {"certificateId": ca_id, "newStatus": "INACTIVE"}
    assert deleted["requestParameters"] == {"certificateId": ca_id}
