"""Every refusal the emulated registry claims AWS makes, in one table, each with its source.

The sandbox must never be more lenient than AWS: where AWS refuses a call, the emulation refuses
it with AWS's error code. ``REFUSALS`` is the list to check against AWS's real answers (issue 17
records them into a JSON file and compares): ``code`` is AWS's documented error for the call;
``message`` is AWS's text where a public report shows it (``message_seen``), else our wording
(an assumption, listed in ``MOTO_GAPS``). ``by`` says who supplies the refusal in the sandbox:
this package, or moto itself (kept here so the list is complete). The registry quotas' entries
are kept in ``quota_refusals``, the thing groups' kind and hierarchy refusals in
``group_refusals`` (one table, three files: each under 450 lines).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
from moto.core.exceptions import JsonRESTError

from sandbox.emulation.group_refusals import GROUP_REFUSALS
from sandbox.emulation.quota_refusals import QUOTA_REFUSALS
from sandbox.emulation.refusal import API as _API
from sandbox.emulation.refusal import GUIDE as _GUIDE
from sandbox.emulation.refusal import Refusal
from sandbox.emulation.registry import _Installed

REFUSALS: dict[str, Refusal] = {
    "update_thing_type_beyond_mqtt5": Refusal(
        "UpdateThingType",
        "InvalidRequestException",
        "Can only update mqtt5Configuration.",
        "https://github.com/aws/aws-cli/issues/9884 (AWS's answer to a searchableAttributes "
        "update); CloudFormation AWS::IoT::ThingType: description and searchable attributes "
        "'Update requires: Replacement'",
        message_seen=True,
    ),
    "delete_thing_type_not_deprecated": Refusal(
        "DeleteThingType",
        "InvalidRequestException",
        "Can not delete thing type {name}: it is not deprecated",
        "AWS IoT guide, 'Delete a thing type' ('You can delete thing types only after they "
        "have been deprecated'): https://docs.aws.amazon.com/iot/latest/developerguide/"
        "delete-thing-types.html",
        message_seen=False,
    ),
    "delete_thing_type_too_soon": Refusal(
        "DeleteThingType",
        "InvalidRequestException",
        "Cannot delete thing type : {name}. Please wait for 5 minutes after deprecation and "
        "then retry",
        "AWS IoT guide, 'Delete a thing type' ('wait for five minutes after you deprecate "
        "it'); the message as public scripts and hashicorp/terraform-provider-aws "
        "(internal/service/iot/thing_type.go, which retries it) show it",
        message_seen=True,
    ),
    "delete_thing_type_in_use": Refusal(
        "DeleteThingType",
        "InvalidRequestException",
        "Can not delete thing type {name}: things are still associated with it",
        "AWS IoT API Reference, DeleteThingType ('You cannot delete a thing type if it has "
        "things associated with it'): https://docs.aws.amazon.com/iot/latest/apireference/"
        "API_DeleteThingType.html",
        message_seen=False,
    ),
    "untyped_thing_attributes": Refusal(
        "CreateThing/UpdateThing",
        "InvalidRequestException",
        "A thing without a thing type can have at most 3 attributes: {name}",
        "AWS IoT guide, 'Thing types' (things without a type: up to three attributes; "
        "CloudFormation AWS::IoT::Thing AttributePayload: 'up to three attributes'): "
        "https://docs.aws.amazon.com/iot/latest/developerguide/thing-types.html",
        message_seen=False,
    ),
    "delete_thing_group_with_children": Refusal(
        "DeleteThingGroup",
        "InvalidRequestException",
        " Cannot delete thing group : {name} when there are still child groups attached to it",
        "https://github.com/getmoto/moto/issues/2941 (AWS's answer quoted; moto refuses with it "
        "since getmoto/moto#2942); the converger deletes children first and takes this refusal "
        "for a wait (pipeline.aws.WAIT_REFUSALS)",
        message_seen=True,
        by="moto",
    ),
    "delete_thing_with_principals": Refusal(
        "DeleteThing",
        "InvalidRequestException",
        "Cannot delete. Thing {name} is still attached to one or more principals",
        "https://github.com/rebuy-de/aws-nuke/issues/374, "
        "https://github.com/getmoto/moto/issues/4616 (moto refuses it since)",
        message_seen=True,
        by="moto",
    ),
    "update_revoked_certificate": Refusal(
        "UpdateCertificate",
        "CertificateStateException",
        "Certificate {name} is REVOKED: a revoked certificate's status cannot be changed.",
        "AWS IoT guide, 'Revoke a client certificate' ('Once a certificate is revoked, it's "
        "status can't be changed'): https://docs.aws.amazon.com/iot/latest/developerguide/"
        "revoke-ca-cert.html; the code: AWS IoT API Reference, UpdateCertificate "
        "(CertificateStateException, 'The certificate operation is not allowed')",
        message_seen=False,
    ),
    "delete_policy_just_detached": Refusal(
        "DeletePolicy",
        "DeleteConflictException",
        "The policy cannot be deleted yet: a target was detached from it less than "
        "{seconds} seconds ago (name={name})",
        "AWS IoT API Reference, DeletePolicy ('Because of the distributed nature of AWS, it can "
        "take up to five minutes after a policy is detached before it's ready to be deleted'; "
        "errors: DeleteConflictException): https://docs.aws.amazon.com/iot/latest/apireference/"
        "API_DeletePolicy.html; DetachPolicy says the same",
        message_seen=False,
    ),
    # TestAuthorization (sandbox.emulation.authorization_responses). Its API reference names the
    # codes (InvalidRequestException: "The request is not valid"; ResourceNotFoundException:
    # "The specified resource does not exist"), not which request gets which: each is a probe.
    "test_authorization_auth_infos": Refusal(
        "TestAuthorization",
        "InvalidRequestException",
        "authInfos: {count} given, between 1 and 10 are allowed",
        "AWS IoT API Reference, TestAuthorization (authInfos: 'Array Members: Minimum number of "
        "1 item. Maximum number of 10 items'; errors: InvalidRequestException): "
        "https://docs.aws.amazon.com/iot/latest/apireference/API_TestAuthorization.html; "
        "botocore's iot service model (AuthInfos min 1, max 10)",
        message_seen=False,
    ),
    "test_authorization_action_type": Refusal(
        "TestAuthorization",
        "InvalidRequestException",
        "authInfos[{index}].actionType: {value!r} is not one of PUBLISH, SUBSCRIBE, RECEIVE, "
        "CONNECT",
        "AWS IoT API Reference, AuthInfo (actionType, valid values PUBLISH | SUBSCRIBE | "
        "RECEIVE | CONNECT; optional in the model, yet an authorization needs an action): "
        "https://docs.aws.amazon.com/iot/latest/apireference/API_AuthInfo.html",
        message_seen=False,
    ),
    "test_authorization_unknown_principal": Refusal(
        "TestAuthorization",
        "ResourceNotFoundException",
        "The certificate {principal} does not exist",
        "AWS IoT API Reference, TestAuthorization (principal: 'CertificateArn "
        "(arn:aws:iot:region:accountId:cert/certificateId)'; errors: ResourceNotFoundException, "
        "'The specified resource does not exist'): "
        "https://docs.aws.amazon.com/iot/latest/apireference/API_TestAuthorization.html",
        message_seen=False,
    ),
    # ---- CA certificates and certificate registration (sandbox.emulation.cacertificates) ----
    "register_ca_without_verification": Refusal(
        "RegisterCACertificate",
        "InvalidRequestException",
        "certificateMode DEFAULT needs a verificationCertificate",
        f"{_API}RegisterCACertificate.html (verificationCertificate: 'If certificateMode is "
        "DEFAULT or not provided, the verificationCertificate field must not be empty')",
        message_seen=False,
    ),
    "register_ca_sni_with_verification": Refusal(
        "RegisterCACertificate",
        "InvalidRequestException",
        "certificateMode SNI_ONLY takes no verificationCertificate",
        f"{_API}RegisterCACertificate.html (verificationCertificate: 'If certificateMode is "
        "SNI_ONLY, the verificationCertificate field must be empty')",
        message_seen=False,
    ),
    "register_ca_wrong_registration_code": Refusal(
        "RegisterCACertificate",
        "RegistrationCodeValidationException",
        "The verification certificate's common name {common_name!r} is not the registration code",
        f"{_GUIDE}manage-your-CA-certs.html (DEFAULT mode: the verification certificate's Common "
        f"Name is GetRegistrationCode's registrationCode); {_API}RegisterCACertificate.html "
        "(RegistrationCodeValidationException: 'The registration code is invalid')",
        message_seen=False,
    ),
    "register_ca_unsigned_verification": Refusal(
        "RegisterCACertificate",
        "CertificateValidationException",
        "The verification certificate is not signed by the CA certificate's key",
        f"{_GUIDE}manage-your-CA-certs.html (the verification certificate is signed with the CA's "
        f"private key: proof of possession); {_API}RegisterCACertificate.html "
        "(CertificateValidationException: 'The certificate is invalid')",
        message_seen=False,
    ),
    "register_ca_twice": Refusal(
        "RegisterCACertificate",
        "ResourceAlreadyExistsException",
        "The CA certificate {certificate_id} is already registered",
        f"{_API}RegisterCACertificate.html (ResourceAlreadyExistsException); a certificate's id "
        "is the hash of its DER (MOTO_GAPS), so a second registration names the same resource",
        message_seen=False,
    ),
    "register_ca_unknown_template": Refusal(
        "RegisterCACertificate/UpdateCACertificate",
        "ResourceNotFoundException",
        "registrationConfig.templateName: no provisioning template {name}",
        f"{_GUIDE}jit-provisioning.html (a CA names its JITP template by templateName); "
        f"{_API}RegisterCACertificate.html (ResourceNotFoundException)",
        message_seen=False,
    ),
    "register_ca_fleet_template": Refusal(
        "RegisterCACertificate/UpdateCACertificate",
        "InvalidRequestException",
        "registrationConfig.templateName: {name} is a {type} template, not JITP",
        f"{_GUIDE}jit-provisioning.html ('For just-in-time provisioning (JITP), you must specify "
        "template type to be JITP when creating the provisioning template')",
        message_seen=False,
    ),
    "delete_active_ca": Refusal(
        "DeleteCACertificate",
        "CertificateStateException",
        "Certificate must be deactivated (not ACTIVE) before deletion. Id: {certificate_id}",
        f"{_API}DeleteCACertificate.html (CertificateStateException: 'The certificate operation "
        "is not allowed'); hashicorp/terraform-provider-aws internal/service/iot/"
        "ca_certificate.go (deactivates a CA before deleting it)",
        message_seen=False,
    ),
    "delete_ca_with_certificates": Refusal(
        "DeleteCACertificate",
        "CertificateStateException",
        "The CA certificate {certificate_id} still has {count} registered device certificate(s)",
        f"[assumption] {_API}DeleteCACertificate.html lists CertificateStateException; no public "
        "page says whether device certificates registered with the CA block its deletion",
        message_seen=False,
    ),
    "register_certificate_inactive_ca": Refusal(
        "RegisterCertificate",
        "CertificateStateException",
        "The CA certificate {certificate_id} is not ACTIVE",
        f"{_GUIDE}manage-your-CA-certs.html ('The CA certificate must be active before you can "
        f"register any client certificates it has signed'); {_API}RegisterCertificate.html "
        "(CertificateStateException)",
        message_seen=False,
    ),
    "register_certificate_unregistered_ca": Refusal(
        "RegisterCertificate",
        "CertificateValidationException",
        "No registered CA certificate {certificate_id} issued this certificate",
        f"{_GUIDE}manual-cert-registration.html ('The client certificate must be signed by a "
        f"certificate authority (CA) that you have registered'); {_API}RegisterCertificate.html "
        "(CertificateValidationException: 'The certificate is invalid')",
        message_seen=False,
    ),
    "register_certificate_wrong_ca": Refusal(
        "RegisterCertificate",
        "CertificateValidationException",
        "The certificate is not signed by the CA certificate {certificate_id}",
        f"{_API}RegisterCertificate.html (caCertificatePem: 'The CA certificate used to sign the "
        "device certificate being registered'; CertificateValidationException)",
        message_seen=False,
    ),
    # ---- provisioning templates (sandbox.emulation.provisioning) -----------------------------
    "template_body_not_json": Refusal(
        "CreateProvisioningTemplate/CreateProvisioningTemplateVersion",
        "InvalidRequestException",
        "templateBody is not a JSON object: {reason}",
        f"{_API}CreateProvisioningTemplate.html (templateBody: 'The JSON formatted contents of "
        f"the provisioning template'); {_GUIDE}provision-template.html",
        message_seen=False,
    ),
    "create_template_twice": Refusal(
        "CreateProvisioningTemplate",
        "ResourceAlreadyExistsException",
        "A provisioning template named {name} already exists",
        f"{_API}CreateProvisioningTemplate.html (ResourceAlreadyExistsException)",
        message_seen=False,
    ),
    "template_hook_on_jitp": Refusal(
        "CreateProvisioningTemplate/UpdateProvisioningTemplate",
        "InvalidRequestException",
        "preProvisioningHook: {name} is a JITP template; only FLEET_PROVISIONING takes a hook",
        f"{_API}CreateProvisioningTemplate.html (preProvisioningHook: 'Only supports template of "
        "type FLEET_PROVISIONING')",
        message_seen=False,
    ),
    "template_versions_limit": Refusal(
        "CreateProvisioningTemplateVersion",
        "VersionsLimitExceededException",
        "The provisioning template {name} already has {count} versions",
        f"{_API}CreateProvisioningTemplateVersion.html (VersionsLimitExceededException); "
        "[assumption] the limit of 5 versions (TEMPLATE_VERSIONS_LIMIT)",
        message_seen=False,
    ),
    "delete_default_template_version": Refusal(
        "DeleteProvisioningTemplateVersion",
        "InvalidRequestException",
        "Version {version} is the default version of {name}",
        f"[assumption] {_API}DeleteProvisioningTemplateVersion.html lists "
        "InvalidRequestException and DeleteConflictException; DeletePolicyVersion, its policy "
        "twin, refuses the default version ('use DeletePolicy')",
        message_seen=False,
    ),
    "template_unknown_default_version": Refusal(
        "UpdateProvisioningTemplate",
        "InvalidRequestException",
        "defaultVersionId {version}: {name} has no such version",
        f"[assumption] {_API}UpdateProvisioningTemplate.html (defaultVersionId: 'The ID of the "
        "default provisioning template version'; InvalidRequestException)",
        message_seen=False,
    ),
    "delete_template_used_by_ca": Refusal(
        "DeleteProvisioningTemplate",
        "DeleteConflictException",
        "{name} is the provisioning template of the CA certificate {certificate_id}",
        f"[assumption] {_API}DeleteProvisioningTemplate.html (DeleteConflictException: 'You can't "
        "delete the resource because it is attached to one or more resources'): a CA's "
        "registrationConfig.templateName is such an attachment",
        message_seen=False,
    ),
    # ---- role aliases (sandbox.emulation.rolealiases) ----------------------------------------
    "role_alias_duration_range": Refusal(
        "CreateRoleAlias/UpdateRoleAlias",
        "InvalidRequestException",
        "credentialDurationSeconds {value} is outside 900..43200",
        f"{_API}CreateRoleAlias.html (credentialDurationSeconds: 'Minimum value of 900. Maximum "
        f"value of 43200'); {_GUIDE}authorizing-direct-aws.html",
        message_seen=False,
    ),
    "role_alias_duration_over_role": Refusal(
        "CreateRoleAlias/UpdateRoleAlias",
        "InvalidRequestException",
        "credentialDurationSeconds {value} exceeds the maximum session duration {maximum} of {role}",
        f"{_API}CreateRoleAlias.html ('must be less than or equal to the maximum session duration "
        "of the IAM role that the role alias references'); [assumption] checked on the call",
        message_seen=False,
    ),
    "create_role_alias_twice": Refusal(
        "CreateRoleAlias",
        "ResourceAlreadyExistsException",
        "RoleAlias cannot be created - already exists (name={name})",
        f"{_API}CreateRoleAlias.html (ResourceAlreadyExistsException)",
        message_seen=False,
        by="moto",
    ),
    # ---- custom authorizers (sandbox.emulation.authorizers) ----------------------------------
    "create_authorizer_twice": Refusal(
        "CreateAuthorizer",
        "ResourceAlreadyExistsException",
        "An authorizer named {name} already exists",
        f"{_API}CreateAuthorizer.html (ResourceAlreadyExistsException)",
        message_seen=False,
    ),
    "authorizer_signing_without_keys": Refusal(
        "CreateAuthorizer",
        "InvalidRequestException",
        "Signing is enabled: tokenKeyName and tokenSigningPublicKeys are required",
        f"{_GUIDE}config-custom-auth.html ('Values for the tokenKeyName and "
        "tokenSigningPublicKeys parameters are optional if you have disabled signing. They are "
        "required values if signing is enabled')",
        message_seen=False,
    ),
    "delete_active_authorizer": Refusal(
        "DeleteAuthorizer",
        "InvalidRequestException",
        "The authorizer {name} is ACTIVE: set it INACTIVE before deleting it",
        f"{_GUIDE}custom-auth-tutorial.html ('You can't delete a custom authorizer while it's "
        f"active'); [assumption] the code, one of {_API}DeleteAuthorizer.html's",
        message_seen=False,
    ),
    # ---- device shadows (sandbox.emulation.shadows) -----------------------------------------
    "shadow_too_large": Refusal(
        "UpdateThingShadow",
        "RequestEntityTooLargeException",
        "The payload exceeds the maximum size allowed: {size} bytes of state, {limit} allowed",
        f"{_GUIDE}diagnosing-shadows.html ('The device's shadow supports 8 KB of data only'; "
        "only desired and reported count); the code: botocore's iot-data model, "
        "UpdateThingShadow (RequestEntityTooLargeException, HTTP 413)",
        message_seen=False,
    ),
    # ---- retained messages (sandbox.emulation.retained) -------------------------------------
    "publish_payload_too_large": Refusal(
        "Publish",
        "RequestEntityTooLargeException",
        "The payload exceeds the maximum size allowed: {size} bytes, {limit} allowed",
        "https://docs.aws.amazon.com/general/latest/gr/iot-core.html (message broker limits, "
        "'Message size': 128 KB; 'AWS IoT rejects messages larger than this size'); "
        "[assumption] the code, iot-data's for a body over a limit (UpdateThingShadow's)",
        message_seen=False,
    ),
    "retain_on_reserved_topic": Refusal(
        "Publish",
        "InvalidRequestException",
        "Retained messages cannot be published to a reserved topic: {topic}",
        f"{_GUIDE}mqtt.html#mqtt-retain ('You can't publish to a reserved topic with the "
        "RETAIN flag set'); [assumption] the code, one of Publish's in botocore's model",
        message_seen=False,
    ),
    **GROUP_REFUSALS,
    **QUOTA_REFUSALS,
}


class RefusedError(JsonRESTError):
    """AWS's answer to a refused call: its error ``code`` (the ``__type`` botocore reads) and the
    HTTP status botocore's iot service model gives that error shape (``httpStatusCode``)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(error_code, message)
        self.code = http_status(error_code)


@cache
def http_status(error_code: str) -> int:
    """The HTTP status of one of AWS IoT's error shapes (botocore's iot service model, else its
    iot-data model: the Device Shadow service's)."""
    session = botocore.session.get_session()
    for service in ("iot", "iot-data"):
        model = session.get_service_model(service)
        if error_code in model.shape_names:
            return int(model.shape_for(error_code).metadata["error"]["httpStatusCode"])
    raise KeyError(f"no error shape {error_code} in botocore's iot or iot-data model")


def refuse(key: str, **values: Any) -> RefusedError:
    """The exception for one of ``REFUSALS`` (by AWS's error code), counted in the installed
    emulation's ``refusals``."""
    refusal = REFUSALS[key]
    if _Installed.emulation is not None:
        _Installed.emulation.refusals[key] += 1
    return RefusedError(refusal.code, refusal.message.format(**values))


THING_TYPE_DELETE_WAIT_SECONDS = 300
POLICY_DELETE_AFTER_DETACH_SECONDS = 5
"""[assumption] How long after a detach the emulation refuses DeletePolicy. AWS documents "up to
five minutes", i.e. any delay in [0, 300] seconds; the sandbox takes one instance of that range,
a few seconds of its clock, so the converger's retry is exercised without tests waiting minutes
(tests move the clock on: ``Sandbox.advance_clock``)."""
