"""Writes drift_report.ipynb and drift_trends.ipynb (outputs empty) with nbformat.

The notebooks hold no logic: each cell calls ``jobs.notebook_data`` (which calls
``jobs.history`` / ``jobs.artefacts``) and displays the result with ``jobs.notebook_views``.
Edit this file, then run ``.venv/bin/python notebooks/generate.py`` to regenerate them.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SETUP = """\
import matplotlib

matplotlib.use("Agg")
import pandas as pd

from jobs import notebook_data as nd
from jobs import notebook_views as nv

pd.set_option("display.max_rows", 60)
pd.set_option("display.max_colwidth", 60)
pd.set_option("display.width", 120)"""


def parameters() -> nbformat.NotebookNode:
    cell = new_code_cell(
        "# Parameters (papermill overrides these)\n"
        'report_location = "out/reports"  # a directory or s3://bucket/prefix\n'
        "region = None  # the S3 bucket's region (s3:// only)\n"
        "run_id = None  # None: the latest run that found drift"
    )
    cell.metadata["tags"] = ["parameters"]
    return cell


def notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    book = new_notebook(cells=cells)
    book.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    book.metadata["language_info"] = {"name": "python"}
    return book


def section(title: str, intro: str, *views: str) -> nbformat.NotebookNode:
    """A cell showing a section (heading, intro, views) only when one of its views has
    something to show (``nv.section``): a clean night is "in sync", not empty tables."""
    shown = "".join(f"    {view},\n" for view in views)
    return new_code_cell(f"nv.section(\n    {title!r},\n    {intro!r},\n{shown})")


REPORT = notebook(
    [
        new_markdown_cell(
            "# Drift report\n\n"
            "What a reconciliation run found between the source and target registries, what it "
            "repaired, and where the drift sits. By default the latest run that found drift "
            "(set `run_id` for another); after a clean night, that it is in sync first."
        ),
        parameters(),
        new_code_cell(SETUP),
        new_code_cell(
            "run = nd.latest_run(nd.open_location(report_location, region), run_id)\n"
            "nv.say(run.headline())\n"
            "nv.show(nv.table(run.summary().reset_index()))"
        ),
        section(
            "Root causes",
            "Drift that exists only because of other drift (the members of a missing group, "
            "the things of a missing or changed type) is counted under its cause.",
            "nv.table(run.root_causes())",
        ),
        section(
            "Drift by entity and kind",
            "",
            'nv.bar_chart(run.drift_by_kind(), "Drift by entity and kind", stacked=False, '
            'ylabel="drift items")',
        ),
        section(
            "Where the drift was lost",
            "From the three-way audit (the state table as a third view): before the table "
            "(events), after it (replication, hand edits), or in the table only; with what to "
            "check for each.",
            'nv.bar_chart(nd.nonzero(run.drift_by_where())["drifts"], '
            '"Drift by where it was lost", ylabel="drift items")',
            "nv.table(run.drift_by_where().reset_index())",
        ),
        section(
            "The most drifted thing types",
            "",
            'nv.bar_chart(run.most_drifted_types().drop(columns="total"), "Drift by thing type", '
            "stacked=False)",
            "nv.table(run.most_drifted_types().reset_index())",
        ),
        section(
            "The most drifted thing groups",
            "",
            'nv.bar_chart(run.most_drifted_groups().drop(columns="total"), '
            '"Drift by thing group", stacked=False)',
            "nv.table(run.most_drifted_groups().reset_index())",
        ),
        section(
            "Attribute-level drill-down",
            "Every differing field (attributes key by key), with its value in each region.",
            "nv.table(run.drill_down())",
            "nv.bar_chart(nd.history.field_frequency(run.drill_down()), "
            '"Most often differing fields (changed entities)")',
        ),
    ]
)

TRENDS = notebook(
    [
        new_markdown_cell(
            "# Drift trends across nightly runs\n\n"
            "Drift over time, how long drift stays before a run repairs it, and repair volume."
        ),
        parameters(),
        new_code_cell(SETUP),
        new_code_cell(
            "trends = nd.trends(nd.open_location(report_location, region))\n"
            "nv.say(trends.headline())\n"
            "nv.show(nv.table(trends.runs()))"
        ),
        section(
            "Drift per run",
            "",
            'nv.bar_chart(trends.drift_per_run(), "Drift per run, by entity", '
            'ylabel="drift items")',
            "nv.table(nd.nonzero(trends.drift_per_run(), rows=False).reset_index())",
        ),
        section(
            "Where the drift was lost, over time",
            "Drift lost before the state table points at registry events or the IoT rule; after "
            "it, at the replicator or hand edits in the destination.",
            'nv.bar_chart(trends.drift_by_where(), "Drift per run, by where it was lost", '
            'ylabel="drift items")',
            "nv.table(nd.nonzero(trends.drift_by_where(), rows=False).reset_index())",
        ),
        section(
            "Time to repair",
            "An episode runs from the first run that saw a drift item to the first later run "
            "where it is gone.",
            'nv.repair_time_histogram(trends.episodes, "Time to repair")',
            "nv.table(trends.time_to_repair())",
        ),
        section(
            "The slowest repairs",
            "Open items first; `trends.item_history()` has every item.",
            "nv.table(trends.slowest_repairs())",
        ),
        section(
            "Repair volume",
            "",
            'nv.bar_chart(trends.repair_volume().drop(columns=["started_at", "status", '
            '"planned"]), "Repairs per run", stacked=False, ylabel="repairs")',
            "nv.table(trends.repair_volume().reset_index())",
        ),
    ]
)


def main() -> None:
    for name, book in (("drift_report.ipynb", REPORT), ("drift_trends.ipynb", TRENDS)):
        nbformat.validate(book)
        nbformat.write(book, HERE / name)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
