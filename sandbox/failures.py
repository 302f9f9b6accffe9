"""Why work did not get through the sandbox's pipeline, read from where AWS would put it.

The persist state machine's failure queue, the replicator's reject queue (both read through
moto's backend without being consumed, so they stay for the operator), the batches the event
source mapping gave up on, and the functions' unhandled errors become ``Failure`` values: one
line each for ``sandbox up``'s pump, the demo and the tests' assertion messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.emulation import FailedBatch, InvocationError, JsonDict


@dataclass(frozen=True)
class Failure:
    """A record the pipeline gave up on: where, which entity, and why."""

    stage: str  # "persist", "replicator", "event source mapping" or a function's name
    entity: str
    reason: str


def failure_line(failure: Failure) -> str:
    return f"  failed ({failure.stage}) {failure.entity}: {failure.reason}"


_NAME_FIELDS = ("thingName", "thingGroupName", "thingTypeName", "billingGroupName", "key")


def persist_failure(body: Mapping[str, Any]) -> Failure:
    """A persist failure-queue message: the event with ``error`` = the Catch's ``{Error, Cause}``
    (infra/statemachines/persist.asl.json); a Lambda error's Cause is itself JSON."""
    error = body.get("error") or {}
    cause = str(error.get("Cause", ""))
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict):
            cause = str(parsed.get("errorMessage", cause))
    except ValueError:
        pass
    name = next((str(body[f]) for f in _NAME_FIELDS if body.get(f)), "?")
    entity = f"{body.get('eventType', 'event')} {name}".strip()
    return Failure("persist", entity, f"{error.get('Error', 'error')}: {cause}".strip(": "))


def replicator_failure(body: Mapping[str, Any]) -> Failure:
    """A replicator reject-queue message (``pipeline.failures.FailureSink``)."""
    return Failure(
        "replicator", str(body.get("key", "?")), f"{body.get('errorType')}: {body.get('reason')}"
    )


def batch_failure(batch: FailedBatch) -> Failure:
    """A batch the event source mapping sent to its on-failure destination."""
    return Failure(
        "event source mapping",
        f"{batch.size} records from sequence {batch.first_sequence_number}",
        f"{batch.reason} after {batch.attempts} attempts",
    )


def invocation_failure(error: InvocationError) -> Failure:
    """A function's unhandled error (Step Functions may have retried it)."""
    return Failure(error.function_name, "invocation", f"{error.error_type}: {error.message}")


def queue_messages(region: str, queue_url: str) -> list[tuple[str, JsonDict]]:
    """(message id, body) of every message in one of the sandbox's queues, oldest first.

    Read through moto's backend, not ReceiveMessage: receiving would hide the messages from the
    operator's own `aws sqs receive-message` for the visibility timeout."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[DEFAULT_ACCOUNT_ID][region].get_queue(queue_url.rsplit("/", 1)[-1])
    out = []
    for message in list(queue._messages):
        try:
            body = json.loads(message.body)
        except ValueError:
            body = {"reason": message.body}
        out.append((str(message.id), body if isinstance(body, dict) else {"reason": body}))
    return out
