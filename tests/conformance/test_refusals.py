"""The refusals the emulation claims, provoked with plain boto3: on an account, each answer is
recorded and compared with the committed recorded answers (docs/conformance.md)."""

from __future__ import annotations

from typing import Any

import pytest

from conformance import answers
from conformance.refusals import PROBES, Context, Probe
from conformance.run import Run
from conformance.target import Target

pytestmark = pytest.mark.conformance
# The probes ask the registry alone: on the sandbox, replicating their churn (hundreds of
# groups made and deleted) took about 60 of this module's 98 s and checked nothing the
# scenarios do not.
SANDBOX_PIPELINE = False


def _recorded(probe: str) -> dict[str, Any] | None:
    if not answers.COMMITTED.exists():
        return None
    entries = answers.load(answers.COMMITTED)["refusals"]
    return next((entry for entry in entries if entry["probe"] == probe), None)


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_refusal(
    probe: Probe, conformance_target: Target, conformance_run: Run, record_refusal: Any
) -> None:
    ctx = Context(
        scope=conformance_run.scope(probe.name.replace("_", "-")),
        let_time_pass=conformance_target.let_time_pass,
        wait_until=conformance_target.wait_until,
        now=conformance_target.now,
        client=lambda service: conformance_target.client(service, conformance_target.source_region),
    )
    answer = probe.provoke(conformance_target.source, ctx)
    record_refusal(probe.name, probe.operation, answer)
    recorded = _recorded(probe.name)
    if recorded is not None:
        assert answers.compare_refusals([recorded], {probe.name: answer}) == []
    assert not answer.accepted, f"{probe.operation} was accepted: {probe.provoke.__doc__}"
