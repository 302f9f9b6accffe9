"""Each AWS behaviour the sandbox supplies where moto 5.2.5 differs (sandbox.emulation.MOTO_GAPS)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.certificates import self_signed_pem
from sandbox.emulation import wait_for_executions
from sandbox.emulation.refusals import POLICY_DELETE_AFTER_DETACH_SECONDS
from sandbox.stack import Sandbox

SOURCE = "us-east-1"


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_aws_delete_thing_of_a_missing_thing_succeeds(box: Sandbox) -> None:
    box.iot(SOURCE).delete_thing(thingName="never-existed")
    assert len(box.outbox(SOURCE)) == 0  # nothing was deleted, nothing is published


def test_aws_delete_thing_removes_it_from_its_groups(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    iot.create_thing(thingName="t1")
    iot.create_thing_group(thingGroupName="g1")
    iot.add_thing_to_thing_group(thingGroupName="g1", thingName="t1")
    iot.delete_thing(thingName="t1")
    assert iot.list_things_in_thing_group(thingGroupName="g1")["things"] == []


def test_aws_create_thing_is_idempotent_for_the_same_config(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    first = iot.create_thing(thingName="t1", attributePayload={"attributes": {"a": "1"}})
    box.outbox(SOURCE).take()
    again = iot.create_thing(thingName="t1", attributePayload={"attributes": {"a": "1"}})
    assert again["thingId"] == first["thingId"]
    assert len(box.outbox(SOURCE)) == 0


def test_aws_create_thing_with_a_different_config_raises_resource_already_exists(
    box: Sandbox,
) -> None:
    iot = box.iot(SOURCE)
    iot.create_thing(thingName="t1", attributePayload={"attributes": {"a": "1"}})
    with pytest.raises(ClientError) as error:
        iot.create_thing(thingName="t1", attributePayload={"attributes": {"a": "2"}})
    assert _code(error) == "ResourceAlreadyExistsException"
    assert iot.describe_thing(thingName="t1")["attributes"] == {"a": "1"}


def test_aws_create_thing_type_with_different_properties_raises_resource_already_exists(
    box: Sandbox,
) -> None:
    iot = box.iot(SOURCE)
    iot.create_thing_type(thingTypeName="s", thingTypeProperties={"thingTypeDescription": "a"})
    iot.create_thing_type(thingTypeName="s", thingTypeProperties={"thingTypeDescription": "a"})
    with pytest.raises(ClientError) as error:
        iot.create_thing_type(thingTypeName="s", thingTypeProperties={"thingTypeDescription": "b"})
    assert _code(error) == "ResourceAlreadyExistsException"


def test_aws_update_thing_group_without_merge_replaces_all_attributes(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    iot.create_thing_group(
        thingGroupName="g",
        thingGroupProperties={"attributePayload": {"attributes": {"a": "1", "b": "2"}}},
    )
    iot.update_thing_group(
        thingGroupName="g",
        thingGroupProperties={"attributePayload": {"attributes": {"c": "3"}, "merge": False}},
    )
    props = iot.describe_thing_group(thingGroupName="g")["thingGroupProperties"]
    assert props["attributePayload"]["attributes"] == {"c": "3"}


def test_aws_update_thing_group_merge_with_empty_value_removes_the_key(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    iot.create_thing_group(
        thingGroupName="g",
        thingGroupProperties={"attributePayload": {"attributes": {"a": "1", "b": "2"}}},
    )
    iot.update_thing_group(
        thingGroupName="g",
        thingGroupProperties={"attributePayload": {"attributes": {"a": ""}, "merge": True}},
    )
    props = iot.describe_thing_group(thingGroupName="g")["thingGroupProperties"]
    assert props["attributePayload"]["attributes"] == {"b": "2"}


def test_aws_update_thing_group_with_empty_attributes_changes_nothing(box: Sandbox) -> None:
    # getmoto/moto#5318: AWS ignores an empty attributes object (the old emulation cleared them)
    iot = box.iot(SOURCE)
    iot.create_thing_group(
        thingGroupName="g",
        thingGroupProperties={"attributePayload": {"attributes": {"a": "1"}}},
    )
    iot.update_thing_group(
        thingGroupName="g", thingGroupProperties={"attributePayload": {"attributes": {}}}
    )
    props = iot.describe_thing_group(thingGroupName="g")["thingGroupProperties"]
    assert props["attributePayload"]["attributes"] == {"a": "1"}
    assert box.outbox(SOURCE).take()[-1]["attributes"] == {"a": "1"}


def test_aws_update_thing_group_honours_expected_version(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    iot.create_thing_group(thingGroupName="g")
    with pytest.raises(ClientError) as error:
        iot.update_thing_group(
            thingGroupName="g",
            thingGroupProperties={"thingGroupDescription": "x"},
            expectedVersion=7,
        )
    assert _code(error) == "VersionConflictException"


def test_aws_dynamic_thing_groups_store_and_report_their_query(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    iot.update_indexing_configuration(thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"})
    created = iot.create_dynamic_thing_group(
        thingGroupName="dyn",
        queryString="attributes.floor:2",
        thingGroupProperties={"thingGroupDescription": "floor 2"},
    )
    assert (created["indexName"], created["queryVersion"]) == ("AWS_Things", "2017-09-30")
    described = iot.describe_thing_group(thingGroupName="dyn")
    assert described["queryString"] == "attributes.floor:2"
    assert described["status"] == "ACTIVE"
    version = iot.update_dynamic_thing_group(
        thingGroupName="dyn", queryString="attributes.floor:3", thingGroupProperties={}
    )["version"]
    assert version == 2
    assert iot.describe_thing_group(thingGroupName="dyn")["queryString"] == "attributes.floor:3"
    iot.delete_dynamic_thing_group(thingGroupName="dyn")
    with pytest.raises(ClientError) as error:
        iot.describe_thing_group(thingGroupName="dyn")
    assert _code(error) == "ResourceNotFoundException"
    events = box.outbox(SOURCE).take()
    assert [e["operation"] for e in events] == ["CREATED", "UPDATED", "DELETED"]
    assert events[0]["dynamicGroupMappingId"] is not None


def test_static_groups_report_no_query(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    iot.create_thing_group(thingGroupName="static")
    assert "queryString" not in iot.describe_thing_group(thingGroupName="static")


def test_aws_update_thing_type_changes_only_mqtt5_configuration(box: Sandbox) -> None:
    # aws/aws-cli#9884: "Can only update mqtt5Configuration." (the old emulation changed the
    # description)
    iot = box.iot(SOURCE)
    iot.create_thing_type(thingTypeName="s", thingTypeProperties={"thingTypeDescription": "a"})
    with pytest.raises(ClientError) as refused:
        iot.update_thing_type(thingTypeName="s", thingTypeProperties={"thingTypeDescription": "b"})
    assert _code(refused) == "InvalidRequestException"
    propagating = [{"userPropertyKey": "k", "thingAttribute": "serial"}]
    iot.update_thing_type(
        thingTypeName="s",
        thingTypeProperties={"mqtt5Configuration": {"propagatingAttributes": propagating}},
    )
    described = iot.describe_thing_type(thingTypeName="s")["thingTypeProperties"]
    assert described["thingTypeDescription"] == "a"
    assert described["mqtt5Configuration"]["propagatingAttributes"] == propagating
    assert box.outbox(SOURCE).take()[-1]["propagatingAttributes"] == propagating


def test_aws_delete_thing_type_requires_deprecation_and_no_things(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    iot.create_thing_type(thingTypeName="s")
    iot.create_thing(thingName="t1", thingTypeName="s")
    with pytest.raises(ClientError) as not_deprecated:
        iot.delete_thing_type(thingTypeName="s")
    iot.deprecate_thing_type(thingTypeName="s")
    with pytest.raises(ClientError) as too_soon:
        iot.delete_thing_type(thingTypeName="s")
    box.advance_clock(301)
    with pytest.raises(ClientError) as still_used:
        iot.delete_thing_type(thingTypeName="s")
    iot.update_thing(thingName="t1", removeThingType=True)
    iot.delete_thing_type(thingTypeName="s")
    assert _code(not_deprecated) == _code(still_used) == "InvalidRequestException"
    assert _code(too_soon) == "InvalidRequestException"
    assert "Please wait for 5 minutes after deprecation" in str(too_soon.value)
    assert iot.list_thing_types()["thingTypes"] == []


def test_aws_delete_certificate_beside_a_thing_group_policy(box: Sandbox) -> None:
    # moto answered HTTP 500 for any DeleteCertificate once a policy was attached to a group.
    iot = box.iot(SOURCE)
    document = json.dumps({"Version": "2012-10-17", "Statement": []})
    iot.create_thing_group(thingGroupName="fleet")
    iot.create_policy(policyName="fleet", policyDocument=document)
    group = iot.describe_thing_group(thingGroupName="fleet")["thingGroupArn"]
    iot.attach_policy(policyName="fleet", target=group)
    cert = iot.register_certificate_without_ca(certificatePem=self_signed_pem(), status="ACTIVE")
    iot.create_thing(thingName="t1")
    iot.attach_thing_principal(thingName="t1", principal=cert["certificateArn"])
    iot.attach_policy(policyName="fleet", target=cert["certificateArn"])
    cert_id = cert["certificateId"]
    with pytest.raises(ClientError) as active:
        iot.delete_certificate(certificateId=cert_id)
    iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
    with pytest.raises(ClientError) as with_thing:
        iot.delete_certificate(certificateId=cert_id)
    iot.detach_thing_principal(thingName="t1", principal=cert["certificateArn"])
    with pytest.raises(ClientError) as with_policy:
        iot.delete_certificate(certificateId=cert_id)
    iot.detach_policy(policyName="fleet", target=cert["certificateArn"])
    iot.delete_certificate(certificateId=cert_id)
    assert _code(active) == "CertificateStateException"
    assert _code(with_thing) == _code(with_policy) == "DeleteConflictException"
    assert iot.list_certificates()["certificates"] == []
    assert iot.list_targets_for_policy(policyName="fleet")["targets"] == [group]


def test_aws_delete_policy_is_refused_for_a_while_after_a_detach(box: Sandbox) -> None:
    # AWS IoT API Reference, DeletePolicy: "up to five minutes after a policy is detached".
    iot = box.iot(SOURCE)
    document = json.dumps({"Version": "2012-10-17", "Statement": []})
    cert = iot.register_certificate_without_ca(certificatePem=self_signed_pem(), status="ACTIVE")
    iot.create_policy(policyName="never-attached", policyDocument=document)
    iot.create_policy(policyName="p", policyDocument=document)
    iot.attach_policy(policyName="p", target=cert["certificateArn"])
    iot.detach_policy(policyName="p", target=cert["certificateArn"])
    # WHEN the detached policy is deleted at once, and again once the window has passed
    with pytest.raises(ClientError) as too_soon:
        iot.delete_policy(policyName="p")
    box.advance_clock(POLICY_DELETE_AFTER_DETACH_SECONDS - 1)
    with pytest.raises(ClientError) as still_too_soon:
        iot.delete_policy(policyName="p")
    box.advance_clock(1)
    iot.delete_policy(policyName="p")
    iot.delete_policy(policyName="never-attached")  # no detach: nothing to wait for
    # THEN AWS's code, the refusal counted by the emulation, and both policies gone
    assert _code(too_soon) == _code(still_too_soon) == "DeleteConflictException"
    assert too_soon.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert box.refusals["delete_policy_just_detached"] == 2
    assert iot.list_policies()["policies"] == []


# -- Step Functions (sandbox.emulation.stepfunctions) ------------------------------------------

PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


def _machine(box: Sandbox, name: str, definition: str, kind: str) -> str:
    sfn = box.client("stepfunctions", SOURCE)
    created = sfn.create_state_machine(
        name=name, definition=definition, roleArn=box.resources.role_arn, type=kind
    )
    return str(created["stateMachineArn"])


def _finished(box: Sandbox, *arns: str) -> list[dict[str, Any]]:
    sfn = box.client("stepfunctions", SOURCE)
    wait_for_executions(sfn, arns, timeout=30)
    return [sfn.describe_execution(executionArn=arn) for arn in arns]


def test_aws_the_persist_state_machine_is_express_as_deployed(box: Sandbox) -> None:
    sfn = box.client("stepfunctions", SOURCE)
    described = sfn.describe_state_machine(stateMachineArn=box.state_machine_arn)
    assert described["type"] == "EXPRESS"


def test_aws_express_start_under_a_used_name_starts_a_new_execution(box: Sandbox) -> None:
    # "Starting multiple workflows with the same name results in concurrent executions"
    sfn = box.client("stepfunctions", SOURCE)
    arn = _machine(box, "express", PASS, "EXPRESS")
    first = sfn.start_execution(stateMachineArn=arn, name="same", input="{}")["executionArn"]
    _finished(box, first)  # closed: a Standard workflow would now refuse the name
    again = sfn.start_execution(stateMachineArn=arn, name="same", input="{}")["executionArn"]
    assert again != first
    assert [e["status"] for e in _finished(box, first, again)] == ["SUCCEEDED", "SUCCEEDED"]
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 2


def test_aws_standard_start_under_a_closed_name_is_still_refused(box: Sandbox) -> None:
    sfn = box.client("stepfunctions", SOURCE)
    arn = _machine(box, "standard", PASS, "STANDARD")
    first = sfn.start_execution(stateMachineArn=arn, name="same", input="{}")["executionArn"]
    _finished(box, first)
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=arn, name="same", input="{}")
    assert _code(refused) == "ExecutionAlreadyExists"


def _catch_all(box: Sandbox, payload_path: str) -> str:
    """A task invoking the persist function with ``Payload.$`` = ``payload_path``, every error
    caught by a States.ALL catcher that ends in a Pass state."""
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": box.resources.persist_function_arn,
                    "Payload.$": payload_path,
                },
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    return _machine(box, f"catch-{uuid.uuid4().hex[:8]}", json.dumps(definition), "EXPRESS")


def test_aws_states_all_does_not_catch_a_runtime_error(box: Sandbox) -> None:
    # "The States.ALL error type ... can't catch the States.DataLimitExceeded terminal error or
    # Runtime error types": a path missing from the input is a States.Runtime error
    sfn = box.client("stepfunctions", SOURCE)
    arn = _catch_all(box, "$.no.such.field")
    started = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    (finished,) = _finished(box, started)
    assert finished["status"] == "FAILED"
    assert finished["error"] == "States.Runtime"


def test_aws_states_all_still_catches_a_task_error(box: Sandbox) -> None:
    # persist refuses an empty event: the function's error is caught
    sfn = box.client("stepfunctions", SOURCE)
    arn = _catch_all(box, "$")
    started = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    (finished,) = _finished(box, started)
    assert finished["status"] == "SUCCEEDED"


def test_the_product_never_observes_executions_the_way_only_the_sandbox_may() -> None:
    # The sandbox answers ListExecutions/DescribeExecution for the Express persist machine (AWS
    # does not serve Express executions so): only the sandbox's pump and tests may rely on it.
    root = Path(__file__).resolve().parents[2]
    calls = ("describe_execution", "list_executions", "get_execution_history")
    offending = [
        f"{path.relative_to(root)}: {call}"
        for package in ("pipeline", "reconcile", "jobs")
        for path in sorted((root / package).rglob("*.py"))
        for call in calls
        if call in path.read_text(encoding="utf-8")
    ]
    assert offending == []


def test_aws_a_thing_principals_type_is_kept_and_listed(box: Sandbox) -> None:
    # GIVEN a certificate attached exclusively to one thing and (by default) to another
    src = box.iot(box.source_region)
    for name in ("tp-exclusive", "tp-shared"):
        src.create_thing(thingName=name)
    arn = src.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    src.attach_thing_principal(
        thingName="tp-exclusive", principal=arn, thingPrincipalType="EXCLUSIVE_THING"
    )
    src.attach_thing_principal(thingName="tp-shared", principal=arn)
    # THEN the V2 listings say which is which, and filter by it (botocore's iot model)
    assert src.list_thing_principals_v2(thingName="tp-exclusive")["thingPrincipalObjects"] == [
        {"principal": arn, "thingPrincipalType": "EXCLUSIVE_THING"}
    ]
    listed = src.list_principal_things_v2(principal=arn)["principalThingObjects"]
    assert sorted((o["thingName"], o["thingPrincipalType"]) for o in listed) == [
        ("tp-exclusive", "EXCLUSIVE_THING"),
        ("tp-shared", "NON_EXCLUSIVE_THING"),
    ]
    exclusive = src.list_principal_things_v2(principal=arn, thingPrincipalType="EXCLUSIVE_THING")
    assert [o["thingName"] for o in exclusive["principalThingObjects"]] == ["tp-exclusive"]
