"""The state machine definitions: valid ASL (cfn-lint's schema), and executed on moto where it can.

moto interprets ASL when ``stepfunctions.execute_state_machine`` is on; its Lambda never runs code,
so its ``invoke`` is replaced (docs/design.md, "The sandbox") by a dispatcher to stand-in
handlers defined here. The real pipeline handlers are not needed: these tests pin the *definition*
(Retry, Catch -> failure queue, Distributed Map payloads), not the code behind it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import yaml  # type: ignore[import-untyped]
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.server import ThreadedMotoServer

from tests.infra.infra_templates import REPO_ROOT, STATEMACHINES, load_asl, walk

REGION = "us-east-1"
ACCOUNT = "123456789012"
ASL_FILES = sorted(p.name for p in STATEMACHINES.glob("*.asl.json"))
EXECUTION_DEADLINE_SECONDS = 20


def _substituted(name: str) -> str:
    text = (STATEMACHINES / name).read_text()
    for placeholder, value in {
        "PersistFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:persist",
        "ReconcileFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:reconcile",
        "FailureQueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/failures",
    }.items():
        text = text.replace("${" + placeholder + "}", value)
    return text


# ------------------------------------------------------------------------------------ static checks
@pytest.mark.parametrize("name", ASL_FILES)
def test_asl_is_valid_json_with_reachable_states(name: str) -> None:
    asl = load_asl(name)
    assert asl["StartAt"] in asl["States"]
    for state_set in (n for n in walk(asl) if isinstance(n, dict) and "States" in n):
        names = set(state_set["States"])
        for state in state_set["States"].values():
            for target in [state.get("Next")] + [c["Next"] for c in state.get("Catch", [])]:
                assert target is None or target in names


def test_cfn_lint_validates_every_asl_definition(tmp_path: Path) -> None:
    # GIVEN each ASL inlined as a plain StepFunctions definition  WHEN cfn-lint checks it against
    # its ASL schema  THEN it is clean (DefinitionUri files are not validated by cfn-lint itself)
    resources = {
        f"Machine{i}": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r",
                "Definition": json.loads(_substituted(name)),
            },
        }
        for i, name in enumerate(ASL_FILES)
    }
    template = tmp_path / "asl.yaml"
    template.write_text(yaml.safe_dump({"Resources": resources}))
    assert _cfn_lint(template) == ""


def test_cfn_lint_asl_check_can_fail(tmp_path: Path) -> None:
    broken = json.loads(_substituted("persist.asl.json"))
    broken["States"]["Persist"]["Type"] = "Taks"
    template = tmp_path / "broken.yaml"
    template.write_text(
        yaml.safe_dump(
            {
                "Resources": {
                    "M": {
                        "Type": "AWS::StepFunctions::StateMachine",
                        "Properties": {"RoleArn": "arn:aws:iam::1:role/r", "Definition": broken},
                    }
                }
            }
        )
    )
    assert "Taks" in _cfn_lint(template)


def _cfn_lint(template: Path) -> str:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), str(template)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout + result.stderr


def test_persist_retries_every_retryable_error_the_persist_code_can_raise(
    persist_asl: dict[str, Any],
) -> None:
    # Lambda reports the concrete class name as the error, so a RetryableError subclass missing
    # from the Retry list would go straight to the failure queue. Computed in a fresh interpreter
    # so only classes the persist handler's imports define are counted.
    script = (
        "import pipeline.persist, pipeline.errors as e\n"
        "def walk(c):\n"
        "    for s in c.__subclasses__():\n"
        "        yield s.__name__\n"
        "        yield from walk(s)\n"
        "print(' '.join(['RetryableError', *walk(e.RetryableError)]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    retryable = set(result.stdout.split())
    retried = {
        error for rule in persist_asl["States"]["Persist"]["Retry"] for error in rule["ErrorEquals"]
    }
    assert retryable <= retried


# ------------------------------------------------------------------------------------ moto runs
StandIn = Callable[[dict[str, Any]], Any]


class RetryableError(Exception):
    """Stand-in named like pipeline.errors.RetryableError: Lambda reports the class name."""


class PermanentError(Exception):
    """Stand-in named like pipeline.errors.PermanentError."""


class StandInLambdas:
    """Stand-in handlers by function name, and every payload each one received."""

    def __init__(self) -> None:
        self.handlers: dict[str, StandIn] = {}
        self.calls: dict[str, list[dict[str, Any]]] = {}

    def invoke(self, function_name: str, body: Any, response_headers: Any) -> bytes:
        name = (
            function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        )
        payload = json.loads(body or "{}")
        self.calls.setdefault(name, []).append(payload)
        try:
            result = self.handlers[name](payload)
        except Exception as exc:  # reported to Step Functions the way Lambda does, not swallowed
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
        return json.dumps(result).encode()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("MOTO_PORT", moto_endpoint.rsplit(":", 1)[1])
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    requests.post(
        f"{moto_endpoint}/moto-api/config",
        json={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
        timeout=10,
    )
    lambdas = StandInLambdas()

    def invoke(  # noqa: PLR0917 (moto's signature)
        self: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> bytes:
        return lambdas.invoke(function_name, body, response_headers)

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)

    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=moto_endpoint)  # type: ignore[call-overload]

    role = client("iam").create_role(
        RoleName="crr-test",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    yield {"client": client, "role": role, "lambdas": lambdas}


def _function(aws: dict[str, Any], name: str, handler: StandIn) -> str:
    aws["lambdas"].handlers[name] = handler
    created = aws["client"]("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=aws["role"],
        Handler=f"standin.{name}",
        Code={"ZipFile": b"stand-in"},
    )
    return str(created["FunctionArn"])


def _state_machine(aws: dict[str, Any], name: str, asl: str, **substitutions: str) -> str:
    for placeholder, value in substitutions.items():
        asl = asl.replace("${" + placeholder + "}", value)
    assert "${" not in asl
    created = aws["client"]("stepfunctions").create_state_machine(
        name=name, definition=asl, roleArn=aws["role"]
    )
    return str(created["stateMachineArn"])


def _run(aws: dict[str, Any], machine_arn: str, payload: dict[str, Any]) -> dict[str, Any]:
    sfn = aws["client"]("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=machine_arn, name=f"run-{time.monotonic_ns()}", input=json.dumps(payload)
    )["executionArn"]
    # Bounded polling on the execution's own status (moto runs it on another thread).
    deadline = time.monotonic() + EXECUTION_DEADLINE_SECONDS
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def _persist_machine(aws: dict[str, Any], handler: StandIn) -> tuple[str, str]:
    function_arn = _function(aws, "persist", handler)
    queue_url = aws["client"]("sqs").create_queue(QueueName="failures")["QueueUrl"]
    machine = _state_machine(
        aws,
        "persist",
        (STATEMACHINES / "persist.asl.json").read_text(),
        PersistFunctionArn=function_arn,
        FailureQueueUrl=queue_url,
    )
    return machine, queue_url


EVENT = {"eventType": "THING_EVENT", "eventId": "e-1", "thingName": "sensor-1", "topic": "t"}


def test_persist_success_returns_the_handler_result(aws: dict[str, Any]) -> None:
    machine, queue_url = _persist_machine(aws, lambda event: {"outcome": "applied"})
    execution = _run(aws, machine, EVENT)
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {"outcome": "applied"}
    assert aws["lambdas"].calls["persist"] == [EVENT]
    assert "Messages" not in aws["client"]("sqs").receive_message(QueueUrl=queue_url)


def test_persist_retries_a_retryable_error(aws: dict[str, Any]) -> None:
    # GIVEN a handler that fails retryably once  WHEN the machine runs  THEN Retry re-invokes it
    attempts: list[int] = []

    def flaky(event: dict[str, Any]) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise RetryableError("throttled by the table")
        return {"outcome": "applied"}

    machine, _ = _persist_machine(aws, flaky)
    execution = _run(aws, machine, EVENT)
    assert execution["status"] == "SUCCEEDED"
    assert len(attempts) == 2


def test_persist_sends_a_permanent_error_to_the_failure_queue(aws: dict[str, Any]) -> None:
    # GIVEN a handler that rejects the event  WHEN the machine runs  THEN no retry happens, the
    # event and the error land in the failure queue, and the execution fails as PersistFailed
    def reject(event: dict[str, Any]) -> dict[str, Any]:
        raise PermanentError("thingName breaks AWS IoT rule")

    machine, queue_url = _persist_machine(aws, reject)
    execution = _run(aws, machine, EVENT)
    assert execution["status"] == "FAILED"
    assert execution.get("error") == "PersistFailed"
    assert len(aws["lambdas"].calls["persist"]) == 1
    messages = aws["client"]("sqs").receive_message(QueueUrl=queue_url)["Messages"]
    (body,) = [json.loads(m["Body"]) for m in messages]
    assert {k: body[k] for k in EVENT} == EVENT
    assert body["error"]["Error"] == "PermanentError"
    assert "breaks AWS IoT rule" in body["error"]["Cause"]


def test_sharded_reconcile_fans_out_one_payload_per_shard_then_merges(
    aws: dict[str, Any],
) -> None:
    def job(payload: dict[str, Any]) -> dict[str, Any]:
        if "prepare" in payload:
            return {"prepared": payload["prepare"]["run_id"]}
        if "shard" in payload:
            return {"shard": payload["shard"]["index"], "drift": payload["shard"]["index"] * 10}
        return {"merged": payload["merge"]}

    function_arn = _function(aws, "reconcile", job)
    machine = _state_machine(
        aws,
        "reconcile-sharded",
        (STATEMACHINES / "reconcile-sharded.asl.json").read_text(),
        ReconcileFunctionArn=function_arn,
    )
    execution = _run(aws, machine, {"shard_count": 3})
    assert execution["status"] == "SUCCEEDED", execution
    run_id = execution["name"]  # the execution name is the run id of every step
    calls = aws["lambdas"].calls["reconcile"]
    # GIVEN the snapshots are taken once, before any shard
    assert calls[0] == {"prepare": {"run_id": run_id}}
    shard_calls = [c for c in calls if "shard" in c]
    assert sorted(shard_calls, key=lambda c: c["shard"]["index"]) == [
        {"shard": {"index": i, "count": 3, "run_id": run_id}} for i in range(3)
    ]
    assert calls[-1] == {
        "merge": {
            "count": 3,
            "run_id": run_id,
            "shards": [{"shard": i, "drift": i * 10} for i in range(3)],
        }
    }
    assert json.loads(execution["output"]) == {"merged": calls[-1]["merge"]}
