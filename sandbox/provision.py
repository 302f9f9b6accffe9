"""Creates in the sandbox what the templates would create in AWS, with plain boto3 calls.

Second stage of the sandbox (after ``server``): moto's CloudFormation silently skips Global
Tables and topic rules (docs/design.md, "The sandbox"), so the resources are made one call at a
time:
- both regions: the state table (same name; ``pk`` only; stream NEW_AND_OLD_IMAGES);
- source region: the failure queue, the persist function and the persist state machine from the
  real ASL in ``infra/statemachines/persist.asl.json``;
- destination region: the replicator and pending functions, recorded for completeness: the
  sandbox calls them through the event-source-mapping emulation (a real mapping would wipe the
  stream in moto).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import aws
from pipeline.aws import ClientFactory

ASL_PATH = Path(__file__).resolve().parents[1] / "infra" / "statemachines" / "persist.asl.json"
PERSIST_HANDLER = "pipeline.persist.lambda_handler"
REPLICATE_HANDLER = "pipeline.replicate.lambda_handler"
PENDING_HANDLER = "pipeline.pending.lambda_handler"
DEFAULT_TABLE_NAME = "iot-crr-state"
DEFAULT_TYPE_DELETE_DELAY_SECONDS = 300


_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass(frozen=True)
class SandboxResources:
    """Names and ARNs of what ``provision`` created."""

    source_region: str
    destination_region: str
    table_name: str
    source_stream_arn: str
    destination_stream_arn: str
    failure_queue_url: str  # the persist state machine's (source region)
    reject_queue_url: str  # the replicator's permanent failures (destination region)
    role_arn: str
    persist_function_arn: str
    state_machine_arn: str
    replicator_function_arn: str
    pending_function_arn: str
    type_delete_delay_seconds: int

    def replicator_environment(self) -> dict[str, str]:
        return {
            "STATE_TABLE": self.table_name,
            "AWS_REGION": self.destination_region,
            "AWS_DEFAULT_REGION": self.destination_region,
            "TYPE_DELETE_DELAY_SECONDS": str(self.type_delete_delay_seconds),
            "FAILURE_QUEUE_URL": self.reject_queue_url,  # as infra/destination.yaml sets it
        }


def _dummy_zip() -> bytes:
    # moto stores the code but never runs it: the emulation imports the handler in-process.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "handlers are imported from the installed package\n")
    return buffer.getvalue()


def create_state_table(dynamodb: Any, table_name: str) -> str:
    """The state table as the template declares it; returns its stream ARN."""
    response = dynamodb.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return str(response["TableDescription"]["LatestStreamArn"])


def persist_definition(persist_function_arn: str, failure_queue_url: str) -> str:
    """The real persist ASL with its template placeholders substituted."""
    text = ASL_PATH.read_text()
    text = text.replace("${PersistFunctionArn}", persist_function_arn)
    return text.replace("${FailureQueueUrl}", failure_queue_url)


def provision(
    source_region: str,
    destination_region: str,
    table_name: str = DEFAULT_TABLE_NAME,
    type_delete_delay_seconds: int = DEFAULT_TYPE_DELETE_DELAY_SECONDS,
    client_factory: ClientFactory = aws.client,
) -> SandboxResources:
    """Create every sandbox resource in both regions; safe to call once per (reset) server."""
    source_ddb = client_factory("dynamodb", source_region)
    destination_ddb = client_factory("dynamodb", destination_region)
    source_stream = create_state_table(source_ddb, table_name)
    destination_stream = create_state_table(destination_ddb, table_name)

    sqs = client_factory("sqs", source_region)
    queue_url = sqs.create_queue(QueueName=f"{table_name}-persist-failures")["QueueUrl"]
    reject_url = client_factory("sqs", destination_region).create_queue(
        QueueName=f"{table_name}-replicator-rejects"
    )["QueueUrl"]

    iam = client_factory("iam", source_region)
    role_arn = iam.create_role(
        RoleName=f"{table_name}-sandbox",
        AssumeRolePolicyDocument=json.dumps(_TRUST_POLICY),
    )["Role"]["Arn"]

    def function(region: str, name: str, handler: str, env: dict[str, str]) -> str:
        created = client_factory("lambda", region).create_function(
            FunctionName=f"{table_name}-{name}",
            Runtime="python3.11",
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": _dummy_zip()},  # never run: the emulation imports the handler
            Timeout=300,
            Environment={"Variables": env},
        )
        return str(created["FunctionArn"])

    persist_arn = function(source_region, "persist", PERSIST_HANDLER, {"STATE_TABLE": table_name})
    destination_env = {
        "STATE_TABLE": table_name,
        "TYPE_DELETE_DELAY_SECONDS": str(type_delete_delay_seconds),
    }
    replicator_arn = function(destination_region, "replicate", REPLICATE_HANDLER, destination_env)
    pending_arn = function(destination_region, "pending", PENDING_HANDLER, destination_env)

    sfn = client_factory("stepfunctions", source_region)
    state_machine_arn = sfn.create_state_machine(
        name=f"{table_name}-persist",
        definition=persist_definition(persist_arn, queue_url),
        roleArn=role_arn,
        type="EXPRESS",  # as infra/source.yaml: no deduplication by name (sandbox.emulation)
    )["stateMachineArn"]

    return SandboxResources(
        source_region=source_region,
        destination_region=destination_region,
        table_name=table_name,
        source_stream_arn=source_stream,
        destination_stream_arn=destination_stream,
        failure_queue_url=queue_url,
        reject_queue_url=reject_url,
        role_arn=role_arn,
        persist_function_arn=persist_arn,
        state_machine_arn=state_machine_arn,
        replicator_function_arn=replicator_arn,
        pending_function_arn=pending_arn,
        type_delete_delay_seconds=type_delete_delay_seconds,
    )
