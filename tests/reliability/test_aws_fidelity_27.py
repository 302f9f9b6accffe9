"""Issue 27 (items 4, 5, 6, 7, 8, 9): the pipeline behaves as AWS does where the emulation or the
parsers were more lenient (or stricter) than AWS. Each test names the AWS behaviour and its source
(``REFUSALS``, the kinds' docstrings), and fails on the code before issue 27 (see its comment)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline import rules
from pipeline.cloudtrail import SkipCode, Skipped, parse_cloudtrail_event
from pipeline.errors import EventValidationError, RegistryValidationError
from pipeline.kinds import policy, thing, thing_group
from pipeline.model import EntityKind, entity_key
from pipeline.policyrewrite import ArnMapping
from pipeline.state import Outcome
from sandbox import emulation
from sandbox.emulation.controlplane import cloudtrail_event
from sandbox.emulation.refusals import REFUSALS
from sandbox.inprocess import SRC, LocalPipeline
from tests.conftest import RegistryView

JsonDict = dict[str, Any]
QUERY = "attributes.a:1"


def _sync(pipeline: LocalPipeline, world: emulation.RegistryEmulation) -> None:
    for event in world.outbox(SRC).take():
        pipeline.persist_event(event)
    stats = pipeline.drain()
    assert stats.failed_batches == []
    assert pipeline.failures.sent == []


def _refused(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as error:
        call(**params)
    return str(error.value.response["Error"]["Code"])


def _indexing_on(pipeline: LocalPipeline) -> None:
    for iot in (pipeline.source, pipeline.destination):  # dynamic groups need fleet indexing
        iot.update_indexing_configuration(
            thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"}
        )


# --- item 4: static and dynamic under one name ------------------------------------------------


@pytest.mark.parametrize(
    "dynamic_first", [False, True], ids=["static-to-dynamic", "dynamic-to-static"]
)
def test_a_group_re_created_as_the_other_kind_is_re_created_in_the_destination(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation, dynamic_first: bool
) -> None:
    # Source: no call converts a static group into a dynamic one or back (UpdateDynamicThingGroup,
    # rebuy-de/aws-nuke#1199). Old code: UpdateDynamicThingGroup on the static group (or
    # UpdateThingGroup on the dynamic one), refused: a permanent failure, the kind never changed.
    _indexing_on(pipeline)
    iot = pipeline.source

    def create(dynamic: bool) -> None:
        if dynamic:
            iot.create_dynamic_thing_group(thingGroupName="g", queryString=QUERY)
        else:
            iot.create_thing_group(thingGroupName="g")

    create(dynamic_first)
    _sync(pipeline, registry_world)
    if dynamic_first:
        iot.delete_dynamic_thing_group(thingGroupName="g")
    else:
        iot.delete_thing_group(thingGroupName="g")
    create(not dynamic_first)
    events = registry_world.outbox(SRC).take()
    # Only the newest state reaches the table (its DELETED is lost): the destination still has
    # the other kind when the replicator converges.
    pipeline.persist_event(events[-1])
    pipeline.drain()
    assert pipeline.failures.sent == []
    described = RegistryView(pipeline.destination).describe_thing_group("g")
    assert described is not None
    assert (described["query"] is None) is dynamic_first


def test_emulated_calls_of_the_other_kind_of_group_are_refused(pipeline: LocalPipeline) -> None:
    _indexing_on(pipeline)
    iot = pipeline.source
    iot.create_thing_group(thingGroupName="static")
    iot.create_dynamic_thing_group(thingGroupName="dynamic", queryString=QUERY)
    for call, params in (
        (iot.update_thing_group, {"thingGroupName": "dynamic", "thingGroupProperties": {}}),
        (iot.delete_thing_group, {"thingGroupName": "dynamic"}),
        (
            iot.update_dynamic_thing_group,
            {"thingGroupName": "static", "thingGroupProperties": {}, "queryString": QUERY},
        ),
        (iot.delete_dynamic_thing_group, {"thingGroupName": "static"}),
    ):
        assert _refused(call, **params) == "InvalidRequestException", call
    view = RegistryView(iot)
    assert view.describe_thing_group("static") is not None
    assert view.describe_thing_group("dynamic") is not None


# --- item 5: one group per hierarchy ----------------------------------------------------------


def _cousins(pipeline: LocalPipeline, world: emulation.RegistryEmulation) -> None:
    iot = pipeline.source
    iot.create_thing_group(thingGroupName="site")
    for floor in ("floor-1", "floor-2"):
        iot.create_thing_group(thingGroupName=floor, parentGroupName="site")
        iot.create_thing_group(thingGroupName=f"{floor}-room", parentGroupName=floor)
    iot.create_thing(thingName="t")
    iot.add_thing_to_thing_group(thingName="t", thingGroupName="floor-1-room")
    _sync(pipeline, world)
    iot.remove_thing_from_thing_group(thingName="t", thingGroupName="floor-1-room")
    iot.add_thing_to_thing_group(thingName="t", thingGroupName="floor-2-room")


def test_emulated_add_to_a_cousin_or_an_ancestor_group_is_refused(pipeline: LocalPipeline) -> None:
    # Source: "you can't add a thing to more than one group in the same hierarchy" (AWS IoT
    # guide, "Static thing groups"). Old emulation: only groups with the same parent.
    iot = pipeline.source
    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(thingGroupName="other-site")
    for floor in ("floor-1", "floor-2"):
        iot.create_thing_group(thingGroupName=floor, parentGroupName="site")
        iot.create_thing_group(thingGroupName=f"{floor}-room", parentGroupName=floor)
    iot.create_thing(thingName="t")
    iot.add_thing_to_thing_group(thingName="t", thingGroupName="floor-1-room")
    for group in ("floor-2-room", "floor-2", "site"):
        code = _refused(iot.add_thing_to_thing_group, thingName="t", thingGroupName=group)
        assert code == REFUSALS["cousin_thing_groups"].code, group
    iot.add_thing_to_thing_group(thingName="t", thingGroupName="other-site")  # another hierarchy
    assert sorted(RegistryView(iot).list_thing_groups_for_thing("t")) == [
        "floor-1-room",
        "other-site",
    ]


def test_move_between_cousin_groups_with_the_add_first_waits(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # Old code: only a sibling (same parent) was looked for; the refused add of a cousin was a
    # permanent failure (failure queue), the thing never moved.
    _cousins(pipeline, registry_world)
    events = registry_world.outbox(SRC).take()
    added = next(e for e in events if e.get("operation") == "ADDED")
    removed = next(e for e in events if e.get("operation") == "REMOVED")
    pipeline.persist_event(added)
    stats = pipeline.deliver()  # only the add has arrived: it waits
    assert stats.batch_item_failures == 1
    assert pipeline.failures.sent == []
    pipeline.persist_event(removed)
    stats = pipeline.drain()
    assert stats.failed_batches == []
    assert pipeline.failures.sent == []
    assert RegistryView(pipeline.destination).list_thing_groups_for_thing("t") == ["floor-2-room"]


def test_move_between_cousins_applies_the_removal_from_the_table_first(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    _cousins(pipeline, registry_world)
    events = registry_world.outbox(SRC).take()
    added = next(e for e in events if e.get("operation") == "ADDED")
    removed = next(e for e in events if e.get("operation") == "REMOVED")
    for event in (added, removed):  # both in the table; the add's record comes first
        pipeline.persist_event(event)
    stats = pipeline.drain()
    assert stats.batch_item_failures == 0
    assert pipeline.failures.sent == []
    assert RegistryView(pipeline.destination).list_thing_groups_for_thing("t") == ["floor-2-room"]


# --- item 6: DELETED without versionNumber --------------------------------------------------


@pytest.mark.parametrize("entity", ["thing", "group"])
def test_deleted_without_version_is_ordered_by_timestamp(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation, entity: str
) -> None:
    # Issue 27, item 6. Old code: the DELETED event was refused (versionNumber required) and
    # went to the failure queue; the entity stayed in the destination.
    iot = pipeline.source
    if entity == "thing":
        iot.create_thing(thingName="x")
        iot.update_thing(thingName="x", attributePayload={"attributes": {"a": "1"}})
    else:
        iot.create_thing_group(thingGroupName="x")
        iot.update_thing_group(
            thingGroupName="x", thingGroupProperties={"thingGroupDescription": "d"}
        )
    events = registry_world.outbox(SRC).take()
    updated_ms = max(int(event["timestamp"]) for event in events)
    for event in events:
        pipeline.persist_event(event)
    pipeline.drain()
    delete = iot.delete_thing if entity == "thing" else iot.delete_thing_group
    delete(**({"thingName": "x"} if entity == "thing" else {"thingGroupName": "x"}))
    (deleted,) = registry_world.outbox(SRC).take()
    deleted.pop("versionNumber", None)
    # A DELETED older than the stored UPDATED (by timestamp) is stale ...
    stale = {**deleted, "eventId": "stale", "timestamp": updated_ms - 1}
    assert pipeline.persist_event(stale).outcome is Outcome.STALE
    # ... a newer one deletes.
    fresh = {**deleted, "timestamp": max(deleted["timestamp"], updated_ms + 1)}
    assert pipeline.persist_event(fresh).outcome is Outcome.APPLIED
    pipeline.drain()
    assert pipeline.failures.sent == []
    view = RegistryView(pipeline.destination)
    gone = view.describe_thing("x") if entity == "thing" else view.describe_thing_group("x")
    assert gone is None


# --- item 7: an untyped thing's attributes, per request ---------------------------------------


def test_replacing_an_untyped_things_attributes_stays_within_three_keys_per_request(
    pipeline: LocalPipeline, registry_world: emulation.RegistryEmulation
) -> None:
    # Source: AWS IoT API Reference, AttributePayload ("up to three key-value pair"), read per
    # request for a thing without a type (REFUSALS: untyped_thing_attribute_payload, an
    # assumption an account probe settles). Old code: one UpdateThing with 6 keys (3 new, 3
    # removed with ""), refused: a permanent failure, the attributes never replicated.
    iot = pipeline.source
    iot.create_thing(thingName="t", attributePayload={"attributes": {"a": "1", "b": "1", "c": "1"}})
    _sync(pipeline, registry_world)
    removed = {"a": "", "b": "", "c": ""}
    iot.update_thing(thingName="t", attributePayload={"attributes": removed, "merge": True})
    iot.update_thing(thingName="t", attributePayload={"attributes": {"d": "2", "e": "2", "f": "2"}})
    _sync(pipeline, registry_world)
    described = RegistryView(pipeline.destination).describe_thing("t")
    assert described is not None
    assert described["attributes"] == {"d": "2", "e": "2", "f": "2"}


def test_attribute_steps_remove_first_within_the_limit_before_the_call() -> None:
    untyped = {"thing_type": None, "attributes": {"a": "1", "b": "1", "c": "1"}}
    assert thing.attribute_steps(untyped, {"d": "2"}, typed=False) == [["a", "b", "c"]]
    assert thing.attribute_steps(untyped, {"a": "2", "d": "2"}, typed=False) == [["b", "c"]]
    assert thing.attribute_steps(untyped, {"a": "1", "b": "2"}, typed=False) == []  # 3 keys
    typed = {"thing_type": "T", "attributes": {f"k{i}": "v" for i in range(5)}}
    # Leaving the type with 5 attributes: the removals go while it still has it (limit 50).
    assert thing.attribute_steps(typed, {"k0": "v"}, typed=False) == [["k1", "k2", "k3", "k4"]]
    calls = thing.KIND.calls("t", {"thing_type": None, "attributes": {"d": "2"}}, untyped)
    assert [len(c.params["attributePayload"]["attributes"]) for c in calls] == [3, 1]


# --- item 9: CloudTrail fields a record may leave out -----------------------------------------

POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}'


def _call(name: str, request: JsonDict, response: JsonDict | None = None) -> Any:
    return parse_cloudtrail_event(
        cloudtrail_event(name, request, response, region=SRC, when=time.time() - 1)
    )


@pytest.mark.parametrize("named_version", [True, False])
def test_a_policy_created_without_its_document_in_the_record_is_looked_up(
    pipeline: LocalPipeline, named_version: bool
) -> None:
    # Old code: EventValidationError (requestParameters.policyDocument), the policy never
    # replicated.
    created = pipeline.source.create_policy(policyName="p", policyDocument=POLICY)
    response = {"policyName": "p"}
    if named_version:
        response["policyVersionId"] = created["policyVersionId"]
    change = _call("CreatePolicy", {"policyName": "p"}, response)
    assert pipeline.persist_change(change).outcome is Outcome.APPLIED
    pipeline.drain()
    assert pipeline.failures.sent == []
    copied = RegistryView(pipeline.destination).get_policy("p")
    assert copied is not None and json.loads(copied["document"]) == json.loads(POLICY)


def test_an_attach_without_its_principal_in_the_record_is_looked_up(
    pipeline: LocalPipeline,
) -> None:
    # Old code: EventValidationError (requestParameters.principal), never replicated.
    iot = pipeline.source
    iot.create_thing(thingName="t")
    first = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName="t", principal=first["certificateArn"])
    change = _call("AttachThingPrincipal", {"thingName": "t"})
    result = pipeline.persist_change(change)
    assert (result.outcome, result.key) == (
        Outcome.APPLIED,
        entity_key(EntityKind.THING_PRINCIPAL, f"t#{first['certificateId']}"),
    )
    # With two certificates, which one this call attached cannot be read: a permanent error
    # that says so (the reconciliation repairs it); a detach without its principal is skipped.
    second = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName="t", principal=second["certificateArn"])
    with pytest.raises(EventValidationError, match="reconciliation"):
        pipeline.persist_change(_call("AttachThingPrincipal", {"thingName": "t"}))
    skipped = _call("DetachThingPrincipal", {"thingName": "t"})
    assert isinstance(skipped, Skipped) and skipped.code is SkipCode.NO_PRINCIPAL


# --- item 13: a policy document too large once its ARNs are rewritten -------------------------


def _document_of_size(size: int, region: str) -> str:
    """A policy document of ``size`` characters (compact JSON) naming ``region`` in ARNs."""
    head = '{"Statement":[{"Action":"iot:Connect","Effect":"Allow","Resource":['
    tail = '"]}]}'
    arn = f'"arn:aws:iot:{region}:123456789012:client/c"'
    arns = [arn] * ((size - len(head) - len(tail) - 2) // (len(arn) + 1))
    body = head + ",".join(arns) + ',"'
    document = body + "x" * (size - len(body) - len(tail)) + tail
    assert len(json.dumps(json.loads(document), separators=(",", ":"))) == size
    return document


def test_a_policy_too_large_after_the_arn_rewrite_is_refused_before_the_call() -> None:
    # Old code: CreatePolicy with 2048+ characters, AWS's refusal a failure-queue entry that
    # named no limit. Now: refused before the call, naming the policy and the limit.
    document = _document_of_size(rules.POLICY_DOCUMENT_MAX, "us-east-1")
    to_longer = ArnMapping(regions={"us-east-1": "ap-southeast-2"})
    same = ArnMapping(regions={"us-east-1": "eu-west-1"})
    assert policy.policy_calls("p", {"document": document}, None, same)[0].op == "CreatePolicy"
    with pytest.raises(RegistryValidationError, match=r"policy p.*at most 2048"):
        policy.policy_calls("p", {"document": document}, None, to_longer)


def test_emulated_create_policy_refuses_a_document_over_the_limit(pipeline: LocalPipeline) -> None:
    iot = pipeline.source
    limit = rules.POLICY_DOCUMENT_MAX
    iot.create_policy(policyName="fits", policyDocument=_document_of_size(limit, "us-east-1"))
    too_large = _document_of_size(limit + 1, "us-east-1")
    assert _refused(iot.create_policy, policyName="big", policyDocument=too_large) == (
        REFUSALS["policy_document_too_large"].code
    )
    assert _refused(
        iot.create_policy_version, policyName="fits", policyDocument=too_large, setAsDefault=True
    ) == (REFUSALS["policy_document_too_large"].code)


def test_a_kind_change_is_a_delete_and_a_create_of_the_other_kind() -> None:
    group = thing_group.KIND
    static: JsonDict = {"parent": None, "description": None, "attributes": {}, "query": None}
    query = {"query_string": QUERY, "index_name": "AWS_Things", "query_version": "2017-09-30"}
    dynamic = {**static, "query": query}
    ops = [call.op for call in group.calls("g", dynamic, static)]
    assert ops == ["DeleteThingGroup", "CreateDynamicThingGroup"]
    ops = [call.op for call in group.calls("g", static, dynamic)]
    assert ops == ["DeleteDynamicThingGroup", "CreateThingGroup"]
    # A change that does not know the kind (a hierarchy event's stub) keeps the group.
    assert group.calls("g", {"parent": None}, dynamic) == []
