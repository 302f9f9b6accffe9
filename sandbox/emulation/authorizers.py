"""Custom authorizers and the default authorizer (moto 5.2: not implemented; ``MOTO_GAPS``).

Sources: AWS IoT API Reference and botocore's iot service model (CreateAuthorizer,
DescribeAuthorizer, ListAuthorizers, UpdateAuthorizer, DeleteAuthorizer, SetDefaultAuthorizer,
DescribeDefaultAuthorizer, ClearDefaultAuthorizer, AuthorizerDescription, AuthorizerSummary);
AWS IoT Developer Guide, "Creating and managing custom authorizers" (config-custom-auth.html) and
the custom authentication tutorial (custom-auth-tutorial.html). Refusals: ``REFUSALS``.

- Signing is on unless ``signingDisabled``; with it on, ``tokenKeyName`` and
  ``tokenSigningPublicKeys`` are required. ``signingDisabled`` cannot change after creation
  (UpdateAuthorizer has no such field: "You can't update an authorizer's signing requirement").
- An ACTIVE authorizer cannot be deleted. The ARN names ``authorizer/`` (IAM's resource type).
- ListAuthorizers pages with ``marker``/``pageSize``, alphabetically, filtered by ``status``.
- [assumption] ``status`` is ACTIVE unless given (hashicorp/terraform-provider-aws defaults it
  so); ``enableCachingForHttp`` false unless given; DescribeDefaultAuthorizer without a default
  answers ResourceNotFoundException; ClearDefaultAuthorizer without one succeeds; deleting the
  default authorizer clears the default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass
class Authorizer:
    name: str
    arn: str
    function_arn: str
    token_key_name: str | None
    public_keys: dict[str, str]
    status: str
    signing_disabled: bool
    caching_for_http: bool
    created: datetime
    modified: datetime

    def description(self) -> JsonDict:
        """AuthorizerDescription."""
        described: JsonDict = {
            "authorizerName": self.name,
            "authorizerArn": self.arn,
            "authorizerFunctionArn": self.function_arn,
            "tokenSigningPublicKeys": dict(self.public_keys),
            "status": self.status,
            "creationDate": self.created,
            "lastModifiedDate": self.modified,
            "signingDisabled": self.signing_disabled,
            "enableCachingForHttp": self.caching_for_http,
        }
        if self.token_key_name:
            described["tokenKeyName"] = self.token_key_name
        return described

    def summary(self) -> JsonDict:
        """AuthorizerSummary; also SetDefaultAuthorizer's and Create/UpdateAuthorizer's answer."""
        return {"authorizerName": self.name, "authorizerArn": self.arn}


def authorizers(backend: IoTBackend) -> dict[str, Authorizer]:
    """The region's authorizers by name (kept on moto's backend: a reset forgets them)."""
    found: dict[str, Authorizer] = backend.__dict__.setdefault("crr_authorizers", {})
    return found


def authorizer(backend: IoTBackend, name: str) -> Authorizer:
    found = authorizers(backend).get(name)
    if found is None:
        raise ResourceNotFoundException(f"The authorizer {name} does not exist")
    return found


def _default(backend: IoTBackend) -> str | None:
    name: str | None = backend.__dict__.get("crr_default_authorizer")
    return name


def _now() -> datetime:
    return datetime.now(UTC)


# ---- backend calls -----------------------------------------------------------------------------


def _create_authorizer(
    self: IoTBackend,
    *,
    authorizer_name: str,
    authorizer_function_arn: str,
    token_key_name: str | None = None,
    token_signing_public_keys: dict[str, str] | None = None,
    status: str | None = None,
    signing_disabled: bool | None = None,
    enable_caching_for_http: bool | None = None,
    tags: Any = None,
) -> Authorizer:
    if authorizer_name in authorizers(self):
        raise refuse("create_authorizer_twice", name=authorizer_name)
    if not signing_disabled and not (token_key_name and token_signing_public_keys):
        raise refuse("authorizer_signing_without_keys")
    now = _now()
    created = Authorizer(
        name=authorizer_name,
        arn=f"arn:aws:iot:{self.region_name}:{self.account_id}:authorizer/{authorizer_name}",
        function_arn=authorizer_function_arn,
        token_key_name=token_key_name,
        public_keys=dict(token_signing_public_keys or {}),
        status=status or "ACTIVE",
        signing_disabled=bool(signing_disabled),
        caching_for_http=bool(enable_caching_for_http),
        created=now,
        modified=now,
    )
    authorizers(self)[authorizer_name] = created
    request = {
        "authorizerName": authorizer_name,
        "authorizerFunctionArn": authorizer_function_arn,
        "tokenKeyName": token_key_name,
        "tokenSigningPublicKeys": token_signing_public_keys,
        "status": status,
        "signingDisabled": signing_disabled,
        "enableCachingForHttp": enable_caching_for_http,
    }
    publish_call(self, "CreateAuthorizer", present(request), created.summary())
    return created


def _update_authorizer(
    self: IoTBackend,
    *,
    authorizer_name: str,
    authorizer_function_arn: str | None = None,
    token_key_name: str | None = None,
    token_signing_public_keys: dict[str, str] | None = None,
    status: str | None = None,
    enable_caching_for_http: bool | None = None,
) -> Authorizer:
    found = authorizer(self, authorizer_name)
    if authorizer_function_arn:
        found.function_arn = authorizer_function_arn
    if token_key_name:
        found.token_key_name = token_key_name
    if token_signing_public_keys is not None:
        found.public_keys = dict(token_signing_public_keys)
    if status:
        found.status = status
    if enable_caching_for_http is not None:
        found.caching_for_http = enable_caching_for_http
    found.modified = _now()
    request = {
        "authorizerName": authorizer_name,
        "authorizerFunctionArn": authorizer_function_arn,
        "tokenKeyName": token_key_name,
        "tokenSigningPublicKeys": token_signing_public_keys,
        "status": status,
        "enableCachingForHttp": enable_caching_for_http,
    }
    publish_call(self, "UpdateAuthorizer", present(request), found.summary())
    return found


def _delete_authorizer(self: IoTBackend, authorizer_name: str) -> None:
    found = authorizer(self, authorizer_name)
    if found.status == "ACTIVE":
        raise refuse("delete_active_authorizer", name=authorizer_name)
    del authorizers(self)[authorizer_name]
    if _default(self) == authorizer_name:
        self.__dict__.pop("crr_default_authorizer")
    publish_call(self, "DeleteAuthorizer", {"authorizerName": authorizer_name}, None)


def _set_default_authorizer(self: IoTBackend, authorizer_name: str) -> Authorizer:
    found = authorizer(self, authorizer_name)
    self.__dict__["crr_default_authorizer"] = authorizer_name
    publish_call(self, "SetDefaultAuthorizer", {"authorizerName": authorizer_name}, found.summary())
    return found


def _clear_default_authorizer(self: IoTBackend) -> None:
    self.__dict__.pop("crr_default_authorizer", None)
    publish_call(self, "ClearDefaultAuthorizer", {}, None)


# ---- responses ---------------------------------------------------------------------------------


def _backend(response: IoTResponse) -> Any:
    return response.iot_backend


def _response_create_authorizer(self: IoTResponse) -> ActionResult:
    created = _backend(self).create_authorizer(
        authorizer_name=self._get_param("authorizerName"),
        authorizer_function_arn=self._get_param("authorizerFunctionArn"),
        token_key_name=self._get_param("tokenKeyName"),
        token_signing_public_keys=self._get_param("tokenSigningPublicKeys"),
        status=self._get_param("status"),
        signing_disabled=self._get_param("signingDisabled"),
        enable_caching_for_http=self._get_param("enableCachingForHttp"),
        tags=self._get_param("tags"),
    )
    return ActionResult(created.summary())


def _response_describe_authorizer(self: IoTResponse) -> ActionResult:
    found = authorizer(self.iot_backend, self._get_param("authorizerName"))
    return ActionResult({"authorizerDescription": found.description()})


def _response_list_authorizers(self: IoTResponse) -> ActionResult:
    status = self._get_param("status")
    listed = sorted(
        (a for a in authorizers(self.iot_backend).values() if not status or a.status == status),
        key=lambda a: a.name,
        reverse=not self._get_param("ascendingOrder"),
    )
    items, marker = page(listed, self._get_param("pageSize"), self._get_param("marker"))
    result: JsonDict = {"authorizers": [a.summary() for a in items]}
    return ActionResult({**result, "nextMarker": marker} if marker else result)


def _response_update_authorizer(self: IoTResponse) -> ActionResult:
    found = _backend(self).update_authorizer(
        authorizer_name=self._get_param("authorizerName"),
        authorizer_function_arn=self._get_param("authorizerFunctionArn"),
        token_key_name=self._get_param("tokenKeyName"),
        token_signing_public_keys=self._get_param("tokenSigningPublicKeys"),
        status=self._get_param("status"),
        enable_caching_for_http=self._get_param("enableCachingForHttp"),
    )
    return ActionResult(found.summary())


def _response_delete_authorizer(self: IoTResponse) -> EmptyResult:
    _backend(self).delete_authorizer(self._get_param("authorizerName"))
    return EmptyResult()


def _response_set_default_authorizer(self: IoTResponse) -> ActionResult:
    found = _backend(self).set_default_authorizer(self._get_param("authorizerName"))
    return ActionResult(found.summary())


def _response_describe_default_authorizer(self: IoTResponse) -> ActionResult:
    name = _default(self.iot_backend)
    if name is None:
        raise ResourceNotFoundException("No default authorizer is set")
    return ActionResult({"authorizerDescription": authorizer(self.iot_backend, name).description()})


def _response_clear_default_authorizer(self: IoTResponse) -> EmptyResult:
    _backend(self).clear_default_authorizer()
    return EmptyResult()


BACKEND_PATCHES: dict[str, Callable[..., Any]] = {
    "create_authorizer": _create_authorizer,
    "update_authorizer": _update_authorizer,
    "delete_authorizer": _delete_authorizer,
    "set_default_authorizer": _set_default_authorizer,
    "clear_default_authorizer": _clear_default_authorizer,
}
RESPONSE_PATCHES: dict[str, Callable[..., Any]] = {
    "create_authorizer": _response_create_authorizer,
    "describe_authorizer": _response_describe_authorizer,
    "list_authorizers": _response_list_authorizers,
    "update_authorizer": _response_update_authorizer,
    "delete_authorizer": _response_delete_authorizer,
    "set_default_authorizer": _response_set_default_authorizer,
    "describe_default_authorizer": _response_describe_default_authorizer,
    "clear_default_authorizer": _response_clear_default_authorizer,
}
