"""Role aliases as AWS IoT keeps them (moto 5.2 implements the calls; what it lacks is below and
in ``MOTO_GAPS``).

Sources: AWS IoT API Reference and botocore's iot service model (CreateRoleAlias, UpdateRoleAlias,
DeleteRoleAlias, DescribeRoleAlias, ListRoleAliases, RoleAliasDescription); AWS IoT Developer
Guide, "Authorizing direct calls to AWS services using AWS IoT Core credential provider"
(authorizing-direct-aws.html).

- ``credentialDurationSeconds`` is 900..43200 (default 3600) and at most the role's maximum
  session duration (moto: any value). Refusals: ``REFUSALS``.
- ListRoleAliases pages with ``marker``/``pageSize``, alphabetically ("Return the list of role
  aliases in ascending alphabetical order"; moto: every alias at once, unordered).
- Create, Update and DeleteRoleAlias publish their CloudTrail event (``controlplane``).
- [assumption] A role ARN IAM does not know is not refused (AWS's check, if any, is unknown):
  only a known role's ``MaxSessionDuration`` bounds the duration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.iam.models import iam_backends
from moto.iot.models import IoTBackend
from moto.iot.responses import IoTResponse
from moto.utilities.utils import get_partition

from sandbox.emulation.controlplane import _publishing
from sandbox.emulation.paging import page
from sandbox.emulation.refusals import refuse

CREDENTIAL_DURATION = (900, 43200)  # botocore's model: CredentialDurationSeconds min, max
ROLE_DEFAULT_MAX_SESSION = 3600  # IAM User Guide, "Update the maximum session duration": 1 hour


def _check_duration(backend: IoTBackend, seconds: int | None, role_arn: str | None) -> None:
    if not seconds:  # not given (moto's response passes 0 for an UpdateRoleAlias without it)
        return
    low, high = CREDENTIAL_DURATION
    if not low <= seconds <= high:
        raise refuse("role_alias_duration_range", value=seconds)
    maximum = _max_session(backend, role_arn)
    if maximum is not None and seconds > maximum:
        raise refuse("role_alias_duration_over_role", value=seconds, maximum=maximum, role=role_arn)


def _max_session(backend: IoTBackend, role_arn: str | None) -> int | None:
    iam = iam_backends[backend.account_id][get_partition(backend.region_name)]
    for role in iam.get_roles():
        if role.arn == role_arn:
            return int(role.max_session_duration or ROLE_DEFAULT_MAX_SESSION)
    return None


def _before_create(
    self: IoTBackend,
    emulation: Any,
    role_alias_name: str,
    role_arn: str,
    credential_duration_seconds: int = 3600,
) -> None:
    _check_duration(self, credential_duration_seconds, role_arn)


def _before_update(
    self: IoTBackend,
    emulation: Any,
    role_alias_name: str,
    role_arn: str | None = None,
    credential_duration_seconds: int | None = None,
) -> None:
    """The duration that will hold (the new one, else the alias's) against the role that will."""
    alias = self.describe_role_alias(role_alias_name)
    seconds = credential_duration_seconds or alias.credential_duration_seconds
    _check_duration(self, seconds, role_arn or alias.role_arn)


def _alias(result: Any) -> dict[str, str]:
    return {"roleAlias": result.role_alias, "roleAliasArn": result.arn}


def _given(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value}


def _response_list_role_aliases(self: IoTResponse) -> ActionResult:
    names = sorted(
        (alias.role_alias for alias in self.iot_backend.list_role_aliases()),
        reverse=not self._get_param("ascendingOrder"),
    )
    items, marker = page(names, self._get_param("pageSize"), self._get_param("marker"))
    result: dict[str, Any] = {"roleAliases": items}
    return ActionResult({**result, "nextMarker": marker} if marker else result)


BACKEND_PATCHES: dict[str, Callable[..., Any]] = {
    "create_role_alias": _publishing(
        "create_role_alias",
        "CreateRoleAlias",
        lambda r, role_alias_name, role_arn, credential_duration_seconds=3600: (
            {
                "roleAlias": role_alias_name,
                "roleArn": role_arn,
                "credentialDurationSeconds": credential_duration_seconds,
            },
            _alias(r),
        ),
        before=_before_create,
    ),
    "update_role_alias": _publishing(
        "update_role_alias",
        "UpdateRoleAlias",
        lambda r, role_alias_name, role_arn=None, credential_duration_seconds=None: (
            {
                "roleAlias": role_alias_name,
                **_given(roleArn=role_arn, credentialDurationSeconds=credential_duration_seconds),
            },
            _alias(r),
        ),
        before=_before_update,
    ),
    "delete_role_alias": _publishing(
        "delete_role_alias",
        "DeleteRoleAlias",
        lambda r, role_alias_name: ({"roleAlias": role_alias_name}, None),
    ),
}
RESPONSE_PATCHES: dict[str, Callable[..., Any]] = {"list_role_aliases": _response_list_role_aliases}
