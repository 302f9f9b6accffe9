"""The account-level checks of readiness: what devices need of the destination account beyond
their own registry entries (pure: two regions' ``AccountFacts`` in, ``Check`` values out).

Each check passes or fails with the fix. A failed ``error`` makes the destination not ready; a
``warning`` is reported only. Registry events and fleet indexing are ``reconcile.doctor``'s
findings, the same implementation ``iot-crr doctor`` prints. Sources, per check:

- Data endpoint: DescribeEndpoint with ``iot:Data-ATS`` (AWS IoT API Reference,
  DescribeEndpoint); an endpoint is per account and region, so devices reach the destination
  only through its endpoint or a custom domain moved to it.
- Domain configurations: a custom domain, its server certificates, its authorizer and TLS
  security policy are configured per region (AWS IoT Developer Guide, "Configurable endpoints",
  iot-custom-endpoints-configurable.html; DescribeDomainConfiguration: ``authorizerConfig``,
  ``tlsConfig.securityPolicy``, ``domainConfigurationStatus``).
- Custom authorizers invoke a Lambda function by ARN (DescribeAuthorizer:
  ``authorizerFunctionArn``); a function lives in one region (AWS Lambda Developer Guide).
- Role aliases name an IAM role for the credentials provider (DescribeRoleAlias: ``roleArn``).
- CA certificates and provisioning templates are registered per region (AWS IoT Developer
  Guide, "Register your CA certificate", "Provisioning templates"): devices that onboard with
  them (just-in-time or fleet provisioning) cannot in a region without them.
- Topic rules are per region (AWS IoT Developer Guide, "Rules for AWS IoT"): without them the
  destination ingests nothing. Compared by name and SQL; reported, never copied. The pipeline's
  own rules (SQL over the registry event topics ``$aws/events/thing...``, infra/source.yaml) are
  not devices' and are deployed per direction (docs/failover.md): left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reconcile.doctor import findings as doctor_findings

Level = Literal["error", "warning"]

# The registry event topics (AWS IoT Developer Guide, "Registry events"): $aws/events/thing/...,
# thingType, thingTypeAssociation, thingGroup, thingGroupMembership, thingGroupHierarchy.
_REGISTRY_EVENTS_FROM = re.compile(r"FROM\s+'\$aws/events/thing[A-Za-z]*/", re.IGNORECASE)


@dataclass(frozen=True)
class DomainConfiguration:
    name: str
    domain: str | None
    service_type: str | None
    status: str | None  # ENABLED or DISABLED
    authorizer: str | None  # authorizerConfig.defaultAuthorizerName
    tls_policy: str | None  # tlsConfig.securityPolicy


@dataclass(frozen=True)
class Authorizer:
    name: str
    function_arn: str
    status: str  # ACTIVE or INACTIVE
    function_exists: bool  # GetFunction found the Lambda, in the authorizer's own region


@dataclass(frozen=True)
class TopicRule:
    sql: str
    disabled: bool


@dataclass(frozen=True)
class AccountFacts:
    """What one region's account holds that devices rely on."""

    region: str
    endpoint: str | None = None
    domain_configurations: tuple[DomainConfiguration, ...] = ()
    authorizers: tuple[Authorizer, ...] = ()
    role_aliases: Mapping[str, str] = field(default_factory=dict)  # alias -> role ARN
    ca_certificates: Mapping[str, str] = field(default_factory=dict)  # id -> status
    provisioning_templates: Mapping[str, bool] = field(default_factory=dict)  # name -> enabled
    topic_rules: Mapping[str, TopicRule] = field(default_factory=dict)
    events: Mapping[str, bool] = field(default_factory=dict)  # DescribeEventConfigurations
    indexing: Mapping[str, Any] = field(default_factory=dict)  # GetIndexingConfiguration
    dynamic_groups: tuple[str, ...] = ()  # reconcile.doctor.dynamic_thing_groups
    quotas: Mapping[str, Quota] = field(default_factory=dict)  # applied, by quota code


@dataclass(frozen=True)
class Quota:
    """An applied AWS IoT Core quota (Service Quotas): its name and value."""

    name: str
    value: float


@dataclass(frozen=True)
class Check:
    """One check: ``ok``, or what is wrong (``detail``) and how to fix it."""

    check: str
    ok: bool
    region: str
    detail: str
    fix: str = ""
    level: Level = "error"

    @property
    def blocks(self) -> bool:
        """A failed error: the destination is not ready."""
        return not self.ok and self.level == "error"


def account_checks(
    source: AccountFacts, destination: AccountFacts, accounts: Mapping[str, str] | None = None
) -> list[Check]:
    """Every check, in the order devices meet them: endpoint, domain, authorizers, credentials
    provider, onboarding, registry events and indexing, topic rules; then the account's quotas."""
    accounts = accounts or {}
    return [
        *_endpoint(source, destination),
        *_domains(source, destination),
        *_authorizers(source, destination),
        *_role_aliases(source, destination, accounts),
        *_ca_certificates(source, destination),
        *_templates(source, destination),
        *_events_and_indexing(source, destination),
        *_topic_rules(source, destination),
        *_quotas(source, destination),
    ]


def _passed(check: str, region: str, detail: str) -> list[Check]:
    return [Check(check, True, region, detail)]


def _endpoint(source: AccountFacts, destination: AccountFacts) -> list[Check]:
    dst = destination.region
    if not destination.endpoint:
        return [
            Check(
                "data endpoint",
                False,
                dst,
                "DescribeEndpoint iot:Data-ATS gave no endpoint",
                f"aws iot describe-endpoint --endpoint-type iot:Data-ATS --region {dst}",
            )
        ]
    return _passed(
        "data endpoint",
        dst,
        f"{destination.endpoint} (the source's: {source.endpoint or 'unknown'}): devices "
        "must reach it after a failover, by configuration or a custom domain moved to it",
    )


def _domains(source: AccountFacts, destination: AccountFacts) -> list[Check]:
    dst, name = destination.region, "domain configurations"
    theirs = {d.name: d for d in destination.domain_configurations}
    found = []
    for mine in source.domain_configurations:
        if mine.status == "DISABLED":
            continue
        label = f"domain configuration {mine.name} ({mine.domain or 'AWS-managed'})"
        other = theirs.get(mine.name)
        if other is None:
            found.append(
                Check(
                    name,
                    False,
                    dst,
                    f"{label} has no counterpart in {dst}",
                    f"aws iot create-domain-configuration --domain-configuration-name {mine.name} "
                    f"--region {dst} (with its own server certificate), and move the domain's "
                    "DNS on failover",
                )
            )
            continue
        problems = []
        # AWS-managed domains are per region by name; a custom domain must be the same one.
        custom = mine.domain and not mine.domain.endswith(".amazonaws.com")
        if custom and other.domain != mine.domain:
            problems.append(f"serves {other.domain}, not {mine.domain}")
        if other.status == "DISABLED":
            problems.append("is DISABLED")
        if other.authorizer != mine.authorizer:
            problems.append(f"authorizer {other.authorizer}, the source's {mine.authorizer}")
        if other.tls_policy != mine.tls_policy:
            problems.append(f"TLS policy {other.tls_policy}, the source's {mine.tls_policy}")
        if problems:
            found.append(
                Check(
                    name,
                    False,
                    dst,
                    f"{label} in {dst}: {'; '.join(problems)}",
                    f"aws iot update-domain-configuration --domain-configuration-name "
                    f"{mine.name} --region {dst} (as in {source.region})",
                )
            )
    if found:
        return found
    count = sum(1 for d in source.domain_configurations if d.status != "DISABLED")
    return _passed(name, dst, f"{count} enabled in the source, each with its counterpart")


def _authorizers(source: AccountFacts, destination: AccountFacts) -> list[Check]:
    dst, name = destination.region, "custom authorizers"
    theirs = {a.name: a for a in destination.authorizers}
    fix = f"aws iot create-authorizer --region {dst} with a Lambda function in {dst}"
    found = []
    for mine in source.authorizers:
        if mine.status != "ACTIVE":
            continue
        other = theirs.get(mine.name)
        if other is None:
            found.append(Check(name, False, dst, f"authorizer {mine.name} is missing", fix))
        elif other.status != "ACTIVE":
            found.append(
                Check(
                    name,
                    False,
                    dst,
                    f"authorizer {mine.name} is {other.status}",
                    f"aws iot update-authorizer --authorizer-name {mine.name} --status ACTIVE "
                    f"--region {dst}",
                )
            )
        elif _arn_region(other.function_arn) == source.region:
            found.append(
                Check(
                    name,
                    False,
                    dst,
                    f"authorizer {mine.name} invokes {other.function_arn}, a function of "
                    f"{source.region}: it fails with the source region",
                    f"point it at a function in {dst} (aws iot update-authorizer "
                    "--authorizer-function-arn)",
                )
            )
        elif not other.function_exists:
            found.append(
                Check(
                    name,
                    False,
                    dst,
                    f"authorizer {mine.name}'s function {other.function_arn} does not exist",
                    f"deploy the function in {dst}",
                )
            )
    if found:
        return found
    count = sum(1 for a in source.authorizers if a.status == "ACTIVE")
    return _passed(name, dst, f"{count} active in the source, each active with its function")


def _role_aliases(
    source: AccountFacts, destination: AccountFacts, accounts: Mapping[str, str]
) -> list[Check]:
    dst, name = destination.region, "role aliases"
    found = []
    for alias, role in sorted(source.role_aliases.items()):
        other = destination.role_aliases.get(alias)
        if other is None:
            found.append(
                Check(
                    name,
                    False,
                    dst,
                    f"role alias {alias} is missing: devices cannot get AWS credentials there",
                    f"aws iot create-role-alias --role-alias {alias} --role-arn {role} "
                    f"--region {dst}",
                )
            )
            continue
        # IAM is global: the same role, or the mapped account's (POLICY_ACCOUNT_MAP).
        wanted = _mapped_account(role, accounts)
        if other != wanted:
            found.append(
                Check(
                    name,
                    False,
                    dst,
                    f"role alias {alias} names {other}, the source's {role}",
                    f"aws iot update-role-alias --role-alias {alias} --role-arn {wanted} "
                    f"--region {dst}",
                    level="warning",
                )
            )
    return found or _passed(name, dst, f"{len(source.role_aliases)} in the source, all present")


def _ca_certificates(source: AccountFacts, destination: AccountFacts) -> list[Check]:
    dst, name = destination.region, "CA certificates"
    found = []
    for ca, status in sorted(source.ca_certificates.items()):
        if status != "ACTIVE":
            continue
        other = destination.ca_certificates.get(ca)
        if other != "ACTIVE":
            state = "missing" if other is None else other
            found.append(
                Check(
                    name,
                    False,
                    dst,
                    f"CA certificate {ca} is {state}: devices onboarding with it (just-in-time "
                    "registration or provisioning) fail there",
                    f"aws iot register-ca-certificate --region {dst} (the same CA; its id is "
                    "the SHA-256 of its certificate), status ACTIVE",
                )
            )
    count = sum(1 for s in source.ca_certificates.values() if s == "ACTIVE")
    return found or _passed(name, dst, f"{count} active in the source, all active")


def _templates(source: AccountFacts, destination: AccountFacts) -> list[Check]:
    dst, name = destination.region, "provisioning templates"
    found = []
    for template, enabled in sorted(source.provisioning_templates.items()):
        if not enabled:
            continue
        other = destination.provisioning_templates.get(template)
        if not other:
            state = "missing" if other is None else "disabled"
            found.append(
                Check(
                    name,
                    False,
                    dst,
                    f"provisioning template {template} is {state}: devices provisioned by it "
                    "fail there",
                    f"aws iot create-provisioning-template --template-name {template} "
                    f"--region {dst} (as in {source.region}), enabled",
                )
            )
    count = sum(1 for enabled in source.provisioning_templates.values() if enabled)
    return found or _passed(name, dst, f"{count} enabled in the source, all enabled")


def _events_and_indexing(source: AccountFacts, destination: AccountFacts) -> list[Check]:
    src, dst, name = source.region, destination.region, "registry events and fleet indexing"
    found = doctor_findings(
        src,
        dst,
        {src: source.events, dst: destination.events},
        {src: source.indexing, dst: destination.indexing},
        source.dynamic_groups,
    )
    checks = [Check(name, False, f.region, f.problem, f.fix, f.level) for f in found]
    return checks or _passed(name, dst, "as needed (iot-crr doctor)")


def _topic_rules(source: AccountFacts, destination: AccountFacts) -> list[Check]:
    dst, name = destination.region, "topic rules"
    found = []
    wanted = {
        rule_name: rule
        for rule_name, rule in source.topic_rules.items()
        if not rule.disabled and not _REGISTRY_EVENTS_FROM.search(rule.sql)
    }
    for rule_name, rule in sorted(wanted.items()):
        other = destination.topic_rules.get(rule_name)
        problem = (
            "is missing"
            if other is None
            else "is disabled"
            if other.disabled
            else f"has other SQL: {other.sql}"
            if " ".join(other.sql.split()) != " ".join(rule.sql.split())
            else None
        )
        if problem:
            found.append(
                Check(
                    name,
                    False,
                    dst,
                    f"rule {rule_name} ({rule.sql}) {problem}: the data it ingests stops there",
                    f"create it in {dst} with its actions' targets in {dst} (aws iot "
                    "create-topic-rule); not copied by iot-crr",
                )
            )
    return found or _passed(name, dst, f"{len(wanted)} enabled in the source, all present")


def _quotas(source: AccountFacts, destination: AccountFacts) -> list[Check]:
    """An applied quota lower in the destination than in the source: the fleet's traffic, moved
    there by a failover, would be throttled. Service Quotas lists applied values only where
    available, so a quota the destination does not list is named too (a warning: its value
    there is unknown, likely the default). Warnings: devices connect, but at the lower rate."""
    src, dst, name = source.region, destination.region, "quotas"
    found = []
    for code, mine in sorted(source.quotas.items()):
        theirs = destination.quotas.get(code)
        if theirs is not None and theirs.value >= mine.value:
            continue
        there = "not listed" if theirs is None else f"{theirs.value:g}"
        found.append(
            Check(
                name,
                False,
                dst,
                f"{mine.name or code} ({code}) is {mine.value:g} in {src}, {there} in {dst}",
                f"aws service-quotas request-service-quota-increase --service-code iotcore "
                f"--quota-code {code} --desired-value {mine.value:g} --region {dst}",
                "warning",
            )
        )
    count = len(source.quotas)
    return found or _passed(name, dst, f"{count} applied in {src}, none lower in {dst}")


def _arn_region(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else ""


def _mapped_account(arn: str, accounts: Mapping[str, str]) -> str:
    parts = arn.split(":")
    if len(parts) > 4 and parts[4] in accounts:
        parts[4] = accounts[parts[4]]
    return ":".join(parts)
