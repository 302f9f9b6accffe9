"""The registry's documented quotas and requirements, which moto does not enforce and the
sandbox does (``sandbox.emulation.quotas``; each refusal's source in ``REFUSALS``): over HTTP,
with plain boto3, as any client of the endpoint meets them."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pipeline.rules import (
    MAX_CHILD_GROUPS,
    MAX_DYNAMIC_GROUPS,
    MAX_GROUP_DEPTH,
    MAX_GROUPS_PER_THING,
    MAX_SEARCHABLE_ATTRIBUTES,
    THING_GROUP_MAX_ATTRIBUTES,
    TYPED_THING_MAX_ATTRIBUTES,
)
from sandbox.stack import Sandbox

SOURCE = "us-east-1"


def _error(call: Any) -> tuple[str, int]:
    """AWS's error code and HTTP status for a call that must be refused."""
    with pytest.raises(ClientError) as error:
        call()
    response = error.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"])


def _indexing(iot: Any, mode: str) -> None:
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": mode})


def _attributes(count: int) -> dict[str, str]:
    return {f"a{i}": "v" for i in range(count)}


def _groups_of(iot: Any, thing: str) -> list[str]:
    return sorted(
        g["groupName"] for g in iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"]
    )


# ---- groups per thing ---------------------------------------------------------------------------


def test_a_thing_belongs_to_at_most_10_groups(box: Sandbox) -> None:
    # GIVEN a thing in 10 root groups (no two share a parent)
    iot = box.iot(SOURCE)
    iot.create_thing(thingName="t")
    for i in range(MAX_GROUPS_PER_THING + 1):
        iot.create_thing_group(thingGroupName=f"g{i:02}")
    for i in range(MAX_GROUPS_PER_THING):
        iot.add_thing_to_thing_group(thingName="t", thingGroupName=f"g{i:02}")
    box.outbox(SOURCE).take()
    # WHEN it is added to an 11th, even with overrideDynamicGroups (it is in no dynamic group)
    refused = _error(
        lambda: iot.add_thing_to_thing_group(
            thingName="t", thingGroupName="g10", overrideDynamicGroups=True
        )
    )
    # THEN AWS's refusal, nothing changed and nothing published
    assert refused == ("InvalidRequestException", 400)
    assert _groups_of(iot, "t") == [f"g{i:02}" for i in range(MAX_GROUPS_PER_THING)]
    assert box.outbox(SOURCE).take() == []
    # Adding it again to a group it is in changes nothing and is no refusal.
    iot.add_thing_to_thing_group(thingName="t", thingGroupName="g00")
    # UpdateThingGroupsForThing adds through the same rule.
    assert _error(
        lambda: iot.update_thing_groups_for_thing(thingName="t", thingGroupsToAdd=["g10"])
    ) == ("InvalidRequestException", 400)
    # Once it has left one, the 11th is a 10th.
    iot.remove_thing_from_thing_group(thingName="t", thingGroupName="g00")
    iot.add_thing_to_thing_group(thingName="t", thingGroupName="g10")
    assert len(_groups_of(iot, "t")) == MAX_GROUPS_PER_THING


# ---- the hierarchy ------------------------------------------------------------------------------


def test_a_hierarchy_is_at_most_7_levels_deep(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    parent = None
    for level in range(1, MAX_GROUP_DEPTH + 1):
        iot.create_thing_group(
            thingGroupName=f"level-{level}", **({"parentGroupName": parent} if parent else {})
        )
        parent = f"level-{level}"
    box.outbox(SOURCE).take()
    refused = _error(
        lambda: iot.create_thing_group(thingGroupName="level-8", parentGroupName="level-7")
    )
    assert refused == ("InvalidRequestException", 400)
    assert _error(lambda: iot.describe_thing_group(thingGroupName="level-8"))[0] == (
        "ResourceNotFoundException"
    )
    assert box.outbox(SOURCE).take() == []
    # A sibling at level 7 is fine.
    iot.create_thing_group(thingGroupName="level-7b", parentGroupName="level-6")


def test_a_group_has_at_most_100_direct_children(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    iot.create_thing_group(thingGroupName="site")
    for i in range(MAX_CHILD_GROUPS):
        iot.create_thing_group(thingGroupName=f"floor-{i}", parentGroupName="site")
    refused = _error(
        lambda: iot.create_thing_group(thingGroupName="floor-x", parentGroupName="site")
    )
    assert refused == ("InvalidRequestException", 400)
    # Grandchildren do not count against the parent.
    iot.create_thing_group(thingGroupName="room", parentGroupName="floor-0")


# ---- dynamic groups -----------------------------------------------------------------------------


def test_dynamic_groups_need_thing_indexing_and_keep_it_on(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    # Fleet indexing is off until enabled, as in a new account.
    assert iot.get_indexing_configuration()["thingIndexingConfiguration"]["thingIndexingMode"] == (
        "OFF"
    )
    refused = _error(
        lambda: iot.create_dynamic_thing_group(thingGroupName="hot", queryString="attributes.t:1")
    )
    assert refused == ("ResourceNotFoundException", 404)
    assert box.outbox(SOURCE).take() == []
    _indexing(iot, "REGISTRY")
    iot.create_dynamic_thing_group(thingGroupName="hot", queryString="attributes.t:1")
    assert _error(lambda: _indexing(iot, "OFF")) == ("InvalidRequestException", 400)
    _indexing(iot, "REGISTRY_AND_SHADOW")  # wider (or narrower but on) is fine
    iot.delete_dynamic_thing_group(thingGroupName="hot")
    _indexing(iot, "OFF")


def test_an_account_has_at_most_100_dynamic_groups(box: Sandbox) -> None:
    # botocore retries LimitExceededException as throttling (botocore.retries.standard): a
    # client without retries gets AWS's answer at once.
    iot = boto3.client(
        "iot",
        region_name=SOURCE,
        endpoint_url=box.endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )
    _indexing(iot, "REGISTRY")
    for i in range(MAX_DYNAMIC_GROUPS):
        iot.create_dynamic_thing_group(thingGroupName=f"dyn-{i}", queryString="attributes.t:1")
    iot.create_thing_group(thingGroupName="static")  # static groups are not counted
    refused = _error(
        lambda: iot.create_dynamic_thing_group(thingGroupName="dyn-x", queryString="attributes.t:1")
    )
    assert refused == ("LimitExceededException", 410)


def test_a_dynamic_group_is_never_a_parent_nor_a_policy_target(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    _indexing(iot, "REGISTRY")
    arn = iot.create_dynamic_thing_group(thingGroupName="hot", queryString="attributes.t:1")[
        "thingGroupArn"
    ]
    refused = _error(lambda: iot.create_thing_group(thingGroupName="c", parentGroupName="hot"))
    assert refused == ("InvalidRequestException", 400)
    iot.create_policy(policyName="p", policyDocument='{"Version": "2012-10-17", "Statement": []}')
    assert _error(lambda: iot.attach_policy(policyName="p", target=arn)) == (
        "InvalidRequestException",
        400,
    )
    static = iot.create_thing_group(thingGroupName="static")["thingGroupArn"]
    iot.attach_policy(policyName="p", target=static)


def test_dynamic_groups_are_listed_with_the_others(box: Sandbox) -> None:
    # AWS IoT API Reference, ListThingGroups: every thing group of the region, dynamic or not
    # (DescribeThingGroup tells them apart). Before: the emulation's dynamic groups had the
    # parent "" and moto listed only groups whose parent is None.
    iot = box.iot(SOURCE)
    _indexing(iot, "REGISTRY")
    iot.create_thing_group(thingGroupName="static")
    iot.create_dynamic_thing_group(thingGroupName="hot", queryString="attributes.t:1")
    listed = sorted(g["groupName"] for g in iot.list_thing_groups()["thingGroups"])
    assert listed == ["hot", "static"]
    roots = iot.list_thing_groups(recursive=False)["thingGroups"]
    assert sorted(g["groupName"] for g in roots) == ["hot", "static"]


def test_the_things_index_is_searched_only_with_thing_indexing_on(box: Sandbox) -> None:
    # AWS's answer to SearchIndex without the index (REFUSALS' search_index_without_index);
    # before, moto answered it whatever the indexing configuration said.
    iot = box.iot(SOURCE)
    iot.create_thing(thingName="t")
    for index in ({"indexName": "AWS_Things"}, {}):  # AWS_Things: the default index
        with pytest.raises(ClientError) as error:
            iot.search_index(queryString="thingName:t", **index)
        response = error.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert response["Error"]["Code"] == "ResourceNotFoundException"
        assert response["Error"]["Message"] == (
            "Index AWS_Things does not exist. Please enable index by calling "
            "UpdateIndexingConfiguration"
        )
    _indexing(iot, "REGISTRY")
    found = iot.search_index(indexName="AWS_Things", queryString="thingName:t")["things"]
    assert [thing["thingName"] for thing in found] == ["t"]
    _indexing(iot, "OFF")
    refused = _error(lambda: iot.search_index(indexName="AWS_Things", queryString="thingName:t"))
    assert refused == ("ResourceNotFoundException", 404)


def test_the_thing_groups_index_is_searched_only_with_group_indexing_on(box: Sandbox) -> None:
    # AWS IoT guide, "Manage thing group indexing": thingGroupIndexingMode ON creates the
    # AWS_ThingGroups index, OFF deletes it. Before, moto answered any indexName with its things.
    iot = box.iot(SOURCE)
    _indexing(iot, "REGISTRY")  # the things' index on: it must not answer for the groups'
    iot.create_thing(thingName="t")
    iot.create_thing_group(thingGroupName="site-a", thingGroupProperties={
        "thingGroupDescription": "first site", "attributePayload": {"attributes": {"k": "v"}}
    })  # fmt: skip
    iot.create_thing_group(thingGroupName="line-1", parentGroupName="site-a")
    iot.create_thing_group(thingGroupName="other")

    def search(query: str, index: str = "AWS_ThingGroups") -> Any:
        return iot.search_index(indexName=index, queryString=query)

    refused = _error(lambda: search("thingGroupName:site*"))
    assert refused == ("ResourceNotFoundException", 404)
    assert _error(lambda: search("thingName:t", "AWS_Nothing")) == (
        "ResourceNotFoundException",
        404,
    )
    iot.update_indexing_configuration(
        thingGroupIndexingConfiguration={"thingGroupIndexingMode": "ON"}
    )
    found = search("thingGroupName:site*")
    assert found["things"] == []
    [document] = found["thingGroups"]
    assert {k: v for k, v in document.items() if k != "thingGroupId"} == {
        "thingGroupName": "site-a",
        "thingGroupDescription": "first site",
        "attributes": {"k": "v"},
        "parentGroupNames": [],
    }
    [child] = search("thingGroupName:line-1")["thingGroups"]
    assert child["parentGroupNames"] == ["site-a"]
    assert [g["thingGroupName"] for g in search("*")["thingGroups"]] == [
        "line-1",
        "other",
        "site-a",
    ]
    # A query the sandbox does not evaluate is refused, never answered loosely.
    assert _error(lambda: search("attributes.k:v"))[0] == "InvalidQueryException"
    # The things' index still answers with things.
    assert [t["thingName"] for t in search("thingName:t", "AWS_Things")["things"]] == ["t"]


# ---- attributes ---------------------------------------------------------------------------------


def test_a_typed_thing_has_at_most_50_attributes(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    iot.create_thing_type(thingTypeName="sensor")
    refused = _error(
        lambda: iot.create_thing(
            thingName="t",
            thingTypeName="sensor",
            attributePayload={"attributes": _attributes(TYPED_THING_MAX_ATTRIBUTES + 1)},
        )
    )
    assert refused == ("InvalidRequestException", 400)
    iot.create_thing(
        thingName="t",
        thingTypeName="sensor",
        attributePayload={"attributes": _attributes(TYPED_THING_MAX_ATTRIBUTES)},
    )
    box.outbox(SOURCE).take()
    refused = _error(
        lambda: iot.update_thing(
            thingName="t", attributePayload={"attributes": {"one-more": "v"}, "merge": True}
        )
    )
    assert refused == ("InvalidRequestException", 400)
    described = iot.describe_thing(thingName="t")
    assert described["attributes"] == _attributes(TYPED_THING_MAX_ATTRIBUTES)
    assert described["version"] == 1
    assert box.outbox(SOURCE).take() == []


def test_a_thing_group_has_at_most_50_attributes(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    too_many = {"attributePayload": {"attributes": _attributes(THING_GROUP_MAX_ATTRIBUTES + 1)}}
    assert _error(
        lambda: iot.create_thing_group(thingGroupName="g", thingGroupProperties=too_many)
    ) == ("InvalidRequestException", 400)
    full = {"attributePayload": {"attributes": _attributes(THING_GROUP_MAX_ATTRIBUTES)}}
    iot.create_thing_group(thingGroupName="g", thingGroupProperties=full)
    one_more = {"attributePayload": {"attributes": {"one-more": "v"}, "merge": True}}
    assert _error(
        lambda: iot.update_thing_group(thingGroupName="g", thingGroupProperties=one_more)
    ) == ("InvalidRequestException", 400)
    described = iot.describe_thing_group(thingGroupName="g")
    assert described["thingGroupProperties"]["attributePayload"]["attributes"] == (
        _attributes(THING_GROUP_MAX_ATTRIBUTES)
    )
    assert described["version"] == 1
    _indexing(iot, "REGISTRY")
    assert _error(
        lambda: iot.create_dynamic_thing_group(
            thingGroupName="hot", queryString="attributes.t:1", thingGroupProperties=too_many
        )
    ) == ("InvalidRequestException", 400)


@pytest.mark.parametrize(
    ("name", "value"),
    [("site", "two words"), ("a" * 129, "v"), ("site", "v" * 801), ("bad name", "v")],
    ids=["space-in-value", "long-name", "long-value", "space-in-name"],
)
def test_attribute_names_and_values_follow_the_service_model(
    box: Sandbox, name: str, value: str
) -> None:
    iot = box.iot(SOURCE)
    payload = {"attributePayload": {"attributes": {name: value}}}
    assert _error(lambda: iot.create_thing(thingName="t", **payload)) == (
        "InvalidRequestException",
        400,
    )
    assert _error(
        lambda: iot.create_thing_group(thingGroupName="g", thingGroupProperties=payload)
    ) == ("InvalidRequestException", 400)
    iot.create_thing(thingName="t", attributePayload={"attributes": {"site": "dub"}})
    assert _error(lambda: iot.update_thing(thingName="t", **payload)) == (
        "InvalidRequestException",
        400,
    )
    assert iot.describe_thing(thingName="t")["attributes"] == {"site": "dub"}


def test_a_thing_type_has_at_most_3_searchable_attributes(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    names = [f"s{i}" for i in range(MAX_SEARCHABLE_ATTRIBUTES + 1)]
    refused = _error(
        lambda: iot.create_thing_type(
            thingTypeName="sensor", thingTypeProperties={"searchableAttributes": names}
        )
    )
    assert refused == ("InvalidRequestException", 400)
    iot.create_thing_type(
        thingTypeName="sensor", thingTypeProperties={"searchableAttributes": names[:-1]}
    )
