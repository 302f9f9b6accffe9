"""The notebook tests read the artefacts of the shared sandbox scenario (tests/jobs/scenario.py).

A notebook's execution (a kernel started, pandas and matplotlib imported, every cell run) takes
5-7 s and several tests look at the same one: ``executed`` runs each (notebook, location, run)
once per module and hands every test asking for it the same executed copy. The tests only
read it, so which test asks first changes nothing.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from papermill.exceptions import PapermillExecutionError

from jobs.artefacts import (
    RunArtefacts,
    RunRecord,
    load_index,
    open_store,
    read_run_record,
    write_run_record,
)
from jobs.notebooks import execute_notebook
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


@pytest.fixture(scope="module")
def clean_night(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The scenario's runs, then a clean one: the location (a copy; the notebooks only read it)."""
    location = tmp_path_factory.mktemp("clean-night") / "reports"
    shutil.copytree(scenario.location, location)
    add_clean_run(str(location), "clean-night")
    return str(location)


Execute = Callable[..., Path]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Execute:
    """``executed(name, location, run_id=None)``: the notebook executed against ``location``
    (``jobs.notebooks.execute_notebook``), once per module for each such triple."""
    done: dict[tuple[str, str, str | None], Path] = {}

    def execute(name: str, location: str, run_id: str | None = None) -> Path:
        key = (name, location, run_id)
        if key not in done:
            out = tmp_path_factory.mktemp(f"{name}-{run_id or 'latest'}")
            done[key] = execute_notebook(name, location, out, run_id=run_id)
        return done[key]

    return execute


@dataclass(frozen=True)
class FailedExecution:
    error: PapermillExecutionError
    stderr: str  # what the kernel and papermill wrote to file descriptor 2 meanwhile


@pytest.fixture(scope="module")
def failed_execution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FailedExecution]:
    """The drift report executed against a location without any run (its loading cell raises),
    once per module, with what was written to stderr meanwhile: the kernel is a child process
    and inherits descriptor 2, so it is pointed at a file for the execution (as ``capfd``
    does for one test)."""
    root = tmp_path_factory.mktemp("empty")
    with tempfile.TemporaryFile(mode="w+b") as err:
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            with pytest.raises(PapermillExecutionError) as caught:
                execute_notebook("drift_report", str(root / "empty"), root / "out")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        yield FailedExecution(caught.value, err.read().decode(errors="replace"))
