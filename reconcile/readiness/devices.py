"""A device's readiness in the destination: its facts in, its verdict out (pure).

A device is a thing with a certificate. What it asks is ``Probes``: iot:Connect with its client
id (the thing name by default) and the topics it publishes, subscribes and receives on; each is
one TestAuthorization ``authInfo`` (AWS IoT API Reference, TestAuthorization, AuthInfo). The
device is **ready** when every action allowed in the source is allowed in the destination.
When it is not, ``verdict`` says why from the facts gathered in both regions (``DeviceFacts``):
the thing, the certificate and its status, the certificate's attachment to the thing, the
policies TestAuthorization names, and their documents, in that order of what to fix first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pipeline.errors import PermanentError
from pipeline.kinds.certificate_refusal import OPERATOR_FIX
from pipeline.policyrewrite import ArnMapping
from reconcile.readiness.policydiff import source_arns, statement_differences

ActionType = Literal["CONNECT", "PUBLISH", "SUBSCRIBE", "RECEIVE"]
Decision = Literal["ALLOWED", "EXPLICIT_DENY", "IMPLICIT_DENY"]

# The resource each action names (AWS IoT Developer Guide, "AWS IoT Core action resources",
# iot-action-resources.html): arn:aws:iot:region:account:client/<clientId>, topic/<topic>,
# topicfilter/<filter>; iot:Receive names the topic a message arrives on.
RESOURCE_KINDS: Mapping[ActionType, str] = {
    "CONNECT": "client",
    "PUBLISH": "topic",
    "SUBSCRIBE": "topicfilter",
    "RECEIVE": "topic",
}
# TestAuthorization takes 1 to 10 authInfos (AWS IoT API Reference, TestAuthorization:
# "Maximum number of 10 items"; botocore's iot model, AuthInfos max 10): a device's questions
# are one call per region, so at most this many.
MAX_QUESTIONS = 10
THING = "{thing}"  # replaced by the thing's name in client ids and topics


class ProbeError(PermanentError):
    """Questions a device cannot be asked in one TestAuthorization call."""


@dataclass(frozen=True)
class Question:
    """One action on one resource, the resource without its region and account
    (``client/device-1``, ``topic/telemetry/device-1``): the same question in both regions."""

    action_type: ActionType
    resource: str

    def arn(self, partition: str, region: str, account: str) -> str:
        return f"arn:{partition}:iot:{region}:{account}:{self.resource}"

    def __str__(self) -> str:
        return f"{self.action_type} {self.resource}"


@dataclass(frozen=True)
class Probes:
    """What each device is asked: ``{thing}`` in a client id or topic is its thing's name."""

    client_id_template: str = THING
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    receive: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        asked = 1 + len(self.publish) + len(self.subscribe) + len(self.receive)
        if asked > MAX_QUESTIONS:
            raise ProbeError(
                f"{asked} questions per device (connect + {asked - 1} topics): TestAuthorization "
                f"takes at most {MAX_QUESTIONS} in one call"
            )
        if not self.client_id_template:
            raise ProbeError("the client id template is empty")

    def client_id(self, thing: str) -> str:
        return self.client_id_template.replace(THING, thing)

    def questions(self, thing: str) -> tuple[Question, ...]:
        asked: list[tuple[ActionType, str]] = [("CONNECT", self.client_id(thing))]
        asked += [("PUBLISH", topic) for topic in self.publish]
        asked += [("SUBSCRIBE", topic) for topic in self.subscribe]
        asked += [("RECEIVE", topic) for topic in self.receive]
        return tuple(
            Question(action, f"{RESOURCE_KINDS[action]}/{name.replace(THING, thing)}")
            for action, name in asked
        )


# --- facts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """TestAuthorization's answer to one question (AuthResult): the decision and the policies
    it names, by name, as allowing, explicitly denying, or evaluated without a match."""

    question: Question
    decision: Decision
    allowed_by: tuple[str, ...] = ()
    denied_by: tuple[str, ...] = ()
    evaluated: tuple[str, ...] = ()

    @property
    def policies(self) -> tuple[str, ...]:
        """Every policy in effect for the question (attached to the certificate or inherited
        from the thing's groups)."""
        return tuple(dict.fromkeys((*self.allowed_by, *self.denied_by, *self.evaluated)))


@dataclass(frozen=True)
class Certificate:
    id: str
    arn: str
    status: str  # ACTIVE, INACTIVE, REVOKED, PENDING_TRANSFER, ... (CertificateStatus)

    @property
    def partition_and_account(self) -> tuple[str, str]:
        parts = self.arn.split(":")
        return parts[1], parts[4]


@dataclass(frozen=True)
class RegionFacts:
    """What one region holds of a device. ``answers`` is empty when nothing was asked (no
    certificate there); ``policies`` holds the documents (default versions) of the policies
    the answers name, read only for a device found not ready (``policies_to_read``), ``None``
    for a policy that does not exist there."""

    region: str
    thing_exists: bool
    attached: bool  # the certificate is attached to the thing
    certificate: Certificate | None
    answers: tuple[Answer, ...] = ()
    policies: Mapping[str, str | None] = field(default_factory=dict)

    def answer(self, question: Question) -> Answer | None:
        return next((a for a in self.answers if a.question == question), None)


@dataclass(frozen=True)
class DeviceFacts:
    thing: str
    certificate_id: str
    questions: tuple[Question, ...]
    source: RegionFacts
    destination: RegionFacts
    # Why the destination's registry refused to register the certificate, as the replicator
    # recorded it (``pipeline.kinds.certificate_refusal``); None: not refused.
    refused: str | None = None


# --- verdicts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionVerdict:
    """One question's answers; ``destination`` is ``None`` when it could not be asked there."""

    question: Question
    source: Decision | None
    destination: Decision | None

    @property
    def ok(self) -> bool:
        return self.source != "ALLOWED" or self.destination == "ALLOWED"


@dataclass(frozen=True)
class Verdict:
    thing: str
    certificate_id: str
    ready: bool
    reasons: tuple[str, ...]
    actions: tuple[ActionVerdict, ...]


def action_verdicts(facts: DeviceFacts) -> tuple[ActionVerdict, ...]:
    def decision(region: RegionFacts, question: Question) -> Decision | None:
        answer = region.answer(question)
        return answer.decision if answer else None

    return tuple(
        ActionVerdict(q, decision(facts.source, q), decision(facts.destination, q))
        for q in facts.questions
    )


def failing(facts: DeviceFacts) -> tuple[Question, ...]:
    """The questions allowed in the source and not in the destination."""
    return tuple(v.question for v in action_verdicts(facts) if not v.ok)


def policies_to_read(facts: DeviceFacts) -> tuple[set[str], set[str]]:
    """The policies whose documents explain a device that is not ready: in the source, those
    that allow a failing action; in the destination, those and every one its answers to the
    failing actions name (an explicit deny among them)."""
    questions = failing(facts)
    source: set[str] = set()
    destination: set[str] = set()
    for question in questions:
        allowing = facts.source.answer(question)
        source.update(allowing.allowed_by if allowing else ())
        there = facts.destination.answer(question)
        destination.update(there.policies if there else ())
    if facts.destination.answers:
        destination |= source
    return source, destination


def verdict(facts: DeviceFacts, mapping: ArnMapping) -> Verdict:
    """Ready, or the reasons it is not, most fundamental first, each saying what to fix."""
    actions = action_verdicts(facts)
    questions = [v.question for v in actions if not v.ok]
    if not questions:
        return Verdict(facts.thing, facts.certificate_id, True, (), actions)
    reasons = _device_reasons(facts)
    if facts.destination.answers:
        for question in questions:
            reasons.extend(_policy_reasons(facts, question, mapping))
    if len(reasons) == 0:
        reasons = [_unexplained(facts, question) for question in questions]
    return Verdict(facts.thing, facts.certificate_id, False, tuple(dict.fromkeys(reasons)), actions)


def _device_reasons(facts: DeviceFacts) -> list[str]:
    """What the destination lacks whatever the policies say: the thing, the certificate (as
    ACTIVE: AWS IoT authenticates only ACTIVE certificates, developer guide, "Activate or
    deactivate a client certificate"), their attachment (thing policy variables resolve only
    for a thing attached to the certificate, developer guide, "Thing policy variables")."""
    src, dst = facts.source.region, facts.destination.region
    cert, thing = facts.certificate_id, facts.thing
    reasons = []
    if not facts.destination.thing_exists:
        reasons.append(
            f"thing {thing} is missing in {dst}: iot-crr reconcile --apply replicates it "
            "(iot-crr audit shows why it is not there)"
        )
    certificate = facts.destination.certificate
    if certificate is None and facts.refused:
        reasons.append(f"certificate {cert} {facts.refused}: {OPERATOR_FIX}")
    elif certificate is None:
        reasons.append(
            f"certificate {cert} is missing in {dst}: iot-crr reconcile --apply registers it "
            "there (same id: it is the certificate's SHA-256)"
        )
    elif certificate.status != "ACTIVE":
        source_status = facts.source.certificate.status if facts.source.certificate else "?"
        fix = (
            "a REVOKED certificate cannot be reactivated: delete it there and iot-crr reconcile "
            "--apply registers it again"
            if certificate.status == "REVOKED"
            else f"aws iot update-certificate --certificate-id {cert} --new-status ACTIVE "
            f"--region {dst}"
        )
        reasons.append(
            f"certificate {cert} is {certificate.status} in {dst} ({source_status} in {src}): {fix}"
        )
    if (
        facts.destination.thing_exists
        and certificate is not None
        and not facts.destination.attached
    ):
        reasons.append(
            f"certificate {cert} is not attached to thing {thing} in {dst}: aws iot "
            f"attach-thing-principal --thing-name {thing} --principal {certificate.arn} "
            f"--region {dst} (or iot-crr reconcile --apply)"
        )
    return reasons


def _policy_reasons(facts: DeviceFacts, question: Question, mapping: ArnMapping) -> list[str]:
    src, dst = facts.source.region, facts.destination.region
    allowing = facts.source.answer(question)
    there = facts.destination.answer(question)
    if allowing is None or there is None:
        return []
    reasons = []
    if there.decision == "EXPLICIT_DENY":
        denying = ", ".join(there.denied_by) or "a policy"
        reasons.append(
            f"{question} is explicitly denied in {dst} by {denying} (an explicit deny wins over "
            "any allow)"
        )
    if not there.policies:
        names = ", ".join(allowing.allowed_by)
        return [
            *reasons,
            f"no policy applies to certificate {facts.certificate_id} in {dst} ({src}: "
            f"{names}): attach them there (iot-crr reconcile --apply replicates policies and "
            "their attachments)",
        ]
    for name in allowing.allowed_by:
        reasons.extend(_policy_reason(facts, name, there, mapping))
    for name in there.denied_by:
        if name not in allowing.policies:
            reasons.append(
                f"policy {name} applies in {dst} and not in {src}: detach it there, or remove "
                "its Deny statement"
            )
    return reasons


def _policy_reason(facts: DeviceFacts, name: str, there: Answer, mapping: ArnMapping) -> list[str]:
    src, dst = facts.source.region, facts.destination.region
    present = name in facts.destination.policies
    document = facts.destination.policies.get(name)
    if present and document is None:
        return [f"policy {name} is missing in {dst}: iot-crr reconcile --apply replicates it"]
    if name not in there.policies:
        return [
            f"policy {name} is not attached in {dst} to certificate {facts.certificate_id} or "
            f"to a group of thing {facts.thing} (in {src} it is): attach it there (iot-crr "
            "reconcile --apply replicates attachments)"
        ]
    reasons = []
    source_document = facts.source.policies.get(name)
    if document and source_document:
        for difference in statement_differences(source_document, document, mapping):
            reasons.append(
                f"policy {name} differs in {dst} from {src}'s (rewritten for {dst}): "
                f"{difference}; iot-crr reconcile --apply replicates the source's"
            )
    if document:
        for arn in source_arns(document, src, mapping.accounts):
            reasons.append(
                f"policy {name} in {dst} names {arn}, a resource of {src}: it grants nothing "
                f"in {dst} (replicated policies are rewritten for {dst})"
            )
    return reasons


def _unexplained(facts: DeviceFacts, question: Question) -> str:
    src, dst = facts.source.region, facts.destination.region
    there = facts.destination.answer(question)
    decision = there.decision if there else "not asked"
    policies = ", ".join(there.policies) if there and there.policies else "none"
    return (
        f"{question} is allowed in {src} and {decision} in {dst}, and the certificate, its "
        f"attachments and its policies' documents agree (policies in {dst}: {policies}): "
        "compare what the policies' variables name (thing attributes, client id)"
    )
