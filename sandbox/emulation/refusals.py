"""Every refusal the emulated registry claims AWS makes, in one table, each with its source.

The sandbox must never be more lenient than AWS: where AWS refuses a call, the emulation refuses
it with AWS's error code. ``REFUSALS`` is the list to check against AWS's real answers (issue 17
records them into a JSON file and compares): ``code`` is AWS's documented error for the call;
``message`` is AWS's text where a public report shows it (``message_seen``), else our wording
(an assumption, listed in ``MOTO_GAPS``). ``by`` says who supplies the refusal in the sandbox:
this package, or moto itself (kept here so the list is complete).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from moto.iot.exceptions import (
    DeleteConflictException,
    InvalidRequestException,
    ResourceNotFoundException,
)

from sandbox.emulation.registry import _Installed


@dataclass(frozen=True)
class Refusal:
    operation: str
    code: str
    message: str  # a str.format template
    source: str
    message_seen: bool  # True: the exact text appears in a public report of AWS's answer
    by: Literal["emulation", "moto"] = "emulation"


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
    "sibling_thing_groups": Refusal(
        "AddThingToThingGroup",
        "InvalidRequestException",
        "Thing {name} cannot be added to {group}: it is already in {other}, which shares "
        "the parent {parent}",
        "AWS IoT guide, 'Static thing groups' ('you can't add a thing to two groups which "
        "share a common parent'): https://docs.aws.amazon.com/iot/latest/developerguide/"
        "thing-groups.html",
        message_seen=False,
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
}


_EXCEPTIONS: dict[
    str, type[InvalidRequestException | DeleteConflictException | ResourceNotFoundException]
] = {
    "InvalidRequestException": InvalidRequestException,
    "DeleteConflictException": DeleteConflictException,
    "ResourceNotFoundException": ResourceNotFoundException,
}


def refuse(
    key: str, **values: Any
) -> InvalidRequestException | DeleteConflictException | ResourceNotFoundException:
    """The exception for one of ``REFUSALS`` (by AWS's error code), counted in the installed
    emulation's ``refusals``."""
    refusal = REFUSALS[key]
    if _Installed.emulation is not None:
        _Installed.emulation.refusals[key] += 1
    return _EXCEPTIONS[refusal.code](refusal.message.format(**values))


UNTYPED_MAX_ATTRIBUTES = 3
THING_TYPE_DELETE_WAIT_SECONDS = 300
POLICY_DELETE_AFTER_DETACH_SECONDS = 5
"""[assumption] How long after a detach the emulation refuses DeletePolicy. AWS documents "up to
five minutes", i.e. any delay in [0, 300] seconds; the sandbox takes one instance of that range,
a few seconds of its clock, so the converger's retry is exercised without tests waiting minutes
(tests move the clock on: ``Sandbox.advance_clock``)."""
