"""Both notebooks execute with papermill against the sandbox runs' artefacts; a failing cell
fails the test (papermill raises ``PapermillExecutionError``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from jobs.notebooks import NOTEBOOK_DIR, NOTEBOOKS, to_html
from tests.jobs.scenario import Scenario
from tests.notebooks.conftest import Execute, FailedExecution


def outputs(notebook: Path) -> tuple[str, int]:
    """All text output of an executed notebook, and how many images it shows."""
    book = nbformat.read(notebook, as_version=4)
    text, images = [], 0
    for cell in book.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            data = output.get("data", {})
            images += "image/png" in data
            text.append(
                output.get("text", "")
                + data.get("text/markdown", data.get("text/html", data.get("text/plain", "")))
            )
    return "\n".join(text), images


def test_the_drift_report_notebook_runs_on_the_latest_run(
    scenario: Scenario, executed: Execute
) -> None:
    report = executed("drift_report", scenario.location)

    text, images = outputs(report)
    latest = scenario.runs[-1]["run_id"]
    assert f"run {latest} (completed, started" in text
    assert "the latest run that found drift" in text  # it says which run, and why
    assert "rogue" in text  # the root causes list the extra thing
    # by entity and kind, by where lost, by type, by group; no changed entity: no field chart
    assert images == 4
    page = to_html(report).read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "latest_run(" not in page  # rendered without code (--no-input)
    assert "Root causes" in page
    assert "lost_before_table" in page  # drift by where it was lost, with what to check


def test_the_drift_report_shows_the_run_it_is_asked_for(
    scenario: Scenario, executed: Execute
) -> None:
    first = scenario.runs[0]["run_id"]
    text, _ = outputs(executed("drift_report", scenario.location, run_id=first))

    assert f"run {first} (completed" in text
    assert "as asked" in text


def test_the_drift_trends_notebook_runs_over_both_runs(
    scenario: Scenario, executed: Execute
) -> None:
    text, images = outputs(executed("drift_trends", scenario.location))

    for run in scenario.runs:
        assert run["run_id"] in text
    assert "1d 0h" in text  # time to repair of drift A, as a person writes it
    assert images == 4  # drift per run by where it was lost is the fourth chart


def test_the_kernel_starts_without_the_eavesdropping_warning(
    failed_execution: FailedExecution,
) -> None:
    # issue 22 item 15: `make report` printed ipykernel's warning that its TCP sockets are
    # "susceptible to eavesdropping"; the kernel now talks over local Unix sockets
    assert "eavesdropping" not in failed_execution.stderr


def test_a_failing_cell_fails_the_execution(failed_execution: FailedExecution) -> None:
    # GIVEN a location without any run, the loading cell raised (PapermillExecutionError)
    assert failed_execution.error.ename == "NoRunsError"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebooks_have_no_outputs_and_a_parameters_cell(name: str) -> None:
    book = json.loads((NOTEBOOK_DIR / f"{name}.ipynb").read_text())
    code = [c for c in book["cells"] if c["cell_type"] == "code"]

    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    assert "report_location" in "".join(tagged[0]["source"])
    assert "run_id" in "".join(tagged[0]["source"])
    assert book["metadata"]["kernelspec"]["name"] == "python3"


RAW = re.compile(r">\s*(True|False|None|nan|NaN|NaT|<NA>|null)\s*<")


def cells(text: str) -> list[str]:
    """The text of every table cell in the notebook's HTML outputs."""
    return re.findall(r"<td[^>]*>(.*?)</td>", text, flags=re.S)


def test_after_a_clean_night_the_report_says_in_sync_first(
    clean_night: str, executed: Execute
) -> None:
    # issue 22 item 14: after a clean night the report opened on the last run with drift (and
    # "1 later run(s) found none" inside its headline)
    text, images = outputs(executed("drift_report", clean_night))

    assert text.lstrip().startswith(
        "**In sync**: us-east-1 → eu-west-1: the latest run, clean-night"
    )
    assert "Below: run" in text and "the latest run that found drift" in text
    assert images == 4  # the views below are the drifted run's, none empty
    # the trends open on it too
    trends, _ = outputs(executed("drift_trends", clean_night))
    assert trends.lstrip().startswith("**In sync**: the latest run, clean-night")
    assert "1 clean run(s) since the last drift" in trends


def test_a_report_of_a_run_in_sync_shows_no_empty_table_or_chart(
    clean_night: str, executed: Execute
) -> None:
    # GIVEN the clean run asked for by id: nothing drifted, so nothing to chart or list
    text, images = outputs(executed("drift_report", clean_night, run_id="clean-night"))

    assert "in sync" in text
    assert images == 0  # was 5 charts, each saying "no drift"
    assert "Root causes" not in text and "drill-down" not in text
    # the one table is the summary of what was compared; every table shown has rows
    assert text.count("<table") == 1
    assert "no drift" not in text


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_raw_true_false_none_or_nan_is_shown(
    name: str, clean_night: str, executed: Execute
) -> None:
    # issue 22 item 14: the slowest repairs showed "open" as True/False
    text, _ = outputs(executed(name, clean_night))

    shown = cells(text)
    assert shown  # there are tables to look at
    assert not [c for c in shown if RAW.search(f">{c}<")]
    if name == "drift_trends":
        assert any(c.strip() == "no" for c in shown)  # repaired items: not open
