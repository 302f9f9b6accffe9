"""The notebook tests read the artefacts of the shared sandbox scenario (tests/jobs/scenario.py)."""

from __future__ import annotations

import pytest

from tests.jobs.scenario import Scenario, shared_root, shared_scenario


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return shared_scenario(shared_root(tmp_path_factory))
