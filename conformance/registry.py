"""What a region's registry holds under a name prefix, and how a run removes it again.

Plain boto3 only, independent of ``reconcile`` (whose audit the scenarios check against this).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from conformance.run import is_conformance_name

Wait = Callable[[str, Callable[[], bool], float], None]
View = dict[str, Any]
TYPE_DEPRECATION_SECONDS = 300  # AWS IoT API Reference, DeleteThingType: deprecated 5 minutes


def _pages(iot: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    for page in iot.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _listed(iot: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
    return list(_pages(iot, operation, key, **kwargs))


def _names(iot: Any, operation: str, key: str, field: str, prefix: str) -> list[str]:
    return [e[field] for e in _pages(iot, operation, key) if e[field].startswith(prefix)]


def thing_names(iot: Any, prefix: str = "") -> list[str]:
    return _names(iot, "list_things", "things", "thingName", prefix)


def type_names(iot: Any, prefix: str = "") -> list[str]:
    return _names(iot, "list_thing_types", "thingTypes", "thingTypeName", prefix)


def group_names(iot: Any, prefix: str = "") -> list[str]:
    return _names(iot, "list_thing_groups", "thingGroups", "groupName", prefix)


def billing_group_names(iot: Any, prefix: str = "") -> list[str]:
    return _names(iot, "list_billing_groups", "billingGroups", "groupName", prefix)


def gone(call: Callable[[], Any]) -> Any:
    """``call()``, or None when the entity vanished after it was listed (the pipeline runs
    concurrently with the reads)."""
    try:
        return call()
    except ClientError as error:
        if _code(error) == "ResourceNotFoundException":
            return None
        raise


def view(iot: Any, prefix: str) -> View:
    """Every entity named ``prefix...`` with the fields the pipeline replicates."""
    things = {}
    for name in thing_names(iot, prefix):
        thing = gone(partial(iot.describe_thing, thingName=name))
        if thing is not None:
            things[name] = (
                thing.get("thingTypeName"),
                thing.get("attributes") or {},
                thing.get("billingGroupName"),
            )
    types = {}
    for entry in _pages(iot, "list_thing_types", "thingTypes"):
        if entry["thingTypeName"].startswith(prefix):
            props = entry.get("thingTypeProperties") or {}
            types[entry["thingTypeName"]] = (
                props.get("thingTypeDescription"),
                tuple(props.get("searchableAttributes") or ()),
                bool(entry.get("thingTypeMetadata", {}).get("deprecated")),
            )
    groups, members = {}, set[tuple[str, str]]()
    for name in group_names(iot, prefix):
        group = gone(partial(iot.describe_thing_group, thingGroupName=name))
        if group is None:
            continue
        props = group.get("thingGroupProperties") or {}
        groups[name] = (
            group.get("thingGroupMetadata", {}).get("parentGroupName"),
            props.get("thingGroupDescription"),
            (props.get("attributePayload") or {}).get("attributes") or {},
            group.get("queryString"),
        )
        if group.get("queryString") is None:  # a dynamic group's members are the index's
            listed = gone(
                partial(_listed, iot, "list_things_in_thing_group", "things", thingGroupName=name)
            )
            members.update((thing, name) for thing in listed or ())
    billing = {}
    for name in billing_group_names(iot, prefix):
        group = gone(partial(iot.describe_billing_group, billingGroupName=name))
        if group is not None:
            billing[name] = (group.get("billingGroupProperties") or {}).get(
                "billingGroupDescription"
            )
    return {
        "things": things,
        "types": types,
        "groups": groups,
        "members": members,
        "billing_groups": billing,
    }


def onboarding_view(iot: Any, prefix: str, ca_id: str | None) -> View:
    """The onboarding kinds named ``prefix...`` and the CA certificate ``ca_id`` (a CA has no
    name), with the fields the pipeline replicates, as the region holds them."""
    aliases = {}
    for name in _pages(iot, "list_role_aliases", "roleAliases"):  # names only
        alias = name.startswith(prefix) and gone(partial(iot.describe_role_alias, roleAlias=name))
        if alias:
            d = alias["roleAliasDescription"]
            aliases[name] = (d["roleArn"], d["credentialDurationSeconds"])
    authorizers = {}
    for summary in _pages(iot, "list_authorizers", "authorizers"):
        name = summary["authorizerName"]
        found = name.startswith(prefix) and gone(
            partial(iot.describe_authorizer, authorizerName=name)
        )
        if found:
            d = found["authorizerDescription"]
            authorizers[name] = (
                d["authorizerFunctionArn"],
                d.get("tokenKeyName"),
                d.get("tokenSigningPublicKeys") or {},
                d["status"],
                bool(d.get("signingDisabled")),
            )
    templates = {}
    for summary in _pages(iot, "list_provisioning_templates", "templates"):
        name = summary["templateName"]
        template = name.startswith(prefix) and gone(
            partial(iot.describe_provisioning_template, templateName=name)
        )
        if template:
            templates[name] = (
                template.get("type"),
                json.loads(template["templateBody"]),
                bool(template.get("enabled")),
                template.get("description"),
                template["provisioningRoleArn"],
                gone(partial(_version_bodies, iot, name)),
            )
    ca = None
    if ca_id is not None:
        described = gone(partial(iot.describe_ca_certificate, certificateId=ca_id))
        if described is not None:
            d = described["certificateDescription"]
            ca = (
                d["status"],
                d.get("autoRegistrationStatus"),
                (described.get("registrationConfig") or {}).get("templateName"),
            )
    return {"role_aliases": aliases, "authorizers": authorizers, "templates": templates, "ca": ca}


def _version_bodies(iot: Any, name: str) -> list[tuple[bool, str]]:
    """Every version's body as canonical JSON, the default's marked (version ids are each
    region's own)."""
    bodies = []
    for version in _pages(
        iot, "list_provisioning_template_versions", "versions", templateName=name
    ):
        described = iot.describe_provisioning_template_version(
            templateName=name, versionId=version["versionId"]
        )
        body = json.dumps(json.loads(described["templateBody"]), sort_keys=True)
        bodies.append((bool(version.get("isDefaultVersion")), body))
    return sorted(bodies)


def streamed(registry: View) -> View:
    """The part of a view that registry events carry: AWS publishes no billing-group events, so
    billing groups (and a thing's billing group) reach the destination only by reconciliation."""
    things = {name: (kind, attrs) for name, (kind, attrs, _) in registry["things"].items()}
    return {**registry, "things": things, "billing_groups": {}}


def foreign_names(iot: Any, limit: int = 5) -> list[str]:
    """Up to ``limit`` things, thing types or thing groups no conformance run made."""
    found: list[str] = []
    for names in (thing_names(iot), type_names(iot), group_names(iot)):
        found += [n for n in names if not is_conformance_name(n)][: limit - len(found)]
        if len(found) >= limit:
            break
    return found


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def succeeds(call: Callable[[], Any], retry_on: tuple[str, ...]) -> Callable[[], bool]:
    """A condition for ``wait``: True once ``call`` succeeds (or the thing is already gone)."""

    def condition() -> bool:
        try:
            call()
        except ClientError as error:
            if _code(error) == "ResourceNotFoundException":
                return True
            if _code(error) in retry_on:
                return False
            raise
        return True

    return condition


def cleanup_region(
    iot: Any,
    prefix: str,
    wait: Wait,
    log: Callable[[str], None],
) -> None:
    """Delete everything named ``prefix...`` in one region, in the order AWS accepts, except the
    thing types, which it deprecates (``delete_types`` deletes them 5 minutes later).

    Things first (their principals detached; detaching is eventually consistent, so the delete is
    retried), then dynamic and static groups children first, billing groups.
    """
    for name in thing_names(iot, prefix):
        listed = gone(partial(iot.list_thing_principals, thingName=name)) or {}
        for principal in listed.get("principals", []):
            iot.detach_thing_principal(thingName=name, principal=principal)
            _delete_certificate(iot, principal, wait)
        wait(
            f"delete thing {name}",
            succeeds(partial(iot.delete_thing, thingName=name), ("InvalidRequestException",)),
            120.0,
        )
        log(f"deleted thing {name}")
    # Everything below may vanish meanwhile: the pipeline deletes the destination's copies.
    for name in _children_first(iot, group_names(iot, prefix)):
        group = gone(partial(iot.describe_thing_group, thingGroupName=name))
        if group is None:
            continue
        if group.get("queryString") is not None:
            gone(partial(iot.delete_dynamic_thing_group, thingGroupName=name))
        else:
            gone(partial(iot.delete_thing_group, thingGroupName=name))
        log(f"deleted thing group {name}")
    for name in billing_group_names(iot, prefix):
        gone(partial(iot.delete_billing_group, billingGroupName=name))
        log(f"deleted billing group {name}")
    deprecate_types(iot, prefix)


def deprecate_types(iot: Any, prefix: str) -> None:
    for name in type_names(iot, prefix):
        described = gone(partial(iot.describe_thing_type, thingTypeName=name)) or {}
        if not described.get("thingTypeMetadata", {}).get("deprecated", True):
            gone(partial(iot.deprecate_thing_type, thingTypeName=name))


def delete_types(iot: Any, prefix: str, wait: Wait, log: Callable[[str], None]) -> None:
    """Delete the (deprecated) types once AWS allows it: 5 minutes after their deprecation."""
    for name in type_names(iot, prefix):
        wait(
            f"delete thing type {name} (AWS waits 5 minutes after deprecation)",
            succeeds(
                partial(iot.delete_thing_type, thingTypeName=name), ("InvalidRequestException",)
            ),
            3 * TYPE_DEPRECATION_SECONDS,
        )
        log(f"deleted thing type {name}")


def _delete_certificate(iot: Any, principal: str, wait: Wait) -> None:
    """A certificate the run attached (the principals-on-delete refusal): deactivate, delete."""
    if ":cert/" not in principal:
        return
    certificate_id = principal.rpartition("/")[2]

    def detached() -> bool:
        return not iot.list_principal_things(principal=principal).get("things")

    wait(f"certificate {certificate_id} detached", detached, 120.0)
    iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
    iot.delete_certificate(certificateId=certificate_id)


def _children_first(iot: Any, names: list[str]) -> list[str]:
    def depth(name: str) -> int:
        group = gone(lambda: iot.describe_thing_group(thingGroupName=name)) or {}
        return len(group.get("thingGroupMetadata", {}).get("rootToParentThingGroups") or [])

    return sorted(names, key=depth, reverse=True)
