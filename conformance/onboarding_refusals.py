"""Refusal probes for the onboarding kinds: CA certificates and certificate registration,
provisioning templates, role aliases, custom authorizers (``sandbox.emulation.REFUSALS`` names
the source of each claim; docs/onboarding-kinds.md the whole account).

Every probe removes what it made, whatever AWS answered (CA certificates carry no name the
run's cleanup could find). The CAs are made here (``sandbox.certificates.CertificateAuthority``:
their keys never leave the process) and registered in SNI_ONLY mode unless the probe is about
DEFAULT mode. IAM roles a probe names are created with the run's tag, trusted by AWS IoT and
its credentials provider, and deleted at the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any

from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.x509.oid import NameOID

from conformance.probing import Answer, Context, Probe, answer_of
from pipeline.model import EntityKind
from sandbox.certificates import CertificateAuthority

BODY = json.dumps({"Parameters": {}, "Resources": {}})
# More versions than any limit AWS is believed to keep (the emulation's: 5, an assumption).
MAX_VERSIONS_TRIED = 10
# A role AWS IoT and its credentials provider may assume (provisioning templates, role aliases).
ROLE_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["iot.amazonaws.com", "credentials.iot.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def _quietly(call: Callable[[], Any]) -> None:
    """Cleanup: what is gone already (or was never made) is fine."""
    with suppress(ClientError):
        call()


@contextmanager
def _role(ctx: Context, suffix: str, max_session: int = 3600) -> Iterator[str]:
    iam = ctx.client("iam")
    name = ctx.scope(suffix)
    arn: str = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=ROLE_TRUST,
        MaxSessionDuration=max_session,
        Tags=ctx.scope.tags,
    )["Role"]["Arn"]
    try:
        yield arn
    finally:
        _quietly(lambda: iam.delete_role(RoleName=name))


@contextmanager
def _registered_ca(
    iot: Any, ctx: Context, active: bool = False, config: dict[str, str] | None = None
) -> Iterator[tuple[CertificateAuthority, str]]:
    """A fresh CA registered in SNI_ONLY mode; deactivated and deleted (with any device
    certificate registered with it) at the end."""
    authority = CertificateAuthority.new(ctx.scope("ca"))
    extra = {"registrationConfig": config} if config else {}
    ca_id: str = iot.register_ca_certificate(
        caCertificate=authority.pem,
        certificateMode="SNI_ONLY",
        setAsActive=active,
        tags=ctx.scope.tags,
        **extra,
    )["certificateId"]
    try:
        yield authority, ca_id
    finally:
        delete_ca(iot, ca_id)


def delete_certificate(iot: Any, certificate_id: str) -> None:
    _quietly(lambda: iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE"))
    _quietly(lambda: iot.delete_certificate(certificateId=certificate_id))


def _forget_ca(iot: Any, answer: Answer, registered: Callable[[], Any]) -> Answer:
    """A registration AWS was expected to refuse and accepted: undo it."""
    if answer.accepted:
        delete_ca(iot, registered())
    return answer


def _ca_id_of(iot: Any, authority: CertificateAuthority) -> Callable[[], str]:
    def find() -> str:
        for page in iot.get_paginator("list_ca_certificates").paginate():
            for ca in page["certificates"]:
                described = iot.describe_ca_certificate(certificateId=ca["certificateId"])
                if described["certificateDescription"]["certificatePem"].strip() == (
                    authority.pem.strip()
                ):
                    return str(ca["certificateId"])
        raise LookupError("the CA AWS accepted is not listed")

    return find


@contextmanager
def _template(
    iot: Any, ctx: Context, role_arn: str, kind: str = "FLEET_PROVISIONING"
) -> Iterator[str]:
    name = ctx.scope("template")
    iot.create_provisioning_template(
        templateName=name,
        templateBody=BODY,
        provisioningRoleArn=role_arn,
        type=kind,
        tags=ctx.scope.tags,
    )
    try:
        yield name
    finally:
        _quietly(lambda: iot.delete_provisioning_template(templateName=name))


def _function_arn(iot: Any, ctx: Context) -> str:
    """A Lambda function ARN of the probed region and account (no function needs to exist)."""
    account = ctx.client("sts").get_caller_identity()["Account"]
    return f"arn:aws:lambda:{iot.meta.region_name}:{account}:function:{ctx.scope('fn')}"


def remove_leftovers(iot: Any, iam: Any, prefix: str) -> list[str]:
    """What an interrupted probe left in ``iot``'s region, by the run's ``prefix``: authorizers
    (deactivated first), role aliases, CAs named by it (their device certificates first), then
    provisioning templates and IAM roles. Returns what it removed."""
    removed: list[str] = []
    for name in _listed(iot, "list_authorizers", "authorizers", "authorizerName", prefix):
        _quietly(partial(iot.update_authorizer, authorizerName=name, status="INACTIVE"))
        _quietly(partial(iot.delete_authorizer, authorizerName=name))
        removed.append(f"authorizer {name}")
    for name in _listed(iot, "list_role_aliases", "roleAliases", None, prefix):
        _quietly(partial(iot.delete_role_alias, roleAlias=name))
        removed.append(f"role alias {name}")
    for ca_id in _listed(iot, "list_ca_certificates", "certificates", "certificateId", ""):
        described = iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
        subject = x509.load_pem_x509_certificate(described["certificatePem"].encode()).subject
        names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if names and str(names[0].value).startswith(prefix):
            delete_ca(iot, ca_id)
            removed.append(f"CA certificate {ca_id}")
    for name in _listed(iot, "list_provisioning_templates", "templates", "templateName", prefix):
        _quietly(partial(iot.delete_provisioning_template, templateName=name))
        removed.append(f"provisioning template {name}")
    for name in _listed(iam, "list_roles", "Roles", "RoleName", prefix):
        _quietly(partial(iam.delete_role, RoleName=name))
        removed.append(f"IAM role {name}")
    return removed


# What ``remove_leftovers`` removes that the state table keeps under the entity's name (the
# pipeline's items for a CA or a certificate are keyed by id, which never names the run): the
# listing that finds each, as (kind, operation, key, name field).
_NAMED = (
    (EntityKind.AUTHORIZER, "list_authorizers", "authorizers", "authorizerName"),
    (EntityKind.ROLE_ALIAS, "list_role_aliases", "roleAliases", None),
    (EntityKind.PROVISIONING_TEMPLATE, "list_provisioning_templates", "templates", "templateName"),
)


def named_leftovers(iot: Any, prefix: str) -> list[tuple[EntityKind, str]]:
    """The leftovers in ``iot``'s region whose state-table items name the run (``prefix``)."""
    return [
        (kind, name)
        for kind, operation, key, field in _NAMED
        for name in _listed(iot, operation, key, field, prefix)
    ]


def _listed(client: Any, operation: str, key: str, field: str | None, prefix: str) -> list[str]:
    """Every name (``field`` of each item, or the item) a paginated listing gives, that starts
    with ``prefix``: read whole before anything is deleted."""
    names = [
        str(item if field is None else item[field])
        for page in client.get_paginator(operation).paginate()
        for item in page[key]
    ]
    return [name for name in names if name.startswith(prefix)]


def delete_ca(iot: Any, ca_id: str) -> None:
    for device in iot.list_certificates_by_ca(caCertificateId=ca_id)["certificates"]:
        delete_certificate(iot, device["certificateId"])
    _quietly(lambda: iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE"))
    _quietly(lambda: iot.delete_ca_certificate(certificateId=ca_id))


# ---- CA certificates ---------------------------------------------------------------------------


def register_ca_without_verification(iot: Any, ctx: Context) -> Answer:
    """RegisterCACertificate in DEFAULT mode without a verification certificate."""
    authority = CertificateAuthority.new(ctx.scope("ca"))
    answer = answer_of(
        lambda: iot.register_ca_certificate(
            caCertificate=authority.pem, certificateMode="DEFAULT", tags=ctx.scope.tags
        ),
        ctx.scope,
    )
    return _forget_ca(iot, answer, _ca_id_of(iot, authority))


def register_ca_sni_with_verification(iot: Any, ctx: Context) -> Answer:
    """RegisterCACertificate in SNI_ONLY mode with a (valid) verification certificate."""
    authority = CertificateAuthority.new(ctx.scope("ca"))
    verification = authority.issue(iot.get_registration_code()["registrationCode"])
    answer = answer_of(
        lambda: iot.register_ca_certificate(
            caCertificate=authority.pem,
            verificationCertificate=verification,
            certificateMode="SNI_ONLY",
            tags=ctx.scope.tags,
        ),
        ctx.scope,
    )
    return _forget_ca(iot, answer, _ca_id_of(iot, authority))


def register_ca_wrong_registration_code(iot: Any, ctx: Context) -> Answer:
    """DEFAULT mode, a verification certificate signed by the CA whose name is not the code."""
    authority = CertificateAuthority.new(ctx.scope("ca"))
    answer = answer_of(
        lambda: iot.register_ca_certificate(
            caCertificate=authority.pem,
            verificationCertificate=authority.issue("not-the-registration-code"),
            tags=ctx.scope.tags,
        ),
        ctx.scope,
    )
    return _forget_ca(iot, answer, _ca_id_of(iot, authority))


def register_ca_unsigned_verification(iot: Any, ctx: Context) -> Answer:
    """DEFAULT mode, a verification certificate named by the code but signed by another CA."""
    authority, other = CertificateAuthority.new(ctx.scope("ca")), CertificateAuthority.new()
    verification = other.issue(iot.get_registration_code()["registrationCode"])
    answer = answer_of(
        lambda: iot.register_ca_certificate(
            caCertificate=authority.pem,
            verificationCertificate=verification,
            tags=ctx.scope.tags,
        ),
        ctx.scope,
    )
    return _forget_ca(iot, answer, _ca_id_of(iot, authority))


def register_ca_twice(iot: Any, ctx: Context) -> Answer:
    """The same CA registered a second time in the same account and Region (SNI_ONLY)."""
    with _registered_ca(iot, ctx) as (authority, _):
        return answer_of(
            lambda: iot.register_ca_certificate(
                caCertificate=authority.pem, certificateMode="SNI_ONLY", tags=ctx.scope.tags
            ),
            ctx.scope,
        )


def register_ca_unknown_template(iot: Any, ctx: Context) -> Answer:
    """A CA whose registrationConfig names a provisioning template that does not exist."""
    authority = CertificateAuthority.new(ctx.scope("ca"))
    answer = answer_of(
        lambda: iot.register_ca_certificate(
            caCertificate=authority.pem,
            certificateMode="SNI_ONLY",
            registrationConfig={"templateName": ctx.scope("no-template")},
            tags=ctx.scope.tags,
        ),
        ctx.scope,
    )
    return _forget_ca(iot, answer, _ca_id_of(iot, authority))


def register_ca_fleet_template(iot: Any, ctx: Context) -> Answer:
    """A CA whose registrationConfig names a FLEET_PROVISIONING template (JITP needs JITP)."""
    authority = CertificateAuthority.new(ctx.scope("ca"))
    with _role(ctx, "role") as role, _template(iot, ctx, role) as template:
        answer = answer_of(
            lambda: iot.register_ca_certificate(
                caCertificate=authority.pem,
                certificateMode="SNI_ONLY",
                registrationConfig={"templateName": template},
                tags=ctx.scope.tags,
            ),
            ctx.scope,
        )
        return _forget_ca(iot, answer, _ca_id_of(iot, authority))


def delete_active_ca(iot: Any, ctx: Context) -> Answer:
    """DeleteCACertificate of an ACTIVE CA."""
    with _registered_ca(iot, ctx, active=True) as (_, ca_id):
        return answer_of(lambda: iot.delete_ca_certificate(certificateId=ca_id), ctx.scope)


def delete_ca_with_certificates(iot: Any, ctx: Context) -> Answer:
    """DeleteCACertificate of an INACTIVE CA a device certificate is still registered with."""
    with _registered_ca(iot, ctx, active=True) as (authority, ca_id):
        iot.register_certificate(
            certificatePem=authority.issue(ctx.scope("device")), caCertificatePem=authority.pem
        )
        iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
        return answer_of(lambda: iot.delete_ca_certificate(certificateId=ca_id), ctx.scope)


def register_certificate_inactive_ca(iot: Any, ctx: Context) -> Answer:
    """RegisterCertificate of a certificate signed by a registered but INACTIVE CA."""
    with _registered_ca(iot, ctx, active=False) as (authority, _):
        return answer_of(
            lambda: iot.register_certificate(
                certificatePem=authority.issue(ctx.scope("device")),
                caCertificatePem=authority.pem,
            ),
            ctx.scope,
        )


def register_certificate_unregistered_ca(iot: Any, ctx: Context) -> Answer:
    """RegisterCertificate naming a CA that is not registered."""
    authority = CertificateAuthority.new(ctx.scope("ca"))
    device = authority.issue(ctx.scope("device"))
    answer = answer_of(
        lambda: iot.register_certificate(certificatePem=device, caCertificatePem=authority.pem),
        ctx.scope,
    )
    if answer.accepted:
        listed = iot.list_certificates()["certificates"]
        for certificate in listed:
            described = iot.describe_certificate(certificateId=certificate["certificateId"])
            if described["certificateDescription"]["certificatePem"].strip() == device.strip():
                delete_certificate(iot, certificate["certificateId"])
    return answer


def register_certificate_wrong_ca(iot: Any, ctx: Context) -> Answer:
    """RegisterCertificate naming a registered, ACTIVE CA that did not sign the certificate."""
    other = CertificateAuthority.new(ctx.scope("other-ca"))
    with _registered_ca(iot, ctx, active=True) as (authority, _):
        return answer_of(
            lambda: iot.register_certificate(
                certificatePem=other.issue(ctx.scope("device")), caCertificatePem=authority.pem
            ),
            ctx.scope,
        )


# ---- provisioning templates --------------------------------------------------------------------


def template_body_not_json(iot: Any, ctx: Context) -> Answer:
    """CreateProvisioningTemplate whose body is not JSON."""
    with _role(ctx, "role") as role:
        name = ctx.scope("template")
        answer = answer_of(
            lambda: iot.create_provisioning_template(
                templateName=name,
                templateBody="{not json",
                provisioningRoleArn=role,
                tags=ctx.scope.tags,
            ),
            ctx.scope,
        )
        _quietly(lambda: iot.delete_provisioning_template(templateName=name))
        return answer


def create_template_twice(iot: Any, ctx: Context) -> Answer:
    """CreateProvisioningTemplate under a name that exists."""
    with _role(ctx, "role") as role, _template(iot, ctx, role) as name:
        return answer_of(
            lambda: iot.create_provisioning_template(
                templateName=name, templateBody=BODY, provisioningRoleArn=role, tags=ctx.scope.tags
            ),
            ctx.scope,
        )


def template_hook_on_jitp(iot: Any, ctx: Context) -> Answer:
    """CreateProvisioningTemplate of type JITP with a pre-provisioning hook."""
    with _role(ctx, "role") as role:
        name = ctx.scope("template")
        answer = answer_of(
            lambda: iot.create_provisioning_template(
                templateName=name,
                templateBody=BODY,
                provisioningRoleArn=role,
                type="JITP",
                preProvisioningHook={"targetArn": _function_arn(iot, ctx)},
                tags=ctx.scope.tags,
            ),
            ctx.scope,
        )
        _quietly(lambda: iot.delete_provisioning_template(templateName=name))
        return answer


def template_versions_limit(iot: Any, ctx: Context) -> Answer:
    """CreateProvisioningTemplateVersion until AWS refuses one (or ``MAX_VERSIONS_TRIED``
    versions exist): the limit is an assumption, the refusal its code."""
    with _role(ctx, "role") as role, _template(iot, ctx, role) as name:
        answer = Answer(None)
        for _ in range(MAX_VERSIONS_TRIED - 1):
            answer = answer_of(
                lambda: iot.create_provisioning_template_version(
                    templateName=name, templateBody=BODY
                ),
                ctx.scope,
            )
            if not answer.accepted:
                break
        return answer


def delete_default_template_version(iot: Any, ctx: Context) -> Answer:
    """DeleteProvisioningTemplateVersion of the template's default version."""
    with _role(ctx, "role") as role, _template(iot, ctx, role) as name:
        default = iot.describe_provisioning_template(templateName=name)["defaultVersionId"]
        return answer_of(
            lambda: iot.delete_provisioning_template_version(templateName=name, versionId=default),
            ctx.scope,
        )


def template_unknown_default_version(iot: Any, ctx: Context) -> Answer:
    """UpdateProvisioningTemplate naming a default version the template does not have."""
    with _role(ctx, "role") as role, _template(iot, ctx, role) as name:
        return answer_of(
            lambda: iot.update_provisioning_template(templateName=name, defaultVersionId=99),
            ctx.scope,
        )


def delete_template_used_by_ca(iot: Any, ctx: Context) -> Answer:
    """DeleteProvisioningTemplate of the JITP template a registered CA names."""
    with (
        _role(ctx, "role") as role,
        _template(iot, ctx, role, kind="JITP") as name,
        _registered_ca(iot, ctx, config={"templateName": name}),
    ):
        return answer_of(lambda: iot.delete_provisioning_template(templateName=name), ctx.scope)


# ---- role aliases ------------------------------------------------------------------------------


def _alias_answer(iot: Any, ctx: Context, role: str, seconds: int) -> Answer:
    alias = ctx.scope("alias")
    answer = answer_of(
        lambda: iot.create_role_alias(
            roleAlias=alias, roleArn=role, credentialDurationSeconds=seconds, tags=ctx.scope.tags
        ),
        ctx.scope,
    )
    _quietly(lambda: iot.delete_role_alias(roleAlias=alias))
    return answer


def role_alias_duration_range(iot: Any, ctx: Context) -> Answer:
    """CreateRoleAlias for 43201 seconds (botocore checks only the minimum before sending)."""
    with _role(ctx, "role", max_session=43200) as role:
        return _alias_answer(iot, ctx, role, 43201)


def role_alias_duration_over_role(iot: Any, ctx: Context) -> Answer:
    """CreateRoleAlias for longer than the role's maximum session duration (1 hour)."""
    with _role(ctx, "role", max_session=3600) as role:
        return _alias_answer(iot, ctx, role, 7200)


def create_role_alias_twice(iot: Any, ctx: Context) -> Answer:
    """CreateRoleAlias under a name that exists."""
    alias = ctx.scope("alias")
    with _role(ctx, "role") as role:
        iot.create_role_alias(roleAlias=alias, roleArn=role, tags=ctx.scope.tags)
        answer = answer_of(
            lambda: iot.create_role_alias(roleAlias=alias, roleArn=role, tags=ctx.scope.tags),
            ctx.scope,
        )
        _quietly(lambda: iot.delete_role_alias(roleAlias=alias))
        return answer


# ---- custom authorizers ------------------------------------------------------------------------


@contextmanager
def _authorizer(iot: Any, ctx: Context) -> Iterator[str]:
    """An ACTIVE authorizer without signing; deactivated and deleted at the end."""
    name = ctx.scope("authorizer")
    iot.create_authorizer(
        authorizerName=name,
        authorizerFunctionArn=_function_arn(iot, ctx),
        signingDisabled=True,
        status="ACTIVE",
        tags=ctx.scope.tags,
    )
    try:
        yield name
    finally:
        _quietly(lambda: iot.update_authorizer(authorizerName=name, status="INACTIVE"))
        _quietly(lambda: iot.delete_authorizer(authorizerName=name))


def create_authorizer_twice(iot: Any, ctx: Context) -> Answer:
    """CreateAuthorizer under a name that exists."""
    with _authorizer(iot, ctx) as name:
        return answer_of(
            lambda: iot.create_authorizer(
                authorizerName=name,
                authorizerFunctionArn=_function_arn(iot, ctx),
                signingDisabled=True,
                tags=ctx.scope.tags,
            ),
            ctx.scope,
        )


def authorizer_signing_without_keys(iot: Any, ctx: Context) -> Answer:
    """CreateAuthorizer with signing on (the default) and no token key name or public keys."""
    name = ctx.scope("authorizer")
    answer = answer_of(
        lambda: iot.create_authorizer(
            authorizerName=name, authorizerFunctionArn=_function_arn(iot, ctx), tags=ctx.scope.tags
        ),
        ctx.scope,
    )
    _quietly(lambda: iot.update_authorizer(authorizerName=name, status="INACTIVE"))
    _quietly(lambda: iot.delete_authorizer(authorizerName=name))
    return answer


def delete_active_authorizer(iot: Any, ctx: Context) -> Answer:
    """DeleteAuthorizer of an ACTIVE authorizer."""
    with _authorizer(iot, ctx) as name:
        return answer_of(lambda: iot.delete_authorizer(authorizerName=name), ctx.scope)


# Each probe is named after the refusal it provokes (``REFUSALS``'s key), with its operation.
ONBOARDING_PROBES = tuple(
    Probe(provoke.__name__, operation, provoke)
    for operation, probes in (
        (
            "RegisterCACertificate",
            (
                register_ca_without_verification,
                register_ca_sni_with_verification,
                register_ca_wrong_registration_code,
                register_ca_unsigned_verification,
                register_ca_twice,
                register_ca_unknown_template,
                register_ca_fleet_template,
            ),
        ),
        ("DeleteCACertificate", (delete_active_ca, delete_ca_with_certificates)),
        (
            "RegisterCertificate",
            (
                register_certificate_inactive_ca,
                register_certificate_unregistered_ca,
                register_certificate_wrong_ca,
            ),
        ),
        (
            "CreateProvisioningTemplate",
            (template_body_not_json, create_template_twice, template_hook_on_jitp),
        ),
        ("CreateProvisioningTemplateVersion", (template_versions_limit,)),
        ("DeleteProvisioningTemplateVersion", (delete_default_template_version,)),
        ("UpdateProvisioningTemplate", (template_unknown_default_version,)),
        ("DeleteProvisioningTemplate", (delete_template_used_by_ca,)),
        (
            "CreateRoleAlias",
            (role_alias_duration_range, role_alias_duration_over_role, create_role_alias_twice),
        ),
        ("CreateAuthorizer", (create_authorizer_twice, authorizer_signing_without_keys)),
        ("DeleteAuthorizer", (delete_active_authorizer,)),
    )
    for provoke in probes
)
