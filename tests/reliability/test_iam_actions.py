"""The templates' roles grant every action the code calls (issue 28, item 1).

The pipeline runs in process with IAM emulated (``sandbox.emulation.iam``): each step acts as
the role that runs it in AWS (persist: PersistFunctionRole; the replicator and its event source
mapping: ReplicatorRole; the pending-deletion task: PendingRole), every call's action is
recorded, and an action the role's statements do not grant is refused with
AccessDeniedException, as AWS would. So the required actions are derived from the calls the
code makes, not from a list kept beside the template."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.kinds import KINDS
from pipeline.kinds.shadow import UPDATE_DOCUMENTS, shadow_key_name, topic_of
from pipeline.model import EntityKind
from sandbox import emulation
from sandbox.emulation.iam import IamEmulation
from sandbox.inprocess import DST, SRC, LocalPipeline, TwoWayPipeline, boto3_client
from tests.infra.infra_templates import all_templates, role_actions
from tests.reliability.conftest import CLOCK, reset_world
from tests.reliability.two_way_world import REGIONS, World

PERSIST, REPLICATOR, PENDING = "PersistFunctionRole", "ReplicatorRole", "PendingRole"
JOB = "JobPolicy"  # the reconcile job's calls (its Lambda's and task's roles attach it)
TYPE_DEPRECATION_WAIT_SECONDS = 301  # AWS: deprecated for 5 minutes before DeleteThingType


def _granted() -> dict[str, frozenset[str]]:
    templates = all_templates()
    return {
        PERSIST: frozenset(role_actions(templates["source"], PERSIST)),
        REPLICATOR: frozenset(role_actions(templates["destination"], REPLICATOR)),
        PENDING: frozenset(role_actions(templates["destination"], PENDING)),
        JOB: frozenset(role_actions(templates["reconcile"], JOB)),
    }


@pytest.fixture
def iam() -> IamEmulation:
    return IamEmulation(_granted())


def _persist_all(
    pipeline: LocalPipeline, events: emulation.RegistryEmulation, iam: IamEmulation
) -> None:
    with iam.acting_as(PERSIST):
        for event in events.outbox(SRC).take():
            pipeline.persist_event(event)


def _replicate(
    pipeline: LocalPipeline, events: emulation.RegistryEmulation, iam: IamEmulation
) -> None:
    _persist_all(pipeline, events, iam)
    with iam.acting_as(REPLICATOR):
        pipeline.drain()


def _delete_type(iot: Any, name: str) -> None:
    iot.deprecate_thing_type(thingTypeName=name)
    CLOCK.advance(TYPE_DEPRECATION_WAIT_SECONDS)
    iot.delete_thing_type(thingTypeName=name)


def test_one_way_calls_are_all_granted(
    registry_world: emulation.RegistryEmulation, iam: IamEmulation
) -> None:
    reset_world(registry_world)
    pipeline = LocalPipeline(client=iam.client_factory(boto3_client), clock=CLOCK)
    source = pipeline.source
    # GIVEN an entity's first and second change (the echo ledger exists from the second on)
    source.create_thing_type(thingTypeName="T")
    source.create_thing(thingName="t1", thingTypeName="T", attributePayload={"attributes": {}})
    _replicate(pipeline, registry_world, iam)
    source.update_thing(thingName="t1", attributePayload={"attributes": {"a": "1"}})
    _replicate(pipeline, registry_world, iam)
    # ... a type deleted and created again before its deletion is due (the replicator
    # restores it and scans for the things that want it) ...
    source.create_thing_type(thingTypeName="U")
    _replicate(pipeline, registry_world, iam)
    _delete_type(source, "U")
    _replicate(pipeline, registry_world, iam)
    source.create_thing_type(thingTypeName="U")
    _replicate(pipeline, registry_world, iam)
    # ... and one the pending task deletes
    source.create_thing_type(thingTypeName="V")
    _replicate(pipeline, registry_world, iam)
    _delete_type(source, "V")
    _replicate(pipeline, registry_world, iam)
    with iam.acting_as(PENDING):
        finished = pipeline.finish_type_deletions()
    # THEN nothing was refused, and each role called only what it is granted
    assert dict(iam.denied) == {}
    assert finished["deleted"] == ["V"]
    assert set(iam.called) == {PERSIST, REPLICATOR, PENDING}
    for role, called in iam.called.items():
        assert called <= iam.granted[role], (role, sorted(called - iam.granted[role]))
    # ... and the calls the issue found missing were made
    assert {"dynamodb:UpdateItem", "dynamodb:Scan"} <= iam.called[REPLICATOR]
    assert "dynamodb:UpdateItem" in iam.called[PENDING]
    assert pipeline.destination.describe_thing(thingName="t1")["attributes"] == {"a": "1"}


def _settle(world: World, iam: IamEmulation) -> None:
    for _ in range(12):
        moved = sum(len(events) for events in world.inbox.values())
        with iam.acting_as(PERSIST):
            for region in REGIONS:
                world.deliver(region)
        moved += world.pipeline.replicate()  # the Global Table: no role of ours
        with iam.acting_as(REPLICATOR):
            moved += sum(world.drain(region) for region in REGIONS)
        if not moved:
            return
    raise AssertionError("still replicating")


def test_two_way_calls_are_all_granted(
    registry_world: emulation.RegistryEmulation,
    iam: IamEmulation,
) -> None:
    reset_world(registry_world)
    pipeline = TwoWayPipeline(
        client=iam.client_factory(boto3_client),
        wall_clock=lambda: registry_world.now_ms() / 1000,
    )
    world = World(pipeline, registry_world)
    # GIVEN changes in both regions (each replicated change comes back to its persist as an
    # echo, which sets the echo mark: an UpdateItem)
    world.change(SRC, ("create", "t0", {"v": "0"}))
    _settle(world, iam)
    world.change(DST, ("update", "t0", {"v": "1"}))
    _settle(world, iam)
    # THEN nothing was refused
    assert dict(iam.denied) == {}
    assert "dynamodb:UpdateItem" in iam.called[PERSIST]
    for role, called in iam.called.items():
        assert called <= iam.granted[role], (role, sorted(called - iam.granted[role]))


def test_the_emulation_refuses_what_a_role_does_not_grant(
    registry_world: emulation.RegistryEmulation,
) -> None:
    # GIVEN a replicator role without dynamodb:UpdateItem (the templates' before issue 28)
    granted = _granted()
    iam = IamEmulation({**granted, REPLICATOR: granted[REPLICATOR] - {"dynamodb:UpdateItem"}})
    reset_world(registry_world)
    pipeline = LocalPipeline(client=iam.client_factory(boto3_client), clock=CLOCK)
    pipeline.source.create_thing(thingName="t1")
    _replicate(pipeline, registry_world, iam)
    # WHEN the thing changes a second time
    pipeline.source.update_thing(thingName="t1", attributePayload={"attributes": {"a": "1"}})
    _replicate(pipeline, registry_world, iam)
    # THEN the call is refused and the change does not reach the destination
    assert iam.denied == {REPLICATOR: {"dynamodb:UpdateItem"}}
    assert not pipeline.destination.describe_thing(thingName="t1").get("attributes")


def test_a_retained_publish_needs_publish_and_retain_publish(
    registry_world: emulation.RegistryEmulation,
) -> None:
    # GIVEN a role granting iot:Publish only, and the replicator's role from the template
    iam = IamEmulation({"PublishOnly": frozenset({"iot:Publish"}), **_granted()})
    data = iam.client_factory(boto3_client)("iot-data", DST)
    # WHEN each publishes a retained message (the retained-message kind's repair)
    with iam.acting_as("PublishOnly"), pytest.raises(ClientError):
        data.publish(topic="config/d", payload=b"x", retain=True)
    with iam.acting_as(REPLICATOR):
        data.publish(topic="config/d", payload=b"x", retain=True)
    # THEN iot:RetainPublish is required besides iot:Publish (iot-data's calls are iot: actions),
    # and the replicator's role grants both
    assert iam.denied == {"PublishOnly": {"iot:RetainPublish"}}
    assert {"iot:Publish", "iot:RetainPublish"} <= iam.called[REPLICATOR]


def _shadow_written(pipeline: LocalPipeline, thing: str) -> dict[str, Any]:
    """A classic shadow written in the source: the thing in both regions (set-up, no role), and
    the ``update/documents`` message the IoT rule hands persist (tests/pipeline's shape)."""
    for iot in (pipeline.source, pipeline.destination):
        iot.create_thing(thingName=thing)
    state = {"desired": {"color": "red"}}
    pipeline.source_registry.call(
        "UpdateThingShadow", thingName=thing, payload=json.dumps({"state": state}).encode()
    )
    return {
        "previous": {"state": {}, "metadata": {}, "version": 0},
        "current": {"state": state, "metadata": {}, "version": 1},
        "timestamp": 1_700_000_000,
        "topic": topic_of(thing, None, UPDATE_DOCUMENTS),
    }


def _destination_shadow(pipeline: LocalPipeline, thing: str) -> Any:
    return KINDS[EntityKind.SHADOW].read(pipeline.registry, shadow_key_name(thing, None))


def test_shadow_calls_are_checked_against_the_role(
    registry_world: emulation.RegistryEmulation,
) -> None:
    # GIVEN a replicator role without iot:UpdateThingShadow, its other grants the template's
    granted = _granted()
    iam = IamEmulation({**granted, REPLICATOR: granted[REPLICATOR] - {"iot:UpdateThingShadow"}})
    reset_world(registry_world)
    pipeline = LocalPipeline(client=iam.client_factory(boto3_client), clock=CLOCK)
    event = _shadow_written(pipeline, "t1")
    # WHEN the shadow's change is persisted and replicated (iot-data, from the same factory)
    with iam.acting_as(PERSIST):
        pipeline.persist_event(event)
    with iam.acting_as(REPLICATOR):
        pipeline.drain()
    # THEN the Device Shadow call is refused, and the destination has no shadow
    assert iam.denied == {REPLICATOR: {"iot:UpdateThingShadow"}}
    assert _destination_shadow(pipeline, "t1") is None


def test_shadow_replication_and_listing_are_granted(
    registry_world: emulation.RegistryEmulation, iam: IamEmulation
) -> None:
    reset_world(registry_world)
    opt_in = [EntityKind.SHADOW, EntityKind.RETAINED_MESSAGE]
    pipeline = LocalPipeline(client=iam.client_factory(boto3_client), clock=CLOCK, opt_in=opt_in)
    event = _shadow_written(pipeline, "t1")
    boto3_client("iot-data", SRC).publish(topic="config/t1", payload=b"x", retain=True)
    # WHEN the replicator writes the shadow and the job lists both regions' shadows and
    # retained messages
    with iam.acting_as(PERSIST):
        pipeline.persist_event(event)
    with iam.acting_as(REPLICATOR):
        pipeline.drain()
    with iam.acting_as(JOB):
        snapshots = [pipeline.snapshot(region) for region in (SRC, DST)]
    # THEN nothing was refused, and the Device Shadow calls were made under the roles
    assert dict(iam.denied) == {}
    assert {"iot:GetThingShadow", "iot:UpdateThingShadow"} <= iam.called[REPLICATOR]
    assert {
        "iot:ListNamedShadowsForThing",
        "iot:GetThingShadow",
        "iot:ListRetainedMessages",
        "iot:GetRetainedMessage",
    } <= iam.called[JOB]
    shadows = KINDS[EntityKind.SHADOW].spec.frame
    assert [snapshot.counts()[shadows] for snapshot in snapshots] == [1, 1]
    assert _destination_shadow(pipeline, "t1") is not None


def test_a_job_without_shadow_reads_is_refused_on_the_listing(
    registry_world: emulation.RegistryEmulation,
) -> None:
    # GIVEN the job's policy without iot:GetThingShadow
    granted = _granted()
    iam = IamEmulation({**granted, JOB: granted[JOB] - {"iot:GetThingShadow"}})
    reset_world(registry_world)
    pipeline = LocalPipeline(
        client=iam.client_factory(boto3_client), clock=CLOCK, opt_in=[EntityKind.SHADOW]
    )
    _shadow_written(pipeline, "t1")
    # WHEN the job lists the source's shadows, THEN the read is refused as the data plane
    # refuses it
    with iam.acting_as(JOB), pytest.raises(Exception) as raised:
        pipeline.snapshot(SRC)
    assert iam.denied == {JOB: {"iot:GetThingShadow"}}
    assert "ForbiddenException" in str(raised.value)
