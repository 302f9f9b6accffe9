"""Role aliases and custom authorizers on the sandbox, over HTTP with boto3
(``sandbox.emulation.rolealiases``, ``sandbox.emulation.authorizers``; AWS's behaviour and its
sources: docs/onboarding-kinds.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.stack import Sandbox

SOURCE = "us-east-1"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:authorize"
KEYS = {"key1": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----"}


def _refused(call: Any) -> str:
    with pytest.raises(ClientError) as error:
        call()
    return str(error.value.response["Error"]["Code"])


def _role(box: Sandbox, name: str, max_session: int) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "credentials.iot.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = box.client("iam", SOURCE).create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=max_session
    )
    return str(role["Role"]["Arn"])


def _cloudtrail(box: Sandbox) -> list[dict[str, Any]]:
    return [event["detail"] for event in box.outbox(SOURCE).take() if "detail" in event]


# ---- role aliases ------------------------------------------------------------------------------


def test_credential_durations_outside_aws_bounds_are_refused(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    role = _role(box, "long", 43200)
    too_long = lambda: iot.create_role_alias(  # noqa: E731
        roleAlias="a", roleArn=role, credentialDurationSeconds=43201
    )
    assert _refused(too_long) == "InvalidRequestException"
    iot.create_role_alias(roleAlias="a", roleArn=role, credentialDurationSeconds=43200)
    update = lambda: iot.update_role_alias(roleAlias="a", credentialDurationSeconds=50000)  # noqa: E731
    assert _refused(update) == "InvalidRequestException"
    described = iot.describe_role_alias(roleAlias="a")["roleAliasDescription"]
    assert (described["roleArn"], described["credentialDurationSeconds"]) == (role, 43200)


def test_a_duration_beyond_the_roles_maximum_session_is_refused(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    short, long = _role(box, "short", 3600), _role(box, "long", 7200)
    over = lambda: iot.create_role_alias(  # noqa: E731
        roleAlias="a", roleArn=short, credentialDurationSeconds=7200
    )
    assert _refused(over) == "InvalidRequestException"
    iot.create_role_alias(roleAlias="a", roleArn=long, credentialDurationSeconds=7200)
    back_to_short = lambda: iot.update_role_alias(roleAlias="a", roleArn=short)  # noqa: E731
    assert _refused(back_to_short) == "InvalidRequestException"
    # A role IAM does not know bounds nothing (module docstring: an assumption).
    iot.create_role_alias(
        roleAlias="b",
        roleArn="arn:aws:iam::123456789012:role/elsewhere",
        credentialDurationSeconds=7200,
    )
    twice = lambda: iot.create_role_alias(roleAlias="a", roleArn=long)  # noqa: E731
    assert _refused(twice) == "ResourceAlreadyExistsException"


def test_role_aliases_page_alphabetically(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    role = _role(box, "r", 3600)
    for name in ("b", "c", "a"):
        iot.create_role_alias(roleAlias=name, roleArn=role)
    first = iot.list_role_aliases(pageSize=2, ascendingOrder=True)
    assert first["roleAliases"] == ["a", "b"]
    rest = iot.list_role_aliases(pageSize=2, ascendingOrder=True, marker=first["nextMarker"])
    assert rest["roleAliases"] == ["c"] and "nextMarker" not in rest
    assert iot.list_role_aliases()["roleAliases"] == ["c", "b", "a"]


def test_role_alias_calls_publish_their_cloudtrail_events(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    role = _role(box, "r", 7200)
    box.outbox(SOURCE).take()
    iot.create_role_alias(roleAlias="a", roleArn=role, credentialDurationSeconds=900)
    iot.update_role_alias(roleAlias="a", credentialDurationSeconds=7200)
    iot.delete_role_alias(roleAlias="a")
    created, updated, deleted = _cloudtrail(box)
    arn = f"arn:aws:iot:{SOURCE}:123456789012:rolealias/a"
    assert (created["eventName"], updated["eventName"], deleted["eventName"]) == (
        "CreateRoleAlias",
        "UpdateRoleAlias",
        "DeleteRoleAlias",
    )
    assert created["requestParameters"] == {
        "roleAlias": "a",
        "roleArn": role,
        "credentialDurationSeconds": 900,
    }
    assert created["responseElements"] == {"roleAlias": "a", "roleAliasArn": arn}
    assert updated["requestParameters"] == {"roleAlias": "a", "credentialDurationSeconds": 7200}
    assert deleted["requestParameters"] == {"roleAlias": "a"}


# ---- custom authorizers ------------------------------------------------------------------------


def test_an_authorizer_is_created_described_updated_and_deleted(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    created = iot.create_authorizer(
        authorizerName="auth",
        authorizerFunctionArn=FUNCTION,
        tokenKeyName="token",
        tokenSigningPublicKeys=KEYS,
    )
    assert created["authorizerArn"] == f"arn:aws:iot:{SOURCE}:123456789012:authorizer/auth"
    described = iot.describe_authorizer(authorizerName="auth")["authorizerDescription"]
    assert (described["status"], described["signingDisabled"]) == ("ACTIVE", False)
    assert (described["tokenKeyName"], described["tokenSigningPublicKeys"]) == ("token", KEYS)
    assert described["enableCachingForHttp"] is False
    iot.update_authorizer(authorizerName="auth", status="INACTIVE", enableCachingForHttp=True)
    described = iot.describe_authorizer(authorizerName="auth")["authorizerDescription"]
    assert (described["status"], described["enableCachingForHttp"]) == ("INACTIVE", True)
    iot.delete_authorizer(authorizerName="auth")
    gone = lambda: iot.describe_authorizer(authorizerName="auth")  # noqa: E731
    assert _refused(gone) == "ResourceNotFoundException"


def test_authorizer_refusals(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    unsigned = lambda: iot.create_authorizer(  # noqa: E731
        authorizerName="auth", authorizerFunctionArn=FUNCTION, tokenKeyName="token"
    )
    assert _refused(unsigned) == "InvalidRequestException"
    iot.create_authorizer(
        authorizerName="auth", authorizerFunctionArn=FUNCTION, signingDisabled=True
    )
    again = lambda: iot.create_authorizer(  # noqa: E731
        authorizerName="auth", authorizerFunctionArn=FUNCTION, signingDisabled=True
    )
    assert _refused(again) == "ResourceAlreadyExistsException"
    active = lambda: iot.delete_authorizer(authorizerName="auth")  # noqa: E731
    assert _refused(active) == "InvalidRequestException"
    assert [a["authorizerName"] for a in iot.list_authorizers()["authorizers"]] == ["auth"]


def test_authorizers_page_alphabetically_and_filter_by_status(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    for name, status in (("b", "ACTIVE"), ("c", "INACTIVE"), ("a", "ACTIVE")):
        iot.create_authorizer(
            authorizerName=name, authorizerFunctionArn=FUNCTION, signingDisabled=True, status=status
        )
    first = iot.list_authorizers(pageSize=2, ascendingOrder=True)
    assert [a["authorizerName"] for a in first["authorizers"]] == ["a", "b"]
    rest = iot.list_authorizers(pageSize=2, ascendingOrder=True, marker=first["nextMarker"])
    assert [a["authorizerName"] for a in rest["authorizers"]] == ["c"]
    active = iot.list_authorizers(status="ACTIVE", ascendingOrder=True)["authorizers"]
    assert [a["authorizerName"] for a in active] == ["a", "b"]
    assert set(active[0]) == {"authorizerName", "authorizerArn"}


def test_the_default_authorizer_is_set_described_cleared_and_dropped_with_it(
    box: Sandbox,
) -> None:
    iot = box.iot(SOURCE)
    none_yet = iot.describe_default_authorizer
    assert _refused(none_yet) == "ResourceNotFoundException"
    assert _refused(lambda: iot.set_default_authorizer(authorizerName="nope")) == (
        "ResourceNotFoundException"
    )
    iot.create_authorizer(
        authorizerName="auth", authorizerFunctionArn=FUNCTION, signingDisabled=True
    )
    assert iot.set_default_authorizer(authorizerName="auth")["authorizerName"] == "auth"
    described = iot.describe_default_authorizer()["authorizerDescription"]
    assert described["authorizerFunctionArn"] == FUNCTION
    iot.clear_default_authorizer()
    assert _refused(none_yet) == "ResourceNotFoundException"
    iot.set_default_authorizer(authorizerName="auth")
    iot.update_authorizer(authorizerName="auth", status="INACTIVE")
    iot.delete_authorizer(authorizerName="auth")
    assert _refused(none_yet) == "ResourceNotFoundException"


def test_authorizer_calls_publish_their_cloudtrail_events(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    box.outbox(SOURCE).take()
    iot.create_authorizer(
        authorizerName="auth",
        authorizerFunctionArn=FUNCTION,
        tokenKeyName="token",
        tokenSigningPublicKeys=KEYS,
    )
    iot.set_default_authorizer(authorizerName="auth")
    iot.update_authorizer(authorizerName="auth", status="INACTIVE")
    iot.clear_default_authorizer()
    iot.delete_authorizer(authorizerName="auth")
    events = _cloudtrail(box)
    assert [e["eventName"] for e in events] == [
        "CreateAuthorizer",
        "SetDefaultAuthorizer",
        "UpdateAuthorizer",
        "ClearDefaultAuthorizer",
        "DeleteAuthorizer",
    ]
    created, default, updated, _, deleted = events
    assert created["requestParameters"] == {
        "authorizerName": "auth",
        "authorizerFunctionArn": FUNCTION,
        "tokenKeyName": "token",
        "tokenSigningPublicKeys": KEYS,
    }
    arn = f"arn:aws:iot:{SOURCE}:123456789012:authorizer/auth"
    assert created["responseElements"] == {"authorizerName": "auth", "authorizerArn": arn}
    assert default["requestParameters"] == {"authorizerName": "auth"}
    assert updated["requestParameters"] == {"authorizerName": "auth", "status": "INACTIVE"}
    assert deleted["requestParameters"] == {"authorizerName": "auth"}
