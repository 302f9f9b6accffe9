"""Fixtures of the reliability suite: moto in process, two regions, registry events emulated.

``registry_world`` starts ``mock_aws`` once per module and installs the sandbox's registry-event
emulation (``sandbox.emulation``) so every mutating IoT call in the source region publishes the
registry events AWS would; ``fresh_pipeline`` gives each test (or each hypothesis example) an
empty world and a new ``sandbox.inprocess.LocalPipeline`` over it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodbstreams.models import dynamodbstreams_backends
from moto.iot.models import iot_backends

from pipeline import aws
from sandbox import emulation
from sandbox.inprocess import DST, TABLE, FakeClock, LocalPipeline, TwoWayPipeline, boto3_client
from tests.reliability.two_way_world import World

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "AWS_REGION": DST,
    "STATE_TABLE": TABLE,
    "POWERTOOLS_METRICS_NAMESPACE": "IotRegistryCrr",
    # Each injected fault must surface: botocore's own retries would hide most of them (and
    # sleep). The pipeline's retry is the event source mapping's redelivery, driven by the tests.
    "AWS_MAX_ATTEMPTS": "1",
    "AWS_RETRY_MODE": "standard",
}
UNSET = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_IOT")

SLOW = os.environ.get("RELIABILITY_SLOW") == "1"
MAX_EXAMPLES = int(os.environ.get("RELIABILITY_EXAMPLES", "2000" if SLOW else "200"))


# One clock for the emulated AWS and the pipeline: the 5-minute wait before DeleteThingType
# passes when the pipeline's clock moves on (``LocalPipeline.finish_type_deletions``).
CLOCK = FakeClock()


@pytest.fixture(scope="module")
def registry_world() -> Iterator[emulation.RegistryEmulation]:
    with pytest.MonkeyPatch.context() as patch:
        for key in UNSET:
            patch.delenv(key, raising=False)
        for key, value in AWS_ENV.items():
            patch.setenv(key, value)
        with mock_aws():
            events = emulation.RegistryEmulation(clock=CLOCK)
            emulation.install(events)
            try:
                yield events
            finally:
                emulation.uninstall()


def reset_world(events: emulation.RegistryEmulation) -> None:
    iot_backends.reset()
    dynamodb_backends.reset()
    dynamodbstreams_backends.reset()
    events.clear()


@pytest.fixture(scope="module")
def clients(registry_world: emulation.RegistryEmulation) -> Callable[[str, str], Any]:
    """boto3 clients, made once per module: they outlive a backend reset, and making them is
    the slowest part of a fresh pipeline."""
    cache: dict[tuple[str, str], Any] = {}

    def client(service: str, region: str) -> Any:
        if (service, region) not in cache:
            cache[(service, region)] = boto3_client(service, region)
        return cache[(service, region)]

    return client


_HANDLER_CLIENTS: dict[tuple[str, str, str], Any] = {}
# The real factory, kept before any test replaces it: fault-injecting tests build their own
# clients from it, so their hooks never reach the clients other tests share.
REAL_CLIENT = aws.client


@pytest.fixture(autouse=True)
def reuse_handler_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handlers build their clients through ``pipeline.aws.client`` on every invocation;
    here each (service, region) is built by it once and reused, as a warm Lambda would, which
    takes most of the run time out of a handler call on moto."""

    def client(service: str, region: str, **config: Any) -> Any:
        key = (service, region, repr(sorted(config.items())))
        if key not in _HANDLER_CLIENTS:
            _HANDLER_CLIENTS[key] = REAL_CLIENT(service, region, **config)
        return _HANDLER_CLIENTS[key]

    monkeypatch.setattr(aws, "client", client)


@pytest.fixture
def fresh_pipeline(
    registry_world: emulation.RegistryEmulation, clients: Callable[[str, str], Any]
) -> Callable[[], LocalPipeline]:
    """Call it to wipe both regions and get a new pipeline (once per hypothesis example)."""

    def make() -> LocalPipeline:
        reset_world(registry_world)
        return LocalPipeline(client=clients, clock=CLOCK)

    return make


@pytest.fixture
def pipeline(fresh_pipeline: Callable[[], LocalPipeline]) -> LocalPipeline:
    return fresh_pipeline()


@pytest.fixture
def two_way(
    registry_world: emulation.RegistryEmulation, clients: Callable[[str, str], Any]
) -> Iterator[Callable[..., World]]:
    def make(**options: Any) -> World:
        reset_world(registry_world)
        # Expectations and event timestamps on one clock, as AWS's are (pipeline.echo).
        pipeline = TwoWayPipeline(
            client=clients, wall_clock=lambda: registry_world.now_ms() / 1000, **options
        )
        return World(pipeline, registry_world)

    yield make
