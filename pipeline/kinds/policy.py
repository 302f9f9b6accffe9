"""IoT policies, by name, with the document of their default version.

AWS publishes no registry events for policies; their control-plane calls reach persist as
CloudTrail records (``pipeline.cloudtrail``), parsed here. AWS behaviours relied on (AWS IoT API
Reference, one page per action):
- CreatePolicy: ``policyName`` 1-128 characters of ``[\\w+=,.@-]``.
- A policy has at most five versions; CreatePolicyVersion(setAsDefault=true) replaces the
  document in effect, after DeletePolicyVersion of the oldest non-default one if five exist.
  The default version cannot be deleted (DeletePolicyVersion), and a version's document never
  changes, so reading it later (SetDefaultPolicyVersion's lookup) is exact.
- DeletePolicy refuses a policy with non-default versions or attachments, and "it can take up
  to five minutes after a policy is detached before it's ready to be deleted": that refusal is
  a wait (``pipeline.aws.WAIT_REFUSALS``).
The destination's copy names the destination: the origin region's ARNs (and accounts, as
``POLICY_ACCOUNT_MAP`` maps them) are rewritten (``pipeline.policyrewrite``), and each policy
written is reported: a log line with its rewrites and foreign ARNs, and the metrics below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger

from pipeline import rules
from pipeline.errors import EventValidationError, NotFoundError, RegistryValidationError
from pipeline.iot import Iot
from pipeline.kinds.base import Call, Converging, EntitySpec, Kind, Listing, Reader, Result, text
from pipeline.kinds.parse import ApiCall, CallParser, ParseResult, SkipCode, non_empty_text, skip
from pipeline.model import Change, EntityKind, Item, Lookup
from pipeline.policyrewrite import (
    ArnMapping,
    canonical_document,
    refuse_duplicate_keys,
    rewrite_policy_document,
)

logger = Logger(service="iot-crr-replicator")

MAX_POLICY_VERSIONS = 5
# ARNs of the policy documents written in an invocation that were rewritten for the destination,
# and those naming a region or account no mapping mentions (pipeline.policyrewrite).
ARNS_REWRITTEN_METRIC = "PolicyArnsRewritten"
FOREIGN_ARNS_METRIC = "PolicyForeignArns"
# Policies the destination cannot take: too large once their ARNs are rewritten.
TOO_LARGE_METRIC = "PolicyDocumentsTooLarge"

_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
_VERSION_ID = re.compile(r"[0-9]+", re.ASCII)


def policy_name(field_name: str, value: object) -> str:
    if not isinstance(value, str) or _POLICY_NAME.fullmatch(value) is None:
        raise EventValidationError(field_name, "must be 1-128 characters of [\\w+=,.@-]")
    return value


def _document(field_name: str, value: object, policy: str) -> str:
    """A policy document as canonical JSON text (``policyrewrite.canonical_document``); one
    that repeats a key within an object is refused (``policyrewrite.refuse_duplicate_keys``)."""
    if isinstance(value, Mapping):  # a record that already decoded it
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if not isinstance(value, str):
        raise EventValidationError(field_name, "must be a policy document (JSON text)")
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError as exc:
        raise EventValidationError(field_name, f"not JSON: {exc.msg}") from exc
    if not isinstance(decoded, dict):
        raise EventValidationError(field_name, "must be a JSON object")
    refuse_duplicate_keys(field_name, value, policy=policy)
    return canonical_document(value)


# --- CloudTrail calls ----------------------------------------------------------------------------


def _name(call: ApiCall) -> str:
    return policy_name("requestParameters.policyName", call.request.get("policyName"))


def _with_document(call: ApiCall, name: str) -> Change:
    """The policy's new document: the call's ``policyDocument``, else the response's (both
    CreatePolicy and CreatePolicyVersion return it, botocore's iot model), else looked up in the
    origin region (``resolve``): the version the response names, or the default version. A
    CloudTrail record may leave a large request parameter out: an assumption, as for the
    other lookups (README, known limits)."""
    response = call.response or {}
    for where, given in (("requestParameters", call.request), ("responseElements", response)):
        if given.get("policyDocument") is not None:
            document = _document(f"{where}.policyDocument", given["policyDocument"], name)
            return Change(EntityKind.POLICY, name, call.origin, fields={"document": document})
    version = response.get("policyVersionId")
    if version is not None and (
        not isinstance(version, str) or _VERSION_ID.fullmatch(version) is None
    ):
        raise EventValidationError("responseElements.policyVersionId", "must be digits")
    return Change(EntityKind.POLICY, name, call.origin, lookup=Lookup(version))


def _created(call: ApiCall) -> ParseResult:
    return _with_document(call, _name(call))


def _version_created(call: ApiCall) -> ParseResult:
    name = _name(call)
    set_as_default = call.request.get("setAsDefault", False)
    if set_as_default is not True and set_as_default != "true":
        return skip(
            call, SkipCode.NO_EFFECT, "a version that is not the default changes nothing in effect"
        )
    return _with_document(call, name)


def _default_version_set(call: ApiCall) -> ParseResult:
    name = _name(call)
    version = call.request.get("policyVersionId")
    if not isinstance(version, str) or _VERSION_ID.fullmatch(version) is None:
        raise EventValidationError("requestParameters.policyVersionId", "must be digits")
    return Change(EntityKind.POLICY, name, call.origin, lookup=Lookup(version))


def _version_deleted(call: ApiCall) -> ParseResult:
    _name(call)
    # The default version cannot be deleted this way, so the document in effect is unchanged.
    return skip(call, SkipCode.NO_EFFECT, "deleting a non-default version changes nothing")


def _deleted(call: ApiCall) -> ParseResult:
    return Change(EntityKind.POLICY, _name(call), call.origin, deleted=True)


# --- the pure decision ---------------------------------------------------------------------------


def policy_calls(
    name: str,
    desired: Mapping[str, Any] | None,
    actual: Mapping[str, Any] | None,
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
    # The rewrite can lengthen a document past AWS's limit (a longer region or account name):
    # refused here, naming the policy, rather than by AWS (``Policy.converge`` reports it).
    document = rules.validate_policy_document_size(
        f"policy {name}: policyDocument after the ARN rewrite",
        rewrite_policy_document(desired["document"], mapping).document,
    )
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


# --- the kind --------------------------------------------------------------------------------------


class Policy(Kind):
    spec = EntitySpec(
        EntityKind.POLICY,
        frame="policies",
        rank=8,
        # The default version's document as the origin region has it (canonical JSON); the
        # destination's copy has its ARNs rewritten (pipeline.policyrewrite).
        fields={"document": "high"},
        noun=("policy", "policies"),
    )
    columns = (text("name"), text("document"))
    listing = Listing("ListPolicies", name="policyName", describe=("GetPolicy",))
    api_calls: Mapping[str, CallParser] = {
        "CreatePolicy": _created,
        "CreatePolicyVersion": _version_created,
        "SetDefaultPolicyVersion": _default_version_set,
        "DeletePolicyVersion": _version_deleted,
        "DeletePolicy": _deleted,
    }
    baseline_metrics = (ARNS_REWRITTEN_METRIC,)
    # 10 TPS each in the archived "AWS IoT Throttling Limits" table (awsdocs/aws-iot-docs,
    # developerguide/limits-iot.md, 2019); [assumption] still the defaults (Service Quotas'
    # "GetPolicy API TPS", L-5CE9072D: current default not read; README, known limits).
    quotas = {"ListPolicies": 10, "GetPolicy": 10}
    arn_fields = ("document",)

    def written(self, field: str, value: Any, mapping: ArnMapping) -> Any:
        """The document with its ``iot`` ARNs rewritten (``pipeline.policyrewrite``)."""
        return rewrite_policy_document(str(value), mapping).document

    def check_name(self, field_name: str, name: object) -> str:
        return policy_name(field_name, name)

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        """A corrective event's document (persist) or a stored one (the replicator, before it
        converges): one that repeats a key is refused, a permanent error naming the key (the
        failure record names the policy)."""
        document = non_empty_text(f"state.{key}", value)
        refuse_duplicate_keys(f"state.{key}", document)
        return document

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        """``{"document", "versions", "targets"}`` of the policy in effect, or ``None``."""
        response = iot.maybe("GetPolicy", policyName=name)
        if response is None:
            return None
        versions = iot.call("ListPolicyVersions", policyName=name)["policyVersions"]
        return {
            "document": response["policyDocument"],
            "versions": [
                {"id": str(v["versionId"]), "default": bool(v["isDefaultVersion"])}
                for v in versions
            ],
            "targets": [str(t) for t in iot.items("ListTargetsForPolicy", policyName=name)],
        }

    def record(self, reader: Reader, listed: Mapping[str, Any]) -> dict[str, Any] | None:
        """``name`` and ``document`` (the default version's, canonical JSON)."""
        name = listed["policyName"]
        try:
            policy = reader.call("GetPolicy", policyName=name)
        except NotFoundError:
            return None
        return {"name": name, "document": canonical_document(policy["policyDocument"])}

    def resolve(self, origin: Iot, change: Change) -> Change | None:
        """The document of the version the call names (SetDefaultPolicyVersion, or a create's
        response), or of the default version now (a create whose record carries neither)."""
        if change.lookup is None:
            return change
        if change.lookup.version is None:
            response = origin.maybe("GetPolicy", policyName=change.name)
        else:
            response = origin.maybe(
                "GetPolicyVersion", policyName=change.name, policyVersionId=change.lookup.version
            )
        if response is None:
            return None
        document = str(response["policyDocument"])
        refuse_duplicate_keys("policyDocument", document, policy=change.name)
        fields = {**change.fields, "document": canonical_document(document)}
        return replace(change, fields=fields, lookup=None)

    def calls(
        self,
        name: str,
        desired: Mapping[str, Any] | None,
        actual: Mapping[str, Any] | None,
        mapping: ArnMapping | None = None,
    ) -> list[Call]:
        """``policy_calls``; ``mapping``: the origin's ARNs to the destination's (none: kept)."""
        return policy_calls(name, desired, actual, mapping or ArnMapping(regions={}))

    def converge(self, ctx: Converging, item: Item) -> Result:
        mapping = ctx.arn_mapping(item)
        desired = None if item.deleted else item.state
        try:
            calls = self.calls(item.name, desired, self.read(ctx.iot, item.name), mapping)
        except RegistryValidationError as error:
            # Reported where an operator looks (a metric and an error naming the policy), and
            # the record goes to the failure queue with the same reason.
            ctx.count(TOO_LARGE_METRIC, 1)
            logger.error(
                "policy too large for the destination",
                extra={"policy": item.name, "rule": error.rule},
            )
            raise
        ctx.iot.apply(calls)
        result = Result("noop", "already as desired")
        if calls:
            ops = ", ".join(call.op for call in calls)
            result = Result("deleted" if item.deleted else "applied", ops)
        if desired is None or "document" not in desired:
            return result
        rewrite = rewrite_policy_document(desired["document"], mapping)
        if calls:
            ctx.count(ARNS_REWRITTEN_METRIC, len(rewrite.rewrites))
            ctx.count(FOREIGN_ARNS_METRIC, len(rewrite.foreign))
            logger.info(
                "policy written with its ARNs rewritten",
                extra={
                    "policy": item.name,
                    "rewritten": len(rewrite.rewrites),
                    "rewrites": [
                        {"path": r.path, "before": r.before, "after": r.after}
                        for r in rewrite.rewrites
                    ],
                    "foreign": list(rewrite.foreign),
                },
            )
        return Result(result.action, f"{result.detail}; {len(rewrite.rewrites)} ARN(s) rewritten")


KIND = Policy()
KINDS = (KIND,)
