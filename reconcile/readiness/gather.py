"""Readiness's AWS reads: the facts ``devices`` and ``checks`` decide on, and nothing else.

Every IoT call goes through the region's one IoT client (``pipeline.iot.Iot``: ``call``,
``maybe``, ``items``), paced by a rate limiter at each API's default quota
(``reconcile.ratelimit``). Per device (a thing and one of its certificates):

- choosing it: ListPrincipalThings per certificate of ListCertificates' (all, or a sample),
  or ListThingPrincipals per thing named;
- in the source: DescribeCertificate, TestAuthorization (every question in one call);
- in the destination: ListThingPrincipals (is the thing there, is the certificate attached),
  DescribeCertificate, TestAuthorization;
- only for a device found not ready: GetPolicy of each policy its answers name, once per
  policy and region.

Six calls per device, each API's at most one per device and region, each quota 10 TPS:
devices run concurrently (``workers``) so the checks of 100,000 devices take about 10,000 s at
the quotas (``README.md``, known limits).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from pipeline.aws import AwsCalls
from pipeline.errors import NotFoundError
from pipeline.eventconfig import describe_events, indexing_configuration
from pipeline.iot import Iot
from reconcile.context import in_region
from reconcile.doctor import dynamic_thing_groups
from reconcile.readiness.checks import (
    AccountFacts,
    Authorizer,
    DomainConfiguration,
    Quota,
    TopicRule,
)
from reconcile.readiness.devices import (
    Answer,
    Certificate,
    DeviceFacts,
    Probes,
    Question,
    RegionFacts,
    failing,
    policies_to_read,
)

WORKERS = 8  # devices checked at once: enough to keep each 10 TPS API busy at ~100 ms a call


@dataclass(frozen=True)
class Device:
    thing: str
    certificate_id: str
    certificate_arn: str  # in the source


@dataclass(frozen=True)
class Selection:
    devices: tuple[Device, ...]
    skipped: tuple[str, ...]  # why a thing named or a certificate listed is no device


def select_devices(
    source: Iot, things: Sequence[str], sample: int | None, rng: random.Random
) -> Selection:
    """The devices to check: each thing named with each of its certificates; else every
    certificate's things (``sample`` certificates, picked by ``rng``, when given)."""
    devices: list[Device] = []
    skipped: list[str] = []
    if things:
        for thing in dict.fromkeys(things):
            try:
                principals = list(source.items("ListThingPrincipals", thingName=thing))
            except NotFoundError:
                skipped.append(f"thing {thing}: not in the source region")
                continue
            certificates = [p for p in principals if ":cert/" in p]
            if not certificates:
                skipped.append(f"thing {thing}: no certificate attached")
            devices += [Device(thing, arn.rpartition("/")[2], arn) for arn in certificates]
        return Selection(tuple(devices), tuple(skipped))
    listed = sorted(
        (c["certificateId"], c["certificateArn"]) for c in source.items("ListCertificates")
    )
    if sample is not None and sample < len(listed):
        listed = sorted(rng.sample(listed, sample))
    for certificate_id, arn in listed:
        owners = sorted(source.items("ListPrincipalThings", principal=arn))
        if not owners:
            skipped.append(f"certificate {certificate_id}: attached to no thing")
        devices += [Device(thing, certificate_id, arn) for thing in owners]
    return Selection(tuple(devices), tuple(skipped))


class DeviceReader:
    """Reads the facts of devices in both regions; one per run (it keeps the policies read)."""

    def __init__(
        self,
        source: Iot,
        destination: Iot,
        regions: tuple[str, str],
        probes: Probes,
        refused: Mapping[str, str] | None = None,
    ) -> None:
        """``refused``: certificate id -> why the destination refused to register it."""
        self._iot = {regions[0]: source, regions[1]: destination}
        self._refused = dict(refused or {})
        self._regions = regions
        self._probes = probes
        self._policies: dict[tuple[str, str], str | None] = {}
        self._lock = threading.Lock()

    def facts(self, devices: Sequence[Device], workers: int = WORKERS) -> list[DeviceFacts]:
        """Each device's facts, in order, ``workers`` devices at a time."""
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return list(pool.map(self.device, devices))

    def device(self, device: Device) -> DeviceFacts:
        source, destination = self._regions
        questions = self._probes.questions(device.thing)
        client_id = self._probes.client_id(device.thing)
        facts = DeviceFacts(
            device.thing,
            device.certificate_id,
            questions,
            self._region(source, device, questions, client_id, known=True),
            self._region(destination, device, questions, client_id, known=False),
            refused=self._refused.get(device.certificate_id),
        )
        if not failing(facts):
            return facts
        in_source, in_destination = policies_to_read(facts)
        return replace(
            facts,
            source=replace(facts.source, policies=self._documents(source, in_source)),
            destination=replace(
                facts.destination, policies=self._documents(destination, in_destination)
            ),
        )

    def _region(
        self,
        region: str,
        device: Device,
        questions: tuple[Question, ...],
        client_id: str,
        *,
        known: bool,
    ) -> RegionFacts:
        """``known``: the thing and its attachment were just read there (the source's)."""
        with in_region(region):
            return self._read_region(region, device, questions, client_id, known=known)

    def _read_region(
        self,
        region: str,
        device: Device,
        questions: tuple[Question, ...],
        client_id: str,
        *,
        known: bool,
    ) -> RegionFacts:
        iot = self._iot[region]
        thing_exists = attached = known
        if not known:
            try:
                principals = list(iot.items("ListThingPrincipals", thingName=device.thing))
                thing_exists = True
                attached = any(p.endswith(f"/{device.certificate_id}") for p in principals)
            except NotFoundError:
                pass
        described = iot.maybe("DescribeCertificate", certificateId=device.certificate_id)
        if described is None:
            return RegionFacts(region, thing_exists, attached, None)
        description = described["certificateDescription"]
        certificate = Certificate(
            device.certificate_id, description["certificateArn"], description["status"]
        )
        partition, account = certificate.partition_and_account
        arns = [q.arn(partition, region, account) for q in questions]
        response = iot.call(
            "TestAuthorization",
            principal=certificate.arn,
            clientId=client_id,
            authInfos=[
                {"actionType": q.action_type, "resources": [arn]}
                for q, arn in zip(questions, arns, strict=True)
            ],
        )
        by_arn = dict(zip(arns, questions, strict=True))
        results = response.get("authResults") or []
        answers = tuple(
            _answer(result, by_arn, questions[min(i, len(questions) - 1)])
            for i, result in enumerate(results)
        )
        return RegionFacts(region, thing_exists, attached, certificate, answers)

    def _documents(self, region: str, names: set[str]) -> dict[str, str | None]:
        documents = {}
        for name in sorted(names):
            key = (region, name)
            with self._lock:
                known = key in self._policies
            if not known:
                with in_region(region):
                    policy = self._iot[region].maybe("GetPolicy", policyName=name)
                with self._lock:
                    self._policies[key] = policy["policyDocument"] if policy else None
            documents[name] = self._policies[key]
        return documents


def _answer(result: dict[str, Any], questions: dict[str, Question], asked: Question) -> Answer:
    """An AuthResult (AWS IoT API Reference, AuthResult: ``authInfo`` as asked,
    ``authDecision``, ``allowed``/``denied`` {``explicitDeny``, ``implicitDeny``} policies):
    matched to its question by the resource it names, else by its place ("a response for each
    authInfo object in the list", TestAuthorization)."""
    resources = (result.get("authInfo") or {}).get("resources") or []
    question = questions.get(resources[0], asked) if len(resources) == 1 else asked
    denied = result.get("denied") or {}

    def names(part: dict[str, Any] | None) -> tuple[str, ...]:
        return tuple(p["policyName"] for p in (part or {}).get("policies") or [])

    return Answer(
        question,
        result["authDecision"],
        allowed_by=names(result.get("allowed")),
        denied_by=names(denied.get("explicitDeny")),
        evaluated=names(denied.get("implicitDeny")),
    )


def account_facts(
    iot: Iot,
    function_exists: Callable[[str], bool],
    region: str,
    quotas: Mapping[str, Quota] | None = None,
) -> AccountFacts:
    """What ``region``'s account holds that devices rely on (``checks``); ``function_exists``
    answers for a Lambda function ARN of this region; ``quotas`` are its applied quotas."""
    endpoint = iot.call("DescribeEndpoint", endpointType="iot:Data-ATS").get("endpointAddress")
    domains = tuple(
        _domain(iot.call("DescribeDomainConfiguration", domainConfigurationName=name))
        for name in sorted(
            d["domainConfigurationName"] for d in iot.items("ListDomainConfigurations")
        )
    )
    authorizers = []
    for summary in iot.items("ListAuthorizers"):
        found = iot.call("DescribeAuthorizer", authorizerName=summary["authorizerName"])
        description = found["authorizerDescription"]
        arn = description.get("authorizerFunctionArn") or ""
        authorizers.append(
            Authorizer(
                description["authorizerName"],
                arn,
                description.get("status") or "",
                arn.split(":")[3:4] == [region] and function_exists(arn),
            )
        )
    role_aliases = {
        alias: iot.call("DescribeRoleAlias", roleAlias=alias)["roleAliasDescription"]["roleArn"]
        for alias in iot.items("ListRoleAliases")
    }
    rules = {
        rule["ruleName"]: TopicRule(
            iot.call("GetTopicRule", ruleName=rule["ruleName"])["rule"]["sql"],
            bool(rule.get("ruleDisabled")),
        )
        for rule in iot.items("ListTopicRules")
    }
    return AccountFacts(
        region,
        endpoint=endpoint,
        domain_configurations=domains,
        authorizers=tuple(sorted(authorizers, key=lambda a: a.name)),
        role_aliases=role_aliases,
        ca_certificates={c["certificateId"]: c["status"] for c in iot.items("ListCACertificates")},
        provisioning_templates={
            t["templateName"]: bool(t.get("enabled"))
            for t in iot.items("ListProvisioningTemplates")
        },
        topic_rules=rules,
        events=describe_events(iot.client),
        indexing=indexing_configuration(iot.client),
        dynamic_groups=tuple(dynamic_thing_groups(iot.client)),
        quotas=dict(quotas or {}),
    )


def _domain(found: dict[str, Any]) -> DomainConfiguration:
    return DomainConfiguration(
        found["domainConfigurationName"],
        found.get("domainName"),
        found.get("serviceType"),
        found.get("domainConfigurationStatus"),
        (found.get("authorizerConfig") or {}).get("defaultAuthorizerName"),
        (found.get("tlsConfig") or {}).get("securityPolicy"),
    )


def applied_quotas(aws: AwsCalls, client: Any) -> dict[str, Quota]:
    """The account's applied AWS IoT Core quotas in ``client``'s region (Service Quotas API
    Reference, ListServiceQuotas: applied values, where available; a quota without one is not
    listed), by quota code."""
    quotas: dict[str, Quota] = {}
    token: dict[str, str] = {}
    while True:
        page = aws("ListServiceQuotas", client.list_service_quotas, ServiceCode="iotcore", **token)
        for quota in page.get("Quotas") or ():
            quotas[quota["QuotaCode"]] = Quota(quota.get("QuotaName") or "", quota["Value"])
        if not page.get("NextToken"):
            return quotas
        token = {"NextToken": page["NextToken"]}


def lambda_function_exists(aws: AwsCalls, client: Any) -> Callable[[str], bool]:
    """GetFunction (AWS Lambda API Reference) on ``client``'s region: does the function exist?"""

    def exists(arn: str) -> bool:
        return aws.maybe("GetFunction", client.get_function, FunctionName=arn) is not None

    return exists
