"""The registry's quotas and requirements the emulation claims AWS enforces
(``sandbox.emulation.quotas``; the values in ``pipeline.rules``), provoked with plain boto3.

Each probe makes what it needs under its scope's prefix, one past the limit, and removes what the
run's cleanup would not find (dynamic groups, which it deletes itself; a policy). Three probes
touch the region's fleet indexing (docs/conformance.md): ``dynamic_group_without_index`` and
``search_index_without_index`` each turn thing indexing off for their one call and back on as it
was, then wait until a dynamic group can be created again (AWS rebuilds the index);
``disable_index_with_dynamic_groups`` asks to turn it off while a dynamic group exists and, should
AWS accept, turns it back on the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from conformance.probing import Answer, Context, Probe, answer_of
from pipeline import rules

QUERY = "thingName:crrconf-probe-never-matches"
INDEX_REBUILD_SECONDS = 900.0  # [assumption] a dedicated account's small index rebuilds sooner
# UpdateIndexingConfiguration's settable thing-indexing keys (AWS IoT API Reference,
# ThingIndexingConfiguration); GetIndexingConfiguration also answers managedFields.
_SETTABLE = (
    "thingIndexingMode",
    "thingConnectivityIndexingMode",
    "deviceDefenderIndexingMode",
    "namedShadowIndexingMode",
    "customFields",
    "filter",
)


def thing_groups_per_thing(iot: Any, ctx: Context) -> Answer:
    """A thing in 10 root groups added to an 11th (AWS IoT developer guide, "Static thing
    groups": "You can add a thing to a maximum of 10 groups")."""
    thing = ctx.scope("probe-many-thing")
    iot.create_thing(thingName=thing)
    groups = [ctx.scope(f"probe-many-{i}") for i in range(rules.MAX_GROUPS_PER_THING + 1)]
    for group in groups:
        iot.create_thing_group(thingGroupName=group, tags=ctx.scope.tags)
    for group in groups[:-1]:
        iot.add_thing_to_thing_group(thingName=thing, thingGroupName=group)
    return answer_of(
        lambda: iot.add_thing_to_thing_group(
            thingName=thing, thingGroupName=groups[-1], overrideDynamicGroups=True
        ),
        ctx.scope,
    )


def thing_group_depth(iot: Any, ctx: Context) -> Answer:
    """A group under a chain of 7 (AWS IoT Device Management quotas: hierarchy depth 7)."""
    parent: dict[str, str] = {}
    for level in range(1, rules.MAX_GROUP_DEPTH + 1):
        name = ctx.scope(f"probe-deep-{level}")
        iot.create_thing_group(thingGroupName=name, tags=ctx.scope.tags, **parent)
        parent = {"parentGroupName": name}
    return answer_of(
        lambda: iot.create_thing_group(
            thingGroupName=ctx.scope("probe-deep-too"), tags=ctx.scope.tags, **parent
        ),
        ctx.scope,
    )


def thing_group_children(iot: Any, ctx: Context) -> Answer:
    """A group's 101st direct child (AWS IoT Device Management quotas: 100 direct children)."""
    parent = ctx.scope("probe-wide")
    iot.create_thing_group(thingGroupName=parent, tags=ctx.scope.tags)
    for i in range(rules.MAX_CHILD_GROUPS):
        iot.create_thing_group(
            thingGroupName=ctx.scope(f"probe-wide-{i}"), parentGroupName=parent, tags=ctx.scope.tags
        )
    return answer_of(
        lambda: iot.create_thing_group(
            thingGroupName=ctx.scope("probe-wide-too"), parentGroupName=parent, tags=ctx.scope.tags
        ),
        ctx.scope,
    )


def dynamic_group_in_hierarchy(iot: Any, ctx: Context) -> Answer:
    """A static group under a dynamic one (AWS IoT developer guide, "Dynamic thing groups":
    "Dynamic thing groups can't be part of a hierarchy"). Needs thing indexing on."""
    dynamic = _dynamic_group(iot, ctx, "probe-dyn-parent")
    try:
        return answer_of(
            lambda: iot.create_thing_group(
                thingGroupName=ctx.scope("probe-dyn-child"),
                parentGroupName=dynamic,
                tags=ctx.scope.tags,
            ),
            ctx.scope,
        )
    finally:
        iot.delete_dynamic_thing_group(thingGroupName=dynamic)


def policy_on_dynamic_group(iot: Any, ctx: Context) -> Answer:
    """AttachPolicy to a dynamic group ("Dynamic thing groups": "Attempting to apply a policy to
    a dynamic thing group generates an exception"). Needs thing indexing on."""
    policy = ctx.scope("probe-dyn-policy")
    iot.create_policy(
        policyName=policy,
        policyDocument='{"Version": "2012-10-17", "Statement": []}',
        tags=ctx.scope.tags,
    )
    dynamic = _dynamic_group(iot, ctx, "probe-dyn-target")
    arn = iot.describe_thing_group(thingGroupName=dynamic)["thingGroupArn"]
    answer = answer_of(lambda: iot.attach_policy(policyName=policy, target=arn), ctx.scope)
    if answer.accepted:  # then detach it, and wait until AWS lets the policy go
        iot.detach_policy(policyName=policy, target=arn)
    iot.delete_dynamic_thing_group(thingGroupName=dynamic)
    ctx.wait_until(
        f"{policy} deletable",
        lambda: (
            answer_of(lambda: iot.delete_policy(policyName=policy), ctx.scope).code
            in (None, "ResourceNotFoundException")
        ),
        600.0,
    )
    return answer


def dynamic_group_without_index(iot: Any, ctx: Context) -> Answer:
    """CreateDynamicThingGroup with thing indexing off ("Dynamic thing groups": "The fleet
    indexing service must be enabled ... before you can create and use dynamic thing groups")."""
    name = ctx.scope("probe-no-index")

    def provoke() -> Answer:
        answer = answer_of(
            lambda: iot.create_dynamic_thing_group(
                thingGroupName=name, queryString=QUERY, tags=ctx.scope.tags
            ),
            ctx.scope,
        )
        if answer.accepted:
            iot.delete_dynamic_thing_group(thingGroupName=name)
        return answer

    return _without_thing_indexing(iot, ctx, provoke)


def search_index_without_index(iot: Any, ctx: Context) -> Answer:
    """SearchIndex of the things' index with thing indexing off (AWS's answer:
    csuermann/node-red-contrib-virtual-smart-home#16, ResourceNotFoundException)."""
    return _without_thing_indexing(
        iot,
        ctx,
        lambda: answer_of(
            lambda: iot.search_index(indexName="AWS_Things", queryString=QUERY), ctx.scope
        ),
    )


def search_missing_index(iot: Any, ctx: Context) -> Answer:
    """SearchIndex of an index the account does not have (a name no index bears; what the
    emulation also answers for AWS_ThingGroups with thing group indexing off, without turning
    the account's group indexing off)."""
    return answer_of(
        lambda: iot.search_index(indexName="crrconf_no_such_index", queryString="*"), ctx.scope
    )


def disable_index_with_dynamic_groups(iot: Any, ctx: Context) -> Answer:
    """UpdateIndexingConfiguration turning thing indexing off while a dynamic group exists
    ("Dynamic thing groups": "you cannot disable it until you delete all of your dynamic thing
    groups"). Needs thing indexing on."""
    before = iot.get_indexing_configuration()["thingIndexingConfiguration"]
    dynamic = _dynamic_group(iot, ctx, "probe-keep-index")
    answer = answer_of(lambda: _set_thing_indexing(iot, {"thingIndexingMode": "OFF"}), ctx.scope)
    iot.delete_dynamic_thing_group(thingGroupName=dynamic)
    if answer.accepted:
        _restore_thing_indexing(iot, ctx, before)
    return answer


def dynamic_groups_per_account(iot: Any, ctx: Context) -> Answer:
    """The 101st dynamic group of the region (AWS IoT Device Management quotas: 100 dynamic
    groups per account). Counts the region's dynamic groups first, makes up to the limit, and
    deletes its own. Needs thing indexing on."""
    made = [
        _dynamic_group(iot, ctx, f"probe-dyn-{i}")
        for i in range(max(0, rules.MAX_DYNAMIC_GROUPS - _dynamic_group_count(iot)))
    ]
    # botocore retries LimitExceededException as throttling (botocore.retries.standard): one
    # call without retries gets AWS's answer; a throttled answer is asked again.
    once: Any = boto3.client(
        "iot",
        region_name=iot.meta.region_name,
        endpoint_url=iot.meta.endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )
    over = ctx.scope("probe-dyn-over")
    answers: list[Answer] = []

    def answered() -> bool:
        answers.append(
            answer_of(
                lambda: once.create_dynamic_thing_group(
                    thingGroupName=over, queryString=QUERY, tags=ctx.scope.tags
                ),
                ctx.scope,
            )
        )
        return answers[-1].code != "ThrottlingException"

    ctx.wait_until("CreateDynamicThingGroup answered without throttling", answered, 120.0)
    for name in made + ([over] if answers[-1].accepted else []):
        iot.delete_dynamic_thing_group(thingGroupName=name)
    return answers[-1]


def untyped_thing_attribute_payload(iot: Any, ctx: Context) -> Answer:
    """UpdateThing of a thing without a type, removing its 3 attributes and adding a fourth in one
    request (4 keys; 1 attribute after): AWS IoT API Reference, AttributePayload ("up to three
    key-value pair"). Whether AWS counts the request or only the result, this records."""
    thing = ctx.scope("probe-untyped-payload")
    limit = rules.UNTYPED_THING_MAX_ATTRIBUTES
    iot.create_thing(
        thingName=thing, attributePayload={"attributes": {f"a{i}": "v" for i in range(limit)}}
    )
    payload = {**{f"a{i}": "" for i in range(limit)}, "b": "v"}
    return answer_of(
        lambda: iot.update_thing(
            thingName=thing, attributePayload={"attributes": payload, "merge": True}
        ),
        ctx.scope,
    )


def policy_document_too_large(iot: Any, ctx: Context) -> Answer:
    """CreatePolicy with a document of 2049 characters excluding whitespace (botocore's iot
    model, CreatePolicy policyDocument: "a maximum length of 2048, excluding whitespace")."""
    head = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect",'
    tail = '"Resource":"arn:aws:iot:*:*:client/"}]}'
    padding = "x" * (rules.POLICY_DOCUMENT_MAX + 1 - len(head) - len(tail))
    document = head + tail.replace("client/", f"client/{padding}")
    return answer_of(
        lambda: iot.create_policy(
            policyName=ctx.scope("probe-large-policy"), policyDocument=document, tags=ctx.scope.tags
        ),
        ctx.scope,
    )


def typed_thing_attributes(iot: Any, ctx: Context) -> Answer:
    """A typed thing with 51 attributes (AWS IoT developer guide, "Thing types": "Things with a
    thing type can have up to 50 attributes")."""
    thing_type = ctx.scope("probe-typed")
    iot.create_thing_type(thingTypeName=thing_type, tags=ctx.scope.tags)
    attributes = {f"a{i}": "v" for i in range(rules.TYPED_THING_MAX_ATTRIBUTES + 1)}
    return answer_of(
        lambda: iot.create_thing(
            thingName=ctx.scope("probe-typed-thing"),
            thingTypeName=thing_type,
            attributePayload={"attributes": attributes},
        ),
        ctx.scope,
    )


def thing_group_attributes(iot: Any, ctx: Context) -> Answer:
    """A thing group with 51 attributes (AWS IoT Device Management quotas: 50)."""
    attributes = {f"a{i}": "v" for i in range(rules.THING_GROUP_MAX_ATTRIBUTES + 1)}
    return answer_of(
        lambda: iot.create_thing_group(
            thingGroupName=ctx.scope("probe-group-attributes"),
            thingGroupProperties={"attributePayload": {"attributes": attributes}},
            tags=ctx.scope.tags,
        ),
        ctx.scope,
    )


def attribute_constraint(iot: Any, ctx: Context) -> Answer:
    """An attribute value with a space (botocore's iot model: AttributeValue
    ``[a-zA-Z0-9_.,@/:#=\\[\\]-]*``, which botocore does not check before sending)."""
    return answer_of(
        lambda: iot.create_thing(
            thingName=ctx.scope("probe-space"),
            attributePayload={"attributes": {"site": "two words"}},
        ),
        ctx.scope,
    )


def searchable_attributes(iot: Any, ctx: Context) -> Answer:
    """A thing type with 4 searchable attributes (CloudFormation, AWS::IoT::ThingType
    ThingTypeProperties: SearchableAttributes "Maximum: 3")."""
    names = [f"s{i}" for i in range(rules.MAX_SEARCHABLE_ATTRIBUTES + 1)]
    return answer_of(
        lambda: iot.create_thing_type(
            thingTypeName=ctx.scope("probe-searchable"),
            thingTypeProperties={"searchableAttributes": names},
            tags=ctx.scope.tags,
        ),
        ctx.scope,
    )


def _dynamic_group(iot: Any, ctx: Context, suffix: str) -> str:
    name = ctx.scope(suffix)
    iot.create_dynamic_thing_group(thingGroupName=name, queryString=QUERY, tags=ctx.scope.tags)
    return name


def _dynamic_group_count(iot: Any) -> int:
    """The region's dynamic groups: root groups (they are never in a hierarchy) whose
    DescribeThingGroup has a query."""
    paginator = iot.get_paginator("list_thing_groups")
    return sum(
        "queryString" in iot.describe_thing_group(thingGroupName=group["groupName"])
        for page in paginator.paginate(recursive=False)
        for group in page.get("thingGroups", [])
    )


def _without_thing_indexing(iot: Any, ctx: Context, provoke: Callable[[], Answer]) -> Answer:
    """``provoke``'s answer with thing indexing off: turned off for the call when it is on
    (refused while dynamic groups exist in the region: then the probe cannot run there) and back
    on as it was."""
    before = iot.get_indexing_configuration()["thingIndexingConfiguration"]
    was_on = before.get("thingIndexingMode", "OFF") != "OFF"
    if was_on:
        _set_thing_indexing(iot, {"thingIndexingMode": "OFF"})
    try:
        return provoke()
    finally:
        if was_on:
            _restore_thing_indexing(iot, ctx, before)


def _set_thing_indexing(iot: Any, configuration: dict[str, Any]) -> None:
    iot.update_indexing_configuration(thingIndexingConfiguration=configuration)


def _restore_thing_indexing(iot: Any, ctx: Context, before: dict[str, Any]) -> None:
    """Thing indexing as it was, and the index usable again: a dynamic group can be made."""
    _set_thing_indexing(iot, {key: before[key] for key in _SETTABLE if before.get(key)})
    probe = ctx.scope("probe-index-back")

    def usable() -> bool:
        answer = answer_of(
            lambda: iot.create_dynamic_thing_group(
                thingGroupName=probe, queryString=QUERY, tags=ctx.scope.tags
            ),
            ctx.scope,
        )
        return answer.accepted or answer.code == "ResourceAlreadyExistsException"

    ctx.wait_until("thing indexing usable again", usable, INDEX_REBUILD_SECONDS)
    iot.delete_dynamic_thing_group(thingGroupName=probe)


QUOTA_PROBES = (
    Probe("thing_groups_per_thing", "AddThingToThingGroup", thing_groups_per_thing),
    Probe("thing_group_depth", "CreateThingGroup", thing_group_depth),
    Probe("thing_group_children", "CreateThingGroup", thing_group_children),
    # These two before any probe makes a dynamic group: the region must hold none to turn
    # indexing off.
    Probe("dynamic_group_without_index", "CreateDynamicThingGroup", dynamic_group_without_index),
    Probe("search_index_without_index", "SearchIndex", search_index_without_index),
    Probe("search_missing_index", "SearchIndex", search_missing_index),
    Probe("dynamic_group_in_hierarchy", "CreateThingGroup", dynamic_group_in_hierarchy),
    Probe("policy_on_dynamic_group", "AttachPolicy", policy_on_dynamic_group),
    Probe(
        "disable_index_with_dynamic_groups",
        "UpdateIndexingConfiguration",
        disable_index_with_dynamic_groups,
    ),
    Probe("dynamic_groups_per_account", "CreateDynamicThingGroup", dynamic_groups_per_account),
    Probe("typed_thing_attributes", "CreateThing", typed_thing_attributes),
    Probe("policy_document_too_large", "CreatePolicy", policy_document_too_large),
    Probe("untyped_thing_attribute_payload", "UpdateThing", untyped_thing_attribute_payload),
    Probe("thing_group_attributes", "CreateThingGroup", thing_group_attributes),
    Probe("attribute_constraint", "CreateThing", attribute_constraint),
    Probe("searchable_attributes", "CreateThingType", searchable_attributes),
)
