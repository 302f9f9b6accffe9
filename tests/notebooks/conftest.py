"""The notebook tests read the artefacts of the shared sandbox scenario (tests/jobs/scenario.py)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from jobs.artefacts import (
    RunArtefacts,
    RunRecord,
    load_index,
    open_store,
    read_run_record,
    write_run_record,
)
from reconcile.report import load_json
from tests.jobs.scenario import DAY_MS, Scenario, shared_root, shared_scenario


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return shared_scenario(shared_root(tmp_path_factory))


def add_clean_run(location: str, run_id: str) -> RunRecord:
    """A run a day after the latest that found no drift, written as the job writes one (its
    record, an in-sync report, the source snapshot): a clean night after the scenario's."""
    store = open_store(location)
    latest = read_run_record(store, str(load_index(store).iloc[-1]["run_id"]))
    assert latest is not None
    before = RunArtefacts(store, latest.prefix)
    report = before.read_report_json()
    started = latest.started_at_ms + DAY_MS
    artefacts = RunArtefacts.for_run(store, run_id, started)
    artefacts.save_snapshot("source", before.load_snapshot("source"))
    artefacts.write_report(dataclasses.replace(load_json(report), drifts=()))
    record = dataclasses.replace(
        latest,
        run_id=run_id,
        prefix=artefacts.prefix,
        started_at_ms=started,
        finished_at_ms=started + 60_000,
        drift={key: 0 for key in latest.drift},
        drift_total=0,
        planned=0,
        held_back=0,
        repairs_emitted=0,
        emit_outcomes={},
    )
    write_run_record(store, record)
    return record


@pytest.fixture
def clean_night(scenario: Scenario, tmp_path: Path) -> str:
    """The scenario's runs, then a clean one: the location (a copy)."""
    location = tmp_path / "reports"
    shutil.copytree(scenario.location, location)
    add_clean_run(str(location), "clean-night")
    return str(location)
