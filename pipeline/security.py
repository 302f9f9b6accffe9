"""Certificates, policies and their attachments: the adapter calls and the pure decisions.

The registry's *security* side (AWS IoT Developer Guide, "Authentication" and "Authorization"):
device certificates with their status, IoT policies with their default version, and the links
thing <-> certificate and policy -> certificate or thing group. ``pipeline.cloudtrail`` turns
their control-plane calls into changes; this module reads and writes them in one region, and
decides, as pure functions over plain dicts, which calls bring the destination to a desired state.

AWS behaviours relied on (AWS IoT API Reference, one page per action, unless said otherwise):
- RegisterCertificateWithoutCA registers a certificate from its PEM with a status (ACTIVE,
  INACTIVE or REVOKED); the certificate id is the SHA-256 of the DER, so the same in every
  region ("Register a client certificate": client certificates can be shared by accounts and
  regions, each registering its own copy). The issuing CA need not be registered: the copy is in
  SNI_ONLY mode (CertificateDescription.certificateMode), and devices must send SNI, which AWS
  IoT requires of every TLS client anyway (developer guide, "Transport security").
- A REVOKED certificate's status can't be changed (developer guide, "Revoke a client
  certificate"): a destination copy that is REVOKED while the source's is not cannot be repaired
  by UpdateCertificate; it is reported, never silently recreated.
- DeleteCertificate refuses a certificate that is ACTIVE or still has a policy or thing attached
  (DeleteConflictException / CertificateStateException), so a delete detaches and deactivates
  first. DeletePolicy refuses a policy with non-default versions or attachments, and a detach
  can take up to five minutes to allow it: that refusal is a wait (``pipeline.aws``).
- A policy has at most five versions; CreatePolicyVersion(setAsDefault=true) replaces the
  document in effect, after DeletePolicyVersion of the oldest non-default one if five exist.
- AttachThingPrincipal takes ``thingPrincipalType`` EXCLUSIVE_THING or NON_EXCLUSIVE_THING
  (the default); ListThingPrincipalsV2 reports it.
"""

from __future__ import annotations

import base64
import re
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pipeline.aws import AwsCalls
from pipeline.errors import NotFoundError, PermanentError
from pipeline.policyrewrite import ArnMapping, canonical_document, rewrite_policy_document

MAX_POLICY_VERSIONS = 5
PAGE_SIZE = 250
_MARKER_PAGED = frozenset({"ListAttachedPolicies", "ListTargetsForPolicy"})

_PEM_BODY = re.compile(
    r"-----BEGIN CERTIFICATE-----(?P<body>[A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----", re.ASCII
)


class UnrepairableError(PermanentError):
    """The destination cannot be brought to the desired state by any call (AWS refuses it)."""


def canonical_pem(pem: str) -> str:
    """One PEM text per certificate: the DER re-encoded, 64 characters a line, ``\\n`` endings.

    The same certificate may come back from two regions with different line breaks; compared
    and stored in this form, only a different certificate differs.
    """
    match = _PEM_BODY.search(pem)
    if match is None:
        raise PermanentError("certificatePem is not a PEM certificate")
    der = base64.b64decode("".join(match["body"].split()), validate=True)
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


# --- pure decisions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One registry call to make in the destination (``op`` is the API operation name)."""

    op: str
    params: dict[str, Any] = field(default_factory=dict)


def certificate_calls(
    cert_id: str, desired: dict[str, Any] | None, actual: dict[str, Any] | None
) -> list[Call]:
    """The calls that bring certificate ``cert_id`` from ``actual`` (DescribeCertificate as
    ``{"status", "pem", "arn"}``, ``None`` when absent) to ``desired`` (``None``: deleted).

    A delete needs ``actual["things"]`` and ``actual["policies"]`` (what is attached)."""
    if desired is None:
        if actual is None:
            return []
        calls = [
            Call("DetachThingPrincipal", {"thingName": thing, "principal": actual["arn"]})
            for thing in actual.get("things", [])
        ]
        calls += [
            Call("DetachPolicy", {"policyName": policy, "target": actual["arn"]})
            for policy in actual.get("policies", [])
        ]
        if actual.get("status") == "ACTIVE":
            calls.append(
                Call("UpdateCertificate", {"certificateId": cert_id, "newStatus": "INACTIVE"})
            )
        calls.append(Call("DeleteCertificate", {"certificateId": cert_id}))
        return calls
    status = desired.get("status")
    if actual is None:
        pem = desired.get("pem")
        if not pem or not status:
            raise UnrepairableError(
                f"certificate {cert_id}: the state table has no PEM or status to register it "
                "with; the next reconciliation reads them from the source"
            )
        return [Call("RegisterCertificateWithoutCA", {"certificatePem": pem, "status": status})]
    if status is None or status == actual.get("status"):
        return []
    if actual.get("status") == "REVOKED":
        raise UnrepairableError(
            f"certificate {cert_id} is REVOKED in the destination and {status} in the source; "
            "AWS IoT cannot change a revoked certificate's status (delete it in the destination "
            "to have it registered again)"
        )
    return [Call("UpdateCertificate", {"certificateId": cert_id, "newStatus": status})]


def policy_calls(
    name: str,
    desired: dict[str, Any] | None,
    actual: dict[str, Any] | None,
    mapping: ArnMapping,
) -> list[Call]:
    """The calls that bring policy ``name`` from ``actual`` (``{"document", "versions":
    [{"id", "default"}], "targets": [arn]}``, ``None`` when absent) to ``desired`` (its source
    document, rewritten here for the destination; ``None``: deleted)."""
    if desired is None:
        if actual is None:
            return []
        teardown = [
            Call("DetachPolicy", {"policyName": name, "target": target})
            for target in actual.get("targets", [])
        ]
        teardown += [
            Call("DeletePolicyVersion", {"policyName": name, "policyVersionId": version["id"]})
            for version in actual.get("versions", [])
            if not version["default"]
        ]
        teardown.append(Call("DeletePolicy", {"policyName": name}))
        return teardown
    if "document" not in desired:
        return []  # a stub: nothing known yet
    document = rewrite_policy_document(desired["document"], mapping).document
    if actual is None:
        return [Call("CreatePolicy", {"policyName": name, "policyDocument": document})]
    if canonical_document(document) == canonical_document(actual["document"]):
        return []
    calls: list[Call] = []
    versions = actual.get("versions", [])
    if len(versions) >= MAX_POLICY_VERSIONS:
        oldest = min(
            (v for v in versions if not v["default"]), key=lambda v: int(v["id"]), default=None
        )
        if oldest is not None:
            calls.append(
                Call("DeletePolicyVersion", {"policyName": name, "policyVersionId": oldest["id"]})
            )
    calls.append(
        Call(
            "CreatePolicyVersion",
            {"policyName": name, "policyDocument": document, "setAsDefault": True},
        )
    )
    return calls


def thing_principal_calls(
    thing: str, principal_arn: str, desired: dict[str, Any] | None, actual: dict[str, Any] | None
) -> list[Call]:
    """Attach, re-attach (exclusivity changed) or detach certificate ``principal_arn`` on
    ``thing``; ``actual`` is ``{"exclusive": bool | None}`` (``None``: type not reported) or
    ``None`` when not attached."""
    detach = Call("DetachThingPrincipal", {"thingName": thing, "principal": principal_arn})
    if desired is None:
        return [] if actual is None else [detach]
    exclusive = bool(desired.get("exclusive", False))
    attach = Call(
        "AttachThingPrincipal",
        {
            "thingName": thing,
            "principal": principal_arn,
            "thingPrincipalType": "EXCLUSIVE_THING" if exclusive else "NON_EXCLUSIVE_THING",
        },
    )
    if actual is None:
        return [attach]
    if actual.get("exclusive") is None or actual["exclusive"] == exclusive:
        return []
    return [detach, attach]


def policy_target_calls(policy: str, target_arn: str, desired: bool, attached: bool) -> list[Call]:
    if desired == attached:
        return []
    op = "AttachPolicy" if desired else "DetachPolicy"
    return [Call(op, {"policyName": policy, "target": target_arn})]


# --- the adapter ---------------------------------------------------------------------------------


class IotSecurity:
    """Certificates, policies and attachments of one region (one boto3 IoT client)."""

    def __init__(self, iot_client: Any) -> None:
        self._iot = iot_client
        self._aws = AwsCalls()

    @property
    def calls(self) -> Counter[str]:
        return self._aws.counts

    # reads
    def describe_certificate(self, cert_id: str) -> dict[str, Any] | None:
        """``{"status", "pem", "arn", "ca"}`` (the PEM canonical), or ``None`` if absent."""
        response = self._maybe(
            "DescribeCertificate", self._iot.describe_certificate, certificateId=cert_id
        )
        if response is None:
            return None
        description = response["certificateDescription"]
        return {
            "status": description["status"],
            "pem": canonical_pem(description["certificatePem"]),
            "arn": description["certificateArn"],
            "ca": description.get("caCertificateId") or None,
        }

    def certificate_attachments(self, arn: str) -> dict[str, list[str]]:
        things = [
            name
            for page in self._pages(
                "ListPrincipalThings", self._iot.list_principal_things, principal=arn
            )
            for name in page.get("things", [])
        ]
        policies = [
            policy["policyName"]
            for page in self._pages(
                "ListAttachedPolicies", self._iot.list_attached_policies, target=arn
            )
            for policy in page.get("policies", [])
        ]
        return {"things": things, "policies": policies}

    def get_policy(self, name: str) -> dict[str, Any] | None:
        """``{"document", "versions", "targets"}`` of the policy in effect, or ``None``."""
        response = self._maybe("GetPolicy", self._iot.get_policy, policyName=name)
        if response is None:
            return None
        versions = self._call(
            "ListPolicyVersions", self._iot.list_policy_versions, policyName=name
        )["policyVersions"]
        targets = [
            target
            for page in self._pages(
                "ListTargetsForPolicy", self._iot.list_targets_for_policy, policyName=name
            )
            for target in page.get("targets", [])
        ]
        return {
            "document": response["policyDocument"],
            "versions": [
                {"id": str(v["versionId"]), "default": bool(v["isDefaultVersion"])}
                for v in versions
            ],
            "targets": targets,
        }

    def get_policy_version(self, name: str, version: str) -> str | None:
        response = self._maybe(
            "GetPolicyVersion",
            self._iot.get_policy_version,
            policyName=name,
            policyVersionId=version,
        )
        return None if response is None else str(response["policyDocument"])

    def thing_principal(self, thing: str, principal_arn: str) -> dict[str, Any] | None:
        """``{"exclusive": bool | None}`` if ``principal_arn`` is attached to ``thing``."""
        try:
            pages = list(
                self._pages(
                    "ListThingPrincipalsV2", self._iot.list_thing_principals_v2, thingName=thing
                )
            )
        except NotFoundError:
            return None
        for page in pages:
            for entry in page.get("thingPrincipalObjects", []):
                if entry.get("principal") == principal_arn:
                    kind = entry.get("thingPrincipalType")
                    return {"exclusive": None if kind is None else kind == "EXCLUSIVE_THING"}
        return None

    def policy_attached(self, policy: str, target_arn: str) -> bool:
        try:
            return any(
                target_arn in page.get("targets", [])
                for page in self._pages(
                    "ListTargetsForPolicy", self._iot.list_targets_for_policy, policyName=policy
                )
            )
        except NotFoundError:
            return False

    def thing_group_arn(self, name: str) -> str | None:
        response = self._maybe(
            "DescribeThingGroup", self._iot.describe_thing_group, thingGroupName=name
        )
        return None if response is None else str(response["thingGroupArn"])

    # writes
    def apply(self, calls: list[Call]) -> None:
        """Make ``calls`` in order; a detach or delete of something already gone is fine."""
        for call in calls:
            method = getattr(self._iot, _snake(call.op))
            if call.op.startswith(("Detach", "Delete")):
                self._maybe(call.op, method, **call.params)
            else:
                self._call(call.op, method, **call.params)

    # plumbing: every call through the project's one wrapper (pipeline.aws.AwsCalls)
    def _pages(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
        """Every page of a list call, in either of IoT's two paging styles (botocore model):
        ``maxResults``/``nextToken`` or ``pageSize``/``marker`` -> ``nextMarker``."""
        marker_style = operation in _MARKER_PAGED
        size = {"pageSize": PAGE_SIZE} if marker_style else {"maxResults": PAGE_SIZE}
        token: str | None = None
        while True:
            extra: dict[str, Any] = {}
            if token:
                extra = {"marker": token} if marker_style else {"nextToken": token}
            page = self._call(operation, method, **size, **kwargs, **extra)
            yield page
            token = page.get("nextMarker") if marker_style else page.get("nextToken")
            if not token:
                return

    def _maybe(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        return self._aws.maybe(operation, method, **kwargs)

    def _call(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        return self._aws(operation, method, **kwargs)


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower().replace("_c_a", "_ca")
