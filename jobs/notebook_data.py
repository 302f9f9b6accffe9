"""What the notebooks load: the latest run's report and the history, ready to display.

Flow: ``notebooks/drift_report.ipynb`` calls ``latest_run``; ``notebooks/drift_trends.ipynb``
calls ``trends``. Both read artefacts through ``jobs.artefacts`` and compute through
``jobs.history``, so the notebooks hold no logic of their own: a cell per view, a plot per cell.
"""

from __future__ import annotations

from collections.abc import Hashable
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
from reconcile.humanize import fitting_unit, format_duration
from reconcile.report import load_json
from reconcile.reportformats import visible
from reconcile.rootcause import by_root_cause


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
    why: str = "the latest run"  # why this run is the one shown (``choose_run``)

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
        started = pd.Timestamp(self.record["started_at_ms"], unit="ms", tz="UTC")
        return (
            f"run {self.record['run_id']} ({self.record['status']}, started "
            f"{started:%Y-%m-%d %H:%M} UTC; {self.why}): "
            f"{self.report['source_region']} → {self.report['target_region']}: {state}; "
            f"{self.record['repairs_emitted']} repair(s) emitted, "
            f"{self.record['held_back']} held back by guards"
        )

    def root_causes(self) -> pd.DataFrame:
        """Drift by root cause (``reconcile.rootcause``): one row per cause, what it explains."""
        causes = by_root_cause(load_json(self.report).drifts)
        return pd.DataFrame(
            [
                {
                    "severity": c.drift.severity,
                    "entity": c.drift.entity.value,
                    "kind": c.drift.kind,
                    "name": c.drift.name,
                    "drift items": c.explains,
                    "explains": "; ".join(c.consequences()),
                }
                for c in causes
            ],
            columns=["severity", "entity", "kind", "name", "drift items", "explains"],
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


def choose_run(index: pd.DataFrame, run_id: str | None = None) -> tuple[dict[str, Any], str]:
    """The run the drift report shows, and why that one (pure, over the run index).

    ``run_id`` if given; otherwise the latest run that found drift: a clean run after it has
    nothing to show, so the report says how many clean runs followed instead. With no drift in
    any run, the latest run (clean)."""
    runs = index.loc[index["diffed"].astype(bool)] if "diffed" in index else index.iloc[0:0]
    if runs.empty:
        raise NoRunsError("no run with a report")
    if run_id is not None:
        chosen = runs.loc[runs["run_id"] == run_id]
        if chosen.empty:
            known = ", ".join(runs["run_id"].astype(str).tolist()[-5:])
            raise NoRunsError(f"no run {run_id!r} with a report (latest: {known})")
        return _record(chosen.iloc[-1]), f"run {run_id}, as asked"
    drifted = runs.loc[runs["drift_total"].astype(int) > 0]
    if drifted.empty:
        return _record(runs.iloc[-1]), "the latest run; no run found drift"
    record = _record(drifted.iloc[-1])
    later = int((runs["started_at_ms"] > record["started_at_ms"]).sum())
    why = "the latest run that found drift"
    if later:
        why += f"; {later} later run(s) found none"
    return record, why


def _record(row: pd.Series) -> dict[str, Any]:
    return {str(k): v for k, v in row.to_dict().items()}


def latest_run(store: Store, run_id: str | None = None) -> LatestRun:
    """The run the drift report shows (``choose_run``), loaded from its artefacts."""
    try:
        record, why = choose_run(load_index(store), run_id)
    except NoRunsError as error:
        raise NoRunsError(f"{error} at {store.location}") from error
    artefacts = RunArtefacts(store, str(record["prefix"]))
    source = artefacts.load_snapshot("source")
    return LatestRun(
        record=record,
        report=artefacts.read_report_json(),
        items=artefacts.read_drift_items(),
        things=source.things,
        memberships=source.memberships,
        why=why,
    )


@dataclass(frozen=True)
class Trends:
    """The run index, every run's drift items and the drift episodes derived from them."""

    index: pd.DataFrame
    items: pd.DataFrame
    episodes: pd.DataFrame

    def drift_over_time(self) -> pd.DataFrame:
        return history.drift_over_time(self.index)

    def runs(self) -> pd.DataFrame:
        """Every run, oldest first: when, how long, what it found and repaired."""
        frame = self.index.assign(took=self.index["finished_at"] - self.index["started_at"])
        columns = ["run_id", "status", "started_at", "took", "drift_total", "repairs_emitted"]
        return frame.loc[:, columns].reset_index(drop=True)

    def drift_by_entity(self) -> pd.DataFrame:
        return history.drift_by_entity_over_time(self.index)

    def drift_by_where(self) -> pd.DataFrame:
        """Drift per observed run by where it was lost, indexed by the run's id (a bar per run)."""
        by_where = history.drift_by_where_over_time(self.index, self.items)
        runs = self.drift_over_time()["run_id"]
        return by_where.set_axis(runs.astype(str).tolist(), axis=0).rename_axis("run")

    def drift_per_run(self) -> pd.DataFrame:
        """Drift per observed run by entity, indexed by the run's id (a bar per run)."""
        by_entity = self.drift_by_entity()
        runs = self.drift_over_time()["run_id"]
        return by_entity.set_axis(runs.astype(str).tolist(), axis=0).rename_axis("run")

    def time_to_repair(self) -> pd.DataFrame:
        return history.time_to_repair_summary(self.episodes)

    def repair_volume(self) -> pd.DataFrame:
        return history.repair_volume(self.index)

    def item_history(self) -> pd.DataFrame:
        return history.item_history(self.index, self.items)

    def slowest_repairs(self, top: int = 20) -> pd.DataFrame:
        """The drift items that took longest to repair, open ones first (they are not done)."""
        items = self.item_history()
        if items.empty:
            return items
        ranked = items.assign(_open=items["open"].astype(bool)).sort_values(
            ["_open", "time_to_repair"], ascending=False, na_position="first", kind="stable"
        )
        return ranked.drop(columns="_open").head(top).reset_index(drop=True)


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


def bar_chart(
    frame: pd.DataFrame | pd.Series, title: str, *, stacked: bool = True, ylabel: str = ""
) -> Any:
    """A (stacked) bar chart of ``frame``'s numeric columns per index label; one bar per label,
    so a handful of runs read as a handful of bars, not a line implying values between them."""
    figure, axes = _figure(title)
    numeric = frame.select_dtypes("number") if isinstance(frame, pd.DataFrame) else frame
    if numeric.empty or not numeric.to_numpy().any():
        _empty(axes, "no drift")
    else:
        from matplotlib.ticker import MaxNLocator

        labels = [str(label) for label in numeric.index]
        long = max(map(len, labels)) > 12
        numeric.plot.bar(ax=axes, stacked=stacked, rot=30 if long else 0)
        axes.set_xticklabels(labels, ha="right" if long else "center")
        axes.set_xlabel("")
        axes.set_ylabel(ylabel)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.25 of a thing
        # The count on every bar: 2 things next to 174 memberships are invisible otherwise.
        containers = axes.containers[-1:] if stacked else axes.containers
        totals = numeric.sum(axis=1) if isinstance(numeric, pd.DataFrame) and stacked else None
        for container in containers:
            values = totals.tolist() if totals is not None else container.datavalues
            axes.bar_label(
                container, labels=[f"{v:,.0f}" if v else "" for v in values], fontsize="small"
            )
        axes.margins(y=0.12)
        if isinstance(numeric, pd.DataFrame) and numeric.shape[1] > 1:
            axes.legend(fontsize="small", frameon=False)
    return figure


def repair_time_histogram(episodes: pd.DataFrame, title: str) -> Any:
    """Time to repair over the repaired episodes, in the unit that fits the longest."""
    figure, axes = _figure(title)
    repaired = episodes.loc[~episodes["open"].astype(bool), "time_to_repair"]
    seconds = pd.to_timedelta(repaired).dt.total_seconds()
    if seconds.empty:
        _empty(axes, "nothing repaired yet")
    else:
        size, unit = fitting_unit(float(seconds.max()))
        axes.hist(seconds / size, bins=min(20, max(1, seconds.nunique())))
        axes.set_xlabel(f"{unit} from first seen to repaired")
        axes.set_ylabel("drift items")
    return figure


def with_readable_durations(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` for people: durations as ``3m 47s``, times as ``2026-12-01 14:18 UTC``."""
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_timedelta64_dtype(shown[column]):
            shown[column] = shown[column].dt.total_seconds().map(format_duration)
        elif pd.api.types.is_datetime64_any_dtype(shown[column]):
            shown[column] = shown[column].dt.strftime("%Y-%m-%d %H:%M UTC").fillna("")
    return shown


def table(frame: pd.DataFrame) -> Any:
    """``frame`` as a table people read: text left-aligned, numbers right, no row numbers
    (a 0..n index says nothing), durations and times written out."""
    shown = with_readable_durations(frame)
    text: list[Hashable] = [c for c in shown.columns if not pd.api.types.is_numeric_dtype(shown[c])]
    for column in text:  # registry text: shown, never markup, controls or bidi overrides
        shown[column] = shown[column].map(lambda v: visible(v) if isinstance(v, str) else v)
    styler = shown.style.format(precision=0, thousands=",", na_rep="", escape="html")
    styler = styler.set_properties(subset=text, **{"text-align": "left"})
    styler = styler.set_table_styles(
        [{"selector": "th", "props": [("text-align", "left")]}], overwrite=False
    )
    if isinstance(shown.index, pd.RangeIndex):
        styler = styler.hide(axis="index")
    return styler


def say(text: str) -> None:
    """Display ``text`` as a paragraph (Markdown), not as code output."""
    from IPython.display import Markdown, display

    display(Markdown(visible(text)))


def show(figure: Any) -> None:
    """Display ``figure`` as a PNG image (works under the Agg backend)."""
    from IPython.display import Image, display

    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    display(Image(data=buffer.getvalue(), format="png"))
