"""TestAuthorization on the sandbox (moto has none; ``MOTO_GAPS``).

The request is read as the AWS IoT API Reference and botocore's service model shape it
(``principal``, ``cognitoIdentityPoolId``, ``authInfos`` [{``actionType``, ``resources``}], the
``clientId`` query parameter, ``policyNamesToAdd``, ``policyNamesToSkip``); the principal's
certificate, policies and thing are read from moto's IoT backend; ``authorization.evaluate``
decides; the answer has AWS's shape (``authResults`` [{``authInfo``, ``allowed``, ``denied``
{``implicitDeny``, ``explicitDeny``}, ``authDecision``, ``missingContextValues``}]).

Which policies are the principal's: those attached to the certificate, and those of the static
thing groups of the thing the policy is evaluated for, with their ancestors' ("You can attach a
policy to a parent group and it is inherited by its child groups, and by all of the things in
the group and in its child groups", AWS IoT Developer Guide, "Static thing groups",
thing-groups.html; the same page tests such a thing with TestAuthorization). That thing is the
one the client id names, when it is attached to the certificate: moto keeps no exclusive thing
association, so every attachment is non-exclusive, for which "the value of clientId ... must
exactly match the thing name" (guide, thing-policy-variables.html). [assumption] That
TestAuthorization resolves the thing from ``clientId`` the way the broker does from the MQTT
client id; the conformance suite asks an account.

Refused as AWS refuses (``REFUSALS``, each probed by the conformance suite): authInfos outside
1..10, an authInfo without a valid actionType, a certificate that does not exist. Refused with the
sandbox's own code ``SandboxCannotEvaluate`` (AWS's answer unknown, so never guessed): a
principal other than a certificate ARN or none, ``cognitoIdentityPoolId``, an authInfo with other
than one resource or with a resource of another kind than its action's, an unknown name in
``policyNamesToAdd``/``policyNamesToSkip``, and whatever ``authorization`` does not evaluate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from moto.core.exceptions import JsonRESTError
from moto.iot.models import FakeCertificate, FakeThing, FakeThingGroup, IoTBackend
from moto.iot.responses import IoTResponse

from sandbox.emulation.authorization import (
    MQTT_RESOURCE_KINDS,
    Answer,
    Certificate,
    Connection,
    Policy,
    PolicyNotEvaluatedError,
    Request,
    Thing,
    evaluate,
)
from sandbox.emulation.refusals import refuse

# AuthInfo.actionType's values (botocore's iot service model, ActionType) and the policy action
# each tests (AWS IoT Developer Guide, "AWS IoT Core policy actions").
ACTION_TYPES: Mapping[str, str] = {
    "CONNECT": "iot:Connect",
    "PUBLISH": "iot:Publish",
    "SUBSCRIBE": "iot:Subscribe",
    "RECEIVE": "iot:Receive",
}
MAX_AUTH_INFOS = 10  # botocore's iot service model: AuthInfos "max": 10, "min": 1

_CERTIFICATE_ARN = re.compile(r"arn:aws[a-z-]*:iot:[a-z0-9-]+:\d{12}:cert/[0-9a-f]{64}")
_IOT_ARN = re.compile(r"arn:aws[a-z-]*:iot:[^:]*:[^:]*:(?P<kind>[a-z]+)/.*", re.DOTALL)

# X.509 name attributes by the guide's names (cert-policy-variables.html).
_NAME_OIDS = {
    "DistinguishedNameQualifier": NameOID.DN_QUALIFIER,
    "Country": NameOID.COUNTRY_NAME,
    "Organization": NameOID.ORGANIZATION_NAME,
    "OrganizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "State": NameOID.STATE_OR_PROVINCE_NAME,
    "CommonName": NameOID.COMMON_NAME,
    "SerialNumber": NameOID.SERIAL_NUMBER,
    "Title": NameOID.TITLE,
    "Surname": NameOID.SURNAME,
    "GivenName": NameOID.GIVEN_NAME,
    "Initials": NameOID.INITIALS,
    "Pseudonym": NameOID.PSEUDONYM,
    "GenerationQualifier": NameOID.GENERATION_QUALIFIER,
}


class SandboxCannotEvaluateError(JsonRESTError):
    """The sandbox does not know AWS's answer to this request: refused, never guessed. Not an
    AWS error code (like the gateway's ``SandboxRegionNotServed``); permanent."""

    code = 400

    def __init__(self, message: str) -> None:
        super().__init__("SandboxCannotEvaluate", f"the sandbox cannot evaluate this: {message}")


def _response_test_authorization(self: IoTResponse) -> str:
    """POST /test-authorization?clientId=... (AWS IoT API Reference, TestAuthorization)."""
    body = json.loads(self.body or "{}")
    answers = authorization_results(
        self.iot_backend,
        principal=body.get("principal"),
        auth_infos=body.get("authInfos"),
        client_id=self._get_param("clientId"),
        cognito_identity_pool_id=body.get("cognitoIdentityPoolId"),
        policy_names_to_add=body.get("policyNamesToAdd") or (),
        policy_names_to_skip=body.get("policyNamesToSkip") or (),
    )
    return json.dumps({"authResults": answers})


def authorization_results(
    backend: IoTBackend,
    *,
    principal: str | None,
    auth_infos: Any,
    client_id: str | None = None,
    cognito_identity_pool_id: str | None = None,
    policy_names_to_add: Any = (),
    policy_names_to_skip: Any = (),
) -> list[dict[str, Any]]:
    """The ``authResults`` of one TestAuthorization call on ``backend`` (one region)."""
    requests = _requests(auth_infos)
    if cognito_identity_pool_id is not None:
        raise SandboxCannotEvaluateError("cognitoIdentityPoolId: Cognito identities")
    if not principal:
        raise SandboxCannotEvaluateError("a request without a principal")
    if not _CERTIFICATE_ARN.fullmatch(principal):
        raise SandboxCannotEvaluateError(
            f"principal {principal!r}: only certificate ARNs are evaluated (not thing groups or "
            "Cognito identities)"
        )
    certificate = _certificate(backend, principal)
    thing = _thing(backend, principal, client_id)
    policies = _policies(backend, principal, thing, policy_names_to_add, policy_names_to_skip)
    connection = Connection(_certificate_names(certificate), client_id, _as_thing(thing))
    results = []
    for info, request in requests:
        try:
            answer = evaluate(policies, connection, request)
        except PolicyNotEvaluatedError as error:
            raise SandboxCannotEvaluateError(str(error)) from error
        results.append(_auth_result(info, answer))
    return results


def _requests(auth_infos: Any) -> list[tuple[dict[str, Any], Request]]:
    if not isinstance(auth_infos, list) or not 1 <= len(auth_infos) <= MAX_AUTH_INFOS:
        count = len(auth_infos) if isinstance(auth_infos, list) else 0
        raise refuse("test_authorization_auth_infos", count=count)
    requests = []
    for index, info in enumerate(auth_infos):
        action_type = info.get("actionType") if isinstance(info, dict) else None
        if not isinstance(action_type, str) or action_type not in ACTION_TYPES:
            raise refuse("test_authorization_action_type", index=index, value=action_type)
        resources = info.get("resources")
        if not isinstance(resources, list) or len(resources) != 1:
            count = len(resources) if isinstance(resources, list) else 0
            raise SandboxCannotEvaluateError(
                f"authInfos[{index}] has {count} resources: how AWS combines the decisions of "
                "several resources is not documented; ask one resource per authInfo"
            )
        action, resource = ACTION_TYPES[action_type], resources[0]
        kind = _IOT_ARN.fullmatch(resource) if isinstance(resource, str) else None
        if kind is None or kind["kind"] != MQTT_RESOURCE_KINDS[action]:
            raise SandboxCannotEvaluateError(
                f"authInfos[{index}]: {action_type} names a {MQTT_RESOURCE_KINDS[action]} "
                f"ARN (guide, iot-action-resources.html), not {resource!r}"
            )
        requests.append((info, Request(action, resource)))
    return requests


def _certificate(backend: IoTBackend, principal: str) -> FakeCertificate:
    for certificate in backend.certificates.values():
        if certificate.arn == principal:
            return certificate
    raise refuse("test_authorization_unknown_principal", principal=principal)


def _thing(backend: IoTBackend, principal: str, client_id: str | None) -> FakeThing | None:
    """The thing the client id names, if it is attached to the certificate (module docstring)."""
    if client_id is None or (principal, client_id) not in backend.principal_things:
        return None
    thing: FakeThing = backend.principal_things[(principal, client_id)][1]
    return thing


def _as_thing(thing: FakeThing | None) -> Thing | None:
    if thing is None:
        return None
    type_name = thing.thing_type.thing_type_name if thing.thing_type else None
    return Thing(thing.thing_name, type_name, dict(thing.attributes))


def _policies(
    backend: IoTBackend, principal: str, thing: FakeThing | None, add: Any, skip: Any
) -> list[Policy]:
    """The certificate's policies, then its thing's groups' (nearest group first), then
    ``policyNamesToAdd``, without ``policyNamesToSkip`` ("treated as if they are attached" / "as
    if they are not attached", API Reference, TestAuthorization)."""
    for name in [*add, *skip]:
        if name not in backend.policies:
            raise SandboxCannotEvaluateError(
                f"policy {name!r} of policyNamesToAdd/policyNamesToSkip does not exist: AWS's "
                "answer is not documented"
            )
    targets = [principal, *(_groups_of(backend, thing) if thing is not None else ())]
    names: list[str] = []
    for target in targets:
        names += [name for (attached, name) in backend.principal_policies if attached == target]
    names += list(add)
    kept = [name for name in dict.fromkeys(names) if name not in set(skip)]
    return [
        Policy(name, backend.policies[name].arn, _text(backend.policies[name].document))
        for name in kept
    ]


def _groups_of(backend: IoTBackend, thing: FakeThing) -> Iterator[str]:
    """The ARNs of the static groups holding ``thing`` and of their ancestors."""
    by_name = {group.thing_group_name: group for group in backend.thing_groups.values()}
    for group in list(backend.thing_groups.values()):
        if thing.arn not in group.things:
            continue
        current: FakeThingGroup | None = group
        while current is not None:
            yield current.arn
            current = by_name.get(current.parent_group_name or "")


def _text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _certificate_names(certificate: FakeCertificate) -> Certificate:
    try:
        parsed = x509.load_pem_x509_certificate(certificate.certificate_pem.encode())
    except ValueError:  # not a certificate moto could parse: no attribute is known
        return Certificate(certificate.status)
    return Certificate(
        certificate.status, _name_values(parsed.subject), _name_values(parsed.issuer)
    )


def _name_values(name: x509.Name) -> dict[str, tuple[str, ...]]:
    values = {
        label: tuple(str(a.value) for a in name.get_attributes_for_oid(oid))
        for label, oid in _NAME_OIDS.items()
    }
    return {label: found for label, found in values.items() if found}


def _auth_result(info: Mapping[str, Any], answer: Answer) -> dict[str, Any]:
    """One AuthResult (AWS IoT API Reference, AuthResult). [assumption] Each policy is listed
    once: under explicitDeny when a statement of it denies, else allowed when one allows, else
    implicitDeny; the API reference describes the lists ("Policies that don't contain a matching
    allow or deny statement", "The policies that denied the authorization") but not whether a
    policy that both allows and denies appears twice."""

    def listed(decision: Any) -> dict[str, Any]:
        return {
            "policies": [
                {"policyName": p.name, "policyArn": p.arn} for p in answer.policies(decision)
            ]
        }

    return {
        "authInfo": {"actionType": info["actionType"], "resources": list(info["resources"])},
        "allowed": listed("ALLOWED"),
        "denied": {
            "implicitDeny": listed("IMPLICIT_DENY"),
            "explicitDeny": listed("EXPLICIT_DENY"),
        },
        "authDecision": answer.decision,
        "missingContextValues": list(answer.missing),
    }
