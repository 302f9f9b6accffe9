"""Provisioning templates and their versions (moto 5.2: not implemented; ``MOTO_GAPS``).

Sources: AWS IoT API Reference and botocore's iot service model (CreateProvisioningTemplate,
DescribeProvisioningTemplate, ListProvisioningTemplates, UpdateProvisioningTemplate,
DeleteProvisioningTemplate, Create/List/Describe/DeleteProvisioningTemplateVersion,
ProvisioningHook, ProvisioningTemplateSummary, ProvisioningTemplateVersionSummary); AWS IoT
Developer Guide, "Provisioning templates" (provision-template.html), "Pre-provisioning hooks",
"Just-in-time provisioning". Refusals: ``REFUSALS``; the whole account: docs/onboarding-kinds.md.

- A template has one type for life, FLEET_PROVISIONING (the default) or JITP; only
  FLEET_PROVISIONING takes a ``preProvisioningHook``. Its ARN names ``provisioningtemplate/``
  (the guide's pre-provisioning hook input shows ``arn:aws:iot:...:provisioningtemplate/Name``).
- CreateProvisioningTemplate makes version 1, the default; DescribeProvisioningTemplate returns
  the default version's body. CreateProvisioningTemplateVersion adds the next id, the default
  only with ``setAsDefault``.
- [assumption] ``enabled`` is false unless given; version ids are never reused; at most
  ``TEMPLATE_VERSIONS_LIMIT`` versions exist at once; listings are by name (templates) and id
  (versions); the hook's ``payloadVersion`` is kept as given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.iot.exceptions import ResourceNotFoundException
from moto.iot.models import IoTBackend
from moto.iot.responses import IoTResponse

from sandbox.emulation.controlplane import present, publish_call
from sandbox.emulation.paging import page
from sandbox.emulation.patches import JsonDict
from sandbox.emulation.refusals import refuse

TEMPLATE_VERSIONS_LIMIT = 5
"""[assumption] Versions a provisioning template may have at once: the AWS General Reference's
AWS IoT Core quotas ("Fleet provisioning") could not be read here; 5, as for policy versions.
CreateProvisioningTemplateVersion's modelled error for it is VersionsLimitExceededException. The
conformance probe ``template_versions_limit`` records AWS's answer."""


@dataclass
class Version:
    version_id: int
    body: str
    created: datetime


@dataclass
class Template:
    name: str
    arn: str
    type: str
    description: str
    enabled: bool
    role_arn: str
    hook: JsonDict | None
    created: datetime
    modified: datetime
    default_version: int = 1
    versions: dict[int, Version] = field(default_factory=dict)

    def summary(self) -> JsonDict:
        """ProvisioningTemplateSummary."""
        return {
            "templateArn": self.arn,
            "templateName": self.name,
            "description": self.description,
            "creationDate": self.created,
            "lastModifiedDate": self.modified,
            "enabled": self.enabled,
            "type": self.type,
        }

    def version_summary(self, version: Version) -> JsonDict:
        """ProvisioningTemplateVersionSummary."""
        return {
            "versionId": version.version_id,
            "creationDate": version.created,
            "isDefaultVersion": version.version_id == self.default_version,
        }


def templates(backend: IoTBackend) -> dict[str, Template]:
    """The region's provisioning templates by name (kept on moto's backend: a reset forgets)."""
    found: dict[str, Template] = backend.__dict__.setdefault("crr_provisioning_templates", {})
    return found


def template(backend: IoTBackend, name: str) -> Template:
    found = templates(backend).get(name)
    if found is None:
        raise ResourceNotFoundException(f"The provisioning template {name} does not exist")
    return found


def _json_object(body: str) -> None:
    try:
        parsed = json.loads(body)
    except ValueError as error:
        raise refuse("template_body_not_json", reason=str(error)) from error
    if not isinstance(parsed, dict):
        raise refuse("template_body_not_json", reason=f"a JSON {type(parsed).__name__}")


def _check_hook(name: str, kind: str, hook: JsonDict | None) -> None:
    if hook and kind == "JITP":
        raise refuse("template_hook_on_jitp", name=name)


def _now() -> datetime:
    return datetime.now(UTC)


# ---- backend calls -----------------------------------------------------------------------------


def _create_provisioning_template(
    self: IoTBackend,
    *,
    template_name: str,
    template_body: str,
    provisioning_role_arn: str,
    description: str | None = None,
    enabled: bool | None = None,
    pre_provisioning_hook: JsonDict | None = None,
    template_type: str | None = None,
    tags: Any = None,
) -> Template:
    if template_name in templates(self):
        raise refuse("create_template_twice", name=template_name)
    kind = template_type or "FLEET_PROVISIONING"
    _check_hook(template_name, kind, pre_provisioning_hook)
    _json_object(template_body)
    now = _now()
    created = Template(
        name=template_name,
        arn=f"arn:aws:iot:{self.region_name}:{self.account_id}:provisioningtemplate/{template_name}",
        type=kind,
        description=description or "",
        enabled=bool(enabled),
        role_arn=provisioning_role_arn,
        hook=pre_provisioning_hook,
        created=now,
        modified=now,
        versions={1: Version(1, template_body, now)},
    )
    templates(self)[template_name] = created
    request = {
        "templateName": template_name,
        "description": description,
        "templateBody": template_body,
        "enabled": enabled,
        "provisioningRoleArn": provisioning_role_arn,
        "preProvisioningHook": pre_provisioning_hook,
        "type": template_type,
    }
    response = {"templateArn": created.arn, "templateName": template_name, "defaultVersionId": 1}
    publish_call(self, "CreateProvisioningTemplate", present(request), response)
    return created


def _update_provisioning_template(
    self: IoTBackend,
    *,
    template_name: str,
    description: str | None = None,
    enabled: bool | None = None,
    default_version_id: int | None = None,
    provisioning_role_arn: str | None = None,
    pre_provisioning_hook: JsonDict | None = None,
    remove_pre_provisioning_hook: bool | None = None,
) -> None:
    found = template(self, template_name)
    _check_hook(template_name, found.type, pre_provisioning_hook)
    if default_version_id is not None and default_version_id not in found.versions:
        raise refuse(
            "template_unknown_default_version", name=template_name, version=default_version_id
        )
    if description is not None:
        found.description = description
    if enabled is not None:
        found.enabled = enabled
    if default_version_id is not None:
        found.default_version = default_version_id
    if provisioning_role_arn:
        found.role_arn = provisioning_role_arn
    if remove_pre_provisioning_hook:
        found.hook = None
    elif pre_provisioning_hook:
        found.hook = pre_provisioning_hook
    found.modified = _now()
    request = {
        "templateName": template_name,
        "description": description,
        "enabled": enabled,
        "defaultVersionId": default_version_id,
        "provisioningRoleArn": provisioning_role_arn,
        "preProvisioningHook": pre_provisioning_hook,
        "removePreProvisioningHook": remove_pre_provisioning_hook,
    }
    publish_call(self, "UpdateProvisioningTemplate", present(request), None)


def _delete_provisioning_template(self: IoTBackend, template_name: str) -> None:
    template(self, template_name)
    for ca in self.ca_certificates.values():
        if (ca.registration_config or {}).get("templateName") == template_name:
            raise refuse(
                "delete_template_used_by_ca", name=template_name, certificate_id=ca.certificate_id
            )
    del templates(self)[template_name]
    publish_call(self, "DeleteProvisioningTemplate", {"templateName": template_name}, None)


def _create_provisioning_template_version(
    self: IoTBackend, *, template_name: str, template_body: str, set_as_default: bool | None
) -> tuple[Template, Version]:
    found = template(self, template_name)
    _json_object(template_body)
    if len(found.versions) >= TEMPLATE_VERSIONS_LIMIT:
        raise refuse("template_versions_limit", name=template_name, count=len(found.versions))
    version_id = max(found.versions, default=found.default_version) + 1
    version = found.versions[version_id] = Version(version_id, template_body, _now())
    if set_as_default:
        found.default_version = version_id
    found.modified = version.created
    request = {
        "templateName": template_name,
        "templateBody": template_body,
        "setAsDefault": set_as_default,
    }
    response = {
        "templateArn": found.arn,
        "templateName": template_name,
        "versionId": version_id,
        "isDefaultVersion": version_id == found.default_version,
    }
    publish_call(self, "CreateProvisioningTemplateVersion", present(request), response)
    return found, version


def _delete_provisioning_template_version(
    self: IoTBackend, template_name: str, version_id: int
) -> None:
    found = template(self, template_name)
    _version(found, version_id)
    if version_id == found.default_version:
        raise refuse("delete_default_template_version", name=template_name, version=version_id)
    del found.versions[version_id]
    request = {"templateName": template_name, "versionId": version_id}
    publish_call(self, "DeleteProvisioningTemplateVersion", request, None)


def _version(found: Template, version_id: int) -> Version:
    if version_id not in found.versions:
        raise ResourceNotFoundException(f"{found.name} has no version {version_id}")
    return found.versions[version_id]


# ---- responses ---------------------------------------------------------------------------------


def _backend(response: IoTResponse) -> Any:
    return response.iot_backend


def _response_create_provisioning_template(self: IoTResponse) -> ActionResult:
    created = _backend(self).create_provisioning_template(
        template_name=self._get_param("templateName"),
        template_body=self._get_param("templateBody"),
        provisioning_role_arn=self._get_param("provisioningRoleArn"),
        description=self._get_param("description"),
        enabled=self._get_param("enabled"),
        pre_provisioning_hook=self._get_param("preProvisioningHook"),
        template_type=self._get_param("type"),
        tags=self._get_param("tags"),
    )
    return ActionResult(
        {
            "templateArn": created.arn,
            "templateName": created.name,
            "defaultVersionId": created.default_version,
        }
    )


def _response_describe_provisioning_template(self: IoTResponse) -> ActionResult:
    found = template(self.iot_backend, self._get_param("templateName"))
    described = {
        **found.summary(),
        "defaultVersionId": found.default_version,
        "templateBody": found.versions[found.default_version].body,
        "provisioningRoleArn": found.role_arn,
    }
    if found.hook:
        described["preProvisioningHook"] = found.hook
    return ActionResult(described)


def _response_list_provisioning_templates(self: IoTResponse) -> ActionResult:
    ordered = sorted(templates(self.iot_backend).values(), key=lambda t: t.name)
    items, token = page(ordered, self._get_param("maxResults"), self._get_param("nextToken"))
    result: JsonDict = {"templates": [t.summary() for t in items]}
    return ActionResult({**result, "nextToken": token} if token else result)


def _response_update_provisioning_template(self: IoTResponse) -> EmptyResult:
    _backend(self).update_provisioning_template(
        template_name=self._get_param("templateName"),
        description=self._get_param("description"),
        enabled=self._get_param("enabled"),
        default_version_id=self._get_param("defaultVersionId"),
        provisioning_role_arn=self._get_param("provisioningRoleArn"),
        pre_provisioning_hook=self._get_param("preProvisioningHook"),
        remove_pre_provisioning_hook=self._get_param("removePreProvisioningHook"),
    )
    return EmptyResult()


def _response_delete_provisioning_template(self: IoTResponse) -> EmptyResult:
    _backend(self).delete_provisioning_template(self._get_param("templateName"))
    return EmptyResult()


def _response_create_provisioning_template_version(self: IoTResponse) -> ActionResult:
    found, version = _backend(self).create_provisioning_template_version(
        template_name=self._get_param("templateName"),
        template_body=self._get_param("templateBody"),
        set_as_default=self._get_param("setAsDefault"),
    )
    return ActionResult(
        {
            "templateArn": found.arn,
            "templateName": found.name,
            "versionId": version.version_id,
            "isDefaultVersion": version.version_id == found.default_version,
        }
    )


def _response_list_provisioning_template_versions(self: IoTResponse) -> ActionResult:
    found = template(self.iot_backend, self._get_param("templateName"))
    ordered = [found.versions[key] for key in sorted(found.versions)]
    items, token = page(ordered, self._get_param("maxResults"), self._get_param("nextToken"))
    result: JsonDict = {"versions": [found.version_summary(v) for v in items]}
    return ActionResult({**result, "nextToken": token} if token else result)


def _response_describe_provisioning_template_version(self: IoTResponse) -> ActionResult:
    found = template(self.iot_backend, self._get_param("templateName"))
    version = _version(found, int(self._get_param("versionId")))
    return ActionResult({**found.version_summary(version), "templateBody": version.body})


def _response_delete_provisioning_template_version(self: IoTResponse) -> EmptyResult:
    _backend(self).delete_provisioning_template_version(
        self._get_param("templateName"), int(self._get_param("versionId"))
    )
    return EmptyResult()


BACKEND_PATCHES: dict[str, Callable[..., Any]] = {
    "create_provisioning_template": _create_provisioning_template,
    "update_provisioning_template": _update_provisioning_template,
    "delete_provisioning_template": _delete_provisioning_template,
    "create_provisioning_template_version": _create_provisioning_template_version,
    "delete_provisioning_template_version": _delete_provisioning_template_version,
}
RESPONSE_PATCHES: dict[str, Callable[..., Any]] = {
    "create_provisioning_template": _response_create_provisioning_template,
    "describe_provisioning_template": _response_describe_provisioning_template,
    "list_provisioning_templates": _response_list_provisioning_templates,
    "update_provisioning_template": _response_update_provisioning_template,
    "delete_provisioning_template": _response_delete_provisioning_template,
    "create_provisioning_template_version": _response_create_provisioning_template_version,
    "list_provisioning_template_versions": _response_list_provisioning_template_versions,
    "describe_provisioning_template_version": _response_describe_provisioning_template_version,
    "delete_provisioning_template_version": _response_delete_provisioning_template_version,
}
