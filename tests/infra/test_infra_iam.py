"""Least privilege: no "*" action anywhere, "*" resources only on an allow-list, and each role's
calls match what the code it runs actually calls."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from pipeline.aws import iam_actions
from pipeline.kinds import KINDS
from tests.infra.infra_templates import (
    REPO_ROOT,
    as_list,
    policy_documents,
    resources_of_type,
    role_actions,
    statements,
)

# Actions AWS authorizes only on Resource "*", with the reason. Nothing else may use "*".
STAR_RESOURCE_ALLOWED: dict[str, str] = {
    "iot:ListThings": "IoT list call without a resource type",
    "iot:ListThingTypes": "IoT list call without a resource type",
    "iot:ListThingGroups": "IoT list call without a resource type",
    "iot:ListBillingGroups": "IoT list call without a resource type",
    "iot:ListCertificates": "IoT list call without a resource type",
    "iot:ListPolicies": "IoT list call without a resource type",
    "iot:ListRoleAliases": "IoT list call without a resource type",
    "iot:ListAuthorizers": "IoT list call without a resource type",
    "iot:DescribeDefaultAuthorizer": "the region's default names no authorizer [assumption]",
    "iot:ClearDefaultAuthorizer": "the region's default names no authorizer [assumption]",
    "cloudwatch:PutMetricData": "no resource type; narrowed by the cloudwatch:namespace condition",
    "ecr:GetAuthorizationToken": "the registry token has no resource type",
    "logs:CreateLogDelivery": "vended-log delivery APIs have no resource type",
    "logs:GetLogDelivery": "vended-log delivery APIs have no resource type",
    "logs:UpdateLogDelivery": "vended-log delivery APIs have no resource type",
    "logs:DeleteLogDelivery": "vended-log delivery APIs have no resource type",
    "logs:ListLogDeliveries": "vended-log delivery APIs have no resource type",
    "logs:PutResourcePolicy": "account-level log resource policy, no resource type",
    "logs:DescribeResourcePolicies": "list call without a resource type",
    "logs:DescribeLogGroups": "list call without a resource type",
    "iot:RegisterCertificateWithoutCA": "the certificate does not exist before the call",
    "iot:RegisterCertificate": "the certificate does not exist before the call",
    "iot:RegisterCACertificate": "the CA certificate does not exist before the call",
    "iot:ListProvisioningTemplates": "IoT list call without a resource type",
    "iot:ListCACertificates": "IoT list call without a resource type",
    "iot:ListRetainedMessages": "its resource 'must be *' (AWS IoT Core policy actions)",
    "iot:DescribeEndpoint": "account-level call without a resource type",
    "iot:ListDomainConfigurations": "IoT list call without a resource type",
    "iot:ListTopicRules": "IoT list call without a resource type",
    "iot:DescribeEventConfigurations": "account-level call without a resource type",
    "iot:GetIndexingConfiguration": "account-level call without a resource type",
    "servicequotas:ListServiceQuotas": "list call without a resource type",
}
# Allowed only with a condition that narrows them.
STAR_RESOURCE_NEEDS_CONDITION = {"cloudwatch:PutMetricData"}
POLICY_RESOURCE_TYPES = {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}


@dataclass(frozen=True)
class Violation:
    resource: str
    reason: str


def _is_star_resource(resource: Any) -> bool:
    # "*" itself, or an ARN whose every field after the service is a wildcard/empty.
    if resource == "*":
        return True
    if isinstance(resource, str) and resource.startswith("arn:"):
        fields = resource.split(":", 5)
        return len(fields) == 6 and all(f in {"", "*"} for f in fields[3:])
    return False


def find_wildcard_violations(template: dict[str, Any]) -> list[Violation]:
    """Every "*" action, and every "*" resource not on the allow-list (and documented)."""
    violations: list[Violation] = []
    for name, resource in template["Resources"].items():
        if resource["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}:
            if "Policies" in resource.get("Properties", {}):
                violations.append(Violation(name, "SAM Policies hide their statements"))
            continue
        if resource["Type"] not in POLICY_RESOURCE_TYPES:
            continue
        if resource["Type"] == "AWS::IAM::Role" and resource["Properties"].get("ManagedPolicyArns"):
            for arn in resource["Properties"]["ManagedPolicyArns"]:
                if isinstance(arn, str):  # an AWS managed policy: its statements are not visible
                    violations.append(Violation(name, f"AWS managed policy {arn}"))
        documented = resource.get("Metadata", {}).get("StarResourceReasons", {})
        for document in policy_documents(resource):
            for statement in statements(document["Statement"]):
                actions = as_list(statement.get("Action", []))
                if "NotAction" in statement or "NotResource" in statement:
                    violations.append(Violation(name, "NotAction/NotResource"))
                for action in actions:
                    if "*" in action:
                        violations.append(Violation(name, f"wildcard action {action}"))
                if not any(_is_star_resource(r) for r in as_list(statement.get("Resource"))):
                    continue
                for action in actions:
                    if action not in STAR_RESOURCE_ALLOWED:
                        violations.append(Violation(name, f'{action} on "*"'))
                    elif action not in documented:
                        violations.append(Violation(name, f'{action} on "*" lacks a reason'))
                    elif action in STAR_RESOURCE_NEEDS_CONDITION and "Condition" not in statement:
                        violations.append(Violation(name, f'{action} on "*" without a condition'))
    return violations


@pytest.mark.parametrize("name", ["source", "destination", "reconcile"])
def test_no_wildcards_outside_the_allow_list(templates: dict[str, Any], name: str) -> None:
    assert find_wildcard_violations(templates[name]) == []


def _template_with(statement: dict[str, Any], metadata: dict[str, Any] | None = None) -> Any:
    role: dict[str, Any] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [statement]}}]
        },
    }
    if metadata is not None:
        role["Metadata"] = metadata
    return {"Resources": {"R": role}}


@pytest.mark.parametrize(
    ("statement", "metadata", "expected"),
    [
        ({"Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:r:1:table/t"}, None, "wildcard"),
        ({"Action": "*", "Resource": "arn:aws:dynamodb:r:1:table/t"}, None, "wildcard"),
        ({"Action": "dynamodb:GetItem", "Resource": "*"}, None, 'dynamodb:GetItem on "*"'),
        ({"Action": "s3:GetObject", "Resource": "arn:aws:s3:::*"}, None, 's3:GetObject on "*"'),
        ({"Action": "iot:ListThings", "Resource": "*"}, None, "lacks a reason"),
        (
            {"Action": "cloudwatch:PutMetricData", "Resource": "*"},
            {"StarResourceReasons": {"cloudwatch:PutMetricData": "why"}},
            "without a condition",
        ),
    ],
)
def test_wildcard_checker_catches_violations(
    statement: dict[str, Any], metadata: dict[str, Any] | None, expected: str
) -> None:
    # GIVEN a role with one offending statement  WHEN checked  THEN it is reported
    violations = find_wildcard_violations(_template_with(statement, metadata))
    assert violations and expected in violations[0].reason


def test_wildcard_checker_sees_both_branches_of_a_condition() -> None:
    statement = {
        "Fn::If": [
            "C",
            {"Action": "lambda:InvokeFunction", "Resource": "arn:aws:lambda:r:1:function:f"},
            {"Action": "ecs:RunTask", "Resource": "*"},
        ]
    }
    assert [v.reason for v in find_wildcard_violations(_template_with(statement))] == [
        'ecs:RunTask on "*"'
    ]


def test_wildcard_checker_accepts_a_documented_list_call() -> None:
    statement = {"Action": "iot:ListThings", "Resource": "*"}
    metadata = {"StarResourceReasons": {"iot:ListThings": "no resource type"}}
    assert find_wildcard_violations(_template_with(statement, metadata)) == []


def _iot_operations_called_by(*kinds: str) -> set[str]:
    """The operations the replicator makes for ``kinds`` (modules of pipeline/kinds): those
    their reads and hooks make through the replicator's client (``iot.call("Op"``, ``maybe``,
    ``items``, ``pages``) and their decisions' ``Call("Op"``; not the snapshot's (``reader``)
    nor persist's lookups (``origin``), pipeline/kinds/base.py."""
    source = "".join(
        (REPO_ROOT / "pipeline" / "kinds" / f"{kind}.py").read_text() for kind in kinds
    )
    op = r'\(\s*"([A-Z][A-Za-z0-9]+)"'
    called = re.findall(rf"\biot\.(?:call|maybe|items|pages){op}", source)
    # A decision's calls, and the operation names chosen between (dynamic or static group).
    decided = re.findall(rf"\bCall{op}", source) + re.findall(
        r'"((?:Create|Update|Delete)(?:Dynamic)?ThingGroup)"', source
    )
    return {action for name in [*called, *decided] for action in iam_actions("iot", name)}


REGISTRY_KINDS = ("thing", "thing_type", "thing_group", "billing_group", "membership")
SECURITY_KINDS = ("certificate", "policy", "links", "thing_principal")
ONBOARDING_KINDS = ("role_alias", "authorizer", "provisioning_template", "ca_certificate")
DEVICE_STATE_KINDS = ("shadow", "retained_message")


def test_replicator_role_grants_exactly_the_registry_adapter_calls(
    templates: dict[str, Any],
) -> None:
    granted = {
        a for a in role_actions(templates["destination"], "ReplicatorRole") if a.startswith("iot:")
    }
    assert granted == _iot_operations_called_by(
        *REGISTRY_KINDS, *SECURITY_KINDS, *ONBOARDING_KINDS, *DEVICE_STATE_KINDS
    )


def test_each_role_has_its_lookups(templates: dict[str, Any]) -> None:
    # The state table's and the stream's actions each role needs are derived from the calls
    # the code makes, with IAM emulated (tests/reliability/test_iam_actions.py), not listed here.
    source, destination = templates["source"], templates["destination"]
    assert "iot:DescribeThingGroup" in role_actions(source, "PersistFunctionRole")
    # Persist's lookups (the kinds' resolve), in the origin region; both names of a call AWS's
    # references disagree on (issue 27, item 12).
    assert {
        "iot:DescribeCertificate",
        "iot:GetPolicyVersion",
        "iot:DescribeRoleAlias",
        "iot:DescribeAuthorizer",
        "iot:DescribeDefaultAuthorizer",
        "iot:GetPolicy",
        *iam_actions("iot", "ListThingPrincipalsV2"),
    } <= role_actions(source, "PersistFunctionRole")
    pending = role_actions(destination, "PendingRole")
    assert "iot:DeleteThingType" in pending
    # Finishing a type's lifecycle (delete, re-create, re-attach) converges with the
    # replicator's own calls.
    assert pending >= _iot_operations_called_by(*REGISTRY_KINDS)


# Operations of other services that reconcile names (readiness asks Lambda for an authorizer's
# function, Service Quotas for the applied quotas): granted on their own service.
_NOT_IOT = {"GetFunction", "ListServiceQuotas"}


def _reconcile_iot_operations() -> set[str]:
    """What reconcile/ names itself, and every read the snapshot makes for the kinds (their
    listings, describes and joins: each has a quota, tests/unit/test_kinds.py; and what they
    ask through the snapshot's reader, ``reader.call("Op"``: a partition's check)."""
    source = "\n".join(p.read_text() for p in (REPO_ROOT / "reconcile").rglob("*.py"))
    named = re.findall(r'"((?:Describe|List|Search|Get|Test)[A-Z][A-Za-z]+)"', source)
    kinds = "".join(p.read_text() for p in (REPO_ROOT / "pipeline" / "kinds").glob("*.py"))
    named += re.findall(r'\breader\.call\(\s*"([A-Z][A-Za-z0-9]+)"', kinds)
    listed = [op for kind in KINDS.values() for op in kind.quotas]
    return {
        action
        for op in [*named, *listed]
        if op not in _NOT_IOT
        for action in iam_actions("iot", op)
    }


def test_reconcile_job_policy(templates: dict[str, Any]) -> None:
    (policy,) = resources_of_type(templates["reconcile"], "AWS::IAM::ManagedPolicy").values()
    by_sid = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    iot_granted = {
        action
        for statement in by_sid.values()
        for action in as_list(statement["Action"])
        if action.startswith("iot:")
    }
    # GIVEN the snapshot's and readiness's IoT calls  THEN all are granted, and none writes:
    # reconciliation only emits corrective events (the destination's replicator and pending task
    # write); TestAuthorization evaluates policies and changes nothing
    assert _reconcile_iot_operations() <= iot_granted
    assert "iot:TestAuthorization" in iot_granted
    reads = ("iot:List", "iot:Describe", "iot:Get", "iot:SearchIndex", "iot:TestAuthorization")
    writes = {a for a in iot_granted if not a.startswith(reads)}
    assert writes == set()
    assert by_sid["ReadinessAuthorizerFunctions"]["Action"] == "lambda:GetFunction"
    reads = by_sid["RegistryReadsBothRegions"]
    regions = {re.search(r":iot:([^:]+):", r["Fn::Sub"])[1] for r in reads["Resource"]}  # type: ignore[index]
    assert regions == {"${SourceRegion}", "${TargetRegion}"}
    assert by_sid["CorrectiveEvents"]["Resource"] == {"Ref": "PersistStateMachineArn"}
    assert set(by_sid["StateTable"]["Action"]) == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",  # the three-way audit reads the whole table
    }
    assert "${SourceRegion}" in by_sid["StateTable"]["Resource"]["Fn::Sub"]
    assert set(by_sid["ReportObjects"]["Action"]) == {"s3:GetObject", "s3:PutObject"}
    assert by_sid["ReportListing"]["Action"] == "s3:ListBucket"


def test_the_replicator_may_pass_the_roles_its_role_aliases_name(
    templates: dict[str, Any],
) -> None:
    # CreateRoleAlias and UpdateRoleAlias are refused without iam:PassRole on the alias's role
    # (hashicorp/terraform-provider-aws#29011); only roles of the destination account
    passing = [
        statement
        for document in policy_documents(templates["destination"]["Resources"]["ReplicatorRole"])
        for statement in statements(document["Statement"])
        if "iam:PassRole" in as_list(statement["Action"])
    ]
    assert [s["Resource"] for s in passing] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"}
    ]


def test_calls_aws_documents_under_two_action_names_are_granted_both(
    templates: dict[str, Any],
) -> None:
    # Issue 27, item 12: ListPrincipalThingsV2's API reference names the ListPrincipalThings
    # action, the Service Authorization Reference ListPrincipalThingsV2. Old templates: the
    # reconcile job granted only the V2 name.
    (policy,) = resources_of_type(templates["reconcile"], "AWS::IAM::ManagedPolicy").values()
    job = {
        action
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in as_list(statement["Action"])
    }
    assert set(iam_actions("iot", "ListPrincipalThingsV2")) <= job
    replicator = role_actions(templates["destination"], "ReplicatorRole")
    assert set(iam_actions("iot", "ListThingPrincipalsV2")) <= replicator
