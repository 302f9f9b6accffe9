"""What the emulation claims: the events it publishes and its answers to the refusal probes.

``emulated_events`` runs one registry call of every kind on the sandbox and returns the events
its emulation published (as the pipeline's rule sees them); ``emulated_refusals`` runs every
probe of ``conformance.refusals`` there. ``conformance.answers`` compares both with the file.
"""

from __future__ import annotations

from typing import Any

from conformance.refusals import PROBES, Answer, Context
from conformance.run import Run
from sandbox.stack import Sandbox


def emulated_events(sandbox: Sandbox, run: Run) -> list[dict[str, Any]]:
    """Every registry event kind the pipeline consumes, for a root and a child group, a typed
    and an untyped thing, each operation; the source outbox is emptied first and after."""
    region = sandbox.source_region
    iot = sandbox.iot(region)
    name = run.name
    sandbox.outbox(region).take()
    iot.create_thing_type(
        thingTypeName=name("type-a"),
        thingTypeProperties={"thingTypeDescription": "a", "searchableAttributes": ["site"]},
    )
    iot.create_thing_type(thingTypeName=name("type-b"))
    iot.create_thing_group(
        thingGroupName=name("root"),
        thingGroupProperties={
            "thingGroupDescription": "root",
            "attributePayload": {"attributes": {"k": "v"}},
        },
    )
    iot.create_thing_group(thingGroupName=name("child"), parentGroupName=name("root"))
    iot.update_thing_group(
        thingGroupName=name("child"), thingGroupProperties={"thingGroupDescription": "child"}
    )
    iot.create_thing(thingName=name("untyped"), attributePayload={"attributes": {"a": "1"}})
    iot.create_thing(thingName=name("typed"), thingTypeName=name("type-a"))
    iot.update_thing(thingName=name("typed"), thingTypeName=name("type-b"))
    iot.update_thing(thingName=name("typed"), removeThingType=True)
    iot.add_thing_to_thing_group(thingName=name("untyped"), thingGroupName=name("child"))
    iot.remove_thing_from_thing_group(thingName=name("untyped"), thingGroupName=name("child"))
    iot.deprecate_thing_type(thingTypeName=name("type-b"))
    iot.deprecate_thing_type(thingTypeName=name("type-b"), undoDeprecate=True)
    iot.delete_thing(thingName=name("typed"))
    iot.delete_thing_group(thingGroupName=name("child"))
    return sandbox.outbox(region).take()


def emulated_refusals(sandbox: Sandbox, run: Run) -> dict[str, Answer]:
    """Each probe's answer from the emulation, under its own scope of ``run``."""
    region = sandbox.source_region
    offset = [0.0]

    def let_time_pass(seconds: float) -> None:
        offset[0] += seconds
        sandbox.advance_clock(seconds)

    def wait_until(what: str, condition: Any, timeout: float) -> None:
        if not condition():
            raise AssertionError(f"{what}: not true on the sandbox")

    import time

    # An account the suite runs on has thing indexing on (docs/conformance.md): so has this one.
    sandbox.iot(region).update_indexing_configuration(
        thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"}
    )
    answers = {}
    for probe in PROBES:
        ctx = Context(
            scope=run.scope(probe.name.replace("_", "-")[:24]),
            let_time_pass=let_time_pass,
            wait_until=wait_until,
            now=lambda: time.time() + offset[0],
            client=lambda service: sandbox.client(service, region),
        )
        answers[probe.name] = probe.provoke(sandbox.iot(region), ctx)
    sandbox.outbox(region).take()
    return answers
