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
Two-way (``two_way=True``, docs/deploy.md "Two-way"): the same again the other way round, each
region holding a persist path for its own registry's events and a replicator for the other's
(``SandboxResources.reverse``).
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
DEFAULT_TABLE_NAME = "iot-registry-crr-state"  # as the stacks name it (infra/*.yaml)
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
class ReverseResources:
    """The pipeline's other direction (two-way): the destination region's persist path and the
    source region's replicator."""

    state_machine_arn: str  # persist, in the destination region
    failure_queue_url: str  # persist's failures (destination region)
    reject_queue_url: str  # the source region replicator's permanent failures
    persist_function_arn: str
    replicator_function_arn: str
    pending_function_arn: str


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
    reverse: ReverseResources | None = None  # two-way only

    def replicator_environment(self, region: str | None = None) -> dict[str, str]:
        """The replicator's environment in ``region`` (the destination unless told)."""
        region = region or self.destination_region
        reject = self.reject_queue_url
        if region != self.destination_region:
            if self.reverse is None:
                raise ValueError(f"no replicator in {region}: the sandbox runs one way")
            reject = self.reverse.reject_queue_url
        return {
            "STATE_TABLE": self.table_name,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "TYPE_DELETE_DELAY_SECONDS": str(self.type_delete_delay_seconds),
            "FAILURE_QUEUE_URL": reject,  # as infra/destination.yaml sets it
        }

    def state_machine_in(self, region: str) -> str:
        """The persist state machine for ``region``'s own registry events."""
        if region == self.source_region:
            return self.state_machine_arn
        if self.reverse is None:
            raise ValueError(f"no persist path in {region}: the sandbox runs one way")
        return self.reverse.state_machine_arn

    def failure_queues(self) -> list[tuple[str, str]]:
        """``(region, queue url)`` of every persist failure queue."""
        queues = [(self.source_region, self.failure_queue_url)]
        if self.reverse is not None:
            queues.append((self.destination_region, self.reverse.failure_queue_url))
        return queues

    def reject_queues(self) -> list[tuple[str, str]]:
        """``(region, queue url)`` of every replicator reject queue."""
        queues = [(self.destination_region, self.reject_queue_url)]
        if self.reverse is not None:
            queues.append((self.source_region, self.reverse.reject_queue_url))
        return queues


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
    *,
    two_way: bool = False,
) -> SandboxResources:
    """Create every sandbox resource in both regions; safe to call once per (reset) server.
    ``two_way``: the pipeline in both directions (``SandboxResources.reverse``)."""
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

    replicator_env = {
        "STATE_TABLE": table_name,
        "TYPE_DELETE_DELAY_SECONDS": str(type_delete_delay_seconds),
    }

    def persist_path(region: str, failures: str) -> tuple[str, str]:
        """The persist function and state machine for ``region``'s own registry events."""
        arn = function(region, "persist", PERSIST_HANDLER, {"STATE_TABLE": table_name})
        machine = client_factory("stepfunctions", region).create_state_machine(
            name=f"{table_name}-persist",
            definition=persist_definition(arn, failures),
            roleArn=role_arn,
            type="EXPRESS",  # as infra/source.yaml: no deduplication by name (sandbox.emulation)
        )["stateMachineArn"]
        return arn, str(machine)

    def replicator(region: str) -> tuple[str, str]:
        return (
            function(region, "replicate", REPLICATE_HANDLER, replicator_env),
            function(region, "pending", PENDING_HANDLER, replicator_env),
        )

    persist_arn, state_machine_arn = persist_path(source_region, queue_url)
    replicator_arn, pending_arn = replicator(destination_region)
    reverse = None
    if two_way:
        reverse_failures = client_factory("sqs", destination_region).create_queue(
            QueueName=f"{table_name}-persist-failures"
        )["QueueUrl"]
        reverse_rejects = sqs.create_queue(QueueName=f"{table_name}-replicator-rejects")["QueueUrl"]
        reverse_persist, reverse_machine = persist_path(destination_region, reverse_failures)
        reverse_replicator, reverse_pending = replicator(source_region)
        reverse = ReverseResources(
            state_machine_arn=reverse_machine,
            failure_queue_url=reverse_failures,
            reject_queue_url=reverse_rejects,
            persist_function_arn=reverse_persist,
            replicator_function_arn=reverse_replicator,
            pending_function_arn=reverse_pending,
        )

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
        reverse=reverse,
    )
