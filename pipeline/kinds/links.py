"""The policy-target link kind, and every link's name grammar (the thing principal's kind:
``pipeline.kinds.thing_principal``).

A link is named after its two ends, joined by ``pipeline.model.KEY_SEPARATOR`` (never valid in
an IoT name): a membership ``<thing>#<group>``, a thing principal ``<thing>#<certificate id>``,
a policy target ``<policy>#cert/<certificate id>`` or ``<policy>#thinggroup/<group>``. These
names are built and taken apart here and nowhere else.

AWS behaviours relied on (AWS IoT API Reference, one page per action):
- AttachPolicy / DetachPolicy name the target ``target``; the deprecated
  Attach/DetachPrincipalPolicy ``principal``, which is also what the IoT guide's CloudTrail
  example shows for AttachPolicy ("Logging AWS IoT API calls using AWS CloudTrail",
  https://docs.aws.amazon.com/iot/latest/developerguide/iot-using-cloudtrail.html).
- Certificates and thing groups are the replicated principals and targets; Cognito and
  federated identities are not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pipeline import rules
from pipeline.errors import EventValidationError, NotFoundError
from pipeline.iot import Iot
from pipeline.kinds.base import (
    Call,
    Converging,
    DependencyNotReadyError,
    EntitySpec,
    Kind,
    Listing,
    Reader,
    Result,
    text,
)
from pipeline.kinds.certificate import certificate_id
from pipeline.kinds.parse import ApiCall, CallParser, ParseResult, SkipCode, request_text, skip
from pipeline.kinds.policy import policy_name
from pipeline.model import KEY_SEPARATOR, Change, EntityKind, Item

CERT_ARN = re.compile(
    r"arn:aws[a-z-]*:iot:[a-z0-9-]+:[0-9]{12}:cert/(?P<id>[0-9a-fA-F]{64})", re.ASCII
)
_GROUP_ARN = re.compile(
    r"arn:aws[a-z-]*:iot:[a-z0-9-]+:[0-9]{12}:thinggroup/(?P<name>[^/]+)", re.ASCII
)
# A policy target's kind, as its name spells it, and the entity kind it names.
TARGET_KINDS = {"cert": EntityKind.CERTIFICATE, "thinggroup": EntityKind.THING_GROUP}


# --- the grammar ---------------------------------------------------------------------------------


def link_name(first: str, second: str) -> str:
    return f"{first}{KEY_SEPARATOR}{second}"


def split_link(name: str) -> tuple[str, str]:
    first, _, second = name.partition(KEY_SEPARATOR)
    return first, second


def parse_link(field: str, name: object, form: str) -> tuple[str, str]:
    """A link name's two ends, from untrusted input (a corrective event); ``form`` says how
    the name reads when it does not."""
    first, sep, second = str(name).partition(KEY_SEPARATOR)
    if not sep:
        raise EventValidationError(field, form)
    return first, second


def membership_name(thing: str, group: str) -> str:
    return link_name(thing, group)


def split_membership_name(name: str) -> tuple[str, str]:
    """(thing, group)."""
    return split_link(name)


def membership_names(things: Any, groups: Any) -> Any:
    """``membership_name`` over whole columns (pandas string Series)."""
    return things + KEY_SEPARATOR + groups


def membership_groups(names: Any) -> Any:
    """The group of each membership name in a column (a pandas string Series)."""
    return names.str.split(KEY_SEPARATOR, n=1).str[1]


def thing_principal_name(thing: str, certificate: str) -> str:
    return link_name(thing, certificate)


def policy_target_name(policy: str, target: str) -> str:
    """``target`` is ``cert/<id>`` or ``thinggroup/<name>`` (``target_of``)."""
    return link_name(policy, target)


def split_target(target: str) -> tuple[EntityKind | None, str]:
    """The entity a policy target (``cert/<id>``, ``thinggroup/<name>``) names."""
    kind, _, name = target.partition("/")
    return TARGET_KINDS.get(kind), name


def target_of(arn: str, *, field: str = "target") -> str | None:
    """``cert/<id>`` or ``thinggroup/<name>`` for a target's ARN; ``None`` for other principals."""
    if (cert := CERT_ARN.fullmatch(arn)) is not None:
        return f"cert/{cert['id'].lower()}"
    if (group := _GROUP_ARN.fullmatch(arn)) is not None:
        return f"thinggroup/{rules.validate_name(field, group['name'])}"
    return None


def ends(kind: EntityKind, name: str) -> tuple[tuple[EntityKind, str], ...]:
    """The entities a link of ``kind`` named ``name`` joins (for reports and root causes)."""
    first, second = split_link(name)
    if kind is EntityKind.MEMBERSHIP:
        return ((EntityKind.THING, first), (EntityKind.THING_GROUP, second))
    if kind is EntityKind.THING_PRINCIPAL:
        return ((EntityKind.THING, first), (EntityKind.CERTIFICATE, second))
    target_kind, target_name = split_target(second)
    target = ((target_kind, target_name),) if target_kind is not None else ()
    return ((EntityKind.POLICY, first), *target)


# --- CloudTrail calls ----------------------------------------------------------------------------


def _policy_attachment(call: ApiCall, *, deleted: bool) -> ParseResult:
    """AttachPolicy/DetachPolicy (``target``) and the deprecated Attach/DetachPrincipalPolicy
    (``principal``)."""
    name = policy_name("requestParameters.policyName", call.request.get("policyName"))
    key = "target" if "target" in call.request else "principal"
    target = target_of(request_text(call, key), field=f"requestParameters.{key}")
    if target is None:
        return skip(
            call,
            SkipCode.UNSUPPORTED_PRINCIPAL,
            "only certificates and thing groups are replicated as policy targets",
        )
    return Change(
        EntityKind.POLICY_TARGET, policy_target_name(name, target), call.origin, deleted=deleted
    )


# --- the kinds -------------------------------------------------------------------------------------


def certificate_arn(ctx: Converging, cert_id: str, *, needed: bool) -> str | None:
    """The certificate's ARN in the destination, converging it first if it is ``needed``."""
    certificates = ctx.kind(EntityKind.CERTIFICATE)
    described = certificates.read(ctx.iot, cert_id)
    if described is None and needed:
        ctx.converge_key(EntityKind.CERTIFICATE, cert_id)
        described = certificates.read(ctx.iot, cert_id)
        if described is None:
            raise DependencyNotReadyError(f"certificate {cert_id} is still missing")
    return None if described is None else str(described["arn"])


def link_outcome(calls: list[Call], item: Item) -> Result:
    if not calls:
        return Result("noop", "already as desired")
    return Result("deleted" if item.deleted else "applied", ", ".join(call.op for call in calls))


class PolicyTarget(Kind):
    spec = EntitySpec(
        EntityKind.POLICY_TARGET,
        frame="policy_targets",
        rank=10,  # after its policy and its target
        fields={},
        noun=("policy attachment", "policy attachments"),
        alias="policytarget",
    )
    columns = (text("name"),)
    # The targets of each listed policy, listed right after it.
    listing = Listing("ListTargetsForPolicy", parent=EntityKind.POLICY)
    # 10 TPS in the archived "AWS IoT Throttling Limits" table (as the certificate kind's);
    # [assumption] still the default of "ListTargetsForPolicy API TPS" (L-D7C50543).
    quotas = {"ListTargetsForPolicy": 10}
    api_calls: Mapping[str, CallParser] = {
        "AttachPolicy": lambda call: _policy_attachment(call, deleted=False),
        "DetachPolicy": lambda call: _policy_attachment(call, deleted=True),
        "AttachPrincipalPolicy": lambda call: _policy_attachment(call, deleted=False),
        "DetachPrincipalPolicy": lambda call: _policy_attachment(call, deleted=True),
    }

    def check_name(self, field_name: str, name: object) -> str:
        form = "a policy target is '<policy>#cert/<id>' or '<policy>#thinggroup/<group>'"
        policy, target = parse_link(field_name, name, form)
        kind, _, rest = target.partition("/")
        if not rest or kind not in TARGET_KINDS:
            raise EventValidationError(field_name, form)
        checked = (
            certificate_id(field_name, rest)
            if kind == "cert"
            else rules.validate_name(field_name, rest)
        )
        return policy_target_name(policy_name(field_name, policy), f"{kind}/{checked}")

    def links(self, reader: Reader, parent: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """The certificates and thing groups a policy is attached to (other principals are
        not replicated)."""
        for arn in reader.items("ListTargetsForPolicy", policyName=parent["name"]):
            target = _listed_target(arn)
            if target is not None:
                yield {"name": policy_target_name(parent["name"], target)}

    def read(self, iot: Iot, name: str, *, deleting: bool = False) -> dict[str, Any] | None:
        """``{"target": arn}`` if the policy is attached to the target, else ``None``."""
        policy, target = split_link(name)
        arn = _target_arn(iot, target)
        return None if arn is None or not _attached(iot, policy, arn) else {"target": arn}

    def calls(
        self, name: str, desired: Mapping[str, Any] | None, actual: Mapping[str, Any] | None
    ) -> list[Call]:
        """Attach or detach; ``desired["target"]`` or ``actual["target"]`` is the target's ARN
        in the destination."""
        if (desired is None) == (actual is None):
            return []
        policy, _ = split_link(name)
        params = {"policyName": policy, "target": (actual or desired or {})["target"]}
        return [Call("AttachPolicy", params) if desired else Call("DetachPolicy", params)]

    def depends_on(self, name: str, state: Mapping[str, Any]) -> tuple[tuple[EntityKind, str], ...]:
        return ends(EntityKind.POLICY_TARGET, name)

    def converge(self, ctx: Converging, item: Item) -> Result:
        policy, target = split_link(item.name)
        target_kind, target_name = split_target(target)
        needed = not item.deleted
        if target_kind is EntityKind.CERTIFICATE:
            arn = certificate_arn(ctx, target_name, needed=needed)
        else:
            arn = _group_arn(ctx.iot, target_name)
            if arn is None and needed:
                ctx.converge_key(EntityKind.THING_GROUP, target_name)
                arn = _group_arn(ctx.iot, target_name)
        if arn is None:
            if needed:
                raise DependencyNotReadyError(f"{target} is still missing in {ctx.region}")
            return Result("noop", f"{target} absent, so nothing is attached")
        if needed and ctx.kind(EntityKind.POLICY).read(ctx.iot, policy) is None:
            ctx.converge_key(EntityKind.POLICY, policy)
        attached = {"target": arn} if _attached(ctx.iot, policy, arn) else None
        calls = self.calls(item.name, {"target": arn} if needed else None, attached)
        ctx.iot.apply(calls)
        return link_outcome(calls, item)


def _listed_target(arn: str) -> str | None:
    try:
        return target_of(str(arn))
    except rules.RegistryValidationError:
        return None


def _group_arn(iot: Iot, name: str) -> str | None:
    response = iot.maybe("DescribeThingGroup", thingGroupName=name)
    return None if response is None else str(response["thingGroupArn"])


def _target_arn(iot: Iot, target: str) -> str | None:
    target_kind, target_name = split_target(target)
    if target_kind is EntityKind.CERTIFICATE:
        response = iot.maybe("DescribeCertificate", certificateId=target_name)
        return (
            None if response is None else str(response["certificateDescription"]["certificateArn"])
        )
    return _group_arn(iot, target_name)


def _attached(iot: Iot, policy: str, target_arn: str) -> bool:
    try:
        return any(
            target_arn in page for page in iot.pages("ListTargetsForPolicy", policyName=policy)
        )
    except NotFoundError:
        return False


POLICY_TARGET = PolicyTarget()
KINDS = (POLICY_TARGET,)
