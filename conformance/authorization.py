"""TestAuthorization's answers to one device's questions, asked of the sandbox or an account.

``Device.create`` makes a device the way a fleet has them, under the scope's prefix, in the
source region: a typed thing with a ``site`` attribute in a child thing group, its own
certificate (CreateKeysAndCertificate; the key is dropped), a device policy on the certificate
using the thing policy variables, an explicit Deny, conditions, and a policy on the parent group.
``ask`` puts ``QUESTIONS`` to TestAuthorization (one call per client id: AWS takes up to 10
authInfos a call); ``deactivate`` then asks again with the certificate INACTIVE. The answers are
compared with the recorded answers (``conformance/recorded-answers.json``, ``authorizations``):
the sandbox's, documented and unverified, until a run on an account records AWS's.

On an account, "Changes made to a policy can take a few minutes to become effective because of
how AWS IoT caches the policy documents" (AWS IoT Developer Guide, iot-policies.html): the first
questions are asked again until the device's policy is seen in effect (bounded), and after the
deactivation until the answer changes (bounded too: an answer that never changes is recorded as
it is, for the comparison to report).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from conformance.run import Scope
from conformance.target import WaitTimeoutError

POLICY_CACHE_SECONDS = 300  # "a few minutes" (guide, iot-policies.html): an upper bound we chose
POLICY_DETACH_SECONDS = 300  # AWS IoT API Reference, DeletePolicy: "up to five minutes"
OTHER_REGION = "ap-southeast-2"  # a region no question's policy names
THING, OTHER = "{thing}", "{other}"  # client ids of the questions: the device's thing, another


@dataclass(frozen=True)
class Question:
    """One authInfo: an action on a resource (``{arn}`` is the source's ``arn:aws:iot:R:A``,
    ``{thing}`` the thing's name), asked with a client id."""

    name: str
    action_type: str
    resource: str
    client_id: str = THING
    inactive: bool = False  # asked after the certificate is deactivated


QUESTIONS = (
    Question("connect-as-thing", "CONNECT", "{arn}:client/{thing}"),
    Question("publish-own-site", "PUBLISH", "{arn}:topic/s1/temperature"),
    Question("publish-denied", "PUBLISH", "{arn}:topic/s1/admin"),
    Question("publish-other-site", "PUBLISH", "{arn}:topic/s2/temperature"),
    Question("subscribe-typed-thing", "SUBSCRIBE", "{arn}:topicfilter/{thing}/commands"),
    Question("subscribe-group-policy", "SUBSCRIBE", "{arn}:topicfilter/fleet/alerts"),
    Question("receive-attached", "RECEIVE", "{arn}:topic/anything"),
    Question(
        "publish-other-region", "PUBLISH", f"arn:aws:iot:{OTHER_REGION}:{{account}}:topic/s1/t"
    ),
    Question("connect-other-client-id", "CONNECT", "{arn}:client/{other}", client_id=OTHER),
    Question(
        "subscribe-group-policy-other-client-id",
        "SUBSCRIBE",
        "{arn}:topicfilter/fleet/alerts",
        client_id=OTHER,
    ),
    Question("connect-inactive", "CONNECT", "{arn}:client/{thing}", inactive=True),
)
QUESTIONS_BY_NAME = {question.name: question for question in QUESTIONS}


@dataclass(frozen=True)
class AuthAnswer:
    """One AuthResult, its policies by their role in the scenario (``device``, ``fleet``)."""

    decision: str
    allowed: tuple[str, ...] = ()
    explicit_deny: tuple[str, ...] = ()
    implicit_deny: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # recorded for people; its form is not documented

    def to_json(self) -> dict[str, Any]:
        return {
            "authDecision": self.decision,
            "allowed": list(self.allowed),
            "explicitDeny": list(self.explicit_deny),
            "implicitDeny": list(self.implicit_deny),
            "missingContextValues": list(self.missing),
        }

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> AuthAnswer:
        return cls(
            entry["authDecision"],
            tuple(entry["allowed"]),
            tuple(entry["explicitDeny"]),
            tuple(entry["implicitDeny"]),
            tuple(entry.get("missingContextValues") or ()),
        )

    def differences(self, recorded: AuthAnswer) -> list[str]:
        """What this answer says that ``recorded`` does not (policy lists as sets)."""
        found = []
        if self.decision != recorded.decision:
            found.append(f"authDecision: answered {self.decision}, recorded {recorded.decision}")
        for label, mine, theirs in (
            ("allowed", self.allowed, recorded.allowed),
            ("explicitDeny", self.explicit_deny, recorded.explicit_deny),
            ("implicitDeny", self.implicit_deny, recorded.implicit_deny),
        ):
            if sorted(mine) != sorted(theirs):
                found.append(f"{label}: answered {sorted(mine)}, recorded {sorted(theirs)}")
        return found


def _statement(effect: str, action: str, resource: str, **extra: Any) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource, **extra}


@dataclass(frozen=True)
class Device:
    """The scenario's device in one region: its names and its certificate."""

    scope: Scope
    certificate_arn: str

    @property
    def thing(self) -> str:
        return self.scope("device")

    @property
    def other(self) -> str:
        return self.scope("someone-else")

    @property
    def arn_prefix(self) -> str:
        """``arn:aws:iot:<region>:<account>`` of the certificate, hence of the device."""
        return ":".join(self.certificate_arn.split(":")[:5])

    @property
    def account(self) -> str:
        return self.certificate_arn.split(":")[4]

    def policy(self, role: str) -> str:
        return self.scope(f"{role}-policy")

    def group(self, role: str) -> str:
        return self.scope(role)

    @classmethod
    def create(cls, iot: Any, scope: Scope) -> Device:
        iot.create_thing_type(thingTypeName=scope("sensor"), tags=scope.tags)
        iot.create_thing_group(thingGroupName=scope("fleet"), tags=scope.tags)
        iot.create_thing_group(
            thingGroupName=scope("floor"), parentGroupName=scope("fleet"), tags=scope.tags
        )
        iot.create_thing(
            thingName=scope("device"),
            thingTypeName=scope("sensor"),
            attributePayload={"attributes": {"site": "s1"}},
        )
        iot.add_thing_to_thing_group(thingName=scope("device"), thingGroupName=scope("floor"))
        arn = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
        device = cls(scope, arn)
        iot.attach_thing_principal(thingName=device.thing, principal=arn)
        iot.create_policy(
            policyName=device.policy("device"),
            policyDocument=device.document("device"),
            tags=scope.tags,
        )
        iot.attach_policy(policyName=device.policy("device"), target=arn)
        iot.create_policy(
            policyName=device.policy("fleet"),
            policyDocument=device.document("fleet"),
            tags=scope.tags,
        )
        iot.attach_policy(policyName=device.policy("fleet"), target=device.group_arn("fleet"))
        return device

    def group_arn(self, role: str) -> str:
        return f"{self.arn_prefix}:thinggroup/{self.group(role)}"

    def document(self, role: str) -> str:
        arn = self.arn_prefix
        thing_name, site = (
            "${iot:Connection.Thing.ThingName}",
            "${iot:Connection.Thing.Attributes[site]}",
        )
        statements = {
            # AWS IoT Developer Guide: connect-policy.html, pub-sub-policy.html,
            # thing-policy-examples.html (the variables, the Deny, the conditions).
            "device": [
                _statement("Allow", "iot:Connect", f"{arn}:client/{thing_name}"),
                _statement("Allow", "iot:Publish", f"{arn}:topic/{site}/*"),
                _statement("Deny", "iot:Publish", f"{arn}:topic/{site}/admin"),
                _statement(
                    "Allow",
                    "iot:Subscribe",
                    f"{arn}:topicfilter/${{iot:ClientId}}/*",
                    Condition={
                        "StringEquals": {"iot:Connection.Thing.ThingTypeName": self.scope("sensor")}
                    },
                ),
                _statement(
                    "Allow",
                    "iot:Receive",
                    f"{arn}:topic/*",
                    Condition={"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
                ),
            ],
            # thing-groups.html: a parent group's policy reaches the things of its child groups.
            "fleet": [_statement("Allow", "iot:Subscribe", f"{arn}:topicfilter/fleet/*")],
        }[role]
        return json.dumps({"Version": "2012-10-17", "Statement": statements})

    def client_id(self, question: Question) -> str:
        return question.client_id.format(thing=self.thing, other=self.other)

    def resource(self, question: Question) -> str:
        return question.resource.format(
            arn=self.arn_prefix, thing=self.thing, other=self.other, account=self.account
        )

    def roles(self, policies: Mapping[str, Any]) -> tuple[str, ...]:
        """Policy names as the scenario's roles: ``crrconf-...-device-policy`` -> ``device``."""
        return tuple(
            sorted(
                p["policyName"].removeprefix(self.scope.prefix).removesuffix("-policy")
                for p in policies.get("policies", [])
            )
        )

    def answer(self, result: Mapping[str, Any]) -> AuthAnswer:
        denied = result.get("denied") or {}
        return AuthAnswer(
            result["authDecision"],
            self.roles(result.get("allowed") or {}),
            self.roles(denied.get("explicitDeny") or {}),
            self.roles(denied.get("implicitDeny") or {}),
            tuple(result.get("missingContextValues") or ()),
        )


Wait = Callable[[str, Callable[[], bool], float], None]


def ask(iot: Any, device: Device, inactive: bool = False) -> dict[str, AuthAnswer]:
    """Every question of the phase, one TestAuthorization call per client id."""
    answers: dict[str, AuthAnswer] = {}
    asked = [q for q in QUESTIONS if q.inactive == inactive]
    for client_id in dict.fromkeys(q.client_id for q in asked):
        batch = [q for q in asked if q.client_id == client_id]
        results = iot.test_authorization(
            principal=device.certificate_arn,
            clientId=device.client_id(batch[0]),
            authInfos=[
                {"actionType": q.action_type, "resources": [device.resource(q)]} for q in batch
            ],
        )["authResults"]
        answers.update((q.name, device.answer(r)) for q, r in zip(batch, results, strict=True))
    return answers


def settle(
    wait: Wait,
    what: str,
    asking: Callable[[], dict[str, AuthAnswer]],
    done: Callable[[dict[str, AuthAnswer]], bool],
) -> dict[str, AuthAnswer]:
    """Ask until ``done`` (AWS caches policies for "a few minutes"), at most
    ``POLICY_CACHE_SECONDS``; the last answers either way (a timeout is for the comparison to
    report, not an error)."""
    last: dict[str, dict[str, AuthAnswer]] = {}

    def condition() -> bool:
        last["answers"] = asking()
        return done(last["answers"])

    with contextlib.suppress(WaitTimeoutError):
        wait(what, condition, POLICY_CACHE_SECONDS)
    return last["answers"]


def run(
    iot: Any, scope: Scope, wait: Wait, let_time_pass: Callable[[float], None]
) -> dict[str, AuthAnswer]:
    """Create the device, ask every question (active, then inactive), remove what it made that
    the run's cleanup does not (certificate, policies)."""
    device = Device.create(iot, scope)
    try:
        answers = settle(
            wait,
            "the device policy in effect",
            lambda: ask(iot, device),
            lambda a: a["connect-as-thing"].decision == "ALLOWED",
        )
        iot.update_certificate(
            certificateId=device.certificate_arn.rpartition("/")[2], newStatus="INACTIVE"
        )
        answers |= settle(
            wait,
            "the deactivation in effect",
            lambda: ask(iot, device, inactive=True),
            lambda a: a["connect-inactive"].decision != "ALLOWED",
        )
        return answers
    finally:
        remove(iot, device, wait, let_time_pass)


def remove(iot: Any, device: Device, wait: Wait, let_time_pass: Callable[[float], None]) -> None:
    """Detach and delete the certificate and the policies (neither carries a name the run's
    cleanup finds); the thing, groups and type go with the run's cleanup."""
    certificate = device.certificate_arn
    for policy, target in (
        (device.policy("device"), certificate),
        (device.policy("fleet"), device.group_arn("fleet")),
    ):
        iot.detach_policy(policyName=policy, target=target)
    iot.detach_thing_principal(thingName=device.thing, principal=certificate)
    wait(
        "the certificate detached",
        lambda: not iot.list_principal_things(principal=certificate).get("things"),
        120.0,
    )
    certificate_id = certificate.rpartition("/")[2]
    iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
    iot.delete_certificate(certificateId=certificate_id)
    let_time_pass(POLICY_DETACH_SECONDS)
    for policy in (device.policy("device"), device.policy("fleet")):
        wait(f"{policy} deletable", partial(_deleted, iot, policy), 2 * POLICY_DETACH_SECONDS)


def _deleted(iot: Any, policy: str) -> bool:
    try:
        iot.delete_policy(policyName=policy)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code == "ResourceNotFoundException":
            return True
        if code == "DeleteConflictException":
            return False
        raise
    return True
