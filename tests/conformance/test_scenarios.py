"""The conformance scenarios: on the sandbox here, on an account with ``--aws``
(``make conformance``; docs/conformance.md)."""

from __future__ import annotations

import pytest

from conformance.run import Run
from conformance.scenarios import SCENARIOS, Scenario
from conformance.target import Target

pytestmark = pytest.mark.conformance


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(scenario: Scenario, conformance_target: Target, conformance_run: Run) -> None:
    scenario.run(conformance_target, conformance_run.scope(scenario.name))
