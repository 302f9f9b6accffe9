"""Provisioning templates and their versions on the sandbox, over HTTP with boto3
(``sandbox.emulation.provisioning``; AWS's behaviour and sources: docs/onboarding-kinds.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.certificates import CertificateAuthority
from sandbox.emulation.provisioning import TEMPLATE_VERSIONS_LIMIT
from sandbox.stack import Sandbox

SOURCE = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/provisioning"
HOOK = {"targetArn": "arn:aws:lambda:us-east-1:123456789012:function:hook"}


def _body(marker: str = "v1") -> str:
    return json.dumps({"Parameters": {}, "Resources": {}, "Description": marker})


def _refused(call: Any) -> str:
    with pytest.raises(ClientError) as error:
        call()
    return str(error.value.response["Error"]["Code"])


def _create(iot: Any, name: str = "fleet", **kwargs: Any) -> dict[str, Any]:
    created: dict[str, Any] = iot.create_provisioning_template(
        templateName=name, templateBody=_body(), provisioningRoleArn=ROLE, **kwargs
    )
    return created


def _cloudtrail(box: Sandbox) -> list[dict[str, Any]]:
    return [event["detail"] for event in box.outbox(SOURCE).take() if "detail" in event]


def test_a_created_template_is_version_1_and_described_as_aws_describes_it(
    box: Sandbox,
) -> None:
    iot = box.iot(SOURCE)
    created = _create(iot, description="claims", preProvisioningHook=HOOK)
    arn = f"arn:aws:iot:{SOURCE}:123456789012:provisioningtemplate/fleet"
    assert (created["templateArn"], created["defaultVersionId"]) == (arn, 1)
    described = iot.describe_provisioning_template(templateName="fleet")
    assert described["templateBody"] == _body()
    assert (described["type"], described["enabled"]) == ("FLEET_PROVISIONING", False)
    assert described["preProvisioningHook"] == HOOK
    assert (described["description"], described["provisioningRoleArn"]) == ("claims", ROLE)
    (summary,) = iot.list_provisioning_templates()["templates"]
    assert set(summary) == {
        "templateArn",
        "templateName",
        "description",
        "creationDate",
        "lastModifiedDate",
        "enabled",
        "type",
    }


def test_versions_are_added_made_default_listed_described_and_deleted(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    _create(iot)
    second = iot.create_provisioning_template_version(templateName="fleet", templateBody=_body("2"))
    assert (second["versionId"], second["isDefaultVersion"]) == (2, False)
    third = iot.create_provisioning_template_version(
        templateName="fleet", templateBody=_body("3"), setAsDefault=True
    )
    assert (third["versionId"], third["isDefaultVersion"]) == (3, True)
    described = iot.describe_provisioning_template(templateName="fleet")
    assert (described["defaultVersionId"], described["templateBody"]) == (3, _body("3"))
    versions = iot.list_provisioning_template_versions(templateName="fleet")["versions"]
    assert [(v["versionId"], v["isDefaultVersion"]) for v in versions] == [
        (1, False),
        (2, False),
        (3, True),
    ]
    version = iot.describe_provisioning_template_version(templateName="fleet", versionId=2)
    assert (version["templateBody"], version["isDefaultVersion"]) == (_body("2"), False)
    iot.delete_provisioning_template_version(templateName="fleet", versionId=2)
    fourth = iot.create_provisioning_template_version(templateName="fleet", templateBody=_body())
    assert fourth["versionId"] == 4  # ids are not reused
    assert _refused(
        lambda: iot.describe_provisioning_template_version(templateName="fleet", versionId=2)
    ) == ("ResourceNotFoundException")


def test_update_changes_what_it_names_and_removes_the_hook(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    _create(iot, preProvisioningHook=HOOK)
    iot.create_provisioning_template_version(templateName="fleet", templateBody=_body("2"))
    iot.update_provisioning_template(
        templateName="fleet",
        description="new",
        enabled=True,
        defaultVersionId=2,
        provisioningRoleArn=ROLE + "-2",
    )
    described = iot.describe_provisioning_template(templateName="fleet")
    assert (described["description"], described["enabled"]) == ("new", True)
    assert (described["defaultVersionId"], described["provisioningRoleArn"]) == (2, ROLE + "-2")
    assert described["preProvisioningHook"] == HOOK
    iot.update_provisioning_template(templateName="fleet", removePreProvisioningHook=True)
    assert "preProvisioningHook" not in iot.describe_provisioning_template(templateName="fleet")


@pytest.mark.parametrize("body", ["{not json", "[1, 2]"], ids=["not-json", "not-an-object"])
def test_a_body_that_is_not_a_json_object_is_refused(box: Sandbox, body: str) -> None:
    iot = box.iot(SOURCE)
    create = lambda: iot.create_provisioning_template(  # noqa: E731
        templateName="bad", templateBody=body, provisioningRoleArn=ROLE
    )
    assert _refused(create) == "InvalidRequestException"
    _create(iot)
    version = lambda: iot.create_provisioning_template_version(  # noqa: E731
        templateName="fleet", templateBody=body
    )
    assert _refused(version) == "InvalidRequestException"
    assert [t["templateName"] for t in iot.list_provisioning_templates()["templates"]] == ["fleet"]


def test_a_name_in_use_and_a_hook_on_a_jitp_template_are_refused(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    _create(iot)
    assert _refused(lambda: _create(iot)) == "ResourceAlreadyExistsException"
    jitp_hook = lambda: _create(iot, "jitp", type="JITP", preProvisioningHook=HOOK)  # noqa: E731
    assert _refused(jitp_hook) == "InvalidRequestException"
    _create(iot, "jitp", type="JITP")
    hook_later = lambda: iot.update_provisioning_template(  # noqa: E731
        templateName="jitp", preProvisioningHook=HOOK
    )
    assert _refused(hook_later) == "InvalidRequestException"


def test_a_template_holds_at_most_the_version_limit(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    _create(iot)
    add = lambda: iot.create_provisioning_template_version(  # noqa: E731
        templateName="fleet", templateBody=_body()
    )
    for _ in range(TEMPLATE_VERSIONS_LIMIT - 1):
        add()
    assert _refused(add) == "VersionsLimitExceededException"
    iot.delete_provisioning_template_version(templateName="fleet", versionId=2)
    add()  # room again


def test_the_default_version_an_unknown_version_and_a_cas_template_are_refused(
    box: Sandbox,
) -> None:
    iot = box.iot(SOURCE)
    _create(iot, "jitp", type="JITP")
    delete_default = lambda: iot.delete_provisioning_template_version(  # noqa: E731
        templateName="jitp", versionId=1
    )
    assert _refused(delete_default) == "InvalidRequestException"
    unknown = lambda: iot.update_provisioning_template(  # noqa: E731
        templateName="jitp", defaultVersionId=9
    )
    assert _refused(unknown) == "InvalidRequestException"
    ca = iot.register_ca_certificate(
        caCertificate=CertificateAuthority.new().pem,
        certificateMode="SNI_ONLY",
        registrationConfig={"templateName": "jitp"},
    )
    delete = lambda: iot.delete_provisioning_template(templateName="jitp")  # noqa: E731
    assert _refused(delete) == "DeleteConflictException"
    iot.delete_ca_certificate(certificateId=ca["certificateId"])
    delete()
    assert _refused(lambda: iot.describe_provisioning_template(templateName="jitp")) == (
        "ResourceNotFoundException"
    )


def test_templates_and_versions_page(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    for name in ("c", "a", "b"):
        _create(iot, name)
    first = iot.list_provisioning_templates(maxResults=2)
    assert [t["templateName"] for t in first["templates"]] == ["a", "b"]
    rest = iot.list_provisioning_templates(maxResults=2, nextToken=first["nextToken"])
    assert [t["templateName"] for t in rest["templates"]] == ["c"] and "nextToken" not in rest
    iot.create_provisioning_template_version(templateName="a", templateBody=_body())
    pages = iot.get_paginator("list_provisioning_template_versions").paginate(
        templateName="a", PaginationConfig={"PageSize": 1}
    )
    assert [v["versionId"] for p in pages for v in p["versions"]] == [1, 2]


def test_template_calls_publish_their_cloudtrail_events(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    box.outbox(SOURCE).take()
    _create(iot, type="FLEET_PROVISIONING", enabled=True)
    iot.create_provisioning_template_version(
        templateName="fleet", templateBody=_body("2"), setAsDefault=True
    )
    iot.update_provisioning_template(templateName="fleet", description="d")
    iot.delete_provisioning_template_version(templateName="fleet", versionId=1)
    iot.delete_provisioning_template(templateName="fleet")
    events = _cloudtrail(box)
    assert [e["eventName"] for e in events] == [
        "CreateProvisioningTemplate",
        "CreateProvisioningTemplateVersion",
        "UpdateProvisioningTemplate",
        "DeleteProvisioningTemplateVersion",
        "DeleteProvisioningTemplate",
    ]
    created, version, updated, deleted_version, deleted = events
    assert created["requestParameters"] == {
        "templateName": "fleet",
        "templateBody": _body(),
        "enabled": True,
        "provisioningRoleArn": ROLE,
        "type": "FLEET_PROVISIONING",
    }
    assert created["responseElements"]["defaultVersionId"] == 1
    assert version["responseElements"]["versionId"] == 2
    assert version["responseElements"]["isDefaultVersion"] is True
    assert updated["requestParameters"] == {"templateName": "fleet", "description": "d"}
    assert deleted_version["requestParameters"] == {"templateName": "fleet", "versionId": 1}
    assert deleted["requestParameters"] == {"templateName": "fleet"}
