"""What the notebooks load: the latest run's report and the history, ready to display.

Flow: ``notebooks/drift_report.ipynb`` calls ``latest_run``; ``notebooks/drift_trends.ipynb``
calls ``trends``. Both read artefacts through ``jobs.artefacts`` and compute through
``jobs.history``, so the notebooks hold no logic of their own: a cell per view, a plot per cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Any

import pandas as pd

from jobs import history
from jobs.artefacts import (
    ArtefactError,
    RunArtefacts,
    Store,
    load_drift_items,
    load_index,
    open_store,
)
from pipeline import aws
from reconcile.drift import DRIFT_KINDS, ENTITY_ORDER


class NoRunsError(ArtefactError):
    """The location holds no run that got as far as a report."""


def open_location(location: str, region: str | None = None) -> Store:
    """The artefact store at ``location`` (a directory or ``s3://bucket/prefix``)."""
    return open_store(location, lambda: aws.client("s3", region or "us-east-1"))


@dataclass(frozen=True)
class LatestRun:
    """The most recent run that produced a report, with everything the report notebook shows."""

    record: dict[str, Any]
    report: dict[str, Any]
    items: pd.DataFrame
    things: pd.DataFrame  # the source snapshot's things (for "most drifted types")
    memberships: pd.DataFrame  # the source snapshot's memberships (for "most drifted groups")

    def summary(self) -> pd.DataFrame:
        """Entities compared and drift per kind, as the report's summary table."""
        rows = [
            {
                "entity": entity.value,
                "compared": self.report["counts"].get(entity.value, 0),
                **{k: self.report["summary"].get(entity.value, {}).get(k, 0) for k in DRIFT_KINDS},
            }
            for entity in ENTITY_ORDER
        ]
        return pd.DataFrame(rows).set_index("entity")

    def headline(self) -> str:
        state = "in sync" if self.report["in_sync"] else f"{len(self.report['drifts'])} drift(s)"
        return (
            f"run {self.record['run_id']} ({self.record['status']}): "
            f"{self.report['source_region']} -> {self.report['target_region']}: {state}; "
            f"{self.record['repairs_emitted']} repair(s) emitted, "
            f"{self.record['held_back']} held back by guards"
        )

    def drift_by_kind(self) -> pd.DataFrame:
        return history.drift_by_kind(self.items)

    def drift_by_where(self) -> pd.DataFrame:
        """Drift per loss point (three-way audit) with what to check for each."""
        from reconcile.explain import FIXES

        where = self.items.get("where")
        counts = (where.value_counts() if where is not None else pd.Series(dtype="int64")).to_dict()
        rows = [
            {"where": point, "drifts": int(counts.get(point, 0)), "what to check": FIXES[point]}
            for point in FIXES
        ]
        return pd.DataFrame(rows).set_index("where")

    def most_drifted_types(self, top: int = 10) -> pd.DataFrame:
        return history.most_drifted_types(self.items, self.things, top)

    def most_drifted_groups(self, top: int = 10) -> pd.DataFrame:
        return history.most_drifted_groups(self.items, self.memberships, top)

    def drill_down(self) -> pd.DataFrame:
        return history.attribute_drill_down(self.items)


def latest_run(store: Store) -> LatestRun:
    index = load_index(store)
    runs = index.loc[index["diffed"].astype(bool)] if "diffed" in index else index.iloc[0:0]
    if runs.empty:
        raise NoRunsError(f"no run with a report at {store.location}")
    record = {str(k): v for k, v in runs.iloc[-1].to_dict().items()}
    artefacts = RunArtefacts(store, str(record["prefix"]))
    source = artefacts.load_snapshot("source")
    return LatestRun(
        record=record,
        report=artefacts.read_report_json(),
        items=artefacts.read_drift_items(),
        things=source.things,
        memberships=source.memberships,
    )


@dataclass(frozen=True)
class Trends:
    """The run index, every run's drift items and the drift episodes derived from them."""

    index: pd.DataFrame
    items: pd.DataFrame
    episodes: pd.DataFrame

    def drift_over_time(self) -> pd.DataFrame:
        return history.drift_over_time(self.index)

    def drift_by_entity(self) -> pd.DataFrame:
        return history.drift_by_entity_over_time(self.index)

    def drift_by_where(self) -> pd.DataFrame:
        return history.drift_by_where_over_time(self.index, self.items)

    def time_to_repair(self) -> pd.DataFrame:
        return history.time_to_repair_summary(self.episodes)

    def repair_volume(self) -> pd.DataFrame:
        return history.repair_volume(self.index)

    def item_history(self) -> pd.DataFrame:
        return history.item_history(self.index, self.items)


def trends(store: Store) -> Trends:
    index = load_index(store)
    if index.empty:
        raise NoRunsError(f"no runs at {store.location}")
    items = load_drift_items(store, index)
    return Trends(index=index, items=items, episodes=history.drift_episodes(index, items))


# -- plots (matplotlib, Agg) ---------------------------------------------------------------------
# Figures are rendered to PNG and displayed as images, so they show under the Agg backend (no
# GUI, no inline backend needed) in papermill runs and in the nbconvert HTML.


def _figure(title: str) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.5), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def _empty(axes: Any, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    axes.set_axis_off()


def bar_chart(frame: pd.DataFrame | pd.Series, title: str, *, stacked: bool = True) -> Any:
    """A (stacked) bar chart of ``frame``'s numeric columns per index label."""
    figure, axes = _figure(title)
    numeric = frame.select_dtypes("number") if isinstance(frame, pd.DataFrame) else frame
    if numeric.empty or not numeric.to_numpy().any():
        _empty(axes, "no drift")
    else:
        numeric.plot.bar(ax=axes, stacked=stacked, rot=0)
    return figure


def line_chart(frame: pd.DataFrame, title: str) -> Any:
    """One line per column over the frame's (time) index."""
    figure, axes = _figure(title)
    numeric = frame.select_dtypes("number")
    if numeric.empty:
        _empty(axes, "no runs")
    else:
        numeric.plot(ax=axes, marker="o")
    return figure


def repair_time_histogram(episodes: pd.DataFrame, title: str) -> Any:
    """Time to repair in hours, over the repaired episodes."""
    figure, axes = _figure(title)
    repaired = episodes.loc[~episodes["open"].astype(bool), "time_to_repair"]
    hours = pd.to_timedelta(repaired).dt.total_seconds() / 3600
    if hours.empty:
        _empty(axes, "nothing repaired yet")
    else:
        axes.hist(hours, bins=min(20, max(1, len(hours))))
        axes.set_xlabel("hours from first seen to repaired")
        axes.set_ylabel("drift items")
    return figure


def show(figure: Any) -> None:
    """Display ``figure`` as a PNG image (works under the Agg backend)."""
    from IPython.display import Image, display

    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    display(Image(data=buffer.getvalue(), format="png"))
