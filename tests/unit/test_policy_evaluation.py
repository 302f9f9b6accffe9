"""Unit tests for sandbox.emulation.authorization against the AWS documentation's own examples.

Each test names its source: a page of the AWS IoT Core Developer Guide
(https://docs.aws.amazon.com/iot/latest/developerguide/<page>) and its section, or of the IAM
User Guide (https://docs.aws.amazon.com/IAM/latest/UserGuide/<page>) whose conventions AWS IoT
policies follow. The policies are the pages' examples as printed (account 123456789012,
us-east-1); the requests are the cases their prose describes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.emulation.authorization import (
    Answer,
    Certificate,
    Connection,
    Policy,
    PolicyNotEvaluatedError,
    Request,
    StatementRef,
    Thing,
    evaluate,
)

ARN = "arn:aws:iot:us-east-1:123456789012"
ACTIVE = Certificate("ACTIVE")


def policy(
    *statements: dict[str, Any], name: str = "p", version: str | None = "2012-10-17"
) -> Policy:
    document: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        document["Version"] = version
    return Policy(name, f"{ARN}:policy/{name}", json.dumps(document))


def allow(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def device(
    name: str, type_name: str | None = None, certificate: Certificate = ACTIVE, **attributes: str
) -> Connection:
    """A registered device: its client id is its thing's name, and the thing is attached."""
    return Connection(certificate, name, Thing(name, type_name, attributes))


def client(client_id: str | None, certificate: Certificate = ACTIVE) -> Connection:
    """An unregistered device (or a client id naming no attached thing)."""
    return Connection(certificate, client_id)


def ask(
    policies: Policy | list[Policy], connection: Connection, action: str, resource: str
) -> Answer:
    listed = [policies] if isinstance(policies, Policy) else policies
    return evaluate(listed, connection, Request(action, resource))


def decision(*args: Any) -> str:
    return ask(*args).decision


# ---- connect-policy.html, "Connect policy examples" ---------------------------------------------


def test_connect_with_one_client_id() -> None:
    # "grants permission to connect to AWS IoT Core with client ID client1"
    p = policy(allow(["iot:Connect"], [f"{ARN}:client/client1"]))
    assert decision(p, client("client1"), "iot:Connect", f"{ARN}:client/client1") == "ALLOWED"
    assert decision(p, client("client2"), "iot:Connect", f"{ARN}:client/client2") == "IMPLICIT_DENY"


def test_an_explicit_deny_wins_over_an_allow() -> None:
    # "denies permission to client IDs client1 and client2 ..., while allowing devices to connect
    # using a client ID that matches the name of a thing registered in the AWS IoT Core registry"
    p = policy(
        deny(["iot:Connect"], [f"{ARN}:client/client1", f"{ARN}:client/client2"]),
        allow(["iot:Connect"], [f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"]),
    )
    denied = ask(p, device("client1"), "iot:Connect", f"{ARN}:client/client1")
    assert denied.decision == "EXPLICIT_DENY"
    assert denied.statements == (StatementRef("p", 0),)
    allowed = ask(p, device("sensor-7"), "iot:Connect", f"{ARN}:client/sensor-7")
    assert allowed.decision == "ALLOWED"
    assert allowed.statements == (StatementRef("p", 1),)


def test_an_explicit_deny_in_one_policy_wins_over_an_allow_in_another() -> None:
    # API Reference, TestAuthorization, AuthResult.authDecision: "An explicit deny statement can
    # override multiple allow statements."
    allows = policy(allow("iot:Connect", "*"), name="allows")
    denies = policy(deny("iot:Connect", f"{ARN}:client/client1"), name="denies")
    silent = policy(allow("iot:Publish", "*"), name="silent")
    answer = ask(
        [allows, denies, silent], client("client1"), "iot:Connect", f"{ARN}:client/client1"
    )
    assert answer.decision == "EXPLICIT_DENY"
    assert [p.name for p in answer.policies("ALLOWED")] == ["allows"]
    assert [p.name for p in answer.policies("EXPLICIT_DENY")] == ["denies"]
    assert [p.name for p in answer.policies("IMPLICIT_DENY")] == ["silent"]
    assert answer.reason == "denied by denies statement 0"


def test_connect_as_a_registered_device_only() -> None:
    # "Registered devices (3)": connect with the thing name as client id
    p = policy(allow(["iot:Connect"], [f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"]))
    assert decision(p, device("thing1"), "iot:Connect", f"{ARN}:client/thing1") == "ALLOWED"
    # A client id naming no thing attached to the certificate: the variable does not resolve.
    unregistered = ask(p, client("thing1"), "iot:Connect", f"{ARN}:client/thing1")
    assert unregistered.decision == "IMPLICIT_DENY"
    assert unregistered.missing == ("iot:Connection.Thing.ThingName",)


# ---- pub-sub-policy.html, "Publish/Subscribe policy examples" -----------------------------------


def test_publish_under_the_thing_name() -> None:
    # "Registered devices (5)": "publish to any topic prefixed by the thing name"
    p = policy(
        allow(["iot:Connect"], [f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"]),
        allow(["iot:Publish"], [f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}/*"]),
    )
    thing1 = device("thing1")
    assert decision(p, thing1, "iot:Publish", f"{ARN}:topic/thing1/telemetry/a") == "ALLOWED"
    assert decision(p, thing1, "iot:Publish", f"{ARN}:topic/thing2/telemetry") == "IMPLICIT_DENY"
    assert decision(p, thing1, "iot:Subscribe", f"{ARN}:topicfilter/thing1/a") == "IMPLICIT_DENY"


def test_publish_under_the_client_id() -> None:
    # "Unregistered devices (5)": "publish to any topic prefixed by the client ID"
    p = policy(
        allow(["iot:Connect"], [f"{ARN}:client/client1", f"{ARN}:client/client2"]),
        allow(["iot:Publish"], [f"{ARN}:topic/${{iot:ClientId}}/*"]),
    )
    assert decision(p, client("client2"), "iot:Publish", f"{ARN}:topic/client2/x") == "ALLOWED"
    assert (
        decision(p, client("client2"), "iot:Publish", f"{ARN}:topic/client1/x") == "IMPLICIT_DENY"
    )


def test_subscribe_and_receive_with_a_trailing_wildcard() -> None:
    # "Registered devices (6)": topics "thing1/room1, thing1/room2, and so on"
    p = policy(
        allow(["iot:Subscribe"], [f"{ARN}:topicfilter/${{iot:Connection.Thing.ThingName}}/room*"]),
        allow(["iot:Receive"], [f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}/room*"]),
    )
    thing1 = device("thing1")
    assert decision(p, thing1, "iot:Subscribe", f"{ARN}:topicfilter/thing1/room2") == "ALLOWED"
    assert decision(p, thing1, "iot:Receive", f"{ARN}:topic/thing1/room1") == "ALLOWED"
    assert decision(p, thing1, "iot:Receive", f"{ARN}:topic/thing1/kitchen") == "IMPLICIT_DENY"


def test_mqtt_wildcards_are_literal_and_star_matches_across_levels() -> None:
    # "Registered devices (4)": "+ is treated as a literal string ... only the string
    # some/+/topic matches"; with "topicfilter/some/*/topic", "some/string1/topic" matches
    plus = policy(allow(["iot:Subscribe"], [f"{ARN}:topicfilter/some/+/topic"]))
    star = policy(allow(["iot:Subscribe"], [f"{ARN}:topicfilter/some/*/topic"]))
    thing = device("thing1")
    assert decision(plus, thing, "iot:Subscribe", f"{ARN}:topicfilter/some/+/topic") == "ALLOWED"
    assert (
        decision(plus, thing, "iot:Subscribe", f"{ARN}:topicfilter/some/x/topic") == "IMPLICIT_DENY"
    )
    assert (
        decision(star, thing, "iot:Subscribe", f"{ARN}:topicfilter/some/string1/topic") == "ALLOWED"
    )
    # "the * character is not confined to a single topic level as the + character is"
    assert decision(star, thing, "iot:Subscribe", f"{ARN}:topicfilter/some/a/b/topic") == "ALLOWED"


def test_question_mark_matches_exactly_one_character() -> None:
    # The wildcard table: "topic/some/?????/topic" and "topicfilter/some/sensor???/topic"
    p = policy(
        allow("iot:Publish", f"{ARN}:topic/some/?????/topic"),
        allow("iot:Subscribe", f"{ARN}:topicfilter/some/sensor???/topic"),
    )
    thing = device("t")
    assert decision(p, thing, "iot:Publish", f"{ARN}:topic/some/abcde/topic") == "ALLOWED"
    assert decision(p, thing, "iot:Publish", f"{ARN}:topic/some/abcd/topic") == "IMPLICIT_DENY"
    assert decision(p, thing, "iot:Publish", f"{ARN}:topic/some/abcdef/topic") == "IMPLICIT_DENY"
    assert (
        decision(p, thing, "iot:Subscribe", f"{ARN}:topicfilter/some/sensor123/topic") == "ALLOWED"
    )
    assert (
        decision(p, thing, "iot:Subscribe", f"{ARN}:topicfilter/some/sensor12/topic")
        == "IMPLICIT_DENY"
    )


def test_all_topics_but_one() -> None:
    # "Unregistered devices (9)": publish under the client id "except for one topic ending
    # with bar"
    p = policy(
        allow(["iot:Publish"], [f"{ARN}:topic/${{iot:ClientId}}/*"]),
        deny(["iot:Publish"], [f"{ARN}:topic/${{iot:ClientId}}/bar"]),
    )
    assert decision(p, client("client1"), "iot:Publish", f"{ARN}:topic/client1/foo") == "ALLOWED"
    assert (
        decision(p, client("client1"), "iot:Publish", f"{ARN}:topic/client1/bar") == "EXPLICIT_DENY"
    )


def test_not_resource_receives_everything_but_the_restricted_topics() -> None:
    # "To allow a device to receive messages from all topics under a/ except a/restricted/..."
    p = policy(
        {
            "Effect": "Allow",
            "Action": "iot:Receive",
            "NotResource": f"{ARN}:topic/a/restricted/*",
        }
    )
    thing = device("t")
    assert decision(p, thing, "iot:Receive", f"{ARN}:topic/a/open") == "ALLOWED"
    assert decision(p, thing, "iot:Receive", f"{ARN}:topic/a/restricted/x") == "IMPLICIT_DENY"


def test_a_deny_on_receive_leaves_subscribe_allowed() -> None:
    # "denies permissions for devices to receive on a topic device/update and gives permissions
    # for the devices to subscribe"
    p = policy(
        allow("iot:Subscribe", f"{ARN}:topicfilter/device/update"),
        deny("iot:Receive", f"{ARN}:topic/device/update"),
    )
    thing = device("t")
    assert decision(p, thing, "iot:Subscribe", f"{ARN}:topicfilter/device/update") == "ALLOWED"
    assert decision(p, thing, "iot:Receive", f"{ARN}:topic/device/update") == "EXPLICIT_DENY"


def test_an_undocumented_variable_of_an_example_is_refused() -> None:
    # "Registered devices (8)" publishes to "topic/my/topic/${iot:Thing.ThingName}", a variable
    # none of the guide's variable lists has: refused, not guessed.
    p = policy(allow(["iot:Publish"], [f"{ARN}:topic/my/topic/${{iot:Thing.ThingName}}"]))
    with pytest.raises(PolicyNotEvaluatedError, match=r"iot:Thing\.ThingName") as refused:
        ask(p, device("t"), "iot:Publish", f"{ARN}:topic/my/topic/t")
    assert (refused.value.policy, refused.value.statement) == ("p", 0)


# ---- thing-policy-examples.html / thing-policy-variables.html -----------------------------------


def test_connect_only_when_the_certificate_is_attached_to_the_thing() -> None:
    # "allows a device to connect if the certificate ... is attached to the thing"
    p = policy(
        allow(
            ["iot:Connect"],
            ["*"],
            Condition={"Bool": {"iot:Connection.Thing.IsAttached": ["true"]}},
        )
    )
    assert decision(p, device("thing1"), "iot:Connect", f"{ARN}:client/thing1") == "ALLOWED"
    assert decision(p, client("thing1"), "iot:Connect", f"{ARN}:client/thing1") == "IMPLICIT_DENY"
    # Without a client id there is no thing ("Thing name is taken as client Id"): a missing key.
    anonymous = ask(p, client(None), "iot:Connect", f"{ARN}:client/x")
    assert anonymous.decision == "IMPLICIT_DENY"
    assert anonymous.missing == ("iot:Connection.Thing.IsAttached",)


def test_publish_when_type_and_attribute_match() -> None:
    # "allows a device to publish if the certificate is attached to a thing with a particular
    # thing type and if the thing has an attribute of attributeName with value attributeValue"
    p = policy(
        allow(
            ["iot:Publish"],
            f"{ARN}:topic/device/stats",
            Condition={
                "StringEquals": {
                    "iot:Connection.Thing.Attributes[attributeName]": "attributeValue",
                    "iot:Connection.Thing.ThingTypeName": "Thing_Type_Name",
                },
                "Bool": {"iot:Connection.Thing.IsAttached": "true"},
            },
        )
    )
    topic = f"{ARN}:topic/device/stats"
    right = device("t", "Thing_Type_Name", attributeName="attributeValue")
    assert decision(p, right, "iot:Publish", topic) == "ALLOWED"
    wrong_type = device("t", "Other_Type", attributeName="attributeValue")
    assert decision(p, wrong_type, "iot:Publish", topic) == "IMPLICIT_DENY"
    wrong_value = device("t", "Thing_Type_Name", attributeName="other")
    assert decision(p, wrong_value, "iot:Publish", topic) == "IMPLICIT_DENY"
    untyped = ask(p, device("t", None, attributeName="attributeValue"), "iot:Publish", topic)
    assert untyped.decision == "IMPLICIT_DENY"
    assert "iot:Connection.Thing.ThingTypeName" in untyped.missing


def test_publish_under_a_thing_attribute() -> None:
    # "allows a device to publish to a topic that starts with an attribute of the thing. If the
    # device certificate is not associated with the thing, this variable won't be resolved"
    p = policy(
        allow(["iot:Publish"], f"{ARN}:topic/${{iot:Connection.Thing.Attributes[attributeName]}}/*")
    )
    assert (
        decision(p, device("t", attributeName="site1"), "iot:Publish", f"{ARN}:topic/site1/x")
        == "ALLOWED"
    )
    unattached = ask(p, client("t"), "iot:Publish", f"{ARN}:topic/site1/x")
    assert unattached.decision == "IMPLICIT_DENY"
    assert unattached.missing == ("iot:Connection.Thing.Attributes[attributeName]",)


def test_an_unresolved_variable_is_left_as_written_and_matches_only_itself() -> None:
    # cert-policy-variables.html, "X.509 Certificate policy variable limitations": "leaving the
    # ${policy-variable} text in the policy document. This might cause authorization failure."
    p = policy(
        deny("iot:Publish", f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}"),
        allow("iot:Publish", "*"),
    )
    unregistered = client("c")
    assert decision(p, unregistered, "iot:Publish", f"{ARN}:topic/c") == "ALLOWED"
    literal = f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}"
    assert decision(p, unregistered, "iot:Publish", literal) == "EXPLICIT_DENY"


# ---- basic-policy-variables.html / iot-policy-variables.html ------------------------------------


def test_client_id_variable_and_a_missing_client_id() -> None:
    # "Basic AWS IoT Core policy variables": connect as and publish under ${iot:ClientId}
    p = policy(
        allow(["iot:Connect"], [f"{ARN}:client/${{iot:ClientId}}"]),
        allow(["iot:Publish"], [f"{ARN}:topic/my/topic/${{iot:ClientId}}"]),
    )
    assert (
        decision(p, client("100-234-3456"), "iot:Connect", f"{ARN}:client/100-234-3456")
        == "ALLOWED"
    )
    assert decision(p, client("a"), "iot:Publish", f"{ARN}:topic/my/topic/a") == "ALLOWED"
    missing = ask(p, client(None), "iot:Publish", f"{ARN}:topic/my/topic/a")
    assert (missing.decision, missing.missing) == ("IMPLICIT_DENY", ("iot:ClientId",))


def test_special_characters_stand_for_themselves() -> None:
    # "predefined policy variables with fixed values ... $(*), $(?), and $($)"; IAM User Guide,
    # reference_policies_variables.html, "Special characters": ${*}, ${?}, ${$}
    p = policy(allow("iot:Publish", f"{ARN}:topic/price/${{$}}/${{*}}/${{?}}"))
    thing = device("t")
    assert decision(p, thing, "iot:Publish", f"{ARN}:topic/price/$/*/?") == "ALLOWED"
    assert decision(p, thing, "iot:Publish", f"{ARN}:topic/price/$/x/y") == "IMPLICIT_DENY"


def test_a_client_id_holding_a_wildcard_is_refused_where_substituted() -> None:
    # basic-policy-variables.html warns about "+" (a literal in policies); what a substituted
    # "*" does is not documented.
    p = policy(allow("iot:Publish", f"{ARN}:topic/${{iot:ClientId}}/x"))
    with pytest.raises(PolicyNotEvaluatedError, match="wildcard"):
        ask(p, client("a*"), "iot:Publish", f"{ARN}:topic/ab/x")
    assert decision(p, client("+"), "iot:Publish", f"{ARN}:topic/+/x") == "ALLOWED"


# ---- cert-policy-variables.html, "X.509 Certificate AWS IoT Core policy variables" ---------------


def organization_policy() -> Policy:
    # "Registered devices (2)": publish only with Certificate.Subject.Organization "Example
    # Corp" or "AnyCompany"
    return policy(
        allow(["iot:Connect"], [f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"]),
        allow(
            ["iot:Publish"],
            [f"{ARN}:topic/my/topic/${{iot:Connection.Thing.ThingName}}"],
            Condition={
                "ForAllValues:StringEquals": {
                    "iot:Certificate.Subject.Organization.List": ["Example Corp", "AnyCompany"]
                }
            },
        ),
    )


def test_certificate_organization_list() -> None:
    topic = f"{ARN}:topic/my/topic/t"
    ours = Certificate("ACTIVE", subject={"Organization": ("Example Corp",)})
    theirs = Certificate("ACTIVE", subject={"Organization": ("Example Corp", "Other")})
    assert (
        decision(organization_policy(), device("t", certificate=ours), "iot:Publish", topic)
        == "ALLOWED"
    )
    assert (
        decision(organization_policy(), device("t", certificate=theirs), "iot:Publish", topic)
        == "IMPLICIT_DENY"
    )


def test_certificate_values_by_index() -> None:
    # "iot:Certificate.Subject.Country.1 is replaced by the second country name ... If you
    # specify an index value that does not exist ... no substitution is made and authorization
    # fails"
    certificate = Certificate("ACTIVE", subject={"Country": ("US", "DE")})
    p = policy(
        allow(
            "iot:Publish",
            f"{ARN}:topic/${{iot:Certificate.Subject.Country}}/${{iot:Certificate.Subject.Country.1}}",
        )
    )
    connection = client("c", certificate)
    assert decision(p, connection, "iot:Publish", f"{ARN}:topic/US/DE") == "ALLOWED"
    third = policy(allow("iot:Publish", f"{ARN}:topic/${{iot:Certificate.Subject.Country.2}}"))
    answer = ask(third, connection, "iot:Publish", f"{ARN}:topic/US")
    assert (answer.decision, answer.missing) == (
        "IMPLICIT_DENY",
        ("iot:Certificate.Subject.Country.2",),
    )


def test_certificate_values_with_wildcards_are_not_substituted_and_specials_are_escaped() -> None:
    # "Wildcards: If wildcard characters are present in certificate attributes, the policy
    # variable is not replaced"; "Special Characters: ... must be prefixed with a backslash"
    wild = Certificate("ACTIVE", subject={"CommonName": ("dev*",)})
    special = Certificate("ACTIVE", subject={"CommonName": ("O=Example",)})
    p = policy(allow("iot:Connect", f"{ARN}:client/${{iot:Certificate.Subject.CommonName}}"))
    assert decision(p, client("x", wild), "iot:Connect", f"{ARN}:client/dev1") == "IMPLICIT_DENY"
    assert (
        decision(p, client("x", special), "iot:Connect", f"{ARN}:client/O\\=Example") == "ALLOWED"
    )


def test_a_certificate_variable_without_its_attribute_is_refused() -> None:
    # "If your X.509 certificate doesn't include a particular certificate attribute but the
    # corresponding certificate policy variable is used ... might lead to unexpected behavior"
    p = policy(allow("iot:Connect", f"{ARN}:client/${{iot:Certificate.Subject.Title}}"))
    with pytest.raises(PolicyNotEvaluatedError, match="no Subject Title"):
        ask(p, client("x"), "iot:Connect", f"{ARN}:client/x")


# ---- activate-or-deactivate-device-cert.html ----------------------------------------------------


@pytest.mark.parametrize("status", ["INACTIVE", "REVOKED", "PENDING_TRANSFER"])
def test_a_certificate_that_is_not_active_is_denied_everything(status: str) -> None:
    # "AWS IoT verifies that a client certificate is active when it authenticates a connection"
    p = policy(allow("iot:*", "*"))
    answer = ask(p, device("t", certificate=Certificate(status)), "iot:Connect", f"{ARN}:client/t")
    assert answer.decision == "IMPLICIT_DENY"
    assert status in answer.reason
    assert [v.decision for v in answer.verdicts] == ["IMPLICIT_DENY"]


# ---- IAM conventions (iot-policies.html: "They follow the same conventions as IAM policies") ----


def test_actions_are_case_insensitive_and_take_wildcards() -> None:
    # IAM User Guide, reference_policies_elements_action.html: "The prefix and the action name
    # are case insensitive"
    thing = device("t")
    assert (
        decision(policy(allow("IOT:connect", "*")), thing, "iot:Connect", f"{ARN}:client/t")
        == "ALLOWED"
    )
    assert (
        decision(policy(allow("iot:Pub*", "*")), thing, "iot:Publish", f"{ARN}:topic/a")
        == "ALLOWED"
    )
    assert (
        decision(policy(allow("iot:Pub*", "*")), thing, "iot:Subscribe", f"{ARN}:topicfilter/a")
        == "IMPLICIT_DENY"
    )


def test_resources_are_case_sensitive() -> None:
    p = policy(allow("iot:Publish", f"{ARN}:topic/Telemetry"))
    assert decision(p, device("t"), "iot:Publish", f"{ARN}:topic/telemetry") == "IMPLICIT_DENY"


def test_not_action_matches_every_other_action() -> None:
    # IAM User Guide, reference_policies_elements_notaction.html
    p = policy({"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"})
    assert decision(p, device("t"), "iot:Subscribe", f"{ARN}:topicfilter/a") == "ALLOWED"
    assert decision(p, device("t"), "iot:Publish", f"{ARN}:topic/a") == "IMPLICIT_DENY"


def test_a_policy_naming_another_region_allows_nothing_here() -> None:
    # The question a DR region asks: a resource ARN is matched as written, region included.
    p = policy(allow("iot:Connect", f"{ARN}:client/*"))
    assert (
        decision(p, device("t"), "iot:Connect", "arn:aws:iot:eu-west-1:123456789012:client/t")
        == "IMPLICIT_DENY"
    )


def test_negated_operators_on_a_missing_key_hold() -> None:
    # IAM User Guide, reference_policies_elements_condition_operators.html: a missing key makes a
    # condition false, "If the policy condition requires that the key is not matched, such as
    # StringNotLike ... the condition is true"; ...IfExists holds when the key is absent
    unregistered = client("c")
    resource = f"{ARN}:client/c"

    def with_condition(condition: dict[str, Any]) -> str:
        return decision(
            policy(allow("iot:Connect", "*", Condition=condition)),
            unregistered,
            "iot:Connect",
            resource,
        )

    key = "iot:Connection.Thing.ThingTypeName"
    assert with_condition({"StringEquals": {key: "sensor"}}) == "IMPLICIT_DENY"
    assert with_condition({"StringNotEquals": {key: "sensor"}}) == "ALLOWED"
    assert with_condition({"StringEqualsIfExists": {key: "sensor"}}) == "ALLOWED"
    assert with_condition({"Null": {key: "true"}}) == "ALLOWED"
    assert with_condition({"Null": {key: "false"}}) == "IMPLICIT_DENY"


def test_condition_values_or_and_keys_and() -> None:
    # IAM User Guide, reference_policies_multi-value-conditions.html: values OR, keys AND,
    # negated operators NOR
    thing = device("t", "sensor", site="s1")
    resource = f"{ARN}:client/t"

    def with_condition(condition: dict[str, Any]) -> str:
        return decision(
            policy(allow("iot:Connect", "*", Condition=condition)), thing, "iot:Connect", resource
        )

    site, kind = "iot:Connection.Thing.Attributes[site]", "iot:Connection.Thing.ThingTypeName"
    assert with_condition({"StringEquals": {site: ["s0", "s1"]}}) == "ALLOWED"
    assert with_condition({"StringEquals": {site: "s1", kind: "camera"}}) == "IMPLICIT_DENY"
    assert with_condition({"StringNotEquals": {site: ["s0", "s1"]}}) == "IMPLICIT_DENY"
    assert with_condition({"StringLike": {site: "s?"}}) == "ALLOWED"
    assert with_condition({"StringEqualsIgnoreCase": {kind: "SENSOR"}}) == "ALLOWED"
    assert (
        with_condition({"StringEquals": {kind: "${iot:Connection.Thing.Attributes[kind]}"}})
        == "IMPLICIT_DENY"
    )


# ---- refusals: what the evaluator does not evaluate is never allowed by default -------------------


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        (
            allow("iot:Connect", "*", Condition={"NumericLessThan": {"iot:ClientId": "5"}}),
            "NumericLessThan",
        ),
        (
            allow("iot:Connect", "*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            "IpAddress",
        ),
        (
            allow("iot:Connect", "*", Condition={"StringEquals": {"aws:SourceIp": "10.0.0.1"}}),
            "IP address",
        ),
        # connect-policy.html, "MQTT persistent sessions policy examples"
        (
            allow(
                "iot:Connect",
                "*",
                Condition={
                    "ForAllValues:StringEquals": {"iot:ConnectAttributes": ["PersistentConnect"]}
                },
            ),
            "connect attributes",
        ),
        (
            allow("iot:Connect", "*", Condition={"StringEquals": {"iot:Unknown": "x"}}),
            "iot:Unknown",
        ),
        (
            allow(
                "iot:Connect", f"{ARN}:client/${{iot:Certificate.Subject.AlternativeName.DNSName}}"
            ),
            "alternative names",
        ),
        (deny("iot:Connect", f"{ARN}:client/${{aws:username}}"), "aws:username"),
        (
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*", "Principal": "*"},
            "Principal",
        ),
        ({"Effect": "Maybe", "Action": "iot:Connect", "Resource": "*"}, "Allow nor Deny"),
        ({"Effect": "Allow", "Action": "iot:Connect"}, "Resource or NotResource"),
        (allow("iot:${iot:ClientId}", "*"), "in an action"),
    ],
)
def test_what_is_not_evaluated_is_refused(statement: dict[str, Any], why: str) -> None:
    with pytest.raises(PolicyNotEvaluatedError, match=why):
        ask(policy(statement), device("t"), "iot:Connect", f"{ARN}:client/t")


def test_a_statement_for_other_actions_is_not_looked_into() -> None:
    # Its condition could not change the answer for iot:Connect: no refusal.
    p = policy(
        allow("iot:Connect", "*"),
        allow("iot:Publish", "*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
    )
    assert decision(p, device("t"), "iot:Connect", f"{ARN}:client/t") == "ALLOWED"
    with pytest.raises(PolicyNotEvaluatedError):
        ask(p, device("t"), "iot:Publish", f"{ARN}:topic/a")


def test_a_document_that_is_not_json_is_refused() -> None:
    broken = Policy("broken", f"{ARN}:policy/broken", "{not json")
    with pytest.raises(PolicyNotEvaluatedError, match="policy broken: not JSON"):
        ask(broken, device("t"), "iot:Connect", f"{ARN}:client/t")


def test_a_document_that_repeats_a_key_is_refused() -> None:
    # json.loads keeps the last "Effect" (Allow); AWS IoT's choice is unpublished: no verdict.
    document = '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iot:*", '
    document += '"Resource": "*", "Effect": "Allow"}]}'
    twice = Policy("twice", f"{ARN}:policy/twice", document)
    with pytest.raises(
        PolicyNotEvaluatedError, match=r"twice: repeated keys Statement\[0\]\.Effect"
    ):
        ask(twice, device("t"), "iot:Connect", f"{ARN}:client/t")


def test_variables_without_version_2012_10_17_are_refused() -> None:
    # IAM User Guide, reference_policies_elements_version.html: without Version 2012-10-17
    # variables "aren't recognized as variables"; AWS IoT does not document it
    p = policy(allow("iot:Connect", f"{ARN}:client/${{iot:ClientId}}"), version=None)
    with pytest.raises(PolicyNotEvaluatedError, match="Version"):
        ask(p, client("c"), "iot:Connect", f"{ARN}:client/c")
    plain = policy(allow("iot:Connect", f"{ARN}:client/c"), version=None)
    assert decision(plain, client("c"), "iot:Connect", f"{ARN}:client/c") == "ALLOWED"


def test_a_wildcard_facing_a_colon_is_refused_where_the_readings_disagree() -> None:
    # The guide's "*": "any combination of characters"; IAM's: within an ARN segment unless last
    # in it (reference_policies_elements_resource.html, "Using wildcards in resource ARNs")
    p = policy(allow("iot:Publish", f"{ARN}:topic/a/*/b"))
    assert decision(p, device("t"), "iot:Publish", f"{ARN}:topic/a/x/y/b") == "ALLOWED"
    with pytest.raises(PolicyNotEvaluatedError, match="disagree"):
        ask(p, device("t"), "iot:Publish", f"{ARN}:topic/a/x:y/b")
    # A trailing * crosses colons in both readings.
    anything = policy(allow("iot:Publish", "arn:aws:iot:*"))
    assert decision(anything, device("t"), "iot:Publish", f"{ARN}:topic/a:b") == "ALLOWED"


def test_statements_are_named_by_index_and_sid() -> None:
    p = policy(allow("iot:Connect", "*", Sid="ConnectAnywhere"), name="device")
    answer = ask(p, device("t"), "iot:Connect", f"{ARN}:client/t")
    assert answer.statements == (StatementRef("device", 0, "ConnectAnywhere"),)
    assert answer.reason == "allowed by device statement 0 (ConnectAnywhere)"
