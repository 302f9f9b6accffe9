"""Role aliases (pipeline.kinds.role_alias): their CloudTrail calls, the pure decision, the role
ARN as the destination's copy names it, and a corrective event's state validated."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.cloudtrail import EVENT_NAMES, parse_cloudtrail_event
from pipeline.errors import EventValidationError
from pipeline.kinds import KINDS
from pipeline.kinds.base import Call, ConvergeError
from pipeline.kinds.role_alias import role_alias_calls
from pipeline.model import Change, EntityKind, Lookup
from pipeline.policyrewrite import ArnMapping
from sandbox.emulation.controlplane import cloudtrail_event

KIND = KINDS[EntityKind.ROLE_ALIAS]
ROLE = "arn:aws:iam::111111111111:role/device-credentials"
WHEN = 1_796_119_205


def _parsed(name: str, request: dict[str, Any]) -> Change:
    event = cloudtrail_event(name, request, None, region="us-east-1", when=WHEN)
    change = parse_cloudtrail_event(event)
    assert isinstance(change, Change), change
    return change


def test_the_role_alias_calls_are_selected_from_cloudtrail() -> None:
    assert {"CreateRoleAlias", "UpdateRoleAlias", "DeleteRoleAlias"} <= set(EVENT_NAMES)


@pytest.mark.parametrize("name", ["CreateRoleAlias", "UpdateRoleAlias"])
def test_a_written_alias_is_read_in_the_origin_region(name: str) -> None:
    # CloudTrail's record of the request is not documented field by field: the stream reads
    # the alias where it was changed, so events of one second read the same, latest state.
    change = _parsed(name, {"roleAlias": "fleet", "roleArn": ROLE})
    assert (change.kind, change.name, change.deleted) == (EntityKind.ROLE_ALIAS, "fleet", False)
    assert change.lookup == Lookup()
    assert change.origin.timestamp_ms == WHEN * 1000


def test_a_deleted_alias_is_a_tombstone() -> None:
    change = _parsed("DeleteRoleAlias", {"roleAlias": "fleet"})
    assert (change.name, change.deleted, change.lookup) == ("fleet", True, None)


def test_an_alias_name_aws_refuses_is_refused() -> None:
    event = cloudtrail_event(
        "DeleteRoleAlias", {"roleAlias": "has space"}, None, region="us-east-1", when=WHEN
    )
    with pytest.raises(EventValidationError, match=r"requestParameters\.roleAlias"):
        parse_cloudtrail_event(event)


def test_the_decision_creates_updates_only_what_differs_and_deletes() -> None:
    desired = {"role_arn": ROLE, "credential_duration_seconds": 900}
    assert role_alias_calls("fleet", desired, None) == [
        Call(
            "CreateRoleAlias",
            {"roleAlias": "fleet", "roleArn": ROLE, "credentialDurationSeconds": 900},
        )
    ]
    assert role_alias_calls("fleet", desired, desired) == []
    longer = {**desired, "credential_duration_seconds": 7200}
    assert role_alias_calls("fleet", longer, desired) == [
        Call("UpdateRoleAlias", {"roleAlias": "fleet", "credentialDurationSeconds": 7200})
    ]
    assert role_alias_calls("fleet", None, desired) == [
        Call("DeleteRoleAlias", {"roleAlias": "fleet"})
    ]
    assert role_alias_calls("fleet", None, None) == []


def test_an_alias_without_its_role_cannot_be_created() -> None:
    with pytest.raises(ConvergeError, match="no role ARN"):
        role_alias_calls("fleet", {"credential_duration_seconds": 900}, None)


def test_the_role_is_named_in_the_destination_account_as_configured() -> None:
    # IAM is global: only the account changes, and only when the map names it.
    mapped = ArnMapping(regions={"us-east-1": "eu-west-1"}, accounts={"111111111111": "2" * 12})
    state = {"role_arn": ROLE, "credential_duration_seconds": 3600}
    assert KIND.as_written(state, mapped) == {
        "role_arn": "arn:aws:iam::222222222222:role/device-credentials",
        "credential_duration_seconds": 3600,
    }
    same_account = ArnMapping(regions={"us-east-1": "eu-west-1"})
    assert KIND.as_written(state, same_account) == state


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("credential_duration_seconds", 899),
        ("credential_duration_seconds", 43201),
        ("credential_duration_seconds", True),
        ("role_arn", "arn:short"),
        ("role_arn", None),
    ],
)
def test_a_corrective_state_aws_would_refuse_is_refused(field: str, value: Any) -> None:
    with pytest.raises(EventValidationError):
        KIND.check_state({field: value})


def test_a_corrective_state_within_aws_bounds_is_accepted() -> None:
    state = {"role_arn": ROLE, "credential_duration_seconds": 43200}
    assert KIND.check_state(state) == state
