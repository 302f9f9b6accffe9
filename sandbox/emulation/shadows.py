"""Device shadows as AWS IoT's Device Shadow service keeps and announces them (moto 5.2 serves
iot-data's shadow calls; what it lacks is below and in ``MOTO_GAPS``).

Sources: "Device Shadow MQTT topics", "Device Shadow service documents", "Interacting with
shadows", "Diagnosing problems with shadows" (AWS IoT Developer Guide); AWS IoT API Reference,
UpdateThingShadow, DeleteThingShadow, ListNamedShadowsForThing (``pipeline.kinds.shadow`` cites
the pages).

- Every successful update publishes the ``/update/documents`` message (``previous`` and
  ``current``, each ``state``, ``metadata``, ``version``; ``timestamp`` in epoch seconds;
  ``clientToken`` when the request had one) and every delete the ``/delete/accepted`` message
  (``version``, ``timestamp``) on the shadow's reserved topic, into the region's outbox as the
  rule ``SELECT *, topic() AS topic`` sees them (moto: publishes nothing). ``previous`` is left
  out for a shadow that did not exist: [assumption] the docs show it only for an update.
  [assumption] the version delete/accepted carries is moto's (the deleted shadow's, one above
  the last update's).
- An update whose result holds more than 8 KB of desired and reported state is refused with
  RequestEntityTooLargeException (HTTP 413, botocore's iot-data model; moto: any size).
- DeleteThingShadow of a shadow deleted already is ResourceNotFoundException, as of one that
  never existed (moto: deletes it again, with a new version).
- ListNamedShadowsForThing lists live shadows only (moto: deleted ones too).
- A shadow's ``timestamp`` (its messages' too) is the emulation's clock, as its registry
  events' are: one AWS clock (moto: the wall clock, so a test's fake clock and moto's disagree
  and persist refused shadow messages "from the future").
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from moto.iotdata.exceptions import ResourceNotFoundException
from moto.iotdata.models import FakeShadow, IoTDataPlaneBackend

from pipeline.kinds.shadow import (
    DELETE_ACCEPTED,
    STATE_MAX_BYTES,
    UPDATE_DOCUMENTS,
    state_bytes,
    topic_of,
)
from sandbox.emulation.patches import _PATCHES, JsonDict
from sandbox.emulation.refusals import refuse
from sandbox.emulation.registry import _Installed


def _live(backend: IoTDataPlaneBackend, thing_name: str, shadow_name: str | None) -> Any:
    shadow = backend.iot_backend.describe_thing(thing_name).thing_shadows.get(shadow_name)
    return None if shadow is None or shadow.deleted else shadow


def _snapshot(shadow: Any) -> JsonDict:
    """A shadow's ``state``, ``metadata`` and ``version`` as ``previous``/``current`` hold them."""
    document = shadow.to_dict(include_delta=False)
    return {
        "state": document["state"],
        "metadata": document["metadata"],
        "version": document["version"],
    }


def _stamped(shadow: Any) -> Any:
    """``shadow`` with its timestamp (epoch seconds) on the emulation's clock."""
    emulation = _Installed.emulation
    if emulation is not None:
        shadow.timestamp = int(emulation.now())
    return shadow


def _publish(backend: IoTDataPlaneBackend, topic: str, message: JsonDict) -> None:
    emulation = _Installed.emulation
    if emulation is not None:
        emulation.outbox(backend.region_name).put({**message, "topic": topic})


def _update_thing_shadow(
    self: IoTDataPlaneBackend, thing_name: str, payload: str, shadow_name: str | None
) -> Any:
    previous = _live(self, thing_name, shadow_name)
    try:
        request = json.loads(payload)
    except ValueError:
        request = None  # moto refuses it as AWS does ("invalid json")
    # moto merges into the previous shadow's own dicts: work on copies, and keep ``previous``
    # as it was for the message.
    before = None if previous is None else _snapshot(copy.deepcopy(previous))
    if isinstance(request, dict) and isinstance(request.get("state"), dict):
        result = FakeShadow.create_from_previous_version(copy.deepcopy(previous), request)
        state = {
            key: json.dumps(section or {})
            for key, section in (("desired", result.desired), ("reported", result.reported))
        }
        if state_bytes(state) > STATE_MAX_BYTES:
            raise refuse("shadow_too_large", size=state_bytes(state), limit=STATE_MAX_BYTES)
    original: Callable[..., Any] = _PATCHES.original(IoTDataPlaneBackend, "update_thing_shadow")
    shadow = _stamped(original(self, thing_name, payload, shadow_name))
    message: JsonDict = {"current": _snapshot(shadow), "timestamp": shadow.timestamp}
    if before is not None:
        message["previous"] = before
    if isinstance(request, dict) and request.get("clientToken") is not None:
        message["clientToken"] = request["clientToken"]
    _publish(self, topic_of(thing_name, shadow_name, UPDATE_DOCUMENTS), message)
    return shadow


def _delete_thing_shadow(
    self: IoTDataPlaneBackend, thing_name: str, shadow_name: str | None
) -> Any:
    if _live(self, thing_name, shadow_name) is None:
        raise ResourceNotFoundException()
    original: Callable[..., Any] = _PATCHES.original(IoTDataPlaneBackend, "delete_thing_shadow")
    shadow = _stamped(original(self, thing_name, shadow_name))
    message = {"version": shadow.version, "timestamp": shadow.timestamp}
    _publish(self, topic_of(thing_name, shadow_name, DELETE_ACCEPTED), message)
    return shadow


def _list_named_shadows_for_thing(self: IoTDataPlaneBackend, thing_name: str) -> list[str]:
    shadows = self.iot_backend.describe_thing(thing_name).thing_shadows
    return [name for name, shadow in shadows.items() if name is not None and not shadow.deleted]


DATA_PLANE_PATCHES: dict[str, Callable[..., Any]] = {
    "update_thing_shadow": _update_thing_shadow,
    "delete_thing_shadow": _delete_thing_shadow,
    "list_named_shadows_for_thing": _list_named_shadows_for_thing,
}
