"""A thing principal's type, as AWS keeps it (moto 5.2 ignores ``thingPrincipalType`` on
AttachThingPrincipal and leaves it out of the V2 listings; ``MOTO_GAPS``).

Sources: AWS IoT API Reference and botocore's iot model: AttachThingPrincipal takes
``thingPrincipalType`` (query string) EXCLUSIVE_THING or NON_EXCLUSIVE_THING, "Multiple things
can be attached to the principal" being the latter; ListThingPrincipalsV2 answers
``thingPrincipalObjects`` (``principal``, ``thingPrincipalType``), ListPrincipalThingsV2
``principalThingObjects`` (``thingName``, ``thingPrincipalType``).

- The V2 listings filter by ``thingPrincipalType`` where asked (the same model).
- Each attach records its type (NON_EXCLUSIVE_THING unless asked); a re-attach records the new
  one. The CloudTrail event's request carries the type where the call gave it.
- [assumption] a V2 listing reports NON_EXCLUSIVE_THING for an attachment made without a type
  (the API Reference names it the default nowhere else: botocore's model and the CLI reference
  describe the two values only).
- [not emulated] what AWS answers when EXCLUSIVE_THING would attach a principal that other
  things hold (not documented).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from moto.iot.models import IoTBackend
from moto.iot.responses import IoTResponse

from sandbox.emulation.patches import _PATCHES

DEFAULT_TYPE = "NON_EXCLUSIVE_THING"
_requested = threading.local()  # the type of the AttachThingPrincipal being served


def requested_type() -> str | None:
    """The ``thingPrincipalType`` of the AttachThingPrincipal call being served (None: not
    given), for its CloudTrail event."""
    value = getattr(_requested, "type", None)
    return value if isinstance(value, str) else None


def _types(backend: IoTBackend) -> dict[tuple[str, str], str]:
    """``(principal ARN, thing name) -> type``, kept on the region's backend."""
    found: dict[tuple[str, str], str] | None = getattr(backend, "crr_thing_principal_types", None)
    if found is None:
        found = {}
        backend.crr_thing_principal_types = found  # type: ignore[attr-defined]
    return found


def _type_of(backend: IoTBackend, principal: str, thing: str) -> str:
    return _types(backend).get((principal, thing), DEFAULT_TYPE)


def _response_attach_thing_principal(self: IoTResponse) -> Any:
    given = self._get_param("thingPrincipalType")
    _requested.type = given
    try:
        result = _PATCHES.original(IoTResponse, "attach_thing_principal")(self)
    finally:
        _requested.type = None
    key = (str(self._get_param("principal")), str(self._get_param("thingName")))
    _types(self.iot_backend)[key] = given or DEFAULT_TYPE
    return result


def _response_list_thing_principals_v2(self: IoTResponse) -> Any:
    thing = str(self._get_param("thingName"))
    wanted = self._get_param("thingPrincipalType")
    objects = [
        {"principal": principal, "thingPrincipalType": kind}
        for principal in self.iot_backend.list_thing_principals_v2(thing_name=thing)
        if wanted in (None, kind := _type_of(self.iot_backend, principal, thing))
    ]
    return json.dumps({"thingPrincipalObjects": objects})


def _response_list_principal_things_v2(self: IoTResponse) -> Any:
    principal = str(self._get_param("principal"))
    wanted = self._get_param("thingPrincipalType")
    objects = [
        {"thingName": thing, "thingPrincipalType": kind}
        for thing in self.iot_backend.list_principal_things_v2(principal_arn=principal)
        if wanted in (None, kind := _type_of(self.iot_backend, principal, thing))
    ]
    return json.dumps({"principalThingObjects": objects})


RESPONSE_PATCHES: dict[str, Callable[..., Any]] = {
    "attach_thing_principal": _response_attach_thing_principal,
    "list_thing_principals_v2": _response_list_thing_principals_v2,
    "list_principal_things_v2": _response_list_principal_things_v2,
}
