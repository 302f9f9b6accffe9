"""Readiness's account-level checks: two regions' account facts in, pass/fail with the fix out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.eventconfig import REGISTRY_EVENT_TYPES
from reconcile.readiness.checks import (
    AccountFacts,
    Authorizer,
    Check,
    DomainConfiguration,
    Quota,
    TopicRule,
    account_checks,
)

SRC, DST = "us-east-1", "eu-west-1"
ON = dict.fromkeys(REGISTRY_EVENT_TYPES, True)
FUNCTION = "arn:aws:lambda:{region}:123456789012:function:auth"
DOMAIN = DomainConfiguration("devices", "iot.example.com", "DATA", "ENABLED", "auth", "Policy-1")


def _account(region: str, **changes: object) -> AccountFacts:
    facts = AccountFacts(
        region,
        endpoint=f"abc-ats.iot.{region}.amazonaws.com",
        domain_configurations=(DOMAIN,),
        authorizers=(Authorizer("auth", FUNCTION.format(region=region), "ACTIVE", True),),
        role_aliases={"upload": "arn:aws:iam::123456789012:role/upload"},
        ca_certificates={"ca1": "ACTIVE"},
        provisioning_templates={"fleet": True},
        topic_rules={"telemetry": TopicRule("SELECT * FROM 'telemetry/#'", False)},
        events=ON,
        indexing={"thingIndexingConfiguration": {"thingIndexingMode": "OFF"}},
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


def _failed(destination: AccountFacts, source: AccountFacts | None = None) -> list[Check]:
    return [c for c in account_checks(source or _account(SRC), destination) if not c.ok]


def test_an_account_configured_alike_passes_every_check() -> None:
    checks = account_checks(_account(SRC), _account(DST))
    assert all(c.ok for c in checks)
    assert [c.check for c in checks] == [
        "data endpoint",
        "domain configurations",
        "custom authorizers",
        "role aliases",
        "CA certificates",
        "provisioning templates",
        "registry events and fleet indexing",
        "topic rules",
        "quotas",
    ]
    assert checks[0].detail.startswith("abc-ats.iot.eu-west-1.amazonaws.com (the source's: ")


def test_no_data_endpoint_fails() -> None:
    (check,) = _failed(_account(DST, endpoint=None))
    assert check.check == "data endpoint"
    assert "--endpoint-type iot:Data-ATS" in check.fix


@pytest.mark.parametrize(
    ("domains", "problem"),
    [
        ((), "domain configuration devices (iot.example.com) has no counterpart in eu-west-1"),
        ((replace(DOMAIN, domain="other.example.com"),), "serves other.example.com"),
        ((replace(DOMAIN, status="DISABLED"),), "is DISABLED"),
        ((replace(DOMAIN, authorizer=None),), "authorizer None, the source's auth"),
        ((replace(DOMAIN, tls_policy="Policy-2"),), "TLS policy Policy-2, the source's Policy-1"),
    ],
)
def test_a_custom_domain_needs_its_counterpart(
    domains: tuple[DomainConfiguration, ...], problem: str
) -> None:
    (check,) = _failed(_account(DST, domain_configurations=domains))
    assert check.check == "domain configurations"
    assert problem in check.detail
    assert check.blocks


def test_an_aws_managed_domain_differs_by_region_and_is_fine() -> None:
    managed = replace(DOMAIN, domain="abc-ats.iot.{}.amazonaws.com")
    source = _account(SRC, domain_configurations=(replace(managed, domain="a.amazonaws.com"),))
    destination = _account(DST, domain_configurations=(replace(managed, domain="b.amazonaws.com"),))
    assert _failed(destination, source) == []


@pytest.mark.parametrize(
    ("authorizer", "problem"),
    [
        (None, "authorizer auth is missing"),
        (Authorizer("auth", FUNCTION.format(region=DST), "INACTIVE", True), "is INACTIVE"),
        (
            Authorizer("auth", FUNCTION.format(region=SRC), "ACTIVE", True),
            "a function of us-east-1: it fails with the source region",
        ),
        (Authorizer("auth", FUNCTION.format(region=DST), "ACTIVE", False), "does not exist"),
    ],
)
def test_a_custom_authorizer_needs_its_function_in_the_destination(
    authorizer: Authorizer | None, problem: str
) -> None:
    authorizers = (authorizer,) if authorizer else ()
    (check,) = _failed(_account(DST, authorizers=authorizers))
    assert check.check == "custom authorizers"
    assert problem in check.detail


def test_role_aliases_ca_certificates_and_templates_must_be_there() -> None:
    failed = _failed(
        _account(
            DST,
            role_aliases={},
            ca_certificates={"ca1": "INACTIVE"},
            provisioning_templates={"fleet": False},
        )
    )
    assert [(c.check, c.detail.split(":")[0]) for c in failed] == [
        ("role aliases", "role alias upload is missing"),
        ("CA certificates", "CA certificate ca1 is INACTIVE"),
        ("provisioning templates", "provisioning template fleet is disabled"),
    ]


def test_a_role_alias_naming_another_role_is_a_warning() -> None:
    (check,) = _failed(_account(DST, role_aliases={"upload": "arn:aws:iam::1:role/x"}))
    assert check.level == "warning"
    assert not check.blocks


def test_a_role_alias_in_a_mapped_account_names_the_mapped_role() -> None:
    mapped = {"upload": "arn:aws:iam::999999999999:role/upload"}
    checks = account_checks(
        _account(SRC), _account(DST, role_aliases=mapped), {"123456789012": "999999999999"}
    )
    assert all(c.ok for c in checks)


def test_registry_events_and_indexing_are_the_doctors_findings() -> None:
    off = dict.fromkeys(REGISTRY_EVENT_TYPES, False)
    (check,) = _failed(_account(DST), _account(SRC, events=off))
    assert check.check == "registry events and fleet indexing"
    assert check.region == SRC
    assert check.fix == f"iot-crr enable-events --region {SRC}"


def test_topic_rules_missing_disabled_or_with_other_sql() -> None:
    for rules, problem in (
        ({}, "is missing"),
        ({"telemetry": TopicRule("SELECT * FROM 'telemetry/#'", True)}, "is disabled"),
        ({"telemetry": TopicRule("SELECT a FROM 'telemetry/#'", False)}, "has other SQL"),
    ):
        (check,) = _failed(_account(DST, topic_rules=rules))
        assert check.check == "topic rules"
        assert problem in check.detail
        assert "the data it ingests stops there" in check.detail


def test_the_pipelines_own_registry_event_rules_are_not_devices() -> None:
    own = {"crr_things": TopicRule("SELECT *, topic() AS topic FROM '$aws/events/thing/#'", False)}
    groups = {"crr_groups": TopicRule("SELECT * FROM '$aws/events/thingGroup/#'", False)}
    source = _account(SRC, topic_rules={**own, **groups})
    assert _failed(_account(DST, topic_rules={}), source) == []


def test_dynamic_groups_need_the_index_in_the_destination_as_the_doctor_says() -> None:
    source = _account(SRC, dynamic_groups=("online",))
    (check,) = _failed(_account(DST), source)
    assert check.check == "registry events and fleet indexing"
    assert check.blocks
    assert "online" in check.detail


CONNECT = Quota("Connect requests per second per account", 500.0)


def test_a_quota_lower_in_the_destination_is_a_warning_with_the_increase_request() -> None:
    # GIVEN a connect quota raised to 500 in the source, at 100 in the destination
    source = _account(SRC, quotas={"L-CONNECT": CONNECT})
    lower = _account(DST, quotas={"L-CONNECT": Quota(CONNECT.name, 100.0)})
    # THEN readiness names it, with the request that raises it, as a warning (devices connect)
    [check] = _failed(lower, source)
    assert (check.check, check.level, check.blocks) == ("quotas", "warning", False)
    assert check.detail == f"{CONNECT.name} (L-CONNECT) is 500 in {SRC}, 100 in {DST}"
    assert check.fix == (
        "aws service-quotas request-service-quota-increase --service-code iotcore "
        f"--quota-code L-CONNECT --desired-value 500 --region {DST}"
    )


def test_a_quota_the_destination_does_not_list_is_named_and_an_equal_or_higher_one_passes() -> None:
    source = _account(SRC, quotas={"L-CONNECT": CONNECT})
    [check] = _failed(_account(DST), source)
    assert check.detail.endswith(f"is 500 in {SRC}, not listed in {DST}")
    for value in (500.0, 1000.0):
        assert (
            _failed(_account(DST, quotas={"L-CONNECT": Quota(CONNECT.name, value)}), source) == []
        )
