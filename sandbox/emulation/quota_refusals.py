"""The registry's quotas and requirements the emulation enforces (``quotas``), as refusals: each
with AWS's code, our text (``message_seen`` says whether it is AWS's) and its source. Part of
``refusals.REFUSALS``. Where an API reference lists one refusal code besides
ResourceNotFoundException and throttling, that code is AWS's answer; the values are in
``pipeline.rules``."""

from __future__ import annotations

from sandbox.emulation.refusal import API as _API
from sandbox.emulation.refusal import GUIDE as _GUIDE
from sandbox.emulation.refusal import Refusal

_QUOTAS = (
    "AWS General Reference, 'AWS IoT Device Management endpoints and quotas', thing group "
    "limits: https://docs.aws.amazon.com/general/latest/gr/iot_device_management.html"
)

QUOTA_REFUSALS: dict[str, Refusal] = {
    "thing_groups_per_thing": Refusal(
        "AddThingToThingGroup",
        "InvalidRequestException",
        "Thing {name} cannot be added to {group}: it already belongs to {count} thing groups, "
        "the most a thing can belong to",
        f"{_GUIDE}thing-groups.html ('You can add a thing to a maximum of 10 groups'); "
        f"{_GUIDE}dynamic-thing-groups.html (at the limit, in no dynamic group or without "
        "overrideDynamicGroups: 'The thing can't be added to the thing group. The command "
        f"raises an exception'); the code: {_API}AddThingToThingGroup.html",
        message_seen=False,
    ),
    "thing_group_depth": Refusal(
        "CreateThingGroup",
        "InvalidRequestException",
        "Thing group {name} cannot be created under {parent}: a thing group hierarchy is at "
        "most {limit} levels deep",
        f"{_QUOTAS} (thing group hierarchy depth: 7; {_GUIDE}thing-groups.html: 'The maximum "
        f"depth of a group hierarchy is limited'); the code: {_API}CreateThingGroup.html",
        message_seen=False,
    ),
    "thing_group_children": Refusal(
        "CreateThingGroup",
        "InvalidRequestException",
        "Thing group {name} cannot be created under {parent}: a thing group has at most "
        "{limit} direct child groups",
        f"{_QUOTAS} (direct child groups: 100; {_GUIDE}thing-groups.html: 'The number of "
        "direct child groups a thing group can have is limited'); the code: "
        f"{_API}CreateThingGroup.html",
        message_seen=False,
    ),
    "dynamic_group_in_hierarchy": Refusal(
        "CreateThingGroup",
        "InvalidRequestException",
        "Thing group {name} cannot be created under {parent}: a dynamic thing group cannot be "
        "part of a hierarchy",
        f"{_GUIDE}dynamic-thing-groups.html ('Dynamic thing groups can't be part of a "
        f"hierarchy'); the code: {_API}CreateThingGroup.html",
        message_seen=False,
    ),
    "dynamic_group_without_index": Refusal(
        "CreateDynamicThingGroup",
        "ResourceNotFoundException",
        "Index AWS_Things does not exist. Please enable index by calling "
        "UpdateIndexingConfiguration",
        f"{_GUIDE}dynamic-thing-groups.html ('The fleet indexing service must be enabled ... "
        "before you can create and use dynamic thing groups'); code and text: AWS's answer to "
        "SearchIndex without the index (https://github.com/csuermann/"
        "node-red-contrib-virtual-smart-home/issues/16), ResourceNotFoundException being among "
        f"{_API}CreateDynamicThingGroup.html's errors; [assumption] CreateDynamicThingGroup "
        "answers as SearchIndex does",
        message_seen=False,
    ),
    "search_index_without_index": Refusal(
        "SearchIndex",
        "ResourceNotFoundException",
        "Index AWS_Things does not exist. Please enable index by calling "
        "UpdateIndexingConfiguration",
        "code, text and HTTP 404: AWS's answer to SearchIndex with thing indexing off "
        "(https://github.com/csuermann/node-red-contrib-virtual-smart-home/issues/16); "
        "ResourceNotFoundException is among SearchIndex's errors in botocore's iot model and "
        f"{_API}SearchIndex.html. [assumption] an omitted indexName is AWS_Things (the default "
        "GetStatistics' indexName documents; AWS's SearchIndex code example searches things "
        "without one: https://docs.aws.amazon.com/code-library/latest/ug/"
        "iot_example_iot_SearchIndex_section.html)",
        message_seen=True,
    ),
    "search_missing_index": Refusal(
        "SearchIndex",
        "ResourceNotFoundException",
        "Index {index} does not exist. Please enable index by calling UpdateIndexingConfiguration",
        f"{_GUIDE}thinggroup-index.html (thingGroupIndexingMode OFF: 'No indexing/delete "
        "index'; ON: 'Create or configure the AWS_ThingGroups index'); code and text: AWS's "
        "answer for AWS_Things without its index (search_index_without_index). [assumption] "
        "AWS_ThingGroups with group indexing off, and any other index name, are answered alike",
        message_seen=False,
    ),
    "dynamic_groups_per_account": Refusal(
        "CreateDynamicThingGroup",
        "LimitExceededException",
        "Dynamic thing group {name} cannot be created: an account has at most {limit} dynamic "
        "thing groups",
        f"{_QUOTAS} (dynamic thing groups: 100; {_GUIDE}dynamic-thing-groups.html: 'The number "
        f"of dynamic thing groups is limited'); the code: {_API}CreateDynamicThingGroup.html "
        "(LimitExceededException, 'A limit has been exceeded', HTTP 410)",
        message_seen=False,
    ),
    "disable_index_with_dynamic_groups": Refusal(
        "UpdateIndexingConfiguration",
        "InvalidRequestException",
        "Thing indexing cannot be turned off while {count} dynamic thing group(s) exist",
        f"{_GUIDE}dynamic-thing-groups.html ('After you enable the fleet indexing service for "
        "dynamic thing groups, you cannot disable it until you delete all of your dynamic thing "
        f"groups'); [assumption] the code, one of {_API}UpdateIndexingConfiguration.html's",
        message_seen=False,
    ),
    "policy_on_dynamic_group": Refusal(
        "AttachPolicy",
        "InvalidRequestException",
        "A policy cannot be attached to the dynamic thing group {name}",
        f"{_GUIDE}dynamic-thing-groups.html ('Attempting to apply a policy to a dynamic thing "
        f"group generates an exception'); [assumption] the code, one of {_API}AttachPolicy.html's",
        message_seen=False,
    ),
    "typed_thing_attributes": Refusal(
        "CreateThing/UpdateThing",
        "InvalidRequestException",
        "A thing with a thing type can have at most {limit} attributes: {name}",
        f"{_GUIDE}thing-types.html ('Things with a thing type can have up to 50 attributes'); "
        f"the code as for untyped_thing_attributes",
        message_seen=False,
    ),
    "untyped_thing_attribute_payload": Refusal(
        "UpdateThing",
        "InvalidRequestException",
        "An attribute payload for a thing without a thing type can hold at most {limit} "
        "attributes (got {count}): {name}",
        f"[assumption] {_API}AttributePayload.html (attributes: 'A JSON string containing up to "
        "three key-value pair'), read as a limit per request for a thing without a type, where "
        "removed keys (an empty value) count too; the code as for untyped_thing_attributes",
        message_seen=False,
    ),
    "policy_document_too_large": Refusal(
        "CreatePolicy/CreatePolicyVersion",
        "InvalidRequestException",
        "Policy {name}: {rule}",
        "botocore's iot model, CreatePolicy and CreatePolicyVersion policyDocument ('must have a "
        "minimum length of 1, with a maximum length of 2048, excluding whitespace'); "
        "[assumption] the code, one of both calls' documented errors (MalformedPolicyException "
        "is the other candidate): the probe records AWS's",
        message_seen=False,
    ),
    "thing_group_attributes": Refusal(
        "CreateThingGroup/UpdateThingGroup",
        "InvalidRequestException",
        "A thing group can have at most {limit} attributes: {name}",
        f"{_QUOTAS} (thing group attributes: 50; {_GUIDE}thing-groups.html: 'The number of "
        f"attributes a thing group can have is limited'); the code: {_API}CreateThingGroup.html",
        message_seen=False,
    ),
    "attribute_constraint": Refusal(
        "CreateThing/UpdateThing/CreateThingGroup/UpdateThingGroup",
        "InvalidRequestException",
        "1 validation error detected: Value '{value}' at 'attributePayload.attributes' failed "
        "to satisfy constraint: {rule}",
        "botocore's iot service model (AttributeName: at most 128 of [a-zA-Z0-9_.,@/:#-]; "
        "AttributeValue: at most 800 of [a-zA-Z0-9_.,@/:#=\\[\\]-]; botocore checks neither "
        "before sending); AWS's answer's code and shape: https://github.com/aws/aws-sdk-java/"
        "issues/666 (InvalidRequestException, '... at 'attributePayload.attributes' failed to "
        "satisfy constraint: Map keys must satisfy constraint: [...]')",
        message_seen=False,
    ),
    "searchable_attributes": Refusal(
        "CreateThingType",
        "InvalidRequestException",
        "A thing type can have at most {limit} searchable attributes: {name}",
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/"
        "aws-properties-iot-thingtype-thingtypeproperties.html (SearchableAttributes: "
        "'Maximum: 3'); [assumption] the code, CreateThingType's refusal of a bad request",
        message_seen=False,
    ),
}
