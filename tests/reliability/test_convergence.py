"""R1 convergence: whatever the source registry does, and however its events arrive, the
destination ends equal to the source after the stream drains and one reconciliation.

Hypothesis draws a sequence of registry operations on things, types, groups (with hierarchy),
memberships and billing groups, applied to the source region through boto3 (moto, with the
sandbox's registry-event emulation publishing the events AWS would). The events are then
delivered with drops, duplicates and any reordering, persisted, and the stream is drained
through the replicator. One reconciliation (deletes allowed) follows, its corrective events
drain too, and the audit must then report the two registries in sync.

Operations AWS refuses (a membership for a missing thing, deleting a type still in use) raise
in the source and publish nothing, exactly as in AWS, so they are generated freely.

``RELIABILITY_EXAMPLES`` sets the example count (default 200); ``RELIABILITY_SLOW=1`` raises
it to 2000.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import CrrError
from reconcile.guards import PlanRefusedError
from sandbox.inprocess import LocalPipeline, persist_all
from tests.reliability.conftest import MAX_EXAMPLES

THINGS = ("t0", "t1", "t2")
TYPES = ("ty0", "ty1")
GROUPS = ("g0", "g1", "g2")  # a group's parent is always an earlier one: no cycles
BILLING = ("b0", "b1")

Op = tuple[Any, ...]

attributes = st.dictionaries(
    st.sampled_from(("k0", "k1", "k2")), st.sampled_from(("v0", "v1", "")), max_size=3
)
thing = st.sampled_from(THINGS)
thing_type = st.sampled_from(TYPES)
group = st.sampled_from(GROUPS)
billing = st.sampled_from(BILLING)
maybe_type = st.none() | thing_type
description = st.none() | st.sampled_from(("d0", "d1"))

operations = st.one_of(
    st.tuples(st.just("create_thing"), thing, maybe_type, attributes, st.none() | billing),
    st.tuples(st.just("update_thing"), thing, attributes),
    st.tuples(st.just("retype_thing"), thing, maybe_type),
    st.tuples(st.just("delete_thing"), thing),
    st.tuples(st.just("create_type"), thing_type, description),
    st.tuples(st.just("deprecate_type"), thing_type, st.booleans()),
    st.tuples(st.just("delete_type"), thing_type),
    st.tuples(st.just("create_group"), group, description, attributes),
    st.tuples(st.just("update_group"), group, description, attributes),
    st.tuples(st.just("delete_group"), group),
    st.tuples(st.just("add_member"), thing, group),
    st.tuples(st.just("remove_member"), thing, group),
    st.tuples(st.just("create_billing"), billing, description),
    st.tuples(st.just("join_billing"), thing, billing),
    st.tuples(st.just("delete_billing"), billing),
)


def apply_operation(iot: Any, op: Op) -> None:
    """Carry one operation out on the source registry; AWS's refusals are part of the game."""
    name, *args = op
    # Refused by the registry: nothing changed, no event published.
    with contextlib.suppress(ClientError):
        _OPERATIONS[name](iot, *args)


def _create_thing(
    iot: Any, name: str, type_: str | None, attrs: dict[str, str], bg: str | None
) -> None:
    kwargs: dict[str, Any] = {"thingName": name}
    if type_:
        kwargs["thingTypeName"] = type_
    values = {k: v for k, v in attrs.items() if v}
    if values:
        kwargs["attributePayload"] = {"attributes": values}
    if bg:
        kwargs["billingGroupName"] = bg
    iot.create_thing(**kwargs)


def _update_thing(iot: Any, name: str, attrs: dict[str, str]) -> None:
    # merge=True with "" removing a key: the documented way to change some attributes.
    iot.update_thing(thingName=name, attributePayload={"attributes": attrs, "merge": True})


def _retype_thing(iot: Any, name: str, type_: str | None) -> None:
    if type_:
        iot.update_thing(thingName=name, thingTypeName=type_)
    else:
        iot.update_thing(thingName=name, removeThingType=True)


def _create_group(iot: Any, name: str, desc: str | None, attrs: dict[str, str]) -> None:
    properties: dict[str, Any] = {
        "attributePayload": {"attributes": {k: v for k, v in attrs.items() if v}}
    }
    if desc:
        properties["thingGroupDescription"] = desc
    kwargs: dict[str, Any] = {"thingGroupName": name, "thingGroupProperties": properties}
    index = GROUPS.index(name)
    if index:
        parent = GROUPS[index - 1]
        existing = {g["groupName"] for g in iot.list_thing_groups()["thingGroups"]}
        if parent in existing:
            kwargs["parentGroupName"] = parent
    iot.create_thing_group(**kwargs)


def _update_group(iot: Any, name: str, desc: str | None, attrs: dict[str, str]) -> None:
    iot.update_thing_group(
        thingGroupName=name,
        thingGroupProperties={
            "thingGroupDescription": desc or "",
            "attributePayload": {"attributes": attrs, "merge": False},
        },
    )


def _delete_group(iot: Any, name: str) -> None:
    iot.delete_thing_group(thingGroupName=name)


def _create_billing(iot: Any, name: str, desc: str | None) -> None:
    properties = {"billingGroupDescription": desc} if desc else {}
    iot.create_billing_group(billingGroupName=name, billingGroupProperties=properties)


def _join_billing(iot: Any, thing_name: str, bg: str) -> None:
    iot.add_thing_to_billing_group(billingGroupName=bg, thingName=thing_name)


_OPERATIONS: dict[str, Callable[..., None]] = {
    "create_thing": _create_thing,
    "update_thing": _update_thing,
    "retype_thing": _retype_thing,
    "delete_thing": lambda iot, name: iot.delete_thing(thingName=name),
    "create_type": lambda iot, name, desc: iot.create_thing_type(
        thingTypeName=name,
        thingTypeProperties={"thingTypeDescription": desc} if desc else {},
    ),
    "deprecate_type": lambda iot, name, undo: iot.deprecate_thing_type(
        thingTypeName=name, undoDeprecate=undo
    ),
    "delete_type": lambda iot, name: iot.delete_thing_type(thingTypeName=name),
    "create_group": _create_group,
    "update_group": _update_group,
    "delete_group": _delete_group,
    "add_member": lambda iot, t, g: iot.add_thing_to_thing_group(thingGroupName=g, thingName=t),
    "remove_member": lambda iot, t, g: iot.remove_thing_from_thing_group(
        thingGroupName=g, thingName=t
    ),
    "create_billing": _create_billing,
    "join_billing": _join_billing,
    "delete_billing": lambda iot, name: iot.delete_billing_group(billingGroupName=name),
}

# What each delivered event becomes: once, lost, or twice.
FATES = st.sampled_from(("once", "once", "once", "drop", "twice"))


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operations, min_size=1, max_size=8), data=st.data())
def test_destination_equals_source_after_drain_and_one_reconciliation(
    fresh_pipeline: Callable[[], LocalPipeline], ops: list[Op], data: st.DataObject
) -> None:
    # GIVEN a source registry changed by the drawn operations, publishing registry events
    pipeline = fresh_pipeline()
    from sandbox import emulation

    world = emulation.active()
    assert world is not None
    for op in ops:
        apply_operation(pipeline.source, op)
    published = world.outbox(pipeline.source_region).take()

    # WHEN the events arrive dropped, duplicated and in any order, and the stream drains
    delivered: list[dict[str, Any]] = []
    for event in published:
        fate = data.draw(FATES, label="fate")
        if fate != "drop":
            delivered.append(event)
        if fate == "twice":
            delivered.append(dict(event))
    order = data.draw(st.permutations(range(len(delivered))), label="order")
    outcomes = persist_all(pipeline, [delivered[i] for i in order])
    refused = [o for o in outcomes if isinstance(o, CrrError)]
    assert not refused, f"valid registry events refused by persist: {refused}"
    pipeline.converge_fully()

    # ... and one reconciliation repairs whatever the stream could not know
    try:
        emitted = pipeline.reconcile()
    except PlanRefusedError as refused:
        # The documented guard: an empty source never empties a populated destination (the
        # usual cause is a wrong region or missing permissions); an operator must act.
        assert refused.guard == "empty_source"
        assert pipeline.snapshot(pipeline.source_region).counts()["things"] == 0
        return
    assert emitted.ok, emitted.failures
    found = pipeline.last_report
    assert found is not None
    if not found.in_sync:
        pipeline.converge_fully()

    # THEN the destination equals the source, and nothing was left failing (when the
    # reconciliation found nothing to repair, its own audit is the final one)
    report = pipeline.audit() if not found.in_sync else found
    assert report.in_sync, [(d.entity.value, d.name, d.kind, d.details) for d in report.drifts]
    assert not pipeline.failures.sent, pipeline.failures.sent
    world.outbox(pipeline.destination_region).take()


def test_the_property_can_fail_when_reconciliation_is_skipped(
    fresh_pipeline: Callable[[], LocalPipeline],
) -> None:
    # GIVEN a billing-group change, which no registry event carries
    pipeline = fresh_pipeline()
    from sandbox import emulation

    world = emulation.active()
    assert world is not None
    apply_operation(pipeline.source, ("create_billing", "b0", None))
    apply_operation(pipeline.source, ("create_thing", "t0", None, {}, "b0"))
    persist_all(pipeline, world.outbox(pipeline.source_region).take())
    pipeline.converge_fully()
    # WHEN only the stream runs, THEN the audit sees the drift the property would catch
    assert not pipeline.audit().in_sync
    # and one reconciliation closes it
    assert pipeline.reconcile().ok
    pipeline.converge_fully()
    assert pipeline.audit().in_sync
