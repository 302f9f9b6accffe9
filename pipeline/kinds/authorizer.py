"""Custom authorizers, by name: the Lambda function that authenticates devices' custom tokens,
how a token is signed, whether the authorizer is active, and whether it is the region's default.

AWS publishes no registry events for authorizers; their control-plane calls reach persist as
CloudTrail records (``pipeline.cloudtrail``), parsed here. AWS behaviours relied on (AWS IoT API
Reference and botocore's iot model, one page per action; docs/onboarding-kinds.md, "Custom
authorizers"):
- CreateAuthorizer: ``authorizerName`` 1-128 characters of ``[\\w=,@-]``,
  ``authorizerFunctionArn``, ``tokenKeyName`` (1-128 of ``[a-zA-Z0-9_-]``),
  ``tokenSigningPublicKeys`` (a map), ``status`` ACTIVE|INACTIVE, ``signingDisabled``,
  ``enableCachingForHttp``. "Values for the tokenKeyName and tokenSigningPublicKeys parameters
  are optional if you have disabled signing"; "You can't update an authorizer's signing
  requirement" (UpdateAuthorizer has no ``signingDisabled``): a copy whose signing requirement
  differs is deleted and created again (AWS IoT Developer Guide, "Creating and managing custom
  authorizers").
- "You can't delete a custom authorizer while it's active" (the custom authentication tutorial):
  a delete deactivates first.
- SetDefaultAuthorizer names the authorizer used when a device names none;
  DescribeDefaultAuthorizer gives it (``authorizerDescription``), ClearDefaultAuthorizer unsets
  it. Which authorizer is the default is a field of each authorizer here (``default``).
- The calls that change something are logged by CloudTrail (AWS IoT Developer Guide, "Logging
  AWS IoT API calls using AWS CloudTrail"); which request fields a record keeps is not
  documented, and ``eventTime`` is to the second: the stream describes the authorizer in the
  origin region (``resolve``). ClearDefaultAuthorizer names no authorizer: the stream skips it
  and reconciliation clears the destination's default.
The function is a Lambda function of the origin region: the copy names the destination region's
function of the same name (and account, as ``POLICY_ACCOUNT_MAP`` maps it), which the operator
deploys there with their infrastructure code, with the permission for AWS IoT to invoke it; this
tool does not replicate Lambda functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pipeline.errors import EventValidationError, NotFoundError
from pipeline.iot import Iot
from pipeline.kinds.base import (
    Call,
    ConvergeError,
    EntitySpec,
    Kind,
    Listing,
    Reader,
    flag,
    json_map,
    label,
    text,
)
from pipeline.kinds.parse import (
    ApiCall,
    CallParser,
    ParseResult,
    SkipCode,
    boolean,
    non_empty_text,
    skip,
)
from pipeline.model import Change, EntityKind, Lookup
from pipeline.policyrewrite import ArnMapping, rewrite_arn

_AUTHORIZER_NAME = re.compile(r"[\w=,@-]{1,128}", re.ASCII)
_TOKEN_KEY_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}", re.ASCII)
_KEY_NAME = re.compile(r"[a-zA-Z0-9:_-]+", re.ASCII)
STATUSES = ("ACTIVE", "INACTIVE")  # botocore: AuthorizerStatus


def authorizer_name(field_name: str, value: object) -> str:
    if not isinstance(value, str) or _AUTHORIZER_NAME.fullmatch(value) is None:
        raise EventValidationError(field_name, "must be 1-128 characters of [\\w=,@-]")
    return value


def state_of(description: Mapping[str, Any], default: str | None) -> dict[str, Any]:
    """An ``authorizerDescription`` as the authorizer's state; ``default``: the name of the
    region's default authorizer (DescribeDefaultAuthorizer), if any."""
    return {
        "function_arn": description["authorizerFunctionArn"],
        "token_key_name": description.get("tokenKeyName") or None,
        "token_signing_public_keys": dict(description.get("tokenSigningPublicKeys") or {}),
        "status": description["status"],
        "signing_disabled": bool(description.get("signingDisabled", False)),
        "caching_for_http": bool(description.get("enableCachingForHttp", False)),
        "default": description["authorizerName"] == default,
    }


def _default_name(iot: Iot | Reader) -> str | None:
    try:
        described = iot.call("DescribeDefaultAuthorizer")
    except NotFoundError:
        return None  # no default (the sandbox's answer, an assumption: onboarding-kinds.md)
    return str(described["authorizerDescription"]["authorizerName"])


# --- CloudTrail calls ----------------------------------------------------------------------------


def _name(call: ApiCall) -> str:
    return authorizer_name("requestParameters.authorizerName", call.request.get("authorizerName"))


def _written(call: ApiCall) -> ParseResult:
    """Create, Update, SetDefaultAuthorizer: the state is read in the origin region."""
    return Change(EntityKind.AUTHORIZER, _name(call), call.origin, lookup=Lookup())


def _deleted(call: ApiCall) -> ParseResult:
    return Change(EntityKind.AUTHORIZER, _name(call), call.origin, deleted=True)


def _default_cleared(call: ApiCall) -> ParseResult:
    return skip(
        call,
        SkipCode.NOT_REPLICATED,
        "ClearDefaultAuthorizer names no authorizer: the next reconciliation clears the default",
    )


# --- the pure decision ---------------------------------------------------------------------------

_UPDATED = (
    ("function_arn", "authorizerFunctionArn"),
    ("token_key_name", "tokenKeyName"),
    ("token_signing_public_keys", "tokenSigningPublicKeys"),
    ("status", "status"),
    ("caching_for_http", "enableCachingForHttp"),
)


def _teardown(name: str, actual: Mapping[str, Any]) -> list[Call]:
    """Deactivate (AWS refuses to delete an active authorizer), then delete."""
    calls = []
    if actual.get("status") == "ACTIVE":
        calls.append(Call("UpdateAuthorizer", {"authorizerName": name, "status": "INACTIVE"}))
    return [*calls, Call("DeleteAuthorizer", {"authorizerName": name})]


def _create(name: str, desired: Mapping[str, Any]) -> list[Call]:
    if not desired.get("function_arn"):
        raise ConvergeError(
            f"authorizer {name}: the state table has no function ARN to create it with; "
            "the next reconciliation reads it from the source"
        )
    params: dict[str, Any] = {
        "authorizerName": authorizer_name("authorizerName", name),
        "authorizerFunctionArn": desired["function_arn"],
        "status": desired.get("status") or "ACTIVE",
        "signingDisabled": bool(desired.get("signing_disabled")),
        "enableCachingForHttp": bool(desired.get("caching_for_http")),
    }
    if desired.get("token_key_name"):
        params["tokenKeyName"] = desired["token_key_name"]
    if desired.get("token_signing_public_keys"):
        params["tokenSigningPublicKeys"] = dict(desired["token_signing_public_keys"])
    calls = [Call("CreateAuthorizer", params)]
    if desired.get("default"):
        calls.append(Call("SetDefaultAuthorizer", {"authorizerName": name}))
    return calls


def authorizer_calls(
    name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
) -> list[Call]:
    """The calls that bring authorizer ``name`` from ``actual`` (``read``; ``None``: absent) to
    ``desired`` (as written in the destination; ``None``: deleted)."""
    if desired is None:
        return [] if actual is None else _teardown(name, actual)
    if actual is None:
        return _create(name, desired)
    if "function_arn" not in desired:
        return []  # nothing known yet
    if bool(desired.get("signing_disabled")) != bool(actual.get("signing_disabled")):
        # AWS cannot change a signing requirement: the copy is made again.
        return [*_teardown(name, actual), *_create(name, desired)]
    changed = {
        parameter: desired.get(field)
        for field, parameter in _UPDATED
        if desired.get(field) is not None and desired.get(field) != actual.get(field)
    }
    calls = [Call("UpdateAuthorizer", {"authorizerName": name, **changed})] if changed else []
    if desired.get("default") and not actual.get("default"):
        calls.append(Call("SetDefaultAuthorizer", {"authorizerName": name}))
    elif actual.get("default") and not desired.get("default"):
        calls.append(Call("ClearDefaultAuthorizer", {}))
    return calls


# --- the kind --------------------------------------------------------------------------------------


class Authorizer(Kind):
    spec = EntitySpec(
        EntityKind.AUTHORIZER,
        frame="authorizers",
        # Depends on nothing the tool replicates (the function is the operator's Lambda).
        rank=21,
        # Who may connect, and how they prove it: high. Caching changes only HTTP latency.
        fields={
            "function_arn": "high",
            "token_key_name": "high",
            "token_signing_public_keys": "high",
            "status": "high",
            "signing_disabled": "high",
            "caching_for_http": "low",
            "default": "high",
        },
        noun=("authorizer", "authorizers"),
    )
    columns = (
        text("name"),
        text("function_arn"),
        text("token_key_name"),
        json_map("token_signing_public_keys"),
        label("status"),
        flag("signing_disabled"),
        flag("caching_for_http"),
        flag("default"),
    )
    listing = Listing(
        "ListAuthorizers",
        name="authorizerName",
        describe=("DescribeAuthorizer", "DescribeDefaultAuthorizer"),
    )
    # [assumption] Service Quotas names ListAuthorizers' and DescribeAuthorizer's (L-9BF00264,
    # L-19FEFCAA); no default was read (docs/onboarding-kinds.md, "Quotas"): 10 TPS, as IoT's
    # list calls.
    quotas = {"ListAuthorizers": 10, "DescribeAuthorizer": 10, "DescribeDefaultAuthorizer": 10}
    arn_fields = ("function_arn",)
    api_calls: Mapping[str, CallParser] = {
        "CreateAuthorizer": _written,
        "UpdateAuthorizer": _written,
        "DeleteAuthorizer": _deleted,
        "SetDefaultAuthorizer": _written,
        "ClearDefaultAuthorizer": _default_cleared,
    }

    def check_name(self, field_name: str, name: object) -> str:
        return authorizer_name(field_name, name)

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        field = f"state.{key}"
        if key in ("signing_disabled", "caching_for_http", "default"):
            return boolean(field, value)
        if key == "status":
            if value not in STATUSES:
                raise EventValidationError(field, "must be ACTIVE or INACTIVE")
            return value
        if key == "token_key_name":
            if value is not None and (
                not isinstance(value, str) or _TOKEN_KEY_NAME.fullmatch(value) is None
            ):
                raise EventValidationError(field, "must be 1-128 characters of [a-zA-Z0-9_-]")
            return value
        if key == "token_signing_public_keys":
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and _KEY_NAME.fullmatch(k) and isinstance(v, str)
                for k, v in value.items()
            ):
                raise EventValidationError(field, "must map key names to public keys")
            return dict(value)
        return non_empty_text(field, value)

    def written(self, field: str, value: Any, mapping: ArnMapping) -> Any:
        """The destination region's function of the same name (and mapped account)."""
        return rewrite_arn(str(value), replace(mapping, services=("lambda",)))

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        response = iot.maybe("DescribeAuthorizer", authorizerName=name)
        if response is None:
            return None
        return state_of(response["authorizerDescription"], _default_name(iot))

    def record(self, reader: Reader, listed: Mapping[str, Any]) -> dict[str, Any] | None:
        name = listed["authorizerName"]
        try:
            response = reader.call("DescribeAuthorizer", authorizerName=name)
        except NotFoundError:
            return None  # deleted since it was listed
        return {"name": name, **state_of(response["authorizerDescription"], _default_name(reader))}

    def resolve(self, origin: Iot, change: Change) -> Change | None:
        """The authorizer as the origin region holds it now; ``None`` when it is gone since."""
        if change.lookup is None:
            return change
        state = self.read(origin, change.name)
        return None if state is None else replace(change, fields=state, lookup=None)

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        return authorizer_calls(name, desired, actual)


KIND = Authorizer()
KINDS = (KIND,)
