"""Provisioning templates (fleet provisioning and JITP), by name, with their versions.

AWS publishes no registry events for templates; their control-plane calls reach persist as
CloudTrail records (``pipeline.cloudtrail``), parsed here, and persist describes the template in
the origin region (docs/onboarding-kinds.md, facts 8 and 9: a record need not hold the body).
AWS behaviours relied on (AWS IoT API Reference, one page per action; the whole account with
sources: docs/onboarding-kinds.md, "Provisioning templates"):
- CreateProvisioningTemplate: ``templateName`` 1-36 of ``[0-9A-Za-z_-]``, ``templateBody`` JSON,
  ``provisioningRoleArn`` required, ``type`` FLEET_PROVISIONING (default) or JITP, which "can't
  [be] change[d] after its creation": a type that differs is a delete and re-create. It makes
  version 1, the default.
- UpdateProvisioningTemplate changes the description, ``enabled``, the default version, the role
  and the pre-provisioning hook (``removePreProvisioningHook``), never the body nor the type.
- CreateProvisioningTemplateVersion adds a version (the default only with ``setAsDefault``);
  DeleteProvisioningTemplateVersion refuses the default version; a template has at most
  ``TEMPLATE_VERSIONS_LIMIT`` versions (VersionsLimitExceededException). Version ids are the
  region's own (fact 7): versions are compared by body, and which one is the default, never by id.
- The role is an IAM role (global): the account map applies (as ``POLICY_ACCOUNT_MAP`` maps
  policy ARNs). The hook is a Lambda function ARN, regional ("Only Lambda functions are
  currently supported"): its region is rewritten to the destination's, and its account mapped.
  Whether the function exists there is the operator's (their IaC): AWS documents no check on
  CreateProvisioningTemplate, and a template whose hook's function is missing fails every
  device's provisioning, so the replicator looks the function up and reports it
  (``HOOK_FUNCTIONS_MISSING_METRIC``, a log line).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger

from pipeline.errors import EventValidationError, NotFoundError
from pipeline.iot import Iot
from pipeline.kinds.base import (
    Call,
    ConvergeError,
    Converging,
    EntitySpec,
    Kind,
    Listing,
    Reader,
    Result,
    flag,
    json_list,
    json_or_none,
    text,
)
from pipeline.kinds.parse import ApiCall, CallParser, ParseResult, description, non_empty_text
from pipeline.model import Change, EntityKind, Item, Lookup
from pipeline.policyrewrite import ArnMapping, rewrite_arn

logger = Logger(service="iot-crr-replicator")

# [assumption] Versions a template may have at once: AWS's quota page could not be read; 5, as
# for policy versions (docs/onboarding-kinds.md; the conformance probe template_versions_limit
# records AWS's answer). CreateProvisioningTemplateVersion's modelled refusal for it is
# VersionsLimitExceededException.
TEMPLATE_VERSIONS_LIMIT = 5
TYPES = ("FLEET_PROVISIONING", "JITP")
# Templates written in an invocation whose pre-provisioning hook names a Lambda function the
# destination region does not have (the function is the operator's: their IaC deploys it).
HOOK_FUNCTIONS_MISSING_METRIC = "ProvisioningHookFunctionsMissing"

_TEMPLATE_NAME = re.compile(r"[0-9A-Za-z_-]{1,36}", re.ASCII)
# The role (IAM, global) and the hook's function (Lambda, regional) as ARNs the rewrite maps.
_SERVICES = ("iam", "lambda")


def template_name(field_name: str, value: object) -> str:
    if not isinstance(value, str) or _TEMPLATE_NAME.fullmatch(value) is None:
        raise EventValidationError(field_name, "must be 1-36 characters of [0-9A-Za-z_-]")
    return value


def canonical_body(field_name: str, value: object) -> str:
    """A template body as canonical JSON text: an author's spacing or key order is no drift."""
    if not isinstance(value, str):
        raise EventValidationError(field_name, "must be a template body (JSON text)")
    try:
        decoded = json.loads(value)
    except json.JSONDecodeError as exc:
        raise EventValidationError(field_name, f"not JSON: {exc.msg}") from exc
    if not isinstance(decoded, dict):
        raise EventValidationError(field_name, "must be a JSON object")
    return json.dumps(decoded, sort_keys=True, separators=(",", ":"))


def _hook(raw: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not raw or not raw.get("targetArn"):
        return None
    hook = {"targetArn": str(raw["targetArn"])}
    if raw.get("payloadVersion"):
        hook["payloadVersion"] = str(raw["payloadVersion"])
    return hook


def mapped_arn(arn: Any, mapping: ArnMapping) -> Any:
    """A role's or a function's ARN as the destination's copy names it."""
    return rewrite_arn(str(arn), replace(mapping, services=_SERVICES))


# --- CloudTrail calls ----------------------------------------------------------------------------


def _changed(call: ApiCall) -> ParseResult:
    """Any call that changes a template or its versions: the template is described in the
    origin region (its body, versions and default are not all in any one record)."""
    name = template_name("requestParameters.templateName", call.request.get("templateName"))
    return Change(EntityKind.PROVISIONING_TEMPLATE, name, call.origin, lookup=Lookup())


def _deleted(call: ApiCall) -> ParseResult:
    name = template_name("requestParameters.templateName", call.request.get("templateName"))
    return Change(EntityKind.PROVISIONING_TEMPLATE, name, call.origin, deleted=True)


# --- the pure decision ---------------------------------------------------------------------------


def _create(name: str, desired: Mapping[str, Any]) -> list[Call]:
    params: dict[str, Any] = {
        "templateName": template_name("templateName", name),
        "templateBody": desired["body"],
        "provisioningRoleArn": desired["role_arn"],
        "enabled": bool(desired.get("enabled")),
        "type": desired["type"],
    }
    if desired.get("description"):
        params["description"] = desired["description"]
    if desired.get("hook"):
        params["preProvisioningHook"] = desired["hook"]
    others = Counter(desired.get("versions") or [desired["body"]])
    others[desired["body"]] -= 1
    return [Call("CreateProvisioningTemplate", params)] + [
        Call(
            "CreateProvisioningTemplateVersion",
            {"templateName": name, "templateBody": body, "setAsDefault": False},
        )
        for body in sorted(others.elements())
    ]


def _settings(name: str, desired: Mapping[str, Any], actual: Mapping[str, Any]) -> list[Call]:
    params: dict[str, Any] = {}
    if (desired.get("description") or "") != (actual.get("description") or ""):
        params["description"] = desired.get("description") or ""
    if bool(desired.get("enabled")) != bool(actual.get("enabled")):
        params["enabled"] = bool(desired.get("enabled"))
    if desired["role_arn"] != actual.get("role_arn"):
        params["provisioningRoleArn"] = desired["role_arn"]
    if desired.get("hook") != actual.get("hook"):
        if desired.get("hook"):
            params["preProvisioningHook"] = desired["hook"]
        else:
            params["removePreProvisioningHook"] = True
    return [Call("UpdateProvisioningTemplate", {"templateName": name, **params})] if params else []


def _versions(name: str, desired: Mapping[str, Any], actual: Mapping[str, Any]) -> list[Call]:
    """The destination's versions made the source's, compared by body: versions the source
    lacks go (never the default: it is replaced first), the source's default becomes the
    default (an existing version of that body, or a new one), missing versions are added."""
    wanted = Counter(desired.get("versions") or [desired["body"]])
    # The default first, then the oldest: of equal bodies, those are the ones kept.
    present: list[Mapping[str, Any]] = sorted(
        actual["versions"], key=lambda v: (not v["default"], int(v["id"]))
    )
    kept: list[Mapping[str, Any]] = []
    extra: list[Mapping[str, Any]] = []
    budget = Counter(wanted)
    for version in present:
        if budget[version["body"]] > 0:
            budget[version["body"]] -= 1
            kept.append(version)
        else:
            extra.append(version)
    old_default = next(v for v in present if v["default"])

    def delete(version: Mapping[str, Any]) -> Call:
        return Call(
            "DeleteProvisioningTemplateVersion",
            {"templateName": name, "versionId": int(version["id"])},
        )

    calls = [delete(v) for v in extra if not v["default"]]
    count = len(present) - len(calls)
    body = desired["body"]
    if old_default["body"] != body:
        same = next((v for v in kept if v["body"] == body), None)
        if same is not None:
            calls.append(
                Call(
                    "UpdateProvisioningTemplate",
                    {"templateName": name, "defaultVersionId": int(same["id"])},
                )
            )
        else:
            if count >= TEMPLATE_VERSIONS_LIMIT:
                # Every remaining version is one the source has too (or the default): deleting
                # one would lose a version the source keeps. Reported, never guessed.
                raise ConvergeError(
                    f"provisioning template {name}: {count} versions in the destination, all "
                    f"kept by the source or in use, and at most {TEMPLATE_VERSIONS_LIMIT} "
                    "(VersionsLimitExceededException): delete one there to make room"
                )
            calls.append(
                Call(
                    "CreateProvisioningTemplateVersion",
                    {"templateName": name, "templateBody": body, "setAsDefault": True},
                )
            )
            budget[body] -= 1
        if old_default in extra:
            calls.append(delete(old_default))
    calls += [
        Call(
            "CreateProvisioningTemplateVersion",
            {"templateName": name, "templateBody": missing, "setAsDefault": False},
        )
        for missing in sorted(budget.elements())
    ]
    return calls


def template_calls(
    name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
) -> list[Call]:
    """The calls that bring template ``name`` from ``actual`` (``read``; ``None``: absent) to
    ``desired`` (as written for the destination, ``Kind.as_written``; ``None``: deleted)."""
    if desired is None:
        return (
            [] if actual is None else [Call("DeleteProvisioningTemplate", {"templateName": name})]
        )
    if "body" not in desired:
        return []  # a stub: nothing known yet
    if actual is None:
        return _create(name, desired)
    if actual.get("type") != desired["type"]:
        return [Call("DeleteProvisioningTemplate", {"templateName": name}), *_create(name, desired)]
    return _settings(name, desired, actual) + _versions(name, desired, actual)


# --- the kind --------------------------------------------------------------------------------------


class ProvisioningTemplate(Kind):
    spec = EntitySpec(
        EntityKind.PROVISIONING_TEMPLATE,
        frame="provisioning_templates",
        rank=5,  # before the CA certificates whose JITP configuration names it
        # ``body``: the default version's (canonical JSON); ``versions``: every version's body,
        # sorted (ids are per region); ``role_arn``, ``hook``: the source's (the copy's are
        # rewritten for the destination: ``rewritten``). A wrong body, type, role or hook
        # provisions devices differently (or not at all): high.
        fields={
            "type": "high",
            "body": "high",
            "versions": "low",
            "enabled": "high",
            "role_arn": "high",
            "hook": "high",
            "description": "low",
        },
        noun=("provisioning template", "provisioning templates"),
        alias="template",
    )
    columns = (
        text("name"),
        text("type"),
        text("body"),
        json_list("versions", sort=True),
        flag("enabled"),
        text("role_arn"),
        json_or_none("hook"),
        text("description"),
    )
    listing = Listing(
        "ListProvisioningTemplates",
        name="templateName",
        describe=(
            "DescribeProvisioningTemplate",
            "ListProvisioningTemplateVersions",
            "DescribeProvisioningTemplateVersion",
        ),
    )
    api_calls: Mapping[str, CallParser] = {
        "CreateProvisioningTemplate": _changed,
        "UpdateProvisioningTemplate": _changed,
        "CreateProvisioningTemplateVersion": _changed,
        "DeleteProvisioningTemplateVersion": _changed,
        "DeleteProvisioningTemplate": _deleted,
    }
    arn_fields = ("role_arn", "hook")
    # [assumption] no figure read for these calls (docs/onboarding-kinds.md, "Quotas"): 10 TPS.
    quotas = {
        "ListProvisioningTemplates": 10,
        "DescribeProvisioningTemplate": 10,
        "ListProvisioningTemplateVersions": 10,
        "DescribeProvisioningTemplateVersion": 10,
    }
    baseline_metrics = (HOOK_FUNCTIONS_MISSING_METRIC,)

    def written(self, field: str, value: Any, mapping: ArnMapping) -> Any:
        """The role's ARN (the account map), the hook's function (region and account)."""
        if field == "hook":
            return {**value, "targetArn": mapped_arn(value["targetArn"], mapping)}
        return mapped_arn(value, mapping)

    def check_name(self, field_name: str, name: object) -> str:
        return template_name(field_name, name)

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        field = f"state.{key}"
        if key == "type":
            if value not in TYPES:
                raise EventValidationError(field, f"must be one of {', '.join(TYPES)}")
            return value
        if key == "body":
            return canonical_body(field, value)
        if key == "versions":
            if not isinstance(value, list) or not value:
                raise EventValidationError(field, "must be a non-empty list of bodies")
            return sorted(canonical_body(field, body) for body in value)
        if key == "enabled":
            if not isinstance(value, bool):
                raise EventValidationError(field, "must be a boolean")
            return value
        if key == "hook":
            if value is not None and (not isinstance(value, Mapping) or _hook(value) != value):
                raise EventValidationError(field, "must be {targetArn, payloadVersion} or null")
            return value
        if key == "description":
            return description(field, value)
        return non_empty_text(field, value)

    def state_of(self, template: Mapping[str, Any], bodies: list[str]) -> dict[str, Any]:
        """A DescribeProvisioningTemplate response, with every version's body, as the state."""
        return {
            "type": template.get("type") or "FLEET_PROVISIONING",
            "body": canonical_body("templateBody", template["templateBody"]),
            "versions": sorted(bodies),
            "enabled": bool(template.get("enabled")),
            "role_arn": template["provisioningRoleArn"],
            "hook": _hook(template.get("preProvisioningHook")),
            "description": template.get("description") or None,
        }

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        """The state, plus ``versions`` as ``[{"id", "body", "default"}]`` (the region's ids)."""
        template = iot.maybe("DescribeProvisioningTemplate", templateName=name)
        if template is None:
            return None
        versions: list[dict[str, Any]] = []
        for summary in iot.items("ListProvisioningTemplateVersions", templateName=name):
            described = iot.call(
                "DescribeProvisioningTemplateVersion",
                templateName=name,
                versionId=summary["versionId"],
            )
            versions.append(
                {
                    "id": int(summary["versionId"]),
                    "body": canonical_body("templateBody", described["templateBody"]),
                    "default": bool(summary["isDefaultVersion"]),
                }
            )
        state = self.state_of(template, [v["body"] for v in versions])
        return {**state, "versions": versions}

    def record(self, reader: Reader, listed: Mapping[str, Any]) -> dict[str, Any] | None:
        name = listed["templateName"]
        try:
            template = reader.call("DescribeProvisioningTemplate", templateName=name)
            bodies = [
                canonical_body(
                    "templateBody",
                    reader.call(
                        "DescribeProvisioningTemplateVersion",
                        templateName=name,
                        versionId=summary["versionId"],
                    )["templateBody"],
                )
                for summary in reader.items(
                    "ListProvisioningTemplateVersions", key="versionId", templateName=name
                )
            ]
        except NotFoundError:
            return None  # deleted since it was listed
        return {"name": name, **self.state_of(template, bodies)}

    def resolve(self, origin: Iot, change: Change) -> Change | None:
        """The whole template, described in the origin region; ``None`` when it is gone."""
        if change.lookup is None:
            return change
        described = self.read(origin, change.name)
        if described is None:
            return None
        bodies = sorted(v["body"] for v in described["versions"])
        return replace(change, fields={**described, "versions": bodies}, lookup=None)

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        return template_calls(name, desired, actual)

    def converge(self, ctx: Converging, item: Item) -> Result:
        desired = None if item.deleted else self.as_written(item.state, ctx.arn_mapping(item))
        calls = self.calls(item.name, desired, self.read(ctx.iot, item.name))
        ctx.iot.apply(calls)
        if desired and desired.get("hook") and calls:
            self._report_missing_function(ctx, item.name, str(desired["hook"]["targetArn"]))
        if not calls:
            return Result("noop", "already as desired")
        return Result("deleted" if item.deleted else "applied", ", ".join(c.op for c in calls))

    def _report_missing_function(self, ctx: Converging, name: str, arn: str) -> None:
        if ctx.function_exists(arn) is not False:
            return
        ctx.count(HOOK_FUNCTIONS_MISSING_METRIC, 1)
        logger.warning(
            "provisioning template's pre-provisioning hook names a function the destination "
            "does not have: devices provisioning with it fail until it is deployed there",
            extra={"template": name, "function": arn},
        )


KIND = ProvisioningTemplate()
KINDS = (KIND,)
