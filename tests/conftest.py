"""What every test tier shares: a clean AWS environment and AWS-shaped error answers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from pipeline.iot import Iot
from pipeline.kinds import KINDS
from pipeline.kinds.links import thing_principal_name
from pipeline.model import EntityKind
from sandbox.emulation.install import served_in_process

AMBIENT_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_IOT",
    "AWS_ENDPOINT_URL_IOT_DATA",
    "AWS_ENDPOINT_URL_IOT_DATA_PLANE",  # iot-data's (pipeline.aws.endpoint_variable)
    "AWS_DEFAULT_REGION",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
)


@pytest.fixture(scope="session", autouse=True)
def _moto_serves_every_kind() -> Iterator[None]:
    """In-process moto (``mock_aws``) with the calls of the kinds it lacks entirely, as the
    sandbox serves them: every snapshot lists every kind."""
    with served_in_process():
        yield


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and none of the developer's own AWS settings (profile, endpoint, ...)."""
    for key in AMBIENT_AWS_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any) -> bytes:
        return self._body


# The Lambda handlers' Powertools services: one ``logging`` logger each, process-wide.
HANDLER_SERVICES = ("iot-crr-persist", "iot-crr-replicator", "iot-crr-pending", "iot-crr-nightly")


@pytest.fixture
def handler_loggers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[logging.Logger]]:
    """The handlers' loggers, with ``POWERTOOLS_LOG_LEVEL`` unset, for a test that quiets them
    as the demo does: their levels and the variable are restored after it (both outlive a test:
    a later test's INFO records would be lost)."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "")  # recorded, so restored even if unset before
    monkeypatch.delenv("POWERTOOLS_LOG_LEVEL")
    loggers = [logging.getLogger(service) for service in HANDLER_SERVICES]
    saved = [logger.level for logger in loggers]
    yield loggers
    for logger, level in zip(loggers, saved, strict=True):
        logger.setLevel(level)


def aws_error_response(url: str, status: int, code: str, message: str = "") -> AWSResponse:
    """An HTTP answer as AWS gives it for an error (JSON protocols): what a ``before-send``
    hook returns to make a real botocore client see throttling or a 5xx, retries included."""
    body = f'{{"__type": "{code}", "message": "{message}"}}'.encode()
    headers = HTTPHeaders()
    headers["x-amzn-ErrorType"] = code
    return AWSResponse(url, status, headers, _Body(body))


class RegistryView:
    """One region's registry as the kinds read it (``Kind.read``: the replicator's describe)."""

    def __init__(self, client: Any) -> None:
        self.iot = Iot(client)

    def read(self, kind: EntityKind, name: str) -> dict[str, Any] | None:
        return KINDS[kind].read(self.iot, name)

    def describe_thing(self, name: str) -> dict[str, Any] | None:
        return self.read(EntityKind.THING, name)

    def describe_thing_type(self, name: str) -> dict[str, Any] | None:
        return self.read(EntityKind.THING_TYPE, name)

    def describe_thing_group(self, name: str) -> dict[str, Any] | None:
        return self.read(EntityKind.THING_GROUP, name)

    def describe_certificate(self, cert_id: str) -> dict[str, Any] | None:
        return self.read(EntityKind.CERTIFICATE, cert_id)

    def get_policy(self, name: str) -> dict[str, Any] | None:
        return self.read(EntityKind.POLICY, name)

    def thing_principal(self, thing: str, cert_id: str) -> dict[str, Any] | None:
        return self.read(EntityKind.THING_PRINCIPAL, thing_principal_name(thing, cert_id))

    def list_thing_groups_for_thing(self, thing: str) -> list[str]:
        return [g["groupName"] for g in self.iot.items("ListThingGroupsForThing", thingName=thing)]


# The files that take longest (``pytest --durations``, whole suite, 2026-12-07), first: with
# ``--no-loadscope-reorder`` (the Makefile's), xdist's ``--dist loadfile`` hands files to workers
# in collection order, so a long file collected last (tests/reliability sorts late) would keep one
# worker busy long after the other has finished. Without that flag xdist (3.6+) sorts the files by
# their number of tests, most first, and this order is lost: the long files with few tests went
# last (replaying the whole suite's durations of 2026-12-07 through xdist's scheduling: 625 s of
# wall time against 604 s in this order). Only the order changes; a file missing from the list
# keeps its place after these.
LONGEST_FIRST = (
    "tests/reliability/test_convergence.py",
    "tests/reliability/test_two_way.py",
    "tests/conformance/test_account_mode.py",
    "tests/reconcile/test_diff.py",
    "tests/reliability/test_bench_smoke.py",
    "tests/conformance/test_refusals.py",
    "tests/e2e/test_e2e_demo.py",
    "tests/e2e/test_e2e_interrupt.py",
    "tests/conformance/test_scenarios.py",
    "tests/conformance/test_plugin.py",
    "tests/e2e/test_e2e_sandbox_up.py",
    "tests/notebooks/test_notebooks.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
