"""Calls AWS refuses and the emulation claims to refuse the same way, provoked with plain boto3.

Each probe sets up what it needs under its scope's prefix, makes the one call AWS should refuse
and returns the answer: the error code and message, or ``accepted`` when the call succeeded.
Run on an account, the answers become the recorded facts the emulation is checked against
(``conformance.answers``); run on the sandbox, they are the emulation's claims.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from botocore.exceptions import ClientError

from conformance.group_refusals import GROUP_PROBES
from conformance.onboarding_refusals import ONBOARDING_PROBES
from conformance.probing import Answer, Context, Probe, answer_of
from conformance.quota_refusals import QUOTA_PROBES

TYPE_DEPRECATION_SECONDS = 300
POLICY_DETACH_SECONDS = 300  # AWS IoT API Reference, DeletePolicy: "up to five minutes"


# ---- the probes --------------------------------------------------------------------------------


def update_thing_type_beyond_mqtt5(iot: Any, ctx: Context) -> Answer:
    """UpdateThingType changes only ``mqtt5Configuration`` (AWS IoT API Reference,
    UpdateThingType); a new description is refused."""
    name = ctx.scope("probe-update-type")
    iot.create_thing_type(
        thingTypeName=name,
        thingTypeProperties={"thingTypeDescription": "before"},
        tags=ctx.scope.tags,
    )
    return answer_of(
        lambda: iot.update_thing_type(
            thingTypeName=name, thingTypeProperties={"thingTypeDescription": "after"}
        ),
        ctx.scope,
    )


def delete_thing_type_not_deprecated(iot: Any, ctx: Context) -> Answer:
    """DeleteThingType of a type that is not deprecated (AWS IoT developer guide, "Delete a thing
    type": "You can delete thing types only after they have been deprecated")."""
    name = ctx.scope("probe-not-deprecated")
    iot.create_thing_type(thingTypeName=name, tags=ctx.scope.tags)
    return answer_of(lambda: iot.delete_thing_type(thingTypeName=name), ctx.scope)


def delete_thing_type_too_soon(iot: Any, ctx: Context) -> Answer:
    """DeleteThingType within 5 minutes of deprecation (AWS IoT API Reference, DeleteThingType:
    "deprecate it ... wait for five minutes")."""
    name = ctx.scope("probe-delete-soon")
    iot.create_thing_type(thingTypeName=name, tags=ctx.scope.tags)
    iot.deprecate_thing_type(thingTypeName=name)
    return answer_of(lambda: iot.delete_thing_type(thingTypeName=name), ctx.scope)


def delete_thing_type_in_use(iot: Any, ctx: Context) -> Answer:
    """DeleteThingType of a type deprecated for over 5 minutes that a thing still has (AWS IoT
    developer guide, "Delete a thing type": "you must first ... disassociate all things")."""
    name = ctx.scope("probe-delete-used")
    iot.create_thing_type(thingTypeName=name, tags=ctx.scope.tags)
    iot.create_thing(thingName=ctx.scope("probe-delete-used-thing"), thingTypeName=name)
    iot.deprecate_thing_type(thingTypeName=name)
    deprecated_at = iot.describe_thing_type(thingTypeName=name)["thingTypeMetadata"][
        "deprecationDate"
    ].timestamp()
    ctx.let_time_pass(TYPE_DEPRECATION_SECONDS)
    ctx.wait_until(
        f"{name} deprecated for 5 minutes",
        lambda: ctx.now() > deprecated_at + TYPE_DEPRECATION_SECONDS,
        2 * TYPE_DEPRECATION_SECONDS,
    )
    return answer_of(lambda: iot.delete_thing_type(thingTypeName=name), ctx.scope)


def untyped_thing_attributes(iot: Any, ctx: Context) -> Answer:
    """A thing without a type has at most 3 attributes (AWS IoT developer guide, "Thing types":
    "things not associated with a thing type ... up to three attributes")."""
    attributes = {f"a{i}": "v" for i in range(4)}
    return answer_of(
        lambda: iot.create_thing(
            thingName=ctx.scope("probe-untyped"), attributePayload={"attributes": attributes}
        ),
        ctx.scope,
    )


def sibling_thing_groups(iot: Any, ctx: Context) -> Answer:
    """A thing in two groups under the same parent (AWS IoT developer guide, "Static thing
    groups": "you can't add a thing to two groups which share a common parent"); cousins:
    ``conformance.group_refusals``."""
    parent, first, second = (ctx.scope(f"probe-sib-{n}") for n in ("parent", "a", "b"))
    thing = ctx.scope("probe-sib-thing")
    iot.create_thing_group(thingGroupName=parent, tags=ctx.scope.tags)
    for child in (first, second):
        iot.create_thing_group(thingGroupName=child, parentGroupName=parent, tags=ctx.scope.tags)
    iot.create_thing(thingName=thing)
    iot.add_thing_to_thing_group(thingName=thing, thingGroupName=first)
    return answer_of(
        lambda: iot.add_thing_to_thing_group(thingName=thing, thingGroupName=second), ctx.scope
    )


def delete_thing_group_with_children(iot: Any, ctx: Context) -> Answer:
    """DeleteThingGroup of a group with a child group (AWS IoT developer guide, "Static thing
    groups"; AWS's text as getmoto/moto#2941 quotes it)."""
    parent, child = (ctx.scope(f"probe-del-{n}") for n in ("parent", "child"))
    iot.create_thing_group(thingGroupName=parent, tags=ctx.scope.tags)
    iot.create_thing_group(thingGroupName=child, parentGroupName=parent, tags=ctx.scope.tags)
    return answer_of(lambda: iot.delete_thing_group(thingGroupName=parent), ctx.scope)


def delete_thing_with_principals(iot: Any, ctx: Context) -> Answer:
    """DeleteThing of a thing with a principal attached (AWS IoT API Reference, DeleteThing)."""
    thing = ctx.scope("probe-principal")
    iot.create_thing(thingName=thing)
    certificate = iot.create_keys_and_certificate(setAsActive=False)
    iot.attach_thing_principal(thingName=thing, principal=certificate["certificateArn"])
    return answer_of(lambda: iot.delete_thing(thingName=thing), ctx.scope)


def update_revoked_certificate(iot: Any, ctx: Context) -> Answer:
    """A revoked certificate's status can't be changed (AWS IoT developer guide, "Revoke a
    client certificate")."""
    certificate = iot.create_keys_and_certificate(setAsActive=True)  # its key is dropped here
    cert_id = certificate["certificateId"]
    iot.update_certificate(certificateId=cert_id, newStatus="REVOKED")
    answer = answer_of(
        lambda: iot.update_certificate(certificateId=cert_id, newStatus="ACTIVE"), ctx.scope
    )
    # Certificates carry no tags or prefix for the cleanup to find: delete it here (a revoked
    # certificate may be deleted; the pipeline replicates the delete to the destination).
    iot.delete_certificate(certificateId=cert_id)
    return answer


def delete_policy_just_detached(iot: Any, ctx: Context) -> Answer:
    """DeletePolicy right after its only target was detached (AWS IoT API Reference,
    DeletePolicy: "it can take up to five minutes after a policy is detached before it's ready
    to be deleted"). AWS's delay is "up to": an account may accept at once, which the recorded
    answer then says."""
    name = ctx.scope("probe-detached-policy")
    document = '{"Version": "2012-10-17", "Statement": []}'
    iot.create_policy(policyName=name, policyDocument=document, tags=ctx.scope.tags)
    certificate = iot.create_keys_and_certificate(setAsActive=False)  # its key is dropped here
    iot.attach_policy(policyName=name, target=certificate["certificateArn"])
    iot.detach_policy(policyName=name, target=certificate["certificateArn"])
    answer = answer_of(lambda: iot.delete_policy(policyName=name), ctx.scope)
    # Neither carries a prefix the cleanup finds: delete both here, once AWS lets us.
    if not answer.accepted:
        ctx.let_time_pass(POLICY_DETACH_SECONDS)
        ctx.wait_until(
            f"{name} deletable",
            lambda: (
                answer_of(lambda: iot.delete_policy(policyName=name), ctx.scope).code
                in (None, "ResourceNotFoundException")
            ),
            2 * POLICY_DETACH_SECONDS,
        )
    iot.delete_certificate(certificateId=certificate["certificateId"])
    return answer


def _throwaway_certificate(iot: Any) -> str:
    """A certificate to name as TestAuthorization's principal (its key is dropped here); the
    caller deletes it. Inactive: never usable by a device."""
    arn: str = iot.create_keys_and_certificate(setAsActive=False)["certificateArn"]
    return arn


def _delete_certificate(iot: Any, arn: str) -> None:
    iot.delete_certificate(certificateId=arn.rpartition("/")[2])


def _connect(arn: str) -> dict[str, Any]:
    """A CONNECT authInfo for a client of ``arn``'s region and account."""
    region_account = arn.split(":")[3:5]
    return {
        "actionType": "CONNECT",
        "resources": [f"arn:aws:iot:{':'.join(region_account)}:client/c"],
    }


def test_authorization_auth_infos(iot: Any, ctx: Context) -> Answer:
    """TestAuthorization with 11 authInfos (AWS IoT API Reference, TestAuthorization: "Maximum
    number of 10 items"; botocore checks only the minimum before sending)."""
    arn = _throwaway_certificate(iot)
    answer = answer_of(
        lambda: iot.test_authorization(principal=arn, authInfos=[_connect(arn)] * 11), ctx.scope
    )
    _delete_certificate(iot, arn)
    return answer


def test_authorization_action_type(iot: Any, ctx: Context) -> Answer:
    """TestAuthorization with an authInfo without actionType (optional in the service model)."""
    arn = _throwaway_certificate(iot)
    info = {"resources": _connect(arn)["resources"]}
    answer = answer_of(lambda: iot.test_authorization(principal=arn, authInfos=[info]), ctx.scope)
    _delete_certificate(iot, arn)
    return answer


def test_authorization_unknown_principal(iot: Any, ctx: Context) -> Answer:
    """TestAuthorization for a certificate that does not exist (any more)."""
    arn = _throwaway_certificate(iot)
    _delete_certificate(iot, arn)
    return answer_of(
        lambda: iot.test_authorization(principal=arn, authInfos=[_connect(arn)]), ctx.scope
    )


def shadow_too_large(iot: Any, ctx: Context) -> Answer:
    """An update that makes a shadow's desired and reported state exceed 8 KB ("Diagnosing
    problems with shadows": 8 KB of desired and reported state; the merged result counts)."""
    thing = ctx.scope("probe-shadow")
    data = ctx.client("iot-data")
    half = {"a": "x" * 4096}
    iot.create_thing(thingName=thing)
    try:
        data.update_thing_shadow(
            thingName=thing, payload=json.dumps({"state": {"desired": half}}).encode()
        )
        more = json.dumps({"state": {"reported": {"b": "y" * 4096}}}).encode()
        return answer_of(lambda: data.update_thing_shadow(thingName=thing, payload=more), ctx.scope)
    finally:
        with contextlib.suppress(ClientError):
            data.delete_thing_shadow(thingName=thing)
        iot.delete_thing(thingName=thing)


def publish_payload_too_large(iot: Any, ctx: Context) -> Answer:
    """A publish whose payload is one byte over the message broker's 128 KB (General Reference,
    message broker limits: "AWS IoT rejects messages larger than this size"); retained, so
    nothing is left should AWS accept it, a retained message the next probe run replaces."""
    data = ctx.client("iot-data")
    topic = ctx.scope("probe/retained-big")
    payload = b"x" * (128 * 1024 + 1)
    try:
        return answer_of(lambda: data.publish(topic=topic, payload=payload, retain=True), ctx.scope)
    finally:
        data.publish(topic=topic, payload=b"", retain=True)  # deletes one, were it kept


def retain_on_reserved_topic(iot: Any, ctx: Context) -> Answer:
    """A retained publish to a reserved topic ("You can't publish to a reserved topic with the
    RETAIN flag set", "Using MQTT retained messages"): a shadow's get topic, under the scope's
    own thing name, which exists nowhere."""
    data = ctx.client("iot-data")
    topic = f"$aws/things/{ctx.scope('probe-retain')}/shadow/get"
    return answer_of(lambda: data.publish(topic=topic, payload=b"{}", retain=True), ctx.scope)


PROBES = (
    Probe("update_thing_type_beyond_mqtt5", "UpdateThingType", update_thing_type_beyond_mqtt5),
    Probe("delete_thing_type_not_deprecated", "DeleteThingType", delete_thing_type_not_deprecated),
    Probe("delete_thing_type_too_soon", "DeleteThingType", delete_thing_type_too_soon),
    Probe("delete_thing_type_in_use", "DeleteThingType", delete_thing_type_in_use),
    Probe("untyped_thing_attributes", "CreateThing", untyped_thing_attributes),
    Probe("sibling_thing_groups", "AddThingToThingGroup", sibling_thing_groups),
    Probe("delete_thing_group_with_children", "DeleteThingGroup", delete_thing_group_with_children),
    Probe("delete_thing_with_principals", "DeleteThing", delete_thing_with_principals),
    Probe("update_revoked_certificate", "UpdateCertificate", update_revoked_certificate),
    Probe("delete_policy_just_detached", "DeletePolicy", delete_policy_just_detached),
    Probe("test_authorization_auth_infos", "TestAuthorization", test_authorization_auth_infos),
    Probe("test_authorization_action_type", "TestAuthorization", test_authorization_action_type),
    Probe(
        "test_authorization_unknown_principal",
        "TestAuthorization",
        test_authorization_unknown_principal,
    ),
    *ONBOARDING_PROBES,
    *QUOTA_PROBES,
    Probe("shadow_too_large", "UpdateThingShadow", shadow_too_large),
    Probe("publish_payload_too_large", "Publish", publish_payload_too_large),
    Probe("retain_on_reserved_topic", "Publish", retain_on_reserved_topic),
    *GROUP_PROBES,  # after dynamic_group_without_index, which needs a region without any
)
PROBES_BY_NAME = {probe.name: probe for probe in PROBES}
