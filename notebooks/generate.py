"""Writes drift_report.ipynb and drift_trends.ipynb (outputs empty) with nbformat.

The notebooks hold no logic: each cell calls ``jobs.notebook_data`` (which calls
``jobs.history`` / ``jobs.artefacts``) and displays the result. Edit this file, then run
``.venv/bin/python notebooks/generate.py`` to regenerate them.
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


REPORT = notebook(
    [
        new_markdown_cell(
            "# Drift report\n\n"
            "What a reconciliation run found between the source and target registries, what it "
            "repaired, and where the drift sits. By default the latest run that found drift "
            "(set `run_id` for another)."
        ),
        parameters(),
        new_code_cell(SETUP),
        new_code_cell(
            "run = nd.latest_run(nd.open_location(report_location, region), run_id)\n"
            "nd.say(run.headline())\n"
            "nd.table(run.summary().reset_index())"
        ),
        new_markdown_cell(
            "## Root causes\n\nDrift that exists only because of other drift (the members "
            "of a missing group, the things of a missing type) is counted under its cause."
        ),
        new_code_cell("nd.table(run.root_causes())"),
        new_markdown_cell("## Drift by entity and kind"),
        new_code_cell(
            "by_kind = run.drift_by_kind()\n"
            'nd.show(nd.bar_chart(by_kind, "Drift by entity and kind", ylabel="drift items"))'
        ),
        new_markdown_cell(
            "## Where the drift was lost\n\nFrom the three-way audit (the state table as a "
            "third view): before the table (events), after it (replication, hand edits), or in "
            "the table only; with what to check for each."
        ),
        new_code_cell(
            "where = run.drift_by_where()\n"
            'nd.show(nd.bar_chart(where["drifts"], "Drift by where it was lost", '
            'ylabel="drift items"))\n'
            "nd.table(where.reset_index())"
        ),
        new_markdown_cell("## The most drifted thing types"),
        new_code_cell(
            "types = run.most_drifted_types()\n"
            'nd.show(nd.bar_chart(types.drop(columns="total"), "Drift by thing type"))\n'
            "nd.table(types.reset_index())"
        ),
        new_markdown_cell("## The most drifted thing groups"),
        new_code_cell(
            "groups = run.most_drifted_groups()\n"
            'nd.show(nd.bar_chart(groups.drop(columns="total"), "Drift by thing group"))\n'
            "nd.table(groups.reset_index())"
        ),
        new_markdown_cell(
            "## Attribute-level drill-down\n\nEvery differing field (attributes key by key), "
            "with its value in each region."
        ),
        new_code_cell("drill = run.drill_down()\nnd.table(drill)"),
        new_code_cell(
            "fields = nd.history.field_frequency(drill)\n"
            'nd.show(nd.bar_chart(fields, "Most often differing fields (changed entities)"))'
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
            "trends = nd.trends(nd.open_location(report_location, region))\nnd.table(trends.runs())"
        ),
        new_markdown_cell("## Drift per run"),
        new_code_cell(
            'nd.show(nd.bar_chart(trends.drift_per_run(), "Drift per run, by entity", '
            'ylabel="drift items"))'
        ),
        new_markdown_cell(
            "## Where the drift was lost, over time\n\nDrift lost before the state table "
            "points at registry events or the IoT rule; after it, at the replicator or hand "
            "edits in the destination."
        ),
        new_code_cell(
            'nd.show(nd.bar_chart(trends.drift_by_where(), "Drift per run, by where it was lost", '
            'ylabel="drift items"))\n'
            "nd.table(trends.drift_by_where().reset_index())"
        ),
        new_markdown_cell(
            "## Time to repair\n\nAn episode runs from the first run that saw a drift item "
            "to the first later run where it is gone."
        ),
        new_code_cell(
            'nd.show(nd.repair_time_histogram(trends.episodes, "Time to repair"))\n'
            "nd.table(trends.time_to_repair())"
        ),
        new_markdown_cell(
            "The slowest repairs (open items first); `trends.item_history()` has every item."
        ),
        new_code_cell("nd.table(trends.slowest_repairs())"),
        new_markdown_cell("## Repair volume"),
        new_code_cell(
            "volume = trends.repair_volume()\n"
            'nd.show(nd.bar_chart(volume.drop(columns=["started_at", "status", "planned"]), '
            '"Repairs per run", stacked=False, ylabel="repairs"))\n'
            "nd.table(volume.reset_index())"
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
