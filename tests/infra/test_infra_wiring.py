"""The templates' wiring matches the code and the design: lint, handlers, env, stream mapping, rules."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.infra_templates import INFRA, REPO_ROOT, STATEMACHINES, resources_of_type, walk

# The one place that names every entry point the templates deploy.
EXPECTED_HANDLERS = {
    "pipeline.persist.lambda_handler",
    "pipeline.replicate.lambda_handler",
    "pipeline.pending.lambda_handler",
    "jobs.nightly.lambda_handler",
}
# The environment each entry point reads (and the templates must set, no more and no less).
EXPECTED_ENV = {
    # pipeline.kinds.shadow_selection.VARIABLES: which shadows and sections are replicated.
    "pipeline.persist.lambda_handler": {
        "STATE_TABLE",
        "SHADOW_INCLUDE",
        "SHADOW_EXCLUDE",
        "SHADOW_SECTIONS",
    },
    # FAILURE_QUEUE_URL: where the replicator sends records it rejects for good (pipeline.settings).
    "pipeline.replicate.lambda_handler": {
        "STATE_TABLE",
        "TYPE_DELETE_DELAY_SECONDS",
        "FAILURE_QUEUE_URL",
        # pipeline.policyrewrite.ACCOUNT_MAP_VARIABLE: accounts in replicated policies' ARNs.
        "POLICY_ACCOUNT_MAP",
    },
    "pipeline.pending.lambda_handler": {"STATE_TABLE"},
    "jobs.nightly.lambda_handler": {
        "SOURCE_REGION",
        "TARGET_REGION",
        "STATE_TABLE",
        "PERSIST_STATE_MACHINE_ARN",
        "REPORT_LOCATION",
        "MAX_CHANGES",
        "ALLOW_DELETES",
        "IGNORE_PATTERNS",
        "POLICY_ACCOUNT_MAP",
        # jobs.config: the readiness check's sample and topics (reconcile.readiness)
        "READINESS_SAMPLE",
        "READINESS_PUBLISH",
        # jobs.config: the topic globs of the retained messages listed (docs/retained.md)
        "RETAINED_TOPICS",
        # jobs.config: the shadow listing (opt-in) and selection, as the persist function's.
        "LIST_SHADOWS",
        # jobs.config: the listings run in parts (reconcile.partition).
        "LIST_IN_PARTS",
        # jobs.config: the per-device links listed one slice a run (reconcile.sweep).
        "SWEEP_SLICES",
        "SHADOW_INCLUDE",
        "SHADOW_EXCLUDE",
        "SHADOW_SECTIONS",
        # jobs.runlock: the run lock's table (its ARN).
        "RUN_LOCK_TABLE",
    },
}
REGISTRY_TOPIC_FAMILIES = {
    "thing",
    "thingType",
    "thingTypeAssociation",
    "thingGroup",
    "thingGroupMembership",
    "thingGroupHierarchy",
}


def _functions(templates: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every project function (not the inline custom-resource helper) keyed by its entry point."""
    found: dict[str, dict[str, Any]] = {}
    for template in templates.values():
        for resource in resources_of_type(template, "AWS::Serverless::Function").values():
            props = resource["Properties"]
            if "InlineCode" in props:
                continue
            if props.get("PackageType") == "Image":
                entry = props["ImageConfig"]["Command"][0]
            else:
                entry = props["Handler"]
            assert entry not in found, f"{entry} deployed twice"
            found[entry] = props
    return found


def test_cfn_lint_passes_on_every_template() -> None:
    # GIVEN every template under infra/  WHEN cfn-lint (offline, SAM-aware) runs  THEN it is clean
    templates = sorted(str(p) for p in INFRA.glob("*.yaml"))
    assert len(templates) == 3
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), *templates], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_templates_deploy_exactly_the_expected_entry_points(templates: dict[str, Any]) -> None:
    assert set(_functions(templates)) == EXPECTED_HANDLERS


@pytest.mark.parametrize("entry_point", sorted(EXPECTED_HANDLERS))
def test_entry_point_resolves_to_a_callable(entry_point: str) -> None:
    # A missing module fails here on purpose: a template must never deploy a handler that is absent.
    module_name, _, attribute = entry_point.rpartition(".")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute))


@pytest.mark.parametrize("entry_point", sorted(EXPECTED_HANDLERS))
def test_function_environment_names_match(templates: dict[str, Any], entry_point: str) -> None:
    props = _functions(templates)[entry_point]
    assert set(props["Environment"]["Variables"]) == EXPECTED_ENV[entry_point]


@pytest.mark.parametrize("entry_point", sorted(EXPECTED_HANDLERS))
def test_code_reads_the_environment_names(entry_point: str) -> None:
    # The handler's package must mention every name the template sets (and so reads it somewhere).
    package = REPO_ROOT / entry_point.split(".", maxsplit=1)[0]
    source = "\n".join(p.read_text() for p in package.rglob("*.py"))
    if entry_point.startswith("jobs."):
        source += "\n".join(p.read_text() for p in (REPO_ROOT / "reconcile").rglob("*.py"))
    missing = {name for name in EXPECTED_ENV[entry_point] if name not in source}
    assert not missing, f"{entry_point}: no code reads {sorted(missing)}"


def test_fargate_task_runs_the_job_module_with_the_same_environment(
    templates: dict[str, Any],
) -> None:
    task = resources_of_type(templates["reconcile"], "AWS::ECS::TaskDefinition")
    (container,) = next(iter(task.values()))["Properties"]["ContainerDefinitions"]
    assert container["EntryPoint"] + container["Command"] == ["python", "-m", "jobs.nightly"]
    names = {variable["Name"] for variable in container["Environment"]}
    assert names == EXPECTED_ENV["jobs.nightly.lambda_handler"]
    assert container["Image"] == {"Fn::GetAtt": ["JobImage", "ImageUri"]}


def test_dockerfile_default_command_is_the_job_handler(templates: dict[str, Any]) -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    (base,) = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert base.startswith("FROM python:3.11-slim@")
    assert 'CMD ["jobs.nightly.lambda_handler"]' in dockerfile
    function = _functions(templates)["jobs.nightly.lambda_handler"]
    assert function["ImageConfig"]["Command"] == ["jobs.nightly.lambda_handler"]


def test_zip_functions_use_a_supported_python_and_the_repo_root(templates: dict[str, Any]) -> None:
    for name in ("source", "destination"):
        function_globals = templates[name]["Globals"]["Function"]
        assert function_globals["Runtime"] in {"python3.11", "python3.12"}
        assert function_globals["CodeUri"] == "../"


def test_replicator_stream_mapping_settings(templates: dict[str, Any]) -> None:
    (mapping,) = resources_of_type(
        templates["destination"], "AWS::Lambda::EventSourceMapping"
    ).values()
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Ref": "StateTableStreamArn"}
    assert props["FunctionName"] == {"Ref": "ReplicatorFunction"}
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 < props["MaximumRetryAttempts"] <= 10
    assert 0 < props["MaximumRecordAgeInSeconds"] <= 86400
    destination = props["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": ["ReplicatorFailureQueue", "Arn"]}
    queues = resources_of_type(templates["destination"], "AWS::SQS::Queue")
    assert "ReplicatorFailureQueue" in queues


def test_replicator_gets_the_type_delete_delay_default(templates: dict[str, Any]) -> None:
    assert templates["destination"]["Parameters"]["TypeDeleteDelaySeconds"]["Default"] == 300


def test_replicator_gets_the_policy_account_map_empty_by_default(
    templates: dict[str, Any],
) -> None:
    parameter = templates["destination"]["Parameters"]["PolicyAccountMap"]
    assert parameter["Default"] == ""
    # The template's pattern accepts what the replicator's parser accepts, and refuses regions.
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("111111111111=222222222222")
    assert not pattern.fullmatch("us-east-1=eu-west-1")
    function = _functions(templates)["pipeline.replicate.lambda_handler"]
    variables = function["Environment"]["Variables"]
    assert variables["POLICY_ACCOUNT_MAP"] == {"Ref": "PolicyAccountMap"}


def test_pending_function_runs_every_five_minutes(templates: dict[str, Any]) -> None:
    events = _functions(templates)["pipeline.pending.lambda_handler"]["Events"]
    schedules = [e["Properties"]["Schedule"] for e in events.values() if e["Type"] == "Schedule"]
    assert schedules == ["rate(5 minutes)"]


_SQL = re.compile(r"^SELECT \*, topic\(\) AS topic FROM '\$aws/events/(?P<family>[A-Za-z]+)/#'$")
_TOPIC_SQL = re.compile(r"^SELECT \*, topic\(\) AS topic FROM '(?P<filter>\$aws/things/[^']+)'$")


def test_rules_select_exactly_the_registry_topic_families(templates: dict[str, Any]) -> None:
    from pipeline.events import EVENT_TOPICS

    rules = resources_of_type(templates["source"], "AWS::IoT::TopicRule").values()
    families = []
    topic_filters = []
    for rule in rules:
        payload = rule["Properties"]["TopicRulePayload"]
        match = _SQL.match(payload["Sql"])
        topic = _TOPIC_SQL.match(payload["Sql"])
        assert match or topic, payload["Sql"]  # no WHERE, no other topic, the topic carried along
        if match:
            families.append(match["family"])
        else:
            assert topic is not None
            topic_filters.append(topic["filter"])
        (action,) = payload["Actions"]
        target = action["StepFunctions"]["StateMachineName"]
        assert target == {"Fn::GetAtt": ["PersistStateMachine", "Name"]}
        assert payload["ErrorAction"]["Sqs"]["QueueUrl"] == {"Ref": "RuleErrorQueue"}
    assert sorted(families) == sorted(REGISTRY_TOPIC_FAMILIES)
    # AND one rule per topic filter of the messages persist parses by topic (device shadows)
    assert sorted(topic_filters) == sorted(EVENT_TOPICS)


def test_control_plane_rule_selects_exactly_the_calls_the_parser_knows(
    templates: dict[str, Any],
) -> None:
    # GIVEN the source stack's EventBridge rules  THEN one selects AWS IoT's CloudTrail calls,
    # exactly the event names pipeline.cloudtrail parses, successful calls only
    from pipeline.cloudtrail import DETAIL_TYPE, EVENT_NAMES, EVENT_SOURCE, SOURCE

    (rule,) = resources_of_type(templates["source"], "AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == [SOURCE]
    assert pattern["detail-type"] == [DETAIL_TYPE]
    assert pattern["detail"]["eventSource"] == [EVENT_SOURCE]
    assert pattern["detail"]["errorCode"] == [{"exists": False}]
    assert sorted(pattern["detail"]["eventName"]) == sorted(EVENT_NAMES)
    # AND it starts the persist state machine, with retries and a dead-letter queue
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "PersistStateMachine"}
    assert target["DeadLetterConfig"]["Arn"] == {
        "Fn::GetAtt": ["ControlPlaneEventsDeadLetterQueue", "Arn"]
    }
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400


def test_state_table_is_a_global_table_with_both_replicas(templates: dict[str, Any]) -> None:
    (table,) = resources_of_type(templates["source"], "AWS::DynamoDB::GlobalTable").values()
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    # Table-level SSE with KMS = encrypted with the AWS managed key on every replica.
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    regions = [replica["Region"] for replica in props["Replicas"]]
    assert regions == [{"Ref": "AWS::Region"}, {"Ref": "DestinationRegion"}]
    for replica in props["Replicas"]:
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == "Retain"


def test_persist_state_machine_is_express_with_its_asl_and_substitutions(
    templates: dict[str, Any],
) -> None:
    (machine,) = resources_of_type(templates["source"], "AWS::Serverless::StateMachine").values()
    props = machine["Properties"]
    assert props["Type"] == "EXPRESS"
    asl_text = (INFRA / props["DefinitionUri"]).read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", asl_text))
    assert (
        placeholders
        == set(props["DefinitionSubstitutions"])
        == {
            "PersistFunctionArn",
            "FailureQueueUrl",
        }
    )
    assert props["DefinitionSubstitutions"]["PersistFunctionArn"] == {
        "Fn::GetAtt": ["PersistFunction", "Arn"]
    }


def test_sharded_state_machine_is_standard_with_its_asl(templates: dict[str, Any]) -> None:
    (machine,) = resources_of_type(templates["reconcile"], "AWS::Serverless::StateMachine").values()
    props = machine["Properties"]
    assert props["Type"] == "STANDARD"
    assert (INFRA / props["DefinitionUri"]).resolve() == (
        STATEMACHINES / "reconcile-sharded.asl.json"
    ).resolve()
    asl_text = (INFRA / props["DefinitionUri"]).read_text()
    assert set(re.findall(r"\$\{(\w+)\}", asl_text)) == set(props["DefinitionSubstitutions"])


def test_nightly_schedule_has_retries_and_a_dead_letter_queue(templates: dict[str, Any]) -> None:
    (schedule,) = resources_of_type(templates["reconcile"], "AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == {"Ref": "ScheduleExpression"}
    assert templates["reconcile"]["Parameters"]["ScheduleExpression"]["Default"].startswith("cron(")
    assert props["ScheduleExpressionTimezone"] == {"Ref": "ScheduleTimezone"}
    assert props["FlexibleTimeWindow"]["Mode"] in {"OFF", "FLEXIBLE"}
    condition, fargate_target, lambda_target = props["Target"]["Fn::If"]
    assert condition == "UseFargate"
    assert lambda_target["Arn"] == {"Fn::GetAtt": ["ReconcileFunction", "Arn"]}
    assert fargate_target["EcsParameters"]["LaunchType"] == "FARGATE"
    for target in (fargate_target, lambda_target):
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert target["DeadLetterConfig"]["Arn"] == {
            "Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]
        }


def test_report_bucket_is_private_encrypted_and_versioned(templates: dict[str, Any]) -> None:
    bucket = templates["reconcile"]["Resources"]["ReportBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}


def _alarms(templates: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        alarm["Properties"]
        for template in templates.values()
        for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
    ]


def test_alarms_cover_queues_iterator_age_errors_and_drift(templates: dict[str, Any]) -> None:
    alarms = _alarms(templates)
    by_metric: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for alarm in alarms:
        by_metric.setdefault((alarm["Namespace"], alarm["MetricName"]), []).append(alarm)
    queue_alarms = by_metric[("AWS/SQS", "ApproximateNumberOfMessagesVisible")]
    watched_queues = {a["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in queue_alarms}
    all_queues = {
        name for t in templates.values() for name in resources_of_type(t, "AWS::SQS::Queue")
    }
    assert watched_queues == all_queues  # every failure/dead-letter queue has a depth alarm
    for alarm in queue_alarms:
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    (iterator_age,) = by_metric[("AWS/Lambda", "IteratorAge")]
    assert iterator_age["Dimensions"][0]["Value"] == {"Ref": "ReplicatorFunction"}
    error_functions = {
        a["Dimensions"][0]["Value"]["Ref"] for a in by_metric[("AWS/Lambda", "Errors")]
    }
    assert "ReplicatorFunction" in error_functions
    # The drift alarm watches the metric the job really emits (EMF, see jobs.metrics).
    metrics = importlib.import_module("jobs.metrics")
    (drift,) = by_metric[(metrics.METRIC_NAMESPACE, "DriftTotal")]
    assert drift["Threshold"] == 0
    assert drift["Dimensions"] == [{"Name": "Service", "Value": metrics.SERVICE}]
    assert '"DriftTotal"' in (REPO_ROOT / "jobs" / "metrics.py").read_text()


def test_no_template_uses_sam_generated_roles(templates: dict[str, Any]) -> None:
    # SAM's generated roles attach AWSLambdaBasicExecutionRole (logs on "*"), invisible to the
    # wildcard check; every function and state machine must name its explicit role instead.
    for template in templates.values():
        for name, resource in template["Resources"].items():
            if resource["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}:
                props = resource["Properties"]
                assert "Role" in props, name
                assert "Policies" not in props, name
    assert not any(
        isinstance(node, dict) and "ScheduleV2" in str(node.get("Type", ""))
        for template in templates.values()
        for node in walk(template)
    )


def test_source_stack_can_join_an_existing_global_table(templates: dict[str, Any]) -> None:
    """Two-way (docs/deploy.md): the second region's source stack must not create the table
    again, and its persist role must still reach the local replica; echo-ledger items expire."""
    source = templates["source"]
    assert source["Parameters"]["CreateStateTable"]["AllowedValues"] == ["true", "false"]
    table = source["Resources"]["StateTable"]
    assert table["Condition"] == "OwnsStateTable"
    assert table["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at",
        "Enabled": True,
    }
    for name, output in source["Outputs"].items():
        if "StateTable.Arn" in str(output) or "StateTable.StreamArn" in str(output):
            assert output.get("Condition") == "OwnsStateTable", name
    # No unconditional resource refers to the (possibly absent) table resource.
    for name, resource in source["Resources"].items():
        if name != "StateTable" and "Condition" not in resource:
            assert "'StateTable'" not in str(resource), name
