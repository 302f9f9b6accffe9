"""Custom authorizers (pipeline.kinds.authorizer): their CloudTrail calls, the pure decision,
the function ARN as the destination's copy names it, and a corrective event's state validated."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.cloudtrail import EVENT_NAMES, SkipCode, Skipped, parse_cloudtrail_event
from pipeline.errors import EventValidationError
from pipeline.kinds import KINDS
from pipeline.kinds.authorizer import authorizer_calls
from pipeline.kinds.base import Call, ConvergeError
from pipeline.model import Change, EntityKind, Lookup
from pipeline.policyrewrite import ArnMapping
from sandbox.emulation.controlplane import cloudtrail_event

KIND = KINDS[EntityKind.AUTHORIZER]
FUNCTION = "arn:aws:lambda:us-east-1:111111111111:function:authorize"
KEYS = {"key1": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----"}
WHEN = 1_796_119_205
STATE: dict[str, Any] = {
    "function_arn": FUNCTION,
    "token_key_name": "token",
    "token_signing_public_keys": KEYS,
    "status": "ACTIVE",
    "signing_disabled": False,
    "caching_for_http": False,
    "default": False,
}


def _parsed(name: str, request: dict[str, Any]) -> Change | Skipped:
    return parse_cloudtrail_event(
        cloudtrail_event(name, request, None, region="us-east-1", when=WHEN)
    )


def test_the_authorizer_calls_are_selected_from_cloudtrail() -> None:
    names = {"CreateAuthorizer", "UpdateAuthorizer", "DeleteAuthorizer", "SetDefaultAuthorizer"}
    assert names | {"ClearDefaultAuthorizer"} <= set(EVENT_NAMES)


@pytest.mark.parametrize("name", ["CreateAuthorizer", "UpdateAuthorizer", "SetDefaultAuthorizer"])
def test_a_written_authorizer_is_read_in_the_origin_region(name: str) -> None:
    change = _parsed(name, {"authorizerName": "tokens", "authorizerFunctionArn": FUNCTION})
    assert isinstance(change, Change)
    assert (change.kind, change.name, change.lookup) == (EntityKind.AUTHORIZER, "tokens", Lookup())


def test_a_deleted_authorizer_is_a_tombstone_and_a_cleared_default_is_left_to_reconciliation() -> (
    None
):
    deleted = _parsed("DeleteAuthorizer", {"authorizerName": "tokens"})
    assert isinstance(deleted, Change) and deleted.deleted
    cleared = _parsed("ClearDefaultAuthorizer", {})
    assert isinstance(cleared, Skipped) and cleared.code is SkipCode.NOT_REPLICATED


def test_the_decision_creates_with_the_default_and_updates_only_what_differs() -> None:
    assert authorizer_calls("tokens", {**STATE, "default": True}, None) == [
        Call(
            "CreateAuthorizer",
            {
                "authorizerName": "tokens",
                "authorizerFunctionArn": FUNCTION,
                "status": "ACTIVE",
                "signingDisabled": False,
                "enableCachingForHttp": False,
                "tokenKeyName": "token",
                "tokenSigningPublicKeys": KEYS,
            },
        ),
        Call("SetDefaultAuthorizer", {"authorizerName": "tokens"}),
    ]
    assert authorizer_calls("tokens", STATE, STATE) == []
    inactive = {**STATE, "status": "INACTIVE", "caching_for_http": True}
    assert authorizer_calls("tokens", inactive, {**STATE, "default": True}) == [
        Call(
            "UpdateAuthorizer",
            {"authorizerName": "tokens", "status": "INACTIVE", "enableCachingForHttp": True},
        ),
        Call("ClearDefaultAuthorizer", {}),
    ]


def test_an_active_authorizer_is_deactivated_before_its_delete() -> None:
    assert authorizer_calls("tokens", None, STATE) == [
        Call("UpdateAuthorizer", {"authorizerName": "tokens", "status": "INACTIVE"}),
        Call("DeleteAuthorizer", {"authorizerName": "tokens"}),
    ]
    inactive = {**STATE, "status": "INACTIVE"}
    assert authorizer_calls("tokens", None, inactive) == [
        Call("DeleteAuthorizer", {"authorizerName": "tokens"})
    ]


def test_a_changed_signing_requirement_makes_the_copy_again() -> None:
    # AWS IoT cannot update an authorizer's signing requirement (UpdateAuthorizer has no field)
    unsigned = {**STATE, "signing_disabled": True, "token_key_name": None}
    unsigned["token_signing_public_keys"] = {}
    ops = [call.op for call in authorizer_calls("tokens", unsigned, STATE)]
    assert ops == ["UpdateAuthorizer", "DeleteAuthorizer", "CreateAuthorizer"]


def test_an_authorizer_without_its_function_cannot_be_created() -> None:
    with pytest.raises(ConvergeError, match="no function ARN"):
        authorizer_calls("tokens", {"status": "ACTIVE"}, None)


def test_the_function_is_the_destination_regions_in_the_mapped_account() -> None:
    mapping = ArnMapping(regions={"us-east-1": "eu-west-1"}, accounts={"111111111111": "2" * 12})
    written = KIND.as_written(STATE, mapping)
    assert written["function_arn"] == "arn:aws:lambda:eu-west-1:222222222222:function:authorize"
    assert {k: v for k, v in written.items() if k != "function_arn"} == {
        k: v for k, v in STATE.items() if k != "function_arn"
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "PENDING"),
        ("signing_disabled", "false"),
        ("token_key_name", "has space"),
        ("token_signing_public_keys", {"bad key!": "k"}),
        ("function_arn", ""),
    ],
)
def test_a_corrective_state_aws_would_refuse_is_refused(field: str, value: Any) -> None:
    with pytest.raises(EventValidationError):
        KIND.check_state({field: value})


def test_a_corrective_state_within_aws_bounds_is_accepted() -> None:
    assert KIND.check_state(STATE) == STATE
