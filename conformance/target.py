"""Where the scenarios run: the embedded sandbox, or a real account's two regions.

A ``Target`` gives the scenarios clients (plain boto3, every call counted), the names of the
deployed pipeline, and one way to wait: ``wait_until(condition)`` polls with a bounded timeout.
Between polls the sandbox pumps its pipeline (``Sandbox.drain``); an account's pipeline runs by
itself, so the target only lets time pass. Neither ever sleeps a fixed time instead of checking.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from conformance.run import TAG_KEY
from pipeline import aws

ClientFactory = Callable[[str, str], Any]


class WaitTimeoutError(AssertionError):
    """A condition did not hold within its timeout (a conformance failure, not an error)."""


# Create calls that take tags (AWS IoT API Reference; SQS CreateQueue; IAM CreateRole), with the
# parameter that carries them. CreateThing takes none: a thing carries only the run's prefix.
TAGGED_CREATES = {
    "CreateThingType": "tags",
    "CreateThingGroup": "tags",
    "CreateDynamicThingGroup": "tags",
    "CreateBillingGroup": "tags",
    "CreatePolicy": "tags",
    "RegisterCACertificate": "tags",
    "CreateProvisioningTemplate": "tags",
    "CreateRoleAlias": "tags",
    "CreateAuthorizer": "tags",
    "CreateTopicRule": "tags",
    "CreateQueue": "tags",
    "CreateRole": "Tags",
}


class CallCounter:
    """AWS API calls made through the target's clients, by ``service:Operation`` (thread-safe).

    These are the calls that cost money on an account: the scenarios' own and the ``iot-crr``
    commands they run in-process. The deployed pipeline's calls (Lambda, Step Functions,
    DynamoDB) are billed too but happen in AWS; ``docs/conformance.md`` estimates them.
    It also notes every create call that could carry a tag and did not (``untagged``).
    """

    def __init__(self, tag_key: str = "") -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.tag_key = tag_key
        self.untagged: list[str] = []

    def attach(self, client: Any) -> Any:
        service = client.meta.service_model.service_name

        def count(model: Any, **_: Any) -> None:
            with self._lock:
                self._counts[f"{service}:{model.name}"] += 1

        def check_tags(params: Any, model: Any, **_: Any) -> None:
            parameter = TAGGED_CREATES.get(model.name)
            if parameter is None or not self.tag_key:
                return
            if not _has_tag(params.get(parameter), self.tag_key):
                with self._lock:
                    self.untagged.append(f"{service}:{model.name}")

        client.meta.events.register("before-call", count)
        client.meta.events.register("before-parameter-build", check_tags)
        return client

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counts)

    def summary(self) -> list[str]:
        counts = self.snapshot()
        by_service: Counter[str] = Counter()
        for key, count in counts.items():
            by_service[key.partition(":")[0]] += count
        lines = [f"{service}: {count} calls" for service, count in sorted(by_service.items())]
        lines += [f"  {key}: {count}" for key, count in sorted(counts.items())]
        return lines


def _has_tag(tags: Any, key: str) -> bool:
    """Tags as IoT and IAM take them (a list of Key/Value), as SQS does (a map), or as
    CreateTopicRule does (``"key=value&..."``)."""
    if isinstance(tags, dict):
        return key in tags
    if isinstance(tags, list):
        return any(isinstance(t, dict) and t.get("Key") == key for t in tags)
    if isinstance(tags, str):
        return any(part.split("=", 1)[0] == key for part in tags.split("&"))
    return False


@dataclass
class Target:
    """What the scenarios need from wherever they run."""

    kind: str  # "sandbox" or "aws"
    source_region: str
    destination_region: str
    state_machine_arn: str
    state_table: str | None
    make_client: ClientFactory
    pump: Callable[[], None] = lambda: None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    poll_interval: float = 5.0
    # How long the pipeline may take to converge, and to finish a deferred type deletion
    # (AWS: 5 minutes of deprecation plus the pending task's rate(5 minutes) schedule).
    converge_timeout: float = 300.0
    type_delete_timeout: float = 900.0
    # Lets the sandbox's pipeline see `seconds` pass at once (type deletions); None on AWS.
    fast_forward: Callable[[float], None] | None = None
    # Epoch seconds on which AWS's waits are judged (a deprecation's age): the wall clock on
    # AWS, plus whatever the sandbox skipped ahead. Event timestamps stay on the wall clock.
    now: Callable[[], float] = time.time
    calls: CallCounter = field(default_factory=lambda: CallCounter(TAG_KEY))
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self.calls.attach(self.make_client(service, region))
        return self._clients[key]

    def iot(self, region: str) -> Any:
        return self.client("iot", region)

    @property
    def source(self) -> Any:
        return self.iot(self.source_region)

    @property
    def destination(self) -> Any:
        return self.iot(self.destination_region)

    def wait_until(
        self, what: str, condition: Callable[[], bool], timeout: float | None = None
    ) -> None:
        """Pump, check, repeat until ``condition()`` holds; fail after ``timeout`` seconds."""
        limit = self.converge_timeout if timeout is None else timeout
        deadline = self.clock() + limit
        while True:
            self.pump()
            if condition():
                return
            if self.clock() >= deadline:
                raise WaitTimeoutError(f"{what}: not true after {limit:.0f}s")
            self.sleep(self.poll_interval)

    def let_time_pass(self, seconds: float) -> None:
        """Time AWS makes us wait (a type's 5-minute deprecation): the sandbox jumps ahead;
        on an account the next ``wait_until`` simply takes that long (its timeout allows it)."""
        if self.fast_forward is not None:
            self.fast_forward(seconds)


def account_client_factory(session: boto3.session.Session | None = None) -> ClientFactory:
    """Clients through boto3's normal credential chain (``AWS_PROFILE``, SSO, roles, ...)."""
    chosen = session or boto3.session.Session()

    def make(service: str, region: str) -> Any:
        return chosen.client(service, region_name=region, config=aws.client_config())  # type: ignore[call-overload]

    return make


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """A deployed stack's outputs by key (``infra/source.yaml``: PersistStateMachineArn, ...)."""
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def sandbox_target(
    box: Any, poll_interval: float = 0.05, timeout: float = 180.0, *, pipeline: bool = True
) -> Target:
    """The embedded sandbox (``sandbox.stack.Sandbox``, started): its pipeline is pumped between
    polls, and time AWS makes us wait is skipped by running the pending task in the future.
    ``timeout`` bounds each wait; generous, because a loaded 2-core CI machine runs Step Functions
    executions slowly. ``pipeline=False``: the registries only, their events left undelivered
    (probes that ask the registry alone)."""
    from datetime import UTC, datetime, timedelta

    skipped = [0.0]

    def pump() -> None:
        if not pipeline:
            return
        box.drain(timeout=timeout)
        box.run_pending(now=datetime.now(UTC) + timedelta(seconds=skipped[0]))
        box.drain(timeout=timeout)

    def fast_forward(seconds: float) -> None:
        # AWS's waits (DeleteThingType's 5 minutes) and the schedules jump on; event timestamps
        # stay on the wall clock, persist's clock: moved with them, a shadow message stamped to
        # its second's last millisecond came out more than the allowed 5 minutes ahead.
        skipped[0] += seconds
        box.skip(seconds)

    # The sandbox plays an account with fleet indexing on (dynamic groups need it).
    for region in (box.source_region, box.destination_region):
        box.iot(region).update_indexing_configuration(
            thingIndexingConfiguration={"thingIndexingMode": "REGISTRY"}
        )
    return Target(
        kind="sandbox",
        source_region=box.source_region,
        destination_region=box.destination_region,
        state_machine_arn=box.state_machine_arn,
        state_table=box.table_name,
        make_client=box.client,
        pump=pump,
        poll_interval=poll_interval,
        converge_timeout=timeout,
        type_delete_timeout=timeout,
        fast_forward=fast_forward,
        now=lambda: time.time() + skipped[0],
    )
