"""Role aliases, by name: the IAM role a device's certificate exchanges for AWS credentials
(AWS IoT Core credential provider), and how long those credentials last.

AWS publishes no registry events for role aliases; their control-plane calls reach persist as
CloudTrail records (``pipeline.cloudtrail``), parsed here. AWS behaviours relied on (AWS IoT API
Reference and botocore's iot model, one page per action; docs/onboarding-kinds.md, "Role
aliases"):
- CreateRoleAlias: ``roleAlias`` 1-128 characters of ``[\\w=,@-]``, ``roleArn`` 20-2048
  characters, ``credentialDurationSeconds`` 900-43200 (default 3600), at most the role's
  maximum session duration (AWS IoT Developer Guide, "Authorizing direct calls to AWS services
  using AWS IoT Core credential provider").
- UpdateRoleAlias changes ``roleArn`` and/or ``credentialDurationSeconds``; DeleteRoleAlias;
  DescribeRoleAlias gives ``roleAliasDescription`` (``roleArn``, ``credentialDurationSeconds``,
  ...); ListRoleAliases pages names only (``marker``/``pageSize``).
- The calls that change something are logged by CloudTrail (AWS IoT Developer Guide, "Logging
  AWS IoT API calls using AWS CloudTrail"); which request fields a record keeps is not
  documented, and ``eventTime`` is to the second: the stream describes the alias in the origin
  region (``resolve``), so events of the same second read the same, latest state.
The role is IAM's, global: the destination's copy names the same role, in the destination
account where ``POLICY_ACCOUNT_MAP`` maps the origin's (``written``). The role itself (and its
trust of ``credentials.iot.amazonaws.com``) is the operator's, as in the source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pipeline.errors import EventValidationError, NotFoundError
from pipeline.iot import Iot
from pipeline.kinds.base import Call, Column, ConvergeError, EntitySpec, Kind, Listing, Reader, text
from pipeline.kinds.parse import ApiCall, CallParser, ParseResult
from pipeline.model import Change, EntityKind, Lookup
from pipeline.policyrewrite import ArnMapping, rewrite_arn

_ROLE_ALIAS = re.compile(r"[\w=,@-]{1,128}", re.ASCII)
ROLE_ARN_LENGTH = (20, 2048)  # botocore: RoleArn min, max
CREDENTIAL_DURATION = (900, 43200)  # botocore: CredentialDurationSeconds min, max


def role_alias_name(field_name: str, value: object) -> str:
    if not isinstance(value, str) or _ROLE_ALIAS.fullmatch(value) is None:
        raise EventValidationError(field_name, "must be 1-128 characters of [\\w=,@-]")
    return value


def role_arn(field_name: str, value: object) -> str:
    low, high = ROLE_ARN_LENGTH
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise EventValidationError(field_name, f"must be a role ARN of {low}-{high} characters")
    return value


def credential_duration(field_name: str, value: object) -> int:
    low, high = CREDENTIAL_DURATION
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EventValidationError(field_name, f"must be {low}-{high} seconds")
    return value


def state_of(description: Mapping[str, Any]) -> dict[str, Any]:
    """A ``roleAliasDescription`` (DescribeRoleAlias) as the alias's state."""
    return {
        "role_arn": description["roleArn"],
        "credential_duration_seconds": int(description["credentialDurationSeconds"]),
    }


# --- CloudTrail calls ----------------------------------------------------------------------------


def _name(call: ApiCall) -> str:
    return role_alias_name("requestParameters.roleAlias", call.request.get("roleAlias"))


def _written(call: ApiCall) -> ParseResult:
    """CreateRoleAlias, UpdateRoleAlias: the state is read in the origin region (``resolve``)."""
    return Change(EntityKind.ROLE_ALIAS, _name(call), call.origin, lookup=Lookup())


def _deleted(call: ApiCall) -> ParseResult:
    return Change(EntityKind.ROLE_ALIAS, _name(call), call.origin, deleted=True)


# --- the pure decision ---------------------------------------------------------------------------


def role_alias_calls(
    name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
) -> list[Call]:
    """The calls that bring role alias ``name`` from ``actual`` (``read``; ``None``: absent) to
    ``desired`` (as written in the destination; ``None``: deleted)."""
    if desired is None:
        return [] if actual is None else [Call("DeleteRoleAlias", {"roleAlias": name})]
    arn, seconds = desired.get("role_arn"), desired.get("credential_duration_seconds")
    if actual is None:
        if not arn:
            raise ConvergeError(
                f"role alias {name}: the state table has no role ARN to create it with; "
                "the next reconciliation reads it from the source"
            )
        params: dict[str, Any] = {"roleAlias": role_alias_name("roleAlias", name), "roleArn": arn}
        if seconds is not None:
            params["credentialDurationSeconds"] = seconds
        return [Call("CreateRoleAlias", params)]
    changed: dict[str, Any] = {}
    if arn and arn != actual.get("role_arn"):
        changed["roleArn"] = arn
    if seconds is not None and seconds != actual.get("credential_duration_seconds"):
        changed["credentialDurationSeconds"] = seconds
    return [Call("UpdateRoleAlias", {"roleAlias": name, **changed})] if changed else []


# --- the kind --------------------------------------------------------------------------------------


class RoleAlias(Kind):
    spec = EntitySpec(
        EntityKind.ROLE_ALIAS,
        frame="role_aliases",
        # Depends on nothing the tool replicates (the role is the operator's IAM); after the
        # registry's kinds, so reports list it with the onboarding kinds.
        rank=20,
        # Another role grants devices other AWS permissions: high. Another duration changes how
        # often devices come back for credentials: medium.
        fields={"role_arn": "high", "credential_duration_seconds": "medium"},
        noun=("role alias", "role aliases"),
    )
    columns = (
        text("name"),
        text("role_arn"),
        Column("credential_duration_seconds", "Int64"),
    )
    listing = Listing("ListRoleAliases", describe=("DescribeRoleAlias",))
    # [assumption] Service Quotas names them (L-F22E433B, L-82706932); their defaults were not
    # read (docs/onboarding-kinds.md, "Quotas"): paced at the 10 TPS of IoT's list calls.
    quotas = {"ListRoleAliases": 10, "DescribeRoleAlias": 10}
    arn_fields = ("role_arn",)
    api_calls: Mapping[str, CallParser] = {
        "CreateRoleAlias": _written,
        "UpdateRoleAlias": _written,
        "DeleteRoleAlias": _deleted,
    }

    def check_name(self, field_name: str, name: object) -> str:
        return role_alias_name(field_name, name)

    def check_field(self, key: str, value: Any, state: Mapping[str, Any]) -> Any:
        if key == "role_arn":
            return role_arn(f"state.{key}", value)
        return credential_duration(f"state.{key}", value)

    def written(self, field: str, value: Any, mapping: ArnMapping) -> Any:
        """The role's ARN in the destination account (IAM ARNs name no region)."""
        return rewrite_arn(str(value), replace(mapping, services=("iam",)))

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        response = iot.maybe("DescribeRoleAlias", roleAlias=name)
        return None if response is None else state_of(response["roleAliasDescription"])

    def record(self, reader: Reader, listed: Mapping[str, Any]) -> dict[str, Any] | None:
        name = str(listed)  # ListRoleAliases lists names
        try:
            response = reader.call("DescribeRoleAlias", roleAlias=name)
        except NotFoundError:
            return None  # deleted since it was listed
        return {"name": name, **state_of(response["roleAliasDescription"])}

    def resolve(self, origin: Iot, change: Change) -> Change | None:
        """The alias as the origin region holds it now; ``None`` when it is gone since."""
        if change.lookup is None:
            return change
        state = self.read(origin, change.name)
        return None if state is None else replace(change, fields=state, lookup=None)

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        return role_alias_calls(name, desired, actual)


KIND = RoleAlias()
KINDS = (KIND,)
