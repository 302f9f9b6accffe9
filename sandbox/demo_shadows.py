"""The demo's device shadows (issue 24, docs/shadows.md), a module of its own for the size of
``sandbox.demo``: step 3d streams a gateway's classic and named shadow to the destination;
step 4 hand-edits the destination's copy, which the next nightly run finds and repairs (its
snapshots list the shadows of the gateways: ``LIST_SHADOWS`` with ``SHADOW_INCLUDE``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pipeline.kinds.shadow import CLASSIC
from pipeline.kinds.shadow_selection import ShadowSelection, parse_selection
from sandbox.stack import Sandbox

GATEWAY = "gateway-01"
NAMED = "config"
# The nightly runs list the shadows of the gateways only: the per-thing shadow calls for the
# whole fleet would dominate the run (docs/shadows.md), and only gateways have shadows here.
SHADOW_INCLUDE = "gateway-*#*"
# What the step writes in the source: the device's reported state and an application's desired
# state, then a change (a new mode; a key removed from the named shadow).
WRITES: tuple[tuple[str | None, dict[str, Any]], ...] = (
    (None, {"desired": {"mode": "eco", "interval": 60}, "reported": {"mode": "eco", "fw": "1.4"}}),
    (NAMED, {"desired": {"uplink": "lte", "sample_hz": 10}}),
    (None, {"desired": {"mode": "boost"}}),
    (NAMED, {"desired": {"sample_hz": None}}),
)


def nightly_shadows() -> ShadowSelection:
    """The nightly runs' shadow selection (the job's ``SHADOW_INCLUDE``)."""
    return parse_selection(include=SHADOW_INCLUDE)


def sections(box: Sandbox, region: str) -> dict[str, dict[str, Any]]:
    """The gateway's shadows in ``region``: name (``~classic``) -> desired and reported."""
    data = box.client("iot-data", region)
    found: dict[str, dict[str, Any]] = {}
    for shadow in (None, NAMED):
        named = {} if shadow is None else {"shadowName": shadow}
        try:
            payload = data.get_thing_shadow(thingName=GATEWAY, **named)["payload"].read()
        except data.exceptions.ResourceNotFoundException:
            continue
        state = json.loads(payload).get("state") or {}
        found[shadow or CLASSIC] = {key: state.get(key, {}) for key in ("desired", "reported")}
    return found


def _update(box: Sandbox, region: str, shadow: str | None, state: dict[str, Any]) -> None:
    named = {} if shadow is None else {"shadowName": shadow}
    payload = json.dumps({"state": state}).encode()
    box.client("iot-data", region).update_thing_shadow(thingName=GATEWAY, payload=payload, **named)


def device_shadows(box: Sandbox, *, echo: Callable[[str], None]) -> bool:
    """Step 3d: a gateway's classic and named shadow written and changed in the source, through
    the streaming path (update/documents messages, emulated -> the IoT rules -> persist ->
    replicator's UpdateThingShadow). True when the destination shows the source's desired and
    reported state."""
    box.iot(box.source_region).create_thing(thingName=GATEWAY, thingTypeName="Gateway")
    box.drain(timeout=120)
    for shadow, state in WRITES:
        _update(box, box.source_region, shadow, state)
    box.drain(timeout=120)  # until the pipeline is idle: the condition, not a sleep
    source, destination = sections(box, box.source_region), sections(box, box.destination_region)
    same = source == destination and set(destination) == {CLASSIC, NAMED}
    classic, named = destination.get(CLASSIC, {}), destination.get(NAMED, {})
    echo(
        f"3d. device shadows streamed: {GATEWAY}'s classic and {NAMED} shadows written and "
        f"changed in the source → in the destination {'the same' if same else 'NOT the same'}: "
        f"classic desired {_compact(classic.get('desired'))} reported "
        f"{_compact(classic.get('reported'))}, {NAMED} desired {_compact(named.get('desired'))}"
    )
    return same


def hand_edit(box: Sandbox) -> None:
    """Step 4's shadow drift: someone sets the gateway's desired mode by hand in the destination
    (its message there is discarded with the other hand edits' events: nothing replicates the
    destination's changes in a one-way deployment)."""
    _update(box, box.destination_region, None, {"desired": {"mode": "manual"}})


def _compact(value: Any) -> str:
    return json.dumps(value or {}, sort_keys=True, separators=(",", ":"))
