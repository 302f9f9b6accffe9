"""Emulation: the EventBridge events CloudTrail delivers for AWS IoT's control-plane calls.

moto records no CloudTrail events for IoT calls and delivers nothing to EventBridge, so the
sandbox builds the event a real account's default bus would carry for a call it made: an
``AWS API Call via CloudTrail`` event from ``aws.iot`` whose ``detail`` is the CloudTrail record
(``eventTime`` to the second, ``eventName``, ``awsRegion``, ``eventID``, ``requestParameters``,
``responseElements``). Shapes: Amazon EventBridge User Guide, "Events from AWS services"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event.html); AWS CloudTrail
User Guide, "CloudTrail record contents"; AWS IoT Developer Guide, "Logging AWS IoT API calls
using AWS CloudTrail" (its AttachPolicy example).

[assumption] Which response fields CloudTrail keeps for each IoT call is not documented: the
sandbox keeps ``certificateId``/``certificateArn``, ``policyName``/``policyVersionId`` and the
onboarding kinds' names, ARNs and version ids (``_KEPT_RESPONSE_FIELDS``), never a private key
(CreateKeysAndCertificate's ``keyPair``), and tests also deliver events with ``responseElements``
null, which the pipeline must survive. The onboarding kinds' modules publish through
``publish_call`` (``sandbox.emulation.onboarding``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.iot.exceptions import CertificateStateException, DeleteConflictException
from moto.iot.models import IoTBackend

from pipeline import rules
from pipeline.errors import RegistryValidationError
from sandbox.emulation.patches import _PATCHES, JsonDict
from sandbox.emulation.quotas import refuse_dynamic_policy_target
from sandbox.emulation.refusals import POLICY_DELETE_AFTER_DETACH_SECONDS, REFUSALS, refuse
from sandbox.emulation.registry import RegistryEmulation, _Installed
from sandbox.emulation.thing_principals import requested_type

# Response fields the emulation passes on (never keys or PEMs of created certificates).
_KEPT_RESPONSE_FIELDS = (
    "certificateId",
    "certificateArn",
    "policyName",
    "policyVersionId",
    # the onboarding kinds' calls (sandbox.emulation.onboarding)
    "templateArn",
    "templateName",
    "defaultVersionId",
    "versionId",
    "isDefaultVersion",
    "roleAlias",
    "roleAliasArn",
    "authorizerName",
    "authorizerArn",
)


def cloudtrail_event(
    event_name: str,
    request: dict[str, Any] | None,
    response: dict[str, Any] | None = None,
    *,
    region: str,
    account: str = "123456789012",
    when: float,
    event_id: str | None = None,
    error_code: str | None = None,
) -> dict[str, Any]:
    """The EventBridge event for one AWS IoT call made at epoch second ``when``."""
    stamp = datetime.fromtimestamp(int(when), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "accountId": account},
        "eventTime": stamp,
        "eventSource": "iot.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": "iot-crr-sandbox",
        "requestParameters": request,
        "responseElements": _kept(response),
        "requestID": str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error_code is not None:
        record["errorCode"] = error_code
        record["errorMessage"] = error_code
        record["responseElements"] = None
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iot",
        "account": account,
        "time": stamp,
        "region": region,
        "resources": [],
        "detail": record,
    }


def _kept(response: dict[str, Any] | None) -> dict[str, Any] | None:
    if response is None:
        return None
    kept = {key: response[key] for key in _KEPT_RESPONSE_FIELDS if key in response}
    return kept or None


# --------------------------------------------------------------------------------------------
# The IoT backend's certificate, policy and attachment calls publish their CloudTrail event
# into the region's outbox, as the source stack's EventBridge rule would hand it to the persist
# state machine: successful calls only (the rule selects ``errorCode`` absent), one event per
# API call (a call moto implements with another, CreatePolicyVersion's default switch, is one).
# --------------------------------------------------------------------------------------------

_depth = threading.local()


def _calling() -> int:
    return int(getattr(_depth, "value", 0))


# A hook around moto's call: ``hook(backend, emulation, *args, **kwargs)``; ``emulation`` is
# ``None`` when the sandbox's registry emulation is not installed.
Hook = Callable[..., None]


def _publishing(
    name: str,
    event_name: str,
    build: Callable[..., tuple[JsonDict, JsonDict | None]],
    *,
    before: Hook | None = None,
    after: Hook | None = None,
) -> Callable[..., Any]:
    """A backend method that calls moto's and then publishes ``event_name``'s CloudTrail event
    (``build(result, *args, **kwargs)`` gives its request and response parameters). ``before``
    refuses what AWS refuses and moto does not; ``after`` records what a later refusal needs."""

    def method(self: IoTBackend, *args: Any, **kwargs: Any) -> Any:
        emulation = _Installed.emulation
        if before is not None:
            before(self, emulation, *args, **kwargs)
        _depth.value = _calling() + 1
        try:
            result = _PATCHES.original(IoTBackend, name)(self, *args, **kwargs)
        finally:
            _depth.value = _calling() - 1
        if after is not None:
            after(self, emulation, *args, **kwargs)
        if emulation is not None and _calling() == 0:
            publish_call(self, event_name, *build(result, *args, **kwargs))
        return result

    method.__name__ = name
    return method


def publish_call(
    backend: IoTBackend, event_name: str, request: JsonDict, response: JsonDict | None
) -> None:
    """Publish the CloudTrail event of one successful call on ``backend`` into its region's
    outbox (nothing without an installed emulation)."""
    emulation = _Installed.emulation
    if emulation is None:
        return
    event = cloudtrail_event(
        event_name,
        request,
        response,
        region=backend.region_name,
        account=backend.account_id,
        when=emulation.now(),
    )
    emulation.outbox(backend.region_name).put(event)


def present(request: JsonDict) -> JsonDict:
    """A CloudTrail event's requestParameters: the parameters the caller gave."""
    return {key: value for key, value in request.items() if value is not None}


def _cert(cert: Any) -> JsonDict:
    return {"certificateId": cert.certificate_id, "certificateArn": cert.arn}


def _cert_of(result: Any) -> Any:
    return result[0] if isinstance(result, tuple) else result


def _refuse_unrevoking(
    self: IoTBackend, emulation: RegistryEmulation | None, certificate_id: str, new_status: str
) -> None:
    """A revoked certificate's status can't be changed (``REFUSALS``; moto allows it)."""
    cert = self.describe_certificate(certificate_id)
    if cert.status == "REVOKED" and new_status != "REVOKED":
        raise CertificateStateException(
            REFUSALS["update_revoked_certificate"].message.format(name=certificate_id),
            certificate_id,
        )


def _refuse_just_detached(
    self: IoTBackend, emulation: RegistryEmulation | None, policy_name: str
) -> None:
    """DeletePolicy is refused for a while after a detach (``REFUSALS``; moto deletes at once):
    AWS, "up to five minutes"; the emulation, ``POLICY_DELETE_AFTER_DETACH_SECONDS`` of its
    clock."""
    if emulation is None:
        return
    since = emulation.seconds_since_policy_detach(self.region_name, policy_name)
    if since is not None and since < POLICY_DELETE_AFTER_DETACH_SECONDS:
        raise refuse(
            "delete_policy_just_detached",
            name=policy_name,
            seconds=POLICY_DELETE_AFTER_DETACH_SECONDS,
        )


def _refuse_too_large(
    self: IoTBackend,
    emulation: RegistryEmulation | None,
    policy_name: str,
    policy_document: str,
    *_: Any,
    **__: Any,
) -> None:
    """A policy document over 2048 characters excluding whitespace (``REFUSALS``; moto takes
    any)."""
    try:
        rules.validate_policy_document_size("policyDocument", policy_document)
    except RegistryValidationError as error:
        raise refuse("policy_document_too_large", name=policy_name, rule=error.rule) from error
    except ValueError:
        return  # not JSON: moto's own MalformedPolicyException follows


def _policy_deleted(
    self: IoTBackend, emulation: RegistryEmulation | None, policy_name: str
) -> None:
    if emulation is not None:
        emulation.policy_deleted(self.region_name, policy_name)


def _policy_detached(
    self: IoTBackend, emulation: RegistryEmulation | None, policy_name: str, *_: Any, **__: Any
) -> None:
    """After DetachPolicy (``target``) or DetachPrincipalPolicy (``principal_arn``)."""
    if emulation is not None:
        emulation.policy_detached(self.region_name, policy_name)


def _validation_delete(self: IoTBackend, cert: Any, force_delete: bool = False) -> None:
    """DeleteCertificate's checks on the certificate's own attachments only. moto resolves every
    attachment's principal and reads its ``certificate_id``, so with any policy attached to a
    thing group in the region it fails with HTTP 500 (AttributeError) instead of deleting
    (MOTO_GAPS). Same refusals and texts as moto's otherwise (AWS IoT API Reference,
    DeleteCertificate: CertificateStateException, DeleteConflictException)."""
    if cert.status == "ACTIVE":
        raise CertificateStateException(
            "Certificate must be deactivated (not ACTIVE) before deletion.", cert.certificate_id
        )
    if any(principal == cert.arn for principal, _ in self.principal_things):
        raise DeleteConflictException(f"Things must be detached before deletion (arn: {cert.arn})")
    if not force_delete and any(principal == cert.arn for principal, _ in self.principal_policies):
        raise DeleteConflictException(
            f"Certificate policies must be detached before deletion (arn: {cert.arn})"
        )


CONTROL_PLANE_PATCHES: dict[str, Callable[..., Any]] = {
    "_validation_delete": _validation_delete,
    "create_keys_and_certificate": _publishing(
        "create_keys_and_certificate",
        "CreateKeysAndCertificate",
        lambda r, set_as_active: ({"setAsActive": set_as_active}, _cert(_cert_of(r))),
    ),
    "create_certificate_from_csr": _publishing(
        "create_certificate_from_csr",
        "CreateCertificateFromCsr",
        lambda r, csr, set_as_active: (
            {"certificateSigningRequest": csr, "setAsActive": set_as_active},
            _cert(_cert_of(r)),
        ),
    ),
    # RegisterCertificate and RegisterCertificateWithoutCA: sandbox.emulation.cacertificates.
    "update_certificate": _publishing(
        "update_certificate",
        "UpdateCertificate",
        lambda r, certificate_id, new_status: (
            {"certificateId": certificate_id, "newStatus": new_status},
            None,
        ),
        before=_refuse_unrevoking,
    ),
    "delete_certificate": _publishing(
        "delete_certificate",
        "DeleteCertificate",
        lambda r, certificate_id, force_delete: (
            {"certificateId": certificate_id, "forceDelete": force_delete},
            None,
        ),
    ),
    "create_policy": _publishing(
        "create_policy",
        "CreatePolicy",
        lambda r, policy_name, policy_document: (
            {"policyName": policy_name, "policyDocument": policy_document},
            {"policyName": policy_name, "policyVersionId": "1"},
        ),
        before=_refuse_too_large,
    ),
    "create_policy_version": _publishing(
        "create_policy_version",
        "CreatePolicyVersion",
        lambda r, policy_name, policy_document, set_as_default: (
            {
                "policyName": policy_name,
                "policyDocument": policy_document,
                "setAsDefault": set_as_default,
            },
            {"policyVersionId": str(r.version_id)},
        ),
        before=_refuse_too_large,
    ),
    "set_default_policy_version": _publishing(
        "set_default_policy_version",
        "SetDefaultPolicyVersion",
        lambda r, policy_name, version_id: (
            {"policyName": policy_name, "policyVersionId": str(version_id)},
            None,
        ),
    ),
    "delete_policy_version": _publishing(
        "delete_policy_version",
        "DeletePolicyVersion",
        lambda r, policy_name, version_id: (
            {"policyName": policy_name, "policyVersionId": str(version_id)},
            None,
        ),
    ),
    "delete_policy": _publishing(
        "delete_policy",
        "DeletePolicy",
        lambda r, policy_name: ({"policyName": policy_name}, None),
        before=_refuse_just_detached,
        after=_policy_deleted,
    ),
    "attach_policy": _publishing(
        "attach_policy",
        "AttachPolicy",
        lambda r, policy_name, target: ({"policyName": policy_name, "target": target}, None),
        before=refuse_dynamic_policy_target,
    ),
    "detach_policy": _publishing(
        "detach_policy",
        "DetachPolicy",
        lambda r, policy_name, target: ({"policyName": policy_name, "target": target}, None),
        after=_policy_detached,
    ),
    "attach_principal_policy": _publishing(
        "attach_principal_policy",
        "AttachPrincipalPolicy",
        lambda r, policy_name, principal_arn: (
            {"policyName": policy_name, "principal": principal_arn},
            None,
        ),
    ),
    "detach_principal_policy": _publishing(
        "detach_principal_policy",
        "DetachPrincipalPolicy",
        lambda r, policy_name, principal_arn: (
            {"policyName": policy_name, "principal": principal_arn},
            None,
        ),
        after=_policy_detached,
    ),
    # The type where the call gave one (moto drops it: sandbox.emulation.thing_principals).
    "attach_thing_principal": _publishing(
        "attach_thing_principal",
        "AttachThingPrincipal",
        lambda r, thing_name, principal_arn: (
            {"thingName": thing_name, "principal": principal_arn}
            | ({"thingPrincipalType": t} if (t := requested_type()) else {}),
            None,
        ),
    ),
    "detach_thing_principal": _publishing(
        "detach_thing_principal",
        "DetachThingPrincipal",
        lambda r, thing_name, principal_arn: (
            {"thingName": thing_name, "principal": principal_arn},
            None,
        ),
    ),
}
