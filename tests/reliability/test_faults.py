"""R2 faults: throttling on 20% of IoT calls and 5xx errors lose no update, and every failure is
reported (partial batch response) rather than swallowed.

The faults are AWS's, not our code's: a botocore ``before-send`` hook on the clients the
handlers build answers a share of requests with 429 ThrottlingException or 500
InternalFailureException, as IoT does under load. botocore's own retries are off for the suite
(``AWS_MAX_ATTEMPTS=1``) so every injected fault reaches the handler.

Redelivery is strict: only the records the replicator *reported* are delivered again. A failure
swallowed by the handler would therefore never be retried, and its entity would be missing
from the destination at the end.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from pipeline import aws, persist, replicate
from pipeline.errors import RetryableError
from pipeline.model import EntityKind
from sandbox import emulation
from sandbox.inprocess import LocalPipeline, persist_all
from tests.conftest import aws_error_response
from tests.reliability.conftest import REAL_CLIENT

THROTTLE_SHARE = 0.20
SERVER_ERROR_SHARE = 0.05
BATCH_SIZE = 10
MAX_DELIVERIES = 60


class FaultyAws:
    """Answers a seeded share of requests to ``service`` with throttling or a 5xx error."""

    def __init__(self, service: str, throttle: float, server_error: float, seed: int) -> None:
        self.service = service
        self.throttle = throttle
        self.server_error = server_error
        self.random = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.enabled = True
        self._made: dict[tuple[str, str], Any] = {}

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.requests += 1
        if not self.enabled:
            return None
        draw = self.random.random()
        if draw < self.throttle:
            self.injected["throttled"] += 1
            return aws_error_response(request.url, 429, "ThrottlingException", "Rate exceeded")
        if draw < self.throttle + self.server_error:
            self.injected["server_error"] += 1
            return aws_error_response(
                request.url, 500, "InternalFailureException", "Internal failure"
            )
        return None

    def client_factory(self, real: Callable[..., Any]) -> Callable[..., Any]:
        """``pipeline.aws.client`` with this fault on ``service``; clients are made once (the
        handlers build theirs per invocation, which would dominate the run time here)."""
        made = self._made

        def make(service: str, region: str, **config: Any) -> Any:
            if (service, region) not in made:
                client = real(service, region, **config)
                if service == self.service:
                    client.meta.events.register_first(f"before-send.{service}.*", self)
                made[(service, region)] = client
            return made[(service, region)]

        return make

    def remove(self) -> None:
        """Unregister the hook. Needed: with botocore 1.44, clients of one service share their
        handler registry, so a hook left behind would fault every later test's clients."""
        for (service, _), client in self._made.items():
            if service == self.service:
                client.meta.events.unregister(f"before-send.{service}.*", self)


@pytest.fixture
def inject_faults(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FaultyAws]]:
    """Make the handlers' clients (``pipeline.aws.client``) talk to a faulty AWS."""
    installed: list[FaultyAws] = []

    def install(service: str, throttle: float, server_error: float, seed: int) -> FaultyAws:
        faults = FaultyAws(service, throttle, server_error, seed)
        monkeypatch.setattr(aws, "client", faults.client_factory(REAL_CLIENT))
        installed.append(faults)
        return faults

    yield install
    for faults in installed:
        faults.remove()


def _seed_source(pipeline: LocalPipeline) -> None:
    """A registry with every streamed entity kind: types, a group hierarchy, things with
    attributes and types, memberships."""
    iot = pipeline.source
    iot.create_thing_type(thingTypeName="sensor", thingTypeProperties={"thingTypeDescription": "s"})
    iot.create_thing_group(thingGroupName="site")
    iot.create_thing_group(thingGroupName="floor", parentGroupName="site")
    for i in range(24):
        typed = {"thingTypeName": "sensor"} if i % 2 else {}
        iot.create_thing(
            thingName=f"dev-{i}", attributePayload={"attributes": {"n": str(i)}}, **typed
        )
        if i % 3 == 0:
            iot.add_thing_to_thing_group(thingGroupName="floor", thingName=f"dev-{i}")
    for i in range(0, 24, 4):
        iot.update_thing(
            thingName=f"dev-{i}", attributePayload={"attributes": {"n": f"{i}-v2"}, "merge": True}
        )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_faults_lose_no_update_and_every_failure_is_reported(
    pipeline: LocalPipeline, inject_faults: Callable[..., FaultyAws], seed: int
) -> None:
    # GIVEN a source registry whose events are all persisted
    _seed_source(pipeline)
    world = emulation.active()
    assert world is not None
    assert not [
        o
        for o in persist_all(pipeline, world.outbox("us-east-1").take())
        if isinstance(o, Exception)
    ]
    records = pipeline.stream.read()
    assert len(records) > 40
    # ... and an IoT endpoint that throttles 20% of requests and fails 5% with a 5xx
    faults = inject_faults("iot", THROTTLE_SHARE, SERVER_ERROR_SHARE, seed)

    # WHEN the event source mapping delivers batches and redelivers only reported failures
    queue = list(records)
    reported = deliveries = 0
    while queue and deliveries < MAX_DELIVERIES:
        batch, queue = queue[:BATCH_SIZE], queue[BATCH_SIZE:]
        deliveries += 1
        response = replicate.lambda_handler({"Records": batch}, None)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        by_sequence = {r["dynamodb"]["SequenceNumber"]: r for r in batch}
        assert failed <= set(by_sequence), "a failure must name a record of its own batch"
        reported += len(failed)
        # A failed record goes back in front, in order, as the shard would redeliver it.
        queue = [by_sequence[s] for s in sorted(failed, key=int)] + queue

    # THEN faults really happened, were reported, and nothing is lost once they stop
    assert faults.injected["throttled"] > 0 and reported > 0
    assert not queue, f"still failing after {MAX_DELIVERIES} deliveries: {len(queue)} records"
    faults.enabled = False
    report = pipeline.audit()
    assert report.in_sync, [(d.entity.value, d.name, d.kind) for d in report.drifts]


def test_a_fault_on_every_call_fails_each_record_alone_and_nothing_is_swallowed(
    pipeline: LocalPipeline, inject_faults: Callable[..., FaultyAws]
) -> None:
    # GIVEN three persisted thing events and an IoT endpoint that answers every call with 500
    for i in range(3):
        pipeline.source.create_thing(thingName=f"x{i}")
    world = emulation.active()
    assert world is not None
    persist_all(pipeline, world.outbox("us-east-1").take())
    records = pipeline.stream.read()
    faults = inject_faults("iot", 0.0, 1.0, 0)
    # WHEN the replicator gets the batch
    response = replicate.lambda_handler({"Records": records}, None)
    # THEN every record is reported for retry (none silently acknowledged), and no exception
    # escaped to fail the batch as a whole
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted(
        r["dynamodb"]["SequenceNumber"] for r in records
    )
    assert faults.injected["server_error"] >= len(records)


def test_persist_surfaces_state_table_faults_as_retryable_and_retry_applies_once(
    pipeline: LocalPipeline, inject_faults: Callable[..., FaultyAws]
) -> None:
    # GIVEN one registry event and a DynamoDB endpoint that throttles every request
    pipeline.source.create_thing(thingName="p0", attributePayload={"attributes": {"a": "1"}})
    world = emulation.active()
    assert world is not None
    (event,) = world.outbox("us-east-1").take()
    faults = inject_faults("dynamodb", 1.0, 0.0, 0)
    # WHEN persist runs, THEN it raises a retryable error for the state machine's Retry
    with pytest.raises(RetryableError):
        persist.lambda_handler(event, None)
    assert pipeline.table.get(EntityKind.THING, "p0") is None
    # WHEN the fault clears and the state machine retries, THEN the event is applied once
    faults.enabled = False
    assert persist.lambda_handler(event, None)["outcome"] == "applied"
    assert persist.lambda_handler(event, None)["outcome"] == "duplicate"
