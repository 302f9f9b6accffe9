"""The ``--aws`` mode, exercised against the sandbox's endpoint as if it were an account.

The target is built exactly as on an account (boto3's default session and credential chain; the
endpoint comes from ``AWS_ENDPOINT_URL``, which the sandbox sets), and the pipeline runs by itself
(a thread pumps the sandbox, as AWS would run it). Only time is simulated: AWS's 5-minute waits are
skipped by telling the pump that the time has passed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import answers, authorization, registration, scenarios
from conformance.account import AccountRun, cleanup_only
from conformance.refusals import PROBES_BY_NAME, Context
from conformance.registry import billing_group_names, group_names, thing_names, type_names
from conformance.run import TAG_KEY, Run, RunError
from conformance.tap import EventTap
from conformance.target import Target
from sandbox.certificates import CertificateAuthority
from tests.conformance.conftest import SOURCE, LaggingPipeline, Pump


def _everything(target: Target, prefix: str) -> list[str]:
    found = []
    for region in (target.source_region, target.destination_region):
        iot = target.iot(region)
        for names in (
            thing_names(iot),
            type_names(iot),
            group_names(iot),
            billing_group_names(iot),
        ):
            found += [f"{region}:{name}" for name in names if name.startswith(prefix)]
    return found


def _state_keys(target: Target) -> list[str]:
    keys = []
    for region in (target.source_region, target.destination_region):
        ddb = target.client("dynamodb", region)
        keys += [i["pk"]["S"] for i in ddb.scan(TableName=target.state_table)["Items"]]
    return keys


def test_refuses_an_account_whose_registry_it_did_not_make(
    account: tuple[Pump, Target],
) -> None:
    _, target = account
    target.source.create_thing(thingName="someone-elses-thing")
    try:
        with pytest.raises(RunError, match=r"someone-elses-thing.*--i-know-this-account-is-shared"):
            AccountRun(target, Run.new()).guard()
        AccountRun(target, Run.new(), shared=True).guard()  # told: runs beside it
    finally:
        target.source.delete_thing(thingName="someone-elses-thing")
    AccountRun(target, Run.new()).guard()  # a conformance-only registry passes


def test_a_run_prefixes_tags_records_and_leaves_nothing_behind(
    account: tuple[Pump, Target], tmp_path: Path
) -> None:
    _, target = account
    run = Run.new()
    log: list[str] = []
    session = AccountRun(target, run, log=log.append).start()
    # The tap: rules, queue and role, named and tagged.
    iot, sqs = target.source, target.client("sqs", SOURCE)
    rules = [r["ruleName"] for r in iot.list_topic_rules()["rules"]]
    assert sorted(rules) == sorted(session.tap.rule_names) and all(
        rule.startswith(run.rule_prefix) for rule in rules
    )
    (queue,) = sqs.list_queues(QueueNamePrefix=run.prefix)["QueueUrls"]
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {TAG_KEY: run.run_id}

    for scenario in (scenarios.things, scenarios.drift_and_repair):
        scenario(target, run.scope(scenario.__name__.replace("_", "-")))
    for name in ("delete_thing_with_principals", "delete_thing_type_in_use"):
        probe = PROBES_BY_NAME[name]
        ctx = Context(
            run.scope(name.replace("_", "-")),
            target.let_time_pass,
            target.wait_until,
            now=target.now,
            client=lambda service: target.client(service, SOURCE),
        )
        session.record_refusal(name, probe.operation, probe.provoke(target.source, ctx))
    answered = authorization.run(
        target.source, run.scope("authorization"), target.wait_until, target.let_time_pass
    )
    for question, answer in answered.items():
        session.record_authorization(question, answer)
    # Source -> destination, while the pipeline replicates the source's certificates too.
    registered = registration.ask(target.source, target.destination, run.scope("registration"))
    for question, answer in registered.items():
        session.record_registration(question, answer)

    # Every registry entry of the run, in both regions, carries the prefix; every create call
    # that can carry a tag carried the run's (moto keeps no IoT tags, so the requests are checked).
    assert len(_everything(target, run.prefix)) > 10
    counts = target.calls.snapshot()
    assert counts["iot:CreateThingGroup"] and counts["iot:CreateThingType"]
    assert counts["iot:CreateBillingGroup"] and counts["iot:CreateTopicRule"] == 6
    assert target.calls.untagged == []

    record = session.finish(tmp_path / "answers.json")

    # What it recorded: the registry events the tap saw, anonymised, and the refusals.
    recorded = answers.load(record)
    kinds = {(e["eventType"], e["operation"]) for e in recorded["events"]}
    assert {
        ("THING_EVENT", "CREATED"),
        ("THING_GROUP_EVENT", "CREATED"),
        ("THING_GROUP_MEMBERSHIP_EVENT", "ADDED"),
        ("THING_GROUP_HIERARCHY_EVENT", "ADDED"),
        ("THING_TYPE_EVENT", "CREATED"),
    } <= kinds
    assert run.prefix not in record.read_text()
    assert {r["probe"]: r["code"] for r in recorded["refusals"]} == {
        "delete_thing_type_in_use": "InvalidRequestException",
        "delete_thing_with_principals": "InvalidRequestException",
    }
    assert {a["question"]: a["authDecision"] for a in recorded["authorizations"]} == {
        question: answer.decision for question, answer in answered.items()
    }
    assert recorded["registrations"] == [
        {
            "question": question,
            "operation": "RegisterCertificateWithoutCA",
            "source": recorded["registrations"][0]["source"],
            "verified_on_account": True,
            "code": None,
            "message": "",
        }
        for question in sorted(registration.QUESTIONS)
    ]
    assert session.contradictions == []  # the sandbox agrees with the committed answers
    # What it left behind: nothing.
    assert _everything(target, run.prefix) == []
    assert not [r for r in iot.list_topic_rules()["rules"] if run.rule_prefix in r["ruleName"]]
    assert not sqs.list_queues(QueueNamePrefix=run.prefix).get("QueueUrls")
    assert not [key for key in _state_keys(target) if run.prefix in key]
    for region in (SOURCE, target.destination_region):
        assert target.iot(region).list_ca_certificates()["certificates"] == []
    assert target.iot(SOURCE).list_certificates()["certificates"] == []
    assert not [p for p in iot.list_policies()["policies"] if run.prefix in p["policyName"]]
    # What it cost, by call.
    counts = target.calls.snapshot()
    assert counts["iot:CreateThing"] >= 5 and counts["stepfunctions:StartExecution"] >= 1
    assert any(line.startswith("iot: ") for line in target.calls.summary())


def _interrupted(target: Target, run: Run, *, registry: bool = True) -> None:
    """An interrupted run: tap open, resources of every kind, replicated, one with a principal
    (``registry=False``: only what an interrupted onboarding probe leaves)."""
    EventTap(target.client, SOURCE, run).open(target.wait_until)
    scope = run.scope("left")
    src = target.source
    if registry:
        src.create_thing_type(thingTypeName=scope("type"), tags=run.tags)
        src.create_thing_group(thingGroupName=scope("site"), tags=run.tags)
        src.create_thing_group(
            thingGroupName=scope("floor"), parentGroupName=scope("site"), tags=run.tags
        )
        src.create_billing_group(billingGroupName=scope("billing"), tags=run.tags)
        src.create_thing(thingName=scope("device"), thingTypeName=scope("type"))
        src.add_thing_to_thing_group(thingName=scope("device"), thingGroupName=scope("floor"))
        certificate = src.create_keys_and_certificate(setAsActive=True)
        arn = certificate["certificateArn"]
        src.attach_thing_principal(thingName=scope("device"), principal=arn)
    # ... and what an interrupted onboarding probe leaves (conformance.onboarding_refusals).
    role = target.client("iam", SOURCE).create_role(
        RoleName=scope("role"), AssumeRolePolicyDocument="{}", Tags=run.tags
    )["Role"]["Arn"]
    src.create_provisioning_template(
        templateName=scope("template"), templateBody="{}", provisioningRoleArn=role, type="JITP"
    )
    authority = CertificateAuthority.new(scope("ca"))
    src.register_ca_certificate(
        caCertificate=authority.pem,
        certificateMode="SNI_ONLY",
        setAsActive=True,
        registrationConfig={"templateName": scope("template")},
    )
    src.register_certificate(certificatePem=authority.issue("d"), setAsActive=True)
    src.create_role_alias(roleAlias=scope("alias"), roleArn=role)
    src.create_authorizer(
        authorizerName=scope("authorizer"),
        authorizerFunctionArn="arn:aws:lambda:us-east-1:123456789012:function:f",
        signingDisabled=True,
    )
    scenarios.converge(target, scope)
    # 5 in the source, 4 replicated (the onboarding kinds are not counted)
    assert len(_everything(target, run.prefix)) == (9 if registry else 0)


def _nothing_left(target: Target, run: Run) -> None:
    src = target.source
    assert _everything(target, run.prefix) == []
    assert not [r for r in src.list_topic_rules()["rules"] if run.rule_prefix in r["ruleName"]]
    assert not target.client("sqs", SOURCE).list_queues(QueueNamePrefix=run.prefix).get("QueueUrls")
    assert not [key for key in _state_keys(target) if run.prefix in key]
    assert src.list_certificates()["certificates"] == []
    assert src.list_ca_certificates()["certificates"] == []
    assert src.list_provisioning_templates()["templates"] == []
    assert src.list_role_aliases()["roleAliases"] == []
    assert src.list_authorizers()["authorizers"] == []
    roles = target.client("iam", SOURCE).list_roles()["Roles"]
    assert not [r for r in roles if r["RoleName"].startswith(run.prefix)]


def test_cleanup_only_removes_what_an_interrupted_run_left(
    account: tuple[Pump, Target],
) -> None:
    _, target = account
    run = Run("interrupted1")
    _interrupted(target, run)

    cleanup_only(target, run.run_id, log=lambda line: None)

    _nothing_left(target, run)


@pytest.mark.parametrize("registry", [True, False], ids=["everything", "onboarding-only"])
def test_cleanup_waits_for_the_pipeline_to_carry_every_deletion_it_makes(
    lagging_account: tuple[LaggingPipeline, Target], registry: bool
) -> None:
    """The pipeline writes a tombstone for each deletion cleanup makes, however late: cleanup's
    last pass over the state table comes only once each has landed (here the pipeline sees a call
    only once cleanup has waited 5 s since; it flaked under load before, the template's tombstone
    landing after that pass). Onboarding leftovers alone: no registry deletion to wait for."""
    pipeline, target = lagging_account
    run = Run("interrupted2")
    _interrupted(target, run, registry=registry)

    log: list[str] = []
    cleanup_only(target, run.run_id, log=log.append)
    pipeline.finish()  # anything the pipeline still had to write lands now

    _nothing_left(target, run)
    assert not [line for line in log if "not true after" in line]  # waited, never timed out
