"""AWS IoT's documented name and value rules, checked before anything is stored or applied.

The registry refuses names and values that break these rules, but moto checks none of them, so a
bad value would pass every test and fail only in a real region. The event parser
(``pipeline.events``) runs every name and attribute through here; adapters may do the same
before a call. Each function returns the value it checked (typed) or raises
``RegistryValidationError(field, value, rule)``.

Rules (the botocore ``iot`` service model the AWS IoT API Reference is generated from, e.g.
CreateThing, AttributePayload; attribute counts: AWS IoT Core quotas,
https://docs.aws.amazon.com/general/latest/gr/iot-core.html):
- thing, thing type, thing group and billing group names: 1-128 chars, ``[a-zA-Z0-9:_-]+``;
- attribute names: 1-128 chars, ``[a-zA-Z0-9_.,@/:#-]+``;
- attribute values: 0-800 chars, ``[a-zA-Z0-9_.,@/:#=\\[\\]-]*`` (no spaces);
- at most 3 attributes on a thing without a type, 50 on a typed thing or a thing group;
- descriptions: at most 2028 chars of ``[\\p{Graph}\\x20]*``;
- an IoT policy document: at most 2048 characters, "excluding whitespace" (CreatePolicy and
  CreatePolicyVersion ``policyDocument`` in botocore's iot model; the model's own shape allows
  more, so botocore never checks it), counted on the compact JSON: the whitespace between
  tokens is excluded, any inside a string value counts (the stricter reading).

Registry quotas (AWS General Reference, "AWS IoT Device Management endpoints and quotas",
thing group and thing limits, https://docs.aws.amazon.com/general/latest/gr/iot_device_management.html,
which the AWS IoT Developer Guide's "Static thing groups" and "Dynamic thing groups" link to; the
values as the guide's former "AWS IoT Limits" page listed them, none adjustable there):
- a thing belongs to at most 10 thing groups ("Static thing groups": "You can add a thing to a
  maximum of 10 groups"), dynamic ones included;
- a thing group hierarchy is at most 7 levels deep, a group has at most 100 direct children;
- at most 100 dynamic thing groups per account (and region);
- a thing type has at most 3 searchable attributes (CloudFormation, AWS::IoT::ThingType
  ThingTypeProperties: SearchableAttributes "Maximum: 3").
"""

from __future__ import annotations

import json
import re

from pipeline.errors import RegistryValidationError

NAME_MAX = 128
ATTRIBUTE_NAME_MAX = 128
ATTRIBUTE_VALUE_MAX = 800
DESCRIPTION_MAX = 2028
UNTYPED_THING_MAX_ATTRIBUTES = 3
# The things index fleet indexing keeps (SearchIndex, dynamic groups' queries): "AWS_Things"
# (AWS IoT API Reference, SearchIndex and CreateDynamicThingGroup, indexName).
THINGS_INDEX = "AWS_Things"
# The thing groups' index, while thing group indexing is on (AWS IoT guide, "Manage thing group
# indexing": https://docs.aws.amazon.com/iot/latest/developerguide/thinggroup-index.html).
THING_GROUPS_INDEX = "AWS_ThingGroups"
TYPED_THING_MAX_ATTRIBUTES = 50
THING_GROUP_MAX_ATTRIBUTES = 50
MAX_GROUPS_PER_THING = 10
MAX_GROUP_DEPTH = 7
MAX_CHILD_GROUPS = 100
MAX_DYNAMIC_GROUPS = 100
MAX_SEARCHABLE_ATTRIBUTES = 3
POLICY_DOCUMENT_MAX = 2048

# re.ASCII keeps ``0-9``-style classes from matching other scripts' digits; fullmatch (not
# ``$``) so a trailing newline cannot slip through.
_NAME = re.compile(r"[a-zA-Z0-9:_-]+", re.ASCII)
_ATTRIBUTE_NAME = re.compile(r"[a-zA-Z0-9_.,@/:#-]+", re.ASCII)
_ATTRIBUTE_VALUE = re.compile(r"[a-zA-Z0-9_.,@/:#=\[\]-]*", re.ASCII)

NAME_RULE = f"1-{NAME_MAX} characters of [a-zA-Z0-9:_-]"
ATTRIBUTE_NAME_RULE = f"attribute name: 1-{ATTRIBUTE_NAME_MAX} characters of [a-zA-Z0-9_.,@/:#-]"
ATTRIBUTE_VALUE_RULE = (
    f"attribute value: at most {ATTRIBUTE_VALUE_MAX} characters of [a-zA-Z0-9_.,@/:#=[]-] "
    "(no spaces)"
)
DESCRIPTION_RULE = f"description: at most {DESCRIPTION_MAX} printable characters (no control chars)"


def validate_name(field: str, value: object) -> str:
    """A thing, thing type, thing group or billing group name."""
    if not isinstance(value, str) or len(value) > NAME_MAX or not _NAME.fullmatch(value):
        raise RegistryValidationError(field, value, NAME_RULE)
    return value


def validate_attribute_name(field: str, value: object) -> str:
    """One attribute name (also the rule for a thing type's searchable attributes)."""
    if (
        not isinstance(value, str)
        or len(value) > ATTRIBUTE_NAME_MAX
        or not _ATTRIBUTE_NAME.fullmatch(value)
    ):
        raise RegistryValidationError(field, value, ATTRIBUTE_NAME_RULE)
    return value


def validate_attribute_value(field: str, value: object) -> str:
    """One attribute value; empty is allowed (it means "remove" in a merging update)."""
    if (
        not isinstance(value, str)
        or len(value) > ATTRIBUTE_VALUE_MAX
        or not _ATTRIBUTE_VALUE.fullmatch(value)
    ):
        raise RegistryValidationError(field, value, ATTRIBUTE_VALUE_RULE)
    return value


def attribute_limit(*, typed: bool | None, max_count: int | None = None) -> int | None:
    """How many attributes are allowed: ``max_count`` if given, else by ``typed`` (None: no cap)."""
    if max_count is not None:
        return max_count
    if typed is None:
        return None
    return TYPED_THING_MAX_ATTRIBUTES if typed else UNTYPED_THING_MAX_ATTRIBUTES


def validate_attributes(
    field: str, attributes: object, *, typed: bool | None, max_count: int | None = None
) -> dict[str, str]:
    """An attribute map of str -> str, each name and value within the rules.

    The count is capped by ``max_count`` when given (thing groups: 50); otherwise by ``typed``:
    False -> 3 (a thing without a type), True -> 50, None -> not checked. A bad name or value is
    reported as ``<field>.<name>`` so the caller sees which attribute broke which rule.
    """
    if not isinstance(attributes, dict):
        raise RegistryValidationError(field, attributes, "attributes: a map of name to value")
    limit = attribute_limit(typed=typed, max_count=max_count)
    if limit is not None and len(attributes) > limit:
        who = (
            "a thing group"
            if max_count is not None
            else ("a thing with a type" if typed else "a thing without a type")
        )
        raise RegistryValidationError(
            field, attributes, f"at most {limit} attributes on {who} (got {len(attributes)})"
        )
    checked: dict[str, str] = {}
    for name, value in attributes.items():
        key = validate_attribute_name(f"{field}.{name}", name)
        checked[key] = validate_attribute_value(f"{field}.{name}", value)
    return checked


def validate_description(field: str, value: object) -> str | None:
    """A thing type, thing group or billing group description; None means "no description".

    ``\\p{Graph}`` plus space is read as "printable": letters, digits, punctuation and symbols
    of any script, and the ASCII space, but no control characters (tab, newline, NUL...) and no
    other separators. ``str.isprintable`` is exactly that set.
    """
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > DESCRIPTION_MAX or not value.isprintable():
        raise RegistryValidationError(field, value, DESCRIPTION_RULE)
    return value


def validate_policy_document_size(field: str, document: str) -> str:
    """An IoT policy document within ``POLICY_DOCUMENT_MAX`` characters (JSON text)."""
    size = len(json.dumps(json.loads(document), separators=(",", ":")))
    if size > POLICY_DOCUMENT_MAX:
        raise RegistryValidationError(
            field,
            document,
            f"a policy document has at most {POLICY_DOCUMENT_MAX} characters excluding "
            f"whitespace ({size})",
        )
    return document


def validate_attribute_names(field: str, values: object) -> list[str]:
    """A list of attribute names (a thing type's searchable attributes), reported by index."""
    if not isinstance(values, list | tuple):
        raise RegistryValidationError(field, values, "a list of attribute names")
    return [validate_attribute_name(f"{field}.{i}", v) for i, v in enumerate(values)]
