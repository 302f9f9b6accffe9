"""pytest options and fixtures of the conformance suite (registered by ``tests/conftest.py``).

Default: the scenarios (marker ``conformance``) run on the embedded sandbox, one per test module.
``--aws`` (or ``CONFORMANCE_AWS=1``): they run on an account's two regions through boto3's normal
credential chain; only ``conformance`` tests are collected, and the session guards the account,
records what AWS answered, cleans up and prints the call counts. See ``docs/conformance.md``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.account import AccountRun, cleanup_only
from conformance.run import Run, RunError
from conformance.target import Target, account_client_factory, stack_outputs

MARKER = "conformance"
_STATE = pytest.StashKey["_Session"]()


class _Session:
    """What one pytest session of the suite holds (one run id; on ``--aws``, the account run)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.aws: bool = bool(config.getoption("--aws"))
        self.run = Run(config.getoption("--run-id") or Run.new().run_id)
        self.account: AccountRun | None = None
        self.lines: list[str] = []

    def log(self, line: str) -> None:
        self.lines.append(line)

    def account_target(self) -> Target:
        option = self.config.getoption
        source, destination = option("--source-region"), option("--destination-region")
        if not source or not destination:
            raise pytest.UsageError(
                "--aws needs --source-region and --destination-region "
                "(or SOURCE_REGION and TARGET_REGION)"
            )
        make_client = account_client_factory()
        machine, table = option("--state-machine-arn"), option("--state-table")
        if option("--source-stack"):
            outputs = stack_outputs(make_client("cloudformation", source), option("--source-stack"))
            machine = machine or outputs.get("PersistStateMachineArn")
            table = table or outputs.get("StateTableName")
        if not machine and not option("--cleanup-only"):
            raise pytest.UsageError(
                "--aws needs the persist state machine: --source-stack NAME or --state-machine-arn"
            )
        return Target(
            kind="aws",
            source_region=source,
            destination_region=destination,
            state_machine_arn=machine or "",
            state_table=table,
            make_client=make_client,
            poll_interval=float(option("--poll-interval")),
        )


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "conformance suite (make conformance)")
    env = os.environ.get
    group.addoption(
        "--aws",
        action="store_true",
        default=env("CONFORMANCE_AWS", "") not in ("", "0"),
        help="Run the conformance scenarios on a real account (env CONFORMANCE_AWS=1).",
    )
    group.addoption("--source-region", default=env("SOURCE_REGION"), help="Replicated from.")
    group.addoption("--destination-region", default=env("TARGET_REGION"), help="Replicated to.")
    group.addoption(
        "--source-stack", default=env("CONFORMANCE_SOURCE_STACK"), help="The source stack's name."
    )
    group.addoption("--state-machine-arn", default=env("PERSIST_STATE_MACHINE_ARN"))
    group.addoption("--state-table", default=env("STATE_TABLE"))
    group.addoption("--run-id", default=None, help="Run id (default: random).")
    group.addoption(
        "--cleanup-only", metavar="RUN", default=None, help="Remove the leftovers of run RUN."
    )
    group.addoption(
        "--i-know-this-account-is-shared",
        action="store_true",
        default=False,
        help="Run beside registry entries no conformance run made.",
    )
    group.addoption(
        "--record",
        metavar="PATH",
        default=None,
        help="Where to write what AWS answered (default out/conformance/answers-RUN.json).",
    )
    group.addoption("--poll-interval", default="5", help="Seconds between polls on an account.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: end-to-end scenario that also runs on a real account (--aws)"
    )
    config.stash[_STATE] = _Session(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.stash[_STATE].aws:
        return
    # On an account only the scenarios run (the sandbox's own tests stay in make test).
    selected = [item for item in items if item.get_closest_marker(MARKER)]
    deselected = [item for item in items if not item.get_closest_marker(MARKER)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def pytest_sessionstart(session: pytest.Session) -> None:
    state = session.config.stash[_STATE]
    option = session.config.getoption
    if not state.aws:
        if option("--cleanup-only"):
            raise pytest.UsageError("--cleanup-only works on an account: add --aws")
        return
    if getattr(session.config.option, "numprocesses", None):
        raise pytest.UsageError("--aws runs in one process: drop -n")
    target = state.account_target()
    if option("--cleanup-only"):
        try:
            cleanup_only(target, option("--cleanup-only"), state.log)
        except RunError as error:
            raise pytest.UsageError(str(error)) from error
        pytest.exit("\n".join([*state.lines, "cleanup done"]), returncode=0)
    state.account = AccountRun(
        target, state.run, shared=bool(option("--i-know-this-account-is-shared")), log=state.log
    )
    try:
        state.account.start()
    except RunError as error:
        pytest.exit(str(error), returncode=2)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash[_STATE]
    if state.account is None:
        return
    record = session.config.getoption("--record") or (
        Path("out") / "conformance" / f"answers-{state.run.run_id}.json"
    )
    state.account.finish(Path(record))
    if state.account.contradictions and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    state = terminalreporter.config.stash[_STATE]
    if state.account is None:
        return
    write = terminalreporter.write_line
    terminalreporter.section(f"conformance run {state.run.run_id}")
    for line in state.lines:
        write(line)
    if state.account.contradictions:
        write("AWS contradicts the recorded answers the emulation is checked against:")
        for contradiction in state.account.contradictions:
            write(f"  {contradiction}")
    write("API calls made by the suite (what it costs besides the pipeline's own work):")
    for line in state.account.target.calls.summary():
        write(f"  {line}")


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def conformance_run(request: pytest.FixtureRequest) -> Run:
    run: Run = request.config.stash[_STATE].run
    return run


@pytest.fixture(scope="module")
def conformance_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The account's target on ``--aws``; else a sandbox started for this test module, its
    pipeline pumped unless the module says ``SANDBOX_PIPELINE = False`` (its probes ask the
    registry alone; on an account the deployed pipeline runs whatever the suite does)."""
    state = request.config.stash[_STATE]
    if state.account is not None:
        yield state.account.target
        return
    from conformance.target import sandbox_target
    from sandbox.stack import Sandbox

    pipeline = bool(getattr(request.module, "SANDBOX_PIPELINE", True))
    with Sandbox("us-east-1", "eu-west-1") as box:
        yield sandbox_target(box, pipeline=pipeline)


@pytest.fixture
def record_authorization(request: pytest.FixtureRequest) -> Any:
    """Records TestAuthorization's answer to a question in the account run (a no-op on the
    sandbox)."""
    account = request.config.stash[_STATE].account

    def record(question: str, answer: Any) -> None:
        if account is not None:
            account.record_authorization(question, answer)

    return record


@pytest.fixture
def record_refusal(request: pytest.FixtureRequest) -> Any:
    """Records a probe's answer in the account run (a no-op on the sandbox)."""
    account = request.config.stash[_STATE].account

    def record(probe: str, operation: str, answer: Any) -> None:
        if account is not None:
            account.record_refusal(probe, operation, answer)

    return record


@pytest.fixture
def record_registration(request: pytest.FixtureRequest) -> Any:
    """Records the answer to a question of ``conformance.registration`` in the account run (a
    no-op on the sandbox)."""
    account = request.config.stash[_STATE].account

    def record(question: str, answer: Any) -> None:
        if account is not None:
            account.record_registration(question, answer)

    return record
