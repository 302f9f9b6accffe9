"""Provisioning templates' pure decisions: the calls from one state to another (versions by
body, never by id; the default; the version limit), the ARN rewrites and the CloudTrail calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.cloudtrail import parse_cloudtrail_event
from pipeline.errors import EventValidationError
from pipeline.kinds.base import Call, ConvergeError
from pipeline.kinds.provisioning_template import (
    KIND,
    TEMPLATE_VERSIONS_LIMIT,
    canonical_body,
    template_calls,
)
from pipeline.model import EntityKind
from pipeline.policyrewrite import ArnMapping
from sandbox.emulation.controlplane import cloudtrail_event

ROLE = "arn:aws:iam::111111111111:role/provisioning"
HOOK = "arn:aws:lambda:us-east-1:111111111111:function:pre-provision"


def body(n: int) -> str:
    return canonical_body("b", json.dumps({"Resources": {"thing": {"n": n}}}))


def desired(default: int, *versions: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": "FLEET_PROVISIONING",
        "body": body(default),
        "versions": sorted(body(n) for n in (versions or (default,))),
        "enabled": True,
        "role_arn": ROLE,
        "hook": None,
        "description": None,
        **fields,
    }


def actual(default_id: int, *versions: tuple[int, int], **fields: Any) -> dict[str, Any]:
    """``versions``: (id, body number); the default is ``default_id``."""
    return {
        **desired(0),
        "versions": [{"id": i, "body": body(n), "default": i == default_id} for i, n in versions],
        **fields,
    }


def ops(calls: list[Call]) -> list[tuple[str, Any]]:
    return [
        (
            c.op,
            c.params.get("versionId")
            or c.params.get("defaultVersionId")
            or c.params.get("templateBody"),
        )
        for c in calls
    ]


def test_a_missing_template_is_created_with_its_default_then_its_other_versions() -> None:
    calls = template_calls("t", desired(2, 1, 2), None)
    assert [c.op for c in calls] == [
        "CreateProvisioningTemplate",
        "CreateProvisioningTemplateVersion",
    ]
    assert calls[0].params["templateBody"] == body(2)
    assert calls[0].params["type"] == "FLEET_PROVISIONING"
    assert calls[1].params == {"templateName": "t", "templateBody": body(1), "setAsDefault": False}


def test_versions_are_compared_by_body_never_by_id() -> None:
    # GIVEN the destination's ids differ from the source's (created in another order)
    there = actual(7, (3, 1), (7, 2))
    # THEN nothing to do: same bodies, same default body
    assert template_calls("t", desired(2, 1, 2), there) == []


def test_a_new_default_is_a_new_version_set_as_default_and_a_version_the_source_lacks_goes() -> (
    None
):
    there = actual(2, (1, 1), (2, 2))
    calls = template_calls("t", desired(3, 2, 3), there)
    assert ops(calls) == [
        ("DeleteProvisioningTemplateVersion", 1),
        ("CreateProvisioningTemplateVersion", body(3)),
    ]
    assert calls[1].params["setAsDefault"] is True


def test_an_existing_body_becomes_the_default_by_its_destination_id() -> None:
    there = actual(2, (1, 1), (2, 2))
    assert ops(template_calls("t", desired(1, 1, 2), there)) == [("UpdateProvisioningTemplate", 1)]


def test_an_old_default_the_source_lacks_is_deleted_after_the_new_default() -> None:
    there = actual(1, (1, 1))
    assert ops(template_calls("t", desired(2), there)) == [
        ("CreateProvisioningTemplateVersion", body(2)),
        ("DeleteProvisioningTemplateVersion", 1),
    ]


def test_at_the_version_limit_room_is_made_only_from_versions_the_source_lacks() -> None:
    # GIVEN the destination at the limit, one version the source no longer has
    there = actual(5, *((i, i) for i in range(1, TEMPLATE_VERSIONS_LIMIT + 1)))
    calls = template_calls("t", desired(6, 2, 3, 4, 5, 6), there)
    assert ops(calls)[0] == ("DeleteProvisioningTemplateVersion", 1)
    assert ops(calls)[1] == ("CreateProvisioningTemplateVersion", body(6))


def test_at_the_limit_with_nothing_safe_to_delete_it_is_reported() -> None:
    # GIVEN every non-default version is one the source keeps, and the default is not
    there = actual(9, (1, 1), (2, 2), (3, 3), (4, 4), (9, 9))
    with pytest.raises(ConvergeError, match="VersionsLimitExceededException"):
        template_calls("t", desired(5, 1, 2, 3, 4, 5), there)


def test_a_type_change_is_a_delete_and_a_create() -> None:
    there = actual(1, (1, 1), type="JITP")
    assert [c.op for c in template_calls("t", desired(1), there)] == [
        "DeleteProvisioningTemplate",
        "CreateProvisioningTemplate",
    ]


def test_settings_are_one_update_and_a_removed_hook_is_removed() -> None:
    hook = {"targetArn": HOOK, "payloadVersion": "2020-04-01"}
    there = actual(1, (1, 1), hook=hook, enabled=False)
    (call,) = template_calls("t", desired(1, description="fleet"), there)
    assert call == Call(
        "UpdateProvisioningTemplate",
        {
            "templateName": "t",
            "description": "fleet",
            "enabled": True,
            "removePreProvisioningHook": True,
        },
    )


def test_a_deleted_template_is_deleted() -> None:
    assert template_calls("t", None, actual(1, (1, 1))) == [
        Call("DeleteProvisioningTemplate", {"templateName": "t"})
    ]
    assert template_calls("t", None, None) == []


def test_the_role_takes_the_account_map_and_the_hook_the_destination_region() -> None:
    mapping = ArnMapping({"us-east-1": "eu-west-1"}, {"111111111111": "222222222222"})
    hook = {"targetArn": HOOK, "payloadVersion": "2020-04-01"}
    written = KIND.as_written(desired(1, hook=hook), mapping)
    assert written["role_arn"] == "arn:aws:iam::222222222222:role/provisioning"
    assert written["hook"] == {
        "targetArn": "arn:aws:lambda:eu-west-1:222222222222:function:pre-provision",
        "payloadVersion": "2020-04-01",
    }
    # An IoT ARN in a role field is not the template's to rewrite, nor a third region's function.
    other = KIND.as_written(
        desired(1, hook={"targetArn": HOOK.replace("us-east-1", "ap-south-1")}), mapping
    )
    assert other["hook"]["targetArn"].startswith("arn:aws:lambda:ap-south-1:222222222222:")


@pytest.mark.parametrize(
    "event_name",
    [
        "CreateProvisioningTemplate",
        "UpdateProvisioningTemplate",
        "CreateProvisioningTemplateVersion",
        "DeleteProvisioningTemplateVersion",
    ],
)
def test_every_changing_call_is_described_in_the_origin_region(event_name: str) -> None:
    event = cloudtrail_event(
        event_name, {"templateName": "fleet"}, None, region="us-east-1", when=1
    )
    change = parse_cloudtrail_event(event)
    assert change.kind is EntityKind.PROVISIONING_TEMPLATE  # type: ignore[union-attr]
    assert change.lookup is not None  # type: ignore[union-attr]


def test_a_delete_is_a_tombstone_and_a_bad_name_is_refused() -> None:
    event = cloudtrail_event(
        "DeleteProvisioningTemplate", {"templateName": "fleet"}, None, region="us-east-1", when=1
    )
    assert parse_cloudtrail_event(event).deleted  # type: ignore[union-attr]
    bad = cloudtrail_event(
        "DeleteProvisioningTemplate", {"templateName": "a b"}, None, region="us-east-1", when=1
    )
    with pytest.raises(EventValidationError):
        parse_cloudtrail_event(bad)


def test_a_corrective_state_is_validated() -> None:
    state = KIND.check_state(desired(1))
    assert state["body"] == body(1)
    with pytest.raises(EventValidationError):
        KIND.check_state({**desired(1), "type": "OTHER"})
    with pytest.raises(EventValidationError):
        KIND.check_state({**desired(1), "body": "not json"})
