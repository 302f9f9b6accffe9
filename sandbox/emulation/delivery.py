"""4. Delivery quirks (duplicates, reordering, drops) under a seed, and the IoT rule's
Step Functions action."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sandbox.emulation.patches import JsonDict

# --------------------------------------------------------------------------------------------
# 4. Delivery quirks and the IoT rule
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """How the IoT rule delivers events: AWS publishes at least once and in no guaranteed order
    (https://docs.aws.amazon.com/iot/latest/developerguide/registry-events.html). The default delivers every event once, in order.

    ``duplicate_probability``: each event is delivered a second time with this probability.
    ``drop_probability``: each event is lost with this probability (emulates a failed rule action).
    ``reorder_window``: events are shuffled within consecutive windows of this many events.
    ``seed``: the same seed and the same input give the same deliveries.
    """

    duplicate_probability: float = 0.0
    drop_probability: float = 0.0
    reorder_window: int = 0
    seed: int = 0


@dataclass(frozen=True)
class DeliveryOutcome:
    delivered: list[JsonDict]
    dropped: int
    duplicated: int


class DeliveryQuirks:
    """Applies a ``Delivery`` policy; holds the seeded random source across calls."""

    def __init__(self, policy: Delivery) -> None:
        self.policy = policy
        self._rng = random.Random(policy.seed)

    def apply(self, events: Iterable[JsonDict]) -> DeliveryOutcome:
        policy = self.policy
        delivered: list[JsonDict] = []
        dropped = duplicated = 0
        for event in events:
            if policy.drop_probability and self._rng.random() < policy.drop_probability:
                dropped += 1
                continue
            delivered.append(event)
            if policy.duplicate_probability and self._rng.random() < policy.duplicate_probability:
                delivered.append(dict(event))
                duplicated += 1
        window = policy.reorder_window
        if window > 1:
            for start in range(0, len(delivered), window):
                chunk = delivered[start : start + window]
                self._rng.shuffle(chunk)
                delivered[start : start + window] = chunk
        return DeliveryOutcome(delivered, dropped, duplicated)


def start_executions(sfn: Any, state_machine_arn: str, events: Iterable[JsonDict]) -> list[str]:
    """The IoT rule's ``stepFunctions`` action: one StartExecution per event, input = the event.

    Names are a prefix plus a UUID, as the rule action makes them (AWS IoT API Reference,
    StepFunctionsAction), so
    Step Functions never deduplicates a duplicate delivery.
    """
    arns = []
    for event in events:
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn,
            name=f"registry-event-{uuid.uuid4().hex}",
            input=json.dumps(event),
        )
        arns.append(response["executionArn"])
    return arns


class ExecutionTimeoutError(Exception):
    """Executions were still RUNNING when the deadline passed."""

    def __init__(self, running: list[str], finished: dict[str, str]) -> None:
        super().__init__(f"{len(running)} executions still RUNNING, e.g. {running[:3]}")
        self.running = running
        self.finished = finished  # the final statuses of the others, by ARN


def wait_for_executions(
    sfn: Any,
    execution_arns: Iterable[str],
    timeout: float = 60.0,
    poll_interval: float = 0.01,
    outputs: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Poll DescribeExecution until no execution is RUNNING; their final statuses by ARN.
    ``outputs``, if given, receives each succeeded execution's output (parsed JSON) by ARN."""
    pending = list(execution_arns)
    statuses: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while pending:
        still_running = []
        for arn in pending:
            described = sfn.describe_execution(executionArn=arn)
            status = described["status"]
            if status == "RUNNING":
                still_running.append(arn)
            else:
                statuses[arn] = status
                if outputs is not None and described.get("output"):
                    outputs[arn] = json.loads(described["output"])
        pending = still_running
        if pending:
            if time.monotonic() > deadline:
                raise ExecutionTimeoutError(pending, statuses)
            time.sleep(poll_interval)  # pacing the poll of a condition, not waiting for one
    return statuses
